/*
 * logcap.c - worker log capture: stdout/stderr pipes split into lines, kept
 * in a bounded per-type history, streamed to followers, copied to our log.
 *
 * Fair to everyone else on the loop (DESIGN.md "Principles"): each event
 * reads one slice of a pipe and keeps at most a few lines (the rest of the
 * slice waits for the next loop turn); lines past a per-worker rate are
 * dropped and counted, the count logged at most once a second ("worker 3:
 * 120000 lines suppressed"); and a worker writing faster than the daemon
 * should ever read is simply not read for the rest of a short window, so the
 * pipe fills and its writes block instead of the daemon spinning.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "server.h"

#define LOGLINE_MAX 4096u /* longer lines are cut and marked */
#define CUT_MARK    " [cut]"

#define LOG_SLICE	   (16u * 1024u)	/* bytes read per event */
#define LOG_KEEP_PER_EVENT 8u			/* lines kept per event */
#define LOG_KEEP_FINAL	   1024u		/* lines kept from what an exited worker left */
#define LOG_RATE	   2000u		/* lines kept per second per worker, */
#define LOG_BURST	   10000u		/* after a burst of this many */
#define LOG_WINDOW_MS	   100u			/* a pipe is read at most */
#define LOG_WINDOW_BYTES   (2u * 1024u * 1024u) /* this many bytes per window */
#define LOG_REPORT_MS	   1000u		/* suppressed counts logged at most this often */
#define LOG_FOREVER	   UINT64_MAX

/* A worker's log capture state beyond the partial lines (struct worker's outbuf). */
struct logcap {
	struct event *timer; /* next slice, end of a throttled window, or a report */
	uint64_t tokens;     /* lines we may keep, in thousandths */
	uint64_t tokens_ms;  /* last refill */
	uint64_t win_ms;     /* start of the read window */
	size_t win_bytes;    /* read in it */
	bool throttled;	     /* window's bytes spent: pipes not read until it ends */
	uint64_t suppressed; /* lines dropped since the last report */
	uint64_t report_ms;  /* when to report them */
	struct {
		char *buf; /* read but not yet split (the keep budget ran out) */
		size_t off, len;
	} pend[2];
};

/* An empty history holding at most cap lines, with one reference. */
struct loghist *loghist_new(size_t cap)
{
	struct loghist *h = calloc(1, sizeof(*h));
	if (!h || !(h->lines = calloc(cap, sizeof(*h->lines))))
		fatal("out of memory");
	h->cap = cap;
	h->refs = 1;
	return h;
}

/* Drop one reference; the last frees the history. */
void loghist_put(struct loghist *h)
{
	if (!h || --h->refs > 0)
		return;
	for (size_t i = 0; i < h->n; i++)
		free(h->lines[(h->start + i) % h->cap].text);
	free(h->lines);
	free(h);
}

