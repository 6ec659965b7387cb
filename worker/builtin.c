/*
 * builtin.c - handlers compiled into corral-worker: echo and sha256.  Both
 * stream: a payload of any size passes through the ring chunk by chunk.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <nettle/sha2.h>

#include "host.h"

/* Result = payload, one ring record at a time. */
static int builtin_echo(struct corral_call *call, void *arg)
{
	const void *p;
	size_t n;
	int r;

	(void)arg;
	while ((r = corral_call_peek(call, &p, &n)) > 0) {
		r = corral_call_write(call, p, n);
		if (r < 0)
			return r;
		corral_call_consume(call, n);
	}
	return r;
}

/* Result = lowercase hex SHA-256 of the payload, 64 characters, no newline. */
static int builtin_sha256(struct corral_call *call, void *arg)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t digest[SHA256_DIGEST_SIZE];
	char out[2 * SHA256_DIGEST_SIZE];
	struct sha256_ctx ctx;
	const void *p;
	size_t n;
	int r;

	(void)arg;
	sha256_init(&ctx);
	while ((r = corral_call_peek(call, &p, &n)) > 0) {
		sha256_update(&ctx, n, p);
		corral_call_consume(call, n);
	}
	if (r < 0)
		return r;
	sha256_digest(&ctx, sizeof(digest), digest);
	for (size_t i = 0; i < sizeof(digest); i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xf];
	}
	return corral_call_write(call, out, sizeof(out));
}

static const struct {
	const char *name;
	corral_handler_fn fn;
} builtins[] = {
    {"echo", builtin_echo},
    {"sha256", builtin_sha256},
};

const char builtin_names[] = "echo, sha256";

corral_handler_fn builtin_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(builtins[i].name, name) == 0)
			return builtins[i].fn;
	return NULL;
}
