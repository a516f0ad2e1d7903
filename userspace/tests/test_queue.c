// SPDX-License-Identifier: MIT
/*
 * lib/probe.c and lib/queue.c: feature probing with throwaway queues,
 * creation and its fallbacks on 7.3, the one-step IOPF-capable HWPT, an
 * eventfd of the VMM's (item 10), and teardown from a callback; on the
 * fake kernels (7.3 and v3).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "mock.h"
#include "uapi.h"
#include "unit.h"

#define ALL (EFD | HDR | BND)
#define FK_BAD_DATA 0xbad	/* a stage-1 data type no driver knows */

static struct iof_uapi_fault_alloc last_fault(void)
{
	struct iof_uapi_fault_alloc c = {};

	memcpy(&c, fake_stats.fault, sizeof(c));
	return c;
}

static struct iof_uapi_hwpt_alloc last_hwpt(void)
{
	struct iof_uapi_hwpt_alloc c = {};

	memcpy(&c, fake_stats.hwpt, sizeof(c));
	return c;
}

static struct iof_uapi_veventq_alloc last_veventq(void)
{
	struct iof_uapi_veventq_alloc c = {};

	memcpy(&c, fake_stats.veventq, sizeof(c));
	return c;
}

/*
 * The probe makes throwaway queues and nothing else, and leaves nothing:
 * on the series' kernel one queue with all three flags, a real eventfd and
 * depth 1, destroyed, its fd and the eventfd closed
 */
static void probe_throwaway_objects(void)
{
	int fd = boot_fake(false);
	struct iof_caps caps;
	int calls;

	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK(caps.fault_eventfd && caps.fault_header && caps.fault_bounded);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_UNKNOWN);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_UNKNOWN);
	CHECK_EQ(fake_stats.fault_calls, 1);
	CHECK_EQ(last_fault().flags, ALL);
	CHECK_EQ(last_fault().depth, 1);
	CHECK(fake_stats.fault_eventfd_real);
	CHECK_EQ(fake_stats.hwpt_calls + fake_stats.veventq_calls, 0);
	CHECK_EQ(fake_stats.destroys, 1);
	CHECK_EQ(fake_stats.open_fds, 0);
	CHECK_EQ(fcntl(fake_stats.last_fault_fd, F_GETFD), -1);
	CHECK_EQ(fcntl(last_fault().eventfd, F_GETFD), -1);
	/* Probed once: the next call asks the kernel nothing */
	calls = fake_stats.calls;
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(fake_stats.calls, calls);

	/* Without CONFIG_EVENTFD: all refused, then each; the bound is there */
	fd = boot_fake(false);
	fake_knobs.no_eventfd = true;
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK(!caps.fault_eventfd && caps.fault_header && caps.fault_bounded);
	CHECK_EQ(fake_stats.fault_calls, 3);
	CHECK_EQ(fake_stats.fault_allocs, 1);
	CHECK_EQ(fake_stats.destroys, 1);
	CHECK_EQ(fake_stats.open_fds, 0);

	/* Not an iommufd: an error, not "nothing", and not kept */
	fd = boot_fake(false);
	fake_knobs.fail_errno = ENOTTY;
	CHECK_EQ(iof_probe(fd, &caps), -ENOTTY);
	fake_knobs.fail_errno = 0;
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK(caps.fault_eventfd && caps.fault_bounded);
}

