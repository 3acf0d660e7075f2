/* Unit tests of policy/: parsing, validation, loading, tenant resolution, decisions. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "policy-load.h"
#include "policy-parse.h"
#include "policy.h"

/* Parse text as FILE; return the errors joined by newlines ("" when none). */
static char *parse(Policy *p, const char *file, const char *text, bool daemon_config) {
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);

        policy_parse_text(p, file, text, strlen(text), daemon_config, errors);
        g_ptr_array_add(errors, NULL);
        return g_strjoinv("\n", (char **) errors->pdata);
}

static void assert_contains(const char *haystack, const char *needle) {
        if (!strstr(haystack, needle))
                g_error("expected '%s' in:\n%s", needle, haystack);
}

static void test_parse_valid(void) {
        g_autoptr(Policy) p = policy_new();
        g_autofree char *errs = parse(p, "10-a.conf",
                "# comment\n"
                "[Defaults]\n"
                "Tenant=shared\n"
                "\n"
                "[Tenant acme]\n"
                "MaxRmas = 4\n"
                "GuaranteedRmas=1\n"
                "Domains=acme-*; build-* ;\n"
                "Users=root\n"
                "[Tenant shared]\n", false);
        const PolicyTenant *acme, *shared;

        g_assert_cmpstr(errs, ==, "");
        g_assert_cmpstr(p->default_tenant, ==, "shared");
        g_assert_cmpuint(p->tenants->len, ==, 2);
        acme = policy_find_tenant(p, "acme");
        g_assert_nonnull(acme);
        g_assert_cmpuint(acme->max_rmas, ==, 4);
        g_assert_cmpuint(acme->guaranteed_rmas, ==, 1);
        g_assert_cmpuint(g_strv_length(acme->domains), ==, 2);
        g_assert_cmpstr(acme->domains[1], ==, "build-*");
        g_assert_cmpstr(acme->file, ==, "10-a.conf");
        g_assert_cmpuint(acme->line, ==, 5);
        shared = policy_find_tenant(p, "shared");
        g_assert_cmpuint(shared->max_rmas, ==, POLICY_UNLIMITED);
        g_assert_cmpuint(shared->guaranteed_rmas, ==, 0);
        g_assert_null(policy_find_tenant(p, "nobody"));
}

static void test_parse_errors(void) {
        const struct {
                const char *text;
                const char *want;
        } cases[] = {
                { "[Tenant a]\nMaxRmas=-1\n", "f.conf:2: [Tenant a] MaxRmas=-1 is invalid; allowed: a whole number from 0 to 65536" },
                { "[Tenant a]\nMaxRmas=65537\n", "f.conf:2: [Tenant a] MaxRmas=65537" },
                { "[Tenant a]\n\nGuaranteedRmas=two\n", "f.conf:3: [Tenant a] GuaranteedRmas=two is invalid" },
                { "[Tenant a]\nMaxRMAs=1\n", "f.conf:2: [Tenant a] has no key MaxRMAs; allowed: MaxRmas, GuaranteedRmas, Domains, Users, Groups" },
                { "[Tenant a]\nMaxRmas[de]=1\n", "f.conf:2: [Tenant a] has no key MaxRmas[de]" },
                { "[Quota]\nMaxRmas=1\n", "f.conf:1: unknown section [Quota]; allowed: [Defaults], [Tenant NAME]" },
                { "[Tenant]\n", "f.conf:1: unknown section [Tenant]" },
                { "[Broker]\nCount=8\n", "f.conf:1: unknown section [Broker]" },
                { "[Tenant a]\nMaxRmas=1\nMaxRmas=2\n", "f.conf:3: [Tenant a] MaxRmas is set twice (first at line 2)" },
                { "[Tenant a]\n[Tenant b]\n[Tenant a]\n", "f.conf:3: [Tenant a] appears twice in this file (first at line 1)" },
                { "MaxRmas=1\n[Tenant a]\n", "f.conf:1: 'MaxRmas=1' stands before any section" },
                { "[Tenant a]\njust words\n", "f.conf:2: 'just words' is neither [Section], Key=Value nor a # comment" },
                { "[Tenant a b]\n", "f.conf:1: [Tenant a b]: 'a b' is not a tenant name" },
                { "[Tenant a]x\n", "f.conf:1: '[Tenant a]x' is not a section header" },
                { "[Defaults]\nTenant=no way\n", "f.conf:2: [Defaults] Tenant=no way is not a tenant name" },
                { "[Defaults]\nDefault=a\n", "f.conf:2: [Defaults] has no key Default; allowed: Tenant" },
                { "[Tenant a]\nMaxRmas=1\xff\n", "f.conf: is not valid UTF-8 text" },
                { "[Tenant a]\nMaxRmas=4    # hard cap\n", "f.conf:2: 'MaxRmas=4    # hard cap': a comment must stand on a line of its own" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(Policy) p = policy_new();
                g_autofree char *errs = parse(p, "f.conf", cases[i].text, false);
                assert_contains(errs, cases[i].want);
        }
}

static void test_parse_nul_and_daemon_config(void) {
        g_autoptr(Policy) p = policy_new();
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        static const char nul[] = "[Tenant a]\nMaxRmas=1\0\n";
        g_autofree char *errs = NULL;

        policy_parse_text(p, "n.conf", nul, sizeof(nul) - 1, false, errors);
        g_assert_cmpuint(errors->len, ==, 1);
        assert_contains(g_ptr_array_index(errors, 0), "NUL byte");

        /* rma-brokerd.conf may carry [Broker] next to policy sections. */
        errs = parse(p, "rma-brokerd.conf", "[Broker]\nCount=8\n[Tenant b]\nMaxRmas=1\n", true);
        g_assert_cmpstr(errs, ==, "");
        g_assert_nonnull(policy_find_tenant(p, "b"));
}

static char *validate(const Policy *p, uint32_t pool) {
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);

        policy_validate(p, pool, errors);
        g_ptr_array_add(errors, NULL);
        return g_strjoinv("\n", (char **) errors->pdata);
}

