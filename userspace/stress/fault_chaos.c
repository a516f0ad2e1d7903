// SPDX-License-Identifier: MIT
/*
 * fault_chaos: every page request group is answered exactly once and every
 * fault and vEVENT is accounted for, whatever user space does, in whatever
 * order.
 *
 * Three mock devices (0 and 1 with PRI and PASIDs, 2 without PRI) sit
 * behind two mock vIOMMUs on one nesting parent. Injector threads make page
 * request groups of 1-4 faults over four PASIDs (and try them on the device
 * without PRI, which must refuse), and vEVENTs in bulk on every device.
 *
 * Three fault queues, each with a nested HWPT and a reader that answers out
 * of order and holds some answers back (and, for one group in 16, says the
 * guest could not take it, which libiofault answers INVALID):
 *   0  bounded (depth 64) with an eventfd, read when the eventfd fires,
 *      HWPT on vIOMMU 0
 *   1  legacy (unbounded), read after poll(), HWPT on vIOMMU 1
 *   2  bounded (depth 256), read by an O_NONBLOCK reader that never waits,
 *      HWPT on the nesting parent itself
 * Two vEVENTQs, one per vIOMMU: depth 64 read through an eventfd, depth 1024
 * read after poll().
 *
 * A chaos thread moves devices between these HWPTs, plain nested HWPTs and
 * the IOAS (replace and detach), destroys and recreates HWPTs, closes and
 * reopens fault queues (one step and two steps), destroys and recreates
 * vDEVICEs (moving them between vIOMMUs as the devices move), and drains,
 * destroys and recreates vEVENTQs.
 *
 * At the end, and at every queue closed on the way:
 * - the mock's counters show every group reported answered exactly once
 *   (by a reader, or by the kernel on overflow or detach) before any queue
 *   is destroyed, and every SUCCESS the readers wrote arrived; no queue
 *   closed holds a group waiting for an answer;
 * - every fault of a bounded queue was read or lost by its sequence
 *   numbers, and the library's loss equals the kernel's (fdinfo);
 * - every vEVENT made was read or lost by the sequence numbers;
 * - nothing was refused, malformed, out of sequence or misattributed.
 *
 *   fault_chaos [-g GROUPS] [-e EVENTS] [-c ACTIONS] [-t SECONDS] [-q]
 *
 * Runs until GROUPS groups and EVENTS vEVENTs were made and the chaos thread
 * took ACTIONS actions (defaults 100000, 100000, 300), or SECONDS passed
 * (default 300); it fails when time runs out first. With -g 0 it runs for
 * SECONDS (a soak). Prints TAP, and summary lines starting "# chaos:".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iofault.h"
#include "mock.h"

#define NR_DEVS		3	/* the last one cannot do PRI */
#define NOPRI		(NR_DEVS - 1)
#define NR_VIOMMUS	2
#define NR_SLOTS	3	/* fault queues */
#define NR_VSLOTS	NR_VIOMMUS	/* vEVENTQs */
#define NR_INJECTORS	3
#define VIRT_ID(d)	(0x100 + (d))

/* Where a device can be: a slot's HWPT, a plain nested HWPT, the IOAS */
#define T_PLAIN(v)	(NR_SLOTS + (v))
#define T_IOAS		(NR_SLOTS + NR_VIOMMUS)
#define NR_TARGETS	(T_IOAS + 1)

enum reader_mode { READ_EVENTFD, READ_POLL, READ_NONBLOCK };
static const char *const mode_name[] = { "eventfd", "poll", "O_NONBLOCK" };

struct pending {
	uint32_t cookie;
	uint32_t dev_id;
};

struct slot {
	int nr;
	enum reader_mode mode;
	uint32_t flags, depth;
	int viommu;		/* its HWPT's vIOMMU, -1: the nesting parent */
	pthread_mutex_t lock;	/* the queue, the HWPT, the pending list */
	atomic_bool want_lock;	/* the chaos thread waits for the lock */
	struct iof_queue *q;
	uint32_t hwpt_id;
	pthread_t reader;
	uint64_t seed;

	/* Groups read and not answered yet, answered in random order */
	struct pending *pending;
	unsigned int nr_pending, cap_pending;

	/* Totals over every queue the slot had */
	uint64_t groups, answered, success, refused, malformed, messages;
	uint64_t not_injected;
	uint64_t lost, lost_kernel, withdrawn, seq_errors, reopened, one_step;
};

struct vslot {
	int nr;
	enum reader_mode mode;
	uint32_t depth;
	pthread_mutex_t lock;
	atomic_bool want_lock;
	struct iof_veventq *q;
	pthread_t reader;
	/* Totals over every vEVENTQ the slot had */
	uint64_t events, lost, seq_errors, malformed, bad_virt_id, reopened;
};

