/* SPDX-License-Identifier: MIT */
/*
 * iofault: the VMM side of iommufd's stage-1 fault delivery (libiofault 2).
 *
 * A VMM that gives its guest a virtual IOMMU with nested translation reads
 * two channels per vIOMMU:
 *
 * - a fault queue (IOMMUFD_OBJ_FAULT, IOMMU_FAULT_QUEUE_ALLOC) with the page
 *   requests (PCIe PRI, SMMUv3 stall) of the devices whose nested HWPTs
 *   report to it. The guest answers each page request group; the VMM writes
 *   the answer back. 7.3's queue delivers bare struct iommu_hwpt_pgfault
 *   messages; with IOF_FAULT_QUEUE_HEADER each comes after a struct
 *   iommufd_vevent_header with a sequence number, and a bounded queue
 *   (IOF_FAULT_QUEUE_BOUNDED) holds at most its depth unread.
 * - a vEVENTQ (IOMMUFD_OBJ_VEVENTQ, IOMMU_VEVENTQ_ALLOC) with the
 *   unrecoverable stage-1 faults, as the vendor's own record (VT-d primary
 *   fault record, SMMUv3 event, ...) naming the vDEVICE's virt_id. They need
 *   no answer.
 *
 * The library wraps one queue of either kind: it creates or adopts it, tells
 * the VMM which fd to put in its event loop, drains it, checks the sequence
 * numbers, hands page request groups and events to callbacks, and batches
 * the answers, which may come from any thread. It carries what a VMM
 * otherwise gets wrong:
 *
 * - feature discovery that does not depend on the order in which the kernel
 *   checks its arguments (iof_probe());
 * - answering by what the guest's page group response carries, the device,
 *   PASID and page request group index (iof_answer_by());
 * - answering INVALID what could not be injected into the guest, or what
 *   the library could not keep track of (out of memory), so that no device
 *   waits forever;
 * - the guest's Response Failure, which the kernel does not take, written as
 *   INVALID (IOF_RESP_FAILURE);
 * - the cap of groups awaiting an answer (-EAGAIN, iof_queue_dispatch());
 * - destroying a queue from inside its own callback (iof_queue_destroy());
 * - edge-triggered waits that never leave messages behind;
 * - a VMM restart that keeps the fds: iof_queue_save(), iof_queue_resume().
 *
 * Parsing alone, without the rest, is iofault_msg.h: header only.
 *
 * One binary runs on any kernel from 7.3 on: what the kernel lacks (eventfds,
 * the header format, bounded queues, the one-step IOPF-capable HWPT) falls
 * back to what is there (7.3's queue, poll(), two steps) unless the caller
 * asks to be strict.
 *
 * Sizing a bounded queue, how many groups may await an answer and what a
 * cookie is: Documentation/userspace-api/iommufd.rst of the kernel (the
 * sizing rule), and the notes at IOF_FAULT_QUEUE_BOUNDED below.
 *
 * ---- Threads ----
 *
 * Answers come from wherever the VMM learns the guest's answer, a vCPU
 * thread in every VMM. So, per fault queue:
 *
 * - any thread, at any time, concurrently with each other and with a
 *   dispatch: iof_answer(), iof_answer_by(), iof_flush(),
 *   iof_forget_device(), iof_outstanding(), iof_queue_get_stats(),
 *   iof_queue_stalled(), and the accessors of what never changes
 *   (iof_queue_id(), _flags(), _depth(), _fd(), _wait_fd(), _one_step());
 * - one thread at a time, the caller serialising (the VMM's event loop;
 *   it may move between threads): iof_queue_dispatch(), iof_queue_wait(),
 *   iof_queue_epoll_add(), iof_parse(), iof_queue_fdinfo();
 * - nothing else on the queue in flight: iof_queue_destroy(),
 *   iof_queue_release(), iof_queue_save(), iof_queue_stats() (a pointer to
 *   live counters; from several threads use iof_queue_get_stats()). The
 *   exception: a callback may call iof_queue_destroy() on its own queue.
 *
 * The callbacks run on the thread that dispatches, with no lock of the
 * library held: they may take any lock of the VMM's and call anything
 * above. Lock order: the library's locks (one per queue, one for the
 * process's probe results) are leaves, taken inside whatever the VMM holds
 * and never held across a callback or a wait, so a vCPU thread may answer
 * with the vIOMMU's lock held while the event loop's callback takes that
 * same lock to inject the next request. Nothing in the library waits for a
 * VMM lock or for another thread; what it holds its lock across are the
 * answers' write()s to the queue fd, which do not block.
 *
 * A vEVENTQ (struct iof_veventq) is used by one thread at a time, the
 * caller serialising: vEVENTs need no answer, so nothing else touches it.
 * iof_probe() and the calls that create a queue may run on any thread.
 *
 * ---- What is the VMM's ----
 *
 * The library never takes what the VMM owns. An fd or an eventfd the VMM
 * passes in (iof_queue_adopt(), iof_config.eventfd) stays the VMM's: the
 * library never closes it, never changes its file status flags (no
 * O_NONBLOCK behind the VMM's back), never reads a passed-in eventfd (one
 * eventfd may serve several queues: the VMM takes its count), and destroys
 * no object it did not make. It writes to such an eventfd only to make it
 * report again when it leaves messages to read (a spurious wake-up at
 * worst). What the library made (iof_queue_create(), an eventfd it made)
 * it closes on iof_queue_destroy(), or hands over on iof_queue_release().
 *
 * ---- ABI ----
 *
 * libiofault.so.2; every symbol is versioned (LIBIOFAULT_2.0, ...). Within
 * major version 2, a minor version may add functions (in a new version
 * node), add members at the end of structs the library allocates and hands
 * out (struct iof_group, iof_vevent, iof_stats, iof_vstats: read them
 * through the pointer, never copy them by sizeof into storage of an older
 * build; iof_queue_get_stats() takes the caller's size), give a reserved
 * member of a struct the caller allocates (iof_config, iof_veventq_config,
 * iof_caps, iof_ops, iof_vevent_ops, iof_fdinfo) a meaning whose zero value
 * is today's behaviour, and add enum values and flags. It never removes or
 * changes a function, a member's offset or a value, and never changes what
 * a call does to a queue already working. Zero the structs you allocate
 * (designated initializers do), reserved members included. Anything else
 * is major version 3.
 */
