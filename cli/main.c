/*
 * main.c - corralctl: global options, the command table and dispatch.
 *
 *   corralctl [--socket PATH] [--json] COMMAND [ARGS]
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "corral-config.h"
#include "ctl.h"

/* Every command, in the order usage lists them. */
static const struct cli_cmd ctl_cmds[] = {
    {"ping", "", "check that corrald answers", cmd_ping},
    {"types", "", "list the worker types", cmd_types},
    {"list", "[TYPE]", "list workers", cmd_list},
    {"spawn", "TYPE [-n N]", "start N workers of TYPE (default 1)", cmd_spawn},
    {"stop", "ID|TYPE [-t MS]", "stop a worker, or every worker of a type", cmd_stop},
    {"kill", "ID [-s SIG]", "send a signal to a worker (default KILL)", cmd_kill},
    {"call", "TYPE [DATA] [-k KEY] [-t MS]", "call TYPE with DATA, else stdin; result to stdout",
     cmd_call},
    {"logs", "ID|TYPE [-f] [-n N]", "show captured worker output; -f follows", cmd_logs},
    {"watch", "", "print worker state changes as they happen", cmd_watch},
    {"stats", "", "show daemon counters", cmd_stats},
    {"top", "", "show workers and counters, refreshed every second", cmd_top},
    {"reload", "", "reload the configuration", cmd_reload},
    {"shutdown", "[-t MS]", "drain and stop corrald", cmd_shutdown},
};

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

/* Print usage: one command's, or everything when cmd is NULL. */
void ctl_usage(FILE *f, const struct cli_cmd *cmd)
{
	if (cmd) {
		fprintf(f, "usage: corralctl [--socket PATH] [--json] %s%s%s\n  %s\n", cmd->name,
			*cmd->args ? " " : "", cmd->args, cmd->summary);
		return;
	}
	fputs("usage: corralctl [--socket PATH] [--json] COMMAND [ARGS]\n\ncommands:\n", f);
	for (size_t i = 0; i < CTL_NCMDS; i++) {
		char head[64];

		snprintf(head, sizeof(head), "%s %s", ctl_cmds[i].name, ctl_cmds[i].args);
		fprintf(f, "  %-36s %s\n", head, ctl_cmds[i].summary);
	}
	fputs("\noptions:\n"
	      "  --socket PATH   corrald's socket; default $CORRAL_SOCKET, else\n"
	      "                  $XDG_RUNTIME_DIR/corral/corrald.sock (root: "
	      "/run/corral/corrald.sock)\n"
	      "  --json          print corrald's replies as received, one JSON object a line\n"
	      "  -h, --help      show this help; COMMAND --help shows one command's\n"
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
	struct ctl ctl = {.next_id = 1};
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
			ctl_warnx("option %s needs an argument", argv[optind - 1]);
			ctl_usage(stderr, NULL);
			return CTL_EXIT_USAGE;
		default:
			ctl_warnx("unknown option %s", argv[optind - 1]);
			ctl_usage(stderr, NULL);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		ctl_warnx("missing command");
		ctl_usage(stderr, NULL);
		return CTL_EXIT_USAGE;
	}
	ctl.cmd = ctl_find(argv[optind]);
	if (!ctl.cmd) {
		ctl_warnx("unknown command '%s'", argv[optind]);
		ctl_usage(stderr, NULL);
		return CTL_EXIT_USAGE;
	}

	argc -= optind;
	argv += optind;
	optind = 0; /* the command parses its own argv from scratch */
	r = ctl.cmd->exec(&ctl, argc, argv);
	ctl_disconnect(&ctl);
	out_flush();
	return r;
}
