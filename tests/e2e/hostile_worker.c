/*
 * hostile_worker.c - a native worker that breaks the daemon <-> worker
 * protocol (proto.h) in the way argv[1] names, for test_hostile.c.
 *
 * Started by corrald like any native worker: fd 3 the SOCK_SEQPACKET channel,
 * fd 4 the ring memfd.  Built on proto/ alone (not libcorral-worker) so that it
 * can write anything: raw datagrams, forged headers, scribbled ring indices.
 *
 * Modes before the hello:
 *   silent          never says hello (sleeps forever)
 *   badversion      MSG_HELLO carrying version 99
 *   garbage_hello   a datagram of pseudo-random bytes instead of the hello
 * Every other mode says hello, waits for MSG_CALL, then (payload bytes, when
 * they fit the ring, are consumed first):
 *   ok              behaves: echoes the payload (control case)
 *   hang            never answers
 *   garbage         a datagram of pseudo-random bytes
 *   unknown_type    a well-formed frame of type 99
 *   badlen_long     a header announcing more payload than the datagram holds
 *   badlen_short    a header announcing less payload than the datagram holds
 *   oversize        a datagram larger than any frame may be
 *   badnfds         a header announcing one fd, none attached
 *   msg_call        a MSG_CALL (a daemon -> worker type)
 *   msg_stop        a MSG_STOP (a daemon -> worker type)
 *   early_result    MSG_RESULT before the whole payload was read
 *   fd_big          a legal sealed result memfd past output_kb (serves on)
 *   hello_twice     a second MSG_HELLO
 *   wrong_id        a valid MSG_RESULT for another call id
 *   badstatus       a MSG_RESULT with an unknown status
 *   len_more        MSG_RESULT len past the bytes in the ring
 *   len_less        MSG_RESULT len short of the bytes in the ring
 *   fd_none         RESULT_F_FD without a fd
 *   fd_pipe         RESULT_F_FD with a pipe
 *   fd_unsealed     RESULT_F_FD with an unsealed memfd of the right size
 *   fd_wrongsize    RESULT_F_FD with a sealed memfd whose size is not len
 *   spam            doorbells without end
 *   spam_ok         10000 doorbells, then a correct echo result
 *   ring_hdr        scribbles on the shared header, then a correct result
 *   ring_far        worker->daemon head far past the capacity, then a doorbell
 *   ring_misalign   worker->daemon head not a multiple of RING_ALIGN, then RESULT
 *   ring_reclen     a record whose length runs past the ring, then a doorbell
 *   ring_rectype    a record of an unknown type, then RESULT
 *   ring_framelen   a FRAME record longer than RING_FRAME_MAX, then a doorbell
 *   ring_framebad   a FRAME record holding no valid MSG_RESULT, then a doorbell
 *   ring_back       worker->daemon head moved backwards (below tail), then a doorbell
 *   ring_tail       daemon->worker tail pushed past the head, then a doorbell
 *   endless         result bytes without end (flow control honoured)
 *   close3          closes fd 3 and stays alive
 *   manyfds5        MSG_RESULT carrying FRAME_MAX_FDS + 1 fds
 *   manyfds200      a doorbell carrying 200 fds
 *   exit            exits with status 3
 *   segv            dereferences NULL
 *   two_results     a correct result, then a second MSG_RESULT for the same call
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"
#include "proto.h"
#include "ring.h"

#define SOCK 3
#define RING 4

static struct ring_area area;
static const char *mode;

/* Give up loudly (the daemon captures stderr). */
static void die(const char *what)
{
	fprintf(stderr, "hostile(%s): %s: %s\n", mode ? mode : "?", what, strerror(errno));
	_exit(70);
}

/* Sleep forever (the daemon is expected to kill us). */
static void forever(void)
{
	for (;;)
		pause();
}

/* Block until the socket is readable or writable. */
static void wait_sock(short ev)
{
	struct pollfd p = {.fd = SOCK, .events = ev};
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			die("poll");
}

/* Send one raw datagram (with nfds fds), waiting while the socket is full. */
static void send_raw(const void *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 256)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 256)
		nfds = 256;
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		if (sendmsg(SOCK, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return;
		if (errno == EAGAIN || errno == ENOBUFS)
			wait_sock(POLLOUT);
		else if (errno != EINTR)
			die("sendmsg");
	}
}

