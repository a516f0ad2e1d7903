// SPDX-License-Identifier: MIT
/*
 * Scenarios of the library on the kernel, continued: what is the VMM's
 * stays the VMM's (item 10), a restart that keeps the fds, handed to a new
 * process by fork and exec (item 3), and answers from vCPU threads (item
 * 9). See scen.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iofault.h"
#include "mock.h"
#include "scen.h"


static int take(struct iof_queue *q, const struct iof_group *g, void *arg)
{
	tr("delivered: %s grpid %u cookie %#x faults %u", tr_id(g->dev_id),
	   g->grpid, g->cookie, g->nr_faults);
	return 0;
}

static const struct iof_ops take_ops = { .page_request = take };

static bool flags_same(int fd, int fl)
{
	return fcntl(fd, F_GETFL) == fl && fcntl(fd, F_GETFD) >= 0;
}

/*
 * One eventfd of the VMM's for two queues: the library takes no count of
 * it, changes none of its flags, closes it never
 */
static void lib_shared_eventfd(void)
{
	int efd = eventfd(0, EFD_CLOEXEC), fl = fcntl(efd, F_GETFL);
	const struct iof_config cfg = {
		.flags = IOF_FAULT_QUEUE_EVENTFD,
		.use_eventfd = true,
		.eventfd = efd,
	};
	uint32_t stdev2, dev2, h1, h2;
	struct iof_queue *q1, *q2;
	struct world w;

	if (world_new(&w))
		goto out;
	tr_rc("device 2", mock_device(w.fd, w.ioas, 0, &stdev2, &dev2));
	tr_name(dev2, "dev2");
	q1 = iof_queue_create(w.fd, &cfg);
	q2 = iof_queue_create(w.fd, &cfg);
	if (!SCHECK(q1 && q2))
		goto end;
	tr_rc("HWPT 1", mock_nested_alloc(w.fd, w.dev, w.parent,
					  iof_queue_id(q1), &h1));
	tr_rc("HWPT 2", mock_nested_alloc(w.fd, dev2, w.parent,
					  iof_queue_id(q2), &h2));
	tr_rc("attach 1", mock_replace(w.fd, w.stdev, h1));
	tr_rc("attach 2", mock_replace(w.fd, stdev2, h2));
	tr_rc("page request 1", mock_trigger_iopf(w.fd, w.dev, 0, 1, 1, 0));
	tr_rc("page request 2", mock_trigger_iopf(w.fd, dev2, 0, 1, 1, 0));
	tr_rc("dispatch 1", iof_queue_dispatch(q1, &take_ops, NULL));
	/* The wake-up is still there for the VMM, and for queue 2 */
	tr_eventfd("after dispatching 1", efd);
	tr_rc("dispatch 2", iof_queue_dispatch(q2, &take_ops, NULL));
	tr_rc("destroy 1", mock_destroy(w.fd, h1) ?: iof_queue_destroy(q1));
	tr_rc("destroy 2", mock_destroy(w.fd, h2) ?: iof_queue_destroy(q2));
	tr("eventfd open, flags unchanged: %s",
	   flags_same(efd, fl) ? "yes" : "no");
	SCHECK(flags_same(efd, fl));
	tr_counters("counters 1", w.fd, w.dev);
end:
	world_end(&w);
out:
	close(efd);
}

/*
 * A queue and an eventfd the VMM made, adopted: read, answered, let go;
 * the fds open, unchanged, the object there, and the queue still works
 */
static void lib_adopt_keeps_fds(void)
{
	int efd = eventfd(0, EFD_CLOEXEC), qfd, qfl, efl = fcntl(efd, F_GETFL);
	const uint32_t flags = k73() ? 0 : IOF_FAULT_QUEUE_EVENTFD;
	struct iof_queue *q;
	uint32_t id, hwpt;
	struct world w;

	if (world_new(&w) ||
	    world_queue(&w, flags, efd, 0, &id, &qfd, &hwpt))
		goto out;
	qfl = fcntl(qfd, F_GETFL);
	q = iof_queue_adopt(w.fd, id, qfd, k73() ? -1 : efd, NULL);
	if (!SCHECK(q))
		goto end;
	tr("adopted: flags %#x", iof_queue_flags(q));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 1, 1, 0));
	tr_rc("dispatch", iof_queue_dispatch(q, &take_ops, NULL));
	tr_rc("answer", iof_answer_by(q, w.dev, false, 0, 1,
				      IOF_RESP_SUCCESS));
	tr_rc("destroy", iof_queue_destroy(q));
	tr("fds open, flags unchanged: %s",
	   flags_same(qfd, qfl) && flags_same(efd, efl) ? "yes" : "no");
	SCHECK(flags_same(qfd, qfl) && flags_same(efd, efl));
	/* Not destroyed: the HWPT still holds it */
	tr_rc("the object", mock_destroy(w.fd, id));
	tr_rc("page request", mock_trigger_iopf(w.fd, w.dev, 0, 2, 1, 0));
	tr_read_fault("the VMM reads it", qfd,
		      sizeof(struct iommu_hwpt_pgfault), false);
	tr_counters("counters", w.fd, w.dev);
