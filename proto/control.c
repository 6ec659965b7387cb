/*
 * control.c - the control protocol's tables and the request validator shared
 * by corrald, corralctl and libcorral.
 */
#include "control.h"

#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const code_names[CTL_NCODES] = {
    [CTL_OK] = "ok",
    [CTL_BAD_REQUEST] = "bad_request",
    [CTL_UNKNOWN_COMMAND] = "unknown_command",
    [CTL_UNKNOWN_TYPE] = "unknown_type",
    [CTL_NO_SUCH_WORKER] = "no_such_worker",
    [CTL_TOO_LARGE] = "too_large",
    [CTL_BUSY] = "busy",
    [CTL_TIMEOUT] = "timeout",
    [CTL_WORKER_CRASHED] = "worker_crashed",
    [CTL_WORKER_ERROR] = "worker_error",
    [CTL_SANDBOX_VIOLATION] = "sandbox_violation",
    [CTL_UNAVAILABLE] = "unavailable",
    [CTL_PERMISSION_DENIED] = "permission_denied",
    [CTL_SHUTTING_DOWN] = "shutting_down",
    [CTL_INTERNAL] = "internal",
};

const char *ctl_code_name(enum ctl_code code)
{
	if ((unsigned)code >= CTL_NCODES)
		return code_names[CTL_INTERNAL];
	return code_names[code];
}

enum ctl_code ctl_code_parse(const char *name)
{
	for (unsigned i = CTL_BAD_REQUEST; i < CTL_NCODES; i++)
		if (name && strcmp(code_names[i], name) == 0)
			return (enum ctl_code)i;
	return CTL_NCODES;
}

#define A_STR(n)                                                                                   \
	{                                                                                          \
		n, CTL_ARG_STRING, 0, 0, false                                                     \
	}
#define A_INT(n, l, h)                                                                             \
	{                                                                                          \
		n, CTL_ARG_INT, l, h, false                                                        \
	}
#define A_BOOL(n)                                                                                  \
	{                                                                                          \
		n, CTL_ARG_BOOL, 0, 0, false                                                       \
	}
#define A_END                                                                                      \
	{                                                                                          \
		NULL, CTL_ARG_STRING, 0, 0, false                                                  \
	}
#define A_WORKER A_INT("worker", 1, CTL_INT_MAX)

static const struct ctl_arg no_args[] = {A_END};
static const struct ctl_arg type_args[] = {A_STR("type"), A_END};
static const struct ctl_arg spawn_args[] = {A_STR("type"), A_INT("count", 1, 10000), A_END};
static const struct ctl_arg stop_args[] = {A_WORKER, A_STR("type"),
					   A_INT("timeout_ms", 0, CTL_TIMEOUT_MAX), A_END};
static const struct ctl_arg kill_args[] = {A_WORKER, A_STR("signal"), A_END};
static const struct ctl_arg restart_args[] = {A_WORKER, A_STR("type"), A_END};
static const struct ctl_arg call_args[] = {A_STR("type"),
					   {"payload", CTL_ARG_STRING, 0, 0, true},
					   A_STR("payload_b64"),
					   A_BOOL("payload_fd"),
					   A_INT("timeout_ms", 1, CTL_TIMEOUT_MAX),
					   A_STR("key"),
					   A_END};
static const struct ctl_arg logs_args[] = {A_WORKER,
					   A_STR("type"),
					   A_INT("lines", 0, 100000),
					   A_BOOL("follow"),
					   A_INT("since_ms", 0, CTL_INT_MAX),
					   A_END};
static const struct ctl_arg shutdown_args[] = {A_INT("timeout_ms", 0, CTL_TIMEOUT_MAX), A_END};

