// SPDX-License-Identifier: GPL-2.0
/*
 * smmuv3_fault: what a VMM does with a nested SMMUv3, driven against the
 * real arm-smmu-v3 driver of an arm64 guest under QEMU's emulated SMMUv3
 * (virt,iommu=smmuv3, arm-smmuv3.stage=nested) with QEMU's edu device behind
 * it. It is the guest's /init (scripts/arm64-lane builds it statically and
 * boots it); the kernel command line says what to do:
 *
 *   lane=stock   QEMU's own IORT: the root complex has no CANWBS and the
 *                SMMU no S2FWB, so Linux refuses an SMMUv3 vIOMMU
 *                (EOPNOTSUPP). Prints the IORT for the host ("# iort:"),
 *                which builds the override of the nested run from it.
 *   lane=nested  The IORT from the initramfs (ACPI table upgrade), the same
 *                but for CANWBS: the whole VMM set-up and its faults.
 *   kernel=base|patched  which kernel the lane booted; checked against what
 *                the kernel does (a v3-only call's errno).
 *
 * The nested run sets up what a VMM does: IOAS (the guest's IPA space, one
 * buffer at IPA_BASE), a nesting-parent HWPT, a vIOMMU, a vEVENTQ, a vDEVICE
 * with a virtual StreamID and nested HWPTs carrying a guest STE whose
 * context descriptors and stage-1 tables live in that buffer; then edu DMAs.
 * It checks, through the real arm-smmu-v3 event path, C_BAD_CD for a bad
 * CD, F_TRANSLATION for a valid CD over an empty stage-1 table (virtual
 * StreamID, input address, direction, stage 1), a DMA translated by both
 * stages, stage-2 faults (stage-1 table and CD outside the IOAS) staying
 * with the host, a small vEVENTQ overflowing into LOST_EVENTS with the
 * right sequence numbers, the host never logging what a guest's vEVENTQ
 * took or counted lost, and a fault queue on a device that can neither
 * stall nor send page requests: SMMUv3 attaches it and it stays silent.
 * On the patched kernel also the series' additions: IOPF_CAPABLE in one
 * step, and the vEVENTQ eventfd (edge-triggered, as DESIGN.md says).
 *
 * What a 7.3 VMM observes is printed as "# seen[7.3]:" lines, the same on
 * both kernels (scripts/arm64-lane compare); "# seen[v3]:" lines are the
 * series' additions. Kinds and invariants are asserted, never QEMU's count
 * of events per DMA (one per 4-byte access in QEMU 10).
 *
 * Synchronisation: QEMU records an edu DMA's events in the SMMU's event
 * queue and raises its wired interrupt before edu reports the DMA done; the
 * guest has one CPU and arm-smmu-v3 drains its event queue in a SCHED_FIFO
 * IRQ thread, which runs before this program does again. So once a DMA is
 * done and one of its events (or its host log line) is seen, every event
 * of it has been handled. Each wait is bounded (WAIT_MS), never a sleep
 * standing in for the event it waits for.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/reboot.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "guest.h"

/*
 * The series' v3 additions, for a build against 7.3's headers (as liburing
 * carries io_uring.h). The layouts are v3's: new fields appended.
 */
#ifndef IOMMU_VEVENTQ_ALLOC_EVENTFD
#define IOMMU_VEVENTQ_ALLOC_EVENTFD	(1 << 0)
#endif
#ifndef IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE
#define IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE	(1 << 4)
#endif

/* struct iommu_veventq_alloc of v3: 7.3's 32 bytes, then eventfd */
struct veventq_alloc_v3 {
	uint32_t size;
	uint32_t flags;
	uint32_t viommu_id;
	uint32_t type;
	uint32_t veventq_depth;
	uint32_t out_veventq_id;
	uint32_t out_veventq_fd;
	uint32_t reserved;
	int32_t eventfd;
	uint32_t reserved2;
};

/* struct iommu_hwpt_alloc of v3: 7.3's 56 bytes, then the fault queue's */
struct hwpt_alloc_v3 {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pt_id;
	uint32_t out_hwpt_id;
	uint32_t reserved;
	uint32_t data_type;
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t fault_id;
	uint32_t reserved2;
	uint32_t fault_flags;
	int32_t fault_eventfd;
	uint32_t fault_depth;
	uint32_t out_fault_id;
	uint32_t out_fault_fd;
	uint32_t reserved3;
};

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
/* edu registers (QEMU docs/specs/edu.rst) */
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_RUN	0x1
#define EDU_CMD_TO_PCI	0x2
#define EDU_BUF		0x40000	/* edu's own DMA buffer */

#define VSID		0x42	/* the virtual StreamID (vDEVICE virt_id) */
#define WAIT_MS		10000	/* upper bound of any wait */

/*
 * The guest's IPA space (the IOAS): one buffer of NPAGES pages at IPA_BASE.
 * Each page has one role; STEs point at CDs, CDs at stage-1 tables, by IPA.
 */
#define IPA_BASE	0x100000ULL
#define NPAGES		16
enum {
	PG_CD_ZERO,	/* an all-zero CD: C_BAD_CD */
	PG_CD_EMPTY,	/* a valid CD over the empty table */
	PG_L0_EMPTY,	/* a stage-1 level-0 table with no entry */
	PG_CD_MAP,	/* a valid CD over the four tables below */
	PG_L0, PG_L1, PG_L2, PG_L3,
	PG_DATA,	/* what PG_CD_MAP maps IOVA_MAP to */
	PG_CD_S2WALK,	/* a valid CD whose table is outside the IOAS */
	PG_CD_EMPTY2,	/* as PG_CD_EMPTY, other ASIDs: no stale TLB */
	PG_CD_EMPTY3,
	PG_CD_EMPTY4,
	PG_CD_EMPTY5,
};
#define IPA(pg)		(IPA_BASE + (uint64_t)(pg) * 4096)
#define IPA_UNMAPPED	0x4000000ULL	/* in no IOAS mapping: stage 2 faults */

/* Stage-1 input addresses (edu masks its DMA addresses to 28 bits) */
#define IOVA_R		0x0234000ULL	/* read by edu */
#define IOVA_W		0x0345000ULL	/* written by edu */
#define IOVA_MAP	0x0abc000ULL	/* mapped by PG_CD_MAP to PG_DATA */

