/*
 * libworker.c - libcorral-worker: the worker side of the daemon <-> worker
 * protocol (proto.h) and the call API of corral/worker.h.
 *
 * One worker, one call at a time, one thread.  Calls come as MSG_CALL frames
 * on the socket or, without fds, as frame records in the ring (proto.h): the
 * daemon queues the next ones there while we work, and we take them in order
 * without a socket round trip, sleeping (and needing a doorbell) only when the
 * ring is empty.  Waits are blocking poll() on
 * the control socket (fd 3) for doorbells, after an adaptive spin on the ring
 * (struct ring_spin: no longer than a wake costs, not while the daemon runs
 * on our CPU, less after spins that did not pay).  The sleep stays on the
 * socket, not a futex: the strict seccomp filter has no futex, and a doorbell
 * wait also hears MSG_STOP and the daemon's exit.
 *
 * Failure has two tiers.  A call's own trouble (a short payload fd, a result
 * memfd that cannot be made, the output limit) fails that call and the worker
 * goes on.  Trouble with the channel is sticky in worker->dead: -EPIPE when the
 * daemon went away (exit 0), -EPROTO when it broke the protocol (exit 70).
 * Every call function then fails at once so the handler unwinds, and no
 * result is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"
#include "proto.h"
#include "ring.h"

#include "corral/worker.h"
#include "worker-int.h"

#define WORKER_SOCK_FD 3
#define WORKER_RING_FD 4

/* Bytes read at a time from a payload fd; size of the staging buffer that backs reservations in
 * memfd-result mode. */
#define WORKER_FD_CHUNK (128u * 1024u)

/* A MSG_CALL received and not yet started. */
struct pending_call {
	bool set;
	uint64_t id;
	uint32_t flags;
	uint64_t len;
	int fd;	   /* CALL_F_PAYLOAD_FD: owned here until the call starts */
	bool ring; /* came through the ring: its MSG_RESULT goes back the same way */
};

struct corral_worker {
	int sock;
	struct ring_area ring; /* tx: worker -> daemon */
	uint64_t max_output;   /* 0: no limit */
	int dead;	       /* 0, -EPIPE (daemon gone) or -EPROTO; sticky */
	bool stop;	       /* MSG_STOP seen: exit after the current call */
	bool in_call;
	bool bell_owed;	 /* result bytes published while the daemon waits: ring before blocking */
	size_t rx_freed; /* payload room freed since we last told a waiting daemon */
	struct ring_spin spin; /* how long to spin before sleeping on the socket */
	struct pending_call next;
	bool data_ahead; /* payload bytes in the ring ahead of their MSG_CALL */
	char why[256];	 /* what went wrong when dead == -EPROTO */
};

struct corral_call {
	struct corral_worker *w;
	uint64_t id;
	uint32_t flags;
	uint64_t len;	   /* payload bytes announced */
	uint64_t consumed; /* payload bytes consumed (or handed out whole) */
	size_t peeked;	   /* bytes of the last peek not consumed yet */
	size_t held;	   /* ring bytes given out by corral_call_payload(); released at the end */
	void *copy;	   /* corral_call_payload() copy */

	int payload_fd; /* CALL_F_PAYLOAD_FD, else -1 */
	uint8_t *fd_buf;
	size_t fd_len, fd_off; /* bytes in fd_buf, bytes of them consumed */

	uint64_t written; /* result bytes accepted */
	int out_fd;	  /* CALL_F_WANT_FD: the result memfd, created on first use */
	uint8_t *stage;	  /* memfd mode: reservations land here */
	size_t reserved;  /* size of the open reservation, 0 when none */

	bool ring;	      /* came through the ring (pending_call.ring) */
	uint64_t spin_budget; /* ns: the current spin's bound (call_backoff) */
	bool too_large;
	int err; /* first failure of the call's own I/O */
	bool failed;
	char msg[RESULT_MAX_MSG + 1];
};

