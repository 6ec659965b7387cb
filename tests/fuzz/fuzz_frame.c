/*
 * fuzz_frame.c - frame validation on arbitrary datagrams: through frame_parse,
 * and through a real SOCK_SEQPACKET socketpair with fds riding along, checking
 * that no fd ever leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sv[2] = {-1, -1};
static int devnull = -1;

/* The lowest free fd number: it grows if anything leaks. */
static int probe_fd(void)
{
	int fd = dup(devnull);

	close(fd);
	return fd;
}

/* Send data as one datagram with nfds copies of /dev/null. */
static int send_raw(const uint8_t *data, size_t size, unsigned nfds)
{
	int fds[16];
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 0) {
		for (unsigned i = 0; i < nfds; i++)
			fds[i] = devnull;
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(sv[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)size ? 0 : -1;
}

/* Decode a valid frame's payload the way the daemon and worker would. */
static void decode(const struct frame *f)
{
	struct msg_hello h;
	struct msg_call c;
	struct msg_result r;

	switch (f->hdr.type) {
	case MSG_HELLO:
		(void)msg_hello_decode(f->payload, f->hdr.len, &h);
		break;
	case MSG_CALL:
		(void)msg_call_decode(f->payload, f->hdr.len, &c);
		break;
	case MSG_RESULT:
		(void)msg_result_decode(f->payload, f->hdr.len, &r);
		break;
	default:
		break;
	}
}

/* First byte: bit 0 socket path, bits 1..4 fd count (0..15); the rest is the datagram. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame f;
	int ret;

	if (sv[0] < 0) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			abort();
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (size == 0)
		return 0;
	ret = frame_parse(&f, data + 1, size - 1);
	if (ret == 1) {
		if (f.hdr.len > FRAME_MAX_PAYLOAD || f.nfds != 0)
			__builtin_trap();
		decode(&f);
	}
	if (!(data[0] & 1) || size - 1 == 0)
		return 0;

	int before = probe_fd();
	unsigned nfds = (data[0] >> 1) & 15;

	if (send_raw(data + 1, size - 1, nfds) < 0)
		return 0;
	ret = frame_recv(sv[1], &f);
	if (ret == 1) {
		if (f.nfds != f.hdr.nfds || f.nfds > FRAME_MAX_FDS || f.hdr.len != size - 1 - 24)
			__builtin_trap();
		for (unsigned i = 0; i < f.nfds; i++)
			if (!(fcntl(f.fds[i], F_GETFD) & FD_CLOEXEC))
				__builtin_trap();
		decode(&f);
		frame_close_fds(&f);
	} else if (f.nfds != 0) {
		__builtin_trap();
	}
	if (frame_recv(sv[1], &f) != -EAGAIN) /* exactly one datagram was consumed */
		__builtin_trap();
	if (probe_fd() != before)
		__builtin_trap(); /* an fd leaked */
	return 0;
}
