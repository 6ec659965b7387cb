/*
 * test_config.c - Check unit tests of daemon/config.c: the DESIGN.md example,
 * defaults, the embedded default, every class of error with its exact JSON path,
 * and the canonical form used by reload.
 */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The example of DESIGN.md, "Configuration", verbatim. */
static const char design_example[] =
    "{\n"
    "  \"socket\": {\"path\": \"/run/corral/corrald.sock\", \"mode\": \"0660\", \"group\": "
    "\"corral\"},\n"
    "  \"allow\": {\"uids\": [1000], \"groups\": [\"corral\"]},\n"
    "  \"metrics\": {\"listen\": \"127.0.0.1:9464\"},\n"
    "  \"types\": {\n"
    "    \"echo\":  {\"builtin\": \"echo\", \"pool\": {\"min\": 1, \"max\": 4}},\n"
    "    \"thumb\": {\n"
    "      \"mode\": \"stdio\",\n"
    "      \"exec\": [\"/usr/bin/convert\", \"-\", \"-resize\", \"128x128\", \"png:-\"],\n"
    "      \"pool\":    {\"min\": 0, \"max\": 8, \"idle_timeout_ms\": 10000, \"max_requests\": "
    "500, \"queue\": 1024,\n"
    "                  \"isolate\": \"none\", \"max_per_key\": 1},\n"
    "      \"restart\": {\"backoff_ms\": [100, 30000], \"burst\": 5, \"interval_ms\": 10000},\n"
    "      \"limits\":  {\"timeout_ms\": 5000, \"memory_mb\": 256, \"cpu_s\": 10, \"nofile\": "
    "64, \"nproc\": 16, \"output_kb\": 65536},\n"
    "      \"sandbox\": {\"namespaces\": [\"user\", \"pid\", \"net\", \"ipc\", \"uts\", "
    "\"mount\"], \"seccomp\": \"default\",\n"
    "                  \"readonly\": [\"/usr\", \"/lib\", \"/lib64\", \"/etc\"], \"tmpfs\": "
    "[\"/tmp\"], \"network\": false,\n"
    "                  \"user\": \"nobody\"},\n"
    "      \"ring_kb\": 1024\n"
    "    }\n"
    "  }\n"
    "}\n";

/* All of ERRS on one line each, for failure messages. */
static char *errs_text(const struct config_errors *errs)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < errs->n; i++)
		len += strlen(errs->msgs[i]) + 3;
	s = calloc(1, len);
	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < errs->n; i++) {
		strcat(s, "\n  ");
		strcat(s, errs->msgs[i]);
	}
	return s;
}

/* Load JSON that must be valid. */
static struct config *load_ok(const char *json)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	int r = config_load_string(json, &c, &errs);

	if (r != 0 || errs.n != 0) {
		char *t = errs_text(&errs);

		ck_abort_msg("config rejected:%s\n--- for: %s", t, json);
		free(t);
	}
	ck_assert_ptr_nonnull(c);
	return c;
}

/* Load JSON that must be rejected with exactly the N messages given (in any order). */
static void expect_errors(const char *json, size_t n, ...)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	int r = config_load_string(json, &c, &errs);
	char *t = errs_text(&errs);
	va_list ap;

	ck_assert_msg(r == -1, "config accepted: %s", json);
	ck_assert_ptr_null(c);
	ck_assert_msg(errs.n == n, "want %zu errors, got %zu:%s\n--- for: %s", n, errs.n, t, json);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		const char *want = va_arg(ap, const char *);
		bool found = false;

		for (size_t k = 0; k < errs.n; k++)
			found = found || strcmp(errs.msgs[k], want) == 0;
		ck_assert_msg(found, "missing error \"%s\"; got:%s\n--- for: %s", want, t, json);
	}
	va_end(ap);
	free(t);
	config_errors_free(&errs);
	ck_assert_uint_eq(errs.n, 0);
	ck_assert_ptr_null(errs.msgs);
}

/* expect_errors() for one type named t whose body is BODY. */
static void expect_type_error(const char *body, const char *want)
{
	char json[4096];

	snprintf(json, sizeof json, "{\"types\": {\"t\": %s}}", body);
	expect_errors(json, 1, want);
}

/* Load one type named t whose body is BODY; the config is in *ret. */
static const struct type_config *load_type(const char *body, struct config **ret)
{
	char json[4096];

	snprintf(json, sizeof json, "{\"types\": {\"t\": %s}}", body);
	*ret = load_ok(json);
	ck_assert_uint_eq((*ret)->ntypes, 1);
	return &(*ret)->types[0];
}

/* Number of entries of a NULL-terminated vector. */
static size_t strv_len(char *const *v)
{
	size_t n = 0;

	ck_assert_ptr_nonnull(v);
	while (v[n])
		n++;
	return n;
}

