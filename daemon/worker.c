/*
 * worker.c - one worker's life, as one table of state x event.
 *
 * A worker is created in `starting` by worker_spawn (the "spawned" event).
 * Every later event goes through worker_event(), which looks the cell up,
 * changes the state and runs the cell's action; nothing else changes a
 * worker's state.  "-" keeps the state; "FAULT" is a protocol violation
 * (the worker is killed, its call fails, it counts as a crash).
 *
 *               starting        idle            busy            stopping        exited
 * handshake     idle READY      FAULT           FAULT           - RESTOP        -
 * call_sent     FAULT           busy SERVE      FAULT           FAULT           -
 * call_done     FAULT           FAULT           idle DONE       - DONE          -
 * idle_timeout  -               stopping STOP   -               -               -
 * stop          stopping STOP   stopping STOP   stopping STOP   -               -
 * kill          - SIGNAL        - SIGNAL        - SIGNAL        - SIGNAL        -
 * start_timeout - KILL          -               -               -               -
 * call_timeout  -               -               - KILL          - KILL          -
 * stop_timeout  -               -               -               - KILL          -
 * abort         - KILL          - KILL          - KILL          - KILL          -
 * violation     - FAULT         - FAULT         - FAULT         - FAULT         -
 * exit          exited REAP     exited REAP     exited REAP     exited REAP     -
 * call_queued   FAULT           FAULT           - QUEUE         FAULT           -
 * call_next     FAULT           FAULT           - NEXT          - NEXT          -
 *
 * Actions: READY (the pool gets a worker), SERVE (the call goes out through
 * the ring), DONE (the call is answered, the worker back to the pool), STOP
 * (MSG_STOP, then SIGKILL after the stop timeout), RESTOP (MSG_STOP again once
 * it listens), SIGNAL (the operator's signal), KILL (SIGKILL and stop reading
 * its channel: worker_kill_now, the one place that does it), FAULT (KILL, and
 * its call fails), REAP (account the exit, fail its call, requeue the calls
 * queued in its ring that it never began, release it, let the pool replace
 * it), QUEUE (one more call waits in its ring behind the current one), NEXT
 * (its call is answered, the next one queued in its ring becomes current).
 *
 * Calls through the ring (proto.h): a busy worker that takes calls from its
 * ring gets more of its type's waiting calls queued there (worker_fill), as
 * many as it can serve within WORKER_PIPE_BUDGET_US at the pace it has shown,
 * at most WORKER_PIPE_MAX, so that one doorbell serves a burst and a slow
 * worker never holds calls another could serve.  Its results come back in
 * order; one that ends a call with more queued is call_next, the last
 * call_done.  A queued call that times out is answered at once and skipped
 * when its turn comes (its result is dropped); one still queued when the
 * worker dies goes back to the head of the type's queue if the ring's tail
 * shows the worker never began it, else fails like the current call.
 *
 * Why a worker died is an enum exit_cause, decided at the reap from what the
 * daemon did to it (the strongest intent of its events) and its wait status;
 * exit_cause_describe() turns a cause into the `reason` of watch events and
 * says whether it counts as a crash, in one place.
 *
 * Exits are reaped in a waitpid loop that only collects them; each is handled
 * after the loop (as libuv does), so no exit handler runs inside it, and only
 * once the frames the worker sent before it went are read (a result, then a
 * graceful exit after MSG_STOP).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "msg.h"
#include "sandbox.h"
#include "server.h"

extern char **environ;

const char *const wstate_names[W_NSTATES] = {"starting", "idle", "busy", "stopping", "exited"};

const char *const wevent_names[WEV_N] = {
    "handshake", "call_sent",	  "call_done",	  "idle_timeout", "stop",
    "kill",	 "start_timeout", "call_timeout", "stop_timeout", "abort",
    "violation", "exit",	  "call_queued",  "call_next",
};

const char *const waction_names[WA_N] = {
    "ignore", "ready", "serve", "done", "stop",	 "restop",
    "signal", "kill",  "fault", "reap", "queue", "next",
};

#define T(s, a)                                                                                    \
	{                                                                                          \
		W_##s, WA_##a                                                                      \
	}

/* The table; unlisted cells are {state kept, WA_IGNORE} (filled in by worker_transition). */
static const struct wtrans table[W_NSTATES][WEV_N] =
    {
	[W_STARTING] =
	    {
		[WEV_HANDSHAKE] = T(IDLE, READY),
		[WEV_CALL_SENT] = T(STARTING, FAULT),
		[WEV_CALL_DONE] = T(STARTING, FAULT),
		[WEV_IDLE_TIMEOUT] = T(STARTING, IGNORE),
		[WEV_STOP] = T(STOPPING, STOP),
		[WEV_KILL] = T(STARTING, SIGNAL),
		[WEV_START_TIMEOUT] = T(STARTING, KILL),
		[WEV_CALL_TIMEOUT] = T(STARTING, IGNORE),
		[WEV_STOP_TIMEOUT] = T(STARTING, IGNORE),
		[WEV_ABORT] = T(STARTING, KILL),
		[WEV_VIOLATION] = T(STARTING, FAULT),
		[WEV_EXIT] = T(EXITED, REAP),
		[WEV_CALL_QUEUED] = T(STARTING, FAULT),
		[WEV_CALL_NEXT] = T(STARTING, FAULT),
	    },
	[W_IDLE] =
	    {
		[WEV_HANDSHAKE] = T(IDLE, FAULT),
		[WEV_CALL_SENT] = T(BUSY, SERVE),
		[WEV_CALL_DONE] = T(IDLE, FAULT),
		[WEV_IDLE_TIMEOUT] = T(STOPPING, STOP),
		[WEV_STOP] = T(STOPPING, STOP),
		[WEV_KILL] = T(IDLE, SIGNAL),
		[WEV_START_TIMEOUT] = T(IDLE, IGNORE),
		[WEV_CALL_TIMEOUT] = T(IDLE, IGNORE),
		[WEV_STOP_TIMEOUT] = T(IDLE, IGNORE),
		[WEV_ABORT] = T(IDLE, KILL),
		[WEV_VIOLATION] = T(IDLE, FAULT),
		[WEV_EXIT] = T(EXITED, REAP),
		[WEV_CALL_QUEUED] = T(IDLE, FAULT),
		[WEV_CALL_NEXT] = T(IDLE, FAULT),
	    },
	[W_BUSY] =
	    {
		[WEV_HANDSHAKE] = T(BUSY, FAULT),
		[WEV_CALL_SENT] = T(BUSY, FAULT),
		[WEV_CALL_DONE] = T(IDLE, DONE),
		[WEV_IDLE_TIMEOUT] = T(BUSY, IGNORE),
		[WEV_STOP] = T(STOPPING, STOP),
		[WEV_KILL] = T(BUSY, SIGNAL),
		[WEV_START_TIMEOUT] = T(BUSY, IGNORE),
		[WEV_CALL_TIMEOUT] = T(BUSY, KILL),
		[WEV_STOP_TIMEOUT] = T(BUSY, IGNORE),
		[WEV_ABORT] = T(BUSY, KILL),
		[WEV_VIOLATION] = T(BUSY, FAULT),
		[WEV_EXIT] = T(EXITED, REAP),
		[WEV_CALL_QUEUED] = T(BUSY, QUEUE),
		[WEV_CALL_NEXT] = T(BUSY, NEXT),
	    },
	[W_STOPPING] =
	    {
		[WEV_HANDSHAKE] = T(STOPPING, RESTOP),
		[WEV_CALL_SENT] = T(STOPPING, FAULT),
		[WEV_CALL_DONE] = T(STOPPING, DONE),
		[WEV_IDLE_TIMEOUT] = T(STOPPING, IGNORE),
		[WEV_STOP] = T(STOPPING, IGNORE),
		[WEV_KILL] = T(STOPPING, SIGNAL),
		[WEV_START_TIMEOUT] = T(STOPPING, IGNORE),
		[WEV_CALL_TIMEOUT] = T(STOPPING, KILL),
		[WEV_STOP_TIMEOUT] = T(STOPPING, KILL),
		[WEV_ABORT] = T(STOPPING, KILL),
		[WEV_VIOLATION] = T(STOPPING, FAULT),
		[WEV_EXIT] = T(EXITED, REAP),
		[WEV_CALL_QUEUED] = T(STOPPING, FAULT),
		[WEV_CALL_NEXT] = T(STOPPING, NEXT),
	    },
	[W_EXITED] =
	    {
		[WEV_HANDSHAKE] = T(EXITED, IGNORE),
		[WEV_CALL_SENT] = T(EXITED, IGNORE),
		[WEV_CALL_DONE] = T(EXITED, IGNORE),
		[WEV_IDLE_TIMEOUT] = T(EXITED, IGNORE),
		[WEV_STOP] = T(EXITED, IGNORE),
		[WEV_KILL] = T(EXITED, IGNORE),
		[WEV_START_TIMEOUT] = T(EXITED, IGNORE),
		[WEV_CALL_TIMEOUT] = T(EXITED, IGNORE),
		[WEV_STOP_TIMEOUT] = T(EXITED, IGNORE),
		[WEV_ABORT] = T(EXITED, IGNORE),
		[WEV_VIOLATION] = T(EXITED, IGNORE),
		[WEV_EXIT] = T(EXITED, IGNORE),
		[WEV_CALL_QUEUED] = T(EXITED, IGNORE),
		[WEV_CALL_NEXT] = T(EXITED, IGNORE),
	    },
};

