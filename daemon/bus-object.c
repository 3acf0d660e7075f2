/* The org.rmabroker.Broker1 object: properties and methods.
 *
 * Every handler: read arguments, reject bad input with a message that says what to fix,
 * authorize by the caller's credentials, act on the pool, log, reply. Failures a client
 * causes are logged at debug level so an unprivileged caller cannot flood the journal. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <string.h>
#include <time.h>

#include "bus-object.h"
#include "cleanup.h"
#include "domain-cgroup.h"
#include "lease.h"
#include "log.h"
#include "peer.h"
#include "rma-names.h"
#include "rma-util.h"

typedef struct Caller {
        uid_t uid;
        pid_t pid;
        gid_t *gids;            /* primary and supplementary groups */
        size_t n_gids;
        bool gids_known;        /* false: the bus did not say; ask the account database */
} Caller;

static void caller_done(Caller *c) {
        g_clear_pointer(&c->gids, g_free);
}

/* On broker.sock the credentials were read once at connect; on the bus the bus daemon
 * vouches for the sender. Never anything the client says about itself. */
static int caller_get(BusOrigin *o, sd_bus_message *m, Caller *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r;

        const gid_t *supplementary = NULL;
        gid_t egid;
        int n;

        *ret = (Caller) { 0 };
        if (o->peer) {
                ret->uid = o->peer->ucred.uid;
                ret->pid = o->peer->ucred.pid;
                ret->gids = g_memdup2(o->peer->gids, o->peer->n_gids * sizeof(gid_t));
                ret->n_gids = o->peer->n_gids;
                ret->gids_known = true;
                return 0;
        }
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS |
                                      SD_BUS_CREDS_PID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &ret->uid);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_pid(creds, &ret->pid) < 0)
                ret->pid = 0;
        n = sd_bus_creds_get_supplementary_gids(creds, &supplementary);
        if (n < 0)
                n = 0;
        ret->gids = g_new0(gid_t, (size_t) n + 1);
        if (n > 0)
                memcpy(ret->gids, supplementary, (size_t) n * sizeof(gid_t));
        ret->n_gids = (size_t) n;
        if (sd_bus_creds_get_egid(creds, &egid) >= 0)
                ret->gids[ret->n_gids++] = egid;
        ret->gids_known = n > 0;
        return 0;
}

/* dbus-daemon with libsystemd 252 reports no groups for a sender: use the groups the
 * account database gives the caller's uid (an NSS lookup, so only when a Groups= list
 * actually has to be consulted). */
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
                        g_free(c->gids);
                        c->gids = g_steal_pointer(&gids);
                        c->n_gids = (size_t) want;
                        return;
                }
                n = want;
        }
}

static int caller_get_or_fail(BusOrigin *o, sd_bus_message *m, Caller *ret, sd_bus_error *error) {
        int r = caller_get(o, m, ret);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot read the caller's credentials: %m");
        return 0;
}

static int require_root(BusOrigin *o, sd_bus_message *m, const char *method, sd_bus_error *error) {
        _cleanup_(caller_done) Caller c = { 0 };
        int r;

        r = caller_get_or_fail(o, m, &c, error);
        if (r < 0)
                return r;
        if (c.uid != 0) {
                log_debug("Refused %s from uid %u: not root", method, (unsigned) c.uid);
                return sd_bus_error_setf(error, RMA_ERROR_ACCESS_DENIED,
                                         "%s changes the pool and is for root only; uid %u may read properties "
                                         "and call ListRmas", method, (unsigned) c.uid);
        }
        return 0;
}

