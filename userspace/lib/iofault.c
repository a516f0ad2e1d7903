// SPDX-License-Identifier: MIT
/*
 * iofault: the VMM side of an iommufd fault queue. See iofault.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iofault.h"
#include "iofault_internal.h"

#define IOF_DEFAULT_BATCH	64	/* records per read() */
#define IOF_MAX_COOKIE		(1U << 24)
#define IOF_ANSWER_BATCH	64

struct iof_queue {
	int iommufd;
	uint32_t fault_id;
	int fault_fd;
	int eventfd;
	bool records;

	size_t read_size;
	unsigned char *rbuf;

	/* The page request group being put together */
	struct iof_group group;
	struct iof_fault *faults;
	uint32_t faults_cap;
	bool group_open;

	/* Records queues: the seq the next record should have */
	bool seq_known;
	uint32_t next_seq;

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

static struct iof_queue *iof_alloc(bool records, size_t read_size)
{
	size_t unit = records ? 48 : sizeof(struct iommu_hwpt_pgfault);
	struct iof_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->iommufd = -1;
	q->fault_fd = -1;
	q->eventfd = -1;
	q->records = records;
	q->read_size = read_size ? read_size : IOF_DEFAULT_BATCH * unit;
	/* Legacy queues read whole messages only */
	if (!records)
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

struct iof_queue *iof_parser_new(bool records)
{
	return iof_alloc(records, 0);
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
		     uint32_t seq, const struct iof_ops *ops, void *arg)
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
		g->seq = seq;
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

static void seq_check(struct iof_queue *q, uint32_t seq, uint32_t n)
{
	if (q->seq_known && seq != q->next_seq)
		q->st.seq_gaps++;
	q->seq_known = true;
	q->next_seq = seq + n;
}

static int parse_legacy(struct iof_queue *q, const unsigned char *buf,
			size_t len, const struct iof_ops *ops, void *arg)
{
	const size_t unit = sizeof(struct iommu_hwpt_pgfault);
	int n = 0, rc;

	if (len % unit)
		q->st.malformed++;
	for (; len >= unit; buf += unit, len -= unit, n++) {
		struct iommu_hwpt_pgfault pf;

		memcpy(&pf, buf, unit);
		q->st.records++;
		rc = group_add(q, &pf, 0, ops, arg);
		if (rc)
			return rc;
	}
	return n;
}

static int parse_records(struct iof_queue *q, const unsigned char *buf,
			 size_t len, const struct iof_ops *ops, void *arg)
{
	struct iommu_fault_record hdr;
	int n = 0, rc;

	while (len >= sizeof(hdr)) {
		memcpy(&hdr, buf, sizeof(hdr));
		if (hdr.length < sizeof(hdr) || hdr.length % 8 ||
		    hdr.length > len) {
			/* Cannot find the next record: give up on the buffer */
			q->st.malformed++;
			group_drop(q);
			return n;
		}
		q->st.records++;
		n++;
		switch (hdr.type) {
		case IOMMU_FAULT_RECORD_PAGE_REQ: {
			struct iommu_hwpt_pgfault pf = {};

			if (hdr.length < sizeof(hdr) + sizeof(pf)) {
				q->st.malformed++;
				break;
			}
			memcpy(&pf, buf + sizeof(hdr), sizeof(pf));
			seq_check(q, hdr.seq, 1);
			rc = group_add(q, &pf, hdr.seq, ops, arg);
			if (rc)
				return rc;
			break;
		}
		case IOMMU_FAULT_RECORD_UNRECOV: {
			struct iommu_hwpt_unrecov_fault uf = {};

			if (hdr.length < sizeof(hdr) + sizeof(uf)) {
				q->st.malformed++;
				break;
			}
			memcpy(&uf, buf + sizeof(hdr), sizeof(uf));
			seq_check(q, hdr.seq, 1);
			q->st.unrecov++;
			if (ops && ops->unrecoverable)
				ops->unrecoverable(q, &uf, hdr.seq, arg);
			break;
		}
		case IOMMU_FAULT_RECORD_LOST: {
			struct iommu_fault_lost lost = {};

			if (hdr.length < sizeof(hdr) + sizeof(lost)) {
				q->st.malformed++;
				break;
			}
			memcpy(&lost, buf + sizeof(hdr), sizeof(lost));
			seq_check(q, hdr.seq, lost.count);
			q->st.lost += lost.count;
			if (ops && ops->lost)
				ops->lost(q, hdr.seq, lost.count, arg);
			break;
		}
		default:
			/* A newer kernel's record: skip it by its length */
			q->st.malformed++;
			break;
		}
		buf += hdr.length;
		len -= hdr.length;
	}
	if (len)
		q->st.malformed++;
	return n;
}

int iof_parse(struct iof_queue *q, const void *buf, size_t len,
	      const struct iof_ops *ops, void *arg)
{
	if (q->records)
		return parse_records(q, buf, len, ops, arg);
	return parse_legacy(q, buf, len, ops, arg);
}

/* Queues */

static uint32_t queue_flags(const struct iof_config *cfg)
{
	return cfg ? cfg->flags : 0;
}

static struct iof_queue *queue_new(int iommufd, const struct iof_config *cfg)
{
	struct iof_queue *q;

