/*
 * hostile_payload.c - a native worker that tries to change the caller's
 * payload, for test_isolation.c.  Per call it takes every regular file among
 * its fds (the payload fd the daemon passed; the ring's fd is closed by then) and tries, each on
 *its own:
 *
 *	direct    pwrite() on the fd it was given
 *	reopen    open("/proc/self/fd/N", O_RDWR) and pwrite()
 *	truncate  open("/proc/self/fd/N", O_RDWR) and ftruncate() to 0
 *	mmap      open("/proc/self/fd/N", O_RDWR) and a shared writable mapping
 *
 * The result lists "NAME: denied (ERRNO)" or "NAME: SUCCEEDED" per attempt.
 *
 * With argv[1] "oom", each call instead allocates and touches memory until
 * something stops it (the OOM killer of its memory cgroup).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <corral/worker.h>

/* Append one outcome to the report. */
static void note(char *buf, size_t cap, size_t *len, const char *name, int ok, int err)
{
	int n = ok ? snprintf(buf + *len, cap - *len, "%s: SUCCEEDED\n", name)
		   : snprintf(buf + *len, cap - *len, "%s: denied (%s)\n", name,
			      strerrorname_np(err) ? strerrorname_np(err) : "?");
	if (n > 0 && (size_t)n < cap - *len)
		*len += (size_t)n;
}

/* Reopen fd read-write through /proc: the fd or -1 (errno set). */
static int reopen_rw(int fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDWR | O_CLOEXEC);
}

/* Every attack on one fd. */
static void attack(int fd, char *buf, size_t cap, size_t *len)
{
	static const char evil[] = "PWNED";
	int rw, e;
	ssize_t w;

	w = pwrite(fd, evil, 5, 0);
	note(buf, cap, len, "direct", w == 5, errno);

	rw = reopen_rw(fd);
	e = errno;
	w = rw >= 0 ? pwrite(rw, evil, 5, 0) : -1;
	note(buf, cap, len, "reopen", w == 5, rw >= 0 ? errno : e);
	if (rw >= 0)
		close(rw);

	rw = reopen_rw(fd);
	e = errno;
	int t = rw >= 0 ? ftruncate(rw, 0) : -1;
	note(buf, cap, len, "truncate", t == 0, rw >= 0 ? errno : e);
	if (rw >= 0)
		close(rw);

	rw = reopen_rw(fd);
	e = errno;
	void *m =
	    rw >= 0 ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0) : MAP_FAILED;
	e = rw >= 0 ? errno : e;
	if (m != MAP_FAILED) {
		/* Do not write through it: a mapping is proof enough, and a store past
		 * the end of a short file would fault. */
		munmap(m, 4096);
	}
	note(buf, cap, len, "mmap", m != MAP_FAILED, e);
	if (rw >= 0)
		close(rw);
}

/* The handler: attack, drain the payload, report. */
static int handle(struct corral_call *call, void *arg)
{
	char buf[2048];
	size_t len = 0;
	struct stat st;
	unsigned char sink[4096];
	ssize_t n;

	(void)arg;
	for (int fd = 3; fd < 64; fd++)
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			attack(fd, buf, sizeof(buf), &len);
	if (len == 0) {
		/* Say what there was instead. */
		for (int fd = 0; fd < 64; fd++)
			if (fstat(fd, &st) == 0 && len < sizeof(buf) - 32)
				len +=
				    (size_t)snprintf(buf + len, sizeof(buf) - len,
						     "fd %d mode %o\n", fd, (unsigned)st.st_mode);
		note(buf, sizeof(buf), &len, "no-payload-fd", 1, 0);
	}
	while ((n = corral_call_read(call, sink, sizeof(sink))) > 0)
		;
	if (n < 0)
		return (int)n;
	return corral_call_write(call, buf, len);
}

/* The "oom" handler: eat memory, 1 MiB at a time. */
static int eat(struct corral_call *call, void *arg)
{
	(void)arg;
	for (long i = 0; i < 8192; i++) {
		void *p =
		    mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return corral_call_fail(call, "mmap: %s", strerror(errno));
		memset(p, 1, 1 << 20);
	}
	return corral_call_write(call, "survived", 8);
}

int main(int argc, char **argv)
{
	return corral_worker_run(argc > 1 && strcmp(argv[1], "oom") == 0 ? eat : handle, NULL);
}
