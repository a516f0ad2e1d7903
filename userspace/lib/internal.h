/* SPDX-License-Identifier: MIT */
/*
 * What the library's files share. Not installed.
 *
 *   probe.c   system calls (and the tests' hooks), allocation, the probe
 *             and what the process learned of the kernel
 *   chan.c    what both kinds of queue have: fds, the read loop, eventfds,
 *             epoll re-arming, waits
 *   table.c   outstanding page request groups, by cookie and by key
 *   answer.c  answers: codes, the buffer, write(), the cap's stall
 *   parse.c   fault messages into groups, sequence accounting
 *   queue.c   fault queues: creation and fallbacks, teardown, accessors
 *   adopt.c   adoption in mid-stream, save, resume, release, fdinfo
 *   vevent.c  vEVENTQs
 *
 * Locking (iofault.h, "Threads"): struct iof_queue's @lock guards the
 * outstanding groups, the answer buffer, the stall and every counter; it is
 * a leaf, never held across a callback. What only the dispatching thread
 * touches (the read buffer, the group being assembled) has no lock.
 *
 * Planted bugs: `make plants` builds the library once with each
 * -DIOF_PLANT_<NAME> and checks that a test fails. Each plant is a few lines
 * under "#ifdef IOF_PLANT_<NAME>" (or #ifndef), nothing else.
 */
#ifndef IOF_INTERNAL_H
#define IOF_INTERNAL_H

#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "iofault.h"
#include "iofault_internal.h"
#include "uapi.h"

#define IOF_EXPORT __attribute__((visibility("default")))

#define IOF_DEFAULT_BATCH	64	/* messages per read() */
#define IOF_DEFAULT_DEPTH	256
#define IOF_MAX_GROUP		32768	/* faults: the largest group read */
#define IOF_MAX_VEVENT		(1U << 20) /* bytes: the largest event read */
#define IOF_ANSWER_BATCH	64
#define IOF_DEFAULT_MAX_READS	16	/* reads per dispatch call */
#define IOF_HDR_SIZE		sizeof(struct iommufd_vevent_header)
#define IOF_PGFAULT_SIZE	sizeof(struct iommu_hwpt_pgfault)

/* ---- probe.c ---- */

/* The system calls, through the tests' hooks */
int iof_sys_ioctl(int fd, unsigned long request, void *arg);
ssize_t iof_sys_read(int fd, void *buf, size_t len);
ssize_t iof_sys_write(int fd, const void *buf, size_t len);
int iof_sys_close(int fd);
/* /proc/self/fdinfo/@fd, or the hook's text */
FILE *iof_sys_fdinfo(int fd);

/* malloc() and friends, which a test can make fail (@site names the use) */
void *iof_malloc(size_t size, const char *site);
void *iof_calloc(size_t n, size_t size, const char *site);
void *iof_realloc(void *p, size_t size, const char *site);

int iof_destroy_obj(int iommufd, uint32_t id);
/* The kernel lacks what was asked for: EOPNOTSUPP or E2BIG */
bool iof_not_supported(int err);

/* What allocations learned (one kernel per process) */
enum iof_cap iof_cap_get(int which);
void iof_cap_set(int which, enum iof_cap v);
enum { IOF_CAP_IOPF_CAPABLE, IOF_CAP_VEVENTQ_EVENTFD };

/* ---- chan.c ---- */

struct iof_chan {
	int iommufd;		/* for IOMMU_DESTROY; -1 for none */
	uint32_t id;
	int fd;
	int eventfd;
	bool own_fd;		/* the library made these: it closes them */
	bool own_eventfd;
	bool own_object;	/* and destroys the object */
	/* 7.3's fault messages: reads are whole multiples of it */
	size_t unit;
	size_t read_size, read_max;
	unsigned int max_reads;		/* per dispatch call */
	unsigned char *rbuf;
	/* The counters, and the lock they are under (NULL: none) */
	uint64_t *reads, *wakeups;
	pthread_mutex_t *lock;

	/* The registration of iof_*_epoll_add(), re-armed when needed */
	int epfd;
	uint32_t ep_events;
	uint64_t ep_data;

	/* A dispatch or parse runs (its callbacks may destroy the queue) */
	bool busy;
	/* Destroyed from a callback: torn down when the dispatch unwinds */
	bool doomed;
};

/*
 * The parser of one read()'s bytes: messages handled, or -errno. The
 * queue may be doomed on return.
 */
typedef int (*iof_parse_fn)(void *obj, const unsigned char *buf, size_t len,
			    const void *ops, void *arg);

int iof_chan_init(struct iof_chan *c, size_t unit, size_t read_size,
		  size_t read_max, unsigned int max_reads);
/* Close what the library owns, destroy its object; frees the buffer */
int iof_chan_close(struct iof_chan *c);
int iof_chan_wait_fd(const struct iof_chan *c);
int iof_chan_epoll_add(struct iof_chan *c, int epfd, uint32_t events,
		       uint64_t data);
