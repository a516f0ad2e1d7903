/* SPDX-License-Identifier: MIT */
/* What the unit tests share: buffers as read() returns them, callbacks */
#ifndef HELPERS_H
#define HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iofault.h"

#define HDR IOF_FAULT_QUEUE_HEADER
#define BND IOF_FAULT_QUEUE_BOUNDED
#define EFD IOF_FAULT_QUEUE_EVENTFD
#define LOST IOMMU_VEVENTQ_FLAG_LOST_EVENTS

/* What the callbacks saw */
struct seen {
	int groups;
	struct iof_group last_group;
	struct iof_fault faults[16];
	int answer_in_callback;
	int refuse;		/* return -ENOSPC (not injected) */
	/* lost callbacks: first sequence number and count of each */
	int nr_lost;
	uint32_t lost_seq[8], lost_count[8];
	uint32_t cookies[64];	/* of the first groups */
	/* vEVENTs */
	int events;
	struct iof_vevent last_event;
	uint32_t event_seq[32];
};

extern const struct iof_ops ops;
extern const struct iof_vevent_ops vops;

struct buf {
	unsigned char data[8192];
	size_t len;
};

void put(struct buf *b, const void *p, size_t len);
struct iommu_hwpt_pgfault pgfault(uint32_t dev, uint32_t grpid,
				  uint32_t cookie, bool last, uint64_t addr);
struct iommu_hwpt_pgfault pgfault_pasid(uint32_t dev, bool pasid_valid,
					uint32_t pasid, uint32_t grpid,
					uint32_t cookie);
void put_pgfault(struct buf *b, struct iommu_hwpt_pgfault pf);
void put_hdr(struct buf *b, uint32_t flags, uint32_t seq);
/* A header queue's message: header and fault */
void put_bounded(struct buf *b, uint32_t seq, struct iommu_hwpt_pgfault pf);
void put_selftest_event(struct buf *b, uint32_t seq, uint32_t virt_id);
/* LOST headers that take a new queue's sequence to just before @next */
int put_walk_to(struct buf *b, uint32_t next);

/*
 * Answers written by parser-only queues (no kernel behind them): the
 * library's write() goes here, as the kernel would take them
 */
extern struct capture {
	struct iommu_hwpt_page_response got[256];
	int nr_got;
	uint32_t refuse;	/* cookie the kernel no longer knows */
	int max_per_write;	/* 0: no limit */
	int eintr;		/* fail this many writes with EINTR first */
	int writes;
} cap;
void capture_answers(void);

/* A fake kernel (v3 unless @k73), hooked into the library; its iommufd */
int boot_fake(bool k73);
extern int fake_ctx;
/* A queue of the fake's, made by the library with @cfg */
struct iof_queue *fake_lib_queue(int fd, const struct iof_config *cfg);

/* An IOAS, a mock device, a nesting parent and a vIOMMU on it */
struct mockenv {
	uint32_t ioas, stdev, dev, parent, viommu;
};
int mock_env(int fd, struct mockenv *e);

#endif
