/* The broker's rules, apart from any transport. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>

#include "broker.h"
#include "domain-cgroup.h"
#include "log.h"
#include "policy-load.h"
#include "rma-util.h"
#include "string-table.h"

void caller_done(Caller *c) {
        if (!c->gids_borrowed)
                g_free(c->gids);
        c->gids = NULL;
}

static void log_policy(const Policy *p, const char *what) {
        if (p->implicit) {
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_POLICY_LOADED, .slot = -1 },
                          "%s: no policy files; every domain goes to tenant '" POLICY_IMPLICIT_TENANT "', uncapped", what);
                return;
        }
        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_POLICY_LOADED, .slot = -1 },
                  "%s: %u tenant(s) from %u file(s), default tenant %s", what, p->tenants->len, p->files->len,
                  p->default_tenant ? p->default_tenant : "(none: domains must name or match a tenant)");
}

int broker_new(BrokerConfig *config, const BrokerTakeover *takeover, Broker **ret) {
        g_autoptr(Broker) b = g_new0(Broker, 1);
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autofree bool *hold_back = NULL;
        int r;

        b->config = config;            /* owned from here on, also if we fail */
        b->stats.by_tenant = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        r = backend_open(config, takeover ? takeover->pool_count : 0, takeover ? takeover->region_size : 0,
                         &b->backend);
        if (r < 0)
                return r;
        if (takeover && takeover->hold_back) {
                hold_back = g_new0(bool, b->backend->region_count ? b->backend->region_count : 1);
                for (unsigned i = 0; i < b->backend->region_count; i++)
                        hold_back[i] = takeover->hold_back(i, takeover->userdata);
        }
        r = pool_new(b->backend, hold_back, &b->pool);
        if (r < 0)
                return log_error_errno(r, "Cannot fill the pool of %u RMAs: %m", b->backend->region_count);
        r = broker_reload_policy(b, errors);
        if (r < 0) {
                for (guint i = 0; i < errors->len; i++)
                        log_error("%s", (char *) g_ptr_array_index(errors, i));
                return log_error_errno(r, "The tenant policy is invalid (problems above); fix it and "
                                       "check with rmactl check-policy");
        }
        *ret = g_steal_pointer(&b);
        return 0;
}

Broker *broker_free(Broker *b) {
        if (!b)
                return NULL;
        pool_free(b->pool);
        policy_free(b->policy);
        g_free(b->drain_reason);
        audit_log_free(b->audit);
        g_clear_pointer(&b->stats.by_tenant, g_hash_table_destroy);
        backend_free(b->backend);
        broker_config_free(b->config);
        g_free(b);
        return NULL;
}

int broker_reload_policy(Broker *b, GPtrArray *errors) {
        Policy *fresh = NULL;
        bool first = !b->policy;
        int r;

        r = policy_load(b->config->config_file, b->config->policy_dirs, b->pool->n_slots, &fresh, errors);
        if (!first) {
                if (r < 0)
                        b->stats.reloads_failed++;
                else
                        b->stats.reloads_ok++;
                b->stats.generation++;
        }
        if (r < 0)
                return r;
        /* Leases and reservations stay as they are; the new rules apply to new requests. */
        policy_free(b->policy);
        b->policy = fresh;
        b->stats.generation++;
        log_policy(fresh, first ? "Tenant policy loaded" : "Tenant policy reloaded");
        return 0;
}

static BrokerRefusal refuse(BrokerRefusal refusal, char **message, const char *format, ...) G_GNUC_PRINTF(3, 4);
static BrokerRefusal refuse(BrokerRefusal refusal, char **message, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        *message = g_strdup_vprintf(format, ap);
        va_end(ap);
        return refusal;
}

/* The transport had no group list (dbus-daemon with libsystemd 252): use the groups the
 * account database gives the caller's uid. An NSS lookup, so only when a Groups= list
 * actually has to be consulted. */
static void caller_fill_account_groups(Caller *c) {
        struct passwd *pw;
        int n = 64;

        if (c->gids_known)
                return;
        c->gids_known = true;
        pw = getpwuid(c->uid);
        if (!pw)
                return;
        for (int attempt = 0; attempt < 2; attempt++) {
                g_autofree gid_t *gids = g_new0(gid_t, (size_t) n);
                int want = n;
                if (getgrouplist(pw->pw_name, pw->pw_gid, gids, &want) >= 0) {
                        caller_done(c);
                        c->gids = g_steal_pointer(&gids);
                        c->gids_borrowed = false;
                        c->n_gids = (size_t) want;
                        return;
                }
                n = want;
        }
}

