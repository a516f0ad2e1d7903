// SPDX-License-Identifier: GPL-2.0
/*
 * qemu_client: a real VMM, Debian's QEMU 10 unchanged, as the iommufd user of
 * the edu device behind the emulated VT-d of the test guest.
 *
 * It runs as a command in the test guest of scripts/vm-run, booted with
 * intel_iommu=on,sm_on and QEMU's
 *   -device intel-iommu,x-scalable-mode=on,x-flts=on -device edu
 * and the folder scripts/qemu-bundle makes (the QEMU binary, the libraries
 * ldd lists for it and their loader, its firmware) copied in with vm-run -f.
 * It starts that QEMU with the edu device assigned through iommufd,
 *   -object iommufd,id=fd0 -device vfio-pci,host=<edu>,iommufd=fd0,...
 * and its vCPU stopped (-S): no inner guest code runs, not even its BIOS.
 * This program plays the inner guest through QEMU's qtest protocol (port
 * I/O, memory reads and writes) and talks to QEMU's monitor through QMP,
 * both over FIFOs (QEMU's "pipe" chardev: the test kernel has no
 * networking, so no unix sockets). Then, in TAP:
 *   1. QEMU mapped its RAM into an IOAS and attached edu to it (QEMU's trace
 *      events; the VT-d domain's page table in debugfs; QEMU's VmPin);
 *   2. edu, programmed through its BAR in the inner guest's address space,
 *      copies bytes from the inner guest's RAM and back;
 *   3. a DMA to an inner address that is not RAM faults: the kernel logs
 *      the DMAR fault with edu's source-id, the address and a first-stage
 *      reason;
 *   4. ACPI PCI hot-unplug: QMP device_del, the eject register, QMP's
 *      DEVICE_DELETED; QEMU unmapped and let go of everything it pinned;
 *   5. QMP quit, and QEMU exits 0; its vCPU never ran;
 *   6. the VT-d driver forwarded nothing: no vIOMMU owns this domain
 *      (debugfs fault_forwarding, of the patched kernel; skipped where
 *      it does not exist: the unpatched kernel, or one built without
 *      CONFIG_INTEL_IOMMU_IOMMUFD; -F makes its absence a failure).
 * Lines starting "# vmm: " are what QEMU, the VMM, saw; scripts/qemu-base
 * compares them between the unpatched and the patched kernel.
 *
 *   qemu_client [-b BUNDLE_DIR] [-F] [-v]   (-v: every QEMU stderr line)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
/* edu registers (QEMU docs/specs/edu.rst) */
#define EDU_ID		0x00	/* 0xRRrr00edu: version 1.0 reads 0x010000ed */
#define EDU_LIVENESS	0x04	/* reads back the bitwise inverse */
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_RUN	0x1
#define EDU_CMD_TO_PCI	0x2
#define EDU_BUF		0x40000	/* edu's own DMA buffer */

/*
 * The inner guest: -machine pc -m 64M, edu in slot 4 of bus 0, its BAR0
 * placed at 0xe0000000 (above edu's 28-bit DMA mask, so QEMU's attempt to
 * map the BAR for peer-to-peer DMA cannot matter). Inner RAM is IOVA = GPA.
 */
#define INNER_RAM	"64M"
#define EDU_SLOT	4
#define BAR0_GPA	0xe0000000u
#define GPA_SRC		0x01000000ull	/* RAM */
#define GPA_DST		0x01001000ull	/* RAM */
#define GPA_BACK	0x01002000ull	/* RAM: edu's buffer after the fault */
#define GPA_UNMAPPED_R	0x08000000ull	/* not RAM, below 2^28 */
#define GPA_UNMAPPED_W	0x09000000ull	/* not RAM, below 2^28 */
#define DMA_LEN		64
/*
 * ACPI PCI hotplug of -machine pc (PIIX4): the eject register, as QEMU's
 * libqos writes it (tests/qtest/libqos/pci-pc.c)
 */
#define ACPI_PCIHP_ADDR	0xae00
#define PCI_EJ_BASE	0x0008

#ifndef FWD_PATH
#define FWD_PATH	"/sys/kernel/debug/iommu/intel/fault_forwarding"
#endif
#define RUN_DIR		"/tmp/qemu_client"

static pid_t qemu_pid = -1;
static bool verbose, need_fwd;
static char vmm[128][320];	/* the "# vmm:" summary, printed last */
static int nvmm;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void skip(const char *fmt, ...)
{
	va_list ap;

	printf("ok %d - ", ++tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* A line of what the VMM saw, kept for the summary and printed now */
static void vmm_saw(const char *fmt, ...)
{
	va_list ap;

	if (nvmm == (int)ARRAY_SIZE(vmm))
		return;
	va_start(ap, fmt);
	vsnprintf(vmm[nvmm++], sizeof(vmm[0]), fmt, ap);
	va_end(ap);
}

static void kill_qemu(void)
{
	if (qemu_pid > 0) {
		kill(qemu_pid, SIGKILL);
		waitpid(qemu_pid, NULL, 0);
		qemu_pid = -1;
	}
}

static void show_stderr(void);

static void bail(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	show_stderr();
	kill_qemu();
	exit(1);
}

/* The whole run has a deadline: a hang kills QEMU and fails, it never waits */
static void on_alarm(int sig)
{
	static const char msg[] = "Bail out! qemu_client: the run took longer than its deadline\n";

	(void)sig;
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	if (qemu_pid > 0)
		kill(qemu_pid, SIGKILL);
	_exit(1);
}

/* ---- files of the guest ---- */

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The whole of a (small, text) file, NUL-terminated; NULL if unreadable */
static char *read_all(const char *path, size_t *lenp)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			char *p = realloc(buf, cap *= 2);

			if (!p)
				break;
			buf = p;
		}
	}
	close(fd);
	buf[len] = 0;
	if (lenp)
		*lenp = len;
	return buf;
}

