// SPDX-License-Identifier: MIT
/*
 * iommufd_fuzz: a fuzzer of the iommufd fault delivery uAPI, in the spirit
 * of syzkaller, for the debug kernel (KASAN, lockdep, kmemleak) and the
 * selftest mock driver (CONFIG_IOMMUFD_TEST).
 *
 *   iommufd_fuzz [--seed S] [--time SECONDS | --calls N] [--threads N]
 *                [--procs N] [--fail-nth-rate PERCENT] [--verbose]
 *                [--unload] [--big]
 *
 * --procs worker processes (default 2), each with --threads threads
 * (default 4) and its own iommufd contexts, make random calls until
 * --time SECONDS (default 60) pass or --calls N calls are made: every
 * ioctl of fault queues, vEVENTQs, HWPTs (one-step and two-step), vIOMMUs
 * and vDEVICEs, the mock's page request groups (PASID or not, up to its
 * largest, from devices with and without PRI), its vEVENTs (in bulk), its
 * counters, cookie generations and sequence numbers; read, write, poll,
 * close, dup and fork of the queues' fds; with sizes, flags, depths, fds,
 * cookies and buffers at and past their boundaries (short, misaligned,
 * read-only, cut by a guard page). --fail-nth-rate PERCENT of the calls
 * (default 5) run with /proc/self/task/TID/fail-nth armed, so that one of
 * their first allocations (or iommufd's own fail_iommufd sites) fails.
 *
 * A thread works in sequences of 16 to 256 calls; after one, it may close a
 * whole context, as a VMM that exits does. Each thread has its own seed,
 * derived from --seed: the same seed makes the same choices (the kernel's
 * answers under races may differ, so a failure reproduces statistically).
 *
 * Checked (DESIGN.md section 6, and what any kernel owes any caller):
 * - no kernel report: the fuzzer reads /dev/kmsg for BUG:, WARNING:, KASAN,
 *   UBSAN, lockdep, list corruption, refcount_t, hung tasks, an iommufd
 *   object destroy that timed out, kmemleak;
 * - the mock's counters (IOMMU_TEST_OP_IOPF_COUNTERS, dev_id 0: the sums
 *   since the module loaded) show every page request group made during the
 *   run answered exactly once, once everything is closed;
 * - no object and no fd is left once everything is closed (every id swept
 *   with IOMMU_DESTROY, /proc/self/fd scanned, the module's refcount back
 *   to what it was; --unload: the module unloads);
 * - kmemleak finds nothing, when the kernel has it;
 * - reads stay in their buffers and return whole, well-formed messages;
 *   writes take whole, valid answers.
 * A failure prints the seed and the last calls of every thread. With
 * --verbose every call is printed as it is made (what survives a panic).
 *
 * A worker that crashes prints the address and a backtrace, for addr2line.
 *
 * The output is TAP, one test ("ok 1 iommufd_fuzz seed S"), for harnesses;
 * before it, the line
 *   fuzz: N calls, N sequences, N threads, N injected faults, N reports,
 *   N invariant failures
 * Exit status 0 when both are 0, 1 otherwise, 2 on bad usage or setup.
 */
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "fuzz.h"

struct shared *sh;

static void usage(void)
{
	fprintf(stderr,
		"usage: iommufd_fuzz [--seed S] [--time SECONDS | --calls N] [--threads N]\n"
		"                    [--procs N] [--fail-nth-rate PERCENT] [--verbose]\n"
		"                    [--unload] [--big]\n"
		"       iommufd_fuzz --self-test\n");
	exit(2);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = write(fd, val, strlen(val)) == (ssize_t)strlen(val) ? 0 : -1;
	close(fd);
	return rc;
}

static long read_long(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static int to_high(int fd, int at)
{
	int h;

	if (fd < 0)
		return fd;
	h = fcntl(fd, F_DUPFD_CLOEXEC, at);
	close(fd);
	return h;
}

/*
 * As iommufd_fail_nth.c does: any allocation may fail (GFP_KERNEL ones
 * too), quietly (a stack dump per injected fault would drown the console)
 */
static bool setup_fault_injection(void)
{
	DIR *d = opendir("/sys/kernel/debug");
	struct dirent *de;
	char path[300];
	bool ok;

	if (!d)
		return false;
	ok = !write_file("/sys/kernel/debug/failslab/ignore-gfp-wait", "N");
	write_file("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N");
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "fail", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/debug/%s/verbose",
			 de->d_name);
		write_file(path, "0");
	}
	closedir(d);
	return ok;
}

