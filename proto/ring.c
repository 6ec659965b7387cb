/*
 * ring.c - the memfd shared ring (see ring.h for the layout and the protocol).
 *
 * Every value read from shared memory is read once into a local, validated,
 * and only then used.  Private state (struct ring) is the only source of
 * truth about our own index; the peer's index is trusted only after it passed
 * the checks below, and then cached so a busy stream touches the peer's cache
 * line only when the cached view runs out.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"

_Static_assert(sizeof(struct ring_shm_hdr) <= 64, "shm header fits before ring_ctl[0]");
_Static_assert(sizeof(struct ring_ctl) == 128, "ring_ctl is two cache lines");
_Static_assert(RING_CTL_OFFSET(2) <= RING_HDR_SIZE, "both ring_ctl fit in the header page");
_Static_assert(RING_ALIGN == RING_REC_HDR, "a record header is one alignment unit");
_Static_assert(offsetof(struct ring_ctl, tail) == 64, "line B starts at 64");

#define ALIGN_UP(x) (((x) + (uint64_t)RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1))

/* The shared control block of r. */
static inline struct ring_ctl *ctl_of(const struct ring *r)
{
	return r->ctl;
}

/* True when cap is a power of two within [RING_MIN_CAP, RING_MAX_CAP]. */
static bool cap_valid(uint64_t cap)
{
	return cap >= RING_MIN_CAP && cap <= RING_MAX_CAP && (cap & (cap - 1)) == 0;
}

size_t ring_area_size(uint32_t cap_to_worker, uint32_t cap_from_worker)
{
	if (!cap_valid(cap_to_worker) || !cap_valid(cap_from_worker))
		return 0;
	return (size_t)RING_HDR_SIZE + cap_to_worker + cap_from_worker;
}

/* Point the two private views of a at the shared rings; worker swaps directions. */
static void area_setup(struct ring_area *a, const struct ring_shm_hdr *h, bool daemon)
{
	uint8_t *base = a->base;
	struct ring r0 = {
	    .ctl = base + RING_CTL_OFFSET(0),
	    .data = base + RING_HDR_SIZE,
	    .cap = h->cap[0],
	};
	struct ring r1 = {
	    .ctl = base + RING_CTL_OFFSET(1),
	    .data = base + RING_HDR_SIZE + h->cap[0],
	    .cap = h->cap[1],
	};

	a->tx = daemon ? r0 : r1;
	a->rx = daemon ? r1 : r0;
}

int ring_area_create(uint32_t cap_to_worker, uint32_t cap_from_worker, int *ret_fd,
		     struct ring_area *ret)
{
	size_t size = ring_area_size(cap_to_worker, cap_from_worker);
	struct ring_shm_hdr h = {
	    .magic = RING_MAGIC,
	    .version = RING_VERSION,
	    .cap = {cap_to_worker, cap_from_worker},
	};
	struct ring_area a = {0};
	int fd, err;

	if (size == 0)
		return -EINVAL;
	fd = memfd_create("corral-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	a.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a.base == MAP_FAILED)
		goto fail;
	a.size = size;
	/* Fresh memfd pages are zero: indices 0, nobody waiting. */
	memcpy(a.base, &h, sizeof(h));
	area_setup(&a, &h, true);
	*ret_fd = fd;
	*ret = a;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

int ring_area_attach(int fd, struct ring_area *ret)
{
	struct ring_shm_hdr h;
	struct ring_area a = {0};
	struct stat st;
	size_t size;
	ssize_t n;
	int seals, err;

	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return errno == EINVAL ? -EPROTO : -errno;
	if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
		return -EPROTO;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)RING_HDR_SIZE)
		return -EPROTO;
	/* The header is copied exactly once, before anything is mapped. */
	do
		n = pread(fd, &h, sizeof(h), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(h) || h.magic != RING_MAGIC || h.version != RING_VERSION)
		return -EPROTO;
	size = ring_area_size(h.cap[0], h.cap[1]);
	if (size == 0 || (uint64_t)st.st_size < size)
		return -EPROTO;
	a.base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a.base == MAP_FAILED)
		return -errno;
	a.size = size;
	area_setup(&a, &h, false);

	/* Start from the indices the daemon left; normally all zero. */
	{
		struct ring_ctl *c = ctl_of(&a.tx);
		uint64_t head = atomic_load_explicit(&c->head, memory_order_acquire);
		uint64_t tail = atomic_load_explicit(&c->tail, memory_order_acquire);

		if ((head | tail) % RING_ALIGN || head - tail > a.tx.cap)
			goto proto;
		a.tx.head = head;
		a.tx.tail = tail;

		c = ctl_of(&a.rx);
		tail = atomic_load_explicit(&c->tail, memory_order_acquire);
		if (tail % RING_ALIGN)
			goto proto;
		a.rx.head = tail;
		a.rx.tail = tail;
	}
	*ret = a;
	return 0;
