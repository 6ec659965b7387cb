/*
 * frame.h - sending and receiving frames (proto.h) over a SOCK_SEQPACKET socket.
 * Library code: returns 0/1 or -errno, never logs.
 */
#ifndef CORRAL_FRAME_H
#define CORRAL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* One received frame.  Owns fds[0..nfds) until frame_close_fds() or the caller takes them. */
struct frame {
	struct frame_hdr hdr;
	uint8_t payload[FRAME_MAX_PAYLOAD];
	int fds[FRAME_MAX_FDS];
	unsigned nfds;
};

/*
 * Send one frame: header built from type/flags/call_id, payload of len bytes
 * (len <= FRAME_MAX_PAYLOAD), nfds fds (<= FRAME_MAX_FDS) as SCM_RIGHTS.
 * Uses MSG_NOSIGNAL|MSG_DONTWAIT.  Returns 0, or -EAGAIN (socket full),
 * -EMSGSIZE (bad len/nfds), -EPIPE (peer gone) or another -errno.
 * The caller keeps ownership of the fds it passed.
 */
int frame_send(int sock, uint16_t type, uint32_t flags, uint64_t call_id, const void *payload,
	       size_t len, const int *fds, unsigned nfds);

/*
 * Receive one frame into *f (MSG_DONTWAIT, MSG_CMSG_CLOEXEC).
 * Returns 1 with a validated frame, 0 on orderly EOF, -EAGAIN when nothing is
 * waiting, or an error: -EPROTO (wrong version), -EBADMSG (short datagram, length
 * disagreeing with the datagram, nfds disagreeing with the fds that arrived,
 * unknown type, flags outside the type's mask, payload past FRAME_MAX_PAYLOAD,
 * MSG_TRUNC, MSG_CTRUNC, unexpected control message, more than FRAME_MAX_FDS
 * fds).  On every error path fds that did arrive are closed and f->nfds is 0.
 * A zero-length datagram reads as EOF (0).  Unused f->fds slots hold -1.
 */
int frame_recv(int sock, struct frame *f);

/*
 * Build one frame without fds (header, then len payload bytes) into buf, for
 * a ring's RING_REC_FRAME record (proto.h).  Returns its size, or -EMSGSIZE
 * when len passes FRAME_MAX_PAYLOAD or cap is too small.
 */
long frame_build(void *buf, size_t cap, uint16_t type, uint32_t flags, uint64_t call_id,
		 const void *payload, size_t len);

/*
 * (Added.)  Check a received header against the datagram's size n (header
 * included) and the number of fds that arrived: 0, -EPROTO or -EBADMSG as
 * frame_recv.  Allowed flags: MSG_HELLO HELLO_F_MASK, MSG_CALL CALL_F_MASK, MSG_RESULT
 * RESULT_F_MASK, other types none.
 */
int frame_validate(const struct frame_hdr *hdr, size_t n, unsigned nfds);

/*
 * (Added.)  frame_recv without the socket: copy a datagram of n bytes into *f
 * and validate it as carrying no fds.  For tests and fuzzing.  Returns 1 or
 * an error as frame_recv (n past the header plus FRAME_MAX_PAYLOAD: -EBADMSG).
 */
int frame_parse(struct frame *f, const void *buf, size_t n);

/* Close every fd still owned by f and set f->nfds to 0. */
void frame_close_fds(struct frame *f);

/* Take fd i out of f (ownership moves to the caller); -1 if none. */
int frame_take_fd(struct frame *f, unsigned i);

#endif
