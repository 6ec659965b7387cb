/*
 * bench/workload.c - bench-workload: real work, as a user who must run an
 * untrusted converter per request would do it, three ways in the same run:
 *
 *   corral   a private corrald with one stdio type per program, pool
 *            min = max = 8 warm workers, the default sandbox; each request is
 *            a `call` over the control socket with the input as payload_fd
 *            (one connection per client thread), the result read from the
 *            result memfd
 *   bwrap    bwrap per request with the same namespaces (--unshare-user
 *            --unshare-pid --unshare-net --unshare-ipc --unshare-uts
 *            --die-with-parent, read-only /usr and /etc, the /bin /lib...
 *            links of a merged /usr, --proc /proc --dev /dev --tmpfs /tmp)
 *   bare     posix_spawn per request, no isolation
 *
 * Programs, each called by its full path in every driver: gzip -c of a 64 KiB
 * file, jq . of a 16 KiB JSON document, ImageMagick convert of a 256x256 PNG
 * to a 64x64 thumbnail.  Every output is checked (gzip: the bytes of a
 * reference run, the header's mtime aside; jq: the reference bytes; convert:
 * a PNG of 64x64 whose chunks, pixels included, are the reference run's, its
 * time stamps aside).  Each driver runs at concurrency 1 and 8 (client threads,
 * one request in flight each); drivers alternate in rounds so that load
 * drifting on a shared machine hits all of them alike.
 *
 * Prints per program and concurrency BENCH workload_<driver>_<prog>_c<C>
 * (requests/s) and RATIO workload_corral_vs_{bwrap,bare}_<prog>_c<C>, and the
 * headline RATIO workload_corral_vs_{bwrap,bare}_<prog>: the geometric mean of
 * the two concurrencies.
 *
 * Environment: WORKLOAD_N requests per program, driver and concurrency
 * (default 1000; e.g. 100 for a quick run), WORKLOAD_ROUNDS (default 4),
 * WORKLOAD_PROGS (a comma list, default gzip,jq,convert), BENCH_GZIP,
 * BENCH_JQ, BENCH_CONVERT, BENCH_BWRAP (default: found in /usr/bin, /bin, then
 * $PATH), CORRALD.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MAX_CONC     8
#define POOL_WORKERS 8
#define MAX_ARGS     64
#define MAX_OUT	     (8u << 20)

extern char **environ;

enum driver { D_CORRAL, D_BWRAP, D_BARE, D_COUNT };

static const char *const driver_names[D_COUNT] = {"corral", "bwrap", "bare"};

/* One program under test. */
struct prog {
	const char *name;
	const char *env;     /* overrides the path */
	const char *binary;  /* looked up in /usr/bin, /bin, $PATH */
	const char *args[6]; /* after argv[0] */
	char *path;	     /* full path found */
	char in[400];	     /* input file */
	uint8_t *ref;	     /* reference output (NULL: checked by shape) */
	size_t ref_len;
	bool (*check)(const struct prog *p, const uint8_t *out, size_t len);
};

/* What a client thread runs. */
struct job {
	enum driver drv;
	struct prog *prog;
	unsigned n;
	const char *sock;
	pthread_t tid;
	char err[600];
};

static char tmpdir[256];
static char *bwrap_path;
static char *bwrap_argv_prefix[MAX_ARGS];
static int bwrap_argc;

/* Write len bytes to a new file. */
static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		bench_die("create %s: %s", path, strerror(errno));
	for (const uint8_t *p = buf; len;) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			bench_die("write %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

/* Read all of fd into a malloc'd buffer (at most MAX_OUT bytes); returns its length. */
static size_t read_all(int fd, uint8_t **ret, char *err, size_t errlen)
{
	size_t cap = 65536, len = 0;
	uint8_t *buf = malloc(cap);

	*ret = NULL;
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= MAX_OUT) {
				snprintf(err, errlen, "output over %u bytes", MAX_OUT);
				free(buf);
				return 0;
			}
			cap *= 2;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				snprintf(err, errlen, "out of memory");
				return 0;
			}
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			free(buf);
			return 0;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = buf;
	return len;
}

/* gzip: the reference bytes, the header's mtime (bytes 4..7) aside. */
static bool check_gzip(const struct prog *p, const uint8_t *out, size_t len)
{
	return len == p->ref_len && len > 10 && memcmp(out, p->ref, 4) == 0 &&
	       memcmp(out + 8, p->ref + 8, len - 8) == 0;
}

