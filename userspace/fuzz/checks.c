// SPDX-License-Identifier: MIT
/*
 * The end of a worker process: everything it made goes, and nothing the
 * kernel made for it may be left. Every call that failed, fault injected or
 * not, must have left nothing behind; every call that succeeded told us
 * what it made. So once the table's objects are destroyed, IOMMU_DESTROY of
 * any id finds nothing (ENOENT), and once the table's descriptors are
 * closed, the process has no descriptor but its own.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

/* The order that needs the fewest retries: users before what they use */
static const int destroy_order[] = { O_VDEV, O_VEVENTQ, O_HWPT, O_FAULT,
				     O_VIOMMU, O_DEV, O_IOAS };

static int destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd) ? errno : 0;
}

/* The objects of context @c the table knows, destroyed: how many stay */
static int destroy_known(struct thr *t, int c, int fd)
{
	struct proc *p = t->p;
	int pass, k, i, left = 0, err;

	for (pass = 0; pass < 8; pass++) {
		left = 0;
		for (k = 0; k < (int)(sizeof(destroy_order) / sizeof(int)); k++) {
			for (i = 0; i < MAX_OBJS; i++) {
				struct obj *o = &p->objs[i];

				if (!o->live || o->ctx != c ||
				    o->kind != destroy_order[k])
					continue;
				logc(t, "DESTROY(ctx%d id=%u) [teardown]", c,
				     o->id);
				err = destroy(fd, o->id);
				logr(t, err ? -1 : 0);
				if (!err || err == ENOENT)
					o->live = 0;
				else
					left++;
			}
		}
		if (!left)
			break;
	}
	return left;
}

/*
 * Whether @id is a paging HWPT: IOMMU_HWPT_SET_DIRTY_TRACKING looks up
 * only those, and says ENOENT for anything else
 */
static bool paging_hwpt(int fd, uint32_t id)
{
	struct iommu_hwpt_set_dirty_tracking cmd = {
		.size = sizeof(cmd),
		.hwpt_id = id,
	};

	return !ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd) ||
	       errno != ENOENT;
}

/*
 * Every id up to past the largest the process saw: IOMMU_DESTROY must find
 * nothing. What it destroys or finds busy was left by a call, or its
 * object outlived the objects it belonged to.
 */
static int sweep(struct thr *t, int c, int fd)
{
	uint32_t id, last = t->p->max_id + 64;
	int bad = 0, err, pass;
	bool progress = true;

	for (pass = 0; pass < 8 && progress; pass++) {
		progress = false;
		for (id = 1; id <= last; id++) {
			bool paging = paging_hwpt(fd, id);

			err = destroy(fd, id);
			if (err)
				continue;
			progress = true;
			/*
			 * 7.3 keeps an automatic HWPT when a lookup raced its
			 * detach: one the kernel reported, or one a replace
			 * that failed its copy-out may have made
			 */
			if (paging && (auto_known(t->p, c, id) ||
				       auto_maybe_take(t->p, c))) {
				logc(t, "automatic HWPT %u of context %d left [sweep]",
				     id, c);
				logr(t, 0);
				atomic_fetch_add(&sh->st.autos_left, 1);
				continue;
			}
			if (untracked_take(t->p)) {
				logc(t, "object %u of context %d made with the table full [sweep]",
				     id, c);
				logr(t, 0);
				continue;
			}
			bad++;
			fail(t, "context %d: object %u outlived what made it (IOMMU_DESTROY found it at the end)",
			     c, id);
		}
	}
	/* Still in use once nothing else is left */
	for (id = 1; id <= last; id++) {
		err = destroy(fd, id);
		if (err && err != ENOENT) {
			fail(t, "context %d: object %u cannot be destroyed at the end: %s",
			     c, id, strerror(err));
			bad++;
		}
	}
	return bad;
}

/* Descriptors below FD_LIMIT that are not stdio: nobody's, a leak */
static int fd_sweep(struct thr *t)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char path[64], link[128];
	int bad = 0, fd, dfd;
	ssize_t n;

	if (!d)
		return 0;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd <= 2 || fd >= FD_LIMIT || fd == dfd)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = 0;
		fail(t, "fd %d (%s) open at the end: a call that failed installed it, or its close was lost",
		     fd, link);
		bad++;
	}
	closedir(d);
	return bad;
}

int proc_teardown(struct proc *p, struct thr *t)
{
	int i, c, st, keep[MAX_CTX], bad = 0, left;

	/* The children's references go first */
	for (i = 0; i < p->nchildren; i++) {
		if (waitpid(p->children[i], &st, 0) > 0 &&
		    (!WIFEXITED(st) || WEXITSTATUS(st))) {
			fail(t, "a forked child's read overran its buffer (status %#x)",
			     st);
			bad++;
		}
	}
	p->nchildren = 0;
	if (atomic_load(&p->failures) > (unsigned int)bad)
		bad = atomic_load(&p->failures);

	/* Every descriptor but one of each context's own */
	for (c = 0; c < MAX_CTX; c++)
		keep[c] = -1;
	for (i = 0; i < MAX_FDS; i++) {
		struct fdent *f = &p->fds[i];

		if (!f->live)
			continue;
		if (f->kind == F_CTX && keep[f->ctx] < 0) {
			keep[f->ctx] = i;
			continue;
		}
		logc(t, "close(%d) [teardown]", f->fd);
		logr(t, close(f->fd));
		f->live = 0;
	}
	for (c = 0; c < MAX_CTX; c++) {
		int fd;

		if (keep[c] < 0)
			continue;
		fd = p->fds[keep[c]].fd;
		left = destroy_known(t, c, fd);
		bad += sweep(t, c, fd);
		if (left && !bad) {
			fail(t, "context %d: %d objects could not be destroyed",
			     c, left);
			bad++;
		}
		logc(t, "close(%d) [teardown, context %d]", fd, c);
		logr(t, close(fd));
		p->fds[keep[c]].live = 0;
	}
	bad += fd_sweep(t);
	return bad;
}
