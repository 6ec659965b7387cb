/*
 * harness.c - see harness.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "harness.h"

#define REPLY_TIMEOUT_MS 30000
#define START_TIMEOUT_MS 15000
#define MAX_DAEMONS	 8

/*
 * What cleanup needs of each daemon, kept here by value: the tests' struct hd
 * lives on their stack, gone by the time the teardown and atexit run.
 */
struct hreg {
	pid_t pid;
	bool reaped;
	char dir[64], sock[128], log[128];
};
static struct hreg daemons[MAX_DAEMONS];
static unsigned ndaemons;
static bool cleanup_registered;
static bool test_passed;

/* The registry entry of d (by its temp dir), or NULL. */
static struct hreg *reg_of(const struct hd *d)
{
	for (unsigned i = 0; i < ndaemons; i++)
		if (strcmp(daemons[i].dir, d->dir) == 0)
			return &daemons[i];
	return NULL;
}

/* Mirror d's process state into its registry entry. */
static void reg_sync(const struct hd *d)
{
	struct hreg *r = reg_of(d);
	if (r) {
		r->pid = d->pid;
		r->reaped = d->reaped;
	}
}

/* Read an environment path or fail the test. */
static const char *env_path(const char *name)
{
	const char *v = getenv(name);
	ck_assert_msg(v && *v, "$%s not set (run through meson test)", name);
	return v;
}

/* corrald binary. */
const char *h_corrald(void)
{
	return env_path("CORRALD");
}

/* corralctl binary. */
const char *h_corralctl(void)
{
	return env_path("CORRALCTL");
}

/* The native example worker. */
const char *h_upper(void)
{
	return env_path("UPPER");
}

/* Does this kernel have Landlock (ABI 1 or later), as the daemon's probe asks? */
bool h_landlock(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* ..._VERSION */) >= 1;
}

/* Heavy tests scale down under sanitizers or on request. */
bool h_small(void)
{
	const char *v = getenv("CORRAL_TEST_SMALL");
	if (v && *v && strcmp(v, "0") != 0)
		return true;
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#endif
#endif
	return getenv("ASAN_OPTIONS") != NULL || getenv("UBSAN_OPTIONS") != NULL;
}

/* Monotonic milliseconds. */
int64_t h_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep a few milliseconds (only between polls of state that has no event). */
static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* nftw callback: remove one entry. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Print the last bytes of a daemon's log to stderr (after a failed test). */
static void dump_log_tail(const char *dir, const char *logpath)
{
	struct hd tmp;
	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.log, sizeof(tmp.log), "%s", logpath);
	char *s = hd_log(&tmp);
	if (!s)
		return;
	size_t n = strlen(s);
	const char *p = n > 4000 ? s + n - 4000 : s;
	fprintf(stderr, "---- corrald log (%s) tail ----\n%s\n---- end ----\n", dir, p);
	free(s);
}

/* atexit: kill what is left, remove temp dirs; show logs when the test failed. */
static void cleanup_all(void)
{
	for (unsigned i = 0; i < ndaemons; i++) {
		struct hreg *d = &daemons[i];
		if (d->pid > 0 && !d->reaped) {
			int st;
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &st, 0);
			d->reaped = true;
		}
		if (!test_passed)
			dump_log_tail(d->dir, d->log);
		if (d->dir[0])
			nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	ndaemons = 0;
}

/* Checked teardown: runs only when the test function returned. */
static void h_teardown(void)
{
	for (unsigned i = 0; i < ndaemons; i++) {
		struct hreg *r = &daemons[i];
		if (r->pid <= 0 || r->reaped)
			continue;
		struct hd tmp;
		memset(&tmp, 0, sizeof(tmp));
		snprintf(tmp.dir, sizeof(tmp.dir), "%s", r->dir);
		snprintf(tmp.sock, sizeof(tmp.sock), "%s", r->sock);
		snprintf(tmp.log, sizeof(tmp.log), "%s", r->log);
		tmp.pid = r->pid;
		hd_stop(&tmp, false);
	}
	test_passed = true;
}

/* Write the config file from a va_list. */
static void write_config_v(struct hd *d, const char *fmt, va_list ap)
{
	char *s = NULL;
	ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
	FILE *f = fopen(d->cfg, "w");
	ck_assert_msg(f, "fopen %s: %s", d->cfg, strerror(errno));
	fputs(s, f);
	ck_assert_int_eq(fclose(f), 0);
	free(s);
}

