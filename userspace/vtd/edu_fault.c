// SPDX-License-Identifier: GPL-2.0
/*
 * edu_fault: make QEMU's "edu" PCI device DMA to IOVAs its domain does not
 * map, behind QEMU's emulated VT-d with first-stage translation, and check
 * what the kernel made of the DMAR faults.
 *
 * It runs as /init's command in the test guest of scripts/vm-run, on a kernel
 * booted with intel_iommu=on,sm_on and QEMU's
 *   -device intel-iommu,x-scalable-mode=on,x-flts=on -device edu
 * (modprobing vfio-pci first on a modular kernel). It binds edu to vfio-pci,
 * attaches it to an IOAS of /dev/iommu (a paging domain, first-stage on this
 * VT-d: the host owns it), maps one page, makes edu read and write that page
 * (no fault), read from and write to two IOVAs that are not mapped, and then
 * flood the IOMMU with FLOOD more such DMAs (edu_fault [FLOOD], 1000 by
 * default). Then it checks, in TAP:
 *   - the probe the documentation gives a VMM: IOMMU_GET_HW_INFO says VT-d,
 *     and the device's sysfs iommu link names its unit (dmarN);
 *   - the mapped DMA moved the data and raised no fault;
 *   - each unmapped DMA left a DMAR fault in the kernel log, with a
 *     first-stage fault reason, the edu's source-id and the IOVA;
 *   - by the VT-d driver's own counters (debugfs fault_forwarding), the
 *     host-owned first-stage records, at least FLOOD of them, were filtered
 *     in dmar_fault(): none entered the forwarding log, none was forwarded,
 *     and no vIOMMU was told of a lost event.
 * The debug kernel's console is scanned by make check as for every run. Each
 * edu DMA runs from a 100 ms timer of QEMU's virtual clock: make check boots
 * this guest with -icount, where an idle guest's clock jumps to the timer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>

#include "guest.h"

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

/* IOVAs below edu's 28-bit DMA mask */
#define IOVA_MAPPED	0x00100000ULL
#define IOVA_READ	0x02345000ULL
#define IOVA_WRITE	0x03456000ULL

static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

/* /dev/vfio/devices/vfioN of the device, once vfio-pci has it */
static int open_vfio_cdev(const char *bdf)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int i;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	for (i = 0; i < 50 && !(d = opendir(path)); i++)
		usleep(100000);
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
	return -1;
}

/*
 * The probe Documentation/userspace-api/iommufd.rst gives a VMM: the device's
 * IOMMU is VT-d by IOMMU_GET_HW_INFO, and which unit it is by the device's
 * sysfs iommu link, which names a /sys/class/iommu/dmarN. @unit gets dmarN.
 */
static bool probe_host_iommu(const char *bdf, int iommufd, uint32_t dev_id,
			     char *unit, size_t len)
{
	struct iommu_hw_info_vtd vtd = {};
	struct iommu_hw_info info = {
		.size = sizeof(info),
		.dev_id = dev_id,
		.data_len = sizeof(vtd),
		.data_uptr = (uintptr_t)&vtd,
	};
	char link[512], target[256], cls[300];
	const char *base;
	ssize_t n;

	snprintf(unit, len, "?");
	if (ioctl(iommufd, IOMMU_GET_HW_INFO, &info) ||
	    info.out_data_type != IOMMU_HW_INFO_TYPE_INTEL_VTD || !vtd.cap_reg)
		return false;
	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/iommu", bdf);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = 0;
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= len)
		return false;
	memcpy(unit, base, strlen(base) + 1);
	snprintf(cls, sizeof(cls), "/sys/class/iommu/%.200s", base);
	return !strncmp(base, "dmar", 4) && !access(cls, F_OK);
}

static volatile uint8_t *bar0;

static uint64_t rd64(unsigned int off)
{
	return *(volatile uint64_t *)(bar0 + off);
}

static void wr64(unsigned int off, uint64_t val)
{
	*(volatile uint64_t *)(bar0 + off) = val;
}

