/* SPDX-License-Identifier: MIT */
/*
 * iofault: the VMM side of an iommufd fault queue.
 *
 * A VMM that gives its guest a virtual IOMMU with nested translation gets
 * the stage-1 faults of each assigned device from a fault queue
 * (IOMMUFD_OBJ_FAULT). This library wraps one queue: it creates or adopts
 * it, tells the VMM which fd to put in its event loop, drains the queue in
 * batches, hands each page request group and each unrecoverable fault to a
 * callback, collects the answers and writes them back in batches. It keeps
 * track of the cookies still to be answered and checks the sequence numbers
 * of records queues, so the VMM knows what it missed.
 *
 * It works with both kinds of queues: the original one of Linux 6.11/6.12
 * (page requests only, struct iommu_hwpt_pgfault messages) and records
 * queues (IOMMU_FAULT_QUEUE_RECORDS). One struct iof_queue must be used by
 * one thread at a time.
 */
#ifndef IOFAULT_H
#define IOFAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/iommufd.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iof_queue;

/* One fault of a page request group */
struct iof_fault {
	uint32_t flags;		/* IOMMU_PGFAULT_FLAGS_* */
	uint32_t perm;		/* IOMMU_PGFAULT_PERM_* */
	uint64_t addr;
};

/* A whole page request group, answered with iof_answer(cookie) */
struct iof_group {
	uint32_t dev_id;
	uint32_t pasid;		/* valid if pasid_valid */
	bool pasid_valid;
	uint32_t grpid;
	uint32_t cookie;
	uint32_t seq;		/* of the first fault, records queues only */
	uint32_t nr_faults;
	const struct iof_fault *faults;	/* valid during the callback only */
};

/* What the VMM does with what comes out of the queue */
struct iof_ops {
	/* A page request group to answer, now or later, with iof_answer() */
	void (*page_request)(struct iof_queue *q, const struct iof_group *g,
			     void *arg);
	/* An unrecoverable fault, records queues only; needs no answer */
	void (*unrecoverable)(struct iof_queue *q,
			      const struct iommu_hwpt_unrecov_fault *f,
			      uint32_t seq, void *arg);
	/* @count faults from @seq on were lost; records queues only */
	void (*lost)(struct iof_queue *q, uint32_t seq, uint32_t count,
		     void *arg);
};

struct iof_stats {
	uint64_t reads;		/* read() calls that returned data */
	uint64_t records;	/* records or messages parsed */
	uint64_t groups;	/* page request groups delivered */
	uint64_t unrecov;	/* unrecoverable faults delivered */
	uint64_t lost;		/* faults reported lost by LOST records */
	uint64_t answered;	/* answers the kernel accepted */
	uint64_t refused;	/* answers the kernel refused (already answered) */
	uint64_t writes;	/* write() calls */
	uint64_t seq_gaps;	/* records whose seq was not the expected one */
	uint64_t malformed;	/* records that made no sense, skipped */
	uint32_t outstanding;	/* groups delivered and not answered yet */
};

struct iof_config {
	/* IOMMU_FAULT_QUEUE_* flags of the queue */
	uint32_t flags;
	/* records queues: its depth, 0 for the kernel's default */
	uint32_t depth;
	/*
	 * Bytes per read(); 0 for 64 records. A batch of one record at a
	 * time is possible but slow.
	 */
	size_t read_size;
};

/*
 * Create a queue with IOMMU_FAULT_QUEUE_ALLOC. With IOMMU_FAULT_QUEUE_EVENTFD
 * in cfg->flags the library makes the eventfd itself. Returns NULL and sets
 * errno on failure.
 */
struct iof_queue *iof_queue_create(int iommufd, const struct iof_config *cfg);

/*
 * Allocate a nested HWPT of @dev_id on @parent_id with a new queue in one
 * step (IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE), with the stage-1 data of the
 * vIOMMU in @data. The HWPT ID goes to *@hwpt_id. NULL and errno on failure,
 * and then nothing is left behind.
 */
struct iof_queue *iof_queue_alloc_nested(int iommufd, uint32_t dev_id,
					 uint32_t parent_id,
					 uint32_t data_type, const void *data,
					 uint32_t data_len,
					 const struct iof_config *cfg,
					 uint32_t *hwpt_id);

/*
 * Wrap a queue made elsewhere: its ID and fd, the flags it was made with and
 * its eventfd (or -1). The library owns the fds from now on.
 */
struct iof_queue *iof_queue_adopt(int iommufd, uint32_t fault_id,
				  int fault_fd, int eventfd,
				  const struct iof_config *cfg);

/*
 * Close the fds and destroy the queue object. Destroy the HWPTs that use
 * the queue first, or this fails with EBUSY (the fds are closed anyway and
 * the object then goes away with the iommufd).
 */
int iof_queue_destroy(struct iof_queue *q);

uint32_t iof_queue_id(const struct iof_queue *q);

/* The fd to wait on for EPOLLIN: the eventfd if there is one */
int iof_queue_wait_fd(const struct iof_queue *q);

/* Add the wait fd to @epfd, edge or level triggered, with @data */
int iof_queue_epoll_add(struct iof_queue *q, int epfd, uint32_t events,
			uint64_t data);

/*
 * Drain the queue: read in batches until it is empty and call @ops for what
 * was read. Returns the number of records or messages handled, or -errno.
 * Never blocks.
 */
int iof_queue_dispatch(struct iof_queue *q, const struct iof_ops *ops,
		       void *arg);

/*
 * Wait up to @timeout_ms (-1: forever) for the queue to be readable.
 * Returns 1 when readable, 0 on timeout, -errno on error (-EINTR when a
 * signal interrupted the wait).
 */
int iof_queue_wait(struct iof_queue *q, int timeout_ms);

/*
 * Answer a group with IOMMUFD_PAGE_RESP_SUCCESS or _INVALID. The answer is
 * buffered and written by iof_flush(), or when the buffer is full. Returns
 * -ENOENT for a cookie that is not outstanding (never delivered, or already
 * answered), -EINVAL for a bad code.
 */
int iof_answer(struct iof_queue *q, uint32_t cookie, uint32_t code);

/* Write the buffered answers. Returns the number written, or -errno. */
int iof_flush(struct iof_queue *q);

/*
 * Forget the outstanding groups of @dev_id: the kernel answered them when
 * the device was detached or moved to another HWPT. Returns how many.
 */
unsigned int iof_forget_device(struct iof_queue *q, uint32_t dev_id);

const struct iof_stats *iof_queue_stats(const struct iof_queue *q);

/*
 * For tests and tools: a queue with no kernel object behind it, to feed
 * bytes to iof_parse() as read() would have returned them.
 */
struct iof_queue *iof_parser_new(bool records);
void iof_parser_free(struct iof_queue *q);
int iof_parse(struct iof_queue *q, const void *buf, size_t len,
	      const struct iof_ops *ops, void *arg);
/* Is @cookie outstanding? */
bool iof_outstanding(const struct iof_queue *q, uint32_t cookie);

#ifdef __cplusplus
}
#endif
#endif