/* Run a program of the guest (busybox), wait for it; its exit status */
static int run(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/*
 * A modular kernel (the debug kernel may be one) has iommufd and vfio-pci
 * as modules: load them when they are not there. Built in, there is
 * nothing to do.
 */
static void load_modules(void)
{
	static const struct { const char *name, *present; } mods[] = {
		{ "iommufd", "/dev/iommu" },
		{ "vfio-pci", "/sys/bus/pci/drivers/vfio-pci" },
	};
	struct utsname u;
	char dir[512];
	unsigned int i;

	uname(&u);
	snprintf(dir, sizeof(dir), "/lib/modules/%s", u.release);
	for (i = 0; i < ARRAY_SIZE(mods); i++) {
		char *argv[] = { "modprobe", (char *)mods[i].name, NULL };
		int rc;

		if (exists(mods[i].present))
			continue;
		if (!exists(dir)) {
			note("%s: not built in, and no %s to load it from",
			     mods[i].name, dir);
			continue;
		}
		rc = run(argv);
		note("modprobe %s: %s (status %d)", mods[i].name,
		     rc == 0 && exists(mods[i].present) ? "loaded" : "FAILED", rc);
	}
}

/* Bind edu to vfio-pci (edu_fault may have done it in this boot already) */
static void bind_vfio(const char *bdf, char *cdev, size_t len)
{
	char path[512], link[512] = "";
	struct dirent *de;
	double t0;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	if (readlink(path, link, sizeof(link) - 1) < 0 ||
	    !strstr(link, "/vfio-pci")) {
		if (link[0]) {
			snprintf(path, sizeof(path),
				 "/sys/bus/pci/devices/%s/driver/unbind", bdf);
			write_file(path, bdf);
		}
		snprintf(path, sizeof(path),
			 "/sys/bus/pci/devices/%s/driver_override", bdf);
		if (write_file(path, "vfio-pci") ||
		    write_file("/sys/bus/pci/drivers_probe", bdf))
			bail("binding %s to vfio-pci: %s", bdf, strerror(errno));
	}
	/* The vfio cdev appears with the bind: a bounded wait for it */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	for (t0 = now(); !(d = opendir(path)); usleep(10000))
		if (now() - t0 > 10)
			bail("no %s 10 s after binding vfio-pci", path);
	cdev[0] = 0;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "vfio", 4))
			snprintf(cdev, len, "/dev/vfio/devices/%s", de->d_name);
	closedir(d);
	if (!cdev[0] || !exists(cdev))
		bail("edu %s has no vfio cdev (%s)", bdf, cdev);
}

/* ---- QEMU's channels: qtest and QMP, line by line ---- */

/*
 * A pipe chardev of QEMU: QEMU reads PATH.in and writes PATH.out, FIFOs we
 * make. We hold both open read-write, so that neither open waits for QEMU
 * and what we write waits in the FIFO until QEMU reads it; QEMU's death
 * shows on its pidfd, which every wait watches.
 */
struct chan {
	const char *name;
	int in, out;		/* QEMU's PATH.in (we write), PATH.out */
	char buf[1 << 16];
	size_t len;
};

static struct chan qt = { .name = "qtest", .in = -1, .out = -1 };
static struct chan qmp = { .name = "QMP", .in = -1, .out = -1 };
static int pidfd = -1;
static void qemu_died(void);

