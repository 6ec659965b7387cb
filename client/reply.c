/*
 * reply.c - libcorral's reply parser: one line from corrald into a classified
 * reply, and the ok replies into the public structs.  Every field is checked
 * for type before use: a daemon (or anything listening at the socket path)
 * may write anything, and the worst it gets is CORRAL_E_PROTOCOL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "control.h"
#include "internal.h"

/* The result of a call: inline bytes (heap) or a view of a memfd. */
struct corral_result {
	const unsigned char *data;
	size_t len;
	unsigned char *heap; /* inline bytes (NUL-terminated), or NULL */
	void *map;	     /* mmap of fd, or NULL */
	size_t maplen;
	int fd; /* result memfd, -1 inline or taken */
	uint64_t worker;
	int64_t duration_us;
};

static const char *const lib_names[] = {
    "no_daemon",      "version", "disconnected", "protocol",
    "client_timeout", "system",	 "invalid",	 "nomem",
};

CR_EXPORT const char *corral_code_name(enum corral_code code)
{
	if (code >= CORRAL_E_NO_DAEMON && code <= CORRAL_E_NOMEM)
		return lib_names[code - CORRAL_E_NO_DAEMON];
	if ((unsigned)code < CTL_NCODES)
		return ctl_code_name((enum ctl_code)code);
	return "unknown";
}

enum corral_code cr_err(struct corral_error *err, enum corral_code code, int sys_errno,
			const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	err->sys_errno = sys_errno;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

enum corral_code cr_err_copy(struct corral_error *err, const struct corral_error *from)
{
	if (err)
		*err = *from;
	return from->code;
}

/* An integer member, or def when absent or not an integer. */
static int64_t jint(const json_t *o, const char *key, int64_t def)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

/* A string member, or NULL. */
static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

void cr_reply_clear(struct cr_reply *r)
{
	json_decref(r->root);
	memset(r, 0, sizeof(*r));
}

/* A broken reply whose id was readable: keep the id, drop the rest. */
static void keep_id_only(struct cr_reply *r)
{
	json_decref(r->root);
	r->root = NULL;
	r->is_event = r->ok = false;
	r->message = NULL;
}

enum corral_code cr_parse_reply(const char *line, size_t len, struct cr_reply *r,
				struct corral_error *err)
{
	json_error_t je;
	json_t *root, *id, *ok, *ev, *e;

	memset(r, 0, sizeof(*r));
	root = json_loadb(line, len, JSON_ALLOW_NUL, &je);
	if (!root)
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "reply is not JSON: %s", je.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "reply is not a JSON object");
	}
	r->root = root;
	id = json_object_get(root, "id");
	if (json_is_null(id)) {
		r->id_null = true;
	} else if (json_is_integer(id) && json_integer_value(id) >= 0) {
		r->id_valid = true;
		r->id = (uint64_t)json_integer_value(id);
	} else if (!json_is_string(id)) {
		/* Not one of ours (we only send integers), but not a broken line either. */
		cr_reply_clear(r);
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "reply without a usable id");
	}
	ev = json_object_get(root, "event");
	if (ev) {
		if (!json_is_object(ev)) {
			keep_id_only(r);
			return cr_err(err, CORRAL_E_PROTOCOL, 0, "event is not an object");
		}
		r->is_event = true;
		return CORRAL_OK;
	}
	ok = json_object_get(root, "ok");
	if (!json_is_boolean(ok)) {
		keep_id_only(r);
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "reply without an \"ok\" boolean");
	}
	r->ok = json_is_true(ok);
	if (r->ok)
		return CORRAL_OK;
	e = json_object_get(root, "error");
	const char *code = jstr(e, "code");
	if (!code) {
		keep_id_only(r);
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "error reply without a code");
	}
	enum ctl_code c = ctl_code_parse(code);
	r->code = c == CTL_NCODES ? CORRAL_E_PROTOCOL : (enum corral_code)c;
	r->message = jstr(e, "message");
	if (!r->message)
		r->message = code;
	return CORRAL_OK;
}

/* Fill the result from the fd: a view when the memfd is sealed, else a copy. */
static enum corral_code result_from_fd(struct corral_result *res, int fd, struct corral_error *err)
{
	struct stat st;

