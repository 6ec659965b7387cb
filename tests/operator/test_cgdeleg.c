/*
 * test_cgdeleg.c - Check tests of daemon/cgdeleg.c: parsing our cgroup,
 * systemd's delegation mark, and taking over a delegated subtree on a real
 * cgroup2 mount the test makes (moving into the "supervisor" leaf, enabling
 * controllers, a worker cgroup beside the leaf, a second start in place).
 * Without root or a cgroup2 mount, the mount tests say so and pass.
 */
#include "cgdeleg.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
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
	char path[512], s[24];
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
	char path[512];
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

int main(void)
{
	Suite *s = suite_create("cgdeleg");
	TCase *tc = tcase_create("cgdeleg");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, self_path_hybrid_and_v2);
	tcase_add_test(tc, worker_dir);
	tcase_add_test(tc, takes_over_a_delegated_subtree);
	tcase_add_test(tc, missing_cgroup_is_an_error_naming_it);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
