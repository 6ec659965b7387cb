/*
 * bench/call.c - bench-call: the cost of a call and of a spawn through corrald,
 * each against a baseline measured in the same run.
 *
 *   call_rtt_us_p50/p99        64 B echo through the daemon, one client,
 *                              sequential calls, warm workers
 *   lib_call_rtt_us_p50/p99    the same through libcorral (corral_call), in
 *                              the same rounds; RATIO lib_vs_raw_call_rtt
 *                              (goal <= 1.1)
 *   lib_calls_per_s_16_threads 16 threads sharing one libcorral connection,
 *                              blocking calls; RATIO against calls_per_s_16_clients
 *   relay_rtt_us_p50           baseline: client -> relay -> echo process and
 *                              back over SOCK_STREAM socketpairs, 64 B
 *                              (both RTTs measured with the daemon, its workers
 *                              and the bench pinned to one CPU: see bench_rtt)
 *   calls_per_s_{1,4,16}_clients  pipelining clients (DEPTH requests in flight
 *                              each, one poll loop) against 4 echo workers
 *   relay_pipelined_msgs_per_s baseline: 16 clients pipelining DEPTH 64 B
 *                              messages each through one relay process (one
 *                              poll loop) to 4 echo processes and back
 *   calls_per_s_vs_relay_pipelined  calls_per_s_16_clients against it
 *   calls_per_s_16_clients_2_workers  the same 16 clients against a type of
 *                              2 workers (one per CPU of a 2-CPU machine)
 *   spawn_ready_us_p50/p99     spawn count 1 until the reply (then stop it)
 *   bare_fork_exec_handshake_us_p50  baseline: posix_spawn of bench-hello,
 *                              which writes one byte on a socketpair
 *   time_to_100_ready_ms       spawn count 100 until the reply
 *   call_cold_ms_p50           a call to a type with no live worker
 *
 * With $BENCH_CALL_ONLY_LIB set, it stops after the call measurements.
 *
 * Binaries: $CORRALD, $BENCH_HELLO, else ../daemon/corrald and ./bench-hello
 * relative to this executable.  BENCH_CALL_TPUT_ONLY=N runs only the
 * throughput with N clients (for perf record; BENCH_CALL_TPUT_S its length).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include <corral/client.h>

#include "common.h"

#define MSG_LEN	      64
#define RTT_WARMUP    2000
#define RTT_ITERS     20000
#define RTT_ROUNDS    20
#define DEPTH	      32
#define TPUT_WARMUP_S 0.3
#define TPUT_S	      2.0
#define MAX_CLIENTS   16
#define SPAWN_ITERS   100
#define COLD_ITERS    30

extern char **environ;

static const char config[] =
    "{\"types\": {\n"
    "  \"echo\": {\"builtin\": \"echo\", \"pool\": {\"min\": 4, \"max\": 4, \"queue\": 1024}},\n"
    "  \"echo2\": {\"builtin\": \"echo\", \"pool\": {\"min\": 2, \"max\": 2, \"queue\": 1024}},\n"
    "  \"cold\": {\"builtin\": \"echo\", \"pool\": {\"min\": 0, \"max\": 1, \"idle_timeout_ms\": "
    "1},\n"
    "            \"sandbox\": {\"namespaces\": [], \"seccomp\": \"none\"}},\n"
    "  \"sp\":   {\"builtin\": \"echo\", \"pool\": {\"min\": 0, \"max\": 200,\n"
    "                                         \"idle_timeout_ms\": 3600000},\n"
    "            \"sandbox\": {\"namespaces\": [], \"seccomp\": \"none\"}},\n"
    "  \"spsb\": {\"builtin\": \"echo\", \"pool\": {\"min\": 0, \"max\": 200,\n"
    "                                         \"idle_timeout_ms\": 3600000}}\n"
    "}}\n";

static char payload[MSG_LEN + 1];
static double tput_s = TPUT_S;	       /* measured seconds of a throughput run */
static const char *tput_type = "echo"; /* the type the throughput runs call */

