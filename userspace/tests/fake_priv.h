/* SPDX-License-Identifier: MIT */
/* The fake kernel's insides, shared by fake_core.c and fake_eventq.c */
#ifndef FAKE_PRIV_H
#define FAKE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/iommufd.h>

#include "fake.h"

#define FK_MAX_OBJ	1024
#define FK_CAP		32767	/* groups awaiting an answer (v3) */
#define FK_SLOT_BITS	15
#define FK_MAX_DEPTH	(1U << 19)
#define FK_PAGE		4096

/* Answers by device, as the mock's counters */
struct fk_acct {
	uint32_t dev_id;
	uint64_t groups, success, invalid, failure;
};

struct fk_dev;

/* A page request group, or (lost) a run of faults lost to a full queue */
struct fk_group {
	uint32_t dev_id;
	uint32_t pasid, grpid, perm, nfaults;
	bool pasid_valid;
	uint64_t addr;
	uint32_t cookie;	/* once read */
	uint32_t lost;		/* a loss marker: this many faults */
};

struct fk_fq {
	uint32_t id;
	int rfd, wfd;		/* the pipe: rfd is the queue's fd */
	bool fd_open;
	uint32_t flags, depth;
	int efd;		/* the eventfd to signal, -1 */
	int hwpt_users;
	/* Unread, in order: groups and loss markers */
	struct fk_group **items;
	unsigned int n, cap;
	uint32_t unread_faults;
	/* Read and awaiting an answer, by slot (v3) or by cookie (7.3) */
	struct fk_group **slots;
	uint32_t nslots;
	uint32_t hint;		/* no free slot below it */
	uint32_t awaiting;
	uint32_t cookie_gen;
	uint32_t seq;		/* of the next fault read (header queues) */
	uint64_t lost, withdrawn;
	bool readable;
};

struct fk_vq {
	uint32_t id;
	int rfd, wfd;
	bool fd_open;
	uint32_t type, depth;
	int efd;
	uint32_t viommu_id;
	struct fk_vev {
		uint32_t seq, virt_id;
		bool lost;
	} *items;
	unsigned int n, cap;
	uint32_t num_events;	/* events queued, the LOST header aside */
	uint32_t seq;
	uint64_t lost;
	bool readable;
};

enum fk_type { FK_NONE, FK_IOAS, FK_STDEV, FK_IDEV, FK_HWPT, FK_VIOMMU,
	       FK_VDEV, FK_FAULT, FK_VEVENTQ };

/* A mock device: its selftest object, its iommufd device, where it is */
struct fk_dev {
	uint32_t stdev_id, idev_id, flags;
	uint32_t ioas_id;
	uint32_t hwpt_id;	/* attached to; 0: its IOAS's mock domain */
	uint32_t viommu_id, virt_id, vdev_id;	/* its vDEVICE, 0: none */
	/*
	 * What the mock took when it attached to a nested HWPT of a vIOMMU
	 * (mock_domain_nop_attach()): the vIOMMU and the vDEVICE's virt_id
	 */
	uint32_t attach_viommu, attach_virt;
};

struct fk_hwpt {
	uint32_t fault_id;	/* 0: none */
	bool parent;		/* a nesting parent */
	uint32_t viommu_id;	/* a nested HWPT's vIOMMU, 0: none */
	uint32_t parent_id;	/* a nested HWPT's parent HWPT, 0: none */
	int users;		/* devices attached, HWPTs and vIOMMUs on it */
};

struct fk_viommu {
	uint32_t parent_id;
	int users;		/* vDEVICEs, vEVENTQs, HWPTs */
};

struct fk_vdev {
	uint32_t viommu_id;
	struct fk_dev *dev;
};

/* fake_core.c */
extern enum fake_kernel fk_kernel;
extern pthread_mutex_t fk_lock;
uint32_t fk_obj_new(enum fk_type type, void *p);
void *fk_obj_get(uint32_t id, enum fk_type type);
enum fk_type fk_obj_type(uint32_t id);
void fk_obj_clear(uint32_t id);
uint32_t fk_last_id(void);
int fk_fail(int err);
bool fk_v3(void);
int fk_new_pipe(int *rfd, int *wfd);
bool fk_is_eventfd(int fd);
/* main.c: a struct shorter than its last 7.3 field, or a tail not zero */
int fk_size_check(const void *arg, uint32_t size, uint32_t min,
		  uint32_t known);
int fk_fault_check(uint32_t flags, int32_t efd, uint32_t depth);
uint32_t fk_fault_make(uint32_t flags, int efd, uint32_t depth, int *fd);
int fk_fault_alloc(void *cmd);
struct fk_fq *fk_fq_by_fd(int fd);
struct fk_vq *fk_vq_by_fd(int fd);
int fk_ctx_fd(void);

/* fake_mock.c */
struct fk_dev *fk_dev_by_idev(uint32_t idev_id);
/* The device leaves its HWPT: a fault queue there answers its groups */
void fk_dev_leave(struct fk_dev *d);
struct fk_vq *fk_vq_of(uint32_t viommu_id, uint32_t type);
int fk_hwpt_alloc(void *cmd);
int fk_viommu_alloc(void *cmd);
int fk_vdevice_alloc(void *cmd);
int fk_veventq_alloc(void *cmd);
int fk_destroy(uint32_t id);
int fk_test_cmd(void *cmd);
struct fk_acct *fk_acct(uint32_t dev_id);
/* Keep the pipe and the eventfd in step with readable; @wake: a wake-up */
void fk_level(int rfd, int wfd, int efd, bool *was, bool now, bool wake);
void fk_answer_group(struct fk_group *g, uint32_t code);

/* fake_eventq.c */
struct fk_fq *fk_fq_new(uint32_t id, uint32_t flags, uint32_t depth, int efd);
void fk_fq_free(struct fk_fq *q);	/* answers what it holds INVALID */
int fk_fq_enqueue(struct fk_fq *q, uint32_t dev_id, uint32_t pasid,
		  bool pasid_valid, uint32_t grpid, uint32_t perm,
		  uint32_t nfaults, uint64_t addr);
ssize_t fk_fq_read(struct fk_fq *q, void *buf, size_t len);
ssize_t fk_fq_write(struct fk_fq *q, const void *buf, size_t len);
void fk_fq_detach(struct fk_fq *q, uint32_t dev_id);
int fk_fq_fdinfo(struct fk_fq *q, char *buf, size_t len);

struct fk_vq *fk_vq_new(uint32_t id, uint32_t viommu_id, uint32_t type,
			uint32_t depth, int efd);
void fk_vq_free(struct fk_vq *q);
void fk_vq_report(struct fk_vq *q, uint32_t virt_id, bool lost);
ssize_t fk_vq_read(struct fk_vq *q, void *buf, size_t len);
int fk_vq_fdinfo(struct fk_vq *q, char *buf, size_t len);

#endif
