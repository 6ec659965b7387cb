/*
 * test_spares.c - pool.spares against a real corrald: spares are
 * pre-sandboxed processes that are never workers (not listed, no id) until
 * taken, `describe` counts them, a dead worker's replacement is a spare, and
 * `stop TYPE` discards them.  A spare of corral-worker (builtin, stdio) has
 * exec'd already; a native program's waits before execve.
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	"\"sandbox\":{\"namespaces\":[],\"seccomp\":\"none\"}},"                                   \
	"\"natplain\":{\"exec\":[\"%s\"],\"pool\":{\"min\":1},"                                    \
	"\"sandbox\":{\"namespaces\":[],\"seccomp\":\"none\"}},"                                   \
	"\"nat\":{\"exec\":[\"%s\"],\"pool\":{\"min\":1}}"                                         \
	"}}"

/* Only sb keeps a spare: the child that is no worker is sb's. */
#define CFG_ONE                                                                                    \
	"{\"types\":{"                                                                             \
	"\"sb\":{\"builtin\":\"echo\",\"pool\":{\"min\":1,\"max\":2}},"                            \
	"\"none\":{\"builtin\":\"echo\",\"pool\":{\"min\":2,\"max\":2,\"spares\":0}}"              \
	"}}"

/* The config with the native example's path filled in. */
static const char *cfg_full(void)
{
	static char buf[2048];
	snprintf(buf, sizeof(buf), CFG, h_upper(), h_upper());
	return buf;
}

/* The program pid runs (/proc/PID/exe), into buf. */
static const char *exe_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, buf, len - 1);
	ck_assert_msg(n > 0, "readlink %s failed", path);
	buf[n] = '\0';
	return buf;
}

/* The one child of the daemon that no worker of list is (0 if none; two fail). */
static pid_t lone_spare(struct hd *d, struct hc *c)
{
	pid_t kids[64], spare = 0;
	int n = children_of(d->pid, kids, 64);
	json_t *r = hc_rpc(c, "{\"cmd\":\"list\"}");
	H_OK(r);
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
	return spare;
}

/* The real path of the worker binary corrald runs. */
static const char *worker_binary(char *buf)
{
	const char *v = getenv("CORRAL_WORKER");
	ck_assert_msg(v && *v, "$CORRAL_WORKER not set (run through meson test)");
	ck_assert_ptr_nonnull(realpath(v, buf));
	return buf;
}

START_TEST(test_spares_are_not_workers)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "%s", cfg_full());
	hc_open(&c, &d);
	json_decref(h_wait_workers(&c, "sb", 1, true, 10000));
	json_decref(h_wait_workers(&c, "none", 2, true, 10000));
	/* min > 0: one spare by default; "spares": 0: none, whatever is idle. */
	wait_spares(&c, "sb", 1);
	ck_assert_int_eq(spares_of(&c, "none"), 0);
	/* corral-worker without namespaces: a spare too (it skips the exec). */
	json_decref(h_wait_workers(&c, "plain", 1, true, 10000));
	wait_spares(&c, "plain", 1);
	/* A native program: a spare waits before execve, worth it with namespaces only. */
	json_decref(h_wait_workers(&c, "nat", 1, true, 10000));
	json_decref(h_wait_workers(&c, "natplain", 1, true, 10000));
	wait_spares(&c, "nat", 1);
	ck_assert_int_eq(spares_of(&c, "natplain"), 0);
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
	ck_assert_int_eq(json_array_size(json_object_get(r, "workers")), 7);
	json_decref(r);
	ck_assert_int_eq(n, 7 + 4);
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

/* A dead worker is replaced by the spare: the new worker's pid is the spare's,
 * and the spare had exec'd corral-worker before it was taken. */
START_TEST(test_replacement_is_the_spare)
{
	struct hd d;
	struct hc c, w;
	char want[PATH_MAX], got[PATH_MAX];
	hd_up(&d, CFG_ONE);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_t *list = h_wait_workers(&c, "sb", 1, true, 10000);
	json_t *wk = json_array_get(list, 0);
	json_int_t id = h_int(wk, "id");
	pid_t pid = (pid_t)h_int(wk, "pid");
	json_decref(list);
	json_decref(h_wait_workers(&c, "none", 2, true, 10000));
	wait_spares(&c, "sb", 1);
	pid_t spare = lone_spare(&d, &c);
	ck_assert_msg(spare > 0, "no spare among the daemon's children");
	ck_assert_str_eq(exe_of(spare, got, sizeof(got)), worker_binary(want));
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
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"sb\",\"payload\":\"from the spare\"}");
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

