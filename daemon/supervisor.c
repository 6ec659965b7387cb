/*
 * supervisor.c - the worker table: spawn, readiness, stop, kill, reap, and
 * the restart policy (crash accounting, exponential backoff with jitter).
 *
 * Worker lifecycle, one table of state x event (see worker_transition):
 *
 *              HELLO     CALL     RESULT    STOP       EXIT
 *   starting   idle      -        fault     stopping   exited
 *   idle       fault     busy     fault     stopping   exited
 *   busy       fault     -        idle      stopping   exited
 *   stopping   fault     -        stopping  stopping   exited
 *
 * "fault" is a protocol violation: the worker is killed.  A worker is freed
 * only once it has been reaped; its channels are closed then at the latest.
 */
#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "control.h"
#include "log.h"
#include "msg.h"
#include "sandbox.h"
#include "sd.h"
#include "server.h"

extern char **environ;

const char *const wstate_names[W_NSTATES] = {"starting", "idle", "busy", "stopping", "exited"};

const char *const sandbox_layer_names[SB_NLAYERS] = {
    "user", "pid", "net", "ipc", "uts", "mount", "seccomp", "cgroup", "rlimits", "pids", "landlock",
};

enum wevent {
	WEV_HELLO,
	WEV_CALL,
	WEV_RESULT,
	WEV_STOP,
	WEV_EXIT,
	WEV_N,
};

#define FAULT (-1)
#define KEEP  (-2)

static const signed char transition[W_NSTATES][WEV_N] = {
    /*               HELLO       CALL    RESULT      STOP        EXIT */
    [W_STARTING] = {W_IDLE, KEEP, FAULT, W_STOPPING, W_EXITED},
    [W_IDLE] = {FAULT, W_BUSY, FAULT, W_STOPPING, W_EXITED},
    [W_BUSY] = {FAULT, KEEP, W_IDLE, W_STOPPING, W_EXITED},
    [W_STOPPING] = {FAULT, KEEP, W_STOPPING, W_STOPPING, W_EXITED},
    [W_EXITED] = {KEEP, KEEP, KEEP, KEEP, KEEP},
};

static void worker_on_sock(evutil_socket_t fd, short what, void *arg);
static void worker_on_log(evutil_socket_t fd, short what, void *arg);
static void worker_on_timer(evutil_socket_t fd, short what, void *arg);
static void worker_on_healthy(evutil_socket_t fd, short what, void *arg);
static void type_on_backoff(evutil_socket_t fd, short what, void *arg);
static void worker_release(struct worker *w);

/* Drop one reference to a configuration. */
void config_holder_put(struct config_holder *h)
{
	if (h && --h->refs == 0) {
		config_free(h->cfg);
		free(h);
	}
}

/* Layers a type asks for, of those the kernel offers (rlimits always). */
unsigned type_sandbox_layers(const struct type_config *tc, unsigned available)
{
	unsigned want = SB_RLIMITS | SB_PIDS | SB_LANDLOCK;
	(void)available;
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

/* Decide which layers this type gets here, and how. */
static void type_plan_sandbox(struct daemon *d, struct type_rt *t)
{
	const struct type_config *tc = t->cfg;
	unsigned avail = d->sb_available;
	unsigned want = type_sandbox_layers(tc, avail);
	unsigned ns = tc->sandbox.namespaces & avail & NS_ALL;

	/* Without root, every other namespace needs the user namespace. */
	if (!d->uid_root && !(ns & NS_USER))
		ns = 0;
	t->ns = ns;
	t->use_filter =
	    tc->sandbox.seccomp != SECCOMP_NONE && (avail & SB_SECCOMP) && sandbox_default_filter();
	t->use_cgroup = tc->limits.memory_mb && (avail & SB_CGROUP);
	t->uid = geteuid();
	t->gid = getegid();
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
			log_warn("type %s: user %s does not exist; workers keep uid %u", t->name,
				 user, (unsigned)t->uid);
		}
	}
	if ((t->uid != geteuid() || t->gid != getegid()) && !d->uid_root) {
		log_warn("type %s: only root can run workers as another user; keeping uid %u",
			 t->name, (unsigned)geteuid());
		t->uid = geteuid();
		t->gid = getegid();
	}
	t->switch_user = t->uid != geteuid() || t->gid != getegid();
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
	/* What the mount namespace shows read-only: the configured paths, the
	 * program itself when it runs by path there (stdio programs, scripts; ELF
	 * native workers run from an fd), and the directories its RUNPATH names. */
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
	t->sb_active = SB_RLIMITS | ns | (t->use_filter ? SB_SECCOMP : 0) |
		       (t->use_cgroup ? SB_CGROUP : 0) | (avail & (SB_PIDS | SB_LANDLOCK));
	t->sb_missing = want & ~t->sb_active;
}

