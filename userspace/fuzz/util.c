// SPDX-License-Identifier: MIT
/*
 * The fuzzer's plumbing: random numbers, the per-thread call log, fail-nth
 * fault injection and the buffers calls take their arguments from.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* xorshift64*: a thread's own stream, from its seed alone */
uint32_t rnd(struct thr *t)
{
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return (t->rng * 0x2545f4914f6cdd1dull) >> 32;
}

uint32_t rnd_n(struct thr *t, uint32_t n)
{
	return n ? rnd(t) % n : 0;
}

bool one_in(struct thr *t, uint32_t n)
{
	return rnd_n(t, n) == 0;
}

/* The values where off-by-ones and overflows live */
uint32_t rnd_u32_boundary(struct thr *t)
{
	static const uint32_t v[] = {
		0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 63, 64, 255, 256, 257,
		511, 512, 1023, 1024, 4095, 4096, 0x7fff, 0x8000, 0xffff,
		0x10000, 0x1ffff, 0x20000, 1u << 19, (1u << 19) + 1, 1u << 20,
		(1u << 20) + 1, 0x7ffffffe, 0x7fffffff, 0x80000000, 0xfffffffe,
		0xffffffff,
	};

	if (one_in(t, 4))
		return rnd(t);
	return v[rnd_n(t, sizeof(v) / sizeof(v[0]))];
}

/*
 * A thread's arena: ARENA_RW bytes of read-write memory, a guard page, a
 * read-only view of the arena's first page (a second mapping of the same
 * memfd page, so that the fuzzer fills it through the writable view), and
 * another guard page.
 */
static void arena_init(struct thr *t)
{
	size_t pg = 4096, total = ARENA_RW + 3 * pg;
	int mfd = memfd_create("fuzz-arena", MFD_CLOEXEC);
	uint8_t *a;

	if (mfd < 0 || ftruncate(mfd, ARENA_RW)) {
		perror("memfd");
		exit(2);
	}
	a = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED ||
	    mmap(a, ARENA_RW, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 mfd, 0) == MAP_FAILED ||
	    mmap(a + ARENA_RW + pg, pg, PROT_READ, MAP_SHARED | MAP_FIXED, mfd,
		 0) == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	close(mfd);
	t->arena = a;
	t->ro = a + ARENA_RW + pg;
}

const char *place_name(enum place pl)
{
	static const char *const n[] = { "", "+odd", "@guard", "@ro", "NULL" };

	return pl < NR_PLACE ? n[pl] : "?";
}

/*
 * Put @len bytes of @src where a call will find them: normally at the start
 * of the arena; misaligned; so that they end at the guard page (the kernel
 * reading or writing past @len faults); in the read-only view (a kernel
 * that writes back fails); or nowhere (NULL). *@room says how many bytes
 * after the returned pointer are accessible. The first page of the arena
 * is the argument page; reads and writes use the rest (see calls.c).
 */
void *place(struct thr *t, const void *src, size_t len, size_t *room,
	    enum place *plp, bool allow_odd)
{
	enum place pl = PL_NORMAL;
	uint32_t r = rnd_n(t, 100);
	uint8_t *p;

	if (len > 4096)
		len = 4096;
	if (allow_odd) {
		if (r < 6)
			pl = PL_MISALIGN;
		else if (r < 11)
			pl = PL_END;
		else if (r < 15)
			pl = PL_RO;
		else if (r < 16)
			pl = PL_NULL;
	}
	switch (pl) {
	case PL_MISALIGN:
		p = t->arena + 1 + rnd_n(t, 7);
		*room = ARENA_RW - (p - t->arena);
		break;
	case PL_END:
		/* The argument page is the arena's last: the guard follows */
		p = t->arena + ARENA_RW - len;
		*room = len;
		break;
	case PL_RO:
		/* Written through the arena, seen read-only at t->ro */
		memcpy(t->arena, src, len);
		*room = 4096;
		*plp = pl;
		return t->ro;
	case PL_NULL:
		*room = 0;
		*plp = pl;
		return NULL;
	default:
		p = t->arena;
		*room = ARENA_RW;
	}
	memcpy(p, src, len);
	*plp = pl;
	return p;
}

/* ---- The call log ---- */

static struct entry *cur(struct thr *t)
{
	uint64_t h = atomic_load(&t->ring->head);

	return &t->ring->e[(h - 1) % RING];
}

/* Log a call before it is made: a crash shows the call in flight */
void logc(struct thr *t, const char *fmt, ...)
{
	uint64_t h = atomic_load(&t->ring->head);
	struct entry *e = &t->ring->e[h % RING];
	va_list ap;

	e->done = 0;
	e->n = ++t->ncalls;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	atomic_store(&t->ring->head, h + 1);
	atomic_fetch_add(&sh->st.calls, 1);
	if (sh->o.verbose)
		print_locked("[%d.%d #%llu] %s\n", t->p->idx, t->idx,
			     (unsigned long long)e->n, e->text);
}

/* The result of the call logged last: returns @ret, keeps errno */
long logr(struct thr *t, long ret)
{
	int err = errno;
	struct entry *e = cur(t);

	e->ret = ret;
	e->err = ret < 0 ? err : 0;
	e->injected = t->injected;
	e->done = 1;
	errno = err;
	return ret;
}

