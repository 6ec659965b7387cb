/*
 * main.c - corrald: options and the configuration; daemon.c runs it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_system.h"
#include "corral-config.h"
#include "corrald.h"
#include "log.h"

#define DEFAULT_CONFIG "/etc/corral/corral.json"

/* Print usage. */
static void usage(FILE *f)
{
	fprintf(f, "usage: corrald [--config FILE] [--socket PATH] [--check-config FILE]\n"
		   "               [--log-level error|warn|notice|info|debug] [--version]\n"
		   "               [--print-default-config]\n");
}

/* Print every config error, one per line; returns the count. */
static size_t print_errors(FILE *f, const char *prefix, const struct config_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(f, "%s%s\n", prefix, e->msgs[i]);
	return e->n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 's'},
	    {"check-config", required_argument, NULL, 'k'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"version", no_argument, NULL, 'V'},
	    {"print-default-config", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = NULL, *socket_arg = NULL;
	int level = LOG_LVL_INFO, c;

	while ((c = getopt_long(argc, argv, "c:s:k:l:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 's':
			socket_arg = optarg;
			break;
		case 'k': {
			struct config *cfg = NULL;
			struct config_errors errs = {0}, warns = {0};
			if (config_load_file(optarg, &cfg, &errs) < 0) {
				print_errors(stderr, "", &errs);
				config_errors_free(&errs);
				config_free(cfg);
				return 1;
			}
			/* What only this machine lacks (a program, a user, a group) is no
			 * error in the file: corrald and reload accept it, and a call
			 * then gets `unavailable` naming it.  Said, as warnings. */
			size_t nw = config_check_system(cfg, &warns);
			print_errors(stderr, "warning: ", &warns);
			config_errors_free(&warns);
			if (nw)
				printf("%s: ok (%zu types; %zu warnings)\n", optarg, cfg->ntypes,
				       nw);
			else
				printf("%s: ok (%zu types)\n", optarg, cfg->ntypes);
			config_free(cfg);
			return 0;
		}
		case 'l':
			level = log_parse_level(optarg);
			if (level < 0) {
				fprintf(stderr, "corrald: unknown log level %s\n", optarg);
				return 2;
			}
			break;
		case 'V':
			printf("corrald %s\n", CORRAL_VERSION);
			return 0;
		case 'P': {
			json_t *j = json_loads(config_default_json(), 0, NULL);
			char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
			json_decref(j);
			if (!s)
				return 1;
			printf("%s\n", s);
			free(s);
			return 0;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	log_init((enum log_level)level);
	srandom((unsigned)(getpid() ^ time(NULL)));

	struct config *cfg = NULL;
	if (!config_path && access(DEFAULT_CONFIG, F_OK) == 0)
		config_path = DEFAULT_CONFIG;
	if (config_path) {
		struct config_errors errs = {0};
		if (config_load_file(config_path, &cfg, &errs) < 0) {
			for (size_t i = 0; i < errs.n; i++)
				log_err("%s", errs.msgs[i]);
			config_errors_free(&errs);
			return 1;
		}
	} else {
		cfg = config_default();
		log_info("no config file: serving the embedded default (echo, sha256)");
	}
	return daemon_run(cfg, config_path, socket_arg);
}
