/*
 * log.h - corrald's log: stderr, with <N> priority prefixes under journald.
 */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/* Set up from the environment ($JOURNAL_STREAM) and the wanted level. */
void log_init(enum log_level level);
/* Parse "error", "warn", "notice", "info", "debug"; -1 when unknown. */
int log_parse_level(const char *s);
/* The current threshold. */
enum log_level log_get_level(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Abort on a broken invariant. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
