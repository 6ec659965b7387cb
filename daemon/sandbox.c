/*
 * sandbox.c - worker isolation layers.
 *
 * At start the daemon probes, in a throwaway child, which namespaces the
 * kernel lets it create, compiles the "default" seccomp filter once (the
 * child only installs the ready BPF: no allocation after clone), and finds a
 * memory cgroup it may create children in.  Layers that fail the probe are
 * logged and reported by `types` as missing: never a silent downgrade.
 *
 * Cgroups, in this order: a delegated cgroup v2 subtree (systemd's
 * Delegate=yes; cgdeleg.c decides and takes it over: the daemon moves into
 * its "supervisor" leaf, each worker gets "worker-ID" beside it with
 * memory.max, memory.swap.max 0 and pids.max, OOM kills come from
 * memory.events, and on reap cgroup.kill, or else a kill of each pid in
 * cgroup.procs, empties it before rmdir); else, per controller, the v1
 * hierarchy or a v2 cgroup whose subtree_control already has it
 * ("corral-PID-ID" children, as before).  Tested: the v1 path by the e2e
 * suites on a v1 host; the v2 file writes and reads on a fake tree, and the
 * detection on a real cgroup2 mount, by tests/operator/test_cgdeleg.c.  A
 * real v2 memory.max/pids.max cgroup with a worker in it only runs there on
 * a host whose memory and pids controllers are on cgroup v2 (not bound to
 * v1), as root; no e2e test runs corrald itself under systemd delegation.
 *
 * Child side (between clone and execve, async-signal-safe only):
 *   uid/gid maps -> private mounts -> tmpfs root with read-only binds, tmpfs
 *   paths, a minimal /dev, /proc of the new pid namespace -> pivot_root.
 */
#include <elf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#ifndef ST_VALID
#define ST_VALID 0x0020 /* statfs f_flags is filled (Linux 2.6.36+) */
#endif
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/mount.h>
#include <unistd.h>

#include "cgdeleg.h"
#include "corrald.h"
#include "log.h"
#include "sandbox.h"

#define NEWROOT "/sys" /* mount point of the new root before pivot_root: never exposed */

static struct sock_fprog default_filter;
static bool have_filter;
static char cgroup_base[700]; /* memory cgroup directory we create children in */
static bool cgroup_v2;
static char pids_base[700]; /* pids cgroup directory we create children in */
static bool pids_v2;
static char deleg_base[700]; /* the delegated cgroup v2 subtree we took over, or "" */

