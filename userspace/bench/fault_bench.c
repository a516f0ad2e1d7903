// SPDX-License-Identifier: MIT
/*
 * fault_bench: page request round trips through an iommufd fault queue, and
 * vEVENT delivery through a vEVENTQ, the same on Linux 7.3 and on 7.3 with
 * the series (modes the kernel lacks are skipped, by probing).
 *
 * A device thread reports BATCH items through the mock driver and waits
 * until all of them are handled; a service thread waits for the queue, reads
 * the batch and, for page requests, answers it in one write. Throughput is
 * items per second; latency is, per item, the time from its report to its
 * answer written (page requests) or to its read (vEVENTs). The floor is the
 * same exchange as two threads ping-ponging eventfds, no iommufd involved.
 *
 *   fault_bench [-n ITEMS] [-b BATCH]... MODE...
 *
 * MODE:
 *   poll             legacy fault queue, poll() on the fault fd (7.3)
 *   eventfd          legacy fault queue, waits on its eventfd
 *   bounded          bounded fault queue, poll()
 *   bounded-eventfd  bounded fault queue, waits on its eventfd
 *   vevent-poll      vEVENTQ, poll() on its fd (7.3), one event per trigger
 *   vevent-eventfd   vEVENTQ, waits on its eventfd
 *   floor            eventfd ping-pong between the two threads
 * One line per mode and batch:
 *   RESULT mode=M batch=B groups=N secs=S gps=G p50_us=X p99_us=Y
 * (groups and gps count vEVENTs in the vEVENT modes), and
 *   # SKIP mode=M: why
 * for a mode this kernel does not have.
 *
 * The measured path uses raw syscalls, not libiofault: it measures the
 * kernel. Everything blocks, nothing spins: under QEMU -icount a spinning
 * thread would starve the other (make bench runs it on one vCPU).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "iofault.h"
#include "mock.h"

enum mode {
	POLL, EVENTFD, BOUNDED, BOUNDED_EVENTFD, VEVENT_POLL, VEVENT_EVENTFD,
	FLOOR, NR_MODES
};
static const char *const mode_name[NR_MODES] = {
	"poll", "eventfd", "bounded", "bounded-eventfd", "vevent-poll",
	"vevent-eventfd", "floor",
};

#define HDR	sizeof(struct iommufd_vevent_header)
#define PGF	sizeof(struct iommu_hwpt_pgfault)
#define VEV	(HDR + sizeof(struct iommu_viommu_event_selftest))
#define VIRT_ID	0x42
#define VDEPTH	1024

static struct {
	enum mode mode;
	unsigned int batch, items;
	int fd;
	int qfd;		/* the fault fd or the vEVENTQ fd */
	int efd;		/* its eventfd, or the floor's ping */
	int pong;		/* floor: the answer eventfd */
	uint32_t ioas_id, stdev_id, dev_id, parent_id, viommu_id, vdev_id;
	uint32_t hwpt_id, q_id;
	struct iof_caps caps;
	bool veventq_eventfd;	/* IOF_VEVENTQ_EVENTFD, tried */
	uint64_t *t_report, *lat;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int handled;
	int stop;
} b;

static void fail(const char *what, int err)
{
	fprintf(stderr, "fault_bench: %s: %s\n", what, strerror(err));
	exit(2);
}

static bool is_vevent(enum mode m)
{
	return m == VEVENT_POLL || m == VEVENT_EVENTFD;
}

static bool is_bounded(enum mode m)
{
	return m == BOUNDED || m == BOUNDED_EVENTFD;
}

static bool uses_eventfd(enum mode m)
{
	return m == EVENTFD || m == BOUNDED_EVENTFD || m == VEVENT_EVENTFD;
}

/* Why this kernel cannot run @m, or NULL */
static const char *missing(enum mode m)
{
	if ((m == EVENTFD || m == BOUNDED_EVENTFD) && !b.caps.fault_eventfd)
		return "no IOF_FAULT_QUEUE_EVENTFD";
	if (is_bounded(m) && !b.caps.fault_bounded)
		return "no IOF_FAULT_QUEUE_BOUNDED";
	if (m == VEVENT_EVENTFD && !b.veventq_eventfd)
		return "no IOF_VEVENTQ_EVENTFD";
	return NULL;
}

static void handled(unsigned int n)
{
	pthread_mutex_lock(&b.lock);
	b.handled += n;
	pthread_cond_signal(&b.cond);
	pthread_mutex_unlock(&b.lock);
}