static void test_validate(void) {
        g_autoptr(Policy) p = policy_new();
        g_autofree char *e1 = parse(p, "a.conf", "[Tenant a]\nGuaranteedRmas=5\n[Tenant b]\nMaxRmas=2\nGuaranteedRmas=3\n"
                                    "[Tenant c]\nGuaranteedRmas=1\n[Defaults]\nTenant=zz\n", false);
        g_autofree char *e2 = NULL, *e3 = NULL, *e4 = NULL;

        g_assert_cmpstr(e1, ==, "");
        e2 = validate(p, 8);
        assert_contains(e2, "a.conf:5: [Tenant b] GuaranteedRmas=3 is more than its MaxRmas=2 (line 4)");
        /* 5 + 3 + 1 = 9 > 8: every contributor is named, at its key's line. */
        assert_contains(e2, "GuaranteedRmas add up to 9 but the pool has only 8 RMAs: a=5 (a.conf:2), b=3 (a.conf:5), c=1 (a.conf:7)");
        assert_contains(e2, "a.conf:9: [Defaults] Tenant=zz names no tenant");
        e3 = validate(p, 9);
        g_assert_null(strstr(e3, "add up to"));

        {
                g_autoptr(Policy) ok = policy_new();
                g_autofree char *pe = parse(ok, "b.conf", "[Tenant a]\nMaxRmas=2\nGuaranteedRmas=2\n[Tenant b]\nGuaranteedRmas=6\n", false);
                g_assert_cmpstr(pe, ==, "");
                e4 = validate(ok, 8); /* exactly the pool: fine */
                g_assert_cmpstr(e4, ==, "");
        }
}

static void test_duplicate_across_files(void) {
        g_autoptr(Policy) p = policy_new();
        g_autofree char *e1 = parse(p, "10-a.conf", "[Tenant a]\nMaxRmas=1\n", false);
        g_autofree char *e2 = parse(p, "20-b.conf", "\n[Tenant a]\nMaxRmas=2\n", false);
        g_autofree char *e3 = parse(p, "30-c.conf", "[Defaults]\nTenant=a\n", false);
        g_autofree char *e4 = parse(p, "40-d.conf", "[Defaults]\nTenant=b\n", false);

        g_assert_cmpstr(e1, ==, "");
        assert_contains(e2, "20-b.conf:2: [Tenant a] is already defined at 10-a.conf:1");
        g_assert_cmpstr(e3, ==, "");
        g_assert_cmpstr(e4, ==, "");
        /* A later [Defaults] overrides an earlier one. */
        g_assert_cmpstr(p->default_tenant, ==, "b");
        g_assert_cmpstr(p->default_file, ==, "40-d.conf");
}

