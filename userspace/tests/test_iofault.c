// SPDX-License-Identifier: MIT
/*
 * Unit tests of the iofault library: crafted buffers as read() would return
 * them from both kinds of queues, and answers written to a fake fault fd.
 * No kernel needed. Prints TAP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* What the callbacks saw */
struct seen {
	int groups;
	struct iof_group last_group;
	struct iof_fault faults[16];
	int unrecov;
	struct iommu_hwpt_unrecov_fault last_unrecov;
	uint32_t unrecov_seq;
	int lost_records;
	uint32_t lost_seq, lost_count;
	int answer_in_callback;
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

static void on_unrecov(struct iof_queue *q,
		       const struct iommu_hwpt_unrecov_fault *f, uint32_t seq,
		       void *arg)
{
	struct seen *s = arg;

	s->unrecov++;
	s->last_unrecov = *f;
	s->unrecov_seq = seq;
}

static void on_lost(struct iof_queue *q, uint32_t seq, uint32_t count,
		    void *arg)
{
	struct seen *s = arg;

	s->lost_records++;
	s->lost_seq = seq;
	s->lost_count = count;
}

static const struct iof_ops ops = {
	.page_request = on_group,
	.unrecoverable = on_unrecov,
	.lost = on_lost,
};

/* Buffer builders */

struct buf {
	unsigned char data[4096];
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

static void put_rec_pgfault(struct buf *b, uint32_t seq,
			    struct iommu_hwpt_pgfault pf)
{
	struct iommu_fault_record h = {
		.type = IOMMU_FAULT_RECORD_PAGE_REQ,
		.length = sizeof(h) + sizeof(pf),
		.seq = seq,
	};

	put(b, &h, sizeof(h));
	put(b, &pf, sizeof(pf));
}

static void put_rec_unrecov(struct buf *b, uint32_t seq, uint32_t reason)
{
	struct iommu_fault_record h = {
		.type = IOMMU_FAULT_RECORD_UNRECOV,
		.length = sizeof(h) + sizeof(struct iommu_hwpt_unrecov_fault),
		.seq = seq,
	};
	struct iommu_hwpt_unrecov_fault uf = {
		.flags = IOMMU_HWPT_UNRECOV_ADDR_VALID,
		.dev_id = 3,
		.reason = reason,
		.perm = IOMMU_PGFAULT_PERM_WRITE,
		.addr = 0x1000 * seq,
	};

	put(b, &h, sizeof(h));
	put(b, &uf, sizeof(uf));
}

static void put_rec_lost(struct buf *b, uint32_t seq, uint32_t count)
{
	struct iommu_fault_record h = {
		.type = IOMMU_FAULT_RECORD_LOST,
		.length = sizeof(h) + sizeof(struct iommu_fault_lost),
		.seq = seq,
	};
	struct iommu_fault_lost l = { .count = count };

	put(b, &h, sizeof(h));
	put(b, &l, sizeof(l));
}

/* The tests */

static void legacy_group(void)
{
	struct iof_queue *q = iof_parser_new(false);
	struct seen s = {};
	struct iommu_hwpt_pgfault pf;
	struct buf b = {};
	int i;

	for (i = 0; i != 3; i++) {
		pf = pgfault(1, 0x20, 5, i == 2, 0x1000 * i);
		put(&b, &pf, sizeof(pf));
	}
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
	iof_parser_free(q);
}

static void legacy_split_and_truncated(void)
{
	struct iof_queue *q = iof_parser_new(false);
	struct iommu_hwpt_pgfault pf;
	struct seen s = {};
	struct buf b = {};

	/* A group split across two reads is still one group */
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

static void records_every_type(void)
{
	struct iof_queue *q = iof_parser_new(true);
	struct seen s = {};
	struct buf b = {};

	put_rec_pgfault(&b, 0, pgfault(2, 0x30, 1, false, 0x5000));
	put_rec_pgfault(&b, 1, pgfault(2, 0x30, 1, true, 0x6000));
	put_rec_unrecov(&b, 2, IOMMU_HWPT_UNRECOV_REASON_PERMISSION);
	put_rec_lost(&b, 3, 10);
	put_rec_unrecov(&b, 13, IOMMU_HWPT_UNRECOV_REASON_TRANSLATION);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 5);
	CHECK_EQ(s.groups, 1);
	CHECK_EQ(s.last_group.seq, 0);
	CHECK_EQ(s.last_group.nr_faults, 2);
	CHECK_EQ(s.last_group.dev_id, 2);
	CHECK_EQ(s.unrecov, 2);
	CHECK_EQ(s.unrecov_seq, 13);
	CHECK_EQ(s.last_unrecov.reason, IOMMU_HWPT_UNRECOV_REASON_TRANSLATION);
	CHECK_EQ(s.last_unrecov.addr, 0x1000 * 13);
	CHECK_EQ(s.lost_records, 1);
	CHECK_EQ(s.lost_seq, 3);
	CHECK_EQ(s.lost_count, 10);
	CHECK_EQ(iof_queue_stats(q)->lost, 10);
	CHECK_EQ(iof_queue_stats(q)->seq_gaps, 0);
	CHECK_EQ(iof_queue_stats(q)->malformed, 0);
	CHECK_EQ(iof_queue_stats(q)->records, 5);
	iof_parser_free(q);
}

static void records_seq_gap(void)
{
	struct iof_queue *q = iof_parser_new(true);
	struct seen s = {};
	struct buf b = {};

	put_rec_unrecov(&b, 40, 0);
	put_rec_unrecov(&b, 41, 0);
	/* 42 vanished without a LOST record */
	put_rec_unrecov(&b, 43, 0);
	put_rec_lost(&b, 44, 2);
	/* LOST covered 44 and 45 */
	put_rec_unrecov(&b, 46, 0);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 5);
	CHECK_EQ(iof_queue_stats(q)->seq_gaps, 1);
	/* The sequence wraps at 2^32 */
	b.len = 0;
	put_rec_unrecov(&b, 47, 0);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 1);
	CHECK_EQ(iof_queue_stats(q)->seq_gaps, 1);
	b.len = 0;
	put_rec_lost(&b, 48, 0xffffffffu - 47);
	put_rec_unrecov(&b, 0, 0);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(iof_queue_stats(q)->seq_gaps, 1);
	iof_parser_free(q);
}

