/*
 * conn.c - the line and fd transport between corralctl and corrald.
 *
 * Received bytes go into one buffer that grows, as lines need it, up to the
 * longest allowed line plus its newline.  File descriptors that arrive with a recvmsg() are tied
 * to a line through an "anchor", a byte offset in the stream:
 *
 *   The kernel hands out a message's fds with the first recvmsg() that reads
 *   any of its bytes, and stops that read at the end of the message, but it
 *   may glue earlier fd-less messages in front of it.  corrald sends an fd
 *   with the first sendmsg() of its reply line, so the fd belongs to the last
 *   line that starts inside the chunk just read; when no line starts inside
 *   it, to the line that holds the chunk's first byte.
 *
 * A line takes every pending fd whose anchor lies at or before its newline.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"

#define CONN_BUF_SIZE	 (CONN_LINE_MAX + 1u)
#define CONN_BUF_INITIAL (16u * 1024u)
#define CONN_RECV_FDS	 8u
#define CONN_PENDING_MAX 16u

/* A received fd not yet handed to a line, and the stream offset it belongs at. */
struct conn_fd {
	uint64_t anchor;
	int fd;
};

/* One connection: the socket, the receive buffer and fds awaiting their line. */
struct conn {
	int fd;
	char *buf;
	size_t cap;    /* bytes allocated at buf, at most CONN_BUF_SIZE */
	size_t start;  /* first byte not yet returned as a line */
	size_t scan;   /* bytes in [start, scan) hold no newline */
	size_t end;    /* end of received bytes */
	uint64_t base; /* stream offset of buf[0] */
	bool eof;
	struct conn_fd pending[CONN_PENDING_MAX];
	size_t npending;
};

/* Close n fds of an array. */
static void conn_close_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Connect to the UNIX stream socket at path; -errno on failure. */
int conn_open(const char *path, struct conn **ret_conn)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	struct conn *c;
	int r;

	if (n == 0)
		return -ENOENT;
	if (n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, n);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cap = CONN_BUF_INITIAL;
	c->buf = malloc(c->cap);
	if (!c->buf) {
		free(c);
		return -ENOMEM;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		goto fail;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto fail;
	}
	*ret_conn = c;
	return 0;
fail:
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
	return r;
}

/* Send line (no newline in it) plus a newline, with fd (if >= 0) as SCM_RIGHTS. */
int conn_send(struct conn *c, const char *line, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cbuf;
	size_t total = len + 1, sent = 0;

	if (len > CONN_LINE_MAX)
		return -EMSGSIZE;
	while (sent < total) {
		struct iovec iov[2];
		struct msghdr msg = {.msg_iov = iov};
		ssize_t n;

		if (sent < len) {
			iov[0] = (struct iovec){(char *)line + sent, len - sent};
			iov[1] = (struct iovec){(char *)"\n", 1};
			msg.msg_iovlen = 2;
		} else {
			iov[0] = (struct iovec){(char *)"\n", 1};
			msg.msg_iovlen = 1;
		}
		if (fd >= 0 && sent == 0) {
			struct cmsghdr *cm;

			memset(&cbuf, 0, sizeof(cbuf));
			msg.msg_control = cbuf.b;
			msg.msg_controllen = sizeof(cbuf.b);
			cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		}
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		sent += (size_t)n;
	}
	return 0;
}

/* Queue fds received with the chunk buf[cs, cs + n) at that chunk's anchor. */
static void conn_queue_fds(struct conn *c, size_t cs, size_t n, const int *fds, size_t nfds)
{
	const char *nl = n > 1 ? memrchr(c->buf + cs, '\n', n - 1) : NULL;
	uint64_t anchor = c->base + (nl ? (size_t)(nl - c->buf) + 1 : cs);

	for (size_t i = 0; i < nfds; i++) {
		if (c->npending == CONN_PENDING_MAX) {
			close(fds[i]);
			continue;
		}
		c->pending[c->npending++] = (struct conn_fd){anchor, fds[i]};
	}
}

