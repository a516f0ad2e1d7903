// SPDX-License-Identifier: MIT
/*
 * Unit tests of the iofault library: crafted buffers as read() would return
 * them from a fault queue, reads from and answers written to a fake fault fd
 * that behaves as Linux 7.3's does, and waits on a pipe. No kernel needed.
 * Prints TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

/* What the callbacks saw */
struct seen {
	int groups;
	struct iof_group last_group;
	struct iof_fault faults[16];
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

static const struct iof_ops ops = {
	.page_request = on_group,
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

static void put_pgfault(struct buf *b, struct iommu_hwpt_pgfault pf)
{
	put(b, &pf, sizeof(pf));
}

/* The tests */

static void legacy_group(void)
{
	struct iof_queue *q = iof_parser_new();
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
	struct iof_queue *q = iof_parser_new();
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
	struct iof_queue *q = iof_parser_new();
	struct seen s = {};
	struct buf b = {};

	/* A group cut short by another group's fault is dropped */
	put_pgfault(&b, pgfault(1, 0x40, 3, false, 0));
	put_pgfault(&b, pgfault(1, 0x41, 4, true, 0));
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
	struct iof_queue *q = iof_parser_new();
	struct seen s = {};
	struct buf b = {};

	put_pgfault(&b, pgfault(1, 0x50, 2, true, 0));
	put_pgfault(&b, pgfault(2, 0x51, 300, true, 0));
	put_pgfault(&b, pgfault(1, 0x52, 9, true, 0));
	/* A cookie already outstanding, and one beyond what is tracked */
	put_pgfault(&b, pgfault(1, 0x53, 9, true, 0));
	put_pgfault(&b, pgfault(1, 0x54, 1U << 30, true, 0));
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
	struct iof_queue *q = iof_parser_new();
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
	struct iof_queue *q = iof_parser_new();
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
	iof_parser_free(q);
}

/*
 * A fake fault fd for iof_queue_dispatch(), with the read() of Linux 7.3:
 * whole messages only (ESPIPE), whole groups only, EINVAL when the first
 * group does not fit, 0 bytes when empty.
 */
static struct {
	struct iommu_hwpt_pgfault msgs[64];
	int nr, pos;
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
	const size_t unit = sizeof(struct iommu_hwpt_pgfault);
	size_t done = 0;
	int end;

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
	if (len % unit) {
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
		memcpy((char *)buf + done, &fq.msgs[fq.pos],
		       (end - fq.pos) * unit);
		done += (end - fq.pos) * unit;
		fq.pos = end;
	}
	return done;
}

static void dispatch_empty(void)
{
	struct iof_queue *q = iof_parser_new();
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
	struct iof_queue *q = iof_queue_adopt(-1, 4, -1, &cfg);
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
	struct iof_queue *q = iof_queue_adopt(-1, 4, -1, &cfg);
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

static void dispatch_error(void)
{
	struct iof_queue *q = iof_parser_new();
	struct seen s = {};

	fq_reset();
	iof_set_io(q, fake_read, fake_write);
	fq.err = EIO;
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), -EIO);
	CHECK_EQ(fq.reads, 1);
	iof_parser_free(q);
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
	q = iof_queue_adopt(-1, 12, p[0], NULL);
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
	printf("TAP version 13\n1..12\n");
	RUN(legacy_group);
	RUN(legacy_split_and_truncated);
	RUN(group_interrupted);
	RUN(cookies);
	RUN(answers_batched);
	RUN(answers_buffer_full);
	RUN(dispatch_empty);
	RUN(dispatch_whole_groups);
	RUN(dispatch_big_group);
	RUN(dispatch_error);
	RUN(create_fails);
	RUN(wait_and_epoll);
	printf("# %d tests, %d failed\n", tests, failures);
	return failures ? 1 : 0;
}
