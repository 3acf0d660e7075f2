/* inotify IN_DELETE_SELF on the inodes of released regions. */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "region-watch.h"

struct RegionWatch {
        int inotify_fd;
        sd_event_source *source;
        unsigned n_slots;
        int *wd_of_slot;          /* -1: nothing watched for the slot */
        GHashTable *slot_of_wd;   /* wd -> slot index + 1 */
        RegionGoneFn gone;
        void *userdata;
};

static int on_events(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        region_watch_flush(userdata);
        return 0;
}

int region_watch_new(sd_event *event, unsigned n_slots, RegionGoneFn gone, void *userdata, RegionWatch **ret) {
        g_autofree RegionWatch *w = g_new0(RegionWatch, 1);
        int r;

        w->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (w->inotify_fd < 0)
                return log_error_errno(errno, "inotify_init1() failed: %m");
        r = sd_event_add_io(event, &w->source, w->inotify_fd, EPOLLIN, on_events, w);
        if (r < 0) {
                safe_close(w->inotify_fd);
                return log_error_errno(r, "Cannot watch the inotify fd: %m");
        }
        w->n_slots = n_slots;
        w->wd_of_slot = g_new(int, n_slots ? n_slots : 1);
        for (unsigned i = 0; i < n_slots; i++)
                w->wd_of_slot[i] = -1;
        w->slot_of_wd = g_hash_table_new(g_direct_hash, g_direct_equal);
        w->gone = gone;
        w->userdata = userdata;
        *ret = g_steal_pointer(&w);
        return 0;
}

RegionWatch *region_watch_free(RegionWatch *w) {
        if (!w)
                return NULL;
        w->source = sd_event_source_disable_unref(w->source);
        safe_close(w->inotify_fd);
        g_free(w->wd_of_slot);
        g_hash_table_unref(w->slot_of_wd);
        g_free(w);
        return NULL;
}

int region_watch_add(RegionWatch *w, unsigned slot_index, int fd) {
        char path[64];
        int wd;

        g_return_val_if_fail(slot_index < w->n_slots, -EINVAL);
        /* The magic link resolves to the region's own inode, not to a path anyone can
         * swap: this is the broker's fd. */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        wd = inotify_add_watch(w->inotify_fd, path, IN_DELETE_SELF);
        if (wd < 0)
                return log_warning_errno(errno, "Cannot watch the old region of RMA slot %u: %m", slot_index);
        w->wd_of_slot[slot_index] = wd;
        g_hash_table_insert(w->slot_of_wd, GINT_TO_POINTER(wd), GUINT_TO_POINTER(slot_index + 1));
        return 0;
}

bool region_watch_pending(const RegionWatch *w, unsigned slot_index) {
        return w && slot_index < w->n_slots && w->wd_of_slot[slot_index] >= 0;
}

void region_watch_flush(RegionWatch *w) {
        _Alignas(struct inotify_event) char buf[4096];

        while (w) {
                ssize_t n = read(w->inotify_fd, buf, sizeof(buf));

                if (n <= 0) {
                        if (n < 0 && errno != EAGAIN && errno != EINTR)
                                log_error_errno(errno, "Reading inotify events failed: %m");
                        return;
                }
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *) p;
                        gpointer v = g_hash_table_lookup(w->slot_of_wd, GINT_TO_POINTER(e->wd));

                        p += sizeof(*e) + e->len;
                        if (e->mask & IN_Q_OVERFLOW)
                                log_error("inotify queue overflow: some released regions went unseen; their slots "
                                          "stay held-elsewhere until rma-brokerd restarts");
                        /* IN_IGNORED follows IN_DELETE_SELF; alone it means the watch went
                         * away some other way, which also leaves nothing to wait for. */
                        if (!v || !(e->mask & (IN_DELETE_SELF | IN_IGNORED)))
                                continue;
                        g_hash_table_remove(w->slot_of_wd, GINT_TO_POINTER(e->wd));
                        w->wd_of_slot[GPOINTER_TO_UINT(v) - 1] = -1;
                        w->gone(GPOINTER_TO_UINT(v) - 1, w->userdata);
                }
        }
}