/* One line (without its newline) within @secs, or bail */
static void chan_line(struct chan *c, char *line, size_t size, double secs)
{
	double deadline = now() + secs;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd pfd[2] = {
			{ .fd = c->out, .events = POLLIN },
			{ .fd = pidfd, .events = POLLIN },
		};
		ssize_t n;
		double left;

		if (nl) {
			size_t l = nl - c->buf;

			if (l && c->buf[l - 1] == '\r')
				c->buf[l - 1] = 0;
			c->buf[l] = 0;
			snprintf(line, size, "%s", c->buf);
			memmove(c->buf, nl + 1, c->len - l - 1);
			c->len -= l + 1;
			return;
		}
		if (c->len == sizeof(c->buf) - 1)
			bail("%s: a line longer than %zu bytes", c->name, c->len);
		left = deadline - now();
		if (left <= 0)
			bail("%s: no answer from QEMU within %.0f s", c->name, secs);
		if (poll(pfd, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			bail("%s: poll: %s", c->name, strerror(errno));
		if (!(pfd[0].revents & POLLIN)) {
			if (pfd[1].revents)
				qemu_died();
			continue;
		}
		n = read(c->out, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (n <= 0)
			bail("%s: read: %s", c->name, n ? strerror(errno) : "EOF");
		c->len += n;
	}
}

static void chan_send(struct chan *c, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = write(c->in, s + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bail("%s: write: %s", c->name, strerror(errno));
		off += n;
	}
}

/*
 * A qtest command and its answer ("OK ..."); asynchronous "IRQ" lines come
 * only with irq_intercept, which this client never asks for.
 */
static char *qtest(const char *fmt, ...)
{
	static char line[8192 + 64];
	char cmd[8192 + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
	va_end(ap);
	strcat(cmd, "\n");
	chan_send(&qt, cmd);
	chan_line(&qt, line, sizeof(line), 30);
	if (strncmp(line, "OK", 2))
		bail("qtest: '%.*s' answered '%s'", (int)strlen(cmd) - 1, cmd, line);
	return line[2] == ' ' ? line + 3 : line + 2;
}

static uint64_t qtest_val(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return strtoull(qtest("%s", cmd), NULL, 16);
}

/* The inner guest's PCI configuration space, by the 0xcf8/0xcfc ports */
static uint32_t cfg_addr(unsigned int off)
{
	return 0x80000000u | (EDU_SLOT << 11) | (off & 0xfc);
}

static uint32_t cfg_readl(unsigned int off)
{
	qtest("outl 0xcf8 0x%x", cfg_addr(off));
	return qtest_val("inl 0xcfc");
}

static void cfg_writel(unsigned int off, uint32_t val)
{
	qtest("outl 0xcf8 0x%x", cfg_addr(off));
	qtest("outl 0xcfc 0x%x", val);
}

static void cfg_writew(unsigned int off, uint16_t val)
{
	qtest("outl 0xcf8 0x%x", cfg_addr(off));
	qtest("outw 0x%x 0x%x", 0xcfc + (off & 2), val);
}

static void mem_write(uint64_t gpa, const uint8_t *p, size_t len)
{
	char hex[2 * 4096 + 1];
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", p[i]);
	qtest("write 0x%" PRIx64 " 0x%zx 0x%s", gpa, len, hex);
}

static void mem_read(uint64_t gpa, uint8_t *p, size_t len)
{
	const char *s = qtest("read 0x%" PRIx64 " 0x%zx", gpa, len);
	size_t i;

	if (strncmp(s, "0x", 2) || strlen(s) != 2 + 2 * len)
		bail("qtest read: '%s'", s);
	for (i = 0; i < len; i++)
		sscanf(s + 2 + 2 * i, "%2hhx", &p[i]);
}

static void hexstr(char *out, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* Events QMP sent while we waited for answers */
static int device_deleted;

static void qmp_event(const char *line)
{
	if (strstr(line, "\"DEVICE_DELETED\"") && strstr(line, "\"edu0\""))
		device_deleted++;
	note("QMP event: %s", line);
}

/* A QMP command; its answer line ({"return": ...} or {"error": ...}) */
static char *qmp_cmd(const char *json)
{
	static char line[1 << 16];

	chan_send(&qmp, json);
	chan_send(&qmp, "\n");
	for (;;) {
		chan_line(&qmp, line, sizeof(line), 60);
		if (strstr(line, "\"event\""))
			qmp_event(line);
		else if (strstr(line, "\"return\"") || strstr(line, "\"error\""))
			return line;
	}
}

/* Wait for an event (DEVICE_DELETED of edu0) within @secs */
static bool qmp_wait_deleted(double secs)
{
	double deadline = now() + secs;
	char line[4096];

	while (!device_deleted) {
		double left = deadline - now();

		if (left <= 0)
			return false;
		chan_line(&qmp, line, sizeof(line), left);
		if (strstr(line, "\"event\""))
			qmp_event(line);
		else
			note("QMP: unexpected %s", line);
	}
	return true;
}

/* ---- QEMU ---- */

static char stderr_path[] = RUN_DIR "/qemu.stderr";
static size_t stderr_shown;

/*
 * A line as the VMM saw it, without what differs from run to run however
 * the kernel behaves: host addresses (QEMU's pointers, mmap addresses).
 */
static void normalize(char *out, size_t size, const char *in)
{
	size_t o = 0;

	while (*in && o + 8 < size) {
		size_t n = 0;

		if (in[0] == '0' && in[1] == 'x')
			while (isxdigit((unsigned char)in[2 + n]))
				n++;
		if (n >= 11) {		/* above 64 GiB: a host address */
			o += snprintf(out + o, size - o, "0x<host>");
			in += 2 + n;
		} else {
			out[o++] = *in++;
		}
	}
	out[o] = 0;
}

/*
 * QEMU's stderr since last time: the trace events that tell what it did
 * with iommufd, and any other line (a warning or an error) in full. Each
 * is a line of what the VMM saw, too.
 */
static void show_stderr(void)
{
	static const char *const keep[] = {
		"iommufd_backend_connect", "iommufd_backend_alloc_ioas",
		"iommufd_cdev_alloc_ioas", "iommufd_cdev_connect_and_bind",
		"iommufd_backend_alloc_hwpt", "iommufd_cdev_attach_ioas_hwpt",
		"iommufd_cdev_detach_ioas_hwpt", "iommufd_backend_map_dma",
		"iommufd_backend_unmap_dma", "iommufd_backend_free_id",
		"iommufd_backend_disconnect", "iommufd_cdev_getfd",
	};
	char *all = read_all(stderr_path, NULL), *line, *save;
	size_t len;

	if (!all)
		return;
	len = strlen(all);
	if (stderr_shown > len)
		stderr_shown = 0;
	for (line = strtok_r(all + stderr_shown, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *ev = line;
		bool trace = false;
		unsigned int i;

		/* "pid@secs:event ..." with -msg timestamp=on; not here */
		if (strchr(ev, '@') && strchr(ev, ':') && strchr(ev, '@') < strchr(ev, ':'))
			ev = strchr(ev, ':') + 1;
		if (!strncmp(ev, "iommufd_", 8) || !strncmp(ev, "vfio_", 5))
			trace = true;
		for (i = 0; trace && i < ARRAY_SIZE(keep); i++)
			if (!strncmp(ev, keep[i], strlen(keep[i])))
				break;
		if (!trace)
			note("qemu stderr: %s", line);
		else if (verbose || i < ARRAY_SIZE(keep))
			note("qemu trace: %s", ev);
		if (!trace || i < ARRAY_SIZE(keep)) {
			char norm[320];

			normalize(norm, sizeof(norm), ev);
			vmm_saw("qemu: %s", norm);
		}
	}
	stderr_shown = len;
	free(all);
}

/* The FIFOs of a pipe chardev at @path, held open read-write */
static void make_chan(struct chan *c, const char *path)
{
	char in[256], out[256];

	snprintf(in, sizeof(in), "%s.in", path);
	snprintf(out, sizeof(out), "%s.out", path);
	unlink(in);
	unlink(out);
	if (mkfifo(in, 0600) || mkfifo(out, 0600))
		bail("mkfifo %s: %s", path, strerror(errno));
	c->in = open(in, O_RDWR | O_CLOEXEC);
	c->out = open(out, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (c->in < 0 || c->out < 0)
		bail("open %s: %s", path, strerror(errno));
}

/* QEMU died under us: its status, and what it said */
static void qemu_died(void)
{
	int status = 0;

	waitpid(qemu_pid, &status, 0);
	qemu_pid = -1;
	bail("QEMU exited unexpectedly (%s %d)",
	     WIFEXITED(status) ? "status" : "signal",
	     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}


/*
 * Start QEMU with its qtest protocol and a QMP monitor on our FIFOs, its
 * trace events on its stderr.
 */
static void start_qemu(const char *bundle, const char *bdf)
{
	char loader[512], libdir[512], bin[512], share[512], dev[512];
	char qtarg[128], qmparg[128];
	int i, errfd;
	char *argv[64];
	int argc = 0;

	snprintf(loader, sizeof(loader), "%s/lib/ld-linux-x86-64.so.2", bundle);
	snprintf(libdir, sizeof(libdir), "%s/lib", bundle);
	snprintf(bin, sizeof(bin), "%s/qemu-system-x86_64", bundle);
	snprintf(share, sizeof(share), "%s/share", bundle);
	snprintf(dev, sizeof(dev),
		 "vfio-pci,host=%s,iommufd=fd0,id=edu0,rombar=0,addr=%x.0",
		 bdf, EDU_SLOT);
	snprintf(qtarg, sizeof(qtarg), "pipe:%s/qtest", RUN_DIR);
	snprintf(qmparg, sizeof(qmparg), "pipe,id=qmp0,path=%s/qmp", RUN_DIR);
	make_chan(&qt, RUN_DIR "/qtest");
	make_chan(&qmp, RUN_DIR "/qmp");

	argv[argc++] = loader;
	argv[argc++] = "--library-path";
	argv[argc++] = libdir;
	argv[argc++] = bin;
	argv[argc++] = "-L";
	argv[argc++] = share;
	argv[argc++] = "-nodefaults";
	argv[argc++] = "-display";
	argv[argc++] = "none";
	argv[argc++] = "-machine";
	argv[argc++] = "pc";
	argv[argc++] = "-m";
	argv[argc++] = INNER_RAM;
	/*
	 * Debian's build has no qtest accelerator (QOM lists tcg-accel and
	 * kvm-accel only; -accel qtest is refused): with -qtest alone the
	 * qtest protocol works but TCG runs SeaBIOS, which programs PAM and
	 * the BARs itself. -S keeps the vCPU stopped for the whole run, which
	 * main() checks at the end (status prelaunch, 0 blocks translated).
	 */
	argv[argc++] = "-S";
	argv[argc++] = "-qtest";
	argv[argc++] = qtarg;
	argv[argc++] = "-qtest-log";
	argv[argc++] = "/dev/null";
	argv[argc++] = "-chardev";
	argv[argc++] = qmparg;
	argv[argc++] = "-mon";
	argv[argc++] = "chardev=qmp0,mode=control";
	argv[argc++] = "-object";
	argv[argc++] = "iommufd,id=fd0";
	argv[argc++] = "-device";
	argv[argc++] = dev;
	argv[argc++] = "-trace";
	argv[argc++] = "iommufd_*";
	argv[argc++] = "-trace";
	argv[argc++] = "vfio_*";
	argv[argc] = NULL;

	{
		char cmdline[2048] = "";

		for (i = 3; i < argc; i++) {
			strncat(cmdline, " ", sizeof(cmdline) - strlen(cmdline) - 1);
			strncat(cmdline, argv[i], sizeof(cmdline) - strlen(cmdline) - 1);
		}
		note("running%s", cmdline);
	}
	errfd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (errfd < 0)
		bail("%s: %s", stderr_path, strerror(errno));
	fflush(stdout);
	qemu_pid = fork();
	if (qemu_pid < 0)
		bail("fork: %s", strerror(errno));
	if (qemu_pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(errfd, 1);
		dup2(errfd, 2);
		execv(loader, argv);
		fprintf(stderr, "exec %s: %s\n", loader, strerror(errno));
		_exit(127);
	}
	close(errfd);
	pidfd = syscall(SYS_pidfd_open, qemu_pid, 0);
	if (pidfd < 0)
		bail("pidfd_open: %s", strerror(errno));
}

/* QEMU's exit status, waiting for it (pidfd) within @secs; -1: still there */
static int wait_qemu(double secs)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int status;

	if (poll(&pfd, 1, (int)(secs * 1000)) <= 0)
		return -1;
	if (waitpid(qemu_pid, &status, 0) != qemu_pid)
		return -1;
	qemu_pid = -1;
	return status;
}

/* ---- what the kernel shows ---- */

/* VmPin of QEMU's process (iommufd pins what it maps), in kB, or -1 */
static long vm_pin(void)
{
	char path[64], *s, *p;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)qemu_pid);
	s = read_all(path, NULL);
	p = s ? strstr(s, "VmPin:") : NULL;
	if (p)
		kb = strtol(p + 6, NULL, 10);
	free(s);
	return kb;
}

struct range { uint64_t start, end; };	/* [start, end) */

/*
 * The IOVA ranges the device's VT-d domain maps, from the intel driver's
 * debugfs page-table dump: "0x<iova pfn> |" and the entries of the walk,
 * one per level from PML5E down to the leaf (a 2 MiB leaf is a PDE).
 * Returns the number of ranges, or -1 without the file.
 */
static int domain_ranges(const char *bdf, struct range *r, int max)
{
	char path[256], *s, *line, *save;
	int n = 0;

	snprintf(path, sizeof(path),
		 "/sys/kernel/debug/iommu/intel/%s/domain_translation_struct", bdf);
	s = read_all(path, NULL);
	if (!s)
		return -1;
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		uint64_t pfn, start, size;
		int fields = 0;
		char *p;

		p = strchr(line, '|');
		if (strncmp(line, "0x", 2) || !p)
			continue;
		pfn = strtoull(line, NULL, 16);
		for (p++; (p = strstr(p, "0x")); p += 2)
			fields++;
		/* PML5E PML4E PDPE [PDE [PTE]]: 3 fields a 1 GiB leaf */
		size = fields >= 5 ? 1ull << 12 : fields == 4 ? 1ull << 21 : 1ull << 30;
		start = pfn << 12;
		if (n && r[n - 1].end == start)
			r[n - 1].end += size;
		else if (n < max)
			r[n++] = (struct range){ start, start + size };
	}
	free(s);
	return n;
}

static bool in_ranges(const struct range *r, int n, uint64_t a, uint64_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (a >= r[i].start && a + len <= r[i].end)
			return true;
	return false;
}

static void show_ranges(const char *what, const struct range *r, int n)
{
	char buf[1024] = "";
	uint64_t total = 0;
	int i;

	for (i = 0; i < n; i++) {
		size_t l = strlen(buf);

		total += r[i].end - r[i].start;
		if (l < sizeof(buf) - 48)
			snprintf(buf + l, sizeof(buf) - l, "%s0x%" PRIx64 "-0x%" PRIx64,
				 i ? ", " : "", r[i].start, r[i].end - 1);
	}
	note("kernel: %s: %" PRIu64 " KiB in %d range%s%s%s", what,
	     total >> 10, n, n == 1 ? "" : "s", n ? ": " : "", buf);
}

/* The fields of debugfs fault_forwarding, summed over its IOMMUs */
struct fwd {
	bool present;
	int n;
	char key[8][16];
	uint64_t val[8];
};

/*
 * v1 of the series prints "<iommu>: queued N forwarded N lost N"; later
 * versions add fields. Read every "name N" pair by its name.
 */
static void read_forwarding(struct fwd *f, bool show)
{
	char *s = read_all(FWD_PATH, NULL), *line, *save;

	memset(f, 0, sizeof(*f));
	if (!s)
		return;
	f->present = true;
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[16], *p = strchr(line, ':');
		unsigned long long v;
		int used, i;

		if (show)
			note("%s: %s", FWD_PATH, line);
		if (!p)
			continue;
		for (p++; sscanf(p, " %15[a-z_] %llu%n", key, &v, &used) == 2; p += used) {
			for (i = 0; i < f->n && strcmp(f->key[i], key); i++)
				;
			if (i == f->n && f->n < 8)
				snprintf(f->key[f->n++], sizeof(f->key[0]), "%s", key);
			if (i < 8)
				f->val[i] += v;
		}
	}
	free(s);
}

static bool fwd_has(const struct fwd *f, const char *key)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (!strcmp(f->key[i], key))
			return true;
	return false;
}

static uint64_t fwd_get(const struct fwd *f, const char *key)
{
	int i;

	for (i = 0; i < f->n; i++)
		if (!strcmp(f->key[i], key))
			return f->val[i];
	return 0;
}

/*
 * /dev/kmsg from now on: the DMAR fault lines for @sid ("0000:00:01.0") and
 * @addr, waited for (poll) within @secs. Returns the fault reason, or -1.
 */
static int kmsg_fd = -1;

static void kmsg_mark(void)
{
	if (kmsg_fd < 0)
		kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd < 0)
		bail("open /dev/kmsg: %s", strerror(errno));
	lseek(kmsg_fd, 0, SEEK_END);
}

