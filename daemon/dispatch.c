/*
 * dispatch.c - the data plane: routing calls to workers (on-demand pools,
 * queues, key isolation), moving payload and result bytes through the ring
 * with flow control, and giving every call exactly one reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "sandbox.h"
#include "server.h"

/* Results up to this size stay in memory and may go inline; larger ones spill to a memfd. */
#define INLINE_RESULT_MAX (LINE_MAX_BYTES)

static void call_on_timeout(evutil_socket_t fd, short what, void *arg);
static void call_start(struct worker *w, struct call *c);

/* Log-linear histogram bucket of a duration in µs: 8 sub-buckets per power of two. */
static unsigned hist_bucket(uint64_t us)
{
	if (us < 8)
		return (unsigned)us;
	unsigned lg = 63u - (unsigned)__builtin_clzll(us);
	unsigned sub = (unsigned)((us >> (lg - 3)) & 7u);
	unsigned b = (lg - 2) * 8 + sub;
	return b < 64 * 8 ? b : 64 * 8 - 1;
}

/* Lower bound of a bucket, in µs. */
static uint64_t hist_value(unsigned b)
{
	if (b < 8)
		return b;
	unsigned lg = b / 8 + 2, sub = b % 8;
	return ((uint64_t)8 + sub) << (lg - 3);
}

/* Record one call duration. */
void stats_record_latency(struct stats *s, uint64_t us)
{
	s->hist[hist_bucket(us)]++;
	s->hist_n++;
}

/* The p-th percentile (0..1) of call durations, in µs. */
uint64_t stats_percentile(const struct stats *s, double p)
{
	if (!s->hist_n)
		return 0;
	uint64_t want = (uint64_t)(p * (double)s->hist_n + 0.999999);
	if (want < 1)
		want = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < 64 * 8; b++) {
		seen += s->hist[b];
		if (seen >= want)
			return hist_value(b);
	}
	return hist_value(64 * 8 - 1);
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
	json_decref(c->req_id);
	free(c->payload);
	free(c->res);
	free(c->key);
	free(c);
}

/* Detach a call from its worker (the worker keeps running). */
static void call_detach(struct call *c)
{
	if (c->worker) {
		c->worker->call = NULL;
		c->worker = NULL;
	}
}

static void call_reply_line(struct call *c, char *line, size_t len, int fd, bool ok);

/* Send a reply for c (if its client is still there) and free it. */
static void call_reply(struct call *c, json_t *reply, int fd, bool ok)
{
	char *line = reply ? json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(reply);
	if (!line) {
		/* Every call gets its one reply, even when this one cannot be encoded. */
		char *id = json_dumps(c->req_id, JSON_COMPACT | JSON_ENCODE_ANY);
		if (fd >= 0)
			close(fd);
		fd = -1;
		ok = false;
		if (asprintf(&line,
			     "{\"id\":%s,\"ok\":false,\"error\":{\"code\":\"internal\","
			     "\"message\":\"the reply could not be encoded\"}}",
			     id ? id : "null") < 0)
			line = NULL;
		free(id);
	}
	call_reply_line(c, line, line ? strlen(line) : 0, fd, ok);
}

