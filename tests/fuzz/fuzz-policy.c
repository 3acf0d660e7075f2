/* libFuzzer target: arbitrary bytes as a policy file, through parsing, validation,
 * tenant resolution and the reserve decision. Must never crash or leak. */
#include <stdint.h>
#include <string.h>

#include "policy-parse.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autoptr(Policy) p = policy_new();
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        static const char *const domains[] = { "acme-1", "build-x", "zed", "" };
        TenantUsage usage[] = { { "acme", 1, 1 }, { "shared", 0, 2 }, { "x", 3, 0 } };

        if (size > 64 * 1024)
                return 0;
        /* The first byte picks the context: a policy.d file or rma-brokerd.conf. */
        policy_parse_text(p, "fuzz.conf", (const char *) data, size, size > 0 && (data[0] & 1), errors);
        policy_validate(p, 8, errors);
        for (size_t i = 0; i < G_N_ELEMENTS(domains); i++) {
                g_autofree char *why = NULL;
                const PolicyTenant *t = policy_tenant_for_domain(p, domains[i], i == 3 ? "acme" : NULL, &why);
                if (t) {
                        g_autofree char *msg = NULL;
                        (void) policy_decide_reserve(p, t, usage, G_N_ELEMENTS(usage), (uint32_t) i, 8, &msg);
                        (void) policy_tenant_allows(t, 1000, NULL, 0);
                }
        }
        return 0;
}