#undef T

/* What an event tells about the daemon's intent, for the exit cause. */
static const enum exit_cause event_intent[WEV_N] = {
    [WEV_IDLE_TIMEOUT] = EXIT_STOPPED,
    [WEV_STOP] = EXIT_STOPPED,
    [WEV_KILL] = EXIT_KILLED,
    [WEV_START_TIMEOUT] = EXIT_START_TIMEOUT,
    [WEV_CALL_TIMEOUT] = EXIT_CALL_TIMEOUT,
    [WEV_STOP_TIMEOUT] = EXIT_STOPPED,
    [WEV_ABORT] = EXIT_ABORTED,
    [WEV_VIOLATION] = EXIT_FAULT,
};

static void worker_on_sock(evutil_socket_t fd, short what, void *arg);
static void worker_on_log(evutil_socket_t fd, short what, void *arg);
static void worker_on_timer(evutil_socket_t fd, short what, void *arg);
static void worker_on_exit(struct worker *w);

/* The table's cell for state x event. */
struct wtrans worker_transition(enum wstate s, enum wevent ev)
{
	struct wtrans none = {(unsigned char)s, WA_IGNORE};
	if ((unsigned)s >= W_NSTATES || (unsigned)ev >= WEV_N)
		return none;
	return table[s][ev];
}