/* Create the run-time state of one configured type. */
static struct type_rt *type_new(struct daemon *d, struct config_holder *h,
				const struct type_config *tc)
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
	t->crash_ts = calloc(tc->restart.burst + 1, sizeof(uint64_t));
	t->backoff_timer = evtimer_new(d->base, type_on_backoff, t);
	if (!t->name || !t->crash_ts || !t->backoff_timer)
		fatal("out of memory");
	t->logs = loghist_new(1000);
	type_plan_sandbox(d, t);
	return t;
}

/* Free a type whose workers are all gone. */
void type_destroy(struct type_rt *t)
{
	while (!TAILQ_EMPTY(&t->queue)) {
		struct call *c = TAILQ_FIRST(&t->queue);
		call_finish_error(c, "shutting_down", "type %s removed", t->name);
	}
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
int daemon_types_init(struct daemon *d, struct config_holder *h)
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
	return 0;
}

/* Look up an active type. */
struct type_rt *daemon_find_type(struct daemon *d, const char *name)
{
	struct type_rt *t;
	TAILQ_FOREACH(t, &d->types, entry)
	if (strcmp(t->name, name) == 0)
		return t;
	return NULL;
}

/* Look up a live worker by id. */
struct worker *daemon_find_worker(struct daemon *d, uint64_t id)
{
	struct worker *w;
	TAILQ_FOREACH(w, &d->workers, dentry)
	if (w->id == id)
		return w;
	return NULL;
}

/* Apply one lifecycle event; returns false on a protocol fault. */
static bool worker_transition(struct worker *w, enum wevent ev)
{
	int next = transition[w->state][ev];
	if (next == FAULT)
		return false;
	if (next != KEEP && next != (int)w->state)
		type_set_state(w, (enum wstate)next);
	return true;
}

/* A call was handed to the worker. */
bool worker_transition_call(struct worker *w)
{
	return worker_transition(w, WEV_CALL);
}

/* The worker's result arrived. */
bool worker_transition_result(struct worker *w)
{
	return worker_transition(w, WEV_RESULT);
}

/* Change state: keep the per-type counts and tell watchers. */
void type_set_state(struct worker *w, enum wstate s)
{
	struct type_rt *t = w->type;
	if (w->state == W_IDLE)
		TAILQ_REMOVE(&t->idle, w, ientry);
	if (s == W_IDLE) /* most recently used first: its pages are warm */
		TAILQ_INSERT_HEAD(&t->idle, w, ientry);
	t->nstate[w->state]--;
	t->nstate[s]++;
	w->state = s;
	if (s != W_EXITED) /* "exited" is told once the worker is released: see worker_on_exit */
		server_emit_watch(w->d, w, NULL);
}

/* Alive and not on its way out. */
unsigned type_live(const struct type_rt *t)
{
	return t->nstate[W_STARTING] + t->nstate[W_IDLE] + t->nstate[W_BUSY];
}

/* The workers kept alive: min, unless isolated by key or paused by `stop TYPE`. */
static unsigned type_min(const struct type_rt *t)
{
	return t->cfg->pool.isolate == ISOLATE_KEY || t->min_paused ? 0 : t->cfg->pool.min;
}

/* Is the type in crash-loop backoff? */
bool type_in_backoff(const struct type_rt *t)
{
	return t->backoff_level > 0;
}

/* Arm w->timer for ms. */
static void worker_arm(struct worker *w, uint64_t ms)
{
	struct timeval tv = tv_ms(ms);
	evtimer_add(w->timer, &tv);
}

/* Build the argv for a worker of type tc; strings live in bufs. */
static char **worker_argv(struct daemon *d, const struct type_config *tc, char *kb, size_t kblen)
{
	size_t n = 0, i = 0;
	for (char **e = tc->exec; e && *e; e++)
		n++;
	char **argv = calloc(n + 8, sizeof(char *));
	if (!argv)
		return NULL;
	snprintf(kb, kblen, "%llu", (unsigned long long)tc->limits.output_kb);
	switch (tc->mode) {
	case MODE_BUILTIN:
		argv[i++] = d->worker_path;
		argv[i++] = "builtin";
		argv[i++] = tc->builtin;
		argv[i++] = "--output-kb";
		argv[i++] = kb;
		if (tc->sandbox.seccomp == SECCOMP_STRICT && (d->sb_available & SB_SECCOMP)) {
			argv[i++] = "--seccomp";
			argv[i++] = "strict";
		}
		break;
	case MODE_STDIO:
		argv[i++] = d->worker_path;
		argv[i++] = "stdio";
		argv[i++] = "--output-kb";
		argv[i++] = kb;
		argv[i++] = "--";
		for (char **e = tc->exec; e && *e; e++)
			argv[i++] = *e;
		break;
	case MODE_NATIVE:
		for (char **e = tc->exec; e && *e; e++)
			argv[i++] = *e;
		break;
	}
	argv[i] = NULL;
	return argv;
}

