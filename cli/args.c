/*
 * args.c - parsing a command's own arguments: options (with --help, --json
 * and --socket accepted after the command too), positionals, numbers,
 * worker ids and signal names.  Errors are usage errors: exit status 2.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

/* Long-only options every command takes. */
enum {
	ARGS_OPT_JSON = 0x100,
	ARGS_OPT_SOCKET,
};

/* Most long options of one command, the common ones not counted. */
#define ARGS_MAX_LONG 8

/* Report a usage error in one line (see ctl_usage_error); returns ARGS_BAD. */
int args_usage_error(struct ctl *ctl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_usage_error(ctl, "%s", msg);
	return ARGS_BAD;
}

/* A's option text up to '=' ("--timeout=5" gives "--timeout"), in buf. */
static const char *args_cut(char *buf, size_t n, const char *a)
{
	size_t len = strcspn(a, "=");

	snprintf(buf, n, "%.*s", (int)(len < 48 ? len : 48), a);
	return buf;
}

/*
 * The option getopt just rejected (":" or "?"), as the user typed it: the
 * long spelling ("--cou" stays "--cou") or "-x" for a short one.
 */
const char *args_typed(char **argv, int opt, const struct option *longopts)
{
	static char buf[64];
	const char *prev = optind > 0 ? argv[optind - 1] : NULL;

	if (prev && prev[0] == '-' && prev[1] == '-' && prev[2]) {
		size_t len = strcspn(prev + 2, "=");

		if (opt == 0)
			return args_cut(buf, sizeof(buf), prev);
		for (; longopts && longopts->name; longopts++)
			if (longopts->val == opt && strncmp(longopts->name, prev + 2, len) == 0)
				return args_cut(buf, sizeof(buf), prev);
	}
	if (opt > ' ' && opt < 0x7f) {
		snprintf(buf, sizeof(buf), "-%c", opt);
		return buf;
	}
	return prev ? args_cut(buf, sizeof(buf), prev) : "?";
}

/* The option just parsed with its argument in optarg, as the user typed it. */
const char *args_flag(char **argv, int c)
{
	static char buf[64];
	const char *a = NULL;

	if (optind >= 2 && argv[optind - 1] == optarg)
		a = argv[optind - 2]; /* "-t 5", "--timeout 5" */
	else if (optind >= 1)
		a = argv[optind - 1]; /* "-t5", "--timeout=5" */
	if (a && a[0] == '-' && a[1] == '-')
		return args_cut(buf, sizeof(buf), a);
	snprintf(buf, sizeof(buf), "-%c", c);
	return buf;
}

/* Whether the option whose value is opt takes no argument. */
static bool args_takes_none(const struct option *opts, int opt)
{
	for (; opts->name; opts++)
		if (opts->val == opt)
			return opts->has_arg == no_argument;
	return false;
}

/*
 * The next option of a command's argv (argv[0] is the command name; main
 * resets optind): its value, ARGS_END, or ARGS_HELP / ARGS_BAD once handled.
 * shortopts and longopts are the command's own; longopts may be NULL.
 */
int args_next(struct ctl *ctl, int argc, char **argv, const char *shortopts,
	      const struct option *longopts)
{
	struct option all[ARGS_MAX_LONG + 4];
	char so[32];
	size_t n = 0;

	snprintf(so, sizeof(so), ":%sh", shortopts);
	for (; longopts && longopts[n].name && n < ARGS_MAX_LONG; n++)
		all[n] = longopts[n];
	all[n++] = (struct option){"help", no_argument, NULL, 'h'};
	all[n++] = (struct option){"json", no_argument, NULL, ARGS_OPT_JSON};
	all[n++] = (struct option){"socket", required_argument, NULL, ARGS_OPT_SOCKET};
	all[n] = (struct option){NULL, 0, NULL, 0};

	for (;;) {
		int c = getopt_long(argc, argv, so, all, NULL);

		switch (c) {
		case 'h':
			ctl_usage(stdout, ctl->cmd);
			return ARGS_HELP;
		case ARGS_OPT_JSON:
			ctl->json = true;
			break;
		case ARGS_OPT_SOCKET:
			ctl->socket_path = optarg;
			break;
		case ':':
			return args_usage_error(ctl, "option %s needs an argument",
						args_typed(argv, optopt, all));
		case '?':
			if (optopt && optopt != '?' && args_takes_none(all, optopt))
				return args_usage_error(ctl, "option %s takes no argument",
							args_typed(argv, optopt, all));
			return args_usage_error(ctl, "unknown option %s",
						args_typed(argv, optopt, all));
		default:
			return c;
		}
	}
}

/* The exit status for an args_next() value a command does not handle. */
int args_stop(int c)
{
	if (c == ARGS_HELP)
		return CTL_EXIT_OK;
	return CTL_EXIT_USAGE;
}

/* Parse a command without options of its own: -1 to go on, else the exit status. */
int args_simple(struct ctl *ctl, int argc, char **argv, int min, int max)
{
	int c = args_next(ctl, argc, argv, "", NULL);

	if (c != ARGS_END)
		return args_stop(c);
	if (args_positional(ctl, argc, argv, min, max))
		return CTL_EXIT_USAGE;
	return -1;
}

/* The n-th operand name of the command's synopsis ("TYPE", "ID|TYPE"), in buf. */
static const char *args_operand(const struct ctl *ctl, int n, char *buf, size_t len)
{
	const char *p = ctl->cmd ? ctl->cmd->args : "";

	for (;;) {
		size_t w;

		p += strspn(p, " ");
		if (!*p)
			return "argument";
		w = strcspn(p, " ");
		if (strncmp(p, "[-", 2) != 0 && n-- == 0) {
			/* "[DATA]" names DATA */
			if (*p == '[' && w > 2)
				snprintf(buf, len, "%.*s", (int)(w - 2), p + 1);
			else
				snprintf(buf, len, "%.*s", (int)w, p);
			return buf;
		}
		p += w;
	}
}

