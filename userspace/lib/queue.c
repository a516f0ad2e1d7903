// SPDX-License-Identifier: MIT
/*
 * Fault queues: creation with what the kernel has (and the fallbacks to
 * what 7.3 has), the one-step IOPF-capable HWPT, teardown, accessors.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

struct iof_queue *iof_queue_alloc(uint32_t flags, size_t read_size,
				  unsigned int max_reads)
{
	bool header = iof_has_header(flags);
	size_t msg = (header ? IOF_HDR_SIZE : 0) + IOF_PGFAULT_SIZE;
	/* A header queue's LOST header fits after a batch */
	size_t extra = header ? IOF_HDR_SIZE : 0;
	struct iof_queue *q = iof_calloc(1, sizeof(*q), "queue");

	if (!q)
		return NULL;
	if (!read_size)
		read_size = IOF_DEFAULT_BATCH * msg + extra;
	if (iof_chan_init(&q->c, header ? 0 : msg, read_size,
			  IOF_MAX_GROUP * msg + extra, max_reads)) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	q->c.lock = &q->lock;
	q->c.reads = &q->st.reads;
	q->c.wakeups = &q->st.wakeups;
	q->flags = flags;
	iof_seq_init(&q->st.seq);
	return q;
}

void iof_queue_free(struct iof_queue *q)
{
	free(q->c.rbuf);
	free(q->faults);
	iof_gfree(&q->cookies);
	iof_gfree(&q->keys);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

IOF_EXPORT struct iof_queue *iof_parser_new(uint32_t flags)
{
	return iof_queue_alloc(flags, 0, 0);
}

IOF_EXPORT void iof_parser_free(struct iof_queue *q)
{
	iof_queue_free(q);
}

/*
 * The flags of a new queue: what was asked for, less what the kernel lacks
 * (unless strict). 0 or -errno.
 */
static int resolve_flags(int iommufd, const struct iof_config *cfg,
			 uint32_t *flags, uint32_t *depth)
{
	const uint32_t known = IOF_FAULT_QUEUE_EVENTFD |
			       IOF_FAULT_QUEUE_HEADER | IOF_FAULT_QUEUE_BOUNDED;
	uint32_t want = iof_norm_flags(cfg ? cfg->flags : 0);
	struct iof_caps caps;
	int rc;

	*flags = want;
	*depth = 0;
	if (want & ~known)
		return -EOPNOTSUPP;
	/* The kernel says whether it can have that depth (2^19 at most) */
	if (want & IOF_FAULT_QUEUE_BOUNDED)
		*depth = cfg->depth ? cfg->depth : IOF_DEFAULT_DEPTH;
	if (!want)
		return 0;
	rc = iof_probe(iommufd, &caps);
	if (rc)
		return rc;
	if (!caps.fault_eventfd)
		*flags &= ~IOF_FAULT_QUEUE_EVENTFD;
	/* A bound falls back to the header format, which 7.3 lacks too */
	if (!caps.fault_bounded)
		*flags &= ~IOF_FAULT_QUEUE_BOUNDED;
	if (!caps.fault_header)
		*flags &= ~IOF_FAULT_QUEUE_HEADER;
	/*
	 * The VMM waits on its own eventfd: a queue that never signals it
	 * would never be read
	 */
	if (*flags != want && (cfg->strict ||
			       ((want & IOF_FAULT_QUEUE_EVENTFD) &&
				!(*flags & IOF_FAULT_QUEUE_EVENTFD) &&
				cfg->use_eventfd)))
		return -EOPNOTSUPP;
	if (!(*flags & IOF_FAULT_QUEUE_BOUNDED))
		*depth = 0;
	return 0;
}

/* A queue with the resolved flags and its eventfd, not yet in the kernel */
static struct iof_queue *queue_new(int iommufd, const struct iof_config *cfg)
{
	uint32_t flags, depth;
	struct iof_queue *q;
	int rc, efd = -1;

	rc = resolve_flags(iommufd, cfg, &flags, &depth);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	q = iof_queue_alloc(flags, cfg ? cfg->read_size : 0,
			    cfg ? cfg->max_reads : 0);
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	q->c.iommufd = iommufd;
	q->depth = depth;
	if ((flags & IOF_FAULT_QUEUE_EVENTFD) && cfg->use_eventfd) {
		efd = cfg->eventfd;
	} else if (flags & IOF_FAULT_QUEUE_EVENTFD) {
		efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (efd < 0) {
			rc = errno;
			iof_queue_free(q);
			errno = rc;
			return NULL;
		}
		q->c.own_eventfd = true;
	}
	q->c.eventfd = efd;
	return q;
}

/* Undo queue_new(), keeping errno */
static void queue_fail(struct iof_queue *q)
{
	int err = errno;

	if (q->c.own_eventfd)
		close(q->c.eventfd);
	iof_queue_free(q);
	errno = err;
}

/* The ioctl's struct, as small as the flags allow: 7.3 takes 16 bytes */
static struct iof_uapi_fault_alloc fault_alloc_cmd(const struct iof_queue *q)
{
	return (struct iof_uapi_fault_alloc){
		.size = q->flags ? sizeof(struct iof_uapi_fault_alloc) :
				   IOF_FAULT_ALLOC_SIZE_73,
		.flags = q->flags,
		.eventfd = q->c.eventfd >= 0 ? q->c.eventfd : 0,
		.depth = q->depth,
	};
}

/* The kernel made it: its fd and object are the library's */
static void queue_made(struct iof_queue *q, uint32_t id, int fd)
{
	q->c.id = id;
	q->c.fd = fd;
	q->c.own_fd = true;
	q->c.own_object = true;
}

IOF_EXPORT struct iof_queue *iof_queue_create(int iommufd,
					      const struct iof_config *cfg)
{
	struct iof_queue *q = queue_new(iommufd, cfg);
	struct iof_uapi_fault_alloc cmd;

	if (!q)
		return NULL;
	cmd = fault_alloc_cmd(q);
	if (iof_sys_ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &cmd)) {
		queue_fail(q);
		return NULL;
	}
	queue_made(q, cmd.out_fault_id, cmd.out_fault_fd);
	return q;
}