#ifndef IOFAULT_H
#define IOFAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/iommufd.h>

#include "iofault_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IOF_VERSION_MAJOR 2
#define IOF_VERSION_MINOR 0
/* The version of the library running, which may be newer than the header */
int iof_version_major(void);
int iof_version_minor(void);

/* ---- Flags (the values of the series' uAPI: build on any 7.3 header) ---- */

/* Signal an eventfd when the queue becomes readable */
#define IOF_FAULT_QUEUE_EVENTFD		(1U << 0)
/* Messages are a struct iommufd_vevent_header and a pgfault, numbered */
#define IOF_FAULT_QUEUE_HEADER		(1U << 1)
/*
 * At most @depth faults wait unread (implies IOF_FAULT_QUEUE_HEADER). A
 * page request group that does not fit whole is answered by the kernel at
 * once with IOMMUFD_PAGE_RESP_SUCCESS, as a full hardware page request
 * queue answers (the device retries), and its faults show as lost in the
 * sequence; the VMM reports that to its guest as the hardware would (VT-d:
 * PRS.PRO). A group of more faults than @depth never fits. @depth does not
 * bound the groups read and not answered: those are bounded by the
 * devices' PRI allocations and by the kernel's cap of 32767 per queue.
 */
#define IOF_FAULT_QUEUE_BOUNDED		(1U << 2)
#define IOF_VEVENTQ_EVENTFD		(1U << 0)

/* vEVENT types the library decodes */
#define IOF_VEVENTQ_TYPE_SELFTEST	0xbeefbeef	/* the mock driver's */
#define IOF_VEVENTQ_TYPE_INTEL_VTD	3	/* the series' proposal */

/* ---- What the kernel offers ---- */

/* A feature that can only be tried with a device or a vIOMMU at hand */
enum iof_cap {
	IOF_CAP_UNKNOWN = 0,	/* not tried yet in this process */
	IOF_CAP_NO,
	IOF_CAP_YES,
};

