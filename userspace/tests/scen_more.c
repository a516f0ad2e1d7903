// SPDX-License-Identifier: MIT
/*
 * Scenarios of the vEVENTQ's uAPI, and of the library on the kernel: its
 * probe and fallbacks, the cap (item 8), a cookie that comes back (B2) and
 * a group it has no memory for (B3). See scen.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "iofault.h"
#include "iofault_internal.h"
#include "mock.h"
#include "scen.h"
#include "uapi.h"

#define EVT (sizeof(struct iommufd_vevent_header) + 4)

static long veventq_raw(struct world *w, uint32_t size, uint32_t flags,
			uint32_t type, uint32_t depth, int32_t efd,
			uint32_t *id, int *vfd)
{
	struct iof_uapi_veventq_alloc c = {
		.size = size,
		.flags = flags,
		.viommu_id = w->viommu,
		.type = type,
		.veventq_depth = depth,
		.eventfd = efd,
	};
	long rc = sys_rc(be->ioctl(w->fd, IOMMU_VEVENTQ_ALLOC, &c));

	*id = c.out_veventq_id;
	*vfd = c.out_veventq_fd;
	return rc;
}

static void try_veventq(struct world *w, const char *what, uint32_t size,
			uint32_t flags, uint32_t type, uint32_t depth,
			int32_t efd)
{
	uint32_t id;
	int vfd;
	long rc = veventq_raw(w, size, flags, type, depth, efd, &id, &vfd);

	tr_rc(what, rc);
	if (!rc) {
		be->close(vfd);
		tr_rc("  destroyed", mock_destroy(w->fd, id));
	}
}

static void veventq_rules(void)
{
	const uint32_t st = IOMMU_VEVENTQ_TYPE_SELFTEST;
	int efd = eventfd(0, EFD_CLOEXEC), p[2], vfd;
	struct world w;
	uint32_t id;

	if (world_new(&w) || pipe(p))
		return;
	try_veventq(&w, "32 bytes", 32, 0, st, 8, 0);
	try_veventq(&w, "40 bytes of zeros", 40, 0, st, 8, 0);
	try_veventq(&w, "eventfd", 40, IOF_VEVENTQ_ALLOC_EVENTFD, st, 8, efd);
	try_veventq(&w, "eventfd in 32 bytes", 32, IOF_VEVENTQ_ALLOC_EVENTFD,
		    st, 8, 0);
	try_veventq(&w, "an eventfd without its flag", 40, 0, st, 8, efd);
	try_veventq(&w, "eventfd, a pipe", 40, IOF_VEVENTQ_ALLOC_EVENTFD, st,
		    8, p[0]);
	try_veventq(&w, "an unknown flag", 40, 1U << 5, st, 8, 0);
	try_veventq(&w, "type 0", 32, 0, 0, 8, 0);
	/* The series refuses a type the vIOMMU's driver does not produce */
	try_veventq(&w, "an SMMUv3 type on the mock", 32, 0,
		    IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, 8, 0);
	try_veventq(&w, "depth 0", 32, 0, st, 0, 0);
	try_veventq(&w, "depth 2^19 + 1", 32, 0, st, (1U << 19) + 1, 0);
	tr_rc("one", veventq_raw(&w, 32, 0, st, 8, 0, &id, &vfd));
	try_veventq(&w, "a second of the type", 32, 0, st, 8, 0);
	close(p[0]);
	close(p[1]);
	close(efd);
	world_end(&w);
}

/*
 * Events up to the depth, then a LOST header at the tail carrying the last
 * one lost; a gap before the next; the eventfd's edges; fdinfo
 */
static void veventq_events(void)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), vfd;
	uint32_t id, vdev, hwpt;
	struct world w;

	if (world_new(&w))
		goto out;
	tr_rc("vDEVICE", mock_vdevice_alloc(w.fd, w.viommu, w.dev, 0x42,
					    &vdev));
	/* The mock reports for a device attached to a HWPT of the vIOMMU */
	tr_rc("nested HWPT", mock_nested_alloc(w.fd, w.dev, w.viommu, 0,
					       &hwpt));
	tr_rc("attach", mock_replace(w.fd, w.stdev, hwpt));
	tr_rc("vEVENTQ, depth 3",
	      veventq_raw(&w, k73() ? 32 : 40,
			  k73() ? 0 : IOF_VEVENTQ_ALLOC_EVENTFD,
			  IOMMU_VEVENTQ_TYPE_SELFTEST, 3, k73() ? 0 : efd,
			  &id, &vfd));
	tr_eventfd("new", efd);
	tr_poll("new", vfd);
	tr_rc("5 events", mock_trigger_vevents(w.fd, w.dev, 5));
	tr_eventfd("5 events", efd);
	tr_rc("1 more", mock_trigger_vevents(w.fd, w.dev, 1));
	tr_eventfd("readable already", efd);
	tr_fdinfo("full", vfd);
	tr_read_vevent("7 bytes", vfd, 7);
	tr_read_vevent("a header", vfd, 8);
	tr_read_vevent("one and a half", vfd, EVT + 6);
	tr_read_vevent("the rest", vfd, 16 * EVT);
	tr_poll("read", vfd);
	tr_rc("1 event", mock_trigger_vevents(w.fd, w.dev, 1));
	tr_eventfd("empty, then an event", efd);
	tr_read_vevent("after the loss", vfd, 16 * EVT);
	tr_fdinfo("read", vfd);
	tr_rc("detach", mock_replace(w.fd, w.stdev, w.ioas));
	tr_rc("an event, detached", mock_trigger_vevents(w.fd, w.dev, 1));
	world_end(&w);
