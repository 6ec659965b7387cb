/*
 * cmd_top.c - top: a live view of corrald, as htop shows processes.
 *
 * Each refresh sends types, list and stats on the one connection.  The view
 * is a header (totals and rates since the previous refresh), one row per
 * type and one per worker, sorted by a column the user picks with a key.
 * On a terminal it runs in the alternate screen with the keyboard in
 * non-canonical mode, redraws at once on a resize (SIGWINCH) or a key, and
 * restores the terminal on q, ^C, SIGTERM or SIGHUP.  Without a terminal on
 * stdout it prints one snapshot, with no escape sequences.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "fmt.h"

/* The columns workers sort by, and the key that picks each. */
enum top_sort { TOP_SORT_ID, TOP_SORT_CPU, TOP_SORT_REQS, TOP_SORT_RSS, TOP_SORT_UPTIME };

static const struct {
	const char *name;
	char key;
} top_sorts[] = {
    [TOP_SORT_ID] = {"id", 'i'},	 [TOP_SORT_CPU] = {"cpu", 'c'},
    [TOP_SORT_REQS] = {"reqs", 'r'},	 [TOP_SORT_RSS] = {"rss", 'm'},
    [TOP_SORT_UPTIME] = {"uptime", 'u'},
};

#define TOP_NSORTS (sizeof(top_sorts) / sizeof(top_sorts[0]))

/* One worker as shown: what list said, and its CPU share since the last refresh. */
struct top_worker {
	json_t *w; /* borrowed from the list reply */
	long long id, cpu_ms, requests, rss_kb, uptime_ms;
	double cpu_pct;
};

/* One refresh: the three replies and when they came. */
struct top_frame {
	json_t *types, *list, *stats;
	long long mono_ms;
};

/* The view's state across refreshes. */
struct top {
	struct top_frame cur, prev;
	enum top_sort sort;
	long long delay_ms;
	bool tty;
};

static volatile sig_atomic_t top_resized, top_quit;

/* SIGWINCH: redraw at the next turn of the loop. */
static void top_on_winch(int sig)
{
	(void)sig;
	top_resized = 1;
}

/* SIGINT, SIGTERM, SIGHUP: leave, restoring the terminal. */
static void top_on_quit(int sig)
{
	(void)sig;
	top_quit = 1;
}

/* Milliseconds on the monotonic clock. */
static long long top_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Release a frame's replies. */
static void top_frame_free(struct top_frame *f)
{
	json_decref(f->types);
	json_decref(f->list);
	json_decref(f->stats);
	*f = (struct top_frame){0};
}

/* Fetch a new frame (types, list and stats, pipelined); 0 or the exit status. */
static int top_fetch(struct ctl *ctl, struct top *t)
{
	static const enum ctl_cmd_id cmds[] = {CTL_CMD_TYPES, CTL_CMD_LIST, CTL_CMD_STATS};
	struct top_frame next = {0};
	json_t **slots[] = {&next.types, &next.list, &next.stats};
	struct corral_pending *pending[3];
	int r;

	for (size_t i = 0; i < 3; i++) {
		r = ctl_command_start(ctl, cmds[i], NULL, &pending[i]);
		if (r)
			return r;
	}
	/* After a failure, the commands not waited for go with the connection. */
	for (size_t i = 0; i < 3; i++) {
		r = ctl_command_wait(pending[i], slots[i]);
		if (r) {
			top_frame_free(&next);
			return r;
		}
	}
	next.mono_ms = top_mono_ms();
	top_frame_free(&t->prev);
	t->prev = t->cur;
	t->cur = next;
	return 0;
}

/* The worker with id in the previous frame's list, or NULL. */
static json_t *top_prev_worker(const struct top *t, long long id)
{
	size_t i;
	json_t *w;

	json_array_foreach(json_object_get(t->prev.list, "workers"), i,
			   w) if (fmt_int(w, "id") == id) return w;
	return NULL;
}

/* Order two workers by the chosen column, biggest first (ids ascending). */
static int top_cmp(const void *a, const void *b, void *arg)
{
	const struct top_worker *x = a, *y = b;
	enum top_sort sort = *(enum top_sort *)arg;
	double dx = 0, dy = 0;

	switch (sort) {
	case TOP_SORT_ID:
		break;
	case TOP_SORT_CPU:
		dx = x->cpu_pct;
		dy = y->cpu_pct;
		break;
	case TOP_SORT_REQS:
		dx = (double)x->requests;
		dy = (double)y->requests;
		break;
	case TOP_SORT_RSS:
		dx = (double)x->rss_kb;
		dy = (double)y->rss_kb;
		break;
	case TOP_SORT_UPTIME:
		dx = (double)x->uptime_ms;
		dy = (double)y->uptime_ms;
		break;
	}
	if (dx != dy)
		return dx < dy ? 1 : -1;
	return (x->id > y->id) - (x->id < y->id);
}

