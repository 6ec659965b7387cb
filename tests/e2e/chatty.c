/*
 * chatty.c - a native worker that floods its stdout, for the fairness tests
 * and bench-hostile.
 *
 *   chatty COUNT LEN exit    print COUNT lines of LEN bytes, then exit 0
 *                            (never says hello: the worker stays "starting")
 *   chatty COUNT LEN serve   a child prints COUNT lines (0: without end) while
 *                            this process serves calls (echo) as a normal worker
 *
 * Lines are written as fast as the pipe takes them: one write per 64 KiB.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <corral/worker.h>

/* Echo the payload back. */
static int echo(struct corral_call *call, void *arg)
{
	const void *in;
	size_t n;
	int r;

	(void)arg;
	while ((r = corral_call_peek(call, &in, &n)) > 0) {
		r = corral_call_write(call, in, n);
		if (r < 0)
			return r;
		corral_call_consume(call, n);
	}
	return r;
}

/* Write count lines (0: forever) of len bytes each, newline included, to stdout. */
static void flood(unsigned long count, size_t len)
{
	static char buf[65536];
	size_t per = sizeof(buf) / len, fill = 0;
	unsigned long done = 0;

	for (size_t i = 0; i < per; i++) {
		memset(buf + i * len, 'a' + (int)(i % 26), len - 1);
		buf[i * len + len - 1] = '\n';
	}
	while (count == 0 || done < count) {
		size_t lines = per;
		if (count && count - done < lines)
			lines = count - done;
		fill = lines * len;
		for (size_t off = 0; off < fill;) {
			ssize_t w = write(1, buf + off, fill - off);
			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		done += lines;
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: chatty COUNT LEN exit|serve\n");
		return 2;
	}
	unsigned long count = strtoul(argv[1], NULL, 10);
	size_t len = strtoul(argv[2], NULL, 10);
	if (len < 1 || len > 65536)
		len = 64;
	if (strcmp(argv[3], "exit") == 0) {
		flood(count, len);
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(3); /* the worker's channels are not the printer's */
		close(4);
		flood(count, len);
		for (;;)
			pause();
	}
	int r = corral_worker_run(echo, NULL);
	kill(pid, SIGKILL);
	return r;
}
