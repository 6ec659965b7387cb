/*
 * test_msg.c - typed writer/reader and the message codecs.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

/* Build "u32 n, bytes[len]" by hand. */
static size_t raw_str(uint8_t *buf, uint32_t n, const void *bytes, size_t len)
{
	memcpy(buf, &n, 4);
	memcpy(buf + 4, bytes, len);
	return 4 + len;
}

START_TEST(writer_overflow_sticks)
{
	uint8_t buf[10];
	struct msg_writer w;

	msg_writer_init(&w, buf, sizeof(buf));
	msg_put_u64(&w, 1);
	ck_assert_int_eq(msg_writer_finish(&w), 8);
	msg_put_u32(&w, 2); /* 12 > 10 */
	ck_assert_int_eq(w.err, -EMSGSIZE);
	ck_assert_int_eq(msg_writer_finish(&w), -EMSGSIZE);
	msg_writer_init(&w, buf, sizeof(buf));
	msg_put_u32(&w, 1);
	msg_put_u64(&w, 2); /* fails: 12 */
	msg_put_u32(&w, 3); /* would fit, but the error sticks */
	ck_assert_int_eq(msg_writer_finish(&w), -EMSGSIZE);
	ck_assert_uint_eq(w.len, 4);
	msg_writer_init(&w, NULL, SIZE_MAX);
	msg_put_u32(&w, 1);
	ck_assert_int_eq(msg_writer_finish(&w), -EMSGSIZE);
	msg_writer_init(&w, buf, 0);
	ck_assert_int_eq(msg_writer_finish(&w), 0);
	msg_put_str(&w, "");
	ck_assert_int_eq(msg_writer_finish(&w), -EMSGSIZE);
}
END_TEST

START_TEST(str_roundtrip)
{
	uint8_t buf[64];
	struct msg_writer w;
	struct msg_reader r;

	msg_writer_init(&w, buf, sizeof(buf));
	msg_put_str(&w, "hello");
	msg_put_str(&w, "");
	msg_put_str(&w, NULL);
	msg_put_u32(&w, 0xdeadbeef);
	msg_put_u64(&w, UINT64_MAX);
	ck_assert_int_eq(msg_writer_finish(&w), 10 + 5 + 5 + 4 + 8);
	msg_reader_init(&r, buf, (size_t)msg_writer_finish(&w));
	ck_assert_str_eq(msg_get_str(&r, 5), "hello");
	ck_assert_str_eq(msg_get_str(&r, 0), "");
	ck_assert_str_eq(msg_get_str(&r, 0), "");
	ck_assert_uint_eq(msg_get_u32(&r), 0xdeadbeef);
	ck_assert(msg_get_u64(&r) == UINT64_MAX);
	ck_assert_int_eq(msg_reader_end(&r), 0);
	/* Exactly-sized buffer for a string fits; one byte less does not. */
	msg_writer_init(&w, buf, 10);
	msg_put_str(&w, "hello");
	ck_assert_int_eq(msg_writer_finish(&w), 10);
	msg_writer_init(&w, buf, 9);
	msg_put_str(&w, "hello");
	ck_assert_int_eq(msg_writer_finish(&w), -EMSGSIZE);
}
END_TEST

START_TEST(str_maxlen)
{
	uint8_t buf[64];
	struct msg_reader r;
	size_t n = raw_str(buf, 5, "hello", 6);

	msg_reader_init(&r, buf, n);
	ck_assert_ptr_null(msg_get_str(&r, 4));
	ck_assert_int_eq(r.err, -EBADMSG);
	msg_reader_init(&r, buf, n);
	ck_assert_ptr_nonnull(msg_get_str(&r, SIZE_MAX));
	ck_assert_int_eq(msg_reader_end(&r), 0);
}
END_TEST

START_TEST(str_huge_lengths)
{
	const uint32_t lens[] = {UINT32_MAX, UINT32_MAX - 1, 0x80000000u, 1u << 20, 7};
	uint8_t buf[16];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct msg_reader r;
		size_t n = raw_str(buf, lens[i], "abcdef\0", 7);

		msg_reader_init(&r, buf, n);
		ck_assert_ptr_null(msg_get_str(&r, SIZE_MAX));
		ck_assert_int_eq(msg_reader_end(&r), -EBADMSG);
	}
	/* A reader claiming a huge buffer over NULL is empty. */
	struct msg_reader r;

	msg_reader_init(&r, NULL, SIZE_MAX);
	ck_assert_uint_eq(msg_get_u32(&r), 0);
	ck_assert_int_eq(msg_reader_end(&r), -EBADMSG);
}
END_TEST