static void write_file(const char *dir, const char *name, const char *text) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void test_load_dirs(void) {
        g_autofree char *root = g_dir_make_tmp("rma-policy-XXXXXX", NULL);
        g_autofree char *usr = g_build_filename(root, "usr", NULL), *etc = g_build_filename(root, "etc", NULL);
        g_autofree char *run = g_build_filename(root, "run", NULL), *conf = g_build_filename(root, "broker.conf", NULL);
        char *dirs[] = { usr, etc, run, NULL };
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(Policy) p = NULL;
        g_autofree char *cmd = NULL;

        g_mkdir(usr, 0755);
        g_mkdir(etc, 0755);
        /* run/ does not exist: that is fine. */
        write_file(usr, "50-vendor.conf", "[Tenant vendor]\nMaxRmas=1\n");
        write_file(usr, "60-masked.conf", "[Tenant masked]\nMaxRmas=1\n");
        write_file(usr, "10-base.conf", "[Tenant base]\nMaxRmas=9\n");
        write_file(etc, "10-base.conf", "[Tenant base]\nMaxRmas=3\n[Defaults]\nTenant=base\n"); /* replaces usr's */
        write_file(etc, "99-ignored.conf~", "garbage");
        write_file(etc, "README", "garbage");
        {
                g_autofree char *mask = g_build_filename(etc, "60-masked.conf", NULL);
                g_assert_cmpint(symlink("/dev/null", mask), ==, 0);   /* masks usr's file */
        }
        g_assert_true(g_file_set_contents(conf, "[Broker]\nCount=4\n[Tenant fromconf]\nMaxRmas=1\n", -1, NULL));

        g_assert_cmpint(policy_load(conf, dirs, 8, &p, errors), ==, 0);
        g_assert_cmpuint(errors->len, ==, 0);
        g_assert_cmpuint(p->tenants->len, ==, 3);
        g_assert_cmpstr(((PolicyTenant *) g_ptr_array_index(p->tenants, 0))->name, ==, "fromconf");
        g_assert_cmpstr(((PolicyTenant *) g_ptr_array_index(p->tenants, 1))->name, ==, "base");
        g_assert_cmpuint(policy_find_tenant(p, "base")->max_rmas, ==, 3);
        g_assert_cmpstr(((PolicyTenant *) g_ptr_array_index(p->tenants, 2))->name, ==, "vendor");
        g_assert_null(policy_find_tenant(p, "masked"));
        g_assert_false(p->implicit);
        g_clear_pointer(&p, policy_free);

        /* An invalid file makes the whole load fail; nothing half-applied. */
        write_file(etc, "20-bad.conf", "[Tenant x]\nMaxRmas=lots\n");
        g_assert_cmpint(policy_load(conf, dirs, 8, &p, errors), <, 0);
        g_assert_null(p);
        g_assert_cmpuint(errors->len, ==, 1);
        assert_contains(g_ptr_array_index(errors, 0), "20-bad.conf:2: [Tenant x] MaxRmas=lots");

        cmd = g_strdup_printf("rm -rf '%s'", root);
        g_assert_cmpint(system(cmd), ==, 0);
}

static void test_load_implicit_and_accounts(void) {
        char *none[] = { "/nonexistent/policy.d", NULL };
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(Policy) p = NULL, q = NULL;

        g_assert_cmpint(policy_load(NULL, none, 8, &p, errors), ==, 0);
        g_assert_true(p->implicit);
        g_assert_cmpstr(p->default_tenant, ==, POLICY_IMPLICIT_TENANT);
        g_assert_cmpuint(policy_find_tenant(p, POLICY_IMPLICIT_TENANT)->max_rmas, ==, POLICY_UNLIMITED);

        q = policy_new();
        g_free(parse(q, "u.conf", "[Tenant a]\nUsers=root;no-such-user-rma\nGroups=root;no-such-group-rma\n", false));
        policy_resolve_accounts(q, errors);
        g_assert_cmpuint(errors->len, ==, 2);
        assert_contains(g_ptr_array_index(errors, 0), "u.conf:1: [Tenant a] Users=no-such-user-rma: no user named");
        assert_contains(g_ptr_array_index(errors, 1), "Groups=no-such-group-rma: no group named");
        {
                const PolicyTenant *t = policy_find_tenant(q, "a");
                gid_t other[] = { 12345 }, root_gid[] = { 12345, 0 };
                g_assert_true(policy_tenant_allows(t, 0, NULL, 0));
                g_assert_false(policy_tenant_allows(t, 1000, other, 1));
                g_assert_true(policy_tenant_allows(t, 1000, root_gid, 2));
        }
}

