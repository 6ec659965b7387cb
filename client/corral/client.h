/*
 * corral/client.h - libcorral, the client library of corral: connect to
 * corrald, call worker types (bytes or file descriptors in, bytes out), run
 * the control commands, follow streams.  Blocking and libevent APIs.
 *
 * The wire protocol (newline-delimited JSON over a UNIX socket, fds as
 * SCM_RIGHTS) stays inside the library: callers see C structs, and a json_t
 * of the whole reply where they want more than the structs carry.
 *
 * Errors.  Every function that can fail returns an enum corral_code
 * (CORRAL_OK, 0, on success) and, when err is not NULL, fills *err with the
 * code and a message: the daemon's own message for the daemon's codes, a
 * library message (naming the socket, the errno, the bad reply) for the
 * library's.  Output parameters (ret_...) are written on success only,
 * unless a function says otherwise.  A reply that breaks the protocol fails
 * the call it answers (CORRAL_E_PROTOCOL), or, when it answers nothing the
 * library can tell, the whole connection: no wait ever hangs on a lost reply.
 *
 * Threads.  A struct corral is one connection.  Its blocking functions may be
 * called from any number of threads at once: each request gets its own id,
 * whole request lines are written under a lock, and whichever waiting thread
 * happens to be reading hands every reply to the thread that waits for it
 * (leader/follower), so many calls are in flight on one connection.
 * corral_call_start() / corral_call_wait() pipeline calls from one thread.
 * A connection becomes asynchronous with its first corral_call_async() or
 * corral_command_async(): from then on it belongs to that event_base's
 * thread, callbacks run on that thread from the base's loop, and the blocking
 * functions refuse it (CORRAL_E_INVALID).  A struct corral_stream (watch, logs
 * follow) has a connection of its own and belongs to one thread at a time.
 * corral_close() must not race any other use of the same connection.
 * A request carrying an fd is written in a sendmsg() of its own, since
 * corrald ties a received fd to the last line that starts in the read that
 * brings it.
 *
 * Lifetime.  When corrald goes away (restart, crash) every call in flight and
 * every later call on that connection fails with CORRAL_E_DISCONNECTED; open
 * a new connection (corral_connect) to go on.  The library never raises
 * SIGPIPE (MSG_NOSIGNAL) and never logs.
 *
 * ABI: symbols are versioned (CORRAL_0, see libcorral.sym) and the public
 * structs are frozen with them: a new option or field comes with a new
 * function (and symbol version), never by growing a struct in place.
 */
#ifndef CORRAL_CLIENT_H
#define CORRAL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

/* The library's version ("0.1.0"). */
#define CORRAL_CLIENT_VERSION "0.1.0"

/*
 * Payloads larger than this go to the daemon as a sealed memfd rather than
 * inside the JSON line (and their result then comes back as an fd, a view).
 */
#define CORRAL_INLINE_MAX (64u * 1024u)

/*
 * Result codes.  1..14 are the protocol's error codes (the daemon's reply
 * said so); 100 and up are the library's own.
 */
enum corral_code {
	CORRAL_OK = 0,
	CORRAL_E_BAD_REQUEST = 1,	 /* "bad_request": the daemon refused the arguments */
	CORRAL_E_UNKNOWN_COMMAND = 2,	 /* "unknown_command" */
	CORRAL_E_UNKNOWN_TYPE = 3,	 /* "unknown_type": no such worker type */
	CORRAL_E_NO_SUCH_WORKER = 4,	 /* "no_such_worker" */
	CORRAL_E_TOO_LARGE = 5,		 /* "too_large": request line or result too large */
	CORRAL_E_BUSY = 6,		 /* "busy": queue full, or past the pool's max */
	CORRAL_E_TIMEOUT = 7,		 /* "timeout": the call ran past its timeout */
	CORRAL_E_WORKER_CRASHED = 8,	 /* "worker_crashed": the worker died during the call */
	CORRAL_E_WORKER_ERROR = 9,	 /* "worker_error": the handler reported failure */
	CORRAL_E_SANDBOX_VIOLATION = 10, /* "sandbox_violation" */
	CORRAL_E_UNAVAILABLE = 11,	 /* "unavailable": type in backoff, or cannot start */
	CORRAL_E_PERMISSION_DENIED = 12, /* "permission_denied": by the daemon or the socket */
	CORRAL_E_SHUTTING_DOWN = 13,	 /* "shutting_down" */
	CORRAL_E_INTERNAL = 14,		 /* "internal" */

