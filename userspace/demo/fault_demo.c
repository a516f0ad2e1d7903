// SPDX-License-Identifier: MIT
/*
 * fault_demo: a VMM's fault service at work, end to end, on the iommufd
 * selftest mock driver.
 *
 * The guest has a virtual IOMMU (a mock vIOMMU) with two assigned devices:
 *
 * - device A can do PRI and PASIDs. Its nested HWPT was allocated together
 *   with a bounded fault queue and an eventfd, in one IOMMU_HWPT_ALLOC
 *   (IOPF_CAPABLE). It makes page requests over two PASIDs; the guest's
 *   fault handler maps what falls in its "mapped window" (SUCCESS) and
 *   refuses the rest (INVALID). While the guest is busy, a burst goes past
 *   the queue's depth: the kernel answers what does not fit SUCCESS itself,
 *   as a full page request queue does (the device retries), and the
 *   sequence numbers say how much that was.
 * - device B cannot do PRI (MOCK_FLAGS_DEVICE_NO_IOPF): a fault capable HWPT
 *   is refused, as VT-d refuses it without PRI. Its unrecoverable stage-1
 *   faults arrive through the vIOMMU's vEVENTQ, in bulk, one burst of them
 *   past the vEVENTQ's depth.
 *
 * One epoll loop, built on libiofault, serves both queues. The closing table
 * puts what the VMM saw next to what the mock devices counted
 * (IOMMU_TEST_OP_IOPF_COUNTERS) and what the kernel says of the queue
 * (fdinfo); any mismatch makes the exit status non-zero.
 *
 *   fault_demo [--tap]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "iofault.h"
#include "mock.h"

#define DEPTH		32		/* faults the fault queue holds */
#define VDEPTH		64		/* vEVENTs the vEVENTQ holds */
#define WINDOW_START	0x40000000ull	/* what the guest's stage 1 maps */
#define WINDOW_END	0x48000000ull
#define STREAM_GROUPS	240
#define BURST_GROUPS	(DEPTH + 40)
#define MAX_GRPID	512
#define VIRT_A		0x0108		/* guest source-ids: 01:01.0, 01:02.0 */
#define VIRT_B		0x0110
#define VEVENTS_EARLY	12
#define VEVENTS_BURST	(VDEPTH + 36)

static struct {
	int fd;
	uint32_t ioas_id, parent_id, viommu_id;
	uint32_t stdev_a, dev_a, vdev_a, hwpt_a;
	uint32_t stdev_b, dev_b, vdev_b, hwpt_b;
	struct iof_queue *q;
	struct iof_veventq *vq;
	struct iof_caps caps;

	/* The device thread, and the guest being busy */
	atomic_bool device_done, paused, pause_seen;
	unsigned int groups_made, vevents_made, b_refused;
	uint32_t nfaults[MAX_GRPID];	/* faults of each group made */
	uint64_t t_report[MAX_GRPID];	/* when the device reported it */

	/* The service */
	bool delivered[MAX_GRPID];
	uint32_t answering[MAX_GRPID];	/* answered, not yet written */
	unsigned int nr_answering;
	uint64_t rtt[MAX_GRPID];	/* report to answer written, ns */
	unsigned int nr_rtt;
	unsigned int success, invalid, lost_faults, lost_headers, unmatched;
	unsigned int vevents, vlost, bad_virt_id;
	unsigned int shown, vshown;
} d;

static void fail(const char *what, int err)
{
	fprintf(stderr, "fault_demo: %s: %s\n", what, strerror(err));
	exit(2);
}

static void check(const char *what, int rc)
{
	if (rc)
		fail(what, -rc);
}

static void page_request(uint32_t pasid, uint32_t grpid, uint32_t n,
			 uint64_t addr)
{
	d.nfaults[grpid] = n;
	d.t_report[grpid] = now_ns();
	check("page request", mock_trigger_iopf(d.fd, d.dev_a, pasid, grpid,
						n, addr));
	d.groups_made++;
}

static void vevents(uint32_t count)
{
	check("vEVENTs", mock_trigger_vevents(d.fd, d.dev_b, count));
	d.vevents_made += count;
}

/* The guest is busy: the service stops reading until it is not */
static void guest_busy(bool busy)
{
	atomic_store(&d.paused, busy);
	while (busy && !atomic_load(&d.pause_seen))
		usleep(1000);
}

