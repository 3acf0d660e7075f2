/* The policy check that rmactl and rma-brokerd share. */
#include <errno.h>
#include <stdio.h>

#include "policy-check.h"
#include "policy-load.h"

static void print_tenant(const PolicyTenant *t) {
        if (t->max_rmas == POLICY_UNLIMITED)
                printf("  %-20s MaxRmas=(pool) GuaranteedRmas=%u  %s:%u\n", t->name, t->guaranteed_rmas, t->file, t->line);
        else
                printf("  %-20s MaxRmas=%u GuaranteedRmas=%u  %s:%u\n", t->name, t->max_rmas, t->guaranteed_rmas, t->file,
                       t->line);
}

int policy_check_report(const BrokerConfig *config, const char *pool_source) {
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(Policy) p = NULL;
        unsigned count = broker_config_count(config, config->backend);

        if (policy_load(config->config_file, config->policy_dirs, count, &p, errors) < 0) {
                for (guint i = 0; i < errors->len; i++)
                        fprintf(stderr, "%s\n", (char *) g_ptr_array_index(errors, i));
                fprintf(stderr, "Policy invalid: %u problem%s; nothing was changed\n", errors->len,
                        errors->len == 1 ? "" : "s");
                return -EINVAL;
        }
        printf("Policy valid for %s of %u RMAs: %u tenants, default tenant %s\n", pool_source ? pool_source : "a pool",
               count, p->tenants->len, p->default_tenant ? p->default_tenant : "(none)");
        for (guint i = 0; i < p->tenants->len; i++)
                print_tenant(g_ptr_array_index(p->tenants, i));
        return 0;
}
