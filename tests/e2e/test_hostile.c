/*
 * test_hostile.c - workers that break the daemon <-> worker protocol (see
 * hostile_worker.c): every byte a worker writes is hostile input, and a
 * violation kills that worker, never the daemon (DESIGN.md, "Principles for
 * the internals").
 *
 * Each test runs its own daemon with a pinned `echo` worker and a type `bad`
 * whose worker misbehaves as the test says.  It then checks that the call got
 * exactly one reply with a fitting error code, that the worker was killed
 * (watch reports it exited, list no longer shows it), that the daemon still
 * serves echo, that its fd count is back to what it was before the bad worker
 * existed, and that it leaves no zombie behind.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The hostile worker binary (from meson). */
static const char *h_hostile(void)
{
	const char *v = getenv("HOSTILE");
	ck_assert_msg(v && *v, "$HOSTILE not set (run through meson test)");
	return v;
}

/* One daemon with `echo` (one worker, kept) and `bad` (the hostile worker in some mode). */
struct env {
	struct hd d;
	struct hc c; /* requests */
	struct hc w; /* watch */
	json_int_t sid;
	int base_fds;
};

/* Start the daemon; extra is appended inside the `bad` type's object (",\"limits\":...").
 * No spares: the fd and child counts below are the workers' alone (test_spares.c
 * covers spares). */
static void env_up(struct env *e, const char *mode, const char *extra)
{
	hd_up(&e->d,
	      "{\"types\":{"
	      "\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1,\"max\":1,\"spares\":0}},"
	      "\"bad\":{\"exec\":[\"%s\",\"%s\"],\"pool\":{\"max\":1,\"spares\":0},"
	      "\"restart\":{\"burst\":100}%s}}}",
	      h_hostile(), mode, extra ? extra : "");
	hc_open(&e->c, &e->d);
	e->sid = hc_watch(&e->w, &e->d);
	json_decref(h_wait_workers(&e->c, "echo", 1, true, 15000));
	e->base_fds = h_count_fds(e->d.pid);
}

/* The next watch event of type `bad` in state (owned). */
static json_t *wait_bad(struct env *e, const char *state, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	for (;;) {
		json_t *ev = h_wait_state(&e->w, e->sid, 0, state, (int)(deadline - h_now_ms()));
		if (strcmp(h_str(ev, "type"), "bad") == 0)
			return ev;
		json_decref(ev);
	}
}

/* Wait for the bad worker's exit; check its reason when given (it holds it: "timeout
 * (killed by SIGKILL)" says what a timeout kill was). */
static void wait_bad_exit(struct env *e, const char *reason)
{
	json_t *ev = wait_bad(e, "exited", 20000);
	const char *r = h_str(ev, "reason");
	ck_assert_msg(r, "exited without a reason: %s", h_dump(ev));
	if (reason)
		ck_assert_msg(strstr(r, reason) != NULL,
			      "bad worker exit reason \"%s\", want \"%s\"", r, reason);
	ck_assert_msg(!h_pid_alive((pid_t)h_int(ev, "pid")), "worker %lld still alive",
		      (long long)h_int(ev, "pid"));
	json_decref(ev);
}

/* An echo call must still work (and promptly). */
static void assert_echo(struct env *e, const char *text)
{
	int64_t t0 = h_now_ms();
	json_t *r = hc_rpc(&e->c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"%s\"}", text);
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), text);
	json_decref(r);
	ck_assert_msg(h_now_ms() - t0 < 5000, "echo took %lld ms", (long long)(h_now_ms() - t0));
}

/*
 * The end of every test: no bad worker left, echo served, exactly one reply to
 * call_id (0: none to check), fds back to the baseline, no zombie, clean stop.
 */
