// SPDX-License-Identifier: MIT
/*
 * iofault: the VMM side of iommufd's fault queues and vEVENTQs. See
 * iofault.h.
 *
 * Both kinds of queue share struct iof_chan: the fds, the read buffer, the
 * drain loop and the sequence checker. What differs is the parser.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iofault.h"
#include "iofault_internal.h"

#define IOF_DEFAULT_BATCH	64	/* messages per read() */
#define IOF_DEFAULT_DEPTH	256
#define IOF_MAX_GROUP		32768	/* faults: the largest group read */
#define IOF_MAX_VEVENT		(1U << 20) /* bytes: the largest event read */
#define IOF_ANSWER_BATCH	64
#define IOF_DEFAULT_MAX_READS	16	/* reads per dispatch call */

/* The 16-byte struct iommu_fault_alloc of Linux 6.11 to 7.3 */
#define IOF_FAULT_ALLOC_SIZE_V1	16
/* struct iommu_hwpt_alloc up to fault_id and __reserved2, as in 7.3 */
#define IOF_HWPT_ALLOC_SIZE_V1	48

_Static_assert(offsetof(struct iommu_hwpt_alloc, __reserved2) + 4 ==
		       IOF_HWPT_ALLOC_SIZE_V1,
	       "the 7.3 layout of struct iommu_hwpt_alloc");

/* ---- ioctl, and what the kernel offers ---- */

static int real_ioctl(int fd, unsigned long request, void *arg)
{
	return ioctl(fd, request, arg);
}

static iof_ioctl_fn do_ioctl = real_ioctl;

void iof_set_ioctl(iof_ioctl_fn fn)
{
	do_ioctl = fn ? fn : real_ioctl;
}

/* What iof_probe() found: one kernel per process, probed once */
static pthread_mutex_t caps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iof_caps caps_cache;
static bool caps_known;

void iof_probe_reset(void)
{
	pthread_mutex_lock(&caps_lock);
	caps_known = false;
	pthread_mutex_unlock(&caps_lock);
}

/* The errnos of a kernel that does not know a flag or a field */
static bool not_supported(int err)
{
	/*
	 * EOPNOTSUPP: an unknown flag. E2BIG: a field beyond the struct the
	 * kernel knows is not zero. EINVAL: a field the kernel knows but
	 * refuses in this combination.
	 */
	return err == EOPNOTSUPP || err == E2BIG || err == EINVAL;
}

static int destroy_obj(int iommufd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return do_ioctl(iommufd, IOMMU_DESTROY, &cmd) ? -errno : 0;
}

/*
 * Make a fault queue with @flags and throw it away: the most direct way to
 * learn whether the kernel takes the flags. 1: it does, 0: it does not.
 */
static int probe_fault_flags(int iommufd, uint32_t flags)
{
	struct iommu_fault_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.depth = flags & IOMMU_FAULT_QUEUE_BOUNDED ? 1 : 0,
	};
	int efd = -1, rc, err;

	if (flags & IOMMU_FAULT_QUEUE_EVENTFD) {
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0)
			return -errno;
		cmd.eventfd = efd;
	}
	rc = do_ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &cmd);
	err = errno;
	if (efd >= 0)
		close(efd);
	if (rc)
		return not_supported(err) ? 0 : -err;
	close(cmd.out_fault_fd);
	destroy_obj(iommufd, cmd.out_fault_id);
	return 1;
}

static int probe(int iommufd, struct iof_caps *caps)
{
	struct iof_caps c = {};
	int rc;

	rc = probe_fault_flags(iommufd, IOMMU_FAULT_QUEUE_EVENTFD);
	if (rc < 0)
		return rc;
	c.fault_eventfd = rc;
	rc = probe_fault_flags(iommufd, IOMMU_FAULT_QUEUE_BOUNDED);
	if (rc < 0)
		return rc;
	c.fault_bounded = rc;

	/*
	 * Without a device nothing can be allocated: ask for something the
	 * series documents to refuse with EINVAL before it looks for the
	 * device, IOPF_CAPABLE together with FAULT_ID_VALID. 7.3 looks for
	 * the device (ENOENT). A kernel that answers otherwise is taken not
	 * to have it: iof_queue_alloc_nested() then uses two steps, which
	 * work everywhere.
	 */
	{
		struct iommu_hwpt_alloc cmd = {
			.size = sizeof(cmd),
			.flags = IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE |
				 IOMMU_HWPT_FAULT_ID_VALID,
		};

		c.iopf_capable = do_ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd) &&
				 errno == EINVAL;
	}

	/*
	 * Likewise for a vEVENTQ: the series takes the eventfd before it
	 * looks for the vIOMMU, so a bad one is EBADF; 7.3 refuses the flag
	 * (EOPNOTSUPP).
	 */
	{
		struct iommu_veventq_alloc cmd = {
			.size = sizeof(cmd),
			.flags = IOMMU_VEVENTQ_ALLOC_EVENTFD,
			.type = ~0U,
			.veventq_depth = 1,
			.eventfd = -1,
		};

		c.veventq_eventfd =
			do_ioctl(iommufd, IOMMU_VEVENTQ_ALLOC, &cmd) &&
			errno == EBADF;
	}

	*caps = c;
	return 0;
}