/* Signals libcorral-worker turns into exit 128+N when it runs as pid 1. */
static bool pid1_signal(int sig)
{
	switch (sig) {
	case SIGHUP:
	case SIGINT:
	case SIGQUIT:
	case SIGILL:
	case SIGTRAP:
	case SIGABRT:
	case SIGBUS:
	case SIGFPE:
	case SIGUSR1:
	case SIGSEGV:
	case SIGUSR2:
	case SIGALRM:
	case SIGTERM:
	case SIGSTKFLT:
	case SIGXCPU:
	case SIGXFSZ:
	case SIGVTALRM:
	case SIGPROF:
	case SIGIO:
	case SIGPWR:
	case SIGSYS:
		return true;
	default:
		return false;
	}
}

/* The signal that ended a process, 0 when it exited; pid 1 of its own namespace
 * ignores signals it has no handler for, so libcorral-worker's handler dies of
 * them as exit 128+N. */
static int death_signal(int st, bool pid1)
{
	if (WIFSIGNALED(st))
		return WTERMSIG(st);
	if (pid1 && WIFEXITED(st) && WEXITSTATUS(st) > 128 && WEXITSTATUS(st) < 128 + 32 &&
	    pid1_signal(WEXITSTATUS(st) - 128))
		return WEXITSTATUS(st) - 128;
	return 0;
}

/* Decide why a worker died. */
enum exit_cause exit_cause_of(enum exit_cause intent, int wstatus, bool oom, bool pid1)
{
	int sig = death_signal(wstatus, pid1);
	if (oom)
		return EXIT_OOM;
	switch (intent) {
	case EXIT_CALL_TIMEOUT:
	case EXIT_START_TIMEOUT:
	case EXIT_FAULT:
	case EXIT_ABORTED:
		/* Our SIGKILL did it (else it died of something else first). */
		if (sig == SIGKILL)
			return intent;
		break;
	case EXIT_STOPPED:
	case EXIT_KILLED:
		return intent;
	default:
		break;
	}
	if (sig == SIGSYS && WIFSIGNALED(wstatus))
		return EXIT_SANDBOX;
	return sig ? EXIT_SIGNAL : EXIT_STATUS;
}

/* Describe how the process ended: "exited with status N" or "killed by SIGNAME". */
static void status_text(int wstatus, bool pid1, char *buf, size_t len)
{
	char sb[32];
	int sig = death_signal(wstatus, pid1);
	if (sig)
		snprintf(buf, len, "killed by %s", ctl_signal_name(sig, sb, sizeof(sb)));
	else
		snprintf(buf, len, "exited with status %d",
			 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 0);
}

/*
 * The reason of an exit (DESIGN.md's watch strings) and whether it is a
 * crash: the worker's own deaths count when it died young; what the daemon
 * or the operator did never counts, but a protocol violation and a start
 * timeout always do.
 */
bool exit_cause_describe(enum exit_cause cause, int wstatus, bool pid1, const char *detail,
			 bool young, char *buf, size_t len)
{
	char st[64];
	/* The reason's first words are DESIGN's; what the daemon did follows in (). */
	status_text(wstatus, pid1, st, sizeof(st));
	switch (cause) {
	case EXIT_OOM:
		snprintf(buf, len, "out of memory");
		return young;
	case EXIT_SANDBOX:
		snprintf(buf, len, "sandbox violation");
		return young;
	case EXIT_START_TIMEOUT:
		snprintf(buf, len, "start timeout");
		return true;
	case EXIT_CALL_TIMEOUT:
		snprintf(buf, len, "killed by SIGKILL (call timeout)");
		return false;
	case EXIT_FAULT:
		snprintf(buf, len, "killed by SIGKILL (protocol violation%s%s)",
			 detail && *detail ? ": " : "", detail ? detail : "");
		return true;
	case EXIT_ABORTED:
		snprintf(buf, len, "killed by SIGKILL (%s)",
			 detail && *detail ? detail : "aborted");
		return false;
	case EXIT_STOPPED:
	case EXIT_KILLED:
		snprintf(buf, len, "%s", st);
		return false;
	case EXIT_SIGNAL:
	case EXIT_STATUS:
	default:
		snprintf(buf, len, "%s", st);
		return young;
	}
}

/* A live worker by id, or NULL. */
struct worker *worker_find(struct daemon *d, uint64_t id)
{
	struct worker *w;
	TAILQ_FOREACH(w, &d->workers, dentry)
	if (w->id == id)
		return w;
	return NULL;
}

/* Arm w->timer for ms. */
static void worker_arm(struct worker *w, uint64_t ms)
{
	struct timeval tv = tv_ms(ms);
	evtimer_add(w->timer, &tv);
}

/* Read the spawn's status pipe: a failure message (kept for the exit), or EOF at execve. */
static void worker_read_status(struct worker *w)
{
	if (w->status_fd < 0)
		return;
	int msg[2];
	ssize_t n = read(w->status_fd, msg, sizeof(msg));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t)sizeof(msg)) {
		/* A spare's execve failed (it has no program or no permission). */
		const struct type_config *tc = w->type->cfg;
		const char *prog = tc->mode == MODE_NATIVE ? tc->exec[0] : w->d->worker_path;
		spawn_status_message(msg, prog, w->spawn_err, sizeof(w->spawn_err));
	}
	event_free(w->ev_status);
	w->ev_status = NULL;
	close(w->status_fd);
	w->status_fd = -1;
}

