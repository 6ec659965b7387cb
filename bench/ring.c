/*
 * bench/ring.c - bench-ring: the memfd ring against a SOCK_SEQPACKET and a
 * SOCK_STREAM socketpair, a pipe and memcpy, all measured in the same run
 * between two processes (fork).  Prints "BENCH <name> <value> <unit>" and
 * "RATIO <name> <value>" lines.
 *
 * The ring runs the real sleep/wake protocol of ring.h: the consumer drains
 * everything before it sleeps, the producer wakes it only when its flag is
 * set.  Variants of the 64 B / 64 KiB round trip:
 *   ring_doorbell  sleeps on the SEQPACKET socket, woken by MSG_DOORBELL
 *                  frames, no spin (what a worker does without spinning)
 *   ring_futex     sleeps on the futex flag, woken by FUTEX_WAKE, no spin
 *   ring           futex, after an adaptive spin (struct ring_spin: bounded
 *                  by the measured wake cost, off while the peer shares our
 *                  CPU, shrinking when spins do not pay): the headline
 *   ring_spin20    doorbells after a fixed 20 us spin (the old worker policy)
 * Each also pinned: "_samecpu" (both on one CPU) and "_splitcpu" (one each),
 * against the socketpair pinned alike.  BENCH_RING_ONLY_RTT=1 skips the
 * throughput runs; BENCH_ONLY_TPUT=1 the round trips.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "ring.h"

#define RING_CAP (1u << 20)
#define SPIN_NS	 20000
#define RBUF	 (64u * 1024)

/* How a ring side waits on an empty or full ring. */
enum wait_mode {
	W_DOORBELL, /* socket doorbells, no spin */
	W_FUTEX,    /* futex, no spin */
	W_ADAPTIVE, /* futex after an adaptive spin */
	W_SPIN20,   /* socket doorbells after a fixed SPIN_NS spin */
};

enum kind { K_RING, K_SEQPACKET, K_STREAM, K_PIPE };

static const char *const kind_names[] = {"ring", "seqpacket", "socketpair", "pipe"};

/* One side's end of a channel. */
struct chan {
	enum kind kind;
	int rfd, wfd;		/* sockets/pipes; ring: rfd = wfd = doorbell socket */
	struct ring_area area;	/* ring */
	enum wait_mode mode;	/* ring */
	long spin_ns;		/* ring: spin this long on empty before sleeping */
	struct ring_spin spin;	/* ring, W_ADAPTIVE */
	uint64_t sleeps, bells; /* ring: times we slept, doorbells we sent */
	bool eof;		/* ring: the doorbell socket saw EOF */
	size_t freed;  /* ring consumer: bytes freed since we last looked at the producer */
	size_t unrung; /* ring producer: bytes published since the consumer last heard */
	bool owed;     /* ring producer: the consumer sleeps and has not been rung yet */
};

/* Everything needed before fork. */
struct pair {
	enum kind kind;
	int fds[4];
	int memfd;
	struct ring_area area;
};

/* Monotonic clock in ns. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Abort the benchmark with a message. */
static void die(const char *what)
{
	fprintf(stderr, "bench-ring: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Create the channel's fds (and ring) before fork. */
static void pair_open(struct pair *p, enum kind kind)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->memfd = -1;
	switch (kind) {
	case K_RING: {
		int ret = ring_area_create(RING_CAP, RING_CAP, &p->memfd, &p->area);

		if (ret < 0) {
			errno = -ret;
			die("ring_area_create");
		}
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->fds) < 0)
			die("socketpair");
		break;
	}
	case K_SEQPACKET:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->fds) < 0)
			die("socketpair");
		break;
	case K_STREAM:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->fds) < 0)
			die("socketpair");
		break;
	case K_PIPE:
		if (pipe2(p->fds, O_CLOEXEC) < 0 || pipe2(p->fds + 2, O_CLOEXEC) < 0)
			die("pipe");
		break;
	}
}

