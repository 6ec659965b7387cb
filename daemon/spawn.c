/*
 * spawn.c - start one worker process.
 *
 * A plain fork() copies the page tables of every mapping, and the daemon maps
 * every worker's ring: spawn cost would grow with the number of workers, and
 * each write the daemon makes to its memory while a forked child lives is a
 * copy-on-write fault (with a TLB shootdown on the other CPU).  So:
 *
 *   corrald --clone(CLONE_VM|CLONE_VFORK)--> first child (our memory, our stack
 *       | waits                          |  for a moment): fds into place,
 *       |                                |  cgroups, open_tree of the ro paths,
 *       |                                |  uid switch
 *       |                                +--clone(namespaces|CLONE_PARENT)--> worker
 *       |  <-- first child exits            (our child, pid 1 of its namespace):
 *       v                                    maps, mounts, Landlock, seccomp,
 *   back to the loop                         [wait for go], execve
 *
 * The first child shares our memory, tells us the worker's pid through it and
 * does only async-signal-safe work.  A worker started now shares it too
 * (CLONE_VM|CLONE_VFORK): we wait for its execve, with no copy at all.  A
 * failed step is reported (step, errno) on a close-on-exec status pipe: EOF
 * without a message means the execve happened.
 *
 * A spare of corral-worker (builtin, stdio) is spawned as a worker started
 * now is; launch.c keeps it with its hello until it is taken.  A spare of a
 * native program (pool.spares) is the worker told to wait before execve: it blocks
 * reading its "go" pipe (fd 7), already inside its namespaces, mount view and
 * filters; one byte sends it on to execve, EOF makes it exit.  It cannot share
 * our memory while it waits, so it is a copy-on-write copy (clone without
 * CLONE_VM), made when the loop is idle; the caller watches its status pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corral-config.h"
#include "corrald.h"
#include "log.h"
#include "sandbox.h"

extern char **environ;

static int write_cgroup(const char *procs);

/*
 * Code that runs in the clone()d child, on its own stack in our address space:
 * sanitizer runtimes track stacks and would misread it (and print into the
 * worker's stderr), so it is not instrumented.
 */
#define CHILD_CODE __attribute__((no_sanitize("address", "undefined")))

#define SPAWN_STACK_SIZE (256u * 1024u)

/* What the child needs; lives on the parent's stack during the clone. */
struct child_args {
	char *const *argv;
	int src[5]; /* fds to place at 0..4 */
	int errpipe;
	int exec_src;	   /* the program's fd (plan->exec_fd or its slot), or -1 */
	int go_src;	   /* a spare's go pipe (read end, or its slot), or -1 */
	int unshare_below; /* >0: the fd table is shared (CLONE_FILES); keep only fds below */
	const struct type_config *tc;
	const struct sandbox_plan *plan;
	void *stack2; /* stack of the worker (a copy of ours once it runs) */
	size_t stack2_size;
	bool nproc_limit;
	bool hold;	  /* a spare: wait on fd 7 before execve */
	pid_t worker_pid; /* the worker, told back by the first child */
};

enum {
	STEP_DUP = 1,
	STEP_SIGNALS,
	STEP_PDEATHSIG,
	STEP_RLIMIT,
	STEP_CGROUP,
	STEP_USER,
	STEP_NAMESPACES,
	STEP_MAPS,
	STEP_MOUNTS,
	STEP_SECCOMP,
	STEP_LANDLOCK,
	STEP_EXEC,
};

/* Report errno (or -r) and the failing step through the error pipe, then die. */
CHILD_CODE static _Noreturn void child_fail(struct child_args *a, int step, int err)
{
	int msg[2] = {step, err};
	ssize_t w = write(a->errpipe, msg, sizeof(msg));
	(void)w;
	_exit(127);
}

/* Set one rlimit (soft = hard). */
CHILD_CODE static int set_limit(int res, rlim_t v)
{
	struct rlimit rl = {v, v};
	return setrlimit(res, &rl);
}