/* Format one call request; returns its length. */
static int fmt_call(char *buf, size_t len, const char *type, unsigned long id)
{
	return snprintf(buf, len,
			"{\"id\":%lu,\"cmd\":\"call\",\"type\":\"%s\",\"payload\":\"%s\"}\n", id,
			type, payload);
}

/* Read one reply line (raw) into c's buffer; returns its length, line at c->buf. */
static size_t recv_line(struct bench_conn *c)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl)
			return (size_t)(nl - c->buf) + 1;
		if (c->cap - c->len < 4096) {
			c->cap = c->cap ? c->cap * 2 : 65536;
			c->buf = realloc(c->buf, c->cap);
			if (!c->buf)
				bench_die("out of memory");
		}
		ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bench_die("read from corrald: %s", n ? strerror(errno) : "EOF");
		c->len += (size_t)n;
	}
}

static void consume(struct bench_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Sequential 64 B calls; the RTTs in µs into t[]. */
static void call_rtts(struct bench_conn *c, double *t, int n, unsigned long *id)
{
	char req[256];

	for (int i = 0; i < n; i++) {
		int len = fmt_call(req, sizeof(req), "echo", (*id)++);
		uint64_t t0 = bench_now_ns();

		bench_send_raw(c, req, (size_t)len);
		size_t ll = recv_line(c);
		if (t)
			t[i] = (double)(bench_now_ns() - t0) / 1e3;
		/* Cheap check on the hot path: the reply is ok and carries our bytes. */
		if (!memmem(c->buf, ll, "\"ok\":true", 9) || !memmem(c->buf, ll, payload, MSG_LEN))
			bench_die("bad call reply: %.*s", (int)ll, c->buf);
		consume(c, ll);
	}
}

/* Sequential 64 B calls through libcorral; the RTTs in µs into t[] (NULL: warm-up). */
static void lib_rtts(struct corral *c, double *t, int n)
{
	for (int i = 0; i < n; i++) {
		struct corral_result *r;
		struct corral_error e;
		size_t len;
		uint64_t t0 = bench_now_ns();

		if (corral_call(c, "echo", payload, MSG_LEN, NULL, &r, &e) != CORRAL_OK)
			bench_die("libcorral call: %s", e.message);
		const char *d = corral_result_data(r, &len);
		if (t)
			t[i] = (double)(bench_now_ns() - t0) / 1e3;
		if (len != MSG_LEN || memcmp(d, payload, MSG_LEN) != 0)
			bench_die("libcorral call returned other bytes");
		corral_result_free(r);
	}
}

static void full_io(int fd, char *buf, size_t len, bool wr)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = wr ? write(fd, buf + off, len - off) : read(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		off += (size_t)n;
	}
}

/* The two-hop baseline: we -> relay -> echo -> relay -> we, SOCK_STREAM socketpairs. */
struct relay {
	pid_t relay, echo;
	int fd;
};

static void relay_start(struct relay *r)
{
	int a[2], b[2];
	char buf[MSG_LEN];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) < 0)
		bench_die("socketpair: %s", strerror(errno));
	r->relay = fork();
	if (r->relay == 0) {
		close(a[0]);
		close(b[1]);
		for (;;) {
			full_io(a[1], buf, MSG_LEN, false);
			full_io(b[0], buf, MSG_LEN, true);
			full_io(b[0], buf, MSG_LEN, false);
			full_io(a[1], buf, MSG_LEN, true);
		}
	}
	r->echo = fork();
	if (r->echo == 0) {
		close(a[0]);
		close(a[1]);
		close(b[0]);
		for (;;) {
			full_io(b[1], buf, MSG_LEN, false);
			full_io(b[1], buf, MSG_LEN, true);
		}
	}
	if (r->relay < 0 || r->echo < 0)
		bench_die("fork: %s", strerror(errno));
	close(a[1]);
	close(b[0]);
	close(b[1]);
	r->fd = a[0];
}

/* n round trips of 64 B; their RTTs in µs into t[] (NULL: warm-up). */
static void relay_rtts(struct relay *r, double *t, int n)
{
	char buf[MSG_LEN];

	memcpy(buf, payload, MSG_LEN);
	for (int i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();

		full_io(r->fd, buf, MSG_LEN, true);
		full_io(r->fd, buf, MSG_LEN, false);
		if (t)
			t[i] = (double)(bench_now_ns() - t0) / 1e3;
	}
}