/* Record a crash; enter or deepen backoff when the burst is exceeded. */
static void type_note_crash(struct type_rt *t)
{
	const struct restart_config *r = &t->cfg->restart;
	uint64_t now = now_ms();
	unsigned slots = r->burst + 1;

	t->crash_ts[t->crash_pos] = now;
	t->crash_pos = (t->crash_pos + 1) % slots;
	if (t->ncrash < slots)
		t->ncrash++;
	unsigned recent = 0;
	for (unsigned i = 0; i < t->ncrash; i++)
		if (now - t->crash_ts[i] <= r->interval_ms)
			recent++;
	if (t->backoff_level == 0 && recent <= r->burst)
		return;
	if (t->backoff_level < 63)
		t->backoff_level++;
	uint64_t delay = r->backoff_ms[0];
	for (unsigned i = 1; i < t->backoff_level && delay < r->backoff_ms[1]; i++)
		delay *= 2;
	if (delay > r->backoff_ms[1])
		delay = r->backoff_ms[1];
	/* Jitter: 75%..125%, so that many types do not retry in lockstep. */
	delay = delay * (750 + (uint64_t)(random() % 501)) / 1000;
	if (delay < 1)
		delay = 1;
	t->backoff_until_ms = now + delay;
	struct timeval tv = tv_ms(delay);
	evtimer_add(t->backoff_timer, &tv);
	log_warn("type %s: crash loop (%u crashes within %llu ms); next spawn in %llu ms", t->name,
		 recent, (unsigned long long)r->interval_ms, (unsigned long long)delay);
}

/* Spawns are allowed now (not waiting out a backoff delay). */
static bool type_may_spawn(const struct type_rt *t)
{
	return !t->d->shutting_down && now_ms() >= t->backoff_until_ms;
}

/* Backoff delay over: try again. */
static void type_on_backoff(evutil_socket_t fd, short what, void *arg)
{
	struct type_rt *t = arg;
	(void)fd;
	(void)what;
	/* The delay is over (libevent's clock may run a little behind ours). */
	t->backoff_until_ms = 0;
	type_reconcile(t);
	type_pump(t);
}

/*
 * Spawn one worker of type t (serving key, or NULL).  Returns the worker in
 * state starting, or NULL with a message in errbuf.
 */
