/*
 * test_ring.c - the memfd ring: empty, full, wrap-around at every alignment,
 * chunked streams, a two-process 1 GiB stream with doorbells, futex sleeps and
 * the adaptive spin policy, and every kind of corruption a hostile peer can
 * cause.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdcount.h"
#include "frame.h"
#include "ring.h"

#define CAP 4096u

static struct ring_area d, w; /* daemon and worker view of one memfd */
static int ring_fd = -1;
static int fds_before;

/* Daemon creates a CAP/CAP area, worker attaches it (same process, two mappings). */
static void setup(void)
{
	fds_before = fd_count();
	ck_assert_int_eq(ring_area_create(CAP, CAP, &ring_fd, &d), 0);
	ck_assert_int_eq(ring_area_attach(ring_fd, &w), 0);
}

/* Detach both views and close the memfd; nothing leaks. */
static void teardown(void)
{
	ring_area_detach(&d);
	ring_area_detach(&w);
	ring_area_detach(&w);
	close(ring_fd);
	ck_assert_int_eq(fd_count(), fds_before);
}

/* The shared control block of ring i. */
static struct ring_ctl *ctl(int i)
{
	return (struct ring_ctl *)((uint8_t *)d.base + RING_CTL_OFFSET(i));
}

/* Byte i of the deterministic test stream. */
static uint8_t pat(uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13);
}

/* True when p[0..n) is the test stream from position pos (no per-byte ck_assert: slow). */
static bool pat_ok(const uint8_t *p, size_t n, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(pos + i))
			return false;
	return true;
}

/*
 * Assertions for the hot loops.  A passing ck_assert_* still sends check a
 * location message (a malloc and a pipe write each): hundreds of thousands per
 * test made the wrap tests take seconds on a loaded machine, and under ASan
 * every freed message sits in the quarantine that LeakSanitizer walks at each
 * test's exit.  These fail exactly as ck_assert_* does, and cost nothing when
 * they pass.
 */
