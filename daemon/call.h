/*
 * call.h - a call from the accepted request to its one reply: its timeout,
 * the reply (inline, by fd, or an error), its accounting.
 */
#ifndef CORRAL_CALL_H
#define CORRAL_CALL_H

#include <stdint.h>

#include "control.h"

struct call;
struct daemon;
struct type_rt;
struct worker;

/* A new call of type t, no payload yet, owned by the caller until call_submit. */
struct call *call_new(struct daemon *d, struct type_rt *t);
/* Accept c: its timeout (capped at the type's limits.timeout_ms; 0: the type's) starts,
 * the pool takes it. */
void call_submit(struct call *c, uint64_t timeout_ms);
/* The result is in c (transfer_on_result), from worker w: reply and free c. */
void call_complete(struct call *c, struct worker *w);
/* Reply with an error and free c. */
void call_fail(struct call *c, enum ctl_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Put c, which no worker began, back in its type's queue: after `after`, or at its head. */
void call_requeue(struct call *c, struct call *after);
/* Release a call and everything it holds (no reply). */
void call_free(struct call *c);

#endif
