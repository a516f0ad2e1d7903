// SPDX-License-Identifier: MIT
/*
 * Scenarios of the fault queue's uAPI, as libiofault relies on it: the
 * allocation rules its probe and fallbacks read, 7.3's read and write
 * rules, the header format and its sequence (numbered at read, withdrawn
 * faults taking none), the bound and what the kernel answers for what does
 * not fit, cookies and their window, the cap and its -EAGAIN, eventfd
 * edges, the one-step HWPT, and what destroying answers. See scen.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "iofault.h"
#include "mock.h"
#include "scen.h"
#include "uapi.h"

#define PGF sizeof(struct iommu_hwpt_pgfault)
#define HMSG (sizeof(struct iommufd_vevent_header) + PGF)
#define ALL (IOF_FAULT_QUEUE_EVENTFD | IOF_FAULT_QUEUE_HEADER |             \
	     IOF_FAULT_QUEUE_BOUNDED)

static long alloc_raw(struct world *w, uint32_t size, uint32_t flags,
		      int32_t efd, uint32_t depth, uint32_t *id, int *qfd)
{
	struct iof_uapi_fault_alloc c = {
		.size = size,
		.flags = flags,
		.eventfd = efd,
		.depth = depth,
	};
	long rc = sys_rc(be->ioctl(w->fd, IOMMU_FAULT_QUEUE_ALLOC, &c));

	*id = c.out_fault_id;
	*qfd = c.out_fault_fd;
	return rc;
}

/* An allocation's result; what it made goes again */
static long try_alloc(struct world *w, const char *what, uint32_t size,
		      uint32_t flags, int32_t efd, uint32_t depth)
{
	uint32_t id;
	int qfd;
	long rc = alloc_raw(w, size, flags, efd, depth, &id, &qfd);

	tr_rc(what, rc);
	if (!rc) {
		be->close(qfd);
		tr_rc("  destroyed", mock_destroy(w->fd, id));
	}
	return rc;
}

static void fault_alloc_rules(void)
{
	int efd = eventfd(0, EFD_CLOEXEC), p[2];
	struct iof_caps caps;
	struct world w;
	long rc;

	if (world_new(&w) || pipe(p))
		return;
	try_alloc(&w, "16 bytes", 16, 0, 0, 0);
	try_alloc(&w, "24 bytes of zeros", 24, 0, 0, 0);
	try_alloc(&w, "8 bytes", 8, 0, 0, 0);
	try_alloc(&w, "an unknown flag", 24, 1U << 7, 0, 0);
	/* What iof_probe() asks, and what it reads from the answers */
	rc = try_alloc(&w, "all three, depth 1", 24, ALL, efd, 1);
	SCHECK(k73() ? not_supported(-rc) : !rc);
	rc = try_alloc(&w, "eventfd", 24, IOF_FAULT_QUEUE_EVENTFD, efd, 0);
	SCHECK(k73() ? not_supported(-rc) : !rc);
	rc = try_alloc(&w, "bounded, depth 1", 24, IOF_FAULT_QUEUE_BOUNDED, 0, 1);
	SCHECK(k73() ? not_supported(-rc) : !rc);
	rc = try_alloc(&w, "header", 24, IOF_FAULT_QUEUE_HEADER, 0, 0);
	SCHECK(k73() ? not_supported(-rc) : !rc);
	/* One error at a time: the order of the checks is no ABI */
	try_alloc(&w, "header in 16 bytes", 16, IOF_FAULT_QUEUE_HEADER, 0, 0);
	try_alloc(&w, "an eventfd without its flag", 24, 0, efd, 0);
	try_alloc(&w, "a depth without the bound", 24, 0, 0, 8);
	try_alloc(&w, "bounded, depth 0", 24, IOF_FAULT_QUEUE_BOUNDED, 0, 0);
	try_alloc(&w, "bounded, depth 2^19", 24, IOF_FAULT_QUEUE_BOUNDED, 0,
		  1U << 19);
	try_alloc(&w, "bounded, depth 2^19 + 1", 24, IOF_FAULT_QUEUE_BOUNDED,
		  0, (1U << 19) + 1);
	try_alloc(&w, "eventfd, no such fd", 24, IOF_FAULT_QUEUE_EVENTFD, 999,
		  0);
	try_alloc(&w, "eventfd, a pipe", 24, IOF_FAULT_QUEUE_EVENTFD, p[0], 0);
	/* The library's probe on this kernel */
	tr_rc("iof_probe", iof_probe(w.fd, &caps));
	tr("caps: eventfd %d header %d bounded %d", caps.fault_eventfd,
	   caps.fault_header, caps.fault_bounded);
	SCHECK(caps.fault_eventfd == !k73() && caps.fault_header == !k73() &&
	       caps.fault_bounded == !k73());
	close(p[0]);
	close(p[1]);
	close(efd);
	world_end(&w);
}

