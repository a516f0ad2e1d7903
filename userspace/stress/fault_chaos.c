// SPDX-License-Identifier: MIT
/*
 * fault_chaos: every page request group is answered exactly once, whatever
 * user space does, and in whatever order.
 *
 * Injector threads make page request groups and unrecoverable faults on
 * three mock devices (one without IOPF) and several PASIDs. Three queues,
 * each with a reader that answers out of order and keeps some answers for
 * later: a records queue read through its eventfd, an original (6.12)
 * queue read after poll(), and a records queue read with blocking reads. A
 * chaos thread moves devices between the queues' HWPTs and a paging HWPT
 * (detach), destroys and recreates HWPTs, and closes and reopens queues,
 * the two ways a VMM can make them.
 *
 * At the end the mock driver's counters must show, for every device, each
 * reported group answered exactly once (by a reader or by the kernel on
 * detach and destroy), and the records queues a gapless sequence.
 *
 *   fault_chaos [-t SECONDS] [-g GROUPS] [-c ACTIONS] [-q]
 *
 * Runs until at least GROUPS groups were made and the chaos thread took
 * ACTIONS actions (default 300), or SECONDS passed; it fails when time runs
 * out first. With -g 0 it runs for SECONDS (a soak).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "iofault.h"
#include "mock.h"

#define NR_DEVS		3	/* the last one cannot do IOPF */
#define NR_SLOTS	3
#define NR_INJECTORS	3

enum reader_mode { READ_EVENTFD, READ_POLL, READ_BLOCKING };

static const char *const mode_name[] = { "eventfd", "poll", "blocking" };

struct pending {
	uint32_t cookie;
	uint32_t dev_id;
};

struct slot {
	int nr;
	enum reader_mode mode;
	uint32_t flags;		/* IOMMU_FAULT_QUEUE_* */
	uint32_t depth;
	pthread_mutex_t lock;	/* the queue and the HWPT */
	struct iof_queue *q;
	uint32_t hwpt_id;
	pthread_t reader;
	atomic_bool want_lock;	/* the chaos thread waits for the lock */

	/* Groups read and not answered yet, answered in random order */
	struct pending *pending;
	unsigned int nr_pending, cap_pending;

	/* Totals over every queue the slot had */
	uint64_t groups, answered, refused, unrecov, lost, seq_gaps;
	uint64_t malformed, records, recycles;
};

static struct {
	int fd;
	uint32_t ioas_id, parent_id;
	uint32_t stdev[NR_DEVS], dev[NR_DEVS];
	int attached[NR_DEVS];	/* slot, or -1 for the paging HWPT */
	struct slot slot[NR_SLOTS];
	atomic_bool stop_inject, stop;
	atomic_uint_fast64_t groups_made, unrecov_made, next_grpid;
	uint64_t target, chaos_target;
	atomic_uint_fast64_t actions;
	unsigned int seconds;
	uint64_t replaces, replace_refused, hwpt_recycles;
	int quiet;
} g = { .fd = -1 };

static void die(const char *what, int err)
{
	fprintf(stderr, "fault_chaos: %s: %s\n", what, strerror(-err));
	exit(2);
}

/* Thread-local xorshift */
static uint32_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s >> 11;
}

static void on_group(struct iof_queue *q, const struct iof_group *grp,
		     void *arg)
{
	struct slot *s = arg;

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
}

static const struct iof_ops chaos_ops = {
	.page_request = on_group,
};

/* Answer a random part of what waits, in random order; all if @all */
static void answer_some(struct slot *s, uint64_t *seed, bool all)
{
	unsigned int keep = all ? 0 : rnd(seed) % 8, i, j;
	struct pending t;

	while (s->nr_pending > keep) {
		i = rnd(seed) % s->nr_pending;
		t = s->pending[i];
		s->pending[i] = s->pending[--s->nr_pending];
		j = rnd(seed) % 4 ? IOMMUFD_PAGE_RESP_SUCCESS :
				    IOMMUFD_PAGE_RESP_INVALID;
		if (iof_answer(s->q, t.cookie, j))
			s->refused++;
	}
	iof_flush(s->q);
}

