/* SPDX-License-Identifier: MIT */
/*
 * Hooks for the library's own tests; not part of the API, not exported by
 * the shared library (libiofault.map), not installed. The unit tests and
 * the kernel scenarios link the static library.
 */
#ifndef IOFAULT_INTERNAL_H
#define IOFAULT_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

struct iof_fdinfo;

/*
 * The system calls the library makes on iommufd, queue and eventfd fds; a
 * NULL member is the real one. The fake kernel (tests/fake.c) puts itself
 * here. poll(), epoll and eventfd() stay real: the fake's fds are real fds.
 */
struct iof_sys {
	int (*ioctl)(int fd, unsigned long request, void *arg);
	ssize_t (*read)(int fd, void *buf, size_t len);
	ssize_t (*write)(int fd, const void *buf, size_t len);
	int (*close)(int fd);
	/* The fdinfo text of @fd (say, from fmemopen()), NULL for /proc's */
	FILE *(*fdinfo)(int fd);
};
void iof_set_sys(const struct iof_sys *sys);

/*
 * Make allocations fail: @fail is asked before each, with the name of its
 * use ("table", "group", "readbuf", ...); NULL for none
 */
void iof_set_alloc_fail(bool (*fail)(const char *site));

/*
 * Forget what iof_probe() found and what allocations learned, so that the
 * next call probes again
 */
void iof_probe_reset(void);

/* What iof_queue_fdinfo() makes of a fault fd's fdinfo text */
int iof_fdinfo_parse(FILE *f, struct iof_fdinfo *info);

#endif