struct worker *worker_spawn(struct type_rt *t, const char *key, char *errbuf, size_t errlen)
{
	struct daemon *d = t->d;
	const struct type_config *tc = t->cfg;
	int sp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, memfd = -1;
	struct ring_area ring = {0};
	char kb[32];
	char **argv = NULL;
	pid_t pid;
	int r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		snprintf(errbuf, errlen, "socketpair: %s", strerror(errno));
		goto fail;
	}
	uint32_t cap = tc->ring_kb * 1024u;
	r = ring_area_create(cap, cap, &memfd, &ring);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot create the ring: %s", strerror(-r));
		goto fail;
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	argv = worker_argv(d, tc, kb, sizeof(kb));
	if (!argv) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	uint64_t id = d->next_worker_id + 1;
	struct sandbox_plan plan = {
	    .ns = t->ns,
	    .switch_user = t->switch_user,
	    .uid = t->uid,
	    .gid = t->gid,
	    .ro_paths = t->ro_paths,
	    .ro_fds = d->uid_root ? t->ro_fds : NULL,
	    .tmpfs = tc->sandbox.tmpfs,
	    .filter = t->use_filter ? sandbox_default_filter() : NULL,
	};
	/* The program runs from an fd we open: no path walk as the worker's uid, and no
	 * need for the mount namespace to show it.  Scripts need their path (#!). */
	const char *prog = tc->mode == MODE_NATIVE ? tc->exec[0] : d->worker_path;
	plan.exec_fd = t->exec_is_script ? -1 : open(prog, O_PATH | O_CLOEXEC);
	bool in_cgroup = false;
	if (t->use_cgroup || (d->sb_available & SB_PIDS)) {
		int cr = sandbox_cgroup_create(id, t->use_cgroup ? tc->limits.memory_mb : 0,
					       tc->limits.nproc, &plan);
		if (cr == 0) {
			in_cgroup = true;
		} else {
			log_warn("type %s: cannot create the worker's cgroups (%s); using rlimits",
				 t->name, strerror(-cr));
		}
	}
	/* Native workers load "strict" themselves after init, asked through the environment. */
	char **envp = NULL;
	if (tc->mode == MODE_NATIVE && tc->sandbox.seccomp == SECCOMP_STRICT &&
	    (d->sb_available & SB_SECCOMP)) {
		size_t n = 0;
		for (char **e = environ; *e; e++)
			n++;
		envp = calloc(n + 2, sizeof(char *));
		if (!envp)
			fatal("out of memory");
		size_t j = 0;
		for (char **e = environ; *e; e++)
			if (strncmp(*e, "CORRAL_SECCOMP=", 15) != 0)
				envp[j++] = *e;
		envp[j++] = "CORRAL_SECCOMP=strict";
		envp[j] = NULL;
	}
	plan.envp = envp;
	int sr = spawn_worker_process(d, argv, sp[1], memfd, outp[1], errp[1], tc, &plan, &pid,
				      errbuf, errlen);
	if (plan.exec_fd >= 0)
		close(plan.exec_fd);
	free(envp);
	if (sr < 0) {
		if (in_cgroup)
			sandbox_cgroup_finish(id, 0);
		goto fail;
	}
	free(argv);
	argv = NULL;
	close(sp[1]);
	close(outp[1]);
	close(errp[1]);
	close(memfd);
	evutil_make_socket_nonblocking(sp[0]);
	evutil_make_socket_nonblocking(outp[0]);
	evutil_make_socket_nonblocking(errp[0]);

	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		fatal("out of memory");
	w->d = d;
	w->type = t;
	w->id = ++d->next_worker_id;
	w->in_cgroup = in_cgroup;
	w->pid = pid;
	w->key = key ? strdup(key) : NULL;
	w->state = W_STARTING;
	w->started_ms = now_ms();
	w->sock = sp[0];
	w->out_fd = outp[0];
	w->err_fd = errp[0];
	w->ring = ring;
	w->ev_sock = event_new(d->base, w->sock, EV_READ | EV_PERSIST, worker_on_sock, w);
	w->ev_out = event_new(d->base, w->out_fd, EV_READ | EV_PERSIST, worker_on_log, w);
	w->ev_err = event_new(d->base, w->err_fd, EV_READ | EV_PERSIST, worker_on_log, w);
	w->timer = evtimer_new(d->base, worker_on_timer, w);
	w->healthy_timer = evtimer_new(d->base, worker_on_healthy, w);
	if (!w->ev_sock || !w->ev_out || !w->ev_err || !w->timer || !w->healthy_timer)
		fatal("out of memory");
	event_add(w->ev_sock, NULL);
	event_add(w->ev_out, NULL);
	event_add(w->ev_err, NULL);
	worker_arm(w, tc->limits.start_timeout_ms);
	TAILQ_INSERT_TAIL(&t->workers, w, tentry);
	TAILQ_INSERT_TAIL(&d->workers, w, dentry);
	t->nworkers++;
	t->nstate[W_STARTING]++;
	d->nworkers++;
	d->stats.spawned++;
	log_debug("spawned %s worker %llu pid %d", t->name, (unsigned long long)w->id, (int)pid);
	server_emit_watch(d, w, NULL);
	return w;

fail:
	free(argv);
	for (int i = 0; i < 2; i++) {
		if (sp[i] >= 0)
			close(sp[i]);
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (memfd >= 0)
		close(memfd);
	ring_area_detach(&ring);
	return NULL;
}

/* Ask a worker to exit after its current call; SIGKILL after timeout_ms. */
void worker_stop(struct worker *w, uint64_t timeout_ms)
{
	if (w->state == W_EXITED)
		return;
	w->stop_requested = true;
	if (w->state != W_STOPPING) {
		worker_transition(w, WEV_STOP);
		if (frame_send(w->sock, MSG_STOP, 0, 0, NULL, 0, NULL, 0) < 0)
			kill(w->pid, SIGKILL);
	}
	event_del(w->timer);
	worker_arm(w, timeout_ms);
}

/* Send a signal; why (may be NULL) marks the kill as ours for the exit reason. */
void worker_kill(struct worker *w, int sig, const char *why)
{
	if (w->reaped)
		return;
	if (why) {
		w->killed_by_us = true;
		log_notice("killing %s worker %llu (pid %d): %s", w->type->name,
			   (unsigned long long)w->id, (int)w->pid, why);
	}
	kill(w->pid, sig);
}

