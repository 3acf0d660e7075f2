/* Ended lease -> old region gone -> fresh region -> free slot: the slot state machine. */
#include <errno.h>
#include <glib.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "recycler.h"
#include "region-watch.h"
#include "region-worker.h"

#define RETRY_MIN_USEC (1 * G_USEC_PER_SEC)
#define RETRY_MAX_USEC (10 * G_USEC_PER_SEC)

struct Recycler {
        Pool *pool;                  /* not owned */
        RegionWorker *worker;
        RegionWatch *watch;          /* NULL unless the backend's releases are watchable */
        sd_event_source *retry_source;
        uint64_t retry_usec;         /* backoff: doubles while refills keep failing */
};

static void refill(Recycler *r, Slot *s, int old_fd) {
        s->refilling = true;
        region_worker_refill(r->worker, s->index, old_fd);
}

static void on_job_done(unsigned index, RegionJob job, int result, void *userdata) {
        Recycler *r = userdata;
        Slot *s = &r->pool->slots[index];

        if (job == REGION_JOB_CLOSE) {
                /* The broker's copy is closed: if nothing else held the region, the
                 * kernel has reported it gone by now. */
                region_watch_flush(r->watch);
                if (s->state == SLOT_SCRUBBING && region_watch_pending(r->watch, index)) {
                        /* Said in the log only if it lasts (on_retry): systemd's fd-store
                         * copy, for one, lingers for a moment after FDSTOREREMOVE. */
                        log_debug("RMA slot %u: its old region is still open somewhere; held-elsewhere", index);
                        pool_region_held_elsewhere(r->pool, s, 0);
                }
        } else if (result >= 0) {
                pool_region_ready(r->pool, s, result);
                r->retry_usec = RETRY_MIN_USEC;
                log_debug("RMA slot %u: fresh region ready; slot is free", index);
        } else {
                if (result == -ENOMEM || result == -ENOSPC)
                        log_debug("RMA slot %u: the %s backend has no region to give now", index,
                                  r->pool->backend->ops->name);
                pool_region_held_elsewhere(r->pool, s, result == -ENOMEM || result == -ENOSPC ? 0 : result);
                r->retry_usec = MIN(r->retry_usec * 2, RETRY_MAX_USEC);
        }
}

static void on_gone(unsigned index, void *userdata) {
        Recycler *r = userdata;
        Slot *s = &r->pool->slots[index];

        if ((s->state != SLOT_SCRUBBING && s->state != SLOT_HELD_ELSEWHERE) || s->refilling)
                return;
        if (s->state == SLOT_HELD_ELSEWHERE && s->held_reported)
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_SLOT_RETURNED, .slot = (int) index },
                          "RMA slot %u: its old region was released by its last holder; refilling the slot", index);
        refill(r, s, -EBADF);
}

static int on_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        Recycler *r = userdata;

        for (GList *l = r->pool->held_elsewhere.head; l; l = l->next) {
                Slot *s = l->data;
                bool watched = region_watch_pending(r->watch, s->index);

                /* A slot still held elsewhere a second later is worth the admin's attention, once. */
                if (!s->held_reported && !s->pinned) {
                        if (watched)
                                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_HELD_ELSEWHERE,
                                                                   .slot = (int) s->index },
                                          "RMA slot %u: its old region is still open or mapped in another process; "
                                          "the slot is held-elsewhere until that process lets go of it", s->index);
                        else
                                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_HELD_ELSEWHERE,
                                                                   .slot = (int) s->index },
                                          "RMA slot %u: the %s backend has no region to give now (the old one is "
                                          "still held by some process, or the host's pool is short); held-elsewhere, "
                                          "retried", s->index, r->pool->backend->ops->name);
                        s->held_reported = true;
                }
                if (!s->refilling && !s->pinned && !watched)
                        refill(r, s, -EBADF);
        }
        return 0;
}

int recycler_new(sd_event *event, Pool *pool, Recycler **ret) {
        g_autoptr(Recycler) r = g_new0(Recycler, 1);
        int k;

        r->pool = pool;
        r->retry_usec = RETRY_MIN_USEC;
        k = region_worker_new(event, pool->backend, on_job_done, r, &r->worker);
        if (k < 0)
                return log_error_errno(k, "Cannot start the region worker: %m");
        if (pool->backend->ops->release_is_watchable) {
                k = region_watch_new(event, pool->n_slots, on_gone, r, &r->watch);
                if (k < 0)
                        return k;
        }
        k = sd_event_add_time_relative(event, &r->retry_source, CLOCK_MONOTONIC, RETRY_MIN_USEC, G_USEC_PER_SEC / 10,
                                       on_retry, r);
        if (k < 0)
                return log_error_errno(k, "Cannot allocate an event source: %m");
        (void) sd_event_source_set_enabled(r->retry_source, SD_EVENT_OFF);
        *ret = g_steal_pointer(&r);
        return 0;
}

