/* The fixed pool of RMA slots and their state machine. */
#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "pool.h"

static const char *const slot_state_names[_SLOT_STATE_MAX] = {
        [SLOT_FREE] = "free",
        [SLOT_RESERVED] = "reserved",
        [SLOT_LEASED] = "leased",
        [SLOT_SCRUBBING] = "scrubbing",
        [SLOT_HELD_ELSEWHERE] = "held-elsewhere",
};

const char *slot_state_to_string(SlotState s) {
        return s < _SLOT_STATE_MAX ? slot_state_names[s] : "invalid";
}

static void slot_clear_owner(Slot *s) {
        s->uuid[0] = '\0';
        g_clear_pointer(&s->domain, g_free);
        g_clear_pointer(&s->tenant, g_free);
        s->expires_usec = 0;
        s->reserved_by = 0;
        s->pid = 0;
        s->pidfd = safe_close(s->pidfd);
}

/* Ask the backend for a fresh region; the slot is free once it has one. */
static int slot_refill(Pool *p, Slot *s) {
        int fd = -EBADF, r;

        r = backend_new_region(p->backend, s->index, &fd);
        if (r < 0) {
                if (s->state != SLOT_HELD_ELSEWHERE)
                        log_warning_errno(r, "RMA slot %u: no fresh region from the %s backend (%m); "
                                          "counted held-elsewhere until one is available", s->index, p->backend->ops->name);
                s->state = SLOT_HELD_ELSEWHERE;
                return r;
        }
        s->region_fd = fd;
        s->state = SLOT_FREE;
        return 0;
}

int pool_new(Backend *backend, Pool **ret) {
        g_autoptr(Pool) p = g_new0(Pool, 1);
        int r;

        p->backend = backend;
        p->n_slots = backend->region_count;
        p->slots = g_new0(Slot, p->n_slots);
        for (unsigned i = 0; i < p->n_slots; i++) {
                p->slots[i].index = i;
                p->slots[i].region_fd = -EBADF;
                p->slots[i].pidfd = -EBADF;
                p->slots[i].state = SLOT_SCRUBBING;
        }
        for (unsigned i = 0; i < p->n_slots; i++) {
                r = slot_refill(p, &p->slots[i]);
                if (r < 0)
                        return r;
        }
        *ret = g_steal_pointer(&p);
        return 0;
}

Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        for (unsigned i = 0; i < p->n_slots; i++) {
                slot_clear_owner(&p->slots[i]);
                p->slots[i].region_fd = safe_close(p->slots[i].region_fd);
        }
        g_free(p->slots);
        g_free(p);
        return NULL;
}

unsigned pool_count(const Pool *p, SlotState state) {
        unsigned n = 0;

        for (unsigned i = 0; i < p->n_slots; i++)
                n += p->slots[i].state == state;
        return n;
}

Slot *pool_find(Pool *p, const char *uuid) {
        for (unsigned i = 0; i < p->n_slots; i++) {
                Slot *s = &p->slots[i];
                if ((s->state == SLOT_RESERVED || s->state == SLOT_LEASED) && strcmp(s->uuid, uuid) == 0)
                        return s;
        }
        return NULL;
}

int pool_reserve(Pool *p, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                 uint64_t expires_usec, Slot **ret) {
        Slot *s = pool_find(p, uuid);

        if (s) {
                *ret = s;
                return -EEXIST;
        }
        for (unsigned i = 0; i < p->n_slots; i++) {
                s = &p->slots[i];
                if (s->state != SLOT_FREE)
                        continue;
                g_strlcpy(s->uuid, uuid, sizeof(s->uuid));
                s->domain = g_strdup(domain);
                s->tenant = g_strdup(tenant);
                s->expires_usec = expires_usec;
                s->reserved_by = owner;
                s->state = SLOT_RESERVED;
                *ret = s;
                return 0;
        }
        return -ENOSPC;
}

int pool_lease(Pool *p, Slot *s, pid_t pid, int pidfd) {
        (void) p;
        if (s->state != SLOT_RESERVED) {
                safe_close(pidfd);
                return -EBUSY;
        }
        s->state = SLOT_LEASED;
        s->pid = pid;
        s->pidfd = pidfd;
        s->expires_usec = 0;
        return 0;
}

void pool_unreserve(Pool *p, Slot *s) {
        (void) p;
        g_return_if_fail(s->state == SLOT_RESERVED);
        slot_clear_owner(s);
        s->state = SLOT_FREE;
}

void pool_end_lease(Pool *p, Slot *s) {
        g_return_if_fail(s->state == SLOT_LEASED);
        slot_clear_owner(s);
        /* The old tenant may still map the old region (its last holder decides when it
         * dies); the slot only returns to free with a fresh one. */
        s->region_fd = safe_close(s->region_fd);
        s->state = SLOT_SCRUBBING;
        (void) slot_refill(p, s);
}

unsigned pool_refill(Pool *p) {
        unsigned n = 0;

        for (unsigned i = 0; i < p->n_slots; i++) {
                Slot *s = &p->slots[i];
                if ((s->state == SLOT_SCRUBBING || s->state == SLOT_HELD_ELSEWHERE) && slot_refill(p, s) >= 0)
                        n++;
        }
        return n;
}

unsigned pool_expire(Pool *p, uint64_t now_usec) {
        unsigned n = 0;

        for (unsigned i = 0; i < p->n_slots; i++) {
                Slot *s = &p->slots[i];
                if (s->state == SLOT_RESERVED && s->expires_usec <= now_usec) {
                        log_info("Reservation of RMA slot %u for domain %s (%s) expired unclaimed; slot is free again",
                                 s->index, s->domain, s->uuid);
                        pool_unreserve(p, s);
                        n++;
                }
        }
        return n;
}

uint64_t pool_next_expiry(const Pool *p) {
        uint64_t next = UINT64_MAX;

        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].state == SLOT_RESERVED && p->slots[i].expires_usec < next)
                        next = p->slots[i].expires_usec;
        return next;
}

GArray *pool_tenant_usage(const Pool *p) {
        GArray *usage = g_array_new(FALSE, TRUE, sizeof(TenantUsage));

        for (unsigned i = 0; i < p->n_slots; i++) {
                const Slot *s = &p->slots[i];
                TenantUsage *u = NULL;

                if (s->state != SLOT_RESERVED && s->state != SLOT_LEASED)
                        continue;
                for (guint j = 0; j < usage->len && !u; j++)
                        if (strcmp(g_array_index(usage, TenantUsage, j).name, s->tenant) == 0)
                                u = &g_array_index(usage, TenantUsage, j);
                if (!u) {
                        TenantUsage fresh = { .name = s->tenant };
                        g_array_append_val(usage, fresh);
                        u = &g_array_index(usage, TenantUsage, usage->len - 1);
                }
                if (s->state == SLOT_LEASED)
                        u->leased++;
                else
                        u->reserved++;
        }
        return usage;
}
