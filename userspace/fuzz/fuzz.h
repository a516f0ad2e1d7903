/* SPDX-License-Identifier: MIT */
/*
 * iommufd_fuzz: random sequences of the iommufd fault queue, vEVENTQ, HWPT,
 * vIOMMU and vDEVICE uAPI and the selftest mock's triggers, from several
 * threads and processes, with fail-nth fault injection. See iommufd_fuzz.c.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"

/*
 * The uAPI of the series' v3 (build/V3-UAPI.md), carried here so that the
 * fuzzer builds against any header (7.3's, v2's, v3's) and sends v3's
 * layouts to every kernel: a kernel that does not know a field or a flag
 * must refuse it cleanly, which is itself worth fuzzing. Own names, so that
 * nothing here silently takes another value from a header (v2 numbered
 * BOUNDED 1 << 1, v3 1 << 2).
 */
#define FZ_FAULT_EVENTFD	(1u << 0)
#define FZ_FAULT_HEADER		(1u << 1)
#define FZ_FAULT_BOUNDED	(1u << 2)
#define FZ_VEVENTQ_EVENTFD	(1u << 0)
#define FZ_HWPT_NEST_PARENT	(1u << 0)
#define FZ_HWPT_DIRTY		(1u << 1)
#define FZ_HWPT_FAULT_ID_VALID	(1u << 2)
#define FZ_HWPT_PASID		(1u << 3)
#define FZ_HWPT_IOPF_CAPABLE	(1u << 4)
#define FZ_MOCK_NO_DIRTY	(1u << 0)
#define FZ_MOCK_PASID		(1u << 2)
#define FZ_MOCK_NO_IOPF		(1u << 3)
#define FZ_MAX_DEPTH		(1u << 19)
#define FZ_LOST_EVENTS		(1u << 0)	/* IOMMU_VEVENTQ_FLAG_LOST_EVENTS */
#define FZ_PGFAULT_PASID_VALID	(1u << 0)
#define FZ_PGFAULT_LAST_PAGE	(1u << 1)
#define FZ_VEVENTQ_TYPE_SELFTEST 0xbeefbeefu
#define FZ_VIOMMU_TYPE_SELFTEST	0xdeadbeefu
#define FZ_HWPT_DATA_SELFTEST	0xdeadu
#define FZ_IOTLB_DEFAULT	0xbadbeefu

struct fz_fault_alloc {			/* 16 bytes in 7.3, 24 in v3 */
	uint32_t size;
	uint32_t flags;
	uint32_t out_fault_id;
	uint32_t out_fault_fd;
	int32_t eventfd;
	uint32_t depth;
};

struct fz_veventq_alloc {		/* 32 bytes in 7.3, 40 in v3 */
	uint32_t size;
	uint32_t flags;
	uint32_t viommu_id;
	uint32_t type;
	uint32_t veventq_depth;
	uint32_t out_veventq_id;
	uint32_t out_veventq_fd;
	uint32_t __reserved;
	int32_t eventfd;
	uint32_t __reserved2;
};

struct fz_hwpt_alloc {			/* 48 bytes in 7.3, 72 in v3 */
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pt_id;
	uint32_t out_hwpt_id;
	uint32_t __reserved;
	uint32_t data_type;
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t fault_id;
	uint32_t __reserved2;
	uint32_t fault_flags;
	int32_t fault_eventfd;
	uint32_t fault_depth;
	uint32_t out_fault_id;
	uint32_t out_fault_fd;
	uint32_t __reserved3;
};
#define FZ_HWPT_SIZE_73		48

struct fz_pgfault {			/* struct iommu_hwpt_pgfault */
	uint32_t flags, dev_id, pasid, grpid, perm, __reserved;
	uint64_t addr;
	uint32_t length, cookie;
};
_Static_assert(sizeof(struct fz_pgfault) == 40, "iommu_hwpt_pgfault");

struct fz_hdr {				/* struct iommufd_vevent_header */
	uint32_t flags, sequence;
};

struct fz_response {			/* struct iommu_hwpt_page_response */
	uint32_t cookie, code;
};

/*
 * The mock's IOMMU_TEST_CMD with the union members the fuzzer drives, laid
 * over the header's own struct (same size, same @last) so that a member the
 * header renames or a union that grows does not move anything.
 */