static void test_tenant_for_domain(void) {
        g_autoptr(Policy) p = policy_new();
        g_autofree char *errs = parse(p, "t.conf", "[Tenant acme]\nDomains=acme-*;build-?\n[Tenant beta]\nDomains=acme-special;b*\n", false);
        g_autofree char *why = NULL, *why2 = NULL;

        g_assert_cmpstr(errs, ==, "");
        g_assert_cmpstr(policy_tenant_for_domain(p, "acme-1", NULL, NULL)->name, ==, "acme");
        g_assert_cmpstr(policy_tenant_for_domain(p, "build-7", "", NULL)->name, ==, "acme");
        g_assert_cmpstr(policy_tenant_for_domain(p, "build-77", NULL, NULL)->name, ==, "beta");
        /* The first matching glob wins, in policy order. */
        g_assert_cmpstr(policy_tenant_for_domain(p, "acme-special", NULL, NULL)->name, ==, "acme");
        /* The domain's own metadata wins over globs. */
        g_assert_cmpstr(policy_tenant_for_domain(p, "acme-1", "beta", NULL)->name, ==, "beta");
        g_assert_null(policy_tenant_for_domain(p, "acme-1", "gamma", &why));
        assert_contains(why, "names tenant 'gamma' in its rma metadata, but the policy has no [Tenant gamma]");
        g_assert_null(policy_tenant_for_domain(p, "zed", NULL, &why2));
        assert_contains(why2, "domain zed names no tenant, matches no tenant's Domains=");
        g_free(parse(p, "u.conf", "[Defaults]\nTenant=beta\n", false));
        g_assert_cmpstr(policy_tenant_for_domain(p, "zed", NULL, NULL)->name, ==, "beta");
}

static PolicyVerdict decide(const Policy *p, const char *tenant, const TenantUsage *u, size_t n, uint32_t free_slots,
                            char **msg) {
        return policy_decide_reserve(p, policy_find_tenant(p, tenant), u, n, free_slots, 8, msg);
}

static void test_decide(void) {
        g_autoptr(Policy) p = policy_new();
        g_autofree char *errs = parse(p, "d.conf", "[Tenant a]\nMaxRmas=3\nGuaranteedRmas=2\n[Tenant b]\nGuaranteedRmas=1\n"
                                      "[Tenant c]\n[Tenant off]\nMaxRmas=0\n", false);
        TenantUsage u[] = { { "a", 2, 1 }, { "c", 3, 0 } };
        g_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL;

        g_assert_cmpstr(errs, ==, "");
        /* a holds 3 = MaxRmas. */
        g_assert_cmpint(decide(p, "a", u, 2, 2, &m1), ==, POLICY_QUOTA_EXCEEDED);
        assert_contains(m1, "tenant a holds 3 of its MaxRmas=3 (2 leased, 1 reserved)");
        assert_contains(m1, "raise MaxRmas in d.conf:2");
        g_assert_cmpint(decide(p, "off", u, 2, 2, &m4), ==, POLICY_QUOTA_EXCEEDED);
        /* 2 free, b is owed 1: c may take one, not two. */
        g_assert_cmpint(decide(p, "c", u, 2, 2, NULL), ==, POLICY_ALLOW);
        g_assert_cmpint(decide(p, "c", u, 2, 1, &m2), ==, POLICY_POOL_EXHAUSTED);
        assert_contains(m2, "the 1 free RMAs of 8 are held back for the guarantees of b (1 owed)");
        /* b may take the last free one: it is its own. */
        g_assert_cmpint(decide(p, "b", u, 2, 1, NULL), ==, POLICY_ALLOW);
        g_assert_cmpint(decide(p, "b", u, 2, 0, &m3), ==, POLICY_POOL_EXHAUSTED);
        assert_contains(m3, "all 8 RMAs of the pool are taken");
        g_assert_cmpuint(policy_owed_to_others(p, NULL, u, 2), ==, 1);
        g_assert_cmpuint(policy_owed_to_others(p, policy_find_tenant(p, "b"), u, 2), ==, 0);
}