/*
 * A protocol violation: kill the worker (it counts as a crash for the restart
 * policy) and fail its call with code.  The reaper does the rest.
 */
void worker_fault(struct worker *w, const char *code, const char *what)
{
	char msg[256];

	log_warn("%s worker %llu (pid %d): protocol violation: %s; killing it", w->type->name,
		 (unsigned long long)w->id, (int)w->pid, what);
	w->faulted = true;
	if (!w->reaped)
		kill(w->pid, SIGKILL);
	if (w->ev_sock)
		event_del(w->ev_sock);
	snprintf(msg, sizeof(msg), "worker %llu broke the protocol (%s) and was killed",
		 (unsigned long long)w->id, what);
	worker_fail_call(w, code, msg);
}

/* Drop one hold on a `spawn` request (err: why one of its workers failed); replies at zero. */
void spawn_req_unref(struct spawn_req *r, const char *err)
{
	if (err && !r->error_code) {
		r->error_code = strdup("internal");
		r->error_msg = strdup(err);
	}
	if (--r->pending > 0)
		return;
	if (r->client) {
		LIST_REMOVE(r, centry);
		struct client *c = r->client;
		r->client = NULL;
		if (r->error_code) {
			client_reply_error(c, r->req_id, r->error_code, "%s", r->error_msg);
		} else {
			json_t *o = json_object();
			json_object_set(o, "workers", r->ids);
			client_reply_ok(c, r->req_id, o);
		}
	}
	json_decref(r->req_id);
	json_decref(r->ids);
	free(r->error_code);
	free(r->error_msg);
	free(r);
}

/* A `spawn` waiting for this worker learns its fate. */
static void spawn_req_resolve(struct worker *w, const char *err)
{
	struct spawn_req *r = w->spawn_req;
	if (!r)
		return;
	w->spawn_req = NULL;
	spawn_req_unref(r, err);
}

/* Hello received: the worker is ready. */
static void worker_on_hello(struct worker *w, struct frame *f)
{
	struct msg_hello h;
	if (f->nfds || msg_hello_decode(f->payload, f->hdr.len, &h) < 0 ||
	    h.version != PROTO_VERSION) {
		worker_fault(w, "worker_error", "bad hello");
		return;
	}
	if (w->state == W_STOPPING) {
		/* Stopped before it was ready: tell it now that it listens. */
		frame_send(w->sock, MSG_STOP, 0, 0, NULL, 0, NULL, 0);
		spawn_req_resolve(w, "worker stopped before it was ready");
		return;
	}
	if (!worker_transition(w, WEV_HELLO)) {
		worker_fault(w, "worker_error", "hello out of order");
		return;
	}
	event_del(w->timer);
	struct type_rt *t = w->type;
	if (t->backoff_level || t->ncrash) {
		struct timeval tv = tv_ms(t->cfg->restart.interval_ms);
		evtimer_add(w->healthy_timer, &tv);
	}
	spawn_req_resolve(w, NULL);
	type_pump(t);
	if (w->state == W_IDLE && !w->call)
		worker_idle(w);
	daemon_notify_status(w->d);
	daemon_ready_check(w->d);
}

/* An idle worker above min waits idle_timeout_ms before it is reaped. */
void worker_idle(struct worker *w)
{
	const struct type_rt *t = w->type;
	event_del(w->timer);
	if (t->retired || w->d->shutting_down) {
		worker_stop(w, 5000);
		return;
	}
	if (type_live(t) > type_min(t))
		worker_arm(w, t->cfg->pool.idle_timeout_ms);
}

/* Frames from a worker. */
static void worker_on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct frame f;
	(void)what;

	/* One frame per wakeup: the loop is level-triggered, and a worker mostly sends
	 * one frame at a time (reading on to EAGAIN would cost a syscall per call). */
	if (!w->reaped) {
		int r = frame_recv(fd, &f);
		if (r == -EAGAIN)
			return;
		if (r == 0 || r == -ECONNRESET) {
			/* The worker closed its channel: it is done. */
			event_del(w->ev_sock);
			if (!w->reaped)
				kill(w->pid, SIGKILL);
			return;
		}
		if (r < 0) {
			worker_fault(w, "worker_error", strerror(-r));
			return;
		}
		switch (f.hdr.type) {
		case MSG_HELLO:
			worker_on_hello(w, &f);
			break;
		case MSG_RESULT:
			if (!w->call || transition[w->state][WEV_RESULT] == FAULT) {
				frame_close_fds(&f);
				worker_fault(w, "worker_error", "result without a call");
				return;
			}
			worker_on_result(w, &f);
			break;
		case MSG_DOORBELL:
			if (f.nfds || f.hdr.len) {
				frame_close_fds(&f);
				worker_fault(w, "worker_error", "doorbell with payload");
				return;
			}
			worker_on_doorbell(w);
			break;
		default:
			frame_close_fds(&f);
			worker_fault(w, "worker_error", "unexpected frame type");
			return;
		}
		frame_close_fds(&f);
		if (w->faulted)
			return;
	}
}