/* jq: exactly the reference bytes. */
static bool check_exact(const struct prog *p, const uint8_t *out, size_t len)
{
	return len == p->ref_len && memcmp(out, p->ref, len) == 0;
}

/* Big-endian 32 bits at p. */
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The next chunk of the PNG buf[0..len) at *off (past the signature): its type and data; false at
 * the end or on a chunk that does not fit. */
static bool png_chunk(const uint8_t *buf, size_t len, size_t *off, const uint8_t **type,
		      const uint8_t **data, uint32_t *dlen)
{
	if (len - *off < 12)
		return false;
	*dlen = be32(buf + *off);
	if (*dlen > len - *off - 12)
		return false;
	*type = buf + *off + 4;
	*data = buf + *off + 8;
	*off += 12 + (size_t)*dlen;
	return true;
}

/* A chunk that differs from run to run: the time stamps ImageMagick writes. */
static bool png_volatile(const uint8_t *type, const uint8_t *data, uint32_t dlen)
{
	return memcmp(type, "tIME", 4) == 0 ||
	       (memcmp(type, "tEXt", 4) == 0 && dlen >= 5 && memcmp(data, "date:", 5) == 0);
}

/* convert: a 64x64 PNG, chunk for chunk the reference's (pixels included), time stamps aside. */
static bool check_png64(const struct prog *p, const uint8_t *out, size_t len)
{
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	size_t ro = 8, oo = 8;

	if (len < 24 || memcmp(out, sig, 8) != 0 || memcmp(out + 12, "IHDR", 4) != 0 ||
	    be32(out + 16) != 64 || be32(out + 20) != 64)
		return false;
	for (;;) {
		const uint8_t *rt = NULL, *rd = NULL, *ot = NULL, *od = NULL;
		uint32_t rl = 0, ol = 0;
		bool rok, ook;

		while ((rok = png_chunk(p->ref, p->ref_len, &ro, &rt, &rd, &rl)) &&
		       png_volatile(rt, rd, rl))
			;
		while ((ook = png_chunk(out, len, &oo, &ot, &od, &ol)) && png_volatile(ot, od, ol))
			;
		if (!rok || !ook)
			return !rok && !ook && ro == p->ref_len && oo == len;
		if (rl != ol || memcmp(rt, ot, 4) != 0 || memcmp(rd, od, rl) != 0)
			return false;
	}
}

static struct prog progs[] = {
    {.name = "gzip", .env = "BENCH_GZIP", .binary = "gzip", .args = {"-c"}, .check = check_gzip},
    {.name = "jq", .env = "BENCH_JQ", .binary = "jq", .args = {"."}, .check = check_exact},
    {.name = "convert",
     .env = "BENCH_CONVERT",
     .binary = "convert",
     .args = {"-", "-thumbnail", "64x64", "png:-"},
     .check = check_png64},
};
#define NPROGS (sizeof(progs) / sizeof(progs[0]))

/* argv of p behind prefix[0..npre); into argv (MAX_ARGS). */
static void build_argv(const struct prog *p, char **prefix, int npre, char **argv)
{
	int n = 0;

	for (int i = 0; i < npre; i++)
		argv[n++] = prefix[i];
	argv[n++] = p->path;
	for (int i = 0; p->args[i]; i++)
		argv[n++] = (char *)p->args[i];
	argv[n] = NULL;
}

/* Spawn argv with stdin from the input file, stdout a pipe we read; output and status. */
static int spawn_run(char **argv, const char *in, uint8_t **out, size_t *out_len, char *err,
		     size_t errlen)
{
	posix_spawn_file_actions_t fa;
	int pfd[2], st;
	pid_t pid;

	*out = NULL;
	*out_len = 0;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (e != 0) {
		close(pfd[0]);
		snprintf(err, errlen, "posix_spawn %s: %s", argv[0], strerror(e));
		return -1;
	}
	*out_len = read_all(pfd[0], out, err, errlen);
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(err, errlen, "waitpid: %s", strerror(errno));
			return -1;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, errlen, "%s: wait status 0x%x", argv[0], st);
		return -1;
	}
	return *out ? 0 : -1;
}

