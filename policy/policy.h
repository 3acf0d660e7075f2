/* Tenant quota policy: the data model, and the pure decisions made on it.
 *
 * No I/O and no event loop here: the daemon hands in the pool's numbers and gets a
 * verdict with a message back. Loading files lives in policy-load.c. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define POLICY_UNLIMITED UINT32_MAX
#define POLICY_MAX_RMAS 65536u
#define POLICY_TENANT_NAME_MAX 64
#define POLICY_IMPLICIT_TENANT "default"

typedef struct PolicyTenant {
        char *name;
        uint32_t max_rmas;          /* POLICY_UNLIMITED when MaxRmas= is not set */
        uint32_t guaranteed_rmas;
        char **domains;             /* fnmatch(3) globs of libvirt domain names */
        char **users;               /* may Reserve/Release for this tenant, besides root */
        char **groups;
        char **nova_flavors;        /* fnmatch(3) globs of Nova flavor names whose instances get an RMA */
        char **nova_projects;       /* Keystone project ids whose Nova instances are this tenant's */
        uid_t *uids;                /* users/groups resolved by policy_resolve_accounts() */
        size_t n_uids;
        gid_t *gids;
        size_t n_gids;
        char *file;                 /* where its [Tenant NAME] section is */
        unsigned line;
        unsigned max_line;          /* lines of MaxRmas= and GuaranteedRmas=, 0 when unset */
        unsigned guaranteed_line;
} PolicyTenant;

typedef struct Policy {
        GPtrArray *tenants;         /* PolicyTenant*, in the order read */
        char *default_tenant;       /* [Defaults] Tenant=, NULL when unset */
        char *default_file;         /* where Tenant= was set */
        unsigned default_line;
        GPtrArray *files;           /* every file read, in order */
        bool implicit;              /* no policy anywhere: one uncapped "default" tenant */
} Policy;

Policy *policy_new(void);
/* The policy of a host without policy files: every domain goes to tenant "default",
 * which has no cap and no guarantee. */
Policy *policy_new_implicit(void);
void policy_make_implicit(Policy *p);
Policy *policy_free(Policy *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Policy, policy_free)

const PolicyTenant *policy_find_tenant(const Policy *p, const char *name);
bool policy_tenant_name_is_valid(const char *name);

/* Cross-file rules: the default tenant exists, every guarantee fits under its cap, and
 * the guarantees together fit in the pool. Errors are appended as text. */
void policy_validate(const Policy *p, uint32_t pool_size, GPtrArray *errors);

/* The tenant of a domain: the tenant its XML names (requested, may be NULL or ""), else
 * the first tenant whose Domains= glob matches its name, else the default tenant.
 * NULL when none applies; *why then says what to set. */
const PolicyTenant *policy_tenant_for_domain(const Policy *p, const char *domain, const char *requested, char **why);
/* The same, and which rule chose: *ret_glob is the Domains= glob that matched (borrowed),
 * NULL when the metadata or the default tenant did. */
const PolicyTenant *policy_tenant_for_domain_by(const Policy *p, const char *domain, const char *requested,
                                                const char **ret_glob, char **why);

/* Whether a non-root caller may reserve and release for a tenant (Users=, Groups=). */
bool policy_tenant_allows(const PolicyTenant *t, uid_t uid, const gid_t *gids, size_t n_gids);

typedef struct TenantUsage {
        const char *name;
        uint32_t leased;
        uint32_t reserved;
} TenantUsage;

typedef enum PolicyVerdict {
        POLICY_ALLOW = 0,
        POLICY_QUOTA_EXCEEDED,      /* the tenant is at its MaxRmas */
        POLICY_POOL_EXHAUSTED,      /* no free slot, or every free slot is owed to others */
} PolicyVerdict;

/* May tenant t take one more slot? usage lists what every tenant holds now (a tenant
 * missing from it holds nothing); free_slots are the pool's free slots. On refusal
 * *message names the tenant and the numbers. */
PolicyVerdict policy_decide_reserve(const Policy *p, const PolicyTenant *t, const TenantUsage *usage, size_t n_usage,
                                    uint32_t free_slots, uint32_t pool_size, char **message);

/* How many free slots are held back for the unmet guarantees of tenants other than t
 * (t may be NULL: all tenants). */
uint32_t policy_owed_to_others(const Policy *p, const PolicyTenant *t, const TenantUsage *usage, size_t n_usage);

/* A Nova instance (its flavor's name and its project id, from the <nova:instance>
 * metadata Nova writes) gets an RMA when some tenant's NovaFlavors= matches its flavor.
 * Its tenant is the one whose NovaProjects= lists its project, else the one whose
 * NovaFlavors= matched. NULL: not opted in. */
const PolicyTenant *policy_tenant_for_nova(const Policy *p, const char *flavor, const char *project);

/* How many more slots tenant t could reserve now, one after another, as
 * policy_decide_reserve() would grant them: up to its cap, any free slot while below its
 * guarantee, and beyond that only what is not owed to the others' guarantees. */
uint32_t policy_tenant_headroom(const Policy *p, const PolicyTenant *t, const TenantUsage *usage, size_t n_usage,
                                uint32_t free_slots);
