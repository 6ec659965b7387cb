/*
 * main.c - corrald: options, configuration, the event loop, signals.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_system.h"
#include "corral-config.h"
#include "log.h"
#include "metrics.h"
#include "sandbox.h"
#include "sd.h"
#include "server.h"

#define DEFAULT_CONFIG "/etc/corral/corral.json"

/* Print usage. */
static void usage(FILE *f)
{
	fprintf(f, "usage: corrald [--config FILE] [--socket PATH] [--check-config FILE]\n"
		   "               [--log-level error|warn|notice|info|debug] [--version]\n"
		   "               [--print-default-config]\n");
}

/* Print every config error, one per line; returns the count. */
static size_t print_errors(FILE *f, const char *prefix, const struct config_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(f, "%s%s\n", prefix, e->msgs[i]);
	return e->n;
}

/* Join config errors with "; " into a malloc'd string. */
static char *join_errors(const struct config_errors *e)
{
	size_t len = 1;
	for (size_t i = 0; i < e->n; i++)
		len += strlen(e->msgs[i]) + 2;
	char *s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < e->n; i++) {
		if (i)
			strcat(s, "; ");
		strcat(s, e->msgs[i]);
	}
	return s;
}

/* Tell systemd how things stand. */
void daemon_notify_status(struct daemon *d)
{
	static uint64_t last_ms;
	static unsigned last_workers = (unsigned)-1;
	if (!getenv("NOTIFY_SOCKET"))
		return;
	uint64_t now = now_ms();
	if (d->nworkers == last_workers && now - last_ms < 1000)
		return;
	last_ms = now;
	last_workers = d->nworkers;
	sd_notifyf("STATUS=%u workers, %llu calls ok, %llu failed", d->nworkers,
		   (unsigned long long)d->stats.calls_ok,
		   (unsigned long long)d->stats.calls_failed);
}

/* Re-read the config file; NULL with *ret_errors when it is rejected. */
json_t *daemon_reload_from_file(struct daemon *d, char **ret_errors)
{
	struct config_errors errs = {0};
	struct config *cfg = NULL;

	*ret_errors = NULL;
	sd_notifyf("RELOADING=1");
	if (!d->config_path) {
		cfg = config_default();
	} else if (config_load_file(d->config_path, &cfg, &errs) < 0) {
		*ret_errors = join_errors(&errs);
		for (size_t i = 0; i < errs.n; i++)
			log_err("reload: %s", errs.msgs[i]);
		config_errors_free(&errs);
		sd_notifyf("READY=1");
		return NULL;
	}
	json_t *r = daemon_reload(d, cfg);
	char *s = json_dumps(r, JSON_COMPACT);
	log_notice("reloaded configuration: %s", s ? s : "");
	free(s);
	sd_notifyf("READY=1");
	return r;
}

/* Signals, delivered by libevent from the loop. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	switch (sig) {
	case SIGCHLD:
		daemon_reap(d);
		break;
	case SIGTERM:
	case SIGINT:
		log_notice("%s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		daemon_begin_shutdown(d, 10000);
		break;
	case SIGHUP: {
		char *errors = NULL;
		json_t *r = daemon_reload_from_file(d, &errors);
		json_decref(r);
		free(errors);
		break;
	}
	}
}

/*
 * Send READY=1 once the socket listens and every type's min workers said
 * hello (types in crash-loop backoff do not hold it back).  Called at start and
 * on every hello and exit until it has fired: no polling.
 */
