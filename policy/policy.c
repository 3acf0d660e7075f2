/* Tenant quota policy: the data model, and the pure decisions made on it. */
#include <fnmatch.h>
#include <string.h>

#include "policy.h"

static void policy_tenant_free(gpointer data) {
        PolicyTenant *t = data;

        g_free(t->name);
        g_strfreev(t->domains);
        g_strfreev(t->nova_flavors);
        g_strfreev(t->nova_projects);
        g_strfreev(t->users);
        g_strfreev(t->groups);
        g_free(t->uids);
        g_free(t->gids);
        g_free(t->file);
        g_free(t);
}

Policy *policy_new(void) {
        Policy *p = g_new0(Policy, 1);

        p->tenants = g_ptr_array_new_with_free_func(policy_tenant_free);
        p->files = g_ptr_array_new_with_free_func(g_free);
        return p;
}

void policy_make_implicit(Policy *p) {
        PolicyTenant *t = g_new0(PolicyTenant, 1);

        t->name = g_strdup(POLICY_IMPLICIT_TENANT);
        t->max_rmas = POLICY_UNLIMITED;
        t->file = g_strdup("(built-in default)");
        g_ptr_array_add(p->tenants, t);
        g_free(p->default_tenant);
        p->default_tenant = g_strdup(POLICY_IMPLICIT_TENANT);
        p->implicit = true;
}

Policy *policy_new_implicit(void) {
        Policy *p = policy_new();

        policy_make_implicit(p);
        return p;
}

Policy *policy_free(Policy *p) {
        if (!p)
                return NULL;
        g_ptr_array_unref(p->tenants);
        g_ptr_array_unref(p->files);
        g_free(p->default_tenant);
        g_free(p->default_file);
        g_free(p);
        return NULL;
}

const PolicyTenant *policy_find_tenant(const Policy *p, const char *name) {
        if (!name)
                return NULL;
        for (guint i = 0; i < p->tenants->len; i++) {
                const PolicyTenant *t = g_ptr_array_index(p->tenants, i);
                if (strcmp(t->name, name) == 0)
                        return t;
        }
        return NULL;
}

bool policy_tenant_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;

        return n > 0 && n <= POLICY_TENANT_NAME_MAX &&
               strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

void policy_validate(const Policy *p, uint32_t pool_size, GPtrArray *errors) {
        g_autoptr(GString) parts = g_string_new(NULL);
        uint64_t sum = 0;

        for (guint i = 0; i < p->tenants->len; i++) {
                const PolicyTenant *t = g_ptr_array_index(p->tenants, i);
                if (t->max_rmas != POLICY_UNLIMITED && t->guaranteed_rmas > t->max_rmas)
                        g_ptr_array_add(errors, g_strdup_printf(
                                "%s:%u: [Tenant %s] GuaranteedRmas=%u is more than its MaxRmas=%u (line %u); "
                                "a guarantee must fit under the tenant's cap",
                                t->file, t->guaranteed_line, t->name, t->guaranteed_rmas, t->max_rmas, t->max_line));
                if (t->guaranteed_rmas > 0) {
                        sum += t->guaranteed_rmas;
                        g_string_append_printf(parts, "%s%s=%u (%s:%u)", parts->len ? ", " : "", t->name,
                                               t->guaranteed_rmas, t->file, t->guaranteed_line);
                }
        }
        if (sum > pool_size)
                g_ptr_array_add(errors, g_strdup_printf(
                        "GuaranteedRmas add up to %llu but the pool has only %u RMAs: %s; lower the guarantees "
                        "or raise Count= in rma-brokerd.conf",
                        (unsigned long long) sum, pool_size, parts->str));
        if (p->default_tenant && !policy_find_tenant(p, p->default_tenant))
                g_ptr_array_add(errors, g_strdup_printf(
                        "%s:%u: [Defaults] Tenant=%s names no tenant; add a [Tenant %s] section or name an "
                        "existing tenant", p->default_file, p->default_line, p->default_tenant, p->default_tenant));
}

