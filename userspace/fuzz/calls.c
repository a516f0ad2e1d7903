// SPDX-License-Identifier: MIT
/*
 * The calls: each picks its arguments (mostly sane, often at a boundary,
 * sometimes wrong in one field), logs itself, arms fail-nth now and then,
 * makes the call and records what it made. The few things every kernel
 * must get right whatever the arguments are checked on the spot:
 * - a read() returns at most what was asked, writes nothing past it, and
 *   returns whole, well-formed messages (fault queues: whole groups, each
 *   ending with its last page request, one cookie a group, zero padding;
 *   vEVENTQs: headers and their payloads);
 * - a write() of answers takes whole answers and says so;
 * - a size that is not a multiple of the message is refused.
 * Everything else (objects, descriptors, answers) is checked at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

static const struct iommu_hwpt_selftest s1_data = {
	.iotlb = FZ_IOTLB_DEFAULT,
};

/* ioctl() with fail-nth armed around it, logged: 0 or -1 with errno */
static int xioctl(struct thr *t, int fd, unsigned long cmd, void *arg)
{
	int rc;

	int err;

	arm(t);
	rc = ioctl(fd, cmd, arg);
	err = errno;
	disarm(t);
	errno = err;
	return logr(t, rc);
}

/* Copy back what the kernel wrote into a placed argument */
static void fetch(void *dst, const void *placed, size_t len, enum place pl)
{
	if (placed && pl != PL_RO)
		memcpy(dst, placed, len);
}

/* A size for a structure of @full bytes whose first version had @v1 */
static uint32_t pick_size(struct thr *t, uint32_t v1, uint32_t full)
{
	uint32_t r = rnd_n(t, 100);

	if (r < 55)
		return full;
	if (r < 80)
		return v1;
	switch (rnd_n(t, 8)) {
	case 0: return 0;
	case 1: return v1 - 1;
	case 2: return v1 + 1;
	case 3: return full - 1;
	case 4: return full + 1;
	case 5: return full + 8;
	case 6: return 4096;
	default: return rnd_n(t, full + 16);
	}
}

static uint32_t pick_depth(struct thr *t)
{
	static const uint32_t v[] = { 0, 1, 2, 3, 4, 7, 8, 16, 64, 256, 1024,
				      FZ_MAX_DEPTH, FZ_MAX_DEPTH + 1,
				      0xffffffff };
	uint32_t r = rnd_n(t, 100);

	if (r < 60)
		return 1 + rnd_n(t, one_in(t, 3) ? 8 : 512);
	if (r < 95)
		return v[rnd_n(t, sizeof(v) / sizeof(v[0]))];
	return rnd(t);
}

/*
 * An eventfd field: a live eventfd (held, *@slot set; release it after the
 * call), -1, 0, a closed number, a descriptor that is not an eventfd, or a
 * random number
 */
static int pick_eventfd(struct thr *t, int ctx, int *slot)
{
	uint32_t r = rnd_n(t, 100);
	struct fdent f;
	int s;

	*slot = -1;
	if (r < 70) {
		s = fd_acquire(t, 1 << F_EVENTFD, -1, &f);
		if (s >= 0) {
			*slot = s;
			return f.fd;
		}
	}
	if (r < 78)
		return -1;
	if (r < 82)
		return 0;
	if (r < 88)
		return stale_fd(t);
	if (r < 96) {
		s = fd_acquire(t, (1 << F_OTHER) | (1 << F_CTX) |
				      (1 << F_FAULT) | (1 << F_VEVENTQ),
			       -1, &f);
		if (s >= 0) {
			*slot = s;
			return f.fd;
		}
		return -1;
	}
	return one_in(t, 2) ? (int)rnd_n(t, 64) : (int)rnd(t);
}

static uint32_t pick_fault_flags(struct thr *t)
{
	static const uint32_t v[] = {
		0, FZ_FAULT_EVENTFD, FZ_FAULT_HEADER, FZ_FAULT_BOUNDED,
		FZ_FAULT_EVENTFD | FZ_FAULT_HEADER,
		FZ_FAULT_EVENTFD | FZ_FAULT_BOUNDED,
		FZ_FAULT_HEADER | FZ_FAULT_BOUNDED,
		FZ_FAULT_EVENTFD | FZ_FAULT_HEADER | FZ_FAULT_BOUNDED,
	};

	if (one_in(t, 20))
		return rnd_u32_boundary(t);
	return v[rnd_n(t, 8)];
}

/* Hold a descriptor of context @ctx: its number, or -1 if it has none */
static int ctx_fd(struct thr *t, int ctx, int *slot)
{
	*slot = fd_acquire_ctx(t, ctx);
	return *slot < 0 ? -1 : t->p->fds[*slot].fd;
}

/* A queue the kernel made: its messages carry the header with BOUNDED too */
static uint32_t qflags_of(uint32_t flags)
{
	return flags & FZ_FAULT_BOUNDED ? flags | FZ_FAULT_HEADER : flags;
}

/* ---- Contexts and objects ---- */

int open_ctx(struct thr *t)
{
	int fd, c;

	logc(t, "open(/dev/iommu)");
	arm(t);
	fd = open("/dev/iommu", O_RDWR);
	disarm(t);
	logr(t, fd);
	if (fd < 0)
		return -1;
	/*
	 * Not closed again here if the table has no room: by now another
	 * thread may have the number, and its close would go behind the
	 * table's back
	 */
	c = ctx_new(t->p, fd);
	return c;
}

static void c_ioas_alloc(struct thr *t, int ctx)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) }, *ptr;
	enum place pl;
	size_t room;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	if (one_in(t, 20))
		cmd.size = pick_size(t, sizeof(cmd), sizeof(cmd));
	ptr = place(t, &cmd, sizeof(cmd), &room, &pl, true);
	logc(t, "IOAS_ALLOC(ctx%d size=%u)%s", ctx, cmd.size, place_name(pl));
	if (!xioctl(t, fd, IOMMU_IOAS_ALLOC, ptr)) {
		fetch(&cmd, ptr, sizeof(cmd), pl);
		obj_add(t->p, O_IOAS, ctx, cmd.out_ioas_id, 0, 0, 0);
	}
	fd_release(t->p, s);
}

static int test_cmd(struct thr *t, int fd, struct fz_test_cmd *cmd,
		    enum place *pl, bool odd)
{
	size_t room;
	void *ptr = place(t, cmd, sizeof(*cmd), &room, pl, odd);
	int rc;

	rc = xioctl(t, fd, IOMMU_TEST_CMD, ptr);
	if (!rc)
		fetch(cmd, ptr, sizeof(*cmd), *pl);
	return rc;
}

/* The @size of an IOMMU_TEST_CMD: mostly the header's */
static uint32_t test_size(struct thr *t)
{
	return one_in(t, 30) ? pick_size(t, offsetof(struct fz_test_cmd, last) + 4,
					  sizeof(struct fz_test_cmd)) :
			       sizeof(struct fz_test_cmd);
}