/* Root, or an account the tenant's Users=/Groups= name. */
static int require_tenant_access(Caller *c, const Policy *policy, const char *tenant, const char *method,
                                 sd_bus_error *error) {
        const PolicyTenant *t = policy_find_tenant(policy, tenant);

        if (c->uid == 0 || (t && policy_tenant_allows(t, c->uid, c->gids, c->n_gids)))
                return 0;
        if (t && t->n_gids > 0 && !c->gids_known) {
                caller_fill_account_groups(c);
                if (policy_tenant_allows(t, c->uid, c->gids, c->n_gids))
                        return 0;
        }
        log_debug("Refused %s for tenant %s from uid %u", method, tenant, (unsigned) c->uid);
        if (policy->implicit)
                return sd_bus_error_setf(error, RMA_ERROR_ACCESS_DENIED,
                                         "uid %u may not call %s: without a tenant policy only root may; Users= and "
                                         "Groups= of a [Tenant] section can allow others (rma-broker-policy(5))",
                                         (unsigned) c->uid, method);
        if (!t)
                return sd_bus_error_setf(error, RMA_ERROR_ACCESS_DENIED,
                                         "%s for tenant %s is for root only: the policy has no such tenant any more",
                                         method, tenant);
        return sd_bus_error_setf(error, RMA_ERROR_ACCESS_DENIED,
                                 "uid %u may not call %s for tenant %s; root may, and so may the accounts in Users= "
                                 "and Groups= of [Tenant %s] (%s:%u)",
                                 (unsigned) c->uid, method, tenant, tenant, t->file, t->line);
}

static int read_uuid(sd_bus_message *m, char uuid[RMA_UUID_STRING_LEN + 1], sd_bus_error *error) {
        const char *raw;
        int r;

        r = sd_bus_message_read(m, "s", &raw);
        if (r < 0)
                return r;
        if (rma_uuid_canonicalize(raw, uuid) < 0)
                return sd_bus_error_setf(error, RMA_ERROR_INVALID_ARGUMENT,
                                         "'%.64s' is not a domain UUID; pass the <uuid> of the libvirt domain, "
                                         "e.g. 4dea22b3-1d52-d8f3-2516-782e98ab3fa0", raw);
        return 0;
}

/* Properties */

static int property_get_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Pool *p = ((BusOrigin *) userdata)->manager->pool;
        uint32_t n;

        if (strcmp(property, "TotalRmas") == 0)
                n = p->n_slots;
        else if (strcmp(property, "FreeRmas") == 0)
                n = pool_count(p, SLOT_FREE);
        else if (strcmp(property, "ReservedRmas") == 0)
                n = pool_count(p, SLOT_RESERVED);
        else if (strcmp(property, "LeasedRmas") == 0)
                n = pool_count(p, SLOT_LEASED);
        else if (strcmp(property, "ScrubbingRmas") == 0)
                n = pool_count(p, SLOT_SCRUBBING);
        else
                n = pool_count(p, SLOT_HELD_ELSEWHERE);
        return sd_bus_message_append(reply, "u", n);
}

static int property_get_backend(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Backend *b = ((BusOrigin *) userdata)->manager->backend;

        if (strcmp(property, "Backend") == 0)
                return sd_bus_message_append(reply, "s", b->ops->name);
        if (strcmp(property, "KernelCapability") == 0)
                return sd_bus_message_append(reply, "u", b->kernel_capability);
        return sd_bus_message_append(reply, "t", b->region_size);
}

/* Methods */