static void relay_stop(struct relay *r)
{
	close(r->fd); /* both helpers see EOF and exit */
	waitpid(r->relay, NULL, 0);
	waitpid(r->echo, NULL, 0);
}

/* Set the CPU mask of the daemon, its live workers and ourselves (children inherit). */
static void pin_all(struct bench_daemon *d, const cpu_set_t *daemon_set, const cpu_set_t *our_set)
{
	struct bench_conn c;

	if (bench_connect(&c, d->sock) < 0)
		bench_die("connect: %s", strerror(errno));
	json_t *r = bench_request(&c, false, "\"cmd\":\"list\"");
	json_t *ws = json_object_get(r, "workers");
	for (size_t i = 0; i < json_array_size(ws); i++) {
		pid_t pid =
		    (pid_t)json_integer_value(json_object_get(json_array_get(ws, i), "pid"));
		if (sched_setaffinity(pid, sizeof(*daemon_set), daemon_set) < 0)
			bench_log("warning: sched_setaffinity(worker %d): %s", (int)pid,
				  strerror(errno));
	}
	json_decref(r);
	bench_conn_close(&c);
	if (sched_setaffinity(d->pid, sizeof(*daemon_set), daemon_set) < 0 ||
	    sched_setaffinity(0, sizeof(*our_set), our_set) < 0)
		bench_die("sched_setaffinity: %s", strerror(errno));
}

static void bench_rtt(struct bench_daemon *d)
{
	static double tc[RTT_ITERS], tr[RTT_ITERS], tl[RTT_ITERS];
	const int chunk = RTT_ITERS / RTT_ROUNDS;
	struct bench_conn c;
	struct corral *lc;
	struct corral_error e;
	struct relay rl;
	unsigned long id = 1;

	bench_log("call RTT and relay baseline, %d each, alternating in %d rounds, on one CPU",
		  RTT_ITERS, RTT_ROUNDS);
	if (bench_connect(&c, d->sock) < 0)
		bench_die("connect: %s", strerror(errno));
	if (corral_connect(d->sock, &lc, &e) != CORRAL_OK)
		bench_die("libcorral: %s", e.message);
	/* One full check with jansson that the reply is what we think it is. */
	json_t *r = bench_request(&c, false,
				  "\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"%s\"", payload);
	const char *res = json_string_value(json_object_get(r, "result"));
	if (!res || strcmp(res, payload) != 0)
		bench_die("echo did not return the payload");
	json_decref(r);
	id = 100;
	/*
	 * Everything on one CPU: on a VM a cross-CPU wakeup (an IPI to a halted
	 * vCPU) costs tens of µs and varies with placement, which drowns what we
	 * measure (the work per hop).  Pinned, both sides pay plain context switches.
	 */
	cpu_set_t our_old, daemon_old, one;
	if (sched_getaffinity(0, sizeof(our_old), &our_old) < 0 ||
	    sched_getaffinity(d->pid, sizeof(daemon_old), &daemon_old) < 0)
		bench_die("sched_getaffinity: %s", strerror(errno));
	int cpu = 0;
	while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &our_old))
		cpu++;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	pin_all(d, &one, &one);
	relay_start(&rl);
	call_rtts(&c, NULL, RTT_WARMUP, &id);
	lib_rtts(lc, NULL, RTT_WARMUP);
	relay_rtts(&rl, NULL, RTT_WARMUP);
	/* Alternate so that drift and scheduler placement hit all sides alike. */
	for (int k = 0; k < RTT_ROUNDS; k++) {
		call_rtts(&c, tc + k * chunk, chunk, &id);
		lib_rtts(lc, tl + k * chunk, chunk);
		relay_rtts(&rl, tr + k * chunk, chunk);
	}
	relay_stop(&rl);
	bench_conn_close(&c);
	corral_close(lc);
	pin_all(d, &daemon_old, &our_old);

	double c50 = bench_percentile(tc, RTT_ITERS, 50), c99 = bench_percentile(tc, RTT_ITERS, 99);
	double r50 = bench_percentile(tr, RTT_ITERS, 50);
	printf("BENCH call_rtt_us_p50 %.2f us\n", c50);
	printf("BENCH call_rtt_us_p99 %.2f us\n", c99);
	printf("BENCH relay_rtt_us_p50 %.2f us\n", r50);
	printf("RATIO call_rtt_vs_relay_rtt %.3f\n", c50 / r50);
	double l50 = bench_percentile(tl, RTT_ITERS, 50), l99 = bench_percentile(tl, RTT_ITERS, 99);
	printf("BENCH lib_call_rtt_us_p50 %.2f us\n", l50);
	printf("BENCH lib_call_rtt_us_p99 %.2f us\n", l99);
	printf("RATIO lib_vs_raw_call_rtt %.3f\n", l50 / c50);
	fflush(stdout);
}