static void probe_and_fallback_on_73(void)
{
	const struct iof_config want = { .flags = EFD | BND, .depth = 32 };
	const struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.flags = IOF_VEVENTQ_EVENTFD,
	};
	struct iof_config strict = want;
	int fd = boot_fake(true);
	struct iof_veventq *vq;
	struct iof_caps caps;
	struct iof_queue *q;
	struct mockenv e;
	uint32_t hwpt_id = 0;
	int calls;

	CHECK_EQ(mock_env(fd, &e), 0);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK(!caps.fault_eventfd && !caps.fault_header && !caps.fault_bounded);
	/* All, then each: E2BIG (16-byte struct) or EOPNOTSUPP, nothing made */
	CHECK_EQ(fake_stats.fault_calls, 4);
	CHECK_EQ(fake_stats.fault_allocs, 0);
	calls = fake_stats.calls;
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(fake_stats.calls, calls);

	/* What 7.3 has: its queue, 16 bytes, waited on with poll() */
	q = iof_queue_create(fd, &want);
	CHECK(q);
	CHECK_EQ(fake_stats.fault_size, 16);
	CHECK_EQ(last_fault().flags, 0);
	CHECK_EQ(iof_queue_flags(q), 0);
	CHECK_EQ(iof_queue_depth(q), 0);
	CHECK_EQ(iof_queue_wait_fd(q), iof_queue_fd(q));
	CHECK_EQ(iof_queue_destroy(q), 0);
	/* unless the caller insists */
	strict.strict = true;
	errno = 0;
	CHECK(!iof_queue_create(fd, &strict));
	CHECK_EQ(errno, EOPNOTSUPP);

	/* One step refused: two steps, and the flag is known missing */
	q = iof_queue_alloc_nested(fd, e.dev, e.parent, IOMMU_HWPT_DATA_SELFTEST,
				   &mock_s1_data, sizeof(mock_s1_data), &want,
				   &hwpt_id);
	CHECK(q);
	CHECK(!iof_queue_one_step(q));
	CHECK_EQ(fake_stats.iopf_tries, 1);
	CHECK_EQ(fake_stats.hwpt_size, 48);
	CHECK_EQ(last_hwpt().flags, IOMMU_HWPT_FAULT_ID_VALID);
	CHECK_EQ(last_hwpt().fault_id, iof_queue_id(q));
	CHECK_EQ(mock_destroy(fd, hwpt_id), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_NO);
	/* The next one goes straight to two steps */
	q = iof_queue_alloc_nested(fd, e.dev, e.parent, IOMMU_HWPT_DATA_SELFTEST,
				   &mock_s1_data, sizeof(mock_s1_data), &want,
				   &hwpt_id);
	CHECK(q);
	CHECK_EQ(fake_stats.iopf_tries, 1);
	CHECK_EQ(mock_destroy(fd, hwpt_id), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* A vEVENTQ: the eventfd refused (E2BIG), then without */
	vq = iof_veventq_create(fd, e.viommu, &vcfg);
	CHECK(vq);
	CHECK_EQ(iof_veventq_flags(vq), 0);
	CHECK_EQ(fake_stats.veventq_calls, 2);
	CHECK_EQ(fake_stats.veventq_size, 32);
	CHECK_EQ(iof_veventq_wait_fd(vq), iof_veventq_fd(vq));
	CHECK_EQ(iof_veventq_destroy(vq), 0);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_NO);
	vq = iof_veventq_create(fd, e.viommu, &vcfg);
	CHECK(vq);
	CHECK_EQ(fake_stats.veventq_calls, 3);
	CHECK_EQ(iof_veventq_destroy(vq), 0);
}

