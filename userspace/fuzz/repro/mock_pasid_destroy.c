// SPDX-License-Identifier: MIT
/*
 * Found by iommufd_fuzz: destroying a mock device (IOMMU_DESTROY of its
 * selftest object, or closing the iommufd) while one of its PASIDs is still
 * attached WARNs in iommufd_device_unbind() (iommufd_object_destroy_user()
 * gets -EBUSY: the PASID attachment holds a users reference on the idev),
 * then in __iommu_group_free_device() (iommu.c: the group still has a PASID
 * domain), and on close in iommufd_fops_release() (main.c: the idev can
 * never be destroyed; the group xarray is not empty); kmemleak then finds
 * the idev's xarray node. iommufd_selftest_destroy() detaches IOMMU_NO_PASID
 * only. VFIO's unbind detaches every PASID it attached; the mock does not.
 *
 *   mock_pasid_destroy        exit 0; the kernel log shows the WARNs
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define CHECK(x) do { if ((x)) { perror(#x); exit(1); } } while (0)

static int fd;

static uint32_t mock_dev(uint32_t pt, uint32_t *idev)
{
	struct iommu_test_cmd dev = {
		.size = sizeof(dev),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
		.id = pt,
		.mock_domain_flags.dev_flags = MOCK_FLAGS_DEVICE_PASID,
	};

	CHECK(ioctl(fd, IOMMU_TEST_CMD, &dev));
	*idev = dev.mock_domain_flags.out_idev_id;
	return dev.mock_domain_flags.out_stdev_id;
}

static int pasid_attach(uint32_t stdev, uint32_t pasid, uint32_t pt)
{
	struct iommu_test_cmd attach = {
		.size = sizeof(attach),
		.op = IOMMU_TEST_OP_PASID_ATTACH,
		.id = stdev,
		.pasid_attach = { .pasid = pasid, .pt_id = pt },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &attach);
}

int main(int argc, char **argv)
{
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_hwpt_alloc hwpt = {
		.size = sizeof(hwpt),
		.flags = IOMMU_HWPT_ALLOC_PASID,
	};
	struct iommu_test_cmd replace = {
		.size = sizeof(replace),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
	};
	struct iommu_destroy destroy = { .size = sizeof(destroy) };
	uint32_t stdev, idev, pasid = argc > 1 ? atoi(argv[1]) : 1;

	fd = open("/dev/iommu", O_RDWR);
	CHECK(fd < 0);
	CHECK(ioctl(fd, IOMMU_IOAS_ALLOC, &ioas));
	stdev = mock_dev(ioas.out_ioas_id, &idev);
	hwpt.dev_id = idev;
	hwpt.pt_id = ioas.out_ioas_id;
	CHECK(ioctl(fd, IOMMU_HWPT_ALLOC, &hwpt));
	/* The RID on a PASID-capable domain first, as the rules want */
	replace.id = stdev;
	replace.mock_domain_replace.pt_id = hwpt.out_hwpt_id;
	CHECK(ioctl(fd, IOMMU_TEST_CMD, &replace));
	printf("PASID_ATTACH(pasid %u): %d\n", pasid,
	       pasid_attach(stdev, pasid, hwpt.out_hwpt_id));
	/* No IOMMU_TEST_OP_PASID_DETACH: the device goes with it attached */
	destroy.id = stdev;
	printf("destroy of the mock device: %d\n",
	       ioctl(fd, IOMMU_DESTROY, &destroy));
	close(fd);
	printf("closed; see the kernel log\n");
	return 0;
}