int iof_probe(int iommufd, struct iof_caps *caps)
{
	int rc = 0;

	pthread_mutex_lock(&caps_lock);
	if (!caps_known) {
		rc = probe(iommufd, &caps_cache);
		caps_known = !rc;
	}
	if (!rc)
		*caps = caps_cache;
	pthread_mutex_unlock(&caps_lock);
	return rc;
}

/* ---- Sequence numbers ---- */

void iof_seq_init(struct iof_seq *s)
{
	memset(s, 0, sizeof(*s));
}

int64_t iof_seq_check(struct iof_seq *s, uint32_t flags, uint32_t seq,
		      uint32_t *first)
{
	bool lost_header = flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS;
	uint32_t n;

	if (first)
		*first = s->next;
	if (seq > INT_MAX) {
		s->errors++;
		return -1;
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

/* ---- What both kinds of queue have ---- */

struct iof_chan {
	int iommufd;
	uint32_t id;
	int fd;
	int eventfd;
	/* Legacy fault queues read whole messages of this size only */
	size_t unit;
	size_t read_size, read_max;
	unsigned int max_reads;		/* per dispatch call */
	unsigned char *rbuf;
	uint64_t *reads, *wakeups;	/* the stats to count in */
	iof_read_fn io_read;
};

static int chan_init(struct iof_chan *c, size_t unit, size_t read_size,
		     size_t read_max, unsigned int max_reads)
{
	c->max_reads = max_reads ? max_reads : IOF_DEFAULT_MAX_READS;
	c->iommufd = -1;
	c->fd = -1;
	c->eventfd = -1;
	c->unit = unit;
	/* The kernel reads whole messages only, ESPIPE otherwise */
	if (unit)
		read_size -= read_size % unit;
	if (read_size < (unit ? unit : sizeof(struct iommufd_vevent_header)))
		read_size = unit ? unit : sizeof(struct iommufd_vevent_header);
	if (read_size > read_max)
		read_max = read_size;
	c->read_size = read_size;
	c->read_max = read_max;
	c->rbuf = malloc(read_size);
	c->io_read = read;
	return c->rbuf ? 0 : -ENOMEM;
}

/* The fds: the eventfd must not block, whoever made it */
static void chan_set_fds(struct iof_chan *c, int fd, int eventfd)
{
	int fl;

	c->fd = fd;
	c->eventfd = eventfd;
	if (eventfd >= 0) {
		fl = fcntl(eventfd, F_GETFL);
		if (fl >= 0 && !(fl & O_NONBLOCK))
			fcntl(eventfd, F_SETFL, fl | O_NONBLOCK);
	}
}

static int chan_close(struct iof_chan *c)
{
	int rc = 0;

	if (c->fd >= 0)
		close(c->fd);
	if (c->eventfd >= 0)
		close(c->eventfd);
	/* The fd held the object: destroy it after the close */
	if (c->iommufd >= 0)
		rc = destroy_obj(c->iommufd, c->id);
	c->fd = c->eventfd = -1;
	free(c->rbuf);
	c->rbuf = NULL;
	return rc;
}

static int chan_wait_fd(const struct iof_chan *c)
{
	return c->eventfd >= 0 ? c->eventfd : c->fd;
}

static int chan_epoll_add(const struct iof_chan *c, int epfd, uint32_t events,
			  uint64_t data)
{
	struct epoll_event ev = {
		.events = events ? events : EPOLLIN,
		.data.u64 = data,
	};

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, chan_wait_fd(c), &ev))
		return -errno;
	return 0;
}

static int chan_wait(const struct iof_chan *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = chan_wait_fd(c), .events = POLLIN };
	int rc;

	/* A signal ends the wait, as it would a poll() of the caller's own */
	rc = poll(&pfd, 1, timeout_ms);
	if (rc < 0)
		return -errno;
	return rc > 0;
}

/*
 * The kernel fails a read with EINVAL when the first thing waiting (a whole
 * page request group, or one vEVENT) does not fit: make room for it.
 */
static int chan_grow(struct iof_chan *c)
{
	size_t size = 2 * c->read_size;
	unsigned char *n;

	if (c->read_size >= c->read_max)
		return -EINVAL;
	if (size > c->read_max)
		size = c->read_max;
	if (c->unit)
		size -= size % c->unit;
	if (size <= c->read_size)
		return -EINVAL;
	n = realloc(c->rbuf, size);
	if (!n)
		return -ENOMEM;
	c->rbuf = n;
	c->read_size = size;
	return 0;
}

typedef int (*chan_parse_fn)(void *obj, const unsigned char *buf, size_t len,
			     const void *ops, void *arg);

/*
 * Take the eventfd's count first: whatever becomes readable after that
 * signals it again, so nothing is missed. The count itself is only a hint
 * (it can exceed what is left, when the kernel withdrew messages): read
 * until read() returns 0.
 *
 * But not forever: an unbounded queue that is filled faster than it is read
 * never reads 0, and the caller's event loop (and whatever it holds) would
 * be stuck here. After max_reads reads, return; the queue stays readable, so
 * poll() returns at once, and the eventfd, whose count was taken, gets one
 * from us.
 */
