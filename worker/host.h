/*
 * host.h - the corral-worker host binary: built-in handlers and the stdio
 * adapter, both plain libcorral-worker handlers run by main.c.
 */
#ifndef CORRAL_WORKER_HOST_H
#define CORRAL_WORKER_HOST_H

#include "corral/worker.h"

/* The built-in handler called name ("echo", "sha256"), or NULL. */
corral_handler_fn builtin_lookup(const char *name);

/* Names of the built-in handlers, for usage messages: "echo, sha256". */
extern const char builtin_names[];

/* The stdio adapter's argument: the program to run per call. */
struct stdio_prog {
	char **argv; /* NULL-terminated; argv[0] is looked up in PATH */
};

/* Prepare the stdio adapter once, before the hello (the worker becomes undumpable, SIGCHLD comes
 * through a signalfd, the program's filter is compiled).  0 or -errno. */
int stdio_init(struct stdio_prog *prog);

/* Run the program once with the payload on stdin; its stdout is the result. arg: struct stdio_prog.
 */
int stdio_handle(struct corral_call *call, void *arg);

#endif
