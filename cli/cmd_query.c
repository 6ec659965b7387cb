/*
 * cmd_query.c - the read-only views: ping, types, list, stats and top.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "fmt.h"

/* ping: "corrald VERSION pid PID up 3m12s". */
int cmd_ping(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply rep;
	char up[FMT_BUF];
	char *version, *pid;
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	r = ctl_call(ctl, ctl_request_new(ctl, "ping", NULL), -1, &rep);
	if (r)
		return r;
	if (!ctl->json) {
		version = fmt_json(json_object_get(rep.obj, "version"));
		pid = fmt_json(json_object_get(rep.obj, "pid"));
		fmt_duration_ms(up, fmt_int(rep.obj, "uptime_ms"));
		printf("corrald %s pid %s up %s\n", version, pid, up);
		free(version);
		free(pid);
	}
	ctl_reply_free(&rep);
	return CTL_EXIT_OK;
}

/* Join the strings of a JSON array with sep into a new string; "-" when empty. */
static char *query_join(json_t *arr, const char *sep)
{
	size_t i, len = 0;
	json_t *v;
	char *s, *p;

	json_array_foreach(arr, i, v) len += json_string_length(v) * 6 + strlen(sep);
	s = p = malloc(len + 2);
	if (!s)
		ctl_oom();
	*p = '\0';
	json_array_foreach(arr, i, v)
	{
		char *safe;

		if (!json_is_string(v))
			continue;
		safe = fmt_safe(json_string_value(v), json_string_length(v), false);
		p += sprintf(p, "%s%s", p == s ? "" : sep, safe);
		free(safe);
	}
	if (p == s)
		strcpy(s, "-");
	return s;
}

/* The SANDBOX cell of a type: active layers, then missing ones if any. */
static char *query_sandbox(json_t *sandbox)
{
	json_t *missing = json_object_get(sandbox, "missing");
	char *active = query_join(json_object_get(sandbox, "active"), ",");
	char *miss, *s;

	if (!json_array_size(missing))
		return active;
	miss = query_join(missing, ",");
	if (asprintf(&s, "%s (missing: %s)", active, miss) < 0)
		ctl_oom();
	free(active);
	free(miss);
	return s;
}

/* types: NAME MODE MIN MAX WORKERS BUSY QUEUED SANDBOX. */
int cmd_types(struct ctl *ctl, int argc, char **argv)
{
	static const char *const heads[] = {"NAME",    "MODE", "MIN",	 "MAX",
					    "WORKERS", "BUSY", "QUEUED", "SANDBOX"};
	struct fmt_table t;
	struct ctl_reply rep;
	size_t i;
	json_t *ty;
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	r = ctl_call(ctl, ctl_request_new(ctl, "types", NULL), -1, &rep);
	if (r || ctl->json)
		goto out;
	fmt_table_init(&t, 8, heads, "llrrrrrl");
	json_array_foreach(json_object_get(rep.obj, "types"), i, ty)
	{
		json_t *pool = json_object_get(ty, "pool");

		fmt_table_add_json(&t, json_object_get(ty, "name"));
		fmt_table_add_json(&t, json_object_get(ty, "mode"));
		fmt_table_add_json(&t, json_object_get(pool, "min"));
		fmt_table_add_json(&t, json_object_get(pool, "max"));
		fmt_table_add_json(&t, json_object_get(ty, "workers"));
		fmt_table_add_json(&t, json_object_get(ty, "busy"));
		fmt_table_add_json(&t, json_object_get(ty, "queued"));
		fmt_table_add(&t, query_sandbox(json_object_get(ty, "sandbox")));
	}
	fmt_table_print(&t);
	fmt_table_free(&t);
out:
	if (!r)
		ctl_reply_free(&rep);
	return r;
}

/* Print a list reply's workers: ID PID TYPE KEY STATE UPTIME REQS RSS CPU. */
static void query_print_workers(json_t *workers)
{
	static const char *const heads[] = {"ID",     "PID",  "TYPE", "KEY", "STATE",
					    "UPTIME", "REQS", "RSS",  "CPU"};
	struct fmt_table t;
	char buf[FMT_BUF];
	size_t i;
	json_t *w;

	fmt_table_init(&t, 9, heads, "rrlllrrrr");
	json_array_foreach(workers, i, w)
	{
		fmt_table_add_json(&t, json_object_get(w, "id"));
		fmt_table_add_json(&t, json_object_get(w, "pid"));
		fmt_table_add_json(&t, json_object_get(w, "type"));
		fmt_table_add_json(&t, json_object_get(w, "key"));
		fmt_table_add_json(&t, json_object_get(w, "state"));
		fmt_duration_ms(buf, fmt_int(w, "uptime_ms"));
		fmt_table_addf(&t, "%s", buf);
		fmt_table_add_json(&t, json_object_get(w, "requests"));
		fmt_size_kb(buf, fmt_int(w, "rss_kb"));
		fmt_table_addf(&t, "%s", buf);
		fmt_duration_ms(buf, fmt_int(w, "cpu_ms"));
		fmt_table_addf(&t, "%s", buf);
	}
	fmt_table_print(&t);
	fmt_table_free(&t);
}

