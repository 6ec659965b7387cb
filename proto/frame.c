/*
 * frame.c - frames over SOCK_SEQPACKET with SCM_RIGHTS fd passing.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "frame.h"

/* Room for fds past FRAME_MAX_FDS so that extras are seen (and closed), not silently cut. */
#define FRAME_RECV_FDS (FRAME_MAX_FDS + 28u)

/* Flags a frame of the given type may carry. */
static uint32_t frame_flag_mask(uint16_t type)
{
	switch (type) {
	case MSG_HELLO:
		return HELLO_F_MASK;
	case MSG_CALL:
		return CALL_F_MASK;
	case MSG_RESULT:
		return RESULT_F_MASK;
	default:
		return 0;
	}
}

int frame_send(int sock, uint16_t type, uint32_t flags, uint64_t call_id, const void *payload,
	       size_t len, const int *fds, unsigned nfds)
{
	struct frame_hdr hdr = {
	    .version = PROTO_VERSION,
	    .type = type,
	    .flags = flags,
	    .len = (uint32_t)len,
	    .nfds = nfds,
	    .call_id = call_id,
	};
	union {
		char buf[CMSG_SPACE(sizeof(int) * FRAME_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov[2] = {
	    {.iov_base = &hdr, .iov_len = sizeof(hdr)},
	    {.iov_base = (void *)payload, .iov_len = len},
	};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};
	ssize_t n;

	if (len > FRAME_MAX_PAYLOAD || nfds > FRAME_MAX_FDS)
		return -EMSGSIZE;
	if ((len > 0 && payload == NULL) || (nfds > 0 && fds == NULL))
		return -EINVAL;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EWOULDBLOCK)
			return -EAGAIN;
		/* A peer that closed with unread frames gives ECONNRESET: still "peer gone". */
		return errno == ECONNRESET ? -EPIPE : -errno;
	}
	if ((size_t)n != sizeof(hdr) + len)
		return -EMSGSIZE; /* cannot happen on SOCK_SEQPACKET */
	return 0;
}

long frame_build(void *buf, size_t cap, uint16_t type, uint32_t flags, uint64_t call_id,
		 const void *payload, size_t len)
{
	struct frame_hdr hdr = {
	    .version = PROTO_VERSION,
	    .type = type,
	    .flags = flags,
	    .len = (uint32_t)len,
	    .call_id = call_id,
	};

	if (len > FRAME_MAX_PAYLOAD || cap < sizeof(hdr) + len)
		return -EMSGSIZE;
	memcpy(buf, &hdr, sizeof(hdr));
	if (len > 0)
		memcpy((uint8_t *)buf + sizeof(hdr), payload, len);
	return (long)(sizeof(hdr) + len);
}

int frame_validate(const struct frame_hdr *hdr, size_t n, unsigned nfds)
{
	if (n < sizeof(*hdr))
		return -EBADMSG;
	if (hdr->version != PROTO_VERSION)
		return -EPROTO;
	if (hdr->type < 1 || hdr->type > MSG_TYPE_MAX)
		return -EBADMSG;
	if (hdr->flags & ~frame_flag_mask(hdr->type))
		return -EBADMSG;
	if (hdr->len > FRAME_MAX_PAYLOAD || hdr->len != n - sizeof(*hdr))
		return -EBADMSG;
	if (nfds > FRAME_MAX_FDS || hdr->nfds != nfds)
		return -EBADMSG;
	return 0;
}

/* Reset f to an empty frame owning no fds. */
static void frame_reset(struct frame *f)
{
	for (unsigned i = 0; i < FRAME_MAX_FDS; i++)
		f->fds[i] = -1;
	f->nfds = 0;
}

int frame_parse(struct frame *f, const void *buf, size_t n)
{
	int ret;

	frame_reset(f);
	memset(&f->hdr, 0, sizeof(f->hdr));
	if (n > sizeof(f->hdr) + FRAME_MAX_PAYLOAD)
		return -EBADMSG;
	if (n >= sizeof(f->hdr)) {
		memcpy(&f->hdr, buf, sizeof(f->hdr));
		memcpy(f->payload, (const uint8_t *)buf + sizeof(f->hdr), n - sizeof(f->hdr));
	}
	ret = frame_validate(&f->hdr, n, 0);
	return ret < 0 ? ret : 1;
}

/* Close n fds. */
static void close_all(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

int frame_recv(int sock, struct frame *f)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FRAME_RECV_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov[2] = {
	    {.iov_base = &f->hdr, .iov_len = sizeof(f->hdr)},
	    {.iov_base = f->payload, .iov_len = sizeof(f->payload)},
	};
	struct msghdr mh = {
	    .msg_iov = iov,
	    .msg_iovlen = 2,
	    .msg_control = cbuf.buf,
	    .msg_controllen = sizeof(cbuf.buf),
	};
	int fds[FRAME_RECV_FDS];
	unsigned nfds = 0;
	bool bad_cmsg = false;
	ssize_t n;
	int ret;

	frame_reset(f);
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;

	/* Collect every fd that arrived before judging anything, so none leaks. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad_cmsg = true;
			continue;
		}
		size_t k =
		    c->cmsg_len > CMSG_LEN(0) ? (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) : 0;

		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < FRAME_RECV_FDS)
				fds[nfds++] = fd;
			else
				close(fd); /* cannot happen: the buffer holds FRAME_RECV_FDS */
		}
	}

	if (n == 0) {
		ret = 0;
		goto drop;
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || bad_cmsg) {
		ret = -EBADMSG;
		goto drop;
	}
	ret = frame_validate(&f->hdr, (size_t)n, nfds);
	if (ret < 0)
		goto drop;
	memcpy(f->fds, fds, nfds * sizeof(int));
	f->nfds = nfds;
	return 1;
drop:
	close_all(fds, nfds);
	return ret;
}

void frame_close_fds(struct frame *f)
{
	for (unsigned i = 0; i < f->nfds && i < FRAME_MAX_FDS; i++) {
		if (f->fds[i] >= 0)
			close(f->fds[i]);
		f->fds[i] = -1;
	}
	f->nfds = 0;
}

int frame_take_fd(struct frame *f, unsigned i)
{
	int fd;

	if (i >= f->nfds || i >= FRAME_MAX_FDS)
		return -1;
	fd = f->fds[i];
	f->fds[i] = -1;
	return fd;
}
