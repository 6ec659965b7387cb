/*
 * stdio.c - the stdio adapter: per call, run any program with the payload on
 * its stdin and take its stdout as the result.
 *
 * One poll() loop moves three streams at once, so no program can deadlock us:
 *   payload (ring or fd) -> program stdin   (EPIPE: the program stopped reading; fine)
 *                     A payload fd the program may safely hold (a sealed memfd, a file
 *                     nobody in the sandbox can write) is its stdin itself instead,
 *                     reopened read-only: no copy through a pipe, as a bare spawn.
 *   program stdout -> result (ring or memfd), through a staging buffer
 *   program stderr -> our stderr (the daemon's log capture) and a tail kept for
 *                     the error message
 * The control socket joins the poll set whenever the ring is empty (payload)
 * or full (result), so doorbells wake us; a signalfd tells us of SIGCHLD.
 *
 * The worker is the init of its pid namespace, and keeps the program out of
 * its reach:
 *  - The program inherits only fds 0-2: never the socketpair or the ring, so
 *    it cannot forge frames.
 *  - The worker is not dumpable: no /proc/1/mem, ptrace, process_vm_readv/
 *    writev or pidfd_getfd on it from a process without CAP_SYS_PTRACE.
 *  - The program runs under a seccomp filter of its own (stdio_filter) that
 *    denies the cross-process calls aimed at the worker: signals to it (kill,
 *    tkill, tgkill, rt_sig*queueinfo, pidfd_open/pidfd_send_signal), ptrace,
 *    process_vm_*; and, where Landlock has signal scoping (ABI 6), in a
 *    Landlock domain that may signal only what it started itself.
 *  - As pid 1 the worker ignores signals sent from inside its namespace
 *    (confine.c), so only the daemon's reach it.
 *  - The call ends when the program exits: then everything else in the
 *    namespace (pid 1: kill(-1)) or the program's process group and our
 *    re-parented orphans (not pid 1: we are a child subreaper) is killed and
 *    reaped, so a call leaves neither zombies nor a fork bomb behind.
 *
 * The program starts with clone(CLONE_VM | CLONE_VFORK): no page table copy,
 * and we resume once it has exec'd (or failed to: the errno comes back through
 * the shared args).  The child code runs on its own stack in our memory, so it
 * only calls async-signal-safe functions on data prepared beforehand.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host.h"
#include "worker-int.h"

/* Bytes of stderr kept for the error message; leaves room for the "exited with status N: " prefix
 * within RESULT_MAX_MSG. */
#define STDIO_TAIL 1984u
/* Staging buffer between the program's stdout and the result. */
#define STDIO_CHUNK (64u * 1024u)
/* Pipe size asked for stdin and stdout once a call moves more than the default holds. */
#define STDIO_PIPE_SZ (1 << 20)
/* The default pipe size (what a pipe holds before we resize it). */
#define STDIO_PIPE_DEFAULT (64u * 1024u)
/* Stack of the clone()d child until it execs. */
#define STDIO_STACK (128u * 1024u)
/* How often the tree is killed again while its pipes stay open after the program exited. */
#define STDIO_REKILL_MS 20
/* Not pid 1 and no /proc to find orphans: give up on the rest after this long. */
#define STDIO_REAP_MAX_MS 2000

/* Code that runs in the clone()d child on its own stack: sanitizer runtimes would misread it. */
#define CHILD_CODE __attribute__((no_sanitize("address", "undefined")))

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self  446
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif

/* Landlock's ruleset attributes up to ABI 6 (the system header may predate them). */
struct ll_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};
#define LL_SCOPE_SIGNAL (1ULL << 1)

/* What every call's spawn needs, prepared once by stdio_init(). */
static struct {
	bool ready;
	int sigchld;		  /* signalfd of SIGCHLD (blocked), or -1 */
	pid_t self;		  /* our pid */
	bool pid1;		  /* init of our pid namespace */
	struct sock_fprog filter; /* the program's filter; .filter NULL: none */
	int ll_ruleset;		  /* Landlock ruleset scoping the program's signals, or -1 */
	bool nnp;		  /* no_new_privs is set already (the daemon set it) */
	int ignored[64];	  /* signals we ignore, which exec would keep ignored */
	int nignored;
	char *path; /* argv[0] resolved through PATH once; NULL: execvp */
	void *stack;
} st = {.sigchld = -1, .ll_ruleset = -1};

extern char **environ;

