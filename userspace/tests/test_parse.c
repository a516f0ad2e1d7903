// SPDX-License-Identifier: MIT
/*
 * lib/parse.c: fault messages into page request groups, 7.3's and with
 * headers, sequence accounting, what the callback could not inject, and
 * groups the library has no memory for (B3), on crafted buffers and on the
 * fake kernel.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "unit.h"

static void legacy_group(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = {};
	struct buf b = {};
	int i;

	for (i = 0; i != 3; i++)
		put_pgfault(&b, pgfault(1, 0x20, 5, i == 2, 0x1000 * i));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 3);
	CHECK_EQ(s.groups, 1);
	CHECK_EQ(s.last_group.nr_faults, 3);
	CHECK_EQ(s.last_group.cookie, 5);
	CHECK_EQ(s.last_group.grpid, 0x20);
	CHECK_EQ(s.last_group.pasid, 7);
	CHECK(s.last_group.pasid_valid);
	CHECK_EQ(s.faults[2].addr, 0x2000);
	CHECK(iof_outstanding(q, 5));
	CHECK_EQ(iof_queue_stats(q)->outstanding, 1);
	CHECK_EQ(iof_answer(q, 5, 7), -EINVAL);
	CHECK_EQ(iof_answer(q, 5, IOMMUFD_PAGE_RESP_SUCCESS), 0);
	CHECK(!iof_outstanding(q, 5));
	/* A cookie is answered once */
	CHECK_EQ(iof_answer(q, 5, IOMMUFD_PAGE_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_answer(q, 6, IOMMUFD_PAGE_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	/* A legacy queue has no sequence */
	CHECK_EQ(iof_queue_stats(q)->seq.messages, 0);
	CHECK_EQ(s.nr_lost, 0);
	iof_parser_free(q);
}

static void legacy_split_and_truncated(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct iommu_hwpt_pgfault pf;
	struct seen s = {};
	struct buf b = {};

	/*
	 * The kernel reads whole groups, but a group split across two
	 * buffers is still one group
	 */
	pf = pgfault(1, 0x21, 8, false, 0);
	put(&b, &pf, sizeof(pf));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 1);
	CHECK_EQ(s.groups, 0);
	b.len = 0;
	pf = pgfault(1, 0x21, 8, true, 0x1000);
	put(&b, &pf, sizeof(pf));
	/* and a stray half message after it */
	put(&b, &pf, sizeof(pf) / 2);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 1);
	CHECK_EQ(s.groups, 1);
	CHECK_EQ(s.last_group.nr_faults, 2);
	CHECK_EQ(iof_queue_stats(q)->malformed, 1);
	iof_parser_free(q);
}

