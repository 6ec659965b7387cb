/*
 * b64.h - standard base64 (RFC 4648, with padding) for payload_b64 and
 * result_b64.
 */
#ifndef CORRALCTL_B64_H
#define CORRALCTL_B64_H

#include <stddef.h>

char *b64_encode(const void *data, size_t len);
int b64_decode(const char *s, size_t len, unsigned char **ret_data, size_t *ret_len);

#endif
