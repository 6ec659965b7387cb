/*
 * server.c - the control socket: listening, peer credentials, NDJSON lines
 * with SCM_RIGHTS fds in both directions, bounded buffers, dispatch.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sd.h"
#include "server.h"
#include "worker.h"
#include "b64.h"
#include "control.h"

/* Request lines at least this long take the fast path for a payload_b64. */
#define B64_LIFT_MIN 4096u

static void client_on_read(evutil_socket_t fd, short what, void *arg);
static void client_on_write(evutil_socket_t fd, short what, void *arg);
static void client_free(struct client *c);
static void client_kill(struct client *c);
static void server_on_hangup(evutil_socket_t fd, short what, void *arg);
static void client_on_flush(evutil_socket_t fd, short what, void *arg);
static void client_on_timer(evutil_socket_t fd, short what, void *arg);
static void server_on_backlog(evutil_socket_t fd, short what, void *arg);

/* Resolve the daemon's socket path per DESIGN.md; malloc'd. */
char *server_default_path(const char *cli, const struct config *cfg)
{
	const char *env = getenv("CORRAL_SOCKET");
	char buf[4096];

	if (cli)
		return strdup(cli);
	if (cfg && cfg->socket_path)
		return strdup(cfg->socket_path);
	if (env && *env)
		return strdup(env);
	if (geteuid() == 0)
		return strdup("/run/corral/corrald.sock");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && *xdg)
		snprintf(buf, sizeof(buf), "%s/corral/corrald.sock", xdg);
	else
		snprintf(buf, sizeof(buf), "/run/user/%u/corral/corrald.sock", (unsigned)geteuid());
	return strdup(buf);
}

/* mkdir -p for the socket's parent directory (mode 0755 for the leaf). */
static void mkdir_parents(const char *path)
{
	char *dup = strdup(path);
	if (!dup)
		return;
	char *slash = strrchr(dup, '/');
	if (slash && slash != dup) {
		*slash = '\0';
		for (char *p = dup + 1; *p; p++) {
			if (*p == '/') {
				*p = '\0';
				mkdir(dup, 0755);
				*p = '/';
			}
		}
		mkdir(dup, 0755);
	}
	free(dup);
}

/* True when something accepts connections on path. */
static bool socket_is_live(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

/* Bind and listen on path, replacing a stale socket file. */
static int listen_on(const char *path, unsigned mode, const char *group)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	mkdir_parents(path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("%s exists and is not a socket; refusing to replace it", path);
			return -1;
		}
		if (socket_is_live(path)) {
			log_err("another corrald is already listening on %s", path);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			log_err("cannot remove stale socket %s: %s", path, strerror(errno));
			return -1;
		}
		log_info("replaced stale socket %s", path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_err("socket: %s", strerror(errno));
		return -1;
	}
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		log_err("cannot bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(path, (mode_t)mode) < 0)
		log_warn("chmod %s: %s", path, strerror(errno));
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr)
			log_warn("socket group %s does not exist; leaving the socket's group",
				 group);
		else if (chown(path, (uid_t)-1, gr->gr_gid) < 0)
			log_warn("chown %s to group %s: %s", path, group, strerror(errno));
	}
	if (listen(fd, 512) < 0) {
		log_err("listen %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Apply allow lists from a (new) config. */
void server_set_acl(struct server *s, const struct config *cfg)
{
	free(s->allow_uids);
	free(s->allow_gids);
	s->allow_uids = NULL;
	s->allow_gids = NULL;
	s->n_allow_uids = s->n_allow_gids = 0;
	if (cfg->n_allow_uids) {
		s->allow_uids = calloc(cfg->n_allow_uids, sizeof(uid_t));
		if (s->allow_uids) {
			memcpy(s->allow_uids, cfg->allow_uids, cfg->n_allow_uids * sizeof(uid_t));
			s->n_allow_uids = cfg->n_allow_uids;
		}
	}
	size_t ng = 0;
	for (char **g = cfg->allow_groups; g && *g; g++)
		ng++;
	if (ng) {
		s->allow_gids = calloc(ng, sizeof(gid_t));
		for (size_t i = 0; s->allow_gids && i < ng; i++) {
			struct group *gr = getgrnam(cfg->allow_groups[i]);
			if (!gr) {
				log_warn("allow.groups: group %s does not exist",
					 cfg->allow_groups[i]);
				continue;
			}
			s->allow_gids[s->n_allow_gids++] = gr->gr_gid;
		}
	}
}

/* True when the peer's supplementary groups (from /proc) include one allowed. */
static bool peer_groups_allowed(const struct server *s, pid_t pid)
{
	char path[64], line[4096];
	bool ok = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		char *p = line + 7, *end;
		for (;;) {
			unsigned long g = strtoul(p, &end, 10);
			if (end == p)
				break;
			for (size_t i = 0; i < s->n_allow_gids; i++)
				if (s->allow_gids[i] == (gid_t)g)
					ok = true;
			p = end;
		}
	}
	fclose(f);
	return ok;
}

/* Check SO_PEERCRED against the allow lists. */
static bool peer_allowed(const struct server *s, int fd, uid_t *ret_uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	*ret_uid = cr.uid;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	for (size_t i = 0; i < s->n_allow_uids; i++)
		if (s->allow_uids[i] == cr.uid)
			return true;
	for (size_t i = 0; i < s->n_allow_gids; i++)
		if (s->allow_gids[i] == cr.gid)
			return true;
	return s->n_allow_gids && peer_groups_allowed(s, cr.pid);
}

/* Re-enable accept after an EMFILE pause. */
static void server_on_backoff(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	(void)fd;
	(void)what;
	if (!s->d->shutting_down)
		event_add(s->ev_accept, NULL);
}

/* Accept every pending connection. */
static void server_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct server *s = arg;
	(void)what;

	for (int n = 0; n < 64; n++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of fds: stop accepting for a moment instead of spinning. */
				log_warn("accept: %s; pausing accept for 1 s", strerror(errno));
				event_del(s->ev_accept);
				struct timeval tv = {1, 0};
				evtimer_add(s->ev_backoff, &tv);
			}
			return;
		}
		uid_t uid = (uid_t)-1;
		if (!peer_allowed(s, fd, &uid)) {
			static const char deny[] =
			    "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"permission_denied\","
			    "\"message\":\"uid not allowed to use corrald\"}}\n";
			ssize_t w = send(fd, deny, sizeof(deny) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
			log_notice("refused connection from uid %d", (int)uid);
			close(fd);
			continue;
		}
		if (s->nclients >= SERVER_MAX_CLIENTS) {
			static const char full[] =
			    "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"busy\","
			    "\"message\":\"too many clients\"}}\n";
			ssize_t w = send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
			close(fd);
			continue;
		}
		struct client *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		c->uid = uid;
		TAILQ_INIT(&c->out);
		LIST_INIT(&c->calls);
		LIST_INIT(&c->spawns);
		c->ev_rd = event_new(s->d->base, fd, EV_READ | EV_PERSIST, client_on_read, c);
		c->ev_wr = event_new(s->d->base, fd, EV_WRITE | EV_PERSIST, client_on_write, c);
		c->ev_flush = event_new(s->d->base, -1, 0, client_on_flush, c);
		c->ev_timer = evtimer_new(s->d->base, client_on_timer, c);
		if (!c->ev_rd || !c->ev_wr || !c->ev_flush || !c->ev_timer) {
			if (c->ev_rd)
				event_free(c->ev_rd);
			if (c->ev_wr)
				event_free(c->ev_wr);
			if (c->ev_flush)
				event_free(c->ev_flush);
			if (c->ev_timer)
				event_free(c->ev_timer);
			close(fd);
			free(c);
			continue;
		}
		/* Replies flush after the events already pending in a loop turn: one
		 * write carries all the replies the turn produced for this client. */
		event_priority_set(c->ev_flush, EV_PRIO_FLUSH);
		event_add(c->ev_rd, NULL);
		LIST_INSERT_HEAD(&s->clients, c, entry);
		s->nclients++;
	}
}

