/*
 * test_commands.c - describe, restart, stats TYPE, and logs of all workers
 * (with since_ms) against a real corrald.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* obj.a.b as an integer (-1 when absent). */
static json_int_t path_int(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(json_object_get(o, a), b);
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

START_TEST(test_describe)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1}},"
		  "\"dies\":{\"exec\":[\"/bin/sh\",\"-c\",\"exit 5\"]}}}");
	hc_open(&c, &d);
	json_decref(h_wait_workers(&c, "echo", 1, true, 10000));
	json_t *r = hc_rpc(&c, "{\"cmd\":\"describe\",\"type\":\"echo\"}");
	H_OK(r);
	json_t *t = json_object_get(r, "type");
	ck_assert_str_eq(h_str(t, "name"), "echo");
	ck_assert_str_eq(h_str(t, "mode"), "builtin");
	/* Every default filled in. */
	ck_assert_int_eq(path_int(t, "pool", "min"), 1);
	ck_assert_int_eq(path_int(t, "pool", "max"), 4);
	ck_assert_int_eq(path_int(t, "pool", "queue"), 64);
	ck_assert_int_eq(path_int(t, "restart", "healthy_ms"), 1000);
	ck_assert_int_eq(path_int(t, "restart", "burst"), 5);
	ck_assert_int_eq(path_int(t, "limits", "timeout_ms"), 30000);
	ck_assert_int_eq(path_int(t, "limits", "start_timeout_ms"), 10000);
	ck_assert_int_eq(h_int(t, "ring_kb"), 1024);
	ck_assert(json_is_string(json_object_get(json_object_get(t, "sandbox"), "user")));
	json_t *sb = json_object_get(r, "sandbox");
	ck_assert(json_is_array(json_object_get(sb, "active")));
	ck_assert(json_is_array(json_object_get(sb, "missing")));
	json_t *ws = json_object_get(r, "workers");
	ck_assert_int_eq(json_array_size(ws), 1);
	ck_assert_str_eq(h_str(json_array_get(ws, 0), "state"), "idle");
	ck_assert_int_eq(h_int(r, "spares"), 1);
	json_t *bo = json_object_get(r, "backoff");
	ck_assert(json_is_false(json_object_get(bo, "active")));
	ck_assert_int_eq(h_int(bo, "recent_crashes"), 0);
	ck_assert_int_eq(json_array_size(json_object_get(r, "last_failures")), 0);
	json_decref(r);
	/* A type whose workers die: the failures and the crash are there. */
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"dies\",\"payload\":\"x\"}");
	H_ERR(r, "unavailable");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"describe\",\"type\":\"dies\"}");
	H_OK(r);
	json_t *f = json_object_get(r, "last_failures");
	ck_assert_int_eq(json_array_size(f), 1);
	ck_assert_str_eq(h_str(json_array_get(f, 0), "reason"), "exited with status 5");
	ck_assert_int_gt(h_int(json_array_get(f, 0), "worker"), 0);
	ck_assert_int_gt(h_int(json_array_get(f, 0), "ts_ms"), 0);
	ck_assert_int_eq(h_int(json_object_get(r, "backoff"), "recent_crashes"), 1);
	ck_assert_str_eq(h_str(json_object_get(r, "type"), "mode"), "native");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"describe\",\"type\":\"nope\"}");
	H_ERR(r, "unknown_type");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"describe\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Replies of n pipelined echo calls on c, all ok. */
static void calls_all_ok(struct hc *c, const json_int_t *ids, int n)
{
	for (int i = 0; i < n; i++) {
		json_t *r = hc_wait_id(c, ids[i], 20000, NULL);
		ck_assert_msg(r, "no reply to call %d", i);
		H_OK(r);
		json_decref(r);
	}
}

