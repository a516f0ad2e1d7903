// SPDX-License-Identifier: MIT
/*
 * Reading a fault queue: messages into page request groups, sequence
 * accounting, the callbacks, and the dispatch that runs them. The group
 * being put together is the dispatching thread's; what other threads see
 * (outstanding groups, counters) changes under the queue's lock, which is
 * dropped around every callback.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/*
 * A group cut short: the kernel reads whole groups, so this is a broken
 * stream. Its device still waits for an answer: give INVALID, unless the
 * cookie belongs to a group the VMM has (answering would answer that one).
 */
static void group_drop(struct iof_queue *q)
{
	if (q->group_open) {
		pthread_mutex_lock(&q->lock);
		q->st.malformed++;
		if (q->group.cookie && !iof_find_cookie(q, q->group.cookie) &&
		    !iof_answer_push_locked(q, q->group.cookie,
					    IOMMUFD_PAGE_RESP_INVALID))
			q->st.auto_invalid++;
		pthread_mutex_unlock(&q->lock);
	}
	q->group_open = false;
	q->group.nr_faults = 0;
}

/* Keep a fault of the group: false when there is no memory for it */
static bool group_keep(struct iof_queue *q, const struct iommu_hwpt_pgfault *pf)
{
	struct iof_group *g = &q->group;

	if (g->nr_faults == q->faults_cap) {
		uint32_t cap = q->faults_cap ? 2 * q->faults_cap : 8;
		struct iof_fault *n = iof_realloc(q->faults, cap * sizeof(*n),
						  "group");

		if (!n)
			return false;
		q->faults = n;
		q->faults_cap = cap;
	}
	q->faults[g->nr_faults] = (struct iof_fault){
		.flags = pf->flags,
		.perm = pf->perm,
		.addr = pf->addr,
	};
	return true;
}

