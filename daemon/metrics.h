/*
 * metrics.h - Prometheus text at /metrics over HTTP (optional).
 */
#ifndef CORRAL_METRICS_H
#define CORRAL_METRICS_H

#include "corrald.h"

/* Listen on "host:port" (loopback) or an absolute UNIX socket path; NULL on failure (logged). */
struct metrics *metrics_start(struct daemon *d, const char *listen_on);
void metrics_free(struct metrics *m);

#endif
