/* SPDX-License-Identifier: MIT */
/*
 * iofault: the VMM side of iommufd's stage-1 fault delivery.
 *
 * A VMM that gives its guest a virtual IOMMU with nested translation reads
 * two channels per vIOMMU:
 *
 * - a fault queue (IOMMUFD_OBJ_FAULT, IOMMU_FAULT_QUEUE_ALLOC) with the page
 *   requests (PCIe PRI) of the devices whose nested HWPTs report to it. The
 *   guest answers each page request group; the VMM writes the answer back.
 *   A legacy queue delivers bare struct iommu_hwpt_pgfault messages; a
 *   bounded one (IOMMU_FAULT_QUEUE_BOUNDED) precedes each with a struct
 *   iommufd_vevent_header, holds at most its depth, and reports what it had
 *   to drop by sequence gaps and LOST_EVENTS headers.
 * - a vEVENTQ (IOMMUFD_OBJ_VEVENTQ, IOMMU_VEVENTQ_ALLOC) with the
 *   unrecoverable stage-1 faults, as the vendor's own record (VT-d primary
 *   fault record, SMMUv3 event, ...) naming the vDEVICE's virt_id. They need
 *   no answer.
 *
 * The library wraps one queue of either kind: it creates or adopts it, tells
 * the VMM which fd to put in its event loop (the eventfd when there is one,
 * else the queue's fd for poll()), drains it, checks the sequence numbers
 * (one checker, struct iof_seq, for both kinds), hands page request groups
 * and events to callbacks, and batches the answers.
 *
 * One binary runs on any kernel from 7.3 on: iof_probe() finds out what the
 * kernel offers (eventfds, bounded queues, the one-step IOPF-capable HWPT
 * allocation), and creation falls back to what is there (legacy queue,
 * poll(), two-step allocation) unless the caller asks to be strict.
 *
 * One struct iof_queue or iof_veventq must be used by one thread at a time.
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

/*
 * The VT-d vIOMMU uAPI is newer than some installed uAPI headers. Its names
 * are enum members there, which the preprocessor cannot see: the Makefile
 * looks for them and defines IOF_HAVE_UAPI_INTEL_VTD when the header has
 * them. The values are those of the series' uAPI.
 */
#ifndef IOF_HAVE_UAPI_INTEL_VTD
#ifndef IOMMU_VIOMMU_TYPE_INTEL_VTD
#define IOMMU_VIOMMU_TYPE_INTEL_VTD 3
#endif
#ifndef IOMMU_VEVENTQ_TYPE_INTEL_VTD
#define IOMMU_VEVENTQ_TYPE_INTEL_VTD 3
#endif
struct iommu_vevent_intel_vtd {
	__aligned_le64 fault[2];
};
#endif

/* The mock driver's vEVENT type (iommufd_test.h), decoded for tests */
#define IOF_VEVENTQ_TYPE_SELFTEST 0xbeefbeef

/* ---- What the kernel offers ---- */

struct iof_caps {
	bool fault_eventfd;	/* IOMMU_FAULT_QUEUE_EVENTFD */
	bool fault_bounded;	/* IOMMU_FAULT_QUEUE_BOUNDED */
	bool iopf_capable;	/* IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE */
	bool veventq_eventfd;	/* IOMMU_VEVENTQ_ALLOC_EVENTFD */
};

/*
 * Ask the kernel behind @iommufd what it offers. The answer is the same for
 * every iommufd of a kernel: it is probed once per process and remembered.
 * Returns 0, or -errno when the probe itself failed (not an iommufd, ...).
 */
int iof_probe(int iommufd, struct iof_caps *caps);

/* ---- Sequence numbers, shared by bounded fault queues and vEVENTQs ---- */

/*
 * Every message of a bounded fault queue or a vEVENTQ carries a sequence
 * number in [0, INT_MAX] that wraps to 0. A gap before a message means that
 * many were lost; a header-only IOMMU_VEVENTQ_FLAG_LOST_EVENTS message
 * carries the sequence number of the last one lost at the tail. A new queue
 * starts at 0.
 */
