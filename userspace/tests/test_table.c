// SPDX-License-Identifier: MIT
/*
 * lib/table.c: the outstanding groups, by cookie and by (device, PASID,
 * PRGI), against plain arrays and through cookie reuse (B2).
 */
#include <errno.h>
#include <string.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "unit.h"

static void cookies(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = {};
	struct buf b = {};

	put_pgfault(&b, pgfault(1, 0x50, 2, true, 0));
	put_pgfault(&b, pgfault(2, 0x51, 300, true, 0));
	/* The kernel hands cookies out cyclically: any 32-bit value */
	put_pgfault(&b, pgfault(1, 0x52, 0xfffffff0u, true, 0));
	put_pgfault(&b, pgfault(1, 0x53, 1U << 30, true, 0));
	/*
	 * A cookie outstanding already: the kernel hands out no cookie a
	 * group awaiting an answer has, so the older group is stale (answered
	 * by the kernel) and the newer one takes the cookie. And cookie 0,
	 * never handed out.
	 */
	put_pgfault(&b, pgfault(1, 0x54, 300, true, 0));
	put_pgfault(&b, pgfault(1, 0x55, 0, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 6);
	CHECK_EQ(s.groups, 5);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 4);
	CHECK_EQ(iof_queue_stats(q)->malformed, 1);
	CHECK_EQ(iof_queue_stats(q)->stale, 1);
	CHECK(iof_outstanding(q, 0xfffffff0u));
	/* Cookie 300 is device 1's now */
	CHECK_EQ(iof_forget_device(q, 2), 0);
	CHECK(iof_outstanding(q, 300));
	/* Detaching device 1 answered its groups in the kernel */
	CHECK_EQ(iof_forget_device(q, 1), 4);
	CHECK(!iof_outstanding(q, 300));
	CHECK_EQ(iof_queue_stats(q)->outstanding, 0);
	CHECK_EQ(iof_answer(q, 2, IOMMUFD_PAGE_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_answer(q, 0, IOMMUFD_PAGE_RESP_SUCCESS), -ENOENT);
	iof_parser_free(q);
}

/*
 * Many cookies in and out, against a plain array: the hash table keeps
 * exactly the outstanding ones, through growth and deletions.
 */
static void cookies_many(void)
{
	enum { N = 4096 };
	static uint8_t ref[N];	/* 0 none, else dev + 1 */
	struct iof_queue *q = iof_parser_new(0);
	uint64_t rnd = 12345;
	uint32_t i, c, base = 0xfffff000u, outstanding = 0;
	struct buf b;

	capture_answers();
	memset(ref, 0, sizeof(ref));
	for (i = 0; i != 40000; i++) {
		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		c = (rnd >> 33) % N;
		if (!ref[c]) {
			b.len = 0;
			/* Cookies near the top of the range, wrapping to 1 */
			put_pgfault(&b, pgfault(1 + (rnd >> 20) % 3, 1,
						base + c ? base + c : 1, true,
						0));
			CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 1);
			ref[c] = 1 + (1 + (rnd >> 20) % 3);
			outstanding++;
		} else if ((rnd >> 40) % 64) {
			CHECK_EQ(iof_answer(q, base + c ? base + c : 1,
					    IOMMUFD_PAGE_RESP_SUCCESS), 0);
			ref[c] = 0;
			outstanding--;
		} else {
			uint32_t dev = ref[c] - 1, n = 0, k;

			for (k = 0; k != N; k++) {
				if (ref[k] == dev + 1) {
					ref[k] = 0;
					n++;
				}
			}
			CHECK_EQ(iof_forget_device(q, dev), n);
			outstanding -= n;
		}
		if (cap.nr_got > 128)
			cap.nr_got = 0;
	}
	CHECK_EQ(iof_queue_stats(q)->outstanding, outstanding);
	for (c = 0; c != N; c++)
		CHECK_EQ(iof_outstanding(q, base + c ? base + c : 1), !!ref[c]);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	iof_parser_free(q);
}

/*
 * A guest's page group response names the group by (device, PASID, PRGI):
 * the library finds its cookie. PASIDs, their absence and devices tell
 * groups of the same PRGI apart; a cookie above 2^31 is a cookie.
 */
