/*
 * test_contract.c - the lifecycle contract of DESIGN.md ("Pools", `stop`,
 * `shutdown`, `watch`) kept exactly, against a real corrald: healthy deaths
 * are no crashes, backoff stays under its cap, a call never waits for a
 * worker that cannot start, `spawn` resumes the min refill, the drain
 * answers and ends, startup never holds the socket, a call's timeout is
 * capped by its type's.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* The uptime of worker id in `list`, or -1 when it is not listed. */
static json_int_t uptime_of(struct hc *c, json_int_t id)
{
	json_t *ws = h_list(c, NULL), *w;
	json_int_t up = -1;
	size_t i;
	json_array_foreach(ws, i, w)
	{
		if (h_int(w, "id") == id)
			up = h_int(w, "uptime_ms");
	}
	json_decref(ws);
	return up;
}

/* Kill worker (id, pid) from outside once it has served past healthy_ms (1000 by default). */
static void kill_when_healthy(struct hc *c, json_int_t id, pid_t pid)
{
	int64_t deadline = h_now_ms() + 10000;
	/* Being healthy takes time itself: no event says it, so poll its uptime. */
	while (uptime_of(c, id) < 1200 && h_now_ms() < deadline)
		usleep(50000);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
}

/* Killing workers that served past healthy_ms is no crash: each is replaced at once. */
START_TEST(test_healthy_deaths_are_no_crashes)
{
	struct hd d;
	struct hc c, w;
	/* burst 1 with a long first backoff: two crashes would stall the refill for 20 s. */
	hd_up(&d,
	      "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":2,\"max\":2},"
	      "\"restart\":{\"burst\":1,\"interval_ms\":60000,\"backoff_ms\":[20000,30000]}}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	for (int round = 0; round < 3; round++) {
		json_t *ws = h_wait_workers(&c, "echo", 2, true, 10000);
		json_t *victim = json_array_get(ws, 0);
		json_int_t id = h_int(victim, "id");
		kill_when_healthy(&c, id, (pid_t)h_int(victim, "pid"));
		json_decref(ws);
		json_t *ev = h_wait_state(&w, sid, id, "exited", 10000);
		ck_assert_str_eq(h_str(ev, "reason"), "killed by SIGKILL");
		json_decref(ev);
		/* Replaced at once, not after a backoff delay. */
		json_decref(h_wait_state(&w, sid, 0, "idle", 5000));
	}
	json_decref(h_wait_workers(&c, "echo", 2, true, 5000));
	json_t *r = hc_rpc(&c, "{\"cmd\":\"stats\"}");
	ck_assert_int_eq(h_int(r, "crashed"), 0);
	ck_assert_int_ge(h_int(r, "exited"), 3);
	json_decref(r);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A worker that dies young (within healthy_ms of ready) is a crash. */
START_TEST(test_young_deaths_are_crashes)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1,\"max\":1},"
		  "\"restart\":{\"healthy_ms\":600000}}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *ws = h_wait_workers(&c, "echo", 1, true, 10000);
	json_int_t id = h_int(json_array_get(ws, 0), "id");
	ck_assert_int_eq(kill((pid_t)h_int(json_array_get(ws, 0), "pid"), SIGKILL), 0);
	json_decref(ws);
	json_decref(h_wait_state(&w, sid, id, "exited", 10000));
	json_t *r = hc_rpc(&c, "{\"cmd\":\"stats\"}");
	ck_assert_int_eq(h_int(r, "crashed"), 1);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stats\",\"type\":\"echo\"}");
	ck_assert_int_eq(h_int(r, "crashed"), 1);
	json_decref(r);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* How many "next spawn in N ms" the daemon logged; the smallest and largest N. */
static unsigned backoff_delays(const struct hd *d, unsigned *ret_min, unsigned *ret_max)
{
	char *log = hd_log(d);
	unsigned n = 0;
	*ret_max = 0;
	*ret_min = ~0u;
	for (char *p = log; (p = strstr(p, "next spawn in ")); p++) {
		unsigned ms = (unsigned)strtoul(p + 14, NULL, 10);
		if (ms > *ret_max)
			*ret_max = ms;
		if (ms < *ret_min)
			*ret_min = ms;
		n++;
	}
	free(log);
	return n;
}

/*
 * Backoff delays carry jitter and stay within [backoff_ms[0], backoff_ms[1]],
 * jitter included; `describe` counts every crash of the interval, not only
 * the burst + 1 that decide on backoff.
 */
