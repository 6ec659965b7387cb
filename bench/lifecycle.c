/*
 * bench/lifecycle.c - bench-lifecycle: how corrald starts, restarts, holds and
 * loses workers.  Every figure is measured against a private corrald started
 * here (temporary config and socket); baselines are measured in the same run.
 *
 *   restart_after_sigkill_ms_p50/p99   SIGKILL of a min-1 worker, its pool at
 *                                      rest (kills 100 ms apart, so the spare
 *                                      made after the last one is ready), until
 *                                      the replacement's "idle" watch event
 *                                      (= restart_plain_p50_ms: no sandbox)
 *   restart_sandboxed_p50_ms/p99       the same with the default sandbox
 *   restart_{plain,sandboxed}_back_to_back_p50_ms  each kill as soon as the
 *                                      last replacement is idle: a restart
 *                                      storm, where each restart also waits
 *                                      for the spare the last one started
 *   restart_sandboxed_vs_bare_fork_exec  against posix_spawn of bench-hello
 *                                      until its byte arrives (medians)
 *   ready_100_sandboxed_ms             spawn count 100 of a sandboxed type
 *   crash_loop_spawns_per_s            spawns of a type whose program exits at
 *                                      once, default restart policy, first 3 s
 *   ready_100_workers_ms               spawn count 100 until the reply
 *   corralctl_ping_vs_exec_floor       whole `corralctl ping` process against
 *                                      bench-true (fork+exec+wait, medians)
 *   corralctl_ping_vs_exec_true        the same against /bin/true
 *   corralctl_ping_vs_sv_status        the same against runit's `sv status` of a
 *                                      service a runsv supervises (a trivial one
 *                                      in a temporary directory); skipped, said
 *                                      why, when runit is not installed
 *   idle_wakeups_per_s                 daemon context switches, 100 idle workers
 *   daemon_private_kb_100_workers      Private_Dirty of smaps_rollup
 *   spawn_ready_1000_alive_vs_empty    spawn count 1 until ready, medians
 *   orphans_after_daemon_sigkill       worker pids alive 1 s after the daemon's SIGKILL
 *
 * Binaries: $CORRALD, $CORRALCTL, $BENCH_TRUE, $BENCH_HELLO, else found relative
 * to this executable in the build tree (../daemon/corrald, ../cli/corralctl,
 * ./bench-true, ./bench-hello); $BENCH_SV and $BENCH_RUNSV, else found in
 * /usr/bin, /bin, /usr/sbin, /sbin or $PATH (Debian package runit).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define RESTART_ITERS	50
#define PING_ITERS	200
#define SPAWN_ITERS	30
#define IDLE_WINDOW_S	10
#define CRASH_WINDOW_MS 3000
#define ALIVE_WORKERS	1000
#define ORPHAN_WORKERS	100

extern char **environ;

/* The main daemon: echo keeps one worker (restart burst at the config's
 * maximum so the SIGKILL loop is never throttled); pool serves bulk spawns.
 * The goals are without the sandbox; bench-call reports its cost. */
static const char config_main[] =
    "{\"types\": {\n"
    "  \"echo\": {\"builtin\": \"echo\", \"pool\": {\"min\": 1, \"max\": 4},\n"
    "            \"restart\": {\"burst\": 10000, \"interval_ms\": 1000},\n"
    "            \"sandbox\": {\"namespaces\": [], \"seccomp\": \"none\"}},\n"
    "  \"echosb\": {\"builtin\": \"echo\", \"pool\": {\"min\": 1, \"max\": 4},\n"
    "            \"restart\": {\"burst\": 10000, \"interval_ms\": 1000}},\n"
    "  \"poolsb\": {\"builtin\": \"echo\", \"ring_kb\": 64,\n"
    "            \"pool\": {\"min\": 0, \"max\": 1024, \"idle_timeout_ms\": 3600000}},\n"
    "  \"pool\": {\"builtin\": \"echo\", \"ring_kb\": 64,\n"
    "            \"pool\": {\"min\": 0, \"max\": 1024, \"idle_timeout_ms\": 3600000},\n"
    "            \"sandbox\": {\"namespaces\": [], \"seccomp\": \"none\"}}\n"
    "}}\n";

