/*
 * cmd_query.c - the read-only views: ping, types, list, describe and stats.
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
	json_t *rep;
	char up[FMT_BUF];
	char *version, *pid;
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	r = ctl_command(ctl, CTL_CMD_PING, NULL, &rep);
	if (r)
		return r;
	if (!ctl->json) {
		version = fmt_json(json_object_get(rep, "version"));
		pid = fmt_json(json_object_get(rep, "pid"));
		fmt_duration_ms(up, fmt_int(rep, "uptime_ms"));
		printf("corrald %s pid %s up %s\n", version, pid, up);
		free(version);
		free(pid);
	}
	json_decref(rep);
	return CTL_EXIT_OK;
}

/* A copy of s; exits when out of memory. */
static char *strdup_or_die(const char *s)
{
	char *d = strdup(s);

	if (!d)
		ctl_oom();
	return d;
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

/* The SANDBOX cell of a type: "full", or the missing layers ("no user,cgroup"). */
static char *query_sandbox(json_t *sandbox)
{
	json_t *missing = json_object_get(sandbox, "missing");
	char *miss, *s;

	if (!json_array_size(json_object_get(sandbox, "active")))
		return strdup_or_die("none");
	if (!json_array_size(missing))
		return strdup_or_die("full");
	miss = query_join(missing, ",");
	if (asprintf(&s, "no %s", miss) < 0)
		ctl_oom();
	free(miss);
	return s;
}

/* types: NAME MODE MIN MAX WORKERS BUSY QUEUED SANDBOX. */
int cmd_types(struct ctl *ctl, int argc, char **argv)
{
	static const char *const heads[] = {"NAME",    "MODE", "MIN",	 "MAX",
					    "WORKERS", "BUSY", "QUEUED", "SANDBOX"};
	struct fmt_table t;
	json_t *rep;
	size_t i;
	json_t *ty;
	int r;

	r = args_simple(ctl, argc, argv, 0, 0);
	if (r >= 0)
		return r;
	r = ctl_command(ctl, CTL_CMD_TYPES, NULL, &rep);
	if (r || ctl->json)
		goto out;
	fmt_table_init(&t, 8, heads, "llrrrrrl");
	json_array_foreach(json_object_get(rep, "types"), i, ty)
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
		json_decref(rep);
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

/* Run list (for type, if not NULL): 0 with *ret_reply, else the exit status. */
static int query_list(struct ctl *ctl, const char *type, json_t **ret_reply)
{
	json_t *args = args_new();

	if (type) {
		json_t *t = json_string(type);

		if (!t) {
			json_decref(args);
			args_usage_error(ctl, "invalid TYPE: not UTF-8");
			return CTL_EXIT_USAGE;
		}
		json_object_set_new(args, "type", t);
	}
	return ctl_command(ctl, CTL_CMD_LIST, args, ret_reply);
}

/* list [TYPE]: one row per worker. */
int cmd_list(struct ctl *ctl, int argc, char **argv)
{
	json_t *rep;
	int r;

	r = args_simple(ctl, argc, argv, 0, 1);
	if (r >= 0)
		return r;
	r = query_list(ctl, optind < argc ? argv[optind] : NULL, &rep);
	if (r)
		return r;
	if (!ctl->json)
		query_print_workers(json_object_get(rep, "workers"));
	json_decref(rep);
	return CTL_EXIT_OK;
}

/* Add one "path value" row per leaf of the config object o, under prefix. */
static void query_config_rows(struct fmt_table *t, json_t *o, const char *prefix)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		char *path;

		if (!*prefix && strcmp(key, "name") == 0)
			continue;
		if (asprintf(&path, "%s%s%s", prefix, *prefix ? "." : "", key) < 0)
			ctl_oom();
		if (json_is_object(v) && json_object_size(v)) {
			query_config_rows(t, v, path);
			free(path);
			continue;
		}
		fmt_table_add(t, fmt_safe(path, strlen(path), false));
		free(path);
		fmt_table_add_json(t, v);
	}
}