/*
 * Large buffers (a request line of up to 1 MiB, its payload text and bytes,
 * the reply) come from the heap and stay there for the next call.  glibc
 * would map each one fresh past 128 KiB and unmap it on free, and faulting
 * fresh pages in costs more than all the rest a big inline call does (about
 * 3 us a KiB on a VM: what made 512 KiB of payload_b64 super-linear).  Free
 * memory at the heap's top past TRIM is still given back.
 */
static void server_tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
}

/* Listen (or adopt a systemd socket), set up the accept event. */
int server_start(struct daemon *d, const char *path, const struct config *cfg)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->d = d;
	s->hup_fd = -1;
	LIST_INIT(&s->clients);
	TAILQ_INIT(&s->backlog);
	server_tune_malloc();
	s->lfd = sd_listen_fd();
	if (s->lfd >= 0) {
		s->activated = true;
		evutil_make_socket_nonblocking(s->lfd);
		/* Say where it really listens: the unit's ListenStream, not our default. */
		struct sockaddr_un sa;
		socklen_t sl = sizeof(sa);
		memset(&sa, 0, sizeof(sa));
		if (getsockname(s->lfd, (struct sockaddr *)&sa, &sl) == 0 &&
		    sa.sun_family == AF_UNIX && sa.sun_path[0] &&
		    sl > offsetof(struct sockaddr_un, sun_path)) {
			char *real =
			    strndup(sa.sun_path, sl - offsetof(struct sockaddr_un, sun_path));
			if (real) {
				free(d->socket_path);
				d->socket_path = real;
			}
		}
		log_info("using the socket passed by systemd (fd %d)", s->lfd);
	} else {
		s->lfd = listen_on(path, cfg->socket_mode, cfg->socket_group);
		if (s->lfd < 0) {
			free(s);
			return -1;
		}
	}
	s->ev_accept = event_new(d->base, s->lfd, EV_READ | EV_PERSIST, server_on_accept, s);
	s->ev_backoff = evtimer_new(d->base, server_on_backoff, s);
	s->ev_backlog = evtimer_new(d->base, server_on_backlog, s);
	s->hup_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->hup_fd >= 0) {
		s->ev_hup =
		    event_new(d->base, s->hup_fd, EV_READ | EV_PERSIST, server_on_hangup, s);
		if (!s->ev_hup)
			fatal("out of memory");
		event_add(s->ev_hup, NULL);
	} else {
		log_warn(
		    "epoll_create1: %s; a half-closed client is kept until its replies are out",
		    strerror(errno));
	}
	if (!s->ev_accept || !s->ev_backoff || !s->ev_backlog) {
		log_err("out of memory");
		return -1;
	}
	event_add(s->ev_accept, NULL);
	server_set_acl(s, cfg);
	d->server = s;
	return 0;
}