	CORRAL_E_NO_DAEMON = 100,      /* nothing listens at the socket path */
	CORRAL_E_VERSION = 101,	       /* the daemon speaks an incompatible version */
	CORRAL_E_DISCONNECTED = 102,   /* the connection closed (daemon exit or restart) */
	CORRAL_E_PROTOCOL = 103,       /* the daemon's reply broke the protocol */
	CORRAL_E_CLIENT_TIMEOUT = 104, /* no reply within the library's wait bound */
	CORRAL_E_SYSTEM = 105,	       /* a system call failed (err->sys_errno) */
	CORRAL_E_INVALID = 106,	       /* the caller's arguments are wrong */
	CORRAL_E_NOMEM = 107,	       /* out of memory */
};

/* An error: its code, the errno behind it (0 when none) and a message. */
struct corral_error {
	enum corral_code code;
	int sys_errno;
	char message[512];
};

/* Wire name of a code ("worker_error", "no_daemon", ...); never NULL. */
const char *corral_code_name(enum corral_code code);

/* One connection (opaque). */
struct corral;

/*
 * Connect to corrald at path; NULL: $CORRAL_SOCKET, else the default
 * ($XDG_RUNTIME_DIR/corral/corrald.sock, /run/corral/corrald.sock as root).
 * Pings the daemon to check its version.  Fails with CORRAL_E_NO_DAEMON
 * (no socket, or nobody listening), CORRAL_E_PERMISSION_DENIED (the socket's
 * mode, or the daemon's allow list), CORRAL_E_VERSION (a daemon whose major
 * version, or minor while 0.x, differs from the library's), CORRAL_E_SYSTEM.
 */
enum corral_code corral_connect(const char *path, struct corral **ret_conn,
				struct corral_error *err);
/*
 * corral_connect with flags: CORRAL_CONNECT_NO_PING skips the version ping
 * (one round trip less, for tools that run one command and exit, such as
 * corralctl; corral_daemon_version() is then "").
 */
enum corral_code corral_connect_flags(const char *path, unsigned flags, struct corral **ret_conn,
				      struct corral_error *err);
#define CORRAL_CONNECT_NO_PING 0x1u
/*
 * Close the connection: calls still in flight are abandoned (their
 * async callbacks are not called).  NULL is a no-op.
 */
void corral_close(struct corral *conn);
/* The socket path the connection was opened on. */
const char *corral_socket_path(const struct corral *conn);
/*
 * The connection's socket, for poll() (POLLRDHUP: corrald closed it) and
 * getsockopt() (SO_PEERCRED: corrald's pid); still the library's: reading,
 * writing or closing it breaks the connection.
 */
int corral_fd(const struct corral *conn);
/* The daemon's version as reported by ping at connect ("0.1.0"). */
const char *corral_daemon_version(const struct corral *conn);

/* Options of a call; all zero ({0}) means: no key, no timeout, auto payload. */
struct corral_call_opts {
	const char *key; /* isolation key (for "isolate": "key" types), or NULL */
	int timeout_ms;	 /* > 0: the call's timeout (the type's limit still caps it) */
	int payload_fd;	 /* > 0: send this regular file / memfd as the payload
			    (data and len ignored; the library does not close it;
			    a memfd must allow sealing or be sealed) */
	unsigned flags;	 /* CORRAL_CALL_* */
	int wait_ms;	 /* > 0: the library gives up waiting after this
			    (CORRAL_E_CLIENT_TIMEOUT); default: timeout_ms + 5000
			    when a timeout is set, else no bound */
};
/* Send the payload as a sealed memfd whatever its size (the result comes as an fd). */
#define CORRAL_CALL_FD 0x1u