struct iof_caps {
	bool fault_eventfd;	/* IOF_FAULT_QUEUE_EVENTFD */
	bool fault_header;	/* IOF_FAULT_QUEUE_HEADER */
	bool fault_bounded;	/* IOF_FAULT_QUEUE_BOUNDED */
	/* Learned by the first iof_queue_alloc_nested() that tried it */
	enum iof_cap iopf_capable;	/* the one-step IOPF_CAPABLE HWPT */
	/* Learned by the first iof_veventq_create() that asked for it */
	enum iof_cap veventq_eventfd;	/* IOF_VEVENTQ_EVENTFD */
	uint32_t reserved[4];
};

/*
 * What the kernel behind @iommufd offers, found without relying on the order
 * in which it checks an ioctl's arguments (that order is no ABI).
 *
 * The fault queue flags are probed with throwaway queues: one
 * IOMMU_FAULT_QUEUE_ALLOC with all three flags (a new eventfd, depth 1);
 * only if the kernel refuses that, one with each flag alone. Each queue made
 * is closed and destroyed before the call returns: 1 to 4 allocations on the
 * first call of a process, none later (one kernel per process). No device,
 * HWPT or vIOMMU is needed and nothing stays allocated.
 *
 * It relies on two rules only: a queue made with a flag means the kernel has
 * it; a kernel without it refuses a well-formed request with EOPNOTSUPP (the
 * unknown-flag rule; also a kernel without CONFIG_EVENTFD) or E2BIG (7.3's
 * 16-byte struct sees the non-zero eventfd or depth beyond it). One kernel
 * gave bit 1 another meaning (the series' unreleased v2, where it was the
 * bound and needed a depth): it refuses the header flag alone with EINVAL,
 * and that too counts as not having it. Any other failure is returned as
 * -errno and nothing is kept: ENOTTY (not an iommufd), EMFILE, ENOMEM, ...
 *
 * iopf_capable and veventq_eventfd stay IOF_CAP_UNKNOWN until a real
 * allocation tried them (see iof_queue_alloc_nested(), iof_veventq_create()).
 * Returns 0, or -errno when the probe itself failed.
 */
int iof_probe(int iommufd, struct iof_caps *caps);

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
	/*
	 * The kernel's name for the group, any u32 but 0: (generation << 15)
	 * | slot on the series' kernels, handed out again at the earliest
	 * after 2^17 later groups of the queue; a small index on 7.3
	 */
	uint32_t cookie;
	uint32_t seq;		/* of its first fault; header queues only */
	uint32_t nr_faults;
	const struct iof_fault *faults;	/* valid during the callback only */
};

/*
 * The answer codes a guest gives, as its vIOMMU decodes them from a page
 * group response. The values are QEMU's IOMMUPRIResponseCode; the first two
 * are IOMMUFD_PAGE_RESP_SUCCESS and _INVALID.
 */
enum iof_resp_code {
	IOF_RESP_SUCCESS = 0,	/* the page is there: retry the access */
	IOF_RESP_INVALID = 1,	/* Invalid Request: the access fails */
	/*
	 * Response Failure (PCIe: the function stops its Page Request
	 * Interface until reset). The kernel takes SUCCESS and INVALID only,
	 * and a guest must not stop the PRI of a function the host owns: the
	 * library writes INVALID (this access fails, as the guest meant) and
	 * counts it in stats.failure_as_invalid.
	 */
	IOF_RESP_FAILURE = 2,
};

/* What the VMM does with what comes out of the queue */
struct iof_ops {
	/*
	 * A page request group. Inject it into the guest and return 0; the
	 * guest's answer comes later through iof_answer() or iof_answer_by(),
	 * from any thread, or here. The group is answerable before this is
	 * called. Return non-zero when it could not be injected (the guest's
	 * page request queue is full or disabled): the library answers it
	 * IOMMUFD_PAGE_RESP_INVALID at once, unless it was answered already,
	 * and counts it in stats.not_injected.
	 */
	int (*page_request)(struct iof_queue *q, const struct iof_group *g,
			    void *arg);
	/*
	 * Header queues: @count faults from sequence number @seq on were
	 * lost to a full bounded queue (the kernel answered their groups
	 * SUCCESS: the devices retry). Withdrawn faults never show here.
	 */
	void (*lost)(struct iof_queue *q, uint32_t seq, uint32_t count,
		     void *arg);
	void *reserved[4];
};