struct iof_seq {
	uint32_t next;		/* the sequence number the next one should have */
	uint64_t messages;	/* messages in sequence (LOST headers aside) */
	uint64_t lost;		/* sequence numbers lost: gaps and LOST headers */
	uint64_t gaps;		/* gaps before a message */
	uint64_t lost_headers;	/* LOST_EVENTS headers */
	uint64_t errors;	/* out of range, backwards, LOST for nothing */
};

/*
 * Gaps of this size or more are read as a sequence going backwards (a
 * duplicate or a reordered message): an error, not a loss.
 */
#define IOF_SEQ_MAX_GAP (1U << 30)

void iof_seq_init(struct iof_seq *s);

/*
 * Account for one header (@flags, @seq). Returns how many messages were lost
 * before it (a gap) or, for a LOST_EVENTS header, up to and including it,
 * with the first lost one in *@first; 0 when nothing was lost; -1 for a
 * sequence error, counted in s->errors, after which the checker carries on
 * from @seq.
 */
int64_t iof_seq_check(struct iof_seq *s, uint32_t flags, uint32_t seq,
		      uint32_t *first);

/* ---- Fault queues: page requests ---- */

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
	uint32_t seq;		/* of its first fault; bounded queues only */
	uint32_t nr_faults;
	const struct iof_fault *faults;	/* valid during the callback only */
};

/* What the VMM does with what comes out of the queue */
struct iof_ops {
	/* A page request group to answer, now or later, with iof_answer() */
	void (*page_request)(struct iof_queue *q, const struct iof_group *g,
			     void *arg);
	/*
	 * Bounded queues: @count faults from sequence number @seq on were
	 * lost. The kernel answered their groups INVALID itself; the guest
	 * may be told its page request queue overflowed.
	 */
	void (*lost)(struct iof_queue *q, uint32_t seq, uint32_t count,
		     void *arg);
};

struct iof_stats {
	uint64_t reads;		/* read() calls that returned data */
	uint64_t wakeups;	/* eventfd counts taken that were not 0 */
	uint64_t messages;	/* struct iommu_hwpt_pgfault messages parsed */
	uint64_t groups;	/* page request groups delivered */
	uint64_t answered;	/* answers the kernel accepted */
	uint64_t answered_success; /* of them, IOMMUFD_PAGE_RESP_SUCCESS */
	uint64_t refused;	/* answers the kernel refused (already answered) */
	uint64_t auto_invalid;	/* malformed groups answered INVALID by us */
	uint64_t writes;	/* write() calls */
	uint64_t malformed;	/* messages that made no sense, skipped */
	uint32_t outstanding;	/* groups delivered and not answered yet */
	struct iof_seq seq;	/* bounded queues: sequence and loss */
};

struct iof_config {
	/*
	 * IOMMU_FAULT_QUEUE_* wanted. With IOMMU_FAULT_QUEUE_EVENTFD the
	 * library makes the eventfd. What the kernel lacks is dropped (a
	 * legacy queue waited on with poll()) unless @strict is set.
	 */
	uint32_t flags;
	/* Bounded queues: the most unread faults; 0 for 256 */
	uint32_t depth;
	/* Extra IOMMU_HWPT_ALLOC_* flags for iof_queue_alloc_nested() */
	uint32_t hwpt_flags;
	/*
	 * Bytes per read(); 0 for 64 messages. The kernel reads whole page
	 * request groups only: the buffer grows when a group does not fit.
	 */
	size_t read_size;
	/* Reads per iof_queue_dispatch() call at most; 0 for 16 */
	unsigned int max_reads;
	/* Fail with EOPNOTSUPP rather than drop a flag the kernel lacks */
	bool strict;
};

/*
 * Create a queue with IOMMU_FAULT_QUEUE_ALLOC. @cfg may be NULL. Returns
 * NULL and sets errno on failure. Give its ID to IOMMU_HWPT_ALLOC
 * (IOMMU_HWPT_FAULT_ID_VALID, fault_id) to have it take the HWPT's faults.
 */
