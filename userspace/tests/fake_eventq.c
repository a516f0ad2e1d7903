// SPDX-License-Identifier: MIT
/*
 * The fake kernel's queues: a fault queue (7.3's drivers/iommu/iommufd/
 * eventq.c, and the series' v3 as build/V3-UAPI.md has it) and a vEVENTQ
 * (7.3's driver.c and eventq.c, which the series keeps). See fake.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_priv.h"
#include "iofault.h"

static bool v3(void)
{
	return fk_kernel == FAKE_V3;
}

static bool has_header(const struct fk_fq *q)
{
	return q->flags & (IOF_FAULT_QUEUE_HEADER | IOF_FAULT_QUEUE_BOUNDED);
}

static uint32_t cap(void)
{
	if (!v3())
		return UINT32_MAX;	/* 7.3: any 32-bit cookie but 0 */
	return fake_knobs.cap ? fake_knobs.cap : FK_CAP;
}

static bool fq_readable(const struct fk_fq *q)
{
	return q->n && q->awaiting < cap();
}

static void fq_level(struct fk_fq *q, bool wake)
{
	fk_level(q->rfd, q->wfd, q->efd, &q->readable, fq_readable(q), wake);
}

/* An answer freed a slot: readable again; v2 told poll() only */
static void fq_level_answered(struct fk_fq *q, bool capped)
{
	if (capped && fake_knobs.no_cap_wake) {
		/* poll() wakes up; the eventfd is not signalled */
		q->readable = fq_readable(q);
		if (q->readable && write(q->wfd, "", 1) < 0 && errno != EAGAIN)
			abort();
		return;
	}
	fq_level(q, capped);
}

static void push(struct fk_fq *q, struct fk_group *g)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 64;
		q->items = realloc(q->items, q->cap * sizeof(*q->items));
	}
	q->items[q->n++] = g;
}

static void drop_head(struct fk_fq *q)
{
	free(q->items[0]);
	memmove(q->items, q->items + 1, --q->n * sizeof(*q->items));
}

struct fk_fq *fk_fq_new(uint32_t id, uint32_t flags, uint32_t depth, int efd)
{
	struct fk_fq *q = calloc(1, sizeof(*q));

	q->id = id;
	q->flags = flags;
	q->depth = depth;
	q->efd = efd;
	q->fd_open = true;
	return q;
}

void fk_fq_free(struct fk_fq *q)
{
	uint32_t i;

	/* Destroying the queue answers everything it holds INVALID */
	for (i = 0; i != q->n; i++)
		if (!q->items[i]->lost)
			fk_answer_group(q->items[i], IOMMUFD_PAGE_RESP_INVALID);
	for (i = 0; i != q->n; i++)
		free(q->items[i]);
	for (i = 0; i < q->nslots; i++) {
		if (q->slots[i]) {
			fk_answer_group(q->slots[i], IOMMUFD_PAGE_RESP_INVALID);
			free(q->slots[i]);
		}
	}
	free(q->items);
	free(q->slots);
	free(q);
}

int fk_fq_enqueue(struct fk_fq *q, uint32_t dev_id, uint32_t pasid,
		  bool pasid_valid, uint32_t grpid, uint32_t perm,
		  uint32_t nfaults, uint64_t addr)
{
	struct fk_group *g;

	fk_acct(dev_id)->groups++;
	if ((q->flags & IOF_FAULT_QUEUE_BOUNDED) &&
	    q->unread_faults + nfaults > q->depth) {
		/*
		 * It does not fit whole: answered at once, as a full page
		 * request queue answers (the device retries), and lost
		 */
		fk_acct(dev_id)->success++;
		q->lost += nfaults;
		if (q->n && q->items[q->n - 1]->lost) {
			q->items[q->n - 1]->lost += nfaults;
		} else {
			g = calloc(1, sizeof(*g));
			g->lost = nfaults;
			push(q, g);
		}
		fq_level(q, true);
		return 0;
	}
	g = calloc(1, sizeof(*g));
	*g = (struct fk_group){
		.dev_id = dev_id,
		.pasid = pasid,
		.pasid_valid = pasid_valid,
		.grpid = grpid,
		.perm = perm,
		.nfaults = nfaults,
		.addr = addr,
	};
	push(q, g);
	q->unread_faults += nfaults;
	fq_level(q, true);
	return 0;
}

/* A slot for a group read: 7.3's lowest free index from 1, or v3's */
static uint32_t take_slot(struct fk_fq *q, struct fk_group *g)
{
	uint32_t s;

	/* Every slot below the hint is taken */
	for (s = q->hint ? q->hint : 1; s < q->nslots && q->slots[s]; s++)
		;
	q->hint = s + 1;
	if (s >= q->nslots) {
		uint32_t n = q->nslots ? 2 * q->nslots : 64;

		q->slots = realloc(q->slots, n * sizeof(*q->slots));
		memset(q->slots + q->nslots, 0,
		       (n - q->nslots) * sizeof(*q->slots));
		if (!q->nslots)
			s = 1;
		q->nslots = n;
	}
	q->slots[s] = g;
	if (v3())
		g->cookie = q->cookie_gen++ << FK_SLOT_BITS | s;
	else
		g->cookie = s;
	return s;
}