/* Run one edu DMA and wait for edu to finish it (it runs from a timer) */
static bool edu_dma(uint64_t src, uint64_t dst, uint64_t cnt, uint64_t cmd)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int i;

	wr64(EDU_DMA_SRC, src);
	wr64(EDU_DMA_DST, dst);
	wr64(EDU_DMA_CNT, cnt);
	wr64(EDU_DMA_CMD, cmd | EDU_CMD_RUN);
	for (i = 0; i < 1000; i++) {
		if (!(rd64(EDU_DMA_CMD) & EDU_CMD_RUN))
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The DMAR fault lines of the kernel log, from /dev/kmsg */
static char *kernel_log(void)
{
	static char log[1 << 16];
	size_t len = 0;
	char rec[1024];
	ssize_t n;
	int fd;

	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		die("open /dev/kmsg");
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		const char *msg;

		if (n <= 0)
			continue;
		rec[n] = 0;
		/* "level,seq,time,flags;message" */
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (strstr(msg, "DMAR: [DMA") &&
		    len + strlen(msg) + 2 < sizeof(log)) {
			len += sprintf(log + len, "# %s", msg);
		}
	}
	close(fd);
	log[len] = 0;
	return log;
}

/* A log line for a fault at @iova, with its reason code, or -1 */
static int fault_reason(const char *log, const char *kind, uint64_t iova)
{
	char addr[64];
	const char *p;

	snprintf(addr, sizeof(addr), "fault addr 0x%" PRIx64 " [fault reason 0x", iova);
	for (p = log; (p = strstr(p, addr)); p++) {
		const char *line = p;

		while (line > log && line[-1] != '\n')
			line--;
		if (strstr(line, kind) && strstr(line, kind) < p)
			return strtol(p + strlen(addr), NULL, 16);
	}
	return -1;
}

/* The first-stage reasons of the scalable-mode table (as the driver's) */
static bool first_stage(int reason)
{
	return reason == 0x71 || reason == 0x72 || reason == 0x74 ||
	       (reason >= 0x80 && reason <= 0x82) || reason == 0x85;
}

/* The driver's counters, summed over the IOMMUs, by field name */
struct fwd_stats {
	uint64_t filtered, queued, forwarded, dropped, full, overflows, lost;
};

