// SPDX-License-Identifier: MIT
/*
 * lib/answer.c: the answer buffer and its writes, the guest's codes, and
 * the kernel's cap of groups awaiting an answer (item 8: -EAGAIN, on the
 * poll() and on the eventfd path, no group stranded).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "unit.h"

static void answers_batched(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = { .answer_in_callback = 1 };
	struct buf b = {};
	uint32_t i;

	capture_answers();
	cap.refuse = 5;
	cap.max_per_write = 3;
	cap.eintr = 1;
	for (i = 1; i <= 10; i++)
		put_pgfault(&b, pgfault(1, i, i, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 10);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 0);
	/* Nothing written until the flush */
	CHECK_EQ(cap.writes, 0);
	CHECK_EQ(iof_flush(q), 10);
	/* Short writes, an EINTR and one refused answer are all coped with */
	CHECK_EQ(cap.nr_got, 9);
	CHECK_EQ(iof_queue_stats(q)->answered, 9);
	CHECK_EQ(iof_queue_stats(q)->answered_success, 9);
	CHECK_EQ(iof_queue_stats(q)->refused, 1);
	for (i = 0; i != 9; i++)
		CHECK(cap.got[i].cookie != 5);
	CHECK_EQ(cap.got[8].cookie, 10);
	/* A second flush has nothing to do */
	CHECK_EQ(iof_flush(q), 0);
	iof_parser_free(q);
}