START_TEST(str_truncated_and_unterminated)
{
	uint8_t buf[32];
	struct msg_reader r;
	size_t n;

	/* Every truncation of a valid "u32 5 hello NUL". */
	n = raw_str(buf, 5, "hello", 6);
	for (size_t k = 0; k < n; k++) {
		msg_reader_init(&r, buf, k);
		ck_assert_ptr_null(msg_get_str(&r, 100));
		ck_assert_int_eq(msg_reader_end(&r), -EBADMSG);
	}
	/* Missing NUL: the byte after the string is not 0. */
	n = raw_str(buf, 5, "hellox", 6);
	msg_reader_init(&r, buf, n);
	ck_assert_ptr_null(msg_get_str(&r, 100));
	/* Embedded NUL. */
	n = raw_str(buf, 5, "he\0lo", 6);
	msg_reader_init(&r, buf, n);
	ck_assert_ptr_null(msg_get_str(&r, 100));
	/* Length field itself truncated. */
	msg_reader_init(&r, buf, 3);
	ck_assert_ptr_null(msg_get_str(&r, 100));
	/* The error sticks: later reads fail even with bytes left. */
	n = raw_str(buf, 5, "he\0lo", 6);
	msg_reader_init(&r, buf, n);
	ck_assert_ptr_null(msg_get_str(&r, 100));
	ck_assert_uint_eq(msg_get_u32(&r), 0);
	ck_assert_int_eq(r.err, -EBADMSG);
}
END_TEST

START_TEST(trailing_bytes)
{
	uint8_t buf[16] = {0};
	struct msg_reader r;

	msg_reader_init(&r, buf, 5);
	msg_get_u32(&r);
	ck_assert_int_eq(r.err, 0);
	ck_assert_int_eq(msg_reader_end(&r), -EBADMSG);
	msg_reader_init(&r, buf, 4);
	msg_get_u32(&r);
	ck_assert_int_eq(msg_reader_end(&r), 0);
	msg_reader_init(&r, buf, 7);
	ck_assert(msg_get_u64(&r) == 0);
	ck_assert_int_eq(msg_reader_end(&r), -EBADMSG);
	msg_reader_init(&r, buf, 0);
	ck_assert_int_eq(msg_reader_end(&r), 0);
}
END_TEST

START_TEST(hello_codec)
{
	uint8_t buf[64];
	struct msg_hello in = {.version = PROTO_VERSION, .pid = 4242}, out;
	long n = msg_hello_encode(buf, sizeof(buf), &in);

	ck_assert_int_eq(n, 8);
	ck_assert_int_eq(msg_hello_decode(buf, (size_t)n, &out), 0);
	ck_assert_uint_eq(out.version, in.version);
	ck_assert_uint_eq(out.pid, in.pid);
	for (size_t k = 0; k < (size_t)n; k++)
		ck_assert_int_eq(msg_hello_decode(buf, k, &out), -EBADMSG);
	ck_assert_int_eq(msg_hello_decode(buf, (size_t)n + 1, &out), -EBADMSG);
	ck_assert_int_eq(msg_hello_encode(buf, 7, &in), -EMSGSIZE);
}
END_TEST

START_TEST(call_codec)
{
	uint8_t buf[64];
	struct msg_call in = {.len = UINT64_MAX}, out = {0};
	long n = msg_call_encode(buf, sizeof(buf), &in);

	ck_assert_int_eq(n, 8);
	ck_assert_int_eq(msg_call_decode(buf, (size_t)n, &out), 0);
	ck_assert(out.len == UINT64_MAX);
	for (size_t k = 0; k < (size_t)n; k++)
		ck_assert_int_eq(msg_call_decode(buf, k, &out), -EBADMSG);
	ck_assert_int_eq(msg_call_decode(buf, (size_t)n + 1, &out), -EBADMSG);
	ck_assert_int_eq(msg_call_encode(buf, 7, &in), -EMSGSIZE);
}
END_TEST