/* After a reload, slots of a removed tenant count toward no guarantee: fewer slots may be
 * free than the guarantees still owed. A tenant below its guarantee still gets a free one. */
static void test_guarantee_after_reload(void) {
        g_autoptr(Policy) p = policy_new();
        g_autofree char *errs = parse(p, "r.conf", "[Tenant a]\nGuaranteedRmas=2\n[Tenant b]\nGuaranteedRmas=2\n[Tenant c]\n", false);
        TenantUsage u[] = { { "removed", 2, 0 } };

        g_assert_cmpstr(errs, ==, "");
        /* Pool of 4, 2 free, 4 owed. */
        g_assert_cmpint(policy_decide_reserve(p, policy_find_tenant(p, "a"), u, 1, 2, 4, NULL), ==, POLICY_ALLOW);
        g_assert_cmpint(policy_decide_reserve(p, policy_find_tenant(p, "b"), u, 1, 2, 4, NULL), ==, POLICY_ALLOW);
        /* A tenant without a guarantee still waits for the guaranteed ones. */
        g_assert_cmpint(policy_decide_reserve(p, policy_find_tenant(p, "c"), u, 1, 2, 4, NULL), ==, POLICY_POOL_EXHAUSTED);
}

/* Random reserve/release traffic through the decision function: no tenant ever exceeds
 * its cap, and a tenant below its guarantee is never refused while a slot is free. */
static void test_guarantee_simulation(void) {
        g_autoptr(Policy) p = policy_new();
        g_autofree char *errs = parse(p, "s.conf", "[Tenant a]\nMaxRmas=3\nGuaranteedRmas=2\n[Tenant b]\nMaxRmas=4\nGuaranteedRmas=1\n"
                                      "[Tenant c]\n[Tenant d]\nMaxRmas=2\nGuaranteedRmas=2\n", false);
        const char *names[] = { "a", "b", "c", "d" };
        TenantUsage u[] = { { "a", 0, 0 }, { "b", 0, 0 }, { "c", 0, 0 }, { "d", 0, 0 } };
        const uint32_t pool = 8;
        GRand *rand = g_rand_new_with_seed(42);
        unsigned granted = 0, refused = 0;

        g_assert_cmpstr(errs, ==, "");
        for (int step = 0; step < 100000; step++) {
                size_t i = (size_t) g_rand_int_range(rand, 0, 4);
                const PolicyTenant *t = policy_find_tenant(p, names[i]);
                uint32_t used = 0, free_slots;

                for (size_t j = 0; j < 4; j++)
                        used += u[j].reserved;
                free_slots = pool - used;
                if (g_rand_boolean(rand) || u[i].reserved == 0) {
                        PolicyVerdict v = policy_decide_reserve(p, t, u, 4, free_slots, pool, NULL);
                        if (v == POLICY_ALLOW) {
                                g_assert_cmpuint(free_slots, >, 0);
                                u[i].reserved++;
                                granted++;
                        } else {
                                refused++;
                                /* A guarantee is never broken. */
                                g_assert_false(u[i].reserved < t->guaranteed_rmas);
                        }
                } else
                        u[i].reserved--;
                for (size_t j = 0; j < 4; j++) {
                        const PolicyTenant *tj = policy_find_tenant(p, names[j]);
                        if (tj->max_rmas != POLICY_UNLIMITED)
                                g_assert_cmpuint(u[j].reserved, <=, tj->max_rmas);
                }
        }
        g_assert_cmpuint(granted, >, 1000);
        g_assert_cmpuint(refused, >, 1000);
        g_rand_free(rand);
}