static struct {
	int fd;
	uint32_t ioas_id, parent_id, viommu[NR_VIOMMUS];
	uint32_t plain[NR_VIOMMUS];	/* nested HWPTs without a queue */
	uint32_t stdev[NR_DEVS], dev[NR_DEVS];
	int at[NR_DEVS];		/* a target: T_* or a slot */
	uint32_t vdev[NR_DEVS];		/* 0: none */
	int vdev_viommu[NR_DEVS];
	struct slot slot[NR_SLOTS];
	struct vslot vslot[NR_VSLOTS];
	/* Injectors read-lock it; the chaos thread write-locks it to drain
	 * and destroy a vEVENTQ, so that no vEVENT made goes unaccounted */
	pthread_rwlock_t vq_lock;

	atomic_bool stop_inject, stop;
	atomic_uint_fast64_t groups_made, vevents_made, actions;
	atomic_uint_fast64_t next_grpid, nopri_refused;
	uint64_t g_target, e_target, c_target;
	unsigned int seconds;
	bool quiet;

	/* The chaos thread's */
	uint64_t replaces, replace_refused, hwpt_recycles, vdev_recycles;
	/*
	 * What the checkers found, with the first few explained: the account
	 * of a fault queue or a vEVENTQ closed on the way, and the rest
	 */
	atomic_uint fault_errors, vevent_errors, errors;
} g = { .fd = -1 };

static void die(const char *what, int err)
{
	fprintf(stderr, "fault_chaos: %s: %s\n", what, strerror(-err));
	exit(2);
}

/* A checker found something: count it in @count, explain the first few */
static void __attribute__((format(printf, 2, 3)))
complain_in(atomic_uint *count, const char *fmt, ...)
{
	static atomic_uint shown;
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	atomic_fetch_add(count, 1);
	if (atomic_fetch_add(&shown, 1) < 20)
		printf("# FAIL: %s\n", line);
}

#define complain(...) complain_in(&g.errors, __VA_ARGS__)

#define EXPECT_EQ_IN(count, what, a, b)                                     \
	do {                                                                \
		unsigned long long _a = (a), _b = (b);                      \
		if (_a != _b)                                               \
			complain_in(count, "%s: %llu, expected %llu", what, \
				    _a, _b);                                \
	} while (0)
#define EXPECT_EQ(what, a, b) EXPECT_EQ_IN(&g.errors, what, a, b)

/* Thread-local xorshift */
static uint32_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s >> 11;
}

/* ---- Fault queue slots ---- */

static int on_group(struct iof_queue *q, const struct iof_group *grp,
		    void *arg)
{
	struct slot *s = arg;

	/*
	 * Now and then the guest's page request queue is full: the library
	 * answers the group INVALID, and the device does not wait for it
	 */
	if (rnd(&s->seed) % 16 == 0)
		return -ENOSPC;
	if (s->nr_pending == s->cap_pending) {
		s->cap_pending = s->cap_pending ? 2 * s->cap_pending : 256;
		s->pending = realloc(s->pending,
				     s->cap_pending * sizeof(*s->pending));
		if (!s->pending)
			die("realloc", -ENOMEM);
	}
	s->pending[s->nr_pending++] = (struct pending){
		.cookie = grp->cookie,
		.dev_id = grp->dev_id,
	};
	/* Taken: the reader answers it, by cookie (PRGIs repeat here) */
	return 0;
}

static const struct iof_ops chaos_ops = {
	.page_request = on_group,
};

/* Answer a random part of what waits, in random order; all if @all */
static void answer_some(struct slot *s, bool all)
{
	unsigned int keep = all ? 0 : rnd(&s->seed) % 8, i, code;
	struct pending t;
	int rc;

	while (s->nr_pending > keep) {
		i = rnd(&s->seed) % s->nr_pending;
		t = s->pending[i];
		s->pending[i] = s->pending[--s->nr_pending];
		code = rnd(&s->seed) % 4 ? IOMMUFD_PAGE_RESP_SUCCESS :
					    IOMMUFD_PAGE_RESP_INVALID;
		/* Every pending cookie is outstanding: nothing else is right */
		if (iof_answer(s->q, t.cookie, code))
			complain("answer: cookie %u not outstanding (device %u)",
				 t.cookie, t.dev_id);
	}
	/* Written before the lock goes: a detach never finds answers held */
	if ((rc = iof_flush(s->q)) < 0)
		complain("answer: write failed: %s", strerror(-rc));
}

/* The kernel answered @dev_id's groups: the reader must not */
static void forget_device(struct slot *s, uint32_t dev_id)
{
	unsigned int i = 0, n = 0;

	while (i < s->nr_pending) {
		if (s->pending[i].dev_id == dev_id) {
			s->pending[i] = s->pending[--s->nr_pending];
			n++;
		} else {
			i++;
		}
	}
	EXPECT_EQ("groups forgotten on detach", iof_forget_device(s->q, dev_id),
		  n);
}

static void account(struct slot *s)
{
	const struct iof_stats *st = iof_queue_stats(s->q);

	s->groups += st->groups;
	s->answered += st->answered;
	s->success += st->answered_success;
	s->refused += st->refused;
	s->not_injected += st->not_injected;
	s->malformed += st->malformed;
	s->messages += st->messages;
	s->lost += st->seq.lost;
	s->seq_errors += st->seq.errors;
}

static uint32_t slot_parent(const struct slot *s)
{
	return s->viommu < 0 ? g.parent_id : g.viommu[s->viommu];
}

