/*
 * log.c - stderr logging with journald priority prefixes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static enum log_level threshold = LOG_LVL_INFO;
static int journal;
static unsigned long dropped; /* lines lost to a full non-blocking stderr */

static const char *const level_names[] = {
    [LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warn",	[LOG_LVL_NOTICE] = "notice",
    [LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
};

/* Set up from the environment and the wanted level. */
void log_init(enum log_level level)
{
	struct stat st;

	threshold = level;
	journal = getenv("JOURNAL_STREAM") != NULL;
	/* The daemon never blocks, not even on its log: to a socket or a pipe (journald,
	 * a log collector) lines that do not fit are dropped and counted instead. */
	if (fstat(STDERR_FILENO, &st) == 0 && (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))) {
		int fl = fcntl(STDERR_FILENO, F_GETFL);
		if (fl >= 0)
			fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
	}
}

/* Parse a level name; -1 when unknown. */
int log_parse_level(const char *s)
{
	for (int i = LOG_LVL_ERR; i <= LOG_LVL_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

/* The current threshold. */
enum log_level log_get_level(void)
{
	return threshold;
}

/* Write one line to stderr: one write(2), so concurrent lines never interleave. */
static void log_vwrite(enum log_level lvl, const char *fmt, va_list ap)
{
	char buf[4096];
	int n;

	if (journal)
		n = snprintf(buf, sizeof(buf), "<%d>", (int)lvl);
	else
		n = snprintf(buf, sizeof(buf), "corrald[%ld]: %s: ", (long)getpid(),
			     level_names[lvl]);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	if (dropped) {
		char note[96];
		int k = snprintf(note, sizeof(note),
				 "corrald: %lu log lines dropped (log reader too slow)\n", dropped);
		if (k > 0 && write(STDERR_FILENO, note, (size_t)k) == k)
			dropped = 0;
	}
	if (write(STDERR_FILENO, buf, len) < 0 && errno == EAGAIN)
		dropped++;
}

/* Log one message at lvl when the threshold allows. */
void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > threshold)
		return;
	va_start(ap, fmt);
	log_vwrite(lvl, fmt, ap);
	va_end(ap);
}

/* Abort on a broken invariant. */
void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	abort();
}