/* Send one line with one fd attached. */
static int send_with_fd(int sock, const char *line, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)line, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	memset(&u, 0, sizeof(u));
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	for (size_t off = 0; off < len;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		off += (size_t)n;
		iov.iov_base = (char *)line + off;
		iov.iov_len = len - off;
		mh.msg_control = NULL; /* the fd rode with the first bytes */
		mh.msg_controllen = 0;
	}
	return 0;
}

/* Receive one reply line into c (the line at c->buf, its length returned) and any fd. */
static size_t recv_line_fd(struct bench_conn *c, int *ret_fd, char *err, size_t errlen)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl)
			return (size_t)(nl - c->buf) + 1;
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 131072;
			char *nb = realloc(c->buf, c->cap);
			if (!nb) {
				snprintf(err, errlen, "out of memory");
				return 0;
			}
			c->buf = nb;
		}
		union {
			char buf[CMSG_SPACE(sizeof(int) * 4)];
			struct cmsghdr align;
		} u;
		struct iovec iov = {.iov_base = c->buf + c->len, .iov_len = c->cap - c->len};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf)};
		ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "read from corrald: %s", n ? strerror(errno) : "EOF");
			return 0;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (*ret_fd < 0)
					*ret_fd = fd;
				else
					close(fd);
			}
		}
		c->len += (size_t)n;
	}
}

/* One call through corrald; its result bytes. */
static int corral_run(struct bench_conn *c, const struct prog *p, int in_fd, uint8_t **out,
		      size_t *out_len, char *err, size_t errlen)
{
	char line[256];
	int rfd = -1;
	int len = snprintf(line, sizeof(line),
			   "{\"id\":%ld,\"cmd\":\"call\",\"type\":\"%s\",\"payload_fd\":true}\n",
			   c->next_id++, p->name);

	*out = NULL;
	*out_len = 0;
	if (send_with_fd(c->fd, line, (size_t)len, in_fd) < 0) {
		snprintf(err, errlen, "send to corrald: %s", strerror(errno));
		return -1;
	}
	size_t ll = recv_line_fd(c, &rfd, err, errlen);
	if (ll == 0)
		goto fail;
	json_error_t je;
	json_t *r = json_loadb(c->buf, ll - 1, 0, &je);
	memmove(c->buf, c->buf + ll, c->len - ll);
	c->len -= ll;
	if (!r || !json_is_true(json_object_get(r, "ok")) ||
	    !json_is_true(json_object_get(r, "result_fd")) || rfd < 0) {
		char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
		snprintf(err, errlen, "bad reply: %.200s", s ? s : je.text);
		free(s);
		json_decref(r);
		goto fail;
	}
	json_decref(r);
	if (lseek(rfd, 0, SEEK_SET) < 0) {
		snprintf(err, errlen, "lseek result: %s", strerror(errno));
		goto fail;
	}
	*out_len = read_all(rfd, out, err, errlen);
	close(rfd);
	return *out ? 0 : -1;
fail:
	if (rfd >= 0)
		close(rfd);
	return -1;
}

/* A client thread: n requests of one program through one driver, each checked. */
static void *job_main(void *arg)
{
	struct job *j = arg;
	struct prog *p = j->prog;
	struct bench_conn c = {.fd = -1};
	char *argv[MAX_ARGS];
	int in_fd = -1;

	if (j->drv == D_CORRAL) {
		if (bench_connect(&c, j->sock) < 0) {
			snprintf(j->err, sizeof(j->err), "connect: %s", strerror(errno));
			return NULL;
		}
		c.next_id = 1;
		in_fd = open(p->in, O_RDONLY | O_CLOEXEC);
		if (in_fd < 0) {
			snprintf(j->err, sizeof(j->err), "open %.400s: %s", p->in, strerror(errno));
			bench_conn_close(&c);
			return NULL;
		}
	} else if (j->drv == D_BWRAP) {
		build_argv(p, bwrap_argv_prefix, bwrap_argc, argv);
	} else {
		build_argv(p, NULL, 0, argv);
	}
	for (unsigned i = 0; i < j->n && !j->err[0]; i++) {
		uint8_t *out;
		size_t len;
		int r = j->drv == D_CORRAL
			    ? corral_run(&c, p, in_fd, &out, &len, j->err, sizeof(j->err))
			    : spawn_run(argv, p->in, &out, &len, j->err, sizeof(j->err));
		if (r == 0 && !p->check(p, out, len))
			snprintf(j->err, sizeof(j->err), "%s via %s: wrong output (%zu bytes)",
				 p->name, driver_names[j->drv], len);
		free(out);
	}
	if (in_fd >= 0)
		close(in_fd);
	if (j->drv == D_CORRAL)
		bench_conn_close(&c);
	return NULL;
}

