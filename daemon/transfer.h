/*
 * transfer.h - moving a call's bytes and fds through a worker's ring and
 * channel: payload chunking, result draining, flow control by doorbells.
 */
#ifndef CORRAL_TRANSFER_H
#define CORRAL_TRANSFER_H

struct call;
struct daemon;
struct frame;
struct worker;

/* What a transfer step found. */
enum xfer {
	XFER_OK,
	XFER_RESULT,	/* a valid result completed the worker's current call */
	XFER_VIOLATION, /* the worker broke the protocol (why says how) */
	XFER_TOO_LARGE, /* the result outgrew limits.output_kb */
	XFER_NOMEM,	/* we cannot hold the result */
};

/* Start call c on worker w: payload into the ring (or its fd), then MSG_CALL; <0 on failure. */
int transfer_start(struct worker *w, struct call *c);
/* Queue call c in busy worker w's ring behind its current call, whole (payload
 * included) or not at all: 1 queued, 0 no room now, <0 the ring is corrupt. */
int transfer_queue(struct worker *w, struct call *c);
/* A doorbell: drain results up to the first result record (XFER_RESULT: the
 * caller completes w->call and calls again), continue the payload. */
enum xfer transfer_on_doorbell(struct worker *w, const char **why);
/* MSG_RESULT f: check it against what arrived; XFER_RESULT leaves the result in w->call. */
enum xfer transfer_on_result(struct worker *w, struct frame *f, const char **why);
/* Move c's in-memory result to a memfd; <0 on failure. */
int transfer_spill(struct call *c);
/* Ring w now if it sleeps on its requests ring (a doorbell owed on d->wakes); <0 on failure. */
int transfer_ring(struct worker *w);
/* w goes away: drop the doorbell it is owed. */
void transfer_wake_forget(struct worker *w);
/* Seal a result memfd against write, grow and shrink, and rewind it; <0 on failure. */
int transfer_seal(int fd);

#endif