/* The status pipe is readable. */
static void worker_on_status(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_read_status(arg);
}

/* The worker object around a started process; its channels watched. */
static struct worker *worker_new(struct type_rt *t, const char *key, struct wproc *p)
{
	struct daemon *d = t->d;
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		fatal("out of memory");
	w->d = d;
	w->type = t;
	w->id = ++d->next_worker_id;
	w->in_cgroup = p->in_cgroup;
	w->cg_id = p->cg_id;
	w->pid = p->pid;
	w->key = key ? strdup(key) : NULL;
	w->state = W_STARTING;
	w->started_ms = now_ms();
	w->sock = p->sock;
	w->out_fd = p->out_fd;
	w->err_fd = p->err_fd;
	w->status_fd = p->status_fd;
	w->ring = p->ring;
	w->ev_sock = event_new(d->base, w->sock, EV_READ | EV_PERSIST, worker_on_sock, w);
	w->ev_out = event_new(d->base, w->out_fd, EV_READ | EV_PERSIST, worker_on_log, w);
	w->ev_err = event_new(d->base, w->err_fd, EV_READ | EV_PERSIST, worker_on_log, w);
	if (w->status_fd >= 0)
		w->ev_status =
		    event_new(d->base, w->status_fd, EV_READ | EV_PERSIST, worker_on_status, w);
	w->timer = evtimer_new(d->base, worker_on_timer, w);
	w->healthy_timer = evtimer_new(d->base, pool_on_healthy, w);
	if (!w->ev_sock || !w->ev_out || !w->ev_err || (w->status_fd >= 0 && !w->ev_status) ||
	    !w->timer || !w->healthy_timer)
		fatal("out of memory");
	event_add(w->ev_sock, NULL);
	event_add(w->ev_out, NULL);
	event_add(w->ev_err, NULL);
	if (w->ev_status)
		event_add(w->ev_status, NULL);
	if (p->hello) {
		/* A spare that said hello while it waited: ready on the next loop turn,
		 * not inside the caller's spawn (which may be queueing a call). */
		w->hello_early = true;
		w->ring_calls = p->ring_calls;
		worker_arm(w, 0);
	} else {
		worker_arm(w, t->cfg->limits.start_timeout_ms);
	}
	TAILQ_INSERT_TAIL(&t->workers, w, tentry);
	TAILQ_INSERT_TAIL(&d->workers, w, dentry);
	t->nworkers++;
	t->nstate[W_STARTING]++;
	d->nworkers++;
	stats_on_spawn(t);
	log_debug("spawned %s worker %llu pid %d", t->name, (unsigned long long)w->id, (int)w->pid);
	server_emit_watch(d, w, NULL);
	return w;
}

/*
 * Spawn one worker of type t (serving key, or NULL): one of t's spares when
 * it has one (ready on the next loop turn if it said hello already), else a
 * new process.  Returns the worker in state starting (its sandbox setup and
 * execve may still fail: then it exits with spawn_err set), or NULL with a
 * message in errbuf.
 */
struct worker *worker_spawn(struct type_rt *t, const char *key, char *errbuf, size_t errlen)
{
	struct wproc p;
	if (!spare_take(t, &p) && launch_proc(t, false, &p, errbuf, errlen) < 0)
		return NULL;
	return worker_new(t, key, &p);
}

/* Send one frame on w's channel. */
int worker_send(struct worker *w, uint32_t type, uint32_t flags, uint64_t call_id, const void *p,
		size_t len, const int *fds, unsigned nfds)
{
	if (w->reaped)
		return -EPIPE;
	return frame_send(w->sock, (uint16_t)type, flags, call_id, p, len, fds, nfds);
}

/* Stop reading w's channel: nothing it sends from now on is looked at. */
static void worker_close_channel(struct worker *w)
{
	if (w->ev_sock)
		event_del(w->ev_sock);
}

/* SIGKILL and stop reading its channel: the one kill sequence. */
static void worker_kill_now(struct worker *w)
{
	if (!w->reaped)
		kill(w->pid, SIGKILL);
	worker_close_channel(w);
}

/* Change state: keep the per-type counts and the idle list, tell watchers. */
static void worker_set_state(struct worker *w, enum wstate s)
{
	struct type_rt *t = w->type;
	if (w->state == s)
		return;
	if (w->state == W_IDLE)
		TAILQ_REMOVE(&t->idle, w, ientry);
	if (s == W_IDLE) /* most recently used first: its pages are warm */
		TAILQ_INSERT_HEAD(&t->idle, w, ientry);
	t->nstate[w->state]--;
	t->nstate[s]++;
	w->state = s;
	if (s != W_EXITED) /* "exited" is told once the worker is released: see worker_on_exit */
		server_emit_watch(w->d, w, NULL);
}

/* Take the call away from w (it keeps running); the call or NULL. */
static struct call *worker_detach_call(struct worker *w)
{
	struct call *c = w->call;
	if (c) {
		c->worker = NULL;
		w->call = NULL;
	}
	return c;
}