/* The kernel answered @dev_id's groups: their cookies may come back */
static void forget_device(struct slot *s, uint32_t dev_id)
{
	unsigned int i = 0;

	while (i < s->nr_pending) {
		if (s->pending[i].dev_id == dev_id)
			s->pending[i] = s->pending[--s->nr_pending];
		else
			i++;
	}
	iof_forget_device(s->q, dev_id);
}

static void account(struct slot *s)
{
	const struct iof_stats *st = iof_queue_stats(s->q);

	s->groups += st->groups;
	s->answered += st->answered;
	s->refused += st->refused;
	s->unrecov += st->unrecov;
	s->lost += st->lost;
	s->seq_gaps += st->seq_gaps;
	s->malformed += st->malformed;
	s->records += st->records;
}

/* A queue and a nested HWPT of the parent reporting to it */
static void slot_open(struct slot *s, bool one_step)
{
	struct iof_config cfg = { .flags = s->flags, .depth = s->depth };
	uint32_t hwpt_id;
	int rc;

	if (one_step) {
		s->q = iof_queue_alloc_nested(g.fd, g.dev[0], g.parent_id,
					      IOMMU_HWPT_DATA_SELFTEST,
					      &mock_s1_data,
					      sizeof(mock_s1_data), &cfg,
					      &hwpt_id);
		if (!s->q)
			die("IOPF-capable HWPT", -errno);
	} else {
		s->q = iof_queue_create(g.fd, &cfg);
		if (!s->q)
			die("fault queue", -errno);
		rc = mock_nested_alloc(g.fd, g.dev[0], g.parent_id,
				       iof_queue_id(s->q), &hwpt_id);
		if (rc)
			die("nested HWPT", rc);
	}
	s->hwpt_id = hwpt_id;
	if (s->mode == READ_BLOCKING) {
		int fd = iof_queue_wait_fd(s->q);

		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	}
}

/* Destroy the slot's HWPT and queue; nothing may be attached to it */
static void slot_close(struct slot *s)
{
	int rc;

	rc = mock_destroy(g.fd, s->hwpt_id);
	if (rc)
		die("destroy HWPT", rc);
	account(s);
	/* The kernel answers everything the queue still holds */
	s->nr_pending = 0;
	rc = iof_queue_destroy(s->q);
	if (rc)
		die("destroy queue", rc);
	s->q = NULL;
}

static void on_signal(int sig)
{
}

/*
 * Read and answer. The slot lock is held while reading, so that the chaos
 * thread never detaches a device between a read and the bookkeeping of what
 * it returned (a detached device's cookies are reused at once).
 */
static void *reader(void *arg)
{
	struct slot *s = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (s->nr + 1);
	unsigned char buf[64 * 48];
	ssize_t len;

	while (!atomic_load(&g.stop)) {
		pthread_mutex_lock(&s->lock);
		switch (s->mode) {
		case READ_EVENTFD:
		case READ_POLL:
			if (iof_queue_wait(s->q, 5) > 0)
				iof_queue_dispatch(s->q, &chaos_ops, s);
			break;
		case READ_BLOCKING:
			len = read(iof_queue_wait_fd(s->q), buf, sizeof(buf));
			if (len > 0)
				iof_parse(s->q, buf, len, &chaos_ops, s);
			break;
		}
		answer_some(s, &seed, atomic_load(&g.stop_inject));
		pthread_mutex_unlock(&s->lock);
		/* Let the chaos thread in */
		while (atomic_load(&s->want_lock) && !atomic_load(&g.stop))
			usleep(100);
	}
	return NULL;
}

static void slot_lock(struct slot *s)
{
	atomic_store(&s->want_lock, true);
	while (pthread_mutex_trylock(&s->lock)) {
		/* Wake a reader blocked in read(); others wait 5 ms at most */
		if (s->mode == READ_BLOCKING)
			pthread_kill(s->reader, SIGUSR1);
		usleep(200);
	}
	atomic_store(&s->want_lock, false);
}

