/*
 * config.c - load, validate and default corrald's JSON configuration.
 *
 * The whole document is walked even after a problem is found, so that every
 * error is reported at once, each as "json.path: what is wrong".  A type is
 * first filled with the defaults of DESIGN.md, then overwritten by what the
 * file gives.  Library code: it never logs; an allocation failure aborts.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

/* Limits on everything a config file can ask for. */
#define MAX_FILE_BYTES (16u << 20) /* a config file */
#define MAX_ERRORS     1000	   /* messages kept; the rest are counted */
#define MAX_TYPES      1024
#define MAX_TYPE_NAME  64
#define MAX_POOL       1024	     /* pool.min, pool.max, pool.max_per_key */
#define MAX_QUEUE      1000000	     /* pool.queue */
#define MAX_MS	       604800000ull  /* any duration in ms: 7 days */
#define MAX_REQUESTS   1000000000ull /* pool.max_requests */
#define MAX_BURST      10000	     /* restart.burst */
#define MAX_MEMORY_MB  1048576ull    /* limits.memory_mb: 1 TiB */
#define MAX_CPU_S      604800ull     /* limits.cpu_s: 7 days */
#define MAX_NOFILE     1048576ull    /* limits.nofile: the kernel's default nr_open */
#define MAX_NPROC      4194304ull    /* limits.nproc: the kernel's PID_MAX_LIMIT */
#define MAX_OUTPUT_KB  4194304ull    /* limits.output_kb: 4 GiB */
#define MIN_NOFILE     16
#define MIN_RING_KB    4
#define MAX_RING_KB    1048576
#define MAX_EXEC_ARGS  1024
#define MAX_PATHS      256	     /* sandbox.readonly, sandbox.tmpfs */
#define MAX_UIDS       4096	     /* allow.uids */
#define MAX_GROUPS     4096	     /* allow.groups */
#define MAX_ID_NAME    256	     /* a user or group name */
#define MAX_SUN_PATH   107	     /* sizeof(sun_path) - 1 */
#define MAX_ID	       4294967294ull /* uid/gid; (uid_t)-1 is not one */

/* A JSON path being walked, e.g. "types.thumb.pool.max". */
struct path {
	char buf[512];
	size_t len;
};

/* One load: where the errors go and where we are. */
struct ctx {
	struct config_errors *errs; /* may be NULL: errors only counted */
	size_t nerr;		    /* errors found by this load */
	struct path path;
};

static const char *const mode_names[] = {"builtin", "native", "stdio", NULL};
static const char *const isolate_names[] = {"none", "key", NULL};
static const char *const seccomp_names[] = {"none", "default", "strict", NULL};
static const char *const builtin_names[] = {"echo", "sha256", NULL};
/* In NS_* bit order. */
static const char *const ns_names[] = {"user", "pid", "net", "ipc", "uts", "mount", NULL};
static const char *const default_readonly[] = {"/usr",	 "/bin", "/sbin", "/lib",
					       "/lib64", "/etc", NULL};

/* The embedded default configuration. */
static const char default_json[] = "{\"types\": {\"echo\": {\"builtin\": \"echo\"},"
				   " \"sha256\": {\"builtin\": \"sha256\"}}}";

/* Abort: memory is gone and there is nothing sensible left to do. */
static void oom(void)
{
	fputs("corral: out of memory\n", stderr);
	abort();
}

/* calloc() or abort. */
static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

/* strdup() or abort. */
static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

/* vasprintf() or abort. */
static char *xvasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	return s;
}

/* asprintf() or abort. */
static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

