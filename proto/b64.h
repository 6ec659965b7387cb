/*
 * b64.h - standard base64 (RFC 4648, with padding) for the control protocol's
 * payload_b64 and result_b64; shared by corrald and corralctl.
 */
#ifndef CORRAL_B64_H
#define CORRAL_B64_H

#include <stddef.h>

/* The length of len bytes in base64. */
#define B64_ENCODED_LEN(len) (((size_t)(len) + 2) / 3 * 4)
/* Encode len bytes into out (room for B64_ENCODED_LEN(len)); the length written, no NUL. */
size_t b64_encode_to(char *out, const void *data, size_t len);
/* Encode len bytes as a new NUL-terminated base64 string; NULL when out of memory. */
char *b64_encode(const void *data, size_t len);
/* Decode base64 text (padding optional) into a new buffer; 0, -EINVAL, -ENOMEM. */
int b64_decode(const char *s, size_t len, unsigned char **ret_data, size_t *ret_len);
/* Length of the longest prefix of s[0..n) made of base64 digits and padding. */
size_t b64_span(const char *s, size_t n);

#endif
