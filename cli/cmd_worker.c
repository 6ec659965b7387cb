/*
 * cmd_worker.c - commands that act on workers: spawn, stop, kill and restart.
 */
#include <stdlib.h>

#include "ctl.h"
#include "fmt.h"

/* Print the ids in reply[key], one per line. */
static void worker_print_ids(json_t *reply, const char *key)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(reply, key), i, v)
	{
		char *s = fmt_json(v);

		printf("%s\n", s);
		free(s);
	}
}

/* Run cmd with args (consumed) and print the ids of the ok reply's key; the exit status. */
static int worker_request(struct ctl *ctl, enum ctl_cmd_id cmd, json_t *args, const char *key)
{
	json_t *rep;
	int r;

	r = ctl_command(ctl, cmd, args, &rep);
	if (r)
		return r;
	if (!ctl->json && key)
		worker_print_ids(rep, key);
	json_decref(rep);
	return CTL_EXIT_OK;
}

/* spawn TYPE [-n N]: the new workers' ids, one per line. */
int cmd_spawn(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"count", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	long long count = 0;
	json_t *args, *type;
	int c;

	while ((c = args_next(ctl, argc, argv, "n:", opts)) != ARGS_END) {
		switch (c) {
		case 'n':
			if (args_option_number(ctl, argv, c, CTL_CMD_SPAWN, "count", &count))
				return CTL_EXIT_USAGE;
			break;
		default:
			return args_stop(c);
		}
	}
	if (args_positional(ctl, argc, argv, 1, 1))
		return CTL_EXIT_USAGE;
	type = json_string(argv[optind]);
	if (!type) {
		args_usage_error(ctl, "invalid TYPE: not UTF-8");
		return CTL_EXIT_USAGE;
	}
	args = args_new();
	json_object_set_new(args, "type", type);
	if (count)
		json_object_set_new(args, "count", json_integer(count));
	return worker_request(ctl, CTL_CMD_SPAWN, args, "workers");
}

/* stop ID|TYPE [-t MS]: the stopped ids, one per line. */
int cmd_stop(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	long long timeout = -1;
	json_t *args;
	int c;

	while ((c = args_next(ctl, argc, argv, "t:", opts)) != ARGS_END) {
		switch (c) {
		case 't':
			if (args_option_number(ctl, argv, c, CTL_CMD_STOP, "timeout_ms", &timeout))
				return CTL_EXIT_USAGE;
			break;
		default:
			return args_stop(c);
		}
	}
	if (args_positional(ctl, argc, argv, 1, 1))
		return CTL_EXIT_USAGE;
	args = args_new();
	if (args_target(ctl, args, argv[optind])) {
		json_decref(args);
		return CTL_EXIT_USAGE;
	}
	if (timeout >= 0)
		json_object_set_new(args, "timeout_ms", json_integer(timeout));
	return worker_request(ctl, CTL_CMD_STOP, args, "stopped");
}

/* kill ID [-s SIG]: nothing on success. */
int cmd_kill(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"signal", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *sig = "KILL";
	long long id;
	json_t *args;
	int c;

	while ((c = args_next(ctl, argc, argv, "s:", opts)) != ARGS_END) {
		switch (c) {
		case 's':
			sig = args_signal(optarg);
			if (!sig) {
				args_usage_error(ctl, "unknown signal '%s'", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		default:
			return args_stop(c);
		}
	}
	if (args_positional(ctl, argc, argv, 1, 1))
		return CTL_EXIT_USAGE;
	if (args_number(ctl, "worker id", argv[optind], 1, CTL_INT_MAX, &id))
		return CTL_EXIT_USAGE;
	args = args_new();
	json_object_set_new(args, "worker", json_integer(id));
	json_object_set_new(args, "signal", json_string(sig));
	return worker_request(ctl, CTL_CMD_KILL, args, NULL);
}

/* restart ID|TYPE: the replaced ids, one per line. */
int cmd_restart(struct ctl *ctl, int argc, char **argv)
{
	json_t *args;
	int r;

	r = args_simple(ctl, argc, argv, 1, 1);
	if (r >= 0)
		return r;
	args = args_new();
	if (args_target(ctl, args, argv[optind])) {
		json_decref(args);
		return CTL_EXIT_USAGE;
	}
	return worker_request(ctl, CTL_CMD_RESTART, args, "restarted");
}