struct iof_queue *iof_queue_create(int iommufd, const struct iof_config *cfg);

/*
 * Allocate a nested HWPT of @dev_id on @parent_id (a vIOMMU or a nesting
 * parent HWPT) together with a new queue: in one step
 * (IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE) where the kernel has it, else with
 * IOMMU_FAULT_QUEUE_ALLOC and IOMMU_HWPT_FAULT_ID_VALID. The stage-1 data
 * is @data. The HWPT ID goes to *@hwpt_id. NULL and errno on failure, and
 * then nothing is left behind.
 */
struct iof_queue *iof_queue_alloc_nested(int iommufd, uint32_t dev_id,
					 uint32_t parent_id,
					 uint32_t data_type, const void *data,
					 uint32_t data_len,
					 const struct iof_config *cfg,
					 uint32_t *hwpt_id);

/*
 * Wrap a queue made elsewhere, new (its sequence starts at 0): its ID and fd,
 * the flags it was made with (in @cfg) and its eventfd, or -1. The library
 * owns the fds from now on.
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
/* The IOMMU_FAULT_QUEUE_* flags the queue has, after any fallback */
uint32_t iof_queue_flags(const struct iof_queue *q);
uint32_t iof_queue_depth(const struct iof_queue *q);
/* Was it made by one IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE call? */
bool iof_queue_one_step(const struct iof_queue *q);
/* The queue's own fd (read, write, fdinfo) */
int iof_queue_fd(const struct iof_queue *q);

/* The fd to wait on for EPOLLIN: the eventfd if there is one */
int iof_queue_wait_fd(const struct iof_queue *q);

/* Add the wait fd to @epfd, edge or level triggered, with @data */
int iof_queue_epoll_add(struct iof_queue *q, int epfd, uint32_t events,
			uint64_t data);

/*
 * Wait up to @timeout_ms (-1: forever) for the wait fd to be readable.
 * Returns 1 when readable, 0 on timeout, -errno on error (-EINTR when a
 * signal interrupted the wait).
 */
int iof_queue_wait(struct iof_queue *q, int timeout_ms);

/*
 * Drain the queue: take the eventfd's count (a wake-up hint only), then read
 * until read() returns 0 and call @ops for what was read. Returns the number
 * of messages handled, or -errno. Never blocks. A queue filled faster than
 * it is read never reads 0: after max_reads reads the call returns anyway,
 * and the queue stays ready for the next wait (the library signals its own
 * eventfd, whose count it took), so that one queue cannot starve the
 * caller's event loop.
 */
int iof_queue_dispatch(struct iof_queue *q, const struct iof_ops *ops,
		       void *arg);

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

/* What /proc/self/fdinfo shows of a fault fd (kernels with the series) */
struct iof_fdinfo {
	uint32_t flags, depth, queued, awaiting;
	uint64_t lost;
};
int iof_queue_fdinfo(const struct iof_queue *q, struct iof_fdinfo *info);

/*
 * For tests and tools: a queue with no kernel object behind it, legacy or
 * (IOMMU_FAULT_QUEUE_BOUNDED in @flags) bounded, to feed bytes to
 * iof_parse() as read() would have returned them.
 */
struct iof_queue *iof_parser_new(uint32_t flags);
void iof_parser_free(struct iof_queue *q);
int iof_parse(struct iof_queue *q, const void *buf, size_t len,
	      const struct iof_ops *ops, void *arg);
/* Is @cookie outstanding? */
bool iof_outstanding(const struct iof_queue *q, uint32_t cookie);

/* ---- vEVENTQs: unrecoverable faults and other vIOMMU events ---- */

struct iof_veventq;

/* A VT-d primary fault record (VT-d spec, Fault Recording Registers) */
struct iof_vtd_fault {
	uint64_t addr;		/* bits 63:12, the page of the faulting access */
	uint16_t source_id;	/* bits 79:64: the vDEVICE's virt_id */
	uint8_t reason;		/* bits 103:96: fault reason */
	bool pasid_present;	/* bit 95 */
	uint32_t pasid;		/* bits 123:104, if pasid_present */
	bool read;		/* bit 126: 1 read, 0 write request */
	bool valid;		/* bit 127: the F bit, always set */
};

