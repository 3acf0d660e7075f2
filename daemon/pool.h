/* The fixed pool of RMA slots and their state machine:
 *
 *   free -> reserved (uuid, domain, tenant, expiry) -> leased (pid, pidfd) -> scrubbing -> free
 *   scrubbing -> held-elsewhere (the backend could not make a fresh region yet) -> free
 *
 * The pool owns every region fd and every lease pidfd. It does no event-loop work:
 * the manager watches the pidfds and the expiry clock and calls back in. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "policy.h"
#include "rma-names.h"

typedef enum SlotState {
        SLOT_FREE,
        SLOT_RESERVED,
        SLOT_LEASED,
        SLOT_SCRUBBING,
        SLOT_HELD_ELSEWHERE,
        _SLOT_STATE_MAX,
} SlotState;

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
        int pidfd;                           /* leased only */
} Slot;

typedef struct Pool {
        Backend *backend;                    /* not owned */
        unsigned n_slots;
        Slot *slots;
} Pool;

/* Fill every slot with a region from the backend. */
int pool_new(Backend *backend, Pool **ret);
Pool *pool_free(Pool *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Pool, pool_free)

const char *slot_state_to_string(SlotState s);
unsigned pool_count(const Pool *p, SlotState s);
Slot *pool_find(Pool *p, const char *uuid);

/* Reserve a free slot for a domain. -EEXIST: the uuid already holds a slot (*ret set to it);
 * -ENOSPC: no slot is free. Strings are copied. */
int pool_reserve(Pool *p, const char *uuid, const char *domain, const char *tenant, uid_t owner,
                 uint64_t expires_usec, Slot **ret);
/* Turn a reservation into a lease bound to pid; the slot takes ownership of pidfd. */
int pool_lease(Pool *p, Slot *s, pid_t pid, int pidfd);
/* reserved -> free. */
void pool_unreserve(Pool *p, Slot *s);
/* leased -> scrubbing: drop the broker's region fd and the pidfd, then refill. */
void pool_end_lease(Pool *p, Slot *s);
/* scrubbing/held-elsewhere -> free when the backend delivers a fresh region.
 * Returns the number of slots refilled. */
unsigned pool_refill(Pool *p);
/* Free reservations whose expiry is <= now; returns how many. */
unsigned pool_expire(Pool *p, uint64_t now_usec);
/* What every tenant holds now, as policy_decide_reserve() wants it. The names are
 * borrowed from the slots: use the array before the pool changes. */
GArray *pool_tenant_usage(const Pool *p);

/* Earliest reservation expiry, or UINT64_MAX when none is pending. */
uint64_t pool_next_expiry(const Pool *p);