static void c_mock_device(struct thr *t, int ctx, bool valid)
{
	static const uint32_t fl[] = { FZ_MOCK_PASID, FZ_MOCK_PASID, 0,
				       FZ_MOCK_NO_IOPF,
				       FZ_MOCK_NO_IOPF | FZ_MOCK_PASID,
				       FZ_MOCK_NO_DIRTY | FZ_MOCK_PASID };
	struct fz_test_cmd cmd = {
		.size = valid ? sizeof(cmd) : test_size(t),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
	};
	struct obj o;
	enum place pl;
	uint32_t pt;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	if (obj_pick(t, O_IOAS, ctx, &o) && (valid || !one_in(t, 5)))
		cmd.id = o.id;
	else
		cmd.id = id_pick(t, O_HWPT, ctx);
	cmd.mock_domain.dev_flags = !valid && one_in(t, 30) ?
		rnd_u32_boundary(t) : fl[rnd_n(t, sizeof(fl) / sizeof(fl[0]))];
	logc(t, "MOCK_DOMAIN_FLAGS(ctx%d pt=%u flags=%#x)", ctx, cmd.id,
	     cmd.mock_domain.dev_flags);
	pt = cmd.id;
	if (!test_cmd(t, fd, &cmd, &pl, !valid)) {
		obj_add(t->p, O_DEV, ctx, cmd.mock_domain.out_stdev_id,
			cmd.mock_domain.out_idev_id,
			cmd.mock_domain.out_hwpt_id, cmd.mock_domain.dev_flags);
		if (cmd.mock_domain.out_hwpt_id != pt)
			auto_add(t->p, ctx, cmd.mock_domain.out_hwpt_id);
	}
	fd_release(t->p, s);
}

/* Somewhere to attach a device: mostly an HWPT with a fault queue */
static uint32_t pick_pt(struct thr *t, int ctx)
{
	struct obj o;
	uint32_t r = rnd_n(t, 100);

	if (r < 45) {
		/* Prefer an HWPT that reports faults */
		int tries = 4;

		while (tries-- && obj_pick(t, O_HWPT, ctx, &o))
			if (o.flags & H_FAULT)
				return o.id;
	}
	if (r < 75 && obj_pick(t, O_HWPT, ctx, &o))
		return o.id;
	if (r < 90 && obj_pick(t, O_IOAS, ctx, &o))
		return o.id;
	return id_pick(t, O_HWPT, ctx);
}

static void c_replace(struct thr *t, int ctx)
{
	struct fz_test_cmd cmd = {
		.size = test_size(t),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
	};
	struct obj d;
	enum place pl;
	uint32_t pt;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	cmd.id = obj_pick(t, O_DEV, ctx, &d) && !one_in(t, 20) ?
			 d.id : id_pick(t, O_DEV, ctx);
	cmd.replace.pt_id = pick_pt(t, ctx);
	logc(t, "MOCK_DOMAIN_REPLACE(ctx%d stdev=%u pt=%u)", ctx, cmd.id,
	     cmd.replace.pt_id);
	pt = cmd.replace.pt_id;
	if (!test_cmd(t, fd, &cmd, &pl, true)) {
		if (cmd.replace.pt_id != pt)
			auto_add(t->p, ctx, cmd.replace.pt_id);
	} else if (errno == EFAULT) {
		auto_maybe(t->p, ctx);
	}
	fd_release(t->p, s);
}

static uint32_t pick_pasid(struct thr *t)
{
	uint32_t r = rnd_n(t, 100);

	if (r < 80)
		return 1 + rnd_n(t, 3);
	if (r < 90)
		return 1024;	/* IOMMU_TEST_PASID_RESERVED */
	if (r < 95)
		return (1u << 20) - 1 + rnd_n(t, 2);
	return rnd_u32_boundary(t);
}

static void c_pasid(struct thr *t, int ctx)
{
	static const uint32_t ops[] = { IOMMU_TEST_OP_PASID_ATTACH,
					IOMMU_TEST_OP_PASID_REPLACE,
					IOMMU_TEST_OP_PASID_DETACH };
	static const char *const name[] = { "ATTACH", "REPLACE", "DETACH" };
	struct fz_test_cmd cmd = { .size = test_size(t) };
	unsigned int k = rnd_n(t, 3);
	struct obj d;
	enum place pl;
	uint32_t pt;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	cmd.op = ops[k];
	cmd.id = obj_pick(t, O_DEV, ctx, &d) ? d.id : id_pick(t, O_DEV, ctx);
	cmd.pasid.pasid = pick_pasid(t);
	cmd.pasid.pt_id = k == 2 ? 0 : pick_pt(t, ctx);
	logc(t, "PASID_%s(ctx%d stdev=%u pasid=%u pt=%u)", name[k], ctx,
	     cmd.id, cmd.pasid.pasid, cmd.pasid.pt_id);
	pt = cmd.pasid.pt_id;
	if (!test_cmd(t, fd, &cmd, &pl, true)) {
		if (k != 2 && cmd.pasid.pt_id != pt)
			auto_add(t->p, ctx, cmd.pasid.pt_id);
	} else if (k != 2 && errno == EFAULT) {
		auto_maybe(t->p, ctx);
	}
	fd_release(t->p, s);
}

/*
 * IOMMU_HWPT_ALLOC: a nesting parent, a plain paging HWPT, or a nested one
 * on a parent or a vIOMMU, reporting to a fault queue given by id
 * (FAULT_ID_VALID) or made with it (v3's IOPF_CAPABLE, one step)
 */
