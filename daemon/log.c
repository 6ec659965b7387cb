/*
 * log.c - stderr logging with journald priority prefixes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level threshold = LOG_LVL_INFO;
static int journal;

static const char *const level_names[] = {
    [LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warn",	[LOG_LVL_NOTICE] = "notice",
    [LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
};

/* Set up from the environment and the wanted level. */
void log_init(enum log_level level)
{
	threshold = level;
	journal = getenv("JOURNAL_STREAM") != NULL;
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
	ssize_t w = write(STDERR_FILENO, buf, len);
	(void)w;
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
