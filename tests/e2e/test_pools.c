/*
 * test_pools.c - pools against a real corrald: on-demand spawning, max and
 * queue limits, idle reaping, min, recycling, key isolation, reload, and
 * shutdown with calls in flight.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

START_TEST(test_on_demand_spawn)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_t *ws = h_list(&c, NULL);
	ck_assert_int_eq(json_array_size(ws), 0);
	json_decref(ws);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}");
	H_OK(r);
	json_int_t wid = h_int(r, "worker");
	json_decref(r);
	ws = h_list(&c, NULL);
	ck_assert_int_eq(json_array_size(ws), 1);
	ck_assert_int_eq(h_int(json_array_get(ws, 0), "id"), wid);
	ck_assert_int_eq(h_int(json_array_get(ws, 0), "requests"), 1);
	json_decref(ws);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_max_never_exceeded)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, "{\"types\":{\"slow\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\","
		  "\"sleep 0.1; cat\"],\"pool\":{\"max\":2,\"queue\":64}}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_int_t ids[20];
	for (int i = 0; i < 20; i++)
		ids[i] =
		    hc_sendf(&c, -1, "{\"cmd\":\"call\",\"type\":\"slow\",\"payload\":\"p%d\"}", i);
	/* Track live workers through watch events while the calls run. */
	json_int_t live[64];
	int nlive = 0, maxlive = 0, answered = 0;
	int64_t deadline = h_now_ms() + 60000;
	while (answered < 20) {
		ck_assert_msg(h_now_ms() < deadline, "only %d of 20 answered", answered);
		json_t *ev;
		while ((ev = hc_next_event(&w, sid, 0))) {
			json_int_t wid = h_int(ev, "worker");
			const char *st = h_str(ev, "state");
			int k;
			for (k = 0; k < nlive && live[k] != wid; k++)
				;
			if (strcmp(st, "exited") == 0) {
				if (k < nlive)
					live[k] = live[--nlive];
			} else if (k == nlive && nlive < 64) {
				live[nlive++] = wid;
			}
			if (nlive > maxlive)
				maxlive = nlive;
			json_decref(ev);
		}
		json_t *r = hc_wait_id(&c, ids[answered], 50, NULL);
		if (!r)
			continue;
		H_OK(r);
		char want[8];
		snprintf(want, sizeof(want), "p%d", answered);
		ck_assert_str_eq(h_str(r, "result"), want);
		json_decref(r);
		answered++;
		json_t *t = hc_rpc(&c, "{\"cmd\":\"types\"}");
		json_t *ty = json_array_get(json_object_get(t, "types"), 0);
		ck_assert_msg(h_int(ty, "workers") <= 2, "%s", h_dump(t));
		ck_assert_msg(h_int(ty, "busy") <= 2, "%s", h_dump(t));
		json_decref(t);
	}
	ck_assert_msg(maxlive <= 2, "%d workers alive at once, max 2", maxlive);
	ck_assert_int_ge(maxlive, 1);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* max 1, queue 1, three concurrent slow calls: two served, one busy. */
static void queue_full(bool prespawn)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"slow\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\","
		  "\"sleep 0.3; cat\"],\"pool\":{\"max\":1,\"queue\":1}}}}");
	hc_open(&c, &d);
	if (prespawn) {
		json_t *r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"slow\"}");
		H_OK(r);
		json_decref(r);
	}
	json_int_t ids[3];
	for (int i = 0; i < 3; i++)
		ids[i] = hc_sendf(&c, -1, "{\"cmd\":\"call\",\"type\":\"slow\",\"payload\":\"x\"}");
	int ok = 0, busy = 0;
	char got[3][256];
	for (int i = 0; i < 3; i++) {
		json_t *r = hc_wait_id(&c, ids[i], 30000, NULL);
		ck_assert_msg(r, "call %d unanswered", i);
		snprintf(got[i], sizeof(got[i]), "%s", h_dump(r));
		if (h_ok(r))
			ok++;
		else if (strcmp(h_err(r), "busy") == 0)
			busy++;
		else
			ck_abort_msg("unexpected: %s", h_dump(r));
		json_decref(r);
	}
	ck_assert_msg(ok == 2 && busy == 1, "%d ok, %d busy: %s | %s | %s", ok, busy, got[0],
		      got[1], got[2]);
	hc_close(&c);
	hd_stop(&d, true);
}

START_TEST(test_queue_full_busy)
{
	queue_full(true);
}
END_TEST

/* The call that triggers an on-demand spawn is not "waiting in the queue". */
START_TEST(test_queue_full_busy_cold)
{
	queue_full(false);
}
END_TEST