static void c_hwpt_alloc(struct thr *t, int ctx, int want)
{
	struct fz_hwpt_alloc cmd = { 0 }, *ptr;
	int s, es = -1, fd = ctx_fd(t, ctx, &s);
	uint32_t kind = want >= 0 ? (uint32_t)want : rnd_n(t, 4), hflags = 0;
	bool valid = want >= 0;
	struct obj o;
	enum place pl;
	size_t room;

	if (fd < 0)
		return;
	cmd.dev_id = id_pick(t, O_DEV, ctx);
	if (kind < 2) {
		/* 0: a nesting parent, 1: plain paging */
		cmd.pt_id = obj_pick(t, O_IOAS, ctx, &o) ? o.id :
			    id_pick(t, O_IOAS, ctx);
		cmd.flags = kind == 0 ? FZ_HWPT_NEST_PARENT : 0;
		hflags = kind == 0 ? H_PARENT : 0;
	} else {
		/* Nested, on a vIOMMU or on a nesting parent */
		if (one_in(t, 2) && obj_pick(t, O_VIOMMU, ctx, &o))
			cmd.pt_id = o.id;
		for (int i = 0; i < 4 && !cmd.pt_id; i++)
			if (obj_pick(t, O_HWPT, ctx, &o) &&
			    (o.flags & H_PARENT))
				cmd.pt_id = o.id;
		if (!cmd.pt_id || one_in(t, 10))
			cmd.pt_id = id_pick(t, O_HWPT, ctx);
		cmd.data_type = FZ_HWPT_DATA_SELFTEST;
		cmd.data_len = sizeof(s1_data);
		cmd.data_uptr = (uintptr_t)&s1_data;
		hflags = H_NESTED;
		if (!valid && one_in(t, 20))
			cmd.data_len = rnd_u32_boundary(t) & 0xffff;
	}
	if (one_in(t, 4)) {
		cmd.flags |= FZ_HWPT_PASID;
		hflags |= H_PASID;
	}
	cmd.size = FZ_HWPT_SIZE_73;
	/* A fault queue: by id, or one step */
	if (kind == 3 || (kind != 0 && one_in(t, 3))) {
		if (one_in(t, 2)) {
			cmd.flags |= FZ_HWPT_FAULT_ID_VALID;
			cmd.fault_id = id_pick(t, O_FAULT, ctx);
		} else {
			cmd.flags |= FZ_HWPT_IOPF_CAPABLE;
			cmd.size = sizeof(cmd);
			cmd.fault_flags = pick_fault_flags(t);
			if (cmd.fault_flags & FZ_FAULT_EVENTFD || one_in(t, 20))
				cmd.fault_eventfd = pick_eventfd(t, ctx, &es);
			if (cmd.fault_flags & FZ_FAULT_BOUNDED || one_in(t, 20))
				cmd.fault_depth = pick_depth(t);
			if (!valid && one_in(t, 15))
				cmd.flags |= FZ_HWPT_FAULT_ID_VALID;
		}
		hflags |= H_FAULT;
	}
	if (!valid) {
		if (one_in(t, 6))
			cmd.size = pick_size(t, FZ_HWPT_SIZE_73, sizeof(cmd));
		if (one_in(t, 30))
			cmd.flags = rnd_u32_boundary(t);
		if (one_in(t, 30))
			cmd.__reserved3 = 1;
		if (one_in(t, 40))
			cmd.__reserved = 1;
	}
	ptr = place(t, &cmd, sizeof(cmd), &room, &pl, !valid);
	logc(t, "HWPT_ALLOC(ctx%d size=%u flags=%#x dev=%u pt=%u type=%#x fault_id=%u fault_flags=%#x efd=%d depth=%u)%s",
	     ctx, cmd.size, cmd.flags, cmd.dev_id, cmd.pt_id, cmd.data_type,
	     cmd.fault_id, cmd.fault_flags, cmd.fault_eventfd, cmd.fault_depth,
	     place_name(pl));
	if (!xioctl(t, fd, IOMMU_HWPT_ALLOC, ptr)) {
		fetch(&cmd, ptr, sizeof(cmd), pl);
		obj_add(t->p, O_HWPT, ctx, cmd.out_hwpt_id, 0, 0, hflags);
		if ((cmd.flags & FZ_HWPT_IOPF_CAPABLE) &&
		    cmd.size >= sizeof(cmd)) {
			obj_add(t->p, O_FAULT, ctx, cmd.out_fault_id, 0, 0,
				qflags_of(cmd.fault_flags));
			fd_add(t->p, cmd.out_fault_fd, F_FAULT, ctx,
			       cmd.out_fault_id, qflags_of(cmd.fault_flags));
		}
	}
	fd_release(t->p, es);
	fd_release(t->p, s);
}

static void c_viommu_alloc(struct thr *t, int ctx, bool valid)
{
	struct iommu_viommu_alloc cmd = {
		.size = sizeof(cmd),
		.type = FZ_VIOMMU_TYPE_SELFTEST,
	}, *ptr;
	struct obj o;
	enum place pl;
	size_t room;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	cmd.dev_id = id_pick(t, O_DEV, ctx);
	cmd.hwpt_id = 0;
	for (int i = 0; i < 4 && !cmd.hwpt_id; i++)
		if (obj_pick(t, O_HWPT, ctx, &o) && (o.flags & H_PARENT))
			cmd.hwpt_id = o.id;
	if (!cmd.hwpt_id || (!valid && one_in(t, 10)))
		cmd.hwpt_id = id_pick(t, O_HWPT, ctx);
	if (!valid) {
		if (one_in(t, 10))
			cmd.type = one_in(t, 2) ? 1 : rnd_u32_boundary(t);
		if (one_in(t, 20))
			cmd.size = pick_size(t, sizeof(cmd), sizeof(cmd));
		if (one_in(t, 30))
			cmd.flags = rnd_u32_boundary(t);
	}
	ptr = place(t, &cmd, sizeof(cmd), &room, &pl, !valid);
	logc(t, "VIOMMU_ALLOC(ctx%d size=%u type=%#x dev=%u hwpt=%u)%s", ctx,
	     cmd.size, cmd.type, cmd.dev_id, cmd.hwpt_id, place_name(pl));
	if (!xioctl(t, fd, IOMMU_VIOMMU_ALLOC, ptr)) {
		fetch(&cmd, ptr, sizeof(cmd), pl);
		obj_add(t->p, O_VIOMMU, ctx, cmd.out_viommu_id, 0, 0, 0);
	}
	fd_release(t->p, s);
}

static void c_vdevice_alloc(struct thr *t, int ctx, bool valid)
{
	struct iommu_vdevice_alloc cmd = { .size = sizeof(cmd) }, *ptr;
	enum place pl;
	size_t room;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	cmd.viommu_id = id_pick(t, O_VIOMMU, ctx);
	cmd.dev_id = id_pick(t, O_DEV, ctx);
	cmd.virt_id = one_in(t, 8) ? ((uint64_t)rnd(t) << 32 | rnd(t)) :
				     1 + rnd_n(t, 0x1000);
	if (!valid && one_in(t, 20))
		cmd.size = pick_size(t, sizeof(cmd), sizeof(cmd));
	ptr = place(t, &cmd, sizeof(cmd), &room, &pl, !valid);
	logc(t, "VDEVICE_ALLOC(ctx%d size=%u viommu=%u dev=%u virt=%#llx)%s",
	     ctx, cmd.size, cmd.viommu_id, cmd.dev_id,
	     (unsigned long long)cmd.virt_id, place_name(pl));
	if (!xioctl(t, fd, IOMMU_VDEVICE_ALLOC, ptr)) {
		fetch(&cmd, ptr, sizeof(cmd), pl);
		obj_add(t->p, O_VDEV, ctx, cmd.out_vdevice_id,
			(uint32_t)cmd.virt_id, 0, 0);
	}
	fd_release(t->p, s);
}

