/*
 * test_lifecycle.c - workers' lives against a real corrald: reaping and
 * replacement, crash-loop backoff, id allocation, shutdown paths, PDEATHSIG,
 * resource use over many spawn/kill cycles, captured logs.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Collect the pids of every listed worker. */
static size_t list_pids(struct hc *c, pid_t *pids, size_t max)
{
	json_t *ws = h_list(c, NULL);
	size_t n = 0, i;
	json_t *w;
	json_array_foreach(ws, i, w)
	{
		if (n < max)
			pids[n++] = (pid_t)h_int(w, "pid");
	}
	json_decref(ws);
	return n;
}

/* First worker id of a spawn reply. */
static json_int_t spawn_one(struct hc *c, const char *type)
{
	json_t *r = hc_rpc(c, "{\"cmd\":\"spawn\",\"type\":\"%s\"}", type);
	H_OK(r);
	json_int_t id = json_integer_value(json_array_get(json_object_get(r, "workers"), 0));
	ck_assert_int_gt(id, 0);
	json_decref(r);
	return id;
}

START_TEST(test_external_kill_reaped_and_replaced)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1}}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *ws = h_wait_workers(&c, "echo", 1, true, 10000);
	json_int_t id = h_int(json_array_get(ws, 0), "id");
	pid_t pid = (pid_t)h_int(json_array_get(ws, 0), "pid");
	json_decref(ws);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	json_t *ev = h_wait_state(&w, sid, id, "exited", 10000);
	ck_assert_msg(h_str(ev, "reason") && strcmp(h_str(ev, "reason"), "killed by SIGKILL") == 0,
		      "%s", h_dump(ev));
	json_decref(ev);
	/* Replaced because min is 1: a new idle worker with a larger id. */
	ev = h_wait_state(&w, sid, 0, "idle", 10000);
	ck_assert_int_gt(h_int(ev, "worker"), id);
	json_decref(ev);
	ws = h_wait_workers(&c, "echo", 1, true, 10000);
	ck_assert_int_gt(h_int(json_array_get(ws, 0), "id"), id);
	json_decref(ws);
	/* Reaped: no zombie child of the daemon. */
	int z = 0;
	h_count_children(d.pid, &z);
	ck_assert_int_eq(z, 0);
	ck_assert(!h_pid_alive(pid));
	json_t *r = hc_rpc(&c, "{\"cmd\":\"stats\"}");
	ck_assert_int_ge(h_int(r, "crashed") + h_int(r, "exited"), 1);
	ck_assert_int_ge(h_int(r, "spawned"), 2);
	json_decref(r);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_crash_loop_backoff)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"crash\":{\"exec\":[\"/bin/sh\",\"-c\",\"exit 1\"],"
		  "\"pool\":{\"min\":1,\"max\":2,\"queue\":1},"
		  "\"restart\":{\"burst\":2,\"interval_ms\":10000,\"backoff_ms\":[200,1000]}}}}");
	hc_open(&c, &d);
	/* A measurement window: how many spawns happen in ~1.5 s. */
	int64_t t0 = h_now_ms();
	struct timespec ts = {1, 500000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	json_t *r = hc_rpc(&c, "{\"cmd\":\"stats\"}");
	H_OK(r);
	json_int_t spawned = h_int(r, "spawned");
	json_decref(r);
	ck_assert_msg(spawned >= 2 && spawned <= 8, "%lld spawns in %lld ms", (long long)spawned,
		      (long long)(h_now_ms() - t0));
	/* The daemon is not spinning: its CPU time stays small. */
	/* A queued call waits for its timeout; a call past the queue is unavailable. */
	json_int_t q = hc_sendf(&c, -1,
				"{\"cmd\":\"call\",\"type\":\"crash\",\"payload\":\"x\","
				"\"timeout_ms\":500}");
	r = hc_rpc(&c,
		   "{\"cmd\":\"call\",\"type\":\"crash\",\"payload\":\"x\",\"timeout_ms\":500}");
	H_ERR(r, "unavailable");
	json_decref(r);
	r = hc_wait_id(&c, q, 10000, NULL);
	ck_assert_msg(r, "queued call never answered");
	ck_assert_msg(
	    !h_ok(r) && (strcmp(h_err(r), "timeout") == 0 || strcmp(h_err(r), "unavailable") == 0),
	    "queued call: %s", h_dump(r));
	json_decref(r);
	/* Still alive. */
	r = hc_rpc(&c, "{\"cmd\":\"ping\"}");
	H_OK(r);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_ids_increasing)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"max\":2}}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_int_t last = 0;
	for (int i = 0; i < 10; i++) {
		json_int_t id = spawn_one(&c, "echo");
		ck_assert_msg(id > last, "id %lld after %lld", (long long)id, (long long)last);
		last = id;
		json_t *r = hc_rpc(&c, "{\"cmd\":\"stop\",\"worker\":%lld}", (long long)id);
		H_OK(r);
		json_decref(r);
		json_decref(h_wait_state(&w, sid, id, "exited", 10000));
	}
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Start a daemon with 3 workers; returns their pids. */
static size_t up_with_workers(struct hd *d, struct hc *c, pid_t *pids)
{
	hd_up(d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":2}},"
		 "\"cat\":{\"mode\":\"stdio\",\"exec\":[\"/bin/cat\"],\"pool\":{\"min\":1}}}}");
	hc_open(c, d);
	json_decref(h_wait_workers(c, "echo", 2, true, 10000));
	json_decref(h_wait_workers(c, "cat", 1, true, 10000));
	size_t n = list_pids(c, pids, 8);
	ck_assert_int_eq(n, 3);
	return n;
}

