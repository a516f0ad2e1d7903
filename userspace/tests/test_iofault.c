// SPDX-License-Identifier: MIT
/*
 * Unit tests of the iofault library: crafted buffers as read() would return
 * them from a fault queue (legacy and bounded) and a vEVENTQ, reads from and
 * answers written to fake fds that behave as the kernel's do, fake ioctls
 * that behave as 7.3 and as the patched kernel (v2 of the series) do
 * (probing and fallback), and waits on pipes, eventfds and epoll. No iommufd
 * needed. Each test runs in a child process of its own, so that a crash
 * fails that test only. Prints TAP.
 *
 *   test_iofault [NAME...]     only the tests named
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iofault.h"
#include "iofault_internal.h"

static int failures, tests;
static const char *current;

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			printf("# %s:%d: %s: check failed: %s\n", __FILE__, \
			       __LINE__, current, #cond);                  \
			failures++;                                        \
			return;                                            \
		}                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long _a = (a), _b = (b);                              \
		if (_a != _b) {                                            \
			printf("# %s:%d: %s: %s == %lld, expected %lld\n",  \
			       __FILE__, __LINE__, current, #a, _a, _b);   \
			failures++;                                        \
			return;                                            \
		}                                                          \
	} while (0)

#define B IOMMU_FAULT_QUEUE_BOUNDED
#define LOST IOMMU_VEVENTQ_FLAG_LOST_EVENTS

/* What the callbacks saw */
struct seen {
	int groups;
	struct iof_group last_group;
	struct iof_fault faults[16];
	int answer_in_callback;
	/* lost callbacks: first sequence number and count of each */
	int nr_lost;
	uint32_t lost_seq[8], lost_count[8];
	/* vEVENTs */
	int events;
	struct iof_vevent last_event;
	uint32_t event_seq[32];
};

static int on_group(struct iof_queue *q, const struct iof_group *g, void *arg)
{
	struct seen *s = arg;

	s->groups++;
	s->last_group = *g;
	memcpy(s->faults, g->faults,
	       (g->nr_faults < 16 ? g->nr_faults : 16) * sizeof(*g->faults));
	if (s->answer_in_callback)
		iof_answer(q, g->cookie, IOMMUFD_PAGE_RESP_SUCCESS);
	return 0;
}

static void note_lost(struct seen *s, uint32_t seq, uint32_t count)
{
	if (s->nr_lost < 8) {
		s->lost_seq[s->nr_lost] = seq;
		s->lost_count[s->nr_lost] = count;
	}
	s->nr_lost++;
}

static void on_lost(struct iof_queue *q, uint32_t seq, uint32_t count,
		    void *arg)
{
	note_lost(arg, seq, count);
}

static const struct iof_ops ops = {
	.page_request = on_group,
	.lost = on_lost,
};

static void on_event(struct iof_veventq *q, const struct iof_vevent *ev,
		     void *arg)
{
	struct seen *s = arg;

	if (s->events < 32)
		s->event_seq[s->events] = ev->seq;
	s->events++;
	s->last_event = *ev;
}

static void on_vlost(struct iof_veventq *q, uint32_t seq, uint32_t count,
		     void *arg)
{
	note_lost(arg, seq, count);
}

static const struct iof_vevent_ops vops = {
	.event = on_event,
	.lost = on_vlost,
};

/* Buffer builders */

struct buf {
	unsigned char data[8192];
	size_t len;
};

static void put(struct buf *b, const void *p, size_t len)
{
	memcpy(b->data + b->len, p, len);
	b->len += len;
}

static struct iommu_hwpt_pgfault pgfault(uint32_t dev, uint32_t grpid,
					 uint32_t cookie, bool last,
					 uint64_t addr)
{
	return (struct iommu_hwpt_pgfault){
		.flags = IOMMU_PGFAULT_FLAGS_PASID_VALID |
			 (last ? IOMMU_PGFAULT_FLAGS_LAST_PAGE : 0),
		.dev_id = dev,
		.pasid = 7,
		.grpid = grpid,
		.perm = IOMMU_PGFAULT_PERM_READ,
		.addr = addr,
		.cookie = cookie,
	};
}

static void put_pgfault(struct buf *b, struct iommu_hwpt_pgfault pf)
{
	put(b, &pf, sizeof(pf));
}

static void put_hdr(struct buf *b, uint32_t flags, uint32_t seq)
{
	struct iommufd_vevent_header h = { .flags = flags, .sequence = seq };

	put(b, &h, sizeof(h));
}

/*
 * LOST headers that take a new queue's sequence from 0 to just before
 * @next, in steps the checker reads as losses (below IOF_SEQ_MAX_GAP)
 */
static int put_walk_to(struct buf *b, uint32_t next)
{
	uint32_t at = 0, step = IOF_SEQ_MAX_GAP / 2;
	int n = 0;

	while (next - at > step) {
		at += step;
		put_hdr(b, LOST, at - 1);
		n++;
	}
	put_hdr(b, LOST, next - 1);
	return n + 1;
}

/* A bounded queue's message: header and fault */
static void put_bounded(struct buf *b, uint32_t seq,
			struct iommu_hwpt_pgfault pf)
{
	put_hdr(b, 0, seq);
	put_pgfault(b, pf);
}

/* A selftest vEVENT: header and virt_id */
static void put_selftest_event(struct buf *b, uint32_t seq, uint32_t virt_id)
{
	put_hdr(b, 0, seq);
	put(b, &virt_id, sizeof(virt_id));
}

/* A fake fault fd for iof_flush() */
static struct {
	struct iommu_hwpt_page_response got[256];
	int nr_got;
	uint32_t refuse;	/* cookie the kernel no longer knows */
	int max_per_write;	/* 0: no limit */
	int eintr;		/* fail this many writes with EINTR first */
	int writes;
} fake;

static ssize_t fake_write(int fd, const void *buf, size_t len)
{
	const struct iommu_hwpt_page_response *r = buf;
	size_t n = len / sizeof(*r), i;

	fake.writes++;
	if (fake.eintr) {
		fake.eintr--;
		errno = EINTR;
		return -1;
	}
	if (fake.max_per_write && n > (size_t)fake.max_per_write)
		n = fake.max_per_write;
	for (i = 0; i != n; i++) {
		/* The kernel takes SUCCESS and INVALID only */
		if (r[i].cookie == fake.refuse ||
		    r[i].code > IOMMUFD_PAGE_RESP_INVALID) {
			if (i == 0) {
				errno = EINVAL;
				return -1;
			}
			break;
		}
		fake.got[fake.nr_got++] = r[i];
	}
	return i * sizeof(*r);
}

/* ---- Sequence numbers: the checker both kinds of queue use ---- */

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

/* ---- Legacy fault queues ---- */

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

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
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
	CHECK_EQ(fake.nr_got, 1);
	CHECK_EQ(fake.got[0].cookie, 3);
	CHECK_EQ(fake.got[0].code, IOMMUFD_PAGE_RESP_INVALID);
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
	/* A cookie already outstanding, and cookie 0 (never handed out) */
	put_pgfault(&b, pgfault(1, 0x54, 300, true, 0));
	put_pgfault(&b, pgfault(1, 0x55, 0, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 6);
	CHECK_EQ(s.groups, 4);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 4);
	CHECK_EQ(iof_queue_stats(q)->malformed, 2);
	CHECK(iof_outstanding(q, 0xfffffff0u));
	/* The duplicate did not take the first one's device */
	CHECK_EQ(iof_forget_device(q, 2), 1);
	CHECK(!iof_outstanding(q, 300));
	/* Detaching device 1 answered its groups in the kernel */
	CHECK_EQ(iof_forget_device(q, 1), 3);
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

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
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
		if (fake.nr_got > 128)
			fake.nr_got = 0;
	}
	CHECK_EQ(iof_queue_stats(q)->outstanding, outstanding);
	for (c = 0; c != N; c++)
		CHECK_EQ(iof_outstanding(q, base + c ? base + c : 1), !!ref[c]);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	iof_parser_free(q);
}

