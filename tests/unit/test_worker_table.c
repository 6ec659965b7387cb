/*
 * test_worker_table.c - the worker lifecycle table (daemon/worker.c) cell by
 * cell: every state x event, the ignored cells and the protocol violations
 * included, against an independent copy written as the picture in worker.c's
 * header; and the exit causes: their reasons and which deaths are crashes.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <check.h>

#include "corrald.h"

/*
 * The expected table, one row per event, one cell per state (starting idle
 * busy stopping exited): "next/action", "-" for the state kept.
 */
static const char *const expected[WEV_N][W_NSTATES] = {
    [WEV_HANDSHAKE] = {"idle/ready", "-/fault", "-/fault", "-/restop", "-/ignore"},
    [WEV_CALL_SENT] = {"-/fault", "busy/serve", "-/fault", "-/fault", "-/ignore"},
    [WEV_CALL_DONE] = {"-/fault", "-/fault", "idle/done", "-/done", "-/ignore"},
    [WEV_IDLE_TIMEOUT] = {"-/ignore", "stopping/stop", "-/ignore", "-/ignore", "-/ignore"},
    [WEV_STOP] = {"stopping/stop", "stopping/stop", "stopping/stop", "-/ignore", "-/ignore"},
    [WEV_KILL] = {"-/signal", "-/signal", "-/signal", "-/signal", "-/ignore"},
    [WEV_START_TIMEOUT] = {"-/kill", "-/ignore", "-/ignore", "-/ignore", "-/ignore"},
    [WEV_CALL_TIMEOUT] = {"-/ignore", "-/ignore", "-/kill", "-/kill", "-/ignore"},
    [WEV_STOP_TIMEOUT] = {"-/ignore", "-/ignore", "-/ignore", "-/kill", "-/ignore"},
    [WEV_ABORT] = {"-/kill", "-/kill", "-/kill", "-/kill", "-/ignore"},
    [WEV_VIOLATION] = {"-/fault", "-/fault", "-/fault", "-/fault", "-/ignore"},
    [WEV_EXIT] = {"exited/reap", "exited/reap", "exited/reap", "exited/reap", "-/ignore"},
    [WEV_CALL_QUEUED] = {"-/fault", "-/fault", "-/queue", "-/fault", "-/ignore"},
    [WEV_CALL_NEXT] = {"-/fault", "-/fault", "-/next", "-/next", "-/ignore"},
};

START_TEST(test_every_cell)
{
	int cells = 0;
	for (int ev = 0; ev < WEV_N; ev++) {
		for (int s = 0; s < W_NSTATES; s++) {
			struct wtrans tr = worker_transition((enum wstate)s, (enum wevent)ev);
			char got[64];
			snprintf(got, sizeof(got), "%s/%s",
				 tr.next == s ? "-" : wstate_names[tr.next],
				 waction_names[tr.action]);
			ck_assert_msg(expected[ev][s] && strcmp(got, expected[ev][s]) == 0,
				      "%s x %s: got %s, want %s", wstate_names[s], wevent_names[ev],
				      got, expected[ev][s] ? expected[ev][s] : "(unset)");
			cells++;
		}
	}
	ck_assert_int_eq(cells, W_NSTATES * WEV_N);
}
END_TEST

/* Only the handshake leaves starting for idle; only exit reaches exited; nothing leaves it. */
START_TEST(test_shape)
{
	for (int ev = 0; ev < WEV_N; ev++) {
		for (int s = 0; s < W_NSTATES; s++) {
			struct wtrans tr = worker_transition((enum wstate)s, (enum wevent)ev);
			if (tr.next == W_EXITED && s != W_EXITED)
				ck_assert_int_eq(ev, WEV_EXIT);
			if (s == W_EXITED)
				ck_assert_int_eq(tr.action, WA_IGNORE);
			if (tr.next != s)
				ck_assert_int_ne(tr.action, WA_IGNORE);
			/* A worker never goes back to starting. */
			if (s != W_STARTING)
				ck_assert_int_ne(tr.next, W_STARTING);
		}
	}
	/* Out of range: ignored, never a crash of the daemon. */
	struct wtrans tr = worker_transition(W_NSTATES, WEV_EXIT);
	ck_assert_int_eq(tr.action, WA_IGNORE);
	tr = worker_transition(W_IDLE, WEV_N);
	ck_assert_int_eq(tr.action, WA_IGNORE);
}
END_TEST

/* Wait statuses as waitpid reports them. */
#define EXITED(n)   (((n)&0xff) << 8)
#define SIGNALED(s) ((s)&0x7f)

/* Describe one exit; returns the crash verdict. */
static bool describe(enum exit_cause intent, int st, bool oom, bool young, const char *detail,
		     char *buf, size_t len)
{
	enum exit_cause c = exit_cause_of(intent, st, oom, true);
	return exit_cause_describe(c, st, true, detail, young, buf, len);
}

START_TEST(test_exit_causes)
{
	char r[160];
	/* The worker's own deaths: crashes only when young. */
	ck_assert(describe(EXIT_NONE, EXITED(1), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "exited with status 1");
	ck_assert(!describe(EXIT_NONE, EXITED(0), false, false, "", r, sizeof(r)));
	ck_assert_str_eq(r, "exited with status 0");
	ck_assert(!describe(EXIT_NONE, SIGNALED(SIGKILL), false, false, "", r, sizeof(r)));
	ck_assert_str_eq(r, "killed by SIGKILL");
	ck_assert(describe(EXIT_NONE, SIGNALED(SIGSEGV), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "killed by SIGSEGV");
	/* pid 1 of its namespace dies of a signal as exit 128+N. */
	ck_assert(describe(EXIT_NONE, EXITED(128 + SIGSEGV), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "killed by SIGSEGV");
	ck_assert(describe(EXIT_NONE, SIGNALED(SIGSYS), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "sandbox violation");
	ck_assert(!describe(EXIT_NONE, SIGNALED(SIGKILL), true, false, "", r, sizeof(r)));
	ck_assert_str_eq(r, "out of memory");
	/* What the daemon did. */
	ck_assert(!describe(EXIT_CALL_TIMEOUT, SIGNALED(SIGKILL), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "killed by SIGKILL (call timeout)");
	ck_assert(describe(EXIT_START_TIMEOUT, SIGNALED(SIGKILL), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "start timeout");
	ck_assert(describe(EXIT_FAULT, SIGNALED(SIGKILL), false, false, "bad hello", r, sizeof(r)));
	ck_assert_str_eq(r, "killed by SIGKILL (protocol violation: bad hello)");
	ck_assert(!describe(EXIT_ABORTED, SIGNALED(SIGKILL), false, true, "result past output_kb",
			    r, sizeof(r)));
	ck_assert_str_eq(r, "killed by SIGKILL (result past output_kb)");
	ck_assert(!describe(EXIT_STOPPED, EXITED(0), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "exited with status 0");
	ck_assert(!describe(EXIT_STOPPED, SIGNALED(SIGKILL), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "killed by SIGKILL");
	ck_assert(!describe(EXIT_KILLED, SIGNALED(SIGTERM), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "killed by SIGTERM");
	/* A timeout kill that something else beat: the worker's own death. */
	ck_assert(describe(EXIT_CALL_TIMEOUT, EXITED(3), false, true, "", r, sizeof(r)));
	ck_assert_str_eq(r, "exited with status 3");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("worker-table");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, test_every_cell);
	tcase_add_test(tc, test_shape);
	tcase_add_test(tc, test_exit_causes);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