/* Wait for the queue: poll() or the eventfd. The eventfd's count, or 0. */
static uint64_t wait_queue(void)
{
	struct pollfd pfd = { .fd = b.qfd, .events = POLLIN };
	uint64_t count = 0;

	if (uses_eventfd(b.mode)) {
		if (read(b.efd, &count, sizeof(count)) < 0 && errno != EINTR)
			fail("eventfd", errno);
	} else if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
		fail("poll", errno);
	}
	return count;
}

/*
 * Read what the wake-up promised. The eventfd's count is a hint: the kernel
 * signals it once per notification, whatever that made readable, and a
 * general reader must read until read() returns 0 (libiofault does). Here
 * every notification makes exactly one message readable (groups of one
 * fault, one vEVENT per trigger, nothing lost or withdrawn, at most a batch
 * in flight and a buffer that holds a batch), and each read takes all that
 * is there: so once the reads brought as many messages as the count, the
 * rest (if any) arrived after the count was taken and signalled again.
 * Stopping there saves the read() that would return 0, on the base kernel
 * (one signal per message) and the patched one alike. Without an eventfd
 * (poll()) one read.
 */
static size_t read_queue(unsigned char *buf, size_t size, size_t msg,
			 uint64_t count)
{
	size_t done = 0;
	ssize_t len;

	do {
		len = read(b.qfd, buf + done, size - done);
		if (len < 0)
			fail("read", errno);
		done += len;
	} while (count && len && done / msg < count && done < size);
	return done;
}

static void serve_page_requests(unsigned char *buf, size_t size, size_t msg,
				struct iommu_hwpt_page_response *resp)
{
	unsigned int i, n, k;
	uint64_t count, now;
	size_t len;

	count = wait_queue();
	if (b.stop)
		return;
	len = read_queue(buf, size, msg, count);
	n = len / msg;
	if (!n)
		return;
	for (i = 0; i != n; i++) {
		struct iommu_hwpt_pgfault *pf = (void *)(buf + i * msg +
							 msg - PGF);

		resp[i].cookie = pf->cookie;
		resp[i].code = IOMMUFD_PAGE_RESP_SUCCESS;
	}
	if (write(b.qfd, resp, n * sizeof(*resp)) !=
	    (ssize_t)(n * sizeof(*resp)))
		fail("answer", errno);
	now = now_ns();
	for (i = 0; i != n; i++) {
		struct iommu_hwpt_pgfault *pf = (void *)(buf + i * msg +
							 msg - PGF);

		/* The address says which report it was */
		k = pf->addr >> 12;
		if (k < b.items)
			b.lat[k] = now - b.t_report[k];
	}
	handled(n);
}

static void serve_vevents(unsigned char *buf, size_t size)
{
	struct iommufd_vevent_header *hdr;
	unsigned int i, n;
	uint64_t count, now;
	size_t len;

	count = wait_queue();
	if (b.stop)
		return;
	len = read_queue(buf, size, VEV, count);
	now = now_ns();
	n = len / VEV;
	for (i = 0; i != n; i++) {
		hdr = (void *)(buf + i * VEV);
		/* A new queue per run: the sequence says which report */
		if (hdr->flags || hdr->sequence >= b.items)
			fail("vEVENT out of sequence", EPROTO);
		b.lat[hdr->sequence] = now - b.t_report[hdr->sequence];
	}
	if (n)
		handled(n);
}

static void serve_floor(void)
{
	uint64_t count, now, i;

	if (read(b.efd, &count, sizeof(count)) != sizeof(count) || b.stop)
		return;
	now = now_ns();
	/* the ping's count says how many were sent */
	for (i = 0; i != count && b.handled + i < b.items; i++)
		b.lat[b.handled + i] = now - b.t_report[b.handled + i];
	if (write(b.pong, &count, sizeof(count)) < 0)
		fail("pong", errno);
}

static void *service(void *arg)
{
	const size_t msg = is_vevent(b.mode) ? VEV :
			   is_bounded(b.mode) ? HDR + PGF : PGF;
	/* A bounded queue's LOST header would fit after a batch */
	size_t size = b.batch * msg + HDR;
	unsigned char *buf = malloc(size);
	struct iommu_hwpt_page_response *resp =
		calloc(b.batch + 1, sizeof(*resp));

	/* A legacy queue reads whole messages only */
	if (!is_vevent(b.mode) && !is_bounded(b.mode))
		size -= size % msg;
	while (!b.stop) {
		if (b.mode == FLOOR)
			serve_floor();
		else if (is_vevent(b.mode))
			serve_vevents(buf, size);
		else
			serve_page_requests(buf, size, msg, resp);
	}
	free(buf);
	free(resp);
	return NULL;
}