static size_t put_group(struct fk_fq *q, const struct fk_group *g,
			unsigned char *p)
{
	struct iommufd_vevent_header h = {};
	struct iommu_hwpt_pgfault pf;
	size_t done = 0;
	uint32_t i;

	for (i = 0; i != g->nfaults; i++) {
		pf = (struct iommu_hwpt_pgfault){
			.flags = (i == g->nfaults - 1 ?
					  IOMMU_PGFAULT_FLAGS_LAST_PAGE : 0) |
				 (g->pasid_valid ?
					  IOMMU_PGFAULT_FLAGS_PASID_VALID : 0),
			.dev_id = g->dev_id,
			.pasid = g->pasid,
			.grpid = g->grpid,
			.perm = g->perm,
			.addr = g->addr + (uint64_t)i * FK_PAGE,
			.cookie = g->cookie,
		};
		if (has_header(q)) {
			/* Numbered as it is read */
			h.sequence = q->seq;
			q->seq = (q->seq + 1) & INT_MAX;
			memcpy(p + done, &h, sizeof(h));
			done += sizeof(h);
		}
		memcpy(p + done, &pf, sizeof(pf));
		done += sizeof(pf);
	}
	return done;
}

ssize_t fk_fq_read(struct fk_fq *q, void *buf, size_t len)
{
	const size_t hsz = sizeof(struct iommufd_vevent_header);
	const size_t msg = (has_header(q) ? hsz : 0) +
			   sizeof(struct iommu_hwpt_pgfault);
	unsigned char *p = buf;
	struct fk_group *g;
	size_t done = 0;
	int rc = 0;

	if (!has_header(q) && len % msg)
		return -ESPIPE;
	if (has_header(q) && len < hsz)
		return -EINVAL;
	while (q->n) {
		g = q->items[0];
		if (g->lost && q->n > 1) {
			/* Lost between two groups: a gap before the next */
			q->seq = (q->seq + g->lost) & INT_MAX;
			drop_head(q);
			continue;
		}
		if (g->lost) {
			/* Lost at the tail: a header that says so */
			struct iommufd_vevent_header h = {
				.flags = IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
				.sequence = (q->seq + g->lost - 1) & INT_MAX,
			};

			if (len - done < hsz)
				break;
			q->seq = (q->seq + g->lost) & INT_MAX;
			memcpy(p + done, &h, hsz);
			done += hsz;
			drop_head(q);
			continue;
		}
		if (q->awaiting >= cap()) {
			if (!done)
				rc = -EAGAIN;
			break;
		}
		if (done >= len || g->nfaults * msg > len - done) {
			if (!done)
				rc = -EINVAL;
			break;
		}
		take_slot(q, g);
		done += put_group(q, g, p + done);
		q->awaiting++;
		q->unread_faults -= g->nfaults;
		memmove(q->items, q->items + 1, --q->n * sizeof(*q->items));
	}
	fq_level(q, false);
	return done ? (ssize_t)done : rc;
}

static void free_slot(struct fk_fq *q, uint32_t s)
{
	if (s < q->hint)
		q->hint = s;
}

static struct fk_group **find_cookie(struct fk_fq *q, uint32_t cookie)
{
	uint32_t s = v3() ? cookie & ((1U << FK_SLOT_BITS) - 1) : cookie;

	if (!s || s >= q->nslots || !q->slots[s] ||
	    q->slots[s]->cookie != cookie)
		return NULL;
	return &q->slots[s];
}

ssize_t fk_fq_write(struct fk_fq *q, const void *buf, size_t len)
{
	const bool capped = q->awaiting >= cap();
	struct iommu_hwpt_page_response r;
	struct fk_group **slot;
	size_t done = 0;
	int rc = 0;

	if (len % sizeof(r))
		return -ESPIPE;
	while (done < len) {
		memcpy(&r, (const char *)buf + done, sizeof(r));
		if (r.code != IOMMUFD_PAGE_RESP_SUCCESS &&
		    r.code != IOMMUFD_PAGE_RESP_INVALID) {
			rc = -EINVAL;
			break;
		}
		slot = find_cookie(q, r.cookie);
		if (!slot) {
			rc = -EINVAL;
			break;
		}
		fk_answer_group(*slot, r.code);
		free(*slot);
		*slot = NULL;
		free_slot(q, slot - q->slots);
		q->awaiting--;
		done += sizeof(r);
	}
	/* An answer that frees a slot at the cap wakes the queue up */
	fq_level_answered(q, done && capped);
	return done ? (ssize_t)done : rc;
}

