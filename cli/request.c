/*
 * request.c - requests and replies over the control protocol: one JSON object
 * a line, replies matched to requests by id, stream events, and stdout.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "ctl.h"
#include "fmt.h"

/* Print "corralctl: " and a formatted message to stderr. */
void ctl_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("corralctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Report an allocation failure and exit. */
void ctl_oom(void)
{
	ctl_warnx("out of memory");
	exit(CTL_EXIT_ERROR);
}

/* Leave after a failed write to stdout: quietly when the reader went away. */
static void out_fail(void)
{
	if (errno == EPIPE)
		exit(CTL_EXIT_OK);
	ctl_warnx("write error: %s", strerror(errno));
	exit(CTL_EXIT_ERROR);
}

/* Flush stdout; exits on failure. */
void out_flush(void)
{
	if (fflush(stdout) == EOF || ferror(stdout))
		out_fail();
}

/* Write len bytes to stdout (buffered); exits on failure. */
void out_write(const void *buf, size_t len)
{
	if (len && fwrite(buf, 1, len, stdout) != len)
		out_fail();
}

/* Connect to corrald unless connected; 0, or CTL_EXIT_CONNECT once reported. */
int ctl_connect(struct ctl *ctl)
{
	int r;

	static char defpath[4096];

	if (ctl->conn)
		return 0;
	if (!ctl->socket_path)
		ctl->socket_path = ctl_default_socket(defpath, sizeof(defpath));
	r = conn_open(ctl->socket_path, &ctl->conn);
	if (r < 0) {
		ctl_warnx("cannot connect to %s: %s", ctl->socket_path, strerror(-r));
		return CTL_EXIT_CONNECT;
	}
	return 0;
}

/* Close the connection to corrald, if any. */
void ctl_disconnect(struct ctl *ctl)
{
	conn_close(ctl->conn);
	ctl->conn = NULL;
}

/* A new request {"id": next id, "cmd": cmd}; its id goes to *ret_id. */
json_t *ctl_request_new(struct ctl *ctl, const char *cmd, json_int_t *ret_id)
{
	json_int_t id = ctl->next_id++;
	json_t *req = json_pack("{s:I,s:s}", "id", id, "cmd", cmd);

	if (!req)
		ctl_oom();
	if (ret_id)
		*ret_id = id;
	return req;
}

/* Send req (consumed) as one line, fd (if >= 0) riding with it; 0 or an exit status. */
int ctl_send(struct ctl *ctl, json_t *req, int fd)
{
	char *line;
	size_t len;
	int r;

	r = ctl_connect(ctl);
	if (r) {
		json_decref(req);
		return r;
	}
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!line)
		ctl_oom();
	len = strlen(line);
	if (len > CONN_LINE_MAX) {
		free(line);
		ctl_warnx("request too large (over %u bytes)", CONN_LINE_MAX);
		return CTL_EXIT_ERROR;
	}
	r = conn_send(ctl->conn, line, len, fd);
	free(line);
	/* A daemon that refuses us closes at once; its reply may still be readable. */
	if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
		ctl_warnx("cannot send to corrald: %s", strerror(-r));
		return CTL_EXIT_ERROR;
	}
	return 0;
}

/* Read and parse the next line; 0 with *ret_obj (a JSON object) or an exit status. */
static int ctl_read(struct ctl *ctl, struct conn_line *line, json_t **ret_obj)
{
	json_error_t err;
	json_t *obj;
	int r;

	r = conn_recv_line(ctl->conn, line);
	if (r == 0) {
		ctl_warnx("connection closed by corrald");
		return CTL_EXIT_ERROR;
	}
	if (r == -EMSGSIZE) {
		ctl_warnx("reply from corrald longer than %u bytes", CONN_LINE_MAX);
		return CTL_EXIT_ERROR;
	}
	if (r < 0) {
		ctl_warnx("cannot read from corrald: %s", strerror(-r));
		return CTL_EXIT_ERROR;
	}
	obj = json_loadb(line->text, line->len, JSON_ALLOW_NUL, &err);
	if (!obj || !json_is_object(obj)) {
		conn_line_close_fds(line);
		json_decref(obj);
		ctl_warnx("invalid reply from corrald: %s", obj ? "not an object" : err.text);
		return CTL_EXIT_ERROR;
	}
	*ret_obj = obj;
	return 0;
}

