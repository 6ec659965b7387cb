/*
 * ctl.h - corralctl's shared state: the command table entry, the run context,
 * commands and replies through libcorral, argument parsing and output.
 */
#ifndef CORRALCTL_CTL_H
#define CORRALCTL_CTL_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <corral/client.h>

#include "control.h"

/* Exit statuses (DESIGN.md, "The CLI"). */
#define CTL_EXIT_OK	 0
#define CTL_EXIT_ERROR	 1
#define CTL_EXIT_USAGE	 2
#define CTL_EXIT_CONNECT 3

struct ctl;

/* One command: name, argument synopsis, one-line summary, longer help, handler. */
struct cli_cmd {
	const char *name;
	const char *args;
	const char *summary;
	const char *help; /* paragraphs and options, each line ending in a newline */
	int (*exec)(struct ctl *ctl, int argc, char **argv);
};

/* Everything one corralctl run shares between main and a command. */
struct ctl {
	const char *socket_path;
	bool json;
	const struct cli_cmd *cmd;
	struct corral *conn;
};

/* main.c */
void ctl_usage(FILE *f, const struct cli_cmd *cmd);
int ctl_usage_error(struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* session.c */
void ctl_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ctl_oom(void) __attribute__((noreturn));
int ctl_connect(struct ctl *ctl);
void ctl_print_replies(struct ctl *ctl, bool on);
int ctl_fail(const struct corral_error *err);
int ctl_command(struct ctl *ctl, enum ctl_cmd_id cmd, json_t *args, json_t **ret_reply);
int ctl_command_start(struct ctl *ctl, enum ctl_cmd_id cmd, json_t *args,
		      struct corral_pending **ret_pending);
int ctl_command_wait(struct corral_pending *pending, json_t **ret_reply);
int ctl_stream_next(struct corral_stream *s, struct corral_event *ret_event);
void ctl_disconnect(struct ctl *ctl);
void out_flush(void);
void out_write(const void *buf, size_t len);

/* args.c */
#define ARGS_END  (-1)
#define ARGS_HELP (-2) /* --help printed usage to stdout: exit 0 */
#define ARGS_BAD  (-3) /* a usage error was reported: exit 2 */
int args_next(struct ctl *ctl, int argc, char **argv, const char *shortopts,
	      const struct option *longopts);
int args_stop(int c);
int args_simple(struct ctl *ctl, int argc, char **argv, int min, int max);
int args_positional(struct ctl *ctl, int argc, char **argv, int min, int max);
int args_usage_error(struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool args_is_id(const char *s);
int args_number(struct ctl *ctl, const char *what, const char *s, long long min, long long max,
		long long *ret_value);
int args_option_number(struct ctl *ctl, char **argv, int c, enum ctl_cmd_id cmd, const char *arg,
		       long long *ret_value);
const char *args_typed(char **argv, int opt, const struct option *longopts);
const char *args_flag(char **argv, int c);
int args_duration(struct ctl *ctl, char **argv, int c, long long *ret_ms);
const char *args_signal(const char *s);
int args_target(struct ctl *ctl, json_t *req, const char *arg);
json_t *args_new(void);
bool args_utf8(const char *s);

/* The commands. */
int cmd_ping(struct ctl *ctl, int argc, char **argv);
int cmd_types(struct ctl *ctl, int argc, char **argv);
int cmd_list(struct ctl *ctl, int argc, char **argv);
int cmd_stats(struct ctl *ctl, int argc, char **argv);
int cmd_top(struct ctl *ctl, int argc, char **argv);
int cmd_spawn(struct ctl *ctl, int argc, char **argv);
int cmd_stop(struct ctl *ctl, int argc, char **argv);
int cmd_kill(struct ctl *ctl, int argc, char **argv);
int cmd_call(struct ctl *ctl, int argc, char **argv);
int cmd_logs(struct ctl *ctl, int argc, char **argv);
int cmd_watch(struct ctl *ctl, int argc, char **argv);
int cmd_reload(struct ctl *ctl, int argc, char **argv);
int cmd_shutdown(struct ctl *ctl, int argc, char **argv);
int cmd_describe(struct ctl *ctl, int argc, char **argv);
int cmd_restart(struct ctl *ctl, int argc, char **argv);
int cmd_help(struct ctl *ctl, int argc, char **argv);

#endif