out:
	close(efd);
}

/* A library queue, a nested HWPT reporting to it, the device attached */
static struct iof_queue *lib_queue(struct world *w, const struct iof_config *c,
				   uint32_t *hwpt)
{
	struct iof_queue *q = iof_queue_create(w->fd, c);

	if (!q) {
		tr_rc("iof_queue_create", -errno);
		return NULL;
	}
	tr_name(iof_queue_id(q), "queue");
	tr("queue flags %#x depth %u", iof_queue_flags(q), iof_queue_depth(q));
	tr_rc("nested HWPT", mock_nested_alloc(w->fd, w->dev, w->parent,
					       iof_queue_id(q), hwpt));
	tr_rc("attach", mock_replace(w->fd, w->stdev, *hwpt));
	return q;
}

/* The library's probe and fallbacks, as a VMM meets them */
static void lib_probe_fallback(void)
{
	const struct iof_config cfg = {
		.flags = IOF_FAULT_QUEUE_EVENTFD | IOF_FAULT_QUEUE_BOUNDED,
		.depth = 16,
	};
	const struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.flags = IOF_VEVENTQ_EVENTFD,
	};
	struct iof_veventq *vq;
	struct iof_queue *q;
	struct iof_caps caps;
	struct world w;
	uint32_t hwpt, vdev;

	if (world_new(&w))
		return;
	tr_rc("vDEVICE", mock_vdevice_alloc(w.fd, w.viommu, w.dev, 0x42,
					    &vdev));
	tr_rc("iof_probe", iof_probe(w.fd, &caps));
	tr("caps: eventfd %d header %d bounded %d", caps.fault_eventfd,
	   caps.fault_header, caps.fault_bounded);
	q = iof_queue_alloc_nested(w.fd, w.dev, w.viommu,
				   IOMMU_HWPT_DATA_SELFTEST, &mock_s1_data,
				   sizeof(mock_s1_data), &cfg, &hwpt);
	SCHECK(q);
	if (q) {
		tr("one step %d, flags %#x, depth %u, waits on %s",
		   iof_queue_one_step(q), iof_queue_flags(q),
		   iof_queue_depth(q),
		   iof_queue_wait_fd(q) == iof_queue_fd(q) ? "its fd" :
							      "an eventfd");
		SCHECK(iof_queue_one_step(q) == one_step());
		tr_rc("attach", mock_replace(w.fd, w.stdev, hwpt));
		tr_rc("page request",
		      mock_trigger_iopf(w.fd, w.dev, 0, 1, 1, 0x1000));
		tr_rc("wait", iof_queue_wait(q, 0));
		tr_rc("dispatch", iof_queue_dispatch(q, NULL, NULL));
		tr_stats("queue", q);
	}
	iof_probe(w.fd, &caps);
	tr("learned: one step %d", caps.iopf_capable);
	vq = iof_veventq_create(w.fd, w.viommu, &vcfg);
	SCHECK(vq);
	if (vq)
		tr("vEVENTQ flags %#x", iof_veventq_flags(vq));
	iof_probe(w.fd, &caps);
	tr("learned: vEVENTQ eventfd %d", caps.veventq_eventfd);
	world_end(&w);
}

static uint32_t *stall_cookies;
static unsigned int nr_stall;

static int keep_cookie(struct iof_queue *q, const struct iof_group *g,
		       void *arg)
{
	stall_cookies[nr_stall++] = g->cookie;
	return 0;
}

static const struct iof_ops keep_ops = { .page_request = keep_cookie };

/*
 * Item 8: at the cap the dispatch says -EAGAIN (v2's library expected
 * EBUSY and took EAGAIN for an empty queue); once an answer is accepted
 * the eventfd fires and the waiting group is read; none is stranded
 */