/* This side's channel after fork; parent is side 0 (the daemon for the ring). */
static void pair_side(struct pair *p, int side, struct chan *c)
{
	memset(c, 0, sizeof(*c));
	c->kind = p->kind;
	if (p->kind == K_PIPE) {
		/* fds[0..1]: parent -> child; fds[2..3]: child -> parent. */
		c->wfd = side == 0 ? p->fds[1] : p->fds[3];
		c->rfd = side == 0 ? p->fds[2] : p->fds[0];
		close(side == 0 ? p->fds[0] : p->fds[1]);
		close(side == 0 ? p->fds[3] : p->fds[2]);
		return;
	}
	c->rfd = c->wfd = p->fds[side];
	close(p->fds[!side]);
	if (p->kind != K_RING)
		return;
	if (side == 0) {
		c->area = p->area;
	} else {
		ring_area_detach(&p->area); /* the worker maps its own, as in corral */
		if (ring_area_attach(p->memfd, &c->area) < 0)
			die("ring_area_attach");
	}
	close(p->memfd);
}

/* Release this side's channel. */
static void chan_close(struct chan *c)
{
	if (c->kind == K_RING)
		ring_area_detach(&c->area);
	close(c->rfd);
	if (c->wfd != c->rfd)
		close(c->wfd);
}

/* Ring a doorbell; a full socket already holds doorbells, which is as good. */
static void bell(struct chan *c)
{
	int ret = frame_send(c->wfd, MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0);

	if (ret < 0 && ret != -EAGAIN) {
		errno = -ret;
		die("doorbell");
	}
	c->bells++;
}

/* Sleep until a doorbell arrives, then drain every queued one. */
static void wait_bell(struct chan *c)
{
	struct pollfd pfd = {.fd = c->rfd, .events = POLLIN};
	struct frame f;
	int ret;

	if (c->eof) {
		fprintf(stderr, "bench-ring: peer gone\n");
		exit(1);
	}
	/* Before we block: a sleeping consumer must hear of what we published. */
	if (c->owed) {
		c->owed = false;
		c->unrung = 0;
		bell(c);
	}
	c->sleeps++;
	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR)
			die("poll");
	while ((ret = frame_recv(c->rfd, &f)) == 1)
		;
	if (ret == 0)
		c->eof = true; /* look at the ring once more; sleeping again dies */
}

static void ring_wait_room(struct chan *c);

