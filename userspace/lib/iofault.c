// SPDX-License-Identifier: MIT
/*
 * iofault: the VMM side of an iommufd fault queue. See iofault.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iofault.h"
#include "iofault_internal.h"

#define IOF_DEFAULT_BATCH	64	/* messages per read() */
#define IOF_MAX_GROUP		32768	/* faults: the largest group read */
#define IOF_MAX_COOKIE		(1U << 24)
#define IOF_ANSWER_BATCH	64

struct iof_queue {
	int iommufd;
	uint32_t fault_id;
	int fault_fd;

	size_t read_size;
	unsigned char *rbuf;

	/* The page request group being put together */
	struct iof_group group;
	struct iof_fault *faults;
	uint32_t faults_cap;
	bool group_open;

	/*
	 * Outstanding cookies. The kernel hands out the lowest free cookie,
	 * so they stay small: index an array by cookie, 0 meaning none.
	 */
	uint32_t *cookie_dev;	/* dev_id + 1 */
	uint32_t cookie_cap;

	struct iommu_hwpt_page_response answers[IOF_ANSWER_BATCH];
	unsigned int nr_answers;

	struct iof_stats st;

	/* read() and write() of the fault fd; tests replace them */
	ssize_t (*io_read)(int fd, void *buf, size_t len);
	ssize_t (*io_write)(int fd, const void *buf, size_t len);
};

void iof_set_io(struct iof_queue *q,
		ssize_t (*io_read)(int fd, void *buf, size_t len),
		ssize_t (*io_write)(int fd, const void *buf, size_t len))
{
	q->io_read = io_read;
	q->io_write = io_write;
}

static struct iof_queue *iof_alloc(size_t read_size)
{
	const size_t unit = sizeof(struct iommu_hwpt_pgfault);
	struct iof_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->iommufd = -1;
	q->fault_fd = -1;
	q->read_size = read_size ? read_size : IOF_DEFAULT_BATCH * unit;
	/* The kernel reads whole messages only, ESPIPE otherwise */
	q->read_size -= q->read_size % unit;
	if (q->read_size < unit)
		q->read_size = unit;
	q->rbuf = malloc(q->read_size);
	if (!q->rbuf) {
		free(q);
		return NULL;
	}
	q->io_read = read;
	q->io_write = write;
	return q;
}

static void iof_free(struct iof_queue *q)
{
	free(q->rbuf);
	free(q->faults);
	free(q->cookie_dev);
	free(q);
}

struct iof_queue *iof_parser_new(void)
{
	return iof_alloc(0);
}

void iof_parser_free(struct iof_queue *q)
{
	iof_free(q);
}

/* Outstanding cookies */

static int cookie_add(struct iof_queue *q, uint32_t cookie, uint32_t dev_id)
{
	if (!cookie || cookie >= IOF_MAX_COOKIE)
		return -ERANGE;
	if (cookie >= q->cookie_cap) {
		uint32_t cap = q->cookie_cap ? q->cookie_cap : 64;
		uint32_t *n;

		while (cap <= cookie)
			cap *= 2;
		n = realloc(q->cookie_dev, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + q->cookie_cap, 0,
		       (cap - q->cookie_cap) * sizeof(*n));
		q->cookie_dev = n;
		q->cookie_cap = cap;
	}
	if (q->cookie_dev[cookie])
		return -EEXIST;
	q->cookie_dev[cookie] = dev_id + 1;
	q->st.outstanding++;
	return 0;
}

bool iof_outstanding(const struct iof_queue *q, uint32_t cookie)
{
	return cookie < q->cookie_cap && q->cookie_dev[cookie];
}

static void cookie_del(struct iof_queue *q, uint32_t cookie)
{
	q->cookie_dev[cookie] = 0;
	q->st.outstanding--;
}

unsigned int iof_forget_device(struct iof_queue *q, uint32_t dev_id)
{
	unsigned int n = 0;
	uint32_t c;

	for (c = 1; c < q->cookie_cap; c++) {
		if (q->cookie_dev[c] == dev_id + 1) {
			cookie_del(q, c);
			n++;
		}
	}
	return n;
}

