/*
 * test_cgdeleg.c - Check tests of daemon/cgdeleg.c: parsing our cgroup,
 * systemd's delegation mark, and taking over a delegated subtree on a real
 * cgroup2 mount the test makes (moving into the "supervisor" leaf, enabling
 * controllers, a worker cgroup beside the leaf, a second start in place).
 * Without root or a cgroup2 mount, the mount tests say so and pass.
 *
 * Then daemon/sandbox.c's use of it (sandbox_cgroup_delegate, called by
 * sandbox_probe): on a fake cgroup tree in a temporary directory, the file
 * writes and reads of the v2 path (the move into the leaf, memory.max,
 * memory.swap.max, pids.max, the worker's cgroup.procs, oom_kill from
 * memory.events, cgroup.kill, the kill through cgroup.procs without it, the
 * sweep of a previous daemon's worker cgroups); on a real cgroup2 mount,
 * the detection and, where that mount offers memory or pids (a pure v2 host),
 * the whole path with a process in a worker cgroup.  On a host whose memory
 * and pids controllers are bound to cgroup v1 (as the development machine's),
 * the real mount offers neither: the test checks that the daemon then leaves
 * its cgroup alone and says that the real v2 path was not exercised.
 */
#include "cgdeleg.h"
#include "corrald.h"
#include "sandbox.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

START_TEST(self_path_hybrid_and_v2)
{
	char p[64];

	ck_assert_int_eq(
	    cgdeleg_self_path("4:memory:/x\n1:cpu:/\n0::/system.slice/corrald.service\n", p,
			      sizeof(p)),
	    0);
	ck_assert_str_eq(p, "/system.slice/corrald.service");
	ck_assert_int_eq(cgdeleg_self_path("0::/\n", p, sizeof(p)), 0);
	ck_assert_str_eq(p, "/");
	ck_assert_int_eq(cgdeleg_self_path("0::/a/supervisor", p, sizeof(p)), 0);
	ck_assert_str_eq(p, "/a/supervisor");
	/* cgroup v1 only, empty, or a path that does not fit. */
	ck_assert_int_eq(cgdeleg_self_path("4:memory:/x\n", p, sizeof(p)), -1);
	ck_assert_int_eq(cgdeleg_self_path("", p, sizeof(p)), -1);
	ck_assert_int_eq(cgdeleg_self_path("0::/0123456789", p, 8), -1);
}
END_TEST

START_TEST(worker_dir)
{
	char b[64];

	ck_assert_int_eq(cgdeleg_worker_dir("/sys/fs/cgroup/s.service", 42, b, sizeof(b)), 0);
	ck_assert_str_eq(b, "/sys/fs/cgroup/s.service/worker-42");
	ck_assert_int_eq(cgdeleg_worker_dir("/sys/fs/cgroup/s.service", 42, b, 10), -1);
}
END_TEST

/* A cgroup2 mount for one test, or NULL (said on stdout) where none can be made. */
static char mnt[64];

/* Mount cgroup2 at a fresh directory; false when this machine does not allow it. */
static bool cg2_mount(void)
{
	snprintf(mnt, sizeof(mnt), "/tmp/corral-cg2-XXXXXX");
	if (geteuid() != 0 || !mkdtemp(mnt)) {
		printf("not root: cgroup2 mount tests skipped\n");
		return false;
	}
	if (mount("none", mnt, "cgroup2", 0, NULL) < 0) {
		printf("cannot mount cgroup2 (%s): skipped\n", strerror(errno));
		rmdir(mnt);
		return false;
	}
	return true;
}

/* Unmount and remove the test mount. */
static void cg2_unmount(void)
{
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
}

/* Our cgroup v2 path now. */
static void self_cgroup(char *p, size_t len)
{
	char buf[4096];
	int fd = open("/proc/self/cgroup", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (cgdeleg_self_path(buf, p, len) < 0)
		p[0] = '\0';
}

/* Write pid into dir/cgroup.procs. */
static int move_to(const char *dir, pid_t pid)
{
	char path[1024], s[24];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(s, sizeof(s), "%d", (int)pid);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, s, strlen(s));
	close(fd);
	return w < 0 ? -1 : 0;
}