/* Length of a NUL-terminated string (async-signal-safe). */
static size_t s_len(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* dst = a + b, bounded; -ENAMETOOLONG when it does not fit. */
static int s_join(char *dst, size_t cap, const char *a, const char *b)
{
	size_t la = s_len(a), lb = s_len(b);
	if (la + lb + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(dst, a, la);
	memcpy(dst + la, b, lb + 1);
	return 0;
}

/* Decimal of v into buf (at least 24 bytes); returns buf. */
static char *s_u64(char *buf, unsigned long long v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (int i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return buf;
}

/* Write a string to a file (async-signal-safe). */
static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, s_len(s));
	int e = errno;
	close(fd);
	return n < 0 ? -e : 0;
}

/* Write "id id 1" maps for the user namespace (our own ids only: no privilege needed). */
int sandbox_child_maps(const struct sandbox_plan *p)
{
	char line[64], num[24];
	int r;

	/* setresuid made the (shared) mm non-dumpable: /proc/self would be root's. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	if ((r = write_file("/proc/self/setgroups", "deny")) < 0)
		return r;
	s_u64(num, p->uid);
	s_join(line, sizeof(line), num, " ");
	s_join(line, sizeof(line), line, num);
	s_join(line, sizeof(line), line, " 1");
	if ((r = write_file("/proc/self/uid_map", line)) < 0)
		return r;
	s_u64(num, p->gid);
	s_join(line, sizeof(line), num, " ");
	s_join(line, sizeof(line), line, num);
	s_join(line, sizeof(line), line, " 1");
	return write_file("/proc/self/gid_map", line);
}

/* mkdir -p of path (a writable copy), mode 0755. */
static int mkdir_p(char *path)
{
	for (char *q = path + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		int r = mkdir(path, 0755);
		*q = '/';
		if (r < 0 && errno != EEXIST)
			return -errno;
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Create an empty file at path (parents too), as a bind target. */
static int touch_p(char *path)
{
	char *slash = NULL;
	for (char *q = path; *q; q++)
		if (*q == '/')
			slash = q;
	if (slash && slash != path) {
		*slash = '\0';
		int r = mkdir_p(path);
		*slash = '/';
		if (r < 0)
			return r;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* Mount flags that a remount inside a user namespace must keep (locked flags). */
static unsigned long locked_flags(const char *path)
{
	struct statfs sf;
	unsigned long f = 0;
	/* statfs(2), not statvfs(3): no fallback through stdio in the child. */
	if (statfs(path, &sf) < 0 || !(sf.f_flags & ST_VALID))
		return MS_NOSUID | MS_NODEV;
	if (sf.f_flags & ST_NOSUID)
		f |= MS_NOSUID;
	if (sf.f_flags & ST_NODEV)
		f |= MS_NODEV;
	if (sf.f_flags & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sf.f_flags & ST_NOATIME)
		f |= MS_NOATIME;
	if (sf.f_flags & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sf.f_flags & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* Make the mount at dst and every mount below it read-only. */
static int make_ro(const char *dst)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	if (syscall(SYS_mount_setattr, AT_FDCWD, dst, AT_RECURSIVE, &attr, sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	/* Before Linux 5.12: the top mount only. */
	if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(dst), NULL) < 0)
		return -errno;
	return 0;
}

/*
 * Bind src read-only at NEWROOT/path (a directory, a file, or a symlink
 * recreated as such).  src is path itself, or a /proc/self/fd/N link to it.
 */
static int bind_ro_from(const char *src, const char *path)
{
	char dst[4096], link[4096];
	struct stat st;
	int r;

	if (lstat(src, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if ((r = s_join(dst, sizeof(dst), NEWROOT, path)) < 0)
		return r;
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlink(src, link, sizeof(link) - 1);
		if (n < 0)
			return -errno;
		link[n] = '\0';
		char *slash = NULL;
		for (char *q = dst; *q; q++)
			if (*q == '/')
				slash = q;
		if (slash) {
			*slash = '\0';
			if ((r = mkdir_p(dst)) < 0)
				return r;
			*slash = '/';
		}
		if (symlink(link, dst) < 0 && errno != EEXIST)
			return -errno;
		return 0;
	}
	r = S_ISDIR(st.st_mode) ? mkdir_p(dst) : touch_p(dst);
	if (r < 0)
		return r;
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	return make_ro(dst);
}

/* Bind a path read-only at the same path inside. */
static int bind_ro(const char *path)
{
	return bind_ro_from(path, path);
}

/* Attach a detached tree (from open_tree) read-only at NEWROOT/path. */
static int attach_ro(int fd, const char *path)
{
	char dst[4096];
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((r = s_join(dst, sizeof(dst), NEWROOT, path)) < 0)
		return r;
	r = S_ISDIR(st.st_mode) ? mkdir_p(dst) : touch_p(dst);
	if (r < 0)
		return r;
	if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -errno;
	return make_ro(dst);
}

/* Clone each ro path as a detached tree while still privileged. */
void sandbox_child_trees(const struct sandbox_plan *p)
{
	struct stat st;

	for (size_t i = 0; p->ro_paths && p->ro_paths[i]; i++) {
		p->ro_fds[i] = -1;
		/* A symlink is recreated as a link, by path. */
		if (lstat(p->ro_paths[i], &st) < 0 || S_ISLNK(st.st_mode))
			continue;
		p->ro_fds[i] = (int)syscall(SYS_open_tree, AT_FDCWD, p->ro_paths[i],
					    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	}
}

/* Build the new root and pivot into it. */
int sandbox_child_mounts(const struct sandbox_plan *p)
{
	char dst[4096];
	int r;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (mount("corral", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return -errno;
	for (char *const *t = p->tmpfs; t && *t; t++) {
		if ((r = s_join(dst, sizeof(dst), NEWROOT, *t)) < 0 || (r = mkdir_p(dst)) < 0)
			return r;
		if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m") < 0)
			return -errno;
	}
	for (size_t i = 0; p->ro_paths && p->ro_paths[i]; i++) {
		int fd = p->ro_fds ? p->ro_fds[i] : -1;
		if ((r = fd >= 0 ? attach_ro(fd, p->ro_paths[i]) : bind_ro(p->ro_paths[i])) < 0)
			return r;
	}
	/* A minimal /dev: null, zero, urandom bound from the host. */
	static const char *const devs[] = {"/dev/null", "/dev/zero", "/dev/urandom"};
	if ((r = s_join(dst, sizeof(dst), NEWROOT, "/dev")) < 0 || (r = mkdir_p(dst)) < 0)
		return r;
	if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
		return -errno;
	for (int i = 0; i < 3; i++) {
		if ((r = s_join(dst, sizeof(dst), NEWROOT, devs[i])) < 0 || (r = touch_p(dst)) < 0)
			return r;
		if (mount(devs[i], dst, NULL, MS_BIND, NULL) < 0)
			return -errno;
	}
	if (p->ns & NS_PID) {
		if ((r = s_join(dst, sizeof(dst), NEWROOT, "/proc")) < 0 || (r = mkdir_p(dst)) < 0)
			return r;
		if (mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return -errno;
	}
	if (chdir(NEWROOT) < 0)
		return -errno;
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return -errno;
	if (umount2(".", MNT_DETACH) < 0)
		return -errno;
	if (chdir("/") < 0)
		return -errno;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
	    0)
		return -errno;
	return 0;
}

/* Read exactly n bytes at off; 0 or -1. */
static int pread_all(int fd, void *buf, size_t n, off_t off)
{
	return pread(fd, buf, n, off) == (ssize_t)n ? 0 : -1;
}

/* Directories a program's ELF RUNPATH/RPATH names ($ORIGIN resolved). */
char **sandbox_elf_rundirs(const char *path)
{
	Elf64_Ehdr eh;
	char **dirs = NULL;
	char *rp = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (pread_all(fd, &eh, sizeof(eh), 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    eh.e_phnum > 256)
		goto out;
	Elf64_Phdr ph[256];
	if (pread_all(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), (off_t)eh.e_phoff) < 0)
		goto out;
	/* The dynamic section, and the file offset of a virtual address. */
	const Elf64_Phdr *dyn = NULL;
	for (unsigned i = 0; i < eh.e_phnum; i++)
		if (ph[i].p_type == PT_DYNAMIC)
			dyn = &ph[i];
	if (!dyn || dyn->p_filesz > 65536)
		goto out;
	Elf64_Dyn d[4096];
	size_t nd = dyn->p_filesz / sizeof(Elf64_Dyn);
	if (pread_all(fd, d, nd * sizeof(Elf64_Dyn), (off_t)dyn->p_offset) < 0)
		goto out;
	uint64_t strtab = 0, rpath = UINT64_MAX;
	for (size_t i = 0; i < nd && d[i].d_tag != DT_NULL; i++) {
		if (d[i].d_tag == DT_STRTAB)
			strtab = d[i].d_un.d_ptr;
		else if (d[i].d_tag == DT_RUNPATH ||
			 (d[i].d_tag == DT_RPATH && rpath == UINT64_MAX))
			rpath = d[i].d_un.d_val;
	}
	if (rpath == UINT64_MAX)
		goto out;
	off_t stroff = -1;
	for (unsigned i = 0; i < eh.e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && strtab >= ph[i].p_vaddr &&
		    strtab < ph[i].p_vaddr + ph[i].p_filesz)
			stroff = (off_t)(ph[i].p_offset + (strtab - ph[i].p_vaddr));
	char buf[4096];
	if (stroff < 0 || pread(fd, buf, sizeof(buf) - 1, stroff + (off_t)rpath) <= 0)
		goto out;
	buf[sizeof(buf) - 1] = '\0';
	char origin[4096];
	snprintf(origin, sizeof(origin), "%s", path);
	char *slash = strrchr(origin, '/');
	if (slash)
		*slash = '\0';
	size_t n = 0;
	dirs = calloc(64, sizeof(char *));
	for (char *save = NULL, *tok = strtok_r(buf, ":", &save); dirs && tok && n < 63;
	     tok = strtok_r(NULL, ":", &save)) {
		char full[8192];
		if (strncmp(tok, "$ORIGIN", 7) == 0)
			snprintf(full, sizeof(full), "%s%s", origin, tok + 7);
		else if (strncmp(tok, "${ORIGIN}", 9) == 0)
			snprintf(full, sizeof(full), "%s%s", origin, tok + 9);
		else
			snprintf(full, sizeof(full), "%s", tok);
		char *real = realpath(full, NULL);
		if (real)
			dirs[n++] = real;
	}
out:
	free(rp);
	close(fd);
	return dirs;
}

/* The compiled "default" filter, or NULL. */
const struct sock_fprog *sandbox_default_filter(void)
{
	return have_filter ? &default_filter : NULL;
}

/* One argument comparison, every field named (libseccomp's SCMP_A* macros leave
 * datum_b out, which clang's -Wmissing-field-initializers rejects). */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a,
				   scmp_datum_t b)
{
	struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};
	return c;
}

/* Compile the default filter to BPF once, through a memfd. */
static bool compile_default_filter(void)
{
	static const char *const denied[] = {
	    "ptrace",
	    "mount",
	    "umount2",
	    "kexec_load",
	    "kexec_file_load",
	    "bpf",
	    "perf_event_open",
	    "keyctl",
	    "add_key",
	    "request_key",
	    "unshare",
	    "setns",
	    "pivot_root",
	    "chroot",
	    "init_module",
	    "finit_module",
	    "delete_module",
	    "reboot",
	    "swapon",
	    "swapoff",
	    "open_by_handle_at",
	    "userfaultfd",
	    "io_uring_setup",
	    "fsopen",
	    "fsmount",
	    "move_mount",
	    "open_tree",
	    "process_vm_readv",
	    "process_vm_writev",
	    "acct",
	    "settimeofday",
	    "clock_settime",
	    "adjtimex",
	    "sethostname",
	    "setdomainname",
	    "iopl",
	    "ioperm",
	    "quotactl",
	    "lookup_dcookie",
	    "name_to_handle_at",
	    "vhangup",
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return false;
	bool ok = true;
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, nr, 0) < 0)
			ok = false;
	}
	/* Sockets: AF_UNIX only. */
	ok = ok && seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(socket), 1,
				    arg_cmp(0, SCMP_CMP_NE, AF_UNIX, 0)) == 0;
	ok = ok && seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(socketpair), 1,
				    arg_cmp(0, SCMP_CMP_NE, AF_UNIX, 0)) == 0;
	/* New namespaces through clone's flags; clone3 hides them in memory: ENOSYS -> clone. */
	static const unsigned long nsflags[] = {CLONE_NEWUSER,	CLONE_NEWNS,  CLONE_NEWPID,
						CLONE_NEWNET,	CLONE_NEWIPC, CLONE_NEWUTS,
						CLONE_NEWCGROUP};
	for (size_t i = 0; ok && i < sizeof(nsflags) / sizeof(nsflags[0]); i++)
		ok = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
				      arg_cmp(0, SCMP_CMP_MASKED_EQ, nsflags[i], nsflags[i])) == 0;
	ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) == 0;
	int fd = ok ? memfd_create("corral-bpf", MFD_CLOEXEC) : -1;
	if (fd >= 0 && seccomp_export_bpf(ctx, fd) == 0) {
		off_t size = lseek(fd, 0, SEEK_END);
		struct sock_filter *f = size > 0 ? malloc((size_t)size) : NULL;
		if (f && pread(fd, f, (size_t)size, 0) == size) {
			default_filter.filter = f;
			default_filter.len = (unsigned short)((size_t)size / sizeof(*f));
			have_filter = true;
		} else {
			free(f);
		}
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return have_filter;
}

/*
 * Find the cgroup of controller ctrl ("memory", "pids") we may create
 * per-worker children in: a v1 hierarchy of its own, or the v2 one with ctrl
 * in our cgroup's subtree_control.  Fills base and *v2.
 */
static bool find_cgroup(const char *ctrl, char *base, size_t len, bool *v2)
{
	char line[1024], path[700], probe[800];
	FILE *f = fopen("/proc/self/cgroup", "re");
	size_t cl = strlen(ctrl);
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1, *cg = c2 + 1, *m = strstr(ctrls, ctrl);
		if (m && (m == ctrls || m[-1] == ',') && (m[cl] == '\0' || m[cl] == ',')) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup/%s%s", ctrl, cg);
			*v2 = false;
		} else if (*ctrls == '\0' && line[0] == '0') {
			const char *mnt = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
					      ? "/sys/fs/cgroup"
					      : "/sys/fs/cgroup/unified";
			snprintf(path, sizeof(path), "%s%s", mnt, cg);
			snprintf(probe, sizeof(probe), "%s/cgroup.subtree_control", path);
			FILE *sc = fopen(probe, "re");
			char buf[256] = "";
			if (sc) {
				if (!fgets(buf, sizeof(buf), sc))
					buf[0] = '\0';
				fclose(sc);
			}
			if (!strstr(buf, ctrl))
				continue; /* not delegated to us */
			*v2 = true;
		} else {
			continue;
		}
		snprintf(probe, sizeof(probe), "%s/corral-probe-%d", path, (int)getpid());
		if (mkdir(probe, 0755) == 0) {
			rmdir(probe);
			snprintf(base, len, "%s", path);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* The directory of worker_id's cgroup under base ("worker-ID" beside our leaf in a
 * delegated subtree, which is ours alone; "corral-PID-ID" in a shared cgroup). */
static void cgroup_dir(char *buf, size_t len, const char *base, uint64_t worker_id)
{
	if (deleg_base[0] && strcmp(base, deleg_base) == 0 &&
	    cgdeleg_worker_dir(base, worker_id, buf, len) == 0)
		return;
	snprintf(buf, len, "%s/corral-%d-%llu", base, (int)getpid(), (unsigned long long)worker_id);
}

/* Per-worker memory and pids cgroups; plan gets their cgroup.procs paths. */
int sandbox_cgroup_create(uint64_t worker_id, uint64_t memory_mb, uint64_t nproc,
			  struct sandbox_plan *plan)
{
	char dir[800], file[900], val[32];
	int r = 0;

	plan->cgroup_procs = plan->pids_procs = NULL;
	if (memory_mb && cgroup_base[0]) {
		cgroup_dir(dir, sizeof(dir), cgroup_base, worker_id);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		snprintf(val, sizeof(val), "%llu", (unsigned long long)memory_mb << 20);
		snprintf(file, sizeof(file), "%s/%s", dir,
			 cgroup_v2 ? "memory.max" : "memory.limit_in_bytes");
		if (write_file(file, val) < 0) {
			rmdir(dir);
			return -EIO;
		}
		if (cgroup_v2) {
			snprintf(file, sizeof(file), "%s/memory.swap.max", dir);
			write_file(file, "0");
		} else {
			snprintf(file, sizeof(file), "%s/memory.memsw.limit_in_bytes", dir);
			write_file(file, val);
		}
		snprintf(plan->cg_buf[0], sizeof(plan->cg_buf[0]), "%s/cgroup.procs", dir);
		plan->cgroup_procs = plan->cg_buf[0];
	}
	if (pids_base[0]) {
		cgroup_dir(dir, sizeof(dir), pids_base, worker_id);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			r = -errno;
		snprintf(val, sizeof(val), "%llu", (unsigned long long)nproc);
		snprintf(file, sizeof(file), "%s/pids.max", dir);
		if (r == 0 && write_file(file, val) < 0)
			r = -EIO;
		snprintf(plan->cg_buf[1], sizeof(plan->cg_buf[1]), "%s/cgroup.procs", dir);
		if (r == 0 && (!plan->cgroup_procs || strcmp(plan->cg_buf[1], plan->cgroup_procs)))
			plan->pids_procs = plan->cg_buf[1];
		if (r < 0) {
			sandbox_cgroup_finish(worker_id, 0);
			return r;
		}
	}
	return 0;
}

/* A small file's text into buf (NUL-terminated, cut at len - 1); false when unreadable. No
 * stdio: this runs once per worker exit, and stays off the heap. */
static bool read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* OOM kills in the worker's memory cgroup so far. */
uint64_t sandbox_cgroup_oom_kills(uint64_t worker_id)
{
	char dir[800], file[900], text[1024];
	if (!cgroup_base[0])
		return 0;
	cgroup_dir(dir, sizeof(dir), cgroup_base, worker_id);
	snprintf(file, sizeof(file), "%s/%s", dir,
		 cgroup_v2 ? "memory.events" : "memory.oom_control");
	if (!read_small(file, text, sizeof(text)))
		return 0;
	const char *k = strstr(text, "oom_kill ");
	return k ? strtoull(k + 9, NULL, 10) : 0;
}

/*
 * SIGKILL every process in a cgroup directory: at once through cgroup.kill
 * where v2 has it (Linux 5.14+), then (or else) a few passes over cgroup.procs,
 * as they may fork meanwhile.
 */
static void cgroup_kill(const char *dir, bool v2)
{
	char file[900], text[4096];
	if (v2) {
		snprintf(file, sizeof(file), "%s/cgroup.kill", dir);
		write_file(file, "1");
	}
	snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
	for (int pass = 0; pass < 8 && read_small(file, text, sizeof(text)) && text[0]; pass++)
		for (char *p = text, *end; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			if (pid > 0)
				kill((pid_t)pid, SIGKILL);
		}
}

/* The worker is gone: kill the rest of its cgroups, remove them; OOM kills not told yet? */
bool sandbox_cgroup_finish(uint64_t worker_id, uint64_t told)
{
	char dir[800];
	bool oom = sandbox_cgroup_oom_kills(worker_id) > told;
	if (pids_base[0]) {
		/* Without a pid namespace, the program's tree does not die with its worker. */
		cgroup_dir(dir, sizeof(dir), pids_base, worker_id);
		cgroup_kill(dir, pids_v2);
		rmdir(dir);
	}
	if (cgroup_base[0]) {
		cgroup_dir(dir, sizeof(dir), cgroup_base, worker_id);
		if (cgroup_v2 && strcmp(cgroup_base, pids_base) != 0)
			cgroup_kill(dir, true); /* v2 rmdir needs it empty; v1 as ever */
		rmdir(dir);
	}
	return oom;
}

/* True when the space-separated list holds word. */
static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

/* Kill and remove the worker cgroups a previous daemon left in our delegated subtree. */
static void deleg_sweep(const char *base)
{
	DIR *dir = opendir(base);
	struct dirent *e;
	char path[1024];
	unsigned long long id;

	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (sscanf(e->d_name, "worker-%llu", &id) == 1) {
			snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
			cgroup_kill(path, true);
			/* Fails while a dying process is still inside: then it stays. */
			rmdir(path);
		}
	closedir(dir);
}

/*
 * Take over a delegated cgroup v2 subtree (systemd's Delegate=yes): where
 * cgdeleg_detect finds our cgroup under mnt ours alone, with memory or pids
 * offered, move into its "supervisor" leaf, enable the controllers and make
 * per-worker cgroups beside the leaf (memory.max, pids.max).  Returns the
 * SB_CGROUP / SB_PIDS bits it provides, 0 when it does not apply (the v1 or
 * undelegated v2 lookup of find_cgroup then runs as before).
 */
unsigned sandbox_cgroup_delegate(const char *mnt, const char *proc_cgroup)
{
	char self[600], why[800], base[700], enabled[64], err[900];
	unsigned bits = 0;

	if (cgdeleg_self_path(proc_cgroup, self, sizeof(self)) < 0)
		return 0;
	if (!cgdeleg_detect(mnt, self, "memory pids", why, sizeof(why))) {
		log_debug("cgroup v2: not taking over our cgroup: %s", why);
		return 0;
	}
	if (cgdeleg_prepare(mnt, self, "memory pids", base, sizeof(base), enabled, sizeof(enabled),
			    err, sizeof(err)) < 0) {
		log_warn("cgroup v2: cannot take over our delegated cgroup: %s", err);
		return 0;
	}
	snprintf(deleg_base, sizeof(deleg_base), "%s", base);
	if (word_in(enabled, "memory")) {
		snprintf(cgroup_base, sizeof(cgroup_base), "%s", base);
		cgroup_v2 = true;
		bits |= SB_CGROUP;
	}
	if (word_in(enabled, "pids")) {
		snprintf(pids_base, sizeof(pids_base), "%s", base);
		pids_v2 = true;
		bits |= SB_PIDS;
	}
	deleg_sweep(base);
	log_info("cgroup v2: per-worker cgroups under %s (%s), the daemon in %s/" CGDELEG_LEAF "%s",
		 base, enabled, base,
		 cgdeleg_is_delegated(base) ? " (marked delegated by systemd)" : "");
	return bits;
}

/* Landlock's ABI up to 6 (the system header may predate it). */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};
struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
#define LL_RULE_PATH_BENEATH 1
#define LL_FS_WRITE_FILE     (1ULL << 1)
#define LL_FS_REMOVE_DIR     (1ULL << 4)
#define LL_FS_REMOVE_FILE    (1ULL << 5)
#define LL_FS_MAKE_CHAR	     (1ULL << 6)
#define LL_FS_MAKE_DIR	     (1ULL << 7)
#define LL_FS_MAKE_REG	     (1ULL << 8)
#define LL_FS_MAKE_SOCK	     (1ULL << 9)
#define LL_FS_MAKE_FIFO	     (1ULL << 10)
#define LL_FS_MAKE_BLOCK     (1ULL << 11)
#define LL_FS_MAKE_SYM	     (1ULL << 12)
#define LL_FS_REFER	     (1ULL << 13) /* ABI 2 */
#define LL_FS_TRUNCATE	     (1ULL << 14) /* ABI 3 */
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule	    445
#define SYS_landlock_restrict_self  446
#endif

static long ll_abi; /* Landlock ABI version, 0: none */

/* Every write-side access this ABI knows (reads and exec stay free). */
static uint64_t ll_handled(void)
{
	uint64_t a = LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_CHAR |
		     LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO |
		     LL_FS_MAKE_BLOCK | LL_FS_MAKE_SYM;
	if (ll_abi >= 2)
		a |= LL_FS_REFER;
	if (ll_abi >= 3)
		a |= LL_FS_TRUNCATE;
	return a;
}

/* Allow access beneath path (skipped when it does not exist). */
static int ll_allow(int rs, const char *path, uint64_t access)
{
	struct ll_path_beneath_attr pb = {.allowed_access = access};
	pb.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (pb.parent_fd < 0)
		return errno == ENOENT ? 0 : -errno;
	long r = syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb, 0);
	int e = errno;
	close(pb.parent_fd);
	return r < 0 ? -e : 0;
}

/* Writes only under the tmpfs paths, and to the few devices /dev shows. */
int sandbox_child_landlock(const struct sandbox_plan *p)
{
	static const char *const devs[] = {"/dev/null", "/dev/zero", "/dev/urandom"};
	struct ll_ruleset_attr attr = {.handled_access_fs = ll_handled()};
	uint64_t dev = LL_FS_WRITE_FILE | (ll_abi >= 3 ? LL_FS_TRUNCATE : 0);
	int r = 0;

	if (ll_abi < 1)
		return 0;
	int rs =
	    (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr.handled_access_fs), 0);
	if (rs < 0)
		return -errno;
	for (char *const *t = p->tmpfs; r == 0 && t && *t; t++)
		r = ll_allow(rs, *t, attr.handled_access_fs);
	for (size_t i = 0; r == 0 && i < sizeof(devs) / sizeof(devs[0]); i++)
		r = ll_allow(rs, devs[i], dev);
	if (r == 0 && syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		r = -errno;
	close(rs);
	return r;
}

/* Try creating each namespace in a throwaway child; SB_* bits of those that work. */
static unsigned probe_namespaces(void)
{
	static const struct {
		int flag;
		unsigned bit;
	} ns[] = {
	    {CLONE_NEWPID, SB_PID}, {CLONE_NEWNET, SB_NET},  {CLONE_NEWIPC, SB_IPC},
	    {CLONE_NEWUTS, SB_UTS}, {CLONE_NEWNS, SB_MOUNT},
	};
	int pfd[2];
	unsigned ok = 0;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return 0;
	pid_t pid = fork();
	if (pid == 0) {
		unsigned bits = 0;
		uid_t uid = geteuid();
		gid_t gid = getegid();
		if (unshare(CLONE_NEWUSER) == 0) {
			char line[64];
			bits |= SB_USER;
			write_file("/proc/self/setgroups", "deny");
			snprintf(line, sizeof(line), "%u %u 1", (unsigned)uid, (unsigned)uid);
			write_file("/proc/self/uid_map", line);
			snprintf(line, sizeof(line), "%u %u 1", (unsigned)gid, (unsigned)gid);
			write_file("/proc/self/gid_map", line);
			for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
				if (unshare(ns[i].flag) == 0)
					bits |= ns[i].bit;
		}
		ssize_t w = write(pfd[1], &bits, sizeof(bits));
		_exit(w == sizeof(bits) ? 0 : 1);
	}
	close(pfd[1]);
	if (pid > 0) {
		if (read(pfd[0], &ok, sizeof(ok)) != sizeof(ok))
			ok = 0;
		waitpid(pid, NULL, 0);
	}
	close(pfd[0]);
	return ok;
}

/* Remove per-worker cgroups under base that a previous daemon (killed, not drained) left behind. */
static void cgroup_sweep(const char *base)
{
	DIR *dir = opendir(base);
	struct dirent *e;
	char path[1024], proc[64];

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		int pid;
		if (sscanf(e->d_name, "corral-%d-", &pid) != 1 || pid == (int)getpid())
			continue;
		snprintf(proc, sizeof(proc), "/proc/%d", pid);
		if (access(proc, F_OK) == 0)
			continue; /* its daemon lives */
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		rmdir(path); /* fails while a process is still inside: then it stays */
	}
	closedir(dir);
}

/* Probe the layers this kernel and this daemon can apply. */
unsigned sandbox_probe(struct daemon *d)
{
	(void)d;
	unsigned bits = SB_RLIMITS | probe_namespaces();
	if (compile_default_filter())
		bits |= SB_SECCOMP;
	/* A delegated v2 subtree first (under systemd); else v1, or v2 as found. */
	char text[4096];
	const char *mnt = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0
			      ? "/sys/fs/cgroup"
			      : "/sys/fs/cgroup/unified";
	unsigned deleg = read_small("/proc/self/cgroup", text, sizeof(text))
			     ? sandbox_cgroup_delegate(mnt, text)
			     : 0;
	bits |= deleg;
	if (!(deleg & SB_CGROUP) &&
	    find_cgroup("memory", cgroup_base, sizeof(cgroup_base), &cgroup_v2)) {
		bits |= SB_CGROUP;
		cgroup_sweep(cgroup_base);
	}
	if (!(deleg & SB_PIDS) && find_cgroup("pids", pids_base, sizeof(pids_base), &pids_v2)) {
		bits |= SB_PIDS;
		if (strcmp(pids_base, cgroup_base) != 0)
			cgroup_sweep(pids_base);
	}
	ll_abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* ..._VERSION */);
	if (ll_abi >= 1)
		bits |= SB_LANDLOCK;
	else
		ll_abi = 0;
	for (unsigned b = 0; b < SB_NLAYERS; b++)
		if (!(bits & (1u << b)))
			log_warn("sandbox layer %s is not available on this system",
				 sandbox_layer_names[b]);
	return bits;
}
