/* SPDX-License-Identifier: MIT */
/*
 * A fake iommufd with the selftest mock driver, as far as libiofault and
 * its scenarios use it: what Linux 7.3 does, or what the series (v3) does,
 * exactly as build/V3-UAPI.md says and the kernel's code does (the cookie
 * of a group read is (gen << 15) | the lowest free slot, gen counting the
 * groups read; 7.3's is the lowest free index from 1).
 *
 * The fds it hands out are real: a queue's fd is the read end of a
 * non-blocking pipe that holds a byte exactly while the queue is readable
 * (and one more on each wake-up, so that edge-triggered epoll sees every
 * wake-up the kernel makes), so poll() and epoll behave; an eventfd given to
 * it is signalled with write(). read(), write() and fdinfo of its fds go
 * through fake_read(), fake_write(), fake_fdinfo() (the library's struct
 * iof_sys hooks, or a scenario's backend).
 *
 * The scenarios (tests/scenarios.c) run the same calls on this fake and on
 * the real kernel and compare every errno and every message, so that this
 * file cannot drift from the kernel unnoticed: when it does, fix it here.
 */
#ifndef FAKE_H
#define FAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum fake_kernel {
	FAKE_73,	/* Linux 7.3 as Debian ships it, with its mock */
	FAKE_V3,	/* 7.3 with the series, v3 */
};

/* What the fake counts, for tests that check what the library asked */
struct fake_stats {
	int calls;		/* ioctls */
	int fault_calls, hwpt_calls, veventq_calls, destroys;
	int fault_allocs, hwpt_allocs, veventq_allocs;
	int iopf_tries;		/* HWPT allocations asking IOPF_CAPABLE */
	int reads, writes;	/* on queue fds */
	size_t read_lens[64];	/* what each of the first reads asked for */
	/* The last ioctl of each kind, as given (before the kernel wrote) */
	unsigned char fault[24], hwpt[72], veventq[40];
	uint32_t fault_size, hwpt_size, veventq_size;
	bool fault_eventfd_real;	/* the last queue's eventfd was one */
	int last_fault_fd;		/* the last queue's fd */
	int open_fds;			/* queue fds open now */
};

struct fake_knobs {
	bool no_eventfd;	/* CONFIG_EVENTFD=n: the EVENTFD flags refused */
	int fail_errno;		/* every ioctl fails so (not an iommufd) */
	int hwpt_errno;		/* a real HWPT allocation fails so */
	int read_errno;		/* every read of a queue fails so */
	int read_eintr;		/* this many reads fail with EINTR first */
	int write_eintr;	/* this many writes fail with EINTR first */
	uint32_t cap;		/* groups awaiting an answer (0: the kernel's) */
	/*
	 * An answer that frees a slot at the cap wakes poll() but does not
	 * signal the eventfd, as the series' v2 did (REVIEW Part 4)
	 */
	bool no_cap_wake;
	/*
	 * The series without its last posting, IOMMU_HWPT_ALLOC_FLAGS_
	 * IOPF_CAPABLE (contested upstream): 7.3's HWPT allocation
	 */
	bool no_one_step;
};

extern struct fake_stats fake_stats;
extern struct fake_knobs fake_knobs;

/* A new fake kernel (everything before it forgotten) */
void fake_boot(enum fake_kernel k);
enum fake_kernel fake_kernel(void);
/* Open /dev/iommu: a context fd */
int fake_open(void);
/* Everything of the context goes, as on the last close of an iommufd */
void fake_shutdown(void);

int fake_ioctl(int fd, unsigned long request, void *arg);
ssize_t fake_read(int fd, void *buf, size_t len);
ssize_t fake_write(int fd, const void *buf, size_t len);
int fake_close(int fd);
FILE *fake_fdinfo(int fd);

/* Put the fake behind the library's system calls, or take it away */
void fake_hook_library(bool on);

/* A fault queue of the fake's own making, with no device: for unit tests */
struct fake_fault_spec {
	uint32_t flags;		/* IOF_FAULT_QUEUE_* */
	uint32_t depth;
	int eventfd;		/* -1: none */
};
int fake_queue_new(const struct fake_fault_spec *spec, uint32_t *id);
/*
 * A page request group of @nfaults faults of device @dev_id (any number,
 * with no device behind it) arrives at queue @id, as the mock makes it.
 * Returns 0, or -ENOENT.
 */
int fake_queue_fault(uint32_t id, uint32_t dev_id, uint32_t pasid,
		     uint32_t grpid, uint32_t nfaults, uint64_t addr);
/*
 * What device @dev_id (a mock device's dev_id, or any number given to
 * fake_queue_fault()) saw: groups, and answers by code, as the mock counts
 */
struct fake_answers {
	uint64_t groups, success, invalid;
};
void fake_answers(uint32_t dev_id, struct fake_answers *a);
/* The next cookie of queue @id takes generation @gen (FAULT_COOKIE_GEN) */
int fake_queue_cookie_gen(uint32_t id, uint32_t gen);
/* The next fault read takes @seq (EVENTQ_SEQUENCE) */
int fake_queue_sequence(uint32_t id, uint32_t seq);
/* The kernel detaches @dev_id from the queue: its groups are answered */
int fake_queue_detach(uint32_t id, uint32_t dev_id);

#endif