/* Parsing */

static void group_drop(struct iof_queue *q)
{
	if (q->group_open)
		q->st.malformed++;
	q->group_open = false;
	q->group.nr_faults = 0;
}

static int group_add(struct iof_queue *q, const struct iommu_hwpt_pgfault *pf,
		     const struct iof_ops *ops, void *arg)
{
	struct iof_group *g = &q->group;

	/* All faults of a group come together, with one cookie */
	if (q->group_open && (pf->cookie != g->cookie ||
			      pf->dev_id != g->dev_id ||
			      pf->grpid != g->grpid))
		group_drop(q);
	if (!q->group_open) {
		memset(g, 0, sizeof(*g));
		g->dev_id = pf->dev_id;
		g->grpid = pf->grpid;
		g->cookie = pf->cookie;
		g->pasid = pf->pasid;
		g->pasid_valid = pf->flags & IOMMU_PGFAULT_FLAGS_PASID_VALID;
		q->group_open = true;
	}
	if (g->nr_faults == q->faults_cap) {
		uint32_t cap = q->faults_cap ? 2 * q->faults_cap : 8;
		struct iof_fault *n = realloc(q->faults, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		q->faults = n;
		q->faults_cap = cap;
	}
	q->faults[g->nr_faults++] = (struct iof_fault){
		.flags = pf->flags,
		.perm = pf->perm,
		.addr = pf->addr,
	};
	if (!(pf->flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE))
		return 0;

	q->group_open = false;
	g->faults = q->faults;
	if (cookie_add(q, g->cookie, g->dev_id)) {
		/* A cookie we cannot track or already have: not answerable */
		q->st.malformed++;
		return 0;
	}
	q->st.groups++;
	if (ops && ops->page_request)
		ops->page_request(q, g, arg);
	return 0;
}

int iof_parse(struct iof_queue *q, const void *buf, size_t len,
	      const struct iof_ops *ops, void *arg)
{
	const size_t unit = sizeof(struct iommu_hwpt_pgfault);
	const unsigned char *p = buf;
	int n = 0, rc;

	if (len % unit)
		q->st.malformed++;
	for (; len >= unit; p += unit, len -= unit, n++) {
		struct iommu_hwpt_pgfault pf;

		memcpy(&pf, p, unit);
		q->st.messages++;
		rc = group_add(q, &pf, ops, arg);
		if (rc)
			return rc;
	}
	return n;
}

/* Queues */

static struct iof_queue *queue_new(int iommufd, const struct iof_config *cfg)
{
	struct iof_queue *q = iof_alloc(cfg ? cfg->read_size : 0);

	if (q)
		q->iommufd = iommufd;
	return q;
}

struct iof_queue *iof_queue_create(int iommufd, const struct iof_config *cfg)
{
	/* No flags: the kernel refuses any */
	struct iommu_fault_alloc cmd = { .size = sizeof(cmd) };
	struct iof_queue *q = queue_new(iommufd, cfg);
	int err;

	if (!q)
		return NULL;
	if (ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &cmd)) {
		err = errno;
		iof_free(q);
		errno = err;
		return NULL;
	}
	q->fault_id = cmd.out_fault_id;
	q->fault_fd = cmd.out_fault_fd;
	return q;
}

struct iof_queue *iof_queue_adopt(int iommufd, uint32_t fault_id,
				  int fault_fd, const struct iof_config *cfg)
{
	struct iof_queue *q = queue_new(iommufd, cfg);

	if (!q)
		return NULL;
	q->fault_id = fault_id;
	q->fault_fd = fault_fd;
	return q;
}