Recycler *recycler_free(Recycler *r) {
        if (!r)
                return NULL;
        r->worker = region_worker_free(r->worker);
        r->watch = region_watch_free(r->watch);
        r->retry_source = sd_event_source_disable_unref(r->retry_source);
        g_free(r);
        return NULL;
}

void recycler_lease_ended(Recycler *r, Slot *s, int old_fd) {
        if (r->watch) {
                if (region_watch_add(r->watch, s->index, old_fd) < 0) {
                        log_event(LOG_ERR, &(LogEvent) { .message_id = RMA_MESSAGE_SLOT_PINNED, .slot = (int) s->index },
                                  "RMA slot %u: its old region cannot be watched, so its end would go unseen; the "
                                  "slot stays held-elsewhere (rmactl forget-region %u once no process holds it)",
                                  s->index, s->index);
                        recycler_pin(r, s);
                }
                region_worker_close(r->worker, s->index, old_fd);
                return;
        }
        /* kvm: the kernel itself says when an RMA is back, by the next KVM_ALLOCATE_RMA. */
        refill(r, s, old_fd);
}

void recycler_refill_held_back(Recycler *r, Slot *s) {
        refill(r, s, -EBADF);
}

void recycler_pin(Recycler *r, Slot *s) {
        if (s->state == SLOT_SCRUBBING)
                pool_region_held_elsewhere(r->pool, s, 0);
        s->pinned = true;
}

int recycler_forget_region(Recycler *r, unsigned index, char **message) {
        Slot *s;

        if (index >= r->pool->n_slots) {
                *message = g_strdup_printf("There is no RMA slot %u; the pool has %u", index, r->pool->n_slots);
                return -EINVAL;
        }
        s = &r->pool->slots[index];
        if (s->state != SLOT_HELD_ELSEWHERE || !s->pinned || s->refilling) {
                *message = g_strdup_printf("RMA slot %u is %s%s; only a slot whose old region rma-brokerd cannot prove "
                                           "gone can be forgotten", index, slot_state_to_string(s->state),
                                           s->state == SLOT_HELD_ELSEWHERE ? ", watched: it frees itself when the "
                                           "last holder of its old region lets go" : "");
                return -EBUSY;
        }
        log_event(LOG_WARNING, &(LogEvent) { .message_id = RMA_MESSAGE_REGION_FORGOTTEN, .slot = (int) index },
                  "RMA slot %u: root says its old region (inode %llu) is gone (ForgetRegion); refilling it. If a "
                  "process still holds that region, the pool has one region more than Count= until it lets go",
                  index, (unsigned long long) s->old_region_ino);
        s->pinned = false;
        s->held_reported = false;
        refill(r, s, -EBADF);
        return 0;
}

char *recycler_why_held(const Recycler *r, const Slot *s) {
        if (s->pinned)
                return g_strdup_printf("its old region (inode %llu) cannot be proven gone: a holder rma-brokerd cannot "
                                       "see may keep it; once no process holds it, run rmactl forget-region %u",
                                       (unsigned long long) s->old_region_ino, s->index);
        if (region_watch_pending(r->watch, s->index))
                return g_strdup_printf("its old region (inode %llu) is still open or mapped in another process; the "
                                       "slot is free once that process lets go", (unsigned long long) s->old_region_ino);
        if (s->refilling)
                return g_strdup("a fresh region is being made");
        return g_strdup_printf("the %s backend has no region to give now (the host's pool is short); retried",
                               r->pool->backend->ops->name);
}

bool recycler_owns(const Recycler *r, const Slot *s) {
        return s->refilling || s->pinned || region_watch_pending(r->watch, s->index);
}

void recycler_kick(Recycler *r) {
        int enabled = SD_EVENT_OFF;
        bool pending = false;

        /* Wake up for slots that may be refilled, or that have not been reported yet. */
        for (GList *l = r->pool->held_elsewhere.head; l && !pending; l = l->next) {
                const Slot *s = l->data;
                pending = !s->held_reported || (!s->pinned && !region_watch_pending(r->watch, s->index));
        }
        if (!pending)
                return;
        (void) sd_event_source_get_enabled(r->retry_source, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        (void) sd_event_source_set_time_relative(r->retry_source, r->retry_usec);
        (void) sd_event_source_set_enabled(r->retry_source, SD_EVENT_ONESHOT);
}
