/*
 * bench/ring.c - bench-ring: the memfd ring against a SOCK_SEQPACKET and a
 * SOCK_STREAM socketpair, a pipe and memcpy, all measured in the same run
 * between two processes (fork).  Prints "BENCH <name> <value> <unit>" and
 * "RATIO <name> <value>" lines.
 *
 * The ring runs the real doorbell protocol of ring.h over a SEQPACKET
 * socketpair: the consumer drains everything before it sleeps, the producer
 * rings only when the consumer's flag is set.  "ring_spin" spins up to
 * SPIN_NS on an empty ring before taking the sleep path.
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

enum kind { K_RING, K_SEQPACKET, K_STREAM, K_PIPE };

static const char *const kind_names[] = {"ring", "seqpacket", "socketpair", "pipe"};

/* One side's end of a channel. */
struct chan {
	enum kind kind;
	int rfd, wfd;		/* sockets/pipes; ring: rfd = wfd = doorbell socket */
	struct ring_area area;	/* ring */
	long spin_ns;		/* ring: spin this long on empty before sleeping */
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
			if (wr == 0 && ring_producer_prepare_sleep(&c->area.tx))
				wait_bell(c);
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

/* Ring consumer: spin up to spin_ns for data, then the sleep handshake. */
static void ring_wait_data(struct chan *c)
{
	if (c->spin_ns > 0) {
		uint64_t end = now_ns() + (uint64_t)c->spin_ns;
		const void *q;
		size_t n;

		do {
			for (int i = 0; i < 64; i++) {
				if (ring_peek(&c->area.rx, &q, &n) != 0)
					return;
				__builtin_ia32_pause();
			}
			/* If the peer shares our core, let it run rather than burn the slice. */
			sched_yield();
		} while (now_ns() < end);
	}
	/* About to sleep: a producer waiting for room must hear of all we freed. */
	c->freed = 0;
	if (ring_consumer_wake_needed(&c->area.rx))
		bell(c);
	if (ring_consumer_prepare_sleep(&c->area.rx))
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

/* Consumer spin in the throughput runs (BENCH_TPUT_SPIN_NS, default 0: pure doorbells). */
static long tput_spin_ns;
static bool only_tput;

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
		c.spin_ns = tput_spin_ns;
		while (got < total)
			got += chan_recv_some(&c, buf, RBUF);
		chan_send(&c, "k", 1);
		chan_close(&c);
		_exit(0);
	}
	pair_side(&p, 0, &c);
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

struct rtt {
	double p50, p99, cpu_us_per_op;
};

/* Ping-pong: n round trips of size bytes; the child echoes. */
static struct rtt run_rtt(enum kind kind, size_t size, int n, long spin_ns)
{
	struct pair p;
	struct chan c;
	uint8_t *buf = calloc(1, size);
	double *s = malloc(sizeof(double) * (size_t)n);
	double cpu0 = cpu_us();
	struct rtt r;
	pid_t pid;

	pair_open(&p, kind);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pair_side(&p, 1, &c);
		c.spin_ns = spin_ns;
		for (int i = 0; i < n; i++) {
			chan_recv(&c, buf, size);
			chan_send(&c, buf, size);
		}
		chan_close(&c);
		_exit(0);
	}
	pair_side(&p, 0, &c);
	c.spin_ns = spin_ns;
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		buf[0] = (uint8_t)i;
		chan_send(&c, buf, size);
		chan_recv(&c, buf, size);
		s[i] = (double)(now_ns() - t0) / 1e3;
	}
	chan_close(&c);
	reap(pid);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	r.p50 = s[n / 2];
	r.p99 = s[(size_t)n * 99 / 100];
	r.cpu_us_per_op = (cpu_us() - cpu0) / n;
	free(s);
	free(buf);
	return r;
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

int main(void)
{
	const enum kind kinds[] = {K_RING, K_SEQPACKET, K_STREAM, K_PIPE};
	double msgs[4][2], gbps[4][2];
	struct rtt rtt[4][2], spin[2];
	const size_t sizes[2] = {64, 64 * 1024};
	const char *const snames[2] = {"64b", "64k"};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("BENCH_TPUT_SPIN_NS") != NULL)
		tput_spin_ns = atol(getenv("BENCH_TPUT_SPIN_NS"));
	if (getenv("BENCH_ONLY_TPUT") != NULL)
		only_tput = true;
	for (int k = 0; k < 4; k++) {
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
	double mc = run_memcpy(64 * 1024, 100000);

	printf("BENCH memcpy_64k_throughput %.3f GB/s\n", mc);
	if (only_tput)
		return 0;

	for (int k = 0; k < 4; k++) {
		for (int si = 0; si < 2; si++) {
			rtt[k][si] = run_rtt(kinds[k], sizes[si], si == 0 ? 10000 : 5000, 0);
			printf("BENCH %s_%s_rtt_p50 %.2f us\n", kind_names[k], snames[si],
			       rtt[k][si].p50);
			printf("BENCH %s_%s_rtt_p99 %.2f us\n", kind_names[k], snames[si],
			       rtt[k][si].p99);
			printf("BENCH %s_%s_rtt_cpu_us_per_op %.2f us\n", kind_names[k], snames[si],
			       rtt[k][si].cpu_us_per_op);
		}
	}
	for (int si = 0; si < 2; si++) {
		spin[si] = run_rtt(K_RING, sizes[si], si == 0 ? 100000 : 10000, SPIN_NS);
		printf("BENCH ring_spin_%s_rtt_p50 %.2f us\n", snames[si], spin[si].p50);
		printf("BENCH ring_spin_%s_rtt_p99 %.2f us\n", snames[si], spin[si].p99);
		printf("BENCH ring_spin_%s_rtt_cpu_us_per_op %.2f us\n", snames[si],
		       spin[si].cpu_us_per_op);
	}
	printf("BENCH ring_spin_limit %.1f us\n", SPIN_NS / 1e3);

	printf("RATIO ring_vs_socketpair_64k_throughput %.2f\n", gbps[0][1] / gbps[2][1]);
	printf("RATIO ring_vs_seqpacket_64k_throughput %.2f\n", gbps[0][1] / gbps[1][1]);
	printf("RATIO ring_vs_pipe_64k_throughput %.2f\n", gbps[0][1] / gbps[3][1]);
	printf("RATIO ring_vs_memcpy_64k_throughput %.2f\n", gbps[0][1] / mc);
	printf("RATIO ring_vs_socketpair_64b_msgs %.2f\n", msgs[0][0] / msgs[2][0]);
	printf("RATIO ring_vs_seqpacket_64b_msgs %.2f\n", msgs[0][0] / msgs[1][0]);
	printf("RATIO ring_vs_socketpair_64b_rtt %.3f\n", spin[0].p50 / rtt[2][0].p50);
	printf("RATIO ring_nospin_vs_socketpair_64b_rtt %.3f\n", rtt[0][0].p50 / rtt[2][0].p50);
	printf("RATIO ring_vs_socketpair_64k_rtt %.3f\n", spin[1].p50 / rtt[2][1].p50);
	printf("RATIO ring_nospin_vs_socketpair_64k_rtt %.3f\n", rtt[0][1].p50 / rtt[2][1].p50);
	return 0;
}
