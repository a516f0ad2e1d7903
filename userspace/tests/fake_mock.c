// SPDX-License-Identifier: MIT
/*
 * The fake kernel's HWPTs, vIOMMUs, vDEVICEs, vEVENTQs, IOMMU_DESTROY, the
 * mock driver's test ops, and the entry points (fake_ioctl(), fake_read(),
 * ...). See fake.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_priv.h"
#include "iofault.h"
#include "iofault_internal.h"
#include "uapi.h"
#include "iommufd_test.h"

#define FK_HWPT_FLAGS_73 (IOMMU_HWPT_ALLOC_NEST_PARENT |                     \
			  IOMMU_HWPT_ALLOC_DIRTY_TRACKING |                  \
			  IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID)

struct fk_dev *fk_dev_by_idev(uint32_t idev_id)
{
	struct fk_dev *d;
	uint32_t i;

	if (fk_obj_type(idev_id) != FK_IDEV)
		return NULL;
	for (i = 1; i <= fk_last_id(); i++) {
		d = fk_obj_get(i, FK_STDEV);
		if (d && d->idev_id == idev_id)
			return d;
	}
	return NULL;
}

/* The device leaves its HWPT: a fault queue there answers its groups */
void fk_dev_leave(struct fk_dev *d)
{
	struct fk_hwpt *h = fk_obj_get(d->hwpt_id, FK_HWPT);

	if (!h)
		return;
	if (h->fault_id)
		fk_fq_detach(fk_obj_get(h->fault_id, FK_FAULT), d->idev_id);
	h->users--;
	d->hwpt_id = 0;
}

int fk_hwpt_alloc(void *cmd)
{
	const uint32_t iopf = IOF_HWPT_ALLOC_IOPF_CAPABLE;
	struct iof_uapi_hwpt_alloc *c = cmd;
	const bool one_step = fk_v3() && !fake_knobs.no_one_step;
	uint32_t known = one_step ? sizeof(*c) : IOF_HWPT_ALLOC_SIZE_73;
	struct fk_hwpt *h, *parent = NULL;
	struct fk_viommu *viommu = NULL;
	struct fk_fq *fault = NULL;
	int err, fd = -1;
	uint32_t fault_id = 0;

	fake_stats.hwpt_calls++;
	fake_stats.hwpt_size = c->size;
	memcpy(fake_stats.hwpt, c, c->size < 72 ? c->size : 72);
	if (c->size >= 8 && (c->flags & iopf))
		fake_stats.iopf_tries++;
	err = fk_size_check(c, c->size, 24, known);
	if (err)
		return fk_fail(err);
	if (c->flags & ~(FK_HWPT_FLAGS_73 | (one_step ? iopf : 0)))
		return fk_fail(EOPNOTSUPP);
	if (one_step && (c->flags & iopf)) {
		if (c->flags & IOMMU_HWPT_FAULT_ID_VALID ||
		    c->size < sizeof(*c))
			return fk_fail(EINVAL);
		err = fk_fault_check(c->fault_flags, c->fault_eventfd,
				     c->fault_depth);
		if (err)
			return fk_fail(err);
	} else if (one_step && c->size > IOF_HWPT_ALLOC_SIZE_73 &&
		   (c->fault_flags || c->fault_eventfd || c->fault_depth)) {
		return fk_fail(EOPNOTSUPP);
	}
	if (!fk_dev_by_idev(c->dev_id))
		return fk_fail(ENOENT);
	if (c->flags & IOMMU_HWPT_FAULT_ID_VALID) {
		fault = fk_obj_get(c->fault_id, FK_FAULT);
		if (!fault)
			return fk_fail(ENOENT);
	}
	switch (fk_obj_type(c->pt_id)) {
	case FK_IOAS:
		break;
	case FK_HWPT:
		parent = fk_obj_get(c->pt_id, FK_HWPT);
		if (!parent->parent)
			return fk_fail(EINVAL);
		break;
	case FK_VIOMMU:
		viommu = fk_obj_get(c->pt_id, FK_VIOMMU);
		break;
	default:
		return fk_fail(ENOENT);
	}
	if ((parent || viommu) && c->data_type != IOMMU_HWPT_DATA_SELFTEST)
		return fk_fail(EOPNOTSUPP);
	if (fake_knobs.hwpt_errno)
		return fk_fail(fake_knobs.hwpt_errno);
	if (c->flags & iopf) {
		fault_id = fk_fault_make(c->fault_flags, c->fault_eventfd,
					 c->fault_depth, &fd);
		fault = fk_obj_get(fault_id, FK_FAULT);
	}
	h = calloc(1, sizeof(*h));
	h->parent = c->flags & IOMMU_HWPT_ALLOC_NEST_PARENT;
	if (fault) {
		h->fault_id = fault->id;
		fault->hwpt_users++;
	}
	if (parent) {
		h->parent_id = c->pt_id;
		parent->users++;
	}
	if (viommu) {
		h->viommu_id = c->pt_id;
		viommu->users++;
	}
	c->out_hwpt_id = fk_obj_new(FK_HWPT, h);
	if (c->flags & iopf) {
		c->out_fault_id = fault_id;
		c->out_fault_fd = fd;
	}
	fake_stats.hwpt_allocs++;
	return 0;
}

