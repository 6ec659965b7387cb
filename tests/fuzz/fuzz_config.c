/*
 * fuzz_config.c - the config parser and validator (daemon/config.c) on
 * arbitrary text: it must reject or accept without crashing, and whatever it
 * returns must be freeable (no leaks under LeakSanitizer).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes as a C string (an embedded NUL ends the text, as it would from a file). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	struct config_errors errs = {0};
	char *text = malloc(size + 1);
	int r;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	r = config_load_string(text, &cfg, &errs);
	if (r == 0) {
		/* Accepted: a config and no errors; every type can be found by its name. */
		if (!cfg || errs.n != 0)
			__builtin_trap();
		for (size_t i = 0; i < cfg->ntypes; i++)
			if (config_find_type(cfg, cfg->types[i].name) != &cfg->types[i])
				__builtin_trap();
	} else {
		/* Rejected: at least one message, each naming something. */
		if (r != -1 || errs.n == 0)
			__builtin_trap();
		for (size_t i = 0; i < errs.n; i++)
			if (!errs.msgs[i] || !errs.msgs[i][0])
				__builtin_trap();
	}
	config_free(cfg);
	config_errors_free(&errs);
	free(text);
	return 0;
}