/* 7.3's rules for read() and write(), which every kernel keeps */
static void fault_read_write(void)
{
	const uint32_t n = k73() ? 1 : 3;	/* 7.3's mock: 1 a group */
	struct iommu_hwpt_page_response r[2];
	uint32_t id, hwpt, c1, c2;
	struct world w;
	int qfd;

	if (world_new(&w) || world_queue(&w, 0, -1, 0, &id, &qfd, &hwpt))
		return;
	tr_read_fault("empty", qfd, PGF, false);
	tr_poll("empty", qfd);
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 3, n, 0x10000));
	tr_poll("one group", qfd);
	tr_read_fault("not a multiple", qfd, PGF - 1, false);
	tr_read_fault("0 bytes", qfd, 0, false);
	if (n > 1)
		tr_read_fault("less than the group", qfd, PGF, false);
	tr_read_fault("the group", qfd, 8 * PGF, false);
	c1 = tr_last_cookie;
	tr_poll("read", qfd);
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 4, 1, 0x20000));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 5, 1, 0x30000));
	tr_read_fault("room for one", qfd, PGF, false);
	tr_read_fault("the other", qfd, 4 * PGF, false);
	c2 = tr_last_cookie;
	tr_rc("answer, 7 bytes", sys_rc(be->write(qfd, r, 7)));
	tr_answer("a code the kernel does not take", qfd, c1, 5);
	tr_answer("a cookie never handed out", qfd, 0x7fff0000, 0);
	tr_answer("cookie 0", qfd, 0, 0);
	tr_answer("answer", qfd, c1, IOMMUFD_PAGE_RESP_SUCCESS);
	tr_answer("answered already", qfd, c1, IOMMUFD_PAGE_RESP_SUCCESS);
	/* Stops at the first bad one: what it took before is the result */
	r[0] = (struct iommu_hwpt_page_response){ .cookie = c2 };
	r[1] = (struct iommu_hwpt_page_response){ .cookie = c1 };
	tr_rc("two, the second bad", sys_rc(be->write(qfd, r, sizeof(r))));
	tr_counters("counters", w.fd, w.dev);
	tr_rc("destroy while a HWPT uses it", mock_destroy(w.fd, id));
	tr_rc("detach", mock_replace(w.fd, w.stdev, w.ioas));
	tr_counters("detached", w.fd, w.dev);
	tr_rc("destroy the HWPT", mock_destroy(w.fd, hwpt));
	tr_rc("destroy while its fd is open", mock_destroy(w.fd, id));
	be->close(qfd);
	tr_rc("destroy", mock_destroy(w.fd, id));
	world_end(&w);
}

/*
 * The header format: a sequence number given at read time, across the
 * wrap; whole groups; a read shorter than a header
 */
static void header_sequence(void)
{
	uint32_t id, hwpt;
	struct world w;
	int qfd;

	if (world_new(&w) ||
	    world_queue(&w, IOF_FAULT_QUEUE_HEADER, -1, 0, &id, &qfd, &hwpt))
		return;
	tr_rc("next sequence INT_MAX - 1",
	      mock_eventq_sequence(w.fd, id, INT_MAX - 1));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 1, 2, 0x1000));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 2, 3, 0x8000));
	tr_read_fault("7 bytes", qfd, 7, true);
	tr_read_fault("a header", qfd, 8, true);
	tr_read_fault("one group and a half", qfd, 2 * HMSG + 20, true);
	tr_fdinfo("one group read", qfd);
	tr_read_fault("the other", qfd, 16 * HMSG, true);
	tr_read_fault("empty", qfd, 16 * HMSG, true);
	tr_fdinfo("both read", qfd);
	world_end(&w);
}

/*
 * A bounded queue: what does not fit whole is answered SUCCESS at once
 * (the device retries) and shows as lost: a LOST header at the tail, a gap
 * before the next fault read. A group larger than the depth never fits.
 */