end:
	world_end(&w);
out:
	close(efd);
}

/* ---- A restart: fork, exec, adopt in mid-stream ---- */

struct handover {
	int iommufd, qfd, efd, state_fd;
	uint32_t id, dev, stdev, ioas;
	size_t len;
};

/* The new process: take the queue over and answer everything, once */
static int resume_child(const struct handover *h)
{
	unsigned char state[4096];
	struct iof_queue *q;
	ssize_t n;
	int i;

	n = pread(h->state_fd, state, sizeof(state), 0);
	tr_name(h->dev, "dev");
	q = iof_queue_resume(h->iommufd, h->id, h->qfd, h->efd, NULL, state,
			     n);
	if (!SCHECK(q)) {
		tr_rc("resume", -errno);
		return 1;
	}
	tr("resumed: flags %#x outstanding %u orphaned %u seq %u",
	   iof_queue_flags(q), iof_queue_stats(q)->outstanding,
	   iof_queue_stats(q)->orphaned, iof_queue_stats(q)->seq.next);
	/* Edge triggered: what waits already is read before any wait */
	tr_rc("dispatch", iof_queue_dispatch(q, &take_ops, NULL));
	for (i = 0; i != 6; i++)
		tr_rc("answer by key", iof_answer_by(q, h->dev, false, 0, i,
						     IOF_RESP_SUCCESS));
	tr_rc("flush", iof_flush(q));
	tr_stats("new process", q);
	SCHECK(!iof_queue_stats(q)->refused && !iof_queue_stats(q)->seq.lost);
	tr_fdinfo("new process", h->qfd);
	tr_counters("counters", h->iommufd, h->dev);
	return iof_queue_release(q) || tr_failed() ? 1 : 0;
}

static void clear_cloexec(int fd)
{
	fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) & ~FD_CLOEXEC);
}