/* The workers of the current frame with their CPU share, sorted; *ret_n set. */
static struct top_worker *top_workers(const struct top *t, size_t *ret_n)
{
	json_t *arr = json_object_get(t->cur.list, "workers");
	long long dt = t->cur.mono_ms - t->prev.mono_ms;
	size_t n = json_array_size(arr), i;
	struct top_worker *ws = calloc(n ? n : 1, sizeof(*ws));
	enum top_sort sort = t->sort;
	json_t *w;

	if (!ws)
		ctl_oom();
	json_array_foreach(arr, i, w)
	{
		struct top_worker *tw = &ws[i];
		json_t *old = t->prev.list ? top_prev_worker(t, fmt_int(w, "id")) : NULL;

		tw->w = w;
		tw->id = fmt_int(w, "id");
		tw->cpu_ms = fmt_int(w, "cpu_ms");
		tw->requests = fmt_int(w, "requests");
		tw->rss_kb = fmt_int(w, "rss_kb");
		tw->uptime_ms = fmt_int(w, "uptime_ms");
		/* Since the last refresh; for a worker new to this one, over its life. */
		if (old && dt > 0)
			tw->cpu_pct =
			    100.0 * (double)(tw->cpu_ms - fmt_int(old, "cpu_ms")) / (double)dt;
		else if (tw->uptime_ms > 0 && tw->cpu_ms >= 0)
			tw->cpu_pct = 100.0 * (double)tw->cpu_ms / (double)tw->uptime_ms;
		if (tw->cpu_pct < 0)
			tw->cpu_pct = 0;
	}
	qsort_r(ws, n, sizeof(*ws), top_cmp, &sort);
	*ret_n = n;
	return ws;
}

/* "12.5/s" for the growth of stats[key] since the last refresh; "-" on the first. */
static void top_rate(char *buf, const struct top *t, const char *key, const char *key2)
{
	long long dt = t->cur.mono_ms - t->prev.mono_ms;
	long long now, before;

	if (!t->prev.stats || dt <= 0) {
		snprintf(buf, FMT_BUF, "-");
		return;
	}
	now = fmt_int(t->cur.stats, key) + (key2 ? fmt_int(t->cur.stats, key2) : 0);
	before = fmt_int(t->prev.stats, key) + (key2 ? fmt_int(t->prev.stats, key2) : 0);
	snprintf(buf, FMT_BUF, "%.1f/s", now >= before ? (double)(now - before) * 1000 / dt : 0.0);
}

/* Print one line, cut to the terminal's width (fmt_columns) when there is one. */
static void __attribute__((format(printf, 1, 2))) top_line(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	if (fmt_columns && n > fmt_columns)
		n = fmt_columns; /* the header is ASCII */
	while (n && buf[n - 1] == ' ')
		n--;
	out_write(buf, n);
	out_write("\n", 1);
}

/* Print the header: time, totals and rates; returns the lines used. */
static int top_header(const struct top *t)
{
	json_t *st = t->cur.stats;
	char now[FMT_BUF], calls[FMT_BUF], fails[FMT_BUF], spawns[FMT_BUF];
	char p50[FMT_BUF], p99[FMT_BUF], p999[FMT_BUF];
	size_t i, busy = 0, idle = 0, other = 0;
	json_t *w;

	json_array_foreach(json_object_get(t->cur.list, "workers"), i, w)
	{
		const char *state = json_string_value(json_object_get(w, "state"));

		if (state && strcmp(state, "busy") == 0)
			busy++;
		else if (state && strcmp(state, "idle") == 0)
			idle++;
		else
			other++;
	}
	fmt_time_ms(now, fmt_now_ms());
	top_rate(calls, t, "calls_ok", "calls_failed");
	top_rate(fails, t, "calls_failed", NULL);
	top_rate(spawns, t, "spawned", NULL);
	fmt_duration_us(p50, fmt_int(st, "call_p50_us"));
	fmt_duration_us(p99, fmt_int(st, "call_p99_us"));
	fmt_duration_us(p999, fmt_int(st, "call_p999_us"));
	top_line("corralctl top  %s  sort %s%s", now, top_sorts[t->sort].name,
		 t->tty ? "  (q quit; i c r m u sort)" : "");
	top_line("workers %zu: %zu busy, %zu idle, %zu other   queued %lld   spawns %s",
		 busy + idle + other, busy, idle, other, fmt_int(st, "queued"), spawns);
	top_line("calls %lld ok, %lld failed   %s, failing %s   crashed %lld, restarts %lld",
		 fmt_int(st, "calls_ok"), fmt_int(st, "calls_failed"), calls, fails,
		 fmt_int(st, "crashed"), fmt_int(st, "restarts"));
	top_line("latency p50 %s  p99 %s  p99.9 %s\n", p50, p99, p999);
	return 5;
}