/* name, id, args, takes_fd, while_draining, stream */
const struct ctl_cmd ctl_commands[CTL_NCMDS] = {
    [CTL_CMD_PING] = {"ping", CTL_CMD_PING, no_args, false, true, false},
    [CTL_CMD_TYPES] = {"types", CTL_CMD_TYPES, no_args, false, true, false},
    [CTL_CMD_LIST] = {"list", CTL_CMD_LIST, type_args, false, true, false},
    [CTL_CMD_DESCRIBE] = {"describe", CTL_CMD_DESCRIBE, type_args, false, true, false},
    [CTL_CMD_SPAWN] = {"spawn", CTL_CMD_SPAWN, spawn_args, false, false, false},
    [CTL_CMD_STOP] = {"stop", CTL_CMD_STOP, stop_args, false, true, false},
    [CTL_CMD_KILL] = {"kill", CTL_CMD_KILL, kill_args, false, true, false},
    [CTL_CMD_RESTART] = {"restart", CTL_CMD_RESTART, restart_args, false, false, false},
    [CTL_CMD_CALL] = {"call", CTL_CMD_CALL, call_args, true, false, false},
    [CTL_CMD_LOGS] = {"logs", CTL_CMD_LOGS, logs_args, false, true, true},
    [CTL_CMD_STATS] = {"stats", CTL_CMD_STATS, type_args, false, true, false},
    [CTL_CMD_WATCH] = {"watch", CTL_CMD_WATCH, no_args, false, false, true},
    [CTL_CMD_RELOAD] = {"reload", CTL_CMD_RELOAD, no_args, false, false, false},
    [CTL_CMD_SHUTDOWN] = {"shutdown", CTL_CMD_SHUTDOWN, shutdown_args, false, true, false},
};

const struct ctl_cmd *ctl_cmd_find(const char *name)
{
	for (unsigned i = 0; i < CTL_NCMDS; i++)
		if (strcmp(ctl_commands[i].name, name) == 0)
			return &ctl_commands[i];
	return NULL;
}

/* "a string", "an integer"… for messages. */
static const char *argtype_name(enum ctl_argtype t)
{
	switch (t) {
	case CTL_ARG_INT:
		return "an integer";
	case CTL_ARG_BOOL:
		return "a boolean";
	default:
		return "a string";
	}
}