proto:
	err = -EPROTO;
	munmap(a.base, a.size);
	return err;
}

void ring_area_detach(struct ring_area *a)
{
	if (a->base != NULL && a->size != 0)
		munmap(a->base, a->size);
	memset(a, 0, sizeof(*a));
}

/* ---- producer ---- */

/*
 * Reload the consumer's tail: copied once, accepted only when aligned and
 * between our last view of it and our head (monotonic, distance <= cap).
 */
static int prod_reload(struct ring *r)
{
	uint64_t t = atomic_load_explicit(&ctl_of(r)->tail, memory_order_acquire);

	if (t % RING_ALIGN || t - r->tail > r->head - r->tail)
		return -EPROTO;
	r->tail = t;
	return 0;
}

/*
 * Find room for one DATA record at head: writes a PAD record first when fewer
 * than a header plus one aligned unit remain before the end.  Returns the
 * payload room (> 0) or 0 when full.  head moves privately (PAD) only.
 */
static uint64_t prod_room(struct ring *r)
{
	for (int i = 0; i < 2; i++) {
		uint64_t off = r->head & (r->cap - 1);
		uint64_t to_end = r->cap - off;
		uint64_t free = r->cap - (r->head - r->tail);
		uint64_t space = free < to_end ? free : to_end;

		if (space >= RING_REC_HDR + RING_ALIGN)
			return space - RING_REC_HDR;
		if (free < to_end)
			return 0;
		/* to_end == RING_REC_HDR and it is free: pad it and wrap. */
		uint32_t pad[2] = {(uint32_t)(to_end - RING_REC_HDR), RING_REC_PAD};

		memcpy(r->data + off, pad, sizeof(pad));
		r->head += to_end;
	}
	return 0;
}

/* Write one DATA record header for len bytes at head and advance head privately. */
static void prod_put(struct ring *r, uint64_t len)
{
	uint32_t h[2] = {(uint32_t)len, RING_REC_DATA};

	memcpy(r->data + (r->head & (r->cap - 1)), h, sizeof(h));
	r->head += RING_REC_HDR + ALIGN_UP(len);
}

/* glibc 2.35+ registers an rseq area per thread; its cpu_id is kept by the kernel. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

int ring_current_cpu(void)
{
	if (&__rseq_size == NULL || &__rseq_offset == NULL || __rseq_size == 0)
		return -1;
	const struct rseq *rs =
	    (const struct rseq *)((const char *)__builtin_thread_pointer() + __rseq_offset);
	int32_t cpu = (int32_t)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);

	return cpu < 0 ? -1 : cpu;
}

/* Advertise the CPU we run on in our own cache line (a store only when it changed). */
static void publish_cpu(_Atomic uint32_t *slot)
{
	int cpu = ring_current_cpu();
	uint32_t v = cpu < 0 ? 0 : (uint32_t)cpu + 1;

	if (atomic_load_explicit(slot, memory_order_relaxed) != v)
		atomic_store_explicit(slot, v, memory_order_relaxed);
}