static void answers_batched(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = { .answer_in_callback = 1 };
	struct buf b = {};
	uint32_t i;

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
	fake.refuse = 5;
	fake.max_per_write = 3;
	fake.eintr = 1;
	for (i = 1; i <= 10; i++)
		put_pgfault(&b, pgfault(1, i, i, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 10);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 0);
	/* Nothing written until the flush */
	CHECK_EQ(fake.writes, 0);
	CHECK_EQ(iof_flush(q), 10);
	/* Short writes, an EINTR and one refused answer are all coped with */
	CHECK_EQ(fake.nr_got, 9);
	CHECK_EQ(iof_queue_stats(q)->answered, 9);
	CHECK_EQ(iof_queue_stats(q)->answered_success, 9);
	CHECK_EQ(iof_queue_stats(q)->refused, 1);
	for (i = 0; i != 9; i++)
		CHECK(fake.got[i].cookie != 5);
	CHECK_EQ(fake.got[8].cookie, 10);
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

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
	b.len = 0;
	for (i = 1; i <= 70; i++)
		put_pgfault(&b, pgfault(1, i, i, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 70);
	/* 64 answers fill the buffer and go out with the 65th */
	CHECK_EQ(fake.nr_got, 64);
	CHECK_EQ(iof_flush(q), 6);
	CHECK_EQ(fake.nr_got, 70);
	/* INVALID answers are not counted as SUCCESS */
	b.len = 0;
	put_pgfault(&b, pgfault(1, 80, 80, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 1);
	CHECK_EQ(iof_answer(q, 80, IOMMUFD_PAGE_RESP_INVALID), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(iof_queue_stats(q)->answered, 71);
	CHECK_EQ(iof_queue_stats(q)->answered_success, 70);
	CHECK_EQ(fake.got[70].code, IOMMUFD_PAGE_RESP_INVALID);
	iof_parser_free(q);
}

/* ---- Bounded fault queues ---- */

static void bounded_groups_and_loss(void)
{
	struct iof_queue *q = iof_parser_new(B);
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
	struct iof_queue *q = iof_parser_new(B);
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
	q2 = iof_parser_new(B);
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
	struct iof_queue *q = iof_parser_new(B);
	struct seen s = {};
	struct buf b = {};

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
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
	CHECK_EQ(fake.got[0].cookie, 31);
	iof_parser_free(q);
}

/* ---- vEVENTQs ---- */

static const struct iof_veventq_config selftest_cfg = {
	.type = IOF_VEVENTQ_TYPE_SELFTEST,
};

static void vevent_selftest(void)
{
	struct iof_veventq *q = iof_vparser_new(&selftest_cfg);
	struct seen s = {};
	struct buf b = {};

	CHECK(q);
	put_selftest_event(&b, 0, 0x42);
	put_selftest_event(&b, 1, 0x43);
	/* 2-4 lost, then a LOST tail at 7 */
	put_selftest_event(&b, 5, 0x44);
	put_hdr(&b, LOST, 7);
	CHECK_EQ(iof_vparse(q, b.data, b.len, &vops, &s), 4);
	CHECK_EQ(s.events, 3);
	CHECK(s.last_event.decoded);
	CHECK_EQ(s.last_event.u.selftest.virt_id, 0x44);
	CHECK_EQ(s.last_event.seq, 5);
	CHECK_EQ(s.last_event.len, 4);
	CHECK_EQ(s.last_event.type, IOF_VEVENTQ_TYPE_SELFTEST);
	CHECK_EQ(s.event_seq[1], 1);
	CHECK_EQ(s.nr_lost, 2);
	CHECK_EQ(s.lost_seq[0], 2);
	CHECK_EQ(s.lost_count[0], 3);
	CHECK_EQ(s.lost_seq[1], 6);
	CHECK_EQ(s.lost_count[1], 2);
	CHECK_EQ(iof_veventq_stats(q)->events, 3);
	CHECK_EQ(iof_veventq_stats(q)->seq.lost, 5);
	CHECK_EQ(iof_veventq_stats(q)->seq.next, 8);
	CHECK_EQ(iof_veventq_stats(q)->malformed, 0);
	iof_vparser_free(q);
}

static void vevent_wrap(void)
{
	struct iof_veventq *q = iof_vparser_new(&selftest_cfg);
	struct seen s = {};
	struct buf b = {};

	int n = put_walk_to(&b, INT_MAX - 1);

	put_selftest_event(&b, INT_MAX - 1, 1);
	put_selftest_event(&b, INT_MAX, 2);
	put_selftest_event(&b, 0, 3);
	put_selftest_event(&b, 1, 4);
	CHECK_EQ(iof_vparse(q, b.data, b.len, &vops, &s), n + 4);
	CHECK_EQ(s.events, 4);
	CHECK_EQ(s.nr_lost, n);
	CHECK_EQ(iof_veventq_stats(q)->seq.lost, INT_MAX - 1);
	CHECK_EQ(s.event_seq[2], 0);
	CHECK_EQ(iof_veventq_stats(q)->seq.errors, 0);
	CHECK_EQ(iof_veventq_stats(q)->seq.next, 2);
	iof_vparser_free(q);
}

/* Set bits [lo, lo + width) of a little-endian record to @v, bit by bit */
static void set_bits(unsigned char *rec, unsigned int lo, unsigned int width,
		     uint64_t v)
{
	unsigned int i;

	for (i = 0; i != width; i++) {
		unsigned int bit = lo + i;

		if ((v >> i) & 1)
			rec[bit / 8] |= 1 << (bit % 8);
		else
			rec[bit / 8] &= ~(1 << (bit % 8));
	}
}

static void vevent_vtd_record(void)
{
	const struct iof_veventq_config cfg = {
		.type = IOMMU_VEVENTQ_TYPE_INTEL_VTD,
	};
	struct iof_veventq *q = iof_vparser_new(&cfg);
	unsigned char rec[16] = {};
	struct iof_vtd_fault f;
	struct seen s = {};
	struct buf b = {};

	CHECK(q);
	CHECK_EQ(sizeof(struct iommu_vevent_intel_vtd), 16);
	/* The fields where the VT-d spec puts them, nothing in common */
	set_bits(rec, 12, 52, 0xabcdef12345ull);	/* FI: address 63:12 */
	set_bits(rec, 0, 12, 0x5a5);			/* reserved, ignored */
	set_bits(rec, 64, 16, 0x0a10);			/* SID */
	set_bits(rec, 95, 1, 1);			/* PP */
	set_bits(rec, 96, 8, 0x71);			/* FR */
	set_bits(rec, 104, 20, 0xfedcb);		/* PV */
	set_bits(rec, 126, 1, 1);			/* T: read */
	set_bits(rec, 127, 1, 1);			/* F */
	iof_vtd_decode(rec, &f);
	CHECK_EQ(f.addr, 0xabcdef12345ull << 12);
	CHECK_EQ(f.source_id, 0x0a10);
	CHECK(f.pasid_present);
	CHECK_EQ(f.reason, 0x71);
	CHECK_EQ(f.pasid, 0xfedcb);
	CHECK(f.read);
	CHECK(f.valid);

	/* A write without PASID; the neighbouring bits stay out */
	memset(rec, 0xff, sizeof(rec));
	set_bits(rec, 95, 1, 0);
	set_bits(rec, 126, 1, 0);
	set_bits(rec, 64, 16, 0x0001);
	set_bits(rec, 96, 8, 0x80);
	set_bits(rec, 104, 20, 0);
	iof_vtd_decode(rec, &f);
	CHECK_EQ(f.addr, 0xfffffffffffff000ull);
	CHECK_EQ(f.source_id, 1);
	CHECK(!f.pasid_present);
	CHECK(!f.read);
	CHECK_EQ(f.reason, 0x80);
	CHECK_EQ(f.pasid, 0);

	/* Through a vEVENTQ parser */
	put_hdr(&b, 0, 0);
	put(&b, rec, 16);
	put_hdr(&b, 0, 1);
	put(&b, rec, 16);
	CHECK_EQ(iof_vparse(q, b.data, b.len, &vops, &s), 2);
	CHECK_EQ(s.events, 2);
	CHECK(s.last_event.decoded);
	CHECK_EQ(s.last_event.u.vtd.reason, 0x80);
	CHECK_EQ(s.last_event.u.vtd.source_id, 1);
	CHECK_EQ(s.last_event.len, 16);
	CHECK_EQ(iof_veventq_stats(q)->malformed, 0);
	iof_vparser_free(q);
}

static void vevent_raw_types(void)
{
	const struct iof_veventq_config raw = { .type = 0x1234, .data_len = 24 };
	const struct iof_veventq_config unknown = { .type = 0x1234 };
	const struct iof_veventq_config smmu = {
		.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
	};
	struct iof_veventq *q;
	unsigned char data[32];
	struct seen s = {};
	struct buf b = {};
	int i;

	/* A type of unknown size cannot be split into events */
	errno = 0;
	CHECK(!iof_vparser_new(&unknown));
	CHECK_EQ(errno, EINVAL);

	q = iof_vparser_new(&raw);
	CHECK(q);
	for (i = 0; i != 24; i++)
		data[i] = i;
	put_hdr(&b, 0, 0);
	put(&b, data, 24);
	put_hdr(&b, 0, 1);
	put(&b, data, 24);
	CHECK_EQ(iof_vparse(q, b.data, b.len, &vops, &s), 2);
	CHECK_EQ(s.events, 2);
	CHECK(!s.last_event.decoded);
	CHECK_EQ(s.last_event.len, 24);
	CHECK(!memcmp(s.last_event.data, data, 24));
	iof_vparser_free(q);

	/* SMMUv3 events are 32 bytes, passed raw */
	q = iof_vparser_new(&smmu);
	CHECK(q);
	b.len = 0;
	put_hdr(&b, 0, 0);
	put(&b, data, 32);
	memset(&s, 0, sizeof(s));
	CHECK_EQ(iof_vparse(q, b.data, b.len, &vops, &s), 1);
	CHECK_EQ(s.last_event.len, 32);
	CHECK_EQ(iof_veventq_stats(q)->malformed, 0);
	iof_vparser_free(q);
}

static void vevent_malformed(void)
{
	struct iof_veventq *q = iof_vparser_new(&selftest_cfg);
	struct seen s = {};
	struct buf b = {};

	/* An unknown header flag: skipped, its sequence number still used */
	put_hdr(&b, 0x4, 0);
	put(&b, "abcd", 4);
	put_selftest_event(&b, 1, 7);
	/* A LOST header with another flag: counted, and malformed */
	put_hdr(&b, LOST | 0x8, 3);
	/* Backwards */
	put_selftest_event(&b, 2, 8);
	/* A truncated event */
	put_hdr(&b, 0, 3);
	put(&b, "ab", 2);
	CHECK_EQ(iof_vparse(q, b.data, b.len, &vops, &s), 4);
	CHECK_EQ(s.events, 2);
	CHECK_EQ(iof_veventq_stats(q)->malformed, 3);
	CHECK_EQ(iof_veventq_stats(q)->seq.errors, 1);
	CHECK_EQ(iof_veventq_stats(q)->seq.lost, 2);
	/* A buffer shorter than a header */
	CHECK_EQ(iof_vparse(q, "abc", 3, &vops, &s), 0);
	CHECK_EQ(iof_veventq_stats(q)->malformed, 4);
	iof_vparser_free(q);
}

/*
 * The same sequence of headers through a bounded fault queue and a vEVENTQ
 * gives the same account: one checker serves both.
 */
static void one_checker_both_channels(void)
{
	static const struct {
		uint32_t flags, seq;
	} hdrs[] = {
		{ LOST, 3 }, { 0, 4 }, { 0, 9 }, { 0, 10 }, { LOST, 12 },
		{ 0, 11 }, { 0, 13 }, { 0, 0x80000000u }, { LOST, 20 },
	};
	struct iof_queue *fq = iof_parser_new(B);
	struct iof_veventq *vq = iof_vparser_new(&selftest_cfg);
	struct seen fs = {}, vs = {};
	struct buf fb = {}, vb = {};
	const struct iof_seq *a, *b;
	unsigned int i;

	for (i = 0; i != sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		if (hdrs[i].flags) {
			put_hdr(&fb, hdrs[i].flags, hdrs[i].seq);
			put_hdr(&vb, hdrs[i].flags, hdrs[i].seq);
		} else {
			put_bounded(&fb, hdrs[i].seq,
				    pgfault(1, i, 100 + i, true, 0));
			put_selftest_event(&vb, hdrs[i].seq, i);
		}
	}
	iof_parse(fq, fb.data, fb.len, &ops, &fs);
	iof_vparse(vq, vb.data, vb.len, &vops, &vs);
	a = &iof_queue_stats(fq)->seq;
	b = &iof_veventq_stats(vq)->seq;
	CHECK_EQ(a->next, b->next);
	CHECK_EQ(a->messages, b->messages);
	CHECK_EQ(a->lost, b->lost);
	CHECK_EQ(a->gaps, b->gaps);
	CHECK_EQ(a->lost_headers, b->lost_headers);
	CHECK_EQ(a->errors, b->errors);
	CHECK_EQ(fs.nr_lost, vs.nr_lost);
	/*
	 * and the account is the right one: 0-3, 5-8, 11-12, 12 (after the
	 * backwards 11, the checker expects 12), 14-20
	 */
	CHECK_EQ(a->lost, 4 + 4 + 2 + 1 + 7);
	CHECK_EQ(a->errors, 2);
	CHECK_EQ(a->next, 21);
	iof_parser_free(fq);
	iof_vparser_free(vq);
}

/*
 * A fake fault fd for iof_queue_dispatch(), with the read() of Linux 7.3:
 * whole messages only (ESPIPE, legacy), whole groups only, EINVAL when the
 * first group does not fit, 0 bytes when empty. Bounded: with headers.
 */
static struct {
	struct iommu_hwpt_pgfault msgs[64];
	int nr, pos;
	bool bounded;
	int eintr;		/* fail this many reads with EINTR first */
	int busy;		/* then this many with EBUSY (4095 awaiting) */
	int err;		/* then fail every read with this errno */
	size_t lens[64];	/* what each read() asked for */
	int reads;
} fq;

static void fq_reset(void)
{
	memset(&fq, 0, sizeof(fq));
}

static void fq_group(uint32_t dev, uint32_t cookie, int nr)
{
	int i;

	for (i = 0; i != nr; i++)
		fq.msgs[fq.nr++] = pgfault(dev, cookie, cookie, i == nr - 1,
					   0x1000 * i);
}

static ssize_t fake_read(int fd, void *buf, size_t len)
{
	const size_t hsz = fq.bounded ? sizeof(struct iommufd_vevent_header) :
					0;
	const size_t unit = hsz + sizeof(struct iommu_hwpt_pgfault);
	size_t done = 0;
	int end, i;

	if (fq.reads < 64)
		fq.lens[fq.reads] = len;
	fq.reads++;
	if (fq.eintr) {
		fq.eintr--;
		errno = EINTR;
		return -1;
	}
	if (fq.busy) {
		fq.busy--;
		errno = EBUSY;
		return -1;
	}
	if (fq.err) {
		errno = fq.err;
		return -1;
	}
	/* v2: a bounded queue's read shorter than a header, whatever waits */
	if (fq.bounded && len < sizeof(struct iommufd_vevent_header)) {
		errno = EINVAL;
		return -1;
	}
	if (!fq.bounded && len % unit) {
		errno = ESPIPE;
		return -1;
	}
	while (fq.pos < fq.nr) {
		for (end = fq.pos;
		     !(fq.msgs[end].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE);
		     end++)
			;
		end++;
		if ((end - fq.pos) * unit > len - done) {
			if (!done) {
				errno = EINVAL;
				return -1;
			}
			break;
		}
		for (i = fq.pos; i != end; i++) {
			struct iommufd_vevent_header h = { .sequence = i };

			memcpy((char *)buf + done, &h, hsz);
			memcpy((char *)buf + done + hsz, &fq.msgs[i],
			       sizeof(fq.msgs[i]));
			done += unit;
		}
		fq.pos = end;
	}
	return done;
}

static void dispatch_empty(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = {};

	fq_reset();
	iof_set_io(q, fake_read, fake_write);
	/* An empty queue reads 0 bytes: no wait, no error */
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(fq.reads, 1);
	CHECK_EQ(iof_queue_stats(q)->reads, 0);
	CHECK_EQ(s.groups, 0);
	iof_parser_free(q);
}

static void dispatch_whole_groups(void)
{
	/* Rounded down to 3 messages: the kernel reads no partial ones */
	const struct iof_config cfg = {
		.read_size = 3 * sizeof(struct iommu_hwpt_pgfault) + 20,
	};
	struct iof_queue *q = iof_queue_adopt(-1, 4, -1, -1, &cfg);
	struct seen s = {};
	int i;

	CHECK(q);
	fq_reset();
	iof_set_io(q, fake_read, fake_write);
	fq_group(1, 1, 2);
	fq_group(2, 2, 3);
	fq_group(1, 3, 2);
	/* One EINTR is retried */
	fq.eintr = 1;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 7);
	/* EINTR, 2 + (3 does not fit), 3, 2, empty */
	CHECK_EQ(fq.reads, 5);
	for (i = 0; i != fq.reads; i++)
		CHECK_EQ(fq.lens[i], 3 * sizeof(struct iommu_hwpt_pgfault));
	CHECK_EQ(s.groups, 3);
	CHECK_EQ(s.last_group.cookie, 3);
	CHECK_EQ(s.last_group.nr_faults, 2);
	CHECK_EQ(iof_queue_stats(q)->reads, 3);
	CHECK_EQ(iof_queue_stats(q)->messages, 7);
	CHECK_EQ(iof_queue_stats(q)->groups, 3);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 3);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	CHECK(iof_outstanding(q, 1) && iof_outstanding(q, 2) &&
	      iof_outstanding(q, 3));
	/* Nothing left: no iommufd, no fd, nothing to destroy */
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void dispatch_big_group(void)
{
	/* Room for 2 messages; a group of 5 needs the buffer grown twice */
	const struct iof_config cfg = {
		.read_size = 2 * sizeof(struct iommu_hwpt_pgfault),
	};
	struct iof_queue *q = iof_queue_adopt(-1, 4, -1, -1, &cfg);
	struct seen s = {};

	CHECK(q);
	fq_reset();
	iof_set_io(q, fake_read, fake_write);
	fq_group(1, 1, 5);
	fq_group(1, 2, 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 6);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(s.last_group.cookie, 2);
	CHECK_EQ(iof_queue_stats(q)->reads, 1);
	CHECK_EQ(fq.lens[0], 2 * sizeof(struct iommu_hwpt_pgfault));
	CHECK_EQ(fq.lens[1], 4 * sizeof(struct iommu_hwpt_pgfault));
	CHECK_EQ(fq.lens[2], 8 * sizeof(struct iommu_hwpt_pgfault));
	/* The buffer stays grown */
	CHECK_EQ(fq.lens[3], 8 * sizeof(struct iommu_hwpt_pgfault));
	CHECK_EQ(fq.reads, 4);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 2);

	/* A kernel that refuses every size: the growth has a limit */
	fq_reset();
	fq.err = EINVAL;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), -EINVAL);
	CHECK(fq.reads > 1 && fq.reads < 64);
	CHECK_EQ(fq.lens[fq.reads - 1],
		 32768 * sizeof(struct iommu_hwpt_pgfault));
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void dispatch_bounded(void)
{
	const size_t msg = sizeof(struct iommufd_vevent_header) +
			   sizeof(struct iommu_hwpt_pgfault);
	/* Room for 1.5 messages: bounded reads need no multiple */
	const struct iof_config cfg = {
		.flags = B,
		.depth = 16,
		.read_size = msg + msg / 2,
	};
	struct iof_queue *q = iof_queue_adopt(-1, 4, -1, -1, &cfg);
	struct seen s = {};

	CHECK(q);
	CHECK_EQ(iof_queue_flags(q), B);
	CHECK_EQ(iof_queue_depth(q), 16);
	fq_reset();
	fq.bounded = true;
	iof_set_io(q, fake_read, fake_write);
	fq_group(1, 1, 1);
	fq_group(1, 2, 3);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(s.last_group.seq, 1);
	CHECK_EQ(s.last_group.nr_faults, 3);
	CHECK_EQ(fq.lens[0], msg + msg / 2);
	/* Grown by doubling, not rounded to messages */
	CHECK_EQ(fq.lens[2], 2 * (msg + msg / 2));
	CHECK_EQ(iof_queue_stats(q)->seq.messages, 4);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, 0);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void dispatch_error(void)
{
	struct iof_queue *q = iof_parser_new(0);
	struct seen s = {};

	fq_reset();
	iof_set_io(q, fake_read, fake_write);
	fq.err = EIO;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), -EIO);
	CHECK_EQ(fq.reads, 1);
	iof_parser_free(q);
}