/* Rewrite the config file. */
void hd_write_config(struct hd *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	write_config_v(d, fmt, ap);
	va_end(ap);
}

/* Initialise d: temp dir, paths, optional config. */
static void hd_init_v(struct hd *d, const char *fmt, va_list ap)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/corral-e2e-XXXXXX");
	ck_assert_msg(mkdtemp(d->dir), "mkdtemp: %s", strerror(errno));
	snprintf(d->sock, sizeof(d->sock), "%s/s.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
	if (fmt) {
		snprintf(d->cfg, sizeof(d->cfg), "%s/corral.json", d->dir);
		write_config_v(d, fmt, ap);
	}
	if (!cleanup_registered) {
		atexit(cleanup_all);
		cleanup_registered = true;
	}
	ck_assert_int_lt(ndaemons, MAX_DAEMONS);
	struct hreg *r = &daemons[ndaemons++];
	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "%s", d->dir);
	snprintf(r->sock, sizeof(r->sock), "%s", d->sock);
	snprintf(r->log, sizeof(r->log), "%s", d->log);
}

/* Public hd_init. */
void hd_init(struct hd *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hd_init_v(d, fmt, ap);
	va_end(ap);
}

/* Fork and exec corrald with args; stderr and stdout go to the log. */
pid_t hd_spawn(struct hd *d, const char *const *args)
{
	const char *argv[32];
	size_t n = 0;
	argv[n++] = h_corrald();
	for (; args && *args && n < 30; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int lfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (lfd < 0 || nfd < 0)
			_exit(127);
		dup2(nfd, 0);
		dup2(lfd, 1);
		dup2(lfd, 2);
		/* Under ASan, let SIGSEGV/SIGABRT kill workers as they would without it. */
		const char *ao = getenv("ASAN_OPTIONS");
		char aopts[1024];
		snprintf(aopts, sizeof(aopts), "%s%shandle_segv=0:handle_abort=0:handle_sigbus=0",
			 ao ? ao : "", ao && *ao ? ":" : "");
		setenv("ASAN_OPTIONS", aopts, 1);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/*
 * Does the daemon behind fd answer a ping (any reply line)?  A connection can
 * be accepted into the queue of a socket nobody will serve: the listening
 * socket of a killed predecessor, held a moment longer by a process it was
 * starting, until the successor replaces the file.
 */
static bool answers(int fd)
{
	static const char ping[] = "{\"id\":0,\"cmd\":\"ping\"}\n";
	char buf[512];
	if (send(fd, ping, sizeof(ping) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(ping) - 1))
		return false;
	struct pollfd p = {fd, POLLIN, 0};
	if (poll(&p, 1, 2000) != 1)
		return false;
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	return n > 0 && memchr(buf, '\n', (size_t)n);
}

/* Start the daemon on d's socket and config; wait until it answers on the socket. */
void hd_start(struct hd *d)
{
	const char *args[8];
	size_t n = 0;
	args[n++] = "--socket";
	args[n++] = d->sock;
	if (d->cfg[0]) {
		args[n++] = "--config";
		args[n++] = d->cfg;
	}
	args[n] = NULL;
	d->reaped = false;
	d->pid = hd_spawn(d, args);
	reg_sync(d);
	int64_t deadline = h_now_ms() + START_TIMEOUT_MS;
	for (;;) {
		int fd = h_connect_path(d->sock);
		if (fd >= 0 && answers(fd)) {
			close(fd);
			return;
		}
		if (fd >= 0)
			close(fd);
		if (waitpid(d->pid, &d->status, WNOHANG) == d->pid) {
			d->reaped = true;
			reg_sync(d);
			dump_log_tail(d->dir, d->log);
			ck_abort_msg("corrald exited during start (status 0x%x)", d->status);
		}
		ck_assert_msg(h_now_ms() < deadline, "corrald did not accept within %d ms",
			      START_TIMEOUT_MS);
		nap_ms(5);
	}
}

/* hd_init + hd_start. */
void hd_up(struct hd *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hd_init_v(d, fmt, ap);
	va_end(ap);
	hd_start(d);
}

/* Wait (bounded) for the daemon to exit. */
bool hd_wait_exit(struct hd *d, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	if (d->reaped)
		return true;
	for (;;) {
		pid_t r = waitpid(d->pid, &d->status, WNOHANG);
		if (r == d->pid) {
			d->reaped = true;
			reg_sync(d);
			return true;
		}
		if (h_now_ms() >= deadline)
			return false;
		nap_ms(5);
	}
}

/* Stop the daemon: shutdown request, then SIGKILL. */
void hd_stop(struct hd *d, bool strict)
{
	if (d->pid <= 0 || d->reaped)
		return;
	int fd = h_connect_path(d->sock);
	if (fd >= 0) {
		static const char req[] =
		    "{\"id\":\"stop\",\"cmd\":\"shutdown\",\"timeout_ms\":3000}\n";
		ssize_t w = send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
		(void)w;
	}
	bool exited = hd_wait_exit(d, 20000);
	if (fd >= 0)
		close(fd);
	if (!exited) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &d->status, 0);
		d->reaped = true;
		reg_sync(d);
		ck_assert_msg(!strict, "corrald did not exit after shutdown");
		return;
	}
	if (strict) {
		ck_assert_msg(WIFEXITED(d->status) && WEXITSTATUS(d->status) == 0,
			      "corrald exit status 0x%x after shutdown", d->status);
		char *log = hd_log(d);
		bool bad = strstr(log, "ERROR: AddressSanitizer") ||
			   strstr(log, "ERROR: LeakSanitizer") || strstr(log, "runtime error:");
		if (bad)
			dump_log_tail(d->dir, d->log);
		free(log);
		ck_assert_msg(!bad, "sanitizer report in the corrald log");
	}
}

