// SPDX-License-Identifier: MIT
/*
 * lib/chan.c: the read loop (whole messages, growing for a big group,
 * EINTR, errors), the eventfd as a wake-up hint, the bound on reads per
 * dispatch, edge-triggered epoll, and waits; on the fake kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "unit.h"

#define PGF sizeof(struct iommu_hwpt_pgfault)
#define MSG (sizeof(struct iommufd_vevent_header) + PGF)

static struct iof_queue *queue(const struct iof_config *cfg)
{
	return iof_queue_create(boot_fake(false), cfg);
}

static void faults(struct iof_queue *q, uint32_t grpid, uint32_t n)
{
	fake_queue_fault(iof_queue_id(q), 1, 0, grpid, n, 0x1000);
}

static void dispatch_empty(void)
{
	struct iof_queue *q = queue(NULL);
	struct seen s = {};

	CHECK(q);
	/* An empty queue reads 0 bytes: no wait, no error */
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(fake_stats.reads, 1);
	CHECK_EQ(iof_queue_stats(q)->reads, 0);
	CHECK_EQ(s.groups, 0);
	CHECK(!iof_queue_stalled(q));
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void dispatch_whole_groups(void)
{
	/* Rounded down to 3 messages: 7.3 reads no partial ones (ESPIPE) */
	const struct iof_config cfg = { .read_size = 3 * PGF + 20 };
	struct iof_queue *q = queue(&cfg);
	struct seen s = {};
	int i;

	CHECK(q);
	faults(q, 1, 2);
	faults(q, 2, 3);
	faults(q, 3, 2);
	/* One EINTR is retried */
	fake_knobs.read_eintr = 1;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 7);
	/* EINTR, 2 + (3 does not fit), 3, 2, empty */
	CHECK_EQ(fake_stats.reads, 5);
	for (i = 0; i != fake_stats.reads; i++)
		CHECK_EQ(fake_stats.read_lens[i], 3 * PGF);
	CHECK_EQ(s.groups, 3);
	CHECK_EQ(s.last_group.grpid, 3);
	CHECK_EQ(s.last_group.nr_faults, 2);
	CHECK_EQ(iof_queue_stats(q)->reads, 3);
	CHECK_EQ(iof_queue_stats(q)->messages, 7);
	CHECK_EQ(iof_queue_stats(q)->groups, 3);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 3);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	CHECK(iof_outstanding(q, s.cookies[0]) &&
	      iof_outstanding(q, s.cookies[2]));
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void dispatch_big_group(void)
{
	/* Room for 2 messages; a group of 5 needs the buffer grown twice */
	const struct iof_config cfg = { .read_size = 2 * PGF };
	struct iof_queue *q = queue(&cfg);
	struct seen s = {};

	CHECK(q);
	faults(q, 1, 5);
	faults(q, 2, 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 6);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(s.last_group.grpid, 2);
	CHECK_EQ(iof_queue_stats(q)->reads, 1);
	CHECK_EQ(fake_stats.read_lens[0], 2 * PGF);
	CHECK_EQ(fake_stats.read_lens[1], 4 * PGF);
	CHECK_EQ(fake_stats.read_lens[2], 8 * PGF);
	/* The buffer stays grown */
	CHECK_EQ(fake_stats.read_lens[3], 8 * PGF);
	CHECK_EQ(fake_stats.reads, 4);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 2);

	/* A kernel that refuses every size: the growth has a limit */
	fake_stats.reads = 0;
	fake_knobs.read_errno = EINVAL;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), -EINVAL);
	CHECK(fake_stats.reads > 1 && fake_stats.reads < 64);
	CHECK_EQ(fake_stats.read_lens[fake_stats.reads - 1], 32768 * PGF);
	fake_knobs.read_errno = 0;
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void dispatch_header(void)
{
	/* Room for 1.5 messages: header reads need no multiple */
	const struct iof_config cfg = {
		.flags = BND,
		.depth = 16,
		.read_size = MSG + MSG / 2,
	};
	struct iof_queue *q = queue(&cfg);
	struct seen s = {};

	CHECK(q);
	CHECK_EQ(iof_queue_flags(q), BND | HDR);
	CHECK_EQ(iof_queue_depth(q), 16);
	faults(q, 1, 1);
	faults(q, 2, 3);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(s.last_group.seq, 1);
	CHECK_EQ(s.last_group.nr_faults, 3);
	CHECK_EQ(fake_stats.read_lens[0], MSG + MSG / 2);
	/* Grown by doubling, not rounded to messages */
	CHECK_EQ(fake_stats.read_lens[2], 2 * (MSG + MSG / 2));
	CHECK_EQ(iof_queue_stats(q)->seq.messages, 4);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, 0);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void dispatch_error(void)
{
	struct iof_queue *q = queue(NULL);
	struct seen s = {};

	CHECK(q);
	fake_knobs.read_errno = EIO;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), -EIO);
	CHECK_EQ(fake_stats.reads, 1);
	fake_knobs.read_errno = 0;
	CHECK_EQ(iof_queue_destroy(q), 0);
}