void daemon_ready_check(struct daemon *d)
{
	struct type_rt *t;

	if (d->ready_sent || !d->server)
		return;
	TAILQ_FOREACH(t, &d->types, entry)
	{
		if (t->cfg->pool.isolate == ISOLATE_KEY || type_in_backoff(t) || t->min_paused)
			continue;
		if (t->nstate[W_IDLE] + t->nstate[W_BUSY] < t->cfg->pool.min && !d->shutting_down)
			return;
	}
	d->ready_sent = true;
	sd_notifyf("READY=1\nSTATUS=%u workers", d->nworkers);
	log_notice("ready: %u workers", d->nworkers);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 's'},
	    {"check-config", required_argument, NULL, 'k'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"version", no_argument, NULL, 'V'},
	    {"print-default-config", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = NULL, *socket_arg = NULL;
	int level = LOG_LVL_INFO, c;
	struct daemon d = {0};

	while ((c = getopt_long(argc, argv, "c:s:k:l:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 's':
			socket_arg = optarg;
			break;
		case 'k': {
			struct config *cfg = NULL;
			struct config_errors errs = {0};
			if (config_load_file(optarg, &cfg, &errs) < 0 ||
			    config_check_system(cfg, &errs) > 0) {
				print_errors(stderr, "", &errs);
				config_errors_free(&errs);
				config_free(cfg);
				return 1;
			}
			printf("%s: ok (%zu types)\n", optarg, cfg->ntypes);
			config_free(cfg);
			return 0;
		}
		case 'l':
			level = log_parse_level(optarg);
			if (level < 0) {
				fprintf(stderr, "corrald: unknown log level %s\n", optarg);
				return 2;
			}
			break;
		case 'V':
			printf("corrald %s\n", CORRAL_VERSION);
			return 0;
		case 'P': {
			json_t *j = json_loads(config_default_json(), 0, NULL);
			char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
			json_decref(j);
			if (!s)
				return 1;
			printf("%s\n", s);
			free(s);
			return 0;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	log_init((enum log_level)level);
	srandom((unsigned)(getpid() ^ time(NULL)));

	struct config *cfg = NULL;
	if (!config_path && access(DEFAULT_CONFIG, F_OK) == 0)
		config_path = DEFAULT_CONFIG;
	if (config_path) {
		struct config_errors errs = {0};
		if (config_load_file(config_path, &cfg, &errs) < 0) {
			for (size_t i = 0; i < errs.n; i++)
				log_err("%s", errs.msgs[i]);
			config_errors_free(&errs);
			return 1;
		}
		d.config_path = strdup(config_path);
	} else {
		cfg = config_default();
		log_info("no config file: serving the embedded default (echo, sha256)");
	}

	d.start_ms = now_ms();
	d.uid = geteuid();
	d.uid_root = d.uid == 0;
	TAILQ_INIT(&d.types);
	TAILQ_INIT(&d.retired);
	TAILQ_INIT(&d.workers);
	d.worker_path = spawn_find_worker_binary();
	if (access(d.worker_path, X_OK) < 0)
		log_warn("worker binary %s: %s", d.worker_path, strerror(errno));
	d.sb_available = sandbox_probe(&d);

	struct event_config *ec = event_config_new();
	event_config_avoid_method(ec, "select");
	d.base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!d.base || event_base_priority_init(d.base, EV_NPRIO) < 0) {
		log_err("cannot create the event loop");
		config_free(cfg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	d.ev_sigchld = evsignal_new(d.base, SIGCHLD, on_signal, &d);
	d.ev_sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
	d.ev_sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
	d.ev_sighup = evsignal_new(d.base, SIGHUP, on_signal, &d);
	event_add(d.ev_sigchld, NULL);
	event_add(d.ev_sigterm, NULL);
	event_add(d.ev_sigint, NULL);
	event_add(d.ev_sighup, NULL);

	d.cfg = calloc(1, sizeof(*d.cfg));
	if (!d.cfg)
		fatal("out of memory");
	d.cfg->cfg = cfg;
	d.cfg->refs = 1;
	d.socket_path = server_default_path(socket_arg, cfg);
	int rc = 0;
	if (server_start(&d, d.socket_path, cfg) < 0) {
		rc = 1;
		goto out;
	}
	log_notice("corrald %s listening on %s", CORRAL_VERSION, d.socket_path);
	spawn_init(); /* while our fd table is small */
	/* A configured listener that cannot bind is fatal: never run unobserved by mistake. */
	if (cfg->metrics_listen && !(d.metrics = metrics_start(&d, cfg->metrics_listen))) {
		rc = 1;
		goto out;
	}
	daemon_types_init(&d, d.cfg);
	struct type_rt *t;
	TAILQ_FOREACH(t, &d.types, entry)
	type_reconcile(t);
	sd_watchdog_start(d.base);
	daemon_ready_check(&d);

	event_base_dispatch(d.base);

out:
	/* Drained (or never started): say goodbye to clients, release everything. */
	for (int i = 0; i < 50 && !server_flush_all(d.server); i++)
		usleep(2000);
	sd_watchdog_stop();
	if (d.shutdown_timer)
		event_free(d.shutdown_timer);
	metrics_free(d.metrics);
	server_free(d.server, d.socket_path);
	while (!TAILQ_EMPTY(&d.types)) {
		t = TAILQ_FIRST(&d.types);
		TAILQ_REMOVE(&d.types, t, entry);
		type_destroy(t);
	}
	while (!TAILQ_EMPTY(&d.retired)) {
		t = TAILQ_FIRST(&d.retired);
		TAILQ_REMOVE(&d.retired, t, entry);
		type_destroy(t);
	}
	config_holder_put(d.cfg);
	event_free(d.ev_sigchld);
	event_free(d.ev_sigterm);
	event_free(d.ev_sigint);
	event_free(d.ev_sighup);
	event_base_free(d.base);
	free(d.worker_path);
	free(d.socket_path);
	free(d.config_path);
	if (rc == 0)
		log_notice("exited cleanly");
	return rc;
}