/* The daemon's log (malloc'd, NUL-terminated). */
char *hd_log(const struct hd *d)
{
	FILE *f = fopen(d->log, "r");
	if (!f)
		return strdup("");
	char *buf = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* Connect to a UNIX socket path; -1 on failure. */
int h_connect_path(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Open a client on d. */
void hc_open(struct hc *c, const struct hd *d)
{
	memset(c, 0, sizeof(*c));
	c->next_id = 1;
	c->fd = h_connect_path(d->sock);
	ck_assert_msg(c->fd >= 0, "connect %s: %s", d->sock, strerror(errno));
	struct timeval tv = {60, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Free a line. */
static void hline_free(struct hline *l)
{
	if (l->fd >= 0)
		close(l->fd);
	json_decref(l->j);
	free(l);
}

/* Close a client and drop what it holds. */
void hc_close(struct hc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (unsigned i = 0; i < c->nrfds; i++)
		close(c->rfds[i]);
	c->nrfds = 0;
	while (c->backlog) {
		struct hline *l = c->backlog;
		c->backlog = l->next;
		hline_free(l);
	}
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

/* Send bytes (all), with an optional fd on the first chunk. */
void hc_send_raw(struct hc *c, const void *data, size_t len, int fd)
{
	const char *p = data;
	bool first = true;
	while (len > 0 || (first && fd >= 0)) {
		struct iovec iov = {(void *)p, len};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		if (first && fd >= 0) {
			memset(&u, 0, sizeof(u));
			mh.msg_control = u.buf;
			mh.msg_controllen = sizeof(u.buf);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		}
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "send to corrald: %s", strerror(errno));
		first = false;
		p += n;
		len -= (size_t)n;
	}
}

/* Splice "id":N into a JSON object text; malloc'd line with '\n'. */
static char *with_id(json_int_t id, const char *obj)
{
	char *s = NULL;
	const char *rest = obj;
	while (*rest == ' ')
		rest++;
	ck_assert_msg(*rest == '{', "request must be an object: %s", obj);
	rest++;
	while (*rest == ' ')
		rest++;
	ck_assert_int_ge(
	    asprintf(&s, "{\"id\":%lld%s%s\n", (long long)id, *rest == '}' ? "" : ",", rest), 0);
	return s;
}

/* Send a request built from fmt; returns its id. */
static json_int_t hc_sendv(struct hc *c, int fd, const char *fmt, va_list ap)
{
	char *obj = NULL;
	ck_assert_int_ge(vasprintf(&obj, fmt, ap), 0);
	json_int_t id = c->next_id++;
	char *line = with_id(id, obj);
	hc_send_raw(c, line, strlen(line), fd);
	free(line);
	free(obj);
	return id;
}

/* Public hc_sendf. */
json_int_t hc_sendf(struct hc *c, int fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_int_t id = hc_sendv(c, fd, fmt, ap);
	va_end(ap);
	return id;
}

/* Split complete lines out of the buffer into the backlog. */
static void split_lines(struct hc *c)
{
	size_t pos = 0;
	struct hline **tail = &c->backlog;
	while (*tail)
		tail = &(*tail)->next;
	for (;;) {
		char *nl = memchr(c->buf + pos, '\n', c->len - pos);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (c->buf + pos));
		uint64_t start = c->base + pos, end = start + len + 1;
		struct hline *l = calloc(1, sizeof(*l));
		ck_assert_ptr_nonnull(l);
		l->fd = -1;
		l->j = json_loadb(c->buf + pos, len, JSON_ALLOW_NUL, NULL);
		unsigned keep = 0;
		for (unsigned i = 0; i < c->nrfds; i++) {
			if (c->roff[i] >= start && c->roff[i] < end) {
				if (l->fd < 0)
					l->fd = c->rfds[i];
				else
					close(c->rfds[i]);
			} else {
				c->rfds[keep] = c->rfds[i];
				c->roff[keep] = c->roff[i];
				keep++;
			}
		}
		c->nrfds = keep;
		*tail = l;
		tail = &l->next;
		pos += len + 1;
	}
	if (pos) {
		memmove(c->buf, c->buf + pos, c->len - pos);
		c->len -= pos;
		c->base += pos;
	}
}

/* Read once (waiting up to timeout_ms): 1 data, 0 timeout, -1 EOF/error. */
static int hc_fill(struct hc *c, int timeout_ms)
{
	if (c->eof)
		return -1;
	struct pollfd pfd = {c->fd, POLLIN, 0};
	int r = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
	if (r < 0 && errno == EINTR)
		return 0;
	if (r <= 0)
		return 0;
	if (c->cap - c->len < 65536) {
		c->cap = c->cap ? c->cap * 2 : 131072;
		c->buf = realloc(c->buf, c->cap);
		ck_assert_ptr_nonnull(c->buf);
	}
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {c->buf + c->len, c->cap - c->len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	/* The kernel ends a read at the message that carried fds, and corrald
	 * sends a reply with an fd alone: the fds belong to the last line that
	 * starts in this read (earlier replies may share it). */
	uint64_t off = c->base + c->len;
	if (n > 1) {
		const char *nl = memrchr(c->buf + c->len, '\n', (size_t)n - 1);
		if (nl)
			off += (uint64_t)(nl - (c->buf + c->len)) + 1;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int rfd;
			memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (c->nrfds < 64) {
				c->rfds[c->nrfds] = rfd;
				c->roff[c->nrfds] = off;
				c->nrfds++;
			} else {
				close(rfd);
			}
		}
	}
	if (n <= 0) {
		c->eof = true;
		return -1;
	}
	c->len += (size_t)n;
	split_lines(c);
	return 1;
}

typedef bool (*matcher)(json_t *j, const void *arg);

/* Take the first backlog line that matches (reading more as needed). */
static json_t *hc_take(struct hc *c, matcher m, const void *arg, int timeout_ms, int *ret_fd)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	bool tried = false;
	if (ret_fd)
		*ret_fd = -1;
	for (;;) {
		for (struct hline **pp = &c->backlog; *pp; pp = &(*pp)->next) {
			struct hline *l = *pp;
			if (!m(l->j, arg))
				continue;
			*pp = l->next;
			json_t *j = l->j;
			l->j = NULL;
			if (ret_fd) {
				*ret_fd = l->fd;
				l->fd = -1;
			}
			hline_free(l);
			return j;
		}
		int64_t left = deadline - h_now_ms();
		if (left <= 0 && tried)
			return NULL;
		tried = true;
		if (hc_fill(c, left > 0 ? (int)left : 0) < 0) {
			/* EOF: one last scan of what is left. */
			for (struct hline **pp = &c->backlog; *pp; pp = &(*pp)->next) {
				if (m((*pp)->j, arg)) {
					struct hline *l = *pp;
					*pp = l->next;
					json_t *j = l->j;
					l->j = NULL;
					if (ret_fd) {
						*ret_fd = l->fd;
						l->fd = -1;
					}
					hline_free(l);
					return j;
				}
			}
			return NULL;
		}
	}
}

/* Any line. */
static bool match_any(json_t *j, const void *arg)
{
	(void)j;
	(void)arg;
	return true;
}

/* A reply (not an event) with the integer id *arg. */
static bool match_id(json_t *j, const void *arg)
{
	json_t *id = json_object_get(j, "id");
	return json_is_integer(id) && json_integer_value(id) == *(const json_int_t *)arg &&
	       !json_object_get(j, "event");
}

/* A reply with id null. */
static bool match_null(json_t *j, const void *arg)
{
	(void)arg;
	json_t *id = json_object_get(j, "id");
	return id && json_is_null(id);
}

/* An event for stream id *arg. */
static bool match_event(json_t *j, const void *arg)
{
	json_t *id = json_object_get(j, "id");
	return json_is_integer(id) && json_integer_value(id) == *(const json_int_t *)arg &&
	       json_object_get(j, "event");
}

/* Next line. */
json_t *hc_next(struct hc *c, int timeout_ms, int *ret_fd)
{
	return hc_take(c, match_any, NULL, timeout_ms, ret_fd);
}

/* Reply for id. */
json_t *hc_wait_id(struct hc *c, json_int_t id, int timeout_ms, int *ret_fd)
{
	return hc_take(c, match_id, &id, timeout_ms, ret_fd);
}

/* Reply with id null. */
json_t *hc_wait_null(struct hc *c, int timeout_ms)
{
	return hc_take(c, match_null, NULL, timeout_ms, NULL);
}

/* Next event for stream sid; returns the "event" object (owned). */
json_t *hc_next_event(struct hc *c, json_int_t sid, int timeout_ms)
{
	json_t *j = hc_take(c, match_event, &sid, timeout_ms, NULL);
	if (!j)
		return NULL;
	json_t *ev = json_incref(json_object_get(j, "event"));
	json_decref(j);
	return ev;
}

/* EOF within timeout (data before it is kept in the backlog). */
bool hc_wait_eof(struct hc *c, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	while (!c->eof) {
		int64_t left = deadline - h_now_ms();
		if (left <= 0)
			return false;
		hc_fill(c, (int)left);
	}
	return true;
}

/* Send + wait, asserting a reply comes. */
json_t *hc_rpc(struct hc *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_int_t id = hc_sendv(c, -1, fmt, ap);
	va_end(ap);
	json_t *r = hc_wait_id(c, id, REPLY_TIMEOUT_MS, NULL);
	ck_assert_msg(r, "no reply to request %lld (%s)", (long long)id, fmt);
	return r;
}

/* Send with an fd + wait; the reply's fd (if any) in *ret_fd. */
json_t *hc_rpc_fd(struct hc *c, int fd, int *ret_fd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_int_t id = hc_sendv(c, fd, fmt, ap);
	va_end(ap);
	int rfd = -1;
	json_t *r = hc_wait_id(c, id, REPLY_TIMEOUT_MS * 4, &rfd);
	ck_assert_msg(r, "no reply to request %lld (%s)", (long long)id, fmt);
	if (ret_fd)
		*ret_fd = rfd;
	else if (rfd >= 0)
		close(rfd);
	return r;
}

/* ok is true. */
bool h_ok(json_t *r)
{
	return r && json_is_true(json_object_get(r, "ok"));
}

/* error.code or "". */
const char *h_err(json_t *r)
{
	const char *s = json_string_value(json_object_get(json_object_get(r, "error"), "code"));
	return s ? s : "";
}

/* error.message or "". */
const char *h_errmsg(json_t *r)
{
	const char *s = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
	return s ? s : "";
}

/* Integer member (asserts it is an integer). */
json_int_t h_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "\"%s\" is not an integer in %s", key, h_dump(o));
	return json_integer_value(v);
}

