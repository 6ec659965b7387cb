/*
 * metrics.c - an optional HTTP listener (loopback host:port or a UNIX socket
 * path) that serves Prometheus text at /metrics.  Each connection: read one
 * request head (bounded), answer, close.  Bounded in clients, bytes and time.
 *
 * Counters live here, per type name, not in the type: a reload replaces a
 * type's generation, and Prometheus counters must not go back to zero for
 * that.  The supervisor and the dispatcher report through metrics_on_*();
 * gauges are read from the live types when a scrape renders them.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "corral-config.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"

#define METRICS_MAX_CLIENTS 64
#define METRICS_MAX_HEAD    8192
#define METRICS_HASH	    64 /* registry buckets */

/* Upper bounds of the call latency buckets, in µs and as Prometheus writes them. */
static const uint64_t bucket_us[] = {25,      50,      100,	250,	  500,	    1000,    2500,
				     5000,    10000,   25000,	50000,	  100000,   250000,  500000,
				     1000000, 2500000, 5000000, 10000000, 30000000, 60000000};
static const char *const bucket_le[] = {
    "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",    "0.1",	"0.25",	  "0.5",     "1",      "2.5",	"5",	  "10",	   "30",   "60"};
#define NBUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))
_Static_assert(NBUCKETS == sizeof(bucket_le) / sizeof(bucket_le[0]), "bucket tables differ");

/* The counters of one type name, across its generations. */
struct mtype {
	LIST_ENTRY(mtype) hentry;
	char *name;
	uint64_t spawned, exited, crashed, restarts;
	uint64_t calls[CTL_NCODES];    /* by outcome: CTL_OK, or the reply's code */
	uint64_t bucket[NBUCKETS + 1]; /* call durations; the last one is +Inf */
	uint64_t count, sum_us;
	/* Filled by each render from the live types. */
	bool shown, g_backoff, g_cfg;
	unsigned g_state[W_EXITED], g_queued, g_min, g_max, g_queue;
};

/* A growing output buffer. */
struct obuf {
	char *buf;
	size_t len, cap;
	bool failed;
	uint64_t start_ms;
};

struct mclient {
	LIST_ENTRY(mclient) entry;
	struct metrics *m;
	int fd;
	struct event *ev;
	char head[METRICS_MAX_HEAD];
	size_t len;
	char *out;
	size_t outlen, outoff;
	uint64_t deadline_ms; /* the whole exchange, however slowly the client trickles */
};

struct metrics {
	struct daemon *d;
	int lfd;
	char *unix_path;
	struct event *ev, *ev_pause;
	unsigned nclients;
	LIST_HEAD(, mclient) clients;
	LIST_HEAD(, mtype) hash[METRICS_HASH];
};

#define METRICS_CLIENT_MS 10000

/* Wait for the next readiness of c (what: EV_READ or EV_WRITE) until its deadline. */
static void mclient_arm(struct mclient *c, short what);

/* Close and free one HTTP client. */
static void mclient_free(struct mclient *c)
{
	event_free(c->ev);
	close(c->fd);
	LIST_REMOVE(c, entry);
	c->m->nclients--;
	free(c->out);
	free(c);
}

/* Append printf output to a growing buffer; *buf stays NULL once memory ran out. */
static void buf_printf(struct obuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct obuf *o, const char *fmt, ...)
{
	va_list ap;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0,
				  fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (o->buf && o->len + (size_t)n < o->cap) {
			o->len += (size_t)n;
			return;
		}
		size_t ncap = (o->cap ? o->cap * 2 : 16384) + (size_t)n;
		char *b = realloc(o->buf, ncap);
		if (!b) {
			o->failed = true;
			return;
		}
		o->buf = b;
		o->cap = ncap;
	}
}

/* FNV-1a of a type name, for the registry's buckets. */
static unsigned mtype_hash(const char *name)
{
	uint64_t h = 1469598103934665603ull;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (unsigned)(h % METRICS_HASH);
}

/* The registry entry of type NAME, created (zeroed) when absent; NULL without memory. */
static struct mtype *mtype_get(struct metrics *m, const char *name)
{
	unsigned h = mtype_hash(name);
	struct mtype *e;

	LIST_FOREACH(e, &m->hash[h], hentry)
	if (strcmp(e->name, name) == 0)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->name = strdup(name))) {
		free(e);
		return NULL;
	}
	LIST_INSERT_HEAD(&m->hash[h], e, hentry);
	return e;
}

/* Forget one registry entry. */
static void mtype_free(struct mtype *e)
{
	LIST_REMOVE(e, hentry);
	free(e->name);
	free(e);
}

