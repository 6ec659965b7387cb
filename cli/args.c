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

/* Report a usage error and the command's usage on stderr; returns ARGS_BAD. */
int args_usage_error(struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	fputs("corralctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ctl_usage(stderr, ctl->cmd);
	return ARGS_BAD;
}

/* The option getopt just rejected, as the user spelled it. */
static void args_bad_option(char *text, size_t n, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;

	if (arg && arg[0] == '-' && arg[1] == '-')
		snprintf(text, n, "%s", arg);
	else
		snprintf(text, n, "-%c", optopt);
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
		char text[64];
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
			args_bad_option(text, sizeof(text), argv);
			return args_usage_error(ctl, "option %s needs an argument", text);
		case '?':
			args_bad_option(text, sizeof(text), argv);
			return args_usage_error(ctl, "unknown option %s", text);
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

/* Check that between min and max positionals follow the options; 0 or ARGS_BAD. */
int args_positional(struct ctl *ctl, int argc, char **argv, int min, int max)
{
	int n = argc - optind;

	(void)argv;
	if (n < min)
		return args_usage_error(ctl, "missing argument");
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

/* Parse s, the value of what, as a decimal in [min, CTL_INT_MAX]; 0 or ARGS_BAD. */
int args_number(struct ctl *ctl, const char *what, const char *s, long long min,
		long long *ret_value)
{
	long long v;
	char *end;

	if (!args_is_id(s))
		return args_usage_error(ctl, "bad %s '%s': not a number", what, s);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v > CTL_INT_MAX)
		return args_usage_error(ctl, "bad %s '%s': too large", what, s);
	if (v < min)
		return args_usage_error(ctl, "bad %s '%s': must be at least %lld", what, s, min);
	*ret_value = v;
	return 0;
}

/* Put {"worker": ID} when arg is all digits, else {"type": arg}, into req; 0 or ARGS_BAD. */
int args_target(struct ctl *ctl, json_t *req, const char *arg)
{
	long long id;

	if (!args_is_id(arg)) {
		json_t *type = json_string(arg);

		if (!type)
			return args_usage_error(ctl, "bad type name: not UTF-8");
		if (json_object_set_new(req, "type", type))
			ctl_oom();
		return 0;
	}
	if (args_number(ctl, "worker id", arg, 0, &id))
		return ARGS_BAD;
	if (json_object_set_new(req, "worker", json_integer(id)))
		ctl_oom();
	return 0;
}

/* Signals by name (without "SIG") and number; the daemon takes the name. */
static const struct {
	const char *name;
	int num;
} args_signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},	      {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},	 {"FPE", SIGFPE},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},	 {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},     {"PWR", SIGPWR},	      {"SYS", SIGSYS},
};

/* The name ("TERM") of the signal spelled s (SIGTERM, TERM, term, 15); NULL if unknown. */
const char *args_signal(const char *s)
{
	size_t n = sizeof(args_signals) / sizeof(args_signals[0]);

	if (args_is_id(s)) {
		long v = strlen(s) < 4 ? strtol(s, NULL, 10) : -1;

		for (size_t i = 0; i < n; i++)
			if (args_signals[i].num == v)
				return args_signals[i].name;
		return NULL;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(s, args_signals[i].name) == 0)
			return args_signals[i].name;
	return NULL;
}