/* A program that exits at once, with the default restart policy. */
static const char config_crash[] =
    "{\"types\": {\n"
    "  \"crashy\": {\"exec\": [\"/bin/false\"], \"pool\": {\"min\": 1}}\n"
    "}}\n";

static double ns_to_ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* The id and pid of the one live worker of a type. */
static void one_worker(struct bench_conn *c, const char *type, uint64_t *id, pid_t *pid)
{
	json_t *r = bench_request(c, false, "\"cmd\":\"list\",\"type\":\"%s\"", type);
	json_t *w = json_array_get(json_object_get(r, "workers"), 0);

	if (!w)
		bench_die("type %s has no worker", type);
	*id = (uint64_t)json_integer_value(json_object_get(w, "id"));
	*pid = (pid_t)json_integer_value(json_object_get(w, "pid"));
	json_decref(r);
}

/* SIGKILL the type's worker from outside until its replacement is idle; p50 ms. */
static double bench_restart(struct bench_daemon *d, const char *type, int gap_ms)
{
	struct bench_conn c, watch;
	double t[RESTART_ITERS];
	uint64_t id;
	pid_t pid;

	bench_log("restart after SIGKILL, %s, %d iterations, %d ms apart", type, RESTART_ITERS,
		  gap_ms);
	if (bench_connect(&c, d->sock) < 0)
		bench_die("connect: %s", strerror(errno));
	bench_watch_open(&watch, d->sock);
	/* The min worker may still be starting. */
	for (int i = 0;; i++) {
		json_t *r = bench_request(&c, false, "\"cmd\":\"list\",\"type\":\"%s\"", type);
		json_t *w = json_array_get(json_object_get(r, "workers"), 0);
		const char *st = json_string_value(json_object_get(w, "state"));
		bool idle = st && strcmp(st, "idle") == 0;

		json_decref(r);
		if (idle)
			break;
		if (i > 5000)
			bench_die("the %s min worker never became idle", type);
		bench_sleep_ms(1);
	}
	one_worker(&c, type, &id, &pid);
	for (int i = 0; i < RESTART_ITERS; i++) {
		struct bench_event_filter f = {.type = type, .state = "idle", .worker_gt = id};
		struct bench_event ev;
		if (gap_ms)
			bench_sleep_ms(gap_ms); /* the spare made after the last restart is ready */
		uint64_t t0 = bench_now_ns();

		if (kill(pid, SIGKILL) < 0)
			bench_die("kill %d: %s", (int)pid, strerror(errno));
		if (!bench_watch_wait(&watch, &f, 10000, &ev))
			bench_die("no replacement for worker %llu within 10 s",
				  (unsigned long long)id);
		t[i] = ns_to_ms(bench_now_ns() - t0);
		id = ev.worker;
		pid = ev.pid;
	}
	double p50 = bench_percentile(t, RESTART_ITERS, 50);
	double p99 = bench_percentile(t, RESTART_ITERS, 99);
	const char *kind = strcmp(type, "echo") == 0 ? "plain" : "sandboxed";
	if (!gap_ms) {
		printf("BENCH restart_%s_back_to_back_p50_ms %.3f ms\n", kind, p50);
	} else {
		if (strcmp(kind, "plain") == 0) {
			printf("BENCH restart_after_sigkill_ms_p50 %.3f ms\n", p50);
			printf("BENCH restart_after_sigkill_ms_p99 %.3f ms\n", p99);
		}
		printf("BENCH restart_%s_p50_ms %.3f ms\n", kind, p50);
		printf("BENCH restart_%s_p99_ms %.3f ms\n", kind, p99);
	}
	fflush(stdout);
	bench_conn_close(&watch);
	bench_conn_close(&c);
	return p50;
}