/* Print one row per type: its workers, queue, and the workers' requests, CPU and memory. */
static int top_types(const struct top *t, const struct top_worker *ws, size_t n)
{
	static const char *const heads[] = {"TYPE",   "MODE",  "WORKERS", "BUSY",
					    "QUEUED", "REQ/S", "CPU%",	  "RSS"};
	long long dt = t->cur.mono_ms - t->prev.mono_ms;
	struct fmt_table tab;
	json_t *ty;
	size_t i;
	int rows = 1;

	fmt_table_init(&tab, 8, heads, "llrrrrrr");
	json_array_foreach(json_object_get(t->cur.types, "types"), i, ty)
	{
		const char *name = json_string_value(json_object_get(ty, "name"));
		long long reqs = 0, rss = 0;
		double cpu = 0;
		char buf[FMT_BUF];

		for (size_t k = 0; name && k < n; k++) {
			const char *wt = json_string_value(json_object_get(ws[k].w, "type"));
			json_t *old;

			if (!wt || strcmp(wt, name) != 0)
				continue;
			cpu += ws[k].cpu_pct;
			rss += ws[k].rss_kb > 0 ? ws[k].rss_kb : 0;
			old = t->prev.list ? top_prev_worker(t, ws[k].id) : NULL;
			if (old && ws[k].requests >= fmt_int(old, "requests"))
				reqs += ws[k].requests - fmt_int(old, "requests");
		}
		fmt_table_add_json(&tab, json_object_get(ty, "name"));
		fmt_table_add_json(&tab, json_object_get(ty, "mode"));
		fmt_table_add_json(&tab, json_object_get(ty, "workers"));
		fmt_table_add_json(&tab, json_object_get(ty, "busy"));
		fmt_table_add_json(&tab, json_object_get(ty, "queued"));
		if (t->prev.list && dt > 0)
			fmt_table_addf(&tab, "%.1f", (double)reqs * 1000 / (double)dt);
		else
			fmt_table_addf(&tab, "-");
		fmt_table_addf(&tab, "%.1f", cpu);
		fmt_size_kb(buf, rss);
		fmt_table_addf(&tab, "%s", buf);
		rows++;
	}
	fmt_table_print(&tab);
	fmt_table_free(&tab);
	out_write("\n", 1);
	return rows + 1;
}

/* Print the worker rows, at most max of them (0: all). */
static void top_worker_rows(const struct top_worker *ws, size_t n, size_t max)
{
	static const char *const heads[] = {"ID",     "PID",  "TYPE", "KEY", "STATE",
					    "UPTIME", "REQS", "CPU%", "RSS"};
	struct fmt_table tab;
	char buf[FMT_BUF];

	fmt_table_init(&tab, 9, heads, "rrlllrrrr");
	for (size_t i = 0; i < n && (!max || i < max); i++) {
		json_t *w = ws[i].w;

		fmt_table_add_json(&tab, json_object_get(w, "id"));
		fmt_table_add_json(&tab, json_object_get(w, "pid"));
		fmt_table_add_json(&tab, json_object_get(w, "type"));
		fmt_table_add_json(&tab, json_object_get(w, "key"));
		fmt_table_add_json(&tab, json_object_get(w, "state"));
		fmt_duration_ms(buf, ws[i].uptime_ms);
		fmt_table_addf(&tab, "%s", buf);
		fmt_table_add_json(&tab, json_object_get(w, "requests"));
		fmt_table_addf(&tab, "%.1f", ws[i].cpu_pct);
		fmt_size_kb(buf, ws[i].rss_kb);
		fmt_table_addf(&tab, "%s", buf);
	}
	fmt_table_print(&tab);
	fmt_table_free(&tab);
	if (max && n > max)
		printf("(%zu more)", n - max);
}