START_TEST(test_idle_reaping_and_min)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":0,"
		  "\"idle_timeout_ms\":200}},"
		  "\"kept\":{\"builtin\":\"echo\",\"pool\":{\"min\":2,\"idle_timeout_ms\":100}}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	/* min 2 without any call. */
	json_t *ws = h_wait_workers(&c, "kept", 2, true, 10000);
	json_int_t k1 = h_int(json_array_get(ws, 0), "id"), k2 = h_int(json_array_get(ws, 1), "id");
	json_decref(ws);
	int64_t t0 = h_now_ms();
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}");
	H_OK(r);
	json_int_t wid = h_int(r, "worker");
	json_decref(r);
	json_t *ev = h_wait_state(&w, sid, wid, "exited", 10000);
	json_decref(ev);
	ck_assert_msg(h_now_ms() - t0 >= 150, "reaped after %lld ms, idle_timeout 200",
		      (long long)(h_now_ms() - t0));
	/* The min workers are still the same two (idle ones at min are not reaped). */
	ws = h_list(&c, "kept");
	ck_assert_int_eq(json_array_size(ws), 2);
	for (size_t i = 0; i < 2; i++) {
		json_int_t id = h_int(json_array_get(ws, i), "id");
		ck_assert(id == k1 || id == k2);
	}
	json_decref(ws);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_recycling)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"max\":1,"
		  "\"max_requests\":3}}}}");
	hc_open(&c, &d);
	json_int_t first = 0;
	for (int i = 0; i < 4; i++) {
		json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}");
		H_OK(r);
		json_int_t wid = h_int(r, "worker");
		json_decref(r);
		if (i == 0)
			first = wid;
		else if (i < 3)
			ck_assert_int_eq(wid, first);
		else
			ck_assert_msg(wid > first, "4th call on worker %lld (first %lld)",
				      (long long)wid, (long long)first);
	}
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_key_isolation)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"iso\":{\"builtin\":\"echo\",\"pool\":{\"isolate\":\"key\","
		  "\"max_per_key\":1,\"max\":4,\"min\":2}},"
		  "\"echo\":{\"builtin\":\"echo\"}}}");
	hc_open(&c, &d);
	/* An isolated type ignores min. */
	json_t *ws = h_list(&c, "iso");
	ck_assert_msg(json_array_size(ws) == 0, "isolated type spawned for min: %s", h_dump(ws));
	json_decref(ws);
	static const char *const keys[] = {"a", "b", "a", "b", "a"};
	json_int_t wa = 0, wb = 0;
	for (int i = 0; i < 5; i++) {
		json_t *r = hc_rpc(
		    &c, "{\"cmd\":\"call\",\"type\":\"iso\",\"payload\":\"x\",\"key\":\"%s\"}",
		    keys[i]);
		H_OK(r);
		json_int_t wid = h_int(r, "worker");
		json_decref(r);
		json_int_t *slot = keys[i][0] == 'a' ? &wa : &wb;
		if (!*slot)
			*slot = wid;
		ck_assert_msg(*slot == wid, "key %s moved from worker %lld to %lld", keys[i],
			      (long long)*slot, (long long)wid);
	}
	ck_assert_msg(wa != wb, "keys a and b share worker %lld", (long long)wa);
	ws = h_list(&c, "iso");
	ck_assert_int_eq(json_array_size(ws), 2);
	size_t i;
	json_t *w;
	json_array_foreach(ws, i, w)
	{
		const char *k = h_str(w, "key");
		ck_assert_msg(k, "isolated worker without key: %s", h_dump(w));
		ck_assert_int_eq(h_int(w, "id"), strcmp(k, "a") == 0 ? wa : wb);
	}
	json_decref(ws);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"iso\",\"payload\":\"x\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\",\"key\":\"a\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"iso\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	/* More keys than max: idle workers of other keys make room; the call is served. */
	for (int k = 0; k < 6; k++) {
		r = hc_rpc(
		    &c, "{\"cmd\":\"call\",\"type\":\"iso\",\"payload\":\"x\",\"key\":\"k%d\"}", k);
		H_OK(r);
		json_decref(r);
		ws = h_list(&c, "iso");
		ck_assert_msg(json_array_size(ws) <= 4, "more than max: %s", h_dump(ws));
		json_decref(ws);
	}
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

#define RELOAD_A                                                                                   \
	"{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"max\":4}},"                        \
	"\"t1\":{\"builtin\":\"echo\"},"                                                           \
	"\"slow\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"sleep 0.3; cat\"],"           \
	"\"pool\":{\"max\":4}}}}"
#define RELOAD_B                                                                                   \
	"{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"max\":2}},"                        \
	"\"t2\":{\"builtin\":\"sha256\"},"                                                         \
	"\"slow\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"sleep 0.3; cat\"],"           \
	"\"pool\":{\"max\":3}}}}"

/* Is name in the JSON array of strings a? */
static bool has_name(json_t *a, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) if (json_is_string(v) &&
					strcmp(json_string_value(v), name) == 0) return true;
	return false;
}