static int chan_dispatch(struct iof_chan *c, chan_parse_fn parse, void *obj,
			 const void *ops, void *arg)
{
	const uint64_t one = 1;
	unsigned int reads = 0;
	uint64_t count;
	int total = 0, n;
	ssize_t len;

	if (c->eventfd >= 0) {
		while ((len = read(c->eventfd, &count, sizeof(count))) < 0 &&
		       errno == EINTR)
			;
		if (len == sizeof(count) && count)
			(*c->wakeups)++;
	}
	for (;;) {
		len = c->io_read(c->fd, c->rbuf, c->read_size);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			n = errno == EINVAL ? chan_grow(c) : -errno;
			if (!n)
				continue;
			return total ? total : n;
		}
		/* An empty queue reads 0 bytes */
		if (len == 0)
			break;
		(*c->reads)++;
		n = parse(obj, c->rbuf, len, ops, arg);
		if (n < 0)
			return total ? total : n;
		total += n;
		if (++reads == c->max_reads) {
			if (c->eventfd >= 0 &&
			    write(c->eventfd, &one, sizeof(one)) < 0)
				return total ? total : -errno;
			break;
		}
	}
	return total;
}

/* ---- Fault queues ---- */

/*
 * Outstanding cookies: an open-addressing hash of cookie -> dev_id. The
 * kernel hands cookies out cyclically over 32 bits (a late answer must not
 * hit a recycled one), so they grow without bound: no array indexed by them.
 * Cookie 0 is never handed out and marks a free slot.
 */
struct cookie_slot {
	uint32_t cookie;
	uint32_t dev_id;
};

struct iof_queue {
	struct iof_chan c;
	uint32_t flags;		/* IOMMU_FAULT_QUEUE_* */
	uint32_t depth;
	bool one_step;

	/* The page request group being put together */
	struct iof_group group;
	struct iof_fault *faults;
	uint32_t faults_cap;
	bool group_open;

	struct cookie_slot *cookies;
	uint32_t cookies_cap;	/* a power of 2, or 0 */

	struct iommu_hwpt_page_response answers[IOF_ANSWER_BATCH];
	unsigned int nr_answers;

	struct iof_stats st;
	iof_write_fn io_write;
};

void iof_set_io(struct iof_queue *q, iof_read_fn io_read,
		iof_write_fn io_write)
{
	q->c.io_read = io_read;
	q->io_write = io_write;
}

static size_t msg_size(uint32_t flags)
{
	return (flags & IOMMU_FAULT_QUEUE_BOUNDED ?
			sizeof(struct iommufd_vevent_header) : 0) +
	       sizeof(struct iommu_hwpt_pgfault);
}

static struct iof_queue *iof_alloc(uint32_t flags, size_t read_size,
				   unsigned int max_reads)
{
	bool bounded = flags & IOMMU_FAULT_QUEUE_BOUNDED;
	size_t msg = msg_size(flags);
	struct iof_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	/* A bounded queue's LOST header fits after a batch */
	if (!read_size)
		read_size = IOF_DEFAULT_BATCH * msg +
			    (bounded ? sizeof(struct iommufd_vevent_header) : 0);
	if (chan_init(&q->c, bounded ? 0 : msg, read_size,
		      IOF_MAX_GROUP * msg +
			      (bounded ? sizeof(struct iommufd_vevent_header) :
					 0),
		      max_reads)) {
		free(q);
		return NULL;
	}
	q->c.reads = &q->st.reads;
	q->c.wakeups = &q->st.wakeups;
	q->flags = flags;
	q->io_write = write;
	iof_seq_init(&q->st.seq);
	return q;
}

static void iof_free(struct iof_queue *q)
{
	free(q->c.rbuf);
	free(q->faults);
	free(q->cookies);
	free(q);
}

struct iof_queue *iof_parser_new(uint32_t flags)
{
	return iof_alloc(flags, 0, 0);
}

void iof_parser_free(struct iof_queue *q)
{
	iof_free(q);
}

/* Outstanding cookies */

static uint32_t cookie_hash(uint32_t cookie)
{
	return cookie * 0x9e3779b1u;
}

static struct cookie_slot *cookie_find(const struct iof_queue *q,
				       uint32_t cookie)
{
	uint32_t mask = q->cookies_cap - 1, i;

	if (!q->cookies_cap || !cookie)
		return NULL;
	for (i = cookie_hash(cookie) & mask; q->cookies[i].cookie;
	     i = (i + 1) & mask)
		if (q->cookies[i].cookie == cookie)
			return &q->cookies[i];
	return NULL;
}

static void cookie_put(struct cookie_slot *tab, uint32_t cap, uint32_t cookie,
		       uint32_t dev_id)
{
	uint32_t i;

	for (i = cookie_hash(cookie) & (cap - 1); tab[i].cookie;
	     i = (i + 1) & (cap - 1))
		;
	tab[i] = (struct cookie_slot){ .cookie = cookie, .dev_id = dev_id };
}

