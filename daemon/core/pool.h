/* The fixed pool of RMA slots and their state machine:
 *
 *   free -> reserved (uuid, domain, tenant, expiry) -> leased (pid) -> scrubbing -> free
 *   scrubbing -> held-elsewhere (the old region may still be held by some process, or
 *                the backend has no fresh region yet) -> free
 *
 * Every operation costs the same at 8 and at 4096 slots: counts are kept per state and
 * per tenant, uuids are indexed, and free, reserved (in expiry order) and held-elsewhere
 * slots sit on lists. The pool owns every region fd until a lease ends, when the old fd
 * goes to the caller to be torn down off the event loop. It does no event-loop work. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "histogram.h"
#include "policy.h"
#include "region-handle.h"
#include "rma-names.h"

typedef enum SlotState {
        SLOT_FREE,
        SLOT_RESERVED,
        SLOT_LEASED,
        SLOT_SCRUBBING,
        SLOT_HELD_ELSEWHERE,
        _SLOT_STATE_MAX,
} SlotState;

typedef struct Lease Lease;

typedef struct Slot {
        unsigned index;
        SlotState state;
        int region_fd;                       /* -EBADF while the backend owes us a region */
        char uuid[RMA_UUID_STRING_LEN + 1];  /* "" unless reserved or leased */
        char *domain;
        char *tenant;
        uint64_t expires_usec;               /* CLOCK_MONOTONIC; reserved only */
        uid_t reserved_by;                   /* who called Reserve */
        pid_t pid;                           /* leased only */
        uint64_t pid_start;                  /* leased only: its start time, the pid's identity */
        uint64_t region_dev, region_ino;     /* the region's inode, for the registry (0: none) */
        RegionHandle region_handle;          /* its kernel handle, where the backend has them */
        uint64_t old_region_dev, old_region_ino;  /* held-elsewhere: the old tenant's region */
        RegionHandle old_region_handle;
        Lease *lease;                        /* leased only; made, owned and ended by lease.c alone */
        bool refilling;                      /* a fresh region is being made off the loop */
        bool pinned;                         /* held-elsewhere by a process we cannot watch: never refilled */
        char *held_tenant;                   /* held-elsewhere by a lease a restart could not prove: its tenant's */
        bool held_reported;                  /* held-elsewhere long enough to be logged */
        uint64_t since_realtime;             /* CLOCK_REALTIME µs of its last change of state, for people */
        uint64_t lease_ended_usec;           /* CLOCK_MONOTONIC of its lease's end while it scrubs (0: not) */
        GList link;                          /* on the free, expiry or held-elsewhere list, by state */
} Slot;

typedef struct Pool {
        Backend *backend;                    /* not owned */
        unsigned n_slots;
        Slot *slots;
        unsigned counts[_SLOT_STATE_MAX];
        unsigned changed;                    /* bit per SlotState whose count changed */
        uint64_t generation;                 /* grows with every change of a slot */
        GHashTable *by_uuid;                 /* uuid -> Slot*, reserved and leased */
        GHashTable *tenants;                 /* name -> TenantUsage*, tenants holding slots */
        GQueue free;                         /* free slots, the next to hand out first */
        GQueue expiry;                       /* reserved slots, earliest expiry first */
        GQueue held_elsewhere;               /* held-elsewhere slots, waiting for a region */
        Histogram scrub_seconds;             /* lease end to free, for slots that went straight through */
        /* Told after every change of a slot (the lease registry): before any reply. */
        void (*slot_changed)(const Slot *s, void *userdata);
        /* Why the next change of a slot happens, where its new state does not say it ("expired",
         * "released", ...): set by the core just before, cleared once told. */
        const char *next_reason;
        void *slot_changed_userdata;
} Pool;

/* Fill every slot with a region from the backend, except those hold_back (may be NULL)
 * marks: they stay scrubbing, without a region, for a restart to restore. */
int pool_new(Backend *backend, const bool *hold_back, Pool **ret);
Pool *pool_free(Pool *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Pool, pool_free)

