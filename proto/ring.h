/*
 * ring.h - the memfd shared ring: two single-producer/single-consumer byte
 * rings in one sealed memfd, shared by the daemon and one worker.
 *
 * Memory layout of the memfd (all offsets from the start of the mapping):
 *
 *   0      +--------------------------------------------------------------+
 *          | struct ring_shm_hdr: magic, version, cap[0], cap[1]           |  written once
 *   64     | ring_ctl[0] (daemon -> worker):                              |  by the daemon
 *          |   line A: head, prod_waiting, cons_woken_ns, prod_cpu        |
 *          |   line B: tail, cons_waiting, prod_woken_ns, cons_cpu        |
 *   192    | ring_ctl[1] (worker -> daemon): same shape                    |
 *   4096   +--------------------------------------------------------------+
 *          | data of ring 0: cap[0] bytes (power of two)                   |
 *          +--------------------------------------------------------------+
 *          | data of ring 1: cap[1] bytes (power of two)                   |
 *          +--------------------------------------------------------------+
 *
 * head and tail are free-running u64 byte counters; head - tail <= cap; both
 * multiples of RING_ALIGN.  A record is an 8-byte header {u32 len, u32 type}
 * followed by len bytes, padded to RING_ALIGN.  A record never wraps: when it
 * does not fit before the end, the producer fills the rest with a PAD record
 * and starts again at offset 0.  Since every index and record size is a
 * multiple of RING_ALIGN (== RING_REC_HDR), at least a record header always
 * fits before the end, so a PAD record can always be written there.
 * DATA records written by ring.c are never empty; an empty DATA record
 * received from the peer is skipped like a PAD record.  A FRAME record holds
 * one whole frame (proto.h's header and payload, no fds): the calls and
 * results that travel in the ring; it is written all at once or not at all,
 * and the DATA-only reads (ring_peek, ring_read) refuse one with -EPROTO.
 *
 * Trust: the peer is hostile.  Each side keeps its own index in private memory
 * and only publishes it; it reads the other side's index once per operation,
 * copies it, and validates (monotonic, distance <= cap, aligned).  A record
 * header is copied once and validated (type known, len <= readable, fits
 * before the end) before use.  Any violation returns -EPROTO and the caller
 * kills the peer.  No lock is shared.
 *
 * Sleep/wake (doorbell) protocol, race-free with seq_cst fences:
 *
 *   consumer, ring empty:                 producer, after publishing head:
 *     store cons_waiting = 1                fence(seq_cst)
 *     fence(seq_cst)                        if exchange(cons_waiting, 0) == 1:
 *     reload head: data? clear flag, go on      send MSG_DOORBELL
 *     else sleep on the socket (poll)
 *
 * Either the consumer sees the new head, or the producer sees the flag: never
 * neither.  The same handshake runs the other way when the ring is full
 * (prod_waiting, set by the producer, exchanged by the consumer after it
 * frees space).  A busy stream costs no syscall per record.
 *
 * The waiting flag says how the sleeper wants to be woken: 1 (RING_SLEEP_DOORBELL)
 * by a MSG_DOORBELL frame on the socket, 2 (RING_SLEEP_FUTEX) by FUTEX_WAKE on
 * the flag word itself, which costs less than a frame where the sleeper has
 * nothing else to wait for.  The *_wake_needed() calls do the futex wake
 * themselves and return true only when a doorbell frame is owed, so a side
 * that knows nothing of futexes (the daemon's event loop) wakes both kinds.
 * Any other non-zero value is taken as 1.
 *
 * Wake cost and CPU (advisory, never trusted for more than a bounded spin):
 * the waker stamps CLOCK_MONOTONIC into the sleeper's *_woken_ns just before
 * clearing its flag, so the sleeper learns what a sleep/wake costs on this
 * machine; each side publishes the CPU it last ran on in *_cpu (the CPU number
 * plus one, 0 when unknown) with every index it publishes.  The new fields sit
 * in the lines' former padding, zero from an older peer (version 1 still).
 * struct ring_spin turns both into how long to spin before sleeping: never
 * longer than a wake costs, never while the peer runs on our CPU, less after
 * spins that did not pay.
 */
#ifndef CORRAL_RING_H
#define CORRAL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAGIC    0x6c72726fu /* "orrl" */
#define RING_VERSION  1u
#define RING_ALIGN    8u
#define RING_REC_HDR  8u
#define RING_HDR_SIZE 4096u
#define RING_MIN_CAP  4096u
#define RING_MAX_CAP  (1u << 30)

enum ring_rec_type {
	RING_REC_DATA = 1,
	RING_REC_PAD = 2,
	RING_REC_FRAME = 3,
};

/* The largest FRAME record's body (a frame header and its payload). */
#define RING_FRAME_MAX 4120u

/* The shared header at offset 0 of the memfd; written once by the daemon. */
struct ring_shm_hdr {
	uint32_t magic;	  /* RING_MAGIC */
	uint32_t version; /* RING_VERSION */
	uint32_t cap[2];  /* [0]: daemon -> worker, [1]: worker -> daemon */
};