	q = iof_alloc(queue_flags(cfg) & IOMMU_FAULT_QUEUE_RECORDS,
		      cfg ? cfg->read_size : 0);
	if (!q)
		return NULL;
	q->iommufd = iommufd;
	if (queue_flags(cfg) & IOMMU_FAULT_QUEUE_EVENTFD) {
		q->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->eventfd < 0) {
			iof_free(q);
			return NULL;
		}
	}
	return q;
}

static void queue_fail(struct iof_queue *q)
{
	int err = errno;

	if (q->eventfd >= 0)
		close(q->eventfd);
	iof_free(q);
	errno = err;
}

/* Records queues block on an empty read: the library never waits there */
static int queue_set_nonblock(struct iof_queue *q)
{
	int fl = fcntl(q->fault_fd, F_GETFL);

	if (fl < 0 || fcntl(q->fault_fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	return 0;
}

/* Finish a queue the kernel made (@rc == 0), or undo queue_new() */
static struct iof_queue *queue_made(struct iof_queue *q, int rc,
				    uint32_t fault_id, int fault_fd)
{
	if (rc) {
		queue_fail(q);
		return NULL;
	}
	q->fault_id = fault_id;
	q->fault_fd = fault_fd;
	queue_set_nonblock(q);
	return q;
}

struct iof_queue *iof_queue_create(int iommufd, const struct iof_config *cfg)
{
	struct iommu_fault_alloc cmd = {
		.size = sizeof(cmd),
		.flags = queue_flags(cfg),
		.depth = cfg ? cfg->depth : 0,
	};
	struct iof_queue *q = queue_new(iommufd, cfg);
	int rc;

	if (!q)
		return NULL;
	if (q->eventfd >= 0)
		cmd.eventfd = q->eventfd;
	/* The ioctl fills in cmd: call it before reading the results */
	rc = ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &cmd);
	return queue_made(q, rc, cmd.out_fault_id, cmd.out_fault_fd);
}

struct iof_queue *iof_queue_alloc_nested(int iommufd, uint32_t dev_id,
					 uint32_t parent_id,
					 uint32_t data_type, const void *data,
					 uint32_t data_len,
					 const struct iof_config *cfg,
					 uint32_t *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE,
		.dev_id = dev_id,
		.pt_id = parent_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
		.fault_flags = queue_flags(cfg),
		.fault_depth = cfg ? cfg->depth : 0,
	};
	struct iof_queue *q = queue_new(iommufd, cfg);
	int rc;

	if (!q)
		return NULL;
	if (q->eventfd >= 0)
		cmd.fault_eventfd = q->eventfd;
	rc = ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd);
	q = queue_made(q, rc, cmd.out_fault_id, cmd.out_fault_fd);
	if (q && hwpt_id)
		*hwpt_id = cmd.out_hwpt_id;
	return q;
}

struct iof_queue *iof_queue_adopt(int iommufd, uint32_t fault_id,
				  int fault_fd, int eventfd,
				  const struct iof_config *cfg)
{
	struct iof_queue *q;

	q = iof_alloc(queue_flags(cfg) & IOMMU_FAULT_QUEUE_RECORDS,
		      cfg ? cfg->read_size : 0);
	if (!q)
		return NULL;
	q->iommufd = iommufd;
	q->fault_id = fault_id;
	q->fault_fd = fault_fd;
	q->eventfd = eventfd;
	queue_set_nonblock(q);
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
	if (q->eventfd >= 0)
		close(q->eventfd);
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
	return q->eventfd >= 0 ? q->eventfd : q->fault_fd;
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

int iof_queue_dispatch(struct iof_queue *q, const struct iof_ops *ops,
		       void *arg)
{
	uint64_t count;
	int total = 0, n;
	ssize_t len;

	/* Reset the eventfd first: what arrives after this signals again */
	if (q->eventfd >= 0) {
		while (read(q->eventfd, &count, sizeof(count)) < 0 &&
		       errno == EINTR)
			;
	}
	for (;;) {
		len = q->io_read(q->fault_fd, q->rbuf, q->read_size);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return total ? total : -errno;
		}
		/* An empty original queue reads 0 bytes */
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
