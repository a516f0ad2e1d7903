/* SPDX-License-Identifier: MIT */
/*
 * Needs the Makefile's -include mock_features.h (tests/mock-features.sh):
 * what the installed iommufd_test.h has.
 *
 * The iommufd selftest mock driver (CONFIG_IOMMUFD_TEST) as a stand-in for
 * assigned devices, their IOMMU and a guest's vIOMMU: one wrapper per ioctl,
 * returning 0 or -errno. Used by the demo, the benchmark and the stress test
 * in the guest.
 */
#ifndef MOCK_H
#define MOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"

/* What a mock device saw: page request groups, and answers by code */
struct mock_counters {
	uint64_t groups, success, invalid, failure;
};

int mock_open(void);
int mock_ioas_alloc(int fd, uint32_t *ioas_id);
int mock_destroy(int fd, uint32_t id);
/* A mock device attached to @ioas_id (MOCK_FLAGS_DEVICE_* in @flags) */
int mock_device(int fd, uint32_t ioas_id, uint32_t flags, uint32_t *stdev_id,
		uint32_t *dev_id);
/* Attach (replace) the device's RID to @pt_id: an IOAS or an HWPT */
int mock_replace(int fd, uint32_t stdev_id, uint32_t pt_id);
int mock_parent_alloc(int fd, uint32_t dev_id, uint32_t ioas_id,
		      uint32_t *parent_id);
int mock_viommu_alloc(int fd, uint32_t dev_id, uint32_t parent_id,
		      uint32_t *viommu_id);
int mock_vdevice_alloc(int fd, uint32_t viommu_id, uint32_t dev_id,
		       uint64_t virt_id, uint32_t *vdev_id);
/*
 * A nested mock HWPT on @pt_id (a vIOMMU or a nesting parent), reporting
 * to @fault_id (0: no fault queue). The 7.3 struct: works on any kernel.
 */
int mock_nested_alloc(int fd, uint32_t dev_id, uint32_t pt_id,
		      uint32_t fault_id, uint32_t *hwpt_id);
/* Stage-1 data of a nested mock HWPT, for IOMMU_HWPT_ALLOC */
extern const struct iommu_hwpt_selftest mock_s1_data;
/* Raw allocations, for the benchmark (no library in the measured path) */
int mock_fault_alloc(int fd, uint32_t flags, int eventfd, uint32_t depth,
		     uint32_t *fault_id, int *fault_fd);
int mock_veventq_alloc(int fd, uint32_t viommu_id, uint32_t flags,
		       int eventfd, uint32_t depth, uint32_t *veventq_id,
		       int *veventq_fd);
/* A page request group of @nfaults (1 on a 7.3 mock) from @addr on */
int mock_trigger_iopf(int fd, uint32_t dev_id, uint32_t pasid, uint32_t grpid,
		      uint32_t nfaults, uint64_t addr);
/* @count vEVENTs of the device's vIOMMU (one at a time on a 7.3 mock) */
int mock_trigger_vevents(int fd, uint32_t dev_id, uint32_t count);
/* @count vEVENTs reported lost (MOCK_TRIGGER_VEVENT_LOST; the series') */
int mock_trigger_vevents_lost(int fd, uint32_t dev_id, uint32_t count);
/* -EOPNOTSUPP from a mock without the counters (7.3) */
int mock_counters(int fd, uint32_t dev_id, struct mock_counters *c);
/* The next cookie of fault queue @fault_id takes generation @gen */
int mock_cookie_gen(int fd, uint32_t fault_id, uint32_t gen);
/* The next fault or vEVENT of queue @id takes sequence number @seq */
int mock_eventq_sequence(int fd, uint32_t id, uint32_t seq);
/*
 * Every wrapper's ioctl(): NULL for the kernel's, or a fake's (the unit
 * tests and the scenarios run the same calls on tests/fake.h)
 */
void mock_set_ioctl(int (*fn)(int fd, unsigned long request, void *arg));
/*
 * The kernel is 7.3's: its mock makes one fault a group and one vEVENT a
 * call, whatever the fields it does not know say; the wrappers then loop,
 * or refuse with -EOPNOTSUPP, rather than be silently ignored
 */
extern bool mock_kernel_73;

/* CLOCK_MONOTONIC in ns */
uint64_t now_ns(void);

#endif