static void bounded_overflow(void)
{
	uint32_t id, hwpt, i;
	struct world w;
	int qfd;

	if (world_new(&w) ||
	    world_queue(&w, IOF_FAULT_QUEUE_BOUNDED, -1, 4, &id, &qfd, &hwpt))
		return;
	tr_rc("2 faults", mock_trigger_iopf(w.fd, w.dev, 0, 1, 2, 0x1000));
	tr_rc("2 faults", mock_trigger_iopf(w.fd, w.dev, 0, 2, 2, 0x2000));
	tr_rc("1 fault, full", mock_trigger_iopf(w.fd, w.dev, 0, 3, 1, 0x3000));
	tr_rc("3 faults, full", mock_trigger_iopf(w.fd, w.dev, 0, 4, 3, 0x4000));
	tr_counters("2 groups lost", w.fd, w.dev);
	tr_fdinfo("full", qfd);
	tr_read_fault("everything", qfd, 16 * HMSG, true);
	for (i = 0; i != tr_nr_cookies; i++)
		tr_answer("answer", qfd, tr_cookies[i],
			  IOMMUFD_PAGE_RESP_SUCCESS);
	tr_rc("1 fault", mock_trigger_iopf(w.fd, w.dev, 0, 5, 1, 0x5000));
	tr_rc("5 faults, more than the depth",
	      mock_trigger_iopf(w.fd, w.dev, 0, 6, 5, 0x6000));
	tr_rc("1 fault", mock_trigger_iopf(w.fd, w.dev, 0, 7, 1, 0x7000));
	tr_read_fault("a gap", qfd, 16 * HMSG, true);
	tr_fdinfo("read", qfd);
	tr_counters("counters", w.fd, w.dev);
	world_end(&w);
}

/*
 * The VMM's own detach withdraws unread faults: answered INVALID, and no
 * sequence numbers taken; the cookies of groups read become unknown
 */
static void withdraw_takes_no_sequence(void)
{
	const uint32_t flags = k73() ? 0 : IOF_FAULT_QUEUE_HEADER;
	const size_t one = k73() ? PGF : HMSG;
	uint32_t id, hwpt;
	struct world w;
	int qfd;

	if (world_new(&w) || world_queue(&w, flags, -1, 0, &id, &qfd, &hwpt))
		return;
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 1, 1, 0x1000));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 2, 1, 0x2000));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 3, 1, 0x3000));
	tr_read_fault("one", qfd, one, flags);
	tr_rc("detach", mock_replace(w.fd, w.stdev, w.ioas));
	tr_counters("withdrawn", w.fd, w.dev);
	tr_answer("a late answer", qfd, tr_last_cookie,
		  IOMMUFD_PAGE_RESP_SUCCESS);
	tr_read_fault("nothing left", qfd, 4 * one, flags);
	tr_rc("attach again", mock_replace(w.fd, w.stdev, hwpt));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 4, 1, 0x4000));
	tr_read_fault("no gap", qfd, 4 * one, flags);
	tr_fdinfo("after", qfd);
	world_end(&w);
}

/*
 * Cookies: 7.3 hands out the lowest free index, so a late answer can
 * answer the next group; the series' carry a generation and come back
 * only after 2^17 groups
 */
static void cookies_window(void)
{
	uint32_t id, hwpt, old;
	struct world w;
	int qfd;

	if (world_new(&w) || world_queue(&w, 0, -1, 0, &id, &qfd, &hwpt))
		return;
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 1, 1, 0x1000));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 2, 1, 0x2000));
	tr_read_fault("two", qfd, 4 * PGF, false);
	old = tr_cookies[0];
	/* The kernel answers the first on a detach */
	tr_rc("detach", mock_replace(w.fd, w.stdev, w.ioas));
	tr_rc("attach", mock_replace(w.fd, w.stdev, hwpt));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 3, 1, 0x3000));
	tr_read_fault("the next", qfd, 4 * PGF, false);
	/* 7.3: the same cookie, and this answers another group */
	tr("the next has the first's cookie: %s",
	   tr_last_cookie == old ? "yes" : "no");
	SCHECK(k73() == (tr_last_cookie == old));
	tr_answer("a late answer to the first", qfd, old,
		  IOMMUFD_PAGE_RESP_SUCCESS);
	tr_answer("the next's own", qfd, tr_last_cookie,
		  IOMMUFD_PAGE_RESP_INVALID);
	/* The series: 2^17 groups later (the mock skips there) */
	tr_rc("generation of the first",
	      mock_cookie_gen(w.fd, id, old >> 15));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 4, 1, 0x4000));
	tr_read_fault("2^17 on", qfd, 4 * PGF, false);
	tr("it has the first's cookie: %s", tr_last_cookie == old ? "yes" : "no");
	tr_answer("answer", qfd, tr_last_cookie, IOMMUFD_PAGE_RESP_SUCCESS);
	tr_counters("counters", w.fd, w.dev);
	world_end(&w);
}

