/*
 * test_client.c - libcorral through a real corrald (tests/e2e/harness.c
 * starts one per test on a private socket): every command, pipelined calls
 * from several threads, payloads by fd up to 256 MiB, every error code,
 * a daemon restart mid-call, the async API, and a fake server (a test double
 * writing hostile lines) that must never crash the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "corral/client.h"
#include "harness.h"

#define CFG                                                                                        \
	"{\"types\":{"                                                                             \
	"\"echo\":{\"builtin\":\"echo\",\"pool\":{\"min\":1,\"max\":4,\"queue\":2000}},"           \
	"\"sha256\":{\"builtin\":\"sha256\",\"pool\":{\"max\":2}},"                                \
	"\"fail\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"echo oops >&2; exit 3\"]},"   \
	"\"hang\":{\"mode\":\"stdio\",\"exec\":[\"/bin/sh\",\"-c\",\"exec sleep 60\"],"            \
	"\"pool\":{\"max\":1}},"                                                                   \
	"\"small\":{\"builtin\":\"echo\",\"limits\":{\"output_kb\":1}},"                           \
	"\"iso\":{\"builtin\":\"echo\",\"pool\":{\"isolate\":\"key\"}},"                           \
	"\"gone\":{\"mode\":\"native\",\"exec\":[\"/nonexistent/corral-prog\"]},"                  \
	"\"one\":{\"builtin\":\"echo\",\"pool\":{\"max\":1}}"                                      \
	"}}"

/* Connect to d; asserts. */
static struct corral *conn(const struct hd *d)
{
	struct corral *c = NULL;
	struct corral_error e;

	ck_assert_msg(corral_connect(d->sock, &c, &e) == CORRAL_OK, "connect: %s", e.message);
	return c;
}

/* A call that must fail with code; returns nothing, checks the message is there. */
static void call_fails(struct corral *c, const char *type, const char *data,
		       const struct corral_call_opts *o, enum corral_code code)
{
	struct corral_result *r = NULL;
	struct corral_error e;
	enum corral_code rc = corral_call(c, type, data, strlen(data), o, &r, &e);

	ck_assert_msg(rc == code, "call %s: expected %s, got %s: %s", type, corral_code_name(code),
		      corral_code_name(rc), rc ? e.message : "ok");
	ck_assert_int_eq(e.code, code);
	ck_assert_msg(e.message[0], "error without a message");
	ck_assert_ptr_null(r);
}

/* Echo a string and compare. */
static void echo_ok(struct corral *c, const char *s)
{
	struct corral_result *r;
	struct corral_error e;
	size_t n;

	ck_assert_msg(corral_call(c, "echo", s, strlen(s), NULL, &r, &e) == CORRAL_OK, "%s",
		      e.message);
	const char *p = corral_result_data(r, &n);
	ck_assert_uint_eq(n, strlen(s));
	ck_assert(memcmp(p, s, n) == 0);
	ck_assert_uint_gt(corral_result_worker(r), 0);
	corral_result_free(r);
}

