/*
 * b64.c - base64 encoding and strict decoding.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "b64.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encode len bytes as a new NUL-terminated base64 string; NULL when out of memory. */
char *b64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*p++ = b64_alphabet[v >> 18];
		*p++ = b64_alphabet[v >> 12 & 63];
		*p++ = b64_alphabet[v >> 6 & 63];
		*p++ = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);

		*p++ = b64_alphabet[v >> 18];
		*p++ = b64_alphabet[v >> 12 & 63];
		*p++ = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		*p++ = '=';
	}
	*p = '\0';
	return out;
}

/* The value of one base64 digit, or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode base64 text (padding optional, nothing else allowed) into a new
 * buffer; 0, -EINVAL for bad input, -ENOMEM.
 */
int b64_decode(const char *s, size_t len, unsigned char **ret_data, size_t *ret_len)
{
	unsigned char *out, *p;
	uint32_t acc = 0;
	size_t bits = 0;

	if (len % 4 == 0 && len >= 1 && s[len - 1] == '=')
		len -= 1 + (len >= 2 && s[len - 2] == '=');
	if (len % 4 == 1)
		return -EINVAL;
	out = p = malloc(len / 4 * 3 + 3);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)s[i]);

		if (v < 0) {
			free(out);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*p++ = (unsigned char)(acc >> bits);
		}
	}
	*ret_data = out;
	*ret_len = (size_t)(p - out);
	return 0;
}