static uint32_t slot_pt(int slot)
{
	return slot < 0 ? g.ioas_id : g.slot[slot].hwpt_id;
}

/* Move device @d to @to (a slot, or -1), telling the old slot's reader */
static void move_device(int d, int to)
{
	int from = g.attached[d], rc;

	if (from == to)
		return;
	if (from >= 0)
		slot_lock(&g.slot[from]);
	if (to >= 0)
		slot_lock(&g.slot[to]);
	rc = mock_replace(g.fd, g.stdev[d], slot_pt(to));
	g.replaces++;
	if (rc) {
		/* A device without IOPF cannot use an original queue */
		if (rc != -ENODEV)
			die("replace", rc);
		g.replace_refused++;
	} else {
		if (from >= 0)
			forget_device(&g.slot[from], g.dev[d]);
		g.attached[d] = to;
	}
	if (to >= 0)
		pthread_mutex_unlock(&g.slot[to].lock);
	if (from >= 0)
		pthread_mutex_unlock(&g.slot[from].lock);
}

static void evacuate(int slot)
{
	int d;

	for (d = 0; d != NR_DEVS; d++)
		if (g.attached[d] == slot)
			move_device(d, -1);
}

static void *chaos(void *arg)
{
	uint64_t seed = 0xdeadbeefcafef00dull ^ (uintptr_t)arg;
	struct slot *s;
	int rc;

	while (!atomic_load(&g.stop_inject)) {
		unsigned int what = rnd(&seed) % 16;

		if (what < 11) {
			/* Replace, or detach to the paging HWPT */
			move_device(rnd(&seed) % NR_DEVS,
				    (int)(rnd(&seed) % (NR_SLOTS + 1)) - 1);
		} else if (what < 14) {
			/* A new HWPT on the same queue */
			s = &g.slot[rnd(&seed) % NR_SLOTS];
			evacuate(s->nr);
			slot_lock(s);
			rc = mock_destroy(g.fd, s->hwpt_id);
			if (rc)
				die("destroy HWPT", rc);
			rc = mock_nested_alloc(g.fd, g.dev[1], g.parent_id,
					       iof_queue_id(s->q),
					       &s->hwpt_id);
			if (rc)
				die("nested HWPT", rc);
			g.hwpt_recycles++;
			pthread_mutex_unlock(&s->lock);
		} else {
			/* Close the queue, open a new one */
			s = &g.slot[rnd(&seed) % NR_SLOTS];
			evacuate(s->nr);
			slot_lock(s);
			slot_close(s);
			slot_open(s, rnd(&seed) % 2);
			s->recycles++;
			pthread_mutex_unlock(&s->lock);
		}
		atomic_fetch_add(&g.actions, 1);
		usleep(rnd(&seed) % 500);
	}
	return NULL;
}

static bool targets_met(void)
{
	return g.target && atomic_load(&g.groups_made) >= g.target &&
	       atomic_load(&g.actions) >= g.chaos_target;
}

