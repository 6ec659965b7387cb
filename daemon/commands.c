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

/* The wire name of an error code. */
#define E(code) ctl_code_name(code)

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
		client_reply_error(c, id, E(CTL_BAD_REQUEST),
				   "argument \"%s\" must be between %lld and "
				   "%lld",
				   name, (long long)lo, (long long)hi);
		return false;
	}
	*ret = x;
	return true;
}

#define TIMEOUT_MAX (24LL * 3600 * 1000)

/* A worker id argument: must be a positive integer. */
static bool arg_worker(struct client *c, json_t *id, json_t *req, uint64_t *ret)
{
	json_int_t v;
	if (!arg_int(c, id, req, "worker", 1, INT64_MAX, 0, &v))
		return false;
	*ret = (uint64_t)v;
	return true;
}

/* The active type called name; NULL after replying unknown_type. */
static struct type_rt *arg_type(struct client *c, json_t *id, const char *name)
{
	struct type_rt *t = type_find(c->srv->d, name);
	if (!t)
		client_reply_error(c, id, E(CTL_UNKNOWN_TYPE), "no type named \"%s\"", name);
	return t;
}

/* The live worker the "worker" argument names; NULL after replying (stopping: when
 * those count as gone). */
static struct worker *arg_live_worker(struct client *c, json_t *id, json_t *req, bool stopping_ok)
{
	uint64_t wid;
	if (!arg_worker(c, id, req, &wid))
		return NULL;
	struct worker *w = worker_find(c->srv->d, wid);
	if (!w || w->reaped || (!stopping_ok && w->state == W_STOPPING)) {
		client_reply_error(c, id, E(CTL_NO_SUCH_WORKER), "no live worker %llu",
				   (unsigned long long)wid);
		return NULL;
	}
	return w;
}

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
		    "active", type_layers_active(t), "missing", type_layers_missing(t));
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

	if (type && !arg_type(c, id, type)) {
		json_decref(arr);
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
	json_t *tv = json_object_get(req, "type");
	json_int_t count;

	if (!tv) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST), "spawn needs \"type\"");
		return;
	}
	if (!arg_int(c, id, req, "count", 1, 10000, 1, &count))
		return;
	struct type_rt *t = arg_type(c, id, json_string_value(tv));
	if (!t)
		return;
	if (t->cfg->pool.isolate == ISOLATE_KEY) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST),
				   "type %s isolates by key: its workers start with their first "
				   "call",
				   t->name);
		return;
	}
	if (pool_in_backoff(t)) {
		client_reply_error(c, id, E(CTL_UNAVAILABLE), "type %s is in crash-loop backoff",
				   t->name);
		return;
	}
	if (t->nworkers + (unsigned)count > t->cfg->pool.max) {
		client_reply_error(c, id, E(CTL_BUSY), "type %s has %u of at most %u workers",
				   t->name, t->nworkers, t->cfg->pool.max);
		return;
	}
	pool_spawn(t, (unsigned)count, c, id);
}

/* stop worker|type [timeout_ms] */
static void cmd_stop(struct client *c, json_t *id, json_t *req)
{
	json_t *wv = json_object_get(req, "worker"), *tv = json_object_get(req, "type");
	json_int_t timeout;

	if (!!wv == !!tv) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST),
				   "stop needs one of \"worker\" or \"type\"");
		return;
	}
	if (!arg_int(c, id, req, "timeout_ms", 0, TIMEOUT_MAX, 5000, &timeout))
		return;
	if (wv) {
		struct worker *w = arg_live_worker(c, id, req, true);
		if (!w)
			return;
		worker_stop(w, (uint64_t)timeout);
		client_reply_ok(c, id, json_pack("{s:[I]}", "stopped", (json_int_t)w->id));
		return;
	}
	struct type_rt *t = arg_type(c, id, json_string_value(tv));
	if (!t)
		return;
	json_t *ids = json_array();
	struct worker *w, *tmp;
	t->min_paused = true;
	spares_discard(t); /* quiet until the next spawn or reload */
	for (w = TAILQ_FIRST(&t->workers); w; w = tmp) {
		tmp = TAILQ_NEXT(w, tentry);
		if (w->reaped)
			continue;
		json_array_append_new(ids, json_integer((json_int_t)w->id));
		worker_stop(w, (uint64_t)timeout);
	}
	client_reply_ok(c, id, json_pack("{s:o}", "stopped", ids));
}

