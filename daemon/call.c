/*
 * call.c - a call from the accepted request to its one reply.
 *
 * commands.c builds the call and submits it here; its timeout starts (never
 * longer than the type's limits.timeout_ms) and the pool takes it (pool.c);
 * a worker serves it (worker.c) through its ring (transfer.c); the result or
 * the failure comes back here and becomes the one reply, accounted in stats.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "log.h"
#include "sandbox.h"
#include "msg.h"
#include "server.h"

static void call_on_timeout(evutil_socket_t fd, short what, void *arg);

/* A new call of type t, no payload yet. */
struct call *call_new(struct daemon *d, struct type_rt *t)
{
	struct call *c = calloc(1, sizeof(*c));
	if (!c)
		fatal("out of memory");
	c->d = d;
	c->type = t;
	c->payload_fd = -1;
	c->res_memfd = -1;
	c->res_fd = -1;
	c->start_us = mono_us();
	return c;
}

/* Release a call and everything it holds. */
void call_free(struct call *c)
{
	if (c->client)
		LIST_REMOVE(c, centry);
	if (c->queued) {
		TAILQ_REMOVE(&c->type->queue, c, qentry);
		c->type->nqueued--;
	}
	if (c->timer_set)
		event_del(&c->timer);
	if (c->payload_fd >= 0)
		close(c->payload_fd);
	if (c->res_memfd >= 0)
		close(c->res_memfd);
	if (c->res_fd >= 0)
		close(c->res_fd);
	json_decref(c->req_id);
	free(c->payload);
	free(c->res);
	free(c->res_msg);
	free(c->key);
	free(c);
}

/* Put c, which no worker began, back in its type's queue: after `after`, or at its head. */
void call_requeue(struct call *c, struct call *after)
{
	struct type_rt *t = c->type;

	c->worker = NULL;
	c->ring = false;
	c->rec_end = 0;
	c->payload_off = 0;
	if (after)
		TAILQ_INSERT_AFTER(&t->queue, after, c, qentry);
	else
		TAILQ_INSERT_HEAD(&t->queue, c, qentry);
	t->nqueued++;
	c->queued = true;
}

/* Accept c: its timeout starts, the pool takes it. */
void call_submit(struct call *c, uint64_t timeout_ms)
{
	uint64_t limit = c->type->cfg->limits.timeout_ms;
	/* A call's own timeout may shorten the type's, never extend it. */
	c->timeout_ms = timeout_ms && timeout_ms < limit ? timeout_ms : limit;
	evtimer_assign(&c->timer, c->d->base, call_on_timeout, c);
	struct timeval tv = tv_ms(c->timeout_ms);
	evtimer_add(&c->timer, &tv);
	c->timer_set = true;
	pool_submit(c);
}

/* Send an already serialized reply line (line is taken), account it, free the call. */
static void call_reply_line(struct call *c, char *line, size_t len, int fd, enum ctl_code code)
{
	struct client *cl = c->client;

	stats_on_call(c->d, c->type, mono_us() - c->start_us, code);
	if (c->in_pipe) {
		/* Still queued in its worker's ring: answered now, kept (without its
		 * payload) until the worker is past it, so the ring's order holds. */
		c->answered = true;
		if (c->timer_set) {
			event_del(&c->timer);
			c->timer_set = false;
		}
		free(c->payload);
		c->payload = NULL;
		if (cl) {
			LIST_REMOVE(c, centry);
			c->client = NULL;
			client_send_line(cl, line, len, fd);
		} else {
			free(line);
			if (fd >= 0)
				close(fd);
		}
		return;
	}
	if (c->worker) {
		c->worker->call = NULL;
		c->worker = NULL;
	}
	if (cl) {
		LIST_REMOVE(c, centry);
		c->client = NULL;
		client_send_line(cl, line, len, fd);
	} else {
		free(line);
		if (fd >= 0)
			close(fd);
	}
	call_free(c);
}

/* Send a reply object for c (taken) and free it. */
static void call_reply(struct call *c, json_t *reply, int fd, enum ctl_code code)
{
	char *line = reply ? json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(reply);
	if (!line) {
		/* Every call gets its one reply, even when this one cannot be encoded. */
		if (fd >= 0)
			close(fd);
		fd = -1;
		code = CTL_INTERNAL;
		reply = ctl_reply_error(c->req_id, code, "the reply could not be encoded");
		line = reply ? json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		json_decref(reply);
	}
	call_reply_line(c, line, line ? strlen(line) : 0, fd, code);
}

/* Reply with an error and free the call. */
void call_fail(struct call *c, enum ctl_code code, const char *fmt, ...)
{
	char msg[2200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_utf8_sanitize(msg);
	call_reply(c, ctl_reply_error(c->req_id, code, msg), -1, code);
}

/* The call ran out of time: its worker is killed (the table says how), the reply is timeout. */
static void call_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	struct worker *w = c->worker;
	(void)fd;
	(void)what;

	c->timer_set = false;
	if (w && !c->in_pipe) { /* a call still queued in a ring leaves its worker alone */
		w->call = NULL;
		c->worker = NULL;
		worker_event(w, WEV_CALL_TIMEOUT);
	}
	call_fail(c, CTL_TIMEOUT, "call to %s timed out after %llu ms", c->type->name,
		  (unsigned long long)c->timeout_ms);
}

