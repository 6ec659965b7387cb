/*
 * daemon.c - corrald as a whole: startup (the socket listens before any
 * worker is spawned; min workers come from the loop), signals, systemd
 * readiness and status, and the drain that ends it.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral-config.h"
#include "log.h"
#include "metrics.h"
#include "sandbox.h"
#include "sd.h"
#include "server.h"

/* Tell systemd how things stand (at most once a second unless the worker count changed). */
static void daemon_notify_status(struct daemon *d)
{
	static uint64_t last_ms;
	static unsigned last_workers = (unsigned)-1;
	if (!getenv("NOTIFY_SOCKET"))
		return;
	uint64_t now = now_ms();
	if (d->nworkers == last_workers && now - last_ms < 1000)
		return;
	last_ms = now;
	last_workers = d->nworkers;
	sd_notifyf("STATUS=%u workers, %llu calls ok, %llu failed", d->nworkers,
		   (unsigned long long)d->stats.calls_ok,
		   (unsigned long long)d->stats.calls_failed);
}

/*
 * Send READY=1 once the socket listens and every type's min workers said
 * hello (types in crash-loop backoff do not hold it back).  Called at start and
 * on every hello and exit until it has fired: no polling.
 */
static void daemon_ready_check(struct daemon *d)
{
	struct type_rt *t;

	if (d->ready_sent || !d->server)
		return;
	TAILQ_FOREACH(t, &d->types, entry)
	{
		if (t->cfg->pool.isolate == ISOLATE_KEY || pool_in_backoff(t) || t->min_paused)
			continue;
		if (t->nstate[W_IDLE] + t->nstate[W_BUSY] < t->cfg->pool.min && !d->shutting_down)
			return;
	}
	d->ready_sent = true;
	sd_notifyf("READY=1\nSTATUS=%u workers", d->nworkers);
	log_notice("ready: %u workers", d->nworkers);
}

/* Leave the loop once draining is complete. */
static void daemon_check_exit(struct daemon *d)
{
	struct type_rt *t;
	if (!d->shutting_down)
		return;
	TAILQ_FOREACH(t, &d->types, entry)
	{
		/* Queued calls with no worker left to serve them cannot finish. */
		if (t->nworkers == 0)
			pool_fail_queue(t, CTL_SHUTTING_DOWN,
					"corrald shut down before the call could run");
	}
	if (d->nworkers == 0)
		event_base_loopexit(d->base, NULL);
}

/* Something changed: status, readiness, the end of a drain. */
void daemon_changed(struct daemon *d)
{
	daemon_notify_status(d);
	daemon_ready_check(d);
	daemon_check_exit(d);
}

/* The drain ran out of time: fail what still waits, kill what still runs. */
static void daemon_on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct type_rt *t;
	struct worker *w, *tmp;
	(void)fd;
	(void)what;
	log_warn("shutdown: drain timed out; killing %u workers", d->nworkers);
	TAILQ_FOREACH(t, &d->types, entry)
	pool_fail_queue(t, CTL_SHUTTING_DOWN, "corrald shut down before the call could run");
	TAILQ_FOREACH(t, &d->retired, entry)
	pool_fail_queue(t, CTL_SHUTTING_DOWN, "corrald shut down before the call could run");
	for (w = TAILQ_FIRST(&d->workers); w; w = tmp) {
		tmp = TAILQ_NEXT(w, dentry);
		worker_abort(w, "shutdown timeout");
	}
	daemon_check_exit(d);
}

/*
 * Begin the drain: the socket still accepts (read-only commands answer, the
 * server refuses the others), calls already accepted finish (queued ones
 * too, on the workers there are), idle workers stop, busy ones stop after
 * their call; the loop ends once every worker is reaped, SIGKILL for what is
 * left after timeout_ms.
 */
void daemon_begin_shutdown(struct daemon *d, uint64_t timeout_ms)
{
	struct worker *w, *tmp;

	if (d->shutting_down)
		return;
	d->shutting_down = true;
	log_notice("shutting down: draining %u workers", d->nworkers);
	struct type_rt *t;
	TAILQ_FOREACH(t, &d->types, entry)
	spares_discard(t);
	sd_notifyf("STOPPING=1");
	d->shutdown_timer = evtimer_new(d->base, daemon_on_shutdown_timeout, d);
	struct timeval tv = tv_ms(timeout_ms);
	evtimer_add(d->shutdown_timer, &tv);
	for (w = TAILQ_FIRST(&d->workers); w; w = tmp) {
		tmp = TAILQ_NEXT(w, dentry);
		if (!w->call && w->type->nqueued == 0)
			worker_stop(w, timeout_ms);
	}
	daemon_check_exit(d);
}

/* Signals, delivered by libevent from the loop. */
static void daemon_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	switch (sig) {
	case SIGCHLD:
		worker_reap(d);
		break;
	case SIGTERM:
	case SIGINT:
		log_notice("%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		daemon_begin_shutdown(d, 10000);
		break;
	case SIGHUP: {
		char *errors = NULL;
		json_t *r = reload_from_file(d, &errors);
		json_decref(r);
		free(errors);
		break;
	}
	}
}

