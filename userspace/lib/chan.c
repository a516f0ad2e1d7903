// SPDX-License-Identifier: MIT
/*
 * What fault queues and vEVENTQs have in common: the fds, the read buffer,
 * the drain loop, eventfds, the epoll re-arming and the waits.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

int iof_chan_init(struct iof_chan *c, size_t unit, size_t read_size,
		  size_t read_max, unsigned int max_reads)
{
	const size_t least = unit ? unit : IOF_HDR_SIZE;

	c->max_reads = max_reads ? max_reads : IOF_DEFAULT_MAX_READS;
	c->iommufd = -1;
	c->fd = -1;
	c->eventfd = -1;
	c->epfd = -1;
	c->unit = unit;
	/* 7.3's fault queue reads whole messages only, ESPIPE otherwise */
	if (unit)
		read_size -= read_size % unit;
	if (read_size < least)
		read_size = least;
	if (read_size > read_max)
		read_max = read_size;
	c->read_size = read_size;
	c->read_max = read_max;
	c->rbuf = iof_malloc(read_size, "readbuf");
	return c->rbuf ? 0 : -ENOMEM;
}

int iof_chan_close(struct iof_chan *c)
{
	int rc = 0;

	if (c->own_fd && c->fd >= 0)
		iof_sys_close(c->fd);
	if (c->own_eventfd && c->eventfd >= 0)
		close(c->eventfd);
	/* The fd held the object: destroy it after the close */
	if (c->own_object && c->iommufd >= 0)
		rc = iof_destroy_obj(c->iommufd, c->id);
	c->fd = c->eventfd = -1;
	free(c->rbuf);
	c->rbuf = NULL;
	return rc;
}

int iof_chan_wait_fd(const struct iof_chan *c)
{
	return c->eventfd >= 0 ? c->eventfd : c->fd;
}

int iof_chan_epoll_add(struct iof_chan *c, int epfd, uint32_t events,
		       uint64_t data)
{
	struct epoll_event ev = {
		.events = events ? events : EPOLLIN,
		.data.u64 = data,
	};

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, iof_chan_wait_fd(c), &ev))
		return -errno;
	/* An answering thread's flush may re-arm it: under the lock */
	if (c->lock)
		pthread_mutex_lock(c->lock);
	c->epfd = epfd;
	c->ep_events = ev.events;
	c->ep_data = data;
	if (c->lock)
		pthread_mutex_unlock(c->lock);
	return 0;
}

/*
 * Make the wait fd report again. With an eventfd, signal it: that is a new
 * edge, whoever takes the count. Without, poll() and a level-triggered
 * epoll see the queue fd readable anyway; an edge-triggered epoll reports
 * only new wake-ups, so re-arm the registration: EPOLL_CTL_MOD polls the fd
 * again and queues it as ready if it is. Safe from any thread.
 */
int iof_chan_rearm(struct iof_chan *c)
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

int iof_chan_wait(const struct iof_chan *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = iof_chan_wait_fd(c), .events = POLLIN };
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
	n = iof_realloc(c->rbuf, size, "readbuf");
	if (!n)
		return -ENOMEM;
	c->rbuf = n;
	c->read_size = size;
	return 0;
}

static void count(struct iof_chan *c, uint64_t *counter)
{
	if (c->lock)
		pthread_mutex_lock(c->lock);
	(*counter)++;
	if (c->lock)
		pthread_mutex_unlock(c->lock);
}

/*
 * Take the count of an eventfd the library made first: whatever becomes
 * readable after that signals it again, so nothing is missed. The count is
 * only a hint (one per edge, whatever it made readable): read until read()
 * returns 0. A passed-in eventfd is the VMM's to take the count of: it may
 * serve other queues, whose wake-ups a read here would swallow.
 *
 * EAGAIN is the fault queue's cap (32767 groups awaiting an answer): no
 * group can be read until an answer frees a slot, and the queue says it is
 * not readable meanwhile. Tell the caller, who re-arms once an answer went
 * out (the series' kernel also wakes the queue itself then).
 *
 * Not forever: a queue filled faster than it is read never reads 0, and the
 * caller's event loop would be stuck here. After max_reads reads, return,
 * and re-arm the wait fd so that the next wait returns at once.
 *
 * A callback may destroy the queue: then stop at once; the caller tears it
 * down.
 */
int iof_chan_dispatch(struct iof_chan *c, iof_parse_fn parse, void *obj,
		      const void *ops, void *arg, bool *stalled)
{
	unsigned int reads = 0;
	uint64_t cnt;
	int total = 0, n;
	ssize_t len;

	*stalled = false;
#ifndef IOF_PLANT_READS_CALLER_EVENTFD	/* plant: a shared eventfd's count taken */
	if (c->own_eventfd && c->eventfd >= 0) {
#else
	if (c->eventfd >= 0) {
#endif
		while ((len = read(c->eventfd, &cnt, sizeof(cnt))) < 0 &&
		       errno == EINTR)
			;
		if (len == sizeof(cnt) && cnt)
			count(c, c->wakeups);
	}
	for (;;) {
		len = iof_sys_read(c->fd, c->rbuf, c->read_size);
		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EINVAL) {
				n = chan_grow(c);
				if (!n)
					continue;
			} else {
				n = -errno;
			}
#ifndef IOF_PLANT_EAGAIN_AS_EMPTY	/* plant: v2's EBUSY expected */
			if (n == -EAGAIN)
				*stalled = true;
#else
			if (n == -EAGAIN)
				return total;
			if (n == -EBUSY)
				*stalled = true;
#endif
			return total ? total : n;
		}
		/* An empty queue reads 0 bytes */
		if (len == 0)
			break;
		count(c, c->reads);
		n = parse(obj, c->rbuf, len, ops, arg);
		if (c->doomed)
			return total;
		if (n < 0)
			return total ? total : n;
		total += n;
		if (++reads == c->max_reads) {
			n = iof_chan_rearm(c);
			if (n)
				return total ? total : n;
			break;
		}
	}
	return total;
}