static bool caller_in_group(Caller *c, gid_t gid) {
        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < c->n_gids; i++)
                        if (c->gids[i] == gid)
                                return true;
                if (c->gids_known)
                        return false;
                caller_fill_account_groups(c);
        }
        return false;
}

/* Root, or a member of AdminGroup=: broker-wide admins. */
static bool caller_is_admin(const Broker *b, Caller *c) {
        return c->uid == 0 || (b->config->admin_gid != (gid_t) -1 && caller_in_group(c, b->config->admin_gid));
}

bool broker_caller_may_administer(const Broker *b, Caller *c, char **why) {
        if (caller_is_admin(b, c))
                return true;
        if (b->config->admin_group)
                *why = g_strdup_printf("Reloading the policy and releasing reservations are for root and the members "
                                       "of group %s (AdminGroup=); uid %u may look", b->config->admin_group,
                                       (unsigned) c->uid);
        else
                *why = g_strdup_printf("Reloading the policy and releasing reservations are for root (Cockpit's "
                                       "administrative access) or an AdminGroup= in rma-brokerd.conf; uid %u may look",
                                       (unsigned) c->uid);
        return false;
}

int broker_check_policy(Broker *b, GPtrArray *errors) {
        g_autoptr(Policy) fresh = NULL;

        return policy_load(b->config->config_file, b->config->policy_dirs, b->pool->n_slots, &fresh, errors);
}

/* Denials go to the journal at notice level with the caller's uid (who tried what), but at
 * most DENIALS_PER_WINDOW per window: anyone can be denied as often as they like, and must
 * not flood the journal. What is held back is counted in the next line that goes out. */
#define DENIALS_PER_WINDOW 10u
#define DENIAL_WINDOW_USEC (10 * G_USEC_PER_SEC)

static struct {
        uint64_t window_start;
        unsigned in_window, held_back;
} denials;   /* one journal per daemon */

static void log_denial(const char *format, ...) G_GNUC_PRINTF(1, 2);
static void log_denial(const char *format, ...) {
        uint64_t now = rma_now_usec(CLOCK_MONOTONIC);
        g_autofree char *text = NULL;
        va_list ap;

        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);
        if (now - denials.window_start >= DENIAL_WINDOW_USEC) {
                denials.window_start = now;
                denials.in_window = 0;
        }
        if (denials.in_window >= DENIALS_PER_WINDOW) {
                denials.held_back++;
                log_debug("%s", text);
                return;
        }
        denials.in_window++;
        if (denials.held_back > 0)
                log_event(LOG_NOTICE, &(LogEvent) { .message_id = RMA_MESSAGE_DENIED, .slot = -1, .result = "denied" },
                          "%s (and %u more denials held back from the journal before this one)", text,
                          denials.held_back);
        else
                log_event(LOG_NOTICE, &(LogEvent) { .message_id = RMA_MESSAGE_DENIED, .slot = -1, .result = "denied" },
                          "%s", text);
        denials.held_back = 0;
}

BrokerRefusal broker_require_admin(const Broker *b, Caller *c, const char *method, char **message) {
        if (caller_is_admin(b, c))
                return BROKER_OK;
        log_denial("Refused %s from uid %u (pid %d): not root or in AdminGroup=", method, (unsigned) c->uid, (int) c->pid);
        if (b->config->admin_group)
                return refuse(BROKER_ACCESS_DENIED, message,
                              "%s changes the pool and is for root and the members of group %s (AdminGroup=); uid %u "
                              "may read properties and call ListRmas", method, b->config->admin_group,
                              (unsigned) c->uid);
        return refuse(BROKER_ACCESS_DENIED, message,
                      "%s changes the pool and is for root only; uid %u may read properties and call ListRmas",
                      method, (unsigned) c->uid);
}

BrokerRefusal broker_check_forget_region(const Broker *b, const Caller *c, char **message) {
        if (c->uid == 0)
                return BROKER_OK;
        log_denial("Refused ForgetRegion from uid %u (pid %d): not root", (unsigned) c->uid, (int) c->pid);
        return refuse(BROKER_ACCESS_DENIED, message,
                      "ForgetRegion may put one region more than Count= in use, should a process still hold the old "
                      "one: root only; uid %u may read properties and call ListRmas", (unsigned) c->uid);
}