/* A call of type TYPE got its reply: CODE is NULL (or "ok") on success, else the error code. */
void metrics_on_call(struct metrics *m, const char *type, const char *code, uint64_t us)
{
	struct mtype *e;
	enum ctl_code k = CTL_OK;
	unsigned b = 0;

	if (!m || !type || !(e = mtype_get(m, type)))
		return;
	if (code && strcmp(code, "ok") != 0) {
		k = ctl_code_parse(code);
		if (k == CTL_NCODES || k == CTL_OK)
			k = CTL_INTERNAL;
	}
	e->calls[k]++;
	while (b < NBUCKETS && us > bucket_us[b])
		b++;
	e->bucket[b]++;
	e->count++;
	e->sum_us += us;
}

/* A worker of TYPE was spawned. */
void metrics_on_spawn(struct metrics *m, const char *type)
{
	struct mtype *e;

	if (m && type && (e = mtype_get(m, type)))
		e->spawned++;
}

/* A worker of TYPE was reaped; CRASHED when its death counts as a crash. */
void metrics_on_exit(struct metrics *m, const char *type, bool crashed)
{
	struct mtype *e;

	if (!m || !type || !(e = mtype_get(m, type)))
		return;
	e->exited++;
	if (crashed)
		e->crashed++;
}

/* A crashed worker of TYPE was replaced. */
void metrics_on_restart(struct metrics *m, const char *type)
{
	struct mtype *e;

	if (m && type && (e = mtype_get(m, type)))
		e->restarts++;
}

/* Add the live state of one type generation T to its registry entry. */
static void mtype_gauge(struct mtype *e, const struct type_rt *t)
{
	for (int st = W_STARTING; st < W_EXITED; st++)
		e->g_state[st] += t->nstate[st];
	e->g_queued += t->nqueued;
	e->g_backoff |= pool_in_backoff(t);
	if (!e->g_cfg) {
		e->g_cfg = true;
		e->g_min = t->cfg->pool.min;
		e->g_max = t->cfg->pool.max;
		e->g_queue = t->cfg->pool.queue;
	}
}

/*
 * The entries to show: every type name that is configured or still drains
 * after a reload, in configuration order; their gauges summed over the
 * generations of each name (so a reload never shows one name twice).
 * Entries of names that are gone are dropped.  Returns the count in *out.
 */
static size_t metrics_collect(struct metrics *m, struct mtype ***out)
{
	struct daemon *d = m->d;
	struct typeq *lists[] = {&d->types, &d->retired};
	struct mtype *e, **v = NULL;
	struct type_rt *t;
	size_t n = 0, cap = 0;

	for (unsigned h = 0; h < METRICS_HASH; h++)
		LIST_FOREACH(e, &m->hash[h], hentry)
		{
			e->shown = false;
			memset(e->g_state, 0, sizeof(e->g_state));
			e->g_queued = 0;
			e->g_backoff = e->g_cfg = false;
		}
	for (size_t l = 0; l < 2; l++) {
		TAILQ_FOREACH(t, lists[l], entry)
		{
			if (!(e = mtype_get(m, t->name)))
				continue;
			mtype_gauge(e, t);
			if (e->shown)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct mtype **nv = realloc(v, ncap * sizeof(*nv));
				if (!nv)
					continue;
				v = nv;
				cap = ncap;
			}
			e->shown = true;
			v[n++] = e;
		}
	}
	for (unsigned h = 0; h < METRICS_HASH; h++) {
		struct mtype *next;
		for (e = LIST_FIRST(&m->hash[h]); e; e = next) {
			next = LIST_NEXT(e, hentry);
			if (!e->shown)
				mtype_free(e);
		}
	}
	*out = v;
	return n;
}