static void probe_and_create_v3(void)
{
	const struct iof_config want = {
		.flags = EFD | BND,
		.depth = 32,
		.strict = true,
	};
	const struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.flags = IOF_VEVENTQ_EVENTFD,
		.depth = 64,
		.strict = true,
	};
	struct iof_config big = want;
	int fd = boot_fake(false);
	struct iof_veventq *vq;
	struct iof_caps caps;
	struct iof_queue *q;
	struct mockenv e;
	uint32_t hwpt_id = 0;
	int fds, destroys;

	CHECK_EQ(mock_env(fd, &e), 0);
	q = iof_queue_create(fd, &want);
	CHECK(q);
	CHECK_EQ(fake_stats.fault_size, 24);
	CHECK_EQ(last_fault().flags, EFD | BND | HDR);
	CHECK_EQ(last_fault().depth, 32);
	CHECK_EQ(last_fault().eventfd, iof_queue_wait_fd(q));
	CHECK(fake_stats.fault_eventfd_real);
	CHECK(iof_queue_wait_fd(q) != iof_queue_fd(q));
	CHECK_EQ(iof_queue_depth(q), 32);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* A depth the kernel cannot have: its EINVAL comes back */
	big.depth = (1U << 19) + 1;
	errno = 0;
	CHECK(!iof_queue_create(fd, &big));
	CHECK_EQ(errno, EINVAL);
	big.depth = 1U << 19;
	q = iof_queue_create(fd, &big);
	CHECK(q);
	CHECK_EQ(iof_queue_destroy(q), 0);

	/* One step, with the queue's flags in the HWPT allocation */
	q = iof_queue_alloc_nested(fd, e.dev, e.viommu, IOMMU_HWPT_DATA_SELFTEST,
				   &mock_s1_data, sizeof(mock_s1_data), &want,
				   &hwpt_id);
	CHECK(q);
	CHECK(iof_queue_one_step(q));
	CHECK_EQ(fake_stats.hwpt_size, 72);
	CHECK_EQ(last_hwpt().flags, IOF_HWPT_ALLOC_IOPF_CAPABLE);
	CHECK_EQ(last_hwpt().fault_flags, EFD | BND | HDR);
	CHECK_EQ(last_hwpt().fault_depth, 32);
	CHECK_EQ(last_hwpt().fault_eventfd, iof_queue_wait_fd(q));
	CHECK(hwpt_id);
	CHECK_EQ(mock_destroy(fd, hwpt_id), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_YES);

	/* A failed allocation leaves nothing: no object, no fd */
	fake_knobs.hwpt_errno = ENOSPC;
	fds = fake_stats.open_fds;
	destroys = fake_stats.destroys;
	errno = 0;
	CHECK(!iof_queue_alloc_nested(fd, e.dev, e.viommu,
				      IOMMU_HWPT_DATA_SELFTEST, &mock_s1_data,
				      sizeof(mock_s1_data), &want, &hwpt_id));
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(fake_stats.open_fds, fds);
	CHECK_EQ(fake_stats.destroys, destroys);
	fake_knobs.hwpt_errno = 0;

	vq = iof_veventq_create(fd, e.viommu, &vcfg);
	CHECK(vq);
	CHECK_EQ(iof_veventq_flags(vq), IOF_VEVENTQ_EVENTFD);
	CHECK_EQ(fake_stats.veventq_size, 40);
	CHECK_EQ(last_veventq().eventfd, iof_veventq_wait_fd(vq));
	CHECK_EQ(last_veventq().veventq_depth, 64);
	CHECK_EQ(iof_veventq_destroy(vq), 0);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_YES);
	/* A type the vIOMMU's driver does not produce: its error, kept */
	vq = iof_veventq_create(fd, e.viommu, &(struct iof_veventq_config){
		.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
	});
	CHECK(!vq);
	CHECK_EQ(errno, EOPNOTSUPP);
	errno = 0;
	CHECK(!iof_veventq_create(fd, 0, &vcfg));
	CHECK_EQ(errno, ENOENT);
}

/*
 * Without CONFIG_EVENTFD: a bounded queue waited on with poll(), and a
 * vEVENTQ that falls back once, then knows
 */
