/*
 * check.c - `corrald --check-config` against the system: every type's exec
 * program exists and is executable, and every user and group the config
 * names (sandbox.user, socket.group, allow.groups) exists.  The file parser
 * (config.c) knows nothing of the machine; these errors name the JSON path
 * the same way its own do.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_system.h"

/* Append "path: message" to errs; exits when out of memory, as config.c does. */
static void __attribute__((format(printf, 3, 4)))
check_err(struct config_errors *errs, const char *path, const char *fmt, ...)
{
	char *msg, *full;
	char **msgs;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0 || asprintf(&full, "%s: %s", path, msg) < 0)
		abort();
	free(msg);
	msgs = realloc(errs->msgs, (errs->n + 1) * sizeof(*msgs));
	if (!msgs)
		abort();
	msgs[errs->n++] = full;
	errs->msgs = msgs;
}

/* Whether s is a numeric id (any id is valid: nothing to look up). */
static bool check_numeric(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* The program at exec[0] exists, is a regular file and executable. */
static void check_exec(const struct type_config *t, struct config_errors *errs)
{
	const char *prog = t->exec[0];
	struct stat st;
	char path[512];

	snprintf(path, sizeof(path), "types.%s.exec[0]", t->name);
	if (stat(prog, &st) < 0) {
		check_err(errs, path, "%s: %s", prog, strerror(errno));
		return;
	}
	if (S_ISDIR(st.st_mode))
		check_err(errs, path, "%s: is a directory", prog);
	else if (!S_ISREG(st.st_mode))
		check_err(errs, path, "%s: not a regular file", prog);
	else if (!(st.st_mode & 0111) || access(prog, X_OK) < 0)
		check_err(errs, path, "%s: not executable (mode %04o)", prog,
			  (unsigned)(st.st_mode & 07777));
}

/* The user name at path exists (numeric ids always do). */
static void check_user(const char *path, const char *name, const char *note,
		       struct config_errors *errs)
{
	if (check_numeric(name))
		return;
	errno = 0;
	if (getpwnam(name))
		return;
	if (errno && errno != ENOENT && errno != ESRCH)
		check_err(errs, path, "cannot look up user \"%s\": %s", name, strerror(errno));
	else
		check_err(errs, path, "no such user \"%s\"%s", name, note);
}

/* The group name at path exists (numeric ids always do). */
static void check_group(const char *path, const char *name, struct config_errors *errs)
{
	if (check_numeric(name))
		return;
	errno = 0;
	if (getgrnam(name))
		return;
	if (errno && errno != ENOENT && errno != ESRCH)
		check_err(errs, path, "cannot look up group \"%s\": %s", name, strerror(errno));
	else
		check_err(errs, path, "no such group \"%s\"", name);
}

/* Check c against the system, appending one error per problem to errs; the count added. */
size_t config_check_system(const struct config *c, struct config_errors *errs)
{
	size_t before = errs->n;
	char path[512];

	if (c->socket_group)
		check_group("socket.group", c->socket_group, errs);
	for (size_t i = 0; c->allow_groups && c->allow_groups[i]; i++) {
		snprintf(path, sizeof(path), "allow.groups[%zu]", i);
		check_group(path, c->allow_groups[i], errs);
	}
	for (size_t i = 0; i < c->ntypes; i++) {
		const struct type_config *t = &c->types[i];

		if (t->mode != MODE_BUILTIN && t->exec && t->exec[0])
			check_exec(t, errs);
		snprintf(path, sizeof(path), "types.%s.sandbox.user", t->name);
		if (t->sandbox.user)
			check_user(path, t->sandbox.user, "", errs);
		else if (geteuid() == 0)
			check_user(path, "nobody", " (the default when corrald runs as root)",
				   errs);
	}
	return errs->n - before;
}
