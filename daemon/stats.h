/*
 * stats.h - counters and call latency for `stats` (daemon-wide and per type).
 */
#ifndef CORRAL_STATS_H
#define CORRAL_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "control.h"

struct daemon;
struct stats;
struct type_rt;

/* A worker of t was spawned; a restart when it replaces a crashed one. */
void stats_on_spawn(struct type_rt *t);
void stats_on_restart(struct type_rt *t);
/* A worker of t exited (crash: it counts as one). */
void stats_on_exit(struct type_rt *t, bool crash);
/* A call of t got its reply after us µs (code CTL_OK, or its error). */
void stats_on_call(struct daemon *d, struct type_rt *t, uint64_t us, enum ctl_code code);
/* The p-th percentile (0..1) of call durations, in µs. */
uint64_t stats_percentile(const struct stats *s, double p);
/* The `stats` reply fields for s (queued and workers given). */
json_t *stats_to_json(const struct stats *s, unsigned queued, unsigned workers);

#endif