START_TEST(test_commands)
{
	struct hd d;
	struct corral_error e;
	hd_up(&d, CFG);
	struct corral *c = conn(&d);

	ck_assert_str_eq(corral_daemon_version(c), CORRAL_CLIENT_VERSION);
	ck_assert_str_eq(corral_socket_path(c), d.sock);

	struct corral_ping p;
	ck_assert_int_eq(corral_ping(c, &p, &e), CORRAL_OK);
	ck_assert_int_eq(p.pid, d.pid);
	ck_assert_str_eq(p.version, CORRAL_CLIENT_VERSION);
	corral_ping_clear(&p);

	struct corral_types t;
	ck_assert_int_eq(corral_types(c, &t, &e), CORRAL_OK);
	bool found = false;
	for (size_t i = 0; i < t.n; i++)
		if (strcmp(t.types[i].name, "echo") == 0) {
			found = true;
			ck_assert_str_eq(t.types[i].mode, "builtin");
			ck_assert_int_eq(t.types[i].pool_max, 4);
			ck_assert_int_eq(t.types[i].queue, 2000);
		}
	ck_assert(found);
	corral_types_clear(&t);

	/* watch first, so the spawn's events are seen. */
	struct corral_stream *w;
	ck_assert_msg(corral_watch(c, &w, &e) == CORRAL_OK, "%s", e.message);

	struct corral_ids ids;
	ck_assert_msg(corral_spawn(c, "sha256", 2, &ids, &e) == CORRAL_OK, "%s", e.message);
	ck_assert_uint_eq(ids.n, 2);
	uint64_t a = ids.ids[0], b = ids.ids[1];
	corral_ids_clear(&ids);

	struct corral_event ev;
	bool idle_a = false;
	while (!idle_a) {
		ck_assert_msg(corral_stream_next(w, 10000, &ev, &e) == CORRAL_OK, "%s", e.message);
		ck_assert_int_eq(ev.kind, CORRAL_EVENT_STATE);
		if (ev.worker == a && strcmp(ev.state, "idle") == 0) {
			idle_a = true;
			ck_assert_str_eq(ev.type, "sha256");
			ck_assert_int_gt(ev.pid, 0);
		}
		corral_event_clear(&ev);
	}

	struct corral_workers ws;
	ck_assert_int_eq(corral_list(c, "sha256", &ws, &e), CORRAL_OK);
	ck_assert_uint_eq(ws.n, 2);
	ck_assert_str_eq(ws.workers[0].type, "sha256");
	ck_assert_ptr_null(ws.workers[0].key);
	corral_workers_clear(&ws);

	ck_assert_msg(corral_kill(c, a, "TERM", &e) == CORRAL_OK, "%s", e.message);
	for (;;) {
		ck_assert_msg(corral_stream_next(w, 10000, &ev, &e) == CORRAL_OK, "%s", e.message);
		bool done = ev.worker == a && strcmp(ev.state, "exited") == 0;
		if (done)
			ck_assert_msg(ev.reason && strstr(ev.reason, "SIGTERM"), "%s",
				      ev.reason ? ev.reason : "(null)");
		corral_event_clear(&ev);
		if (done)
			break;
	}
	ck_assert_int_eq(corral_stop(c, b, NULL, 1000, &ids, &e), CORRAL_OK);
	ck_assert_uint_eq(ids.n, 1);
	ck_assert_uint_eq(ids.ids[0], b);
	corral_ids_clear(&ids);
	ck_assert_int_eq(corral_stop(c, 0, "echo", -1, NULL, &e), CORRAL_OK);
	corral_stream_close(w);

	echo_ok(c, "after stop");
	struct corral_stats s;
	ck_assert_int_eq(corral_stats(c, NULL, &s, &e), CORRAL_OK);
	ck_assert_int_ge(s.calls_ok, 1);
	ck_assert_int_ge(s.spawned, 3);
	corral_stats_clear(&s);
	ck_assert_int_eq(corral_stats(c, "echo", &s, &e), CORRAL_OK);
	ck_assert_int_eq(s.calls_ok, 1);
	corral_stats_clear(&s);

	/* logs -f: the backlog line first, then a new line as an event. */
	call_fails(c, "fail", "x", NULL, CORRAL_E_WORKER_ERROR);
	struct corral_stream *l;
	struct corral_logs_opts lo = {.type = "fail", .lines = 10};
	ck_assert_msg(corral_logs_follow(c, &lo, &l, &e) == CORRAL_OK, "%s", e.message);
	ck_assert_int_eq(corral_stream_next(l, 10000, &ev, &e), CORRAL_OK);
	ck_assert_int_eq(ev.kind, CORRAL_EVENT_LOG);
	ck_assert_str_eq(ev.text, "oops");
	ck_assert_str_eq(ev.stream, "stderr");
	corral_event_clear(&ev);
	ck_assert_int_eq(corral_stream_next(l, 0, &ev, &e), CORRAL_E_CLIENT_TIMEOUT);
	call_fails(c, "fail", "y", NULL, CORRAL_E_WORKER_ERROR);
	ck_assert_int_eq(corral_stream_next(l, 10000, &ev, &e), CORRAL_OK);
	ck_assert_str_eq(ev.text, "oops");
	corral_event_clear(&ev);
	corral_stream_close(l);

	/* Any command through the generic call, the whole reply as JSON. */
	json_t *args = json_pack("{s:s}", "type", "echo"), *reply;
	ck_assert_int_eq(corral_command(c, "list", args, &reply, &e), CORRAL_OK);
	ck_assert(json_is_array(json_object_get(reply, "workers")));
	json_decref(reply);
	json_decref(args);

	struct corral_reload rl;
	ck_assert_msg(corral_reload(c, &rl, &e) == CORRAL_OK, "%s", e.message);
	ck_assert(json_is_array(rl.added));
	ck_assert_uint_eq(json_array_size(rl.added) + json_array_size(rl.removed), 0);
	corral_reload_clear(&rl);

	ck_assert_int_eq(corral_shutdown(c, 5000, &e), CORRAL_OK);
	ck_assert(hd_wait_exit(&d, 20000));
	ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
	/* The connection is gone with the daemon: a clear error. */
	struct corral_ping p2;
	enum corral_code rc = corral_ping(c, &p2, &e);
	ck_assert_msg(rc == CORRAL_E_DISCONNECTED, "%s: %s", corral_code_name(rc), e.message);
	corral_close(c);
	hd_stop(&d, false);
}
END_TEST

/* 4 threads pipeline 250 calls each on one connection. */
struct pipe_arg {
	struct corral *c;
	int t;
	char why[640]; /* a failed call's code and message */
};

static void *pipeline_thread(void *arg)
{
	struct pipe_arg *a = arg;
	struct corral_pending *p[50];
	char buf[64];

	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 50; i++) {
			int n = snprintf(buf, sizeof(buf), "t%d-%d", a->t, round * 50 + i);
			/* Some by memfd: an fd line pipelined behind others keeps its fd. */
			struct corral_call_opts o = {.flags = i % 10 == 0 ? CORRAL_CALL_FD : 0};
			if (corral_call_start(a->c, "echo", buf, (size_t)n, &o, &p[i], NULL))
				return (void *)"start failed";
		}
		for (int i = 0; i < 50; i++) {
			struct corral_result *r;
			struct corral_error e;
			size_t len;
			int n = snprintf(buf, sizeof(buf), "t%d-%d", a->t, round * 50 + i);
			enum corral_code rc = corral_call_wait(p[i], &r, &e);
			if (rc != CORRAL_OK) {
				snprintf(a->why, sizeof(a->why), "call %d failed: %s: %s",
					 round * 50 + i, corral_code_name(rc), e.message);
				return a->why;
			}
			const char *d = corral_result_data(r, &len);
			bool same = len == (size_t)n && memcmp(d, buf, len) == 0;
			corral_result_free(r);
			if (!same)
				return (void *)"wrong result (replies mixed up)";
		}
	}
	return NULL;
}

