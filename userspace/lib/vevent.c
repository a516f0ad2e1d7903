// SPDX-License-Identifier: MIT
/*
 * vEVENTQs: unrecoverable stage-1 faults and the other events of a vIOMMU,
 * as the vendor's record. One thread at a time (iofault.h, "Threads"):
 * nothing here is locked.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

struct iof_veventq {
	struct iof_chan c;
	uint32_t type;
	uint32_t flags;		/* IOF_VEVENTQ_* */
	uint32_t data_len;	/* of one event */
	struct iof_vstats st;
};

/* The data size of the types the library knows, else 0 */
static uint32_t vevent_data_len(uint32_t type)
{
	switch (type) {
	case IOMMU_VEVENTQ_TYPE_ARM_SMMUV3:
		return sizeof(struct iommu_vevent_arm_smmuv3);
	case IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV:
		return sizeof(struct iommu_vevent_tegra241_cmdqv);
	case IOF_VEVENTQ_TYPE_INTEL_VTD:
		return 16;	/* struct iommu_vevent_intel_vtd */
	case IOF_VEVENTQ_TYPE_SELFTEST:
		return sizeof(uint32_t);	/* virt_id */
	}
	return 0;
}

IOF_EXPORT void iof_vtd_decode(const void *record, struct iof_vtd_fault *f)
{
	uint64_t lo, hi;

	memcpy(&lo, record, 8);
	memcpy(&hi, (const char *)record + 8, 8);
	lo = le64toh(lo);
	hi = le64toh(hi);
	/* hi holds bits 127:64 of the record */
	*f = (struct iof_vtd_fault){
		.addr = lo & ~0xfffULL,
		.source_id = hi & 0xffff,
		.pasid_present = (hi >> (95 - 64)) & 1,
		.reason = (hi >> (96 - 64)) & 0xff,
		.pasid = (hi >> (104 - 64)) & 0xfffff,
		.read = (hi >> (126 - 64)) & 1,
		.valid = (hi >> (127 - 64)) & 1,
	};
}

static struct iof_veventq *vq_alloc(const struct iof_veventq_config *cfg)
{
	struct iof_veventq *q;
	uint32_t len;

	if (!cfg) {
		errno = EINVAL;
		return NULL;
	}
	len = cfg->data_len ? cfg->data_len : vevent_data_len(cfg->type);
	/* Without the size of one event, a buffer of several cannot be split */
	if (!len || len > IOF_MAX_VEVENT) {
		errno = EINVAL;
		return NULL;
	}
	q = iof_calloc(1, sizeof(*q), "veventq");
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	if (iof_chan_init(&q->c, 0,
			  cfg->read_size ? cfg->read_size :
					   IOF_DEFAULT_BATCH *
							   (IOF_HDR_SIZE + len) +
						   IOF_HDR_SIZE,
			  IOF_HDR_SIZE + IOF_MAX_VEVENT, cfg->max_reads)) {
		free(q);
		errno = ENOMEM;
		return NULL;
	}
	q->c.reads = &q->st.reads;
	q->c.wakeups = &q->st.wakeups;
	q->type = cfg->type;
	q->data_len = len;
	iof_seq_init(&q->st.seq);
	return q;
}

IOF_EXPORT struct iof_veventq *
iof_vparser_new(const struct iof_veventq_config *cfg)
{
	return vq_alloc(cfg);
}

IOF_EXPORT void iof_vparser_free(struct iof_veventq *q)
{
	free(q->c.rbuf);
	free(q);
}

static void vseq_account(struct iof_veventq *q,
			 const struct iommufd_vevent_header *hdr,
			 const struct iof_vevent_ops *ops, void *arg)
{
	uint32_t first;
	int64_t lost;

	lost = iof_seq_check(&q->st.seq, hdr->flags, hdr->sequence, &first);
	if (lost > 0 && ops && ops->lost)
		ops->lost(q, first, lost, arg);
}