/*
 * The eventfd is a wake-up hint: dispatch takes its count, then reads until
 * read() returns 0, however small the count was.
 */
static void eventfd_hint(void)
{
	const struct iof_config cfg = { .flags = IOMMU_FAULT_QUEUE_EVENTFD };
	struct iof_queue *q;
	uint64_t v = 1;
	struct seen s = {};
	int efd;

	efd = eventfd(0, EFD_CLOEXEC);	/* blocking: the library fixes it */
	CHECK(efd >= 0);
	q = iof_queue_adopt(-1, 4, -1, efd, &cfg);
	CHECK(q);
	CHECK_EQ(iof_queue_wait_fd(q), efd);
	CHECK(fcntl(efd, F_GETFL) & O_NONBLOCK);
	fq_reset();
	iof_set_io(q, fake_read, fake_write);
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	/* 3 groups, but a count of 1 */
	fq_group(1, 1, 1);
	fq_group(1, 2, 2);
	fq_group(1, 3, 1);
	CHECK_EQ(write(efd, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 4);
	CHECK_EQ(s.groups, 3);
	CHECK_EQ(iof_queue_stats(q)->wakeups, 1);
	/* The count was taken: nothing to wait for */
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	/* A count larger than what is left (withdrawn messages) is fine */
	v = 5;
	CHECK_EQ(write(efd, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(iof_queue_stats(q)->wakeups, 2);
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	/* An empty eventfd does not block the dispatch */
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(iof_queue_stats(q)->wakeups, 2);
	/* destroy closes the eventfd too */
	CHECK_EQ(iof_queue_destroy(q), 0);
	CHECK_EQ(fcntl(efd, F_GETFD), -1);
}

/* A queue filled faster than it is read: every read() returns a group */
static int flood_reads;

static ssize_t flood_read(int fd, void *buf, size_t len)
{
	struct iommu_hwpt_pgfault pf = pgfault(1, 1, 1000 + flood_reads, true,
					       0);

	flood_reads++;
	memcpy(buf, &pf, sizeof(pf));
	return sizeof(pf);
}

/*
 * A flood does not keep the caller in dispatch: it returns after max_reads
 * reads, and the eventfd it took the count of is signalled again so that
 * the next wait returns at once.
 */
static void dispatch_flood(void)
{
	const struct iof_config cfg = {
		.flags = IOMMU_FAULT_QUEUE_EVENTFD,
		.max_reads = 5,
	};
	struct iof_queue *q, *q2;
	struct seen s = {};
	uint64_t v = 1;
	int efd;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(efd >= 0);
	q = iof_queue_adopt(-1, 4, -1, efd, &cfg);
	CHECK(q);
	iof_set_io(q, flood_read, fake_write);
	flood_reads = 0;
	CHECK_EQ(write(efd, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 5);
	CHECK_EQ(flood_reads, 5);
	CHECK_EQ(s.groups, 5);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 5);
	CHECK_EQ(iof_queue_stats(q)->wakeups, 2);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* The default is 16 reads */
	q2 = iof_parser_new(0);
	CHECK(q2);
	iof_set_io(q2, flood_read, fake_write);
	flood_reads = 0;
	CHECK_EQ(iof_queue_dispatch(q2, &ops, &s), 16);
	CHECK_EQ(flood_reads, 16);
	iof_parser_free(q2);
}

/* A fake vEVENTQ fd: events of 4 bytes, whole events, 0 when empty */
static struct {
	struct buf b;
	size_t pos;
	int reads;
} fv;

static ssize_t fake_vread(int fd, void *buf, size_t len)
{
	const size_t ev = sizeof(struct iommufd_vevent_header) + 4;
	size_t done = 0;

	fv.reads++;
	if (len < sizeof(struct iommufd_vevent_header)) {
		errno = EINVAL;
		return -1;
	}
	while (fv.pos < fv.b.len && len - done >= ev) {
		memcpy((char *)buf + done, fv.b.data + fv.pos, ev);
		done += ev;
		fv.pos += ev;
	}
	return done;
}

static void veventq_dispatch_eventfd(void)
{
	const struct iof_veventq_config cfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.read_size = 3 * 12,
	};
	struct iof_veventq *q;
	struct seen s = {};
	uint64_t v = 2;
	int efd, i;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(efd >= 0);
	q = iof_veventq_adopt(-1, 9, -1, efd, &cfg);
	CHECK(q);
	CHECK_EQ(iof_veventq_id(q), 9);
	CHECK_EQ(iof_veventq_flags(q), IOMMU_VEVENTQ_ALLOC_EVENTFD);
	CHECK_EQ(iof_veventq_wait_fd(q), efd);
	iof_vset_io(q, fake_vread);
	memset(&fv, 0, sizeof(fv));
	for (i = 0; i != 7; i++)
		put_selftest_event(&fv.b, i, 0x42);
	CHECK_EQ(write(efd, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(iof_veventq_wait(q, 0), 1);
	/* 3 reads of 3, 3, 1, and the one that returns 0 */
	CHECK_EQ(iof_veventq_dispatch(q, &vops, &s), 7);
	CHECK_EQ(fv.reads, 4);
	CHECK_EQ(s.events, 7);
	CHECK_EQ(iof_veventq_stats(q)->reads, 3);
	CHECK_EQ(iof_veventq_stats(q)->wakeups, 1);
	CHECK_EQ(iof_veventq_stats(q)->seq.next, 7);
	CHECK_EQ(iof_veventq_wait(q, 0), 0);
	CHECK_EQ(iof_veventq_destroy(q), 0);
	CHECK_EQ(fcntl(efd, F_GETFD), -1);
}

/* ---- Probing, creation and fallback, against fake kernels ---- */

/*
 * Two kernels, as far as these ioctls go: Linux 7.3 as Debian ships it,
 * and 7.3 with v2 of the series (a field without its flag is EOPNOTSUPP).
 * Variants: the series without CONFIG_EVENTFD, a driver that does not know
 * a stage-1 data type, every ioctl failing. Objects get IDs; fds are real
 * (/dev/null).
 */
#define FK_BAD_DATA 0xbad	/* a data type no driver knows */

static struct {
	bool patched;
	bool no_eventfd;	/* CONFIG_EVENTFD=n */
	int fail_errno;		/* every ioctl fails so (not an iommufd) */
	uint32_t next_id;
	int calls, destroys;
	int hwpt_errno;		/* fail a real HWPT allocation so */
	/* What the last ioctl of each kind was given */
	struct iommu_fault_alloc fault;
	struct iommu_hwpt_alloc hwpt;
	struct iommu_veventq_alloc veventq;
	int fault_calls, hwpt_calls, veventq_calls;
	int fault_allocs, hwpt_allocs, veventq_allocs;
	int iopf_tries;		/* HWPT allocations with IOPF_CAPABLE */
	bool fault_eventfd_real; /* the last queue's eventfd was one */
	int last_fault_fd;	/* the last queue's fd */
	int open_fds;
} fk;

/* copy_struct_from_user(): bytes beyond what the kernel knows must be 0 */
static bool tail_zero(const void *arg, size_t known, size_t size)
{
	const unsigned char *p = arg;

	for (; known < size; known++)
		if (p[known])
			return false;
	return true;
}

static int fk_fail(int err)
{
	errno = err;
	return -1;
}

static int fk_newfd(void)
{
	fk.open_fds++;
	return open("/dev/null", O_RDWR | O_CLOEXEC);
}

static bool fd_ok(int fd)
{
	return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

/* What eventfd_ctx_fdget() takes */
static bool is_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "anon_inode:[eventfd]");
}

/* iommufd_fault_check() of v2, and the eventfd */
static int fk_fault_check(uint32_t flags, int32_t efd, uint32_t depth)
{
	const uint32_t known = IOMMU_FAULT_QUEUE_EVENTFD | B;

	if (flags & ~known)
		return EOPNOTSUPP;
	if (fk.no_eventfd && (flags & IOMMU_FAULT_QUEUE_EVENTFD))
		return EOPNOTSUPP;
	if (!(flags & IOMMU_FAULT_QUEUE_EVENTFD) && efd)
		return EOPNOTSUPP;
	if (!(flags & B) && depth)
		return EOPNOTSUPP;
	if ((flags & B) && (!depth || depth > (1U << 19)))
		return EINVAL;
	if ((flags & IOMMU_FAULT_QUEUE_EVENTFD) && !fd_ok(efd))
		return EBADF;
	if ((flags & IOMMU_FAULT_QUEUE_EVENTFD) && !is_eventfd(efd))
		return EINVAL;
	return 0;
}

static int fake_ioctl(int fd, unsigned long request, void *arg)
{
	int err;

	fk.calls++;
	if (fk.fail_errno)
		return fk_fail(fk.fail_errno);
	if (request == IOMMU_DESTROY) {
		fk.destroys++;
		return 0;
	}
	if (request == IOMMU_FAULT_QUEUE_ALLOC) {
		struct iommu_fault_alloc *c = arg;

		fk.fault_calls++;
		memcpy(&fk.fault, c, sizeof(*c));
		if (c->size < 16)
			return fk_fail(EINVAL);
		if (!fk.patched) {
			if (!tail_zero(c, 16, c->size))
				return fk_fail(E2BIG);
			if (c->flags)
				return fk_fail(EOPNOTSUPP);
		} else {
			err = fk_fault_check(c->flags,
					     c->size > 16 ? c->eventfd : 0,
					     c->size > 16 ? c->depth : 0);
			if (err)
				return fk_fail(err);
			if (c->flags && c->size < sizeof(*c))
				return fk_fail(EINVAL);
		}
		fk.fault_eventfd_real = (c->flags & IOMMU_FAULT_QUEUE_EVENTFD) &&
					is_eventfd(c->eventfd);
		fk.fault_allocs++;
		c->out_fault_id = ++fk.next_id;
		c->out_fault_fd = fk_newfd();
		fk.last_fault_fd = c->out_fault_fd;
		memcpy(&fk.fault, c, sizeof(*c));
		return 0;
	}
	if (request == IOMMU_HWPT_ALLOC) {
		struct iommu_hwpt_alloc *c = arg;
		const uint32_t iopf = IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE;

		fk.hwpt_calls++;
		if (c->flags & iopf)
			fk.iopf_tries++;
		memcpy(&fk.hwpt, c, sizeof(*c));
		if (!fk.patched) {
			if (!tail_zero(c, 48, c->size))
				return fk_fail(E2BIG);
			if (!c->dev_id)
				return fk_fail(ENOENT);
			if (c->flags & iopf)
				return fk_fail(EOPNOTSUPP);
		} else if (c->flags & iopf) {
			err = fk_fault_check(c->fault_flags, c->fault_eventfd,
					     c->fault_depth);
			if (err)
				return fk_fail(err);
			if (c->flags & IOMMU_HWPT_FAULT_ID_VALID)
				return fk_fail(EINVAL);
			if (c->size < sizeof(*c))
				return fk_fail(EINVAL);
		} else if (c->size > 48 && (c->fault_flags || c->fault_eventfd ||
					     c->fault_depth)) {
			return fk_fail(EOPNOTSUPP);
		}
		if (!c->dev_id)
			return fk_fail(ENOENT);
		if (c->data_type == FK_BAD_DATA)
			return fk_fail(EOPNOTSUPP);
		if (fk.hwpt_errno)
			return fk_fail(fk.hwpt_errno);
		fk.hwpt_allocs++;
		c->out_hwpt_id = ++fk.next_id;
		if (c->flags & iopf) {
			c->out_fault_id = ++fk.next_id;
			c->out_fault_fd = fk_newfd();
		}
		memcpy(&fk.hwpt, c, sizeof(*c));
		return 0;
	}
	if (request == IOMMU_VEVENTQ_ALLOC) {
		struct iommu_veventq_alloc *c = arg;

		fk.veventq_calls++;
		memcpy(&fk.veventq, c, sizeof(*c));
		if (!fk.patched && (c->flags || c->eventfd))
			return fk_fail(EOPNOTSUPP);
		if (c->flags & ~IOMMU_VEVENTQ_ALLOC_EVENTFD)
			return fk_fail(EOPNOTSUPP);
		if (!(c->flags & IOMMU_VEVENTQ_ALLOC_EVENTFD) && c->eventfd)
			return fk_fail(EOPNOTSUPP);
		if (fk.no_eventfd && c->flags)
			return fk_fail(EOPNOTSUPP);
		if (c->type == 0 || c->type == FK_BAD_DATA)
			return fk_fail(EOPNOTSUPP);
		if (!c->veventq_depth)
			return fk_fail(EINVAL);
		if ((c->flags & IOMMU_VEVENTQ_ALLOC_EVENTFD) &&
		    !fd_ok(c->eventfd))
			return fk_fail(EBADF);
		if (!c->viommu_id)
			return fk_fail(ENOENT);
		fk.veventq_allocs++;
		c->out_veventq_id = ++fk.next_id;
		c->out_veventq_fd = fk_newfd();
		memcpy(&fk.veventq, c, sizeof(*c));
		return 0;
	}
	return fk_fail(ENOTTY);
}

static void fk_kernel(bool patched)
{
	memset(&fk, 0, sizeof(fk));
	fk.patched = patched;
	fk.next_id = 100;
	iof_set_ioctl(fake_ioctl);
	iof_probe_reset();
}

static void fk_done(void)
{
	iof_set_ioctl(NULL);
	iof_probe_reset();
}

static void probe_and_fallback_on_73(void)
{
	const struct iof_config want = {
		.flags = IOMMU_FAULT_QUEUE_EVENTFD | B,
		.depth = 32,
	};
	struct iof_config strict = want;
	const struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.flags = IOMMU_VEVENTQ_ALLOC_EVENTFD,
	};
	struct iof_caps caps;
	struct iof_veventq *vq;
	struct iof_queue *q;
	uint32_t hwpt_id = 0;
	int calls;

	fk_kernel(false);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK(!caps.fault_eventfd && !caps.fault_bounded);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_UNKNOWN);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_UNKNOWN);
	/* Both flags, then each: refused (E2BIG, 16-byte struct), nothing made */
	CHECK_EQ(fk.fault_calls, 3);
	CHECK_EQ(fk.fault_allocs, 0);
	CHECK_EQ(fk.hwpt_calls + fk.veventq_calls, 0);
	/* Probed once: the next call asks the kernel nothing */
	calls = fk.calls;
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(fk.calls, calls);

	/* What 7.3 has: a legacy queue, 16 bytes, waited on with poll() */
	q = iof_queue_create(3, &want);
	CHECK(q);
	CHECK_EQ(fk.fault.size, 16);
	CHECK_EQ(fk.fault.flags, 0);
	CHECK_EQ(iof_queue_flags(q), 0);
	CHECK_EQ(iof_queue_depth(q), 0);
	CHECK_EQ(iof_queue_wait_fd(q), iof_queue_fd(q));
	CHECK_EQ(iof_queue_destroy(q), 0);
	/* unless the caller insists */
	strict.strict = true;
	errno = 0;
	CHECK(!iof_queue_create(3, &strict));
	CHECK_EQ(errno, EOPNOTSUPP);

	/* One step refused: two steps, and the flag is known missing */
	q = iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &want,
				   &hwpt_id);
	CHECK(q);
	CHECK(!iof_queue_one_step(q));
	CHECK_EQ(fk.iopf_tries, 1);
	CHECK_EQ(fk.hwpt.size, 48);
	CHECK_EQ(fk.hwpt.flags, IOMMU_HWPT_FAULT_ID_VALID);
	CHECK_EQ(fk.hwpt.fault_id, iof_queue_id(q));
	CHECK_EQ(hwpt_id, fk.hwpt.out_hwpt_id);
	CHECK_EQ(iof_queue_destroy(q), 0);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_NO);
	/* The next one goes straight to two steps */
	q = iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &want,
				   &hwpt_id);
	CHECK(q);
	CHECK_EQ(fk.iopf_tries, 1);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* A vEVENTQ: the eventfd refused, then without */
	vq = iof_veventq_create(3, 7, &vcfg);
	CHECK(vq);
	CHECK_EQ(iof_veventq_flags(vq), 0);
	CHECK_EQ(fk.veventq_calls, 2);
	CHECK_EQ(fk.veventq.flags, 0);
	CHECK_EQ(fk.veventq.eventfd, 0);
	CHECK_EQ(iof_veventq_wait_fd(vq), fk.veventq.out_veventq_fd);
	CHECK_EQ(iof_veventq_destroy(vq), 0);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_NO);
	vq = iof_veventq_create(3, 7, &vcfg);
	CHECK(vq);
	CHECK_EQ(fk.veventq_calls, 3);
	CHECK_EQ(iof_veventq_destroy(vq), 0);
	fk_done();
}

