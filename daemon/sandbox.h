/*
 * sandbox.h - worker isolation: what the kernel offers (probed once at start),
 * the precompiled seccomp filter, and the child-side setup that runs between
 * clone and execve (async-signal-safe only: no malloc, no stdio, no locks).
 */
#ifndef CORRAL_SANDBOX_H
#define CORRAL_SANDBOX_H

#include <linux/filter.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

struct daemon;

/* Everything the child needs, prepared by the parent before the clone. */
struct sandbox_plan {
	unsigned ns;	  /* NS_* bits to create */
	bool switch_user; /* setresuid/setresgid before the user namespace */
	uid_t uid;	  /* worker's uid outside (and inside) */
	gid_t gid;
	char *const *ro_paths; /* bind read-only, NULL-terminated */
	int *ro_fds;	       /* scratch, one per ro_paths entry: detached trees made by the
				  privileged first child (open_tree), -1 where none */
	char *const *tmpfs;    /* fresh tmpfs, NULL-terminated */
	int exec_fd;	       /* O_PATH fd of the program to exec, opened by the daemon (the
				  worker's uid may not be able to walk its directories, and
				  the mount namespace need not show it); fd 6 in the child.
				  -1: exec by path */
	const struct sock_fprog *filter; /* NULL: none */
	const char *cgroup_procs;	 /* the memory cgroup's cgroup.procs to join, or NULL */
	const char *pids_procs;		 /* the pids cgroup's, when another one, or NULL */
	char *const *envp;		 /* the worker environment; NULL: ours */
	char cg_buf[2][900];		 /* storage of cgroup_procs and pids_procs */
};

/* Probe the layers this kernel and this daemon can apply (SB_* bits); logs what is missing. */
unsigned sandbox_probe(struct daemon *d);

/* The compiled "default" filter, or NULL when seccomp is unavailable. */
const struct sock_fprog *sandbox_default_filter(void);

/*
 * Child side, after the user namespace exists: write uid/gid maps, then build
 * the mount namespace and pivot into it.  Returns 0 or -errno; async-signal-safe.
 */
int sandbox_child_maps(const struct sandbox_plan *p);
int sandbox_child_mounts(const struct sandbox_plan *p);

/*
 * First child, still privileged, still in the daemon's mount namespace: clone
 * each ro path as a detached mount tree (open_tree), so that the worker can
 * attach it without walking the path as its own uid.  Async-signal-safe.
 */
void sandbox_child_trees(const struct sandbox_plan *p);

/* Directories a program's ELF RUNPATH/RPATH names ($ORIGIN resolved); NULL-terminated, malloc'd. */
char **sandbox_elf_rundirs(const char *path);

/*
 * Per-worker cgroups: a memory cgroup limited to memory_mb (0: none) and a
 * pids cgroup limited to nproc (where the pids layer is available).  0 with
 * plan->cgroup_procs / pids_procs set, or -errno (nothing left behind).
 */
int sandbox_cgroup_create(uint64_t worker_id, uint64_t memory_mb, uint64_t nproc,
			  struct sandbox_plan *plan);
/* OOM kills in the worker's memory cgroup so far (0 without one). */
uint64_t sandbox_cgroup_oom_kills(uint64_t worker_id);
/*
 * The worker is gone: kill what is left in its cgroups, remove them.  True
 * when its memory cgroup saw more OOM kills than the told ones.
 */
bool sandbox_cgroup_finish(uint64_t worker_id, uint64_t told);

/*
 * Take over the delegated cgroup v2 subtree our cgroup (proc_cgroup: the text
 * of /proc/self/cgroup) is under cgroup2 mount mnt, if it is one (see
 * cgdeleg.h); sandbox_probe calls it, tests with a mount of their own.  The
 * SB_CGROUP / SB_PIDS bits it made available, 0 when none.
 */
unsigned sandbox_cgroup_delegate(const char *mnt, const char *proc_cgroup);

/* Child side, where the kernel has Landlock: writes only under the tmpfs paths (and to
 * /dev/null, zero, urandom).  0 or -errno; async-signal-safe. */
int sandbox_child_landlock(const struct sandbox_plan *p);

#endif
