/*
 * test_worker.c - process tests of corral-worker and the native example: the
 * test plays the daemon for real (socketpair, ring memfd, fork+exec with the
 * fds at 3 and 4) and drives calls through both flow-controlled rings.
 *
 * Binaries come from the environment: CORRAL_WORKER (corral-worker),
 * CORRAL_EXAMPLE_UPPER (corral-example-upper) and CORRAL_TEST_NATIVE
 * (test-native-helper).  No sleeps: every wait is a
 * poll() whose timeout is only a safety bound.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <nettle/sha2.h>

#include "frame.h"
#include "msg.h"
#include "proto.h"
#include "ring.h"

#define SAFETY_MS 60000 /* no wait in these tests should come anywhere near this */

/* Workers start as pid 1 of their own pid namespace (enter_pidns()). */
static bool in_pidns;

/* A worker under test, seen from the daemon's side. */
struct wk {
	pid_t pid;
	int pidfd;
	int sock;
	int log_fd; /* memfd holding the worker's stdout and stderr */
	struct ring_area ra;
	uint64_t call_id;
};

/* Payload: buf, or pat repeated (not hashed), or len bytes of gen_byte(seed, i). */
struct src {
	const uint8_t *buf;
	const uint8_t *pat;
	size_t plen;
	uint64_t len;
	uint32_t seed;
	uint64_t off;
	uint64_t hash;
};

/* Result bytes: the first cap kept in buf, all hashed, or (with pat) compared with pat repeated. */
struct sink {
	uint8_t *buf;
	size_t cap;
	const uint8_t *pat;
	size_t plen;
	uint64_t len;
	uint64_t hash;
};

struct result {
	uint32_t status;
	uint32_t flags;
	uint64_t len;
	int fd;
	char msg[RESULT_MAX_MSG + 1];
};

#define FNV_INIT 0xcbf29ce484222325ull

/* FNV-1a over n bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Byte i of generated payload seed. */
static uint8_t gen_byte(uint32_t seed, uint64_t i)
{
	uint64_t x = (i + seed) * 0x9E3779B97F4A7C15ull;

	return (uint8_t)(x >> 56);
}

/* Fill up to n bytes of pat repeated, from stream offset off, stopping at the pattern's end;
 * returns bytes filled. */
static size_t pat_fill(uint8_t *p, size_t n, const uint8_t *pat, size_t plen, uint64_t off)
{
	size_t at = (size_t)(off % plen);

	if (n > plen - at)
		n = plen - at;
	memcpy(p, pat + at, n);
	return n;
}

/* Check n received bytes against pat repeated, from stream offset off. */
static void pat_check(const uint8_t *p, size_t n, const uint8_t *pat, size_t plen, uint64_t off)
{
	while (n > 0) {
		size_t at = (size_t)(off % plen), c = n < plen - at ? n : plen - at;

		ck_assert_msg(memcmp(p, pat + at, c) == 0, "result differs near byte %llu",
			      (unsigned long long)off);
		p += c;
		off += c;
		n -= c;
	}
}

/* The path of a binary under test from the environment. */
static const char *bin(const char *var)
{
	const char *p = getenv(var);

	ck_assert_msg(p && *p, "%s not set (run through meson test)", var);
	return p;
}

/* Wait for fd to become ready for events (safety bound SAFETY_MS); returns revents. */
static short wait_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	do
		r = poll(&p, 1, SAFETY_MS);
	while (r < 0 && errno == EINTR);
	ck_assert_msg(r == 1, "timed out waiting on fd %d", fd);
	return p.revents;
}