/* Nova instances: the flavor opts in, the project names the tenant. */
static void test_nova(void) {
        g_autoptr(Policy) p = policy_new();
        g_autoptr(Policy) bad = policy_new();
        g_autofree char *errs = parse(p, "n.conf", "[Tenant acme]\nNovaFlavors=rma.*;ppc.rma\n"
                                      "NovaProjects=4f6c0a1e-2b3d-4c5e-8f9a-0b1c2d3e4f50\n"
                                      "[Tenant beta]\nNovaProjects=9a8b7c6d5e4f40302a1b0c9d8e7f6a5b\n", false);
        g_autofree char *bad_errs = parse(bad, "b.conf", "[Tenant x]\nNovaProjects=not-a-project\n", false);

        g_assert_cmpstr(errs, ==, "");
        /* Dashes or none, any case: the same project. */
        g_assert_cmpstr(policy_tenant_for_nova(p, "rma.small", "4F6C0A1E2B3D4C5E8F9A0B1C2D3E4F50")->name, ==, "acme");
        g_assert_cmpstr(policy_tenant_for_nova(p, "ppc.rma", "9a8b7c6d5e4f40302a1b0c9d8e7f6a5b")->name, ==, "beta");
        /* An unmapped project: the tenant whose flavor pattern matched. */
        g_assert_cmpstr(policy_tenant_for_nova(p, "rma.big", "00000000000000000000000000000000")->name, ==, "acme");
        g_assert_cmpstr(policy_tenant_for_nova(p, "rma.big", NULL)->name, ==, "acme");
        /* A flavor no tenant names is not opted in, whatever its project. */
        g_assert_null(policy_tenant_for_nova(p, "m1.small", "9a8b7c6d5e4f40302a1b0c9d8e7f6a5b"));
        g_assert_null(policy_tenant_for_nova(p, NULL, NULL));
        assert_contains(bad_errs, "b.conf:2: [Tenant x] NovaProjects=not-a-project is not a Keystone project id");
}

/* policy_tenant_headroom() is exactly how many Reserves in a row policy_decide_reserve()
 * grants the tenant, from every state a random walk reaches. */
static void test_headroom_matches_decide(void) {
        g_autoptr(Policy) p = policy_new();
        g_autofree char *errs = parse(p, "h.conf", "[Tenant a]\nMaxRmas=3\nGuaranteedRmas=2\n[Tenant b]\nMaxRmas=4\n"
                                      "GuaranteedRmas=1\n[Tenant c]\n[Tenant d]\nMaxRmas=2\nGuaranteedRmas=2\n", false);
        const char *names[] = { "a", "b", "c", "d" };
        TenantUsage u[] = { { "a", 0, 0 }, { "b", 0, 0 }, { "c", 0, 0 }, { "d", 0, 0 } };
        const uint32_t pool = 8;
        GRand *rand = g_rand_new_with_seed(4242);

        g_assert_cmpstr(errs, ==, "");
        for (int step = 0; step < 20000; step++) {
                size_t i = (size_t) g_rand_int_range(rand, 0, 4);
                const PolicyTenant *t = policy_find_tenant(p, names[i]);
                uint32_t used = 0, free_slots, headroom, granted = 0;
                TenantUsage sim[4];

                for (size_t j = 0; j < 4; j++)
                        used += u[j].reserved;
                free_slots = pool - used;
                headroom = policy_tenant_headroom(p, t, u, 4, free_slots);
                memcpy(sim, u, sizeof(u));
                while (policy_decide_reserve(p, t, sim, 4, free_slots - granted, pool, NULL) == POLICY_ALLOW) {
                        sim[i].reserved++;
                        granted++;
                }
                g_assert_cmpuint(headroom, ==, granted);
                /* Walk on: a Reserve if granted, or a Release. */
                if ((g_rand_boolean(rand) || u[i].reserved == 0) &&
                    policy_decide_reserve(p, t, u, 4, free_slots, pool, NULL) == POLICY_ALLOW)
                        u[i].reserved++;
                else if (u[i].reserved > 0)
                        u[i].reserved--;
        }
        g_rand_free(rand);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/policy/parse-valid", test_parse_valid);
        g_test_add_func("/policy/parse-errors", test_parse_errors);
        g_test_add_func("/policy/parse-nul-and-daemon-config", test_parse_nul_and_daemon_config);
        g_test_add_func("/policy/validate", test_validate);
        g_test_add_func("/policy/duplicate-across-files", test_duplicate_across_files);
        g_test_add_func("/policy/load-dirs", test_load_dirs);
        g_test_add_func("/policy/load-implicit-and-accounts", test_load_implicit_and_accounts);
        g_test_add_func("/policy/tenant-for-domain", test_tenant_for_domain);
        g_test_add_func("/policy/decide", test_decide);
        g_test_add_func("/policy/guarantee-simulation", test_guarantee_simulation);
        g_test_add_func("/policy/guarantee-after-reload", test_guarantee_after_reload);
        g_test_add_func("/policy/headroom-matches-decide", test_headroom_matches_decide);
        g_test_add_func("/policy/nova", test_nova);
        return g_test_run();
}