START_TEST(test_backoff_jitter_capped)
{
	struct hd d;
	struct hc c;
	unsigned n = 0, min = 0, max = 0;
	/* A worker that exits before ready: every start is a crash. */
	hd_up(&d, "{\"types\":{\"dud\":{\"exec\":[\"/bin/false\"],\"pool\":{\"min\":1,\"max\":1},"
		  "\"restart\":{\"burst\":0,\"interval_ms\":600000,\"backoff_ms\":[150,150]}}}}");
	int64_t deadline = h_now_ms() + 30000;
	while ((n = backoff_delays(&d, &min, &max)) < 12 && h_now_ms() < deadline)
		usleep(100000);
	ck_assert_msg(n >= 12, "only %u backoff delays logged", n);
	ck_assert_msg(max <= 150, "a backoff delay of %u ms, past backoff_ms[1] = 150", max);
	ck_assert_msg(min >= 150, "a backoff delay of %u ms, below backoff_ms[0] = 150", min);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"describe\",\"type\":\"dud\"}");
	H_OK(r);
	json_int_t recent = h_int(json_object_get(r, "backoff"), "recent_crashes");
	ck_assert_msg(recent >= 12, "recent_crashes %lld after %u crashes within the interval",
		      (long long)recent, n);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

#define UNSTARTABLE                                                                                \
	"{\"types\":{"                                                                             \
	"\"missing\":{\"exec\":[\"/opt/corral-test-missing/x\"]},"                                 \
	"\"dies\":{\"exec\":[\"/bin/false\"]},"                                                    \
	"\"deaf\":{\"exec\":[\"/bin/sleep\",\"60\"],\"limits\":{\"start_timeout_ms\":300}},"       \
	"\"nouser\":{\"mode\":\"stdio\",\"exec\":[\"/bin/cat\"],"                                  \
	"\"sandbox\":{\"user\":\"corral-no-such-user\"}}"                                          \
	"}}"

/* A call of type that waits for a worker that cannot start: unavailable at once, with why. */
static void expect_unavailable(struct hc *c, const char *type, const char *why)
{
	int64_t t0 = h_now_ms();
	json_int_t id = hc_sendf(
	    c, -1, "{\"cmd\":\"call\",\"type\":\"%s\",\"payload\":\"x\",\"timeout_ms\":60000}",
	    type);
	json_t *r = hc_wait_id(c, id, 10000, NULL);
	ck_assert_msg(r, "no reply for a call to %s within 10 s", type);
	H_ERR(r, "unavailable");
	ck_assert_msg(strstr(h_errmsg(r), why), "%s: message \"%s\" does not say \"%s\"", type,
		      h_errmsg(r), why);
	ck_assert_msg(h_now_ms() - t0 < 10000, "took %lld ms", (long long)(h_now_ms() - t0));
	json_decref(r);
}

START_TEST(test_unstartable_calls_unavailable)
{
	struct hd d;
	struct hc c;
	hd_up(&d, UNSTARTABLE);
	hc_open(&c, &d);
	expect_unavailable(&c, "missing",
			   "exec /opt/corral-test-missing/x: No such file or directory");
	expect_unavailable(&c, "dies", "exited with status 1 before ready");
	expect_unavailable(&c, "deaf", "start timeout");
	/* A sandbox.user that names nobody: no worker, rather than one as the daemon's uid. */
	expect_unavailable(&c, "nouser", "sandbox.user \"corral-no-such-user\" does not exist");
	/* Again: the next call spawns again and fails the same way, never waits. */
	expect_unavailable(&c, "dies", "exited with status 1 before ready");
	/* describe keeps the causes. */
	json_t *r = hc_rpc(&c, "{\"cmd\":\"describe\",\"type\":\"deaf\"}");
	H_OK(r);
	json_t *f = json_object_get(r, "last_failures");
	ck_assert_int_ge(json_array_size(f), 1);
	ck_assert_str_eq(h_str(json_array_get(f, 0), "reason"), "start timeout");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* `stop TYPE` pauses the min refill; `spawn TYPE` resumes it. */
START_TEST(test_spawn_resumes_min)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":2,\"max\":4}}}}");
	hc_open(&c, &d);
	json_decref(h_wait_workers(&c, "echo", 2, true, 10000));
	json_t *r = hc_rpc(&c, "{\"cmd\":\"stop\",\"type\":\"echo\"}");
	H_OK(r);
	json_decref(r);
	json_decref(h_wait_workers(&c, "echo", 0, false, 10000));
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\"}");
	H_OK(r);
	json_decref(r);
	/* min is 2 again: the refill brings the second one. */
	json_decref(h_wait_workers(&c, "echo", 2, true, 10000));
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