/* Start argv as a worker with ring capacities to/from the worker. */
static void wk_spawn(struct wk *w, uint32_t cap_to, uint32_t cap_from, char *const argv[])
{
	int sv[2], rfd, devnull;

	memset(w, 0, sizeof(*w));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(ring_area_create(cap_to, cap_from, &rfd, &w->ra), 0);
	w->log_fd = memfd_create("worker-log", MFD_CLOEXEC);
	ck_assert_int_ge(w->log_fd, 0);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(devnull, 0);
	w->pid = fork();
	ck_assert_int_ge(w->pid, 0);
	if (w->pid == 0) {
		/* Lift everything above 4 first so that no dup2 clobbers a source. */
		int s = fcntl(sv[1], F_DUPFD, 10), r = fcntl(rfd, F_DUPFD, 10);
		int l = fcntl(w->log_fd, F_DUPFD, 10), n = fcntl(devnull, F_DUPFD, 10);

		if (s < 0 || r < 0 || l < 0 || n < 0 || dup2(n, 0) < 0 || dup2(l, 1) < 0 ||
		    dup2(l, 2) < 0 || dup2(s, 3) < 0 || dup2(r, 4) < 0 ||
		    close_range(5, ~0U, 0) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	close(sv[1]);
	close(rfd);
	close(devnull);
	w->sock = sv[0];
	w->pidfd = (int)syscall(SYS_pidfd_open, w->pid, 0);
	ck_assert_int_ge(w->pidfd, 0);
}

/* wk_spawn(), then expect MSG_HELLO. */
static void wk_start(struct wk *w, uint32_t cap_to, uint32_t cap_from, char *const argv[])
{
	struct msg_hello h;
	struct frame f;

	wk_spawn(w, cap_to, cap_from, argv);
	wait_fd(w->sock, POLLIN);
	ck_assert_int_eq(frame_recv(w->sock, &f), 1);
	ck_assert_int_eq(f.hdr.type, MSG_HELLO);
	ck_assert_int_eq(msg_hello_decode(f.payload, f.hdr.len, &h), 0);
	ck_assert_uint_eq(h.version, PROTO_VERSION);
	/* CORRAL_TEST_WRAPPED: the worker runs under a forking wrapper (strace -f). */
	if (!getenv("CORRAL_TEST_WRAPPED"))
		ck_assert_uint_eq(h.pid, in_pidns ? 1 : (uint32_t)w->pid);
}

/* Everything the worker printed so far, NUL-terminated (static buffer). */
static const char *wk_log(struct wk *w)
{
	static char buf[65536];
	ssize_t n = pread(w->log_fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Wait for the worker to exit; returns its exit status (-signal when killed). */
static int wk_wait(struct wk *w)
{
	int st;

	wait_fd(w->pidfd, POLLIN);
	ck_assert_int_eq(waitpid(w->pid, &st, 0), w->pid);
	close(w->pidfd);
	close(w->sock);
	close(w->log_fd);
	ring_area_detach(&w->ra);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

/* Close the socket (EOF for the worker) and check it exits 0. */
static void wk_close(struct wk *w)
{
	shutdown(w->sock, SHUT_RDWR);
	ck_assert_int_eq(wk_wait(w), 0);
}

/* Send a payload-less frame. */
static void wk_send(struct wk *w, uint16_t type)
{
	ck_assert_int_eq(frame_send(w->sock, type, 0, 0, NULL, 0, NULL, 0), 0);
}

/* Put as much of the payload into the ring as fits; true when blocked on a full ring (flag set). */
static bool feed(struct wk *w, struct src *s)
{
	struct ring *tx = &w->ra.tx;

	while (s->off < s->len) {
		size_t n;
		uint8_t *p;

		errno = 0;
		p = ring_reserve(tx, s->len - s->off, &n);

		if (!p) {
			ck_assert_int_ne(errno, EPROTO);
			if (ring_producer_prepare_sleep(tx))
				return true;
			continue;
		}
		if (s->pat) {
			n = pat_fill(p, n, s->pat, s->plen, s->off);
		} else {
			if (s->buf)
				memcpy(p, s->buf + s->off, n);
			else
				for (size_t i = 0; i < n; i++)
					p[i] = gen_byte(s->seed, s->off + i);
			s->hash = fnv(s->hash, p, n);
		}
		ring_commit(tx, n);
		s->off += n;
		if (ring_producer_wake_needed(tx))
			wk_send(w, MSG_DOORBELL);
	}
	return false;
}

/* Take every result byte out of the ring, then announce we sleep. */
static void drain(struct wk *w, struct sink *k)
{
	struct ring *rx = &w->ra.rx;
	const void *p;
	size_t n;
	int r;

	for (;;) {
		while ((r = ring_peek(rx, &p, &n)) == 1) {
			if (k->len < k->cap)
				memcpy(k->buf + k->len, p,
				       n < k->cap - k->len ? n : k->cap - k->len);
			if (k->pat)
				pat_check(p, n, k->pat, k->plen, k->len);
			else
				k->hash = fnv(k->hash, p, n);
			k->len += n;
			ring_consume(rx, n);
			if (ring_consumer_wake_needed(rx))
				wk_send(w, MSG_DOORBELL);
		}
		ck_assert_int_eq(r, 0);
		if (ring_consumer_prepare_sleep(rx))
			return;
	}
}

/*
 * One call, played as the daemon plays it: payload into the ring before and
 * after MSG_CALL (or as payload_fd), result drained as it comes.  With stop,
 * MSG_STOP follows MSG_CALL at once.
 */
static void call(struct wk *w, uint32_t flags, int payload_fd, struct src *s, struct sink *k,
		 struct result *res, bool stop)
{
	uint8_t buf[64];
	struct msg_call mc = {.len = s->len};
	struct msg_result m;
	struct frame f;
	bool done = false;
	long n;

	s->off = 0;
	s->hash = FNV_INIT;
	k->len = 0;
	k->hash = FNV_INIT;
	memset(res, 0, sizeof(*res));
	res->fd = -1;
	if (payload_fd < 0)
		feed(w, s);
	n = msg_call_encode(buf, sizeof(buf), &mc);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(frame_send(w->sock, MSG_CALL, flags, ++w->call_id, buf, (size_t)n,
				    &payload_fd, payload_fd >= 0 ? 1 : 0),
			 0);
	if (stop)
		wk_send(w, MSG_STOP);
	for (;;) {
		if (payload_fd < 0)
			feed(w, s);
		drain(w, k);
		if (done)
			break;
		wait_fd(w->sock, POLLIN);
		while (!done && frame_recv(w->sock, &f) == 1) {
			if (f.hdr.type == MSG_DOORBELL)
				continue;
			ck_assert_int_eq(f.hdr.type, MSG_RESULT);
			ck_assert_uint_eq(f.hdr.call_id, w->call_id);
			ck_assert_int_eq(msg_result_decode(f.payload, f.hdr.len, &m), 0);
			res->status = m.status;
			res->len = m.len;
			res->flags = f.hdr.flags;
			snprintf(res->msg, sizeof(res->msg), "%s", m.message);
			ck_assert_uint_eq(f.nfds, (f.hdr.flags & RESULT_F_FD) ? 1 : 0);
			res->fd = frame_take_fd(&f, 0);
			done = true;
		}
	}
	if (payload_fd < 0)
		ck_assert_uint_eq(s->off, s->len);
	if (res->flags & RESULT_F_FD)
		ck_assert_uint_eq(k->len, 0);
	else
		ck_assert_uint_eq(k->len, res->len);
}

/* A call with an in-memory payload through the ring; returns the status, the result in out. */
static uint32_t call_str(struct wk *w, const char *payload, char *out, size_t cap,
			 struct result *res)
{
	struct src s = {.buf = (const uint8_t *)payload, .len = strlen(payload)};
	struct sink k = {.buf = (uint8_t *)out, .cap = cap - 1};

	call(w, 0, -1, &s, &k, res, false);
	out[k.len < k.cap ? k.len : k.cap] = '\0';
	return res->status;
}

/* Echo a generated payload of len bytes; checks the result matches. */
static void echo_gen(struct wk *w, uint64_t len, uint32_t seed)
{
	struct src s = {.len = len, .seed = seed};
	struct sink k = {0};
	struct result res;

	call(w, 0, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_OK);
	ck_assert_uint_eq(res.len, len);
	ck_assert_uint_eq(k.hash, s.hash);
}

/* A memfd holding n generated bytes. */
static int gen_memfd(uint64_t n, uint32_t seed)
{
	int fd = memfd_create("payload", MFD_CLOEXEC);
	uint8_t buf[8192];

	ck_assert_int_ge(fd, 0);
	for (uint64_t off = 0; off < n;) {
		size_t c = n - off < sizeof(buf) ? (size_t)(n - off) : sizeof(buf);

		for (size_t i = 0; i < c; i++)
			buf[i] = gen_byte(seed, off + i);
		ck_assert_int_eq(write(fd, buf, c), (ssize_t)c);
		off += c;
	}
	return fd;
}

/* Check a result memfd: sealed, size len, contents hash to want (FNV). */
static void check_result_fd(int fd, uint64_t len, uint64_t want)
{
	const int seals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
	uint8_t buf[65536];
	uint64_t h = FNV_INIT, total = 0;
	struct stat st;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & seals, seals);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, len);
	/* The reader gets it at offset 0: a plain read() works. */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		h = fnv(h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(total, len);
	ck_assert_uint_eq(h, want);
	close(fd);
}

/* FNV of generated bytes. */
static uint64_t gen_hash(uint64_t len, uint32_t seed)
{
	uint64_t h = FNV_INIT;

	for (uint64_t i = 0; i < len; i++) {
		uint8_t b = gen_byte(seed, i);

		h = fnv(h, &b, 1);
	}
	return h;
}

/* argv for corral-worker with the given arguments after the binary. */
#define WORKER_ARGV(...) ((char *[]){(char *)bin("CORRAL_WORKER"), __VA_ARGS__, NULL})

START_TEST(test_hello_eof)
{
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	wk_close(&w);
}
END_TEST

START_TEST(test_echo_sizes)
{
	static const uint64_t sizes[] = {
	    0, 1, 7, RING_MIN_CAP, 3 * RING_MIN_CAP + 5, 17 * RING_MIN_CAP, 1 << 20};
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		echo_gen(&w, sizes[i], (uint32_t)i);
	/* Doorbells outside a wait are ignored. */
	wk_send(&w, MSG_DOORBELL);
	echo_gen(&w, 5000, 99);
	wk_close(&w);
}
END_TEST

START_TEST(test_echo_64m)
{
	struct wk w;

	wk_start(&w, 64 * 1024, 16 * 1024, WORKER_ARGV("builtin", "echo"));
	echo_gen(&w, 64ull << 20, 7);
	wk_close(&w);
}
END_TEST

START_TEST(test_echo_1g)
{
	/* 1 GiB through 1 MiB rings: streaming both ways, result checked byte for byte. */
	static uint8_t pat[65521]; /* prime, so records and pattern never line up */
	struct src s = {.len = 1ull << 30, .pat = pat, .plen = sizeof(pat)};
	struct sink k = {.pat = pat, .plen = sizeof(pat)};
	struct result res;
	struct wk w;

	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = gen_byte(77, i);
	wk_start(&w, 1 << 20, 1 << 20, WORKER_ARGV("builtin", "echo"));
	call(&w, 0, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_OK);
	ck_assert_uint_eq(res.len, s.len);
	wk_close(&w);
}
END_TEST

START_TEST(test_echo_fds)
{
	struct src s = {.len = 300000, .seed = 3};
	struct sink k = {0};
	struct result res;
	struct wk w;
	int fd;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	/* Payload fd in, sealed memfd out. */
	fd = gen_memfd(s.len, s.seed);
	call(&w, CALL_F_PAYLOAD_FD | CALL_F_WANT_FD, fd, &s, &k, &res, false);
	close(fd);
	ck_assert_uint_eq(res.status, RESULT_OK);
	ck_assert_uint_eq(res.flags, RESULT_F_FD);
	ck_assert_uint_eq(res.len, s.len);
	check_result_fd(res.fd, s.len, gen_hash(s.len, s.seed));

	/* Payload fd in, ring out. */
	fd = gen_memfd(s.len, 4);
	s.seed = 4;
	call(&w, CALL_F_PAYLOAD_FD, fd, &s, &k, &res, false);
	close(fd);
	ck_assert_uint_eq(res.status, RESULT_OK);
	ck_assert_uint_eq(res.flags, 0);
	ck_assert_uint_eq(k.hash, gen_hash(s.len, 4));

	/* Ring in, memfd out; then an empty result memfd. */
	s.seed = 5;
	call(&w, CALL_F_WANT_FD, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_OK);
	check_result_fd(res.fd, s.len, s.hash);
	s.len = 0;
	call(&w, CALL_F_WANT_FD, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_OK);
	check_result_fd(res.fd, 0, FNV_INIT);

	/* A payload fd shorter than announced fails the call, not the worker. */
	fd = gen_memfd(100, 1);
	s.len = 200;
	call(&w, CALL_F_PAYLOAD_FD, fd, &s, &k, &res, false);
	close(fd);
	ck_assert_uint_eq(res.status, RESULT_ERROR);
	ck_assert_msg(strstr(res.msg, "payload fd"), "message: %s", res.msg);
	echo_gen(&w, 10, 1);
	wk_close(&w);
}
END_TEST

START_TEST(test_sha256)
{
	char out[128];
	struct result res;
	struct src s = {.len = 5000000, .seed = 11};
	struct sink k = {.buf = (uint8_t *)out, .cap = sizeof(out) - 1};
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE], chunk[4096];
	char want[2 * SHA256_DIGEST_SIZE + 1];
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "sha256"));
	ck_assert_uint_eq(call_str(&w, "", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_uint_eq(call_str(&w, "abc", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_uint_eq(call_str(&w, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
				   out, sizeof(out), &res),
			  RESULT_OK);
	ck_assert_str_eq(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	/* A payload far larger than the ring, against nettle directly. */
	sha256_init(&ctx);
	for (uint64_t off = 0; off < s.len; off += sizeof(chunk)) {
		size_t c = s.len - off < sizeof(chunk) ? (size_t)(s.len - off) : sizeof(chunk);

		for (size_t i = 0; i < c; i++)
			chunk[i] = gen_byte(s.seed, off + i);
		sha256_update(&ctx, c, chunk);
	}
	sha256_digest(&ctx, sizeof(d), d);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(want + 2 * i, 3, "%02x", d[i]);
	call(&w, 0, -1, &s, &k, &res, false);
	out[k.len] = '\0';
	ck_assert_uint_eq(res.status, RESULT_OK);
	ck_assert_str_eq(out, want);
	wk_close(&w);
}
END_TEST

START_TEST(test_echo_limit)
{
	struct wk w;
	struct src s = {.len = 8192, .seed = 1};
	struct sink k = {0};
	struct result res;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("builtin", "echo", "--output-kb", "4"));
	echo_gen(&w, 4096, 2); /* exactly the limit is fine */
	call(&w, 0, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_TOO_LARGE);
	ck_assert_uint_le(res.len, 4096);
	echo_gen(&w, 100, 3); /* and the worker goes on */
	wk_close(&w);
}
END_TEST

START_TEST(test_stdio_cat)
{
	char out[64];
	struct result res;
	struct src s = {.len = 3 << 20, .seed = 9};
	struct sink k = {0};
	struct wk w;

	wk_start(&w, RING_MIN_CAP, 8192, WORKER_ARGV("stdio", "--", "/bin/cat"));
	ck_assert_uint_eq(call_str(&w, "hello", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "hello");
	ck_assert_uint_eq(call_str(&w, "", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "");
	echo_gen(&w, s.len, s.seed);
	/* Result as a memfd. */
	call(&w, CALL_F_WANT_FD, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_OK);
	check_result_fd(res.fd, s.len, s.hash);
	wk_close(&w);
}
END_TEST

START_TEST(test_stdio_fail)
{
	char out[64];
	struct result res;
	struct wk w;

	wk_start(
	    &w, RING_MIN_CAP, RING_MIN_CAP,
	    WORKER_ARGV("stdio", "--", "/bin/sh", "-c", "echo partial; echo oops >&2; exit 3"));
	ck_assert_uint_eq(call_str(&w, "in", out, sizeof(out), &res), RESULT_ERROR);
	ck_assert_msg(strcmp(res.msg, "exited with status 3: oops") == 0, "message: %s", res.msg);
	/* Ring bytes already sent count in len; the daemon drops them. */
	ck_assert_uint_eq(res.len, strlen("partial\n"));
	wk_close(&w);
}
END_TEST

START_TEST(test_stdio_stderr_forwarded)
{
	char out[64];
	struct result res;
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("stdio", "--", "/bin/sh", "-c", "echo to-the-log >&2; cat"));
	ck_assert_uint_eq(call_str(&w, "x", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "x");
	/* The call is over, so the worker already copied the program's stderr to its own. */
	ck_assert_ptr_nonnull(strstr(wk_log(&w), "to-the-log"));
	wk_close(&w);
}
END_TEST

START_TEST(test_stdio_signal)
{
	char out[64];
	struct result res;
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("stdio", "--", "/bin/sh", "-c", "echo dying >&2; kill -SEGV $$"));
	ck_assert_uint_eq(call_str(&w, "", out, sizeof(out), &res), RESULT_ERROR);
	ck_assert_msg(strcmp(res.msg, "killed by SIGSEGV: dying") == 0, "message: %s", res.msg);
	wk_close(&w);
}
END_TEST

START_TEST(test_stdio_noexec)
{
	char out[64];
	struct result res;
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("stdio", "--", "/nonexistent/prog"));
	ck_assert_uint_eq(call_str(&w, "abc", out, sizeof(out), &res), RESULT_ERROR);
	ck_assert_str_eq(res.msg, "cannot exec /nonexistent/prog: No such file or directory");
	/* The worker survives to report it again. */
	ck_assert_uint_eq(call_str(&w, "", out, sizeof(out), &res), RESULT_ERROR);
	wk_close(&w);
}
END_TEST

START_TEST(test_stdio_no_read)
{
	/* 20 MiB out without ever reading a 4 MiB stdin: no deadlock. */
	struct src s = {.len = 4 << 20, .seed = 5};
	struct sink k = {0};
	struct result res;
	uint64_t want = FNV_INIT;
	uint8_t zero[4096] = {0};
	struct wk w;

	wk_start(&w, RING_MIN_CAP, 65536,
		 WORKER_ARGV("stdio", "--", "/bin/sh", "-c", "head -c 20971520 /dev/zero"));
	call(&w, 0, -1, &s, &k, &res, false);
	ck_assert_msg(res.status == RESULT_OK, "status %u: %s", res.status, res.msg);
	ck_assert_uint_eq(res.len, 20 << 20);
	for (int i = 0; i < (20 << 20) / 4096; i++)
		want = fnv(want, zero, sizeof(zero));
	ck_assert_uint_eq(k.hash, want);
	wk_close(&w);
}
END_TEST

START_TEST(test_stdio_limit)
{
	char out[64];
	struct src s = {.len = 1 << 20, .seed = 5};
	struct sink k = {0};
	struct result res;
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("stdio", "--output-kb", "64", "--", "/bin/cat"));
	call(&w, 0, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_TOO_LARGE);
	ck_assert_uint_le(res.len, 64 * 1024);
	/* The program was killed; the next call runs a fresh one. */
	ck_assert_uint_eq(call_str(&w, "next", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "next");
	wk_close(&w);
}
END_TEST

/* A memfd of n bytes of seed's pattern that takes seals (none added yet). */
static int sealable_memfd(uint64_t n, uint32_t seed)
{
	int fd = memfd_create("payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t buf[4096];

	ck_assert_int_ge(fd, 0);
	for (uint64_t off = 0; off < n; off += sizeof(buf)) {
		size_t c = n - off < sizeof(buf) ? (size_t)(n - off) : sizeof(buf);

		for (size_t i = 0; i < c; i++)
			buf[i] = gen_byte(seed, off + i);
		ck_assert_int_eq(write(fd, buf, c), (ssize_t)c);
	}
	return fd;
}

/* Call w with payload fd (len bytes announced); the result must be how (the program's stdin: "file"
 * or "pipe") then the payload's first len bytes, and fd's offset unchanged. */
static void stdin_call(struct wk *w, int fd, uint64_t len, uint32_t seed, const char *how)
{
	static uint8_t out[16384];
	struct src s = {.len = len};
	struct sink k = {.buf = out, .cap = sizeof(out)};
	struct result res;
	off_t at = lseek(fd, 0, SEEK_CUR);

	call(w, CALL_F_PAYLOAD_FD, fd, &s, &k, &res, false);
	ck_assert_msg(res.status == RESULT_OK, "status %u: %s", res.status, res.msg);
	ck_assert_uint_eq(k.len, strlen(how) + len);
	ck_assert_msg(memcmp(out, how, strlen(how)) == 0, "stdin was %.4s, not %s", out, how);
	for (uint64_t i = 0; i < len; i++)
		ck_assert_msg(out[strlen(how) + i] == gen_byte(seed, i), "byte %llu differs",
			      (unsigned long long)i);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), at);
}

/* A payload fd the program cannot write is its stdin itself (read-only, its own offset); any other
 * goes through a pipe. */
START_TEST(test_stdio_payload_fd_stdin)
{
	const int resize = F_SEAL_SHRINK | F_SEAL_GROW;
	char path[] = "/tmp/corral-test-payload.XXXXXX";
	struct wk w;
	int fd;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("stdio", "--", "/bin/sh", "-c",
			     "if [ -f /dev/stdin ]; then printf file; else printf pipe; fi; cat"));
	/* Sealed against writes and resizing: the program reads it directly, from offset 0
	 * whatever the caller's offset. */
	fd = sealable_memfd(10000, 1);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | resize), 0);
	ck_assert_int_eq(lseek(fd, 123, SEEK_SET), 123);
	stdin_call(&w, fd, 10000, 1, "file");
	/* Bytes past the announced length stay out of it. */
	stdin_call(&w, fd, 6000, 1, "pipe");
	close(fd);
	/* Sealed against writes only: the program could truncate it. */
	fd = sealable_memfd(5000, 2);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0);
	stdin_call(&w, fd, 5000, 2, "pipe");
	close(fd);
	/* Unsealed. */
	fd = sealable_memfd(5000, 3);
	stdin_call(&w, fd, 5000, 3, "pipe");
	close(fd);
	/* A file this worker (no Landlock, run by hand) could open for writing. */
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	for (uint64_t i = 0; i < 3000; i++) {
		uint8_t b = gen_byte(4, i);
		ck_assert_int_eq(write(fd, &b, 1), 1);
	}
	stdin_call(&w, fd, 3000, 4, "pipe");
	close(fd);
	wk_close(&w);
}
END_TEST

