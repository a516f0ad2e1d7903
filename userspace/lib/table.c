// SPDX-License-Identifier: MIT
/*
 * Outstanding page request groups: every one by cookie, and the newest of
 * each key (device, PASID, PRGI) a guest's answer names it by. Two
 * open-addressing hash tables; the kernel's cookies use all 32 bits (a
 * generation above a slot), so no array indexed by them.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static uint32_t mix(uint32_t h)
{
	/* murmur3's finalizer: every bit counts, the generation bits too */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static uint32_t ghash(const struct iof_gent *x, enum iof_tab_kind k)
{
	if (k == IOF_BY_COOKIE)
		return mix(x->cookie);
	return mix(mix(mix(x->dev_id) ^ x->pasid ^
		       (x->pasid_valid ? 0x80000000u : 0)) ^ x->grpid);
}

static bool geq(const struct iof_gent *a, const struct iof_gent *b,
		enum iof_tab_kind k)
{
	if (k == IOF_BY_COOKIE)
		return a->cookie == b->cookie;
	return a->dev_id == b->dev_id && a->grpid == b->grpid &&
	       a->pasid == b->pasid && a->pasid_valid == b->pasid_valid;
}

struct iof_gent *iof_gfind(const struct iof_gtab *t, const struct iof_gent *x,
			   enum iof_tab_kind k)
{
	uint32_t mask = t->cap - 1, i;

	if (!t->cap)
		return NULL;
	for (i = ghash(x, k) & mask; t->e[i].cookie; i = (i + 1) & mask)
		if (geq(&t->e[i], x, k))
			return &t->e[i];
	return NULL;
}

static void put(struct iof_gent *tab, uint32_t cap, const struct iof_gent *x,
		enum iof_tab_kind k)
{
	uint32_t i;

	for (i = ghash(x, k) & (cap - 1); tab[i].cookie; i = (i + 1) & (cap - 1))
		;
	tab[i] = *x;
}

void iof_gput(struct iof_gtab *t, const struct iof_gent *x,
	      enum iof_tab_kind k)
{
	put(t->e, t->cap, x, k);
	t->n++;
}

/* Room for one more, at most half full so that probes stay short */
int iof_gmake_room(struct iof_gtab *t, enum iof_tab_kind k)
{
	uint32_t cap = t->cap ? 2 * t->cap : 64, i;
	struct iof_gent *e;

	if (2 * (t->n + 1) <= t->cap)
		return 0;
	e = iof_calloc(cap, sizeof(*e), "table");
	if (!e)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->e[i].cookie)
			put(e, cap, &t->e[i], k);
	free(t->e);
	t->e = e;
	t->cap = cap;
	return 0;
}

/* Remove a slot and move back the ones its absence would hide */
void iof_gdel(struct iof_gtab *t, struct iof_gent *s, enum iof_tab_kind k)
{
	uint32_t mask = t->cap - 1;
	uint32_t hole = s - t->e, i, home;

	t->e[hole].cookie = 0;
	t->n--;
	for (i = (hole + 1) & mask; t->e[i].cookie; i = (i + 1) & mask) {
		home = ghash(&t->e[i], k) & mask;
		/* Can it move to the hole? Only if its home is not after it */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			t->e[hole] = t->e[i];
			t->e[i].cookie = 0;
			hole = i;
		}
	}
}

/*
 * Remove @dev_id's entries in place. A deletion moves only entries from
 * after the hole into it, so each slot is looked at again until it holds
 * someone else's.
 */
unsigned int iof_gdrop_dev(struct iof_gtab *t, uint32_t dev_id,
			   enum iof_tab_kind k)
{
	unsigned int n = 0;
	uint32_t i;

	for (i = 0; i < t->cap; i++) {
		while (t->e[i].cookie && t->e[i].dev_id == dev_id) {
			iof_gdel(t, &t->e[i], k);
			n++;
		}
	}
	return n;
}

