/*
 * metrics.c - an optional HTTP listener (loopback host:port or a UNIX socket
 * path) that serves Prometheus text at /metrics.  Each connection: read one
 * request head (bounded), answer, close.  Bounded in clients, bytes and time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define METRICS_MAX_CLIENTS 64
#define METRICS_MAX_HEAD    8192

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

/* Append printf output to a growing buffer. */
static void buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (*buf && *len + (size_t)n < *cap) {
			*len += (size_t)n;
			return;
		}
		size_t ncap = (*cap ? *cap * 2 : 4096) + (size_t)n;
		char *b = realloc(*buf, ncap);
		if (!b)
			return;
		*buf = b;
		*cap = ncap;
	}
}

/* Render the Prometheus text body. */
static char *metrics_render(struct daemon *d, size_t *ret_len)
{
	char *b = NULL;
	size_t len = 0, cap = 0;
	const struct stats *s = &d->stats;
	struct type_rt *t;

	buf_printf(&b, &len, &cap,
		   "# HELP corral_workers_spawned_total Workers spawned.\n"
		   "# TYPE corral_workers_spawned_total counter\n"
		   "corral_workers_spawned_total %llu\n"
		   "# HELP corral_workers_exited_total Workers exited.\n"
		   "# TYPE corral_workers_exited_total counter\n"
		   "corral_workers_exited_total %llu\n"
		   "# HELP corral_workers_crashed_total Workers that died unexpectedly.\n"
		   "# TYPE corral_workers_crashed_total counter\n"
		   "corral_workers_crashed_total %llu\n"
		   "# HELP corral_restarts_total Replacements of crashed workers.\n"
		   "# TYPE corral_restarts_total counter\n"
		   "corral_restarts_total %llu\n"
		   "# HELP corral_calls_total Calls answered, by outcome.\n"
		   "# TYPE corral_calls_total counter\n"
		   "corral_calls_total{outcome=\"ok\"} %llu\n"
		   "corral_calls_total{outcome=\"failed\"} %llu\n"
		   "# HELP corral_call_duration_us Call duration percentiles.\n"
		   "# TYPE corral_call_duration_us gauge\n"
		   "corral_call_duration_us{quantile=\"0.5\"} %llu\n"
		   "corral_call_duration_us{quantile=\"0.99\"} %llu\n"
		   "# HELP corral_workers Live workers by type and state.\n"
		   "# TYPE corral_workers gauge\n",
		   (unsigned long long)s->spawned, (unsigned long long)s->exited,
		   (unsigned long long)s->crashed, (unsigned long long)s->restarts,
		   (unsigned long long)s->calls_ok, (unsigned long long)s->calls_failed,
		   (unsigned long long)stats_percentile(s, 0.5),
		   (unsigned long long)stats_percentile(s, 0.99));
	TAILQ_FOREACH(t, &d->types, entry)
	{
		for (int st = W_STARTING; st < W_EXITED; st++)
			buf_printf(&b, &len, &cap, "corral_workers{type=\"%s\",state=\"%s\"} %u\n",
				   t->name, wstate_names[st], t->nstate[st]);
	}
	buf_printf(&b, &len, &cap,
		   "# HELP corral_queued_calls Calls waiting for a worker.\n"
		   "# TYPE corral_queued_calls gauge\n");
	TAILQ_FOREACH(t, &d->types, entry)
	buf_printf(&b, &len, &cap, "corral_queued_calls{type=\"%s\"} %u\n", t->name, t->nqueued);
	*ret_len = len;
	return b;
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
		} else {
			body = metrics_render(c->m->d, &blen);
		}
		size_t cap = blen + 256;
		c->out = malloc(cap);
		if (!c->out) {
			free(body);
			mclient_free(c);
			return;
		}
		int h = snprintf(c->out, cap,
				 "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
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

/* Listen on "host:port" (loopback) or an absolute UNIX socket path. */
struct metrics *metrics_start(struct daemon *d, const char *listen_on)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int fd = -1;
	if (!m)
		return NULL;
	m->d = d;
	if (listen_on[0] == '/') {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		if (strlen(listen_on) >= sizeof(sa.sun_path))
			goto fail;
		strcpy(sa.sun_path, listen_on);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		unlink(listen_on);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
		m->unix_path = strdup(listen_on);
	} else {
		char host[256];
		const char *colon = strrchr(listen_on, ':');
		if (!colon || (size_t)(colon - listen_on) >= sizeof(host))
			goto fail;
		memcpy(host, listen_on, (size_t)(colon - listen_on));
		host[colon - listen_on] = '\0';
		char *h = host;
		if (h[0] == '[') {
			h++;
			h[strcspn(h, "]")] = '\0';
		}
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
		struct addrinfo *ai = NULL;
		if (getaddrinfo(h, colon + 1, &hints, &ai) != 0 || !ai)
			goto fail;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			freeaddrinfo(ai);
			goto fail;
		}
		freeaddrinfo(ai);
	}
	if (listen(fd, 64) < 0)
		goto fail;
	m->lfd = fd;
	m->ev = event_new(d->base, fd, EV_READ | EV_PERSIST, metrics_on_accept, m);
	m->ev_pause = evtimer_new(d->base, metrics_on_pause, m);
	if (!m->ev || !m->ev_pause)
		goto fail;
	event_add(m->ev, NULL);
	log_notice("metrics at http://%s/metrics", listen_on);
	return m;
fail:
	log_err("metrics: cannot listen on %s: %s", listen_on, strerror(errno));
	if (m->ev)
		event_free(m->ev);
	if (m->ev_pause)
		event_free(m->ev_pause);
	if (fd >= 0)
		close(fd);
	free(m->unix_path);
	free(m);
	return NULL;
}

/* Stop listening and drop every client. */
void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	while (!LIST_EMPTY(&m->clients))
		mclient_free(LIST_FIRST(&m->clients));
	event_free(m->ev);
	event_free(m->ev_pause);
	close(m->lfd);
	if (m->unix_path) {
		unlink(m->unix_path);
		free(m->unix_path);
	}
	free(m);
}