static int kmsg_fault(const char *sid, uint64_t addr, bool is_read, double secs)
{
	double deadline = now() + secs;
	char want_dev[64], want_addr[64], rec[2048];

	snprintf(want_dev, sizeof(want_dev), "Request device [%s]", sid);
	snprintf(want_addr, sizeof(want_addr), "fault addr 0x%" PRIx64 " [fault reason 0x", addr);
	for (;;) {
		struct pollfd pfd = { .fd = kmsg_fd, .events = POLLIN };
		ssize_t n = read(kmsg_fd, rec, sizeof(rec) - 1);
		const char *msg, *p;
		double left;

		if (n < 0 && errno == EPIPE)	/* overwritten: go on */
			continue;
		if (n < 0 && errno == EAGAIN) {
			left = deadline - now();
			if (left <= 0)
				return -1;
			poll(&pfd, 1, (int)(left * 1000) + 1);
			continue;
		}
		if (n <= 0)
			return -1;
		rec[n] = 0;
		/* "level,seq,time,flags;message\n" */
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (!strstr(msg, "DMAR: [DMA"))
			continue;
		note("dmesg: %.*s", (int)strcspn(msg, "\n"), msg);
		p = strstr(msg, want_addr);
		if (p && strstr(msg, want_dev) &&
		    strstr(msg, is_read ? "[DMA Read" : "[DMA Write"))
			return strtol(p + strlen(want_addr), NULL, 16);
	}
}