/* Drop to the worker's uid and gid. */
CHILD_CODE static int switch_user(const struct sandbox_plan *p)
{
	/* Raw system calls: glibc's wrappers would signal the daemon's other threads. */
	if (syscall(SYS_setgroups, 0, NULL) < 0 && errno != EPERM)
		return -errno;
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0 ||
	    syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		return -errno;
	return 0;
}

/*
 * The worker side of the spawn, in the final process: namespaces' inside,
 * death signal, limits, seccomp, exec.  Shared by both spawn shapes.
 */
CHILD_CODE static int child_final(void *arg)
{
	struct child_args *a = arg;
	const struct sandbox_plan *p = a->plan;
	int r;

	if ((p->ns & NS_USER) && (r = sandbox_child_maps(p)) < 0)
		child_fail(a, STEP_MAPS, -r);
	if ((p->ns & NS_MOUNT) && (r = sandbox_child_mounts(p)) < 0)
		child_fail(a, STEP_MOUNTS, -r);
	if (p->ns & NS_UTS)
		sethostname("corral", 6);
	if (p->switch_user && !(p->ns & NS_USER)) {
		if ((r = switch_user(p)) < 0)
			child_fail(a, STEP_USER, -r);
		/* The uid change made the mm (ours and, until exec, the daemon's) non-dumpable. */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	/* After every credential change, which clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		child_fail(a, STEP_PDEATHSIG, errno);
	/* The daemon may have died before the death signal was armed: its end of
	 * the error pipe is then closed, and ours reports POLLERR. */
	struct pollfd pfd = {a->errpipe, POLLOUT, 0};
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR))
		_exit(127);

	/* Own session: a terminal's ^C reaches the daemon, which drains in order. */
	setsid();
	/* execve resets handled signals but keeps ignored ones; and until then a
	 * signal must not run the daemon's handler here.  These are all the daemon
	 * sets (libevent's signal events, SIGPIPE ignored). */
	static const int ours[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE};
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		signal(ours[i], SIG_DFL);
	sigset_t empty;
	sigemptyset(&empty);
	if (sigprocmask(SIG_SETMASK, &empty, NULL) < 0)
		child_fail(a, STEP_SIGNALS, errno);

	/* Limits (the sandbox layer "rlimits"). */
	const struct limits_config *l = &a->tc->limits;
	if (set_limit(RLIMIT_NOFILE, l->nofile) < 0 || set_limit(RLIMIT_CORE, 0) < 0)
		child_fail(a, STEP_RLIMIT, errno);
	if (a->nproc_limit && set_limit(RLIMIT_NPROC, l->nproc) < 0)
		child_fail(a, STEP_RLIMIT, errno);
	if (l->cpu_s && set_limit(RLIMIT_CPU, l->cpu_s) < 0)
		child_fail(a, STEP_RLIMIT, errno);
	if (l->memory_mb && !p->cgroup_procs &&
	    set_limit(RLIMIT_AS, (rlim_t)l->memory_mb << 20) < 0)
		child_fail(a, STEP_RLIMIT, errno);

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(a, STEP_SECCOMP, errno);
	/* Inside the final mount view: the tmpfs paths are the worker's own. */
	if ((r = sandbox_child_landlock(p)) < 0)
		child_fail(a, STEP_LANDLOCK, -r);
	if (p->filter && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, p->filter) < 0)
		child_fail(a, STEP_SECCOMP, errno);

	/* A spare: everything is in place but the program.  One byte: go on; EOF
	 * (the daemon discarded us, or is gone): leave quietly. */
	if (a->hold) {
		char go;
		ssize_t n;
		do
			n = read(7, &go, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			_exit(0);
		close(7);
	}

	if (p->exec_fd >= 0)
		syscall(SYS_execveat, 6, "", a->argv, p->envp ? p->envp : environ, AT_EMPTY_PATH);
	else
		execve(a->argv[0], a->argv, p->envp ? p->envp : environ);
	child_fail(a, STEP_EXEC, errno);
}