static int method_reserve(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusOrigin *o = userdata;
        Manager *m = o->manager;
        _cleanup_(caller_done) Caller caller = { 0 };
        char uuid[RMA_UUID_STRING_LEN + 1];
        g_autofree char *why = NULL;
        g_autoptr(GArray) usage = NULL;
        const PolicyTenant *t;
        const char *domain, *tenant;
        PolicyVerdict verdict;
        Slot *s = NULL;
        char size[32];
        int r;

        r = read_uuid(msg, uuid, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "ss", &domain, &tenant);
        if (r < 0)
                return r;
        if (!rma_name_is_valid(domain))
                return sd_bus_error_setf(error, RMA_ERROR_INVALID_ARGUMENT,
                                         "Domain name must be 1 to %d bytes of UTF-8 without control characters",
                                         RMA_NAME_MAX);
        if (tenant[0] != '\0' && !rma_name_is_valid(tenant))
                return sd_bus_error_setf(error, RMA_ERROR_INVALID_ARGUMENT,
                                         "Tenant name must be 1 to %d bytes of UTF-8 without control characters, "
                                         "or empty to let the policy choose", RMA_NAME_MAX);
        r = caller_get_or_fail(o, msg, &caller, error);
        if (r < 0)
                return r;

        s = pool_find(m->pool, uuid);
        if (s && s->state == SLOT_RESERVED && caller.uid == 0 && s->reserved_by != 0) {
                /* The hook (root) speaks for libvirt: a reservation another account made
                 * for this uuid must not keep the real domain from starting. */
                log_info("Reserve by root for domain %s (%s) replaces the reservation uid %u made for domain %s",
                         domain, uuid, (unsigned) s->reserved_by, s->domain);
                pool_unreserve(m->pool, s);
                s = NULL;
        }
        if (s) {
                r = require_tenant_access(&caller, m->policy, s->tenant, "Reserve", error);
                if (r < 0)
                        return r;
                if (s->state == SLOT_RESERVED && strcmp(s->domain, domain) == 0 && s->reserved_by == caller.uid) {
                        /* A retried prepare hook: same answer, fresh timeout. */
                        pool_refresh(m->pool, s, rma_now_usec(CLOCK_MONOTONIC) + m->config->reservation_timeout_usec);
                        manager_pool_changed(m);
                        return sd_bus_reply_method_return(msg, "u", s->index);
                }
                if (s->state == SLOT_LEASED)
                        return sd_bus_error_setf(error, RMA_ERROR_ALREADY_RESERVED,
                                                 "Domain %s (%s) already holds RMA slot %u, leased to pid %d; "
                                                 "a domain holds one RMA at a time",
                                                 s->domain, uuid, s->index, (int) s->pid);
                return sd_bus_error_setf(error, RMA_ERROR_ALREADY_RESERVED,
                                         "UUID %s is already reserved for domain %s by uid %u; each domain needs "
                                         "its own UUID", uuid, s->domain, (unsigned) s->reserved_by);
        }

        t = policy_tenant_for_domain(m->policy, domain, tenant, &why);
        if (!t)
                return sd_bus_error_setf(error, RMA_ERROR_NO_SUCH_TENANT, "No RMA for domain %s: %s", domain, why);
        r = require_tenant_access(&caller, m->policy, t->name, "Reserve", error);
        if (r < 0)
                return r;

        usage = pool_tenant_usage(m->pool);
        verdict = policy_decide_reserve(m->policy, t, (const TenantUsage *) (void *) usage->data, usage->len,
                                        pool_count(m->pool, SLOT_FREE), m->pool->n_slots, &why);
        if (verdict == POLICY_POOL_EXHAUSTED && pool_count(m->pool, SLOT_FREE) == 0) {
                log_info("Refused RMA for domain %s (%s), tenant %s: pool exhausted", domain, uuid, t->name);
                return sd_bus_error_setf(error, RMA_ERROR_POOL_EXHAUSTED,
                                         "No free RMA for domain %s: all %u RMAs of %s are taken (%u reserved, "
                                         "%u leased, %u being scrubbed). Stop a domain that holds one, or raise "
                                         "Count= in rma-brokerd.conf",
                                         domain, m->pool->n_slots,
                                         rma_format_size(m->backend->region_size, size, sizeof(size)),
                                         pool_count(m->pool, SLOT_RESERVED), pool_count(m->pool, SLOT_LEASED),
                                         pool_count(m->pool, SLOT_SCRUBBING) + pool_count(m->pool, SLOT_HELD_ELSEWHERE));
        }
        if (verdict != POLICY_ALLOW) {
                log_info("Refused RMA for domain %s (%s): %s", domain, uuid, why);
                return sd_bus_error_setf(error,
                                         verdict == POLICY_QUOTA_EXCEEDED ? RMA_ERROR_QUOTA_EXCEEDED : RMA_ERROR_POOL_EXHAUSTED,
                                         "No RMA for domain %s: %s", domain, why);
        }

        r = pool_reserve(m->pool, uuid, domain, t->name, caller.uid,
                         rma_now_usec(CLOCK_MONOTONIC) + m->config->reservation_timeout_usec, &s);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot reserve: %m");

        log_info("RMA slot %u reserved for domain %s (%s), tenant %s", s->index, domain, uuid, t->name);
        manager_pool_changed(m);
        return sd_bus_reply_method_return(msg, "u", s->index);
}

static bool pidfd_has_exited(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };

        return poll(&p, 1, 0) > 0;
}