static void env_down(struct env *e, json_int_t call_id)
{
	json_decref(h_wait_workers(&e->c, "bad", 0, false, 10000));
	assert_echo(e, "after");
	if (call_id) {
		/* The echo reply came after anything sent earlier on this connection. */
		json_t *dup = hc_wait_id(&e->c, call_id, 0, NULL);
		ck_assert_msg(!dup, "a second reply to the call: %s", h_dump(dup));
	}
	int fds = h_count_fds(e->d.pid);
	ck_assert_msg(fds == e->base_fds, "daemon has %d fds, %d before the bad worker", fds,
		      e->base_fds);
	int z = 0, n = h_count_children(e->d.pid, &z);
	ck_assert_msg(z == 0, "%d zombie children", z);
	ck_assert_msg(n == 1, "%d children, want the echo worker alone", n);
	json_t *r = hc_rpc(&e->c, "{\"cmd\":\"ping\"}");
	H_OK(r);
	json_decref(r);
	hc_close(&e->w);
	hc_close(&e->c);
	hd_stop(&e->d, true);
}

/* Send a call to bad with payload "hello"; returns its id. */
static json_int_t call_bad(struct env *e, int timeout_ms)
{
	return hc_sendf(
	    &e->c, -1,
	    "{\"cmd\":\"call\",\"type\":\"bad\",\"payload\":\"hello\",\"timeout_ms\":%d}",
	    timeout_ms);
}

/* The same with payload_fd (a memfd of 5 bytes): the worker is asked for a result fd. */
static json_int_t call_bad_fd(struct env *e, int timeout_ms)
{
	int fd = h_memfd_pattern(5);
	json_int_t id = hc_sendf(
	    &e->c, fd, "{\"cmd\":\"call\",\"type\":\"bad\",\"payload_fd\":true,\"timeout_ms\":%d}",
	    timeout_ms);
	close(fd);
	return id;
}