static void group_interrupted(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = {};
	struct buf b = {};

	capture_answers();
	/*
	 * A group cut short by another group's fault is dropped, and
	 * answered INVALID so that its device does not wait forever
	 */
	put_pgfault(&b, pgfault(1, 0x40, 3, false, 0));
	put_pgfault(&b, pgfault(1, 0x41, 4, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(s.groups, 1);
	CHECK_EQ(s.last_group.cookie, 4);
	CHECK_EQ(s.last_group.nr_faults, 1);
	CHECK(!iof_outstanding(q, 3));
	CHECK_EQ(iof_queue_stats(q)->malformed, 1);
	CHECK_EQ(iof_queue_stats(q)->auto_invalid, 1);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(cap.nr_got, 1);
	CHECK_EQ(cap.got[0].cookie, 3);
	CHECK_EQ(cap.got[0].code, IOMMUFD_PAGE_RESP_INVALID);
	/* Never for a cookie the VMM holds: that would answer its group */
	b.len = 0;
	put_pgfault(&b, pgfault(1, 0x42, 4, false, 0));
	put_pgfault(&b, pgfault(1, 0x43, 9, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(iof_queue_stats(q)->malformed, 2);
	CHECK_EQ(iof_queue_stats(q)->auto_invalid, 1);
	CHECK_EQ(iof_flush(q), 0);
	CHECK(iof_outstanding(q, 4) && iof_outstanding(q, 9));
	iof_parser_free(q);
}

static void bounded_groups_and_loss(void)
{
	struct iof_queue *q = iof_parser_new(BND);
	struct seen s = {};
	struct buf b = {};
	int i;

	/* A group of 3 at sequence 0-2, one of 1 at 3 */
	for (i = 0; i != 3; i++)
		put_bounded(&b, i, pgfault(1, 1, 11, i == 2, 0x1000 * i));
	put_bounded(&b, 3, pgfault(2, 2, 12, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 4);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(s.last_group.seq, 3);
	CHECK_EQ(s.last_group.dev_id, 2);
	CHECK_EQ(s.nr_lost, 0);

	/* 4-5 lost (a group the kernel answered), then a group of 2 at 6 */
	b.len = 0;
	put_bounded(&b, 6, pgfault(1, 3, 13, false, 0));
	put_bounded(&b, 7, pgfault(1, 3, 13, true, 0x1000));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(s.groups, 3);
	CHECK_EQ(s.last_group.seq, 6);
	CHECK_EQ(s.last_group.nr_faults, 2);
	CHECK_EQ(s.nr_lost, 1);
	CHECK_EQ(s.lost_seq[0], 4);
	CHECK_EQ(s.lost_count[0], 2);

	/* A lost tail: 8-12, as a header-only message after the faults */
	b.len = 0;
	put_bounded(&b, 8, pgfault(1, 4, 14, true, 0));
	put_hdr(&b, LOST, 12);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(s.nr_lost, 2);
	CHECK_EQ(s.lost_seq[1], 9);
	CHECK_EQ(s.lost_count[1], 4);
	/* and the sequence goes on after it */
	b.len = 0;
	put_bounded(&b, 13, pgfault(1, 5, 15, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 1);

	CHECK_EQ(iof_queue_stats(q)->seq.messages, 8);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, 6);
	CHECK_EQ(iof_queue_stats(q)->seq.next, 14);
	CHECK_EQ(iof_queue_stats(q)->seq.errors, 0);
	CHECK_EQ(iof_queue_stats(q)->groups, 5);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 5);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	iof_parser_free(q);
}

static void bounded_wrap(void)
{
	struct iof_queue *q = iof_parser_new(BND);
	struct iof_queue *q2;
	struct seen s = {};
	struct buf b = {};
	uint32_t seq;
	int i, n;

	/*
	 * Walk the checker to just before the wrap with LOST headers (a new
	 * queue starts at 0), then a group across INT_MAX -> 0
	 */
	n = put_walk_to(&b, INT_MAX - 1);
	for (i = 0, seq = INT_MAX - 1; i != 4; i++, seq = (seq + 1) & INT_MAX)
		put_bounded(&b, seq, pgfault(1, 1, 21, i == 3, 0x1000 * i));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), n + 4);
	CHECK_EQ(s.groups, 1);
	CHECK_EQ(s.last_group.nr_faults, 4);
	CHECK_EQ(s.last_group.seq, INT_MAX - 1);
	CHECK_EQ(s.nr_lost, n);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, INT_MAX - 1);
	CHECK_EQ(iof_queue_stats(q)->seq.next, 2);
	CHECK_EQ(iof_queue_stats(q)->seq.errors, 0);

	/* And a loss across the wrap: INT_MAX and 0 lost */
	q2 = iof_parser_new(BND);
	b.len = 0;
	n = put_walk_to(&b, INT_MAX - 1);
	put_bounded(&b, INT_MAX - 1, pgfault(1, 2, 22, true, 0));
	put_bounded(&b, 1, pgfault(1, 3, 23, true, 0));
	memset(&s, 0, sizeof(s));
	CHECK_EQ(iof_parse(q2, b.data, b.len, &ops, &s), n + 2);
	CHECK_EQ(s.nr_lost, n + 1);
	CHECK_EQ(s.lost_seq[n], INT_MAX);
	CHECK_EQ(s.lost_count[n], 2);
	CHECK_EQ(s.groups, 2);
	iof_parser_free(q);
	iof_parser_free(q2);
}

static void bounded_malformed(void)
{
	struct iof_queue *q = iof_parser_new(BND);
	struct seen s = {};
	struct buf b = {};

	capture_answers();
	/* A LOST header inside a group: the group is broken */
	put_bounded(&b, 0, pgfault(1, 1, 31, false, 0));
	put_hdr(&b, LOST, 2);
	put_bounded(&b, 3, pgfault(1, 2, 32, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 3);
	CHECK_EQ(s.groups, 1);
	CHECK_EQ(s.last_group.cookie, 32);
	CHECK_EQ(iof_queue_stats(q)->malformed, 1);
	CHECK_EQ(iof_queue_stats(q)->auto_invalid, 1);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, 2);

	/* A header flag this library does not know: the fault is skipped */
	b.len = 0;
	put_hdr(&b, 0x80, 4);
	put_pgfault(&b, pgfault(1, 3, 33, true, 0));
	/* A sequence going backwards is an error, not a loss */
	put_bounded(&b, 2, pgfault(1, 4, 34, true, 0));
	/* A truncated message at the end */
	put_hdr(&b, 0, 3);
	put(&b, "xx", 2);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(s.groups, 2);
	CHECK(!iof_outstanding(q, 33));
	CHECK(iof_outstanding(q, 34));
	CHECK_EQ(iof_queue_stats(q)->malformed, 3);
	CHECK_EQ(iof_queue_stats(q)->seq.errors, 1);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, 2);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(cap.got[0].cookie, 31);
	iof_parser_free(q);
}

/* A header queue that is not bounded: the same messages, never a gap */
static void header_queue(void)
{
	struct iof_queue *q = iof_parser_new(HDR);
	struct seen s = {};
	struct buf b = {};

	put_bounded(&b, 0, pgfault(1, 1, 11, false, 0));
	put_bounded(&b, 1, pgfault(1, 1, 11, true, 0x1000));
	put_bounded(&b, 2, pgfault(2, 2, 12, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 3);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(s.last_group.seq, 2);
	CHECK_EQ(iof_queue_stats(q)->seq.next, 3);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, 0);
	CHECK_EQ(iof_queue_stats(q)->messages, 3);
	iof_parser_free(q);
}

