/*
 * corral/worker.h - libcorral-worker: write a corral native worker.
 *
 * A native worker is a program that corrald execs with its channels on fixed
 * fds (3: control socket, 4: shared ring).  It calls corral_worker_run() with a
 * handler; the library says hello, then runs the handler once per call, one
 * call at a time, until the daemon stops it or goes away:
 *
 *	static int upper(struct corral_call *call, void *arg)
 *	{
 *		const void *p;
 *		size_t n;
 *		int r;
 *
 *		while ((r = corral_call_peek(call, &p, &n)) > 0) {
 *			... transform n bytes at p, corral_call_write() them ...
 *			corral_call_consume(call, n);
 *		}
 *		return r;
 *	}
 *
 *	int main(void)
 *	{
 *		return corral_worker_run(upper, NULL);
 *	}
 *
 * Request bytes are read in place from the shared ring (zero-copy) with
 * corral_call_peek()/corral_call_consume(), or copied with corral_call_read();
 * a payload may be far larger than the ring, so stream it.  Result bytes go
 * into the ring with corral_call_write(), or in place with
 * corral_call_reserve()/corral_call_commit().  The library does the flow
 * control, the doorbells and result-as-memfd calls; the handler never sees them.
 *
 * Every function returns 0 (or a count) on success and a negative errno value
 * on failure; the library never logs, except that corral_worker_run() prints
 * one line to stderr before it returns a failure status.  -EPIPE (the daemon
 * went away) and -EPROTO (it broke the protocol) mean the channel is gone:
 * every later call fails the same way, so just return from the handler.  Single-threaded: call
 * these functions only from the handler, on the thread running
 * corral_worker_run().
 *
 * Build against it with `pkg-config --cflags --libs libcorral-worker`.
 */
#ifndef CORRAL_WORKER_H
#define CORRAL_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status of corral_worker_run() after a protocol or setup failure (EX_SOFTWARE). */
#define CORRAL_WORKER_EXIT_FAILURE 70

/* One call; valid only while the handler that received it runs. */
struct corral_call;

/*
 * A handler: read the payload, write the result, return 0 for success.  Any
 * other value fails the call (the daemon answers worker_error) with the
 * message set by corral_call_fail(), or a generic one.  Payload bytes the
 * handler leaves unread are discarded after it returns.
 */
typedef int (*corral_handler_fn)(struct corral_call *call, void *arg);

/* Options of corral_worker_run_opts(); zero-initialize, then set what you need. */
struct corral_worker_options {
	/* Most result bytes per call; 0 means no limit.  Past it, writes fail with
	 * -EFBIG and the call ends as too_large whatever the handler returns. */
	uint64_t max_output;
};

/*
 * Serve calls on fds 3 and 4 until the daemon sends stop (after the current
 * call) or closes the socket.  Ignores SIGPIPE.  Returns the process exit
 * status: 0, or CORRAL_WORKER_EXIT_FAILURE after printing why to stderr (not
 * started by corrald, malformed frame, corrupt ring, a seccomp filter that
 * cannot be installed).
 *
 * As pid 1 of a pid namespace (corrald's sandbox), where the kernel drops the
 * signals a process has no handler for, it gives each signal N whose default
 * action terminates (SIGTERM, SIGSEGV...; not the ones the program already
 * handles or ignores) a handler that exits with status 128 + N; a real fault
 * still kills the worker with its signal.
 *
 * With CORRAL_SECCOMP=strict in the environment, it loads the strict seccomp
 * filter once the channel is up, before the first call: the handler may then
 * use memory, time, and the fds it already has (read, write, pread, pwrite,
 * fstat, close), nothing more; any other system call (open, socket, fork,
 * exec, executable memory...) kills the process with SIGSYS.  Do setup that
 * needs more before calling this.
 */
int corral_worker_run(corral_handler_fn fn, void *arg);

/* corral_worker_run() with options; opts may be NULL. */
int corral_worker_run_opts(corral_handler_fn fn, void *arg,
			   const struct corral_worker_options *opts);

/* ---- the request ---- */

/* Payload size in bytes, as announced by the daemon. */
uint64_t corral_call_len(const struct corral_call *call);

/* Payload bytes not consumed yet. */
uint64_t corral_call_remaining(const struct corral_call *call);

/*
 * The next contiguous payload bytes, in place, waiting for them as needed:
 * 1 with *ret_ptr and *ret_len (>= 1), 0 at the end of the payload, or -errno.
 * Peeking again without consuming returns the same bytes.  The bytes stay valid
 * until corral_call_consume(); they live in memory shared with the daemon, so
 * copy what you validate before trusting it.
 */
int corral_call_peek(struct corral_call *call, const void **ret_ptr, size_t *ret_len);

/* Mark n of the bytes returned by the last corral_call_peek() as read. */
void corral_call_consume(struct corral_call *call, size_t n);

/*
 * Copy payload bytes into buf, waiting as needed: len, fewer only at the end of
 * the payload (0 once it is all read), or -errno.
 */
ssize_t corral_call_read(struct corral_call *call, void *buf, size_t len);

/*
 * The rest of the payload as one buffer: in place when it lies contiguous in
 * the ring, else copied into memory the library frees when the call ends
 * (-ENOMEM when that fails: stream large payloads with peek/read instead).
 * Consumes it.  Returns 0 with *ret_ptr and *ret_len, or -errno.
 */
int corral_call_payload(struct corral_call *call, const void **ret_ptr, size_t *ret_len);

/* ---- the result ---- */

/*
 * Reserve room for result bytes, in place, waiting for space as needed: 0 with
 * *ret_ptr and *ret_len in [1, max], or -errno (-EFBIG past max_output).  Fill
 * it, then corral_call_commit() the bytes filled.  One reservation at a time.
 */
int corral_call_reserve(struct corral_call *call, size_t max, void **ret_ptr, size_t *ret_len);

/* Publish len (<= reserved) bytes of the reservation; 0 drops it.  0 or -errno. */
int corral_call_commit(struct corral_call *call, size_t len);

/* Append len result bytes, waiting for space as needed.  0 or -errno (-EFBIG past max_output). */
int corral_call_write(struct corral_call *call, const void *buf, size_t len);

/* Result bytes written so far. */
uint64_t corral_call_written(const struct corral_call *call);

/* ---- failure ---- */

/*
 * Fail the call with a message (printf format; cut at 2048 bytes) and return
 * -1, so that a handler can `return corral_call_fail(call, "bad input");`.
 * Result bytes already written are discarded by the daemon.
 */
int corral_call_fail(struct corral_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
