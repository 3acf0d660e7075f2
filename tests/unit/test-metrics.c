/* Unit tests of daemon/core/metrics.c: the exposition of a real broker core, and the atomic
 * textfile write. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"
#include "test-broker-fixture.h"

#define UUID_A "11111111-2222-3333-4444-555555555555"
#define UUID_B "22222222-2222-3333-4444-555555555555"

static void assert_line(const char *text, const char *line) {
        g_autofree char *needle = g_strdup_printf("\n%s\n", line);
        if (!strstr(text, needle))
                g_error("expected line '%s' in:\n%s", line, text);
}

static void test_exposition(Fixture *f, gconstpointer data) {
        Caller root = { .uid = 0, .gids_known = true, .cgroup_fd = -1 };
        g_autofree char *text = NULL, *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL, *m5 = NULL;
        Caller qemu = { .uid = 4243, .gids_known = true, .cgroup_fd = -1 };
        Slot *s = NULL;
        int old_fd = -1;

        g_assert_cmpint(broker_reserve(f->broker, &root, UUID_A, "acme-1", "acme", 0, &s, &m1), ==, BROKER_OK);
        g_assert_cmpint(broker_reserve(f->broker, &root, UUID_B, "acme-2", "acme", 0, &s, &m2), ==, BROKER_QUOTA_EXCEEDED);
        /* No tenant of that name: counted under "", never under the name the client made up. */
        g_assert_cmpint(broker_reserve(f->broker, &root, UUID_B, "x-1", "made-up", 0, &s, &m3), ==, BROKER_NO_SUCH_TENANT);
        g_assert_cmpint(broker_check_claim(f->broker, &qemu, UUID_B, &s, &m4), ==, BROKER_NOT_RESERVED);
        g_assert_cmpint(broker_check_claim(f->broker, &qemu, UUID_A, &s, &m5), ==, BROKER_OK);
        histogram_observe(&f->broker->stats.reserve_seconds, 300);      /* 0.3 ms */
        histogram_observe(&f->broker->stats.reserve_seconds, 20000000); /* 20 s: above every bound */
        s = pool_find(f->broker->pool, UUID_A);
        g_assert_cmpint(pool_lease(f->broker->pool, s, getpid(), 0), ==, 0);
        broker_end_lease(f->broker, s, LEASE_END_PROCESS_EXITED, &old_fd);
        close(old_fd);
        refill_now(f->broker->pool, s);

        text = metrics_format(f->broker);
        g_assert_true(g_str_has_prefix(text, "# HELP rma_broker_build_info "));
        g_assert_true(g_str_has_suffix(text, "\n"));
        assert_line(text, "rma_broker_regions{backend=\"memfd\",state=\"free\"} 3");
        assert_line(text, "rma_broker_regions{backend=\"memfd\",state=\"held-elsewhere\"} 0");
        assert_line(text, "rma_broker_pool_size_bytes{backend=\"memfd\"} 3145728");
        assert_line(text, "rma_broker_region_size_bytes{backend=\"memfd\"} 1048576");
        assert_line(text, "rma_broker_tenant_max_regions{tenant=\"acme\"} 1");
        assert_line(text, "rma_broker_tenant_leased_regions{tenant=\"acme\"} 0");
        assert_line(text, "rma_broker_reserve_requests_total{result=\"granted\",tenant=\"acme\"} 1");
        assert_line(text, "rma_broker_reserve_requests_total{result=\"quota\",tenant=\"acme\"} 1");
        assert_line(text, "rma_broker_reserve_requests_total{result=\"pool_exhausted\",tenant=\"acme\"} 0");
        assert_line(text, "rma_broker_reserve_requests_total{result=\"denied\",tenant=\"\"} 1");
        g_assert_null(strstr(text, "made-up"));
        assert_line(text, "rma_broker_claim_requests_total{result=\"granted\",tenant=\"acme\"} 1");
        assert_line(text, "rma_broker_claim_requests_total{result=\"not_reserved\",tenant=\"\"} 1");
        assert_line(text, "# TYPE rma_broker_reserve_duration_seconds histogram");
        assert_line(text, "rma_broker_reserve_duration_seconds_bucket{le=\"0.00025\"} 0");
        assert_line(text, "rma_broker_reserve_duration_seconds_bucket{le=\"0.0005\"} 1");
        assert_line(text, "rma_broker_reserve_duration_seconds_bucket{le=\"10\"} 1");
        assert_line(text, "rma_broker_reserve_duration_seconds_bucket{le=\"+Inf\"} 2");
        assert_line(text, "rma_broker_reserve_duration_seconds_sum 20.000300");
        assert_line(text, "rma_broker_reserve_duration_seconds_count 2");
        /* The lease ended and its slot was refilled: one scrub. */
        assert_line(text, "rma_broker_scrub_duration_seconds_count 1");
        assert_line(text, "rma_broker_reservation_expiries_total 0");
        assert_line(text, "rma_broker_policy_reloads_total{result=\"success\"} 0");
        assert_line(text, "rma_broker_lease_ends_total{reason=\"process_exited\"} 1");
        assert_line(text, "rma_broker_lease_ends_total{reason=\"released\"} 0");
        assert_line(text, "# TYPE rma_broker_reserve_requests_total counter");
}

static void test_write_file(Fixture *f, gconstpointer data) {
        g_autofree char *path = g_build_filename(f->dir, "rma.prom", NULL), *got = NULL;
        g_autoptr(GDir) dir = NULL;
        struct stat st;
        unsigned files = 0;

        g_assert_cmpint(metrics_write_file(path, "a 1\n"), ==, 0);
        g_assert_cmpint(metrics_write_file(path, "b 2\n"), ==, 0);
        g_assert_true(g_file_get_contents(path, &got, NULL, NULL));
        g_assert_cmpstr(got, ==, "b 2\n");
        g_assert_cmpint(stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0644);
        /* Nothing left beside it (the policy.d and config of the fixture aside). */
        dir = g_dir_open(f->dir, 0, NULL);
        for (const char *n; (n = g_dir_read_name(dir));)
                files += g_str_has_prefix(n, "rma.prom");
        g_assert_cmpuint(files, ==, 1);
        g_assert_cmpint(metrics_write_file("/nonexistent/dir/rma.prom", "x 1\n"), ==, -ENOENT);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/metrics/exposition", Fixture, "[Tenant acme]\nMaxRmas=1\n", fixture_set_up, test_exposition,
                   fixture_tear_down);
        g_test_add("/metrics/write-file", Fixture, NULL, fixture_set_up, test_write_file, fixture_tear_down);
        return g_test_run();
}