/* Send len bytes; blocks (by the doorbell protocol for the ring) until all are taken. */
static void chan_send(struct chan *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t off = 0;

	while (off < len) {
		if (c->kind == K_RING) {
			size_t wr;

			if (ring_write(&c->area.tx, p + off, len - off, &wr) < 0)
				die("ring_write: corrupt");
			off += wr;
			/* Hysteresis: a sleeping consumer is rung once a quarter of the ring
			 * is filled, or before we block (wait_bell), not per record. */
			if (wr > 0 && ring_producer_wake_needed(&c->area.tx))
				c->owed = true;
			c->unrung += wr;
			if (c->owed && c->unrung >= RING_CAP / 4) {
				c->owed = false;
				c->unrung = 0;
				bell(c);
			}
			if (wr == 0)
				ring_wait_room(c);
			continue;
		}
		ssize_t n = write(c->wfd, p + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		off += (size_t)n;
	}
}

/* Spin up to ns for ready() to hold; true when it did. */
static bool spin_for(uint64_t ns, bool (*ready)(struct chan *), struct chan *c)
{
	uint64_t end = now_ns() + ns;

	do {
		for (int i = 0; i < 64; i++) {
			if (ready(c))
				return true;
			__builtin_ia32_pause();
		}
	} while (now_ns() < end);
	return false;
}

/* The ring has a record for us. */
static bool has_data(struct chan *c)
{
	const void *q;
	size_t n;

	return ring_peek(&c->area.rx, &q, &n) != 0;
}

/* Our tx ring has room for a 64 B record again. */
static bool has_room(struct chan *c)
{
	size_t n;

	if (ring_reserve(&c->area.tx, 64, &n) == NULL && errno != EPROTO)
		return false;
	return true;
}

/* Pay a doorbell we deferred: spinning while the peer sleeps for it only wastes time. */
static void pay_owed(struct chan *c)
{
	if (c->owed) {
		c->owed = false;
		c->unrung = 0;
		bell(c);
	}
}

/* Spin by the channel's policy; true when the ring moved. */
static bool chan_spin(struct chan *c, bool consumer, bool (*ready)(struct chan *))
{
	if (c->mode == W_SPIN20)
		return spin_for((uint64_t)c->spin_ns, ready, c);
	if (c->mode != W_ADAPTIVE)
		return false;
	uint64_t ns = ring_spin_budget(&c->spin, consumer ? &c->area.rx : &c->area.tx, consumer);
	if (ns == 0)
		return false;
	bool hit = spin_for(ns, ready, c);
	ring_spin_done(&c->spin, hit);
	return hit;
}

/* Sleep on the futex flag announced by a prepare_sleep_how(). */
static void futex_sleep(struct chan *c, bool consumer)
{
	struct ring *r = consumer ? &c->area.rx : &c->area.tx;
	int ret = consumer ? ring_consumer_futex_wait(r, 1000) : ring_producer_futex_wait(r, 1000);

	if (ret == -ETIMEDOUT) {
		/* Safety bound only: a peer that died never wakes us. */
		if (consumer)
			ring_consumer_cancel_sleep(r);
		else
			ring_producer_cancel_sleep(r);
		if (kill(getppid(), 0) < 0 && errno == ESRCH) {
			fprintf(stderr, "bench-ring: peer gone\n");
			exit(1);
		}
		return;
	}
	c->sleeps++;
	if (c->mode == W_ADAPTIVE)
		ring_spin_woken(&c->spin, r, consumer);
}

/* Ring producer, ring full: spin by policy, then the sleep handshake. */
static void ring_wait_room(struct chan *c)
{
	bool futex = c->mode == W_FUTEX || c->mode == W_ADAPTIVE;

	pay_owed(c);
	if (chan_spin(c, false, has_room))
		return;
	if (!ring_producer_prepare_sleep_how(&c->area.tx,
					     futex ? RING_SLEEP_FUTEX : RING_SLEEP_DOORBELL))
		return;
	if (futex)
		futex_sleep(c, false);
	else
		wait_bell(c);
}

/* Ring consumer: spin by policy for data, then the sleep handshake. */
static void ring_wait_data(struct chan *c)
{
	bool futex = c->mode == W_FUTEX || c->mode == W_ADAPTIVE;

	pay_owed(c);
	if (chan_spin(c, true, has_data))
		return;
	/* About to sleep: a producer waiting for room must hear of all we freed. */
	c->freed = 0;
	if (ring_consumer_wake_needed(&c->area.rx))
		bell(c);
	if (!ring_consumer_prepare_sleep_how(&c->area.rx,
					     futex ? RING_SLEEP_FUTEX : RING_SLEEP_DOORBELL))
		return;
	if (futex)
		futex_sleep(c, true);
	else
		wait_bell(c);
}

/* Receive between 1 and max bytes (SEQPACKET: one message). */
static size_t chan_recv_some(struct chan *c, void *buf, size_t max)
{
	for (;;) {
		if (c->kind == K_RING) {
			long n = ring_read(&c->area.rx, buf, max);

			if (n < 0)
				die("ring_read: corrupt");
			if (n > 0) {
				/* Hysteresis: wake a producer waiting for room once a quarter
				 * of the ring is free (or before we sleep), not per record. */
				c->freed += (size_t)n;
				if (c->freed >= RING_CAP / 4) {
					c->freed = 0;
					if (ring_consumer_wake_needed(&c->area.rx))
						bell(c);
				}
				return (size_t)n;
			}
			ring_wait_data(c);
			continue;
		}
		ssize_t n = read(c->rfd, buf, max);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read");
		return (size_t)n;
	}
}

/* Receive exactly len bytes. */
static void chan_recv(struct chan *c, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len)
		got += chan_recv_some(c, (uint8_t *)buf + got, len - got);
}

