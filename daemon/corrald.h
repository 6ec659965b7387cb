/*
 * corrald.h - the daemon's core objects: types, workers, calls, and the
 * daemon itself, and the umbrella over every module's header.  Ownership:
 *   struct daemon owns the active and retired types, every worker, every client.
 *   A type owns its queue of calls and its log history.
 *   A worker owns its socketpair, ring mapping, log pipes, events and timers;
 *   it is freed only when it has been reaped AND its channels are closed.
 *   A call is owned by whoever holds it: the type's queue, or one worker.
 *   A call's client pointer is cleared when the client goes away.
 *
 * The module headers (worker.h, pool.h, call.h, transfer.h, stats.h,
 * reload.h, daemon.h) include no daemon header: they forward-declare
 * what they name, so no header includes another in a circle.
 */
#ifndef CORRAL_CORRALD_H
#define CORRAL_CORRALD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>

#include "call.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "pool.h"
#include "reload.h"
#include "ring.h"
#include "stats.h"
#include "type.h"
#include "transfer.h"
#include "worker.h"

struct client;
struct daemon;

/* One log line kept in a type's history. */
struct logline {
	uint64_t worker;
	uint64_t ts_ms;
	uint8_t stream; /* 1 stdout, 2 stderr */
	char *text;
};

/* Bounded history of log lines of one type. */
struct loghist {
	struct logline *lines;
	size_t cap, start, n;
	unsigned refs; /* the generations of one type share it across reloads */
};

/* A call in flight: from the client's request to its one reply. */
struct call {
	TAILQ_ENTRY(call) qentry; /* type queue */
	LIST_ENTRY(call) centry;  /* client's list of its calls */
	struct daemon *d;
	struct client *client; /* NULL once the client left */
	json_t *req_id;	       /* the request's id */
	struct type_rt *type;
	struct worker *worker; /* set while a worker serves it (or has it queued in its ring) */
	struct call *pnext;    /* the next call queued in the same worker's ring */
	bool in_pipe;	       /* queued in its worker's ring behind the worker's current call */
	bool ring;	       /* went through the ring (MSG_CALL record), not the socket */
	bool answered;	  /* replied (timed out) while in_pipe: freed once the worker is past it */
	uint64_t rec_end; /* ring position just past its MSG_CALL record */
	char *key;
	uint64_t seq; /* call id on the worker wire */
	uint64_t start_us;
	uint64_t timeout_ms;
	struct event timer; /* timeout, armed once the call is accepted */
	bool timer_set;
	bool queued;
	bool text;    /* payload came as a string */
	bool want_fd; /* payload came as an fd: result goes back as an fd */
	/* payload */
	uint8_t *payload;
	size_t payload_len;
	size_t payload_off; /* bytes written into the ring */
	int payload_fd;
	/* result */
	uint8_t *res;
	size_t res_len, res_cap;
	int res_memfd; /* result spilled past the inline limit */
	uint64_t res_total;
	bool res_too_large;
	bool res_oom;	/* some result bytes could not be held */
	int res_status; /* RESULT_* of the worker's result frame */
	char *res_msg;	/* its message (RESULT_ERROR) */
	int res_fd;	/* the result as the worker's sealed memfd, reopened */
};

TAILQ_HEAD(callq, call);