static void setup_queue(void)
{
	uint32_t flags = 0;
	int rc;

	b.efd = -1;
	if (uses_eventfd(b.mode)) {
		b.efd = eventfd(0, EFD_CLOEXEC);
		if (b.efd < 0)
			fail("eventfd", errno);
	}
	if (is_vevent(b.mode)) {
		rc = mock_veventq_alloc(b.fd, b.viommu_id,
					b.efd >= 0 ? IOF_VEVENTQ_EVENTFD : 0,
					b.efd, VDEPTH, &b.q_id, &b.qfd);
		if (rc)
			fail("vEVENTQ", -rc);
		return;
	}
	if (b.efd >= 0)
		flags |= IOF_FAULT_QUEUE_EVENTFD;
	if (is_bounded(b.mode))
		flags |= IOF_FAULT_QUEUE_BOUNDED;
	rc = mock_fault_alloc(b.fd, flags, b.efd,
			      is_bounded(b.mode) ? 4096 : 0, &b.q_id, &b.qfd);
	if (rc)
		fail("fault queue", -rc);
	rc = mock_nested_alloc(b.fd, b.dev_id, b.parent_id, b.q_id,
			       &b.hwpt_id);
	if (rc)
		fail("nested HWPT", -rc);
	rc = mock_replace(b.fd, b.stdev_id, b.hwpt_id);
	if (rc)
		fail("attach", -rc);
}

static void teardown_queue(void)
{
	if (!is_vevent(b.mode)) {
		mock_replace(b.fd, b.stdev_id, b.ioas_id);
		mock_destroy(b.fd, b.hwpt_id);
	}
	close(b.qfd);
	mock_destroy(b.fd, b.q_id);
	if (b.efd >= 0)
		close(b.efd);
}

/* Wake the service thread so that it sees b.stop */
static void stop_service(pthread_t thread)
{
	uint64_t one = 1;

	b.stop = 1;
	if (b.efd >= 0) {
		if (write(b.efd, &one, sizeof(one)) < 0)
			fail("wake", errno);
	} else if (is_vevent(b.mode)) {
		mock_trigger_vevents(b.fd, b.dev_id, 1);
	} else {
		/* One more group gets the service out of poll() */
		mock_trigger_iopf(b.fd, b.dev_id, 0, 0, 1,
				  (uint64_t)b.items << 12);
	}
	pthread_join(thread, NULL);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;

	return p < q ? -1 : p > q;
}

static void report(unsigned int k)
{
	int rc;

	b.t_report[k] = now_ns();
	switch (b.mode) {
	case FLOOR:
		return;
	case VEVENT_POLL:
	case VEVENT_EVENTFD:
		/* One per call: a 7.3 mock makes one whatever the count */
		rc = mock_trigger_vevents(b.fd, b.dev_id, 1);
		break;
	default:
		rc = mock_trigger_iopf(b.fd, b.dev_id, 0, k & 0x1ff, 1,
				       (uint64_t)k << 12);
		break;
	}
	if (rc)
		fail("report", -rc);
}

static void run(enum mode mode, unsigned int batch, unsigned int items,
		bool show)
{
	uint64_t start, secs_ns, one;
	pthread_t thread;
	unsigned int i, k;

	b.mode = mode;
	b.batch = batch;
	b.items = items - items % batch;
	b.handled = 0;
	b.stop = 0;
	b.t_report = calloc(b.items + 1, sizeof(uint64_t));
	b.lat = calloc(b.items + 1, sizeof(uint64_t));

	if (mode == FLOOR) {
		b.efd = eventfd(0, EFD_CLOEXEC);
		b.pong = eventfd(0, EFD_CLOEXEC);
	} else {
		setup_queue();
	}
	pthread_create(&thread, NULL, service, NULL);

	start = now_ns();
	for (i = 0; i < b.items; i += batch) {
		for (k = i; k != i + batch; k++)
			report(k);
		if (mode == FLOOR) {
			one = batch;
			if (write(b.efd, &one, sizeof(one)) < 0 ||
			    read(b.pong, &one, sizeof(one)) < 0)
				fail("ping", errno);
			b.handled += batch;
			continue;
		}
		pthread_mutex_lock(&b.lock);
		while (b.handled < i + batch)
			pthread_cond_wait(&b.cond, &b.lock);
		pthread_mutex_unlock(&b.lock);
	}
	secs_ns = now_ns() - start;

	stop_service(thread);
	if (mode == FLOOR) {
		close(b.efd);
		close(b.pong);
	} else {
		teardown_queue();
	}

	qsort(b.lat, b.items, sizeof(uint64_t), cmp_u64);
	if (show)
		printf("RESULT mode=%s batch=%u groups=%u secs=%.6f gps=%.1f p50_us=%.2f p99_us=%.2f\n",
		       mode_name[mode], batch, b.items, secs_ns / 1e9,
		       b.items / (secs_ns / 1e9), b.lat[b.items / 2] / 1e3,
		       b.lat[b.items * 99 / 100] / 1e3);
	fflush(stdout);
	free(b.t_report);
	free(b.lat);
}