/* Free a NULL-terminated string vector. */
static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Index of S in the NULL-terminated NAMES, or -1. */
static int name_index(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

/* Append an error message (already "path: text") to the list. */
static void errs_push(struct config_errors *errs, char *msg)
{
	char **msgs = realloc(errs->msgs, (errs->n + 1) * sizeof *msgs);

	if (!msgs)
		oom();
	msgs[errs->n++] = msg;
	errs->msgs = msgs;
}

/* Record an error at the current path; only the first MAX_ERRORS are kept. */
static void err(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err(struct ctx *x, const char *fmt, ...)
{
	va_list ap;
	char *text;

	x->nerr++;
	if (!x->errs || x->nerr > MAX_ERRORS)
		return;
	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	errs_push(x->errs, xasprintf("%s: %s", x->path.len ? x->path.buf : "(root)", text));
	free(text);
}

/* Append N bytes to the path, truncating with "..." when it is full. */
static void path_append(struct path *p, const char *s, size_t n)
{
	size_t room;

	if (p->len + 4 >= sizeof p->buf)
		return;			   /* full: already ends in "..." */
	room = sizeof p->buf - 4 - p->len; /* keep space for "..." and the NUL */
	if (n > room) {
		memcpy(p->buf + p->len, s, room);
		p->len += room;
		memcpy(p->buf + p->len, "...", 3);
		p->len += 3;
	} else {
		memcpy(p->buf + p->len, s, n);
		p->len += n;
	}
	p->buf[p->len] = '\0';
}

/* Push an object key onto the path, escaping bytes that are not printable;
 * returns the mark to pop back to. */
static size_t path_key(struct ctx *x, const char *key)
{
	size_t mark = x->path.len;
	char esc[8];

	if (x->path.len)
		path_append(&x->path, ".", 1);
	if (!*key)
		path_append(&x->path, "\"\"", 2);
	for (const unsigned char *s = (const unsigned char *)key; *s; s++) {
		if (*s >= 0x20 && *s < 0x7f) {
			path_append(&x->path, (const char *)s, 1);
		} else {
			snprintf(esc, sizeof esc, "\\x%02x", *s);
			path_append(&x->path, esc, 4);
		}
	}
	return mark;
}

/* Push an array index onto the path; returns the mark to pop back to. */
static size_t path_index(struct ctx *x, size_t i)
{
	size_t mark = x->path.len;
	char buf[32];
	int n = snprintf(buf, sizeof buf, "[%zu]", i);

	path_append(&x->path, buf, (size_t)n);
	return mark;
}

/* Pop the path back to MARK. */
static void path_pop(struct ctx *x, size_t mark)
{
	x->path.len = mark;
	x->path.buf[mark] = '\0';
}

/* "a string", "an integer"...: V's JSON type, for messages. */
static const char *jtype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

/* True when V is an object; else an error at the current path. */
static bool want_object(struct ctx *x, const json_t *v)
{
	if (json_is_object(v))
		return true;
	err(x, "must be an object, not %s", jtype(v));
	return false;
}

/* True when V is an array; else an error at the current path. */
static bool want_array(struct ctx *x, const json_t *v)
{
	if (json_is_array(v))
		return true;
	err(x, "must be an array, not %s", jtype(v));
	return false;
}

/* Report every key of OBJ that is not in KNOWN. */
static void check_keys(struct ctx *x, json_t *obj, const char *const *known)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		if (name_index(known, key) < 0) {
			size_t mark = path_key(x, key);

			err(x, "unknown key");
			path_pop(x, mark);
		}
	}
}

/* Check that V is an integer in [LO, HI]; 1 with *out, or -1. */
static int check_uint(struct ctx *x, const json_t *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	json_int_t n;

	if (!json_is_integer(v)) {
		err(x, "must be an integer, not %s", jtype(v));
		return -1;
	}
	n = json_integer_value(v);
	if (n < 0 || (uint64_t)n < lo) {
		err(x, "must be >= %" PRIu64, lo);
		return -1;
	}
	if ((uint64_t)n > hi) {
		err(x, "must be <= %" PRIu64, hi);
		return -1;
	}
	*out = (uint64_t)n;
	return 1;
}

/* Optional integer member KEY of OBJ in [LO, HI]: 0 absent, 1 valid (*out set), -1 invalid. */
static int member_u64(struct ctx *x, json_t *obj, const char *key, uint64_t lo, uint64_t hi,
		      uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	size_t mark;
	int r;

	if (!v)
		return 0;
	mark = path_key(x, key);
	r = check_uint(x, v, lo, hi, out);
	path_pop(x, mark);
	return r;
}

/* member_u64() for a 32-bit field (HI must fit). */
static int member_u32(struct ctx *x, json_t *obj, const char *key, uint32_t lo, uint32_t hi,
		      uint32_t *out)
{
	uint64_t n;
	int r = member_u64(x, obj, key, lo, hi, &n);

	if (r > 0)
		*out = (uint32_t)n;
	return r;
}

/* Optional string member KEY of OBJ: 0 absent, 1 valid (*out borrowed), -1 not a string. */
static int member_string(struct ctx *x, json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);
	size_t mark;

	if (!v)
		return 0;
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return 1;
	}
	mark = path_key(x, key);
	err(x, "must be a string, not %s", jtype(v));
	path_pop(x, mark);
	return -1;
}

/* Optional string member KEY of OBJ that must be one of NAMES: 0 absent, 1 valid (*out set to
 * its index), -1 invalid. */
static int member_enum(struct ctx *x, json_t *obj, const char *key, const char *const *names,
		       int *out)
{
	const char *s;
	int r = member_string(x, obj, key, &s);
	char list[128];
	size_t len = 0;
	size_t mark;
	int i;

	if (r <= 0)
		return r;
	i = name_index(names, s);
	if (i >= 0) {
		*out = i;
		return 1;
	}
	list[0] = '\0';
	for (int k = 0; names[k]; k++) {
		const char *sep = !k ? "" : names[k + 1] ? ", " : " or ";

		len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%s\"", sep, names[k]);
	}
	mark = path_key(x, key);
	err(x, "must be %s, not \"%.64s\"", list, s);
	path_pop(x, mark);
	return -1;
}

/* Check S is an absolute path of at most MAX bytes (with no "." or ".." component when
 * STRICT); errors at the current path. */
static bool check_abs_path(struct ctx *x, const char *s, size_t max, bool strict)
{
	if (s[0] != '/') {
		err(x, "must be an absolute path");
		return false;
	}
	if (strlen(s) > max) {
		err(x, "must be at most %zu bytes long", max);
		return false;
	}
	if (strict) {
		for (const char *p = s; *p;) {
			size_t n;

			p += strspn(p, "/");
			n = strcspn(p, "/");
			if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
				err(x, "must not contain \".\" or \"..\" components");
				return false;
			}
			p += n;
		}
	}
	return true;
}