/* The result of a call (opaque): its bytes, and where they came from. */
struct corral_result;

/*
 * Call a worker of type with len bytes at data; on success *ret_result holds
 * the result (release with corral_result_free).  A payload over
 * CORRAL_INLINE_MAX goes as a sealed memfd automatically (MFD_ALLOW_SEALING,
 * sealed F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW).  opts may be NULL.
 */
enum corral_code corral_call(struct corral *conn, const char *type, const void *data, size_t len,
			     const struct corral_call_opts *opts, struct corral_result **ret_result,
			     struct corral_error *err);

/* A call started but not yet waited for (opaque). */
struct corral_pending;
/*
 * Pipelining: send a call and return at once; the reply is collected with
 * corral_call_wait() (exactly once per started call, from any thread).
 */
enum corral_code corral_call_start(struct corral *conn, const char *type, const void *data,
				   size_t len, const struct corral_call_opts *opts,
				   struct corral_pending **ret_pending, struct corral_error *err);
/* Wait for a started call's reply; frees pending whatever the outcome. */
enum corral_code corral_call_wait(struct corral_pending *pending, struct corral_result **ret_result,
				  struct corral_error *err);

/*
 * The result's bytes: a heap copy for an inline result, or a read-only view
 * of the result memfd (mmap, no copy).  Valid until corral_result_free.
 * Never NULL (an empty result gives a pointer to a zero byte).  The bytes
 * are followed by a NUL byte for inline results only.
 */
const void *corral_result_data(const struct corral_result *res, size_t *ret_len);
/*
 * Take the result's fd (a sealed memfd, read from offset 0): the caller owns
 * it from now; the view stays valid.  -1 when the result came inline.
 */
int corral_result_take_fd(struct corral_result *res);
/* The id of the worker that served the call. */
uint64_t corral_result_worker(const struct corral_result *res);
/* How long the daemon took, in microseconds. */
int64_t corral_result_duration_us(const struct corral_result *res);
/* Release a result (unmap, close the fd unless taken). NULL is a no-op. */
void corral_result_free(struct corral_result *res);

/*
 * Asynchronous call on the caller's libevent base: cb runs exactly once on
 * base's loop, with the result (the callback owns it and frees it) or NULL
 * and the error.  It is not called after corral_close().  Returns an error
 * (and never calls cb) when the request cannot even be sent.
 */
typedef void (*corral_call_cb)(struct corral_result *res, const struct corral_error *err,
			       void *arg);
enum corral_code corral_call_async(struct corral *conn, struct event_base *base, const char *type,
				   const void *data, size_t len,
				   const struct corral_call_opts *opts, corral_call_cb cb,
				   void *arg, struct corral_error *err);

/*
 * Any command as JSON: args is an object of the command's arguments (NULL:
 * none; borrowed), cmd its name.  *ret_reply is the whole ok reply (owned by
 * the caller).  An error reply gives its code.  Streams are not for this.
 */
enum corral_code corral_command(struct corral *conn, const char *cmd, json_t *args,
				json_t **ret_reply, struct corral_error *err);
/*
 * corral_command, but an error reply is handed back too: *ret_reply is the
 * daemon's reply object as received (ok or not; NULL only for the library's
 * own errors), for tools that print replies (corralctl --json).
 */
enum corral_code corral_command_reply(struct corral *conn, const char *cmd, json_t *args,
				      json_t **ret_reply, struct corral_error *err);
/*
 * Pipelining commands from one thread: send cmd with args (borrowed) and
 * return at once; collect the reply with corral_command_wait() (exactly once
 * per started command, never corral_call_wait), which, like
 * corral_command_reply, hands back an error reply whole too.
 */
