// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "iofault.h"
#include "mock.h"
#include "uapi.h"

/* libiofault decodes the mock's vEVENTs without its header */
_Static_assert(IOF_VEVENTQ_TYPE_SELFTEST == IOMMU_VEVENTQ_TYPE_SELFTEST,
	       "the selftest vEVENT type");
_Static_assert(sizeof(struct iommu_viommu_event_selftest) == 4,
	       "the selftest vEVENT: a virt_id");

const struct iommu_hwpt_selftest mock_s1_data = {
	.iotlb = IOMMU_TEST_IOTLB_DEFAULT,
};

bool mock_kernel_73;

/* The ioctl() of every wrapper: the kernel's, or a fake's (tests) */
static int (*mock_ioctl_fn)(int fd, unsigned long request, void *arg);

void mock_set_ioctl(int (*fn)(int fd, unsigned long request, void *arg))
{
	mock_ioctl_fn = fn;
}

static int mioctl(int fd, unsigned long request, void *arg)
{
	return mock_ioctl_fn ? mock_ioctl_fn(fd, request, arg) :
			       ioctl(fd, request, arg);
}

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
	int rc = ret(mioctl(fd, IOMMU_IOAS_ALLOC, &cmd));

	*ioas_id = cmd.out_ioas_id;
	return rc;
}

int mock_destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ret(mioctl(fd, IOMMU_DESTROY, &cmd));
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
	int rc = ret(mioctl(fd, IOMMU_TEST_CMD, &cmd));

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

	return ret(mioctl(fd, IOMMU_TEST_CMD, &cmd));
}

int mock_parent_alloc(int fd, uint32_t dev_id, uint32_t ioas_id,
		      uint32_t *parent_id)
{
	/* The 7.3 struct: also works on a kernel without the series */
	struct iommu_hwpt_alloc cmd = {
		.size = offsetof(struct iommu_hwpt_alloc, __reserved2) +
			sizeof(cmd.__reserved2),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
		.dev_id = dev_id,
		.pt_id = ioas_id,
	};
	int rc = ret(mioctl(fd, IOMMU_HWPT_ALLOC, &cmd));

	*parent_id = cmd.out_hwpt_id;
	return rc;
}

int mock_viommu_alloc(int fd, uint32_t dev_id, uint32_t parent_id,
		      uint32_t *viommu_id)
{
	struct iommu_viommu_alloc cmd = {
		.size = sizeof(cmd),
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
		.dev_id = dev_id,
		.hwpt_id = parent_id,
	};
	int rc = ret(mioctl(fd, IOMMU_VIOMMU_ALLOC, &cmd));

	*viommu_id = cmd.out_viommu_id;
	return rc;
}

int mock_vdevice_alloc(int fd, uint32_t viommu_id, uint32_t dev_id,
		       uint64_t virt_id, uint32_t *vdev_id)
{
	struct iommu_vdevice_alloc cmd = {
		.size = sizeof(cmd),
		.viommu_id = viommu_id,
		.dev_id = dev_id,
		.virt_id = virt_id,
	};
	int rc = ret(mioctl(fd, IOMMU_VDEVICE_ALLOC, &cmd));

	*vdev_id = cmd.out_vdevice_id;
	return rc;
}

int mock_nested_alloc(int fd, uint32_t dev_id, uint32_t pt_id,
		      uint32_t fault_id, uint32_t *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = offsetof(struct iommu_hwpt_alloc, __reserved2) +
			sizeof(cmd.__reserved2),
		.flags = fault_id ? IOMMU_HWPT_FAULT_ID_VALID : 0,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.data_type = IOMMU_HWPT_DATA_SELFTEST,
		.data_len = sizeof(mock_s1_data),
		.data_uptr = (uintptr_t)&mock_s1_data,
		.fault_id = fault_id,
	};
	int rc = ret(mioctl(fd, IOMMU_HWPT_ALLOC, &cmd));

	*hwpt_id = cmd.out_hwpt_id;
	return rc;
}

int mock_fault_alloc(int fd, uint32_t flags, int eventfd, uint32_t depth,
		     uint32_t *fault_id, int *fault_fd)
{
	/* The series' struct, whatever the installed header has */
	struct iof_uapi_fault_alloc cmd = {
		/* Without flags, the original 16 bytes: any 6.11+ kernel */
		.size = flags ? sizeof(cmd) : IOF_FAULT_ALLOC_SIZE_73,
		.flags = flags,
		.eventfd = (flags & IOF_FAULT_QUEUE_EVENTFD) ? eventfd : 0,
		.depth = depth,
	};
	int rc = ret(mioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &cmd));

	*fault_id = cmd.out_fault_id;
	*fault_fd = cmd.out_fault_fd;
	return rc;
}