START_TEST(test_shutdown_leaves_no_worker)
{
	struct hd d;
	struct hc c;
	pid_t pids[8];
	size_t n = up_with_workers(&d, &c, pids);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"shutdown\"}");
	H_OK(r);
	json_decref(r);
	ck_assert_msg(hd_wait_exit(&d, 20000), "daemon did not exit after shutdown");
	ck_assert_msg(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0, "status 0x%x", d.status);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(h_wait_pid_gone(pids[i], 5000), "worker %d survived", pids[i]);
	hc_close(&c);
}
END_TEST

START_TEST(test_sigterm_leaves_no_worker)
{
	struct hd d;
	struct hc c;
	pid_t pids[8];
	size_t n = up_with_workers(&d, &c, pids);
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	ck_assert_msg(hd_wait_exit(&d, 20000), "daemon did not exit after SIGTERM");
	ck_assert_msg(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0, "status 0x%x", d.status);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(h_wait_pid_gone(pids[i], 5000), "worker %d survived", pids[i]);
	hc_close(&c);
}
END_TEST

START_TEST(test_sigint_exits_0)
{
	struct hd d;
	struct hc c;
	pid_t pids[8];
	size_t n = up_with_workers(&d, &c, pids);
	ck_assert_int_eq(kill(d.pid, SIGINT), 0);
	ck_assert_msg(hd_wait_exit(&d, 20000), "daemon did not exit after SIGINT");
	ck_assert_msg(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0, "status 0x%x", d.status);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(h_wait_pid_gone(pids[i], 5000), "worker %d survived", pids[i]);
	hc_close(&c);
}
END_TEST

START_TEST(test_sigkill_daemon_pdeathsig)
{
	struct hd d;
	struct hc c;
	pid_t pids[8];
	size_t n = up_with_workers(&d, &c, pids);
	ck_assert_int_eq(kill(d.pid, SIGKILL), 0);
	ck_assert(hd_wait_exit(&d, 10000));
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(h_wait_pid_gone(pids[i], 5000),
			      "worker %d survived SIGKILL of corrald", pids[i]);
	hc_close(&c);
}
END_TEST

/* Spawn then end a worker (by "kill" or "stop") many times; the daemon stays flat. */
static void cycles_flat(const char *how)
{
	struct hd d;
	struct hc c, w;
	int cycles = h_small() ? 500 : 2000;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"max\":4}}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	int fds0 = 0;
	long rss0 = 0;
	int warm = 50;
	for (int i = 0; i < cycles + warm; i++) {
		if (i == warm) {
			fds0 = h_count_fds(d.pid);
			rss0 = h_rss_kb(d.pid);
		}
		json_int_t id = spawn_one(&c, "echo");
		json_t *r = hc_rpc(&c, "{\"cmd\":\"%s\",\"worker\":%lld}", how, (long long)id);
		H_OK(r);
		json_decref(r);
		json_decref(h_wait_state(&w, sid, id, "exited", 10000));
	}
	int fds1 = h_count_fds(d.pid);
	long rss1 = h_rss_kb(d.pid);
	/* A sanitizer's runtime may hold one fd of its own at times. */
	int fslack = h_small() ? 1 : 0;
	ck_assert_msg(fds1 <= fds0 + fslack, "daemon fds %d -> %d after %d cycles", fds0, fds1,
		      cycles);
	long slack = h_small() ? 16384 : 2048;
	ck_assert_msg(rss1 <= rss0 + slack, "daemon RSS %ld -> %ld KiB after %d cycles", rss0, rss1,
		      cycles);
	int z = 0;
	ck_assert_int_eq(h_count_children(d.pid, &z), 0);
	ck_assert_int_eq(z, 0);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"stats\"}");
	ck_assert_int_eq(h_int(r, "spawned"), cycles + warm);
	ck_assert_int_eq(h_int(r, "workers"), 0);
	json_decref(r);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}