/* A worker process and its channels. */
struct worker {
	TAILQ_ENTRY(worker) tentry; /* type's worker list */
	TAILQ_ENTRY(worker) dentry; /* daemon's worker list */
	TAILQ_ENTRY(worker) ientry; /* type's idle list, while idle */
	TAILQ_ENTRY(worker) pentry; /* reaped, waiting to be handled (worker_reap) */
	TAILQ_ENTRY(worker) wentry; /* owed a doorbell at the end of the callback (wake_owed) */
	struct daemon *d;
	struct type_rt *type;
	uint64_t id;
	pid_t pid;
	char *key;
	enum wstate state;
	uint64_t started_ms;
	uint64_t ready_ms; /* 0 until the handshake */
	uint64_t requests;
	int sock;
	int out_fd, err_fd;
	struct ring_area ring;
	struct event *ev_sock, *ev_out, *ev_err;
	struct event *timer;		     /* start timeout, stop timeout, or idle timeout */
	struct event *healthy_timer;	     /* resets the type's backoff */
	struct call *call;		     /* its current call */
	struct call *pipe_first, *pipe_last; /* calls queued in its ring behind call, in order */
	unsigned npipe;
	bool ring_calls;	     /* takes calls through the ring (HELLO_F_RING_CALLS) */
	bool hello_early;	     /* a spare's hello, read before it was taken: on the timer */
	bool wake_owed;		     /* on d->wakes: its doorbell waits for worker_wakes_flush */
	uint64_t head_since_us;	     /* when its current call became current */
	uint64_t svc_us;	     /* EWMA of the time a call takes it, as the daemon sees it */
	struct spawn_req *spawn_req; /* a `spawn` or `restart` waiting for its readiness */
	char *outbuf[2];	     /* partial log lines, stdout / stderr */
	size_t outlen[2];
	struct logcap *logcap; /* rate limit and slices of the log pipes (logcap.c) */
	bool reaped;
	enum exit_cause intent; /* what the daemon did to it (EXIT_NONE: nothing) */
	uint64_t stop_ms;	/* the stop timeout of WEV_STOP (worker_stop) */
	int signal;		/* the signal of WEV_KILL (worker_signal) */
	char detail[96];	/* why, for the exit reason (a protocol violation, a limit) */
	char reason[160];
	bool in_cgroup;
	uint64_t cg_id;	    /* its cgroups' number (launch.c) */
	uint64_t oom_kills; /* OOM kills in its memory cgroup already told (sandbox.c) */
	int wstatus;
	int status_fd; /* the spawn's status pipe until execve (or the failure), else -1 */
	struct event *ev_status;
	char spawn_err[200]; /* the step that failed before execve, e.g. "exec /x: No such file" */
};

TAILQ_HEAD(workerq, worker);

/* A worker process before it is a worker: its channels and cgroups (launch.c). */
struct wproc {
	pid_t pid;
	int sock, out_fd, err_fd;
	int status_fd; /* a failure message, or EOF at execve */
	int go_fd;     /* a spare's go pipe (write end); -1 otherwise */
	struct ring_area ring;
	uint64_t cg_id;
	bool in_cgroup;
	bool hello;	 /* a spare that has said hello already (its frame was read) */
	bool ring_calls; /* ... with HELLO_F_RING_CALLS */
};

/* A spare: a process started ahead of need, never a worker until taken (launch.c). */
struct spare {
	TAILQ_ENTRY(spare) entry;
	struct type_rt *type; /* NULL once discarded, until reaped */
	struct wproc p;
	struct event *ev; /* an exec'd spare's channel, until its hello (or its start timeout) */
	bool held;	  /* waits before execve on its go pipe (a native program) */
};

TAILQ_HEAD(spareq, spare);

/* A `spawn` or `restart` request waiting until its workers are ready. */
struct spawn_req {
	struct daemon *d;
	struct client *client;
	json_t *req_id;
	json_t *ids;
	unsigned pending;
	char *error_code;
	char *error_msg;
	LIST_ENTRY(spawn_req) centry;
	/* restart: the workers to replace, one at a time */
	bool restart;
	uint64_t *old;
	size_t nold, next;
};

/* One failure kept for `describe`. */
struct failure {
	uint64_t ts_ms;
	uint64_t worker;
	char reason[160];
};

#define TYPE_FAILURES 10

/* Counters for `stats`: daemon-wide and per type. */
struct stats {
	uint64_t spawned, exited, crashed, restarts, calls_ok, calls_failed;
	uint64_t failures[CTL_NCODES]; /* failed calls by error code */
	uint64_t hist[64 * 8];	       /* call durations, log-linear buckets */
	uint64_t hist_n;
};

/* A worker type at run time: one generation of one configured type. */
struct type_rt {
	TAILQ_ENTRY(type_rt) entry;
	struct daemon *d;
	const struct type_config *cfg;
	struct config_holder *holder; /* keeps cfg alive */
	char *name;
	bool retired;	       /* removed or replaced by reload: drains */
	bool min_paused;       /* `stop TYPE` pauses the min refill */
	bool restarts_pending; /* the next spawn replaces a crashed worker */
	bool refill_queued;    /* on the daemon's refill list */
	bool had_demand;       /* a call spawned a worker on demand (spares "auto") */
	bool spares_broken;    /* a spare died before use: none until a worker is ready */
	struct spareq spares;
	unsigned nspares;
	TAILQ_ENTRY(type_rt) rentry;
	struct workerq workers;
	struct workerq idle; /* idle workers, most recently used first */
	unsigned nworkers;   /* alive: not yet reaped */
	unsigned nstate[W_NSTATES];
	struct callq queue;
	unsigned nqueued;
	struct stats stats;
	/* restart policy */
	uint64_t *crash_ts; /* ring of the last type_crash_slots() crash times */
	unsigned ncrash, crash_pos;
	unsigned backoff_level;
	uint64_t backoff_until_ms;
	struct event *backoff_timer;
	struct failure failures[TYPE_FAILURES]; /* ring of the last failures */
	unsigned nfailures, failure_pos;
	struct loghist *logs;
	/* sandbox layers */
	unsigned sb_active, sb_missing;
	unsigned ns; /* namespaces applied (NS_*) */
	bool use_filter, use_cgroup, switch_user;
	bool user_unknown;   /* sandbox.user names no user: no worker can start */
	bool exec_is_script; /* native exec[0] starts with #!: exec by path */
	uid_t uid;
	gid_t gid;
	char **ro_paths; /* shown read-only in the mount namespace */
	int *ro_fds;	 /* spawn scratch for ro_paths (sandbox_child_trees) */
};