static void probe_and_create_patched(void)
{
	const struct iof_config want = {
		.flags = IOMMU_FAULT_QUEUE_EVENTFD | B,
		.depth = 32,
		.strict = true,
	};
	const struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.flags = IOMMU_VEVENTQ_ALLOC_EVENTFD,
		.depth = 64,
		.strict = true,
	};
	struct iof_config big = want;
	struct iof_caps caps;
	struct iof_veventq *vq;
	struct iof_queue *q;
	uint32_t hwpt_id = 0;
	int fds, destroys;

	fk_kernel(true);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK(caps.fault_eventfd && caps.fault_bounded);

	q = iof_queue_create(3, &want);
	CHECK(q);
	CHECK_EQ(fk.fault.size, sizeof(struct iommu_fault_alloc));
	CHECK_EQ(fk.fault.flags, IOMMU_FAULT_QUEUE_EVENTFD | B);
	CHECK_EQ(fk.fault.depth, 32);
	CHECK_EQ(fk.fault.eventfd, iof_queue_wait_fd(q));
	CHECK(fk.fault_eventfd_real);
	CHECK(iof_queue_wait_fd(q) != iof_queue_fd(q));
	CHECK_EQ(iof_queue_depth(q), 32);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* A depth the kernel cannot have: its EINVAL comes back */
	big.depth = (1U << 19) + 1;
	errno = 0;
	CHECK(!iof_queue_create(3, &big));
	CHECK_EQ(errno, EINVAL);
	big.depth = 1U << 19;
	q = iof_queue_create(3, &big);
	CHECK(q);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* One step, with the queue's flags in the HWPT allocation */
	q = iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &want,
				   &hwpt_id);
	CHECK(q);
	CHECK(iof_queue_one_step(q));
	CHECK_EQ(fk.hwpt.size, sizeof(struct iommu_hwpt_alloc));
	CHECK_EQ(fk.hwpt.flags, IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE);
	CHECK_EQ(fk.hwpt.fault_flags, IOMMU_FAULT_QUEUE_EVENTFD | B);
	CHECK_EQ(fk.hwpt.fault_depth, 32);
	CHECK_EQ(fk.hwpt.fault_eventfd, iof_queue_wait_fd(q));
	CHECK_EQ(iof_queue_id(q), fk.hwpt.out_fault_id);
	CHECK_EQ(iof_queue_fd(q), (int)fk.hwpt.out_fault_fd);
	CHECK_EQ(hwpt_id, fk.hwpt.out_hwpt_id);
	CHECK_EQ(iof_queue_destroy(q), 0);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_YES);

	/* A failed allocation leaves nothing: no object, no fd */
	fk.hwpt_errno = ENOSPC;
	fds = fk.open_fds;
	destroys = fk.destroys;
	errno = 0;
	CHECK(!iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &want,
				      &hwpt_id));
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(fk.open_fds, fds);
	CHECK_EQ(fk.destroys, destroys);
	fk.hwpt_errno = 0;

	vq = iof_veventq_create(3, 7, &vcfg);
	CHECK(vq);
	CHECK_EQ(iof_veventq_flags(vq), IOMMU_VEVENTQ_ALLOC_EVENTFD);
	CHECK_EQ(fk.veventq.eventfd, iof_veventq_wait_fd(vq));
	CHECK_EQ(fk.veventq.veventq_depth, 64);
	CHECK_EQ(fk.veventq.type, IOF_VEVENTQ_TYPE_SELFTEST);
	CHECK_EQ(iof_veventq_destroy(vq), 0);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_YES);
	/* and a failed vEVENTQ allocation keeps its errno */
	errno = 0;
	CHECK(!iof_veventq_create(3, 0, &vcfg));
	CHECK_EQ(errno, ENOENT);
	fk_done();
}

