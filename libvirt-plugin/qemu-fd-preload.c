/* librma-qemu-fd.so: lets an unmodified QEMU open an RMA that cannot be reopened by path.
 *
 * QEMU (7.2, and every version so far) takes a memory backend only as a path that it
 * open()s itself. The wrapper names the region /proc/self/fd/N, which works for memfd
 * and hugetlb regions. A real RMA is an anonymous-inode fd: reopening it that way fails
 * (ENXIO), though mmap of the fd itself works. For such a region, and only then, the
 * wrapper preloads this library into QEMU: an open of exactly /proc/self/fd/N, where N
 * is the region's fd (RMA_BROKER_REGION_FD), returns a duplicate of that fd instead of
 * reopening it, and only for a read-write open, the way QEMU opens a memory backend: the
 * fd is read-write, so an O_RDONLY or O_PATH open must not get it (those go to libc, and
 * fail as they would on a real RMA). Every other open goes to libc untouched. QEMU
 * already owns the fd, so this grants nothing new; the environment entries are removed at load so that nothing
 * QEMU starts inherits them. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int region_fd = -1;
static char region_path[32];

__attribute__((constructor)) static void rma_preload_init(void) {
        const char *fd = getenv("RMA_BROKER_REGION_FD");
        char *end = NULL;
        long n;

        if (!fd)
                return;
        errno = 0;
        n = strtol(fd, &end, 10);
        if (errno == 0 && end && *end == '\0' && n >= 3 && n < 65536) {
                region_fd = (int) n;
                snprintf(region_path, sizeof(region_path), "/proc/self/fd/%d", region_fd);
        }
        unsetenv("RMA_BROKER_REGION_FD");
        unsetenv("LD_PRELOAD");
}

/* The region's own fd, duplicated as the caller asked (O_CLOEXEC or not); -2: not ours. */
static int region_open(const char *path, int flags) {
        /* NULL goes on to libc, which answers EFAULT. */
        if (region_fd < 0 || !path || strcmp(path, region_path) != 0)
                return -2;
        /* Only what the fd is: read-write, a file to map (not O_PATH, O_DIRECTORY, ...). */
        if ((flags & O_ACCMODE) != O_RDWR || (flags & (O_PATH | O_DIRECTORY | O_CREAT | O_TMPFILE | O_TRUNC)) != 0)
                return -2;
        return fcntl(region_fd, (flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 3);
}

/* open(2) takes a mode only with O_CREAT or O_TMPFILE (which includes O_DIRECTORY's
 * bit: test the whole of it, as glibc does). */
static mode_t mode_arg(int flags, va_list ap) {
        return ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? va_arg(ap, mode_t) : 0;
}

#define NEXT(name, type) ((type) dlsym(RTLD_NEXT, name))

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);

/* Every open-like call: the region's path answered here, anything else passed on to the
 * next definition of sym (at: an openat-like one, with dirfd). */
static int open_like(const char *sym, bool at, int dirfd, const char *path, int flags, mode_t mode) {
        int fd = region_open(path, flags);

        if (fd != -2)
                return fd;
        return at ? NEXT(sym, openat_fn)(dirfd, path, flags, mode) : NEXT(sym, open_fn)(path, flags, mode);
}

/* The mode argument of a variadic open-like call (there only with O_CREAT or O_TMPFILE). */
#define MODE_OF(flags)                                   \
        ({                                               \
                va_list _ap;                             \
                mode_t _mode;                            \
                va_start(_ap, flags);                    \
                _mode = mode_arg(flags, _ap);            \
                va_end(_ap);                             \
                _mode;                                   \
        })

#define DEFINE_OPEN(sym)                                                                \
        int sym(const char *path, int flags, ...) {                                     \
                return open_like(#sym, false, AT_FDCWD, path, flags, MODE_OF(flags));   \
        }
#define DEFINE_OPENAT(sym)                                                              \
        int sym(int dirfd, const char *path, int flags, ...) {                          \
                return open_like(#sym, true, dirfd, path, flags, MODE_OF(flags));       \
        }

/* _FORTIFY_SOURCE builds call these when the flags are not known at compile time. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

#define DEFINE_OPEN_2(sym)                                                                     \
        int sym(const char *path, int flags) {                                                 \
                int fd = region_open(path, flags);                                             \
                return fd != -2 ? fd : NEXT(#sym, open2_fn)(path, flags);                      \
        }

#define DEFINE_OPENAT_2(sym)                                                                   \
        int sym(int dirfd, const char *path, int flags) {                                      \
                int fd = region_open(path, flags);                                             \
                return fd != -2 ? fd : NEXT(#sym, openat2_fn)(dirfd, path, flags);             \
        }

DEFINE_OPEN(open)
DEFINE_OPEN(open64)
DEFINE_OPENAT(openat)
DEFINE_OPENAT(openat64)
DEFINE_OPEN_2(__open_2)
DEFINE_OPEN_2(__open64_2)
DEFINE_OPENAT_2(__openat_2)
DEFINE_OPENAT_2(__openat64_2)