START_TEST(test_pipelined_threads)
{
	struct hd d;
	hd_up(&d, CFG);
	struct corral *c = conn(&d);
	pthread_t th[4];
	struct pipe_arg a[4];

	for (int i = 0; i < 4; i++) {
		a[i] = (struct pipe_arg){.c = c, .t = i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, pipeline_thread, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *res;
		pthread_join(th[i], &res);
		ck_assert_msg(res == NULL, "thread %d: %s", i, (const char *)res);
	}
	struct corral_stats s;
	ck_assert_int_eq(corral_stats(c, "echo", &s, NULL), CORRAL_OK);
	ck_assert_int_eq(s.calls_ok, 1000);
	corral_stats_clear(&s);
	corral_close(c);
	hd_stop(&d, true);
}
END_TEST

/* A sealed memfd of len bytes: the harness pattern, or sparse zeros with marks. */
static int sparse_memfd(size_t len)
{
	int fd = memfd_create("big", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	ck_assert_int_eq(pwrite(fd, "head", 4, 0), 4);
	ck_assert_int_eq(pwrite(fd, "tail", 4, (off_t)len - 4), 4);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), 0);
	return fd;
}

START_TEST(test_payload_sizes)
{
	static const size_t sizes[] = {0, 1, 4095, 65536, 65537, 1048579, 16u << 20, 256u << 20};
	struct hd d;
	struct corral_error e;
	hd_up(&d, CFG);
	struct corral *c = conn(&d);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		char want[65];
		struct corral_result *r;
		size_t len;
		if (n >= (256u << 20)) {
			if (h_small())
				continue;
			/* 256 MiB by fd: a sparse memfd costs no copy and no memory. */
			int fd = sparse_memfd(n);
			h_sha256_fd_hex(fd, want);
			struct corral_call_opts o = {.payload_fd = fd};
			ck_assert_msg(corral_call(c, "sha256", NULL, 0, &o, &r, &e) == CORRAL_OK,
				      "%zu: %s", n, e.message);
			close(fd);
		} else {
			unsigned char *buf = malloc(n ? n : 1);
			h_pattern(buf, 0, n);
			h_sha256_hex(buf, n, want);
			/* Small ones inline, then all forced through a memfd too. */
			for (int force = 0; force < 2; force++) {
				struct corral_call_opts o = {.flags = force ? CORRAL_CALL_FD : 0};
				ck_assert_msg(corral_call(c, "sha256", buf, n, &o, &r, &e) ==
						  CORRAL_OK,
					      "%zu: %s", n, e.message);
				const char *got = corral_result_data(r, &len);
				ck_assert_uint_eq(len, 64);
				ck_assert_msg(memcmp(got, want, 64) == 0, "size %zu force %d", n,
					      force);
				bool by_fd = force || n > CORRAL_INLINE_MAX;
				int rfd = corral_result_take_fd(r);
				ck_assert_msg((rfd >= 0) == by_fd, "size %zu: result fd %d", n,
					      rfd);
				if (rfd >= 0)
					close(rfd);
				corral_result_free(r);
			}
			free(buf);
			continue;
		}
		const char *got = corral_result_data(r, &len);
		ck_assert_uint_eq(len, 64);
		ck_assert_msg(memcmp(got, want, 64) == 0, "size %zu", n);
		corral_result_free(r);
	}

	/* An echo of 8 MiB comes back as a view of the result memfd, no copy. */
	size_t n = 8u << 20;
	unsigned char *buf = malloc(n);
	h_pattern(buf, 0, n);
	struct corral_result *r;
	ck_assert_int_eq(corral_call(c, "echo", buf, n, NULL, &r, &e), CORRAL_OK);
	size_t len;
	const unsigned char *got = corral_result_data(r, &len);
	ck_assert_uint_eq(len, n);
	ck_assert(memcmp(got, buf, n) == 0);
	int rfd = corral_result_take_fd(r);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_eq(corral_result_take_fd(r), -1);
	corral_result_free(r);
	ck_assert_int_eq(fcntl(rfd, F_GET_SEALS) & F_SEAL_WRITE, F_SEAL_WRITE);
	size_t flen;
	unsigned char *fb = h_read_fd(rfd, &flen);
	ck_assert_uint_eq(flen, n);
	ck_assert(memcmp(fb, buf, n) == 0);
	free(fb);
	close(rfd);
	free(buf);

	/* Binary (not UTF-8) bytes inline go as base64 and come back intact. */
	const char bin[] = "\xff\x00\xfe\x01";
	ck_assert_int_eq(corral_call(c, "echo", bin, 4, NULL, &r, &e), CORRAL_OK);
	got = corral_result_data(r, &len);
	ck_assert_uint_eq(len, 4);
	ck_assert(memcmp(got, bin, 4) == 0);
	corral_result_free(r);
	corral_close(c);
	hd_stop(&d, true);
}
END_TEST

/*
 * Wait until type has a busy worker; returns its id.  The watch opens before
 * the list, so a worker that turns busy after the list is seen as an event.
 */
static uint64_t wait_busy(struct corral *c, const char *type)
{
	struct corral_stream *w;
	struct corral_workers ws;
	struct corral_event ev;
	struct corral_error e;
	uint64_t id = 0;

	ck_assert_msg(corral_watch(c, &w, &e) == CORRAL_OK, "%s", e.message);
	ck_assert_int_eq(corral_list(c, type, &ws, NULL), CORRAL_OK);
	for (size_t k = 0; k < ws.n; k++)
		if (strcmp(ws.workers[k].state, "busy") == 0)
			id = ws.workers[k].id;
	corral_workers_clear(&ws);
	while (!id) {
		ck_assert_msg(corral_stream_next(w, 20000, &ev, &e) == CORRAL_OK, "no busy %s: %s",
			      type, e.message);
		if (strcmp(ev.type, type) == 0 && strcmp(ev.state, "busy") == 0)
			id = ev.worker;
		corral_event_clear(&ev);
	}
	corral_stream_close(w);
	return id;
}