START_TEST(test_stop_idle)
{
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	echo_gen(&w, 10, 1);
	wk_send(&w, MSG_STOP);
	ck_assert_int_eq(wk_wait(&w), 0);
}
END_TEST

START_TEST(test_stop_during_call)
{
	struct src s = {.len = 1 << 20, .seed = 8};
	struct sink k = {0};
	struct result res;
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	/* MSG_STOP arrives while the 1 MiB call is far from done: the call completes first. */
	call(&w, 0, -1, &s, &k, &res, true);
	ck_assert_uint_eq(res.status, RESULT_OK);
	ck_assert_uint_eq(k.hash, s.hash);
	ck_assert_int_eq(wk_wait(&w), 0);
}
END_TEST

START_TEST(test_eof_during_call)
{
	struct msg_call mc = {.len = 1 << 20};
	uint8_t buf[64];
	struct wk w;
	long n;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	n = msg_call_encode(buf, sizeof(buf), &mc);
	ck_assert_int_eq(frame_send(w.sock, MSG_CALL, 0, 1, buf, (size_t)n, NULL, 0), 0);
	/* The worker waits for payload that never comes; the daemon goes away. */
	shutdown(w.sock, SHUT_RDWR);
	ck_assert_int_eq(wk_wait(&w), 0);
}
END_TEST