/* A new table of @cap slots with the cookies not of @drop_dev (if set) */
static int cookie_rehash(struct iof_queue *q, uint32_t cap, bool drop,
			 uint32_t drop_dev, unsigned int *dropped)
{
	struct cookie_slot *tab = calloc(cap, sizeof(*tab));
	uint32_t i;

	if (!tab)
		return -ENOMEM;
	for (i = 0; i < q->cookies_cap; i++) {
		if (!q->cookies[i].cookie)
			continue;
		if (drop && q->cookies[i].dev_id == drop_dev) {
			(*dropped)++;
			continue;
		}
		cookie_put(tab, cap, q->cookies[i].cookie,
			   q->cookies[i].dev_id);
	}
	free(q->cookies);
	q->cookies = tab;
	q->cookies_cap = cap;
	return 0;
}

static int cookie_add(struct iof_queue *q, uint32_t cookie, uint32_t dev_id)
{
	int rc;

	if (!cookie)
		return -ERANGE;
	if (cookie_find(q, cookie))
		return -EEXIST;
	/* At most half full, so that probes stay short */
	if (2 * (q->st.outstanding + 1) > q->cookies_cap) {
		rc = cookie_rehash(q, q->cookies_cap ? 2 * q->cookies_cap : 64,
				   false, 0, NULL);
		if (rc)
			return rc;
	}
	cookie_put(q->cookies, q->cookies_cap, cookie, dev_id);
	q->st.outstanding++;
	return 0;
}

bool iof_outstanding(const struct iof_queue *q, uint32_t cookie)
{
	return cookie_find(q, cookie);
}

/* Remove a slot and move back the ones its absence would hide */
static void cookie_del(struct iof_queue *q, struct cookie_slot *s)
{
	uint32_t mask = q->cookies_cap - 1;
	uint32_t hole = s - q->cookies, i, home;

	q->cookies[hole].cookie = 0;
	q->st.outstanding--;
	for (i = (hole + 1) & mask; q->cookies[i].cookie; i = (i + 1) & mask) {
		home = cookie_hash(q->cookies[i].cookie) & mask;
		/* Can it move to the hole? Only if its home is not after it */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			q->cookies[hole] = q->cookies[i];
			q->cookies[i].cookie = 0;
			hole = i;
		}
	}
}

unsigned int iof_forget_device(struct iof_queue *q, uint32_t dev_id)
{
	unsigned int n = 0;

	if (!q->cookies_cap)
		return 0;
	/* Rare (a detach): rebuilding the table is simple and correct */
	if (cookie_rehash(q, q->cookies_cap, true, dev_id, &n)) {
		/* No memory: remove them one by one in place */
		struct cookie_slot *s;
		uint32_t i;

		for (i = 0; i < q->cookies_cap; i++) {
			while ((s = &q->cookies[i])->cookie &&
			       s->dev_id == dev_id) {
				cookie_del(q, s);
				n++;
			}
		}
		return n;
	}
	q->st.outstanding -= n;
	return n;
}

/* Answers */

/* Queue an answer; the caller checked @cookie */
static int answer_push(struct iof_queue *q, uint32_t cookie, uint32_t code)
{
	int rc;

	if (q->nr_answers == IOF_ANSWER_BATCH) {
		rc = iof_flush(q);
		if (rc < 0)
			return rc;
	}
	q->answers[q->nr_answers++] = (struct iommu_hwpt_page_response){
		.cookie = cookie,
		.code = code,
	};
	return 0;
}

int iof_answer(struct iof_queue *q, uint32_t cookie, uint32_t code)
{
	struct cookie_slot *s;
	int rc;

	if (code != IOMMUFD_PAGE_RESP_SUCCESS &&
	    code != IOMMUFD_PAGE_RESP_INVALID)
		return -EINVAL;
	s = cookie_find(q, cookie);
	if (!s)
		return -ENOENT;
	/* Make room first: a failed flush leaves the cookie outstanding */
	if (q->nr_answers == IOF_ANSWER_BATCH) {
		rc = iof_flush(q);
		if (rc < 0)
			return rc;
	}
	cookie_del(q, s);
	return answer_push(q, cookie, code);
}

