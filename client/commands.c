/*
 * commands.c - libcorral's typed commands (ping, types, list, spawn, stop,
 * kill, stats, reload, shutdown) and streams (watch, logs follow).  Each
 * command is a request built from proto/control.h's table, sent and waited
 * for through conn.c, its reply turned into a struct by reply.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "control.h"

/* Send command id with args (consumed, may be NULL) and wait for its ok reply. */
static enum corral_code run(struct corral *c, enum ctl_cmd_id id, json_t *args, json_t **ret,
			    struct corral_error *err)
{
	struct cr_pending *p;
	json_t *req = args ? args : json_object();
	int fd = -1;

	if (req)
		json_object_set_new(req, "cmd", json_string(ctl_commands[id].name));
	enum corral_code rc = cr_submit(c, NULL, req, -1, false, NULL, &p, err);
	if (rc != CORRAL_OK)
		return rc;
	rc = cr_wait(p, 0, ret, &fd, err);
	if (fd >= 0)
		close(fd);
	return rc;
}

CR_EXPORT enum corral_code corral_ping(struct corral *c, struct corral_ping *ret,
				       struct corral_error *err)
{
	json_t *r;
	enum corral_code rc = run(c, CTL_CMD_PING, NULL, &r, err);

	return rc != CORRAL_OK ? rc : cr_ping_from(r, ret, err);
}

CR_EXPORT enum corral_code corral_types(struct corral *c, struct corral_types *ret,
					struct corral_error *err)
{
	json_t *r;
	enum corral_code rc = run(c, CTL_CMD_TYPES, NULL, &r, err);

	return rc != CORRAL_OK ? rc : cr_types_from(r, ret, err);
}

/* {"type": type} or {} when type is NULL. */
static json_t *type_arg(const char *type)
{
	return type ? json_pack("{s:s}", "type", type) : json_object();
}

CR_EXPORT enum corral_code corral_list(struct corral *c, const char *type,
				       struct corral_workers *ret, struct corral_error *err)
{
	json_t *r, *a = type_arg(type);

	if (!a)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "type is not valid UTF-8");
	enum corral_code rc = run(c, CTL_CMD_LIST, a, &r, err);
	return rc != CORRAL_OK ? rc : cr_workers_from(r, ret, err);
}

CR_EXPORT enum corral_code corral_spawn(struct corral *c, const char *type, int count,
					struct corral_ids *ret, struct corral_error *err)
{
	json_t *r, *a;

	if (!type || count < 1)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "spawn needs a type and a count >= 1");
	a = json_pack("{s:s, s:i}", "type", type, "count", count);
	if (!a)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "type is not valid UTF-8");
	enum corral_code rc = run(c, CTL_CMD_SPAWN, a, &r, err);
	return rc != CORRAL_OK ? rc : cr_ids_from(r, "workers", ret, err);
}

CR_EXPORT enum corral_code corral_stop(struct corral *c, uint64_t worker, const char *type,
				       int timeout_ms, struct corral_ids *ret,
				       struct corral_error *err)
{
	json_t *r, *a;

	if ((worker > 0) == (type != NULL))
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "stop needs a worker or a type");
	a = worker ? json_pack("{s:I}", "worker", (json_int_t)worker) : type_arg(type);
	if (!a)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "type is not valid UTF-8");
	if (timeout_ms >= 0)
		json_object_set_new(a, "timeout_ms", json_integer(timeout_ms));
	enum corral_code rc = run(c, CTL_CMD_STOP, a, &r, err);
	if (rc != CORRAL_OK)
		return rc;
	if (!ret) {
		json_decref(r);
		return CORRAL_OK;
	}
	return cr_ids_from(r, "stopped", ret, err);
}

CR_EXPORT enum corral_code corral_kill(struct corral *c, uint64_t worker, const char *signal,
				       struct corral_error *err)
{
	json_t *r, *a;

	if (!worker)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "kill needs a worker id");
	a = json_pack("{s:I}", "worker", (json_int_t)worker);
	if (a && signal && json_object_set_new(a, "signal", json_string(signal)) < 0) {
		json_decref(a);
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "signal is not valid UTF-8");
	}
	enum corral_code rc = run(c, CTL_CMD_KILL, a, &r, err);
	if (rc == CORRAL_OK)
		json_decref(r);
	return rc;
}

CR_EXPORT enum corral_code corral_stats(struct corral *c, const char *type,
					struct corral_stats *ret, struct corral_error *err)
{
	json_t *r, *a = type_arg(type);

	if (!a)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "type is not valid UTF-8");
	enum corral_code rc = run(c, CTL_CMD_STATS, a, &r, err);
	return rc != CORRAL_OK ? rc : cr_stats_from(r, ret, err);
}

CR_EXPORT enum corral_code corral_reload(struct corral *c, struct corral_reload *ret,
					 struct corral_error *err)
{
	json_t *r;
	enum corral_code rc = run(c, CTL_CMD_RELOAD, NULL, &r, err);

	if (rc != CORRAL_OK)
		return rc;
	if (!ret) {
		json_decref(r);
		return CORRAL_OK;
	}
	return cr_reload_from(r, ret, err);
}

CR_EXPORT enum corral_code corral_shutdown(struct corral *c, int timeout_ms,
					   struct corral_error *err)
{
	json_t *r, *a = json_object();

	if (a && timeout_ms >= 0)
		json_object_set_new(a, "timeout_ms", json_integer(timeout_ms));
	enum corral_code rc = run(c, CTL_CMD_SHUTDOWN, a, &r, err);
	if (rc == CORRAL_OK)
		json_decref(r);
	return rc;
}

/* ---- Streams ---------------------------------------------------------------- */