/* Assert every default of DESIGN.md but mode/builtin/exec/seccomp. */
static void assert_type_defaults(const struct type_config *t)
{
	static const char *const ro[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"};
	struct stat st;
	size_t k = 0;

	ck_assert_uint_eq(t->pool.min, 0);
	ck_assert_uint_eq(t->pool.max, 4);
	ck_assert_uint_eq(t->pool.idle_timeout_ms, 10000);
	ck_assert_uint_eq(t->pool.max_requests, 0);
	ck_assert_uint_eq(t->pool.queue, 64);
	ck_assert_int_eq(t->pool.isolate, ISOLATE_NONE);
	ck_assert_uint_eq(t->pool.max_per_key, 1);
	ck_assert_uint_eq(t->restart.backoff_ms[0], 100);
	ck_assert_uint_eq(t->restart.backoff_ms[1], 30000);
	ck_assert_uint_eq(t->restart.burst, 5);
	ck_assert_uint_eq(t->restart.interval_ms, 10000);
	ck_assert_uint_eq(t->restart.healthy_ms, 1000);
	ck_assert_uint_eq(t->limits.timeout_ms, 30000);
	ck_assert_uint_eq(t->limits.memory_mb, 0);
	ck_assert_uint_eq(t->limits.cpu_s, 0);
	ck_assert_uint_eq(t->limits.nofile, 256);
	ck_assert_uint_eq(t->limits.nproc, 64);
	ck_assert_uint_eq(t->limits.output_kb, 65536);
	ck_assert_uint_eq(t->limits.start_timeout_ms, 10000);
	ck_assert_uint_eq(t->sandbox.namespaces, NS_ALL);
	/* readonly: those of the list that exist here, in order. */
	for (size_t i = 0; i < sizeof ro / sizeof *ro; i++) {
		if (lstat(ro[i], &st) == 0) {
			ck_assert_ptr_nonnull(t->sandbox.readonly[k]);
			ck_assert_str_eq(t->sandbox.readonly[k], ro[i]);
			k++;
		}
	}
	ck_assert_uint_eq(strv_len(t->sandbox.readonly), k);
	ck_assert_uint_eq(strv_len(t->sandbox.tmpfs), 1);
	ck_assert_str_eq(t->sandbox.tmpfs[0], "/tmp");
	ck_assert(!t->sandbox.network);
	ck_assert_ptr_null(t->sandbox.user);
	ck_assert_uint_eq(t->ring_kb, 1024);
	ck_assert_ptr_nonnull(t->canonical);
}

START_TEST(test_design_example)
{
	struct config *c = load_ok(design_example);
	const struct type_config *e, *t;

	ck_assert_str_eq(c->socket_path, "/run/corral/corrald.sock");
	ck_assert_uint_eq(c->socket_mode, 0660);
	ck_assert_str_eq(c->socket_group, "corral");
	ck_assert_uint_eq(c->n_allow_uids, 1);
	ck_assert_uint_eq(c->allow_uids[0], 1000);
	ck_assert_uint_eq(strv_len(c->allow_groups), 1);
	ck_assert_str_eq(c->allow_groups[0], "corral");
	ck_assert_str_eq(c->metrics_listen, "127.0.0.1:9464");
	ck_assert_uint_eq(c->ntypes, 2);
	ck_assert_str_eq(c->types[0].name, "echo"); /* file order */
	ck_assert_str_eq(c->types[1].name, "thumb");

	e = config_find_type(c, "echo");
	ck_assert_ptr_eq(e, &c->types[0]);
	ck_assert_int_eq(e->mode, MODE_BUILTIN);
	ck_assert_str_eq(e->builtin, "echo");
	ck_assert_ptr_null(e->exec);
	ck_assert_uint_eq(e->pool.min, 1);
	ck_assert_uint_eq(e->pool.max, 4);
	ck_assert_int_eq(e->sandbox.seccomp, SECCOMP_STRICT);

	t = config_find_type(c, "thumb");
	ck_assert_ptr_eq(t, &c->types[1]);
	ck_assert_int_eq(t->mode, MODE_STDIO);
	ck_assert_ptr_null(t->builtin);
	ck_assert_uint_eq(strv_len(t->exec), 5);
	ck_assert_str_eq(t->exec[0], "/usr/bin/convert");
	ck_assert_str_eq(t->exec[1], "-");
	ck_assert_str_eq(t->exec[2], "-resize");
	ck_assert_str_eq(t->exec[3], "128x128");
	ck_assert_str_eq(t->exec[4], "png:-");
	ck_assert_uint_eq(t->pool.min, 0);
	ck_assert_uint_eq(t->pool.max, 8);
	ck_assert_uint_eq(t->pool.idle_timeout_ms, 10000);
	ck_assert_uint_eq(t->pool.max_requests, 500);
	ck_assert_uint_eq(t->pool.queue, 1024);
	ck_assert_int_eq(t->pool.isolate, ISOLATE_NONE);
	ck_assert_uint_eq(t->pool.max_per_key, 1);
	ck_assert_uint_eq(t->restart.backoff_ms[0], 100);
	ck_assert_uint_eq(t->restart.backoff_ms[1], 30000);
	ck_assert_uint_eq(t->restart.burst, 5);
	ck_assert_uint_eq(t->restart.interval_ms, 10000);
	ck_assert_uint_eq(t->limits.timeout_ms, 5000);
	ck_assert_uint_eq(t->limits.memory_mb, 256);
	ck_assert_uint_eq(t->limits.cpu_s, 10);
	ck_assert_uint_eq(t->limits.nofile, 64);
	ck_assert_uint_eq(t->limits.nproc, 16);
	ck_assert_uint_eq(t->limits.output_kb, 65536);
	ck_assert_uint_eq(t->limits.start_timeout_ms, 10000); /* not given: default */
	ck_assert_uint_eq(t->sandbox.namespaces, NS_ALL);
	ck_assert_int_eq(t->sandbox.seccomp, SECCOMP_DEFAULT);
	ck_assert_uint_eq(strv_len(t->sandbox.readonly), 4);
	ck_assert_str_eq(t->sandbox.readonly[0], "/usr");
	ck_assert_str_eq(t->sandbox.readonly[1], "/lib");
	ck_assert_str_eq(t->sandbox.readonly[2], "/lib64");
	ck_assert_str_eq(t->sandbox.readonly[3], "/etc");
	ck_assert_uint_eq(strv_len(t->sandbox.tmpfs), 1);
	ck_assert_str_eq(t->sandbox.tmpfs[0], "/tmp");
	ck_assert(!t->sandbox.network);
	ck_assert_str_eq(t->sandbox.user, "nobody");
	ck_assert_uint_eq(t->ring_kb, 1024);
	ck_assert_ptr_nonnull(t->canonical);
	ck_assert_str_ne(t->canonical, e->canonical);

	ck_assert_ptr_null(config_find_type(c, "nope"));
	ck_assert_ptr_null(config_find_type(c, ""));
	ck_assert_ptr_null(config_find_type(NULL, "echo"));
	config_free(c);
}
END_TEST

START_TEST(test_defaults)
{
	struct config *c = load_ok("{\"types\": {\"n\": {\"exec\": [\"/bin/true\"]}, "
				   "\"b\": {\"builtin\": \"sha256\"}, "
				   "\"s\": {\"mode\": \"stdio\", \"exec\": [\"/bin/cat\"]}}}");
	const struct type_config *n = config_find_type(c, "n");
	const struct type_config *b = config_find_type(c, "b");
	const struct type_config *s = config_find_type(c, "s");

	ck_assert_ptr_null(c->socket_path);
	ck_assert_uint_eq(c->socket_mode, 0660);
	ck_assert_ptr_null(c->socket_group);
	ck_assert_uint_eq(c->n_allow_uids, 0);
	ck_assert_uint_eq(strv_len(c->allow_groups), 0);
	ck_assert_ptr_null(c->metrics_listen);

	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->mode, MODE_NATIVE);
	ck_assert_ptr_null(n->builtin);
	ck_assert_uint_eq(strv_len(n->exec), 1);
	ck_assert_str_eq(n->exec[0], "/bin/true");
	ck_assert_int_eq(n->sandbox.seccomp, SECCOMP_DEFAULT);
	assert_type_defaults(n);

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(b->mode, MODE_BUILTIN);
	ck_assert_str_eq(b->builtin, "sha256");
	ck_assert_ptr_null(b->exec);
	ck_assert_int_eq(b->sandbox.seccomp, SECCOMP_STRICT);
	assert_type_defaults(b);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(s->mode, MODE_STDIO);
	ck_assert_int_eq(s->sandbox.seccomp, SECCOMP_DEFAULT);
	assert_type_defaults(s);
	config_free(c);
}
END_TEST