IOF_EXPORT struct iof_queue *
iof_queue_alloc_nested(int iommufd, uint32_t dev_id, uint32_t parent_id,
		       uint32_t data_type, const void *data, uint32_t data_len,
		       const struct iof_config *cfg, uint32_t *hwpt_id)
{
	const uint32_t hwpt_flags = cfg ? cfg->hwpt_flags : 0;
	struct iof_uapi_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOF_HWPT_ALLOC_IOPF_CAPABLE | hwpt_flags,
		.dev_id = dev_id,
		.pt_id = parent_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
	};
	struct iof_queue *q = queue_new(iommufd, cfg);
	struct iof_uapi_fault_alloc fcmd;
	bool refused = false;
	int err;

	if (!q)
		return NULL;
	if (iof_cap_get(IOF_CAP_IOPF_CAPABLE) != IOF_CAP_NO) {
		cmd.fault_flags = q->flags;
		cmd.fault_eventfd = q->c.eventfd >= 0 ? q->c.eventfd : 0;
		cmd.fault_depth = q->depth;
		if (!iof_sys_ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd)) {
			iof_cap_set(IOF_CAP_IOPF_CAPABLE, IOF_CAP_YES);
			queue_made(q, cmd.out_fault_id, cmd.out_fault_fd);
			q->one_step = true;
			*hwpt_id = cmd.out_hwpt_id;
			return q;
		}
		/*
		 * EOPNOTSUPP or E2BIG: perhaps a kernel without the flag;
		 * two steps tell. Anything else is the allocation's error.
		 */
#ifndef IOF_PLANT_ONE_STEP_ANY_ERRNO	/* plant: two steps after any error */
		if (!iof_not_supported(errno)) {
			queue_fail(q);
			return NULL;
		}
#endif
		refused = true;
	}

	/* Two steps, with the structs of 7.3 */
	fcmd = fault_alloc_cmd(q);
	if (iof_sys_ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &fcmd)) {
		queue_fail(q);
		return NULL;
	}
	cmd = (struct iof_uapi_hwpt_alloc){
		.size = IOF_HWPT_ALLOC_SIZE_73,
		.flags = IOMMU_HWPT_FAULT_ID_VALID | hwpt_flags,
		.dev_id = dev_id,
		.pt_id = parent_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
		.fault_id = fcmd.out_fault_id,
	};
	if (iof_sys_ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd)) {
		err = errno;
		iof_sys_close(fcmd.out_fault_fd);
		iof_destroy_obj(iommufd, fcmd.out_fault_id);
		errno = err;
		queue_fail(q);
		return NULL;
	}
	/* The same request in two steps worked: the flag is what is missing */
	if (refused)
		iof_cap_set(IOF_CAP_IOPF_CAPABLE, IOF_CAP_NO);
	queue_made(q, fcmd.out_fault_id, fcmd.out_fault_fd);
	*hwpt_id = cmd.out_hwpt_id;
	return q;
}

IOF_EXPORT int iof_queue_destroy(struct iof_queue *q)
{
#ifndef IOF_PLANT_TEARDOWN	/* plant: freed under its own dispatch */
	/* From a callback: the dispatch running it tears the queue down */
	if (q->c.busy) {
		q->c.doomed = true;
		return 0;
	}
#endif
	return iof_queue_teardown(q);
}

IOF_EXPORT uint32_t iof_queue_id(const struct iof_queue *q)
{
	return q->c.id;
}

IOF_EXPORT uint32_t iof_queue_flags(const struct iof_queue *q)
{
	return q->flags;
}

IOF_EXPORT uint32_t iof_queue_depth(const struct iof_queue *q)
{
	return q->depth;
}

IOF_EXPORT bool iof_queue_one_step(const struct iof_queue *q)
{
	return q->one_step;
}

IOF_EXPORT int iof_queue_fd(const struct iof_queue *q)
{
	return q->c.fd;
}

IOF_EXPORT int iof_queue_wait_fd(const struct iof_queue *q)
{
	return iof_chan_wait_fd(&q->c);
}

IOF_EXPORT int iof_queue_epoll_add(struct iof_queue *q, int epfd,
				   uint32_t events, uint64_t data)
{
	return iof_chan_epoll_add(&q->c, epfd, events, data);
}

IOF_EXPORT int iof_queue_wait(struct iof_queue *q, int timeout_ms)
{
	return iof_chan_wait(&q->c, timeout_ms);
}
