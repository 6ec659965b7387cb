/*
 * test_fairness.c - no client, stream follower or chatty worker can starve
 * the others (DESIGN.md "Principles for the internals", issue 10 items 4-6).
 *
 * Each test runs a real corrald with real hostile peers: clients that
 * pipeline requests and never read, `logs -f` followers that never read while
 * a worker prints 400k lines, a worker that writes to stdout in a tight loop.
 * The bounds on reply times are safety bounds far above what a fair daemon
 * needs (the real figures are bench-hostile's); they only catch a daemon that
 * stalls.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define NFLOOD	      16
#define PROMPT_MS     1000 /* a reply slower than this is a stall, not unfairness */
#define RSS_GROWTH_KB (8 * 1024)

/* The chatty worker binary (from meson). */
static const char *h_chatty(void)
{
	const char *v = getenv("CHATTY");
	ck_assert_msg(v && *v, "$CHATTY not set (run through meson test)");
	return v;
}

/* A "VmXXX:" field of /proc/PID/status in KiB. */
static long status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long kb = -1;
	size_t n = strlen(field);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			kb = strtol(line + n + 1, NULL, 10);
	fclose(f);
	ck_assert_int_ge(kb, 0);
	return kb;
}

/* One ping on c; asserts its reply comes within PROMPT_MS; returns the RTT in ms. */
static int64_t prompt_ping(struct hc *c)
{
	int64_t t0 = h_now_ms();
	json_int_t id = hc_sendf(c, -1, "{\"cmd\":\"ping\"}");
	json_t *r = hc_wait_id(c, id, PROMPT_MS, NULL);
	int64_t dt = h_now_ms() - t0;
	ck_assert_msg(r, "no reply to ping within %d ms", PROMPT_MS);
	H_OK(r);
	json_decref(r);
	return dt;
}

/* Wait until the daemon's log holds needle; bounded. */
static bool wait_log(const struct hd *d, const char *needle, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	for (;;) {
		char *log = hd_log(d);
		bool found = log && strstr(log, needle);
		free(log);
		if (found)
			return true;
		if (h_now_ms() > deadline)
			return false;
		usleep(20000); /* a log file has no event to wait for */
	}
}

/* True when the daemon closed fd (hang-up) within timeout_ms; reads nothing. */
static bool wait_hup(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};
	int64_t deadline = h_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - h_now_ms();
		if (left < 0)
			return false;
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0 && (p.revents & (POLLHUP | POLLRDHUP)))
			return true;
		if (n == 0)
			return false;
	}
}

/*
 * A client that pipelines pings as fast as the socket takes them and never
 * reads a reply; writes a byte to ready once 128 KiB are out.
 */
static _Noreturn void flooder(const char *sock, int ready)
{
	static const char ping[] = "{\"id\":1,\"cmd\":\"ping\"}\n";
	static char buf[65536];
	size_t len = 0, sent = 0;
	bool told = false;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = h_connect_path(sock);
	if (fd < 0)
		_exit(1);
	while (len + sizeof(ping) - 1 <= sizeof(buf)) {
		memcpy(buf + len, ping, sizeof(ping) - 1);
		len += sizeof(ping) - 1;
	}
	for (;;) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w <= 0)
			_exit(0); /* dropped */
		sent += (size_t)w;
		if (!told && sent >= 128 * 1024) {
			told = write(ready, "x", 1) == 1;
		}
	}
}