/* "# HELP" and "# TYPE" lines of one metric family. */
static void family(struct obuf *o, const char *name, const char *type, const char *help)
{
	buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One counter family with a sample per type, from the field at OFFSET of struct mtype. */
static void per_type_counter(struct obuf *o, struct mtype **v, size_t n, const char *name,
			     const char *help, size_t offset)
{
	family(o, name, "counter", help);
	for (size_t i = 0; i < n; i++) {
		uint64_t x;
		memcpy(&x, (const char *)v[i] + offset, sizeof(x));
		buf_printf(o, "%s{type=\"%s\"} %llu\n", name, v[i]->name, (unsigned long long)x);
	}
}

/* The daemon's own process metrics, as every Prometheus client library names them. */
static void render_process(struct obuf *o)
{
	char buf[1024], *p;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0, btime = 0;
	long long rss = 0;
	struct rlimit rl;
	FILE *f;

	if ((f = fopen("/proc/self/stat", "re"))) {
		size_t k = fread(buf, 1, sizeof(buf) - 1, f);
		buf[k] = '\0';
		fclose(f);
		/* Fields after the command name, which may hold spaces and parentheses. */
		if ((p = strrchr(buf, ')')) &&
		    sscanf(p + 2,
			   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
			   "%*d %*d %llu %llu %lld",
			   &utime, &stime, &start, &vsize, &rss) != 5)
			utime = stime = start = vsize = 0, rss = 0;
	}
	if ((f = fopen("/proc/stat", "re"))) {
		while (fgets(buf, sizeof(buf), f))
			if (sscanf(buf, "btime %llu", &btime) == 1)
				break;
		fclose(f);
	}
	if (tck <= 0)
		tck = 100;
	family(o, "process_cpu_seconds_total", "counter",
	       "Total user and system CPU time spent in seconds.");
	buf_printf(o, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)tck);
	unsigned nfds = 0;
	DIR *dir = opendir("/proc/self/fd");
	if (dir) {
		struct dirent *de;
		while ((de = readdir(dir)))
			if (de->d_name[0] != '.')
				nfds++;
		closedir(dir);
		nfds--; /* the directory's own fd */
		family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
		buf_printf(o, "process_open_fds %u\n", nfds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		family(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		buf_printf(o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
	family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	buf_printf(o, "process_virtual_memory_bytes %llu\n", vsize);
	family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	buf_printf(o, "process_resident_memory_bytes %lld\n", rss * (page > 0 ? page : 4096));
	family(o, "process_start_time_seconds", "gauge",
	       "Start time of the process since unix epoch in seconds.");
	if (btime)
		buf_printf(o, "process_start_time_seconds %.2f\n",
			   (double)btime + (double)start / (double)tck);
	else
		buf_printf(o, "process_start_time_seconds %.3f\n", (double)o->start_ms / 1000.0);
}

/* Render the Prometheus text body (text format 0.0.4); NULL without memory. */
static char *metrics_render(struct metrics *m, size_t *ret_len)
{
	struct obuf o = {.start_ms = m->d->start_ms};
	struct mtype **v = NULL;
	size_t n = metrics_collect(m, &v);

	family(&o, "corral_build_info", "gauge",
	       "A constant 1, labelled with the version of corrald.");
	buf_printf(&o, "corral_build_info{version=\"%s\"} 1\n", CORRAL_VERSION);

	family(&o, "corral_workers", "gauge", "Live workers by type and state.");
	for (size_t i = 0; i < n; i++)
		for (int st = W_STARTING; st < W_EXITED; st++)
			buf_printf(&o, "corral_workers{type=\"%s\",state=\"%s\"} %u\n", v[i]->name,
				   wstate_names[st], v[i]->g_state[st]);
	family(&o, "corral_pool_min_workers", "gauge", "Workers kept alive at least (pool.min).");
	for (size_t i = 0; i < n; i++)
		buf_printf(&o, "corral_pool_min_workers{type=\"%s\"} %u\n", v[i]->name,
			   v[i]->g_min);
	family(&o, "corral_pool_max_workers", "gauge", "Workers allowed at most (pool.max).");
	for (size_t i = 0; i < n; i++)
		buf_printf(&o, "corral_pool_max_workers{type=\"%s\"} %u\n", v[i]->name,
			   v[i]->g_max);
	family(&o, "corral_queued_calls", "gauge", "Calls waiting for a worker.");
	for (size_t i = 0; i < n; i++)
		buf_printf(&o, "corral_queued_calls{type=\"%s\"} %u\n", v[i]->name, v[i]->g_queued);
	family(&o, "corral_queue_capacity_calls", "gauge",
	       "Calls that may wait for a worker at most (pool.queue).");
	for (size_t i = 0; i < n; i++)
		buf_printf(&o, "corral_queue_capacity_calls{type=\"%s\"} %u\n", v[i]->name,
			   v[i]->g_queue);
	family(&o, "corral_backoff_active", "gauge",
	       "1 while the type is in crash-loop backoff, else 0.");
	for (size_t i = 0; i < n; i++)
		buf_printf(&o, "corral_backoff_active{type=\"%s\"} %d\n", v[i]->name,
			   v[i]->g_backoff ? 1 : 0);

	per_type_counter(&o, v, n, "corral_workers_spawned_total", "Workers spawned.",
			 offsetof(struct mtype, spawned));
	per_type_counter(&o, v, n, "corral_workers_exited_total", "Workers reaped, for any reason.",
			 offsetof(struct mtype, exited));
	per_type_counter(&o, v, n, "corral_workers_crashed_total",
			 "Workers that died young: before ready or within restart.healthy_ms.",
			 offsetof(struct mtype, crashed));
	per_type_counter(&o, v, n, "corral_worker_restarts_total", "Crashed workers replaced.",
			 offsetof(struct mtype, restarts));

	family(&o, "corral_calls_total", "counter",
	       "Calls answered, by outcome: ok or the error code of the reply.");
	for (size_t i = 0; i < n; i++)
		for (int k = CTL_OK; k < CTL_NCODES; k++)
			buf_printf(&o, "corral_calls_total{type=\"%s\",outcome=\"%s\"} %llu\n",
				   v[i]->name, ctl_code_name((enum ctl_code)k),
				   (unsigned long long)v[i]->calls[k]);

	family(&o, "corral_call_duration_seconds", "histogram",
	       "Time from a call's request to its reply, whatever the outcome.");
	for (size_t i = 0; i < n; i++) {
		uint64_t cum = 0;
		for (unsigned b = 0; b <= NBUCKETS; b++) {
			cum += v[i]->bucket[b];
			buf_printf(
			    &o, "corral_call_duration_seconds_bucket{type=\"%s\",le=\"%s\"} %llu\n",
			    v[i]->name, b < NBUCKETS ? bucket_le[b] : "+Inf",
			    (unsigned long long)cum);
		}
		buf_printf(&o, "corral_call_duration_seconds_sum{type=\"%s\"} %llu.%06llu\n",
			   v[i]->name, (unsigned long long)(v[i]->sum_us / 1000000),
			   (unsigned long long)(v[i]->sum_us % 1000000));
		buf_printf(&o, "corral_call_duration_seconds_count{type=\"%s\"} %llu\n", v[i]->name,
			   (unsigned long long)v[i]->count);
	}
	free(v);
	render_process(&o);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*ret_len = o.len;
	return o.buf;
}

/* Readable or writable (or the deadline): read the head, answer, close. */
static void mclient_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct mclient *c = arg;

	if ((what & EV_TIMEOUT) || now_ms() >= c->deadline_ms) {
		mclient_free(c);
		return;
	}
	if (!c->out) {
		ssize_t n = read(fd, c->head + c->len, sizeof(c->head) - 1 - c->len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			mclient_arm(c, EV_READ);
			return;
		}
		if (n <= 0) {
			mclient_free(c);
			return;
		}
		c->len += (size_t)n;
		c->head[c->len] = '\0';
		if (!strstr(c->head, "\r\n\r\n") && !strstr(c->head, "\n\n")) {
			if (c->len >= sizeof(c->head) - 1)
				goto bad;
			mclient_arm(c, EV_READ);
			return;
		}
		char method[8], path[256];
		if (sscanf(c->head, "%7s %255s", method, path) != 2)
			goto bad;
		const char *status = "200 OK";
		size_t blen = 0;
		char *body = NULL;
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
			status = "405 Method Not Allowed";
			body = strdup("method not allowed\n");
			blen = body ? strlen(body) : 0;
		} else if (strcmp(path, "/metrics") != 0) {
			status = "404 Not Found";
			body = strdup("not found: try /metrics\n");
			blen = body ? strlen(body) : 0;
		} else if (!(body = metrics_render(c->m, &blen))) {
			status = "503 Service Unavailable";
		}
		size_t cap = blen + 256;
		c->out = malloc(cap);
		if (!c->out) {
			free(body);
			mclient_free(c);
			return;
		}
		int h = snprintf(
		    c->out, cap,
		    "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		    status, blen);
		if (strcmp(method, "HEAD") != 0 && body)
			memcpy(c->out + h, body, blen);
		else
			blen = 0;
		c->outlen = (size_t)h + blen;
		free(body);
		event_del(c->ev);
		event_assign(c->ev, c->m->d->base, fd, EV_WRITE | EV_PERSIST, mclient_on_io, c);
		struct timeval tv = {10, 0};
		event_add(c->ev, &tv);
		return;
	}
	ssize_t n =
	    send(fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		c->outoff += (size_t)n;
	if (n <= 0 || c->outoff == c->outlen)
		mclient_free(c);
	else
		mclient_arm(c, EV_WRITE);
	return;
bad : {
	static const char resp[] = "HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\n";
	ssize_t w = send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	mclient_free(c);
}
}

/* Wait for the next readiness of c until its deadline. */
static void mclient_arm(struct mclient *c, short what)
{
	uint64_t now = now_ms();
	uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 0;
	event_del(c->ev);
	event_assign(c->ev, c->m->d->base, c->fd, what, mclient_on_io, c);
	struct timeval tv = tv_ms(left);
	event_add(c->ev, &tv);
}

/* The accept pause is over. */
static void metrics_on_pause(evutil_socket_t fd, short what, void *arg)
{
	struct metrics *m = arg;
	(void)fd;
	(void)what;
	event_add(m->ev, NULL);
}

/* Accept HTTP clients. */
static void metrics_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct metrics *m = arg;
	(void)what;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of fds: pause instead of spinning on a readable listener. */
				event_del(m->ev);
				struct timeval tv = {1, 0};
				evtimer_add(m->ev_pause, &tv);
			}
			return;
		}
		if (m->nclients >= METRICS_MAX_CLIENTS) {
			close(fd);
			continue;
		}
		struct mclient *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->m = m;
		c->fd = fd;
		c->deadline_ms = now_ms() + METRICS_CLIENT_MS;
		c->ev = event_new(m->d->base, fd, EV_READ, mclient_on_io, c);
		if (!c->ev) {
			close(fd);
			free(c);
			continue;
		}
		m->nclients++;
		LIST_INSERT_HEAD(&m->clients, c, entry);
		mclient_arm(c, EV_READ);
	}
}

