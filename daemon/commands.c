/*
 * commands.c - the control protocol's commands: one table entry and one
 * function each.  Arguments were checked against each entry's spec (names
 * and JSON types) before the function runs; ranges are checked here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "corral-config.h"
#include "log.h"
#include "payload.h"
#include "server.h"
#include "control.h"

/* Read rss (KiB) and cpu time (ms) of pid from /proc. */
static void proc_usage(pid_t pid, json_int_t *rss_kb, json_int_t *cpu_ms)
{
	char path[64], buf[1024];
	*rss_kb = 0;
	*cpu_ms = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return;
	/* Fields after the comm: state(3) ... utime(14) stime(15) ... rss(24). */
	unsigned long long utime = 0, stime = 0;
	long long rss = 0;
	int field = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
		field++;
		if (field == 14)
			utime = strtoull(tok, NULL, 10);
		else if (field == 15)
			stime = strtoull(tok, NULL, 10);
		else if (field == 24) {
			rss = strtoll(tok, NULL, 10);
			break;
		}
	}
	long tck = sysconf(_SC_CLK_TCK);
	long pg = sysconf(_SC_PAGESIZE);
	if (tck > 0)
		*cpu_ms = (json_int_t)((utime + stime) * 1000ull / (unsigned long long)tck);
	*rss_kb = (json_int_t)(rss * (pg / 1024));
}

/* A worker as `list` shows it. */
json_t *worker_to_json(const struct worker *w)
{
	json_int_t rss, cpu;
	proc_usage(w->pid, &rss, &cpu);
	return json_pack("{s:I,s:I,s:s,s:o,s:s,s:I,s:I,s:I,s:I}", "id", (json_int_t)w->id, "pid",
			 (json_int_t)w->pid, "type", w->type->name, "key",
			 w->key ? json_string(w->key) : json_null(), "state",
			 wstate_names[w->state], "uptime_ms",
			 (json_int_t)(now_ms() - w->started_ms), "requests",
			 (json_int_t)w->requests, "rss_kb", rss, "cpu_ms", cpu);
}

/* A log line as `logs` shows it. */
json_t *logline_to_json(const struct logline *l)
{
	return json_pack("{s:I,s:s,s:I,s:s}", "worker", (json_int_t)l->worker, "stream",
			 l->stream == 1 ? "stdout" : "stderr", "ts_ms", (json_int_t)l->ts_ms,
			 "text", l->text);
}

/* Integer argument in [lo, hi], or the default; false after replying bad_request. */
static bool arg_int(struct client *c, json_t *id, json_t *req, const char *name, json_int_t lo,
		    json_int_t hi, json_int_t def, json_int_t *ret)
{
	json_t *v = json_object_get(req, name);
	if (!v) {
		*ret = def;
		return true;
	}
	json_int_t x = json_integer_value(v);
	if (x < lo || x > hi) {
		client_reply_error(c, id, "bad_request",
				   "argument \"%s\" must be between %lld and "
				   "%lld",
				   name, (long long)lo, (long long)hi);
		return false;
	}
	*ret = x;
	return true;
}

#define TIMEOUT_MAX (24LL * 3600 * 1000)

/* ping */
static void cmd_ping(struct client *c, json_t *id, json_t *req)
{
	(void)req;
	struct daemon *d = c->srv->d;
	client_reply_ok(c, id,
			json_pack("{s:s,s:I,s:I}", "version", CORRAL_VERSION, "pid",
				  (json_int_t)getpid(), "uptime_ms",
				  (json_int_t)(now_ms() - d->start_ms)));
}

/* Layer bits as a JSON array of names. */
static json_t *layer_names(unsigned bits)
{
	json_t *a = json_array();
	for (unsigned b = 0; b < SB_NLAYERS; b++)
		if (bits & (1u << b))
			json_array_append_new(a, json_string(sandbox_layer_names[b]));
	return a;
}

