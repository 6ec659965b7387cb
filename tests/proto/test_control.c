/*
 * test_control.c - the control protocol's fast request parser: it accepts the
 * common flat request and builds exactly what jansson builds, and hands
 * everything else (valid or not) back to jansson.
 */
#include <check.h>
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

int main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("fast");
	tcase_add_loop_test(tc, test_fast_matches_jansson, 0,
			    (int)(sizeof(accepted) / sizeof(accepted[0])));
	tcase_add_loop_test(tc, test_fast_hands_back, 0,
			    (int)(sizeof(handed_back) / sizeof(handed_back[0])));
	tcase_add_test(tc, test_errors_unchanged);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