/* stdout/stderr readable. */
static void worker_on_log(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)what;
	logcap_on_readable(w, fd == w->out_fd ? 1 : 2);
}

/* The worker's timer: start timeout, idle timeout or stop timeout. */
static void worker_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;

	switch (w->state) {
	case W_STARTING:
		w->start_timed_out = true;
		worker_kill(w, SIGKILL, "start timeout");
		break;
	case W_IDLE: {
		if (type_live(w->type) > type_min(w->type))
			worker_stop(w, 5000);
		break;
	}
	case W_STOPPING:
		worker_kill(w, SIGKILL, "stop timeout");
		break;
	default:
		break;
	}
}

/* Healthy for interval_ms: the type's backoff resets. */
static void worker_on_healthy(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	if (w->reaped)
		return;
	w->type->backoff_level = 0;
	w->type->ncrash = 0;
	w->type->crash_pos = 0;
	w->type->backoff_until_ms = 0;
	event_del(w->type->backoff_timer);
}

/* Signals libcorral-worker turns into exit 128+N when it runs as pid 1. */
static bool pid1_signal(int sig)
{
	switch (sig) {
	case SIGHUP:
	case SIGINT:
	case SIGQUIT:
	case SIGILL:
	case SIGTRAP:
	case SIGABRT:
	case SIGBUS:
	case SIGFPE:
	case SIGUSR1:
	case SIGSEGV:
	case SIGUSR2:
	case SIGALRM:
	case SIGTERM:
	case SIGSTKFLT:
	case SIGXCPU:
	case SIGXFSZ:
	case SIGVTALRM:
	case SIGPROF:
	case SIGIO:
	case SIGPWR:
	case SIGSYS:
		return true;
	default:
		return false;
	}
}

/* Build the exit reason of DESIGN.md's watch events. */
static void worker_exit_reason(struct worker *w)
{
	char sb[32];
	int st = w->wstatus;

	bool oom = w->in_cgroup && sandbox_cgroup_finish(w->id, w->oom_kills);
	if (w->start_timed_out)
		snprintf(w->reason, sizeof(w->reason), "start timeout");
	else if (oom)
		snprintf(w->reason, sizeof(w->reason), "out of memory");
	else if (WIFEXITED(st) && (w->type->ns & NS_PID) && WEXITSTATUS(st) > 128 &&
		 WEXITSTATUS(st) < 128 + 32 && pid1_signal(WEXITSTATUS(st) - 128))
		/* pid 1 of its namespace ignores signals it has no handler for, so
		 * libcorral-worker's handler dies of them as exit 128+N */
		snprintf(w->reason, sizeof(w->reason), "killed by %s",
			 ctl_signal_name(WEXITSTATUS(st) - 128, sb, sizeof(sb)));
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
		snprintf(w->reason, sizeof(w->reason), "sandbox violation");
	else if (WIFSIGNALED(st))
		snprintf(w->reason, sizeof(w->reason), "killed by %s",
			 ctl_signal_name(WTERMSIG(st), sb, sizeof(sb)));
	else if (WIFEXITED(st))
		snprintf(w->reason, sizeof(w->reason), "exited with status %d", WEXITSTATUS(st));
	else
		snprintf(w->reason, sizeof(w->reason), "exited");
}

