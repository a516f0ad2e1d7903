/* SPDX-License-Identifier: MIT */
/*
 * iofault_msg.h: what a read() of a bounded fault queue or of a vEVENTQ
 * returns, parsed. Header only: a sequence checker and a message walker, no
 * ioctl, no allocation, no state beyond the caller's structs. A VMM that
 * keeps its own ioctl wrappers (QEMU's backends/iommufd.c, say) can copy this
 * file alone; libiofault parses with it too.
 *
 * Both queues deliver messages of a struct iommufd_vevent_header followed by
 * a fixed-size payload (struct iommu_hwpt_pgfault for a bounded fault queue,
 * the vEVENT type's record for a vEVENTQ), or a header alone with
 * IOMMU_VEVENTQ_FLAG_LOST_EVENTS. A read() returns whole messages only.
 *
 * Sequence numbers: every message carries one in [0, INT_MAX] that wraps to
 * 0. A gap before a message means that many were lost, and nothing else: a
 * vEVENTQ lost them because it was full; a bounded fault queue could not
 * take their page request groups whole and the kernel answered those
 * groups IOMMUFD_PAGE_RESP_SUCCESS itself, so that the devices retry, as
 * they would on a full hardware page request queue. A fault queue numbers
 * its faults when they are read, so faults the kernel withdraws unread
 * (their device detached or its HWPT replaced: the VMM's own doing) take no
 * numbers and leave no gap. A header-only LOST_EVENTS message carries the
 * sequence number of the last one lost at the tail. A new queue starts at
 * 0; a queue adopted in mid-stream starts where the kernel is (fdinfo's
 * "sequence", or the first header read: iof_seq_init_resync()). Compare
 * modulo 2^31, never with "seq - last != 1" on plain integers.
 *
 * Needs only <linux/iommufd.h> from Linux 6.15 on (struct
 * iommufd_vevent_header and IOMMU_VEVENTQ_FLAG_LOST_EVENTS).
 */
#ifndef IOFAULT_MSG_H
#define IOFAULT_MSG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <linux/iommufd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Sequence numbers ---- */

struct iof_seq {
	uint32_t next;		/* the sequence number the next one should have */
	uint64_t messages;	/* messages in sequence (LOST headers aside) */
	uint64_t lost;		/* sequence numbers lost: gaps and LOST headers */
	uint64_t gaps;		/* gaps before a message */
	uint64_t lost_headers;	/* LOST_EVENTS headers */
	uint64_t errors;	/* out of range, backwards, LOST for nothing */
	/*
	 * The next header read sets @next, and nothing before it counts as
	 * lost: a queue adopted where its sequence is not known
	 */
	bool resync;
};

/*
 * Gaps of this size or more are read as a sequence going backwards (a
 * duplicate or a reordered message): an error, not a loss.
 */
#define IOF_SEQ_MAX_GAP (1U << 30)

static inline void iof_seq_init(struct iof_seq *s)
{
	memset(s, 0, sizeof(*s));
}

/* A queue met in mid-stream whose next sequence number is @next */
static inline void iof_seq_init_at(struct iof_seq *s, uint32_t next)
{
	iof_seq_init(s);
	s->next = next & INT_MAX;
}

/* A queue met in mid-stream, its next sequence number unknown */
static inline void iof_seq_init_resync(struct iof_seq *s)
{
	iof_seq_init(s);
	s->resync = true;
}

/*
 * Account for one header (@flags, @seq). Returns how many messages were lost
 * before it (a gap) or, for a LOST_EVENTS header, up to and including it,
 * with the first lost one in *@first; 0 when nothing was lost; -1 for a
 * sequence error, counted in s->errors, after which the checker carries on
 * from @seq.
 */
static inline int64_t iof_seq_check(struct iof_seq *s, uint32_t flags,
				    uint32_t seq, uint32_t *first)
{
	bool lost_header = flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS;
	uint32_t n;

	if (first)
		*first = s->next;
	if (seq > INT_MAX) {
		s->errors++;
		return -1;
	}
	if (s->resync) {
		/* A LOST header says one at least was lost: its own number */
		s->resync = false;
		s->next = lost_header ? seq : seq & INT_MAX;
		if (first)
			*first = s->next;
	}
	/*
	 * A message: what lies between the one expected and it was lost. A
	 * LOST header: what lies between the one expected and it, both
	 * included.
	 */
	n = (seq - s->next + (lost_header ? 1 : 0)) & INT_MAX;
	s->next = (seq + 1) & INT_MAX;
	if (n >= IOF_SEQ_MAX_GAP || (lost_header && !n)) {
		/* Backwards, or a LOST header for nothing lost */
		s->errors++;
		return -1;
	}
	if (lost_header) {
		s->lost_headers++;
	} else {
		s->messages++;
		if (n)
			s->gaps++;
	}
	s->lost += n;
	return n;
}

/* ---- Walking the messages of one read() ---- */

struct iof_walk {
	const unsigned char *p;
	size_t left;
	size_t payload;		/* bytes after each header */
};

enum iof_walk_item {
	IOF_WALK_END = 0,	/* nothing left */
	IOF_WALK_MSG,		/* a header and its payload */
	IOF_WALK_LOST,		/* a header-only LOST_EVENTS message */
	/*
	 * What is left is a piece of a message: the kernel reads whole
	 * messages, so the stream is broken. The walk ends here.
	 */
	IOF_WALK_TRUNCATED,
};

/*
 * Walk @len bytes at @buf, messages of a header and @payload bytes:
 * sizeof(struct iommu_hwpt_pgfault) for a bounded fault queue, the data size
 * of the vEVENTQ's type for a vEVENTQ (e.g. sizeof(struct
 * iommu_vevent_arm_smmuv3)).
 */
static inline void iof_walk_init(struct iof_walk *w, const void *buf,
				 size_t len, size_t payload)
{
	w->p = (const unsigned char *)buf;
	w->left = len;
	w->payload = payload;
}

/*
 * The next message: its header in *@hdr and, for IOF_WALK_MSG, its payload
 * at *@data (not aligned: memcpy() it out). A header with a flag this code
 * does not know is returned as it is; check hdr->flags. A LOST_EVENTS header
 * with other flags too is still IOF_WALK_LOST.
 */
static inline enum iof_walk_item
iof_walk_next(struct iof_walk *w, struct iommufd_vevent_header *hdr,
	      const void **data)
{
	const size_t hsz = sizeof(*hdr);

	*data = NULL;
	if (!w->left)
		return IOF_WALK_END;
	if (w->left < hsz)
		goto truncated;
	memcpy(hdr, w->p, hsz);
	if (hdr->flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
		w->p += hsz;
		w->left -= hsz;
		return IOF_WALK_LOST;
	}
	if (w->left - hsz < w->payload)
		goto truncated;
	*data = w->p + hsz;
	w->p += hsz + w->payload;
	w->left -= hsz + w->payload;
	return IOF_WALK_MSG;
truncated:
	w->p += w->left;
	w->left = 0;
	return IOF_WALK_TRUNCATED;
}

#ifdef __cplusplus
}
#endif
#endif
