/*
 * conn.c - libcorral's connection: the socket, request ids, the receive
 * buffer that splits lines and ties received fds to them, the table of calls
 * in flight, and the two ways of waiting for replies:
 *
 *   blocking  any thread may wait; the first waiter to find nobody reading
 *             becomes the reader (c->reading), reads without the lock, parses,
 *             then hands every reply to its pending entry and wakes the others
 *             (leader/follower).  A writer that finds the socket full reads too,
 *             so a pipeline never deadlocks against a daemon that stops reading
 *             until its replies are taken.
 *   async     the connection's fd is an event on the caller's event_base;
 *             requests queue in c->outq and replies run callbacks on that loop.
 *
 * Received fds are tied to lines through an anchor (a stream offset): corrald
 * sends an fd with the first sendmsg() of its reply line, the kernel never
 * merges a message carrying fds with later bytes, so the fd belongs to the last
 * line that starts inside the chunk it came with (or, when none starts there,
 * to the line holding the chunk's first byte).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "conn.h"
#include "control.h"

#define RBUF_INITIAL  (64u * 1024u)
#define RBUF_MAX      (CTL_LINE_MAX + 1u + 64u * 1024u)
#define RECV_FDS      8u
#define PENDING_FDS   16u
#define CONNECT_WAIT  10000 /* ms for the version ping at connect */
#define ASYNC_READS   16    /* reads per readable event, for fairness */
#define WAIT_SLACK_MS 5000  /* beyond a call's timeout_ms before the library gives up */

/* Monotonic nanoseconds. */
static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds left until deadline (0: none -> -1, wait forever). */
static int ms_left(int64_t deadline)
{
	if (!deadline)
		return -1;
	int64_t left = (deadline - now_ns() + 999999) / 1000000;
	return left < 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
}

/* ---- Receive buffer ---------------------------------------------------- */

/* Read one chunk into the buffer; >0 bytes, 0 EOF, -errno, -ETIMEDOUT. */
int cr_fill(struct corral *c, int timeout_ms)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(RECV_FDS * sizeof(int))];
	} cbuf;
	int flags = MSG_CMSG_CLOEXEC;

	/* cr_take_line found no newline in what is there: past the longest line, none is due. */
	if (c->scan == c->end && c->end - c->start > CTL_LINE_MAX)
		return -EMSGSIZE;
	if (c->start == c->end) {
		c->base += c->end;
		c->start = c->end = c->scan = 0;
	} else if (c->start > c->cap / 2) {
		memmove(c->rbuf, c->rbuf + c->start, c->end - c->start);
		c->base += c->start;
		c->end -= c->start;
		c->scan -= c->start;
		c->start = 0;
	}
	if (c->cap - c->end < 4096) {
		if (c->cap >= RBUF_MAX)
			return -EMSGSIZE; /* a line longer than the protocol allows */
		size_t ncap = c->cap * 2 > RBUF_MAX ? RBUF_MAX : c->cap * 2;
		char *nb = realloc(c->rbuf, ncap);
		if (!nb)
			return -ENOMEM;
		c->rbuf = nb;
		c->cap = ncap;
	}
	if (timeout_ms >= 0) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r;
		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		flags |= MSG_DONTWAIT;
	}
	struct iovec iov = {c->rbuf + c->end, c->cap - c->end};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf)};
	ssize_t n;
	do
		n = recvmsg(c->fd, &msg, flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	/* Where the fds of this chunk belong: see the file comment. */
	uint64_t off = c->base + c->end, anchor = off;
	for (ssize_t i = n - 2; i >= 0; i--)
		if (c->rbuf[c->end + (size_t)i] == '\n') {
			anchor = off + (uint64_t)i + 1;
			break;
		}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (c->nfds < PENDING_FDS)
				c->fds[c->nfds++] = (struct cr_fd){anchor, fd};
			else
				close(fd);
		}
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		/* More fds than we take: they were closed by the kernel. */
	}
	c->end += (size_t)n;
	return (int)n;
}

/*
 * The next whole line in the buffer (without its newline), its fd (first one
 * anchored in it; others closed) or -1.  False when no whole line is there.
 */
bool cr_take_line(struct corral *c, const char **ret_line, size_t *ret_len, int *ret_fd)
{
	char *nl = memchr(c->rbuf + c->scan, '\n', c->end - c->scan);

	if (!nl) {
		c->scan = c->end;
		return false;
	}
	size_t at = (size_t)(nl - c->rbuf);
	uint64_t nlpos = c->base + at;
	int fd = -1;
	size_t k = 0;
	for (size_t i = 0; i < c->nfds; i++) {
		if (c->fds[i].anchor <= nlpos) {
			if (fd < 0)
				fd = c->fds[i].fd;
			else
				close(c->fds[i].fd);
		} else {
			c->fds[k++] = c->fds[i];
		}
	}
	c->nfds = k;
	*ret_line = c->rbuf + c->start;
	*ret_len = at - c->start;
	*ret_fd = fd;
	c->start = c->scan = at + 1;
	return true;
}

/* ---- Connection ---------------------------------------------------------- */

/* Free everything of c but the pending entries. */
static void conn_free(struct corral *c)
{
	if (c->async)
		c->async->release(c);
	while (c->outq) {
		struct cr_out *o = c->outq;
		c->outq = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o->data);
		free(o);
	}
	for (size_t i = 0; i < c->nfds; i++)
		close(c->fds[i].fd);
	json_decref(c->events);
	if (c->fd >= 0)
		close(c->fd);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->send_mu);
	pthread_condattr_destroy(&c->cvattr);
	free(c->rbuf);
	free(c->path);
	free(c);
}

