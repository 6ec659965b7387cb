/*
 * check_system.h - the checks `corrald --check-config` makes against the system
 * beyond the file itself: programs, users and groups the config names.
 */
#ifndef CORRAL_CHECK_SYSTEM_H
#define CORRAL_CHECK_SYSTEM_H

#include "config.h"

size_t config_check_system(const struct config *c, struct config_errors *errs);

#endif