void iof_gfree(struct iof_gtab *t)
{
	free(t->e);
	*t = (struct iof_gtab){};
}

/* ---- A queue's outstanding groups, with its lock held ---- */

/* The key a group and an answer share */
struct iof_gent iof_group_key(uint32_t dev_id, bool pasid_valid,
			      uint32_t pasid, uint32_t grpid)
{
	return (struct iof_gent){
		.dev_id = dev_id,
		.pasid_valid = pasid_valid,
#ifndef IOF_PLANT_ANSWER_BY_PASID	/* plant: the PASID left out */
		.pasid = pasid_valid ? pasid : 0,
#endif
		.grpid = grpid,
	};
}

struct iof_gent *iof_find_cookie(const struct iof_queue *q, uint32_t cookie)
{
	const struct iof_gent x = { .cookie = cookie };

	return cookie ? iof_gfind(&q->cookies, &x, IOF_BY_COOKIE) : NULL;
}

void iof_outstanding_del(struct iof_queue *q, struct iof_gent *s)
{
	const struct iof_gent x = *s;
	struct iof_gent *k;

	iof_gdel(&q->cookies, s, IOF_BY_COOKIE);
	k = iof_gfind(&q->keys, &x, IOF_BY_KEY);
	if (k && k->cookie == x.cookie)
		iof_gdel(&q->keys, k, IOF_BY_KEY);
	q->st.outstanding = q->cookies.n;
}

/*
 * A group read: it is outstanding until answered. The kernel never hands
 * out a cookie a group awaiting an answer has, so an outstanding entry with
 * this cookie is stale: a group the kernel answered itself (on a detach
 * nobody passed on) whose cookie came back 2^17 groups later. Drop it: the
 * group read now is the live one, and must not be swallowed as a duplicate.
 */
int iof_outstanding_add(struct iof_queue *q, const struct iof_gent *x)
{
	struct iof_gent *k, *old;
	int rc;

	if (!x->cookie)
		return -ERANGE;
	old = iof_find_cookie(q, x->cookie);
	if (old) {
#ifdef IOF_PLANT_STALE_COOKIE	/* plant: v1's duplicate check (B2) */
		return -EEXIST;
#endif
		iof_outstanding_del(q, old);
		q->st.stale++;
	}
	/* Room in both first: nothing half done on ENOMEM */
	rc = iof_gmake_room(&q->cookies, IOF_BY_COOKIE);
	if (!rc)
		rc = iof_gmake_room(&q->keys, IOF_BY_KEY);
	if (rc)
		return rc;
	iof_gput(&q->cookies, x, IOF_BY_COOKIE);
	k = iof_gfind(&q->keys, x, IOF_BY_KEY);
	if (k) {
		/*
		 * The device reused the PRGI: the older group was answered
		 * (by the kernel, on a detach nobody told us of). The newer
		 * one takes the key; the older stays answerable by cookie.
		 */
		k->cookie = x->cookie;
		q->st.superseded++;
	} else {
		iof_gput(&q->keys, x, IOF_BY_KEY);
	}
	q->st.outstanding = q->cookies.n;
	return 0;
}

IOF_EXPORT bool iof_outstanding(const struct iof_queue *q, uint32_t cookie)
{
	struct iof_queue *mq = (struct iof_queue *)q;
	bool found;

	pthread_mutex_lock(&mq->lock);
	found = iof_find_cookie(q, cookie);
	pthread_mutex_unlock(&mq->lock);
	return found;
}

IOF_EXPORT unsigned int iof_forget_device(struct iof_queue *q,
					  uint32_t dev_id)
{
	unsigned int n;

	pthread_mutex_lock(&q->lock);
	n = iof_gdrop_dev(&q->cookies, dev_id, IOF_BY_COOKIE);
	iof_gdrop_dev(&q->keys, dev_id, IOF_BY_KEY);
	q->st.outstanding = q->cookies.n;
	pthread_mutex_unlock(&q->lock);
	return n;
}