/*
 * The probe makes throwaway queues and nothing else, and leaves nothing: on
 * a kernel with both flags one queue with both, a real eventfd, depth 1;
 * destroyed, its fd and the eventfd closed. No HWPT or vEVENTQ ioctl whose
 * errno order could be read as an answer.
 */
static void probe_throwaway_objects(void)
{
	struct iof_caps caps;
	int calls;

	fk_kernel(true);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK(caps.fault_eventfd && caps.fault_bounded);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_UNKNOWN);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_UNKNOWN);
	CHECK_EQ(fk.fault_calls, 1);
	CHECK_EQ(fk.fault.flags, IOMMU_FAULT_QUEUE_EVENTFD | B);
	CHECK_EQ(fk.fault.depth, 1);
	CHECK(fk.fault_eventfd_real);
	CHECK_EQ(fk.hwpt_calls, 0);
	CHECK_EQ(fk.veventq_calls, 0);
	/* Gone again: the object, its fd, the eventfd */
	CHECK_EQ(fk.destroys, 1);
	CHECK_EQ(fcntl(fk.last_fault_fd, F_GETFD), -1);
	CHECK_EQ(fcntl(fk.fault.eventfd, F_GETFD), -1);
	calls = fk.calls;
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(fk.calls, calls);

	/* A kernel without CONFIG_EVENTFD: both refused, then each */
	fk_kernel(true);
	fk.no_eventfd = true;
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK(!caps.fault_eventfd && caps.fault_bounded);
	CHECK_EQ(fk.fault_calls, 3);
	CHECK_EQ(fk.fault_allocs, 1);
	CHECK_EQ(fk.destroys, 1);
	CHECK_EQ(fcntl(fk.last_fault_fd, F_GETFD), -1);

	/*
	 * Not an iommufd (or no fault queues at all): an error, not "nothing
	 * supported", and not kept: the next call probes again
	 */
	fk_kernel(true);
	fk.fail_errno = ENOTTY;
	CHECK_EQ(iof_probe(3, &caps), -ENOTTY);
	fk.fail_errno = 0;
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK(caps.fault_eventfd && caps.fault_bounded);
	fk_done();
}