/* kill worker [signal] */
static void cmd_kill(struct client *c, json_t *id, json_t *req)
{
	json_t *sv = json_object_get(req, "signal");
	int sig = SIGKILL;

	if (!json_object_get(req, "worker")) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST), "kill needs \"worker\"");
		return;
	}
	if (sv) {
		sig = ctl_signal_parse(json_string_value(sv));
		if (!sig) {
			client_reply_error(c, id, E(CTL_BAD_REQUEST), "unknown signal \"%s\"",
					   json_string_value(sv));
			return;
		}
	}
	struct worker *w = arg_live_worker(c, id, req, true);
	if (!w)
		return;
	/* Asked for: if it dies of it, that is no crash (no backoff), though min refills. */
	worker_signal(w, sig);
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
		client_reply_error(c, id, E(CTL_BAD_REQUEST), "call needs \"type\"");
		return;
	}
	int npay = !!pv + !!bv + (fv && json_is_true(fv));
	if (fv && !json_is_true(fv)) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST), "\"payload_fd\" must be true");
		return;
	}
	if (npay != 1) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST),
				   "call needs exactly one of \"payload\", \"payload_b64\", "
				   "\"payload_fd\"");
		return;
	}
	struct type_rt *t = arg_type(c, id, json_string_value(tv));
	if (!t)
		return;
	if (!arg_int(c, id, req, "timeout_ms", 1, TIMEOUT_MAX, 0, &timeout))
		return;
	if (t->cfg->pool.isolate == ISOLATE_KEY && !kv) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST),
				   "type %s isolates by key: \"key\" needed", t->name);
		return;
	}
	if (t->cfg->pool.isolate != ISOLATE_KEY && kv) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST),
				   "type %s does not isolate by key: \"key\" not allowed", t->name);
		return;
	}
	struct call *call = call_new(d, t);
	if (fv) {
		int fd = client_take_fd(c);
		off_t size;
		if (fd < 0) {
			call_free(call);
			client_reply_error(c, id, E(CTL_BAD_REQUEST),
					   "\"payload_fd\": true but no fd came with the request");
			return;
		}
		const char *why =
		    fd_is_payload(fd, &size)
			? payload_seal(fd)
			: "payload_fd must be a regular file or a memfd, open for reading";
		if (why) {
			close(fd);
			call_free(call);
			client_reply_error(c, id, E(CTL_BAD_REQUEST), "%s", why);
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
			call_free(call);
			client_reply_error(c, id, E(CTL_BAD_REQUEST),
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
		call_fail(call, CTL_BAD_REQUEST, "%s",
			  fv ? "call takes exactly one fd with payload_fd"
			     : "call takes an fd only with \"payload_fd\": true");
		return;
	}
	call->req_id = json_incref(id);
	call->key = kv ? strdup(json_string_value(kv)) : NULL;
	call->client = c;
	LIST_INSERT_HEAD(&c->calls, call, centry);
	call_submit(call, (uint64_t)timeout);
}

/* Does t's history hold lines of worker wid? */
static bool type_has_lines_of(const struct type_rt *t, uint64_t wid)
{
	for (size_t i = 0; i < t->logs->n; i++)
		if (t->logs->lines[(t->logs->start + i) % t->logs->cap].worker == wid)
			return true;
	return false;
}

/* Find which type's history holds lines of worker wid (exited workers too). */
static struct type_rt *type_of_worker_id(struct daemon *d, uint64_t wid)
{
	struct worker *w = worker_find(d, wid);
	if (w)
		return w->type;
	struct type_rt *t;
	TAILQ_FOREACH(t, &d->types, entry)
	if (type_has_lines_of(t, wid))
		return t;
	TAILQ_FOREACH(t, &d->retired, entry)
	if (type_has_lines_of(t, wid))
		return t;
	return NULL;
}

/* Which log lines a `logs` request wants. */
struct logq {
	uint64_t worker; /* 0: any */
	uint64_t since_ms;
};

/* Does line l match q? */
static bool logq_match(const struct logq *q, const struct logline *l)
{
	return (!q->worker || l->worker == q->worker) && l->ts_ms >= q->since_ms;
}

/* Matching lines of one history: count them (out NULL), or append those past skip. */
static size_t logs_collect(const struct loghist *h, const struct logq *q, size_t skip, json_t **out,
			   size_t nout)
{
	size_t n = 0;
	for (size_t i = 0; i < h->n; i++) {
		const struct logline *l = &h->lines[(h->start + i) % h->cap];
		if (!logq_match(q, l))
			continue;
		if (out && n >= skip && n - skip < nout)
			out[n - skip] = logline_to_json(l);
		n++;
	}
	return n;
}

/* A line on its way into a `logs` reply: its time and its place, for a stable sort. */
struct logrow {
	json_t *j;
	json_int_t ts;
	size_t seq;
};

/* Order lines of several types by time; equal times keep their order. */
static int line_cmp(const void *a, const void *b)
{
	const struct logrow *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The last nlines matching lines of the histories of ts (n of them), oldest first. */
static json_t *logs_lines(struct type_rt **ts, size_t nts, const struct logq *q, size_t nlines)
{
	json_t *arr = json_array();
	size_t total = 0, got = 0;
	for (size_t k = 0; k < nts; k++)
		total += logs_collect(ts[k]->logs, q, 0, NULL, 0);
	json_t **all = calloc(total ? total : 1, sizeof(json_t *));
	if (!all)
		return arr;
	for (size_t k = 0; k < nts; k++)
		got += logs_collect(ts[k]->logs, q, 0, all + got, total - got);
	struct logrow *rows = calloc(got ? got : 1, sizeof(*rows));
	for (size_t i = 0; rows && i < got; i++)
		rows[i] = (struct logrow){all[i],
					  json_integer_value(json_object_get(all[i], "ts_ms")), i};
	if (rows)
		qsort(rows, got, sizeof(*rows), line_cmp);
	size_t from = got > nlines ? got - nlines : 0;
	for (size_t i = 0; i < got; i++) {
		json_t *l = rows ? rows[i].j : all[i];
		if (i >= from)
			json_array_append_new(arr, l);
		else
			json_decref(l);
	}
	free(rows);
	free(all);
	return arr;
}

/* Add a `logs -f` follow of worker (0: of type; type NULL: of every worker) to client c. */
static void logs_follow(struct client *c, json_t *id, uint64_t worker, const char *type)
{
	struct follow *f = realloc(c->follows, (c->nfollows + 1) * sizeof(*f));
	if (!f)
		fatal("out of memory");
	c->follows = f;
	f[c->nfollows].id = json_incref(id);
	f[c->nfollows].worker = worker;
	f[c->nfollows].type = type ? strdup(type) : NULL;
	if (type && !f[c->nfollows].type)
		fatal("out of memory");
	c->nfollows++;
}

/* logs [worker|type] [lines] [follow] [since_ms]; neither worker nor type: all workers */
static void cmd_logs(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *wv = json_object_get(req, "worker"), *tv = json_object_get(req, "type");
	json_t *fv = json_object_get(req, "follow");
	json_int_t nlines, since;
	struct logq q = {0, 0};
	struct type_rt *one = NULL;

	if (wv && tv) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST),
				   "logs takes \"worker\" or \"type\", not both");
		return;
	}
	if (!arg_int(c, id, req, "lines", 0, 100000, 100, &nlines) ||
	    !arg_int(c, id, req, "since_ms", 0, CTL_INT_MAX, 0, &since))
		return;
	q.since_ms = (uint64_t)since;
	if (wv) {
		if (!arg_worker(c, id, req, &q.worker))
			return;
		if (q.worker > d->next_worker_id) {
			client_reply_error(c, id, E(CTL_NO_SUCH_WORKER),
					   "no worker %llu was ever started",
					   (unsigned long long)q.worker);
			return;
		}
		one = type_of_worker_id(d, q.worker);
	} else if (tv) {
		one = arg_type(c, id, json_string_value(tv));
		if (!one)
			return;
	}
	json_t *arr;
	if (wv || tv) {
		arr = one ? logs_lines(&one, 1, &q, (size_t)nlines) : json_array();
	} else {
		size_t n = 0;
		struct type_rt *t, **ts;
		TAILQ_FOREACH(t, &d->types, entry)
		n++;
		ts = calloc(n ? n : 1, sizeof(*ts));
		n = 0;
		if (ts)
			TAILQ_FOREACH(t, &d->types, entry)
		ts[n++] = t;
		arr = logs_lines(ts, n, &q, (size_t)nlines);
		free(ts);
	}
	client_reply_ok(c, id, json_pack("{s:o}", "lines", arr));
	if (fv && json_is_true(fv)) {
		if (wv || tv)
			logs_follow(c, id, q.worker, one ? one->name : "");
		else
			logs_follow(c, id, 0, NULL); /* every worker, of types a reload adds too */
	}
}

