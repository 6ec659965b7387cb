/*
 * test_isolation.c - hostile programs against the sandbox, through the real
 * daemon (DESIGN.md, "Worker modes", "Payload and result bytes", "Sandbox"):
 *
 *  - the stdio worker is a real init: orphans are reaped, a program's whole
 *    process tree goes when its call ends, a fork bomb is bounded per worker
 *    (the `pids` layer) and costs its own call alone;
 *  - a stdio program cannot reach its worker (/proc/1/mem, ptrace,
 *    process_vm_*, pidfd_getfd, kill);
 *  - a worker cannot write its caller's payload (memfd seals, Landlock);
 *  - an OOM kill is told as "out of memory" on the right event;
 *  - started alone in a cgroup v2 cgroup (as systemd starts a Delegate=yes
 *    service), corrald takes it over where it offers memory or pids, and
 *    leaves it alone (v1 as before) where it does not.
 *
 * The hostile programs are hostile_stdio.c and hostile_payload.c.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* A binary from meson's environment. */
static const char *prog(const char *var)
{
	const char *v = getenv(var);
	ck_assert_msg(v && *v, "$%s not set (run through meson test)", var);
	return v;
}

/* Sleep a few milliseconds between polls of state that has no event. */
static void nap_ms(int ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

/* Is layer named in the type's sandbox.active (or .missing when !active)? */
static bool type_has_layer(struct hc *c, const char *type, const char *layer, bool active)
{
	json_t *r = hc_rpc(c, "{\"cmd\":\"types\"}");
	H_OK(r);
	json_t *types = json_object_get(r, "types"), *t;
	size_t i, j;
	bool found = false;
	json_array_foreach(types, i, t)
	{
		if (strcmp(h_str(t, "name"), type) != 0)
			continue;
		json_t *sb = json_object_get(t, "sandbox");
		json_t *arr = json_object_get(sb, active ? "active" : "missing"), *v;
		json_array_foreach(arr, j, v) found |= strcmp(json_string_value(v), layer) == 0;
	}
	json_decref(r);
	return found;
}

/* The pid of the one worker of type (waits until it is idle). */
static pid_t worker_pid(struct hc *c, const char *type, json_int_t *ret_id)
{
	json_t *w = h_wait_workers(c, type, 1, true, 15000);
	pid_t pid = (pid_t)h_int(json_array_get(w, 0), "pid");
	if (ret_id)
		*ret_id = h_int(json_array_get(w, 0), "id");
	json_decref(w);
	return pid;
}

/* The pid namespace of pid as "pid:[N]" into buf; false when gone. */
static bool pidns_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	ssize_t n = readlink(path, buf, len - 1);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* Processes in the pid namespace ns other than skip; zombies among them in *ret_z. */
static int count_in_ns(const char *ns, pid_t skip, int *ret_z)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int n = 0, z = 0;
	char buf[64], path[64];
	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == skip || !pidns_of((pid_t)pid, buf, sizeof(buf)) ||
		    strcmp(buf, ns) != 0)
			continue;
		n++;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		FILE *f = fopen(path, "r");
		char line[512];
		if (f && fgets(line, sizeof(line), f)) {
			char *rp = strrchr(line, ')');
			if (rp && rp[1] == ' ' && rp[2] == 'Z')
				z++;
		}
		if (f)
			fclose(f);
	}
	closedir(dir);
	if (ret_z)
		*ret_z = z;
	return n;
}

/* Processes whose comm is name. */
static int count_comm(const char *name)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int n = 0;
	char path[64], buf[64];
	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\n")] = '\0';
			n += strcmp(buf, name) == 0;
		}
		fclose(f);
	}
	closedir(dir);
	return n;
}