#define DRAIN_TYPES                                                                                \
	"{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1}},"                        \
	"\"slow\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"sleep 2; cat\"]},"            \
	"\"hang\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"exec sleep 60\"]}}}"

/* During the drain: read-only commands answer, the rest are shutting_down at once. */
START_TEST(test_drain_answers)
{
	struct hd d;
	struct hc c, s, n, f;
	hd_up(&d, DRAIN_TYPES);
	hc_open(&c, &d);
	json_decref(h_wait_workers(&c, "echo", 1, true, 10000));
	/* A follower that never reads, and a call in flight. */
	hc_open(&f, &d);
	hc_sendf(&f, -1, "{\"cmd\":\"logs\",\"follow\":true}");
	hc_open(&s, &d);
	json_int_t call =
	    hc_sendf(&s, -1, "{\"cmd\":\"call\",\"type\":\"slow\",\"payload\":\"x\"}");
	json_decref(h_wait_workers(&c, "slow", 1, false, 10000));
	int64_t t0 = h_now_ms();
	json_t *r = hc_rpc(&c, "{\"cmd\":\"shutdown\",\"timeout_ms\":20000}");
	H_OK(r);
	json_decref(r);
	ck_assert_msg(h_now_ms() - t0 < 1000, "shutdown replied after %lld ms",
		      (long long)(h_now_ms() - t0));
	/* A new client during the drain. */
	hc_open(&n, &d);
	static const char *const answer[] = {"ping", "types", "list", "stats"};
	for (size_t i = 0; i < 4; i++) {
		r = hc_rpc(&n, "{\"cmd\":\"%s\"}", answer[i]);
		H_OK(r);
		json_decref(r);
	}
	r = hc_rpc(&n, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}");
	H_ERR(r, "shutting_down");
	json_decref(r);
	r = hc_rpc(&n, "{\"cmd\":\"spawn\",\"type\":\"echo\"}");
	H_ERR(r, "shutting_down");
	json_decref(r);
	r = hc_rpc(&n, "{\"cmd\":\"reload\"}");
	H_ERR(r, "shutting_down");
	json_decref(r);
	/* The call in flight finishes, then the daemon exits 0; streams end. */
	r = hc_wait_id(&s, call, 15000, NULL);
	H_OK(r);
	json_decref(r);
	ck_assert(hd_wait_exit(&d, 5000));
	ck_assert_msg(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0, "status 0x%x", d.status);
	ck_assert(hc_wait_eof(&n, 5000));
	hc_close(&f);
	hc_close(&n);
	hc_close(&s);
	hc_close(&c);
}
END_TEST

