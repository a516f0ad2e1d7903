/* SPDX-License-Identifier: MIT */
/*
 * The iommufd uAPI the library speaks, as far as it is newer than Linux 7.3
 * (series v3, build/V3-UAPI.md). The library builds against the installed
 * uAPI headers of 7.3, of the series, or of anything in between, and talks
 * to all of those kernels, so it never uses the kernel header's definition
 * of anything the series added or changed:
 *
 * - The ioctl structs are copied here under names of the library's own:
 *   7.3's struct iommu_fault_alloc has 16 bytes, the series' 24; the
 *   series' v2 laid the vEVENTQ eventfd over 7.3's __reserved, v3 appends
 *   it. The asserts below pin every 7.3 field to the offset the installed
 *   header gives it, so a copy cannot drift from the kernel's layout.
 * - Flag values come from iofault.h (IOF_FAULT_QUEUE_*, IOF_VEVENTQ_*),
 *   not from the kernel's enums, whose members the preprocessor cannot see
 *   and whose values differ between v2 and v3 of the series.
 *
 * The ioctl numbers do not encode a size (_IO()), so 7.3's serve.
 */
#ifndef IOF_UAPI_H
#define IOF_UAPI_H

#include <stddef.h>
#include <stdint.h>
#include <linux/iommufd.h>

/* enum iommufd_hwpt_alloc_flags of the series (a proposal, bit 4) */
#define IOF_HWPT_ALLOC_IOPF_CAPABLE	(1U << 4)
/* enum iommu_veventq_alloc_flags of the series */
#define IOF_VEVENTQ_ALLOC_EVENTFD	(1U << 0)

/* The largest depth the kernel takes, for bounded queues and vEVENTQs */
#define IOF_MAX_DEPTH			(1U << 19)

/* struct iommu_fault_alloc: 16 bytes in 7.3, 24 with the series */
struct iof_uapi_fault_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_fault_id;
	uint32_t out_fault_fd;
	int32_t eventfd;	/* with IOF_FAULT_QUEUE_EVENTFD */
	uint32_t depth;		/* with IOF_FAULT_QUEUE_BOUNDED */
};
#define IOF_FAULT_ALLOC_SIZE_73		16

/* struct iommu_hwpt_alloc: 48 bytes in 7.3, 72 with the series */
struct iof_uapi_hwpt_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pt_id;
	uint32_t out_hwpt_id;
	uint32_t __reserved;
	uint32_t data_type;
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t fault_id;
	uint32_t __reserved2;
	/* The series: with IOF_HWPT_ALLOC_IOPF_CAPABLE */
	uint32_t fault_flags;
	int32_t fault_eventfd;
	uint32_t fault_depth;
	uint32_t out_fault_id;
	uint32_t out_fault_fd;
	uint32_t __reserved3;
};
#define IOF_HWPT_ALLOC_SIZE_73		48

/* struct iommu_veventq_alloc: 32 bytes in 7.3, 40 with the series (v3) */
struct iof_uapi_veventq_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t viommu_id;
	uint32_t type;
	uint32_t veventq_depth;
	uint32_t out_veventq_id;
	uint32_t out_veventq_fd;
	uint32_t __reserved;	/* 7.3's: must be 0 */
	int32_t eventfd;	/* with IOF_VEVENTQ_ALLOC_EVENTFD */
	uint32_t __reserved2;
};
#define IOF_VEVENTQ_ALLOC_SIZE_73	32

#define IOF_SAME_OFFSET(mine, theirs, field)                              \
	_Static_assert(offsetof(struct mine, field) ==                     \
			       offsetof(struct theirs, field),             \
		       #theirs "." #field " moved")

IOF_SAME_OFFSET(iof_uapi_fault_alloc, iommu_fault_alloc, flags);
IOF_SAME_OFFSET(iof_uapi_fault_alloc, iommu_fault_alloc, out_fault_fd);
IOF_SAME_OFFSET(iof_uapi_hwpt_alloc, iommu_hwpt_alloc, data_uptr);
IOF_SAME_OFFSET(iof_uapi_hwpt_alloc, iommu_hwpt_alloc, fault_id);
IOF_SAME_OFFSET(iof_uapi_hwpt_alloc, iommu_hwpt_alloc, __reserved2);
IOF_SAME_OFFSET(iof_uapi_veventq_alloc, iommu_veventq_alloc,
		veventq_depth);
IOF_SAME_OFFSET(iof_uapi_veventq_alloc, iommu_veventq_alloc,
		out_veventq_fd);
_Static_assert(offsetof(struct iof_uapi_fault_alloc, eventfd) ==
		       IOF_FAULT_ALLOC_SIZE_73 &&
	       sizeof(struct iof_uapi_fault_alloc) == 24,
	       "the series' struct iommu_fault_alloc");
_Static_assert(offsetof(struct iof_uapi_hwpt_alloc, fault_flags) ==
		       IOF_HWPT_ALLOC_SIZE_73 &&
	       sizeof(struct iof_uapi_hwpt_alloc) == 72,
	       "the series' struct iommu_hwpt_alloc");
_Static_assert(offsetof(struct iof_uapi_veventq_alloc, eventfd) ==
		       IOF_VEVENTQ_ALLOC_SIZE_73 &&
	       sizeof(struct iof_uapi_veventq_alloc) == 40,
	       "the series' struct iommu_veventq_alloc");

#endif
