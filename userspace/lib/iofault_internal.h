/* SPDX-License-Identifier: MIT */
/* Hooks for the library's own unit tests; not part of the API. */
#ifndef IOFAULT_INTERNAL_H
#define IOFAULT_INTERNAL_H

#include <stdio.h>
#include <sys/types.h>

struct iof_queue;
struct iof_veventq;
struct iof_fdinfo;

typedef ssize_t (*iof_read_fn)(int fd, void *buf, size_t len);
typedef ssize_t (*iof_write_fn)(int fd, const void *buf, size_t len);
typedef int (*iof_ioctl_fn)(int fd, unsigned long request, void *arg);

/* read() and write() of the queue's own fd */
void iof_set_io(struct iof_queue *q, iof_read_fn io_read,
		iof_write_fn io_write);
void iof_vset_io(struct iof_veventq *q, iof_read_fn io_read);

/* Every ioctl() the library makes; NULL for the real one */
void iof_set_ioctl(iof_ioctl_fn fn);

/*
 * Forget what iof_probe() found and what allocations learned, so that the
 * next call probes again
 */
void iof_probe_reset(void);

/* What iof_queue_fdinfo() makes of a fault fd's fdinfo text */
int iof_fdinfo_parse(FILE *f, struct iof_fdinfo *info);

#endif