/*
 * A kernel without CONFIG_EVENTFD: a bounded queue without eventfd, and a
 * vEVENTQ that falls back to poll() once, then knows
 */
static void create_without_eventfd(void)
{
	const struct iof_config want = {
		.flags = IOMMU_FAULT_QUEUE_EVENTFD | B,
		.depth = 8,
	};
	const struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.flags = IOMMU_VEVENTQ_ALLOC_EVENTFD,
	};
	struct iof_veventq_config vstrict = vcfg;
	struct iof_veventq *vq;
	struct iof_queue *q;
	struct iof_caps caps;
	uint32_t hwpt_id;

	fk_kernel(true);
	fk.no_eventfd = true;
	q = iof_queue_create(3, &want);
	CHECK(q);
	CHECK_EQ(iof_queue_flags(q), B);
	CHECK_EQ(iof_queue_wait_fd(q), iof_queue_fd(q));
	CHECK_EQ(iof_queue_destroy(q), 0);
	/* The one step still works, with what the queue can have */
	q = iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &want,
				   &hwpt_id);
	CHECK(q);
	CHECK(iof_queue_one_step(q));
	CHECK_EQ(fk.hwpt.fault_flags, B);
	CHECK_EQ(iof_queue_destroy(q), 0);

	vstrict.strict = true;
	errno = 0;
	CHECK(!iof_veventq_create(3, 7, &vstrict));
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK_EQ(fk.veventq_calls, 1);
	/* strict learns nothing: the EOPNOTSUPP could have had another cause */
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_UNKNOWN);
	vq = iof_veventq_create(3, 7, &vcfg);
	CHECK(vq);
	CHECK_EQ(iof_veventq_flags(vq), 0);
	CHECK_EQ(fk.veventq_calls, 3);
	CHECK_EQ(iof_veventq_destroy(vq), 0);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_NO);
	/* Known missing now: strict fails without asking */
	errno = 0;
	CHECK(!iof_veventq_create(3, 7, &vstrict));
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK_EQ(fk.veventq_calls, 3);
	fk_done();
}

/*
 * Falling back is for a refused flag only. Any other failure of the one
 * step is the allocation's: returned at once, nothing made in two steps.
 * An EOPNOTSUPP with another cause fails the two steps too, and teaches
 * nothing.
 */
static void one_step_fallback_only_when_refused(void)
{
	const struct iof_config cfg = { .flags = B, .depth = 4 };
	struct iof_caps caps;
	struct iof_queue *q;
	uint32_t hwpt_id;
	int fault_calls, fds;

	fk_kernel(true);
	CHECK_EQ(iof_probe(3, &caps), 0);
	fk.hwpt_errno = ENOSPC;
	fault_calls = fk.fault_calls;
	fds = fk.open_fds;
	errno = 0;
	CHECK(!iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &cfg,
				      &hwpt_id));
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(fk.iopf_tries, 1);
	CHECK_EQ(fk.fault_calls, fault_calls);
	CHECK_EQ(fk.open_fds, fds);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_UNKNOWN);

	fk.hwpt_errno = 0;
	errno = 0;
	CHECK(!iof_queue_alloc_nested(3, 1, 2, FK_BAD_DATA, "data", 4, &cfg,
				      &hwpt_id));
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK_EQ(fk.iopf_tries, 2);
	/* The two steps' queue is gone again */
	CHECK_EQ(fk.fault_allocs, fk.destroys);
	CHECK_EQ(iof_probe(3, &caps), 0);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_UNKNOWN);
	q = iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &cfg, &hwpt_id);
	CHECK(q);
	CHECK(iof_queue_one_step(q));
	CHECK_EQ(iof_queue_destroy(q), 0);
	fk_done();
}

/* A kernel that has one step but refuses it for this parent: two steps */
static void one_step_falls_back(void)
{
	const struct iof_config cfg = {};
	struct iof_queue *q;
	uint32_t hwpt_id;

	fk_kernel(true);
	/* Refused as 7.3 would: fall back */
	fk.patched = false;
	q = iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &cfg,
				   &hwpt_id);
	CHECK(q);
	CHECK(!iof_queue_one_step(q));
	CHECK_EQ(fk.fault.size, 16);
	CHECK_EQ(fk.hwpt.flags, IOMMU_HWPT_FAULT_ID_VALID);
	CHECK_EQ(iof_queue_destroy(q), 0);
	fk_done();
}

static void create_fails(void)
{
	/* Not an iommufd: nothing made, and the ioctl's errno comes back */
	errno = 0;
	CHECK(!iof_queue_create(-1, NULL));
	CHECK_EQ(errno, EBADF);
}

static void wait_and_epoll(void)
{
	struct epoll_event ev = {};
	struct iof_queue *q;
	int p[2], epfd;

	CHECK_EQ(pipe(p), 0);
	/* A pipe stands in for the fault fd, which polls the same way */
	q = iof_queue_adopt(-1, 12, p[0], -1, NULL);
	CHECK(q);
	CHECK_EQ(iof_queue_id(q), 12);
	CHECK_EQ(iof_queue_wait_fd(q), p[0]);
	CHECK_EQ(iof_queue_wait(q, 0), 0);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(epfd >= 0);
	CHECK_EQ(iof_queue_epoll_add(q, epfd, 0, 42), 0);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 0);
	CHECK_EQ(write(p[1], "x", 1), 1);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_wait(q, -1), 1);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 1);
	CHECK_EQ(ev.data.u64, 42);
	CHECK(ev.events & EPOLLIN);
	/* Adding it twice is refused */
	CHECK_EQ(iof_queue_epoll_add(q, epfd, EPOLLIN | EPOLLET, 43), -EEXIST);
	/* The library owns the fd: destroy closes it */
	CHECK_EQ(iof_queue_destroy(q), 0);
	CHECK_EQ(fcntl(p[0], F_GETFD), -1);
	CHECK_EQ(errno, EBADF);
	close(p[1]);
	close(epfd);
}

/* ---- Answering by (device, PASID, PRGI) ---- */

static struct iommu_hwpt_pgfault pgfault_pasid(uint32_t dev, bool pasid_valid,
					       uint32_t pasid, uint32_t grpid,
					       uint32_t cookie)
{
	struct iommu_hwpt_pgfault pf = pgfault(dev, grpid, cookie, true, 0);

	pf.flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE |
		   (pasid_valid ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0);
	pf.pasid = pasid;
	return pf;
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

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
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
	CHECK_EQ(fake.nr_got, 4);
	CHECK_EQ(fake.got[0].cookie, 101);
	CHECK_EQ(fake.got[1].cookie, 102);
	CHECK_EQ(fake.got[1].code, IOMMUFD_PAGE_RESP_INVALID);
	CHECK_EQ(fake.got[2].cookie, 0xfff00abcu);
	CHECK_EQ(fake.got[3].cookie, 103);
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
	CHECK_EQ(fake.nr_got, 5);
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

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
	put_pgfault(&b, pgfault_pasid(1, true, 7, 5, 200));
	put_pgfault(&b, pgfault_pasid(1, true, 7, 5, 300));
	CHECK_EQ(iof_parse(q, b.data, b.len, NULL, NULL), 2);
	CHECK_EQ(iof_queue_stats(q)->superseded, 1);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 2);
	CHECK_EQ(iof_answer_by(q, 1, true, 7, 5, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(fake.got[0].cookie, 300);
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
	CHECK_EQ(fake.got[1].cookie, 200);
	CHECK_EQ(fake.got[2].cookie, 400);
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
	CHECK_EQ(fake.got[4].cookie, 600);
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

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
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
			CHECK_EQ(fake.got[fake.nr_got - 1].cookie,
				 ref[d][p][g]);
			ref[d][p][g] = 0;
			outstanding--;
		}
		if (fake.nr_got > 128)
			fake.nr_got = 0;
	}
	CHECK_EQ(iof_queue_stats(q)->outstanding, outstanding);
	CHECK_EQ(iof_queue_stats(q)->superseded, 0);
	CHECK_EQ(iof_queue_stats(q)->unmatched, 0);
	iof_parser_free(q);
}