START_TEST(test_error_codes)
{
	struct hd d;
	struct corral_error e;
	hd_up(&d, CFG);
	struct corral *c = conn(&d), *c2 = conn(&d);
	struct corral_call_opts key = {.key = "tenant"}, to = {.timeout_ms = 300};

	call_fails(c, "echo", "x", &key, CORRAL_E_BAD_REQUEST);
	json_t *reply;
	ck_assert_int_eq(corral_command(c, "nope", NULL, &reply, &e), CORRAL_E_UNKNOWN_COMMAND);
	ck_assert_msg(strstr(e.message, "nope"), "%s", e.message);
	/* For tools that print replies: the error reply as the daemon sent it. */
	reply = NULL;
	ck_assert_int_eq(corral_command_reply(c, "nope", NULL, &reply, &e),
			 CORRAL_E_UNKNOWN_COMMAND);
	ck_assert_ptr_nonnull(reply);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(reply, "error"), "code")),
	    "unknown_command");
	json_decref(reply);
	struct corral *c3;
	ck_assert_int_eq(corral_connect_flags(d.sock, CORRAL_CONNECT_NO_PING, &c3, &e), CORRAL_OK);
	ck_assert_str_eq(corral_daemon_version(c3), "");
	echo_ok(c3, "no ping");
	corral_close(c3);
	call_fails(c, "nosuch", "x", NULL, CORRAL_E_UNKNOWN_TYPE);
	ck_assert_int_eq(corral_kill(c, 999999, NULL, &e), CORRAL_E_NO_SUCH_WORKER);
	char big[2048];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	call_fails(c, "small", big, NULL, CORRAL_E_TOO_LARGE);
	struct corral_ids ids;
	ck_assert_int_eq(corral_spawn(c, "one", 2, &ids, &e), CORRAL_E_BUSY);
	call_fails(c, "hang", "x", &to, CORRAL_E_TIMEOUT);
	call_fails(c, "fail", "x", NULL, CORRAL_E_WORKER_ERROR);
	ck_assert_msg(strstr(e.message, "") != NULL, "x");
	/*
	 * DESIGN.md: a call whose spawn fails gets unavailable; corrald answers
	 * internal today (daemon/dispatch.c type_fail_orphans).  The library
	 * passes on whichever it is, with the cause.
	 */
	struct corral_result *r;
	enum corral_code rc = corral_call(c, "gone", "x", 1, NULL, &r, &e);
	ck_assert_msg(rc == CORRAL_E_UNAVAILABLE || rc == CORRAL_E_INTERNAL, "%s: %s",
		      corral_code_name(rc), e.message);
	ck_assert_msg(strstr(e.message, "/nonexistent/corral-prog"), "%s", e.message);
	echo_ok(c, "iso ok");
	ck_assert_int_eq(corral_call(c, "iso", "k", 1, &key, &r, &e), CORRAL_OK);
	corral_result_free(r);

	/* worker_crashed: kill the worker while it serves our call. */
	struct corral_pending *p;
	ck_assert_int_eq(corral_call_start(c, "hang", "x", 1, NULL, &p, &e), CORRAL_OK);
	uint64_t w = wait_busy(c2, "hang");
	ck_assert_int_eq(corral_kill(c2, w, "KILL", &e), CORRAL_OK);
	rc = corral_call_wait(p, &r, &e);
	ck_assert_msg(rc == CORRAL_E_WORKER_CRASHED, "%s: %s", corral_code_name(rc), e.message);

	/* shutting_down: a call in flight holds the drain; a new call is refused. */
	ck_assert_int_eq(corral_call_start(c, "hang", "x", 1, NULL, &p, &e), CORRAL_OK);
	wait_busy(c2, "hang");
	ck_assert_int_eq(corral_shutdown(c2, 1000, &e), CORRAL_OK);
	call_fails(c2, "echo", "x", NULL, CORRAL_E_SHUTTING_DOWN);
	rc = corral_call_wait(p, &r, &e);
	ck_assert_msg(rc != CORRAL_OK, "the hung call finished");
	corral_close(c);
	corral_close(c2);
	ck_assert(hd_wait_exit(&d, 20000));
	hd_stop(&d, false);
}
END_TEST

/* Run fn as nobody in a child; returns its exit status. */
static int as_nobody(const struct hd *d, enum corral_code want)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct corral *c;
		struct corral_error e;
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		enum corral_code rc = corral_connect(d->sock, &c, &e);
		if (rc != want) {
			fprintf(stderr, "as nobody: %s: %s\n", corral_code_name(rc), e.message);
			_exit(1);
		}
		fprintf(stderr, "as nobody: %s\n", e.message);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

START_TEST(test_connect_errors)
{
	struct hd d;
	struct corral *c;
	struct corral_error e;

	ck_assert_int_eq(corral_connect("/nonexistent/corral.sock", &c, &e), CORRAL_E_NO_DAEMON);
	ck_assert_msg(strstr(e.message, "/nonexistent/corral.sock"), "%s", e.message);
	ck_assert_int_eq(e.sys_errno, ENOENT);
	/* $CORRAL_SOCKET is the default. */
	setenv("CORRAL_SOCKET", "/nonexistent/env.sock", 1);
	ck_assert_int_eq(corral_connect(NULL, &c, &e), CORRAL_E_NO_DAEMON);
	ck_assert_msg(strstr(e.message, "/nonexistent/env.sock"), "%s", e.message);

	hd_up(&d, CFG);
	setenv("CORRAL_SOCKET", d.sock, 1);
	ck_assert_int_eq(corral_connect(NULL, &c, &e), CORRAL_OK);
	corral_close(c);
	/* A socket file nobody listens on. */
	char stale[160];
	snprintf(stale, sizeof(stale), "%s/stale.sock", d.dir);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", stale);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	ck_assert_int_eq(corral_connect(stale, &c, &e), CORRAL_E_NO_DAEMON);
	ck_assert_int_eq(e.sys_errno, ECONNREFUSED);

	if (geteuid() == 0) {
		/* The socket's mode keeps nobody out (0660, root's group). */
		ck_assert_int_eq(chmod(d.dir, 0755), 0);
		ck_assert_int_eq(as_nobody(&d, CORRAL_E_PERMISSION_DENIED), 0);
		/* With the mode open, the daemon's allow list does (SO_PEERCRED). */
		ck_assert_int_eq(chmod(d.sock, 0666), 0);
		ck_assert_int_eq(as_nobody(&d, CORRAL_E_PERMISSION_DENIED), 0);
	}
	hd_stop(&d, true);
}
END_TEST