/* Optional absolute-path member KEY of OBJ, copied to *out. */
static void member_abs_path(struct ctx *x, json_t *obj, const char *key, size_t max, char **out)
{
	const char *s;
	size_t mark;

	if (member_string(x, obj, key, &s) <= 0)
		return;
	mark = path_key(x, key);
	if (check_abs_path(x, s, max, false))
		*out = xstrdup(s);
	path_pop(x, mark);
}

/* Check S is a user or group name, or a numeric id; errors at the current path. */
static bool check_id_name(struct ctx *x, const char *s, const char *what)
{
	size_t len = strlen(s);

	if (len == 0 || len > MAX_ID_NAME) {
		err(x, "must be a %s name or numeric id of 1 to %d characters", what, MAX_ID_NAME);
		return false;
	}
	if (strspn(s, "0123456789") == len) {
		if (len > 10 || strtoull(s, NULL, 10) > MAX_ID) {
			err(x, "numeric id must be <= %llu", MAX_ID);
			return false;
		}
		return true;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == ':' || *p == '/' || *p == ',') {
			err(x, "must be a %s name or numeric id, not \"%.64s\"", what, s);
			return false;
		}
	}
	return true;
}

/* Optional user/group name member KEY of OBJ, copied to *out. */
static void member_id_name(struct ctx *x, json_t *obj, const char *key, const char *what,
			   char **out)
{
	const char *s;
	size_t mark;

	if (member_string(x, obj, key, &s) <= 0)
		return;
	mark = path_key(x, key);
	if (check_id_name(x, s, what))
		*out = xstrdup(s);
	path_pop(x, mark);
}

/* Optional boolean member KEY of OBJ into *out. */
static void member_bool(struct ctx *x, json_t *obj, const char *key, bool *out)
{
	json_t *v = json_object_get(obj, key);
	size_t mark;

	if (!v)
		return;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return;
	}
	mark = path_key(x, key);
	err(x, "must be true or false, not %s", jtype(v));
	path_pop(x, mark);
}

/* Optional member KEY of OBJ: an array of at most MAX absolute paths, into a new
 * NULL-terminated *out (replacing what was there) when valid. */
static void member_path_list(struct ctx *x, json_t *obj, const char *key, size_t max, char ***out)
{
	json_t *v = json_object_get(obj, key);
	size_t mark, n, i, bad = x->nerr;
	char **list;
	json_t *e;

	if (!v)
		return;
	mark = path_key(x, key);
	if (!want_array(x, v))
		goto out;
	n = json_array_size(v);
	if (n > max) {
		err(x, "must hold at most %zu paths", max);
		goto out;
	}
	json_array_foreach(v, i, e)
	{
		size_t m = path_index(x, i);

		if (!json_is_string(e))
			err(x, "must be a string, not %s", jtype(e));
		else
			check_abs_path(x, json_string_value(e), PATH_MAX - 1, true);
		path_pop(x, m);
	}
	if (x->nerr != bad)
		goto out;
	list = xcalloc(n + 1, sizeof *list);
	json_array_foreach(v, i, e) list[i] = xstrdup(json_string_value(e));
	strv_free(*out);
	*out = list;
out:
	path_pop(x, mark);
}

/* Parse the top-level "socket" object. */
static void parse_socket(struct ctx *x, struct config *c, json_t *v)
{
	static const char *const keys[] = {"path", "mode", "group", NULL};
	const char *s;
	size_t mark = path_key(x, "socket");

	if (!want_object(x, v))
		goto out;
	check_keys(x, v, keys);
	member_abs_path(x, v, "path", MAX_SUN_PATH, &c->socket_path);
	if (member_string(x, v, "mode", &s) > 0) {
		size_t m = path_key(x, "mode");
		size_t len = strlen(s);

		/* "660" or "0660": permission bits only, no setuid/sticky. */
		if ((len == 3 || (len == 4 && s[0] == '0')) && strspn(s, "01234567") == len)
			c->socket_mode = (unsigned)strtoul(s, NULL, 8);
		else
			err(x, "must be an octal mode string such as \"0660\", not \"%.64s\"", s);
		path_pop(x, m);
	}
	member_id_name(x, v, "group", "group", &c->socket_group);
out:
	path_pop(x, mark);
}

/* Parse the top-level "allow" object. */
static void parse_allow(struct ctx *x, struct config *c, json_t *v)
{
	static const char *const keys[] = {"uids", "groups", NULL};
	size_t mark = path_key(x, "allow");
	size_t i, m, bad;
	json_t *a, *e;

	if (!want_object(x, v))
		goto out;
	check_keys(x, v, keys);
	a = json_object_get(v, "uids");
	if (a) {
		m = path_key(x, "uids");
		if (!want_array(x, a)) {
		} else if (json_array_size(a) > MAX_UIDS) {
			err(x, "must hold at most %d uids", MAX_UIDS);
		} else {
			c->allow_uids = xcalloc(json_array_size(a), sizeof *c->allow_uids);
			json_array_foreach(a, i, e)
			{
				size_t mi = path_index(x, i);
				uint64_t uid;

				if (check_uint(x, e, 0, MAX_ID, &uid) > 0)
					c->allow_uids[c->n_allow_uids++] = (uid_t)uid;
				path_pop(x, mi);
			}
		}
		path_pop(x, m);
	}
	a = json_object_get(v, "groups");
	if (a) {
		m = path_key(x, "groups");
		bad = x->nerr;
		if (!want_array(x, a)) {
		} else if (json_array_size(a) > MAX_GROUPS) {
			err(x, "must hold at most %d groups", MAX_GROUPS);
		} else {
			json_array_foreach(a, i, e)
			{
				size_t mi = path_index(x, i);

				if (!json_is_string(e))
					err(x, "must be a string, not %s", jtype(e));
				else
					check_id_name(x, json_string_value(e), "group");
				path_pop(x, mi);
			}
			if (x->nerr == bad) {
				strv_free(c->allow_groups);
				c->allow_groups = xcalloc(json_array_size(a) + 1, sizeof(char *));
				json_array_foreach(a, i, e) c->allow_groups[i] =
				    xstrdup(json_string_value(e));
			}
		}
		path_pop(x, m);
	}
out:
	path_pop(x, mark);
}

