/*
 * util.c - base64 for payload_b64 / result_b64.
 */
#include <stdlib.h>
#include <string.h>

#include "corrald.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* n bytes as a base64 JSON string (standard alphabet, padded). */
json_t *json_base64(const uint8_t *p, size_t n)
{
	size_t olen = (n + 2) / 3 * 4;
	char *o = malloc(olen + 1);
	if (!o)
		return NULL;
	size_t j = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		o[j++] = b64[(v >> 18) & 63];
		o[j++] = b64[(v >> 12) & 63];
		o[j++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		o[j++] = i + 2 < n ? b64[v & 63] : '=';
	}
	json_t *s = json_stringn_nocheck(o, j);
	free(o);
	return s;
}

/* Value of one base64 character, or -1. */
static int b64_val(unsigned char c)
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

/* Decode padded (or unpadded) base64 into out (room for len/4*3+3); bytes or -1. */
long base64_decode(const char *s, size_t len, uint8_t *out)
{
	size_t j = 0;
	uint32_t acc = 0;
	int bits = 0;
	size_t pad = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -1; /* data after padding */
		int v = b64_val(ch);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[j++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2 || (pad && (len % 4) != 0) || bits >= 6)
		return -1;
	return (long)j;
}

/* Replace invalid UTF-8 in s with '?' so that jansson accepts it; in place. */
void utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		unsigned n = *p < 0x80		   ? 0
			     : (*p & 0xe0) == 0xc0 ? 1
			     : (*p & 0xf0) == 0xe0 ? 2
			     : (*p & 0xf8) == 0xf0 ? 3
						   : 4;
		if (n == 4 || (n == 1 && *p < 0xc2)) {
			*p++ = '?';
			continue;
		}
		unsigned i = 1;
		for (; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				break;
		if (i <= n) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}