struct fz_test_cmd {
	uint32_t size;
	uint32_t op;
	uint32_t id;
	uint32_t __reserved;
	union {
		struct {
			uint32_t out_stdev_id, out_hwpt_id, out_idev_id;
			uint32_t dev_flags;
		} mock_domain;
		struct {
			uint32_t pt_id;
		} replace;
		struct {
			uint32_t dev_id, pasid, grpid, perm;
			uint64_t addr;
			uint32_t nfaults, __reserved;
		} trigger_iopf;
		struct {
			uint32_t dev_id, count;
		} trigger_vevent;
		struct {
			uint32_t pasid, pt_id;
		} pasid;
		struct {
			uint32_t dev_id, __reserved;
			uint64_t out_groups, out_success, out_invalid,
				 out_failure;
		} counters;
		struct {
			uint32_t value;
		} set;	/* FAULT_COOKIE_GEN's gen, EVENTQ_SEQUENCE's sequence */
		uint8_t raw[offsetof(struct iommu_test_cmd, last) - 16];
	};
	uint32_t last;
};
_Static_assert(sizeof(struct fz_test_cmd) == sizeof(struct iommu_test_cmd),
	       "IOMMU_TEST_CMD");
_Static_assert(offsetof(struct fz_test_cmd, last) ==
	       offsetof(struct iommu_test_cmd, last), "IOMMU_TEST_CMD last");

/* ---- Options and the run's shared state (MAP_SHARED across processes) ---- */

#define MAX_PROCS	8
#define MAX_THREADS	16
#define RING		64	/* calls kept per thread */
#define RING_SHOW	50	/* printed on failure */
#define TEXT		120
#define FD_LIMIT	1000	/* the fuzzer's own fds live above this */

struct entry {
	uint64_t n;		/* the thread's call number, from 1 */
	int32_t ret;
	int16_t err;
	uint8_t injected, done;
	char text[TEXT];
};

struct ring {
	uint64_t seed;
	pid_t tid;
	atomic_uint_fast64_t head;	/* calls logged */
	struct entry e[RING];
};

struct stats {
	atomic_uint_fast64_t calls, sequences, injected, armed, failures;
	atomic_uint_fast64_t forks, groups_read, answers, vevents_read;
	atomic_uint_fast64_t objects, fds, untracked, autos_left;
};

struct opts {
	uint64_t seed;
	unsigned int seconds;
	uint64_t calls;		/* 0: until the time is up */
	int threads, procs;
	unsigned int fail_rate;	/* per 10000 calls */
	bool verbose;
	bool unload;		/* rmmod iommufd at the end */
	bool big;		/* allow the mock's largest bulk triggers */
};

struct shared {
	struct opts o;
	uint64_t deadline_ns;
	atomic_bool stop;
	atomic_bool dumped;
	atomic_uint report_count;
	struct stats st;
	pthread_mutex_t print_lock;	/* process-shared */
	struct ring rings[MAX_PROCS * MAX_THREADS];
};

extern struct shared *sh;

/* ---- Per-process resource table ---- */

enum okind { O_IOAS, O_DEV, O_HWPT, O_VIOMMU, O_VDEV, O_FAULT, O_VEVENTQ,
	     NR_OKIND };
enum fkind { F_CTX, F_FAULT, F_VEVENTQ, F_EVENTFD, F_OTHER, NR_FKIND };

#define H_PARENT	1	/* HWPT flags (struct obj.flags) */
#define H_NESTED	2
#define H_FAULT		4
#define H_PASID		8

struct obj {
	uint8_t kind, live;
	uint8_t ctx;
	uint32_t id;
	uint32_t id2;		/* DEV: idev; VDEV: virt_id; VEVENTQ: viommu */
	uint32_t id3;		/* DEV: its auto HWPT */
	uint32_t flags;		/* DEV: mock flags; HWPT: H_*; FAULT: queue */
	uint64_t seq;		/* when it was recorded: obj_seq() */
};

#define NR_COOKIES 32
struct fdent {
	int fd;
	uint8_t kind, live, closing;
	uint8_t ctx;		/* F_CTX: the context; eventq fds: theirs */
	int busy;		/* calls in flight on it */
	uint32_t obj;		/* F_FAULT/F_VEVENTQ: the queue's id */
	uint32_t qflags;	/* F_FAULT: the queue's flags (HEADER implied) */
	uint32_t cookies[NR_COOKIES];
	unsigned int ncookies;
};

#define MAX_OBJS	4096	/* what 4 contexts make before they close; 384 was too few */
#define MAX_FDS		192
#define MAX_CTX		4
#define MAX_AUTOS	4096
#define NR_STALE	32

