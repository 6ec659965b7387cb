/*
 * msg.h - typed, bounds-checked writer and reader for frame payloads, and the
 * encoders/decoders of each message of proto.h.  A message is consumed whole
 * or rejected: a short field, an unterminated string or trailing bytes fail.
 * Library code: returns 0 or -errno (-EBADMSG, -EMSGSIZE), never logs.
 */
#ifndef CORRAL_MSG_H
#define CORRAL_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Writer over a caller buffer; the first overflow sets err = -EMSGSIZE and sticks. */
struct msg_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;
};

void msg_writer_init(struct msg_writer *w, void *buf, size_t cap);
void msg_put_u32(struct msg_writer *w, uint32_t v);
void msg_put_u64(struct msg_writer *w, uint64_t v);
/* String: u32 length (NUL excluded), the bytes, one NUL. */
void msg_put_str(struct msg_writer *w, const char *s);
/* Returns the encoded length, or w->err. */
long msg_writer_finish(const struct msg_writer *w);

/* Reader over received bytes; the first failure sets err = -EBADMSG and sticks. */
struct msg_reader {
	const uint8_t *buf;
	size_t len;
	size_t off;
	int err;
};

void msg_reader_init(struct msg_reader *r, const void *buf, size_t len);
uint32_t msg_get_u32(struct msg_reader *r);
uint64_t msg_get_u64(struct msg_reader *r);
/* Returns a pointer into the buffer (NUL-terminated, no embedded NUL), or NULL. */
const char *msg_get_str(struct msg_reader *r, size_t maxlen);
/* 0 when every read succeeded and the buffer is consumed exactly, else -EBADMSG. */
int msg_reader_end(const struct msg_reader *r);

/* Encoders return the payload length or -EMSGSIZE; decoders 0 or -EBADMSG. */
long msg_hello_encode(void *buf, size_t cap, const struct msg_hello *m);
int msg_hello_decode(const void *buf, size_t len, struct msg_hello *ret);
long msg_call_encode(void *buf, size_t cap, const struct msg_call *m);
int msg_call_decode(const void *buf, size_t len, struct msg_call *ret);
/* message may be NULL (empty); longer than RESULT_MAX_MSG is cut. */
long msg_result_encode(void *buf, size_t cap, const struct msg_result *m);
/* ret->message points into buf; status must be <= RESULT_STATUS_MAX. */
int msg_result_decode(const void *buf, size_t len, struct msg_result *ret);

#endif