int mock_veventq_alloc(int fd, uint32_t viommu_id, uint32_t flags,
		       int eventfd, uint32_t depth, uint32_t *veventq_id,
		       int *veventq_fd)
{
	struct iof_uapi_veventq_alloc cmd = {
		.size = flags ? sizeof(cmd) : IOF_VEVENTQ_ALLOC_SIZE_73,
		.flags = flags,
		.viommu_id = viommu_id,
		.type = IOMMU_VEVENTQ_TYPE_SELFTEST,
		.veventq_depth = depth,
		.eventfd = (flags & IOF_VEVENTQ_EVENTFD) ? eventfd : 0,
	};
	int rc = ret(mioctl(fd, IOMMU_VEVENTQ_ALLOC, &cmd));

	*veventq_id = cmd.out_veventq_id;
	*veventq_fd = cmd.out_veventq_fd;
	return rc;
}

int mock_trigger_iopf(int fd, uint32_t dev_id, uint32_t pasid, uint32_t grpid,
		      uint32_t nfaults, uint64_t addr)
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
		},
	};

	/* A 7.3 mock does not see the field, and would make 1 */
	if (nfaults > 1 && mock_kernel_73)
		return -EOPNOTSUPP;
#ifdef MOCK_HAVE_IOPF_NFAULTS
	/* 0 means 1 */
	cmd.trigger_iopf.nfaults = nfaults > 1 ? nfaults : 0;
#else
	if (nfaults > 1)
		return -EOPNOTSUPP;
#endif
	return ret(mioctl(fd, IOMMU_TEST_CMD, &cmd));
}

static int trigger_vevents(int fd, uint32_t dev_id, uint32_t count,
			   uint32_t flags)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_TRIGGER_VEVENT,
		.trigger_vevent = { .dev_id = dev_id },
	};
	uint32_t i;
	int rc;

#ifdef MOCK_HAVE_VEVENT_COUNT
	/* A 7.3 mock sees neither field: one vEVENT at a time */
	if (!mock_kernel_73) {
		cmd.trigger_vevent.count = count;
		cmd.trigger_vevent.flags = flags;
		return ret(mioctl(fd, IOMMU_TEST_CMD, &cmd));
	}
#endif
	if (flags)
		return -EOPNOTSUPP;
	for (i = 0; i < (count ? count : 1); i++) {
		rc = ret(mioctl(fd, IOMMU_TEST_CMD, &cmd));
		if (rc)
			return rc;
	}
	return 0;
}

int mock_trigger_vevents(int fd, uint32_t dev_id, uint32_t count)
{
	return trigger_vevents(fd, dev_id, count, 0);
}

int mock_trigger_vevents_lost(int fd, uint32_t dev_id, uint32_t count)
{
#ifdef MOCK_HAVE_VEVENT_COUNT
	return trigger_vevents(fd, dev_id, count, MOCK_TRIGGER_VEVENT_LOST);
#else
	return -EOPNOTSUPP;
#endif
}

int mock_counters(int fd, uint32_t dev_id, struct mock_counters *c)
{
#ifdef MOCK_HAVE_IOPF_COUNTERS
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_IOPF_COUNTERS,
		.iopf_counters = { .dev_id = dev_id },
	};
	int rc = ret(mioctl(fd, IOMMU_TEST_CMD, &cmd));

	*c = (struct mock_counters){
		.groups = cmd.iopf_counters.out_groups,
		.success = cmd.iopf_counters.out_success,
		.invalid = cmd.iopf_counters.out_invalid,
		.failure = cmd.iopf_counters.out_failure,
	};
	return rc;
#else
	*c = (struct mock_counters){};
	return -EOPNOTSUPP;
#endif
}

int mock_cookie_gen(int fd, uint32_t fault_id, uint32_t gen)
{
#ifdef MOCK_HAVE_COOKIE_GEN
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_FAULT_COOKIE_GEN,
		.id = fault_id,
		.fault_cookie_gen = { .gen = gen },
	};

	return ret(mioctl(fd, IOMMU_TEST_CMD, &cmd));
#else
	return -EOPNOTSUPP;
#endif
}

int mock_eventq_sequence(int fd, uint32_t id, uint32_t seq)
{
#ifdef MOCK_HAVE_EVENTQ_SEQUENCE
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_EVENTQ_SEQUENCE,
		.id = id,
		.eventq_sequence = { .sequence = seq },
	};

	return ret(mioctl(fd, IOMMU_TEST_CMD, &cmd));
#else
	return -EOPNOTSUPP;
#endif
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