/* A stdio program that forks children outliving it leaves nothing behind. */
START_TEST(test_orphans_reaped)
{
	struct hd d;
	struct hc c;
	hd_up(&d,
	      "{\"types\":{\"orph\":{\"mode\":\"stdio\",\"exec\":[\"%s\",\"orphans\",\"8\"],"
	      "\"pool\":{\"min\":1,\"max\":1}}}}",
	      prog("HOSTILE_STDIO"));
	hc_open(&c, &d);
	pid_t wp = worker_pid(&c, "orph", NULL);
	char ns[64];
	ck_assert(pidns_of(wp, ns, sizeof(ns)));
	for (int i = 0; i < 3; i++) {
		json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"orph\",\"payload\":\"\"}");
		H_OK(r);
		ck_assert_str_eq(h_str(r, "result"), "forked 8\n");
		json_decref(r);
	}
	/* The worker is idle again: its namespace holds the worker alone. */
	ck_assert_int_eq(worker_pid(&c, "orph", NULL), wp);
	int z = 0, n = count_in_ns(ns, wp, &z);
	ck_assert_msg(n == 0 && z == 0, "%d processes (%d zombies) left in the worker's namespace",
		      n, z);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Without a pid namespace the worker is a child subreaper: orphans come to it and go. */
START_TEST(test_orphans_reaped_no_pidns)
{
	struct hd d;
	struct hc c;
	hd_up(&d,
	      "{\"types\":{\"orph\":{\"mode\":\"stdio\",\"exec\":[\"%s\",\"orphans\",\"8\"],"
	      "\"pool\":{\"min\":1,\"max\":1},"
	      "\"sandbox\":{\"namespaces\":[\"user\",\"net\",\"ipc\",\"uts\",\"mount\"]}}}}",
	      prog("HOSTILE_STDIO"));
	hc_open(&c, &d);
	pid_t wp = worker_pid(&c, "orph", NULL);
	for (int i = 0; i < 3; i++) {
		json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"orph\",\"payload\":\"\"}");
		H_OK(r);
		ck_assert_str_eq(h_str(r, "result"), "forked 8\n");
		json_decref(r);
	}
	ck_assert_int_eq(worker_pid(&c, "orph", NULL), wp);
	int z = 0, n = h_count_children(wp, &z);
	ck_assert_msg(n == 0 && z == 0, "the worker has %d children (%d zombies)", n, z);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* The daemon's config for the fork bomb tests: bomb (mode), and cat. */
static void bomb_up(struct hd *d, const char *mode)
{
	hd_up(d,
	      "{\"types\":{"
	      "\"bomb\":{\"mode\":\"stdio\",\"exec\":[\"%s\",\"%s\"],\"pool\":{\"max\":1},"
	      "\"restart\":{\"burst\":100},\"limits\":{\"nproc\":16}},"
	      "\"cat\":{\"mode\":\"stdio\",\"exec\":[\"/bin/cat\"],\"pool\":{\"min\":1,\"max\":1},"
	      "\"limits\":{\"nproc\":16}}}}",
	      prog("HOSTILE_STDIO"), mode);
}