/* ---- What the guest could not take, and what the kernel does not take ---- */

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
	const struct iof_config cfg = { .flags = B, .depth = 64 };
	struct iof_queue *q = iof_queue_adopt(-1, 4, -1, -1, &cfg);
	struct guest gu = { .room = 2 };
	int i;

	CHECK(q);
	fq_reset();
	fq.bounded = true;
	memset(&fake, 0, sizeof(fake));
	iof_set_io(q, fake_read, fake_write);
	for (i = 1; i <= 5; i++)
		fq_group(1, i, i == 3 ? 2 : 1);
	CHECK_EQ(iof_queue_dispatch(q, &guest_ops, &gu), 6);
	CHECK_EQ(gu.injected, 2);
	CHECK_EQ(gu.refused, 3);
	CHECK_EQ(iof_queue_stats(q)->not_injected, 3);
	CHECK_EQ(iof_queue_stats(q)->groups, 5);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 2);
	CHECK(iof_outstanding(q, 1) && iof_outstanding(q, 2));
	CHECK(!iof_outstanding(q, 3));
	CHECK_EQ(iof_flush(q), 3);
	CHECK_EQ(fake.nr_got, 3);
	for (i = 0; i != 3; i++) {
		CHECK_EQ(fake.got[i].cookie, 3 + i);
		CHECK_EQ(fake.got[i].code, IOMMUFD_PAGE_RESP_INVALID);
	}
	/* The guest answers what it has; a late answer to the others fails */
	CHECK_EQ(iof_answer(q, 1, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer(q, 3, IOF_RESP_SUCCESS), -ENOENT);

	/* A callback that answered itself is not answered twice */
	gu = (struct guest){ .answer_then_refuse = true };
	fq_reset();
	fq.bounded = true;
	fq_group(1, 10, 1);
	memset(&fake, 0, sizeof(fake));
	CHECK_EQ(iof_queue_dispatch(q, &guest_ops, &gu), 1);
	CHECK_EQ(iof_flush(q), 2);
	CHECK_EQ(fake.nr_got, 2);
	CHECK_EQ(fake.got[1].cookie, 10);
	CHECK_EQ(fake.got[1].code, IOMMUFD_PAGE_RESP_SUCCESS);
	CHECK_EQ(iof_queue_stats(q)->not_injected, 3);
	CHECK_EQ(iof_queue_destroy(q), 0);
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

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
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
	CHECK_EQ(fake.nr_got, 2);
	CHECK_EQ(fake.got[0].code, IOMMUFD_PAGE_RESP_INVALID);
	CHECK_EQ(fake.got[1].code, IOMMUFD_PAGE_RESP_INVALID);
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

/* ---- Teardown from a callback ---- */

struct doom {
	int calls;		/* callbacks seen */
	int destroy_at;		/* destroy in this callback (1-based) */
	int destroy_rc;
	bool fd_open_after;	/* the queue fd still open after destroy */
	int fd;
	bool answer_first;	/* answer the group before destroying */
	bool dispatch_again;	/* try a nested dispatch instead */
	int nested_rc;
};

static int doom_group(struct iof_queue *q, const struct iof_group *g,
		      void *arg)
{
	struct doom *dm = arg;

	if (++dm->calls != dm->destroy_at)
		return 0;
	if (dm->dispatch_again) {
		dm->nested_rc = iof_queue_dispatch(q, NULL, NULL);
		return 0;
	}
	if (dm->answer_first)
		iof_answer(q, g->cookie, IOF_RESP_SUCCESS);
	dm->destroy_rc = iof_queue_destroy(q);
	dm->fd_open_after = fcntl(dm->fd, F_GETFD) >= 0;
	/* Not injected, say: the queue is gone, nothing may be answered */
	return -ENOSPC;
}

static void doom_lost(struct iof_queue *q, uint32_t seq, uint32_t count,
		      void *arg)
{
	struct doom *dm = arg;

	if (++dm->calls == dm->destroy_at) {
		dm->destroy_rc = iof_queue_destroy(q);
		dm->fd_open_after = fcntl(dm->fd, F_GETFD) >= 0;
	}
}

static const struct iof_ops doom_ops = {
	.page_request = doom_group,
	.lost = doom_lost,
};

/*
 * A queue destroyed from its own callback (QEMU needed a bottom half for
 * that): nothing of it runs after, its fd stays open until the dispatch
 * unwinds, then it is torn down (answers written, fds closed, object
 * destroyed) and the dispatch says -ECANCELED.
 */
static void destroy_in_callback(void)
{
	const struct iof_config cfg = { .flags = B, .depth = 64 };
	struct iof_queue *q;
	struct doom dm = { .destroy_at = 2, .answer_first = true };
	int p[2];

	fk_kernel(true);
	CHECK_EQ(pipe(p), 0);
	q = iof_queue_adopt(3, 44, p[0], -1, &cfg);
	CHECK(q);
	dm.fd = p[0];
	fq_reset();
	fq.bounded = true;
	memset(&fake, 0, sizeof(fake));
	iof_set_io(q, fake_read, fake_write);
	fq_group(1, 1, 1);
	fq_group(1, 2, 1);
	fq_group(1, 3, 1);
	CHECK_EQ(iof_queue_dispatch(q, &doom_ops, &dm), -ECANCELED);
	/* The third group was in the same read: never delivered */
	CHECK_EQ(dm.calls, 2);
	CHECK_EQ(dm.destroy_rc, 0);
	CHECK(dm.fd_open_after);
	/* Gone now: the answer given before written, fd closed, destroyed */
	CHECK_EQ(fake.nr_got, 1);
	CHECK_EQ(fake.got[0].cookie, 2);
	CHECK_EQ(fake.got[0].code, IOMMUFD_PAGE_RESP_SUCCESS);
	CHECK_EQ(fcntl(p[0], F_GETFD), -1);
	CHECK_EQ(fk.destroys, 1);
	CHECK_EQ(fq.reads, 1);
	close(p[1]);

	/* From the lost callback of a bounded queue: a LOST tail first */
	CHECK_EQ(pipe(p), 0);
	q = iof_queue_adopt(3, 45, p[0], -1, &cfg);
	CHECK(q);
	dm = (struct doom){ .destroy_at = 1, .fd = p[0] };
	{
		struct buf b = {};

		put_hdr(&b, LOST, 4);
		put_bounded(&b, 5, pgfault(1, 1, 9, true, 0));
		CHECK_EQ(iof_parse(q, b.data, b.len, &doom_ops, &dm),
			 -ECANCELED);
	}
	CHECK_EQ(dm.calls, 1);
	CHECK(dm.fd_open_after);
	CHECK_EQ(fcntl(p[0], F_GETFD), -1);
	CHECK_EQ(fk.destroys, 2);
	close(p[1]);
	fk_done();
}

/*
 * The other pattern: the callback only notes that the queue must go, and
 * the VMM destroys it after the dispatch returned (a bottom half): done at
 * once. And a dispatch from inside its own callback is refused.
 */
static void destroy_outside_callback(void)
{
	const struct iof_config cfg = { .flags = B, .depth = 64 };
	struct doom dm = { .destroy_at = 1, .dispatch_again = true };
	struct iof_queue *q;
	struct seen s = {};
	int p[2];

	fk_kernel(true);
	CHECK_EQ(pipe(p), 0);
	q = iof_queue_adopt(3, 46, p[0], -1, &cfg);
	CHECK(q);
	fq_reset();
	fq.bounded = true;
	memset(&fake, 0, sizeof(fake));
	iof_set_io(q, fake_read, fake_write);
	fq_group(1, 1, 1);
	fq_group(1, 2, 1);
	CHECK_EQ(iof_queue_dispatch(q, &doom_ops, &dm), 2);
	CHECK_EQ(dm.nested_rc, -EDEADLK);
	CHECK_EQ(dm.calls, 2);
	/* Later, outside any callback */
	CHECK_EQ(iof_answer(q, 1, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
	CHECK_EQ(fake.nr_got, 1);
	CHECK_EQ(fcntl(p[0], F_GETFD), -1);
	CHECK_EQ(fk.destroys, 1);
	close(p[1]);
	fk_done();
}

struct vdoom {
	int events;
	struct iof_veventq *other;	/* destroy this one instead */
	int fd;
	bool fd_open_after;
};

static void vdoom_event(struct iof_veventq *q, const struct iof_vevent *ev,
			void *arg)
{
	struct vdoom *dm = arg;

	if (++dm->events != 1)
		return;
	if (dm->other) {
		iof_veventq_destroy(dm->other);
		return;
	}
	iof_veventq_destroy(q);
	dm->fd_open_after = fcntl(dm->fd, F_GETFD) >= 0;
}

static const struct iof_vevent_ops vdoom_ops = { .event = vdoom_event };

/*
 * The same for a vEVENTQ; and destroying another queue from a callback is
 * no deferral: that one goes at once.
 */
static void veventq_destroy_in_callback(void)
{
	const struct iof_veventq_config cfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
	};
	struct iof_veventq *q, *q2;
	struct vdoom dm = {};
	int p[2], p2[2], i;

	fk_kernel(true);
	CHECK_EQ(pipe(p), 0);
	q = iof_veventq_adopt(3, 9, p[0], -1, &cfg);
	CHECK(q);
	dm.fd = p[0];
	iof_vset_io(q, fake_vread);
	memset(&fv, 0, sizeof(fv));
	for (i = 0; i != 3; i++)
		put_selftest_event(&fv.b, i, 0x42);
	CHECK_EQ(iof_veventq_dispatch(q, &vdoom_ops, &dm), -ECANCELED);
	CHECK_EQ(dm.events, 1);
	CHECK(dm.fd_open_after);
	CHECK_EQ(fcntl(p[0], F_GETFD), -1);
	CHECK_EQ(fk.destroys, 1);
	close(p[1]);

	CHECK_EQ(pipe(p), 0);
	CHECK_EQ(pipe(p2), 0);
	q = iof_veventq_adopt(3, 10, p[0], -1, &cfg);
	q2 = iof_veventq_adopt(3, 11, p2[0], -1, &cfg);
	CHECK(q && q2);
	dm = (struct vdoom){ .other = q2 };
	iof_vset_io(q, fake_vread);
	memset(&fv, 0, sizeof(fv));
	for (i = 0; i != 3; i++)
		put_selftest_event(&fv.b, i, 0x42);
	CHECK_EQ(iof_veventq_dispatch(q, &vdoom_ops, &dm), 3);
	CHECK_EQ(fcntl(p2[0], F_GETFD), -1);
	CHECK_EQ(fk.destroys, 2);
	CHECK_EQ(iof_veventq_destroy(q), 0);
	CHECK_EQ(fk.destroys, 3);
	close(p[1]);
	close(p2[1]);
	fk_done();
}

/* ---- Edge-triggered epoll ---- */

/*
 * A pipe stands in for a queue fd: its reads return whole messages as the
 * kernel's do, it is O_NONBLOCK (EAGAIN when empty), and epoll sees it as it
 * sees the queue fd: edge triggered, it reports new data only.
 */
static int et_loop(int epfd, struct iof_queue *q, struct iof_veventq *vq,
		   const void *ops, void *arg)
{
	struct epoll_event ev;
	int rounds = 0;

	while (epoll_wait(epfd, &ev, 1, 0) == 1 && rounds++ < 100) {
		if (q)
			iof_queue_dispatch(q, ops, arg);
		else
			iof_veventq_dispatch(vq, ops, arg);
	}
	return rounds;
}

/*
 * max_reads stops a dispatch with messages left; edge triggered, nothing
 * new arrives, and without a re-arm they would wait for the next fault.
 */
static void epoll_et_fault_queue(void)
{
	const struct iof_config cfg = {
		.read_size = sizeof(struct iommu_hwpt_pgfault),
		.max_reads = 2,
	};
	struct iof_queue *q;
	struct seen s = {};
	int p[2], epfd, i;

	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	q = iof_queue_adopt(-1, 4, p[0], -1, &cfg);
	CHECK(q);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(epfd >= 0);
	CHECK_EQ(iof_queue_epoll_add(q, epfd, EPOLLIN | EPOLLET, 7), 0);
	for (i = 1; i <= 5; i++) {
		struct iommu_hwpt_pgfault pf = pgfault(1, i, i, true, 0);

		CHECK_EQ(write(p[1], &pf, sizeof(pf)), sizeof(pf));
	}
	et_loop(epfd, q, NULL, &ops, &s);
	CHECK_EQ(s.groups, 5);
	/* All read, and no spurious wake-up left */
	CHECK_EQ(et_loop(epfd, q, NULL, &ops, &s), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
	close(p[1]);
	close(epfd);
}

static void epoll_et_veventq(void)
{
	const struct iof_veventq_config cfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.read_size = sizeof(struct iommufd_vevent_header) + 4,
		.max_reads = 2,
	};
	struct iof_veventq *q;
	struct seen s = {};
	struct buf b = {};
	int p[2], epfd, i;

	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	q = iof_veventq_adopt(-1, 9, p[0], -1, &cfg);
	CHECK(q);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(epfd >= 0);
	CHECK_EQ(iof_veventq_epoll_add(q, epfd, EPOLLIN | EPOLLET, 8), 0);
	for (i = 0; i != 5; i++)
		put_selftest_event(&b, i, 0x42);
	CHECK_EQ(write(p[1], b.data, b.len), (ssize_t)b.len);
	et_loop(epfd, NULL, q, &vops, &s);
	CHECK_EQ(s.events, 5);
	CHECK_EQ(iof_veventq_stats(q)->seq.next, 5);
	CHECK_EQ(et_loop(epfd, NULL, q, &vops, &s), 0);
	CHECK_EQ(iof_veventq_destroy(q), 0);
	close(p[1]);
	close(epfd);
}

/* With an eventfd, edge triggered: the library signals it again */
static void epoll_et_eventfd(void)
{
	const struct iof_config cfg = {
		.flags = IOMMU_FAULT_QUEUE_EVENTFD,
		.read_size = sizeof(struct iommu_hwpt_pgfault),
		.max_reads = 2,
	};
	struct iof_queue *q;
	struct seen s = {};
	uint64_t one = 1;
	int p[2], efd, epfd, i;

	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(efd >= 0);
	q = iof_queue_adopt(-1, 4, p[0], efd, &cfg);
	CHECK(q);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(epfd >= 0);
	CHECK_EQ(iof_queue_epoll_add(q, epfd, EPOLLIN | EPOLLET, 7), 0);
	for (i = 1; i <= 5; i++) {
		struct iommu_hwpt_pgfault pf = pgfault(1, i, i, true, 0);

		CHECK_EQ(write(p[1], &pf, sizeof(pf)), sizeof(pf));
	}
	/* One signal for the lot, as the kernel gives */
	CHECK_EQ(write(efd, &one, sizeof(one)), sizeof(one));
	et_loop(epfd, q, NULL, &ops, &s);
	CHECK_EQ(s.groups, 5);
	CHECK_EQ(iof_queue_destroy(q), 0);
	close(p[1]);
	close(epfd);
}

/* A fake read() that says EBUSY (4095 groups awaiting) until told not to */
static bool busy_now;

static ssize_t busy_read(int fd, void *buf, size_t len)
{
	if (busy_now) {
		errno = EBUSY;
		return -1;
	}
	return read(fd, buf, len);
}

/*
 * At the kernel's cap of groups awaiting an answer, reads fail with EBUSY.
 * Once answers went out, the wait fd reports again, edge triggered too.
 */
static void busy_until_answered(void)
{
	const struct iof_config cfg = {};
	struct iof_queue *q;
	struct epoll_event ev;
	struct seen s = {};
	int p[2], epfd;
	struct iommu_hwpt_pgfault pf = pgfault(1, 1, 1, true, 0);

	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	q = iof_queue_adopt(-1, 4, p[0], -1, &cfg);
	CHECK(q);
	iof_set_io(q, busy_read, fake_write);
	memset(&fake, 0, sizeof(fake));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(epfd >= 0);
	CHECK_EQ(iof_queue_epoll_add(q, epfd, EPOLLIN | EPOLLET, 7), 0);
	CHECK_EQ(write(p[1], &pf, sizeof(pf)), sizeof(pf));
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	/* The next group waits: the cap is reached */
	pf = pgfault(1, 2, 2, true, 0);
	CHECK_EQ(write(p[1], &pf, sizeof(pf)), sizeof(pf));
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 1);
	busy_now = true;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), -EBUSY);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 0);
	/* An answer makes room: the queue is reported again */
	busy_now = false;
	CHECK_EQ(iof_answer(q, 1, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 0);
	CHECK_EQ(iof_flush(q), 1);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(iof_queue_destroy(q), 0);
	close(p[1]);
	close(epfd);
}

