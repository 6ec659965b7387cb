/*
 * transfer.c - a call's bytes and fds between the daemon and its worker: the
 * payload written into the ring in chunks as room frees up, the result
 * drained from the ring (in memory up to the inline limit, then in a memfd),
 * doorbells both ways for flow control (see proto/ring.h), and the result
 * frame checked against what arrived.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"
#include "server.h"
#include "worker.h"

/* Results up to this size stay in memory and may go inline; larger ones spill to a memfd. */
#define INLINE_RESULT_MAX (LINE_MAX_BYTES)

/* Ring the worker's doorbell. */
static int transfer_doorbell(struct worker *w)
{
	if (w->reaped)
		return 0; /* reading what it sent before it exited: nobody to wake */
	int r = worker_send(w, MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0);
	/* A full socket holds doorbells enough; a closed one means the worker is
	 * going (killed, crashed): its exit is on the way, and the reap answers
	 * its calls (worker_crashed), not a protocol violation. */
	return r == -EAGAIN || r == -EPIPE || r == -ECONNRESET ? 0 : r;
}

/* Write all of fd from buf; <0 on failure. */
static int write_all(int fd, const uint8_t *buf, size_t n)
{
	while (n) {
		ssize_t k = write(fd, buf, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * Write as much pending payload into the ring as fits; -1 on a fault.  bell:
 * ring the worker when it waits for bytes (false when MSG_CALL follows anyway).
 */
static int transfer_tx(struct worker *w, bool bell)
{
	struct call *c = w->call;
	for (;;) {
		if (!c || c->payload_off >= c->payload_len || c->payload_fd >= 0)
			return 0;
		size_t n = 0;
		int r = ring_write(&w->ring.tx, c->payload + c->payload_off,
				   c->payload_len - c->payload_off, &n);
		if (r < 0)
			return -1;
		c->payload_off += n;
		if (n > 0 && bell && ring_producer_wake_needed(&w->ring.tx) &&
		    transfer_doorbell(w) < 0)
			return -1;
		if (c->payload_off >= c->payload_len)
			return 0;
		if (n == 0 && ring_producer_prepare_sleep(&w->ring.tx))
			return 0; /* the worker rings when it has made room */
	}
}

/* Move c's in-memory result to a memfd and continue there. */
int transfer_spill(struct call *c)
{
	int fd = memfd_create("corral-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	if (write_all(fd, c->res, c->res_len) < 0) {
		close(fd);
		return -1;
	}
	free(c->res);
	c->res = NULL;
	c->res_len = c->res_cap = 0;
	c->res_memfd = fd;
	return 0;
}

/* Append result bytes (bounded by output_kb); -1 when out of memory or disk. */
static int transfer_append(struct call *c, const void *p, size_t n)
{
	uint64_t limit = c->type->cfg->limits.output_kb * 1024u;
	c->res_total += n;
	if (c->res_too_large || c->res_total > limit) {
		c->res_too_large = true;
		return 0;
	}
	if (c->res_memfd < 0 && c->res_len + n > INLINE_RESULT_MAX && transfer_spill(c) < 0)
		return -1;
	if (c->res_memfd >= 0)
		return write_all(c->res_memfd, p, n);
	if (c->res_len + n > c->res_cap) {
		size_t cap = c->res_cap ? c->res_cap : 4096;
		while (cap < c->res_len + n)
			cap *= 2;
		uint8_t *r = realloc(c->res, cap);
		if (!r)
			return -1;
		c->res = r;
		c->res_cap = cap;
	}
	memcpy(c->res + c->res_len, p, n);
	c->res_len += n;
	return 0;
}

static enum xfer result_apply(struct worker *w, struct call *c, const struct frame_hdr *hdr,
			      const struct msg_result *res, const char **why);

/* A MSG_RESULT record from the ring (n bytes at p): check it, apply it to w's current call. */
static enum xfer transfer_ring_result(struct worker *w, const void *p, size_t n, const char **why)
{
	uint8_t rec[RING_FRAME_MAX];
	struct frame f;
	struct msg_result res;
	struct call *c = w->call;

	memcpy(rec, p, n); /* shared memory: copied once, then checked */
	if (frame_parse(&f, rec, n) < 0 || f.hdr.type != MSG_RESULT || f.hdr.flags != 0 ||
	    msg_result_decode(f.payload, f.hdr.len, &res) < 0) {
		*why = "malformed result record";
		return XFER_VIOLATION;
	}
	if (!c || !c->ring) {
		*why = "a result record for no call in the ring";
		return XFER_VIOLATION;
	}
	ring_consume(&w->ring.rx, n);
	return result_apply(w, c, &f.hdr, &res, why);
}

/*
 * Drain the worker's ring into its current call, up to a result record:
 * XFER_RESULT when one completed the call (left in w->call), XFER_OK when the
 * ring is empty (and we sleep on it: the worker rings when it adds more).
 */
static enum xfer transfer_rx(struct worker *w, const char **why)
{
	for (;;) {
		const void *p;
		size_t n;
		uint32_t type;
		bool any = false;
		int r;
		while ((r = ring_peek_rec(&w->ring.rx, &type, &p, &n)) == 1) {
			if (type == RING_REC_FRAME) {
				enum xfer x = transfer_ring_result(w, p, n, why);
				if (x == XFER_RESULT && ring_consumer_wake_needed(&w->ring.rx) &&
				    transfer_doorbell(w) < 0) {
					*why = "corrupt ring";
					return XFER_VIOLATION;
				}
				return x;
			}
			struct call *c = w->call;
			if (!c) {
				*why = "result bytes with no call to carry them";
				return XFER_VIOLATION;
			}
			if (!c->answered && transfer_append(c, p, n) < 0)
				c->res_oom = true;
			ring_consume(&w->ring.rx, n);
			any = true;
			/* Past output_kb: stop here (a worker streaming without end must
			 * not hold the loop); the call is too_large. */
			if (c->res_too_large && !c->answered)
				return XFER_TOO_LARGE;
		}
		if (r < 0 ||
		    (any && ring_consumer_wake_needed(&w->ring.rx) && transfer_doorbell(w) < 0)) {
			*why = "corrupt ring";
			return XFER_VIOLATION;
		}
		if (ring_consumer_prepare_sleep(&w->ring.rx))
			return XFER_OK;
	}
}

/* A doorbell: drain results, continue the payload. */
enum xfer transfer_on_doorbell(struct worker *w, const char **why)
{
	enum xfer r = transfer_rx(w, why);
	if (r != XFER_OK)
		return r; /* XFER_RESULT: the caller completes the call, then comes back */
	if (transfer_tx(w, true) < 0) {
		*why = "corrupt ring";
		return XFER_VIOLATION;
	}
	if (w->call && w->call->res_oom)
		return XFER_NOMEM; /* we cannot hold its result: the call fails now */
	return XFER_OK;
}

/* Is fd a memfd sealed against write, grow and shrink, of size len? */
static bool result_fd_ok(int fd, uint64_t len)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	unsigned need = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
	if (seals < 0 || ((unsigned)seals & need) != need)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len)
		return false;
	return true;
}

/* Seal a result memfd and rewind it. */
int transfer_seal(int fd)
{
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		return -1;
	return lseek(fd, 0, SEEK_SET) < 0 ? -1 : 0;
}

/* The client gets an open file of its own (offset included), not the worker's; -1 on failure. */
static int reopen_result(int fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* A result (frame header hdr, message res) for call c: check it against what arrived. */
static enum xfer result_apply(struct worker *w, struct call *c, const struct frame_hdr *hdr,
			      const struct msg_result *res, const char **why)
{
	(void)w;
	if (hdr->call_id != c->seq) {
		*why = "malformed result";
		return XFER_VIOLATION;
	}
	if (c->payload_fd < 0 && c->payload_off < c->payload_len) {
		*why = "result before the whole payload was read";
		return XFER_VIOLATION;
	}
	if (c->res_total != res->len && !(hdr->flags & RESULT_F_FD)) {
		*why = "result length differs from the bytes in the ring";
		return XFER_VIOLATION;
	}
	c->res_status = (int)res->status;
	if (res->status == RESULT_ERROR && !c->answered)
		c->res_msg =
		    strdup(res->message && *res->message ? res->message : "handler failed");
	return XFER_RESULT;
}

/* MSG_RESULT: check it against what arrived; the result is left in the call. */
enum xfer transfer_on_result(struct worker *w, struct frame *f, const char **why)
{
	struct call *c = w->call;
	struct msg_result res;

	if (c->ring || f->hdr.call_id != c->seq ||
	    msg_result_decode(f->payload, f->hdr.len, &res) < 0 ||
	    (f->hdr.flags & ~RESULT_F_MASK) ||
	    ((f->hdr.flags & RESULT_F_FD) ? f->nfds != 1 : f->nfds != 0)) {
		*why = "malformed result";
		return XFER_VIOLATION;
	}
	if (c->payload_fd < 0 && c->payload_off < c->payload_len) {
		*why = "result before the whole payload was read";
		return XFER_VIOLATION;
	}
	enum xfer r = transfer_rx(w, why);
	if (r != XFER_OK)
		return r == XFER_RESULT ? XFER_VIOLATION : r;
	if (f->hdr.flags & RESULT_F_FD) {
		if (!c->want_fd) {
			*why = "a result fd for a call that asked for none";
			return XFER_VIOLATION;
		}
		if (c->res_total != 0 || !result_fd_ok(f->fds[0], res.len)) {
			*why = "result fd is not a sealed memfd of its length";
			return XFER_VIOLATION;
		}
		c->res_fd = reopen_result(f->fds[0]);
		if (c->res_fd < 0) {
			*why = "cannot reopen the result fd";
			return XFER_VIOLATION;
		}
		c->res_total = res.len;
	}
	return result_apply(w, c, &f->hdr, &res, why);
}

/* Write c's MSG_CALL as a ring record; its end position in *rec_end.  1, 0 no room, <0 corrupt. */
static int transfer_call_record(struct worker *w, struct call *c)
{
	uint8_t buf[64], rec[128];
	struct msg_call mc = {.len = c->payload_len};
	long len = msg_call_encode(buf, sizeof(buf), &mc);
	long n =
	    len < 0 ? len : frame_build(rec, sizeof(rec), MSG_CALL, 0, c->seq, buf, (size_t)len);
	if (n < 0)
		return -1;
	int r = ring_write_frame(&w->ring.tx, rec, (size_t)n);
	if (r > 0)
		c->rec_end = w->ring.tx.head;
	return r;
}

int transfer_ring(struct worker *w)
{
	return ring_producer_wake_needed(&w->ring.tx) ? transfer_doorbell(w) : 0;
}

/*
 * Ring the worker when it sleeps on the requests ring; <0 on failure.  While
 * wakes are held (a callback that may queue many calls: a client's pipelined
 * lines, a worker's burst of results), the worker goes on d->wakes instead and
 * is rung once when the callback ends (worker_wakes_flush): one doorbell per
 * burst, not one per call the worker happened to finish before the next came.
 */
static int transfer_wake(struct worker *w)
{
	struct daemon *d = w->d;
	if (d->wake_hold) {
		if (!w->wake_owed) {
			w->wake_owed = true;
			TAILQ_INSERT_TAIL(&d->wakes, w, wentry);
		}
		return 0;
	}
	return transfer_ring(w);
}

void transfer_wake_forget(struct worker *w)
{
	if (w->wake_owed) {
		TAILQ_REMOVE(&w->d->wakes, w, wentry);
		w->wake_owed = false;
	}
}

/* Queue call c in the ring of busy worker w, behind its current call: whole or not at all. */
int transfer_queue(struct worker *w, struct call *c)
{
	long room = ring_producer_room(&w->ring.tx);
	size_t n = 0;

	if (room < 0)
		return -1;
	if ((uint64_t)room < RING_FIT(64u, (uint64_t)c->payload_len))
		return 0;
	int r = transfer_call_record(w, c);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	c->ring = true;
	if (c->payload_len > 0 &&
	    (ring_write(&w->ring.tx, c->payload, c->payload_len, &n) < 0 || n != c->payload_len))
		return -1; /* cannot be: it fit; the worker corrupted the ring */
	c->payload_off = c->payload_len;
	return transfer_wake(w) < 0 ? -1 : 1;
}

/* Start call c on worker w: payload into the ring (or its fd), then MSG_CALL. */
int transfer_start(struct worker *w, struct call *c)
{
	uint8_t buf[64];
	struct msg_call mc;
	uint32_t flags = 0;
	int fds[1];
	unsigned nfds = 0;
	const char *why;

	if (w->ring_calls && c->payload_fd < 0 && !c->want_fd) {
		/* Through the ring: MSG_CALL as a record, the payload behind it. */
		if (transfer_call_record(w, c) <= 0)
			return -1;
		c->ring = true;
		if (transfer_tx(w, false) < 0 || transfer_rx(w, &why) != XFER_OK)
			return -1;
		return transfer_wake(w);
	}
	if (c->payload_fd >= 0) {
		struct stat st;
		if (fstat(c->payload_fd, &st) < 0)
			return -1;
		mc.len = (uint64_t)st.st_size;
		flags = CALL_F_PAYLOAD_FD | CALL_F_WANT_FD;
		fds[0] = c->payload_fd;
		nfds = 1;
	} else {
		mc.len = c->payload_len;
		if (transfer_tx(w, false) < 0)
			return -1;
	}
	/* Announce that we wait for result bytes before the worker can produce any:
	 * its first chunk then rings our doorbell (see ring.h). */
	if (transfer_rx(w, &why) != XFER_OK)
		return -1;
	long len = msg_call_encode(buf, sizeof(buf), &mc);
	if (worker_send(w, MSG_CALL, flags, c->seq, buf, (size_t)len, fds, nfds) < 0)
		return -1;
	if (c->payload_fd >= 0) {
		/* The worker holds its own copy of the fd now. */
		close(c->payload_fd);
		c->payload_fd = -1;
	}
	return 0;
}
