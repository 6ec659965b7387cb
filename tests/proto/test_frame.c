/*
 * test_frame.c - frame codec over a real SOCK_SEQPACKET socketpair.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdcount.h"
#include "frame.h"

static int sv[2];
static int fds_before;

/* Fresh socketpair per test; record the fd count. */
static void setup(void)
{
	fds_before = fd_count();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

/* Close the pair and check no fd leaked. */
static void teardown(void)
{
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(fd_count(), fds_before);
}

/* Send raw bytes plus nfds copies of fd (if >= 0) with one sendmsg. */
static void send_raw(int s, const void *buf, size_t n, int fd, unsigned nfds)
{
	int *fds = calloc(nfds ? nfds : 1, sizeof(int));
	size_t clen = CMSG_SPACE(sizeof(int) * nfds);
	char *cbuf = calloc(1, clen ? clen : 1);
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	for (unsigned i = 0; i < nfds; i++)
		fds[i] = fd;
	if (nfds > 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = clen;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ck_assert_int_eq(sendmsg(s, &mh, MSG_NOSIGNAL), (ssize_t)n);
	free(fds);
	free(cbuf);
}

/* A valid header for type with len payload bytes and nfds fds. */
static struct frame_hdr mkhdr(uint16_t type, uint32_t len, uint32_t nfds)
{
	struct frame_hdr h = {
	    .version = PROTO_VERSION, .type = type, .len = len, .nfds = nfds, .call_id = 7};
	return h;
}

/* Send a header followed by len bytes of payload (filler) as one datagram. */
static void send_hdr(const struct frame_hdr *h, size_t paylen, int fd, unsigned nfds)
{
	size_t n = sizeof(*h) + paylen;
	uint8_t *buf = calloc(1, n);

	memcpy(buf, h, sizeof(*h));
	send_raw(sv[0], buf, n, fd, nfds);
	free(buf);
}

/* Expect frame_recv on sv[1] to fail with err, leaving no fds. */
static void expect_recv(int err)
{
	struct frame f;

	ck_assert_int_eq(frame_recv(sv[1], &f), err);
	ck_assert_uint_eq(f.nfds, 0);
}

START_TEST(roundtrip_all_types)
{
	static uint8_t payload[FRAME_MAX_PAYLOAD];
	const size_t lens[] = {0, 1, 7, 8, 100, FRAME_MAX_PAYLOAD - 1, FRAME_MAX_PAYLOAD};
	struct frame f;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 31 + 7);
	for (uint16_t t = 1; t <= MSG_TYPE_MAX; t++) {
		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			uint32_t flags = t == MSG_CALL ? CALL_F_MASK : t == MSG_RESULT ? 1 : 0;

			ck_assert_int_eq(
			    frame_send(sv[0], t, flags, UINT64_MAX - t, payload, lens[k], NULL, 0),
			    0);
			ck_assert_int_eq(frame_recv(sv[1], &f), 1);
			ck_assert_uint_eq(f.hdr.version, PROTO_VERSION);
			ck_assert_uint_eq(f.hdr.type, t);
			ck_assert_uint_eq(f.hdr.flags, flags);
			ck_assert_uint_eq(f.hdr.len, lens[k]);
			ck_assert_uint_eq(f.hdr.nfds, 0);
			ck_assert(f.hdr.call_id == UINT64_MAX - t);
			ck_assert_uint_eq(f.nfds, 0);
			ck_assert_mem_eq(f.payload, payload, lens[k]);
		}
	}
	ck_assert_int_eq(frame_recv(sv[1], &f), -EAGAIN);
}
END_TEST

START_TEST(send_bounds)
{
	static uint8_t payload[FRAME_MAX_PAYLOAD + 1];
	int fds[FRAME_MAX_FDS + 1] = {0, 0, 0, 0, 0};

	ck_assert_int_eq(frame_send(sv[0], MSG_CALL, 0, 1, payload, FRAME_MAX_PAYLOAD + 1, NULL, 0),
			 -EMSGSIZE);
	ck_assert_int_eq(frame_send(sv[0], MSG_CALL, 0, 1, NULL, 0, fds, FRAME_MAX_FDS + 1),
			 -EMSGSIZE);
	ck_assert_int_eq(frame_send(sv[0], MSG_CALL, 0, 1, NULL, 5, NULL, 0), -EINVAL);
	ck_assert_int_eq(frame_send(sv[0], MSG_CALL, 0, 1, NULL, 0, NULL, 1), -EINVAL);
	ck_assert_int_eq(frame_send(-1, MSG_CALL, 0, 1, NULL, 0, NULL, 0), -EBADF);
}
END_TEST