/* The time stamp (us, the kernel log's clock) of a /dev/kmsg record */
static uint64_t kmsg_stamp(const char *rec)
{
	unsigned long long us = 0;

	sscanf(rec, "%*u,%*u,%llu", &us);
	return us;
}

/*
 * dmar_fault() rate-limits its log: DEFAULT_RATELIMIT_BURST (10) calls of
 * __ratelimit() in DEFAULT_RATELIMIT_INTERVAL (5 s), and a fault with one
 * record takes three (the status line, the record, the loop's last turn).
 * edu_fault's two faults just before in the same boot leave too few for
 * our two. No event says when the window ends; the log's own clock does:
 * the window began at or before the newest line dmar_fault() printed (a
 * window's first call always prints), so 5 s after that line it is over.
 * Wait for that if need be: "now" is the stamp of a line we write.
 */
static void dmar_log_window(void)
{
	char rec[2048], marker[64];
	uint64_t last = 0, mark = 0;
	double deadline = now() + 10;
	bool written = false;
	int fd;

	fd = open("/dev/kmsg", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		bail("open /dev/kmsg: %s", strerror(errno));
	snprintf(marker, sizeof(marker), "qemu_client[%d]: the time now", (int)getpid());
	while (!mark) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		const char *msg;

		if (n < 0 && errno == EPIPE)	/* overwritten: go on */
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			char line[80];

			/* The whole log is read: now our line, at its end */
			if (!written) {
				snprintf(line, sizeof(line), "<6>%s\n", marker);
				if (write(fd, line, strlen(line)) < 0)
					bail("write /dev/kmsg: %s", strerror(errno));
				written = true;
				continue;
			}
			if (now() > deadline)
				bail("/dev/kmsg: our own line did not come back within 10 s");
			poll(&pfd, 1, 1000);
			continue;
		}
		if (n <= 0)
			bail("read /dev/kmsg: %s", n ? strerror(errno) : "EOF");
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (!strncmp(msg, "DMAR: DRHD: handling fault", 26) ||
		    !strncmp(msg, "DMAR: [DMA ", 11) ||
		    !strncmp(msg, "DMAR: [INTR-REMAP]", 18))
			last = kmsg_stamp(rec);
		if (written && !strncmp(msg, marker, strlen(marker)))
			mark = kmsg_stamp(rec);
	}
	close(fd);
	if (last && mark < last + 5100000) {
		uint64_t wait = last + 5100000 - mark;

		note("dmar_fault() logged %.1f s ago: waiting %.1f s for the 5 s window of its rate limit to end",
		     (mark - last) / 1e6, wait / 1e6);
		usleep(wait);
	}
}