/*
 * The shared control block of one ring (128 bytes; ring i at offset 64 + 128 * i).
 * Line A is written by the producer, line B by the consumer, except for the
 * exchange that clears the other side's waiting flag.
 */
struct ring_ctl {
	_Alignas(64) _Atomic uint64_t head; /* line A: bytes ever produced */
	_Atomic uint32_t prod_waiting;	    /* producer sleeps on a full ring */
	_Atomic uint32_t prod_cpu;	    /* advisory: producer's last CPU + 1, 0 unknown */
	_Atomic uint64_t cons_woken_ns;	    /* advisory: when the producer last woke the consumer */
	_Alignas(64) _Atomic uint64_t tail; /* line B: bytes ever consumed (released) */
	_Atomic uint32_t cons_waiting;	    /* consumer sleeps on an empty ring */
	_Atomic uint32_t cons_cpu;	    /* advisory: consumer's last CPU + 1, 0 unknown */
	_Atomic uint64_t prod_woken_ns;	    /* advisory: when the consumer last woke the producer */
};

/* Values of a waiting flag: how the sleeper wants to be woken. */
enum ring_sleep {
	RING_SLEEP_DOORBELL = 1, /* a MSG_DOORBELL frame on the socket */
	RING_SLEEP_FUTEX = 2,	 /* FUTEX_WAKE on the flag word */
};

/* Bounds of the adaptive spin (ns). */
#define RING_SPIN_MAX_NS     50000u /* never spin longer, whatever a wake costs */
#define RING_SPIN_DEFAULT_NS 5000u  /* before the first wake was measured */
#define RING_SPIN_PROBE	     64u    /* waits without spinning before trying again */

/*
 * Adaptive spin state, private to one waiting side (zero it, then
 * ring_spin_init).  The budget follows the measured wake cost (an EWMA of the
 * latency from the peer's stamp to our running again) and halves after each
 * spin that ended in a sleep anyway; at zero it stays off for RING_SPIN_PROBE
 * waits, then probes again.
 */
struct ring_spin {
	uint64_t wake_ns;   /* EWMA of the measured wake latency; 0 unmeasured */
	uint64_t budget_ns; /* current bound of one spin */
	uint32_t off;	    /* waits left while spinning is off */
	bool single_cpu;    /* one CPU online: never spin */
	uint64_t spins, spin_hits, sleeps, shared_cpu; /* statistics */
};

#define RING_CTL_OFFSET(i) (64u + 128u * (i))

/* One direction's view, private to one side of one ring. */
struct ring {
	void *ctl;	/* struct ring_ctl in shared memory */
	uint8_t *data;	/* cap bytes in shared memory */
	uint64_t cap;	/* from our own copy, never re-read from shared memory */
	uint64_t head;	/* producer: our head; consumer: last validated head */
	uint64_t tail;	/* consumer: our tail; producer: last validated tail */
	uint64_t roff;	/* consumer: bytes of the current record already read;
			   producer: bytes reserved by ring_reserve() */
	uint64_t rlen;	/* consumer: length of the current record, copied once (added) */
	uint32_t rtype; /* consumer: type of the current record (DATA or FRAME) */
};

/* The whole memfd as mapped by one side. */
struct ring_area {
	void *base;
	size_t size;
	struct ring tx; /* we produce */
	struct ring rx; /* we consume */
};

/* Bytes a memfd needs for the two capacities. */
size_t ring_area_size(uint32_t cap_to_worker, uint32_t cap_from_worker);

/*
 * Daemon side: create a memfd (MFD_CLOEXEC|MFD_ALLOW_SEALING), size it, seal it
 * against shrink, grow and further sealing, map it, write the header.  Caps are
 * powers of two in [RING_MIN_CAP, RING_MAX_CAP].  tx is daemon -> worker.
 * Returns 0 with *ret_fd and *ret filled, or -errno (nothing left behind).
 */
int ring_area_create(uint32_t cap_to_worker, uint32_t cap_from_worker, int *ret_fd,
		     struct ring_area *ret);

/*
 * Worker side: check fd's seals (shrink and grow must be set) and size, map it,
 * copy and validate the header once.  tx is worker -> daemon.  Returns 0 or -errno.
 */
int ring_area_attach(int fd, struct ring_area *ret);

/* Unmap; safe on a zeroed or already-detached area. */
void ring_area_detach(struct ring_area *a);

/* ---- producer ---- */

/*
 * Copy up to len bytes into the ring as one or more DATA records (each at most
 * what fits contiguously).  *ret_written gets the bytes taken (0 when full).
 * Returns 0, or -EPROTO when the consumer's tail is corrupt.
 */
int ring_write(struct ring *r, const void *buf, size_t len, size_t *ret_written);

/*
 * Zero-copy: reserve a contiguous region for one DATA record of at least 1 and
 * at most max bytes; returns its address and size in *ret_len, NULL when full
 * (*ret_len = 0) or corrupt (*ret_len = 0, errno = EPROTO).  Then ring_commit()
 * with the bytes actually filled (<= the reserved size).
 */