/* True when S is a decimal TCP port, 1..65535. */
static bool valid_port(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
		return false;
	unsigned long n = strtoul(s, NULL, 10);
	return n >= 1 && n <= 65535;
}

/* True when S is a loopback "host:port": 127.x.x.x, localhost or [::1]. */
static bool valid_loopback(const char *s)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	struct in_addr a;
	size_t hlen;

	if (!colon || !valid_port(colon + 1))
		return false;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen >= sizeof host)
		return false;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return true;
	return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* Parse the top-level "metrics" object. */
static void parse_metrics(struct ctx *x, struct config *c, json_t *v)
{
	static const char *const keys[] = {"listen", NULL};
	size_t mark = path_key(x, "metrics");
	const char *s;

	if (!want_object(x, v))
		goto out;
	check_keys(x, v, keys);
	if (member_string(x, v, "listen", &s) > 0) {
		size_t m = path_key(x, "listen");

		if (s[0] == '/') {
			if (check_abs_path(x, s, MAX_SUN_PATH, false))
				c->metrics_listen = xstrdup(s);
		} else if (valid_loopback(s)) {
			c->metrics_listen = xstrdup(s);
		} else {
			err(x,
			    "must be a loopback host:port (127.x.x.x, localhost or [::1], port "
			    "1..65535) or an absolute UNIX socket path, not \"%.64s\"",
			    s);
		}
		path_pop(x, m);
	}
out:
	path_pop(x, mark);
}

/* Parse a type's "pool" object into P. */
static void parse_pool(struct ctx *x, struct pool_config *p, json_t *v)
{
	static const char *const keys[] = {"min",	   "max",    "idle_timeout_ms",
					   "max_requests", "queue",  "isolate",
					   "max_per_key",  "spares", NULL};
	int rmin, rmax, rkey, iso;
	size_t m;

	if (!want_object(x, v))
		return;
	check_keys(x, v, keys);
	rmin = member_u32(x, v, "min", 0, MAX_POOL, &p->min);
	rmax = member_u32(x, v, "max", 1, MAX_POOL, &p->max);
	member_u64(x, v, "idle_timeout_ms", 0, MAX_MS, &p->idle_timeout_ms);
	member_u64(x, v, "max_requests", 0, MAX_REQUESTS, &p->max_requests);
	member_u32(x, v, "queue", 0, MAX_QUEUE, &p->queue);
	if (member_enum(x, v, "isolate", isolate_names, &iso) > 0)
		p->isolate = iso == 1 ? ISOLATE_KEY : ISOLATE_NONE;
	rkey = member_u32(x, v, "max_per_key", 1, MAX_POOL, &p->max_per_key);
	json_t *sp = json_object_get(v, "spares");
	if (sp && !(json_is_string(sp) && strcmp(json_string_value(sp), "auto") == 0)) {
		uint32_t n;
		if (json_is_string(sp)) {
			m = path_key(x, "spares");
			err(x, "must be \"auto\" or an integer from 0 to %d", MAX_SPARES);
			path_pop(x, m);
		} else if (member_u32(x, v, "spares", 0, MAX_SPARES, &n) > 0) {
			p->spares = (int32_t)n;
		}
	}

	/* Blame the key the file gave, not the default it is compared with. */
	if (rmin >= 0 && rmax >= 0 && p->min > p->max) {
		if (rmax > 0) {
			m = path_key(x, "max");
			err(x, "must be >= pool.min (%" PRIu32 ")", p->min);
		} else {
			m = path_key(x, "min");
			err(x, "must be <= pool.max (%" PRIu32 ")", p->max);
		}
		path_pop(x, m);
	}
	if (rkey >= 0 && rmax >= 0 && p->max_per_key > p->max) {
		if (rkey > 0) {
			m = path_key(x, "max_per_key");
			err(x, "must be <= pool.max (%" PRIu32 ")", p->max);
		} else {
			m = path_key(x, "max");
			err(x, "must be >= pool.max_per_key (%" PRIu32 ")", p->max_per_key);
		}
		path_pop(x, m);
	}
}

