// SPDX-License-Identifier: MIT
/*
 * The fake kernel's entry points: fake_ioctl() with the iommufd core's
 * dispatch and the mock driver's test ops, and read(), write(), close() and
 * fdinfo of its queue fds. See fake.h.
 *
 * What the mock header offers decides what the mock does: the Makefile
 * defines MOCK_HAVE_* for what tests/mock-features.sh found compiling
 * against iommufd_test.h; on a kernel of 7.3 the series' test ops fail
 * with EOPNOTSUPP, as 7.3's mock fails an op it does not know.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_priv.h"
#include "iofault.h"
#include "iofault_internal.h"
#include "uapi.h"
#include "iommufd_test.h"

static int mock_device(struct iommu_test_cmd *c, uint32_t flags)
{
	uint32_t valid = MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_PASID;
	struct fk_dev *d;

#ifdef MOCK_HAVE_NO_IOPF
	if (fk_v3())
		valid |= MOCK_FLAGS_DEVICE_NO_IOPF;
#endif
	if (fk_obj_type(c->id) != FK_IOAS)
		return fk_fail(ENOENT);
	if (flags & ~valid)
		return fk_fail(EINVAL);
	d = calloc(1, sizeof(*d));
	d->flags = flags;
	d->ioas_id = c->id;
	d->stdev_id = fk_obj_new(FK_STDEV, d);
	/* The mock domain of its IOAS, as the kernel makes it */
	fk_obj_new(FK_NONE, NULL);
	d->idev_id = fk_obj_new(FK_IDEV, NULL);
	c->mock_domain_flags.out_stdev_id = d->stdev_id;
	c->mock_domain_flags.out_hwpt_id = d->idev_id - 1;
	c->mock_domain_flags.out_idev_id = d->idev_id;
	return 0;
}

static int mock_replace(struct iommu_test_cmd *c)
{
	struct fk_dev *d = fk_obj_get(c->id, FK_STDEV);
	uint32_t pt = c->mock_domain_replace.pt_id;
	struct fk_hwpt *h;

	if (!d)
		return fk_fail(ENOENT);
	if (fk_obj_type(pt) == FK_IOAS) {
		fk_dev_leave(d);
		d->attach_viommu = d->attach_virt = 0;
		return 0;
	}
	h = fk_obj_get(pt, FK_HWPT);
	if (!h)
		return fk_fail(ENOENT);
	if (d->hwpt_id == pt)
		return 0;
	/* A nested HWPT of a vIOMMU: the device needs its vDEVICE there */
	if (h->viommu_id && (!d->vdev_id || d->viommu_id != h->viommu_id))
		return fk_fail(ENOENT);
#ifdef MOCK_HAVE_NO_IOPF
	/* As VT-d refuses a fault capable domain to a device without PRI */
	if (h->fault_id && (d->flags & MOCK_FLAGS_DEVICE_NO_IOPF))
		return fk_fail(ENODEV);
#endif
	fk_dev_leave(d);
	d->hwpt_id = pt;
	d->attach_viommu = h->viommu_id;
	d->attach_virt = h->viommu_id ? d->virt_id : 0;
	h->users++;
	return 0;
}

static int trigger_iopf(struct iommu_test_cmd *c)
{
	struct fk_dev *d = fk_dev_by_idev(c->trigger_iopf.dev_id);
	struct fk_hwpt *h;
	uint32_t n = 1;

#ifdef MOCK_HAVE_IOPF_NFAULTS
	if (fk_v3()) {
		if (c->trigger_iopf.__reserved)
			return fk_fail(EOPNOTSUPP);
		n = c->trigger_iopf.nfaults ? c->trigger_iopf.nfaults : 1;
		if (n > MOCK_IOPF_GROUP_MAX)
			return fk_fail(EINVAL);
	}
#endif
	if (!d)
		return fk_fail(ENOENT);
	h = fk_obj_get(d->hwpt_id, FK_HWPT);
	if (!h || !h->fault_id) {
		/* No handler: the core answers the group at once */
		fk_acct(d->idev_id)->groups++;
		fk_acct(d->idev_id)->invalid++;
		return 0;
	}
	return fk_fq_enqueue(fk_obj_get(h->fault_id, FK_FAULT), d->idev_id,
			     c->trigger_iopf.pasid, c->trigger_iopf.pasid != 0,
			     c->trigger_iopf.grpid, c->trigger_iopf.perm, n,
			     c->trigger_iopf.addr);
}