static void forwarding(struct fwd_stats *st, bool quiet)
{
	static const char *const names[] = {
		"filtered", "queued", "forwarded", "dropped", "full",
		"overflows", "lost",
	};
	uint64_t *fields[] = {
		&st->filtered, &st->queued, &st->forwarded, &st->dropped,
		&st->full, &st->overflows, &st->lost,
	};
	char line[512];
	unsigned int i;
	FILE *f;

	memset(st, 0, sizeof(*st));
	f = fopen("/sys/kernel/debug/iommu/intel/fault_forwarding", "r");
	if (!f)
		die("fault_forwarding");
	while (fgets(line, sizeof(line), f)) {
		if (!quiet)
			printf("# fault_forwarding: %s", line);
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			char key[32];
			const char *p;

			snprintf(key, sizeof(key), " %s ", names[i]);
			p = strstr(line, key);
			if (p)
				*fields[i] += strtoull(p + strlen(key), NULL, 10);
		}
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	unsigned int flood = argc > 1 ? strtoul(argv[1], NULL, 0) : 1000;
	struct fwd_stats st0, st1, st2;
	unsigned int i, done;
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_ioas_map map = { .size = sizeof(map) };
	int iommufd, dev, reason_r, reason_w;
	char bdf[256], path[512], unit[64];
	uint16_t cmd = 0;
	uint8_t *page;
	char *log;

	printf("TAP version 13\n1..10\n");
	if (!find_pci_dev(EDU_VENDOR, EDU_DEVICE, bdf, sizeof(bdf)))
		die("no edu device");
	/* A modular kernel (the debug kernel of make check) */
	if (!access("/lib/modules", F_OK) &&
	    system("modprobe vfio-pci && modprobe iommufd"))
		die("modprobe vfio-pci iommufd");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	if (write_file(path, "vfio-pci") ||
	    write_file("/sys/bus/pci/drivers_probe", bdf))
		die("bind edu to vfio-pci");
	dev = open_vfio_cdev(bdf);
	if (dev < 0)
		die("open the vfio cdev");
	iommufd = open("/dev/iommu", O_RDWR);
	if (iommufd < 0)
		die("open /dev/iommu");
	bind.iommufd = iommufd;
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		die("VFIO_DEVICE_BIND_IOMMUFD");
	ok(probe_host_iommu(bdf, iommufd, bind.out_devid, unit, sizeof(unit)),
	   "the documented probe: IOMMU_GET_HW_INFO says VT-d, the sysfs iommu link names %s",
	   unit);
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &ioas))
		die("IOMMU_IOAS_ALLOC");
	attach.pt_id = ioas.out_ioas_id;
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach))
		die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");

	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		die("mmap");
	memset(page, 0x5a, 4096);
	map.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
		    IOMMU_IOAS_MAP_WRITEABLE;
	map.ioas_id = ioas.out_ioas_id;
	map.user_va = (uintptr_t)page;
	map.length = 4096;
	map.iova = IOVA_MAPPED;
	if (ioctl(iommufd, IOMMU_IOAS_MAP, &map))
		die("IOMMU_IOAS_MAP");

	reg.index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &reg))
		die("BAR0 info");
	bar0 = mmap(NULL, reg.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev,
		    reg.offset);
	if (bar0 == MAP_FAILED)
		die("mmap BAR0");
	/* Bus mastering, through the config space region */
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &reg) ||
	    pread(dev, &cmd, 2, reg.offset + 4) != 2)
		die("PCI command");
	cmd |= 0x4;
	if (pwrite(dev, &cmd, 2, reg.offset + 4) != 2)
		die("bus master");

	forwarding(&st0, false);

	/* Mapped: page -> edu buffer -> page + 2048 */
	ok(edu_dma(IOVA_MAPPED, EDU_BUF, 64, 0) &&
	   edu_dma(EDU_BUF, IOVA_MAPPED + 2048, 64, EDU_CMD_TO_PCI) &&
	   !memcmp(page, page + 2048, 64) && page[2048] == 0x5a,
	   "edu copies through a mapped IOVA");

	/* Unmapped: a read and a write that the IOMMU must stop */
	ok(edu_dma(IOVA_READ, EDU_BUF, 64, 0), "edu finished a read of an unmapped IOVA");
	ok(edu_dma(EDU_BUF, IOVA_WRITE, 64, EDU_CMD_TO_PCI),
	   "edu finished a write to an unmapped IOVA");

	/* dmar_fault() logged them, rate limited: the first ones show */
	log = kernel_log();
	fputs(log, stdout);
	reason_r = fault_reason(log, "DMA Read", IOVA_READ);
	reason_w = fault_reason(log, "DMA Write", IOVA_WRITE);
	ok(first_stage(reason_r), "DMAR logged the read fault, reason 0x%x",
	   reason_r);
	ok(first_stage(reason_w), "DMAR logged the write fault, reason 0x%x",
	   reason_w);
	ok(fault_reason(log, "DMA", IOVA_MAPPED) < 0,
	   "no fault for the mapped IOVA");
	forwarding(&st1, false);
	ok(st1.filtered - st0.filtered >= 2 && st1.queued == st0.queued,
	   "the host's first-stage records were filtered (%" PRIu64
	   "), none logged for forwarding", st1.filtered - st0.filtered);

	/* A flood of host-owned faults: a read or a write, page after page */
	for (i = done = 0; i < flood; i++)
		done += i & 1 ?
			edu_dma(EDU_BUF, IOVA_WRITE + (i << 12), 64,
				EDU_CMD_TO_PCI) :
			edu_dma(IOVA_READ + (i << 12), EDU_BUF, 64, 0);
	forwarding(&st2, false);
	printf("# flood: %u DMAs to unmapped IOVAs done; filtered %" PRIu64
	       ", queued %" PRIu64 ", forwarded %" PRIu64 ", lost %" PRIu64
	       ", overflows %" PRIu64 "\n", done,
	       st2.filtered - st1.filtered, st2.queued - st1.queued,
	       st2.forwarded - st1.forwarded, st2.lost - st1.lost,
	       st2.overflows - st1.overflows);
	ok(done == flood && st2.filtered - st1.filtered >= flood,
	   "%u host-owned faults reached dmar_fault() and were filtered",
	   flood);
	ok(st2.queued == st0.queued && st2.full == st0.full &&
	   st2.forwarded == st0.forwarded && st2.lost == st0.lost,
	   "none entered the forwarding log or reached a vIOMMU, and no vIOMMU lost one");

	printf("# %d tests, %d failed\n", tests, failed);
	return failed ? 1 : 0;
}
