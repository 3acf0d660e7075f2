/* Knowing when an old region is really gone (memfd and hugetlb backends).
 *
 * When a lease ends, the old tenant's region may live on in any process its claimant
 * passed it to. Its slot may take a fresh region only once the old one is gone, or the
 * pool would not bound the memory that tenants hold. The kernel says exactly when: an
 * inotify watch on the region's inode reports IN_DELETE_SELF once no fd and no mapping
 * of it is left anywhere (measured on memfd and hugetlb memfd alike). One inotify fd
 * serves the whole pool, so this costs nothing while nobody is releasing. */
#pragma once

#include <glib.h>

#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct RegionWatch RegionWatch;
typedef void (*RegionGoneFn)(unsigned slot_index, void *userdata);

int region_watch_new(sd_event *event, unsigned n_slots, RegionGoneFn gone, void *userdata, RegionWatch **ret);
RegionWatch *region_watch_free(RegionWatch *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RegionWatch, region_watch_free)
/* Watch the region that fd (still open, O_PATH is enough) refers to, for slot_index. */
int region_watch_add(RegionWatch *w, unsigned slot_index, int fd);
/* Accepts NULL (no watch: nothing pending). */
bool region_watch_pending(const RegionWatch *w, unsigned slot_index);
/* Deliver the events queued now, without waiting for the loop to get to them. */
void region_watch_flush(RegionWatch *w);