/* The process is gone: account, fail its call, release, replace as needed. */
static void worker_on_exit(struct worker *w, int status)
{
	struct daemon *d = w->d;
	struct type_rt *t = w->type;

	w->reaped = true;
	w->wstatus = status;
	worker_exit_reason(w);
	/* A crash: not asked to stop, not killed on purpose (timeout, `kill`), or faulty. */
	bool crash = !w->stop_requested && !d->shutting_down && (!w->killed_by_us || w->faulted);
	d->stats.exited++;
	if (crash || w->start_timed_out)
		d->stats.crashed++;
	log_info("%s worker %llu (pid %d) %s", t->name, (unsigned long long)w->id, (int)w->pid,
		 w->reason);
	/* Read what the pipes still hold, then close them. */
	logcap_flush(w);
	if (w->call) {
		char msg[256];
		snprintf(msg, sizeof(msg), "worker %llu %s during the call",
			 (unsigned long long)w->id, w->reason);
		worker_fail_call(w,
				 WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS
				     ? "sandbox_violation"
				     : "worker_crashed",
				 msg);
	}
	spawn_req_resolve(w, w->reason);
	if (w->state != W_EXITED)
		worker_transition(w, WEV_EXIT);
	t->nworkers--;
	d->nworkers--;
	t->nstate[W_EXITED]--;
	if (crash || w->start_timed_out)
		type_note_crash(t);
	bool replace = crash || w->start_timed_out;
	/* Watchers hear "exited" only after every fd of the worker is closed. */
	struct worker ghost = {.id = w->id, .pid = w->pid, .type = t, .state = W_EXITED};
	char reason[sizeof(w->reason)];
	memcpy(reason, w->reason, sizeof(reason));
	worker_release(w);
	server_emit_watch(d, &ghost, reason);
	if (replace)
		t->restarts_pending = true;
	if (t->retired && t->nworkers == 0) {
		TAILQ_REMOVE(&d->retired, t, entry);
		type_destroy(t);
	} else {
		type_reconcile(t);
		type_pump(t);
	}
	daemon_notify_status(d);
	daemon_ready_check(d);
	daemon_check_exit(d);
}

/* Close every channel and free the worker (after the reap). */
static void worker_release(struct worker *w)
{
	struct daemon *d = w->d;
	TAILQ_REMOVE(&w->type->workers, w, tentry);
	TAILQ_REMOVE(&d->workers, w, dentry);
	event_free(w->ev_sock);
	event_free(w->ev_out);
	event_free(w->ev_err);
	event_free(w->timer);
	event_free(w->healthy_timer);
	close(w->sock);
	if (w->out_fd >= 0)
		close(w->out_fd);
	if (w->err_fd >= 0)
		close(w->err_fd);
	ring_area_detach(&w->ring);
	free(w->outbuf[0]);
	free(w->outbuf[1]);
	free(w->key);
	free(w);
}

/* SIGCHLD: reap every exited child. */
void daemon_reap(struct daemon *d)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		struct worker *w;
		TAILQ_FOREACH(w, &d->workers, dentry)
		if (w->pid == pid && !w->reaped)
			break;
		if (!w) {
			log_debug("reaped unknown child %d", (int)pid);
			continue;
		}
		worker_on_exit(w, status);
	}
}

/* Keep min workers alive (starting, idle and busy count). */
void type_reconcile(struct type_rt *t)
{
	struct daemon *d = t->d;
	char err[256];

	if (t->retired || d->shutting_down || t->min_paused || t->cfg->pool.isolate == ISOLATE_KEY)
		return;
	if (!type_may_spawn(t))
		return;
	while (type_live(t) < t->cfg->pool.min && t->nworkers < t->cfg->pool.max) {
		struct worker *w = worker_spawn(t, NULL, err, sizeof(err));
		if (!w) {
			log_err("type %s: cannot spawn a worker: %s", t->name, err);
			type_note_crash(t);
			if (!type_in_backoff(t)) {
				/* Retry soon, never in a tight loop. */
				uint64_t delay = t->cfg->restart.backoff_ms[0];
				t->backoff_until_ms = now_ms() + delay;
				struct timeval tv = tv_ms(delay);
				evtimer_add(t->backoff_timer, &tv);
			}
			return;
		}
		if (t->restarts_pending) {
			d->stats.restarts++;
			t->restarts_pending = false;
		}
	}
}

/* Draining: the calls still queued for t will not run. */
static void type_fail_queue(struct type_rt *t)
{
	while (!TAILQ_EMPTY(&t->queue))
		call_finish_error(TAILQ_FIRST(&t->queue), "shutting_down",
				  "corrald shut down before the call could run");
}

/* The drain ran out of time: fail what still waits, kill what still runs. */
static void daemon_on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct type_rt *t;
	struct worker *w;
	(void)fd;
	(void)what;
	log_warn("shutdown: drain timed out; killing %u workers", d->nworkers);
	TAILQ_FOREACH(t, &d->types, entry)
	type_fail_queue(t);
	TAILQ_FOREACH(t, &d->retired, entry)
	type_fail_queue(t);
	TAILQ_FOREACH(w, &d->workers, dentry)
	worker_kill(w, SIGKILL, "shutdown timeout");
}

/*
 * Begin the drain: no new calls (the server refuses them), calls already
 * accepted finish (queued ones too, on the workers there are), idle workers
 * stop, busy ones stop after their call; exit 0 once every worker is reaped.
 */
