// SPDX-License-Identifier: MIT
/*
 * fault_bench: page request round trips through an iommufd fault queue.
 *
 * A device thread reports page request groups through the mock driver, BATCH
 * at a time, and waits until all of them are answered; a service thread
 * waits for the queue, reads up to BATCH messages and answers them in one
 * write. Throughput is groups per second; latency is, per group, the time
 * from the report to the answer written. The floor is the same exchange as
 * two threads ping-ponging eventfds, no iommufd involved.
 *
 *   fault_bench [-n GROUPS] [-b BATCH]... MODE...
 *
 * MODE: legacy-poll (runs on Linux 6.12 too), eventfd, records, floor.
 * One line per mode and batch:
 *   RESULT mode=M batch=B groups=N secs=S gps=G p50_us=X p99_us=Y
 *
 * Everything blocks, nothing spins: under QEMU -icount a spinning thread
 * would starve the other vCPU.
 */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "mock.h"

enum mode { LEGACY_POLL, EVENTFD, RECORDS, FLOOR };
static const char *const mode_name[] = { "legacy-poll", "eventfd", "records",
					 "floor" };

static struct {
	enum mode mode;
	unsigned int batch, groups;
	int fd, fault_fd, efd;	/* efd: the queue's eventfd, or floor ping */
	int pong;		/* floor: the answer eventfd */
	uint32_t dev_id, stdev_id, hwpt_id, fault_id, ioas_id, parent_id;
	uint64_t *t_report, *lat;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int answered;
	int stop;
} b;

static void fail(const char *what, int err)
{
	fprintf(stderr, "fault_bench: %s: %s\n", what, strerror(err));
	exit(2);
}

static void answered(unsigned int n)
{
	pthread_mutex_lock(&b.lock);
	b.answered += n;
	pthread_cond_signal(&b.cond);
	pthread_mutex_unlock(&b.lock);
}

