/* From an ended lease back to a free slot, without ever exceeding the pool.
 *
 * The old region is closed off the event loop (region-worker.c). Where the backend's regions
 * are files (memfd, hugetlb) the slot waits, held-elsewhere, until the kernel reports the
 * old region gone (region-watch.c): a claimant that passed its region on cannot make the
 * broker hand out a second one in its place. Then the backend makes a fresh region, also
 * off the loop. Where it is the kernel's own pool (kvm), the kernel answers that question
 * itself: a new KVM_ALLOCATE_RMA succeeds only once some RMA is back. Slots that could not
 * be refilled are retried with backoff, never in a busy loop. */
#pragma once

#include <systemd/sd-event.h>

#include <glib.h>

#include "pool.h"

typedef struct Recycler Recycler;

int recycler_new(sd_event *event, Pool *pool, Recycler **ret);
/* Finishes the jobs in flight, then stops. */
Recycler *recycler_free(Recycler *r);
/* A lease ended (the slot is scrubbing): takes ownership of the old region fd (O_PATH is
 * enough where the regions are watched). Where they are and the watch cannot be added,
 * the slot is pinned held-elsewhere rather than refilled: nothing would say when the old
 * region is gone. */
void recycler_lease_ended(Recycler *r, Slot *s, int old_fd);
/* Restart: a held-back slot (no region, no lease) gets a fresh region. */
void recycler_refill_held_back(Recycler *r, Slot *s);
/* Some process holds the slot's old region in a way nothing can watch: the slot stays
 * held-elsewhere, never refilled, until an admin says otherwise (ForgetRegion). */
void recycler_pin(Recycler *r, Slot *s);
/* ForgetRegion: an admin vouches that pinned slot `index`'s old region is gone; the slot
 * is refilled. 0, or -EINVAL/-EBUSY with *message saying why not. */
int recycler_forget_region(Recycler *r, unsigned index, char **message);
/* Why a held-elsewhere slot is out of the pool, one sentence for admins (ListHeldElsewhere). */
char *recycler_why_held(const Recycler *r, const Slot *s);
/* A job or a watch of the recycler's will bring this slot back. */
bool recycler_owns(const Recycler *r, const Slot *s);
/* Held-elsewhere slots that nothing will wake up get retried soon. */
void recycler_kick(Recycler *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Recycler, recycler_free)
