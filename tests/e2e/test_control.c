/*
 * test_control.c - the control protocol against a real corrald: command
 * replies and their fields, request validation, framing limits, fds riding
 * with requests, pipelining, peer credentials, the socket file.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* DESIGN.md's layer names, and no others. */
static const char *const layer_set[] = {"user",	 "pid",	    "net",    "ipc",	 "uts",
					"mount", "seccomp", "cgroup", "rlimits", NULL};

/* True when the object has exactly the given keys. */
static bool exact_keys(json_t *o, const char *const *keys)
{
	size_t n = 0;
	for (; keys[n]; n++)
		if (!json_object_get(o, keys[n]))
			return false;
	return json_object_size(o) == n;
}

/* Is s one of the sandbox layer names? */
static bool is_layer(const char *s)
{
	for (int i = 0; s && layer_set[i]; i++)
		if (strcmp(layer_set[i], s) == 0)
			return true;
	return false;
}

START_TEST(test_ping_fields)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"ping\"}");
	H_OK(r);
	ck_assert_msg(json_is_string(json_object_get(r, "version")) && *h_str(r, "version"),
		      "version: %s", h_dump(r));
	ck_assert_int_eq(h_int(r, "pid"), d.pid);
	ck_assert_int_ge(h_int(r, "uptime_ms"), 0);
	ck_assert_int_lt(h_int(r, "uptime_ms"), 60000);
	ck_assert_int_eq(h_int(r, "id"), 1);
	json_decref(r);
	/* A string id comes back as the same string. */
	const char line[] = "{\"id\":\"abc\",\"cmd\":\"ping\"}\n";
	hc_send_raw(&c, line, sizeof(line) - 1, -1);
	r = hc_next(&c, 10000, NULL);
	H_OK(r);
	ck_assert_str_eq(h_str(r, "id"), "abc");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_types_fields)
{
	struct hd d;
	struct hc c;
	hd_up(&d,
	      "{\"types\":{"
	      "\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1,\"max\":3,\"idle_timeout_ms\":"
	      "1234,\"max_requests\":7,\"queue\":9}},"
	      "\"cat\":{\"mode\":\"stdio\",\"exec\":[\"/bin/cat\"],\"pool\":{\"isolate\":\"key\","
	      "\"max_per_key\":2,\"max\":4}}}}");
	hc_open(&c, &d);
	h_wait_workers(&c, "echo", 1, true, 10000);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"types\"}");
	H_OK(r);
	json_t *types = json_object_get(r, "types");
	ck_assert_msg(json_is_array(types) && json_array_size(types) == 2, "%s", h_dump(r));
	static const char *const tkeys[] = {"name", "mode",   "pool",	 "workers",
					    "busy", "queued", "sandbox", NULL};
	static const char *const pkeys[] = {"min",   "max",	"idle_timeout_ms", "max_requests",
					    "queue", "isolate", "max_per_key",	   NULL};
	static const char *const skeys[] = {"active", "missing", NULL};
	bool seen_echo = false, seen_cat = false;
	size_t i;
	json_t *t;
	json_array_foreach(types, i, t)
	{
		ck_assert_msg(exact_keys(t, tkeys), "type keys: %s", h_dump(t));
		json_t *p = json_object_get(t, "pool");
		ck_assert_msg(exact_keys(p, pkeys), "pool keys: %s", h_dump(p));
		json_t *sb = json_object_get(t, "sandbox");
		ck_assert_msg(exact_keys(sb, skeys), "sandbox keys: %s", h_dump(sb));
		h_int(t, "workers");
		h_int(t, "busy");
		h_int(t, "queued");
		/* Every layer is either active or missing, named from the set, once. */
		int seen[16] = {0};
		for (const char *const *k = skeys; *k; k++) {
			json_t *a = json_object_get(sb, *k);
			ck_assert_msg(json_is_array(a), "sandbox.%s: %s", *k, h_dump(sb));
			size_t j;
			json_t *e;
			json_array_foreach(a, j, e)
			{
				const char *s = json_string_value(e);
				ck_assert_msg(is_layer(s), "bad layer name in %s", h_dump(sb));
				for (int q = 0; layer_set[q]; q++)
					if (strcmp(layer_set[q], s) == 0)
						seen[q]++;
			}
		}
		for (int q = 0; layer_set[q]; q++)
			ck_assert_msg(seen[q] <= 1, "layer %s listed twice: %s", layer_set[q],
				      h_dump(sb));
		const char *name = h_str(t, "name");
		if (strcmp(name, "echo") == 0) {
			seen_echo = true;
			ck_assert_str_eq(h_str(t, "mode"), "builtin");
			ck_assert_int_eq(h_int(p, "min"), 1);
			ck_assert_int_eq(h_int(p, "max"), 3);
			ck_assert_int_eq(h_int(p, "idle_timeout_ms"), 1234);
			ck_assert_int_eq(h_int(p, "max_requests"), 7);
			ck_assert_int_eq(h_int(p, "queue"), 9);
			ck_assert_str_eq(h_str(p, "isolate"), "none");
			ck_assert_int_eq(h_int(p, "max_per_key"), 1);
			ck_assert_int_eq(h_int(t, "workers"), 1);
			ck_assert_int_eq(h_int(t, "busy"), 0);
			ck_assert_int_eq(h_int(t, "queued"), 0);
		} else if (strcmp(name, "cat") == 0) {
			seen_cat = true;
			ck_assert_str_eq(h_str(t, "mode"), "stdio");
			/* Defaults from DESIGN.md. */
			ck_assert_int_eq(h_int(p, "min"), 0);
			ck_assert_int_eq(h_int(p, "max"), 4);
			ck_assert_int_eq(h_int(p, "idle_timeout_ms"), 10000);
			ck_assert_int_eq(h_int(p, "max_requests"), 0);
			ck_assert_int_eq(h_int(p, "queue"), 64);
			ck_assert_str_eq(h_str(p, "isolate"), "key");
			ck_assert_int_eq(h_int(p, "max_per_key"), 2);
			ck_assert_int_eq(h_int(t, "workers"), 0);
		}
	}
	ck_assert(seen_echo && seen_cat);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_list_fields)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\"}");
	H_OK(r);
	json_int_t id = json_integer_value(json_array_get(json_object_get(r, "workers"), 0));
	json_decref(r);
	json_t *ws = h_list(&c, NULL);
	ck_assert_int_eq(json_array_size(ws), 1);
	json_t *w = json_array_get(ws, 0);
	static const char *const keys[] = {"id",	"pid",	    "type",   "key",	"state",
					   "uptime_ms", "requests", "rss_kb", "cpu_ms", NULL};
	ck_assert_msg(exact_keys(w, keys), "list keys: %s", h_dump(w));
	ck_assert_int_eq(h_int(w, "id"), id);
	ck_assert_str_eq(h_str(w, "type"), "echo");
	ck_assert_msg(json_is_null(json_object_get(w, "key")), "key not null: %s", h_dump(w));
	ck_assert_str_eq(h_str(w, "state"), "idle");
	ck_assert_int_ge(h_int(w, "uptime_ms"), 0);
	ck_assert_int_eq(h_int(w, "requests"), 0);
	ck_assert_int_gt(h_int(w, "rss_kb"), 0);
	ck_assert_int_ge(h_int(w, "cpu_ms"), 0);
	pid_t pid = (pid_t)h_int(w, "pid");
	ck_assert(h_pid_alive(pid));
	json_decref(ws);
	/* list TYPE filters; an unknown type is unknown_type. */
	ws = h_list(&c, "sha256");
	ck_assert_int_eq(json_array_size(ws), 0);
	json_decref(ws);
	r = hc_rpc(&c, "{\"cmd\":\"list\",\"type\":\"nope\"}");
	H_ERR(r, "unknown_type");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_spawn)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"max\":3}}}}");
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\",\"count\":2}");
	H_OK(r);
	json_t *ids = json_object_get(r, "workers");
	ck_assert_msg(json_is_array(ids) && json_array_size(ids) == 2, "%s", h_dump(r));
	json_int_t a = json_integer_value(json_array_get(ids, 0));
	json_int_t b = json_integer_value(json_array_get(ids, 1));
	ck_assert_msg(a > 0 && b > 0 && a != b, "%s", h_dump(r));
	json_decref(r);
	/* Replied once ready: list shows both idle without waiting. */
	json_t *ws = h_list(&c, "echo");
	ck_assert_int_eq(json_array_size(ws), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *w = json_array_get(ws, i);
		ck_assert_msg(strcmp(h_str(w, "state"), "idle") == 0, "not idle: %s", h_dump(ws));
		json_int_t wid = h_int(w, "id");
		ck_assert(wid == a || wid == b);
	}
	json_decref(ws);
	/* Past max: busy, and nothing spawned. */
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\",\"count\":2}");
	H_ERR(r, "busy");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\"}");
	H_OK(r);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\"}");
	H_ERR(r, "busy");
	json_decref(r);
	ws = h_list(&c, "echo");
	ck_assert_int_eq(json_array_size(ws), 3);
	json_decref(ws);
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"nope\"}");
	H_ERR(r, "unknown_type");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_stop_worker)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\"}");
	H_OK(r);
	json_int_t id = json_integer_value(json_array_get(json_object_get(r, "workers"), 0));
	json_decref(r);
	json_t *ws = h_list(&c, NULL);
	pid_t pid = (pid_t)h_int(json_array_get(ws, 0), "pid");
	json_decref(ws);
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"worker\":%lld}", (long long)id);
	H_OK(r);
	json_t *st = json_object_get(r, "stopped");
	ck_assert_msg(json_is_array(st) && json_array_size(st) == 1 &&
			  json_integer_value(json_array_get(st, 0)) == id,
		      "%s", h_dump(r));
	json_decref(r);
	json_t *ev = h_wait_state(&w, sid, id, "exited", 10000);
	ck_assert_int_eq(h_int(ev, "pid"), pid);
	ck_assert_str_eq(h_str(ev, "type"), "echo");
	ck_assert_msg(h_str(ev, "reason"), "exited without reason: %s", h_dump(ev));
	json_decref(ev);
	ck_assert(h_wait_pid_gone(pid, 5000));
	ws = h_list(&c, NULL);
	ck_assert_msg(json_array_size(ws) == 0, "worker still listed: %s", h_dump(ws));
	json_decref(ws);
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"worker\":%lld}", (long long)id);
	H_ERR(r, "no_such_worker");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"kill\",\"worker\":%lld}", (long long)id);
	H_ERR(r, "no_such_worker");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"kill\",\"worker\":424242}");
	H_ERR(r, "no_such_worker");
	json_decref(r);
	/* stop TYPE stops all of them. */
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\",\"count\":2}");
	H_OK(r);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"type\":\"echo\"}");
	H_OK(r);
	ck_assert_int_eq(json_array_size(json_object_get(r, "stopped")), 2);
	json_decref(r);
	h_wait_workers(&c, "echo", 0, false, 10000);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Spawn one worker of type and kill it with sig; returns the exited event. */