static void lib_resume_fork(void)
{
	const struct iof_config cfg = {
		.flags = k73() ? 0 : IOF_FAULT_QUEUE_EVENTFD |
				     IOF_FAULT_QUEUE_HEADER,
	};
	unsigned char state[4096], buf[4096];
	struct handover h = {};
	struct iof_queue *q;
	struct world w;
	uint32_t hwpt;
	unsigned int i;
	int p[2], status;
	pid_t pid;
	ssize_t n;
	FILE *f;

	if (world_new(&w) || pipe(p))
		return;
	q = iof_queue_create(w.fd, &cfg);
	if (!SCHECK(q))
		goto end;
	tr_rc("HWPT", mock_nested_alloc(w.fd, w.dev, w.parent,
					iof_queue_id(q), &hwpt));
	tr_rc("attach", mock_replace(w.fd, w.stdev, hwpt));
	tr_rc("far into the sequence",
	      mock_eventq_sequence(w.fd, iof_queue_id(q), 1000));
	for (i = 0; i != 4; i++)
		mock_trigger_iopf(w.fd, w.dev, 0, i, 1, 0x1000 * i);
	tr_rc("dispatch", iof_queue_dispatch(q, &take_ops, NULL));
	/* One answered and written, one answered and buffered, two not */
	tr_rc("answer 0", iof_answer_by(q, w.dev, false, 0, 0, 0));
	tr_rc("flush", iof_flush(q));
	tr_rc("answer 1", iof_answer_by(q, w.dev, false, 0, 1, 1));
	mock_trigger_iopf(w.fd, w.dev, 0, 4, 1, 0x4000);
	mock_trigger_iopf(w.fd, w.dev, 0, 5, 1, 0x5000);
	h = (struct handover){
		.iommufd = w.fd,
		.qfd = iof_queue_fd(q),
		.efd = iof_queue_wait_fd(q) == iof_queue_fd(q) ?
			       -1 : iof_queue_wait_fd(q),
		.state_fd = memfd_create("iofault-state", 0),
		.id = iof_queue_id(q),
		.dev = w.dev,
	};
	n = iof_queue_save(q, state, sizeof(state));
	tr("saved: %s", n > 0 ? "yes" : "no");
	if (!SCHECK(n > 0 && pwrite(h.state_fd, state, n, 0) == n))
		goto end;
	clear_cloexec(h.iommufd);
	clear_cloexec(h.qfd);
	clear_cloexec(h.state_fd);
	if (h.efd >= 0)
		clear_cloexec(h.efd);
	fflush(NULL);
	if (be->fake) {
		/*
		 * The fake kernel lives in this process's memory, which a
		 * child would only have a copy of: the new process runs here,
		 * its transcript taken the same way
		 */
		char *text = NULL, *line, *save = NULL;
		size_t tlen;
		FILE *mine = tr_swap(open_memstream(&text, &tlen));

		status = resume_child(&h);
		fclose(tr_swap(mine));
		for (line = strtok_r(text, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			tr("child: %s", line);
		free(text);
		close(p[0]);
		close(p[1]);
		tr("child exit: %d", status);
		SCHECK(!status);
		goto after;
	}
	pid = fork();
	if (!pid) {
		char a[8][16];

		close(p[0]);
		dup2(p[1], 1);
		snprintf(a[0], 16, "%d", be->kind);
		snprintf(a[1], 16, "%d", h.iommufd);
		snprintf(a[2], 16, "%d", h.qfd);
		snprintf(a[3], 16, "%d", h.efd);
		snprintf(a[4], 16, "%d", h.state_fd);
		snprintf(a[5], 16, "%u", h.id);
		snprintf(a[6], 16, "%u", h.dev);
		execl("/proc/self/exe", "kernel_scenarios", "--child",
		      "resume", a[0], a[1], a[2], a[3], a[4], a[5], a[6],
		      (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	/* The child's transcript is this one's */
	f = fdopen(p[0], "r");
	while (f && fgets((char *)buf, sizeof(buf), f)) {
		buf[strcspn((char *)buf, "\n")] = 0;
		tr("child: %s", buf);
	}
	if (f)
		fclose(f);
	waitpid(pid, &status, 0);
	tr("child exit: %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	SCHECK(WIFEXITED(status) && !WEXITSTATUS(status));
after:
	/* The old process's state: nothing left to write (the save did) */
	iof_queue_release(q);
	tr_fdinfo("after", h.qfd);
end:
	world_end(&w);
}

/* argv: --child resume KIND IOMMUFD QFD EFD STATEFD ID DEV */
bool scen_child(int argc, char **argv, int *status)
{
	struct handover h;

	if (argc != 10 || strcmp(argv[1], "--child") ||
	    strcmp(argv[2], "resume"))
		return false;
	backend_use(backend_kernel(atoi(argv[3]), false));
	h = (struct handover){
		.iommufd = atoi(argv[4]),
		.qfd = atoi(argv[5]),
		.efd = atoi(argv[6]),
		.state_fd = atoi(argv[7]),
		.id = strtoul(argv[8], NULL, 0),
		.dev = strtoul(argv[9], NULL, 0),
	};
	tr_swap(stdout);
	*status = resume_child(&h);
	fflush(stdout);
	return true;
}

/* ---- Answers from vCPU threads ---- */

#define NR_VCPUS	4
#define NR_PRGI		64
#define NR_GROUPS	2000

static struct {
	struct iof_queue *q;
	int fd;
	uint32_t dev;
	pthread_mutex_t viommu;
	pthread_cond_t more;
	uint32_t reqs[NR_VCPUS][NR_PRGI];
	unsigned int nr[NR_VCPUS];
	atomic_bool busy[NR_PRGI], stop;
	atomic_uint bad, answered, made;
	pthread_cond_t freed;
} t;

static int inject(struct iof_queue *q, const struct iof_group *g, void *arg)
{
	unsigned int cpu = g->grpid % NR_VCPUS;

	pthread_mutex_lock(&t.viommu);
	t.reqs[cpu][t.nr[cpu]++] = g->grpid;
	pthread_cond_broadcast(&t.more);
	pthread_mutex_unlock(&t.viommu);
	return 0;
}

static const struct iof_ops inject_ops = { .page_request = inject };

static void *vcpu(void *arg)
{
	unsigned int cpu = (uintptr_t)arg;
	uint32_t grpid;

	pthread_mutex_lock(&t.viommu);
	for (;;) {
		while (!t.nr[cpu] && !atomic_load(&t.stop))
			pthread_cond_wait(&t.more, &t.viommu);
		if (!t.nr[cpu])
			break;
		grpid = t.reqs[cpu][--t.nr[cpu]];
		/* With the vIOMMU's lock held, as a VMM's MMIO handler */
		if (iof_answer_by(t.q, t.dev, false, 0, grpid,
				  grpid % 3 ? IOF_RESP_SUCCESS :
					      IOF_RESP_INVALID) ||
		    iof_flush(t.q) < 0)
			atomic_fetch_add(&t.bad, 1);
		atomic_store(&t.busy[grpid], false);
		atomic_fetch_add(&t.answered, 1);
		pthread_cond_broadcast(&t.freed);
	}
	pthread_mutex_unlock(&t.viommu);
	return NULL;
}

/* The device: a page request whenever a PRGI is free */
static void *device(void *arg)
{
	unsigned int i, p = 0;

	for (i = 0; i != NR_GROUPS; i++) {
		pthread_mutex_lock(&t.viommu);
		while (atomic_load(&t.busy[p]))
			pthread_cond_wait(&t.freed, &t.viommu);
		pthread_mutex_unlock(&t.viommu);
		atomic_store(&t.busy[p], true);
		if (mock_trigger_iopf(t.fd, t.dev, 0, p, 1, 0))
			atomic_fetch_add(&t.bad, 1);
		atomic_fetch_add(&t.made, 1);
		p = (p + 1) % NR_PRGI;
	}
	return NULL;
}

static void lib_threads(void)
{
	const struct iof_config cfg = {
		.flags = k73() ? 0 : IOF_FAULT_QUEUE_EVENTFD,
	};
	pthread_t cpus[NR_VCPUS], dev;
	struct world w;
	uint32_t hwpt, i;

	memset(&t, 0, sizeof(t));
	if (world_new(&w))
		return;
	t.q = iof_queue_create(w.fd, &cfg);
	if (!SCHECK(t.q))
		goto end;
	tr_rc("HWPT", mock_nested_alloc(w.fd, w.dev, w.parent,
					iof_queue_id(t.q), &hwpt));
	tr_rc("attach", mock_replace(w.fd, w.stdev, hwpt));
	t.fd = w.fd;
	t.dev = w.dev;
	pthread_mutex_init(&t.viommu, NULL);
	pthread_cond_init(&t.more, NULL);
	pthread_cond_init(&t.freed, NULL);
	for (i = 0; i != NR_VCPUS; i++)
		pthread_create(&cpus[i], NULL, vcpu, (void *)(uintptr_t)i);
	pthread_create(&dev, NULL, device, NULL);
	/* The event loop, here: until every group made was answered */
	while (atomic_load(&t.answered) != NR_GROUPS) {
		if (iof_queue_wait(t.q, 100) < 0)
			break;
		if (iof_queue_dispatch(t.q, &inject_ops, NULL) < 0)
			atomic_fetch_add(&t.bad, 1);
	}
	pthread_join(dev, NULL);
	atomic_store(&t.stop, true);
	pthread_mutex_lock(&t.viommu);
	pthread_cond_broadcast(&t.more);
	pthread_mutex_unlock(&t.viommu);
	for (i = 0; i != NR_VCPUS; i++)
		pthread_join(cpus[i], NULL);
	tr("made %u, answered %u, errors %u", atomic_load(&t.made),
	   atomic_load(&t.answered), atomic_load(&t.bad));
	SCHECK(!atomic_load(&t.bad));
	tr("outstanding %u refused %llu", iof_queue_stats(t.q)->outstanding,
	   (unsigned long long)iof_queue_stats(t.q)->refused);
	tr_counters("counters", w.fd, w.dev);
end:
	world_end(&w);
}

const struct scenario scen_lib[] = {
	{ "lib_shared_eventfd", lib_shared_eventfd, ON_V3 },
	{ "lib_adopt_keeps_fds", lib_adopt_keeps_fds, ON_BOTH },
	{ "lib_resume_fork", lib_resume_fork, ON_BOTH },
	{ "lib_threads", lib_threads, ON_BOTH },
};
const unsigned int nr_scen_lib = sizeof(scen_lib) / sizeof(scen_lib[0]);
