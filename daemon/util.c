/*
 * util.c - small helpers.
 */
#include <stdlib.h>
#include <string.h>

#include "corrald.h"

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
