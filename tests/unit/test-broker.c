/* Unit tests of the broker core (daemon/core/broker.c), driven directly: no bus, no event
 * loop. A real memfd pool of 3 regions, a real policy loaded from files. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "domain-cgroup.h"
#include "test-broker-fixture.h"

#define UUID_A "11111111-2222-3333-4444-555555555555"
#define UUID_B "22222222-2222-3333-4444-555555555555"
#define UUID_C "33333333-2222-3333-4444-555555555555"
#define UUID_D "44444444-2222-3333-4444-555555555555"
#define NOBODY 65534
#define QEMU_UID 4243

static Caller root = { .uid = 0, .gids_known = true, .cgroup_fd = -1 };
static Caller nobody = { .uid = NOBODY, .gids_known = true, .cgroup_fd = -1 };
static Caller qemu = { .uid = QEMU_UID, .gids_known = true, .cgroup_fd = -1 };


/* Assert a refusal and that its message says what it should. */
#define assert_refused(call, want, text)                                           \
        do {                                                                       \
                g_autofree char *_msg = NULL;                                      \
                char **message = &_msg;                                            \
                g_assert_cmpint((call), ==, (want));                               \
                g_assert_nonnull(_msg);                                            \
                if (!strstr(_msg, (text)))                                         \
                        g_error("expected '%s' in: %s", (text), _msg);              \
        } while (0)

static Slot *reserve_ok(Fixture *f, Caller *c, const char *uuid, const char *domain, const char *tenant) {
        g_autofree char *message = NULL;
        Slot *s = NULL;

        if (broker_reserve(f->broker, c, uuid, domain, tenant, 1000, &s, &message) != BROKER_OK)
                g_error("Reserve %s refused: %s", domain, message);
        return s;
}

static void test_reserve_and_input(Fixture *f, gconstpointer data) {
        Slot *s = NULL, *again;

        s = reserve_ok(f, &root, UUID_A, "dom-a", "");
        g_assert_cmpuint(s->index, ==, 0);
        g_assert_cmpstr(s->tenant, ==, "default");
        g_assert_cmpuint(s->expires_usec, ==, 1000 + RMA_DEFAULT_RESERVATION_TIMEOUT_SEC * G_USEC_PER_SEC);
        /* Upper-case uuids are the same domain. */
        again = reserve_ok(f, &root, "11111111-2222-3333-4444-555555555555", "dom-a", "");
        g_assert_true(again == s);
        assert_refused(broker_reserve(f->broker, &root, "not-a-uuid", "d", "", 0, &s, message),
                       BROKER_INVALID_ARGUMENT, "'not-a-uuid' is not a domain UUID");
        assert_refused(broker_reserve(f->broker, &root, UUID_B, "", "", 0, &s, message), BROKER_INVALID_ARGUMENT,
                       "Domain name must be 1 to");
        assert_refused(broker_reserve(f->broker, &root, UUID_B, "d", "bad\ntenant", 0, &s, message),
                       BROKER_INVALID_ARGUMENT, "Tenant name must be");
        assert_refused(broker_reserve(f->broker, &root, UUID_A, "dom-other", "", 0, &s, message),
                       BROKER_ALREADY_RESERVED, "already reserved for domain dom-a by uid 0");
        /* Without a policy only root may reserve. */
        assert_refused(broker_reserve(f->broker, &nobody, UUID_B, "dom-b", "", 0, &s, message), BROKER_ACCESS_DENIED,
                       "without a tenant policy only root may");
}

static void test_pool_exhausted(Fixture *f, gconstpointer data) {
        Slot *s = NULL;

        reserve_ok(f, &root, UUID_A, "a", "");
        reserve_ok(f, &root, UUID_B, "b", "");
        reserve_ok(f, &root, UUID_C, "c", "");
        assert_refused(broker_reserve(f->broker, &root, UUID_D, "d", "", 0, &s, message), BROKER_POOL_EXHAUSTED,
                       "all 3 RMAs of 1 MiB are taken (3 reserved, 0 leased, 0 being scrubbed)");
}

static const char tenant_policy[] = "[Tenant acme]\nMaxRmas=1\nDomains=acme-*\nUsers=nobody\n";

