/*
 * session.c - one corralctl run's connection to corrald, through libcorral:
 * connecting, commands and their replies, stream events, the exit status of
 * each way they fail, and stdout.  No protocol here: libcorral speaks it.
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

/* --json: a line that answers us goes to stdout as received. */
static void ctl_print_line(const char *line, size_t len, void *arg)
{
	(void)arg;
	out_write(line, len);
	out_write("\n", 1);
}

/* Print replies as received (--json) from now on, or stop (on false). */
void ctl_print_replies(struct ctl *ctl, bool on)
{
	corral_set_line_hook(ctl->conn, on && ctl->json ? ctl_print_line : NULL, NULL);
}

/* Connect to corrald unless connected; 0, or CTL_EXIT_CONNECT once reported. */
int ctl_connect(struct ctl *ctl)
{
	static char defpath[4096];
	struct corral_error err;

	if (ctl->conn)
		return 0;
	if (!ctl->socket_path)
		ctl->socket_path = ctl_default_socket(defpath, sizeof(defpath));
	if (corral_connect_flags(ctl->socket_path, CORRAL_CONNECT_NO_PING, &ctl->conn, &err)) {
		if (err.sys_errno)
			ctl_warnx("cannot connect to %s: %s", ctl->socket_path,
				  strerror(err.sys_errno));
		else
			ctl_warnx("cannot connect to %s: %s", ctl->socket_path, err.message);
		ctl->conn = NULL;
		return CTL_EXIT_CONNECT;
	}
	ctl_print_replies(ctl, true);
	return 0;
}

/* Close the connection to corrald, if any. */
void ctl_disconnect(struct ctl *ctl)
{
	corral_close(ctl->conn);
	ctl->conn = NULL;
}

/*
 * Report err: "CODE: message" for the daemon's error replies, the library's
 * message for the rest.  Returns the exit status.
 */
int ctl_fail(const struct corral_error *err)
{
	const char *name = corral_code_name(err->code);
	char *msg = fmt_safe(err->message, strlen(err->message), true);

	if (err->code == CORRAL_E_DISCONNECTED)
		ctl_warnx("connection closed by corrald");
	else if (err->code > CORRAL_OK && err->code < CORRAL_E_NO_DAEMON)
		ctl_warnx("%s: %s", name, msg);
	else
		ctl_warnx("%s", msg);
	free(msg);
	return CTL_EXIT_ERROR;
}

/*
 * Run command cmd with args (consumed; NULL: none).  0 with *ret_reply (the
 * ok reply, the caller's) or the exit status once the error is reported.
 * With --json the reply goes to stdout as received.
 */
int ctl_command(struct ctl *ctl, enum ctl_cmd_id cmd, json_t *args, json_t **ret_reply)
{
	struct corral_pending *p;
	int r;

	r = ctl_command_start(ctl, cmd, args, &p);
	return r ? r : ctl_command_wait(p, ret_reply);
}

/* Send command cmd with args (consumed) without waiting; 0 or the exit status. */
int ctl_command_start(struct ctl *ctl, enum ctl_cmd_id cmd, json_t *args,
		      struct corral_pending **ret_pending)
{
	struct corral_error err;
	enum corral_code rc;
	int r;

	r = ctl_connect(ctl);
	if (r) {
		json_decref(args);
		return r;
	}
	rc = corral_command_start(ctl->conn, ctl_commands[cmd].name, args, ret_pending, &err);
	json_decref(args);
	return rc ? ctl_fail(&err) : 0;
}

/* Wait for a started command's reply, as ctl_command(). */
int ctl_command_wait(struct corral_pending *pending, json_t **ret_reply)
{
	struct corral_error err;
	json_t *reply = NULL;

	if (corral_command_wait(pending, &reply, &err)) {
		json_decref(reply);
		return ctl_fail(&err);
	}
	*ret_reply = reply;
	return 0;
}

/*
 * The next event of s into *ret_event; 0, or the exit status once reported.
 * A stream only ends when we close it, so its end is an error.
 */
int ctl_stream_next(struct corral_stream *s, struct corral_event *ret_event)
{
	struct corral_error err;

	if (corral_stream_next(s, -1, ret_event, &err))
		return ctl_fail(&err);
	return 0;
}