/* The devices: what an assigned NIC and a plain DMA engine might do */
static void *devices(void *arg)
{
	uint32_t grpid = 0, i;
	uint64_t seed = 42, addr;

	for (i = 0; i != STREAM_GROUPS; i++, grpid++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		/* One in five accesses falls outside what the guest mapped */
		addr = (seed >> 33) % 5 ?
			       WINDOW_START + ((seed >> 20) % 0x8000) * 4096 :
			       WINDOW_END + ((seed >> 20) % 0x1000) * 4096;
		page_request(1 + i % 2, grpid, 1 + (seed >> 40) % 3, addr);
		usleep(500);
		/* B's DMA hits a hole in its stage 1 now and then */
		if (i == STREAM_GROUPS / 2)
			vevents(VEVENTS_EARLY);
	}

	/* A burst while the guest is busy: more than either queue holds */
	guest_busy(true);
	for (i = 0; i != BURST_GROUPS; i++, grpid++)
		page_request(2, grpid, 1, WINDOW_START + i * 4096);
	vevents(VEVENTS_BURST);
	guest_busy(false);
	atomic_store(&d.device_done, true);
	return NULL;
}

/*
 * The guest's fault handler: it can map what is in its window. Its page
 * group response names the group as a guest's does, by device, PASID and
 * page request group index, not by the kernel's cookie.
 */
static int on_group(struct iof_queue *q, const struct iof_group *g,
		    void *arg)
{
	bool ok = true;
	uint32_t i;

	for (i = 0; i != g->nr_faults; i++)
		if (g->faults[i].addr < WINDOW_START ||
		    g->faults[i].addr >= WINDOW_END)
			ok = false;
	if (iof_answer_by(q, g->dev_id, g->pasid_valid, g->pasid, g->grpid,
			  ok ? IOF_RESP_SUCCESS : IOF_RESP_INVALID))
		d.unmatched++;
	if (ok)
		d.success++;
	else
		d.invalid++;
	if (g->grpid < MAX_GRPID) {
		d.delivered[g->grpid] = true;
		d.answering[d.nr_answering++] = g->grpid;
	}
	/* The first few, and a couple the guest refuses */
	if (d.shown < 4 || (!ok && d.shown < 6)) {
		d.shown++;
		printf("  page request  seq %-4u dev %u pasid %u group %-3u %u page%s at 0x%llx -> %s\n",
		       g->seq, g->dev_id, g->pasid, g->grpid, g->nr_faults,
		       g->nr_faults > 1 ? "s" : " ",
		       (unsigned long long)g->faults[0].addr,
		       ok ? "SUCCESS (guest mapped it)" :
			    "INVALID (outside the guest's window)");
		if (d.shown == 6)
			printf("  ... (further page requests answered quietly)\n");
	}
	/* The guest took it: it answered above */
	return 0;
}

static void on_lost(struct iof_queue *q, uint32_t seq, uint32_t count,
		    void *arg)
{
	d.lost_faults += count;
	d.lost_headers++;
	printf("  LOST          seq %u-%u: %u faults did not fit (the kernel answered them SUCCESS: retried) -> guest's page request overflow\n",
	       seq, seq + count - 1, count);
}

static const struct iof_ops ops = {
	.page_request = on_group,
	.lost = on_lost,
};

/* What a guest's virtual IOMMU would record */
static void on_vevent(struct iof_veventq *q, const struct iof_vevent *ev,
		      void *arg)
{
	d.vevents++;
	if (!ev->decoded || ev->u.selftest.virt_id != VIRT_B)
		d.bad_virt_id++;
	if (d.vshown++ < 3)
		printf("  UNRECOVERABLE seq %-4u vDEVICE %02x:%02x.%x (dev %u, no PRI) -> vIOMMU fault record\n",
		       ev->seq, ev->u.selftest.virt_id >> 8,
		       (ev->u.selftest.virt_id >> 3) & 0x1f,
		       ev->u.selftest.virt_id & 7, d.dev_b);
	else if (d.vshown == 4)
		printf("  ... (further unrecoverable faults recorded quietly)\n");
}

static void on_vlost(struct iof_veventq *q, uint32_t seq, uint32_t count,
		     void *arg)
{
	d.vlost += count;
	printf("  LOST          vEVENT seq %u-%u: %u unrecoverable faults past the vEVENTQ's depth -> vIOMMU fault overflow\n",
	       seq, seq + count - 1, count);
}