struct corral_stream {
	struct corral *c;
};

/*
 * Start stream command id with args (consumed) on a new connection to conn's
 * socket (it inherits conn's line hook), or with take on conn itself (closed
 * on failure).
 */
static enum corral_code stream_open(struct corral *conn, bool take, enum ctl_cmd_id id,
				    json_t *args, struct corral_stream **ret,
				    struct corral_error *err)
{
	struct corral_stream *s;
	struct corral *c;
	json_t *reply;
	enum corral_code rc;

	if (take) {
		c = conn;
		if (!args || c->evbase || c->head) {
			enum corral_code code = args ? CORRAL_E_INVALID : CORRAL_E_NOMEM;
			json_decref(args);
			corral_close(c);
			return cr_err(err, code, args ? EINVAL : ENOMEM,
				      args ? "connection is asynchronous or has requests in flight"
					   : "out of memory");
		}
	} else {
		if (!args)
			return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
		rc = cr_open(conn->path, &c, err);
		if (rc != CORRAL_OK) {
			json_decref(args);
			return rc;
		}
		c->line_cb = conn->line_cb;
		c->line_arg = conn->line_arg;
	}
	s = calloc(1, sizeof(*s));
	c->events = json_array();
	if (!s || !c->events) {
		json_decref(args);
		free(s);
		corral_close(c);
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
	}
	s->c = c;
	c->stream_id = c->next_id; /* the id cr_submit gives the request */
	c->connect_wait_ms = 10000;
	rc = run(c, id, args, &reply, err);
	c->connect_wait_ms = 0;
	if (rc != CORRAL_OK) {
		corral_stream_close(s);
		return rc;
	}
	/* logs: the backlog lines come in the reply; they are the first events. */
	json_t *lines = json_object_get(reply, "lines");
	for (size_t i = 0; i < json_array_size(lines); i++)
		json_array_insert(c->events, i, json_array_get(lines, i));
	json_decref(reply);
	*ret = s;
	return CORRAL_OK;
}

CR_EXPORT enum corral_code corral_watch(struct corral *conn, struct corral_stream **ret,
					struct corral_error *err)
{
	return stream_open(conn, false, CTL_CMD_WATCH, json_object(), ret, err);
}

CR_EXPORT enum corral_code corral_watch_take(struct corral *conn, struct corral_stream **ret,
					     struct corral_error *err)
{
	return stream_open(conn, true, CTL_CMD_WATCH, json_object(), ret, err);
}

/* The logs follow request's arguments from o, or NULL (err filled). */
static json_t *logs_args(const struct corral_logs_opts *o, struct corral_error *err)
{
	json_t *a = json_pack("{s:b}", "follow", 1);

	if (!a) {
		cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
		return NULL;
	}
	if (o) {
		if (o->worker)
			json_object_set_new(a, "worker", json_integer((json_int_t)o->worker));
		if (o->type && json_object_set_new(a, "type", json_string(o->type)) < 0) {
			json_decref(a);
			cr_err(err, CORRAL_E_INVALID, EINVAL, "type is not valid UTF-8");
			return NULL;
		}
		if (o->lines >= 0)
			json_object_set_new(a, "lines", json_integer(o->lines));
		if (o->since_ms > 0)
			json_object_set_new(a, "since_ms", json_integer(o->since_ms));
	}
	return a;
}

CR_EXPORT enum corral_code corral_logs_follow(struct corral *conn, const struct corral_logs_opts *o,
					      struct corral_stream **ret, struct corral_error *err)
{
	json_t *a = logs_args(o, err);

	if (!a)
		return err ? err->code : CORRAL_E_INVALID;
	return stream_open(conn, false, CTL_CMD_LOGS, a, ret, err);
}

CR_EXPORT enum corral_code corral_logs_follow_take(struct corral *conn,
						   const struct corral_logs_opts *o,
						   struct corral_stream **ret,
						   struct corral_error *err)
{
	json_t *a = logs_args(o, err);

	if (!a) {
		corral_close(conn);
		return err ? err->code : CORRAL_E_INVALID;
	}
	return stream_open(conn, true, CTL_CMD_LOGS, a, ret, err);
}

/* Monotonic milliseconds. */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

CR_EXPORT enum corral_code corral_stream_next(struct corral_stream *s, int timeout_ms,
					      struct corral_event *ret, struct corral_error *err)
{
	struct corral *c = s->c;
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;

	for (;;) {
		while (json_array_size(c->events) > 0) {
			json_t *ev = json_incref(json_array_get(c->events, 0));
			json_array_remove(c->events, 0);
			enum corral_code rc = cr_event_from(ev, ret, err);
			json_decref(ev);
			if (rc == CORRAL_OK)
				return rc;
			/* A malformed event is skipped, not fatal to the stream. */
		}
		int left = -1;
		if (timeout_ms >= 0) {
			int64_t l = deadline - now_ms();
			if (l < 0)
				return cr_err(err, CORRAL_E_CLIENT_TIMEOUT, ETIMEDOUT,
					      "no event within %d ms", timeout_ms);
			left = (int)l;
		}
		enum corral_code rc = cr_pump(c, left, err);
		if (rc != CORRAL_OK)
			return rc;
	}
}

CR_EXPORT int corral_stream_fd(const struct corral_stream *s)
{
	return s->c->fd;
}

CR_EXPORT bool corral_stream_pending(const struct corral_stream *s)
{
	const struct corral *c = s->c;

	return json_array_size(c->events) > 0 ||
	       memchr(c->rbuf + c->start, '\n', c->end - c->start) != NULL;
}

CR_EXPORT void corral_stream_close(struct corral_stream *s)
{
	if (!s)
		return;
	corral_close(s->c);
	free(s);
}