/* Stop accepting (shutdown). */
void server_stop_accepting(struct server *s)
{
	if (s && s->ev_accept)
		event_del(s->ev_accept);
}

/* Close everything; unlink the socket unless it came from systemd. */
void server_free(struct server *s, const char *path)
{
	if (!s)
		return;
	while (!LIST_EMPTY(&s->clients))
		client_free(LIST_FIRST(&s->clients));
	if (s->ev_accept)
		event_free(s->ev_accept);
	if (s->ev_backoff)
		event_free(s->ev_backoff);
	if (s->ev_backlog)
		event_free(s->ev_backlog);
	if (s->ev_hup)
		event_free(s->ev_hup);
	if (s->hup_fd >= 0)
		close(s->hup_fd);
	if (s->lfd >= 0) {
		close(s->lfd);
		if (!s->activated && path)
			unlink(path);
	}
	free(s->allow_uids);
	free(s->allow_gids);
	free(s);
}

/* Arm the backlog for the next loop turn (after the poll), at a priority by age. */
static void backlog_arm(struct server *s)
{
	static const struct timeval now = {0, 0};
	struct client *head = TAILQ_FIRST(&s->backlog);

	if (!head || event_pending(s->ev_backlog, EV_TIMEOUT, NULL))
		return;
	bool late = mono_us() - head->backlog_us > BACKLOG_MAX_WAIT_US;
	event_priority_set(s->ev_backlog, late ? EV_PRIO_DEFAULT : EV_PRIO_BACKLOG);
	evtimer_add(s->ev_backlog, &now);
}

/* Take c out of the backlog. */
static void backlog_remove(struct client *c)
{
	if (c->in_backlog) {
		TAILQ_REMOVE(&c->srv->backlog, c, bentry);
		c->in_backlog = false;
	}
}

/* Queue c (at the tail) for a slice of its buffered lines. */
static void backlog_add(struct client *c)
{
	if (!c->in_backlog) {
		TAILQ_INSERT_TAIL(&c->srv->backlog, c, bentry);
		c->in_backlog = true;
		c->backlog_us = mono_us();
	}
	backlog_arm(c->srv);
}

/* Free one queued message, closing its fd. */
static void outmsg_free(struct outmsg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	free(m->data);
	free(m);
}

/* Forget the streams of c (no more events go to it). */
static void client_forget_streams(struct client *c)
{
	for (unsigned i = 0; i < c->nfollows; i++) {
		json_decref(c->follows[i].id);
		free(c->follows[i].type);
	}
	free(c->follows);
	c->follows = NULL;
	c->nfollows = 0;
	json_decref(c->watch_id);
	c->watch_id = NULL;
}

/*
 * A peer that shut only its writing side (`nc -N`, a script's shutdown(SHUT_WR))
 * still reads: its calls are answered and its streams go on.  One that closed
 * the connection does not: the kernel reports EPOLLHUP (both directions shut)
 * only then, which a second epoll set sees with no events asked for (EOF alone
 * would keep a level-triggered read event firing).  Its queued calls go.
 */
static void client_watch_hangup(struct client *c)
{
	struct epoll_event ev = {.events = 0, .data.ptr = c};

	if (c->hup_watched || c->srv->hup_fd < 0)
		return;
	if (epoll_ctl(c->srv->hup_fd, EPOLL_CTL_ADD, c->fd, &ev) == 0)
		c->hup_watched = true;
}

static void client_unwatch_hangup(struct client *c)
{
	if (c->hup_watched) {
		epoll_ctl(c->srv->hup_fd, EPOLL_CTL_DEL, c->fd, NULL);
		c->hup_watched = false;
	}
}

/* Some half-closed client hung up: drop it (its queued calls with it). */
static void server_on_hangup(evutil_socket_t fd, short what, void *arg)
{
	struct epoll_event evs[64];
	(void)arg;
	(void)what;

	int n = epoll_wait(fd, evs, 64, 0);
	for (int i = 0; i < n; i++) {
		struct client *c = evs[i].data.ptr;
		if (c->hup_watched && !c->dead)
			client_kill(c);
	}
}

/* Release a client: detach its calls and spawn requests, close its fds. */
static void client_free(struct client *c)
{
	struct outmsg *m;

	while (!LIST_EMPTY(&c->calls)) {
		struct call *call = LIST_FIRST(&c->calls);
		LIST_REMOVE(call, centry);
		call->client = NULL;
		if (call->queued) {
			/* Nobody waits for it: drop it from the queue. */
			TAILQ_REMOVE(&call->type->queue, call, qentry);
			call->type->nqueued--;
			call->queued = false;
			call_free(call);
		}
	}
	while (!LIST_EMPTY(&c->spawns)) {
		struct spawn_req *r = LIST_FIRST(&c->spawns);
		LIST_REMOVE(r, centry);
		r->client = NULL;
	}
	while ((m = TAILQ_FIRST(&c->out))) {
		TAILQ_REMOVE(&c->out, m, entry);
		outmsg_free(m);
	}
	for (unsigned i = 0; i < c->nrfds; i++)
		close(c->rfds[i].fd);
	for (unsigned i = 0; i < c->ncur_fds; i++)
		if (c->cur_fds[i] >= 0)
			close(c->cur_fds[i]);
	client_forget_streams(c);
	client_unwatch_hangup(c);
	backlog_remove(c);
	event_free(c->ev_rd);
	event_free(c->ev_wr);
	event_free(c->ev_flush);
	event_free(c->ev_timer);
	close(c->fd);
	LIST_REMOVE(c, entry);
	c->srv->nclients--;
	free(c->in);
	free(c);
}