/* A guest whose page request queue takes @room groups, then is full */
struct guest {
	int room, injected, refused;
	bool answer_then_refuse;	/* answers itself, still returns non-0 */
};

static int guest_inject(struct iof_queue *q, const struct iof_group *g,
			void *arg)
{
	struct guest *gu = arg;

	if (gu->answer_then_refuse) {
		iof_answer(q, g->cookie, IOF_RESP_SUCCESS);
		return -ENOSPC;
	}
	if (gu->room) {
		gu->room--;
		gu->injected++;
		return 0;
	}
	gu->refused++;
	return -ENOSPC;		/* what QEMU's pri_request_page() says */
}

static const struct iof_ops guest_ops = { .page_request = guest_inject };

/*
 * A group the VMM could not inject is answered INVALID by the library, at
 * once: nobody else would, and its device would wait until detached.
 */
static void not_injected(void)
{
	const struct iof_config cfg = { .flags = BND, .depth = 64 };
	int fd = boot_fake(false);
	struct iof_queue *q = iof_queue_create(fd, &cfg);
	struct guest gu = { .room = 2 };
	struct fake_answers a;
	uint32_t id;
	int i;

	CHECK(q);
	id = iof_queue_id(q);
	for (i = 1; i <= 5; i++)
		fake_queue_fault(id, 7, 0, i, i == 3 ? 2 : 1, 0x1000);
	CHECK_EQ(iof_queue_dispatch(q, &guest_ops, &gu), 6);
	CHECK_EQ(gu.injected, 2);
	CHECK_EQ(gu.refused, 3);
	CHECK_EQ(iof_queue_stats(q)->not_injected, 3);
	CHECK_EQ(iof_queue_stats(q)->groups, 5);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 2);
	CHECK_EQ(iof_flush(q), 3);
	fake_answers(7, &a);
	CHECK_EQ(a.invalid, 3);
	CHECK_EQ(a.success, 0);
	/* The guest answers what it has; the others are gone */
	CHECK_EQ(iof_answer_by(q, 7, false, 0, 1, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 7, false, 0, 3, IOF_RESP_SUCCESS), -ENOENT);

	/* A callback that answered itself is not answered twice */
	gu = (struct guest){ .answer_then_refuse = true };
	fake_queue_fault(id, 7, 0, 10, 1, 0);
	CHECK_EQ(iof_queue_dispatch(q, &guest_ops, &gu), 1);
	CHECK_EQ(iof_flush(q), 2);
	fake_answers(7, &a);
	CHECK_EQ(a.success, 2);
	CHECK_EQ(a.invalid, 3);
	CHECK_EQ(iof_queue_stats(q)->not_injected, 3);
	CHECK_EQ(iof_queue_stats(q)->refused, 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static const char *fail_at;

static bool fail_site(const char *site)
{
	return fail_at && !strcmp(site, fail_at);
}

/*
 * B3: a group the library has no memory to keep (its faults, or its entry
 * in the tables) was read from the kernel, so its device waits for an
 * answer that nobody could give: the library answers it INVALID at once
 * and carries on with the next.
 */
static void nomem_answered(const char *site)
{
	const struct iof_config cfg = { .flags = HDR };
	int fd = boot_fake(false);
	struct iof_queue *q = iof_queue_create(fd, &cfg);
	struct fake_answers a;
	struct seen s = {};
	uint32_t id;

	CHECK(q);
	id = iof_queue_id(q);
	fake_queue_fault(id, 9, 0, 1, 3, 0x1000);
	fake_queue_fault(id, 9, 0, 2, 1, 0x8000);
	fail_at = site;
	iof_set_alloc_fail(fail_site);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	iof_set_alloc_fail(NULL);
	CHECK_EQ(s.groups, 0);
	fake_answers(9, &a);
	CHECK_EQ(a.groups, 2);
	CHECK_EQ(a.invalid, 2);
	CHECK_EQ(iof_queue_stats(q)->nomem_invalid, 2);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 0);
	/* With memory again, the next group is delivered */
	fake_queue_fault(id, 9, 0, 3, 2, 0);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 2);
	CHECK_EQ(s.groups, 1);
	CHECK_EQ(s.last_group.nr_faults, 2);
	CHECK_EQ(iof_answer(q, s.last_group.cookie, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 1);
	fake_answers(9, &a);
	CHECK_EQ(a.success, 1);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void nomem_faults_answered(void)
{
	nomem_answered("group");
}

static void nomem_table_answered(void)
{
	nomem_answered("table");
}

UNIT_TESTS(T(legacy_group), T(legacy_split_and_truncated),
	   T(group_interrupted), T(header_queue), T(bounded_groups_and_loss),
	   T(bounded_wrap), T(bounded_malformed), T(not_injected),
	   T(nomem_faults_answered), T(nomem_table_answered));
