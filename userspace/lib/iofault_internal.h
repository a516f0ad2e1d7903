/* SPDX-License-Identifier: MIT */
/* Hooks for the library's own unit tests; not part of the API. */
#ifndef IOFAULT_INTERNAL_H
#define IOFAULT_INTERNAL_H

#include <sys/types.h>

struct iof_queue;

void iof_set_io(struct iof_queue *q,
		ssize_t (*io_read)(int fd, void *buf, size_t len),
		ssize_t (*io_write)(int fd, const void *buf, size_t len));

#endif