void print_locked(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&sh->print_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&sh->print_lock);
}

static void dump_ring(int i)
{
	struct ring *r = &sh->rings[i];
	uint64_t h = atomic_load(&r->head), k;

	if (!h)
		return;
	printf("# thread %d.%d (tid %d, seed 0x%016llx): last %llu of %llu calls\n",
	       i / MAX_THREADS, i % MAX_THREADS, r->tid,
	       (unsigned long long)r->seed,
	       (unsigned long long)(h < RING_SHOW ? h : RING_SHOW),
	       (unsigned long long)h);
	for (k = h > RING_SHOW ? h - RING_SHOW : 0; k < h; k++) {
		struct entry *e = &r->e[k % RING];

		if (!e->done)
			printf("#   %6llu %s = (in flight)\n",
			       (unsigned long long)e->n, e->text);
		else if (e->ret < 0)
			printf("#   %6llu %s = -1 %s%s\n",
			       (unsigned long long)e->n, e->text,
			       strerrorname_np(e->err) ?: "?",
			       e->injected ? " [fault injected]" : "");
		else
			printf("#   %6llu %s = %d%s\n",
			       (unsigned long long)e->n, e->text, e->ret,
			       e->injected ? " [fault injected]" : "");
	}
}

/* Every thread's last calls, once per run, with the seed to rerun it */
void dump_rings(const char *why)
{
	int i;

	if (atomic_exchange(&sh->dumped, true))
		return;
	pthread_mutex_lock(&sh->print_lock);
	printf("# FAIL: %s: seed 0x%016llx (rerun: --seed 0x%016llx --procs %d --threads %d)\n",
	       why, (unsigned long long)sh->o.seed,
	       (unsigned long long)sh->o.seed, sh->o.procs, sh->o.threads);
	for (i = 0; i < MAX_PROCS * MAX_THREADS; i++)
		dump_ring(i);
	fflush(stdout);
	pthread_mutex_unlock(&sh->print_lock);
}

/* An invariant does not hold: say which, and what led to it */
void fail(struct thr *t, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&sh->st.failures, 1);
	if (t)
		atomic_fetch_add(&t->p->failures, 1);
	print_locked("# FAIL: invariant: %s%s\n", line,
		     t ? "" : " (at the end)");
	dump_rings(line);
}

/* ---- fail-nth ---- */

/*
 * Arm fail-nth for the next call: the n-th fault injection site it passes
 * (a slab allocation, iommufd's own fail_iommufd sites) fails. disarm() says
 * whether it fired, and turns it off: "0" read back means the n-th site was
 * reached and failed, as tools/testing/selftests/iommu/iommufd_fail_nth.c
 * reads it.
 */
void arm(struct thr *t)
{
	char buf[16];
	int n, len;

	t->armed = false;
	t->injected = false;
	if (t->failnth_fd < 0 || !sh->o.fail_rate ||
	    rnd_n(t, 10000) >= sh->o.fail_rate)
		return;
	/* Mostly the first few sites, where the error paths start */
	n = one_in(t, 4) ? 1 + rnd_n(t, 64) : 1 + rnd_n(t, 8);
	len = snprintf(buf, sizeof(buf), "%d", n);
	if (pwrite(t->failnth_fd, buf, len, 0) == len) {
		t->armed = true;
		atomic_fetch_add(&sh->st.armed, 1);
	}
}

bool disarm(struct thr *t)
{
	int err = errno;
	char buf[16] = "";

	if (!t->armed)
		return false;
	t->armed = false;
	if (pread(t->failnth_fd, buf, sizeof(buf) - 1, 0) > 0 &&
	    buf[0] == '0' && (buf[1] == '\n' || !buf[1]))
		t->injected = true;
	/* The site may not have been reached: off, whatever it says */
	if (pwrite(t->failnth_fd, "0", 1, 0) != 1)
		pwrite(t->failnth_fd, "0", 1, 0);
	if (t->injected)
		atomic_fetch_add(&sh->st.injected, 1);
	errno = err;
	return t->injected;
}

/* A descriptor of the fuzzer's own, above the numbers calls may hit */
static int high_fd(int fd, int at)
{
	int h;

	if (fd < 0)
		return fd;
	h = fcntl(fd, F_DUPFD_CLOEXEC, at);
	close(fd);
	return h;
}

void thr_init(struct thr *t, struct proc *p, int idx, uint64_t seed)
{
	char path[64];

	memset(t, 0, sizeof(*t));
	t->p = p;
	t->idx = idx;
	t->rng = seed ? seed : 1;
	t->ring = &sh->rings[p->idx * MAX_THREADS + idx];
	t->ring->seed = seed;
	t->ring->tid = syscall(SYS_gettid);
	arena_init(t);
	snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth",
		 (int)syscall(SYS_gettid));
	t->failnth_fd = high_fd(open(path, O_RDWR | O_CLOEXEC),
				FD_LIMIT + 100 + p->idx * MAX_THREADS + idx);
}

void thr_fini(struct thr *t)
{
	if (t->failnth_fd >= 0)
		close(t->failnth_fd);
	munmap(t->arena, ARENA_RW + 3 * 4096);
}
