/*
 * test_cli.c - corralctl without a daemon: usage errors, help, connection
 * failure, and a fake corrald (this process, on a temporary UNIX socket) that
 * checks each request line and answers it, while corralctl runs as a child.
 *
 * corralctl's stdout and stderr go to memfds, read once it has exited, so
 * nothing here needs a sleep to synchronise: accept() and read() block until
 * corralctl gets there, waitpid() until it is done.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 32

/* A fake corrald: a temporary directory holding a listening socket. */
struct server {
	char dir[64];
	char path[128];
	int lfd;
};

/* A finished corralctl: exit status, stdout and stderr (NUL-terminated). */
struct run {
	int status;
	char *out;
	size_t outlen;
	char *err;
	size_t errlen;
};

/* A corralctl still running, with the memfds holding its output. */
struct child {
	pid_t pid;
	int outfd;
	int errfd;
};

/* One request line as the fake server received it, and the fds that came with it. */
struct request {
	json_t *obj;
	int fds[8];
	size_t nfds;
};

/* The corralctl binary under test. */
static const char *ctl_path(void)
{
	const char *p = getenv("CORRALCTL");

	ck_assert_msg(p && *p, "CORRALCTL is not set");
	return p;
}

/* Start listening on a fresh socket in a fresh temporary directory. */
static void server_start(struct server *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	strcpy(s->dir, "/tmp/corralctl-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/corrald.sock", s->dir);
	strcpy(sa.sun_path, s->path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s->lfd, 0);
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(s->lfd, 4), 0);
}

/* Stop listening and remove the socket and its directory. */
static void server_stop(struct server *s)
{
	close(s->lfd);
	unlink(s->path);
	rmdir(s->dir);
}

/* Accept corralctl's connection. */
static int server_accept(struct server *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Read one request line byte by byte (keeping what follows unread), with its fds. */
static void server_read(int cfd, struct request *req)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	json_error_t err;

	ck_assert_ptr_nonnull(buf);
	req->nfds = 0;
	for (;;) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 8)];
		} cbuf;
		struct iovec iov = {buf + len, 1};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf.b,
				     .msg_controllen = sizeof(cbuf.b)};
		ssize_t n = recvmsg(cfd, &msg, MSG_CMSG_CLOEXEC);

		ck_assert_int_eq(n, 1);
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			ck_assert_int_eq(cm->cmsg_type, SCM_RIGHTS);
			ck_assert_uint_le(req->nfds + nfds, 8);
			memcpy(req->fds + req->nfds, CMSG_DATA(cm), nfds * sizeof(int));
			req->nfds += nfds;
		}
		if (buf[len] == '\n')
			break;
		if (++len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	req->obj = json_loadb(buf, len, 0, &err);
	ck_assert_msg(req->obj != NULL, "bad request line: %s", err.text);
	ck_assert(json_is_object(req->obj));
	free(buf);
}

/* Release a request's object and fds. */
static void request_free(struct request *req)
{
	json_decref(req->obj);
	for (size_t i = 0; i < req->nfds; i++)
		close(req->fds[i]);
}

/* Send raw bytes, with fd (if >= 0) riding on the first byte. */
static void server_send_raw(int cfd, const char *data, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cbuf;
	size_t off = 0;

	while (off < len) {
		struct iovec iov = {(char *)data + off, len - off};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (fd >= 0 && off == 0) {
			struct cmsghdr *cm;

			memset(&cbuf, 0, sizeof(cbuf));
			msg.msg_control = cbuf.b;
			msg.msg_controllen = sizeof(cbuf.b);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		}
		n = sendmsg(cfd, &msg, MSG_NOSIGNAL);
		if (n < 0)
			return; /* corralctl may have given up already */
		off += (size_t)n;
	}
}

/* Send one reply line (printf format, newline added), fd riding with it. */
static void __attribute__((format(printf, 3, 4)))
server_reply(int cfd, int fd, const char *fmt, ...)
{
	char *line;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	server_send_raw(cfd, line, (size_t)n, fd);
	server_send_raw(cfd, "\n", 1, -1);
	free(line);
}

/*
 * When set, corralctl runs in a mount namespace of its own with an empty
 * tmpfs on /run: it may look for the default socket without ever touching
 * the real one (a corrald may be serving there while the tests run).
 * Exit status 125 says the namespace could not be made.
 */
static bool child_private_run;

/* Start corralctl with args (NULL-terminated), stdin from in_fd (-1: /dev/null), stdout to out_fd
 * (-1: a memfd). */
static void child_start(struct child *c, int in_fd, int out_fd, const char *arg, ...)
{
	const char *argv[MAX_ARGS];
	size_t n = 0;
	va_list ap;

	argv[n++] = "corralctl";
	va_start(ap, arg);
	for (; arg && n < MAX_ARGS - 1; arg = va_arg(ap, const char *))
		argv[n++] = arg;
	va_end(ap);
	argv[n] = NULL;

	c->outfd = out_fd >= 0 ? -1 : memfd_create("out", MFD_CLOEXEC);
	c->errfd = memfd_create("err", MFD_CLOEXEC);
	ck_assert_int_ge(c->errfd, 0);
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);

		dup2(in, 0);
		dup2(out_fd >= 0 ? out_fd : c->outfd, 1);
		dup2(c->errfd, 2);
		if (child_private_run &&
		    (unshare(CLONE_NEWNS) < 0 ||
		     mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		     mount("tmpfs", "/run", "tmpfs", 0, "size=64k,mode=0755") < 0))
			_exit(125);
		execv(ctl_path(), (char *const *)argv);
		_exit(127);
	}
}

/* Read a whole memfd from offset 0 into a new NUL-terminated string. */
static char *slurp(int fd, size_t *ret_len)
{
	struct stat st;
	char *buf;

	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	buf[st.st_size] = '\0';
	*ret_len = (size_t)st.st_size;
	return buf;
}

/* Wait for corralctl to exit and collect its status and output. */
static void child_finish(struct child *c, struct run *r)
{
	int status;

	ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
	ck_assert_msg(WIFEXITED(status), "corralctl died of signal %d", WTERMSIG(status));
	r->status = WEXITSTATUS(status);
	r->out = c->outfd >= 0 ? slurp(c->outfd, &r->outlen) : strdup("");
	r->err = slurp(c->errfd, &r->errlen);
	if (c->outfd >= 0)
		close(c->outfd);
	close(c->errfd);
}

/* Release a run's output. */
static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Run corralctl to completion with no server and no stdin. */
#define RUN(r, ...)                                                                                \
	do {                                                                                       \
		struct child c_;                                                                   \
		child_start(&c_, -1, -1, __VA_ARGS__, NULL);                                       \
		child_finish(&c_, (r));                                                            \
	} while (0)

/* Assert r is a usage error: exit 2, one line on stderr naming the help to read, no stdout. */
static void assert_usage(const struct run *r)
{
	ck_assert_msg(r->status == 2, "exit %d, stderr: %s", r->status, r->err);
	ck_assert_msg(r->errlen > 0 && strchr(r->err, '\n') == r->err + r->errlen - 1,
		      "not one line: [%s]", r->err);
	ck_assert_msg(strncmp(r->err, "corralctl: ", 11) == 0, "stderr: [%s]", r->err);
	ck_assert_msg(strstr(r->err, "(see 'corralctl help"), "no hint: [%s]", r->err);
	ck_assert_uint_eq(r->outlen, 0);
}