/* SMMUv3 STE, CD, page table and event record fields (SMMUv3 spec) */
#define STE0_V			(1ULL << 0)
#define STE0_CFG_S1_TRANS	(5ULL << 1)
#define CD0_T0SZ(x)		((uint64_t)(x) << 0)
#define CD0_IRGN0_WBWA		(1ULL << 8)
#define CD0_ORGN0_WBWA		(1ULL << 10)
#define CD0_SH0_IS		(3ULL << 12)
#define CD0_EPD1		(1ULL << 30)
#define CD0_V			(1ULL << 31)
#define CD0_IPS_44		(4ULL << 32)
#define CD0_AA64		(1ULL << 41)
#define CD0_R			(1ULL << 45)	/* record faults */
#define CD0_A			(1ULL << 46)	/* abort, not RAZ/WI */
#define CD0_ASID(x)		((uint64_t)(x) << 48)
#define PTE_TABLE		3ULL		/* valid, table/page */
#define PTE_AP_EL0		(1ULL << 6)
#define PTE_SH_IS		(3ULL << 8)
#define PTE_AF			(1ULL << 10)
#define EVT_C_BAD_CD		0x0a
#define EVT_F_TRANSLATION	0x10
#define EVT_ID(e)		((e)[0] & 0xff)
#define EVT_SID(e)		((uint32_t)((e)[0] >> 32))
#define EVT_RNW(e)		(((e)[1] >> 35) & 1)
#define EVT_S2(e)		(((e)[1] >> 39) & 1)
#define EVT_CLASS(e)		(((e)[1] >> 40) & 3)
#define EVT_ADDR(e)		((e)[2])
/* IDR0: S1P bit 1, S2P bit 0; IDR3: FWB bit 8 */
#define IDR0_S1P		(1U << 1)
#define IDR0_S2P		(1U << 0)
#define IDR3_FWB		(1U << 8)
/* IORT (ACPI): root complex node type, its memory access flags */
#define IORT_NODE_PCI_RC	2
#define IORT_MF_CANWBS		(1 << 2)

static int iommufd, devfd;
static uint32_t dev_id, ioas_id, s2_hwpt_id, viommu_id;
static uint32_t phys_sid;
static volatile uint8_t *bar0;
static uint8_t *ipa_mem;	/* NPAGES pages, at IPA_BASE in the IOAS */
static bool patched;		/* the series (v3) is in this kernel */

static void __attribute__((noreturn)) bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	printf("# arm64-lane verdict: FAIL (bailed out after %d tests)\n",
	       tests);
	fflush(stdout);
	sync();
	if (getpid() == 1)
		reboot(LINUX_REBOOT_CMD_POWER_OFF);
	exit(1);
}

/* ---- the kernel log, from /dev/kmsg ---- */

static int kmsg_fd = -1;
static char kmsg_text[1 << 18];	/* every message read so far, one a line */
static size_t kmsg_len;

/* Read what the kernel logged since the last call; true if anything */
static bool kmsg_collect(void)
{
	char rec[2048];
	bool any = false;
	ssize_t n;

	for (;;) {
		const char *msg, *end;
		size_t len;

		n = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)	/* overwritten: go on */
			continue;
		if (n <= 0)
			break;
		rec[n] = 0;
		/* "level,seq,time,flags;message\n" then " KEY=value" lines */
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		end = strchr(msg, '\n');
		len = end ? (size_t)(end - msg) : strlen(msg);
		if (kmsg_len + len + 2 < sizeof(kmsg_text)) {
			memcpy(kmsg_text + kmsg_len, msg, len);
			kmsg_len += len;
			kmsg_text[kmsg_len++] = '\n';
			kmsg_text[kmsg_len] = 0;
		}
		any = true;
	}
	return any;
}

/* Wait until a line logged after @from contains @needle; its offset or -1 */
static long kmsg_wait(size_t from, const char *needle, int ms)
{
	struct timespec t0, t;
	const char *p;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = kmsg_fd, .events = POLLIN };
		long left;

		kmsg_collect();
		p = strstr(kmsg_text + from, needle);
		if (p)
			return p - kmsg_text;
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - ((t.tv_sec - t0.tv_sec) * 1000 +
			     (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return -1;
		poll(&pfd, 1, left);
	}
}

/* How many lines logged after @from contain @needle */
static int kmsg_count(size_t from, const char *needle)
{
	const char *p = kmsg_text + from;
	int n = 0;

	kmsg_collect();
	while ((p = strstr(p, needle))) {
		n++;
		p++;
	}
	return n;
}

/* The arm-smmu-v3 driver logs each event it keeps for the host this way */
#define HOST_EVENT	"arm-smmu-v3 arm-smmu-v3.0.auto: event 0x"

/* ---- edu ---- */

static uint64_t rd64(unsigned int off)
{
	return *(volatile uint64_t *)(bar0 + off);
}

static void wr64(unsigned int off, uint64_t val)
{
	*(volatile uint64_t *)(bar0 + off) = val;
}

/*
 * One edu DMA; true once edu reports it done. edu runs it from a 100 ms
 * timer and needs no IOMMU success to finish: a faulting DMA completes too.
 */
static bool edu_dma(uint64_t src, uint64_t dst, uint64_t cnt, uint64_t cmd)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	int i;

	wr64(EDU_DMA_SRC, src);
	wr64(EDU_DMA_DST, dst);
	wr64(EDU_DMA_CNT, cnt);
	wr64(EDU_DMA_CMD, cmd | EDU_CMD_RUN);
	for (i = 0; i < WAIT_MS / 5; i++) {
		if (!(rd64(EDU_DMA_CMD) & EDU_CMD_RUN))
			return true;
		nanosleep(&ts, NULL);	/* edu has no completion we can wait on */
	}
	return false;
}

static bool edu_read(uint64_t iova, uint64_t cnt)
{
	return edu_dma(iova, EDU_BUF, cnt, 0);
}

static bool edu_write(uint64_t iova, uint64_t cnt)
{
	return edu_dma(EDU_BUF, iova, cnt, EDU_CMD_TO_PCI);
}

/* /dev/vfio/devices/vfioN of @bdf once vfio-pci has bound it */
static int open_vfio_cdev(const char *bdf)
{
	char path[512];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "vfio", 4))
			continue;
		snprintf(path, sizeof(path), "/dev/vfio/devices/%s", de->d_name);
		closedir(d);
		return open(path, O_RDWR);
	}
	closedir(d);
	errno = ENOENT;
	return -1;
}

/* ---- the guest init's duties ---- */