/* The child: runs on its own stack in our address space until execve. */
CHILD_CODE static int child_main(void *arg)
{
	struct child_args *a = arg;
	const struct sandbox_plan *p = a->plan;
	int tmp[5], r;

	/* First of all, a table of our own holding only the low slots (O(slots), not
	 * O(fds the daemon has open): spawn cost stays flat with 1,000 workers). */
	if (a->unshare_below > 0 &&
	    syscall(SYS_close_range, a->unshare_below, ~0U, CLOSE_RANGE_UNSHARE) < 0)
		child_fail(a, STEP_DUP, errno);

	/* Move everything out of the way of 0..7 first, then into place:
	 * 0-4 the worker's fds, 5 the status pipe, 6 the program to exec, 7 the go
	 * pipe of a spare (the last three close-on-exec). */
	int tmpx = -1, tmpg = -1;
	for (int i = 0; i < 5; i++) {
		tmp[i] = fcntl(a->src[i], F_DUPFD, 16);
		if (tmp[i] < 0)
			child_fail(a, STEP_DUP, errno);
	}
	if (a->exec_src >= 0 && (tmpx = fcntl(a->exec_src, F_DUPFD, 16)) < 0)
		child_fail(a, STEP_DUP, errno);
	if (a->go_src >= 0 && (tmpg = fcntl(a->go_src, F_DUPFD, 16)) < 0)
		child_fail(a, STEP_DUP, errno);
	int ep = fcntl(a->errpipe, F_DUPFD_CLOEXEC, 16);
	if (ep < 0)
		child_fail(a, STEP_DUP, errno);
	a->errpipe = ep;
	for (int i = 0; i < 5; i++)
		if (dup2(tmp[i], i) < 0)
			child_fail(a, STEP_DUP, errno);
	if (dup3(ep, 5, O_CLOEXEC) < 0)
		child_fail(a, STEP_DUP, errno);
	a->errpipe = 5;
	if (tmpx >= 0 && dup3(tmpx, 6, O_CLOEXEC) < 0)
		child_fail(a, STEP_DUP, errno);
	if (tmpg >= 0 && dup3(tmpg, 7, O_CLOEXEC) < 0)
		child_fail(a, STEP_DUP, errno);
	/* An unused 6 or 7 still holds the daemon's own fd of that number (its
	 * listening socket, say): kept until execve, it would outlive a daemon
	 * killed meanwhile and take the connections meant for its successor. */
	if (tmpx < 0)
		close(6);
	if (tmpg < 0)
		close(7);
	if (syscall(SYS_close_range, 8, ~0U, 0) < 0) {
		for (int fd = 8; fd < 65536; fd++)
			close(fd);
	}
	if (p->cgroup_procs && (r = -write_cgroup(p->cgroup_procs)) > 0)
		child_fail(a, STEP_CGROUP, r);
	if (p->pids_procs && (r = -write_cgroup(p->pids_procs)) > 0)
		child_fail(a, STEP_CGROUP, r);

	/*
	 * Namespaces: drop to the worker's uid first (a user namespace maps only
	 * our own ids without privilege), then clone the worker into the new
	 * namespaces as the daemon's child (CLONE_PARENT): it is pid 1 of its pid
	 * namespace and the daemon reaps it directly.  A spare runs on by itself
	 * (a copy: it waits), any other worker shares our memory until its execve.
	 */
	/* Still privileged and in our mount namespace: take the trees to show. */
	if ((p->ns & NS_MOUNT) && p->ro_fds)
		sandbox_child_trees(p);
	if (p->switch_user && (p->ns & NS_USER) && (r = switch_user(p)) < 0)
		child_fail(a, STEP_USER, -r);
	if (!(p->ns & NS_ALL) && !a->hold)
		return child_final(a);
	int flags = a->hold ? CLONE_PARENT : CLONE_VM | CLONE_VFORK | CLONE_PARENT;
	if (p->ns & NS_USER)
		flags |= CLONE_NEWUSER;
	if (p->ns & NS_PID)
		flags |= CLONE_NEWPID;
	if (p->ns & NS_NET)
		flags |= CLONE_NEWNET;
	if (p->ns & NS_IPC)
		flags |= CLONE_NEWIPC;
	if (p->ns & NS_UTS)
		flags |= CLONE_NEWUTS;
	if (p->ns & NS_MOUNT)
		flags |= CLONE_NEWNS;
	pid_t pid = clone(child_final, (char *)a->stack2 + a->stack2_size, flags, a);
	if (pid < 0)
		child_fail(a, STEP_NAMESPACES, errno);
	a->worker_pid = pid;
	_exit(0);
}

