// SPDX-License-Identifier: MIT
/*
 * iofault: the VMM side of iommufd's fault queues and vEVENTQs. See
 * iofault.h.
 *
 * Both kinds of queue share struct iof_chan: the fds, the read buffer, the
 * drain loop, the epoll re-arming and the deferred teardown. What differs is
 * the parser; both walk messages with iofault_msg.h.
 *
 * Planted bugs: `make plants` builds the library once with each
 * -DIOF_PLANT_<NAME> below and checks that the unit tests catch it. Each
 * plant is a few lines under "#ifdef IOF_PLANT_<NAME>", nothing else.
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

/*
 * What the kernel offers: one kernel per process. The fault queue flags are
 * probed once; the other two are learned from real allocations.
 */
static pthread_mutex_t caps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iof_caps caps_cache;
static bool caps_probed;

void iof_probe_reset(void)
{
	pthread_mutex_lock(&caps_lock);
	caps_probed = false;
	caps_cache = (struct iof_caps){};
	pthread_mutex_unlock(&caps_lock);
}

static enum iof_cap cap_get(const enum iof_cap *cap)
{
	enum iof_cap v;

	pthread_mutex_lock(&caps_lock);
	v = *cap;
	pthread_mutex_unlock(&caps_lock);
	return v;
}

static void cap_set(enum iof_cap *cap, enum iof_cap v)
{
	pthread_mutex_lock(&caps_lock);
	*cap = v;
	pthread_mutex_unlock(&caps_lock);
}

/*
 * The kernel does not have what was asked for: an unknown flag (EOPNOTSUPP,
 * iommufd checks them first), or a non-zero field beyond the struct it knows
 * (E2BIG, copy_struct_from_user()). Nothing else means that.
 */
static bool not_supported(int err)
{
	return err == EOPNOTSUPP || err == E2BIG;
}

static int destroy_obj(int iommufd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return do_ioctl(iommufd, IOMMU_DESTROY, &cmd) ? -errno : 0;
}

/*
 * Make a fault queue with @flags and throw it away: the kernel takes the
 * flags (1) or does not have them (0), or -errno for any other failure.
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
#ifndef IOF_PLANT_PROBE_LEAK	/* plant: the throwaway queue stays */
	if (!rc) {
		close(cmd.out_fault_fd);
		destroy_obj(iommufd, cmd.out_fault_id);
	}
#endif
	if (efd >= 0)
		close(efd);
	if (!rc)
		return 1;
	return not_supported(err) ? 0 : -err;
}

static int probe(int iommufd, struct iof_caps *caps)
{
	const uint32_t both = IOMMU_FAULT_QUEUE_EVENTFD |
			      IOMMU_FAULT_QUEUE_BOUNDED;
	int rc;

	/* Both at once: one queue on a kernel that has both */
	rc = probe_fault_flags(iommufd, both);
	if (rc < 0)
		return rc;
	if (rc) {
		caps->fault_eventfd = caps->fault_bounded = true;
		return 0;
	}
	rc = probe_fault_flags(iommufd, IOMMU_FAULT_QUEUE_EVENTFD);
	if (rc < 0)
		return rc;
	caps->fault_eventfd = rc;
	rc = probe_fault_flags(iommufd, IOMMU_FAULT_QUEUE_BOUNDED);
	if (rc < 0)
		return rc;
	caps->fault_bounded = rc;
	return 0;
}

int iof_probe(int iommufd, struct iof_caps *caps)
{
	struct iof_caps c = {};
	int rc = 0;

	pthread_mutex_lock(&caps_lock);
	if (!caps_probed) {
		/* Not under the lock: a probe may take a while */
		pthread_mutex_unlock(&caps_lock);
		rc = probe(iommufd, &c);
		pthread_mutex_lock(&caps_lock);
		if (!rc && !caps_probed) {
			caps_cache.fault_eventfd = c.fault_eventfd;
			caps_cache.fault_bounded = c.fault_bounded;
			caps_probed = true;
		}
	}
	if (!rc)
		*caps = caps_cache;
	pthread_mutex_unlock(&caps_lock);
	return rc;
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

	/* The registration of iof_*_epoll_add(), re-armed when needed */
	int epfd;
	uint32_t ep_events;
	uint64_t ep_data;
	/* The last dispatch stopped on EBUSY: re-arm once answers went out */
	bool stalled;

	/* A dispatch or parse runs (its callbacks may destroy the queue) */
	bool busy;
	/* Destroyed from a callback: torn down when the dispatch unwinds */
	bool doomed;
};