/* One of the threads sharing a libcorral connection: blocking calls until told to stop. */
struct lib_thread {
	struct corral *c;
	volatile int *stop;
	uint64_t calls;
	pthread_t th;
};

static void *lib_thread_main(void *arg)
{
	struct lib_thread *t = arg;

	while (!*t->stop) {
		struct corral_result *r;
		struct corral_error e;
		if (corral_call(t->c, "echo", payload, MSG_LEN, NULL, &r, &e) != CORRAL_OK)
			bench_die("libcorral call: %s", e.message);
		corral_result_free(r);
		__atomic_add_fetch(&t->calls, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* nthreads threads on one libcorral connection; returns calls per second. */
static double lib_throughput(struct bench_daemon *d, int nthreads)
{
	struct lib_thread t[MAX_CLIENTS];
	struct corral *c;
	struct corral_error e;
	volatile int stop = 0;

	if (corral_connect(d->sock, &c, &e) != CORRAL_OK)
		bench_die("libcorral: %s", e.message);
	for (int i = 0; i < nthreads; i++) {
		t[i] = (struct lib_thread){.c = c, .stop = &stop};
		if (pthread_create(&t[i].th, NULL, lib_thread_main, &t[i]))
			bench_die("pthread_create failed");
	}
	bench_sleep_ms((unsigned)(TPUT_WARMUP_S * 1000));
	uint64_t c0 = 0, c1 = 0, t0 = bench_now_ns();
	for (int i = 0; i < nthreads; i++)
		c0 += __atomic_load_n(&t[i].calls, __ATOMIC_RELAXED);
	bench_sleep_ms((unsigned)(TPUT_S * 1000));
	for (int i = 0; i < nthreads; i++)
		c1 += __atomic_load_n(&t[i].calls, __ATOMIC_RELAXED);
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	stop = 1;
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i].th, NULL);
	corral_close(c);
	bench_sleep_ms(100);
	return (double)(c1 - c0) / secs;
}

/* Pipelining clients in one poll loop; returns calls per second. */
static double throughput(struct bench_daemon *d, int nclients)
{
	struct bench_conn c[MAX_CLIENTS];
	struct pollfd pfd[MAX_CLIENTS];
	unsigned long id[MAX_CLIENTS];
	char out[DEPTH * 160];
	uint64_t done = 0, errors = 0, counted = 0;

	for (int i = 0; i < nclients; i++) {
		if (bench_connect(&c[i], d->sock) < 0)
			bench_die("connect: %s", strerror(errno));
		c[i].cap = 1 << 20;
		c[i].buf = malloc(c[i].cap);
		if (!c[i].buf)
			bench_die("out of memory");
		id[i] = 1;
		size_t len = 0;
		for (int k = 0; k < DEPTH; k++)
			len += (size_t)fmt_call(out + len, sizeof(out) - len, tput_type, id[i]++);
		bench_send_raw(&c[i], out, len);
		pfd[i] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
	}
	uint64_t t0 = bench_now_ns(), tstart = 0;
	uint64_t warm = (uint64_t)(TPUT_WARMUP_S * 1e9),
		 end = (uint64_t)((TPUT_WARMUP_S + tput_s) * 1e9);
	for (;;) {
		uint64_t now = bench_now_ns();
		if (!tstart && now - t0 >= warm) {
			tstart = now;
			counted = done;
		}
		if (now - t0 >= end)
			break;
		if (poll(pfd, (nfds_t)nclients, 1000) < 0 && errno != EINTR)
			bench_die("poll: %s", strerror(errno));
		for (int i = 0; i < nclients; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct bench_conn *cc = &c[i];
			ssize_t n = read(cc->fd, cc->buf + cc->len, cc->cap - cc->len);
			if (n <= 0)
				bench_die("read from corrald: %s", n ? strerror(errno) : "EOF");
			cc->len += (size_t)n;
			/* Count whole lines; send as many new requests. */
			size_t off = 0, len = 0;
			int got = 0;
			for (;;) {
				char *nl = memchr(cc->buf + off, '\n', cc->len - off);
				if (!nl)
					break;
				size_t ll = (size_t)(nl - (cc->buf + off)) + 1;
				if (!memmem(cc->buf + off, ll, "\"ok\":true", 9)) {
					if (errors++ == 0)
						bench_log("error reply: %.*s", (int)ll - 1,
							  cc->buf + off);
				}
				off += ll;
				got++;
			}
			consume(cc, off);
			done += (uint64_t)got;
			for (int k = 0; k < got; k++)
				len += (size_t)fmt_call(out + len, sizeof(out) - len, tput_type,
							id[i]++);
			if (len)
				bench_send_raw(cc, out, len);
		}
	}
	double secs = (double)(bench_now_ns() - tstart) / 1e9;
	double rate = (double)(done - counted) / secs;
	/* Drain what is in flight so the daemon is idle for the next run. */
	for (int i = 0; i < nclients; i++)
		bench_conn_close(&c[i]);
	if (errors)
		bench_die("%llu error replies with %d clients", (unsigned long long)errors,
			  nclients);
	bench_sleep_ms(100);
	return rate;
}

/*
 * Spawn-to-ready of one worker of type, each stopped and gone before the next;
 * µs.  With hello, the bare fork+exec+handshake baseline is measured alongside.
 */
static void spawn_ready(struct bench_daemon *d, const char *type, const char *hello)
{
	static double ts[SPAWN_ITERS], tb[SPAWN_ITERS];
	struct bench_conn c, watch;
	char *argv[] = {(char *)hello, NULL};

	bench_log("spawn-to-ready and bare fork+exec handshake, %d each", SPAWN_ITERS);
	if (bench_connect(&c, d->sock) < 0)
		bench_die("connect: %s", strerror(errno));
	bench_watch_open(&watch, d->sock);
	for (int i = -5; i < SPAWN_ITERS; i++) {
		/* corrald */
		uint64_t t0 = bench_now_ns();
		json_t *r = bench_request(&c, false, "\"cmd\":\"spawn\",\"type\":\"%s\"", type);
		double us = (double)(bench_now_ns() - t0) / 1e3;
		uint64_t wid;
		if (bench_reply_ids(r, &wid, 1) != 1)
			bench_die("spawn reply without a worker id");
		json_decref(r);
		json_decref(bench_request(&c, false, "\"cmd\":\"stop\",\"worker\":%llu",
					  (unsigned long long)wid));
		struct bench_event_filter f = {.state = "exited", .worker = wid};
		if (!bench_watch_wait(&watch, &f, 10000, NULL))
			bench_die("worker %llu did not exit after stop", (unsigned long long)wid);

		if (i >= 0)
			ts[i] = us;
		if (!hello)
			continue;
		/* bare */
		int sp[2];
		posix_spawn_file_actions_t fa;
		pid_t pid;
		char byte;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			bench_die("socketpair: %s", strerror(errno));
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, sp[1], 3);
		t0 = bench_now_ns();
		int e = posix_spawn(&pid, hello, &fa, NULL, argv, environ);
		if (e)
			bench_die("posix_spawn %s: %s", hello, strerror(e));
		if (read(sp[0], &byte, 1) != 1)
			bench_die("bench-hello did not write its byte");
		double bus = (double)(bench_now_ns() - t0) / 1e3;
		posix_spawn_file_actions_destroy(&fa);
		close(sp[0]);
		close(sp[1]);
		waitpid(pid, NULL, 0);
		if (i >= 0)
			tb[i] = bus;
	}
	bench_conn_close(&watch);
	bench_conn_close(&c);
	double s50 = bench_percentile(ts, SPAWN_ITERS, 50),
	       s99 = bench_percentile(ts, SPAWN_ITERS, 99);
	if (!hello) {
		/* The whole sandbox: six namespaces, mounts, seccomp, another uid. */
		printf("BENCH spawn_ready_sandboxed_us_p50 %.1f us\n", s50);
		printf("BENCH spawn_ready_sandboxed_us_p99 %.1f us\n", s99);
		fflush(stdout);
		return;
	}
	double b50 = bench_percentile(tb, SPAWN_ITERS, 50);
	printf("BENCH spawn_ready_us_p50 %.1f us\n", s50);
	printf("BENCH spawn_ready_us_p99 %.1f us\n", s99);
	printf("BENCH bare_fork_exec_handshake_us_p50 %.1f us\n", b50);
	printf("RATIO spawn_ready_vs_bare_fork_exec %.3f\n", s50 / b50);
	fflush(stdout);
}