/* Median ms of posix_spawn of bench-hello until its byte arrives on fd 3 (then reaped). */
static double bare_handshake_ms(const char *hello)
{
	double t[RESTART_ITERS];
	char *argv[] = {(char *)hello, NULL};

	for (int i = -5; i < RESTART_ITERS; i++) {
		posix_spawn_file_actions_t fa;
		int sp[2];
		pid_t pid;
		char byte;

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			bench_die("socketpair: %s", strerror(errno));
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, sp[1], 3);
		uint64_t t0 = bench_now_ns();
		int e = posix_spawn(&pid, hello, &fa, NULL, argv, environ);
		if (e)
			bench_die("posix_spawn %s: %s", hello, strerror(e));
		if (read(sp[0], &byte, 1) != 1)
			bench_die("bench-hello did not write its byte");
		if (i >= 0)
			t[i] = ns_to_ms(bench_now_ns() - t0);
		posix_spawn_file_actions_destroy(&fa);
		close(sp[0]);
		close(sp[1]);
		waitpid(pid, NULL, 0);
	}
	return bench_percentile(t, RESTART_ITERS, 50);
}

/* A type whose program exits at once: how often does the daemon respawn it? */
static void bench_crash_loop(const char *corrald)
{
	struct bench_daemon d;
	struct bench_conn c;

	bench_log("crash loop, %d ms", CRASH_WINDOW_MS);
	uint64_t t0 = bench_now_ns();
	bench_daemon_start(&d, corrald, config_crash, 0);
	if (bench_connect(&c, d.sock) < 0)
		bench_die("connect: %s", strerror(errno));
	bench_sleep_ms(CRASH_WINDOW_MS - (unsigned)((bench_now_ns() - t0) / 1000000u));
	json_t *r = bench_request(&c, false, "\"cmd\":\"stats\"");
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	json_int_t spawned = json_integer_value(json_object_get(r, "spawned"));
	json_decref(r);
	bench_conn_close(&c);
	bench_log("crash loop: %lld spawns in %.2f s (from daemon start)", (long long)spawned,
		  secs);
	/* Default policy: burst 5, then backoff from 100 ms; fewer spawns than
	 * burst + 2 in 3 s means the type never came out of its first backoff. */
	if (spawned <= 6)
		bench_log(
		    "warning: only %lld spawns: the type stalled in backoff (no respawn after "
		    "the first backoff delay)",
		    (long long)spawned);
	printf("BENCH crash_loop_spawns_per_s %.2f spawns/s\n", (double)spawned / secs);
	fflush(stdout);
	bench_daemon_stop(&d, 10000);
}

/* spawn count n until the reply; returns ms; ids into ids[] when given. */
static double spawn_n(struct bench_conn *c, const char *type, unsigned n, uint64_t *ids)
{
	uint64_t t0 = bench_now_ns();
	json_t *r =
	    bench_request(c, false, "\"cmd\":\"spawn\",\"type\":\"%s\",\"count\":%u", type, n);
	double ms = ns_to_ms(bench_now_ns() - t0);

	if (ids && bench_reply_ids(r, ids, n) != n)
		bench_die("spawn reply without %u worker ids", n);
	json_decref(r);
	return ms;
}

/* Median spawn-to-ready of one worker (each stopped and gone before the next). */
static double spawn_ready_median(struct bench_daemon *d, const char *what)
{
	struct bench_conn c, watch;
	double t[SPAWN_ITERS];

	bench_log("spawn-to-ready, %s, %d iterations", what, SPAWN_ITERS);
	if (bench_connect(&c, d->sock) < 0)
		bench_die("connect: %s", strerror(errno));
	bench_watch_open(&watch, d->sock);
	for (int i = -3; i < SPAWN_ITERS; i++) {
		uint64_t id;
		double ms = spawn_n(&c, "pool", 1, &id);
		struct bench_event_filter f = {.state = "exited", .worker = id};

		if (i >= 0)
			t[i] = ms;
		json_decref(bench_request(&c, false, "\"cmd\":\"stop\",\"worker\":%llu",
					  (unsigned long long)id));
		if (!bench_watch_wait(&watch, &f, 10000, NULL))
			bench_die("worker %llu did not exit within 10 s of stop",
				  (unsigned long long)id);
	}
	bench_conn_close(&watch);
	bench_conn_close(&c);
	double p50 = bench_percentile(t, SPAWN_ITERS, 50);
	bench_log("spawn-to-ready %s: p50 %.3f ms, p90 %.3f ms", what, p50,
		  bench_percentile(t, SPAWN_ITERS, 90));
	return p50;
}