/* The handshake is done: the worker is ready. */
static void worker_ready(struct worker *w)
{
	event_del(w->timer);
	w->ready_ms = now_ms();
	pool_worker_ready(w);
}

/* Calls queued in a worker's ring behind its current one: at most this many, */
#define WORKER_PIPE_MAX 64u
/* and no more than it serves in this long at the pace it has shown. */
#define WORKER_PIPE_BUDGET_US 2000u

/* Its current call is over: fold the time it took into the worker's pace. */
static void worker_note_done(struct worker *w)
{
	uint64_t now = mono_us(), took = now - w->head_since_us;
	w->svc_us = w->svc_us ? (7 * w->svc_us + took) / 8 : took;
	if (w->svc_us == 0)
		w->svc_us = 1; /* measured: faster than the clock */
	w->head_since_us = now;
}

/* The call is answered: account it, reply, and give the worker back to the pool. */
static void worker_done(struct worker *w)
{
	struct call *c = worker_detach_call(w);
	worker_note_done(w);
	w->requests++;
	if (c)
		call_complete(c, w);
	pool_worker_done(w);
}

/* The call is answered and the next one queued in its ring becomes current. */
static void worker_next(struct worker *w)
{
	struct call *c = worker_detach_call(w);
	struct call *n = w->pipe_first;
	worker_note_done(w);
	w->requests++;
	if (n) {
		w->pipe_first = n->pnext;
		if (!w->pipe_first)
			w->pipe_last = NULL;
		w->npipe--;
		n->pnext = NULL;
		n->in_pipe = false;
		w->call = n;
	}
	if (c)
		call_complete(c, w); /* one answered early (a timeout) is only freed */
}

/*
 * It is gone: the calls queued in its ring that it never began (the ring's
 * tail has not passed their MSG_CALL record) go back to the head of the
 * type's queue, in order; those it may have begun fail like its current call.
 */
static void worker_unpipe(struct worker *w)
{
	long room = ring_producer_room(&w->ring.tx); /* reloads its tail; <0: corrupt */
	uint64_t tail = w->ring.tx.tail;
	struct call *c, *prev = NULL;

	while ((c = w->pipe_first)) {
		w->pipe_first = c->pnext;
		w->npipe--;
		c->pnext = NULL;
		c->in_pipe = false;
		c->worker = NULL;
		if (c->answered) {
			call_free(c);
			continue;
		}
		bool begun = room < 0 || (int64_t)(tail - c->rec_end) >= 0;
		if (begun || w->type->retired) {
			call_fail(c, CTL_WORKER_CRASHED,
				  "worker %llu exited before it finished the call",
				  (unsigned long long)w->id);
		} else {
			call_requeue(c, prev);
			prev = c;
		}
	}
	w->pipe_last = NULL;
}

/* Send MSG_STOP (SIGKILL when the channel is gone) and arm the stop timer. */
static void worker_send_stop(struct worker *w, uint64_t timeout_ms)
{
	if (worker_send(w, MSG_STOP, 0, 0, NULL, 0, NULL, 0) < 0)
		worker_kill_now(w);
	event_del(w->timer);
	worker_arm(w, timeout_ms);
}

/* A protocol violation: kill it, its call fails. */
static void worker_fault(struct worker *w)
{
	log_warn("%s worker %llu (pid %d): protocol violation: %s; killing it", w->type->name,
		 (unsigned long long)w->id, (int)w->pid, w->detail);
	worker_kill_now(w);
	struct call *c = worker_detach_call(w);
	if (c)
		call_fail(c, CTL_WORKER_ERROR, "worker %llu broke the protocol (%s) and was killed",
			  (unsigned long long)w->id, w->detail);
}

/* Apply an event to w through the table. */
void worker_event(struct worker *w, enum wevent ev)
{
	struct wtrans tr = worker_transition(w->state, ev);
	if (tr.action == WA_IGNORE)
		return;
	if (event_intent[ev] > w->intent)
		w->intent = event_intent[ev];
	if (tr.action == WA_FAULT && !w->detail[0])
		snprintf(w->detail, sizeof(w->detail), "%s out of order", wevent_names[ev]);
	worker_set_state(w, (enum wstate)tr.next);
	switch ((enum waction)tr.action) {
	case WA_READY:
		worker_ready(w);
		break;
	case WA_SERVE:
		event_del(w->timer);
		break;
	case WA_DONE:
		worker_done(w);
		break;
	case WA_STOP:
		worker_send_stop(w, ev == WEV_IDLE_TIMEOUT ? 5000 : w->stop_ms);
		break;
	case WA_RESTOP:
		w->ready_ms = now_ms();
		if (worker_send(w, MSG_STOP, 0, 0, NULL, 0, NULL, 0) < 0)
			worker_kill_now(w);
		pool_worker_unready(w, "worker stopped before it was ready");
		break;
	case WA_SIGNAL:
		if (!w->reaped)
			kill(w->pid, w->signal);
		break;
	case WA_KILL:
		log_notice("killing %s worker %llu (pid %d): %s", w->type->name,
			   (unsigned long long)w->id, (int)w->pid,
			   w->detail[0] ? w->detail : wevent_names[ev]);
		worker_kill_now(w);
		break;
	case WA_FAULT:
		worker_fault(w);
		break;
	case WA_REAP:
		worker_unpipe(w);
		worker_on_exit(w);
		break;
	case WA_QUEUE: /* worker_fill linked the call in */
		break;
	case WA_NEXT:
		worker_next(w);
		break;
	case WA_IGNORE:
	case WA_N:
		break;
	}
}