/* Parse a type's "restart" object into R. */
static void parse_restart(struct ctx *x, struct restart_config *r, json_t *v)
{
	static const char *const keys[] = {"backoff_ms", "burst", "interval_ms", "healthy_ms",
					   NULL};
	json_t *b;

	if (!want_object(x, v))
		return;
	check_keys(x, v, keys);
	b = json_object_get(v, "backoff_ms");
	if (b) {
		size_t m = path_key(x, "backoff_ms");
		uint64_t ms[2];

		if (!json_is_array(b) || json_array_size(b) != 2) {
			err(x, "must be an array of two integers [first, max], not %s", jtype(b));
		} else {
			size_t m0 = path_index(x, 0);
			int r0 = check_uint(x, json_array_get(b, 0), 1, MAX_MS, &ms[0]);

			path_pop(x, m0);
			m0 = path_index(x, 1);
			int r1 = check_uint(x, json_array_get(b, 1), 1, MAX_MS, &ms[1]);

			if (r0 > 0 && r1 > 0 && ms[0] > ms[1])
				err(x, "must be >= backoff_ms[0] (%" PRIu64 ")", ms[0]);
			path_pop(x, m0);
			if (r0 > 0 && r1 > 0 && ms[0] <= ms[1]) {
				r->backoff_ms[0] = ms[0];
				r->backoff_ms[1] = ms[1];
			}
		}
		path_pop(x, m);
	}
	member_u32(x, v, "burst", 0, MAX_BURST, &r->burst);
	member_u64(x, v, "interval_ms", 1, MAX_MS, &r->interval_ms);
	member_u64(x, v, "healthy_ms", 0, MAX_MS, &r->healthy_ms);
}

/* Parse a type's "limits" object into L. */
static void parse_limits(struct ctx *x, struct limits_config *l, json_t *v)
{
	static const char *const keys[] = {"timeout_ms",       "memory_mb", "cpu_s",
					   "nofile",	       "nproc",	    "output_kb",
					   "start_timeout_ms", NULL};

	if (!want_object(x, v))
		return;
	check_keys(x, v, keys);
	member_u64(x, v, "timeout_ms", 1, MAX_MS, &l->timeout_ms);
	member_u64(x, v, "memory_mb", 0, MAX_MEMORY_MB, &l->memory_mb);
	member_u64(x, v, "cpu_s", 0, MAX_CPU_S, &l->cpu_s);
	member_u64(x, v, "nofile", MIN_NOFILE, MAX_NOFILE, &l->nofile);
	member_u64(x, v, "nproc", 1, MAX_NPROC, &l->nproc);
	member_u64(x, v, "output_kb", 1, MAX_OUTPUT_KB, &l->output_kb);
	member_u64(x, v, "start_timeout_ms", 1, MAX_MS, &l->start_timeout_ms);
}

/* Parse sandbox.namespaces into *out: 0 absent, 1 valid, -1 invalid. */
static int parse_namespaces(struct ctx *x, json_t *obj, unsigned *out)
{
	json_t *v = json_object_get(obj, "namespaces");
	size_t mark, i, bad = x->nerr;
	unsigned bits = 0;
	json_t *e;

	if (!v)
		return 0;
	mark = path_key(x, "namespaces");
	if (want_array(x, v)) {
		json_array_foreach(v, i, e)
		{
			size_t m = path_index(x, i);
			int k;

			if (!json_is_string(e)) {
				err(x, "must be a string, not %s", jtype(e));
			} else if ((k = name_index(ns_names, json_string_value(e))) < 0) {
				err(x,
				    "unknown namespace \"%.64s\" (known: user, pid, net, ipc, uts, "
				    "mount)",
				    json_string_value(e));
			} else if (bits & (1u << k)) {
				err(x, "duplicate namespace \"%s\"", ns_names[k]);
			} else {
				bits |= 1u << k;
			}
			path_pop(x, m);
		}
	}
	path_pop(x, mark);
	if (x->nerr != bad)
		return -1;
	*out = bits;
	return 1;
}

/* Parse a type's "sandbox" object into S. */
static void parse_sandbox(struct ctx *x, struct sandbox_config *s, json_t *v, bool *seccomp_given)
{
	static const char *const keys[] = {"namespaces", "seccomp", "readonly", "tmpfs",
					   "network",	 "user",    NULL};
	int rns, sec;

	if (!want_object(x, v))
		return;
	check_keys(x, v, keys);
	rns = parse_namespaces(x, v, &s->namespaces);
	if (member_enum(x, v, "seccomp", seccomp_names, &sec) > 0) {
		s->seccomp = sec == 0 ? SECCOMP_NONE : sec == 1 ? SECCOMP_DEFAULT : SECCOMP_STRICT;
		*seccomp_given = true;
	}
	member_path_list(x, v, "readonly", MAX_PATHS, &s->readonly);
	member_path_list(x, v, "tmpfs", MAX_PATHS, &s->tmpfs);
	member_bool(x, v, "network", &s->network);
	member_id_name(x, v, "user", "user", &s->user);

	/* Network access means sharing the daemon's network namespace. */
	if (s->network) {
		if (rns == 0) {
			s->namespaces &= ~NS_NET;
		} else if (rns > 0 && (s->namespaces & NS_NET)) {
			size_t m = path_key(x, "network");

			err(x, "true conflicts with \"net\" in sandbox.namespaces");
			path_pop(x, m);
		}
	}
}

