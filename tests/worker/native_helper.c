/*
 * native_helper.c - a native worker exercising the rest of corral/worker.h for
 * test_worker.c.  argv[1] picks the handler:
 *   whole: corral_call_payload(), result = the payload reversed; a payload
 *          "fail:MSG" writes a few bytes, then fails with MSG.
 *   half:  corral_call_read() in odd-sized chunks, echoing only the first half
 *          of the payload; the library must discard the rest.
 *   do:    the payload names something to do, result "ok": "socket", "open" and
 *          "exec" (executable memory) make a call the strict seccomp filter
 *          forbids, "segv" a real fault, "abort" abort(); anything else is echoed.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <corral/worker.h>

/* Whole payload at once; reversed. */
static int whole(struct corral_call *call, void *arg)
{
	const unsigned char *p;
	const void *v;
	unsigned char c;
	size_t n;
	int r;

	(void)arg;
	r = corral_call_payload(call, &v, &n);
	if (r < 0)
		return r;
	p = v;
	if (n >= 5 && memcmp(p, "fail:", 5) == 0) {
		corral_call_write(call, "partial", 7);
		return corral_call_fail(call, "%.*s", (int)(n - 5), (const char *)p + 5);
	}
	if (corral_call_remaining(call) != 0)
		return corral_call_fail(call, "payload not consumed");
	for (size_t i = n; i > 0; i--) {
		c = p[i - 1];
		r = corral_call_write(call, &c, 1);
		if (r < 0)
			return r;
	}
	return corral_call_written(call) == corral_call_len(call) ? 0 : -EIO;
}

/* The first half of the payload, through corral_call_read(). */
static int half(struct corral_call *call, void *arg)
{
	char buf[997];
	uint64_t want = corral_call_len(call) / 2;
	ssize_t n;
	int r;

	(void)arg;
	while (want > 0) {
		n = corral_call_read(call, buf, want < sizeof(buf) ? (size_t)want : sizeof(buf));
		if (n <= 0)
			return n < 0 ? (int)n : corral_call_fail(call, "payload ended early");
		r = corral_call_write(call, buf, (size_t)n);
		if (r < 0)
			return r;
		want -= (uint64_t)n;
	}
	return 0;
}

/* The payload is s. */
static bool is(const void *v, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(v, s, n) == 0;
}

/* Do what the payload says (see the top). */
static int act(struct corral_call *call, void *arg)
{
	/* Not NULL itself (UBSan would stop at a null dereference): an unmapped page. */
	volatile int *volatile null = (volatile int *)(uintptr_t)64;
	const void *v;
	void *m;
	size_t n;
	int r, fd;

	(void)arg;
	r = corral_call_payload(call, &v, &n);
	if (r < 0)
		return r;
	if (is(v, n, "socket")) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		r = fd < 0 ? -1 : close(fd);
	} else if (is(v, n, "open")) {
		fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
		r = fd < 0 ? -1 : close(fd);
	} else if (is(v, n, "exec")) {
		m = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		r = m == MAP_FAILED ? -1 : munmap(m, 4096);
	} else if (is(v, n, "segv")) {
		*null = 1;
	} else if (is(v, n, "abort")) {
		abort();
	} else {
		return corral_call_write(call, v, n);
	}
	if (r < 0)
		return corral_call_fail(call, "%.*s failed: %s", (int)n, (const char *)v,
					strerror(errno));
	return corral_call_write(call, "ok", 2);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "whole") == 0)
		return corral_worker_run(whole, NULL);
	if (argc == 2 && strcmp(argv[1], "half") == 0)
		return corral_worker_run(half, NULL);
	if (argc == 2 && strcmp(argv[1], "do") == 0)
		return corral_worker_run(act, NULL);
	return 64;
}