/* Assert a usage error (see assert_usage). */
#define ASSERT_USAGE(...)                                                                          \
	do {                                                                                       \
		struct run r_;                                                                     \
		RUN(&r_, "--socket", "/nonexistent/corrald.sock", __VA_ARGS__);                    \
		assert_usage(&r_);                                                                 \
		run_free(&r_);                                                                     \
	} while (0)

/* Assert a usage error whose stderr is exactly want. */
#define ASSERT_USAGE_MSG(want, ...)                                                                \
	do {                                                                                       \
		struct run r_;                                                                     \
		RUN(&r_, "--socket", "/nonexistent/corrald.sock", __VA_ARGS__);                    \
		assert_usage(&r_);                                                                 \
		ck_assert_str_eq(r_.err, want);                                                    \
		run_free(&r_);                                                                     \
	} while (0)

/* The integer at obj[key], asserting it is one. */
static json_int_t jint(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

/* The string at obj[key], asserting it is one. */
static const char *jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

/* A memfd holding len bytes of a repeating, non-UTF-8 pattern. */
static int pattern_memfd(size_t len, unsigned seed)
{
	int fd = memfd_create("pattern", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	char *buf = malloc(len);

	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((i * 7 + seed + i / 251) & 0xff);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	free(buf);
	return fd;
}

/* No command, an unknown one, bad or missing arguments: exit 2 before connecting. */
START_TEST(test_usage_errors)
{
	struct run r;

	RUN(&r, "--socket", "/nonexistent/corrald.sock");
	assert_usage(&r);
	run_free(&r);
	ASSERT_USAGE("frobnicate");
	ASSERT_USAGE("logs", "1", "2");
	ASSERT_USAGE("describe");
	ASSERT_USAGE("restart");
	ASSERT_USAGE("restart", "1", "2");
	ASSERT_USAGE("stats", "a", "b");
	ASSERT_USAGE("top", "-s", "nope");
	ASSERT_USAGE("top", "-d", "0");
	ASSERT_USAGE("shutdown", "--wait=yes");
	ASSERT_USAGE("help", "frobnicate");
	ASSERT_USAGE("stop", "0");
	ASSERT_USAGE("logs", "--since", "5m3");
	ASSERT_USAGE("logs", "--since", "m");
	ASSERT_USAGE("logs", "--since", "");
	ASSERT_USAGE("logs", "--since", "-5s");
	ASSERT_USAGE("logs", "--since", "99999999999999999999s");
	ASSERT_USAGE("--bogus", "ping");
	ASSERT_USAGE("spawn");
	ASSERT_USAGE("spawn", "echo", "-n", "0");
	ASSERT_USAGE("spawn", "echo", "-n", "abc");
	ASSERT_USAGE("spawn", "echo", "-n");
	ASSERT_USAGE("kill", "abc");
	ASSERT_USAGE("kill");
	ASSERT_USAGE("kill", "3", "-s", "NOSUCHSIG");
	ASSERT_USAGE("stop");
	ASSERT_USAGE("stop", "1", "2");
	ASSERT_USAGE("stop", "7", "-t", "-5");
	ASSERT_USAGE("logs", "3", "-n", "-1");
	ASSERT_USAGE("call");
	ASSERT_USAGE("call", "echo", "a", "b");
	ASSERT_USAGE("ping", "extra");
	ASSERT_USAGE("list", "a", "b");
	ASSERT_USAGE("watch", "-x");
}
END_TEST

/* Each usage error names the problem, the flag as the user typed it, and the help to read. */
START_TEST(test_usage_messages)
{
	ASSERT_USAGE_MSG("corralctl: unknown command 'frobnicate' (see 'corralctl help')\n",
			 "frobnicate");
	ASSERT_USAGE_MSG("corralctl: missing command (see 'corralctl help')\n", "--json");
	ASSERT_USAGE_MSG("corralctl: unknown option --bogus (see 'corralctl help')\n", "--bogus",
			 "ping");
	ASSERT_USAGE_MSG("corralctl: spawn: missing TYPE (see 'corralctl help spawn')\n", "spawn");
	ASSERT_USAGE_MSG("corralctl: stop: missing ID|TYPE (see 'corralctl help stop')\n", "stop");
	ASSERT_USAGE_MSG("corralctl: spawn: option -n needs an argument (see 'corralctl help "
			 "spawn')\n",
			 "spawn", "echo", "-n");
	ASSERT_USAGE_MSG("corralctl: spawn: option --count needs an argument (see 'corralctl help "
			 "spawn')\n",
			 "spawn", "echo", "--count");
	ASSERT_USAGE_MSG("corralctl: spawn: invalid -n 'abc': not a number (see 'corralctl help "
			 "spawn')\n",
			 "spawn", "echo", "-n", "abc");
	ASSERT_USAGE_MSG("corralctl: spawn: invalid --count '0': must be 1 to 10000 (see "
			 "'corralctl help spawn')\n",
			 "spawn", "echo", "--count=0");
	ASSERT_USAGE_MSG("corralctl: spawn: invalid --cou '0': must be 1 to 10000 (see "
			 "'corralctl help spawn')\n",
			 "spawn", "echo", "--cou", "0");
	ASSERT_USAGE_MSG("corralctl: logs: invalid -n '100001': must be 0 to 100000 (see "
			 "'corralctl help logs')\n",
			 "logs", "-n100001");
	ASSERT_USAGE_MSG("corralctl: logs: invalid --since '5x': not a duration (such as 90s, 5m, "
			 "2h, 1d, 1500ms) (see 'corralctl help logs')\n",
			 "logs", "--since", "5x");
	ASSERT_USAGE_MSG("corralctl: stop: invalid worker id '0': must be 1 or more (see "
			 "'corralctl help stop')\n",
			 "stop", "0");
	ASSERT_USAGE_MSG("corralctl: logs: unknown option -x (see 'corralctl help logs')\n", "logs",
			 "-fx");
	ASSERT_USAGE_MSG("corralctl: list: option --json takes no argument (see 'corralctl help "
			 "list')\n",
			 "list", "--json=1");
	ASSERT_USAGE_MSG("corralctl: kill: unknown signal 'FOO' (see 'corralctl help kill')\n",
			 "kill", "1", "-s", "FOO");
	ASSERT_USAGE_MSG("corralctl: ping: unexpected argument 'extra' (see 'corralctl help "
			 "ping')\n",
			 "ping", "extra");
}
END_TEST

/* --help, COMMAND --help and --version print to stdout and exit 0. */
START_TEST(test_help)
{
	struct run r;

	RUN(&r, "--help");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: corralctl"));
	ck_assert_ptr_nonnull(strstr(r.out, "shutdown"));
	run_free(&r);

	RUN(&r, "-h");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: corralctl"));
	run_free(&r);

	RUN(&r, "--socket", "/nonexistent/corrald.sock", "spawn", "--help");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "spawn TYPE [-n N]"));
	ck_assert_uint_eq(r.errlen, 0);
	run_free(&r);

	RUN(&r, "--version");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "corralctl "));
	run_free(&r);
}
END_TEST