/* Check that between min and max positionals follow the options; 0 or ARGS_BAD. */
int args_positional(struct ctl *ctl, int argc, char **argv, int min, int max)
{
	int n = argc - optind;
	char name[32];

	if (n < min)
		return args_usage_error(ctl, "missing %s",
					args_operand(ctl, n, name, sizeof(name)));
	if (n > max)
		return args_usage_error(ctl, "unexpected argument '%s'", argv[optind + max]);
	return 0;
}

/* Whether s is a worker id: one or more ASCII digits and nothing else. */
bool args_is_id(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Parse s, the value of what, as a decimal in [min, max]; 0 or ARGS_BAD. */
int args_number(struct ctl *ctl, const char *what, const char *s, long long min, long long max,
		long long *ret_value)
{
	long long v;
	char *end;

	if (!args_is_id(s))
		return args_usage_error(ctl, "invalid %s '%s': not a number", what, s);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v > max || v < min) {
		if (max >= CTL_INT_MAX)
			return args_usage_error(ctl, "invalid %s '%s': must be %lld or more", what,
						s, min);
		return args_usage_error(ctl, "invalid %s '%s': must be %lld to %lld", what, s, min,
					max);
	}
	*ret_value = v;
	return 0;
}

/* The range [*lo, *hi] the protocol allows for argument arg of command cmd. */
static void args_range(enum ctl_cmd_id cmd, const char *arg, long long *lo, long long *hi)
{
	for (const struct ctl_arg *a = ctl_commands[cmd].args; a->name; a++) {
		if (strcmp(a->name, arg) == 0 && a->type == CTL_ARG_INT) {
			*lo = a->lo;
			*hi = a->hi;
			return;
		}
	}
	*lo = 0;
	*hi = CTL_INT_MAX;
}

/*
 * Parse optarg, the value of option c just parsed, as the protocol argument
 * arg of cmd (its range from the command table); errors name the option as
 * typed.  0 with *ret_value, or ARGS_BAD.
 */
int args_option_number(struct ctl *ctl, char **argv, int c, enum ctl_cmd_id cmd, const char *arg,
		       long long *ret_value)
{
	long long lo, hi;

	args_range(cmd, arg, &lo, &hi);
	return args_number(ctl, args_flag(argv, c), optarg, lo, hi, ret_value);
}

/*
 * Parse optarg, the value of option c, as a duration: a number and a unit
 * (ms, s, m, h, d; a bare number is seconds), or several ("1h30m").
 * 0 with *ret_ms, or ARGS_BAD naming the option as typed.
 */
int args_duration(struct ctl *ctl, char **argv, int c, long long *ret_ms)
{
	static const struct {
		const char *unit;
		long long ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	const char *p = optarg;
	long long total = 0;

	if (!*p)
		return args_usage_error(ctl, "invalid %s '': not a duration", args_flag(argv, c));
	while (*p) {
		long long v = 0, mult = -1;
		size_t ulen = 0;

		if (*p < '0' || *p > '9')
			goto bad;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (v > CTL_INT_MAX / 10)
				goto bad;
			v = v * 10 + (*p - '0');
		}
		if (!*p && total == 0 && strspn(optarg, "0123456789") == strlen(optarg)) {
			mult = 1000; /* a bare number: seconds */
		} else {
			for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
				size_t n = strlen(units[u].unit);

				if (strncmp(p, units[u].unit, n) == 0 && n > ulen) {
					mult = units[u].ms;
					ulen = n;
				}
			}
		}
		if (mult < 0 || v > CTL_INT_MAX / mult || total > CTL_INT_MAX - v * mult)
			goto bad;
		total += v * mult;
		p += ulen;
	}
	*ret_ms = total;
	return 0;
bad:
	return args_usage_error(ctl,
				"invalid %s '%s': not a duration (such as 90s, 5m, 2h, 1d, "
				"1500ms)",
				args_flag(argv, c), optarg);
}

/* A new empty object of a command's arguments; exits when out of memory. */
json_t *args_new(void)
{
	json_t *a = json_object();

	if (!a)
		ctl_oom();
	return a;
}

/* Whether s is valid UTF-8 (what a JSON string may hold). */
bool args_utf8(const char *s)
{
	json_t *v = json_string(s);
	bool ok = v != NULL;

	json_decref(v);
	return ok;
}

/* Put {"worker": ID} when arg is all digits, else {"type": arg}, into args; 0 or ARGS_BAD. */
int args_target(struct ctl *ctl, json_t *args, const char *arg)
{
	long long id = 0;

	if (!args_is_id(arg)) {
		json_t *type = json_string(arg);

		if (!type)
			return args_usage_error(ctl, "invalid TYPE: not UTF-8");
		if (json_object_set_new(args, "type", type))
			ctl_oom();
		return 0;
	}
	if (args_number(ctl, "worker id", arg, 1, CTL_INT_MAX, &id))
		return ARGS_BAD;
	if (json_object_set_new(args, "worker", json_integer(id)))
		ctl_oom();
	return 0;
}

/* The name ("TERM") of the signal spelled s (SIGTERM, TERM, term, 15); NULL if unknown. */
const char *args_signal(const char *s)
{
	static char buf[16];
	int sig = ctl_signal_parse(s);

	if (!sig)
		return NULL;
	ctl_signal_name(sig, buf, sizeof(buf));
	return buf + 3; /* the daemon takes the name without "SIG" */
}
