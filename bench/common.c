/*
 * bench/common.c - see common.h.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *bench_prog = "bench";

#define MAX_DAEMONS 8

/* Daemons still running: killed when the benchmark dies. */
static struct bench_daemon *live[MAX_DAEMONS];

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Remove a daemon's temporary directory (flat: config, socket, log). */
static void rm_dir(struct bench_daemon *d)
{
	char p[400];
	static const char *const names[] = {"corral.json", "s.sock", "corrald.log"};

	if (!d->dir[0] || getenv("BENCH_KEEP"))
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", d->dir, names[i]);
		unlink(p);
	}
	rmdir(d->dir);
	d->dir[0] = '\0';
}

static void live_del(struct bench_daemon *d)
{
	for (int i = 0; i < MAX_DAEMONS; i++)
		if (live[i] == d)
			live[i] = NULL;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", bench_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	for (int i = 0; i < MAX_DAEMONS; i++) {
		if (!live[i] || live[i]->pid <= 0)
			continue;
		fprintf(stderr, "%s: daemon log kept in %s\n", bench_prog, live[i]->log);
		kill(live[i]->pid, SIGKILL);
		waitpid(live[i]->pid, NULL, 0);
	}
	exit(1);
}

void bench_log(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", bench_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_percentile(double *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	/* Nearest rank. */
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

char *bench_path(const char *env, const char *rel)
{
	const char *e = env ? getenv(env) : NULL;
	char self[4096], buf[8300];

	if (e && *e)
		return strdup(e);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		bench_die("readlink /proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(buf, sizeof(buf), "%s/%s", self, rel);
	char *r = realpath(buf, NULL);
	if (!r || access(r, X_OK) < 0)
		bench_die("cannot find %s (set $%s)", buf, env ? env : "?");
	return r;
}

char *bench_which(const char *env, const char *name)
{
	static const char *const first[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin"};
	const char *e = env ? getenv(env) : NULL;
	char buf[4096], *path, *save = NULL;

	if (e && *e)
		return strdup(e);
	/* The distribution's binary first: /usr/local may hold wrappers. */
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		snprintf(buf, sizeof(buf), "%s/%s", first[i], name);
		if (access(buf, X_OK) == 0)
			return strdup(buf);
	}
	path = strdup(getenv("PATH") ? getenv("PATH") : "");
	for (char *d = strtok_r(path, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", d, name);
		if (access(buf, X_OK) == 0) {
			free(path);
			return strdup(buf);
		}
	}
	free(path);
	return NULL;
}

void bench_raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

void bench_daemon_start(struct bench_daemon *d, const char *corrald, const char *config,
			rlim_t nofile)
{
	char cfg[400];
	int slot = -1;

	memset(d, 0, sizeof(*d));
	for (int i = 0; i < MAX_DAEMONS && slot < 0; i++)
		if (!live[i])
			slot = i;
	if (slot < 0)
		bench_die("too many daemons");
	const char *tmp = getenv("TMPDIR");
	snprintf(d->dir, sizeof(d->dir), "%s/corral-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d->dir))
		bench_die("mkdtemp: %s", strerror(errno));
	snprintf(cfg, sizeof(cfg), "%s/corral.json", d->dir);
	snprintf(d->sock, sizeof(d->sock), "%s/s.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/corrald.log", d->dir);
	FILE *f = fopen(cfg, "w");
	if (!f || fputs(config, f) < 0 || fclose(f) != 0)
		bench_die("write %s: %s", cfg, strerror(errno));
	live[slot] = d;

	pid_t pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		int lf = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int nf = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (lf < 0 || nf < 0 || dup2(nf, 0) < 0 || dup2(nf, 1) < 0 || dup2(lf, 2) < 0)
			_exit(126);
		if (nofile) {
			struct rlimit rl;

			if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
				rl.rlim_cur = nofile < rl.rlim_max ? nofile : rl.rlim_max;
				setrlimit(RLIMIT_NOFILE, &rl);
			}
		}
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		unsetenv("LISTEN_FDS");
		execl(corrald, corrald, "--config", cfg, "--socket", d->sock, "--log-level",
		      "notice", (char *)NULL);
		_exit(127);
	}
	d->pid = pid;

	/* Wait until it answers a ping. */
	uint64_t deadline = bench_now_ns() + 10000000000ull;
	for (;;) {
		struct bench_conn c;
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			d->pid = 0;
			bench_die("corrald exited at start (status 0x%x); see %s", st, d->log);
		}
		if (bench_connect(&c, d->sock) == 0) {
			json_decref(bench_request(&c, false, "\"cmd\":\"ping\""));
			bench_conn_close(&c);
			return;
		}
		if (bench_now_ns() > deadline)
			bench_die("corrald does not answer on %s", d->sock);
		bench_sleep_ms(2);
	}
}

void bench_daemon_forget(struct bench_daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	live_del(d);
	rm_dir(d);
}

void bench_daemon_stop(struct bench_daemon *d, unsigned timeout_ms)
{
	int st;

	if (d->pid <= 0) {
		bench_daemon_forget(d);
		return;
	}
	kill(d->pid, SIGTERM);
	uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		pid_t r = waitpid(d->pid, &st, WNOHANG);
		if (r == d->pid) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				bench_log("warning: corrald exited with status 0x%x on SIGTERM",
					  st);
			d->pid = 0;
			break;
		}
		if (bench_now_ns() > deadline) {
			bench_log("warning: corrald did not exit %u ms after SIGTERM; SIGKILL",
				  timeout_ms);
			break;
		}
		bench_sleep_ms(5);
	}
	bench_daemon_forget(d);
}

