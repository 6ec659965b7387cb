/*
 * confine.c - what libcorral-worker does about the sandbox corrald puts it in:
 *
 *  - As pid 1 of its own pid namespace, the kernel drops every signal the
 *    worker has no handler for (but SIGKILL and SIGSTOP), the daemon's too.
 *    worker_pid1_signals() gives each signal N whose default action terminates
 *    a handler that exits with status 128 + N, which the daemon reports as
 *    "killed by SIGN" when it sent N.  (A seccomp kill needs no handler: the
 *    kernel kills the process itself, with SIGSYS.)  Signals sent from inside
 *    the namespace (a stdio program's) are ignored: only the daemon's count.
 *  - The "strict" seccomp filter (CORRAL_SECCOMP=strict, or the host's
 *    --seccomp strict), loaded after the hello: only what serving calls needs.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include <seccomp.h>

#include "worker-int.h"

/* Faults that re-execute the faulting instruction when the handler returns. */
static bool refaults(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE;
}

/* Async-signal-safe: _exit(), sigaction() and nothing else. */
static void pid1_signal(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	(void)uc;
	/* Sent by a process of our own namespace (si_pid is 0 for a sender outside it, the
	 * daemon): a stdio program, which has no business signalling its worker. */
	if (si && si->si_code <= 0 && si->si_pid != 0 && si->si_pid != getpid())
		return;
	/* si_code > 0: raised by the kernel, not sent by a process (SI_USER, SI_QUEUE,
	 * SI_TKILL... are all <= 0).  A real fault happens again on return, now with the
	 * default action, and the kernel forces it even on a namespace init: the worker
	 * dies of the true signal.  A trap (SIGTRAP, SIGSYS) would resume after the
	 * instruction instead, so it exits like a sent signal. */
	if (si && si->si_code > 0 && refaults(sig)) {
		sigaction(sig, &dfl, NULL);
		return;
	}
	_exit(128 + sig);
}

void worker_pid1_signals(void)
{
	static const int sigs[] = {
	    SIGHUP,  SIGINT,  SIGQUIT,	 SIGILL,  SIGTRAP, SIGABRT, SIGBUS,
	    SIGFPE,  SIGUSR1, SIGSEGV,	 SIGUSR2, SIGALRM, SIGTERM, SIGSTKFLT,
	    SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO,   SIGPWR,  SIGSYS,
	};
	struct sigaction sa = {.sa_sigaction = pid1_signal, .sa_flags = SA_SIGINFO};
	struct sigaction old;

	if (getpid() != 1)
		return;
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		/* Leave alone what the program set up itself (a handler, SIG_IGN). */
		if (sigaction(sigs[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
		    old.sa_handler == SIG_DFL)
			sigaction(sigs[i], &sa, NULL);
}

/* One argument comparison, every field named (libseccomp's SCMP_A* macros leave
 * datum_b out, which clang's -Wmissing-field-initializers rejects). */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a,
				   scmp_datum_t b)
{
	struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};
	return c;
}

/* Set once the strict filter is in: sanitizer builds turn leak checking off then. */
static volatile int strict_loaded;

int worker_seccomp_strict(void)
{
	/* What the protocol loop and the built-in handlers use after the hello
	 * (measured with strace -f), and a native handler's basics. */
	static const int allowed[] = {
	    /* frames; waits (ppoll where the arch has no poll), resumed after SIGSTOP */
	    SCMP_SYS(sendmsg),
	    SCMP_SYS(recvmsg),
	    SCMP_SYS(poll),
	    SCMP_SYS(ppoll),
	    SCMP_SYS(restart_syscall),
	    /* payload fd, result memfd and its seals; stderr; a handler's stdio */
	    SCMP_SYS(read),
	    SCMP_SYS(write),
	    SCMP_SYS(pread64),
	    SCMP_SYS(pwrite64),
	    SCMP_SYS(memfd_create),
	    SCMP_SYS(fcntl),
	    SCMP_SYS(lseek),
	    SCMP_SYS(close),
	    SCMP_SYS(fstat),
	    SCMP_SYS(newfstatat),
	    /* malloc (mmap and mprotect below) */
	    SCMP_SYS(brk),
	    SCMP_SYS(munmap),
	    SCMP_SYS(mremap),
	    SCMP_SYS(madvise),
	    /* pid 1's fault handler, abort() (tgkill below) */
	    SCMP_SYS(rt_sigaction),
	    SCMP_SYS(rt_sigprocmask),
	    SCMP_SYS(rt_sigreturn),
	    SCMP_SYS(sigaltstack), /* sanitizer runtimes query it in signal handlers */
	    SCMP_SYS(getpid),
	    SCMP_SYS(gettid),
	    /* clock_gettime without the vDSO, sleeping, random bytes, exiting */
	    SCMP_SYS(clock_gettime),
	    SCMP_SYS(clock_nanosleep),
	    SCMP_SYS(nanosleep),
	    SCMP_SYS(getrandom),
	    SCMP_SYS(exit),
	    SCMP_SYS(exit_group),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r;

	if (!ctx)
		return -ENOMEM;
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r == 0) /* the kernel's errno rather than -ECANCELED */
		r = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	for (size_t i = 0; r == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	/* No new executable memory after init; signals to ourselves only (raise, abort). */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				     arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				     arg_cmp(0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r == 0)
		strict_loaded = 1;
	return r;
}

#if defined(__SANITIZE_ADDRESS__)
#define CORRAL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORRAL_ASAN 1
#endif
#endif

#ifdef CORRAL_ASAN
#include <sys/prctl.h>

/*
 * Sanitizer builds only: LeakSanitizer checks at exit by ptrace()ing the
 * process from a helper, which a seccomp filter (the daemon's "default" kills
 * ptrace) forbids: the helper dies and the exit hangs.  Under a filter, leak
 * checking of the worker is off; it stays on wherever the worker runs free
 * (its own tests).  Called by the ASan runtime at exit.
 */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	static int cached = -1;
	if (cached < 0)
		cached = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2;
	return cached || strict_loaded;
}

/* Decide before a strict filter could forbid prctl. */
__attribute__((constructor)) static void lsan_probe(void)
{
	(void)__lsan_is_turned_off();
}
#endif
