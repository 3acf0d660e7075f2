/* The broker's rules, apart from any transport: reserve, claim check, lease start and end,
 * release, expiry and tenant views, over the pool, the tenant policy and the config, for
 * a caller whose credentials the transport vouches for.
 *
 * No sd-bus and no event loop here (like policy/): D-Bus, a restart that re-adopts leases,
 * a migration and metrics all drive the same functions. Expected refusals are positive
 * BrokerRefusal codes with a message that says what to change; negative is errno. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit-log.h"
#include "backend.h"
#include "histogram.h"
#include "broker-config.h"
#include "policy.h"
#include "pool.h"

typedef enum BrokerRefusal {
        BROKER_OK = 0,
        BROKER_ACCESS_DENIED,
        BROKER_INVALID_ARGUMENT,
        BROKER_ALREADY_RESERVED,
        BROKER_ALREADY_CLAIMED,
        BROKER_NOT_RESERVED,
        BROKER_NO_SUCH_TENANT,
        BROKER_QUOTA_EXCEEDED,
        BROKER_POOL_EXHAUSTED,
        BROKER_DRAINING,          /* the host gives out no new RMAs (rmactl drain) */
        _BROKER_REFUSAL_MAX,
} BrokerRefusal;

/* Who is asking, as the transport knows it (never what the client says of itself). */
typedef struct Caller {
        uid_t uid;
        pid_t pid;
        gid_t *gids;            /* primary and supplementary groups, owned unless gids_borrowed */
        bool gids_borrowed;     /* the transport's own list, which outlives the call */
        size_t n_gids;
        bool gids_known;        /* false: the transport did not say; the account database is asked when needed */
        int cgroup_fd;          /* its /proc/PID/cgroup opened when it connected, or -1: open by pid (borrowed) */
        int pidfd;              /* the process itself, where the transport has one, or -1 (borrowed) */
        uint64_t start_time;    /* its start time, the pid's identity for the registry (0: unknown) */
        const char *polkit_tenant;   /* polkit granted org.rmabroker.reserve for this tenant, this call (or NULL) */
} Caller;

void caller_done(Caller *c);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Caller, caller_done)

/* How Reserve requests ended, as the metrics name them. */
typedef enum ReserveResult {
        RESERVE_GRANTED,
        RESERVE_QUOTA,            /* QuotaExceeded */
        RESERVE_POOL_EXHAUSTED,   /* PoolExhausted, also when the free slots are owed to guarantees */
        RESERVE_DENIED,           /* AccessDenied, NoSuchTenant */
        RESERVE_INVALID,          /* InvalidArgument, AlreadyReserved */
        RESERVE_DRAINING,         /* Draining */
        _RESERVE_RESULT_MAX,
} ReserveResult;

/* How Claim requests ended, as the metrics name them. */
typedef enum ClaimResult {
        CLAIM_GRANTED,
        CLAIM_NOT_RESERVED,       /* NotReserved */
        CLAIM_ALREADY_CLAIMED,    /* AlreadyClaimed */
        CLAIM_DENIED,             /* AccessDenied: not a QEMU user, or not in the domain's cgroup */
        CLAIM_INVALID,            /* InvalidArgument */
        _CLAIM_RESULT_MAX,
} ClaimResult;

typedef enum LeaseEnd {
        LEASE_END_PROCESS_EXITED,   /* the QEMU holding it exited */
        LEASE_END_RELEASED,         /* Release found its process already gone */
        _LEASE_END_MAX,
} LeaseEnd;

const char *reserve_result_to_string(ReserveResult r);
const char *claim_result_to_string(ClaimResult r);
const char *lease_end_to_string(LeaseEnd e);

/* A tenant's requests by how they ended. The tenant is the one the policy resolved, or ""
 * where the request was refused before it knew one: never a name a client made up. */
typedef struct TenantStats {
        uint64_t reserve[_RESERVE_RESULT_MAX];
        uint64_t claim[_CLAIM_RESULT_MAX];
} TenantStats;

typedef struct BrokerStats {
        GHashTable *by_tenant;  /* tenant name -> TenantStats */
        uint64_t lease_ends[_LEASE_END_MAX];
        uint64_t expiries;      /* reservations not claimed in time */
        uint64_t forgotten_regions;   /* ForgetRegion */
        uint64_t reloads_ok, reloads_failed;
        Histogram reserve_seconds, claim_seconds;   /* handled to answered, as the transport saw them */
        unsigned generation;    /* grows with every change the metrics show */
} BrokerStats;

/* The stats of tenant (created at 0). */
TenantStats *broker_tenant_stats(BrokerStats *stats, const char *tenant);

typedef struct Broker {
        BrokerConfig *config;
        Backend *backend;
        Pool *pool;
        Policy *policy;         /* replaced whole on a valid reload, never edited */
        char *drain_reason;     /* draining: no new reservations, and why (may be ""); NULL: not */
        AuditLog *audit;        /* owned; NULL: nothing audited (the daemon opens one, tests need not) */
        BrokerStats stats;
} Broker;