/*
 * The device left the queue's HWPT: its groups are answered INVALID, those
 * unread withdrawn (no sequence numbers: they were never read)
 */
void fk_fq_detach(struct fk_fq *q, uint32_t dev_id)
{
	const bool capped = q->awaiting >= cap();
	unsigned int i, j = 0;
	bool freed = false;
	struct fk_group *g;

	for (i = 0; i != q->n; i++) {
		g = q->items[i];
		if (!g->lost && g->dev_id == dev_id) {
			fk_answer_group(g, IOMMUFD_PAGE_RESP_INVALID);
			q->withdrawn += g->nfaults;
			q->unread_faults -= g->nfaults;
			free(g);
			continue;
		}
		/* Two runs of lost faults now side by side are one */
		if (g->lost && j && q->items[j - 1]->lost) {
			q->items[j - 1]->lost += g->lost;
			free(g);
			continue;
		}
		q->items[j++] = g;
	}
	q->n = j;
	for (i = 0; i < q->nslots; i++) {
		g = q->slots[i];
		if (g && g->dev_id == dev_id) {
			fk_answer_group(g, IOMMUFD_PAGE_RESP_INVALID);
			free(g);
			q->slots[i] = NULL;
			free_slot(q, i);
			q->awaiting--;
			freed = true;
		}
	}
	fq_level_answered(q, freed && capped);
}

int fk_fq_fdinfo(struct fk_fq *q, char *buf, size_t len)
{
	if (!v3())
		return 0;
	return snprintf(buf, len,
			"flags:\t%#x\ndepth:\t%u\nqueued:\t%u\nawaiting:\t%u\n"
			"sequence:\t%u\nlost:\t%llu\nwithdrawn:\t%llu\n",
			q->flags, q->depth, q->unread_faults, q->awaiting,
			q->seq, (unsigned long long)q->lost,
			(unsigned long long)q->withdrawn);
}

/* ---- vEVENTQ ---- */

static void vq_level(struct fk_vq *q)
{
	fk_level(q->rfd, q->wfd, q->efd, &q->readable, q->n, true);
}

struct fk_vq *fk_vq_new(uint32_t id, uint32_t viommu_id, uint32_t type,
			uint32_t depth, int efd)
{
	struct fk_vq *q = calloc(1, sizeof(*q));

	q->id = id;
	q->viommu_id = viommu_id;
	q->type = type;
	q->depth = depth;
	q->efd = efd;
	q->fd_open = true;
	return q;
}

void fk_vq_free(struct fk_vq *q)
{
	free(q->items);
	free(q);
}

/* iommufd_viommu_report_event() and iommufd_vevent_handler() of 7.3 */
void fk_vq_report(struct fk_vq *q, uint32_t virt_id, bool lost)
{
	struct fk_vev ev = { .virt_id = virt_id };

	if (lost || q->num_events == q->depth) {
		ev.lost = true;
		q->lost++;
	} else {
		q->num_events++;
	}
	/* A LOST header stays at the tail only: whatever comes replaces it */
	if (q->n && q->items[q->n - 1].lost)
		q->n--;
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 64;
		q->items = realloc(q->items, q->cap * sizeof(*q->items));
	}
	ev.seq = q->seq;
	q->seq = (q->seq + 1) & INT_MAX;
	q->items[q->n++] = ev;
	vq_level(q);
}

ssize_t fk_vq_read(struct fk_vq *q, void *buf, size_t len)
{
	const size_t hsz = sizeof(struct iommufd_vevent_header);
	struct iommufd_vevent_header h;
	unsigned char *p = buf;
	unsigned int i = 0;
	size_t done = 0;
	int rc = 0;

	if (len < hsz)
		return -EINVAL;
	for (; i != q->n; i++) {
		struct fk_vev *ev = &q->items[i];

		if (done >= len || hsz > len - done)
			break;
		if (!ev->lost && hsz + 4 > len - done) {
			if (!done)
				rc = -EINVAL;
			break;
		}
		h = (struct iommufd_vevent_header){
			.flags = ev->lost ? IOMMU_VEVENTQ_FLAG_LOST_EVENTS : 0,
			.sequence = ev->seq,
		};
		memcpy(p + done, &h, hsz);
		done += hsz;
		if (!ev->lost) {
			memcpy(p + done, &ev->virt_id, 4);
			done += 4;
			q->num_events--;
		}
	}
	memmove(q->items, q->items + i, (q->n - i) * sizeof(*q->items));
	q->n -= i;
	fk_level(q->rfd, q->wfd, q->efd, &q->readable, q->n, false);
	return done ? (ssize_t)done : rc;
}

int fk_vq_fdinfo(struct fk_vq *q, char *buf, size_t len)
{
	if (!v3())
		return 0;
	return snprintf(buf, len, "type:\t%u\ndepth:\t%u\nqueued:\t%u\nlost:\t%llu\n",
			q->type, q->depth, q->num_events,
			(unsigned long long)q->lost);
}
