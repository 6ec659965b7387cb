/*
 * conn.h - libcorral's connection internals, shared by conn.c (transport,
 * dispatch, calls) and commands.c (typed commands, streams).  Not installed.
 */
#ifndef CORRAL_CLIENT_CONN_H
#define CORRAL_CLIENT_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

struct event;
struct event_base;
struct corral;

/*
 * The async half (async.c, on libevent), reached only through this table,
 * which go_async sets: a program that never goes async links no libevent.
 */
struct cr_async_ops {
	void (*release)(struct corral *c); /* free the connection's events */
	void (*wake)(struct corral *c);	   /* the connection died: let the loop report it */
	void (*flush)(struct corral *c);   /* write the queue, arming what it waits for */
};

/* What writing the async queue waits for. */
enum cr_out_wait { CR_OUT_DONE, CR_OUT_WRITABLE };

/* A received fd waiting for its line, and where in the stream it belongs. */
struct cr_fd {
	uint64_t anchor;
	int fd;
};

/* A request in flight (struct corral_pending to callers). */
struct cr_pending {
	struct corral *conn;
	struct cr_pending *prev, *next;
	uint64_t id;
	bool done;	       /* reply or err is in */
	bool abandoned;	       /* its waiter gave up (client timeout) */
	bool is_call;	       /* the reply is a call's: a result */
	bool want_error_reply; /* keep an error reply's JSON (corral_command_reply) */
	bool waiting;	       /* a thread sleeps on cv for it */
	pthread_cond_t cv;
	int wait_ms;   /* the library's wait bound (0: none) */
	json_t *reply; /* ok reply */
	bool has_flat; /* or: a call's ok reply from the fast path */
	struct cr_flat flat;
	int fd; /* fd that came with it, or -1 */
	struct corral_error err;
	corral_call_cb call_cb; /* async */
	corral_command_cb command_cb;
	void *arg;
};

/* An async request line not yet fully written. */
struct cr_out {
	char *data;
	size_t len, off;
	int fd; /* sent with the first byte, then closed */
	struct cr_out *next;
};

struct corral {
	int fd;
	char *path;
	char version[64];
	int connect_wait_ms;

	pthread_mutex_t mu;	   /* the table, dead, reading */
	pthread_condattr_t cvattr; /* CLOCK_MONOTONIC, for the entries' cv */
	pthread_mutex_t send_mu;
	bool reading; /* a thread owns the receive buffer */
	bool dead;
	struct corral_error dead_err;
	struct corral_error null_err; /* an "id": null error the daemon sent */
	uint64_t next_id;
	struct cr_pending *head, *tail;

	/* Receive buffer: owned by the reader. */
	char *rbuf;
	size_t cap, start, scan, end;
	uint64_t base; /* stream offset of rbuf[0] */
	struct cr_fd fds[16];
	size_t nfds;

	/* corral_set_line_hook: every line that answers us, as received. */
	corral_line_cb line_cb;
	void *line_arg;

	/* A stream's connection: its events, in order. */
	json_t *events;
	uint64_t stream_id;

	/* Async mode. */
	const struct cr_async_ops *async; /* NULL while blocking */
	struct event_base *evbase;
	struct event *rev, *wev; /* read, write */
	struct cr_out *outq, *outq_tail;
	int dispatching;
	bool close_requested;
};

enum corral_code cr_open(const char *path, struct corral **ret, struct corral_error *err);
int cr_fill(struct corral *c, int timeout_ms);
bool cr_take_line(struct corral *c, const char **ret_line, size_t *ret_len, int *ret_fd);
enum corral_code cr_submit(struct corral *c, struct event_base *base, json_t *req, int fd,
			   bool close_fd, struct cr_pending *tmpl, struct cr_pending **ret,
			   struct corral_error *err);
enum corral_code cr_submit_body(struct corral *c, struct event_base *base, char *body, size_t blen,
				int fd, bool close_fd, struct cr_pending *tmpl,
				struct cr_pending **ret, struct corral_error *err);
/* A call request's text, without id (see conn.c). */
enum corral_code cr_build_call(const char *type, const void *data, size_t len,
			       const struct corral_call_opts *o, char **ret_body, size_t *ret_blen,
			       int *ret_fd, bool *ret_close, struct corral_error *err);
/* A command's request object: cmd with a copy of args' members. */
json_t *cr_command_req(const char *cmd, json_t *args);
enum corral_code cr_wait(struct cr_pending *p, int wait_ms, json_t **ret_reply, int *ret_fd,
			 struct corral_error *err);
/* cr_wait for a call: a fast-path reply comes in *ret_flat (*ret_reply NULL). */
enum corral_code cr_wait_call(struct cr_pending *p, int wait_ms, json_t **ret_reply,
			      struct cr_flat *ret_flat, int *ret_fd, struct corral_error *err);
void cr_complete(struct cr_pending *p);
/* Async (loop thread): write the queue, read what came, run finished callbacks. */
enum cr_out_wait cr_write_outq(struct corral *c);
void cr_read_ready(struct corral *c);
void cr_run_callbacks(struct corral *c);
/* Stream connections: read what comes within timeout_ms and deliver it. */
enum corral_code cr_pump(struct corral *c, int timeout_ms, struct corral_error *err);

#endif
