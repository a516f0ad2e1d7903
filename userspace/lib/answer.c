// SPDX-License-Identifier: MIT
/*
 * Answers: the guest's codes, the buffer, the write()s, and the stall at
 * the kernel's cap of groups awaiting an answer. Any thread may answer:
 * everything here runs under the queue's lock, which nothing holds across
 * a callback (iofault.h, "Threads").
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

_Static_assert((int)IOF_RESP_SUCCESS == (int)IOMMUFD_PAGE_RESP_SUCCESS &&
		       (int)IOF_RESP_INVALID == (int)IOMMUFD_PAGE_RESP_INVALID,
	       "the library's codes are the kernel's where they can be");

/*
 * The code the kernel takes for a guest's code: SUCCESS and INVALID are
 * written as they are, a Response Failure as INVALID (iofault.h says why).
 */
static int kernel_code(uint32_t code, uint32_t *kcode, bool *failure)
{
	*failure = false;
	switch (code) {
	case IOF_RESP_SUCCESS:
	case IOF_RESP_INVALID:
		*kcode = code;
		return 0;
	case IOF_RESP_FAILURE:
#ifndef IOF_PLANT_FAILURE_CODE	/* plant: the guest's code passed on */
		*kcode = IOMMUFD_PAGE_RESP_INVALID;
#else
		*kcode = code;
#endif
		*failure = true;
		return 0;
	}
	return -EINVAL;
}

int iof_answer_push_locked(struct iof_queue *q, uint32_t cookie,
			   uint32_t kcode)
{
	int rc;

	if (q->nr_answers == IOF_ANSWER_BATCH) {
		rc = iof_flush_locked(q);
		if (rc < 0)
			return rc;
	}
	q->answers[q->nr_answers++] = (struct iommu_hwpt_page_response){
		.cookie = cookie,
		.code = kcode,
	};
	return 0;
}

int iof_answer_group_locked(struct iof_queue *q, struct iof_gent *s,
			    uint32_t kcode)
{
	uint32_t cookie = s->cookie;
	int rc;

	/* Make room first: a failed flush leaves the group outstanding */
	if (q->nr_answers == IOF_ANSWER_BATCH) {
		rc = iof_flush_locked(q);
		if (rc < 0)
			return rc;
	}
	iof_outstanding_del(q, s);
	return iof_answer_push_locked(q, cookie, kcode);
}

/*
 * A group the library cannot keep (no memory for its faults or its entry):
 * nobody could answer it later, so answer it INVALID now, with a write of
 * its own that needs no buffer. The device retries or fails the access; it
 * does not wait forever.
 */
int iof_answer_now(struct iof_queue *q, uint32_t cookie)
{
	const struct iommu_hwpt_page_response r = {
		.cookie = cookie,
		.code = IOMMUFD_PAGE_RESP_INVALID,
	};
	ssize_t n;

	pthread_mutex_lock(&q->lock);
	do {
		q->st.writes++;
		n = iof_sys_write(q->c.fd, &r, sizeof(r));
	} while (n < 0 && errno == EINTR);
	if (n == sizeof(r)) {
		q->st.answered++;
		q->st.nomem_invalid++;
	}
	pthread_mutex_unlock(&q->lock);
	return n == sizeof(r) ? 0 : -errno;
}

static int answer(struct iof_queue *q, const struct iof_gent *key,
		  uint32_t cookie, uint32_t code)
{
	struct iof_gent *k, *s;
	uint32_t kcode;
	bool failure;
	int rc;

	rc = kernel_code(code, &kcode, &failure);
	if (rc)
		return rc;
	pthread_mutex_lock(&q->lock);
	if (key) {
		k = iof_gfind(&q->keys, key, IOF_BY_KEY);
		s = k ? iof_find_cookie(q, k->cookie) : NULL;
		if (!s)
			q->st.unmatched++;
	} else {
		s = iof_find_cookie(q, cookie);
	}
	rc = s ? iof_answer_group_locked(q, s, kcode) : -ENOENT;
	if (!rc && failure)
		q->st.failure_as_invalid++;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

IOF_EXPORT int iof_answer(struct iof_queue *q, uint32_t cookie,
			  uint32_t code)
{
	return answer(q, NULL, cookie, code);
}

IOF_EXPORT int iof_answer_by(struct iof_queue *q, uint32_t dev_id,
			     bool pasid_valid, uint32_t pasid, uint32_t grpid,
			     uint32_t code)
{
	const struct iof_gent x = iof_group_key(dev_id, pasid_valid, pasid,
						grpid);

	return answer(q, &x, 0, code);
}

int iof_flush_locked(struct iof_queue *q)
{
	const size_t unit = sizeof(q->answers[0]);
	unsigned int done = 0, accepted = 0, i, k;
	ssize_t n;

	while (done < q->nr_answers) {
		q->st.writes++;
		n = iof_sys_write(q->c.fd, &q->answers[done],
				  (q->nr_answers - done) * unit);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EINVAL) {
				/* Keep what was not written for next time */
				memmove(q->answers, &q->answers[done],
					(q->nr_answers - done) * unit);
				q->nr_answers -= done;
				return -errno;
			}
			/*
			 * The kernel stops at the first answer it refuses:
			 * a group it answered itself on detach. Skip it.
			 */
			q->st.refused++;
			done++;
			continue;
		}
		/* A short write took the answers before the refused one */
		k = n / unit;
		for (i = done; i != done + k; i++)
			if (q->answers[i].code == IOMMUFD_PAGE_RESP_SUCCESS)
				q->st.answered_success++;
		q->st.answered += k;
		accepted += k;
		done += k;
	}
	q->nr_answers = 0;
#ifndef IOF_PLANT_STALL_REARM	/* plant: a queue at the cap stays stalled */
	/*
	 * Answers made room under the kernel's cap: the queue is readable
	 * again. The series' kernel says so itself (it signals the eventfd,
	 * wakes poll()); make sure on any kernel, edge triggered too.
	 */
	if (accepted && q->stalled) {
		q->stalled = false;
		iof_chan_rearm(&q->c);
	}
#endif
	return done;
}

IOF_EXPORT int iof_flush(struct iof_queue *q)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	rc = iof_flush_locked(q);
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/*
 * The dispatch stopped at the cap. An answer accepted since it began
 * (@answered: the count then) may have made room before the dispatch could
 * say it was stalled, and found nothing to re-arm: re-arm now.
 */
void iof_stall_locked(struct iof_queue *q, uint64_t answered)
{
	q->st.stalls++;
	q->stalled = true;
	if (q->st.answered != answered)
		iof_chan_rearm(&q->c);
}

IOF_EXPORT bool iof_queue_stalled(const struct iof_queue *q)
{
	struct iof_queue *mq = (struct iof_queue *)q;
	bool stalled;

	pthread_mutex_lock(&mq->lock);
	stalled = q->stalled;
	pthread_mutex_unlock(&mq->lock);
	return stalled;
}

IOF_EXPORT const struct iof_stats *iof_queue_stats(const struct iof_queue *q)
{
	return &q->st;
}

IOF_EXPORT void iof_queue_get_stats(const struct iof_queue *q,
				    struct iof_stats *st, size_t size)
{
	struct iof_queue *mq = (struct iof_queue *)q;

	if (size > sizeof(*st))
		size = sizeof(*st);
	pthread_mutex_lock(&mq->lock);
	memcpy(st, &q->st, size);
	pthread_mutex_unlock(&mq->lock);
}
