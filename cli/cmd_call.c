/*
 * cmd_call.c - call TYPE [DATA]: one call, its result bytes to stdout, raw.
 *
 * DATA, or a small stdin, goes to libcorral as bytes (it picks the encoding);
 * a stdin that is a regular file or larger than CORRAL_INLINE_MAX goes as a
 * sealed memfd of ours.  Stdin is streamed into the memfd (splice/sendfile),
 * never held in memory whole; a result that came as an fd is copied to stdout
 * the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "fmt.h"

/* Largest stdin handed over as bytes rather than as a memfd. */
#define CALL_INLINE_MAX CORRAL_INLINE_MAX

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

/*
 * Read stdin: its bytes in *ret_buf (malloc'd) and *ret_len when small, else
 * a sealed memfd holding them in *ret_fd; 0 or the exit status.
 */
static int call_stdin(char **ret_buf, size_t *ret_len, int *ret_fd)
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
		*ret_buf = buf;
		*ret_len = (size_t)n;
		return 0;
	}
out:
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

/* Write the result to stdout; 0 or the exit status. */
static int call_output(struct corral_result *res)
{
	const void *data;
	size_t len;
	int fd = corral_result_take_fd(res), r;

	if (fd >= 0) {
		out_flush();
		r = call_copy_result(fd);
		close(fd);
		return r;
	}
	data = corral_result_data(res, &len);
	out_write(data, len);
	return CTL_EXIT_OK;
}

/* call TYPE [DATA] [-k KEY] [-t MS]: the result bytes to stdout. */
int cmd_call(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	struct corral_call_opts co = {0};
	struct corral_result *res;
	struct corral_error err;
	const char *type;
	long long timeout = -1;
	char *buf = NULL;
	size_t len = 0;
	int c, r, fd = -1;

	while ((c = args_next(ctl, argc, argv, "k:t:", opts)) != ARGS_END) {
		switch (c) {
		case 'k':
			co.key = optarg;
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
	type = argv[optind];
	if (!args_utf8(type))
		return ctl_usage_error(ctl, "invalid type: not UTF-8");
	if (co.key && !args_utf8(co.key))
		return ctl_usage_error(ctl, "invalid key: not UTF-8");
	if (timeout >= 0)
		co.timeout_ms = (int)timeout;

	r = ctl_connect(ctl);
	if (r)
		return r;
	if (optind + 1 < argc) {
		buf = argv[optind + 1];
		len = strlen(buf);
	} else {
		r = call_stdin(&buf, &len, &fd);
		if (r)
			return r;
		co.payload_fd = fd;
	}
	r = corral_call(ctl->conn, type, buf, len, &co, &res, &err);
	if (fd >= 0)
		close(fd);
	if (optind + 1 >= argc)
		free(buf);
	if (r)
		return ctl_fail(&err);
	r = ctl->json ? CTL_EXIT_OK : call_output(res);
	corral_result_free(res);
	return r;
}
