/* Reading a file the broker trusts only as a regular file: never blocks on what root (or a
 * mistake) put at its path.
 *
 * A FIFO at the registry's path or in libvirt's status dir would hang a plain open() at
 * start, before anything is served; a device could stream forever. Opened with
 * O_NONBLOCK and O_NOFOLLOW, checked by fstat(), read up to a bound. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The whole file at path (NUL-terminated, *ret_len without it), at most max bytes:
 * 0; -ENOENT when there is none; -EBADFD when it is not a regular file (a FIFO, a socket,
 * a device, a symlink); -EFBIG when longer than max; other -errno. */
int regular_file_read(const char *path, size_t max, char **ret, size_t *ret_len);
/* The rest of an fd from regular_file_open(), read from offset 0 (NUL-terminated): its
 * length (<= max), or -EFBIG, -errno. */
int regular_file_read_fd(int fd, size_t max, char **ret);
/* Open path read-only as regular_file_read() does: the fd, or the same -errno. */
int regular_file_open(const char *path);
/* What the file at path is, for an error message ("a FIFO", "a socket", ...). */
const char *regular_file_kind(const char *path);