/* Open the socket at path and set c up; no ping. */
enum corral_code cr_open(const char *path, struct corral **ret, struct corral_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char def[sizeof(sa.sun_path) + 64];

	if (!path)
		path = ctl_default_socket(def, sizeof(def));
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(sa.sun_path))
		return cr_err(err, CORRAL_E_INVALID, n ? ENAMETOOLONG : ENOENT,
			      "socket path \"%.200s\" is empty or too long", path);
	memcpy(sa.sun_path, path, n);

	struct corral *c = calloc(1, sizeof(*c));
	if (!c)
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
	c->fd = -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->send_mu, NULL);
	pthread_condattr_init(&c->cvattr);
	pthread_condattr_setclock(&c->cvattr, CLOCK_MONOTONIC);
	c->next_id = 1;
	c->cap = RBUF_INITIAL;
	c->rbuf = malloc(c->cap);
	c->path = strdup(path);
	if (!c->rbuf || !c->path) {
		conn_free(c);
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		int e = errno;
		conn_free(c);
		return cr_err(err, CORRAL_E_SYSTEM, e, "socket: %s", strerror(e));
	}
	int r;
	do
		r = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = errno;
		enum corral_code code = CORRAL_E_SYSTEM;
		const char *why = "";
		conn_free(c);
		if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) {
			code = CORRAL_E_NO_DAEMON;
			why = " (is corrald running?)";
		} else if (e == EACCES || e == EPERM) {
			code = CORRAL_E_PERMISSION_DENIED;
			why = " (the socket's mode or group keeps this user out)";
		}
		return cr_err(err, code, e, "cannot connect to %s: %s%s", path, strerror(e), why);
	}
	*ret = c;
	return CORRAL_OK;
}

/* Parse "MAJ.MIN..." into two numbers; false when not of that shape. */
static bool parse_version(const char *v, long *maj, long *min)
{
	char *end;

	*maj = strtol(v, &end, 10);
	if (end == v || *end != '.')
		return false;
	*min = strtol(end + 1, &end, 10);
	return true;
}

CR_EXPORT enum corral_code corral_connect(const char *path, struct corral **ret_conn,
					  struct corral_error *err)
{
	return corral_connect_flags(path, 0, ret_conn, err);
}

CR_EXPORT enum corral_code corral_connect_flags(const char *path, unsigned flags,
						struct corral **ret_conn, struct corral_error *err)
{
	struct corral *c;
	struct corral_ping p;
	enum corral_code rc = cr_open(path, &c, err);

	if (rc != CORRAL_OK)
		return rc;
	if (flags & CORRAL_CONNECT_NO_PING) {
		*ret_conn = c;
		return CORRAL_OK;
	}
	c->connect_wait_ms = CONNECT_WAIT;
	rc = corral_ping(c, &p, err);
	c->connect_wait_ms = 0;
	if (rc != CORRAL_OK) {
		if (rc == CORRAL_E_DISCONNECTED && err)
			cr_err(err, CORRAL_E_DISCONNECTED, 0,
			       "corrald at %s closed the connection before answering", c->path);
		corral_close(c);
		return rc;
	}
	long lmaj, lmin, dmaj, dmin;
	snprintf(c->version, sizeof(c->version), "%s", p.version);
	corral_ping_clear(&p);
	if (!parse_version(CORRAL_CLIENT_VERSION, &lmaj, &lmin) ||
	    !parse_version(c->version, &dmaj, &dmin) || lmaj != dmaj ||
	    (lmaj == 0 && lmin != dmin)) {
		cr_err(err, CORRAL_E_VERSION, 0,
		       "corrald at %s speaks version %s, libcorral %s: incompatible", c->path,
		       c->version, CORRAL_CLIENT_VERSION);
		corral_close(c);
		return CORRAL_E_VERSION;
	}
	*ret_conn = c;
	return CORRAL_OK;
}

CR_EXPORT const char *corral_socket_path(const struct corral *c)
{
	return c->path;
}

CR_EXPORT int corral_fd(const struct corral *c)
{
	return c->fd;
}

CR_EXPORT const char *corral_daemon_version(const struct corral *c)
{
	return c->version;
}