/* Assert text ends with a newline and no line is wider than 80 columns. */
static void assert_fits_80(const char *text)
{
	const char *p = text;

	ck_assert_msg(*text && text[strlen(text) - 1] == '\n', "no final newline: [%s]", text);
	while (*p) {
		size_t n = strcspn(p, "\n");

		ck_assert_msg(n <= 80, "line over 80 columns: [%.*s]", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

/* help, help COMMAND and COMMAND --help, for every command: stdout, exit 0, 80 columns. */
START_TEST(test_help_every_command)
{
	static const char *const cmds[] = {
	    "ping", "types", "list",  "describe", "spawn", "stop",   "kill",	 "restart",
	    "call", "logs",  "watch", "stats",	  "top",   "reload", "shutdown", "help"};
	struct run all, r;

	RUN(&all, "help");
	ck_assert_int_eq(all.status, 0);
	ck_assert_uint_eq(all.errlen, 0);
	assert_fits_80(all.out);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char want[64];

		ck_assert_msg(strstr(all.out, cmds[i]), "help does not list %s", cmds[i]);
		snprintf(want, sizeof(want), "usage: corralctl %s", cmds[i]);
		RUN(&r, "help", cmds[i]);
		ck_assert_msg(r.status == 0 && r.errlen == 0, "help %s: exit %d [%s]", cmds[i],
			      r.status, r.err);
		ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "help %s: [%s]", cmds[i],
			      r.out);
		assert_fits_80(r.out);
		run_free(&r);
		RUN(&r, "--socket", "/nonexistent/corrald.sock", cmds[i], "--help");
		ck_assert_msg(r.status == 0 && r.errlen == 0, "%s --help: exit %d [%s]", cmds[i],
			      r.status, r.err);
		ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "%s --help: [%s]", cmds[i],
			      r.out);
		run_free(&r);
	}
	run_free(&all);
	/* Options are documented where they are taken. */
	RUN(&r, "help", "logs");
	ck_assert_ptr_nonnull(strstr(r.out, "--since"));
	run_free(&r);
	RUN(&r, "help", "shutdown");
	ck_assert_ptr_nonnull(strstr(r.out, "--wait"));
	run_free(&r);
}
END_TEST

/* A socket path nobody listens on: exit 3 naming the path. */
START_TEST(test_cannot_connect)
{
	struct run r;

	RUN(&r, "--socket", "/nonexistent/corrald.sock", "ping");
	ck_assert_int_eq(r.status, 3);
	ck_assert_str_eq(
	    r.err,
	    "corralctl: cannot connect to /nonexistent/corrald.sock: No such file or directory\n");
	run_free(&r);

	/* $CORRAL_SOCKET is the default when --socket is absent. */
	setenv("CORRAL_SOCKET", "/nonexistent/env.sock", 1);
	RUN(&r, "list");
	ck_assert_int_eq(r.status, 3);
	ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/env.sock"));
	run_free(&r);

	/*
	 * Else $XDG_RUNTIME_DIR/corral/corrald.sock, or /run/corral/corrald.sock
	 * for root: looked for in a /run of corralctl's own, never the real one.
	 */
	unsetenv("CORRAL_SOCKET");
	setenv("XDG_RUNTIME_DIR", "/nonexistent-xdg", 1);
	child_private_run = geteuid() == 0;
	RUN(&r, "stats");
	child_private_run = false;
	if (r.status == 125) {
		fprintf(stderr, "skipped: no private mount namespace for the root default path\n");
	} else {
		ck_assert_int_eq(r.status, 3);
		ck_assert_ptr_nonnull(strstr(r.err, geteuid() == 0
							? "/run/corral/corrald.sock"
							: "/nonexistent-xdg/corral/corrald.sock"));
	}
	run_free(&r);
}
END_TEST

/* ping: the request, and the human one-liner. */
START_TEST(test_ping)
{
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	int cfd;

	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "ping", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	ck_assert_str_eq(jstr(req.obj, "cmd"), "ping");
	ck_assert_uint_eq(json_object_size(req.obj), 2);
	server_reply(
	    cfd, -1,
	    "{\"id\":%lld,\"ok\":true,\"version\":\"0.1.0\",\"pid\":42,\"uptime_ms\":192000}",
	    (long long)jint(req.obj, "id"));
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "corrald 0.1.0 pid 42 up 3m12s\n");
	ck_assert_uint_eq(r.errlen, 0);
	run_free(&r);
	request_free(&req);
	close(cfd);
	server_stop(&s);
}
END_TEST

/*
 * Run corralctl with args against the fake server: the request comes back in
 * *req (caller frees), then reply_fmt (with %lld for the id) is sent.
 */
#define EXCHANGE(r, req, reply_fmt, ...)                                                           \
	do {                                                                                       \
		struct server s_;                                                                  \
		struct child c_;                                                                   \
		int cfd_;                                                                          \
		server_start(&s_);                                                                 \
		child_start(&c_, -1, -1, "--socket", s_.path, __VA_ARGS__, NULL);                  \
		cfd_ = server_accept(&s_);                                                         \
		server_read(cfd_, (req));                                                          \
		server_reply(cfd_, -1, reply_fmt, (long long)jint((req)->obj, "id"));              \
		child_finish(&c_, (r));                                                            \
		close(cfd_);                                                                       \
		server_stop(&s_);                                                                  \
	} while (0)

/* stop ID sends worker, stop TYPE sends type; the stopped ids are printed. */
START_TEST(test_stop)
{
	struct request req;
	struct run r;

	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"stopped\":[7]}", "stop", "7");
	ck_assert_str_eq(jstr(req.obj, "cmd"), "stop");
	ck_assert_int_eq(jint(req.obj, "worker"), 7);
	ck_assert_ptr_null(json_object_get(req.obj, "type"));
	ck_assert_ptr_null(json_object_get(req.obj, "timeout_ms"));
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "7\n");
	request_free(&req);
	run_free(&r);

	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"stopped\":[1,2]}", "stop", "echo", "-t",
		 "250");
	ck_assert_str_eq(jstr(req.obj, "type"), "echo");
	ck_assert_ptr_null(json_object_get(req.obj, "worker"));
	ck_assert_int_eq(jint(req.obj, "timeout_ms"), 250);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "1\n2\n");
	request_free(&req);
	run_free(&r);
}
END_TEST

/* kill sends the signal's name, whatever the spelling; KILL by default. */
START_TEST(test_kill)
{
	static const char *const spellings[][2] = {
	    {"TERM", "TERM"}, {"SIGTERM", "TERM"}, {"hup", "HUP"}, {"9", "KILL"}, {"15", "TERM"},
	};
	struct request req;
	struct run r;

	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true}", "kill", "3", "-s", spellings[i][0]);
		ck_assert_str_eq(jstr(req.obj, "cmd"), "kill");
		ck_assert_int_eq(jint(req.obj, "worker"), 3);
		ck_assert_str_eq(jstr(req.obj, "signal"), spellings[i][1]);
		ck_assert_int_eq(r.status, 0);
		ck_assert_uint_eq(r.outlen, 0);
		ck_assert_uint_eq(r.errlen, 0);
		request_free(&req);
		run_free(&r);
	}
	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true}", "kill", "12");
	ck_assert_int_eq(jint(req.obj, "worker"), 12);
	ck_assert_str_eq(jstr(req.obj, "signal"), "KILL");
	ck_assert_int_eq(r.status, 0);
	request_free(&req);
	run_free(&r);
}
END_TEST