static int method_release(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusOrigin *o = userdata;
        Manager *m = o->manager;
        char uuid[RMA_UUID_STRING_LEN + 1];
        Slot *s;
        int r;

        _cleanup_(caller_done) Caller caller = { 0 };

        r = read_uuid(msg, uuid, error);
        if (r < 0)
                return r;
        r = caller_get_or_fail(o, msg, &caller, error);
        if (r < 0)
                return r;

        s = pool_find(m->pool, uuid);
        if (!s && caller.uid != 0)
                /* Nobody but root learns whether an unknown domain holds nothing. */
                return require_root(o, msg, "Release", error);
        if (s) {
                r = require_tenant_access(&caller, m->policy, s->tenant, "Release", error);
                if (r < 0)
                        return r;
        }
        if (!s) {
                /* libvirt runs release after a failed prepare, a save and a migration away:
                 * a domain that holds nothing is released quietly. */
                log_debug("Release of %s: it holds no RMA", uuid);
                return sd_bus_reply_method_return(msg, "");
        }
        if (s->state == SLOT_RESERVED) {
                log_info("RMA slot %u: reservation for domain %s (%s) released unclaimed", s->index, s->domain, uuid);
                pool_unreserve(m->pool, s);
                manager_pool_changed(m);
        } else if (lease_holder_exited(s->lease))
                manager_end_lease(m, s, "the domain was released");
        else
                /* The region is mapped by a live QEMU; it returns when that process exits. */
                log_info("Release of domain %s (%s): pid %d still holds RMA slot %u; it is returned when that process exits",
                         s->domain, uuid, (int) s->pid, s->index);
        return sd_bus_reply_method_return(msg, "");
}

