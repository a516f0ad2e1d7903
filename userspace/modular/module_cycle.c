// SPDX-License-Identifier: GPL-2.0
/*
 * module_cycle: iommufd as distributions build it, a module. Runs in the test
 * guest of a modular kernel (the debug kernel of make check) and prints TAP:
 *
 *   module_cycle load     modprobe iommufd; /dev/iommu appears
 *   module_cycle cycle    iommufd refuses to unload while a fault queue's fd
 *                         (with an eventfd) or a vEVENTQ's fd is open, even
 *                         with /dev/iommu closed; unloads once they are
 *                         closed; loads again
 *   module_cycle unload   iommufd (and vfio-pci, vfio on it) unload: nothing
 *                         the tests before left holds them
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/iommufd.h>

#include "iommufd_test.h"
#include "guest.h"

static bool loaded(const char *mod)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/module/%s", mod);
	return !stat(path, &st);
}

/* delete_module(2), as rmmod does without waiting: 0 or errno */
static int unload(const char *mod)
{
	if (syscall(SYS_delete_module, mod, O_NONBLOCK))
		return errno;
	return 0;
}

static bool load(void)
{
	struct stat st;

	return !system("modprobe iommufd") && loaded("iommufd") &&
	       !stat("/dev/iommu", &st);
}

static int open_iommu(void)
{
	int fd = open("/dev/iommu", O_RDWR);

	if (fd < 0) {
		perror("open /dev/iommu");
		exit(1);
	}
	return fd;
}

#define TEST_CMD(fd, cmd) ioctl(fd, IOMMU_TEST_CMD, cmd)

/* A bounded fault queue with an eventfd; returns its fd, or -1 */
static int fault_queue(int iommufd, int efd)
{
	struct iommu_fault_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_FAULT_QUEUE_EVENTFD | IOMMU_FAULT_QUEUE_BOUNDED,
		.eventfd = efd,
		.depth = 16,
	};

	if (ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &cmd))
		return -1;
	return cmd.out_fault_fd;
}

/* A vEVENTQ on a mock vIOMMU; returns its fd, or -1 */
static int veventq(int iommufd, int efd)
{
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_test_cmd mock = {
		.size = sizeof(mock),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
	};
	struct iommu_hwpt_alloc parent = {
		.size = sizeof(parent),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
	};
	struct iommu_viommu_alloc viommu = {
		.size = sizeof(viommu),
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
	};
	struct iommu_veventq_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_VEVENTQ_ALLOC_EVENTFD,
		.type = IOMMU_VEVENTQ_TYPE_SELFTEST,
		.veventq_depth = 16,
		.eventfd = efd,
	};

	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &ioas))
		return -1;
	mock.id = ioas.out_ioas_id;
	if (TEST_CMD(iommufd, &mock))
		return -1;
	parent.dev_id = mock.mock_domain.out_idev_id;
	parent.pt_id = ioas.out_ioas_id;
	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &parent))
		return -1;
	viommu.dev_id = mock.mock_domain.out_idev_id;
	viommu.hwpt_id = parent.out_hwpt_id;
	if (ioctl(iommufd, IOMMU_VIOMMU_ALLOC, &viommu))
		return -1;
	cmd.viommu_id = viommu.out_viommu_id;
	if (ioctl(iommufd, IOMMU_VEVENTQ_ALLOC, &cmd))
		return -1;
	return cmd.out_veventq_fd;
}

/* With only @what's fd open, iommufd stays; without it, it goes */
static void pins_module(const char *what, int (*make)(int iommufd, int efd))
{
	int iommufd = open_iommu();
	int efd = eventfd(0, EFD_CLOEXEC);
	int fd = make(iommufd, efd);
	int rc;

	ok(fd >= 0, "a %s with an eventfd", what);
	close(iommufd);
	close(efd);
	rc = unload("iommufd");
	ok(rc == EBUSY || rc == EWOULDBLOCK,
	   "iommufd refuses to unload while the %s's fd is open (%s)", what,
	   strerror(rc));
	close(fd);
	rc = unload("iommufd");
	ok(!rc && !loaded("iommufd"),
	   "iommufd unloads once the %s's fd is closed (%s)", what,
	   rc ? strerror(rc) : "ok");
	ok(load(), "iommufd loads again");
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";

	printf("TAP version 13\n");
	if (!strcmp(what, "load")) {
		printf("1..1\n");
		ok(load(), "modprobe iommufd: /dev/iommu");
	} else if (!strcmp(what, "cycle")) {
		printf("1..9\n");
		ok(load(), "modprobe iommufd: /dev/iommu");
		pins_module("fault queue", fault_queue);
		pins_module("vEVENTQ", veventq);
	} else if (!strcmp(what, "unload")) {
		const char *mods[] = { "vfio_pci", "vfio_pci_core", "vfio",
				       "iommufd" };
		unsigned int i;

		printf("1..%zu\n", sizeof(mods) / sizeof(mods[0]));
		for (i = 0; i != sizeof(mods) / sizeof(mods[0]); i++) {
			int rc = loaded(mods[i]) ? unload(mods[i]) : 0;

			ok(!rc && !loaded(mods[i]), "%s unloads (%s)", mods[i],
			   rc ? strerror(rc) : "ok");
		}
	} else {
		fprintf(stderr, "usage: module_cycle load|cycle|unload\n");
		return 2;
	}
	return failed ? 1 : 0;
}
