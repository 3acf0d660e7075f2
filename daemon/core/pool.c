/* The fixed pool of RMA slots and their state machine, with O(1) bookkeeping. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "pool.h"
#include "rma-util.h"
#include "string-table.h"

static const char *const slot_state_table[_SLOT_STATE_MAX] = {
        [SLOT_FREE] = "free",
        [SLOT_RESERVED] = "reserved",
        [SLOT_LEASED] = "leased",
        [SLOT_SCRUBBING] = "scrubbing",
        [SLOT_HELD_ELSEWHERE] = "held-elsewhere",
};

DEFINE_STRING_TABLE_TO_STRING(slot_state, SlotState, "invalid")

/* Every state change goes through here, so the counts and the lists stay true. */
static void slot_set_state(Pool *p, Slot *s, SlotState state) {
        switch (s->state) {
        case SLOT_FREE:
                g_queue_unlink(&p->free, &s->link);
                break;
        case SLOT_RESERVED:
                g_queue_unlink(&p->expiry, &s->link);
                break;
        case SLOT_HELD_ELSEWHERE:
                g_queue_unlink(&p->held_elsewhere, &s->link);
                break;
        default:
                break;
        }
        p->counts[s->state]--;
        p->changed |= 1u << s->state;
        s->state = state;
        s->since_realtime = rma_now_usec(CLOCK_REALTIME);
        p->counts[state]++;
        p->changed |= 1u << state;
        switch (state) {
        case SLOT_FREE:
                /* Last freed, first reused: a host with few VMs keeps using low slots. */
                g_queue_push_head_link(&p->free, &s->link);
                break;
        case SLOT_HELD_ELSEWHERE:
                g_queue_push_tail_link(&p->held_elsewhere, &s->link);
                break;
        default:
                break;   /* reserved: placed by expiry in expiry_insert() */
        }
}

const char *pool_change_reason(const Pool *p, const Slot *s) {
        static const char *const by_state[_SLOT_STATE_MAX] = {
                [SLOT_FREE] = "ready",
                [SLOT_RESERVED] = "reserved",
                [SLOT_LEASED] = "claimed",
                [SLOT_SCRUBBING] = "lease-ended",
                [SLOT_HELD_ELSEWHERE] = "old-region-held",
        };

        return p->next_reason ? p->next_reason : by_state[s->state];
}

static void slot_changed(Pool *p, const Slot *s) {
        p->generation++;
        if (p->slot_changed)
                p->slot_changed(s, p->slot_changed_userdata);
        p->next_reason = NULL;
}

/* Reservations almost always arrive in expiry order (one timeout for all), so this walks
 * back from the tail a step or two at most. */
static void expiry_insert(Pool *p, Slot *s) {
        GList *after = p->expiry.tail;

        while (after && ((Slot *) after->data)->expires_usec > s->expires_usec)
                after = after->prev;
        if (after)
                g_queue_insert_after_link(&p->expiry, after, &s->link);
        else
                g_queue_push_head_link(&p->expiry, &s->link);
}

static TenantUsage *tenant_usage(Pool *p, const char *tenant) {
        TenantUsage *u = g_hash_table_lookup(p->tenants, tenant);

        if (!u) {
                u = g_new0(TenantUsage, 1);
                u->name = g_strdup(tenant);
                g_hash_table_insert(p->tenants, (char *) u->name, u);
        }
        return u;
}

static void tenant_usage_drop(Pool *p, const Slot *s) {
        TenantUsage *u = g_hash_table_lookup(p->tenants, s->tenant);

        g_return_if_fail(u);
        if (s->state == SLOT_LEASED)
                u->leased--;
        else
                u->reserved--;
        if (u->leased == 0 && u->reserved == 0)
                g_hash_table_remove(p->tenants, s->tenant);
}

static void tenant_usage_free(gpointer data) {
        TenantUsage *u = data;

        g_free((char *) u->name);
        g_free(u);
}

