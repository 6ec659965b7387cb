/*
 * reload.h - applying a new configuration: types added, removed, changed.
 */
#ifndef CORRAL_RELOAD_H
#define CORRAL_RELOAD_H

#include <jansson.h>

struct config;
struct daemon;

/* Apply a new configuration (taken); returns {added, removed, changed}. */
json_t *reload_apply(struct daemon *d, struct config *newcfg);
/* Re-read the config file (SIGHUP, `reload`); NULL with *ret_errors when it is rejected. */
json_t *reload_from_file(struct daemon *d, char **ret_errors);

#endif