START_TEST(test_reload)
{
	struct hd d;
	struct hc c;
	hd_up(&d, RELOAD_A);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"t1\",\"payload\":\"x\"}");
	H_OK(r);
	json_decref(r);
	/* Calls in flight on a type the reload changes. */
	json_int_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] =
		    hc_sendf(&c, -1, "{\"cmd\":\"call\",\"type\":\"slow\",\"payload\":\"s%d\"}", i);
	hd_write_config(&d, RELOAD_B);
	r = hc_rpc(&c, "{\"cmd\":\"reload\"}");
	H_OK(r);
	json_t *added = json_object_get(r, "added"), *removed = json_object_get(r, "removed"),
	       *changed = json_object_get(r, "changed");
	ck_assert_msg(json_array_size(added) == 1 && has_name(added, "t2"), "%s", h_dump(r));
	ck_assert_msg(json_array_size(removed) == 1 && has_name(removed, "t1"), "%s", h_dump(r));
	ck_assert_msg(json_array_size(changed) == 2 && has_name(changed, "echo") &&
			  has_name(changed, "slow"),
		      "%s", h_dump(r));
	json_decref(r);
	for (int i = 0; i < 4; i++) {
		r = hc_wait_id(&c, ids[i], 30000, NULL);
		ck_assert_msg(r, "in-flight call %d lost across reload", i);
		H_OK(r);
		char want[8];
		snprintf(want, sizeof(want), "s%d", i);
		ck_assert_str_eq(h_str(r, "result"), want);
		json_decref(r);
	}
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"t2\",\"payload\":\"abc\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"),
			 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"t1\",\"payload\":\"x\"}");
	H_ERR(r, "unknown_type");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"types\"}");
	json_t *t;
	size_t i;
	json_array_foreach(json_object_get(r, "types"), i,
			   t) if (strcmp(h_str(t, "name"), "echo") == 0)
	    ck_assert_int_eq(h_int(json_object_get(t, "pool"), "max"), 2);
	json_decref(r);
	/* A bad file: reload fails, the old config keeps serving. */
	hd_write_config(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"max\":0}}}}");
	r = hc_rpc(&c, "{\"cmd\":\"reload\"}");
	ck_assert_msg(!h_ok(r), "bad config reloaded: %s", h_dump(r));
	ck_assert_msg(strstr(h_errmsg(r), "types.echo.pool.max"), "no JSON path: %s", h_dump(r));
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"t2\",\"payload\":\"abc\"}");
	H_OK(r);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"still\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "still");
	json_decref(r);
	/* SIGHUP reloads too: back to A. */
	hd_write_config(&d, RELOAD_A);
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	int64_t deadline = h_now_ms() + 10000;
	for (;;) {
		r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"t1\",\"payload\":\"x\"}");
		bool done = h_ok(r);
		json_decref(r);
		if (done)
			break;
		ck_assert_msg(h_now_ms() < deadline, "SIGHUP did not reload");
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_shutdown_with_call_in_flight)
{
	struct hd d;
	struct hc c, c2, w;
	hd_up(&d, "{\"types\":{\"slow\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\","
		  "\"sleep 0.5; cat\"]},\"echo\":{\"builtin\":\"echo\"}}}");
	hc_open(&c, &d);
	hc_open(&c2, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_int_t q =
	    hc_sendf(&c, -1, "{\"cmd\":\"call\",\"type\":\"slow\",\"payload\":\"done\"}");
	json_t *ev = h_wait_state(&w, sid, 0, "busy", 10000);
	pid_t pid = (pid_t)h_int(ev, "pid");
	json_decref(ev);
	json_t *r = hc_rpc(&c2, "{\"cmd\":\"shutdown\"}");
	H_OK(r);
	json_decref(r);
	r = hc_rpc(&c2, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"late\"}");
	H_ERR(r, "shutting_down");
	json_decref(r);
	r = hc_wait_id(&c, q, 20000, NULL);
	ck_assert_msg(r, "in-flight call lost at shutdown");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "done");
	json_decref(r);
	ck_assert_msg(hd_wait_exit(&d, 20000), "daemon did not exit");
	ck_assert_msg(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0, "status 0x%x", d.status);
	ck_assert(h_wait_pid_gone(pid, 5000));
	hc_close(&w);
	hc_close(&c2);
	hc_close(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-pools");
	h_add(s, test_on_demand_spawn, 60);
	h_add(s, test_max_never_exceeded, 120);
	h_add(s, test_queue_full_busy, 60);
	h_add(s, test_queue_full_busy_cold, 60);
	h_add(s, test_idle_reaping_and_min, 60);
	h_add(s, test_recycling, 60);
	h_add(s, test_key_isolation, 60);
	h_add(s, test_reload, 120);
	h_add(s, test_shutdown_with_call_in_flight, 60);
	return h_main(s);
}
