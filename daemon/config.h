/*
 * config.h - corrald's configuration: the JSON file of DESIGN.md, parsed,
 * validated and filled with defaults.  Every error names its JSON path.
 */
#ifndef CORRAL_CONFIG_H
#define CORRAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum worker_mode {
	MODE_BUILTIN,
	MODE_NATIVE,
	MODE_STDIO,
};

enum isolate_mode {
	ISOLATE_NONE,
	ISOLATE_KEY,
};

enum seccomp_mode {
	SECCOMP_NONE,	 /* "none": no filter (an explicit opt-out) */
	SECCOMP_DEFAULT, /* "default" */
	SECCOMP_STRICT,	 /* "strict" */
};

/* Namespace bits of sandbox.namespaces. */
#define NS_USER	 0x01u
#define NS_PID	 0x02u
#define NS_NET	 0x04u
#define NS_IPC	 0x08u
#define NS_UTS	 0x10u
#define NS_MOUNT 0x20u
#define NS_ALL	 0x3fu

struct pool_config {
	uint32_t min;		  /* default 0 */
	uint32_t max;		  /* default 4; >= 1, >= min */
	uint64_t idle_timeout_ms; /* default 10000 */
	uint64_t max_requests;	  /* default 0 = no limit */
	uint32_t queue;		  /* default 64 */
	enum isolate_mode isolate;
	uint32_t max_per_key; /* default 1; >= 1 */
	int32_t spares;	      /* pre-sandboxed processes kept; SPARES_AUTO (default): 1 once
				 min > 0 or a call spawned on demand, else 0 */
};

#define SPARES_AUTO (-1)
#define MAX_SPARES  64

struct restart_config {
	uint64_t backoff_ms[2]; /* default {100, 30000}; [0] <= [1] */
	uint32_t burst;		/* default 5 */
	uint64_t interval_ms;	/* default 10000 */
	uint64_t healthy_ms;	/* default 1000: a death later than this after ready is no crash */
};

struct limits_config {
	uint64_t timeout_ms;	   /* default 30000 */
	uint64_t memory_mb;	   /* default 0 = no limit */
	uint64_t cpu_s;		   /* default 0 = no limit */
	uint64_t nofile;	   /* default 256 */
	uint64_t nproc;		   /* default 64 */
	uint64_t output_kb;	   /* default 65536 */
	uint64_t start_timeout_ms; /* default 10000 */
};

struct sandbox_config {
	unsigned namespaces; /* NS_* bits; default NS_ALL */
	enum seccomp_mode seccomp;
	char **readonly; /* NULL-terminated; default the existing ones of /usr /bin /sbin /lib
			    /lib64 /etc */
	char **tmpfs;	 /* NULL-terminated; default /tmp */
	bool network;	 /* default false */
	char *user;	 /* NULL: default (nobody as root, else our own uid) */
};

struct type_config {
	char *name;
	enum worker_mode mode;
	char *builtin; /* MODE_BUILTIN: handler name ("echo", "sha256") */
	char **exec;   /* MODE_NATIVE/MODE_STDIO: argv, NULL-terminated, exec[0] absolute */
	struct pool_config pool;
	struct restart_config restart;
	struct limits_config limits;
	struct sandbox_config sandbox;
	uint32_t ring_kb; /* default 1024; power of two, >= 4 */
	char *canonical;  /* the type's JSON, normalized: equal strings = unchanged type */
};

struct config {
	char *socket_path;    /* NULL when not given */
	unsigned socket_mode; /* default 0660 */
	char *socket_group;   /* NULL when not given */
	uid_t *allow_uids;
	size_t n_allow_uids;
	char **allow_groups;  /* NULL-terminated */
	char *metrics_listen; /* NULL when not given */
	struct type_config *types;
	size_t ntypes;
};

/* Error list: each entry "json.path: what is wrong". */
struct config_errors {
	char **msgs;
	size_t n;
};

/* Parse a config file.  0 with *ret, or -1 with errs filled (at least one entry). */
int config_load_file(const char *path, struct config **ret, struct config_errors *errs);

/* Parse config JSON text (same rules). */
int config_load_string(const char *json, struct config **ret, struct config_errors *errs);

/* The embedded default: types echo and sha256, built in. */
struct config *config_default(void);
/* The embedded default's JSON text (what `corrald --print-default-config` shows). */
const char *config_default_json(void);

/* Look a type up by name; NULL when absent. */
const struct type_config *config_find_type(const struct config *c, const char *name);

void config_free(struct config *c);
void config_errors_free(struct config_errors *errs);

#endif