struct iof_stats {
	uint64_t reads;		/* read() calls that returned data */
	uint64_t wakeups;	/* eventfd counts taken that were not 0 */
	uint64_t messages;	/* struct iommu_hwpt_pgfault messages parsed */
	uint64_t groups;	/* page request groups delivered */
	uint64_t answered;	/* answers the kernel accepted */
	uint64_t answered_success; /* of them, IOMMUFD_PAGE_RESP_SUCCESS */
	uint64_t refused;	/* answers the kernel refused */
	uint64_t auto_invalid;	/* malformed groups answered INVALID by us */
	uint64_t not_injected;	/* groups the callback could not inject */
	uint64_t failure_as_invalid; /* IOF_RESP_FAILURE answers */
	uint64_t unmatched;	/* iof_answer_by() calls that matched no group */
	uint64_t superseded;	/* groups whose (dev, PASID, PRGI) came again */
	uint64_t writes;	/* write() calls */
	uint64_t malformed;	/* messages that made no sense, skipped */
	uint32_t outstanding;	/* groups delivered and not answered yet */
	struct iof_seq seq;	/* header queues: sequence and loss */
	/* 2.0 */
	uint64_t stalls;	/* dispatches stopped at the kernel's cap */
	uint64_t stale;		/* forgotten groups whose cookie came back */
	uint64_t nomem_invalid;	/* groups answered INVALID for want of memory */
	/*
	 * Adopted in mid-stream without a saved state: groups the kernel
	 * says await an answer that this process cannot name (fdinfo's
	 * "awaiting"); UINT32_MAX when the kernel does not say
	 */
	uint32_t orphaned;
};

struct iof_config {
	/*
	 * IOF_FAULT_QUEUE_* wanted. What the kernel lacks (iof_probe()) is
	 * dropped unless @strict: EVENTFD falls back to poll(), BOUNDED to
	 * HEADER, HEADER to 7.3's messages.
	 */
	uint32_t flags;
	/* Bounded queues: the most unread faults, 1 to 2^19; 0 for 256 */
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
	/*
	 * With IOF_FAULT_QUEUE_EVENTFD: signal @eventfd, the VMM's, instead
	 * of one the library makes. It stays the VMM's (see "What is the
	 * VMM's"): the VMM waits on it and takes its count, then dispatches
	 * every queue it serves.
	 */
	bool use_eventfd;
	int eventfd;
	uint32_t reserved[6];
};

/*
 * Create a queue with IOMMU_FAULT_QUEUE_ALLOC. @cfg may be NULL. Returns
 * NULL and sets errno on failure. Give its ID to IOMMU_HWPT_ALLOC
 * (IOMMU_HWPT_FAULT_ID_VALID, fault_id) to have it take the HWPT's faults.
 */
struct iof_queue *iof_queue_create(int iommufd, const struct iof_config *cfg);

/*
 * Allocate a nested HWPT of @dev_id on @parent_id (a vIOMMU or a nesting
 * parent HWPT) together with a new queue; the HWPT ID goes to *@hwpt_id.
 * NULL and errno on failure, and then nothing is left behind.
 *
 * It tries one step (IOPF_CAPABLE) unless this process saw the kernel
 * refuse it. Refused (EOPNOTSUPP or E2BIG), it makes the same in two steps
 * with 7.3's structs, and only when those succeed takes the flag as missing
 * (caps.iopf_capable = IOF_CAP_NO); any other error is returned at once.
 */
struct iof_queue *iof_queue_alloc_nested(int iommufd, uint32_t dev_id,
					 uint32_t parent_id,
					 uint32_t data_type, const void *data,
					 uint32_t data_len,
					 const struct iof_config *cfg,
					 uint32_t *hwpt_id);

/*
 * Wrap a queue made elsewhere, new or in mid-stream (a VMM that restarted
 * and kept the fds): its ID, its fd and its eventfd (-1 for none), all of
 * which stay the caller's. @cfg gives the flags it was made with; on a
 * kernel whose fdinfo shows them (the series), they and the depth are read
 * from there instead, and a @cfg that disagrees is EINVAL. The sequence
 * starts where the kernel is (fdinfo's "sequence"; else from the first
 * header read, without a loss).
 *
 * Groups read before and not answered cannot be named without the state
 * the previous owner saved (iof_queue_resume()): stats.orphaned says how
 * many the kernel holds. To have them answered, replace the HWPT of each
 * device reporting to the queue (the kernel answers them INVALID; the
 * devices retry) or pass the saved state.
 *
 * Call iof_queue_dispatch() once before the first wait: an edge-triggered
 * eventfd whose count the previous owner took does not fire again for
 * faults already waiting.
 */
