// SPDX-License-Identifier: MIT
/*
 * iofault_msg.h alone: the sequence checker both kinds of queue use, and
 * the message walker.
 */
#include <limits.h>
#include <string.h>

#include "helpers.h"
#include "unit.h"

static void seq_in_order_and_gaps(void)
{
	struct iof_seq s;
	uint32_t first;

	iof_seq_init(&s);
	CHECK_EQ(iof_seq_check(&s, 0, 0, &first), 0);
	CHECK_EQ(iof_seq_check(&s, 0, 1, &first), 0);
	/* 2, 3 and 4 lost */
	CHECK_EQ(iof_seq_check(&s, 0, 5, &first), 3);
	CHECK_EQ(first, 2);
	CHECK_EQ(s.next, 6);
	/* A LOST tail: 6 to 9 */
	CHECK_EQ(iof_seq_check(&s, LOST, 9, &first), 4);
	CHECK_EQ(first, 6);
	CHECK_EQ(iof_seq_check(&s, 0, 10, &first), 0);
	CHECK_EQ(s.messages, 4);
	CHECK_EQ(s.lost, 7);
	CHECK_EQ(s.gaps, 1);
	CHECK_EQ(s.lost_headers, 1);
	CHECK_EQ(s.errors, 0);
	/* Every sequence number was seen or lost */
	CHECK_EQ(s.messages + s.lost, s.next);

	/* A queue whose first messages were lost starts with a gap */
	iof_seq_init(&s);
	CHECK_EQ(iof_seq_check(&s, 0, 3, &first), 3);
	CHECK_EQ(first, 0);
	iof_seq_init(&s);
	CHECK_EQ(iof_seq_check(&s, LOST, 0, &first), 1);
}

static void seq_wrap(void)
{
	struct iof_seq s;
	uint32_t first;

	/* INT_MAX is followed by 0: no loss */
	iof_seq_init(&s);
	s.next = INT_MAX - 1;
	CHECK_EQ(iof_seq_check(&s, 0, INT_MAX - 1, &first), 0);
	CHECK_EQ(iof_seq_check(&s, 0, INT_MAX, &first), 0);
	CHECK_EQ(s.next, 0);
	CHECK_EQ(iof_seq_check(&s, 0, 0, &first), 0);
	CHECK_EQ(iof_seq_check(&s, 0, 1, &first), 0);
	CHECK_EQ(s.lost, 0);
	CHECK_EQ(s.errors, 0);

	/* A gap across the wrap: INT_MAX - 1, INT_MAX, 0 lost */
	iof_seq_init(&s);
	s.next = INT_MAX - 1;
	CHECK_EQ(iof_seq_check(&s, 0, 1, &first), 3);
	CHECK_EQ(first, INT_MAX - 1);
	CHECK_EQ(s.next, 2);

	/* Only INT_MAX lost */
	iof_seq_init(&s);
	s.next = INT_MAX;
	CHECK_EQ(iof_seq_check(&s, 0, 0, &first), 1);
	CHECK_EQ(first, INT_MAX);

	/* A LOST tail across the wrap: INT_MAX and 0 */
	iof_seq_init(&s);
	s.next = INT_MAX;
	CHECK_EQ(iof_seq_check(&s, LOST, 0, &first), 2);
	CHECK_EQ(s.next, 1);
	CHECK_EQ(s.errors, 0);
}

static void seq_errors(void)
{
	struct iof_seq s;
	uint32_t first;

	iof_seq_init(&s);
	CHECK_EQ(iof_seq_check(&s, 0, 0, &first), 0);
	CHECK_EQ(iof_seq_check(&s, 0, 1, &first), 0);
	/* A duplicate, and one going backwards: errors, not huge losses */
	CHECK_EQ(iof_seq_check(&s, 0, 1, &first), -1);
	CHECK_EQ(iof_seq_check(&s, 0, 0, &first), -1);
	CHECK_EQ(s.errors, 2);
	CHECK_EQ(s.lost, 0);
	/* The checker carries on after the last one */
	CHECK_EQ(iof_seq_check(&s, 0, 1, &first), 0);
	/* Out of [0, INT_MAX] */
	CHECK_EQ(iof_seq_check(&s, 0, 0x80000002u, &first), -1);
	CHECK_EQ(s.errors, 3);
	CHECK_EQ(s.next, 2);
	/* A LOST header for nothing lost */
	CHECK_EQ(iof_seq_check(&s, LOST, 1, &first), -1);
	CHECK_EQ(s.errors, 4);
	CHECK_EQ(s.lost, 0);
	CHECK_EQ(s.lost_headers, 0);
	/* The largest gap still read as a loss, and the first that is not */
	iof_seq_init(&s);
	CHECK_EQ(iof_seq_check(&s, 0, IOF_SEQ_MAX_GAP - 1, &first),
		 IOF_SEQ_MAX_GAP - 1);
	iof_seq_init(&s);
	CHECK_EQ(iof_seq_check(&s, 0, IOF_SEQ_MAX_GAP, &first), -1);
}