/* Mark the channel broken by the daemon; the first reason wins.  Returns -EPROTO. */
__attribute__((format(printf, 2, 3))) static int worker_die(struct corral_worker *w,
							    const char *fmt, ...)
{
	va_list ap;

	if (w->dead)
		return w->dead;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
	w->dead = -EPROTO;
	return -EPROTO;
}

/* Handle one validated frame; a CALL is parked in w->next. */
static int worker_dispatch(struct corral_worker *w, struct frame *f)
{
	struct msg_call m;
	unsigned want_fds;

	switch (f->hdr.type) {
	case MSG_DOORBELL:
	case MSG_STOP:
		if (f->hdr.len != 0 || f->nfds != 0)
			return worker_die(w, "malformed %s frame from the daemon",
					  f->hdr.type == MSG_STOP ? "MSG_STOP" : "MSG_DOORBELL");
		if (f->hdr.type == MSG_STOP)
			w->stop = true;
		return 0;
	case MSG_CALL:
		if (w->in_call || w->next.set)
			return worker_die(w, "MSG_CALL %" PRIu64 " while a call is in progress",
					  f->hdr.call_id);
		if (msg_call_decode(f->payload, f->hdr.len, &m) < 0)
			return worker_die(w, "malformed MSG_CALL payload from the daemon");
		want_fds = (f->hdr.flags & CALL_F_PAYLOAD_FD) ? 1 : 0;
		if ((f->hdr.flags & ~CALL_F_MASK) != 0 || f->nfds != want_fds)
			return worker_die(w, "MSG_CALL with flags %#x and %u fds", f->hdr.flags,
					  f->nfds);
		w->next = (struct pending_call){
		    .set = true,
		    .id = f->hdr.call_id,
		    .flags = f->hdr.flags,
		    .len = m.len,
		    .fd = want_fds ? frame_take_fd(f, 0) : -1,
		};
		return 0;
	default:
		return worker_die(w, "unexpected message type %u from the daemon", f->hdr.type);
	}
}

/*
 * Receive and handle the frames waiting on the socket, without blocking, up
 * to a MSG_CALL: the frames behind it wait until the call is done, which
 * spares the recvmsg that would only say EAGAIN.
 */
static int worker_pump(struct corral_worker *w)
{
	struct frame f;
	int r;

	while (!w->dead && !w->next.set) {
		r = frame_recv(w->sock, &f);
		if (r == -EAGAIN || r == -EINTR)
			return 0;
		if (r == 0 || r == -ECONNRESET) {
			w->dead = -EPIPE;
			break;
		}
		if (r < 0)
			return worker_die(w, "bad frame from the daemon: %s", strerror(-r));
		worker_dispatch(w, &f); /* a violation sets w->dead */
		frame_close_fds(&f);
	}
	return w->dead;
}

/* Block until the socket is readable (or writable too, with POLLOUT), then handle the frames. */
static int worker_wait(struct corral_worker *w, short events)
{
	struct pollfd p = {.fd = w->sock, .events = POLLIN | events};

	if (w->dead)
		return w->dead;
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return worker_die(w, "poll: %s", strerror(errno));
	return worker_pump(w);
}

/* Send one frame, waiting while the socket is full (and still reading what arrives). */
static int worker_send(struct corral_worker *w, uint16_t type, uint32_t flags, uint64_t call_id,
		       const void *payload, size_t len, const int *fds, unsigned nfds)
{
	int r;

	for (;;) {
		if (w->dead)
			return w->dead;
		r = frame_send(w->sock, type, flags, call_id, payload, len, fds, nfds);
		if (r == 0)
			return 0;
		if (r == -EPIPE || r == -ECONNRESET) {
			w->dead = -EPIPE;
			return -EPIPE;
		}
		if (r != -EAGAIN && r != -EINTR && r != -ENOBUFS)
			return worker_die(w, "cannot send to the daemon: %s", strerror(-r));
		r = worker_wait(w, POLLOUT);
		if (r < 0)
			return r;
	}
}

/* Ring the daemon's doorbell. */
static void worker_doorbell(struct corral_worker *w)
{
	worker_send(w, MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0);
}