/*
 * iof_probe() cannot try a vEVENTQ eventfd without a vIOMMU; this program
 * has one: make a vEVENTQ with it and throw it away. Refused as unknown
 * (EOPNOTSUPP, or E2BIG): the kernel does not have it.
 */
static bool probe_veventq_eventfd(void)
{
	uint32_t id;
	int efd, fd, rc;

	efd = eventfd(0, EFD_CLOEXEC);
	if (efd < 0)
		fail("eventfd", errno);
	rc = mock_veventq_alloc(b.fd, b.viommu_id, IOF_VEVENTQ_EVENTFD,
				efd, VDEPTH, &id, &fd);
	close(efd);
	if (rc == -EOPNOTSUPP || rc == -E2BIG)
		return false;
	if (rc)
		fail("vEVENTQ with an eventfd", -rc);
	close(fd);
	rc = mock_destroy(b.fd, id);
	if (rc)
		fail("destroy vEVENTQ", -rc);
	return true;
}

static void setup(void)
{
	int rc;

	b.fd = mock_open();
	if (b.fd < 0)
		fail("/dev/iommu", -b.fd);
	rc = iof_probe(b.fd, &b.caps);
	if (rc)
		fail("probe", -rc);
	if ((rc = mock_ioas_alloc(b.fd, &b.ioas_id)) ||
	    (rc = mock_device(b.fd, b.ioas_id, 0, &b.stdev_id, &b.dev_id)) ||
	    (rc = mock_parent_alloc(b.fd, b.dev_id, b.ioas_id,
				    &b.parent_id)) ||
	    (rc = mock_viommu_alloc(b.fd, b.dev_id, b.parent_id,
				    &b.viommu_id)) ||
	    (rc = mock_vdevice_alloc(b.fd, b.viommu_id, b.dev_id, VIRT_ID,
				     &b.vdev_id)))
		fail("mock device", -rc);
	b.veventq_eventfd = probe_veventq_eventfd();
	printf("# kernel: fault queue eventfd %s, bounded %s, vEVENTQ eventfd %s\n",
	       b.caps.fault_eventfd ? "yes" : "no",
	       b.caps.fault_bounded ? "yes" : "no",
	       b.veventq_eventfd ? "yes" : "no");
}

/* vEVENTs need the device on a nested HWPT of the vIOMMU */
static void attach_for(enum mode m)
{
	static uint32_t viommu_hwpt;
	int rc;

	if (!is_vevent(m))
		return;
	if (!viommu_hwpt) {
		rc = mock_nested_alloc(b.fd, b.dev_id, b.viommu_id, 0,
				       &viommu_hwpt);
		if (rc)
			fail("nested HWPT on the vIOMMU", -rc);
	}
	rc = mock_replace(b.fd, b.stdev_id, viommu_hwpt);
	if (rc)
		fail("attach to the vIOMMU", -rc);
}

int main(int argc, char **argv)
{
	unsigned int batches[8], nr_batches = 0, items = 4096, i;
	const char *why;
	int opt, m;

	while ((opt = getopt(argc, argv, "n:b:")) != -1) {
		switch (opt) {
		case 'n':
			items = atoi(optarg);
			break;
		case 'b':
			if (nr_batches < 8)
				batches[nr_batches++] = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: fault_bench [-n ITEMS] [-b BATCH]... MODE...\n");
			return 2;
		}
	}
	if (!nr_batches)
		batches[nr_batches++] = 1;
	for (i = 0; i != nr_batches; i++) {
		if (!batches[i] || batches[i] > 512 || batches[i] > items) {
			fprintf(stderr, "fault_bench: batch 1 to 512, at most the items\n");
			return 2;
		}
	}
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	setup();

	for (; optind < argc; optind++) {
		for (m = 0; m != NR_MODES; m++)
			if (!strcmp(argv[optind], mode_name[m]))
				break;
		if (m == NR_MODES) {
			fprintf(stderr, "fault_bench: unknown mode %s\n",
				argv[optind]);
			return 2;
		}
		why = missing(m);
		if (why) {
			printf("# SKIP mode=%s: %s\n", mode_name[m], why);
			continue;
		}
		attach_for(m);
		for (i = 0; i != nr_batches; i++) {
			/* A short warm-up, then the measured run */
			run(m, batches[i], 4 * batches[i], false);
			run(m, batches[i], items, true);
		}
	}
	close(b.fd);
	return 0;
}