static const struct iof_vevent_ops vops = {
	.event = on_vevent,
	.lost = on_vlost,
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void setup(void)
{
	struct iof_config cfg = {
		.flags = IOF_FAULT_QUEUE_BOUNDED | IOF_FAULT_QUEUE_EVENTFD,
		.depth = DEPTH,
	};
	struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.depth = VDEPTH,
		.flags = IOF_VEVENTQ_EVENTFD,
	};
	int rc_attach_b, rc_iopf_b;
	uint32_t hwpt;

	d.fd = mock_open();
	if (d.fd < 0)
		fail("/dev/iommu", -d.fd);
	check("probe", iof_probe(d.fd, &d.caps));
	check("IOAS", mock_ioas_alloc(d.fd, &d.ioas_id));
	check("device A", mock_device(d.fd, d.ioas_id, MOCK_FLAGS_DEVICE_PASID,
				      &d.stdev_a, &d.dev_a));
	check("device B", mock_device(d.fd, d.ioas_id,
				      MOCK_FLAGS_DEVICE_NO_IOPF, &d.stdev_b,
				      &d.dev_b));
	check("nesting parent", mock_parent_alloc(d.fd, d.dev_a, d.ioas_id,
						  &d.parent_id));
	check("vIOMMU", mock_viommu_alloc(d.fd, d.dev_a, d.parent_id,
					  &d.viommu_id));
	check("vDEVICE A", mock_vdevice_alloc(d.fd, d.viommu_id, d.dev_a,
					      VIRT_A, &d.vdev_a));
	check("vDEVICE B", mock_vdevice_alloc(d.fd, d.viommu_id, d.dev_b,
					      VIRT_B, &d.vdev_b));

	d.q = iof_queue_alloc_nested(d.fd, d.dev_a, d.viommu_id,
				     IOMMU_HWPT_DATA_SELFTEST, &mock_s1_data,
				     sizeof(mock_s1_data), &cfg, &d.hwpt_a);
	if (!d.q)
		fail("IOPF-capable nested HWPT", errno);
	check("attach A", mock_replace(d.fd, d.stdev_a, d.hwpt_a));

	/* B cannot have a fault capable HWPT, as on VT-d without PRI */
	check("nested HWPT", mock_nested_alloc(d.fd, d.dev_b, d.viommu_id,
					       iof_queue_id(d.q), &hwpt));
	rc_attach_b = mock_replace(d.fd, d.stdev_b, hwpt);
	if (!rc_attach_b)
		fail("device without PRI took a fault capable HWPT", EINVAL);
	check("destroy HWPT", mock_destroy(d.fd, hwpt));
	check("nested HWPT", mock_nested_alloc(d.fd, d.dev_b, d.viommu_id, 0,
					       &d.hwpt_b));
	check("attach B", mock_replace(d.fd, d.stdev_b, d.hwpt_b));
	rc_iopf_b = mock_trigger_iopf(d.fd, d.dev_b, 0, 0, 1, WINDOW_START);
	if (!rc_iopf_b)
		fail("device without PRI sent a page request", EINVAL);
	d.b_refused = 1;

	d.vq = iof_veventq_create(d.fd, d.viommu_id, &vcfg);
	if (!d.vq)
		fail("vEVENTQ", errno);

	/* What the probe found, and what the allocations learned */
	check("probe", iof_probe(d.fd, &d.caps));
	printf("fault_demo: a guest's virtual IOMMU, backed by iommufd\n\n");
	printf("  kernel: fault queue eventfd %s, bounded %s, one-step IOPF_CAPABLE %s, vEVENTQ eventfd %s\n",
	       d.caps.fault_eventfd ? "yes" : "no",
	       d.caps.fault_bounded ? "yes" : "no",
	       d.caps.iopf_capable == IOF_CAP_YES ? "yes" : "no",
	       d.caps.veventq_eventfd == IOF_CAP_YES ? "yes" : "no");
	printf("  device A (PRI, PASIDs): nested HWPT %u and fault queue %u %s,\n"
	       "    %s queue%s, waited on through %s\n",
	       d.hwpt_a, iof_queue_id(d.q),
	       iof_queue_one_step(d.q) ?
		       "in one IOMMU_HWPT_ALLOC (IOPF_CAPABLE)" :
		       "in two steps (this kernel has no IOPF_CAPABLE)",
	       iof_queue_flags(d.q) & IOF_FAULT_QUEUE_BOUNDED ? "bounded" :
								  "legacy",
	       iof_queue_flags(d.q) & IOF_FAULT_QUEUE_BOUNDED ?
		       " of depth 32" : "",
	       iof_queue_flags(d.q) & IOF_FAULT_QUEUE_EVENTFD ?
		       "its eventfd" : "poll() on the fault fd");
	printf("  device B (no PRI): a fault capable HWPT is refused: %s\n",
	       strerror(-rc_attach_b));
	printf("    and it sends no page request: %s\n",
	       strerror(-rc_iopf_b));
	printf("    its nested HWPT %u has no fault queue; vEVENTQ %u of depth %u on vIOMMU %u,\n"
	       "    waited on through %s\n\n",
	       d.hwpt_b, iof_veventq_id(d.vq), VDEPTH, d.viommu_id,
	       iof_veventq_flags(d.vq) ? "its eventfd" :
					 "poll() on the vEVENTQ fd");
}