int fk_viommu_alloc(void *cmd)
{
	struct iommu_viommu_alloc *c = cmd;
	struct fk_viommu *v;
	struct fk_hwpt *h;

	if (c->type != IOMMU_VIOMMU_TYPE_SELFTEST)
		return fk_fail(EOPNOTSUPP);
	if (!fk_dev_by_idev(c->dev_id))
		return fk_fail(ENOENT);
	h = fk_obj_get(c->hwpt_id, FK_HWPT);
	if (!h)
		return fk_fail(ENOENT);
	if (!h->parent)
		return fk_fail(EINVAL);
	v = calloc(1, sizeof(*v));
	v->parent_id = c->hwpt_id;
	h->users++;
	c->out_viommu_id = fk_obj_new(FK_VIOMMU, v);
	return 0;
}

int fk_vdevice_alloc(void *cmd)
{
	struct iommu_vdevice_alloc *c = cmd;
	struct fk_viommu *v = fk_obj_get(c->viommu_id, FK_VIOMMU);
	struct fk_dev *d = fk_dev_by_idev(c->dev_id);
	struct fk_vdev *vd;

	if (!v || !d)
		return fk_fail(ENOENT);
	if (d->vdev_id)
		return fk_fail(EEXIST);
	vd = calloc(1, sizeof(*vd));
	vd->viommu_id = c->viommu_id;
	vd->dev = d;
	v->users++;
	d->viommu_id = c->viommu_id;
	d->virt_id = c->virt_id;
	d->vdev_id = c->out_vdevice_id = fk_obj_new(FK_VDEV, vd);
	return 0;
}

struct fk_vq *fk_vq_of(uint32_t viommu_id, uint32_t type)
{
	struct fk_vq *q;
	uint32_t i;

	for (i = 1; i <= fk_last_id(); i++) {
		q = fk_obj_get(i, FK_VEVENTQ);
		if (q && q->viommu_id == viommu_id && q->type == type)
			return q;
	}
	return NULL;
}

