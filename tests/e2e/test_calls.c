/*
 * test_calls.c - the data plane against a real corrald: payload encodings and
 * sizes through the ring, payload and result fds, the stdio adapter, the
 * native example, failures during calls.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* The result bytes of an ok call reply (string, base64 or fd). */
static unsigned char *result_bytes(json_t *r, int fd, size_t *len, bool *was_fd)
{
	H_OK(r);
	*was_fd = false;
	if (json_is_true(json_object_get(r, "result_fd"))) {
		ck_assert_msg(fd >= 0, "result_fd true but no fd came: %s", h_dump(r));
		*was_fd = true;
		return h_read_fd(fd, len);
	}
	ck_assert_msg(fd < 0, "an fd came without result_fd: %s", h_dump(r));
	const char *s = h_str(r, "result");
	if (s) {
		*len = json_string_length(json_object_get(r, "result"));
		unsigned char *p = malloc(*len + 1);
		memcpy(p, s, *len);
		return p;
	}
	s = h_str(r, "result_b64");
	ck_assert_msg(s, "no result in %s", h_dump(r));
	return h_unb64(s, len);
}

/* Assert fd is sealed against write, grow and shrink. */
static void assert_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	ck_assert_msg(seals >= 0, "result fd is not a sealable memfd");
	int want = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
	ck_assert_msg((seals & want) == want, "seals 0x%x, want 0x%x", seals, want);
}

/* Call type with payload_b64 of data; returns the reply, the result fd in *fd. */
static json_t *call_b64(struct hc *c, const char *type, const unsigned char *data, size_t len,
			int *fd)
{
	char *b = h_b64(data, len);
	json_t *r = hc_rpc_fd(c, -1, fd,
			      "{\"cmd\":\"call\",\"type\":\"%s\",\"payload_b64\":\"%s\"}", type, b);
	free(b);
	return r;
}

/* Round-trip len pattern bytes through type via payload_b64; assert identical. */
static void roundtrip_b64(struct hc *c, const char *type, size_t len, bool want_fd)
{
	unsigned char *data = malloc(len ? len : 1);
	h_pattern(data, 7, len);
	int fd = -1;
	json_t *r = call_b64(c, type, data, len, &fd);
	size_t rlen;
	bool was_fd;
	unsigned char *res = result_bytes(r, fd, &rlen, &was_fd);
	ck_assert_msg(was_fd == want_fd, "%zu bytes: result_fd %d, want %d", len, was_fd, want_fd);
	if (!was_fd)
		ck_assert_msg(h_str(r, "result_b64"), "payload_b64 call without result_b64: %.200s",
			      h_dump(r));
	ck_assert_msg(rlen == len, "%zu bytes in, %zu out", len, rlen);
	ck_assert_msg(memcmp(res, data, len) == 0, "%zu bytes: content differs", len);
	h_int(r, "worker");
	h_int(r, "duration_us");
	if (fd >= 0)
		close(fd);
	free(res);
	free(data);
	json_decref(r);
}

START_TEST(test_echo_and_sha256)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"hello\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "hello");
	ck_assert_int_gt(h_int(r, "worker"), 0);
	ck_assert_int_ge(h_int(r, "duration_us"), 0);
	ck_assert_msg(!json_object_get(r, "result_b64") && !json_object_get(r, "result_fd"), "%s",
		      h_dump(r));
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"sha256\",\"payload\":\"abc\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"),
			 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	json_decref(r);
	/* UTF-8 text comes back as a string. */
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"h\\u00e9llo \\u2713 "
		       "\xc3\xa9\"}");
	H_OK(r);
	json_t *res = json_object_get(r, "result");
	ck_assert_msg(
	    json_is_string(res) && json_string_length(res) == 13 &&
		memcmp(json_string_value(res), "h\xc3\xa9llo \xe2\x9c\x93 \xc3\xa9", 13) == 0,
	    "%s", h_dump(r));
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "");
	json_decref(r);
	/* A string id rides through a call. */
	static const char sline[] =
	    "{\"id\":\"x1\",\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"q\"}\n";
	hc_send_raw(&c, sline, sizeof(sline) - 1, -1);
	r = hc_next(&c, 10000, NULL);
	H_OK(r);
	ck_assert_str_eq(h_str(r, "id"), "x1");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* "\u0000" is valid JSON in a string payload: echo gives it back. */