static void init_guest(void)
{
	int fd;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	/* No /dev/console in the initramfs: the kernel gave us no stdio */
	fd = open("/dev/console", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

/* The modules in /modules.list, in order (the host resolved the deps) */
static void load_modules(void)
{
	char line[512];
	FILE *f = fopen("/modules.list", "r");

	if (!f)
		return;		/* a kernel without modules */
	while (fgets(line, sizeof(line), f)) {
		int fd;

		line[strcspn(line, "\n")] = 0;
		if (!line[0])
			continue;
		fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			bail(line);
		if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
			bail(line);
		close(fd);
		printf("# loaded %s\n", strrchr(line, '/') + 1);
	}
	fclose(f);
	/* Only a module has an initstate: iommufd is not built in */
	ok(!access("/sys/module/iommufd/initstate", F_OK) &&
	   !access("/sys/module/vfio_pci/initstate", F_OK),
	   "iommufd and vfio-pci are modules, loaded");
}

/* The kernel's log, for the host's console scan, and power off */
static void __attribute__((noreturn)) finish(void)
{
	const char *p, *nl;

	printf("# %d tests, %d failed\n", tests, failed);
	printf("# arm64-lane verdict: %s (%d tests, %d failed)\n",
	       failed ? "FAIL" : "PASS", tests, failed);
	kmsg_collect();
	for (p = kmsg_text; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		printf("# kmsg: %.*s\n", (int)(nl - p), p);
	}
	printf("# arm64-lane end\n");
	fflush(stdout);
	sync();
	if (getpid() == 1)
		reboot(LINUX_REBOOT_CMD_POWER_OFF);
	exit(failed ? 1 : 0);
}

/* ---- iommufd ---- */

static int ioas_map(uint64_t iova, void *va, size_t len)
{
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas_id,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	return ioctl(iommufd, IOMMU_IOAS_MAP, &map);
}

static int destroy(uint32_t id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return ioctl(iommufd, IOMMU_DESTROY, &d);
}

/* A vEVENTQ: 7.3's structure without @efd (< 0), v3's with it */
static int veventq_alloc(uint32_t depth, int efd, uint32_t *id)
{
	struct veventq_alloc_v3 cmd = {
		.size = efd < 0 ? 32 : sizeof(cmd),
		.flags = efd < 0 ? 0 : IOMMU_VEVENTQ_ALLOC_EVENTFD,
		.viommu_id = viommu_id,
		.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
		.veventq_depth = depth,
		.eventfd = efd < 0 ? 0 : efd,
	};

	if (ioctl(iommufd, IOMMU_VEVENTQ_ALLOC, &cmd))
		return -1;
	*id = cmd.out_veventq_id;
	return cmd.out_veventq_fd;
}

/* The guest STE of a nested HWPT: stage 1 from the CD at IPA @cd */
static void make_ste(struct iommu_hwpt_arm_smmuv3 *ste, uint64_t cd)
{
	memset(ste, 0, sizeof(*ste));
	ste->ste[0] = STE0_V | STE0_CFG_S1_TRANS | (cd & ~0x3fULL);
}

/*
 * A nested HWPT on the vIOMMU for the STE pointing at @cd, attached to
 * edu (replacing what was attached); its ID, 0 on failure. @flags and
 * @fault_id as IOMMU_HWPT_ALLOC's; @fault_fd gets an IOPF_CAPABLE one's.
 */
static uint32_t nested_attach(uint64_t cd, uint32_t flags, uint32_t fault_id,
			      int *fault_fd)
{
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at) };
	struct iommu_hwpt_arm_smmuv3 ste;
	struct hwpt_alloc_v3 cmd = {
		.size = flags & IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE ?
			sizeof(cmd) : 56,
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = viommu_id,
		.data_type = IOMMU_HWPT_DATA_ARM_SMMUV3,
		.data_len = sizeof(ste),
		.data_uptr = (uintptr_t)&ste,
		.fault_id = fault_id,
	};

	make_ste(&ste, cd);
	if (ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd)) {
		printf("# IOMMU_HWPT_ALLOC(nested, CD at 0x%" PRIx64
		       ", flags 0x%x): %s\n", cd, flags, strerror(errno));
		return 0;
	}
	if (fault_fd)
		*fault_fd = cmd.out_fault_fd;
	at.pt_id = cmd.out_hwpt_id;
	if (ioctl(devfd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
		printf("# VFIO_DEVICE_ATTACH_IOMMUFD_PT(%u): %s\n",
		       cmd.out_hwpt_id, strerror(errno));
		return 0;
	}
	return cmd.out_hwpt_id;
}

/* ---- vEVENTs ---- */

struct vev {
	uint32_t flags;
	uint32_t seq;
	uint64_t evt[4];
};
#define LOST(v)	((v)->flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS)

#define MAX_VEV	256
static struct vev vevs[MAX_VEV];

static bool readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLIN);
}

/*
 * Read every vEVENT queued into vevs[@n...]; the new total (LOST_EVENTS
 * headers included)
 */