START_TEST(test_restart_type)
{
	struct hd d;
	struct hc c, k, w;
	enum { NCALLS = 200 };
	static json_int_t ids[NCALLS];
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\","
		  "\"pool\":{\"min\":2,\"max\":2,\"queue\":1000}}}}");
	hc_open(&c, &d);
	hc_open(&k, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *ws = h_wait_workers(&c, "echo", 2, true, 10000);
	json_int_t old0 = h_int(json_array_get(ws, 0), "id"),
		   old1 = h_int(json_array_get(ws, 1), "id");
	json_decref(ws);
	/* Calls keep coming while the workers are replaced: none fails. */
	for (int i = 0; i < NCALLS / 2; i++)
		ids[i] =
		    hc_sendf(&k, -1, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"%d\"}", i);
	json_int_t rid = hc_sendf(&c, -1, "{\"cmd\":\"restart\",\"type\":\"echo\"}");
	for (int i = NCALLS / 2; i < NCALLS; i++)
		ids[i] =
		    hc_sendf(&k, -1, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"%d\"}", i);
	json_t *r = hc_wait_id(&c, rid, 30000, NULL);
	H_OK(r);
	json_t *rs = json_object_get(r, "restarted");
	ck_assert_int_eq(json_array_size(rs), 2);
	ck_assert_int_eq(json_integer_value(json_array_get(rs, 0)) +
			     json_integer_value(json_array_get(rs, 1)),
			 old0 + old1);
	json_decref(r);
	calls_all_ok(&k, ids, NCALLS);
	/* Each old worker stopped only once a new one was ready. */
	int ready_new = 0;
	for (int stopped = 0; stopped < 2;) {
		json_t *ev = hc_next_event(&w, sid, 10000);
		ck_assert_msg(ev, "no more watch events");
		json_int_t wid = h_int(ev, "worker");
		const char *st = h_str(ev, "state");
		if (wid > old1 && wid > old0 && strcmp(st, "idle") == 0)
			ready_new++;
		if ((wid == old0 || wid == old1) && strcmp(st, "stopping") == 0) {
			stopped++;
			ck_assert_msg(ready_new >= stopped,
				      "worker %lld stopped before its replacement "
				      "was ready",
				      (long long)wid);
		}
		json_decref(ev);
	}
	ws = h_wait_workers(&c, "echo", 2, true, 10000);
	for (size_t i = 0; i < 2; i++)
		ck_assert_int_gt(h_int(json_array_get(ws, i), "id"), old0 > old1 ? old0 : old1);
	json_decref(ws);
	r = hc_rpc(&c, "{\"cmd\":\"stats\",\"type\":\"echo\"}");
	ck_assert_int_eq(h_int(r, "calls_ok"), NCALLS);
	ck_assert_int_eq(h_int(r, "calls_failed"), 0);
	ck_assert_int_eq(h_int(r, "crashed"), 0);
	json_decref(r);
	hc_close(&w);
	hc_close(&k);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_restart_worker)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1}}}}");
	hc_open(&c, &d);
	json_t *ws = h_wait_workers(&c, "echo", 1, true, 10000);
	json_int_t old = h_int(json_array_get(ws, 0), "id");
	json_decref(ws);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"restart\",\"worker\":%lld}", (long long)old);
	H_OK(r);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(r, "restarted"), 0)),
			 old);
	json_decref(r);
	ws = h_wait_workers(&c, "echo", 1, true, 10000);
	ck_assert_int_gt(h_int(json_array_get(ws, 0), "id"), old);
	json_decref(ws);
	r = hc_rpc(&c, "{\"cmd\":\"restart\",\"worker\":%lld}", (long long)old);
	H_ERR(r, "no_such_worker");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"restart\",\"type\":\"nope\"}");
	H_ERR(r, "unknown_type");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"restart\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_stats_type)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\"},"
		  "\"dies\":{\"exec\":[\"/bin/sh\",\"-c\",\"exit 5\"]}}}");
	hc_open(&c, &d);
	for (int i = 0; i < 3; i++) {
		json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}");
		H_OK(r);
		json_decref(r);
	}
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"dies\",\"payload\":\"x\"}");
	H_ERR(r, "unavailable");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stats\",\"type\":\"echo\"}");
	H_OK(r);
	ck_assert_int_eq(h_int(r, "calls_ok"), 3);
	ck_assert_int_eq(h_int(r, "calls_failed"), 0);
	ck_assert_int_eq(h_int(r, "spawned"), 1);
	ck_assert_int_gt(h_int(r, "call_p50_us"), 0);
	ck_assert_int_ge(h_int(r, "call_p999_us"), h_int(r, "call_p99_us"));
	ck_assert_int_eq(path_int(r, "failures", "unavailable"), 0);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stats\",\"type\":\"dies\"}");
	ck_assert_int_eq(h_int(r, "calls_ok"), 0);
	ck_assert_int_eq(h_int(r, "calls_failed"), 1);
	ck_assert_int_eq(path_int(r, "failures", "unavailable"), 1);
	ck_assert_int_eq(path_int(r, "failures", "timeout"), 0);
	ck_assert_int_eq(h_int(r, "crashed"), 1);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stats\"}");
	ck_assert_int_eq(h_int(r, "calls_ok"), 3);
	ck_assert_int_eq(path_int(r, "failures", "unavailable"), 1);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stats\",\"type\":\"nope\"}");
	H_ERR(r, "unknown_type");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Wait until `logs` (all workers) holds n lines; returns them (owned). */
