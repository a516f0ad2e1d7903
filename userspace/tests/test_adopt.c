// SPDX-License-Identifier: MIT
/*
 * lib/adopt.c: queues made elsewhere. Adopted fds stay the caller's (item
 * 10); a queue adopted in mid-stream, with a sequence not 0 and groups
 * outstanding, answers nothing twice and strands nothing (item 3); the
 * saved state and its checks; fdinfo.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "unit.h"

/*
 * A queue and an eventfd the VMM made (blocking, as eventfd() gives it):
 * the library reads, answers and goes, and leaves them as they were.
 */
static void adopt_keeps_fds(void)
{
	int fd = boot_fake(false), efd = eventfd(0, EFD_CLOEXEC), qfd;
	const struct fake_fault_spec spec = { .flags = EFD, .eventfd = efd };
	struct iof_queue *q;
	struct fake_answers a;
	struct seen s = {};
	uint32_t id;
	uint64_t v;

	qfd = fake_queue_new(&spec, &id);
	q = iof_queue_adopt(fd, id, qfd, efd, NULL);
	CHECK(q);
	CHECK_EQ(iof_queue_flags(q), EFD);	/* from fdinfo */
	CHECK_EQ(iof_queue_wait_fd(q), efd);
	fake_queue_fault(id, 4, 0, 1, 1, 0);
	CHECK_EQ(iof_queue_wait(q, 0), 1);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	/* The count is the VMM's to take */
	CHECK_EQ(read(efd, &v, sizeof(v)), sizeof(v));
	CHECK_EQ(iof_answer(q, s.last_group.cookie, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
	/* Written, and nothing of the VMM's closed, changed or destroyed */
	fake_answers(4, &a);
	CHECK_EQ(a.success, 1);
	CHECK(fcntl(qfd, F_GETFD) >= 0);
	CHECK(fcntl(efd, F_GETFD) >= 0);
	CHECK(!(fcntl(efd, F_GETFL) & O_NONBLOCK));
	CHECK_EQ(fake_stats.destroys, 0);
	CHECK_EQ(fake_stats.open_fds, 1);
	/* and the queue still works for whoever has it next */
	fake_queue_fault(id, 4, 0, 2, 1, 0);
	q = iof_queue_adopt(fd, id, qfd, efd, NULL);
	CHECK(q);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 1);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(iof_queue_release(q), 0);
	close(efd);
}

/* A VMM before its restart: groups read, answered, outstanding, unread */
struct before {
	struct iof_queue *q;
	uint32_t id;
	int qfd, efd;
	struct seen s;
	unsigned char state[4096];
	ssize_t len;
};

static void vmm_before(struct before *b, int fd, bool flush)
{
	const struct iof_config cfg = { .flags = EFD | BND, .depth = 64 };
	int i;

	b->q = iof_queue_create(fd, &cfg);
	if (!b->q)
		return;
	b->id = iof_queue_id(b->q);
	b->qfd = iof_queue_fd(b->q);
	b->efd = iof_queue_wait_fd(b->q);
	/* Far into the sequence */
	fake_queue_sequence(b->id, 1000);
	for (i = 0; i != 4; i++)
		fake_queue_fault(b->id, 5, 0, i, 2, 0x1000);
	iof_queue_dispatch(b->q, &ops, &b->s);
	/* One answered and written, one answered and buffered, two left */
	iof_answer(b->q, b->s.cookies[0], IOF_RESP_SUCCESS);
	iof_flush(b->q);
	iof_answer(b->q, b->s.cookies[1], IOF_RESP_INVALID);
	if (flush)
		iof_flush(b->q);
	/* Two more the old process never read */
	fake_queue_fault(b->id, 5, 0, 4, 1, 0);
	fake_queue_fault(b->id, 5, 0, 5, 1, 0);
	b->len = iof_queue_save(b->q, b->state, sizeof(b->state));
}

/*
 * The new process takes the queue over with the saved state: the groups
 * outstanding are answerable, by key, once; the sequence goes on without a
 * loss; nothing is answered twice (the kernel would refuse it: refused) and
 * nothing is left unanswered.
 */
static void resume_mid_stream(void)
{
	int fd = boot_fake(false);
	struct before b = {};
	struct fake_answers a;
	struct iof_fdinfo fi;
	struct seen s = {};
	struct iof_queue *q;

	vmm_before(&b, fd, false);
	CHECK(b.q);
	CHECK(b.len > 0);
	/*
	 * The old process execs the new one with its fds and eventfd: its
	 * library state goes without a release, so nothing it buffered may
	 * be left unwritten by the save. (It is freed here only at the end.)
	 */
	q = iof_queue_resume(fd, b.id, b.qfd, b.efd, NULL, b.state, b.len);
	CHECK(q);
	CHECK_EQ(iof_queue_flags(q), EFD | BND | HDR);
	CHECK_EQ(iof_queue_depth(q), 64);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 2);
	CHECK_EQ(iof_queue_stats(q)->orphaned, 0);
	CHECK_EQ(iof_queue_stats(q)->seq.next, 1008);
	CHECK_EQ(iof_queue_fdinfo(q, &fi), 0);
	CHECK_EQ(fi.awaiting, 2);
	CHECK_EQ(fi.sequence, 1008);
	/* An edge-triggered eventfd already taken: dispatch before waiting */
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 2);
	CHECK_EQ(s.groups, 2);
	CHECK_EQ(s.nr_lost, 0);
	CHECK_EQ(iof_queue_stats(q)->seq.lost, 0);
	CHECK_EQ(iof_queue_stats(q)->seq.errors, 0);
	/* The old groups by key, as the guest answers them */
	CHECK_EQ(iof_answer_by(q, 5, false, 0, 2, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 5, false, 0, 3, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 5, false, 0, 1, IOF_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(iof_answer_by(q, 5, false, 0, 4, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 5, false, 0, 5, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 4);
	CHECK_EQ(iof_queue_stats(q)->refused, 0);
	fake_answers(5, &a);
	CHECK_EQ(a.groups, 6);
	CHECK_EQ(a.success, 5);
	CHECK_EQ(a.invalid, 1);
	CHECK_EQ(iof_queue_fdinfo(q, &fi), 0);
	CHECK_EQ(fi.awaiting, 0);
	CHECK_EQ(iof_queue_release(b.q), 0);
	CHECK_EQ(iof_queue_stats(q)->refused, 0);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

/*
 * Without the state: the library says how many groups it cannot name, and
 * the VMM's replace has the kernel answer them; the sequence still goes on
 * from where the kernel is.
 */
static void adopt_orphans(void)
{
	int fd = boot_fake(false);
	struct before b = {};
	struct fake_answers a;
	struct seen s = {};
	struct iof_queue *q;

	vmm_before(&b, fd, true);
	CHECK(b.q);
	CHECK_EQ(iof_queue_release(b.q), 0);
	q = iof_queue_adopt(fd, b.id, b.qfd, b.efd, NULL);
	CHECK(q);
	CHECK_EQ(iof_queue_stats(q)->orphaned, 2);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 0);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 2);
	CHECK_EQ(s.nr_lost, 0);
	CHECK_EQ(s.last_group.seq, 1009);
	/* The VMM replaces the device's HWPT: the kernel answers the rest */
	fake_queue_detach(b.id, 5);
	CHECK_EQ(iof_forget_device(q, 5), 2);
	fake_answers(5, &a);
	CHECK_EQ(a.groups, 6);
	CHECK_EQ(a.success + a.invalid, 6);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

/* A state that is not the queue's is refused, and nothing is made */
static void resume_refuses(void)
{
	int fd = boot_fake(false);
	struct before b = {};
	struct iof_queue *q;
	unsigned char bad[4096];
	struct seen s = {};

	vmm_before(&b, fd, true);
	CHECK(b.q);
	/* Asking the size only */
	CHECK_EQ(iof_queue_save(b.q, NULL, 0), b.len);
	/* More read after the save: stale */
	CHECK_EQ(iof_queue_dispatch(b.q, &ops, &s), 2);
	errno = 0;
	CHECK(!iof_queue_resume(fd, b.id, b.qfd, -1, NULL, b.state, b.len));
	CHECK_EQ(errno, ESTALE);
	b.len = iof_queue_save(b.q, b.state, sizeof(b.state));
	/* Another queue's */
	errno = 0;
	CHECK(!iof_queue_resume(fd, b.id + 1, b.qfd, -1, NULL, b.state,
				b.len));
	CHECK_EQ(errno, ESTALE);
	/* Broken, or cut short */
	memcpy(bad, b.state, b.len);
	bad[0] ^= 1;
	errno = 0;
	CHECK(!iof_queue_resume(fd, b.id, b.qfd, -1, NULL, bad, b.len));
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(!iof_queue_resume(fd, b.id, b.qfd, -1, NULL, b.state,
				b.len - 4));
	CHECK_EQ(errno, EINVAL);
	/* A newer library's */
	memcpy(bad, b.state, b.len);
	bad[4]++;
	errno = 0;
	CHECK(!iof_queue_resume(fd, b.id, b.qfd, -1, NULL, bad, b.len));
	CHECK_EQ(errno, EPROTO);
	/* Flags that are not the queue's */
	errno = 0;
	CHECK(!iof_queue_adopt(fd, b.id, b.qfd, -1,
			       &(struct iof_config){ .flags = HDR }));
	CHECK_EQ(errno, EINVAL);
	/* The right one works */
	q = iof_queue_resume(fd, b.id, b.qfd, b.efd, NULL, b.state, b.len);
	CHECK(q);
	CHECK_EQ(iof_queue_stats(q)->outstanding, 4);
	CHECK_EQ(iof_queue_release(q), 0);
	CHECK_EQ(iof_queue_destroy(b.q), 0);
}

/* On 7.3 the kernel says nothing: the state is all there is */
static void resume_on_73(void)
{
	int fd = boot_fake(true);
	struct iof_queue *q = iof_queue_create(fd, NULL), *q2;
	unsigned char state[512];
	struct fake_answers a;
	struct iof_fdinfo fi;
	struct seen s = {};
	ssize_t len;
	uint32_t id;
	int qfd;

	CHECK(q);
	id = iof_queue_id(q);
	qfd = iof_queue_fd(q);
	fake_queue_fault(id, 6, 0, 1, 1, 0);
	fake_queue_fault(id, 6, 0, 2, 1, 0);
	CHECK_EQ(iof_queue_dispatch(q, &ops, &s), 2);
	CHECK_EQ(iof_queue_fdinfo(q, &fi), -ENOENT);
	len = iof_queue_save(q, state, sizeof(state));
	CHECK(len > 0);
	CHECK_EQ(iof_queue_release(q), 0);
	q2 = iof_queue_adopt(fd, id, qfd, -1, NULL);
	CHECK(q2);
	CHECK_EQ(iof_queue_stats(q2)->orphaned, UINT32_MAX);
	CHECK_EQ(iof_queue_release(q2), 0);
	q = iof_queue_resume(fd, id, qfd, -1, NULL, state, len);
	CHECK(q);
	CHECK_EQ(iof_answer_by(q, 6, false, 0, 1, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_answer_by(q, 6, false, 0, 2, IOF_RESP_SUCCESS), 0);
	CHECK_EQ(iof_flush(q), 2);
	fake_answers(6, &a);
	CHECK_EQ(a.success, 2);
	CHECK_EQ(iof_queue_destroy(q), 0);
}

static int fdinfo_of(const char *text, struct iof_fdinfo *fi)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int rc;

	if (!f)
		return -errno;
	rc = iof_fdinfo_parse(f, fi);
	fclose(f);
	return rc;
}

/*
 * v3 names the queue's flags "flags" after the file's own "flags" (octal)
 * and shows the sequence; v2 said "fault_flags"; 7.3 shows none of it
 */
static void fdinfo_parse(void)
{
	struct iof_fdinfo fi;

	CHECK_EQ(fdinfo_of("pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1\n"
			   "flags:\t0x7\ndepth:\t64\nqueued:\t5\n"
			   "awaiting:\t2\nsequence:\t123\nlost:\t40\n"
			   "withdrawn:\t8589934592\n", &fi), 0);
	CHECK_EQ(fi.flags, 7);
	CHECK_EQ(fi.depth, 64);
	CHECK_EQ(fi.queued, 5);
	CHECK_EQ(fi.awaiting, 2);
	CHECK_EQ(fi.lost, 40);
	CHECK_EQ(fi.withdrawn, 8589934592ull);
	CHECK(fi.has_sequence);
	CHECK_EQ(fi.sequence, 123);
	/* Decimal flags too */
	CHECK_EQ(fdinfo_of("pos:\t0\nflags:\t02\nmnt_id:\t1\nino:\t1\n"
			   "flags:\t3\ndepth:\t0\nqueued:\t0\nawaiting:\t0\n"
			   "lost:\t0\n", &fi), 0);
	CHECK_EQ(fi.flags, 3);
	CHECK(!fi.has_sequence);
	CHECK_EQ(fdinfo_of("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\n"
			   "fault_flags:\t0x2\ndepth:\t64\nqueued:\t0\n"
			   "awaiting:\t0\nlost:\t47\nwithdrawn:\t3\n", &fi), 0);
	CHECK_EQ(fi.flags, 2);
	CHECK_EQ(fi.lost, 47);
	CHECK(!fi.has_sequence);
	CHECK_EQ(fdinfo_of("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\n", &fi),
		 -ENOENT);
}

UNIT_TESTS(T(adopt_keeps_fds), T(resume_mid_stream), T(adopt_orphans),
	   T(resume_refuses), T(resume_on_73), T(fdinfo_parse));
