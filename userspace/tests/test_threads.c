// SPDX-License-Identifier: MIT
/*
 * The thread model of iofault.h ("Threads"), as a VMM uses it: an event
 * loop thread dispatches; its callback takes the vIOMMU's lock to queue
 * each page request for the guest; vCPU threads take that same lock to
 * handle the guest's page group responses and answer from under it
 * (iof_answer_by(), iof_answer(), iof_flush()); a monitor thread reads the
 * counters. A device thread makes page requests, reusing a PRGI only once
 * its group was answered, with the cap of groups awaiting an answer small
 * so that the queue stalls at it over and over.
 *
 * Every group must be answered exactly once, nothing refused, nothing
 * stranded, and no deadlock: `make race` runs this under ThreadSanitizer
 * (or helgrind), which also checks the lock order (the library's lock
 * inside the VMM's, never the other way).
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fake.h"
#include "helpers.h"
#include "iofault_internal.h"
#include "unit.h"

#define NR_VCPUS	4
#define NR_PRGI		64	/* PRGIs each device uses */
/* Page requests made: IOF_TEST_GROUPS, or 20000 (helgrind is slower) */
static unsigned int nr_groups = 20000;
#define DEV(cpu)	(100 + (cpu))

/* A page request the guest has not answered yet */
struct req {
	uint32_t grpid, cookie;
};

static struct {
	struct iof_queue *q;
	uint32_t id;
	/* The vIOMMU: its lock, and each vCPU's page requests */
	pthread_mutex_t viommu_lock;
	pthread_cond_t more;
	struct req reqs[NR_VCPUS][NR_PRGI];
	unsigned int nr_reqs[NR_VCPUS];
	/* The devices: PRGIs free, and a semaphore of them */
	atomic_bool busy[NR_VCPUS][NR_PRGI];
	sem_t prgis[NR_VCPUS];
	atomic_uint answered, injected;
	atomic_bool made_all, stop;
	atomic_uint bad;
} g;

/* The event loop's callback: the guest gets the request */
static int inject(struct iof_queue *q, const struct iof_group *grp,
		  void *arg)
{
	unsigned int cpu = grp->dev_id - DEV(0);

	pthread_mutex_lock(&g.viommu_lock);
	if (cpu >= NR_VCPUS || g.nr_reqs[cpu] == NR_PRGI) {
		atomic_fetch_add(&g.bad, 1);
	} else {
		g.reqs[cpu][g.nr_reqs[cpu]++] = (struct req){
			.grpid = grp->grpid,
			.cookie = grp->cookie,
		};
		atomic_fetch_add(&g.injected, 1);
		pthread_cond_broadcast(&g.more);
	}
	pthread_mutex_unlock(&g.viommu_lock);
	return 0;
}

static const struct iof_ops loop_ops = { .page_request = inject };

static void *event_loop(void *arg)
{
	struct epoll_event ev;
	int epfd = epoll_create1(EPOLL_CLOEXEC), n;

	if (iof_queue_epoll_add(g.q, epfd, EPOLLIN | EPOLLET, 1))
		atomic_fetch_add(&g.bad, 1);
	while (!atomic_load(&g.stop)) {
		/* A bounded wait: the loop also notices the end */
		n = epoll_wait(epfd, &ev, 1, 20);
		if (n < 0 && errno != EINTR)
			break;
		n = iof_queue_dispatch(g.q, &loop_ops, NULL);
		if (n < 0 && n != -EAGAIN)
			atomic_fetch_add(&g.bad, 1);
	}
	close(epfd);
	return NULL;
}

/*
 * A vCPU: the guest's page group responses, handled with the vIOMMU's
 * lock held, as a VMM's MMIO or queue-invalidation handler does
 */
static void *vcpu(void *arg)
{
	unsigned int cpu = (uintptr_t)arg, i = 0, code, nr_done = 0, k;
	uint32_t done[4];
	struct req r;
	int rc;

	pthread_mutex_lock(&g.viommu_lock);
	for (;;) {
		/*
		 * Answers reach the device when written: only then may it
		 * use the PRGI again. Written every fourth answer, and
		 * before waiting for more.
		 */
		if (nr_done && (nr_done == 4 || !g.nr_reqs[cpu])) {
			if (iof_flush(g.q) < 0)
				atomic_fetch_add(&g.bad, 1);
			for (k = 0; k != nr_done; k++) {
				atomic_store(&g.busy[cpu][done[k]], false);
				sem_post(&g.prgis[cpu]);
			}
			nr_done = 0;
		}
		while (!g.nr_reqs[cpu] && !atomic_load(&g.stop))
			pthread_cond_wait(&g.more, &g.viommu_lock);
		if (!g.nr_reqs[cpu])
			break;
		/* Out of order: the newest first */
		r = g.reqs[cpu][--g.nr_reqs[cpu]];
		code = i % 3 == 0 ? IOF_RESP_INVALID :
		       i % 7 == 0 ? IOF_RESP_FAILURE : IOF_RESP_SUCCESS;
		if (i++ % 2)
			rc = iof_answer(g.q, r.cookie, code);
		else
			rc = iof_answer_by(g.q, DEV(cpu), false, 0, r.grpid,
					   code);
		if (rc)
			atomic_fetch_add(&g.bad, 1);
		atomic_fetch_add(&g.answered, 1);
		done[nr_done++] = r.grpid;
	}
	pthread_mutex_unlock(&g.viommu_lock);
	return NULL;
}

