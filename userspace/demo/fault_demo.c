// SPDX-License-Identifier: MIT
/*
 * fault_demo: a VMM's fault service at work, end to end.
 *
 * A mock device sits behind a nested HWPT allocated IOPF-capable in one step
 * with a records queue and an eventfd. A device thread makes a realistic
 * stream of stage-1 faults: page request groups over two PASIDs, inside and
 * outside the window the guest has mapped, a burst past the queue's depth,
 * and a few unrecoverable faults. The service loop, built on libiofault,
 * waits on the eventfd with epoll, answers each group as the guest's fault
 * handler would (SUCCESS inside the window, INVALID outside) and shows each
 * unrecoverable fault as the guest's virtual IOMMU would record it. The
 * closing table is checked against what the mock device saw.
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

#define DEPTH		32		/* records the queue holds */
#define WINDOW_START	0x40000000ull	/* what the guest's stage 1 maps */
#define WINDOW_END	0x48000000ull
#define STREAM_GROUPS	240
#define BURST_GROUPS	(DEPTH + 40)
#define MAX_GRPID	1024

static struct {
	int fd;
	uint32_t dev_id, stdev_id, hwpt_id;
	struct iof_queue *q;
	atomic_bool device_done, paused;
	atomic_uint groups_made, unrecov_made;
	uint64_t t_report[MAX_GRPID];	/* when the device reported it */
	uint32_t answering[MAX_GRPID];	/* answered, not yet written */
	unsigned int nr_answering;
	uint64_t rtt[MAX_GRPID];	/* report to answer written, ns */
	unsigned int nr_rtt;
	unsigned int success, invalid, unrecov, lost, lost_records;
	unsigned int shown;
} d;

static const char *const reason_name[] = {
	[IOMMU_HWPT_UNRECOV_REASON_UNKNOWN] = "unknown",
	[IOMMU_HWPT_UNRECOV_REASON_TRANSLATION] = "translation fault",
	[IOMMU_HWPT_UNRECOV_REASON_PERMISSION] = "permission fault",
	[IOMMU_HWPT_UNRECOV_REASON_BAD_PASID_ENTRY] = "bad PASID entry",
	[IOMMU_HWPT_UNRECOV_REASON_PASID_FETCH] = "PASID entry fetch error",
	[IOMMU_HWPT_UNRECOV_REASON_WALK_FETCH] = "page walk fetch error",
	[IOMMU_HWPT_UNRECOV_REASON_ADDR_SIZE] = "address size fault",
	[IOMMU_HWPT_UNRECOV_REASON_ACCESS] = "access flag fault",
	[IOMMU_HWPT_UNRECOV_REASON_BAD_PASID] = "bad PASID",
};

static void fail(const char *what, int err)
{
	fprintf(stderr, "fault_demo: %s: %s\n", what, strerror(-err));
	exit(2);
}

