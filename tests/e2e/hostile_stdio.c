/*
 * hostile_stdio.c - a stdio program that attacks its sandbox, for
 * test_isolation.c.  argv[1] says how:
 *
 *	escape     for each attempt named on stdin (space-separated), try to
 *	           reach the worker (our parent) and
 *	           print "NAME: denied (ERRNO)" or "NAME: SUCCEEDED"
 *	orphans N  fork N children that outlive us by a little, then exit 0
 *	bomb       name ourselves corral-bomb, fork a fork bomb, exit 3 soon after
 *	bombwait   name ourselves corral-bomb and fork forever ourselves
 *	oom MB     allocate and touch MB MiB, then print "survived"
 *	stdin      print what stdin is ("stdin: file" or "stdin: pipe"), try to change
 *	           it (pwrite on fd 0, reopen /proc/self/fd/0 read-write to write,
 *	           truncate or map it shared writable, a writable mapping of fd 0),
 *	           printing each outcome as escape does; then read it all and print
 *	           "bytes N sum S" (S: the sum of the bytes)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* Print one attempt's outcome: r >= 0 is success. */
static void report(const char *name, long r, int err)
{
	if (r >= 0)
		printf("%s: SUCCEEDED\n", name);
	else
		printf("%s: denied (%s)\n", name,
		       strerrorname_np(err) ? strerrorname_np(err) : "?");
	fflush(stdout);
}

/* One attempt by name; the worker is pid t. */
static void attempt(const char *name, pid_t t)
{
	char path[64];
	long r;
	int e;

	if (strcmp(name, "mem-write") == 0 || strcmp(name, "mem-read") == 0) {
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)t);
		r = open(path, name[4] == 'w' ? O_RDWR : O_RDONLY);
		e = errno;
		if (r >= 0)
			close((int)r);
		report(name, r, e);
	} else if (strcmp(name, "ptrace-attach") == 0 || strcmp(name, "ptrace-seize") == 0) {
		r = ptrace(name[7] == 'a' ? PTRACE_ATTACH : PTRACE_SEIZE, t, NULL, NULL);
		e = errno;
		if (r >= 0)
			ptrace(PTRACE_DETACH, t, NULL, NULL);
		report(name, r, e);
	} else if (strcmp(name, "vm-read") == 0 || strcmp(name, "vm-write") == 0) {
		/* A bogus remote address: EFAULT means access was granted. */
		char buf[8] = {0};
		struct iovec l = {buf, sizeof(buf)}, rm = {(void *)16, sizeof(buf)};
		r = name[3] == 'r' ? process_vm_readv(t, &l, 1, &rm, 1, 0)
				   : process_vm_writev(t, &l, 1, &rm, 1, 0);
		e = errno;
		report(name, r < 0 && e == EFAULT ? 0 : r, e);
	} else if (strcmp(name, "pidfd-getfd") == 0) {
		int pfd = (int)syscall(SYS_pidfd_open, t, 0);
		e = errno;
		if (pfd < 0) {
			report(name, -1, e);
			return;
		}
		r = 0;
		/* Any of the worker's fds is a prize; 3 and 4 are its channel. */
		for (int fd = 3; fd < 8; fd++) {
			r = syscall(SYS_pidfd_getfd, pfd, fd, 0);
			e = errno;
			if (r >= 0) {
				close((int)r);
				break;
			}
		}
		close(pfd);
		report(name, r, e);
	} else if (strcmp(name, "kill-term") == 0 || strcmp(name, "kill-kill") == 0) {
		r = kill(t, name[5] == 't' ? SIGTERM : SIGKILL);
		report(name, r, errno);
	} else if (strcmp(name, "pidfd-kill") == 0) {
		snprintf(path, sizeof(path), "/proc/%d", (int)t);
		int pfd = open(path, O_RDONLY | O_DIRECTORY);
		e = errno;
		r = pfd < 0 ? -1 : syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0);
		e = pfd < 0 ? e : errno;
		if (pfd >= 0)
			close(pfd);
		report(name, r, e);
	} else {
		printf("%s: unknown attempt\n", name);
	}
}