/* String member or NULL. */
const char *h_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Compact dump, truncated, in a static buffer. */
const char *h_dump(json_t *j)
{
	static char buf[2048];
	if (!j)
		return "(no reply)";
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(buf, sizeof(buf), "%s", s ? s : "?");
	free(s);
	return buf;
}

/* Open a watch connection. */
json_int_t hc_watch(struct hc *w, const struct hd *d)
{
	hc_open(w, d);
	json_int_t id = hc_sendf(w, -1, "{\"cmd\":\"watch\"}");
	json_t *r = hc_wait_id(w, id, REPLY_TIMEOUT_MS, NULL);
	H_OK(r);
	json_decref(r);
	return id;
}

/* Wait for an event with worker (0 any) and state. */
json_t *h_wait_state(struct hc *w, json_int_t sid, json_int_t worker, const char *state,
		     int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - h_now_ms();
		json_t *ev = hc_next_event(w, sid, left > 0 ? (int)left : 0);
		ck_assert_msg(ev, "no watch event (worker %lld, state %s) within %d ms",
			      (long long)worker, state, timeout_ms);
		json_t *wid = json_object_get(ev, "worker");
		const char *st = h_str(ev, "state");
		if ((!worker || (json_is_integer(wid) && json_integer_value(wid) == worker)) &&
		    st && strcmp(st, state) == 0)
			return ev;
		json_decref(ev);
	}
}