static int read_vevents(int fd, int n)
{
	static uint8_t buf[8192];
	ssize_t len;

	while ((len = read(fd, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off + 8 <= len && n < MAX_VEV) {
			struct iommufd_vevent_header h;
			struct vev *v = &vevs[n++];

			memcpy(&h, buf + off, sizeof(h));
			off += sizeof(h);
			v->flags = h.flags;
			v->seq = h.sequence;
			memset(v->evt, 0, sizeof(v->evt));
			if (h.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS)
				continue;	/* header only */
			memcpy(v->evt, buf + off, sizeof(v->evt));
			off += sizeof(v->evt);
		}
	}
	if (len < 0)
		printf("# read(vEVENTQ): %s\n", strerror(errno));
	return n;
}

/* Wait for a DMA's vEVENTs, then read them all (see the top comment) */
static int wait_vevents(int fd, int n)
{
	if (!readable(fd, WAIT_MS))
		return n;
	return read_vevents(fd, n);
}

/* What a phase saw, for the comparison of kernels; @tag 7.3 or v3 */
static void seen(const char *tag, const char *phase, int n)
{
	char ids[64] = "", lost[32] = "-";
	unsigned int sids = 0, nsid = 0, s2 = 0, rnw = 0, nlost = 0;
	int i;

	for (i = 0; i < n; i++) {
		struct vev *v = &vevs[i];
		char id[8];

		if (LOST(v)) {
			nlost++;
			snprintf(lost, sizeof(lost), "%u", v->seq);
			continue;
		}
		snprintf(id, sizeof(id), "%02" PRIx64 ",", EVT_ID(v->evt));
		if (!strstr(ids, id) && strlen(ids) + strlen(id) < sizeof(ids))
			strcat(ids, id);
		if (!nsid++ || sids == EVT_SID(v->evt))
			sids = EVT_SID(v->evt);
		else
			sids = ~0U;
		s2 |= 1 << EVT_S2(v->evt);
		rnw |= 1 << EVT_RNW(v->evt);
	}
	if (ids[0])
		ids[strlen(ids) - 1] = 0;
	printf("# seen[%s]: %s: vevents %d ids %s sid %s0x%x s2 %s rnw %s"
	       " seq %d..%d lost-header %s (%u)\n", tag, phase, n - nlost,
	       ids[0] ? ids : "-", sids == ~0U ? "mixed:" : "",
	       sids == ~0U ? 0 : sids,
	       s2 == 3 ? "both" : s2 == 2 ? "1" : s2 == 1 ? "0" : "-",
	       rnw == 3 ? "both" : rnw == 2 ? "1" : rnw == 1 ? "0" : "-",
	       n ? (int)vevs[0].seq : -1, n ? (int)vevs[n - 1].seq : -1,
	       lost, nlost);
}

/* Every record of vevs[0..n) is event @id from the virtual StreamID */
static bool all_id_vsid(int n, unsigned int id)
{
	int i;

	for (i = 0; i < n; i++)
		if (LOST(&vevs[i]) || EVT_ID(vevs[i].evt) != id ||
		    EVT_SID(vevs[i].evt) != VSID)
			return false;
	return n > 0;
}

/* Sequence numbers consecutive from @first, no LOST_EVENTS header */
static bool seq_from(int n, uint32_t first)
{
	int i;

	for (i = 0; i < n; i++)
		if (LOST(&vevs[i]) || vevs[i].seq != first + i)
			return false;
	return n > 0;
}

/* F_TRANSLATION, stage 1, from the vSID, for a DMA of @len at @iova */
static bool translation_faults(int from, int to, uint64_t iova, uint64_t len,
			       unsigned int rnw)
{
	bool first = false;
	int i;

	for (i = from; i < to; i++) {
		uint64_t *e = vevs[i].evt;

		if (LOST(&vevs[i]) || EVT_ID(e) != EVT_F_TRANSLATION ||
		    EVT_SID(e) != VSID || EVT_S2(e) || EVT_RNW(e) != rnw ||
		    EVT_ADDR(e) < iova || EVT_ADDR(e) >= iova + len)
			return false;
		first |= EVT_ADDR(e) == iova;
	}
	return from < to && first;
}

static void print_vevents(int n)
{
	int i;

	for (i = 0; i < n && i < 6; i++)
		printf("#   vevent seq %u flags 0x%x: %016" PRIx64 " %016" PRIx64
		       " %016" PRIx64 " %016" PRIx64 "\n", vevs[i].seq,
		       vevs[i].flags, vevs[i].evt[0], vevs[i].evt[1],
		       vevs[i].evt[2], vevs[i].evt[3]);
	if (n > 6)
		printf("#   ... %d more, the last seq %u flags 0x%x\n", n - 6,
		       vevs[n - 1].seq, vevs[n - 1].flags);
}

/* eventfd: its count (0 if not signalled), not waiting */
static uint64_t efd_take(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* ---- the IORT, as the guest's kernel uses it ---- */

static uint8_t iort[4096];
static ssize_t iort_len;

/* The memory access flags of the IORT's first PCI root complex, or -1 */
static int iort_rc_flags(void)
{
	uint32_t nnodes, off, i;
	int fd;

	fd = open("/sys/firmware/acpi/tables/IORT", O_RDONLY);
	if (fd < 0)
		return -1;
	iort_len = read(fd, iort, sizeof(iort));
	close(fd);
	if (iort_len < 48)
		return -1;
	memcpy(&nnodes, iort + 36, 4);
	memcpy(&off, iort + 40, 4);
	for (i = 0; i < nnodes && off + 24 <= iort_len; i++) {
		uint16_t len;

		memcpy(&len, iort + off + 1, 2);
		/* node header 16 bytes, then the memory access properties */
		if (iort[off] == IORT_NODE_PCI_RC)
			return iort[off + 16 + 7];
		if (!len)
			break;
		off += len;
	}
	return -1;
}

/* ---- set-up common to both lanes ---- */

static void setup(void)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_hwpt_alloc s2 = { .size = sizeof(s2) };
	char bdf[256], path[512];
	unsigned int bus, slot, fn;
	uint16_t cmd;

	if (!find_pci_dev(EDU_VENDOR, EDU_DEVICE, bdf, sizeof(bdf)))
		bail("no edu device");
	if (sscanf(bdf, "%*x:%x:%x.%x", &bus, &slot, &fn) != 3)
		bail("edu's PCI address");
	/* The IORT maps RIDs to StreamIDs one to one (QEMU's and ours) */
	phys_sid = bus << 8 | slot << 3 | fn;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override",
		 bdf);
	if (write_file(path, "vfio-pci") ||
	    write_file("/sys/bus/pci/drivers_probe", bdf))
		bail("bind edu to vfio-pci");
	devfd = open_vfio_cdev(bdf);
	if (devfd < 0)
		bail("open edu's vfio cdev");
	iommufd = open("/dev/iommu", O_RDWR);
	if (iommufd < 0)
		bail("open /dev/iommu");
	bind.iommufd = iommufd;
	if (ioctl(devfd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		bail("VFIO_DEVICE_BIND_IOMMUFD");
	dev_id = bind.out_devid;
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &ioas))
		bail("IOMMU_IOAS_ALLOC");
	ioas_id = ioas.out_ioas_id;
	ipa_mem = mmap(NULL, NPAGES * 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ipa_mem == MAP_FAILED)
		bail("mmap");
	memset(ipa_mem, 0, NPAGES * 4096);
	if (ioas_map(IPA_BASE, ipa_mem, NPAGES * 4096))
		bail("IOMMU_IOAS_MAP");
	s2.flags = IOMMU_HWPT_ALLOC_NEST_PARENT;
	s2.dev_id = dev_id;
	s2.pt_id = ioas_id;
	s2.data_type = IOMMU_HWPT_DATA_NONE;
	ok(!ioctl(iommufd, IOMMU_HWPT_ALLOC, &s2),
	   "edu (%s, StreamID 0x%x) on vfio-pci and iommufd: IOAS and a nesting-parent HWPT",
	   bdf, phys_sid);
	s2_hwpt_id = s2.out_hwpt_id;

	reg.index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, &reg))
		bail("BAR0 info");
	bar0 = mmap(NULL, reg.size, PROT_READ | PROT_WRITE, MAP_SHARED, devfd,
		    reg.offset);
	if (bar0 == MAP_FAILED)
		bail("mmap BAR0");
	/* Memory space and bus mastering, through the config region */
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(devfd, VFIO_DEVICE_GET_REGION_INFO, &reg) ||
	    pread(devfd, &cmd, 2, reg.offset + 4) != 2)
		bail("PCI command");
	cmd |= 0x6;
	if (pwrite(devfd, &cmd, 2, reg.offset + 4) != 2)
		bail("PCI command");
}

