/* SPDX-License-Identifier: MIT */
/*
 * Scenarios: every behaviour of the kernel that libiofault relies on, as a
 * short sequence of calls (raw uAPI calls, mock driver ops, and library
 * calls) that runs the same on the real kernel and on the fake one
 * (tests/fake.h). Each call's result (its return value or errno) and every
 * message read (decoded, field by field) goes into a transcript, one line
 * each; object IDs and fds, which no ABI fixes, are named instead of
 * numbered. Cookies and sequence numbers are compared as they are.
 *
 * kernel_scenarios (in the guest) runs each scenario on the kernel and on
 * the fake of the same kind (7.3 or the series' v3) and compares the two
 * transcripts line by line: a difference is a test failure, so the fake
 * cannot drift from the kernel. test_scenarios (on the host) runs them on
 * both fakes and compares with the transcripts recorded from the kernels
 * (tests/transcripts/), where there are some.
 *
 * A scenario also checks what the library relies on (SCHECK): that fails
 * the scenario on whichever it ran.
 */
#ifndef SCEN_H
#define SCEN_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "fake.h"

/* What the calls go to */
struct backend {
	const char *name;
	bool fake;
	enum fake_kernel kind;	/* the fake's, or the kernel's as detected */
	bool one_step;		/* v3 with IOPF_CAPABLE (its last posting) */
	int (*open)(void);
	int (*ioctl)(int fd, unsigned long request, void *arg);
	ssize_t (*read)(int fd, void *buf, size_t len);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*close)(int fd);
	FILE *(*fdinfo)(int fd);
};
extern const struct backend *be;
/* Use @b for the scenario about to run: the library and the mock too */
void backend_use(const struct backend *b);
const struct backend *backend_kernel(enum fake_kernel kind, bool one_step);
const struct backend *backend_fake(enum fake_kernel kind, bool one_step);
/*
 * The kernel at /dev/iommu: 7.3, v3, or -1 for another (v2); *@one_step:
 * it has IOPF_CAPABLE
 */
int backend_detect(char *why, size_t len, bool *one_step);

/* What a kernel without a feature says: the unknown-flag rule, or E2BIG */
static inline bool not_supported(long err)
{
	return err == EOPNOTSUPP || err == E2BIG;
}

static inline bool k73(void)
{
	return be->kind == FAKE_73;
}

/* The one-step IOPF-capable HWPT allocation is there */
static inline bool one_step(void)
{
	return be->kind == FAKE_V3 && be->one_step;
}

/* ---- The transcript ---- */

void tr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A call's result: 0, a positive value, or -errno (as a name) */
void tr_rc(const char *what, long rc);
/* The result of a raw call that returns -1 and sets errno */
long sys_rc(long rc);
/* Name an object ID (or a device's dev_id) for the transcript */
void tr_name(uint32_t id, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *tr_id(uint32_t id);
/* read() of a fault queue (@header: its message format) or a vEVENTQ */
void tr_read_fault(const char *what, int fd, size_t len, bool header);
void tr_read_vevent(const char *what, int fd, size_t len);
/* The cookie of the last group tr_read_fault() decoded (0: none) */
extern uint32_t tr_last_cookie;
extern uint32_t tr_cookies[64];
extern unsigned int tr_nr_cookies;
/* One answer written; its result */
void tr_answer(const char *what, int fd, uint32_t cookie, uint32_t code);
/* poll() with no wait: POLLIN or not */
void tr_poll(const char *what, int fd);
/* An eventfd's count, taken (0 when not signalled) */
void tr_eventfd(const char *what, int efd);
void tr_fdinfo(const char *what, int fd);
/* The mock's counters of a device (the series' mock) */
void tr_counters(const char *what, int iommufd, uint32_t dev_id);
/* A library queue's counters that say what happened */
struct iof_queue;
void tr_stats(const char *what, struct iof_queue *q);

/* Write the transcript to @f from now on; the stream before */
FILE *tr_swap(FILE *f);
/* Did a check of this scenario fail? */
bool tr_failed(void);

/* A check of the scenario's own: a failure is a line and fails it */
bool scheck(bool cond, const char *what, int line);
#define SCHECK(cond) scheck(cond, #cond, __LINE__)

/* ---- The world a scenario starts from ---- */

struct world {
	int fd;				/* the iommufd */
	uint32_t ioas, stdev, dev, parent, viommu;
};
/* An iommufd, an IOAS, a mock device, a nesting parent, a vIOMMU */
int world_new(struct world *w);
void world_end(struct world *w);
/*
 * A fault queue (7.3's struct without @flags) and a nested HWPT of the
 * device reporting to it, the device attached: 0 or -errno
 */
int world_queue(struct world *w, uint32_t flags, int efd, uint32_t depth,
		uint32_t *fault_id, int *fault_fd, uint32_t *hwpt_id);

/* ---- Scenarios ---- */

enum { ON_73 = 1 << 0, ON_V3 = 1 << 1, ON_BOTH = ON_73 | ON_V3 };

struct scenario {
	const char *name;
	void (*fn)(void);
	unsigned int on;	/* the kernels it runs on */
	/* A mock feature it needs (MOCK_HAVE_*), or NULL */
	const char *needs;
};

extern const struct scenario scen_fault[], scen_more[], scen_lib[];
extern const unsigned int nr_scen_fault, nr_scen_more, nr_scen_lib;

/*
 * Run @s on the backend in use: its transcript (malloc'd) and verdict.
 * The child of lib_resume_fork runs through scen_child().
 */
bool scen_run(const struct scenario *s, char **transcript);
/* The @i-th scenario of all, NULL past the last */
const struct scenario *scen_all(unsigned int i);
/* Two transcripts line by line; the first differences to @diag */
bool tr_compare(const char *a, const char *an, const char *b, const char *bn,
		FILE *diag);
/* argv of a re-executed child (fd inheritance), or false */
bool scen_child(int argc, char **argv, int *status);

#endif