int bench_connect(struct bench_conn *c, const char *sock)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(c, 0, sizeof(*c));
	c->next_id = 1;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		bench_die("socket: %s", strerror(errno));
	if (strlen(sock) >= sizeof(sa.sun_path))
		bench_die("socket path too long: %s", sock);
	strcpy(sa.sun_path, sock);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

void bench_conn_close(struct bench_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

void bench_send_raw(struct bench_conn *c, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(c->fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			bench_die("write to corrald: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
	}
}

json_t *bench_recv(struct bench_conn *c, int timeout_ms)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000u;

	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl) {
			size_t ll = (size_t)(nl - c->buf);
			json_error_t err;
			json_t *j = json_loadb(c->buf, ll, 0, &err);

			if (!j)
				bench_die("bad JSON from corrald: %s: %.*s", err.text, (int)ll,
					  c->buf);
			memmove(c->buf, nl + 1, c->len - ll - 1);
			c->len -= ll + 1;
			return j;
		}
		if (timeout_ms >= 0) {
			uint64_t now = bench_now_ns();
			if (now >= deadline)
				return NULL;
			struct pollfd p = {.fd = c->fd, .events = POLLIN};
			int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
			if (r < 0 && errno != EINTR)
				bench_die("poll: %s", strerror(errno));
			if (r <= 0)
				continue;
		}
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 131072;
			c->buf = realloc(c->buf, c->cap);
			if (!c->buf)
				bench_die("out of memory");
		}
		ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			bench_die("read from corrald: %s", strerror(errno));
		if (n == 0)
			bench_die("corrald closed the connection");
		c->len += (size_t)n;
	}
}

json_t *bench_request(struct bench_conn *c, bool allow_error, const char *fmt, ...)
{
	char args[4096], line[4200];
	va_list ap;
	long id = c->next_id++;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	int n = snprintf(line, sizeof(line), "{\"id\":%ld,%s}\n", id, args);
	bench_send_raw(c, line, (size_t)n);
	for (;;) {
		json_t *j = bench_recv(c, 120000);
		if (!j)
			bench_die("no reply to %s within 120 s", args);
		json_t *jid = json_object_get(j, "id");
		if (json_is_integer(jid) && json_integer_value(jid) == id &&
		    !json_object_get(j, "event")) {
			if (!allow_error && !json_is_true(json_object_get(j, "ok"))) {
				char *s = json_dumps(j, JSON_COMPACT);
				bench_die("request %s failed: %s", args, s ? s : "?");
			}
			return j;
		}
		json_decref(j);
	}
}

void bench_watch_open(struct bench_conn *c, const char *sock)
{
	if (bench_connect(c, sock) < 0)
		bench_die("connect %s: %s", sock, strerror(errno));
	json_decref(bench_request(c, false, "\"cmd\":\"watch\""));
}

bool bench_watch_wait(struct bench_conn *c, const struct bench_event_filter *f, int timeout_ms,
		      struct bench_event *ev)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		uint64_t now = bench_now_ns();
		if (now >= deadline)
			return false;
		json_t *j = bench_recv(c, (int)((deadline - now) / 1000000u) + 1);
		if (!j)
			return false;
		json_t *e = json_object_get(j, "event");
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *state = json_string_value(json_object_get(e, "state"));
		uint64_t worker = (uint64_t)json_integer_value(json_object_get(e, "worker"));
		bool match = e && state && type && (!f->type || strcmp(f->type, type) == 0) &&
			     (!f->state || strcmp(f->state, state) == 0) &&
			     (!f->worker || f->worker == worker) &&
			     (!f->worker_gt || worker > f->worker_gt);
		if (match && ev) {
			ev->worker = worker;
			ev->pid = (pid_t)json_integer_value(json_object_get(e, "pid"));
			snprintf(ev->state, sizeof(ev->state), "%s", state);
		}
		json_decref(j);
		if (match)
			return true;
	}
}

size_t bench_reply_ids(const json_t *reply, uint64_t *ids, size_t max)
{
	json_t *a = json_object_get(reply, "workers");
	size_t n = 0;

	for (size_t i = 0; i < json_array_size(a) && n < max; i++) {
		json_t *x = json_array_get(a, i);
		if (json_is_integer(x))
			ids[n++] = (uint64_t)json_integer_value(x);
		else if (json_is_integer(json_object_get(x, "id")))
			ids[n++] = (uint64_t)json_integer_value(json_object_get(x, "id"));
	}
	return n;
}

long long bench_proc_field(pid_t pid, const char *file, const char *name)
{
	char path[64], line[256];
	size_t nl = strlen(name);
	long long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, nl) == 0 && line[nl] == ':') {
			v = strtoll(line + nl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}