/* Keep one line (the oldest goes when full), tell followers and our log. */
static void logcap_line(struct worker *w, int stream, const char *text, size_t len, bool cut)
{
	struct type_rt *t = w->type;
	struct loghist *h = t->logs;
	char *s = malloc(len + sizeof(CUT_MARK));
	if (!s)
		return;
	memcpy(s, text, len);
	if (cut) {
		memcpy(s + len, CUT_MARK, sizeof(CUT_MARK));
	} else {
		s[len] = '\0';
	}
	/* Not valid UTF-8 would break JSON: replace bytes jansson refuses. */
	json_t *probe = json_string(s);
	if (!probe) {
		for (char *p = s; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	} else {
		json_decref(probe);
	}
	struct logline *l;
	if (h->n == h->cap) {
		l = &h->lines[h->start];
		free(l->text);
		h->start = (h->start + 1) % h->cap;
		h->n--;
	}
	l = &h->lines[(h->start + h->n) % h->cap];
	h->n++;
	l->worker = w->id;
	l->ts_ms = now_ms();
	l->stream = (uint8_t)stream;
	l->text = s;
	log_info("%s[%llu] %s: %s", t->name, (unsigned long long)w->id,
		 stream == 1 ? "stdout" : "stderr", s);
	server_emit_log(w->d, t, l);
}

static void logcap_on_timer(evutil_socket_t fd, short what, void *arg);

/* Milliseconds on the monotonic clock. */
static uint64_t mono_ms(void)
{
	return mono_us() / 1000;
}

/* The worker's capture state, made on first use. */
static struct logcap *logcap_get(struct worker *w)
{
	struct logcap *lc = w->logcap;

	if (lc)
		return lc;
	lc = calloc(1, sizeof(*lc));
	if (!lc || !(lc->timer = evtimer_new(w->d->base, logcap_on_timer, w)))
		fatal("out of memory");
	lc->tokens = (uint64_t)LOG_BURST * 1000;
	lc->tokens_ms = lc->win_ms = mono_ms();
	w->logcap = lc;
	return lc;
}

/* True when a line may be kept now (refills at LOG_RATE up to LOG_BURST). */
static bool logcap_has_token(struct logcap *lc)
{
	uint64_t now = mono_ms();
	if (now > lc->tokens_ms) {
		lc->tokens += (now - lc->tokens_ms) * LOG_RATE;
		if (lc->tokens > (uint64_t)LOG_BURST * 1000)
			lc->tokens = (uint64_t)LOG_BURST * 1000;
		lc->tokens_ms = now;
	}
	return lc->tokens >= 1000;
}

/* One complete line: kept (a token and a line of this event's budget) or counted. */
static void logcap_emit(struct worker *w, int stream, const char *text, size_t len, bool cut,
			unsigned *budget)
{
	struct logcap *lc = w->logcap;

	if (logcap_has_token(lc) && *budget > 0) {
		lc->tokens -= 1000;
		(*budget)--;
		logcap_line(w, stream, text, len, cut);
		return;
	}
	if (lc->suppressed++ == 0)
		lc->report_ms = mono_ms() + LOG_REPORT_MS;
}

/* Log how many lines were dropped since the last report. */
static void logcap_report(struct worker *w)
{
	struct logcap *lc = w->logcap;

	if (!lc->suppressed)
		return;
	log_notice("%s worker %llu: %llu lines suppressed (over %u lines/s)", w->type->name,
		   (unsigned long long)w->id, (unsigned long long)lc->suppressed, LOG_RATE);
	lc->suppressed = 0;
}

/*
 * Split bytes into lines, keeping a partial tail in the worker's outbuf
 * (outlen SIZE_MAX: skipping the rest of a cut line).  Stops before a line it
 * would keep once *budget is spent; returns the bytes consumed.
 */
static size_t logcap_split(struct worker *w, int stream, const char *data, size_t n, bool eof,
			   unsigned *budget)
{
	const char *start = data;
	int i = stream - 1;

	while (n) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		size_t have = w->outlen[i];
		if (have != SIZE_MAX && (nl || have + take > LOGLINE_MAX) && *budget == 0 &&
		    logcap_has_token(w->logcap))
			return (size_t)(data - start); /* would keep it: next turn */
		if (have == SIZE_MAX) {
			/* The rest of a line already cut: drop it up to its newline. */
			if (!nl)
				return (size_t)(data + n - start);
			w->outlen[i] = 0;
		} else if (have + take > LOGLINE_MAX) {
			char *buf = realloc(w->outbuf[i], LOGLINE_MAX);
			if (buf) {
				w->outbuf[i] = buf;
				memcpy(buf + have, data, LOGLINE_MAX - have);
				logcap_emit(w, stream, buf, LOGLINE_MAX, true, budget);
			}
			w->outlen[i] = nl ? 0 : SIZE_MAX;
			if (!nl)
				return (size_t)(data + n - start);
		} else if (nl && have == 0) {
			logcap_emit(w, stream, data, take, false, budget);
		} else {
			char *buf = realloc(w->outbuf[i], have + take + 1);
			if (!buf)
				return (size_t)(data + n - start);
			w->outbuf[i] = buf;
			memcpy(buf + have, data, take);
			w->outlen[i] = have + take;
			if (!nl)
				return (size_t)(data + n - start);
			w->outlen[i] = 0;
			logcap_emit(w, stream, buf, have + take, false, budget);
		}
		data += take + 1;
		n -= take + 1;
	}
	if (eof && w->outlen[i] > 0 && w->outlen[i] != SIZE_MAX) {
		size_t len = w->outlen[i];
		w->outlen[i] = 0;
		logcap_emit(w, stream, w->outbuf[i], len, false, budget);
	}
	if (eof)
		w->outlen[i] = 0;
	return (size_t)(data - start);
}

/* Split what an earlier slice left pending; true when nothing is left. */
static bool logcap_pending(struct worker *w, int i, unsigned *budget)
{
	struct logcap *lc = w->logcap;

	if (!lc->pend[i].buf)
		return true;
	lc->pend[i].off += logcap_split(w, i + 1, lc->pend[i].buf + lc->pend[i].off,
					lc->pend[i].len - lc->pend[i].off, false, budget);
	if (lc->pend[i].off < lc->pend[i].len)
		return false;
	free(lc->pend[i].buf);
	lc->pend[i].buf = NULL;
	lc->pend[i].off = lc->pend[i].len = 0;
	return true;
}

/* Keep the unsplit rest of a slice for the next turn. */
static void logcap_defer(struct worker *w, int i, const char *data, size_t n)
{
	struct logcap *lc = w->logcap;
	char *buf = malloc(n);

	if (!buf) {
		lc->suppressed++; /* at worst part of a line is lost, and counted */
		return;
	}
	memcpy(buf, data, n);
	lc->pend[i].buf = buf;
	lc->pend[i].off = 0;
	lc->pend[i].len = n;
}

