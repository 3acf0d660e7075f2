/* The fd store: FDSTORE=1/FDNAME=region-N, FDSTOREREMOVE=1, and LISTEN_FDS at start. */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "cleanup.h"
#include "fd-store.h"
#include "log.h"
#include "rma-names.h"

struct FdStore {
        bool enabled;
        GHashTable *regions;        /* slot -> passed fd, until taken */
        GHashTable *stored_ino;     /* slot -> inode of the region stored now (+1 so 0 is none) */
        int listener;
        GArray *others;             /* passed fds with names we do not know */
};

int fd_store_new(FdStore **ret) {
        g_autofree FdStore *s = g_new0(FdStore, 1);
        g_auto(GStrv) names = NULL;
        int n;

        s->enabled = getenv("NOTIFY_SOCKET") != NULL;
        s->regions = g_hash_table_new(g_direct_hash, g_direct_equal);
        s->stored_ino = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
        s->listener = -EBADF;
        s->others = g_array_new(FALSE, FALSE, sizeof(int));
        n = sd_listen_fds_with_names(1, &names);
        if (n < 0)
                log_warning_errno(n, "Cannot take the fds systemd passed (%m); starting without them");
        for (int i = 0; i < MAX(n, 0); i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "";
                guint64 slot;

                if (g_str_has_prefix(name, "region-") &&
                    g_ascii_string_to_unsigned(name + 7, 10, 0, G_MAXUINT32, &slot, NULL) &&
                    !g_hash_table_contains(s->regions, GUINT_TO_POINTER(slot))) {
                        g_hash_table_insert(s->regions, GUINT_TO_POINTER(slot), GINT_TO_POINTER(fd));
                        /* Stored under that name in systemd until we say otherwise. */
                        g_hash_table_insert(s->stored_ino, GUINT_TO_POINTER(slot), g_new0(uint64_t, 1));
                } else if (g_str_equal(name, RMA_SOCKET_NAME) && s->listener < 0)
                        s->listener = fd;
                else
                        g_array_append_val(s->others, fd);
        }
        if (n > 0)
                log_info("systemd passed %d fds: %u stored regions%s", n, g_hash_table_size(s->regions),
                         s->listener >= 0 ? ", broker.sock (socket activation)" : "");
        *ret = g_steal_pointer(&s);
        return 0;
}

FdStore *fd_store_free(FdStore *s) {
        if (!s)
                return NULL;
        (void) fd_store_close_unexplained(s);
        g_hash_table_unref(s->regions);
        g_hash_table_unref(s->stored_ino);
        safe_close(s->listener);
        g_array_unref(s->others);
        g_free(s);
        return NULL;
}

bool fd_store_enabled(const FdStore *s) {
        return s && s->enabled;
}

int fd_store_take_region(FdStore *s, unsigned slot) {
        gpointer fd;

        if (!s || !g_hash_table_steal_extended(s->regions, GUINT_TO_POINTER(slot), NULL, &fd))
                return -EBADF;
        return GPOINTER_TO_INT(fd);
}

bool fd_store_has_region(const FdStore *s, unsigned slot) {
        return s && g_hash_table_contains(s->regions, GUINT_TO_POINTER(slot));
}

int fd_store_peek_region(const FdStore *s, unsigned slot) {
        gpointer fd;

        if (!s || !g_hash_table_lookup_extended(s->regions, GUINT_TO_POINTER(slot), NULL, &fd))
                return -EBADF;
        return GPOINTER_TO_INT(fd);
}

unsigned fd_store_region_slots(const FdStore *s) {
        GHashTableIter it;
        gpointer key;
        unsigned n = 0;

        if (!s)
                return 0;
        g_hash_table_iter_init(&it, s->regions);
        while (g_hash_table_iter_next(&it, &key, NULL))
                n = MAX(n, GPOINTER_TO_UINT(key) + 1);
        return n;
}

int fd_store_take_listener(FdStore *s) {
        return s ? TAKE_FD(s->listener) : -EBADF;
}

static void store_remove(unsigned slot) {
        char msg[64];

        snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=region-%u", slot);
        (void) sd_notify(0, msg);
}

unsigned fd_store_close_unexplained(FdStore *s) {
        GHashTableIter it;
        gpointer key, value;
        unsigned n = s->others->len;

        g_hash_table_iter_init(&it, s->regions);
        while (g_hash_table_iter_next(&it, &key, &value)) {
                unsigned slot = GPOINTER_TO_UINT(key);
                log_warning("The fd store held a region for slot %u, which no record explains; closed", slot);
                safe_close(GPOINTER_TO_INT(value));
                store_remove(slot);
                g_hash_table_remove(s->stored_ino, key);
                g_hash_table_iter_remove(&it);
                n++;
        }
        for (guint i = 0; i < s->others->len; i++)
                safe_close(g_array_index(s->others, int, i));
        g_array_set_size(s->others, 0);
        return n;
}

void fd_store_sync_slot(FdStore *s, unsigned slot, int fd, uint64_t region_ino) {
        uint64_t *stored;
        char msg[64];
        int r;

        if (!fd_store_enabled(s))
                return;
        stored = g_hash_table_lookup(s->stored_ino, GUINT_TO_POINTER(slot));
        if (fd < 0) {
                if (stored) {
                        store_remove(slot);
                        g_hash_table_remove(s->stored_ino, GUINT_TO_POINTER(slot));
                }
                return;
        }
        if (stored && *stored == region_ino + 1)
                return;
        if (stored)
                store_remove(slot);
        snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=region-%u", slot);
        r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
        if (r <= 0) {
                log_warning_errno(r < 0 ? r : EOPNOTSUPP, "Cannot put slot %u's region in systemd's fd store (%m); "
                                  "it would not survive a restart", slot);
                g_hash_table_remove(s->stored_ino, GUINT_TO_POINTER(slot));
                return;
        }
        if (!stored) {
                stored = g_new0(uint64_t, 1);
                g_hash_table_insert(s->stored_ino, GUINT_TO_POINTER(slot), stored);
        }
        *stored = region_ino + 1;
}
