/*
 * pool.c - a type's pool of workers (DESIGN.md "Pools").
 *
 * A call submitted by call.c goes to an idle worker, else waits in the
 * type's queue while the pool grows (up to max, max_per_key under key
 * isolation, evicting idle workers of other keys), else is refused.  Workers
 * above min go after idle_timeout_ms; min is refilled from the loop, one
 * spawn per turn, so that spawning never holds the control socket.  A death
 * counts as a crash when worker.c says so (young deaths); more than burst
 * crashes within interval_ms put the type in exponential backoff with
 * jitter, capped at backoff_ms[1].  A call that waits for a worker that
 * cannot start is answered `unavailable` at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "type.h"

/* Alive and not on its way out. */
unsigned pool_live(const struct type_rt *t)
{
	return t->nstate[W_STARTING] + t->nstate[W_IDLE] + t->nstate[W_BUSY];
}

/* The workers kept alive: min, unless isolated by key or paused by `stop TYPE`. */
static unsigned pool_min(const struct type_rt *t)
{
	return t->cfg->pool.isolate == ISOLATE_KEY || t->min_paused ? 0 : t->cfg->pool.min;
}

/* Is the type in crash-loop backoff? */
bool pool_in_backoff(const struct type_rt *t)
{
	return t->backoff_level > 0;
}

/* Spawns are allowed now (not waiting out a backoff delay). */
static bool pool_may_spawn(const struct type_rt *t)
{
	return !t->backoff_until_ms || now_ms() >= t->backoff_until_ms;
}

/* Wait delay ms before the next spawn. */
static void pool_delay(struct type_rt *t, uint64_t delay)
{
	t->backoff_until_ms = now_ms() + delay;
	struct timeval tv = tv_ms(delay);
	evtimer_add(t->backoff_timer, &tv);
}

/* Record a crash; enter or deepen backoff when the burst is exceeded. */
static void pool_note_crash(struct type_rt *t)
{
	const struct restart_config *r = &t->cfg->restart;
	uint64_t now = now_ms();
	unsigned slots = type_crash_slots(t->cfg);

	t->crash_ts[t->crash_pos] = now;
	t->crash_pos = (t->crash_pos + 1) % slots;
	if (t->ncrash < slots)
		t->ncrash++;
	unsigned recent = 0;
	for (unsigned i = 0; i < t->ncrash; i++)
		if (now - t->crash_ts[i] <= r->interval_ms)
			recent++;
	if (t->backoff_level == 0 && recent <= r->burst)
		return;
	if (t->backoff_level < 63)
		t->backoff_level++;
	uint64_t delay = r->backoff_ms[0];
	for (unsigned i = 1; i < t->backoff_level && delay < r->backoff_ms[1]; i++)
		delay *= 2;
	/* Jitter: 75%..125%, so that many types do not retry in lockstep; within
	 * [backoff_ms[0], backoff_ms[1]], jitter included. */
	delay = delay * (750 + (uint64_t)(random() % 501)) / 1000;
	if (delay > r->backoff_ms[1])
		delay = r->backoff_ms[1];
	if (delay < r->backoff_ms[0])
		delay = r->backoff_ms[0];
	if (delay < 1)
		delay = 1;
	pool_delay(t, delay);
	log_warn("type %s: crash loop (%u crashes within %llu ms); next spawn in %llu ms", t->name,
		 recent, (unsigned long long)r->interval_ms, (unsigned long long)delay);
}

/* Healthy for interval_ms: the type's backoff resets. */
void pool_on_healthy(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct type_rt *t = w->type;
	(void)fd;
	(void)what;
	if (w->reaped)
		return;
	t->backoff_level = 0;
	t->ncrash = 0;
	t->crash_pos = 0;
	t->backoff_until_ms = 0;
	event_del(t->backoff_timer);
}

/* Spawn one worker of t for key; counts a restart when it replaces a crashed one. */
static struct worker *pool_spawn_one(struct type_rt *t, const char *key, char *err, size_t errlen)
{
	struct worker *w = worker_spawn(t, key, err, errlen);
	if (!w) {
		log_err("type %s: cannot spawn a worker: %s", t->name, err);
		type_note_failure(t, 0, err);
		return NULL;
	}
	if (t->restarts_pending) {
		stats_on_restart(t);
		t->restarts_pending = false;
	}
	pool_reconcile(t); /* the spare it may have taken */
	return w;
}