/* A native program's spare waits before execve: it is still corrald's copy,
 * and becomes the program only once taken. */
START_TEST(test_native_spare_waits)
{
	struct hd d;
	struct hc c;
	char cfg[1024], got[PATH_MAX], daemon_exe[PATH_MAX], upper[PATH_MAX];
	snprintf(cfg, sizeof(cfg),
		 "{\"types\":{\"nat\":{\"exec\":[\"%s\"],\"pool\":{\"min\":1,\"max\":2}}}}",
		 h_upper());
	hd_up(&d, "%s", cfg);
	hc_open(&c, &d);
	json_t *list = h_wait_workers(&c, "nat", 1, true, 10000);
	pid_t pid = (pid_t)h_int(json_array_get(list, 0), "pid");
	json_decref(list);
	wait_spares(&c, "nat", 1);
	pid_t spare = lone_spare(&d, &c);
	ck_assert_msg(spare > 0, "no spare among the daemon's children");
	ck_assert_str_eq(exe_of(spare, got, sizeof(got)),
			 exe_of(d.pid, daemon_exe, sizeof(daemon_exe)));
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	/* The replacement is the spare, now running the program. */
	int64_t deadline = h_now_ms() + 10000;
	for (;;) {
		json_t *r = hc_rpc(&c, "{\"cmd\":\"list\",\"type\":\"nat\"}");
		H_OK(r);
		json_t *x = json_array_get(json_object_get(r, "workers"), 0);
		bool done = x && h_int(x, "pid") == spare && strcmp(h_str(x, "state"), "idle") == 0;
		json_decref(r);
		if (done)
			break;
		ck_assert_msg(h_now_ms() < deadline, "the spare never became the worker");
		usleep(5000);
	}
	ck_assert_ptr_nonnull(realpath(h_upper(), upper));
	ck_assert_str_eq(exe_of(spare, got, sizeof(got)), upper);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A spare waiting before execve holds only its own fds (0-5, its go pipe at 7):
 * none of the daemon's, such as its listening socket, which would outlive a
 * daemon killed meanwhile.  A script has no program fd at 6: the case where
 * 6 was left holding the daemon's fd of that number (no namespaces: the
 * script's path must be visible to its interpreter). */
START_TEST(test_spare_holds_no_daemon_fd)
{
	struct hd d;
	struct hc c;
	char script[] = "/tmp/corral-spare-XXXXXX", cfg[1024];
	int fd = mkstemp(script);
	ck_assert_int_ge(fd, 0);
	dprintf(fd, "#!/bin/sh\nexec %s\n", h_upper());
	fchmod(fd, 0755);
	close(fd);
	snprintf(cfg, sizeof(cfg),
		 "{\"types\":{\"nat\":{\"exec\":[\"%s\"],"
		 "\"pool\":{\"min\":1,\"max\":2,\"spares\":1},"
		 "\"sandbox\":{\"namespaces\":[],\"seccomp\":\"none\"}}}}",
		 script);
	hd_up(&d, "%s", cfg);
	hc_open(&c, &d);
	json_decref(h_wait_workers(&c, "nat", 1, true, 10000));
	wait_spares(&c, "nat", 1);
	pid_t spare = lone_spare(&d, &c);
	ck_assert_msg(spare > 0, "no spare among the daemon's children");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)spare);
	DIR *dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		int n = atoi(de->d_name);
		ck_assert_msg(n <= 5 || n == 7, "the spare holds fd %d", n);
	}
	closedir(dir);
	hc_close(&c);
	hd_stop(&d, true);
	unlink(script);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-spares");
	h_add(s, test_spares_are_not_workers, 60);
	h_add(s, test_replacement_is_the_spare, 60);
	h_add(s, test_native_spare_waits, 60);
	h_add(s, test_spare_holds_no_daemon_fd, 60);
	return h_main(s);
}