int iof_flush(struct iof_queue *q)
{
	const size_t unit = sizeof(q->answers[0]);
	unsigned int done = 0, i, k;
	ssize_t n;

	while (done < q->nr_answers) {
		q->st.writes++;
		n = q->io_write(q->c.fd, &q->answers[done],
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
		done += k;
	}
	q->nr_answers = 0;
	return done;
}

/* Parsing */

/*
 * A group cut short: the kernel reads whole groups, so this is a broken
 * stream. Its device still waits for an answer: give INVALID, unless the
 * cookie belongs to a group the VMM has (answering would answer that one).
 */
static void group_drop(struct iof_queue *q)
{
	if (q->group_open) {
		q->st.malformed++;
		if (q->group.cookie && !cookie_find(q, q->group.cookie) &&
		    !answer_push(q, q->group.cookie,
				 IOMMUFD_PAGE_RESP_INVALID))
			q->st.auto_invalid++;
	}
	q->group_open = false;
	q->group.nr_faults = 0;
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
	}
	if (g->nr_faults == q->faults_cap) {
		uint32_t cap = q->faults_cap ? 2 * q->faults_cap : 8;
		struct iof_fault *n = realloc(q->faults, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		q->faults = n;
		q->faults_cap = cap;
	}
	q->faults[g->nr_faults++] = (struct iof_fault){
		.flags = pf->flags,
		.perm = pf->perm,
		.addr = pf->addr,
	};
	if (!(pf->flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE))
		return 0;

	q->group_open = false;
	g->faults = q->faults;
	if (cookie_add(q, g->cookie, g->dev_id)) {
		/* Cookie 0, or one outstanding already: not answerable */
		q->st.malformed++;
		return 0;
	}
	q->st.groups++;
	if (ops && ops->page_request)
		ops->page_request(q, g, arg);
	return 0;
}

static int parse_legacy(struct iof_queue *q, const unsigned char *buf,
			size_t len, const struct iof_ops *ops, void *arg)
{
	const size_t unit = sizeof(struct iommu_hwpt_pgfault);
	int n = 0, rc;

	if (len % unit)
		q->st.malformed++;
	for (; len >= unit; buf += unit, len -= unit, n++) {
		struct iommu_hwpt_pgfault pf;

		memcpy(&pf, buf, unit);
		q->st.messages++;
		rc = group_add(q, &pf, 0, ops, arg);
		if (rc)
			return rc;
	}
	return n;
}

static int parse_bounded(struct iof_queue *q, const unsigned char *buf,
			 size_t len, const struct iof_ops *ops, void *arg)
{
	const size_t hsz = sizeof(struct iommufd_vevent_header);
	const size_t fsz = sizeof(struct iommu_hwpt_pgfault);
	struct iommufd_vevent_header hdr;
	struct iommu_hwpt_pgfault pf;
	uint32_t first;
	int64_t lost;
	int n = 0, rc;

	while (len >= hsz) {
		memcpy(&hdr, buf, hsz);
		if (hdr.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
			/* Header only; never inside a group */
			if (hdr.flags & ~IOMMU_VEVENTQ_FLAG_LOST_EVENTS)
				q->st.malformed++;
			group_drop(q);
			lost = iof_seq_check(&q->st.seq, hdr.flags,
					     hdr.sequence, &first);
			if (lost > 0 && ops && ops->lost)
				ops->lost(q, first, lost, arg);
			buf += hsz;
			len -= hsz;
			n++;
			continue;
		}
		if (len < hsz + fsz)
			break;
		memcpy(&pf, buf + hsz, fsz);
		buf += hsz + fsz;
		len -= hsz + fsz;
		n++;
		q->st.messages++;
		lost = iof_seq_check(&q->st.seq, hdr.flags, hdr.sequence,
				     &first);
		if (lost > 0 && ops && ops->lost)
			ops->lost(q, first, lost, arg);
		if (hdr.flags) {
			/* A flag this library does not know: skip the fault */
			q->st.malformed++;
			continue;
		}
		rc = group_add(q, &pf, hdr.sequence, ops, arg);
		if (rc)
			return rc;
	}
	/* A piece of a message: the kernel reads whole ones */
	if (len)
		q->st.malformed++;
	return n;
}

int iof_parse(struct iof_queue *q, const void *buf, size_t len,
	      const struct iof_ops *ops, void *arg)
{
	if (q->flags & IOMMU_FAULT_QUEUE_BOUNDED)
		return parse_bounded(q, buf, len, ops, arg);
	return parse_legacy(q, buf, len, ops, arg);
}

static int parse_fault_chan(void *obj, const unsigned char *buf, size_t len,
			    const void *ops, void *arg)
{
	return iof_parse(obj, buf, len, ops, arg);
}

/* Queues */

/*
 * The flags of a new queue: what was asked for, less what the kernel lacks
 * (unless strict). 0 or -errno.
 */
static int resolve_flags(int iommufd, const struct iof_config *cfg,
			 uint32_t *flags, uint32_t *depth)
{
	uint32_t want = cfg ? cfg->flags : 0;
	struct iof_caps caps;
	int rc;

	*flags = want;
	*depth = 0;
	if (want & ~(IOMMU_FAULT_QUEUE_EVENTFD | IOMMU_FAULT_QUEUE_BOUNDED))
		return -EOPNOTSUPP;
	if (want & IOMMU_FAULT_QUEUE_BOUNDED) {
		*depth = cfg->depth ? cfg->depth : IOF_DEFAULT_DEPTH;
		if (*depth > IOMMU_FAULT_QUEUE_MAX_DEPTH)
			return -EINVAL;
	}
	if (!want)
		return 0;
	rc = iof_probe(iommufd, &caps);
	if (rc)
		return rc;
	if (!caps.fault_eventfd)
		*flags &= ~IOMMU_FAULT_QUEUE_EVENTFD;
	if (!caps.fault_bounded)
		*flags &= ~IOMMU_FAULT_QUEUE_BOUNDED;
	if (*flags != want && cfg->strict)
		return -EOPNOTSUPP;
	if (!(*flags & IOMMU_FAULT_QUEUE_BOUNDED))
		*depth = 0;
	return 0;
}

/* A queue with the resolved flags and its eventfd, not yet in the kernel */
static struct iof_queue *queue_new(int iommufd, const struct iof_config *cfg)
{
	uint32_t flags, depth;
	struct iof_queue *q;
	int rc, efd = -1;

	rc = resolve_flags(iommufd, cfg, &flags, &depth);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	q = iof_alloc(flags, cfg ? cfg->read_size : 0,
		      cfg ? cfg->max_reads : 0);
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	q->c.iommufd = iommufd;
	q->depth = depth;
	if (flags & IOMMU_FAULT_QUEUE_EVENTFD) {
		efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (efd < 0) {
			rc = errno;
			iof_free(q);
			errno = rc;
			return NULL;
		}
	}
	q->c.eventfd = efd;
	return q;
}

/* Undo queue_new(), keeping errno */
static void queue_fail(struct iof_queue *q)
{
	int err = errno;

	if (q->c.eventfd >= 0)
		close(q->c.eventfd);
	iof_free(q);
	errno = err;
}

/* The ioctl's struct, as small as the flags allow: 7.3 takes 16 bytes */
static struct iommu_fault_alloc fault_alloc_cmd(const struct iof_queue *q)
{
	return (struct iommu_fault_alloc){
		.size = q->flags ? sizeof(struct iommu_fault_alloc) :
				   IOF_FAULT_ALLOC_SIZE_V1,
		.flags = q->flags,
		.eventfd = q->c.eventfd >= 0 ? q->c.eventfd : 0,
		.depth = q->depth,
	};
}

struct iof_queue *iof_queue_create(int iommufd, const struct iof_config *cfg)
{
	struct iof_queue *q = queue_new(iommufd, cfg);
	struct iommu_fault_alloc cmd;

	if (!q)
		return NULL;
	cmd = fault_alloc_cmd(q);
	if (do_ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &cmd)) {
		queue_fail(q);
		return NULL;
	}
	q->c.id = cmd.out_fault_id;
	chan_set_fds(&q->c, cmd.out_fault_fd, q->c.eventfd);
	return q;
}