/* types */
static void cmd_types(struct client *c, json_t *id, json_t *req)
{
	(void)req;
	static const char *const modes[] = {"builtin", "native", "stdio"};
	struct daemon *d = c->srv->d;
	json_t *arr = json_array();
	struct type_rt *t;

	TAILQ_FOREACH(t, &d->types, entry)
	{
		const struct pool_config *p = &t->cfg->pool;
		json_t *o = json_pack(
		    "{s:s,s:s,s:{s:I,s:I,s:I,s:I,s:I,s:s,s:I},s:I,s:I,s:I,s:{s:o,s:o}}", "name",
		    t->name, "mode", modes[t->cfg->mode], "pool", "min", (json_int_t)p->min, "max",
		    (json_int_t)p->max, "idle_timeout_ms", (json_int_t)p->idle_timeout_ms,
		    "max_requests", (json_int_t)p->max_requests, "queue", (json_int_t)p->queue,
		    "isolate", p->isolate == ISOLATE_KEY ? "key" : "none", "max_per_key",
		    (json_int_t)p->max_per_key, "workers", (json_int_t)t->nworkers, "busy",
		    (json_int_t)t->nstate[W_BUSY], "queued", (json_int_t)t->nqueued, "sandbox",
		    "active", layer_names(t->sb_active), "missing", layer_names(t->sb_missing));
		json_array_append_new(arr, o);
	}
	client_reply_ok(c, id, json_pack("{s:o}", "types", arr));
}

/* list [type] */
static void cmd_list(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *tv = json_object_get(req, "type");
	const char *type = tv ? json_string_value(tv) : NULL;
	json_t *arr = json_array();
	struct worker *w;

	if (type && !daemon_find_type(d, type)) {
		json_decref(arr);
		client_reply_error(c, id, "unknown_type", "no type named \"%s\"", type);
		return;
	}
	TAILQ_FOREACH(w, &d->workers, dentry)
	{
		if (w->reaped || (type && strcmp(w->type->name, type) != 0))
			continue;
		json_array_append_new(arr, worker_to_json(w));
	}
	client_reply_ok(c, id, json_pack("{s:o}", "workers", arr));
}

/* spawn type [count]: replies once every new worker is ready. */
static void cmd_spawn(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *tv = json_object_get(req, "type");
	json_int_t count;
	char err[256];

	if (!tv) {
		client_reply_error(c, id, "bad_request", "spawn needs \"type\"");
		return;
	}
	if (!arg_int(c, id, req, "count", 1, 10000, 1, &count))
		return;
	struct type_rt *t = daemon_find_type(d, json_string_value(tv));
	if (!t) {
		client_reply_error(c, id, "unknown_type", "no type named \"%s\"",
				   json_string_value(tv));
		return;
	}
	if (t->cfg->pool.isolate == ISOLATE_KEY) {
		client_reply_error(c, id, "bad_request",
				   "type %s isolates by key: its workers start with their first "
				   "call",
				   t->name);
		return;
	}
	if (type_in_backoff(t)) {
		client_reply_error(c, id, "unavailable", "type %s is in crash-loop backoff",
				   t->name);
		return;
	}
	if (t->nworkers + (unsigned)count > t->cfg->pool.max) {
		client_reply_error(c, id, "busy", "type %s has %u of at most %u workers", t->name,
				   t->nworkers, t->cfg->pool.max);
		return;
	}
	t->min_paused = false;
	struct spawn_req *r = calloc(1, sizeof(*r));
	if (!r)
		fatal("out of memory");
	r->d = d;
	r->client = c;
	r->req_id = json_incref(id);
	r->ids = json_array();
	r->pending = 1; /* held by us until every worker is started */
	LIST_INSERT_HEAD(&c->spawns, r, centry);
	for (json_int_t i = 0; i < count; i++) {
		struct worker *w = worker_spawn(t, NULL, err, sizeof(err));
		if (!w) {
			if (!r->error_code) {
				r->error_code = strdup("internal");
				r->error_msg = strdup(err);
			}
			break;
		}
		json_array_append_new(r->ids, json_integer((json_int_t)w->id));
		w->spawn_req = r;
		r->pending++;
	}
	/* Drop our hold: replies now when every worker already resolved. */
	spawn_req_unref(r, NULL);
}

/* A worker id argument: must be a positive integer. */
static bool arg_worker(struct client *c, json_t *id, json_t *req, uint64_t *ret)
{
	json_int_t v;
	if (!arg_int(c, id, req, "worker", 1, INT64_MAX, 0, &v))
		return false;
	*ret = (uint64_t)v;
	return true;
}