/* Start argv with stdin, stdout and stderr on /dev/null; its pid. */
static pid_t spawn_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		bench_die("posix_spawn %s: %s", argv[0], strerror(r));
	return pid;
}

/* fork+exec+wait of argv, stdout/stderr to /dev/null; its wait status, *us the time taken. */
static int run_status(char *const argv[], double *us)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	uint64_t t0 = bench_now_ns();
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	if (r != 0)
		bench_die("posix_spawn %s: %s", argv[0], strerror(r));
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*us = (double)(bench_now_ns() - t0) / 1e3;
	posix_spawn_file_actions_destroy(&fa);
	return st;
}

/* fork+exec+wait of argv, which must exit 0; returns µs. */
static double run_once(char *const argv[])
{
	double us;
	int st = run_status(argv, &us);

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bench_die("%s exited with status 0x%x", argv[0], st);
	return us;
}

/* runit supervising one trivial service, for the `sv status` baseline. */
struct runit {
	char *sv;
	pid_t runsv;
	char dir[64];  /* temporary directory */
	char svc[128]; /* the service directory in it */
};

/* Write a file of the given mode. */
static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		bench_die("write %s: %s", path, strerror(errno));
	close(fd);
}

/* Start runsv on a service that sleeps, and wait until `sv status` reads it; false (said why)
 * when runit is not installed. */
static bool runit_start(struct runit *r)
{
	char *runsv = bench_which("BENCH_RUNSV", "runsv");
	char path[200];
	double us;

	r->sv = bench_which("BENCH_SV", "sv");
	if (!runsv || !r->sv) {
		bench_log("runit not installed (Debian package runit): no sv status baseline");
		free(runsv);
		free(r->sv);
		return false;
	}
	snprintf(r->dir, sizeof(r->dir), "/tmp/bench-sv.XXXXXX");
	if (!mkdtemp(r->dir))
		bench_die("mkdtemp: %s", strerror(errno));
	snprintf(r->svc, sizeof(r->svc), "%s/svc", r->dir);
	if (mkdir(r->svc, 0755) < 0)
		bench_die("mkdir %s: %s", r->svc, strerror(errno));
	snprintf(path, sizeof(path), "%s/run", r->svc);
	write_text(path, "#!/bin/sh\nexec sleep 1000000\n", 0755);
	r->runsv = spawn_quiet((char *[]){runsv, r->svc, NULL});
	free(runsv);
	/* runsv makes supervise/ at its own pace: poll until sv reads the status. */
	for (int i = 0;; i++) {
		int st = run_status((char *[]){r->sv, "status", r->svc, NULL}, &us);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			return true;
		if (i >= 1000)
			bench_die("sv status %s: runsv never answered", r->svc);
		bench_sleep_ms(5);
	}
}

/* nftw callback: remove one entry. */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		bench_log("remove %s: %s", path, strerror(errno));
	return 0;
}