enum corral_code corral_command_start(struct corral *conn, const char *cmd, json_t *args,
				      struct corral_pending **ret_pending,
				      struct corral_error *err);
enum corral_code corral_command_wait(struct corral_pending *pending, json_t **ret_reply,
				     struct corral_error *err);
/*
 * The line hook: cb gets the text (no newline, not NUL-terminated) of every
 * line that answers this connection, as received: each reply to one of its
 * requests (ok or error, and a connection-level "id": null error) and each
 * event of its streams, before the waiter sees it.  For tools that print
 * replies verbatim (corralctl --json).  cb runs on the thread that reads, with
 * the connection's lock held: it must not use the connection.  Streams opened
 * later from conn inherit the hook.  NULL cb: none.
 */
typedef void (*corral_line_cb)(const char *line, size_t len, void *arg);
void corral_set_line_hook(struct corral *conn, corral_line_cb cb, void *arg);
/* The same on the caller's libevent base; cb owns reply (NULL on error). */
typedef void (*corral_command_cb)(json_t *reply, const struct corral_error *err, void *arg);
enum corral_code corral_command_async(struct corral *conn, struct event_base *base, const char *cmd,
				      json_t *args, corral_command_cb cb, void *arg,
				      struct corral_error *err);

/* ---- Typed commands.  Each struct holds the whole reply in json (owned). */

/* ping */
struct corral_ping {
	const char *version;
	int64_t pid;
	int64_t uptime_ms;
	json_t *json;
};
enum corral_code corral_ping(struct corral *conn, struct corral_ping *ret,
			     struct corral_error *err);
void corral_ping_clear(struct corral_ping *p);

/* types: one entry per worker type. */
struct corral_type {
	const char *name;
	const char *mode; /* "builtin", "native", "stdio" */
	int64_t pool_min, pool_max, queue;
	int64_t workers, busy, queued;
	json_t *json; /* this type's object (borrowed from the list's json) */
};
struct corral_types {
	size_t n;
	struct corral_type *types;
	json_t *json;
};
enum corral_code corral_types(struct corral *conn, struct corral_types *ret,
			      struct corral_error *err);
void corral_types_clear(struct corral_types *t);

/* list: live workers (of type, or all when type is NULL). */
struct corral_worker {
	uint64_t id;
	int64_t pid;
	const char *type;
	const char *key;   /* NULL unless the type isolates by key */
	const char *state; /* "starting", "idle", "busy", "stopping" */
	int64_t uptime_ms, requests, rss_kb, cpu_ms;
};
struct corral_workers {
	size_t n;
	struct corral_worker *workers;
	json_t *json;
};
enum corral_code corral_list(struct corral *conn, const char *type, struct corral_workers *ret,
			     struct corral_error *err);
void corral_workers_clear(struct corral_workers *w);

/* A list of worker ids (spawn, stop). */
struct corral_ids {
	size_t n;
	uint64_t *ids;
	json_t *json;
};
void corral_ids_clear(struct corral_ids *ids);
/* spawn count (>= 1) workers of type; their ids once all are ready. */
enum corral_code corral_spawn(struct corral *conn, const char *type, int count,
			      struct corral_ids *ret, struct corral_error *err);
/*
 * stop one worker (worker > 0) or every worker of type (worker 0); graceful,
 * SIGKILL after timeout_ms (< 0: the daemon's default).  ret (may be NULL):
 * the stopped ids.
 */
enum corral_code corral_stop(struct corral *conn, uint64_t worker, const char *type, int timeout_ms,
			     struct corral_ids *ret, struct corral_error *err);
/* kill worker with signal (a name such as "TERM" or "SIGKILL", or a number; NULL: KILL). */
enum corral_code corral_kill(struct corral *conn, uint64_t worker, const char *signal,
			     struct corral_error *err);

