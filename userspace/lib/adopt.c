// SPDX-License-Identifier: MIT
/*
 * Queues made elsewhere: adoption in mid-stream (a VMM that restarted and
 * kept its fds, DESIGN section 7), the state one process saves for the
 * next, handing a queue over, and what the kernel's fdinfo says of it.
 *
 * What a new process cannot know by itself: which cookies its predecessor
 * read and did not answer, and which key each belongs to. The kernel says
 * how many there are (fdinfo "awaiting") and where the sequence is
 * ("sequence"), so the library checks a saved state against it, and
 * without one counts the groups it cannot name (stats.orphaned).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- fdinfo ---- */

enum { FI_FLAGS, FI_DEPTH, FI_QUEUED, FI_AWAITING, FI_LOST, FI_WITHDRAWN,
       FI_SEQUENCE, FI_NR };
#define FI_NEEDED ((1U << FI_FLAGS) | (1U << FI_DEPTH) | (1U << FI_QUEUED) | \
		   (1U << FI_AWAITING) | (1U << FI_LOST))

/*
 * Every fdinfo starts with the file's own "pos", "flags" (its f_flags, in
 * octal), "mnt_id" and "ino"; the queue's lines come after. The series
 * names the queue's flags "flags" too (v2 said "fault_flags"): a "flags"
 * after "ino" is the queue's.
 */
int iof_fdinfo_parse(FILE *f, struct iof_fdinfo *info)
{
	static const char *const keys[FI_NR] = {
		"flags", "depth", "queued", "awaiting", "lost", "withdrawn",
		"sequence",
	};
	unsigned long long v[FI_NR] = {}, val;
	unsigned int i, found = 0;
	char line[128], key[32], *end;
	bool after_ino = false;

	while (fgets(line, sizeof(line), f)) {
		end = strchr(line, ':');
		if (!end || end - line >= (long)sizeof(key))
			continue;
		memcpy(key, line, end - line);
		key[end - line] = 0;
		val = strtoull(end + 1, NULL, 0);
		if (!strcmp(key, "ino")) {
			after_ino = true;
			continue;
		}
		if (!strcmp(key, "fault_flags"))
			strcpy(key, "flags");
		else if (!strcmp(key, "flags") && !after_ino)
			continue;
		for (i = 0; i != FI_NR; i++) {
			if (!strcmp(key, keys[i])) {
				v[i] = val;
				found |= 1U << i;
			}
		}
	}
	/* A kernel without the series shows none of them */
	if ((found & FI_NEEDED) != FI_NEEDED)
		return -ENOENT;
	*info = (struct iof_fdinfo){
		.flags = v[FI_FLAGS],
		.depth = v[FI_DEPTH],
		.queued = v[FI_QUEUED],
		.awaiting = v[FI_AWAITING],
		.lost = v[FI_LOST],
		.withdrawn = v[FI_WITHDRAWN],
		.sequence = v[FI_SEQUENCE],
		.has_sequence = found & (1U << FI_SEQUENCE),
	};
	return 0;
}

int iof_fdinfo_read(int fd, struct iof_fdinfo *info)
{
	FILE *f = iof_sys_fdinfo(fd);
	int rc;

	if (!f)
		return -errno;
	rc = iof_fdinfo_parse(f, info);
	fclose(f);
	return rc;
}

IOF_EXPORT int iof_queue_fdinfo(const struct iof_queue *q,
				struct iof_fdinfo *info)
{
	return iof_fdinfo_read(q->c.fd, info);
}

/* ---- The saved state ---- */

#define STATE_MAGIC	0x51464f49u	/* "IOFQ" */
#define STATE_VERSION	1

struct state_head {
	uint32_t magic;
	uint16_t version;
	uint16_t head_size;	/* of this struct: a newer one may grow */
	uint32_t fault_id;
	uint32_t flags;
	uint32_t depth;
	uint32_t seq_next;
	uint32_t seq_known;	/* seq_next means something */
	uint32_t nr;		/* struct state_group entries after it */
};