/* The operator's kill is deliberate: it must not put the type in crash-loop backoff. */
START_TEST(test_spawn_kill_cycles_flat)
{
	cycles_flat("kill");
}
END_TEST

START_TEST(test_spawn_stop_cycles_flat)
{
	cycles_flat("stop");
}
END_TEST

/* Does a logs reply hold a stderr line with text from worker wid (0 any)? */
static json_t *find_line(json_t *lines, json_int_t wid, const char *text)
{
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l)
	{
		const char *t = h_str(l, "text");
		if (t && strstr(t, text) && (!wid || h_int(l, "worker") == wid))
			return l;
	}
	return NULL;
}

/* Check a log line's fields. */
static void check_line(json_t *l, json_int_t wid)
{
	static const char *const keys[] = {"worker", "stream", "ts_ms", "text"};
	for (int i = 0; i < 4; i++)
		ck_assert_msg(json_object_get(l, keys[i]), "log line without %s: %s", keys[i],
			      h_dump(l));
	ck_assert_int_eq(json_object_size(l), 4);
	ck_assert_int_eq(h_int(l, "worker"), wid);
	ck_assert_str_eq(h_str(l, "stream"), "stderr");
	json_int_t ts = h_int(l, "ts_ms");
	json_int_t now = (json_int_t)time(NULL) * 1000;
	ck_assert_msg(ts > now - 120000 && ts < now + 120000, "ts_ms %lld not epoch ms (now %lld)",
		      (long long)ts, (long long)now);
	const char *t = h_str(l, "text");
	ck_assert_msg(!strchr(t, '\n'), "text keeps its newline: %s", h_dump(l));
}

/* Next log event, skipping lines a sanitizer writes (they start with "=="). */
static json_t *next_log_event(struct hc *f, json_int_t fid)
{
	for (;;) {
		json_t *ev = hc_next_event(f, fid, 10000);
		ck_assert_msg(ev, "no log event");
		const char *t = h_str(ev, "text");
		if (!t || strncmp(t, "==", 2) != 0)
			return ev;
		json_decref(ev);
	}
}