/* Read /proc/pid/stat: state char and ppid; false when gone. */
static bool proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return false;
	char st;
	int ppid;
	if (sscanf(p + 2, "%c %d", &st, &ppid) != 2)
		return false;
	*ret_state = st;
	*ret_ppid = ppid;
	return true;
}

/* Alive and not a zombie. */
bool h_pid_alive(pid_t pid)
{
	char st;
	pid_t pp;
	if (pid <= 0 || !proc_stat(pid, &st, &pp))
		return false;
	return st != 'Z' && st != 'X';
}

/* Wait (bounded) for pid to be gone. */
bool h_wait_pid_gone(pid_t pid, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	while (h_pid_alive(pid)) {
		if (h_now_ms() >= deadline)
			return false;
		nap_ms(5);
	}
	return true;
}

/* Count processes whose parent is ppid (and how many are zombies). */
int h_count_children(pid_t ppid, int *ret_zombies)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int n = 0, z = 0;
	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char st;
		pid_t pp;
		if (!proc_stat((pid_t)pid, &st, &pp) || pp != ppid)
			continue;
		n++;
		if (st == 'Z')
			z++;
	}
	closedir(dir);
	if (ret_zombies)
		*ret_zombies = z;
	return n;
}

/* Number of open fds of pid. */
int h_count_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *dir = opendir(path);
	struct dirent *de;
	int n = 0;
	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* VmRSS of pid in KiB. */
