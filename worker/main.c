/*
 * main.c - corral-worker, the host binary corrald execs for the builtin and
 * stdio worker modes:
 *
 *	corral-worker builtin NAME [--output-kb N] [--seccomp strict]
 *	corral-worker stdio [--output-kb N] [--seccomp strict] -- PROGRAM [ARG...]
 *
 * Both run a handler through libcorral-worker's loop, like any native worker.
 * --seccomp strict confines a builtin worker after the hello, as CORRAL_SECCOMP
 * does a native one; stdio ignores it (and CORRAL_SECCOMP): its program, forked
 * and exec'd per call, would inherit the filter.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral-config.h"
#include "host.h"
#include "worker-int.h"

#define EXIT_USAGE 64 /* EX_USAGE */

/* Print usage to f; returns status. */
static int usage(FILE *f, int status)
{
	fprintf(f,
		"usage: corral-worker builtin NAME [--output-kb N] [--seccomp strict]\n"
		"       corral-worker stdio [--output-kb N] [--seccomp strict] -- PROG [ARG...]\n"
		"       corral-worker --version\n"
		"Built-in handlers: %s.  Run by corrald with the channel on fds 3 and 4.\n",
		builtin_names);
	return status;
}

/* Parse --output-kb's value into bytes (0: no limit). */
static int parse_kb(const char *s, uint64_t *ret)
{
	unsigned long long kb;
	char *end;

	errno = 0;
	kb = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || kb > UINT64_MAX / 1024)
		return -1;
	*ret = (uint64_t)kb * 1024;
	return 0;
}

int main(int argc, char **argv)
{
	struct corral_worker_options opts = {0};
	struct stdio_prog prog = {NULL};
	enum corral_seccomp seccomp = CORRAL_SECCOMP_ENV;
	corral_handler_fn fn = NULL;
	const char *name = NULL, *val;
	bool builtin;

	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("corral-worker %s\n", CORRAL_VERSION);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--help") == 0)
		return usage(stdout, 0);
	if (argc < 2 || (strcmp(argv[1], "builtin") != 0 && strcmp(argv[1], "stdio") != 0))
		return usage(stderr, EXIT_USAGE);
	builtin = strcmp(argv[1], "builtin") == 0;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--output-kb") == 0 ||
		    strncmp(argv[i], "--output-kb=", 12) == 0) {
			val = argv[i][11] == '=' ? argv[i] + 12 : (++i < argc ? argv[i] : NULL);
			if (!val || parse_kb(val, &opts.max_output) < 0) {
				fprintf(stderr,
					"corral-worker: --output-kb needs a number of KiB\n");
				return EXIT_USAGE;
			}
		} else if (strcmp(argv[i], "--seccomp") == 0 ||
			   strncmp(argv[i], "--seccomp=", 10) == 0) {
			val = argv[i][9] == '=' ? argv[i] + 10 : (++i < argc ? argv[i] : NULL);
			if (!val || strcmp(val, "strict") != 0) {
				fprintf(stderr, "corral-worker: --seccomp takes strict\n");
				return EXIT_USAGE;
			}
			seccomp = CORRAL_SECCOMP_STRICT;
		} else if (!builtin && strcmp(argv[i], "--") == 0) {
			prog.argv = argv + i + 1;
			break;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "corral-worker: unknown option %s\n", argv[i]);
			return usage(stderr, EXIT_USAGE);
		} else if (builtin && !name) {
			name = argv[i];
		} else if (!builtin) {
			prog.argv = argv + i;
			break;
		} else {
			return usage(stderr, EXIT_USAGE);
		}
	}

	if (builtin) {
		if (!name)
			return usage(stderr, EXIT_USAGE);
		fn = builtin_lookup(name);
		if (!fn) {
			fprintf(stderr, "corral-worker: no built-in handler %s (have %s)\n", name,
				builtin_names);
			return EXIT_USAGE;
		}
		return corral_worker_run_seccomp(fn, NULL, &opts, seccomp);
	}
	if (!prog.argv || !prog.argv[0])
		return usage(stderr, EXIT_USAGE);
	val = getenv("CORRAL_SECCOMP");
	if (seccomp == CORRAL_SECCOMP_STRICT || (val && *val))
		fprintf(stderr, "corral-worker: stdio mode ignores seccomp strict "
				"(its program would inherit the filter)\n");
	unsetenv("CORRAL_SECCOMP");
	int r = stdio_init(&prog);
	if (r < 0) {
		fprintf(stderr, "corral-worker: cannot set up the stdio adapter: %s\n",
			strerror(-r));
		return 1;
	}
	return corral_worker_run_seccomp(stdio_handle, &prog, &opts, CORRAL_SECCOMP_NONE);
}