/* A frame: header fields as given (len and nfds may lie), then n payload bytes. */
static void send_forged(uint16_t version, uint16_t type, uint32_t flags, uint32_t hlen,
			uint32_t hnfds, uint64_t id, const void *payload, size_t n, const int *fds,
			unsigned nfds)
{
	uint8_t buf[sizeof(struct frame_hdr) + 16384];
	struct frame_hdr h = {version, type, flags, hlen, hnfds, id};

	if (n > sizeof(buf) - sizeof(h))
		n = sizeof(buf) - sizeof(h);
	memcpy(buf, &h, sizeof(h));
	if (n)
		memcpy(buf + sizeof(h), payload, n);
	send_raw(buf, sizeof(h) + n, fds, nfds);
}

/* A well-formed frame. */
static void send_frame(uint16_t type, uint32_t flags, uint64_t id, const void *p, size_t n,
		       const int *fds, unsigned nfds)
{
	send_forged(PROTO_VERSION, type, flags, (uint32_t)n, nfds, id, p, n, fds, nfds);
}

static void doorbell(void)
{
	send_frame(MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0);
}

static void hello(uint32_t version)
{
	struct msg_hello h = {.version = version, .pid = (uint32_t)getpid()};
	uint8_t buf[64];
	long n = msg_hello_encode(buf, sizeof(buf), &h);
	if (n < 0)
		die("hello encode");
	send_frame(MSG_HELLO, 0, 0, buf, (size_t)n, NULL, 0);
}

/* A MSG_RESULT with status, len, flags and fds as given. */
static void result(uint64_t id, uint32_t status, uint64_t len, uint32_t flags, const int *fds,
		   unsigned nfds)
{
	struct msg_result m = {.status = status, .len = len, .message = "hostile"};
	uint8_t buf[256];
	long n = msg_result_encode(buf, sizeof(buf), &m);
	if (n < 0)
		die("result encode");
	send_frame(MSG_RESULT, flags, id, buf, (size_t)n, fds, nfds);
}

/* Pseudo-random bytes (xorshift; deterministic so a failure repeats). */
static void garbage(void *buf, size_t n, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t x = seed | 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	/* Whatever the dice say, never a valid version: the bytes are garbage. */
	if (n >= 2)
		p[0] = p[1] = 0xa5;
}

/* Wait for MSG_CALL; doorbells and anything else from the daemon are skipped. */
static void wait_call(struct frame *f)
{
	for (;;) {
		int r = frame_recv(SOCK, f);
		if (r == -EAGAIN || r == -EINTR) {
			wait_sock(POLLIN);
			continue;
		}
		if (r == 0)
			_exit(0); /* the daemon went away */
		if (r < 0) {
			errno = -r;
			die("frame_recv");
		}
		if (f->hdr.type == MSG_CALL)
			return;
		if (f->hdr.type == MSG_STOP)
			_exit(0);
		frame_close_fds(f);
	}
}

/* Take the call's payload out of the ring (when it all fits), doorbell if the daemon waits. */
static size_t take_payload(uint64_t len, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	while (got < len && got < cap) {
		long n = ring_read(&area.rx, buf + got, cap - got);
		if (n < 0)
			die("ring_read");
		if (n == 0)
			break; /* the rest is not there yet: the modes that care do not read it */
		got += (size_t)n;
	}
	if (got && ring_consumer_wake_needed(&area.rx))
		doorbell();
	return got;
}

/* Put n bytes into the result ring (they fit: small results only). */
static void put_result(const void *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		size_t w = 0;
		if (ring_write(&area.tx, (const uint8_t *)p + done, n - done, &w) < 0)
			die("ring_write");
		if (w == 0) {
			errno = ENOSPC;
			die("result ring full");
		}
		done += w;
	}
}

/* A sealed memfd holding n bytes. */
static int sealed_memfd(const void *p, size_t n, bool seal)
{
	int fd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		die("memfd_create");
	if (n && write(fd, p, n) != (ssize_t)n)
		die("write memfd");
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK) < 0)
		die("seal");
	return fd;
}

/* The worker -> daemon ring's control block and data. */
static struct ring_ctl *tx_ctl(void)
{
	return area.tx.ctl;
}