/* Send list (for type, if not NULL) and wait: 0 with *ret_reply, else the exit status. */
static int query_list(struct ctl *ctl, const char *type, struct ctl_reply *ret_reply)
{
	json_t *req = ctl_request_new(ctl, "list", NULL);

	if (type) {
		json_t *t = json_string(type);

		if (!t) {
			json_decref(req);
			args_usage_error(ctl, "bad type name: not UTF-8");
			return CTL_EXIT_USAGE;
		}
		json_object_set_new(req, "type", t);
	}
	return ctl_call(ctl, req, -1, ret_reply);
}

/* list [TYPE]: one row per worker. */
int cmd_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply rep;
	int r;

	r = args_simple(ctl, argc, argv, 0, 1);
	if (r >= 0)
		return r;
	r = query_list(ctl, optind < argc ? argv[optind] : NULL, &rep);
	if (r)
		return r;
	if (!ctl->json)
		query_print_workers(json_object_get(rep.obj, "workers"));
	ctl_reply_free(&rep);
	return CTL_EXIT_OK;
}

/* stats: one "key value" line per counter; _us, _ms and _kb values in human units. */
int cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	static const struct {
		const char *suffix;
		void (*fmt)(char *buf, long long v);
	} units[] = {{"_us", fmt_duration_us}, {"_ms", fmt_duration_ms}, {"_kb", fmt_size_kb}};
	struct fmt_table t;
	struct ctl_reply rep;
	const char *key;
	json_t *v;
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	r = ctl_call(ctl, ctl_request_new(ctl, "stats", NULL), -1, &rep);
	if (r)
		return r;
	if (ctl->json)
		goto out;
	fmt_table_init(&t, 2, NULL, "ll");
	json_object_foreach(rep.obj, key, v)
	{
		size_t klen = strlen(key), u;
		char buf[FMT_BUF];

		if (strcmp(key, "id") == 0 || strcmp(key, "ok") == 0)
			continue;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++)
			if (klen > 3 && strcmp(key + klen - 3, units[u].suffix) == 0 &&
			    json_is_integer(v))
				break;
		if (u < sizeof(units) / sizeof(units[0])) {
			units[u].fmt(buf, (long long)json_integer_value(v));
			fmt_table_add(&t, fmt_safe(key, klen - 3, false));
			fmt_table_addf(&t, "%s", buf);
		} else {
			fmt_table_add(&t, fmt_safe(key, klen, false));
			fmt_table_add_json(&t, v);
		}
	}
	fmt_table_print(&t);
	fmt_table_free(&t);
out:
	ctl_reply_free(&rep);
	return CTL_EXIT_OK;
}

/* Print top's summary lines from a stats reply. */
static void query_print_summary(json_t *st)
{
	char now[FMT_BUF], p50[FMT_BUF], p99[FMT_BUF];

	fmt_time_ms(now, fmt_now_ms());
	fmt_duration_us(p50, fmt_int(st, "call_p50_us"));
	fmt_duration_us(p99, fmt_int(st, "call_p99_us"));
	printf("corrald  %s\n"
	       "workers %lld  queued %lld  spawned %lld  exited %lld  crashed %lld  restarts %lld\n"
	       "calls ok %lld  failed %lld  p50 %s  p99 %s\n\n",
	       now, fmt_int(st, "workers"), fmt_int(st, "queued"), fmt_int(st, "spawned"),
	       fmt_int(st, "exited"), fmt_int(st, "crashed"), fmt_int(st, "restarts"),
	       fmt_int(st, "calls_ok"), fmt_int(st, "calls_failed"), p50, p99);
}

/* One top frame: list and stats over the open connection; 0 or the exit status. */
static int query_top_frame(struct ctl *ctl, bool clear)
{
	struct ctl_reply list, stats;
	int r;

	r = query_list(ctl, NULL, &list);
	if (r)
		return r;
	r = ctl_call(ctl, ctl_request_new(ctl, "stats", NULL), -1, &stats);
	if (r) {
		ctl_reply_free(&list);
		return r;
	}
	if (!ctl->json) {
		if (clear)
			fputs("\033[H\033[2J", stdout);
		query_print_summary(stats.obj);
		query_print_workers(json_object_get(list.obj, "workers"));
	}
	out_flush();
	ctl_reply_free(&list);
	ctl_reply_free(&stats);
	return CTL_EXIT_OK;
}

/* top: list and stats every second until interrupted; one frame when stdout is no tty. */
int cmd_top(struct ctl *ctl, int argc, char **argv)
{
	bool tty = isatty(STDOUT_FILENO);
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	for (;;) {
		struct timespec ts = {1, 0};

		r = query_top_frame(ctl, tty && !ctl->json);
		if (r || !tty)
			return r;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}
