// SPDX-License-Identifier: MIT
/*
 * System calls, allocation, and what the kernel offers: iof_probe() and
 * what allocations learned. See iofault.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"

IOF_EXPORT int iof_version_major(void)
{
	return IOF_VERSION_MAJOR;
}

IOF_EXPORT int iof_version_minor(void)
{
	return IOF_VERSION_MINOR;
}

/* ---- System calls ---- */

/*
 * The tests' hooks. Set before any queue exists and left alone while one
 * does (tests only), so they need no lock.
 */
static struct iof_sys sys;
static bool (*alloc_fail)(const char *site);

void iof_set_sys(const struct iof_sys *s)
{
	sys = s ? *s : (struct iof_sys){};
}

void iof_set_alloc_fail(bool (*fail)(const char *site))
{
	alloc_fail = fail;
}

int iof_sys_ioctl(int fd, unsigned long request, void *arg)
{
	return sys.ioctl ? sys.ioctl(fd, request, arg) : ioctl(fd, request, arg);
}

ssize_t iof_sys_read(int fd, void *buf, size_t len)
{
	return sys.read ? sys.read(fd, buf, len) : read(fd, buf, len);
}

ssize_t iof_sys_write(int fd, const void *buf, size_t len)
{
	return sys.write ? sys.write(fd, buf, len) : write(fd, buf, len);
}

int iof_sys_close(int fd)
{
	return sys.close ? sys.close(fd) : close(fd);
}

FILE *iof_sys_fdinfo(int fd)
{
	char path[64];

	if (sys.fdinfo)
		return sys.fdinfo(fd);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return fopen(path, "re");
}

static bool fail_now(const char *site)
{
	if (alloc_fail && alloc_fail(site)) {
		errno = ENOMEM;
		return true;
	}
	return false;
}

void *iof_malloc(size_t size, const char *site)
{
	return fail_now(site) ? NULL : malloc(size);
}

void *iof_calloc(size_t n, size_t size, const char *site)
{
	return fail_now(site) ? NULL : calloc(n, size);
}

void *iof_realloc(void *p, size_t size, const char *site)
{
	return fail_now(site) ? NULL : realloc(p, size);
}

int iof_destroy_obj(int iommufd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return iof_sys_ioctl(iommufd, IOMMU_DESTROY, &cmd) ? -errno : 0;
}

/*
 * The kernel does not have what was asked for: an unknown flag (EOPNOTSUPP,
 * iommufd checks flags first), or a non-zero field beyond the struct it
 * knows (E2BIG, copy_struct_from_user()). Nothing else means that.
 */
bool iof_not_supported(int err)
{
	return err == EOPNOTSUPP || err == E2BIG;
}

/* ---- What the kernel offers: one kernel per process ---- */

static pthread_mutex_t caps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iof_caps caps_cache;
static bool caps_probed;

void iof_probe_reset(void)
{
	pthread_mutex_lock(&caps_lock);
	caps_probed = false;
	caps_cache = (struct iof_caps){};
	pthread_mutex_unlock(&caps_lock);
}

static enum iof_cap *cap_of(int which)
{
	return which == IOF_CAP_IOPF_CAPABLE ? &caps_cache.iopf_capable :
					       &caps_cache.veventq_eventfd;
}

enum iof_cap iof_cap_get(int which)
{
	enum iof_cap v;

	pthread_mutex_lock(&caps_lock);
	v = *cap_of(which);
	pthread_mutex_unlock(&caps_lock);
	return v;
}

void iof_cap_set(int which, enum iof_cap v)
{
	pthread_mutex_lock(&caps_lock);
	*cap_of(which) = v;
	pthread_mutex_unlock(&caps_lock);
}

/*
 * Make a fault queue with @flags and throw it away: the kernel takes the
 * flags (1) or does not have them (0), or -errno for any other failure.
 * @einval_is_no: EINVAL too means "not this flag" (see iof_probe()).
 */
static int probe_fault_flags(int iommufd, uint32_t flags, bool einval_is_no)
{
	struct iof_uapi_fault_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.depth = flags & IOF_FAULT_QUEUE_BOUNDED ? 1 : 0,
	};
	int efd = -1, rc, err;

	if (flags & IOF_FAULT_QUEUE_EVENTFD) {
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0)
			return -errno;
		cmd.eventfd = efd;
	}
	rc = iof_sys_ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &cmd);
	err = errno;
#ifndef IOF_PLANT_PROBE_LEAK	/* plant: the throwaway queue stays */
	if (!rc) {
		/* The fd holds the object: close it first */
		iof_sys_close(cmd.out_fault_fd);
		iof_destroy_obj(iommufd, cmd.out_fault_id);
	}
#endif
	if (efd >= 0)
		close(efd);
	if (!rc)
		return 1;
	if (iof_not_supported(err) || (einval_is_no && err == EINVAL))
		return 0;
	return -err;
}

static int probe(int iommufd, struct iof_caps *caps)
{
	const uint32_t all = IOF_FAULT_QUEUE_EVENTFD | IOF_FAULT_QUEUE_HEADER |
			     IOF_FAULT_QUEUE_BOUNDED;
	int rc;

	/* All at once: one queue on a kernel that has them all */
	rc = probe_fault_flags(iommufd, all, false);
	if (rc < 0)
		return rc;
	if (rc) {
		caps->fault_eventfd = true;
		caps->fault_header = true;
		caps->fault_bounded = true;
		return 0;
	}
	rc = probe_fault_flags(iommufd, IOF_FAULT_QUEUE_EVENTFD, false);
	if (rc < 0)
		return rc;
	caps->fault_eventfd = rc;
	rc = probe_fault_flags(iommufd, IOF_FAULT_QUEUE_BOUNDED, false);
	if (rc < 0)
		return rc;
	caps->fault_bounded = rc;
	/* The bound implies the header */
	if (caps->fault_bounded) {
		caps->fault_header = true;
		return 0;
	}
	rc = probe_fault_flags(iommufd, IOF_FAULT_QUEUE_HEADER, true);
	if (rc < 0)
		return rc;
	caps->fault_header = rc;
	return 0;
}

IOF_EXPORT int iof_probe(int iommufd, struct iof_caps *caps)
{
	struct iof_caps c = {};
	int rc = 0;

	pthread_mutex_lock(&caps_lock);
	if (!caps_probed) {
		/* Not under the lock: a probe makes system calls */
		pthread_mutex_unlock(&caps_lock);
		rc = probe(iommufd, &c);
		pthread_mutex_lock(&caps_lock);
		if (!rc && !caps_probed) {
			caps_cache.fault_eventfd = c.fault_eventfd;
			caps_cache.fault_header = c.fault_header;
			caps_cache.fault_bounded = c.fault_bounded;
			caps_probed = true;
		}
	}
	if (!rc)
		*caps = caps_cache;
	pthread_mutex_unlock(&caps_lock);
	return rc;
}