START_TEST(test_explicit_values)
{
	struct config *c;
	const struct type_config *t = load_type(
	    "{\"builtin\": \"echo\", \"mode\": \"builtin\","
	    " \"pool\": {\"isolate\": \"key\", \"max\": 6, \"max_per_key\": 3, \"queue\": 0},"
	    " \"sandbox\": {\"namespaces\": [\"pid\", \"user\"], \"seccomp\": \"none\","
	    "  \"readonly\": [], \"tmpfs\": [\"/tmp\", \"/run/x\"], \"user\": \"65534\"},"
	    " \"limits\": {\"nofile\": 16, \"memory_mb\": 0, \"cpu_s\": 0},"
	    " \"restart\": {\"backoff_ms\": [1, 1], \"burst\": 0, \"healthy_ms\": 0},"
	    " \"ring_kb\": 4}",
	    &c);

	ck_assert_int_eq(t->mode, MODE_BUILTIN);
	ck_assert_int_eq(t->pool.isolate, ISOLATE_KEY);
	ck_assert_uint_eq(t->pool.max, 6);
	ck_assert_uint_eq(t->pool.max_per_key, 3);
	ck_assert_uint_eq(t->pool.queue, 0);
	ck_assert_uint_eq(t->sandbox.namespaces, NS_PID | NS_USER);
	ck_assert_int_eq(t->sandbox.seccomp, SECCOMP_NONE); /* explicit beats builtin's strict */
	ck_assert_uint_eq(strv_len(t->sandbox.readonly), 0);
	ck_assert_uint_eq(strv_len(t->sandbox.tmpfs), 2);
	ck_assert_str_eq(t->sandbox.tmpfs[1], "/run/x");
	ck_assert_str_eq(t->sandbox.user, "65534");
	ck_assert_uint_eq(t->limits.nofile, 16);
	ck_assert_uint_eq(t->restart.backoff_ms[0], 1);
	ck_assert_uint_eq(t->restart.backoff_ms[1], 1);
	ck_assert_uint_eq(t->restart.burst, 0);
	ck_assert_uint_eq(t->restart.healthy_ms, 0);
	ck_assert_uint_eq(t->ring_kb, 4);
	config_free(c);

	/* network: true drops the default "net" namespace. */
	t = load_type("{\"builtin\": \"echo\", \"sandbox\": {\"network\": true}}", &c);
	ck_assert(t->sandbox.network);
	ck_assert_uint_eq(t->sandbox.namespaces, NS_ALL & ~NS_NET);
	config_free(c);
	t = load_type("{\"builtin\": \"echo\", \"sandbox\": {\"network\": true, \"namespaces\": "
		      "[\"user\"]}}",
		      &c);
	ck_assert_uint_eq(t->sandbox.namespaces, NS_USER);
	config_free(c);
}
END_TEST