	res->fd = fd;
	if (fstat(fd, &st) < 0)
		return cr_err(err, CORRAL_E_SYSTEM, errno, "fstat result fd: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cr_err(err, CORRAL_E_PROTOCOL, 0,
			      "result fd is not a regular file or memfd");
	if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX / 2)
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "result fd has an impossible size");
	res->len = (size_t)st.st_size;
	if (res->len == 0) {
		res->data = (const unsigned char *)"";
		return CORRAL_OK;
	}
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_WRITE)) {
		/* Sealed: nobody can shrink it under us (no SIGBUS) or change it. */
		res->map = mmap(NULL, res->len, PROT_READ, MAP_SHARED, fd, 0);
		if (res->map == MAP_FAILED) {
			res->map = NULL;
			return cr_err(err, CORRAL_E_SYSTEM, errno, "mmap result fd: %s",
				      strerror(errno));
		}
		res->maplen = res->len;
		res->data = res->map;
		return CORRAL_OK;
	}
	/* Unsealed: a view could fault if it shrank, so copy what is there. */
	res->heap = malloc(res->len + 1);
	if (!res->heap)
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory for a %zu-byte result",
			      res->len);
	size_t off = 0;
	while (off < res->len) {
		ssize_t n = pread(fd, res->heap + off, res->len - off, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_err(err, CORRAL_E_SYSTEM, errno, "read result fd: %s",
				      strerror(errno));
		if (n == 0)
			break;
		off += (size_t)n;
	}
	res->len = off;
	res->heap[off] = 0;
	res->data = res->heap;
	return CORRAL_OK;
}

void cr_flat_clear(struct cr_flat *f)
{
	free(f->result);
	memset(f, 0, sizeof(*f));
}

enum corral_code cr_flat_from_json(const json_t *reply, struct cr_flat *f, struct corral_error *err)
{
	json_t *s;

	memset(f, 0, sizeof(*f));
	f->id = (uint64_t)jint(reply, "id", 0);
	f->worker = jint(reply, "worker", 0);
	f->duration_us = jint(reply, "duration_us", 0);
	f->result_fd = json_is_true(json_object_get(reply, "result_fd"));
	s = json_object_get(reply, "result");
	if (!json_is_string(s)) {
		s = json_object_get(reply, "result_b64");
		f->b64 = json_is_string(s);
	}
	if (json_is_string(s)) {
		f->result_len = json_string_length(s);
		f->result = malloc(f->result_len + 1);
		if (!f->result)
			return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
		memcpy(f->result, json_string_value(s), f->result_len);
		f->result[f->result_len] = 0;
	}
	return CORRAL_OK;
}

enum corral_code cr_result_from_flat(struct cr_flat *f, int fd, struct corral_result **ret,
				     struct corral_error *err)
{
	struct corral_result *res = calloc(1, sizeof(*res));
	enum corral_code rc = CORRAL_OK;

	if (!res) {
		if (fd >= 0)
			close(fd);
		cr_flat_clear(f);
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
	}
	res->fd = -1;
	res->worker = (uint64_t)f->worker;
	res->duration_us = f->duration_us;
	if (fd >= 0) {
		if (!f->result_fd) {
			close(fd);
			rc = cr_err(err, CORRAL_E_PROTOCOL, 0,
				    "an fd came with a reply without result_fd");
		} else {
			rc = result_from_fd(res, fd, err);
		}
	} else if (f->result && !f->b64) {
		/* Taken over: the inline result costs no copy past the parse. */
		res->heap = (unsigned char *)f->result;
		res->data = res->heap;
		res->len = f->result_len;
		f->result = NULL;
	} else if (f->result) {
		unsigned char *d;
		size_t n;
		if (b64_decode(f->result, f->result_len, &d, &n) < 0) {
			rc = cr_err(err, CORRAL_E_PROTOCOL, 0, "result_b64 is not valid base64");
		} else {
			res->heap = realloc(d, n + 1);
			if (!res->heap) {
				free(d);
				rc = cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
			} else {
				res->heap[n] = 0;
				res->data = res->heap;
				res->len = n;
			}
		}
	} else if (f->result_fd) {
		rc = cr_err(err, CORRAL_E_PROTOCOL, 0, "result_fd without an fd");
	} else {
		rc = cr_err(err, CORRAL_E_PROTOCOL, 0, "ok call reply without a result");
	}
	cr_flat_clear(f);
	if (rc != CORRAL_OK) {
		corral_result_free(res);
		return rc;
	}
	*ret = res;
	return CORRAL_OK;
}