START_TEST(send_full_and_peer_gone)
{
	int ret;
	int n = 0;

	while ((ret = frame_send(sv[0], MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0)) == 0)
		n++;
	ck_assert_int_eq(ret, -EAGAIN);
	ck_assert_int_gt(n, 0);
	close(sv[1]);
	sv[1] = open("/dev/null", O_RDONLY | O_CLOEXEC); /* teardown closes it */
	ck_assert_int_eq(frame_send(sv[0], MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0), -EPIPE);
}
END_TEST

START_TEST(peer_closed)
{
	struct frame f;

	ck_assert_int_eq(frame_send(sv[0], MSG_STOP, 0, 3, NULL, 0, NULL, 0), 0);
	close(sv[0]);
	sv[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(frame_recv(sv[1], &f), 1);
	ck_assert_uint_eq(f.hdr.type, MSG_STOP);
	ck_assert_int_eq(frame_recv(sv[1], &f), 0);
	ck_assert_int_eq(frame_recv(sv[1], &f), 0);
}
END_TEST

START_TEST(empty_datagram_is_eof)
{
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	send_raw(sv[0], "", 0, p[0], 1);
	expect_recv(0);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(fd_one)
{
	struct frame f;
	int p[2];
	char c = 0;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(frame_send(sv[0], MSG_CALL, CALL_F_PAYLOAD_FD, 9, "x", 1, &p[0], 1), 0);
	close(p[0]);
	ck_assert_int_eq(frame_recv(sv[1], &f), 1);
	ck_assert_uint_eq(f.nfds, 1);
	ck_assert_uint_eq(f.hdr.nfds, 1);
	ck_assert(fcntl(f.fds[0], F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(write(p[1], "z", 1), 1);
	ck_assert_int_eq(read(f.fds[0], &c, 1), 1);
	ck_assert_int_eq(c, 'z');

	int fd = frame_take_fd(&f, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(frame_take_fd(&f, 0), -1);
	ck_assert_int_eq(frame_take_fd(&f, 1), -1);
	ck_assert_int_eq(frame_take_fd(&f, 1000), -1);
	frame_close_fds(&f); /* must not close the taken fd */
	ck_assert_int_eq(fcntl(fd, F_GETFD) >= 0, 1);
	close(fd);
	close(p[1]);
}
END_TEST

START_TEST(fd_max)
{
	struct frame f;
	int fds[FRAME_MAX_FDS];

	for (unsigned i = 0; i < FRAME_MAX_FDS; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(frame_send(sv[0], MSG_RESULT, RESULT_F_FD, 1, NULL, 0, fds, FRAME_MAX_FDS),
			 0);
	for (unsigned i = 0; i < FRAME_MAX_FDS; i++)
		close(fds[i]);
	ck_assert_int_eq(frame_recv(sv[1], &f), 1);
	ck_assert_uint_eq(f.nfds, FRAME_MAX_FDS);
	for (unsigned i = 0; i < FRAME_MAX_FDS; i++)
		ck_assert(fcntl(f.fds[i], F_GETFD) & FD_CLOEXEC);
	frame_close_fds(&f);
	ck_assert_uint_eq(f.nfds, 0);
	frame_close_fds(&f); /* idempotent */
}
END_TEST

START_TEST(fd_too_many)
{
	struct frame_hdr h = mkhdr(MSG_CALL, 0, FRAME_MAX_FDS + 1);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	send_hdr(&h, 0, fd, FRAME_MAX_FDS + 1);
	expect_recv(-EBADMSG);
	/* Far more than the receive buffer holds: MSG_CTRUNC. */
	h.nfds = 200;
	send_hdr(&h, 0, fd, 200);
	expect_recv(-EBADMSG);
	close(fd);
}
END_TEST

START_TEST(fd_count_mismatch)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct frame_hdr h = mkhdr(MSG_CALL, 0, 2);

	send_hdr(&h, 0, fd, 1); /* says 2, carries 1 */
	expect_recv(-EBADMSG);
	h.nfds = 0;
	send_hdr(&h, 0, fd, 3); /* says 0, carries 3 */
	expect_recv(-EBADMSG);
	h.nfds = 1;
	send_hdr(&h, 0, -1, 0); /* says 1, carries none */
	expect_recv(-EBADMSG);
	close(fd);
}
END_TEST

START_TEST(unexpected_cmsg)
{
	int on = 1;
	struct frame f;

	ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)), 0);
	ck_assert_int_eq(frame_send(sv[0], MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(frame_recv(sv[1], &f), -EBADMSG);
}
END_TEST

START_TEST(bad_version)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct frame_hdr h = mkhdr(MSG_HELLO, 0, 1);

	h.version = PROTO_VERSION + 1;
	send_hdr(&h, 0, fd, 1);
	expect_recv(-EPROTO);
	h.version = 0;
	send_hdr(&h, 0, -1, 0);
	h.nfds = 0;
	expect_recv(-EPROTO);
	h.version = UINT16_MAX;
	send_hdr(&h, 0, -1, 0);
	expect_recv(-EPROTO);
	close(fd);
}
END_TEST

START_TEST(bad_type)
{
	const uint16_t types[] = {0, MSG_TYPE_MAX + 1, 100, UINT16_MAX};
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct frame_hdr h = mkhdr(types[i], 0, 1);

		send_hdr(&h, 0, fd, 1);
		expect_recv(-EBADMSG);
	}
	close(fd);
}
END_TEST

START_TEST(bad_flags)
{
	struct frame_hdr h = mkhdr(MSG_CALL, 0, 0);

	h.flags = CALL_F_MASK + 1;
	send_hdr(&h, 0, -1, 0);
	expect_recv(-EBADMSG);
	h.type = MSG_RESULT;
	h.flags = RESULT_F_MASK << 1;
	send_hdr(&h, 0, -1, 0);
	expect_recv(-EBADMSG);
	for (uint16_t t = 1; t <= MSG_TYPE_MAX; t++) {
		h.type = t;
		h.flags = 0x80000000u;
		send_hdr(&h, 0, -1, 0);
		expect_recv(-EBADMSG);
	}
	ck_assert_int_eq(frame_send(sv[0], MSG_HELLO, HELLO_F_MASK << 1, 0, NULL, 0, NULL, 0), 0);
	expect_recv(-EBADMSG);
	/* HELLO_F_RING_CALLS is the one flag a hello may carry. */
	struct frame f;
	ck_assert_int_eq(frame_send(sv[0], MSG_HELLO, HELLO_F_RING_CALLS, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(frame_recv(sv[1], &f), 1);
	ck_assert_uint_eq(f.hdr.flags, HELLO_F_RING_CALLS);
}
END_TEST

START_TEST(len_mismatch)
{
	const uint32_t lens[] = {1, 10, FRAME_MAX_PAYLOAD, FRAME_MAX_PAYLOAD + 1, UINT32_MAX};
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct frame_hdr h = mkhdr(MSG_CALL, lens[i], 1);

		send_hdr(&h, 0, fd, 1); /* claims more than it carries */
		expect_recv(-EBADMSG);
		send_hdr(&h, lens[i] - 1 < 100 ? lens[i] - 1 : 100, fd, 1);
		expect_recv(-EBADMSG);
	}
	struct frame_hdr h = mkhdr(MSG_CALL, 4, 1);

	send_hdr(&h, 5, fd, 1); /* claims less */
	expect_recv(-EBADMSG);
	h.len = 0;
	send_hdr(&h, 1, fd, 1);
	expect_recv(-EBADMSG);
	close(fd);
}
END_TEST

START_TEST(short_and_oversized)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct frame_hdr h = mkhdr(MSG_DOORBELL, 0, 0);
	uint8_t raw[sizeof(h)];

	memcpy(raw, &h, sizeof(h));
	for (size_t n = 1; n < sizeof(h); n++) {
		send_raw(sv[0], raw, n, fd, 1);
		expect_recv(-EBADMSG);
	}
	/* Payload past the maximum: MSG_TRUNC, whatever the header says. */
	h = mkhdr(MSG_CALL, FRAME_MAX_PAYLOAD + 1, 1);
	send_hdr(&h, FRAME_MAX_PAYLOAD + 1, fd, 1);
	expect_recv(-EBADMSG);
	h.len = FRAME_MAX_PAYLOAD;
	send_hdr(&h, FRAME_MAX_PAYLOAD + 64, fd, 1);
	expect_recv(-EBADMSG);
	/* The socket keeps working after every error. */
	ck_assert_int_eq(frame_send(sv[0], MSG_DOORBELL, 0, 0, NULL, 0, NULL, 0), 0);
	struct frame f;

	ck_assert_int_eq(frame_recv(sv[1], &f), 1);
	close(fd);
}
END_TEST

START_TEST(parse_fields)
{
	struct frame f;
	uint8_t buf[sizeof(struct frame_hdr) + FRAME_MAX_PAYLOAD + 1] = {0};
	struct frame_hdr h = mkhdr(MSG_RESULT, 3, 0);

	memcpy(buf, &h, sizeof(h));
	ck_assert_int_eq(frame_parse(&f, buf, sizeof(h) + 3), 1);
	ck_assert_int_eq(frame_parse(&f, buf, sizeof(h) + 2), -EBADMSG);
	ck_assert_int_eq(frame_parse(&f, buf, sizeof(h) - 1), -EBADMSG);
	ck_assert_int_eq(frame_parse(&f, buf, 0), -EBADMSG);
	ck_assert_int_eq(frame_parse(&f, buf, sizeof(buf)), -EBADMSG);
	h.nfds = 1;
	memcpy(buf, &h, sizeof(h));
	ck_assert_int_eq(frame_parse(&f, buf, sizeof(h) + 3), -EBADMSG);
	ck_assert_int_eq(frame_validate(&h, sizeof(h) + 3, 1), 0);
	ck_assert_int_eq(frame_validate(&h, sizeof(h) + 3, FRAME_MAX_FDS + 1), -EBADMSG);
	h.nfds = FRAME_MAX_FDS;
	ck_assert_int_eq(frame_validate(&h, sizeof(h) + 3, FRAME_MAX_FDS), 0);
	h.len = FRAME_MAX_PAYLOAD;
	ck_assert_int_eq(frame_validate(&h, sizeof(h) + FRAME_MAX_PAYLOAD, FRAME_MAX_FDS), 0);
	h.len = FRAME_MAX_PAYLOAD + 1;
	ck_assert_int_eq(frame_validate(&h, sizeof(h) + FRAME_MAX_PAYLOAD + 1, FRAME_MAX_FDS),
			 -EBADMSG);
	h.len = 0;
	h.version = 2;
	ck_assert_int_eq(frame_validate(&h, sizeof(h), FRAME_MAX_FDS), -EPROTO);
}
END_TEST

START_TEST(fds_closed_on_every_error)
{
	/* Every kind of bad frame, each with fds; teardown checks the count. */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	for (int round = 0; round < 50; round++) {
		struct frame_hdr h = mkhdr(MSG_CALL, 0, FRAME_MAX_FDS);

		h.type = (uint16_t)(round % 7);
		h.version = (uint16_t)(round % 3 == 0 ? 9 : PROTO_VERSION);
		send_hdr(&h, (size_t)(round % 4), fd, FRAME_MAX_FDS);
		struct frame f;
		int ret = frame_recv(sv[1], &f);

		if (ret == 1)
			frame_close_fds(&f);
		else
			ck_assert_uint_eq(f.nfds, 0);
	}
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("frame");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, roundtrip_all_types);
	tcase_add_test(tc, send_bounds);
	tcase_add_test(tc, send_full_and_peer_gone);
	tcase_add_test(tc, peer_closed);
	tcase_add_test(tc, empty_datagram_is_eof);
	tcase_add_test(tc, fd_one);
	tcase_add_test(tc, fd_max);
	tcase_add_test(tc, fd_too_many);
	tcase_add_test(tc, fd_count_mismatch);
	tcase_add_test(tc, unexpected_cmsg);
	tcase_add_test(tc, bad_version);
	tcase_add_test(tc, bad_type);
	tcase_add_test(tc, bad_flags);
	tcase_add_test(tc, len_mismatch);
	tcase_add_test(tc, short_and_oversized);
	tcase_add_test(tc, parse_fields);
	tcase_add_test(tc, fds_closed_on_every_error);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