TAILQ_HEAD(typeq, type_rt);

/* A reference-counted configuration: types of old generations keep theirs. */
struct config_holder {
	struct config *cfg;
	unsigned refs;
};

struct daemon {
	struct event_base *base;
	struct config_holder *cfg;
	char *config_path;
	char *socket_path;
	char *worker_path;
	struct typeq types; /* active */
	struct typeq retired;
	struct typeq refill; /* types below min, refilled one spawn per loop turn */
	struct event *ev_refill;
	unsigned refill_yields; /* refill turns given up in a row to other events */
	struct workerq workers;
	struct workerq reaped; /* exits collected by the waitpid loop, handled after it */
	struct workerq wakes;  /* doorbells held while wake_hold > 0 (worker.c) */
	unsigned wake_hold;
	unsigned nworkers;
	uint64_t next_worker_id;
	uint64_t next_cg_id;	   /* worker cgroups are numbered apart: spares have no id */
	struct spareq dead_spares; /* discarded spares, until reaped */
	uint64_t next_call_seq;
	uint64_t start_ms;
	struct stats stats;
	bool shutting_down;
	bool ready_sent;
	struct event *shutdown_timer;
	bool uid_root;
	uid_t uid;
	struct server *server;
	struct event *ev_sigchld, *ev_sigterm, *ev_sigint, *ev_sighup;
	struct metrics *metrics;
	unsigned sb_available; /* layers the kernel offers */
	void *spawn_stack, *spawn_stack2;
	size_t spawn_stack_size;
};

/* Layer bits for `types`' sandbox report. */
#define SB_USER	    0x001u
#define SB_PID	    0x002u
#define SB_NET	    0x004u
#define SB_IPC	    0x008u
#define SB_UTS	    0x010u
#define SB_MOUNT    0x020u
#define SB_SECCOMP  0x040u
#define SB_CGROUP   0x080u
#define SB_RLIMITS  0x100u
#define SB_PIDS	    0x200u
#define SB_LANDLOCK 0x400u
#define SB_NLAYERS  11

extern const char *const sandbox_layer_names[SB_NLAYERS];

/* time.c */
uint64_t now_ms(void);
uint64_t mono_us(void);
struct timeval tv_ms(uint64_t ms);

/* logcap.c */
void logcap_on_readable(struct worker *w, int stream);
void logcap_flush(struct worker *w);
struct loghist *loghist_new(size_t cap);
void loghist_put(struct loghist *h);

/* launch.c */
int launch_proc(struct type_rt *t, bool hold, struct wproc *p, char *errbuf, size_t errlen);
void wproc_close(struct wproc *p);
bool spare_make(struct type_rt *t);
bool spare_take(struct type_rt *t, struct wproc *p);
void spares_discard(struct type_rt *t);
bool spare_reaped(struct daemon *d, pid_t pid, int wstatus);
void spares_finish(struct daemon *d);
void cgroup_finish_later(struct daemon *d, uint64_t cg_id);
void cgroup_trash_finish(void);

/* spawn.c */
struct sandbox_plan;
int spawn_worker_process(struct daemon *d, char *const argv[], int sock, int memfd, int outw,
			 int errw, int go_r, const struct type_config *tc,
			 const struct sandbox_plan *plan, pid_t *ret_pid, int *status_r,
			 char *errbuf, size_t errlen);
bool spawn_status_message(const int msg[2], const char *prog, char *buf, size_t len);
char *spawn_find_worker_binary(void);
void spawn_init(void);

#endif