/* Parse a type's optional "exec" into a new NULL-terminated *out when valid. */
static void parse_exec(struct ctx *x, json_t *obj, char ***out)
{
	json_t *v = json_object_get(obj, "exec");
	size_t mark, i, n, bad = x->nerr;
	char **argv;
	json_t *e;

	if (!v)
		return;
	mark = path_key(x, "exec");
	if (!want_array(x, v))
		goto out;
	n = json_array_size(v);
	if (n == 0 || n > MAX_EXEC_ARGS) {
		err(x, "must hold 1 to %d strings (the program and its arguments)", MAX_EXEC_ARGS);
		goto out;
	}
	json_array_foreach(v, i, e)
	{
		size_t m = path_index(x, i);

		if (!json_is_string(e))
			err(x, "must be a string, not %s", jtype(e));
		else if (i == 0)
			check_abs_path(x, json_string_value(e), PATH_MAX - 1, false);
		path_pop(x, m);
	}
	if (x->nerr != bad)
		goto out;
	argv = xcalloc(n + 1, sizeof *argv);
	json_array_foreach(v, i, e) argv[i] = xstrdup(json_string_value(e));
	*out = argv;
out:
	path_pop(x, mark);
}

/* Record an error at "<current>.KEY". */
static void err_at(struct ctx *x, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err_at(struct ctx *x, const char *key, const char *fmt, ...)
{
	size_t m = path_key(x, key);
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	err(x, "%s", text);
	free(text);
	path_pop(x, m);
}

/* Fill T with the defaults of DESIGN.md (readonly: those of the list that exist). */
static void type_defaults(struct type_config *t)
{
	struct stat st;
	size_t n = 0;

	t->mode = MODE_NATIVE;
	t->pool = (struct pool_config){.min = 0,
				       .max = 4,
				       .idle_timeout_ms = 10000,
				       .max_requests = 0,
				       .queue = 64,
				       .isolate = ISOLATE_NONE,
				       .max_per_key = 1,
				       .spares = SPARES_AUTO};
	t->restart = (struct restart_config){
	    .backoff_ms = {100, 30000}, .burst = 5, .interval_ms = 10000, .healthy_ms = 1000};
	t->limits = (struct limits_config){.timeout_ms = 30000,
					   .memory_mb = 0,
					   .cpu_s = 0,
					   .nofile = 256,
					   .nproc = 64,
					   .output_kb = 65536,
					   .start_timeout_ms = 10000};
	t->sandbox.namespaces = NS_ALL;
	t->sandbox.seccomp = SECCOMP_DEFAULT;
	t->sandbox.readonly =
	    xcalloc(sizeof default_readonly / sizeof *default_readonly, sizeof(char *));
	for (size_t i = 0; default_readonly[i]; i++)
		if (lstat(default_readonly[i], &st) == 0)
			t->sandbox.readonly[n++] = xstrdup(default_readonly[i]);
	t->sandbox.tmpfs = xcalloc(2, sizeof(char *));
	t->sandbox.tmpfs[0] = xstrdup("/tmp");
	t->sandbox.network = false;
	t->sandbox.user = NULL;
	t->ring_kb = 1024;
}

/* True when NAME is a valid type name: 1..64 of [A-Za-z0-9_.-]. */
static bool valid_type_name(const char *name)
{
	size_t len = strlen(name);

	return len >= 1 && len <= MAX_TYPE_NAME &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
		   len;
}

/* Parse one worker type NAME from V into T (filled with defaults first). */
static void parse_type(struct ctx *x, struct type_config *t, const char *name, json_t *v)
{
	static const char *const keys[] = {"builtin", "mode",	 "exec",    "pool", "restart",
					   "limits",  "sandbox", "ring_kb", NULL};
	size_t mark = path_key(x, name);
	bool has_builtin, has_exec, seccomp_given = false;
	int rmode, mode = -1;
	const char *b;
	json_t *sub;

	t->name = xstrdup(name);
	type_defaults(t);
	if (!valid_type_name(name))
		err(x, "invalid type name: must be 1 to %d characters of A-Z a-z 0-9 _ . -",
		    MAX_TYPE_NAME);
	if (!want_object(x, v))
		goto out;
	check_keys(x, v, keys);

	rmode = member_enum(x, v, "mode", mode_names, &mode);
	has_builtin = json_object_get(v, "builtin") != NULL;
	has_exec = json_object_get(v, "exec") != NULL;
	if (member_string(x, v, "builtin", &b) > 0) {
		if (name_index(builtin_names, b) >= 0)
			t->builtin = xstrdup(b);
		else
			err_at(x, "builtin", "unknown builtin \"%.64s\" (known: echo, sha256)", b);
	}
	parse_exec(x, v, &t->exec);
	if (rmode == 0)
		mode = has_builtin ? 0 : 1;
	if (mode == 0) {
		t->mode = MODE_BUILTIN;
		if (!has_builtin)
			err_at(x, "builtin", "required for mode \"%s\"", "builtin");
		if (has_exec)
			err_at(x, "exec", "not allowed with mode \"%s\"", "builtin");
	} else if (mode > 0) {
		t->mode = mode == 1 ? MODE_NATIVE : MODE_STDIO;
		if (has_builtin)
			err_at(x, "builtin", "not allowed with mode \"%s\"", mode_names[mode]);
		if (!has_exec)
			err_at(x, "exec", "required for mode \"%s\"", mode_names[mode]);
	}

	if ((sub = json_object_get(v, "pool"))) {
		size_t m = path_key(x, "pool");

		parse_pool(x, &t->pool, sub);
		path_pop(x, m);
	}
	if ((sub = json_object_get(v, "restart"))) {
		size_t m = path_key(x, "restart");

		parse_restart(x, &t->restart, sub);
		path_pop(x, m);
	}
	if ((sub = json_object_get(v, "limits"))) {
		size_t m = path_key(x, "limits");

		parse_limits(x, &t->limits, sub);
		path_pop(x, m);
	}
	if ((sub = json_object_get(v, "sandbox"))) {
		size_t m = path_key(x, "sandbox");

		parse_sandbox(x, &t->sandbox, sub, &seccomp_given);
		path_pop(x, m);
	}
	if (!seccomp_given && t->mode == MODE_BUILTIN)
		t->sandbox.seccomp = SECCOMP_STRICT;
	if (member_u32(x, v, "ring_kb", MIN_RING_KB, MAX_RING_KB, &t->ring_kb) > 0 &&
	    (t->ring_kb & (t->ring_kb - 1)) != 0) {
		size_t m = path_key(x, "ring_kb");

		err(x, "must be a power of two (%d..%d)", MIN_RING_KB, MAX_RING_KB);
		path_pop(x, m);
	}
out:
	path_pop(x, mark);
}

/* Parse the top-level "types" object; at least one type. */
static void parse_types(struct ctx *x, struct config *c, json_t *v)
{
	size_t mark = path_key(x, "types");
	const char *name;
	size_t n, i = 0;
	json_t *tv;

	if (!v) {
		err(x, "required: at least one worker type");
		goto out;
	}
	if (!want_object(x, v))
		goto out;
	n = json_object_size(v);
	if (n == 0) {
		err(x, "must hold at least one worker type");
		goto out;
	}
	if (n > MAX_TYPES) {
		err(x, "must hold at most %d worker types", MAX_TYPES);
		goto out;
	}
	c->types = xcalloc(n, sizeof *c->types);
	c->ntypes = n;
	json_object_foreach(v, name, tv) parse_type(x, &c->types[i++], name, tv);
out:
	path_pop(x, mark);
}

/* A JSON array of the NULL-terminated string vector V. */
static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();

	if (!a)
		oom();
	for (; v && *v; v++)
		if (json_array_append_new(a, json_string(*v)) < 0)
			oom();
	return a;
}