static void vdeliver(struct iof_veventq *q, const struct iommufd_vevent_header *hdr,
		     const void *data, const struct iof_vevent_ops *ops,
		     void *arg)
{
	struct iof_vevent ev = {
		.type = q->type,
		.seq = hdr->sequence,
		.data = data,
		.len = q->data_len,
	};

	switch (q->type) {
	case IOF_VEVENTQ_TYPE_SELFTEST:
		memcpy(&ev.u.selftest.virt_id, data, 4);
		ev.decoded = true;
		break;
	case IOF_VEVENTQ_TYPE_INTEL_VTD:
		iof_vtd_decode(data, &ev.u.vtd);
		ev.decoded = true;
		break;
	}
	q->st.events++;
	if (ops && ops->event)
		ops->event(q, &ev, arg);
}

/* One read()'s bytes; the queue may be doomed on return */
static int vparse(void *obj, const unsigned char *buf, size_t len,
		  const void *vops, void *arg)
{
	const struct iof_vevent_ops *ops = vops;
	struct iof_veventq *q = obj;
	struct iommufd_vevent_header hdr;
	struct iof_walk w;
	const void *data;
	int n = 0;

	iof_walk_init(&w, buf, len, q->data_len);
	while (!q->c.doomed) {
		switch (iof_walk_next(&w, &hdr, &data)) {
		case IOF_WALK_END:
			return n;
		case IOF_WALK_TRUNCATED:
			/* A piece of an event: the kernel reads whole ones */
			q->st.malformed++;
			return n;
		case IOF_WALK_LOST:
			/* Header only */
			n++;
			if (hdr.flags & ~IOMMU_VEVENTQ_FLAG_LOST_EVENTS)
				q->st.malformed++;
			vseq_account(q, &hdr, ops, arg);
			break;
		case IOF_WALK_MSG:
			n++;
			vseq_account(q, &hdr, ops, arg);
			if (q->c.doomed)
				return n;
			if (hdr.flags) {
				/* A flag this library does not know: skip it */
				q->st.malformed++;
				break;
			}
			vdeliver(q, &hdr, data, ops, arg);
			break;
		}
	}
	return n;
}

static int vq_teardown(struct iof_veventq *q)
{
	int rc = iof_chan_close(&q->c);

	free(q);
	return rc;
}

/* As iof_queue_run(), for a vEVENTQ: a NULL @buf reads the queue */
static int vq_run(struct iof_veventq *q, const void *buf, size_t len,
		  const struct iof_vevent_ops *ops, void *arg)
{
	bool stalled;
	int n;

	if (q->c.busy)
		return -EDEADLK;
	q->c.busy = true;
	if (buf)
		n = vparse(q, buf, len, ops, arg);
	else
		n = iof_chan_dispatch(&q->c, vparse, q, ops, arg, &stalled);
	q->c.busy = false;
	if (q->c.doomed) {
		vq_teardown(q);
		return -ECANCELED;
	}
	return n;
}

IOF_EXPORT int iof_vparse(struct iof_veventq *q, const void *buf, size_t len,
			  const struct iof_vevent_ops *ops, void *arg)
{
	/* Not NULL: that would read the queue */
	return vq_run(q, buf ? buf : "", buf ? len : 0, ops, arg);
}

/* One IOMMU_VEVENTQ_ALLOC: 0 or -errno */
static int vq_alloc_once(struct iof_veventq *q, int iommufd, uint32_t viommu_id,
			 const struct iof_veventq_config *cfg, uint32_t flags)
{
	struct iof_uapi_veventq_alloc cmd = {
		/* 7.3's 32 bytes unless the eventfd is wanted */
		.size = flags ? sizeof(cmd) : IOF_VEVENTQ_ALLOC_SIZE_73,
		.flags = flags,
		.viommu_id = viommu_id,
		.type = cfg->type,
		.veventq_depth = cfg->depth ? cfg->depth : IOF_DEFAULT_DEPTH,
	};
	int efd = -1;

	if (flags & IOF_VEVENTQ_ALLOC_EVENTFD) {
		efd = cfg->use_eventfd ? cfg->eventfd :
					 eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (efd < 0)
			return -errno;
		cmd.eventfd = efd;
	}
	if (iof_sys_ioctl(iommufd, IOMMU_VEVENTQ_ALLOC, &cmd)) {
		int err = errno;

		if (efd >= 0 && !cfg->use_eventfd)
			close(efd);
		return -err;
	}
	q->c.eventfd = efd;
	q->c.own_eventfd = efd >= 0 && !cfg->use_eventfd;
	q->c.iommufd = iommufd;
	q->c.id = cmd.out_veventq_id;
	q->c.fd = cmd.out_veventq_fd;
	q->c.own_fd = q->c.own_object = true;
	q->flags = flags;
	return 0;
}