/* Monotonic clock in nanoseconds. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Tell the CPU we are spinning. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Ring the daemon for what it waits on: result bytes we published, payload
 * room we freed.  Owed before we spin, not only before we sleep: spinning
 * while the daemon sleeps for our doorbell only delays both.
 */
static void worker_pay_bells(struct corral_worker *w)
{
	bool bell = w->bell_owed;

	w->bell_owed = false;
	if (w->rx_freed) {
		w->rx_freed = 0;
		bell |= ring_consumer_wake_needed(&w->ring.rx);
	}
	if (bell)
		worker_doorbell(w);
}

/*
 * The ring was empty (rx) or full (tx): spin within the adaptive budget,
 * counted from *spin_start (0: starts now), then sleep until a doorbell.  The
 * caller retries its operation after each return of 0, and reports a spin that
 * paid with call_spin_hit().
 */
static int call_backoff(struct corral_call *c, bool rx, bool tx, uint64_t *spin_start)
{
	struct corral_worker *w = c->w;
	struct pollfd p;
	uint64_t t = now_ns();
	int r;

	if (*spin_start == 0) {
		worker_pay_bells(w);
		c->spin_budget = ring_spin_budget(&w->spin, rx ? &w->ring.rx : &w->ring.tx, rx);
		*spin_start = t;
	}
	if (t - *spin_start < c->spin_budget) {
		for (int i = 0; i < 32; i++)
			cpu_relax();
		return 0;
	}
	if (c->spin_budget > 0)
		ring_spin_done(&w->spin, false);
	*spin_start = 0;
	r = corral_call_wait_prepare(c, rx, tx, &p);
	if (r <= 0)
		return r;
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return worker_die(w, "poll: %s", strerror(errno));
	ring_spin_woken(&w->spin, rx ? &w->ring.rx : &w->ring.tx, rx);
	return corral_call_wait_finish(c, p.revents);
}

/* The ring moved while we were spinning: the spin paid. */
static void call_spin_hit(struct corral_call *c, uint64_t *spin_start)
{
	if (*spin_start != 0 && c->spin_budget > 0)
		ring_spin_done(&c->w->spin, true);
	*spin_start = 0;
}

/* Record a failure of the call's own I/O (the first one, and its message unless the handler set
 * one). */
__attribute__((format(printf, 3, 4))) static int call_set_err(struct corral_call *c, int err,
							      const char *fmt, ...)
{
	va_list ap;

	if (c->err == 0) {
		c->err = err;
		if (!c->failed) {
			va_start(ap, fmt);
			vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
			va_end(ap);
		}
	}
	return err;
}

int corral_call_fail(struct corral_call *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	c->failed = true;
	return -1;
}

uint64_t corral_call_len(const struct corral_call *c)
{
	return c->len;
}

uint64_t corral_call_remaining(const struct corral_call *c)
{
	return c->len - c->consumed;
}

uint64_t corral_call_written(const struct corral_call *c)
{
	return c->written;
}

int corral_call_payload_fd(const struct corral_call *c)
{
	return c->payload_fd;
}

/* Next chunk of a payload passed as an fd, through fd_buf. */
static int call_fd_peek(struct corral_call *c, const void **ret_ptr, size_t *ret_len)
{
	uint64_t left = c->len - c->consumed;
	size_t want = left < WORKER_FD_CHUNK ? (size_t)left : WORKER_FD_CHUNK;
	ssize_t n;

	if (c->err)
		return c->err;
	if (c->fd_off == c->fd_len) {
		if (!c->fd_buf && !(c->fd_buf = malloc(WORKER_FD_CHUNK)))
			return call_set_err(c, -ENOMEM, "out of memory");
		if (c->consumed > (uint64_t)INT64_MAX)
			return call_set_err(c, -EINVAL, "payload offset out of range");
		do
			n = pread(c->payload_fd, c->fd_buf, want, (off_t)c->consumed);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return call_set_err(c, -errno, "cannot read the payload fd: %s",
					    strerror(errno));
		if (n == 0)
			return call_set_err(c, -EIO,
					    "payload fd ends at %" PRIu64 " of %" PRIu64 " bytes",
					    c->consumed, c->len);
		c->fd_len = (size_t)n;
		c->fd_off = 0;
	}
	*ret_ptr = c->fd_buf + c->fd_off;
	*ret_len = c->fd_len - c->fd_off;
	c->peeked = *ret_len;
	return 1;
}