static int trigger_vevent(struct iommu_test_cmd *c)
{
	struct fk_dev *d = fk_dev_by_idev(c->trigger_vevent.dev_id);
	uint32_t n = 1, i;
	bool lost = false;
	struct fk_vq *q;

#ifdef MOCK_HAVE_VEVENT_COUNT
	if (fk_v3()) {
		n = c->trigger_vevent.count ? c->trigger_vevent.count : 1;
		lost = c->trigger_vevent.flags & MOCK_TRIGGER_VEVENT_LOST;
	}
#endif
	if (!d)
		return fk_fail(ENOENT);
	/* What the mock took at the attach: a vIOMMU and a virt_id */
	if (!d->attach_viommu || !d->attach_virt)
		return fk_fail(ENOENT);
	q = fk_vq_of(d->attach_viommu, IOMMU_VEVENTQ_TYPE_SELFTEST);
	if (!q)
		return fk_fail(EOPNOTSUPP);
	for (i = 0; i != n; i++)
		fk_vq_report(q, d->attach_virt, lost);
	return 0;
}

static int test_cmd(struct iommu_test_cmd *c)
{
	switch (c->op) {
	case IOMMU_TEST_OP_MOCK_DOMAIN:
		return mock_device(c, 0);
	case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
		return mock_device(c, c->mock_domain_flags.dev_flags);
	case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
		return mock_replace(c);
	case IOMMU_TEST_OP_TRIGGER_IOPF:
		return trigger_iopf(c);
	case IOMMU_TEST_OP_TRIGGER_VEVENT:
		return trigger_vevent(c);
	}
	if (!fk_v3())
		return fk_fail(EOPNOTSUPP);
	switch (c->op) {
#ifdef MOCK_HAVE_IOPF_COUNTERS
	case IOMMU_TEST_OP_IOPF_COUNTERS: {
		struct fake_answers a = {};

		if (c->iopf_counters.dev_id &&
		    !fk_dev_by_idev(c->iopf_counters.dev_id))
			return fk_fail(ENOENT);
		fake_answers(c->iopf_counters.dev_id, &a);
		c->iopf_counters.out_groups = a.groups;
		c->iopf_counters.out_success = a.success;
		c->iopf_counters.out_invalid = a.invalid;
		c->iopf_counters.out_failure = 0;
		return 0;
	}
#endif
#ifdef MOCK_HAVE_COOKIE_GEN
	case IOMMU_TEST_OP_FAULT_COOKIE_GEN:
		return fake_queue_cookie_gen(c->id, c->fault_cookie_gen.gen) ?
			       fk_fail(ENOENT) : 0;
#endif
#ifdef MOCK_HAVE_EVENTQ_SEQUENCE
	case IOMMU_TEST_OP_EVENTQ_SEQUENCE: {
		struct fk_vq *q = fk_obj_get(c->id, FK_VEVENTQ);

		if (c->eventq_sequence.sequence > INT32_MAX)
			return fk_fail(EINVAL);
		if (q) {
			q->seq = c->eventq_sequence.sequence;
			return 0;
		}
		return fake_queue_sequence(c->id, c->eventq_sequence.sequence) ?
			       fk_fail(ENOENT) : 0;
	}
#endif
	}
	return fk_fail(EOPNOTSUPP);
}

/* An IOAS: nothing in it matters here */
static int ioas_alloc(struct iommu_ioas_alloc *c)
{
	c->out_ioas_id = fk_obj_new(FK_IOAS, calloc(1, 1));
	return 0;
}

static int fake_ioctl_u(int fd, unsigned long request, void *arg)
{
	fake_stats.calls++;
	if (fake_knobs.fail_errno)
		return fk_fail(fake_knobs.fail_errno);
	if (fd != fk_ctx_fd() || fd < 0)
		return fk_fail(fd < 0 ? EBADF : ENOTTY);
	switch (request) {
	case IOMMU_DESTROY:
		return fk_destroy(((struct iommu_destroy *)arg)->id);
	case IOMMU_IOAS_ALLOC:
		return ioas_alloc(arg);
	case IOMMU_FAULT_QUEUE_ALLOC:
		return fk_fault_alloc(arg);
	case IOMMU_HWPT_ALLOC:
		return fk_hwpt_alloc(arg);
	case IOMMU_VIOMMU_ALLOC:
		return fk_viommu_alloc(arg);
	case IOMMU_VDEVICE_ALLOC:
		return fk_vdevice_alloc(arg);
	case IOMMU_VEVENTQ_ALLOC:
		return fk_veventq_alloc(arg);
	case IOMMU_TEST_CMD:
		return test_cmd(arg);
	}
	return fk_fail(ENOTTY);
}

