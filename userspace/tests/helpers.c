// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "mock.h"

struct capture cap;
int fake_ctx = -1;

static int on_group(struct iof_queue *q, const struct iof_group *g, void *arg)
{
	struct seen *s = arg;

	if (s->groups < 64)
		s->cookies[s->groups] = g->cookie;
	s->groups++;
	s->last_group = *g;
	memcpy(s->faults, g->faults,
	       (g->nr_faults < 16 ? g->nr_faults : 16) * sizeof(*g->faults));
	if (s->answer_in_callback)
		iof_answer(q, g->cookie, IOMMUFD_PAGE_RESP_SUCCESS);
	return s->refuse ? -ENOSPC : 0;
}

static void note_lost(struct seen *s, uint32_t seq, uint32_t count)
{
	if (s->nr_lost < 8) {
		s->lost_seq[s->nr_lost] = seq;
		s->lost_count[s->nr_lost] = count;
	}
	s->nr_lost++;
}

static void on_lost(struct iof_queue *q, uint32_t seq, uint32_t count,
		    void *arg)
{
	note_lost(arg, seq, count);
}

const struct iof_ops ops = {
	.page_request = on_group,
	.lost = on_lost,
};

static void on_event(struct iof_veventq *q, const struct iof_vevent *ev,
		     void *arg)
{
	struct seen *s = arg;

	if (s->events < 32)
		s->event_seq[s->events] = ev->seq;
	s->events++;
	s->last_event = *ev;
}

static void on_vlost(struct iof_veventq *q, uint32_t seq, uint32_t count,
		     void *arg)
{
	note_lost(arg, seq, count);
}

const struct iof_vevent_ops vops = {
	.event = on_event,
	.lost = on_vlost,
};

void put(struct buf *b, const void *p, size_t len)
{
	memcpy(b->data + b->len, p, len);
	b->len += len;
}

struct iommu_hwpt_pgfault pgfault(uint32_t dev, uint32_t grpid,
				  uint32_t cookie, bool last, uint64_t addr)
{
	return (struct iommu_hwpt_pgfault){
		.flags = IOMMU_PGFAULT_FLAGS_PASID_VALID |
			 (last ? IOMMU_PGFAULT_FLAGS_LAST_PAGE : 0),
		.dev_id = dev,
		.pasid = 7,
		.grpid = grpid,
		.perm = IOMMU_PGFAULT_PERM_READ,
		.addr = addr,
		.cookie = cookie,
	};
}

struct iommu_hwpt_pgfault pgfault_pasid(uint32_t dev, bool pasid_valid,
					uint32_t pasid, uint32_t grpid,
					uint32_t cookie)
{
	struct iommu_hwpt_pgfault pf = pgfault(dev, grpid, cookie, true, 0);

	pf.flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE |
		   (pasid_valid ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0);
	pf.pasid = pasid;
	return pf;
}

void put_pgfault(struct buf *b, struct iommu_hwpt_pgfault pf)
{
	put(b, &pf, sizeof(pf));
}

void put_hdr(struct buf *b, uint32_t flags, uint32_t seq)
{
	struct iommufd_vevent_header h = { .flags = flags, .sequence = seq };

	put(b, &h, sizeof(h));
}

void put_bounded(struct buf *b, uint32_t seq, struct iommu_hwpt_pgfault pf)
{
	put_hdr(b, 0, seq);
	put_pgfault(b, pf);
}

void put_selftest_event(struct buf *b, uint32_t seq, uint32_t virt_id)
{
	put_hdr(b, 0, seq);
	put(b, &virt_id, sizeof(virt_id));
}

int put_walk_to(struct buf *b, uint32_t next)
{
	uint32_t at = 0, step = IOF_SEQ_MAX_GAP / 2;
	int n = 0;

	while (next - at > step) {
		at += step;
		put_hdr(b, LOST, at - 1);
		n++;
	}
	put_hdr(b, LOST, next - 1);
	return n + 1;
}

static ssize_t capture_write(int fd, const void *buf, size_t len)
{
	const struct iommu_hwpt_page_response *r = buf;
	size_t n = len / sizeof(*r), i;

	cap.writes++;
	if (cap.eintr) {
		cap.eintr--;
		errno = EINTR;
		return -1;
	}
	if (cap.max_per_write && n > (size_t)cap.max_per_write)
		n = cap.max_per_write;
	for (i = 0; i != n; i++) {
		/* The kernel takes SUCCESS and INVALID only */
		if (r[i].cookie == cap.refuse ||
		    r[i].code > IOMMUFD_PAGE_RESP_INVALID) {
			if (i == 0) {
				errno = EINVAL;
				return -1;
			}
			break;
		}
		cap.got[cap.nr_got++] = r[i];
	}
	return i * sizeof(*r);
}

void capture_answers(void)
{
	const struct iof_sys sys = { .write = capture_write };

	memset(&cap, 0, sizeof(cap));
	iof_set_sys(&sys);
}

int boot_fake(bool k73)
{
	fake_boot(k73 ? FAKE_73 : FAKE_V3);
	fake_hook_library(true);
	iof_probe_reset();
	mock_set_ioctl(fake_ioctl);
	mock_kernel_73 = k73;
	fake_ctx = fake_open();
	return fake_ctx;
}

struct iof_queue *fake_lib_queue(int fd, const struct iof_config *cfg)
{
	return iof_queue_create(fd, cfg);
}

int mock_env(int fd, struct mockenv *e)
{
	int rc;

	rc = mock_ioas_alloc(fd, &e->ioas);
	if (!rc)
		rc = mock_device(fd, e->ioas, 0, &e->stdev, &e->dev);
	if (!rc)
		rc = mock_parent_alloc(fd, e->dev, e->ioas, &e->parent);
	if (!rc)
		rc = mock_viommu_alloc(fd, e->dev, e->parent, &e->viommu);
	return rc;
}
