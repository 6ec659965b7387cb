/*
 * worker.h - one worker's life: the state x event table, the exit causes,
 * spawning, the worker channel (frames), reaping.  See worker.c.
 */
#ifndef CORRAL_WORKER_H
#define CORRAL_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct daemon;
struct type_rt;
struct worker;
struct call;

/* Worker states; the order is the wire names' order. */
enum wstate {
	W_STARTING,
	W_IDLE,
	W_BUSY,
	W_STOPPING,
	W_EXITED,
	W_NSTATES,
};

/* What can happen to a worker. */
enum wevent {
	WEV_HANDSHAKE,	   /* a valid hello frame */
	WEV_CALL_SENT,	   /* the pool handed it a call */
	WEV_CALL_DONE,	   /* a valid result frame for its call */
	WEV_IDLE_TIMEOUT,  /* idle for idle_timeout_ms above min */
	WEV_STOP,	   /* stop, recycle, reload, shutdown: finish the call, then exit */
	WEV_KILL,	   /* `kill`: a signal from the operator */
	WEV_START_TIMEOUT, /* not ready within start_timeout_ms */
	WEV_CALL_TIMEOUT,  /* its call ran past its timeout */
	WEV_STOP_TIMEOUT,  /* asked to stop, still there after the stop timeout */
	WEV_ABORT,	   /* the daemon gives up on it (result past the limit, no memory) */
	WEV_VIOLATION,	   /* a protocol violation: bad frame, corrupt ring */
	WEV_EXIT,	   /* the process was reaped */
	WEV_CALL_QUEUED,   /* the pool queued another call in its ring behind its current one */
	WEV_CALL_NEXT,	   /* a valid result for its call while more calls wait in its ring */
	WEV_N,
};

/* What the table does on an event (besides changing the state). */
enum waction {
	WA_IGNORE, /* nothing: the event does not matter in this state */
	WA_READY,  /* handshake done: serve the queue or wait idle */
	WA_SERVE,  /* a call went out: the idle timer stops */
	WA_DONE,   /* its call is answered: back to the pool */
	WA_STOP,   /* send MSG_STOP, arm the stop timer */
	WA_RESTOP, /* it became ready while stopping: send MSG_STOP now it listens */
	WA_SIGNAL, /* pass the operator's signal on */
	WA_KILL,   /* SIGKILL and stop reading its channel */
	WA_FAULT,  /* WA_KILL, and its call fails: it broke the protocol */
	WA_REAP,   /* gone: account, fail its call, requeue those it never began, release it,
		      replace it */
	WA_QUEUE,  /* another call waits in its ring behind the current one */
	WA_NEXT,   /* its call is answered: the next one in its ring becomes current */
	WA_N,
};

/* One cell of the table. */
struct wtrans {
	unsigned char next; /* enum wstate */
	unsigned char action;
};

/* Why a worker died; decides its `reason` and whether it was a crash (worker.c). */
enum exit_cause {
	EXIT_NONE,	    /* (as an intent: the daemon did nothing to it) */
	EXIT_STATUS,	    /* exited by itself */
	EXIT_SIGNAL,	    /* killed by a signal nobody here sent */
	EXIT_OOM,	    /* killed for memory */
	EXIT_SANDBOX,	    /* killed by the seccomp filter */
	EXIT_STOPPED,	    /* asked to stop (and maybe killed after the stop timeout) */
	EXIT_KILLED,	    /* `kill` by the operator */
	EXIT_ABORTED,	    /* killed by the daemon: result past the limit, no memory */
	EXIT_CALL_TIMEOUT,  /* killed because its call timed out */
	EXIT_START_TIMEOUT, /* killed because it was not ready in time */
	EXIT_FAULT,	    /* killed for a protocol violation */
	EXIT_NCAUSES,
};

extern const char *const wstate_names[W_NSTATES];
extern const char *const wevent_names[WEV_N];
extern const char *const waction_names[WA_N];

/* The table's cell for state x event. */
struct wtrans worker_transition(enum wstate s, enum wevent ev);
/* Decide the exit cause of a worker from what the daemon did (intent), its wait
 * status, whether its cgroup saw an OOM kill and whether it ran as pid 1 of
 * its own namespace. */
enum exit_cause exit_cause_of(enum exit_cause intent, int wstatus, bool oom, bool pid1);
/* The `reason` of an exit (DESIGN.md's watch strings), written to buf; true when
 * the death counts as a crash (young: died before ready or within healthy_ms). */
bool exit_cause_describe(enum exit_cause cause, int wstatus, bool pid1, const char *detail,
			 bool young, char *buf, size_t len);

/* Spawn one worker of t (serving key, or NULL) in state starting, or NULL with errbuf. */
struct worker *worker_spawn(struct type_rt *t, const char *key, char *errbuf, size_t errlen);
/* Apply an event to w through the table. */
void worker_event(struct worker *w, enum wevent ev);
/* Ask w to exit after its current call; SIGKILL after timeout_ms. */
void worker_stop(struct worker *w, uint64_t timeout_ms);
/* A protocol violation (what: which); the table kills it and fails its call. */
void worker_violation(struct worker *w, const char *what);
/* Hold the workers' doorbells until the matching flush (nested): a callback that
 * may start or queue many calls rings each worker once, at its end. */
void worker_wakes_hold(struct daemon *d);
void worker_wakes_flush(struct daemon *d);
/* The daemon gives up on w (why: for the reason); the table kills it. */
void worker_abort(struct worker *w, const char *why);
/* The operator's `kill`. */
void worker_signal(struct worker *w, int sig);
/* Hand call c to idle worker w. */
void worker_take_call(struct worker *w, struct call *c);
/* Queue more of its type's waiting calls in busy worker w's ring (as many as it
 * can take without making them wait long); see worker.c. */
void worker_fill(struct worker *w);
/* Send one frame on w's channel (proto/frame.h's frame_send); <0 -errno. */
int worker_send(struct worker *w, uint32_t type, uint32_t flags, uint64_t call_id, const void *p,
		size_t len, const int *fds, unsigned nfds);
/* SIGCHLD: reap every exited child, then handle each exit. */
void worker_reap(struct daemon *d);
/* Is f a valid hello (of our protocol version, no fds)?  *ring_calls: its flag. */
struct frame;
bool worker_hello_valid(const struct frame *f, bool *ring_calls);
/* A live worker by id, or NULL. */
struct worker *worker_find(struct daemon *d, uint64_t id);
/* Arm the idle timer for ms (0: disarm); the pool decides when. */
void worker_arm_idle(struct worker *w, uint64_t ms);

#endif
