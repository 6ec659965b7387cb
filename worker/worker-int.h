/*
 * worker-int.h - non-blocking call primitives of libcorral-worker, for the
 * corral-worker host binary (the stdio adapter multiplexes the program's pipes
 * with the ring).  Not exported from the shared library.
 *
 * Waiting on the ring without blocking:
 *
 *	r = corral_call_try_peek(call, &p, &n);      (-EAGAIN: ring empty)
 *	...
 *	if (corral_call_wait_prepare(call, rx, tx, &pfd) == 1)
 *		add pfd to the poll set; after poll():
 *		corral_call_wait_finish(call, pfd.revents);
 *	else retry at once (the ring changed while preparing).
 */
#ifndef CORRAL_WORKER_INT_H
#define CORRAL_WORKER_INT_H

#include <poll.h>
#include <stdbool.h>

#include "corral/worker.h"

/* The seccomp filter corral_worker_run_seccomp() loads after the hello. */
enum corral_seccomp {
	CORRAL_SECCOMP_ENV,    /* as $CORRAL_SECCOMP says: unset or empty, none; "strict" */
	CORRAL_SECCOMP_NONE,   /* none beyond what the daemon installed */
	CORRAL_SECCOMP_STRICT, /* the strict allowlist; past it the process is killed (SIGSYS) */
};

/* corral_worker_run_opts() with the seccomp mode given: CORRAL_SECCOMP_ENV is what
 * corral_worker_run_opts() does. */
int corral_worker_run_seccomp(corral_handler_fn fn, void *arg,
			      const struct corral_worker_options *opts,
			      enum corral_seccomp seccomp);

/* confine.c: as pid 1 (of a pid namespace), exit 128 + N on the terminating signals N that
 * have no handler; elsewhere nothing. */
void worker_pid1_signals(void);

/* confine.c: load the strict seccomp filter.  0 or -errno. */
int worker_seccomp_strict(void);

/* The fd a CALL_F_PAYLOAD_FD payload came in (the call's: never close it), or -1 for a payload in
 * the ring.  Its bytes from offset 0 to corral_call_len() are the payload. */
int corral_call_payload_fd(const struct corral_call *call);

/* corral_call_peek() that never waits: -EAGAIN when the ring is empty. */
int corral_call_try_peek(struct corral_call *call, const void **ret_ptr, size_t *ret_len);

/*
 * Write what fits of buf without waiting: 0 with *ret_written (0 when the ring
 * is full), or -errno (-EFBIG past max_output: nothing written).
 */
int corral_call_try_write(struct corral_call *call, const void *buf, size_t len,
			  size_t *ret_written);

/*
 * Announce a wait for payload bytes (rx) and/or result space (tx).  1: poll
 * *ret_pfd (the control socket) for POLLIN, then call corral_call_wait_finish();
 * 0: the ring changed meanwhile, retry now; or -errno when the channel is dead.
 */
int corral_call_wait_prepare(struct corral_call *call, bool rx, bool tx, struct pollfd *ret_pfd);

/* Handle what arrived on the control socket after poll().  0 or -errno (-EPIPE, -EPROTO). */
int corral_call_wait_finish(struct corral_call *call, short revents);

#endif