/* Set KEY of O to the new reference V, or abort. */
static void jset(json_t *o, const char *key, json_t *v)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		oom();
}

/* An integer JSON value of N (all our values are bounded far below INT64_MAX). */
static json_t *jint(uint64_t n)
{
	return json_integer((json_int_t)n);
}

/* The canonical JSON of T's effective settings (everything after defaults, but its name). */
static char *type_canonical(const struct type_config *t)
{
	json_t *o = json_object(), *p = json_object(), *r = json_object(), *l = json_object();
	json_t *s = json_object(), *ns = json_array(), *bo = json_array();
	char *out;

	if (!o || !p || !r || !l || !s || !ns || !bo)
		oom();
	jset(o, "mode", json_string(mode_names[t->mode]));
	if (t->builtin)
		jset(o, "builtin", json_string(t->builtin));
	if (t->exec)
		jset(o, "exec", strv_json(t->exec));

	jset(p, "min", jint(t->pool.min));
	jset(p, "max", jint(t->pool.max));
	jset(p, "idle_timeout_ms", jint(t->pool.idle_timeout_ms));
	jset(p, "max_requests", jint(t->pool.max_requests));
	jset(p, "queue", jint(t->pool.queue));
	jset(p, "isolate", json_string(isolate_names[t->pool.isolate]));
	jset(p, "max_per_key", jint(t->pool.max_per_key));
	jset(p, "spares",
	     t->pool.spares == SPARES_AUTO ? json_string("auto") : jint(t->pool.spares));
	jset(o, "pool", p);

	if (json_array_append_new(bo, jint(t->restart.backoff_ms[0])) < 0 ||
	    json_array_append_new(bo, jint(t->restart.backoff_ms[1])) < 0)
		oom();
	jset(r, "backoff_ms", bo);
	jset(r, "burst", jint(t->restart.burst));
	jset(r, "interval_ms", jint(t->restart.interval_ms));
	jset(r, "healthy_ms", jint(t->restart.healthy_ms));
	jset(o, "restart", r);

	jset(l, "timeout_ms", jint(t->limits.timeout_ms));
	jset(l, "memory_mb", jint(t->limits.memory_mb));
	jset(l, "cpu_s", jint(t->limits.cpu_s));
	jset(l, "nofile", jint(t->limits.nofile));
	jset(l, "nproc", jint(t->limits.nproc));
	jset(l, "output_kb", jint(t->limits.output_kb));
	jset(l, "start_timeout_ms", jint(t->limits.start_timeout_ms));
	jset(o, "limits", l);

	/* Namespaces in a fixed order: the set matters, not how the file listed it. */
	for (int k = 0; ns_names[k]; k++)
		if ((t->sandbox.namespaces & (1u << k)) &&
		    json_array_append_new(ns, json_string(ns_names[k])) < 0)
			oom();
	jset(s, "namespaces", ns);
	jset(s, "seccomp", json_string(seccomp_names[t->sandbox.seccomp]));
	jset(s, "readonly", strv_json(t->sandbox.readonly));
	jset(s, "tmpfs", strv_json(t->sandbox.tmpfs));
	jset(s, "network", json_boolean(t->sandbox.network));
	jset(s, "user", t->sandbox.user ? json_string(t->sandbox.user) : json_null());
	jset(o, "sandbox", s);

	jset(o, "ring_kb", jint(t->ring_kb));

	out = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	if (!out)
		oom();
	json_decref(o);
	return out;
}

