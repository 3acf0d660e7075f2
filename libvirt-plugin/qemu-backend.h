/* The memory backends of a QEMU command line, as libvirt passes them: one JSON argument
 * of -object each. Read them, and make the wrapper's variants of them. */
#pragma once

#include <stdint.h>

#include "qemu-json.h"

/* Parse "-object {json}" at argv[i], argv[i+1] if it is a memory backend with an id;
 * NULL otherwise. */
QemuObject *qemu_backend_at(char *const *argv, size_t i);

const char *qemu_backend_id(const QemuObject *obj);
/* "size" in bytes; 0 when absent or not an integer. */
uint64_t qemu_backend_size(const QemuObject *obj);
/* "memory-backend-ram", "-memfd", "-file". */
const char *qemu_backend_type(const QemuObject *obj);

/* OBJ as memory-backend-file on /proc/self/fd/FD, share=on, of SIZE bytes: the region.
 * Every option of OBJ that a file backend has (prealloc, policy, host-nodes, ...) stays. */
char *qemu_backend_as_region(const QemuObject *obj, int fd, uint64_t size);

/* A backend of the same kind and options as OBJ, with id ID and SIZE bytes. A file
 * backend on a file of its own id (libvirt's memory-backend-file ram-nodeN) gets a file
 * of the new id in the same directory; one on a directory (hugepages) keeps it. */
char *qemu_backend_clone(const QemuObject *obj, const char *id, uint64_t size);
