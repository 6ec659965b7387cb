/*
 * corrald.h - the daemon's core objects: types, workers, calls, and the
 * daemon itself.  Ownership:
 *   struct daemon owns the active and retired types, every worker, every client.
 *   A type owns its queue of calls and its log history.
 *   A worker owns its socketpair, ring mapping, log pipes, events and timers;
 *   it is freed only when it has been reaped AND its channels are closed.
 *   A call is owned by whoever holds it: the type's queue, or one worker.
 *   A call's client pointer is cleared when the client goes away.
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

#include "config.h"
#include "ring.h"

struct client;
struct daemon;

/* Worker states; the order is the wire names' order. */
enum wstate {
	W_STARTING,
	W_IDLE,
	W_BUSY,
	W_STOPPING,
	W_EXITED,
	W_NSTATES,
};

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
	struct worker *worker; /* set while a worker serves it */
	char *key;
	uint64_t seq; /* call id on the worker wire */
	uint64_t start_us;
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
};

TAILQ_HEAD(callq, call);

/* A worker process and its channels. */
struct worker {
	TAILQ_ENTRY(worker) tentry; /* type's worker list */
	TAILQ_ENTRY(worker) dentry; /* daemon's worker list */
	TAILQ_ENTRY(worker) ientry; /* type's idle list, while idle */
	struct daemon *d;
	struct type_rt *type;
	uint64_t id;
	pid_t pid;
	char *key;
	enum wstate state;
	uint64_t started_ms;
	uint64_t requests;
	int sock;
	int out_fd, err_fd;
	struct ring_area ring;
	struct event *ev_sock, *ev_out, *ev_err;
	struct event *timer;	     /* start timeout, stop timeout, or idle timeout */
	struct event *healthy_timer; /* resets the type's backoff */
	struct call *call;
	struct spawn_req *spawn_req; /* a `spawn` command waiting for readiness */
	char *outbuf[2];	     /* partial log lines, stdout / stderr */
	size_t outlen[2];
	struct logcap *logcap;	     /* rate limit and slices of the log pipes (logcap.c) */
	bool reaped;
	bool stop_requested; /* stop/recycle/idle: not a crash */
	bool killed_by_us;   /* a timeout or `kill`: not a crash */
	bool faulted;	     /* a protocol violation: a crash */
	bool start_timed_out;
	char reason[160];
	bool in_cgroup;
	int wstatus;
};

TAILQ_HEAD(workerq, worker);

/* A `spawn` request waiting until its workers are ready. */
struct spawn_req {
	struct daemon *d;
	struct client *client;
	json_t *req_id;
	json_t *ids;
	unsigned pending;
	char *error_code;
	char *error_msg;
	LIST_ENTRY(spawn_req) centry;
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
	struct workerq workers;
	struct workerq idle; /* idle workers, most recently used first */
	unsigned nworkers;   /* alive: not yet reaped */
	unsigned nstate[W_NSTATES];
	struct callq queue;
	unsigned nqueued;
	/* restart policy */
	uint64_t *crash_ts; /* ring of the last burst+1 crash times */
	unsigned ncrash, crash_pos;
	unsigned backoff_level;
	uint64_t backoff_until_ms;
	struct event *backoff_timer;
	struct loghist *logs;
	/* sandbox layers */
	unsigned sb_active, sb_missing;
	unsigned ns; /* namespaces applied (NS_*) */
	bool use_filter, use_cgroup, switch_user;
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

/* Daemon-wide counters for `stats`. */
struct stats {
	uint64_t spawned, exited, crashed, restarts, calls_ok, calls_failed;
	uint64_t hist[64 * 8]; /* call durations, log-linear buckets */
	uint64_t hist_n;
};

struct daemon {
	struct event_base *base;
	struct config_holder *cfg;
	char *config_path;
	char *socket_path;
	char *worker_path;
	struct typeq types; /* active */
	struct typeq retired;
	struct workerq workers;
	unsigned nworkers;
	uint64_t next_worker_id;
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
#define SB_USER	   0x001u
#define SB_PID	   0x002u
#define SB_NET	   0x004u
#define SB_IPC	   0x008u
#define SB_UTS	   0x010u
#define SB_MOUNT   0x020u
#define SB_SECCOMP 0x040u
#define SB_CGROUP  0x080u
#define SB_RLIMITS 0x100u
#define SB_NLAYERS 9

extern const char *const sandbox_layer_names[SB_NLAYERS];
extern const char *const wstate_names[W_NSTATES];

/* time.c */
uint64_t now_ms(void);
uint64_t mono_us(void);
struct timeval tv_ms(uint64_t ms);

/* supervisor.c */
int daemon_types_init(struct daemon *d, struct config_holder *h);
struct type_rt *daemon_find_type(struct daemon *d, const char *name);
struct worker *daemon_find_worker(struct daemon *d, uint64_t id);
struct worker *worker_spawn(struct type_rt *t, const char *key, char *errbuf, size_t errlen);
void worker_stop(struct worker *w, uint64_t timeout_ms);
void worker_kill(struct worker *w, int sig, const char *why);
void worker_fault(struct worker *w, const char *code, const char *what);
void type_reconcile(struct type_rt *t);
void daemon_reap(struct daemon *d);
bool type_in_backoff(const struct type_rt *t);
unsigned type_live(const struct type_rt *t);
void type_set_state(struct worker *w, enum wstate s);
void worker_idle(struct worker *w);
void type_destroy(struct type_rt *t);
void spawn_req_unref(struct spawn_req *r, const char *err);
json_t *daemon_reload_from_file(struct daemon *d, char **ret_errors);

/* util.c */
void utf8_sanitize(char *s);
bool worker_transition_call(struct worker *w);
bool worker_transition_result(struct worker *w);
void call_arm_timeout(struct call *c, uint64_t ms);
void daemon_notify_status(struct daemon *d);
void daemon_ready_check(struct daemon *d);
void daemon_begin_shutdown(struct daemon *d, uint64_t timeout_ms);
void daemon_check_exit(struct daemon *d);
json_t *daemon_reload(struct daemon *d, struct config *newcfg);
void config_holder_put(struct config_holder *h);
unsigned type_sandbox_layers(const struct type_config *tc, unsigned available);

/* dispatch.c */
void call_submit(struct call *c);
void call_finish_error(struct call *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void call_free(struct call *c);
void type_pump(struct type_rt *t);
struct frame;
void worker_on_result(struct worker *w, struct frame *f);
void worker_on_doorbell(struct worker *w);
void worker_fail_call(struct worker *w, const char *code, const char *msg);
void stats_record_latency(struct stats *s, uint64_t us);
uint64_t stats_percentile(const struct stats *s, double p);

/* logcap.c */
void logcap_on_readable(struct worker *w, int stream);
void logcap_flush(struct worker *w);
struct loghist *loghist_new(size_t cap);
void loghist_put(struct loghist *h);

/* spawn.c */
struct sandbox_plan;
int spawn_worker_process(struct daemon *d, char *const argv[], int sock, int memfd, int outw,
			 int errw, const struct type_config *tc, const struct sandbox_plan *plan,
			 pid_t *ret_pid, char *errbuf, size_t errlen);
char *spawn_find_worker_binary(void);
void spawn_init(void);

#endif