/* Draw the current frame; on a terminal, from the top left, fitted to its size. */
static void top_draw(struct top *t)
{
	struct winsize ws = {0};
	struct top_worker *workers;
	size_t n, max = 0;
	int used;

	if (t->tty) {
		ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws);
		fmt_columns = ws.ws_col;
		fputs("\033[H\033[2J", stdout);
	} else if (!fmt_columns) {
		fmt_columns = fmt_terminal_columns();
	}
	workers = top_workers(t, &n);
	used = top_header(t);
	used += top_types(t, workers, n);
	/* The heading and a line for "(N more)"; at least one worker row. */
	if (t->tty && ws.ws_row)
		max = ws.ws_row > used + 3 ? (size_t)(ws.ws_row - used - 2) : 1;
	top_worker_rows(workers, n, max);
	free(workers);
	out_flush();
}

/* The sort a name or key picks; -1 if none. */
static int top_sort_parse(const char *name, char key)
{
	for (size_t i = 0; i < TOP_NSORTS; i++)
		if ((name && strcmp(name, top_sorts[i].name) == 0) ||
		    (key && key == top_sorts[i].key))
			return (int)i;
	return -1;
}

/*
 * Wait for the next refresh, a key or a resize; returns false to quit.  Keys
 * q and Q quit; the sort keys re-sort and redraw at once.
 */
static bool top_wait(struct top *t, bool keys)
{
	long long deadline = top_mono_ms() + t->delay_ms;

	for (;;) {
		struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
		long long left = deadline - top_mono_ms();
		char c;
		int n;

		if (top_quit)
			return false;
		if (top_resized) {
			top_resized = 0;
			top_draw(t);
		}
		if (left <= 0)
			return true;
		n = poll(&pfd, keys ? 1 : 0, (int)left);
		if (n <= 0)
			continue; /* a signal (EINTR) or the refresh time */
		if (read(STDIN_FILENO, &c, 1) != 1) {
			keys = false; /* stdin closed: refresh on time only */
			continue;
		}
		if (c == 'q' || c == 'Q')
			return false;
		if (top_sort_parse(NULL, c) >= 0) {
			t->sort = (enum top_sort)top_sort_parse(NULL, c);
			top_draw(t);
		}
	}
}

/* Catch sig with handler, without SA_RESTART so that poll() wakes. */
static void top_catch(int sig, void (*handler)(int))
{
	struct sigaction sa = {.sa_handler = handler};

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* top [-s COLUMN] [-d SECS]: the live view; one snapshot when stdout is no terminal. */
int cmd_top(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"sort", required_argument, NULL, 's'},
	    {"delay", required_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	struct top t = {.sort = TOP_SORT_ID, .delay_ms = 1000};
	struct termios saved, raw;
	bool keys = false;
	long long secs;
	int c, r;

	while ((c = args_next(ctl, argc, argv, "s:d:", opts)) != ARGS_END) {
		switch (c) {
		case 's':
			if (top_sort_parse(optarg, 0) < 0)
				return ctl_usage_error(
				    ctl,
				    "invalid %s '%s': sort by id, cpu, reqs, rss "
				    "or uptime",
				    args_flag(argv, c), optarg);
			t.sort = (enum top_sort)top_sort_parse(optarg, 0);
			break;
		case 'd':
			if (args_number(ctl, args_flag(argv, c), optarg, 1, 3600, &secs))
				return CTL_EXIT_USAGE;
			t.delay_ms = secs * 1000;
			break;
		default:
			return args_stop(c);
		}
	}
	if (args_positional(ctl, argc, argv, 0, 0))
		return CTL_EXIT_USAGE;
	t.tty = isatty(STDOUT_FILENO) && !ctl->json;

	r = top_fetch(ctl, &t);
	if (r || !t.tty) {
		if (!r && !ctl->json)
			top_draw(&t);
		goto out;
	}
	top_catch(SIGWINCH, top_on_winch);
	top_catch(SIGINT, top_on_quit);
	top_catch(SIGTERM, top_on_quit);
	top_catch(SIGHUP, top_on_quit);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		keys = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	fputs("\033[?1049h\033[?25l", stdout); /* the alternate screen, no cursor */
	top_draw(&t);
	while (top_wait(&t, keys)) {
		r = top_fetch(ctl, &t);
		if (r)
			break;
		top_draw(&t);
	}
	fputs("\033[?25h\033[?1049l", stdout);
	out_flush();
	if (keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
out:
	top_frame_free(&t.cur);
	top_frame_free(&t.prev);
	return r;
}
