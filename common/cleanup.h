/* Scope-bound ownership: every fd and heap object has one visible owner.
 *
 * The one rule (docs/architecture.md, "Ownership"): an fd is held in `_cleanup_close_`
 * and handed on with TAKE_FD(); an object (ours, glib's, libsystemd's, libvirt's) is held
 * in g_autoptr() and handed on with g_steal_pointer(), and every type has its
 * G_DEFINE_AUTOPTR_CLEANUP_FUNC; a value with parts to release is held in g_auto()
 * (G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC). No goto unwinding. */
#pragma once

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
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

/* libsystemd's objects, held like every other (its own _cleanup_ helpers are not used). */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus, sd_bus_flush_close_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_creds, sd_bus_creds_unref)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sd_bus_error, sd_bus_error_free)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