/* reserved or leased -> no owner: out of the uuid index and the tenant's count. */
static void slot_clear_owner(Pool *p, Slot *s) {
        g_hash_table_remove(p->by_uuid, s->uuid);
        tenant_usage_drop(p, s);
        s->uuid[0] = '\0';
        g_clear_pointer(&s->domain, g_free);
        g_clear_pointer(&s->tenant, g_free);
        s->expires_usec = 0;
        s->reserved_by = 0;
        s->pid = 0;
}

void pool_region_held_elsewhere(Pool *p, Slot *s, int error) {
        s->refilling = false;
        if (s->state == SLOT_HELD_ELSEWHERE)
                return;
        g_return_if_fail(s->state == SLOT_SCRUBBING);
        s->lease_ended_usec = 0;   /* held elsewhere: not a scrub's time */
        if (error < 0) {
                log_warning_errno(error, "RMA slot %u: no fresh region from the %s backend (%m); counted "
                                  "held-elsewhere until one is available", s->index, p->backend->ops->name);
                s->held_reported = true;
        }
        slot_set_state(p, s, SLOT_HELD_ELSEWHERE);
        slot_changed(p, s);
}

void pool_hold_for_tenant(Pool *p, Slot *s, const char *tenant) {
        g_return_if_fail(s->state == SLOT_SCRUBBING || s->state == SLOT_HELD_ELSEWHERE);
        if (s->held_tenant || !tenant || !*tenant)
                return;
        s->held_tenant = g_strdup(tenant);
        tenant_usage(p, tenant)->leased++;
        p->changed |= 1u << SLOT_LEASED;
}

/* The region is gone: the tenant it counted against gets its count back. */
static void release_held_tenant(Pool *p, Slot *s) {
        TenantUsage *u;

        if (!s->held_tenant)
                return;
        u = g_hash_table_lookup(p->tenants, s->held_tenant);
        if (u && u->leased > 0 && --u->leased == 0 && u->reserved == 0)
                g_hash_table_remove(p->tenants, s->held_tenant);
        g_clear_pointer(&s->held_tenant, g_free);
        p->changed |= 1u << SLOT_LEASED;
}

static void region_ready_as(Pool *p, Slot *s, int fd, const RegionIdentity *id) {
        g_return_if_fail(s->state == SLOT_SCRUBBING || s->state == SLOT_HELD_ELSEWHERE);
        g_return_if_fail(s->region_fd < 0);
        s->refilling = false;
        s->pinned = false;
        s->held_reported = false;
        s->region_fd = fd;
        s->region_dev = id->dev;
        s->region_ino = id->ino;
        s->region_handle = id->handle;
        s->old_region_dev = s->old_region_ino = 0;
        s->old_region_handle = (RegionHandle) { 0 };
        release_held_tenant(p, s);
        slot_set_state(p, s, SLOT_FREE);
        slot_changed(p, s);
}

void pool_region_ready(Pool *p, Slot *s, int fd) {
        RegionIdentity id = { 0 };
        struct stat st;

        if (s->state == SLOT_SCRUBBING && s->lease_ended_usec)   /* the scrub the next tenant waits for */
                histogram_observe(&p->scrub_seconds, rma_now_usec(CLOCK_MONOTONIC) - s->lease_ended_usec);
        s->lease_ended_usec = 0;
        if (fstat(fd, &st) == 0) {
                id.dev = st.st_dev;
                id.ino = st.st_ino;
        }
        (void) region_handle_get(fd, &id.handle);   /* none for hugetlb and kvm */
        region_ready_as(p, s, fd, &id);
}

/* Ask the backend for a fresh region; the slot is free once it has one. */
int pool_refill_now(Pool *p, Slot *s) {
        int fd = -EBADF, r;

        r = backend_new_region(p->backend, s->index, &fd);
        if (r < 0) {
                pool_region_held_elsewhere(p, s, r);
                return r;
        }
        pool_region_ready(p, s, fd);
        return 0;
}