const char *slot_state_to_string(SlotState s);
static inline unsigned pool_count(const Pool *p, SlotState s) {
        return p->counts[s];
}
Slot *pool_find(Pool *p, const char *uuid);
/* What a tenant holds now (zeroes for a tenant that holds nothing). */
void pool_tenant_holds(const Pool *p, const char *tenant, uint32_t *leased, uint32_t *reserved);
/* Take and reset the set of states whose counts changed (bit 1 << SlotState). */
unsigned pool_take_changes(Pool *p);

/* Reserve a free slot for a domain. -EEXIST: the uuid already holds a slot (*ret set to it);
 * -ENOSPC: no slot is free. Strings are copied. */
int pool_reserve(Pool *p, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                 uint64_t expires_usec, Slot **ret);
/* A restart puts back what the registry recorded: a reservation on a free slot, or a
 * lease (with the region fd it re-adopted, owned from now on) on a held-back slot.
 * -EBUSY: the slot is not in the state for it; -EEXIST: the uuid holds another slot. */
int pool_restore_reservation(Pool *p, Slot *s, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                             uint64_t expires_usec);
/* Which inode a region fd is, as the registry records it. */
typedef struct RegionIdentity {
        uint64_t dev, ino;
        RegionHandle handle;
} RegionIdentity;
/* region: what the caller proved region_fd to be (a restart checks it anyway, and reading
 * it again costs two syscalls a lease); NULL reads it from the fd. */
int pool_restore_lease(Pool *p, Slot *s, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                       pid_t pid, uint64_t pid_start, int region_fd, const RegionIdentity *region);
/* A retried reservation: a new expiry. */
void pool_refresh(Pool *p, Slot *s, uint64_t expires_usec);
/* Turn a reservation into a lease bound to pid (started at pid_start, clock ticks). */
int pool_lease(Pool *p, Slot *s, pid_t pid, uint64_t pid_start);
/* reserved -> free. */
/* Why a slot changed, for the slot_changed callback (the events): next_reason, or what its
 * new state means ("reserved", "claimed", "lease-ended", "ready", "old-region-held"). */
const char *pool_change_reason(const Pool *p, const Slot *s);
void pool_unreserve(Pool *p, Slot *s);
/* leased -> scrubbing. The slot's old region fd goes to *ret_old_fd: its holder may
 * still map it, and closing the last reference may take long (the memory is freed), so
 * the caller disposes of it off the event loop, has the backend make a fresh region
 * there too, and reports back with pool_region_ready() or pool_region_held_elsewhere(). */
void pool_end_lease(Pool *p, Slot *s, int *ret_old_fd);
/* scrubbing or held-elsewhere -> free, with a fresh region fd the pool now owns. */
void pool_region_ready(Pool *p, Slot *s, int fd);
/* scrubbing -> held-elsewhere: the old region may still be held by some process, or the
 * backend has no fresh one now (error, -errno, for the log). Logged once per slot. */
void pool_region_held_elsewhere(Pool *p, Slot *s, int error);
/* A held-back slot (scrubbing, no region) filled now, on the caller's thread, as pool_new()
 * fills the others: free, or held-elsewhere when the backend has no region (-errno). */
int pool_refill_now(Pool *p, Slot *s);
/* The old region of s (scrubbing or held-elsewhere) is a lease of tenant that a restart
 * could not prove: it counts as one of tenant's leases (MaxRmas) until the slot is free. */
void pool_hold_for_tenant(Pool *p, Slot *s, const char *tenant);
/* Free reservations whose expiry is <= now; returns how many. */
unsigned pool_expire(Pool *p, uint64_t now_usec);
/* Earliest reservation expiry, or UINT64_MAX when none is pending. */
uint64_t pool_next_expiry(const Pool *p);
/* What every tenant holds now, as policy_decide_reserve() wants it. The names are
 * borrowed from the pool: use the array before the pool changes. */
GArray *pool_tenant_usage(const Pool *p);
