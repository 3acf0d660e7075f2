/* A region's kernel file handle (name_to_handle_at): the inode and its generation.
 *
 * It is how a restarted broker proves what became of a region it no longer holds: while
 * any process keeps the region alive (an fd, a mapping, an fd in flight in an SCM_RIGHTS
 * message, a forked child), open_by_handle_at() gives the broker a new reference to that
 * very inode; once the last one is gone it answers ESTALE. Nobody can forge a handle into
 * another inode: the generation is random, and the kernel resolves it on the broker's
 * own internal mount. memfd regions (shmem) have handles; hugetlbfs and anonymous inodes
 * (kvm RMAs) have none (EOPNOTSUPP), and proof for them comes from elsewhere. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define REGION_HANDLE_MAX 32

typedef struct RegionHandle {
        int type;
        uint8_t len;                       /* 0: none */
        uint8_t bytes[REGION_HANDLE_MAX];
} RegionHandle;

/* The handle of the file fd refers to; -EOPNOTSUPP where its filesystem has none. */
int region_handle_get(int fd, RegionHandle *ret);
/* Reopen the file named by h, read-write, close-on-exec. anchor_fd: any fd on the same
 * filesystem (for memfd: any other memfd). -ESTALE: the file is gone. */
int region_handle_open(int anchor_fd, const RegionHandle *h, int *ret_fd);
/* "TYPE:HEX", or "-" for none; for the lease registry. */
char *region_handle_format(const RegionHandle *h);
bool region_handle_parse(const char *s, RegionHandle *ret);