/* Bind a UNIX stream socket at PATH, replacing only a stale socket; -1 with errno. */
static int metrics_bind_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno == EADDRINUSE && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		/* Left by a daemon that is gone (nobody accepts): take its place. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool stale = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
			     errno == ECONNREFUSED;
		if (probe >= 0)
			close(probe);
		if (!stale)
			errno = EADDRINUSE;
		else if (unlink(path) == 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
	}
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* Bind a TCP socket at "host:port"; -1 with a message in err. */
static int metrics_bind_tcp(const char *listen_on, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(listen_on, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	int fd, one = 1, r;

	if (!colon || (size_t)(colon - listen_on) >= sizeof(host)) {
		snprintf(err, errlen, "not a host:port");
		return -1;
	}
	memcpy(host, listen_on, (size_t)(colon - listen_on));
	host[colon - listen_on] = '\0';
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strcspn(h, "]")] = '\0';
	}
	if ((r = getaddrinfo(h, colon + 1, &hints, &ai)) != 0 || !ai) {
		snprintf(err, errlen, "%s", r ? gai_strerror(r) : "no address");
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Listen on "host:port" (loopback) or an absolute UNIX socket path; NULL (logged) on failure. */
struct metrics *metrics_start(struct daemon *d, const char *listen_on)
{
	struct metrics *m = calloc(1, sizeof(*m));
	char err[256] = "out of memory";
	int fd = -1;

	if (!m)
		goto fail;
	m->d = d;
	if (listen_on[0] == '/') {
		if ((fd = metrics_bind_unix(listen_on)) < 0) {
			snprintf(err, sizeof(err), "%s", strerror(errno));
			goto fail;
		}
		if (!(m->unix_path = strdup(listen_on))) {
			snprintf(err, sizeof(err), "out of memory");
			goto fail;
		}
	} else if ((fd = metrics_bind_tcp(listen_on, err, sizeof(err))) < 0) {
		goto fail;
	}
	if (listen(fd, 64) < 0) {
		snprintf(err, sizeof(err), "%s", strerror(errno));
		goto fail;
	}
	m->lfd = fd;
	m->ev = event_new(d->base, fd, EV_READ | EV_PERSIST, metrics_on_accept, m);
	m->ev_pause = evtimer_new(d->base, metrics_on_pause, m);
	if (!m->ev || !m->ev_pause) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	event_add(m->ev, NULL);
	if (m->unix_path)
		log_notice("metrics at http://localhost/metrics on UNIX socket %s", listen_on);
	else
		log_notice("metrics at http://%s/metrics", listen_on);
	return m;
fail:
	log_err("metrics.listen: cannot listen on %s: %s", listen_on, err);
	if (m) {
		if (m->ev)
			event_free(m->ev);
		if (m->ev_pause)
			event_free(m->ev_pause);
		if (m->unix_path)
			unlink(m->unix_path);
		free(m->unix_path);
		free(m);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Stop listening and drop every client. */
void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	while (!LIST_EMPTY(&m->clients))
		mclient_free(LIST_FIRST(&m->clients));
	for (unsigned h = 0; h < METRICS_HASH; h++)
		while (!LIST_EMPTY(&m->hash[h]))
			mtype_free(LIST_FIRST(&m->hash[h]));
	event_free(m->ev);
	event_free(m->ev_pause);
	close(m->lfd);
	if (m->unix_path) {
		unlink(m->unix_path);
		free(m->unix_path);
	}
	free(m);
}
