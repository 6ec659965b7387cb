/*
 * stdio.c - the stdio adapter: per call, run any program with the payload on
 * its stdin and take its stdout as the result.
 *
 * One poll() loop moves three streams at once, so no program can deadlock us:
 *   payload (ring or fd) -> program stdin   (EPIPE: the program stopped reading; fine)
 *   program stdout -> result (ring or memfd), through a staging buffer
 *   program stderr -> our stderr (the daemon's log capture) and a tail kept for
 *                     the error message
 * The control socket joins the poll set whenever the ring is empty (payload)
 * or full (result), so doorbells wake us.
 *
 * The program inherits only fds 0-2: never the socketpair or the ring, so it
 * cannot forge frames.  It dies with the worker (PR_SET_PDEATHSIG), so a hang
 * ends when the daemon kills the worker on timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host.h"
#include "worker-int.h"

/* Bytes of stderr kept for the error message; leaves room for the "exited with status N: " prefix
 * within RESULT_MAX_MSG. */
#define STDIO_TAIL 1984u
/* Staging buffer between the program's stdout and the result. */
#define STDIO_CHUNK (64u * 1024u)
/* Pipe size asked for stdin and stdout (the kernel may give less). */
#define STDIO_PIPE_SZ (1 << 20)

/* One run of the program. */
struct stdio_run {
	struct corral_call *call;
	pid_t pid;
	int in, out, err; /* our ends; -1 once closed */
	uint8_t obuf[STDIO_CHUNK];
	size_t ooff, olen; /* stdout bytes staged, not yet in the result */
	char tail[STDIO_TAIL];
	size_t tail_len;
};

/* Close *fd if open and mark it closed. */
static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* In the child: make the pipes fds 0-2, drop everything else, reset signals, exec. */
__attribute__((noreturn)) static void stdio_child(char **argv, int in, int out, int err,
						  int errpipe, pid_t parent)
{
	struct sigaction sa = {.sa_handler = SIG_DFL};
	int report = errpipe, e;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != parent)
		_exit(127); /* the worker is already gone */
	/* Our fds 0-4 are taken (/dev/null, logs, socket), so the pipes sit above 2. */
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
	    dup3(errpipe, 3, O_CLOEXEC) < 0)
		goto fail;
	/* fd 3 is now the close-on-exec error pipe (no longer the socket): the program gets 0-2
	 * alone. */
	report = 3;
	if (close_range(4, ~0U, 0) < 0) {
		/* Old kernel or a seccomp filter without close_range: one by one. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
			rl.rlim_cur = 65536;
		for (rlim_t fd = 4; fd < rl.rlim_cur; fd++)
			close((int)fd);
	}
	execvp(argv[0], argv);
fail:
	e = errno;
	if (write(report, &e, sizeof(e)) < 0) {
		/* nothing left to tell */
	}
	_exit(127);
}