static int method_list_rmas(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Pool *p = ((BusOrigin *) userdata)->manager->pool;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ussssu)");
        if (r < 0)
                return r;
        for (unsigned i = 0; i < p->n_slots; i++) {
                const Slot *s = &p->slots[i];
                r = sd_bus_message_append(reply, "(ussssu)", s->index, slot_state_to_string(s->state), s->uuid,
                                          s->domain ? s->domain : "", s->tenant ? s->tenant : "", (uint32_t) s->pid);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static uint32_t tenant_cap(const PolicyTenant *t, const Pool *p) {
        return t->max_rmas == POLICY_UNLIMITED || t->max_rmas > p->n_slots ? p->n_slots : t->max_rmas;
}

static void usage_of(const GArray *usage, const char *name, uint32_t *leased, uint32_t *reserved) {
        *leased = *reserved = 0;
        for (guint i = 0; i < usage->len; i++) {
                const TenantUsage *u = &g_array_index(usage, TenantUsage, i);
                if (strcmp(u->name, name) == 0) {
                        *leased = u->leased;
                        *reserved = u->reserved;
                }
        }
}

static int append_tenant(sd_bus_message *reply, const char *name, uint32_t max, uint32_t guaranteed, const GArray *usage) {
        uint32_t leased, reserved;

        usage_of(usage, name, &leased, &reserved);
        return sd_bus_message_append(reply, "(suuuu)", name, max, guaranteed, leased, reserved);
}

static int method_list_tenants(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = ((BusOrigin *) userdata)->manager;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GArray) usage = pool_tenant_usage(m->pool);
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(suuuu)");
        if (r < 0)
                return r;
        for (guint i = 0; i < m->policy->tenants->len; i++) {
                const PolicyTenant *t = g_ptr_array_index(m->policy->tenants, i);
                r = append_tenant(reply, t->name, tenant_cap(t, m->pool), t->guaranteed_rmas, usage);
                if (r < 0)
                        return r;
        }
        /* Tenants a reload removed still hold what they held: show them, with no rights. */
        for (guint i = 0; i < usage->len; i++) {
                const TenantUsage *u = &g_array_index(usage, TenantUsage, i);
                if (!policy_find_tenant(m->policy, u->name)) {
                        r = append_tenant(reply, u->name, 0, 0, usage);
                        if (r < 0)
                                return r;
                }
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_tenant(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = ((BusOrigin *) userdata)->manager;
        g_autoptr(GArray) usage = pool_tenant_usage(m->pool);
        const PolicyTenant *t;
        uint32_t leased, reserved;
        const char *name;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        t = policy_find_tenant(m->policy, name);
        if (!t)
                return sd_bus_error_setf(error, RMA_ERROR_NO_SUCH_TENANT,
                                         "The policy has no tenant '%.64s'; ListTenants shows the tenants there are",
                                         name);
        usage_of(usage, t->name, &leased, &reserved);
        return sd_bus_reply_method_return(msg, "suuuu", t->name, tenant_cap(t, m->pool), t->guaranteed_rmas, leased,
                                          reserved);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusOrigin *o = userdata;
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        int r;

        r = require_root(o, msg, "Reload", error);
        if (r < 0)
                return r;
        if (manager_reload_policy(o->manager, errors) < 0) {
                g_autofree char *all = NULL;
                for (guint i = 0; i < errors->len; i++)
                        log_error("%s", (char *) g_ptr_array_index(errors, i));
                log_error("Reload refused: the new tenant policy is invalid (problems above); keeping the "
                          "current one");
                g_ptr_array_add(errors, NULL);
                all = g_strjoinv("; ", (char **) errors->pdata);
                return sd_bus_error_setf(error, RMA_ERROR_POLICY_INVALID,
                                         "The new tenant policy is invalid and was not applied; the current one stays: %s",
                                         all);
        }
        return sd_bus_reply_method_return(msg, "");
}

static int method_claim(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusOrigin *o = userdata;
        Manager *m = o->manager;
        Peer *peer = o->peer;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char uuid[RMA_UUID_STRING_LEN + 1];
        _cleanup_close_ int pidfd = -EBADF;
        g_autofree char *why = NULL;
        Slot *s;
        int r;

        r = read_uuid(msg, uuid, error);
        if (r < 0)
                return r;
        if (!broker_config_uid_may_claim(m->config, peer->ucred.uid)) {
                /* No NSS lookup here: an unprivileged caller must not make the loop block. */
                log_debug("Refused Claim of %s from pid %d uid %u: not a QEMU user", uuid, (int) peer->ucred.pid,
                          (unsigned) peer->ucred.uid);
                return sd_bus_error_setf(error, RMA_ERROR_ACCESS_DENIED,
                                         "uid %u may not claim RMAs; only the users in QemuUsers= of "
                                         "rma-brokerd.conf may, and QEMU should run as one of them",
                                         (unsigned) peer->ucred.uid);
        }
        s = pool_find(m->pool, uuid);
        if (!s)
                return sd_bus_error_setf(error, RMA_ERROR_NOT_RESERVED,
                                         "No RMA is reserved for domain %s. The libvirt hook "
                                         "/etc/libvirt/hooks/qemu.d/50-rma-broker reserves one when the domain "
                                         "starts: check that it is installed and that libvirtd was restarted or "
                                         "sent SIGHUP since (libvirtd looks for hooks only then)", uuid);
        if (s->state == SLOT_LEASED)
                return sd_bus_error_setf(error, RMA_ERROR_ALREADY_CLAIMED,
                                         "The RMA of domain %s (%s) is already claimed by pid %d; a domain gets "
                                         "one region, once", s->domain, uuid, (int) s->pid);
        if (m->config->check_cgroup) {
                r = domain_cgroup_check_pid(peer->ucred.pid, s->domain, &why);
                if (r <= 0) {
                        log_debug("Refused Claim of %s from pid %d: %s", uuid, (int) peer->ucred.pid, why);
                        return sd_bus_error_setf(error, RMA_ERROR_ACCESS_DENIED,
                                                 "pid %d may not claim the RMA of domain %s: %s",
                                                 (int) peer->ucred.pid, s->domain, why);
                }
        }
        r = peer_dup_pidfd(peer, &pidfd);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot watch the claiming process %d: %m", (int) peer->ucred.pid);
        if (pidfd_has_exited(pidfd))
                return sd_bus_error_setf(error, RMA_ERROR_INVALID_ARGUMENT, "The claiming process has exited");

        /* Build the reply (sd-bus duplicates the fd into it) before the lease starts: a
         * client that cannot take an fd must not burn the reservation. */
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "ht", s->region_fd, m->backend->region_size);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot pass the region to this client (%m); it must accept "
                                               "file descriptors (sd_bus_negotiate_fds)");
        r = manager_start_lease(m, s, peer->ucred.pid, TAKE_FD(pidfd));
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot start the lease: %m");
        return sd_bus_send(NULL, reply, NULL);
}

