/*
 * type.c - a worker type at run time: one generation of one configured type,
 * with the sandbox plan its workers get here, its failures, and what
 * `describe` tells about it.
 */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "server.h"

const char *const sandbox_layer_names[SB_NLAYERS] = {
    "user", "pid", "net", "ipc", "uts", "mount", "seccomp", "cgroup", "rlimits", "pids", "landlock",
};

/* Drop one reference to a configuration. */
void config_holder_put(struct config_holder *h)
{
	if (h && --h->refs == 0) {
		config_free(h->cfg);
		free(h);
	}
}

/* Layers a type asks for (rlimits always). */
static unsigned type_wanted_layers(const struct type_config *tc)
{
	unsigned want = SB_RLIMITS | SB_PIDS | SB_LANDLOCK;
	want |= tc->sandbox.namespaces & NS_ALL; /* NS_* and SB_* share bits 0..5 */
	if (tc->sandbox.seccomp != SECCOMP_NONE)
		want |= SB_SECCOMP;
	if (tc->limits.memory_mb)
		want |= SB_CGROUP;
	return want;
}

/* Is path at or below one of the read-only paths (already visible in the sandbox)? */
static bool under_readonly(char *const *ro, const char *path)
{
	for (; ro && *ro; ro++) {
		size_t n = strlen(*ro);
		if (strncmp(path, *ro, n) == 0 && (path[n] == '/' || path[n] == '\0'))
			return true;
	}
	return false;
}

/* The uid and gid the type's workers run as. */
static void type_plan_user(struct daemon *d, struct type_rt *t)
{
	const struct type_config *tc = t->cfg;
	t->uid = geteuid();
	t->gid = getegid();
	t->user_unknown = false;
	const char *user = tc->sandbox.user ? tc->sandbox.user : d->uid_root ? "nobody" : NULL;
	if (user) {
		struct passwd *pw = getpwnam(user);
		char *end;
		unsigned long v = strtoul(user, &end, 10);
		if (pw) {
			t->uid = pw->pw_uid;
			t->gid = pw->pw_gid;
		} else if (*user && !*end) {
			t->uid = (uid_t)v;
			t->gid = (gid_t)v;
		} else {
			/* A typo must not run the workers as us (root, maybe). */
			t->user_unknown = true;
			log_err("type %s: user %s does not exist; its workers cannot start",
				t->name, user);
		}
	}
	if ((t->uid != geteuid() || t->gid != getegid()) && !d->uid_root) {
		log_warn("type %s: only root can run workers as another user; keeping uid %u",
			 t->name, (unsigned)geteuid());
		t->uid = geteuid();
		t->gid = getegid();
	}
	t->switch_user = t->uid != geteuid() || t->gid != getegid();
}

/* What the mount namespace shows read-only: the configured paths, the program
 * itself when it runs by path there (stdio programs, scripts; ELF native
 * workers run from an fd), and the directories its RUNPATH names. */
static void type_plan_paths(struct type_rt *t)
{
	const struct type_config *tc = t->cfg;
	size_t n = 0, cap = 8;
	for (char *const *ro = tc->sandbox.readonly; ro && *ro; ro++)
		cap++;
	char **extra = tc->exec && tc->exec[0] ? sandbox_elf_rundirs(tc->exec[0]) : NULL;
	for (char **e = extra; e && *e; e++)
		cap++;
	t->ro_paths = calloc(cap, sizeof(char *));
	t->ro_fds = calloc(cap, sizeof(int));
	if (!t->ro_paths || !t->ro_fds)
		fatal("out of memory");
	for (char *const *ro = tc->sandbox.readonly; ro && *ro; ro++)
		t->ro_paths[n++] = strdup(*ro);
	for (char **e = extra; e && *e; e++) {
		if (!under_readonly(tc->sandbox.readonly, *e))
			t->ro_paths[n++] = *e;
		else
			free(*e);
	}
	free(extra);
	if ((tc->mode == MODE_STDIO || t->exec_is_script) &&
	    !under_readonly(tc->sandbox.readonly, tc->exec[0]))
		t->ro_paths[n++] = strdup(tc->exec[0]);
	t->ro_paths[n] = NULL;
}