/* Item 4: 16 clients flood pings and never read; a bystander's pings stay prompt. */
START_TEST(flooders_do_not_starve_a_bystander)
{
	struct hd d;
	struct hc c;
	pid_t kids[NFLOOD];
	int ready[2];

	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_decref(hc_rpc(&c, "{\"cmd\":\"ping\"}"));
	long rss0 = status_kb(d.pid, "VmRSS");
	ck_assert_int_eq(pipe(ready), 0);
	for (int i = 0; i < NFLOOD; i++) {
		kids[i] = fork();
		ck_assert_int_ge(kids[i], 0);
		if (kids[i] == 0) {
			close(ready[0]);
			flooder(d.sock, ready[1]);
		}
	}
	close(ready[1]);
	for (int i = 0; i < NFLOOD; i++) {
		char b;
		ck_assert_msg(read(ready[0], &b, 1) == 1, "a flooder died before it got going");
	}
	int64_t worst = 0;
	for (int i = 0; i < 50; i++) {
		int64_t dt = prompt_ping(&c);
		if (dt > worst)
			worst = dt;
	}
	/* A bystander's call is served too. */
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"hi\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "hi");
	json_decref(r);
	/* Flooders are paused, not fed: the daemon holds a bounded backlog for each. */
	long growth = status_kb(d.pid, "VmHWM") - rss0;
	/* (A sanitizer's quarantine keeps freed memory: no bound to check there.) */
	ck_assert_msg(h_small() || growth <= 32 * 1024, "daemon RSS grew %ld KiB under the flood",
		      growth);
	fprintf(stderr, "flood: worst bystander ping %lld ms, daemon RSS +%ld KiB\n",
		(long long)worst, growth);
	for (int i = 0; i < NFLOOD; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	close(ready[0]);
	prompt_ping(&c);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Item 4: a client paused over its soft limit is resumed as it reads: no reply lost. */
START_TEST(paused_client_resumes)
{
	struct hd d;
	struct hc c;
	int n = h_small() ? 5000 : 20000;
	static const char ping[] = "{\"id\":7,\"cmd\":\"ping\"}\n";

	hd_up(&d, NULL);
	hc_open(&c, &d);
	size_t len = (sizeof(ping) - 1) * (size_t)n;
	char *buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < n; i++)
		memcpy(buf + (size_t)i * (sizeof(ping) - 1), ping, sizeof(ping) - 1);
	/* Written by a child: the daemon stops reading us long before all is sent. */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		ssize_t w = 0;
		for (size_t off = 0; off < len && w >= 0; off += (size_t)w)
			w = send(c.fd, buf + off, len - off, MSG_NOSIGNAL);
		_exit(w < 0);
	}
	for (int i = 0; i < n; i++) {
		json_t *r = hc_next(&c, 30000, NULL);
		ck_assert_msg(r, "reply %d of %d never came", i + 1, n);
		H_OK(r);
		json_decref(r);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer failed");
	prompt_ping(&c);
	free(buf);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* The config of a `chatty` type printing count lines of len bytes in mode (exit/serve). */
static void up_chatty(struct hd *d, const char *count, const char *len, const char *mode, int min)
{
	hd_up(d,
	      "{\"types\":{\"echo\":{\"builtin\":\"echo\"},"
	      "\"chatty\":{\"exec\":[\"%s\",\"%s\",\"%s\",\"%s\"],"
	      "\"pool\":{\"min\":%d,\"max\":1},\"restart\":{\"burst\":100},"
	      "\"limits\":{\"start_timeout_ms\":120000}}}}",
	      h_chatty(), count, len, mode, min);
}

/* Open a `logs -f` follower of type chatty; its ok reply is read, nothing after. */
static void open_follower(struct hc *f, const struct hd *d)
{
	hc_open(f, d);
	json_t *r = hc_rpc(f, "{\"cmd\":\"logs\",\"type\":\"chatty\",\"lines\":0,\"follow\":true}");
	H_OK(r);
	json_decref(r);
}

/* Spawn the chatty worker (exit mode) and wait until it has printed all and exited. */
static void run_chatty(struct hc *c, struct hc *w, json_int_t sid)
{
	hc_sendf(c, -1, "{\"cmd\":\"spawn\",\"type\":\"chatty\"}");
	json_decref(h_wait_state(w, sid, 0, "exited", 120000));
}

/* Item 5: followers that never read are dropped; the daemon's memory stays flat. */
START_TEST(stalled_followers_are_dropped)
{
	struct hd d;
	struct hc c, w, f1, f2;

	up_chatty(&d, h_small() ? "100000" : "400000", "200", "exit", 0);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	open_follower(&f1, &d);
	open_follower(&f2, &d);
	json_decref(hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"warm\"}"));
	long rss0 = status_kb(d.pid, "VmRSS");
	run_chatty(&c, &w, sid);
	ck_assert_msg(wait_hup(f1.fd, 30000), "a follower that never reads was not dropped");
	ck_assert_msg(wait_hup(f2.fd, 30000), "a follower that never reads was not dropped");
	long growth = status_kb(d.pid, "VmHWM") - rss0;
	fprintf(stderr, "stalled followers: daemon RSS +%ld KiB\n", growth);
	ck_assert_msg(h_small() || growth <= RSS_GROWTH_KB, "daemon RSS grew %ld KiB (bound %d)",
		      growth, RSS_GROWTH_KB);
	prompt_ping(&c);
	hc_close(&f1);
	hc_close(&f2);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Item 5: a follower that fell behind and reads again gets whole lines, a final event, EOF. */
START_TEST(dropped_follower_hears_why)
{
	struct hd d;
	struct hc c, w, f;

	up_chatty(&d, h_small() ? "100000" : "400000", "200", "exit", 0);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	open_follower(&f, &d);
	hc_sendf(&c, -1, "{\"cmd\":\"spawn\",\"type\":\"chatty\"}");
	ck_assert_msg(wait_log(&d, "fell behind", 60000), "the follower was not dropped");
	json_t *last = NULL, *j;
	size_t n = 0;
	while ((j = hc_next(&f, 10000, NULL))) {
		ck_assert_msg(json_is_object(j), "a follower got a broken line");
		json_decref(last);
		last = j;
		n++;
	}
	ck_assert_msg(f.eof, "the dropped follower's connection stayed open");
	ck_assert_msg(last, "nothing came");
	json_t *ev = json_object_get(last, "event");
	ck_assert_msg(json_is_string(json_object_get(ev, "end")),
		      "last line is not an end event: %s", h_dump(last));
	fprintf(stderr, "dropped follower: %zu lines, then %s\n", n, h_dump(last));
	json_decref(last);
	json_decref(h_wait_state(&w, sid, 0, "exited", 120000));
	prompt_ping(&c);
	hc_close(&f);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Item 6: a worker printing without end; control replies stay prompt, drops are counted. */
START_TEST(chatty_worker_does_not_stall_control)
{
	struct hd d;
	struct hc c;

	up_chatty(&d, "0", "100", "serve", 1);
	hc_open(&c, &d);
	json_decref(h_wait_workers(&c, "chatty", 1, true, 30000));
	for (int i = 0; i < 20; i++)
		prompt_ping(&c);
	json_int_t id =
	    hc_sendf(&c, -1, "{\"cmd\":\"call\",\"type\":\"chatty\",\"payload\":\"x\"}");
	json_t *r = hc_wait_id(&c, id, 5000, NULL);
	ck_assert_msg(r, "no reply to a call of the chatty worker");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "x");
	json_decref(r);
	ck_assert_msg(wait_log(&d, "lines suppressed", 20000),
		      "the daemon log does not count suppressed lines");
	int64_t t0 = h_now_ms();
	id = hc_sendf(&c, -1, "{\"cmd\":\"shutdown\",\"timeout_ms\":5000}");
	r = hc_wait_id(&c, id, PROMPT_MS, NULL);
	ck_assert_msg(r, "no reply to shutdown within %d ms", PROMPT_MS);
	H_OK(r);
	json_decref(r);
	ck_assert_msg(hd_wait_exit(&d, 20000), "corrald did not exit");
	fprintf(stderr, "chatty: shutdown replied, exited after %lld ms\n",
		(long long)(h_now_ms() - t0));
	ck_assert_msg(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0, "exit status 0x%x",
		      d.status);
	hc_close(&c);
}
END_TEST

/* Send one raw request line; the reply with its id (owned). */
static json_t *raw_rpc(struct hc *c, const char *line, size_t len, json_int_t id)
{
	hc_send_raw(c, line, len, -1);
	json_t *r = hc_wait_id(c, id, 30000, NULL);
	ck_assert_msg(r, "no reply to request %lld", (long long)id);
	return r;
}

/*
 * Item 7: a large payload_b64 takes the daemon's fast path past the JSON
 * parser; whatever the line looks like, the bytes and the errors are the
 * ordinary path's.
 */
START_TEST(large_inline_payloads)
{
	struct hd d;
	struct hc c;
	size_t n = 512 * 1024;
	unsigned char *data = malloc(n);
	ck_assert_ptr_nonnull(data);
	h_pattern(data, 0, n);
	char *b64 = h_b64(data, n);
	size_t bl = strlen(b64);
	char *line = malloc(bl + 512);
	ck_assert_ptr_nonnull(line);

	hd_up(&d, NULL);
	hc_open(&c, &d);
	/* Key order, nesting before it, whitespace: the result is the payload. */
	static const char *const shapes[] = {
	    "{\"id\":1,\"cmd\":\"call\",\"type\":\"echo\",\"payload_b64\":\"%s\"}\n",
	    "{ \"payload_b64\" : \"%s\" , \"cmd\":\"call\", \"id\":1, \"type\":\"echo\" }\n",
	    ("{\"id\":1,\"key\\\"x\":{\"a\":[1,{\"payload_b64\":\"Zg==\"}]},\"cmd\":\"call\","
	     "\"type\":\"echo\",\"payload_b64\":\"%s\"}\n"),
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		int len = snprintf(line, bl + 512, shapes[i], b64);
		json_t *r = raw_rpc(&c, line, (size_t)len, 1);
		if (i == 2) {
			/* An argument the command does not know, named as usual. */
			H_ERR(r, "bad_request");
			json_decref(r);
			continue;
		}
		H_OK(r);
		size_t rn = 0;
		unsigned char *res = h_unb64(h_str(r, "result_b64"), &rn);
		ck_assert_uint_eq(rn, n);
		ck_assert_msg(memcmp(res, data, n) == 0, "shape %zu: result differs", i);
		free(res);
		json_decref(r);
	}
	/* Escapes inside the text take the ordinary path, with the same result. */
	int len = snprintf(
	    line, bl + 512,
	    "{\"id\":2,\"cmd\":\"call\",\"type\":\"echo\",\"payload_b64\":\"\\u0041%s\"}\n",
	    b64 + 1);
	json_t *r = raw_rpc(&c, line, (size_t)len, 2);
	H_OK(r);
	json_decref(r);
	/* Twice the key: a duplicate, as the JSON parser says. */
	len = snprintf(line, bl + 512,
		       "{\"id\":3,\"cmd\":\"call\",\"type\":\"echo\",\"payload_b64\":\"%s\","
		       "\"payload_b64\":\"Zg==\"}\n",
		       b64);
	hc_send_raw(&c, line, (size_t)len, -1);
	r = hc_wait_null(&c, 30000); /* not valid JSON: no id to answer */
	ck_assert_msg(r, "no reply to a duplicate key");
	H_ERR(r, "bad_request");
	ck_assert_msg(strstr(h_errmsg(r), "duplicate"), "message: %s", h_errmsg(r));
	json_decref(r);
	/* A bad digit deep inside: not valid base64. */
	b64[bl / 2] = '*';
	len =
	    snprintf(line, bl + 512,
		     "{\"id\":4,\"cmd\":\"call\",\"type\":\"echo\",\"payload_b64\":\"%s\"}\n", b64);
	r = raw_rpc(&c, line, (size_t)len, 4);
	H_ERR(r, "bad_request");
	json_decref(r);
	/* Not a string: the type error names the argument. */
	len = snprintf(line, bl + 512,
		       "{\"id\":5,\"cmd\":\"call\",\"type\":\"echo\",\"payload_b64\":[\"%s\"]}\n",
		       b64);
	r = raw_rpc(&c, line, (size_t)len, 5);
	H_ERR(r, "bad_request");
	ck_assert_msg(strstr(h_errmsg(r), "payload_b64"), "message: %s", h_errmsg(r));
	json_decref(r);
	prompt_ping(&c);
	free(line);
	free(b64);
	free(data);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fairness");
	h_add(s, flooders_do_not_starve_a_bystander, 120);
	h_add(s, paused_client_resumes, 120);
	h_add(s, stalled_followers_are_dropped, 240);
	h_add(s, dropped_follower_hears_why, 240);
	h_add(s, chatty_worker_does_not_stall_control, 120);
	h_add(s, large_inline_payloads, 120);
	return h_main(s);
}