/* The device: what an assigned NIC or accelerator might do */
static void *device(void *arg)
{
	uint32_t grpid = 0, i;
	uint64_t seed = 42, addr;
	int rc;

	for (i = 0; i != STREAM_GROUPS; i++, grpid++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		/* One in five accesses falls outside what the guest mapped */
		addr = (seed >> 33) % 5 ?
			       WINDOW_START + ((seed >> 20) % 0x8000) * 4096 :
			       WINDOW_END + ((seed >> 20) % 0x1000) * 4096;
		d.t_report[grpid] = now_ns();
		rc = mock_trigger_iopf(d.fd, d.dev_id, 1 + i % 2, grpid,
				       1 + (seed >> 40) % 3, addr);
		if (rc)
			fail("page request", rc);
		atomic_fetch_add(&d.groups_made, 1);
		usleep(500);
		if (i == STREAM_GROUPS / 2) {
			static const struct {
				uint32_t flags, reason, perm;
				uint64_t addr, fetch;
			} uf[] = {
				{ IOMMU_HWPT_UNRECOV_PASID_VALID |
					  IOMMU_HWPT_UNRECOV_ADDR_VALID,
				  IOMMU_HWPT_UNRECOV_REASON_PERMISSION,
				  IOMMU_PGFAULT_PERM_WRITE, 0x40001000, 0 },
				{ IOMMU_HWPT_UNRECOV_PASID_VALID |
					  IOMMU_HWPT_UNRECOV_ADDR_VALID,
				  IOMMU_HWPT_UNRECOV_REASON_TRANSLATION,
				  IOMMU_PGFAULT_PERM_READ, 0x7fff0000, 0 },
				{ IOMMU_HWPT_UNRECOV_PASID_VALID |
					  IOMMU_HWPT_UNRECOV_FETCH_ADDR_VALID,
				  IOMMU_HWPT_UNRECOV_REASON_WALK_FETCH,
				  IOMMU_PGFAULT_PERM_READ, 0, 0x1234000 },
				{ IOMMU_HWPT_UNRECOV_PASID_VALID,
				  IOMMU_HWPT_UNRECOV_REASON_BAD_PASID_ENTRY,
				  IOMMU_PGFAULT_PERM_READ, 0, 0 },
			};
			unsigned int k;

			for (k = 0; k != sizeof(uf) / sizeof(uf[0]); k++) {
				rc = mock_trigger_unrecov(
					d.fd, d.dev_id, uf[k].flags, 1 + k % 2,
					uf[k].reason, uf[k].perm, 1,
					uf[k].addr, uf[k].fetch);
				if (rc)
					fail("unrecoverable fault", rc);
				atomic_fetch_add(&d.unrecov_made, 1);
			}
		}
	}

	/* A burst while the guest is busy: more than the queue holds */
	atomic_store(&d.paused, true);
	usleep(20000);
	for (i = 0; i != BURST_GROUPS; i++, grpid++) {
		d.t_report[grpid] = now_ns();
		rc = mock_trigger_iopf(d.fd, d.dev_id, 2, grpid, 1,
				       WINDOW_START + i * 4096);
		if (rc)
			fail("page request", rc);
		atomic_fetch_add(&d.groups_made, 1);
	}
	atomic_store(&d.paused, false);
	atomic_store(&d.device_done, true);
	return NULL;
}

/* The guest's fault handler: it can map what is in its window */
static void on_group(struct iof_queue *q, const struct iof_group *g,
		     void *arg)
{
	bool ok = true;
	uint32_t i;

	for (i = 0; i != g->nr_faults; i++)
		if (g->faults[i].addr < WINDOW_START ||
		    g->faults[i].addr >= WINDOW_END)
			ok = false;
	iof_answer(q, g->cookie, ok ? IOMMUFD_PAGE_RESP_SUCCESS :
				      IOMMUFD_PAGE_RESP_INVALID);
	if (ok)
		d.success++;
	else
		d.invalid++;
	if (g->grpid < MAX_GRPID && d.nr_answering < MAX_GRPID)
		d.answering[d.nr_answering++] = g->grpid;
	/* The first few, and a couple the guest refuses */
	if (d.shown < 4 || (!ok && d.shown < 6)) {
		d.shown++;
		printf("  page request  seq %-4u dev %u pasid %u group %-3u %u page%s at 0x%llx  -> %s\n",
		       g->seq, g->dev_id, g->pasid, g->grpid, g->nr_faults,
		       g->nr_faults > 1 ? "s" : " ",
		       (unsigned long long)g->faults[0].addr,
		       ok ? "SUCCESS (guest mapped it)" :
			    "INVALID (outside the guest's window)");
		if (d.shown == 6)
			printf("  ... (further page requests answered quietly)\n");
	}
}

