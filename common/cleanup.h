/* Scope-bound ownership: every fd and heap object has one visible owner.
 *
 * The one rule (docs/architecture.md, "Ownership"): an fd is held in `_cleanup_close_`
 * and handed on with TAKE_FD(); an object (ours, glib's, libsystemd's, libvirt's) is held
 * in g_autoptr() and handed on with g_steal_pointer(), and every type has its
 * G_DEFINE_AUTOPTR_CLEANUP_FUNC; a value with parts to release is held in g_auto()
 * (G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC). No goto unwinding. */
#pragma once

#include <glib.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>

#include "cleanup-fd.h"

/* libsystemd's objects, held like every other (its own _cleanup_ helpers are not used). */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus, sd_bus_flush_close_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_creds, sd_bus_creds_unref)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sd_bus_error, sd_bus_error_free)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