/* Ask w to exit after its current call; SIGKILL after timeout_ms. */
void worker_stop(struct worker *w, uint64_t timeout_ms)
{
	w->stop_ms = timeout_ms;
	worker_event(w, WEV_STOP);
}

/* A protocol violation: the table kills it and fails its call. */
void worker_violation(struct worker *w, const char *what)
{
	if (!w->detail[0])
		snprintf(w->detail, sizeof(w->detail), "%s", what);
	worker_event(w, WEV_VIOLATION);
}

/* The daemon gives up on w. */
void worker_abort(struct worker *w, const char *why)
{
	snprintf(w->detail, sizeof(w->detail), "%s", why);
	worker_event(w, WEV_ABORT);
}

/* The operator's `kill`: a stop or continue signal is no intent to end it. */
void worker_signal(struct worker *w, int sig)
{
	if (sig == SIGSTOP || sig == SIGCONT || sig == 0) {
		if (!w->reaped)
			kill(w->pid, sig);
		return;
	}
	w->signal = sig;
	worker_event(w, WEV_KILL);
}

/* Hand call c to idle worker w: the table says busy, then the bytes go out. */
void worker_take_call(struct worker *w, struct call *c)
{
	w->call = c;
	c->worker = w;
	c->seq = ++w->d->next_call_seq;
	w->head_since_us = mono_us();
	if (w->type->cfg->pool.isolate == ISOLATE_KEY && !w->key && c->key)
		w->key = strdup(c->key);
	worker_event(w, WEV_CALL_SENT);
	if (w->state != W_BUSY)
		return;
	if (transfer_start(w, c) < 0) {
		worker_detach_call(w);
		call_fail(c, CTL_WORKER_CRASHED, "worker %llu cannot take the call",
			  (unsigned long long)w->id);
		worker_violation(w, "cannot take the call");
	}
}

/*
 * Queue more of its type's waiting calls in busy worker w's ring, in order,
 * behind its current call: as many as it serves within WORKER_PIPE_BUDGET_US
 * at its measured pace (none before it was measured), at most
 * WORKER_PIPE_MAX, never past max_requests, never one with an fd or a key,
 * and each only when it fits whole.
 */
void worker_fill(struct worker *w)
{
	struct type_rt *t = w->type;
	const struct pool_config *p = &t->cfg->pool;
	struct call *cur = w->call;

	if (!w->ring_calls || !cur || !cur->ring || w->reaped || t->retired ||
	    p->isolate == ISOLATE_KEY || cur->payload_off < cur->payload_len)
		return;
	unsigned depth = w->svc_us ? (unsigned)(WORKER_PIPE_BUDGET_US / w->svc_us) : 0;
	if (depth > WORKER_PIPE_MAX)
		depth = WORKER_PIPE_MAX;
	while (w->npipe < depth) {
		struct call *c = TAILQ_FIRST(&t->queue);
		if (!c || c->payload_fd >= 0 || c->want_fd || c->key)
			break;
		if (p->max_requests && w->requests + 1 + w->npipe >= p->max_requests)
			break;
		if (worker_transition(w->state, WEV_CALL_QUEUED).action != WA_QUEUE)
			break;
		TAILQ_REMOVE(&t->queue, c, qentry);
		t->nqueued--;
		c->queued = false;
		c->seq = ++w->d->next_call_seq;
		int r = transfer_queue(w, c);
		if (r <= 0) {
			call_requeue(c, NULL);
			if (r < 0)
				worker_violation(w, "corrupt ring");
			break;
		}
		c->worker = w;
		c->in_pipe = true;
		if (w->pipe_last)
			w->pipe_last->pnext = c;
		else
			w->pipe_first = c;
		w->pipe_last = c;
		w->npipe++;
		worker_event(w, WEV_CALL_QUEUED);
	}
}

static bool worker_reading(struct worker *w);

void worker_wakes_hold(struct daemon *d)
{
	d->wake_hold++;
}

/*
 * End a hold: each worker owed a doorbell first gets what waits in its type's
 * queue (worker_fill: the calls that came in the same burst as the one it
 * took), then one doorbell.
 */
void worker_wakes_flush(struct daemon *d)
{
	if (--d->wake_hold)
		return;
	struct worker *w, *next;
	d->wake_hold++; /* a call started while filling joins the list */
	for (w = TAILQ_FIRST(&d->wakes); w; w = next) {
		worker_fill(w);
		next = TAILQ_NEXT(w, wentry);
	}
	d->wake_hold--;
	while ((w = TAILQ_FIRST(&d->wakes))) {
		transfer_wake_forget(w);
		/* One killed meanwhile (a `kill`, a violation) needs no doorbell. */
		if (!w->reaped && worker_reading(w) && transfer_ring(w) < 0)
			worker_violation(w, "cannot ring its doorbell");
	}
}