/* Format into err; returns code. */
static enum ctl_code fail(char *err, size_t errlen, enum ctl_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum ctl_code fail(char *err, size_t errlen, enum ctl_code code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* Does a string value hold no NUL? */
static bool str_clean(const json_t *v)
{
	return strlen(json_string_value(v)) == json_string_length(v);
}

/* Check one argument against its spec. */
static enum ctl_code check_arg(const struct ctl_cmd *cmd, const char *key, json_t *val, char *err,
			       size_t errlen)
{
	const struct ctl_arg *a = cmd->args;

	while (a->name && strcmp(a->name, key) != 0)
		a++;
	if (!a->name)
		return fail(err, errlen, CTL_BAD_REQUEST, "unknown argument \"%s\" for %s", key,
			    cmd->name);
	bool ok = a->type == CTL_ARG_STRING ? json_is_string(val)
		  : a->type == CTL_ARG_INT  ? json_is_integer(val)
					    : json_is_boolean(val);
	if (!ok)
		return fail(err, errlen, CTL_BAD_REQUEST, "argument \"%s\" must be %s", key,
			    argtype_name(a->type));
	if (a->type == CTL_ARG_STRING && !a->nul_ok && !str_clean(val))
		return fail(err, errlen, CTL_BAD_REQUEST,
			    "argument \"%s\" must not hold a NUL character", key);
	if (a->type == CTL_ARG_INT) {
		long long x = json_integer_value(val);
		if (x < a->lo || x > a->hi)
			return fail(err, errlen, CTL_BAD_REQUEST,
				    "argument \"%s\" must be between %lld and %lld", key, a->lo,
				    a->hi);
	}
	return CTL_OK;
}

static bool fast_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* A string of printable ASCII without escapes at *pp (past its opening quote):
 * its length, *pp past the closing quote; -1 outside that subset. */
static long fast_string(const char **pp, const char *end)
{
	const char *p = *pp, *s = p;
	while (p < end && *p != '"') {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch >= 0x7f || ch == '\\')
			return -1;
		p++;
	}
	if (p == end)
		return -1;
	*pp = p + 1;
	return p - s;
}

json_t *ctl_fast_loadb(const char *line, size_t len)
{
	const char *p = line, *end = line + len;
	json_t *o = json_object();
	if (!o)
		return NULL;
	while (p < end && fast_ws(*p))
		p++;
	if (p == end || *p++ != '{')
		goto out;
	for (;;) {
		char key[32];
		while (p < end && fast_ws(*p))
			p++;
		if (p == end || *p++ != '"')
			goto out;
		const char *k = p;
		long kn = fast_string(&p, end);
		if (kn <= 0 || (size_t)kn >= sizeof(key))
			goto out;
		memcpy(key, k, (size_t)kn);
		key[kn] = '\0';
		if (json_object_get(o, key))
			goto out; /* a duplicate: jansson words the error */
		while (p < end && fast_ws(*p))
			p++;
		if (p == end || *p++ != ':')
			goto out;
		while (p < end && fast_ws(*p))
			p++;
		if (p == end)
			goto out;
		json_t *v = NULL;
		if (*p == '"') {
			const char *vs = ++p;
			long vn = fast_string(&p, end);
			if (vn < 0)
				goto out;
			v = json_stringn_nocheck(vs, (size_t)vn);
		} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
			bool neg = *p == '-';
			if (neg)
				p++;
			const char *ds = p;
			long long x = 0;
			while (p < end && *p >= '0' && *p <= '9' && p - ds < 18)
				x = x * 10 + (*p++ - '0');
			size_t nd = (size_t)(p - ds);
			/* At most 18 digits (no overflow), no leading zero, no "-0", no
			 * fraction or exponent: those go to jansson. */
			if (nd == 0 || nd > 18 || (*ds == '0' && (nd > 1 || neg)) ||
			    (p < end &&
			     (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9'))))
				goto out;
			v = json_integer(neg ? -x : x);
		} else if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
			p += 4;
			v = json_true();
		} else if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
			p += 5;
			v = json_false();
		} else {
			goto out;
		}
		if (!v || json_object_set_new_nocheck(o, key, v) < 0)
			goto out;
		while (p < end && fast_ws(*p))
			p++;
		if (p == end)
			goto out;
		if (*p == '}') {
			p++;
			break;
		}
		if (*p++ != ',')
			goto out;
	}
	while (p < end && fast_ws(*p))
		p++;
	if (p == end)
		return o;
out:
	json_decref(o);
	return NULL;
}

enum ctl_code ctl_request_parse(const char *line, size_t len, unsigned nfds,
				struct ctl_request *req, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *id, *cmd;
	const char *key;
	json_t *val;

	memset(req, 0, sizeof(*req));
	if (len > CTL_LINE_MAX)
		return fail(err, errlen, CTL_TOO_LARGE, "request line longer than %u bytes",
			    CTL_LINE_MAX);
	if (memchr(line, '\0', len))
		return fail(err, errlen, CTL_BAD_REQUEST, "invalid JSON: NUL byte in line");
	/* \u0000 inside a string is valid JSON (a payload may hold NUL bytes). */
	req->root = ctl_fast_loadb(line, len);
	if (!req->root)
		req->root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!req->root)
		return fail(err, errlen, CTL_BAD_REQUEST, "invalid JSON at column %d: %s",
			    jerr.column, jerr.text);
	if (!json_is_object(req->root))
		return fail(err, errlen, CTL_BAD_REQUEST, "request must be a JSON object");
	id = json_object_get(req->root, "id");
	if (!id)
		return fail(err, errlen, CTL_BAD_REQUEST, "missing \"id\"");
	if (!json_is_string(id) && !json_is_number(id))
		return fail(err, errlen, CTL_BAD_REQUEST, "\"id\" must be a number or a string");
	req->id = id;
	cmd = json_object_get(req->root, "cmd");
	if (!cmd)
		return fail(err, errlen, CTL_BAD_REQUEST, "missing \"cmd\"");
	if (!json_is_string(cmd) || !str_clean(cmd))
		return fail(err, errlen, CTL_BAD_REQUEST, "\"cmd\" must be a string");
	req->cmd = ctl_cmd_find(json_string_value(cmd));
	if (!req->cmd)
		return fail(err, errlen, CTL_UNKNOWN_COMMAND, "unknown command \"%.64s\"",
			    json_string_value(cmd));
	json_object_foreach(req->root, key, val)
	{
		if (strcmp(key, "id") == 0 || strcmp(key, "cmd") == 0)
			continue;
		enum ctl_code code = check_arg(req->cmd, key, val, err, errlen);
		if (code != CTL_OK)
			return code;
	}
	if (nfds && !req->cmd->takes_fd)
		return fail(err, errlen, CTL_BAD_REQUEST, "%s takes no file descriptor",
			    req->cmd->name);
	return CTL_OK;
}

void ctl_request_free(struct ctl_request *req)
{
	if (!req)
		return;
	json_decref(req->root);
	memset(req, 0, sizeof(*req));
}