/* Does t need one more worker for min now? */
static bool pool_below_min(const struct type_rt *t)
{
	return !t->retired && !t->d->shutting_down && pool_may_spawn(t) &&
	       pool_live(t) < pool_min(t) && t->nworkers < t->cfg->pool.max;
}

/*
 * The spares t keeps now: pool.spares, or "auto": 1 once min > 0 or a call
 * spawned on demand.  A spare of corral-worker (builtin, stdio) is exec'd and
 * has said hello: taking it skips the whole spawn.  A native program's spare
 * waits before execve, a copy of the daemon: that pays only with namespaces
 * to set up (its execve from the copy measured slower than a fresh spawn
 * without them: restart p50 3.7 against 3.2 ms; 4.5 against 6.0 ms with them).
 */
unsigned pool_spares_wanted(const struct type_rt *t)
{
	if (t->retired || t->d->shutting_down || t->min_paused || t->spares_broken)
		return 0;
	int32_t n = t->cfg->pool.spares;
	if (n == SPARES_AUTO)
		n = (pool_min(t) > 0 || t->had_demand) && (t->ns || t->cfg->mode != MODE_NATIVE)
			? 1
			: 0;
	return (unsigned)n;
}

/*
 * Does t need one more spare now?  Only once none of its workers is starting:
 * a spare's spawn holds the loop (a held one copies the daemon, with
 * copy-on-write faults while the copy lives), which would slow the worker
 * that just took one.
 */
static bool pool_needs_spare(const struct type_rt *t)
{
	return pool_may_spawn(t) && t->nstate[W_STARTING] == 0 &&
	       t->nspares < pool_spares_wanted(t);
}

/* Run the refill event on a later loop turn, after the loop has polled again: an
 * event made active from its own callback would run again in the same turn. */
static void pool_refill_soon(struct daemon *d)
{
	static const struct timeval now = {0, 0};
	event_add(d->ev_refill, &now);
}

/* Keep min workers of t: queue it for the refill event. */
void pool_reconcile(struct type_rt *t)
{
	struct daemon *d = t->d;
	if (t->refill_queued || !(pool_below_min(t) || pool_needs_spare(t)))
		return;
	t->refill_queued = true;
	TAILQ_INSERT_TAIL(&d->refill, t, rentry);
	pool_refill_soon(d);
}

/* The refill event: one spawn per loop turn, round robin over the types below min,
 * then their spares. */
void pool_on_refill(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	char err[256];
	(void)fd;
	(void)what;

	struct type_rt *t = TAILQ_FIRST(&d->refill);
	if (!t)
		return;
	/* Replies waiting to be flushed (or any other event) go first: a spawn
	 * holds the loop for a while.  Only a few times in a row, so that a
	 * daemon under constant load still refills. */
	bool cheap = t->nspares > 0 && pool_below_min(t); /* taking a spare does not hold it */
	if (!cheap && d->refill_yields < 8 &&
	    event_base_get_num_events(d->base, EVENT_BASE_COUNT_ACTIVE) > 0) {
		d->refill_yields++;
		pool_refill_soon(d);
		return;
	}
	d->refill_yields = 0;
	TAILQ_REMOVE(&d->refill, t, rentry);
	t->refill_queued = false;
	if (pool_below_min(t)) {
		if (!pool_spawn_one(t, NULL, err, sizeof(err))) {
			pool_note_crash(t);
			if (!pool_in_backoff(t))
				pool_delay(t,
					   t->cfg->restart.backoff_ms[0]); /* never a tight loop */
		}
	} else if (pool_needs_spare(t)) {
		spare_make(t); /* a failure stops the spares (spares_broken) */
	}
	pool_reconcile(t);
	if (!TAILQ_EMPTY(&d->refill))
		pool_refill_soon(d);
}

/* Fail every call queued for t with code. */
void pool_fail_queue(struct type_rt *t, enum ctl_code code, const char *msg)
{
	while (!TAILQ_EMPTY(&t->queue))
		call_fail(TAILQ_FIRST(&t->queue), code, "%s", msg);
}

/* Idle worker of t for key (NULL: any), or NULL; the most recently used first. */
static struct worker *pool_idle_worker(struct type_rt *t, const char *key)
{
	struct worker *w;
	TAILQ_FOREACH(w, &t->idle, ientry)
	{
		if (w->call || w->reaped) /* reaped: its exit is on its way */
			continue;
		if (!key || (w->key && strcmp(w->key, key) == 0))
			return w;
	}
	return NULL;
}