struct iof_queue *iof_queue_alloc_nested(int iommufd, uint32_t dev_id,
					 uint32_t parent_id,
					 uint32_t data_type, const void *data,
					 uint32_t data_len,
					 const struct iof_config *cfg,
					 uint32_t *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE |
			 (cfg ? cfg->hwpt_flags : 0),
		.dev_id = dev_id,
		.pt_id = parent_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
	};
	struct iof_queue *q = queue_new(iommufd, cfg);
	struct iommu_fault_alloc fcmd;
	struct iof_caps caps;
	int err;

	if (!q)
		return NULL;
	if (iof_probe(iommufd, &caps)) {
		queue_fail(q);
		return NULL;
	}
	if (caps.iopf_capable) {
		cmd.fault_flags = q->flags;
		cmd.fault_eventfd = q->c.eventfd >= 0 ? q->c.eventfd : 0;
		cmd.fault_depth = q->depth;
		if (!do_ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd)) {
			q->c.id = cmd.out_fault_id;
			q->one_step = true;
			chan_set_fds(&q->c, cmd.out_fault_fd, q->c.eventfd);
			*hwpt_id = cmd.out_hwpt_id;
			return q;
		}
		/* Anything but a kernel without the flag is a real error */
		if (errno != EOPNOTSUPP && errno != E2BIG) {
			queue_fail(q);
			return NULL;
		}
	}

	/* Two steps, with the structs of 7.3 */
	fcmd = fault_alloc_cmd(q);
	if (do_ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &fcmd)) {
		queue_fail(q);
		return NULL;
	}
	cmd = (struct iommu_hwpt_alloc){
		.size = IOF_HWPT_ALLOC_SIZE_V1,
		.flags = IOMMU_HWPT_FAULT_ID_VALID |
			 (cfg ? cfg->hwpt_flags : 0),
		.dev_id = dev_id,
		.pt_id = parent_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
		.fault_id = fcmd.out_fault_id,
	};
	if (do_ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd)) {
		err = errno;
		close(fcmd.out_fault_fd);
		destroy_obj(iommufd, fcmd.out_fault_id);
		errno = err;
		queue_fail(q);
		return NULL;
	}
	q->c.id = fcmd.out_fault_id;
	chan_set_fds(&q->c, fcmd.out_fault_fd, q->c.eventfd);
	*hwpt_id = cmd.out_hwpt_id;
	return q;
}

struct iof_queue *iof_queue_adopt(int iommufd, uint32_t fault_id,
				  int fault_fd, int eventfd,
				  const struct iof_config *cfg)
{
	uint32_t flags = cfg ? cfg->flags : 0;
	struct iof_queue *q;

	q = iof_alloc(flags, cfg ? cfg->read_size : 0,
		      cfg ? cfg->max_reads : 0);
	if (!q)
		return NULL;
	q->c.iommufd = iommufd;
	q->c.id = fault_id;
	q->depth = flags & IOMMU_FAULT_QUEUE_BOUNDED ? cfg->depth : 0;
	chan_set_fds(&q->c, fault_fd, eventfd);
	return q;
}

