/*
 * sd.h - systemd glue: the notify protocol, the watchdog, socket activation.
 * Written against the documented protocols, no libsystemd.
 */
#ifndef CORRAL_SD_H
#define CORRAL_SD_H

#include <event2/event.h>

/* The listening socket passed by systemd (LISTEN_PID/LISTEN_FDS), or -1. */
int sd_listen_fd(void);
/* Send one notify message ("READY=1", ...) when $NOTIFY_SOCKET is set. */
void sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Start WATCHDOG=1 pings from the event loop when $WATCHDOG_USEC asks for them. */
void sd_watchdog_start(struct event_base *base);
void sd_watchdog_stop(void);

#endif
