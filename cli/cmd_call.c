/*
 * cmd_call.c - call TYPE [DATA]: one call, its result bytes to stdout, raw.
 *
 * The payload travels three ways: DATA, or a small UTF-8 stdin, inline as
 * "payload"; a small stdin that is not UTF-8 (or holds NUL) as "payload_b64";
 * a stdin that is a regular file or larger than CALL_INLINE_MAX as a sealed
 * memfd ("payload_fd": true, the fd riding with the request line).  Stdin is
 * streamed into the memfd (splice/sendfile), never held in memory whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "ctl.h"
#include "fmt.h"

/* Largest stdin sent inline in the request line. */
#define CALL_INLINE_MAX (64u * 1024u)

/* Bytes moved per copy syscall. */
#define CALL_CHUNK (1u << 20)

/* Write all of buf to fd; 0 or -errno. */
static int call_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read from fd until buf is full or EOF; the byte count or -errno. */
static ssize_t call_read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Stream the rest of fd `in` into the file `out`; buf is scratch for plain copying. */
static int call_copy_in(int in, int out, char *buf, size_t buflen)
{
	enum { COPY_SPLICE, COPY_SENDFILE, COPY_READ } how = COPY_READ;
	struct stat st;

	if (fstat(in, &st) == 0)
		how = S_ISFIFO(st.st_mode)  ? COPY_SPLICE
		      : S_ISREG(st.st_mode) ? COPY_SENDFILE
					    : COPY_READ;
	for (;;) {
		ssize_t n;

		if (how == COPY_SPLICE)
			n = splice(in, NULL, out, NULL, CALL_CHUNK, SPLICE_F_MOVE);
		else if (how == COPY_SENDFILE)
			n = sendfile(out, in, NULL, CALL_CHUNK);
		else
			n = read(in, buf, buflen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (how != COPY_READ && (errno == EINVAL || errno == ENOSYS)) {
				how = COPY_READ;
				continue;
			}
			return -errno;
		}
		if (n == 0)
			return 0;
		if (how == COPY_READ) {
			int r = call_write_all(out, buf, (size_t)n);

			if (r < 0)
				return r;
		}
	}
}

/* A sealed memfd holding prefix then the rest of stdin, in *ret_fd; 0 or the exit status. */
static int call_stdin_memfd(const char *prefix, size_t len, char *buf, size_t buflen, int *ret_fd)
{
	int fd, r;

	fd = memfd_create("corralctl-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		ctl_warnx("cannot create memfd: %s", strerror(errno));
		return CTL_EXIT_ERROR;
	}
	r = call_write_all(fd, prefix, len);
	if (r == 0)
		r = call_copy_in(STDIN_FILENO, fd, buf, buflen);
	if (r < 0) {
		ctl_warnx("cannot read stdin into memfd: %s", strerror(-r));
		close(fd);
		return CTL_EXIT_ERROR;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK) < 0) {
		ctl_warnx("cannot seal memfd: %s", strerror(errno));
		close(fd);
		return CTL_EXIT_ERROR;
	}
	*ret_fd = fd;
	return 0;
}

/* Put data into req as "payload" when it is UTF-8 without NUL, else as "payload_b64". */
static void call_inline(json_t *req, const char *data, size_t len)
{
	json_t *s = memchr(data, '\0', len) ? NULL : json_stringn(data, len);
	char *b64;

	if (s) {
		json_object_set_new(req, "payload", s);
		return;
	}
	b64 = b64_encode(data, len);
	if (!b64)
		ctl_oom();
	json_object_set_new(req, "payload_b64", json_string(b64));
	free(b64);
}

/* Put stdin into req, inline or as a memfd in *ret_fd; 0 or the exit status. */
static int call_stdin(json_t *req, int *ret_fd)
{
	size_t buflen = CALL_INLINE_MAX + 1;
	char *buf = malloc(buflen);
	struct stat st;
	ssize_t n = 0;
	int r = 0;

	if (!buf)
		ctl_oom();
	if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
		r = call_stdin_memfd(NULL, 0, buf, buflen, ret_fd);
		goto out;
	}
	n = call_read_full(STDIN_FILENO, buf, buflen);
	if (n < 0) {
		ctl_warnx("cannot read stdin: %s", strerror((int)-n));
		r = CTL_EXIT_ERROR;
	} else if ((size_t)n > CALL_INLINE_MAX) {
		r = call_stdin_memfd(buf, (size_t)n, buf, buflen, ret_fd);
	} else {
		call_inline(req, buf, (size_t)n);
	}
out:
	if (r == 0 && *ret_fd >= 0)
		json_object_set_new(req, "payload_fd", json_true());
	free(buf);
	return r;
}