/* Decode the 16 bytes of a struct iommu_vevent_intel_vtd */
void iof_vtd_decode(const void *record, struct iof_vtd_fault *f);

struct iof_vevent {
	uint32_t type;		/* the queue's IOMMU_VEVENTQ_TYPE_* */
	uint32_t seq;
	const void *data;	/* as the kernel wrote it, little endian */
	uint32_t len;
	bool decoded;		/* a type the library knows: u is valid */
	union {
		struct {
			uint32_t virt_id;
		} selftest;	/* IOF_VEVENTQ_TYPE_SELFTEST */
		struct iof_vtd_fault vtd; /* IOMMU_VEVENTQ_TYPE_INTEL_VTD */
	} u;
};

struct iof_vevent_ops {
	void (*event)(struct iof_veventq *q, const struct iof_vevent *ev,
		      void *arg);
	/* @count events from sequence number @seq on were lost */
	void (*lost)(struct iof_veventq *q, uint32_t seq, uint32_t count,
		     void *arg);
};

struct iof_vstats {
	uint64_t reads;		/* read() calls that returned data */
	uint64_t wakeups;	/* eventfd counts taken that were not 0 */
	uint64_t events;	/* events delivered */
	uint64_t malformed;	/* records that made no sense, skipped */
	struct iof_seq seq;	/* sequence and loss */
};

struct iof_veventq_config {
	uint32_t type;		/* IOMMU_VEVENTQ_TYPE_* */
	uint32_t depth;		/* the most unread events; 0 for 256 */
	/*
	 * IOMMU_VEVENTQ_ALLOC_EVENTFD wanted (the library makes the
	 * eventfd); dropped for poll() on kernels without it, unless @strict
	 */
	uint32_t flags;
	/*
	 * Bytes of one event's data, for a type the library does not know;
	 * 0 for the ones it does (SMMUv3, Tegra241 CMDQV, VT-d, selftest)
	 */
	uint32_t data_len;
	size_t read_size;	/* bytes per read(); 0 for 64 events */
	unsigned int max_reads;	/* per dispatch call; 0 for 16 */
	bool strict;
};

/* Create a vEVENTQ on @viommu_id. NULL and errno on failure. */
struct iof_veventq *iof_veventq_create(int iommufd, uint32_t viommu_id,
				       const struct iof_veventq_config *cfg);
/* Wrap a new vEVENTQ made elsewhere; the library owns the fds from now on */
struct iof_veventq *iof_veventq_adopt(int iommufd, uint32_t veventq_id,
				      int veventq_fd, int eventfd,
				      const struct iof_veventq_config *cfg);
/* Close the fds and destroy the object; events still queued are gone */
int iof_veventq_destroy(struct iof_veventq *q);
uint32_t iof_veventq_id(const struct iof_veventq *q);
/* IOMMU_VEVENTQ_ALLOC_* flags it has, after any fallback */
uint32_t iof_veventq_flags(const struct iof_veventq *q);
int iof_veventq_wait_fd(const struct iof_veventq *q);
int iof_veventq_epoll_add(struct iof_veventq *q, int epfd, uint32_t events,
			  uint64_t data);
int iof_veventq_wait(struct iof_veventq *q, int timeout_ms);
/* As iof_queue_dispatch(): returns the events handled, or -errno */
int iof_veventq_dispatch(struct iof_veventq *q,
			 const struct iof_vevent_ops *ops, void *arg);
const struct iof_vstats *iof_veventq_stats(const struct iof_veventq *q);

/* For tests and tools: a vEVENTQ parser with no kernel object behind it */
struct iof_veventq *iof_vparser_new(const struct iof_veventq_config *cfg);
void iof_vparser_free(struct iof_veventq *q);
int iof_vparse(struct iof_veventq *q, const void *buf, size_t len,
	       const struct iof_vevent_ops *ops, void *arg);

#ifdef __cplusplus
}
#endif
#endif