/* Release a pending entry's reply and fd. */
static void pending_free(struct cr_pending *p)
{
	pthread_cond_destroy(&p->cv);
	cr_flat_clear(&p->flat);
	json_decref(p->reply);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static void unlink_pending(struct corral *c, struct cr_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		c->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		c->tail = p->prev;
	p->prev = p->next = NULL;
}

CR_EXPORT void corral_close(struct corral *c)
{
	if (!c)
		return;
	if (c->dispatching) {
		/* Called from one of its own callbacks: finish after the dispatch. */
		c->close_requested = true;
		return;
	}
	while (c->head) {
		struct cr_pending *p = c->head;
		unlink_pending(c, p);
		pending_free(p);
	}
	conn_free(c);
}

/* ---- Dispatch -------------------------------------------------------------- */

/* p is done (under mu): wake its waiter, if one sleeps on it. */
static void wake(struct cr_pending *p)
{
	if (p->waiting)
		pthread_cond_signal(&p->cv);
}

/*
 * Give up the reader role (under mu) and hand it to one thread still waiting,
 * so that exactly one sleeper wakes per round, not all (no thundering herd).
 */
static void release_reader(struct corral *c)
{
	c->reading = false;
	for (struct cr_pending *q = c->head; q; q = q->next)
		if (q->waiting && !q->done) {
			pthread_cond_signal(&q->cv);
			break;
		}
}

/* Mark c dead with err (under mu): every pending entry completes with it. */
static void mark_dead(struct corral *c, enum corral_code code, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mark_dead(struct corral *c, enum corral_code code, int e, const char *fmt, ...)
{
	va_list ap;

	if (!c->dead) {
		c->dead = true;
		if (c->null_err.code != CORRAL_OK) {
			c->dead_err = c->null_err;
		} else {
			c->dead_err.code = code;
			c->dead_err.sys_errno = e;
			va_start(ap, fmt);
			vsnprintf(c->dead_err.message, sizeof(c->dead_err.message), fmt, ap);
			va_end(ap);
		}
	}
	for (struct cr_pending *p = c->head, *next; p; p = next) {
		next = p->next;
		if (p->abandoned) {
			unlink_pending(c, p);
			pending_free(p);
		} else if (!p->done) {
			p->done = true;
			p->err = c->dead_err;
			wake(p);
		}
	}
	/* Async: the loop reports them (the read event runs the callbacks). */
	if (c->async)
		c->async->wake(c);
}

/* The pending entry with id (under mu), or NULL. */
static struct cr_pending *find_pending(struct corral *c, uint64_t id)
{
	for (struct cr_pending *p = c->head; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

/*
 * A line that broke the protocol (bad: its message) fails the call it answers;
 * one that answers nothing we can tell poisons the connection: a reply is
 * lost, and no wait may hang for it.
 */
static void deliver_bad(struct corral *c, const struct cr_reply *r, const char *bad)
{
	struct cr_pending *p = r->id_valid ? find_pending(c, r->id) : NULL;

	if (!p) {
		mark_dead(c, CORRAL_E_PROTOCOL, 0, "corrald at %s broke the protocol: %s", c->path,
			  bad);
		return;
	}
	if (p->abandoned) {
		unlink_pending(c, p);
		pending_free(p);
	} else if (!p->done) {
		p->done = true;
		cr_err(&p->err, CORRAL_E_PROTOCOL, 0, "corrald's reply broke the protocol: %s",
		       bad);
		wake(p);
	}
}

/* Hand a line that answers us to the line hook, if one is set (under mu). */
static void line_hook(struct corral *c, const char *raw, size_t len)
{
	if (c->line_cb && raw)
		c->line_cb(raw, len, c->line_arg);
}

/* A call's ok reply from the fast path (consumed, with its fd) reaches its entry (under mu). */
static void deliver_flat(struct corral *c, struct cr_flat *f, int fd, const char *raw, size_t rlen)
{
	struct cr_pending *p = find_pending(c, f->id);

	if (!p || p->done)
		goto drop;
	if (p->abandoned) {
		unlink_pending(c, p);
		pending_free(p);
		goto drop;
	}
	line_hook(c, raw, rlen);
	p->done = true;
	wake(p);
	if (!p->is_call) {
		cr_err(&p->err, CORRAL_E_PROTOCOL, 0, "a call's reply came for a command");
		goto drop;
	}
	p->flat = *f;
	p->has_flat = true;
	memset(f, 0, sizeof(*f));
	p->fd = fd;
	fd = -1;
drop:
	if (fd >= 0)
		close(fd);
	cr_flat_clear(f);
}

/*
 * A parsed reply line (consumed, with its fd) reaches its pending entry (under
 * mu); raw is its text for the line hook (NULL when no hook is set).
 */
static void deliver(struct corral *c, struct cr_reply *r, int fd, const char *bad, const char *raw,
		    size_t rlen)
{
	if (bad) {
		deliver_bad(c, r, bad);
		goto drop;
	}
	if (r->id_null) {
		/* A connection-level error (permission_denied, too_large): the daemon closes next.
		 */
		if (!r->ok)
			line_hook(c, raw, rlen);
		if (!r->ok && c->null_err.code == CORRAL_OK) {
			c->null_err.code = r->code;
			snprintf(c->null_err.message, sizeof(c->null_err.message), "%s",
				 r->message);
		}
		goto drop;
	}
	if (r->is_event) {
		/* Ours only on a stream's connection: queue it for corral_stream_next(). */
		if (c->events && r->id_valid && r->id == c->stream_id) {
			line_hook(c, raw, rlen);
			json_array_append(c->events, json_object_get(r->root, "event"));
		}
		goto drop;
	}
	if (!r->id_valid)
		goto drop;
	struct cr_pending *p = find_pending(c, r->id);
	if (!p || p->done)
		goto drop;
	if (p->abandoned) {
		/* Its waiter gave up: the late reply ends it here. */
		unlink_pending(c, p);
		pending_free(p);
		goto drop;
	}
	line_hook(c, raw, rlen);
	p->done = true;
	wake(p);
	if (r->ok) {
		p->reply = r->root;
		r->root = NULL;
		p->fd = fd;
		fd = -1;
	} else {
		p->err.code = r->code;
		p->err.sys_errno = 0;
		snprintf(p->err.message, sizeof(p->err.message), "%s", r->message);
		if (p->want_error_reply) {
			p->reply = r->root;
			r->root = NULL;
		}
	}
drop:
	if (fd >= 0)
		close(fd);
	cr_reply_clear(r);
}

/* Parsed lines handed from the reader to deliver(). */
struct parsed {
	struct cr_reply r;
	int fd;
	char *bad; /* why the line is not a reply (malloc'd), or NULL */
	bool is_flat;
	struct cr_flat flat; /* is_flat: a call's ok reply, parsed by the fast path */
	char *raw;	     /* the line's text, kept for the line hook only (malloc'd) */
	size_t rlen;
};

/*
 * Split every whole line in the buffer and parse it (reader only, no lock);
 * returns how many went into out (grown as needed).  A line that is not a
 * reply is dropped: the daemon never writes one, and nothing else should.
 */
static size_t parse_lines(struct corral *c, struct parsed **out, size_t *cap)
{
	const char *line;
	size_t len, n = 0;
	int fd;

	while (cr_take_line(c, &line, &len, &fd)) {
		struct cr_reply r = {0};
		struct cr_flat flat;
		struct corral_error e;
		char *bad = NULL;
		char *raw = NULL;
		bool is_flat = cr_parse_flat(line, len, &flat) == 0;
		if (!is_flat && cr_parse_reply(line, len, &r, &e) != CORRAL_OK)
			bad = strdup(e.message);
		if (c->line_cb && (raw = malloc(len + 1)) != NULL)
			memcpy(raw, line, len), raw[len] = '\0';
		if (n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			struct parsed *np = realloc(*out, ncap * sizeof(*np));
			if (!np) {
				cr_reply_clear(&r);
				if (is_flat)
					cr_flat_clear(&flat);
				free(bad);
				free(raw);
				if (fd >= 0)
					close(fd);
				continue;
			}
			*out = np;
			*cap = ncap;
		}
		(*out)[n++] = (struct parsed){r, fd, bad, is_flat, flat, raw, len};
	}
	return n;
}

/*
 * One read as the reader (c->reading held by us, mu not held): then, under
 * mu, deliver what came.  timeout_ms as for cr_fill.  Returns with mu held.
 */
static void read_and_deliver(struct corral *c, int timeout_ms)
{
	struct parsed *out = NULL;
	size_t cap = 0;
	int n = cr_fill(c, timeout_ms);
	size_t np = n > 0 ? parse_lines(c, &out, &cap) : 0;

	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < np; i++) {
		if (out[i].is_flat)
			deliver_flat(c, &out[i].flat, out[i].fd, out[i].raw, out[i].rlen);
		else
			deliver(c, &out[i].r, out[i].fd, out[i].bad, out[i].raw, out[i].rlen);
		free(out[i].bad);
		free(out[i].raw);
	}
	free(out);
	if (n == 0)
		mark_dead(c, CORRAL_E_DISCONNECTED, 0, "corrald closed the connection (%s)",
			  c->path);
	else if (n == -EMSGSIZE)
		mark_dead(c, CORRAL_E_PROTOCOL, 0,
			  "a reply line from corrald is longer than %u bytes", CTL_LINE_MAX);
	else if (n < 0 && n != -ETIMEDOUT)
		mark_dead(c, n == -ECONNRESET ? CORRAL_E_DISCONNECTED : CORRAL_E_SYSTEM, -n,
			  "read from corrald: %s", strerror(-n));
}

enum corral_code cr_pump(struct corral *c, int timeout_ms, struct corral_error *err)
{
	enum corral_code rc = CORRAL_OK;

	pthread_mutex_lock(&c->mu);
	if (!c->dead) {
		pthread_mutex_unlock(&c->mu);
		read_and_deliver(c, timeout_ms);
	}
	if (c->dead)
		rc = cr_err_copy(err, &c->dead_err);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/*
 * Wait (blocking mode) until p is done or deadline (0: none) passes; mu held
 * on entry and on return.  False on timeout.
 */
static bool wait_done(struct corral *c, struct cr_pending *p, int64_t deadline)
{
	while (!p->done) {
		if (c->dead) {
			p->done = true;
			p->err = c->dead_err;
			break;
		}
		if (deadline && now_ns() >= deadline) {
			if (!c->reading)
				release_reader(c); /* someone else may need to read now */
			return false;
		}
		if (!c->reading) {
			c->reading = true;
			pthread_mutex_unlock(&c->mu);
			read_and_deliver(c, deadline ? ms_left(deadline) : -1);
			if (p->done)
				release_reader(c);
			else
				c->reading = false; /* we read on: nobody to hand it to */
			continue;
		}
		p->waiting = true;
		if (deadline) {
			/* cv runs on CLOCK_MONOTONIC (cr_submit), like deadline. */
			struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000),
					      .tv_nsec = (long)(deadline % 1000000000)};
			pthread_cond_timedwait(&p->cv, &c->mu, &ts);
		} else {
			pthread_cond_wait(&p->cv, &c->mu);
		}
		p->waiting = false;
	}
	return true;
}

/* ---- Sending --------------------------------------------------------------- */

/*
 * The socket is full (blocking mode): wait until it takes more, reading
 * replies meanwhile when nobody else does.  -errno on a dead connection.
 */
static int wait_writable(struct corral *c)
{
	bool reader = false;

	pthread_mutex_lock(&c->mu);
	if (c->dead) {
		pthread_mutex_unlock(&c->mu);
		return -EPIPE;
	}
	if (!c->reading)
		reader = c->reading = true;
	pthread_mutex_unlock(&c->mu);
	struct pollfd p = {.fd = c->fd, .events = POLLOUT | (reader ? POLLIN : 0)};
	int r = poll(&p, 1, 1000);
	if (reader) {
		if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)))
			read_and_deliver(c, 0);
		else
			pthread_mutex_lock(&c->mu);
		release_reader(c);
		pthread_mutex_unlock(&c->mu);
	}
	return 0;
}