/* Read dir/file into buf, newline dropped. */
static void read_file(const char *dir, const char *file, char *buf, size_t len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * In a child moved into svc (as systemd starts a service): take the subtree
 * over, then check where everything landed.  Exit status 0 when all held.
 */
static int child_takes_over(const char *svc, const char *svc_rel)
{
	char self[512], base[512], enabled[128], err[256], wdir[600], on[256], again[512];

	if (move_to(svc, getpid()) < 0)
		return 10;
	self_cgroup(self, sizeof(self));
	if (strcmp(self, svc_rel) != 0)
		return 11;
	if (cgdeleg_prepare(mnt, self, "memory pids hugetlb", base, sizeof(base), enabled,
			    sizeof(enabled), err, sizeof(err)) < 0) {
		fprintf(stderr, "prepare: %s\n", err);
		return 12;
	}
	if (strcmp(base, svc) != 0)
		return 13;
	/* We live in the leaf now; the subtree's root holds no process. */
	self_cgroup(self, sizeof(self));
	snprintf(again, sizeof(again), "%s/" CGDELEG_LEAF, svc_rel);
	if (strcmp(self, again) != 0)
		return 14;
	read_file(svc, "cgroup.procs", on, sizeof(on));
	if (on[0])
		return 15;
	/* Every controller reported enabled is on in the subtree. */
	read_file(svc, "cgroup.subtree_control", on, sizeof(on));
	for (char *w = strtok(enabled, " "); w; w = strtok(NULL, " "))
		if (!strstr(on, w))
			return 16;
	/* A worker's cgroup beside the leaf takes a process. */
	if (cgdeleg_worker_dir(base, 1, wdir, sizeof(wdir)) < 0 || mkdir(wdir, 0755) < 0)
		return 17;
	pid_t w = fork();
	if (w == 0) {
		pause();
		_exit(0);
	}
	int bad = move_to(wdir, w) < 0;
	kill(w, SIGKILL);
	waitpid(w, NULL, 0);
	if (bad || rmdir(wdir) < 0)
		return 18;
	/* Started again in place (already in the leaf): the same subtree. */
	if (cgdeleg_prepare(mnt, self, "memory pids hugetlb", again, sizeof(again), enabled,
			    sizeof(enabled), err, sizeof(err)) < 0 ||
	    strcmp(again, base) != 0)
		return 19;
	return 0;
}

START_TEST(takes_over_a_delegated_subtree)
{
	char svc[256], svc_rel[128], leaf[300];
	int status;

	if (!cg2_mount())
		return;
	snprintf(svc_rel, sizeof(svc_rel), "/corral-test-%d.service", (int)getpid());
	snprintf(svc, sizeof(svc), "%s%s", mnt, svc_rel);
	ck_assert_int_eq(mkdir(svc, 0755), 0);
	/* systemd's mark of a delegated cgroup (Delegate=yes). */
	ck_assert(!cgdeleg_is_delegated(svc));
	if (setxattr(svc, "trusted.delegate", "1", 1, 0) == 0)
		ck_assert(cgdeleg_is_delegated(svc));
	else
		printf("no trusted xattrs on cgroupfs here (%s): mark not checked\n",
		       strerror(errno));

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_takes_over(svc, svc_rel));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	snprintf(leaf, sizeof(leaf), "%s/" CGDELEG_LEAF, svc);
	rmdir(leaf);
	rmdir(svc);
	cg2_unmount();
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child step %d failed",
		      WEXITSTATUS(status));
}
END_TEST

START_TEST(missing_cgroup_is_an_error_naming_it)
{
	char base[256], enabled[64], err[256];

	if (!cg2_mount())
		return;
	ck_assert_int_eq(cgdeleg_prepare(mnt, "/no-such-corral-cgroup", "pids", base, sizeof(base),
					 enabled, sizeof(enabled), err, sizeof(err)),
			 -1);
	cg2_unmount();
	ck_assert_msg(strstr(err, "/no-such-corral-cgroup/" CGDELEG_LEAF), "%s", err);
}
END_TEST