/* spawn -n sends count; the ids come out one per line. */
START_TEST(test_spawn)
{
	struct request req;
	struct run r;

	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"workers\":[4,5,6]}", "spawn", "echo", "-n",
		 "3");
	ck_assert_str_eq(jstr(req.obj, "type"), "echo");
	ck_assert_int_eq(jint(req.obj, "count"), 3);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "4\n5\n6\n");
	request_free(&req);
	run_free(&r);
}
END_TEST

/* An error reply: exit 1 and "corralctl: CODE: message". */
START_TEST(test_error_reply)
{
	struct request req;
	struct server s;
	struct child c;
	struct run r;
	int cfd;

	EXCHANGE(&r, &req,
		 "{\"id\":%lld,\"ok\":false,\"error\":{\"code\":\"no_such_worker\",\"message\":"
		 "\"no worker 9\"}}",
		 "stop", "9");
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.err, "corralctl: no_such_worker: no worker 9\n");
	ck_assert_uint_eq(r.outlen, 0);
	request_free(&req);
	run_free(&r);

	/* A connection-level error carries "id": null; it is still ours. */
	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "types", NULL);
	cfd = server_accept(&s);
	server_reply(cfd, -1,
		     "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"permission_denied\","
		     "\"message\":\"uid 1000 may not connect\"}}");
	close(cfd);
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.err, "corralctl: permission_denied: uid 1000 may not connect\n");
	run_free(&r);
	server_stop(&s);
}
END_TEST

/* Lines for other ids are skipped; --json prints the reply line as received. */
START_TEST(test_other_ids_and_json)
{
	static const char reply[] =
	    "{\"id\":1, \"ok\":true, \"version\":\"9.9\", \"pid\":7, \"uptime_ms\":3400}";
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	int cfd;

	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "--json", "ping", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	ck_assert_int_eq(jint(req.obj, "id"), 1);
	server_reply(cfd, -1, "{\"id\":77,\"ok\":true,\"version\":\"wrong\"}");
	server_reply(cfd, -1, "{\"id\":\"1\",\"ok\":true,\"version\":\"wrong\"}");
	server_reply(cfd, -1, "%s", reply);
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(
	    r.out, "{\"id\":1, \"ok\":true, \"version\":\"9.9\", \"pid\":7, \"uptime_ms\":3400}\n");
	run_free(&r);
	request_free(&req);
	close(cfd);
	server_stop(&s);
}
END_TEST

/* corrald closing before the reply is an error, as is a reply line over 1 MiB. */
START_TEST(test_closed_and_too_long)
{
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	char *junk;
	int cfd;

	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "stats", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	server_send_raw(cfd, "{\"id\":1,\"ok\":tr", 15, -1);
	close(cfd);
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.err, "corralctl: connection closed by corrald\n");
	run_free(&r);
	request_free(&req);

	child_start(&c, -1, -1, "--socket", s.path, "stats", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	junk = malloc(1024 * 1024 + 2);
	ck_assert_ptr_nonnull(junk);
	memset(junk, ' ', 1024 * 1024 + 2);
	server_send_raw(cfd, junk, 1024 * 1024 + 2, -1);
	free(junk);
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(strstr(r.err, "longer than"));
	run_free(&r);
	request_free(&req);
	close(cfd);
	server_stop(&s);
}
END_TEST

/* call TYPE DATA sends payload; the result string comes out raw. */
START_TEST(test_call_data)
{
	struct request req;
	struct run r;

	EXCHANGE(&r, &req,
		 "{\"id\":%lld,\"ok\":true,\"worker\":1,\"duration_us\":12,\"result\":"
		 "\"HELLO\\u0000!\"}",
		 "call", "echo", "hello", "-k", "tenant1", "-t", "500");
	ck_assert_str_eq(jstr(req.obj, "cmd"), "call");
	ck_assert_str_eq(jstr(req.obj, "type"), "echo");
	ck_assert_str_eq(jstr(req.obj, "payload"), "hello");
	ck_assert_str_eq(jstr(req.obj, "key"), "tenant1");
	ck_assert_int_eq(jint(req.obj, "timeout_ms"), 500);
	ck_assert_int_eq(req.nfds, 0);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(r.outlen, 7);
	ck_assert_mem_eq(r.out, "HELLO\0!", 7);
	request_free(&req);
	run_free(&r);

	/* result_b64 is decoded. */
	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"result_b64\":\"AP8Kb2s=\"}", "call", "echo",
		 "x");
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(r.outlen, 5);
	ck_assert_mem_eq(r.out, "\x00\xff\nok", 5);
	request_free(&req);
	run_free(&r);
}
END_TEST

/* call with result_fd: the memfd's bytes, from offset 0, are stdout. */
START_TEST(test_call_result_fd)
{
	const size_t len = 300 * 1024;
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	int cfd, fd;
	char *want;

	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "call", "sha256", "abc", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	fd = pattern_memfd(len, 3); /* its offset is at the end: corralctl must read from 0 */
	server_reply(cfd, fd,
		     "{\"id\":%lld,\"ok\":true,\"worker\":2,\"duration_us\":5,\"result_fd\":true}",
		     (long long)jint(req.obj, "id"));
	child_finish(&c, &r);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_uint_eq(r.outlen, len);
	want = malloc(len);
	ck_assert_int_eq(pread(fd, want, len, 0), (ssize_t)len);
	ck_assert_mem_eq(r.out, want, len);
	free(want);
	close(fd);
	run_free(&r);
	request_free(&req);
	close(cfd);
	server_stop(&s);
}
END_TEST

/* The fd rides with its own reply line, not with lines for other ids before it. */
START_TEST(test_call_result_fd_among_other_lines)
{
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	int cfd, decoy, fd;
	json_int_t id;

	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "call", "echo", "abc", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	id = jint(req.obj, "id");
	decoy = pattern_memfd(10, 1);
	fd = pattern_memfd(0, 0);
	ck_assert_int_eq(write(fd, "the result", 10), 10);
	server_reply(cfd, -1, "{\"id\":%lld,\"event\":{}}", (long long)id + 100);
	server_reply(cfd, decoy, "{\"id\":%lld,\"ok\":true,\"result_fd\":true}", (long long)id + 1);
	server_reply(cfd, -1, "{\"id\":%lld,\"event\":{}}", (long long)id + 100);
	server_reply(cfd, fd, "{\"id\":%lld,\"ok\":true,\"result_fd\":true}", (long long)id);
	child_finish(&c, &r);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_str_eq(r.out, "the result");
	close(decoy);
	close(fd);
	run_free(&r);
	request_free(&req);
	close(cfd);
	server_stop(&s);
}
END_TEST