START_TEST(test_socket_allow_metrics)
{
	static const char *const good[] = {"127.0.0.1:9464", "127.1.2.3:1", "localhost:65535",
					   "[::1]:80", "/run/corral/metrics.sock"};
	static const char *const bad[] = {
	    "0.0.0.0:9464",    "10.0.0.1:80",	"127.0.0.1",	  "127.0.0.1:0",
	    "127.0.0.1:65536", "localhost:",	"[::]:80",	  "example.com:80",
	    "run/m.sock",      "127.0.0.1:+80", "127.0.0.256:80", ":80"};
	char json[512], want[512];
	struct config *c;

	c = load_ok("{\"socket\": {\"mode\": \"600\"}, \"allow\": {\"uids\": [0, 4294967294]},"
		    " \"types\": {\"e\": {\"builtin\": \"echo\"}}}");
	ck_assert_uint_eq(c->socket_mode, 0600);
	ck_assert_uint_eq(c->n_allow_uids, 2);
	ck_assert_uint_eq(c->allow_uids[1], 4294967294u);
	config_free(c);

	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		snprintf(json, sizeof json,
			 "{\"metrics\": {\"listen\": \"%s\"}, \"types\": {\"e\": {\"builtin\": "
			 "\"echo\"}}}",
			 good[i]);
		c = load_ok(json);
		ck_assert_str_eq(c->metrics_listen, good[i]);
		config_free(c);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(json, sizeof json,
			 "{\"metrics\": {\"listen\": \"%s\"}, \"types\": {\"e\": {\"builtin\": "
			 "\"echo\"}}}",
			 bad[i]);
		snprintf(want, sizeof want,
			 "metrics.listen: must be a loopback host:port (127.x.x.x, localhost or "
			 "[::1], port 1..65535) or an absolute UNIX socket path, not \"%s\"",
			 bad[i]);
		expect_errors(json, 1, want);
	}

	expect_errors("{\"socket\": {\"path\": \"corrald.sock\", \"mode\": \"0668\", \"group\": 5,"
		      " \"owner\": \"x\"}, \"types\": {\"e\": {\"builtin\": \"echo\"}}}",
		      4, "socket.owner: unknown key", "socket.path: must be an absolute path",
		      "socket.mode: must be an octal mode string such as \"0660\", not \"0668\"",
		      "socket.group: must be a string, not an integer");
	expect_errors("{\"socket\": {\"mode\": 432}, \"types\": {\"e\": {\"builtin\": \"echo\"}}}",
		      1, "socket.mode: must be a string, not an integer");
	expect_errors("{\"socket\": {\"mode\": \"04660\"}, \"types\": {\"e\": {\"builtin\": "
		      "\"echo\"}}}",
		      1,
		      "socket.mode: must be an octal mode string such as \"0660\", not \"04660\"");
	expect_errors(
	    "{\"socket\": {\"path\": \"/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}, \"types\": {\"e\": {\"builtin\": "
	    "\"echo\"}}}",
	    1, "socket.path: must be at most 107 bytes long");
	expect_errors("{\"allow\": {\"uids\": [1000, -1, \"2\", 4294967295], \"groups\": [\"ok\", "
		      "\"\", 7], \"users\": []}, \"types\": {\"e\": {\"builtin\": \"echo\"}}}",
		      6, "allow.users: unknown key", "allow.uids[1]: must be >= 0",
		      "allow.uids[2]: must be an integer, not a string",
		      "allow.uids[3]: must be <= 4294967294",
		      "allow.groups[1]: must be a group name or numeric id of 1 to 256 characters",
		      "allow.groups[2]: must be a string, not an integer");
	expect_errors("{\"allow\": [], \"metrics\": \"x\", \"socket\": null, \"types\": {\"e\": "
		      "{\"builtin\": \"echo\"}}}",
		      3, "allow: must be an object, not an array",
		      "metrics: must be an object, not a string",
		      "socket: must be an object, not null");
}
END_TEST

START_TEST(test_embedded_default)
{
	struct config *c = config_default();
	const struct type_config *e, *s;

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->ntypes, 2);
	ck_assert_ptr_null(c->socket_path);
	ck_assert_uint_eq(c->socket_mode, 0660);
	ck_assert_ptr_null(c->metrics_listen);
	e = config_find_type(c, "echo");
	s = config_find_type(c, "sha256");
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(e->mode, MODE_BUILTIN);
	ck_assert_str_eq(e->builtin, "echo");
	ck_assert_ptr_null(e->exec);
	ck_assert_int_eq(e->sandbox.seccomp, SECCOMP_STRICT);
	assert_type_defaults(e);
	ck_assert_int_eq(s->mode, MODE_BUILTIN);
	ck_assert_str_eq(s->builtin, "sha256");
	assert_type_defaults(s);
	ck_assert_str_ne(e->canonical, s->canonical);
	config_free(c);
	config_free(NULL);
}
END_TEST

START_TEST(test_unknown_keys)
{
	expect_errors("{\"types\": {\"echo\": {\"builtin\": \"echo\"}}, \"sokcet\": {}}", 1,
		      "sokcet: unknown key");
	expect_errors("{\"types\": {\"echo\": {\"builtin\": \"echo\", \"mxa\": 4}}}", 1,
		      "types.echo.mxa: unknown key");
	expect_errors("{\"types\": {\"echo\": {\"builtin\": \"echo\", \"pool\": {\"mxa\": 4}}}}", 1,
		      "types.echo.pool.mxa: unknown key");
	expect_type_error("{\"builtin\": \"echo\", \"restart\": {\"bursts\": 1}}",
			  "types.t.restart.bursts: unknown key");
	expect_type_error("{\"builtin\": \"echo\", \"limits\": {\"memory\": 1}}",
			  "types.t.limits.memory: unknown key");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"net\": true}}",
			  "types.t.sandbox.net: unknown key");
	expect_errors("{\"metrics\": {\"port\": 1}, \"types\": {\"e\": {\"builtin\": \"echo\"}}}",
		      1, "metrics.port: unknown key");
	/* Unprintable bytes of a key are escaped in the path. */
	expect_type_error("{\"builtin\": \"echo\", \"a\\nb\": 1}", "types.t.a\\x0ab: unknown key");
}
END_TEST

START_TEST(test_wrong_types)
{
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"max\": \"4\"}}",
			  "types.t.pool.max: must be an integer, not a string");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"max\": 4.0}}",
			  "types.t.pool.max: must be an integer, not a real number");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"min\": true}}",
			  "types.t.pool.min: must be an integer, not a boolean");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"queue\": -1}}",
			  "types.t.pool.queue: must be >= 0");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": []}",
			  "types.t.pool: must be an object, not an array");
	expect_type_error("{\"builtin\": 1}", "types.t.builtin: must be a string, not an integer");
	expect_type_error("{\"builtin\": \"echo\", \"mode\": null}",
			  "types.t.mode: must be a string, not null");
	expect_type_error("{\"exec\": \"/bin/true\"}",
			  "types.t.exec: must be an array, not a string");
	expect_type_error("{\"exec\": [\"/bin/true\", 1]}",
			  "types.t.exec[1]: must be a string, not an integer");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"network\": 0}}",
			  "types.t.sandbox.network: must be true or false, not an integer");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"namespaces\": \"pid\"}}",
			  "types.t.sandbox.namespaces: must be an array, not a string");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"readonly\": [\"/usr\", {}]}}",
			  "types.t.sandbox.readonly[1]: must be a string, not an object");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"user\": 65534}}",
			  "types.t.sandbox.user: must be a string, not an integer");
	expect_type_error("{\"builtin\": \"echo\", \"ring_kb\": 1024.5}",
			  "types.t.ring_kb: must be an integer, not a real number");
	expect_type_error("[]", "types.t: must be an object, not an array");
	expect_errors("{\"types\": []}", 1, "types: must be an object, not an array");
	expect_errors("[1, 2]", 1, "(root): must be a JSON object, not an array");
	expect_errors("42", 1, "(root): must be a JSON object, not an integer");
}
END_TEST