int iof_queue_destroy(struct iof_queue *q)
{
	struct iommu_destroy cmd = {
		.size = sizeof(cmd),
		.id = q->fault_id,
	};
	int rc = 0;

	iof_flush(q);
	if (q->fault_fd >= 0)
		close(q->fault_fd);
	if (q->iommufd >= 0 && ioctl(q->iommufd, IOMMU_DESTROY, &cmd))
		rc = -errno;
	iof_free(q);
	return rc;
}

uint32_t iof_queue_id(const struct iof_queue *q)
{
	return q->fault_id;
}

int iof_queue_wait_fd(const struct iof_queue *q)
{
	return q->fault_fd;
}

int iof_queue_epoll_add(struct iof_queue *q, int epfd, uint32_t events,
			uint64_t data)
{
	struct epoll_event ev = {
		.events = events ? events : EPOLLIN,
		.data.u64 = data,
	};

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, iof_queue_wait_fd(q), &ev))
		return -errno;
	return 0;
}

int iof_queue_wait(struct iof_queue *q, int timeout_ms)
{
	struct pollfd pfd = {
		.fd = iof_queue_wait_fd(q),
		.events = POLLIN,
	};
	int rc;

	/* A signal ends the wait, as it would a poll() of the caller's own */
	rc = poll(&pfd, 1, timeout_ms);
	if (rc < 0)
		return -errno;
	return rc > 0;
}

/*
 * The kernel reads whole groups only, and fails the read with EINVAL when
 * the first group waiting does not fit: make room for it.
 */
static int rbuf_grow(struct iof_queue *q)
{
	const size_t max = IOF_MAX_GROUP * sizeof(struct iommu_hwpt_pgfault);
	size_t size = 2 * q->read_size;
	unsigned char *n;

	if (q->read_size >= max)
		return -EINVAL;
	if (size > max)
		size = max;
	n = realloc(q->rbuf, size);
	if (!n)
		return -ENOMEM;
	q->rbuf = n;
	q->read_size = size;
	return 0;
}

int iof_queue_dispatch(struct iof_queue *q, const struct iof_ops *ops,
		       void *arg)
{
	int total = 0, n;
	ssize_t len;

	for (;;) {
		len = q->io_read(q->fault_fd, q->rbuf, q->read_size);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			n = errno == EINVAL ? rbuf_grow(q) : -errno;
			if (!n)
				continue;
			return total ? total : n;
		}
		/* An empty queue reads 0 bytes */
		if (len == 0)
			break;
		q->st.reads++;
		n = iof_parse(q, q->rbuf, len, ops, arg);
		if (n < 0)
			return total ? total : n;
		total += n;
	}
	return total;
}

int iof_answer(struct iof_queue *q, uint32_t cookie, uint32_t code)
{
	int rc;

	if (code != IOMMUFD_PAGE_RESP_SUCCESS &&
	    code != IOMMUFD_PAGE_RESP_INVALID)
		return -EINVAL;
	if (!iof_outstanding(q, cookie))
		return -ENOENT;
	if (q->nr_answers == IOF_ANSWER_BATCH) {
		rc = iof_flush(q);
		if (rc < 0)
			return rc;
	}
	cookie_del(q, cookie);
	q->answers[q->nr_answers++] = (struct iommu_hwpt_page_response){
		.cookie = cookie,
		.code = code,
	};
	return 0;
}

int iof_flush(struct iof_queue *q)
{
	const size_t unit = sizeof(q->answers[0]);
	unsigned int done = 0;
	ssize_t n;

	while (done < q->nr_answers) {
		q->st.writes++;
		n = q->io_write(q->fault_fd, &q->answers[done],
				(q->nr_answers - done) * unit);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EINVAL)
				return -errno;
			/*
			 * The kernel stops at the first answer it refuses:
			 * a group it answered itself on detach. Skip it.
			 */
			q->st.refused++;
			done++;
			continue;
		}
		/* A short write took the answers before the refused one */
		q->st.answered += n / unit;
		done += n / unit;
	}
	q->nr_answers = 0;
	return done;
}

const struct iof_stats *iof_queue_stats(const struct iof_queue *q)
{
	return &q->st;
}