/* Decide which layers this type gets here, and how. */
static void type_plan_sandbox(struct daemon *d, struct type_rt *t)
{
	const struct type_config *tc = t->cfg;
	unsigned avail = d->sb_available;
	unsigned want = type_wanted_layers(tc);
	unsigned ns = tc->sandbox.namespaces & avail & NS_ALL;

	/* Without root, every other namespace needs the user namespace. */
	if (!d->uid_root && !(ns & NS_USER))
		ns = 0;
	t->ns = ns;
	t->use_filter =
	    tc->sandbox.seccomp != SECCOMP_NONE && (avail & SB_SECCOMP) && sandbox_default_filter();
	t->use_cgroup = tc->limits.memory_mb && (avail & SB_CGROUP);
	type_plan_user(d, t);
	t->exec_is_script = false;
	if (tc->mode == MODE_NATIVE && tc->exec && tc->exec[0]) {
		char magic[2] = {0, 0};
		int fd = open(tc->exec[0], O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			t->exec_is_script =
			    read(fd, magic, 2) == 2 && magic[0] == '#' && magic[1] == '!';
			close(fd);
		}
	}
	type_plan_paths(t);
	t->sb_active = SB_RLIMITS | ns | (t->use_filter ? SB_SECCOMP : 0) |
		       (t->use_cgroup ? SB_CGROUP : 0) |
		       (d->sb_available & (SB_PIDS | SB_LANDLOCK));
	t->sb_missing = want & ~t->sb_active;
}

/* Backoff delay over: try again. */
static void type_on_backoff(evutil_socket_t fd, short what, void *arg)
{
	struct type_rt *t = arg;
	(void)fd;
	(void)what;
	/* The delay is over (libevent's clock may run a little behind ours). */
	t->backoff_until_ms = 0;
	pool_reconcile(t);
	pool_pump(t);
}

/* Create the run-time state of one configured type. */
struct type_rt *type_new(struct daemon *d, struct config_holder *h, const struct type_config *tc)
{
	struct type_rt *t = calloc(1, sizeof(*t));
	if (!t)
		fatal("out of memory");
	t->d = d;
	t->cfg = tc;
	t->holder = h;
	h->refs++;
	t->name = strdup(tc->name);
	TAILQ_INIT(&t->workers);
	TAILQ_INIT(&t->idle);
	TAILQ_INIT(&t->queue);
	TAILQ_INIT(&t->spares);
	t->crash_ts = calloc(type_crash_slots(tc), sizeof(uint64_t));
	t->backoff_timer = evtimer_new(d->base, type_on_backoff, t);
	if (!t->name || !t->crash_ts || !t->backoff_timer)
		fatal("out of memory");
	t->logs = loghist_new(1000);
	type_plan_sandbox(d, t);
	return t;
}

/* Crash times kept per type (see type.h). */
unsigned type_crash_slots(const struct type_config *tc)
{
	return tc->restart.burst + 1 > 256 ? tc->restart.burst + 1 : 256;
}

/* Free a type whose workers are all gone. */
void type_destroy(struct type_rt *t)
{
	char msg[300];
	snprintf(msg, sizeof(msg), "type %s removed", t->name);
	pool_fail_queue(t, CTL_SHUTTING_DOWN, msg);
	spares_discard(t);
	if (t->refill_queued)
		TAILQ_REMOVE(&t->d->refill, t, rentry);
	event_free(t->backoff_timer);
	loghist_put(t->logs);
	free(t->crash_ts);
	for (char **p = t->ro_paths; p && *p; p++)
		free(*p);
	free(t->ro_paths);
	free(t->ro_fds);
	free(t->name);
	config_holder_put(t->holder);
	free(t);
}

/* Create the types of a fresh configuration. */
void type_init_all(struct daemon *d, struct config_holder *h)
{
	for (size_t i = 0; i < h->cfg->ntypes; i++) {
		struct type_rt *t = type_new(d, h, &h->cfg->types[i]);
		TAILQ_INSERT_TAIL(&d->types, t, entry);
		for (unsigned b = 0; b < SB_NLAYERS; b++)
			if (t->sb_missing & (1u << b))
				log_warn("type %s: sandbox layer %s is not available; running "
					 "without it",
					 t->name, sandbox_layer_names[b]);
	}
}

/* An active type by name. */
struct type_rt *type_find(struct daemon *d, const char *name)
{
	struct type_rt *t;
	TAILQ_FOREACH(t, &d->types, entry)
	if (strcmp(t->name, name) == 0)
		return t;
	return NULL;
}

