/*
 * fmt.c - human output: durations as 340ms / 3.4s / 3m12s / 1h2m / 2d3h,
 * sizes as KiB / MiB / GiB, local ISO timestamps, strings with terminal
 * controls escaped, and tables whose columns line up.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "fmt.h"

/*
 * Copy s with terminal controls escaped as \xNN (C0, DEL) or \uNNNN (C1):
 * text from workers must not drive the user's terminal.  Tabs stay, and
 * newlines too when keep_newlines.  Returns a new string.
 */
char *fmt_safe(const char *s, size_t len, bool keep_newlines)
{
	char *out = malloc(len * 6 + 1), *p = out;

	if (!out)
		ctl_oom();
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t' && !(c == '\n' && keep_newlines)) || c == 0x7f) {
			p += sprintf(p, "\\x%02x", c);
		} else if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
			   (unsigned char)s[i + 1] <= 0x9f) {
			p += sprintf(p, "\\u%04x", (unsigned char)s[++i]);
		} else {
			*p++ = (char)c;
		}
	}
	*p = '\0';
	return out;
}

/* Cell text for a JSON value: numbers, safe strings, "-" for null or absent. */
char *fmt_json(json_t *v)
{
	char *s = NULL;
	int r = 0;

	if (json_is_string(v))
		return fmt_safe(json_string_value(v), json_string_length(v), false);
	if (json_is_integer(v))
		r = asprintf(&s, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		r = asprintf(&s, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		s = strdup(json_is_true(v) ? "yes" : "no");
	else if (!v || json_is_null(v))
		s = strdup("-");
	else
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (r < 0 || !s)
		ctl_oom();
	return s;
}

/* Write a duration given in milliseconds: 340ms, 3.4s, 3m12s, 1h2m, 2d3h. */
void fmt_duration_ms(char *buf, long long ms)
{
	if (ms < 0)
		snprintf(buf, FMT_BUF, "-");
	else if (ms < 1000)
		snprintf(buf, FMT_BUF, "%lldms", ms);
	else if (ms < 60 * 1000)
		snprintf(buf, FMT_BUF, "%lld.%llds", ms / 1000, ms % 1000 / 100);
	else if (ms < 3600 * 1000)
		snprintf(buf, FMT_BUF, "%lldm%llds", ms / 60000, ms % 60000 / 1000);
	else if (ms < 86400LL * 1000)
		snprintf(buf, FMT_BUF, "%lldh%lldm", ms / 3600000, ms % 3600000 / 60000);
	else
		snprintf(buf, FMT_BUF, "%lldd%lldh", ms / 86400000, ms % 86400000 / 3600000);
}

/* Write a duration given in microseconds: 850us, 1.2ms, then as fmt_duration_ms. */
void fmt_duration_us(char *buf, long long us)
{
	if (us < 0)
		snprintf(buf, FMT_BUF, "-");
	else if (us < 1000)
		snprintf(buf, FMT_BUF, "%lldus", us);
	else if (us < 1000 * 1000)
		snprintf(buf, FMT_BUF, "%lld.%lldms", us / 1000, us % 1000 / 100);
	else
		fmt_duration_ms(buf, us / 1000);
}

/* Write a size given in KiB: 812KiB, 12.3MiB, 1.5GiB. */
void fmt_size_kb(char *buf, long long kb)
{
	if (kb < 0)
		snprintf(buf, FMT_BUF, "-");
	else if (kb < 1024)
		snprintf(buf, FMT_BUF, "%lldKiB", kb);
	else if (kb < 1024 * 1024)
		snprintf(buf, FMT_BUF, "%lld.%lldMiB", kb / 1024, kb % 1024 * 10 / 1024);
	else
		snprintf(buf, FMT_BUF, "%lld.%lldGiB", kb / (1024 * 1024),
			 kb % (1024 * 1024) * 10 / (1024 * 1024));
}

/* Write a Unix time in milliseconds as local 2024-05-01T12:03:04.123. */
void fmt_time_ms(char *buf, long long ts_ms)
{
	time_t t = (time_t)(ts_ms / 1000);
	struct tm tm;
	size_t n;

	if (ts_ms < 0 || !localtime_r(&t, &tm)) {
		snprintf(buf, FMT_BUF, "-");
		return;
	}
	n = strftime(buf, FMT_BUF, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, FMT_BUF - n, ".%03lld", ts_ms % 1000);
}

/* The current Unix time in milliseconds. */
long long fmt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The integer at obj[key], or -1 when absent or not an integer. */
long long fmt_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* Start an empty table with ncols columns, their headings and alignments. */
void fmt_table_init(struct fmt_table *t, size_t ncols, const char *const *heads, const char *align)
{
	*t = (struct fmt_table){.ncols = ncols, .heads = heads, .align = align};
}

/* Append one cell (taken over); cells fill rows left to right. */
void fmt_table_add(struct fmt_table *t, char *cell)
{
	if (t->ncells == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char **cells = realloc(t->cells, cap * sizeof(*cells));

		if (!cells)
			ctl_oom();
		t->cells = cells;
		t->cap = cap;
	}
	t->cells[t->ncells++] = cell;
}

/* Append one cell from a printf format. */
void fmt_table_addf(struct fmt_table *t, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		ctl_oom();
	fmt_table_add(t, s);
}

/* Append one cell showing a JSON value. */
void fmt_table_add_json(struct fmt_table *t, json_t *v)
{
	fmt_table_add(t, fmt_json(v));
}

/* Columns a UTF-8 string takes: its code points. */
static size_t fmt_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* Columns tables may take; 0: no limit.  See fmt_terminal_columns(). */
size_t fmt_columns;

/*
 * The columns output may take: $COLUMNS when set (as ls does), else the
 * width of the terminal on stdout, else 0 (no limit: a pipe or a file).
 */
size_t fmt_terminal_columns(void)
{
	const char *env = getenv("COLUMNS");
	struct winsize ws;

	if (env && *env) {
		long v = strtol(env, NULL, 10);

		if (v > 0 && v < 10000)
			return (size_t)v;
	}
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
		return 0;
	return ws.ws_col;
}

/* Write s in at most width columns: cut with "…" when longer.  Returns the columns used. */
static size_t fmt_cell(const char *s, size_t width)
{
	size_t w = fmt_width(s), n = 0, cols = 0;

	if (w <= width) {
		out_write(s, strlen(s));
		return w;
	}
	if (width == 0)
		return 0;
	/* width - 1 code points, then the ellipsis. */
	while (s[n] && cols < width - 1) {
		n++;
		while (((unsigned char)s[n] & 0xc0) == 0x80)
			n++;
		cols++;
	}
	out_write(s, n);
	out_write("\xe2\x80\xa6", 3);
	return width;
}

/* Print one row: cells padded to widths, two spaces apart, no trailing blanks. */
static void fmt_table_row(const struct fmt_table *t, const char *const *row, const size_t *widths)
{
	for (size_t c = 0; c < t->ncols; c++) {
		size_t w = fmt_width(row[c]), pad = w < widths[c] ? widths[c] - w : 0;
		bool right = t->align[c] == 'r';
		bool last = c + 1 == t->ncols;

		if (c)
			out_write("  ", 2);
		for (size_t i = 0; right && i < pad; i++)
			out_write(" ", 1);
		fmt_cell(row[c], widths[c]);
		for (size_t i = 0; !right && !last && i < pad; i++)
			out_write(" ", 1);
	}
	out_write("\n", 1);
}

/*
 * Narrow the columns until the row fits fmt_columns: the left-aligned (text)
 * columns give up width first, the widest first, never below 4 columns or
 * their heading; numbers are never cut.
 */
static void fmt_table_fit(const struct fmt_table *t, size_t *widths)
{
	size_t total = 2 * (t->ncols - 1);

	for (size_t c = 0; c < t->ncols; c++)
		total += widths[c];
	while (fmt_columns && total > fmt_columns) {
		size_t best = t->ncols;

		for (size_t c = 0; c < t->ncols; c++) {
			size_t floor = t->heads ? fmt_width(t->heads[c]) : 0;

			if (floor < 4)
				floor = 4;
			if (t->align[c] == 'l' && widths[c] > floor &&
			    (best == t->ncols || widths[c] > widths[best])) {
				best = c;
			}
		}
		if (best == t->ncols)
			return; /* nothing left to give: the line wraps */
		widths[best]--;
		total--;
	}
}

/* Print the headings (unless NULL) and every complete row with aligned columns. */
void fmt_table_print(const struct fmt_table *t)
{
	size_t widths[FMT_TABLE_MAX_COLS] = {0};
	size_t nrows = t->ncells / t->ncols;

	static bool asked;

	if (t->ncols > FMT_TABLE_MAX_COLS)
		abort();
	if (!asked && !fmt_columns)
		fmt_columns = fmt_terminal_columns();
	asked = true;

	for (size_t c = 0; c < t->ncols; c++)
		widths[c] = t->heads ? fmt_width(t->heads[c]) : 0;
	for (size_t r = 0; r < nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = fmt_width(t->cells[r * t->ncols + c]);

			if (w > widths[c])
				widths[c] = w;
		}
	}
	fmt_table_fit(t, widths);
	if (t->heads)
		fmt_table_row(t, t->heads, widths);
	for (size_t r = 0; r < nrows; r++)
		fmt_table_row(t, (const char *const *)t->cells + r * t->ncols, widths);
}

/* Free every cell; the table is empty again. */
void fmt_table_free(struct fmt_table *t)
{
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->ncells = t->cap = 0;
}