enum corral_code cr_result_from(const json_t *reply, int fd, struct corral_result **ret,
				struct corral_error *err)
{
	struct cr_flat f;

	if (cr_flat_from_json(reply, &f, err) != CORRAL_OK) {
		if (fd >= 0)
			close(fd);
		cr_flat_clear(&f);
		return CORRAL_E_NOMEM;
	}
	return cr_result_from_flat(&f, fd, ret, err);
}

/* ---- The fast path: flat call replies, by hand. */

/* Skip JSON whitespace. */
static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Value of one hex digit, or -1. */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * An ASCII string at p (at its opening quote): decoded into *out (malloc'd,
 * NUL-terminated) when out is not NULL.  The end (past the closing quote), or
 * NULL when the string is not plain ASCII with simple escapes.
 */
static const char *flat_string(const char *p, const char *e, char **out, size_t *outlen)
{
	const char *q;
	size_t n = 0;

	if (p >= e || *p != '"')
		return NULL;
	for (q = p + 1; q < e && *q != '"'; n++) {
		unsigned char ch = (unsigned char)*q;
		if (ch < 0x20 || ch >= 0x80)
			return NULL;
		if (ch != '\\') {
			q++;
			continue;
		}
		if (e - q < 2)
			return NULL;
		switch (q[1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			q += 2;
			break;
		case 'u':
			if (e - q < 6 || hexval(q[2]) != 0 || hexval(q[3]) != 0 ||
			    hexval(q[4]) < 0 || hexval(q[5]) < 0 || hexval(q[4]) > 7)
				return NULL; /* only \u0000-\u007f here */
			q += 6;
			break;
		default:
			return NULL;
		}
	}
	if (q >= e)
		return NULL;
	if (out) {
		char *b = malloc(n + 1), *w = b;
		if (!b)
			return NULL;
		for (const char *r = p + 1; r < q;) {
			if (*r != '\\') {
				*w++ = *r++;
				continue;
			}
			switch (r[1]) {
			case 'b':
				*w++ = '\b';
				break;
			case 'f':
				*w++ = '\f';
				break;
			case 'n':
				*w++ = '\n';
				break;
			case 'r':
				*w++ = '\r';
				break;
			case 't':
				*w++ = '\t';
				break;
			case 'u':
				*w++ = (char)(hexval(r[4]) * 16 + hexval(r[5]));
				r += 4;
				break;
			default:
				*w++ = r[1];
				break;
			}
			r += 2;
		}
		*w = 0;
		*out = b;
		*outlen = n;
	}
	return q + 1;
}

/* An integer (at most 18 digits: no overflow) at p; its end, or NULL. */
static const char *flat_int(const char *p, const char *e, int64_t *v)
{
	bool neg = p < e && *p == '-';
	int64_t x = 0;
	int nd = 0;

	if (neg)
		p++;
	if (p >= e || *p < '0' || *p > '9' ||
	    (*p == '0' && p + 1 < e && p[1] >= '0' && p[1] <= '9'))
		return NULL;
	for (; p < e && *p >= '0' && *p <= '9'; p++, nd++) {
		if (nd == 18)
			return NULL;
		x = x * 10 + (*p - '0');
	}
	if (p < e && (*p == '.' || *p == 'e' || *p == 'E'))
		return NULL;
	*v = neg ? -x : x;
	return p;
}

/* Whether [p, p+n) is the literal lit; its end or NULL. */
static const char *flat_lit(const char *p, const char *e, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)(e - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

enum { K_ID = 1, K_OK = 2, K_WORKER = 4, K_DUR = 8, K_RES = 16, K_B64 = 32, K_FD = 64 };

int cr_parse_flat(const char *line, size_t len, struct cr_flat *f)
{
	const char *p = line, *e = line + len;
	unsigned seen = 0;

	memset(f, 0, sizeof(*f));
	p = skip_ws(p, e);
	if (p >= e || *p++ != '{')
		return -1;
	for (;;) {
		p = skip_ws(p, e);
		if (p >= e || *p != '"')
			goto fail;
		/* The key: plain ASCII without escapes, or not for us. */
		const char *k = p + 1, *ke = k;
		while (ke < e && *ke != '"' && *ke != '\\' && (unsigned char)*ke >= 0x20 &&
		       (unsigned char)*ke < 0x80)
			ke++;
		if (ke >= e || *ke != '"')
			goto fail;
		size_t kn = (size_t)(ke - k);
		unsigned key = 0;
#define KEY(s, bit)                                                                                \
	if (kn == sizeof(s) - 1 && memcmp(k, s, kn) == 0)                                          \
		key = bit;
		KEY("id", K_ID)
		KEY("ok", K_OK)
		KEY("worker", K_WORKER)
		KEY("duration_us", K_DUR)
		KEY("result", K_RES)
		KEY("result_b64", K_B64)
		KEY("result_fd", K_FD)
#undef KEY
		if (kn == 5 && memcmp(k, "event", 5) == 0)
			goto fail; /* an event line (or a broken one): cr_parse_reply decides */
		if (key & seen)
			goto fail; /* a duplicate: leave it to jansson */
		seen |= key;
		p = skip_ws(ke + 1, e);
		if (p >= e || *p++ != ':')
			goto fail;
		p = skip_ws(p, e);
		if (p >= e)
			goto fail;
		int64_t v;
		const char *t;
		if (*p == '"') {
			if (key == K_RES || key == K_B64) {
				f->b64 = key == K_B64;
				if (f->result)
					goto fail;
				p = flat_string(p, e, &f->result, &f->result_len);
			} else if (key == 0) {
				p = flat_string(p, e, NULL, NULL);
			} else {
				goto fail;
			}
		} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			p = flat_int(p, e, &v);
			if (!p || (key == K_ID && v < 0))
				goto fail;
			if (key == K_ID)
				f->id = (uint64_t)v;
			else if (key == K_WORKER)
				f->worker = v;
			else if (key == K_DUR)
				f->duration_us = v;
			else if (key != 0)
				goto fail;
		} else if ((t = flat_lit(p, e, "true"))) {
			if (key == K_FD)
				f->result_fd = true;
			else if (key != K_OK && key != 0)
				goto fail;
			p = t;
		} else if ((t = flat_lit(p, e, "false")) || (t = flat_lit(p, e, "null"))) {
			if (key != 0 && key != K_FD)
				goto fail;
			p = t;
		} else {
			goto fail; /* nested: not flat */
		}
		if (!p)
			goto fail;
		p = skip_ws(p, e);
		if (p < e && *p == ',') {
			p++;
			continue;
		}
		if (p < e && *p == '}')
			break;
		goto fail;
	}
	if (skip_ws(p + 1, e) != e || !(seen & K_ID) || !(seen & K_OK) ||
	    !(seen & (K_RES | K_B64 | K_FD)) || ((seen & K_RES) && (seen & K_B64)))
		goto fail;
	return 0;
fail:
	cr_flat_clear(f);
	return -1;
}

CR_EXPORT const void *corral_result_data(const struct corral_result *res, size_t *ret_len)
{
	if (ret_len)
		*ret_len = res->len;
	return res->data;
}

CR_EXPORT int corral_result_take_fd(struct corral_result *res)
{
	int fd = res->fd;

	res->fd = -1;
	return fd;
}

CR_EXPORT uint64_t corral_result_worker(const struct corral_result *res)
{
	return res->worker;
}

CR_EXPORT int64_t corral_result_duration_us(const struct corral_result *res)
{
	return res->duration_us;
}

CR_EXPORT void corral_result_free(struct corral_result *res)
{
	if (!res)
		return;
	if (res->map)
		munmap(res->map, res->maplen);
	if (res->fd >= 0)
		close(res->fd);
	free(res->heap);
	free(res);
}

enum corral_code cr_ping_from(json_t *reply, struct corral_ping *ret, struct corral_error *err)
{
	const char *v = jstr(reply, "version");

	if (!v) {
		json_decref(reply);
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "ping reply without a version");
	}
	*ret = (struct corral_ping){.version = v,
				    .pid = jint(reply, "pid", 0),
				    .uptime_ms = jint(reply, "uptime_ms", 0),
				    .json = reply};
	return CORRAL_OK;
}

