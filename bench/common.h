/*
 * bench/common.h - helpers shared by bench-lifecycle and bench-call: clocks,
 * percentiles, finding the binaries beside the benchmark, starting a private
 * corrald (temporary directory, config and socket), a blocking NDJSON client,
 * and /proc readers.
 *
 * Output rule: results go to stdout as "BENCH <name> <value> <unit>" and
 * "RATIO <name> <value>" lines only; progress and errors go to stderr.
 */
#ifndef CORRAL_BENCH_COMMON_H
#define CORRAL_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <jansson.h>

/* A corrald started by the benchmark. */
struct bench_daemon {
	pid_t pid;
	char dir[256];	/* temporary directory: config, socket, log */
	char sock[320]; /* socket path */
	char log[320];	/* the daemon's stderr */
};

/* A blocking client connection speaking NDJSON. */
struct bench_conn {
	int fd;
	long next_id;
	char *buf;
	size_t len, cap;
};

/* What a watch event must look like to be waited for (NULL / 0: any). */
struct bench_event_filter {
	const char *type;
	const char *state;
	uint64_t worker;    /* exactly this worker id */
	uint64_t worker_gt; /* a worker id above this one */
};

/* A matched watch event. */
struct bench_event {
	uint64_t worker;
	pid_t pid;
	char state[16];
};

extern const char *bench_prog;

uint64_t bench_now_ns(void);
void bench_sleep_ms(unsigned ms);
_Noreturn void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Percentile p (0..100) of v[0..n); sorts v in place. */
double bench_percentile(double *v, size_t n, double p);

/* $env if set, else rel resolved against the directory of /proc/self/exe. */
char *bench_path(const char *env, const char *rel);

/* A full path for the program name: $env when set, else /usr/bin, /bin, /usr/sbin, /sbin, then
 * each $PATH entry; NULL when there is none (malloc'd). */
char *bench_which(const char *env, const char *name);

/* Raise our soft RLIMIT_NOFILE to at least want (bounded by the hard limit). */
void bench_raise_nofile(rlim_t want);

/* Start corrald with this config (JSON text); nofile: its RLIMIT_NOFILE (0: leave). */
void bench_daemon_start(struct bench_daemon *d, const char *corrald, const char *config,
			rlim_t nofile);
/* SIGTERM, wait for a clean exit (SIGKILL after timeout_ms), remove the directory. */
void bench_daemon_stop(struct bench_daemon *d, unsigned timeout_ms);
/* The daemon died or was killed by us: reap it, remove the directory. */
void bench_daemon_forget(struct bench_daemon *d);

int bench_connect(struct bench_conn *c, const char *sock);
void bench_conn_close(struct bench_conn *c);
/* Write all of s. */
void bench_send_raw(struct bench_conn *c, const char *s, size_t len);
/* Next line as JSON; NULL on timeout (timeout_ms < 0: wait forever); dies on EOF. */
json_t *bench_recv(struct bench_conn *c, int timeout_ms);
/*
 * Send {"id":N,<args>} and wait for the reply with that id (other lines are
 * dropped).  Dies on an error reply unless allow_error.
 */
json_t *bench_request(struct bench_conn *c, bool allow_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Open a watch connection (the ok reply consumed). */
void bench_watch_open(struct bench_conn *c, const char *sock);
/* Wait for a matching watch event; false on timeout. */
bool bench_watch_wait(struct bench_conn *c, const struct bench_event_filter *f, int timeout_ms,
		      struct bench_event *ev);

/* Worker ids of a spawn reply, into ids[0..max); returns the count. */
size_t bench_reply_ids(const json_t *reply, uint64_t *ids, size_t max);

/* A "Name:   123" field of /proc/PID/<file>; -1 when missing. */
long long bench_proc_field(pid_t pid, const char *file, const char *name);

#endif