/* Join a cgroup: write "0" (ourselves) to its cgroup.procs; 0 or -errno. */
CHILD_CODE static int write_cgroup(const char *procs)
{
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, "0", 1);
	int e = errno;
	close(fd);
	return n == 1 ? 0 : -e;
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
	case STEP_CGROUP:
		return "cannot join the worker's cgroups";
	case STEP_USER:
		return "cannot switch to the worker's user";
	case STEP_NAMESPACES:
		return "cannot create namespaces";
	case STEP_MAPS:
		return "cannot write the uid/gid maps";
	case STEP_MOUNTS:
		return "cannot build the mount namespace";
	case STEP_SECCOMP:
		return "cannot install the seccomp filter";
	case STEP_LANDLOCK:
		return "cannot apply the Landlock ruleset";
	default:
		return "exec";
	}
}

/*
 * Low fd slots for spawning: placeholders (dups of /dev/null) at low numbers,
 * reserved while the daemon is young.  A spawn parks the child's fds there,
 * clones with a shared fd table, and the child unshares only [0, slot_limit)
 * with close_range(CLOSE_RANGE_UNSHARE): a plain clone copies the whole table.
 * 0 devnull, 1 stdout, 2 stderr, 3 socket, 4 ring, 5 status pipe, 6 program,
 * 7 go pipe.
 */
#define SLOT_N 8
static int slots[SLOT_N];
static int slot_limit = -1; /* -1 not tried, 0 unavailable (old kernel), else max + 1 */

/* Reserve the slots once; false where the kernel lacks CLOSE_RANGE_UNSHARE. */
static bool slots_ready(int devnull)
{
	if (slot_limit >= 0)
		return slot_limit > 0;
	slot_limit = 0;
	/* Supported?  An empty range: it only gives us a private copy of our table. */
	if (syscall(SYS_close_range, ~0U, ~0U, CLOSE_RANGE_UNSHARE) < 0) {
		log_info("close_range(CLOSE_RANGE_UNSHARE) unavailable: spawn copies the fd table");
		return false;
	}
	int max = 0;
	for (int i = 0; i < SLOT_N; i++) {
		slots[i] = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
		if (slots[i] < 0) {
			while (i-- > 0)
				close(slots[i]);
			return false;
		}
		if (slots[i] > max)
			max = slots[i];
	}
	slot_limit = max + 1;
	return true;
}

/* Map one spawn stack. */
static void *stack_new(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int devnull = -1;

/* Open /dev/null and reserve the low slots: call once the listening socket is in place. */
void spawn_init(void)
{
	if (devnull < 0)
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull >= 0)
		slots_ready(devnull);
}

/* The message of a status pipe (the step and errno a failed child wrote), into buf. */
bool spawn_status_message(const int msg[2], const char *prog, char *buf, size_t len)
{
	if (msg[0] < STEP_DUP || msg[0] > STEP_EXEC)
		return false;
	snprintf(buf, len, "%s %s: %s", step_name(msg[0]), prog, strerror(msg[1]));
	return true;
}

/*
 * Start argv[0] with sock, memfd, outw, errw at fds 3, 4, 1, 2 and /dev/null at
 * 0, isolated per plan.  Returns 0 with *ret_pid (the worker, our child, past
 * its execve), or -1 with a message in errbuf.  A spare (go_r >= 0) waits for
 * a byte on go_r before execve: then *status_r is the status pipe's read end
 * (a message on failure, EOF at execve), else -1.
 */