/* The reply to id (asserted to come); any fd with it is closed. */
static json_t *reply_of(struct env *e, json_int_t id)
{
	int fd = -1;
	json_t *r = hc_wait_id(&e->c, id, 30000, &fd);
	ck_assert_msg(r, "no reply to the call");
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * The common shape: a call to a worker misbehaving in mode gets error code
 * (one of codes, '|'-separated), the worker exits with reason, and the daemon
 * is whole.
 */
static void run_case_how(const char *mode, const char *extra, const char *codes, const char *reason,
			 int timeout_ms, bool by_fd)
{
	struct env e;
	env_up(&e, mode, extra);
	int64_t t0 = h_now_ms();
	json_int_t id = by_fd ? call_bad_fd(&e, timeout_ms) : call_bad(&e, timeout_ms);
	json_t *r = reply_of(&e, id);
	ck_assert_msg(!h_ok(r), "mode %s: call succeeded: %s", mode, h_dump(r));
	char want[128];
	snprintf(want, sizeof(want), "|%s|", codes);
	char got[64];
	snprintf(got, sizeof(got), "|%s|", h_err(r));
	ck_assert_msg(strstr(want, got), "mode %s: error %s, want %s: %s", mode, h_err(r), codes,
		      h_dump(r));
	/* A protocol violation is caught when it happens, not at the call's timeout. */
	if (!strstr(codes, "timeout"))
		ck_assert_msg(h_now_ms() - t0 < timeout_ms, "mode %s: reply took %lld ms", mode,
			      (long long)(h_now_ms() - t0));
	json_decref(r);
	wait_bad_exit(&e, reason);
	env_down(&e, id);
}

static void run_case(const char *mode, const char *extra, const char *codes, const char *reason,
		     int timeout_ms)
{
	run_case_how(mode, extra, codes, reason, timeout_ms, false);
}

/* A violation: worker_error, the worker SIGKILLed. */
#define VIOLATION(name, mode, extra)                                                               \
	START_TEST(name)                                                                           \
	{                                                                                          \
		run_case(mode, extra, "worker_error", "killed by SIGKILL", 20000);                 \
	}                                                                                          \
	END_TEST

/* The same for a call that asked for a result fd (payload_fd). */
#define VIOLATION_FD(name, mode, extra)                                                            \
	START_TEST(name)                                                                           \
	{                                                                                          \
		run_case_how(mode, extra, "worker_error", "killed by SIGKILL", 20000, true);       \
	}                                                                                          \
	END_TEST

/* The control case: the hostile worker on its good behaviour works. */
START_TEST(test_ok_control)
{
	struct env e;
	env_up(&e, "ok", NULL);
	for (int i = 0; i < 3; i++) {
		json_t *r = reply_of(&e, call_bad(&e, 10000));
		H_OK(r);
		ck_assert_str_eq(h_str(r, "result"), "hello");
		json_decref(r);
	}
	json_t *r = hc_rpc(&e.c, "{\"cmd\":\"stop\",\"type\":\"bad\"}");
	H_OK(r);
	json_decref(r);
	wait_bad_exit(&e, "exited with status 0");
	env_down(&e, 0);
}
END_TEST

/* Never says hello: killed at start_timeout_ms with reason "start timeout". */
START_TEST(test_silent_spawn)
{
	struct env e;
	env_up(&e, "silent", ",\"limits\":{\"start_timeout_ms\":300}");
	int64_t t0 = h_now_ms();
	json_int_t sp = hc_sendf(&e.c, -1, "{\"cmd\":\"spawn\",\"type\":\"bad\"}");
	json_decref(wait_bad(&e, "starting", 10000));
	/* Meanwhile the daemon serves on. */
	assert_echo(&e, "during");
	json_t *r = reply_of(&e, sp);
	ck_assert_msg(!h_ok(r), "spawn of a silent worker succeeded: %s", h_dump(r));
	ck_assert_msg(h_now_ms() - t0 >= 250, "spawn failed after %lld ms, before the timeout",
		      (long long)(h_now_ms() - t0));
	json_decref(r);
	wait_bad_exit(&e, "start timeout");
	env_down(&e, sp);
}
END_TEST

/* A call for a type whose workers never get ready fails (once), and the daemon lives. */
START_TEST(test_silent_call)
{
	struct env e;
	env_up(&e, "silent", ",\"limits\":{\"start_timeout_ms\":300}");
	json_int_t id = call_bad(&e, 1500);
	json_t *r = reply_of(&e, id);
	ck_assert_msg(!h_ok(r), "call succeeded: %s", h_dump(r));
	ck_assert_msg(strcmp(h_err(r), "timeout") == 0 || strcmp(h_err(r), "unavailable") == 0 ||
			  strcmp(h_err(r), "worker_crashed") == 0 ||
			  strcmp(h_err(r), "worker_error") == 0,
		      "%s", h_dump(r));
	json_decref(r);
	wait_bad_exit(&e, "start timeout");
	env_down(&e, id);
}
END_TEST

/* A bad hello (wrong version, garbage) fails the spawn; the worker is killed. */
static void bad_hello(const char *mode)
{
	struct env e;
	env_up(&e, mode, NULL);
	json_int_t sp = hc_sendf(&e.c, -1, "{\"cmd\":\"spawn\",\"type\":\"bad\"}");
	json_t *r = reply_of(&e, sp);
	ck_assert_msg(!h_ok(r), "mode %s: spawn succeeded: %s", mode, h_dump(r));
	json_decref(r);
	wait_bad_exit(&e, "killed by SIGKILL");
	env_down(&e, sp);
}

START_TEST(test_hello_version)
{
	bad_hello("badversion");
}
END_TEST

START_TEST(test_hello_garbage)
{
	bad_hello("garbage_hello");
}
END_TEST

VIOLATION(test_garbage, "garbage", NULL)
VIOLATION(test_unknown_type, "unknown_type", NULL)
VIOLATION(test_badlen_long, "badlen_long", NULL)
VIOLATION(test_badlen_short, "badlen_short", NULL)
VIOLATION(test_oversize, "oversize", NULL)
VIOLATION_FD(test_badnfds, "badnfds", NULL)
VIOLATION(test_hello_twice, "hello_twice", NULL)
VIOLATION(test_msg_call, "msg_call", NULL)
VIOLATION(test_msg_stop, "msg_stop", NULL)
VIOLATION(test_wrong_id, "wrong_id", NULL)
VIOLATION(test_badstatus, "badstatus", NULL)
VIOLATION(test_len_more, "len_more", NULL)
VIOLATION(test_len_less, "len_less", NULL)
VIOLATION_FD(test_fd_none, "fd_none", NULL)
VIOLATION_FD(test_fd_pipe, "fd_pipe", NULL)
/* A result fd the call did not ask for (a string payload). */
VIOLATION(test_fd_unasked, "fd_unsealed", NULL)
VIOLATION_FD(test_fd_unsealed, "fd_unsealed", NULL)
VIOLATION_FD(test_fd_wrongsize, "fd_wrongsize", NULL)
VIOLATION(test_ring_far, "ring_far", NULL)
VIOLATION(test_ring_misalign, "ring_misalign", NULL)
VIOLATION(test_ring_reclen, "ring_reclen", NULL)
VIOLATION(test_ring_rectype, "ring_rectype", NULL)
VIOLATION(test_ring_framelen, "ring_framelen", NULL)
VIOLATION(test_ring_framebad, "ring_framebad", NULL)
VIOLATION(test_ring_back, "ring_back", NULL)
VIOLATION_FD(test_manyfds5, "manyfds5", NULL)
VIOLATION(test_manyfds200, "manyfds200", NULL)

/* The daemon -> worker ring's tail pushed past the head while payload is still to go. */
START_TEST(test_ring_tail)
{
	struct env e;
	env_up(&e, "ring_tail", ",\"ring_kb\":4");
	char *big = malloc(16385);
	memset(big, 'p', 16384);
	big[16384] = '\0';
	json_int_t id = hc_sendf(
	    &e.c, -1, "{\"cmd\":\"call\",\"type\":\"bad\",\"payload\":\"%s\",\"timeout_ms\":20000}",
	    big);
	free(big);
	json_t *r = reply_of(&e, id);
	H_ERR(r, "worker_error");
	json_decref(r);
	wait_bad_exit(&e, "killed by SIGKILL");
	env_down(&e, id);
}
END_TEST

/* A result before the daemon could hand over the whole payload. */
START_TEST(test_early_result)
{
	struct env e;
	env_up(&e, "early_result", ",\"ring_kb\":4");
	char *big = malloc(16385);
	memset(big, 'p', 16384);
	big[16384] = '\0';
	json_int_t id = hc_sendf(
	    &e.c, -1, "{\"cmd\":\"call\",\"type\":\"bad\",\"payload\":\"%s\",\"timeout_ms\":20000}",
	    big);
	free(big);
	json_t *r = reply_of(&e, id);
	H_ERR(r, "worker_error");
	json_decref(r);
	wait_bad_exit(&e, "killed by SIGKILL");
	env_down(&e, id);
}
END_TEST

/* A sealed result memfd past output_kb: too_large; not a violation, the worker serves on. */
START_TEST(test_fd_big)
{
	struct env e;
	env_up(&e, "fd_big", ",\"limits\":{\"output_kb\":64}");
	json_int_t id = 0;
	for (int i = 0; i < 2; i++) {
		id = call_bad_fd(&e, 20000);
		json_t *r = reply_of(&e, id);
		H_ERR(r, "too_large");
		json_decref(r);
	}
	json_t *r = hc_rpc(&e.c, "{\"cmd\":\"stop\",\"type\":\"bad\"}");
	H_OK(r);
	json_decref(r);
	wait_bad_exit(&e, "exited with status 0");
	env_down(&e, id);
}
END_TEST

/* Scribbling on the shared header changes nothing: the daemon read it once. */
START_TEST(test_ring_hdr)
{
	struct env e;
	env_up(&e, "ring_hdr", NULL);
	for (int i = 0; i < 2; i++) {
		json_t *r = reply_of(&e, call_bad(&e, 10000));
		ck_assert_msg(h_ok(r) || strcmp(h_err(r), "worker_error") == 0, "%s", h_dump(r));
		if (h_ok(r))
			ck_assert_str_eq(h_str(r, "result"), "hello");
		json_decref(r);
	}
	json_t *r = hc_rpc(&e.c, "{\"cmd\":\"stop\",\"type\":\"bad\"}");
	json_decref(r);
	wait_bad_exit(&e, NULL);
	env_down(&e, 0);
}
END_TEST

/* A hang: timeout, the worker killed. */
START_TEST(test_hang)
{
	run_case("hang", NULL, "timeout", "killed by SIGKILL", 300);
}
END_TEST

/* Closing the channel and staying alive: the worker is killed, the call fails. */
START_TEST(test_close3)
{
	run_case("close3", NULL, "worker_crashed|worker_error", "killed by SIGKILL", 20000);
}
END_TEST

/* Dying mid-call: worker_crashed. */
START_TEST(test_exit_midcall)
{
	run_case("exit", NULL, "worker_crashed", "exited with status 3", 20000);
}
END_TEST

START_TEST(test_segv_midcall)
{
	run_case("segv", NULL, "worker_crashed", "killed by SIGSEGV", 20000);
}
END_TEST

/* An endless stream of result bytes: too_large once past output_kb, not a timeout. */
START_TEST(test_endless_output)
{
	run_case("endless", ",\"limits\":{\"output_kb\":64},\"ring_kb\":16", "too_large", NULL,
		 5000);
}
END_TEST

/* Endless doorbells: the daemon keeps serving others; the call times out. */
START_TEST(test_doorbell_spam)
{
	struct env e;
	env_up(&e, "spam", NULL);
	json_int_t id = call_bad(&e, 2000);
	json_decref(wait_bad(&e, "busy", 10000));
	for (int i = 0; i < 5; i++)
		assert_echo(&e, "spammed");
	json_t *r = reply_of(&e, id);
	ck_assert_msg(strcmp(h_err(r), "timeout") == 0 || strcmp(h_err(r), "worker_error") == 0,
		      "%s", h_dump(r));
	json_decref(r);
	wait_bad_exit(&e, "killed by SIGKILL");
	env_down(&e, id);
}
END_TEST

/* Thousands of doorbells, then a proper result: doorbells are legal, the call succeeds. */
START_TEST(test_doorbell_spam_ok)
{
	struct env e;
	env_up(&e, "spam_ok", NULL);
	json_t *r = reply_of(&e, call_bad(&e, 20000));
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "hello");
	json_decref(r);
	assert_echo(&e, "between");
	r = reply_of(&e, call_bad(&e, 20000));
	H_OK(r);
	json_decref(r);
	r = hc_rpc(&e.c, "{\"cmd\":\"stop\",\"type\":\"bad\"}");
	H_OK(r);
	json_decref(r);
	wait_bad_exit(&e, "exited with status 0");
	env_down(&e, 0);
}
END_TEST