/* What a guest with a virtual VT-d would find in its fault registers */
static void on_unrecov(struct iof_queue *q,
		       const struct iommu_hwpt_unrecov_fault *f, uint32_t seq,
		       void *arg)
{
	char addr[64] = "", pasid[32] = "";

	d.unrecov++;
	if (f->flags & IOMMU_HWPT_UNRECOV_PASID_VALID)
		snprintf(pasid, sizeof(pasid), " pasid %u", f->pasid);
	if (f->flags & IOMMU_HWPT_UNRECOV_ADDR_VALID)
		snprintf(addr, sizeof(addr), " addr 0x%llx",
			 (unsigned long long)f->addr);
	else if (f->flags & IOMMU_HWPT_UNRECOV_FETCH_ADDR_VALID)
		snprintf(addr, sizeof(addr), " table entry at 0x%llx",
			 (unsigned long long)f->fetch_addr);
	printf("  UNRECOVERABLE seq %-4u dev %u%s %s%s: %s -> vIOMMU fault record\n",
	       seq, f->dev_id, pasid,
	       f->perm & IOMMU_PGFAULT_PERM_WRITE ? "write" : "read", addr,
	       f->reason < sizeof(reason_name) / sizeof(reason_name[0]) ?
		       reason_name[f->reason] : "?");
}

static void on_lost(struct iof_queue *q, uint32_t seq, uint32_t count,
		    void *arg)
{
	d.lost += count;
	d.lost_records++;
	printf("  LOST          seq %-4u %u faults did not fit in the queue (the kernel answered them INVALID) -> vIOMMU overflow\n",
	       seq, count);
}

static const struct iof_ops ops = {
	.page_request = on_group,
	.unrecoverable = on_unrecov,
	.lost = on_lost,
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	/* make check counts the verdict as TAP */
	bool tap = argc > 1 && !strcmp(argv[1], "--tap");
	struct iof_config cfg = {
		.flags = IOMMU_FAULT_QUEUE_RECORDS | IOMMU_FAULT_QUEUE_EVENTFD,
		.depth = DEPTH,
	};
	uint32_t ioas_id, parent_id, i;
	struct epoll_event ev;
	struct mock_counters c;
	uint64_t *lat, p50, p99;
	pthread_t thread;
	int epfd, rc, n, bad = 0;

	d.fd = mock_open();
	if (d.fd < 0)
		fail("/dev/iommu", d.fd);
	if ((rc = mock_ioas_alloc(d.fd, &ioas_id)) ||
	    (rc = mock_device(d.fd, ioas_id, 0, &d.stdev_id, &d.dev_id)) ||
	    (rc = mock_parent_alloc(d.fd, d.dev_id, ioas_id, &parent_id)))
		fail("mock device", rc);

	if (tap)
		printf("TAP version 13\n1..1\n");
	printf("fault_demo: a guest's virtual IOMMU, backed by iommufd\n\n");
	d.q = iof_queue_alloc_nested(d.fd, d.dev_id, parent_id,
				     IOMMU_HWPT_DATA_SELFTEST, &mock_s1_data,
				     sizeof(mock_s1_data), &cfg, &d.hwpt_id);
	if (!d.q)
		fail("IOPF-capable nested HWPT", -errno);
	printf("  nested HWPT %u and fault queue %u in one IOMMU_HWPT_ALLOC (IOPF_CAPABLE),\n"
	       "  records queue of depth %u, eventfd %d in the VMM's epoll set\n\n",
	       d.hwpt_id, iof_queue_id(d.q), DEPTH, iof_queue_wait_fd(d.q));
	if ((rc = mock_replace(d.fd, d.stdev_id, d.hwpt_id)))
		fail("attach", rc);

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0 || iof_queue_epoll_add(d.q, epfd, EPOLLIN, 1))
		fail("epoll", -errno);

	pthread_create(&thread, NULL, device, NULL);
	for (;;) {
		bool done = atomic_load(&d.device_done);

		n = epoll_wait(epfd, &ev, 1, 20);
		if (n < 0 && errno != EINTR)
			fail("epoll_wait", -errno);
		if (atomic_load(&d.paused))
			continue;	/* the guest is busy elsewhere */
		iof_queue_dispatch(d.q, &ops, NULL);
		iof_flush(d.q);
		for (i = 0; i != d.nr_answering; i++)
			d.rtt[d.nr_rtt++] =
				now_ns() - d.t_report[d.answering[i]];
		d.nr_answering = 0;
		if (done && !iof_queue_stats(d.q)->outstanding &&
		    iof_queue_wait(d.q, 0) == 0)
			break;
	}
	pthread_join(thread, NULL);

	lat = malloc((d.nr_rtt + 1) * sizeof(*lat));
	memcpy(lat, d.rtt, d.nr_rtt * sizeof(*lat));
	qsort(lat, d.nr_rtt, sizeof(*lat), cmp_u64);
	p50 = d.nr_rtt ? lat[d.nr_rtt / 2] : 0;
	p99 = d.nr_rtt ? lat[d.nr_rtt * 99 / 100] : 0;

	rc = mock_counters(d.fd, d.dev_id, &c);
	if (rc)
		fail("mock counters", rc);