static void create_without_eventfd(void)
{
	const struct iof_config want = { .flags = EFD | BND, .depth = 8 };
	const struct iof_veventq_config vcfg = {
		.type = IOF_VEVENTQ_TYPE_SELFTEST,
		.flags = IOF_VEVENTQ_EVENTFD,
	};
	struct iof_veventq_config vstrict = vcfg;
	int fd = boot_fake(false);
	struct iof_veventq *vq;
	struct iof_queue *q;
	struct iof_caps caps;
	struct mockenv e;
	uint32_t hwpt_id;

	CHECK_EQ(mock_env(fd, &e), 0);
	fake_knobs.no_eventfd = true;
	q = iof_queue_create(fd, &want);
	CHECK(q);
	CHECK_EQ(iof_queue_flags(q), BND | HDR);
	CHECK_EQ(iof_queue_wait_fd(q), iof_queue_fd(q));
	CHECK_EQ(iof_queue_destroy(q), 0);
	/* The one step still works, with what the queue can have */
	q = iof_queue_alloc_nested(fd, e.dev, e.viommu, IOMMU_HWPT_DATA_SELFTEST,
				   &mock_s1_data, sizeof(mock_s1_data), &want,
				   &hwpt_id);
	CHECK(q);
	CHECK(iof_queue_one_step(q));
	CHECK_EQ(last_hwpt().fault_flags, BND | HDR);
	CHECK_EQ(mock_destroy(fd, hwpt_id), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);

	vstrict.strict = true;
	errno = 0;
	CHECK(!iof_veventq_create(fd, e.viommu, &vstrict));
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK_EQ(fake_stats.veventq_calls, 1);
	/* strict learns nothing: the EOPNOTSUPP could have another cause */
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_UNKNOWN);
	vq = iof_veventq_create(fd, e.viommu, &vcfg);
	CHECK(vq);
	CHECK_EQ(iof_veventq_flags(vq), 0);
	CHECK_EQ(fake_stats.veventq_calls, 3);
	CHECK_EQ(iof_veventq_destroy(vq), 0);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(caps.veventq_eventfd, IOF_CAP_NO);
	/* Known missing now: strict fails without asking */
	errno = 0;
	CHECK(!iof_veventq_create(fd, e.viommu, &vstrict));
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK_EQ(fake_stats.veventq_calls, 3);
}

/*
 * Falling back is for a refused flag only. Any other failure of the one
 * step is the allocation's: returned at once, nothing made in two steps.
 * An EOPNOTSUPP with another cause fails the two steps too, and teaches
 * nothing.
 */