/* Result bytes forever, honouring flow control (the daemon must cut us off). */
static void endless(void)
{
	static uint8_t chunk[16384];
	memset(chunk, 'x', sizeof(chunk));
	for (;;) {
		size_t w = 0;
		if (ring_write(&area.tx, chunk, sizeof(chunk), &w) < 0)
			die("ring_write");
		if (w > 0) {
			if (ring_producer_wake_needed(&area.tx))
				doorbell();
			continue;
		}
		if (!ring_producer_prepare_sleep(&area.tx))
			continue;
		/* Full: sleep until the daemon frees space (its doorbell). */
		struct frame f;
		wait_sock(POLLIN);
		int r = frame_recv(SOCK, &f);
		if (r == 0)
			forever();
		if (r > 0)
			frame_close_fds(&f);
	}
}

/* n fds of /dev/null (or of a pipe when /dev/null is not there). */
static unsigned open_fds(int *fds, unsigned n)
{
	int base = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (base < 0) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			die("pipe");
		base = p[0];
	}
	for (unsigned i = 0; i < n; i++) {
		fds[i] = fcntl(base, F_DUPFD_CLOEXEC, 10);
		if (fds[i] < 0)
			return i;
	}
	return n;
}

/* Misbehave during the call described by f. */
static void in_call(struct frame *f)
{
	struct msg_call mc;
	static uint8_t buf[65536];
	uint64_t id = f->hdr.call_id;
	size_t n = 0;

	if (msg_call_decode(f->payload, f->hdr.len, &mc) < 0)
		die("bad MSG_CALL");
	if (f->hdr.flags & CALL_F_PAYLOAD_FD) {
		ssize_t k = pread(f->fds[0], buf, mc.len < sizeof(buf) ? mc.len : sizeof(buf), 0);
		n = k > 0 ? (size_t)k : 0;
	} else if (strcmp(mode, "ring_tail") != 0 && strcmp(mode, "early_result") != 0) {
		n = take_payload(mc.len, buf, sizeof(buf));
	}
	frame_close_fds(f);

	if (strcmp(mode, "ok") == 0) {
		put_result(buf, n);
		result(id, RESULT_OK, n, 0, NULL, 0);
	} else if (strcmp(mode, "hang") == 0) {
		forever();
	} else if (strcmp(mode, "garbage") == 0) {
		for (uint64_t seed = 1; seed < 64; seed++) {
			garbage(buf, 1 + seed * 37 % 700, seed);
			send_raw(buf, 1 + seed * 37 % 700, NULL, 0);
		}
	} else if (strcmp(mode, "unknown_type") == 0) {
		send_frame(99, 0, id, NULL, 0, NULL, 0);
	} else if (strcmp(mode, "badlen_long") == 0) {
		send_forged(PROTO_VERSION, MSG_DOORBELL, 0, 100, 0, 0, "12345678", 8, NULL, 0);
	} else if (strcmp(mode, "badlen_short") == 0) {
		uint8_t pl[64];
		struct msg_result m = {.status = RESULT_OK, .len = n, .message = ""};
		long k = msg_result_encode(pl, sizeof(pl), &m);
		put_result(buf, n);
		send_forged(PROTO_VERSION, MSG_RESULT, 0, (uint32_t)k - 4, 0, id, pl, (size_t)k,
			    NULL, 0);
	} else if (strcmp(mode, "oversize") == 0) {
		memset(buf, 0, sizeof(struct frame_hdr) + 8000);
		send_forged(PROTO_VERSION, MSG_RESULT, 0, 8000, 0, id, buf, 8000, NULL, 0);
	} else if (strcmp(mode, "badnfds") == 0) {
		put_result(buf, n);
		uint8_t pl[64];
		struct msg_result m = {.status = RESULT_OK, .len = n, .message = ""};
		long k = msg_result_encode(pl, sizeof(pl), &m);
		send_forged(PROTO_VERSION, MSG_RESULT, RESULT_F_FD, (uint32_t)k, 1, id, pl,
			    (size_t)k, NULL, 0);
	} else if (strcmp(mode, "msg_call") == 0) {
		uint8_t pl[16];
		struct msg_call m = {.len = 0};
		long k = msg_call_encode(pl, sizeof(pl), &m);
		send_frame(MSG_CALL, 0, id, pl, (size_t)k, NULL, 0);
	} else if (strcmp(mode, "msg_stop") == 0) {
		send_frame(MSG_STOP, 0, 0, NULL, 0, NULL, 0);
	} else if (strcmp(mode, "early_result") == 0) {
		/* ring_kb 4 and a larger payload: the daemon still has bytes to send. */
		result(id, RESULT_OK, 0, 0, NULL, 0);
	} else if (strcmp(mode, "fd_big") == 0) {
		/* Legal, but past output_kb: too_large, and the worker serves on. */
		static uint8_t big[1 << 20];
		int fd = sealed_memfd(big, sizeof(big), true);
		result(id, RESULT_OK, sizeof(big), RESULT_F_FD, &fd, 1);
		close(fd);
		return;
	} else if (strcmp(mode, "hello_twice") == 0) {
		hello(PROTO_VERSION);
	} else if (strcmp(mode, "wrong_id") == 0) {
		put_result(buf, n);
		result(id + 1000, RESULT_OK, n, 0, NULL, 0);
	} else if (strcmp(mode, "badstatus") == 0) {
		put_result(buf, n);
		result(id, 7, n, 0, NULL, 0);
	} else if (strcmp(mode, "len_more") == 0) {
		put_result(buf, n);
		result(id, RESULT_OK, n + 5, 0, NULL, 0);
	} else if (strcmp(mode, "len_less") == 0) {
		put_result(buf, n);
		result(id, RESULT_OK, n ? n - 1 : 0, 0, NULL, 0);
	} else if (strcmp(mode, "fd_none") == 0) {
		result(id, RESULT_OK, n, RESULT_F_FD, NULL, 0);
	} else if (strcmp(mode, "fd_pipe") == 0) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			die("pipe");
		if (n && write(p[1], buf, n) != (ssize_t)n)
			die("write pipe");
		result(id, RESULT_OK, n, RESULT_F_FD, &p[0], 1);
	} else if (strcmp(mode, "fd_unsealed") == 0) {
		int fd = sealed_memfd(buf, n, false);
		result(id, RESULT_OK, n, RESULT_F_FD, &fd, 1);
	} else if (strcmp(mode, "fd_wrongsize") == 0) {
		int fd = sealed_memfd(buf, n, true);
		result(id, RESULT_OK, n + 100, RESULT_F_FD, &fd, 1);
	} else if (strcmp(mode, "spam") == 0) {
		for (;;)
			doorbell();
	} else if (strcmp(mode, "spam_ok") == 0) {
		for (int i = 0; i < 10000; i++)
			doorbell();
		put_result(buf, n);
		result(id, RESULT_OK, n, 0, NULL, 0);
	} else if (strcmp(mode, "ring_hdr") == 0) {
		/* The daemon read the header once, at creation: scribbling changes nothing. */
		memset(area.base, 0xee, 64);
		put_result(buf, n);
		result(id, RESULT_OK, n, 0, NULL, 0);
	} else if (strcmp(mode, "ring_far") == 0) {
		atomic_store(&tx_ctl()->head, area.tx.tail + area.tx.cap * 1024);
		doorbell();
	} else if (strcmp(mode, "ring_misalign") == 0) {
		put_result(buf, n);
		atomic_store(&tx_ctl()->head, area.tx.head + 3);
		result(id, RESULT_OK, n, 0, NULL, 0);
	} else if (strcmp(mode, "ring_reclen") == 0) {
		uint32_t rec[2] = {(uint32_t)area.tx.cap * 2, RING_REC_DATA};
		uint64_t off = area.tx.head & (area.tx.cap - 1);
		memcpy(area.tx.data + off, rec, sizeof(rec));
		atomic_store(&tx_ctl()->head, area.tx.head + 64);
		doorbell();
	} else if (strcmp(mode, "ring_framelen") == 0 || strcmp(mode, "ring_framebad") == 0) {
		/* The daemon copies a frame record into a RING_FRAME_MAX buffer. */
		bool longer = strcmp(mode, "ring_framelen") == 0;
		uint32_t len = longer ? RING_FRAME_MAX + 64 : 32;
		uint32_t rec[2] = {len, RING_REC_FRAME};
		uint64_t off = area.tx.head & (area.tx.cap - 1);
		memcpy(area.tx.data + off, rec, sizeof(rec));
		memset(area.tx.data + off + 8, 'q', len);
		atomic_store(&tx_ctl()->head, area.tx.head + 8 + ((len + 7) & ~7u));
		doorbell();
	} else if (strcmp(mode, "ring_rectype") == 0) {
		uint32_t rec[2] = {8, 77};
		uint64_t off = area.tx.head & (area.tx.cap - 1);
		memcpy(area.tx.data + off, rec, sizeof(rec));
		memset(area.tx.data + off + 8, 'q', 8);
		atomic_store(&tx_ctl()->head, area.tx.head + 16);
		result(id, RESULT_OK, 8, 0, NULL, 0);
	} else if (strcmp(mode, "ring_back") == 0) {
		/* Produce a little (the daemon consumes it), then move head behind tail. */
		put_result("abcdefgh", 8);
		doorbell();
		while (atomic_load(&tx_ctl()->tail) < area.tx.head) {
			/* As a producer on a full ring: the daemon rings once it consumed. */
			atomic_store(&tx_ctl()->prod_waiting, 1);
			atomic_thread_fence(memory_order_seq_cst);
			if (atomic_load(&tx_ctl()->tail) >= area.tx.head)
				break;
			struct frame fr;
			wait_sock(POLLIN);
			if (frame_recv(SOCK, &fr) > 0)
				frame_close_fds(&fr);
		}
		atomic_store(&tx_ctl()->head, 0);
		doorbell();
	} else if (strcmp(mode, "ring_tail") == 0) {
		/* The daemon still has payload to write: a tail past its head makes it stop. */
		struct ring_ctl *rx = area.rx.ctl;
		atomic_store(&rx->tail, atomic_load(&rx->head) + 4096 * 16);
		doorbell();
	} else if (strcmp(mode, "endless") == 0) {
		endless();
	} else if (strcmp(mode, "close3") == 0) {
		close(SOCK);
	} else if (strcmp(mode, "manyfds5") == 0) {
		int fds[FRAME_MAX_FDS + 1];
		unsigned k = open_fds(fds, FRAME_MAX_FDS + 1);
		put_result(buf, n);
		uint8_t pl[64];
		struct msg_result m = {.status = RESULT_OK, .len = n, .message = ""};
		long len = msg_result_encode(pl, sizeof(pl), &m);
		send_forged(PROTO_VERSION, MSG_RESULT, RESULT_F_FD, (uint32_t)len, k, id, pl,
			    (size_t)len, fds, k);
	} else if (strcmp(mode, "manyfds200") == 0) {
		static int fds[200];
		unsigned k = open_fds(fds, 200);
		send_forged(PROTO_VERSION, MSG_DOORBELL, 0, 0, k, 0, NULL, 0, fds, k);
	} else if (strcmp(mode, "exit") == 0) {
		_exit(3);
	} else if (strcmp(mode, "segv") == 0) {
		*(volatile int *)(uintptr_t)f->hdr.len = 1; /* a small address: unmapped */
	} else if (strcmp(mode, "two_results") == 0) {
		put_result(buf, n);
		result(id, RESULT_OK, n, 0, NULL, 0);
		result(id, RESULT_OK, 0, 0, NULL, 0);
	} else {
		fprintf(stderr, "hostile: unknown mode %s\n", mode);
		_exit(64);
	}
	/* The well-behaved endings serve on; after anything else we stay around: the
	 * daemon must be the one to end us. */
	if (strcmp(mode, "ok") == 0 || strcmp(mode, "spam_ok") == 0 ||
	    strcmp(mode, "ring_hdr") == 0)
		return;
	forever();
}

int main(int argc, char **argv)
{
	struct frame f;

	mode = argc > 1 ? argv[1] : "";
	int r = ring_area_attach(RING, &area);
	if (r < 0) {
		errno = -r;
		die("ring_area_attach");
	}
	if (strcmp(mode, "silent") == 0) {
		forever();
	} else if (strcmp(mode, "badversion") == 0) {
		hello(99);
		forever();
	} else if (strcmp(mode, "garbage_hello") == 0) {
		uint8_t buf[300];
		garbage(buf, sizeof(buf), 42);
		send_raw(buf, sizeof(buf), NULL, 0);
		forever();
	}
	hello(PROTO_VERSION);
	for (;;) {
		wait_call(&f);
		in_call(&f);
	}
}
