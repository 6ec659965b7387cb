/*
 * stats.c - counters and call latency for `stats`: every event is counted
 * daemon-wide and for its type; durations go into log-linear histograms.
 */
#include "corrald.h"
#include "metrics.h"

#define HIST_N (64 * 8)

/* Log-linear histogram bucket of a duration in µs: 8 sub-buckets per power of two. */
static unsigned hist_bucket(uint64_t us)
{
	if (us < 8)
		return (unsigned)us;
	unsigned lg = 63u - (unsigned)__builtin_clzll(us);
	unsigned sub = (unsigned)((us >> (lg - 3)) & 7u);
	unsigned b = (lg - 2) * 8 + sub;
	return b < HIST_N ? b : HIST_N - 1;
}

/* Lower bound of a bucket, in µs. */
static uint64_t hist_value(unsigned b)
{
	if (b < 8)
		return b;
	unsigned lg = b / 8 + 2, sub = b % 8;
	return ((uint64_t)8 + sub) << (lg - 3);
}

/* A worker of t was spawned. */
void stats_on_spawn(struct type_rt *t)
{
	t->stats.spawned++;
	t->d->stats.spawned++;
	metrics_on_spawn(t->d->metrics, t->name);
}

/* A spawn replaced a crashed worker of t. */
void stats_on_restart(struct type_rt *t)
{
	t->stats.restarts++;
	t->d->stats.restarts++;
	metrics_on_restart(t->d->metrics, t->name);
}

/* A worker of t exited. */
void stats_on_exit(struct type_rt *t, bool crash)
{
	t->stats.exited++;
	t->d->stats.exited++;
	if (crash) {
		t->stats.crashed++;
		t->d->stats.crashed++;
	}
	metrics_on_exit(t->d->metrics, t->name, crash);
}

/* Count one call in s. */
static void stats_call(struct stats *s, uint64_t us, enum ctl_code code)
{
	if (code == CTL_OK) {
		s->calls_ok++;
	} else {
		s->calls_failed++;
		if ((unsigned)code < CTL_NCODES)
			s->failures[code]++;
	}
	s->hist[hist_bucket(us)]++;
	s->hist_n++;
}

/* A call of t got its reply. */
void stats_on_call(struct daemon *d, struct type_rt *t, uint64_t us, enum ctl_code code)
{
	stats_call(&d->stats, us, code);
	stats_call(&t->stats, us, code);
	metrics_on_call(d->metrics, t->name, code == CTL_OK ? NULL : ctl_code_name(code), us);
}

/* The p-th percentile (0..1) of call durations, in µs. */
uint64_t stats_percentile(const struct stats *s, double p)
{
	if (!s->hist_n)
		return 0;
	uint64_t want = (uint64_t)(p * (double)s->hist_n + 0.999999);
	if (want < 1)
		want = 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < HIST_N; b++) {
		seen += s->hist[b];
		if (seen >= want)
			return hist_value(b);
	}
	return hist_value(HIST_N - 1);
}

/* The `stats` reply fields for s. */
json_t *stats_to_json(const struct stats *s, unsigned queued, unsigned workers)
{
	/* Codes a call can fail with always appear; others once they happened. */
	static const enum ctl_code always[] = {CTL_TIMEOUT, CTL_WORKER_CRASHED, CTL_WORKER_ERROR,
					       CTL_BUSY, CTL_UNAVAILABLE};
	json_t *f = json_object();
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		json_object_set_new(f, ctl_code_name(always[i]), json_integer(0));
	for (unsigned code = 1; code < CTL_NCODES; code++)
		if (s->failures[code])
			json_object_set_new(f, ctl_code_name((enum ctl_code)code),
					    json_integer((json_int_t)s->failures[code]));
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "spawned",
			 (json_int_t)s->spawned, "exited", (json_int_t)s->exited, "crashed",
			 (json_int_t)s->crashed, "restarts", (json_int_t)s->restarts, "calls_ok",
			 (json_int_t)s->calls_ok, "calls_failed", (json_int_t)s->calls_failed,
			 "queued", (json_int_t)queued, "workers", (json_int_t)workers,
			 "call_p50_us", (json_int_t)stats_percentile(s, 0.50), "call_p99_us",
			 (json_int_t)stats_percentile(s, 0.99), "call_p999_us",
			 (json_int_t)stats_percentile(s, 0.999), "failures", f);
}