static void one_step_fallback_only_when_refused(void)
{
	const struct iof_config cfg = { .flags = BND, .depth = 4 };
	int fd = boot_fake(false);
	struct iof_caps caps;
	struct iof_queue *q;
	struct mockenv e;
	uint32_t hwpt_id;
	int fault_calls, fds;

	CHECK_EQ(mock_env(fd, &e), 0);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	fake_knobs.hwpt_errno = ENOSPC;
	fault_calls = fake_stats.fault_calls;
	fds = fake_stats.open_fds;
	errno = 0;
	CHECK(!iof_queue_alloc_nested(fd, e.dev, e.viommu,
				      IOMMU_HWPT_DATA_SELFTEST, &mock_s1_data,
				      sizeof(mock_s1_data), &cfg, &hwpt_id));
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(fake_stats.iopf_tries, 1);
	CHECK_EQ(fake_stats.fault_calls, fault_calls);
	CHECK_EQ(fake_stats.open_fds, fds);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_UNKNOWN);

	fake_knobs.hwpt_errno = 0;
	errno = 0;
	CHECK(!iof_queue_alloc_nested(fd, e.dev, e.viommu, FK_BAD_DATA,
				      &mock_s1_data, sizeof(mock_s1_data), &cfg,
				      &hwpt_id));
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK_EQ(fake_stats.iopf_tries, 2);
	/* The two steps' queue is gone again */
	CHECK_EQ(fake_stats.open_fds, fds);
	CHECK_EQ(iof_probe(fd, &caps), 0);
	CHECK_EQ(caps.iopf_capable, IOF_CAP_UNKNOWN);
	q = iof_queue_alloc_nested(fd, e.dev, e.viommu, IOMMU_HWPT_DATA_SELFTEST,
				   &mock_s1_data, sizeof(mock_s1_data), &cfg,
				   &hwpt_id);
	CHECK(q);
	CHECK(iof_queue_one_step(q));
	CHECK_EQ(mock_destroy(fd, hwpt_id), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static void create_fails(void)
{
	/* Not an iommufd: nothing made, and the ioctl's errno comes back */
	errno = 0;
	CHECK(!iof_queue_create(-1, NULL));
	CHECK_EQ(errno, EBADF);
	/* A flag the library does not know */
	errno = 0;
	CHECK(!iof_queue_create(boot_fake(false),
				&(struct iof_config){ .flags = 1U << 9 }));
	CHECK_EQ(errno, EOPNOTSUPP);
	CHECK_EQ(fake_stats.calls, 0);
}

/*
 * Item 10: one eventfd of the VMM's serves two queues. The library never
 * takes its count (that would swallow the other queue's wake-up), never
 * changes its flags (it stays blocking), never closes it.
 */
static void caller_eventfd_shared(void)
{
	int efd = eventfd(0, EFD_CLOEXEC), fd = boot_fake(false);
	const struct iof_config cfg = {
		.flags = EFD | HDR,
		.use_eventfd = true,
		.eventfd = efd,
	};
	struct iof_queue *q1 = iof_queue_create(fd, &cfg);
	struct iof_queue *q2 = iof_queue_create(fd, &cfg);
	struct seen s = {};
	uint64_t v;

	CHECK(q1 && q2);
	CHECK_EQ(iof_queue_wait_fd(q1), efd);
	CHECK_EQ(iof_queue_wait_fd(q2), efd);
	CHECK_EQ(last_fault().eventfd, efd);
	fake_queue_fault(iof_queue_id(q1), 1, 0, 1, 1, 0);
	fake_queue_fault(iof_queue_id(q2), 2, 0, 1, 1, 0);
	/* Each queue signalled it once */
	CHECK_EQ(iof_queue_dispatch(q1, &ops, &s), 1);
	/* q1's dispatch left the count to the VMM */
	CHECK_EQ(iof_queue_wait(q2, 0), 1);
	CHECK_EQ(read(efd, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(v, 2);
	CHECK_EQ(iof_queue_dispatch(q2, &ops, &s), 1);
	CHECK_EQ(s.groups, 2);
	CHECK(!(fcntl(efd, F_GETFL) & O_NONBLOCK));
	CHECK_EQ(iof_queue_destroy(q1), 0);
	CHECK_EQ(iof_queue_destroy(q2), 0);
	CHECK(fcntl(efd, F_GETFD) >= 0);
	close(efd);

	/* A kernel without eventfds: never a queue the VMM's eventfd misses */
	fd = boot_fake(true);
	efd = eventfd(0, EFD_CLOEXEC);
	errno = 0;
	CHECK(!iof_queue_create(fd, &(struct iof_config){
		.flags = EFD, .use_eventfd = true, .eventfd = efd }));
	CHECK_EQ(errno, EOPNOTSUPP);
	close(efd);
}

struct doom {
	int calls;		/* callbacks seen */
	int destroy_at;		/* destroy in this callback (1-based) */
	int destroy_rc;
	bool fd_open_after;	/* the queue fd still open after destroy */
	int fd;
	bool answer_first;	/* answer the group before destroying */
	bool dispatch_again;	/* try a nested dispatch instead */
	int nested_rc;
};

static int doom_group(struct iof_queue *q, const struct iof_group *g,
		      void *arg)
{
	struct doom *dm = arg;

	if (++dm->calls != dm->destroy_at)
		return 0;
	if (dm->dispatch_again) {
		dm->nested_rc = iof_queue_dispatch(q, NULL, NULL);
		return 0;
	}
	if (dm->answer_first)
		iof_answer(q, g->cookie, IOF_RESP_SUCCESS);
	dm->destroy_rc = iof_queue_destroy(q);
	dm->fd_open_after = fcntl(dm->fd, F_GETFD) >= 0;
	/* Not injected, say: the queue is gone, nothing may be answered */
	return -ENOSPC;
}

static void doom_lost(struct iof_queue *q, uint32_t seq, uint32_t count,
		      void *arg)
{
	struct doom *dm = arg;

	if (++dm->calls == dm->destroy_at) {
		dm->destroy_rc = iof_queue_destroy(q);
		dm->fd_open_after = true;
	}
}

static const struct iof_ops doom_ops = {
	.page_request = doom_group,
	.lost = doom_lost,
};

/*
 * A queue destroyed from its own callback: nothing of it runs after, its fd
 * stays open until the dispatch unwinds, then it is torn down (answers
 * written, fd closed, object destroyed, which answers the rest) and the
 * dispatch says -ECANCELED.
 */
static void destroy_in_callback(void)
{
	const struct iof_config cfg = { .flags = BND, .depth = 64 };
	struct doom dm = { .destroy_at = 2, .answer_first = true };
	int fd = boot_fake(false);
	struct fake_answers a;
	struct iof_queue *q;
	struct buf b = {};
	uint32_t id;

	q = iof_queue_create(fd, &cfg);
	CHECK(q);
	id = iof_queue_id(q);
	dm.fd = iof_queue_fd(q);
	fake_queue_fault(id, 1, 0, 1, 1, 0);
	fake_queue_fault(id, 1, 0, 2, 1, 0);
	fake_queue_fault(id, 1, 0, 3, 1, 0);
	CHECK_EQ(iof_queue_dispatch(q, &doom_ops, &dm), -ECANCELED);
	/* The third group was in the same read: never delivered */
	CHECK_EQ(dm.calls, 2);
	CHECK_EQ(dm.destroy_rc, 0);
	CHECK(dm.fd_open_after);
	CHECK_EQ(fcntl(dm.fd, F_GETFD), -1);
	CHECK_EQ(fake_stats.reads, 1);
	/* The answer given before, written; the rest answered on destroy */
	fake_answers(1, &a);
	CHECK_EQ(a.success, 1);
	CHECK_EQ(a.invalid, 2);
	CHECK_EQ(fake_stats.open_fds, 0);

	/* From the lost callback of a header queue: a LOST tail first */
	q = iof_parser_new(BND);
	dm = (struct doom){ .destroy_at = 1 };
	put_hdr(&b, LOST, 4);
	put_bounded(&b, 5, pgfault(1, 1, 9, true, 0));
	CHECK_EQ(iof_parse(q, b.data, b.len, &doom_ops, &dm), -ECANCELED);
	CHECK_EQ(dm.calls, 1);
}

/*
 * The other pattern: the callback only notes that the queue must go, and
 * the VMM destroys it after the dispatch returned (a bottom half). And a
 * dispatch from inside its own callback is refused.
 */
static void destroy_outside_callback(void)
{
	struct doom dm = { .destroy_at = 1, .dispatch_again = true };
	int fd = boot_fake(false);
	struct iof_queue *q = iof_queue_create(fd, NULL);
	struct fake_answers a;
	struct seen s = {};

	CHECK(q);
	fake_queue_fault(iof_queue_id(q), 1, 0, 1, 1, 0);
	fake_queue_fault(iof_queue_id(q), 1, 0, 2, 1, 0);
	CHECK_EQ(iof_queue_dispatch(q, &doom_ops, &dm), 2);
	CHECK_EQ(dm.nested_rc, -EDEADLK);
	CHECK_EQ(dm.calls, 2);
	CHECK_EQ(iof_answer_by(q, 1, false, 0, 1, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
	fake_answers(1, &a);
	CHECK_EQ(a.success, 1);
	CHECK_EQ(a.invalid, 1);
	CHECK_EQ(fake_stats.open_fds, 0);
}

UNIT_TESTS(T(probe_throwaway_objects), T(probe_and_fallback_on_73),
	   T(probe_and_create_v3), T(create_without_eventfd),
	   T(one_step_fallback_only_when_refused), T(create_fails),
	   T(caller_eventfd_shared), T(destroy_in_callback),
	   T(destroy_outside_callback));