/* True when the client has nothing left to do and may be closed. */
static bool client_done(const struct client *c)
{
	return c->closing && TAILQ_EMPTY(&c->out) && LIST_EMPTY(&c->calls) &&
	       LIST_EMPTY(&c->spawns) && !c->watch_id && !c->nfollows;
}

/* Account n bytes written out of the queue head; free the messages fully sent. */
static void client_consume(struct client *c, size_t n)
{
	struct outmsg *m;

	while (n && (m = TAILQ_FIRST(&c->out))) {
		size_t take = m->len - m->off;
		if (take > n)
			take = n;
		m->off += take;
		n -= take;
		c->outbytes -= take;
		if (m->event)
			c->evbytes -= take;
		if (m->off < m->len)
			break;
		TAILQ_REMOVE(&c->out, m, entry);
		outmsg_free(m);
	}
}

/*
 * Messages written by one sendmsg: a run without fds.  A message with an fd
 * goes alone, so the chunk carrying the fd holds the start of its line and no
 * other (a client ties the fd to the last line starting in that chunk).
 */
#define FLUSH_IOV 64

static void client_arm_input(struct client *c);

/* Write as much queued output as the socket takes; 0 ok, -1 the client is done or gone. */
static int client_flush(struct client *c)
{
	struct outmsg *m;

	while ((m = TAILQ_FIRST(&c->out))) {
		struct iovec iov[FLUSH_IOV];
		struct msghdr mh = {.msg_iov = iov};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		size_t total = 0;
		unsigned n = 0;

		/* A line with an fd goes in a sendmsg of its own: the kernel hands the
		 * fd out with the read that reaches the message's first bytes and ends
		 * that read there, so the reader ties it to the last line starting in
		 * its read; a line batched after it would take the fd. */
		for (struct outmsg *x = m; x && n < FLUSH_IOV; x = TAILQ_NEXT(x, entry)) {
			if (x != m && (x->fd >= 0 || m->fd >= 0))
				break;
			iov[n].iov_base = x->data + x->off;
			iov[n].iov_len = x->len - x->off;
			total += iov[n].iov_len;
			n++;
		}
		mh.msg_iovlen = n;
		if (m->fd >= 0) {
			memset(&u, 0, sizeof(u));
			mh.msg_control = u.buf;
			mh.msg_controllen = sizeof(u.buf);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &m->fd, sizeof(int));
		}
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		if (m->fd >= 0) {
			close(m->fd);
			m->fd = -1;
		}
		client_consume(c, (size_t)w);
		if ((size_t)w < total)
			break;
	}
	if (TAILQ_EMPTY(&c->out)) {
		event_del(c->ev_wr);
		if (client_done(c))
			return -1;
	} else {
		event_add(c->ev_wr, NULL);
	}
	if (c->paused)
		client_arm_input(c); /* resumes once drained to half the soft limit */
	return 0;
}

/* Free a client (from the loop, never from under a caller that still holds it). */
static void client_drop(struct client *c)
{
	client_free(c);
}

/* Flush at the end of the loop turn; a dead client is freed here. */
static void client_schedule(struct client *c)
{
	if (!c->flush_pending) {
		c->flush_pending = true;
		event_active(c->ev_flush, EV_TIMEOUT, 1);
	}
}

/* Mark a client dead: no more output; freed by the flush event. */
static void client_kill(struct client *c)
{
	c->dead = true;
	c->closing = true;
	client_unwatch_hangup(c);
	event_del(c->ev_rd);
	event_del(c->ev_wr);
	event_del(c->ev_timer);
	backlog_remove(c);
	while (!TAILQ_EMPTY(&c->out)) {
		struct outmsg *o = TAILQ_FIRST(&c->out);
		TAILQ_REMOVE(&c->out, o, entry);
		outmsg_free(o);
	}
	c->outbytes = 0;
	c->evbytes = 0;
	client_schedule(c);
}

/* The loop turn is over: write what it queued. */
static void client_on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)fd;
	(void)what;
	c->flush_pending = false;
	if (c->dead || client_flush(c) < 0)
		client_drop(c);
}

/* Socket writable: flush. */
static void client_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)fd;
	(void)what;
	if (client_flush(c) < 0)
		client_drop(c);
}

