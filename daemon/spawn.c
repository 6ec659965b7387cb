/*
 * spawn.c - start one worker process.
 *
 * A plain fork() copies the page tables of every mapping, and the daemon maps
 * every worker's ring: spawn cost would grow with the number of workers.  So
 * the child is a clone(CLONE_VM|CLONE_VFORK) on a private stack: it shares our
 * memory until it calls execve, the parent sleeps meanwhile, and the child does
 * only async-signal-safe work.  Signals are blocked around the clone; the child
 * resets every disposition before unblocking.  A close-on-exec error pipe
 * carries errno back when something fails before or at execve.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corral-config.h"
#include "corrald.h"
#include "log.h"

extern char **environ;

#define SPAWN_STACK_SIZE (256u * 1024u)

/* What the child needs; lives on the parent's stack during the clone. */
struct child_args {
	char *const *argv;
	int src[5]; /* fds to place at 0..4 */
	int errpipe;
	pid_t parent;
	sigset_t oldmask;
	const struct type_config *tc;
	bool nproc_limit;
	int failed_step;
};

enum {
	STEP_DUP = 1,
	STEP_SIGNALS,
	STEP_PDEATHSIG,
	STEP_RLIMIT,
	STEP_EXEC,
};

/* Report errno and the failing step through the error pipe, then die. */
static _Noreturn void child_fail(struct child_args *a, int step)
{
	int msg[2] = {step, errno};
	ssize_t w = write(a->errpipe, msg, sizeof(msg));
	(void)w;
	_exit(127);
}

/* Set one rlimit (soft = hard). */
static int set_limit(int res, rlim_t v)
{
	struct rlimit rl = {v, v};
	return setrlimit(res, &rl);
}

/* The child: runs on its own stack in our address space until execve. */
static int child_main(void *arg)
{
	struct child_args *a = arg;
	int tmp[5];

	/* Move everything out of the way of 0..5 first, then into place. */
	for (int i = 0; i < 5; i++) {
		tmp[i] = fcntl(a->src[i], F_DUPFD, 16);
		if (tmp[i] < 0)
			child_fail(a, STEP_DUP);
	}
	int ep = fcntl(a->errpipe, F_DUPFD_CLOEXEC, 16);
	if (ep < 0)
		child_fail(a, STEP_DUP);
	a->errpipe = ep;
	for (int i = 0; i < 5; i++)
		if (dup2(tmp[i], i) < 0)
			child_fail(a, STEP_DUP);
	if (dup3(ep, 5, O_CLOEXEC) < 0)
		child_fail(a, STEP_DUP);
	a->errpipe = 5;
	if (syscall(SYS_close_range, 6, ~0U, 0) < 0) {
		for (int fd = 6; fd < 65536; fd++)
			close(fd);
	}

	/* Own session: a terminal's ^C reaches the daemon, which drains in order. */
	setsid();

	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		signal(sig, SIG_DFL);
	}
	sigset_t empty;
	sigemptyset(&empty);
	if (sigprocmask(SIG_SETMASK, &empty, NULL) < 0)
		child_fail(a, STEP_SIGNALS);

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		child_fail(a, STEP_PDEATHSIG);
	if (getppid() != a->parent)
		_exit(127); /* the daemon died before we armed PDEATHSIG */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

	/* Limits (the sandbox layer "rlimits"). */
	const struct limits_config *l = &a->tc->limits;
	if (set_limit(RLIMIT_NOFILE, l->nofile) < 0 || set_limit(RLIMIT_CORE, 0) < 0)
		child_fail(a, STEP_RLIMIT);
	if (a->nproc_limit && set_limit(RLIMIT_NPROC, l->nproc) < 0)
		child_fail(a, STEP_RLIMIT);
	if (l->cpu_s && set_limit(RLIMIT_CPU, l->cpu_s) < 0)
		child_fail(a, STEP_RLIMIT);
	if (l->memory_mb && set_limit(RLIMIT_AS, (rlim_t)l->memory_mb << 20) < 0)
		child_fail(a, STEP_RLIMIT);

	execve(a->argv[0], a->argv, environ);
	child_fail(a, STEP_EXEC);
}

/* Human name of a failed step. */
static const char *step_name(int step)
{
	switch (step) {
	case STEP_DUP:
		return "cannot set up fds";
	case STEP_SIGNALS:
		return "cannot reset signals";
	case STEP_PDEATHSIG:
		return "cannot set PR_SET_PDEATHSIG";
	case STEP_RLIMIT:
		return "cannot set rlimits";
	default:
		return "cannot exec";
	}
}

/*
 * Start argv[0] with sock, memfd, outw, errw at fds 3, 4, 1, 2 and /dev/null at 0.
 * Returns 0 with *ret_pid, or -1 with a message in errbuf.
 */
int spawn_worker_process(struct daemon *d, char *const argv[], int sock, int memfd, int outw,
			 int errw, const struct type_config *tc, pid_t *ret_pid, char *errbuf,
			 size_t errlen)
{
	static int devnull = -1;
	struct child_args a = {0};
	int pipefd[2];
	sigset_t all;
	pid_t pid;

	if (devnull < 0) {
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull < 0) {
			snprintf(errbuf, errlen, "cannot open /dev/null: %s", strerror(errno));
			return -1;
		}
	}
	if (!d->spawn_stack) {
		d->spawn_stack_size = SPAWN_STACK_SIZE;
		d->spawn_stack = mmap(NULL, d->spawn_stack_size, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (d->spawn_stack == MAP_FAILED) {
			d->spawn_stack = NULL;
			snprintf(errbuf, errlen, "cannot map the spawn stack: %s",
				 strerror(errno));
			return -1;
		}
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	a.argv = argv;
	a.src[0] = devnull;
	a.src[1] = outw;
	a.src[2] = errw;
	a.src[3] = sock;
	a.src[4] = memfd;
	a.errpipe = pipefd[1];
	a.parent = getpid();
	a.tc = tc;
	/* RLIMIT_NPROC counts every process of the uid: without a uid of its own the
	 * worker would share the daemon's count, so it waits for the user namespace. */
	a.nproc_limit = false;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &a.oldmask);
	pid = clone(child_main, (char *)d->spawn_stack + d->spawn_stack_size,
		    CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	int saved = errno;
	sigprocmask(SIG_SETMASK, &a.oldmask, NULL);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		snprintf(errbuf, errlen, "clone: %s", strerror(saved));
		return -1;
	}
	/* CLONE_VFORK: the child has exec'd or died; the pipe holds the verdict. */
	int msg[2];
	ssize_t n;
	do
		n = read(pipefd[0], msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(msg)) {
		snprintf(errbuf, errlen, "%s %s: %s", step_name(msg[0]), argv[0],
			 strerror(msg[1]));
		/* The child has already exited 127: collect it here, not in the reaper. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	*ret_pid = pid;
	return 0;
}

/* Find corral-worker: beside us in the build tree, else the libexec directory. */
char *spawn_find_worker_binary(void)
{
	const char *env = getenv("CORRAL_WORKER");
	char self[4096], buf[4200];

	if (env && *env)
		return strdup(env);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, sizeof(buf), "%s/../worker/corral-worker", self);
			if (access(buf, X_OK) == 0) {
				char *r = realpath(buf, NULL);
				return r ? r : strdup(buf);
			}
			snprintf(buf, sizeof(buf), "%s/corral-worker", self);
			if (access(buf, X_OK) == 0)
				return strdup(buf);
		}
	}
	return strdup(CORRAL_LIBEXECDIR "/corral-worker");
}