/* Root, AdminGroup=, an account the tenant's Users=/Groups= name, or one polkit let
 * (org.rmabroker.reserve) for this very tenant. Nothing logged: Reserve and Release ask
 * this first to know whether polkit has a say. */
static bool tenant_access_allowed(const Broker *b, Caller *c, const char *tenant) {
        const PolicyTenant *t = policy_find_tenant(b->policy, tenant);

        if (caller_is_admin(b, c) || (c->polkit_tenant && g_strcmp0(c->polkit_tenant, tenant) == 0))
                return true;
        if (!t)
                return false;
        if (policy_tenant_allows(t, c->uid, c->gids, c->n_gids))
                return true;
        if (t->n_gids > 0 && !c->gids_known) {
                caller_fill_account_groups(c);
                return policy_tenant_allows(t, c->uid, c->gids, c->n_gids);
        }
        return false;
}

static BrokerRefusal require_tenant_access(Broker *b, Caller *c, const char *tenant, const char *method,
                                           char **message) {
        const PolicyTenant *t = policy_find_tenant(b->policy, tenant);

        if (tenant_access_allowed(b, c, tenant))
                return BROKER_OK;
        log_denial("Refused %s for tenant %s from uid %u (pid %d): not an account of that tenant", method, tenant,
                   (unsigned) c->uid, (int) c->pid);
        if (b->policy->implicit)
                return refuse(BROKER_ACCESS_DENIED, message,
                              "uid %u may not call %s: without a tenant policy only root may; Users= and Groups= of "
                              "a [Tenant] section can allow others (rma-broker-policy(5))", (unsigned) c->uid, method);
        if (!t)
                return refuse(BROKER_ACCESS_DENIED, message,
                              "%s for tenant %s is for root only: the policy has no such tenant any more", method, tenant);
        return refuse(BROKER_ACCESS_DENIED, message,
                      "uid %u may not call %s for tenant %s; root may, and so may the accounts in Users= and Groups= "
                      "of [Tenant %s] (%s:%u)", (unsigned) c->uid, method, tenant, tenant, t->file, t->line);
}

static BrokerRefusal parse_uuid(const char *raw, char uuid[RMA_UUID_STRING_LEN + 1], char **message) {
        if (rma_uuid_canonicalize(raw, uuid) < 0)
                return refuse(BROKER_INVALID_ARGUMENT, message,
                              "'%.64s' is not a domain UUID; pass the <uuid> of the libvirt domain, "
                              "e.g. 4dea22b3-1d52-d8f3-2516-782e98ab3fa0", raw);
        return BROKER_OK;
}

static const char *const reserve_result_table[_RESERVE_RESULT_MAX] = {
        [RESERVE_GRANTED] = "granted",
        [RESERVE_QUOTA] = "quota",
        [RESERVE_POOL_EXHAUSTED] = "pool_exhausted",
        [RESERVE_DENIED] = "denied",
        [RESERVE_INVALID] = "invalid",
        [RESERVE_DRAINING] = "draining",
};

static const char *const claim_result_table[_CLAIM_RESULT_MAX] = {
        [CLAIM_GRANTED] = "granted",
        [CLAIM_NOT_RESERVED] = "not_reserved",
        [CLAIM_ALREADY_CLAIMED] = "already_claimed",
        [CLAIM_DENIED] = "denied",
        [CLAIM_INVALID] = "invalid",
};

static const char *const lease_end_table[_LEASE_END_MAX] = {
        [LEASE_END_PROCESS_EXITED] = "process_exited",
        [LEASE_END_RELEASED] = "released",
};

DEFINE_STRING_TABLE_TO_STRING(reserve_result, ReserveResult, "invalid")
DEFINE_STRING_TABLE_TO_STRING(claim_result, ClaimResult, "invalid")
DEFINE_STRING_TABLE_TO_STRING(lease_end, LeaseEnd, "unknown")

TenantStats *broker_tenant_stats(BrokerStats *stats, const char *tenant) {
        TenantStats *t = g_hash_table_lookup(stats->by_tenant, tenant);

        if (!t) {
                t = g_new0(TenantStats, 1);
                g_hash_table_insert(stats->by_tenant, g_strdup(tenant), t);
        }
        return t;
}