static void time_to_100(struct bench_daemon *d)
{
	struct bench_conn c;

	bench_log("spawn 100");
	if (bench_connect(&c, d->sock) < 0)
		bench_die("connect: %s", strerror(errno));
	uint64_t t0 = bench_now_ns();
	json_decref(bench_request(&c, false, "\"cmd\":\"spawn\",\"type\":\"sp\",\"count\":100"));
	printf("BENCH time_to_100_ready_ms %.2f ms\n", (double)(bench_now_ns() - t0) / 1e6);
	fflush(stdout);
	json_decref(bench_request(&c, false, "\"cmd\":\"stop\",\"type\":\"sp\""));
	bench_conn_close(&c);
}

/* A call to a type with no live worker: idle_timeout_ms 1 reaps it after each call. */
static void call_cold(struct bench_daemon *d)
{
	double t[COLD_ITERS];
	struct bench_conn c, watch;

	bench_log("cold calls, %d", COLD_ITERS);
	if (bench_connect(&c, d->sock) < 0)
		bench_die("connect: %s", strerror(errno));
	bench_watch_open(&watch, d->sock);
	for (int i = -2; i < COLD_ITERS; i++) {
		uint64_t t0 = bench_now_ns();
		json_t *r = bench_request(
		    &c, false, "\"cmd\":\"call\",\"type\":\"cold\",\"payload\":\"%s\"", payload);
		double ms = (double)(bench_now_ns() - t0) / 1e6;
		uint64_t wid = (uint64_t)json_integer_value(json_object_get(r, "worker"));
		json_decref(r);
		struct bench_event_filter f = {.state = "exited", .worker = wid};
		if (!bench_watch_wait(&watch, &f, 10000, NULL))
			bench_die("cold worker %llu did not exit after its call",
				  (unsigned long long)wid);
		if (i >= 0)
			t[i] = ms;
	}
	bench_conn_close(&watch);
	bench_conn_close(&c);
	printf("BENCH call_cold_ms_p50 %.3f ms\n", bench_percentile(t, COLD_ITERS, 50));
	fflush(stdout);
}