/* Publish our private head to the consumer. */
static void prod_publish(struct ring *r)
{
	publish_cpu(&ctl_of(r)->prod_cpu);
	atomic_store_explicit(&ctl_of(r)->head, r->head, memory_order_release);
}

int ring_write_frame(struct ring *r, const void *buf, size_t len)
{
	uint64_t size = RING_REC_HDR + ALIGN_UP(len);
	bool reloaded = false;

	if (len == 0 || len > RING_FRAME_MAX || 2 * size > r->cap)
		return -EMSGSIZE;
	for (;;) {
		uint64_t off = r->head & (r->cap - 1);
		uint64_t to_end = r->cap - off;
		uint64_t free = r->cap - (r->head - r->tail);

		if (free >= size && to_end >= size) {
			uint32_t h[2] = {(uint32_t)len, RING_REC_FRAME};

			memcpy(r->data + off + RING_REC_HDR, buf, len);
			memcpy(r->data + off, h, sizeof(h));
			r->head += size;
			prod_publish(r);
			return 1;
		}
		if (to_end < size && free >= to_end + size) {
			/* A record never wraps: pad to the end, then write at offset 0. */
			uint32_t pad[2] = {(uint32_t)(to_end - RING_REC_HDR), RING_REC_PAD};

			memcpy(r->data + off, pad, sizeof(pad));
			r->head += to_end;
			continue;
		}
		if (reloaded)
			break;
		reloaded = true;
		if (prod_reload(r) < 0)
			return -EPROTO;
	}
	prod_publish(r); /* a PAD written above is valid: let the consumer release it */
	return 0;
}

long ring_producer_room(struct ring *r)
{
	if (prod_reload(r) < 0)
		return -EPROTO;
	return (long)(r->cap - (r->head - r->tail));
}

int ring_write(struct ring *r, const void *buf, size_t len, size_t *ret_written)
{
	const uint8_t *p = buf;
	uint64_t old = r->head;
	bool reloaded = false;
	size_t done = 0;

	*ret_written = 0;
	while (done < len) {
		uint64_t room = prod_room(r);

		if (room == 0) {
			if (reloaded)
				break;
			reloaded = true;
			if (prod_reload(r) < 0) {
				r->head = old; /* drop a PAD we may have written */
				return -EPROTO;
			}
			continue;
		}
		uint64_t n = len - done < room ? len - done : room;

		memcpy(r->data + (r->head & (r->cap - 1)) + RING_REC_HDR, p + done, n);
		prod_put(r, n);
		done += n;
	}
	if (r->head != old)
		prod_publish(r);
	*ret_written = done;
	return 0;
}

void *ring_reserve(struct ring *r, size_t max, size_t *ret_len)
{
	uint64_t room;

	*ret_len = 0;
	r->roff = 0;
	if (max == 0)
		return NULL;
	room = prod_room(r);
	if (room == 0) {
		if (prod_reload(r) < 0) {
			errno = EPROTO;
			return NULL;
		}
		room = prod_room(r);
		if (room == 0) {
			/* A PAD written above is valid; let the consumer release it. */
			prod_publish(r);
			return NULL;
		}
	}
	if (room > max)
		room = max;
	r->roff = room;
	*ret_len = room;
	return r->data + (r->head & (r->cap - 1)) + RING_REC_HDR;
}

void ring_commit(struct ring *r, size_t len)
{
	if (len > r->roff)
		len = r->roff;
	r->roff = 0;
	if (len > 0)
		prod_put(r, len);
	prod_publish(r);
}

/* Monotonic clock in ns. */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* FUTEX_WAKE one sleeper on a flag in shared memory (not private: another process). */
static void futex_wake(_Atomic uint32_t *flag)
{
	syscall(SYS_futex, (uint32_t *)flag, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/*
 * Common half of both wake checks: fence, then clear the peer's flag if set;
 * stamp when we woke it.  A futex sleeper is woken here; true means a
 * doorbell frame is owed.
 */
static bool take_flag(_Atomic uint32_t *flag, _Atomic uint64_t *stamp)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(flag, memory_order_relaxed) == 0)
		return false;
	atomic_store_explicit(stamp, mono_ns(), memory_order_relaxed);
	uint32_t old = atomic_exchange_explicit(flag, 0, memory_order_seq_cst);
	if (old == RING_SLEEP_FUTEX) {
		futex_wake(flag);
		return false;
	}
	return old != 0;
}