START_TEST(test_logs)
{
	struct hd d;
	struct hc c, f;
	char cfg[4096], root[1024];
	/* The sandbox shows only readonly paths: add the build tree (the example and its
	 * library live there). */
	snprintf(root, sizeof(root), "%s", h_upper());
	for (int k = 0; k < 2; k++)
		*strrchr(root, '/') = '\0';
	snprintf(
	    cfg, sizeof(cfg),
	    "{\"types\":{\"chatty\":{\"exec\":[\"/bin/sh\",\"-c\","
	    "\"echo hello-from-$$ >&2; echo second-line >&2; exec %s\"],"
	    "\"sandbox\":{\"readonly\":[\"/usr\",\"/bin\",\"/lib\",\"/lib64\",\"/etc\",\"%s\"]},"
	    "\"pool\":{\"max\":4}}}}",
	    h_upper(), root);
	hd_up(&d, "%s", cfg);
	hc_open(&c, &d);
	/* Follow the type first, then start a worker: its lines arrive as events. */
	hc_open(&f, &d);
	json_int_t fid = hc_sendf(&f, -1, "{\"cmd\":\"logs\",\"type\":\"chatty\",\"follow\":true}");
	json_t *r = hc_wait_id(&f, fid, 10000, NULL);
	H_OK(r);
	ck_assert_int_eq(json_array_size(json_object_get(r, "lines")), 0);
	json_decref(r);
	json_int_t id = spawn_one(&c, "chatty");
	json_t *ev = NULL;
	for (int i = 0; i < 2; i++) {
		ev = next_log_event(&f, fid);
		check_line(ev, id);
		ck_assert_str_eq(h_str(ev, "text"), i == 0 ? h_str(ev, "text") : "second-line");
		if (i == 0)
			ck_assert_msg(strncmp(h_str(ev, "text"), "hello-from-", 11) == 0, "%s",
				      h_dump(ev));
		json_decref(ev);
	}
	/* logs TYPE */
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"type\":\"chatty\"}");
	H_OK(r);
	json_t *l = find_line(json_object_get(r, "lines"), id, "hello-from-");
	ck_assert_msg(l, "line missing: %s", h_dump(r));
	check_line(l, id);
	json_decref(r);
	/* lines=1 gives the last one (a sanitizer may add lines of its own). */
	if (!h_small()) {
		r = hc_rpc(&c, "{\"cmd\":\"logs\",\"type\":\"chatty\",\"lines\":1}");
		H_OK(r);
		ck_assert_int_eq(json_array_size(json_object_get(r, "lines")), 1);
		ck_assert_str_eq(h_str(json_array_get(json_object_get(r, "lines"), 0), "text"),
				 "second-line");
		json_decref(r);
	}
	/* The worker exits; logs ID still has its lines. */
	struct hc w;
	json_int_t sid = hc_watch(&w, &d);
	r = hc_rpc(&c, "{\"cmd\":\"kill\",\"worker\":%lld}", (long long)id);
	H_OK(r);
	json_decref(r);
	json_decref(h_wait_state(&w, sid, id, "exited", 10000));
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"worker\":%lld}", (long long)id);
	H_OK(r);
	ck_assert_msg(find_line(json_object_get(r, "lines"), id, "hello-from-"),
		      "exited worker's lines gone: %s", h_dump(r));
	json_decref(r);
	/* A second worker: logs ID shows only its own lines. */
	json_int_t id2 = spawn_one(&c, "chatty");
	/* Late lines of the first worker may still come first. */
	for (;;) {
		ev = next_log_event(&f, fid);
		json_int_t from = h_int(ev, "worker");
		json_decref(ev);
		ck_assert_msg(from == id || from == id2, "log event of worker %lld",
			      (long long)from);
		if (from == id2)
			break;
	}
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"worker\":%lld}", (long long)id);
	H_OK(r);
	size_t i;
	json_array_foreach(json_object_get(r, "lines"), i, l)
	    ck_assert_int_eq(h_int(l, "worker"), id);
	json_decref(r);
	/* Never used id; unknown type. */
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"worker\":99999}");
	H_ERR(r, "no_such_worker");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"type\":\"nope\"}");
	H_ERR(r, "unknown_type");
	json_decref(r);
	hc_close(&w);
	hc_close(&f);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_logs_stdio_stderr)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"noisy\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\","
		  "\"echo stdio-says-hi >&2; cat\"]}}}");
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"noisy\",\"payload\":\"abc\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "abc");
	json_int_t wid = h_int(r, "worker");
	json_decref(r);
	/* No event tells when the line is captured: poll logs with a deadline. */
	int64_t deadline = h_now_ms() + 10000;
	for (;;) {
		r = hc_rpc(&c, "{\"cmd\":\"logs\",\"type\":\"noisy\"}");
		H_OK(r);
		json_t *l = find_line(json_object_get(r, "lines"), 0, "stdio-says-hi");
		if (l) {
			check_line(l, wid);
			json_decref(r);
			break;
		}
		ck_assert_msg(h_now_ms() < deadline, "stdio program's stderr not in logs: %s",
			      h_dump(r));
		json_decref(r);
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, NULL);
	}
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-lifecycle");
	h_add(s, test_external_kill_reaped_and_replaced, 60);
	h_add(s, test_crash_loop_backoff, 60);
	h_add(s, test_ids_increasing, 60);
	h_add(s, test_shutdown_leaves_no_worker, 60);
	h_add(s, test_sigterm_leaves_no_worker, 60);
	h_add(s, test_sigint_exits_0, 60);
	h_add(s, test_sigkill_daemon_pdeathsig, 60);
	h_add(s, test_spawn_kill_cycles_flat, 240);
	h_add(s, test_spawn_stop_cycles_flat, 240);
	h_add(s, test_logs, 60);
	h_add(s, test_logs_stdio_stderr, 60);
	return h_main(s);
}