/* Validate the parsed document ROOT into a new config; NULL when errors were found. */
static struct config *config_from_json(struct ctx *x, json_t *root)
{
	static const char *const keys[] = {"socket", "allow", "metrics", "types", NULL};
	struct config *c = xcalloc(1, sizeof *c);
	json_t *v;

	c->socket_mode = 0660;
	c->allow_groups = xcalloc(1, sizeof(char *));
	if (!json_is_object(root)) {
		err(x, "must be a JSON object, not %s", jtype(root));
	} else {
		check_keys(x, root, keys);
		if ((v = json_object_get(root, "socket")))
			parse_socket(x, c, v);
		if ((v = json_object_get(root, "allow")))
			parse_allow(x, c, v);
		if ((v = json_object_get(root, "metrics")))
			parse_metrics(x, c, v);
		parse_types(x, c, json_object_get(root, "types"));
	}
	if (x->nerr) {
		config_free(c);
		return NULL;
	}
	for (size_t i = 0; i < c->ntypes; i++)
		c->types[i].canonical = type_canonical(&c->types[i]);
	return c;
}

/* Parse LEN bytes of JSON named SOURCE (for decode errors). */
static int load_buffer(const char *buf, size_t len, const char *source, struct config **ret,
		       struct config_errors *errs)
{
	struct ctx x = {.errs = errs};
	struct config *c;
	json_error_t je;
	json_t *root;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root) {
		if (errs) {
			if (je.line > 0)
				errs_push(errs, xasprintf("%s:%d:%d: %s", source, je.line,
							  je.column, je.text));
			else
				errs_push(errs, xasprintf("%s: %s", source, je.text));
		}
		return -1;
	}
	c = config_from_json(&x, root);
	json_decref(root);
	if (!c) {
		if (errs && x.nerr > MAX_ERRORS)
			errs_push(errs, xasprintf("(root): %zu more errors not shown",
						  x.nerr - MAX_ERRORS));
		return -1;
	}
	*ret = c;
	return 0;
}

/* The embedded default's JSON text, as config_default() parses it. */
const char *config_default_json(void)
{
	return default_json;
}

/* Read all of PATH (at most MAX_FILE_BYTES) into a new buffer; 0 or an errno. */
static int read_file(const char *path, char **ret_buf, size_t *ret_len)
{
	size_t len = 0, cap = 8192;
	char *buf = NULL, *nb;
	int fd, e = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno;
	for (;;) {
		if (!buf || len == cap) {
			if (buf)
				cap *= 2;
			nb = realloc(buf, cap);
			if (!nb)
				oom();
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MAX_FILE_BYTES) {
			e = EFBIG;
			break;
		}
	}
	close(fd);
	if (e) {
		free(buf);
		return e;
	}
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int config_load_file(const char *path, struct config **ret, struct config_errors *errs)
{
	size_t len = 0;
	char *buf = NULL;
	int e, r;

	e = read_file(path, &buf, &len);
	if (e) {
		if (errs)
			errs_push(errs, xasprintf("%s: cannot read: %s", path, strerror(e)));
		return -1;
	}
	r = load_buffer(buf, len, path, ret, errs);
	free(buf);
	return r;
}

int config_load_string(const char *json, struct config **ret, struct config_errors *errs)
{
	return load_buffer(json, strlen(json), "<string>", ret, errs);
}

struct config *config_default(void)
{
	struct config *c = NULL;

	if (load_buffer(default_json, sizeof default_json - 1, "<default>", &c, NULL) < 0)
		abort(); /* the embedded text is ours: a broken invariant */
	return c;
}

const struct type_config *config_find_type(const struct config *c, const char *name)
{
	if (!c || !name)
		return NULL;
	for (size_t i = 0; i < c->ntypes; i++)
		if (strcmp(c->types[i].name, name) == 0)
			return &c->types[i];
	return NULL;
}

/* Free what T owns (not T itself). */
static void type_free(struct type_config *t)
{
	free(t->name);
	free(t->builtin);
	strv_free(t->exec);
	strv_free(t->sandbox.readonly);
	strv_free(t->sandbox.tmpfs);
	free(t->sandbox.user);
	free(t->canonical);
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ntypes; i++)
		type_free(&c->types[i]);
	free(c->types);
	free(c->socket_path);
	free(c->socket_group);
	free(c->allow_uids);
	strv_free(c->allow_groups);
	free(c->metrics_listen);
	free(c);
}

void config_errors_free(struct config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}
