/*
 * launch.c - a worker process before it is a worker: its channels (socketpair,
 * ring, log pipes), its cgroups and its sandbox plan, started by spawn.c; and
 * spares, such processes held inside their sandbox before execve.
 *
 * A spare pays a spawn's cost ahead of time, as Chromium keeps a spare
 * renderer.  Two kinds, by what the process will become:
 *
 *  - corral-worker (builtin, stdio): the spare runs on through its sandbox
 *    (namespaces, mount view, Landlock, seccomp), execve and its hello, which
 *    spare_on_sock reads and validates and keeps.  Taking it hands the process
 *    over as it is; worker.c runs the handshake on the next loop turn.
 *  - native programs: the spare is "held" inside its sandbox before execve,
 *    waiting on its go pipe, since a program must not run before it has a
 *    worker (its own start-up may have effects).  Taking it is a one-byte
 *    write; the process execs and says hello as any new worker does.
 *
 * Spares are not workers: they have no id, are never listed or counted
 * against max, and never get a call before they become a worker.  The pool
 * (pool.c) decides how many a type keeps; this file makes, watches, takes,
 * discards and reaps them.
 *
 *   spare_make --> [spare: held on its go pipe, or exec'd with a kept hello]
 *                        |          |            \
 *                        |     spare_take         dies, or a bad/late hello
 *                        |   (held: write "go")   (spare_broke): logged, the type
 *                        |          v             makes no more spares until one
 *                 spares_discard  worker_new      of its workers is ready
 *                 (SIGKILL,       (starting; a kept hello is handled at 0 ms)
 *                  dead list)
 *                        |
 *                   spare_reaped
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corrald.h"
#include "frame.h"
#include "log.h"
#include "sandbox.h"
#include "server.h"
#include "worker.h"

extern char **environ;

/* Build the argv for a worker of type tc; strings live in kb. */
static char **launch_argv(struct daemon *d, const struct type_config *tc, char *kb, size_t kblen)
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

/* The environment of a native worker that loads "strict" itself after init. */
static char **launch_envp(void)
{
	size_t n = 0, j = 0;
	for (char **e = environ; *e; e++)
		n++;
	char **envp = calloc(n + 2, sizeof(char *));
	if (!envp)
		fatal("out of memory");
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "CORRAL_SECCOMP=", 15) != 0)
			envp[j++] = *e;
	envp[j++] = "CORRAL_SECCOMP=strict";
	envp[j] = NULL;
	return envp;
}