/* CPU time (user + sys) of self and of reaped children, in µs. */
static double cpu_us(void)
{
	struct rusage a, b;

	getrusage(RUSAGE_SELF, &a);
	getrusage(RUSAGE_CHILDREN, &b);
	return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec +
			b.ru_stime.tv_sec) *
		   1e6 +
	       (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
			b.ru_stime.tv_usec);
}

/* Wait for the child; it must exit 0. */
static void reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench-ring: child failed\n");
		exit(1);
	}
}

/* How the ring waits in the throughput runs (BENCH_TPUT_MODE: doorbell, futex, adaptive). */
static enum wait_mode tput_mode = W_ADAPTIVE;
static bool only_tput, only_rtt;

/* Set up this side's ring waiting policy. */
static void chan_mode(struct chan *c, enum wait_mode mode)
{
	c->mode = mode;
	c->spin_ns = mode == W_SPIN20 ? SPIN_NS : 0;
	ring_spin_init(&c->spin);
}

/* Throughput: count messages of size bytes one way; returns seconds. */
static double run_throughput(enum kind kind, size_t size, uint64_t count)
{
	struct pair p;
	struct chan c;
	uint8_t *buf = malloc(RING_CAP + RBUF);
	uint64_t total = count * size, t0;
	char ack = 0;
	pid_t pid;

	memset(buf, 0x5a, RING_CAP + RBUF);
	pair_open(&p, kind);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		uint64_t got = 0;

		pair_side(&p, 1, &c);
		chan_mode(&c, tput_mode);
		while (got < total)
			got += chan_recv_some(&c, buf, RBUF);
		chan_send(&c, "k", 1);
		chan_close(&c);
		_exit(0);
	}
	pair_side(&p, 0, &c);
	chan_mode(&c, tput_mode);
	t0 = now_ns();
	for (uint64_t i = 0; i < count; i++)
		chan_send(&c, buf + (i * 4160) % RING_CAP, size);
	chan_recv(&c, &ack, 1);
	double secs = (double)(now_ns() - t0) / 1e9;

	chan_close(&c);
	reap(pid);
	free(buf);
	return secs;
}

/* Compare two doubles for qsort. */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Where the two sides of a round trip run. */
enum place { P_FREE, P_SAME, P_SPLIT };

static const char *const place_names[] = {"", "_samecpu", "_splitcpu"};

/* The first two CPUs we may run on (cpu[1] = -1 when only one). */
static int cpus[2] = {-1, -1};

/* Pin the calling process to one CPU. */
static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		die("sched_setaffinity");
}

/* Samples of one round-trip configuration. */
struct rtt {
	double *s;
	int n;
	double cpu_us;
	uint64_t sleeps, spins, hits, shared, wake_ns;
};

/* Ping-pong: n round trips of size bytes appended to r; the child echoes. */
static void run_rtt(struct rtt *r, enum kind kind, enum wait_mode mode, enum place place,
		    size_t size, int n)
{
	struct pair p;
	struct chan c;
	uint8_t *buf = calloc(1, size);
	double cpu0 = cpu_us();
	cpu_set_t old;
	pid_t pid;

	if (sched_getaffinity(0, sizeof(old), &old) < 0)
		die("sched_getaffinity");
	pair_open(&p, kind);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (place != P_FREE)
			pin(place == P_SAME ? cpus[0] : cpus[1]);
		pair_side(&p, 1, &c);
		chan_mode(&c, mode);
		for (int i = 0; i < n; i++) {
			chan_recv(&c, buf, size);
			chan_send(&c, buf, size);
		}
		chan_close(&c);
		_exit(0);
	}
	if (place != P_FREE)
		pin(cpus[0]);
	pair_side(&p, 0, &c);
	chan_mode(&c, mode);
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		buf[0] = (uint8_t)i;
		chan_send(&c, buf, size);
		chan_recv(&c, buf, size);
		r->s[r->n++] = (double)(now_ns() - t0) / 1e3;
	}
	r->sleeps += c.sleeps;
	r->spins += c.spin.spins;
	r->hits += c.spin.spin_hits;
	r->shared += c.spin.shared_cpu;
	r->wake_ns = c.spin.wake_ns;
	chan_close(&c);
	reap(pid);
	if (sched_setaffinity(0, sizeof(old), &old) < 0)
		die("sched_setaffinity");
	r->cpu_us += cpu_us() - cpu0;
	free(buf);
}

