/*
 * msg.c - typed writer/reader for frame payloads and the message codecs.
 */
#include <errno.h>
#include <string.h>

#include "msg.h"

void msg_writer_init(struct msg_writer *w, void *buf, size_t cap)
{
	w->buf = buf;
	w->cap = buf != NULL ? cap : 0;
	w->len = 0;
	w->err = 0;
}

/* Append n bytes, or fail for good with -EMSGSIZE. */
static void msg_put(struct msg_writer *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (n > w->cap - w->len) {
		w->err = -EMSGSIZE;
		return;
	}
	if (n > 0)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void msg_put_u32(struct msg_writer *w, uint32_t v)
{
	msg_put(w, &v, sizeof(v));
}

void msg_put_u64(struct msg_writer *w, uint64_t v)
{
	msg_put(w, &v, sizeof(v));
}

/* String of exactly n bytes (no NUL among them): u32 n, bytes, NUL. */
static void msg_put_strn(struct msg_writer *w, const char *s, size_t n)
{
	if (n > UINT32_MAX || memchr(s, 0, n) != NULL) {
		if (!w->err)
			w->err = -EMSGSIZE;
		return;
	}
	msg_put_u32(w, (uint32_t)n);
	msg_put(w, s, n);
	msg_put(w, "", 1);
}

void msg_put_str(struct msg_writer *w, const char *s)
{
	if (s == NULL)
		s = "";
	msg_put_strn(w, s, strlen(s));
}

long msg_writer_finish(const struct msg_writer *w)
{
	return w->err ? w->err : (long)w->len;
}

void msg_reader_init(struct msg_reader *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = buf != NULL ? len : 0;
	r->off = 0;
	r->err = 0;
}

/* Point at the next n bytes and step over them, or fail for good with -EBADMSG. */
static const uint8_t *msg_get(struct msg_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (r->off > r->len || n > r->len - r->off) {
		r->err = -EBADMSG;
		return NULL;
	}
	p = r->buf + r->off;
	r->off += n;
	return p;
}

uint32_t msg_get_u32(struct msg_reader *r)
{
	const uint8_t *p = msg_get(r, sizeof(uint32_t));
	uint32_t v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t msg_get_u64(struct msg_reader *r)
{
	const uint8_t *p = msg_get(r, sizeof(uint64_t));
	uint64_t v = 0;

	if (p != NULL)
		memcpy(&v, p, sizeof(v));
	return v;
}

const char *msg_get_str(struct msg_reader *r, size_t maxlen)
{
	size_t save = r->off;
	uint32_t n = msg_get_u32(r);
	const uint8_t *p;

	if (r->err)
		return NULL;
	/* n + 1 cannot overflow size_t: n is a u32. */
	if (n > maxlen || (p = msg_get(r, (size_t)n + 1)) == NULL || p[n] != '\0' ||
	    memchr(p, 0, n) != NULL) {
		r->off = save;
		r->err = -EBADMSG;
		return NULL;
	}
	return (const char *)p;
}

int msg_reader_end(const struct msg_reader *r)
{
	if (r->err || r->off != r->len)
		return -EBADMSG;
	return 0;
}

long msg_hello_encode(void *buf, size_t cap, const struct msg_hello *m)
{
	struct msg_writer w;

	msg_writer_init(&w, buf, cap);
	msg_put_u32(&w, m->version);
	msg_put_u32(&w, m->pid);
	return msg_writer_finish(&w);
}

int msg_hello_decode(const void *buf, size_t len, struct msg_hello *ret)
{
	struct msg_reader r;
	struct msg_hello m;

	msg_reader_init(&r, buf, len);
	m.version = msg_get_u32(&r);
	m.pid = msg_get_u32(&r);
	if (msg_reader_end(&r) < 0)
		return -EBADMSG;
	*ret = m;
	return 0;
}

long msg_call_encode(void *buf, size_t cap, const struct msg_call *m)
{
	struct msg_writer w;

	msg_writer_init(&w, buf, cap);
	msg_put_u64(&w, m->len);
	return msg_writer_finish(&w);
}

int msg_call_decode(const void *buf, size_t len, struct msg_call *ret)
{
	struct msg_reader r;
	struct msg_call m;

	msg_reader_init(&r, buf, len);
	m.len = msg_get_u64(&r);
	if (msg_reader_end(&r) < 0)
		return -EBADMSG;
	*ret = m;
	return 0;
}

/* Length of s cut to at most max bytes, never in the middle of a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

long msg_result_encode(void *buf, size_t cap, const struct msg_result *m)
{
	const char *s = m->message != NULL ? m->message : "";
	struct msg_writer w;

	msg_writer_init(&w, buf, cap);
	msg_put_u32(&w, m->status);
	msg_put_u64(&w, m->len);
	msg_put_strn(&w, s, cut_utf8(s, RESULT_MAX_MSG));
	return msg_writer_finish(&w);
}

int msg_result_decode(const void *buf, size_t len, struct msg_result *ret)
{
	struct msg_reader r;
	struct msg_result m;

	msg_reader_init(&r, buf, len);
	m.status = msg_get_u32(&r);
	m.len = msg_get_u64(&r);
	m.message = msg_get_str(&r, RESULT_MAX_MSG);
	if (msg_reader_end(&r) < 0 || m.status > RESULT_STATUS_MAX)
		return -EBADMSG;
	*ret = m;
	return 0;
}