/* Send a raw datagram to a fresh echo worker; it must exit 70 with a message. */
static void expect_rejected(const void *dgram, size_t len, const char *why)
{
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	ck_assert_int_eq(send(w.sock, dgram, len, 0), (ssize_t)len);
	wait_fd(w.pidfd, POLLIN);
	{
		const char *log = wk_log(&w);

		ck_assert_msg(strstr(log, why), "%s: log says: %s", why, log);
	}
	ck_assert_int_eq(wk_wait(&w), 70);
}

START_TEST(test_malformed)
{
	struct {
		struct frame_hdr h;
		uint8_t payload[16];
	} d;

	/* Wrong version. */
	memset(&d, 0, sizeof(d));
	d.h = (struct frame_hdr){.version = 99, .type = MSG_DOORBELL};
	expect_rejected(&d, sizeof(d.h), "bad frame");
	/* Unknown type. */
	d.h = (struct frame_hdr){.version = PROTO_VERSION, .type = 42};
	expect_rejected(&d, sizeof(d.h), "bad frame");
	/* Length disagreeing with the datagram. */
	d.h = (struct frame_hdr){.version = PROTO_VERSION, .type = MSG_CALL, .len = 100};
	expect_rejected(&d, sizeof(d), "bad frame");
	/* Short datagram. */
	expect_rejected(&d, 10, "bad frame");
	/* CALL whose payload is not a msg_call. */
	d.h = (struct frame_hdr){.version = PROTO_VERSION, .type = MSG_CALL, .len = 3};
	expect_rejected(&d, sizeof(d.h) + 3, "malformed MSG_CALL");
	/* CALL announcing a payload fd without one. */
	d.h = (struct frame_hdr){
	    .version = PROTO_VERSION, .type = MSG_CALL, .flags = CALL_F_PAYLOAD_FD, .len = 8};
	expect_rejected(&d, sizeof(d.h) + 8, "MSG_CALL with flags");
	/* A message meant for the daemon. */
	d.h = (struct frame_hdr){.version = PROTO_VERSION, .type = MSG_HELLO, .len = 8};
	expect_rejected(&d, sizeof(d.h) + 8, "unexpected message type");
	/* A doorbell with a payload. */
	d.h = (struct frame_hdr){.version = PROTO_VERSION, .type = MSG_DOORBELL, .len = 4};
	expect_rejected(&d, sizeof(d.h) + 4, "malformed MSG_DOORBELL");
}
END_TEST