/* The SMMU's ID registers, as IOMMU_GET_HW_INFO gives them */
static void hw_info(void)
{
	struct iommu_hw_info_arm_smmuv3 smmu = { 0 };
	struct iommu_hw_info info = {
		.size = sizeof(info),
		.dev_id = dev_id,
		.data_len = sizeof(smmu),
		.data_uptr = (uintptr_t)&smmu,
	};
	int rc = ioctl(iommufd, IOMMU_GET_HW_INFO, &info);

	printf("# IOMMU_GET_HW_INFO: type %u IDR0 0x%08x IDR3 0x%08x IIDR 0x%x AIDR 0x%x\n",
	       info.out_data_type, smmu.idr[0], smmu.idr[3], smmu.iidr,
	       smmu.aidr);
	ok(!rc && info.out_data_type == IOMMU_HW_INFO_TYPE_ARM_SMMUV3 &&
	   (smmu.idr[0] & (IDR0_S1P | IDR0_S2P)) == (IDR0_S1P | IDR0_S2P) &&
	   !(smmu.idr[3] & IDR3_FWB),
	   "the emulated SMMUv3 has both stages and no S2FWB (IDR0 0x%08x, IDR3 0x%08x)",
	   smmu.idr[0], smmu.idr[3]);
}

static int viommu_alloc(void)
{
	struct iommu_viommu_alloc cmd = {
		.size = sizeof(cmd),
		.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
		.dev_id = dev_id,
		.hwpt_id = s2_hwpt_id,
	};

	if (ioctl(iommufd, IOMMU_VIOMMU_ALLOC, &cmd))
		return -errno;
	viommu_id = cmd.out_viommu_id;
	return 0;
}

/*
 * Which kernel this is: v3's vEVENTQ eventfd is a 40-byte structure. 7.3
 * (and v2) refuse its non-zero tail with E2BIG; v3 takes it and looks the
 * vIOMMU (ID 0: none) up, ENOENT.
 */
static void probe_kernel(const char *want)
{
	struct veventq_alloc_v3 cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_VEVENTQ_ALLOC_EVENTFD,
		.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
		.veventq_depth = 1,
	};
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rc, err;

	cmd.eventfd = efd;
	rc = ioctl(iommufd, IOMMU_VEVENTQ_ALLOC, &cmd);
	err = rc ? errno : 0;
	close(efd);
	patched = rc && err == ENOENT;
	ok(patched == !strcmp(want, "patched") &&
	   (patched || err == E2BIG),
	   "the kernel is the %s one (40-byte IOMMU_VEVENTQ_ALLOC with an eventfd: %s)",
	   want, err ? strerror(err) : "allocated");
}

/* ---- lane=stock: QEMU's IORT, stock parts ---- */

static void lane_stock(const char *kernel)
{
	int flags, rc;
	ssize_t i;

	flags = iort_rc_flags();
	ok(flags >= 0 && !(flags & IORT_MF_CANWBS),
	   "QEMU's IORT: the root complex's memory access flags 0x%x, no CANWBS",
	   flags);
	/* The host builds the nested run's IORT from this one */
	printf("# iort: ");
	for (i = 0; i < iort_len; i++)
		printf("%02x", iort[i]);
	printf("\n");
	setup();
	probe_kernel(kernel);
	hw_info();
	rc = viommu_alloc();
	ok(rc == -EOPNOTSUPP,
	   "stock parts: IOMMU_VIOMMU_ALLOC(ARM_SMMUV3) refused: %s",
	   strerror(-rc));
	printf("# seen[7.3]: stock: viommu %s\n", strerror(-rc));
}

/* ---- lane=nested: the IORT with CANWBS ---- */

/* A valid CD at page @pg, ASID @asid, its stage-1 table at IPA @ttb */
static void make_cd(int pg, unsigned int asid, uint64_t ttb)
{
	uint64_t *cd = (uint64_t *)(ipa_mem + pg * 4096);

	memset(cd, 0, 64);
	cd[0] = CD0_T0SZ(16) | CD0_IRGN0_WBWA | CD0_ORGN0_WBWA | CD0_SH0_IS |
		CD0_EPD1 | CD0_V | CD0_IPS_44 | CD0_AA64 | CD0_R | CD0_A |
		CD0_ASID(asid);
	cd[1] = ttb & ~0xfULL;
	cd[3] = 0xff;	/* MAIR: attribute 0 write-back */
}

/* Stage-1 tables (4K granule, 48-bit, level 0 to 3): IOVA_MAP -> PG_DATA */
static void make_tables(void)
{
	uint64_t *l0 = (uint64_t *)(ipa_mem + PG_L0 * 4096);
	uint64_t *l1 = (uint64_t *)(ipa_mem + PG_L1 * 4096);
	uint64_t *l2 = (uint64_t *)(ipa_mem + PG_L2 * 4096);
	uint64_t *l3 = (uint64_t *)(ipa_mem + PG_L3 * 4096);

	l0[(IOVA_MAP >> 39) & 511] = IPA(PG_L1) | PTE_TABLE;
	l1[(IOVA_MAP >> 30) & 511] = IPA(PG_L2) | PTE_TABLE;
	l2[(IOVA_MAP >> 21) & 511] = IPA(PG_L3) | PTE_TABLE;
	l3[(IOVA_MAP >> 12) & 511] = IPA(PG_DATA) | PTE_TABLE | PTE_AF |
				     PTE_SH_IS | PTE_AP_EL0;
}

