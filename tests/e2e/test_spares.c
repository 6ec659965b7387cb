/*
 * test_spares.c - pool.spares against a real corrald: spares are
 * pre-sandboxed processes that are never workers (not listed, no id) until
 * taken, `describe` counts them, a dead worker's replacement is a spare, and
 * `stop TYPE` discards them.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Up to max children of ppid into pids; their number. */
static int children_of(pid_t ppid, pid_t *pids, int max)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int n = 0;
	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir)) && n < max) {
		char path[300], buf[512];
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		char *rp = strrchr(buf, ')');
		char st;
		int pp;
		if (rp && sscanf(rp + 1, " %c %d", &st, &pp) == 2 && pp == ppid && st != 'Z')
			pids[n++] = (pid_t)pid;
	}
	closedir(dir);
	return n;
}

/* describe TYPE's spares. */
static json_int_t spares_of(struct hc *c, const char *type)
{
	json_t *r = hc_rpc(c, "{\"cmd\":\"describe\",\"type\":\"%s\"}", type);
	H_OK(r);
	json_int_t n = h_int(r, "spares");
	json_decref(r);
	return n;
}

/* Wait (bounded) until TYPE has want spares: spares are made once the loop is idle. */
static void wait_spares(struct hc *c, const char *type, json_int_t want)
{
	int64_t deadline = h_now_ms() + 10000;
	json_int_t n;
	while ((n = spares_of(c, type)) != want) {
		ck_assert_msg(h_now_ms() < deadline, "%s has %lld spares, want %lld", type,
			      (long long)n, (long long)want);
		usleep(5000);
	}
}

#define CFG                                                                                        \
	"{\"types\":{"                                                                             \
	"\"sb\":{\"builtin\":\"echo\",\"pool\":{\"min\":1,\"max\":2}},"                            \
	"\"none\":{\"builtin\":\"echo\",\"pool\":{\"min\":2,\"max\":2,\"spares\":0}},"             \
	"\"lazy\":{\"builtin\":\"echo\",\"pool\":{\"min\":0,\"max\":2}},"                          \
	"\"plain\":{\"builtin\":\"echo\",\"pool\":{\"min\":1},"                                    \
	"\"sandbox\":{\"namespaces\":[],\"seccomp\":\"none\"}}"                                    \
	"}}"

START_TEST(test_spares_are_not_workers)
{
	struct hd d;
	struct hc c;
	hd_up(&d, CFG);
	hc_open(&c, &d);
	json_decref(h_wait_workers(&c, "sb", 1, true, 10000));
	json_decref(h_wait_workers(&c, "none", 2, true, 10000));
	/* min > 0: one spare by default; "spares": 0: none, whatever is idle. */
	wait_spares(&c, "sb", 1);
	ck_assert_int_eq(spares_of(&c, "none"), 0);
	/* No namespaces: "auto" keeps none (a spare would save nothing). */
	json_decref(h_wait_workers(&c, "plain", 1, true, 10000));
	ck_assert_int_eq(spares_of(&c, "plain"), 0);
	/* min 0: none until a call spawns on demand, then one. */
	ck_assert_int_eq(spares_of(&c, "lazy"), 0);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"lazy\",\"payload\":\"x\"}");
	H_OK(r);
	json_decref(r);
	wait_spares(&c, "lazy", 1);
	/* Spares are processes of the daemon, but never listed as workers. */
	pid_t kids[64];
	int n = children_of(d.pid, kids, 64);
	r = hc_rpc(&c, "{\"cmd\":\"list\"}");
	H_OK(r);
	ck_assert_int_eq(json_array_size(json_object_get(r, "workers")), 5);
	json_decref(r);
	ck_assert_int_eq(n, 5 + 2);
	/* The effective config says what was asked. */
	r = hc_rpc(&c, "{\"cmd\":\"describe\",\"type\":\"sb\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(json_object_get(json_object_get(r, "type"), "pool"), "spares"),
			 "auto");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A dead worker is replaced by the spare: the new worker's pid is the spare's. */
START_TEST(test_replacement_is_the_spare)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, CFG);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *list = h_wait_workers(&c, "sb", 1, true, 10000);
	json_t *wk = json_array_get(list, 0);
	json_int_t id = h_int(wk, "id");
	pid_t pid = (pid_t)h_int(wk, "pid");
	json_decref(list);
	json_decref(h_wait_workers(&c, "none", 2, true, 10000));
	wait_spares(&c, "sb", 1);
	/* The spare: the one child that is no worker. */
	pid_t kids[64];
	int n = children_of(d.pid, kids, 64);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"list\"}");
	H_OK(r);
	pid_t spare = 0;
	for (int i = 0; i < n; i++) {
		bool worker = false;
		size_t k;
		json_t *x;
		json_array_foreach(json_object_get(r, "workers"), k, x) worker =
		    worker || h_int(x, "pid") == kids[i];
		if (!worker) {
			ck_assert_msg(!spare, "two children are no worker");
			spare = kids[i];
		}
	}
	json_decref(r);
	ck_assert_msg(spare > 0, "no spare among %d children", n);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	/* The watch also saw the startup: skip to the replacement's readiness. */
	json_t *ev;
	for (;;) {
		ev = h_wait_state(&w, sid, 0, "idle", 10000);
		if (strcmp(h_str(ev, "type"), "sb") == 0 && h_int(ev, "worker") > id)
			break;
		json_decref(ev);
	}
	ck_assert_int_eq(h_int(ev, "pid"), spare);
	json_decref(ev);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"sb\",\"payload\":\"from the spare\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "from the spare");
	json_decref(r);
	/* And a new spare is made. */
	wait_spares(&c, "sb", 1);
	/* stop TYPE leaves it quiet: no workers, no spares. */
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"type\":\"sb\"}");
	H_OK(r);
	json_decref(r);
	ck_assert_int_eq(spares_of(&c, "sb"), 0);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-spares");
	h_add(s, test_spares_are_not_workers, 60);
	h_add(s, test_replacement_is_the_spare, 60);
	return h_main(s);
}