/* ---- fdinfo ---- */

static int fdinfo_of(const char *text, struct iof_fdinfo *fi)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int rc;

	if (!f)
		return -errno;
	rc = iof_fdinfo_parse(f, fi);
	fclose(f);
	return rc;
}

/*
 * v2 shows withdrawn faults apart from lost ones; v1 counted them in lost;
 * 7.3 shows neither
 */
static void fdinfo_withdrawn(void)
{
	struct iof_fdinfo fi;

	CHECK_EQ(fdinfo_of("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\n"
			   "fault_flags:\t0x3\ndepth:\t64\nqueued:\t5\n"
			   "awaiting:\t2\nlost:\t40\nwithdrawn:\t7\n", &fi),
		 0);
	CHECK_EQ(fi.flags, 3);
	CHECK_EQ(fi.depth, 64);
	CHECK_EQ(fi.queued, 5);
	CHECK_EQ(fi.awaiting, 2);
	CHECK_EQ(fi.lost, 40);
	CHECK(fi.has_withdrawn);
	CHECK_EQ(fi.withdrawn, 7);
	/* A u64 */
	CHECK_EQ(fdinfo_of("fault_flags:\t0x2\ndepth:\t1\nqueued:\t0\n"
			   "awaiting:\t0\nlost:\t0\n"
			   "withdrawn:\t8589934592\n", &fi), 0);
	CHECK_EQ(fi.withdrawn, 8589934592ull);
	CHECK_EQ(fdinfo_of("fault_flags:\t0x2\ndepth:\t64\nqueued:\t0\n"
			   "awaiting:\t0\nlost:\t47\n", &fi), 0);
	CHECK(!fi.has_withdrawn);
	CHECK_EQ(fi.withdrawn, 0);
	CHECK_EQ(fi.lost, 47);
	CHECK_EQ(fdinfo_of("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\n", &fi),
		 -ENOENT);
}

/* ---- iofault_msg.h alone ---- */

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

static const struct test {
	const char *name;
	void (*fn)(void);
} all_tests[] = {
#define T(fn) { #fn, fn }
	T(seq_in_order_and_gaps),
	T(seq_wrap),
	T(seq_errors),
	T(walk_messages),
	T(legacy_group),
	T(legacy_split_and_truncated),
	T(group_interrupted),
	T(cookies),
	T(cookies_many),
	T(answers_batched),
	T(answers_buffer_full),
	T(answer_by_key),
	T(answer_by_duplicates),
	T(answer_by_many),
	T(not_injected),
	T(response_failure),
	T(bounded_groups_and_loss),
	T(bounded_wrap),
	T(bounded_malformed),
	T(vevent_selftest),
	T(vevent_wrap),
	T(vevent_vtd_record),
	T(vevent_raw_types),
	T(vevent_malformed),
	T(one_checker_both_channels),
	T(dispatch_empty),
	T(dispatch_whole_groups),
	T(dispatch_big_group),
	T(dispatch_bounded),
	T(dispatch_error),
	T(eventfd_hint),
	T(dispatch_flood),
	T(veventq_dispatch_eventfd),
	T(destroy_in_callback),
	T(destroy_outside_callback),
	T(veventq_destroy_in_callback),
	T(epoll_et_fault_queue),
	T(epoll_et_veventq),
	T(epoll_et_eventfd),
	T(busy_until_answered),
	T(probe_throwaway_objects),
	T(probe_and_fallback_on_73),
	T(probe_and_create_patched),
	T(create_without_eventfd),
	T(one_step_fallback_only_when_refused),
	T(one_step_falls_back),
	T(create_fails),
	T(wait_and_epoll),
	T(fdinfo_withdrawn),
#undef T
};

/* Run one test in a child: a crash or a hang fails it alone */
static bool run_test(const struct test *t)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("# %s: fork: %s\n", t->name, strerror(errno));
		return false;
	}
	if (!pid) {
		current = t->name;
		failures = 0;
		alarm(60);
		t->fn();
		exit(failures ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return false;
	if (WIFSIGNALED(status))
		printf("# %s: killed by signal %d (%s)\n", t->name,
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static bool wanted(const char *name, int argc, char **argv)
{
	int i;

	if (argc < 2)
		return true;
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const unsigned int n = sizeof(all_tests) / sizeof(all_tests[0]);
	unsigned int i;
	int planned = 0;
	bool ok;

	for (i = 0; i != n; i++)
		planned += wanted(all_tests[i].name, argc, argv);
	printf("TAP version 13\n1..%d\n", planned);
	for (i = 0; i != n; i++) {
		if (!wanted(all_tests[i].name, argc, argv))
			continue;
		ok = run_test(&all_tests[i]);
		failures += !ok;
		tests++;
		printf("%sok %d %s\n", ok ? "" : "not ", tests,
		       all_tests[i].name);
	}
	printf("# %d tests, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}