/* A fault queue's or a vEVENTQ's, with the knobs applied */
static int queue_io_knobs(void)
{
	if (fake_knobs.read_eintr) {
		fake_knobs.read_eintr--;
		return EINTR;
	}
	return fake_knobs.read_errno;
}

static ssize_t fake_read_u(int fd, void *buf, size_t len)
{
	struct fk_fq *q = fk_fq_by_fd(fd);
	struct fk_vq *vq = q ? NULL : fk_vq_by_fd(fd);
	ssize_t n;
	int err;

	if (!q && !vq)
		return read(fd, buf, len);
	if (fake_stats.reads < 64)
		fake_stats.read_lens[fake_stats.reads] = len;
	fake_stats.reads++;
	err = queue_io_knobs();
	if (err)
		return fk_fail(err);
	n = q ? fk_fq_read(q, buf, len) : fk_vq_read(vq, buf, len);
	return n < 0 ? fk_fail(-n) : n;
}

static ssize_t fake_write_u(int fd, const void *buf, size_t len)
{
	struct fk_fq *q = fk_fq_by_fd(fd);
	ssize_t n;

	if (!q)
		return fk_vq_by_fd(fd) ? fk_fail(EINVAL) :
					 write(fd, buf, len);
	fake_stats.writes++;
	if (fake_knobs.write_eintr) {
		fake_knobs.write_eintr--;
		return fk_fail(EINTR);
	}
	n = fk_fq_write(q, buf, len);
	return n < 0 ? fk_fail(-n) : n;
}

static int fake_close_u(int fd)
{
	struct fk_fq *q = fk_fq_by_fd(fd);
	struct fk_vq *vq = q ? NULL : fk_vq_by_fd(fd);

	if (q) {
		q->fd_open = false;
		fake_stats.open_fds--;
	} else if (vq) {
		vq->fd_open = false;
		fake_stats.open_fds--;
	}
	return close(fd);
}

static FILE *fake_fdinfo_u(int fd)
{
	struct fk_fq *q = fk_fq_by_fd(fd);
	struct fk_vq *vq = q ? NULL : fk_vq_by_fd(fd);
	char text[512];
	FILE *f;
	int n;

	if (!q && !vq) {
		snprintf(text, sizeof(text), "/proc/self/fdinfo/%d", fd);
		return fopen(text, "re");
	}
	/* What every file shows first, then the queue's own lines */
	n = snprintf(text, sizeof(text),
		     "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t%d\n", fd);
	if (q)
		fk_fq_fdinfo(q, text + n, sizeof(text) - n);
	else
		fk_vq_fdinfo(vq, text + n, sizeof(text) - n);
	f = fmemopen(NULL, sizeof(text), "w+");
	if (!f)
		return NULL;
	fputs(text, f);
	rewind(f);
	return f;
}

void fake_hook_library(bool on)
{
	const struct iof_sys sys = {
		.ioctl = fake_ioctl,
		.read = fake_read,
		.write = fake_write,
		.close = fake_close,
		.fdinfo = fake_fdinfo,
	};

	iof_set_sys(on ? &sys : NULL);
}

/* Under the fake's lock (fake_core.c) */
int fake_ioctl(int fd, unsigned long request, void *arg)
{
	int r;

	pthread_mutex_lock(&fk_lock);
	r = fake_ioctl_u(fd, request, arg);
	pthread_mutex_unlock(&fk_lock);
	return r;
}

ssize_t fake_read(int fd, void *buf, size_t len)
{
	ssize_t r;

	pthread_mutex_lock(&fk_lock);
	r = fake_read_u(fd, buf, len);
	pthread_mutex_unlock(&fk_lock);
	return r;
}

ssize_t fake_write(int fd, const void *buf, size_t len)
{
	ssize_t r;

	pthread_mutex_lock(&fk_lock);
	r = fake_write_u(fd, buf, len);
	pthread_mutex_unlock(&fk_lock);
	return r;
}

int fake_close(int fd)
{
	int r;

	pthread_mutex_lock(&fk_lock);
	r = fake_close_u(fd);
	pthread_mutex_unlock(&fk_lock);
	return r;
}

FILE *fake_fdinfo(int fd)
{
	FILE *r;

	pthread_mutex_lock(&fk_lock);
	r = fake_fdinfo_u(fd);
	pthread_mutex_unlock(&fk_lock);
	return r;
}