int spawn_worker_process(struct daemon *d, char *const argv[], int sock, int memfd, int outw,
			 int errw, int go_r, const struct type_config *tc,
			 const struct sandbox_plan *plan, pid_t *ret_pid, int *status_r,
			 char *errbuf, size_t errlen)
{
	struct child_args a = {0};
	int pipefd[2];
	sigset_t all, old;
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
		d->spawn_stack = stack_new(SPAWN_STACK_SIZE);
		d->spawn_stack2 = stack_new(SPAWN_STACK_SIZE);
		if (!d->spawn_stack || !d->spawn_stack2) {
			snprintf(errbuf, errlen, "cannot map the spawn stacks: %s",
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
	a.exec_src = plan->exec_fd;
	a.go_src = go_r;
	a.hold = go_r >= 0;
	int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
	if (slots_ready(devnull)) {
		/* Park the child's fds in the low slots and share our table with it: it
		 * unshares only the slots (see child_main). */
		int src[SLOT_N] = {devnull, outw,      errw,	      sock,
				   memfd,   pipefd[1], plan->exec_fd, go_r};
		for (int i = 1; i < SLOT_N; i++)
			if (src[i] >= 0)
				dup3(src[i], slots[i], O_CLOEXEC);
		for (int i = 0; i < 5; i++)
			a.src[i] = slots[i];
		a.errpipe = slots[5];
		a.exec_src = plan->exec_fd >= 0 ? slots[6] : -1;
		a.go_src = go_r >= 0 ? slots[7] : -1;
		a.unshare_below = slot_limit;
		flags |= CLONE_FILES;
	}
	a.tc = tc;
	a.plan = plan;
	a.stack2 = d->spawn_stack2;
	a.stack2_size = d->spawn_stack_size;
	a.worker_pid = -1;
	/* RLIMIT_NPROC counts every process of a uid (per user namespace): only a
	 * worker with a uid namespace of its own can take it without sharing ours. */
	a.nproc_limit = (plan->ns & NS_USER) != 0;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = clone(child_main, (char *)d->spawn_stack + d->spawn_stack_size, flags, &a);
	int saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (flags & CLONE_FILES)
		/* Let go of the worker's ends (and the status pipe's, for its EOF). */
		for (int i = 1; i < SLOT_N; i++)
			dup3(devnull, slots[i], O_CLOEXEC);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		snprintf(errbuf, errlen, "clone: %s", strerror(saved));
		return -1;
	}
	/* The first child has exec'd, or exited after the worker's clone. */
	if ((plan->ns & NS_ALL) || a.hold) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		pid = a.worker_pid;
	}
	*status_r = -1;
	if (a.hold && pid > 0) {
		fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
		*ret_pid = pid;
		*status_r = pipefd[0];
		return 0;
	}
	/* CLONE_VFORK: the worker has exec'd or died; the pipe holds the verdict. */
	int msg[2];
	ssize_t n;
	do
		n = read(pipefd[0], msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(msg)) {
		if (!spawn_status_message(msg, argv[0], errbuf, errlen))
			snprintf(errbuf, errlen, "cannot start %s", argv[0]);
		/* The child has already exited 127: collect it here, not in the reaper. */
		while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	if (pid <= 0) {
		snprintf(errbuf, errlen, "cannot start %s: the spawn child failed", argv[0]);
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
			/* Installed: the libexec directory relative to the sbin one. */
			snprintf(buf, sizeof(buf), "%s/" CORRAL_SBIN_TO_LIBEXEC "/corral-worker",
				 self);
			if (CORRAL_SBIN_TO_LIBEXEC[0] && access(buf, X_OK) == 0) {
				char *r = realpath(buf, NULL);
				return r ? r : strdup(buf);
			}
		}
	}
	return strdup(CORRAL_LIBEXECDIR "/corral-worker");
}