struct iof_queue *iof_queue_adopt(int iommufd, uint32_t fault_id,
				  int fault_fd, int eventfd,
				  const struct iof_config *cfg);

/*
 * Save what another process needs to take the queue over: the groups
 * outstanding (cookie and key) and the sequence reached. Writes the
 * buffered answers first. Returns the size of the state, written to @buf
 * if @len is large enough (else only the size: call again); -errno if the
 * answers cannot be written. Nothing may be dispatched or answered on @q
 * between the save and the end of its use (iof_queue_release()).
 */
ssize_t iof_queue_save(struct iof_queue *q, void *buf, size_t len);

/*
 * iof_queue_adopt() with the state iof_queue_save() gave: every group
 * outstanding then is answerable again, by cookie and by key, exactly
 * once. When the kernel shows its state (fdinfo), a saved state that is
 * not the kernel's (groups were read or answered after the save, or it is
 * another queue's) is refused with ESTALE; a state of a newer library
 * version with EPROTO; a malformed one with EINVAL.
 */
struct iof_queue *iof_queue_resume(int iommufd, uint32_t fault_id,
				   int fault_fd, int eventfd,
				   const struct iof_config *cfg,
				   const void *state, size_t len);

/*
 * Write the buffered answers and free the library's state, leaving the
 * fds, the eventfd and the object as they are: they are the caller's now
 * (to pass to the process that takes over). Returns 0 or the -errno of the
 * last write.
 */
int iof_queue_release(struct iof_queue *q);

/*
 * Write the buffered answers, close the fds the library made and destroy
 * the object if the library made it (which answers INVALID whatever the
 * queue still holds). Destroy the HWPTs that use the queue first, or
 * IOMMU_DESTROY fails with EBUSY (@q is freed anyway; the object then goes
 * away with the iommufd). An adopted queue's fds and object are left alone.
 *
 * Safe from inside one of @q's own callbacks: the teardown is deferred until
 * the iof_queue_dispatch() (or iof_parse()) running them unwinds, which then
 * returns -ECANCELED. Either way @q must not be used after this call.
 * Returns 0 when deferred.
 */
int iof_queue_destroy(struct iof_queue *q);

uint32_t iof_queue_id(const struct iof_queue *q);
/*
 * The IOF_FAULT_QUEUE_* flags the queue has, after any fallback; a bounded
 * queue has IOF_FAULT_QUEUE_HEADER too, as the kernel shows it
 */
uint32_t iof_queue_flags(const struct iof_queue *q);
uint32_t iof_queue_depth(const struct iof_queue *q);
/* Was it made by one IOPF_CAPABLE IOMMU_HWPT_ALLOC call? */
bool iof_queue_one_step(const struct iof_queue *q);
/* The queue's own fd (read, write, fdinfo) */
int iof_queue_fd(const struct iof_queue *q);

/* The fd to wait on for EPOLLIN: the eventfd if there is one */
int iof_queue_wait_fd(const struct iof_queue *q);

/*
 * Add the wait fd to @epfd with @events (0: EPOLLIN) and @data. Edge
 * triggered (EPOLLET) is safe: whenever a dispatch stops with messages left
 * (after max_reads), or answers make room under the kernel's cap, the wait
 * fd reports again (the library signals the eventfd, or re-arms this
 * registration with EPOLL_CTL_MOD; the series' kernel also signals the
 * eventfd and wakes poll() when an answer makes a capped queue readable).
 * So it remembers @epfd: keep it open while the queue is registered.
 */
int iof_queue_epoll_add(struct iof_queue *q, int epfd, uint32_t events,
			uint64_t data);

/*
 * Wait up to @timeout_ms (-1: forever) for the wait fd to be readable.
 * Returns 1 when readable, 0 on timeout, -errno (-EINTR on a signal).
 */
int iof_queue_wait(struct iof_queue *q, int timeout_ms);