START_TEST(test_payload_string_nul)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_int_t id =
	    hc_sendf(&c, -1, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"a\\u0000b\"}");
	json_t *r = hc_next(&c, 10000, NULL);
	ck_assert_msg(r, "no reply");
	ck_assert_msg(json_is_integer(json_object_get(r, "id")) && h_int(r, "id") == id,
		      "valid JSON with \\u0000 in a string refused: %s", h_dump(r));
	H_OK(r);
	json_t *res = json_object_get(r, "result");
	ck_assert_msg(json_is_string(res) && json_string_length(res) == 3 &&
			  memcmp(json_string_value(res), "a\0b", 3) == 0,
		      "%s", h_dump(r));
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_all_bytes_b64)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	int fd;
	json_t *r = call_b64(&c, "echo", all, 256, &fd);
	H_OK(r);
	char *want = h_b64(all, 256);
	ck_assert_msg(h_str(r, "result_b64"), "%s", h_dump(r));
	ck_assert_str_eq(h_str(r, "result_b64"), want);
	free(want);
	json_decref(r);
	/* sha256 of binary data. */
	char hex[65];
	h_sha256_hex(all, 256, hex);
	r = call_b64(&c, "sha256", all, 256, &fd);
	size_t n;
	bool was_fd;
	unsigned char *res = result_bytes(r, fd, &n, &was_fd);
	ck_assert_int_eq(n, 64);
	ck_assert_msg(memcmp(res, hex, 64) == 0, "sha256 %.64s, want %s", res, hex);
	free(res);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_payload_sizes)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"ring_kb\":64},"
		  "\"sha256\":{\"builtin\":\"sha256\",\"ring_kb\":64}}}");
	hc_open(&c, &d);
	static const size_t sizes[] = {0,     1,	 4095,		65535,	    65536,
				       65537, 5 * 65536, 5 * 65536 + 3, 700 * 1024, 0};
	for (size_t i = 0; i == 0 || sizes[i]; i++)
		roundtrip_b64(&c, "echo", sizes[i], false);
	/* sha256 of a multi-ring payload. */
	size_t len = 5 * 65536 + 17;
	unsigned char *data = malloc(len);
	h_pattern(data, 3, len);
	char hex[65];
	h_sha256_hex(data, len, hex);
	int fd;
	json_t *r = call_b64(&c, "sha256", data, len, &fd);
	H_OK(r);
	ck_assert_msg(h_str(r, "result_b64") || h_str(r, "result"), "%s", h_dump(r));
	size_t n;
	bool was_fd;
	unsigned char *res = result_bytes(r, fd, &n, &was_fd);
	ck_assert_int_eq(n, 64);
	ck_assert_msg(memcmp(res, hex, 64) == 0, "digest differs");
	free(res);
	free(data);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_result_outgrows_line)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	/* 460,000 raw "\xc3\xa9" in a 920 KB request; inline the reply would need \u00e9
	 * escapes (2.7 MB): it must come back as a result fd. */
	size_t nch = 460000, len = nch * 2;
	char *payload = malloc(len + 1);
	for (size_t i = 0; i < nch; i++)
		memcpy(payload + 2 * i, "\xc3\xa9", 2);
	payload[len] = '\0';
	int rfd = -1;
	json_t *r = hc_rpc_fd(&c, -1, &rfd,
			      "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"%s\"}", payload);
	H_OK(r);
	ck_assert_msg(json_is_true(json_object_get(r, "result_fd")) && rfd >= 0, "%.300s",
		      h_dump(r));
	assert_sealed(rfd);
	size_t n;
	unsigned char *res = h_read_fd(rfd, &n);
	ck_assert_int_eq(n, len);
	ck_assert(memcmp(res, payload, len) == 0);
	free(res);
	free(payload);
	close(rfd);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_payload_fd_large)
{
	struct hd d;
	struct hc c;
	size_t len = (h_small() ? 64u : 256u) << 20;
	/* The default output_kb (64 MiB) would make a 256 MiB echo too_large. */
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"limits\":{\"output_kb\":1048576}},"
		  "\"sha256\":{\"builtin\":\"sha256\"}}}");
	hc_open(&c, &d);
	int pfd = h_memfd_pattern(len);
	char want[65];
	h_sha256_fd_hex(pfd, want);
	int rfd = -1;
	json_t *r =
	    hc_rpc_fd(&c, pfd, &rfd, "{\"cmd\":\"call\",\"type\":\"sha256\",\"payload_fd\":true}");
	H_OK(r);
	ck_assert_msg(json_is_true(json_object_get(r, "result_fd")), "%s", h_dump(r));
	ck_assert_msg(rfd >= 0, "no fd with the result");
	assert_sealed(rfd);
	size_t n;
	unsigned char *res = h_read_fd(rfd, &n);
	ck_assert_int_eq(n, 64);
	ck_assert_msg(memcmp(res, want, 64) == 0, "sha256 %.64s, want %s", res, want);
	free(res);
	close(rfd);
	json_decref(r);
	/* echo: the same bytes back in a sealed memfd. */
	r = hc_rpc_fd(&c, pfd, &rfd, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\":true}");
	H_OK(r);
	ck_assert_msg(json_is_true(json_object_get(r, "result_fd")), "%s", h_dump(r));
	ck_assert_msg(rfd >= 0, "no fd with the result");
	assert_sealed(rfd);
	struct stat st;
	ck_assert_int_eq(fstat(rfd, &st), 0);
	ck_assert_int_eq((size_t)st.st_size, len);
	char got[65];
	h_sha256_fd_hex(rfd, got);
	ck_assert_str_eq(got, want);
	close(rfd);
	json_decref(r);
	/* The daemon does not keep the payload fd. */
	close(pfd);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_payload_fd_kinds)
{
	struct hd d;
	struct hc c;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	/* A regular file works, from offset 0 whatever our offset is. */
	char path[160];
	snprintf(path, sizeof(path), "%s/payload", d.dir);
	int f = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(f, 0);
	ck_assert_int_eq(write(f, "abc", 3), 3);
	int rfd;
	json_t *r =
	    hc_rpc_fd(&c, f, &rfd, "{\"cmd\":\"call\",\"type\":\"sha256\",\"payload_fd\":true}");
	H_OK(r);
	ck_assert_msg(rfd >= 0, "%s", h_dump(r));
	size_t n;
	unsigned char *res = h_read_fd(rfd, &n);
	ck_assert_int_eq(n, 64);
	ck_assert(memcmp(res, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
			 64) == 0);
	free(res);
	close(rfd);
	close(f);
	json_decref(r);
	/* An empty memfd. */
	int e = h_memfd_pattern(0);
	r = hc_rpc_fd(&c, e, &rfd, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\":true}");
	H_OK(r);
	ck_assert_msg(rfd >= 0, "%s", h_dump(r));
	res = h_read_fd(rfd, &n);
	ck_assert_int_eq(n, 0);
	free(res);
	close(rfd);
	close(e);
	json_decref(r);
	/* A pipe, a socket, a directory: bad_request. */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	r = hc_rpc_fd(&c, p[0], NULL, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\":true}");
	H_ERR(r, "bad_request");
	json_decref(r);
	close(p[0]);
	close(p[1]);
	int dfd = open(d.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = hc_rpc_fd(&c, dfd, NULL, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\":true}");
	H_ERR(r, "bad_request");
	json_decref(r);
	close(dfd);
	/* payload_fd without an fd; an fd with a string payload. */
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload_fd\":true}");
	H_ERR(r, "bad_request");
	json_decref(r);
	e = h_memfd_pattern(10);
	r = hc_rpc_fd(&c, e, NULL, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"x\"}");
	H_ERR(r, "bad_request");
	json_decref(r);
	close(e);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"still ok\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "still ok");
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_native_upper)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"upper\":{\"exec\":[\"%s\"]}}}", h_upper());
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"upper\",\"payload\":\"hello\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "HELLO");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"types\"}");
	ck_assert_str_eq(h_str(json_array_get(json_object_get(r, "types"), 0), "mode"), "native");
	json_decref(r);
	roundtrip_b64(&c, "upper", 0, false);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