/* Is f a valid hello (of our protocol version, no fds)?  *ring_calls: its flag. */
bool worker_hello_valid(const struct frame *f, bool *ring_calls)
{
	struct msg_hello h;
	if (f->hdr.type != MSG_HELLO || f->nfds ||
	    msg_hello_decode(f->payload, f->hdr.len, &h) < 0 || h.version != PROTO_VERSION)
		return false;
	*ring_calls = f->hdr.flags & HELLO_F_RING_CALLS;
	return true;
}

/* A hello frame. */
static void worker_on_hello(struct worker *w, struct frame *f)
{
	bool ring_calls;
	if (!worker_hello_valid(f, &ring_calls)) {
		worker_violation(w, "bad hello");
		return;
	}
	if (w->ready_ms || w->hello_early) {
		worker_violation(w, "hello out of order");
		return;
	}
	w->ring_calls = ring_calls;
	worker_event(w, WEV_HANDSHAKE);
}

/* What a transfer reported: the worker goes on, or the table deals with it. */
static void worker_after_transfer(struct worker *w, enum xfer r, const char *why)
{
	switch (r) {
	case XFER_OK:
	case XFER_RESULT:
		break;
	case XFER_VIOLATION:
		worker_violation(w, why);
		break;
	case XFER_TOO_LARGE:
	case XFER_NOMEM: {
		struct call *c = worker_detach_call(w);
		if (c && r == XFER_TOO_LARGE)
			call_fail(c, CTL_TOO_LARGE, "result exceeds the output limit of %llu KiB",
				  (unsigned long long)w->type->cfg->limits.output_kb);
		else if (c)
			call_fail(c, CTL_INTERNAL, "corrald ran out of memory for the result");
		worker_abort(w, r == XFER_TOO_LARGE ? "result past output_kb"
						    : "no memory for its result");
		break;
	}
	}
}

/* Is w's channel still read (not killed, not closed)? */
static bool worker_reading(struct worker *w)
{
	return event_pending(w->ev_sock, EV_READ, NULL);
}

/*
 * Drain w's result ring: each result record completes the current call through
 * the table (call_next while more are queued, else call_done), then the
 * payload goes on.  Bounded per event; the rest on the next loop turn.
 */
static void worker_pull(struct worker *w)
{
	for (unsigned n = 0; n < 4 * WORKER_PIPE_MAX; n++) {
		const char *why = NULL;
		enum xfer x = transfer_on_doorbell(w, &why);
		if (x != XFER_RESULT) {
			worker_after_transfer(w, x, why);
			return;
		}
		worker_event(w, w->pipe_first ? WEV_CALL_NEXT : WEV_CALL_DONE);
		if (!worker_reading(w))
			return;
	}
	/* We did not announce a sleep on the ring, so no doorbell will come: look again. */
	event_active(w->ev_sock, EV_READ, 1);
}

/* Read and handle one frame from w; false when there was none (or the channel is done). */
static bool worker_read_frame(struct worker *w)
{
	struct frame f;
	const char *why = NULL;

	int r = frame_recv(w->sock, &f);
	if (r == -EAGAIN)
		return false;
	if (r == 0 || r == -ECONNRESET) {
		/* The worker closed its channel: it is done.  Results it left in the
		 * ring still count. */
		worker_pull(w);
		worker_kill_now(w);
		return false;
	}
	if (r < 0) {
		worker_violation(w, strerror(-r));
		return false;
	}
	switch (f.hdr.type) {
	case MSG_HELLO:
		worker_on_hello(w, &f);
		break;
	case MSG_RESULT: {
		if (!w->call || worker_transition(w->state, WEV_CALL_DONE).action != WA_DONE) {
			worker_violation(w, "result without a call");
			break;
		}
		enum xfer x = transfer_on_result(w, &f, &why);
		if (x == XFER_RESULT)
			worker_event(w, w->pipe_first ? WEV_CALL_NEXT : WEV_CALL_DONE);
		else
			worker_after_transfer(w, x, why);
		break;
	}
	case MSG_DOORBELL:
		if (f.nfds || f.hdr.len) {
			worker_violation(w, "doorbell with payload");
			break;
		}
		worker_pull(w);
		break;
	default:
		worker_violation(w, "unexpected frame type");
		break;
	}
	frame_close_fds(&f);
	return true;
}

/* Frames from a worker: one per wakeup (the loop is level-triggered, and a
 * worker mostly sends one frame at a time: a doorbell per burst of results);
 * then its ring gets more of the waiting calls. */
static void worker_on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	if (w->reaped)
		return;
	struct daemon *d = w->d;
	worker_wakes_hold(d);
	if (!worker_read_frame(w) && worker_reading(w))
		worker_pull(w); /* no frame: worker_pull asked to be called again */
	worker_fill(w);
	worker_wakes_flush(d);
}

/* The process is gone, but what it sent before it went still counts (a result
 * then a graceful exit): read its channel to the end while it is still read. */
static void worker_drain_channel(struct worker *w)
{
	for (int n = 0; n < 1024 && event_pending(w->ev_sock, EV_READ, NULL); n++)
		if (!worker_read_frame(w))
			break;
}

/* stdout/stderr readable. */
static void worker_on_log(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)what;
	logcap_on_readable(w, fd == w->out_fd ? 1 : 2);
}

