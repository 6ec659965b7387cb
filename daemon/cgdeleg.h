/*
 * cgdeleg.h - taking over a cgroup v2 subtree that systemd delegated to us
 * (Delegate=yes): the daemon moves itself into a leaf, "supervisor", enables
 * the controllers it wants for the subtree, and creates one cgroup per worker
 * beside that leaf.  cgroup v2 allows controllers in a cgroup's subtree only
 * while no process lives in it, hence the leaf.
 */
#ifndef CORRAL_CGDELEG_H
#define CORRAL_CGDELEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The leaf the daemon moves itself into. */
#define CGDELEG_LEAF "supervisor"

/* The cgroup v2 path ("0::PATH" line) of /proc/self/cgroup's text; 0, or -1 when none. */
int cgdeleg_self_path(const char *proc_cgroup, char *path, size_t len);

/* True when systemd marked dir as delegated (xattr trusted.delegate or user.delegate "1"). */
bool cgdeleg_is_delegated(const char *dir);

/*
 * Take over the delegated cgroup at mnt + self (mnt: where cgroup2 is
 * mounted; self: our cgroup path).  If self already is a CGDELEG_LEAF, its
 * parent is the subtree.  Else creates self/CGDELEG_LEAF, moves this process
 * into it, and enables in self's cgroup.subtree_control each controller of
 * want (space-separated, e.g. "memory pids") that self's cgroup.controllers
 * offers.  base gets the subtree's directory (per-worker cgroups go in it),
 * enabled the controllers that are on.  Returns 0, or -1 with a message in err.
 */
int cgdeleg_prepare(const char *mnt, const char *self, const char *want, char *base, size_t baselen,
		    char *enabled, size_t enabledlen, char *err, size_t errlen);

/*
 * Whether the cgroup at mnt + self is ours to take over: we may write it
 * (the directory, cgroup.procs, cgroup.subtree_control), its
 * cgroup.controllers offers at least one controller of want, and we are the
 * only process in it (or, already in a CGDELEG_LEAF, alone there with none in
 * its parent), so that it can hold no other process once we move into the
 * leaf.  A root cgroup ("/") is never taken.  1 yes; 0 no, with why.
 * systemd's delegation mark (cgdeleg_is_delegated) is not required: systemd
 * before 251 does not set it.
 */
int cgdeleg_detect(const char *mnt, const char *self, const char *want, char *why, size_t whylen);

/* The directory of worker id's cgroup under base ("base/worker-ID"); 0, or -1 if too long. */
int cgdeleg_worker_dir(const char *base, uint64_t id, char *buf, size_t len);

#endif