int pool_new(Backend *backend, const bool *hold_back, Pool **ret) {
        g_autoptr(Pool) p = g_new0(Pool, 1);
        int r;

        p->backend = backend;
        p->n_slots = backend->region_count;
        p->slots = g_new0(Slot, p->n_slots);
        p->by_uuid = g_hash_table_new(g_str_hash, g_str_equal);
        p->tenants = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, tenant_usage_free);
        p->counts[SLOT_SCRUBBING] = p->n_slots;
        for (unsigned i = 0; i < p->n_slots; i++) {
                Slot *s = &p->slots[i];
                s->index = i;
                s->region_fd = -EBADF;
                s->state = SLOT_SCRUBBING;
                s->link.data = s;
        }
        for (unsigned i = p->n_slots; i-- > 0;) {   /* so that slot 0 is handed out first */
                if (hold_back && hold_back[i])
                        continue;
                r = pool_refill_now(p, &p->slots[i]);
                /* Memory the host does not have now (huge pages not reserved yet) leaves
                 * the slot held-elsewhere; anything else is an error worth stopping for. */
                if (r < 0 && r != -ENOSPC && r != -ENOMEM)
                        return r;
        }
        p->changed = 0;
        *ret = g_steal_pointer(&p);
        return 0;
}

Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        for (unsigned i = 0; i < p->n_slots; i++) {
                g_free(p->slots[i].domain);
                g_free(p->slots[i].tenant);
                g_free(p->slots[i].held_tenant);
                p->slots[i].region_fd = safe_close(p->slots[i].region_fd);
        }
        g_clear_pointer(&p->by_uuid, g_hash_table_destroy);
        g_clear_pointer(&p->tenants, g_hash_table_destroy);
        g_free(p->slots);
        g_free(p);
        return NULL;
}

Slot *pool_find(Pool *p, const char *uuid) {
        return g_hash_table_lookup(p->by_uuid, uuid);
}

void pool_tenant_holds(const Pool *p, const char *tenant, uint32_t *leased, uint32_t *reserved) {
        const TenantUsage *u = g_hash_table_lookup(p->tenants, tenant);

        *leased = u ? u->leased : 0;
        *reserved = u ? u->reserved : 0;
}

unsigned pool_take_changes(Pool *p) {
        unsigned changed = p->changed;

        p->changed = 0;
        return changed;
}

static void reserve_slot(Pool *p, Slot *s, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                         uint64_t expires_usec) {
        slot_set_state(p, s, SLOT_RESERVED);
        g_strlcpy(s->uuid, uuid, sizeof(s->uuid));
        s->domain = g_strdup(domain);
        s->tenant = g_strdup(tenant);
        s->expires_usec = expires_usec;
        s->reserved_by = owner;
        expiry_insert(p, s);
        g_hash_table_insert(p->by_uuid, s->uuid, s);
        tenant_usage(p, tenant)->reserved++;
        slot_changed(p, s);
}

int pool_reserve(Pool *p, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                 uint64_t expires_usec, Slot **ret) {
        Slot *s = pool_find(p, uuid);

        if (s) {
                *ret = s;
                return -EEXIST;
        }
        if (g_queue_is_empty(&p->free))
                return -ENOSPC;
        s = p->free.head->data;
        reserve_slot(p, s, uuid, domain, tenant, owner, expires_usec);
        *ret = s;
        return 0;
}

int pool_restore_reservation(Pool *p, Slot *s, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                             uint64_t expires_usec) {
        if (s->state != SLOT_FREE)
                return -EBUSY;
        if (pool_find(p, uuid))
                return -EEXIST;
        reserve_slot(p, s, uuid, domain, tenant, owner, expires_usec);
        return 0;
}