/* A whole group: make it outstanding, and give it to the VMM */
static int group_deliver(struct iof_queue *q, const struct iof_ops *ops,
			 void *arg)
{
	struct iof_group *g = &q->group;
	struct iof_gent x = iof_group_key(g->dev_id, g->pasid_valid, g->pasid,
					  g->grpid);
	struct iof_gent *s;
	int rc = 0;

	x.cookie = g->cookie;
	pthread_mutex_lock(&q->lock);
	if (!q->group_nomem)
		rc = iof_outstanding_add(q, &x);
	if (!q->group_nomem && rc != -ENOMEM) {
		if (rc)	/* cookie 0: not answerable */
			q->st.malformed++;
		else
			q->st.groups++;
	}
	pthread_mutex_unlock(&q->lock);
	if (q->group_nomem || rc == -ENOMEM) {
#ifdef IOF_PLANT_NOMEM_STRANDS	/* plant: v1's ENOMEM left it unanswered */
		return -ENOMEM;
#endif
		/*
		 * No room to keep it: nobody could answer it later. The
		 * device must not wait for ever: INVALID, now.
		 */
		return g->cookie ? iof_answer_now(q, g->cookie) : 0;
	}
	if (rc || !ops || !ops->page_request)
		return 0;
	g->faults = q->faults;
	/* With no lock held: it may take the VMM's, which answerers hold */
#ifdef IOF_PLANT_CALLBACK_UNDER_LOCK	/* plant: the lock order inverted */
	pthread_mutex_lock(&q->lock);
	rc = ops->page_request(q, g, arg);
	pthread_mutex_unlock(&q->lock);
#else
	rc = ops->page_request(q, g, arg);
#endif
	if (q->c.doomed || !rc)
		return 0;
#ifndef IOF_PLANT_NOT_INJECTED	/* plant: the callback's answer ignored */
	/* Not injected: nobody else will ever answer it */
	pthread_mutex_lock(&q->lock);
	s = iof_find_cookie(q, g->cookie);
	rc = 0;
	if (s) {
		rc = iof_answer_group_locked(q, s, IOMMUFD_PAGE_RESP_INVALID);
		if (!rc)
			q->st.not_injected++;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
#else
	(void)s;
	return 0;
#endif
}

static int group_add(struct iof_queue *q, const struct iommu_hwpt_pgfault *pf,
		     uint32_t seq, const struct iof_ops *ops, void *arg)
{
	struct iof_group *g = &q->group;

	/* All faults of a group come together, with one cookie */
	if (q->group_open && (pf->cookie != g->cookie ||
			      pf->dev_id != g->dev_id ||
			      pf->grpid != g->grpid))
		group_drop(q);
	if (!q->group_open) {
		memset(g, 0, sizeof(*g));
		g->dev_id = pf->dev_id;
		g->grpid = pf->grpid;
		g->cookie = pf->cookie;
		g->pasid = pf->pasid;
		g->pasid_valid = pf->flags & IOMMU_PGFAULT_FLAGS_PASID_VALID;
		g->seq = seq;
		q->group_open = true;
		q->group_nomem = false;
	}
	if (!q->group_nomem && !group_keep(q, pf))
		q->group_nomem = true;
	g->nr_faults++;
	if (!(pf->flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE))
		return 0;
	q->group_open = false;
	return group_deliver(q, ops, arg);
}

static void count_message(struct iof_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->st.messages++;
	pthread_mutex_unlock(&q->lock);
}

static int parse_73(struct iof_queue *q, const unsigned char *buf, size_t len,
		    const struct iof_ops *ops, void *arg)
{
	const size_t unit = IOF_PGFAULT_SIZE;
	int n = 0, rc;

	if (len % unit) {
		pthread_mutex_lock(&q->lock);
		q->st.malformed++;
		pthread_mutex_unlock(&q->lock);
	}
	for (; len >= unit && !q->c.doomed; buf += unit, len -= unit, n++) {
		struct iommu_hwpt_pgfault pf;

		memcpy(&pf, buf, unit);
		count_message(q);
		rc = group_add(q, &pf, 0, ops, arg);
		if (rc)
			return rc;
	}
	return n;
}

/* A header queue's sequence: tell the VMM what was lost */
static void seq_account(struct iof_queue *q,
			const struct iommufd_vevent_header *hdr,
			const struct iof_ops *ops, void *arg)
{
	uint32_t first;
	int64_t lost;

	pthread_mutex_lock(&q->lock);
	lost = iof_seq_check(&q->st.seq, hdr->flags, hdr->sequence, &first);
	pthread_mutex_unlock(&q->lock);
	if (lost > 0 && ops && ops->lost)
		ops->lost(q, first, lost, arg);
}

static void count_malformed(struct iof_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->st.malformed++;
	pthread_mutex_unlock(&q->lock);
}

static int parse_header(struct iof_queue *q, const unsigned char *buf,
			size_t len, const struct iof_ops *ops, void *arg)
{
	struct iommufd_vevent_header hdr;
	struct iommu_hwpt_pgfault pf;
	struct iof_walk w;
	const void *data;
	int n = 0, rc;

	iof_walk_init(&w, buf, len, sizeof(pf));
	while (!q->c.doomed) {
		switch (iof_walk_next(&w, &hdr, &data)) {
		case IOF_WALK_END:
			return n;
		case IOF_WALK_TRUNCATED:
			/* A piece of a message: the kernel reads whole ones */
			count_malformed(q);
			return n;
		case IOF_WALK_LOST:
			/* Header only; never inside a group */
			n++;
			if (hdr.flags & ~IOMMU_VEVENTQ_FLAG_LOST_EVENTS)
				count_malformed(q);
			group_drop(q);
			seq_account(q, &hdr, ops, arg);
			break;
		case IOF_WALK_MSG:
			n++;
			count_message(q);
			memcpy(&pf, data, sizeof(pf));
			seq_account(q, &hdr, ops, arg);
			if (q->c.doomed)
				return n;
			if (hdr.flags) {
				/* A flag this library does not know: skip it */
				count_malformed(q);
				break;
			}
			rc = group_add(q, &pf, hdr.sequence, ops, arg);
			if (rc)
				return rc;
			break;
		}
	}
	return n;
}

int iof_parse_fault_chan(void *obj, const unsigned char *buf, size_t len,
			 const void *ops, void *arg)
{
	struct iof_queue *q = obj;

	if (iof_has_header(q->flags))
		return parse_header(q, buf, len, ops, arg);
	return parse_73(q, buf, len, ops, arg);
}

/* Everything iof_queue_destroy() does, now */
int iof_queue_teardown(struct iof_queue *q)
{
	int rc;

	iof_flush(q);
	rc = iof_chan_close(&q->c);
	iof_queue_free(q);
	return rc;
}

/*
 * Run a dispatch (@buf NULL) or a parse, whose callbacks may destroy the
 * queue: then it is torn down here, once nothing of it is in use, and
 * -ECANCELED says so.
 */
int iof_queue_run(struct iof_queue *q, const void *buf, size_t len,
		  const struct iof_ops *ops, void *arg)
{
	uint64_t answered;
	bool stalled = false;
	int n;

	/* From a callback of its own: it would read over what it parses */
	if (q->c.busy)
		return -EDEADLK;
	q->c.busy = true;
	if (buf) {
		n = iof_parse_fault_chan(q, buf, len, ops, arg);
	} else {
		pthread_mutex_lock(&q->lock);
		answered = q->st.answered;
		pthread_mutex_unlock(&q->lock);
		n = iof_chan_dispatch(&q->c, iof_parse_fault_chan, q, ops, arg,
				      &stalled);
		if (stalled && !q->c.doomed) {
			pthread_mutex_lock(&q->lock);
			iof_stall_locked(q, answered);
			pthread_mutex_unlock(&q->lock);
		}
	}
	q->c.busy = false;
	if (q->c.doomed) {
		iof_queue_teardown(q);
		return -ECANCELED;
	}
	return n;
}

IOF_EXPORT int iof_parse(struct iof_queue *q, const void *buf, size_t len,
			 const struct iof_ops *ops, void *arg)
{
	/* Not NULL: that would read the queue */
	return iof_queue_run(q, buf ? buf : "", buf ? len : 0, ops, arg);
}

IOF_EXPORT int iof_queue_dispatch(struct iof_queue *q,
				  const struct iof_ops *ops, void *arg)
{
	return iof_queue_run(q, NULL, 0, ops, arg);
}
