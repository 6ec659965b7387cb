/*
 * cgdeleg.c - taking over a cgroup v2 subtree delegated by systemd
 * (see cgdeleg.h).  Library code: it never logs; errors come back as text.
 */
#include "cgdeleg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The cgroup v2 path of /proc/self/cgroup's text; 0, or -1 when none. */
int cgdeleg_self_path(const char *proc_cgroup, char *path, size_t len)
{
	for (const char *l = proc_cgroup; l && *l;) {
		const char *end = strchr(l, '\n');
		size_t n = end ? (size_t)(end - l) : strlen(l);

		if (n > 3 && strncmp(l, "0::", 3) == 0 && l[3] == '/' && n - 3 < len) {
			memcpy(path, l + 3, n - 3);
			path[n - 3] = '\0';
			return 0;
		}
		l = end ? end + 1 : NULL;
	}
	return -1;
}

/* True when systemd marked dir as delegated. */
bool cgdeleg_is_delegated(const char *dir)
{
	static const char *const names[] = {"trusted.delegate", "user.delegate"};
	char v[8];

	for (size_t i = 0; i < 2; i++) {
		ssize_t n = getxattr(dir, names[i], v, sizeof(v) - 1);
		if (n > 0) {
			v[n] = '\0';
			if (strcmp(v, "1") == 0)
				return true;
		}
	}
	return false;
}

/* Write s to dir/file; 0 or -errno. */
static int write_at(const char *dir, const char *file, const char *s)
{
	char path[4096];
	int fd, e;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -errno;
	ssize_t w = write(fd, s, strlen(s));
	e = errno;
	close(fd);
	return w < 0 ? -e : 0;
}

/* Read dir/file into buf (NUL-terminated, newline dropped); 0 or -errno. */
static int read_at(const char *dir, const char *file, char *buf, size_t len)
{
	char path[4096];
	int fd, e;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* True when the space-separated list holds word. */
static bool has_word(const char *list, const char *word, size_t wlen)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, " ");
		if (n == wlen && strncmp(p, word, n) == 0)
			return true;
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

/* True when dir/cgroup.procs lists exactly pid (want_pid 0: lists nothing). */
static bool procs_are(const char *dir, pid_t want_pid)
{
	char path[4096], text[256];
	char *end;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= sizeof(path) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return false;
	text[n] = '\0';
	if (want_pid == 0)
		return n == 0;
	long pid = strtol(text, &end, 10);
	return end != text && pid == (long)want_pid && strspn(end, "\n") == strlen(end);
}

/* Whether the cgroup at mnt + self is ours to take over; see cgdeleg.h. */
int cgdeleg_detect(const char *mnt, const char *self, const char *want, char *why, size_t whylen)
{
	char base[4096], leaf[4096], offered[512], f[4200];
	const char *slash = strrchr(self, '/');
	bool in_leaf = slash && strcmp(slash + 1, CGDELEG_LEAF) == 0;
	size_t n = in_leaf ? (size_t)(slash - self) : strlen(self);

	if (self[0] != '/' || n == 0 || strcmp(self, "/") == 0) {
		snprintf(why, whylen, "in the root cgroup");
		return 0;
	}
	if ((size_t)snprintf(base, sizeof(base), "%s%.*s", mnt, (int)n, self) >= sizeof(base) ||
	    (size_t)snprintf(leaf, sizeof(leaf), "%s/" CGDELEG_LEAF, base) >= sizeof(leaf)) {
		snprintf(why, whylen, "cgroup path too long");
		return 0;
	}
	if (read_at(base, "cgroup.controllers", offered, sizeof(offered)) < 0) {
		snprintf(why, whylen, "no %s/cgroup.controllers", base);
		return 0;
	}
	bool any = false;
	for (const char *w = want; *w && !any;) {
		size_t wl = strcspn(w, " ");
		any = wl > 0 && has_word(offered, w, wl);
		w += wl;
		w += strspn(w, " ");
	}
	if (!any) {
		snprintf(why, whylen, "%s offers none of the controllers %s", base, want);
		return 0;
	}
	static const char *const files[] = {"cgroup.procs", "cgroup.subtree_control"};
	if (access(base, W_OK) < 0) {
		snprintf(why, whylen, "%s is not writable", base);
		return 0;
	}
	for (size_t i = 0; i < 2; i++) {
		snprintf(f, sizeof(f), "%s/%s", base, files[i]);
		if (access(f, W_OK) < 0) {
			snprintf(why, whylen, "%s is not writable", f);
			return 0;
		}
	}
	if (in_leaf ? !procs_are(base, 0) || !procs_are(leaf, getpid())
		    : !procs_are(base, getpid())) {
		snprintf(why, whylen, "other processes share %s", in_leaf ? leaf : base);
		return 0;
	}
	return 1;
}