START_TEST(test_pool_values)
{
	expect_errors("{\"types\": {\"thumb\": {\"builtin\": \"echo\", \"pool\": {\"min\": 2, "
		      "\"max\": 1}}}}",
		      1, "types.thumb.pool.max: must be >= pool.min (2)");
	/* max left at its default: the given min is to blame. */
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"min\": 5}}",
			  "types.t.pool.min: must be <= pool.max (4)");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"max\": 0}}",
			  "types.t.pool.max: must be >= 1");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"max\": 1025}}",
			  "types.t.pool.max: must be <= 1024");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"max_per_key\": 0}}",
			  "types.t.pool.max_per_key: must be >= 1");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"max_per_key\": 5}}",
			  "types.t.pool.max_per_key: must be <= pool.max (4)");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"queue\": 1000001}}",
			  "types.t.pool.queue: must be <= 1000000");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"isolate\": \"tenant\"}}",
			  "types.t.pool.isolate: must be \"none\" or \"key\", not \"tenant\"");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"idle_timeout_ms\": 604800001}}",
			  "types.t.pool.idle_timeout_ms: must be <= 604800000");
	/* An invalid min is not compared with max. */
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"min\": -3, \"max\": 1}}",
			  "types.t.pool.min: must be >= 0");

	struct config *c;
	const struct type_config *t =
	    load_type("{\"builtin\": \"echo\", \"pool\": {\"min\": 4, \"max\": 4, "
		      "\"queue\": 1000000, \"max_requests\": 0, \"idle_timeout_ms\": 0}}",
		      &c);
	ck_assert_uint_eq(t->pool.min, 4);
	ck_assert_uint_eq(t->pool.queue, 1000000);
	ck_assert_uint_eq(t->pool.idle_timeout_ms, 0);
	config_free(c);
}
END_TEST

START_TEST(test_restart_limits_ring)
{
	expect_type_error("{\"builtin\": \"echo\", \"restart\": {\"backoff_ms\": [0, 5]}}",
			  "types.t.restart.backoff_ms[0]: must be >= 1");
	expect_type_error("{\"builtin\": \"echo\", \"restart\": {\"backoff_ms\": [500, 100]}}",
			  "types.t.restart.backoff_ms[1]: must be >= backoff_ms[0] (500)");
	expect_type_error(
	    "{\"builtin\": \"echo\", \"restart\": {\"backoff_ms\": [100]}}",
	    "types.t.restart.backoff_ms: must be an array of two integers [first, max], not an "
	    "array");
	expect_type_error("{\"builtin\": \"echo\", \"restart\": {\"interval_ms\": 0}}",
			  "types.t.restart.interval_ms: must be >= 1");
	expect_type_error("{\"builtin\": \"echo\", \"restart\": {\"healthy_ms\": -1}}",
			  "types.t.restart.healthy_ms: must be >= 0");
	expect_type_error("{\"builtin\": \"echo\", \"restart\": {\"healthy_ms\": \"1s\"}}",
			  "types.t.restart.healthy_ms: must be an integer, not a string");
	expect_type_error("{\"builtin\": \"echo\", \"restart\": {\"healthy_ms\": 604800001}}",
			  "types.t.restart.healthy_ms: must be <= 604800000");
	expect_type_error("{\"builtin\": \"echo\", \"limits\": {\"timeout_ms\": 0}}",
			  "types.t.limits.timeout_ms: must be >= 1");
	expect_type_error("{\"builtin\": \"echo\", \"limits\": {\"start_timeout_ms\": 0}}",
			  "types.t.limits.start_timeout_ms: must be >= 1");
	expect_type_error("{\"builtin\": \"echo\", \"limits\": {\"output_kb\": 0}}",
			  "types.t.limits.output_kb: must be >= 1");
	expect_type_error("{\"builtin\": \"echo\", \"limits\": {\"nofile\": 15}}",
			  "types.t.limits.nofile: must be >= 16");
	expect_type_error("{\"builtin\": \"echo\", \"limits\": {\"nproc\": 0}}",
			  "types.t.limits.nproc: must be >= 1");
	expect_type_error("{\"builtin\": \"echo\", \"limits\": {\"memory_mb\": 1048577}}",
			  "types.t.limits.memory_mb: must be <= 1048576");
	expect_type_error("{\"builtin\": \"echo\", \"ring_kb\": 1000}",
			  "types.t.ring_kb: must be a power of two (4..1048576)");
	expect_type_error("{\"builtin\": \"echo\", \"ring_kb\": 2}",
			  "types.t.ring_kb: must be >= 4");
	expect_type_error("{\"builtin\": \"echo\", \"ring_kb\": 2097152}",
			  "types.t.ring_kb: must be <= 1048576");
	expect_type_error("{\"builtin\": \"echo\", \"ring_kb\": 99999999999999999}",
			  "types.t.ring_kb: must be <= 1048576");
}
END_TEST

