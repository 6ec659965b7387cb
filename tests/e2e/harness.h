/*
 * harness.h - end-to-end test harness: run a real corrald in a temp dir, talk
 * to it over its UNIX socket (NDJSON + SCM_RIGHTS), inspect its processes.
 *
 * Every Check test runs forked with its own daemon; the daemon is started with
 * PR_SET_PDEATHSIG so a failing test never leaks it, and an atexit handler
 * removes the temp dir and prints the daemon's log tail on failure.
 */
#ifndef CORRAL_E2E_HARNESS_H
#define CORRAL_E2E_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>
#include <jansson.h>

/* One running daemon. */
struct hd {
	char dir[64];	/* temp dir (mkdtemp) */
	char sock[128]; /* DIR/s.sock */
	char cfg[128];	/* DIR/corral.json (written when a config is given) */
	char log[128];	/* DIR/log: the daemon's stderr */
	pid_t pid;
	int status; /* wait status once reaped */
	bool reaped;
};

/* One client connection. */
struct hc {
	int fd;
	char *buf; /* bytes read, not yet split into lines */
	size_t len, cap;
	uint64_t base; /* stream offset of buf[0] */
	int rfds[64];  /* fds received, not yet attached to a line */
	uint64_t roff[64];
	unsigned nrfds;
	struct hline *backlog; /* parsed lines not yet consumed, in order */
	json_int_t next_id;
	bool eof;
};

/* A received line: parsed JSON (NULL when not JSON) and the fd that rode with it. */
struct hline {
	json_t *j;
	int fd;
	struct hline *next;
};

/* Environment: paths of the binaries (from meson). */
const char *h_corrald(void);
const char *h_corralctl(void);
const char *h_upper(void);
/* True under a sanitizer or with $CORRAL_TEST_SMALL: scale heavy tests down. */
bool h_small(void);
/* Landlock in this kernel (the daemon then guards file payloads with it). */
bool h_landlock(void);

/* Milliseconds on the monotonic clock. */
int64_t h_now_ms(void);

/* Make the temp dir; write config (printf-style, NULL for none); nothing started. */
void hd_init(struct hd *d, const char *cfg_fmt, ...) __attribute__((format(printf, 2, 3)));
/* (Re)write the config file. */
void hd_write_config(struct hd *d, const char *cfg_fmt, ...) __attribute__((format(printf, 2, 3)));
/* Start corrald (extra args NULL-terminated) and wait until its socket accepts. */
void hd_start(struct hd *d);
/* Start corrald without waiting; returns its pid. argv after the program name. */
pid_t hd_spawn(struct hd *d, const char *const *args);
/* hd_init + hd_start in one. */
void hd_up(struct hd *d, const char *cfg_fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wait for the daemon to exit (bounded); returns true when it did. */
bool hd_wait_exit(struct hd *d, int timeout_ms);
/* Graceful stop (shutdown request), SIGKILL fallback; asserts it exited 0 when strict. */
void hd_stop(struct hd *d, bool strict);
/* Contents of the daemon's log (malloc'd). */
char *hd_log(const struct hd *d);

/* Connect to a socket path; -1 on failure (no assert). */
int h_connect_path(const char *path);
/* Connect a client to d (bounded retries); asserts. */
void hc_open(struct hc *c, const struct hd *d);
void hc_close(struct hc *c);
/* Send raw bytes (whole), with an optional fd (-1 for none). */
void hc_send_raw(struct hc *c, const void *data, size_t len, int fd);
/* Send one request: fmt is a JSON object without "id"; the id is added; returns it. */
json_int_t hc_sendf(struct hc *c, int fd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Next line, in order (backlog first); NULL on EOF/timeout. ret_fd may be NULL. */
json_t *hc_next(struct hc *c, int timeout_ms, int *ret_fd);
/* The reply whose id is the integer id (events with that id are skipped into backlog). */
json_t *hc_wait_id(struct hc *c, json_int_t id, int timeout_ms, int *ret_fd);
/* The reply with id null. */
json_t *hc_wait_null(struct hc *c, int timeout_ms);
/* Send and wait for the reply (asserts one comes within the default bound). */
json_t *hc_rpc(struct hc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
json_t *hc_rpc_fd(struct hc *c, int fd, int *ret_fd, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Next event line ({"id":..,"event":{..}}) for stream id sid; returns the event (owned). */
json_t *hc_next_event(struct hc *c, json_int_t sid, int timeout_ms);
/* True when the peer closed (read returns EOF within timeout). */
bool hc_wait_eof(struct hc *c, int timeout_ms);

/* Reply helpers. */
bool h_ok(json_t *r);
/* Error code of a reply or "" (never NULL). */
const char *h_err(json_t *r);
const char *h_errmsg(json_t *r);
json_int_t h_int(json_t *o, const char *key);
const char *h_str(json_t *o, const char *key);
/* Compact dump of j (static buffer, for messages). */
const char *h_dump(json_t *j);

/* Assert a reply is ok / has an error code, with the reply in the message. */
#define H_OK(r) ck_assert_msg(h_ok(r), "expected ok, got %s", h_dump(r))
#define H_ERR(r, code)                                                                             \
	ck_assert_msg(!h_ok(r) && strcmp(h_err(r), code) == 0, "expected error %s, got %s", code,  \
		      h_dump(r))

/* Start a watch on a new connection; returns the watch request id. */
json_int_t hc_watch(struct hc *w, const struct hd *d);
/* Wait for a watch event matching worker id (0 any) and state; returns it (owned). */
json_t *h_wait_state(struct hc *w, json_int_t sid, json_int_t worker, const char *state,
		     int timeout_ms);

/* Process inspection. */
bool h_pid_alive(pid_t pid); /* exists and is not a zombie */
bool h_wait_pid_gone(pid_t pid, int timeout_ms);
int h_count_children(pid_t ppid, int *ret_zombies);
int h_count_fds(pid_t pid);
long h_rss_kb(pid_t pid);

/* list workers (optionally of type); returns the "workers" array (owned). */
json_t *h_list(struct hc *c, const char *type);
/* Poll list until n workers of type exist (all idle when idle); bounded. */
json_t *h_wait_workers(struct hc *c, const char *type, size_t n, bool idle, int timeout_ms);

/* A sealed memfd holding len bytes produced by fill(buf, off, len). */
int h_memfd_pattern(size_t len);
void h_pattern(unsigned char *buf, uint64_t off, size_t len);
/* Read a whole fd from offset 0 (malloc'd, *len set). */
unsigned char *h_read_fd(int fd, size_t *len);
/* Base64 helpers (malloc'd). */
char *h_b64(const unsigned char *p, size_t n);
unsigned char *h_unb64(const char *s, size_t *n);
/* sha256 hex of a buffer / an fd (content from offset 0). */
void h_sha256_hex(const unsigned char *p, size_t n, char out[65]);
void h_sha256_fd_hex(int fd, char out[65]);

/* Run a program, feed stdin, capture stdout/stderr; returns wait status. */
int h_run(const char *const *argv, const void *in, size_t inlen, char **out, size_t *outlen,
	  char **err);

/* Add a test (its own tcase, with a timeout) to suite s. */
TCase *h_tcase(Suite *s, const char *name, int timeout_s);
#define h_add(s, fn, timeout_s) tcase_add_test(h_tcase((s), #fn, (timeout_s)), fn)
/* Run suite s (forked); returns exit code for main. */
int h_main(Suite *s);

#endif
