/*
 * main.c - corralctl: global options, the command table and dispatch.
 *
 *   corralctl [--socket PATH] [--json] COMMAND [ARGS]
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "corral-config.h"
#include "ctl.h"

/* Every command, in the order usage lists them. */
static const struct cli_cmd ctl_cmds[] = {
    {"ping", "", "check that corrald answers", "Print corrald's version, pid and uptime.\n",
     cmd_ping},
    {"types", "", "list the worker types",
     "One row per worker type: its mode, pool bounds, live workers and sandbox\n"
     "layers (missing ones named).\n",
     cmd_types},
    {"list", "[TYPE]", "list workers", "One row per live worker, or TYPE's workers only.\n",
     cmd_list},
    {"describe", "TYPE", "show a type's config, workers and failures",
     "The type's effective configuration (every default filled in), its sandbox\n"
     "layers, live workers, backoff state and last failure reasons.\n",
     cmd_describe},
    {"spawn", "TYPE [-n N]", "start N workers of TYPE (default 1)",
     "Start workers and print their ids once all are ready.\n\n"
     "  -n, --count N     how many (1 to 10000; default 1)\n",
     cmd_spawn},
    {"stop", "ID|TYPE [-t MS]", "stop a worker, or every worker of a type",
     "Stop gracefully (the current call finishes), SIGKILL after the timeout;\n"
     "print the stopped ids.  Stopping a type pauses its min refill.\n\n"
     "  -t, --timeout MS  milliseconds before SIGKILL (default 5000)\n",
     cmd_stop},
    {"kill", "ID [-s SIG]", "send a signal to a worker (default KILL)",
     "Send a signal to one worker.\n\n"
     "  -s, --signal SIG  a name (TERM, SIGTERM, term) or number (15); default KILL\n",
     cmd_kill},
    {"restart", "ID|TYPE", "replace workers one by one without dropping calls",
     "Replace a worker, or every worker of a type, one at a time: each new worker\n"
     "is ready before the old one stops.  Print the replaced ids.\n",
     cmd_restart},
    {"call", "TYPE [DATA] [-k KEY] [-t MS]", "call TYPE with DATA, else stdin",
     "Send DATA (else stdin) to a worker of TYPE; write the result bytes to\n"
     "stdout, raw.  A large stdin travels as a sealed memfd.\n\n"
     "  -k, --key KEY     the isolation key (types with \"isolate\": \"key\")\n"
     "  -t, --timeout MS  shorten the type's call timeout\n",
     cmd_call},
    {"logs", "[ID|TYPE] [-f] [-n N] [--since DURATION]", "show captured worker output",
     "Show the captured stdout and stderr lines of a worker, of a type's\n"
     "workers, or of every worker (each line names its worker).\n\n"
     "  -f, --follow          keep printing new lines\n"
     "  -n, --lines N         the last N lines (default 100)\n"
     "  -S, --since DURATION  only lines newer than DURATION ago (90s, 5m, 2h, 1d,\n"
     "                        1500ms, 1h30m; a bare number is seconds)\n",
     cmd_logs},
    {"watch", "", "print worker state changes as they happen",
     "One line per worker state change (starting, idle, busy, stopping, exited\n"
     "with its reason) until interrupted.\n",
     cmd_watch},
    {"stats", "[TYPE]", "show counters and call latency",
     "Counters of the daemon, or of TYPE alone: workers, spawns, crashes, calls,\n"
     "failures by cause and call latency percentiles.\n",
     cmd_stats},
    {"top", "[-s COLUMN] [-d SECS]", "show live workers, refreshed",
     "A live view: totals and rates, one row per type, one per worker.\n"
     "Keys: q quits; i, c, r, m, u sort workers by id, cpu, requests, memory,\n"
     "uptime.  Without a terminal, one snapshot.\n\n"
     "  -s, --sort COLUMN  id, cpu, reqs, rss or uptime (default id)\n"
     "  -d, --delay SECS   seconds between refreshes (1 to 3600; default 1)\n",
     cmd_top},
    {"reload", "", "reload the configuration",
     "Reread the config file (like SIGHUP) and print the added, removed and\n"
     "changed types.  A bad file keeps the old config running.\n",
     cmd_reload},
    {"shutdown", "[-t MS] [-w]", "drain and stop corrald",
     "Drain (in-flight calls finish, workers stop) and exit.\n\n"
     "  -t, --timeout MS  drain at most this long, then SIGKILL (default 10000)\n"
     "  -w, --wait        return once corrald has exited\n",
     cmd_shutdown},
    {"help", "[COMMAND]", "show help for corralctl or one command", "", cmd_help},
};

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