/* The first-stage reasons of the scalable-mode table (as edu_fault's) */
static bool first_stage(int reason)
{
	return (reason >= 0x71 && reason <= 0x74) ||
	       (reason >= 0x80 && reason <= 0x82) ||
	       reason == 0x85 || reason == 0x86 || reason == 0x90;
}

/* ---- the inner guest drives edu ---- */

static uint32_t bar_readl(unsigned int off)
{
	return qtest_val("readl 0x%x", BAR0_GPA + off);
}

/* One edu DMA, polling its command register until it is done (bounded) */
static bool edu_dma(uint64_t src, uint64_t dst, uint64_t cnt, uint64_t cmd)
{
	double t0 = now();

	qtest("writeq 0x%x 0x%" PRIx64, BAR0_GPA + EDU_DMA_SRC, src);
	qtest("writeq 0x%x 0x%" PRIx64, BAR0_GPA + EDU_DMA_DST, dst);
	qtest("writeq 0x%x 0x%" PRIx64, BAR0_GPA + EDU_DMA_CNT, cnt);
	qtest("writeq 0x%x 0x%" PRIx64, BAR0_GPA + EDU_DMA_CMD, cmd | EDU_CMD_RUN);
	while (qtest_val("readq 0x%x", BAR0_GPA + EDU_DMA_CMD) & EDU_CMD_RUN) {
		if (now() - t0 > 20) {
			note("edu: DMA 0x%" PRIx64 " -> 0x%" PRIx64 " still running after 20 s",
			     src, dst);
			return false;
		}
		usleep(1000);
	}
	return true;
}

static bool has_line(const char *text, const char *a, const char *b)
{
	const char *p;

	for (p = text; p && (p = strstr(p, a)); p++) {
		const char *eol = strchr(p, '\n');

		if (!b || (strstr(p, b) && (!eol || strstr(p, b) < eol)))
			return true;
	}
	return false;
}

/*
 * The RAM QEMU mapped, from its iommufd_backend_map_dma trace lines: each
 * mapping that succeeded, in a "# vmm:" line without its host address.
 * Returns whether one of them covers [gpa, gpa + len) writable.
 */
static bool qemu_mapped(const char *text, uint64_t gpa, uint64_t len, int *nmaps)
{
	const char *p;
	bool covered = false;

	*nmaps = 0;
	for (p = text; (p = strstr(p, "iommufd_backend_map_dma ")); p++) {
		unsigned long long iova, size;
		int fd, ioas, ro, ret;
		const char *q = strstr(p, "iommufd=");

		if (!q || sscanf(q, "iommufd=%d ioas=%d iova=0x%llx size=0x%llx",
				 &fd, &ioas, &iova, &size) != 4)
			continue;
		q = strstr(q, "readonly=");
		if (!q || sscanf(q, "readonly=%d (%d)", &ro, &ret) != 2)
			continue;
		if (ret)
			continue;
		(*nmaps)++;
		if (!ro && gpa >= iova && gpa + len <= iova + size)
			covered = true;
	}
	return covered;
}