/* `sv exit`: the service and runsv go; then the directory. */
static void runit_stop(struct runit *r)
{
	double us;
	int st;

	run_status((char *[]){r->sv, "exit", r->svc, NULL}, &us);
	for (int i = 0; waitpid(r->runsv, &st, WNOHANG) == 0; i++) {
		if (i == 1000) {
			bench_log("runsv did not exit: SIGKILL");
			kill(r->runsv, SIGKILL);
			waitpid(r->runsv, &st, 0);
			break;
		}
		bench_sleep_ms(5);
	}
	nftw(r->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(r->sv);
}

static void bench_ping(struct bench_daemon *d, const char *corralctl, const char *truebin)
{
	static double tc[PING_ITERS], tt[PING_ITERS], tb[PING_ITERS], ts[PING_ITERS];
	char *ctl[] = {(char *)corralctl, "--socket", d->sock, "ping", NULL};
	char *tru[] = {(char *)truebin, NULL};
	char *bintrue[] = {access("/bin/true", X_OK) == 0 ? "/bin/true" : "/usr/bin/true", NULL};
	struct runit rs;
	bool sv = runit_start(&rs);
	char *svst[] = {sv ? rs.sv : NULL, "status", rs.svc, NULL};

	bench_log("corralctl ping vs bench-true, /bin/true%s, %d runs each",
		  sv ? " and sv status" : "", PING_ITERS);
	for (int i = 0; i < 10; i++) {
		run_once(ctl);
		run_once(tru);
		if (sv)
			run_once(svst);
	}
	for (int i = 0; i < PING_ITERS; i++) {
		tc[i] = run_once(ctl);
		tt[i] = run_once(tru);
		tb[i] = run_once(bintrue);
		if (sv)
			ts[i] = run_once(svst);
	}
	if (sv)
		runit_stop(&rs);
	double c50 = bench_percentile(tc, PING_ITERS, 50);
	double t50 = bench_percentile(tt, PING_ITERS, 50);
	double b50 = bench_percentile(tb, PING_ITERS, 50);
	printf("BENCH corralctl_ping_us_p50 %.1f us\n", c50);
	printf("BENCH exec_floor_us_p50 %.1f us\n", t50);
	printf("BENCH exec_true_us_p50 %.1f us\n", b50);
	printf("RATIO corralctl_ping_vs_exec_floor %.3f\n", c50 / t50);
	printf("RATIO corralctl_ping_vs_exec_true %.3f\n", c50 / b50);
	if (sv) {
		double s50 = bench_percentile(ts, PING_ITERS, 50);
		printf("BENCH sv_status_us_p50 %.1f us\n", s50);
		printf("RATIO corralctl_ping_vs_sv_status %.3f\n", c50 / s50);
	}
	fflush(stdout);
}

/* Context switches of every thread of pid. */
static long long ctxt_switches(pid_t pid)
{
	long long v = bench_proc_field(pid, "status", "voluntary_ctxt_switches");
	long long n = bench_proc_field(pid, "status", "nonvoluntary_ctxt_switches");

	if (v < 0 || n < 0)
		bench_die("cannot read /proc/%d/status", (int)pid);
	if (bench_proc_field(pid, "status", "Threads") != 1)
		bench_log("warning: corrald has more than one thread; counting the main one");
	return v + n;
}

/* Count the pids still alive (zombies count as gone: they no longer run). */
static unsigned count_alive(const pid_t *pids, size_t n)
{
	unsigned alive = 0;

	for (size_t i = 0; i < n; i++) {
		char path[64], buf[512];

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pids[i]);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		char *p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X')
			alive++;
	}
	return alive;
}

static void bench_orphans(const char *corrald)
{
	struct bench_daemon d;
	struct bench_conn c;
	pid_t pids[ORPHAN_WORKERS];
	size_t n = 0;

	bench_log("orphans after the daemon's SIGKILL, %d workers", ORPHAN_WORKERS);
	bench_daemon_start(&d, corrald, config_main, 4096);
	if (bench_connect(&c, d.sock) < 0)
		bench_die("connect: %s", strerror(errno));
	spawn_n(&c, "pool", ORPHAN_WORKERS, NULL);
	json_t *r = bench_request(&c, false, "\"cmd\":\"list\",\"type\":\"pool\"");
	json_t *ws = json_object_get(r, "workers");
	for (size_t i = 0; i < json_array_size(ws) && n < ORPHAN_WORKERS; i++)
		pids[n++] =
		    (pid_t)json_integer_value(json_object_get(json_array_get(ws, i), "pid"));
	json_decref(r);
	bench_conn_close(&c);
	if (n != ORPHAN_WORKERS)
		bench_die("list shows %zu workers, not %d", n, ORPHAN_WORKERS);
	if (count_alive(pids, n) != n)
		bench_die("workers died before the daemon was killed");
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;
	bench_sleep_ms(1000);
	unsigned alive = count_alive(pids, n);
	printf("BENCH orphans_after_daemon_sigkill %u workers\n", alive);
	fflush(stdout);
	for (size_t i = 0; i < n && alive; i++)
		kill(pids[i], SIGKILL); /* leave nothing behind */
	bench_daemon_forget(&d);
}

