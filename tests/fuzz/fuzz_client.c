/*
 * fuzz_client.c - libcorral's reply parser (client/reply.c) on arbitrary
 * lines: cr_parse_reply() must classify or reject without crashing, and an
 * accepted reply must survive every converter the library could run on it
 * (call result, ping, types, list, ids, stats, reload, events), with
 * everything freeable (no leaks under LeakSanitizer).
 *
 * Differential: whatever the fast path (cr_parse_flat) accepts, jansson must
 * read as the same ok call reply, field for field.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fast path's reading of a line must be jansson's. */
static void check_flat(const uint8_t *data, size_t size)
{
	struct cr_flat f, g;
	struct cr_reply r;

	if (cr_parse_flat((const char *)data, size, &f) != 0)
		return;
	if (cr_parse_reply((const char *)data, size, &r, NULL) != CORRAL_OK || !r.ok ||
	    !r.id_valid || r.is_event || r.id != f.id)
		__builtin_trap();
	if (cr_flat_from_json(r.root, &g, NULL) != CORRAL_OK)
		__builtin_trap();
	if (g.id != f.id || g.worker != f.worker || g.duration_us != f.duration_us ||
	    g.result_fd != f.result_fd || g.b64 != f.b64 || !g.result != !f.result ||
	    g.result_len != f.result_len ||
	    (f.result && memcmp(f.result, g.result, f.result_len) != 0))
		__builtin_trap();
	struct corral_result *res;
	if (cr_result_from_flat(&f, -1, &res, NULL) == CORRAL_OK)
		corral_result_free(res);
	cr_flat_clear(&g);
	cr_reply_clear(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cr_reply r;
	struct corral_error err;

	check_flat(data, size);

	if (cr_parse_reply((const char *)data, size, &r, &err) != CORRAL_OK) {
		/* Rejected: a message, and nothing held. */
		if (!err.message[0] || r.root)
			__builtin_trap();
		return 0;
	}
	if (!r.root ||
	    (!r.id_null && !r.id_valid && !json_is_string(json_object_get(r.root, "id"))))
		__builtin_trap();
	if (r.is_event) {
		struct corral_event ev;
		if (cr_event_from(json_object_get(r.root, "event"), &ev, &err) == CORRAL_OK)
			corral_event_clear(&ev);
	} else if (r.ok) {
		struct corral_result *res;
		if (cr_result_from(r.root, -1, &res, &err) == CORRAL_OK) {
			size_t n;
			const unsigned char *p = corral_result_data(res, &n);
			volatile unsigned char sink = 0;
			for (size_t i = 0; i < n; i++)
				sink ^= p[i];
			(void)sink;
			corral_result_free(res);
		}
		struct corral_ping ping;
		if (cr_ping_from(json_incref(r.root), &ping, &err) == CORRAL_OK)
			corral_ping_clear(&ping);
		struct corral_types types;
		if (cr_types_from(json_incref(r.root), &types, &err) == CORRAL_OK)
			corral_types_clear(&types);
		struct corral_workers ws;
		if (cr_workers_from(json_incref(r.root), &ws, &err) == CORRAL_OK)
			corral_workers_clear(&ws);
		struct corral_ids ids;
		if (cr_ids_from(json_incref(r.root), "workers", &ids, &err) == CORRAL_OK)
			corral_ids_clear(&ids);
		struct corral_stats st;
		if (cr_stats_from(json_incref(r.root), &st, &err) == CORRAL_OK)
			corral_stats_clear(&st);
		struct corral_reload rl;
		if (cr_reload_from(json_incref(r.root), &rl, &err) == CORRAL_OK)
			corral_reload_clear(&rl);
	} else if (r.code == CORRAL_OK || !r.message) {
		__builtin_trap(); /* an error reply always has a code and a message */
	}
	cr_reply_clear(&r);
	return 0;
}