long h_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* list [type] → workers array (owned). */
json_t *h_list(struct hc *c, const char *type)
{
	json_t *r = type ? hc_rpc(c, "{\"cmd\":\"list\",\"type\":\"%s\"}", type)
			 : hc_rpc(c, "{\"cmd\":\"list\"}");
	H_OK(r);
	json_t *w = json_incref(json_object_get(r, "workers"));
	ck_assert_msg(json_is_array(w), "list without workers: %s", h_dump(r));
	json_decref(r);
	return w;
}

/* Poll list until n workers (all idle when asked). */
json_t *h_wait_workers(struct hc *c, const char *type, size_t n, bool idle, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	for (;;) {
		json_t *w = h_list(c, type);
		bool good = json_array_size(w) == n;
		for (size_t i = 0; good && idle && i < n; i++)
			good = strcmp(h_str(json_array_get(w, i), "state"), "idle") == 0;
		if (good)
			return w;
		ck_assert_msg(h_now_ms() < deadline, "want %zu %sworkers of %s, list: %s", n,
			      idle ? "idle " : "", type ? type : "any", h_dump(w));
		json_decref(w);
		nap_ms(10);
	}
}

/* Pattern byte for offset. */
void h_pattern(unsigned char *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = off + i;
		buf[i] = (unsigned char)((x * 131u) ^ (x >> 9) ^ (x >> 21));
	}
}

/* memfd with len pattern bytes. */
int h_memfd_pattern(size_t len)
{
	int fd = memfd_create("e2e-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	if (len) {
		unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		ck_assert(m != MAP_FAILED);
		h_pattern(m, 0, len);
		munmap(m, len);
	}
	return fd;
}