#define ROW(what, vmm, dev, good)                                           \
	do {                                                                \
		printf("  %-34s %10u %10u   %s\n", what, vmm, dev,          \
		       (good) ? "ok" : "MISMATCH");                         \
		bad += !(good);                                             \
	} while (0)

	printf("\n  %-34s %10s %10s\n", "", "VMM saw", "device saw");
	ROW("page request groups", d.success + d.invalid + d.lost,
	    c.groups, d.success + d.invalid + d.lost == c.groups &&
	    c.groups == atomic_load(&d.groups_made));
	ROW("  answered SUCCESS", d.success, c.success,
	    d.success == c.success);
	ROW("  answered INVALID by the guest", d.invalid, c.invalid - d.lost,
	    d.invalid + d.lost == c.invalid);
	ROW("  lost, answered INVALID by kernel", d.lost, c.invalid - d.invalid,
	    d.lost + d.invalid == c.invalid && d.lost_records);
	ROW("  answered twice / never", c.unexpected, c.outstanding,
	    !c.unexpected && !c.outstanding && !c.failure);
	ROW("unrecoverable faults", d.unrecov, c.unrecov_taken,
	    d.unrecov == c.unrecov_taken &&
	    d.unrecov == atomic_load(&d.unrecov_made));
	ROW("sequence gaps, malformed records",
	    (unsigned int)iof_queue_stats(d.q)->seq_gaps,
	    (unsigned int)iof_queue_stats(d.q)->malformed,
	    !iof_queue_stats(d.q)->seq_gaps &&
	    !iof_queue_stats(d.q)->malformed);
	printf("\n  round trip, fault reported to answer written: p50 %llu us, p99 %llu us (%u groups)\n",
	       (unsigned long long)p50 / 1000, (unsigned long long)p99 / 1000,
	       d.nr_rtt);
	printf("  reads %llu, answer writes %llu, records %llu\n",
	       (unsigned long long)iof_queue_stats(d.q)->reads,
	       (unsigned long long)iof_queue_stats(d.q)->writes,
	       (unsigned long long)iof_queue_stats(d.q)->records);

	if ((rc = mock_replace(d.fd, d.stdev_id, ioas_id)) ||
	    (rc = mock_destroy(d.fd, d.hwpt_id)) ||
	    (rc = iof_queue_destroy(d.q)))
		fail("teardown", rc);
	close(epfd);
	close(d.fd);
	free(lat);
	printf("\nfault_demo: %s\n", bad ? "FAILED: the VMM and the device disagree" :
	       "every fault accounted for, every group answered exactly once");
	if (tap)
		printf("%sok 1 fault_demo\n", bad ? "not " : "");
	return bad ? 1 : 0;
}