/* A queue and a nested HWPT reporting to it */
static void slot_open(struct slot *s, bool one_step)
{
	const struct iof_config cfg = {
		.flags = s->flags,
		.depth = s->depth,
		.strict = true,	/* the stress test wants what it asks for */
	};
	uint32_t hwpt_id;
	int rc;

	if (one_step) {
		s->q = iof_queue_alloc_nested(g.fd, g.dev[0], slot_parent(s),
					      IOMMU_HWPT_DATA_SELFTEST,
					      &mock_s1_data,
					      sizeof(mock_s1_data), &cfg,
					      &hwpt_id);
		if (!s->q)
			die("IOPF-capable HWPT", -errno);
		/* Two steps only on a kernel without the flag */
		if (!iof_queue_one_step(s->q)) {
			struct iof_caps caps;

			if (iof_probe(g.fd, &caps) ||
			    caps.iopf_capable != IOF_CAP_NO)
				complain("IOPF_CAPABLE: queue %u made in two steps",
					 iof_queue_id(s->q));
		} else {
			s->one_step++;
		}
	} else {
		s->q = iof_queue_create(g.fd, &cfg);
		if (!s->q)
			die("fault queue", -errno);
		rc = mock_nested_alloc(g.fd, g.dev[0], slot_parent(s),
				       iof_queue_id(s->q), &hwpt_id);
		if (rc)
			die("nested HWPT", rc);
	}
	s->hwpt_id = hwpt_id;
	if (s->mode == READ_NONBLOCK) {
		int fd = iof_queue_fd(s->q);

		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
}

/*
 * Destroy the slot's HWPT and queue; nothing may be attached. First drain
 * it and check that every fault it took was read or lost, by the library's
 * count and the kernel's.
 */
static void slot_close(struct slot *s)
{
	const struct iof_stats *st;
	struct iof_fdinfo fi;
	int rc;

	rc = mock_destroy(g.fd, s->hwpt_id);
	if (rc)
		die("destroy HWPT", rc);
	/* Whatever is left (a LOST header for a tail lost to a full queue) */
	iof_queue_dispatch(s->q, &chaos_ops, s);
	answer_some(s, true);
	st = iof_queue_stats(s->q);
	EXPECT_EQ("outstanding groups of a queue closed", st->outstanding, 0);
	rc = iof_queue_fdinfo(s->q, &fi);
	if (rc) {
		complain_in(&g.fault_errors, "fdinfo of queue %u: %s",
			    iof_queue_id(s->q), strerror(-rc));
	} else {
		atomic_uint *e = &g.fault_errors;

		EXPECT_EQ_IN(e, "faults queued in a drained queue", fi.queued,
			     0);
		EXPECT_EQ_IN(e, "groups awaiting an answer", fi.awaiting, 0);
		/* The bound implies the header: both shown */
		EXPECT_EQ("fault queue flags (fdinfo)", fi.flags,
			  iof_queue_flags(s->q));
		if (s->flags & IOF_FAULT_QUEUE_BOUNDED) {
			/*
			 * Every sequence number was read or lost to a full
			 * queue; faults withdrawn on detach take none (the
			 * kernel counts them apart)
			 */
			EXPECT_EQ_IN(e, "faults lost: sequence vs kernel",
				     st->seq.lost, fi.lost);
			EXPECT_EQ_IN(e, "faults read + lost vs sequence",
				     st->seq.messages + st->seq.lost,
				     st->seq.next);
			EXPECT_EQ_IN(e, "faults read vs messages",
				     st->seq.messages, st->messages);
		} else {
			EXPECT_EQ_IN(e, "faults lost by a legacy queue",
				     fi.lost, 0);
		}
		s->lost_kernel += fi.lost;
		s->withdrawn += fi.withdrawn;
	}
	account(s);
	rc = iof_queue_destroy(s->q);
	if (rc)
		die("destroy queue", rc);
	s->q = NULL;
}

/*
 * Read and answer. The slot lock is held while reading, so that the chaos
 * thread never detaches a device between a read and the bookkeeping of what
 * it returned, and answers are written before it is dropped.
 */
static void *reader(void *arg)
{
	struct slot *s = arg;
	int n;

	while (!atomic_load(&g.stop)) {
		pthread_mutex_lock(&s->lock);
		n = 0;
		switch (s->mode) {
		case READ_EVENTFD:
		case READ_POLL:
			if (iof_queue_wait(s->q, 5) > 0)
				n = iof_queue_dispatch(s->q, &chaos_ops, s);
			break;
		case READ_NONBLOCK:
			n = iof_queue_dispatch(s->q, &chaos_ops, s);
			break;
		}
		/* -EAGAIN: at the cap; the answers below make room */
		if (n < 0 && n != -EAGAIN)
			complain("read of queue %u: %s", iof_queue_id(s->q),
				 strerror(-n));
		answer_some(s, atomic_load(&g.stop_inject));
		pthread_mutex_unlock(&s->lock);
		/* It never waits in the kernel: give the others the CPU */
		if (s->mode == READ_NONBLOCK && n <= 0)
			usleep(200);
		/* Let the chaos thread in */
		while (atomic_load(&s->want_lock) && !atomic_load(&g.stop))
			usleep(100);
	}
	return NULL;
}

/* ---- vEVENTQ slots ---- */

static void on_vevent(struct iof_veventq *q, const struct iof_vevent *ev,
		      void *arg)
{
	struct vslot *v = arg;
	uint32_t id = ev->u.selftest.virt_id;

	/* A vEVENT names a device's vDEVICE, by the virt_id we gave it */
	if (!ev->decoded || id < VIRT_ID(0) || id >= VIRT_ID(NR_DEVS))
		v->bad_virt_id++;
}

static const struct iof_vevent_ops chaos_vops = {
	.event = on_vevent,
};

static void vslot_open(struct vslot *v)
{
	const struct iof_veventq_config cfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.depth = v->depth,
		.flags = v->mode == READ_EVENTFD ? IOF_VEVENTQ_EVENTFD :
						   0,
		.strict = true,
	};

	v->q = iof_veventq_create(g.fd, g.viommu[v->nr], &cfg);
	if (!v->q)
		die("vEVENTQ", -errno);
}