/* stop worker|type [timeout_ms] */
static void cmd_stop(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *wv = json_object_get(req, "worker"), *tv = json_object_get(req, "type");
	json_int_t timeout;
	uint64_t wid;

	if (!!wv == !!tv) {
		client_reply_error(c, id, "bad_request",
				   "stop needs one of \"worker\" or \"type\"");
		return;
	}
	if (!arg_int(c, id, req, "timeout_ms", 0, TIMEOUT_MAX, 5000, &timeout))
		return;
	json_t *ids = json_array();
	if (wv) {
		if (!arg_worker(c, id, req, &wid)) {
			json_decref(ids);
			return;
		}
		struct worker *w = daemon_find_worker(d, wid);
		if (!w || w->reaped) {
			json_decref(ids);
			client_reply_error(c, id, "no_such_worker", "no live worker %llu",
					   (unsigned long long)wid);
			return;
		}
		worker_stop(w, (uint64_t)timeout);
		json_array_append_new(ids, json_integer((json_int_t)w->id));
	} else {
		struct type_rt *t = daemon_find_type(d, json_string_value(tv));
		if (!t) {
			json_decref(ids);
			client_reply_error(c, id, "unknown_type", "no type named \"%s\"",
					   json_string_value(tv));
			return;
		}
		t->min_paused = true;
		struct worker *w, *tmp;
		for (w = TAILQ_FIRST(&t->workers); w; w = tmp) {
			tmp = TAILQ_NEXT(w, tentry);
			if (w->reaped)
				continue;
			json_array_append_new(ids, json_integer((json_int_t)w->id));
			worker_stop(w, (uint64_t)timeout);
		}
	}
	client_reply_ok(c, id, json_pack("{s:o}", "stopped", ids));
}

/* kill worker [signal] */
static void cmd_kill(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *sv = json_object_get(req, "signal");
	uint64_t wid;
	int sig = SIGKILL;

	if (!json_object_get(req, "worker")) {
		client_reply_error(c, id, "bad_request", "kill needs \"worker\"");
		return;
	}
	if (!arg_worker(c, id, req, &wid))
		return;
	if (sv) {
		sig = ctl_signal_parse(json_string_value(sv));
		if (!sig) {
			client_reply_error(c, id, "bad_request", "unknown signal \"%s\"",
					   json_string_value(sv));
			return;
		}
	}
	struct worker *w = daemon_find_worker(d, wid);
	if (!w || w->reaped) {
		client_reply_error(c, id, "no_such_worker", "no live worker %llu",
				   (unsigned long long)wid);
		return;
	}
	/* Asked for: if it dies of it, that is no crash (no backoff), though min refills. */
	if (sig != SIGSTOP && sig != SIGCONT)
		w->killed_by_us = true;
	worker_kill(w, sig, NULL);
	client_reply_ok(c, id, NULL);
}

/* Is fd a regular file or a memfd (memfds are regular files on tmpfs/shmem),
 * open for reading? */
static bool fd_is_payload(int fd, off_t *ret_size)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);
	/* The daemon must not read for a client what the client may not read. */
	if (fl < 0 || (fl & O_PATH) || (fl & O_ACCMODE) == O_WRONLY)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	*ret_size = st.st_size;
	return true;
}

/*
 * The worker gets the payload read-only, with an offset of its own: a client's
 * O_RDWR fd is reopened through /proc (kept as is where that is refused).
 */
static int fd_read_only(int fd)
{
	char path[64];
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_ACCMODE) == O_RDONLY)
		return fd;
	/* O_RDWR only: a write-only or O_PATH fd gave the client no right to read
	 * (fd_is_payload refused those already). */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int ro = open(path, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		return fd;
	close(fd);
	return ro;
}