START_TEST(test_restart_mid_call)
{
	struct hd d;
	struct corral_error e;
	hd_up(&d, CFG);
	struct corral *c = conn(&d), *c2 = conn(&d);
	struct corral_pending *p;
	struct corral_result *r;

	ck_assert_int_eq(corral_call_start(c, "hang", "x", 1, NULL, &p, &e), CORRAL_OK);
	wait_busy(c2, "hang");
	corral_close(c2);
	kill(d.pid, SIGKILL);
	enum corral_code rc = corral_call_wait(p, &r, &e);
	ck_assert_msg(rc == CORRAL_E_DISCONNECTED, "%s: %s", corral_code_name(rc), e.message);
	ck_assert_msg(strstr(e.message, "closed"), "%s", e.message);
	/* Every later call on the dead connection says the same at once. */
	call_fails(c, "echo", "x", NULL, CORRAL_E_DISCONNECTED);
	corral_close(c);
	ck_assert(hd_wait_exit(&d, 10000));
	d.reaped = false;
	hd_start(&d);
	c = conn(&d);
	echo_ok(c, "back");
	corral_close(c);
	hd_stop(&d, true);
}
END_TEST

/* Async: many calls on the caller's event_base, callbacks on its loop. */
struct async_state {
	struct event_base *base;
	int done, bad;
	bool pinged;
};

static void on_call(struct corral_result *r, const struct corral_error *e, void *arg)
{
	struct async_state *s = arg;
	size_t n;

	if (!r) {
		fprintf(stderr, "async call: %s\n", e->message);
		s->bad++;
	} else {
		const char *d = corral_result_data(r, &n);
		if (n != 5 || memcmp(d, "async", 5) != 0)
			s->bad++;
		corral_result_free(r);
	}
	if (++s->done == 200)
		event_base_loopexit(s->base, NULL);
}

static void on_ping(json_t *reply, const struct corral_error *e, void *arg)
{
	struct async_state *s = arg;

	(void)e;
	s->pinged = reply && json_is_string(json_object_get(reply, "version"));
	json_decref(reply);
}

static void on_err(struct corral_result *r, const struct corral_error *e, void *arg)
{
	int *code = arg;

	corral_result_free(r);
	*code = r ? 0 : (int)e->code;
}

START_TEST(test_async)
{
	struct hd d;
	struct corral_error e;
	struct async_state s = {.base = event_base_new()};
	hd_up(&d, CFG);
	struct corral *c = conn(&d);

	ck_assert_int_eq(corral_command_async(c, s.base, "ping", NULL, on_ping, &s, &e), CORRAL_OK);
	for (int i = 0; i < 199; i++)
		ck_assert_int_eq(
		    corral_call_async(c, s.base, "echo", "async", 5, NULL, on_call, &s, &e),
		    CORRAL_OK);
	/* One large one: the payload memfd is queued with its line. */
	char *big = malloc(1 << 20);
	memset(big, 'a', 1 << 20);
	memcpy(big, "async", 5);
	struct async_state *sp = &s;
	ck_assert_int_eq(
	    corral_call_async(c, s.base, "sha256", big, 1 << 20, NULL, on_call, sp, &e), CORRAL_OK);
	free(big);
	event_base_dispatch(s.base);
	ck_assert_int_eq(s.done, 200);
	ck_assert_int_eq(s.bad, 1); /* the sha256 digest is not "async" */
	ck_assert(s.pinged);
	/* Blocking use of an async connection is refused. */
	struct corral_ping p;
	ck_assert_int_eq(corral_ping(c, &p, &e), CORRAL_E_INVALID);
	/* An error reply reaches the callback. */
	int code = -1;
	ck_assert_int_eq(corral_call_async(c, s.base, "nosuch", "x", 1, NULL, on_err, &code, &e),
			 CORRAL_OK);
	while (code < 0)
		event_base_loop(s.base, EVLOOP_ONCE);
	ck_assert_int_eq(code, CORRAL_E_UNKNOWN_TYPE);
	corral_close(c);

	/* The daemon dies with an async call in flight: its callback says so. */
	c = conn(&d);
	struct corral *c2 = conn(&d);
	code = -1;
	ck_assert_int_eq(corral_call_async(c, s.base, "hang", "x", 1, NULL, on_err, &code, &e),
			 CORRAL_OK);
	event_base_loop(s.base, EVLOOP_NONBLOCK);
	wait_busy(c2, "hang");
	corral_close(c2);
	kill(d.pid, SIGKILL);
	while (code < 0)
		event_base_loop(s.base, EVLOOP_ONCE);
	ck_assert_int_eq(code, CORRAL_E_DISCONNECTED);
	corral_close(c);
	event_base_free(s.base);
	ck_assert(hd_wait_exit(&d, 10000));
	hd_stop(&d, false);
}
END_TEST

/* ---- A fake server: answers ping, then writes scripted lines. */

struct fake {
	char dir[64], sock[128];
	pid_t pid;
};

/* A line of the script: text (with %ID% for the request's id) and an fd kind. */
struct fline {
	const char *text;
	int fd; /* 0 none, 1 pipe, 2 unsealed memfd "abc", 3 sealed memfd "abc", 4 three fds */
	size_t repeat; /* write the text this many times (0: once) */
};