CR_EXPORT void corral_ping_clear(struct corral_ping *p)
{
	if (!p)
		return;
	json_decref(p->json);
	memset(p, 0, sizeof(*p));
}

/* The array member key of reply, or a protocol error (reply released). */
static json_t *array_of(json_t *reply, const char *key, struct corral_error *err)
{
	json_t *a = json_object_get(reply, key);

	if (!json_is_array(a)) {
		json_decref(reply);
		cr_err(err, CORRAL_E_PROTOCOL, 0, "reply without a \"%s\" array", key);
		return NULL;
	}
	return a;
}

/* calloc for n entries (at least one, so NULL means failure). */
static void *entries(size_t n, size_t size)
{
	return calloc(n ? n : 1, size);
}

enum corral_code cr_types_from(json_t *reply, struct corral_types *ret, struct corral_error *err)
{
	json_t *a = array_of(reply, "types", err);
	size_t n = 0;

	if (!a)
		return CORRAL_E_PROTOCOL;
	struct corral_type *t = entries(json_array_size(a), sizeof(*t));
	if (!t) {
		json_decref(reply);
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *o = json_array_get(a, i), *pool = json_object_get(o, "pool");
		if (!jstr(o, "name"))
			continue;
		t[n++] = (struct corral_type){
		    .name = jstr(o, "name"),
		    .mode = jstr(o, "mode") ? jstr(o, "mode") : "",
		    .pool_min = jint(pool, "min", 0),
		    .pool_max = jint(pool, "max", 0),
		    .queue = jint(pool, "queue", 0),
		    .workers = jint(o, "workers", 0),
		    .busy = jint(o, "busy", 0),
		    .queued = jint(o, "queued", 0),
		    .json = o,
		};
	}
	*ret = (struct corral_types){.n = n, .types = t, .json = reply};
	return CORRAL_OK;
}

