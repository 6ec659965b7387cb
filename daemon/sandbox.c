/*
 * sandbox.c - which isolation layers this kernel and this daemon can apply.
 * Today the spawn path applies rlimits (and RLIMIT_AS for memory_mb); the
 * namespace, seccomp and cgroup layers are reported missing by `types` and
 * logged at start, never silently assumed.
 */
#include "corrald.h"

/* Layers available to workers. */
unsigned sandbox_probe(void)
{
	return SB_RLIMITS;
}
