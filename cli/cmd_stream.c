/*
 * cmd_stream.c - the streaming commands: logs (with -f) and watch.  After
 * the ok reply, events arrive until we close; each is printed and flushed.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fmt.h"

/* Print one log line: "ts worker stream text". */
static void stream_print_log(json_t *l)
{
	json_t *text = json_object_get(l, "text");
	const char *s = json_is_string(text) ? json_string_value(text) : "";
	size_t n = json_is_string(text) ? json_string_length(text) : 0;
	char ts[FMT_BUF];
	char *worker, *stream, *safe;

	if (n && s[n - 1] == '\n')
		n--;
	fmt_time_ms(ts, fmt_int(l, "ts_ms"));
	worker = fmt_json(json_object_get(l, "worker"));
	stream = fmt_json(json_object_get(l, "stream"));
	safe = fmt_safe(s, n, false);
	printf("%s %s %s %s\n", ts, worker, stream, safe);
	free(worker);
	free(stream);
	free(safe);
}

static void stream_print_state(json_t *ev);

/* Print stream events (with --json, libcorral printed them) until the stream fails. */
static int stream_follow(struct ctl *ctl, struct corral_stream *stream)
{
	struct corral_event ev;
	int r;

	out_flush();
	while ((r = ctl_stream_next(stream, &ev)) == 0) {
		if (ev.kind == CORRAL_EVENT_END) {
			/* The last event: a drain ends streams normally; a follower
			 * dropped for falling behind missed events. */
			bool drain = ev.reason && strstr(ev.reason, "shutting down");
			out_flush();
			if (!ctl->json)
				ctl_warnx("corrald ended the stream: %s",
					  ev.reason ? ev.reason : "");
			corral_event_clear(&ev);
			r = drain ? CTL_EXIT_OK : CTL_EXIT_ERROR;
			break;
		}
		if (!ctl->json && ev.kind == CORRAL_EVENT_LOG)
			stream_print_log(ev.json);
		else if (!ctl->json)
			stream_print_state(ev.json);
		corral_event_clear(&ev);
		out_flush();
	}
	corral_stream_close(stream);
	return r;
}

/*
 * logs [ID|TYPE] [-f] [-n N] [--since DUR]: captured output lines (every
 * worker's without a target), then new ones with -f.
 */
int cmd_logs(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"lines", required_argument, NULL, 'n'},
	    {"since", required_argument, NULL, 'S'},
	    {NULL, 0, NULL, 0},
	};
	struct corral_logs_opts lo = {.lines = -1};
	struct corral_stream *stream;
	struct corral_error err;
	long long lines = -1, since = -1;
	bool follow = false;
	json_t *args, *rep, *l;
	size_t i;
	int c, r;

	while ((c = args_next(ctl, argc, argv, "fn:S:", opts)) != ARGS_END) {
		switch (c) {
		case 'f':
			follow = true;
			break;
		case 'n':
			if (args_option_number(ctl, argv, c, CTL_CMD_LOGS, "lines", &lines))
				return CTL_EXIT_USAGE;
			break;
		case 'S':
			if (args_duration(ctl, argv, c, &since))
				return CTL_EXIT_USAGE;
			break;
		default:
			return args_stop(c);
		}
	}
	if (args_positional(ctl, argc, argv, 0, 1))
		return CTL_EXIT_USAGE;
	args = args_new();
	if (optind < argc && args_target(ctl, args, argv[optind])) {
		json_decref(args);
		return CTL_EXIT_USAGE;
	}
	if (since >= 0) {
		long long now = fmt_now_ms();

		json_object_set_new(args, "since_ms", json_integer(since < now ? now - since : 0));
	}
	if (lines >= 0)
		json_object_set_new(args, "lines", json_integer(lines));
	if (!follow) {
		r = ctl_command(ctl, CTL_CMD_LOGS, args, &rep);
		if (r)
			return r;
		if (!ctl->json)
			json_array_foreach(json_object_get(rep, "lines"), i, l) stream_print_log(l);
		json_decref(rep);
		return CTL_EXIT_OK;
	}

	/* Follow on our one connection: the backlog lines come first, as events. */
	if (fmt_int(args, "worker") > 0)
		lo.worker = (uint64_t)fmt_int(args, "worker");
	lo.type = json_string_value(json_object_get(args, "type"));
	lo.lines = (int)lines;
	lo.since_ms = fmt_int(args, "since_ms");
	r = ctl_connect(ctl);
	if (r) {
		json_decref(args);
		return r;
	}
	r = corral_logs_follow_take(ctl->conn, &lo, &stream, &err);
	ctl->conn = NULL; /* the stream's now, even on failure */
	json_decref(args);
	if (r)
		return ctl_fail(&err);
	return stream_follow(ctl, stream);
}

/*
 * Print one watch event: "ts worker type pid state", or for an exit the
 * reason in the state's place ("exited with status 0", "exited (killed by
 * SIGSEGV)") so that it never reads "exited exited".
 */
static void stream_print_state(json_t *ev)
{
	static const char *const keys[] = {"worker", "type", "pid"};
	json_t *state = json_object_get(ev, "state");
	json_t *reason = json_object_get(ev, "reason");
	long long ts_ms = fmt_int(ev, "ts_ms");
	char ts[FMT_BUF];

	fmt_time_ms(ts, ts_ms >= 0 ? ts_ms : fmt_now_ms());
	fputs(ts, stdout);
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		char *s = fmt_json(json_object_get(ev, keys[k]));

		printf(" %s", s);
		free(s);
	}
	char *st = fmt_json(state);
	if (json_is_string(reason)) {
		char *r = fmt_json(reason);
		if (strcmp(st, "exited") == 0 && strncmp(r, "exited ", 7) == 0)
			printf(" %s", r);
		else
			printf(" %s (%s)", st, r);
		free(r);
	} else {
		printf(" %s", st);
	}
	free(st);
	putchar('\n');
}

/* watch: one line per worker state change until interrupted. */
int cmd_watch(struct ctl *ctl, int argc, char **argv)
{
	struct corral_stream *stream;
	struct corral_error err;
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = corral_watch_take(ctl->conn, &stream, &err);
	ctl->conn = NULL; /* the stream's now, even on failure */
	if (r)
		return ctl_fail(&err);
	return stream_follow(ctl, stream);
}