/* Count live (not stopping) workers of t serving key, and those still starting. */
static void pool_count_key(struct type_rt *t, const char *key, unsigned *live, unsigned *starting)
{
	struct worker *w;
	if (!key) {
		*starting = t->nstate[W_STARTING];
		*live = pool_live(t);
		return;
	}
	*live = *starting = 0;
	TAILQ_FOREACH(w, &t->workers, tentry)
	{
		if (w->state == W_STOPPING || w->state == W_EXITED)
			continue;
		if (!w->key || strcmp(w->key, key) != 0)
			continue;
		(*live)++;
		if (w->state == W_STARTING)
			(*starting)++;
	}
}

/* Queued calls for key (NULL: all). */
static unsigned pool_count_queued(struct type_rt *t, const char *key)
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
static void pool_evict_idle(struct type_rt *t, const char *key)
{
	struct worker *w;
	TAILQ_FOREACH(w, &t->workers, tentry)
	{
		if (w->state == W_IDLE && !w->call && w->key && strcmp(w->key, key) != 0 &&
		    pool_count_queued(t, w->key) == 0) {
			worker_stop(w, 5000);
			return;
		}
	}
}

/*
 * Spawn one more worker for key when the pool allows it; true when one
 * started.  A failed spawn is reported in err (err[0] set) and touches no call:
 * the caller may be walking the queue.
 */
static bool pool_grow(struct type_rt *t, const char *key, char *err, size_t errlen)
{
	const struct pool_config *p = &t->cfg->pool;
	struct daemon *d = t->d;
	unsigned live, starting;

	unsigned total = pool_live(t);
	if (t->retired || (total >= p->max && !key))
		return false;
	if (d->shutting_down && t->nworkers > 0)
		return false; /* draining: only a type with no worker left may start one */
	if (!pool_may_spawn(t))
		return false;
	if (key) {
		pool_count_key(t, key, &live, &starting);
		if (live >= p->max_per_key)
			return false;
	}
	if (total >= p->max || t->nworkers >= p->max) {
		if (key)
			pool_evict_idle(t, key);
		return false;
	}
	t->had_demand = true;
	return pool_spawn_one(t, key, err, errlen) != NULL;
}

/* A worker could not be started (why): queued calls no live worker can serve
 * would wait for nothing; they are unavailable now. */
static void pool_fail_unstartable(struct type_rt *t, const char *why)
{
	struct call *c, *tmp;
	unsigned live, starting;

	for (c = TAILQ_FIRST(&t->queue); c; c = tmp) {
		tmp = TAILQ_NEXT(c, qentry);
		pool_count_key(t, c->key, &live, &starting);
		if (live == 0)
			call_fail(c, CTL_UNAVAILABLE, "cannot start a worker of type %s: %s",
				  t->name, why);
	}
}

/* Hand queued calls to idle workers; grow the pool for the rest. */
void pool_pump(struct type_rt *t)
{
	struct call *c, *tmp;
	char err[256] = "";

	for (c = TAILQ_FIRST(&t->queue); c; c = tmp) {
		tmp = TAILQ_NEXT(c, qentry);
		struct worker *w = pool_idle_worker(t, c->key);
		if (w) {
			TAILQ_REMOVE(&t->queue, c, qentry);
			t->nqueued--;
			c->queued = false;
			worker_take_call(w, c);
			continue;
		}
		if (!c->key) {
			/* No idle worker at all: the rest of the queue waits too.  Start
			 * as many workers as calls wait beyond those already starting. */
			while (t->nqueued > t->nstate[W_STARTING] &&
			       pool_grow(t, NULL, err, sizeof(err)))
				;
			break;
		}
		/* Key isolation: is a worker on its way for this key? */
		unsigned live, starting;
		pool_count_key(t, c->key, &live, &starting);
		if (pool_count_queued(t, c->key) > starting &&
		    !pool_grow(t, c->key, err, sizeof(err)) && err[0])
			break;
	}
	if (err[0])
		pool_fail_unstartable(t, err);
}