static void test_policy_refusals(Fixture *f, gconstpointer data) {
        Slot *s = NULL;

        reserve_ok(f, &nobody, UUID_A, "acme-1", "");
        assert_refused(broker_reserve(f->broker, &nobody, UUID_B, "acme-2", "", 0, &s, message), BROKER_QUOTA_EXCEEDED,
                       "acme");
        assert_refused(broker_reserve(f->broker, &root, UUID_B, "web-1", "", 0, &s, message), BROKER_NO_SUCH_TENANT,
                       "No RMA for domain web-1");
        assert_refused(broker_reserve(f->broker, &qemu, UUID_B, "acme-2", "acme", 0, &s, message), BROKER_ACCESS_DENIED,
                       "uid 4243 may not call Reserve for tenant acme");
}

static void test_root_takes_over(Fixture *f, gconstpointer data) {
        Slot *squat = reserve_ok(f, &nobody, UUID_A, "acme-squat", ""), *s;

        g_assert_cmpuint(squat->reserved_by, ==, NOBODY);
        /* The hook (root) reserves the real domain with that uuid: it wins. */
        s = reserve_ok(f, &root, UUID_A, "acme-real", "");
        g_assert_cmpstr(s->domain, ==, "acme-real");
        g_assert_cmpuint(s->reserved_by, ==, 0);
        g_assert_cmpuint(pool_count(f->broker->pool, SLOT_RESERVED), ==, 1);
        /* The other way round it does not. */
        assert_refused(broker_reserve(f->broker, &nobody, UUID_A, "acme-squat", "", 0, &s, message),
                       BROKER_ALREADY_RESERVED, "already reserved for domain acme-real by uid 0");
}

static void test_claim_checks(Fixture *f, gconstpointer data) {
        Caller qemu_self = { .uid = QEMU_UID, .pid = getpid(), .gids_known = true, .cgroup_fd = -1 };
        Slot *s = NULL, *claimed = NULL;

        assert_refused(broker_check_claim(f->broker, &nobody, UUID_A, &s, message), BROKER_ACCESS_DENIED,
                       "uid 65534 may not claim RMAs; only the users in QemuUsers=");
        assert_refused(broker_check_claim(f->broker, &qemu_self, UUID_A, &s, message), BROKER_NOT_RESERVED,
                       "No RMA is reserved for domain " UUID_A);
        s = reserve_ok(f, &root, UUID_A, "dom-a", "");
        {
                g_autofree char *message = NULL;
                g_assert_cmpint(broker_check_claim(f->broker, &qemu_self, UUID_A, &claimed, &message), ==, BROKER_OK);
                g_assert_true(claimed == s);
        }
        g_assert_cmpint(pool_lease(f->broker->pool, s, getpid(), 0), ==, 0);
        assert_refused(broker_check_claim(f->broker, &qemu_self, UUID_A, &claimed, message), BROKER_ALREADY_CLAIMED,
                       "already claimed by pid");
        assert_refused(broker_reserve(f->broker, &root, UUID_A, "dom-a", "", 0, &claimed, message),
                       BROKER_ALREADY_RESERVED, "already holds RMA slot 0, leased to pid");
        /* With CheckCgroup=yes, this test process is not in dom-b's libvirt cgroup. */
        f->broker->config->check_cgroup = true;
        reserve_ok(f, &root, UUID_B, "dom-b", "");
        assert_refused(broker_check_claim(f->broker, &qemu_self, UUID_B, &claimed, message), BROKER_ACCESS_DENIED,
                       "is not the libvirt cgroup of domain dom-b");
        /* The same through /proc/PID/cgroup opened when the caller connected. */
        qemu_self.cgroup_fd = domain_cgroup_open(getpid());
        g_assert_cmpint(qemu_self.cgroup_fd, >=, 0);
        assert_refused(broker_check_claim(f->broker, &qemu_self, UUID_B, &claimed, message), BROKER_ACCESS_DENIED,
                       "is not the libvirt cgroup of domain dom-b");
        close(qemu_self.cgroup_fd);
}