/* Fork a process that writes len pattern bytes into a pipe; returns the read end. */
static int pipe_feeder(const char *data, size_t len, pid_t *ret_pid)
{
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	*ret_pid = fork();
	ck_assert_int_ge(*ret_pid, 0);
	if (*ret_pid == 0) {
		size_t off = 0;

		close(p[0]);
		while (off < len) {
			ssize_t n = write(p[1], data + off, len - off);

			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

/* Assert fd is a memfd sealed against write, grow and shrink holding exactly want. */
static void assert_sealed_payload(int fd, const char *want, size_t len)
{
	int seals = fcntl(fd, F_GET_SEALS);
	size_t got_len;
	char *got;

	ck_assert_int_ge(seals, 0);
	ck_assert_int_eq(seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK),
			 F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK);
	got = slurp(fd, &got_len);
	ck_assert_uint_eq(got_len, len);
	ck_assert_mem_eq(got, want, len);
	free(got);
}

/* call with 200 KiB on a pipe: payload_fd true and a sealed memfd with exactly those bytes. */
START_TEST(test_call_large_stdin)
{
	const size_t len = 200 * 1024;
	char *data = malloc(len);
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	int cfd, in, st;
	pid_t feeder;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 31 + 7);
	server_start(&s);
	in = pipe_feeder(data, len, &feeder);
	child_start(&c, in, -1, "--socket", s.path, "call", "sha256", NULL);
	close(in);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	ck_assert(json_is_true(json_object_get(req.obj, "payload_fd")));
	ck_assert_ptr_null(json_object_get(req.obj, "payload"));
	ck_assert_ptr_null(json_object_get(req.obj, "payload_b64"));
	ck_assert_uint_eq(req.nfds, 1);
	assert_sealed_payload(req.fds[0], data, len);
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true,\"result\":\"done\"}",
		     (long long)jint(req.obj, "id"));
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "done");
	ck_assert_int_eq(waitpid(feeder, &st, 0), feeder);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	run_free(&r);
	request_free(&req);
	close(cfd);
	server_stop(&s);
	free(data);
}
END_TEST

/* Small stdin: UTF-8 inline as payload, binary as payload_b64; a regular file as a memfd. */
START_TEST(test_call_small_stdin)
{
	static const char text[] = "hi there\n";
	static const char bin[] = "a\0\xff";
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	int cfd, in, file, st;
	pid_t feeder;

	server_start(&s);

	in = pipe_feeder(text, sizeof(text) - 1, &feeder);
	child_start(&c, in, -1, "--socket", s.path, "call", "echo", NULL);
	close(in);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	ck_assert_str_eq(jstr(req.obj, "payload"), text);
	ck_assert_uint_eq(req.nfds, 0);
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true,\"result\":\"x\"}",
		     (long long)jint(req.obj, "id"));
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 0);
	waitpid(feeder, &st, 0);
	run_free(&r);
	request_free(&req);
	close(cfd);

	in = pipe_feeder(bin, 3, &feeder);
	child_start(&c, in, -1, "--socket", s.path, "call", "echo", NULL);
	close(in);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	ck_assert_str_eq(jstr(req.obj, "payload_b64"), "YQD/");
	ck_assert_ptr_null(json_object_get(req.obj, "payload"));
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true,\"result_b64\":\"\"}",
		     (long long)jint(req.obj, "id"));
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(r.outlen, 0);
	waitpid(feeder, &st, 0);
	run_free(&r);
	request_free(&req);
	close(cfd);

	/* stdin a regular file (a memfd), read from its current offset. */
	file = memfd_create("stdin", MFD_CLOEXEC);
	ck_assert_int_eq(write(file, "skip:payload", 12), 12);
	ck_assert_int_eq(lseek(file, 5, SEEK_SET), 5);
	child_start(&c, file, -1, "--socket", s.path, "call", "echo", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	ck_assert(json_is_true(json_object_get(req.obj, "payload_fd")));
	ck_assert_uint_eq(req.nfds, 1);
	assert_sealed_payload(req.fds[0], "payload", 7);
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true,\"result\":\"\"}",
		     (long long)jint(req.obj, "id"));
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 0);
	run_free(&r);
	request_free(&req);
	close(cfd);
	close(file);

	server_stop(&s);
}
END_TEST

/* stdout a pipe nobody reads: corralctl exits 0, quietly. */
START_TEST(test_epipe)
{
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	int cfd, p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	server_start(&s);
	child_start(&c, -1, p[1], "--socket", s.path, "call", "echo", "x", NULL);
	close(p[1]);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true,\"result\":\"lost\"}",
		     (long long)jint(req.obj, "id"));
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(r.errlen, 0);
	run_free(&r);
	request_free(&req);
	close(cfd);
	server_stop(&s);
}
END_TEST

/* list prints an aligned table in human units; list TYPE sends type. */
START_TEST(test_list)
{
	struct request req;
	struct run r;

	EXCHANGE(&r, &req,
		 "{\"id\":%lld,\"ok\":true,\"workers\":["
		 "{\"id\":1,\"pid\":4242,\"type\":\"echo\",\"key\":null,\"state\":\"idle\","
		 "\"uptime_ms\":3400,\"requests\":5,\"rss_kb\":2048,\"cpu_ms\":120},"
		 "{\"id\":12,\"pid\":77,\"type\":\"thumb\",\"key\":\"t1\",\"state\":\"busy\","
		 "\"uptime_ms\":3723000,\"requests\":1234,\"rss_kb\":900,\"cpu_ms\":61000}]}",
		 "list", "echo");
	ck_assert_str_eq(jstr(req.obj, "type"), "echo");
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "ID   PID  TYPE   KEY  STATE  UPTIME  REQS     RSS    CPU\n"
				" 1  4242  echo   -    idle     3.4s     5  2.0MiB  120ms\n"
				"12    77  thumb  t1   busy     1h2m  1234  900KiB   1m1s\n");
	request_free(&req);
	run_free(&r);
}
END_TEST

/* logs -f: the request's arguments, the lines, then events until corrald closes. */
START_TEST(test_logs_follow)
{
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	json_int_t id;
	int cfd;

	setenv("TZ", "UTC", 1);
	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "logs", "5", "-f", "-n", "10", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	id = jint(req.obj, "id");
	ck_assert_str_eq(jstr(req.obj, "cmd"), "logs");
	ck_assert_int_eq(jint(req.obj, "worker"), 5);
	ck_assert_int_eq(jint(req.obj, "lines"), 10);
	ck_assert(json_is_true(json_object_get(req.obj, "follow")));
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"ok\":true,\"lines\":[{\"worker\":5,\"stream\":\"stdout\","
		     "\"ts_ms\":1700000000123,\"text\":\"hello\"}]}",
		     (long long)id);
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"event\":{\"worker\":5,\"stream\":\"stderr\","
		     "\"ts_ms\":1700000001000,\"text\":\"oops \\u001b[31m\\n\"}}",
		     (long long)id);
	close(cfd);
	child_finish(&c, &r);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "2023-11-14T22:13:20.123 5 stdout hello\n"
				"2023-11-14T22:13:21.000 5 stderr oops \\x1b[31m\n");
	ck_assert_str_eq(r.err, "corralctl: connection closed by corrald\n");
	run_free(&r);
	request_free(&req);
	server_stop(&s);
}
END_TEST