/* Read the pipes when nothing is pending nor throttled; arm the timer for the rest. */
static void logcap_arm(struct worker *w)
{
	struct logcap *lc = w->logcap;
	uint64_t now = mono_ms(), at = LOG_FOREVER;

	for (int i = 0; i < 2; i++) {
		int fd = i == 0 ? w->out_fd : w->err_fd;
		struct event *ev = i == 0 ? w->ev_out : w->ev_err;
		if (lc->pend[i].buf)
			at = now;
		if (fd < 0)
			continue;
		if (lc->throttled || lc->pend[i].buf)
			event_del(ev);
		else
			event_add(ev, NULL);
	}
	if (lc->throttled && lc->win_ms + LOG_WINDOW_MS < at)
		at = lc->win_ms + LOG_WINDOW_MS;
	if (lc->suppressed && lc->report_ms < at)
		at = lc->report_ms;
	if (at == LOG_FOREVER) {
		event_del(lc->timer);
		return;
	}
	struct timeval tv = tv_ms(at > now ? at - now : 0);
	evtimer_add(lc->timer, &tv);
}

/* The timer: report suppressed lines, end a throttled window, split pending slices. */
static void logcap_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct logcap *lc = w->logcap;
	uint64_t now = mono_ms();
	unsigned budget = LOG_KEEP_PER_EVENT;
	(void)fd;
	(void)what;

	if (lc->suppressed && now >= lc->report_ms)
		logcap_report(w);
	if (lc->throttled && now >= lc->win_ms + LOG_WINDOW_MS)
		lc->throttled = false;
	for (int i = 0; i < 2; i++)
		logcap_pending(w, i, &budget);
	logcap_arm(w);
}

/* Read one slice of a pipe (after what is pending); on EOF close it. */
static void logcap_read(struct worker *w, int stream, unsigned *budget)
{
	struct logcap *lc = logcap_get(w);
	int i = stream - 1;
	int *fdp = stream == 1 ? &w->out_fd : &w->err_fd;
	struct event *ev = stream == 1 ? w->ev_out : w->ev_err;
	char buf[LOG_SLICE];

	if (*fdp < 0 || !logcap_pending(w, i, budget) || lc->throttled)
		return;
	ssize_t n = read(*fdp, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF or error. */
		logcap_split(w, stream, "", 0, true, budget);
		event_del(ev);
		close(*fdp);
		*fdp = -1;
		return;
	}
	uint64_t now = mono_ms();
	if (now >= lc->win_ms + LOG_WINDOW_MS) {
		lc->win_ms = now;
		lc->win_bytes = 0;
	}
	lc->win_bytes += (size_t)n;
	if (lc->win_bytes >= LOG_WINDOW_BYTES)
		lc->throttled = true;
	size_t used = logcap_split(w, stream, buf, (size_t)n, false, budget);
	if (used < (size_t)n)
		logcap_defer(w, i, buf + used, (size_t)n - used);
}

/* A worker pipe is readable: one slice, a few lines kept. */
void logcap_on_readable(struct worker *w, int stream)
{
	unsigned budget = LOG_KEEP_PER_EVENT;

	logcap_read(w, stream, &budget);
	logcap_arm(w);
}

/* The worker is reaped: take what the pipes still hold, then close them. */
void logcap_flush(struct worker *w)
{
	struct logcap *lc = logcap_get(w);
	unsigned budget = LOG_KEEP_FINAL;

	for (int stream = 1; stream <= 2; stream++) {
		int i = stream - 1;
		int *fdp = stream == 1 ? &w->out_fd : &w->err_fd;
		struct event *ev = stream == 1 ? w->ev_out : w->ev_err;
		char buf[LOG_SLICE];

		/* What is pending, then the pipe: bounded, as a process the worker left
		 * behind may still write into it. */
		if (!logcap_pending(w, i, &budget)) {
			budget = 0;
			logcap_pending(w, i, &budget); /* out of budget: counted, not kept */
		}
		for (int rounds = 0; *fdp >= 0 && rounds < 1024; rounds++) {
			ssize_t n = read(*fdp, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			size_t used = logcap_split(w, stream, buf, (size_t)n, false, &budget);
			if (used < (size_t)n) {
				unsigned none = 0;
				lc->tokens = 0; /* the rest is counted, not kept */
				logcap_split(w, stream, buf + used, (size_t)n - used, false, &none);
			}
		}
		if (*fdp >= 0) {
			logcap_split(w, stream, "", 0, true, &budget);
			event_del(ev);
			close(*fdp);
			*fdp = -1;
		}
	}
	logcap_report(w);
	event_free(lc->timer);
	free(lc->pend[0].buf);
	free(lc->pend[1].buf);
	free(lc);
	w->logcap = NULL;
}