static json_t *wait_lines(struct hc *c, size_t n)
{
	int64_t deadline = h_now_ms() + 10000;
	for (;;) {
		json_t *r = hc_rpc(c, "{\"cmd\":\"logs\"}");
		H_OK(r);
		json_t *l = json_incref(json_object_get(r, "lines"));
		json_decref(r);
		if (json_array_size(l) >= n || h_now_ms() > deadline)
			return l;
		json_decref(l);
		usleep(20000);
	}
}

START_TEST(test_logs_all_since)
{
	struct hd d;
	struct hc c, w;
	/* Workers that print and never become ready: their output is captured all the same. */
	hd_up(&d, "{\"types\":{"
		  "\"a\":{\"exec\":[\"/bin/sh\",\"-c\",\"echo from-a; exec sleep 60\"],"
		  "\"pool\":{\"min\":1}},"
		  "\"b\":{\"exec\":[\"/bin/sh\",\"-c\",\"echo from-b >&2; exec sleep 60\"],"
		  "\"pool\":{\"min\":1}}}}");
	hc_open(&c, &d);
	json_t *lines = wait_lines(&c, 2);
	ck_assert_int_eq(json_array_size(lines), 2);
	bool a = false, b = false;
	json_int_t last = 0;
	for (size_t i = 0; i < 2; i++) {
		json_t *l = json_array_get(lines, i);
		a |= strcmp(h_str(l, "text"), "from-a") == 0 &&
		     strcmp(h_str(l, "stream"), "stdout") == 0;
		b |= strcmp(h_str(l, "text"), "from-b") == 0 &&
		     strcmp(h_str(l, "stream"), "stderr") == 0;
		ck_assert_int_ge(h_int(l, "ts_ms"), last); /* oldest first */
		last = h_int(l, "ts_ms");
	}
	ck_assert(a && b);
	json_decref(lines);
	/* since_ms: only lines at or after it. */
	json_t *r = hc_rpc(&c, "{\"cmd\":\"logs\",\"since_ms\":%lld}", (long long)last);
	ck_assert_int_ge(json_array_size(json_object_get(r, "lines")), 1);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"since_ms\":%lld}", (long long)last + 1);
	ck_assert_int_eq(json_array_size(json_object_get(r, "lines")), 0);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"lines\":1}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "lines")), 1);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"type\":\"a\",\"since_ms\":0}");
	ck_assert_int_eq(json_array_size(json_object_get(r, "lines")), 1);
	ck_assert_str_eq(h_str(json_array_get(json_object_get(r, "lines"), 0), "text"), "from-a");
	json_decref(r);
	/* Following all workers: the lines of new workers of any type arrive. */
	hc_open(&w, &d);
	json_int_t sid = hc_sendf(&w, -1, "{\"cmd\":\"logs\",\"follow\":true,\"lines\":0}");
	r = hc_wait_id(&w, sid, 5000, NULL);
	H_OK(r);
	ck_assert_int_eq(json_array_size(json_object_get(r, "lines")), 0);
	json_decref(r);
	hc_sendf(&c, -1, "{\"cmd\":\"spawn\",\"type\":\"b\"}");
	json_t *ev = hc_next_event(&w, sid, 10000);
	ck_assert_msg(ev, "no log event");
	ck_assert_str_eq(h_str(ev, "text"), "from-b");
	json_decref(ev);
	hc_close(&w);
	/* Never ready: stop them quickly, not after the drain's default. */
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"type\":\"a\",\"timeout_ms\":100}");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"type\":\"b\",\"timeout_ms\":100}");
	json_decref(r);
	json_decref(h_wait_workers(&c, NULL, 0, false, 10000));
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-commands");
	h_add(s, test_describe, 30);
	h_add(s, test_restart_type, 60);
	h_add(s, test_restart_worker, 30);
	h_add(s, test_stats_type, 30);
	h_add(s, test_logs_all_since, 30);
	return h_main(s);
}
