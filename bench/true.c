/*
 * bench/true.c - the floors the benchmarks compare against, dynamically
 * linked C programs that do (next to) nothing:
 *   bench-true   exits 0 (the exec floor of bench-lifecycle)
 *   bench-hello  writes one byte on fd 3, a socketpair, and exits 0 (the bare
 *                fork+exec handshake of bench-call); built with -DBENCH_HELLO
 */
#ifdef BENCH_HELLO
#include <unistd.h>
#endif

int main(void)
{
#ifdef BENCH_HELLO
	return write(3, "!", 1) == 1 ? 0 : 1;
#else
	return 0;
#endif
}