static ClaimResult claim_result_of(BrokerRefusal refusal) {
        switch (refusal) {
        case BROKER_OK:
                return CLAIM_GRANTED;
        case BROKER_NOT_RESERVED:
                return CLAIM_NOT_RESERVED;
        case BROKER_ALREADY_CLAIMED:
                return CLAIM_ALREADY_CLAIMED;
        case BROKER_ACCESS_DENIED:
                return CLAIM_DENIED;
        default:
                return CLAIM_INVALID;
        }
}

static ReserveResult reserve_result_of(BrokerRefusal refusal) {
        switch (refusal) {
        case BROKER_OK:
                return RESERVE_GRANTED;
        case BROKER_QUOTA_EXCEEDED:
                return RESERVE_QUOTA;
        case BROKER_POOL_EXHAUSTED:
                return RESERVE_POOL_EXHAUSTED;
        case BROKER_ACCESS_DENIED:
        case BROKER_NO_SUCH_TENANT:
                return RESERVE_DENIED;
        case BROKER_DRAINING:
                return RESERVE_DRAINING;
        default:
                return RESERVE_INVALID;
        }
}

static BrokerRefusal reserve(Broker *b, Caller *c, const char *raw_uuid, const char *domain, const char *tenant,
                             uint64_t now_usec, Slot **ret, const char **ret_tenant, char **message);

BrokerRefusal broker_reserve(Broker *b, Caller *c, const char *raw_uuid, const char *domain, const char *tenant,
                             uint64_t now_usec, Slot **ret, char **message) {
        const char *counted_as = "";
        BrokerRefusal refusal = reserve(b, c, raw_uuid, domain, tenant, now_usec, ret, &counted_as, message);

        broker_tenant_stats(&b->stats, counted_as)->reserve[reserve_result_of(refusal)]++;
        audit_log_rma(b->audit, &(AuditRecord) { .reason = "start", .vm = domain, .uuid = raw_uuid,
                                                 .tenant = counted_as, .slot = refusal ? -1 : (int) (*ret)->index,
                                                 .size = b->backend->region_size, .pid = c->pid, .uid = c->uid,
                                                 .success = !refusal });
        b->stats.generation++;
        return refusal;
}

static BrokerRefusal check_reserve_arguments(const char *raw_uuid, const char *domain, const char *tenant,
                                             char uuid[RMA_UUID_STRING_LEN + 1], char **message) {
        BrokerRefusal refusal = parse_uuid(raw_uuid, uuid, message);

        if (refusal)
                return refusal;
        if (!rma_name_is_valid(domain))
                return refuse(BROKER_INVALID_ARGUMENT, message,
                              "Domain name must be 1 to %d bytes of UTF-8 without control characters", RMA_NAME_MAX);
        if (tenant[0] != '\0' && !rma_name_is_valid(tenant))
                return refuse(BROKER_INVALID_ARGUMENT, message,
                              "Tenant name must be 1 to %d bytes of UTF-8 without control characters, or empty to let "
                              "the policy choose", RMA_NAME_MAX);
        return BROKER_OK;
}

/* The uuid holds slot s already: the same reservation retried (a fresh timeout), or a
 * refusal. */
static BrokerRefusal reserve_again(Broker *b, Caller *c, Slot *s, const char *uuid, const char *domain,
                                   uint64_t expires, Slot **ret, char **message) {
        BrokerRefusal refusal = require_tenant_access(b, c, s->tenant, "Reserve", message);

        if (refusal)
                return refusal;
        if (s->state == SLOT_RESERVED && strcmp(s->domain, domain) == 0 && s->reserved_by == c->uid) {
                /* A retried prepare hook: same answer, fresh timeout. */
                pool_refresh(b->pool, s, expires);
                *ret = s;
                return BROKER_OK;
        }
        if (s->state == SLOT_LEASED)
                return refuse(BROKER_ALREADY_RESERVED, message,
                              "Domain %s (%s) already holds RMA slot %u, leased to pid %d; a domain holds one RMA at a "
                              "time", s->domain, uuid, s->index, (int) s->pid);
        return refuse(BROKER_ALREADY_RESERVED, message,
                      "UUID %s is already reserved for domain %s by uid %u; each domain needs its own UUID", uuid,
                      s->domain, (unsigned) s->reserved_by);
}