/* Print usage: one command's, or everything when cmd is NULL. */
void ctl_usage(FILE *f, const struct cli_cmd *cmd)
{
	if (cmd) {
		fprintf(f, "usage: corralctl %s%s%s\n\n", cmd->name, *cmd->args ? " " : "",
			cmd->args);
		if (*cmd->help)
			fputs(cmd->help, f);
		else
			fprintf(f, "%c%s.\n", toupper((unsigned char)*cmd->summary),
				cmd->summary + 1);
		fputs("\nGlobal options (before or after COMMAND): --socket PATH, --json, --help\n",
		      f);
		return;
	}
	fputs("usage: corralctl [--socket PATH] [--json] COMMAND [ARGS]\n\ncommands:\n", f);
	for (size_t i = 0; i < CTL_NCMDS; i++) {
		char head[64];

		snprintf(head, sizeof(head), "%s %s", ctl_cmds[i].name, ctl_cmds[i].args);
		if (strlen(head) > 28)
			fprintf(f, "  %s\n  %-28s %s\n", head, "", ctl_cmds[i].summary);
		else
			fprintf(f, "  %-28s %s\n", head, ctl_cmds[i].summary);
	}
	fputs("\noptions:\n"
	      "  --socket PATH   corrald's socket; default $CORRAL_SOCKET, else\n"
	      "                  $XDG_RUNTIME_DIR/corral/corrald.sock (root:\n"
	      "                  /run/corral/corrald.sock)\n"
	      "  --json          print corrald's replies as received, one JSON object a line\n"
	      "  -h, --help      show this help; 'corralctl help COMMAND' shows one command's\n"
	      "  --version       show the version\n"
	      "\nexit status: 0 ok, 1 error reply, 2 usage, 3 cannot connect\n",
	      f);
}

/* Find a command by name; NULL if there is none. */
static const struct cli_cmd *ctl_find(const char *name)
{
	for (size_t i = 0; i < CTL_NCMDS; i++)
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return &ctl_cmds[i];
	return NULL;
}

/* help [COMMAND]: everything, or one command's usage, on stdout. */
int cmd_help(struct ctl *ctl, int argc, char **argv)
{
	const struct cli_cmd *cmd;
	int r;

	r = args_simple(ctl, argc, argv, 0, 1);
	if (r >= 0)
		return r;
	if (optind == argc) {
		ctl_usage(stdout, NULL);
		return CTL_EXIT_OK;
	}
	cmd = ctl_find(argv[optind]);
	if (!cmd) {
		ctl->cmd = NULL;
		return ctl_usage_error(ctl, "unknown command '%s'", argv[optind]);
	}
	ctl_usage(stdout, cmd);
	return CTL_EXIT_OK;
}

/*
 * Report a usage error in one line: the problem, then where to read more
 * ("corralctl help COMMAND", or "corralctl help" outside a command).
 * Returns CTL_EXIT_USAGE.
 */
int ctl_usage_error(struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	fputs("corralctl: ", stderr);
	if (ctl->cmd)
		fprintf(stderr, "%s: ", ctl->cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (ctl->cmd)
		fprintf(stderr, " (see 'corralctl help %s')\n", ctl->cmd->name);
	else
		fputs(" (see 'corralctl help')\n", stderr);
	return CTL_EXIT_USAGE;
}

/* Parse global options, run the command, flush stdout. */
int main(int argc, char **argv)
{
	enum { OPT_SOCKET = 0x100, OPT_JSON, OPT_VERSION };
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	struct ctl ctl = {0};
	const void *seed_src;
	uint32_t seed;
	int c, r;

	/* Our socket must never land on a closed stdin, stdout or stderr. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return CTL_EXIT_ERROR;
	signal(SIGPIPE, SIG_IGN);
	/* The kernel's AT_RANDOM bytes seed jansson's hashes: no /dev/urandom read. */
	seed_src = (const void *)getauxval(AT_RANDOM);
	if (seed_src) {
		memcpy(&seed, seed_src, sizeof(seed));
		json_object_seed(seed);
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			ctl.socket_path = optarg;
			break;
		case OPT_JSON:
			ctl.json = true;
			break;
		case 'h':
			ctl_usage(stdout, NULL);
			out_flush();
			return CTL_EXIT_OK;
		case OPT_VERSION:
			printf("corralctl %s\n", CORRAL_VERSION);
			out_flush();
			return CTL_EXIT_OK;
		case ':':
			return ctl_usage_error(&ctl, "option %s needs an argument",
					       args_typed(argv, optopt, opts));
		default:
			return ctl_usage_error(&ctl, "unknown option %s",
					       args_typed(argv, optopt, opts));
		}
	}
	if (optind >= argc)
		return ctl_usage_error(&ctl, "missing command");
	ctl.cmd = ctl_find(argv[optind]);
	if (!ctl.cmd)
		return ctl_usage_error(&ctl, "unknown command '%s'", argv[optind]);

	argc -= optind;
	argv += optind;
	optind = 0; /* the command parses its own argv from scratch */
	r = ctl.cmd->exec(&ctl, argc, argv);
	ctl_disconnect(&ctl);
	out_flush();
	return r;
}