/* Drain and destroy; nobody may make vEVENTs meanwhile (vq_lock) */
static void vslot_close(struct vslot *v)
{
	const struct iof_vstats *st;
	int rc;

	iof_veventq_dispatch(v->q, &chaos_vops, v);
	st = iof_veventq_stats(v->q);
	/* Every sequence number the queue gave out was read or lost */
	EXPECT_EQ_IN(&g.vevent_errors, "vEVENTs read + lost vs sequence",
		     st->events + st->seq.lost, st->seq.next);
	v->events += st->events;
	v->lost += st->seq.lost;
	v->seq_errors += st->seq.errors;
	v->malformed += st->malformed;
	rc = iof_veventq_destroy(v->q);
	if (rc)
		die("destroy vEVENTQ", rc);
	v->q = NULL;
}

static void *vreader(void *arg)
{
	struct vslot *v = arg;
	int n;

	while (!atomic_load(&g.stop)) {
		pthread_mutex_lock(&v->lock);
		if (iof_veventq_wait(v->q, 5) > 0) {
			n = iof_veventq_dispatch(v->q, &chaos_vops, v);
			if (n < 0)
				complain("read of vEVENTQ %d: %s", v->nr,
					 strerror(-n));
		}
		pthread_mutex_unlock(&v->lock);
		while (atomic_load(&v->want_lock) && !atomic_load(&g.stop))
			usleep(100);
	}
	return NULL;
}

/* ---- The chaos thread ---- */

static void lock_it(pthread_mutex_t *lock, atomic_bool *want)
{
	atomic_store(want, true);
	pthread_mutex_lock(lock);
	atomic_store(want, false);
}

static uint32_t target_pt(int t)
{
	if (t == T_IOAS)
		return g.ioas_id;
	if (t >= NR_SLOTS)
		return g.plain[t - NR_SLOTS];
	return g.slot[t].hwpt_id;
}

/* The vIOMMU a target's HWPT hangs on, or -1 */
static int target_viommu(int t)
{
	if (t == T_IOAS)
		return -1;
	if (t >= NR_SLOTS)
		return t - NR_SLOTS;
	return g.slot[t].viommu;
}

static void vdev_destroy(int d)
{
	int rc;

	if (!g.vdev[d])
		return;
	rc = mock_destroy(g.fd, g.vdev[d]);
	if (rc)
		die("destroy vDEVICE", rc);
	g.vdev[d] = 0;
}

static void vdev_make(int d, int v)
{
	int rc;

	rc = mock_vdevice_alloc(g.fd, g.viommu[v], g.dev[d], VIRT_ID(d),
				&g.vdev[d]);
	if (rc)
		die("vDEVICE", rc);
	g.vdev_viommu[d] = v;
	g.vdev_recycles++;
}

/*
 * Move device @d to target @to, telling the old slot's reader what the
 * kernel answered. A nested HWPT of a vIOMMU needs the device's vDEVICE on
 * that vIOMMU: move it first.
 */
static void move_device(int d, int to)
{
	int from = g.at[d], v = target_viommu(to), rc;

	if (from == to)
		return;
	if (v >= 0 && (!g.vdev[d] || g.vdev_viommu[d] != v)) {
		vdev_destroy(d);
		vdev_make(d, v);
	}
	if (from < NR_SLOTS)
		lock_it(&g.slot[from].lock, &g.slot[from].want_lock);
	if (to < NR_SLOTS)
		lock_it(&g.slot[to].lock, &g.slot[to].want_lock);
	rc = mock_replace(g.fd, g.stdev[d], target_pt(to));
	g.replaces++;
	if (d == NOPRI && to < NR_SLOTS) {
		/* A fault capable HWPT without PRI: refused, as on VT-d */
		if (rc != -ENODEV)
			complain("replace: device without PRI to a fault queue: %s",
				 rc ? strerror(-rc) : "accepted");
		g.replace_refused++;
	} else if (rc) {
		die("replace", rc);
	}
	if (!rc) {
		if (from < NR_SLOTS)
			forget_device(&g.slot[from], g.dev[d]);
		g.at[d] = to;
	}
	if (to < NR_SLOTS)
		pthread_mutex_unlock(&g.slot[to].lock);
	if (from < NR_SLOTS)
		pthread_mutex_unlock(&g.slot[from].lock);
}