static void c_fault_alloc(struct thr *t, int ctx, bool valid)
{
	struct fz_fault_alloc cmd = { 0 }, *ptr;
	int s, es = -1, fd = ctx_fd(t, ctx, &s);
	enum place pl;
	size_t room;

	if (fd < 0)
		return;
	cmd.flags = valid ? pick_fault_flags(t) & 7 : pick_fault_flags(t);
	cmd.size = cmd.flags ? sizeof(cmd) : (one_in(t, 2) ? 16 : 24);
	if (cmd.flags & FZ_FAULT_EVENTFD || (!valid && one_in(t, 20)))
		cmd.eventfd = pick_eventfd(t, ctx, &es);
	if (cmd.flags & FZ_FAULT_BOUNDED || (!valid && one_in(t, 20)))
		cmd.depth = valid ? 1 + rnd_n(t, 300) : pick_depth(t);
	if (!valid && one_in(t, 6))
		cmd.size = pick_size(t, 16, sizeof(cmd));
	ptr = place(t, &cmd, sizeof(cmd), &room, &pl, !valid);
	logc(t, "FAULT_QUEUE_ALLOC(ctx%d size=%u flags=%#x eventfd=%d depth=%u)%s",
	     ctx, cmd.size, cmd.flags, cmd.eventfd, cmd.depth,
	     place_name(pl));
	if (!xioctl(t, fd, IOMMU_FAULT_QUEUE_ALLOC, ptr)) {
		fetch(&cmd, ptr, sizeof(cmd), pl);
		obj_add(t->p, O_FAULT, ctx, cmd.out_fault_id, 0, 0,
			qflags_of(cmd.flags));
		fd_add(t->p, cmd.out_fault_fd, F_FAULT, ctx, cmd.out_fault_id,
		       qflags_of(cmd.flags));
	}
	fd_release(t->p, es);
	fd_release(t->p, s);
}

static void c_veventq_alloc(struct thr *t, int ctx, bool valid)
{
	struct fz_veventq_alloc cmd = {
		.type = FZ_VEVENTQ_TYPE_SELFTEST,
	}, *ptr;
	int s, es = -1, fd = ctx_fd(t, ctx, &s);
	enum place pl;
	size_t room;

	if (fd < 0)
		return;
	cmd.viommu_id = id_pick(t, O_VIOMMU, ctx);
	cmd.veventq_depth = valid ? 1 + rnd_n(t, 300) : pick_depth(t);
	cmd.flags = one_in(t, 2) ? FZ_VEVENTQ_EVENTFD : 0;
	cmd.size = cmd.flags || one_in(t, 2) ? sizeof(cmd) : 32;
	if (cmd.flags || (!valid && one_in(t, 20)))
		cmd.eventfd = pick_eventfd(t, ctx, &es);
	if (!valid) {
		if (one_in(t, 10))
			cmd.type = (uint32_t[]){ 0, 1, 3, 0xffffffff,
						 rnd(t) }[rnd_n(t, 5)];
		if (one_in(t, 30))
			cmd.flags = rnd_u32_boundary(t);
		if (one_in(t, 30))
			cmd.__reserved = 1;
		if (one_in(t, 30))
			cmd.__reserved2 = 1;
		if (one_in(t, 6))
			cmd.size = pick_size(t, 32, sizeof(cmd));
	}
	ptr = place(t, &cmd, sizeof(cmd), &room, &pl, !valid);
	logc(t, "VEVENTQ_ALLOC(ctx%d size=%u flags=%#x viommu=%u type=%#x depth=%u eventfd=%d)%s",
	     ctx, cmd.size, cmd.flags, cmd.viommu_id, cmd.type,
	     cmd.veventq_depth, cmd.eventfd, place_name(pl));
	if (!xioctl(t, fd, IOMMU_VEVENTQ_ALLOC, ptr)) {
		fetch(&cmd, ptr, sizeof(cmd), pl);
		obj_add(t->p, O_VEVENTQ, ctx, cmd.out_veventq_id,
			cmd.viommu_id, 0, 0);
		fd_add(t->p, cmd.out_veventq_fd, F_VEVENTQ, ctx,
		       cmd.out_veventq_id, 0);
	}
	fd_release(t->p, es);
	fd_release(t->p, s);
}

static void c_destroy(struct thr *t, int ctx)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd) };
	uint64_t before;
	struct obj o;
	enum place pl;
	size_t room;
	void *ptr;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	if (obj_pick(t, rnd_n(t, NR_OKIND), ctx, &o) && !one_in(t, 10))
		cmd.id = o.id;	/* a device goes by its selftest object */
	else
		cmd.id = id_pick(t, rnd_n(t, NR_OKIND), ctx);
	if (one_in(t, 30))
		cmd.size = pick_size(t, sizeof(cmd), sizeof(cmd));
	ptr = place(t, &cmd, sizeof(cmd), &room, &pl, true);
	logc(t, "DESTROY(ctx%d id=%u)%s", ctx, cmd.id, place_name(pl));
	before = obj_seq(t->p);
	if (!xioctl(t, fd, IOMMU_DESTROY, ptr))
		obj_gone(t->p, ctx, cmd.id, before);
	fd_release(t->p, s);
}

/* ---- The mock's triggers ---- */

static void c_trigger_iopf(struct thr *t, int ctx)
{
	struct fz_test_cmd cmd = {
		.size = test_size(t),
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
	};
	enum place pl;
	uint32_t r = rnd_n(t, 100);
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	cmd.trigger_iopf.dev_id = id_pick(t, O_DEV, ctx);
	cmd.trigger_iopf.pasid = one_in(t, 3) ? pick_pasid(t) : 0;
	cmd.trigger_iopf.grpid = one_in(t, 20) ? rnd(t) : rnd_n(t, 512);
	cmd.trigger_iopf.perm = one_in(t, 10) ? rnd(t) : 1 + rnd_n(t, 3);
	cmd.trigger_iopf.addr = (uint64_t)rnd(t) << 12;
	cmd.trigger_iopf.nfaults = r < 50 ? 1 : r < 80 ? rnd_n(t, 5) :
				   r < 95 ? rnd_n(t, 64) :
				   (uint32_t[]){ 255, 256, 257, 0xffffffff,
						 rnd(t) }[rnd_n(t, 5)];
	if (one_in(t, 50))
		cmd.trigger_iopf.__reserved = 1;
	logc(t, "TRIGGER_IOPF(ctx%d dev=%u pasid=%u grpid=%u perm=%#x nfaults=%u)",
	     ctx, cmd.trigger_iopf.dev_id, cmd.trigger_iopf.pasid,
	     cmd.trigger_iopf.grpid, cmd.trigger_iopf.perm,
	     cmd.trigger_iopf.nfaults);
	test_cmd(t, fd, &cmd, &pl, one_in(t, 10));
	fd_release(t->p, s);
}