/* What the tenant policy says of one more slot for tenant t: BROKER_OK, or the refusal
 * (logged: an admin wants to see who was turned away). */
static BrokerRefusal decide_quota(Broker *b, const PolicyTenant *t, const char *uuid, const char *domain,
                                  char **message) {
        g_autoptr(GArray) usage = pool_tenant_usage(b->pool);
        g_autofree char *why = NULL;
        const Pool *p = b->pool;
        PolicyVerdict verdict;
        char size[32];

        verdict = policy_decide_reserve(b->policy, t, (const TenantUsage *) (void *) usage->data, usage->len,
                                        pool_count(p, SLOT_FREE), p->n_slots, &why);
        if (verdict == POLICY_POOL_EXHAUSTED && pool_count(p, SLOT_FREE) == 0) {
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_REFUSED, .slot = -1, .uuid = uuid,
                                                   .domain = domain, .tenant = t->name,
                                                   .result = reserve_result_to_string(RESERVE_POOL_EXHAUSTED) },
                          "Refused RMA for domain %s (%s), tenant %s: pool exhausted", domain, uuid, t->name);
                return refuse(BROKER_POOL_EXHAUSTED, message,
                              "No free RMA for domain %s: all %u RMAs of %s are taken (%u reserved, %u leased, %u being "
                              "scrubbed). Stop a domain that holds one, or raise Count= in rma-brokerd.conf",
                              domain, p->n_slots, rma_format_size(b->backend->region_size, size, sizeof(size)),
                              pool_count(p, SLOT_RESERVED), pool_count(p, SLOT_LEASED),
                              pool_count(p, SLOT_SCRUBBING) + pool_count(p, SLOT_HELD_ELSEWHERE));
        }
        if (verdict != POLICY_ALLOW) {
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_REFUSED, .slot = -1, .uuid = uuid,
                                                   .domain = domain, .tenant = t->name,
                                                   .result = reserve_result_to_string(verdict == POLICY_QUOTA_EXCEEDED
                                                                                          ? RESERVE_QUOTA
                                                                                          : RESERVE_POOL_EXHAUSTED) },
                          "Refused RMA for domain %s (%s): %s", domain, uuid, why);
                return refuse(verdict == POLICY_QUOTA_EXCEEDED ? BROKER_QUOTA_EXCEEDED : BROKER_POOL_EXHAUSTED,
                              message, "No RMA for domain %s: %s", domain, why);
        }
        return BROKER_OK;
}

/* Only new reservations: a retried prepare of one made before keeps its slot. */
static BrokerRefusal refuse_if_draining(const Broker *b, const char *domain, char **message) {
        if (!b->drain_reason)
                return BROKER_OK;
        return refuse(BROKER_DRAINING, message,
                      "No RMA for domain %s: this host is draining%s%s%s; it gives out no new RMAs, running domains keep "
                      "theirs. Start the domain on another host, or end the drain with rmactl undrain", domain,
                      b->drain_reason[0] ? " (" : "", b->drain_reason, b->drain_reason[0] ? ")" : "");
}

void broker_set_draining(Broker *b, const char *reason) {
        g_free(b->drain_reason);
        b->drain_reason = g_strdup(reason);
        b->stats.generation++;
}