/* cat still serves a call. */
static void assert_cat(struct hc *c)
{
	json_t *r = hc_rpc(c, "{\"cmd\":\"call\",\"type\":\"cat\",\"payload\":\"meow\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "meow");
	json_decref(r);
}

/* Wait (1 s at most after the call ended) until no process of the bomb is left. */
static void assert_bomb_gone(int64_t ended_ms)
{
	int n;
	while ((n = count_comm("corral-bomb")) > 0 && h_now_ms() - ended_ms < 1000)
		nap_ms(10);
	ck_assert_msg(n == 0, "%d processes of the fork bomb 1 s after its call ended", n);
}

/* A program that leaves a fork bomb behind and exits: its call fails, the bomb goes. */
START_TEST(test_fork_bomb_left_behind)
{
	struct hd d;
	struct hc c;
	bomb_up(&d, "bomb");
	hc_open(&c, &d);
	worker_pid(&c, "cat", NULL);
	json_t *r =
	    hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"bomb\",\"payload\":\"\",\"timeout_ms\":5000}");
	int64_t ended = h_now_ms();
	ck_assert_msg(
	    !h_ok(r) && (strcmp(h_err(r), "worker_error") == 0 || strcmp(h_err(r), "timeout") == 0),
	    "bomb call: %s", h_dump(r));
	json_decref(r);
	assert_bomb_gone(ended);
	assert_cat(&c);
	/* And the bomb's worker serves its next call. */
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"bomb\",\"payload\":\"\",\"timeout_ms\":5000}");
	ended = h_now_ms();
	ck_assert_msg(!h_ok(r) && strcmp(h_err(r), "worker_error") == 0, "%s", h_dump(r));
	json_decref(r);
	assert_bomb_gone(ended);
	ck_assert_msg(type_has_layer(&c, "bomb", "cgroup", true), "cgroup layer not active");
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A program that bombs until its timeout: bounded by nproc meanwhile, gone after. */
START_TEST(test_fork_bomb_timeout)
{
	struct hd d;
	struct hc c;
	bomb_up(&d, "bombwait");
	hc_open(&c, &d);
	worker_pid(&c, "cat", NULL);
	json_int_t id = hc_sendf(
	    &c, -1, "{\"cmd\":\"call\",\"type\":\"bomb\",\"payload\":\"\",\"timeout_ms\":2000}");
	/* While it bombs: never more than nproc processes (the worker among them), and cat works.
	 */
	int most = 0;
	for (int i = 0; i < 20; i++) {
		int n = count_comm("corral-bomb");
		most = n > most ? n : most;
		nap_ms(20);
	}
	assert_cat(&c);
	ck_assert_msg(most > 0 && most < 16, "%d bomb processes at once, nproc is 16", most);
	json_t *r = hc_wait_id(&c, id, 30000, NULL);
	int64_t ended = h_now_ms();
	ck_assert_msg(r, "no reply to the bomb call");
	H_ERR(r, "timeout");
	json_decref(r);
	assert_bomb_gone(ended);
	assert_cat(&c);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

static const char *const escapes[] = {
    "mem-write", "mem-read",	"ptrace-attach", "ptrace-seize", "vm-read",
    "vm-write",	 "pidfd-getfd", "kill-term",	 "kill-kill",	 "pidfd-kill",
};

/* Each escape from its own call; seccomp: the type's filter ("none" or "default"). Every
 * escape is tried, and those that got through are listed at the end. */
static void run_escapes(const char *seccomp)
{
	struct hd d;
	struct hc c;
	char bad[2048] = "";
	size_t blen = 0;
	hd_up(&d,
	      "{\"types\":{\"esc\":{\"mode\":\"stdio\",\"exec\":[\"%s\",\"escape\"],"
	      "\"pool\":{\"min\":1,\"max\":1},\"restart\":{\"burst\":100},"
	      "\"sandbox\":{\"seccomp\":\"%s\"}}}}",
	      prog("HOSTILE_STDIO"), seccomp);
	hc_open(&c, &d);
	json_int_t wid;
	pid_t wp = worker_pid(&c, "esc", &wid);
	for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
		json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"esc\",\"payload\":\"%s\"}",
				   escapes[i]);
		char want[64];
		const char *res = h_ok(r) ? h_str(r, "result") : NULL;
		snprintf(want, sizeof(want), "%s: denied", escapes[i]);
		/* Denied, or the daemon's filter killed the program for the attempt itself. */
		bool ok = h_ok(r) ? res && strncmp(res, want, strlen(want)) == 0
				  : strcmp(h_err(r), "sandbox_violation") == 0;
		fprintf(stderr, "seccomp %s: %s -> %s\n", seccomp, escapes[i],
			res ? res : h_dump(r));
		if (!ok)
			blen += (size_t)snprintf(bad + blen, sizeof(bad) - blen, " %s", escapes[i]);
		json_decref(r);
		/* The worker lives on, the same one. */
		json_int_t now;
		pid_t np = worker_pid(&c, "esc", &now);
		if ((np != wp || now != wid) && blen < sizeof(bad) - 64) {
			blen += (size_t)snprintf(bad + blen, sizeof(bad) - blen,
						 " (%s killed the worker)", escapes[i]);
			wp = np;
			wid = now;
		}
	}
	ck_assert_msg(blen == 0, "seccomp %s: escapes that got through:%s", seccomp, bad);
	hc_close(&c);
	hd_stop(&d, true);
}

/* With no filter of the type's own: the worker's own defences. */
START_TEST(test_escapes_no_seccomp)
{
	run_escapes("none");
}
END_TEST

/* With the default filter. */
START_TEST(test_escapes_default)
{
	run_escapes("default");
}
END_TEST