static void *injector(void *arg)
{
	uint64_t seed = 0x1234567887654321ull * ((uintptr_t)arg + 1);
	int rc;

	while (!atomic_load(&g.stop_inject)) {
		unsigned int d = rnd(&seed) % NR_DEVS;
		uint32_t pasid = rnd(&seed) % 4;

		if (d != NR_DEVS - 1 && rnd(&seed) % 8) {
			uint32_t grpid = atomic_fetch_add(&g.next_grpid, 1);

			rc = mock_trigger_iopf(g.fd, g.dev[d], pasid, grpid,
					       1 + rnd(&seed) % 3,
					       (uint64_t)grpid << 12);
			if (rc)
				die("trigger page request", rc);
			atomic_fetch_add(&g.groups_made, 1);
		} else {
			uint32_t n = 1 + rnd(&seed) % 16;

			/* Refused when nobody takes them: that is fine */
			mock_trigger_unrecov(g.fd, g.dev[d],
					     IOMMU_HWPT_UNRECOV_PASID_VALID |
						     IOMMU_HWPT_UNRECOV_ADDR_VALID,
					     pasid,
					     IOMMU_HWPT_UNRECOV_REASON_TRANSLATION,
					     IOMMU_PGFAULT_PERM_WRITE, n, 0, 0);
			atomic_fetch_add(&g.unrecov_made, n);
		}
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fault_chaos [-t SECONDS] [-g GROUPS] [-c ACTIONS] [-q]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const uint32_t slot_flags[NR_SLOTS] = {
		IOMMU_FAULT_QUEUE_RECORDS | IOMMU_FAULT_QUEUE_EVENTFD,
		0,
		IOMMU_FAULT_QUEUE_RECORDS,
	};
	static const uint32_t slot_depth[NR_SLOTS] = { 64, 0, 256 };
	pthread_t inj[NR_INJECTORS], chaos_thread;
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t start, elapsed_ms, groups = 0, success = 0, invalid = 0;
	uint64_t failure = 0, unexpected = 0, outstanding = 0;
	uint64_t unrecov_taken = 0, unrecov_refused = 0;
	uint64_t user_answers = 0, seq_gaps = 0, malformed = 0;
	uint64_t delivered = 0, lost = 0, unrecov_read = 0, recycles = 0;
	struct mock_counters c;
	int opt, rc, d, i;
	bool ok = true;

	g.seconds = 60;
	g.chaos_target = 300;
	while ((opt = getopt(argc, argv, "t:g:c:q")) != -1) {
		switch (opt) {
		case 't':
			g.seconds = atoi(optarg);
			break;
		case 'g':
			g.target = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			g.chaos_target = strtoull(optarg, NULL, 0);
			break;
		case 'q':
			g.quiet = 1;
			break;
		default:
			usage();
		}
	}
	sigaction(SIGUSR1, &sa, NULL);	/* no SA_RESTART: read() sees EINTR */
	/* TAP, so that make check counts the verdict */
	printf("TAP version 13\n1..1\n");

	g.fd = mock_open();
	if (g.fd < 0)
		die("/dev/iommu", g.fd);
	rc = mock_ioas_alloc(g.fd, &g.ioas_id);
	if (rc)
		die("IOAS", rc);
	for (d = 0; d != NR_DEVS; d++) {
		rc = mock_device(g.fd, g.ioas_id,
				 d == NR_DEVS - 1 ? MOCK_FLAGS_DEVICE_NO_IOPF : 0,
				 &g.stdev[d], &g.dev[d]);
		if (rc)
			die("mock device", rc);
		g.attached[d] = -1;
	}
	rc = mock_parent_alloc(g.fd, g.dev[0], g.ioas_id, &g.parent_id);
	if (rc)
		die("parent HWPT", rc);
	for (i = 0; i != NR_SLOTS; i++) {
		struct slot *s = &g.slot[i];

		s->nr = i;
		s->mode = (enum reader_mode)i;
		s->flags = slot_flags[i];
		s->depth = slot_depth[i];
		pthread_mutex_init(&s->lock, NULL);
		slot_open(s, i == 0);
	}
	for (d = 0; d != NR_DEVS; d++)
		move_device(d, d);

	start = now_ns();
	for (i = 0; i != NR_SLOTS; i++)
		pthread_create(&g.slot[i].reader, NULL, reader, &g.slot[i]);
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
	for (i = 0; i != NR_SLOTS; i++) {
		while (pthread_tryjoin_np(g.slot[i].reader, NULL)) {
			pthread_kill(g.slot[i].reader, SIGUSR1);
			usleep(1000);
		}
	}
	/* A last drain, with nothing running any more */
	for (i = 0; i != NR_SLOTS; i++) {
		struct slot *s = &g.slot[i];
		uint64_t seed = 1;
		int fd = iof_queue_wait_fd(s->q);

		if (s->mode == READ_BLOCKING)
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		iof_queue_dispatch(s->q, &chaos_ops, s);
		answer_some(s, &seed, true);
	}
	elapsed_ms = (now_ns() - start) / 1000000;

	for (d = 0; d != NR_DEVS; d++) {
		rc = mock_counters(g.fd, g.dev[d], &c);
		if (rc)
			die("counters", rc);
		groups += c.groups;
		success += c.success;
		invalid += c.invalid;
		failure += c.failure;
		unexpected += c.unexpected;
		outstanding += c.outstanding;
		unrecov_taken += c.unrecov_taken;
		unrecov_refused += c.unrecov_refused;
		if (c.unexpected || c.outstanding ||
		    c.groups != c.success + c.invalid + c.failure) {
			printf("# device %u: %u groups, %u+%u+%u answers, %u unexpected, %u outstanding\n",
			       g.dev[d], c.groups, c.success, c.invalid,
			       c.failure, c.unexpected, c.outstanding);
			ok = false;
		}
	}
	for (i = 0; i != NR_SLOTS; i++) {
		struct slot *s = &g.slot[i];

		account(s);
		user_answers += s->answered;
		seq_gaps += s->seq_gaps;
		malformed += s->malformed;
		delivered += s->groups;
		lost += s->lost;
		unrecov_read += s->unrecov;
		recycles += s->recycles;
		if (!g.quiet)
			printf("# queue %d (%s, %s): %llu records, %llu groups, %llu unrecoverable, %llu lost, %llu reopened\n",
			       i, s->flags & IOMMU_FAULT_QUEUE_RECORDS ?
					  "records" : "6.12",
			       mode_name[s->mode],
			       (unsigned long long)s->records,
			       (unsigned long long)s->groups,
			       (unsigned long long)s->unrecov,
			       (unsigned long long)s->lost,
			       (unsigned long long)s->recycles);
	}
	if (seq_gaps || malformed)
		ok = false;
	if (g.target && !targets_met()) {
		printf("# only %llu of %llu groups and %llu of %llu actions in %u s\n",
		       (unsigned long long)groups,
		       (unsigned long long)g.target,
		       (unsigned long long)atomic_load(&g.actions),
		       (unsigned long long)g.chaos_target, g.seconds);
		ok = false;
	}

	printf("# chaos: %llu groups in %llu.%03llu s, %d injector threads, %d readers, %d devices\n",
	       (unsigned long long)groups,
	       (unsigned long long)elapsed_ms / 1000,
	       (unsigned long long)elapsed_ms % 1000, NR_INJECTORS, NR_SLOTS,
	       NR_DEVS);
	printf("# chaos: answered %llu SUCCESS + %llu INVALID (%llu by readers, %llu by the kernel), %llu FAILURE\n",
	       (unsigned long long)success, (unsigned long long)invalid,
	       (unsigned long long)user_answers,
	       (unsigned long long)(success + invalid - user_answers),
	       (unsigned long long)failure);
	printf("# chaos: %llu groups delivered, %llu unrecoverable faults taken, %llu read, %llu refused, %llu lost\n",
	       (unsigned long long)delivered,
	       (unsigned long long)unrecov_taken,
	       (unsigned long long)unrecov_read,
	       (unsigned long long)unrecov_refused, (unsigned long long)lost);
	printf("# chaos: %llu replaces (%llu refused), %llu HWPTs and %llu queues recreated\n",
	       (unsigned long long)g.replaces,
	       (unsigned long long)g.replace_refused,
	       (unsigned long long)g.hwpt_recycles,
	       (unsigned long long)recycles);
	printf("# chaos: lost answers %llu, doubled answers %llu, sequence gaps %llu, malformed %llu\n",
	       (unsigned long long)outstanding,
	       (unsigned long long)unexpected, (unsigned long long)seq_gaps,
	       (unsigned long long)malformed);

	/* Everything goes with the iommufd: the mock WARNs if anything waits */
	for (i = 0; i != NR_SLOTS; i++) {
		evacuate(i);
		slot_close(&g.slot[i]);
	}
	close(g.fd);
	printf("%sok 1 fault_chaos\n", ok ? "" : "not ");
	return ok ? 0 : 1;
}