/* Create dir/name holding text. */
static void put(const char *dir, const char *name, const char *text)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Remove one entry of a tree (nftw callback). */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Remove a whole tree. */
static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fake delegated service cgroup: T/svc offering ctrls, holding procs, and its leaf. */
static void fake_svc(char *t, size_t tlen, char *svc, size_t slen, const char *ctrls,
		     const char *procs)
{
	snprintf(t, tlen, "/tmp/corral-fakecg-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t));
	snprintf(svc, slen, "%s/svc", t);
	ck_assert_int_eq(mkdir(svc, 0755), 0);
	put(svc, "cgroup.controllers", ctrls);
	put(svc, "cgroup.subtree_control", "memory pids\n");
	put(svc, "cgroup.procs", procs);
	char leaf[600];
	snprintf(leaf, sizeof(leaf), "%s/" CGDELEG_LEAF, svc);
	ck_assert_int_eq(mkdir(leaf, 0755), 0);
	put(leaf, "cgroup.procs", "");
}

START_TEST(detect_takes_only_a_cgroup_of_our_own)
{
	char t[64], svc[128], me[32], two[64], why[512], leaf[256];

	snprintf(me, sizeof(me), "%d\n", (int)getpid());
	snprintf(two, sizeof(two), "%d\n%d\n", (int)getpid(), (int)getppid());
	fake_svc(t, sizeof(t), svc, sizeof(svc), "cpu memory pids\n", me);
	snprintf(leaf, sizeof(leaf), "%s/" CGDELEG_LEAF, svc);

	ck_assert_int_eq(cgdeleg_detect(t, "/svc", "memory pids", why, sizeof(why)), 1);
	/* Never the root cgroup, or a root-level leaf (whose parent is the root). */
	ck_assert_int_eq(cgdeleg_detect(t, "/", "memory pids", why, sizeof(why)), 0);
	ck_assert_int_eq(cgdeleg_detect(t, "/" CGDELEG_LEAF, "memory pids", why, sizeof(why)), 0);
	/* Not alone: moving into the leaf would leave the others behind. */
	put(svc, "cgroup.procs", two);
	ck_assert_int_eq(cgdeleg_detect(t, "/svc", "memory pids", why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "other processes"), "%s", why);
	/* None of the wanted controllers offered (bound to cgroup v1, say). */
	put(svc, "cgroup.procs", me);
	put(svc, "cgroup.controllers", "cpu io hugetlb\n");
	ck_assert_int_eq(cgdeleg_detect(t, "/svc", "memory pids", why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "offers none"), "%s", why);
	ck_assert_int_eq(cgdeleg_detect(t, "/svc", "pids", why, sizeof(why)), 0);
	put(svc, "cgroup.controllers", "pids\n");
	ck_assert_int_eq(cgdeleg_detect(t, "/svc", "memory pids", why, sizeof(why)), 1);
	/* Already in the leaf (started again in place): alone there, none in the parent. */
	put(svc, "cgroup.procs", "");
	put(leaf, "cgroup.procs", me);
	ck_assert_int_eq(cgdeleg_detect(t, "/svc/" CGDELEG_LEAF, "memory pids", why, sizeof(why)),
			 1);
	put(svc, "cgroup.procs", two);
	ck_assert_int_eq(cgdeleg_detect(t, "/svc/" CGDELEG_LEAF, "memory pids", why, sizeof(why)),
			 0);
	/* No such cgroup. */
	ck_assert_int_eq(cgdeleg_detect(t, "/nope", "memory pids", why, sizeof(why)), 0);
	rm_tree(t);
}
END_TEST

/* dir/name's text, newline dropped. */
static const char *text_of(const char *dir, const char *name)
{
	static char buf[256];
	read_file(dir, name, buf, sizeof(buf));
	return buf;
}

/* A child that waits to be killed. */
static pid_t sleeper(void)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

/* True when pid died of SIGKILL (reaped here). */
static bool was_killed(pid_t pid)
{
	int st;
	return waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

START_TEST(sandbox_worker_cgroups_on_a_fake_tree)
{
	char t[64], svc[128], me[32], w[256], dir[300], text[128];
	struct sandbox_plan plan;

	snprintf(me, sizeof(me), "%d\n", (int)getpid());
	fake_svc(t, sizeof(t), svc, sizeof(svc), "cpu memory pids\n", me);
	/* A previous daemon's worker cgroup, and something not ours. */
	snprintf(dir, sizeof(dir), "%s/worker-99", svc);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/other", svc);
	ck_assert_int_eq(mkdir(dir, 0755), 0);

	unsigned bits = sandbox_cgroup_delegate(t, "4:memory:/elsewhere\n0::/svc\n");
	ck_assert_uint_eq(bits, SB_CGROUP | SB_PIDS);
	snprintf(dir, sizeof(dir), "%s/" CGDELEG_LEAF, svc);
	snprintf(text, sizeof(text), "%d", (int)getpid());
	ck_assert_str_eq(text_of(dir, "cgroup.procs"), text); /* moved into the leaf */
	snprintf(dir, sizeof(dir), "%s/worker-99", svc);
	ck_assert_int_ne(access(dir, F_OK), 0); /* swept */
	snprintf(dir, sizeof(dir), "%s/other", svc);
	ck_assert_int_eq(access(dir, F_OK), 0);

	/* Worker 7: memory.max, no swap, pids.max, one cgroup for both. */
	snprintf(w, sizeof(w), "%s/worker-7", svc);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	static const char *const files[] = {"memory.max",   "memory.swap.max", "pids.max",
					    "cgroup.procs", "cgroup.kill",     "memory.events"};
	for (size_t i = 0; i < 6; i++)
		put(w, files[i], "");
	ck_assert_int_eq(sandbox_cgroup_create(7, 64, 32, &plan), 0);
	ck_assert_str_eq(text_of(w, "memory.max"), "67108864");
	ck_assert_str_eq(text_of(w, "memory.swap.max"), "0");
	ck_assert_str_eq(text_of(w, "pids.max"), "32");
	snprintf(dir, sizeof(dir), "%s/cgroup.procs", w);
	ck_assert_str_eq(plan.cgroup_procs, dir);
	ck_assert_ptr_null(plan.pids_procs);

	/* OOM kills come from memory.events' oom_kill (not oom_group_kill). */
	ck_assert_uint_eq(sandbox_cgroup_oom_kills(7), 0);
	put(w, "memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n");
	ck_assert_uint_eq(sandbox_cgroup_oom_kills(7), 2);

	/* Reaped: what is left is killed (cgroup.kill written), an untold OOM kill reported. */
	pid_t left = sleeper();
	snprintf(text, sizeof(text), "%d\n", (int)left);
	put(w, "cgroup.procs", text);
	ck_assert(sandbox_cgroup_finish(7, 1));
	ck_assert_str_eq(text_of(w, "cgroup.kill"), "1");
	ck_assert(was_killed(left));
	ck_assert(!sandbox_cgroup_finish(7, 2));

	/* Worker 8, no memory limit, no cgroup.kill (before Linux 5.14): killed through
	 * cgroup.procs. */
	snprintf(w, sizeof(w), "%s/worker-8", svc);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	put(w, "pids.max", "");
	put(w, "cgroup.procs", "");
	ck_assert_int_eq(sandbox_cgroup_create(8, 0, 5, &plan), 0);
	ck_assert_ptr_null(plan.cgroup_procs);
	snprintf(dir, sizeof(dir), "%s/cgroup.procs", w);
	ck_assert_str_eq(plan.pids_procs, dir);
	ck_assert_str_eq(text_of(w, "pids.max"), "5");
	left = sleeper();
	snprintf(text, sizeof(text), "%d\n", (int)left);
	put(w, "cgroup.procs", text);
	ck_assert(!sandbox_cgroup_finish(8, 0));
	ck_assert(was_killed(left));

	/* Worker 9: the limit cannot be written: an error, nothing left behind. */
	ck_assert_int_lt(sandbox_cgroup_create(9, 64, 32, &plan), 0);
	snprintf(w, sizeof(w), "%s/worker-9", svc);
	ck_assert_int_ne(access(w, F_OK), 0);
	rm_tree(t);
}
END_TEST

/*
 * In a child moved into svc on a real cgroup2 mount: the daemon's probe step.
 * Exit status 0 when all held; 100 when the mount offers neither memory nor
 * pids and the daemon rightly left its cgroup alone.
 */
static int child_sandbox_probe(const char *svc, const char *svc_rel)
{
	char text[4096], self[512], offered[256], w[600], path[700], val[64];

	if (move_to(svc, getpid()) < 0)
		return 10;
	int fd = open("/proc/self/cgroup", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
	if (fd >= 0)
		close(fd);
	text[n > 0 ? n : 0] = '\0';
	read_file(svc, "cgroup.controllers", offered, sizeof(offered));
	bool mem = strstr(offered, "memory"), pids = strstr(offered, "pids");
	unsigned bits = sandbox_cgroup_delegate(mnt, text);
	self_cgroup(self, sizeof(self));
	if (!mem && !pids) {
		/* Not ours to take: not moved, no bits (the v1 lookup runs as before). */
		printf("this cgroup2 mount offers only \"%s\": memory/pids v2 path not exercised "
		       "on a real cgroup\n",
		       offered);
		return bits == 0 && strcmp(self, svc_rel) == 0 ? 100 : 20;
	}
	snprintf(path, sizeof(path), "%s/" CGDELEG_LEAF, svc_rel);
	if (strcmp(self, path) != 0)
		return 21;
	if (bits != ((mem ? SB_CGROUP : 0) | (pids ? SB_PIDS : 0)))
		return 22;
	struct sandbox_plan plan;
	if (sandbox_cgroup_create(1, 64, 32, &plan) < 0)
		return 23;
	snprintf(w, sizeof(w), "%s/worker-1", svc);
	read_file(w, mem ? "memory.max" : "pids.max", val, sizeof(val));
	if (strcmp(val, mem ? "67108864" : "32") != 0)
		return 24;
	/* A process in the worker's cgroup, killed and removed with it. */
	pid_t left = fork();
	if (left == 0) {
		for (;;)
			pause();
	}
	if (move_to(w, left) < 0)
		return 25;
	sandbox_cgroup_finish(1, 0);
	int st;
	if (waitpid(left, &st, 0) != left || !WIFSIGNALED(st))
		return 26;
	if (access(w, F_OK) == 0) {
		/* rmdir raced the dying process: the sweep of the next start takes it. */
		printf("worker cgroup outlived its kill by a moment; removed by the test\n");
		rmdir(w);
	}
	return 0;
}

START_TEST(sandbox_on_a_real_cgroup2_mount)
{
	char svc[256], svc_rel[128], leaf[300];
	int status;

	if (!cg2_mount())
		return;
	snprintf(svc_rel, sizeof(svc_rel), "/corral-sbtest-%d.service", (int)getpid());
	snprintf(svc, sizeof(svc), "%s%s", mnt, svc_rel);
	ck_assert_int_eq(mkdir(svc, 0755), 0);
	fflush(stdout);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int r = child_sandbox_probe(svc, svc_rel);
		fflush(stdout);
		_exit(r);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	snprintf(leaf, sizeof(leaf), "%s/" CGDELEG_LEAF, svc);
	rmdir(leaf);
	rmdir(svc);
	cg2_unmount();
	ck_assert_msg(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 100),
		      "child step %d failed", WEXITSTATUS(status));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cgdeleg");
	TCase *tc = tcase_create("cgdeleg");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, self_path_hybrid_and_v2);
	tcase_add_test(tc, worker_dir);
	tcase_add_test(tc, takes_over_a_delegated_subtree);
	tcase_add_test(tc, missing_cgroup_is_an_error_naming_it);
	tcase_add_test(tc, detect_takes_only_a_cgroup_of_our_own);
	tcase_add_test(tc, sandbox_worker_cgroups_on_a_fake_tree);
	tcase_add_test(tc, sandbox_on_a_real_cgroup2_mount);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
