/*
 * sd.c - systemd's notify protocol, watchdog and socket activation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sd.h"

static struct event *watchdog_ev;

/* The listening socket passed by systemd, or -1. */
int sd_listen_fd(void)
{
	const char *pid = getenv("LISTEN_PID");
	const char *fds = getenv("LISTEN_FDS");

	if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
		return -1;
	long n = strtol(fds, NULL, 10);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n < 1)
		return -1;
	/* fds beyond the first are not ours to use: close them. */
	for (long i = 1; i < n; i++)
		close(3 + (int)i);
	int fd = 3;
	int type = 0;
	socklen_t len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
		log_warn("LISTEN_FDS: fd 3 is not a stream socket; ignoring it");
		return -1;
	}
	return fd;
}

/* Send one notify message when $NOTIFY_SOCKET is set. */
void sd_notifyf(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char msg[512];
	va_list ap;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen) <
	    0)
		log_debug("sd_notify: %s", strerror(errno));
	close(fd);
}

/* Watchdog tick: the loop turns, so say so. */
static void watchdog_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notifyf("WATCHDOG=1");
}

/* Start WATCHDOG=1 pings at half the interval systemd asks for. */
void sd_watchdog_start(struct event_base *base)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");

	if (!usec)
		return;
	if (pid && strtol(pid, NULL, 10) != (long)getpid())
		return;
	unsigned long long us = strtoull(usec, NULL, 10);
	if (us == 0)
		return;
	us /= 2;
	struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
	watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_tick, NULL);
	if (watchdog_ev)
		event_add(watchdog_ev, &tv);
}

/* Stop the watchdog pings. */
void sd_watchdog_stop(void)
{
	if (watchdog_ev) {
		event_free(watchdog_ev);
		watchdog_ev = NULL;
	}
}