static BrokerRefusal reserve(Broker *b, Caller *c, const char *raw_uuid, const char *domain, const char *tenant,
                             uint64_t now_usec, Slot **ret, const char **ret_tenant, char **message) {
        char uuid[RMA_UUID_STRING_LEN + 1];
        g_autofree char *why = NULL;
        uint64_t expires = now_usec + b->config->reservation_timeout_usec;
        const PolicyTenant *t;
        BrokerRefusal refusal;
        Slot *s;

        refusal = check_reserve_arguments(raw_uuid, domain, tenant, uuid, message);
        if (refusal)
                return refusal;
        s = pool_find(b->pool, uuid);
        if (s && s->state == SLOT_RESERVED && c->uid == 0 && s->reserved_by != 0) {
                /* The hook (root) speaks for libvirt: a reservation another account made
                 * for this uuid must not keep the real domain from starting. */
                log_info("Reserve by root for domain %s (%s) replaces the reservation uid %u made for domain %s",
                         domain, uuid, (unsigned) s->reserved_by, s->domain);
                b->pool->next_reason = "taken-over-by-root";
                pool_unreserve(b->pool, s);
                s = NULL;
        }
        if (s) {
                *ret_tenant = s->tenant;
                return reserve_again(b, c, s, uuid, domain, expires, ret, message);
        }

        t = policy_tenant_for_domain(b->policy, domain, tenant, &why);
        if (!t)
                return refuse(BROKER_NO_SUCH_TENANT, message, "No RMA for domain %s: %s", domain, why);
        *ret_tenant = t->name;
        refusal = require_tenant_access(b, c, t->name, "Reserve", message);
        if (!refusal)
                refusal = refuse_if_draining(b, domain, message);
        if (!refusal)
                refusal = decide_quota(b, t, uuid, domain, message);
        if (refusal)
                return refusal;
        if (pool_reserve(b->pool, uuid, domain, t->name, c->uid, expires, &s) < 0)
                /* the policy saw a free slot, so this cannot happen */
                return refuse(BROKER_POOL_EXHAUSTED, message, "No free RMA for domain %s", domain);
        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_RESERVED, .slot = (int) s->index, .uuid = uuid,
                                           .domain = domain, .tenant = t->name,
                                           .result = reserve_result_to_string(RESERVE_GRANTED) },
                  "RMA slot %u reserved for domain %s (%s), tenant %s", s->index, domain, uuid, t->name);
        *ret = s;
        return BROKER_OK;
}

static BrokerRefusal check_claim(Broker *b, const Caller *c, const char *raw_uuid, Slot **ret, char **message);

BrokerRefusal broker_check_claim(Broker *b, const Caller *c, const char *raw_uuid, Slot **ret, char **message) {
        Slot *s = NULL;
        BrokerRefusal refusal = check_claim(b, c, raw_uuid, &s, message);

        broker_tenant_stats(&b->stats, s && s->tenant ? s->tenant : "")->claim[claim_result_of(refusal)]++;
        audit_log_rma(b->audit, &(AuditRecord) { .reason = "start", .vm = s ? s->domain : NULL, .uuid = raw_uuid,
                                                 .tenant = s ? s->tenant : NULL, .slot = s ? (int) s->index : -1,
                                                 .size = b->backend->region_size, .pid = c->pid, .uid = c->uid,
                                                 .success = !refusal });
        b->stats.generation++;
        if (!refusal)
                *ret = s;
        return refusal;
}

/* *ret: the domain's slot once it is found, also when the claim is refused after that. */
static BrokerRefusal check_claim(Broker *b, const Caller *c, const char *raw_uuid, Slot **ret, char **message) {
        char uuid[RMA_UUID_STRING_LEN + 1];
        g_autofree char *why = NULL;
        BrokerRefusal refusal;
        Slot *s;
        int r;

        refusal = parse_uuid(raw_uuid, uuid, message);
        if (refusal)
                return refusal;
        if (!broker_config_uid_may_claim(b->config, c->uid)) {
                /* No NSS lookup here: an unprivileged caller must not make the loop block. */
                log_denial("Refused Claim of %s from uid %u (pid %d): not a QEMU user", uuid, (unsigned) c->uid,
                           (int) c->pid);
                return refuse(BROKER_ACCESS_DENIED, message,
                              "uid %u may not claim RMAs; only the users in QemuUsers= of rma-brokerd.conf may, and "
                              "QEMU should run as one of them", (unsigned) c->uid);
        }
        s = *ret = pool_find(b->pool, uuid);
        if (!s)
                return refuse(BROKER_NOT_RESERVED, message,
                              "No RMA is reserved for domain %s. The libvirt hook /etc/libvirt/hooks/qemu.d/50-rma-broker "
                              "reserves one when the domain starts: check that it is installed and that libvirtd was "
                              "restarted or sent SIGHUP since (libvirtd looks for hooks only then)", uuid);
        if (s->state == SLOT_LEASED)
                return refuse(BROKER_ALREADY_CLAIMED, message,
                              "The RMA of domain %s (%s) is already claimed by pid %d; a domain gets one region, once",
                              s->domain, uuid, (int) s->pid);
        if (b->config->check_cgroup) {
                r = c->cgroup_fd >= 0 ? domain_cgroup_check_fd(c->cgroup_fd, s->domain, &why)
                                      : domain_cgroup_check_pid(c->pid, s->domain, &why);
                if (r <= 0) {
                        log_denial("Refused Claim of %s from uid %u (pid %d): %s", uuid, (unsigned) c->uid,
                                   (int) c->pid, why);
                        return refuse(BROKER_ACCESS_DENIED, message, "pid %d may not claim the RMA of domain %s: %s",
                                      (int) c->pid, s->domain, why);
                }
        }
        *ret = s;
        return BROKER_OK;
}