/* What a restarted broker takes over from the last one (restore.c decides). */
typedef struct BrokerTakeover {
        unsigned pool_count;     /* slots the last broker's QEMUs or stored regions may hold:
                                  * Count=auto keeps at least this many */
        uint64_t region_size;    /* the last broker's region size (0: unknown) */
        /* Slots not to fill now: a restore puts back their lease or stored region. */
        bool (*hold_back)(unsigned index, void *userdata);
        void *userdata;
} BrokerTakeover;

/* Open the backend, fill the pool and load the policy; takes ownership of config, also
 * on failure. takeover: NULL on a fresh start. */
int broker_new(BrokerConfig *config, const BrokerTakeover *takeover, Broker **ret);
Broker *broker_free(Broker *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Broker, broker_free)

/* Drain (reason: why, may be "") or end draining (NULL). While draining every new
 * Reserve is refused with the reason; leases, claims of reservations made before, and
 * re-adoption go on. */
void broker_set_draining(Broker *b, const char *reason);

/* Load the tenant policy for this pool. On failure *errors lists every problem and the
 * current policy stays. */
int broker_reload_policy(Broker *b, GPtrArray *errors);

/* Root or AdminGroup= (Reload, and Release of what the caller cannot see). */
BrokerRefusal broker_require_admin(const Broker *b, Caller *c, const char *method, char **message);
/* ForgetRegion: root alone, not AdminGroup=. Freeing a slot whose old region nothing
 * proves gone may put one region more than Count= in use, should a process still hold it. */
BrokerRefusal broker_check_forget_region(const Broker *b, const Caller *c, char **message);
/* Whether the caller may change the pool (root, or AdminGroup=); else *why says who may. */
bool broker_caller_may_administer(const Broker *b, Caller *c, char **why);
/* The tenant policy on disk now, checked as a reload would, without applying it: 0, or
 * -EINVAL with every problem (file:line) in errors. */
int broker_check_policy(Broker *b, GPtrArray *errors);

/* Reserve a slot for a domain until now + ReservationTimeoutSec. A retried reservation
 * by the same account for the same domain gets the same slot with a fresh timeout; root
 * (the hook, speaking for libvirt) takes over a reservation another account made. */
BrokerRefusal broker_reserve(Broker *b, Caller *c, const char *uuid, const char *domain, const char *tenant,
                             uint64_t now_usec, Slot **ret, char **message);

/* Whether the only thing that stops this Reserve now is that the caller is no account
 * of its tenant: then polkit (org.rmabroker.reserve) may let it, and *ret_tenant is the
 * tenant it would count for (g_free()). Logs and counts nothing; broker_reserve() with
 * c->polkit_tenant set decides for real, quotas and all. */
bool broker_reserve_needs_grant(Broker *b, Caller *c, const char *uuid, const char *domain, const char *tenant,
                                char **ret_tenant);

/* May this caller claim the domain's region now? Checks QemuUsers, that the uuid is
 * reserved and not yet claimed, and (CheckCgroup=yes) that the caller sits in the
 * domain's libvirt cgroup. */
BrokerRefusal broker_check_claim(Broker *b, const Caller *c, const char *uuid, Slot **ret, char **message);

/* The audit line of a lease that started; the transport writes it once the region is
 * on its way, so that the claimer does not wait for it. */
void broker_log_lease(const Slot *s);
/* The lease is over; its old region fd goes to *ret_old_fd for teardown. */
void broker_end_lease(Broker *b, Slot *s, LeaseEnd why, int *ret_old_fd);

/* Release a domain: an unclaimed reservation is freed (*ret NULL); a lease is returned
 * in *ret for the caller to end once its process is gone; a domain holding nothing is
 * released quietly (*ret NULL). */
BrokerRefusal broker_release(Broker *b, Caller *c, const char *uuid, Slot **ret, char **message);

/* The same for Release: true when the uuid holds a slot of a tenant the caller is no
 * account of; *ret_tenant and *ret_domain are the slot's (g_free()). */
bool broker_release_needs_grant(Broker *b, Caller *c, const char *uuid, char **ret_tenant, char **ret_domain);

/* Free reservations whose time is up; returns how many. */
unsigned broker_expire(Broker *b, uint64_t now_usec);

typedef struct TenantView {
        const char *name;       /* borrowed from the policy or the pool */
        uint32_t max_rmas;      /* the cap, at most the pool; 0 for a tenant the policy dropped */
        uint32_t guaranteed_rmas;
        uint32_t leased;
        uint32_t reserved;
} TenantView;

/* One tenant of the policy. */
BrokerRefusal broker_get_tenant(Broker *b, const char *name, TenantView *ret, char **message);
/* Every tenant of the policy, then tenants a reload removed that still hold slots. */
GArray *broker_list_tenants(Broker *b);

/* What a scheduler may count on: of the pool's total, how many slots a tenant could
 * still get now (its cap, the others' guarantees and the free slots allowing; none while
 * draining) and how many it holds. name "": the whole pool (available = free, held = reserved + leased).
 * Never more than the pool: available + held <= total. */
typedef struct TenantCapacity {
        uint32_t total;
        uint32_t available;
        uint32_t held;
} TenantCapacity;
BrokerRefusal broker_tenant_capacity(Broker *b, const char *name, TenantCapacity *ret, char **message);