int pool_restore_lease(Pool *p, Slot *s, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                       pid_t pid, uint64_t pid_start, int region_fd, const RegionIdentity *region) {
        if (s->state != SLOT_SCRUBBING || s->region_fd >= 0)
                return -EBUSY;
        if (pool_find(p, uuid))
                return -EEXIST;
        if (region)
                region_ready_as(p, s, region_fd, region);
        else
                pool_region_ready(p, s, region_fd);
        reserve_slot(p, s, uuid, domain, tenant, owner, 0);
        return pool_lease(p, s, pid, pid_start);
}

void pool_refresh(Pool *p, Slot *s, uint64_t expires_usec) {
        g_return_if_fail(s->state == SLOT_RESERVED);
        g_queue_unlink(&p->expiry, &s->link);
        s->expires_usec = expires_usec;
        expiry_insert(p, s);
        slot_changed(p, s);
}

int pool_lease(Pool *p, Slot *s, pid_t pid, uint64_t pid_start) {
        TenantUsage *u;

        if (s->state != SLOT_RESERVED)
                return -EBUSY;
        slot_set_state(p, s, SLOT_LEASED);
        u = tenant_usage(p, s->tenant);
        u->reserved--;
        u->leased++;
        s->pid = pid;
        s->pid_start = pid_start;
        s->expires_usec = 0;
        /* Before the fd leaves: the region itself names its lease, for a restart that
         * finds its record lost or stale. */
        if (s->region_fd >= 0)
                backend_mark_lease(p->backend, s->index, s->region_fd, s->uuid, s->tenant);
        slot_changed(p, s);
        return 0;
}

void pool_unreserve(Pool *p, Slot *s) {
        g_return_if_fail(s->state == SLOT_RESERVED);
        slot_clear_owner(p, s);
        slot_set_state(p, s, SLOT_FREE);
        slot_changed(p, s);
}

void pool_end_lease(Pool *p, Slot *s, int *ret_old_fd) {
        g_return_if_fail(s->state == SLOT_LEASED);
        slot_clear_owner(p, s);
        /* The old tenant may still map the old region (its last holder decides when it
         * dies); the slot only returns to free with a fresh one. */
        *ret_old_fd = TAKE_FD(s->region_fd);
        s->old_region_dev = s->region_dev;
        s->old_region_ino = s->region_ino;
        s->old_region_handle = s->region_handle;
        s->region_dev = s->region_ino = 0;
        s->region_handle = (RegionHandle) { 0 };
        s->lease_ended_usec = rma_now_usec(CLOCK_MONOTONIC);
        slot_set_state(p, s, SLOT_SCRUBBING);
        slot_changed(p, s);
}

unsigned pool_expire(Pool *p, uint64_t now_usec) {
        unsigned n = 0;

        while (!g_queue_is_empty(&p->expiry)) {
                Slot *s = p->expiry.head->data;
                if (s->expires_usec > now_usec)
                        break;
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_EXPIRED, .slot = (int) s->index,
                                                   .uuid = s->uuid, .domain = s->domain, .tenant = s->tenant,
                                                   .result = "expired" },
                          "Reservation of RMA slot %u for domain %s (%s) expired unclaimed; slot is free again",
                          s->index, s->domain, s->uuid);
                p->next_reason = "expired";
                pool_unreserve(p, s);
                n++;
        }
        return n;
}

uint64_t pool_next_expiry(const Pool *p) {
        return p->expiry.head == NULL ? UINT64_MAX : ((const Slot *) p->expiry.head->data)->expires_usec;
}

GArray *pool_tenant_usage(const Pool *p) {
        GArray *usage = g_array_sized_new(FALSE, TRUE, sizeof(TenantUsage), g_hash_table_size(p->tenants));
        GHashTableIter it;
        gpointer value;

        g_hash_table_iter_init(&it, p->tenants);
        while (g_hash_table_iter_next(&it, NULL, &value))
                g_array_append_val(usage, *(TenantUsage *) value);
        return usage;
}