void broker_log_lease(const Slot *s) {
        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_LEASED, .slot = (int) s->index, .uuid = s->uuid,
                                           .domain = s->domain, .tenant = s->tenant, .pid = (int) s->pid,
                                           .result = "leased" },
                  "RMA slot %u leased to pid %d for domain %s (%s), tenant %s", s->index, (int) s->pid, s->domain,
                  s->uuid, s->tenant);
}

void broker_end_lease(Broker *b, Slot *s, LeaseEnd why, int *ret_old_fd) {
        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_LEASE_ENDED, .slot = (int) s->index, .uuid = s->uuid,
                                           .domain = s->domain, .tenant = s->tenant, .pid = (int) s->pid,
                                           .result = lease_end_to_string(why) },
                  "RMA slot %u: lease of domain %s (pid %d) ended: %s; the slot is free once its memory is back",
                  s->index, s->domain, (int) s->pid,
                  why == LEASE_END_RELEASED ? "the domain was released and its process is gone" : "its process exited");
        b->stats.lease_ends[why]++;
        b->stats.generation++;
        /* No caller: the QEMU exited, or a Release found it gone (uid unset, as audit writes it). */
        audit_log_rma(b->audit, &(AuditRecord) { .reason = "stop", .vm = s->domain, .uuid = s->uuid,
                                                 .tenant = s->tenant, .slot = (int) s->index,
                                                 .size = b->backend->region_size, .pid = s->pid,
                                                 .uid = (uid_t) -1, .success = true });
        b->pool->next_reason = lease_end_to_string(why);
        pool_end_lease(b->pool, s, ret_old_fd);
}

BrokerRefusal broker_release(Broker *b, Caller *c, const char *raw_uuid, Slot **ret, char **message) {
        char uuid[RMA_UUID_STRING_LEN + 1];
        BrokerRefusal refusal;
        Slot *s;

        *ret = NULL;
        refusal = parse_uuid(raw_uuid, uuid, message);
        if (refusal)
                return refusal;
        s = pool_find(b->pool, uuid);
        if (!s) {
                /* Nobody but root learns whether an unknown domain holds nothing. */
                refusal = broker_require_admin(b, c, "Release", message);
                if (refusal)
                        return refusal;
                /* libvirt runs release after a failed prepare, a save and a migration away:
                 * a domain that holds nothing is released quietly. */
                log_debug("Release of %s: it holds no RMA", uuid);
                return BROKER_OK;
        }
        refusal = require_tenant_access(b, c, s->tenant, "Release", message);
        if (refusal)
                return refusal;
        if (s->state == SLOT_RESERVED) {
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_RELEASED, .slot = (int) s->index,
                                                   .uuid = s->uuid, .domain = s->domain, .tenant = s->tenant,
                                                   .result = "unclaimed" },
                          "RMA slot %u: reservation for domain %s (%s) released unclaimed", s->index, s->domain, uuid);
                audit_log_rma(b->audit, &(AuditRecord) { .reason = "stop", .vm = s->domain, .uuid = s->uuid,
                                                         .tenant = s->tenant, .slot = (int) s->index,
                                                         .size = b->backend->region_size, .pid = c->pid,
                                                         .uid = c->uid, .success = true });
                b->pool->next_reason = "released";
                pool_unreserve(b->pool, s);
                return BROKER_OK;
        }
        *ret = s;
        return BROKER_OK;
}

bool broker_reserve_needs_grant(Broker *b, Caller *c, const char *raw_uuid, const char *domain, const char *tenant,
                                char **ret_tenant) {
        char uuid[RMA_UUID_STRING_LEN + 1];
        g_autofree char *why = NULL, *message = NULL;
        const PolicyTenant *t;
        const Slot *s;

        if (check_reserve_arguments(raw_uuid, domain, tenant, uuid, &message))
                return false;
        s = pool_find(b->pool, uuid);
        if (s) {
                if (tenant_access_allowed(b, c, s->tenant))
                        return false;
                *ret_tenant = g_strdup(s->tenant);
                return true;
        }
        t = policy_tenant_for_domain(b->policy, domain, tenant, &why);
        if (!t || tenant_access_allowed(b, c, t->name))
                return false;
        *ret_tenant = g_strdup(t->name);
        return true;
}