static int vq_fd;		/* the vEVENTQ in use */
static uint32_t vq_id;
/*
 * The sequence number the next vEVENT of the vEVENTQ gets: 7.3 numbers
 * them as they are queued, from 0 in a new vEVENTQ
 */
static uint32_t next_seq;

static void vq_replace(uint32_t depth, int efd, const char *what)
{
	if (vq_fd >= 0) {
		close(vq_fd);
		if (destroy(vq_id))
			bail("IOMMU_DESTROY(vEVENTQ)");
	}
	vq_fd = veventq_alloc(depth, efd, &vq_id);
	next_seq = 0;
	ok(vq_fd >= 0, "%s: vEVENTQ of depth %u allocated", what, depth);
	if (vq_fd < 0)
		bail("IOMMU_VEVENTQ_ALLOC");
}

/* C_BAD_CD: an STE whose CD is all zero */
static void phase_bad_cd(void)
{
	size_t mark = kmsg_len;
	int n;

	ok(nested_attach(IPA(PG_CD_ZERO), 0, 0, NULL),
	   "C_BAD_CD: nested HWPT (guest STE, S1 CD at IPA 0x%llx, all zero) attached",
	   IPA(PG_CD_ZERO));
	ok(edu_read(IOVA_R, 64), "C_BAD_CD: edu read 64 bytes at IOVA 0x%llx",
	   IOVA_R);
	n = wait_vevents(vq_fd, 0);
	print_vevents(n);
	seen("7.3", "bad-cd", n);
	ok(all_id_vsid(n, EVT_C_BAD_CD),
	   "C_BAD_CD: %d vEVENTs, each C_BAD_CD (0x0a) from the virtual StreamID 0x%x, not the physical 0x%x",
	   n, VSID, phys_sid);
	ok(seq_from(n, next_seq), "C_BAD_CD: sequence numbers %u..%d, nothing lost",
	   next_seq, (int)next_seq + n - 1);
	ok(!kmsg_count(mark, HOST_EVENT),
	   "C_BAD_CD: the host logged none of the guest's events");
	next_seq += n;
}

/* F_TRANSLATION: a valid CD over an empty stage-1 table */
static void phase_translation(void)
{
	size_t mark = kmsg_len;
	int nr, n;

	make_cd(PG_CD_EMPTY, 1, IPA(PG_L0_EMPTY));
	ok(nested_attach(IPA(PG_CD_EMPTY), 0, 0, NULL),
	   "F_TRANSLATION: nested HWPT (CD at IPA 0x%llx: ASID 1, TTB0 IPA 0x%llx, empty) attached",
	   IPA(PG_CD_EMPTY), IPA(PG_L0_EMPTY));
	ok(edu_read(IOVA_R, 64), "F_TRANSLATION: edu read 64 bytes at IOVA 0x%llx",
	   IOVA_R);
	nr = wait_vevents(vq_fd, 0);
	ok(edu_write(IOVA_W, 64), "F_TRANSLATION: edu wrote 64 bytes at IOVA 0x%llx",
	   IOVA_W);
	n = wait_vevents(vq_fd, nr);
	print_vevents(n);
	seen("7.3", "translation", n);
	ok(translation_faults(0, nr, IOVA_R, 64, 1),
	   "F_TRANSLATION: the read's %d vEVENTs: F_TRANSLATION (0x10), vSID 0x%x, stage 1, read, input address from 0x%llx",
	   nr, VSID, IOVA_R);
	ok(translation_faults(nr, n, IOVA_W, 64, 0),
	   "F_TRANSLATION: the write's %d vEVENTs: F_TRANSLATION, vSID 0x%x, stage 1, write, input address from 0x%llx",
	   n - nr, VSID, IOVA_W);
	ok(seq_from(n, next_seq), "F_TRANSLATION: sequence numbers go on (%u..%d)",
	   next_seq, (int)next_seq + n - 1);
	ok(!kmsg_count(mark, HOST_EVENT),
	   "F_TRANSLATION: the host logged none of the guest's events");
	next_seq += n;
}

/*
 * Both stages translate: the CD and the stage-1 tables are read at IPAs,
 * through stage 2, and so is the page stage 1 maps the IOVA to. (The
 * F_TRANSLATION above was a stage-1 fault for the same reason: its table
 * was found through stage 2; phase_stage2() shows the walk failing there.)
 */
static void phase_nested_walk(void)
{
	uint8_t *data = ipa_mem + PG_DATA * 4096;
	size_t mark = kmsg_len;
	int i;

	make_tables();
	make_cd(PG_CD_MAP, 2, IPA(PG_L0));
	for (i = 0; i < 64; i++)
		data[i] = 0xa5 ^ i;
	ok(nested_attach(IPA(PG_CD_MAP), 0, 0, NULL),
	   "nested walk: nested HWPT (CD ASID 2, IOVA 0x%llx -> IPA 0x%llx in four levels) attached",
	   IOVA_MAP, IPA(PG_DATA));
	ok(edu_read(IOVA_MAP, 64) && edu_write(IOVA_MAP + 2048, 64) &&
	   !memcmp(data, data + 2048, 64),
	   "nested walk: edu copied 64 bytes through IOVA 0x%llx (stage 1 to the IPA, stage 2 to the page)",
	   IOVA_MAP);
	ok(!readable(vq_fd, 0) && !kmsg_count(mark, HOST_EVENT),
	   "nested walk: no vEVENT and no host event for the mapped IOVA");
	printf("# seen[7.3]: nested-walk: copied %s\n",
	       memcmp(data, data + 2048, 64) ? "no" : "yes");
}

/*
 * A stage-2 fault: the host's own (its stage 2 failed, not the guest's
 * table), so it reaches no vEVENTQ and the host logs it, with the physical
 * StreamID. @cd_pg >= 0: a valid CD there whose stage-1 table is outside
 * the IOAS; else the STE's CD pointer itself is.
 */