/* One run of the program. */
struct stdio_run {
	struct corral_call *call;
	pid_t pid;
	int in, out, err; /* our ends; -1 once closed */
	bool exited;	  /* the program has exited (status in wstatus) */
	int wstatus;
	bool out_big; /* the stdout pipe was resized */
	bool alone;   /* pid 1, and the program's whole tree is gone */
	uint8_t obuf[STDIO_CHUNK];
	size_t ooff, olen; /* stdout bytes staged, not yet in the result */
	char tail[STDIO_TAIL];
	size_t tail_len;
};

/* What the child needs; lives on our stack during the clone. */
struct stdio_child_args {
	char **argv;
	int in, out, err;
	pid_t parent;
	volatile int err_no; /* set by the child when it fails before exec */
};

/* Close *fd if open and mark it closed. */
static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* One argument comparison of the low 32 bits (a pid_t), every field named. */
static struct scmp_arg_cmp arg_pid(unsigned arg, pid_t pid)
{
	struct scmp_arg_cmp c = {
	    .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu, .datum_b = (uint32_t)pid};
	return c;
}

/*
 * The program's filter: EPERM for the calls that reach across to the worker
 * (pid self).  Compiled to BPF once here, so that the child only installs it.
 */
static int stdio_filter(pid_t self)
{
	static const int sig1[] = {SCMP_SYS(kill),
				   SCMP_SYS(tkill),
				   SCMP_SYS(tgkill),
				   SCMP_SYS(rt_sigqueueinfo),
				   SCMP_SYS(rt_tgsigqueueinfo),
				   SCMP_SYS(pidfd_open),
				   SCMP_SYS(process_vm_readv),
				   SCMP_SYS(process_vm_writev)};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = ctx ? 0 : -ENOMEM, fd = -1;

	if (r == 0) /* the kernel's errno rather than -ECANCELED */
		r = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	/* No new privileges are needed: the daemon set no_new_privs before exec. */
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (size_t i = 0; r == 0 && i < sizeof(sig1) / sizeof(sig1[0]); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sig1[i], 1, arg_pid(0, self));
	/* kill(-pgrp) of the worker's group; kill(-1) where the worker is not pid 1 (it
	 * would be signalled too). */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(kill), 1,
				     arg_pid(0, -self));
	if (r == 0 && self != 1)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(kill), 1, arg_pid(0, -1));
	/* A pidfd or /proc/PID directory fd may name the worker: no way to tell here. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pidfd_send_signal), 0);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pidfd_getfd), 0);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0);
	if (r == 0) {
		fd = memfd_create("corral-stdio-bpf", MFD_CLOEXEC);
		r = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
	}
	if (r == 0) {
		off_t size = lseek(fd, 0, SEEK_END);
		struct sock_filter *f = size > 0 ? malloc((size_t)size) : NULL;
		if (f && pread(fd, f, (size_t)size, 0) == size) {
			st.filter.filter = f;
			st.filter.len = (unsigned short)((size_t)size / sizeof(*f));
		} else {
			free(f);
			r = -EIO;
		}
	}
	if (fd >= 0)
		close(fd);
	if (ctx)
		seccomp_release(ctx);
	return r;
}

/* argv[0] looked up in PATH, as execvp would (malloc'd), or NULL. */
static char *stdio_lookup(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (strchr(name, '/'))
		return strdup(name);
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 &&
		    (size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, name) < sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return strdup(buf);
		p += n;
		if (*p == ':')
			p++;
	}
	return NULL;
}