/* The pipelined relay's process: clients and echoes, tagged 64 B records (bounded in flight). */
static void relay_pipelined_loop(int *cl, int ncl, int *ec, int nec)
{
	struct pollfd pfd[MAX_CLIENTS + 4];
	static char in[MAX_CLIENTS + 4][DEPTH * 80];
	size_t have[MAX_CLIENTS + 4] = {0};
	char out[DEPTH * 80];

	for (int i = 0; i < ncl + nec; i++)
		pfd[i] = (struct pollfd){.fd = i < ncl ? cl[i] : ec[i - ncl], .events = POLLIN};
	for (;;) {
		if (poll(pfd, (nfds_t)(ncl + nec), -1) < 0)
			continue;
		for (int i = 0; i < ncl + nec; i++) {
			if (!pfd[i].revents)
				continue;
			bool client = i < ncl;
			size_t rec = client ? MSG_LEN : MSG_LEN + 8;
			ssize_t n = read(pfd[i].fd, in[i] + have[i], sizeof(in[i]) - have[i]);
			if (n <= 0)
				_exit(0);
			have[i] += (size_t)n;
			size_t k = have[i] / rec, len = 0;
			for (size_t m = 0; m < k; m++) {
				const char *r = in[i] + m * rec;
				if (client) {
					uint64_t tag = (uint64_t)i;
					memcpy(out + len, &tag, 8);
					memcpy(out + len + 8, r, MSG_LEN);
					len += MSG_LEN + 8;
				} else {
					uint64_t tag;
					memcpy(&tag, r, 8);
					full_io(cl[tag % (uint64_t)ncl], (char *)r + 8, MSG_LEN,
						true);
				}
			}
			if (client && len)
				full_io(ec[i % nec], out, len, true);
			memmove(in[i], in[i] + k * rec, have[i] - k * rec);
			have[i] -= k * rec;
		}
	}
}