/*
 * The ok reply of an inline result as one line; its length (*ret_line is
 * malloc'd, NULL when out of memory or when the id cannot be encoded).  Built
 * with no JSON objects: the id and the result quoted straight into the line
 * (ctl_json_quote writes what json_dumps would).
 */
static size_t inline_reply(struct call *c, uint64_t worker, uint64_t dur, char **ret_line)
{
	const char *res = c->res ? (const char *)c->res : "";
	char idbuf[32], *idstr = NULL;
	const char *id;
	size_t idlen;

	*ret_line = NULL;
	if (json_is_integer(c->req_id)) {
		idlen = (size_t)snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT,
					 json_integer_value(c->req_id));
		id = idbuf;
	} else {
		idstr = json_dumps(c->req_id, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
		if (!idstr)
			return 0;
		id = idstr;
		idlen = strlen(idstr);
	}
	/* Room for either form of the result: quoted text or base64 in quotes. */
	size_t vmax = CTL_QUOTE_MAX(c->res_len);
	size_t cap = idlen + 102 + vmax; /* {"id": and the fixed keys: 82 at most */
	char *line = malloc(cap);
	if (!line) {
		free(idstr);
		return 0;
	}
	int head =
	    snprintf(line, cap, "{\"id\":%.*s,\"ok\":true,\"worker\":%llu,\"duration_us\":%llu,",
		     (int)idlen, id, (unsigned long long)worker, (unsigned long long)dur);
	free(idstr);
	size_t n = (size_t)head;
	long q = -1;
	if (c->text) {
		memcpy(line + n, "\"result\":", 9);
		q = ctl_json_quote(line + n + 9, res, c->res_len);
		if (q >= 0)
			n += 9 + (size_t)q;
	}
	if (q < 0) { /* not text, or not UTF-8 */
		memcpy(line + n, "\"result_b64\":\"", 14);
		n += 14;
		n += b64_encode_to(line + n, res, c->res_len);
		line[n++] = '"';
	}
	line[n++] = '}';
	line[n] = '\0';
	*ret_line = line;
	return n;
}

/* A successful result as a reply: inline when it fits a line, else as a sealed memfd. */
static void call_reply_result(struct call *c, uint64_t worker)
{
	uint64_t dur = mono_us() - c->start_us;
	int rfd = c->res_fd;

	c->res_fd = -1;
	if (rfd < 0 && c->res_memfd < 0 && !c->want_fd) {
		/* The hot path: the reply line built directly, the result encoded once (a
		 * JSON string when the request was text and the bytes are UTF-8, else
		 * base64). */
		char *line = NULL;
		size_t len = inline_reply(c, worker, dur, &line);
		if (line && len <= LINE_MAX_BYTES) {
			call_reply_line(c, line, len, -1, CTL_OK);
			return;
		}
		free(line);
	}
	if (rfd < 0) {
		if (c->res_memfd < 0 && transfer_spill(c) < 0) {
			call_fail(c, CTL_INTERNAL, "cannot create a memfd: %s", strerror(errno));
			return;
		}
		if (transfer_seal(c->res_memfd) < 0) {
			call_fail(c, CTL_INTERNAL, "cannot seal the result: %s", strerror(errno));
			return;
		}
		rfd = c->res_memfd;
		c->res_memfd = -1;
	} else {
		lseek(rfd, 0, SEEK_SET);
	}
	json_t *o = ctl_reply_ok(c->req_id);
	json_object_set_new(o, "worker", json_integer((json_int_t)worker));
	json_object_set_new(o, "duration_us", json_integer((json_int_t)dur));
	json_object_set_new(o, "result_fd", json_true());
	call_reply(c, o, rfd, CTL_OK);
}

/* The result is in c: reply and free c. */
void call_complete(struct call *c, struct worker *w)
{
	uint64_t worker = w->id;
	uint64_t limit = c->type->cfg->limits.output_kb * 1024u;

	if (c->answered) { /* replied already (timed out in the ring) */
		call_free(c);
		return;
	}
	if (c->res_status == RESULT_ERROR) {
		/* A stdio program killed by the seccomp filter is a sandbox violation. */
		const char *m = c->res_msg ? c->res_msg : "handler failed";
		bool sys = strncmp(m, "killed by SIGSYS", 16) == 0;
		/* A stdio program the OOM killer took in the worker's memory cgroup. */
		uint64_t kills = w->in_cgroup ? sandbox_cgroup_oom_kills(w->cg_id) : 0;
		bool mem = kills > w->oom_kills;
		if (mem)
			w->oom_kills = kills;
		call_fail(c, sys ? CTL_SANDBOX_VIOLATION : CTL_WORKER_ERROR, "%s%s",
			  mem ? "out of memory: " : "", m);
	} else if (c->res_status == RESULT_TOO_LARGE || c->res_too_large || c->res_total > limit) {
		call_fail(c, CTL_TOO_LARGE, "result exceeds the output limit of %llu KiB",
			  (unsigned long long)c->type->cfg->limits.output_kb);
	} else if (c->res_oom) {
		call_fail(c, CTL_INTERNAL, "cannot hold the result: out of memory");
	} else {
		call_reply_result(c, worker);
	}
}