/* A daemon with the payload attacker. */
static void pay_up(struct hd *d, struct hc *c)
{
	hd_up(d, "{\"types\":{\"pay\":{\"exec\":[\"%s\"],\"pool\":{\"min\":1,\"max\":1}}}}",
	      prog("HOSTILE_PAYLOAD"));
	hc_open(c, d);
	worker_pid(c, "pay", NULL);
}

/* Call pay with fd; assert every attack was denied and the bytes are unchanged. */
static void assert_payload_safe(struct hc *c, int fd, const unsigned char *want, size_t len)
{
	int rfd = -1;
	json_t *r =
	    hc_rpc_fd(c, fd, &rfd, "{\"cmd\":\"call\",\"type\":\"pay\",\"payload_fd\":true}");
	H_OK(r);
	ck_assert_msg(rfd >= 0, "no result fd: %s", h_dump(r));
	size_t n;
	unsigned char *res = h_read_fd(rfd, &n);
	char *text = strndup((char *)res, n);
	for (char *q = text; *q; q++)
		*q = *q == '\n' ? ';' : *q; /* one line for the failure message */
	ck_assert_msg(strstr(text, "reopen:") && !strstr(text, "SUCCEEDED"), "attacks: %s", text);
	free(text);
	free(res);
	close(rfd);
	json_decref(r);
	unsigned char *now = h_read_fd(fd, &n);
	ck_assert_msg(n == len && memcmp(now, want, len) == 0, "the payload changed (%zu bytes)",
		      n);
	free(now);
}

/* A memfd the caller left unsealed: the daemon seals it. */
START_TEST(test_payload_memfd_unsealed)
{
	struct hd d;
	struct hc c;
	unsigned char want[4096];
	pay_up(&d, &c);
	h_pattern(want, 0, sizeof(want));
	int fd = h_memfd_pattern(sizeof(want));
	assert_payload_safe(&c, fd, want, sizeof(want));
	int seals = fcntl(fd, F_GET_SEALS);
	ck_assert_msg(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE), "seals 0x%x", seals);
	close(fd);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A memfd sealed by the caller already. */
