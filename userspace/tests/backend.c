// SPDX-License-Identifier: MIT
/*
 * What the scenarios' calls go to: the real kernel at /dev/iommu, or the
 * fake of tests/fake.h. See scen.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iofault.h"
#include "iofault_internal.h"
#include "mock.h"
#include "scen.h"
#include "uapi.h"

const struct backend *be;

static int k_open(void)
{
	int fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int k_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg);
}

static FILE *k_fdinfo(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return fopen(path, "re");
}

static struct backend kernel = {
	.name = "kernel",
	.open = k_open,
	.ioctl = k_ioctl,
	.read = read,
	.write = write,
	.close = close,
	.fdinfo = k_fdinfo,
};

static enum fake_kernel fake_kind;
static bool fake_one_step;

static int f_open(void)
{
	fake_boot(fake_kind);
	fake_knobs.no_one_step = !fake_one_step;
	return fake_open();
}

static struct backend fake = {
	.fake = true,
	.open = f_open,
	.ioctl = fake_ioctl,
	.read = fake_read,
	.write = fake_write,
	.close = fake_close,
	.fdinfo = fake_fdinfo,
};

const struct backend *backend_kernel(enum fake_kernel kind, bool one_step)
{
	kernel.kind = kind;
	kernel.one_step = one_step;
	return &kernel;
}

const struct backend *backend_fake(enum fake_kernel kind, bool one_step)
{
	fake.kind = fake_kind = kind;
	fake.one_step = fake_one_step = one_step;
	fake.name = kind == FAKE_73 ? "fake 7.3" : "fake v3";
	return &fake;
}

void backend_use(const struct backend *b)
{
	be = b;
	mock_set_ioctl(b->fake ? fake_ioctl : NULL);
	mock_kernel_73 = b->kind == FAKE_73;
	fake_hook_library(b->fake);
	iof_probe_reset();
	iof_set_alloc_fail(NULL);
}

/* One fault queue allocation of the kernel's: 0 or the errno */
static int try_alloc(int fd, uint32_t flags, int efd, uint32_t depth,
		     bool *sequence)
{
	struct iof_uapi_fault_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.eventfd = efd,
		.depth = depth,
	};
	char path[64], line[128];
	FILE *f;

	if (ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &cmd))
		return errno;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%u", cmd.out_fault_fd);
	f = fopen(path, "re");
	*sequence = false;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "sequence:", 9))
			*sequence = true;
	if (f)
		fclose(f);
	close(cmd.out_fault_fd);
	mock_set_ioctl(NULL);
	mock_destroy(fd, cmd.out_fault_id);
	return 0;
}

/*
 * 7.3 refuses every flag (EOPNOTSUPP, or E2BIG for the non-zero fields of
 * its 16-byte struct). v3 takes the header flag alone and shows the
 * sequence in fdinfo. The series' v2 took bit 1 for its bound, so it
 * refuses it without a depth (EINVAL), and had an eventfd.
 */
/*
 * IOPF_CAPABLE in the 72-byte struct, its fault fields 0, for a mock device
 * on its IOAS: a kernel without the flag refuses it as unknown (EOPNOTSUPP;
 * the HWPT's flags are checked once the device is found, so a device it
 * must be)
 */
static bool has_one_step(int fd)
{
	struct iof_uapi_hwpt_alloc c = {
		.size = sizeof(c),
		.flags = IOF_HWPT_ALLOC_IOPF_CAPABLE,
	};
	uint32_t ioas, stdev;

	mock_set_ioctl(NULL);
	if (mock_ioas_alloc(fd, &ioas) ||
	    mock_device(fd, ioas, 0, &stdev, &c.dev_id))
		return false;
	c.pt_id = ioas;
	return !ioctl(fd, IOMMU_HWPT_ALLOC, &c) ||
	       (errno != EOPNOTSUPP && errno != E2BIG);
}

int backend_detect(char *why, size_t len, bool *one_step)
{
	int fd = k_open(), efd = eventfd(0, EFD_CLOEXEC), err, kind = -1;
	bool seq = false;

	if (fd < 0) {
		snprintf(why, len, "/dev/iommu: %s", strerror(-fd));
		return -1;
	}
	err = try_alloc(fd, IOF_FAULT_QUEUE_HEADER, 0, 0, &seq);
	*one_step = has_one_step(fd);
	if (!err && seq) {
		kind = FAKE_V3;
		snprintf(why, len, "the series (v3): the header flag is taken and fdinfo shows the sequence; %s",
			 *one_step ? "with IOPF_CAPABLE" :
				     "without IOPF_CAPABLE (its last posting)");
	} else if (!err || err == EINVAL) {
		snprintf(why, len, "not 7.3 nor the series' v3 (v2?): the header flag alone: %s",
			 err ? strerror(err) : "taken, no sequence in fdinfo");
	} else if (not_supported(err) &&
		   not_supported(try_alloc(fd, IOF_FAULT_QUEUE_EVENTFD,
					       efd, 0, &seq))) {
		kind = FAKE_73;
		snprintf(why, len, "7.3 as Debian ships it: every fault queue flag refused");
	} else {
		snprintf(why, len, "unknown: the header flag alone: %s",
			 strerror(err));
	}
	close(efd);
	close(fd);
	return kind;
}