int main(void)
{
	struct bench_daemon d;
	struct bench_conn c;

	bench_prog = "bench-lifecycle";
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	char *corrald = bench_path("CORRALD", "../daemon/corrald");
	char *corralctl = bench_path("CORRALCTL", "../cli/corralctl");
	char *truebin = bench_path("BENCH_TRUE", "bench-true");
	char *hello = bench_path("BENCH_HELLO", "bench-hello");
	bench_raise_nofile(8192);

	bench_daemon_start(&d, corrald, config_main, 8192);
	if (bench_connect(&c, d.sock) < 0)
		bench_die("connect: %s", strerror(errno));

	double empty_ms = spawn_ready_median(&d, "empty daemon");
	/* A worker dies with its pool at rest: 100 ms apart, a spare is ready for each. */
	bench_restart(&d, "echo", 100);
	double sb50 = bench_restart(&d, "echosb", 100);
	/* A restart storm: each kill as soon as the last replacement is idle. */
	bench_restart(&d, "echo", 0);
	bench_restart(&d, "echosb", 0);
	double bare50 = bare_handshake_ms(hello);
	printf("BENCH bare_fork_exec_handshake_p50_ms %.3f ms\n", bare50);
	printf("RATIO restart_sandboxed_vs_bare_fork_exec %.3f\n", sb50 / bare50);
	bench_crash_loop(corrald);

	bench_log("spawn 100, sandboxed");
	double ready100sb = spawn_n(&c, "poolsb", 100, NULL);
	printf("BENCH ready_100_sandboxed_ms %.2f ms\n", ready100sb);
	json_decref(bench_request(&c, false, "\"cmd\":\"stop\",\"type\":\"poolsb\""));
	bench_log("spawn 100");
	double ready100 = spawn_n(&c, "pool", 100, NULL);
	printf("BENCH ready_100_workers_ms %.2f ms\n", ready100);
	printf("BENCH ready_100_plain_ms %.2f ms\n", ready100);

	bench_ping(&d, corralctl, truebin);

	bench_log("idle daemon with 100 workers, %d s", IDLE_WINDOW_S);
	bench_sleep_ms(200); /* let the dust settle */
	long long cs0 = ctxt_switches(d.pid);
	uint64_t t0 = bench_now_ns();
	bench_sleep_ms(IDLE_WINDOW_S * 1000);
	long long cs1 = ctxt_switches(d.pid);
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	printf("BENCH idle_wakeups_per_s %.2f wakeups/s\n", (double)(cs1 - cs0) / secs);

	long long priv = bench_proc_field(d.pid, "smaps_rollup", "Private_Dirty");
	long long rss = bench_proc_field(d.pid, "smaps_rollup", "Rss");
	bench_log("daemon with 100 workers: Rss %lld kB, Private_Dirty %lld kB", rss, priv);
	printf("BENCH daemon_private_kb_100_workers %lld kB\n", priv);

	bench_log("spawn up to %d workers", ALIVE_WORKERS);
	double t900 = spawn_n(&c, "pool", ALIVE_WORKERS - 100, NULL);
	bench_log("spawn %d: %.1f ms", ALIVE_WORKERS - 100, t900);
	double alive_ms = spawn_ready_median(&d, "1000 workers alive");
	bench_log("daemon with %d workers: Private_Dirty %lld kB", ALIVE_WORKERS,
		  bench_proc_field(d.pid, "smaps_rollup", "Private_Dirty"));
	printf("BENCH spawn_ready_empty_ms_p50 %.3f ms\n", empty_ms);
	printf("BENCH spawn_ready_1000_alive_ms_p50 %.3f ms\n", alive_ms);
	printf("RATIO spawn_ready_1000_alive_vs_empty %.3f\n", alive_ms / empty_ms);
	fflush(stdout);

	bench_conn_close(&c);
	uint64_t ts = bench_now_ns();
	bench_daemon_stop(&d, 20000);
	bench_log("SIGTERM with %d workers: daemon gone after %.1f ms", ALIVE_WORKERS + 1,
		  ns_to_ms(bench_now_ns() - ts));

	bench_orphans(corrald);
	free(corrald);
	free(corralctl);
	free(truebin);
	free(hello);
	return 0;
}
