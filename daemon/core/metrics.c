/* Prometheus text exposition of the broker's state and counters. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "metrics.h"
#include "rma-config.h"

/* A label value: backslash, double quote and newline escaped, as the format asks. */
static void append_label_value(GString *out, const char *v) {
        for (const char *p = v; *p; p++) {
                if (*p == '\\' || *p == '"')
                        g_string_append_c(out, '\\');
                if (*p == '\n') {
                        g_string_append(out, "\\n");
                        continue;
                }
                g_string_append_c(out, *p);
        }
}

static void family(GString *out, const char *name, const char *type, const char *help) {
        g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void tenant_sample(GString *out, const char *name, const char *tenant, uint64_t value) {
        g_string_append_printf(out, "%s{tenant=\"", name);
        append_label_value(out, tenant);
        g_string_append_printf(out, "\"} %llu\n", (unsigned long long) value);
}

static const char *reserve_name(int r) {
        return reserve_result_to_string((ReserveResult) r);
}

static const char *claim_name(int r) {
        return claim_result_to_string((ClaimResult) r);
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* NAME{result=...,tenant=...} for every result of every tenant seen, tenants in name order
 * (a scrape's lines stay in place), from TenantStats' array at offset. */
static void result_counters(GString *out, const Broker *b, const char *name, const char *help, int n_results,
                            const char *(*result_name)(int), size_t offset) {
        g_autofree const char **tenants = (const char **) g_hash_table_get_keys_as_array(b->stats.by_tenant, NULL);
        guint n = g_hash_table_size(b->stats.by_tenant);

        family(out, name, "counter", help);
        qsort(tenants, n, sizeof(char *), compare_names);
        for (guint i = 0; i < n; i++) {
                const TenantStats *t = g_hash_table_lookup(b->stats.by_tenant, tenants[i]);
                const uint64_t *counts = (const uint64_t *) (const void *) ((const char *) t + offset);

                for (int r = 0; r < n_results; r++) {
                        g_string_append_printf(out, "%s{result=\"%s\",tenant=\"", name, result_name(r));
                        append_label_value(out, tenants[i]);
                        g_string_append_printf(out, "\"} %llu\n", (unsigned long long) counts[r]);
                }
        }
}

char *metrics_format(const Broker *b) {
        GString *out = g_string_sized_new(4096);
        const char *backend = b->backend->ops->name;
        const Pool *p = b->pool;
        g_autoptr(GArray) tenants = broker_list_tenants((Broker *) b);

        family(out, "rma_broker_build_info", "gauge", "Version of rma-brokerd and the backend that serves the pool.");
        g_string_append_printf(out, "rma_broker_build_info{version=\"%s\",backend=\"%s\"} 1\n", RMA_VERSION, backend);

        family(out, "rma_broker_regions", "gauge", "RMAs (slots) of the pool by state.");
        for (SlotState st = 0; st < _SLOT_STATE_MAX; st++)
                g_string_append_printf(out, "rma_broker_regions{backend=\"%s\",state=\"%s\"} %u\n", backend,
                                       slot_state_to_string(st), pool_count(p, st));

        family(out, "rma_broker_region_size_bytes", "gauge", "Size of each region of the pool.");
        g_string_append_printf(out, "rma_broker_region_size_bytes{backend=\"%s\"} %llu\n", backend,
                               (unsigned long long) b->backend->region_size);
        family(out, "rma_broker_pool_size_bytes", "gauge", "Size of the whole pool: regions times region size.");
        g_string_append_printf(out, "rma_broker_pool_size_bytes{backend=\"%s\"} %llu\n", backend,
                               (unsigned long long) b->backend->region_size * p->n_slots);
        family(out, "rma_broker_draining", "gauge",
               "1 while the host is draining (rmactl drain): no new RMAs are given out; 0 otherwise.");
        g_string_append_printf(out, "rma_broker_draining %d\n", b->drain_reason != NULL);
        family(out, "rma_broker_kernel_capability", "gauge",
               "KVM_CAP_PPC_RMA as the kernel answers it: 0 none, 1 optional, 2 every guest needs an RMA.");
        g_string_append_printf(out, "rma_broker_kernel_capability %u\n", b->backend->kernel_capability);

        static const struct {
                const char *name, *help;
                size_t offset;
        } per_tenant[] = {
                { "rma_broker_tenant_leased_regions", "Regions a tenant's QEMUs hold.", offsetof(TenantView, leased) },
                { "rma_broker_tenant_reserved_regions", "Regions reserved for a tenant's domains, not claimed yet.",
                  offsetof(TenantView, reserved) },
                { "rma_broker_tenant_max_regions", "A tenant's cap (MaxRmas, at most the pool; 0 for a tenant the "
                  "policy no longer has).", offsetof(TenantView, max_rmas) },
                { "rma_broker_tenant_guaranteed_regions", "Regions kept free for a tenant (GuaranteedRmas).",
                  offsetof(TenantView, guaranteed_rmas) },
        };
        for (size_t f = 0; f < G_N_ELEMENTS(per_tenant); f++) {
                family(out, per_tenant[f].name, "gauge", per_tenant[f].help);
                for (guint i = 0; i < tenants->len; i++) {
                        const TenantView *v = &g_array_index(tenants, TenantView, i);
                        tenant_sample(out, per_tenant[f].name, v->name,
                                      *(const uint32_t *) (const void *) ((const char *) v + per_tenant[f].offset));
                }
        }

        result_counters(out, b, "rma_broker_reserve_requests_total",
                        "Reserve calls by how they ended and tenant (\"\": refused before a tenant was known).",
                        _RESERVE_RESULT_MAX, reserve_name, offsetof(TenantStats, reserve));
        result_counters(out, b, "rma_broker_claim_requests_total",
                        "Claim calls by how they ended and tenant (\"\": no reservation, so no tenant).",
                        _CLAIM_RESULT_MAX, claim_name, offsetof(TenantStats, claim));
        family(out, "rma_broker_lease_ends_total", "counter", "Leases that ended, by reason.");
        for (LeaseEnd e = 0; e < _LEASE_END_MAX; e++)
                g_string_append_printf(out, "rma_broker_lease_ends_total{reason=\"%s\"} %llu\n", lease_end_to_string(e),
                                       (unsigned long long) b->stats.lease_ends[e]);
        family(out, "rma_broker_reservation_expiries_total", "counter",
               "Reservations that were not claimed within ReservationTimeoutSec.");
        g_string_append_printf(out, "rma_broker_reservation_expiries_total %llu\n",
                               (unsigned long long) b->stats.expiries);
        family(out, "rma_broker_forgotten_regions_total", "counter",
               "Held-elsewhere slots that root freed with ForgetRegion (rmactl forget-region).");
        g_string_append_printf(out, "rma_broker_forgotten_regions_total %llu\n",
                               (unsigned long long) b->stats.forgotten_regions);
        family(out, "rma_broker_policy_reloads_total", "counter", "Policy reloads (SIGHUP, Reload) by result.");
        g_string_append_printf(out, "rma_broker_policy_reloads_total{result=\"success\"} %llu\n"
                               "rma_broker_policy_reloads_total{result=\"failed\"} %llu\n",
                               (unsigned long long) b->stats.reloads_ok, (unsigned long long) b->stats.reloads_failed);
        histogram_format(out, "rma_broker_reserve_duration_seconds",
                         "Reserve calls, from dispatch to the answer sent.", &b->stats.reserve_seconds);
        histogram_format(out, "rma_broker_claim_duration_seconds",
                         "Claim calls, from dispatch to the answer (with the region) sent.", &b->stats.claim_seconds);
        histogram_format(out, "rma_broker_scrub_duration_seconds",
                         "From the end of a lease until its slot is free again with a fresh (or zeroed) region; "
                         "slots held elsewhere meanwhile are not counted.", &p->scrub_seconds);
        return g_string_free(out, FALSE);
}

int metrics_write_file(const char *path, const char *text) {
        g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", path);
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        size_t len = strlen(text);
        int r = 0;

        if (fd < 0)
                return -errno;
        /* No fsync: rename makes it atomic, and metrics need not survive a crash. */
        if (fchmod(fd, 0644) < 0 || write(fd, text, len) != (ssize_t) len)
                r = errno ? -errno : -EIO;
        else if (rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}