/* A drain past its timeout: what is left is killed, the daemon exits 0 in time. */
START_TEST(test_drain_timeout)
{
	struct hd d;
	struct hc c, s, f;
	hd_up(&d, DRAIN_TYPES);
	hc_open(&c, &d);
	hc_open(&s, &d);
	json_int_t call =
	    hc_sendf(&s, -1, "{\"cmd\":\"call\",\"type\":\"hang\",\"payload\":\"x\"}");
	json_decref(h_wait_workers(&c, "hang", 1, false, 10000));
	/* A watcher that never reads while events keep coming, and a client that
	 * floods requests and never reads a reply. */
	hc_open(&f, &d);
	hc_sendf(&f, -1, "{\"cmd\":\"watch\"}");
	int flood = h_connect_path(d.sock);
	ck_assert_int_ge(flood, 0);
	static const char types[] = "{\"id\":1,\"cmd\":\"types\"}\n";
	for (int i = 0; i < 20000; i++)
		if (send(flood, types, sizeof(types) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			break;
	int64_t t0 = h_now_ms();
	json_t *r = hc_rpc(&c, "{\"cmd\":\"shutdown\",\"timeout_ms\":500}");
	H_OK(r);
	json_decref(r);
	ck_assert(hd_wait_exit(&d, 10000));
	int64_t took = h_now_ms() - t0;
	ck_assert_msg(took < 3000, "exit took %lld ms with timeout_ms 500", (long long)took);
	ck_assert_msg(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0, "status 0x%x", d.status);
	r = hc_wait_id(&s, call, 2000, NULL);
	ck_assert_msg(r && !h_ok(r), "the call in flight got no error reply: %s", h_dump(r));
	json_decref(r);
	close(flood);
	hc_close(&f);
	hc_close(&s);
	hc_close(&c);
}
END_TEST

/* With min 50 the socket answers ping at once: workers are spawned from the loop. */
START_TEST(test_startup_ping_fast)
{
	struct hd d;
	int n = h_small() ? 20 : 50;
	hd_init(&d,
		"{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":%d,\"max\":%d}}}}", n,
		n);
	const char *args[] = {"--socket", d.sock, "--config", d.cfg, NULL};
	d.pid = hd_spawn(&d, args);
	int fd = -1;
	int64_t deadline = h_now_ms() + 15000;
	while ((fd = h_connect_path(d.sock)) < 0 && h_now_ms() < deadline)
		usleep(1000);
	ck_assert_int_ge(fd, 0);
	int64_t t0 = h_now_ms();
	static const char ping[] = "{\"id\":1,\"cmd\":\"ping\"}\n";
	ck_assert_int_eq(write(fd, ping, sizeof(ping) - 1), (ssize_t)(sizeof(ping) - 1));
	char buf[512];
	ssize_t got = read(fd, buf, sizeof(buf));
	int64_t rtt = h_now_ms() - t0;
	ck_assert_int_gt(got, 0);
	fprintf(stderr, "startup ping with min=%d: %lld ms\n", n, (long long)rtt);
	ck_assert_msg(rtt < 100, "ping took %lld ms after listen (min %d)", (long long)rtt, n);
	close(fd);
	/* And the workers come all the same. */
	struct hc c;
	hc_open(&c, &d);
	json_decref(h_wait_workers(&c, "echo", (size_t)n, true, 60000));
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A call's own timeout_ms may shorten the type's limits.timeout_ms, never extend it. */
START_TEST(test_call_timeout_capped)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"hang\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\","
		  "\"exec sleep 60\"],\"limits\":{\"timeout_ms\":400}}}}");
	hc_open(&c, &d);
	int64_t t0 = h_now_ms();
	json_int_t id = hc_sendf(
	    &c, -1, "{\"cmd\":\"call\",\"type\":\"hang\",\"payload\":\"x\",\"timeout_ms\":60000}");
	json_t *r = hc_wait_id(&c, id, 10000, NULL);
	ck_assert_msg(r, "no reply within 10 s: the type's 400 ms did not cap the call's 60 s");
	H_ERR(r, "timeout");
	ck_assert_msg(strstr(h_errmsg(r), "after 400 ms"), "%s", h_errmsg(r));
	ck_assert_int_lt(h_now_ms() - t0, 10000);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* watch reasons are DESIGN's strings: a graceful stop, a worker's own exit, a timeout kill. */
START_TEST(test_watch_reasons)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\"},"
		  "\"dies\":{\"exec\":[\"/bin/sh\",\"-c\",\"exit 7\"]}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\"}");
	H_OK(r);
	json_int_t id = json_integer_value(json_array_get(json_object_get(r, "workers"), 0));
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"worker\":%lld}", (long long)id);
	H_OK(r);
	json_decref(r);
	json_t *ev = h_wait_state(&w, sid, id, "exited", 10000);
	ck_assert_str_eq(h_str(ev, "reason"), "exited with status 0");
	json_decref(ev);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"dies\",\"payload\":\"x\"}");
	H_ERR(r, "unavailable");
	json_decref(r);
	ev = h_wait_state(&w, sid, 0, "exited", 10000);
	ck_assert_str_eq(h_str(ev, "reason"), "exited with status 7");
	json_decref(ev);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-contract");
	h_add(s, test_healthy_deaths_are_no_crashes, 60);
	h_add(s, test_young_deaths_are_crashes, 30);
	h_add(s, test_backoff_jitter_capped, 60);
	h_add(s, test_unstartable_calls_unavailable, 60);
	h_add(s, test_spawn_resumes_min, 30);
	h_add(s, test_drain_answers, 60);
	h_add(s, test_drain_timeout, 30);
	h_add(s, test_startup_ping_fast, 120);
	h_add(s, test_call_timeout_capped, 30);
	h_add(s, test_watch_reasons, 30);
	return h_main(s);
}