static void test_release(Fixture *f, gconstpointer data) {
        Slot *s = NULL, *held = NULL;
        int old_fd = -EBADF;

        /* Nobody but root learns whether an unknown domain holds anything. */
        assert_refused(broker_release(f->broker, &nobody, UUID_A, &held, message), BROKER_ACCESS_DENIED,
                       "Release changes the pool and is for root only");
        assert_refused(broker_release(f->broker, &root, "nope", &held, message), BROKER_INVALID_ARGUMENT,
                       "is not a domain UUID");
        {
                g_autofree char *message = NULL;
                g_assert_cmpint(broker_release(f->broker, &root, UUID_A, &held, &message), ==, BROKER_OK);
                g_assert_null(held);
        }
        s = reserve_ok(f, &root, UUID_A, "dom-a", "");
        {
                g_autofree char *message = NULL;
                g_assert_cmpint(broker_release(f->broker, &root, UUID_A, &held, &message), ==, BROKER_OK);
                g_assert_null(held);
                g_assert_cmpint(s->state, ==, SLOT_FREE);
        }
        s = reserve_ok(f, &root, UUID_A, "dom-a", "");
        g_assert_cmpint(pool_lease(f->broker->pool, s, getpid(), 0), ==, 0);
        {
                g_autofree char *message = NULL;
                g_assert_cmpint(broker_release(f->broker, &root, UUID_A, &held, &message), ==, BROKER_OK);
                /* A lease is handed back: it ends only when its process is gone. */
                g_assert_true(held == s);
                g_assert_cmpint(s->state, ==, SLOT_LEASED);
        }
        broker_end_lease(f->broker, s, LEASE_END_PROCESS_EXITED, &old_fd);
        g_assert_cmpint(old_fd, >=, 0);
        close(old_fd);
        refill_now(f->broker->pool, s);
        g_assert_cmpuint(pool_count(f->broker->pool, SLOT_FREE), ==, 3);
}

static void test_expiry(Fixture *f, gconstpointer data) {
        uint64_t timeout = RMA_DEFAULT_RESERVATION_TIMEOUT_SEC * G_USEC_PER_SEC;

        reserve_ok(f, &root, UUID_A, "a", "");
        g_assert_cmpuint(broker_expire(f->broker, 1000 + timeout - 1), ==, 0);
        g_assert_cmpuint(broker_expire(f->broker, 1000 + timeout), ==, 1);
        g_assert_null(pool_find(f->broker->pool, UUID_A));
}

static void test_tenant_views(Fixture *f, gconstpointer data) {
        g_autoptr(GArray) before = NULL, after = NULL;
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *file = g_build_filename(f->dir, "policy.d", "10-test.conf", NULL);
        TenantView v;

        reserve_ok(f, &root, UUID_A, "acme-1", "");
        {
                g_autofree char *message = NULL;
                g_assert_cmpint(broker_get_tenant(f->broker, "acme", &v, &message), ==, BROKER_OK);
                g_assert_cmpuint(v.max_rmas, ==, 1);
                g_assert_cmpuint(v.reserved, ==, 1);
                g_assert_cmpuint(v.leased, ==, 0);
        }
        assert_refused(broker_get_tenant(f->broker, "nope", &v, message), BROKER_NO_SUCH_TENANT, "no tenant 'nope'");
        before = broker_list_tenants(f->broker);
        g_assert_cmpuint(before->len, ==, 1);
        /* A reload that drops acme: it still shows, holding its slot, with no rights. */
        g_assert_true(g_file_set_contents(file, "[Tenant other]\nMaxRmas=2\n", -1, NULL));
        g_assert_cmpint(broker_reload_policy(f->broker, errors), ==, 0);
        after = broker_list_tenants(f->broker);
        g_assert_cmpuint(after->len, ==, 2);
        g_assert_cmpstr(g_array_index(after, TenantView, 1).name, ==, "acme");
        g_assert_cmpuint(g_array_index(after, TenantView, 1).max_rmas, ==, 0);
        g_assert_cmpuint(g_array_index(after, TenantView, 1).reserved, ==, 1);
        /* A broken policy is refused and the current one stays. */
        g_assert_true(g_file_set_contents(file, "[Tenant other]\nMaxRmas=many\n", -1, NULL));
        g_assert_cmpint(broker_reload_policy(f->broker, errors), <, 0);
        g_assert_cmpuint(errors->len, >, 0);
        g_assert_nonnull(policy_find_tenant(f->broker->policy, "other"));
}

/* ForgetRegion is root's alone: AdminGroup= does not reach it (one region more than Count=
 * may be the cost, should a process still hold the old one). */