/* Take a new call: to an idle worker, into the queue (growing the pool), or refused. */
void pool_submit(struct call *c)
{
	struct type_rt *t = c->type;
	const struct pool_config *p = &t->cfg->pool;

	struct worker *w = pool_idle_worker(t, c->key);
	if (w && TAILQ_EMPTY(&t->queue)) {
		worker_take_call(w, c);
		return;
	}
	unsigned live, starting;
	pool_count_key(t, c->key, &live, &starting);
	unsigned waiting = pool_count_queued(t, c->key);
	/* Calls a starting worker will take are not waiting in the queue proper
	 * (unless the type crash-loops: its starting workers are no promise). */
	bool backoff = pool_in_backoff(t);
	unsigned nstart = backoff ? 0 : t->nstate[W_STARTING];
	unsigned queued = t->nqueued - (t->nqueued < nstart ? t->nqueued : nstart);
	bool room = queued < p->queue || (!backoff && waiting < starting);
	if (!room) /* Past the queue: maybe a new worker can still take it. */
		room = pool_live(t) < p->max && !backoff && pool_may_spawn(t) &&
		       (!c->key || live < p->max_per_key);
	if (!room) {
		if (backoff)
			call_fail(c, CTL_UNAVAILABLE,
				  "type %s is in crash-loop backoff and its queue is full",
				  t->name);
		else
			call_fail(c, CTL_BUSY,
				  "type %s: all %u workers busy and its queue of %u calls is full",
				  t->name, p->max, p->queue);
		return;
	}
	TAILQ_INSERT_TAIL(&t->queue, c, qentry);
	t->nqueued++;
	c->queued = true;
	pool_pump(t);
}

/* An idle worker above min waits idle_timeout_ms before it is reaped. */
static void pool_worker_idle(struct worker *w)
{
	const struct type_rt *t = w->type;
	if (t->retired || w->d->shutting_down) {
		worker_stop(w, 5000);
		return;
	}
	worker_arm_idle(w, pool_live(t) > pool_min(t) ? t->cfg->pool.idle_timeout_ms : 0);
}

/* May the idle timer of w stop it (still above min)? */
bool pool_may_reap(const struct worker *w)
{
	return pool_live(w->type) > pool_min(w->type);
}

static void restart_next(struct spawn_req *r);

/* Reply to a `spawn` or `restart` and free it. */
static void spawn_req_reply(struct spawn_req *r)
{
	if (r->client) {
		LIST_REMOVE(r, centry);
		struct client *c = r->client;
		r->client = NULL;
		if (r->error_code) {
			client_reply_error(c, r->req_id, r->error_code, "%s", r->error_msg);
		} else {
			json_t *o = json_object();
			json_object_set(o, r->restart ? "restarted" : "workers", r->ids);
			client_reply_ok(c, r->req_id, o);
		}
	}
	json_decref(r->req_id);
	json_decref(r->ids);
	free(r->error_code);
	free(r->error_msg);
	free(r->old);
	free(r);
}

/* Note why a worker of r failed (the first reason wins). */
static void spawn_req_error(struct spawn_req *r, const char *err)
{
	if (err && !r->error_code) {
		r->error_code = strdup(ctl_code_name(CTL_UNAVAILABLE));
		r->error_msg = strdup(err);
	}
}

/* Drop one hold on a `spawn` request; replies at zero. */
static void spawn_req_unref(struct spawn_req *r, const char *err)
{
	spawn_req_error(r, err);
	if (--r->pending == 0)
		spawn_req_reply(r);
}

/* A new request (spawn or restart) held once by its creator. */
static struct spawn_req *spawn_req_new(struct daemon *d, struct client *client, json_t *id)
{
	struct spawn_req *r = calloc(1, sizeof(*r));
	if (!r)
		fatal("out of memory");
	r->d = d;
	r->client = client;
	r->req_id = json_incref(id);
	r->ids = json_array();
	r->pending = 1;
	LIST_INSERT_HEAD(&client->spawns, r, centry);
	return r;
}

/* The worker w is ready (err NULL) or will never be (err): tell who waits for it. */
void pool_worker_unready(struct worker *w, const char *err)
{
	struct spawn_req *r = w->spawn_req;
	if (!r)
		return;
	w->spawn_req = NULL;
	if (!r->restart) {
		spawn_req_unref(r, err);
		return;
	}
	if (err) {
		char msg[300];
		snprintf(msg, sizeof(msg), "cannot start a replacement for worker %llu: %s",
			 (unsigned long long)r->old[r->next], err);
		spawn_req_error(r, msg);
		spawn_req_reply(r);
		return;
	}
	/* The replacement is ready: the old one stops gracefully, then the next. */
	struct worker *old = worker_find(r->d, r->old[r->next]);
	if (old && !old->reaped)
		worker_stop(old, 5000);
	json_array_append_new(r->ids, json_integer((json_int_t)r->old[r->next]));
	r->next++;
	restart_next(r);
}