/* Send one whole line (ending in '\n') with fd (>= 0) on its first byte; blocking mode. */
static enum corral_code send_line(struct corral *c, const char *line, size_t len, int fd,
				  struct corral_error *err)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cbuf;
	size_t sent = 0;
	enum corral_code rc = CORRAL_OK;

	/* A line with an fd goes in a sendmsg of its own (corrald ties the fd to
	 * the last line that starts in the read it arrives with). */
	pthread_mutex_lock(&c->send_mu);
	while (sent < len) {
		struct iovec iov = {(char *)line + sent, len - sent};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		if (sent == 0 && fd >= 0) {
			memset(&cbuf, 0, sizeof(cbuf));
			msg.msg_control = cbuf.b;
			msg.msg_controllen = sizeof(cbuf.b);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		}
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_writable(c) == 0)
				continue;
			errno = EPIPE;
		}
		int e = errno;
		/*
		 * The daemon may have closed after writing why (permission_denied with
		 * id null, sent at accept): read what is there so the error says so.
		 */
		pthread_mutex_lock(&c->mu);
		bool reader = !c->reading && !c->dead;
		if (reader)
			c->reading = true;
		pthread_mutex_unlock(&c->mu);
		for (int k = 0; reader && k < 16; k++) {
			read_and_deliver(c, 0);
			bool stop = c->dead;
			pthread_mutex_unlock(&c->mu);
			if (stop)
				break;
		}
		pthread_mutex_lock(&c->mu);
		if (reader) {
			release_reader(c);
		}
		if (sent > 0 || !c->dead)
			/* Half a line on the wire poisons the stream for everyone. */
			mark_dead(c, CORRAL_E_DISCONNECTED, e, "write to corrald at %s: %s",
				  c->path, strerror(e));
		rc = cr_err_copy(err, &c->dead_err);
		pthread_mutex_unlock(&c->mu);
		break;
	}
	pthread_mutex_unlock(&c->send_mu);
	return rc;
}