/* stats [type] */
static void cmd_stats(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *tv = json_object_get(req, "type");
	unsigned queued = 0;
	struct type_rt *t;

	if (tv) {
		t = arg_type(c, id, json_string_value(tv));
		if (!t)
			return;
		client_reply_ok(c, id, stats_to_json(&t->stats, t->nqueued, t->nworkers));
		return;
	}
	TAILQ_FOREACH(t, &d->types, entry)
	queued += t->nqueued;
	client_reply_ok(c, id, stats_to_json(&d->stats, queued, d->nworkers));
}

/* describe type */
static void cmd_describe(struct client *c, json_t *id, json_t *req)
{
	json_t *tv = json_object_get(req, "type");
	if (!tv) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST), "describe needs \"type\"");
		return;
	}
	struct type_rt *t = arg_type(c, id, json_string_value(tv));
	if (!t)
		return;
	client_reply_ok(c, id, type_describe(t));
}

/* restart worker|type: each replaced by a new one that is ready before the old stops */
static void cmd_restart(struct client *c, json_t *id, json_t *req)
{
	struct daemon *d = c->srv->d;
	json_t *wv = json_object_get(req, "worker"), *tv = json_object_get(req, "type");

	if (!!wv == !!tv) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST),
				   "restart needs one of \"worker\" or \"type\"");
		return;
	}
	if (wv) {
		struct worker *w = arg_live_worker(c, id, req, false);
		if (w)
			pool_restart(d, &w->id, 1, c, id);
		return;
	}
	struct type_rt *t = arg_type(c, id, json_string_value(tv));
	if (!t)
		return;
	uint64_t *ids = calloc(t->nworkers ? t->nworkers : 1, sizeof(uint64_t));
	size_t n = 0;
	struct worker *w;
	if (!ids)
		fatal("out of memory");
	TAILQ_FOREACH(w, &t->workers, tentry)
	if (!w->reaped && w->state != W_STOPPING && n < t->nworkers)
		ids[n++] = w->id;
	pool_restart(d, ids, n, c, id);
	free(ids);
}

/* watch: ok, then state-change events until the client leaves. */
static void cmd_watch(struct client *c, json_t *id, json_t *req)
{
	(void)req;
	if (c->watch_id) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST), "this connection already watches");
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
	json_t *r = reload_from_file(d, &errors);
	if (!r) {
		client_reply_error(c, id, E(CTL_BAD_REQUEST), "config rejected, old one kept: %s",
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
    [CTL_CMD_PING] = cmd_ping,	       [CTL_CMD_TYPES] = cmd_types,
    [CTL_CMD_LIST] = cmd_list,	       [CTL_CMD_SPAWN] = cmd_spawn,
    [CTL_CMD_STOP] = cmd_stop,	       [CTL_CMD_KILL] = cmd_kill,
    [CTL_CMD_CALL] = cmd_call,	       [CTL_CMD_LOGS] = cmd_logs,
    [CTL_CMD_STATS] = cmd_stats,       [CTL_CMD_WATCH] = cmd_watch,
    [CTL_CMD_RELOAD] = cmd_reload,     [CTL_CMD_SHUTDOWN] = cmd_shutdown,
    [CTL_CMD_DESCRIBE] = cmd_describe, [CTL_CMD_RESTART] = cmd_restart,
};
