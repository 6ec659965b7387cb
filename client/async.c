/*
 * async.c - libcorral's libevent half: a connection's fd as events on the
 * caller's event_base, the queue of request lines written as the socket
 * takes them, callbacks run from the loop.  The blocking core (conn.c) calls
 * in here only through struct cr_async_ops, so a program that never uses the
 * async API (corralctl, linked statically) needs no libevent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conn.h"

/* Free the connection's events. */
static void async_release(struct corral *c)
{
	if (c->rev)
		event_free(c->rev);
	if (c->wev)
		event_free(c->wev);
	c->rev = c->wev = NULL;
}

/* The connection died: run the read event so the loop reports every entry. */
static void async_wake(struct corral *c)
{
	if (c->rev)
		event_active(c->rev, EV_READ, 0);
}

/* Write the queue; arm the write event for what is left. */
static void async_flush(struct corral *c)
{
	if (cr_write_outq(c) == CR_OUT_WRITABLE)
		event_add(c->wev, NULL);
}

static const struct cr_async_ops async_ops = {async_release, async_wake, async_flush};

/* The event_base saw the socket readable (or writable). */
static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct corral *c = arg;

	(void)fd;
	if (what & EV_WRITE)
		async_flush(c);
	if (what & EV_READ)
		cr_read_ready(c);
	if (c->dead) {
		event_del(c->rev);
		event_del(c->wev);
	}
	cr_run_callbacks(c);
	if (c->close_requested && !c->dispatching) {
		c->close_requested = false;
		corral_close(c);
	}
}

/* Make c asynchronous on base (first async use), or say why it cannot be. */
static enum corral_code go_async(struct corral *c, struct event_base *base,
				 struct corral_error *err)
{
	if (c->evbase == base)
		return CORRAL_OK;
	if (c->evbase)
		return cr_err(err, CORRAL_E_INVALID, 0,
			      "connection already belongs to another event_base");
	pthread_mutex_lock(&c->mu);
	bool busy = c->head != NULL || c->reading;
	pthread_mutex_unlock(&c->mu);
	if (busy)
		return cr_err(err, CORRAL_E_INVALID, 0,
			      "blocking calls are in flight on this connection");
	if (evutil_make_socket_nonblocking(c->fd) < 0)
		return cr_err(err, CORRAL_E_SYSTEM, errno, "fcntl: %s", strerror(errno));
	c->rev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_event, c);
	c->wev = event_new(base, c->fd, EV_WRITE, on_event, c);
	if (!c->rev || !c->wev || event_add(c->rev, NULL) < 0) {
		async_release(c);
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "cannot add the connection to the loop");
	}
	c->evbase = base;
	c->async = &async_ops;
	return CORRAL_OK;
}

CR_EXPORT enum corral_code corral_call_async(struct corral *c, struct event_base *base,
					     const char *type, const void *data, size_t len,
					     const struct corral_call_opts *o, corral_call_cb cb,
					     void *arg, struct corral_error *err)
{
	char *body;
	size_t blen;
	int fd;
	bool close_fd;
	struct cr_pending tmpl = {.is_call = true, .call_cb = cb, .arg = arg};

	if (!base)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "async call without an event_base");
	enum corral_code rc = go_async(c, base, err);
	if (rc != CORRAL_OK)
		return rc;
	rc = cr_build_call(type, data, len, o, &body, &blen, &fd, &close_fd, err);
	if (rc != CORRAL_OK)
		return rc;
	return cr_submit_body(c, base, body, blen, fd, close_fd, &tmpl, NULL, err);
}

CR_EXPORT enum corral_code corral_command_async(struct corral *c, struct event_base *base,
						const char *cmd, json_t *args, corral_command_cb cb,
						void *arg, struct corral_error *err)
{
	struct cr_pending tmpl = {.command_cb = cb, .arg = arg};

	if (!base || !cmd || (args && !json_is_object(args)))
		return cr_err(err, CORRAL_E_INVALID, EINVAL,
			      "async command without a base or a name");
	enum corral_code rc = go_async(c, base, err);
	if (rc != CORRAL_OK)
		return rc;
	return cr_submit(c, base, cr_command_req(cmd, args), -1, false, &tmpl, NULL, err);
}