int stdio_init(struct stdio_prog *prog)
{
	struct sigaction sa;
	sigset_t chld;
	long abi;
	int r;

	/* Out of the program's reach: /proc/1/mem, ptrace, process_vm_*, pidfd_getfd need
	 * CAP_SYS_PTRACE on a process that is not dumpable. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	st.self = getpid();
	st.pid1 = st.self == 1;
	/* Orphans come to us to be reaped and killed, namespace or not. */
	if (!st.pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return -errno;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
		return -errno;
	st.sigchld = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (st.sigchld < 0)
		return -errno;
	if ((r = stdio_filter(st.self)) < 0)
		fprintf(stderr, "corral-worker: no seccomp filter for the program: %s\n",
			strerror(-r));
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi >= 6) {
		/* One ruleset for every program: it may signal only processes it created. */
		struct ll_attr attr = {.scoped = LL_SCOPE_SIGNAL};

		st.ll_ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
		if (st.ll_ruleset >= 0)
			fcntl(st.ll_ruleset, F_SETFD, FD_CLOEXEC);
	}
	st.nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
	/* libcorral-worker ignores SIGPIPE; whoever started the daemon may have ignored more. */
	st.ignored[st.nignored++] = SIGPIPE;
	for (int s = 1; s < NSIG && st.nignored < 64; s++)
		if (s != SIGKILL && s != SIGSTOP && s != SIGPIPE && sigaction(s, NULL, &sa) == 0 &&
		    !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
			st.ignored[st.nignored++] = s;
	st.path = stdio_lookup(prog->argv[0]);
	st.stack = mmap(NULL, STDIO_STACK, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (st.stack == MAP_FAILED)
		return -errno;
	st.ready = true;
	return 0;
}

/* In the child: the program's own group, fds 0-2 alone, its confinement, exec. */
CHILD_CODE static int stdio_child(void *arg)
{
	struct stdio_child_args *a = arg;
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	/* Its own process group: the tree can be signalled as one where we are not pid 1. */
	setpgid(0, 0);
	/* exec resets handled signals, not ignored ones. */
	for (int i = 0; i < st.nignored; i++)
		sigaction(st.ignored[i], &dfl, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != a->parent)
		_exit(127); /* the worker is already gone */
	/* Our fds 0-4 are taken (/dev/null, logs, socket, payload), so the pipes sit above 2. */
	if (dup2(a->in, 0) < 0 || dup2(a->out, 1) < 0 || dup2(a->err, 2) < 0)
		goto fail;
	/* A Landlock domain that may signal only processes it created (before close_range: the
	 * ruleset is one of our fds). */
	if (st.ll_ruleset >= 0)
		syscall(SYS_landlock_restrict_self, st.ll_ruleset, 0);
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0) {
		/* Old kernel: one by one. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
			rl.rlim_cur = 65536;
		for (rlim_t fd = 3; fd < rl.rlim_cur; fd++)
			close((int)fd);
	}
	/* The daemon set no_new_privs already; a worker run by hand needs it for the filter. */
	if (st.filter.filter && ((!st.nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) ||
				 prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &st.filter) < 0))
		goto fail;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (st.path)
		execve(st.path, a->argv, environ);
	else
		execvp(a->argv[0], a->argv);
fail:
	a->err_no = errno ? errno : ENOEXEC;
	_exit(127);
}

/* Reap what has exited, without waiting, up to the program itself; note its status.  (What is
 * left, zombies included, the kill of the tree finds and stdio_kill_all() reaps.) */
static void stdio_reap_some(struct stdio_run *run)
{
	struct signalfd_siginfo si[8];
	pid_t p;
	int ws;

	/* One read: SIGCHLD, a standard signal, is pending once at most. */
	if (st.sigchld >= 0 && read(st.sigchld, si, sizeof(si)) < 0 && errno != EAGAIN)
		fprintf(stderr, "corral-worker: signalfd: %s\n", strerror(errno));
	while ((p = waitpid(-1, &ws, WNOHANG | __WALL)) > 0)
		if (p == run->pid) {
			run->exited = true;
			run->wstatus = ws;
			break;
		}
}

/* Our children as /proc lists them (we are a subreaper: orphans included); kill each. */
static bool stdio_kill_children(void)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	for (char *p = buf, *end; *p; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0)
			kill((pid_t)pid, SIGKILL);
	}
	return true;
}

/* SIGKILL the program's whole tree: everything in our namespace, or its group and orphans.
 * True when nothing is left to reap (as pid 1), or when every orphan was found. */
static bool stdio_kill_tree(struct stdio_run *run)
{
	if (st.pid1) {
		/* Every process of the namespace but us; ESRCH: there is none, not even a
		 * zombie, and none can come (we fork no other). */
		if (!run->alone)
			run->alone = kill(-1, SIGKILL) < 0 && errno == ESRCH;
		return run->alone;
	}
	if (run->pid > 0 && !run->exited)
		kill(run->pid, SIGKILL);
	if (run->pid > 0)
		kill(-run->pid, SIGKILL);
	return stdio_kill_children();
}