/* The worker's one timer: what it means depends on the state. */
static void worker_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;

	switch (w->state) {
	case W_STARTING:
		if (w->hello_early) {
			w->hello_early = false;
			worker_event(w, WEV_HANDSHAKE);
		} else {
			worker_event(w, WEV_START_TIMEOUT);
		}
		break;
	case W_IDLE:
		if (pool_may_reap(w))
			worker_event(w, WEV_IDLE_TIMEOUT);
		break;
	case W_STOPPING:
		snprintf(w->detail, sizeof(w->detail), "stop timeout");
		worker_event(w, WEV_STOP_TIMEOUT);
		break;
	default:
		break;
	}
}

/* Arm the idle timer (the pool decides when). */
void worker_arm_idle(struct worker *w, uint64_t ms)
{
	event_del(w->timer);
	if (ms)
		worker_arm(w, ms);
}

/* Close every channel and free the worker (after the reap). */
static void worker_release(struct worker *w)
{
	struct daemon *d = w->d;
	TAILQ_REMOVE(&w->type->workers, w, tentry);
	TAILQ_REMOVE(&d->workers, w, dentry);
	transfer_wake_forget(w);
	event_free(w->ev_sock);
	event_free(w->ev_out);
	event_free(w->ev_err);
	event_free(w->timer);
	event_free(w->healthy_timer);
	if (w->ev_status)
		event_free(w->ev_status);
	if (w->status_fd >= 0)
		close(w->status_fd);
	close(w->sock);
	if (w->out_fd >= 0)
		close(w->out_fd);
	if (w->err_fd >= 0)
		close(w->err_fd);
	ring_area_detach(&w->ring);
	free(w->outbuf[0]);
	free(w->outbuf[1]);
	free(w->key);
	free(w);
}

/* The process is gone: decide the cause, fail its call, release it, let the pool replace it. */
static void worker_on_exit(struct worker *w)
{
	struct daemon *d = w->d;
	struct type_rt *t = w->type;

	worker_read_status(w); /* a failure before execve is written before the exit */
	/* OOM kills now; the cgroups go after the replacement has started. */
	bool oom = w->in_cgroup && sandbox_cgroup_oom_kills(w->cg_id) > w->oom_kills;
	if (w->in_cgroup)
		cgroup_finish_later(d, w->cg_id);
	enum exit_cause cause = exit_cause_of(w->intent, w->wstatus, oom, t->ns & NS_PID);
	bool young = !w->ready_ms || now_ms() - w->ready_ms < t->cfg->restart.healthy_ms;
	bool crash = exit_cause_describe(cause, w->wstatus, t->ns & NS_PID, w->detail, young,
					 w->reason, sizeof(w->reason)) &&
		     !d->shutting_down;
	stats_on_exit(t, crash);
	log_info("%s worker %llu (pid %d) %s%s%s", t->name, (unsigned long long)w->id, (int)w->pid,
		 w->reason, w->spawn_err[0] ? ": " : "", w->spawn_err);
	/* Read what the pipes still hold, then close them. */
	logcap_flush(w);
	struct call *c = worker_detach_call(w);
	if (c)
		call_fail(c, cause == EXIT_SANDBOX ? CTL_SANDBOX_VIOLATION : CTL_WORKER_CRASHED,
			  "worker %llu %s during the call", (unsigned long long)w->id, w->reason);
	struct worker_exit e = {
	    .id = w->id,
	    .key = w->key,
	    .cause = cause,
	    .crash = crash,
	    .before_ready = !w->ready_ms,
	    .reason = w->reason,
	};
	pool_worker_unready(w, w->spawn_err[0] ? w->spawn_err : w->reason);
	t->nworkers--;
	d->nworkers--;
	t->nstate[W_EXITED]--;
	/* Watchers hear "exited" only after every fd of the worker is closed. */
	struct worker ghost = {.id = w->id, .pid = w->pid, .type = t, .state = W_EXITED};
	char reason[sizeof(w->reason)], spawn_err[sizeof(w->spawn_err)];
	memcpy(reason, w->reason, sizeof(reason));
	memcpy(spawn_err, w->spawn_err, sizeof(spawn_err));
	char *key = w->key;
	w->key = NULL;
	e.reason = reason;
	e.spawn_err = spawn_err[0] ? spawn_err : NULL;
	e.key = key;
	worker_release(w);
	/* Watchers get DESIGN's words alone ("killed by SIGKILL"); what the daemon
	 * did, in (), stays in the log, the call's error and `describe`. */
	char said[sizeof(reason)];
	memcpy(said, reason, sizeof(said));
	char *paren = strstr(said, " (");
	if (paren)
		*paren = '\0';
	server_emit_watch(d, &ghost, said);
	pool_worker_exited(t, &e);
	free(key);
	daemon_changed(d);
}

/* SIGCHLD: collect every exited child, then handle each (never inside the waitpid loop). */
void worker_reap(struct daemon *d)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		struct worker *w;
		TAILQ_FOREACH(w, &d->workers, dentry)
		if (w->pid == pid && !w->reaped)
			break;
		if (!w) {
			if (!spare_reaped(d, pid, status))
				log_debug("reaped unknown child %d", (int)pid);
			continue;
		}
		w->reaped = true;
		w->wstatus = status;
		TAILQ_INSERT_TAIL(&d->reaped, w, pentry);
	}
	struct worker *w;
	while ((w = TAILQ_FIRST(&d->reaped))) {
		TAILQ_REMOVE(&d->reaped, w, pentry);
		worker_drain_channel(w);
		worker_event(w, WEV_EXIT);
	}
}