static void c_trigger_vevent(struct thr *t, int ctx)
{
	struct fz_test_cmd cmd = {
		.size = test_size(t),
		.op = IOMMU_TEST_OP_TRIGGER_VEVENT,
	};
	enum place pl;
	uint32_t r = rnd_n(t, 1000);
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	cmd.trigger_vevent.dev_id = id_pick(t, O_DEV, ctx);
	/*
	 * Mostly a few; in bulk, past any depth; the mock's most (1 << 20)
	 * and one more only with --big: under TCG a million vEVENTs hold the
	 * device for minutes
	 */
	cmd.trigger_vevent.count = r < 600 ? rnd_n(t, 4) :
				   r < 900 ? rnd_n(t, 128) :
				   r < 990 ? rnd_n(t, 4096) :
				   r < 998 || !sh->o.big ? 16384 :
				   (1u << 20) + rnd_n(t, 2);
	logc(t, "TRIGGER_VEVENT(ctx%d dev=%u count=%u)", ctx,
	     cmd.trigger_vevent.dev_id, cmd.trigger_vevent.count);
	test_cmd(t, fd, &cmd, &pl, one_in(t, 10));
	fd_release(t->p, s);
}

int mock_counters_sum(int fd, uint64_t c[4])
{
	struct fz_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_IOPF_COUNTERS,
	};

	if (ioctl(fd, IOMMU_TEST_CMD, &cmd))
		return -errno;
	c[0] = cmd.counters.out_groups;
	c[1] = cmd.counters.out_success;
	c[2] = cmd.counters.out_invalid;
	c[3] = cmd.counters.out_failure;
	return 0;
}

static void c_counters(struct thr *t, int ctx)
{
	struct fz_test_cmd cmd = {
		.size = test_size(t),
		.op = IOMMU_TEST_OP_IOPF_COUNTERS,
	};
	enum place pl;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	cmd.counters.dev_id = one_in(t, 4) ? 0 : id_pick(t, O_DEV, ctx);
	if (one_in(t, 40))
		cmd.counters.__reserved = 1;
	logc(t, "IOPF_COUNTERS(ctx%d dev=%u)", ctx, cmd.counters.dev_id);
	test_cmd(t, fd, &cmd, &pl, true);
	fd_release(t->p, s);
}

/* The cookie generation or the sequence number of a queue, to a boundary */
static void c_set(struct thr *t, int ctx)
{
	static const uint32_t gens[] = { 0, 1, 0x1fffe, 0x1ffff, 0x20000,
					 0xffffffff };
	static const uint32_t seqs[] = { 0, 1, 0x7ffffffd, 0x7ffffffe,
					 0x7fffffff, 0x80000000, 0xffffffff };
	struct fz_test_cmd cmd = { .size = test_size(t) };
	bool gen = one_in(t, 2);
	enum place pl;
	int s, fd = ctx_fd(t, ctx, &s);

	if (fd < 0)
		return;
	cmd.op = gen ? IOMMU_TEST_OP_FAULT_COOKIE_GEN :
		       IOMMU_TEST_OP_EVENTQ_SEQUENCE;
	cmd.id = id_pick(t, gen || one_in(t, 2) ? O_FAULT : O_VEVENTQ, ctx);
	cmd.set.value = one_in(t, 5) ? rnd(t) :
			gen ? gens[rnd_n(t, 6)] : seqs[rnd_n(t, 7)];
	logc(t, "%s(ctx%d id=%u value=%#x)",
	     gen ? "FAULT_COOKIE_GEN" : "EVENTQ_SEQUENCE", ctx, cmd.id,
	     cmd.set.value);
	test_cmd(t, fd, &cmd, &pl, true);
	fd_release(t->p, s);
}

/* ---- read(), write(), poll() and friends on the queues' fds ---- */

#define RBUF_OFF	4096	/* reads and writes use the arena after page 0 */
#define CANARY		0xa5
#define SLACK		64

/*
 * A buffer for a read of *@countp bytes: normally with SLACK canary bytes
 * after it, misaligned, ending at the guard page (the kernel can copy only
 * *@room bytes), read-only, or NULL. *@countp is lowered to what fits in
 * the arena with the canaries, misaligned or not.
 */
static uint8_t *read_buf(struct thr *t, size_t *countp, size_t *room,
			 enum place *pl)
{
	size_t max = ARENA_RW - RBUF_OFF - SLACK - 8, count;
	uint32_t r = rnd_n(t, 100);
	uint8_t *b;

	if (*countp > max)
		*countp = max;
	count = *countp;
	if (r < 80) {
		*pl = r < 72 ? PL_NORMAL : PL_MISALIGN;
		b = t->arena + RBUF_OFF + (*pl == PL_MISALIGN ? 1 + rnd_n(t, 7) : 0);
		memset(b, CANARY, count + SLACK);
		*room = count;
		return b;
	}
	if (r < 92) {
		/* Only part of it is there: the guard page follows */
		size_t have = count ? rnd_n(t, count) : 0;

		*pl = PL_END;
		*room = have;
		b = t->arena + ARENA_RW - have;
		memset(b, CANARY, have);
		return b;
	}
	if (r < 97) {
		*pl = PL_RO;
		*room = 0;
		return t->ro;
	}
	*pl = PL_NULL;
	*room = 0;
	return NULL;
}

/* Whatever the arguments, a read stays within its buffer */
static bool read_bounds(struct thr *t, const char *what, const uint8_t *b,
			size_t count, size_t room, enum place pl, ssize_t ret)
{
	size_t i;

	if (ret < 0)
		return false;
	if ((size_t)ret > count || (size_t)ret > room) {
		fail(t, "%s: read(%zu) returned %zd (only %zu bytes there)",
		     what, count, ret, room);
		return false;
	}
	if (pl == PL_NORMAL || pl == PL_MISALIGN) {
		for (i = count; i < count + SLACK; i++) {
			if (b[i] != CANARY) {
				fail(t, "%s: read(%zu) = %zd wrote byte %zu past the buffer",
				     what, count, ret, i - count);
				return false;
			}
		}
	}
	return pl != PL_RO && pl != PL_NULL;
}

/* Read sizes around the messages' sizes */
static size_t pick_count(struct thr *t, size_t msg)
{
	static const size_t v[] = { 0, 1, 4, 7, 8, 9, 12, 15, 16, 17, 24, 32,
				    39, 40, 41, 47, 48, 49, 55, 56, 57, 64, 80,
				    95, 96, 97, 4096, 8192 };
	uint32_t r = rnd_n(t, 100);

	if (r < 50)
		return msg * (1 + rnd_n(t, one_in(t, 4) ? 300 : 8));
	if (r < 90)
		return v[rnd_n(t, sizeof(v) / sizeof(v[0]))];
	return rnd_n(t, ARENA_RW - RBUF_OFF);
}

/*
 * What a fault queue read returned: whole groups of messages (with the
 * header if the queue has it), every group's messages with one cookie and
 * the last with LAST_PAGE, consecutive sequence numbers within a group,
 * zeroed reserved fields. The cookies go to the table for answers.
 */