/* Kill the tree and reap every process of it (bounded where we cannot see them all). */
static void stdio_kill_all(struct stdio_run *run)
{
	int waited = 0;

	for (;;) {
		bool complete = stdio_kill_tree(run);
		struct pollfd pf = {.fd = st.sigchld, .events = POLLIN};
		pid_t p;
		int ws;

		if (st.pid1 && complete && run->exited)
			break; /* the namespace holds us alone, the program reaped */

		while ((p = waitpid(-1, &ws, WNOHANG | __WALL)) > 0)
			if (p == run->pid) {
				run->exited = true;
				run->wstatus = ws;
			}
		if (p < 0 && errno == ECHILD)
			break;
		if (p < 0 && errno != EINTR)
			break;
		if (!st.pid1 && !complete && waited >= STDIO_REAP_MAX_MS) {
			fprintf(stderr, "corral-worker: processes of the program outlive it\n");
			break;
		}
		/* Wait for the next SIGCHLD (killed processes take a moment to go). */
		if (st.sigchld >= 0) {
			struct signalfd_siginfo si[8];
			poll(&pf, 1, STDIO_REKILL_MS);
			while (read(st.sigchld, si, sizeof(si)) > 0)
				;
		} else {
			usleep(1000 * STDIO_REKILL_MS);
		}
		waited += STDIO_REKILL_MS;
	}
}

/*
 * The payload fd reopened read-only, at offset 0 and with an offset of its own, for the program's
 * stdin; or -1: the payload goes through a pipe.  Only a regular file or memfd of the call's size,
 * and only one the program cannot change by reopening /proc/self/fd/0 for writing: a memfd sealed
 * against writes and resizing, or a file that this worker (whose access the program has at most)
 * cannot open for writing.
 */
