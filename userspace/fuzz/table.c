// SPDX-License-Identifier: MIT
/*
 * A process's resources: its iommufd contexts, the objects it made in them
 * and its file descriptors. Threads pick their calls' arguments here. The
 * table is a hint, not a model: ids go stale under other threads' feet, and
 * that is part of the fuzzing. File descriptors are different: a call holds
 * the descriptor it uses (busy) and a close waits for the last holder, so a
 * number never names another file in the middle of a call. That keeps the
 * checks of what read() returned honest, and keeps calls off the fuzzer's
 * own descriptors (all above FD_LIMIT).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

void proc_init(struct proc *p, int idx)
{
	memset(p, 0, sizeof(*p));
	p->idx = idx;
	pthread_mutex_init(&p->lock, NULL);
}

/*
 * A new context around the open /dev/iommu @fd: its index, or -1 with @fd
 * closed. The index is taken under the lock: two threads opening at once
 * must not both get it, or the table would mix two contexts' objects under
 * one index.
 */
int ctx_new(struct proc *p, int fd)
{
	int c, slot;

	pthread_mutex_lock(&p->lock);
	for (c = 0; c < MAX_CTX && p->ctx[c].live; c++)
		;
	if (c < MAX_CTX) {
		p->ctx[c].live = true;
		p->ctx[c].max_id = 0;
		p->ctx[c].maybe_autos = 0;
	}
	pthread_mutex_unlock(&p->lock);
	if (c == MAX_CTX) {
		close(fd);
		return -1;
	}
	/* Which closes @fd if the table is full */
	slot = fd_add(p, fd, F_CTX, c, 0, 0);
	if (slot < 0) {
		pthread_mutex_lock(&p->lock);
		if (!p->ctx[c].nfds)
			p->ctx[c].live = false;
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	return c;
}

int ctx_pick(struct thr *t)
{
	struct proc *p = t->p;
	int c, n = 0, live[MAX_CTX];

	pthread_mutex_lock(&p->lock);
	for (c = 0; c < MAX_CTX; c++)
		if (p->ctx[c].live)
			live[n++] = c;
	pthread_mutex_unlock(&p->lock);
	return n ? live[rnd_n(t, n)] : -1;
}

static bool fd_match(struct fdent *f, int kind_mask, int ctx)
{
	return f->live && !f->closing && (kind_mask & (1 << f->kind)) &&
	       (ctx < 0 || f->ctx == ctx);
}

/*
 * Hold a random live descriptor of a kind in @kind_mask (1 << F_*), of
 * context @ctx unless it is -1: its slot (release it with fd_release()), or
 * -1. *@copy gets its entry as it was.
 */
int fd_acquire(struct thr *t, int kind_mask, int ctx, struct fdent *copy)
{
	struct proc *p = t->p;
	int i, n = 0, pick;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_FDS; i++)
		if (fd_match(&p->fds[i], kind_mask, ctx))
			n++;
	if (!n) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	pick = rnd_n(t, n);
	for (i = 0; i < MAX_FDS; i++)
		if (fd_match(&p->fds[i], kind_mask, ctx) && !pick--)
			break;
	p->fds[i].busy++;
	if (copy)
		*copy = p->fds[i];
	pthread_mutex_unlock(&p->lock);
	return i;
}

/* A descriptor of context @ctx itself, held: its slot or -1 */
int fd_acquire_ctx(struct thr *t, int ctx)
{
	return fd_acquire(t, 1 << F_CTX, ctx, NULL);
}

/* The context lost its last descriptor: its objects are gone with it */
static void ctx_gone(struct proc *p, int c)
{
	int i;

	p->ctx[c].live = false;
	for (i = 0; i < MAX_AUTOS; i++)
		if (p->auto_ctx[i] == c)
			p->auto_ctx[i] = -1;
	for (i = 0; i < MAX_OBJS; i++) {
		if (p->objs[i].live && p->objs[i].ctx == c) {
			p->objs[i].live = 0;
			p->stale_ids[p->nstale_ids++ % NR_STALE] =
				p->objs[i].id;
		}
	}
}

/*
 * Called with p->lock held: the descriptor to close once the lock is
 * dropped (a close may release a whole context), if nobody holds it, or -1.
 * The number is out of the table first, so nothing can use it meanwhile.
 */
static int fd_maybe_close(struct proc *p, int slot)
{
	struct fdent *f = &p->fds[slot];

	if (!f->closing || f->busy)
		return -1;
	p->stale_fds[p->nstale_fds++ % NR_STALE] = f->fd;
	f->live = 0;
	f->closing = 0;
	if (f->kind == F_CTX && !--p->ctx[f->ctx].nfds)
		ctx_gone(p, f->ctx);
	atomic_fetch_sub(&sh->st.fds, 1);
	return f->fd;
}