static void lib_stall(void)
{
	const struct iof_config cfg = {
		.flags = IOF_FAULT_QUEUE_EVENTFD | IOF_FAULT_QUEUE_HEADER,
		.read_size = 4096 * (sizeof(struct iommufd_vevent_header) +
				     sizeof(struct iommu_hwpt_pgfault)),
		.max_reads = 100000,
	};
	const uint32_t cap = 32767;
	struct iof_queue *q;
	struct world w;
	uint32_t hwpt, i;
	int n, total = 0;

	stall_cookies = calloc(cap + 2, sizeof(*stall_cookies));
	nr_stall = 0;
	if (world_new(&w) || !(q = lib_queue(&w, &cfg, &hwpt)))
		goto out;
	for (i = 0; i <= cap; i++)
		if (mock_trigger_iopf(w.fd, w.dev, 0, i % 512, 1, 0))
			break;
	tr("page requests made: %u", i);
	while ((n = iof_queue_dispatch(q, &keep_ops, NULL)) > 0)
		total += n;
	tr("dispatched %d, then %s", total, strerrorname_np(-n));
	SCHECK(n == -EAGAIN && total == (int)cap);
	SCHECK(iof_queue_stalled(q));
	tr_rc("wait at the cap", iof_queue_wait(q, 0));
	tr_poll("its fd at the cap", iof_queue_fd(q));
	tr_rc("answer one", iof_answer(q, stall_cookies[0], IOF_RESP_SUCCESS));
	tr_rc("flush", iof_flush(q));
	SCHECK(!iof_queue_stalled(q));
	tr_rc("wait after the answer", iof_queue_wait(q, 0));
	tr_poll("its fd", iof_queue_fd(q));
	tr_rc("dispatch", iof_queue_dispatch(q, &keep_ops, NULL));
	for (i = 1; i < nr_stall; i++)
		if (iof_answer(q, stall_cookies[i], IOF_RESP_SUCCESS))
			break;
	tr("answered all: %s", i == nr_stall ? "yes" : "no");
	tr_rc("flush", iof_flush(q));
	tr_stats("queue", q);
	tr_counters("counters", w.fd, w.dev);
	world_end(&w);
out:
	free(stall_cookies);
}

static int take(struct iof_queue *q, const struct iof_group *g, void *arg)
{
	tr("delivered: grpid %u cookie %#x", g->grpid, g->cookie);
	return 0;
}

static const struct iof_ops take_ops = { .page_request = take };

/*
 * B2: the kernel answered a group behind the library's back (a detach
 * nobody passed on), and hands its cookie out again (7.3 at once, the
 * series after 2^17 groups): the live group must be delivered, answered
 */
static void lib_stale_cookie(void)
{
	struct iof_queue *q;
	struct world w;
	uint32_t hwpt;

	if (world_new(&w) || !(q = lib_queue(&w, NULL, &hwpt)))
		return;
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 1, 1, 0x1000));
	tr_rc("dispatch", iof_queue_dispatch(q, &take_ops, NULL));
	tr_rc("detach", mock_replace(w.fd, w.stdev, w.ioas));
	tr_rc("attach", mock_replace(w.fd, w.stdev, hwpt));
	/* The series: skip to the generation of the first cookie */
	tr_rc("cookie generation 0", mock_cookie_gen(w.fd, iof_queue_id(q), 0));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 2, 1, 0x2000));
	tr_rc("dispatch", iof_queue_dispatch(q, &take_ops, NULL));
	tr_rc("answer it", iof_answer_by(q, w.dev, false, 0, 2,
					 IOF_RESP_SUCCESS));
	tr_rc("flush", iof_flush(q));
	tr_stats("queue", q);
	SCHECK(iof_queue_stats(q)->groups == 2 &&
	       iof_queue_stats(q)->answered == 1 &&
	       !iof_queue_stats(q)->refused);
	tr_counters("counters", w.fd, w.dev);
	world_end(&w);
}

static bool fail_group(const char *site)
{
	return !strcmp(site, "group");
}

/*
 * B3: no memory for a group the library read: it answers it INVALID at
 * once. The kernel shows it: the group's slot is free for the next one.
 */
static void lib_nomem(void)
{
	struct iof_queue *q;
	struct world w;
	uint32_t hwpt;

	if (world_new(&w) || !(q = lib_queue(&w, NULL, &hwpt)))
		return;
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 1, 1, 0x1000));
	iof_set_alloc_fail(fail_group);
	tr_rc("dispatch without memory", iof_queue_dispatch(q, &take_ops, NULL));
	iof_set_alloc_fail(NULL);
	tr_stats("queue", q);
	tr_counters("counters", w.fd, w.dev);
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 2, 1, 0x2000));
	tr_read_fault("the next", iof_queue_fd(q),
		      sizeof(struct iommu_hwpt_pgfault), false);
	/* Slot 1 free again: the first was answered, not stranded */
	SCHECK((tr_last_cookie & 0x7fff) == 1);
	world_end(&w);
}

const struct scenario scen_more[] = {
	{ "veventq_rules", veventq_rules, ON_BOTH },
	{ "veventq_events", veventq_events, ON_BOTH },
	{ "lib_probe_fallback", lib_probe_fallback, ON_BOTH },
	{ "lib_stall", lib_stall, ON_V3 },
	{ "lib_stale_cookie", lib_stale_cookie, ON_BOTH },
	{ "lib_nomem", lib_nomem, ON_BOTH },
};
const unsigned int nr_scen_more = sizeof(scen_more) / sizeof(scen_more[0]);
