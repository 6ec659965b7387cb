/*
 * fuzz_ring.c - the ring's consumer and producer over hostile shared memory.
 * The input is a program: a prefix overwrites the whole shared area (header,
 * both ring_ctl, data), then each op either pokes shared memory (a peer
 * writing at any moment) or runs a ring operation.  Nothing may crash, hang,
 * or touch memory outside the area; private indices must stay consistent.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP  4096u
#define SIZE (RING_HDR_SIZE + 2 * CAP)

static uint8_t *area;

/* Private state must always satisfy the invariants ring.c relies on. */
static void check(const struct ring *r)
{
	if (r->head % RING_ALIGN || r->tail % RING_ALIGN || r->head - r->tail > r->cap)
		__builtin_trap();
	if (r->roff > r->cap || r->rlen > r->cap)
		__builtin_trap();
}

/* Read n input bytes as a little number; 0 past the end. */
static uint64_t take(const uint8_t **p, const uint8_t *end, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && *p < end; i++, (*p)++)
		v |= (uint64_t) * *p << (8 * i);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[2 * CAP];
	const uint8_t *p = data, *end = data + size;
	struct ring prod, cons;

	if (area == NULL) {
		/* Guard pages around the area turn any stray access into a crash. */
		uint8_t *m = mmap(NULL, SIZE + 2 * 4096, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			abort();
		mprotect(m, 4096, PROT_NONE);
		mprotect(m + 4096 + SIZE, 4096, PROT_NONE);
		area = m + 4096;
	}
	memset(area, 0, SIZE);
	/* Both directions use ring 0's control block and data, as two processes would. */
	prod = (struct ring){
	    .ctl = area + RING_CTL_OFFSET(0), .data = area + RING_HDR_SIZE, .cap = CAP};
	cons = prod;
	/* Start anywhere valid: private state is trusted, shared state is not. */
	uint64_t base = take(&p, end, 8) * RING_ALIGN;
	uint64_t used = (take(&p, end, 2) % (CAP / RING_ALIGN + 1)) * RING_ALIGN;

	prod.tail = base;
	prod.head = base + used;
	cons.tail = base;
	cons.head = base;

	/* Initial shared contents. */
	size_t n = take(&p, end, 2) % (SIZE + 1);

	if (n > (size_t)(end - p))
		n = (size_t)(end - p);
	memcpy(area, p, n);
	p += n;

	for (int ops = 0; p < end && ops < 1000; ops++) {
		uint8_t op = (uint8_t)take(&p, end, 1);
		size_t len = take(&p, end, 2) % (2 * CAP);

		switch (op % 8) {
		case 0: { /* the peer pokes 8 bytes anywhere in the area */
			uint64_t off = take(&p, end, 2) % (SIZE - 8);
			uint64_t v = take(&p, end, 8);

			memcpy(area + off, &v, 8);
			break;
		}
		case 1: { /* the peer publishes a plausible head or tail */
			struct ring_ctl *c = (struct ring_ctl *)(area + RING_CTL_OFFSET(0));
			uint64_t v = take(&p, end, 2);

			if (op & 8)
				atomic_store(&c->head, cons.tail + v);
			else
				atomic_store(&c->tail, prod.tail + v);
			break;
		}
		case 2: {
			const void *q;
			size_t got;
			int ret = ring_peek(&cons, &q, &got);

			if (ret == 1) {
				if ((const uint8_t *)q < cons.data ||
				    (const uint8_t *)q + got > cons.data + CAP || got == 0)
					__builtin_trap();
				memcpy(buf, q, got);
				ring_consume(&cons, len);
			} else if (ret != 0 && ret != -EPROTO) {
				__builtin_trap();
			}
			break;
		}
		case 3: {
			long ret = ring_read(&cons, buf, len);

			if (ret != -EPROTO && (ret < 0 || (size_t)ret > len))
				__builtin_trap();
			break;
		}
		case 4: {
			size_t wr = 0;
			int ret = ring_write(&prod, buf, len, &wr);

			if (ret != 0 && ret != -EPROTO)
				__builtin_trap();
			if (wr > len)
				__builtin_trap();
			break;
		}
		case 5: {
			size_t got;
			uint8_t *q = ring_reserve(&prod, len, &got);

			if (q != NULL) {
				if (q < prod.data || q + got > prod.data + CAP || got > len)
					__builtin_trap();
				memset(q, 0xab, got);
			}
			ring_commit(&prod, take(&p, end, 2) % (2 * CAP));
			break;
		}
		case 6:
			(void)ring_producer_wake_needed(&prod);
			(void)ring_consumer_wake_needed(&cons);
			break;
		case 7:
			(void)ring_producer_prepare_sleep(&prod);
			(void)ring_consumer_prepare_sleep(&cons);
			break;
		}
		check(&prod);
		check(&cons);
	}
	return 0;
}