START_TEST(test_payload_memfd_sealed)
{
	struct hd d;
	struct hc c;
	unsigned char want[4096];
	pay_up(&d, &c);
	h_pattern(want, 0, sizeof(want));
	int fd = h_memfd_pattern(sizeof(want));
	ck_assert_int_eq(
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
	assert_payload_safe(&c, fd, want, sizeof(want));
	close(fd);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A memfd that cannot be sealed: bad_request, saying why. */
START_TEST(test_payload_memfd_unsealable)
{
	struct hd d;
	struct hc c;
	pay_up(&d, &c);
	int fd = memfd_create("unsealable", MFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello", 5), 5);
	json_t *r =
	    hc_rpc_fd(&c, fd, NULL, "{\"cmd\":\"call\",\"type\":\"pay\",\"payload_fd\":true}");
	H_ERR(r, "bad_request");
	ck_assert_msg(strstr(h_errmsg(r), "seal"), "message: %s", h_errmsg(r));
	json_decref(r);
	char buf[8];
	ck_assert_int_eq(pread(fd, buf, 5, 0), 5);
	ck_assert(memcmp(buf, "hello", 5) == 0);
	close(fd);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A world-writable file: the sandbox (Landlock) keeps the worker from writing it. */
START_TEST(test_payload_file_0666)
{
	struct hd d;
	struct hc c;
	unsigned char want[4096];
	pay_up(&d, &c);
	h_pattern(want, 0, sizeof(want));
	char path[160];
	snprintf(path, sizeof(path), "%s/payload", d.dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, 0666), 0);
	ck_assert_int_eq(write(fd, want, sizeof(want)), (ssize_t)sizeof(want));
	assert_payload_safe(&c, fd, want, sizeof(want));
	close(fd);
	ck_assert_msg(h_landlock(), "Landlock not available");
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* Call the stdio type "in" with fd (the caller's offset moved); the program must have found stdin
 * to be how ("file" or "pipe"), failed every attack on it, read want[0..len) from it; fd unchanged,
 * its offset too. */
static void assert_stdin_safe(struct hc *c, int fd, const unsigned char *want, size_t len,
			      const char *how)
{
	unsigned long long sum = 0;
	char line[80];
	size_t n;

	for (size_t i = 0; i < len; i++)
		sum += want[i];
	ck_assert_int_eq(lseek(fd, 100, SEEK_SET), 100);
	int rfd = -1;
	json_t *r = hc_rpc_fd(c, fd, &rfd,
			      "{\"cmd\":\"call\",\"type\":\"in\",\"payload_fd\":true,"
			      "\"timeout_ms\":10000}");
	H_OK(r);
	ck_assert_msg(rfd >= 0, "no result fd: %s", h_dump(r));
	unsigned char *out = h_read_fd(rfd, &n);
	close(rfd);
	char *res = strndup((char *)out, n);
	free(out);
	snprintf(line, sizeof(line), "stdin: %s\n", how);
	ck_assert_msg(strncmp(res, line, strlen(line)) == 0, "result: %s", res);
	ck_assert_msg(strstr(res, "reopen:") && !strstr(res, "SUCCEEDED"), "attacks: %s", res);
	snprintf(line, sizeof(line), "bytes %zu sum %llu\n", len, sum);
	ck_assert_msg(strstr(res, line), "result: %s, want %s", res, line);
	free(res);
	json_decref(r);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 100);
	unsigned char *now = h_read_fd(fd, &n);
	ck_assert_msg(n == len && memcmp(now, want, len) == 0, "the payload changed (%zu bytes)",
		      n);
	free(now);
}

/* A payload fd as a stdio program's stdin: read-only, from offset 0, whatever it tries. */
START_TEST(test_payload_fd_stdin)
{
	struct hd d;
	struct hc c;
	static unsigned char want[100000];
	char path[160];

	hd_up(&d,
	      "{\"types\":{\"in\":{\"mode\":\"stdio\",\"exec\":[\"%s\",\"stdin\"],"
	      "\"pool\":{\"min\":1,\"max\":1}}}}",
	      prog("HOSTILE_STDIO"));
	hc_open(&c, &d);
	worker_pid(&c, "in", NULL);
	h_pattern(want, 0, sizeof(want));
	/* A memfd, sealed by the daemon: the program reads it directly. */
	int fd = h_memfd_pattern(sizeof(want));
	assert_stdin_safe(&c, fd, want, sizeof(want), "file");
	close(fd);
	/* A world-writable file: Landlock keeps the worker, so the program, from writing it. */
	snprintf(path, sizeof(path), "%s/payload", d.dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchmod(fd, 0666), 0);
	ck_assert_int_eq(write(fd, want, sizeof(want)), (ssize_t)sizeof(want));
	assert_stdin_safe(&c, fd, want, sizeof(want),
			  h_landlock() ? "file" : "pipe");
	close(fd);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A stdio program OOM-killed in its worker's memory cgroup: the call says so, the worker's
 * own exit later does not. */
START_TEST(test_oom_stdio_program)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d,
	      "{\"types\":{\"oom\":{\"mode\":\"stdio\",\"exec\":[\"%s\",\"oom\",\"512\"],"
	      "\"pool\":{\"min\":1,\"max\":1},\"limits\":{\"memory_mb\":48}}}}",
	      prog("HOSTILE_STDIO"));
	hc_open(&c, &d);
	json_int_t wid;
	worker_pid(&c, "oom", &wid);
	if (!type_has_layer(&c, "oom", "cgroup", true)) {
		fprintf(stderr, "no memory cgroup here: OOM attribution not tested\n");
		hc_close(&c);
		hd_stop(&d, true);
		return;
	}
	json_int_t sid = hc_watch(&w, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"oom\",\"payload\":\"\"}");
	H_ERR(r, "worker_error");
	ck_assert_msg(strstr(h_errmsg(r), "out of memory"), "message: %s", h_errmsg(r));
	json_decref(r);
	/* The worker survived its program; stopped now, it exits normally. */
	json_int_t now;
	worker_pid(&c, "oom", &now);
	ck_assert_int_eq(now, wid);
	r = hc_rpc(&c, "{\"cmd\":\"stop\",\"worker\":%lld}", (long long)wid);
	H_OK(r);
	json_decref(r);
	json_t *ev = h_wait_state(&w, sid, wid, "exited", 15000);
	ck_assert_msg(strstr(h_str(ev, "reason"), "out of memory") == NULL,
		      "a clean exit told as %s", h_str(ev, "reason"));
	json_decref(ev);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A native worker OOM-killed during a call: its exited event and the call say so. */
START_TEST(test_oom_worker)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d,
	      "{\"types\":{\"oom\":{\"exec\":[\"%s\",\"oom\"],\"pool\":{\"min\":1,\"max\":1},"
	      "\"restart\":{\"burst\":100},\"limits\":{\"memory_mb\":48}}}}",
	      prog("HOSTILE_PAYLOAD"));
	hc_open(&c, &d);
	json_int_t wid;
	worker_pid(&c, "oom", &wid);
	if (!type_has_layer(&c, "oom", "cgroup", true)) {
		fprintf(stderr, "no memory cgroup here: OOM attribution not tested\n");
		hc_close(&c);
		hd_stop(&d, true);
		return;
	}
	json_int_t sid = hc_watch(&w, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"oom\",\"payload\":\"\"}");
	H_ERR(r, "worker_crashed");
	ck_assert_msg(strstr(h_errmsg(r), "out of memory"), "message: %s", h_errmsg(r));
	json_decref(r);
	json_t *ev = h_wait_state(&w, sid, wid, "exited", 15000);
	ck_assert_str_eq(h_str(ev, "reason"), "out of memory");
	json_decref(ev);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* The cgroup v2 path of pid ("0::" line of /proc/PID/cgroup) into buf; false when none. */
static bool cgroup2_of(pid_t pid, char *buf, size_t len)
{
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "re");
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			found = (size_t)snprintf(buf, len, "%s", line + 3) < len;
		}
	fclose(f);
	return found;
}

/* dir/name's first line into buf ("" when unreadable). */
static void cg_read(const char *dir, const char *name, char *buf, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "re");
	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

/* Wait (bounded) until cgroup dir holds no process (cgroup.events' populated 0, which
 * the kernel signals with POLLPRI), then remove it. */
static void cg_remove(const char *dir)
{
	char path[512], text[256];
	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int64_t deadline = h_now_ms() + 10000;
	while (fd >= 0 && h_now_ms() < deadline) {
		ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
		text[n > 0 ? n : 0] = '\0';
		if (n <= 0 || strstr(text, "populated 0"))
			break;
		struct pollfd p = {.fd = fd, .events = POLLPRI};
		poll(&p, 1, 1000);
	}
	if (fd >= 0)
		close(fd);
	rmdir(dir);
}

/*
 * corrald started alone in a fresh cgroup v2 cgroup, as systemd starts a
 * Delegate=yes service (a wrapper moves itself there, then execs corrald).
 * Where that cgroup offers memory or pids (a cgroup v2 host, as root), the
 * daemon moves into its "supervisor" leaf and each worker gets "worker-ID"
 * beside it with memory.max and pids.max, gone after the worker; an OOM kill
 * is told.  Where it offers neither (memory and pids bound to cgroup v1, as on
 * the development machine), the daemon stays where it is and the v1 path
 * works as before: that is all this test can check there, and it says so.
 */
START_TEST(test_delegated_cgroup_v2)
{
	const char *mnt = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
			      ? "/sys/fs/cgroup"
			      : "/sys/fs/cgroup/unified";
	char rel[128], svc[256], leaf[300], offered[256], self[512], want[300], wrap[128];
	char wdir[300], val[64];

	if (geteuid() != 0) {
		fprintf(stderr, "not root: delegated cgroup v2 test skipped\n");
		return;
	}
	snprintf(rel, sizeof(rel), "/corral-e2e-%d.service", (int)getpid());
	snprintf(svc, sizeof(svc), "%s%s", mnt, rel);
	if (mkdir(svc, 0755) < 0) {
		fprintf(stderr, "cannot create a cgroup v2 cgroup at %s: skipped\n", svc);
		return;
	}
	cg_read(svc, "cgroup.controllers", offered, sizeof(offered));
	bool mem = strstr(offered, "memory") != NULL, pids = strstr(offered, "pids") != NULL;

	struct hd d;
	hd_init(&d,
		"{\"types\":{\"oom\":{\"mode\":\"stdio\",\"exec\":[\"%s\",\"oom\",\"512\"],"
		"\"pool\":{\"min\":1,\"max\":1},\"limits\":{\"memory_mb\":48,\"nproc\":40}}}}",
		prog("HOSTILE_STDIO"));
	snprintf(wrap, sizeof(wrap), "%s/cgwrap", d.dir);
	FILE *f = fopen(wrap, "we");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\necho $$ > '%s/cgroup.procs' || exit 126\nexec '%s' \"$@\"\n", svc,
		h_corrald());
	fclose(f);
	ck_assert_int_eq(chmod(wrap, 0755), 0);
	setenv("CORRALD", wrap, 1);
	hd_start(&d);

	struct hc c;
	hc_open(&c, &d);
	json_int_t wid;
	worker_pid(&c, "oom", &wid);
	ck_assert(cgroup2_of(d.pid, self, sizeof(self)));
	snprintf(leaf, sizeof(leaf), "%s/supervisor", svc);
	if (!mem && !pids) {
		fprintf(
		    stderr,
		    "cgroup v2 here offers \"%s\": corrald left its cgroup alone; the delegated "
		    "v2 path was not exercised end to end\n",
		    offered);
		ck_assert_str_eq(self, rel);
		ck_assert_int_ne(access(leaf, F_OK), 0);
	} else {
		snprintf(want, sizeof(want), "%s/supervisor", rel);
		ck_assert_str_eq(self, want);
		snprintf(wdir, sizeof(wdir), "%s/worker-%lld", svc, (long long)wid);
		if (mem) {
			cg_read(wdir, "memory.max", val, sizeof(val));
			ck_assert_str_eq(val, "50331648");
			ck_assert(type_has_layer(&c, "oom", "cgroup", true));
		}
		if (pids) {
			cg_read(wdir, "pids.max", val, sizeof(val));
			ck_assert_str_eq(val, "40");
		}
		if (mem) {
			json_t *r =
			    hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"oom\",\"payload\":\"\"}");
			H_ERR(r, "worker_error");
			ck_assert_msg(strstr(h_errmsg(r), "out of memory"), "message: %s",
				      h_errmsg(r));
			json_decref(r);
		}
		struct hc w;
		json_int_t sid = hc_watch(&w, &d);
		json_t *r = hc_rpc(&c, "{\"cmd\":\"stop\",\"worker\":%lld}", (long long)wid);
		H_OK(r);
		json_decref(r);
		json_decref(h_wait_state(&w, sid, wid, "exited", 15000));
		hc_close(&w);
		ck_assert_msg(access(wdir, F_OK) != 0, "%s outlived its worker", wdir);
	}
	hc_close(&c);
	hd_stop(&d, true);
	/* Whatever is left (the daemon is gone: the subtree empties). */
	DIR *dir = opendir(svc);
	struct dirent *e;
	while (dir && (e = readdir(dir)))
		if (e->d_type == DT_DIR && e->d_name[0] != '.') {
			char sub[600];
			snprintf(sub, sizeof(sub), "%s/%s", svc, e->d_name);
			cg_remove(sub);
		}
	if (dir)
		closedir(dir);
	cg_remove(svc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-isolation");
	h_add(s, test_orphans_reaped, 60);
	h_add(s, test_orphans_reaped_no_pidns, 60);
	h_add(s, test_fork_bomb_left_behind, 60);
	h_add(s, test_fork_bomb_timeout, 60);
	h_add(s, test_escapes_no_seccomp, 60);
	h_add(s, test_escapes_default, 60);
	h_add(s, test_payload_memfd_unsealed, 60);
	h_add(s, test_payload_memfd_sealed, 60);
	h_add(s, test_payload_memfd_unsealable, 60);
	h_add(s, test_payload_file_0666, 60);
	h_add(s, test_payload_fd_stdin, 60);
	h_add(s, test_oom_stdio_program, 60);
	h_add(s, test_oom_worker, 60);
	h_add(s, test_delegated_cgroup_v2, 60);
	return h_main(s);
}
