/*
 * b64.h - standard base64 (RFC 4648, with padding) for the control protocol's
 * payload_b64 and result_b64; shared by corrald and corralctl.
 */
#ifndef CORRAL_B64_H
#define CORRAL_B64_H

#include <stddef.h>

char *b64_encode(const void *data, size_t len);
int b64_decode(const char *s, size_t len, unsigned char **ret_data, size_t *ret_len);

#endif