/* Close a pair of fds (those not -1). */
static void close_pair(int fds[2])
{
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * Start a process of type t (held before execve when hold: a spare).  0 with
 * *p filled (our ends non-blocking), or -1 with a message in errbuf.  A
 * failure after this point (a mount, the execve) comes later, on p->status_fd.
 */
int launch_proc(struct type_rt *t, bool hold, struct wproc *p, char *errbuf, size_t errlen)
{
	struct daemon *d = t->d;
	const struct type_config *tc = t->cfg;
	int sp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, gop[2] = {-1, -1};
	int memfd = -1;
	char kb[32];
	char **argv = NULL;

	if (t->user_unknown) {
		/* Never root (or the daemon's uid) in its place: no worker at all. */
		snprintf(errbuf, errlen, "sandbox.user \"%s\" does not exist", tc->sandbox.user);
		return -1;
	}
	int r;

	memset(p, 0, sizeof(*p));
	p->status_fd = p->go_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		snprintf(errbuf, errlen, "socketpair: %s", strerror(errno));
		goto fail;
	}
	uint32_t cap = tc->ring_kb * 1024u;
	r = ring_area_create(cap, cap, &memfd, &p->ring);
	if (r < 0) {
		snprintf(errbuf, errlen, "cannot create the ring: %s", strerror(-r));
		goto fail;
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    (hold && pipe2(gop, O_CLOEXEC) < 0)) {
		snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	argv = launch_argv(d, tc, kb, sizeof(kb));
	if (!argv) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
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
	p->cg_id = ++d->next_cg_id;
	if (t->use_cgroup || (d->sb_available & SB_PIDS)) {
		int cr = sandbox_cgroup_create(p->cg_id, t->use_cgroup ? tc->limits.memory_mb : 0,
					       tc->limits.nproc, &plan);
		if (cr == 0)
			p->in_cgroup = true;
		else
			log_warn("type %s: cannot create the worker's cgroups (%s); using rlimits",
				 t->name, strerror(-cr));
	}
	/* Native workers load "strict" themselves after init, asked through the environment. */
	char **envp = NULL;
	if (tc->mode == MODE_NATIVE && tc->sandbox.seccomp == SECCOMP_STRICT &&
	    (d->sb_available & SB_SECCOMP))
		envp = launch_envp();
	plan.envp = envp;
	int sr = spawn_worker_process(d, argv, sp[1], memfd, outp[1], errp[1], gop[0], tc, &plan,
				      &p->pid, &p->status_fd, errbuf, errlen);
	if (plan.exec_fd >= 0)
		close(plan.exec_fd);
	free(envp);
	if (sr < 0) {
		if (p->in_cgroup)
			sandbox_cgroup_finish(p->cg_id, 0);
		p->in_cgroup = false;
		goto fail;
	}
	free(argv);
	close(sp[1]);
	close(outp[1]);
	close(errp[1]);
	if (gop[0] >= 0)
		close(gop[0]);
	close(memfd);
	p->sock = sp[0];
	p->out_fd = outp[0];
	p->err_fd = errp[0];
	p->go_fd = gop[1];
	fcntl(p->sock, F_SETFL, O_NONBLOCK);
	fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
	return 0;

fail:
	free(argv);
	close_pair(sp);
	close_pair(outp);
	close_pair(errp);
	close_pair(gop);
	if (memfd >= 0)
		close(memfd);
	ring_area_detach(&p->ring);
	return -1;
}

/* Close what the daemon holds of a process that never became a worker. */
void wproc_close(struct wproc *p)
{
	int *fds[] = {&p->sock, &p->out_fd, &p->err_fd, &p->status_fd, &p->go_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	ring_area_detach(&p->ring);
}

/* Stop watching a spare's channel. */
static void spare_unwatch(struct spare *s)
{
	if (s->ev) {
		event_free(s->ev);
		s->ev = NULL;
	}
}

/* Kill a spare and keep it on the dead list until it is reaped. */
static void spare_kill(struct daemon *d, struct spare *s)
{
	kill(s->p.pid, SIGKILL);
	spare_unwatch(s);
	s->type = NULL;
	wproc_close(&s->p);
	TAILQ_INSERT_TAIL(&d->dead_spares, s, entry);
}

/* A spare that failed before use (why): killed, logged, and t makes no more
 * spares until one of its workers is ready (a broken sandbox cannot loop). */
static void spare_broke(struct type_rt *t, struct spare *s, const char *why)
{
	log_warn("type %s: a spare (pid %d) failed before use: %s; no more spares until "
		 "a worker of the type is ready",
		 t->name, (int)s->p.pid, why);
	TAILQ_REMOVE(&t->spares, s, entry);
	t->nspares--;
	t->spares_broken = true;
	spare_kill(t->d, s);
}

/* An exec'd spare's channel: its hello (kept for when it is taken), or its start timeout. */
static void spare_on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct spare *s = arg;
	struct type_rt *t = s->type;
	struct frame f;
	bool ring_calls;

	if (what & EV_TIMEOUT) {
		spare_broke(t, s, "no hello within start_timeout_ms");
		return;
	}
	int r = frame_recv(fd, &f);
	if (r == -EAGAIN || r == -EINTR)
		return;
	if (r <= 0) {
		/* Closed: the process is going (its exit is on the way), or a bad frame. */
		spare_broke(t, s, r == 0 || r == -ECONNRESET ? "its channel closed" : strerror(-r));
		return;
	}
	bool ok = worker_hello_valid(&f, &ring_calls);
	frame_close_fds(&f);
	if (!ok) {
		spare_broke(t, s, "bad hello");
		return;
	}
	s->p.hello = true;
	s->p.ring_calls = ring_calls;
	spare_unwatch(s); /* anything more it sends waits for the worker it becomes */
	log_debug("type %s: spare pid %d ready", t->name, (int)s->p.pid);
}

/*
 * Make one spare of t; false (logged) when it cannot be started.  A spare of
 * corral-worker (builtin, stdio) runs on through execve and its hello, which
 * is read and kept: taken, it is a ready worker at once.  A native program is
 * the user's own code, so its spare waits before execve (held).
 */
bool spare_make(struct type_rt *t)
{
	char err[256];
	struct spare *s = calloc(1, sizeof(*s));
	if (!s)
		fatal("out of memory");
	s->held = t->cfg->mode == MODE_NATIVE;
	if (launch_proc(t, s->held, &s->p, err, sizeof(err)) < 0) {
		log_warn("type %s: cannot make a spare: %s", t->name, err);
		free(s);
		t->spares_broken = true;
		return false;
	}
	s->type = t;
	if (!s->held) {
		s->ev = event_new(t->d->base, s->p.sock, EV_READ | EV_PERSIST, spare_on_sock, s);
		if (!s->ev)
			fatal("out of memory");
		struct timeval tv = {(time_t)(t->cfg->limits.start_timeout_ms / 1000),
				     (suseconds_t)(t->cfg->limits.start_timeout_ms % 1000) * 1000};
		event_add(s->ev, &tv);
	}
	TAILQ_INSERT_TAIL(&t->spares, s, entry);
	t->nspares++;
	log_debug("type %s: spare pid %d made (%s)", t->name, (int)s->p.pid,
		  s->held ? "waits before execve" : "exec'd");
	return true;
}

/* The spare of t to take first: one that said hello, else the oldest. */
static struct spare *spare_best(struct type_rt *t)
{
	struct spare *s;
	TAILQ_FOREACH(s, &t->spares, entry)
	if (s->p.hello)
		return s;
	return TAILQ_FIRST(&t->spares);
}

/* Take a spare of t (a held one sent on to execve) into *p; false when t has none. */
bool spare_take(struct type_rt *t, struct wproc *p)
{
	struct spare *s;
	while ((s = spare_best(t))) {
		TAILQ_REMOVE(&t->spares, s, entry);
		t->nspares--;
		spare_unwatch(s); /* a hello still on its way is read by the worker */
		if (!s->held) {
			*p = s->p;
			free(s);
			return true;
		}
		ssize_t n;
		do
			n = write(s->p.go_fd, "g", 1);
		while (n < 0 && errno == EINTR);
		if (n == 1) {
			close(s->p.go_fd);
			s->p.go_fd = -1;
			*p = s->p;
			free(s);
			return true;
		}
		/* It died meanwhile (EPIPE): its exit is on the way. */
		s->type = NULL;
		wproc_close(&s->p);
		TAILQ_INSERT_TAIL(&t->d->dead_spares, s, entry);
	}
	return false;
}

/* Kill every spare of t (a reload, a stop, the drain); they are reaped later. */
void spares_discard(struct type_rt *t)
{
	struct spare *s;
	while ((s = TAILQ_FIRST(&t->spares))) {
		TAILQ_REMOVE(&t->spares, s, entry);
		t->nspares--;
		spare_kill(t->d, s);
	}
}

/*
 * Cgroups of processes that are gone, removed after the loop's other work:
 * an rmdir of a cgroup takes milliseconds (the kernel waits for RCU), and
 * the replacement of a dead worker should not wait for it.
 */
static uint64_t *cg_trash;
static size_t cg_ntrash, cg_trash_cap;
static struct event *ev_cg_trash;

/* Remove every cgroup in the trash now. */
static void cgroup_trash_remove(void)
{
	for (size_t i = 0; i < cg_ntrash; i++)
		sandbox_cgroup_finish(cg_trash[i], 0);
	cg_ntrash = 0;
}

/* Remove every cgroup in the trash, once the pool has started the replacements
 * it queued (a few turns at most, so that a daemon always refilling still
 * removes them). */
static void cgroup_empty_trash(evutil_socket_t fd, short what, void *arg)
{
	static unsigned yields;
	struct daemon *d = arg;
	(void)fd;
	(void)what;
	if (!TAILQ_EMPTY(&d->refill) && yields < 8) {
		static const struct timeval now = {0, 0};
		yields++;
		event_add(ev_cg_trash, &now);
		return;
	}
	yields = 0;
	cgroup_trash_remove();
}

/* Remove the cgroups numbered cg_id on a later loop turn (now, without a loop). */
void cgroup_finish_later(struct daemon *d, uint64_t cg_id)
{
	if (!d->base) {
		sandbox_cgroup_finish(cg_id, 0);
		return;
	}
	if (!ev_cg_trash) {
		ev_cg_trash = event_new(d->base, -1, 0, cgroup_empty_trash, d);
		if (!ev_cg_trash)
			fatal("out of memory");
		event_priority_set(ev_cg_trash, EV_NPRIO - 1);
	}
	if (cg_ntrash == cg_trash_cap) {
		cg_trash_cap = cg_trash_cap ? 2 * cg_trash_cap : 16;
		cg_trash = realloc(cg_trash, cg_trash_cap * sizeof(*cg_trash));
		if (!cg_trash)
			fatal("out of memory");
	}
	cg_trash[cg_ntrash++] = cg_id;
	static const struct timeval now = {0, 0};
	event_add(ev_cg_trash, &now);
}

/* Remove what is left in the trash and free it (at exit, before the loop goes). */
void cgroup_trash_finish(void)
{
	cgroup_trash_remove();
	if (ev_cg_trash)
		event_free(ev_cg_trash);
	ev_cg_trash = NULL;
	free(cg_trash);
	cg_trash = NULL;
	cg_trash_cap = 0;
}

/* Free a spare whose process is gone; its cgroups go with the trash. */
static void spare_free(struct daemon *d, struct spare *s)
{
	wproc_close(&s->p);
	if (s->p.in_cgroup)
		cgroup_finish_later(d, s->p.cg_id);
	free(s);
}

/* Was pid a spare?  Then it is accounted for (a live spare that died: logged). */
bool spare_reaped(struct daemon *d, pid_t pid, int wstatus)
{
	struct spare *s;
	TAILQ_FOREACH(s, &d->dead_spares, entry)
	if (s->p.pid == pid) {
		TAILQ_REMOVE(&d->dead_spares, s, entry);
		spare_free(d, s);
		return true;
	}
	struct type_rt *t;
	struct typeq *lists[] = {&d->types, &d->retired};
	for (size_t i = 0; i < 2; i++)
		TAILQ_FOREACH(t, lists[i], entry)
	TAILQ_FOREACH(s, &t->spares, entry)
	if (s->p.pid == pid) {
		char why[256] = "";
		int msg[2];
		if (s->p.status_fd >= 0 &&
		    read(s->p.status_fd, msg, sizeof(msg)) == (ssize_t)sizeof(msg))
			spawn_status_message(msg, t->name, why, sizeof(why));
		if (!why[0])
			snprintf(why, sizeof(why), "wait status %d", wstatus);
		log_warn("type %s: a spare (pid %d) died before use: %s; no more spares until "
			 "a worker of the type is ready",
			 t->name, (int)pid, why);
		TAILQ_REMOVE(&t->spares, s, entry);
		t->nspares--;
		t->spares_broken = true;
		spare_unwatch(s);
		spare_free(d, s);
		return true;
	}
	return false;
}

/* At exit: kill the spares left and remove their cgroups. */
void spares_finish(struct daemon *d)
{
	struct type_rt *t;
	TAILQ_FOREACH(t, &d->types, entry)
	spares_discard(t);
	TAILQ_FOREACH(t, &d->retired, entry)
	spares_discard(t);
	struct spare *s;
	while ((s = TAILQ_FIRST(&d->dead_spares))) {
		TAILQ_REMOVE(&d->dead_spares, s, entry);
		while (waitpid(s->p.pid, NULL, 0) < 0 && errno == EINTR)
			;
		spare_free(d, s);
	}
	cgroup_trash_finish();
}
