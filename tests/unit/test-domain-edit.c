/* Unit tests of domain-xml/domain-edit.c: opting a domain in and out by XML edit. */
#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <string.h>

#include "domain-edit.h"
#include "domain-xml.h"

#define MIB (UINT64_C(1) << 20)
#define WRAPPER "/usr/bin/qemu-rma"

static char *domain(const char *machine, unsigned mib, unsigned vcpus, const char *numa) {
        return g_strdup_printf("<domain type='qemu'><name>web-1</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>"
                               "<memory unit='MiB'>%u</memory><vcpu placement='static'>%u</vcpu>"
                               "<os><type arch='ppc64' machine='%s'>hvm</type></os>%s"
                               "<devices><emulator>/usr/bin/qemu-system-ppc64</emulator></devices></domain>",
                               mib, vcpus, machine, numa ? numa : "");
}

static void assert_contains(const char *text, const char *want) {
        if (!strstr(text, want))
                g_error("expected '%s' in:\n%s", want, text);
}

/* 0.2.0's enable of a 512 MiB, 2-vCPU domain without cells, verbatim as libvirt kept it. */
#define CELLS_020 "<cpu><numa><cell id='0' cpus='0' memory='262144' unit='KiB'/>" \
                  "<cell id='1' cpus='1' memory='262144' unit='KiB'/></numa></cpu>"
#define METADATA_020 "<metadata><rma:rma xmlns:rma='http://rmabroker.org/schemas/domain/1' " \
                     "emulator='/usr/bin/qemu-system-ppc64'/></metadata>"

static char *enabled_by_020(const char *cells) {
        g_autofree char *plain = domain("pseries", 512, 2, cells);
        char *at = strstr(plain, "<memory");
        g_autofree char *head = g_strndup(plain, (gsize) (at - plain));

        return g_strdup_printf("%s" METADATA_020 "%s", head, at);
}

static void test_enable_writes_only_the_opt_in(void) {
        static const char *const numas[] = { NULL, "<cpu><numa><cell id='0' cpus='0' memory='512' unit='MiB'/>"
                                                    "<cell id='1' cpus='1' memory='512' unit='MiB'/></numa></cpu>" };

        for (size_t i = 0; i < G_N_ELEMENTS(numas); i++) {
                g_autofree char *in = domain("pseries-7.2", 1024, 2, numas[i]), *out = NULL, *again = NULL;
                g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
                g_autoptr(GPtrArray) none = g_ptr_array_new_with_free_func(g_free);
                g_autoptr(DomainInfo) info = NULL;
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(domain_edit_enable(in, WRAPPER, "acme", 256 * MIB, &out, changes, &error), ==, 0);
                g_assert_no_error(error);
                assert_contains(out, "<emulator>/usr/bin/qemu-rma</emulator>");
                assert_contains(out, "emulator=\"/usr/bin/qemu-system-ppc64\"");
                g_assert_cmpuint(changes->len, ==, 2);
                if (numas[i])
                        assert_contains(out, "<cell id=\"1\" cpus=\"1\" memory=\"512\" unit=\"MiB\"/>");
                else
                        g_assert_null(strstr(out, "<cpu"));
                /* What the hook reads from it: opted in, for tenant acme. */
                g_assert_cmpint(domain_info_parse(out, strlen(out), &info, &error), ==, 0);
                g_assert_true(info->has_rma_metadata);
                g_assert_cmpstr(info->tenant, ==, "acme");
                g_assert_cmpstr(info->emulator, ==, WRAPPER);
                /* A second enable changes nothing. */
                g_assert_cmpint(domain_edit_enable(out, WRAPPER, NULL, 256 * MIB, &again, none, &error), ==, 0);
                g_assert_cmpuint(none->len, ==, 0);
        }
}

