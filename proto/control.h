/*
 * control.h - the control protocol's single home (DESIGN.md "Control
 * protocol"): newline-delimited JSON over a UNIX socket, one request object a
 * line, one reply object per request, matched by "id".
 *
 * Everything both ends must agree on lives here: the line limit, the error
 * codes, the command table (each argument's JSON type and range, whether the
 * command takes an fd, whether it runs while the daemon drains), the reply
 * envelopes, the default socket path and signal names.  corrald, corralctl
 * and libcorral all use it; nothing else spells a code or a command name.
 */
#ifndef CORRAL_PROTO_CONTROL_H
#define CORRAL_PROTO_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* One request or reply line, the newline excluded. */
#define CTL_LINE_MAX (1024u * 1024u)
/* Largest integer that survives a round trip through a double (2^53 - 1). */
#define CTL_INT_MAX 9007199254740991LL
/* The longest timeout any command accepts: one day. */
#define CTL_TIMEOUT_MAX (24LL * 3600 * 1000)

/* Error codes; CTL_OK is not one (it means "no error"). */
enum ctl_code {
	CTL_OK = 0,
	CTL_BAD_REQUEST,
	CTL_UNKNOWN_COMMAND,
	CTL_UNKNOWN_TYPE,
	CTL_NO_SUCH_WORKER,
	CTL_TOO_LARGE,
	CTL_BUSY,
	CTL_TIMEOUT,
	CTL_WORKER_CRASHED,
	CTL_WORKER_ERROR,
	CTL_SANDBOX_VIOLATION,
	CTL_UNAVAILABLE,
	CTL_PERMISSION_DENIED,
	CTL_SHUTTING_DOWN,
	CTL_INTERNAL,
	CTL_NCODES,
};

/* The wire name of a code ("bad_request"); "ok" for CTL_OK, "internal" when out of range. */
const char *ctl_code_name(enum ctl_code code);
/* The code of a wire name, or CTL_NCODES when unknown. */
enum ctl_code ctl_code_parse(const char *name);

/* Commands, in the table's order. */
enum ctl_cmd_id {
	CTL_CMD_PING,
	CTL_CMD_TYPES,
	CTL_CMD_LIST,
	CTL_CMD_DESCRIBE,
	CTL_CMD_SPAWN,
	CTL_CMD_STOP,
	CTL_CMD_KILL,
	CTL_CMD_RESTART,
	CTL_CMD_CALL,
	CTL_CMD_LOGS,
	CTL_CMD_STATS,
	CTL_CMD_WATCH,
	CTL_CMD_RELOAD,
	CTL_CMD_SHUTDOWN,
	CTL_NCMDS,
};

enum ctl_argtype {
	CTL_ARG_STRING, /* a string without NUL characters (but "payload") */
	CTL_ARG_INT,	/* an integer in [lo, hi] */
	CTL_ARG_BOOL,
};

/* One argument a command accepts; every argument is optional on the wire. */
struct ctl_arg {
	const char *name;
	enum ctl_argtype type;
	long long lo, hi; /* CTL_ARG_INT only */
	bool nul_ok;	  /* CTL_ARG_STRING: may hold U+0000 (a payload) */
};

struct ctl_cmd {
	const char *name;
	enum ctl_cmd_id cmd;
	const struct ctl_arg *args; /* NULL-name terminated */
	bool takes_fd;		    /* may carry one fd (SCM_RIGHTS) */
	bool while_draining;	    /* answers during shutdown, else shutting_down */
	bool stream;		    /* may stay open as a stream (follow/watch) */
};

/* The command table, indexed by enum ctl_cmd_id. */
extern const struct ctl_cmd ctl_commands[CTL_NCMDS];
/* The command called name, or NULL. */
const struct ctl_cmd *ctl_cmd_find(const char *name);

/* A request that passed ctl_request_parse(). */
struct ctl_request {
	json_t *root;		   /* the whole object (owned) */
	json_t *id;		   /* borrowed from root; NULL when the id was unusable */
	const struct ctl_cmd *cmd; /* NULL unless the command was found */
};

/*
 * Parse and validate one line (no newline) that arrived with nfds fds:
 * JSON object, "id" a number or string, "cmd" known, every argument known
 * with the right type and range, fds only where the command takes one (at
 * most one).  Returns CTL_OK, or an error code with the message in err;
 * either way req is filled as far as it got (req->id is set whenever the id
 * was valid, so the error reply can carry it) and must be released with
 * ctl_request_free().  Never fails for lack of memory without saying so
 * (CTL_INTERNAL).
 */
enum ctl_code ctl_request_parse(const char *line, size_t len, unsigned nfds,
				struct ctl_request *req, char *err, size_t errlen);
void ctl_request_free(struct ctl_request *req);

/*
 * The common request, parsed without jansson's lexer: a flat object whose keys
 * and string values are printable ASCII without escapes and whose other values
 * are integers (up to 18 digits), true or false.  Returns the object jansson
 * would build (json_loadb with JSON_REJECT_DUPLICATES), or NULL for anything
 * else, valid or not: jansson parses that and words any error.
 */
json_t *ctl_fast_loadb(const char *line, size_t len);

/*
 * Integer argument name of req in the table's [lo, hi] (already checked by
 * ctl_request_parse), or def when absent.
 */
long long ctl_arg_int(const struct ctl_request *req, const char *name, long long def);
/* String argument name, or NULL when absent. */
const char *ctl_arg_str(const struct ctl_request *req, const char *name);
/* Boolean argument name, or def when absent. */
bool ctl_arg_bool(const struct ctl_request *req, const char *name, bool def);

/* Reply envelopes.  {"id": id, "ok": true} (id NULL: null); add fields to it. */
json_t *ctl_reply_ok(json_t *id);
/* {"id": id, "ok": false, "error": {"code": …, "message": msg}}; msg is cut to
 * 1 KiB and made valid UTF-8, so the envelope always builds. */
json_t *ctl_reply_error(json_t *id, enum ctl_code code, const char *msg);

/*
 * s[0..n) as a JSON string literal, quotes included, ASCII only (what
 * json_dumps with JSON_ENSURE_ASCII writes, byte for byte),
 * into out, which has room for CTL_QUOTE_MAX(n) bytes.  Its length, or -1 when
 * s is not valid UTF-8 (NUL bytes are valid: \u0000).
 */
#define CTL_QUOTE_MAX(n) (6 * (size_t)(n) + 2)
long ctl_json_quote(char *out, const char *s, size_t n);

/* Replace invalid UTF-8 in s with '?' (jansson accepts only UTF-8); in place. */
void ctl_utf8_sanitize(char *s);

/*
 * The default socket path (DESIGN.md): $CORRAL_SOCKET, else
 * /run/corral/corrald.sock as root, else $XDG_RUNTIME_DIR/corral/corrald.sock,
 * else /run/user/UID/corral/corrald.sock.  Formatted into buf.
 */
const char *ctl_default_socket(char *buf, size_t n);

/* A signal by name ("KILL", "SIGKILL", any case) or number ("9"); 0 when unknown. */
int ctl_signal_parse(const char *s);
/* "SIGKILL" for 9; "SIG37" for a signal without a name. */
const char *ctl_signal_name(int sig, char *buf, size_t n);

#endif