/* "1 worker", "2 workers": n and the noun, singular or plural. */
static void query_count(char *buf, size_t len, long long n, const char *one, const char *many)
{
	snprintf(buf, len, "%lld %s", n, n == 1 ? one : many);
}

/* The backoff line of describe: "off" or "active until …", with the recent crashes. */
static char *query_backoff(json_t *b)
{
	char crashes[64], until[FMT_BUF];
	long long n = fmt_int(b, "recent_crashes");
	char *s;
	int r;

	query_count(crashes, sizeof(crashes), n < 0 ? 0 : n, "recent crash", "recent crashes");
	if (!json_is_true(json_object_get(b, "active"))) {
		r = asprintf(&s, "off (%s)", crashes);
	} else if (fmt_int(b, "until_ms") >= 0) {
		char left[FMT_BUF];

		fmt_time_ms(until, fmt_int(b, "until_ms"));
		fmt_duration_ms(left, fmt_int(b, "until_ms") - fmt_now_ms() > 0
					  ? fmt_int(b, "until_ms") - fmt_now_ms()
					  : 0);
		r = asprintf(&s, "active until %s, in %s (%s)", until, left, crashes);
	} else {
		r = asprintf(&s, "active (%s)", crashes);
	}
	if (r < 0)
		ctl_oom();
	return s;
}

/* describe TYPE: config with defaults, sandbox, backoff, workers, last failures. */
int cmd_describe(struct ctl *ctl, int argc, char **argv)
{
	static const char *const fheads[] = {"TIME", "WORKER", "REASON"};
	struct fmt_table t;
	json_t *rep;
	json_t *args, *type, *v, *workers, *failures;
	char buf[64];
	size_t i;
	int r;

	r = args_simple(ctl, argc, argv, 1, 1);
	if (r >= 0)
		return r;
	type = json_string(argv[optind]);
	if (!type)
		return ctl_usage_error(ctl, "invalid TYPE: not UTF-8");
	args = args_new();
	json_object_set_new(args, "type", type);
	r = ctl_command(ctl, CTL_CMD_DESCRIBE, args, &rep);
	if (r)
		return r;
	if (ctl->json)
		goto out;
	workers = json_object_get(rep, "workers");
	failures = json_object_get(rep, "last_failures");

	fmt_table_init(&t, 2, NULL, "ll");
	fmt_table_addf(&t, "type");
	fmt_table_add(&t, fmt_safe(argv[optind], strlen(argv[optind]), false));
	query_config_rows(&t, json_object_get(rep, "type"), "");
	v = json_object_get(rep, "sandbox");
	fmt_table_addf(&t, "sandbox active");
	fmt_table_add(&t, query_join(json_object_get(v, "active"), " "));
	fmt_table_addf(&t, "sandbox missing");
	fmt_table_add(&t, query_join(json_object_get(v, "missing"), " "));
	fmt_table_addf(&t, "backoff");
	fmt_table_add(&t, query_backoff(json_object_get(rep, "backoff")));
	fmt_table_addf(&t, "workers");
	query_count(buf, sizeof(buf), (long long)json_array_size(workers), "worker", "workers");
	if (fmt_int(rep, "spares") >= 0) {
		char spares[32];

		query_count(spares, sizeof(spares), fmt_int(rep, "spares"), "spare", "spares");
		fmt_table_addf(&t, "%s, %s", buf, spares);
	} else {
		fmt_table_addf(&t, "%s", buf);
	}
	fmt_table_print(&t);
	fmt_table_free(&t);

	if (json_array_size(workers)) {
		out_write("\n", 1);
		query_print_workers(workers);
	}
	out_write("\n", 1);
	if (!json_array_size(failures)) {
		printf("no recent failures\n");
		goto out;
	}
	fmt_table_init(&t, 3, fheads, "lrl");
	json_array_foreach(failures, i, v)
	{
		char ts[FMT_BUF];

		fmt_time_ms(ts, fmt_int(v, "ts_ms"));
		fmt_table_addf(&t, "%s", ts);
		fmt_table_add_json(&t, json_object_get(v, "worker"));
		fmt_table_add_json(&t, json_object_get(v, "reason"));
	}
	fmt_table_print(&t);
	fmt_table_free(&t);
out:
	json_decref(rep);
	return CTL_EXIT_OK;
}