static void records_malformed(void)
{
	struct iof_queue *q = iof_parser_new(true);
	struct iommu_fault_record h;
	struct seen s = {};
	struct buf b = {};

	/* An unknown type is skipped by its length */
	h = (struct iommu_fault_record){ .type = 99, .length = 24, .seq = 0 };
	put(&b, &h, sizeof(h));
	memset(b.data + b.len, 0xab, 16);
	b.len += 16;
	put_rec_unrecov(&b, 1, 0);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(s.unrecov, 1);
	CHECK_EQ(iof_queue_stats(q)->malformed, 1);

	/* A length that is not a multiple of 8: the rest cannot be found */
	b.len = 0;
	h = (struct iommu_fault_record){ .type = 1, .length = 20, .seq = 2 };
	put(&b, &h, sizeof(h));
	put_rec_unrecov(&b, 3, 0);
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 0);
	CHECK_EQ(s.unrecov, 1);
	CHECK_EQ(iof_queue_stats(q)->malformed, 2);

	/* A length of zero, and one beyond the buffer */
	b.len = 0;
	h = (struct iommu_fault_record){ .type = 2, .length = 0 };
	put(&b, &h, sizeof(h));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 0);
	b.len = 0;
	put_rec_unrecov(&b, 4, 0);
	CHECK_EQ(iof_parse(q, b.data, b.len - 8, &ops, &s), 0);
	CHECK_EQ(iof_queue_stats(q)->malformed, 4);

	/* A record too short for its type's payload */
	b.len = 0;
	h = (struct iommu_fault_record){ .type = 3, .length = 8, .seq = 4 };
	put(&b, &h, sizeof(h));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 1);
	CHECK_EQ(s.lost_records, 0);
	CHECK_EQ(iof_queue_stats(q)->malformed, 5);
	iof_parser_free(q);
}

