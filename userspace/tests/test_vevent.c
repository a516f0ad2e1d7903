// SPDX-License-Identifier: MIT
/*
 * lib/vevent.c: vEVENTQ records (selftest, VT-d, raw), their sequence, the
 * dispatch on the fake kernel, fallbacks, adoption, teardown from a
 * callback, edge-triggered epoll.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "mock.h"
#include "unit.h"

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
		.type = IOF_VEVENTQ_TYPE_INTEL_VTD,
	};
	struct iof_veventq *q = iof_vparser_new(&cfg);
	unsigned char rec[16] = {};
	struct iof_vtd_fault f;
	struct seen s = {};
	struct buf b = {};

	CHECK(q);
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
	struct iof_queue *fq = iof_parser_new(BND);
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

/* A vIOMMU with a vDEVICE on the fake kernel, the device attached */
static int venv(bool k73, struct mockenv *e, uint32_t *vdev)
{
	int fd = boot_fake(k73);
	uint32_t hwpt;

	/* The mock reports for a device attached to a HWPT of the vIOMMU */
	if (mock_env(fd, e) ||
	    mock_vdevice_alloc(fd, e->viommu, e->dev, 0x42, vdev) ||
	    mock_nested_alloc(fd, e->dev, e->viommu, 0, &hwpt) ||
	    mock_replace(fd, e->stdev, hwpt))
		return -1;
	return fd;
}

/*
 * Through the kernel: an eventfd signalled when the vEVENTQ becomes
 * readable, a depth, a LOST tail, a gap, and the sequence going on
 */
static void veventq_dispatch(void)
{
	const struct iof_veventq_config cfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.depth = 4,
		.flags = IOF_VEVENTQ_EVENTFD,
		.read_size = 3 * 12,
	};
	struct iof_veventq *q;
	struct seen s = {};
	struct mockenv e;
	uint32_t vdev;
	int fd = venv(false, &e, &vdev), efd;

	CHECK(fd >= 0);
	q = iof_veventq_create(fd, e.viommu, &cfg);
	CHECK(q);
	efd = iof_veventq_wait_fd(q);
	CHECK(efd != iof_veventq_fd(q));
	CHECK_EQ(iof_veventq_wait(q, 0), 0);
	/* 6 events, depth 4: 4 queued, then 2 lost at the tail */
	CHECK_EQ(mock_trigger_vevents(fd, e.dev, 6), 0);
	CHECK_EQ(iof_veventq_wait(q, 0), 1);
	CHECK_EQ(iof_veventq_dispatch(q, &vops, &s), 5);
	CHECK_EQ(s.events, 4);
	CHECK_EQ(s.last_event.u.selftest.virt_id, 0x42);
	CHECK_EQ(s.nr_lost, 1);
	CHECK_EQ(s.lost_seq[0], 4);
	CHECK_EQ(s.lost_count[0], 2);
	CHECK_EQ(iof_veventq_stats(q)->wakeups, 1);
	CHECK_EQ(iof_veventq_wait(q, 0), 0);
	/* and more after the loss: numbered on */
	CHECK_EQ(mock_trigger_vevents(fd, e.dev, 1), 0);
	CHECK_EQ(iof_veventq_dispatch(q, &vops, &s), 1);
	CHECK_EQ(s.last_event.seq, 6);
	CHECK_EQ(iof_veventq_stats(q)->seq.next, 7);
	CHECK_EQ(iof_veventq_stats(q)->seq.lost, 2);
	CHECK_EQ(iof_veventq_destroy(q), 0);
	CHECK_EQ(fcntl(efd, F_GETFD), -1);
}

