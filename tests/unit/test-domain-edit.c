/* Unit tests of domain-xml/domain-edit.c: opting a domain in and out by XML edit. */
#include <errno.h>
#include <glib.h>
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

static void test_enable_adds_cells(void) {
        g_autofree char *in = domain("pseries-7.2", 512, 2, NULL), *out = NULL, *again = NULL;
        g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) none = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(DomainInfo) info = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(domain_edit_enable(in, WRAPPER, 256 * MIB, "acme", &out, changes, &error), ==, 0);
        g_assert_no_error(error);
        assert_contains(out, "<emulator>/usr/bin/qemu-rma</emulator>");
        assert_contains(out, "emulator=\"/usr/bin/qemu-system-ppc64\"");
        assert_contains(out, "<cell id=\"0\" cpus=\"0\" memory=\"262144\" unit=\"KiB\"/>");
        assert_contains(out, "<cell id=\"1\" cpus=\"1\" memory=\"262144\" unit=\"KiB\"/>");
        g_assert_cmpuint(changes->len, ==, 3);
        /* What the hook reads from it: opted in, for tenant acme. */
        g_assert_cmpint(domain_info_parse(out, strlen(out), &info, &error), ==, 0);
        g_assert_true(info->has_rma_metadata);
        g_assert_cmpstr(info->tenant, ==, "acme");
        g_assert_cmpstr(info->emulator, ==, WRAPPER);
        /* A second enable changes nothing. */
        g_assert_cmpint(domain_edit_enable(out, WRAPPER, 256 * MIB, NULL, &again, none, &error), ==, 0);
        g_assert_cmpuint(none->len, ==, 0);
}

static void test_enable_moves_memory_between_cells(void) {
        g_autofree char *in = domain("pseries", 768, 2,
                                     "<cpu><numa><cell id='0' cpus='0' memory='512' unit='MiB'/>"
                                     "<cell id='1' cpus='1' memory='256' unit='MiB'/></numa></cpu>");
        g_autofree char *out = NULL;
        g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(domain_edit_enable(in, WRAPPER, 256 * MIB, NULL, &out, changes, &error), ==, 0);
        assert_contains(out, "<cell id=\"0\" cpus=\"0\" memory=\"262144\" unit=\"KiB\"/>");
        assert_contains(out, "<cell id=\"1\" cpus=\"1\" memory=\"524288\" unit=\"KiB\"/>");
        assert_contains(g_ptr_array_index(changes, changes->len - 1), "cell 0 512 MiB -> 256 MiB (the RMA), cell 1 256 MiB -> 512 MiB");
}

static void test_refusals_name_the_number(void) {
        static const struct {
                const char *machine;
                unsigned mib, vcpus;
                const char *want;
        } cases[] = {
                { "mac99", 512, 2, "the domain's machine is mac99, not pseries" },
                { "pseries", 128, 2, "raise <memory> to at least 256 MiB" },
                { "pseries", 512, 1, "raise <vcpu> to 2" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *in = domain(cases[i].machine, cases[i].mib, cases[i].vcpus, NULL), *out = NULL;
                g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(domain_edit_enable(in, WRAPPER, 256 * MIB, NULL, &out, changes, &error), ==, -EINVAL);
                g_assert_null(out);
                assert_contains(error->message, cases[i].want);
        }
}

static void test_disable_restores(void) {
        g_autofree char *in = domain("pseries", 256, 1, NULL), *on = NULL, *off = NULL;
        g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(DomainInfo) info = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(domain_edit_enable(in, WRAPPER, 256 * MIB, NULL, &on, changes, &error), ==, 0);
        assert_contains(on, "<cell id=\"0\" cpus=\"0\" memory=\"262144\" unit=\"KiB\"/>");
        g_ptr_array_set_size(changes, 0);
        g_assert_cmpint(domain_edit_disable(on, &off, changes, &error), ==, 0);
        g_assert_cmpuint(changes->len, ==, 2);
        g_assert_cmpint(domain_info_parse(off, strlen(off), &info, &error), ==, 0);
        g_assert_false(info->has_rma_metadata);
        g_assert_cmpstr(info->emulator, ==, "/usr/bin/qemu-system-ppc64");
        g_assert_null(strstr(off, "rma:"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/domain-edit/enable-adds-cells", test_enable_adds_cells);
        g_test_add_func("/domain-edit/enable-moves-memory", test_enable_moves_memory_between_cells);
        g_test_add_func("/domain-edit/refusals", test_refusals_name_the_number);
        g_test_add_func("/domain-edit/disable", test_disable_restores);
        return g_test_run();
}