/*
 * Drain the queue: take the count of an eventfd the library made (a wake-up
 * hint only), then read until read() returns 0 or fails with EAGAIN, and
 * call @ops for what was read. Returns the number of messages handled, or
 * -errno. Never blocks. After max_reads reads it returns anyway with the
 * queue left ready for the next wait, so that one queue cannot starve the
 * caller's event loop.
 *
 * -EAGAIN (when nothing was handled; else the count, and
 * iof_queue_stalled() says it): 32767 groups of this queue await an answer,
 * and the kernel hands out no more until some are answered. The queue is
 * not readable meanwhile; once an answer is accepted (by iof_flush() on any
 * thread, or the kernel's own on a detach) it is again, and the wait fd
 * reports it. Answer promptly; answer INVALID what the guest will never see.
 * -ECANCELED: a callback destroyed @q, which is gone now. -EDEADLK: called
 * from one of @q's own callbacks.
 */
int iof_queue_dispatch(struct iof_queue *q, const struct iof_ops *ops,
		       void *arg);

/* Did the last dispatch stop at the cap, with no answer accepted since? */
bool iof_queue_stalled(const struct iof_queue *q);

/*
 * Answer a group with an enum iof_resp_code. The answer is buffered and
 * written by iof_flush(), or when the buffer is full: call iof_flush() when
 * the guest's response has been handled. Returns -ENOENT for a cookie that
 * is not outstanding (never delivered, or answered already), -EINVAL for a
 * bad code, or the -errno of a write made to make room.
 */
int iof_answer(struct iof_queue *q, uint32_t cookie, uint32_t code);

/*
 * Answer the outstanding group of @dev_id with this PASID (compared only
 * when @pasid_valid; a group without a PASID matches only !@pasid_valid) and
 * page request group index @grpid: what a guest's page group response
 * carries, once the VMM has mapped the guest's requester ID to the iommufd
 * dev_id. Codes and errors as iof_answer().
 *
 * A device reuses a PRGI only once its group was answered. So when a group
 * arrives with the key of one still outstanding, the kernel answered the
 * older one behind the library's back (a detach or replace nobody passed on
 * with iof_forget_device()): the newer group takes the key, the older one
 * is counted in stats.superseded and stays answerable by cookie (the kernel
 * refuses that answer, harmlessly) until its cookie comes back with a new
 * group (stats.stale) or iof_forget_device().
 *
 * No outstanding group with that key: -ENOENT, counted in stats.unmatched.
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

/* Is @cookie outstanding? */
bool iof_outstanding(const struct iof_queue *q, uint32_t cookie);

/* The live counters: see "Threads" */
const struct iof_stats *iof_queue_stats(const struct iof_queue *q);
/* A consistent copy of the first @size bytes of them, from any thread */
void iof_queue_get_stats(const struct iof_queue *q, struct iof_stats *st,
			 size_t size);

/*
 * What /proc/self/fdinfo shows of a fault fd (kernels with the series).
 * On a header queue, stats.seq.lost == lost once everything was read:
 * withdrawn faults take no sequence numbers.
 */
struct iof_fdinfo {
	uint32_t flags, depth, queued, awaiting;
	uint64_t lost;		/* faults lost because the queue was full */
	/* Unread faults withdrawn on a detach or replace (answered INVALID) */
	uint64_t withdrawn;
	uint32_t sequence;	/* the number the next fault read gets */
	bool has_sequence;	/* the kernel shows it (series v3 on) */
	uint32_t reserved[4];
};
/* 0, -ENOENT on a kernel that shows none of it (7.3), or -errno */
int iof_queue_fdinfo(const struct iof_queue *q, struct iof_fdinfo *info);

/*
 * For tests and tools: a queue with no kernel object behind it, 7.3's or
 * (IOF_FAULT_QUEUE_HEADER or _BOUNDED in @flags) with headers, to feed bytes
 * to iof_parse() as read() would have returned them. From a callback, free
 * it with iof_queue_destroy(), not iof_parser_free().
 */
struct iof_queue *iof_parser_new(uint32_t flags);
void iof_parser_free(struct iof_queue *q);
/* As iof_queue_dispatch() for one read()'s bytes */
int iof_parse(struct iof_queue *q, const void *buf, size_t len,
	      const struct iof_ops *ops, void *arg);

#ifdef __cplusplus
}
#endif

/* vEVENTQs: unrecoverable faults and the other events of a vIOMMU */
#include "iofault_vevent.h"
#endif
