/* Scope-bound ownership helpers: every fd and heap object has one visible owner. */
#pragma once

#include <errno.h>
#include <stdlib.h>
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

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Hand ownership of a value (an fd, a pointer) on and forget it here. */
#define TAKE_GENERIC(var, type, nullvalue)              \
        ({                                              \
                type *_pvar_ = &(var);                  \
                type _var_ = *_pvar_;                   \
                *_pvar_ = (nullvalue);                  \
                _var_;                                  \
        })
#define TAKE_FD(fd) TAKE_GENERIC(fd, int, -EBADF)
#define TAKE_PTR(p) TAKE_GENERIC(p, __typeof__(p), NULL)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