static json_t *kill_with(struct hc *c, struct hc *w, json_int_t sid, const char *type,
			 const char *sig)
{
	json_t *r = hc_rpc(c, "{\"cmd\":\"spawn\",\"type\":\"%s\"}", type);
	H_OK(r);
	json_int_t id = json_integer_value(json_array_get(json_object_get(r, "workers"), 0));
	json_decref(r);
	if (sig)
		r = hc_rpc(c, "{\"cmd\":\"kill\",\"worker\":%lld,\"signal\":\"%s\"}", (long long)id,
			   sig);
	else
		r = hc_rpc(c, "{\"cmd\":\"kill\",\"worker\":%lld}", (long long)id);
	H_OK(r);
	json_decref(r);
	return h_wait_state(w, sid, id, "exited", 10000);
}

START_TEST(test_kill_reasons)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *ev = kill_with(&c, &w, sid, "echo", "SEGV");
	ck_assert_msg(h_str(ev, "reason") && strcmp(h_str(ev, "reason"), "killed by SIGSEGV") == 0,
		      "%s", h_dump(ev));
	json_decref(ev);
	ev = kill_with(&c, &w, sid, "echo", NULL);
	ck_assert_msg(h_str(ev, "reason") && strcmp(h_str(ev, "reason"), "killed by SIGKILL") == 0,
		      "%s", h_dump(ev));
	json_decref(ev);
	ev = kill_with(&c, &w, sid, "sha256", "TERM");
	ck_assert_msg(h_str(ev, "reason") &&
			  (strcmp(h_str(ev, "reason"), "killed by SIGTERM") == 0 ||
			   strncmp(h_str(ev, "reason"), "exited with status", 18) == 0),
		      "%s", h_dump(ev));
	json_decref(ev);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\"}");
	H_OK(r);
	json_int_t id = json_integer_value(json_array_get(json_object_get(r, "workers"), 0));
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"kill\",\"worker\":%lld,\"signal\":\"BOGUS\"}", (long long)id);
	H_ERR(r, "bad_request");
	json_decref(r);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_exit_status_reason)
{
	struct hd d;
	struct hc c, w;
	/* A native worker that exits 3 before its hello. */
	hd_up(&d, "{\"types\":{\"three\":{\"exec\":[\"/bin/sh\",\"-c\",\"exit 3\"],"
		  "\"restart\":{\"burst\":1000}}}}");
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"three\"}");
	ck_assert_msg(!h_ok(r), "spawn of a worker that never says hello succeeded: %s", h_dump(r));
	json_decref(r);
	json_t *ev = h_wait_state(&w, sid, 0, "exited", 10000);
	ck_assert_str_eq(h_str(ev, "type"), "three");
	ck_assert_msg(h_str(ev, "reason") &&
			  strcmp(h_str(ev, "reason"), "exited with status 3") == 0,
		      "%s", h_dump(ev));
	json_decref(ev);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_unknown_command_and_args)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"frobnicate\"}");
	H_ERR(r, "unknown_command");
	ck_assert_int_eq(h_int(r, "id"), c.next_id - 1);
	json_decref(r);
	r = hc_rpc(&c, "{}");
	H_ERR(r, "bad_request");
	ck_assert_int_eq(h_int(r, "id"), c.next_id - 1);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":42}");
	H_ERR(r, "bad_request");
	json_decref(r);
	/* Unknown argument: named in the message. */
	r = hc_rpc(&c, "{\"cmd\":\"ping\",\"verbose\":true}");
	H_ERR(r, "bad_request");
	ck_assert_msg(strstr(h_errmsg(r), "verbose"), "message does not name it: %s", h_dump(r));
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\",\"cuont\":2}");
	H_ERR(r, "bad_request");
	ck_assert_msg(strstr(h_errmsg(r), "cuont"), "message does not name it: %s", h_dump(r));
	json_decref(r);
	/* Wrong types. */
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\",\"count\":\"2\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":7}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":5}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\",\"count\":1.5}");
	H_ERR(r, "bad_request");
	json_decref(r);
	/* Out of range. */
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\",\"count\":0}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"spawn\",\"type\":\"echo\",\"count\":-1}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\",\"timeout_ms\":-1}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"type\":\"echo\",\"timeout_ms\":-5}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"shutdown\",\"timeout_ms\":-5}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"logs\",\"type\":\"echo\",\"lines\":-1}");
	H_ERR(r, "bad_request");
	json_decref(r);
	/* call needs exactly one payload. */
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(
	    &c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"a\",\"payload_b64\":\"YQ==\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload_b64\":\"!!!\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"nope\",\"payload\":\"a\"}");
	H_ERR(r, "unknown_type");
	json_decref(r);
	/* Still alive and serving. */
	r = hc_rpc(&c, "{\"cmd\":\"ping\"}");
	H_OK(r);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Send a raw line and expect a bad_request with id null; the connection stays. */