bool broker_release_needs_grant(Broker *b, Caller *c, const char *raw_uuid, char **ret_tenant, char **ret_domain) {
        char uuid[RMA_UUID_STRING_LEN + 1];
        g_autofree char *message = NULL;
        const Slot *s;

        if (parse_uuid(raw_uuid, uuid, &message))
                return false;
        s = pool_find(b->pool, uuid);
        /* A uuid that holds nothing has no tenant for a rule to name: AdminGroup= or root. */
        if (!s || tenant_access_allowed(b, c, s->tenant))
                return false;
        *ret_tenant = g_strdup(s->tenant);
        *ret_domain = g_strdup(s->domain);
        return true;
}

unsigned broker_expire(Broker *b, uint64_t now_usec) {
        unsigned n = pool_expire(b->pool, now_usec);

        if (n > 0) {
                b->stats.expiries += n;
                b->stats.generation++;
        }
        return n;
}

static uint32_t tenant_cap(const PolicyTenant *t, const Pool *p) {
        return t->max_rmas == POLICY_UNLIMITED || t->max_rmas > p->n_slots ? p->n_slots : t->max_rmas;
}

static TenantView view_of(Broker *b, const PolicyTenant *t) {
        TenantView v = { .name = t->name, .max_rmas = tenant_cap(t, b->pool), .guaranteed_rmas = t->guaranteed_rmas };

        pool_tenant_holds(b->pool, t->name, &v.leased, &v.reserved);
        return v;
}

BrokerRefusal broker_get_tenant(Broker *b, const char *name, TenantView *ret, char **message) {
        const PolicyTenant *t = policy_find_tenant(b->policy, name);

        if (!t)
                return refuse(BROKER_NO_SUCH_TENANT, message,
                              "The policy has no tenant '%.64s'; ListTenants shows the tenants there are", name);
        *ret = view_of(b, t);
        return BROKER_OK;
}

BrokerRefusal broker_tenant_capacity(Broker *b, const char *name, TenantCapacity *ret, char **message) {
        const Pool *p = b->pool;
        const PolicyTenant *t;
        g_autoptr(GArray) usage = NULL;
        uint32_t leased, reserved;

        *ret = (TenantCapacity) { .total = p->n_slots };
        if (name[0] == '\0') {
                ret->available = b->drain_reason ? 0 : pool_count(p, SLOT_FREE);
                ret->held = pool_count(p, SLOT_LEASED) + pool_count(p, SLOT_RESERVED);
                return BROKER_OK;
        }
        t = policy_find_tenant(b->policy, name);
        if (!t)
                return refuse(BROKER_NO_SUCH_TENANT, message,
                              "The policy has no tenant '%.64s'; ListTenants shows the tenants there are", name);
        usage = pool_tenant_usage(p);
        pool_tenant_holds(p, t->name, &leased, &reserved);
        ret->held = leased + reserved;
        ret->available = policy_tenant_headroom(b->policy, t, (const TenantUsage *) (void *) usage->data, usage->len,
                                                pool_count(p, SLOT_FREE));
        /* Draining grants nothing new: schedulers (the Placement agent) offer nothing. */
        if (b->drain_reason)
                ret->available = 0;
        return BROKER_OK;
}

GArray *broker_list_tenants(Broker *b) {
        GArray *views = g_array_new(FALSE, TRUE, sizeof(TenantView));
        GHashTableIter it;
        gpointer value;

        for (guint i = 0; i < b->policy->tenants->len; i++) {
                TenantView v = view_of(b, g_ptr_array_index(b->policy->tenants, i));
                g_array_append_val(views, v);
        }
        /* Tenants a reload removed still hold what they held: show them, with no rights. */
        g_hash_table_iter_init(&it, b->pool->tenants);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
                const TenantUsage *u = value;
                if (!policy_find_tenant(b->policy, u->name)) {
                        TenantView v = { .name = u->name, .leased = u->leased, .reserved = u->reserved };
                        g_array_append_val(views, v);
                }
        }
        return views;
}
