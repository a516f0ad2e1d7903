// SPDX-License-Identifier: MIT
/*
 * The fake kernel's objects and ioctls: 7.3's iommufd core (main.c's size
 * rules, object IDs, IOMMU_DESTROY), the HWPT, vIOMMU, vDEVICE, fault
 * queue and vEVENTQ allocations with the series' additions when it plays
 * v3, and the mock driver's test ops. See fake.h.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fake_priv.h"
#include "iofault.h"
#include "iofault_internal.h"
#include "uapi.h"

enum fake_kernel fk_kernel;
/*
 * One lock for the whole fake, as if the kernel took one big lock: the
 * multi-threaded test calls it from several threads. Recursive, since the
 * test ops call the entry points of fake.h too.
 */
pthread_mutex_t fk_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
struct fake_stats fake_stats;
struct fake_knobs fake_knobs;

static struct fk_obj {
	enum fk_type type;
	void *p;
} objs[FK_MAX_OBJ];
static uint32_t next_id;
static int ctx_fd = -1;
static struct fk_acct accts[64];
static unsigned int nr_accts;

bool fk_v3(void)
{
	return fk_kernel == FAKE_V3;
}

static bool v3(void)
{
	return fk_v3();
}

int fk_ctx_fd(void)
{
	return ctx_fd;
}

struct fk_acct *fk_acct(uint32_t dev_id)
{
	unsigned int i;

	for (i = 0; i != nr_accts; i++)
		if (accts[i].dev_id == dev_id)
			return &accts[i];
	accts[nr_accts].dev_id = dev_id;
	return &accts[nr_accts++];
}

void fk_answer_group(struct fk_group *g, uint32_t code)
{
	struct fk_acct *a = fk_acct(g->dev_id);

	if (code == IOMMUFD_PAGE_RESP_SUCCESS)
		a->success++;
	else
		a->invalid++;
}

static void fake_answers_u(uint32_t dev_id, struct fake_answers *out)
{
	struct fk_acct *a = fk_acct(dev_id);

	*out = (struct fake_answers){
		.groups = a->groups,
		.success = a->success,
		.invalid = a->invalid,
	};
}

void fk_level(int rfd, int wfd, int efd, bool *was, bool now, bool wake)
{
	const uint64_t one = 1;
	char b[256];

	if (now && (!*was || wake)) {
		/* The eventfd sees edges only; poll() every wake-up */
		if (!*was && efd >= 0 && write(efd, &one, sizeof(one)) < 0)
			abort();
		if (write(wfd, "", 1) < 0 && errno != EAGAIN)
			abort();
	}
	if (!now)
		while (read(rfd, b, sizeof(b)) > 0)
			;
	*was = now;
}

/* ---- Objects ---- */

uint32_t fk_obj_new(enum fk_type type, void *p)
{
	uint32_t id = ++next_id;

	if (id >= FK_MAX_OBJ)
		abort();
	objs[id] = (struct fk_obj){ .type = type, .p = p };
	return id;
}

void *fk_obj_get(uint32_t id, enum fk_type type)
{
	if (!id || id >= FK_MAX_OBJ || objs[id].type != type)
		return NULL;
	return objs[id].p;
}

enum fk_type fk_obj_type(uint32_t id)
{
	return id && id < FK_MAX_OBJ ? objs[id].type : FK_NONE;
}

void fk_obj_clear(uint32_t id)
{
	objs[id] = (struct fk_obj){};
}

uint32_t fk_last_id(void)
{
	return next_id;
}

int fk_fail(int err)
{
	errno = err;
	return -1;
}

/* The queue fd: a pipe, non-blocking so that its level can be kept */
int fk_new_pipe(int *rfd, int *wfd)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		abort();
	*rfd = p[0];
	*wfd = p[1];
	fake_stats.open_fds++;
	return p[0];
}

struct fk_fq *fk_fq_by_fd(int fd)
{
	struct fk_fq *q;
	uint32_t i;

	for (i = 1; i <= next_id; i++) {
		q = fk_obj_get(i, FK_FAULT);
		if (q && q->fd_open && q->rfd == fd)
			return q;
	}
	return NULL;
}

struct fk_vq *fk_vq_by_fd(int fd)
{
	struct fk_vq *q;
	uint32_t i;

