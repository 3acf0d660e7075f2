/* Regular files only, opened without blocking (FIFOs, devices and symlinks refused). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "regular-file.h"

int regular_file_open(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        struct stat st;

        if (fd < 0)
                return errno == ELOOP ? -EBADFD : -errno;   /* a symlink (O_NOFOLLOW) */
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        return TAKE_FD(fd);
}

int regular_file_read_fd(int fd, size_t max, char **ret) {
        g_autofree char *data = NULL;
        struct stat st;
        size_t len = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        data = g_malloc((size_t) st.st_size + 1);
        /* The size may change under us (root editing it): read what is there, up to it. */
        while (len < (size_t) st.st_size) {
                ssize_t n = pread(fd, data + len, (size_t) st.st_size - len, (off_t) len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        data[len] = '\0';
        *ret = g_steal_pointer(&data);
        return (int) MIN(len, (size_t) INT_MAX);
}

int regular_file_read(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = regular_file_open(path);
        int n;

        if (fd < 0)
                return fd;
        n = regular_file_read_fd(fd, max, ret);
        if (n < 0)
                return n;
        if (ret_len)
                *ret_len = (size_t) n;
        return 0;
}

const char *regular_file_kind(const char *path) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return "missing";
        switch (st.st_mode & S_IFMT) {
        case S_IFREG: return "a regular file";
        case S_IFIFO: return "a FIFO";
        case S_IFSOCK: return "a socket";
        case S_IFCHR: return "a character device";
        case S_IFBLK: return "a block device";
        case S_IFLNK: return "a symlink";
        case S_IFDIR: return "a directory";
        default: return "not a regular file";
        }
}