CR_EXPORT void corral_types_clear(struct corral_types *t)
{
	if (!t)
		return;
	free(t->types);
	json_decref(t->json);
	memset(t, 0, sizeof(*t));
}

enum corral_code cr_workers_from(json_t *reply, struct corral_workers *ret,
				 struct corral_error *err)
{
	json_t *a = array_of(reply, "workers", err);
	size_t n = 0;

	if (!a)
		return CORRAL_E_PROTOCOL;
	struct corral_worker *w = entries(json_array_size(a), sizeof(*w));
	if (!w) {
		json_decref(reply);
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *o = json_array_get(a, i);
		if (jint(o, "id", 0) <= 0)
			continue;
		w[n++] = (struct corral_worker){
		    .id = (uint64_t)jint(o, "id", 0),
		    .pid = jint(o, "pid", 0),
		    .type = jstr(o, "type") ? jstr(o, "type") : "",
		    .key = jstr(o, "key"),
		    .state = jstr(o, "state") ? jstr(o, "state") : "",
		    .uptime_ms = jint(o, "uptime_ms", 0),
		    .requests = jint(o, "requests", 0),
		    .rss_kb = jint(o, "rss_kb", 0),
		    .cpu_ms = jint(o, "cpu_ms", 0),
		};
	}
	*ret = (struct corral_workers){.n = n, .workers = w, .json = reply};
	return CORRAL_OK;
}

CR_EXPORT void corral_workers_clear(struct corral_workers *w)
{
	if (!w)
		return;
	free(w->workers);
	json_decref(w->json);
	memset(w, 0, sizeof(*w));
}

enum corral_code cr_ids_from(json_t *reply, const char *key, struct corral_ids *ret,
			     struct corral_error *err)
{
	json_t *a = array_of(reply, key, err);
	size_t n = 0;