static int chan_init(struct iof_chan *c, size_t unit, size_t read_size,
		     size_t read_max, unsigned int max_reads)
{
	c->max_reads = max_reads ? max_reads : IOF_DEFAULT_MAX_READS;
	c->iommufd = -1;
	c->fd = -1;
	c->eventfd = -1;
	c->epfd = -1;
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

static int chan_epoll_add(struct iof_chan *c, int epfd, uint32_t events,
			  uint64_t data)
{
	struct epoll_event ev = {
		.events = events ? events : EPOLLIN,
		.data.u64 = data,
	};

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, chan_wait_fd(c), &ev))
		return -errno;
	c->epfd = epfd;
	c->ep_events = ev.events;
	c->ep_data = data;
	return 0;
}

/*
 * Messages are left that only a later dispatch will read: make the wait fd
 * report again. With an eventfd, whose count the dispatch took, signal it:
 * that is a new edge too. Without, poll() and a level-triggered epoll see the
 * queue fd readable anyway; an edge-triggered epoll reports only new data,
 * so re-arm the registration: EPOLL_CTL_MOD polls the fd again and queues it
 * as ready if it is.
 */
static int chan_rearm(struct iof_chan *c)
{
	const uint64_t one = 1;
	struct epoll_event ev;

	if (c->eventfd >= 0)
		return write(c->eventfd, &one, sizeof(one)) < 0 ? -errno : 0;
#ifndef IOF_PLANT_EPOLL_REARM	/* plant: edge-triggered epoll left behind */
	if (c->epfd >= 0 && (c->ep_events & EPOLLET)) {
		ev.events = c->ep_events;
		ev.data.u64 = c->ep_data;
		/* Removed from the epoll by the caller: nothing to re-arm */
		epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
#else
	(void)ev;
#endif
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
 * (one per notification, whatever it made readable, and more than what is
 * left when the kernel withdrew messages): read until read() returns 0.
 *
 * But not forever: an unbounded queue that is filled faster than it is read
 * never reads 0, and the caller's event loop (and whatever it holds) would
 * be stuck here. After max_reads reads, return, and re-arm the wait fd so
 * that the next wait returns at once, edge triggered or not.
 *
 * A callback may destroy the queue: then stop at once; the caller tears it
 * down.
 */
static int chan_dispatch(struct iof_chan *c, chan_parse_fn parse, void *obj,
			 const void *ops, void *arg)
{
	unsigned int reads = 0;
	uint64_t count;
	int total = 0, n;
	ssize_t len;

	c->stalled = false;
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
			if (errno == EINVAL) {
				n = chan_grow(c);
				if (!n)
					continue;
			} else {
				n = -errno;
			}
			/*
			 * EBUSY: groups awaiting an answer are at the kernel's
			 * cap. Answers make room: iof_flush() re-arms.
			 */
			if (n == -EBUSY)
				c->stalled = true;
			return total ? total : n;
		}
		/* An empty queue reads 0 bytes */
		if (len == 0)
			break;
		(*c->reads)++;
		n = parse(obj, c->rbuf, len, ops, arg);
		if (c->doomed)
			return total;
		if (n < 0)
			return total ? total : n;
		total += n;
		if (++reads == c->max_reads) {
			n = chan_rearm(c);
			if (n)
				return total ? total : n;
			break;
		}
	}
	return total;
}

/* ---- Fault queues ---- */

/*
 * An outstanding page request group: its cookie, and the key a guest's
 * answer names it by. Two open-addressing hash tables hold them: every
 * outstanding group by cookie, and the newest outstanding group of each key.
 * The kernel hands cookies out over all 32 bits, so no array indexed by
 * them. Cookie 0 is never handed out and marks a free slot.
 */
