/*
 * test_control.c - the control protocol's fast paths against jansson: the
 * request parser accepts the common flat request and builds exactly what
 * jansson builds, handing everything else back; the string quoting of replies
 * writes what json_dumps writes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

static json_t *ref_load(const char *line)
{
	return json_loadb(line, strlen(line), JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
}

static const char *const accepted[] = {
    "{\"id\":1,\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"hello\"}",
    " { \"id\" : 123456789012345678 , \"cmd\" : \"ping\" }\r\n",
    "{\"id\":\"abc\",\"cmd\":\"list\",\"type\":\"\"}",
    "{\"id\":-42,\"cmd\":\"call\",\"type\":\"t\",\"timeout_ms\":0,\"stream\":true,\"x\":false}",
    "{\"id\":0,\"cmd\":\"call\",\"payload\":\"~ !#$%&'()*+,-./:;<=>?@[]^_`{|}\"}",
};

/* Valid JSON outside the subset, and invalid JSON: NULL, jansson decides. */
static const char *const handed_back[] = {
    "{\"id\":1,\"payload\":\"a\\nb\"}",		     /* an escape */
    "{\"id\":1,\"payload\":\"\\u0000\"}",	     /* NUL by escape */
    "{\"id\":1,\"payload\":\"caf\xc3\xa9\"}",	     /* non-ASCII */
    "{\"id\":1.5,\"cmd\":\"ping\"}",		     /* a real */
    "{\"id\":1e3,\"cmd\":\"ping\"}",		     /* an exponent */
    "{\"id\":1234567890123456789,\"cmd\":\"ping\"}", /* 19 digits */
    "{\"id\":99999999999999999999999999999,\"cmd\":\"ping\"}",
    "{\"id\":-0,\"cmd\":\"ping\"}",
    "{\"id\":01,\"cmd\":\"ping\"}",	    /* invalid */
    "{\"id\":1,\"cmd\":\"ping\",\"id\":2}", /* a duplicate: jansson's error */
    "{\"id\":null,\"cmd\":\"ping\"}",
    "{\"id\":[1],\"cmd\":\"ping\"}",
    "{\"id\":{},\"cmd\":\"ping\"}",
    "{}",
    "[1]",
    "{\"id\":1,}",
    "{\"id\":1} x",
    "{\"id\":1",
    "{\"id\":\"unterminated}",
    "{\"\":1}",
    "{\"id\":tru}",
    "{\"a_key_that_is_longer_than_thirty_one\":1}",
    "{\"id\":\"tab\there\"}", /* a control character */
    "",
};

START_TEST(test_fast_matches_jansson)
{
	const char *line = accepted[_i];
	json_t *fast = ctl_fast_loadb(line, strlen(line));
	json_t *ref = ref_load(line);
	ck_assert_msg(fast != NULL, "fast path refused %s", line);
	ck_assert_ptr_nonnull(ref);
	ck_assert_msg(json_equal(fast, ref), "fast path differs from jansson on %s", line);
	json_decref(fast);
	json_decref(ref);
}
END_TEST

START_TEST(test_fast_hands_back)
{
	const char *line = handed_back[_i];
	json_t *fast = ctl_fast_loadb(line, strlen(line));
	ck_assert_msg(fast == NULL, "fast path took %s", line);
}
END_TEST

/* Errors still come from jansson, worded as before. */
START_TEST(test_errors_unchanged)
{
	struct ctl_request req;
	char err[256];
	const char *dup = "{\"id\":1,\"cmd\":\"ping\",\"cmd\":\"ping\"}";
	ck_assert_int_eq(ctl_request_parse(dup, strlen(dup), 0, &req, err, sizeof(err)),
			 CTL_BAD_REQUEST);
	ck_assert_msg(strstr(err, "duplicate"), "error: %s", err);
	ctl_request_free(&req);
	const char *ok = "{\"id\":7,\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}";
	ck_assert_int_eq(ctl_request_parse(ok, strlen(ok), 0, &req, err, sizeof(err)), CTL_OK);
	ck_assert_int_eq(json_integer_value(req.id), 7);
	ck_assert_str_eq(ctl_arg_str(&req, "payload"), "x");
	ctl_request_free(&req);
}
END_TEST

/* jansson's own quoting of s[0..n) (ENSURE_ASCII), or NULL when it is not UTF-8. */
static char *ref_quote(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (!j)
		return NULL;
	char *out = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	json_decref(j);
	return out;
}

static void check_quote(const char *s, size_t n)
{
	char *out = malloc(CTL_QUOTE_MAX(n));
	ck_assert_ptr_nonnull(out);
	long len = ctl_json_quote(out, s, n);
	char *ref = ref_quote(s, n);
	if (!ref) {
		ck_assert_int_eq(len, -1);
	} else {
		ck_assert_msg(len >= 0, "refused what jansson quotes: %s", ref);
		ck_assert_msg((size_t)len == strlen(ref) && memcmp(out, ref, (size_t)len) == 0,
			      "quoted %.*s, jansson %s", (int)len, out, ref);
	}
	free(ref);
	free(out);
}

/* Result strings quoted as jansson quotes them: every byte value, every class of
 * UTF-8 sequence (valid, overlong, surrogate, past U+10FFFF, cut short), and
 * random mixes of them. */
START_TEST(test_quote_matches_jansson)
{
	static const char *const cases[] = {
	    "",
	    "plain text",
	    "\"quoted\" \\ back",
	    "\b\f\n\r\t\x01\x1f\x7f",
	    "caf\xc3\xa9",
	    "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80 emoji",
	    "\xef\xbf\xbf",
	    "\xc0\x80",
	    "\xe0\x80\x80",
	    "\xed\xa0\x80",
	    "\xf4\x90\x80\x80",
	    "\xf5\x80",
	    "\xc3",
	    "\xe2\x82",
	    "\xf0\x9f\x98",
	    "\x80",
	    "\xff",
	    "/slash/",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_quote(cases[i], strlen(cases[i]));
	check_quote("nul\0inside", 11);
	for (unsigned b = 0; b < 256; b++) {
		char one = (char)b;
		check_quote(&one, 1);
	}
	/* Random mixes, biased to the interesting bytes. */
	static const unsigned char pick[] = {'a',  '"',	 '\\', 0,    0x1f, 0x7f, 0x80, 0xbf, 0xc2,
					     0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0x9f, 0xa0, 0xa9};
	unsigned seed = 12345;
	for (int k = 0; k < 20000; k++) {
		unsigned char buf[24];
		size_t n = (size_t)(k % 24);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (seed >> 16) & 1 ? pick[(seed >> 17) % sizeof(pick)]
						  : (unsigned char)(seed >> 20);
		}
		check_quote((const char *)buf, n);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("fast");
	tcase_add_loop_test(tc, test_fast_matches_jansson, 0,
			    (int)(sizeof(accepted) / sizeof(accepted[0])));
	tcase_add_loop_test(tc, test_fast_hands_back, 0,
			    (int)(sizeof(handed_back) / sizeof(handed_back[0])));
	tcase_add_test(tc, test_errors_unchanged);
	tcase_add_test(tc, test_quote_matches_jansson);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