	if (!a)
		return CORRAL_E_PROTOCOL;
	uint64_t *ids = entries(json_array_size(a), sizeof(*ids));
	if (!ids) {
		json_decref(reply);
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *v = json_array_get(a, i);
		if (json_is_integer(v) && json_integer_value(v) > 0)
			ids[n++] = (uint64_t)json_integer_value(v);
	}
	*ret = (struct corral_ids){.n = n, .ids = ids, .json = reply};
	return CORRAL_OK;
}

CR_EXPORT void corral_ids_clear(struct corral_ids *ids)
{
	if (!ids)
		return;
	free(ids->ids);
	json_decref(ids->json);
	memset(ids, 0, sizeof(*ids));
}

enum corral_code cr_stats_from(json_t *reply, struct corral_stats *ret, struct corral_error *err)
{
	(void)err;
	json_t *f = json_object_get(reply, "failures");
	*ret = (struct corral_stats){
	    .spawned = jint(reply, "spawned", 0),
	    .exited = jint(reply, "exited", 0),
	    .crashed = jint(reply, "crashed", 0),
	    .restarts = jint(reply, "restarts", 0),
	    .calls_ok = jint(reply, "calls_ok", 0),
	    .calls_failed = jint(reply, "calls_failed", 0),
	    .queued = jint(reply, "queued", 0),
	    .workers = jint(reply, "workers", 0),
	    .call_p50_us = jint(reply, "call_p50_us", 0),
	    .call_p99_us = jint(reply, "call_p99_us", 0),
	    .call_p999_us = jint(reply, "call_p999_us", 0),
	    .failures = json_is_object(f) ? f : NULL,
	    .json = reply,
	};
	return CORRAL_OK;
}

CR_EXPORT void corral_stats_clear(struct corral_stats *s)
{
	if (!s)
		return;
	json_decref(s->json);
	memset(s, 0, sizeof(*s));
}

/* The array member key, or NULL when it is not an array. */
static json_t *opt_array(json_t *o, const char *key)
{
	json_t *a = json_object_get(o, key);

	return json_is_array(a) ? a : NULL;
}

enum corral_code cr_reload_from(json_t *reply, struct corral_reload *ret, struct corral_error *err)
{
	(void)err;
	*ret = (struct corral_reload){.added = opt_array(reply, "added"),
				      .removed = opt_array(reply, "removed"),
				      .changed = opt_array(reply, "changed"),
				      .json = reply};
	return CORRAL_OK;
}

CR_EXPORT void corral_reload_clear(struct corral_reload *r)
{
	if (!r)
		return;
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

enum corral_code cr_event_from(json_t *ev, struct corral_event *ret, struct corral_error *err)
{
	struct corral_event e = {.json = ev};

	if (json_is_object(ev) && jstr(ev, "end")) {
		e.kind = CORRAL_EVENT_END;
		e.reason = jstr(ev, "end");
		json_incref(ev);
		*ret = e;
		return CORRAL_OK;
	}
	if (!json_is_object(ev) || jint(ev, "worker", -1) < 0)
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "event without a worker id");
	e.worker = (uint64_t)jint(ev, "worker", 0);
	if (jstr(ev, "text")) {
		e.kind = CORRAL_EVENT_LOG;
		e.stream = jstr(ev, "stream") ? jstr(ev, "stream") : "";
		e.ts_ms = jint(ev, "ts_ms", 0);
		e.text = jstr(ev, "text");
	} else if (jstr(ev, "state")) {
		e.kind = CORRAL_EVENT_STATE;
		e.type = jstr(ev, "type") ? jstr(ev, "type") : "";
		e.pid = jint(ev, "pid", 0);
		e.state = jstr(ev, "state");
		e.reason = jstr(ev, "reason");
	} else {
		return cr_err(err, CORRAL_E_PROTOCOL, 0, "event neither a state nor a log line");
	}
	json_incref(ev);
	*ret = e;
	return CORRAL_OK;
}

CR_EXPORT void corral_event_clear(struct corral_event *ev)
{
	if (!ev)
		return;
	json_decref(ev->json);
	memset(ev, 0, sizeof(*ev));
}
