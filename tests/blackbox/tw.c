/* tw.c - a native test worker for the black-box checks: its payload says what to do. */
#include <corral/worker.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/ptrace.h>
static int ncalls;
static char buf[1 << 16];
static int h(struct corral_call *call, void *arg)
{
	const void *p;
	size_t n;
	(void)arg;
	ncalls++;
	int r = corral_call_payload(call, &p, &n);
	if (r < 0)
		return r;
	char cmd[256];
	size_t m = n < 255 ? n : 255;
	memcpy(cmd, p, m);
	cmd[m] = 0;
	if (!strcmp(cmd, "segv")) {
		volatile int *volatile z = (volatile int *)(uintptr_t)64;
		*z = 1;
	} /* not NULL: UBSan would stop first */
	if (!strncmp(cmd, "exit:", 5))
		_exit(atoi(cmd + 5));
	if (!strncmp(cmd, "sleep:", 6)) {
		struct timespec ts = {0};
		long ms = atol(cmd + 6);
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		nanosleep(&ts, NULL);
		return corral_call_write(call, "slept", 5);
	}
	if (!strncmp(cmd, "big:", 4)) {
		long k = atol(cmd + 4);
		memset(buf, 'x', sizeof buf);
		while (k > 0) {
			long c = k < (long)sizeof buf ? k : (long)sizeof buf;
			r = corral_call_write(call, buf, c);
			if (r < 0)
				return r;
			k -= c;
		}
		return 0;
	}
	if (!strcmp(cmd, "bin")) {
		unsigned char b[4] = {0xff, 0xfe, 0x00, 0x80};
		return corral_call_write(call, b, 4);
	}
	if (!strcmp(cmd, "ptrace")) {
		syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
		return corral_call_write(call, "survived", 8);
	}
	if (!strcmp(cmd, "inet")) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		(void)fd;
		return corral_call_write(call, "survived", 8);
	}
	if (!strcmp(cmd, "oom")) {
		for (;;) {
			char *m = malloc(1 << 20);
			if (!m)
				return corral_call_fail(call, "malloc failed");
			memset(m, 1, 1 << 20);
		}
	}
	if (!strncmp(cmd, "spam:", 5)) {
		int k = atoi(cmd + 5);
		for (int i = 0; i < k; i++)
			printf("line %d\n", i);
		fflush(stdout);
		return 0;
	}
	if (!strcmp(cmd, "fail"))
		return corral_call_fail(call, "handler said no");
	if (!strcmp(cmd, "count")) {
		char s[32];
		int l = snprintf(s, sizeof s, "%d", ncalls);
		return corral_call_write(call, s, l);
	}
	if (!strncmp(cmd, "log:", 4)) {
		printf("out:%s\n", cmd + 4);
		fflush(stdout);
		fprintf(stderr, "err:%s\n", cmd + 4);
		return corral_call_write(call, "logged", 6);
	}
	return corral_call_write(call, p, n);
}
int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "slowstart")) {
		printf("starting slowly\n");
		fflush(stdout);
		sleep(30);
	}
	if (argc > 1 && !strcmp(argv[1], "crashstart")) {
		_exit(3);
	}
	return corral_worker_run(h, NULL);
}