/* Add a "label value" row for the integer st[key], when present. */
static void query_stat_row(struct fmt_table *t, json_t *st, const char *label, const char *key)
{
	json_t *v = json_object_get(st, key);

	if (!v)
		return;
	fmt_table_addf(t, "%s", label);
	fmt_table_add_json(t, v);
}

/* Whether key is one stats prints in its own place (not among "other"). */
static bool query_stat_known(const char *key)
{
	static const char *const known[] = {
	    "id",	   "ok",	  "workers",	  "queued",   "spawned",
	    "exited",	   "crashed",	  "restarts",	  "calls_ok", "calls_failed",
	    "call_p50_us", "call_p99_us", "call_p999_us", "failures", "type"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(key, known[i]) == 0)
			return true;
	return false;
}

/*
 * stats [TYPE]: the counters (of TYPE alone with one), failed calls broken
 * down by cause, and call latency percentiles.
 */
int cmd_stats(struct ctl *ctl, int argc, char **argv)
{
	static const struct {
		const char *label, *key;
	} rows[] = {
	    {"workers", "workers"},   {"queued", "queued"},
	    {"spawned", "spawned"},   {"exited", "exited"},
	    {"crashed", "crashed"},   {"restarts", "restarts"},
	    {"calls ok", "calls_ok"}, {"calls failed", "calls_failed"},
	};
	char p50[FMT_BUF], p99[FMT_BUF], p999[FMT_BUF];
	struct fmt_table t;
	json_t *rep;
	const char *key;
	json_t *args, *v;
	int r;

	r = args_simple(ctl, argc, argv, 0, 1);
	if (r >= 0)
		return r;
	args = args_new();
	if (optind < argc) {
		json_t *type = json_string(argv[optind]);

		if (!type) {
			json_decref(args);
			return ctl_usage_error(ctl, "invalid TYPE: not UTF-8");
		}
		json_object_set_new(args, "type", type);
	}
	r = ctl_command(ctl, CTL_CMD_STATS, args, &rep);
	if (r)
		return r;
	if (ctl->json)
		goto out;
	fmt_table_init(&t, 2, NULL, "ll");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		query_stat_row(&t, rep, rows[i].label, rows[i].key);
	/* Failed calls by cause, under "calls failed"; causes that never happened left out. */
	json_object_foreach(json_object_get(rep, "failures"), key, v)
	{
		if (json_is_integer(v) && json_integer_value(v) == 0)
			continue;
		char *name = fmt_safe(key, strlen(key), false);

		fmt_table_addf(&t, "  %s", name);
		fmt_table_add_json(&t, v);
		free(name);
	}
	if (json_object_get(rep, "call_p50_us")) {
		fmt_duration_us(p50, fmt_int(rep, "call_p50_us"));
		fmt_duration_us(p99, fmt_int(rep, "call_p99_us"));
		fmt_duration_us(p999, fmt_int(rep, "call_p999_us"));
		fmt_table_addf(&t, "call latency");
		fmt_table_addf(&t, "p50 %s  p99 %s  p99.9 %s", p50, p99, p999);
	}
	/* Counters this corralctl does not know yet, as they come. */
	json_object_foreach(rep, key, v)
	{
		if (query_stat_known(key))
			continue;
		fmt_table_add(&t, fmt_safe(key, strlen(key), false));
		fmt_table_add_json(&t, v);
	}
	fmt_table_print(&t);
	fmt_table_free(&t);
out:
	json_decref(rep);
	return CTL_EXIT_OK;
}