/*
 * The cap of groups awaiting an answer (32767): at it, read() fails with
 * EAGAIN and leaves the group queued, poll() says not readable; an answer
 * that frees a slot makes it readable again, and signals the eventfd
 */
static void cap_eagain(void)
{
	const uint32_t cap = 32767;
	uint32_t id, hwpt, i, groups = 0, first = 0;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), qfd;
	struct world w;
	size_t len = 4096 * PGF;
	char *buf = malloc(len);
	ssize_t n;
	int reads = 0;

	if (world_new(&w) ||
	    world_queue(&w, IOF_FAULT_QUEUE_EVENTFD, efd, 0, &id, &qfd, &hwpt))
		goto out;
	for (i = 0; i <= cap; i++)
		if (mock_trigger_iopf(w.fd, w.dev, 0, i % 512, 1, 0))
			break;
	tr("page requests made: %u", i);
	tr_eventfd("before reading", efd);
	while ((n = be->read(qfd, buf, len)) > 0) {
		if (!groups)
			memcpy(&first, buf + offsetof(struct iommu_hwpt_pgfault,
						       cookie), 4);
		groups += n / PGF;
		reads++;
	}
	tr("groups read: %u in %d reads, then: %s", groups, reads,
	   n < 0 ? strerrorname_np(errno) : "0");
	SCHECK(groups == cap && n < 0 && errno == EAGAIN);
	tr_poll("at the cap", qfd);
	tr_read_fault("at the cap", qfd, PGF, false);
	tr_fdinfo("at the cap", qfd);
	tr_eventfd("at the cap", efd);
	tr_answer("one answer", qfd, first, IOMMUFD_PAGE_RESP_SUCCESS);
	tr_poll("a slot free", qfd);
	tr_eventfd("a slot free", efd);
	tr_read_fault("the last", qfd, PGF, false);
	tr_read_fault("at the cap again", qfd, PGF, false);
	tr_counters("counters", w.fd, w.dev);
	world_end(&w);
out:
	close(efd);
	free(buf);
}

/*
 * The eventfd is signalled on the edge from nothing readable to readable:
 * not once per fault, not for an answer that makes nothing readable; a
 * LOST header appearing is readable
 */
static void eventfd_edges(void)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), qfd, bfd;
	uint32_t id, hwpt, bid, bhwpt;
	struct world w;

	if (world_new(&w) ||
	    world_queue(&w, IOF_FAULT_QUEUE_EVENTFD, efd, 0, &id, &qfd, &hwpt))
		goto out;
	tr_eventfd("new", efd);
	tr_rc("3 faults", mock_trigger_iopf(w.fd, w.dev, 0, 1, 3, 0x1000));
	tr_eventfd("a group", efd);
	tr_rc("1 fault", mock_trigger_iopf(w.fd, w.dev, 0, 2, 1, 0x1000));
	tr_eventfd("another while readable", efd);
	tr_read_fault("one", qfd, 3 * PGF, false);
	tr_rc("1 fault", mock_trigger_iopf(w.fd, w.dev, 0, 3, 1, 0x1000));
	tr_eventfd("another, not empty", efd);
	tr_read_fault("the rest", qfd, 8 * PGF, false);
	tr_answer("answer", qfd, tr_cookies[0], IOMMUFD_PAGE_RESP_SUCCESS);
	tr_eventfd("an answer, nothing waits", efd);
	tr_rc("1 fault", mock_trigger_iopf(w.fd, w.dev, 0, 4, 1, 0x1000));
	tr_eventfd("empty, then a group", efd);
	/* A bounded queue of depth 1: a loss into an empty queue */
	tr_rc("detach", mock_replace(w.fd, w.stdev, w.ioas));
	tr_eventfd("detached", efd);
	if (world_queue(&w, IOF_FAULT_QUEUE_EVENTFD | IOF_FAULT_QUEUE_BOUNDED,
			efd, 1, &bid, &bfd, &bhwpt))
		goto end;
	tr_rc("2 faults into depth 1",
	      mock_trigger_iopf(w.fd, w.dev, 0, 5, 2, 0x1000));
	tr_eventfd("a LOST header", efd);
	tr_read_fault("it", bfd, 4 * HMSG, true);