/* Whether obj is addressed to request id: its id, or null on an error reply. */
static bool ctl_is_for(json_t *obj, json_int_t id)
{
	json_t *jid = json_object_get(obj, "id");

	if (json_is_integer(jid))
		return json_integer_value(jid) == id;
	/* One request in flight: a connection-level error (permission_denied, too_large) is ours.
	 */
	return json_is_null(jid) && json_is_false(json_object_get(obj, "ok"));
}

/* A safe copy of the string err[key], or of dflt when it is not a string. */
static char *ctl_error_field(json_t *err, const char *key, const char *dflt)
{
	json_t *v = json_object_get(err, key);

	if (!json_is_string(v))
		return fmt_safe(dflt, strlen(dflt), true);
	return fmt_safe(json_string_value(v), json_string_length(v), true);
}

/* Print an error reply as "corralctl: CODE: message". */
static void ctl_print_error(json_t *obj)
{
	json_t *err = json_object_get(obj, "error");
	char *code = ctl_error_field(err, "code", "unknown");
	char *msg = ctl_error_field(err, "message", "");

	ctl_warnx("%s: %s", code, msg);
	free(code);
	free(msg);
}

/*
 * Wait for the reply to request id, ignoring lines for other ids.  0 with
 * *ret_reply for an ok reply; else the error is reported and the exit status
 * returned.  With --json the reply line goes to stdout as received.
 */
int ctl_wait(struct ctl *ctl, json_int_t id, struct ctl_reply *ret_reply)
{
	for (;;) {
		struct conn_line line;
		json_t *obj, *ok;
		int r;

		r = ctl_read(ctl, &line, &obj);
		if (r)
			return r;
		if (!ctl_is_for(obj, id)) {
			conn_line_close_fds(&line);
			json_decref(obj);
			continue;
		}
		if (ctl->json) {
			out_write(line.text, line.len);
			out_write("\n", 1);
		}
		ok = json_object_get(obj, "ok");
		if (json_is_true(ok)) {
			ret_reply->obj = obj;
			ret_reply->fd = conn_line_take_fd(&line);
			conn_line_close_fds(&line);
			return 0;
		}
		conn_line_close_fds(&line);
		if (json_is_false(ok))
			ctl_print_error(obj);
		else
			ctl_warnx("invalid reply from corrald: no \"ok\"");
		json_decref(obj);
		return CTL_EXIT_ERROR;
	}
}

/* Send req (consumed) with fd and wait for its reply, as ctl_wait(). */
int ctl_call(struct ctl *ctl, json_t *req, int fd, struct ctl_reply *ret_reply)
{
	json_int_t id = json_integer_value(json_object_get(req, "id"));
	int r;

	r = ctl_send(ctl, req, fd);
	if (r)
		return r;
	return ctl_wait(ctl, id, ret_reply);
}

/*
 * Wait for the next event of stream id: 0 with *ret_event (a reference the
 * caller drops), else the exit status once reported.  A stream only ends
 * when the client closes it, so the daemon closing it is an error.
 */
int ctl_next_event(struct ctl *ctl, json_int_t id, json_t **ret_event)
{
	for (;;) {
		struct conn_line line;
		json_t *obj, *ev;
		int r;

		r = ctl_read(ctl, &line, &obj);
		if (r)
			return r;
		conn_line_close_fds(&line);
		if (!ctl_is_for(obj, id)) {
			json_decref(obj);
			continue;
		}
		if (ctl->json) {
			out_write(line.text, line.len);
			out_write("\n", 1);
		}
		ev = json_object_get(obj, "event");
		if (json_is_object(ev)) {
			*ret_event = json_incref(ev);
			json_decref(obj);
			return 0;
		}
		if (json_is_false(json_object_get(obj, "ok"))) {
			ctl_print_error(obj);
			json_decref(obj);
			return CTL_EXIT_ERROR;
		}
		json_decref(obj);
	}
}

/* Release a reply's object and fd; accepts an emptied reply. */
void ctl_reply_free(struct ctl_reply *reply)
{
	json_decref(reply->obj);
	reply->obj = NULL;
	if (reply->fd >= 0)
		close(reply->fd);
	reply->fd = -1;
}
