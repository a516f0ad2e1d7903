/* SPDX-License-Identifier: MIT */
/*
 * The iommufd selftest mock driver (CONFIG_IOMMUFD_TEST) as a stand-in for
 * an assigned device and its IOMMU: one wrapper per ioctl, returning 0 or
 * -errno. Used by the demo, the benchmark and the stress test in the guest.
 */
#ifndef MOCK_H
#define MOCK_H

#include <stdint.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"

struct mock_counters {
	uint32_t groups, success, invalid, failure, unexpected, outstanding;
	uint32_t unrecov_taken, unrecov_refused;
};

int mock_open(void);
int mock_ioas_alloc(int fd, uint32_t *ioas_id);
int mock_destroy(int fd, uint32_t id);
/* A mock device attached to @ioas_id (MOCK_FLAGS_DEVICE_* in @flags) */
int mock_device(int fd, uint32_t ioas_id, uint32_t flags, uint32_t *stdev_id,
		uint32_t *dev_id);
int mock_replace(int fd, uint32_t stdev_id, uint32_t pt_id);
int mock_parent_alloc(int fd, uint32_t dev_id, uint32_t ioas_id,
		      uint32_t *parent_id);
/* A nested mock HWPT reporting to @fault_id */
int mock_nested_alloc(int fd, uint32_t dev_id, uint32_t parent_id,
		      uint32_t fault_id, uint32_t *hwpt_id);
/* Stage-1 data of a nested mock HWPT, for IOMMU_HWPT_ALLOC */
extern const struct iommu_hwpt_selftest mock_s1_data;
int mock_fault_alloc(int fd, uint32_t flags, int eventfd, uint32_t depth,
		     uint32_t *fault_id, int *fault_fd);
int mock_trigger_iopf(int fd, uint32_t dev_id, uint32_t pasid, uint32_t grpid,
		      uint32_t nr, uint64_t addr);
int mock_trigger_unrecov(int fd, uint32_t dev_id, uint32_t flags,
			 uint32_t pasid, uint32_t reason, uint32_t perm,
			 uint32_t count, uint64_t addr, uint64_t fetch_addr);
int mock_counters(int fd, uint32_t dev_id, struct mock_counters *c);

/* CLOCK_MONOTONIC in ns */
uint64_t now_ns(void);

#endif