IOF_EXPORT struct iof_veventq *
iof_veventq_create(int iommufd, uint32_t viommu_id,
		   const struct iof_veventq_config *cfg)
{
	struct iof_veventq *q;
	bool strict;
	uint32_t flags;
	int rc;

	q = vq_alloc(cfg);
	if (!q)
		return NULL;
	flags = cfg->flags;
	/* The VMM waits on its own eventfd: no poll() behind its back */
	strict = cfg->strict || cfg->use_eventfd;
	rc = -EOPNOTSUPP;
	if (flags & ~IOF_VEVENTQ_EVENTFD)
		goto fail;
	if (flags && iof_cap_get(IOF_CAP_VEVENTQ_EVENTFD) == IOF_CAP_NO) {
		if (strict)
			goto fail;
		flags = 0;
	}
	rc = vq_alloc_once(q, iommufd, viommu_id, cfg, flags);
	if (rc && flags && iof_not_supported(-rc) && !strict) {
		/* Perhaps a kernel without the flag: try without */
		rc = vq_alloc_once(q, iommufd, viommu_id, cfg, 0);
		if (!rc)
			iof_cap_set(IOF_CAP_VEVENTQ_EVENTFD, IOF_CAP_NO);
	} else if (!rc && flags) {
		iof_cap_set(IOF_CAP_VEVENTQ_EVENTFD, IOF_CAP_YES);
	}
	if (rc)
		goto fail;
	return q;

fail:
	iof_vparser_free(q);
	errno = -rc;
	return NULL;
}

IOF_EXPORT struct iof_veventq *
iof_veventq_adopt(int iommufd, uint32_t veventq_id, int veventq_fd,
		  int eventfd, const struct iof_veventq_config *cfg)
{
	struct iof_veventq *q = vq_alloc(cfg);

	if (!q)
		return NULL;
	q->flags = eventfd >= 0 ? IOF_VEVENTQ_EVENTFD : 0;
	q->c.iommufd = iommufd;
	q->c.id = veventq_id;
	q->c.fd = veventq_fd;
	q->c.eventfd = eventfd;
	/* New or in mid-stream: the first event read says where it is */
	iof_seq_init_resync(&q->st.seq);
	return q;
}

IOF_EXPORT int iof_veventq_destroy(struct iof_veventq *q)
{
#ifndef IOF_PLANT_TEARDOWN
	if (q->c.busy) {
		q->c.doomed = true;
		return 0;
	}
#endif
	return vq_teardown(q);
}

IOF_EXPORT uint32_t iof_veventq_id(const struct iof_veventq *q)
{
	return q->c.id;
}

IOF_EXPORT uint32_t iof_veventq_flags(const struct iof_veventq *q)
{
	return q->flags;
}

IOF_EXPORT int iof_veventq_fd(const struct iof_veventq *q)
{
	return q->c.fd;
}

IOF_EXPORT int iof_veventq_wait_fd(const struct iof_veventq *q)
{
	return iof_chan_wait_fd(&q->c);
}

IOF_EXPORT int iof_veventq_epoll_add(struct iof_veventq *q, int epfd,
				     uint32_t events, uint64_t data)
{
	return iof_chan_epoll_add(&q->c, epfd, events, data);
}

IOF_EXPORT int iof_veventq_wait(struct iof_veventq *q, int timeout_ms)
{
	return iof_chan_wait(&q->c, timeout_ms);
}

IOF_EXPORT int iof_veventq_dispatch(struct iof_veventq *q,
				    const struct iof_vevent_ops *ops,
				    void *arg)
{
	return vq_run(q, NULL, 0, ops, arg);
}

IOF_EXPORT const struct iof_vstats *iof_veventq_stats(const struct iof_veventq *q)
{
	return &q->st;
}
