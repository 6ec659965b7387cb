/*
 * utf8.h - making text safe for JSON.
 */
#ifndef CORRAL_UTF8_H
#define CORRAL_UTF8_H

/* Replace invalid UTF-8 in s with '?' so that jansson accepts it; in place. */
void utf8_sanitize(char *s);

#endif