/*
 * Write the async queue as far as the socket takes it: CR_OUT_DONE, or what
 * the loop must wait for before trying again (async.c arms that).
 */
enum cr_out_wait cr_write_outq(struct corral *c)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cbuf;

	while (c->outq && !c->dead) {
		struct cr_out *o = c->outq;
		struct iovec iov = {o->data + o->off, o->len - o->off};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		if (o->off == 0 && o->fd >= 0) {
			memset(&cbuf, 0, sizeof(cbuf));
			msg.msg_control = cbuf.b;
			msg.msg_controllen = sizeof(cbuf.b);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &o->fd, sizeof(int));
		}
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return CR_OUT_WRITABLE;
		if (n <= 0) {
			int e = n < 0 ? errno : EPIPE;
			mark_dead(c, CORRAL_E_DISCONNECTED, e, "write to corrald at %s: %s",
				  c->path, strerror(e));
			return CR_OUT_DONE;
		}
		if (o->fd >= 0) {
			close(o->fd);
			o->fd = -1;
		}
		o->off += (size_t)n;
		if (o->off == o->len) {
			c->outq = o->next;
			if (!c->outq)
				c->outq_tail = NULL;
			free(o->data);
			free(o);
		}
	}
	return CR_OUT_DONE;
}

/* Run the callbacks of every finished async entry (mu not held, loop thread). */
void cr_run_callbacks(struct corral *c)
{
	c->dispatching++;
	for (;;) {
		struct cr_pending *p = c->head;
		while (p && !p->done)
			p = p->next;
		if (!p)
			break;
		unlink_pending(c, p);
		if (c->close_requested) {
			pending_free(p);
			continue;
		}
		cr_complete(p);
		pending_free(p);
	}
	c->dispatching--;
}

/* The socket turned readable (async, loop thread): read and deliver what came. */
void cr_read_ready(struct corral *c)
{
	for (int i = 0; i < ASYNC_READS && !c->dead; i++) {
		struct parsed *out = NULL;
		size_t cap = 0;
		int n = cr_fill(c, 0);
		size_t np = n > 0 ? parse_lines(c, &out, &cap) : 0;
		for (size_t k = 0; k < np; k++) {
			if (out[k].is_flat)
				deliver_flat(c, &out[k].flat, out[k].fd, out[k].raw, out[k].rlen);
			else
				deliver(c, &out[k].r, out[k].fd, out[k].bad, out[k].raw,
					out[k].rlen);
			free(out[k].bad);
			free(out[k].raw);
		}
		free(out);
		if (n == -ETIMEDOUT)
			break;
		if (n == 0)
			mark_dead(c, CORRAL_E_DISCONNECTED, 0, "corrald closed the connection (%s)",
				  c->path);
		else if (n < 0)
			mark_dead(c,
				  n == -EMSGSIZE     ? CORRAL_E_PROTOCOL
				  : n == -ECONNRESET ? CORRAL_E_DISCONNECTED
						     : CORRAL_E_SYSTEM,
				  -n, "read from corrald: %s",
				  n == -EMSGSIZE ? "reply line too long" : strerror(-n));
	}
}

/* ---- Requests ---------------------------------------------------------------- */

/*
 * Register a request: give it an id, add it to the table, send it.  body is
 * the request object's text without "id" (malloc'd, consumed; NULL: out of
 * memory); fd rides along (closed when close_fd).  Blocking mode unless base;
 * returns the entry (blocking) for waiting.
 */
enum corral_code cr_submit_body(struct corral *c, struct event_base *base, char *body, size_t blen,
				int fd, bool close_fd, struct cr_pending *tmpl,
				struct cr_pending **ret, struct corral_error *err)
{
	enum corral_code rc = CORRAL_OK;
	struct cr_pending *p = NULL;
	char *line = NULL;
	char idbuf[40];