/* Single-thread memcpy of 64 KiB blocks from a 1 MiB source; GB/s. */
static double run_memcpy(size_t size, uint64_t count)
{
	uint8_t *src = malloc(RING_CAP + size), *dst = malloc(RING_CAP + size);
	uint64_t t0;

	memset(src, 1, RING_CAP + size);
	memset(dst, 2, RING_CAP + size);
	t0 = now_ns();
	for (uint64_t i = 0; i < count; i++) {
		size_t off = (i * 4160) % RING_CAP;

		memcpy(dst + off, src + off, size);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	double secs = (double)(now_ns() - t0) / 1e9;

	free(src);
	free(dst);
	return (double)(size * count) / secs / 1e9;
}

/* One measured configuration of the round-trip table. */
struct config {
	const char *name;
	enum kind kind;
	enum wait_mode mode;
};

static const struct config configs[] = {
    {"socketpair", K_STREAM, W_DOORBELL}, {"seqpacket", K_SEQPACKET, W_DOORBELL},
    {"pipe", K_PIPE, W_DOORBELL},	  {"ring", K_RING, W_ADAPTIVE},
    {"ring_futex", K_RING, W_FUTEX},	  {"ring_doorbell", K_RING, W_DOORBELL},
    {"ring_spin20", K_RING, W_SPIN20},
};
#define NCONFIGS   (sizeof(configs) / sizeof(configs[0]))
#define RTT_ROUNDS 10

/* The p50 of a sample set (sorts it). */
static double p50_of(struct rtt *r)
{
	qsort(r->s, (size_t)r->n, sizeof(double), cmp_double);
	return r->s[r->n / 2];
}

/*
 * Every configuration at one size and placement, alternating in rounds so that
 * load drifting on a shared machine hits all alike; prints BENCH lines and
 * returns the p50s (index as configs).
 */
static void rtt_table(size_t size, const char *sname, enum place place, int n, double *p50)
{
	struct rtt r[NCONFIGS];

	for (size_t k = 0; k < NCONFIGS; k++)
		r[k] = (struct rtt){.s = malloc(sizeof(double) * (size_t)n)};
	for (int round = 0; round < RTT_ROUNDS; round++)
		for (size_t k = 0; k < NCONFIGS; k++)
			run_rtt(&r[k], configs[k].kind, configs[k].mode, place, size,
				n / RTT_ROUNDS);
	for (size_t k = 0; k < NCONFIGS; k++) {
		const char *nm = configs[k].name, *pl = place_names[place];

		p50[k] = p50_of(&r[k]);
		printf("BENCH %s_%s%s_rtt_p50 %.2f us\n", nm, sname, pl, p50[k]);
		printf("BENCH %s_%s%s_rtt_p99 %.2f us\n", nm, sname, pl,
		       r[k].s[(size_t)r[k].n * 99 / 100]);
		printf("BENCH %s_%s%s_rtt_cpu_us_per_op %.2f us\n", nm, sname, pl,
		       r[k].cpu_us / r[k].n);
		if (configs[k].mode == W_ADAPTIVE)
			fprintf(stderr,
				"bench-ring: %s %s%s: %llu sleeps, %llu spins (%llu paid), %llu "
				"skipped for a shared CPU, wake cost %.1f us\n",
				nm, sname, pl, (unsigned long long)r[k].sleeps,
				(unsigned long long)r[k].spins, (unsigned long long)r[k].hits,
				(unsigned long long)r[k].shared, (double)r[k].wake_ns / 1e3);
		free(r[k].s);
	}
}

int main(void)
{
	const enum kind kinds[] = {K_RING, K_SEQPACKET, K_STREAM, K_PIPE};
	double msgs[4][2], gbps[4][2];
	const size_t sizes[2] = {64, 64 * 1024};
	const char *const snames[2] = {"64b", "64k"};
	const char *tm = getenv("BENCH_TPUT_MODE");
	cpu_set_t set;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (tm && strcmp(tm, "doorbell") == 0)
		tput_mode = W_DOORBELL;
	else if (tm && strcmp(tm, "futex") == 0)
		tput_mode = W_FUTEX;
	only_tput = getenv("BENCH_ONLY_TPUT") != NULL;
	only_rtt = getenv("BENCH_RING_ONLY_RTT") != NULL;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		die("sched_getaffinity");
	for (int i = 0, k = 0; i < CPU_SETSIZE && k < 2; i++)
		if (CPU_ISSET(i, &set))
			cpus[k++] = i;

	for (int k = 0; k < 4 && !only_rtt; k++) {
		for (int si = 0; si < 2; si++) {
			size_t size = sizes[si];
			uint64_t count;

			if (si == 0)
				count = kinds[k] == K_RING ? 20000000 : 1000000;
			else
				count = kinds[k] == K_RING ? 60000 : 30000;
			double secs = run_throughput(kinds[k], size, count);

			msgs[k][si] = (double)count / secs;
			gbps[k][si] = (double)count * (double)size / secs / 1e9;
			printf("BENCH %s_%s_msgs %.0f msg/s\n", kind_names[k], snames[si],
			       msgs[k][si]);
			printf("BENCH %s_%s_throughput %.3f GB/s\n", kind_names[k], snames[si],
			       gbps[k][si]);
		}
	}
	if (!only_rtt) {
		double mc = run_memcpy(64 * 1024, 100000);

		printf("BENCH memcpy_64k_throughput %.3f GB/s\n", mc);
		printf("RATIO ring_vs_socketpair_64k_throughput %.2f\n", gbps[0][1] / gbps[2][1]);
		printf("RATIO ring_vs_seqpacket_64k_throughput %.2f\n", gbps[0][1] / gbps[1][1]);
		printf("RATIO ring_vs_pipe_64k_throughput %.2f\n", gbps[0][1] / gbps[3][1]);
		printf("RATIO ring_vs_memcpy_64k_throughput %.2f\n", gbps[0][1] / mc);
		printf("RATIO ring_vs_socketpair_64b_msgs %.2f\n", msgs[0][0] / msgs[2][0]);
		printf("RATIO ring_vs_seqpacket_64b_msgs %.2f\n", msgs[0][0] / msgs[1][0]);
	}
	if (only_tput)
		return 0;

	for (int pl = P_FREE; pl <= P_SPLIT; pl++) {
		if (pl == P_SPLIT && cpus[1] < 0)
			continue;
		for (int si = 0; si < 2; si++) {
			double p50[NCONFIGS];
			const char *pn = place_names[pl];

			rtt_table(sizes[si], snames[si], (enum place)pl, si == 0 ? 20000 : 4000,
				  p50);
			/* configs[0] is the socketpair, [3] the ring as it runs by default. */
			printf("RATIO ring_vs_socketpair_%s%s_rtt %.3f\n", snames[si], pn,
			       p50[3] / p50[0]);
			printf("RATIO ring_futex_vs_socketpair_%s%s_rtt %.3f\n", snames[si], pn,
			       p50[4] / p50[0]);
			printf("RATIO ring_doorbell_vs_socketpair_%s%s_rtt %.3f\n", snames[si], pn,
			       p50[5] / p50[0]);
			printf("RATIO ring_spin20_vs_socketpair_%s%s_rtt %.3f\n", snames[si], pn,
			       p50[6] / p50[0]);
		}
	}
	printf("BENCH ring_spin_limit %.1f us\n", RING_SPIN_MAX_NS / 1e3);
	return 0;
}