static void serve(void)
{
	struct epoll_event ev[2];
	pthread_t thread;
	unsigned int i;
	int epfd, n;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0 || iof_queue_epoll_add(d.q, epfd, EPOLLIN, 1) ||
	    iof_veventq_epoll_add(d.vq, epfd, EPOLLIN, 2))
		fail("epoll", errno);

	pthread_create(&thread, NULL, devices, NULL);
	for (;;) {
		bool done = atomic_load(&d.device_done);

		n = epoll_wait(epfd, ev, 2, 20);
		if (n < 0 && errno != EINTR)
			fail("epoll_wait", errno);
		if (atomic_load(&d.paused)) {
			/* the guest is busy elsewhere */
			atomic_store(&d.pause_seen, true);
			continue;
		}
		iof_queue_dispatch(d.q, &ops, NULL);
		iof_flush(d.q);
		for (i = 0; i != d.nr_answering; i++)
			d.rtt[d.nr_rtt++] =
				now_ns() - d.t_report[d.answering[i]];
		d.nr_answering = 0;
		iof_veventq_dispatch(d.vq, &vops, NULL);
		if (done && !iof_queue_stats(d.q)->outstanding &&
		    iof_queue_wait(d.q, 0) == 0 &&
		    iof_veventq_wait(d.vq, 0) == 0)
			break;
	}
	pthread_join(thread, NULL);
	close(epfd);
}