	if (!body) {
		rc = cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	if (base && c->evbase != base) {
		rc =
		    cr_err(err, CORRAL_E_INVALID, 0, "connection is not asynchronous on this base");
		goto out;
	} else if (!base && c->evbase) {
		rc = cr_err(err, CORRAL_E_INVALID, 0,
			    "connection is asynchronous: use the _async functions");
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	if (tmpl)
		*p = *tmpl;
	p->conn = c;
	p->fd = -1;
	p->reply = NULL;
	p->prev = p->next = NULL;
	pthread_cond_init(&p->cv, &c->cvattr);

	pthread_mutex_lock(&c->mu);
	if (c->dead) {
		rc = cr_err_copy(err, &c->dead_err);
		pthread_mutex_unlock(&c->mu);
		goto out;
	}
	p->id = c->next_id++;
	pthread_mutex_unlock(&c->mu);
	/* body is "{...}": its closing brace becomes ,"id":N}\n */
	int il = snprintf(idbuf, sizeof(idbuf), "%s\"id\":%llu}\n", blen > 2 ? "," : "",
			  (unsigned long long)p->id);
	size_t len = blen - 1 + (size_t)il;
	if (len - 1 > CTL_LINE_MAX) {
		rc = cr_err(err, CORRAL_E_TOO_LARGE, 0, "request line of %zu bytes exceeds %u",
			    len - 1, CTL_LINE_MAX);
		goto out;
	}
	line = realloc(body, len + 1);
	if (!line) {
		rc = cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	body = NULL;
	memcpy(line + blen - 1, idbuf, (size_t)il + 1);
	pthread_mutex_lock(&c->mu);
	p->prev = c->tail;
	if (c->tail)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
	pthread_mutex_unlock(&c->mu);

	if (base) {
		struct cr_out *o = malloc(sizeof(*o));
		if (!o) {
			unlink_pending(c, p);
			rc = cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
			goto out;
		}
		*o = (struct cr_out){.data = line, .len = len, .fd = -1};
		line = NULL;
		if (fd >= 0) {
			o->fd = close_fd ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
			close_fd = false;
			fd = -1;
		}
		if (c->outq_tail)
			c->outq_tail->next = o;
		else
			c->outq = o;
		c->outq_tail = o;
		c->async->flush(c);
		p = NULL; /* the table owns it; its callback reports */
	} else {
		rc = send_line(c, line, len, fd, err);
		if (rc != CORRAL_OK) {
			pthread_mutex_lock(&c->mu);
			unlink_pending(c, p);
			pthread_mutex_unlock(&c->mu);
			goto out;
		}
		*ret = p;
		p = NULL;
	}
out:
	if (close_fd && fd >= 0)
		close(fd);
	free(line);
	free(body);
	if (p)
		pending_free(p);
	return rc;
}

enum corral_code cr_submit(struct corral *c, struct event_base *base, json_t *req, int fd,
			   bool close_fd, struct cr_pending *tmpl, struct cr_pending **ret,
			   struct corral_error *err)
{
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;

	json_decref(req);
	return cr_submit_body(c, base, body, body ? strlen(body) : 0, fd, close_fd, tmpl, ret, err);
}

/*
 * Wait for p's reply (blocking mode) and free p: *ret_reply the ok reply,
 * *ret_fd its fd; or the error.  wait_ms > 0 bounds the wait.
 */
enum corral_code cr_wait(struct cr_pending *p, int wait_ms, json_t **ret_reply, int *ret_fd,
			 struct corral_error *err)
{
	return cr_wait_call(p, wait_ms, ret_reply, NULL, ret_fd, err);
}

enum corral_code cr_wait_call(struct cr_pending *p, int wait_ms, json_t **ret_reply,
			      struct cr_flat *ret_flat, int *ret_fd, struct corral_error *err)
{
	struct corral *c = p->conn;
	enum corral_code rc;
	int64_t deadline = 0;

	if (wait_ms <= 0 && c->connect_wait_ms)
		wait_ms = c->connect_wait_ms;
	if (wait_ms > 0)
		deadline = now_ns() + (int64_t)wait_ms * 1000000;
	pthread_mutex_lock(&c->mu);
	if (!wait_done(c, p, deadline)) {
		/* Leave it in the table: its late reply (or the close) frees it. */
		p->abandoned = true;
		pthread_mutex_unlock(&c->mu);
		return cr_err(err, CORRAL_E_CLIENT_TIMEOUT, ETIMEDOUT,
			      "no reply from corrald within %d ms", wait_ms);
	}
	unlink_pending(c, p);
	pthread_mutex_unlock(&c->mu);
	if (p->has_flat && ret_flat) {
		*ret_reply = NULL;
		*ret_flat = p->flat;
		memset(&p->flat, 0, sizeof(p->flat));
		if (ret_fd) {
			*ret_fd = p->fd;
			p->fd = -1;
		}
		rc = CORRAL_OK;
	} else if (p->reply && p->err.code == CORRAL_OK) {
		*ret_reply = p->reply;
		p->reply = NULL;
		if (ret_fd) {
			*ret_fd = p->fd;
			p->fd = -1;
		}
		rc = CORRAL_OK;
	} else if (p->reply) {
		/* An error reply kept whole (corral_command_reply). */
		*ret_reply = p->reply;
		p->reply = NULL;
		rc = cr_err_copy(err, &p->err);
	} else if (p->has_flat) {
		rc = cr_err(err, CORRAL_E_PROTOCOL, 0, "a call's reply came for a command");
	} else {
		rc = cr_err_copy(err, &p->err);
	}
	pending_free(p);
	return rc;
}

/* Milliseconds the library waits for a call: see struct corral_call_opts. */
static int call_wait_ms(const struct corral_call_opts *o)
{
	if (!o)
		return 0;
	if (o->wait_ms > 0)
		return o->wait_ms;
	if (o->timeout_ms > 0)
		return o->timeout_ms + WAIT_SLACK_MS;
	return 0;
}

/* A sealed memfd holding len bytes of data; -1 with err filled. */
static int sealed_memfd(const void *data, size_t len, struct corral_error *err)
{
	int fd = memfd_create("corral-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0) {
		cr_err(err, CORRAL_E_SYSTEM, errno, "memfd_create: %s", strerror(errno));
		return -1;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			cr_err(err, CORRAL_E_SYSTEM, e, "write payload memfd: %s", strerror(e));
			return -1;
		}
		off += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int e = errno;
		close(fd);
		cr_err(err, CORRAL_E_SYSTEM, e, "seal payload memfd: %s", strerror(e));
		return -1;
	}
	return fd;
}

/* A growable text buffer for request lines; oom set once an allocation failed. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Make room for n more bytes. */
static bool sb_room(struct sbuf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap - b->len < n)
		ncap *= 2;
	char *np = realloc(b->p, ncap);
	if (!np) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = ncap;
	return true;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (sb_room(b, n)) {
		memcpy(b->p + b->len, s, n);
		b->len += n;
	}
}

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 when it is not valid UTF-8. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t k;
	unsigned min, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

/* Append s[0..n) as a JSON string; false when s is not valid UTF-8. */
static bool sb_jstring(struct sbuf *b, const void *data, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = data;
	size_t start = b->len;

	if (!sb_room(b, n + 2))
		return true; /* oom is reported by the caller */
	b->p[b->len++] = '"';
	for (size_t i = 0; i < n;) {
		unsigned char ch = s[i];
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0) {
			b->len = start;
			return false;
		}
		if (ch == '"' || ch == '\\') {
			char esc[2] = {'\\', (char)ch};
			sb_put(b, esc, 2);
		} else if (ch < 0x20) {
			char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
			sb_put(b, esc, 6);
		} else {
			sb_put(b, (const char *)s + i, k);
		}
		i += k;
	}
	sb_put(b, "\"", 1);
	return true;
}