/* Queue one line (s, malloc'd, no newline, is taken); event: a stream event. */
static void client_queue(struct client *c, char *s, size_t len, int fd, bool event)
{
	if (!s || c->dead) {
		free(s);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (len > LINE_MAX_BYTES) {
		/* Only an echoed id that nearly filled its request line gets here (results
		 * past a line go as fds): the reply cannot carry it. */
		free(s);
		if (fd >= 0)
			close(fd);
		fd = -1;
		if (asprintf(
			&s,
			"{\"id\":null,\"ok\":false,\"error\":{\"code\":\"too_large\","
			"\"message\":\"the reply would exceed %u bytes (its id is too long)\"}}",
			LINE_MAX_BYTES) < 0)
			return;
		len = strlen(s);
	}
	struct outmsg *m = malloc(sizeof(*m));
	char *data = realloc(s, len + 1);
	if (!m || !data) {
		free(m);
		free(data ? data : s);
		if (fd >= 0)
			close(fd);
		return;
	}
	data[len++] = '\n';
	m->data = data;
	m->len = len;
	m->off = 0;
	m->fd = fd;
	m->event = event;
	bool was_empty = TAILQ_EMPTY(&c->out);
	TAILQ_INSERT_TAIL(&c->out, m, entry);
	c->outbytes += len;
	if (event)
		c->evbytes += len;
	if (c->outbytes > CLIENT_MAX_OUT) {
		/* The client stopped reading: drop it rather than grow without bound. */
		log_notice("dropping a client that stopped reading (%zu bytes queued)",
			   c->outbytes);
		client_kill(c);
		return;
	}
	if (was_empty)
		client_schedule(c); /* else EV_WRITE or a scheduled flush is already on it */
}

/* Queue one JSON line (obj is stolen) with an optional fd (stolen). */
void client_send(struct client *c, json_t *obj, int fd)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(obj);
	client_queue(c, s, s ? strlen(s) : 0, fd, false);
}

/* Queue one serialized line (s, malloc'd, no newline, is taken) with an optional fd. */
void client_send_line(struct client *c, char *s, size_t len, int fd)
{
	client_queue(c, s, len, fd, false);
}

/* {"id":id,"ok":true, ...extra} */
void client_reply_ok(struct client *c, json_t *id, json_t *extra)
{
	json_t *o = json_object();
	json_object_set(o, "id", id ? id : json_null());
	json_object_set_new(o, "ok", json_true());
	if (extra) {
		json_object_update(o, extra);
		json_decref(extra);
	}
	client_send(c, o, -1);
}

/* Build an error reply object. */
static json_t *error_obj(json_t *id, const char *code, const char *msg)
{
	return json_pack("{s:O,s:b,s:{s:s,s:s}}", "id", id ? id : json_null(), "ok", 0, "error",
			 "code", code, "message", msg);
}

/* {"id":id,"ok":false,"error":{code,message}} */
void client_reply_error(struct client *c, json_t *id, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_utf8_sanitize(msg);
	client_send(c, error_obj(id, code, msg), -1);
}

/* Take the fd that rode with the current line, or -1. */
int client_take_fd(struct client *c)
{
	for (unsigned i = 0; i < c->ncur_fds; i++) {
		if (c->cur_fds[i] >= 0) {
			int fd = c->cur_fds[i];
			c->cur_fds[i] = -1;
			return fd;
		}
	}
	return -1;
}

/*
 * End c's streams: unsent events are discarded (a message already begun is
 * finished, so the peer never sees a torn line), each stream gets a final
 * event {"end": why}, and the connection closes once that is out, or after
 * STREAM_LINGER_MS.  Replies to its requests still go first.
 */
static void client_end_streams(struct client *c, const char *why)
{
	struct outmsg *m, *next;
	struct timeval linger = {STREAM_LINGER_MS / 1000, (STREAM_LINGER_MS % 1000) * 1000};

	if (c->dead || (!c->watch_id && !c->nfollows))
		return;
	for (m = TAILQ_FIRST(&c->out); m; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (!m->event || m->off > 0)
			continue;
		TAILQ_REMOVE(&c->out, m, entry);
		c->outbytes -= m->len;
		c->evbytes -= m->len;
		outmsg_free(m);
	}
	for (unsigned i = 0; i <= c->nfollows; i++) {
		json_t *sid = i < c->nfollows ? c->follows[i].id : c->watch_id;
		if (sid)
			client_send(c, json_pack("{s:O,s:{s:s}}", "id", sid, "event", "end", why),
				    -1);
	}
	client_forget_streams(c);
	c->ended = true;
	c->closing = true;
	event_del(c->ev_rd);
	evtimer_add(c->ev_timer, &linger);
	client_schedule(c);
}

/* Queue a stream event; a follower that fell behind is dropped instead. */
static void client_send_event(struct client *c, json_t *obj)
{
	if (c->evbytes > STREAM_MAX_OUT) {
		json_decref(obj);
		log_notice("dropping a stream follower that fell behind (%zu bytes of events "
			   "unsent)",
			   c->evbytes);
		char why[160];
		snprintf(why, sizeof(why),
			 "dropped: this follower fell behind (%zu bytes of events unsent)",
			 c->evbytes);
		client_end_streams(c, why);
		return;
	}
	char *s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(obj);
	client_queue(c, s, s ? strlen(s) : 0, -1, true);
}