/* Send an already serialized reply line (line is taken) and free the call. */
static void call_reply_line(struct call *c, char *line, size_t len, int fd, bool ok)
{
	struct daemon *d = c->d;
	struct client *cl = c->client;

	if (ok)
		d->stats.calls_ok++;
	else
		d->stats.calls_failed++;
	stats_record_latency(&d->stats, mono_us() - c->start_us);
	call_detach(c);
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

/* Reply with an error and free the call. */
void call_finish_error(struct call *c, const char *code, const char *fmt, ...)
{
	char msg[2200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_sanitize(msg);
	json_t *o = json_pack("{s:O,s:b,s:{s:s,s:s}}", "id", c->req_id, "ok", 0, "error", "code",
			      code, "message", msg);
	call_reply(c, o, -1, false);
}

/* The worker serving c is gone or broke the protocol: c fails with code. */
void worker_fail_call(struct worker *w, const char *code, const char *msg)
{
	struct call *c = w->call;
	if (!c)
		return;
	call_detach(c);
	call_finish_error(c, code, "%s", msg);
}

/* Idle worker of t for key (NULL: any), or NULL; the most recently used first. */
static struct worker *type_idle_worker(struct type_rt *t, const char *key)
{
	struct worker *w;
	TAILQ_FOREACH(w, &t->idle, ientry)
	{
		if (w->call)
			continue;
		if (!key || (w->key && strcmp(w->key, key) == 0))
			return w;
	}
	return NULL;
}

/* Count live (not stopping) workers of t serving key, and those still starting. */
static void type_count_key(struct type_rt *t, const char *key, unsigned *live, unsigned *starting)
{
	struct worker *w;
	if (!key) {
		*starting = t->nstate[W_STARTING];
		*live = type_live(t);
		return;
	}
	*live = *starting = 0;
	TAILQ_FOREACH(w, &t->workers, tentry)
	{
		if (w->state == W_STOPPING || w->state == W_EXITED)
			continue;
		if (key && (!w->key || strcmp(w->key, key) != 0))
			continue;
		(*live)++;
		if (w->state == W_STARTING)
			(*starting)++;
	}
}

/* Queued calls for key (NULL: all). */
static unsigned type_count_queued(struct type_rt *t, const char *key)
{
	unsigned n = 0;
	struct call *c;
	if (!key)
		return t->nqueued;
	TAILQ_FOREACH(c, &t->queue, qentry)
	if (c->key && strcmp(c->key, key) == 0)
		n++;
	return n;
}

/* Reap an idle worker of another key to make room (isolated types at max). */
static bool type_evict_idle(struct type_rt *t, const char *key)
{
	struct worker *w;
	TAILQ_FOREACH(w, &t->workers, tentry)
	{
		if (w->state == W_IDLE && !w->call && w->key && strcmp(w->key, key) != 0 &&
		    type_count_queued(t, w->key) == 0) {
			worker_stop(w, 5000);
			return true;
		}
	}
	return false;
}

/*
 * Spawn one more worker for key when the pool allows it; true when one
 * started.  A failed spawn is reported in err (err[0] set) and touches no call:
 * the caller may be walking the queue.
 */
static bool type_grow(struct type_rt *t, const char *key, char *err, size_t errlen)
{
	const struct pool_config *p = &t->cfg->pool;
	struct daemon *d = t->d;
	unsigned live, starting;

	unsigned total = type_live(t);
	if (t->retired || (total >= p->max && !key))
		return false;
	if (d->shutting_down && t->nworkers > 0)
		return false; /* draining: only a type with no worker left may start one */
	if (t->backoff_until_ms && now_ms() < t->backoff_until_ms)
		return false;
	if (key) {
		type_count_key(t, key, &live, &starting);
		if (live >= p->max_per_key)
			return false;
	}
	if (total >= p->max || t->nworkers >= p->max) {
		if (key)
			type_evict_idle(t, key);
		return false;
	}
	struct worker *w = worker_spawn(t, key, err, errlen);
	if (!w) {
		log_err("type %s: cannot spawn a worker: %s", t->name, err);
		return false;
	}
	if (t->restarts_pending) {
		d->stats.restarts++;
		t->restarts_pending = false;
	}
	return true;
}

/* A spawn failed: queued calls that no live worker can serve would wait for nothing. */
static void type_fail_orphans(struct type_rt *t, const char *err)
{
	struct call *c, *tmp;
	unsigned live, starting;

	for (c = TAILQ_FIRST(&t->queue); c; c = tmp) {
		tmp = TAILQ_NEXT(c, qentry);
		type_count_key(t, c->key, &live, &starting);
		if (live == 0)
			call_finish_error(c, "internal", "cannot start a %s worker: %s", t->name,
					  err);
	}
}

/* Hand queued calls to idle workers; grow the pool for the rest. */
void type_pump(struct type_rt *t)
{
	struct call *c, *tmp;
	char err[256] = "";

	for (c = TAILQ_FIRST(&t->queue); c; c = tmp) {
		tmp = TAILQ_NEXT(c, qentry);
		struct worker *w = type_idle_worker(t, c->key);
		if (w) {
			TAILQ_REMOVE(&t->queue, c, qentry);
			t->nqueued--;
			c->queued = false;
			call_start(w, c);
			continue;
		}
		if (!c->key) {
			/* No idle worker at all: the rest of the queue waits too.  Start
			 * as many workers as calls wait beyond those already starting. */
			while (t->nqueued > t->nstate[W_STARTING] &&
			       type_grow(t, NULL, err, sizeof(err)))
				;
			break;
		}
		/* Key isolation: is a worker on its way for this key? */
		unsigned live, starting;
		type_count_key(t, c->key, &live, &starting);
		if (type_count_queued(t, c->key) > starting &&
		    !type_grow(t, c->key, err, sizeof(err)) && err[0])
			break;
	}
	if (err[0])
		type_fail_orphans(t, err);
}

/* Accept a new call: dispatch, queue, or refuse. */
void call_submit(struct call *c)
{
	struct type_rt *t = c->type;
	const struct pool_config *p = &t->cfg->pool;

	struct worker *w = type_idle_worker(t, c->key);
	if (w && TAILQ_EMPTY(&t->queue)) {
		call_start(w, c);
		return;
	}
	unsigned live, starting;
	type_count_key(t, c->key, &live, &starting);
	unsigned waiting = type_count_queued(t, c->key);
	/* Calls a starting worker will take are not waiting in the queue proper
	 * (unless the type crash-loops: its starting workers are no promise). */
	unsigned nstart = type_in_backoff(t) ? 0 : t->nstate[W_STARTING];
	unsigned queued = t->nqueued - (t->nqueued < nstart ? t->nqueued : nstart);
	bool room = queued < p->queue || (!type_in_backoff(t) && waiting < starting);
	if (!room) {
		/* Past the queue: maybe a new worker can still take it. */
		unsigned total = type_live(t);
		room = total < p->max && !type_in_backoff(t) && now_ms() >= t->backoff_until_ms &&
		       (!c->key || live < p->max_per_key);
	}
	if (!room) {
		if (type_in_backoff(t))
			call_finish_error(c, "unavailable",
					  "type %s is in crash-loop backoff and its queue is full",
					  t->name);
		else
			call_finish_error(c, "busy",
					  "type %s: all %u workers busy and %u calls "
					  "queued",
					  t->name, p->max, t->nqueued);
		return;
	}
	TAILQ_INSERT_TAIL(&t->queue, c, qentry);
	t->nqueued++;
	c->queued = true;
	type_pump(t);
}

/* Arm the call's timeout (the event lives in the call: no allocation per call). */
void call_arm_timeout(struct call *c, uint64_t ms)
{
	evtimer_assign(&c->timer, c->d->base, call_on_timeout, c);
	struct timeval tv = tv_ms(ms);
	evtimer_add(&c->timer, &tv);
	c->timer_set = true;
}

/* The call ran out of time: reply timeout; kill its worker if it had one. */
static void call_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	(void)fd;
	(void)what;
	struct worker *w = c->worker;
	uint64_t ms = (mono_us() - c->start_us) / 1000;

	if (w) {
		call_detach(c);
		worker_kill(w, SIGKILL, "call timeout");
		event_del(w->ev_sock);
	}
	call_finish_error(c, "timeout", "call to %s timed out after %llu ms", c->type->name,
			  (unsigned long long)ms);
}

/* Ring the worker's doorbell. */
static int worker_doorbell(struct worker *w)
{
	int r = frame_send(w->sock, MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0);
	return r == -EAGAIN ? 0 : r; /* a full socket holds doorbells enough */
}

/*
 * Write as much pending payload into the ring as fits; -1 on a fault.  bell:
 * ring the worker when it waits for bytes (false when MSG_CALL follows anyway).
 */
static int worker_tx_pump(struct worker *w, bool bell)
{
	struct call *c = w->call;
	for (;;) {
		if (!c || c->payload_off >= c->payload_len || c->payload_fd >= 0)
			return 0;
		size_t n = 0;
		int r = ring_write(&w->ring.tx, c->payload + c->payload_off,
				   c->payload_len - c->payload_off, &n);
		if (r < 0)
			return -1;
		c->payload_off += n;
		if (n > 0 && ring_producer_wake_needed(&w->ring.tx) && bell &&
		    worker_doorbell(w) < 0)
			return -1;
		if (c->payload_off >= c->payload_len)
			return 0;
		if (n == 0 && ring_producer_prepare_sleep(&w->ring.tx))
			return 0; /* the worker rings when it has made room */
	}
}

/* Spill the in-memory result to a memfd and continue there. */
static int call_spill(struct call *c)
{
	int fd = memfd_create("corral-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < c->res_len) {
		ssize_t n = write(fd, c->res + off, c->res_len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	free(c->res);
	c->res = NULL;
	c->res_len = c->res_cap = 0;
	c->res_memfd = fd;
	return 0;
}

/* Append result bytes (bounded by output_kb); -1 when out of memory or disk. */
static int call_append(struct call *c, const void *p, size_t n)
{
	uint64_t limit = c->type->cfg->limits.output_kb * 1024u;
	c->res_total += n;
	if (c->res_too_large || c->res_total > limit) {
		c->res_too_large = true;
		return 0;
	}
	if (c->res_memfd < 0 && c->res_len + n > INLINE_RESULT_MAX && call_spill(c) < 0)
		return -1;
	if (c->res_memfd >= 0) {
		const uint8_t *b = p;
		while (n) {
			ssize_t w = write(c->res_memfd, b, n);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			b += w;
			n -= (size_t)w;
		}
		return 0;
	}
	if (c->res_len + n > c->res_cap) {
		size_t cap = c->res_cap ? c->res_cap : 4096;
		while (cap < c->res_len + n)
			cap *= 2;
		uint8_t *r = realloc(c->res, cap);
		if (!r)
			return -1;
		c->res = r;
		c->res_cap = cap;
	}
	memcpy(c->res + c->res_len, p, n);
	c->res_len += n;
	return 0;
}

/* Drain the worker's ring into its call; -1 on a fault (corrupt ring). */
static int worker_rx_drain(struct worker *w, bool *ret_oom)
{
	for (;;) {
		const void *p;
		size_t n;
		bool any = false;
		int r;
		while ((r = ring_peek(&w->ring.rx, &p, &n)) == 1) {
			if (!w->call)
				return -1; /* bytes with no call to carry them */
			if (call_append(w->call, p, n) < 0)
				*ret_oom = true;
			ring_consume(&w->ring.rx, n);
			any = true;
			/* Past output_kb: stop here (a worker streaming without end must
			 * not hold the loop); the caller answers too_large. */
			if (w->call->res_too_large)
				return -2;
		}
		if (r < 0)
			return -1;
		if (any && ring_consumer_wake_needed(&w->ring.rx) && worker_doorbell(w) < 0)
			return -1;
		if (ring_consumer_prepare_sleep(&w->ring.rx))
			return 0;
	}
}

/* Put the worker back to work, or recycle it after max_requests. */
static void worker_after_call(struct worker *w)
{
	const struct pool_config *p = &w->type->cfg->pool;
	if (w->state != W_IDLE)
		return;
	if (p->max_requests && w->requests >= p->max_requests) {
		worker_stop(w, 5000);
		type_reconcile(w->type);
		type_pump(w->type);
		return;
	}
	type_pump(w->type);
	if (w->state == W_IDLE && !w->call)
		worker_idle(w); /* stops it when draining */
}

/* The result outgrew output_kb: the call is too_large, the worker goes (no crash). */
static void worker_over_limit(struct worker *w)
{
	worker_kill(w, SIGKILL, "result past output_kb");
	event_del(w->ev_sock);
	char msg[128];
	snprintf(msg, sizeof(msg), "result exceeds the output limit of %llu KiB",
		 (unsigned long long)w->type->cfg->limits.output_kb);
	worker_fail_call(w, "too_large", msg);
}

/* A doorbell: drain results, continue the payload. */
void worker_on_doorbell(struct worker *w)
{
	bool oom = false;
	int r = worker_rx_drain(w, &oom);
	if (r == -2) {
		worker_over_limit(w);
		return;
	}
	if (r < 0 || worker_tx_pump(w, true) < 0) {
		worker_fault(w, "worker_error", "corrupt ring");
		return;
	}
	if (oom && w->call) {
		/* We cannot hold its result: the call fails now, the worker goes. */
		worker_kill(w, SIGKILL, "no memory for its result");
		event_del(w->ev_sock);
		worker_fail_call(w, "internal", "corrald ran out of memory for the result");
	}
}

/* Is fd a memfd sealed against write, grow and shrink, of size len? */
static bool result_fd_ok(int fd, uint64_t len)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	unsigned need = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
	if (seals < 0 || ((unsigned)seals & need) != need)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len)
		return false;
	return true;
}

/* Seal a result memfd and rewind it. */
static int seal_result(int fd)
{
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		return -1;
	return lseek(fd, 0, SEEK_SET) < 0 ? -1 : 0;
}

/*
 * The ok reply of an inline result as one line; its length (*ret_line is
 * malloc'd, NULL when out of memory or when the id cannot be encoded).
 */
static size_t inline_reply(struct call *c, uint64_t worker, uint64_t dur, char **ret_line)
{
	const char *res = c->res ? (const char *)c->res : "";
	char *id = json_dumps(c->req_id, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	char *val = NULL;
	const char *key = "result";

	*ret_line = NULL;
	if (!id)
		return 0;
	json_t *s = c->text ? json_stringn(res, c->res_len) : NULL;
	if (s) {
		val = json_dumps(s, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
		json_decref(s);
	} else {
		char *b = b64_encode(res, c->res_len);
		if (b && asprintf(&val, "\"%s\"", b) < 0)
			val = NULL;
		free(b);
		key = "result_b64";
	}
	int n = -1;
	if (val)
		n = asprintf(ret_line,
			     "{\"id\":%s,\"ok\":true,\"worker\":%llu,\"duration_us\":%llu,"
			     "\"%s\":%s}",
			     id, (unsigned long long)worker, (unsigned long long)dur, key, val);
	free(id);
	free(val);
	if (n < 0) {
		*ret_line = NULL;
		return 0;
	}
	return (size_t)n;
}

/* MSG_RESULT: check it against what arrived and reply. */
void worker_on_result(struct worker *w, struct frame *f)
{
	struct call *c = w->call;
	struct msg_result res;
	bool oom = false;
	char why[160];

	if (f->hdr.call_id != c->seq || msg_result_decode(f->payload, f->hdr.len, &res) < 0 ||
	    (f->hdr.flags & ~RESULT_F_MASK) ||
	    ((f->hdr.flags & RESULT_F_FD) ? f->nfds != 1 : f->nfds != 0)) {
		snprintf(why, sizeof(why), "malformed result");
		goto fault;
	}
	if (c->payload_fd < 0 && c->payload_off < c->payload_len) {
		snprintf(why, sizeof(why), "result before the whole payload was read");
		goto fault;
	}
	int dr = worker_rx_drain(w, &oom);
	if (dr == -2) {
		worker_over_limit(w);
		return;
	}
	if (dr < 0) {
		snprintf(why, sizeof(why), "corrupt ring");
		goto fault;
	}
	int rfd = -1;
	if (f->hdr.flags & RESULT_F_FD) {
		if (!c->want_fd) {
			snprintf(why, sizeof(why), "a result fd for a call that asked for none");
			goto fault;
		}
		if (c->res_total != 0 || !result_fd_ok(f->fds[0], res.len)) {
			snprintf(why, sizeof(why), "result fd is not a sealed memfd of its length");
			goto fault;
		}
		/* The client gets an open file of its own (offset included), not the worker's. */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fds[0]);
		rfd = open(path, O_RDONLY | O_CLOEXEC);
		if (rfd < 0) {
			snprintf(why, sizeof(why), "cannot reopen the result fd: %s",
				 strerror(errno));
			goto fault;
		}
		c->res_total = res.len;
	} else if (c->res_total != res.len) {
		snprintf(why, sizeof(why), "result length %llu but %llu bytes in the ring",
			 (unsigned long long)res.len, (unsigned long long)c->res_total);
		goto fault;
	}
	if (!worker_transition_result(w)) {
		if (rfd >= 0)
			close(rfd);
		snprintf(why, sizeof(why), "result out of order");
		goto fault;
	}
	w->requests++;
	call_detach(c);
	uint64_t limit = c->type->cfg->limits.output_kb * 1024u;
	uint64_t dur = mono_us() - c->start_us;
	if (res.status == RESULT_ERROR) {
		if (rfd >= 0)
			close(rfd);
		const char *m = res.message && *res.message ? res.message : "handler failed";
		/* A stdio program killed by the seccomp filter is a sandbox violation. */
		bool sys = strncmp(m, "killed by SIGSYS", 16) == 0;
		/* A stdio program the OOM killer took in the worker's memory cgroup. */
		uint64_t kills = w->in_cgroup ? sandbox_cgroup_oom_kills(w->id) : 0;
		bool mem = kills > w->oom_kills;
		if (mem)
			w->oom_kills = kills;
		call_finish_error(c, sys ? "sandbox_violation" : "worker_error", "%s%s",
				  mem ? "out of memory: " : "", m);
	} else if (res.status == RESULT_TOO_LARGE || c->res_too_large || res.len > limit) {
		if (rfd >= 0)
			close(rfd);
		call_finish_error(c, "too_large", "result exceeds the output limit of %llu KiB",
				  (unsigned long long)c->type->cfg->limits.output_kb);
	} else if (oom) {
		if (rfd >= 0)
			close(rfd);
		call_finish_error(c, "internal", "cannot hold the result: %s", strerror(errno));
	} else {
		if (rfd < 0 && c->res_memfd < 0 && !c->want_fd) {
			/* The hot path: the reply line built directly, the result encoded
			 * once (a JSON string when the request was text and the bytes are
			 * UTF-8, else base64). */
			char *line = NULL;
			size_t len = inline_reply(c, w->id, dur, &line);
			if (line && len <= LINE_MAX_BYTES) {
				call_reply_line(c, line, len, -1, true);
				goto done;
			}
			free(line);
			/* Too large inline: go by fd after all. */
			if (call_spill(c) < 0) {
				call_finish_error(c, "internal", "cannot create a memfd: %s",
						  strerror(errno));
				goto done;
			}
		}
		if (rfd < 0) {
			if (c->res_memfd < 0 && call_spill(c) < 0) {
				call_finish_error(c, "internal", "cannot create a memfd: %s",
						  strerror(errno));
				goto done;
			}
			if (seal_result(c->res_memfd) < 0) {
				call_finish_error(c, "internal", "cannot seal the result: %s",
						  strerror(errno));
				goto done;
			}
			rfd = c->res_memfd;
			c->res_memfd = -1;
		} else {
			lseek(rfd, 0, SEEK_SET);
		}
		call_reply(c,
			   json_pack("{s:O,s:b,s:I,s:I,s:b}", "id", c->req_id, "ok", 1, "worker",
				     (json_int_t)w->id, "duration_us", (json_int_t)dur, "result_fd",
				     1),
			   rfd, true);
	}
done:
	worker_after_call(w);
	return;
fault:
	worker_fault(w, "worker_error", why);
}

/* Give call c to idle worker w: payload into the ring, then MSG_CALL. */
static void call_start(struct worker *w, struct call *c)
{
	uint8_t buf[64];
	struct msg_call mc;
	uint32_t flags = 0;
	int fds[1];
	unsigned nfds = 0;

	event_del(w->timer);
	w->call = c;
	c->worker = w;
	c->seq = ++w->d->next_call_seq;
	if (w->type->cfg->pool.isolate == ISOLATE_KEY && !w->key && c->key)
		w->key = strdup(c->key);
	worker_transition_call(w);
	if (c->payload_fd >= 0) {
		struct stat st;
		fstat(c->payload_fd, &st);
		mc.len = (uint64_t)st.st_size;
		flags = CALL_F_PAYLOAD_FD | CALL_F_WANT_FD;
		fds[0] = c->payload_fd;
		nfds = 1;
	} else {
		mc.len = c->payload_len;
		if (worker_tx_pump(w, false) < 0)
			goto fault;
	}
	/* Announce that we wait for result bytes before the worker can produce any:
	 * its first chunk then rings our doorbell (see ring.h). */
	bool oom = false;
	if (worker_rx_drain(w, &oom) < 0)
		goto fault;
	long len = msg_call_encode(buf, sizeof(buf), &mc);
	int r = frame_send(w->sock, MSG_CALL, flags, c->seq, buf, (size_t)len, fds, nfds);
	if (r < 0)
		goto fault;
	if (c->payload_fd >= 0) {
		/* The worker holds its own copy of the fd now. */
		close(c->payload_fd);
		c->payload_fd = -1;
	}
	return;
fault:
	worker_fault(w, "worker_crashed", "cannot take the call");
}