static void answer_by_key(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct buf b = {};

	capture_answers();
	put_pgfault(&b, pgfault_pasid(1, true, 7, 5, 0xfff00abcu));
	put_pgfault(&b, pgfault_pasid(1, true, 8, 5, 101));
	/* No PASID: whatever the pasid field holds does not count */
	put_pgfault(&b, pgfault_pasid(1, false, 7, 5, 102));
	put_pgfault(&b, pgfault_pasid(2, true, 7, 5, 103));
	put_pgfault(&b, pgfault_pasid(1, true, 7, 6, 104));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 5);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 5);
	CHECK_EQ(iof_queue_stats(q)->superseded, 0);

	CHECK_EQ(iof_answer_by(q, 1, true, 8, 5, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 1, false, 99, 5, IOF_RESP_INVALID), 0);
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 5, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 2, true, 7, 5, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 4);
	CHECK_EQ(cap.nr_got, 4);
	CHECK_EQ(cap.got[0].cookie, 101);
	CHECK_EQ(cap.got[1].cookie, 102);
	CHECK_EQ(cap.got[1].code, IOMMUFD_PAGE_RESP_INVALID);
	CHECK_EQ(cap.got[2].cookie, 0xfff00abcu);
	CHECK_EQ(cap.got[3].cookie, 103);
	CHECK(iof_outstanding(q, 104));
	CHECK_EQ(iof_queue_stats(q)->outstanding, 1);

	/* Answered once: the second answer matches nothing, writes nothing */
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 5, IOF_RESP_SUCCESS), -ENOENT);
	/* A PRGI never delivered, a PASID the group did not have */
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 9, IOF_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_answer_by(q, 1, false, 0, 6, IOF_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_queue_stats(q)->unmatched, 3);
	/* A bad code is refused before anything is looked up */
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 6, 3), -EINVAL);
	CHECK_EQ(iof_queue_stats(q)->unmatched, 3);
	/* Answered by cookie, it cannot be answered by key again */
	CHECK_EQ(iof_answer(q, 104, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 6, IOF_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(cap.nr_got, 5);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 0);
	iof_parser_free(q);
}

/*
 * A device reuses a PRGI only once its group was answered: a second group
 * with the key of an outstanding one means the kernel answered the older
 * (a detach the VMM did not pass on). The newer one takes the key; the
 * older stays answerable by cookie and goes with iof_forget_device().
 */
static void answer_by_duplicates(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct buf b = {};

	capture_answers();
	put_pgfault(&b, pgfault_pasid(1, true, 7, 5, 200));
	put_pgfault(&b, pgfault_pasid(1, true, 7, 5, 300));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 2);
	CHECK_EQ(iof_queue_stats(q)->superseded, 1);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 2);
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 5, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(cap.got[0].cookie, 300);
	/* The older one is not reachable by key */
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 5, IOF_RESP_SUCCESS), -ENOENT);
	CHECK(iof_outstanding(q, 200));
	/*
	 * Once the newer is answered, the key is free for the next group
	 * (the older one was counted already)
	 */
	b.len = 0;
	put_pgfault(&b, pgfault_pasid(1, true, 7, 5, 400));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 1);
	CHECK_EQ(iof_queue_stats(q)->superseded, 1);
	/* Answering the older by cookie leaves the newer on its key */
	CHECK_EQ(iof_answer(q, 200, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 5, IOF_RESP_INVALID), 0);
	CHECK_EQ(iof_flush(q), 2);
	CHECK_EQ(cap.got[1].cookie, 200);
	CHECK_EQ(cap.got[2].cookie, 400);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 0);

	/* After a detach, iof_forget_device() takes keys and cookies */
	b.len = 0;
	put_pgfault(&b, pgfault_pasid(1, true, 7, 5, 500));
	put_pgfault(&b, pgfault_pasid(2, true, 7, 5, 501));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 2);
	CHECK_EQ(iof_forget_device(q, 1), 1);
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 5, IOF_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_answer_by(q, 2, true, 7, 5, IOF_RESP_SUCCESS), 0);
	/* and the device's next group with that PRGI is no duplicate */
	b.len = 0;
	put_pgfault(&b, pgfault_pasid(1, true, 7, 5, 600));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 1);
	CHECK_EQ(iof_queue_stats(q)->superseded, 1);
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 5, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 2);
	CHECK_EQ(cap.got[4].cookie, 600);
	iof_parser_free(q);
}

/*
 * Many groups in and out by key, against a plain array: the key table
 * keeps exactly the outstanding groups, through growth and deletions.
 */
