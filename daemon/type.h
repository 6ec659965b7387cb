/*
 * type.h - a worker type at run time: made from its config (with its
 * sandbox plan), looked up by name, destroyed once its workers are gone.
 */
#ifndef CORRAL_TYPE_H
#define CORRAL_TYPE_H

#include <jansson.h>

struct config_holder;
struct daemon;
struct type_config;
struct type_rt;

/* The run-time state of one configured type. */
struct type_rt *type_new(struct daemon *d, struct config_holder *h, const struct type_config *tc);
/* Free a type whose workers are all gone. */
void type_destroy(struct type_rt *t);

/* Crash times a type keeps: enough to decide on burst + 1, and to count the
 * crashes of a whole interval for `describe` (a loop in backoff goes on). */
unsigned type_crash_slots(const struct type_config *tc);
/* Create the types of a fresh configuration. */
void type_init_all(struct daemon *d, struct config_holder *h);
/* An active type by name, or NULL. */
struct type_rt *type_find(struct daemon *d, const char *name);
/* Remember a failure for `describe` (worker 0: a spawn that failed). */
void type_note_failure(struct type_rt *t, uint64_t worker, const char *reason);
/* `describe`: effective config, sandbox, workers, spares, backoff, last failures. */
json_t *type_describe(struct type_rt *t);
/* The sandbox layers in effect, and those wanted but refused here (DESIGN.md names). */
json_t *type_layers_active(const struct type_rt *t);
json_t *type_layers_missing(const struct type_rt *t);
/* Drop one reference to a configuration. */
void config_holder_put(struct config_holder *h);

#endif