/*
 * The eventfd is a wake-up hint: dispatch takes the count of the one the
 * library made, then reads until read() returns 0, however small it was.
 */
static void eventfd_hint(void)
{
	const struct iof_config cfg = { .flags = EFD };
	struct iof_queue *q = queue(&cfg);
	struct seen s = {};
	uint64_t v;
	int efd;

	CHECK(q);
	efd = iof_queue_wait_fd(q);
	CHECK(efd != iof_queue_fd(q));
	CHECK(fake_stats.fault_eventfd_real);
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	/* 3 groups, one edge: a count of 1 */
	faults(q, 1, 1);
	faults(q, 2, 2);
	faults(q, 3, 1);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	CHECK_EQ(s.groups, 3);
	CHECK_EQ(iof_queue_stats(q)->wakeups, 1);
	/* The count was taken: nothing to wait for */
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	/* A count larger than what is left (withdrawn faults) is fine */
	v = 5;
	CHECK_EQ(write(efd, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(iof_queue_stats(q)->wakeups, 2);
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	/* An empty eventfd does not block the dispatch */
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(iof_queue_stats(q)->wakeups, 2);
	/* A new edge after the queue was empty */
	faults(q, 4, 1);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	/* destroy closes the eventfd it made */
	CHECK_EQ(iof_queue_destroy(q), 0);
	CHECK_EQ(fcntl(efd, F_GETFD), -1);
}

/*
 * A flood does not keep the caller in dispatch: it returns after max_reads
 * reads, and the eventfd it took the count of is signalled again so that
 * the next wait returns at once.
 */
static void dispatch_flood(void)
{
	const struct iof_config cfg = {
		.flags = EFD,
		.max_reads = 5,
		.read_size = PGF,
	};
	struct iof_config dflt = { .read_size = PGF };
	struct iof_queue *q = queue(&cfg), *q2;
	struct seen s = {};
	int i;

	CHECK(q);
	for (i = 0; i != 40; i++)
		faults(q, i, 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 5);
	CHECK_EQ(s.groups, 5);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 5);
	CHECK_EQ(iof_queue_stats(q)->wakeups, 2);

	/* The default is 16 reads */
	q2 = iof_queue_create(fake_ctx, &dflt);
	CHECK(q2);
	for (i = 0; i != 40; i++)
		faults(q2, i, 1);
	CHECK_EQ(iof_queue_dispatch(q2, &ops, &s), 16);
	CHECK_EQ(iof_queue_destroy(q2), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

/* Dispatch on every event until none is left; how many rounds */
static int et_loop(int epfd, struct iof_queue *q, struct seen *s)
{
	struct epoll_event ev;
	int rounds = 0;

	while (epoll_wait(epfd, &ev, 1, 0) == 1 && rounds++ < 100)
		iof_queue_dispatch(q, &ops, s);
	return rounds;
}

/*
 * max_reads stops a dispatch with messages left; edge triggered, nothing
 * new arrives, and without a re-arm they would wait for the next fault.
 */
static void epoll_et(bool eventfd)
{
	const struct iof_config cfg = {
		.flags = eventfd ? EFD : 0,
		.read_size = PGF,
		.max_reads = 2,
	};
	struct iof_queue *q = queue(&cfg);
	struct seen s = {};
	int epfd, i;

	CHECK(q);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(epfd >= 0);
	CHECK_EQ(iof_queue_epoll_add(q, epfd, EPOLLIN | EPOLLET, 7), 0);
	for (i = 1; i <= 5; i++)
		faults(q, i, 1);
	et_loop(epfd, q, &s);
	CHECK_EQ(s.groups, 5);
	/* All read, and no spurious wake-up left */
	CHECK_EQ(et_loop(epfd, q, &s), 0);
	/* Adding it twice is refused */
	CHECK_EQ(iof_queue_epoll_add(q, epfd, EPOLLIN, 8), -EEXIST);
	CHECK_EQ(iof_queue_destroy(q), 0);
	close(epfd);
}

static void epoll_et_fault_queue(void)
{
	epoll_et(false);
}

static void epoll_et_eventfd(void)
{
	epoll_et(true);
}

static void wait_and_epoll(void)
{
	struct iof_queue *q = queue(NULL);
	struct epoll_event ev = {};
	int epfd;

	CHECK(q);
	CHECK_EQ(iof_queue_wait_fd(q), iof_queue_fd(q));
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK_EQ(iof_queue_epoll_add(q, epfd, 0, 42), 0);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 0);
	faults(q, 1, 1);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_wait(q, -1), 1);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 1);
	CHECK_EQ(ev.data.u64, 42);
	CHECK(ev.events & EPOLLIN);
	close(epfd);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

UNIT_TESTS(T(dispatch_empty), T(dispatch_whole_groups), T(dispatch_big_group),
	   T(dispatch_header), T(dispatch_error), T(eventfd_hint),
	   T(dispatch_flood), T(epoll_et_fault_queue), T(epoll_et_eventfd),
	   T(wait_and_epoll));