	for (i = 1; i <= next_id; i++) {
		q = fk_obj_get(i, FK_VEVENTQ);
		if (q && q->fd_open && q->rfd == fd)
			return q;
	}
	return NULL;
}

static void fake_boot_u(enum fake_kernel k)
{
	fake_shutdown();
	fk_kernel = k;
	memset(&fake_stats, 0, sizeof(fake_stats));
	memset(&fake_knobs, 0, sizeof(fake_knobs));
	memset(accts, 0, sizeof(accts));
	nr_accts = 0;
	/* Distinct from a kernel's first IDs, as IDs are no ABI */
	next_id = 100;
}

enum fake_kernel fake_kernel(void)
{
	return fk_kernel;
}

static int fake_open_u(void)
{
	ctx_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	return ctx_fd;
}

void fake_shutdown(void)
{
	uint32_t i;

	for (i = 0; i < FK_MAX_OBJ; i++) {
		struct fk_obj *o = &objs[i];

		if (o->type == FK_FAULT) {
			struct fk_fq *q = o->p;

			close(q->wfd);
			if (q->fd_open)
				close(q->rfd);
			fk_fq_free(q);
		} else if (o->type == FK_VEVENTQ) {
			struct fk_vq *q = o->p;

			close(q->wfd);
			if (q->fd_open)
				close(q->rfd);
			fk_vq_free(q);
		} else if (o->type != FK_IDEV) {
			free(o->p);
		}
		*o = (struct fk_obj){};
	}
	if (ctx_fd >= 0)
		close(ctx_fd);
	ctx_fd = -1;
	next_id = 100;
}

/* ---- Fault queues ---- */

bool fk_is_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !strcmp(link, "anon_inode:[eventfd]");
}

/* The series' checks of a queue's flags, eventfd and depth */
int fk_fault_check(uint32_t flags, int32_t efd, uint32_t depth)
{
	const uint32_t known = IOF_FAULT_QUEUE_EVENTFD |
			       IOF_FAULT_QUEUE_HEADER | IOF_FAULT_QUEUE_BOUNDED;

	if (flags & ~known)
		return EOPNOTSUPP;
	if (fake_knobs.no_eventfd && (flags & IOF_FAULT_QUEUE_EVENTFD))
		return EOPNOTSUPP;
	if ((!(flags & IOF_FAULT_QUEUE_EVENTFD) && efd) ||
	    (!(flags & IOF_FAULT_QUEUE_BOUNDED) && depth))
		return EOPNOTSUPP;
	if ((flags & IOF_FAULT_QUEUE_BOUNDED) &&
	    (!depth || depth > FK_MAX_DEPTH))
		return EINVAL;
	if (flags & IOF_FAULT_QUEUE_EVENTFD) {
		if (efd < 0 || fcntl(efd, F_GETFD) < 0)
			return EBADF;
		if (!fk_is_eventfd(efd))
			return EINVAL;
	}
	return 0;
}

uint32_t fk_fault_make(uint32_t flags, int efd, uint32_t depth, int *fd)
{
	struct fk_fq *q;

	/* The bound implies the header: the queue has, and shows, both */
	if (flags & IOF_FAULT_QUEUE_BOUNDED)
		flags |= IOF_FAULT_QUEUE_HEADER;
	q = fk_fq_new(0, flags, depth,
		      flags & IOF_FAULT_QUEUE_EVENTFD ? efd : -1);

	q->id = fk_obj_new(FK_FAULT, q);
	*fd = fk_new_pipe(&q->rfd, &q->wfd);
	fake_stats.fault_allocs++;
	fake_stats.last_fault_fd = *fd;
	fake_stats.fault_eventfd_real = q->efd >= 0 && fk_is_eventfd(q->efd);
	return q->id;
}

int fk_size_check(const void *arg, uint32_t size, uint32_t min,
		      uint32_t known)
{
	const unsigned char *p = arg;

	if (size < min)
		return EINVAL;
	for (; known < size; known++)
		if (p[known])
			return E2BIG;
	return 0;
}