/* Write s with %ID% replaced by id, and an fd per kind. */
static void fake_write(int s, const char *text, const char *id, int kind, size_t repeat)
{
	size_t cap = strlen(text) * 2 + 64, n = 0;
	char *out = malloc(cap);
	for (const char *p = text; *p;) {
		if (strncmp(p, "%ID%", 4) == 0) {
			n += (size_t)sprintf(out + n, "%s", id);
			p += 4;
		} else {
			out[n++] = *p++;
		}
	}
	int fds[3] = {-1, -1, -1}, nfd = 0;
	if (kind == 1) {
		int pp[2];
		if (pipe(pp) == 0) {
			fds[nfd++] = pp[0];
			close(pp[1]);
		}
	} else if (kind == 2 || kind == 3 || kind == 4) {
		int m = memfd_create("r", MFD_ALLOW_SEALING);
		if (write(m, "abc", 3) != 3)
			_exit(3);
		if (kind == 3)
			fcntl(m, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
		fds[nfd++] = m;
		if (kind == 4) {
			fds[nfd++] = dup(m);
			fds[nfd++] = dup(m);
		}
	}
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(3 * sizeof(int))];
	} cb;
	for (size_t r = 0; r < (repeat ? repeat : 1); r++) {
		struct iovec iov = {out, n};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		if (nfd && r == 0) {
			msg.msg_control = cb.b;
			msg.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
			struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(nfd * sizeof(int));
			memcpy(CMSG_DATA(cm), fds, nfd * sizeof(int));
		}
		if (sendmsg(s, &msg, MSG_NOSIGNAL) < 0)
			break;
	}
	for (int i = 0; i < nfd; i++)
		close(fds[i]);
	free(out);
}

/* Serve one connection at a time: ping gets version; request k gets script[k]. */
static void fake_serve(int l, const char *version, const struct fline *script, size_t n)
{
	for (;;) {
		int s = accept(l, NULL, NULL);
		if (s < 0)
			_exit(0);
		char buf[1 << 16];
		size_t len = 0, k = 0;
		for (;;) {
			char *nl;
			while (!(nl = memchr(buf, '\n', len))) {
				ssize_t r = read(s, buf + len, sizeof(buf) - len);
				if (r <= 0)
					goto next;
				len += (size_t)r;
			}
			json_t *req = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
			memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf));
			len -= (size_t)(nl + 1 - buf);
			char id[32];
			snprintf(id, sizeof(id), "%lld",
				 (long long)json_integer_value(json_object_get(req, "id")));
			const char *cmd = json_string_value(json_object_get(req, "cmd"));
			if (cmd && strcmp(cmd, "ping") == 0) {
				char line[256];
				snprintf(line, sizeof(line),
					 "{\"id\":%%ID%%,\"ok\":true,\"version\":\"%s\",\"pid\":1,"
					 "\"uptime_ms\":1}\n",
					 version);
				fake_write(s, line, id, 0, 0);
			} else if (k < n) {
				fake_write(s, script[k].text, id, script[k].fd, script[k].repeat);
				k++;
				if (k == n)
					shutdown(s, SHUT_WR);
			}
			json_decref(req);
		}
	next:
		close(s);
	}
}

static void fake_start(struct fake *f, const char *version, const struct fline *script, size_t n)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/corral-fake-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/s", f->dir);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", f->sock);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 8), 0);
	f->pid = fork();
	if (f->pid == 0)
		fake_serve(l, version, script, n);
	close(l);
}

static void fake_stop(struct fake *f)
{
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
	unlink(f->sock);
	rmdir(f->dir);
}

START_TEST(test_fake_version)
{
	struct fake f;
	struct corral *c;
	struct corral_error e;

	fake_start(&f, "99.0.0", NULL, 0);
	ck_assert_int_eq(corral_connect(f.sock, &c, &e), CORRAL_E_VERSION);
	ck_assert_msg(strstr(e.message, "99.0.0"), "%s", e.message);
	fake_stop(&f);
	fake_start(&f, "0.9.0", NULL, 0);
	ck_assert_int_eq(corral_connect(f.sock, &c, &e), CORRAL_E_VERSION);
	fake_stop(&f);
	fake_start(&f, "garbage", NULL, 0);
	ck_assert_int_eq(corral_connect(f.sock, &c, &e), CORRAL_E_VERSION);
	fake_stop(&f);
}
END_TEST

/* Every protocol error code the daemon can send maps to its enum, message kept. */
START_TEST(test_fake_every_code)
{
	static char lines[CORRAL_E_INTERNAL][200];
	struct fline script[CORRAL_E_INTERNAL];
	struct fake f;
	struct corral *c;
	struct corral_error e;
	static const char *const names[] = {
	    "bad_request",	 "unknown_command", "unknown_type",
	    "no_such_worker",	 "too_large",	    "busy",
	    "timeout",		 "worker_crashed",  "worker_error",
	    "sandbox_violation", "unavailable",	    "permission_denied",
	    "shutting_down",	 "internal"};

	for (int i = 0; i < CORRAL_E_INTERNAL; i++) {
		snprintf(lines[i], sizeof(lines[i]),
			 "{\"id\":%%ID%%,\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"msg "
			 "%d\"}}\n",
			 names[i], i);
		script[i] = (struct fline){lines[i], 0, 0};
	}
	fake_start(&f, CORRAL_CLIENT_VERSION, script, CORRAL_E_INTERNAL);
	ck_assert_int_eq(corral_connect(f.sock, &c, &e), CORRAL_OK);
	for (int i = 0; i < CORRAL_E_INTERNAL; i++) {
		char want[32];
		struct corral_result *r = NULL;
		snprintf(want, sizeof(want), "msg %d", i);
		enum corral_code rc = corral_call(c, "t", "x", 1, NULL, &r, &e);
		ck_assert_msg(rc == (enum corral_code)(i + 1), "%s: got %s", names[i],
			      corral_code_name(rc));
		ck_assert_int_eq(e.code, rc);
		ck_assert_str_eq(e.message, want);
		ck_assert_ptr_null(r);
		ck_assert_str_eq(corral_code_name(rc), names[i]);
	}
	corral_close(c);
	fake_stop(&f);
}
END_TEST