/* Two results for one call: the first answers it, the second kills the worker. */
START_TEST(test_two_results)
{
	struct env e;
	env_up(&e, "two_results", NULL);
	json_int_t id = call_bad(&e, 20000);
	json_t *r = reply_of(&e, id);
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "hello");
	json_decref(r);
	wait_bad_exit(&e, "killed by SIGKILL");
	env_down(&e, id);
}
END_TEST

/* Several kinds of bad workers in one daemon, in turn: it survives all of them. */
START_TEST(test_gauntlet)
{
	static const char *const modes[] = {"garbage",	   "wrong_id", "len_more", "fd_pipe",
					    "ring_far",	   "manyfds5", "exit",	   "close3",
					    "badlen_long", NULL};
	struct env e;
	memset(&e, 0, sizeof(e));
	char cfg[4096];
	int off = snprintf(cfg, sizeof(cfg),
			   "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1,"
			   "\"max\":1,\"spares\":0}}");
	for (size_t i = 0; modes[i]; i++)
		off += snprintf(cfg + off, sizeof(cfg) - (size_t)off,
				",\"%s\":{\"exec\":[\"%s\",\"%s\"],\"pool\":{\"spares\":0}}",
				modes[i], h_hostile(), modes[i]);
	snprintf(cfg + off, sizeof(cfg) - (size_t)off, "}}");
	hd_up(&e.d, "%s", cfg);
	hc_open(&e.c, &e.d);
	json_decref(h_wait_workers(&e.c, "echo", 1, true, 15000));
	e.base_fds = h_count_fds(e.d.pid);
	int rounds = h_small() ? 1 : 3;
	for (int k = 0; k < rounds; k++) {
		/* All at once, pipelined. */
		json_int_t ids[16];
		size_t n = 0;
		for (; modes[n]; n++)
			ids[n] = hc_sendf(&e.c, -1,
					  "{\"cmd\":\"call\",\"type\":\"%s\",\"payload\":\"x\"}",
					  modes[n]);
		for (size_t i = 0; i < n; i++) {
			json_t *r = reply_of(&e, ids[i]);
			ck_assert_msg(!h_ok(r), "%s: %s", modes[i], h_dump(r));
			ck_assert_msg(strcmp(h_err(r), "worker_error") == 0 ||
					  strcmp(h_err(r), "worker_crashed") == 0,
				      "%s: %s", modes[i], h_dump(r));
			json_decref(r);
		}
		for (size_t i = 0; modes[i]; i++)
			json_decref(h_wait_workers(&e.c, modes[i], 0, false, 10000));
		assert_echo(&e, "survived");
	}
	int fds = h_count_fds(e.d.pid);
	ck_assert_msg(fds == e.base_fds, "daemon has %d fds, %d before", fds, e.base_fds);
	int z = 0;
	ck_assert_int_eq(h_count_children(e.d.pid, &z), 1);
	ck_assert_int_eq(z, 0);
	hc_close(&e.c);
	hd_stop(&e.d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-hostile");
	h_add(s, test_ok_control, 60);
	h_add(s, test_silent_spawn, 60);
	h_add(s, test_silent_call, 60);
	h_add(s, test_hello_version, 60);
	h_add(s, test_hello_garbage, 60);
	h_add(s, test_garbage, 60);
	h_add(s, test_unknown_type, 60);
	h_add(s, test_badlen_long, 60);
	h_add(s, test_badlen_short, 60);
	h_add(s, test_oversize, 60);
	h_add(s, test_badnfds, 60);
	h_add(s, test_hello_twice, 60);
	h_add(s, test_msg_call, 60);
	h_add(s, test_msg_stop, 60);
	h_add(s, test_early_result, 60);
	h_add(s, test_fd_big, 60);
	h_add(s, test_wrong_id, 60);
	h_add(s, test_badstatus, 60);
	h_add(s, test_len_more, 60);
	h_add(s, test_len_less, 60);
	h_add(s, test_fd_none, 60);
	h_add(s, test_fd_pipe, 60);
	h_add(s, test_fd_unasked, 60);
	h_add(s, test_fd_unsealed, 60);
	h_add(s, test_fd_wrongsize, 60);
	h_add(s, test_ring_far, 60);
	h_add(s, test_ring_misalign, 60);
	h_add(s, test_ring_reclen, 60);
	h_add(s, test_ring_rectype, 60);
	h_add(s, test_ring_framelen, 60);
	h_add(s, test_ring_framebad, 60);
	h_add(s, test_ring_back, 60);
	h_add(s, test_ring_tail, 60);
	h_add(s, test_ring_hdr, 60);
	h_add(s, test_manyfds5, 60);
	h_add(s, test_manyfds200, 60);
	h_add(s, test_hang, 60);
	h_add(s, test_close3, 60);
	h_add(s, test_exit_midcall, 60);
	h_add(s, test_segv_midcall, 60);
	h_add(s, test_endless_output, 60);
	h_add(s, test_doorbell_spam, 60);
	h_add(s, test_doorbell_spam_ok, 60);
	h_add(s, test_two_results, 60);
	h_add(s, test_gauntlet, 120);
	return h_main(s);
}