struct ctx {
	bool live;
	int nfds;		/* open fds of the context itself */
	uint32_t max_id;
	/*
	 * Replaces and PASID attaches that failed with EFAULT: the mock
	 * replaces before it copies the result out, so each may have made
	 * an automatic HWPT whose id the fuzzer never saw
	 */
	unsigned int maybe_autos;
};

struct proc {
	int idx;
	pthread_mutex_t lock;	/* the table; never held across a syscall */
	struct obj objs[MAX_OBJS];
	struct fdent fds[MAX_FDS];
	struct ctx ctx[MAX_CTX];
	uint32_t stale_ids[NR_STALE];
	int stale_fds[NR_STALE];
	uint32_t stale_cookies[NR_STALE];
	unsigned int nstale_ids, nstale_fds, nstale_cookies;
	uint32_t max_id;	/* over every context, for the final sweep */
	uint64_t obj_seq;	/* objects recorded so far */
	unsigned int untracked;	/* objects made while the table was full */
	/*
	 * The automatic HWPTs the kernel made for attaches to an IOAS (a
	 * ring): one whose last detach raced with a lookup of its id by
	 * another call stays, as 7.3's iommufd_object_put_and_try_destroy()
	 * means, until destroyed or the context closes
	 */
	uint32_t autos[MAX_AUTOS];
	int8_t auto_ctx[MAX_AUTOS];
	unsigned int nautos;
	pid_t children[64];
	int nchildren;
	atomic_uint failures;
};

struct thr {
	struct proc *p;
	int idx;
	uint64_t rng;
	struct ring *ring;
	int failnth_fd;
	bool armed;
	bool injected;		/* the last call had a fault injected */
	uint8_t *arena;		/* RW area, guard, read-only view, guard */
	uint8_t *ro;		/* the read-only view of the first RW page */
	uint64_t ncalls;
};

#define ARENA_RW	(16 * 4096)

/* util.c */
uint64_t now_ns(void);
uint64_t splitmix(uint64_t *x);
uint32_t rnd(struct thr *t);
uint32_t rnd_n(struct thr *t, uint32_t n);
bool one_in(struct thr *t, uint32_t n);
uint32_t rnd_u32_boundary(struct thr *t);
void thr_init(struct thr *t, struct proc *p, int idx, uint64_t seed);
void thr_fini(struct thr *t);
void logc(struct thr *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
long logr(struct thr *t, long ret);
void arm(struct thr *t);
bool disarm(struct thr *t);
void fail(struct thr *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dump_rings(const char *why);
void print_locked(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Where a call's argument goes */
enum place { PL_NORMAL, PL_MISALIGN, PL_END, PL_RO, PL_NULL, NR_PLACE };
void *place(struct thr *t, const void *src, size_t len, size_t *room,
	    enum place *pl, bool allow_odd);
const char *place_name(enum place pl);

/* table.c */
void proc_init(struct proc *p, int idx);
int ctx_new(struct proc *p, int fd);
int ctx_pick(struct thr *t);
int fd_acquire(struct thr *t, int kind_mask, int ctx, struct fdent *copy);
int fd_acquire_ctx(struct thr *t, int ctx);
void fd_release(struct proc *p, int slot);
int fd_add(struct proc *p, int fd, int kind, int ctx, uint32_t obj,
	   uint32_t qflags);
void fd_close(struct thr *t, int slot_hint);
void ctx_close_all(struct thr *t, int c);
bool obj_pick(struct thr *t, int kind, int ctx, struct obj *o);
uint32_t id_pick(struct thr *t, int kind, int ctx);
void obj_add(struct proc *p, int kind, int ctx, uint32_t id, uint32_t id2,
	     uint32_t id3, uint32_t flags);
uint64_t obj_seq(struct proc *p);
int table_self_test(void);
void obj_gone(struct proc *p, int ctx, uint32_t id, uint64_t before);
void auto_add(struct proc *p, int ctx, uint32_t id);
bool auto_known(struct proc *p, int ctx, uint32_t id);
void auto_maybe(struct proc *p, int ctx);
bool auto_maybe_take(struct proc *p, int ctx);
bool untracked_take(struct proc *p);
int stale_fd(struct thr *t);
void cookie_add(struct proc *p, int slot, uint32_t cookie);
uint32_t cookie_pick(struct thr *t, int slot);
void cookie_answered(struct proc *p, uint32_t cookie);
int count_objs(struct proc *p, int ctx);

/* calls.c */
void do_call(struct thr *t);
void build_graph(struct thr *t, int ctx);
int open_ctx(struct thr *t);
int mock_counters_sum(int fd, uint64_t c[4]);

/* checks.c */
int proc_teardown(struct proc *p, struct thr *t);

#endif