static void group_interrupted(void)
{
	struct iof_queue *q = iof_parser_new(true);
	struct seen s = {};
	struct buf b = {};

	/* A group cut short by another group's fault is dropped */
	put_rec_pgfault(&b, 0, pgfault(1, 0x40, 3, false, 0));
	put_rec_pgfault(&b, 1, pgfault(1, 0x41, 4, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 2);
	CHECK_EQ(s.groups, 1);
	CHECK_EQ(s.last_group.cookie, 4);
	CHECK_EQ(s.last_group.nr_faults, 1);
	CHECK(!iof_outstanding(q, 3));
	CHECK_EQ(iof_queue_stats(q)->malformed, 1);
	iof_parser_free(q);
}

static void cookies(void)
{
	struct iof_queue *q = iof_parser_new(true);
	struct seen s = {};
	struct buf b = {};

	put_rec_pgfault(&b, 0, pgfault(1, 0x50, 2, true, 0));
	put_rec_pgfault(&b, 1, pgfault(2, 0x51, 300, true, 0));
	put_rec_pgfault(&b, 2, pgfault(1, 0x52, 9, true, 0));
	/* A cookie already outstanding, and one beyond what is tracked */
	put_rec_pgfault(&b, 3, pgfault(1, 0x53, 9, true, 0));
	put_rec_pgfault(&b, 4, pgfault(1, 0x54, 1U << 30, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 5);
	CHECK_EQ(s.groups, 3);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 3);
	CHECK_EQ(iof_queue_stats(q)->malformed, 2);
	/* Detaching device 1 answered its groups in the kernel */
	CHECK_EQ(iof_forget_device(q, 1), 2);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 1);
	CHECK(iof_outstanding(q, 300));
	CHECK_EQ(iof_answer(q, 2, IOMMUFD_PAGE_RESP_SUCCESS), -ENOENT);
	iof_parser_free(q);
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

static void answers_batched(void)
{
	struct iof_queue *q = iof_parser_new(true);
	struct seen s = { .answer_in_callback = 1 };
	struct buf b = {};
	uint32_t i;

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
	fake.refuse = 5;
	fake.max_per_write = 3;
	fake.eintr = 1;
	for (i = 1; i <= 10; i++)
		put_rec_pgfault(&b, i - 1, pgfault(1, i, i, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 10);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 0);
	/* Nothing written until the flush */
	CHECK_EQ(fake.writes, 0);
	CHECK_EQ(iof_flush(q), 10);
	/* Short writes, an EINTR and one refused answer are all coped with */
	CHECK_EQ(fake.nr_got, 9);
	CHECK_EQ(iof_queue_stats(q)->answered, 9);
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
	struct iof_queue *q = iof_parser_new(true);
	struct seen s = { .answer_in_callback = 1 };
	static struct buf b;
	uint32_t i;

	iof_set_io(q, NULL, fake_write);
	memset(&fake, 0, sizeof(fake));
	b.len = 0;
	for (i = 1; i <= 70; i++)
		put_rec_pgfault(&b, i - 1, pgfault(1, i, i, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &ops, &s), 70);
	/* 64 answers fill the buffer and go out with the 65th */
	CHECK_EQ(fake.nr_got, 64);
	CHECK_EQ(iof_flush(q), 6);
	CHECK_EQ(fake.nr_got, 70);
	iof_parser_free(q);
}

static ssize_t fake_read_eagain(int fd, void *buf, size_t len)
{
	errno = EAGAIN;
	return -1;
}

static void dispatch_empty(void)
{
	struct iof_queue *q = iof_parser_new(true);
	struct seen s = {};

	iof_set_io(q, fake_read_eagain, fake_write);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(iof_queue_stats(q)->reads, 0);
	iof_parser_free(q);
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
	printf("TAP version 13\n1..10\n");
	RUN(legacy_group);
	RUN(legacy_split_and_truncated);
	RUN(records_every_type);
	RUN(records_seq_gap);
	RUN(records_malformed);
	RUN(group_interrupted);
	RUN(cookies);
	RUN(answers_batched);
	RUN(answers_buffer_full);
	RUN(dispatch_empty);
	printf("# %d tests, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}