/* The devices: a page request whenever a PRGI is free */
static void *devices(void *arg)
{
	unsigned int i, cpu, p;

	for (i = 0; i != nr_groups; i++) {
		cpu = i % NR_VCPUS;
		sem_wait(&g.prgis[cpu]);
		for (p = 0; atomic_load(&g.busy[cpu][p]); p++)
			;
		atomic_store(&g.busy[cpu][p], true);
		fake_queue_fault(g.id, DEV(cpu), 0, p, 1 + i % 3, 0x1000);
	}
	atomic_store(&g.made_all, true);
	return NULL;
}

/* Anybody may look at the counters at any time */
static void *monitor(void *arg)
{
	struct iof_stats st;

	while (!atomic_load(&g.stop)) {
		iof_queue_get_stats(g.q, &st, sizeof(st));
		if (st.refused || st.malformed || st.unmatched)
			atomic_fetch_add(&g.bad, 1);
		iof_queue_stalled(g.q);
		iof_outstanding(g.q, 1);
	}
	return NULL;
}

static void vcpus_answer_the_event_loop(void)
{
	const struct iof_config cfg = { .flags = EFD | HDR };
	pthread_t loop, dev, mon, cpus[NR_VCPUS];
	int fd = boot_fake(false);
	struct fake_answers a;
	struct iof_stats st;
	unsigned int i;
	uint64_t total = 0;

	memset(&g, 0, sizeof(g));
	if (getenv("IOF_TEST_GROUPS"))
		nr_groups = atoi(getenv("IOF_TEST_GROUPS"));
	/* Stalls at the cap, over and over */
	fake_knobs.cap = 16;
	g.q = iof_queue_create(fd, &cfg);
	CHECK(g.q);
	g.id = iof_queue_id(g.q);
	pthread_mutex_init(&g.viommu_lock, NULL);
	pthread_cond_init(&g.more, NULL);
	for (i = 0; i != NR_VCPUS; i++)
		sem_init(&g.prgis[i], 0, NR_PRGI);
	pthread_create(&loop, NULL, event_loop, NULL);
	pthread_create(&mon, NULL, monitor, NULL);
	for (i = 0; i != NR_VCPUS; i++)
		pthread_create(&cpus[i], NULL, vcpu, (void *)(uintptr_t)i);
	pthread_create(&dev, NULL, devices, NULL);
	pthread_join(dev, NULL);
	/* Every group made is answered; the PRGIs say so */
	for (i = 0; i != NR_VCPUS; i++) {
		unsigned int k;

		for (k = 0; k != NR_PRGI; k++)
			sem_wait(&g.prgis[i]);
	}
	atomic_store(&g.stop, true);
	pthread_mutex_lock(&g.viommu_lock);
	pthread_cond_broadcast(&g.more);
	pthread_mutex_unlock(&g.viommu_lock);
	for (i = 0; i != NR_VCPUS; i++)
		pthread_join(cpus[i], NULL);
	pthread_join(mon, NULL);
	pthread_join(loop, NULL);
	CHECK(iof_flush(g.q) >= 0);
	iof_queue_get_stats(g.q, &st, sizeof(st));
	CHECK_EQ(atomic_load(&g.bad), 0);
	CHECK_EQ(atomic_load(&g.answered), nr_groups);
	CHECK_EQ(st.groups, nr_groups);
	CHECK_EQ(st.answered, nr_groups);
	CHECK_EQ(st.refused, 0);
	CHECK_EQ(st.outstanding, 0);
	CHECK(st.stalls > 0);
	for (i = 0; i != NR_VCPUS; i++) {
		fake_answers(DEV(i), &a);
		/* Each answered once: by the guest, none by the kernel */
		CHECK_EQ(a.success + a.invalid, a.groups);
		total += a.groups;
	}
	CHECK_EQ(total, nr_groups);
	CHECK_EQ(iof_queue_destroy(g.q), 0);
}

UNIT_TESTS(T(vcpus_answer_the_event_loop));