/* Past JSON whitespace. */
static const char *json_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* Past the JSON string that starts at p (a quote); NULL when it does not end. */
static const char *json_skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Past the JSON value that starts at p, nested ones whole; NULL when malformed. */
static const char *json_skip_value(const char *p, const char *end)
{
	unsigned depth = 0;

	if (p < end && *p == '"')
		return json_skip_string(p, end);
	while (p < end) {
		if (*p == '"') {
			p = json_skip_string(p, end);
			if (!p)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return p; /* a scalar ended by its container */
			if (--depth == 0)
				return p + 1;
		} else if (depth == 0 &&
			   (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
			return p;
		}
		p++;
	}
	return NULL;
}

/*
 * Where the request's top-level "payload_b64" holds plain base64 (digits and
 * padding only, so no escapes): its text is line[*vs, *vs + *vn).  False for
 * anything else, which then takes the ordinary path.
 */
static bool find_payload_b64(const char *line, size_t len, size_t *vs, size_t *vn)
{
	static const char key[] = "payload_b64";
	const char *end = line + len, *p = json_ws(line, end);

	if (p == end || *p++ != '{')
		return false;
	for (;;) {
		p = json_ws(p, end);
		if (p == end || *p != '"')
			return false;
		const char *k = p + 1;
		p = json_skip_string(p, end);
		if (!p)
			return false;
		bool match =
		    (size_t)(p - 1 - k) == sizeof(key) - 1 && !memcmp(k, key, sizeof(key) - 1);
		p = json_ws(p, end);
		if (p == end || *p++ != ':')
			return false;
		p = json_ws(p, end);
		if (match) {
			if (p == end || *p != '"')
				return false;
			const char *s = p + 1, *e = s + b64_span(s, (size_t)(end - s));
			if (e == end || *e != '"')
				return false;
			*vs = (size_t)(s - line);
			*vn = (size_t)(e - s);
			return true;
		}
		p = json_skip_value(p, end);
		if (!p)
			return false;
		p = json_ws(p, end);
		if (p == end || *p++ != ',')
			return false;
	}
}

/*
 * ctl_request_parse(), but a large plain base64 payload skips the JSON
 * parser: jansson reads a string byte by byte and grows its buffer as it
 * goes (the bulk of a big call's time outside the worker).  The rest of the
 * request is parsed and validated as usual with an empty payload_b64, which
 * then becomes the text taken straight from the line.
 */
static enum ctl_code client_parse(struct client *c, const char *line, size_t len,
				  struct ctl_request *req, char *err, size_t errlen)
{
	size_t vs, vn;

	if (len < B64_LIFT_MIN || !find_payload_b64(line, len, &vs, &vn))
		return ctl_request_parse(line, len, c->ncur_fds, req, err, errlen);
	char *rest = malloc(len - vn);
	if (!rest)
		return ctl_request_parse(line, len, c->ncur_fds, req, err, errlen);
	memcpy(rest, line, vs);
	memcpy(rest + vs, line + vs + vn, len - vs - vn);
	enum ctl_code code = ctl_request_parse(rest, len - vn, c->ncur_fds, req, err, errlen);
	free(rest);
	if (code != CTL_OK) {
		/* Errors are rare: the ordinary path words them (columns of the whole line). */
		ctl_request_free(req);
		return ctl_request_parse(line, len, c->ncur_fds, req, err, errlen);
	}
	if (json_object_set_new(req->root, "payload_b64", json_stringn_nocheck(line + vs, vn)) <
	    0) {
		snprintf(err, errlen, "out of memory");
		code = CTL_INTERNAL;
	}
	return code;
}

/* Validate the request (proto/control.c), then run the command. */
static void client_dispatch(struct client *c, const char *line, size_t len)
{
	struct ctl_request req;
	char err[512];
	enum ctl_code code = client_parse(c, line, len, &req, err, sizeof(err));
	cmd_fn fn = req.cmd ? command_handlers[req.cmd->cmd] : NULL;

	if (code == CTL_OK && !fn) {
		code = CTL_UNKNOWN_COMMAND;
		snprintf(err, sizeof(err), "command \"%s\" is not served", req.cmd->name);
	}
	if (code == CTL_OK && c->srv->d->shutting_down && !req.cmd->while_draining) {
		code = CTL_SHUTTING_DOWN;
		snprintf(err, sizeof(err), "corrald is shutting down");
	}
	if (code != CTL_OK) {
		client_reply_error(c, req.id, ctl_code_name(code), "%s", err);
		ctl_request_free(&req);
		return;
	}
	json_t *id = json_incref(req.id);
	fn(c, id, req.root);
	json_decref(id);
	ctl_request_free(&req);
}

/* Move the fds that arrived within [start, end) of the stream to cur_fds. */
static void client_collect_fds(struct client *c, uint64_t start, uint64_t end)
{
	unsigned keep = 0;

	c->ncur_fds = 0;
	for (unsigned i = 0; i < c->nrfds; i++) {
		if (c->rfds[i].off >= start && c->rfds[i].off < end)
			c->cur_fds[c->ncur_fds++] = c->rfds[i].fd;
		else if (c->rfds[i].off < start)
			close(c->rfds[i].fd); /* belonged to a line already gone */
		else
			c->rfds[keep++] = c->rfds[i];
	}
	c->nrfds = keep;
}

/* True when replies pile up: stop reading (resume at half the soft limit). */
static bool client_over_soft(const struct client *c)
{
	return c->outbytes > (c->paused ? CLIENT_SOFT_OUT / 2 : CLIENT_SOFT_OUT);
}

/* True when unscanned input is buffered (it may hold a complete line). */
static bool client_has_input(const struct client *c)
{
	return c->scan < c->inlen;
}

/*
 * Decide how c's input goes on: paused while its replies pile up; the
 * backlog while complete lines are buffered (or EOF is to be handled); else
 * wait for the socket.
 */
static void client_arm_input(struct client *c)
{
	if (c->dead || c->closing) {
		event_del(c->ev_rd);
		backlog_remove(c);
		return;
	}
	c->paused = client_over_soft(c);
	if (c->paused) {
		event_del(c->ev_rd);
		backlog_remove(c);
	} else if (client_has_input(c) || c->rd_eof) {
		event_del(c->ev_rd);
		backlog_add(c);
	} else {
		backlog_remove(c);
		event_add(c->ev_rd, NULL);
	}
}

/*
 * Dispatch at most CLIENT_LINE_SLICE complete lines, fewer once the
 * client's replies pass the soft limit; -1 when c was freed.
 */
static int client_process(struct client *c)
{
	size_t pos = c->inoff;
	unsigned lines = 0;

	while (!c->dead && !c->closing && lines < CLIENT_LINE_SLICE && !client_over_soft(c)) {
		size_t from = c->scan > pos ? c->scan : pos;
		char *nl = from < c->inlen ? memchr(c->in + from, '\n', c->inlen - from) : NULL;
		if (!nl && c->rd_eof && pos < c->inlen && c->inlen - pos <= LINE_MAX_BYTES)
			nl = c->in + c->inlen; /* the peer's EOF ends its last line */
		if (!nl) {
			c->scan = c->inlen;
			break;
		}
		size_t len = (size_t)(nl - (c->in + pos));
		uint64_t start = c->in_base + pos;
		client_collect_fds(c, start, start + len + 1);
		if (len > LINE_MAX_BYTES) {
			client_reply_error(c, NULL, ctl_code_name(CTL_TOO_LARGE),
					   "request line exceeds %u bytes", LINE_MAX_BYTES);
			client_forget_streams(c);
			c->closing = true;
		} else {
			client_dispatch(c, c->in + pos, len); /* an empty line is not JSON either */
		}
		for (unsigned i = 0; i < c->ncur_fds; i++)
			if (c->cur_fds[i] >= 0)
				close(c->cur_fds[i]);
		c->ncur_fds = 0;
		pos += len + (pos + len < c->inlen);
		lines++;
	}
	c->inoff = pos;
	if (c->scan < pos)
		c->scan = pos;
	if (c->inoff == c->inlen) {
		c->in_base += c->inlen;
		c->inoff = c->inlen = c->scan = 0;
		if (c->incap > 2 * CLIENT_READ_SLICE) {
			/* A long line is done: do not keep its buffer per idle client. */
			free(c->in);
			c->in = NULL;
			c->incap = 0;
		}
	}
	if (!c->closing && c->scan - c->inoff > LINE_MAX_BYTES) {
		client_reply_error(c, NULL, ctl_code_name(CTL_TOO_LARGE),
				   "request line exceeds %u bytes", LINE_MAX_BYTES);
		client_forget_streams(c);
		c->closing = true;
	}
	if (!c->closing && c->rd_eof && !client_has_input(c))
		c->closing = true; /* EOF: what is complete is done; go once replies are out */
	if (c->closing && !c->dead && client_done(c)) {
		client_drop(c);
		return -1;
	}
	if (c->rd_eof && c->closing && !c->dead)
		client_watch_hangup(c); /* still owed replies or streams: until it hangs up */
	client_arm_input(c);
	return 0;
}

/* Make room for one read slice: compact, then grow up to the line limit. */
static bool client_make_room(struct client *c)
{
	if (c->incap - c->inlen >= CLIENT_READ_SLICE)
		return true;
	if (c->inoff) {
		memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
		c->in_base += c->inoff;
		c->inlen -= c->inoff;
		c->scan -= c->inoff;
		c->inoff = 0;
		if (c->incap - c->inlen >= CLIENT_READ_SLICE)
			return true;
	}
	size_t ncap = c->incap ? c->incap * 2 : CLIENT_READ_SLICE;
	if (ncap < c->inlen + CLIENT_READ_SLICE)
		ncap = c->inlen + CLIENT_READ_SLICE;
	if (ncap > LINE_MAX_BYTES + 2 * CLIENT_READ_SLICE)
		ncap = LINE_MAX_BYTES + 2 * CLIENT_READ_SLICE;
	if (ncap <= c->incap)
		return c->incap > c->inlen;
	char *n = realloc(c->in, ncap);
	if (!n)
		return false;
	c->in = n;
	c->incap = ncap;
	return true;
}

/* An ended stream's linger ran out. */
static void client_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)fd;
	(void)what;
	log_notice("closing a stream follower that did not read its final event");
	client_drop(c);
}