/* Leave after a failed write of result bytes: quietly when the reader went away. */
static int call_write_failed(int err)
{
	if (err == EPIPE)
		exit(CTL_EXIT_OK);
	ctl_warnx("write error: %s", strerror(err));
	return CTL_EXIT_ERROR;
}

/* Copy the result memfd, offset 0 to its size, to stdout; 0 or the exit status. */
static int call_copy_result(int fd)
{
	struct stat st;
	off_t off = 0;
	char *buf = NULL;
	int r = 0;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ctl_warnx("invalid reply from corrald: result fd is not a file");
		return CTL_EXIT_ERROR;
	}
	while (off < st.st_size) {
		size_t left = (size_t)(st.st_size - off);
		size_t want = left < CALL_CHUNK ? left : CALL_CHUNK;
		ssize_t n;

		if (!buf) {
			n = sendfile(STDOUT_FILENO, fd, &off, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
				/* stdout takes no sendfile (a tty, O_APPEND): copy by hand. */
				buf = malloc(CALL_CHUNK);
				if (!buf)
					ctl_oom();
				continue;
			}
			if (n < 0) {
				r = call_write_failed(errno);
				break;
			}
		} else {
			n = pread(fd, buf, want, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				ctl_warnx("cannot read result: %s", strerror(errno));
				r = CTL_EXIT_ERROR;
				break;
			}
			r = call_write_all(STDOUT_FILENO, buf, (size_t)n);
			if (r < 0) {
				r = call_write_failed(-r);
				break;
			}
			off += n;
		}
		if (n == 0)
			break;
	}
	free(buf);
	return r;
}

/* Write the ok reply's result to stdout; 0 or the exit status. */
static int call_output(struct ctl_reply *rep)
{
	json_t *res = json_object_get(rep->obj, "result");
	json_t *b64 = json_object_get(rep->obj, "result_b64");
	unsigned char *data;
	size_t len;

	if (json_is_string(res)) {
		out_write(json_string_value(res), json_string_length(res));
		return CTL_EXIT_OK;
	}
	if (json_is_string(b64)) {
		if (b64_decode(json_string_value(b64), json_string_length(b64), &data, &len) < 0) {
			ctl_warnx("invalid reply from corrald: bad result_b64");
			return CTL_EXIT_ERROR;
		}
		out_write(data, len);
		free(data);
		return CTL_EXIT_OK;
	}
	if (json_is_true(json_object_get(rep->obj, "result_fd"))) {
		if (rep->fd < 0) {
			ctl_warnx("invalid reply from corrald: result_fd without a descriptor");
			return CTL_EXIT_ERROR;
		}
		out_flush();
		return call_copy_result(rep->fd);
	}
	return CTL_EXIT_OK;
}

/* Set req[key] to the string s from the command line; 0 or ARGS_BAD. */
static int call_set_string(struct ctl *ctl, json_t *req, const char *key, const char *s)
{
	json_t *v = json_string(s);

	if (!v)
		return args_usage_error(ctl, "invalid %s: not UTF-8", key);
	json_object_set_new(req, key, v);
	return 0;
}

/* call TYPE [DATA] [-k KEY] [-t MS]: the result bytes to stdout. */
int cmd_call(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	const char *key = NULL, *data;
	long long timeout = -1;
	struct ctl_reply rep;
	json_int_t id;
	json_t *req;
	int c, r, fd = -1;

	while ((c = args_next(ctl, argc, argv, "k:t:", opts)) != ARGS_END) {
		switch (c) {
		case 'k':
			key = optarg;
			break;
		case 't':
			if (args_option_number(ctl, argv, c, CTL_CMD_CALL, "timeout_ms", &timeout))
				return CTL_EXIT_USAGE;
			break;
		default:
			return args_stop(c);
		}
	}
	if (args_positional(ctl, argc, argv, 1, 2))
		return CTL_EXIT_USAGE;
	data = optind + 1 < argc ? argv[optind + 1] : NULL;
	req = ctl_request_new(ctl, "call", &id);
	if (call_set_string(ctl, req, "type", argv[optind]) ||
	    (key && call_set_string(ctl, req, "key", key))) {
		json_decref(req);
		return CTL_EXIT_USAGE;
	}
	if (timeout >= 0)
		json_object_set_new(req, "timeout_ms", json_integer(timeout));

	r = ctl_connect(ctl);
	if (r == 0) {
		if (data)
			call_inline(req, data, strlen(data));
		else
			r = call_stdin(req, &fd);
	}
	if (r) {
		json_decref(req);
		return r;
	}
	r = ctl_send(ctl, req, fd);
	if (fd >= 0)
		close(fd);
	if (r == 0)
		r = ctl_wait(ctl, id, &rep);
	if (r)
		return r;
	if (!ctl->json)
		r = call_output(&rep);
	ctl_reply_free(&rep);
	return r;
}