/* Hostile lines: each one, then a good reply; the library reports errors, never crashes. */
START_TEST(test_fake_hostile)
{
	static const struct fline hostile[] = {
	    {"not json\n", 0, 0},
	    {"[1,2,3]\n", 0, 0},
	    {"{\"ok\":true}\n", 0, 0},
	    {"{\"id\":%ID%}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":\"yes\"}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":false}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":false,\"error\":{\"code\":\"martian\"}}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":false,\"error\":{\"code\":7,\"message\":[]}}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":true}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":true,\"result\":17}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":true,\"result_b64\":\"!!!!\"}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":true,\"result_fd\":true}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":true,\"result_fd\":true}\n", 1, 0},
	    {"{\"id\":%ID%,\"ok\":true,\"result\":\"x\"}\n", 3, 0},
	    {"{\"id\":%ID%,\"ok\":true,\"result_fd\":true}\n", 4, 0},
	    {"{\"id\":%ID%,\"event\":[]}\n", 0, 0},
	    {"{\"id\":-5,\"ok\":true,\"result\":\"x\"}\n", 0, 0},
	    {"{\"id\":1e300,\"ok\":true,\"result\":\"x\"}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":true,\"result\":\"a\\u0000b\",\"worker\":\"w\"}\n", 0, 0},
	    {"\n\n\n{}\n\x01\x02\xff\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":true,\"result_fd\":true,\"result\":\"x\"}\n", 2, 0},
	    {"{\"id\":null,\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"m\"}}\n", 0,
	     0},
	};
	size_t n = sizeof(hostile) / sizeof(hostile[0]);

	for (size_t i = 0; i < n; i++) {
		/* The hostile line, then a good reply to the same id. */
		struct fline script[2] = {
		    hostile[i], {"{\"id\":%ID%,\"ok\":true,\"result\":\"good\"}\n", 0, 0}};
		struct fake f;
		struct corral *c;
		struct corral_error e;
		struct corral_result *r = NULL;
		fake_start(&f, CORRAL_CLIENT_VERSION, script, 2);
		ck_assert_int_eq(corral_connect(f.sock, &c, &e), CORRAL_OK);
		struct corral_call_opts o = {.wait_ms = 5000};
		enum corral_code rc = corral_call(c, "t", "x", 1, &o, &r, &e);
		if (rc == CORRAL_OK) {
			size_t len;
			corral_result_data(r, &len);
			corral_result_free(r);
		} else {
			ck_assert_msg(e.message[0], "line %zu: no message", i);
		}
		/* The connection still works, or says clearly why not. */
		rc = corral_call(c, "t", "x", 1, &o, &r, &e);
		if (rc == CORRAL_OK)
			corral_result_free(r);
		ck_assert_msg(rc == CORRAL_OK || rc == CORRAL_E_DISCONNECTED ||
				  rc == CORRAL_E_CLIENT_TIMEOUT || rc == CORRAL_E_PROTOCOL,
			      "line %zu: %s: %s", i, corral_code_name(rc), e.message);
		corral_close(c);
		fake_stop(&f);
	}

	/* A line past 1 MiB: protocol error, no unbounded buffer. */
	char *huge = malloc(3u << 20);
	memset(huge, 'a', 3u << 20);
	huge[(3u << 20) - 2] = '\n';
	huge[(3u << 20) - 1] = 0;
	struct fline script[1] = {{huge, 0, 0}};
	struct fake f;
	struct corral *c;
	struct corral_error e;
	struct corral_result *r;
	fake_start(&f, CORRAL_CLIENT_VERSION, script, 1);
	ck_assert_int_eq(corral_connect(f.sock, &c, &e), CORRAL_OK);
	ck_assert_int_eq(corral_call(c, "t", "x", 1, NULL, &r, &e), CORRAL_E_PROTOCOL);
	corral_close(c);
	fake_stop(&f);
	free(huge);

	/* The server never answers: the wait bound ends the call; the late reply is dropped. */
	struct fline slow[2] = {{"", 0, 0}, {"", 0, 0}};
	fake_start(&f, CORRAL_CLIENT_VERSION, slow, 2);
	ck_assert_int_eq(corral_connect(f.sock, &c, &e), CORRAL_OK);
	struct corral_call_opts o = {.wait_ms = 100};
	ck_assert_int_eq(corral_call(c, "t", "x", 1, &o, &r, &e), CORRAL_E_CLIENT_TIMEOUT);
	corral_close(c);
	fake_stop(&f);
}
END_TEST

/* A line over 1 MiB that never ends (the server then closes): a protocol error, not a hang. */
START_TEST(test_fake_unended_line)
{
	size_t n = (1u << 20) + 2;
	char *junk = malloc(n + 1);
	struct fake f;
	struct corral *c;
	struct corral_error e;
	json_t *reply = NULL;

	memset(junk, ' ', n);
	junk[n] = 0;
	struct fline script[1] = {{junk, 0, 0}};
	fake_start(&f, CORRAL_CLIENT_VERSION, script, 1);
	ck_assert_int_eq(corral_connect_flags(f.sock, CORRAL_CONNECT_NO_PING, &c, &e), CORRAL_OK);
	ck_assert_int_eq(corral_command(c, "stats", NULL, &reply, &e), CORRAL_E_PROTOCOL);
	ck_assert_msg(strstr(e.message, "longer than"), "%s", e.message);
	corral_close(c);
	fake_stop(&f);
	free(junk);
}
END_TEST