/* Remember a failure for `describe`. */
void type_note_failure(struct type_rt *t, uint64_t worker, const char *reason)
{
	struct failure *f = &t->failures[t->failure_pos];
	f->ts_ms = now_ms();
	f->worker = worker;
	snprintf(f->reason, sizeof(f->reason), "%s", reason);
	t->failure_pos = (t->failure_pos + 1) % TYPE_FAILURES;
	if (t->nfailures < TYPE_FAILURES)
		t->nfailures++;
}

/*
 * Layers as DESIGN.md names them (user pid net ipc uts mount seccomp cgroup
 * rlimits).  "cgroup" stands for the worker's cgroups, memory and pids: active
 * when each one the type wants is made, else missing.  Landlock (the write
 * guard of file payloads) has no name there: a kernel without it is in the
 * start-up log.
 */
#define SB_ANY_CGROUP (SB_CGROUP | SB_PIDS)
static json_t *layer_names(unsigned bits)
{
	json_t *a = json_array();
	for (unsigned b = 0; b < SB_NLAYERS; b++) {
		unsigned bit = 1u << b;
		if ((bits & bit) && !(bit & (SB_ANY_CGROUP | SB_LANDLOCK)))
			json_array_append_new(a, json_string(sandbox_layer_names[b]));
		else if (bit == SB_CGROUP && (bits & SB_ANY_CGROUP))
			json_array_append_new(a, json_string("cgroup"));
	}
	return a;
}

json_t *type_layers_active(const struct type_rt *t)
{
	unsigned bits = t->sb_active;
	if (t->sb_missing & SB_ANY_CGROUP)
		bits &= ~SB_ANY_CGROUP;
	return layer_names(bits);
}

json_t *type_layers_missing(const struct type_rt *t)
{
	return layer_names(t->sb_missing);
}

/* Crashes of t within its restart interval. */
static unsigned type_recent_crashes(const struct type_rt *t)
{
	uint64_t now = now_ms();
	unsigned n = 0;
	for (unsigned i = 0; i < t->ncrash; i++)
		if (now - t->crash_ts[i] <= t->cfg->restart.interval_ms)
			n++;
	return n;
}

/* `describe`: everything an operator wants to know about one type. */
json_t *type_describe(struct type_rt *t)
{
	json_error_t jerr;
	json_t *cfg = json_loads(t->cfg->canonical, 0, &jerr);
	if (!cfg)
		cfg = json_object();
	json_object_set_new(cfg, "name", json_string(t->name));
	json_t *sb = json_object_get(cfg, "sandbox");
	if (json_is_object(sb) && json_is_null(json_object_get(sb, "user"))) {
		/* The default, resolved: nobody as root, else the daemon's own user. */
		struct passwd *pw = getpwuid(t->uid);
		char num[32];
		snprintf(num, sizeof(num), "%u", (unsigned)t->uid);
		json_object_set_new(sb, "user", json_string(pw ? pw->pw_name : num));
	}
	json_t *workers = json_array();
	struct worker *w;
	TAILQ_FOREACH(w, &t->workers, tentry)
	if (!w->reaped)
		json_array_append_new(workers, worker_to_json(w));
	json_t *backoff = json_pack("{s:b,s:I}", "active", pool_in_backoff(t), "recent_crashes",
				    (json_int_t)type_recent_crashes(t));
	if (t->backoff_until_ms > now_ms())
		json_object_set_new(backoff, "until_ms",
				    json_integer((json_int_t)t->backoff_until_ms));
	json_t *fails = json_array();
	for (unsigned i = 0; i < t->nfailures; i++) {
		/* Oldest first. */
		unsigned k = (t->failure_pos + TYPE_FAILURES - t->nfailures + i) % TYPE_FAILURES;
		const struct failure *f = &t->failures[k];
		json_array_append_new(
		    fails, json_pack("{s:I,s:o,s:s}", "ts_ms", (json_int_t)f->ts_ms, "worker",
				     f->worker ? json_integer((json_int_t)f->worker) : json_null(),
				     "reason", f->reason));
	}
	return json_pack("{s:o,s:{s:o,s:o},s:o,s:I,s:o,s:o}", "type", cfg, "sandbox", "active",
			 type_layers_active(t), "missing", type_layers_missing(t), "workers",
			 workers, "spares", (json_int_t)t->nspares, "backoff", backoff,
			 "last_failures", fails);
}