/* Take over the delegated cgroup at mnt + self; see cgdeleg.h. */
int cgdeleg_prepare(const char *mnt, const char *self, const char *want, char *base, size_t baselen,
		    char *enabled, size_t enabledlen, char *err, size_t errlen)
{
	char leaf[4096], offered[512], on[512], pid[24];
	const char *slash = strrchr(self, '/');
	size_t n;
	int r;

	enabled[0] = '\0';
	if (slash && strcmp(slash + 1, CGDELEG_LEAF) == 0) {
		/* Already in our leaf (a restart in place): the subtree is its parent. */
		n = (size_t)(slash - self);
		if ((size_t)snprintf(base, baselen, "%s%.*s", mnt, (int)n, self) >= baselen)
			goto toolong;
	} else {
		if ((size_t)snprintf(base, baselen, "%s%s", mnt, strcmp(self, "/") ? self : "") >=
			baselen ||
		    (size_t)snprintf(leaf, sizeof(leaf), "%s/%s", base, CGDELEG_LEAF) >=
			sizeof(leaf))
			goto toolong;
		if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", leaf, strerror(errno));
			return -1;
		}
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if ((r = write_at(leaf, "cgroup.procs", pid)) < 0) {
			snprintf(err, errlen, "cannot move into %s: %s", leaf, strerror(-r));
			return -1;
		}
	}
	if ((r = read_at(base, "cgroup.controllers", offered, sizeof(offered))) < 0) {
		snprintf(err, errlen, "cannot read %s/cgroup.controllers: %s", base, strerror(-r));
		return -1;
	}
	if ((r = read_at(base, "cgroup.subtree_control", on, sizeof(on))) < 0) {
		snprintf(err, errlen, "cannot read %s/cgroup.subtree_control: %s", base,
			 strerror(-r));
		return -1;
	}
	for (const char *w = want; *w;) {
		char ctl[64];
		n = strcspn(w, " ");
		if (n > 0 && n < sizeof(ctl) - 1 && has_word(offered, w, n)) {
			if (!has_word(on, w, n)) {
				snprintf(ctl, sizeof(ctl), "+%.*s", (int)n, w);
				if ((r = write_at(base, "cgroup.subtree_control", ctl)) < 0) {
					snprintf(err, errlen, "cannot enable %.*s in %s: %s",
						 (int)n, w, base, strerror(-r));
					return -1;
				}
			}
			size_t el = strlen(enabled);
			snprintf(enabled + el, enabledlen - el, "%s%.*s", el ? " " : "", (int)n, w);
		}
		w += n;
		w += strspn(w, " ");
	}
	return 0;
toolong:
	snprintf(err, errlen, "cgroup path too long: %s%s", mnt, self);
	return -1;
}

/* The directory of worker id's cgroup under base. */
int cgdeleg_worker_dir(const char *base, uint64_t id, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s/worker-%llu", base, (unsigned long long)id) < len
		   ? 0
		   : -1;
}