START_TEST(test_second_call_rejected)
{
	struct msg_call mc = {.len = 100};
	uint8_t buf[64];
	struct wk w;
	long n;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	n = msg_call_encode(buf, sizeof(buf), &mc);
	ck_assert_int_eq(frame_send(w.sock, MSG_CALL, 0, 1, buf, (size_t)n, NULL, 0), 0);
	ck_assert_int_eq(frame_send(w.sock, MSG_CALL, 0, 2, buf, (size_t)n, NULL, 0), 0);
	ck_assert_int_eq(wk_wait(&w), 70);
}
END_TEST

START_TEST(test_ring_corrupt)
{
	struct msg_call mc = {.len = 100};
	struct ring_ctl *ctl;
	uint8_t buf[64];
	struct wk w;
	long n;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	/* A head far past anything the ring can hold. */
	ctl = (struct ring_ctl *)((uint8_t *)w.ra.base + RING_CTL_OFFSET(0));
	atomic_store(&ctl->head, (uint64_t)1 << 40);
	n = msg_call_encode(buf, sizeof(buf), &mc);
	ck_assert_int_eq(frame_send(w.sock, MSG_CALL, 0, 1, buf, (size_t)n, NULL, 0), 0);
	wait_fd(w.pidfd, POLLIN);
	ck_assert_ptr_nonnull(strstr(wk_log(&w), "corrupted the request ring"));
	ck_assert_int_eq(wk_wait(&w), 70);
}
END_TEST