int fk_veventq_alloc(void *cmd)
{
	struct iof_uapi_veventq_alloc *c = cmd;
	uint32_t known = fk_v3() ? sizeof(*c) : IOF_VEVENTQ_ALLOC_SIZE_73;
	bool efd = false;
	struct fk_viommu *v;
	struct fk_vq *q;
	int err;

	fake_stats.veventq_calls++;
	fake_stats.veventq_size = c->size;
	memcpy(fake_stats.veventq, c, c->size < 40 ? c->size : 40);
	err = fk_size_check(c, c->size, IOF_VEVENTQ_ALLOC_SIZE_73, known);
	if (err)
		return fk_fail(err);
	if (fk_v3()) {
		if (c->flags & ~IOF_VEVENTQ_ALLOC_EVENTFD)
			return fk_fail(EOPNOTSUPP);
		efd = c->flags & IOF_VEVENTQ_ALLOC_EVENTFD;
		if (efd && c->size < sizeof(*c))
			return fk_fail(EINVAL);
		if (fake_knobs.no_eventfd && efd)
			return fk_fail(EOPNOTSUPP);
		if (c->__reserved || (c->size > 32 && c->__reserved2) ||
		    (!efd && c->size > 32 && c->eventfd))
			return fk_fail(EOPNOTSUPP);
	} else if (c->flags || c->__reserved) {
		return fk_fail(EOPNOTSUPP);
	}
	if (c->type == IOMMU_VEVENTQ_TYPE_DEFAULT)
		return fk_fail(EOPNOTSUPP);
	if (!c->veventq_depth || c->veventq_depth > FK_MAX_DEPTH)
		return fk_fail(EINVAL);
	if (efd) {
		if (c->eventfd < 0 || fcntl(c->eventfd, F_GETFD) < 0)
			return fk_fail(EBADF);
		if (!fk_is_eventfd(c->eventfd))
			return fk_fail(EINVAL);
	}
	v = fk_obj_get(c->viommu_id, FK_VIOMMU);
	if (!v)
		return fk_fail(ENOENT);
	/* The series: the mock vIOMMU's driver produces this type only */
	if (fk_v3() && c->type != IOMMU_VEVENTQ_TYPE_SELFTEST)
		return fk_fail(EOPNOTSUPP);
	if (fk_vq_of(c->viommu_id, c->type))
		return fk_fail(EEXIST);
	q = fk_vq_new(0, c->viommu_id, c->type, c->veventq_depth,
		      efd ? c->eventfd : -1);
	v->users++;
	q->id = c->out_veventq_id = fk_obj_new(FK_VEVENTQ, q);
	c->out_veventq_fd = fk_new_pipe(&q->rfd, &q->wfd);
	fake_stats.veventq_allocs++;
	return 0;
}

int fk_destroy(uint32_t id)
{
	enum fk_type t = fk_obj_type(id);
	void *p = fk_obj_get(id, t);

	fake_stats.destroys++;
	switch (t) {
	case FK_FAULT: {
		struct fk_fq *q = p;

		if (q->fd_open || q->hwpt_users)
			return fk_fail(EBUSY);
		close(q->wfd);
		fk_fq_free(q);
		break;
	}
	case FK_VEVENTQ: {
		struct fk_vq *q = p;

		if (q->fd_open)
			return fk_fail(EBUSY);
		close(q->wfd);
		((struct fk_viommu *)fk_obj_get(q->viommu_id,
						FK_VIOMMU))->users--;
		fk_vq_free(q);
		break;
	}
	case FK_HWPT: {
		struct fk_hwpt *h = p;

		if (h->users)
			return fk_fail(EBUSY);
		if (h->fault_id)
			((struct fk_fq *)fk_obj_get(h->fault_id,
						    FK_FAULT))->hwpt_users--;
		if (h->viommu_id)
			((struct fk_viommu *)fk_obj_get(h->viommu_id,
							FK_VIOMMU))->users--;
		if (h->parent_id)
			((struct fk_hwpt *)fk_obj_get(h->parent_id,
						      FK_HWPT))->users--;
		free(h);
		break;
	}
	case FK_VDEV: {
		struct fk_vdev *vd = p;

		((struct fk_viommu *)fk_obj_get(vd->viommu_id,
						FK_VIOMMU))->users--;
		vd->dev->vdev_id = vd->dev->viommu_id = vd->dev->virt_id = 0;
		free(vd);
		break;
	}
	case FK_VIOMMU: {
		struct fk_viommu *v = p;

		if (v->users)
			return fk_fail(EBUSY);
		((struct fk_hwpt *)fk_obj_get(v->parent_id, FK_HWPT))->users--;
		free(v);
		break;
	}
	case FK_STDEV: {
		struct fk_dev *d = p;

		if (d->vdev_id)
			return fk_fail(EBUSY);
		fk_dev_leave(d);
		fk_obj_clear(d->idev_id);
		free(d);
		break;
	}
	case FK_IOAS:
		free(p);
		break;
	case FK_IDEV:
		return fk_fail(EINVAL);
	default:
		return fk_fail(ENOENT);
	}
	fk_obj_clear(id);
	return 0;
}