int iof_queue_destroy(struct iof_queue *q)
{
	int rc;

	iof_flush(q);
	rc = chan_close(&q->c);
	iof_free(q);
	return rc;
}

uint32_t iof_queue_id(const struct iof_queue *q)
{
	return q->c.id;
}

uint32_t iof_queue_flags(const struct iof_queue *q)
{
	return q->flags;
}

uint32_t iof_queue_depth(const struct iof_queue *q)
{
	return q->depth;
}

bool iof_queue_one_step(const struct iof_queue *q)
{
	return q->one_step;
}

int iof_queue_fd(const struct iof_queue *q)
{
	return q->c.fd;
}

int iof_queue_wait_fd(const struct iof_queue *q)
{
	return chan_wait_fd(&q->c);
}

int iof_queue_epoll_add(struct iof_queue *q, int epfd, uint32_t events,
			uint64_t data)
{
	return chan_epoll_add(&q->c, epfd, events, data);
}

int iof_queue_wait(struct iof_queue *q, int timeout_ms)
{
	return chan_wait(&q->c, timeout_ms);
}

int iof_queue_dispatch(struct iof_queue *q, const struct iof_ops *ops,
		       void *arg)
{
	return chan_dispatch(&q->c, parse_fault_chan, q, ops, arg);
}

const struct iof_stats *iof_queue_stats(const struct iof_queue *q)
{
	return &q->st;
}

int iof_queue_fdinfo(const struct iof_queue *q, struct iof_fdinfo *info)
{
	static const char *const keys[] = {
		"fault_flags", "depth", "queued", "awaiting", "lost",
	};
	unsigned long long v[5] = {};
	char path[64], line[128], key[32];
	unsigned long long val;
	unsigned int i, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", q->c.fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31[^:]:%lli", key, &val) != 2)
			continue;
		for (i = 0; i != 5; i++) {
			if (!strcmp(key, keys[i])) {
				v[i] = val;
				found |= 1U << i;
			}
		}
	}
	fclose(f);
	/* A kernel without the series shows none of them */
	if (found != 0x1f)
		return -ENOENT;
	*info = (struct iof_fdinfo){
		.flags = v[0],
		.depth = v[1],
		.queued = v[2],
		.awaiting = v[3],
		.lost = v[4],
	};
	return 0;
}

/* ---- vEVENTQs ---- */

struct iof_veventq {
	struct iof_chan c;
	uint32_t type;
	uint32_t flags;		/* IOMMU_VEVENTQ_ALLOC_* */
	uint32_t data_len;	/* of one event */
	struct iof_vstats st;
};

void iof_vset_io(struct iof_veventq *q, iof_read_fn io_read)
{
	q->c.io_read = io_read;
}

/* The data size of the types the library knows, else 0 */
static uint32_t vevent_data_len(uint32_t type)
{
	switch (type) {
	case IOMMU_VEVENTQ_TYPE_ARM_SMMUV3:
		return sizeof(struct iommu_vevent_arm_smmuv3);
	case IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV:
		return sizeof(struct iommu_vevent_tegra241_cmdqv);
	case IOMMU_VEVENTQ_TYPE_INTEL_VTD:
		return sizeof(struct iommu_vevent_intel_vtd);
	case IOF_VEVENTQ_TYPE_SELFTEST:
		return sizeof(uint32_t);	/* virt_id */
	}
	return 0;
}