/* watch: one line per event, the reason last. */
START_TEST(test_watch)
{
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	json_int_t id;
	int cfd;

	setenv("TZ", "UTC", 1);
	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "watch", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	id = jint(req.obj, "id");
	ck_assert_str_eq(jstr(req.obj, "cmd"), "watch");
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true}", (long long)id);
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"event\":{\"worker\":3,\"type\":\"echo\",\"pid\":99,"
		     "\"state\":\"idle\",\"ts_ms\":0}}",
		     (long long)id);
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"event\":{\"worker\":3,\"type\":\"echo\",\"pid\":99,"
		     "\"state\":\"exited\",\"reason\":\"killed by SIGSEGV\",\"ts_ms\":1000}}",
		     (long long)id);
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"event\":{\"worker\":4,\"type\":\"echo\",\"pid\":98,"
		     "\"state\":\"exited\",\"reason\":\"exited with status 0\",\"ts_ms\":2000}}",
		     (long long)id);
	close(cfd);
	child_finish(&c, &r);
	ck_assert_str_eq(r.out, "1970-01-01T00:00:00.000 3 echo 99 idle\n"
				"1970-01-01T00:00:01.000 3 echo 99 exited (killed by SIGSEGV)\n"
				"1970-01-01T00:00:02.000 4 echo 98 exited with status 0\n");
	ck_assert_int_eq(r.status, 1);
	run_free(&r);
	request_free(&req);
	server_stop(&s);
}
END_TEST

/* The daemon's final event ends a stream: a drain exits 0, a dropped follower 1, each saying why.
 */
START_TEST(test_watch_end)
{
	static const char *const why[] = {
	    "corrald is shutting down",
	    "dropped: this follower fell behind (300000 bytes of events unsent)"};
	for (int k = 0; k < 2; k++) {
		struct server s;
		struct request req;
		struct child c;
		struct run r;
		json_int_t id;
		int cfd;

		setenv("TZ", "UTC", 1);
		server_start(&s);
		child_start(&c, -1, -1, "--socket", s.path, "watch", NULL);
		cfd = server_accept(&s);
		server_read(cfd, &req);
		id = jint(req.obj, "id");
		server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true}", (long long)id);
		server_reply(cfd, -1,
			     "{\"id\":%lld,\"event\":{\"worker\":3,\"type\":\"echo\",\"pid\":99,"
			     "\"state\":\"idle\",\"ts_ms\":0}}",
			     (long long)id);
		server_reply(cfd, -1, "{\"id\":%lld,\"event\":{\"end\":\"%s\"}}", (long long)id,
			     why[k]);
		child_finish(&c, &r);
		close(cfd);
		ck_assert_str_eq(r.out, "1970-01-01T00:00:00.000 3 echo 99 idle\n");
		ck_assert_msg(strstr(r.err, why[k]) != NULL, "stderr: %s", r.err);
		ck_assert_int_eq(r.status, k == 0 ? 0 : 1);
		run_free(&r);
		request_free(&req);
		server_stop(&s);
	}
}
END_TEST

/* top on a non-tty: list then stats on one connection, one snapshot, exit 0. */
/* Run top (with sort, unless NULL) against canned types, list and stats replies. */
static void top_run(struct run *r, const char *sort)
{
	struct server s;
	struct request req[3];
	struct child c;
	int cfd;

	server_start(&s);
	if (sort)
		child_start(&c, -1, -1, "--socket", s.path, "top", "--sort", sort, NULL);
	else
		child_start(&c, -1, -1, "--socket", s.path, "top", NULL);
	cfd = server_accept(&s);
	/* types, list and stats, pipelined. */
	for (int i = 0; i < 3; i++)
		server_read(cfd, &req[i]);
	ck_assert_str_eq(jstr(req[0].obj, "cmd"), "types");
	ck_assert_str_eq(jstr(req[1].obj, "cmd"), "list");
	ck_assert_str_eq(jstr(req[2].obj, "cmd"), "stats");
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"ok\":true,\"types\":[{\"name\":\"echo\",\"mode\":\"builtin\","
		     "\"workers\":2,\"busy\":1,\"queued\":0}]}",
		     (long long)jint(req[0].obj, "id"));
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"ok\":true,\"workers\":[{\"id\":1,\"pid\":5,\"type\":\"echo\","
		     "\"key\":null,\"state\":\"idle\",\"uptime_ms\":1000,\"requests\":0,"
		     "\"rss_kb\":1,\"cpu_ms\":0},{\"id\":2,\"pid\":6,\"type\":\"echo\","
		     "\"key\":null,\"state\":\"busy\",\"uptime_ms\":1000,\"requests\":9,"
		     "\"rss_kb\":2048,\"cpu_ms\":500}]}",
		     (long long)jint(req[1].obj, "id"));
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"ok\":true,\"spawned\":2,\"exited\":0,\"crashed\":0,"
		     "\"restarts\":0,\"calls_ok\":3,\"calls_failed\":0,\"queued\":0,\"workers\":2,"
		     "\"call_p50_us\":800,\"call_p99_us\":2500,\"call_p999_us\":4000}",
		     (long long)jint(req[2].obj, "id"));
	child_finish(&c, r);
	for (int i = 0; i < 3; i++)
		request_free(&req[i]);
	close(cfd);
	server_stop(&s);
}

START_TEST(test_top_snapshot)
{
	struct run r;
	char *w1, *w2;

	top_run(&r, NULL);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "workers 2: 1 busy, 1 idle, 0 other"));
	ck_assert_ptr_nonnull(strstr(r.out, "calls 3 ok, 0 failed"));
	ck_assert_ptr_nonnull(strstr(r.out, "latency p50 800us  p99 2.5ms  p99.9 4.0ms\n"));
	ck_assert_ptr_nonnull(
	    strstr(r.out, "TYPE  MODE     WORKERS  BUSY  QUEUED  REQ/S  CPU%     RSS\n"
			  "echo  builtin        2     1       0      -  50.0  2.0MiB\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "ID  PID  TYPE  KEY  STATE"));
	ck_assert_ptr_null(strchr(r.out, '\033'));
	/* By id: worker 1 first. */
	w1 = strstr(r.out, "\n 1  ");
	w2 = strstr(r.out, "\n 2  ");
	ck_assert_msg(w1 && w2 && w1 < w2, "[%s]", r.out);
	run_free(&r);

	/* By CPU: the busier worker 2 first. */
	top_run(&r, "cpu");
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "sort cpu"));
	w1 = strstr(r.out, "\n 1  ");
	w2 = strstr(r.out, "\n 2  ");
	ck_assert_msg(w1 && w2 && w2 < w1, "[%s]", r.out);
	run_free(&r);
}
END_TEST