const PolicyTenant *policy_tenant_for_domain(const Policy *p, const char *domain, const char *requested, char **why) {
        return policy_tenant_for_domain_by(p, domain, requested, NULL, why);
}

static bool same_project(const char *a, const char *b) {
        /* Keystone ids are hex, written with or without dashes. */
        for (;; a++, b++) {
                while (*a == '-')
                        a++;
                while (*b == '-')
                        b++;
                if (g_ascii_tolower(*a) != g_ascii_tolower(*b))
                        return false;
                if (*a == '\0')
                        return true;
        }
}

const PolicyTenant *policy_tenant_for_nova(const Policy *p, const char *flavor, const char *project) {
        const PolicyTenant *by_flavor = NULL;

        if (!flavor)
                return NULL;
        for (guint i = 0; i < p->tenants->len && !by_flavor; i++) {
                const PolicyTenant *t = g_ptr_array_index(p->tenants, i);
                for (char **g = t->nova_flavors; g && *g && !by_flavor; g++)
                        if (fnmatch(*g, flavor, 0) == 0)
                                by_flavor = t;
        }
        if (!by_flavor)
                return NULL;
        for (guint i = 0; project && i < p->tenants->len; i++) {
                const PolicyTenant *t = g_ptr_array_index(p->tenants, i);
                for (char **u = t->nova_projects; u && *u; u++)
                        if (same_project(*u, project))
                                return t;
        }
        return by_flavor;
}

const PolicyTenant *policy_tenant_for_domain_by(const Policy *p, const char *domain, const char *requested,
                                                const char **ret_glob, char **why) {
        const PolicyTenant *t;

        if (ret_glob)
                *ret_glob = NULL;
        if (requested && *requested) {
                t = policy_find_tenant(p, requested);
                if (!t && why)
                        *why = g_strdup_printf("domain %s names tenant '%s' in its rma metadata, but the policy "
                                               "has no [Tenant %s]; add it to a file in policy.d or fix the "
                                               "domain's tenant= attribute", domain, requested, requested);
                return t;
        }
        for (guint i = 0; i < p->tenants->len; i++) {
                t = g_ptr_array_index(p->tenants, i);
                for (char **g = t->domains; g && *g; g++)
                        if (fnmatch(*g, domain, 0) == 0) {
                                if (ret_glob)
                                        *ret_glob = *g;
                                return t;
                        }
        }
        if (p->default_tenant)
                return policy_find_tenant(p, p->default_tenant);
        if (why)
                *why = g_strdup_printf("domain %s names no tenant, matches no tenant's Domains=, and the policy "
                                       "sets no [Defaults] Tenant=; set one of these", domain);
        return NULL;
}

bool policy_tenant_allows(const PolicyTenant *t, uid_t uid, const gid_t *gids, size_t n_gids) {
        for (size_t i = 0; i < t->n_uids; i++)
                if (t->uids[i] == uid)
                        return true;
        for (size_t i = 0; i < t->n_gids; i++)
                for (size_t j = 0; j < n_gids; j++)
                        if (t->gids[i] == gids[j])
                                return true;
        return false;
}

static uint32_t held_by(const char *name, const TenantUsage *usage, size_t n_usage) {
        uint32_t held = 0;

        for (size_t i = 0; i < n_usage; i++)
                if (strcmp(usage[i].name, name) == 0)
                        held += usage[i].leased + usage[i].reserved;
        return held;
}

uint32_t policy_owed_to_others(const Policy *p, const PolicyTenant *t, const TenantUsage *usage, size_t n_usage) {
        uint32_t owed = 0;

        for (guint i = 0; i < p->tenants->len; i++) {
                const PolicyTenant *u = g_ptr_array_index(p->tenants, i);
                uint32_t held;
                if (u == t)
                        continue;
                held = held_by(u->name, usage, n_usage);
                if (u->guaranteed_rmas > held)
                        owed += u->guaranteed_rmas - held;
        }
        return owed;
}

