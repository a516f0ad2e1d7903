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
 *   iommufd_vevent_header, holds at most its depth unread, and reports what
 *   it had to drop by sequence gaps and LOST_EVENTS headers.
 * - a vEVENTQ (IOMMUFD_OBJ_VEVENTQ, IOMMU_VEVENTQ_ALLOC) with the
 *   unrecoverable stage-1 faults, as the vendor's own record (VT-d primary
 *   fault record, SMMUv3 event, ...) naming the vDEVICE's virt_id. They need
 *   no answer.
 *
 * The library wraps one queue of either kind: it creates or adopts it, tells
 * the VMM which fd to put in its event loop (the eventfd when there is one,
 * else the queue's fd for poll()), drains it, checks the sequence numbers,
 * hands page request groups and events to callbacks, and batches the
 * answers. It carries what a VMM otherwise gets wrong:
 *
 * - feature discovery that does not depend on the order in which the kernel
 *   checks its arguments (iof_probe());
 * - answering by what the guest's page group response carries, the device,
 *   PASID and page request group index (iof_answer_by());
 * - answering INVALID what could not be injected into the guest (the
 *   page_request callback's return value), so that no device waits forever;
 * - the guest's Response Failure, which the kernel does not take, written as
 *   INVALID (IOF_RESP_FAILURE);
 * - destroying a queue from inside its own callback (iof_queue_destroy());
 * - edge-triggered epoll that never leaves messages behind
 *   (iof_queue_epoll_add()).
 *
 * Parsing alone, without the rest, is iofault_msg.h: header only.
 *
 * One binary runs on any kernel from 7.3 on: what the kernel lacks (eventfds,
 * bounded queues, the one-step IOPF-capable HWPT allocation) falls back to
 * what is there (legacy queue, poll(), two-step allocation) unless the caller
 * asks to be strict.
 *
 * One struct iof_queue or iof_veventq must be used by one thread at a time.
 *
 * ---- Sizing a bounded fault queue ----
 *
 * @depth bounds the faults the kernel holds unread. When a page request
 * group does not fit whole in what is left of it, the kernel answers the
 * group IOMMUFD_PAGE_RESP_INVALID at once (the device sees its DMA fail, the
 * guest never sees the request) and the sequence shows its faults as lost.
 * So size it:
 * - at least the sum of the PRI Outstanding Page Request Allocations of the
 *   devices whose HWPTs report to the queue (what they may have in flight),
 * - and at least the guest's page request queue (VT-d: 2^(PQS+7) entries),
 *   so that what the guest can take, the queue can hold.
 * One device can crowd out the others sharing a queue: a device that floods
 * fills the depth and the others' groups are answered INVALID. Give a device
 * that must not suffer from another its own queue. A group of more faults
 * than @depth never fits and is always answered INVALID by the kernel.
 * The maximum depth is 2^19 (the kernel refuses more with EINVAL).
 *
 * Groups read but not answered yet are not bounded by @depth: only by the
 * devices' PRI credit, and by the kernel's cap of 4095 groups awaiting an
 * answer per queue (a read() beyond it fails with EBUSY, iof_queue_dispatch()
 * returns -EBUSY, until some are answered). Answer promptly; answer INVALID
 * what the guest will never see.
 *
 * ---- Cookies ----
 *
 * The kernel names each page request group with a 32-bit cookie (never 0;
 * keep it as uint32_t, it uses all 32 bits). A cookie is not handed out again
 * before 2^20 later groups of the same queue, whoever answered it, so a late
 * answer (to a group the kernel answered itself on detach) within that window
 * is refused with EINVAL and answers nobody else's group; the library counts
 * it in stats.refused and carries on. Guests do not know cookies: they answer
 * by device, PASID and PRGI (iof_answer_by()).
 *
 * ---- eventfds ----
 *
 * With IOMMU_FAULT_QUEUE_EVENTFD or IOMMU_VEVENTQ_ALLOC_EVENTFD the kernel
 * signals the eventfd once each time the queue makes messages readable (a
 * LOST_EVENTS header included), never once per message, never for answers.
 * Its count is a wake-up hint only: non-zero means "read until read()
 * returns 0", which is what iof_queue_dispatch() does. It is not the number
 * of messages, nor of groups. It cannot serve as a KVM irqfd: the guest has
 * nothing to see until the VMM has translated the fault.
 */
#ifndef IOFAULT_H
#define IOFAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/iommufd.h>

#include "iofault_msg.h"

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

/* A feature that can only be tried with a device or a vIOMMU at hand */
enum iof_cap {
	IOF_CAP_UNKNOWN = 0,	/* not tried yet in this process */
	IOF_CAP_NO,
	IOF_CAP_YES,
};

struct iof_caps {
	bool fault_eventfd;	/* IOMMU_FAULT_QUEUE_EVENTFD */
	bool fault_bounded;	/* IOMMU_FAULT_QUEUE_BOUNDED */
	/* Learned by the first iof_queue_alloc_nested() that tried it */
	enum iof_cap iopf_capable;	/* IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE */
	/* Learned by the first iof_veventq_create() that asked for it */
	enum iof_cap veventq_eventfd;	/* IOMMU_VEVENTQ_ALLOC_EVENTFD */
};

/*
 * What the kernel behind @iommufd offers, found without relying on the order
 * in which it checks an ioctl's arguments (that order is no ABI).
 *
 * fault_eventfd and fault_bounded are probed by making throwaway fault queues
 * and destroying them: one IOMMU_FAULT_QUEUE_ALLOC with
 * IOMMU_FAULT_QUEUE_EVENTFD | IOMMU_FAULT_QUEUE_BOUNDED (a new eventfd, depth
 * 1); only if the kernel refuses that as unsupported, one with each flag
 * alone. Every queue made is closed and destroyed (IOMMU_DESTROY) before the
 * call returns. Cost, on the first call of a process: 1 (a kernel with both
 * flags) to 3 IOMMU_FAULT_QUEUE_ALLOC and as many IOMMU_DESTROY as queues
 * made, one eventfd and at most one fault fd open at a time (all closed
 * again), object IDs used up; no device, HWPT or vIOMMU is needed and
 * nothing stays allocated. Later calls make no system call: the answer is
 * the same for every iommufd of a kernel and is kept for the process.
 *
 * It relies on two documented rules only: a queue made with a flag means the
 * kernel has it; a kernel without it refuses it with EOPNOTSUPP (iommufd's
 * rule for an unknown flag; also what a kernel without CONFIG_EVENTFD says to
 * the EVENTFD flag) or with E2BIG (a kernel whose struct iommu_fault_alloc is
 * 7.3's 16 bytes sees the non-zero eventfd or depth beyond it:
 * copy_struct_from_user()'s rule). The request is otherwise well formed (a
 * real eventfd, a valid depth), so which check comes first does not matter.
 * Any other failure is returned as -errno and nothing is kept: ENOTTY (not
 * an iommufd, or a kernel before 6.11 without fault queues), EMFILE,
 * ENOMEM, ...
 *
 * iopf_capable and veventq_eventfd cannot be probed without a device or a
 * vIOMMU: they stay IOF_CAP_UNKNOWN until iof_queue_alloc_nested() or
 * iof_veventq_create() tried the flag with a real allocation (falling back to
 * 7.3's way when the kernel refuses it with EOPNOTSUPP or E2BIG; see there).
 * Returns 0, or -errno when the probe itself failed.
 */
int iof_probe(int iommufd, struct iof_caps *caps);

/* ---- Sequence numbers: see iofault_msg.h (struct iof_seq) ---- */

/* ---- Fault queues: page requests ---- */

struct iof_queue;

/* One fault of a page request group */
struct iof_fault {
	uint32_t flags;		/* IOMMU_PGFAULT_FLAGS_* */
	uint32_t perm;		/* IOMMU_PGFAULT_PERM_* */
	uint64_t addr;
};

/*
 * A whole page request group, answered with iof_answer(cookie) or
 * iof_answer_by(dev_id, pasid_valid, pasid, grpid)
 */
struct iof_group {
	uint32_t dev_id;
	uint32_t pasid;		/* valid if pasid_valid */
	bool pasid_valid;
	uint32_t grpid;		/* the page request group index (PRGI) */
	uint32_t cookie;
	uint32_t seq;		/* of its first fault; bounded queues only */
	uint32_t nr_faults;
	const struct iof_fault *faults;	/* valid during the callback only */
};

/*
 * The answer codes a guest gives, as its vIOMMU decodes them from a page
 * group response (PCIe's PRG Response and VT-d's page group response
 * descriptor encode Response Failure as 0xf: pass IOF_RESP_FAILURE). The
 * values are QEMU's IOMMUPRIResponseCode; the first two are
 * IOMMUFD_PAGE_RESP_SUCCESS and _INVALID.
 */
enum iof_resp_code {
	IOF_RESP_SUCCESS = 0,	/* the page is there: retry the access */
	IOF_RESP_INVALID = 1,	/* Invalid Request: the access fails */
	/*
	 * Response Failure: in PCIe the function takes its Page Request
	 * Interface as failed and issues no more requests until it is reset. The kernel takes only SUCCESS and INVALID: any
	 * other code is EINVAL and the group stays unanswered, the device
	 * waiting for an answer until it is detached. And a guest must not be
	 * able to stop the PRI of a physical function the host owns. So the
	 * library writes INVALID, the nearest answer the kernel takes (this
	 * access fails, as the guest meant), and counts it in
	 * stats.failure_as_invalid: a VMM that wants to emulate the stopped
	 * interface answers that device's later groups INVALID itself.
	 */
	IOF_RESP_FAILURE = 2,
};

/* What the VMM does with what comes out of the queue */
struct iof_ops {
	/*
	 * A page request group. Inject it into the guest and return 0; the
	 * guest's answer comes later through iof_answer() or iof_answer_by()
	 * (or answer it here). Return non-zero when it could not be injected:
	 * the guest's page request queue is full or disabled (pass on, say,
	 * the -ENOSPC or -EPERM of QEMU's pri_request_page()). The library then
	 * answers the group IOMMUFD_PAGE_RESP_INVALID at once and counts it in
	 * stats.not_injected: nobody would ever answer it, and its device would
	 * wait until detached. A group the callback answered or forgot
	 * (iof_forget_device()) is not answered again.
	 */
	int (*page_request)(struct iof_queue *q, const struct iof_group *g,
			    void *arg);
	/*
	 * Bounded queues: @count faults from sequence number @seq on were
	 * lost. The kernel answered their groups INVALID itself (queue full,
	 * or withdrawn on detach); the guest may be told its page request
	 * queue overflowed.
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
	uint64_t not_injected;	/* groups the callback could not inject, INVALID */
	uint64_t failure_as_invalid; /* IOF_RESP_FAILURE answers, written INVALID */
	uint64_t unmatched;	/* iof_answer_by() calls that matched no group */
	uint64_t superseded;	/* groups whose (dev, PASID, PRGI) came again */
	uint64_t writes;	/* write() calls */
	uint64_t malformed;	/* messages that made no sense, skipped */
	uint32_t outstanding;	/* groups delivered and not answered yet */
	struct iof_seq seq;	/* bounded queues: sequence and loss */
};

struct iof_config {
	/*
	 * IOMMU_FAULT_QUEUE_* wanted. With IOMMU_FAULT_QUEUE_EVENTFD the
	 * library makes the eventfd. What the kernel lacks (iof_probe()) is
	 * dropped (a legacy queue waited on with poll()) unless @strict is set.
	 */
	uint32_t flags;
	/*
	 * Bounded queues: the most unread faults, 1 to 2^19; 0 for 256. See
	 * "Sizing a bounded fault queue" above.
	 */
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
 * Calls iof_probe() when @cfg asks for flags.
 */
struct iof_queue *iof_queue_create(int iommufd, const struct iof_config *cfg);

/*
 * Allocate a nested HWPT of @dev_id on @parent_id (a vIOMMU or a nesting
 * parent HWPT) together with a new queue. The stage-1 data is @data; the
 * HWPT ID goes to *@hwpt_id. NULL and errno on failure, and then nothing is
 * left behind.
 *
 * It tries one step, IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE, unless this
 * process saw the kernel refuse it before. If the kernel refuses the flag
 * (EOPNOTSUPP, the unknown-flag rule, or E2BIG from a kernel whose struct
 * iommu_hwpt_alloc ends at __reserved2), it makes the same thing in two
 * steps with 7.3's structs: IOMMU_FAULT_QUEUE_ALLOC, then IOMMU_HWPT_ALLOC
 * with IOMMU_HWPT_FAULT_ID_VALID. Falling back is always safe: an EOPNOTSUPP
 * with another cause fails the two steps too, and their error is returned.
 * Only when the two steps succeed is the flag taken as missing
 * (caps.iopf_capable = IOF_CAP_NO), and later calls go straight to two
 * steps; a success in one step makes it IOF_CAP_YES. Cost on a kernel
 * without the flag: one refused ioctl, once per process.
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
 * Write the buffered answers, close the fds and destroy the queue object
 * (which answers INVALID whatever the queue still holds). Destroy the HWPTs
 * that use the queue first, or IOMMU_DESTROY fails with EBUSY (the fds are
 * closed and @q freed anyway; the object then goes away with the iommufd).
 *
 * Safe from inside one of @q's own callbacks: the teardown is deferred until
 * the iof_queue_dispatch() (or iof_parse()) running them unwinds. Nothing of
 * @q is called back after that, and the dispatch returns -ECANCELED once @q
 * is gone. Either way @q must not be used after this call. Returns 0 when
 * deferred (an IOMMU_DESTROY error is then not reported).
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

/*
 * Add the wait fd to @epfd with @events (0: EPOLLIN) and @data. Edge
 * triggered (EPOLLET) is safe: whenever a dispatch stops with messages left
 * (after max_reads, or on EBUSY until answers are flushed) the library makes
 * the wait fd report again, by signalling the eventfd it read the count of,
 * or else by re-arming this registration (EPOLL_CTL_MOD). So it remembers
 * @epfd: keep it open while the queue is registered, and call this again
 * after removing the fd from it yourself. A VMM that adds the wait fd to its
 * loop by other means must use level-triggered waits on the poll() path.
 */
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
 * and the queue stays ready for the next wait, so that one queue cannot
 * starve the caller's event loop (see iof_queue_epoll_add()).
 *
 * -EBUSY: 4095 groups of this queue await an answer and the kernel reads no
 * more until some are answered; after the next iof_flush() that writes one,
 * the wait fd reports readable again (meanwhile a level-triggered wait on
 * the queue fd itself, without an eventfd, may keep reporting it: answer
 * before waiting on it again). -ECANCELED: a callback destroyed @q,
 * which is gone now. -EDEADLK when called from one of @q's own callbacks.
 */
int iof_queue_dispatch(struct iof_queue *q, const struct iof_ops *ops,
		       void *arg);

/*
 * Answer a group with an enum iof_resp_code (IOMMUFD_PAGE_RESP_SUCCESS and
 * _INVALID are the same values; IOF_RESP_FAILURE is written as INVALID, see
 * there). The answer is buffered and written by iof_flush(), or when the
 * buffer is full. Returns -ENOENT for a cookie that is not outstanding
 * (never delivered, or already answered), -EINVAL for a bad code.
 */
int iof_answer(struct iof_queue *q, uint32_t cookie, uint32_t code);

/*
 * Answer the outstanding group of @dev_id with this PASID (compared only
 * when @pasid_valid; a group without a PASID matches only !@pasid_valid) and
 * page request group index @grpid: what a guest's page group response
 * carries, once the VMM has mapped the guest's requester ID to the iommufd
 * dev_id. Codes as iof_answer().
 *
 * A device reuses a PRGI only once its group was answered. So when a group
 * arrives with the (dev_id, PASID, PRGI) of one still outstanding, the older
 * one was answered by the kernel behind the library's back (its device was
 * detached or its HWPT replaced, and iof_forget_device() was not called):
 * the newer group takes the key and the older one is counted in
 * stats.superseded. The older one stays answerable by cookie (the kernel
 * would refuse that answer, harmlessly) and goes with iof_forget_device().
 *
 * No outstanding group with that key (answered already, lost to a full
 * queue, withdrawn on detach, or never delivered): -ENOENT, nothing is
 * written, and it is counted in stats.unmatched.
 */
int iof_answer_by(struct iof_queue *q, uint32_t dev_id, bool pasid_valid,
		  uint32_t pasid, uint32_t grpid, uint32_t code);

/*
 * Write the buffered answers. Returns the number written, or -errno. An
 * answer the kernel refuses (a group it answered itself on detach) is
 * skipped and counted in stats.refused.
 */
int iof_flush(struct iof_queue *q);

/*
 * Forget the outstanding groups of @dev_id: the kernel answered them when
 * the device was detached or moved to another HWPT. Call it then. Returns
 * how many.
 */
unsigned int iof_forget_device(struct iof_queue *q, uint32_t dev_id);

const struct iof_stats *iof_queue_stats(const struct iof_queue *q);

/*
 * What /proc/self/fdinfo shows of a fault fd (kernels with the series).
 * Every sequence number lost is in @lost or @withdrawn: on a bounded queue,
 * stats.seq.lost == lost + withdrawn once everything was read.
 */
struct iof_fdinfo {
	uint32_t flags, depth, queued, awaiting;
	uint64_t lost;		/* faults lost because the queue was full */
	/*
	 * Unread faults withdrawn because their device was detached or its
	 * HWPT replaced (the kernel answered their groups). Kernels that do
	 * not show them apart (no "withdrawn:" line, @has_withdrawn false)
	 * count them in @lost, and @withdrawn is 0.
	 */
	uint64_t withdrawn;
	bool has_withdrawn;
};
int iof_queue_fdinfo(const struct iof_queue *q, struct iof_fdinfo *info);

/*
 * For tests and tools: a queue with no kernel object behind it, legacy or
 * (IOMMU_FAULT_QUEUE_BOUNDED in @flags) bounded, to feed bytes to
 * iof_parse() as read() would have returned them. From a callback, free it
 * with iof_queue_destroy(), not iof_parser_free().
 */
struct iof_queue *iof_parser_new(uint32_t flags);
void iof_parser_free(struct iof_queue *q);
/* As iof_queue_dispatch() for one read()'s bytes */
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
	/*
	 * The most unread events, 1 to 2^19; 0 for 256. At least what the
	 * guest's vIOMMU can take at once (SMMUv3: its event queue); beyond
	 * it, events are lost into the sequence, which the VMM reports to the
	 * guest as an overflow (SMMUv3 EVENTQ overflow, VT-d PFO)
	 */
	uint32_t depth;
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

/*
 * Create a vEVENTQ on @viommu_id. NULL and errno on failure.
 *
 * With IOMMU_VEVENTQ_ALLOC_EVENTFD in cfg->flags it asks for the eventfd,
 * unless this process saw the kernel refuse it before. If the kernel refuses
 * it (EOPNOTSUPP: the unknown-flag rule of 7.3, or a kernel without
 * CONFIG_EVENTFD; E2BIG), it asks again without (unless cfg->strict), and
 * when that succeeds takes the flag as missing (caps.veventq_eventfd =
 * IOF_CAP_NO). An EOPNOTSUPP with another cause (a type the vIOMMU does not
 * have) fails the second try too, and that error is returned.
 */
struct iof_veventq *iof_veventq_create(int iommufd, uint32_t viommu_id,
				       const struct iof_veventq_config *cfg);
/* Wrap a new vEVENTQ made elsewhere; the library owns the fds from now on */
struct iof_veventq *iof_veventq_adopt(int iommufd, uint32_t veventq_id,
				      int veventq_fd, int eventfd,
				      const struct iof_veventq_config *cfg);
/*
 * Close the fds and destroy the object; events still queued are gone. Safe
 * from inside @q's own callbacks, as iof_queue_destroy(): deferred until the
 * dispatch unwinds, which then returns -ECANCELED.
 */
int iof_veventq_destroy(struct iof_veventq *q);
uint32_t iof_veventq_id(const struct iof_veventq *q);
/* IOMMU_VEVENTQ_ALLOC_* flags it has, after any fallback */
uint32_t iof_veventq_flags(const struct iof_veventq *q);
int iof_veventq_wait_fd(const struct iof_veventq *q);
/* As iof_queue_epoll_add(): edge triggered is safe */
int iof_veventq_epoll_add(struct iof_veventq *q, int epfd, uint32_t events,
			  uint64_t data);
int iof_veventq_wait(struct iof_veventq *q, int timeout_ms);
/*
 * As iof_queue_dispatch(): returns the events handled, or -errno;
 * -ECANCELED when a callback destroyed @q
 */
int iof_veventq_dispatch(struct iof_veventq *q,
			 const struct iof_vevent_ops *ops, void *arg);
const struct iof_vstats *iof_veventq_stats(const struct iof_veventq *q);

/* For tests and tools: a vEVENTQ parser with no kernel object behind it */
struct iof_veventq *iof_vparser_new(const struct iof_veventq_config *cfg);
void iof_vparser_free(struct iof_veventq *q);
/* As iof_veventq_dispatch() for one read()'s bytes */
int iof_vparse(struct iof_veventq *q, const void *buf, size_t len,
	       const struct iof_vevent_ops *ops, void *arg);

#ifdef __cplusplus
}
#endif
#endif