/* One slice of the backlog's head client (it goes to the tail if lines remain). */
static void server_on_backlog(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct client *c = TAILQ_FIRST(&s->backlog);
	(void)fd;
	(void)what;

	if (c) {
		backlog_remove(c);
		worker_wakes_hold(s->d);
		client_process(c); /* re-queues it at the tail while lines remain */
		worker_wakes_flush(s->d);
	}
	backlog_arm(s);
}

/* Does this request line ask for an fd ("payload_fd": true)?  Only a key can
 * hold the quoted name followed by a colon: inside a JSON string the quotes
 * would be escaped. */
static bool line_takes_fd(const char *p, size_t len)
{
	static const char key[] = "\"payload_fd\"";
	const char *end = p + len;

	while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
		p += sizeof(key) - 1;
		const char *q = json_ws(p, end);
		if (q < end && *q == ':') {
			q = json_ws(q + 1, end);
			return (size_t)(end - q) >= 4 && memcmp(q, "true", 4) == 0;
		}
	}
	return false;
}

/*
 * The fds of one read go with the lines that start in it.  Linux ends a
 * stream read right after the message that carried fds, so they came with
 * the last of those lines, or with earlier ones of the same sendmsg when a
 * client sends several lines and their fds at once: each earlier line that
 * asks for an fd takes the next one, in order; the last line gets the rest
 * (a line that takes none is then refused, its fds closed).  The n bytes
 * read sit at the end of c->in.
 */