void daemon_begin_shutdown(struct daemon *d, uint64_t timeout_ms)
{
	struct worker *w, *tmp;

	if (d->shutting_down)
		return;
	d->shutting_down = true;
	log_notice("shutting down: draining %u workers", d->nworkers);
	sd_notifyf("STOPPING=1");
	server_stop_accepting(d->server);
	d->shutdown_timer = evtimer_new(d->base, daemon_on_shutdown_timeout, d);
	struct timeval tv = tv_ms(timeout_ms);
	evtimer_add(d->shutdown_timer, &tv);
	for (w = TAILQ_FIRST(&d->workers); w; w = tmp) {
		tmp = TAILQ_NEXT(w, dentry);
		if (!w->call && w->type->nqueued == 0)
			worker_stop(w, timeout_ms);
	}
	daemon_check_exit(d);
}

/* Leave the loop once draining is complete. */
void daemon_check_exit(struct daemon *d)
{
	if (!d->shutting_down)
		return;
	struct type_rt *t;
	TAILQ_FOREACH(t, &d->types, entry)
	{
		/* Queued calls with no worker left to serve them cannot finish. */
		if (t->nworkers == 0)
			type_fail_queue(t);
	}
	if (d->nworkers == 0)
		event_base_loopexit(d->base, NULL);
}

/* Retire a type: it drains (busy workers finish), then is freed. */
static void type_retire(struct daemon *d, struct type_rt *t, struct type_rt *successor)
{
	struct worker *w, *tmp;

	TAILQ_REMOVE(&d->types, t, entry);
	t->retired = true;
	if (successor) {
		/* One history per type name: `logs` keeps the lines from before the reload. */
		loghist_put(successor->logs);
		successor->logs = t->logs;
		t->logs->refs++;
	}
	event_del(t->backoff_timer);
	/* Queued calls move to the successor, or fail when the type is gone. */
	while (!TAILQ_EMPTY(&t->queue)) {
		struct call *c = TAILQ_FIRST(&t->queue);
		if (successor) {
			TAILQ_REMOVE(&t->queue, c, qentry);
			t->nqueued--;
			c->type = successor;
			TAILQ_INSERT_TAIL(&successor->queue, c, qentry);
			successor->nqueued++;
		} else {
			call_finish_error(c, "unknown_type", "type %s was removed by reload",
					  t->name);
		}
	}
	if (t->nworkers == 0) {
		type_destroy(t);
		return;
	}
	TAILQ_INSERT_TAIL(&d->retired, t, entry);
	for (w = TAILQ_FIRST(&t->workers); w; w = tmp) {
		tmp = TAILQ_NEXT(w, tentry);
		worker_stop(w, t->cfg->limits.timeout_ms + 5000);
	}
}

/* Apply a new configuration; returns {added, removed, changed}. */
json_t *daemon_reload(struct daemon *d, struct config *newcfg)
{
	struct config_holder *h = calloc(1, sizeof(*h));
	json_t *added = json_array(), *removed = json_array(), *changed = json_array();
	struct type_rt *t, *tmp;

	if (!h)
		fatal("out of memory");
	h->cfg = newcfg;
	h->refs = 1;
	for (t = TAILQ_FIRST(&d->types); t; t = tmp) {
		tmp = TAILQ_NEXT(t, entry);
		const struct type_config *nc = config_find_type(newcfg, t->name);
		if (!nc) {
			json_array_append_new(removed, json_string(t->name));
			type_retire(d, t, NULL);
		}
	}
	for (size_t i = 0; i < newcfg->ntypes; i++) {
		const struct type_config *nc = &newcfg->types[i];
		struct type_rt *old = daemon_find_type(d, nc->name);
		if (old && strcmp(old->cfg->canonical, nc->canonical) == 0) {
			/* Unchanged: keep the workers, point at the new config. */
			config_holder_put(old->holder);
			old->holder = h;
			h->refs++;
			old->cfg = nc;
			old->min_paused = false;
			continue;
		}
		struct type_rt *nt = type_new(d, h, nc);
		if (old) {
			json_array_append_new(changed, json_string(nc->name));
			TAILQ_INSERT_AFTER(&d->types, old, nt, entry);
			type_retire(d, old, nt);
		} else {
			json_array_append_new(added, json_string(nc->name));
			TAILQ_INSERT_TAIL(&d->types, nt, entry);
		}
	}
	config_holder_put(d->cfg);
	d->cfg = h;
	if (d->server)
		server_set_acl(d->server, newcfg);
	TAILQ_FOREACH(t, &d->types, entry)
	{
		type_reconcile(t);
		type_pump(t);
	}
	return json_pack("{s:o,s:o,s:o}", "added", added, "removed", removed, "changed", changed);
}