end:
	world_end(&w);
out:
	close(efd);
}

/* The series' one-step IOPF-capable HWPT, and 7.3's answers to it */
static void one_step_hwpt(void)
{
	struct iof_uapi_hwpt_alloc c;
	struct world w;
	long rc;

	uint32_t vdev;

	if (world_new(&w))
		return;
	/* A nested HWPT of a vIOMMU: the device needs its vDEVICE there */
	tr_rc("vDEVICE", mock_vdevice_alloc(w.fd, w.viommu, w.dev, 0x42,
					    &vdev));
#define HWPT(sz, fl, ff, fid)                                              \
	((struct iof_uapi_hwpt_alloc){                                     \
		.size = (sz), .flags = (fl), .dev_id = w.dev,              \
		.pt_id = w.viommu, .data_type = IOMMU_HWPT_DATA_SELFTEST, \
		.data_len = sizeof(mock_s1_data),                          \
		.data_uptr = (uintptr_t)&mock_s1_data, .fault_id = (fid), \
		.fault_flags = (ff) })
	c = HWPT(72, IOF_HWPT_ALLOC_IOPF_CAPABLE, IOF_FAULT_QUEUE_HEADER, 0);
	tr_rc("with a header queue",
	      rc = sys_rc(be->ioctl(w.fd, IOMMU_HWPT_ALLOC, &c)));
	SCHECK(one_step() ? !rc : not_supported(-rc));
	if (!rc) {
		tr_name(c.out_hwpt_id, "hwpt");
		tr_name(c.out_fault_id, "queue");
		tr_rc("attach", mock_replace(w.fd, w.stdev, c.out_hwpt_id));
		tr_rc("page request",
		      mock_trigger_iopf(w.fd, w.dev, 0, 1, 1, 0x1000));
		tr_read_fault("its queue", c.out_fault_fd, 4 * HMSG, true);
		tr_fdinfo("its queue", c.out_fault_fd);
		tr_rc("destroy the queue first",
		      mock_destroy(w.fd, c.out_fault_id));
	}
	c = HWPT(72, IOF_HWPT_ALLOC_IOPF_CAPABLE, 0, 0);
	tr_rc("with 7.3's queue", sys_rc(be->ioctl(w.fd, IOMMU_HWPT_ALLOC, &c)));
	c = HWPT(72, IOF_HWPT_ALLOC_IOPF_CAPABLE | IOMMU_HWPT_FAULT_ID_VALID,
		 0, 1);
	tr_rc("and FAULT_ID_VALID", sys_rc(be->ioctl(w.fd, IOMMU_HWPT_ALLOC, &c)));
	c = HWPT(48, IOF_HWPT_ALLOC_IOPF_CAPABLE, 0, 0);
	tr_rc("in 7.3's 48 bytes", sys_rc(be->ioctl(w.fd, IOMMU_HWPT_ALLOC, &c)));
	c = HWPT(72, 0, IOF_FAULT_QUEUE_HEADER, 0);
	tr_rc("fault_flags without the flag",
	      sys_rc(be->ioctl(w.fd, IOMMU_HWPT_ALLOC, &c)));
#undef HWPT
	world_end(&w);
}

const struct scenario scen_fault[] = {
	{ "fault_alloc_rules", fault_alloc_rules, ON_BOTH },
	{ "fault_read_write", fault_read_write, ON_BOTH },
	{ "header_sequence", header_sequence, ON_V3 },
	{ "bounded_overflow", bounded_overflow, ON_V3 },
	{ "withdraw_takes_no_sequence", withdraw_takes_no_sequence, ON_BOTH },
	{ "cookies_window", cookies_window, ON_BOTH },
	{ "cap_eagain", cap_eagain, ON_V3 },
	{ "eventfd_edges", eventfd_edges, ON_V3 },
	{ "one_step_hwpt", one_step_hwpt, ON_BOTH },
};
const unsigned int nr_scen_fault = sizeof(scen_fault) / sizeof(scen_fault[0]);