/* Whole fd content from offset 0. */
unsigned char *h_read_fd(int fd, size_t *len)
{
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
	unsigned char *buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		ssize_t r = pread(fd, buf + n, cap - n, (off_t)n);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding. */
char *h_b64(const unsigned char *p, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*o++ = b64chars[(v >> 18) & 63];
		*o++ = b64chars[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* Decode base64 (asserts it is valid). */
unsigned char *h_unb64(const char *s, size_t *n)
{
	size_t len = strlen(s);
	unsigned char *out = malloc(len / 4 * 3 + 3);
	uint32_t v = 0;
	int bits = 0;
	size_t o = 0;
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=')
			break;
		const char *q = strchr(b64chars, s[i]);
		ck_assert_msg(q && s[i], "bad base64 character 0x%02x", (unsigned char)s[i]);
		v = (v << 6) | (uint32_t)(q - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	*n = o;
	return out;
}

/* Hex digest of a buffer. */
void h_sha256_hex(const unsigned char *p, size_t n, char out[65])
{
	struct sha256_ctx ctx;
	uint8_t dg[SHA256_DIGEST_SIZE];
	sha256_init(&ctx);
	sha256_update(&ctx, n, p);
	sha256_digest(&ctx, sizeof(dg), dg);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", dg[i]);
}

/* Hex digest of an fd's content from offset 0. */
void h_sha256_fd_hex(int fd, char out[65])
{
	struct sha256_ctx ctx;
	uint8_t dg[SHA256_DIGEST_SIZE];
	static unsigned char buf[1 << 20];
	off_t off = 0;
	sha256_init(&ctx);
	for (;;) {
		ssize_t r = pread(fd, buf, sizeof(buf), off);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		sha256_update(&ctx, (size_t)r, buf);
		off += r;
	}
	sha256_digest(&ctx, sizeof(dg), dg);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", dg[i]);
}

/* Append to a growable buffer. */
static void buf_add(char **b, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*b = realloc(*b, *cap);
		ck_assert_ptr_nonnull(*b);
	}
	memcpy(*b + *len, p, n);
	*len += n;
	(*b)[*len] = '\0';
}

/* Run argv with stdin data, capture stdout and stderr (bounded: 120 s). */
int h_run(const char *const *argv, const void *in, size_t inlen, char **out, size_t *outlen,
	  char **err)
{
	int pin[2], pout[2], perr[2];
	ck_assert_int_eq(pipe2(pin, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pout, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(perr, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	size_t inoff = 0;
	if (!in || inlen == 0) {
		close(pin[1]);
		pin[1] = -1;
	}
	char *ob = NULL, *eb = NULL;
	size_t ol = 0, oc = 0, el = 0, ec = 0;
	buf_add(&ob, &ol, &oc, "", 0);
	buf_add(&eb, &el, &ec, "", 0);
	int64_t deadline = h_now_ms() + 120000;
	while (pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd p[3] = {
		    {pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}, {pin[1], POLLOUT, 0}};
		int64_t left = deadline - h_now_ms();
		ck_assert_msg(left > 0, "%s did not finish in time", argv[0]);
		if (poll(p, 3, (int)left) < 0)
			continue;
		char buf[65536];
		for (int i = 0; i < 2; i++) {
			int *fdp = i == 0 ? &pout[0] : &perr[0];
			if (*fdp < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(*fdp, buf, sizeof(buf));
			if (n <= 0) {
				close(*fdp);
				*fdp = -1;
			} else if (i == 0) {
				buf_add(&ob, &ol, &oc, buf, (size_t)n);
			} else {
				buf_add(&eb, &el, &ec, buf, (size_t)n);
			}
		}
		if (pin[1] >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = write(pin[1], (const char *)in + inoff, inlen - inoff);
			if (n > 0)
				inoff += (size_t)n;
			if (n < 0 && errno != EAGAIN)
				inoff = inlen;
			if (inoff >= inlen) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
	}
	if (pin[1] >= 0)
		close(pin[1]);
	int status;
	waitpid(pid, &status, 0);
	if (out)
		*out = ob;
	else
		free(ob);
	if (outlen)
		*outlen = ol;
	if (err)
		*err = eb;
	else
		free(eb);
	return status;
}

/* A tcase of one test with a timeout and the harness teardown. */
TCase *h_tcase(Suite *s, const char *name, int timeout_s)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, timeout_s);
	tcase_add_checked_fixture(tc, NULL, h_teardown);
	suite_add_tcase(s, tc);
	return tc;
}

/* The test processes' own leaks (replies dropped at a failed assert) are not the
 * daemon's: leak checking is off here whatever $ASAN_OPTIONS says, and stays on
 * for corrald. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return 1;
}

/* Run the suite, forked. */
int h_main(Suite *s)
{
	signal(SIGPIPE, SIG_IGN);
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