START_TEST(test_sandbox_values)
{
	expect_type_error(
	    "{\"builtin\": \"echo\", \"sandbox\": {\"namespaces\": [\"pid\", \"time\"]}}",
	    "types.t.sandbox.namespaces[1]: unknown namespace \"time\" (known: user, pid, net, "
	    "ipc, uts, mount)");
	expect_type_error(
	    "{\"builtin\": \"echo\", \"sandbox\": {\"namespaces\": [\"pid\", \"net\", \"pid\"]}}",
	    "types.t.sandbox.namespaces[2]: duplicate namespace \"pid\"");
	expect_type_error(
	    "{\"builtin\": \"echo\", \"sandbox\": {\"seccomp\": \"off\"}}",
	    "types.t.sandbox.seccomp: must be \"none\", \"default\" or \"strict\", not "
	    "\"off\"");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"readonly\": [\"usr\"]}}",
			  "types.t.sandbox.readonly[0]: must be an absolute path");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"tmpfs\": [\"/tmp/../etc\"]}}",
			  "types.t.sandbox.tmpfs[0]: must not contain \".\" or \"..\" components");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"user\": \"\"}}",
			  "types.t.sandbox.user: must be a user name or numeric id of 1 to 256 "
			  "characters");
	expect_type_error(
	    "{\"builtin\": \"echo\", \"sandbox\": {\"user\": \"no body\"}}",
	    "types.t.sandbox.user: must be a user name or numeric id, not \"no body\"");
	expect_type_error("{\"builtin\": \"echo\", \"sandbox\": {\"user\": \"4294967295\"}}",
			  "types.t.sandbox.user: numeric id must be <= 4294967294");
	expect_type_error(
	    "{\"builtin\": \"echo\", \"sandbox\": {\"network\": true, \"namespaces\": [\"net\"]}}",
	    "types.t.sandbox.network: true conflicts with \"net\" in sandbox.namespaces");

	/* At most 256 paths. */
	char json[8192];
	size_t len = (size_t)snprintf(json, sizeof json,
				      "{\"types\": {\"t\": {\"builtin\": \"echo\", \"sandbox\": "
				      "{\"readonly\": [\"/a\"");
	for (int i = 0; i < 256; i++)
		len += (size_t)snprintf(json + len, sizeof json - len, ", \"/p%d\"", i);
	snprintf(json + len, sizeof json - len, "]}}}}");
	expect_errors(json, 1, "types.t.sandbox.readonly: must hold at most 256 paths");
}
END_TEST

START_TEST(test_modes)
{
	expect_type_error("{\"exec\": [\"bin/true\"]}",
			  "types.t.exec[0]: must be an absolute path");
	expect_type_error(
	    "{\"exec\": []}",
	    "types.t.exec: must hold 1 to 1024 strings (the program and its arguments)");
	expect_type_error("{\"mode\": \"builtin\"}",
			  "types.t.builtin: required for mode \"builtin\"");
	expect_type_error("{\"mode\": \"stdio\", \"builtin\": \"echo\", \"exec\": [\"/bin/cat\"]}",
			  "types.t.builtin: not allowed with mode \"stdio\"");
	expect_type_error("{\"mode\": \"native\", \"builtin\": \"echo\", \"exec\": [\"/bin/x\"]}",
			  "types.t.builtin: not allowed with mode \"native\"");
	expect_type_error("{\"builtin\": \"echo\", \"exec\": [\"/bin/cat\"]}",
			  "types.t.exec: not allowed with mode \"builtin\"");
	expect_type_error("{\"mode\": \"stdio\"}", "types.t.exec: required for mode \"stdio\"");
	expect_type_error("{}", "types.t.exec: required for mode \"native\"");
	expect_type_error(
	    "{\"mode\": \"python\", \"exec\": [\"/bin/x\"]}",
	    "types.t.mode: must be \"builtin\", \"native\" or \"stdio\", not \"python\"");
	expect_type_error("{\"builtin\": \"gzip\"}",
			  "types.t.builtin: unknown builtin \"gzip\" (known: echo, sha256)");
	expect_errors("{\"types\": {\"t\": {\"mode\": \"stdio\", \"builtin\": \"echo\"}}}", 2,
		      "types.t.builtin: not allowed with mode \"stdio\"",
		      "types.t.exec: required for mode \"stdio\"");
}
END_TEST