/* call type payload|payload_b64|payload_fd [timeout_ms] [key] */
static void cmd_call(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *tv = json_object_get(req, "type");
	json_t *pv = json_object_get(req, "payload");
	json_t *bv = json_object_get(req, "payload_b64");
	json_t *fv = json_object_get(req, "payload_fd");
	json_t *kv = json_object_get(req, "key");
	json_int_t timeout;

	if (!tv) {
		client_reply_error(c, id, "bad_request", "call needs \"type\"");
		return;
	}
	int npay = !!pv + !!bv + (fv && json_is_true(fv));
	if (fv && !json_is_true(fv)) {
		client_reply_error(c, id, "bad_request", "\"payload_fd\" must be true");
		return;
	}
	if (npay != 1) {
		client_reply_error(c, id, "bad_request",
				   "call needs exactly one of \"payload\", \"payload_b64\", "
				   "\"payload_fd\"");
		return;
	}
	struct type_rt *t = daemon_find_type(d, json_string_value(tv));
	if (!t) {
		client_reply_error(c, id, "unknown_type", "no type named \"%s\"",
				   json_string_value(tv));
		return;
	}
	if (!arg_int(c, id, req, "timeout_ms", 1, TIMEOUT_MAX,
		     (json_int_t)t->cfg->limits.timeout_ms, &timeout))
		return;
	if (t->cfg->pool.isolate == ISOLATE_KEY && !kv) {
		client_reply_error(c, id, "bad_request", "type %s isolates by key: \"key\" needed",
				   t->name);
		return;
	}
	if (t->cfg->pool.isolate != ISOLATE_KEY && kv) {
		client_reply_error(c, id, "bad_request",
				   "type %s does not isolate by key: \"key\" not allowed", t->name);
		return;
	}
	struct call *call = calloc(1, sizeof(*call));
	if (!call)
		fatal("out of memory");
	call->d = d;
	call->type = t;
	call->payload_fd = -1;
	call->res_memfd = -1;
	call->start_us = mono_us();
	if (fv) {
		int fd = client_take_fd(c);
		off_t size;
		if (fd < 0) {
			free(call);
			client_reply_error(c, id, "bad_request",
					   "\"payload_fd\": true but no fd came with the request");
			return;
		}
		const char *why =
		    fd_is_payload(fd, &size)
			? payload_seal(fd)
			: "payload_fd must be a regular file or a memfd, open for reading";
		if (why) {
			close(fd);
			free(call);
			client_reply_error(c, id, "bad_request", "%s", why);
			return;
		}
		call->payload_fd = fd_read_only(fd);
		call->want_fd = true;
	} else if (pv) {
		size_t len = json_string_length(pv);
		call->payload = malloc(len ? len : 1);
		if (!call->payload)
			fatal("out of memory");
		memcpy(call->payload, json_string_value(pv), len);
		call->payload_len = len;
		call->text = true;
	} else {
		unsigned char *data;
		size_t n;
		int r = b64_decode(json_string_value(bv), json_string_length(bv), &data, &n);
		if (r == -ENOMEM)
			fatal("out of memory");
		if (r < 0) {
			free(call);
			client_reply_error(c, id, "bad_request",
					   "\"payload_b64\" is not valid base64");
			return;
		}
		call->payload = data;
		call->payload_len = n;
	}
	int extra = client_take_fd(c);
	if (extra >= 0) {
		/* An fd beyond the one payload_fd takes (or one with no payload_fd). */
		close(extra);
		call->req_id = json_incref(id);
		LIST_INSERT_HEAD(&c->calls, call, centry);
		call->client = c;
		call_finish_error(call, "bad_request",
				  fv ? "call takes exactly one fd with payload_fd"
				     : "call takes an fd only with \"payload_fd\": true");
		return;
	}
	call->req_id = json_incref(id);
	call->key = kv ? strdup(json_string_value(kv)) : NULL;
	call->client = c;
	LIST_INSERT_HEAD(&c->calls, call, centry);
	call_arm_timeout(call, (uint64_t)timeout);
	call_submit(call);
}

/* Find which type's history holds lines of worker wid (exited workers too). */
static struct type_rt *type_of_worker_id(struct daemon *d, uint64_t wid)
{
	struct worker *w = daemon_find_worker(d, wid);
	if (w)
		return w->type;
	struct type_rt *t;
	TAILQ_FOREACH(t, &d->types, entry)
	{
		for (size_t i = 0; i < t->logs->n; i++)
			if (t->logs->lines[(t->logs->start + i) % t->logs->cap].worker == wid)
				return t;
	}
	TAILQ_FOREACH(t, &d->retired, entry)
	{
		for (size_t i = 0; i < t->logs->n; i++)
			if (t->logs->lines[(t->logs->start + i) % t->logs->cap].worker == wid)
				return t;
	}
	return NULL;
}