/* Calls per second of nclients pipelining 64 B messages through relay -> 4 echoes. */
static double relay_pipelined(int nclients)
{
	int cfd[MAX_CLIENTS], rfd[MAX_CLIENTS], efd[4];
	pid_t pids[5];
	struct pollfd pfd[MAX_CLIENTS];
	size_t part[MAX_CLIENTS] = {0};
	char buf[DEPTH * MSG_LEN * 2], out[DEPTH * MSG_LEN];
	uint64_t done = 0, counted = 0;

	for (int i = 0; i < nclients; i++) {
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			bench_die("socketpair: %s", strerror(errno));
		cfd[i] = sp[0];
		rfd[i] = sp[1];
	}
	for (int e = 0; e < 4; e++) {
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			bench_die("socketpair: %s", strerror(errno));
		efd[e] = sp[0];
		pids[e] = fork();
		if (pids[e] < 0)
			bench_die("fork: %s", strerror(errno));
		if (pids[e] == 0) {
			char eb[DEPTH * 80 * MAX_CLIENTS];
			for (;;) {
				ssize_t n = read(sp[1], eb, sizeof(eb));
				if (n <= 0)
					_exit(0);
				full_io(sp[1], eb, (size_t)n, true);
			}
		}
		close(sp[1]);
	}
	pids[4] = fork();
	if (pids[4] < 0)
		bench_die("fork: %s", strerror(errno));
	if (pids[4] == 0)
		relay_pipelined_loop(rfd, nclients, efd, 4);
	for (int i = 0; i < nclients; i++)
		close(rfd[i]);
	for (int e = 0; e < 4; e++)
		close(efd[e]);
	memset(out, 'a', sizeof(out));
	for (int i = 0; i < nclients; i++) {
		full_io(cfd[i], out, DEPTH * MSG_LEN, true);
		pfd[i] = (struct pollfd){.fd = cfd[i], .events = POLLIN};
	}
	uint64_t t0 = bench_now_ns(), tstart = 0;
	uint64_t warm = (uint64_t)(TPUT_WARMUP_S * 1e9),
		 end = (uint64_t)((TPUT_WARMUP_S + TPUT_S) * 1e9);
	for (;;) {
		uint64_t now = bench_now_ns();
		if (!tstart && now - t0 >= warm) {
			tstart = now;
			counted = done;
		}
		if (now - t0 >= end)
			break;
		if (poll(pfd, (nfds_t)nclients, 1000) < 0 && errno != EINTR)
			bench_die("poll: %s", strerror(errno));
		for (int i = 0; i < nclients; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(cfd[i], buf, sizeof(buf));
			if (n <= 0)
				bench_die("read from the relay: %s", n ? strerror(errno) : "EOF");
			part[i] += (size_t)n;
			size_t got = part[i] / MSG_LEN;
			part[i] %= MSG_LEN;
			done += got;
			if (got)
				full_io(cfd[i], out, got * MSG_LEN, true);
		}
	}
	double secs = (double)(bench_now_ns() - tstart) / 1e9;
	for (int i = 0; i < nclients; i++)
		close(cfd[i]);
	/* Children share each other's fds: no EOF to wait for. */
	for (int p = 0; p < 5; p++) {
		kill(pids[p], SIGKILL);
		waitpid(pids[p], NULL, 0);
	}
	return (double)(done - counted) / secs;
}