START_TEST(test_native_upper)
{
	char *argv[] = {(char *)bin("CORRAL_EXAMPLE_UPPER"), NULL};
	static uint8_t got[1 << 20];
	struct src s = {.len = sizeof(got), .seed = 21};
	struct sink k = {.buf = got, .cap = sizeof(got)};
	char out[64];
	struct result res;
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	ck_assert_uint_eq(call_str(&w, "Hello, World!", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "HELLO, WORLD!");
	ck_assert_uint_eq(call_str(&w, "", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "");
	call(&w, 0, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_OK);
	ck_assert_uint_eq(k.len, s.len);
	for (size_t i = 0; i < sizeof(got); i++)
		ck_assert_uint_eq(got[i], (uint8_t)toupper(gen_byte(s.seed, i)));
	wk_send(&w, MSG_STOP);
	ck_assert_int_eq(wk_wait(&w), 0);
}
END_TEST

START_TEST(test_native_whole)
{
	char *argv[] = {(char *)bin("CORRAL_TEST_NATIVE"), "whole", NULL};
	static uint8_t got[10000];
	struct src s = {.len = sizeof(got), .seed = 31};
	struct sink k = {.buf = got, .cap = sizeof(got)};
	char out[64];
	struct result res;
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	/* Fits one record: handed out in place. */
	ck_assert_uint_eq(call_str(&w, "abc", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "cba");
	ck_assert_uint_eq(call_str(&w, "", out, sizeof(out), &res), RESULT_OK);
	/* Larger than the ring: copied. */
	call(&w, 0, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_OK);
	for (size_t i = 0; i < sizeof(got); i++)
		ck_assert_uint_eq(got[i], gen_byte(s.seed, sizeof(got) - 1 - i));
	/* corral_call_fail(): the message, and the ring bytes already written in len. */
	ck_assert_uint_eq(call_str(&w, "fail:no good", out, sizeof(out), &res), RESULT_ERROR);
	ck_assert_str_eq(res.msg, "no good");
	ck_assert_uint_eq(res.len, 7);
	ck_assert_uint_eq(call_str(&w, "xy", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "yx");
	wk_close(&w);
}
END_TEST

START_TEST(test_native_half)
{
	char *argv[] = {(char *)bin("CORRAL_TEST_NATIVE"), "half", NULL};
	static uint8_t got[300000];
	struct src s = {.len = 2 * sizeof(got), .seed = 41};
	struct sink k = {.buf = got, .cap = sizeof(got)};
	char out[64];
	struct result res;
	struct wk w;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	/* The handler leaves half the payload unread: the library drains it. */
	call(&w, 0, -1, &s, &k, &res, false);
	ck_assert_uint_eq(res.status, RESULT_OK);
	ck_assert_uint_eq(res.len, sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		ck_assert_uint_eq(got[i], gen_byte(s.seed, i));
	/* And the next call starts at its own first byte. */
	ck_assert_uint_eq(call_str(&w, "abcdef", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "abc");
	wk_close(&w);
}
END_TEST

/* Send a call with a small ring payload the worker dies of; returns wk_wait(). */
static int call_fatal(struct wk *w, const char *payload)
{
	struct src s = {.buf = (const uint8_t *)payload, .len = strlen(payload)};
	struct msg_call mc = {.len = s.len};
	uint8_t buf[64];
	long n;

	ck_assert(!feed(w, &s));
	n = msg_call_encode(buf, sizeof(buf), &mc);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(frame_send(w->sock, MSG_CALL, 0, ++w->call_id, buf, (size_t)n, NULL, 0),
			 0);
	return wk_wait(w);
}

/* A memfd holding str. */
static int str_memfd(const char *str)
{
	int fd = memfd_create("payload", MFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, str, strlen(str)), (ssize_t)strlen(str));
	return fd;
}

START_TEST(test_strict_builtin)
{
	static const char abc[] =
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	struct src s = {.len = 300000, .seed = 61};
	struct sink k = {0};
	char out[128];
	struct result res;
	struct wk w;
	int fd;

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("builtin", "echo", "--seccomp", "strict"));
	echo_gen(&w, 0, 1);
	echo_gen(&w, 17 * RING_MIN_CAP + 3, 2);
	/* Payload fd in, sealed memfd out; ring in, memfd out. */
	fd = gen_memfd(s.len, s.seed);
	call(&w, CALL_F_PAYLOAD_FD | CALL_F_WANT_FD, fd, &s, &k, &res, false);
	close(fd);
	ck_assert_msg(res.status == RESULT_OK, "status %u: %s", res.status, res.msg);
	check_result_fd(res.fd, s.len, gen_hash(s.len, s.seed));
	call(&w, CALL_F_WANT_FD, -1, &s, &k, &res, false);
	ck_assert_msg(res.status == RESULT_OK, "status %u: %s", res.status, res.msg);
	check_result_fd(res.fd, s.len, s.hash);
	wk_close(&w);

	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("builtin", "sha256", "--seccomp=strict"));
	ck_assert_uint_eq(call_str(&w, "abc", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, abc);
	s = (struct src){.len = 3};
	fd = str_memfd("abc");
	call(&w, CALL_F_PAYLOAD_FD | CALL_F_WANT_FD, fd, &s, &k, &res, false);
	close(fd);
	ck_assert_msg(res.status == RESULT_OK, "status %u: %s", res.status, res.msg);
	check_result_fd(res.fd, 64, fnv(FNV_INIT, (const uint8_t *)abc, 64));
	wk_send(&w, MSG_STOP);
	ck_assert_int_eq(wk_wait(&w), 0);
}
END_TEST

START_TEST(test_strict_native)
{
	char *argv[] = {(char *)bin("CORRAL_TEST_NATIVE"), "do", NULL};
	struct src s = {.len = 100000, .seed = 62};
	struct sink k = {0};
	char out[64];
	struct result res;
	struct wk w;

	/* CORRAL_SECCOMP unset: no filter but the caller's. */
	unsetenv("CORRAL_SECCOMP");
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	ck_assert_uint_eq(call_str(&w, "socket", out, sizeof(out), &res), RESULT_OK);
	ck_assert_uint_eq(call_str(&w, "open", out, sizeof(out), &res), RESULT_OK);
	ck_assert_uint_eq(call_str(&w, "exec", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "ok");
	wk_close(&w);

	/* Strict: calls are served, a forbidden syscall kills the worker with SIGSYS. */
	setenv("CORRAL_SECCOMP", "strict", 1);
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	ck_assert_uint_eq(call_str(&w, "hello", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "hello");
	call(&w, CALL_F_WANT_FD, -1, &s, &k, &res, false);
	ck_assert_msg(res.status == RESULT_OK, "status %u: %s", res.status, res.msg);
	check_result_fd(res.fd, s.len, s.hash);
	ck_assert_int_eq(call_fatal(&w, "socket"), -SIGSYS);
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	ck_assert_int_eq(call_fatal(&w, "open"), -SIGSYS);
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	ck_assert_int_eq(call_fatal(&w, "exec"), -SIGSYS);
	/* abort() still dies of SIGABRT, not of the filter. */
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	ck_assert_int_eq(call_fatal(&w, "abort"), -SIGABRT);

	/* An unknown mode is fatal before the hello: never unconfined by mistake. */
	setenv("CORRAL_SECCOMP", "lax", 1);
	wk_spawn(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	wait_fd(w.pidfd, POLLIN);
	ck_assert_ptr_nonnull(strstr(wk_log(&w), "CORRAL_SECCOMP=lax"));
	ck_assert_int_eq(wk_wait(&w), 70);
	unsetenv("CORRAL_SECCOMP");
}
END_TEST

START_TEST(test_strict_options)
{
	char out[64];
	struct result res;
	struct wk w;

	wk_spawn(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("builtin", "echo", "--seccomp", "lax"));
	ck_assert_int_eq(wk_wait(&w), 64);
	/* stdio ignores strict (its program would inherit the filter), with a notice. */
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("stdio", "--seccomp", "strict", "--", "/bin/cat"));
	ck_assert_uint_eq(call_str(&w, "cat", out, sizeof(out), &res), RESULT_OK);
	ck_assert_str_eq(out, "cat");
	ck_assert_ptr_nonnull(strstr(wk_log(&w), "ignores seccomp strict"));
	wk_close(&w);
}
END_TEST

/* Write str to the file at path. */
static void write_file(const char *path, const char *str)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_msg(write(fd, str, strlen(str)) == (ssize_t)strlen(str), "%s: %s", path,
		      strerror(errno));
	close(fd);
}

/* Sanitizer builds: LeakSanitizer cannot check a process inside a new user
 * namespace (its ptrace helper fails), so the pid-1 tests turn it off there. */
static int in_userns;
#ifdef __SANITIZE_ADDRESS__
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return in_userns;
}
#endif

/*
 * Make the next child of this test process pid 1 of a new pid namespace (in a
 * new user namespace, our ids mapped to 0).  false, after saying why, where
 * the kernel refuses or the test does not run in a process of its own.
 */
static bool enter_pidns(const char *test)
{
	const char *fork_env = getenv("CK_FORK");
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];

	if (fork_env && strcmp(fork_env, "no") == 0) {
		printf("%s: skipped: needs CK_FORK (it unshares namespaces)\n", test);
		return false;
	}
	if (unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0) {
		printf("%s: skipped: no user+pid namespaces: unshare: %s\n", test, strerror(errno));
		return false;
	}
	in_userns = 1;
	write_file("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
	write_file("/proc/self/uid_map", map);
	snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
	write_file("/proc/self/gid_map", map);
	in_pidns = true;
	return true;
}

START_TEST(test_pid1_sigterm)
{
	struct wk w;

	if (!enter_pidns("pid1_sigterm"))
		return;
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP,
		 WORKER_ARGV("builtin", "echo", "--seccomp", "strict"));
	echo_gen(&w, 1000, 1);
	/* Without its handler, pid 1 would drop the signal and live on. */
	ck_assert_int_eq(kill(w.pid, SIGTERM), 0);
	ck_assert_int_eq(wk_wait(&w), 128 + SIGTERM);
}
END_TEST

START_TEST(test_pid1_sigsegv)
{
	struct wk w;

	if (!enter_pidns("pid1_sigsegv"))
		return;
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, WORKER_ARGV("builtin", "echo"));
	ck_assert_int_eq(kill(w.pid, SIGSEGV), 0);
	ck_assert_int_eq(wk_wait(&w), 128 + SIGSEGV);
}
END_TEST

START_TEST(test_pid1_fault)
{
	char *argv[] = {(char *)bin("CORRAL_TEST_NATIVE"), "do", NULL};
	char out[64];
	struct result res;
	struct wk w;

	if (!enter_pidns("pid1_fault"))
		return;
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	ck_assert_uint_eq(call_str(&w, "x", out, sizeof(out), &res), RESULT_OK);
	/* A real fault is not a sent signal: the worker dies of the signal itself. */
	ck_assert_int_eq(call_fatal(&w, "segv"), -SIGSEGV);
}
END_TEST

START_TEST(test_not_pid1_signal)
{
	char *argv[] = {(char *)bin("CORRAL_TEST_NATIVE"), "do", NULL};
	struct wk w;

	/* Not pid 1: no handler, the default action. */
	wk_start(&w, RING_MIN_CAP, RING_MIN_CAP, argv);
	ck_assert_int_eq(kill(w.pid, SIGTERM), 0);
	ck_assert_int_eq(wk_wait(&w), -SIGTERM);
}
END_TEST

/* Add a test case of its own, with a generous timeout (the safety bounds are inside). */
#define add(s, name, t)                                                                            \
	do {                                                                                       \
		TCase *tc_ = tcase_create(name);                                                   \
		tcase_set_timeout(tc_, 120);                                                       \
		tcase_add_test(tc_, t);                                                            \
		suite_add_tcase(s, tc_);                                                           \
	} while (0)

int main(void)
{
	Suite *s = suite_create("worker");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	add(s, "hello_eof", test_hello_eof);
	add(s, "echo_sizes", test_echo_sizes);
	add(s, "echo_64m", test_echo_64m);
	add(s, "echo_1g", test_echo_1g);
	add(s, "echo_fds", test_echo_fds);
	add(s, "echo_limit", test_echo_limit);
	add(s, "sha256", test_sha256);
	add(s, "stdio_cat", test_stdio_cat);
	add(s, "stdio_fail", test_stdio_fail);
	add(s, "stdio_stderr_forwarded", test_stdio_stderr_forwarded);
	add(s, "stdio_signal", test_stdio_signal);
	add(s, "stdio_noexec", test_stdio_noexec);
	add(s, "stdio_no_read", test_stdio_no_read);
	add(s, "stdio_limit", test_stdio_limit);
	add(s, "stdio_payload_fd_stdin", test_stdio_payload_fd_stdin);
	add(s, "stop_idle", test_stop_idle);
	add(s, "stop_during_call", test_stop_during_call);
	add(s, "eof_during_call", test_eof_during_call);
	add(s, "malformed", test_malformed);
	add(s, "second_call_rejected", test_second_call_rejected);
	add(s, "ring_corrupt", test_ring_corrupt);
	add(s, "native_upper", test_native_upper);
	add(s, "native_whole", test_native_whole);
	add(s, "native_half", test_native_half);
	add(s, "strict_builtin", test_strict_builtin);
	add(s, "strict_native", test_strict_native);
	add(s, "strict_options", test_strict_options);
	add(s, "pid1_sigterm", test_pid1_sigterm);
	add(s, "pid1_sigsegv", test_pid1_sigsegv);
	add(s, "pid1_fault", test_pid1_fault);
	add(s, "not_pid1_signal", test_not_pid1_signal);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
