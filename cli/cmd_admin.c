/*
 * cmd_admin.c - commands that act on the daemon: reload and shutdown.
 */
#include <stdlib.h>

#include "ctl.h"
#include "fmt.h"

/* Print "label: a, b" for the names in reply[key], or "label: -". */
static void admin_print_names(json_t *reply, const char *key)
{
	json_t *names = json_object_get(reply, key);
	size_t i;
	json_t *v;

	printf("%s:", key);
	json_array_foreach(names, i, v)
	{
		char *s = fmt_json(v);

		printf("%s %s", i ? "," : "", s);
		free(s);
	}
	printf("%s\n", json_array_size(names) ? "" : " -");
}

/* reload: the added, removed and changed type names. */
int cmd_reload(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply rep;
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	r = ctl_call(ctl, ctl_request_new(ctl, "reload", NULL), -1, &rep);
	if (r)
		return r;
	if (!ctl->json) {
		admin_print_names(rep.obj, "added");
		admin_print_names(rep.obj, "removed");
		admin_print_names(rep.obj, "changed");
	}
	ctl_reply_free(&rep);
	return CTL_EXIT_OK;
}

/* shutdown [-t MS]: nothing on success. */
int cmd_shutdown(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	struct ctl_reply rep;
	long long timeout = -1;
	json_t *req;
	int c, r;

	while ((c = args_next(ctl, argc, argv, "t:", opts)) != ARGS_END) {
		switch (c) {
		case 't':
			if (args_number(ctl, "timeout", optarg, 0, &timeout))
				return CTL_EXIT_USAGE;
			break;
		default:
			return args_stop(c);
		}
	}
	if (args_positional(ctl, argc, argv, 0, 0))
		return CTL_EXIT_USAGE;
	req = ctl_request_new(ctl, "shutdown", NULL);
	if (timeout >= 0)
		json_object_set_new(req, "timeout_ms", json_integer(timeout));
	r = ctl_call(ctl, req, -1, &rep);
	if (r)
		return r;
	ctl_reply_free(&rep);
	return CTL_EXIT_OK;
}