/* Append a line the hook saw to the string buffer arg, newline-terminated. */
static void hook_collect(const char *line, size_t len, void *arg)
{
	char *buf = arg;
	size_t at = strlen(buf);

	ck_assert_uint_lt(at + len + 1, 1024);
	memcpy(buf + at, line, len);
	buf[at + len] = '\n';
	buf[at + len + 1] = 0;
}

/*
 * What a one-shot tool needs: commands pipelined from one thread, every line
 * that answers us as received (the line hook), the connection's fd, and a
 * stream on the connection itself.
 */
START_TEST(test_fake_tool_api)
{
	static const struct fline script[] = {
	    {"{\"id\":%ID%, \"ok\":true, \"n\":1}\n", 0, 0},
	    {"{\"id\":%ID%,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"full\"}}\n", 0,
	     0},
	    {"{\"id\":%ID%,\"ok\":true}\n{\"id\":999,\"ok\":true}\n{\"id\":%ID%,\"event\":{"
	     "\"worker\":1,\"type\":\"t\",\"pid\":2,\"state\":\"idle\"}}\n",
	     0, 0},
	};
	static char seen[1024];
	struct corral_pending *p1, *p2;
	struct corral_stream *st;
	struct corral_event ev;
	struct fake f;
	struct corral *c;
	struct corral_error e;
	json_t *r1 = NULL, *r2 = NULL;

	fake_start(&f, CORRAL_CLIENT_VERSION, script, 3);
	ck_assert_int_eq(corral_connect_flags(f.sock, CORRAL_CONNECT_NO_PING, &c, &e), CORRAL_OK);
	ck_assert_int_ge(corral_fd(c), 0);
	corral_set_line_hook(c, hook_collect, seen);
	ck_assert_int_eq(corral_command_start(c, "types", NULL, &p1, &e), CORRAL_OK);
	ck_assert_int_eq(corral_command_start(c, "list", NULL, &p2, &e), CORRAL_OK);
	ck_assert_int_eq(corral_command_wait(p1, &r1, &e), CORRAL_OK);
	ck_assert_int_eq(json_integer_value(json_object_get(r1, "n")), 1);
	ck_assert_int_eq(corral_command_wait(p2, &r2, &e), CORRAL_E_BUSY);
	ck_assert_str_eq(e.message, "full");
	ck_assert_ptr_nonnull(json_object_get(r2, "error")); /* the error reply, whole */
	json_decref(r1);
	json_decref(r2);

	ck_assert_int_eq(corral_watch_take(c, &st, &e), CORRAL_OK);
	ck_assert_int_eq(corral_stream_next(st, 5000, &ev, &e), CORRAL_OK);
	ck_assert_str_eq(ev.state, "idle");
	corral_event_clear(&ev);
	ck_assert_int_eq(corral_stream_next(st, 5000, &ev, &e), CORRAL_E_DISCONNECTED);
	corral_stream_close(st);
	ck_assert_str_eq(seen, "{\"id\":1, \"ok\":true, \"n\":1}\n"
			       "{\"id\":2,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":"
			       "\"full\"}}\n"
			       "{\"id\":3,\"ok\":true}\n"
			       "{\"id\":3,\"event\":{\"worker\":1,\"type\":\"t\",\"pid\":2,"
			       "\"state\":\"idle\"}}\n");
	fake_stop(&f);
}
END_TEST

/* examples/client: connect, sha256 of a file, print the digest. */
START_TEST(test_example)
{
	struct hd d;
	hd_up(&d, CFG);
	const char *ex = getenv("EXAMPLE_CLIENT");
	ck_assert_ptr_nonnull(ex);
	char path[160], want[65];
	snprintf(path, sizeof(path), "%s/in", d.dir);
	unsigned char buf[100000];
	h_pattern(buf, 0, sizeof(buf));
	FILE *fp = fopen(path, "w");
	ck_assert_uint_eq(fwrite(buf, 1, sizeof(buf), fp), sizeof(buf));
	fclose(fp);
	h_sha256_hex(buf, sizeof(buf), want);
	setenv("CORRAL_SOCKET", d.sock, 1);
	const char *argv[] = {ex, path, NULL};
	char *out, *err;
	size_t outlen;
	int st = h_run(argv, NULL, 0, &out, &outlen, &err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "example failed: %s", err);
	ck_assert_uint_eq(outlen, 65);
	ck_assert(memcmp(out, want, 64) == 0 && out[64] == '\n');
	free(out);
	free(err);
	/* Without a daemon: a clear error, exit 1. */
	setenv("CORRAL_SOCKET", "/nonexistent/s", 1);
	st = h_run(argv, NULL, 0, &out, &outlen, &err);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	ck_assert_msg(strstr(err, "/nonexistent/s"), "%s", err);
	free(out);
	free(err);
	hd_stop(&d, true);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("client");

	h_add(s, test_commands, 120);
	h_add(s, test_pipelined_threads, 120);
	h_add(s, test_payload_sizes, 240);
	h_add(s, test_error_codes, 120);
	h_add(s, test_connect_errors, 60);
	h_add(s, test_restart_mid_call, 60);
	h_add(s, test_async, 60);
	h_add(s, test_fake_version, 30);
	h_add(s, test_fake_every_code, 30);
	h_add(s, test_fake_hostile, 60);
	h_add(s, test_fake_unended_line, 30);
	h_add(s, test_fake_tool_api, 30);
	h_add(s, test_example, 60);
	return h_main(s);
}
