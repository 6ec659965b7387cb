/*
 * pool.h - a type's pool of workers: min/max, on-demand spawns, the queue,
 * idle reaping, key isolation, crash accounting and backoff, and the
 * `spawn`/`restart` requests that wait for workers to be ready.
 */
#ifndef CORRAL_POOL_H
#define CORRAL_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/util.h>
#include <jansson.h>

#include "control.h"
#include "worker.h"

struct call;
struct client;
struct daemon;
struct type_rt;
struct worker;

/* How a worker ended, as the pool needs to know it. */
struct worker_exit {
	uint64_t id;
	const char *key;
	enum exit_cause cause;
	bool crash;	   /* counts toward burst */
	bool before_ready; /* died before its handshake */
	const char *reason;
	const char *spawn_err; /* the step that failed before execve, or NULL */
};

/* Live workers of t: starting, idle and busy. */
unsigned pool_live(const struct type_rt *t);
/* The spares t keeps now (pool.spares, "auto" resolved). */
unsigned pool_spares_wanted(const struct type_rt *t);
/* Is t in crash-loop backoff? */
bool pool_in_backoff(const struct type_rt *t);
/* Take a new call: to an idle worker, into the queue (growing the pool), or refused. */
void pool_submit(struct call *c);
/* Hand queued calls to idle workers; grow the pool for the rest. */
void pool_pump(struct type_rt *t);
/* Keep min workers of t (spawned from the loop, one per turn: never blocking it). */
void pool_reconcile(struct type_rt *t);
/* Fail every call queued for t with code. */
void pool_fail_queue(struct type_rt *t, enum ctl_code code, const char *msg);

/* Worker news (from worker.c). */
void pool_worker_ready(struct worker *w);
void pool_worker_unready(struct worker *w, const char *err);
void pool_worker_done(struct worker *w);
bool pool_may_reap(const struct worker *w);
void pool_worker_exited(struct type_rt *t, const struct worker_exit *e);
void pool_on_healthy(evutil_socket_t fd, short what, void *arg);

/* `spawn`: count workers of t; replies to client once all are ready. */
void pool_spawn(struct type_rt *t, unsigned count, struct client *client, json_t *id);
/* `restart`: replace workers ids one at a time; replies `restarted` when done. */
void pool_restart(struct daemon *d, const uint64_t *ids, size_t n, struct client *client,
		  json_t *id);
/* The refill event (one spawn per loop turn). */
void pool_on_refill(evutil_socket_t fd, short what, void *arg);

#endif
