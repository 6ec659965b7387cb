/*
 * fuzz_control.c - the control protocol's request validator on arbitrary lines.
 * Whatever the bytes, ctl_request_parse() returns a code in range with a
 * NUL-terminated message, a validated request satisfies every spec in the
 * command table, and the reply envelope for it can always be built; what the
 * fast path (ctl_fast_loadb) accepts, jansson parses to the same object.
 */
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Does a validated request hold only known arguments of the right type and range? */
static void check_valid(const struct ctl_request *req)
{
	const char *key;
	json_t *val;

	if (!req->root || !req->id || !req->cmd || ctl_cmd_find(req->cmd->name) != req->cmd)
		__builtin_trap();
	json_object_foreach(req->root, key, val)
	{
		if (strcmp(key, "id") == 0 || strcmp(key, "cmd") == 0)
			continue;
		const struct ctl_arg *a = req->cmd->args;
		while (a->name && strcmp(a->name, key) != 0)
			a++;
		if (!a->name)
			__builtin_trap();
		if (a->type == CTL_ARG_INT) {
			long long x = ctl_arg_int(req, key, a->lo - 1);
			if (x < a->lo || x > a->hi)
				__builtin_trap();
		} else if (a->type == CTL_ARG_STRING && !ctl_arg_str(req, key)) {
			__builtin_trap();
		}
	}
}

/* The fast path accepts only what jansson parses to the same object. */
static void check_fast(const char *line, size_t len)
{
	json_t *fast = ctl_fast_loadb(line, len);
	if (!fast)
		return;
	json_t *ref = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	if (!ref || !json_equal(fast, ref) || json_object_size(fast) != json_object_size(ref))
		__builtin_trap();
	json_decref(ref);
	json_decref(fast);
}

/* First byte: how many fds "arrived"; the rest: the line. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request req;
	char err[256];

	if (size == 0)
		return 0;
	unsigned nfds = data[0] & 3;
	check_fast((const char *)data + 1, size - 1);
	memset(err, 0x55, sizeof(err));
	enum ctl_code code =
	    ctl_request_parse((const char *)data + 1, size - 1, nfds, &req, err, sizeof(err));
	if ((unsigned)code >= CTL_NCODES)
		__builtin_trap();
	json_t *reply;
	if (code == CTL_OK) {
		check_valid(&req);
		if (nfds && !req.cmd->takes_fd)
			__builtin_trap();
		reply = ctl_reply_ok(req.id);
	} else {
		if (!memchr(err, '\0', sizeof(err)))
			__builtin_trap();
		if (ctl_code_parse(ctl_code_name(code)) != code)
			__builtin_trap();
		reply = ctl_reply_error(req.id, code, err);
	}
	if (!reply)
		__builtin_trap();
	char *line = json_dumps(reply, JSON_COMPACT);
	if (!line)
		__builtin_trap();
	free(line);
	json_decref(reply);
	ctl_request_free(&req);
	return 0;
}