static void test_forget_region_root_only(Fixture *f, gconstpointer data) {
        gid_t admins[] = { 4321 };
        Caller admin = { .uid = NOBODY, .gids = g_memdup2(admins, sizeof(admins)), .n_gids = 1, .gids_known = true,
                         .cgroup_fd = -1 };
        g_autofree char *none = NULL;

        g_free(f->broker->config->admin_group);
        f->broker->config->admin_group = g_strdup("rmaadmins");
        f->broker->config->admin_gid = 4321;
        g_assert_cmpint(broker_check_forget_region(f->broker, &root, &none), ==, BROKER_OK);
        g_assert_null(none);
        assert_refused(broker_check_forget_region(f->broker, &admin, message), BROKER_ACCESS_DENIED,
                       "root only; uid 65534 may read properties");
        assert_refused(broker_check_forget_region(f->broker, &qemu, message), BROKER_ACCESS_DENIED, "root only");
        caller_done(&admin);
}

/* AdminGroup=: its members Reserve, Release and Reload like root; others are told who may. */
static void test_admin_group(Fixture *f, gconstpointer data) {
        gid_t admins[] = { 100, 4321 }, others[] = { 100 };
        Caller admin = { .uid = NOBODY, .gids = g_memdup2(admins, sizeof(admins)), .n_gids = 2, .gids_known = true,
                         .cgroup_fd = -1 };
        Caller other = { .uid = NOBODY, .gids = g_memdup2(others, sizeof(others)), .n_gids = 1, .gids_known = true,
                         .cgroup_fd = -1 };
        Slot *s = NULL, *held = NULL;

        assert_refused(broker_require_admin(f->broker, &admin, "Reload", message), BROKER_ACCESS_DENIED,
                       "Reload changes the pool and is for root only");
        g_free(f->broker->config->admin_group);
        f->broker->config->admin_group = g_strdup("rmaadmins");
        f->broker->config->admin_gid = 4321;
        {
                g_autofree char *message = NULL;
                g_assert_cmpint(broker_require_admin(f->broker, &admin, "Reload", &message), ==, BROKER_OK);
        }
        s = reserve_ok(f, &admin, UUID_A, "dom-a", "");
        g_assert_cmpuint(s->reserved_by, ==, NOBODY);
        assert_refused(broker_reserve(f->broker, &other, UUID_B, "dom-b", "", 0, &s, message), BROKER_ACCESS_DENIED,
                       "uid 65534 may not call Reserve");
        assert_refused(broker_require_admin(f->broker, &other, "Reload", message), BROKER_ACCESS_DENIED,
                       "is for root and the members of group rmaadmins (AdminGroup=)");
        {
                g_autofree char *message = NULL;
                g_assert_cmpint(broker_release(f->broker, &admin, UUID_A, &held, &message), ==, BROKER_OK);
                g_assert_null(pool_find(f->broker->pool, UUID_A));
        }
        /* Root's takeover of a reservation stays root's: the hook speaks for libvirt. */
        s = reserve_ok(f, &admin, UUID_A, "dom-a", "");
        assert_refused(broker_reserve(f->broker, &admin, UUID_A, "dom-x", "", 0, &s, message), BROKER_ALREADY_RESERVED,
                       "already reserved for domain dom-a");
        caller_done(&admin);
        caller_done(&other);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/broker/reserve-and-input", Fixture, NULL, fixture_set_up, test_reserve_and_input, fixture_tear_down);
        g_test_add("/broker/pool-exhausted", Fixture, NULL, fixture_set_up, test_pool_exhausted, fixture_tear_down);
        g_test_add("/broker/policy-refusals", Fixture, tenant_policy, fixture_set_up, test_policy_refusals,
                   fixture_tear_down);
        g_test_add("/broker/root-takes-over", Fixture, tenant_policy, fixture_set_up, test_root_takes_over,
                   fixture_tear_down);
        g_test_add("/broker/claim-checks", Fixture, NULL, fixture_set_up, test_claim_checks, fixture_tear_down);
        g_test_add("/broker/release", Fixture, NULL, fixture_set_up, test_release, fixture_tear_down);
        g_test_add("/broker/expiry", Fixture, NULL, fixture_set_up, test_expiry, fixture_tear_down);
        g_test_add("/broker/admin-group", Fixture, NULL, fixture_set_up, test_admin_group, fixture_tear_down);
        g_test_add("/broker/forget-region-root-only", Fixture, NULL, fixture_set_up, test_forget_region_root_only,
                   fixture_tear_down);
        g_test_add("/broker/tenant-views", Fixture, tenant_policy, fixture_set_up, test_tenant_views, fixture_tear_down);
        return g_test_run();
}
