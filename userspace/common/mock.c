// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "mock.h"

const struct iommu_hwpt_selftest mock_s1_data = {
	.iotlb = IOMMU_TEST_IOTLB_DEFAULT,
};

static int ret(int rc)
{
	return rc ? -errno : 0;
}

int mock_open(void)
{
	int fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int mock_ioas_alloc(int fd, uint32_t *ioas_id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int rc = ret(ioctl(fd, IOMMU_IOAS_ALLOC, &cmd));

	*ioas_id = cmd.out_ioas_id;
	return rc;
}

int mock_destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ret(ioctl(fd, IOMMU_DESTROY, &cmd));
}

int mock_device(int fd, uint32_t ioas_id, uint32_t flags, uint32_t *stdev_id,
		uint32_t *dev_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
		.id = ioas_id,
		.mock_domain_flags = { .dev_flags = flags },
	};
	int rc = ret(ioctl(fd, IOMMU_TEST_CMD, &cmd));

	*stdev_id = cmd.mock_domain_flags.out_stdev_id;
	*dev_id = cmd.mock_domain_flags.out_idev_id;
	return rc;
}

int mock_replace(int fd, uint32_t stdev_id, uint32_t pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = stdev_id,
		.mock_domain_replace = { .pt_id = pt_id },
	};

	return ret(ioctl(fd, IOMMU_TEST_CMD, &cmd));
}

int mock_parent_alloc(int fd, uint32_t dev_id, uint32_t ioas_id,
		      uint32_t *parent_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
		.dev_id = dev_id,
		.pt_id = ioas_id,
	};
	int rc = ret(ioctl(fd, IOMMU_HWPT_ALLOC, &cmd));

	*parent_id = cmd.out_hwpt_id;
	return rc;
}

int mock_nested_alloc(int fd, uint32_t dev_id, uint32_t parent_id,
		      uint32_t fault_id, uint32_t *hwpt_id)
{
	/* The 6.12 structure: also works on a kernel without this series */
	struct iommu_hwpt_alloc cmd = {
		.size = offsetof(struct iommu_hwpt_alloc, __reserved2) +
			sizeof(cmd.__reserved2),
		.flags = IOMMU_HWPT_FAULT_ID_VALID,
		.dev_id = dev_id,
		.pt_id = parent_id,
		.data_type = IOMMU_HWPT_DATA_SELFTEST,
		.data_len = sizeof(mock_s1_data),
		.data_uptr = (uintptr_t)&mock_s1_data,
		.fault_id = fault_id,
	};
	int rc = ret(ioctl(fd, IOMMU_HWPT_ALLOC, &cmd));

	*hwpt_id = cmd.out_hwpt_id;
	return rc;
}

int mock_fault_alloc(int fd, uint32_t flags, int eventfd, uint32_t depth,
		     uint32_t *fault_id, int *fault_fd)
{
	struct iommu_fault_alloc cmd = {
		/* Without flags, the original 16 bytes: any 6.11+ kernel */
		.size = flags ? sizeof(cmd) : 16,
		.flags = flags,
		.eventfd = (flags & IOMMU_FAULT_QUEUE_EVENTFD) ? eventfd : 0,
		.depth = depth,
	};
	int rc = ret(ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &cmd));

	*fault_id = cmd.out_fault_id;
	*fault_fd = cmd.out_fault_fd;
	return rc;
}

int mock_trigger_iopf(int fd, uint32_t dev_id, uint32_t pasid, uint32_t grpid,
		      uint32_t nr, uint64_t addr)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = {
			.dev_id = dev_id,
			.pasid = pasid,
			.grpid = grpid,
			.perm = IOMMU_PGFAULT_PERM_READ,
			.addr = addr,
			.nr_faults = nr,
		},
	};

	return ret(ioctl(fd, IOMMU_TEST_CMD, &cmd));
}

int mock_trigger_unrecov(int fd, uint32_t dev_id, uint32_t flags,
			 uint32_t pasid, uint32_t reason, uint32_t perm,
			 uint32_t count, uint64_t addr, uint64_t fetch_addr)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_TRIGGER_UNRECOV,
		.trigger_unrecov = {
			.dev_id = dev_id,
			.flags = flags,
			.pasid = pasid,
			.reason = reason,
			.perm = perm,
			.count = count,
			.addr = addr,
			.fetch_addr = fetch_addr,
		},
	};

	return ret(ioctl(fd, IOMMU_TEST_CMD, &cmd));
}

int mock_counters(int fd, uint32_t dev_id, struct mock_counters *c)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_DEV_FAULT_COUNTERS,
		.fault_counters = { .dev_id = dev_id },
	};
	int rc = ret(ioctl(fd, IOMMU_TEST_CMD, &cmd));

	*c = (struct mock_counters){
		.groups = cmd.fault_counters.out_groups,
		.success = cmd.fault_counters.out_success,
		.invalid = cmd.fault_counters.out_invalid,
		.failure = cmd.fault_counters.out_failure,
		.unexpected = cmd.fault_counters.out_unexpected,
		.outstanding = cmd.fault_counters.out_outstanding,
		.unrecov_taken = cmd.fault_counters.out_unrecov_taken,
		.unrecov_refused = cmd.fault_counters.out_unrecov_refused,
	};
	return rc;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