static void check_faults(struct thr *t, int slot, const struct fdent *f,
			 const uint8_t *b, size_t len)
{
	bool header = f->qflags & FZ_FAULT_HEADER;
	size_t msg = sizeof(struct fz_pgfault) + (header ? 8 : 0), off = 0;
	uint32_t cookie = 0, seq = 0;
	bool open = false;

	if (!header && len % msg) {
		fail(t, "fault read returned %zu bytes, not whole messages", len);
		return;
	}
	while (off < len) {
		struct fz_hdr h = { 0 };
		struct fz_pgfault m;

		if (header) {
			if (len - off < sizeof(h)) {
				fail(t, "fault read: %zu bytes left, less than a header",
				     len - off);
				return;
			}
			memcpy(&h, b + off, sizeof(h));
			off += sizeof(h);
			if (h.flags & ~FZ_LOST_EVENTS) {
				fail(t, "fault read: header flags %#x", h.flags);
				return;
			}
			if (h.flags & FZ_LOST_EVENTS) {
				if (open) {
					fail(t, "fault read: LOST_EVENTS inside a group");
					return;
				}
				continue;
			}
			if (open && h.sequence != ((seq + 1) & 0x7fffffff)) {
				fail(t, "fault read: sequence %u after %u within a group",
				     h.sequence, seq);
				return;
			}
			seq = h.sequence;
		}
		if (len - off < sizeof(m)) {
			fail(t, "fault read: a message cut at %zu of %zu bytes",
			     len - off, sizeof(m));
			return;
		}
		memcpy(&m, b + off, sizeof(m));
		off += sizeof(m);
		if (!m.cookie || m.__reserved || m.length ||
		    (m.flags & ~(FZ_PGFAULT_PASID_VALID | FZ_PGFAULT_LAST_PAGE))) {
			fail(t, "fault read: bad message (flags %#x cookie %u reserved %u length %u)",
			     m.flags, m.cookie, m.__reserved, m.length);
			return;
		}
		if (open && m.cookie != cookie) {
			fail(t, "fault read: cookie %u inside the group of cookie %u",
			     m.cookie, cookie);
			return;
		}
		cookie = m.cookie;
		open = !(m.flags & FZ_PGFAULT_LAST_PAGE);
		if (!open) {
			cookie_add(t->p, slot, cookie);
			atomic_fetch_add(&sh->st.groups_read, 1);
		}
	}
	if (open)
		fail(t, "fault read: the last group has no LAST_PAGE message (not whole)");
}

static void c_read_fault(struct thr *t)
{
	struct fdent f;
	int slot = fd_acquire(t, 1 << F_FAULT, -1, &f);
	size_t count, room, msg;
	enum place pl;
	uint8_t *b;
	ssize_t ret;

	if (slot < 0)
		return;
	msg = sizeof(struct fz_pgfault) +
	      (f.qflags & FZ_FAULT_HEADER ? sizeof(struct fz_hdr) : 0);
	count = pick_count(t, msg);
	b = read_buf(t, &count, &room, &pl);
	logc(t, "read(fault fd %d [flags %#x], %zu)%s", f.fd, f.qflags, count,
	     place_name(pl));
	arm(t);
	ret = read(f.fd, b, count);
	disarm(t);
	logr(t, ret);
	if (read_bounds(t, "fault fd", b, count, room, pl, ret))
		check_faults(t, slot, &f, b, ret);
	/*
	 * A legacy queue takes only whole messages: a count that is not one
	 * is refused, whatever is queued, as 7.3 does
	 */
	if (!(f.qflags & FZ_FAULT_HEADER) &&
	    count % sizeof(struct fz_pgfault) && ret >= 0 &&
	    !t->injected)
		fail(t, "fault read(%zu) of a legacy queue returned %zd, not ESPIPE",
		     count, ret);
	if ((f.qflags & FZ_FAULT_HEADER) && count < 8 && ret >= 0)
		fail(t, "fault read(%zu) shorter than a header returned %zd, not EINVAL",
		     count, ret);
	fd_release(t->p, slot);
}

static void c_write_fault(struct thr *t)
{
	struct fz_response resp[40];
	struct fdent f;
	int slot = fd_acquire(t, 1 << F_FAULT, -1, &f), n, i;
	uint32_t r = rnd_n(t, 100);
	size_t count, room;
	enum place pl;
	uint8_t *b;
	ssize_t ret;

	if (slot < 0)
		return;
	/* Across the kernel's batch of 16 answers now and then */
	n = r < 70 ? 1 + rnd_n(t, 3) : r < 90 ? rnd_n(t, 16) :
	    16 + rnd_n(t, 24);
	for (i = 0; i < n; i++) {
		uint32_t c = rnd_n(t, 100);

		resp[i].cookie = cookie_pick(t, slot);
		resp[i].code = c < 65 ? 0 : c < 95 ? 1 :
			       (uint32_t[]){ 2, 3, 0xffffffff,
					     rnd(t) }[rnd_n(t, 4)];
	}
	count = n * sizeof(resp[0]);
	if (one_in(t, 12))
		count += 1 + rnd_n(t, 7);
	if (count > sizeof(resp))
		count = sizeof(resp);
	/* Answers come from the arena: normal, misaligned, cut, read-only */
	r = rnd_n(t, 100);
	if (r < 85) {
		pl = PL_NORMAL;
		b = t->arena + RBUF_OFF + (r < 80 ? 0 : 1 + rnd_n(t, 7));
		room = count;
	} else if (r < 93) {
		pl = PL_END;
		room = count ? rnd_n(t, count) : 0;
		b = t->arena + ARENA_RW - room;
	} else if (r < 98) {
		pl = PL_RO;
		room = count;
		b = t->ro;
	} else {
		pl = PL_NULL;
		room = 0;
		b = NULL;
	}
	if (pl == PL_RO)
		memcpy(t->arena, resp, count);
	else if (b)
		memcpy(b, resp, room < count ? room : count);
	logc(t, "write(fault fd %d, %zu: cookie %u code %u%s)%s", f.fd, count,
	     n ? resp[0].cookie : 0, n ? resp[0].code : 0,
	     n > 1 ? " ..." : "", place_name(pl));
	arm(t);
	ret = write(f.fd, b, count);
	disarm(t);
	logr(t, ret);
	if (ret >= 0) {
		if ((size_t)ret > count || ret % sizeof(resp[0]) ||
		    (size_t)ret > room) {
			fail(t, "fault write(%zu) returned %zd (%zu bytes there)",
			     count, ret, room);
		} else {
			for (i = 0; i < ret / (ssize_t)sizeof(resp[0]); i++) {
				if (resp[i].code > 1)
					fail(t, "fault write took code %u (cookie %u)",
					     resp[i].code, resp[i].cookie);
				cookie_answered(t->p, resp[i].cookie);
			}
			atomic_fetch_add(&sh->st.answers,
					 ret / sizeof(resp[0]));
		}
	}
	if (count % sizeof(resp[0]) && ret >= 0)
		fail(t, "fault write(%zu), not whole answers, returned %zd",
		     count, ret);
	fd_release(t->p, slot);
}