/* ---- Kernel reports on /dev/kmsg ---- */

static const char *const report_pat[] = {
	"BUG:", "WARNING:", "KASAN", "UBSAN:", "lockdep", "possible circular",
	"Invalid wait context", "kmemleak: ", "unreferenced object",
	"general protection fault", "Oops", "list_add corruption",
	"list_del corruption", "refcount_t:", "ODEBUG:", "INFO: task",
	"soft lockup", "hard LOCKUP", "sleeping function called",
	"scheduling while atomic", "inconsistent lock state",
	"possible recursive locking", "suspicious RCU usage",
	"Time out waiting for iommufd object", "Kernel panic",
	"turning off the locking correctness validator",
	"trying to register non-static key",
};

static struct {
	int fd;
	int in_report;		/* lines left of the report being shown */
	int shown;
	pthread_t thread;
	atomic_bool stop;
} km = { .fd = -1 };

static bool is_report(const char *msg)
{
	unsigned int i;

	/* Its own, not the kernel's: kmemleak's start-up, an armed fault */
	if (strstr(msg, "FAULT_INJECTION") ||
	    (strstr(msg, "kmemleak: ") && !strstr(msg, "suspected")))
		return false;
	for (i = 0; i < sizeof(report_pat) / sizeof(report_pat[0]); i++)
		if (strstr(msg, report_pat[i]))
			return true;
	return false;
}

/* Read what the kernel logged since the last call: false once drained */
static bool kmsg_drain_one(void)
{
	char rec[2048], *msg;
	ssize_t n = read(km.fd, rec, sizeof(rec) - 1);

	if (n < 0)
		return errno == EPIPE;	/* overwritten: go on with the next */
	if (!n)
		return false;
	rec[n] = 0;
	msg = strchr(rec, ';');
	msg = msg ? msg + 1 : rec;
	*strchrnul(msg, '\n') = 0;
	if (!km.in_report && is_report(msg)) {
		atomic_fetch_add(&sh->report_count, 1);
		km.in_report = 60;
		print_locked("# kmsg: kernel report %u:\n",
			     atomic_load(&sh->report_count));
	}
	if (km.in_report) {
		if (km.shown++ < 400)
			print_locked("# kmsg: | %s\n", msg);
		km.in_report--;
		if (strstr(msg, "---[ end trace") ||
		    (km.in_report < 57 && msg[0] == '=' && msg[1] == '='))
			km.in_report = 0;
		if (!km.in_report)
			dump_rings("a kernel report (above)");
	}
	return true;
}

static void *kmsg_watch(void *arg)
{
	struct pollfd pfd = { .events = POLLIN };

	pfd.fd = km.fd;
	while (!atomic_load(&km.stop)) {
		if (poll(&pfd, 1, 200) > 0)
			while (kmsg_drain_one())
				;
	}
	return NULL;
}

/* ---- Workers ---- */

struct wthread {
	pthread_t th;
	struct thr t;
	struct proc *p;
	int idx;
	uint64_t seed, budget;
	pthread_barrier_t *ready;
};

static bool time_up(struct thr *t, uint64_t budget)
{
	if (atomic_load(&sh->stop))
		return true;
	if (budget)
		return t->ncalls >= budget;
	return now_ns() >= sh->deadline_ns;
}

static void *worker_thread(void *arg)
{
	struct wthread *w = arg;
	struct thr *t = &w->t;
	unsigned int len, i;
	int c;

	thr_init(t, w->p, w->idx, w->seed);
	/* Every thread's own descriptors exist before any call is made */
	pthread_barrier_wait(w->ready);
	while (!time_up(t, w->budget)) {
		len = 16 + rnd_n(t, 241);
		for (i = 0; i < len && !time_up(t, w->budget); i++)
			do_call(t);
		atomic_fetch_add(&sh->st.sequences, 1);
		if (one_in(t, 6) && (c = ctx_pick(t)) >= 0)
			ctx_close_all(t, c);
	}
	return NULL;
}

/*
 * A worker that crashes says where, for addr2line -e iommufd_fuzz: the
 * fuzzer's own bug, or memory a kernel's copy overran
 */
