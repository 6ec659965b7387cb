/*
 * conn.h - corralctl's connection to corrald: a blocking UNIX stream socket
 * carrying newline-terminated lines, with file descriptors riding as
 * SCM_RIGHTS.  Knows nothing of JSON.
 */
#ifndef CORRALCTL_CONN_H
#define CORRALCTL_CONN_H

#include <stddef.h>
#include <stdint.h>

/* Longest line either way, newline excluded (DESIGN.md: 1 MiB). */
#define CONN_LINE_MAX (1024u * 1024u)

/* Most fds kept with one received line; extra ones are closed. */
#define CONN_LINE_FDS 4u

struct conn;

/* One received line: text (not NUL-terminated, newline stripped) and its fds. */
struct conn_line {
	const char *text;
	size_t len;
	int fds[CONN_LINE_FDS];
	size_t nfds;
};

int conn_open(const char *path, struct conn **ret_conn);
int conn_send(struct conn *c, const char *line, size_t len, int fd);
int conn_recv_line(struct conn *c, struct conn_line *ret_line);
int conn_line_take_fd(struct conn_line *line);
void conn_line_close_fds(struct conn_line *line);
void conn_close(struct conn *c);
int conn_fileno(const struct conn *c);

#endif