static void evacuate(int slot)
{
	int d;

	for (d = 0; d != NR_DEVS; d++)
		if (g.at[d] == slot)
			move_device(d, T_IOAS);
}

static void recreate_hwpt(struct slot *s)
{
	int rc;

	evacuate(s->nr);
	lock_it(&s->lock, &s->want_lock);
	rc = mock_destroy(g.fd, s->hwpt_id);
	if (rc)
		die("destroy HWPT", rc);
	rc = mock_nested_alloc(g.fd, g.dev[1], slot_parent(s),
			       iof_queue_id(s->q), &s->hwpt_id);
	if (rc)
		die("nested HWPT", rc);
	g.hwpt_recycles++;
	pthread_mutex_unlock(&s->lock);
}

static void reopen_queue(struct slot *s, bool one_step)
{
	evacuate(s->nr);
	lock_it(&s->lock, &s->want_lock);
	slot_close(s);
	slot_open(s, one_step);
	s->reopened++;
	pthread_mutex_unlock(&s->lock);
}

static void reopen_veventq(struct vslot *v)
{
	pthread_rwlock_wrlock(&g.vq_lock);
	lock_it(&v->lock, &v->want_lock);
	vslot_close(v);
	vslot_open(v);
	v->reopened++;
	pthread_mutex_unlock(&v->lock);
	pthread_rwlock_unlock(&g.vq_lock);
}

static void *chaos(void *arg)
{
	uint64_t seed = 0xdeadbeefcafef00dull;
	unsigned int what;
	int d;

	while (!atomic_load(&g.stop_inject)) {
		what = rnd(&seed) % 20;
		if (what < 11) {
			/* Replace, or detach to the IOAS */
			move_device(rnd(&seed) % NR_DEVS,
				    rnd(&seed) % NR_TARGETS);
		} else if (what < 13) {
			recreate_hwpt(&g.slot[rnd(&seed) % NR_SLOTS]);
		} else if (what < 15) {
			reopen_queue(&g.slot[rnd(&seed) % NR_SLOTS],
				     rnd(&seed) % 2);
		} else if (what < 17) {
			/* A vDEVICE goes and comes back, device attached */
			d = rnd(&seed) % NR_DEVS;
			if (g.vdev[d]) {
				vdev_destroy(d);
				vdev_make(d, g.vdev_viommu[d]);
			}
		} else {
			reopen_veventq(&g.vslot[rnd(&seed) % NR_VSLOTS]);
		}
		atomic_fetch_add(&g.actions, 1);
		usleep(rnd(&seed) % 500);
	}
	return NULL;
}

/* ---- Injectors ---- */

static bool targets_met(void)
{
	return g.g_target && atomic_load(&g.groups_made) >= g.g_target &&
	       atomic_load(&g.vevents_made) >= g.e_target &&
	       atomic_load(&g.actions) >= g.c_target;
}

/* Should this injector make vEVENTs now? Keep both on pace */
static bool want_vevents(uint64_t *seed)
{
	uint64_t gm = atomic_load(&g.groups_made);
	uint64_t em = atomic_load(&g.vevents_made);

	if (!g.g_target)
		return rnd(seed) % 8 == 0;
	if (em >= g.e_target)
		return gm >= g.g_target && rnd(seed) % 8 == 0;
	if (gm >= g.g_target)
		return true;
	/* em / e_target < gm / g_target */
	return em * g.g_target < gm * g.e_target;
}