void iof_vtd_decode(const void *record, struct iof_vtd_fault *f)
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
	const size_t hsz = sizeof(struct iommufd_vevent_header);
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
	q = calloc(1, sizeof(*q));
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	if (chan_init(&q->c, 0,
		      cfg->read_size ? cfg->read_size :
				       IOF_DEFAULT_BATCH * (hsz + len) + hsz,
		      hsz + IOF_MAX_VEVENT, cfg->max_reads)) {
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

struct iof_veventq *iof_vparser_new(const struct iof_veventq_config *cfg)
{
	return vq_alloc(cfg);
}

void iof_vparser_free(struct iof_veventq *q)
{
	free(q->c.rbuf);
	free(q);
}

int iof_vparse(struct iof_veventq *q, const void *buf, size_t len,
	       const struct iof_vevent_ops *ops, void *arg)
{
	const size_t hsz = sizeof(struct iommufd_vevent_header);
	const unsigned char *p = buf;
	struct iommufd_vevent_header hdr;
	struct iof_vevent ev;
	uint32_t first;
	int64_t lost;
	int n = 0;

	while (len >= hsz) {
		memcpy(&hdr, p, hsz);
		if (hdr.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
			/* Header only */
			if (hdr.flags & ~IOMMU_VEVENTQ_FLAG_LOST_EVENTS)
				q->st.malformed++;
			lost = iof_seq_check(&q->st.seq, hdr.flags,
					     hdr.sequence, &first);
			if (lost > 0 && ops && ops->lost)
				ops->lost(q, first, lost, arg);
			p += hsz;
			len -= hsz;
			n++;
			continue;
		}
		if (len < hsz + q->data_len)
			break;
		lost = iof_seq_check(&q->st.seq, hdr.flags, hdr.sequence,
				     &first);
		if (lost > 0 && ops && ops->lost)
			ops->lost(q, first, lost, arg);
		ev = (struct iof_vevent){
			.type = q->type,
			.seq = hdr.sequence,
			.data = p + hsz,
			.len = q->data_len,
		};
		p += hsz + q->data_len;
		len -= hsz + q->data_len;
		n++;
		if (hdr.flags) {
			/* A flag this library does not know: skip the event */
			q->st.malformed++;
			continue;
		}
		switch (q->type) {
		case IOF_VEVENTQ_TYPE_SELFTEST:
			memcpy(&ev.u.selftest.virt_id, ev.data, 4);
			ev.decoded = true;
			break;
		case IOMMU_VEVENTQ_TYPE_INTEL_VTD:
			iof_vtd_decode(ev.data, &ev.u.vtd);
			ev.decoded = true;
			break;
		}
		q->st.events++;
		if (ops && ops->event)
			ops->event(q, &ev, arg);
	}
	/* A piece of an event: the kernel reads whole ones */
	if (len)
		q->st.malformed++;
	return n;
}

static int parse_vevent_chan(void *obj, const unsigned char *buf, size_t len,
			     const void *ops, void *arg)
{
	return iof_vparse(obj, buf, len, ops, arg);
}

struct iof_veventq *iof_veventq_create(int iommufd, uint32_t viommu_id,
				       const struct iof_veventq_config *cfg)
{
	struct iommu_veventq_alloc cmd = {
		.size = sizeof(cmd),
		.viommu_id = viommu_id,
	};
	struct iof_veventq *q;
	struct iof_caps caps;
	uint32_t flags;
	int rc, err;

	q = vq_alloc(cfg);
	if (!q)
		return NULL;
	flags = cfg->flags;
	rc = -EOPNOTSUPP;
	if (flags & ~IOMMU_VEVENTQ_ALLOC_EVENTFD)
		goto fail;
	if (flags) {
		rc = iof_probe(iommufd, &caps);
		if (rc)
			goto fail;
		if (!caps.veventq_eventfd)
			flags = 0;
		rc = -EOPNOTSUPP;
		if (flags != cfg->flags && cfg->strict)
			goto fail;
	}
	if (flags & IOMMU_VEVENTQ_ALLOC_EVENTFD) {
		q->c.eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->c.eventfd < 0) {
			rc = -errno;
			goto fail;
		}
		cmd.eventfd = q->c.eventfd;
	}
	cmd.flags = flags;
	cmd.type = cfg->type;
	cmd.veventq_depth = cfg->depth ? cfg->depth : IOF_DEFAULT_DEPTH;
	if (do_ioctl(iommufd, IOMMU_VEVENTQ_ALLOC, &cmd)) {
		rc = -errno;
		goto fail;
	}
	q->flags = flags;
	q->c.iommufd = iommufd;
	q->c.id = cmd.out_veventq_id;
	chan_set_fds(&q->c, cmd.out_veventq_fd, q->c.eventfd);
	return q;

fail:
	err = -rc;
	if (q->c.eventfd >= 0)
		close(q->c.eventfd);
	iof_vparser_free(q);
	errno = err;
	return NULL;
}

struct iof_veventq *iof_veventq_adopt(int iommufd, uint32_t veventq_id,
				      int veventq_fd, int eventfd,
				      const struct iof_veventq_config *cfg)
{
	struct iof_veventq *q = vq_alloc(cfg);

	if (!q)
		return NULL;
	q->flags = eventfd >= 0 ? IOMMU_VEVENTQ_ALLOC_EVENTFD : 0;
	q->c.iommufd = iommufd;
	q->c.id = veventq_id;
	chan_set_fds(&q->c, veventq_fd, eventfd);
	return q;
}

int iof_veventq_destroy(struct iof_veventq *q)
{
	int rc = chan_close(&q->c);

	free(q);
	return rc;
}

uint32_t iof_veventq_id(const struct iof_veventq *q)
{
	return q->c.id;
}

uint32_t iof_veventq_flags(const struct iof_veventq *q)
{
	return q->flags;
}

int iof_veventq_wait_fd(const struct iof_veventq *q)
{
	return chan_wait_fd(&q->c);
}

int iof_veventq_epoll_add(struct iof_veventq *q, int epfd, uint32_t events,
			  uint64_t data)
{
	return chan_epoll_add(&q->c, epfd, events, data);
}

int iof_veventq_wait(struct iof_veventq *q, int timeout_ms)
{
	return chan_wait(&q->c, timeout_ms);
}

int iof_veventq_dispatch(struct iof_veventq *q,
			 const struct iof_vevent_ops *ops, void *arg)
{
	return chan_dispatch(&q->c, parse_vevent_chan, q, ops, arg);
}

const struct iof_vstats *iof_veventq_stats(const struct iof_veventq *q)
{
	return &q->st;
}