#define BROKER_COMMON_VTABLE                                                                                         \
        SD_BUS_VTABLE_START(0),                                                                                      \
        SD_BUS_PROPERTY("Backend", "s", property_get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),                      \
        SD_BUS_PROPERTY("KernelCapability", "u", property_get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),             \
        SD_BUS_PROPERTY("RmaSize", "t", property_get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),                      \
        SD_BUS_PROPERTY("TotalRmas", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_CONST),                      \
        SD_BUS_PROPERTY("FreeRmas", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),                \
        SD_BUS_PROPERTY("ReservedRmas", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),            \
        SD_BUS_PROPERTY("LeasedRmas", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),              \
        SD_BUS_PROPERTY("ScrubbingRmas", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),           \
        SD_BUS_PROPERTY("HeldElsewhereRmas", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),       \
        SD_BUS_METHOD_WITH_ARGS("Reserve", SD_BUS_ARGS("s", uuid, "s", domain, "s", tenant), SD_BUS_RESULT("u", slot), \
                                method_reserve, SD_BUS_VTABLE_UNPRIVILEGED),                                         \
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_ARGS("s", uuid), SD_BUS_NO_RESULT, method_release,                 \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_METHOD_WITH_ARGS("ListRmas", SD_BUS_NO_ARGS,                                                          \
                                SD_BUS_RESULT("a(ussssu)", rmas), method_list_rmas, SD_BUS_VTABLE_UNPRIVILEGED),     \
        SD_BUS_METHOD_WITH_ARGS("ListTenants", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(suuuu)", tenants),                   \
                                method_list_tenants, SD_BUS_VTABLE_UNPRIVILEGED),                                    \
        SD_BUS_METHOD_WITH_ARGS("GetTenant", SD_BUS_ARGS("s", name),                                                 \
                                SD_BUS_RESULT("s", name, "u", max_rmas, "u", guaranteed_rmas, "u", leased,          \
                                              "u", reserved), method_get_tenant, SD_BUS_VTABLE_UNPRIVILEGED),        \
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,                           \
                                SD_BUS_VTABLE_UNPRIVILEGED)

static const sd_bus_vtable broker_bus_vtable[] = {
        BROKER_COMMON_VTABLE,
        SD_BUS_VTABLE_END,
};

static const sd_bus_vtable broker_socket_vtable[] = {
        BROKER_COMMON_VTABLE,
        SD_BUS_METHOD_WITH_ARGS("Claim", SD_BUS_ARGS("s", uuid), SD_BUS_RESULT("h", region, "t", size),
                                method_claim, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_object_add(sd_bus *bus, BusOrigin *origin, bool on_socket) {
        return sd_bus_add_object_vtable(bus, NULL, RMA_OBJECT_PATH, RMA_INTERFACE,
                                        on_socket ? broker_socket_vtable : broker_bus_vtable, origin);
}

static const char *const count_property[_SLOT_STATE_MAX] = {
        [SLOT_FREE] = "FreeRmas",
        [SLOT_RESERVED] = "ReservedRmas",
        [SLOT_LEASED] = "LeasedRmas",
        [SLOT_SCRUBBING] = "ScrubbingRmas",
        [SLOT_HELD_ELSEWHERE] = "HeldElsewhereRmas",
};

void bus_object_emit_counts_changed(Manager *m, unsigned changed_states) {
        char *names[_SLOT_STATE_MAX + 1];
        size_t n = 0;

        if (!m->bus)
                return;
        for (unsigned s = 0; s < _SLOT_STATE_MAX; s++)
                if (changed_states & (1u << s))
                        names[n++] = (char *) count_property[s];
        names[n] = NULL;
        if (n > 0)
                (void) sd_bus_emit_properties_changed_strv(m->bus, RMA_OBJECT_PATH, RMA_INTERFACE, names);
}