/* Read from the pty master until want has appeared after *off in buf (bounded by 10 s). */
static void pty_read_until(int master, char *buf, size_t cap, size_t *len, size_t *off,
			   const char *want)
{
	for (;;) {
		struct pollfd pfd = {master, POLLIN, 0};
		char *hit;
		ssize_t n;

		buf[*len] = '\0';
		hit = memmem(buf + *off, *len - *off, want, strlen(want));
		if (hit) {
			*off = (size_t)(hit - buf) + strlen(want);
			return;
		}
		ck_assert_msg(poll(&pfd, 1, 10000) == 1, "no [%s] in [%s]", want, buf);
		ck_assert_uint_lt(*len, cap - 1);
		n = read(master, buf + *len, cap - 1 - *len);
		ck_assert_msg(n > 0, "pty read: %zd (no [%s] in [%s])", n, want, buf);
		*len += (size_t)n;
	}
}

/*
 * top on a terminal: the alternate screen, a redraw on resize (SIGWINCH) with
 * no new request, 'q' quits and restores the screen.
 */
START_TEST(test_top_tty)
{
	static char buf[1 << 16];
	struct winsize ws = {.ws_row = 30, .ws_col = 100};
	struct request req[3];
	struct server s;
	size_t len = 0, off = 0;
	int master, slave, cfd, st;
	pid_t pid;

	server_start(&s);
	ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, &ws), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setsid();
		ioctl(slave, TIOCSCTTY, 0);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		execl(ctl_path(), "corralctl", "--socket", s.path, "top", "-d", "3600",
		      (char *)NULL);
		_exit(127);
	}
	close(slave);
	cfd = server_accept(&s);
	for (int i = 0; i < 3; i++)
		server_read(cfd, &req[i]);
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true,\"types\":[]}",
		     (long long)jint(req[0].obj, "id"));
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"ok\":true,\"workers\":[{\"id\":7,\"pid\":5,\"type\":\"echo\","
		     "\"key\":null,\"state\":\"idle\",\"uptime_ms\":1000,\"requests\":0,"
		     "\"rss_kb\":1,\"cpu_ms\":0}]}",
		     (long long)jint(req[1].obj, "id"));
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true,\"workers\":1}",
		     (long long)jint(req[2].obj, "id"));
	pty_read_until(master, buf, sizeof(buf), &len, &off, "\033[?1049h");
	pty_read_until(master, buf, sizeof(buf), &len, &off, "(q quit");
	pty_read_until(master, buf, sizeof(buf), &len, &off, "ID  PID");
	/* A resize redraws at once, from what it has: no request is sent. */
	ws.ws_col = 90;
	ck_assert_int_eq(ioctl(master, TIOCSWINSZ, &ws), 0);
	pty_read_until(master, buf, sizeof(buf), &len, &off, "\033[H\033[2J");
	pty_read_until(master, buf, sizeof(buf), &len, &off, "ID  PID");
	/* A sort key redraws too. */
	ck_assert_int_eq(write(master, "m", 1), 1);
	pty_read_until(master, buf, sizeof(buf), &len, &off, "sort rss");
	ck_assert_int_eq(write(master, "q", 1), 1);
	pty_read_until(master, buf, sizeof(buf), &len, &off, "\033[?1049l");
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x: [%s]", st, buf);
	for (int i = 0; i < 3; i++)
		request_free(&req[i]);
	close(master);
	close(cfd);
	server_stop(&s);
}
END_TEST

/* stats [TYPE]: counters in a fixed order, failures by cause, latency percentiles. */
START_TEST(test_stats)
{
	struct request req;
	struct run r;

	EXCHANGE(
	    &r, &req,
	    "{\"id\":%lld,\"ok\":true,\"spawned\":12,\"exited\":2,\"crashed\":1,\"restarts\":0,"
	    "\"calls_ok\":3,\"calls_failed\":5,\"queued\":0,\"workers\":10,"
	    "\"call_p50_us\":1500,\"call_p99_us\":800,\"call_p999_us\":2000000,"
	    "\"failures\":{\"timeout\":4,\"busy\":0,\"worker_crashed\":1},\"new_counter\":7}",
	    "stats", "echo");
	ck_assert_str_eq(jstr(req.obj, "type"), "echo");
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "workers           10\n"
				"queued            0\n"
				"spawned           12\n"
				"exited            2\n"
				"crashed           1\n"
				"restarts          0\n"
				"calls ok          3\n"
				"calls failed      5\n"
				"  timeout         4\n"
				"  worker_crashed  1\n"
				"call latency      p50 1.5ms  p99 800us  p99.9 2.0s\n"
				"new_counter       7\n");
	request_free(&req);
	run_free(&r);

	/* Without TYPE: the whole daemon's. */
	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"workers\":1}", "stats");
	ck_assert_ptr_null(json_object_get(req.obj, "type"));
	ck_assert_str_eq(r.out, "workers  1\n");
	request_free(&req);
	run_free(&r);
}
END_TEST

/* describe TYPE: the config flattened to paths, sandbox, backoff, workers, failures. */
START_TEST(test_describe)
{
	struct request req;
	struct run r;

	setenv("TZ", "UTC", 1);
	EXCHANGE(&r, &req,
		 "{\"id\":%lld,\"ok\":true,\"type\":{\"name\":\"thumb\",\"mode\":\"stdio\","
		 "\"exec\":[\"/usr/bin/convert\",\"-\"],\"pool\":{\"min\":1,\"max\":8}},"
		 "\"sandbox\":{\"active\":[\"pid\",\"net\"],\"missing\":[\"user\"]},"
		 "\"workers\":[{\"id\":4,\"pid\":99,\"type\":\"thumb\",\"key\":null,"
		 "\"state\":\"idle\",\"uptime_ms\":5000,\"requests\":1,\"rss_kb\":100,"
		 "\"cpu_ms\":3}],\"spares\":1,"
		 "\"backoff\":{\"active\":false,\"recent_crashes\":1},"
		 "\"last_failures\":[{\"ts_ms\":0,\"worker\":3,\"reason\":\"killed by SIGSEGV\"}]}",
		 "describe", "thumb");
	ck_assert_str_eq(jstr(req.obj, "cmd"), "describe");
	ck_assert_str_eq(jstr(req.obj, "type"), "thumb");
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_str_eq(r.out, "type             thumb\n"
				"mode             stdio\n"
				"exec             [\"/usr/bin/convert\",\"-\"]\n"
				"pool.min         1\n"
				"pool.max         8\n"
				"sandbox active   pid net\n"
				"sandbox missing  user\n"
				"backoff          off (1 recent crash)\n"
				"workers          1 worker, 1 spare\n"
				"\n"
				"ID  PID  TYPE   KEY  STATE  UPTIME  REQS     RSS  CPU\n"
				" 4   99  thumb  -    idle     5.0s     1  100KiB  3ms\n"
				"\n"
				"TIME                     WORKER  REASON\n"
				"1970-01-01T00:00:00.000       3  killed by SIGSEGV\n");
	request_free(&req);
	run_free(&r);

	/* Backoff active, no workers, no failures: the counts agree with their nouns. */
	EXCHANGE(&r, &req,
		 "{\"id\":%lld,\"ok\":true,\"type\":{},\"sandbox\":{\"active\":[],\"missing\":[]},"
		 "\"workers\":[],\"backoff\":{\"active\":true,\"recent_crashes\":6},"
		 "\"last_failures\":[]}",
		 "describe", "x");
	ck_assert_str_eq(r.out, "type             x\n"
				"sandbox active   -\n"
				"sandbox missing  -\n"
				"backoff          active (6 recent crashes)\n"
				"workers          0 workers\n"
				"\n"
				"no recent failures\n");
	request_free(&req);
	run_free(&r);
}
END_TEST