static void *injector(void *arg)
{
	uint64_t seed = 0x1234567887654321ull * ((uintptr_t)arg + 1);
	unsigned int d, n;
	int rc;

	while (!atomic_load(&g.stop_inject)) {
		if (want_vevents(&seed)) {
			d = rnd(&seed) % NR_DEVS;
			n = 1 + rnd(&seed) % 64;
			pthread_rwlock_rdlock(&g.vq_lock);
			rc = mock_trigger_vevents(g.fd, g.dev[d], n);
			pthread_rwlock_unlock(&g.vq_lock);
			/*
			 * 0: all n reported, queued or lost into the sequence.
			 * ENOENT: the device is on no vIOMMU now. Anything
			 * else (ENOMEM stops a bulk half way) leaves the
			 * account unknown: a failure.
			 */
			if (!rc)
				atomic_fetch_add(&g.vevents_made, n);
			else if (rc != -ENOENT)
				complain("vEVENTs of device %u: %s", d,
					 strerror(-rc));
			continue;
		}
		d = rnd(&seed) % 64 ? rnd(&seed) % NOPRI : NOPRI;
		{
			uint32_t grpid = atomic_fetch_add(&g.next_grpid, 1);
			uint32_t pasid = rnd(&seed) % 4;	/* 0: none */

			rc = mock_trigger_iopf(g.fd, g.dev[d], pasid,
					       grpid & 0x1ff,
					       1 + rnd(&seed) % 4,
					       (uint64_t)grpid << 12);
		}
		if (d == NOPRI) {
			/* No PRI, no page request */
			if (rc != -EOPNOTSUPP)
				complain("page request from a device without PRI: %s",
					 rc ? strerror(-rc) : "sent");
			atomic_fetch_add(&g.nopri_refused, 1);
		} else if (rc) {
			die("trigger page request", rc);
		} else {
			atomic_fetch_add(&g.groups_made, 1);
		}
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fault_chaos [-g GROUPS] [-e EVENTS] [-c ACTIONS] [-t SECONDS] [-q]\n");
	exit(2);
}

static void setup(void)
{
	static const enum reader_mode mode[NR_SLOTS] = {
		READ_EVENTFD, READ_POLL, READ_NONBLOCK,
	};
	static const uint32_t flags[NR_SLOTS] = {
		IOF_FAULT_QUEUE_BOUNDED | IOF_FAULT_QUEUE_EVENTFD,
		0,
		IOF_FAULT_QUEUE_BOUNDED,
	};
	static const uint32_t depth[NR_SLOTS] = { 64, 0, 256 };
	static const int viommu[NR_SLOTS] = { 0, 1, -1 };
	pthread_rwlockattr_t attr;
	int d, i, rc;

	/* Writers first: the injectors would keep the chaos thread out */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&g.vq_lock, &attr);

	g.fd = mock_open();
	if (g.fd < 0)
		die("/dev/iommu", g.fd);
	rc = mock_ioas_alloc(g.fd, &g.ioas_id);
	if (rc)
		die("IOAS", rc);
	for (d = 0; d != NR_DEVS; d++) {
		rc = mock_device(g.fd, g.ioas_id,
				 d == NOPRI ? MOCK_FLAGS_DEVICE_NO_IOPF :
					      MOCK_FLAGS_DEVICE_PASID,
				 &g.stdev[d], &g.dev[d]);
		if (rc)
			die("mock device", rc);
		g.at[d] = T_IOAS;
	}
	rc = mock_parent_alloc(g.fd, g.dev[0], g.ioas_id, &g.parent_id);
	if (rc)
		die("nesting parent", rc);
	for (i = 0; i != NR_VIOMMUS; i++) {
		rc = mock_viommu_alloc(g.fd, g.dev[0], g.parent_id,
				       &g.viommu[i]);
		if (rc)
			die("vIOMMU", rc);
		rc = mock_nested_alloc(g.fd, g.dev[0], g.viommu[i], 0,
				       &g.plain[i]);
		if (rc)
			die("nested HWPT", rc);
	}
	for (i = 0; i != NR_SLOTS; i++) {
		struct slot *s = &g.slot[i];

		s->nr = i;
		s->mode = mode[i];
		s->flags = flags[i];
		s->depth = depth[i];
		s->viommu = viommu[i];
		s->seed = 0x9e3779b97f4a7c15ull * (i + 1);
		pthread_mutex_init(&s->lock, NULL);
		slot_open(s, i != 1);
	}
	for (i = 0; i != NR_VSLOTS; i++) {
		struct vslot *v = &g.vslot[i];

		v->nr = i;
		v->mode = i ? READ_POLL : READ_EVENTFD;
		v->depth = i ? 1024 : 64;
		pthread_mutex_init(&v->lock, NULL);
		vslot_open(v);
	}
	/* Devices 0 and 1 to the queues, 2 (no PRI) to a plain HWPT */
	move_device(0, 0);
	move_device(1, 1);
	move_device(NOPRI, T_PLAIN(0));
}