void *ring_reserve(struct ring *r, size_t max, size_t *ret_len);
void ring_commit(struct ring *r, size_t len);

/*
 * Write one FRAME record of len bytes (<= RING_FRAME_MAX), whole or not at
 * all, and publish it.  Returns 1 written, 0 no room now (nothing written), or
 * -EPROTO (corrupt tail), -EMSGSIZE (len 0, too long for the ring or the cap).
 */
int ring_write_frame(struct ring *r, const void *buf, size_t len);

/*
 * Free bytes of the ring as of the consumer's tail now (reloaded and
 * validated; -EPROTO when corrupt).  A payload of n bytes written with
 * ring_write() after a FRAME record of f bytes fits when this is at least
 * RING_FIT(f, n).
 */
long ring_producer_room(struct ring *r);
#define RING_FIT(f, n) (2u * ((f) + 2u * RING_REC_HDR) + (n) + 6u * RING_REC_HDR)

/* After publishing: true when the consumer sleeps and needs a doorbell. */
bool ring_producer_wake_needed(struct ring *r);

/* Ring full: announce we sleep; false means space appeared (flag cleared, retry). */
bool ring_producer_prepare_sleep(struct ring *r);

/* ---- consumer ---- */

/*
 * The unread part of the next DATA record, in place: 1 with *ret_ptr and
 * *ret_len, 0 when empty, -EPROTO when corrupt.  PAD records are skipped.
 * Peeking again without consuming returns the same bytes.  The pointer stays
 * valid until ring_consume()/ring_read() release the record; the bytes are in
 * memory the peer can still scribble on, so copy before validating them.
 */
int ring_peek(struct ring *r, const void **ret_ptr, size_t *ret_len);

/*
 * Mark n bytes of the peeked record read (n is cut to what ring_peek returned;
 * 0 is a no-op).  Consuming part of a record keeps it: the next ring_peek
 * returns the rest.  Once its last byte is consumed the record is released and
 * the new tail published; then call ring_consumer_wake_needed().
 */
void ring_consume(struct ring *r, size_t n);

/*
 * The unread part of the next record of any type but PAD, in place: 1 with
 * *ret_type (RING_REC_DATA or RING_REC_FRAME), *ret_ptr and *ret_len; 0 when
 * empty, -EPROTO when corrupt.  Release it with ring_consume() (a FRAME whole:
 * n = its length).  The same caveat as ring_peek: copy, then validate.
 */
int ring_peek_rec(struct ring *r, uint32_t *ret_type, const void **ret_ptr, size_t *ret_len);

/*
 * Copy up to len bytes across records (a byte stream: record boundaries are
 * not preserved); returns bytes copied (0 empty) or -EPROTO.  Publishes the
 * tail once at the end.
 */
long ring_read(struct ring *r, void *buf, size_t len);

/* After consuming: true when the producer sleeps on a full ring and needs a doorbell. */
bool ring_consumer_wake_needed(struct ring *r);

/* Ring empty: announce we sleep; false means data appeared (flag cleared, retry). */
bool ring_consumer_prepare_sleep(struct ring *r);

/* ---- futex sleep, adaptive spin ---- */

/*
 * As ring_*_prepare_sleep(), announcing how we sleep (RING_SLEEP_DOORBELL is
 * exactly the calls above).  After true, sleep: on the socket for a doorbell,
 * or in ring_*_futex_wait() for a futex.
 */
bool ring_producer_prepare_sleep_how(struct ring *r, enum ring_sleep how);
bool ring_consumer_prepare_sleep_how(struct ring *r, enum ring_sleep how);

/*
 * Sleep on our futex flag until the peer clears it, at most timeout_ms (< 0:
 * no limit).  Returns 0 (woken, or the flag was already clear), -ETIMEDOUT or
 * -EINTR; the flag stays set on those two (the peer may still wake us).
 * Either way look at the ring again.
 */
int ring_producer_futex_wait(struct ring *r, int timeout_ms);
int ring_consumer_futex_wait(struct ring *r, int timeout_ms);

/* Give up a futex sleep announced before (timeout, signal): clear our flag. */
void ring_producer_cancel_sleep(struct ring *r);
void ring_consumer_cancel_sleep(struct ring *r);

/* The CPU we run on (from rseq, no syscall), or -1 when unknown. */
int ring_current_cpu(void);

/* Fresh adaptive spin state (spinning off for good on a single CPU). */
void ring_spin_init(struct ring_spin *s);

/*
 * About to wait on r (as its consumer when consumer, else its producer):
 * publish our CPU and return how many ns to spin before sleeping; 0 when the
 * peer last ran on our CPU, on a single CPU, or while adaptive spinning is off.
 */
uint64_t ring_spin_budget(struct ring_spin *s, struct ring *r, bool consumer);

/* A spin ended: hit when the ring moved before the budget ran out. */
void ring_spin_done(struct ring_spin *s, bool hit);

/* We slept and were woken: fold the peer's wake stamp into the wake cost. */
void ring_spin_woken(struct ring_spin *s, struct ring *r, bool consumer);

#endif