#define STDIO_TYPES                                                                                \
	"{\"types\":{"                                                                             \
	"\"cat\":{\"mode\":\"stdio\",\"exec\":[\"/bin/cat\"]},"                                    \
	"\"fail\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"echo oops >&2; exit "         \
	"3\"]},"                                                                                   \
	"\"hang\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"exec sleep 5\"],"             \
	"\"pool\":{\"max\":1}},"                                                                   \
	"\"big\":{\"mode\":\"stdio\",\"exec\":[\"/usr/bin/head\",\"-c\",\"20971520\","             \
	"\"/dev/zero\"]},"                                                                         \
	"\"deaf\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"echo hi\"]},"                 \
	"\"loud\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"i=0; while [ $i -lt 3000 ]; " \
	"do echo errline-$i >&2; i=$((i+1)); done; exit 1\"]},"                                    \
	"\"slow\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"sleep 5; cat\"],"             \
	"\"pool\":{\"max\":1}}"                                                                    \
	"}}"

START_TEST(test_stdio_basics)
{
	struct hd d;
	struct hc c;
	hd_up(&d, STDIO_TYPES);
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"cat\",\"payload\":\"meow\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "meow");
	json_decref(r);
	roundtrip_b64(&c, "cat", 300 * 1024, false);
	/* A failing program: worker_error with the tail of its stderr. */
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"fail\",\"payload\":\"x\"}");
	H_ERR(r, "worker_error");
	ck_assert_msg(strstr(h_errmsg(r), "oops"), "stderr tail missing: %s", h_dump(r));
	json_decref(r);
	/* A long stderr: the message ends with its last line, and fits a client's 511 bytes. */
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"loud\",\"payload\":\"x\"}");
	H_ERR(r, "worker_error");
	const char *m = h_errmsg(r), *last = "errline-2999";
	ck_assert_msg(strlen(m) >= strlen(last) && !strcmp(m + strlen(m) - strlen(last), last),
		      "message does not end with the last stderr line: %s", m);
	ck_assert_msg(strncmp(m, "exited with status 1: ", 22) == 0, "%s", m);
	ck_assert_msg(strlen(m) < 512, "a message of %zu bytes", strlen(m));
	json_decref(r);
	/* A program that never reads its 5 MiB stdin. */
	int rfd;
	size_t n;
	unsigned char *res;
	int pfd = h_memfd_pattern(5u << 20);
	r = hc_rpc_fd(&c, pfd, &rfd, "{\"cmd\":\"call\",\"type\":\"deaf\",\"payload_fd\":true}");
	close(pfd);
	H_OK(r);
	ck_assert_msg(rfd >= 0, "%s", h_dump(r));
	res = h_read_fd(rfd, &n);
	ck_assert_msg(n == 3 && memcmp(res, "hi\n", 3) == 0, "got %zu bytes", n);
	free(res);
	close(rfd);
	json_decref(r);
	/* The same through payload_b64 (700 KiB): result "hi\n". */
	unsigned char *data = calloc(1, 700 * 1024);
	r = call_b64(&c, "deaf", data, 700 * 1024, &rfd);
	free(data);
	bool was_fd;
	res = result_bytes(r, rfd, &n, &was_fd);
	ck_assert_msg(n == 3 && memcmp(res, "hi\n", 3) == 0, "got %zu bytes", n);
	free(res);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_stdio_big_output)
{
	struct hd d;
	struct hc c;
	hd_up(&d, STDIO_TYPES);
	hc_open(&c, &d);
	json_t *r;
	/* 20 MiB of output: too big for a line, comes as a sealed fd. */
	int rfd;
	r = hc_rpc_fd(&c, -1, &rfd,
		      "{\"cmd\":\"call\",\"type\":\"big\",\"payload\":\"\",\"timeout_ms\":10000}");
	H_OK(r);
	ck_assert_msg(json_is_true(json_object_get(r, "result_fd")) && rfd >= 0, "%s", h_dump(r));
	struct stat st;
	ck_assert_int_eq(fstat(rfd, &st), 0);
	ck_assert_int_eq(st.st_size, 20971520);
	assert_sealed(rfd);
	size_t n;
	unsigned char *res = h_read_fd(rfd, &n);
	for (size_t i = 0; i < n; i++)
		if (res[i]) {
			ck_abort_msg("byte %zu is 0x%02x", i, res[i]);
			break;
		}
	free(res);
	close(rfd);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* A stdio result larger than the ring (64 KiB here) streams through it. */
START_TEST(test_stdio_result_past_ring)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"cat\":{\"mode\":\"stdio\",\"exec\":[\"/bin/cat\"],\"ring_kb\":64},"
		  "\"zeros\":{\"mode\":\"stdio\",\"exec\":[\"/usr/bin/head\",\"-c\",\"200000\","
		  "\"/dev/zero\"],\"ring_kb\":64,\"limits\":{\"timeout_ms\":5000}}}}");
	hc_open(&c, &d);
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"zeros\",\"payload_b64\":\"\"}");
	H_OK(r);
	size_t n;
	unsigned char *res = h_unb64(h_str(r, "result_b64"), &n);
	ck_assert_int_eq(n, 200000);
	free(res);
	json_decref(r);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_stdio_timeout)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, STDIO_TYPES);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	int64_t t0 = h_now_ms();
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"hang\",\"payload\":\"x\","
			       "\"timeout_ms\":300}");
	H_ERR(r, "timeout");
	json_decref(r);
	ck_assert_msg(h_now_ms() - t0 < 4000, "timeout took %lld ms", (long long)(h_now_ms() - t0));
	json_t *ev = h_wait_state(&w, sid, 0, "exited", 10000);
	ck_assert_str_eq(h_str(ev, "type"), "hang");
	ck_assert_msg(h_str(ev, "reason") && strcmp(h_str(ev, "reason"), "killed by SIGKILL") == 0,
		      "%s", h_dump(ev));
	json_decref(ev);
	/* The type still serves (the next call hangs too, but gets its own timeout). */
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"hang\",\"payload\":\"x\",\"timeout_ms\":200}");
	H_ERR(r, "timeout");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"cat\",\"payload\":\"after\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "after");
	json_decref(r);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_output_limit)
{
	struct hd d;
	struct hc c;
	hd_up(&d, "{\"types\":{\"echo\":{\"builtin\":\"echo\",\"limits\":{\"output_kb\":64}},"
		  "\"cat\":{\"mode\":\"stdio\",\"exec\":[\"/bin/cat\"],\"limits\":{\"output_kb\":"
		  "64}}}}");
	hc_open(&c, &d);
	unsigned char *data = malloc(100 * 1024);
	h_pattern(data, 0, 100 * 1024);
	int fd;
	json_t *r = call_b64(&c, "echo", data, 100 * 1024, &fd);
	H_ERR(r, "too_large");
	json_decref(r);
	r = call_b64(&c, "cat", data, 100 * 1024, &fd);
	H_ERR(r, "too_large");
	json_decref(r);
	/* Just under the limit passes. */
	roundtrip_b64(&c, "echo", 60 * 1024, false);
	roundtrip_b64(&c, "cat", 60 * 1024, false);
	free(data);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_crash_mid_call)
{
	struct hd d;
	struct hc c, w;
	hd_up(&d, STDIO_TYPES);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	json_int_t q = hc_sendf(&c, -1, "{\"cmd\":\"call\",\"type\":\"slow\",\"payload\":\"x\"}");
	json_t *ev = h_wait_state(&w, sid, 0, "busy", 10000);
	pid_t pid = (pid_t)h_int(ev, "pid");
	json_decref(ev);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	json_t *r = hc_wait_id(&c, q, 10000, NULL);
	ck_assert_msg(r, "no reply after the worker died");
	H_ERR(r, "worker_crashed");
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"cat\",\"payload\":\"next\"}");
	H_OK(r);
	json_decref(r);
	r = hc_rpc(&c, "{\"cmd\":\"stats\"}");
	ck_assert_int_ge(h_int(r, "crashed"), 1);
	ck_assert_int_ge(h_int(r, "calls_failed"), 1);
	json_decref(r);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_builtin_crash_mid_call)
{
	struct hd d;
	struct hc c, w;
	size_t len = 64u << 20;
	hd_up(&d, NULL);
	hc_open(&c, &d);
	json_int_t sid = hc_watch(&w, &d);
	/* A big payload keeps the sha256 worker busy long enough to be killed. */
	int pfd = h_memfd_pattern(len);
	json_int_t q =
	    hc_sendf(&c, pfd, "{\"cmd\":\"call\",\"type\":\"sha256\",\"payload_fd\":true}");
	close(pfd);
	json_t *ev = h_wait_state(&w, sid, 0, "busy", 10000);
	pid_t pid = (pid_t)h_int(ev, "pid");
	json_decref(ev);
	kill(pid, SIGSEGV);
	int rfd;
	json_t *r = hc_wait_id(&c, q, 20000, &rfd);
	ck_assert_msg(r, "no reply");
	if (h_ok(r)) {
		/* Finished before the signal landed: nothing to check. */
		close(rfd);
	} else {
		H_ERR(r, "worker_crashed");
	}
	json_decref(r);
	hc_close(&w);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_client_disconnect_mid_call)
{
	struct hd d;
	struct hc a, b, w;
	hd_up(&d, "{\"types\":{\"slowcat\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\","
		  "\"sleep 0.3; cat\"],\"pool\":{\"max\":1}}}}");
	hc_open(&a, &d);
	json_int_t sid = hc_watch(&w, &d);
	hc_sendf(&a, -1, "{\"cmd\":\"call\",\"type\":\"slowcat\",\"payload\":\"lost\"}");
	json_t *ev = h_wait_state(&w, sid, 0, "busy", 10000);
	json_int_t wid = h_int(ev, "worker");
	json_decref(ev);
	hc_close(&a);
	/* The worker finishes the call and goes idle again; the daemon serves on. */
	json_decref(h_wait_state(&w, sid, wid, "idle", 10000));
	hc_open(&b, &d);
	json_t *r = hc_rpc(&b, "{\"cmd\":\"call\",\"type\":\"slowcat\",\"payload\":\"kept\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "kept");
	ck_assert_int_eq(h_int(r, "worker"), wid);
	json_decref(r);
	json_t *ws = h_list(&b, NULL);
	ck_assert_int_eq(json_array_size(ws), 1);
	json_decref(ws);
	hc_close(&b);
	hc_close(&w);
	hd_stop(&d, true);
}
END_TEST

/*
 * Pipelined lines without fds, then a line with an fd, all in the daemon's
 * socket before it reads (it is stopped meanwhile): the kernel hands the fd
 * out with the one read that holds all three lines, and it belongs to the
 * last line, the call; both pings and the call succeed.
 */
START_TEST(test_fd_line_after_pipelined_lines)
{
	struct hd d;
	struct hc c;
	static const char pings[] = "{\"id\":1,\"cmd\":\"ping\"}\n{\"id\":2,\"cmd\":\"ping\"}\n";
	static const char call[] =
	    "{\"id\":3,\"cmd\":\"call\",\"type\":\"sha256\",\"payload_fd\":true}\n";

	hd_up(&d, "{\"types\":{\"sha256\":{\"builtin\":\"sha256\"}}}");
	hc_open(&c, &d);
	int pfd = h_memfd_pattern(4096);
	char want[65];
	h_sha256_fd_hex(pfd, want);
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	hc_send_raw(&c, pings, sizeof(pings) - 1, -1);
	hc_send_raw(&c, call, sizeof(call) - 1, pfd);
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	for (json_int_t id = 1; id <= 2; id++) {
		json_t *r = hc_wait_id(&c, id, 10000, NULL);
		H_OK(r);
		json_decref(r);
	}
	int rfd = -1;
	json_t *r = hc_wait_id(&c, 3, 10000, &rfd);
	H_OK(r);
	ck_assert_msg(rfd >= 0, "no result fd: %s", h_dump(r));
	size_t n;
	unsigned char *res = h_read_fd(rfd, &n);
	ck_assert_int_eq(n, 64);
	ck_assert_msg(memcmp(res, want, 64) == 0, "sha256 %.64s, want %s", res, want);
	free(res);
	close(rfd);
	json_decref(r);
	close(pfd);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/* One echo worker (min = max = 1) whose pace the daemon has measured, so that
 * calls pipeline in its ring; its id. */
static json_int_t up_paced_echo(struct hd *d, struct hc *c)
{
	json_int_t wid = 0;
	hd_up(d, "{\"types\":{\"echo\":{\"builtin\":\"echo\","
		 "\"pool\":{\"min\":1,\"max\":1,\"queue\":1024}}}}");
	hc_open(c, d);
	for (int i = 0; i < 30; i++) {
		json_t *r = hc_rpc(c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"w\"}");
		H_OK(r);
		wid = h_int(r, "worker");
		json_decref(r);
	}
	return wid;
}

/*
 * Calls queued in a worker's ring behind its current call, and the worker
 * killed meanwhile: every call gets exactly one reply, its own result or
 * worker_crashed (one it may have begun); those it never began are served by
 * the replacement.
 */
START_TEST(test_queued_calls_survive_worker_death)
{
	enum { N = 300 };
	static bool seen[N];
	struct hd d;
	struct hc c, k;
	char line[128];
	char *batch = malloc(N * sizeof(line));
	size_t len = 0;

	ck_assert_ptr_nonnull(batch);
	memset(seen, 0, sizeof(seen));
	json_int_t wid = up_paced_echo(&d, &c);
	hc_open(&k, &d);
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(batch + len, sizeof(line),
					"{\"id\":%d,\"cmd\":\"call\",\"type\":\"echo\","
					"\"payload\":\"p%d\"}\n",
					100000 + i, i);
	hc_send_raw(&c, batch, len, -1);
	json_t *r = hc_rpc(&k, "{\"cmd\":\"kill\",\"worker\":%lld}", (long long)wid);
	ck_assert_msg(h_ok(r) || strcmp(h_err(r), "no_such_worker") == 0, "%s", h_dump(r));
	json_decref(r);
	int ok = 0, crashed = 0;
	for (int i = 0; i < N; i++) {
		r = hc_next(&c, 20000, NULL);
		ck_assert_msg(r != NULL, "reply %d of %d missing", i + 1, N);
		json_int_t id = h_int(r, "id") - 100000;
		ck_assert_msg(id >= 0 && id < N && !seen[id], "unexpected or repeated reply %s",
			      h_dump(r));
		seen[id] = true;
		if (h_ok(r)) {
			snprintf(line, sizeof(line), "p%lld", (long long)id);
			ck_assert_str_eq(h_str(r, "result"), line);
			ok++;
		} else {
			ck_assert_msg(strcmp(h_err(r), "worker_crashed") == 0, "%s", h_dump(r));
			crashed++;
		}
		json_decref(r);
	}
	ck_assert_int_eq(ok + crashed, N);
	r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"after\"}");
	H_OK(r);
	json_decref(r);
	free(batch);
	hc_close(&k);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

/*
 * Calls, then a kill of the worker taking them, then more calls, all in one
 * write: the daemon holds the worker's doorbell until the lines read are
 * handled, so the kill comes between its calls and its doorbell.  Every call
 * gets exactly one reply, the kill its own, and the type keeps serving.
 */
START_TEST(test_kill_between_calls_and_doorbell)
{
	enum { N = 40 };
	static bool seen[2 * N];
	struct hd d;
	struct hc c;
	char *batch = malloc(2 * N * 128 + 128);
	size_t len = 0;

	ck_assert_ptr_nonnull(batch);
	memset(seen, 0, sizeof(seen));
	json_int_t wid = up_paced_echo(&d, &c);
	for (int i = 0; i < 2 * N; i++) {
		if (i == N)
			len += (size_t)snprintf(batch + len, 128,
						"{\"id\":99999,\"cmd\":\"kill\",\"worker\":%lld}\n",
						(long long)wid);
		len += (size_t)snprintf(batch + len, 128,
					"{\"id\":%d,\"cmd\":\"call\",\"type\":\"echo\","
					"\"payload\":\"p%d\"}\n",
					100000 + i, i);
	}
	hc_send_raw(&c, batch, len, -1);
	int calls = 0, killed = 0;
	while (calls < 2 * N || !killed) {
		json_t *r = hc_next(&c, 20000, NULL);
		ck_assert_msg(r != NULL, "replies missing: %d calls, kill %d", calls, killed);
		json_int_t id = h_int(r, "id");
		if (id == 99999) {
			ck_assert_msg(!killed, "two replies to the kill");
			H_OK(r);
			killed = 1;
			json_decref(r);
			continue;
		}
		id -= 100000;
		ck_assert_msg(id >= 0 && id < 2 * N && !seen[id], "unexpected or repeated reply %s",
			      h_dump(r));
		seen[id] = true;
		if (!h_ok(r))
			ck_assert_msg(strcmp(h_err(r), "worker_crashed") == 0, "%s", h_dump(r));
		calls++;
		json_decref(r);
	}
	ck_assert_ptr_null(hc_next(&c, 200, NULL)); /* and nothing more */
	json_t *r = hc_rpc(&c, "{\"cmd\":\"call\",\"type\":\"echo\",\"payload\":\"after\"}");
	H_OK(r);
	ck_assert_str_eq(h_str(r, "result"), "after");
	json_decref(r);
	free(batch);
	hc_close(&c);
	hd_stop(&d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e2e-calls");
	h_add(s, test_echo_and_sha256, 60);
	h_add(s, test_queued_calls_survive_worker_death, 120);
	h_add(s, test_kill_between_calls_and_doorbell, 60);
	h_add(s, test_payload_string_nul, 60);
	h_add(s, test_all_bytes_b64, 60);
	h_add(s, test_payload_sizes, 60);
	h_add(s, test_result_outgrows_line, 60);
	h_add(s, test_payload_fd_large, 120);
	h_add(s, test_payload_fd_kinds, 60);
	h_add(s, test_fd_line_after_pipelined_lines, 60);
	h_add(s, test_native_upper, 60);
	h_add(s, test_stdio_basics, 60);
	h_add(s, test_stdio_big_output, 60);
	h_add(s, test_stdio_result_past_ring, 60);
	h_add(s, test_stdio_timeout, 60);
	h_add(s, test_output_limit, 60);
	h_add(s, test_crash_mid_call, 60);
	h_add(s, test_builtin_crash_mid_call, 60);
	h_add(s, test_client_disconnect_mid_call, 60);
	return h_main(s);
}
