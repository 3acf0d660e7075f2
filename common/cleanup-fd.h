/* The fd half of cleanup.h, in plain libc: the fronts of the wrapper and the hook
 * (libvirt-plugin/) own their fds the same way and link nothing else. */
#pragma once

#include <errno.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                /* close() always releases the fd on Linux, even on EINTR. */
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Hand ownership of a value (an fd, a pointer) on and forget it here. */
#define TAKE_GENERIC(var, type, nullvalue)              \
        ({                                              \
                type *_pvar_ = &(var);                  \
                type _var_ = *_pvar_;                   \
                *_pvar_ = (nullvalue);                  \
                _var_;                                  \
        })
#define TAKE_FD(fd) TAKE_GENERIC(fd, int, -EBADF)
