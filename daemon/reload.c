/*
 * reload.c - a new configuration replaces the old one while everything runs:
 * unchanged types keep their workers, changed ones get a new generation (the
 * old one drains, its queue moves over, its log history and counters stay),
 * removed ones drain and go.  A rejected file keeps the old configuration.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sd.h"
#include "server.h"

/* Retire a type: it drains (busy workers finish), then is freed. */
static void reload_retire(struct daemon *d, struct type_rt *t, struct type_rt *successor)
{
	struct worker *w, *tmp;

	TAILQ_REMOVE(&d->types, t, entry);
	t->retired = true;
	spares_discard(t); /* made for the old configuration */
	if (t->refill_queued) {
		TAILQ_REMOVE(&d->refill, t, rentry);
		t->refill_queued = false;
	}
	if (successor) {
		/* One history per type name: `logs` and `stats` keep what came before. */
		loghist_put(successor->logs);
		successor->logs = t->logs;
		t->logs->refs++;
		successor->stats = t->stats;
	}
	event_del(t->backoff_timer);
	/* Queued calls move to the successor, or fail when the type is gone. */
	while (!TAILQ_EMPTY(&t->queue)) {
		struct call *c = TAILQ_FIRST(&t->queue);
		if (successor) {
			TAILQ_REMOVE(&t->queue, c, qentry);
			t->nqueued--;
			c->type = successor;
			TAILQ_INSERT_TAIL(&successor->queue, c, qentry);
			successor->nqueued++;
		} else {
			call_fail(c, CTL_UNKNOWN_TYPE, "type %s was removed by reload", t->name);
		}
	}
	if (t->nworkers == 0) {
		type_destroy(t);
		return;
	}
	TAILQ_INSERT_TAIL(&d->retired, t, entry);
	for (w = TAILQ_FIRST(&t->workers); w; w = tmp) {
		tmp = TAILQ_NEXT(w, tentry);
		worker_stop(w, t->cfg->limits.timeout_ms + 5000);
	}
}

/* Apply a new configuration; returns {added, removed, changed}. */
json_t *reload_apply(struct daemon *d, struct config *newcfg)
{
	struct config_holder *h = calloc(1, sizeof(*h));
	json_t *added = json_array(), *removed = json_array(), *changed = json_array();
	struct type_rt *t, *tmp;

	if (!h)
		fatal("out of memory");
	h->cfg = newcfg;
	h->refs = 1;
	for (t = TAILQ_FIRST(&d->types); t; t = tmp) {
		tmp = TAILQ_NEXT(t, entry);
		if (!config_find_type(newcfg, t->name)) {
			json_array_append_new(removed, json_string(t->name));
			reload_retire(d, t, NULL);
		}
	}
	for (size_t i = 0; i < newcfg->ntypes; i++) {
		const struct type_config *nc = &newcfg->types[i];
		struct type_rt *old = type_find(d, nc->name);
		if (old && strcmp(old->cfg->canonical, nc->canonical) == 0) {
			/* Unchanged: keep the workers, point at the new config. */
			config_holder_put(old->holder);
			old->holder = h;
			h->refs++;
			old->cfg = nc;
			old->min_paused = false;
			continue;
		}
		struct type_rt *nt = type_new(d, h, nc);
		if (old) {
			json_array_append_new(changed, json_string(nc->name));
			TAILQ_INSERT_AFTER(&d->types, old, nt, entry);
			reload_retire(d, old, nt);
		} else {
			json_array_append_new(added, json_string(nc->name));
			TAILQ_INSERT_TAIL(&d->types, nt, entry);
		}
	}
	config_holder_put(d->cfg);
	d->cfg = h;
	if (d->server)
		server_set_acl(d->server, newcfg);
	TAILQ_FOREACH(t, &d->types, entry)
	{
		pool_reconcile(t);
		pool_pump(t);
	}
	return json_pack("{s:o,s:o,s:o}", "added", added, "removed", removed, "changed", changed);
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

/* Re-read the config file; NULL with *ret_errors when it is rejected. */
json_t *reload_from_file(struct daemon *d, char **ret_errors)
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
	json_t *r = reload_apply(d, cfg);
	char *s = json_dumps(r, JSON_COMPACT);
	log_notice("reloaded configuration: %s", s ? s : "");
	free(s);
	sd_notifyf("READY=1");
	return r;
}