struct state_group {
	uint32_t cookie;
	uint32_t dev_id;
	uint32_t pasid;
	uint32_t grpid;
	uint32_t bits;		/* STATE_PASID_VALID, STATE_KEY_HOLDER */
};
#define STATE_PASID_VALID	(1U << 0)
/* The newest group of its key: the one iof_answer_by() finds */
#define STATE_KEY_HOLDER	(1U << 1)

IOF_EXPORT ssize_t iof_queue_save(struct iof_queue *q, void *buf, size_t len)
{
	struct state_head h = {
		.magic = STATE_MAGIC,
		.version = STATE_VERSION,
		.head_size = sizeof(h),
		.fault_id = q->c.id,
		.flags = q->flags,
		.depth = q->depth,
	};
	struct state_group *out;
	const struct iof_gent *e, *k;
	size_t size;
	uint32_t i;
	int rc;

	pthread_mutex_lock(&q->lock);
	/* What is answered goes to the kernel, not into the state */
#ifndef IOF_PLANT_SAVE_UNFLUSHED	/* plant: answers left in the buffer */
	rc = iof_flush_locked(q);
	if (rc < 0)
		goto out;
#endif
	h.nr = q->cookies.n;
	h.seq_next = q->st.seq.next;
	h.seq_known = iof_has_header(q->flags) && !q->st.seq.resync;
	size = sizeof(h) + (size_t)h.nr * sizeof(*out);
	rc = size;
	if (len < size)
		goto out;
	memcpy(buf, &h, sizeof(h));
	out = (struct state_group *)((char *)buf + sizeof(h));
	for (i = 0; i < q->cookies.cap; i++) {
		e = &q->cookies.e[i];
		if (!e->cookie)
			continue;
		k = iof_gfind(&q->keys, e, IOF_BY_KEY);
		*out++ = (struct state_group){
			.cookie = e->cookie,
			.dev_id = e->dev_id,
			.pasid = e->pasid,
			.grpid = e->grpid,
			.bits = (e->pasid_valid ? STATE_PASID_VALID : 0) |
				(k && k->cookie == e->cookie ?
					 STATE_KEY_HOLDER : 0),
		};
	}
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* The groups of a state, outstanding again: key holders last */
static int restore_groups(struct iof_queue *q, const struct state_group *g,
			  uint32_t nr)
{
	struct iof_gent x;
	int pass, rc;
	uint32_t i;

	for (pass = 0; pass != 2; pass++) {
		for (i = 0; i != nr; i++) {
			if (!(g[i].bits & STATE_KEY_HOLDER) != !pass)
				continue;
			x = iof_group_key(g[i].dev_id,
					  g[i].bits & STATE_PASID_VALID,
					  g[i].pasid, g[i].grpid);
			x.cookie = g[i].cookie;
			rc = iof_outstanding_add(q, &x);
			if (rc)
				return rc == -ENOMEM ? rc : -EINVAL;
		}
	}
	/* Restoring is no event: the counters start from nothing */
	q->st.superseded = q->st.stale = 0;
	return 0;
}

static const struct state_head *check_state(const void *state, size_t len,
					    uint32_t fault_id, int *err)
{
	const struct state_head *h = state;

	*err = EINVAL;
	if (len < sizeof(*h) || h->magic != STATE_MAGIC)
		return NULL;
	if (h->version != STATE_VERSION || h->head_size != sizeof(*h)) {
		*err = EPROTO;
		return NULL;
	}
	if (len != sizeof(*h) + (size_t)h->nr * sizeof(struct state_group))
		return NULL;
	if (h->fault_id != fault_id) {
		*err = ESTALE;
		return NULL;
	}
	return h;
}

/* ---- Adoption ---- */

static struct iof_queue *adopt(int iommufd, uint32_t fault_id, int fault_fd,
			       int eventfd, const struct iof_config *cfg,
			       const void *state, size_t len)
{
	uint32_t flags = iof_norm_flags(cfg ? cfg->flags : 0);
	uint32_t depth = cfg ? cfg->depth : 0;
	const struct state_head *h = NULL;
	struct iof_fdinfo fi;
	struct iof_queue *q;
	bool has_fi;
	int err;

	if (state) {
		h = check_state(state, len, fault_id, &err);
		if (!h)
			goto fail;
	}
	has_fi = !iof_fdinfo_read(fault_fd, &fi);
	err = EINVAL;
	if (has_fi) {
		/* What the queue is, by the kernel's word */
		fi.flags = iof_norm_flags(fi.flags);
		if ((flags && flags != fi.flags) ||
		    (depth && (fi.flags & IOF_FAULT_QUEUE_BOUNDED) &&
		     depth != fi.depth))
			goto fail;
		flags = fi.flags;
		depth = fi.depth;
	}
	if (h && ((flags && flags != h->flags) || (has_fi && h->flags != flags)))
		goto fail;
	if (h)
		flags = h->flags;
	err = ESTALE;
	/* Groups read or answered since the save: the state is not the queue's */
	if (h && has_fi && (fi.awaiting != h->nr ||
			    (fi.has_sequence && h->seq_known &&
			     fi.sequence != h->seq_next)))
		goto fail;
	err = ENOMEM;
	q = iof_queue_alloc(flags, cfg ? cfg->read_size : 0,
			    cfg ? cfg->max_reads : 0);
	if (!q)
		goto fail;
	q->c.iommufd = iommufd;
	q->c.id = fault_id;
	q->c.fd = fault_fd;
	q->c.eventfd = eventfd;
	q->depth = flags & IOF_FAULT_QUEUE_BOUNDED ? depth : 0;
#ifdef IOF_PLANT_ADOPT_OWNS	/* plant: v1 took the caller's fds */
	q->c.own_fd = q->c.own_eventfd = q->c.own_object = true;
	if (eventfd >= 0)
		fcntl(eventfd, F_SETFL, fcntl(eventfd, F_GETFL) | O_NONBLOCK);
#endif
	/* Where the sequence is: the kernel's word, the state's, or the next */
#ifndef IOF_PLANT_ADOPT_SEQ_ZERO	/* plant: v1 assumed a new queue */
	if (has_fi && fi.has_sequence)
		iof_seq_init_at(&q->st.seq, fi.sequence);
	else if (h && h->seq_known)
		iof_seq_init_at(&q->st.seq, h->seq_next);
	else if (iof_has_header(flags) && has_fi)
		iof_seq_init_resync(&q->st.seq);
#endif
	q->st.orphaned = h ? 0 : has_fi ? fi.awaiting : UINT32_MAX;
	if (h) {
		err = -restore_groups(q, (const struct state_group *)(h + 1),
				      h->nr);
		if (err) {
			iof_queue_free(q);
			goto fail;
		}
	}
	return q;
fail:
	errno = err;
	return NULL;
}

IOF_EXPORT struct iof_queue *iof_queue_adopt(int iommufd, uint32_t fault_id,
					     int fault_fd, int eventfd,
					     const struct iof_config *cfg)
{
	return adopt(iommufd, fault_id, fault_fd, eventfd, cfg, NULL, 0);
}

IOF_EXPORT struct iof_queue *
iof_queue_resume(int iommufd, uint32_t fault_id, int fault_fd, int eventfd,
		 const struct iof_config *cfg, const void *state, size_t len)
{
	if (!state) {
		errno = EINVAL;
		return NULL;
	}
	return adopt(iommufd, fault_id, fault_fd, eventfd, cfg, state, len);
}

IOF_EXPORT int iof_queue_release(struct iof_queue *q)
{
	int rc = iof_flush(q);

	/* Nothing closed, nothing destroyed: the caller has them now */
	iof_queue_free(q);
	return rc < 0 ? rc : 0;
}