START_TEST(test_types_and_names)
{
	char json[256];

	expect_errors("{\"types\": {}}", 1, "types: must hold at least one worker type");
	expect_errors("{}", 1, "types: required: at least one worker type");
	expect_errors(
	    "{\"types\": {\"a b\": {\"builtin\": \"echo\"}}}", 1,
	    "types.a b: invalid type name: must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
	expect_errors(
	    "{\"types\": {\"\": {\"builtin\": \"echo\"}}}", 1,
	    "types.\"\": invalid type name: must be 1 to 64 characters of A-Z a-z 0-9 _ . -");
	char want[256];

	snprintf(json, sizeof json, "{\"types\": {\"%065d\": {\"builtin\": \"echo\"}}}", 0);
	snprintf(want, sizeof want,
		 "types.%065d: invalid type name: must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
		 0);
	expect_errors(json, 1, want);
	snprintf(json, sizeof json, "{\"types\": {\"%064d\": {\"builtin\": \"echo\"}}}", 0);
	config_free(load_ok(json));
	config_free(load_ok("{\"types\": {\"Az09_.-\": {\"builtin\": \"echo\"}}}"));
}
END_TEST

START_TEST(test_decode_errors)
{
	struct config_errors errs = {0};
	struct config *c = NULL;

	/* Duplicate keys are decode errors, with the line and column. */
	ck_assert_int_eq(config_load_string("{\"types\": {\n"
					    "  \"e\": {\"builtin\": \"echo\",\n"
					    "         \"builtin\": \"sha256\"}}}",
					    &c, &errs),
			 -1);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_msg(strncmp(errs.msgs[0], "<string>:3:", 11) == 0, "%s", errs.msgs[0]);
	ck_assert_msg(strstr(errs.msgs[0], "duplicate object key"), "%s", errs.msgs[0]);
	config_errors_free(&errs);

	ck_assert_int_eq(config_load_string("{\"types\": {\"e\": {\"builtin\": \"echo\"}},\n"
					    " \"socket\": {}, \"socket\": {}}",
					    &c, &errs),
			 -1);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_msg(strncmp(errs.msgs[0], "<string>:2:", 11) == 0, "%s", errs.msgs[0]);
	ck_assert_msg(strstr(errs.msgs[0], "duplicate"), "%s", errs.msgs[0]);
	config_errors_free(&errs);

	/* Invalid JSON: a missing comma on line 4. */
	ck_assert_int_eq(config_load_string("{\n"
					    "  \"types\": {\n"
					    "    \"e\": {\"builtin\": \"echo\"}\n"
					    "    \"f\": {\"builtin\": \"echo\"}\n"
					    "  }\n"
					    "}\n",
					    &c, &errs),
			 -1);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_msg(strncmp(errs.msgs[0], "<string>:4:", 11) == 0, "%s", errs.msgs[0]);
	config_errors_free(&errs);

	ck_assert_int_eq(config_load_string("", &c, &errs), -1);
	ck_assert_uint_eq(errs.n, 1);
	config_errors_free(&errs);
	ck_assert_int_eq(config_load_string("{\"types\": {}} trailing", &c, &errs), -1);
	ck_assert_uint_eq(errs.n, 1);
	config_errors_free(&errs);
	/* NULL errs: still rejected. */
	ck_assert_int_eq(config_load_string("{", &c, NULL), -1);
	ck_assert_int_eq(config_load_string("{\"types\": {}}", &c, NULL), -1);
	ck_assert_ptr_null(c);
	config_errors_free(NULL);
}
END_TEST

START_TEST(test_files)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	char dir[] = "/tmp/corral-config-test.XXXXXX";
	char path[256];
	FILE *f;

	ck_assert_int_eq(config_load_file("/nonexistent/corral.json", &c, &errs), -1);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.msgs[0],
			 "/nonexistent/corral.json: cannot read: No such file or directory");
	config_errors_free(&errs);

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(config_load_file(dir, &c, &errs), -1);
	ck_assert_uint_eq(errs.n, 1);
	snprintf(path, sizeof path, "%s: cannot read: Is a directory", dir);
	ck_assert_str_eq(errs.msgs[0], path);
	config_errors_free(&errs);

	snprintf(path, sizeof path, "%s/corral.json", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(design_example, f);
	fclose(f);
	ck_assert_int_eq(config_load_file(path, &c, &errs), 0);
	ck_assert_uint_eq(errs.n, 0);
	ck_assert_ptr_nonnull(config_find_type(c, "thumb"));
	config_free(c);
	c = NULL;

	/* Decode errors name the file, line and column. */
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"types\": {\n\n  \"e\": {\"builtin\": echo}}}\n", f);
	fclose(f);
	ck_assert_int_eq(config_load_file(path, &c, &errs), -1);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_msg(strncmp(errs.msgs[0], path, strlen(path)) == 0 &&
			  strncmp(errs.msgs[0] + strlen(path), ":3:", 3) == 0,
		      "%s", errs.msgs[0]);
	config_errors_free(&errs);

	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_multiple_errors)
{
	struct config_errors errs = {0};
	struct config *c = NULL;

	expect_errors(
	    "{\"bogus\": 1, \"types\": {"
	    "\"a\": {\"builtin\": \"echo\", \"pool\": {\"min\": 3, \"max\": 2, \"mxa\": 1}},"
	    "\"b\": {\"exec\": [\"rel\"], \"ring_kb\": 3000},"
	    "\"c\": {\"builtin\": \"echo\", \"limits\": {\"nofile\": 1}, "
	    "\"sandbox\": {\"seccomp\": \"x\"}}}}",
	    7, "bogus: unknown key", "types.a.pool.mxa: unknown key",
	    "types.a.pool.max: must be >= pool.min (3)",
	    "types.b.exec[0]: must be an absolute path",
	    "types.b.ring_kb: must be a power of two (4..1048576)",
	    "types.c.limits.nofile: must be >= 16",
	    "types.c.sandbox.seccomp: must be \"none\", \"default\" or \"strict\", not \"x\"");

	/* Errors are appended to what the list already holds. */
	ck_assert_int_eq(config_load_string("{\"x\": 1, \"types\": {}}", &c, &errs), -1);
	ck_assert_uint_eq(errs.n, 2);
	ck_assert_int_eq(config_load_string("{\"y\": 1, \"types\": {}}", &c, &errs), -1);
	ck_assert_uint_eq(errs.n, 4);
	ck_assert_str_eq(errs.msgs[2], "y: unknown key");
	config_errors_free(&errs);

	/* A success leaves the list alone. */
	ck_assert_int_eq(
	    config_load_string("{\"types\": {\"e\": {\"builtin\": \"echo\"}}}", &c, &errs), 0);
	ck_assert_uint_eq(errs.n, 0);
	config_free(c);
}
END_TEST

START_TEST(test_many_errors_capped)
{
	struct config_errors errs = {0};
	struct config *c = NULL;
	size_t cap = 100000, len = 0;
	char *json = malloc(cap);

	ck_assert_ptr_nonnull(json);
	len +=
	    (size_t)snprintf(json + len, cap - len, "{\"types\": {\"e\": {\"builtin\": \"echo\"}}");
	for (int i = 0; i < 1500; i++)
		len += (size_t)snprintf(json + len, cap - len, ", \"k%d\": 0", i);
	snprintf(json + len, cap - len, "}");
	ck_assert_int_eq(config_load_string(json, &c, &errs), -1);
	ck_assert_uint_eq(errs.n, 1001);
	ck_assert_str_eq(errs.msgs[0], "k0: unknown key");
	ck_assert_str_eq(errs.msgs[1000], "(root): 500 more errors not shown");
	config_errors_free(&errs);
	free(json);
}
END_TEST

/* The canonical string of the only type of a config. */
static char *canonical_of(const char *json)
{
	struct config *c = load_ok(json);
	char *s;

	ck_assert_uint_eq(c->ntypes, 1);
	s = strdup(c->types[0].canonical);
	config_free(c);
	return s;
}