static void answer_by_many(void)
{
	enum { DEVS = 3, PASIDS = 4, PRGIS = 512 };
	static uint32_t ref[DEVS][PASIDS][PRGIS];	/* cookie, 0 none */
	struct iof_queue *q = iof_parser_new(0);
	uint32_t cookie = 0xfffff000u, d, p, g, outstanding = 0, i;
	uint64_t rnd = 777;
	struct buf b;

	capture_answers();
	memset(ref, 0, sizeof(ref));
	for (i = 0; i != 60000; i++) {
		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		d = (rnd >> 20) % DEVS;
		p = (rnd >> 24) % PASIDS;
		g = (rnd >> 33) % PRGIS;
		if (!ref[d][p][g]) {
			if (!++cookie)
				cookie = 1;
			b.len = 0;
			put_pgfault(&b, pgfault_pasid(d, p != 0, p, g, cookie));
			CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 1);
			ref[d][p][g] = cookie;
			outstanding++;
		} else {
			CHECK_EQ(iof_answer_by(q, d, p != 0, p, g,
					       IOF_RESP_SUCCESS), 0);
			CHECK_EQ(iof_flush(q), 1);
			CHECK_EQ(cap.got[cap.nr_got - 1].cookie,
				 ref[d][p][g]);
			ref[d][p][g] = 0;
			outstanding--;
		}
		if (cap.nr_got > 128)
			cap.nr_got = 0;
	}
	CHECK_EQ(iof_queue_stats(q)->outstanding, outstanding);
	CHECK_EQ(iof_queue_stats(q)->superseded, 0);
	CHECK_EQ(iof_queue_stats(q)->unmatched, 0);
	iof_parser_free(q);
}

/*
 * B2: a group the kernel answered behind the library's back (a detach
 * nobody passed on) stays in the table as superseded when its device
 * reuses the PRGI. 2^17 groups later the kernel hands its cookie out again,
 * to a live group: that one must be delivered and answered, not swallowed
 * as a duplicate of the stale entry.
 */
static void stale_cookie_reused(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = {};
	struct buf b = {};
	const uint32_t c1 = 0x8001, c2 = 0x10001;

	capture_answers();
	/* The older group, PRGI 5 of device 1, and its successor */
	put_pgfault(&b, pgfault_pasid(1, false, 0, 5, c1));
	put_pgfault(&b, pgfault_pasid(1, false, 0, 5, c2));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(iof_queue_stats(q)->superseded, 1);
	CHECK_EQ(iof_answer_by(q, 1, false, 0, 5, IOF_RESP_SUCCESS), 0);
	CHECK(iof_outstanding(q, c1));
	/* c1 comes back with another device's group */
	b.len = 0;
	put_pgfault(&b, pgfault_pasid(2, false, 0, 9, c1));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 1);
	CHECK_EQ(s.groups, 3);
	CHECK_EQ(s.last_group.cookie, c1);
	CHECK_EQ(s.last_group.dev_id, 2);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	CHECK_EQ(iof_queue_stats(q)->stale, 1);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 1);
	/* It is answerable, by key and by cookie, and answered once */
	CHECK_EQ(iof_answer_by(q, 2, false, 0, 9, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer(q, c1, IOF_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_flush(q), 2);
	CHECK_EQ(cap.got[1].cookie, c1);
	/* and the stale entry's key no longer finds anything */
	CHECK_EQ(iof_answer_by(q, 1, false, 0, 5, IOF_RESP_SUCCESS), -ENOENT);
	iof_parser_free(q);
}

/* The same on the fake kernel, whose cookies come back after 2^17 */
static void stale_cookie_reused_kernel(void)
{
	int fd = boot_fake(false);
	struct iof_queue *q = iof_queue_create(fd, NULL);
	struct fake_answers a;
	struct seen s = {};
	uint32_t id, c1;

	CHECK(q);
	id = iof_queue_id(q);
	fake_queue_fault(id, 1, 0, 5, 1, 0);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	c1 = s.last_group.cookie;
	/* Detached: the kernel answers it; nobody tells the library */
	fake_queue_detach(id, 1);
	fake_queue_fault(id, 1, 0, 5, 1, 0);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	CHECK_EQ(iof_queue_stats(q)->superseded, 1);
	CHECK_EQ(iof_answer(q, s.last_group.cookie, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 1);
	/* 2^17 groups on, the same slot and generation: c1 again */
	fake_queue_cookie_gen(id, c1 >> 15);
	fake_queue_fault(id, 2, 0, 9, 1, 0);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	CHECK_EQ(s.groups, 3);
	CHECK_EQ(s.last_group.cookie, c1);
	CHECK_EQ(iof_answer_by(q, 2, false, 0, 9, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 1);
	fake_answers(2, &a);
	CHECK_EQ(a.groups, 1);
	CHECK_EQ(a.success, 1);
	CHECK_EQ(iof_queue_stats(q)->refused, 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

UNIT_TESTS(T(cookies), T(cookies_many), T(answer_by_key),
	   T(answer_by_duplicates), T(answer_by_many), T(stale_cookie_reused),
	   T(stale_cookie_reused_kernel));