int fk_fault_alloc(void *cmd)
{
	struct iof_uapi_fault_alloc *c = cmd;
	const uint32_t known = v3() ? sizeof(*c) : IOF_FAULT_ALLOC_SIZE_73;
	int err, fd;

	fake_stats.fault_calls++;
	fake_stats.fault_size = c->size;
	memcpy(fake_stats.fault, c, c->size < 24 ? c->size : 24);
	err = fk_size_check(c, c->size, IOF_FAULT_ALLOC_SIZE_73, known);
	if (err)
		return fk_fail(err);
	if (!v3()) {
		if (c->flags)
			return fk_fail(EOPNOTSUPP);
		c->out_fault_id = fk_fault_make(0, -1, 0, &fd);
		c->out_fault_fd = fd;
		return 0;
	}
	if (c->flags & ~(IOF_FAULT_QUEUE_EVENTFD | IOF_FAULT_QUEUE_HEADER |
			 IOF_FAULT_QUEUE_BOUNDED))
		return fk_fail(EOPNOTSUPP);
	if (c->flags && c->size < sizeof(*c))
		return fk_fail(EINVAL);
	err = fk_fault_check(c->flags, c->size > 16 ? c->eventfd : 0,
			  c->size > 16 ? c->depth : 0);
	if (err)
		return fk_fail(err);
	c->out_fault_id = fk_fault_make(c->flags, c->eventfd, c->depth, &fd);
	c->out_fault_fd = fd;
	return 0;
}

static int fake_queue_new_u(const struct fake_fault_spec *spec, uint32_t *id)
{
	int fd;

	*id = fk_fault_make(spec->flags, spec->eventfd, spec->depth, &fd);
	return fd;
}

static struct fk_fq *fq_get(uint32_t id)
{
	return fk_obj_get(id, FK_FAULT);
}

static int fake_queue_fault_u(uint32_t id, uint32_t dev_id, uint32_t pasid,
		     uint32_t grpid, uint32_t nfaults, uint64_t addr)
{
	struct fk_fq *q = fq_get(id);

	if (!q)
		return -ENOENT;
	return fk_fq_enqueue(q, dev_id, pasid, pasid != 0, grpid,
			     IOMMU_PGFAULT_PERM_READ, nfaults, addr);
}

static int fake_queue_cookie_gen_u(uint32_t id, uint32_t gen)
{
	struct fk_fq *q = fq_get(id);

	if (!q)
		return -ENOENT;
	q->cookie_gen = gen;
	return 0;
}

static int fake_queue_sequence_u(uint32_t id, uint32_t seq)
{
	struct fk_fq *q = fq_get(id);

	if (!q || seq > INT32_MAX)
		return q ? -EINVAL : -ENOENT;
	q->seq = seq;
	return 0;
}

static int fake_queue_detach_u(uint32_t id, uint32_t dev_id)
{
	struct fk_fq *q = fq_get(id);

	if (!q)
		return -ENOENT;
	fk_fq_detach(q, dev_id);
	return 0;
}

/* ---- fake.h's entry points, under the fake's lock ---- */

#define FK_LOCKED(type, call)                                              \
	do {                                                               \
		type _r;                                                   \
		pthread_mutex_lock(&fk_lock);                              \
		_r = call;                                                 \
		pthread_mutex_unlock(&fk_lock);                            \
		return _r;                                                 \
	} while (0)

void fake_answers(uint32_t dev_id, struct fake_answers *a)
{
	pthread_mutex_lock(&fk_lock);
	fake_answers_u(dev_id, a);
	pthread_mutex_unlock(&fk_lock);
}

void fake_boot(enum fake_kernel k)
{
	pthread_mutex_lock(&fk_lock);
	fake_boot_u(k);
	pthread_mutex_unlock(&fk_lock);
}

int fake_open(void)
{
	FK_LOCKED(int, fake_open_u());
}

int fake_queue_new(const struct fake_fault_spec *spec, uint32_t *id)
{
	FK_LOCKED(int, fake_queue_new_u(spec, id));
}

int fake_queue_fault(uint32_t id, uint32_t dev_id, uint32_t pasid,
		     uint32_t grpid, uint32_t nfaults, uint64_t addr)
{
	FK_LOCKED(int, fake_queue_fault_u(id, dev_id, pasid, grpid, nfaults,
					  addr));
}

int fake_queue_cookie_gen(uint32_t id, uint32_t gen)
{
	FK_LOCKED(int, fake_queue_cookie_gen_u(id, gen));
}

int fake_queue_sequence(uint32_t id, uint32_t seq)
{
	FK_LOCKED(int, fake_queue_sequence_u(id, seq));
}

int fake_queue_detach(uint32_t id, uint32_t dev_id)
{
	FK_LOCKED(int, fake_queue_detach_u(id, dev_id));
}