#define HOT_ASSERT(expr)                                                                           \
	do {                                                                                       \
		if (!(expr))                                                                       \
			ck_abort_msg("Assertion '%s' failed", #expr);                              \
	} while (0)
#define HOT_ASSERT_INT(x, op, y)                                                                   \
	do {                                                                                       \
		intmax_t hot_x_ = (x), hot_y_ = (y);                                               \
		if (!(hot_x_ op hot_y_))                                                           \
			ck_abort_msg("Assertion '%s' failed: %s == %jd, %s == %jd",                \
				     #x " " #op " " #y, #x, hot_x_, #y, hot_y_);                   \
	} while (0)
#define HOT_ASSERT_UINT(x, op, y)                                                                  \
	do {                                                                                       \
		uintmax_t hot_x_ = (x), hot_y_ = (y);                                              \
		if (!(hot_x_ op hot_y_))                                                           \
			ck_abort_msg("Assertion '%s' failed: %s == %ju, %s == %ju",                \
				     #x " " #op " " #y, #x, hot_x_, #y, hot_y_);                   \
	} while (0)
#define HOT_ASSERT_INT_EQ(x, y)	 HOT_ASSERT_INT(x, ==, y)
#define HOT_ASSERT_INT_GT(x, y)	 HOT_ASSERT_INT(x, >, y)
#define HOT_ASSERT_UINT_EQ(x, y) HOT_ASSERT_UINT(x, ==, y)
#define HOT_ASSERT_UINT_GE(x, y) HOT_ASSERT_UINT(x, >=, y)
#define HOT_ASSERT_UINT_LE(x, y) HOT_ASSERT_UINT(x, <=, y)

START_TEST(sizes_and_caps)
{
	struct ring_area a;
	int fd;

	ck_assert_uint_eq(ring_area_size(4096, 8192), 4096 + 4096 + 8192);
	ck_assert_uint_eq(ring_area_size(4095, 4096), 0);
	ck_assert_uint_eq(ring_area_size(2048, 4096), 0);
	ck_assert_uint_eq(ring_area_size(4096, 12288), 0);
	ck_assert_uint_eq(ring_area_size(RING_MAX_CAP * 2u, 4096), 0);
	ck_assert_int_eq(ring_area_create(4096, 3, &fd, &a), -EINVAL);
	ck_assert_int_eq(ring_area_create(0, 4096, &fd, &a), -EINVAL);
	/* The created memfd is sealed as documented. */
	ck_assert_int_eq(fcntl(ring_fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	ck_assert(fcntl(ring_fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(ftruncate(ring_fd, 100), -1);
	/* Directions: daemon tx is worker rx. */
	ck_assert_ptr_eq(d.tx.ctl, (uint8_t *)d.base + RING_CTL_OFFSET(0));
	ck_assert_ptr_eq(w.rx.ctl, (uint8_t *)w.base + RING_CTL_OFFSET(0));
	ck_assert_ptr_eq(w.tx.ctl, (uint8_t *)w.base + RING_CTL_OFFSET(1));
	ck_assert_uint_eq(w.rx.cap, CAP);
}
END_TEST

START_TEST(empty_and_doorbell_flags)
{
	const void *p;
	size_t n, wr;
	char buf[16];

	ck_assert_int_eq(ring_peek(&w.rx, &p, &n), 0);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(ring_read(&w.rx, buf, sizeof(buf)), 0);
	ring_consume(&w.rx, 5); /* nothing peeked: no-op */
	ck_assert(!ring_producer_wake_needed(&d.tx));
	ck_assert(ring_consumer_prepare_sleep(&w.rx));
	ck_assert_uint_eq(ctl(0)->cons_waiting, 1);
	ck_assert_int_eq(ring_write(&d.tx, "abc", 3, &wr), 0);
	ck_assert_uint_eq(wr, 3);
	ck_assert(ring_producer_wake_needed(&d.tx));
	ck_assert(!ring_producer_wake_needed(&d.tx));
	ck_assert_uint_eq(ctl(0)->cons_waiting, 0);
	/* Data present: the consumer does not sleep and leaves no flag. */
	ck_assert(!ring_consumer_prepare_sleep(&w.rx));
	ck_assert_int_eq(ring_peek(&w.rx, &p, &n), 1);
	ck_assert(!ring_consumer_prepare_sleep(&w.rx));
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(p, "abc", 3);
	/* Partial consume keeps the record. */
	ring_consume(&w.rx, 1);
	ck_assert_int_eq(ring_peek(&w.rx, &p, &n), 1);
	ck_assert_uint_eq(n, 2);
	ck_assert_mem_eq(p, "bc", 2);
	ring_consume(&w.rx, 100); /* cut to the record */
	ck_assert_int_eq(ring_peek(&w.rx, &p, &n), 0);
	ck_assert_uint_eq(ctl(0)->tail, 16);
	/* Race: the producer publishes between the consumer's flag and its re-check. */
	ck_assert_int_eq(ring_write(&d.tx, "x", 1, &wr), 0);
	ck_assert(!ring_consumer_prepare_sleep(&w.rx));
	ck_assert_uint_eq(ctl(0)->cons_waiting, 0);
	ck_assert_int_eq(ring_read(&w.rx, buf, sizeof(buf)), 1);
	ck_assert(ring_consumer_prepare_sleep(&w.rx));
	/* The other direction works too. */
	ck_assert_int_eq(ring_write(&w.tx, "back", 4, &wr), 0);
	ck_assert_int_eq(ring_read(&d.rx, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "back", 4);
}
END_TEST

START_TEST(full_and_producer_sleep)
{
	static uint8_t big[2 * CAP];
	size_t wr;
	const void *p;
	size_t n;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = pat(i);
	ck_assert_int_eq(ring_write(&d.tx, big, sizeof(big), &wr), 0);
	ck_assert_uint_eq(wr, CAP - RING_REC_HDR); /* one record fills the ring */
	ck_assert_int_eq(ring_write(&d.tx, big, 1, &wr), 0);
	ck_assert_uint_eq(wr, 0);
	ck_assert_ptr_null(ring_reserve(&d.tx, 10, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert(ring_producer_prepare_sleep(&d.tx));
	ck_assert_uint_eq(ctl(0)->prod_waiting, 1);
	/* Consuming part of the record frees nothing. */
	ck_assert_int_eq(ring_peek(&w.rx, &p, &n), 1);
	ck_assert_uint_eq(n, CAP - RING_REC_HDR);
	ck_assert_mem_eq(p, big, n);
	ring_consume(&w.rx, 100);
	ck_assert_int_eq(ring_write(&d.tx, big, 1, &wr), 0);
	ck_assert_uint_eq(wr, 0);
	ring_consume(&w.rx, CAP);
	ck_assert(ring_consumer_wake_needed(&w.rx));
	ck_assert(!ring_consumer_wake_needed(&w.rx));
	/* Space appeared after the flag: prepare_sleep says retry. */
	ck_assert(ring_producer_prepare_sleep(&d.tx) == false);
	ck_assert_uint_eq(ctl(0)->prod_waiting, 0);
	ck_assert_int_eq(ring_write(&d.tx, big, 100, &wr), 0);
	ck_assert_uint_eq(wr, 100);
}
END_TEST

/*
 * Stream with records of size s: fill until full, drain a varying amount,
 * repeat, checking every byte.  Starting at each offset 0..cap in steps of 8
 * over many rounds exercises wrap-around, PAD, and full at every alignment.
 */
static void stream_check(size_t s, size_t rounds, bool use_reserve)
{
	static uint8_t buf[CAP * 2];
	uint64_t wpos = 0, rpos = 0;

	for (size_t round = 0; round < rounds; round++) {
		/* Produce until full. */
		for (;;) {
			size_t wr = 0;

			if (use_reserve && s > 0) {
				size_t got;
				uint8_t *dst = ring_reserve(&d.tx, s, &got);

				if (dst == NULL)
					break;
				HOT_ASSERT_UINT_GE(got, 1);
				HOT_ASSERT_UINT_LE(got, s);
				for (size_t i = 0; i < got; i++)
					dst[i] = pat(wpos + i);
				ring_commit(&d.tx, got);
				wr = got;
			} else {
				for (size_t i = 0; i < s; i++)
					buf[i] = pat(wpos + i);
				HOT_ASSERT_INT_EQ(ring_write(&d.tx, buf, s, &wr), 0);
				if (s == 0)
					break;
			}
			wpos += wr;
			if (wr < s || wr == 0)
				break;
		}
		HOT_ASSERT_UINT_LE(wpos - rpos, CAP);
		/* Consume a varying part of it. */
		size_t want = round % 3 == 0 ? SIZE_MAX : (round * 37) % (CAP / 2) + 1;

		while (want > 0 && rpos < wpos) {
			if (round & 1) {
				long n = ring_read(&w.rx, buf, want < 61 ? want : 61);

				HOT_ASSERT_INT_GT(n, 0);
				HOT_ASSERT(pat_ok(buf, (size_t)n, rpos));
				rpos += (uint64_t)n;
				want -= (size_t)n < want ? (size_t)n : want;
			} else {
				const void *p;
				size_t n;

				HOT_ASSERT_INT_EQ(ring_peek(&w.rx, &p, &n), 1);
				if (n > want)
					n = want;
				HOT_ASSERT(pat_ok(p, n, rpos));
				ring_consume(&w.rx, n);
				rpos += n;
				want -= n;
			}
		}
		if (want > 0) {
			const void *p;
			size_t n;

			HOT_ASSERT_INT_EQ(ring_peek(&w.rx, &p, &n), 0);
		}
	}
	/* Drain the rest. */
	while (rpos < wpos) {
		long n = ring_read(&w.rx, buf, sizeof(buf));

		HOT_ASSERT_INT_GT(n, 0);
		HOT_ASSERT(pat_ok(buf, (size_t)n, rpos));
		rpos += (uint64_t)n;
	}
	HOT_ASSERT_INT_EQ(ring_read(&w.rx, buf, sizeof(buf)), 0);
	HOT_ASSERT_UINT_EQ(ctl(0)->head, ctl(0)->tail);
}

START_TEST(wrap_every_alignment_write)
{
	stream_check((size_t)_i, 200, false);
}
END_TEST

START_TEST(wrap_every_alignment_reserve)
{
	stream_check((size_t)_i, 200, true);
}
END_TEST

/*
 * One record of every size 1..80 from every start offset: a 9-byte record
 * takes 24 bytes, and gcd(24, CAP) == 8, so 512 shifts visit every offset.
 */
START_TEST(single_record_every_offset)
{
	uint8_t buf[128];

	for (int shift = 0; shift < (int)(CAP / 8); shift++) {
		size_t wr;

		for (size_t s = 1; s <= 80; s++) {
			for (size_t i = 0; i < s; i++)
				buf[i] = (uint8_t)(shift + s + i);
			HOT_ASSERT_INT_EQ(ring_write(&d.tx, buf, s, &wr), 0);
			HOT_ASSERT_UINT_EQ(wr, s);
			memset(buf, 0, sizeof(buf));
			HOT_ASSERT_INT_EQ(ring_read(&w.rx, buf, sizeof(buf)), (long)s);
			bool ok = true;

			for (size_t i = 0; i < s; i++)
				ok &= buf[i] == (uint8_t)(shift + s + i);
			HOT_ASSERT(ok);
		}
		HOT_ASSERT_INT_EQ(ring_write(&d.tx, buf, 9, &wr), 0);
		HOT_ASSERT_INT_EQ(ring_read(&w.rx, buf, sizeof(buf)), 9);
	}
}
END_TEST

START_TEST(pad_at_end)
{
	/* Leave exactly 8 bytes before the end: the next record must PAD and wrap. */
	static uint8_t buf[CAP];
	size_t wr;

	ck_assert_int_eq(ring_write(&d.tx, buf, CAP - 16, &wr), 0); /* record of CAP-8 */
	ck_assert_uint_eq(wr, CAP - 16);
	ck_assert_int_eq(ring_read(&w.rx, buf, CAP), (long)(CAP - 16));
	ck_assert_uint_eq(d.tx.head, CAP - 8);
	ck_assert_int_eq(ring_write(&d.tx, "hello", 5, &wr), 0);
	ck_assert_uint_eq(wr, 5);
	ck_assert_uint_eq(d.tx.head, CAP + 16);
	uint32_t hdr[2];

	memcpy(hdr, (uint8_t *)d.base + RING_HDR_SIZE + CAP - 8, 8);
	ck_assert_uint_eq(hdr[0], 0);
	ck_assert_uint_eq(hdr[1], RING_REC_PAD);
	ck_assert_int_eq(ring_read(&w.rx, buf, CAP), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_uint_eq(ctl(0)->tail, CAP + 16);
}
END_TEST

START_TEST(reserve_commit)
{
	size_t n;
	uint8_t *p = ring_reserve(&d.tx, 100, &n);
	const void *q;

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, 100);
	memcpy(p, "abcdef", 6);
	ring_commit(&d.tx, 6);
	ck_assert_int_eq(ring_peek(&w.rx, &q, &n), 1);
	ck_assert_uint_eq(n, 6);
	ck_assert_mem_eq(q, "abcdef", 6);
	ring_consume(&w.rx, 6);
	/* Commit of 0 publishes nothing; commit past the reservation is cut. */
	p = ring_reserve(&d.tx, 10, &n);
	ring_commit(&d.tx, 0);
	ck_assert_int_eq(ring_peek(&w.rx, &q, &n), 0);
	p = ring_reserve(&d.tx, 10, &n);
	memset(p, 'z', 10);
	ring_commit(&d.tx, 1000);
	ck_assert_int_eq(ring_peek(&w.rx, &q, &n), 1);
	ck_assert_uint_eq(n, 10);
	ring_consume(&w.rx, n);
	ck_assert_ptr_null(ring_reserve(&d.tx, 0, &n));
	/* Huge max: the contiguous room. */
	p = ring_reserve(&d.tx, SIZE_MAX, &n);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(n, CAP - (d.tx.head % CAP) - RING_REC_HDR);
	ring_commit(&d.tx, n);
}
END_TEST

/* A payload far larger than the ring, streamed in chunks, single process. */
START_TEST(chunked_larger_than_ring)
{
	const size_t total = 1u << 20;
	uint8_t *src = malloc(total), *dst = malloc(total);
	size_t sent = 0, got = 0;
	int iters = 0;

	for (size_t i = 0; i < total; i++)
		src[i] = pat(i);
	while (got < total) {
		size_t wr;

		ck_assert_int_eq(ring_write(&d.tx, src + sent, total - sent, &wr), 0);
		sent += wr;
		long n = ring_read(&w.rx, dst + got, 1000 + (size_t)(iters % 3000));

		ck_assert_int_ge(n, 0);
		got += (size_t)n;
		ck_assert_int_lt(++iters, 100000);
	}
	ck_assert_mem_eq(src, dst, total);
	free(src);
	free(dst);
}
END_TEST

/* ---- two processes ---- */

#define XBLOCK	(64u * 1024)
#define XTOTAL	(1ull << 30)
#define XCAP	(1u << 20)
#define SRCSIZE (1u << 20)

/* FNV-style 64-bit hash over whole 8-byte words. */
static uint64_t hash_block(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v;

		memcpy(&v, p + i, 8);
		h = (h ^ v) * 0x100000001b3ull;
	}
	return h;
}

/* Wait for a doorbell frame (or EOF) on sock, draining every queued one. */
static void wait_doorbell(int sock)
{
	struct pollfd pfd = {.fd = sock, .events = POLLIN};
	struct frame f;
	int ret;

	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
	while ((ret = frame_recv(sock, &f)) == 1)
		ck_assert_uint_eq(f.hdr.type, MSG_DOORBELL);
	ck_assert(ret == -EAGAIN || ret == 0);
}

/* Send a doorbell; a full socket already holds one, which is as good. */
static void ring_doorbell(int sock)
{
	int ret = frame_send(sock, MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0);

	ck_assert(ret == 0 || ret == -EAGAIN);
}

/* Child: attach, consume XTOTAL bytes in whole blocks, send the hash back on the ring. */
static int consumer_child(int fd, int sock)
{
	struct ring_area a;
	uint8_t *blk = malloc(XBLOCK);
	uint64_t h = 0xcbf29ce484222325ull, got = 0;
	size_t fill = 0, wr;

	if (ring_area_attach(fd, &a) < 0)
		return 2;
	while (got < XTOTAL) {
		long n = ring_read(&a.rx, blk + fill, XBLOCK - fill);

		if (n < 0)
			return 3;
		if (n > 0) {
			fill += (size_t)n;
			if (fill == XBLOCK) {
				h = hash_block(h, blk, XBLOCK);
				got += XBLOCK;
				fill = 0;
			}
			if (ring_consumer_wake_needed(&a.rx))
				ring_doorbell(sock);
			continue;
		}
		if (ring_consumer_prepare_sleep(&a.rx))
			wait_doorbell(sock);
	}
	if (ring_write(&a.tx, &h, sizeof(h), &wr) < 0 || wr != sizeof(h))
		return 4;
	if (ring_producer_wake_needed(&a.tx))
		ring_doorbell(sock);
	ring_area_detach(&a);
	free(blk);
	return 0;
}

START_TEST(two_process_gigabyte)
{
	struct ring_area a;
	int fd, sv[2], status;
	uint8_t *src = malloc(SRCSIZE);
	uint64_t h = 0xcbf29ce484222325ull, sent = 0, theirs = 0;
	pid_t pid;

	for (size_t i = 0; i < SRCSIZE; i++)
		src[i] = pat(i * 7);
	ck_assert_int_eq(ring_area_create(XCAP, 4096, &fd, &a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(consumer_child(fd, sv[1]));
	}
	close(sv[1]);
	for (uint64_t blkno = 0; sent < XTOTAL; blkno++) {
		const uint8_t *blk = src + (blkno * 4104) % (SRCSIZE - XBLOCK);
		size_t off = 0;

		h = hash_block(h, blk, XBLOCK);
		while (off < XBLOCK) {
			size_t wr;

			ck_assert_int_eq(ring_write(&a.tx, blk + off, XBLOCK - off, &wr), 0);
			off += wr;
			if (ring_producer_wake_needed(&a.tx))
				ring_doorbell(sv[0]);
			if (wr == 0 && ring_producer_prepare_sleep(&a.tx))
				wait_doorbell(sv[0]);
		}
		sent += XBLOCK;
	}
	/* The hash comes back on the other ring. */
	size_t got = 0;

	while (got < sizeof(theirs)) {
		long n = ring_read(&a.rx, (uint8_t *)&theirs + got, sizeof(theirs) - got);

		ck_assert_int_ge(n, 0);
		got += (size_t)n;
		if (n == 0 && ring_consumer_prepare_sleep(&a.rx))
			wait_doorbell(sv[0]);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert(theirs == h);
	ring_area_detach(&a);
	close(fd);
	close(sv[0]);
	free(src);
}
END_TEST

/* ---- corruption: each is detected, nothing crashes, errors stay errors ---- */

/* Put a record header at ring-0 offset off. */
static void put_rec(uint64_t off, uint32_t len, uint32_t type)
{
	uint32_t h[2] = {len, type};

	memcpy((uint8_t *)d.base + RING_HDR_SIZE + off, h, 8);
}

/* Expect every consumer entry point to report -EPROTO. */
static void expect_consumer_eproto(void)
{
	const void *p;
	size_t n;
	char buf[64];

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(ring_peek(&w.rx, &p, &n), -EPROTO);
		ck_assert_int_eq(ring_read(&w.rx, buf, sizeof(buf)), -EPROTO);
	}
	ring_consume(&w.rx, 10);
	ck_assert(!ring_consumer_prepare_sleep(&w.rx));
}

START_TEST(corrupt_head_beyond_cap)
{
	put_rec(0, 8, RING_REC_DATA);
	atomic_store(&ctl(0)->head, CAP + 8);
	expect_consumer_eproto();
	atomic_store(&ctl(0)->head, UINT64_MAX - 7);
	expect_consumer_eproto();
}
END_TEST

START_TEST(corrupt_head_misaligned)
{
	put_rec(0, 1, RING_REC_DATA);
	atomic_store(&ctl(0)->head, 12);
	expect_consumer_eproto();
}
END_TEST

START_TEST(corrupt_head_backwards)
{
	size_t wr;
	char buf[64];

	ck_assert_int_eq(ring_write(&d.tx, "abcdefgh", 8, &wr), 0);
	ck_assert_int_eq(ring_write(&d.tx, "abcdefgh", 8, &wr), 0);
	ck_assert_int_eq(ring_read(&w.rx, buf, 8), 8);
	/* Head went back behind the last head we saw (but not behind our tail). */
	atomic_store(&ctl(0)->head, 16);
	ck_assert_int_eq(ring_read(&w.rx, buf, 8), 8); /* cached: no reload yet */
	expect_consumer_eproto();
	/* Behind our tail. */
	atomic_store(&ctl(0)->head, 0);
	expect_consumer_eproto();
}
END_TEST

START_TEST(corrupt_len_past_end)
{
	/* len larger than what head says is readable. */
	put_rec(0, 9, RING_REC_DATA);
	atomic_store(&ctl(0)->head, 16);
	expect_consumer_eproto();
	put_rec(0, UINT32_MAX, RING_REC_DATA);
	atomic_store(&ctl(0)->head, CAP);
	expect_consumer_eproto();
	put_rec(0, UINT32_MAX, RING_REC_PAD);
	expect_consumer_eproto();
}
END_TEST

START_TEST(corrupt_record_wraps)
{
	size_t wr;
	static char buf[CAP];

	/* Move to offset CAP - 64, then claim a record crossing the end. */
	ck_assert_int_eq(ring_write(&d.tx, buf, CAP - 64 - 8, &wr), 0);
	ck_assert_int_eq(ring_read(&w.rx, buf, CAP), (long)(CAP - 72));
	ck_assert_uint_eq(w.rx.tail, CAP - 64);
	put_rec(CAP - 64, 100, RING_REC_DATA);
	atomic_store(&ctl(0)->head, CAP - 64 + 256);
	expect_consumer_eproto();
}
END_TEST

START_TEST(corrupt_unknown_type)
{
	const uint32_t types[] = {0, 4, 0xffffffffu};

	for (size_t i = 0; i < 3; i++) {
		put_rec(0, 1, types[i]);
		atomic_store(&ctl(0)->head, 16);
		expect_consumer_eproto();
	}
}
END_TEST

/*
 * A FRAME record whose length a hostile peer forged: empty, or past
 * RING_FRAME_MAX (readers copy a frame into a buffer of that size).  The
 * typed peek refuses it like every other reader.
 */
START_TEST(corrupt_frame_len)
{
	const uint32_t lens[] = {0, RING_FRAME_MAX + 1};
	const void *p;
	size_t n;
	uint32_t type;

	for (size_t i = 0; i < 2; i++) {
		put_rec(0, lens[i], RING_REC_FRAME);
		atomic_store(&ctl(0)->head, CAP);
		for (int k = 0; k < 3; k++)
			ck_assert_msg(ring_peek_rec(&w.rx, &type, &p, &n) == -EPROTO, "len %u",
				      lens[i]);
		expect_consumer_eproto();
	}
}
END_TEST

/* FRAME records: whole or nothing, never wrapped, in order with DATA; refused by DATA reads. */
START_TEST(frame_records)
{
	uint8_t rec[64], big[CAP];
	const void *p;
	uint32_t type;
	size_t n, wr;

	memset(rec, 'f', sizeof(rec));
	memset(big, 'd', sizeof(big));
	ck_assert_int_eq(ring_write_frame(&d.tx, rec, 32), 1);
	ck_assert_int_eq(ring_write(&d.tx, "abc", 3, &wr), 0);
	ck_assert_int_eq(ring_write_frame(&d.tx, rec, 40), 1);
	/* A DATA read refuses the frame in front; the typed peek returns it. */
	ck_assert_int_eq(ring_peek(&w.rx, &p, &n), -EPROTO);
	ck_assert_int_eq(ring_read(&w.rx, big, 8), -EPROTO);
	ck_assert_int_eq(ring_peek_rec(&w.rx, &type, &p, &n), 1);
	ck_assert_uint_eq(type, RING_REC_FRAME);
	ck_assert_uint_eq(n, 32);
	ring_consume(&w.rx, n);
	ck_assert_int_eq(ring_peek_rec(&w.rx, &type, &p, &n), 1);
	ck_assert_uint_eq(type, RING_REC_DATA);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(memcmp(p, "abc", 3), 0);
	ring_consume(&w.rx, n);
	ck_assert_int_eq(ring_peek_rec(&w.rx, &type, &p, &n), 1);
	ck_assert_uint_eq(type, RING_REC_FRAME);
	ck_assert_uint_eq(n, 40);
	ring_consume(&w.rx, n);
	ck_assert_int_eq(ring_peek_rec(&w.rx, &type, &p, &n), 0);
	/* Full: nothing written.  Then a frame that does not fit before the end wraps
	 * behind a PAD, never split. */
	ck_assert_int_eq(ring_write(&d.tx, big, CAP - 40, &wr), 0);
	ck_assert_int_eq(ring_write_frame(&d.tx, rec, 64), 0);
	ck_assert_int_eq(ring_read(&w.rx, big, CAP), (long)wr);
	/* Move near the end (the cached tail may split the write): the frame goes to 0. */
	uint64_t to_end = CAP - d.tx.head % CAP;
	ck_assert_int_eq(ring_write(&d.tx, big, to_end - 32 - RING_REC_HDR, &wr), 0);
	ck_assert_int_eq(ring_read(&w.rx, big, CAP), (long)wr);
	ck_assert_uint_lt(CAP - d.tx.head % CAP, 72);
	ck_assert_int_eq(ring_write_frame(&d.tx, rec, 64), 1);
	ck_assert_uint_eq(d.tx.head % CAP, 72);
	ck_assert_int_eq(ring_peek_rec(&w.rx, &type, &p, &n), 1);
	ck_assert_uint_eq(type, RING_REC_FRAME);
	ck_assert_uint_eq(n, 64);
	ck_assert_ptr_eq(p, w.rx.data + RING_REC_HDR);
	ring_consume(&w.rx, n);
	ck_assert_uint_eq(ctl(0)->tail, d.tx.head);
	/* Sizes out of range. */
	ck_assert_int_eq(ring_write_frame(&d.tx, rec, 0), -EMSGSIZE);
	ck_assert_int_eq(ring_write_frame(&d.tx, big, RING_FRAME_MAX + 1), -EMSGSIZE);
	ck_assert_int_ge(ring_producer_room(&d.tx), (long)CAP);
}
END_TEST

START_TEST(corrupt_len_changed_under_reader)
{
	/* The length is copied once: shrinking it after peek changes nothing we do. */
	size_t wr, n;
	const void *p;
	char buf[64];

	ck_assert_int_eq(ring_write(&d.tx, "0123456789", 10, &wr), 0);
	ck_assert_int_eq(ring_peek(&w.rx, &p, &n), 1);
	ring_consume(&w.rx, 4);
	put_rec(0, 2, RING_REC_DATA);
	ck_assert_int_eq(ring_read(&w.rx, buf, sizeof(buf)), 6);
	ck_assert_mem_eq(buf, "456789", 6);
	ck_assert_uint_eq(ctl(0)->tail, 24);
}
END_TEST

START_TEST(pad_chain_bounded)
{
	/* A hostile producer fills the ring with tiny PADs and empty DATA: skipped, bounded. */
	for (uint64_t off = 0; off < CAP; off += 8)
		put_rec(off, 0, off % 16 ? RING_REC_PAD : RING_REC_DATA);
	atomic_store(&ctl(0)->head, CAP);
	const void *p;
	size_t n;

	ck_assert_int_eq(ring_peek(&w.rx, &p, &n), 0);
	ck_assert_uint_eq(ctl(0)->tail, CAP);
}
END_TEST

/* Producer-side checks against a hostile consumer's tail. */
static void fill_ring(void)
{
	static char buf[CAP];
	size_t wr;

	ck_assert_int_eq(ring_write(&d.tx, buf, CAP, &wr), 0);
	ck_assert_uint_eq(wr, CAP - 8);
}

START_TEST(corrupt_tail_ahead_of_head)
{
	size_t wr, n;

	fill_ring();
	atomic_store(&ctl(0)->tail, CAP + 8);
	ck_assert_int_eq(ring_write(&d.tx, "x", 1, &wr), -EPROTO);
	ck_assert_uint_eq(wr, 0);
	ck_assert(!ring_producer_prepare_sleep(&d.tx));
	errno = 0;
	ck_assert_ptr_null(ring_reserve(&d.tx, 1, &n));
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_uint_eq(d.tx.head, CAP);
}
END_TEST

START_TEST(corrupt_tail_misaligned_or_backwards)
{
	size_t wr;

	fill_ring();
	atomic_store(&ctl(0)->tail, 4);
	ck_assert_int_eq(ring_write(&d.tx, "x", 1, &wr), -EPROTO);
	atomic_store(&ctl(0)->tail, CAP); /* legit release of everything */
	ck_assert_int_eq(ring_write(&d.tx, "x", 1, &wr), 0);
	ck_assert_uint_eq(wr, 1);
	do
		ck_assert_int_eq(ring_write(&d.tx, "12345678", 8, &wr), 0);
	while (wr > 0);
	atomic_store(&ctl(0)->tail, 8); /* backwards */
	ck_assert_int_eq(ring_write(&d.tx, "x", 1, &wr), -EPROTO);
	atomic_store(&ctl(0)->tail, UINT64_MAX - 7);
	ck_assert_int_eq(ring_write(&d.tx, "x", 1, &wr), -EPROTO);
}
END_TEST

/* A fresh memfd of size with a header and seals as given. */
static int make_memfd(size_t size, const struct ring_shm_hdr *h, int seals)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	if (h != NULL)
		ck_assert_int_eq(pwrite(fd, h, sizeof(*h), 0), (ssize_t)sizeof(*h));
	if (seals)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

/* Attach to a memfd built from h/size/seals and expect err. */
static void expect_attach(size_t size, struct ring_shm_hdr h, int seals, int err)
{
	struct ring_area a;
	int fd = make_memfd(size, &h, seals);

	ck_assert_int_eq(ring_area_attach(fd, &a), err);
	if (err == 0)
		ring_area_detach(&a);
	close(fd);
}

START_TEST(attach_validation)
{
	const int S = F_SEAL_SHRINK | F_SEAL_GROW;
	struct ring_shm_hdr good = {RING_MAGIC, RING_VERSION, {4096, 8192}}, h;
	size_t size = 4096 + 4096 + 8192;
	struct ring_area a;
	int p[2];

	expect_attach(size, good, S, 0);
	expect_attach(size + 4096, good, S | F_SEAL_SEAL, 0);
	/* Missing seals. */
	expect_attach(size, good, 0, -EPROTO);
	expect_attach(size, good, F_SEAL_SHRINK, -EPROTO);
	expect_attach(size, good, F_SEAL_GROW, -EPROTO);
	/* Too small for what the header claims. */
	expect_attach(size - 8, good, S, -EPROTO);
	expect_attach(100, good, S, -EPROTO);
	expect_attach(0, good, S, -EPROTO);
	/* Bad magic, version, caps. */
	h = good;
	h.magic ^= 1;
	expect_attach(size, h, S, -EPROTO);
	h = good;
	h.version = 2;
	expect_attach(size, h, S, -EPROTO);
	const uint32_t caps[] = {0, 1, 4095, 6144, 2048, RING_MAX_CAP * 2u, UINT32_MAX};

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		h = good;
		h.cap[i & 1] = caps[i];
		expect_attach(size, h, S, -EPROTO);
	}
	/* Caps valid but the file is too small for them. */
	h = good;
	h.cap[1] = RING_MAX_CAP;
	expect_attach(size, h, S, -EPROTO);
	/* Not a memfd. */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(ring_area_attach(p[0], &a), -EPROTO);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(ring_area_attach(-1, &a), -EBADF);
	/* Corrupt indices left in a fresh header. */
	int fd = make_memfd(size, &good, 0);
	uint64_t bad = 13;

	ck_assert_int_eq(pwrite(fd, &bad, 8, RING_CTL_OFFSET(1)), 8);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, S), 0);
	ck_assert_int_eq(ring_area_attach(fd, &a), -EPROTO);
	close(fd);
}
END_TEST

/* Monotonic clock in ns. */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

START_TEST(futex_flag_woken_without_doorbell)
{
	size_t wr;

	/* A futex sleeper is woken by the wake check itself: no doorbell owed. */
	ck_assert(ring_consumer_prepare_sleep_how(&w.rx, RING_SLEEP_FUTEX));
	ck_assert_uint_eq(ctl(0)->cons_waiting, RING_SLEEP_FUTEX);
	ck_assert_int_eq(ring_write(&d.tx, "abc", 3, &wr), 0);
	uint64_t before = mono_ns();
	ck_assert(!ring_producer_wake_needed(&d.tx));
	ck_assert_uint_eq(ctl(0)->cons_waiting, 0);
	/* The waker stamped when it woke us. */
	ck_assert_uint_ge(ctl(0)->cons_woken_ns, before);
	ck_assert_uint_le(ctl(0)->cons_woken_ns, mono_ns());
	/* Woken already: the wait returns at once. */
	ck_assert_int_eq(ring_consumer_futex_wait(&w.rx, 10000), 0);
	/* Data present: no sleep, no flag, whichever way we would sleep. */
	ck_assert(!ring_consumer_prepare_sleep_how(&w.rx, RING_SLEEP_FUTEX));
	ck_assert_uint_eq(ctl(0)->cons_waiting, 0);

	/* The producer side: a full ring, a futex sleep, the consumer's wake. */
	do
		ck_assert_int_eq(ring_write(&d.tx, "12345678", 8, &wr), 0);
	while (wr > 0);
	ck_assert(ring_producer_prepare_sleep_how(&d.tx, RING_SLEEP_FUTEX));
	ck_assert_uint_eq(ctl(0)->prod_waiting, RING_SLEEP_FUTEX);
	char buf[64];
	ck_assert_int_gt(ring_read(&w.rx, buf, sizeof(buf)), 0);
	ck_assert(!ring_consumer_wake_needed(&w.rx));
	ck_assert_uint_eq(ctl(0)->prod_waiting, 0);
	ck_assert_int_eq(ring_producer_futex_wait(&d.tx, 10000), 0);
}
END_TEST

START_TEST(doorbell_flag_values)
{
	size_t wr;

	/* The plain calls announce a doorbell sleep, as before. */
	ck_assert(ring_consumer_prepare_sleep(&w.rx));
	ck_assert_uint_eq(ctl(0)->cons_waiting, RING_SLEEP_DOORBELL);
	ck_assert_int_eq(ring_write(&d.tx, "x", 1, &wr), 0);
	ck_assert(ring_producer_wake_needed(&d.tx));
	/* Any other non-zero value a hostile peer leaves asks for a doorbell. */
	atomic_store(&ctl(0)->cons_waiting, 77);
	ck_assert(ring_producer_wake_needed(&d.tx));
	ck_assert_uint_eq(ctl(0)->cons_waiting, 0);
	atomic_store(&ctl(1)->prod_waiting, UINT32_MAX);
	ck_assert(ring_consumer_wake_needed(&d.rx));
	ck_assert(!ring_consumer_wake_needed(&d.rx));
}
END_TEST

START_TEST(futex_wait_timeout_and_cancel)
{
	/* Nobody wakes us: a timeout, the flag still up until we cancel. */
	ck_assert(ring_consumer_prepare_sleep_how(&w.rx, RING_SLEEP_FUTEX));
	ck_assert_int_eq(ring_consumer_futex_wait(&w.rx, 1), -ETIMEDOUT);
	ck_assert_uint_eq(ctl(0)->cons_waiting, RING_SLEEP_FUTEX);
	ring_consumer_cancel_sleep(&w.rx);
	ck_assert_uint_eq(ctl(0)->cons_waiting, 0);
	ck_assert_int_eq(ring_consumer_futex_wait(&w.rx, 1), 0);
	ck_assert(ring_producer_prepare_sleep_how(&w.tx, RING_SLEEP_FUTEX));
	ck_assert_int_eq(ring_producer_futex_wait(&w.tx, 1), -ETIMEDOUT);
	ring_producer_cancel_sleep(&w.tx);
	ck_assert_uint_eq(ctl(1)->prod_waiting, 0);
}
END_TEST

/* Thread: sleep on the worker's rx futex until data comes; the wait's result. */
static void *futex_sleeper(void *arg)
{
	int *ret = arg;
	const void *p;
	size_t n;

	*ret = 1;
	while (ring_peek(&w.rx, &p, &n) == 0) {
		if (!ring_consumer_prepare_sleep_how(&w.rx, RING_SLEEP_FUTEX))
			continue;
		/* Safety bound only: the wake must come long before. */
		*ret = ring_consumer_futex_wait(&w.rx, 30000);
		if (*ret < 0)
			break;
	}
	return NULL;
}

START_TEST(futex_wakes_a_sleeping_thread)
{
	pthread_t t;
	int ret = 0;
	size_t wr;

	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(pthread_create(&t, NULL, futex_sleeper, &ret), 0);
		/* Let it fall asleep when it can (not needed for correctness). */
		sched_yield();
		ck_assert_int_eq(ring_write(&d.tx, "ping", 4, &wr), 0);
		ring_producer_wake_needed(&d.tx);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
		ck_assert_int_eq(ret == 1 ? 0 : ret, 0);
		char buf[8];
		ck_assert_int_eq(ring_read(&w.rx, buf, sizeof(buf)), 4);
	}
}
END_TEST

/* Pin the calling thread to the CPU it runs on; that CPU. */
static int pin_here(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	ck_assert_int_ge(cpu, 0);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ck_assert_int_eq(sched_setaffinity(0, sizeof(set), &set), 0);
	return cpu;
}

START_TEST(cpu_published_with_indices)
{
	size_t wr;
	char buf[8];
	int cpu = pin_here();

	if (ring_current_cpu() < 0)
		return; /* no rseq here: nothing is published, spinning is never blocked */
	ck_assert_int_eq(ring_current_cpu(), cpu);
	ck_assert_int_eq(ring_write(&d.tx, "abc", 3, &wr), 0);
	ck_assert_uint_eq(ctl(0)->prod_cpu, (uint32_t)cpu + 1);
	ck_assert_int_eq(ring_read(&w.rx, buf, sizeof(buf)), 3);
	ck_assert_uint_eq(ctl(0)->cons_cpu, (uint32_t)cpu + 1);
}
END_TEST

START_TEST(spin_budget_policy)
{
	struct ring_spin s;
	int cpu = pin_here();

	ring_spin_init(&s);
	if (s.single_cpu) {
		ck_assert_uint_eq(ring_spin_budget(&s, &w.rx, true), 0);
		return;
	}
	/* The peer runs elsewhere (or we cannot tell): the default budget. */
	atomic_store(&ctl(0)->prod_cpu, (uint32_t)cpu + 2);
	ck_assert_uint_eq(ring_spin_budget(&s, &w.rx, true), RING_SPIN_DEFAULT_NS);
	ring_spin_done(&s, true);
	ck_assert_uint_le(s.budget_ns, RING_SPIN_DEFAULT_NS);
	/* The peer last ran on our CPU: no spin at all (it needs the CPU we would burn). */
	if (ring_current_cpu() >= 0) {
		atomic_store(&ctl(0)->prod_cpu, (uint32_t)cpu + 1);
		ck_assert_uint_eq(ring_spin_budget(&s, &w.rx, true), 0);
		ck_assert_uint_eq(s.shared_cpu, 1);
		atomic_store(&ctl(0)->prod_cpu, 0);
		/* Our own CPU was published for the peer. */
		ck_assert_uint_eq(ctl(0)->cons_cpu, (uint32_t)cpu + 1);
	}
	/* A measured wake cost bounds the spin: past it, sleeping is cheaper. */
	atomic_store(&ctl(0)->cons_woken_ns, mono_ns() - 2000);
	ring_spin_woken(&s, &w.rx, true);
	ck_assert_uint_ge(s.wake_ns, 2000);
	ck_assert_uint_lt(s.wake_ns, 2000 + 10u * RING_SPIN_MAX_NS);
	ck_assert_uint_le(s.budget_ns, s.wake_ns);
	/* Hits grow the budget back, never past the wake cost nor the maximum. */
	for (int i = 0; i < 100; i++)
		ring_spin_done(&s, true);
	ck_assert_uint_le(s.budget_ns, s.wake_ns);
	ck_assert_uint_le(s.budget_ns, RING_SPIN_MAX_NS);
	/* A hostile or stale stamp is ignored. */
	uint64_t wake = s.wake_ns;
	atomic_store(&ctl(0)->cons_woken_ns, mono_ns() + 1000000000u);
	ring_spin_woken(&s, &w.rx, true);
	atomic_store(&ctl(0)->cons_woken_ns, 1);
	ring_spin_woken(&s, &w.rx, true);
	ck_assert_uint_eq(s.wake_ns, wake);
	/* Spins that do not pay switch spinning off, then it is probed again. */
	for (int i = 0; i < 64 && s.budget_ns > 0; i++)
		ring_spin_done(&s, false);
	ck_assert_uint_eq(s.budget_ns, 0);
	for (unsigned i = 0; i < RING_SPIN_PROBE; i++)
		ck_assert_uint_eq(ring_spin_budget(&s, &w.rx, true), 0);
	uint64_t probe = ring_spin_budget(&s, &w.rx, true);
	ck_assert_uint_gt(probe, 0);
	ck_assert_uint_le(probe, RING_SPIN_MAX_NS);
	/* A huge measured wake cost still spins at most RING_SPIN_MAX_NS. */
	for (int i = 0; i < 50; i++) {
		atomic_store(&ctl(0)->cons_woken_ns, mono_ns() - 5u * RING_SPIN_MAX_NS);
		ring_spin_woken(&s, &w.rx, true);
		ring_spin_done(&s, true);
	}
	ck_assert_uint_le(ring_spin_budget(&s, &w.rx, true), RING_SPIN_MAX_NS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("ring");
	TCase *big = tcase_create("two_process");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sizes_and_caps);
	tcase_add_test(tc, empty_and_doorbell_flags);
	tcase_add_test(tc, full_and_producer_sleep);
	tcase_add_loop_test(tc, wrap_every_alignment_write, 0, 81);
	tcase_add_loop_test(tc, wrap_every_alignment_reserve, 0, 81);
	tcase_add_test(tc, single_record_every_offset);
	tcase_add_test(tc, pad_at_end);
	tcase_add_test(tc, reserve_commit);
	tcase_add_test(tc, chunked_larger_than_ring);
	tcase_add_test(tc, corrupt_head_beyond_cap);
	tcase_add_test(tc, corrupt_head_misaligned);
	tcase_add_test(tc, corrupt_head_backwards);
	tcase_add_test(tc, corrupt_len_past_end);
	tcase_add_test(tc, corrupt_record_wraps);
	tcase_add_test(tc, corrupt_unknown_type);
	tcase_add_test(tc, frame_records);
	tcase_add_test(tc, corrupt_frame_len);
	tcase_add_test(tc, corrupt_len_changed_under_reader);
	tcase_add_test(tc, pad_chain_bounded);
	tcase_add_test(tc, corrupt_tail_ahead_of_head);
	tcase_add_test(tc, corrupt_tail_misaligned_or_backwards);
	tcase_add_test(tc, attach_validation);
	tcase_add_test(tc, futex_flag_woken_without_doorbell);
	tcase_add_test(tc, doorbell_flag_values);
	tcase_add_test(tc, futex_wait_timeout_and_cancel);
	tcase_add_test(tc, futex_wakes_a_sleeping_thread);
	tcase_add_test(tc, cpu_published_with_indices);
	tcase_add_test(tc, spin_budget_policy);
	suite_add_tcase(s, tc);
	tcase_set_timeout(big, 100);
	tcase_add_test(big, two_process_gigabyte);
	suite_add_tcase(s, big);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