/* Free every type, active and retired. */
static void daemon_free_types(struct daemon *d)
{
	struct type_rt *t;
	while ((t = TAILQ_FIRST(&d->types))) {
		TAILQ_REMOVE(&d->types, t, entry);
		type_destroy(t);
	}
	while ((t = TAILQ_FIRST(&d->retired))) {
		TAILQ_REMOVE(&d->retired, t, entry);
		type_destroy(t);
	}
}

/* The event loop with our signals and the refill event; -1 when it cannot be made. */
static int daemon_loop_init(struct daemon *d)
{
	struct event_config *ec = event_config_new();
	event_config_avoid_method(ec, "select");
	d->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!d->base || event_base_priority_init(d->base, EV_NPRIO) < 0) {
		log_err("cannot create the event loop");
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	d->ev_sigchld = evsignal_new(d->base, SIGCHLD, daemon_on_signal, d);
	d->ev_sigterm = evsignal_new(d->base, SIGTERM, daemon_on_signal, d);
	d->ev_sigint = evsignal_new(d->base, SIGINT, daemon_on_signal, d);
	d->ev_sighup = evsignal_new(d->base, SIGHUP, daemon_on_signal, d);
	/* Spawning for min runs last in a loop turn: control requests go first. */
	d->ev_refill = event_new(d->base, -1, 0, pool_on_refill, d);
	if (!d->ev_sigchld || !d->ev_sigterm || !d->ev_sigint || !d->ev_sighup || !d->ev_refill)
		fatal("out of memory");
	event_priority_set(d->ev_refill, EV_NPRIO - 1);
	event_add(d->ev_sigchld, NULL);
	event_add(d->ev_sigterm, NULL);
	event_add(d->ev_sigint, NULL);
	event_add(d->ev_sighup, NULL);
	return 0;
}

/* Run corrald with cfg; the exit code. */
int daemon_run(struct config *cfg, const char *config_path, const char *socket_arg)
{
	struct daemon daemon = {0}, *d = &daemon;
	struct type_rt *t;
	int rc = 0;

	d->config_path = config_path ? strdup(config_path) : NULL;
	d->start_ms = now_ms();
	d->uid = geteuid();
	d->uid_root = d->uid == 0;
	TAILQ_INIT(&d->types);
	TAILQ_INIT(&d->retired);
	TAILQ_INIT(&d->refill);
	TAILQ_INIT(&d->workers);
	TAILQ_INIT(&d->reaped);
	TAILQ_INIT(&d->wakes);
	TAILQ_INIT(&d->dead_spares);
	d->worker_path = spawn_find_worker_binary();
	if (access(d->worker_path, X_OK) < 0)
		log_warn("worker binary %s: %s", d->worker_path, strerror(errno));
	d->sb_available = sandbox_probe(d);
	d->cfg = calloc(1, sizeof(*d->cfg));
	if (!d->cfg)
		fatal("out of memory");
	d->cfg->cfg = cfg;
	d->cfg->refs = 1;
	if (daemon_loop_init(d) < 0) {
		rc = 1;
		goto out;
	}
	d->socket_path = server_default_path(socket_arg, cfg);
	if (server_start(d, d->socket_path, cfg) < 0) {
		rc = 1;
		goto out;
	}
	log_notice("corrald %s listening on %s", CORRAL_VERSION, d->socket_path);
	spawn_init(); /* while our fd table is small */
	/* A configured listener that cannot bind is fatal: never run unobserved by mistake. */
	if (cfg->metrics_listen && !(d->metrics = metrics_start(d, cfg->metrics_listen))) {
		rc = 1;
		goto out;
	}
	type_init_all(d, d->cfg);
	TAILQ_FOREACH(t, &d->types, entry)
	pool_reconcile(t); /* spawned from the loop: the socket answers meanwhile */
	sd_watchdog_start(d->base);
	daemon_ready_check(d);

	event_base_dispatch(d->base);

out:
	/* Drained (or never started): say goodbye to clients (a client that does
	 * not read gets 100 ms at most), release everything. */
	server_end_streams(d->server, "corrald is shutting down");
	for (int i = 0; i < 50 && !server_flush_all(d->server); i++)
		usleep(2000);
	sd_watchdog_stop();
	if (d->shutdown_timer)
		event_free(d->shutdown_timer);
	metrics_free(d->metrics);
	server_free(d->server, d->socket_path);
	spares_finish(d);
	daemon_free_types(d);
	config_holder_put(d->cfg);
	if (d->base) {
		event_free(d->ev_sigchld);
		event_free(d->ev_sigterm);
		event_free(d->ev_sigint);
		event_free(d->ev_sighup);
		event_free(d->ev_refill);
		event_base_free(d->base);
	}
	free(d->worker_path);
	free(d->socket_path);
	free(d->config_path);
	if (rc == 0)
		log_notice("exited cleanly");
	return rc;
}