static void phase_stage2(const char *what, int cd_pg, unsigned int asid)
{
	uint64_t cd = cd_pg >= 0 ? IPA(cd_pg) : IPA_UNMAPPED;
	size_t mark = kmsg_len;
	const char *p;
	char sid[32];
	long at;
	int lines;

	if (cd_pg >= 0)
		make_cd(cd_pg, asid, IPA_UNMAPPED);
	ok(nested_attach(cd, 0, 0, NULL),
	   "stage 2, %s: nested HWPT (CD at IPA 0x%" PRIx64 ") attached", what, cd);
	ok(edu_read(IOVA_R, 4), "stage 2, %s: edu read 4 bytes at IOVA 0x%llx",
	   what, IOVA_R);
	/* The event's lines end with the decoded one, which names the SID */
	snprintf(sid, sizeof(sid), "sid: %#x", phys_sid);
	at = kmsg_wait(mark, HOST_EVENT, WAIT_MS);
	if (at >= 0)
		kmsg_wait(at, sid, WAIT_MS);
	for (p = at >= 0 ? kmsg_text + at : "", lines = 0; *p && lines < 8;
	     lines++) {
		const char *nl = strchr(p, '\n');

		if (!nl)
			break;
		printf("#   host: %.*s\n", (int)(nl - p), p);
		p = nl + 1;
	}
	ok(at >= 0 && strstr(kmsg_text + at, sid),
	   "stage 2, %s: the host logged the event, with the physical StreamID 0x%x",
	   what, phys_sid);
	ok(!readable(vq_fd, 0), "stage 2, %s: no vEVENT reached the vEVENTQ",
	   what);
	printf("# seen[7.3]: stage2-%s: vevents %s host-logged %s\n",
	       cd_pg >= 0 ? "walk" : "cd", readable(vq_fd, 0) ? "some" : "none",
	       at >= 0 ? "yes" : "no");
}

/*
 * A vEVENTQ of depth 4 overflows: more faulting DMAs than it holds (each
 * DMA faults at least once). It keeps 4 vEVENTs, then a LOST_EVENTS header
 * carrying the sequence number of the last one lost; the next vEVENT takes
 * the number after it. The host logs none of them: the driver was told
 * that the guest's queue counted them (the series returns -EOVERFLOW to
 * it, and arm-smmu-v3 takes that as handled, as 7.3 took its 0). With
 * @efd, the eventfd was signalled once, when the vEVENTQ stopped being
 * empty, and again once it was drained and a vEVENT came.
 */
static void phase_overflow(const char *tag, int efd, int cd_pg,
			   unsigned int asid)
{
	const unsigned int depth = 4;
	const char *what = efd >= 0 ? "overflow with eventfd" : "overflow";
	size_t mark = kmsg_len;
	uint32_t lost_seq = 0;
	bool all = true;
	int i, n, nl = 0;

	vq_replace(depth, efd, what);
	make_cd(cd_pg, asid, IPA(PG_L0_EMPTY));
	ok(nested_attach(IPA(cd_pg), 0, 0, NULL),
	   "%s: nested HWPT (CD ASID %u, empty table) attached", what, asid);
	for (i = 0; i <= (int)depth; i++)
		all &= edu_read(IOVA_R + i * 4096, 4);
	ok(all, "%s: %u faulting edu reads", what, depth + 1);
	n = wait_vevents(vq_fd, 0);
	print_vevents(n);
	seen(tag, efd >= 0 ? "overflow-eventfd" : "overflow", n);
	for (i = 0; i < n; i++)
		if (LOST(&vevs[i])) {
			nl++;
			lost_seq = vevs[i].seq;
		}
	ok(n == (int)depth + 1 && seq_from(depth, 0) &&
	   all_id_vsid(depth, EVT_F_TRANSLATION) && nl == 1 &&
	   LOST(&vevs[depth]) && lost_seq >= depth,
	   "%s: %u vEVENTs (sequence 0..%u), then a LOST_EVENTS header (sequence %u)",
	   what, depth, depth - 1, lost_seq);
	ok(!kmsg_count(mark, HOST_EVENT),
	   "%s: the host logged none of the lost events", what);
	if (efd >= 0) {
		uint64_t c = efd_take(efd);

		ok(c == 1, "%s: the eventfd was signalled once for the burst (count %" PRIu64 ")",
		   what, c);
	}
	/* After the loss, numbering goes on from the header's */
	ok(edu_read(IOVA_R, 4), "%s: one more faulting edu read", what);
	if (efd >= 0)
		ok(readable(efd, WAIT_MS) && efd_take(efd) == 1,
		   "%s: the drained vEVENTQ signals the eventfd again, once", what);
	n = wait_vevents(vq_fd, 0);
	print_vevents(n);
	ok(seq_from(n, lost_seq + 1) && all_id_vsid(n, EVT_F_TRANSLATION),
	   "%s: the next vEVENTs take sequence %u on, no LOST_EVENTS header",
	   what, lost_seq + 1);
	printf("# seen[%s]: %s-after: next-seq %s\n", tag,
	       efd >= 0 ? "overflow-eventfd" : "overflow",
	       n && vevs[0].seq == lost_seq + 1 ? "lost+1" : "other");
	next_seq = n ? vevs[n - 1].seq + 1 : 0;
}

/*
 * A fault queue on edu, which can neither stall nor send page requests:
 * SMMUv3 attaches the HWPT (the uAPI leaves that choice to the driver;
 * VT-d and the mock refuse), its queue never becomes readable, and the
 * stage-1 faults go to the vEVENTQ as without it. @one_step: v3's
 * IOPF_CAPABLE; else 7.3's IOMMU_FAULT_QUEUE_ALLOC and FAULT_ID_VALID.
 */
static void phase_iopf(bool one_step, int cd_pg, unsigned int asid)
{
	const char *what = one_step ? "IOPF_CAPABLE" : "FAULT_ID_VALID";
	struct iommu_fault_alloc fa = { .size = sizeof(fa) };
	struct iommu_hwpt_pgfault buf[4];
	uint32_t hwpt;
	int ffd = -1, n;
	ssize_t len;
	bool rd;

	make_cd(cd_pg, asid, IPA(PG_L0_EMPTY));
	if (one_step) {
		hwpt = nested_attach(IPA(cd_pg), IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE,
				     0, &ffd);
	} else {
		if (ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &fa))
			bail("IOMMU_FAULT_QUEUE_ALLOC");
		ffd = fa.out_fault_fd;
		hwpt = nested_attach(IPA(cd_pg), IOMMU_HWPT_FAULT_ID_VALID,
				     fa.out_fault_id, NULL);
	}
	ok(hwpt, "%s: SMMUv3 attaches a nested HWPT with a fault queue to edu (no stall, no PRI)",
	   what);
	ok(edu_read(IOVA_R, 4), "%s: a faulting edu read", what);
	n = wait_vevents(vq_fd, 0);
	seen(one_step ? "v3" : "7.3", one_step ? "iopf-capable" : "fault-id", n);
	ok(all_id_vsid(n, EVT_F_TRANSLATION) && seq_from(n, next_seq),
	   "%s: the fault went to the vEVENTQ (%d F_TRANSLATION vEVENTs)", what, n);
	next_seq += n;
	rd = ffd >= 0 && readable(ffd, 0);
	len = ffd >= 0 ? read(ffd, buf, sizeof(buf)) : -1;
	ok(ffd >= 0 && !rd && len == 0,
	   "%s: the fault queue never became readable (fd %d, poll %s, read %zd%s%s)",
	   what, ffd, rd ? "readable" : "not readable", len,
	   len < 0 ? ": " : "", len < 0 ? strerror(errno) : "");
	if (ffd >= 0)
		close(ffd);
}