/* A vEVENTQ of the VMM's: nothing of it is the library's to close */
static void veventq_adopt_keeps_fds(void)
{
	int efd = eventfd(0, EFD_CLOEXEC), vfd;
	struct iof_veventq *q;
	struct seen s = {};
	struct mockenv e;
	uint32_t vdev, id;
	int fd = venv(false, &e, &vdev);
	uint64_t v;

	CHECK(fd >= 0);
	CHECK_EQ(mock_veventq_alloc(fd, e.viommu, IOF_VEVENTQ_EVENTFD, efd, 8,
				    &id, &vfd), 0);
	/* In mid-stream: 3 events read by somebody else before */
	CHECK_EQ(mock_trigger_vevents(fd, e.dev, 3), 0);
	CHECK_EQ(read(efd, &v, sizeof(v)), sizeof(v));
	{
		unsigned char buf[3 * 12];

		CHECK_EQ(fake_read(vfd, buf, sizeof(buf)), sizeof(buf));
	}
	CHECK_EQ(mock_trigger_vevents(fd, e.dev, 2), 0);
	q = iof_veventq_adopt(fd, id, vfd, efd, &selftest_cfg);
	CHECK(q);
	CHECK_EQ(iof_veventq_dispatch(q, &vops, &s), 2);
	CHECK_EQ(s.events, 2);
	CHECK_EQ(s.event_seq[0], 3);
	/* In mid-stream, not a loss of 3 */
	CHECK_EQ(s.nr_lost, 0);
	/* The count is the VMM's */
	CHECK_EQ(read(efd, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(iof_veventq_destroy(q), 0);
	CHECK(fcntl(vfd, F_GETFD) >= 0);
	CHECK(!(fcntl(efd, F_GETFL) & O_NONBLOCK));
	CHECK_EQ(fake_stats.destroys, 0);
	close(efd);
}

/* 7.3: no eventfd (E2BIG for the 40-byte struct), poll() then */
static void veventq_on_73(void)
{
	const struct iof_veventq_config cfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.flags = IOF_VEVENTQ_EVENTFD,
	};
	struct iof_veventq *q;
	struct seen s = {};
	struct mockenv e;
	uint32_t vdev;
	int fd = venv(true, &e, &vdev);

	CHECK(fd >= 0);
	q = iof_veventq_create(fd, e.viommu, &cfg);
	CHECK(q);
	CHECK_EQ(iof_veventq_flags(q), 0);
	CHECK_EQ(iof_veventq_wait_fd(q), iof_veventq_fd(q));
	CHECK_EQ(mock_trigger_vevents(fd, e.dev, 3), 0);
	CHECK_EQ(iof_veventq_wait(q, 0), 1);
	CHECK_EQ(iof_veventq_dispatch(q, &vops, &s), 3);
	CHECK_EQ(s.events, 3);
	CHECK_EQ(iof_veventq_destroy(q), 0);
	/* A vEVENTQ of a type 7.3's mock vIOMMU does not produce: taken */
	q = iof_veventq_create(fd, e.viommu, &(struct iof_veventq_config){
		.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 });
	CHECK(q);
	CHECK_EQ(iof_veventq_destroy(q), 0);
}

struct vdoom {
	int events;
	struct iof_veventq *other;	/* destroy this one instead */
};

static void vdoom_event(struct iof_veventq *q, const struct iof_vevent *ev,
			void *arg)
{
	struct vdoom *dm = arg;

	if (++dm->events != 1)
		return;
	iof_veventq_destroy(dm->other ? dm->other : q);
}

static const struct iof_vevent_ops vdoom_ops = { .event = vdoom_event };

/*
 * Destroyed from its own callback: deferred, -ECANCELED; destroying
 * another queue from a callback is no deferral
 */
static void veventq_destroy_in_callback(void)
{
	struct iof_veventq *q, *q2;
	struct vdoom dm = {};
	struct buf b = {};
	int i;

	q = iof_vparser_new(&selftest_cfg);
	for (i = 0; i != 3; i++)
		put_selftest_event(&b, i, 0x42);
	CHECK_EQ(iof_vparse(q, b.data, b.len, &vdoom_ops, &dm), -ECANCELED);
	CHECK_EQ(dm.events, 1);

	q = iof_vparser_new(&selftest_cfg);
	q2 = iof_vparser_new(&selftest_cfg);
	dm = (struct vdoom){ .other = q2 };
	CHECK_EQ(iof_vparse(q, b.data, b.len, &vdoom_ops, &dm), 3);
	CHECK_EQ(dm.events, 3);
	CHECK_EQ(iof_veventq_destroy(q), 0);
}

/* Edge triggered, max_reads: re-armed until everything is read */
static void epoll_et_veventq(void)
{
	const struct iof_veventq_config cfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.depth = 64,
		.read_size = sizeof(struct iommufd_vevent_header) + 4,
		.max_reads = 2,
	};
	struct iof_veventq *q;
	struct epoll_event ev;
	struct seen s = {};
	struct mockenv e;
	uint32_t vdev;
	int fd = venv(false, &e, &vdev), epfd, rounds = 0;

	CHECK(fd >= 0);
	q = iof_veventq_create(fd, e.viommu, &cfg);
	CHECK(q);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK_EQ(iof_veventq_epoll_add(q, epfd, EPOLLIN | EPOLLET, 8), 0);
	CHECK_EQ(mock_trigger_vevents(fd, e.dev, 5), 0);
	while (epoll_wait(epfd, &ev, 1, 0) == 1 && rounds++ < 100)
		iof_veventq_dispatch(q, &vops, &s);
	CHECK_EQ(s.events, 5);
	CHECK_EQ(iof_veventq_stats(q)->seq.next, 5);
	CHECK_EQ(epoll_wait(epfd, &ev, 1, 0), 0);
	close(epfd);
	CHECK_EQ(iof_veventq_destroy(q), 0);
}

UNIT_TESTS(T(vevent_selftest), T(vevent_wrap), T(vevent_vtd_record),
	   T(vevent_raw_types), T(vevent_malformed),
	   T(one_checker_both_channels), T(veventq_dispatch),
	   T(veventq_adopt_keeps_fds), T(veventq_on_73),
	   T(veventq_destroy_in_callback), T(epoll_et_veventq));