void fd_release(struct proc *p, int slot)
{
	int fd;

	if (slot < 0)
		return;
	pthread_mutex_lock(&p->lock);
	p->fds[slot].busy--;
	fd = fd_maybe_close(p, slot);
	pthread_mutex_unlock(&p->lock);
	if (fd >= 0)
		close(fd);
}

/*
 * Record a descriptor a call returned: its slot. A descriptor the table has
 * no room for, or one at or above FD_LIMIT (where the fuzzer's own live),
 * is closed at once: -1.
 */
int fd_add(struct proc *p, int fd, int kind, int ctx, uint32_t obj,
	   uint32_t qflags)
{
	int i;

	if (fd < 0)
		return -1;
	if (fd >= FD_LIMIT) {
		close(fd);
		return -1;
	}
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_FDS && p->fds[i].live; i++)
		;
	if (i == MAX_FDS) {
		pthread_mutex_unlock(&p->lock);
		close(fd);
		return -1;
	}
	memset(&p->fds[i], 0, sizeof(p->fds[i]));
	p->fds[i].fd = fd;
	p->fds[i].kind = kind;
	p->fds[i].live = 1;
	p->fds[i].ctx = ctx;
	p->fds[i].obj = obj;
	p->fds[i].qflags = qflags;
	if (kind == F_CTX) {
		if (!p->ctx[ctx].nfds++) {
			p->ctx[ctx].live = true;
			p->ctx[ctx].max_id = 0;
			p->ctx[ctx].maybe_autos = 0;
		}
	}
	pthread_mutex_unlock(&p->lock);
	atomic_fetch_add(&sh->st.fds, 1);
	return i;
}

/*
 * Close a descriptor: slot @slot_hint, or a random one if it is -1. The
 * close happens when the last call holding it returns.
 */
void fd_close(struct thr *t, int slot_hint)
{
	struct proc *p = t->p;
	int slot = slot_hint, fd = -1;

	if (slot < 0) {
		slot = fd_acquire(t, (1 << NR_FKIND) - 1, -1, NULL);
		if (slot < 0)
			return;
		pthread_mutex_lock(&p->lock);
		p->fds[slot].busy--;
	} else {
		pthread_mutex_lock(&p->lock);
	}
	if (p->fds[slot].live && !p->fds[slot].closing) {
		logc(t, "close(%d) [%s]", p->fds[slot].fd,
		     (const char *[]){ "iommufd", "fault", "veventq",
				       "eventfd", "other" }[p->fds[slot].kind]);
		p->fds[slot].closing = 1;
		fd = fd_maybe_close(p, slot);
		pthread_mutex_unlock(&p->lock);
		/* Or when the last call holding it returns */
		logr(t, fd >= 0 ? close(fd) : 0);
		return;
	}
	pthread_mutex_unlock(&p->lock);
}

/* A closed descriptor's number (maybe reused since), or -1 */
int stale_fd(struct thr *t)
{
	struct proc *p = t->p;
	int fd = -1;

	pthread_mutex_lock(&p->lock);
	if (p->nstale_fds)
		fd = p->stale_fds[rnd_n(t, p->nstale_fds < NR_STALE ?
					       p->nstale_fds : NR_STALE)];
	pthread_mutex_unlock(&p->lock);
	return fd;
}

static bool obj_match(struct obj *o, int kind, int ctx)
{
	return o->live && o->kind == kind && (ctx < 0 || o->ctx == ctx);
}