int main(void)
{
	struct bench_daemon d;

	bench_prog = "bench-call";
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	memset(payload, 'a', MSG_LEN);
	char *corrald = bench_path("CORRALD", "../daemon/corrald");
	char *hello = bench_path("BENCH_HELLO", "bench-hello");

	bench_daemon_start(&d, corrald, config, 4096);
	/* Wait for the four warm echo workers. */
	{
		struct bench_conn c;
		if (bench_connect(&c, d.sock) < 0)
			bench_die("connect: %s", strerror(errno));
		for (int i = 0;; i++) {
			json_t *r = bench_request(&c, false, "\"cmd\":\"types\"");
			json_t *ty = json_array_get(json_object_get(r, "types"), 0);
			json_int_t w = json_integer_value(json_object_get(ty, "workers"));
			json_decref(r);
			if (w >= 4)
				break;
			if (i > 5000)
				bench_die("the 4 echo workers never came up");
			bench_sleep_ms(1);
		}
		bench_conn_close(&c);
	}

	const char *only = getenv("BENCH_CALL_TPUT_ONLY");
	if (only) {
		int n = atoi(only);
		double secs = getenv("BENCH_CALL_TPUT_S") ? atof(getenv("BENCH_CALL_TPUT_S")) : 0;
		if (n < 1 || n > MAX_CLIENTS)
			bench_die("BENCH_CALL_TPUT_ONLY: 1..%d clients", MAX_CLIENTS);
		tput_s = secs > 0 ? secs : TPUT_S;
		bench_log("corrald pid %d", (int)d.pid);
		printf("BENCH calls_per_s_%d_clients %.0f calls/s\n", n, throughput(&d, n));
		bench_daemon_stop(&d, 20000);
		free(corrald);
		free(hello);
		return 0;
	}
	bench_rtt(&d);

	static const int nclients[] = {1, 4, 16};
	double raw16 = 0;
	for (size_t i = 0; i < sizeof(nclients) / sizeof(nclients[0]); i++) {
		bench_log("throughput, %d clients x %d in flight, %.1f s", nclients[i], DEPTH,
			  TPUT_S);
		double rate = throughput(&d, nclients[i]);
		if (nclients[i] == 16)
			raw16 = rate;
		printf("BENCH calls_per_s_%d_clients %.0f calls/s\n", nclients[i], rate);
		fflush(stdout);
		if (nclients[i] == MAX_CLIENTS) {
			double relay = relay_pipelined(MAX_CLIENTS);
			printf("BENCH relay_pipelined_msgs_per_s %.0f msgs/s\n", relay);
			printf("RATIO calls_per_s_vs_relay_pipelined %.3f\n", rate / relay);
			/* One worker per CPU, as one would configure a 2-CPU machine. */
			tput_type = "echo2";
			printf("BENCH calls_per_s_16_clients_2_workers %.0f calls/s\n",
			       throughput(&d, MAX_CLIENTS));
			tput_type = "echo";
		}
	}

	bench_log("throughput, libcorral, 16 threads on one connection, %.1f s", TPUT_S);
	double lib16 = lib_throughput(&d, 16);
	printf("BENCH lib_calls_per_s_16_threads %.0f calls/s\n", lib16);
	/* 16 calls in flight through the library against 16 x 32 on raw sockets. */
	printf("RATIO lib_16_threads_vs_raw_16_clients_calls_per_s %.3f\n", lib16 / raw16);
	fflush(stdout);

	if (getenv("BENCH_CALL_ONLY_LIB")) {
		bench_daemon_stop(&d, 20000);
		return 0;
	}
	spawn_ready(&d, "sp", hello);
	spawn_ready(&d, "spsb", NULL);
	time_to_100(&d);
	call_cold(&d);

	bench_daemon_stop(&d, 20000);
	free(corrald);
	free(hello);
	return 0;
}
