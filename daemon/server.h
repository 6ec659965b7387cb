/*
 * server.h - the control server: the UNIX socket, its clients, NDJSON lines
 * with SCM_RIGHTS fds, bounded buffers, and the command table.
 */
#ifndef CORRAL_SERVER_H
#define CORRAL_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <jansson.h>

#include "corrald.h"

#define LINE_MAX_BYTES	   (1024u * 1024u) /* one request or reply line, newline excluded */
#define SERVER_MAX_CLIENTS 1024u	   /* x LINE_MAX_BYTES of input buffer at most */
#define CLIENT_MAX_RFDS	   16u

/*
 * Per-connection budgets (DESIGN.md "Principles": fair).  Each read event
 * takes one slice of bytes and dispatches at most a slice of lines.  Lines
 * left over wait in the server's backlog: one client's slice per loop turn,
 * round robin, at a priority below fresh input, so a client with one request
 * goes ahead of a client with ten thousand (a backlog that waited past
 * BACKLOG_MAX_WAIT_US is served at the normal priority: never starved).  A
 * connection whose unsent replies pass the soft limit is not read until they
 * drain to half of it; past the hard limit (replies to calls already accepted
 * keep coming) it is dropped.  A stream follower whose unsent events pass its
 * own limit is dropped: its stream ends with a final event where that can
 * still be sent, and the connection closes once flushed or after the linger.
 */
#define CLIENT_READ_SLICE   (64u * 1024u)
#define CLIENT_LINE_SLICE   16u
#define CLIENT_SOFT_OUT	    (64u * 1024u)
#define CLIENT_MAX_OUT	    (64u * 1024u * 1024u)
#define STREAM_MAX_OUT	    (256u * 1024u)
#define STREAM_LINGER_MS    10000u
#define BACKLOG_MAX_WAIT_US 20000u

/*
 * Event priorities (event_base_priority_init(base, EV_NPRIO)); libevent runs
 * only the most urgent non-empty priority in a loop turn.  Reply flushes
 * share the default priority (a lower one would starve while any client or
 * worker pipe stays readable); a flush is activated during the turn and so
 * runs after the events already pending in it: one write still carries all
 * the replies of a turn.  The backlog of buffered request lines runs below.
 */
#define EV_NPRIO	3
#define EV_PRIO_DEFAULT (EV_NPRIO / 2)
#define EV_PRIO_FLUSH	EV_PRIO_DEFAULT
#define EV_PRIO_BACKLOG (EV_PRIO_DEFAULT + 1)

struct outmsg {
	TAILQ_ENTRY(outmsg) entry;
	char *data;
	size_t len, off;
	int fd;	    /* rides with the first byte; -1 none */
	bool event; /* a stream event: counts against STREAM_MAX_OUT */
};

/* A follower of `logs -f`. */
struct follow {
	json_t *id;
	uint64_t worker; /* 0: by type */
	char *type;	 /* NULL with worker 0: every worker, of types added later too */
};

struct client {
	LIST_ENTRY(client) entry;
	TAILQ_ENTRY(client) bentry; /* the server's backlog, while in it */
	bool in_backlog;
	uint64_t backlog_us; /* when it joined the backlog */
	struct server *srv;
	int fd;
	uid_t uid;
	struct event *ev_rd, *ev_wr, *ev_flush;
	struct event *ev_timer; /* the linger of an ended stream */
	bool flush_pending;
	char *in;
	size_t inoff, inlen, incap; /* unread input is in[inoff..inlen) */
	size_t scan;		    /* in[inoff..scan) holds no newline */
	uint64_t in_base;	    /* stream offset of in[0] */
	struct {
		int fd;
		uint64_t off;
	} rfds[CLIENT_MAX_RFDS];
	unsigned nrfds;
	int cur_fds[CLIENT_MAX_RFDS]; /* fds of the line being dispatched */
	unsigned ncur_fds;
	TAILQ_HEAD(, outmsg) out;
	size_t outbytes;
	size_t evbytes; /* of outbytes, stream events */
	LIST_HEAD(, call) calls;
	LIST_HEAD(, spawn_req) spawns;
	json_t *watch_id; /* non-NULL: a `watch` stream */
	struct follow *follows;
	unsigned nfollows;
	bool closing; /* close once the output is flushed */
	bool rd_eof;  /* the peer shut its side: finish the buffered lines, then close */
	bool paused;  /* unsent replies over CLIENT_SOFT_OUT: not read */
	bool ended;   /* streams ended (dropped or drain): lingers until flushed */
	bool dead;
	bool hup_watched; /* after EOF: in the server's hang-up set */
};

struct server {
	struct daemon *d;
	int lfd;
	bool activated; /* socket came from systemd */
	struct event *ev_accept, *ev_backoff;
	LIST_HEAD(, client) clients;
	unsigned nclients;
	TAILQ_HEAD(, client) backlog; /* clients with complete lines left to dispatch */
	struct event *ev_backlog;     /* serves the backlog's head, one slice a turn */
	int hup_fd;		      /* epoll set of half-closed clients: EPOLLHUP only */
	struct event *ev_hup;
	uid_t *allow_uids;
	size_t n_allow_uids;
	gid_t *allow_gids;
	size_t n_allow_gids;
};

/* Resolve the daemon's socket path per DESIGN.md; malloc'd. */
char *server_default_path(const char *cli, const struct config *cfg);
/* Listen (or adopt a systemd socket), set up the accept event.  -1 with a logged error. */
int server_start(struct daemon *d, const char *path, const struct config *cfg);
/* Apply allow lists from a (new) config. */
void server_set_acl(struct server *s, const struct config *cfg);
/* Stop accepting (shutdown). */
void server_stop_accepting(struct server *s);
/* Close everything; unlink the socket unless it came from systemd. */
void server_free(struct server *s, const char *path);
/* Try to flush every client's output once (exit path); true when all flushed. */
bool server_flush_all(struct server *s);
/*
 * End every stream (`watch`, `logs -f`) with a final event {"end": why}; each
 * such connection closes once flushed, or after STREAM_LINGER_MS: never waits
 * on a client that does not read.  For the shutdown drain.
 */
void server_end_streams(struct server *s, const char *why);

/* Queue one JSON line (obj is stolen) with an optional fd (stolen). */
void client_send(struct client *c, json_t *obj, int fd);
/* Queue one serialized line (s, malloc'd, no newline, is taken) with an optional fd. */
void client_send_line(struct client *c, char *s, size_t len, int fd);
/* {"id":id,"ok":true, ...fields of extra (stolen, may be NULL)} */
void client_reply_ok(struct client *c, json_t *id, json_t *extra);
/* {"id":id,"ok":false,"error":{code,message}} */
void client_reply_error(struct client *c, json_t *id, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A worker changed state: tell every `watch` client. */
void server_emit_watch(struct daemon *d, const struct worker *w, const char *reason);
/* A log line arrived: tell every matching `logs -f` client. */
void server_emit_log(struct daemon *d, const struct type_rt *t, const struct logline *l);

/* Commands: each gets the client, the request id and the request object. */
typedef void (*cmd_fn)(struct client *c, json_t *id, json_t *req);

/* Handlers by command (proto/control.h's enum ctl_cmd_id); NULL: not served. */
extern const cmd_fn command_handlers[];

/* Helpers for commands. */
json_t *worker_to_json(const struct worker *w);
json_t *logline_to_json(const struct logline *l);
int client_take_fd(struct client *c);

#endif