uint32_t policy_tenant_headroom(const Policy *p, const PolicyTenant *t, const TenantUsage *usage, size_t n_usage,
                                uint32_t free_slots) {
        uint32_t held = held_by(t->name, usage, n_usage), owed = policy_owed_to_others(p, t, usage, n_usage);
        uint32_t below_guarantee = t->guaranteed_rmas > held ? MIN(free_slots, t->guaranteed_rmas - held) : 0;
        uint32_t beyond = free_slots - below_guarantee > owed ? free_slots - below_guarantee - owed : 0;
        uint32_t room = below_guarantee + beyond;

        if (t->max_rmas != POLICY_UNLIMITED)
                room = MIN(room, t->max_rmas > held ? t->max_rmas - held : 0);
        return room;
}

static char *describe_owed(const Policy *p, const PolicyTenant *t, const TenantUsage *usage, size_t n_usage) {
        GString *s = g_string_new(NULL);

        for (guint i = 0; i < p->tenants->len; i++) {
                const PolicyTenant *u = g_ptr_array_index(p->tenants, i);
                uint32_t held = held_by(u->name, usage, n_usage);
                if (u != t && u->guaranteed_rmas > held)
                        g_string_append_printf(s, "%s%s (%u owed)", s->len ? ", " : "", u->name,
                                               u->guaranteed_rmas - held);
        }
        return g_string_free(s, FALSE);
}

PolicyVerdict policy_decide_reserve(const Policy *p, const PolicyTenant *t, const TenantUsage *usage, size_t n_usage,
                                    uint32_t free_slots, uint32_t pool_size, char **message) {
        uint32_t leased = 0, reserved = 0, held, owed;

        for (size_t i = 0; i < n_usage; i++)
                if (strcmp(usage[i].name, t->name) == 0) {
                        leased += usage[i].leased;
                        reserved += usage[i].reserved;
                }
        held = leased + reserved;

        if (t->max_rmas != POLICY_UNLIMITED && held >= t->max_rmas) {
                if (message)
                        *message = g_strdup_printf(
                                "tenant %s holds %u of its MaxRmas=%u (%u leased, %u reserved); stop one of its "
                                "domains or raise MaxRmas in %s:%u", t->name, held, t->max_rmas, leased, reserved,
                                t->file, t->max_line ? t->max_line : t->line);
                return POLICY_QUOTA_EXCEEDED;
        }
        if (free_slots == 0) {
                if (message)
                        *message = g_strdup_printf("no free RMA for tenant %s: all %u RMAs of the pool are taken; "
                                                   "stop a domain that holds one, or raise Count= in rma-brokerd.conf",
                                                   t->name, pool_size);
                return POLICY_POOL_EXHAUSTED;
        }
        /* A tenant below its guarantee takes any free slot. Normally the free slots cover
         * every unmet guarantee anyway, but a reload, or slots held elsewhere, can leave
         * fewer: then the guaranteed tenants share what is free, first come. */
        if (held < t->guaranteed_rmas)
                return POLICY_ALLOW;
        /* Everyone else may take only what is not still owed to others. */
        owed = policy_owed_to_others(p, t, usage, n_usage);
        if (free_slots <= owed) {
                if (message) {
                        g_autofree char *who = describe_owed(p, t, usage, n_usage);
                        *message = g_strdup_printf(
                                "no RMA for tenant %s: the %u free RMAs of %u are held back for the guarantees of "
                                "%s; tenant %s holds %u with GuaranteedRmas=%u", t->name, free_slots, pool_size, who,
                                t->name, held, t->guaranteed_rmas);
                }
                return POLICY_POOL_EXHAUSTED;
        }
        return POLICY_ALLOW;
}