/* A live object of @kind in @ctx: false if there is none */
bool obj_pick(struct thr *t, int kind, int ctx, struct obj *out)
{
	struct proc *p = t->p;
	int i, n = 0, pick;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_OBJS; i++)
		if (obj_match(&p->objs[i], kind, ctx))
			n++;
	if (n) {
		pick = rnd_n(t, n);
		for (i = 0; i < MAX_OBJS; i++)
			if (obj_match(&p->objs[i], kind, ctx) && !pick--)
				break;
		*out = p->objs[i];
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

/*
 * An id for an argument that names an object of @kind: mostly a live one of
 * the context, else one of another kind, a stale one, 0 or a random one
 */
uint32_t id_pick(struct thr *t, int kind, int ctx)
{
	struct proc *p = t->p;
	uint32_t r = rnd_n(t, 100), id = 0;
	struct obj o;

	if (r < 80 && obj_pick(t, kind, ctx, &o))
		return kind == O_DEV ? o.id2 : o.id;
	if (r < 88 && obj_pick(t, rnd_n(t, NR_OKIND), ctx, &o))
		return o.id;
	if (r < 94) {
		pthread_mutex_lock(&p->lock);
		if (p->nstale_ids)
			id = p->stale_ids[rnd_n(t, p->nstale_ids < NR_STALE ?
						       p->nstale_ids :
						       NR_STALE)];
		pthread_mutex_unlock(&p->lock);
		return id;
	}
	if (r < 97)
		return 0;
	return one_in(t, 2) ? rnd_n(t, 64) : rnd_u32_boundary(t);
}

void obj_add(struct proc *p, int kind, int ctx, uint32_t id, uint32_t id2,
	     uint32_t id3, uint32_t flags)
{
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_OBJS && p->objs[i].live; i++)
		;
	if (i < MAX_OBJS) {
		p->objs[i] = (struct obj){
			.kind = kind, .live = 1, .ctx = ctx, .id = id,
			.id2 = id2, .id3 = id3, .flags = flags,
			.seq = ++p->obj_seq,
		};
	} else {
		p->untracked++;
		atomic_fetch_add(&sh->st.untracked, 1);
	}
	/* The final sweep destroys every id up to the largest seen */
	if (id > p->max_id)
		p->max_id = id;
	if (id3 > p->max_id)
		p->max_id = id3;
	if (kind == O_DEV && id2 > p->max_id)
		p->max_id = id2;
	pthread_mutex_unlock(&p->lock);
	atomic_fetch_add(&sh->st.objects, 1);
}

/* An attach to an IOAS reported the automatic HWPT @id */
void auto_add(struct proc *p, int ctx, uint32_t id)
{
	unsigned int i;

	pthread_mutex_lock(&p->lock);
	i = p->nautos++ % MAX_AUTOS;
	p->autos[i] = id;
	p->auto_ctx[i] = ctx;
	pthread_mutex_unlock(&p->lock);
}

bool auto_known(struct proc *p, int ctx, uint32_t id)
{
	bool found = false;
	unsigned int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_AUTOS && i < p->nautos && !found; i++)
		found = p->auto_ctx[i] == ctx && p->autos[i] == id;
	pthread_mutex_unlock(&p->lock);
	return found;
}

/* A call that may have made an automatic HWPT in @ctx failed: see ctx */
void auto_maybe(struct proc *p, int ctx)
{
	pthread_mutex_lock(&p->lock);
	p->ctx[ctx].maybe_autos++;
	pthread_mutex_unlock(&p->lock);
}

/* The sweep found an unknown paging HWPT: one of those, if any is left */
bool auto_maybe_take(struct proc *p, int ctx)
{
	bool took;

	pthread_mutex_lock(&p->lock);
	took = p->ctx[ctx].maybe_autos > 0;
	if (took)
		p->ctx[ctx].maybe_autos--;
	pthread_mutex_unlock(&p->lock);
	return took;
}

/* The sweep found an unknown object: one made with the table full, if any */
bool untracked_take(struct proc *p)
{
	bool took;

	pthread_mutex_lock(&p->lock);
	took = p->untracked > 0;
	if (took)
		p->untracked--;
	pthread_mutex_unlock(&p->lock);
	return took;
}

/* How many objects the table recorded so far: see obj_gone() */
uint64_t obj_seq(struct proc *p)
{
	uint64_t seq;

	pthread_mutex_lock(&p->lock);
	seq = p->obj_seq;
	pthread_mutex_unlock(&p->lock);
	return seq;
}

/*
 * IOMMU_DESTROY of @id succeeded: what the table recorded under it before
 * the call began (obj_seq() @before) is gone. An entry recorded since may
 * be a new object that took the freed id (the kernel hands out the lowest
 * free one) while the destroy was in flight, or the object the destroy
 * removed: nothing tells which, so it stays, and the teardown's
 * IOMMU_DESTROY settles it (ENOENT is fine there). Dropping it would leave
 * a live object the table does not know, which the final sweep reports as
 * one that outlived what made it.
 */