int main(int argc, char **argv)
{
	pthread_t inj[NR_INJECTORS], chaos_thread;
	uint64_t start, elapsed_ms, groups = 0, success = 0, invalid = 0;
	uint64_t failure = 0, unanswered = 0, doubled = 0;
	uint64_t delivered = 0, answered = 0, user_success = 0, refused = 0;
	uint64_t lost = 0, lost_kernel = 0, messages = 0, seq_errors = 0;
	uint64_t withdrawn = 0, not_injected = 0;
	uint64_t malformed = 0, reopened = 0, one_step = 0;
	uint64_t events = 0, vlost = 0, vseq_errors = 0, vmalformed = 0;
	uint64_t bad_virt = 0, vreopened = 0;
	struct mock_counters c, c_open[NR_DEVS];
	bool ok_answers, ok_faults, ok_vevents, ok_protocol, ok_targets;
	int opt, rc, d, i;

	g.seconds = 300;
	g.g_target = 100000;
	g.e_target = 100000;
	g.c_target = 300;
	while ((opt = getopt(argc, argv, "g:e:c:t:q")) != -1) {
		switch (opt) {
		case 'g':
			g.g_target = strtoull(optarg, NULL, 0);
			break;
		case 'e':
			g.e_target = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			g.c_target = strtoull(optarg, NULL, 0);
			break;
		case 't':
			g.seconds = atoi(optarg);
			break;
		case 'q':
			g.quiet = true;
			break;
		default:
			usage();
		}
	}
	/* TAP, so that make check counts the verdicts */
	printf("TAP version 13\n1..5\n");
	fflush(stdout);
	setup();

	start = now_ns();
	for (i = 0; i != NR_SLOTS; i++)
		pthread_create(&g.slot[i].reader, NULL, reader, &g.slot[i]);
	for (i = 0; i != NR_VSLOTS; i++)
		pthread_create(&g.vslot[i].reader, NULL, vreader,
			       &g.vslot[i]);
	for (i = 0; i != NR_INJECTORS; i++)
		pthread_create(&inj[i], NULL, injector, (void *)(uintptr_t)i);
	pthread_create(&chaos_thread, NULL, chaos, NULL);

	while (!targets_met() &&
	       now_ns() - start < g.seconds * 1000000000ull)
		usleep(20000);
	atomic_store(&g.stop_inject, true);
	for (i = 0; i != NR_INJECTORS; i++)
		pthread_join(inj[i], NULL);
	pthread_join(chaos_thread, NULL);

	/* Readers answer everything left, then stop */
	usleep(300000);
	atomic_store(&g.stop, true);
	for (i = 0; i != NR_SLOTS; i++)
		pthread_join(g.slot[i].reader, NULL);
	for (i = 0; i != NR_VSLOTS; i++)
		pthread_join(g.vslot[i].reader, NULL);
	elapsed_ms = (now_ns() - start) / 1000000;

	/*
	 * Every device leaves the queues' HWPTs after its reader's last
	 * answers: from then on no group may wait for an answer. The queues
	 * are destroyed only after the counters are read, since destroying a
	 * queue answers whatever it still holds and would hide a group the
	 * kernel failed to answer on detach.
	 */
	for (i = 0; i != NR_SLOTS; i++) {
		struct slot *s = &g.slot[i];

		iof_queue_dispatch(s->q, &chaos_ops, s);
		answer_some(s, true);
		evacuate(i);
	}
	for (d = 0; d != NR_DEVS; d++) {
		rc = mock_counters(g.fd, g.dev[d], &c_open[d]);
		if (rc)
			die("mock counters", rc);
	}

	/* Everything goes: each queue is checked as it closes */
	for (i = 0; i != NR_SLOTS; i++)
		slot_close(&g.slot[i]);
	for (i = 0; i != NR_VSLOTS; i++)
		vslot_close(&g.vslot[i]);

	for (d = 0; d != NR_DEVS; d++) {
		rc = mock_counters(g.fd, g.dev[d], &c);
		if (rc)
			die("mock counters", rc);
		groups += c.groups;
		success += c.success;
		invalid += c.invalid;
		failure += c.failure;
		if (c.groups > c.success + c.invalid + c.failure)
			unanswered += c.groups - c.success - c.invalid -
				      c.failure;
		else
			doubled += c.success + c.invalid + c.failure -
				   c.groups;
		/* What the queues' destruction answered was left waiting */
		unanswered += c.success + c.invalid + c.failure -
			      (c_open[d].success + c_open[d].invalid +
			       c_open[d].failure);
		if (d == NOPRI)
			EXPECT_EQ("groups of the device without PRI",
				  c.groups + c.success + c.invalid, 0);
	}
	for (i = 0; i != NR_SLOTS; i++) {
		struct slot *s = &g.slot[i];

		delivered += s->groups;
		answered += s->answered;
		user_success += s->success;
		refused += s->refused;
		not_injected += s->not_injected;
		lost += s->lost;
		lost_kernel += s->lost_kernel;
		withdrawn += s->withdrawn;
		messages += s->messages;
		seq_errors += s->seq_errors;
		malformed += s->malformed;
		reopened += s->reopened;
		one_step += s->one_step;
		if (!g.quiet)
			printf("# queue %d (%s, depth %u, %s): %llu faults, %llu groups, %llu lost, %llu reopened (%llu in one step)\n",
			       i, s->flags & IOF_FAULT_QUEUE_BOUNDED ?
					  "bounded" : "legacy",
			       s->depth, mode_name[s->mode],
			       (unsigned long long)s->messages,
			       (unsigned long long)s->groups,
			       (unsigned long long)s->lost,
			       (unsigned long long)s->reopened,
			       (unsigned long long)s->one_step);
	}
	for (i = 0; i != NR_VSLOTS; i++) {
		struct vslot *v = &g.vslot[i];

		events += v->events;
		vlost += v->lost;
		vseq_errors += v->seq_errors;
		vmalformed += v->malformed;
		bad_virt += v->bad_virt_id;
		vreopened += v->reopened;
		if (!g.quiet)
			printf("# vEVENTQ %d (depth %u, %s): %llu read, %llu lost, %llu reopened\n",
			       i, v->depth, mode_name[v->mode],
			       (unsigned long long)v->events,
			       (unsigned long long)v->lost,
			       (unsigned long long)v->reopened);
	}

	/*
	 * A group a full bounded queue cannot take is answered SUCCESS by the
	 * kernel (the device retries): every other SUCCESS is a reader's, and
	 * there are no more of those than faults lost
	 */
	ok_answers = !unanswered && !doubled && !failure &&
		     groups == atomic_load(&g.groups_made) &&
		     user_success <= success &&
		     success - user_success <= lost_kernel &&
		     answered <= success + invalid;
	ok_faults = lost == lost_kernel && !seq_errors &&
		    !atomic_load(&g.fault_errors);
	ok_vevents = events + vlost == atomic_load(&g.vevents_made) &&
		     !vseq_errors && !atomic_load(&g.vevent_errors);
	/* and groups the guest could not take went out INVALID (1 in 16) */
	ok_protocol = !refused && !malformed && !vmalformed && !bad_virt &&
		      !atomic_load(&g.errors) &&
		      (delivered < 1000 || not_injected) &&
		      not_injected <= answered;
	ok_targets = !g.g_target || targets_met();
	if (!ok_answers)
		printf("# FAIL: %llu groups made, the devices saw %llu; SUCCESS written %llu, arrived %llu\n",
		       (unsigned long long)atomic_load(&g.groups_made),
		       (unsigned long long)groups,
		       (unsigned long long)user_success,
		       (unsigned long long)success);
	if (!ok_targets)
		printf("# FAIL: only %llu of %llu groups, %llu of %llu vEVENTs and %llu of %llu actions in %u s\n",
		       (unsigned long long)atomic_load(&g.groups_made),
		       (unsigned long long)g.g_target,
		       (unsigned long long)atomic_load(&g.vevents_made),
		       (unsigned long long)g.e_target,
		       (unsigned long long)atomic_load(&g.actions),
		       (unsigned long long)g.c_target, g.seconds);

	printf("# chaos: %llu groups and %llu vEVENTs in %llu.%03llu s, %d injector threads, %d readers, %d devices (1 without PRI), %d vIOMMUs\n",
	       (unsigned long long)groups,
	       (unsigned long long)atomic_load(&g.vevents_made),
	       (unsigned long long)elapsed_ms / 1000,
	       (unsigned long long)elapsed_ms % 1000, NR_INJECTORS,
	       NR_SLOTS + NR_VSLOTS, NR_DEVS, NR_VIOMMUS);
	printf("# chaos: answered %llu SUCCESS + %llu INVALID (%llu by readers, %llu of them not injected into the guest, %llu by the kernel), %llu FAILURE\n",
	       (unsigned long long)success, (unsigned long long)invalid,
	       (unsigned long long)answered,
	       (unsigned long long)not_injected,
	       (unsigned long long)(success + invalid - answered),
	       (unsigned long long)failure);
	printf("# chaos: fault queues: %llu groups delivered, %llu faults read, %llu lost by sequence, %llu lost by the kernel's count (%llu of them withdrawn on detach)\n",
	       (unsigned long long)delivered, (unsigned long long)messages,
	       (unsigned long long)lost, (unsigned long long)lost_kernel,
	       (unsigned long long)withdrawn);
	printf("# chaos: vEVENTs: %llu made = %llu read + %llu lost by sequence; %llu page requests refused without PRI\n",
	       (unsigned long long)atomic_load(&g.vevents_made),
	       (unsigned long long)events, (unsigned long long)vlost,
	       (unsigned long long)atomic_load(&g.nopri_refused));
	printf("# chaos: %llu replaces (%llu refused without PRI), %llu HWPTs, %llu fault queues (%llu in one step), %llu vDEVICEs, %llu vEVENTQs recreated\n",
	       (unsigned long long)g.replaces,
	       (unsigned long long)g.replace_refused,
	       (unsigned long long)g.hwpt_recycles,
	       (unsigned long long)reopened, (unsigned long long)one_step,
	       (unsigned long long)g.vdev_recycles,
	       (unsigned long long)vreopened);
	printf("# chaos: lost answers %llu, doubled answers %llu, refused answers %llu, sequence errors %llu, malformed %llu, bad virt_id %llu, other failures %u\n",
	       (unsigned long long)unanswered, (unsigned long long)doubled,
	       (unsigned long long)refused,
	       (unsigned long long)(seq_errors + vseq_errors),
	       (unsigned long long)(malformed + vmalformed),
	       (unsigned long long)bad_virt,
	       atomic_load(&g.errors) + atomic_load(&g.fault_errors) +
		       atomic_load(&g.vevent_errors));

	/* Everything else goes with the iommufd */
	close(g.fd);
	printf("%sok 1 every page request group answered exactly once\n",
	       ok_answers ? "" : "not ");
	printf("%sok 2 every fault read or lost, by sequence and by the kernel\n",
	       ok_faults ? "" : "not ");
	printf("%sok 3 every vEVENT read or lost, by sequence\n",
	       ok_vevents ? "" : "not ");
	printf("%sok 4 nothing refused, malformed or misattributed\n",
	       ok_protocol ? "" : "not ");
	printf("%sok 5 targets met in time\n", ok_targets ? "" : "not ");
	return ok_answers && ok_faults && ok_vevents && ok_protocol &&
		       ok_targets ? 0 : 1;
}