START_TEST(result_codec)
{
	uint8_t buf[FRAME_MAX_PAYLOAD];
	struct msg_result in = {.status = RESULT_ERROR, .len = 12345, .message = "boom"}, out;
	long n = msg_result_encode(buf, sizeof(buf), &in);

	ck_assert_int_eq(n, 4 + 8 + 4 + 5);
	ck_assert_int_eq(msg_result_decode(buf, (size_t)n, &out), 0);
	ck_assert_uint_eq(out.status, RESULT_ERROR);
	ck_assert(out.len == 12345);
	ck_assert_str_eq(out.message, "boom");
	ck_assert_ptr_eq(out.message, (const char *)buf + 16);
	for (size_t k = 0; k < (size_t)n; k++)
		ck_assert_int_eq(msg_result_decode(buf, k, &out), -EBADMSG);
	ck_assert_int_eq(msg_result_decode(buf, (size_t)n + 1, &out), -EBADMSG);

	/* NULL message encodes as empty. */
	in.message = NULL;
	n = msg_result_encode(buf, sizeof(buf), &in);
	ck_assert_int_eq(msg_result_decode(buf, (size_t)n, &out), 0);
	ck_assert_str_eq(out.message, "");

	/* Status past the maximum is rejected. */
	in.status = RESULT_STATUS_MAX + 1;
	n = msg_result_encode(buf, sizeof(buf), &in);
	ck_assert_int_eq(msg_result_decode(buf, (size_t)n, &out), -EBADMSG);
	in.status = UINT32_MAX;
	n = msg_result_encode(buf, sizeof(buf), &in);
	ck_assert_int_eq(msg_result_decode(buf, (size_t)n, &out), -EBADMSG);
}
END_TEST

START_TEST(result_message_limit)
{
	uint8_t buf[FRAME_MAX_PAYLOAD];
	char *msg = malloc(RESULT_MAX_MSG + 100);
	struct msg_result in = {.status = RESULT_OK, .message = msg}, out;
	long n;

	memset(msg, 'a', RESULT_MAX_MSG + 99);
	msg[RESULT_MAX_MSG + 99] = '\0';
	n = msg_result_encode(buf, sizeof(buf), &in);
	ck_assert_int_eq(n, 16 + RESULT_MAX_MSG + 1);
	ck_assert_int_eq(msg_result_decode(buf, (size_t)n, &out), 0);
	ck_assert_uint_eq(strlen(out.message), RESULT_MAX_MSG);

	/* Cut never splits a UTF-8 sequence: "é" straddling the limit. */
	msg[RESULT_MAX_MSG - 1] = (char)0xc3;
	msg[RESULT_MAX_MSG] = (char)0xa9;
	n = msg_result_encode(buf, sizeof(buf), &in);
	ck_assert_int_eq(msg_result_decode(buf, (size_t)n, &out), 0);
	ck_assert_uint_eq(strlen(out.message), RESULT_MAX_MSG - 1);

	/* Decoder rejects a message one byte past the limit. */
	uint32_t big = RESULT_MAX_MSG + 1;

	memset(buf, 0, sizeof(buf));
	memcpy(buf + 12, &big, 4);
	memset(buf + 16, 'b', big);
	buf[16 + big] = 0;
	ck_assert_int_eq(msg_result_decode(buf, 16 + big + 1, &out), -EBADMSG);
	big = RESULT_MAX_MSG;
	memcpy(buf + 12, &big, 4);
	buf[16 + big] = 0;
	ck_assert_int_eq(msg_result_decode(buf, 16 + big + 1, &out), 0);

	/* Too small a buffer. */
	in.message = "x";
	ck_assert_int_eq(msg_result_encode(buf, 17, &in), -EMSGSIZE);
	ck_assert_int_eq(msg_result_encode(buf, 18, &in), 18);
	free(msg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("msg");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, writer_overflow_sticks);
	tcase_add_test(tc, str_roundtrip);
	tcase_add_test(tc, str_maxlen);
	tcase_add_test(tc, str_huge_lengths);
	tcase_add_test(tc, str_truncated_and_unterminated);
	tcase_add_test(tc, trailing_bytes);
	tcase_add_test(tc, hello_codec);
	tcase_add_test(tc, call_codec);
	tcase_add_test(tc, result_codec);
	tcase_add_test(tc, result_message_limit);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