/* 0.2.0's cells go at enable and at disable; cells of any other shape are the admin's. */
static void test_removes_only_020_cells(void) {
        static const struct {
                const char *cells;
                bool removed;
        } cases[] = {
                { CELLS_020, true },
                { "<cpu mode='custom' match='exact' check='none'><numa><cell id='0' cpus='0' memory='262144' unit='KiB'/>"
                  "<cell id='1' cpus='1' memory='262144' unit='KiB'/></numa></cpu>", true },
                /* The admin's: cell 0 not this host's RMA, other cpus, an extra attribute,
                 * another unit, not adding up. */
                { "<cpu><numa><cell id='0' cpus='0' memory='131072' unit='KiB'/>"
                  "<cell id='1' cpus='1' memory='393216' unit='KiB'/></numa></cpu>", false },
                { "<cpu><numa><cell id='0' cpus='0-1' memory='262144' unit='KiB'/>"
                  "<cell id='1' cpus='1' memory='262144' unit='KiB'/></numa></cpu>", false },
                { "<cpu><numa><cell id='0' cpus='0' memory='262144' unit='KiB' memAccess='shared'/>"
                  "<cell id='1' cpus='1' memory='262144' unit='KiB'/></numa></cpu>", false },
                { "<cpu><numa><cell id='0' cpus='0' memory='256' unit='MiB'/>"
                  "<cell id='1' cpus='1' memory='256' unit='MiB'/></numa></cpu>", false },
                { "<cpu><numa><cell id='0' cpus='0' memory='262144' unit='KiB'/>"
                  "<cell id='1' cpus='1' memory='131072' unit='KiB'/></numa></cpu>", false },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
                for (int disable = 0; disable <= 1; disable++) {
                        g_autofree char *in = enabled_by_020(cases[i].cells), *out = NULL;
                        g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
                        g_autoptr(GError) error = NULL;
                        bool said = false;

                        if (disable)
                                g_assert_cmpint(domain_edit_disable(in, 256 * MIB, &out, changes, &error), ==, 0);
                        else
                                g_assert_cmpint(domain_edit_enable(in, WRAPPER, NULL, 256 * MIB, &out, changes, &error), ==, 0);
                        for (guint k = 0; k < changes->len; k++)
                                said = said || strstr(g_ptr_array_index(changes, k), "which rma-broker 0.2.0 added");
                        g_assert_cmpint(said, ==, cases[i].removed);
                        g_assert_cmpint(strstr(out, "<numa") == NULL, ==, cases[i].removed);
                        g_assert_cmpint(strstr(out, "<cpu") == NULL, ==, cases[i].removed);
                }
        /* Without our metadata nothing is 0.2.0's. */
        {
                g_autofree char *in = domain("pseries", 512, 2, CELLS_020), *out = NULL;
                g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(domain_edit_disable(in, 256 * MIB, &out, changes, &error), ==, 0);
                g_assert_cmpuint(changes->len, ==, 0);
                assert_contains(out, "<numa>");
        }
}

static void test_layout(void) {
        g_autofree char *flat = domain("pseries", 1024, 2, NULL), *exact = domain("pseries", 256, 1, NULL);
        g_autofree char *cells = domain("pseries", 1024, 2, "<cpu><numa><cell id='0' cpus='0' memory='512' unit='MiB'/>"
                                                         "<cell id='1' cpus='1' memory='512' unit='MiB'/></numa></cpu>");
        g_autofree char *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL, *t5 = NULL;
        g_autoptr(GError) e1 = NULL, e2 = NULL;

        g_assert_cmpint(domain_edit_layout(flat, 256 * MIB, &t1, NULL), ==, 0);
        assert_contains(t1, "guest memory 0-256 MiB (boot memory, the guest's memory@0) is the RMA; the other 768 MiB "
                            "of its memory is a pc-dimm on node 0");
        g_assert_cmpint(domain_edit_layout(cells, 256 * MIB, &t2, NULL), ==, 0);
        assert_contains(t2, "the other 256 MiB of NUMA cell 0 is a pc-dimm on node 0; every other cell as the XML says");
        g_assert_cmpint(domain_edit_layout(exact, 256 * MIB, &t3, NULL), ==, 0);
        assert_contains(t3, "(all its memory, the guest's memory@0) is the RMA");
        g_assert_cmpint(domain_edit_layout(flat, 64 * MIB, &t4, &e1), ==, -EINVAL);
        assert_contains(e1->message, "no pseries guest can use an RMA of 64 MiB");
        assert_contains(e1->message, "kvm_rma_size=256M");
        g_assert_cmpint(domain_edit_layout(exact, 512 * MIB, &t5, &e2), ==, -EINVAL);
        assert_contains(e2->message, "give it at least 512 MiB");
}

static void test_refuses_other_machines(void) {
        g_autofree char *in = domain("mac99", 512, 2, NULL), *out = NULL;
        g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(domain_edit_enable(in, WRAPPER, NULL, 256 * MIB, &out, changes, &error), ==, -EINVAL);
        g_assert_null(out);
        assert_contains(error->message, "the domain's machine is mac99, not pseries");
}

static void test_disable_restores(void) {
        g_autofree char *in = domain("pseries", 256, 1, NULL), *on = NULL, *off = NULL;
        g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(DomainInfo) info = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(domain_edit_enable(in, WRAPPER, NULL, 256 * MIB, &on, changes, &error), ==, 0);
        g_ptr_array_set_size(changes, 0);
        g_assert_cmpint(domain_edit_disable(on, 256 * MIB, &off, changes, &error), ==, 0);
        g_assert_cmpuint(changes->len, ==, 2);
        g_assert_cmpint(domain_info_parse(off, strlen(off), &info, &error), ==, 0);
        g_assert_false(info->has_rma_metadata);
        g_assert_cmpstr(info->emulator, ==, "/usr/bin/qemu-system-ppc64");
        g_assert_null(strstr(off, "rma:"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/domain-edit/enable-writes-only-the-opt-in", test_enable_writes_only_the_opt_in);
        g_test_add_func("/domain-edit/removes-only-020-cells", test_removes_only_020_cells);
        g_test_add_func("/domain-edit/layout", test_layout);
        g_test_add_func("/domain-edit/refuses-other-machines", test_refuses_other_machines);
        g_test_add_func("/domain-edit/disable", test_disable_restores);
        return g_test_run();
}