static void client_place_fds(struct client *c, size_t n, const int *fds, size_t nfds)
{
	const char *data = c->in + c->inlen - n;
	uint64_t base = c->in_base + c->inlen - n;
	/* The line holding the read's first byte may have begun before it. */
	size_t before = (size_t)(data - (c->in + c->inoff));
	const char *nl0 = before ? memrchr(c->in + c->inoff, '\n', before) : NULL;
	const char *line = nl0 ? nl0 + 1 : c->in + c->inoff;
	uint64_t off = base;
	size_t next = 0;

	for (;;) {
		/* This line ends within the read (and another starts after it)? */
		const char *scan = line > data ? line : data;
		const char *nl = memchr(scan, '\n', (size_t)(data + n - scan));
		if (!nl || nl + 1 >= data + n)
			break; /* the last line starting here */
		if (next < nfds && line_takes_fd(line, (size_t)(nl - line))) {
			c->rfds[c->nrfds].fd = fds[next++];
			c->rfds[c->nrfds].off = off;
			c->nrfds++;
		}
		line = nl + 1;
		off = base + (uint64_t)(line - data);
	}
	for (; next < nfds; next++) {
		c->rfds[c->nrfds].fd = fds[next];
		c->rfds[c->nrfds].off = off;
		c->nrfds++;
	}
}

/* Socket readable: read one slice of bytes and fds, dispatch a slice of lines. */
static void client_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	(void)what;

	if (c->dead || c->closing || c->paused || client_has_input(c)) {
		client_arm_input(c);
		return;
	}
	if (!client_make_room(c)) {
		client_drop(c);
		return;
	}
	union {
		char buf[CMSG_SPACE(sizeof(int) * CLIENT_MAX_RFDS)];
		struct cmsghdr align;
	} u;
	size_t room = c->incap - c->inlen;
	struct iovec iov = {c->in + c->inlen, room < CLIENT_READ_SLICE ? room : CLIENT_READ_SLICE};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			client_drop(c);
		return;
	}
	int got[CLIENT_MAX_RFDS];
	size_t ngot = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int rfd;
			memcpy(&rfd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (ngot < CLIENT_MAX_RFDS && c->nrfds + ngot < CLIENT_MAX_RFDS)
				got[ngot++] = rfd;
			else
				close(rfd);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		log_notice("client sent more fds than accepted; extra closed");
	if (n == 0)
		c->rd_eof = true; /* finish what is complete, then go once replies are out */
	c->inlen += (size_t)n;
	if (ngot)
		client_place_fds(c, (size_t)n, got, ngot);
	struct daemon *d = c->srv->d;
	worker_wakes_hold(d); /* one doorbell per worker for all the lines read */
	client_process(c);
	worker_wakes_flush(d);
}

/* Try to flush every client's output once (exit path). */
bool server_flush_all(struct server *s)
{
	bool all = true;
	struct client *c, *tmp;

	if (!s)
		return true;
	for (c = LIST_FIRST(&s->clients); c; c = tmp) {
		tmp = LIST_NEXT(c, entry);
		if (!TAILQ_EMPTY(&c->out) && client_flush(c) == 0 && !TAILQ_EMPTY(&c->out))
			all = false;
	}
	return all;
}

/* End every stream with a final event (shutdown drain). */
void server_end_streams(struct server *s, const char *why)
{
	struct client *c, *tmp;

	if (!s)
		return;
	for (c = LIST_FIRST(&s->clients); c; c = tmp) {
		tmp = LIST_NEXT(c, entry);
		client_end_streams(c, why);
	}
}

/* A worker changed state: tell every `watch` client. */
void server_emit_watch(struct daemon *d, const struct worker *w, const char *reason)
{
	struct client *c, *tmp;

	if (!d->server)
		return;
	for (c = LIST_FIRST(&d->server->clients); c; c = tmp) {
		tmp = LIST_NEXT(c, entry);
		if (!c->watch_id || c->dead)
			continue;
		json_t *ev = json_pack("{s:I,s:s,s:I,s:s}", "worker", (json_int_t)w->id, "type",
				       w->type->name, "pid", (json_int_t)w->pid, "state",
				       wstate_names[w->state]);
		if (reason)
			json_object_set_new(ev, "reason", json_string(reason));
		client_send_event(c, json_pack("{s:O,s:o}", "id", c->watch_id, "event", ev));
	}
}

/* A log line arrived: tell every matching `logs -f` client. */
void server_emit_log(struct daemon *d, const struct type_rt *t, const struct logline *l)
{
	struct client *c, *tmp;

	if (!d->server)
		return;
	for (c = LIST_FIRST(&d->server->clients); c; c = tmp) {
		tmp = LIST_NEXT(c, entry);
		if (c->dead)
			continue;
		/* Each stream of the client that wants the line gets it under its id. */
		for (unsigned i = 0; i < c->nfollows && !c->ended; i++) {
			struct follow *f = &c->follows[i];
			if (f->worker ? f->worker != l->worker
				      : f->type && strcmp(f->type, t->name) != 0)
				continue;
			client_send_event(
			    c, json_pack("{s:O,s:o}", "id", f->id, "event", logline_to_json(l)));
		}
	}
}