/* restart ID sends worker, restart TYPE sends type; the replaced ids are printed. */
START_TEST(test_restart)
{
	struct request req;
	struct run r;

	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"restarted\":[3,4]}", "restart", "echo");
	ck_assert_str_eq(jstr(req.obj, "cmd"), "restart");
	ck_assert_str_eq(jstr(req.obj, "type"), "echo");
	ck_assert_str_eq(r.out, "3\n4\n");
	ck_assert_int_eq(r.status, 0);
	request_free(&req);
	run_free(&r);

	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"restarted\":[9]}", "restart", "9");
	ck_assert_int_eq(jint(req.obj, "worker"), 9);
	ck_assert_ptr_null(json_object_get(req.obj, "type"));
	ck_assert_str_eq(r.out, "9\n");
	request_free(&req);
	run_free(&r);
}
END_TEST

/* logs without a target asks for every worker; --since becomes since_ms. */
/* Wall-clock ms as corralctl reads it: time() is the coarse clock, a tick behind. */
static long long wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(test_logs_all_since)
{
	struct request req;
	struct run r;
	long long before = wall_ms();

	setenv("TZ", "UTC", 1);
	EXCHANGE(&r, &req,
		 "{\"id\":%lld,\"ok\":true,\"lines\":[{\"worker\":1,\"stream\":\"stdout\","
		 "\"ts_ms\":0,\"text\":\"a\"},{\"worker\":2,\"stream\":\"stderr\",\"ts_ms\":1,"
		 "\"text\":\"b\\n\"}]}",
		 "logs", "--since", "1h30m");
	ck_assert_str_eq(jstr(req.obj, "cmd"), "logs");
	ck_assert_ptr_null(json_object_get(req.obj, "worker"));
	ck_assert_ptr_null(json_object_get(req.obj, "type"));
	ck_assert_int_ge(jint(req.obj, "since_ms"), before - 5400000 - 1000);
	ck_assert_int_le(jint(req.obj, "since_ms"), wall_ms() - 5400000 + 1000);
	ck_assert_str_eq(r.out, "1970-01-01T00:00:00.000 1 stdout a\n"
				"1970-01-01T00:00:00.001 2 stderr b\n");
	request_free(&req);
	run_free(&r);

	/* A bare number is seconds. */
	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"lines\":[]}", "logs", "--since=90");
	ck_assert_int_ge(jint(req.obj, "since_ms"), before - 90000 - 1000);
	ck_assert_int_le(jint(req.obj, "since_ms"), wall_ms() - 90000 + 1000);
	request_free(&req);
	run_free(&r);

	/* Units ms, s, m, h, d. */
	EXCHANGE(&r, &req, "{\"id\":%lld,\"ok\":true,\"lines\":[]}", "logs", "echo", "-S",
		 "1500ms");
	ck_assert_str_eq(jstr(req.obj, "type"), "echo");
	ck_assert_int_ge(jint(req.obj, "since_ms"), before - 1500 - 1000);
	ck_assert_uint_eq(r.outlen, 0);
	request_free(&req);
	run_free(&r);
}
END_TEST

/*
 * shutdown --wait: returns only once corrald is gone.  Here the fake corrald
 * reports another pid than its socket's peer, so corralctl waits for the
 * connection to close; it must not exit before.
 */
START_TEST(test_shutdown_wait)
{
	struct server s;
	struct request req;
	struct child c;
	struct run r;
	int cfd, st;

	server_start(&s);
	child_start(&c, -1, -1, "--socket", s.path, "shutdown", "--wait", "-t", "100", NULL);
	cfd = server_accept(&s);
	server_read(cfd, &req);
	ck_assert_str_eq(jstr(req.obj, "cmd"), "ping");
	server_reply(cfd, -1,
		     "{\"id\":%lld,\"ok\":true,\"pid\":1,\"version\":\"x\",\"uptime_ms\":1}",
		     (long long)jint(req.obj, "id"));
	request_free(&req);
	server_read(cfd, &req);
	ck_assert_str_eq(jstr(req.obj, "cmd"), "shutdown");
	ck_assert_int_eq(jint(req.obj, "timeout_ms"), 100);
	server_reply(cfd, -1, "{\"id\":%lld,\"ok\":true}", (long long)jint(req.obj, "id"));
	/* Still waiting: the connection is open. */
	ck_assert_int_eq(waitpid(c.pid, &st, WNOHANG), 0);
	close(cfd);
	child_finish(&c, &r);
	ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
	ck_assert_uint_eq(r.outlen, 0);
	run_free(&r);
	request_free(&req);
	server_stop(&s);
}
END_TEST

/* Tables cut to $COLUMNS with an ellipsis; numbers are never cut. */
START_TEST(test_table_fits)
{
	struct request req;
	struct run r;

	setenv("COLUMNS", "60", 1);
	EXCHANGE(
	    &r, &req,
	    "{\"id\":%lld,\"ok\":true,\"types\":[{\"name\":\"a-very-long-type-name\","
	    "\"mode\":\"stdio\",\"pool\":{\"min\":0,\"max\":4},\"workers\":1,\"busy\":0,"
	    "\"queued\":0,\"sandbox\":{\"active\":[\"pid\"],\"missing\":[\"user\",\"net\"]}}]}",
	    "types");
	unsetenv("COLUMNS");
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "NAME       MODE   MIN  MAX  WORKERS  BUSY  QUEUED  SANDBOX\n"
				"a-very-l…  stdio    0    4        1     0       0  no user,…\n");
	request_free(&req);
	run_free(&r);
}
END_TEST

/* The suite: everything runs without a daemon. */
static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("corralctl");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_usage_messages);
	tcase_add_test(tc, test_help_every_command);
	tcase_add_test(tc, test_help);
	tcase_add_test(tc, test_cannot_connect);
	tcase_add_test(tc, test_ping);
	tcase_add_test(tc, test_stop);
	tcase_add_test(tc, test_kill);
	tcase_add_test(tc, test_spawn);
	tcase_add_test(tc, test_error_reply);
	tcase_add_test(tc, test_other_ids_and_json);
	tcase_add_test(tc, test_closed_and_too_long);
	tcase_add_test(tc, test_call_data);
	tcase_add_test(tc, test_call_result_fd);
	tcase_add_test(tc, test_call_result_fd_among_other_lines);
	tcase_add_test(tc, test_call_large_stdin);
	tcase_add_test(tc, test_call_small_stdin);
	tcase_add_test(tc, test_epipe);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_logs_follow);
	tcase_add_test(tc, test_watch);
	tcase_add_test(tc, test_watch_end);
	tcase_add_test(tc, test_top_snapshot);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_describe);
	tcase_add_test(tc, test_restart);
	tcase_add_test(tc, test_logs_all_since);
	tcase_add_test(tc, test_shutdown_wait);
	tcase_add_test(tc, test_table_fits);
	tcase_add_test(tc, test_top_tty);
	suite_add_tcase(s, tc);
	return s;
}

/* Run the suite; non-zero exit when a test fails. */
int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	int failed;

	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