int main(int argc, char **argv)
{
	const char *bundle = "qemu-bundle";
	uint8_t pattern[DMA_LEN], got[DMA_LEN], back[DMA_LEN];
	char bdf[256], cdev[512], *text, hex[2 * DMA_LEN + 1], hex2[2 * DMA_LEN + 1];
	struct fwd f0, f1, f2 = { 0 };
	struct range r[32];
	int nr, i, opt, nmaps, reason_r, reason_w, status;
	bool mapped, attached, dma_ok, pass, prelaunch;
	double t_start = now(), t;
	long pin, pin_after, tbs;
	uint32_t v;

	while ((opt = getopt(argc, argv, "b:Fv")) != -1) {
		switch (opt) {
		case 'b':
			bundle = optarg;
			break;
		case 'F':
			need_fwd = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			fprintf(stderr, "usage: %s [-b BUNDLE_DIR] [-F] [-v]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(300);
	printf("TAP version 13\n1..6\n");
	mkdir(RUN_DIR, 0755);

	load_modules();
	if (!exists("/dev/iommu"))
		bail("no /dev/iommu");
	if (!find_pci_dev(EDU_VENDOR, EDU_DEVICE, bdf, sizeof(bdf)))
		bail("no edu device (QEMU's -device edu)");
	bind_vfio(bdf, cdev, sizeof(cdev));
	note("edu %s is vfio-pci's: %s", bdf, cdev);
	read_forwarding(&f0, true);
	if (!f0.present)
		note("no %s: a kernel without VT-d fault forwarding", FWD_PATH);

	/* --- 1. QEMU maps its RAM into an IOAS and attaches edu --- */
	t = now();
	start_qemu(bundle, bdf);
	{
		char greeting[4096], pkg[128] = "?";

		chan_line(&qmp, greeting, sizeof(greeting), 120);
		if (!strstr(greeting, "\"QMP\""))
			bail("QMP greeting: %s", greeting);
		text = strstr(greeting, "\"package\": \"");
		if (text)
			sscanf(text, "\"package\": \"%127[^\"]", pkg);
		note("QMP greeting: %s", greeting);
		vmm_saw("QMP greeting: QEMU package %s", pkg);
	}
	/* Answered from QEMU's main loop: every -device is realized by now */
	if (!strstr(qmp_cmd("{\"execute\": \"qmp_capabilities\"}"), "\"return\""))
		bail("qmp_capabilities refused");
	text = qmp_cmd("{\"execute\": \"query-pci\"}");
	vmm_saw("query-pci: edu0 %s", strstr(text, "\"qdev_id\": \"edu0\"") ?
		"present" : "absent");
	show_stderr();
	text = read_all(stderr_path, NULL);
	if (!text)
		bail("no %s", stderr_path);
	attached = has_line(text, "iommufd_cdev_attach_ioas_hwpt", "Successfully attached");
	vmm_saw("attach: %s", attached ? "attached (iommufd_cdev_attach_ioas_hwpt)" :
		"no iommufd_cdev_attach_ioas_hwpt line");
	mapped = qemu_mapped(text, GPA_SRC, 3 * 4096, &nmaps);
	free(text);
	pin = vm_pin();
	note("kernel: QEMU's VmPin: %ld kB", pin);
	nr = domain_ranges(bdf, r, 32);
	if (nr >= 0)
		show_ranges("the IOVAs edu's VT-d domain maps", r, nr);
	else
		note("kernel: no domain_translation_struct for %s in debugfs", bdf);
	pass = attached && mapped && pin > 0 &&
	       (nr < 0 || (in_ranges(r, nr, GPA_SRC, 3 * 4096) &&
			   !in_ranges(r, nr, GPA_UNMAPPED_R, 4096) &&
			   !in_ranges(r, nr, GPA_UNMAPPED_W, 4096)));
	ok(pass, "QEMU mapped its RAM into an IOAS (%d mappings) and attached edu to it (%.1f s)",
	   nmaps, now() - t);

	/* --- 2. edu DMAs from and to the inner guest's RAM --- */
	t = now();
	v = cfg_readl(0x00);
	vmm_saw("config: vendor:device 0x%08x", v);
	if (v != (EDU_DEVICE << 16 | EDU_VENDOR))
		bail("slot %d of the inner guest is 0x%08x, not edu", EDU_SLOT, v);
	cfg_writel(0x10, BAR0_GPA);
	cfg_writew(0x04, 0x6);		/* MEM | BUS_MASTER */
	v = cfg_readl(0x10);
	vmm_saw("config: BAR0 0x%08x, command 0x%04x", v, cfg_readl(0x04) & 0xffff);
	note("BAR0 at 0x%08x, command MEM|BUS_MASTER", v);
	v = bar_readl(EDU_ID);
	qtest("writel 0x%x 0x12345678", BAR0_GPA + EDU_LIVENESS);
	vmm_saw("edu: id 0x%08x, liveness 0x12345678 -> 0x%08x", v,
		bar_readl(EDU_LIVENESS));
	note("edu through the BAR: id 0x%08x", v);
	show_stderr();
	for (i = 0; i < DMA_LEN; i++)
		pattern[i] = (uint8_t)(0xa5 ^ (i * 37));
	memset(got, 0, sizeof(got));
	mem_write(GPA_SRC, pattern, DMA_LEN);
	mem_write(GPA_DST, got, DMA_LEN);
	dma_ok = edu_dma(GPA_SRC, EDU_BUF, DMA_LEN, 0) &&
		 edu_dma(EDU_BUF, GPA_DST, DMA_LEN, EDU_CMD_TO_PCI);
	mem_read(GPA_DST, got, DMA_LEN);
	hexstr(hex, pattern, 16);
	hexstr(hex2, got, 16);
	note("DMA: RAM 0x%llx -> edu 0x%x -> RAM 0x%llx, %d bytes: wrote %s..., read back %s...",
	     GPA_SRC, EDU_BUF, GPA_DST, DMA_LEN, hex, hex2);
	vmm_saw("DMA round trip of %d bytes: %s, read back %s...", DMA_LEN,
		dma_ok && !memcmp(pattern, got, DMA_LEN) ? "bytes equal" : "bytes differ",
		hex2);
	ok(dma_ok && !memcmp(pattern, got, DMA_LEN),
	   "edu DMAed %d bytes from the inner guest's RAM and back through its BAR (%.1f s)",
	   DMA_LEN, now() - t);

	/* --- 3. a DMA to an inner address that is not RAM --- */
	t = now();
	dmar_log_window();
	kmsg_mark();
	read_forwarding(&f1, false);
	dma_ok = edu_dma(GPA_UNMAPPED_R, EDU_BUF, DMA_LEN, 0);
	reason_r = kmsg_fault(bdf, GPA_UNMAPPED_R, true, 20);
	/*
	 * One fault at a time: the emulated VT-d drops a second fault of the
	 * same source-id while the first is still recorded
	 */
	dma_ok = edu_dma(EDU_BUF, GPA_UNMAPPED_W, DMA_LEN, EDU_CMD_TO_PCI) && dma_ok;
	reason_w = kmsg_fault(bdf, GPA_UNMAPPED_W, false, 20);
	/* What the VMM sees of the failed read: edu's buffer, copied back */
	dma_ok = edu_dma(EDU_BUF, GPA_BACK, DMA_LEN, EDU_CMD_TO_PCI) && dma_ok;
	mem_read(GPA_BACK, back, DMA_LEN);
	hexstr(hex, back, 16);
	vmm_saw("DMA read of unmapped 0x%llx: edu finished %s; edu's buffer after it: %s...",
		GPA_UNMAPPED_R, dma_ok ? "every DMA" : "NOT every DMA", hex);
	note("edu's buffer after the read of 0x%llx, copied to RAM: %s...",
	     GPA_UNMAPPED_R, hex);
	show_stderr();
	ok(dma_ok && first_stage(reason_r) && first_stage(reason_w),
	   "DMA to unmapped 0x%llx and 0x%llx: DMAR logged first-stage faults 0x%x and 0x%x for [%s] (%.1f s)",
	   GPA_UNMAPPED_R, GPA_UNMAPPED_W, reason_r, reason_w, bdf, now() - t);

	/* The fault log's count of these two records: waited for, bounded */
	if (f1.present) {
		double t0 = now();

		for (;;) {
			read_forwarding(&f2, false);
			if (fwd_get(&f2, "queued") + fwd_get(&f2, "filtered") >=
			    fwd_get(&f1, "queued") + fwd_get(&f1, "filtered") + 2)
				break;
			if (now() - t0 > 10) {
				note("fault_forwarding did not count the 2 records as queued or filtered within 10 s");
				break;
			}
			usleep(10000);
		}
		read_forwarding(&f2, true);
	}

	/* --- 4. hot-unplug: device_del, the ACPI eject, DEVICE_DELETED --- */
	t = now();
	text = qmp_cmd("{\"execute\": \"device_del\", \"arguments\": {\"id\": \"edu0\"}}");
	vmm_saw("device_del: %s", text);
	/* The guest's ACPI would eject the slot when told: we are the guest */
	qtest("outl 0x%x 0x%x", ACPI_PCIHP_ADDR + PCI_EJ_BASE, 1u << EDU_SLOT);
	pass = qmp_wait_deleted(60);
	text = qmp_cmd("{\"execute\": \"query-pci\"}");
	pass = pass && !strstr(text, "\"edu0\"");
	vmm_saw("DEVICE_DELETED edu0: %s; query-pci after it: edu0 %s",
		device_deleted ? "received" : "NOT received",
		strstr(text, "\"edu0\"") ? "present" : "absent");
	show_stderr();
	text = read_all(stderr_path, NULL);
	{
		bool detached = text && has_line(text, "iommufd_cdev_detach_ioas_hwpt",
						 "Successfully detached");

		vmm_saw("detach: %s", detached ? "detached (iommufd_cdev_detach_ioas_hwpt)" :
			"no iommufd_cdev_detach_ioas_hwpt line");
		pass = pass && detached;
	}
	free(text);
	pin_after = vm_pin();
	note("kernel: QEMU's VmPin after the unplug: %ld kB", pin_after);
	nr = domain_ranges(bdf, r, 32);
	if (nr >= 0)
		show_ranges("the IOVAs edu's domain maps after the unplug", r, nr);
	ok(pass && pin_after == 0,
	   "hot-unplug: device_del, ACPI eject of slot %d, DEVICE_DELETED; QEMU unpinned all it had pinned (%.1f s)",
	   EDU_SLOT, now() - t);

	/* --- 5. quit: the vCPU never ran, and QEMU exits 0 --- */
	t = now();
	text = qmp_cmd("{\"execute\": \"query-status\"}");
	prelaunch = strstr(text, "\"prelaunch\"") && strstr(text, "\"running\": false");
	note("QMP query-status: %s", text);
	text = qmp_cmd("{\"execute\": \"human-monitor-command\", "
		       "\"arguments\": {\"command-line\": \"info jit\"}}");
	text = strstr(text, "TB count");
	tbs = text ? strtol(text + strlen("TB count"), NULL, 10) : -1;
	vmm_saw("vCPU: %s, TCG translated %ld blocks",
		prelaunch ? "never started (prelaunch)" : "STARTED", tbs);
	text = qmp_cmd("{\"execute\": \"quit\"}");
	status = wait_qemu(60);
	show_stderr();
	vmm_saw("quit: %s; QEMU exit status %d%s", text,
		status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		status >= 0 && WIFSIGNALED(status) ? " (killed by a signal)" : "");
	if (status < 0)
		kill_qemu();
	ok(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	   prelaunch && tbs == 0,
	   "QEMU exited 0; its vCPU never ran (prelaunch, %ld TCG blocks) (%.1f s)",
	   tbs, now() - t);

	/* --- 6. nothing forwarded: no vIOMMU owns this domain --- */
	if (!f0.present && need_fwd) {
		ok(false, "nothing forwarded: no %s, and -F requires it", FWD_PATH);
	} else if (!f0.present) {
		skip("nothing forwarded # SKIP no %s: no VT-d fault forwarding in this kernel (the unpatched one has none)",
		     FWD_PATH);
	} else {
		struct fwd f3;
		bool filtering = fwd_has(&f2, "filtered");

		read_forwarding(&f3, true);
		pass = fwd_has(&f3, "forwarded") && fwd_get(&f2, "forwarded") == 0 &&
		       fwd_get(&f3, "forwarded") == 0;
		/* A version that filters the host's records queues none of ours */
		if (filtering)
			pass = pass && fwd_get(&f3, "queued") == fwd_get(&f0, "queued");
		ok(pass, "fault_forwarding: forwarded 0 after the faults and after QEMU's exit%s (queued +%" PRIu64 ", filtered +%" PRIu64 ")",
		   filtering ? ", queued unchanged" : "",
		   fwd_get(&f3, "queued") - fwd_get(&f0, "queued"),
		   fwd_get(&f3, "filtered") - fwd_get(&f0, "filtered"));
	}

	for (i = 0; i < nvmm; i++)
		printf("# vmm: %s\n", vmm[i]);
	printf("# %d tests, %d failed, %.1f s\n", tests, failed, now() - t_start);
	return failed ? 1 : 0;
}