void obj_gone(struct proc *p, int ctx, uint32_t id, uint64_t before)
{
	int i;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_OBJS; i++) {
		if (p->objs[i].live && p->objs[i].ctx == ctx &&
		    p->objs[i].id == id && p->objs[i].seq <= before) {
			p->objs[i].live = 0;
			p->stale_ids[p->nstale_ids++ % NR_STALE] = id;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

int count_objs(struct proc *p, int ctx)
{
	int i, n = 0;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_OBJS; i++)
		n += p->objs[i].live && p->objs[i].ctx == ctx;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* A cookie read from the queue of fd slot @slot, to answer later */
void cookie_add(struct proc *p, int slot, uint32_t cookie)
{
	struct fdent *f = &p->fds[slot];

	pthread_mutex_lock(&p->lock);
	f->cookies[f->ncookies++ % NR_COOKIES] = cookie;
	pthread_mutex_unlock(&p->lock);
}

/*
 * A cookie to answer on fd slot @slot: mostly one read from it, else one
 * answered already, 0, a random one, or one with another generation
 */
uint32_t cookie_pick(struct thr *t, int slot)
{
	struct proc *p = t->p;
	struct fdent *f = &p->fds[slot];
	uint32_t r = rnd_n(t, 100), c = 0;
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	n = f->ncookies < NR_COOKIES ? f->ncookies : NR_COOKIES;
	if (r < 75 && n)
		c = f->cookies[(f->ncookies - 1 - rnd_n(t, n < 4 ? n : 4 + rnd_n(t, n - 3))) % NR_COOKIES];
	else if (r < 85 && p->nstale_cookies)
		c = p->stale_cookies[rnd_n(t, p->nstale_cookies < NR_STALE ?
					      p->nstale_cookies : NR_STALE)];
	else if (r < 90 && n)
		c = f->cookies[rnd_n(t, n)] ^ (1u << (15 + rnd_n(t, 17)));
	else if (r < 95)
		c = 0;
	else
		c = rnd_u32_boundary(t);
	pthread_mutex_unlock(&p->lock);
	return c;
}

void cookie_answered(struct proc *p, uint32_t cookie)
{
	pthread_mutex_lock(&p->lock);
	p->stale_cookies[p->nstale_cookies++ % NR_STALE] = cookie;
	pthread_mutex_unlock(&p->lock);
}

/*
 * Tear a context down as a VMM that exits would: every descriptor of it and
 * of its queues closed, in table order, each as soon as no call holds it
 */
void ctx_close_all(struct thr *t, int c)
{
	struct proc *p = t->p;
	int i, fd;

	logc(t, "close(context %d and its queues' fds)", c);
	for (i = 0; i < MAX_FDS; i++) {
		pthread_mutex_lock(&p->lock);
		if (!p->fds[i].live || p->fds[i].closing || p->fds[i].ctx != c ||
		    p->fds[i].kind == F_EVENTFD || p->fds[i].kind == F_OTHER) {
			pthread_mutex_unlock(&p->lock);
			continue;
		}
		p->fds[i].closing = 1;
		fd = fd_maybe_close(p, i);
		pthread_mutex_unlock(&p->lock);
		if (fd >= 0)
			close(fd);
	}
	logr(t, 0);
}

/*
 * --self-test: the table's bookkeeping where threads interleave, replayed
 * in one thread in the order that once lost an object. 0 if it holds.
 */
static int live_with_id(struct proc *p, int ctx, uint32_t id)
{
	int i, n = 0;

	for (i = 0; i < MAX_OBJS; i++)
		n += p->objs[i].live && p->objs[i].ctx == ctx &&
		     p->objs[i].id == id;
	return n;
}

int table_self_test(void)
{
	static struct proc p;
	uint64_t before;
	int bad = 0;

	proc_init(&p, 0);
	/*
	 * Thread A destroys IOAS 5; thread B's IOAS alloc, in flight at the
	 * same time, gets the freed id 5 and B records it before A's destroy
	 * returns. A's destroy must not take B's entry with it.
	 */
	obj_add(&p, O_IOAS, 0, 5, 0, 0, 0);
	before = obj_seq(&p);			/* A: IOMMU_DESTROY(5) begins */
	obj_add(&p, O_IOAS, 0, 5, 0, 0, 0);	/* B: IOMMU_IOAS_ALLOC -> 5 */
	obj_gone(&p, 0, 5, before);		/* A: it returned 0 */
	if (live_with_id(&p, 0, 5) != 1) {
		printf("# table: a destroy dropped an entry recorded while it was in flight (%d left, want 1)\n",
		       live_with_id(&p, 0, 5));
		bad++;
	}
	/* A destroy that began after B's record takes it */
	obj_gone(&p, 0, 5, obj_seq(&p));
	if (live_with_id(&p, 0, 5)) {
		printf("# table: a destroy kept an entry recorded before it\n");
		bad++;
	}
	/* Another context's id 5 is another object */
	obj_add(&p, O_IOAS, 1, 5, 0, 0, 0);
	obj_gone(&p, 0, 5, obj_seq(&p));
	if (live_with_id(&p, 1, 5) != 1) {
		printf("# table: a destroy in context 0 dropped context 1's object\n");
		bad++;
	}
	printf("%sok 1 iommufd_fuzz table self-test\n", bad ? "not " : "");
	return bad;
}