/* What a vEVENTQ read returned: headers, each with its payload */
static void check_vevents(struct thr *t, const uint8_t *b, size_t len)
{
	size_t off = 0;

	while (off < len) {
		struct fz_hdr h;

		if (len - off < sizeof(h)) {
			fail(t, "vEVENTQ read: %zu bytes left, less than a header",
			     len - off);
			return;
		}
		memcpy(&h, b + off, sizeof(h));
		off += sizeof(h);
		if (h.flags & ~FZ_LOST_EVENTS) {
			fail(t, "vEVENTQ read: header flags %#x", h.flags);
			return;
		}
		if (h.flags & FZ_LOST_EVENTS)
			continue;
		/* The mock's vEVENT: a 4-byte virt_id */
		if (len - off < 4) {
			fail(t, "vEVENTQ read: a vEVENT cut at %zu bytes",
			     len - off);
			return;
		}
		off += 4;
		atomic_fetch_add(&sh->st.vevents_read, 1);
	}
}

static void c_read_veventq(struct thr *t)
{
	struct fdent f;
	int slot = fd_acquire(t, 1 << F_VEVENTQ, -1, &f);
	size_t count, room;
	enum place pl;
	uint8_t *b;
	ssize_t ret;

	if (slot < 0)
		return;
	count = pick_count(t, 12);
	b = read_buf(t, &count, &room, &pl);
	logc(t, "read(veventq fd %d, %zu)%s", f.fd, count, place_name(pl));
	arm(t);
	ret = read(f.fd, b, count);
	disarm(t);
	logr(t, ret);
	if (read_bounds(t, "vEVENTQ fd", b, count, room, pl, ret))
		check_vevents(t, b, ret);
	if (count < 8 && ret >= 0)
		fail(t, "vEVENTQ read(%zu) shorter than a header returned %zd, not EINVAL",
		     count, ret);
	fd_release(t->p, slot);
}

static void c_poll(struct thr *t)
{
	struct pollfd pfd[3];
	int slots[3], n = 1 + rnd_n(t, 3), i, k = 0, to, rc;
	struct fdent f;
	char desc[64] = "";

	for (i = 0; i < n; i++) {
		slots[k] = fd_acquire(t, one_in(t, 4) ? (1 << NR_FKIND) - 1 :
					  (1 << F_FAULT) | (1 << F_VEVENTQ) |
					  (1 << F_EVENTFD), -1, &f);
		if (slots[k] < 0)
			continue;
		pfd[k].fd = f.fd;
		pfd[k].events = one_in(t, 4) ? POLLIN | POLLOUT : POLLIN;
		snprintf(desc + strlen(desc), sizeof(desc) - strlen(desc),
			 "%s%d", k ? "," : "", f.fd);
		k++;
	}
	if (!k)
		return;
	to = one_in(t, 8) ? 1 + rnd_n(t, 5) : 0;
	logc(t, "poll(%s, %d ms)", desc, to);
	arm(t);
	rc = poll(pfd, k, to);
	disarm(t);
	logr(t, rc);
	for (i = 0; i < k; i++)
		fd_release(t->p, slots[i]);
}

static void c_eventfd(struct thr *t)
{
	struct fdent f;
	uint64_t v = 1;
	int slot, fd;

	switch (rnd_n(t, 4)) {
	case 0:
		logc(t, "eventfd()");
		fd = eventfd(0, EFD_NONBLOCK | (one_in(t, 4) ? EFD_SEMAPHORE : 0));
		logr(t, fd);
		fd_add(t->p, fd, F_EVENTFD, 0, 0, 0);
		return;
	case 1:
	case 2:
		slot = fd_acquire(t, 1 << F_EVENTFD, -1, &f);
		if (slot < 0) {
			c_eventfd(t);
			return;
		}
		logc(t, "read(eventfd %d, 8)", f.fd);
		logr(t, read(f.fd, &v, sizeof(v)));
		fd_release(t->p, slot);
		return;
	default:
		/* Something that is not an eventfd, for eventfd fields */
		if (one_in(t, 2)) {
			int p[2];

			logc(t, "pipe()");
			if (!logr(t, pipe2(p, O_NONBLOCK))) {
				fd_add(t->p, p[0], F_OTHER, 0, 0, 0);
				fd_add(t->p, p[1], F_OTHER, 0, 0, 0);
			}
		} else {
			logc(t, "memfd_create()");
			fd = memfd_create("fuzz", 0);
			logr(t, fd);
			fd_add(t->p, fd, F_OTHER, 0, 0, 0);
		}
	}
}

static void c_dup(struct thr *t)
{
	struct fdent f;
	int slot = fd_acquire(t, (1 << NR_FKIND) - 1, -1, &f), fd;

	if (slot < 0)
		return;
	logc(t, "dup(%d)", f.fd);
	fd = logr(t, dup(f.fd));
	fd_add(t->p, fd, f.kind, f.ctx, f.obj, f.qflags);
	fd_release(t->p, slot);
}

/* /proc/self/fdinfo of a queue: each line "key:\tvalue" */
static void c_fdinfo(struct thr *t)
{
	struct fdent f;
	int slot = fd_acquire(t, (1 << F_FAULT) | (1 << F_VEVENTQ), -1, &f);
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	if (slot < 0)
		return;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", f.fd);
	logc(t, "read(%s)", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	logr(t, n);
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = 0;
		for (char *l = buf; *l; l = strchr(l, '\n') + 1) {
			if (!strchr(l, ':') || !strchr(l, '\n')) {
				fail(t, "fdinfo of fd %d: line \"%.40s\"",
				     f.fd, l);
				break;
			}
		}
	}
	fd_release(t->p, slot);
}

/* The file operations nobody should need: all refused, none may hurt */
static void c_misc(struct thr *t)
{
	struct fdent f;
	int slot = fd_acquire(t, (1 << F_FAULT) | (1 << F_VEVENTQ) |
				     (1 << F_CTX), -1, &f);
	uint8_t *b = t->arena + RBUF_OFF;
	void *m;
	int fl;

	if (slot < 0)
		return;
	switch (rnd_n(t, 6)) {
	case 0:
		logc(t, "lseek(%d, %d)", f.fd, 0);
		logr(t, lseek(f.fd, 0, SEEK_SET));
		break;
	case 1:
		logc(t, "pread(%d, 48, 8)", f.fd);
		memset(b, CANARY, 48 + SLACK);
		logr(t, pread(f.fd, b, 48, 8));
		break;
	case 2:
		logc(t, "pwrite(%d, 8, 8)", f.fd);
		memset(b, 0, 8);
		logr(t, pwrite(f.fd, b, 8, 8));
		break;
	case 3:
		logc(t, "mmap(%d)", f.fd);
		m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, f.fd, 0);
		logr(t, m == MAP_FAILED ? -1 : 0);
		if (m != MAP_FAILED)
			munmap(m, 4096);
		break;
	case 4:
		/* Non-blocking on and off: the queues' reads never block */
		fl = fcntl(f.fd, F_GETFL);
		logc(t, "fcntl(%d, F_SETFL, %#x)", f.fd, fl ^ O_NONBLOCK);
		logr(t, fcntl(f.fd, F_SETFL, fl ^ O_NONBLOCK));
		break;
	default: {
		/*
		 * Numbers no file here takes: not iommufd's commands (0x80
		 * on), nor the VFIO compat ones it serves (VFIO_BASE, 0x64
		 * on), which would replay whatever argument the arena holds
		 * and make objects the table does not know
		 */
		unsigned long cmd = _IO(IOMMUFD_TYPE, 0xb0 + rnd_n(t, 0x30));

		logc(t, "ioctl(%d, %#lx)", f.fd, cmd);
		arm(t);
		fl = ioctl(f.fd, cmd, t->arena);
		disarm(t);
		logr(t, fl);
	}
	}
	fd_release(t->p, slot);
}

