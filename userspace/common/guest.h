/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the programs that run as a test guest's command (edu_fault,
 * qemu_client, module_cycle) share: TAP lines and sysfs files. Each of them
 * is one C file built statically into the guest; this header is included
 * once per program, like tools/testing/selftests/kselftest.h.
 */
#ifndef GUEST_H
#define GUEST_H

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tests, failed;

/* One TAP line, flushed: the console may be all that is left of a guest */
static void __attribute__((format(printf, 2, 3)))
ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failed += !cond;
}

static inline int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -1 : 0;
}

/* A sysfs attribute of @dir in hex (vendor, device); 0 if unreadable */
static inline unsigned long read_hex(const char *dir, const char *name)
{
	char path[1024], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strtoul(buf, NULL, 16);
}

/* The PCI address (0000:00:03.0) of the first @vendor:@device there is */
static inline bool find_pci_dev(unsigned int vendor, unsigned int device,
				char *bdf, size_t len)
{
	struct dirent *de;
	char dir[512];
	DIR *d;

	d = opendir("/sys/bus/pci/devices");
	if (!d)
		return false;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", de->d_name);
		if (read_hex(dir, "vendor") == vendor &&
		    read_hex(dir, "device") == device) {
			snprintf(bdf, len, "%s", de->d_name);
			closedir(d);
			return true;
		}
	}
	closedir(d);
	return false;
}

#endif