long long ctl_arg_int(const struct ctl_request *req, const char *name, long long def)
{
	json_t *v = json_object_get(req->root, name);
	return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

const char *ctl_arg_str(const struct ctl_request *req, const char *name)
{
	json_t *v = json_object_get(req->root, name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool ctl_arg_bool(const struct ctl_request *req, const char *name, bool def)
{
	json_t *v = json_object_get(req->root, name);
	return json_is_boolean(v) ? json_is_true(v) : def;
}

json_t *ctl_reply_ok(json_t *id)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set(o, "id", id ? id : json_null());
	json_object_set_new(o, "ok", json_true());
	return o;
}

/* The code point of the UTF-8 sequence at p (at most n bytes) and its length
 * in *len; -1 when it is not valid (overlong, a surrogate, past U+10FFFF, cut). */
static long utf8_decode(const unsigned char *p, size_t n, unsigned *len)
{
	unsigned char c = p[0];
	if (c < 0x80) {
		*len = 1;
		return c;
	}
	unsigned need;
	unsigned char lo = 0x80, hi = 0xbf;
	long cp;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		cp = c & 0x0f;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		cp = c & 0x07;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		return -1;
	}
	if (n < need || p[1] < lo || p[1] > hi)
		return -1;
	for (unsigned i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	*len = need;
	return cp;
}

static char *put_u(char *o, unsigned v)
{
	static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
	*o++ = '\\';
	*o++ = 'u';
	*o++ = hex[(v >> 12) & 0xf];
	*o++ = hex[(v >> 8) & 0xf];
	*o++ = hex[(v >> 4) & 0xf];
	*o++ = hex[v & 0xf];
	return o;
}

long ctl_json_quote(char *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	char *o = out;
	*o++ = '"';
	while (p < end) {
		unsigned char c = *p;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			*o++ = (char)c; /* the common case */
			p++;
			continue;
		}
		unsigned len;
		long cp = utf8_decode(p, (size_t)(end - p), &len);
		if (cp < 0)
			return -1;
		p += len;
		switch (cp) {
		case '"':
		case '\\':
			*o++ = '\\';
			*o++ = (char)cp;
			break;
		case '\b':
			*o++ = '\\';
			*o++ = 'b';
			break;
		case '\f':
			*o++ = '\\';
			*o++ = 'f';
			break;
		case '\n':
			*o++ = '\\';
			*o++ = 'n';
			break;
		case '\r':
			*o++ = '\\';
			*o++ = 'r';
			break;
		case '\t':
			*o++ = '\\';
			*o++ = 't';
			break;
		default:
			if (cp == 0x7f) {
				*o++ = (char)cp;
			} else if (cp < 0x10000) {
				o = put_u(o, (unsigned)cp);
			} else {
				cp -= 0x10000;
				o = put_u(o, 0xd800u | (unsigned)(cp >> 10));
				o = put_u(o, 0xdc00u | (unsigned)(cp & 0x3ff));
			}
			break;
		}
	}
	*o++ = '"';
	return o - out;
}

/* Replace invalid UTF-8 in s with '?' so that jansson accepts it; in place. */
void ctl_utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s, *end = p + strlen(s);
	while (p < end) {
		unsigned n;
		if (utf8_decode(p, (size_t)(end - p), &n) < 0)
			*p++ = '?';
		else
			p += n;
	}
}

json_t *ctl_reply_error(json_t *id, enum ctl_code code, const char *msg)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", msg ? msg : "");
	ctl_utf8_sanitize(buf);
	return json_pack("{s:O,s:b,s:{s:s,s:s}}", "id", id ? id : json_null(), "ok", 0, "error",
			 "code", ctl_code_name(code), "message", buf);
}

const char *ctl_default_socket(char *buf, size_t n)
{
	const char *env = getenv("CORRAL_SOCKET");
	uid_t uid;

	if (env && *env) {
		snprintf(buf, n, "%s", env);
		return buf;
	}
	uid = geteuid();
	if (uid == 0) {
		snprintf(buf, n, "/run/corral/corrald.sock");
		return buf;
	}
	env = getenv("XDG_RUNTIME_DIR");
	if (env && *env)
		snprintf(buf, n, "%s/corral/corrald.sock", env);
	else
		snprintf(buf, n, "/run/user/%u/corral/corrald.sock", (unsigned)uid);
	return buf;
}

int ctl_signal_parse(const char *s)
{
	char *end;
	long n;

	if (!s || !*s)
		return 0;
	n = strtol(s, &end, 10);
	if (!*end)
		return n > 0 && n < NSIG && n < SIGRTMIN ? (int)n : 0;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (int sig = 1; sig < SIGRTMIN; sig++) {
		const char *abbrev = sigabbrev_np(sig);
		if (abbrev && strcasecmp(abbrev, s) == 0)
			return sig;
	}
	return 0;
}

const char *ctl_signal_name(int sig, char *buf, size_t n)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, n, "SIG%s", abbrev);
	else
		snprintf(buf, n, "SIG%d", sig);
	return buf;
}