/*
 * fork(): a child inherits some of the fds and works them (read, answer,
 * poll, close, trigger) while the parent goes on, then exits, taking its
 * references with it. It makes no objects (the parent's final sweep would
 * not know them). It checks the bounds of its reads and exits 1 if they
 * break.
 */
static void c_fork(struct thr *t)
{
	struct fdent f[8];
	int slots[8], n = 0, i, k, st;
	struct proc *p = t->p;
	pid_t pid;

	for (i = 0; i < 8; i++) {
		slots[n] = fd_acquire(t, (1 << NR_FKIND) - 1, -1, &f[n]);
		if (slots[n] >= 0)
			n++;
	}
	pthread_mutex_lock(&p->lock);
	while (p->nchildren && waitpid(p->children[p->nchildren - 1], &st,
				       WNOHANG) > 0) {
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			atomic_fetch_add(&p->failures, 1);
		p->nchildren--;
	}
	k = p->nchildren < 64;
	pthread_mutex_unlock(&p->lock);
	if (n && k) {
		logc(t, "fork() [%d fds]", n);
		pid = fork();
		if (!pid) {
			uint64_t rng = t->rng ^ 0xc0ffee;
			uint8_t buf[1024];
			int bad = 0;

			for (i = 0; i < 32; i++) {
				int j = splitmix(&rng) % n;
				ssize_t ret;

				switch (splitmix(&rng) % 5) {
				case 0:
				case 1:
					memset(buf + 512, CANARY, 64);
					ret = read(f[j].fd, buf, 512);
					if (ret > 512 || buf[512] != CANARY)
						bad = 1;
					if (f[j].kind == F_FAULT && ret > 0) {
						struct fz_pgfault *m = (void *)(buf + ret - sizeof(*m));
						struct fz_response r = {
							m->cookie, 0,
						};

						write(f[j].fd, &r, sizeof(r));
					}
					break;
				case 2: {
					struct pollfd pfd = { f[j].fd, POLLIN, 0 };

					poll(&pfd, 1, 0);
					break;
				}
				case 3:
					close(f[j].fd);
					break;
				default:
					if (f[j].kind == F_CTX) {
						struct fz_test_cmd c = {
							.size = sizeof(c),
							.op = IOMMU_TEST_OP_TRIGGER_IOPF,
						};

						c.trigger_iopf.dev_id = splitmix(&rng) % 32;
						ioctl(f[j].fd, IOMMU_TEST_CMD, &c);
					}
				}
			}
			_exit(bad);
		}
		logr(t, pid);
		if (pid > 0) {
			atomic_fetch_add(&sh->st.forks, 1);
			pthread_mutex_lock(&p->lock);
			p->children[p->nchildren++] = pid;
			pthread_mutex_unlock(&p->lock);
		}
	}
	for (i = 0; i < n; i++)
		fd_release(p, slots[i]);
}

/* ---- The graph a fault needs, made in one go ---- */

/*
 * An IOAS, devices with and without PRI, a nesting parent, a vIOMMU with a
 * vEVENTQ, vDEVICEs, a fault queue and nested HWPTs reporting to it, and
 * the devices attached: the order a VMM uses (vEVENTQ before vDEVICE
 * before attach), each step an ordinary call with sane arguments, so that
 * random calls afterwards have something deep to work on.
 */
void build_graph(struct thr *t, int ctx)
{
	int i;

	c_ioas_alloc(t, ctx);
	for (i = 0; i < 2; i++)
		c_mock_device(t, ctx, true);
	c_hwpt_alloc(t, ctx, 0);
	c_viommu_alloc(t, ctx, true);
	c_veventq_alloc(t, ctx, true);
	for (i = 0; i < 2; i++)
		c_vdevice_alloc(t, ctx, true);
	c_fault_alloc(t, ctx, true);
	c_hwpt_alloc(t, ctx, 3);
	c_hwpt_alloc(t, ctx, 3);
	for (i = 0; i < 2; i++)
		c_replace(t, ctx);
}

/* ---- One random call ---- */

void do_call(struct thr *t)
{
	int ctx = ctx_pick(t);
	uint32_t r;

	if (ctx < 0) {
		ctx = open_ctx(t);
		if (ctx >= 0)
			build_graph(t, ctx);
		return;
	}
	if (count_objs(t->p, ctx) < 6 && one_in(t, 8)) {
		build_graph(t, ctx);
		return;
	}
	r = rnd_n(t, 1000);
	if (r < 140)
		c_trigger_iopf(t, ctx);
	else if (r < 260)
		c_read_fault(t);
	else if (r < 360)
		c_write_fault(t);
	else if (r < 410)
		c_poll(t);
	else if (r < 470)
		c_trigger_vevent(t, ctx);
	else if (r < 530)
		c_read_veventq(t);
	else if (r < 590)
		c_replace(t, ctx);
	else if (r < 620)
		c_pasid(t, ctx);
	else if (r < 670)
		c_hwpt_alloc(t, ctx, -1);
	else if (r < 705)
		c_fault_alloc(t, ctx, false);
	else if (r < 735)
		c_veventq_alloc(t, ctx, false);
	else if (r < 750)
		c_viommu_alloc(t, ctx, false);
	else if (r < 775)
		c_vdevice_alloc(t, ctx, false);
	else if (r < 790)
		c_mock_device(t, ctx, false);
	else if (r < 795)
		c_ioas_alloc(t, ctx);
	else if (r < 850)
		c_destroy(t, ctx);
	else if (r < 885)
		fd_close(t, -1);
	else if (r < 900)
		c_dup(t);
	else if (r < 925)
		c_eventfd(t);
	else if (r < 940)
		c_fdinfo(t);
	else if (r < 950)
		c_counters(t, ctx);
	else if (r < 962)
		c_set(t, ctx);
	else if (r < 980)
		c_misc(t);
	else if (r < 984)
		c_fork(t);
	else if (r < 990)
		open_ctx(t);
	else
		c_trigger_iopf(t, ctx);
}