static void expect_null_bad_request(struct hc *c, const char *line, size_t len)
{
	hc_send_raw(c, line, len, -1);
	json_t *r = hc_wait_null(c, 10000);
	ck_assert_msg(r, "no id-null reply to %.*s", (int)len - 1, line);
	H_ERR(r, "bad_request");
	json_decref(r);
	r = hc_rpc(c, "{\"cmd\":\"ping\"}");
	H_OK(r);
	json_decref(r);
}

START_TEST(test_bad_lines)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	static const char *const lines[] = {
	    "{bad json\n",
	    "[1,2,3]\n",
	    "\"just a string\"\n",
	    "{\"cmd\":\"ping\"}\n",
	    "{\"id\":[1],\"cmd\":\"ping\"}\n",
	    "{\"id\":{\"a\":1},\"cmd\":\"ping\"}\n",
	    "{\"id\":true,\"cmd\":\"ping\"}\n",
	    "{\"id\":null,\"cmd\":\"ping\"}\n",
	    "{\"id\":1,\"cmd\":\"ping\"} trailing\n",
	    NULL,
	};
	for (int i = 0; lines[i]; i++)
		expect_null_bad_request(&c, lines[i], strlen(lines[i]));
	/* A NUL byte in the line. */
	static const char nul[] = "{\"id\":5,\"cmd\":\"ping\"}\0\n";
	expect_null_bad_request(&c, nul, sizeof(nul) - 1);
	static const char nul2[] = "{\"id\":5,\"cmd\":\"pi\0ng\"}\n";
	expect_null_bad_request(&c, nul2, sizeof(nul2) - 1);
	/* Empty lines are ignored or rejected, never fatal. */
	hc_send_raw(&c, "\n", 1, -1);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"ping\"}");
	H_OK(r);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_oversize_line)
{
	struct hd d;
	struct hc c, c2;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	size_t n = (1u << 20) + 4096;
	char *line = malloc(n + 64);
	int k = snprintf(line, 64, "{\"id\":1,\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"");
	memset(line + k, 'a', n - (size_t)k);
	memcpy(line + n, "\"}\n", 3);
	/* The daemon may close before reading it all: send without asserting. */
	size_t off = 0;
	while (off < n + 3) {
		ssize_t w = send(c.fd, line + off, n + 3 - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(line);
	json_t *r = hc_next(&c, 10000, NULL);
	ck_assert_msg(r, "no reply to an oversize line");
	H_ERR(r, "too_large");
	ck_assert_msg(json_is_null(json_object_get(r, "id")), "id not null: %s", h_dump(r));
	json_decref(r);
	ck_assert_msg(hc_wait_eof(&c, 10000), "connection not closed after too_large");
	hc_close(&c);
	/* The daemon lives on. */
	hc_open(&c2, &d);
	r = hc_rpc(&c2, "{\"cmd\":\"ping\"}");
	H_OK(r);
	json_decref(r);
	hc_close(&c2);
	hd_stop(&d, true);
}
END_TEST

/* How many of pid's fds point at a memfd named name. */
static int count_memfd_named(pid_t pid, const char *name)
{
	char dir[64], path[128], target[256];
	int n = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	for (int fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "%s/%d", dir, fd);
		ssize_t l = readlink(path, target, sizeof(target) - 1);
		if (l < 0)
			continue;
		target[l] = '\0';
		if (strstr(target, name))
			n++;
	}
	return n;
}

START_TEST(test_fd_with_ping)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"ping\"}");
	json_decref(r);
	int before = h_count_fds(d.pid);
	for (int i = 0; i < 50; i++) {
		int fd = memfd_create("e2e-stray-fd", MFD_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		r = hc_rpc_fd(&c, fd, NULL, "{\"cmd\":\"ping\"}");
		close(fd);
		H_ERR(r, "bad_request");
		json_decref(r);
	}
	/* Two fds on one call are also refused. */
	r = hc_rpc(&c, "{\"cmd\":\"list\"}");
	json_decref(r);
	ck_assert_int_eq(count_memfd_named(d.pid, "e2e-stray-fd"), 0);
	int after = h_count_fds(d.pid);
	ck_assert_msg(after <= before, "daemon fds grew from %d to %d", before, after);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A sealed memfd holding text. */
static int text_memfd(const char *text)
{
	int fd = memfd_create("e2e-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	return fd;
}

/* The bytes of a result fd, as a string (static buffer). */
static const char *fd_text(int fd)
{
	static char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Several lines and their fds in one sendmsg: each line that asks for an fd
 * gets the next one, in order; the last line gets what is left. */
START_TEST(test_fds_of_one_sendmsg)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	static const struct {
		const char *text;
		int nfds;
		const char *payloads[2];
		const char *want[3]; /* per line: the result, or an error code */
	} cases[] = {
	    {"{\"id\":1,\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\":true}\n"
	     "{\"id\":2,\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\":true}\n",
	     2,
	     {"one", "two"},
	     {"one", "two"}},
	    {"{\"id\":1,\"cmd\":\"ping\"}\n"
	     "{\"id\":2,\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\" : true}\n",
	     1,
	     {"four"},
	     {"", "four"}},
	    {"{\"id\":1,\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\":true}\n"
	     "{\"id\":2,\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"\\\"payload_fd\\\":true\"}"
	     "\n",
	     2,
	     {"five", "extra"},
	     {"five", "bad_request"}},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int fds[2];
		for (int i = 0; i < cases[k].nfds; i++)
			fds[i] = text_memfd(cases[k].payloads[i]);
		union {
			char buf[CMSG_SPACE(2 * sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov = {(void *)cases[k].text, strlen(cases[k].text)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.buf,
				    .msg_controllen =
					CMSG_SPACE((size_t)cases[k].nfds * sizeof(int))};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)cases[k].nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)cases[k].nfds * sizeof(int));
		ck_assert_int_eq(sendmsg(c.fd, &mh, MSG_NOSIGNAL), (ssize_t)strlen(cases[k].text));
		for (int i = 0; i < cases[k].nfds; i++)
			close(fds[i]);
		for (json_int_t id = 1; id <= 2; id++) {
			int rfd = -1;
			json_t *r = hc_wait_id(&c, id, 10000, &rfd);
			const char *want = cases[k].want[id - 1];
			ck_assert_msg(r, "case %zu: no reply %lld", k, (long long)id);
			if (strcmp(want, "bad_request") == 0) {
				H_ERR(r, "bad_request");
			} else {
				ck_assert_msg(h_ok(r), "case %zu line %lld: %s", k, (long long)id,
					      h_dump(r));
				if (*want) {
					ck_assert_msg(rfd >= 0, "case %zu: no result fd", k);
					ck_assert_str_eq(fd_text(rfd), want);
				}
			}
			if (rfd >= 0)
				close(rfd);
			json_decref(r);
		}
	}
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A client that shut only its writing side still reads: its last line (even
 * without a newline) is answered, its stream goes on. */
START_TEST(test_half_close)
{
	struct hd d;
	struct hc w, c, p;
	hd_up(&d, NULL);
	hc_open(&p, &d);
	const char ping[] = "{\"id\":7,\"cmd\":\"ping\"}";
	hc_send_raw(&p, ping, sizeof(ping) - 1, -1);
	ck_assert_int_eq(shutdown(p.fd, SHUT_WR), 0);
	json_t *r = hc_next(&p, 10000, NULL);
	ck_assert_msg(r, "no reply to a last line ended by EOF");
	H_OK(r);
	ck_assert_int_eq(h_int(r, "id"), 7);
	json_decref(r);
	ck_assert(hc_wait_eof(&p, 10000));
	hc_close(&p);

	json_int_t sid = hc_watch(&w, &d);
	ck_assert_int_eq(shutdown(w.fd, SHUT_WR), 0);
	hc_open(&c, &d);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}");
	H_OK(r);
	json_decref(r);
	json_t *ev = hc_next_event(&w, sid, 10000);
	ck_assert_msg(ev, "a half-closed watch got no event");
	json_decref(ev);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A client that closed goes at once, and with it the calls it left queued. */
START_TEST(test_hangup_drops_queued)
{
	struct hd d;
	struct hc c, q;
	hd_up(&d, "{\"types\":{\"hang\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\","
		  "\"exec sleep 60\"],\"pool\":{\"max\":1}}}}");
	hc_open(&c, &d);
	hc_open(&q, &d);
	for (int i = 0; i < 6; i++)
		hc_sendf(&q, -1, "{\"cmd\":\"call\",\"type\":\"hang\",\"payload\":\"x\"}");
	json_t *r = NULL;
	int64_t deadline = h_now_ms() + 10000;
	for (;;) { /* all six arrived: one running, five queued */
		r = hc_rpc(&c, "{\"cmd\":\"stats\",\"type\":\"hang\"}");
		if (h_int(r, "queued") == 5 || h_now_ms() > deadline)
			break;
		json_decref(r);
		usleep(20000);
	}
	ck_assert_int_eq(h_int(r, "queued"), 5);
	json_decref(r);
	hc_close(&q);
	deadline = h_now_ms() + 5000;
	for (;;) {
		r = hc_rpc(&c, "{\"cmd\":\"stats\",\"type\":\"hang\"}");
		if (h_int(r, "queued") == 0 || h_now_ms() > deadline)
			break;
		json_decref(r);
		usleep(20000);
	}
	ck_assert_msg(h_int(r, "queued") == 0, "calls of a closed client still queued: %s",
		      h_dump(r));
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* No reply line passes 1 MiB, not even one echoing a long id. */
START_TEST(test_reply_line_limit)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	size_t n = 1u << 20; /* the line, newline excluded */
	char *line = malloc(n + 1);
	const char head[] = "{\"cmd\":\"ping\",\"id\":\"", tail[] = "\"}";
	memcpy(line, head, sizeof(head) - 1);
	memset(line + sizeof(head) - 1, 'i', n - (sizeof(head) - 1) - (sizeof(tail) - 1));
	memcpy(line + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
	line[n] = '\n';
	hc_send_raw(&c, line, n + 1, -1);
	free(line);
	json_t *r = hc_next(&c, 10000, NULL);
	ck_assert_msg(r, "no reply");
	char *out = json_dumps(r, JSON_COMPACT);
	ck_assert_msg(strlen(out) <= n, "a reply line of %zu bytes", strlen(out));
	free(out);
	H_ERR(r, "too_large");
	ck_assert(json_is_null(json_object_get(r, "id")));
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"ping\"}");
	H_OK(r);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

#define FOLLOW_CFG                                                                                 \
	"{\"types\":{\"a\":{\"builtin\":\"echo\"},\"b\":{\"builtin\":\"echo\"},"                   \
	"\"c\":{\"builtin\":\"sha256\"}%s}}"
#define LATE_TYPE                                                                                  \
	",\"late\":{\"exec\":[\"/bin/sh\",\"-c\",\"echo late-line; exec sleep 60\"],"              \
	"\"pool\":{\"min\":1},\"limits\":{\"start_timeout_ms\":60000}}"

/* `logs` follow of every worker: types a reload adds too, and one end event. */
START_TEST(test_follow_all_workers)
{
	struct hd d;
	struct hc f, c;
	hd_up(&d, FOLLOW_CFG, "");
	hc_open(&f, &d);
	json_int_t sid = hc_sendf(&f, -1, "{\"cmd\":\"logs\",\"follow\":true,\"lines\":0}");
	json_t *r = hc_wait_id(&f, sid, 10000, NULL);
	H_OK(r);
	json_decref(r);
	hd_write_config(&d, FOLLOW_CFG, LATE_TYPE);
	hc_open(&c, &d);
	r = hc_rpc(&c, "{\"cmd\":\"reload\"}");
	H_OK(r);
	json_decref(r);
	json_t *ev = hc_next_event(&f, sid, 10000);
	ck_assert_msg(ev, "no log line of a type added by reload");
	ck_assert_str_eq(h_str(ev, "text"), "late-line");
	json_decref(ev);
	r = hc_rpc(&c, "{\"cmd\":\"shutdown\",\"timeout_ms\":2000}");
	H_OK(r);
	json_decref(r);
	unsigned ends = 0;
	json_t *l;
	while ((l = hc_next(&f, 10000, NULL))) {
		json_t *e = json_object_get(l, "event");
		if (e && json_object_get(e, "end"))
			ends++;
		json_decref(l);
	}
	ck_assert_msg(ends == 1, "%u end events on one stream", ends);
	ck_assert(hd_wait_exit(&d, 10000));
	hc_close(&f);
	hc_close(&c);
}
END_TEST

START_TEST(test_pipelining)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	char *buf = malloc(50 * 128);
	size_t len = 0;
	for (int i = 1; i <= 50; i++) {
		if (i % 3 == 0)
			len += (size_t)sprintf(buf + len, "{\"id\":%d,\"cmd\":\"ping\"}\n", i);
		else if (i % 3 == 1)
			len += (size_t)sprintf(buf + len,
					       "{\"id\":%d,\"cmd\":\"call\",\"type\":\"echo\","
					       "\"payload\":\"n%d\"}\n",
					       i, i);
		else
			len += (size_t)sprintf(buf + len, "{\"id\":%d,\"cmd\":\"list\"}\n", i);
	}
	hc_send_raw(&c, buf, len, -1);
	free(buf);
	int seen[51] = {0};
	for (int got = 0; got < 50;) {
		json_t *r = hc_next(&c, 30000, NULL);
		ck_assert_msg(r, "only %d of 50 pipelined replies", got);
		json_int_t id = h_int(r, "id");
		ck_assert_msg(id >= 1 && id <= 50, "%s", h_dump(r));
		ck_assert_msg(!seen[id], "two replies for id %lld", (long long)id);
		seen[id] = 1;
		H_OK(r);
		if (id % 3 == 1) {
			char want[16];
			snprintf(want, sizeof(want), "n%lld", (long long)id);
			ck_assert_str_eq(h_str(r, "result"), want);
		}
		json_decref(r);
		got++;
	}
	/* Nothing more before the reply to a sentinel. */
	hc_send_raw(&c, "{\"id\":1000,\"cmd\":\"ping\"}\n", 25, -1);
	json_t *r = hc_next(&c, 10000, NULL);
	ck_assert_msg(r && h_int(r, "id") == 1000, "extra reply: %s", h_dump(r));
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* In a child as uid 65534: connect, send a ping, report what came back. */
static int other_uid_ping(const char *sock, char *out, size_t outlen)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		int fd = h_connect_path(sock);
		if (fd < 0) {
			dprintf(p[1], "connect failed: %s", strerror(errno));
			_exit(11);
		}
		const char req[] = "{\"id\":1,\"cmd\":\"ping\"}\n";
		ssize_t w = send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL);
		(void)w;
		char buf[4096];
		size_t n = 0;
		bool eof = false;
		int64_t deadline = h_now_ms() + 10000;
		/* Read the first line and whether the daemon closed after it. */
		while (h_now_ms() < deadline && n < sizeof(buf) - 1) {
			struct pollfd pfd = {fd, POLLIN, 0};
			int64_t left = deadline - h_now_ms();
			if (poll(&pfd, 1, (int)left) <= 0)
				break;
			ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
			if (r <= 0) {
				eof = true;
				break;
			}
			n += (size_t)r;
			if (memchr(buf, '\n', n)) {
				/* Ok replies: stop at the line; denials: wait for EOF. */
				if (strstr(buf, "\"ok\":true"))
					break;
			}
		}
		buf[n] = '\0';
		dprintf(p[1], "%s%s", eof ? "EOF " : "", buf);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(p[0], out + n, outlen - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	return st;
}

START_TEST(test_unauthorized_peer)
{
	if (geteuid() != 0)
		return; /* needs root to become another uid */
	struct hd d;
	char out[4096];
	hd_init(&d, "{\"socket\":{\"mode\":\"0666\"},\"types\":{\"echo\":{\"builtin\":\"echo\"}}}");
	ck_assert_int_eq(chmod(d.dir, 0755), 0);
	hd_start(&d);
	struct stat st;
	ck_assert_int_eq(stat(d.sock, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0666);
	int status = other_uid_ping(d.sock, out, sizeof(out));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %x %s", status, out);
	ck_assert_msg(strncmp(out, "EOF ", 4) == 0, "connection not closed: %s", out);
	json_t *r = json_loads(out + 4, JSON_DISABLE_EOF_CHECK, NULL);
	ck_assert_msg(r, "not JSON: %s", out);
	H_ERR(r, "permission_denied");
	ck_assert_msg(json_is_null(json_object_get(r, "id")), "%s", h_dump(r));
	json_decref(r);
	hd_stop(&d, true);

	/* Allowed by uid: it works. */
	struct hd d2;
	hd_init(&d2, "{\"socket\":{\"mode\":\"0666\"},\"allow\":{\"uids\":[65534]},"
		     "\"types\":{\"echo\":{\"builtin\":\"echo\"}}}");
	ck_assert_int_eq(chmod(d2.dir, 0755), 0);
	hd_start(&d2);
	status = other_uid_ping(d2.sock, out, sizeof(out));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %x %s", status, out);
	r = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
	ck_assert_msg(r, "not JSON: %s", out);
	H_OK(r);
	json_decref(r);
	hd_stop(&d2, true);
}
END_TEST

START_TEST(test_socket_default_mode)
{
	struct hd d;
	hd_up(&d, NULL);
	struct stat st;
	ck_assert_int_eq(stat(d.sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_msg((st.st_mode & 0777) == 0660, "socket mode %o, want 0660", st.st_mode & 0777);
	hd_stop(&d, true);
	/* A clean exit removes the socket file. */
	ck_assert_msg(access(d.sock, F_OK) < 0, "socket file left after shutdown");
}
END_TEST

START_TEST(test_second_daemon_refused)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	const char *args[] = {"--socket", d.sock, NULL};
	pid_t p2 = hd_spawn(&d, args);
	int st = 0;
	int64_t deadline = h_now_ms() + 15000;
	pid_t r;
	while ((r = waitpid(p2, &st, WNOHANG)) == 0) {
		if (h_now_ms() > deadline) {
			kill(p2, SIGKILL);
			waitpid(p2, &st, 0);
			ck_abort_msg("a second corrald on the same socket kept running");
		}
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "second corrald: status 0x%x", st);
	char *log = hd_log(&d);
	ck_assert_msg(strstr(log, "already"), "no clear message in the log:\n%s", log);
	free(log);
	/* The first one still serves on the socket. */
	hc_open(&c, &d);
	json_t *rep = hc_rpc(&c, "{\"cmd\":\"ping\"}");
	H_OK(rep);
	ck_assert_int_eq(h_int(rep, "pid"), d.pid);
	json_decref(rep);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_stale_socket_replaced)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	kill(d.pid, SIGKILL);
	ck_assert(hd_wait_exit(&d, 10000));
	ck_assert_msg(access(d.sock, F_OK) == 0, "socket file should remain after SIGKILL");
	hd_start(&d);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"ping\"}");
	H_OK(r);
	ck_assert_int_eq(h_int(r, "pid"), d.pid);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_check_config)
{
	struct hd d;
	hd_init(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"max\":\"x\"}},"
		    "\"t\":{\"mode\":\"stdio\",\"exec\":[\"/bin/cat\"],\"ring_kb\":1000}}}");
	const char *argv[] = {h_corrald(), "--check-config", d.cfg, NULL};
	char *out = NULL, *err = NULL;
	int st = h_run(argv, NULL, 0, &out, NULL, &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "bad config accepted: %s%s", out, err);
	ck_assert_msg(strstr(out, "types.echo.pool.max") || strstr(err, "types.echo.pool.max"),
		      "no JSON path in: %s%s", out, err);
	ck_assert_msg(strstr(out, "types.t.ring_kb") || strstr(err, "types.t.ring_kb"),
		      "no JSON path in: %s%s", out, err);
	free(out);
	free(err);
	/* Unknown key, max < min. */
	hd_write_config(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":5,"
			    "\"max\":2},\"bogus\":1}}}");
	st = h_run(argv, NULL, 0, &out, NULL, &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "bad config accepted");
	ck_assert_msg(strstr(out, "types.echo.bogus") || strstr(err, "types.echo.bogus"),
		      "no JSON path in: %s%s", out, err);
	free(out);
	free(err);
	hd_write_config(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\"}}}");
	st = h_run(argv, NULL, 0, &out, NULL, &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "good config refused: %s%s", out, err);
	free(out);
	free(err);
	/* And a daemon refuses to start on a bad file. */
	hd_write_config(&d, "{\"types\":{\"echo\":{\"builtin\":\"nope\"}}}");
	const char *args[] = {"--socket", d.sock, "--config", d.cfg, NULL};
	d.pid = hd_spawn(&d, args);
	ck_assert(hd_wait_exit(&d, 15000));
	ck_assert_msg(WIFEXITED(d.status) && WEXITSTATUS(d.status) != 0, "status 0x%x", d.status);
}
END_TEST

START_TEST(test_stats_fields)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}");
	H_OK(r);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"nope\",\"payload\":\"x\"}");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stats\"}");
	H_OK(r);
	static const char *const keys[] = {
	    "spawned", "exited",  "crashed",	 "restarts",	"calls_ok",	"calls_failed",
	    "queued",  "workers", "call_p50_us", "call_p99_us", "call_p999_us", NULL};
	for (int i = 0; keys[i]; i++)
		ck_assert_int_ge(h_int(r, keys[i]), 0);
	ck_assert(json_is_object(json_object_get(r, "failures")));
	ck_assert_int_eq(json_object_size(r), 14); /* + id, ok */
	ck_assert_int_ge(h_int(r, "spawned"), 1);
	ck_assert_int_eq(h_int(r, "calls_ok"), 1);
	ck_assert_int_eq(h_int(r, "workers"), 1);
	ck_assert_int_gt(h_int(r, "call_p50_us"), 0);
	ck_assert_int_ge(h_int(r, "call_p99_us"), h_int(r, "call_p50_us"));
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-control");
	h_add(s, test_ping_fields, 60);
	h_add(s, test_types_fields, 60);
	h_add(s, test_list_fields, 60);
	h_add(s, test_spawn, 60);
	h_add(s, test_stop_worker, 60);
	h_add(s, test_kill_reasons, 60);
	h_add(s, test_exit_status_reason, 60);
	h_add(s, test_unknown_command_and_args, 60);
	h_add(s, test_bad_lines, 60);
	h_add(s, test_oversize_line, 60);
	h_add(s, test_fd_with_ping, 60);
	h_add(s, test_pipelining, 60);
	h_add(s, test_fds_of_one_sendmsg, 60);
	h_add(s, test_half_close, 60);
	h_add(s, test_hangup_drops_queued, 60);
	h_add(s, test_reply_line_limit, 60);
	h_add(s, test_follow_all_workers, 60);
	h_add(s, test_unauthorized_peer, 60);
	h_add(s, test_socket_default_mode, 60);
	h_add(s, test_second_daemon_refused, 60);
	h_add(s, test_stale_socket_replaced, 60);
	h_add(s, test_check_config, 60);
	h_add(s, test_stats_fields, 60);
	return h_main(s);
}
