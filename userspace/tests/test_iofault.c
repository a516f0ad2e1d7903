// SPDX-License-Identifier: MIT
/*
 * Unit tests of the iofault library: crafted buffers as read() would return
 * them from a fault queue (legacy and bounded) and a vEVENTQ, reads from and
 * answers written to fake fds that behave as Linux 7.3's do, fake ioctls
 * that behave as 7.3 and as the patched kernel do (probing and fallback),
 * and waits on pipes and eventfds. No iommufd needed. Prints TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
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

static void on_group(struct iof_queue *q, const struct iof_group *g, void *arg)
{
	struct seen *s = arg;

	s->groups++;
	s->last_group = *g;
	memcpy(s->faults, g->faults,
	       (g->nr_faults < 16 ? g->nr_faults : 16) * sizeof(*g->faults));
	if (s->answer_in_callback)
		iof_answer(q, g->cookie, IOMMUFD_PAGE_RESP_SUCCESS);
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
		if (r[i].cookie == fake.refuse) {
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
	if (fq.err) {
		errno = fq.err;
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
 * and 7.3 with the series. Objects get IDs; fds are real (/dev/null).
 */
static struct {
	bool patched;
	uint32_t next_id;
	int calls, destroys;
	int hwpt_errno;		/* fail a real HWPT allocation so */
	/* What the last ioctl of each kind was given */
	struct iommu_fault_alloc fault;
	struct iommu_hwpt_alloc hwpt;
	struct iommu_veventq_alloc veventq;
	int fault_allocs, hwpt_allocs;
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

static int fake_ioctl(int fd, unsigned long request, void *arg)
{
	fk.calls++;
	if (request == IOMMU_DESTROY) {
		fk.destroys++;
		return 0;
	}
	if (request == IOMMU_FAULT_QUEUE_ALLOC) {
		struct iommu_fault_alloc *c = arg;
		const uint32_t known = IOMMU_FAULT_QUEUE_EVENTFD | B;

		memcpy(&fk.fault, c, sizeof(*c));
		if (c->size < 16)
			return fk_fail(EINVAL);
		if (!fk.patched) {
			if (!tail_zero(c, 16, c->size))
				return fk_fail(E2BIG);
			if (c->flags)
				return fk_fail(EOPNOTSUPP);
		} else {
			if (c->flags & ~known)
				return fk_fail(EOPNOTSUPP);
			if (c->flags && c->size < sizeof(*c))
				return fk_fail(EINVAL);
			if ((c->flags & B) &&
			    (!c->depth || c->depth > IOMMU_FAULT_QUEUE_MAX_DEPTH))
				return fk_fail(EINVAL);
			if (!(c->flags & B) && c->size > 16 && c->depth)
				return fk_fail(EINVAL);
			if ((c->flags & IOMMU_FAULT_QUEUE_EVENTFD) &&
			    !fd_ok(c->eventfd))
				return fk_fail(EBADF);
		}
		fk.fault_allocs++;
		c->out_fault_id = ++fk.next_id;
		c->out_fault_fd = fk_newfd();
		memcpy(&fk.fault, c, sizeof(*c));
		return 0;
	}
	if (request == IOMMU_HWPT_ALLOC) {
		struct iommu_hwpt_alloc *c = arg;
		const uint32_t iopf = IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE;

		memcpy(&fk.hwpt, c, sizeof(*c));
		if (!fk.patched) {
			if (!tail_zero(c, 48, c->size))
				return fk_fail(E2BIG);
			if (!c->dev_id)
				return fk_fail(ENOENT);
			if (c->flags & iopf)
				return fk_fail(EOPNOTSUPP);
		} else if (c->flags & iopf) {
			if (c->flags & IOMMU_HWPT_FAULT_ID_VALID)
				return fk_fail(EINVAL);
			if (c->size < sizeof(*c))
				return fk_fail(EINVAL);
			if (!c->dev_id)
				return fk_fail(ENOENT);
			if ((c->fault_flags & IOMMU_FAULT_QUEUE_EVENTFD) &&
			    !fd_ok(c->fault_eventfd))
				return fk_fail(EBADF);
		}
		if (!c->dev_id)
			return fk_fail(ENOENT);
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

		memcpy(&fk.veventq, c, sizeof(*c));
		if (!fk.patched && (c->flags || c->eventfd))
			return fk_fail(EOPNOTSUPP);
		if (c->flags & ~IOMMU_VEVENTQ_ALLOC_EVENTFD)
			return fk_fail(EOPNOTSUPP);
		if (c->type == 0)
			return fk_fail(EOPNOTSUPP);
		if (!c->veventq_depth)
			return fk_fail(EINVAL);
		if ((c->flags & IOMMU_VEVENTQ_ALLOC_EVENTFD) &&
		    !fd_ok(c->eventfd))
			return fk_fail(EBADF);
		if (!c->viommu_id)
			return fk_fail(ENOENT);
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
	CHECK(!caps.fault_eventfd && !caps.fault_bounded &&
	      !caps.iopf_capable && !caps.veventq_eventfd);
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

	/* Two steps where one would do */
	q = iof_queue_alloc_nested(3, 1, 2, 0xdead, "data", 4, &want,
				   &hwpt_id);
	CHECK(q);
	CHECK(!iof_queue_one_step(q));
	CHECK_EQ(fk.hwpt.size, 48);
	CHECK_EQ(fk.hwpt.flags, IOMMU_HWPT_FAULT_ID_VALID);
	CHECK_EQ(fk.hwpt.fault_id, iof_queue_id(q));
	CHECK_EQ(hwpt_id, fk.hwpt.out_hwpt_id);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* A vEVENTQ without an eventfd */
	vq = iof_veventq_create(3, 7, &vcfg);
	CHECK(vq);
	CHECK_EQ(iof_veventq_flags(vq), 0);
	CHECK_EQ(fk.veventq.flags, 0);
	CHECK_EQ(fk.veventq.eventfd, 0);
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
	CHECK(caps.fault_eventfd && caps.fault_bounded && caps.iopf_capable &&
	      caps.veventq_eventfd);
	/* The probe's queues were destroyed again */
	CHECK_EQ(fk.destroys, fk.fault_allocs);

	q = iof_queue_create(3, &want);
	CHECK(q);
	CHECK_EQ(fk.fault.size, sizeof(struct iommu_fault_alloc));
	CHECK_EQ(fk.fault.flags, IOMMU_FAULT_QUEUE_EVENTFD | B);
	CHECK_EQ(fk.fault.depth, 32);
	CHECK_EQ(fk.fault.eventfd, iof_queue_wait_fd(q));
	CHECK(iof_queue_wait_fd(q) != iof_queue_fd(q));
	CHECK_EQ(iof_queue_depth(q), 32);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* A depth the kernel cannot have is refused before asking it */
	big.depth = IOMMU_FAULT_QUEUE_MAX_DEPTH + 1;
	errno = 0;
	CHECK(!iof_queue_create(3, &big));
	CHECK_EQ(errno, EINVAL);

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

	vq = iof_veventq_create(3, 7, &vcfg);
	CHECK(vq);
	CHECK_EQ(iof_veventq_flags(vq), IOMMU_VEVENTQ_ALLOC_EVENTFD);
	CHECK_EQ(fk.veventq.eventfd, iof_veventq_wait_fd(vq));
	CHECK_EQ(fk.veventq.veventq_depth, 64);
	CHECK_EQ(fk.veventq.type, IOF_VEVENTQ_TYPE_SELFTEST);
	CHECK_EQ(iof_veventq_destroy(vq), 0);
	/* and a failed vEVENTQ allocation keeps its errno */
	errno = 0;
	CHECK(!iof_veventq_create(3, 0, &vcfg));
	CHECK_EQ(errno, ENOENT);
	fk_done();
}

/* A kernel that has one step but refuses it for this parent: two steps */
static void one_step_falls_back(void)
{
	const struct iof_config cfg = {};
	struct iof_queue *q;
	uint32_t hwpt_id;

	fk_kernel(true);
	/* Probed as present, then refused as 7.3 would: fall back */
	CHECK(iof_probe(3, &(struct iof_caps){}) == 0);
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

#define RUN(fn)                                                      \
	do {                                                         \
		int before = failures;                               \
		current = #fn;                                       \
		fn();                                                \
		tests++;                                             \
		printf("%sok %d %s\n", failures != before ? "not " : "", \
		       tests, #fn);                                  \
	} while (0)

int main(void)
{
	printf("TAP version 13\n1..32\n");
	RUN(seq_in_order_and_gaps);
	RUN(seq_wrap);
	RUN(seq_errors);
	RUN(legacy_group);
	RUN(legacy_split_and_truncated);
	RUN(group_interrupted);
	RUN(cookies);
	RUN(cookies_many);
	RUN(answers_batched);
	RUN(answers_buffer_full);
	RUN(bounded_groups_and_loss);
	RUN(bounded_wrap);
	RUN(bounded_malformed);
	RUN(vevent_selftest);
	RUN(vevent_wrap);
	RUN(vevent_vtd_record);
	RUN(vevent_raw_types);
	RUN(vevent_malformed);
	RUN(one_checker_both_channels);
	RUN(dispatch_empty);
	RUN(dispatch_whole_groups);
	RUN(dispatch_big_group);
	RUN(dispatch_bounded);
	RUN(dispatch_error);
	RUN(eventfd_hint);
	RUN(dispatch_flood);
	RUN(veventq_dispatch_eventfd);
	RUN(probe_and_fallback_on_73);
	RUN(probe_and_create_patched);
	RUN(one_step_falls_back);
	RUN(create_fails);
	RUN(wait_and_epoll);
	printf("# %d tests, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}