struct gent {
	uint32_t cookie;
	uint32_t dev_id;
	uint32_t pasid;		/* 0 without pasid_valid */
	uint32_t grpid;
	bool pasid_valid;
};

enum tab_kind { BY_COOKIE, BY_KEY };

struct gtab {
	struct gent *e;
	uint32_t cap;		/* a power of 2, or 0 */
	uint32_t n;
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

	struct gtab cookies;	/* every outstanding group */
	struct gtab keys;	/* the newest outstanding group of a key */

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
	free(q->cookies.e);
	free(q->keys.e);
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

/* Outstanding groups */

static uint32_t mix(uint32_t h)
{
	/* murmur3's finalizer: every bit counts, the generation bits too */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static uint32_t ghash(const struct gent *x, enum tab_kind k)
{
	if (k == BY_COOKIE)
		return mix(x->cookie);
	return mix(mix(mix(x->dev_id) ^ x->pasid ^
		       (x->pasid_valid ? 0x80000000u : 0)) ^ x->grpid);
}

static bool geq(const struct gent *a, const struct gent *b, enum tab_kind k)
{
	if (k == BY_COOKIE)
		return a->cookie == b->cookie;
	return a->dev_id == b->dev_id && a->grpid == b->grpid &&
	       a->pasid == b->pasid && a->pasid_valid == b->pasid_valid;
}

static struct gent *gfind(const struct gtab *t, const struct gent *x,
			  enum tab_kind k)
{
	uint32_t mask = t->cap - 1, i;

	if (!t->cap)
		return NULL;
	for (i = ghash(x, k) & mask; t->e[i].cookie; i = (i + 1) & mask)
		if (geq(&t->e[i], x, k))
			return &t->e[i];
	return NULL;
}

static void gput(struct gent *tab, uint32_t cap, const struct gent *x,
		 enum tab_kind k)
{
	uint32_t i;

	for (i = ghash(x, k) & (cap - 1); tab[i].cookie; i = (i + 1) & (cap - 1))
		;
	tab[i] = *x;
}

/* Room for one more, at most half full so that probes stay short */
static int gmake_room(struct gtab *t, enum tab_kind k)
{
	uint32_t cap = t->cap ? 2 * t->cap : 64, i;
	struct gent *e;

	if (2 * (t->n + 1) <= t->cap)
		return 0;
	e = calloc(cap, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->e[i].cookie)
			gput(e, cap, &t->e[i], k);
	free(t->e);
	t->e = e;
	t->cap = cap;
	return 0;
}

/* Remove a slot and move back the ones its absence would hide */
static void gdel(struct gtab *t, struct gent *s, enum tab_kind k)
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
static unsigned int gdrop_dev(struct gtab *t, uint32_t dev_id,
			      enum tab_kind k)
{
	unsigned int n = 0;
	uint32_t i;

	for (i = 0; i < t->cap; i++) {
		while (t->e[i].cookie && t->e[i].dev_id == dev_id) {
			gdel(t, &t->e[i], k);
			n++;
		}
	}
	return n;
}

/* The key a group and an answer share */
static struct gent group_key(uint32_t dev_id, bool pasid_valid,
			     uint32_t pasid, uint32_t grpid)
{
	return (struct gent){
		.dev_id = dev_id,
		.pasid_valid = pasid_valid,
#ifndef IOF_PLANT_ANSWER_BY_PASID	/* plant: the PASID left out */
		.pasid = pasid_valid ? pasid : 0,
#endif
		.grpid = grpid,
	};
}

static struct gent *find_cookie(const struct iof_queue *q, uint32_t cookie)
{
	const struct gent x = { .cookie = cookie };

	return cookie ? gfind(&q->cookies, &x, BY_COOKIE) : NULL;
}

static int outstanding_add(struct iof_queue *q, const struct iof_group *g)
{
	struct gent x = group_key(g->dev_id, g->pasid_valid, g->pasid,
				  g->grpid);
	struct gent *k;
	int rc;

	x.cookie = g->cookie;
	if (!x.cookie)
		return -ERANGE;
	if (find_cookie(q, x.cookie))
		return -EEXIST;
	/* Room in both first: nothing half done on ENOMEM */
	rc = gmake_room(&q->cookies, BY_COOKIE);
	if (!rc)
		rc = gmake_room(&q->keys, BY_KEY);
	if (rc)
		return rc;
	gput(q->cookies.e, q->cookies.cap, &x, BY_COOKIE);
	q->cookies.n++;
	k = gfind(&q->keys, &x, BY_KEY);
	if (k) {
		/*
		 * The device reused the PRGI: the older group was answered
		 * (by the kernel, on a detach nobody told us of). The newer
		 * one takes the key; the older stays answerable by cookie.
		 */
		k->cookie = x.cookie;
		q->st.superseded++;
	} else {
		gput(q->keys.e, q->keys.cap, &x, BY_KEY);
		q->keys.n++;
	}
	q->st.outstanding = q->cookies.n;
	return 0;
}

static void outstanding_del(struct iof_queue *q, struct gent *s)
{
	const struct gent x = *s;
	struct gent *k;

	gdel(&q->cookies, s, BY_COOKIE);
	k = gfind(&q->keys, &x, BY_KEY);
	if (k && k->cookie == x.cookie)
		gdel(&q->keys, k, BY_KEY);
	q->st.outstanding = q->cookies.n;
}

bool iof_outstanding(const struct iof_queue *q, uint32_t cookie)
{
	return find_cookie(q, cookie);
}

unsigned int iof_forget_device(struct iof_queue *q, uint32_t dev_id)
{
	unsigned int n = gdrop_dev(&q->cookies, dev_id, BY_COOKIE);

	gdrop_dev(&q->keys, dev_id, BY_KEY);
	q->st.outstanding = q->cookies.n;
	return n;
}

/* Answers */

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

/* Answer the outstanding group @s with a code the kernel takes */
static int answer_group(struct iof_queue *q, struct gent *s, uint32_t kcode)
{
	uint32_t cookie = s->cookie;
	int rc;

	/* Make room first: a failed flush leaves the group outstanding */
	if (q->nr_answers == IOF_ANSWER_BATCH) {
		rc = iof_flush(q);
		if (rc < 0)
			return rc;
	}
	outstanding_del(q, s);
	return answer_push(q, cookie, kcode);
}

int iof_answer(struct iof_queue *q, uint32_t cookie, uint32_t code)
{
	uint32_t kcode;
	struct gent *s;
	bool failure;
	int rc;

	rc = kernel_code(code, &kcode, &failure);
	if (rc)
		return rc;
	s = find_cookie(q, cookie);
	if (!s)
		return -ENOENT;
	rc = answer_group(q, s, kcode);
	if (!rc && failure)
		q->st.failure_as_invalid++;
	return rc;
}

int iof_answer_by(struct iof_queue *q, uint32_t dev_id, bool pasid_valid,
		  uint32_t pasid, uint32_t grpid, uint32_t code)
{
	const struct gent x = group_key(dev_id, pasid_valid, pasid, grpid);
	struct gent *k, *s;
	uint32_t kcode;
	bool failure;
	int rc;

	rc = kernel_code(code, &kcode, &failure);
	if (rc)
		return rc;
	k = gfind(&q->keys, &x, BY_KEY);
	s = k ? find_cookie(q, k->cookie) : NULL;
	if (!s) {
		q->st.unmatched++;
		return -ENOENT;
	}
	rc = answer_group(q, s, kcode);
	if (!rc && failure)
		q->st.failure_as_invalid++;
	return rc;
}

int iof_flush(struct iof_queue *q)
{
	const size_t unit = sizeof(q->answers[0]);
	unsigned int done = 0, accepted = 0, i, k;
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
		accepted += k;
		done += k;
	}
	q->nr_answers = 0;
#ifndef IOF_PLANT_BUSY_REARM	/* plant: a queue at the cap stays stalled */
	/* Answers made room under the kernel's cap: read on */
	if (accepted && q->c.stalled) {
		q->c.stalled = false;
		chan_rearm(&q->c);
	}
#endif
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
		if (q->group.cookie && !find_cookie(q, q->group.cookie) &&
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
	struct gent *s;
	int rc;

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
	rc = outstanding_add(q, g);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		/* Cookie 0, or one outstanding already: not answerable */
		q->st.malformed++;
		return 0;
	}
	q->st.groups++;
	if (!ops || !ops->page_request)
		return 0;
	rc = ops->page_request(q, g, arg);
	if (q->c.doomed)
		return 0;
#ifndef IOF_PLANT_NOT_INJECTED	/* plant: the callback's answer ignored */
	/* Not injected: nobody else will ever answer it */
	s = rc ? find_cookie(q, g->cookie) : NULL;
	if (s) {
		rc = answer_group(q, s, IOMMUFD_PAGE_RESP_INVALID);
		if (rc)
			return rc;
		q->st.not_injected++;
	}
#else
	(void)s;
#endif
	return 0;
}

static int parse_legacy(struct iof_queue *q, const unsigned char *buf,
			size_t len, const struct iof_ops *ops, void *arg)
{
	const size_t unit = sizeof(struct iommu_hwpt_pgfault);
	int n = 0, rc;

	if (len % unit)
		q->st.malformed++;
	for (; len >= unit && !q->c.doomed; buf += unit, len -= unit, n++) {
		struct iommu_hwpt_pgfault pf;

		memcpy(&pf, buf, unit);
		q->st.messages++;
		rc = group_add(q, &pf, 0, ops, arg);
		if (rc)
			return rc;
	}
	return n;
}

/* A bounded queue's sequence: tell the VMM what was lost */
static void seq_account(struct iof_queue *q,
			const struct iommufd_vevent_header *hdr,
			const struct iof_ops *ops, void *arg)
{
	uint32_t first;
	int64_t lost;

	lost = iof_seq_check(&q->st.seq, hdr->flags, hdr->sequence, &first);
	if (lost > 0 && ops && ops->lost)
		ops->lost(q, first, lost, arg);
}

static int parse_bounded(struct iof_queue *q, const unsigned char *buf,
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
			q->st.malformed++;
			return n;
		case IOF_WALK_LOST:
			/* Header only; never inside a group */
			n++;
			if (hdr.flags & ~IOMMU_VEVENTQ_FLAG_LOST_EVENTS)
				q->st.malformed++;
			group_drop(q);
			seq_account(q, &hdr, ops, arg);
			break;
		case IOF_WALK_MSG:
			n++;
			q->st.messages++;
			memcpy(&pf, data, sizeof(pf));
			seq_account(q, &hdr, ops, arg);
			if (q->c.doomed)
				return n;
			if (hdr.flags) {
				/* A flag this library does not know: skip it */
				q->st.malformed++;
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

/* One read()'s bytes; the queue may be doomed on return */
static int parse_fault_chan(void *obj, const unsigned char *buf, size_t len,
			    const void *ops, void *arg)
{
	struct iof_queue *q = obj;

	if (q->flags & IOMMU_FAULT_QUEUE_BOUNDED)
		return parse_bounded(q, buf, len, ops, arg);
	return parse_legacy(q, buf, len, ops, arg);
}

/* Everything iof_queue_destroy() does, now */
static int queue_teardown(struct iof_queue *q)
{
	int rc;

	iof_flush(q);
	rc = chan_close(&q->c);
	iof_free(q);
	return rc;
}

/*
 * Run a dispatch or a parse, whose callbacks may destroy the queue: then it
 * is torn down here, once nothing of it is in use, and -ECANCELED says so.
 */
static int queue_run(struct iof_queue *q, int (*run)(struct iof_queue *q,
						      const void *buf,
						      size_t len,
						      const struct iof_ops *ops,
						      void *arg),
		     const void *buf, size_t len, const struct iof_ops *ops,
		     void *arg)
{
	int n;

	/* From a callback of its own: it would read over what it parses */
	if (q->c.busy)
		return -EDEADLK;
	q->c.busy = true;
	n = run(q, buf, len, ops, arg);
	q->c.busy = false;
	if (q->c.doomed) {
		queue_teardown(q);
		return -ECANCELED;
	}
	return n;
}

static int run_parse(struct iof_queue *q, const void *buf, size_t len,
		     const struct iof_ops *ops, void *arg)
{
	return parse_fault_chan(q, buf, len, ops, arg);
}

static int run_dispatch(struct iof_queue *q, const void *buf, size_t len,
			const struct iof_ops *ops, void *arg)
{
	return chan_dispatch(&q->c, parse_fault_chan, q, ops, arg);
}

int iof_parse(struct iof_queue *q, const void *buf, size_t len,
	      const struct iof_ops *ops, void *arg)
{
	return queue_run(q, run_parse, buf, len, ops, arg);
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
	/* The kernel says whether it can have that depth (2^19 at most) */
	if (want & IOMMU_FAULT_QUEUE_BOUNDED)
		*depth = cfg->depth ? cfg->depth : IOF_DEFAULT_DEPTH;
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
	bool refused = false;
	int err;

	if (!q)
		return NULL;
	if (cap_get(&caps_cache.iopf_capable) != IOF_CAP_NO) {
		cmd.fault_flags = q->flags;
		cmd.fault_eventfd = q->c.eventfd >= 0 ? q->c.eventfd : 0;
		cmd.fault_depth = q->depth;
		if (!do_ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd)) {
			cap_set(&caps_cache.iopf_capable, IOF_CAP_YES);
			q->c.id = cmd.out_fault_id;
			q->one_step = true;
			chan_set_fds(&q->c, cmd.out_fault_fd, q->c.eventfd);
			*hwpt_id = cmd.out_hwpt_id;
			return q;
		}
		/*
		 * EOPNOTSUPP or E2BIG: perhaps a kernel without the flag;
		 * two steps tell. Anything else is the allocation's error.
		 */
#ifndef IOF_PLANT_ONE_STEP_ANY_ERRNO	/* plant: two steps after any error */
		if (!not_supported(errno)) {
			queue_fail(q);
			return NULL;
		}
#endif
		refused = true;
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
	/* The same request in two steps worked: the flag is what is missing */
	if (refused)
		cap_set(&caps_cache.iopf_capable, IOF_CAP_NO);
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
#ifndef IOF_PLANT_TEARDOWN	/* plant: freed under its own dispatch */
	/* From a callback: the dispatch running it tears the queue down */
	if (q->c.busy) {
		q->c.doomed = true;
		return 0;
	}
#endif
	return queue_teardown(q);
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
	return queue_run(q, run_dispatch, NULL, 0, ops, arg);
}

const struct iof_stats *iof_queue_stats(const struct iof_queue *q)
{
	return &q->st;
}

int iof_fdinfo_parse(FILE *f, struct iof_fdinfo *info)
{
	static const char *const keys[] = {
		"fault_flags", "depth", "queued", "awaiting", "lost",
		"withdrawn",
	};
	unsigned long long v[6] = {};
	unsigned long long val;
	unsigned int i, found = 0;
	char line[128], key[32];

	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31[^:]:%lli", key, &val) != 2)
			continue;
		for (i = 0; i != 6; i++) {
			if (!strcmp(key, keys[i])) {
				v[i] = val;
				found |= 1U << i;
			}
		}
	}
	/* A kernel without the series shows none of them */
	if ((found & 0x1f) != 0x1f)
		return -ENOENT;
	*info = (struct iof_fdinfo){
		.flags = v[0],
		.depth = v[1],
		.queued = v[2],
		.awaiting = v[3],
		.lost = v[4],
#ifndef IOF_PLANT_WITHDRAWN	/* plant: withdrawn faults not read */
		/* Older kernels count withdrawn faults in lost */
		.withdrawn = v[5],
		.has_withdrawn = found & 0x20,
#endif
	};
	return 0;
}

int iof_queue_fdinfo(const struct iof_queue *q, struct iof_fdinfo *info)
{
	char path[64];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", q->c.fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	rc = iof_fdinfo_parse(f, info);
	fclose(f);
	return rc;
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

/* One read()'s bytes; the queue may be doomed on return */
static int vparse(struct iof_veventq *q, const void *buf, size_t len,
		  const struct iof_vevent_ops *ops, void *arg)
{
	struct iommufd_vevent_header hdr;
	struct iof_vevent ev;
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
			ev = (struct iof_vevent){
				.type = q->type,
				.seq = hdr.sequence,
				.data = data,
				.len = q->data_len,
			};
			switch (q->type) {
			case IOF_VEVENTQ_TYPE_SELFTEST:
				memcpy(&ev.u.selftest.virt_id, data, 4);
				ev.decoded = true;
				break;
			case IOMMU_VEVENTQ_TYPE_INTEL_VTD:
				iof_vtd_decode(data, &ev.u.vtd);
				ev.decoded = true;
				break;
			}
			q->st.events++;
			if (ops && ops->event)
				ops->event(q, &ev, arg);
			break;
		}
	}
	return n;
}

static int parse_vevent_chan(void *obj, const unsigned char *buf, size_t len,
			     const void *ops, void *arg)
{
	return vparse(obj, buf, len, ops, arg);
}

static int vq_teardown(struct iof_veventq *q)
{
	int rc = chan_close(&q->c);

	free(q);
	return rc;
}

/* As queue_run(), for a vEVENTQ: a NULL @buf reads the queue */
static int vq_run(struct iof_veventq *q, const void *buf, size_t len,
		  const struct iof_vevent_ops *ops, void *arg)
{
	int n;

	if (q->c.busy)
		return -EDEADLK;
	q->c.busy = true;
	if (buf)
		n = vparse(q, buf, len, ops, arg);
	else
		n = chan_dispatch(&q->c, parse_vevent_chan, q, ops, arg);
	q->c.busy = false;
	if (q->c.doomed) {
		vq_teardown(q);
		return -ECANCELED;
	}
	return n;
}

int iof_vparse(struct iof_veventq *q, const void *buf, size_t len,
	       const struct iof_vevent_ops *ops, void *arg)
{
	/* Not NULL: that would read the queue */
	return vq_run(q, buf ? buf : "", buf ? len : 0, ops, arg);
}

struct iof_veventq *iof_veventq_create(int iommufd, uint32_t viommu_id,
				       const struct iof_veventq_config *cfg)
{
	struct iommu_veventq_alloc cmd;
	struct iof_veventq *q;
	bool refused = false;
	uint32_t flags;
	int rc, err;

	q = vq_alloc(cfg);
	if (!q)
		return NULL;
	flags = cfg->flags;
	rc = -EOPNOTSUPP;
	if (flags & ~IOMMU_VEVENTQ_ALLOC_EVENTFD)
		goto fail;
	if (flags && cap_get(&caps_cache.veventq_eventfd) == IOF_CAP_NO) {
		if (cfg->strict)
			goto fail;
		flags = 0;
	}
	for (;;) {
		cmd = (struct iommu_veventq_alloc){
			.size = sizeof(cmd),
			.flags = flags,
			.viommu_id = viommu_id,
			.type = cfg->type,
			.veventq_depth = cfg->depth ? cfg->depth :
						      IOF_DEFAULT_DEPTH,
		};
		if (flags & IOMMU_VEVENTQ_ALLOC_EVENTFD) {
			q->c.eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (q->c.eventfd < 0) {
				rc = -errno;
				goto fail;
			}
			cmd.eventfd = q->c.eventfd;
		}
		if (!do_ioctl(iommufd, IOMMU_VEVENTQ_ALLOC, &cmd))
			break;
		rc = -errno;
		if (q->c.eventfd >= 0)
			close(q->c.eventfd);
		q->c.eventfd = -1;
		/* Perhaps a kernel without the flag: try without */
		if (!flags || !not_supported(-rc) || cfg->strict)
			goto fail;
		flags = 0;
		refused = true;
	}
	if (flags)
		cap_set(&caps_cache.veventq_eventfd, IOF_CAP_YES);
	else if (refused)
		cap_set(&caps_cache.veventq_eventfd, IOF_CAP_NO);
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
#ifndef IOF_PLANT_TEARDOWN
	if (q->c.busy) {
		q->c.doomed = true;
		return 0;
	}
#endif
	return vq_teardown(q);
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
	return vq_run(q, NULL, 0, ops, arg);
}

const struct iof_vstats *iof_veventq_stats(const struct iof_veventq *q)
{
	return &q->st;
}
