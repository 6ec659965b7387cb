/*
 * fmt.h - human output for corralctl: units, timestamps, safe strings and
 * aligned tables.
 */
#ifndef CORRALCTL_FMT_H
#define CORRALCTL_FMT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Enough for any string fmt_duration_*, fmt_size_kb or fmt_time_ms writes. */
#define FMT_BUF 48

char *fmt_safe(const char *s, size_t len, bool keep_newlines);
char *fmt_json(json_t *v);
void fmt_duration_ms(char *buf, long long ms);
void fmt_duration_us(char *buf, long long us);
void fmt_size_kb(char *buf, long long kb);
void fmt_time_ms(char *buf, long long ts_ms);
long long fmt_now_ms(void);
long long fmt_int(json_t *obj, const char *key);

/* Most columns a table may have. */
#define FMT_TABLE_MAX_COLS 16

/* A table of text cells printed with aligned columns. */
struct fmt_table {
	size_t ncols;
	const char *const *heads;
	const char *align; /* one 'l' or 'r' per column */
	char **cells;	   /* row after row, ncols each */
	size_t ncells, cap;
};

extern size_t fmt_columns;
size_t fmt_terminal_columns(void);
void fmt_table_init(struct fmt_table *t, size_t ncols, const char *const *heads, const char *align);
void fmt_table_add(struct fmt_table *t, char *cell);
void fmt_table_addf(struct fmt_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fmt_table_add_json(struct fmt_table *t, json_t *v);
void fmt_table_print(const struct fmt_table *t);
void fmt_table_free(struct fmt_table *t);

#endif