static void walk_messages(void)
{
	struct iommufd_vevent_header hdr;
	struct iof_walk w;
	const void *data;
	struct buf b = {};
	uint32_t v;

	put_selftest_event(&b, 0, 0x11);
	put_hdr(&b, LOST, 3);
	put_hdr(&b, 0x40, 4);		/* an unknown flag: still a message */
	put(&b, &(uint32_t){ 0x22 }, 4);
	put_selftest_event(&b, 5, 0x33);
	put_hdr(&b, 0, 6);		/* a header and a piece of data */
	put(&b, "ab", 2);
	iof_walk_init(&w, b.data, b.len, 4);
	CHECK_EQ(iof_walk_next(&w, &hdr, &data), IOF_WALK_MSG);
	memcpy(&v, data, 4);
	CHECK_EQ(v, 0x11);
	CHECK_EQ(hdr.sequence, 0);
	CHECK_EQ(iof_walk_next(&w, &hdr, &data), IOF_WALK_LOST);
	CHECK_EQ(hdr.sequence, 3);
	CHECK(!data);
	CHECK_EQ(iof_walk_next(&w, &hdr, &data), IOF_WALK_MSG);
	CHECK_EQ(hdr.flags, 0x40);
	CHECK_EQ(iof_walk_next(&w, &hdr, &data), IOF_WALK_MSG);
	memcpy(&v, data, 4);
	CHECK_EQ(v, 0x33);
	CHECK_EQ(iof_walk_next(&w, &hdr, &data), IOF_WALK_TRUNCATED);
	CHECK_EQ(iof_walk_next(&w, &hdr, &data), IOF_WALK_END);
	/* Less than a header */
	iof_walk_init(&w, "abc", 3, 4);
	CHECK_EQ(iof_walk_next(&w, &hdr, &data), IOF_WALK_TRUNCATED);
	iof_walk_init(&w, NULL, 0, 4);
	CHECK_EQ(iof_walk_next(&w, &hdr, &data), IOF_WALK_END);
}

/*
 * A queue met in mid-stream: its next number is the kernel's (fdinfo), or
 * the first header's, and nothing before it was lost
 */
static void seq_mid_stream(void)
{
	struct iof_seq s;
	uint32_t first;

	iof_seq_init_at(&s, 1000);
	CHECK_EQ(iof_seq_check(&s, 0, 1000, &first), 0);
	CHECK_EQ(iof_seq_check(&s, 0, 1003, &first), 2);
	CHECK_EQ(first, 1001);
	/* Modulo 2^31 */
	iof_seq_init_at(&s, 0x80000005u);
	CHECK_EQ(s.next, 5);

	iof_seq_init_resync(&s);
	CHECK_EQ(iof_seq_check(&s, 0, 77777, &first), 0);
	CHECK_EQ(s.next, 77778);
	CHECK_EQ(s.lost, 0);
	CHECK_EQ(iof_seq_check(&s, 0, 77780, &first), 2);
	CHECK_EQ(s.lost, 2);
	/* A LOST header first: one lost at least, its own number */
	iof_seq_init_resync(&s);
	CHECK_EQ(iof_seq_check(&s, LOST, 500, &first), 1);
	CHECK_EQ(first, 500);
	CHECK_EQ(s.next, 501);
	CHECK_EQ(s.errors, 0);
}

UNIT_TESTS(T(seq_in_order_and_gaps), T(seq_wrap), T(seq_errors),
	   T(seq_mid_stream), T(walk_messages));