bool ring_producer_wake_needed(struct ring *r)
{
	return take_flag(&ctl_of(r)->cons_waiting, &ctl_of(r)->cons_woken_ns);
}

bool ring_producer_prepare_sleep(struct ring *r)
{
	return ring_producer_prepare_sleep_how(r, RING_SLEEP_DOORBELL);
}

bool ring_producer_prepare_sleep_how(struct ring *r, enum ring_sleep how)
{
	struct ring_ctl *c = ctl_of(r);
	uint64_t old = r->tail;

	atomic_store_explicit(&c->prod_waiting, how, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	/* A corrupt tail: do not sleep; the next ring_write reports it. */
	if (prod_reload(r) < 0 || r->tail != old) {
		atomic_store_explicit(&c->prod_waiting, 0, memory_order_relaxed);
		return false;
	}
	return true;
}

/* ---- consumer ---- */

/* Reload the producer's head: aligned, not behind our last view, at most cap ahead of tail. */
static int cons_reload(struct ring *r)
{
	uint64_t h = atomic_load_explicit(&ctl_of(r)->head, memory_order_acquire);

	if (h % RING_ALIGN || h - r->tail > r->cap || h - r->tail < r->head - r->tail)
		return -EPROTO;
	r->head = h;
	return 0;
}

/*
 * Make the record at tail current (r->rlen > 0), skipping PAD and empty DATA
 * records.  Reloads head at most once.  Returns 1, 0 when empty, or -EPROTO.
 * Bounded: each skipped record advances tail by at least RING_ALIGN within
 * head - tail <= cap.
 */
static int cons_next(struct ring *r)
{
	bool reloaded = false;

	if (r->rlen > 0)
		return 1;
	for (;;) {
		uint64_t avail = r->head - r->tail;

		if (avail == 0) {
			if (reloaded)
				return 0;
			reloaded = true;
			if (cons_reload(r) < 0)
				return -EPROTO;
			continue;
		}
		uint64_t off = r->tail & (r->cap - 1);
		const uint32_t *hp = (const uint32_t *)(r->data + off);
		/* Copied once; never re-read for this record. */
		uint64_t len = __atomic_load_n(&hp[0], __ATOMIC_RELAXED);
		uint32_t type = __atomic_load_n(&hp[1], __ATOMIC_RELAXED);
		uint64_t size = RING_REC_HDR + ALIGN_UP(len);

		if (type != RING_REC_DATA && type != RING_REC_PAD && type != RING_REC_FRAME)
			return -EPROTO;
		if (size > avail || size > r->cap - off)
			return -EPROTO;
		if (type == RING_REC_FRAME && (len == 0 || len > RING_FRAME_MAX))
			return -EPROTO;
		if (type != RING_REC_PAD && len > 0) {
			r->rlen = len;
			r->roff = 0;
			r->rtype = type;
			return 1;
		}
		r->tail += size;
	}
}

/* Mark n bytes of the current record read; releases it privately at its end. */
static void cons_advance(struct ring *r, uint64_t n)
{
	if (r->rlen == 0)
		return;
	if (n > r->rlen - r->roff)
		n = r->rlen - r->roff;
	r->roff += n;
	if (r->roff == r->rlen) {
		r->tail += RING_REC_HDR + ALIGN_UP(r->rlen);
		r->roff = 0;
		r->rlen = 0;
	}
}

/* Publish our private tail to the producer. */
static void cons_publish(struct ring *r)
{
	publish_cpu(&ctl_of(r)->cons_cpu);
	atomic_store_explicit(&ctl_of(r)->tail, r->tail, memory_order_release);
}

int ring_peek_rec(struct ring *r, uint32_t *ret_type, const void **ret_ptr, size_t *ret_len)
{
	uint64_t old = r->tail;
	int ret = cons_next(r);

	if (r->tail != old)
		cons_publish(r); /* skipped records free space */
	*ret_ptr = NULL;
	*ret_len = 0;
	*ret_type = 0;
	if (ret <= 0)
		return ret;
	*ret_type = r->rtype;
	*ret_ptr = r->data + (r->tail & (r->cap - 1)) + RING_REC_HDR + r->roff;
	*ret_len = r->rlen - r->roff;
	return 1;
}

int ring_peek(struct ring *r, const void **ret_ptr, size_t *ret_len)
{
	uint64_t old = r->tail;
	int ret = cons_next(r);

	if (r->tail != old)
		cons_publish(r); /* skipped records free space */
	*ret_ptr = NULL;
	*ret_len = 0;
	if (ret <= 0)
		return ret;
	if (r->rtype != RING_REC_DATA)
		return -EPROTO; /* a frame where bytes were expected */
	*ret_ptr = r->data + (r->tail & (r->cap - 1)) + RING_REC_HDR + r->roff;
	*ret_len = r->rlen - r->roff;
	return 1;
}

void ring_consume(struct ring *r, size_t n)
{
	uint64_t old = r->tail;

	cons_advance(r, n);
	if (r->tail != old)
		cons_publish(r);
}

long ring_read(struct ring *r, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t old = r->tail;
	size_t done = 0;
	int ret = 0;

	if (len > LONG_MAX)
		len = LONG_MAX;
	while (done < len) {
		ret = cons_next(r);
		if (ret > 0 && r->rtype != RING_REC_DATA)
			ret = -EPROTO; /* a frame where bytes were expected */
		if (ret <= 0)
			break;
		uint64_t n = r->rlen - r->roff;

		if (n > len - done)
			n = len - done;
		memcpy(p + done, r->data + (r->tail & (r->cap - 1)) + RING_REC_HDR + r->roff, n);
		cons_advance(r, n);
		done += n;
	}
	if (r->tail != old)
		cons_publish(r);
	if (ret < 0)
		return ret;
	return (long)done;
}

bool ring_consumer_wake_needed(struct ring *r)
{
	return take_flag(&ctl_of(r)->prod_waiting, &ctl_of(r)->prod_woken_ns);
}

bool ring_consumer_prepare_sleep(struct ring *r)
{
	return ring_consumer_prepare_sleep_how(r, RING_SLEEP_DOORBELL);
}

bool ring_consumer_prepare_sleep_how(struct ring *r, enum ring_sleep how)
{
	struct ring_ctl *c = ctl_of(r);

	if (r->rlen > 0 || r->head != r->tail)
		return false;
	atomic_store_explicit(&c->cons_waiting, how, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	/* A corrupt head: do not sleep; the next ring_peek reports it. */
	if (cons_reload(r) < 0 || r->head != r->tail) {
		atomic_store_explicit(&c->cons_waiting, 0, memory_order_relaxed);
		return false;
	}
	return true;
}

/* ---- futex sleep, adaptive spin ---- */

/* Sleep while *flag holds RING_SLEEP_FUTEX (see ring_*_futex_wait). */
static int futex_sleep(_Atomic uint32_t *flag, int timeout_ms)
{
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};

	if (atomic_load_explicit(flag, memory_order_acquire) != RING_SLEEP_FUTEX)
		return 0;
	/* A relative timeout; spurious wake-ups return 0 and the caller looks again. */
	if (syscall(SYS_futex, (uint32_t *)flag, FUTEX_WAIT, RING_SLEEP_FUTEX,
		    timeout_ms < 0 ? NULL : &ts, NULL, 0) < 0) {
		if (errno == EAGAIN)
			return 0;
		return errno == ETIMEDOUT ? -ETIMEDOUT : errno == EINTR ? -EINTR : -errno;
	}
	return 0;
}

int ring_producer_futex_wait(struct ring *r, int timeout_ms)
{
	return futex_sleep(&ctl_of(r)->prod_waiting, timeout_ms);
}

int ring_consumer_futex_wait(struct ring *r, int timeout_ms)
{
	return futex_sleep(&ctl_of(r)->cons_waiting, timeout_ms);
}

void ring_producer_cancel_sleep(struct ring *r)
{
	atomic_store_explicit(&ctl_of(r)->prod_waiting, 0, memory_order_relaxed);
}

void ring_consumer_cancel_sleep(struct ring *r)
{
	atomic_store_explicit(&ctl_of(r)->cons_waiting, 0, memory_order_relaxed);
}

void ring_spin_init(struct ring_spin *s)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	*s = (struct ring_spin){.budget_ns = RING_SPIN_DEFAULT_NS, .single_cpu = n == 1};
}