static int stdio_direct_in(struct corral_call *call)
{
	int fd = corral_call_payload_fd(call), in, w, seals;
	char path[48];
	struct stat sb;

	if (fd < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	in = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return -1;
	if (fstat(in, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size != corral_call_len(call))
		goto pipe;
	/* A memfd sealed against writes, growing and shrinking needs no test (F_GET_SEALS fails on
	 * other files). */
	seals = fcntl(in, F_GET_SEALS);
	if (seals < 0 || !(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) ||
	    (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
		w = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (w >= 0) {
			close(w);
			goto pipe;
		}
	}
	return in;
pipe:
	close(in);
	return -1;
}

static int stdio_feed(struct stdio_run *run, bool *need_rx, bool *need_out);

/* Start the program on its stdin (the payload fd or a pipe) and the pipes; a failed exec becomes a
 * call error. */
static int stdio_spawn(struct stdio_run *run, char **argv)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	struct stdio_child_args a = {.argv = argv, .parent = st.self};
	sigset_t all, old;
	int r = -1;

	in[0] = stdio_direct_in(run->call);
	if ((in[0] < 0 && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0) {
		corral_call_fail(run->call, "cannot create pipes: %s", strerror(errno));
		goto out;
	}
	/* A payload larger than a pipe holds: fewer wake-ups with a larger one. */
	if (in[1] >= 0 && corral_call_len(run->call) > STDIO_PIPE_DEFAULT)
		fcntl(in[1], F_SETPIPE_SZ, STDIO_PIPE_SZ);
	a.in = in[0];
	a.out = out[1];
	a.err = err[1];
	if (in[1] >= 0) {
		/* What of the payload is here waits in the pipe before the program starts: its
		 * first read finds it rather than sleeping until we are back from the exec. */
		bool need_rx = false, need_in = false;

		run->in = in[1];
		in[1] = -1;
		fcntl(run->in, F_SETFL, O_NONBLOCK);
		if (stdio_feed(run, &need_rx, &need_in) < 0)
			goto out;
	}
	/* No handler of ours may run in the child before it execs. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	run->pid = clone(stdio_child, (char *)st.stack + STDIO_STACK,
			 CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	int e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (run->pid < 0) {
		corral_call_fail(run->call, "cannot start %s: %s", argv[0], strerror(e));
		run->pid = -1;
		goto out;
	}
	if (a.err_no) {
		while (waitpid(run->pid, NULL, __WALL) < 0 && errno == EINTR)
			;
		run->pid = -1;
		corral_call_fail(run->call, "cannot exec %s: %s", argv[0], strerror(a.err_no));
		goto out;
	}
	run->out = out[0];
	run->err = err[0];
	out[0] = err[0] = -1; /* blocking: they are read only once poll() says so */
	r = 0;
out:
	if (r < 0)
		close_fd(&run->in);
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
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
	/* A full read: the program writes more than a default pipe holds. */
	if ((size_t)n == sizeof(run->obuf) && !run->out_big) {
		fcntl(run->out, F_SETPIPE_SZ, STDIO_PIPE_SZ);
		run->out_big = true;
	}
	run->ooff = 0;
	run->olen = (size_t)n;
}

/* SIGCHLD: reap; once the program has exited, the call is over for the rest of its tree. */
static void stdio_on_child(struct stdio_run *run)
{
	bool was = run->exited;

	stdio_reap_some(run);
	if (!run->exited)
		return;
	if (!was)
		close_fd(&run->in); /* nobody reads it any more */
	/* What the tree still holds of stdout and stderr closes with it. */
	stdio_kill_tree(run);
}

/* Move all three streams until stdin is done and stdout and stderr reach EOF. */
static int stdio_pump(struct stdio_run *run)
{
	for (;;) {
		struct pollfd pf[5];
		int np = 0, in_i = -1, out_i = -1, err_i = -1, sock_i = -1, chld_i = -1, r;
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
		if (st.sigchld >= 0) {
			pf[np] = (struct pollfd){.fd = st.sigchld, .events = POLLIN};
			chld_i = np++;
		}
		if (need_rx || need_tx) {
			r = corral_call_wait_prepare(run->call, need_rx, need_tx, &pf[np]);
			if (r < 0)
				return r;
			if (r == 0)
				continue; /* the ring moved meanwhile */
			sock_i = np++;
		}
		/* After the program's exit, kill again what the tree forks meanwhile. */
		r = poll(pf, (nfds_t)np, run->exited ? STDIO_REKILL_MS : -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return corral_call_fail(run->call, "poll: %s", strerror(errno));
		}
		if (r == 0 && run->exited)
			stdio_kill_tree(run);
		if (sock_i >= 0) {
			r = corral_call_wait_finish(run->call, pf[sock_i].revents);
			if (r < 0)
				return r;
		}
		if (chld_i >= 0 && pf[chld_i].revents)
			stdio_on_child(run);
		if (in_i >= 0 && run->in >= 0 && !need_in &&
		    (pf[in_i].revents & (POLLERR | POLLHUP)))
			close_fd(&run->in);
		if (out_i >= 0 && pf[out_i].revents)
			stdio_read_out(run);
		if (err_i >= 0 && pf[err_i].revents)
			stdio_read_err(run);
	}
}

/*
 * The stderr tail fit for a message: its last STDIO_MSG_TAIL bytes (the end
 * is where the error is; the message, and a client's copy of it, must not cut
 * it off), no trailing blank, no NUL, no split UTF-8 sequence at the start.
 */
#define STDIO_MSG_TAIL 448u
static const char *stdio_tail_text(struct stdio_run *run)
{
	size_t start = 0, end = run->tail_len;

	while (end > 0 && (run->tail[end - 1] == '\n' || run->tail[end - 1] == '\r' ||
			   run->tail[end - 1] == ' ' || run->tail[end - 1] == '\t'))
		end--;
	if (end > STDIO_MSG_TAIL)
		start = end - STDIO_MSG_TAIL;
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

/* End the run: kill and reap the whole tree; 0 for exit status 0, else fail the call with why
 * and the stderr tail. */
static int stdio_reap(struct stdio_run *run, bool killed)
{
	const char *tail, *sep;
	int ws, sig;

	/* The program may close its output and still work a while: its exit ends the call. */
	while (!killed && !run->exited && waitpid(run->pid, &ws, __WALL) < 0)
		if (errno != EINTR)
			return corral_call_fail(run->call, "cannot reap the program: %s",
						strerror(errno));
	if (!killed && !run->exited) {
		run->exited = true;
		run->wstatus = ws;
	}
	stdio_kill_all(run);
	while (!run->exited && waitpid(run->pid, &ws, __WALL) < 0)
		if (errno != EINTR)
			return corral_call_fail(run->call, "cannot reap the program: %s",
						strerror(errno));
	run->pid = -1;
	if (killed)
		return -1;
	ws = run->wstatus;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	tail = stdio_tail_text(run);
	sep = tail[0] ? ": " : "";
	if (WIFEXITED(ws))
		return corral_call_fail(run->call, "exited with status %d%s%s", WEXITSTATUS(ws),
					sep, tail);
	sig = WTERMSIG(ws);
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

	if (!st.ready && (r = stdio_init(prog)) < 0)
		return corral_call_fail(call, "cannot set up the stdio adapter: %s", strerror(-r));
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
