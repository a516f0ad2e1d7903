/* SPDX-License-Identifier: MIT */
/*
 * iofault: the VMM side of an iommufd fault queue.
 *
 * A VMM that gives its guest a virtual IOMMU with nested translation gets
 * the stage-1 page requests of each assigned device from a fault queue
 * (IOMMUFD_OBJ_FAULT, IOMMU_FAULT_QUEUE_ALLOC). This library wraps one
 * queue: it creates or adopts it, tells the VMM which fd to put in its event
 * loop, drains the queue in batches of struct iommu_hwpt_pgfault messages,
 * hands each page request group to a callback, collects the answers and
 * writes them back in batches. It keeps track of the cookies still to be
 * answered. One struct iof_queue must be used by one thread at a time.
 *
 * This is the fault queue of mainline Linux (6.11 on, checked against the
 * 7.3 uAPI). A later change re-adds an eventfd, bounded queues with vEVENT
 * headers (struct iommufd_vevent_header) and vEVENTQ support
 * (IOMMU_VEVENTQ_ALLOC), the mainline way.
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
	uint32_t nr_faults;
	const struct iof_fault *faults;	/* valid during the callback only */
};

/* What the VMM does with what comes out of the queue */
struct iof_ops {
	/* A page request group to answer, now or later, with iof_answer() */
	void (*page_request)(struct iof_queue *q, const struct iof_group *g,
			     void *arg);
};

struct iof_stats {
	uint64_t reads;		/* read() calls that returned data */
	uint64_t messages;	/* struct iommu_hwpt_pgfault messages parsed */
	uint64_t groups;	/* page request groups delivered */
	uint64_t answered;	/* answers the kernel accepted */
	uint64_t refused;	/* answers the kernel refused (already answered) */
	uint64_t writes;	/* write() calls */
	uint64_t malformed;	/* messages that made no sense, skipped */
	uint32_t outstanding;	/* groups delivered and not answered yet */
};

struct iof_config {
	/*
	 * Bytes per read(); 0 for 64 messages. Rounded down to whole
	 * messages, as the kernel reads no others. The kernel reads whole
	 * groups only: the buffer grows when a group does not fit.
	 */
	size_t read_size;
};

/*
 * Create a queue with IOMMU_FAULT_QUEUE_ALLOC. @cfg may be NULL. Returns
 * NULL and sets errno on failure. Give the queue's ID to IOMMU_HWPT_ALLOC
 * (IOMMU_HWPT_FAULT_ID_VALID, fault_id) to have it take the HWPT's faults.
 */
struct iof_queue *iof_queue_create(int iommufd, const struct iof_config *cfg);

/*
 * Wrap a queue made elsewhere: its ID and fd. The library owns the fd from
 * now on.
 */
struct iof_queue *iof_queue_adopt(int iommufd, uint32_t fault_id,
				  int fault_fd, const struct iof_config *cfg);

/*
 * Close the fd and destroy the queue object. Destroy the HWPTs that use
 * the queue first, or this fails with EBUSY (the fd is closed anyway and
 * the object then goes away with the iommufd).
 */
int iof_queue_destroy(struct iof_queue *q);

uint32_t iof_queue_id(const struct iof_queue *q);

/* The fd to wait on for EPOLLIN: the fault fd */
int iof_queue_wait_fd(const struct iof_queue *q);

/* Add the wait fd to @epfd, edge or level triggered, with @data */
int iof_queue_epoll_add(struct iof_queue *q, int epfd, uint32_t events,
			uint64_t data);

/*
 * Drain the queue: read in batches until it is empty and call @ops for what
 * was read. Returns the number of messages handled, or -errno. Never blocks:
 * an empty queue reads 0 bytes.
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
struct iof_queue *iof_parser_new(void);
void iof_parser_free(struct iof_queue *q);
int iof_parse(struct iof_queue *q, const void *buf, size_t len,
	      const struct iof_ops *ops, void *arg);
/* Is @cookie outstanding? */
bool iof_outstanding(const struct iof_queue *q, uint32_t cookie);

#ifdef __cplusplus
}
#endif
#endif