static void answers_buffer_full(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = { .answer_in_callback = 1 };
	static struct buf b;
	uint32_t i;

	capture_answers();
	b.len = 0;
	for (i = 1; i <= 70; i++)
		put_pgfault(&b, pgfault(1, i, i, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 70);
	/* 64 answers fill the buffer and go out with the 65th */
	CHECK_EQ(cap.nr_got, 64);
	CHECK_EQ(iof_flush(q), 6);
	CHECK_EQ(cap.nr_got, 70);
	/* INVALID answers are not counted as SUCCESS */
	b.len = 0;
	put_pgfault(&b, pgfault(1, 80, 80, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 1);
	CHECK_EQ(iof_answer(q, 80, IOMMUFD_PAGE_RESP_INVALID), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(iof_queue_stats(q)->answered, 71);
	CHECK_EQ(iof_queue_stats(q)->answered_success, 70);
	CHECK_EQ(cap.got[70].code, IOMMUFD_PAGE_RESP_INVALID);
	iof_parser_free(q);
}

/*
 * The guest's Response Failure is written as INVALID, the nearest code the
 * kernel takes (it refuses anything but SUCCESS and INVALID, and the group
 * would stay unanswered), and counted.
 */
static void response_failure(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct buf b = {};

	capture_answers();
	put_pgfault(&b, pgfault_pasid(1, true, 1, 1, 11));
	put_pgfault(&b, pgfault_pasid(1, true, 1, 2, 12));
	put_pgfault(&b, pgfault_pasid(1, true, 1, 3, 13));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 3);
	CHECK_EQ(iof_answer(q, 11, IOF_RESP_FAILURE), 0);
	CHECK_EQ(iof_answer_by(q, 1, true, 1, 2, IOF_RESP_FAILURE), 0);
	/* A code the library does not know: refused, the group still there */
	CHECK_EQ(iof_answer(q, 13, 3), -EINVAL);
	CHECK_EQ(iof_answer(q, 13, 0xf), -EINVAL);
	CHECK(iof_outstanding(q, 13));
	CHECK_EQ(iof_flush(q), 2);
	/* The kernel took both: nothing refused, nothing left waiting */
	CHECK_EQ(cap.nr_got, 2);
	CHECK_EQ(cap.got[0].code, IOMMUFD_PAGE_RESP_INVALID);
	CHECK_EQ(cap.got[1].code, IOMMUFD_PAGE_RESP_INVALID);
	CHECK_EQ(iof_queue_stats(q)->refused, 0);
	CHECK_EQ(iof_queue_stats(q)->answered, 2);
	CHECK_EQ(iof_queue_stats(q)->answered_success, 0);
	CHECK_EQ(iof_queue_stats(q)->failure_as_invalid, 2);
	CHECK_EQ(iof_answer(q, 13, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(iof_queue_stats(q)->failure_as_invalid, 2);
	CHECK_EQ(iof_queue_stats(q)->answered_success, 1);
	iof_parser_free(q);
}

/* Fill a queue of the fake past its cap (4 here, 32767 in the kernel) */
static struct iof_queue *capped_queue(const struct iof_config *cfg, int n)
{
	int fd = boot_fake(false);
	struct iof_queue *q;
	int i;

	fake_knobs.cap = 4;
	q = iof_queue_create(fd, cfg);
	if (!q)
		return NULL;
	for (i = 0; i != n; i++)
		fake_queue_fault(iof_queue_id(q), 3, 0, i, 1, 0x1000 * i);
	return q;
}

/*
 * At the cap a read that would take a group fails with EAGAIN: the
 * dispatch says so (-EAGAIN, stalled), it is no empty queue, and the
 * queue is not readable. An answer makes room, the kernel wakes the queue
 * up, and the rest is read. Poll path, edge-triggered epoll.
 */
static void stall_poll(void)
{
	struct iof_queue *q = capped_queue(NULL, 6);
	struct epoll_event ev;
	struct fake_answers a;
	struct seen s = {};
	int epfd;

	CHECK(q);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK_EQ(iof_queue_epoll_add(q, epfd, EPOLLIN | EPOLLET, 1), 0);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	CHECK(iof_queue_stalled(q));
	CHECK_EQ(iof_queue_stats(q)->stalls, 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), -EAGAIN);
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 0);
	/* One answer: one slot */
	CHECK_EQ(iof_answer(q, s.cookies[0], IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK(!iof_queue_stalled(q));
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	CHECK_EQ(s.groups, 5);
	CHECK(iof_queue_stalled(q));
	/* The rest, answered from the callback's list */
	CHECK_EQ(iof_answer(q, s.cookies[1], IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer(q, s.cookies[2], IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 2);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	CHECK_EQ(s.groups, 6);
	CHECK(!iof_queue_stalled(q));
	fake_answers(3, &a);
	CHECK_EQ(a.success, 3);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 3);
	close(epfd);
	CHECK_EQ(iof_queue_destroy(q), 0);
	/* Destroying the queue answered the rest: none stranded */
	fake_answers(3, &a);
	CHECK_EQ(a.success + a.invalid, a.groups);
}

/*
 * The eventfd path: the eventfd's count was taken, the dispatch stopped at
 * the cap; once an answer is accepted the eventfd fires again.
 */
static void stall_eventfd(void)
{
	const struct iof_config cfg = { .flags = EFD | HDR };
	struct iof_queue *q = capped_queue(&cfg, 5);
	struct seen s = {};

	CHECK(q);
	CHECK(iof_queue_wait_fd(q) != iof_queue_fd(q));
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	CHECK(iof_queue_stalled(q));
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	CHECK_EQ(iof_answer(q, s.cookies[3], IOF_RESP_INVALID), 0);
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	CHECK_EQ(s.groups, 5);
	CHECK_EQ(iof_queue_stats(q)->seq.next, 5);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

/*
 * A kernel that does not signal the eventfd when an answer frees a slot
 * (the series' v2): the library makes it report again itself, or the
 * queue's groups would wait for a fault that may never come.
 */
static void stall_rearm_without_kernel(void)
{
	const struct iof_config cfg = { .flags = EFD };
	struct iof_queue *q = capped_queue(&cfg, 5);
	struct seen s = {};

	CHECK(q);
	fake_knobs.no_cap_wake = true;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	CHECK_EQ(iof_answer(q, s.cookies[0], IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	CHECK_EQ(s.groups, 5);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

/* A refused answer does not end a stall: nothing was made room for */
static void stall_refused_answer(void)
{
	const struct iof_config cfg = { .flags = EFD };
	struct iof_queue *q = capped_queue(&cfg, 5);
	struct seen s = {};

	CHECK(q);
	fake_knobs.no_cap_wake = true;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	/* The kernel answered it on a detach: the library's answer fails */
	fake_queue_detach(iof_queue_id(q), 99);
	CHECK_EQ(iof_answer(q, 12345, IOF_RESP_SUCCESS), -ENOENT);
	CHECK(iof_queue_stalled(q));
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

UNIT_TESTS(T(answers_batched), T(answers_buffer_full), T(response_failure),
	   T(stall_poll), T(stall_eventfd), T(stall_rearm_without_kernel),
	   T(stall_refused_answer));