int corral_call_try_peek(struct corral_call *c, const void **ret_ptr, size_t *ret_len)
{
	struct corral_worker *w = c->w;
	uint64_t left = c->len - c->consumed;
	const void *p;
	size_t n;
	int r;

	*ret_ptr = NULL;
	*ret_len = 0;
	c->peeked = 0;
	if (w->dead)
		return w->dead;
	if (left == 0)
		return 0;
	if (c->payload_fd >= 0)
		return call_fd_peek(c, ret_ptr, ret_len);
	r = ring_peek(&w->ring.rx, &p, &n);
	if (r < 0)
		return worker_die(w, "the daemon corrupted the request ring");
	if (r == 0)
		return -EAGAIN;
	if (n > left)
		n = (size_t)left;
	*ret_ptr = p;
	*ret_len = n;
	c->peeked = n;
	return 1;
}

int corral_call_peek(struct corral_call *c, const void **ret_ptr, size_t *ret_len)
{
	uint64_t spin = 0;
	int r;

	for (;;) {
		r = corral_call_try_peek(c, ret_ptr, ret_len);
		if (r != -EAGAIN) {
			call_spin_hit(c, &spin);
			return r;
		}
		r = call_backoff(c, true, false, &spin);
		if (r < 0)
			return r;
	}
}

void corral_call_consume(struct corral_call *c, size_t n)
{
	struct ring *rx = &c->w->ring.rx;

	if (n > c->peeked)
		n = c->peeked;
	if (n == 0)
		return;
	c->peeked -= n;
	c->consumed += n;
	if (c->payload_fd >= 0) {
		c->fd_off += n;
		return;
	}
	ring_consume(rx, n);
	/* Hysteresis: a daemon waiting for room hears of it once a quarter of the ring
	 * is free (or before we block), not once per record. */
	c->w->rx_freed += n;
	if (c->w->rx_freed >= rx->cap / 4) {
		c->w->rx_freed = 0;
		if (ring_consumer_wake_needed(rx))
			worker_doorbell(c->w);
	}
}

ssize_t corral_call_read(struct corral_call *c, void *buf, size_t len)
{
	uint8_t *dst = buf;
	size_t done = 0, n;
	const void *p;
	int r;

	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (done < len) {
		r = corral_call_peek(c, &p, &n);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		if (n > len - done)
			n = len - done;
		memcpy(dst + done, p, n);
		corral_call_consume(c, n);
		done += n;
	}
	return (ssize_t)done;
}

int corral_call_payload(struct corral_call *c, const void **ret_ptr, size_t *ret_len)
{
	uint64_t left = c->len - c->consumed;
	const void *p;
	ssize_t got;
	size_t n;
	int r;

	*ret_ptr = NULL;
	*ret_len = 0;
	if (c->w->dead)
		return c->w->dead;
	if (left == 0) {
		*ret_ptr = "";
		return 0;
	}
	if (left > SSIZE_MAX)
		return -ENOMEM;
	r = corral_call_peek(c, &p, &n);
	if (r < 0)
		return r;
	if (n == left) {
		/* In place: keep the bytes until the call ends. */
		if (c->payload_fd >= 0)
			c->fd_off += n;
		else
			c->held = n;
		c->consumed += n;
		c->peeked = 0;
		*ret_ptr = p;
		*ret_len = n;
		return 0;
	}
	free(c->copy);
	c->copy = malloc((size_t)left);
	if (!c->copy)
		return -ENOMEM;
	got = corral_call_read(c, c->copy, (size_t)left);
	if (got < 0)
		return (int)got;
	*ret_ptr = c->copy;
	*ret_len = (size_t)got;
	return 0;
}

/* Bytes the output limit still allows. */
static uint64_t call_room(const struct corral_call *c)
{
	uint64_t max = c->w->max_output;

	return max == 0 ? UINT64_MAX : max - c->written;
}

