/* SPDX-License-Identifier: MIT */
/*
 * iofault_vevent.h: libiofault's vEVENTQs (IOMMUFD_OBJ_VEVENTQ), the
 * unrecoverable stage-1 faults and the other events of a vIOMMU, as the
 * vendor's own record naming the vDEVICE's virt_id. Included by iofault.h;
 * its rules (threads, what is the VMM's, ABI) hold here too. A vEVENTQ is
 * used by one thread at a time: its events need no answer.
 */
#ifndef IOFAULT_VEVENT_H
#define IOFAULT_VEVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/iommufd.h>

#include "iofault_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* Decode the 16 bytes of a VT-d vEVENT (struct iommu_vevent_intel_vtd) */
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
		struct iof_vtd_fault vtd; /* IOF_VEVENTQ_TYPE_INTEL_VTD */
	} u;
};

struct iof_vevent_ops {
	void (*event)(struct iof_veventq *q, const struct iof_vevent *ev,
		      void *arg);
	/* @count events from sequence number @seq on were lost */
	void (*lost)(struct iof_veventq *q, uint32_t seq, uint32_t count,
		     void *arg);
	void *reserved[4];
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
	 * guest's vIOMMU can take at once; beyond it, events are lost into
	 * the sequence, which the VMM reports to the guest as an overflow
	 */
	uint32_t depth;
	/* IOF_VEVENTQ_EVENTFD; dropped for poll() without it, unless @strict */
	uint32_t flags;
	/*
	 * Bytes of one event's data, for a type the library does not know;
	 * 0 for the ones it does (SMMUv3, Tegra241 CMDQV, VT-d, selftest)
	 */
	uint32_t data_len;
	size_t read_size;	/* bytes per read(); 0 for 64 events */
	unsigned int max_reads;	/* per dispatch call; 0 for 16 */
	bool strict;
	/* With IOF_VEVENTQ_EVENTFD: the VMM's eventfd, as iof_config's */
	bool use_eventfd;
	int eventfd;
	uint32_t reserved[6];
};

/*
 * Create a vEVENTQ on @viommu_id. NULL and errno on failure. With
 * IOF_VEVENTQ_EVENTFD it asks for the eventfd unless this process saw the
 * kernel refuse it; refused (EOPNOTSUPP, E2BIG) it asks again without
 * (unless @strict), and when that succeeds takes the flag as missing. An
 * error with another cause (EOPNOTSUPP for a type the vIOMMU's driver does
 * not produce, on the series' kernels) fails the second try too, and that
 * error is returned.
 */
struct iof_veventq *iof_veventq_create(int iommufd, uint32_t viommu_id,
				       const struct iof_veventq_config *cfg);
/*
 * Wrap a vEVENTQ made elsewhere; its fds stay the caller's. In mid-stream,
 * the sequence starts with the first event read.
 */
struct iof_veventq *iof_veventq_adopt(int iommufd, uint32_t veventq_id,
				      int veventq_fd, int eventfd,
				      const struct iof_veventq_config *cfg);
/*
 * Close the fds the library made and destroy the object if it made it;
 * events still queued are gone. Safe from inside @q's own callbacks, as
 * iof_queue_destroy(): deferred until the dispatch unwinds, which then
 * returns -ECANCELED.
 */
int iof_veventq_destroy(struct iof_veventq *q);
uint32_t iof_veventq_id(const struct iof_veventq *q);
/* IOF_VEVENTQ_* flags it has, after any fallback */
uint32_t iof_veventq_flags(const struct iof_veventq *q);
int iof_veventq_fd(const struct iof_veventq *q);
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
