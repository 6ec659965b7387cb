/*
 * cmd_admin.c - commands that act on the daemon: reload and shutdown (--wait).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "fmt.h"

/* Print "label: a, b" for the names in reply[key], or "label: -". */
static void admin_print_names(json_t *reply, const char *key)
{
	json_t *names = json_object_get(reply, key);
	size_t i;
	json_t *v;

	printf("%s:", key);
	json_array_foreach(names, i, v)
	{
		char *s = fmt_json(v);

		printf("%s %s", i ? "," : "", s);
		free(s);
	}
	printf("%s\n", json_array_size(names) ? "" : " -");
}

/* reload: the added, removed and changed type names. */
int cmd_reload(struct ctl *ctl, int argc, char **argv)
{
	json_t *rep;
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	r = ctl_command(ctl, CTL_CMD_RELOAD, NULL, &rep);
	if (r)
		return r;
	if (!ctl->json) {
		admin_print_names(rep, "added");
		admin_print_names(rep, "removed");
		admin_print_names(rep, "changed");
	}
	json_decref(rep);
	return CTL_EXIT_OK;
}

/* Milliseconds on the monotonic clock. */
static long long admin_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A pidfd for the daemon at the other end of the connection, or -1: its pid
 * from SO_PEERCRED (in our pid namespace) when it matches the pid the daemon
 * reports (so it is not a socket-activating systemd, nor a pid of another
 * namespace).
 */
static int admin_daemon_pidfd(struct ctl *ctl)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	json_t *rep;
	int r, fd = -1;

	ctl_print_replies(ctl, false); /* this ping is ours, not the user's */
	r = ctl_command(ctl, CTL_CMD_PING, NULL, &rep);
	ctl_print_replies(ctl, true);
	if (r)
		return -1;
	if (getsockopt(corral_fd(ctl->conn), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	    cred.pid > 0 && cred.pid == fmt_int(rep, "pid"))
		fd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
	json_decref(rep);
	return fd;
}

/*
 * Wait until corrald has exited: its pidfd turns readable, or (without one)
 * it closes our connection.  Bounded by bound_ms; 0 or the exit status.
 */
static int admin_wait_exit(struct ctl *ctl, int pidfd, long long bound_ms)
{
	long long deadline = admin_mono_ms() + bound_ms;

	for (;;) {
		/* The socket is libcorral's: watched for the hang-up only, never read. */
		struct pollfd pfd = {pidfd >= 0 ? pidfd : corral_fd(ctl->conn),
				     pidfd >= 0 ? POLLIN : POLLRDHUP, 0};
		long long left = deadline - admin_mono_ms();
		int n;

		if (left <= 0)
			break;
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno != EINTR) {
			ctl_warnx("poll: %s", strerror(errno));
			return CTL_EXIT_ERROR;
		}
		if (n > 0)
			return CTL_EXIT_OK;
	}
	ctl_warnx("corrald has not exited %lld ms after the shutdown request", bound_ms);
	return CTL_EXIT_ERROR;
}

/* shutdown [-t MS] [-w]: nothing on success; with -w, once corrald has exited. */
int cmd_shutdown(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {"wait", no_argument, NULL, 'w'},
	    {NULL, 0, NULL, 0},
	};
	json_t *rep;
	long long timeout = -1;
	bool wait = false;
	int pidfd = -1;
	json_t *args;
	int c, r;

	while ((c = args_next(ctl, argc, argv, "t:w", opts)) != ARGS_END) {
		switch (c) {
		case 't':
			if (args_option_number(ctl, argv, c, CTL_CMD_SHUTDOWN, "timeout_ms",
					       &timeout))
				return CTL_EXIT_USAGE;
			break;
		case 'w':
			wait = true;
			break;
		default:
			return args_stop(c);
		}
	}
	if (args_positional(ctl, argc, argv, 0, 0))
		return CTL_EXIT_USAGE;
	if (wait) {
		r = ctl_connect(ctl);
		if (r)
			return r;
		pidfd = admin_daemon_pidfd(ctl);
	}
	args = args_new();
	if (timeout >= 0)
		json_object_set_new(args, "timeout_ms", json_integer(timeout));
	r = ctl_command(ctl, CTL_CMD_SHUTDOWN, args, &rep);
	if (r == 0) {
		json_decref(rep);
		/* The drain takes at most the timeout; then the SIGKILLs and the exit. */
		if (wait)
			r = admin_wait_exit(ctl, pidfd, (timeout >= 0 ? timeout : 10000) + 5000);
	}
	if (pidfd >= 0)
		close(pidfd);
	return r;
}