/* Append to the result memfd (creating it on first use). */
static int call_fd_write(struct corral_call *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t off = c->written;
	ssize_t n;

	if (c->err)
		return c->err;
	if (c->out_fd < 0) {
		c->out_fd = memfd_create("corral-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (c->out_fd < 0)
			return call_set_err(c, -errno, "cannot create the result memfd: %s",
					    strerror(errno));
	}
	while (len > 0) {
		n = pwrite(c->out_fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return call_set_err(c, n < 0 ? -errno : -EIO,
					    "cannot write the result memfd: %s",
					    strerror(n < 0 ? errno : EIO));
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int corral_call_try_write(struct corral_call *c, const void *buf, size_t len, size_t *ret_written)
{
	struct corral_worker *w = c->w;
	size_t n;
	int r;

	*ret_written = 0;
	if (w->dead)
		return w->dead;
	if (c->too_large)
		return -EFBIG;
	if (len == 0)
		return 0;
	if (len > call_room(c)) {
		c->too_large = true;
		return -EFBIG;
	}
	if (c->flags & CALL_F_WANT_FD) {
		r = call_fd_write(c, buf, len);
		if (r < 0)
			return r;
		n = len;
	} else {
		r = ring_write(&w->ring.tx, buf, len, &n);
		if (r < 0)
			return worker_die(w, "the daemon corrupted the result ring");
		/* The doorbell waits: MSG_RESULT rings it anyway, or we ring before blocking. */
		if (n > 0 && ring_producer_wake_needed(&w->ring.tx))
			w->bell_owed = true;
	}
	c->written += n;
	*ret_written = n;
	return w->dead;
}

int corral_call_write(struct corral_call *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t spin = 0;
	size_t n;
	int r;

	while (len > 0) {
		r = corral_call_try_write(c, p, len, &n);
		if (r < 0)
			return r;
		p += n;
		len -= n;
		if (n > 0) {
			call_spin_hit(c, &spin);
			continue;
		}
		r = call_backoff(c, false, true, &spin);
		if (r < 0)
			return r;
	}
	return 0;
}

int corral_call_reserve(struct corral_call *c, size_t max, void **ret_ptr, size_t *ret_len)
{
	struct corral_worker *w = c->w;
	uint64_t spin = 0, room = call_room(c);
	void *p;
	size_t n;
	int r;

	*ret_ptr = NULL;
	*ret_len = 0;
	c->reserved = 0;
	if (w->dead)
		return w->dead;
	if (c->too_large)
		return -EFBIG;
	if (max == 0)
		return -EINVAL;
	if (room == 0) {
		c->too_large = true;
		return -EFBIG;
	}
	if (max > room)
		max = (size_t)room;
	if (c->flags & CALL_F_WANT_FD) {
		if (!c->stage && !(c->stage = malloc(WORKER_FD_CHUNK)))
			return -ENOMEM;
		c->reserved = max < WORKER_FD_CHUNK ? max : WORKER_FD_CHUNK;
		*ret_ptr = c->stage;
		*ret_len = c->reserved;
		return 0;
	}
	for (;;) {
		errno = 0;
		p = ring_reserve(&w->ring.tx, max, &n);
		if (p) {
			call_spin_hit(c, &spin);
			c->reserved = n;
			*ret_ptr = p;
			*ret_len = n;
			return 0;
		}
		if (errno == EPROTO)
			return worker_die(w, "the daemon corrupted the result ring");
		r = call_backoff(c, false, true, &spin);
		if (r < 0)
			return r;
	}
}

int corral_call_commit(struct corral_call *c, size_t len)
{
	struct corral_worker *w = c->w;
	size_t reserved = c->reserved;
	int r;

	c->reserved = 0;
	if (w->dead)
		return w->dead;
	if (reserved == 0)
		return len == 0 ? 0 : -EINVAL;
	if (len > reserved)
		len = reserved;
	if (c->flags & CALL_F_WANT_FD) {
		r = len ? call_fd_write(c, c->stage, len) : 0;
		if (r < 0)
			return r;
	} else {
		ring_commit(&w->ring.tx, len);
		if (len > 0 && ring_producer_wake_needed(&w->ring.tx))
			w->bell_owed = true;
	}
	c->written += len;
	return w->dead;
}

int corral_call_wait_prepare(struct corral_call *c, bool rx, bool tx, struct pollfd *ret_pfd)
{
	struct corral_worker *w = c->w;

	if (w->dead)
		return w->dead;
	/* About to block: the daemon must drain what we published and may refill what
	 * we freed; one doorbell tells of both rings. */
	worker_pay_bells(w);
	if (rx && !ring_consumer_prepare_sleep(&w->ring.rx))
		return 0;
	if (tx && !ring_producer_prepare_sleep(&w->ring.tx))
		return 0;
	*ret_pfd = (struct pollfd){.fd = w->sock, .events = POLLIN};
	return 1;
}

int corral_call_wait_finish(struct corral_call *c, short revents)
{
	if (revents == 0)
		return c->w->dead;
	return worker_pump(c->w);
}

/* Seal the result memfd (an empty one for an empty result) and rewind it for the reader. */
static int call_seal_result(struct corral_call *c)
{
	const int seals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;

	if (c->out_fd < 0 && call_fd_write(c, "", 0) < 0)
		return c->err;
	if (fcntl(c->out_fd, F_ADD_SEALS, seals) < 0 || lseek(c->out_fd, 0, SEEK_SET) < 0)
		return call_set_err(c, -errno, "cannot seal the result memfd: %s", strerror(errno));
	return 0;
}

/*
 * MSG_RESULT of a call that came through the ring: a FRAME record after the
 * result bytes, waiting for room like a write; the daemon hears of it only
 * when it sleeps on the ring (one doorbell per burst, not per call), or when
 * the result bytes already took its flag (owed).
 */
static void call_ring_result(struct corral_call *c, const void *payload, size_t len, bool owed)
{
	struct corral_worker *w = c->w;
	uint8_t rec[RING_FRAME_MAX];
	uint64_t spin = 0;
	long n = frame_build(rec, sizeof(rec), MSG_RESULT, 0, c->id, payload, len);
	int r;

	if (n < 0) {
		worker_die(w, "cannot encode MSG_RESULT");
		return;
	}
	w->bell_owed = owed; /* paid before any wait for room below */
	while (!w->dead) {
		r = ring_write_frame(&w->ring.tx, rec, (size_t)n);
		if (r < 0) {
			worker_die(w, "cannot write MSG_RESULT into the ring: %s", strerror(-r));
			return;
		}
		if (r > 0)
			break;
		if (call_backoff(c, false, true, &spin) < 0)
			return;
	}
	call_spin_hit(c, &spin);
	/* Owed: the daemon's flag was taken when the result bytes went in. */
	if (!w->dead && (ring_producer_wake_needed(&w->ring.tx) || w->bell_owed))
		worker_doorbell(w);
	w->bell_owed = false;
}

/* After the handler: discard the unread payload, send MSG_RESULT, free the call. */
static void call_finish(struct corral_call *c, int handler_ret)
{
	struct corral_worker *w = c->w;
	struct msg_result m = {.status = RESULT_OK, .message = ""};
	uint8_t buf[FRAME_MAX_PAYLOAD];
	uint32_t flags = 0;
	char limit[96];
	const void *p;
	bool owed;
	size_t n;
	long len;

	if (c->held > 0 && !w->dead)
		ring_consume(&w->ring.rx, c->held);
	w->rx_freed = 0;
	if (!w->dead && ring_consumer_wake_needed(&w->ring.rx))
		worker_doorbell(w);
	while (c->payload_fd < 0 && c->consumed < c->len && corral_call_peek(c, &p, &n) > 0)
		corral_call_consume(c, n);

	if (c->too_large) {
		snprintf(limit, sizeof(limit),
			 "result exceeds the output limit of %" PRIu64 " bytes", w->max_output);
		m.status = RESULT_TOO_LARGE;
		m.message = limit;
	} else if (handler_ret != 0 || c->err != 0 || c->failed) {
		m.status = RESULT_ERROR;
		m.message = c->msg[0] ? c->msg : "handler failed";
	} else if ((c->flags & CALL_F_WANT_FD) && call_seal_result(c) < 0) {
		m.status = RESULT_ERROR;
		m.message = c->msg;
	}
	if (m.status == RESULT_OK && (c->flags & CALL_F_WANT_FD)) {
		flags = RESULT_F_FD;
		m.len = c->written;
	} else {
		/* Ring bytes already sent count; the daemon drains and drops them. */
		m.len = (c->flags & CALL_F_WANT_FD) ? 0 : c->written;
	}
	len = msg_result_encode(buf, sizeof(buf), &m);
	owed = w->bell_owed;
	w->bell_owed = false; /* MSG_RESULT is the doorbell, or rings it */
	if (len >= 0 && !w->dead && c->ring)
		call_ring_result(c, buf, (size_t)len, owed);
	else if (len >= 0 && !w->dead)
		worker_send(w, MSG_RESULT, flags, c->id, buf, (size_t)len, &c->out_fd,
			    flags ? 1 : 0);

	if (c->payload_fd >= 0)
		close(c->payload_fd);
	if (c->out_fd >= 0)
		close(c->out_fd);
	free(c->fd_buf);
	free(c->stage);
	free(c->copy);
}

/*
 * The next call queued in the ring, parked in w->next: 1, 0 when there is
 * none, <0 when the daemon broke the protocol.  Its frame record is consumed
 * now, as the call starts: the daemon reads from the ring's tail which calls
 * a worker that died had begun.
 */
static int worker_ring_call(struct corral_worker *w)
{
	uint8_t rec[RING_FRAME_MAX];
	struct frame f;
	struct msg_call m;
	const void *p;
	uint32_t type;
	size_t n;
	int r;

	if (w->dead)
		return w->dead;
	w->data_ahead = false;
	r = ring_peek_rec(&w->ring.rx, &type, &p, &n);
	if (r <= 0)
		return r < 0 ? worker_die(w, "the daemon corrupted the request ring") : 0;
	if (type != RING_REC_FRAME) {
		/* The payload of a MSG_CALL still on its way on the socket (a daemon
		 * may write it first): wait for the frame. */
		w->data_ahead = true;
		return 0;
	}
	memcpy(rec, p, n); /* shared memory: copied once, then checked */
	if (frame_parse(&f, rec, n) < 0 || f.hdr.type != MSG_CALL || f.hdr.flags != 0 ||
	    msg_call_decode(f.payload, f.hdr.len, &m) < 0)
		return worker_die(w, "malformed MSG_CALL record in the ring");
	ring_consume(&w->ring.rx, n);
	if (ring_consumer_wake_needed(&w->ring.rx))
		worker_doorbell(w);
	w->next = (struct pending_call){
	    .set = true,
	    .id = f.hdr.call_id,
	    .len = m.len,
	    .fd = -1,
	    .ring = true,
	};
	return w->dead ? w->dead : 1;
}

/*
 * Nothing to do: tell the daemon we sleep on the request ring (its next call
 * rings the doorbell), then wait on the socket for it, MSG_STOP or a call
 * with an fd.
 */
static void worker_idle_wait(struct corral_worker *w)
{
	worker_pay_bells(w);
	if (w->data_ahead) {
		worker_wait(w, 0); /* its MSG_CALL comes on the socket */
		return;
	}
	if (w->dead || !ring_consumer_prepare_sleep(&w->ring.rx))
		return; /* a call arrived meanwhile */
	worker_wait(w, 0);
	ring_consumer_cancel_sleep(&w->ring.rx);
}

/* Run one parked call through the handler. */
static void worker_call(struct corral_worker *w, corral_handler_fn fn, void *arg)
{
	struct corral_call *c;
	int r;

	/* The message buffer makes the call too big for comfort on a handler's stack. */
	c = calloc(1, sizeof(*c));
	if (!c) {
		worker_die(w, "out of memory");
		return;
	}
	*c = (struct corral_call){
	    .w = w,
	    .id = w->next.id,
	    .flags = w->next.flags,
	    .len = w->next.len,
	    .payload_fd = w->next.fd,
	    .out_fd = -1,
	    .ring = w->next.ring,
	};
	w->next.set = false;
	w->in_call = true;
	r = fn(c, arg);
	call_finish(c, r);
	w->in_call = false;
	free(c);
}

/* Check the fds corrald hands over, map the ring, say hello. */
static int worker_start(struct corral_worker *w)
{
	struct msg_hello h = {.version = PROTO_VERSION, .pid = (uint32_t)getpid()};
	uint8_t buf[64];
	socklen_t sl = sizeof(int);
	int type = 0, r;
	long len;

	if (getsockopt(w->sock, SOL_SOCKET, SO_TYPE, &type, &sl) < 0 || type != SOCK_SEQPACKET)
		return worker_die(w,
				  "fd %d is not a SOCK_SEQPACKET socket: "
				  "workers are started by corrald",
				  w->sock);
	fcntl(w->sock, F_SETFD, FD_CLOEXEC);
	r = ring_area_attach(WORKER_RING_FD, &w->ring);
	if (r < 0)
		return worker_die(w, "cannot attach the ring on fd %d: %s", WORKER_RING_FD,
				  strerror(-r));
	/* The mapping outlives the fd; nobody else needs it. */
	close(WORKER_RING_FD);
	len = msg_hello_encode(buf, sizeof(buf), &h);
	if (len < 0)
		return worker_die(w, "cannot encode MSG_HELLO");
	return worker_send(w, MSG_HELLO, HELLO_F_RING_CALLS, 0, buf, (size_t)len, NULL, 0);
}

/* The seccomp mode CORRAL_SECCOMP asks for; an unknown one kills the channel. */
static enum corral_seccomp worker_seccomp_env(struct corral_worker *w)
{
	const char *v = getenv("CORRAL_SECCOMP");

	if (!v || !*v)
		return CORRAL_SECCOMP_NONE;
	if (strcmp(v, "strict") == 0)
		return CORRAL_SECCOMP_STRICT;
	worker_die(w, "CORRAL_SECCOMP=%.64s: unknown seccomp mode (have strict)", v);
	return CORRAL_SECCOMP_NONE;
}

int corral_worker_run_seccomp(corral_handler_fn fn, void *arg,
			      const struct corral_worker_options *opts, enum corral_seccomp seccomp)
{
	struct corral_worker w = {
	    .sock = WORKER_SOCK_FD,
	    .max_output = opts ? opts->max_output : 0,
	    .next.fd = -1,
	};
	int r;

	signal(SIGPIPE, SIG_IGN);
	worker_pid1_signals();
	ring_spin_init(&w.spin);
	if (seccomp == CORRAL_SECCOMP_ENV)
		seccomp = worker_seccomp_env(&w);
	if (!w.dead)
		worker_start(&w);
	/* Never serve a call unconfined when confinement was asked for. */
	if (!w.dead && seccomp == CORRAL_SECCOMP_STRICT && (r = worker_seccomp_strict()) < 0)
		worker_die(&w, "cannot install the strict seccomp filter: %s", strerror(-r));
	while (!w.dead) {
		if (w.next.set || worker_ring_call(&w) > 0)
			worker_call(&w, fn, arg);
		else if (w.stop)
			break;
		else
			worker_idle_wait(&w);
	}
	if (w.next.fd >= 0)
		close(w.next.fd);
	ring_area_detach(&w.ring);
	if (w.dead == -EPROTO) {
		fprintf(stderr, "%s: %s\n", program_invocation_short_name, w.why);
		return CORRAL_WORKER_EXIT_FAILURE;
	}
	return 0;
}

int corral_worker_run_opts(corral_handler_fn fn, void *arg,
			   const struct corral_worker_options *opts)
{
	return corral_worker_run_seccomp(fn, arg, opts, CORRAL_SECCOMP_ENV);
}

int corral_worker_run(corral_handler_fn fn, void *arg)
{
	return corral_worker_run_opts(fn, arg, NULL);
}
