/*
 * logcap.c - worker log capture: stdout/stderr pipes split into lines, kept
 * in a bounded per-type history, streamed to followers, copied to our log.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

#define LOGLINE_MAX 4096u /* longer lines are cut and marked */
#define CUT_MARK    " [cut]"

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

/* Split buffered bytes into lines; keep a partial tail (outlen SIZE_MAX: skipping a cut line). */
static void logcap_split(struct worker *w, int stream, const char *data, size_t n, bool eof)
{
	int i = stream - 1;
	while (n) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		size_t have = w->outlen[i];
		if (have == SIZE_MAX) {
			/* The rest of a line already cut: drop it up to its newline. */
			if (!nl)
				return;
			w->outlen[i] = 0;
		} else if (have + take > LOGLINE_MAX) {
			char *buf = realloc(w->outbuf[i], LOGLINE_MAX);
			if (buf) {
				w->outbuf[i] = buf;
				memcpy(buf + have, data, LOGLINE_MAX - have);
				logcap_line(w, stream, buf, LOGLINE_MAX, true);
			}
			w->outlen[i] = nl ? 0 : SIZE_MAX;
			if (!nl)
				return;
		} else if (nl && have == 0) {
			logcap_line(w, stream, data, take, false);
		} else {
			char *buf = realloc(w->outbuf[i], have + take + 1);
			if (!buf)
				return;
			w->outbuf[i] = buf;
			memcpy(buf + have, data, take);
			w->outlen[i] = have + take;
			if (!nl)
				return;
			logcap_line(w, stream, buf, have + take, false);
			w->outlen[i] = 0;
		}
		data += take + 1;
		n -= take + 1;
	}
	if (eof && w->outlen[i] > 0 && w->outlen[i] != SIZE_MAX)
		logcap_line(w, stream, w->outbuf[i], w->outlen[i], false);
	if (eof)
		w->outlen[i] = 0;
}

/* Read what the pipe holds; on EOF close it. */
static void logcap_read(struct worker *w, int stream, bool final)
{
	int *fdp = stream == 1 ? &w->out_fd : &w->err_fd;
	struct event *ev = stream == 1 ? w->ev_out : w->ev_err;
	char buf[16384];

	if (*fdp < 0)
		return;
	for (int rounds = 0; rounds < (final ? 1024 : 8); rounds++) {
		ssize_t n = read(*fdp, buf, sizeof(buf));
		if (n > 0) {
			logcap_split(w, stream, buf, (size_t)n, false);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !final)
			return;
		/* EOF, error, or final drain done. */
		logcap_split(w, stream, "", 0, true);
		event_del(ev);
		close(*fdp);
		*fdp = -1;
		return;
	}
}

/* A worker pipe is readable. */
void logcap_on_readable(struct worker *w, int stream)
{
	logcap_read(w, stream, false);
}

/* The worker is reaped: take what the pipes still hold, then close them. */
void logcap_flush(struct worker *w)
{
	logcap_read(w, 1, true);
	logcap_read(w, 2, true);
}