/* logs worker|type [lines] [follow] */
static void cmd_logs(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *wv = json_object_get(req, "worker"), *tv = json_object_get(req, "type");
	json_t *fv = json_object_get(req, "follow");
	json_int_t nlines;
	uint64_t wid = 0;
	struct type_rt *t = NULL;

	if (!!wv == !!tv) {
		client_reply_error(c, id, "bad_request",
				   "logs needs one of \"worker\" or \"type\"");
		return;
	}
	if (!arg_int(c, id, req, "lines", 0, 100000, 100, &nlines))
		return;
	if (wv) {
		if (!arg_worker(c, id, req, &wid))
			return;
		if (wid > d->next_worker_id) {
			client_reply_error(c, id, "no_such_worker",
					   "no worker %llu was ever started",
					   (unsigned long long)wid);
			return;
		}
		t = type_of_worker_id(d, wid);
	} else {
		t = daemon_find_type(d, json_string_value(tv));
		if (!t) {
			client_reply_error(c, id, "unknown_type", "no type named \"%s\"",
					   json_string_value(tv));
			return;
		}
	}
	json_t *arr = json_array();
	if (t) {
		/* The last nlines matching lines, oldest first. */
		size_t match = 0;
		for (size_t i = t->logs->n; i-- > 0 && match < (size_t)nlines;) {
			const struct logline *l =
			    &t->logs->lines[(t->logs->start + i) % t->logs->cap];
			if (!wid || l->worker == wid)
				match++;
		}
		size_t skip = 0, total = 0;
		for (size_t i = 0; i < t->logs->n; i++) {
			const struct logline *l =
			    &t->logs->lines[(t->logs->start + i) % t->logs->cap];
			if (!wid || l->worker == wid)
				total++;
		}
		skip = total - match;
		for (size_t i = 0; i < t->logs->n; i++) {
			const struct logline *l =
			    &t->logs->lines[(t->logs->start + i) % t->logs->cap];
			if (wid && l->worker != wid)
				continue;
			if (skip) {
				skip--;
				continue;
			}
			json_array_append_new(arr, logline_to_json(l));
		}
	}
	client_reply_ok(c, id, json_pack("{s:o}", "lines", arr));
	if (fv && json_is_true(fv)) {
		struct follow *f = realloc(c->follows, (c->nfollows + 1) * sizeof(*f));
		if (!f)
			return;
		c->follows = f;
		f[c->nfollows].id = json_incref(id);
		f[c->nfollows].worker = wid;
		f[c->nfollows].type = strdup(t ? t->name : "");
		c->nfollows++;
	}
}

/* stats */
static void cmd_stats(struct client *c, json_t *id, json_t *req)
{
	(void)req;
	struct daemon *d = c->srv->d;
	struct stats *s = &d->stats;
	unsigned queued = 0;
	struct type_rt *t;
	TAILQ_FOREACH(t, &d->types, entry)
	queued += t->nqueued;
	client_reply_ok(c, id,
			json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "spawned",
				  (json_int_t)s->spawned, "exited", (json_int_t)s->exited,
				  "crashed", (json_int_t)s->crashed, "restarts",
				  (json_int_t)s->restarts, "calls_ok", (json_int_t)s->calls_ok,
				  "calls_failed", (json_int_t)s->calls_failed, "queued",
				  (json_int_t)queued, "workers", (json_int_t)d->nworkers,
				  "call_p50_us", (json_int_t)stats_percentile(s, 0.50),
				  "call_p99_us", (json_int_t)stats_percentile(s, 0.99)));
}

/* watch: ok, then state-change events until the client leaves. */
static void cmd_watch(struct client *c, json_t *id, json_t *req)
{
	(void)req;
	if (c->watch_id) {
		client_reply_error(c, id, "bad_request", "this connection already watches");
		return;
	}
	client_reply_ok(c, id, NULL);
	c->watch_id = json_incref(id);
}

/* reload: same as SIGHUP. */
static void cmd_reload(struct client *c, json_t *id, json_t *req)
{
	(void)req;
	struct daemon *d = c->srv->d;
	char *errors = NULL;
	json_t *r = daemon_reload_from_file(d, &errors);
	if (!r) {
		client_reply_error(c, id, "bad_request", "config rejected, old one kept: %s",
				   errors ? errors : "unknown error");
		free(errors);
		return;
	}
	client_reply_ok(c, id, r);
}

/* shutdown [timeout_ms] */
static void cmd_shutdown(struct client *c, json_t *id, json_t *req)
{
	json_int_t timeout;
	if (!arg_int(c, id, req, "timeout_ms", 0, TIMEOUT_MAX, 10000, &timeout))
		return;
	client_reply_ok(c, id, NULL);
	daemon_begin_shutdown(c->srv->d, (uint64_t)timeout);
}

const cmd_fn command_handlers[CTL_NCMDS] = {
    [CTL_CMD_PING] = cmd_ping,	 [CTL_CMD_TYPES] = cmd_types,	[CTL_CMD_LIST] = cmd_list,
    [CTL_CMD_SPAWN] = cmd_spawn, [CTL_CMD_STOP] = cmd_stop,	[CTL_CMD_KILL] = cmd_kill,
    [CTL_CMD_CALL] = cmd_call,	 [CTL_CMD_LOGS] = cmd_logs,	[CTL_CMD_STATS] = cmd_stats,
    [CTL_CMD_WATCH] = cmd_watch, [CTL_CMD_RELOAD] = cmd_reload, [CTL_CMD_SHUTDOWN] = cmd_shutdown,
};
