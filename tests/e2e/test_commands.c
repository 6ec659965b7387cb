/*
 * test_commands.c - describe, restart, stats TYPE and logs of all workers
 * against a real corrald.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

int main(void)
{
	Suite *s = suite_create("e2e-commands");
	return h_main(s);
}