/* stats, of everything or of one type. */
struct corral_stats {
	int64_t spawned, exited, crashed, restarts;
	int64_t calls_ok, calls_failed, queued, workers;
	int64_t call_p50_us, call_p99_us, call_p999_us;
	json_t *failures; /* {code: count}, borrowed from json */
	json_t *json;
};
enum corral_code corral_stats(struct corral *conn, const char *type, struct corral_stats *ret,
			      struct corral_error *err);
void corral_stats_clear(struct corral_stats *s);

/* reload: the type names added, removed and changed (arrays of strings, in json). */
struct corral_reload {
	json_t *added, *removed, *changed; /* borrowed from json */
	json_t *json;
};
enum corral_code corral_reload(struct corral *conn, struct corral_reload *ret,
			       struct corral_error *err);
void corral_reload_clear(struct corral_reload *r);

/* shutdown the daemon; it drains within timeout_ms (< 0: its default). */
enum corral_code corral_shutdown(struct corral *conn, int timeout_ms, struct corral_error *err);

/* ---- Streams: watch and logs follow, each on a connection of its own. */

struct corral_stream;

/* A stream event: a worker state change (watch) or a log line (logs). */
struct corral_event {
	/* CORRAL_EVENT_END: corrald ended the stream (it is shutting down, or this
	 * follower fell behind); reason says why, no event follows. */
	enum { CORRAL_EVENT_STATE, CORRAL_EVENT_LOG, CORRAL_EVENT_END } kind;
	uint64_t worker;
	/* CORRAL_EVENT_STATE */
	const char *type;
	int64_t pid;
	const char *state;  /* "starting" "idle" "busy" "stopping" "exited" */
	const char *reason; /* on "exited" (and CORRAL_EVENT_END), else NULL */
	/* CORRAL_EVENT_LOG */
	const char *stream; /* "stdout", "stderr" */
	int64_t ts_ms;
	const char *text;
	json_t *json; /* the event object (owned by the event) */
};
void corral_event_clear(struct corral_event *ev);

/* Watch worker state changes; opens its own connection to conn's socket. */
enum corral_code corral_watch(struct corral *conn, struct corral_stream **ret_stream,
			      struct corral_error *err);
/* Selection of logs: one worker (> 0), one type, or all (0, NULL). */
struct corral_logs_opts {
	uint64_t worker;
	const char *type;
	int lines;	  /* backlog lines to send first (< 0: the daemon's 100) */
	int64_t since_ms; /* > 0: only lines at or after this ts_ms */
};
/* Follow logs (logs -f); the backlog lines come first as events. */
enum corral_code corral_logs_follow(struct corral *conn, const struct corral_logs_opts *opts,
				    struct corral_stream **ret_stream, struct corral_error *err);
/*
 * corral_watch and corral_logs_follow on conn itself, for a tool that
 * connects only to follow one stream: conn must have no request in flight and
 * not be asynchronous; the stream takes it over (conn is closed with the
 * stream, or at once when these fail).
 */
enum corral_code corral_watch_take(struct corral *conn, struct corral_stream **ret_stream,
				   struct corral_error *err);
enum corral_code corral_logs_follow_take(struct corral *conn, const struct corral_logs_opts *opts,
					 struct corral_stream **ret_stream,
					 struct corral_error *err);
/*
 * Next event, waiting at most timeout_ms (< 0: forever); CORRAL_E_CLIENT_TIMEOUT
 * when none came, CORRAL_E_DISCONNECTED when the stream ended.
 */
enum corral_code corral_stream_next(struct corral_stream *s, int timeout_ms,
				    struct corral_event *ret_event, struct corral_error *err);
/* The stream's socket, to poll for POLLIN (then call corral_stream_next). */
int corral_stream_fd(const struct corral_stream *s);
/* True when an event is already buffered (poll would not show it). */
bool corral_stream_pending(const struct corral_stream *s);
void corral_stream_close(struct corral_stream *s);

#ifdef __cplusplus
}
#endif

#endif