/*
 * Build a call request's text (without id) by hand: the commonest request,
 * kept off jansson's allocations.  *ret_fd the fd to send (-1 none),
 * *ret_close whether it is ours to close.
 */
enum corral_code cr_build_call(const char *type, const void *data, size_t len,
			       const struct corral_call_opts *o, char **ret_body, size_t *ret_blen,
			       int *ret_fd, bool *ret_close, struct corral_error *err)
{
	struct sbuf b = {0};
	char num[32];

	*ret_fd = -1;
	*ret_close = false;
	if (!type)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "call without a type");
	if (!data && len)
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "call with NULL data of length %zu",
			      len);
	sb_put(&b, "{\"cmd\":\"", 8);
	sb_put(&b, ctl_commands[CTL_CMD_CALL].name, strlen(ctl_commands[CTL_CMD_CALL].name));
	sb_put(&b, "\",\"type\":", 9);
	if (!sb_jstring(&b, type, strlen(type))) {
		free(b.p);
		return cr_err(err, CORRAL_E_INVALID, EINVAL, "type is not valid UTF-8");
	}
	if (o && o->key) {
		sb_put(&b, ",\"key\":", 7);
		if (!sb_jstring(&b, o->key, strlen(o->key))) {
			free(b.p);
			return cr_err(err, CORRAL_E_INVALID, EINVAL, "key is not valid UTF-8");
		}
	}
	if (o && o->timeout_ms > 0)
		sb_put(&b, num,
		       (size_t)snprintf(num, sizeof(num), ",\"timeout_ms\":%d", o->timeout_ms));
	if (o && o->payload_fd > 0) {
		*ret_fd = o->payload_fd;
	} else if (len > CORRAL_INLINE_MAX || (o && (o->flags & CORRAL_CALL_FD))) {
		*ret_fd = sealed_memfd(data, len, err);
		if (*ret_fd < 0) {
			free(b.p);
			return err ? err->code : CORRAL_E_SYSTEM;
		}
		*ret_close = true;
	} else {
		sb_put(&b, ",\"payload\":", 11);
		if (!sb_jstring(&b, len ? data : "", len)) {
			/* Not UTF-8: the bytes go as base64. */
			char *b64 = b64_encode(data, len);
			b.len -= 11;
			sb_put(&b, ",\"payload_b64\":\"", 16);
			if (b64)
				sb_put(&b, b64, strlen(b64));
			else
				b.oom = true;
			sb_put(&b, "\"", 1);
			free(b64);
		}
	}
	if (*ret_fd >= 0)
		sb_put(&b, ",\"payload_fd\":true", 18);
	sb_put(&b, "}", 2); /* with its NUL */
	if (b.oom) {
		free(b.p);
		if (*ret_close)
			close(*ret_fd);
		*ret_fd = -1;
		return cr_err(err, CORRAL_E_NOMEM, ENOMEM, "out of memory");
	}
	*ret_body = b.p;
	*ret_blen = b.len - 1;
	return CORRAL_OK;
}

CR_EXPORT enum corral_code corral_call_start(struct corral *c, const char *type, const void *data,
					     size_t len, const struct corral_call_opts *o,
					     struct corral_pending **ret_pending,
					     struct corral_error *err)
{
	char *body;
	size_t blen;
	int fd;
	bool close_fd;
	struct cr_pending *p, tmpl = {.is_call = true, .wait_ms = call_wait_ms(o)};
	enum corral_code rc = cr_build_call(type, data, len, o, &body, &blen, &fd, &close_fd, err);

