/*
 * proto.h - the one place that defines the bytes on the daemon <-> worker wire.
 *
 * Two channels per worker:
 *   fd 3: AF_UNIX SOCK_SEQPACKET socketpair carrying frames (this header),
 *         doorbells and passed fds;
 *   fd 4: memfd holding the shared rings (see ring.h) that carry bulk bytes.
 *
 * A frame is one datagram: a fixed struct frame_hdr followed by hdr.len payload
 * bytes (at most FRAME_MAX_PAYLOAD), with hdr.nfds descriptors riding along as
 * SCM_RIGHTS (at most FRAME_MAX_FDS).  Payloads are encoded with the typed
 * writer/reader of msg.h: host byte order, the peers always share a machine.
 *
 * Call flow (one call in flight per worker):
 *   daemon: writes payload bytes into the to-worker ring (as many as fit),
 *           sends MSG_CALL {len}; keeps writing as the worker frees space.
 *   worker: consumes exactly len payload bytes from the ring, runs the handler,
 *           writes result bytes into the from-worker ring, then sends
 *           MSG_RESULT {status, len}.  The daemon drains the ring as doorbells
 *           arrive and checks the total against MSG_RESULT's len.
 *   With CALL_F_PAYLOAD_FD the payload is the fd passed with MSG_CALL (bytes
 *   0..len) and the ring carries nothing; with CALL_F_WANT_FD the result comes
 *   back as a sealed memfd riding with MSG_RESULT (RESULT_F_FD, len = its size).
 *
 * Calls through the ring (a worker whose MSG_HELLO carries HELLO_F_RING_CALLS):
 *   a call without fds travels as a MSG_CALL frame written into the to-worker
 *   ring as a RING_REC_FRAME record (ring.h), its payload following as DATA
 *   records; its MSG_RESULT comes back the same way in the from-worker ring,
 *   after the result's DATA records.  Frames in a ring carry no fds and no
 *   flags.  So the daemon may queue the next calls in the ring while the
 *   worker is busy, and the worker takes them in order without a socket round
 *   trip: a doorbell is owed only to a side whose waiting flag is set, once
 *   per burst.  A worker consumes a call's frame record when it starts the
 *   call, so the ring's tail tells how far it got.  Calls with fds still go
 *   as MSG_CALL on the socket, only to a worker with nothing queued.
 */
#ifndef CORRAL_PROTO_H
#define CORRAL_PROTO_H

#include <stdint.h>

#define PROTO_VERSION	  1
#define FRAME_MAX_PAYLOAD 4096u
#define FRAME_MAX_FDS	  4u

/* Frame types. */
enum msg_type {
	MSG_HELLO = 1,	  /* worker -> daemon: ready; struct msg_hello */
	MSG_CALL = 2,	  /* daemon -> worker: struct msg_call; hdr.call_id names the call */
	MSG_RESULT = 3,	  /* worker -> daemon: struct msg_result for hdr.call_id */
	MSG_DOORBELL = 4, /* either way: look at the rings again; no payload */
	MSG_STOP = 5,	  /* daemon -> worker: finish the current call, then exit 0 */
	MSG_TYPE_MAX = 5,
};

/* MSG_HELLO flags. */
#define HELLO_F_RING_CALLS 0x1u /* the worker takes calls from the ring (see above) */
#define HELLO_F_MASK	   0x1u

/* MSG_CALL flags (frame_hdr.flags). */
#define CALL_F_PAYLOAD_FD 0x1u /* payload is the one fd riding with the frame */
#define CALL_F_WANT_FD	  0x2u /* reply with a sealed memfd, not ring bytes */
#define CALL_F_MASK	  0x3u

/* MSG_RESULT flags. */
#define RESULT_F_FD   0x1u /* result is the one sealed memfd riding with the frame */
#define RESULT_F_MASK 0x1u

/* MSG_RESULT status. */
enum result_status {
	RESULT_OK = 0,
	RESULT_ERROR = 1,     /* handler failed; message says why (worker_error) */
	RESULT_TOO_LARGE = 2, /* result exceeded the output limit (too_large) */
	RESULT_STATUS_MAX = 2,
};

/* Longest error message in MSG_RESULT, NUL excluded. */
#define RESULT_MAX_MSG 2048u

/*
 * The fixed frame header, 24 bytes, at the start of every datagram.
 * version must be PROTO_VERSION; len must equal the datagram size minus the
 * header; nfds must equal the number of fds that actually arrived.
 */
struct frame_hdr {
	uint16_t version;
	uint16_t type;
	uint32_t flags;
	uint32_t len;
	uint32_t nfds;
	uint64_t call_id;
};

_Static_assert(sizeof(struct frame_hdr) == 24, "frame_hdr is 24 bytes on the wire");

/* MSG_HELLO payload: u32 version, u32 pid. */
struct msg_hello {
	uint32_t version;
	uint32_t pid;
};

/* MSG_CALL payload: u64 len. */
struct msg_call {
	uint64_t len;
};

/* MSG_RESULT payload: u32 status, u64 len, str message (may be empty). */
struct msg_result {
	uint32_t status;
	uint64_t len;
	const char *message; /* decode: points into the frame; NUL-terminated */
};

#endif