/* Sleep ms milliseconds. */
static void nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Open stdin again read-write through /proc (the fd or -1, errno set). */
static int reopen_stdin(void)
{
	return open("/proc/self/fd/0", O_RDWR | O_CLOEXEC);
}

/* The stdin attacks, then the bytes of stdin counted and summed. */
static void attack_stdin(void)
{
	static const char evil[] = "PWNED";
	unsigned char buf[4096];
	unsigned long long total = 0, sum = 0;
	struct stat sb;
	ssize_t n;
	void *m;
	int fd, e;

	printf("stdin: %s\n", fstat(0, &sb) == 0 && S_ISREG(sb.st_mode) ? "file" : "pipe");
	report("direct", pwrite(0, evil, 5, 0), errno);
	fd = reopen_stdin();
	e = errno;
	report("reopen", fd >= 0 ? pwrite(fd, evil, 5, 0) : -1, fd >= 0 ? errno : e);
	if (fd >= 0)
		close(fd);
	fd = reopen_stdin();
	e = errno;
	report("truncate", fd >= 0 ? ftruncate(fd, 1) : -1, fd >= 0 ? errno : e);
	if (fd >= 0)
		close(fd);
	fd = reopen_stdin();
	e = errno;
	m = fd >= 0 ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
	report("mmap", m != MAP_FAILED ? 0 : -1, fd >= 0 ? errno : e);
	if (m != MAP_FAILED)
		munmap(m, 4096);
	if (fd >= 0)
		close(fd);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 0, 0);
	report("mmap-direct", m != MAP_FAILED ? 0 : -1, errno);
	if (m != MAP_FAILED)
		munmap(m, 4096);
	while ((n = read(0, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			sum += buf[i];
			total++;
		}
	printf("bytes %llu sum %llu\n", total, sum);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 64;
	if (strcmp(argv[1], "escape") == 0) {
		char in[4096];
		size_t n = fread(in, 1, sizeof(in) - 1, stdin);
		in[n] = '\0';
		pid_t t = getppid(); /* the worker: pid 1 of its pid namespace, or not */
		for (char *save = NULL, *tok = strtok_r(in, " \n", &save); tok;
		     tok = strtok_r(NULL, " \n", &save))
			attempt(tok, t);
		return 0;
	}
	if (strcmp(argv[1], "stdin") == 0) {
		attack_stdin();
		return 0;
	}
	if (strcmp(argv[1], "orphans") == 0) {
		int n = argc > 2 ? atoi(argv[2]) : 8;
		for (int i = 0; i < n; i++)
			if (fork() == 0) {
				/* Outlive the parent; keep stdout open meanwhile. */
				nap(50);
				_exit(0);
			}
		printf("forked %d\n", n);
		return 0;
	}
	if (strcmp(argv[1], "bomb") == 0 || strcmp(argv[1], "bombwait") == 0) {
		prctl(PR_SET_NAME, "corral-bomb");
		/* Nothing of ours keeps the call's pipes open. */
		int null = open("/dev/null", O_RDWR);
		if (strcmp(argv[1], "bomb") == 0 && fork() == 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			setsid();
			for (;;)
				fork();
		}
		if (strcmp(argv[1], "bombwait") == 0)
			for (;;)
				fork();
		nap(300);
		return 3;
	}
	if (strcmp(argv[1], "oom") == 0) {
		long mb = argc > 2 ? atol(argv[2]) : 512;
		for (long i = 0; i < mb; i++) {
			char *p = malloc(1 << 20);
			if (!p)
				break;
			memset(p, (int)i, 1 << 20);
		}
		printf("survived\n");
		return 0;
	}
	return 64;
}