int iof_chan_wait(const struct iof_chan *c, int timeout_ms);
/* Make the wait fd report again: messages are left, or room was made */
int iof_chan_rearm(struct iof_chan *c);
/*
 * Read until empty: messages handled, or -errno. *@stalled: the kernel
 * said EAGAIN (a fault queue at its cap).
 */
int iof_chan_dispatch(struct iof_chan *c, iof_parse_fn parse, void *obj,
		      const void *ops, void *arg, bool *stalled);

/* ---- table.c ---- */

/*
 * An outstanding page request group: its cookie, and the key a guest's
 * answer names it by. Cookie 0 is never handed out and marks a free slot.
 */
struct iof_gent {
	uint32_t cookie;
	uint32_t dev_id;
	uint32_t pasid;		/* 0 without pasid_valid */
	uint32_t grpid;
	bool pasid_valid;
};

enum iof_tab_kind { IOF_BY_COOKIE, IOF_BY_KEY };

/* An open-addressing hash table, at most half full */
struct iof_gtab {
	struct iof_gent *e;
	uint32_t cap;		/* a power of 2, or 0 */
	uint32_t n;
};

struct iof_gent *iof_gfind(const struct iof_gtab *t, const struct iof_gent *x,
			   enum iof_tab_kind k);
/* Room for one more: 0 or -ENOMEM */
int iof_gmake_room(struct iof_gtab *t, enum iof_tab_kind k);
/* Put @x; the caller made room */
void iof_gput(struct iof_gtab *t, const struct iof_gent *x,
	      enum iof_tab_kind k);
void iof_gdel(struct iof_gtab *t, struct iof_gent *s, enum iof_tab_kind k);
unsigned int iof_gdrop_dev(struct iof_gtab *t, uint32_t dev_id,
			   enum iof_tab_kind k);
void iof_gfree(struct iof_gtab *t);

/* ---- The fault queue ---- */

struct iof_queue {
	struct iof_chan c;
	pthread_mutex_t lock;
	uint32_t flags;		/* IOF_FAULT_QUEUE_* */
	uint32_t depth;
	bool one_step;

	/* The page request group being put together (the dispatcher's) */
	struct iof_group group;
	struct iof_fault *faults;
	uint32_t faults_cap;
	bool group_open;
	bool group_nomem;	/* no room for its faults: answer INVALID */

	/* Under @lock */
	struct iof_gtab cookies;	/* every outstanding group */
	struct iof_gtab keys;		/* the newest outstanding of a key */
	struct iommu_hwpt_page_response answers[IOF_ANSWER_BATCH];
	unsigned int nr_answers;
	bool stalled;		/* at the kernel's cap, no answer since */
	struct iof_stats st;
};

/*
 * The bound implies the header: the kernel shows both (fdinfo), so the
 * library keeps both too, whatever the caller said
 */
static inline uint32_t iof_norm_flags(uint32_t flags)
{
	return flags & IOF_FAULT_QUEUE_BOUNDED ?
		       flags | IOF_FAULT_QUEUE_HEADER : flags;
}

static inline bool iof_has_header(uint32_t flags)
{
	return flags & (IOF_FAULT_QUEUE_HEADER | IOF_FAULT_QUEUE_BOUNDED);
}

/* queue.c */
struct iof_queue *iof_queue_alloc(uint32_t flags, size_t read_size,
				  unsigned int max_reads);
void iof_queue_free(struct iof_queue *q);

/* answer.c, with @q->lock held */
int iof_flush_locked(struct iof_queue *q);
/* Answer the outstanding group @s with a code the kernel takes */
int iof_answer_group_locked(struct iof_queue *q, struct iof_gent *s,
			    uint32_t kcode);
/* Queue an answer for a cookie the library does not hold */
int iof_answer_push_locked(struct iof_queue *q, uint32_t cookie,
			   uint32_t kcode);
/* Write one INVALID answer at once, needing no memory: 0 or -errno */
int iof_answer_now(struct iof_queue *q, uint32_t cookie);
/* The dispatch stopped at the cap; @answered: st.answered when it began */
void iof_stall_locked(struct iof_queue *q, uint64_t answered);

/* table.c, with @q->lock held: outstanding groups of a queue */
struct iof_gent *iof_find_cookie(const struct iof_queue *q, uint32_t cookie);
struct iof_gent iof_group_key(uint32_t dev_id, bool pasid_valid,
			      uint32_t pasid, uint32_t grpid);
/* 0, -ERANGE (cookie 0), -ENOMEM */
int iof_outstanding_add(struct iof_queue *q, const struct iof_gent *x);
void iof_outstanding_del(struct iof_queue *q, struct iof_gent *s);

/* parse.c */
int iof_parse_fault_chan(void *obj, const unsigned char *buf, size_t len,
			 const void *ops, void *arg);
/* Run a dispatch (@buf NULL) or a parse, tearing down a doomed queue */
int iof_queue_run(struct iof_queue *q, const void *buf, size_t len,
		  const struct iof_ops *ops, void *arg);
int iof_queue_teardown(struct iof_queue *q);

/* adopt.c */
int iof_fdinfo_read(int fd, struct iof_fdinfo *info);

#endif