/*
 * The vEVENTQ eventfd (v3): signalled when the vEVENTQ goes from empty to
 * non-empty, not once per vEVENT; read until read() returns 0, then the
 * next vEVENT signals again.
 */
static void phase_eventfd(int efd)
{
	uint64_t c;
	int n1, n2;

	vq_replace(64, efd, "eventfd");
	make_cd(PG_CD_EMPTY5, 7, IPA(PG_L0_EMPTY));
	ok(nested_attach(IPA(PG_CD_EMPTY5), 0, 0, NULL),
	   "eventfd: nested HWPT (CD ASID 7, empty table) attached");
	ok(!readable(efd, 0), "eventfd: not signalled before any fault");
	ok(edu_read(IOVA_R, 64), "eventfd: a faulting edu read of 64 bytes");
	ok(readable(efd, WAIT_MS), "eventfd: signalled by the first vEVENTs");
	c = efd_take(efd);
	/* Its vEVENTs are all queued (see the top comment); add more */
	ok(edu_read(IOVA_W, 4), "eventfd: another faulting read, the vEVENTQ not drained");
	n1 = wait_vevents(vq_fd, 0);
	seen("v3", "eventfd", n1);
	ok(c == 1 && !readable(efd, 0) && n1 >= 2,
	   "eventfd: one signal for %d vEVENTs into an empty vEVENTQ (count %" PRIu64 "), none into a non-empty one",
	   n1, c);
	ok(all_id_vsid(n1, EVT_F_TRANSLATION) && seq_from(n1, 0),
	   "eventfd: %d F_TRANSLATION vEVENTs from vSID 0x%x, sequence 0..%d",
	   n1, VSID, n1 - 1);
	ok(edu_read(IOVA_R, 4), "eventfd: a faulting read into the drained vEVENTQ");
	ok(readable(efd, WAIT_MS) && efd_take(efd) == 1,
	   "eventfd: signalled again, once");
	n2 = wait_vevents(vq_fd, 0);
	ok(seq_from(n2, n1), "eventfd: its vEVENTs go on from sequence %d", n1);
}

static void lane_nested(const char *kernel)
{
	struct iommu_vdevice_alloc vd = { .size = sizeof(vd) };
	int flags, efd, rc;

	flags = iort_rc_flags();
	ok(flags >= 0 && (flags & IORT_MF_CANWBS) &&
	   strstr(kmsg_text, "Table Upgrade: override [IORT-"),
	   "the IORT from the initramfs replaced QEMU's: root complex memory access flags 0x%x, CANWBS",
	   flags);
	setup();
	probe_kernel(kernel);
	hw_info();
	rc = viommu_alloc();
	ok(!rc, "IOMMU_VIOMMU_ALLOC(ARM_SMMUV3) on the nesting parent: %s",
	   rc ? strerror(-rc) : "allocated");
	if (rc)
		bail("IOMMU_VIOMMU_ALLOC");
	vq_fd = -1;
	vq_replace(64, -1, "7.3 layout");
	vd.viommu_id = viommu_id;
	vd.dev_id = dev_id;
	vd.virt_id = VSID;
	ok(!ioctl(iommufd, IOMMU_VDEVICE_ALLOC, &vd),
	   "vDEVICE: edu as virtual StreamID 0x%x", VSID);

	phase_bad_cd();
	phase_translation();
	phase_nested_walk();
	phase_iopf(false, PG_CD_EMPTY2, 3);
	if (patched) {
		phase_iopf(true, PG_CD_EMPTY3, 4);
	} else {
		struct hwpt_alloc_v3 cmd = {
			.size = sizeof(cmd),
			.flags = IOMMU_HWPT_ALLOC_FLAGS_IOPF_CAPABLE,
			.dev_id = dev_id,
			.pt_id = viommu_id,
		};

		ok(ioctl(iommufd, IOMMU_HWPT_ALLOC, &cmd) && errno == EOPNOTSUPP,
		   "7.3 has no IOPF_CAPABLE: %s", strerror(errno));
	}
	/* Before the stage-2 phases: the host's event log is rate limited */
	phase_overflow("7.3", -1, PG_CD_EMPTY4, 5);
	if (patched) {
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0)
			bail("eventfd");
		phase_overflow("v3", efd, PG_CD_EMPTY4, 6);
		phase_eventfd(efd);
		close(efd);
	}
	phase_stage2("stage-1 table outside the IOAS", PG_CD_S2WALK, 8);
	phase_stage2("CD outside the IOAS", -1, 0);
}

/* The build that booted: the host checks it against the image it gave */
static void print_version(void)
{
	char v[512] = "";
	FILE *f = fopen("/proc/version", "r");

	if (f) {
		if (!fgets(v, sizeof(v), f))
			v[0] = 0;
		fclose(f);
	}
	printf("# kernel: %s", v[0] ? v : "?\n");
}

int main(void)
{
	const char *lane = getenv("lane"), *kernel = getenv("kernel");

	if (getpid() == 1)
		init_guest();
	setvbuf(stdout, NULL, _IOLBF, 0);
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg_fd < 0)
		bail("open /dev/kmsg");
	printf("TAP version 13\n");
	printf("# smmuv3_fault: lane=%s kernel=%s\n", lane ?: "?",
	       kernel ?: "?");
	print_version();
	load_modules();
	kmsg_collect();
	if (!lane || !kernel) {
		errno = EINVAL;
		bail("no lane= or kernel= on the kernel command line");
	}
	if (!strcmp(lane, "stock")) {
		lane_stock(kernel);
	} else if (!strcmp(lane, "nested")) {
		lane_nested(kernel);
	} else {
		errno = EINVAL;
		bail("lane= is stock or nested");
	}
	printf("1..%d\n", tests);
	finish();
}