/* Read once into the buffer's free tail; 1 on data, 0 on EOF, -errno. */
static int conn_fill(struct conn *c)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * CONN_RECV_FDS)];
	} cbuf;
	struct iovec iov = {c->buf + c->end, c->cap - c->end};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	do {
		msg.msg_control = cbuf.b;
		msg.msg_controllen = sizeof(cbuf.b);
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int fds[CONN_RECV_FDS];
		size_t nfds;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds > CONN_RECV_FDS)
			nfds = CONN_RECV_FDS;
		memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
		if (n == 0)
			conn_close_fds(fds, nfds);
		else
			conn_queue_fds(c, c->end, (size_t)n, fds, nfds);
	}
	c->end += (size_t)n;
	return n > 0;
}

/* Make room after the unconsumed bytes by moving them to the buffer's start. */
static void conn_compact(struct conn *c)
{
	if (c->start == 0)
		return;
	memmove(c->buf, c->buf + c->start, c->end - c->start);
	c->base += c->start;
	c->scan -= c->start;
	c->end -= c->start;
	c->start = 0;
}

/* Double the buffer, up to CONN_BUF_SIZE; 0 or -ENOMEM. */
static int conn_grow(struct conn *c)
{
	size_t cap = c->cap * 2 < CONN_BUF_SIZE ? c->cap * 2 : CONN_BUF_SIZE;
	char *buf = realloc(c->buf, cap);

	if (!buf)
		return -ENOMEM;
	c->buf = buf;
	c->cap = cap;
	return 0;
}

/* Hand the pending fds anchored at or before stream offset upto to line. */
static void conn_claim_fds(struct conn *c, uint64_t upto, struct conn_line *line)
{
	size_t kept = 0;

	for (size_t i = 0; i < c->npending; i++) {
		if (c->pending[i].anchor > upto)
			c->pending[kept++] = c->pending[i];
		else if (line->nfds < CONN_LINE_FDS)
			line->fds[line->nfds++] = c->pending[i].fd;
		else
			close(c->pending[i].fd);
	}
	c->npending = kept;
}

/*
 * Receive the next line: 1 and *ret_line (text valid until the next call on c,
 * fds owned by the caller), 0 when corrald closed the connection, -EMSGSIZE for
 * a line longer than CONN_LINE_MAX, else -errno.
 */
int conn_recv_line(struct conn *c, struct conn_line *ret_line)
{
	for (;;) {
		char *nl = memchr(c->buf + c->scan, '\n', c->end - c->scan);
		int r;

		if (nl) {
			size_t le = (size_t)(nl - c->buf);

			ret_line->text = c->buf + c->start;
			ret_line->len = le - c->start;
			ret_line->nfds = 0;
			conn_claim_fds(c, c->base + le, ret_line);
			c->start = c->scan = le + 1;
			return 1;
		}
		c->scan = c->end;
		if (c->eof)
			return 0;
		if (c->end - c->start >= CONN_BUF_SIZE)
			return -EMSGSIZE;
		if (c->end == c->cap || c->start == c->end)
			conn_compact(c);
		if (c->end == c->cap && conn_grow(c) < 0)
			return -ENOMEM;
		r = conn_fill(c);
		if (r < 0)
			return r;
		if (r == 0)
			c->eof = true;
	}
}

/* Take the line's first fd out of it; -1 when it has none. */
int conn_line_take_fd(struct conn_line *line)
{
	int fd;

	if (line->nfds == 0)
		return -1;
	fd = line->fds[0];
	memmove(line->fds, line->fds + 1, (line->nfds - 1) * sizeof(int));
	line->nfds--;
	return fd;
}

/* Close every fd still held by line. */
void conn_line_close_fds(struct conn_line *line)
{
	conn_close_fds(line->fds, line->nfds);
	line->nfds = 0;
}

/* Close the connection and every fd it still holds; accepts NULL. */
void conn_close(struct conn *c)
{
	if (!c)
		return;
	close(c->fd);
	for (size_t i = 0; i < c->npending; i++)
		close(c->pending[i].fd);
	free(c->buf);
	free(c);
}

/* The connection's socket, for poll() and getsockopt(); still owned by c. */
int conn_fileno(const struct conn *c)
{
	return c->fd;
}
