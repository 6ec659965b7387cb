/*
 * internal.h - libcorral's parts shared between its files and its fuzz
 * target: the reply-line parser and the JSON -> struct converters (reply.c),
 * error helpers.  Not installed.
 */
#ifndef CORRAL_CLIENT_INTERNAL_H
#define CORRAL_CLIENT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "corral/client.h"

#define CR_EXPORT __attribute__((visibility("default")))

/* One reply line, classified. */
struct cr_reply {
	json_t *root;  /* the parsed object (owned) */
	bool id_null;  /* "id": null (a connection-level error) */
	bool id_valid; /* id is a non-negative integer: see id */
	uint64_t id;
	bool is_event;	       /* {"id":..,"event":{..}} */
	bool ok;	       /* "ok": true */
	enum corral_code code; /* error replies: the code (CORRAL_E_PROTOCOL when unknown) */
	const char *message;   /* error replies: the daemon's message (borrowed) */
};

/*
 * Parse one line (no newline) into r.  CORRAL_E_PROTOCOL for anything that is
 * not an object with a usable id, an "ok" boolean (or an "event" object), and
 * for an error without a code string; r->root is then NULL, but r->id_valid
 * and r->id still say which request it answered when that much was readable.
 */
enum corral_code cr_parse_reply(const char *line, size_t len, struct cr_reply *r,
				struct corral_error *err);
void cr_reply_clear(struct cr_reply *r);

/* Fill err (may be NULL); returns code. */
enum corral_code cr_err(struct corral_error *err, enum corral_code code, int sys_errno,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Copy an error into err (may be NULL); returns its code. */
enum corral_code cr_err_copy(struct corral_error *err, const struct corral_error *from);

/*
 * The result of an ok call reply (borrowed) and the fd that rode with it
 * (consumed, -1 for none).
 */
enum corral_code cr_result_from(const json_t *reply, int fd, struct corral_result **ret,
				struct corral_error *err);

/* What a call's ok reply says about its result. */
struct cr_flat {
	uint64_t id;
	int64_t worker, duration_us;
	char *result; /* "result" decoded, or "result_b64"'s text (b64); malloc'd, or NULL */
	size_t result_len;
	bool b64;
	bool result_fd;
};

/*
 * The fast path for the commonest line, an ok call reply whose values are all
 * integers, booleans, null or ASCII strings: {"id":N,"ok":true,"worker":W,
 * "duration_us":D,"result":"..."}.  0 with f filled (release with
 * cr_flat_clear), or -1 when the line is anything else, valid or not: then
 * cr_parse_reply() decides.  Never accepts a line jansson would read otherwise
 * (fuzz_client.c checks the two against each other).
 */
int cr_parse_flat(const char *line, size_t len, struct cr_flat *f);
/* The same fields from a parsed ok call reply (borrowed). */
enum corral_code cr_flat_from_json(const json_t *reply, struct cr_flat *f,
				   struct corral_error *err);
void cr_flat_clear(struct cr_flat *f);
/* The result from f (its buffer taken over) and the fd that came with the reply (consumed). */
enum corral_code cr_result_from_flat(struct cr_flat *f, int fd, struct corral_result **ret,
				     struct corral_error *err);

/* Typed views of ok replies; reply is consumed (held by ret, or released). */
enum corral_code cr_ping_from(json_t *reply, struct corral_ping *ret, struct corral_error *err);
enum corral_code cr_types_from(json_t *reply, struct corral_types *ret, struct corral_error *err);
enum corral_code cr_workers_from(json_t *reply, struct corral_workers *ret,
				 struct corral_error *err);
enum corral_code cr_ids_from(json_t *reply, const char *key, struct corral_ids *ret,
			     struct corral_error *err);
enum corral_code cr_stats_from(json_t *reply, struct corral_stats *ret, struct corral_error *err);
enum corral_code cr_reload_from(json_t *reply, struct corral_reload *ret, struct corral_error *err);
/* An event object (borrowed; ret takes a reference) of a watch or logs stream. */
enum corral_code cr_event_from(json_t *ev, struct corral_event *ret, struct corral_error *err);

#endif