START_TEST(test_canonical)
{
	static const char *const same[] = {
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"]}}}",
	    /* explicit defaults, other key order, other whitespace */
	    "{\"types\": {\"t\": {\"pool\": {\"max\": 4, \"min\": 0, \"queue\": 64},"
	    " \"exec\": [\"/bin/x\", \"a\"], \"mode\": \"native\", \"ring_kb\": 1024,"
	    " \"restart\": {\"backoff_ms\": [100, 30000]}, \"limits\": {\"nofile\": 256}}}}",
	    /* namespaces in another order are the same set */
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"sandbox\": {\"namespaces\":"
	    " [\"mount\", \"uts\", \"ipc\", \"net\", \"pid\", \"user\"], \"seccomp\": "
	    "\"default\", \"tmpfs\": [\"/tmp\"], \"network\": false}}}}",
	};
	static const char *const differ[] = {
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"b\"]}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\", \"b\"]}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"mode\": \"stdio\"}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"pool\": {\"max\": 5}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"pool\": {\"isolate\": "
	    "\"key\"}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"restart\": {\"burst\": 6}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"limits\": {\"timeout_ms\": "
	    "1}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"limits\": "
	    "{\"start_timeout_ms\": 1}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"sandbox\": {\"namespaces\": "
	    "[\"user\"]}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"sandbox\": {\"seccomp\": "
	    "\"strict\"}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"sandbox\": {\"readonly\": "
	    "[\"/opt\"]}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"sandbox\": {\"tmpfs\": []}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"sandbox\": {\"user\": "
	    "\"nobody\"}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"sandbox\": {\"network\": "
	    "true}}}}",
	    "{\"types\": {\"t\": {\"exec\": [\"/bin/x\", \"a\"], \"ring_kb\": 2048}}}",
	    "{\"types\": {\"t\": {\"builtin\": \"echo\"}}}",
	};
	char *base = canonical_of(same[0]);

	for (size_t i = 1; i < sizeof same / sizeof *same; i++) {
		char *s = canonical_of(same[i]);

		ck_assert_msg(strcmp(base, s) == 0, "same[%zu]: %s != %s", i, s, base);
		free(s);
	}
	for (size_t i = 0; i < sizeof differ / sizeof *differ; i++) {
		char *s = canonical_of(differ[i]);

		ck_assert_msg(strcmp(base, s) != 0, "differ[%zu] has the same canonical %s", i, s);
		for (size_t k = 0; k < i; k++) {
			char *o = canonical_of(differ[k]);

			ck_assert_msg(strcmp(o, s) != 0, "differ[%zu] == differ[%zu]", i, k);
			free(o);
		}
		free(s);
	}
	free(base);

	/* Builtin: explicit mode and seccomp equal to the defaults change nothing. */
	base = canonical_of("{\"types\": {\"t\": {\"builtin\": \"echo\"}}}");
	char *s = canonical_of("{\"types\": {\"t\": {\"mode\": \"builtin\", \"builtin\": \"echo\", "
			       "\"sandbox\": {\"seccomp\": \"strict\"}}}}");
	ck_assert_str_eq(base, s);
	free(s);
	s = canonical_of("{\"types\": {\"t\": {\"builtin\": \"sha256\"}}}");
	ck_assert_str_ne(base, s);
	free(s);
	free(base);

	/* Equal types of two different configs compare equal whatever their neighbours. */
	struct config *a = config_default();
	struct config *b =
	    load_ok("{\"socket\": {\"mode\": \"0600\"}, \"types\": {\"sha256\": {\"builtin\": "
		    "\"sha256\", \"pool\": {\"max\": 9}}, \"echo\": {\"builtin\": \"echo\"}}}");
	ck_assert_str_eq(config_find_type(a, "echo")->canonical,
			 config_find_type(b, "echo")->canonical);
	ck_assert_str_ne(config_find_type(a, "sha256")->canonical,
			 config_find_type(b, "sha256")->canonical);
	config_free(a);
	config_free(b);
}
END_TEST

/* All the tests. */
/* pool.spares: "auto" (the default), or 0..64. */
START_TEST(test_pool_spares)
{
	struct config *cfg;
	const struct type_config *t = load_type("{\"builtin\": \"echo\"}", &cfg);
	ck_assert_int_eq(t->pool.spares, SPARES_AUTO);
	config_free(cfg);
	t = load_type("{\"builtin\": \"echo\", \"pool\": {\"spares\": 3}}", &cfg);
	ck_assert_int_eq(t->pool.spares, 3);
	config_free(cfg);
	t = load_type("{\"builtin\": \"echo\", \"pool\": {\"spares\": \"auto\"}}", &cfg);
	ck_assert_int_eq(t->pool.spares, SPARES_AUTO);
	config_free(cfg);
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"spares\": \"many\"}}",
			  "types.t.pool.spares: must be \"auto\" or an integer from 0 to 64");
	expect_type_error("{\"builtin\": \"echo\", \"pool\": {\"spares\": 65}}",
			  "types.t.pool.spares: must be <= 64");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_design_example);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_explicit_values);
	tcase_add_test(tc, test_socket_allow_metrics);
	tcase_add_test(tc, test_embedded_default);
	tcase_add_test(tc, test_unknown_keys);
	tcase_add_test(tc, test_wrong_types);
	tcase_add_test(tc, test_pool_values);
	tcase_add_test(tc, test_pool_spares);
	tcase_add_test(tc, test_restart_limits_ring);
	tcase_add_test(tc, test_sandbox_values);
	tcase_add_test(tc, test_modes);
	tcase_add_test(tc, test_types_and_names);
	tcase_add_test(tc, test_decode_errors);
	tcase_add_test(tc, test_files);
	tcase_add_test(tc, test_multiple_errors);
	tcase_add_test(tc, test_many_errors_capped);
	tcase_add_test(tc, test_canonical);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