/* Fork and exec the program; the error pipe turns a failed exec into a call error. */
static int stdio_spawn(struct stdio_run *run, char **argv)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, ep[2] = {-1, -1};
	pid_t parent = getpid();
	ssize_t n;
	int e = 0, r = -1;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
	    pipe2(ep, O_CLOEXEC) < 0) {
		corral_call_fail(run->call, "cannot create pipes: %s", strerror(errno));
		goto out;
	}
	fcntl(in[1], F_SETPIPE_SZ, STDIO_PIPE_SZ);
	fcntl(out[1], F_SETPIPE_SZ, STDIO_PIPE_SZ);
	run->pid = fork();
	if (run->pid < 0) {
		corral_call_fail(run->call, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (run->pid == 0)
		stdio_child(argv, in[0], out[1], err[1], ep[1], parent);
	close_fd(&ep[1]);
	do
		n = read(ep[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(e)) {
		while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
			;
		run->pid = -1;
		corral_call_fail(run->call, "cannot exec %s: %s", argv[0], strerror(e));
		goto out;
	}
	run->in = in[1];
	run->out = out[0];
	run->err = err[0];
	in[1] = out[0] = err[0] = -1;
	fcntl(run->in, F_SETFL, O_NONBLOCK);
	fcntl(run->out, F_SETFL, O_NONBLOCK);
	fcntl(run->err, F_SETFL, O_NONBLOCK);
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
		close_fd(&ep[i]);
	}
	return r;
}

/* Keep the last STDIO_TAIL bytes of stderr. */
static void stdio_tail_add(struct stdio_run *run, const char *p, size_t n)
{
	if (n >= STDIO_TAIL) {
		memcpy(run->tail, p + n - STDIO_TAIL, STDIO_TAIL);
		run->tail_len = STDIO_TAIL;
		return;
	}
	if (run->tail_len + n > STDIO_TAIL) {
		size_t drop = run->tail_len + n - STDIO_TAIL;

		memmove(run->tail, run->tail + drop, run->tail_len - drop);
		run->tail_len -= drop;
	}
	memcpy(run->tail + run->tail_len, p, n);
	run->tail_len += n;
}

/* Read what the program wrote to stderr: forward it to our stderr, keep its tail. */
static void stdio_read_err(struct stdio_run *run)
{
	char buf[4096];
	ssize_t n, w;

	n = read(run->err, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close_fd(&run->err);
		return;
	}
	stdio_tail_add(run, buf, (size_t)n);
	for (ssize_t off = 0; off < n; off += w) {
		w = write(STDERR_FILENO, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			w = 0;
		else if (w <= 0)
			break;
	}
}

/* Feed payload bytes to stdin while both sides take them; *need_rx when the ring is empty,
 * *need_out when the pipe is full. */
static int stdio_feed(struct stdio_run *run, bool *need_rx, bool *need_out)
{
	const void *p;
	size_t n;
	ssize_t w;
	int r;

	while (run->in >= 0) {
		r = corral_call_try_peek(run->call, &p, &n);
		if (r == -EAGAIN) {
			*need_rx = true;
			return 0;
		}
		if (r < 0)
			return r;
		if (r == 0)
			break;
		w = write(run->in, p, n);
		if (w > 0) {
			corral_call_consume(run->call, (size_t)w);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			*need_out = true;
			return 0;
		}
		break; /* EPIPE: the program does not want (the rest of) its stdin */
	}
	close_fd(&run->in);
	return 0;
}

/* Move staged stdout bytes into the result; *need_tx when the ring is full. */
static int stdio_flush(struct stdio_run *run, bool *need_tx)
{
	size_t n;
	int r;

	while (run->olen > 0) {
		r = corral_call_try_write(run->call, run->obuf + run->ooff, run->olen, &n);
		if (r < 0)
			return r;
		if (n == 0) {
			*need_tx = true;
			return 0;
		}
		run->ooff += n;
		run->olen -= n;
	}
	run->ooff = 0;
	return 0;
}

/* Read the program's stdout into the staging buffer. */
static void stdio_read_out(struct stdio_run *run)
{
	ssize_t n = read(run->out, run->obuf, sizeof(run->obuf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close_fd(&run->out);
		return;
	}
	run->ooff = 0;
	run->olen = (size_t)n;
}

/* Move all three streams until stdin is done and stdout and stderr reach EOF. */
static int stdio_pump(struct stdio_run *run)
{
	for (;;) {
		struct pollfd pf[4];
		int np = 0, in_i = -1, out_i = -1, err_i = -1, sock_i = -1, r;
		bool need_rx = false, need_tx = false, need_in = false;

		r = stdio_feed(run, &need_rx, &need_in);
		if (r == 0)
			r = stdio_flush(run, &need_tx);
		if (r < 0)
			return r;
		if (run->in < 0 && run->out < 0 && run->err < 0 && run->olen == 0)
			return 0;
		if (run->in >= 0) {
			/* Without POLLOUT, poll still reports POLLERR once the program closes
			 * stdin. */
			pf[np] = (struct pollfd){.fd = run->in, .events = need_in ? POLLOUT : 0};
			in_i = np++;
		}
		if (run->out >= 0 && run->olen == 0) {
			pf[np] = (struct pollfd){.fd = run->out, .events = POLLIN};
			out_i = np++;
		}
		if (run->err >= 0) {
			pf[np] = (struct pollfd){.fd = run->err, .events = POLLIN};
			err_i = np++;
		}
		if (need_rx || need_tx) {
			r = corral_call_wait_prepare(run->call, need_rx, need_tx, &pf[np]);
			if (r < 0)
				return r;
			if (r == 0)
				continue; /* the ring moved meanwhile */
			sock_i = np++;
		}
		if (poll(pf, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return corral_call_fail(run->call, "poll: %s", strerror(errno));
		}
		if (sock_i >= 0) {
			r = corral_call_wait_finish(run->call, pf[sock_i].revents);
			if (r < 0)
				return r;
		}
		if (in_i >= 0 && !need_in && (pf[in_i].revents & (POLLERR | POLLHUP)))
			close_fd(&run->in);
		if (out_i >= 0 && pf[out_i].revents)
			stdio_read_out(run);
		if (err_i >= 0 && pf[err_i].revents)
			stdio_read_err(run);
	}
}

/* The stderr tail fit for a message: no trailing blank, no NUL, no split UTF-8 sequence at the
 * start. */
static const char *stdio_tail_text(struct stdio_run *run)
{
	size_t start = 0, end = run->tail_len;

	while (end > 0 && (run->tail[end - 1] == '\n' || run->tail[end - 1] == '\r' ||
			   run->tail[end - 1] == ' ' || run->tail[end - 1] == '\t'))
		end--;
	while (start < end && ((unsigned char)run->tail[start] & 0xc0) == 0x80)
		start++;
	for (size_t i = start; i < end; i++)
		if (run->tail[i] == '\0')
			run->tail[i] = '?';
	/* end < sizeof(tail) unless the tail is full of text; then drop its last byte for the NUL.
	 */
	if (end == sizeof(run->tail))
		end--;
	run->tail[end] = '\0';
	return run->tail + start;
}

/* Reap the program; 0 for exit status 0, else fail the call with why and the stderr tail. */
static int stdio_reap(struct stdio_run *run, bool killed)
{
	const char *tail, *sep;
	int st, sig;

	if (killed)
		kill(run->pid, SIGKILL);
	while (waitpid(run->pid, &st, 0) < 0)
		if (errno != EINTR)
			return corral_call_fail(run->call, "cannot reap the program: %s",
						strerror(errno));
	run->pid = -1;
	if (killed)
		return -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	tail = stdio_tail_text(run);
	sep = tail[0] ? ": " : "";
	if (WIFEXITED(st))
		return corral_call_fail(run->call, "exited with status %d%s%s", WEXITSTATUS(st),
					sep, tail);
	sig = WTERMSIG(st);
	if (sigabbrev_np(sig))
		return corral_call_fail(run->call, "killed by SIG%s%s%s", sigabbrev_np(sig), sep,
					tail);
	return corral_call_fail(run->call, "killed by signal %d%s%s", sig, sep, tail);
}

int stdio_handle(struct corral_call *call, void *arg)
{
	static struct stdio_run run; /* one call at a time; keeps 64 KiB off the stack */
	struct stdio_prog *prog = arg;
	int r;

	run = (struct stdio_run){.call = call, .pid = -1, .in = -1, .out = -1, .err = -1};
	if (stdio_spawn(&run, prog->argv) < 0)
		return -1;
	r = stdio_pump(&run);
	close_fd(&run.in);
	close_fd(&run.out);
	close_fd(&run.err);
	/* Output limit, a dead channel or a payload that cannot be read: the program goes. */
	return stdio_reap(&run, r < 0);
}