/* Read up to a batch, answer it in one write, note when */
static void *service(void *arg)
{
	const size_t msg = b.mode == RECORDS ?
				   sizeof(struct iommu_fault_record) +
					   sizeof(struct iommu_hwpt_pgfault) :
				   sizeof(struct iommu_hwpt_pgfault);
	size_t size = b.batch * msg;
	unsigned char *buf = malloc(size);
	struct iommu_hwpt_page_response *resp =
		calloc(b.batch, sizeof(*resp));
	struct pollfd pfd = { .fd = b.fault_fd, .events = POLLIN };
	uint64_t count, now;
	unsigned int i, n;
	ssize_t len;

	while (!b.stop) {
		switch (b.mode) {
		case LEGACY_POLL:
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				fail("poll", errno);
			break;
		case EVENTFD:
			if (read(b.efd, &count, sizeof(count)) < 0 &&
			    errno != EINTR)
				fail("eventfd", errno);
			break;
		case RECORDS:	/* blocking read below */
		case FLOOR:
			break;
		}
		if (b.stop)
			break;
		if (b.mode == FLOOR) {
			if (read(b.efd, &count, sizeof(count)) != sizeof(count))
				continue;
			now = now_ns();
			/* the ping's count says how many were sent */
			for (i = 0; i != count; i++)
				b.lat[b.answered + i] =
					now - b.t_report[b.answered + i];
			if (write(b.pong, &count, sizeof(count)) < 0)
				fail("pong", errno);
			continue;
		}
		len = read(b.fault_fd, buf, size);
		if (len <= 0)
			continue;
		n = len / msg;
		for (i = 0; i != n; i++) {
			struct iommu_hwpt_pgfault *pf = (void *)(buf + i * msg +
					(b.mode == RECORDS ?
					 sizeof(struct iommu_fault_record) : 0));

			resp[i].cookie = pf->cookie;
			resp[i].code = IOMMUFD_PAGE_RESP_SUCCESS;
		}
		if (write(b.fault_fd, resp, n * sizeof(*resp)) !=
		    (ssize_t)(n * sizeof(*resp)))
			fail("answer", errno);
		now = now_ns();
		for (i = 0; i != n; i++) {
			struct iommu_hwpt_pgfault *pf = (void *)(buf + i * msg +
					(b.mode == RECORDS ?
					 sizeof(struct iommu_fault_record) : 0));

			b.lat[pf->grpid] = now - b.t_report[pf->grpid];
		}
		answered(n);
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
	if (b.mode == EVENTFD) {
		b.efd = eventfd(0, EFD_CLOEXEC);
		flags = IOMMU_FAULT_QUEUE_EVENTFD;
	} else if (b.mode == RECORDS) {
		flags = IOMMU_FAULT_QUEUE_RECORDS;
	}
	rc = mock_fault_alloc(b.fd, flags, b.efd, 0, &b.fault_id,
			      &b.fault_fd);
	if (rc)
		fail("fault queue", -rc);
	rc = mock_nested_alloc(b.fd, b.dev_id, b.parent_id, b.fault_id,
			       &b.hwpt_id);
	if (rc)
		fail("nested HWPT", -rc);
	rc = mock_replace(b.fd, b.stdev_id, b.hwpt_id);
	if (rc)
		fail("attach", -rc);
}

static void teardown_queue(void)
{
	mock_replace(b.fd, b.stdev_id, b.ioas_id);
	mock_destroy(b.fd, b.hwpt_id);
	close(b.fault_fd);
	mock_destroy(b.fd, b.fault_id);
	if (b.efd >= 0)
		close(b.efd);
}

/* Wake the service thread so that it sees b.stop */
static void stop_service(pthread_t thread)
{
	uint64_t one = 1;

	b.stop = 1;
	if (b.mode == FLOOR || b.mode == EVENTFD) {
		if (write(b.efd, &one, sizeof(one)) < 0)
			fail("wake", errno);
	} else {
		/* One more group gets the service out of poll() or read() */
		mock_trigger_iopf(b.fd, b.dev_id, 0, b.groups, 1, 0);
	}
	pthread_join(thread, NULL);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;

	return p < q ? -1 : p > q;
}

static void run(enum mode mode, unsigned int batch, unsigned int groups,
		bool report)
{
	uint64_t start, secs_ns, one;
	unsigned int i, k;
	pthread_t thread;
	int rc;

	b.mode = mode;
	b.batch = batch;
	b.groups = groups - groups % batch;
	b.answered = 0;
	b.stop = 0;
	b.t_report = calloc(b.groups + 1, sizeof(uint64_t));
	b.lat = calloc(b.groups + 1, sizeof(uint64_t));

	if (mode == FLOOR) {
		b.efd = eventfd(0, EFD_CLOEXEC);
		b.pong = eventfd(0, EFD_CLOEXEC);
	} else {
		setup_queue();
	}
	pthread_create(&thread, NULL, service, NULL);

	start = now_ns();
	for (i = 0; i < b.groups; i += batch) {
		for (k = i; k != i + batch; k++) {
			b.t_report[k] = now_ns();
			if (mode == FLOOR)
				continue;
			rc = mock_trigger_iopf(b.fd, b.dev_id, 0, k, 1,
					       (uint64_t)k << 12);
			if (rc)
				fail("page request", -rc);
		}
		if (mode == FLOOR) {
			one = batch;
			if (write(b.efd, &one, sizeof(one)) < 0 ||
			    read(b.pong, &one, sizeof(one)) < 0)
				fail("ping", errno);
			b.answered += batch;
			continue;
		}
		pthread_mutex_lock(&b.lock);
		while (b.answered < i + batch)
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

	qsort(b.lat, b.groups, sizeof(uint64_t), cmp_u64);
	if (report)
		printf("RESULT mode=%s batch=%u groups=%u secs=%.6f gps=%.1f p50_us=%.2f p99_us=%.2f\n",
		       mode_name[mode], batch, b.groups, secs_ns / 1e9,
		       b.groups / (secs_ns / 1e9), b.lat[b.groups / 2] / 1e3,
		       b.lat[b.groups * 99 / 100] / 1e3);
	fflush(stdout);
	free(b.t_report);
	free(b.lat);
}

int main(int argc, char **argv)
{
	unsigned int batches[8], nr_batches = 0, groups = 4096, i;
	int opt, rc, m;

	while ((opt = getopt(argc, argv, "n:b:")) != -1) {
		switch (opt) {
		case 'n':
			groups = atoi(optarg);
			break;
		case 'b':
			if (nr_batches < 8)
				batches[nr_batches++] = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: fault_bench [-n GROUPS] [-b BATCH]... MODE...\n");
			return 2;
		}
	}
	if (!nr_batches)
		batches[nr_batches++] = 1;
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);

	b.fd = mock_open();
	if (b.fd < 0)
		fail("/dev/iommu", -b.fd);
	if ((rc = mock_ioas_alloc(b.fd, &b.ioas_id)) ||
	    (rc = mock_device(b.fd, b.ioas_id, 0, &b.stdev_id, &b.dev_id)) ||
	    (rc = mock_parent_alloc(b.fd, b.dev_id, b.ioas_id, &b.parent_id)))
		fail("mock device", -rc);

	for (; optind < argc; optind++) {
		for (m = 0; m != 4; m++)
			if (!strcmp(argv[optind], mode_name[m]))
				break;
		if (m == 4) {
			fprintf(stderr, "fault_bench: unknown mode %s\n",
				argv[optind]);
			return 2;
		}
		for (i = 0; i != nr_batches; i++) {
			/* A short warm-up, then the measured run */
			run(m, batches[i], 4 * batches[i], false);
			run(m, batches[i], groups, true);
		}
	}
	close(b.fd);
	return 0;
}
