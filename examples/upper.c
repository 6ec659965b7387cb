/*
 * upper.c - a complete native corral worker: the result is the payload in
 * upper case.  Streams, so a payload of any size works through a small ring.
 *
 *	cc -o corral-example-upper upper.c $(pkg-config --cflags --libs libcorral-worker)
 */
#include <ctype.h>
#include <corral/worker.h>

/* Uppercase the payload, one contiguous chunk at a time, straight into the result ring. */
static int upper(struct corral_call *call, void *arg)
{
	const void *in;
	void *out;
	size_t n, room;
	int r;

	(void)arg;
	/* Request bytes in place in the ring; 0 once the payload is all read. */
	while ((r = corral_call_peek(call, &in, &n)) > 0) {
		/* Room in the result ring: transform straight into it, no copy in between. */
		r = corral_call_reserve(call, n, &out, &room);
		if (r < 0)
			return r;
		for (size_t i = 0; i < room; i++)
			((unsigned char *)out)[i] =
			    (unsigned char)toupper(((const unsigned char *)in)[i]);
		corral_call_consume(call, room);
		r = corral_call_commit(call, room);
		if (r < 0)
			return r;
	}
	return r; /* 0 at the end of the payload, or -errno */
}

int main(void)
{
	return corral_worker_run(upper, NULL);
}