	if (rc != CORRAL_OK)
		return rc;
	rc = cr_submit_body(c, NULL, body, blen, fd, close_fd, &tmpl, &p, err);
	if (rc == CORRAL_OK)
		*ret_pending = (struct corral_pending *)p;
	return rc;
}

CR_EXPORT enum corral_code corral_call_wait(struct corral_pending *pending,
					    struct corral_result **ret_result,
					    struct corral_error *err)
{
	struct cr_pending *p = (struct cr_pending *)pending;
	struct cr_flat f;
	json_t *reply;
	int fd = -1;
	enum corral_code rc = cr_wait_call(p, p->wait_ms, &reply, &f, &fd, err);

	if (rc != CORRAL_OK)
		return rc;
	if (!reply)
		return cr_result_from_flat(&f, fd, ret_result, err);
	rc = cr_result_from(reply, fd, ret_result, err);
	json_decref(reply);
	return rc;
}

CR_EXPORT enum corral_code corral_call(struct corral *c, const char *type, const void *data,
				       size_t len, const struct corral_call_opts *o,
				       struct corral_result **ret_result, struct corral_error *err)
{
	struct corral_pending *p;
	enum corral_code rc = corral_call_start(c, type, data, len, o, &p, err);

	if (rc != CORRAL_OK)
		return rc;
	return corral_call_wait(p, ret_result, err);
}

/* Report a finished async entry to its callback (loop thread). */
void cr_complete(struct cr_pending *p)
{
	struct corral_error e = p->err;

	if (p->abandoned)
		return;
	if (p->is_call) {
		struct corral_result *res = NULL;
		int fd = p->fd;
		p->fd = -1;
		if (p->has_flat) {
			p->has_flat = false;
			if (cr_result_from_flat(&p->flat, fd, &res, &e) != CORRAL_OK)
				res = NULL;
		} else if (p->reply) {
			if (cr_result_from(p->reply, fd, &res, &e) != CORRAL_OK)
				res = NULL;
		} else if (fd >= 0) {
			close(fd);
		}
		if (p->call_cb)
			p->call_cb(res, res ? NULL : &e, p->arg);
		else
			corral_result_free(res);
	} else if (p->command_cb) {
		json_t *r = p->reply;
		p->reply = NULL;
		p->command_cb(r, r ? NULL : &e, p->arg);
	}
}

/* A request object for cmd with a copy of args' members. */
json_t *cr_command_req(const char *cmd, json_t *args)
{
	json_t *req = json_pack("{s:s}", "cmd", cmd);

	if (req && args && json_object_update(req, args) < 0) {
		json_decref(req);
		return NULL;
	}
	if (req && args)
		json_object_set_new(req, "cmd", json_string(cmd));
	return req;
}

/* corral_command, and with want_error the error reply too. */
static enum corral_code command(struct corral *c, const char *cmd, json_t *args, bool want_error,
				json_t **ret_reply, struct corral_error *err)
{
	struct cr_pending *p, tmpl = {.want_error_reply = want_error};
	json_t *reply = NULL;
	int fd = -1;

	if (!cmd || (args && !json_is_object(args)))
		return cr_err(err, CORRAL_E_INVALID, EINVAL,
			      "command without a name or args not an object");
	enum corral_code rc =
	    cr_submit(c, NULL, cr_command_req(cmd, args), -1, false, &tmpl, &p, err);
	if (rc != CORRAL_OK)
		return rc;
	rc = cr_wait(p, 0, &reply, &fd, err);
	if (fd >= 0)
		close(fd);
	if (rc == CORRAL_OK || (want_error && reply))
		*ret_reply = reply;
	return rc;
}

CR_EXPORT enum corral_code corral_command(struct corral *c, const char *cmd, json_t *args,
					  json_t **ret_reply, struct corral_error *err)
{
	return command(c, cmd, args, false, ret_reply, err);
}

CR_EXPORT enum corral_code corral_command_reply(struct corral *c, const char *cmd, json_t *args,
						json_t **ret_reply, struct corral_error *err)
{
	return command(c, cmd, args, true, ret_reply, err);
}

CR_EXPORT enum corral_code corral_command_start(struct corral *c, const char *cmd, json_t *args,
						struct corral_pending **ret_pending,
						struct corral_error *err)
{
	struct cr_pending *p, tmpl = {.want_error_reply = true};

	if (!cmd || (args && !json_is_object(args)))
		return cr_err(err, CORRAL_E_INVALID, EINVAL,
			      "command without a name or args not an object");
	enum corral_code rc =
	    cr_submit(c, NULL, cr_command_req(cmd, args), -1, false, &tmpl, &p, err);
	if (rc == CORRAL_OK)
		*ret_pending = (struct corral_pending *)p;
	return rc;
}

CR_EXPORT enum corral_code corral_command_wait(struct corral_pending *pending, json_t **ret_reply,
					       struct corral_error *err)
{
	struct cr_pending *p = (struct cr_pending *)pending;
	json_t *reply = NULL;
	int fd = -1;
	enum corral_code rc = cr_wait(p, 0, &reply, &fd, err);

	if (fd >= 0)
		close(fd);
	if (reply)
		*ret_reply = reply;
	return rc;
}

CR_EXPORT void corral_set_line_hook(struct corral *c, corral_line_cb cb, void *arg)
{
	pthread_mutex_lock(&c->mu);
	c->line_cb = cb;
	c->line_arg = arg;
	pthread_mutex_unlock(&c->mu);
}