static void crash_report(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	unsigned long long ip = 0;
	void *frames[32];
	char b[192];
	int n;

#ifdef __x86_64__
	ip = uc->uc_mcontext.gregs[REG_RIP];
#else
	(void)uc;
#endif
	n = snprintf(b, sizeof(b),
		     "# FAIL: worker pid %d: signal %d at address %p, ip %#llx; backtrace:\n",
		     getpid(), sig, si->si_addr, ip);
	if (write(1, b, n) < 0)
		_exit(128 + sig);
	n = backtrace(frames, 32);
	backtrace_symbols_fd(frames, n, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int worker(int idx)
{
	struct sigaction sa = { .sa_sigaction = crash_report,
				.sa_flags = SA_SIGINFO | SA_RESETHAND };
	struct wthread w[MAX_THREADS];
	pthread_barrier_t ready;
	struct thr td;
	struct proc *p;
	uint64_t budget = 0, x;
	int i, bad;

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	p = calloc(1, sizeof(*p));
	proc_init(p, idx);
	if (sh->o.calls)
		budget = sh->o.calls / (sh->o.procs * sh->o.threads) ?: 1;
	pthread_barrier_init(&ready, NULL, sh->o.threads);
	for (i = 0; i < sh->o.threads; i++) {
		x = sh->o.seed ^ (0x9e3779b97f4a7c15ull *
				  (idx * MAX_THREADS + i + 1));
		w[i] = (struct wthread){
			.p = p, .idx = i, .seed = splitmix(&x),
			.budget = budget, .ready = &ready,
		};
		pthread_create(&w[i].th, NULL, worker_thread, &w[i]);
	}
	for (i = 0; i < sh->o.threads; i++)
		pthread_join(w[i].th, NULL);
	for (i = 0; i < sh->o.threads; i++)
		thr_fini(&w[i].t);
	/* The teardown logs as one more thread */
	x = sh->o.seed ^ idx;
	thr_init(&td, p, sh->o.threads, splitmix(&x));
	bad = proc_teardown(p, &td);
	thr_fini(&td);
	return bad ? 1 : 0;
}

/* ---- The end of the run ---- */

static int kmemleak_scan(void)
{
	const char *f = "/sys/kernel/debug/kmemleak";
	char line[512];
	int n = 0, shown = 0;
	FILE *fp;

	if (access(f, F_OK))
		return -1;
	/*
	 * kmemleak reports an object only once it is older than its minimum
	 * age (5 s) and unreferenced in a scan: wait that long, then scan
	 * twice, as scripts/guest-kmemleak does
	 */
	sleep(6);
	write_file(f, "scan");
	write_file(f, "scan");
	fp = fopen(f, "r");
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		if (strstr(line, "unreferenced object"))
			n++;
		if (n && shown++ < 120)
			printf("# kmemleak: %s", line);
	}
	fclose(fp);
	return n;
}

static int delete_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? errno : 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "time", required_argument, NULL, 't' },
		{ "calls", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 'T' },
		{ "procs", required_argument, NULL, 'P' },
		{ "fail-nth-rate", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "unload", no_argument, NULL, 'u' },
		{ "big", no_argument, NULL, 'b' },
		{ "self-test", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct opts o = { .seconds = 60, .threads = 4, .procs = 2,
			  .fail_rate = 500 };
	uint64_t c0[4], c1[4], dg = 0, da = 0, t0, deadline;
	pid_t pids[MAX_PROCS];
	pthread_mutexattr_t ma;
	long ref0 = -1, ref1 = -1;
	bool have_counters, seeded = false, fi;
	unsigned int failures = 0, reports;
	struct rlimit rl = { 8192, 8192 };
	int opt, i, st, ctl, leaks = -1;

	while ((opt = getopt_long(argc, argv, "s:t:c:T:P:f:vubSh", lo, NULL)) != -1) {
		switch (opt) {
		case 's':
			o.seed = strtoull(optarg, NULL, 0);
			seeded = true;
			break;
		case 't':
			o.seconds = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			o.calls = strtoull(optarg, NULL, 0);
			break;
		case 'T':
			o.threads = atoi(optarg);
			break;
		case 'P':
			o.procs = atoi(optarg);
			break;
		case 'f':
			o.fail_rate = (unsigned int)(strtod(optarg, NULL) * 100);
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'u':
			o.unload = true;
			break;
		case 'b':
			o.big = true;
			break;
		case 'S':
			/* The fuzzer's own bookkeeping, on the host: no kernel */
			sh = calloc(1, sizeof(*sh));
			printf("TAP version 13\n1..1\n");
			return sh && !table_self_test() ? 0 : 1;
		default:
			usage();
		}
	}
	if (optind != argc || o.threads < 1 || o.threads >= MAX_THREADS ||
	    o.procs < 1 || o.procs > MAX_PROCS || o.fail_rate > 10000)
		usage();
	if (!seeded)
		o.seed = now_ns() ^ ((uint64_t)getpid() << 32);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* One TAP test, so that a harness counts the run as a pass or a fail */
	printf("TAP version 13\n1..1\n");
	/* The fuzzer's own descriptors live above FD_LIMIT */
	if (setrlimit(RLIMIT_NOFILE, &rl))
		perror("setrlimit");

	/* A modular kernel that has not loaded it yet */
	if (access("/dev/iommu", F_OK) &&
	    system("modprobe iommufd 2>/dev/null") != 0)
		fprintf(stderr, "iommufd_fuzz: modprobe iommufd failed\n");
	ctl = to_high(open("/dev/iommu", O_RDWR), FD_LIMIT + 1);
	if (ctl < 0) {
		perror("iommufd_fuzz: /dev/iommu");
		return 2;
	}
	fi = setup_fault_injection();
	if (!fi && o.fail_rate) {
		printf("# no fault injection in this kernel (failslab, fail-nth): none armed\n");
		o.fail_rate = 0;
	}
	write_file("/sys/kernel/debug/kmemleak", "clear");
	km.fd = to_high(open("/dev/kmsg", O_RDONLY | O_NONBLOCK), FD_LIMIT + 2);
	if (km.fd >= 0)
		lseek(km.fd, 0, SEEK_END);
	else
		printf("# no /dev/kmsg: kernel reports are left to the console scan\n");
	have_counters = !mock_counters_sum(ctl, c0);
	if (!have_counters)
		printf("# the mock has no IOMMU_TEST_OP_IOPF_COUNTERS: answers are not counted\n");
	ref0 = read_long("/sys/module/iommufd/refcnt");

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	sh->o = o;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&sh->print_lock, &ma);
	t0 = now_ns();
	sh->deadline_ns = t0 + o.seconds * 1000000000ull;

	printf("# fuzz: seed 0x%016llx, %d procs x %d threads, %s, fail-nth on %.2f%% of calls\n",
	       (unsigned long long)o.seed, o.procs, o.threads,
	       o.calls ? "a call budget" : "a time budget",
	       o.fail_rate / 100.0);
	if (o.calls)
		printf("# fuzz: %llu calls\n", (unsigned long long)o.calls);
	else
		printf("# fuzz: %u s\n", o.seconds);
	if (km.fd >= 0)
		pthread_create(&km.thread, NULL, kmsg_watch, NULL);

	for (i = 0; i < o.procs; i++) {
		pids[i] = fork();
		if (!pids[i]) {
			close(ctl);
			if (km.fd >= 0)
				close(km.fd);
			_exit(worker(i));
		}
	}
	/*
	 * Workers stop at the deadline; one that does not within two minutes
	 * more is stuck in the kernel (the hung task detector says where)
	 */
	deadline = sh->deadline_ns + 120 * 1000000000ull;
	for (i = 0; i < o.procs; i++) {
		while (waitpid(pids[i], &st, o.calls ? 0 : WNOHANG) == 0) {
			if (now_ns() > deadline) {
				fail(NULL, "worker %d still running two minutes past the deadline", i);
				atomic_store(&sh->stop, true);
				kill(pids[i], SIGKILL);
				waitpid(pids[i], &st, 0);
				break;
			}
			usleep(100000);
		}
		if (!WIFEXITED(st))
			fail(NULL, "worker %d died (status %#x)", i, st);
	}

	/*
	 * Everything is closed. Every group made since the start was answered
	 * exactly once: by a reader, by the kernel for a full queue or a
	 * detach, for want of a handler, or as the queue went. The kernel
	 * releases the last references of an exiting process before its
	 * parent can reap it, so this holds now; it is read again for a few
	 * seconds only because a file put from a kernel thread is released
	 * later (delayed_fput), and nothing signals when it is.
	 */
	if (have_counters) {
		for (i = 0; i < 100; i++) {
			if (mock_counters_sum(ctl, c1))
				break;
			dg = c1[0] - c0[0];
			da = c1[1] + c1[2] + c1[3] - c0[1] - c0[2] - c0[3];
			if (dg == da)
				break;
			usleep(50000);
		}
		if (dg != da)
			fail(NULL, "%llu page request groups made, %llu answers (%s)",
			     (unsigned long long)dg, (unsigned long long)da,
			     da > dg ? "answered twice" : "left unanswered");
		if (!atomic_load(&sh->st.injected) && c1[3] != c0[3])
			fail(NULL, "%llu groups answered FAILURE with no fault injected",
			     (unsigned long long)(c1[3] - c0[3]));
	}
	close(ctl);
	/* And nothing holds the module but what held it before */
	if (ref0 >= 0) {
		for (i = 0; i < 100; i++) {
			ref1 = read_long("/sys/module/iommufd/refcnt");
			if (ref1 == ref0 - 1)
				break;
			usleep(50000);
		}
		if (ref1 != ref0 - 1)
			fail(NULL, "the iommufd module's refcount is %ld, %ld before the run",
			     ref1, ref0 - 1);
	}
	if (o.unload && ref0 >= 0) {
		int err = delete_module("iommufd");

		if (err)
			fail(NULL, "iommufd does not unload: %s", strerror(err));
		else
			printf("# iommufd unloaded\n");
	}
	leaks = kmemleak_scan();
	if (leaks > 0) {
		printf("# kmemleak: %d unreferenced objects\n", leaks);
		/* Counted once: its own "suspected memory leaks" line too */
		if (!atomic_load(&sh->report_count))
			atomic_fetch_add(&sh->report_count, 1);
		dump_rings("kmemleak found leaks");
	}
	if (km.fd >= 0) {
		atomic_store(&km.stop, true);
		pthread_join(km.thread, NULL);
		while (kmsg_drain_one())
			;
	}
	failures = atomic_load(&sh->st.failures);
	reports = atomic_load(&sh->report_count);

	printf("# fuzz: %.1f s, %.0f calls/s, %llu groups read, %llu answers taken, %llu vEVENTs read, %llu objects and %llu fds made, %llu forks\n",
	       (now_ns() - t0) / 1e9,
	       atomic_load(&sh->st.calls) / ((now_ns() - t0) / 1e9),
	       (unsigned long long)atomic_load(&sh->st.groups_read),
	       (unsigned long long)atomic_load(&sh->st.answers),
	       (unsigned long long)atomic_load(&sh->st.vevents_read),
	       (unsigned long long)atomic_load(&sh->st.objects),
	       (unsigned long long)atomic_load(&sh->st.fds),
	       (unsigned long long)atomic_load(&sh->st.forks));
	if (atomic_load(&sh->st.autos_left))
		printf("# fuzz: %llu automatic HWPTs left by a detach that raced a lookup (7.3 keeps them)\n",
		       (unsigned long long)atomic_load(&sh->st.autos_left));
	if (atomic_load(&sh->st.untracked))
		printf("# fuzz: %llu objects made with the table full (untracked)\n",
		       (unsigned long long)atomic_load(&sh->st.untracked));
	printf("# fuzz: fail-nth armed on %llu calls, fired on %llu; mock: %llu groups made, %llu answers (%llu SUCCESS, %llu INVALID, %llu FAILURE); kmemleak: %s\n",
	       (unsigned long long)atomic_load(&sh->st.armed),
	       (unsigned long long)atomic_load(&sh->st.injected),
	       (unsigned long long)dg, (unsigned long long)da,
	       have_counters ? (unsigned long long)(c1[1] - c0[1]) : 0ull,
	       have_counters ? (unsigned long long)(c1[2] - c0[2]) : 0ull,
	       have_counters ? (unsigned long long)(c1[3] - c0[3]) : 0ull,
	       leaks < 0 ? "not in this kernel" : leaks ? "LEAKS" : "clean");
	if (failures || reports)
		printf("# fuzz: FAIL, seed 0x%016llx\n",
		       (unsigned long long)o.seed);
	printf("fuzz: %llu calls, %llu sequences, %d threads, %llu injected faults, %u reports, %u invariant failures\n",
	       (unsigned long long)atomic_load(&sh->st.calls),
	       (unsigned long long)atomic_load(&sh->st.sequences),
	       o.procs * o.threads,
	       (unsigned long long)atomic_load(&sh->st.injected), reports,
	       failures);
	printf("%sok 1 iommufd_fuzz seed 0x%016llx\n",
	       failures || reports ? "not " : "", (unsigned long long)o.seed);
	return failures || reports ? 1 : 0;
}