/* Start the replacement of the next old worker still alive, or reply when done. */
static void restart_next(struct spawn_req *r)
{
	char err[256];
	for (; r->next < r->nold; r->next++) {
		struct worker *old = worker_find(r->d, r->old[r->next]);
		if (!old || old->reaped || old->state == W_STOPPING)
			continue;
		/* One past max for a moment: the new worker is ready before the old stops. */
		struct worker *w = pool_spawn_one(old->type, old->key, err, sizeof(err));
		if (!w) {
			char msg[300];
			snprintf(msg, sizeof(msg), "cannot start a replacement for worker %llu: %s",
				 (unsigned long long)old->id, err);
			spawn_req_error(r, msg);
			break;
		}
		w->spawn_req = r;
		return;
	}
	spawn_req_reply(r);
}

/* `restart`: replace workers ids one at a time. */
void pool_restart(struct daemon *d, const uint64_t *ids, size_t n, struct client *client,
		  json_t *id)
{
	struct spawn_req *r = spawn_req_new(d, client, id);
	r->restart = true;
	r->old = calloc(n ? n : 1, sizeof(uint64_t));
	if (!r->old)
		fatal("out of memory");
	memcpy(r->old, ids, n * sizeof(uint64_t));
	r->nold = n;
	restart_next(r);
}

/* `spawn`: count workers of t; replies once all are ready.  It resumes the min refill. */
void pool_spawn(struct type_rt *t, unsigned count, struct client *client, json_t *id)
{
	char err[256];
	struct spawn_req *r = spawn_req_new(t->d, client, id);

	t->min_paused = false;
	for (unsigned i = 0; i < count; i++) {
		struct worker *w = pool_spawn_one(t, NULL, err, sizeof(err));
		if (!w) {
			spawn_req_error(r, err);
			break;
		}
		json_array_append_new(r->ids, json_integer((json_int_t)w->id));
		w->spawn_req = r;
		r->pending++;
	}
	/* Drop our hold: replies now when every worker already resolved. */
	spawn_req_unref(r, NULL);
	pool_reconcile(t);
}

/* The handshake is done: tell who waits, serve the queue, or wait idle. */
void pool_worker_ready(struct worker *w)
{
	struct type_rt *t = w->type;
	if (t->backoff_level || t->ncrash) {
		struct timeval tv = tv_ms(t->cfg->restart.interval_ms);
		evtimer_add(w->healthy_timer, &tv);
	}
	pool_worker_unready(w, NULL);
	t->spares_broken = false; /* its sandbox works: spares may try again */
	pool_pump(t);
	if (w->state == W_IDLE && !w->call)
		pool_worker_idle(w);
	pool_reconcile(t);
	daemon_changed(w->d);
}

/* A call is answered: put the worker back to work, or recycle it after max_requests. */
void pool_worker_done(struct worker *w)
{
	const struct pool_config *p = &w->type->cfg->pool;
	if (w->state != W_IDLE || w->reaped)
		return;
	if (p->max_requests && w->requests >= p->max_requests) {
		worker_stop(w, 5000);
		pool_reconcile(w->type);
		pool_pump(w->type);
		return;
	}
	pool_pump(w->type);
	if (w->state == W_IDLE && !w->call)
		pool_worker_idle(w); /* stops it when draining */
}

/* A worker of t is gone: crash accounting, calls that waited for it, replacement. */
void pool_worker_exited(struct type_rt *t, const struct worker_exit *e)
{
	struct daemon *d = t->d;
	bool asked = e->cause == EXIT_STOPPED || e->cause == EXIT_KILLED;

	if (e->crash)
		pool_note_crash(t);
	if (!asked) {
		type_note_failure(t, e->id, e->spawn_err ? e->spawn_err : e->reason);
		t->restarts_pending = true;
	}
	if (e->before_ready && !asked) {
		char why[200];
		if (e->spawn_err)
			snprintf(why, sizeof(why), "%s", e->spawn_err);
		else
			snprintf(why, sizeof(why), "%s%s", e->reason,
				 e->cause == EXIT_START_TIMEOUT ? "" : " before ready");
		pool_fail_unstartable(t, why);
	}
	if (t->retired && t->nworkers == 0) {
		TAILQ_REMOVE(&d->retired, t, entry);
		type_destroy(t);
		return;
	}
	/* A replacement that only takes a spare holds the loop for no time: now,
	 * not a refill turn later. */
	if (t->nspares > 0 && pool_below_min(t)) {
		char err[256];
		pool_spawn_one(t, NULL, err, sizeof(err)); /* else the refill retries */
	}
	pool_reconcile(t);
	pool_pump(t);
}
