/*
 * daemon.h - corrald as a whole: startup, the loop, signals, readiness,
 * shutdown.
 */
#ifndef CORRAL_DAEMON_H
#define CORRAL_DAEMON_H

#include <stdint.h>

struct config;
struct daemon;

/* Run corrald with cfg (taken), loaded from config_path (NULL: the embedded default),
 * listening on socket_arg (NULL: the default); the exit code. */
int daemon_run(struct config *cfg, const char *config_path, const char *socket_arg);
/* Something changed (a worker is ready or gone): status, readiness, the end of a drain. */
void daemon_changed(struct daemon *d);
/* Begin the drain (`shutdown`, SIGTERM, SIGINT); the loop ends within timeout_ms. */
void daemon_begin_shutdown(struct daemon *d, uint64_t timeout_ms);

#endif