int main(int argc, char **argv)
{
	/* make check counts the verdict as TAP */
	bool tap = argc > 1 && !strcmp(argv[1], "--tap");
	unsigned int i, lost_groups = 0, lost_group_faults = 0, bad = 0;
	const struct iof_stats *st;
	const struct iof_vstats *vst;
	struct mock_counters a, b;
	struct iof_fdinfo fi;
	bool have_fdinfo;
	uint64_t p50, p99;

	if (tap)
		printf("TAP version 13\n1..1\n");
	setup();
	serve();

	st = iof_queue_stats(d.q);
	vst = iof_veventq_stats(d.vq);
	qsort(d.rtt, d.nr_rtt, sizeof(d.rtt[0]), cmp_u64);
	p50 = d.nr_rtt ? d.rtt[d.nr_rtt / 2] : 0;
	p99 = d.nr_rtt ? d.rtt[d.nr_rtt * 99 / 100] : 0;

	/* What the device made and the VMM never saw: lost, as groups */
	for (i = 0; i != d.groups_made; i++) {
		if (!d.delivered[i]) {
			lost_groups++;
			lost_group_faults += d.nfaults[i];
		}
	}
	if (mock_counters(d.fd, d.dev_a, &a) ||
	    mock_counters(d.fd, d.dev_b, &b))
		fail("mock counters (a kernel without the series' mock?)",
		     errno);
	have_fdinfo = !iof_queue_fdinfo(d.q, &fi);

#define ROW(what, vmm, other, good)                                         \
	do {                                                                \
		printf("  %-40s %10llu %10llu   %s\n", what,                \
		       (unsigned long long)(vmm),                           \
		       (unsigned long long)(other),                         \
		       (good) ? "ok" : "MISMATCH");                         \
		bad += !(good);                                             \
	} while (0)

	printf("\n  %-40s %10s %10s\n", "device A: page requests", "VMM saw",
	       "device saw");
	ROW("page request groups", d.success + d.invalid + lost_groups,
	    a.groups, d.success + d.invalid + lost_groups == a.groups &&
	    a.groups == d.groups_made);
	ROW("  answered SUCCESS by the guest", st->answered_success,
	    a.success - lost_groups, d.success == st->answered_success &&
	    a.success == d.success + lost_groups);
	ROW("  answered INVALID by the guest", d.invalid, a.invalid,
	    a.invalid == d.invalid);
	ROW("  lost: answered SUCCESS by the kernel", lost_groups,
	    a.success - d.success, a.success == d.success + lost_groups);
	ROW("  answered FAILURE, answers refused", st->refused, a.failure,
	    !a.failure && !st->refused);
	ROW("  unanswered", st->outstanding,
	    a.groups - a.success - a.invalid - a.failure,
	    !st->outstanding && a.groups == a.success + a.invalid + a.failure);
	printf("  %-40s %10s %10s\n", "", "sequence", "kernel");
	/* Faults withdrawn on detach take no sequence numbers; none here */
	ROW("faults lost (gaps + LOST headers)", st->seq.lost,
	    have_fdinfo ? fi.lost : lost_group_faults,
	    st->seq.lost == lost_group_faults &&
	    (!have_fdinfo || fi.lost == st->seq.lost) &&
	    (!(iof_queue_flags(d.q) & IOF_FAULT_QUEUE_BOUNDED) ||
	     (d.lost_headers && lost_groups)));
	ROW("faults read / queued, awaiting", st->seq.messages,
	    have_fdinfo ? fi.queued + fi.awaiting : 0,
	    (!(iof_queue_flags(d.q) & IOF_FAULT_QUEUE_BOUNDED) ||
	     st->seq.messages + st->seq.lost == st->seq.next) &&
	    (!have_fdinfo || !(fi.queued + fi.awaiting)));
	printf("  %-40s %10s %10s\n", "device B: no PRI", "VMM saw",
	       "device saw");
	ROW("page request groups (refused to send)", 0, b.groups,
	    !b.groups && !b.success && !b.invalid && d.b_refused);
	ROW("unrecoverable faults read + lost", vst->events + vst->seq.lost,
	    d.vevents_made, vst->events + vst->seq.lost == d.vevents_made &&
	    vst->seq.lost == d.vlost && d.vlost &&
	    vst->seq.next == d.vevents_made);
	ROW("  with B's virt_id", vst->events - d.bad_virt_id, vst->events,
	    !d.bad_virt_id);
	/* and every guest answer found its group by (device, PASID, PRGI) */
	ROW("sequence errors, malformed messages",
	    st->seq.errors + vst->seq.errors, st->malformed + vst->malformed,
	    !st->seq.errors && !vst->seq.errors && !st->malformed &&
	    !vst->malformed && !d.unmatched && !st->unmatched &&
	    !st->superseded);

	printf("\n  round trip, fault reported to answer written: p50 %llu us, p99 %llu us (%u groups)\n",
	       (unsigned long long)p50 / 1000, (unsigned long long)p99 / 1000,
	       d.nr_rtt);
	printf("  fault queue: %llu reads, %llu eventfd wake-ups, %llu answer writes; vEVENTQ: %llu reads\n",
	       (unsigned long long)st->reads,
	       (unsigned long long)st->wakeups,
	       (unsigned long long)st->writes,
	       (unsigned long long)vst->reads);

	check("detach A", mock_replace(d.fd, d.stdev_a, d.ioas_id));
	check("detach B", mock_replace(d.fd, d.stdev_b, d.ioas_id));
	check("destroy HWPT A", mock_destroy(d.fd, d.hwpt_a));
	check("destroy HWPT B", mock_destroy(d.fd, d.hwpt_b));
	check("destroy fault queue", iof_queue_destroy(d.q));
	check("destroy vEVENTQ", iof_veventq_destroy(d.vq));
	check("destroy vDEVICE A", mock_destroy(d.fd, d.vdev_a));
	check("destroy vDEVICE B", mock_destroy(d.fd, d.vdev_b));
	check("destroy vIOMMU", mock_destroy(d.fd, d.viommu_id));
	check("destroy parent", mock_destroy(d.fd, d.parent_id));
	close(d.fd);

	printf("\nfault_demo: %s\n", bad ?
	       "FAILED: the VMM, the devices and the kernel disagree" :
	       "every fault accounted for, every group answered exactly once");
	printf("\n  next: the library's unit tests: make -C userspace test (userspace/tests/)\n"
	       "        the kernel's tests: make check (iommufd selftests, iommufd_iopf)\n"
	       "        under stress: fault_chaos (userspace/stress/fault_chaos.c), make soak\n"
	       "        performance: make bench (userspace/bench/fault_bench.c, scripts/bench-report)\n");
	if (tap)
		printf("%sok 1 fault_demo\n", bad ? "not " : "");
	return bad ? 1 : 0;
}
