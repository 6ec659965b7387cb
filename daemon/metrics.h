/*
 * metrics.h - Prometheus text at /metrics over HTTP (optional).
 */
#ifndef CORRAL_METRICS_H
#define CORRAL_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "corrald.h"

/* Listen on "host:port" (loopback) or an absolute UNIX socket path; NULL on failure (logged). */
struct metrics *metrics_start(struct daemon *d, const char *listen_on);
void metrics_free(struct metrics *m);

/*
 * What the supervisor and the dispatcher report, by type name.  Each is a
 * no-op when m is NULL (no metrics configured).
 */
/* A call got its reply: code NULL (or "ok") on success, else the reply's error code. */
void metrics_on_call(struct metrics *m, const char *type, const char *code, uint64_t us);
/* A worker of type was spawned. */
void metrics_on_spawn(struct metrics *m, const char *type);
/* A worker of type was reaped; crashed when its death counts as a crash. */
void metrics_on_exit(struct metrics *m, const char *type, bool crashed);
/* A crashed worker of type was replaced. */
void metrics_on_restart(struct metrics *m, const char *type);

#endif
