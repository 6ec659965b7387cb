/*
 * test_b64.c - proto/b64.c: RFC 4648 vectors, round trips of every length
 * and byte value, strict rejection of anything but digits and padding, and
 * b64_span (the daemon's fast path for a large payload_b64).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "b64.h"

/* Decode s, expecting success and exactly want[0..n). */
static void decodes_to(const char *s, const char *want, size_t n)
{
	unsigned char *out = NULL;
	size_t len = 0;
	ck_assert_msg(b64_decode(s, strlen(s), &out, &len) == 0, "\"%s\" rejected", s);
	ck_assert_uint_eq(len, n);
	ck_assert_msg(memcmp(out, want, n) == 0, "\"%s\" decoded wrong", s);
	free(out);
}

/* Decode s, expecting -EINVAL. */
static void rejects(const char *s, size_t len)
{
	unsigned char *out = NULL;
	size_t n = 0;
	ck_assert_msg(b64_decode(s, len, &out, &n) == -EINVAL, "\"%.*s\" accepted", (int)len, s);
}

START_TEST(rfc4648_vectors)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"",	      "Zg==",	  "Zm8=",    "Zm9v",
					  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char *e = b64_encode(plain[i], strlen(plain[i]));
		ck_assert_str_eq(e, enc[i]);
		free(e);
		decodes_to(enc[i], plain[i], strlen(plain[i]));
	}
	/* Padding is optional. */
	decodes_to("Zg", "f", 1);
	decodes_to("Zm8", "fo", 2);
}
END_TEST

START_TEST(round_trips)
{
	unsigned char buf[1031];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t n = 0; n <= sizeof(buf); n += (n < 70 ? 1 : 97)) {
		char *e = b64_encode(buf, n);
		ck_assert_ptr_nonnull(e);
		ck_assert_uint_eq(strlen(e), (n + 2) / 3 * 4);
		ck_assert_uint_eq(b64_span(e, strlen(e)), strlen(e));
		unsigned char *d = NULL;
		size_t dn = 0;
		ck_assert_int_eq(b64_decode(e, strlen(e), &d, &dn), 0);
		ck_assert_uint_eq(dn, n);
		ck_assert(memcmp(d, buf, n) == 0);
		free(d);
		free(e);
	}
}
END_TEST

START_TEST(rejects_non_digits)
{
	rejects("Z", 1);     /* one digit is no byte */
	rejects("Zm9vY", 5); /* nor is a group of five */
	rejects("Zm9v\n", 5);
	rejects("Zm 9v", 5);
	rejects("Zm9-", 4);
	rejects("Zm9_", 4);
	rejects("Zg=a", 4);
	rejects("=Zm9", 4);
	rejects("Zm\0v", 4);
	rejects("Zm9vYmFy\"", 9);
	/* A bad digit anywhere in a long run is still found. */
	char big[4096];
	memset(big, 'A', sizeof(big));
	for (size_t at = 0; at < sizeof(big); at += 509) {
		big[at] = '*';
		rejects(big, sizeof(big));
		big[at] = 'A';
	}
	for (int c = 0; c < 256; c++) {
		char s[4] = {'A', 'A', 'A', (char)c};
		bool digit = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/';
		unsigned char *d = NULL;
		size_t dn = 0;
		int r = b64_decode(s, 4, &d, &dn);
		if (digit || c == '=') {
			ck_assert_msg(r == 0, "digit %d rejected", c);
			free(d);
		} else {
			ck_assert_msg(r == -EINVAL, "byte %d accepted", c);
		}
		ck_assert_uint_eq(b64_span(s, 4), digit || c == '=' ? 4 : 3);
	}
}
END_TEST

START_TEST(span_stops_at_the_quote)
{
	static const char s[] = "Zm9vYmFy+/==\",\"x\":1}";
	ck_assert_uint_eq(b64_span(s, strlen(s)), 12);
	ck_assert_uint_eq(b64_span(s, 5), 5);
	ck_assert_uint_eq(b64_span("", 0), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("b64");
	TCase *tc = tcase_create("b64");
	tcase_add_test(tc, rfc4648_vectors);
	tcase_add_test(tc, round_trips);
	tcase_add_test(tc, rejects_non_digits);
	tcase_add_test(tc, span_stops_at_the_quote);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