uint64_t ring_spin_budget(struct ring_spin *s, struct ring *r, bool consumer)
{
	struct ring_ctl *c = ctl_of(r);
	int cpu = ring_current_cpu();
	uint32_t peer;

	/* Ours is advisory for the peer (also published with every index). */
	publish_cpu(consumer ? &c->cons_cpu : &c->prod_cpu);
	if (s->single_cpu)
		return 0;
	peer = atomic_load_explicit(consumer ? &c->prod_cpu : &c->cons_cpu, memory_order_relaxed);
	if (cpu >= 0 && peer == (uint32_t)cpu + 1) {
		/* The peer needs our CPU to make the progress we would spin for. */
		s->shared_cpu++;
		return 0;
	}
	if (s->off > 0) {
		s->off--;
		return 0;
	}
	if (s->budget_ns == 0) {
		/* Probe again after a while: the load may have changed. */
		s->budget_ns = s->wake_ns ? s->wake_ns : RING_SPIN_DEFAULT_NS;
		if (s->budget_ns > RING_SPIN_MAX_NS)
			s->budget_ns = RING_SPIN_MAX_NS;
	}
	s->spins++;
	return s->budget_ns;
}

void ring_spin_done(struct ring_spin *s, bool hit)
{
	if (hit) {
		/* It paid: grow back towards what a wake costs. */
		uint64_t cap = s->wake_ns ? s->wake_ns : RING_SPIN_DEFAULT_NS;

		s->spin_hits++;
		s->budget_ns += s->budget_ns / 4 + 1;
		if (s->budget_ns > cap)
			s->budget_ns = cap;
		if (s->budget_ns > RING_SPIN_MAX_NS)
			s->budget_ns = RING_SPIN_MAX_NS;
		return;
	}
	/* It did not pay: halve; below a microsecond it is off for a while. */
	s->budget_ns /= 2;
	if (s->budget_ns < 1000) {
		s->budget_ns = 0;
		s->off = RING_SPIN_PROBE;
	}
}

void ring_spin_woken(struct ring_spin *s, struct ring *r, bool consumer)
{
	struct ring_ctl *c = ctl_of(r);
	uint64_t stamp = atomic_load_explicit(consumer ? &c->cons_woken_ns : &c->prod_woken_ns,
					      memory_order_relaxed);
	uint64_t now = mono_ns();

	s->sleeps++;
	/* The peer's stamp is advisory: ignore what is in the future or absurdly old. */
	if (stamp == 0 || stamp > now || now - stamp > 10u * RING_SPIN_MAX_NS)
		return;
	uint64_t lat = now - stamp;
	s->wake_ns = s->wake_ns ? (s->wake_ns * 7 + lat) / 8 : lat;
	/* Spin no longer than a wake costs: past that, sleeping was cheaper. */
	if (s->budget_ns > s->wake_ns)
		s->budget_ns = s->wake_ns;
	if (s->budget_ns > RING_SPIN_MAX_NS)
		s->budget_ns = RING_SPIN_MAX_NS;
}