/* n requests split over conc threads; seconds taken. */
static double run_batch(enum driver drv, struct prog *p, unsigned n, int conc, const char *sock)
{
	struct job jobs[MAX_CONC];
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < conc; i++) {
		jobs[i] = (struct job){.drv = drv,
				       .prog = p,
				       .n = n / (unsigned)conc + ((unsigned)i < n % (unsigned)conc),
				       .sock = sock};
		int e = pthread_create(&jobs[i].tid, NULL, job_main, &jobs[i]);
		if (e)
			bench_die("pthread_create: %s", strerror(e));
	}
	for (int i = 0; i < conc; i++)
		pthread_join(jobs[i].tid, NULL);
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	for (int i = 0; i < conc; i++)
		if (jobs[i].err[0])
			bench_die("%s via %s: %s", p->name, driver_names[drv], jobs[i].err);
	return secs;
}

/* bwrap's arguments up to the program: namespaces, read-only /usr and /etc, the root's links. */
static void bwrap_setup(void)
{
	static const char *const top[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
	static char targets[6][256];
	char **a = bwrap_argv_prefix;
	int n = 0;

	a[n++] = bwrap_path;
	static const char *const fixed[] = {"--unshare-user", "--unshare-pid", "--unshare-net",
					    "--unshare-ipc",  "--unshare-uts", "--die-with-parent",
					    "--ro-bind",      "/usr",	       "/usr",
					    "--ro-bind",      "/etc",	       "/etc"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		a[n++] = (char *)fixed[i];
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
		struct stat st;
		if (lstat(top[i], &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			ssize_t l = readlink(top[i], targets[i], sizeof(targets[i]) - 1);
			if (l <= 0)
				continue;
			targets[i][l] = '\0';
			a[n++] = "--symlink";
			a[n++] = targets[i];
		} else if (S_ISDIR(st.st_mode)) {
			a[n++] = "--ro-bind";
			a[n++] = (char *)top[i];
		} else {
			continue;
		}
		a[n++] = (char *)top[i];
	}
	static const char *const tail[] = {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"};
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
		a[n++] = (char *)tail[i];
	bwrap_argc = n;
}

/* Deterministic pseudo-random numbers (xorshift). */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The inputs: 64 KiB of text for gzip, a 16 KiB JSON document, a 256x256 PNG. */
static void make_inputs(void)
{
	static const char *const words[] = {"corral", "worker", "sandbox", "ring",   "daemon",
					    "pool",   "call",	"payload", "result", "spawn",
					    "queue",  "reply",	"socket",  "memfd",  "seccomp"};
	uint64_t s = 0x9e3779b97f4a7c15u;
	char *buf = malloc(65536 + 64);
	size_t len = 0;

	/* gzip: words with random numbers, about 3:1 compressible. */
	while (len < 65536) {
		len += (size_t)snprintf(buf + len, 64, "%s %llu%c", words[rnd(&s) % 15],
					(unsigned long long)(rnd(&s) % 100000),
					rnd(&s) % 8 ? ' ' : '\n');
	}
	snprintf(progs[0].in, sizeof(progs[0].in), "%s/in.txt", tmpdir);
	write_file(progs[0].in, buf, 65536);

	/* jq: an array of small objects, 16 KiB. */
	len = (size_t)snprintf(buf, 64, "[");
	for (int i = 0;; i++) {
		char item[200];
		int n = snprintf(
		    item, sizeof(item),
		    "%s{\"id\":%d,\"name\":\"%s-%llu\",\"tags\":[\"%s\",\"%s\"],"
		    "\"score\":%llu.%02llu,\"ok\":%s}",
		    i ? "," : "", i, words[rnd(&s) % 15], (unsigned long long)(rnd(&s) % 1000),
		    words[rnd(&s) % 15], words[rnd(&s) % 15], (unsigned long long)(rnd(&s) % 1000),
		    (unsigned long long)(rnd(&s) % 100), rnd(&s) % 2 ? "true" : "false");
		if (len + (size_t)n + 2 > 16384)
			break;
		memcpy(buf + len, item, (size_t)n);
		len += (size_t)n;
	}
	while (len < 16383)
		buf[len++] = ' ';
	buf[len++] = ']';
	snprintf(progs[1].in, sizeof(progs[1].in), "%s/in.json", tmpdir);
	write_file(progs[1].in, buf, len);
	free(buf);

	/* convert: a 256x256 picture made by convert itself, deterministic. */
	snprintf(progs[2].in, sizeof(progs[2].in), "%s/in.png", tmpdir);
	if (progs[2].path) {
		char out[420];
		snprintf(out, sizeof(out), "png:%s", progs[2].in);
		char *argv[] = {progs[2].path, "-seed",	      "1",    "-size",
				"256x256",     "plasma:",     "+set", "date:create",
				"+set",	       "date:modify", out,    NULL};
		uint8_t *o;
		size_t ol;
		char err[256] = "";
		if (spawn_run(argv, "/dev/null", &o, &ol, err, sizeof(err)) < 0)
			bench_die("making the PNG input: %s", err);
		free(o);
	}
}

/* The corrald config: one stdio type per program, 8 warm sandboxed workers each. */
static char *make_config(bool *used)
{
	char *cfg = malloc(16384);
	size_t len = (size_t)snprintf(cfg, 16384, "{\"types\": {");
	bool first = true;

	for (size_t i = 0; i < NPROGS; i++) {
		if (!used[i])
			continue;
		len += (size_t)snprintf(cfg + len, 16384 - len,
					"%s\n \"%s\": {\"mode\": \"stdio\", "
					"\"exec\": [\"%s\"",
					first ? "" : ",", progs[i].name, progs[i].path);
		for (int k = 0; progs[i].args[k]; k++)
			len +=
			    (size_t)snprintf(cfg + len, 16384 - len, ", \"%s\"", progs[i].args[k]);
		len += (size_t)snprintf(cfg + len, 16384 - len,
					"], \"pool\": {\"min\": %d, \"max\": %d, \"queue\": 1024}}",
					POOL_WORKERS, POOL_WORKERS);
		first = false;
	}
	snprintf(cfg + len, 16384 - len, "\n}}\n");
	return cfg;
}

/* Wait until every type has its min workers idle; log the sandbox layers. */
static void wait_warm(struct bench_daemon *d, size_t ntypes)
{
	struct bench_conn c;

	if (bench_connect(&c, d->sock) < 0)
		bench_die("connect: %s", strerror(errno));
	for (int i = 0;; i++) {
		json_t *r = bench_request(&c, false, "\"cmd\":\"types\"");
		json_t *ts = json_object_get(r, "types");
		size_t ready = 0;
		for (size_t k = 0; k < json_array_size(ts); k++) {
			json_t *t = json_array_get(ts, k);
			json_int_t w = json_integer_value(json_object_get(t, "workers"));
			json_int_t b = json_integer_value(json_object_get(t, "busy"));
			if (w >= POOL_WORKERS && b == 0)
				ready++;
			if (i == 0) {
				json_t *m =
				    json_object_get(json_object_get(t, "sandbox"), "missing");
				char *s = json_dumps(m, JSON_COMPACT);
				bench_log("type %s: sandbox layers missing: %s",
					  json_string_value(json_object_get(t, "name")),
					  s ? s : "?");
				free(s);
			}
		}
		json_decref(r);
		if (ready >= ntypes)
			break;
		if (i > 30000)
			bench_die("the stdio pools never came up");
		bench_sleep_ms(1);
	}
	bench_conn_close(&c);
}

/* The reference output of p: one bare run. */
static void make_reference(struct prog *p)
{
	char *argv[MAX_ARGS];
	char err[256] = "";

	build_argv(p, NULL, 0, argv);
	if (spawn_run(argv, p->in, &p->ref, &p->ref_len, err, sizeof(err)) < 0)
		bench_die("reference run of %s: %s", p->name, err);
	if (!p->check(p, p->ref, p->ref_len))
		bench_die("reference run of %s: unexpected output (%zu bytes)", p->name,
			  p->ref_len);
}

/* Remove the inputs and the directory. */
static void cleanup_inputs(void)
{
	for (size_t i = 0; i < NPROGS; i++)
		if (progs[i].in[0])
			unlink(progs[i].in);
	rmdir(tmpdir);
}

int main(void)
{
	struct bench_daemon d;
	bool used[NPROGS] = {0};
	const char *list = getenv("WORKLOAD_PROGS");
	unsigned n = getenv("WORKLOAD_N") ? (unsigned)atoi(getenv("WORKLOAD_N")) : 1000;
	unsigned rounds = getenv("WORKLOAD_ROUNDS") ? (unsigned)atoi(getenv("WORKLOAD_ROUNDS")) : 4;
	static const int concs[] = {1, 8};

	bench_prog = "bench-workload";
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (n < 8)
		n = 8;
	if (rounds < 1 || rounds > n / 8)
		rounds = 1;
	char *corrald = bench_path("CORRALD", "../daemon/corrald");
	bwrap_path = bench_which("BENCH_BWRAP", "bwrap");
	if (!bwrap_path)
		bench_die("bwrap not found (Debian package bubblewrap; or set BENCH_BWRAP)");
	bwrap_setup();

	size_t nused = 0;
	for (size_t i = 0; i < NPROGS; i++) {
		if (list && !strstr(list, progs[i].name))
			continue;
		progs[i].path = bench_which(progs[i].env, progs[i].binary);
		if (!progs[i].path)
			bench_die("%s not found (set %s)", progs[i].binary, progs[i].env);
		used[i] = true;
		nused++;
		bench_log("%s: %s", progs[i].name, progs[i].path);
	}
	if (nused == 0)
		bench_die("WORKLOAD_PROGS names no program (have gzip, jq, convert)");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bench-workload.XXXXXX");
	if (!mkdtemp(tmpdir))
		bench_die("mkdtemp: %s", strerror(errno));
	/* Readable by the sandboxed workers' user. */
	chmod(tmpdir, 0755);
	make_inputs();
	for (size_t i = 0; i < NPROGS; i++)
		if (used[i])
			make_reference(&progs[i]);

	char *cfg = make_config(used);
	bench_daemon_start(&d, corrald, cfg, 4096);
	free(cfg);
	wait_warm(&d, nused);

	for (size_t i = 0; i < NPROGS; i++) {
		struct prog *p = &progs[i];
		double ratio_bwrap = 1, ratio_bare = 1;

		if (!used[i])
			continue;
		for (size_t ci = 0; ci < sizeof(concs) / sizeof(concs[0]); ci++) {
			int conc = concs[ci];
			double secs[D_COUNT] = {0};

			bench_log("%s, concurrency %d: %u requests per driver in %u rounds",
				  p->name, conc, n, rounds);
			/* Warm-up: page cache, the pool's workers, bwrap's own start. */
			for (int dv = 0; dv < D_COUNT; dv++)
				run_batch((enum driver)dv, p, (unsigned)conc * 2, conc, d.sock);
			for (unsigned r = 0; r < rounds; r++) {
				unsigned nr = n / rounds + (r < n % rounds);
				for (int dv = 0; dv < D_COUNT; dv++)
					secs[dv] += run_batch((enum driver)dv, p, nr, conc, d.sock);
			}
			for (int dv = 0; dv < D_COUNT; dv++)
				printf("BENCH workload_%s_%s_c%d %.1f req/s\n", driver_names[dv],
				       p->name, conc, n / secs[dv]);
			double rb = secs[D_BWRAP] / secs[D_CORRAL],
			       rr = secs[D_BARE] / secs[D_CORRAL];
			printf("RATIO workload_corral_vs_bwrap_%s_c%d %.3f\n", p->name, conc, rb);
			printf("RATIO workload_corral_vs_bare_%s_c%d %.3f\n", p->name, conc, rr);
			ratio_bwrap *= rb;
			ratio_bare *= rr;
		}
		printf("RATIO workload_corral_vs_bwrap_%s %.3f\n", p->name, sqrt(ratio_bwrap));
		printf("RATIO workload_corral_vs_bare_%s %.3f\n", p->name, sqrt(ratio_bare));
		free(p->ref);
	}

	bench_daemon_stop(&d, 20000);
	cleanup_inputs();
	for (size_t i = 0; i < NPROGS; i++)
		free(progs[i].path);
	free(bwrap_path);
	free(corrald);
	return 0;
}
