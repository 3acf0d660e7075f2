/* Unit tests of the hook's domain XML reader (libvirt-plugin/domain-xml.c). */
#include <glib.h>
#include <string.h>

#include "domain-xml.h"

static DomainInfo *parse(const char *xml) {
        g_autoptr(GError) error = NULL;
        DomainInfo *d = NULL;

        g_assert_cmpint(domain_info_parse(xml, strlen(xml), &d, &error), ==, 0);
        g_assert_no_error(error);
        return d;
}

static void test_opted_in(void) {
        g_autoptr(DomainInfo) d = parse(
                "<domain type='qemu' id='3'>\n"
                "  <name>rma-e2e</name>\n"
                "  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>\n"
                "  <metadata>\n"
                "    <other:thing xmlns:other='http://example.org/x' tenant='nope'/>\n"
                "    <rma:rma xmlns:rma=\"http://rmabroker.org/schemas/domain/1\" tenant=\"acme\"/>\n"
                "  </metadata>\n"
                "  <devices><emulator>/usr/bin/qemu-system-ppc64</emulator></devices>\n"
                "</domain>\n");

        g_assert_cmpstr(d->name, ==, "rma-e2e");
        g_assert_cmpstr(d->uuid, ==, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
        g_assert_cmpstr(d->emulator, ==, "/usr/bin/qemu-system-ppc64");
        g_assert_true(d->has_rma_metadata);
        g_assert_cmpstr(d->tenant, ==, "acme");
        g_assert_true(domain_info_wants_rma(d));
}

static void test_by_emulator(void) {
        g_autoptr(DomainInfo) d = parse(
                "<domain type='qemu'><name>a</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>"
                "<devices><emulator>/usr/bin/qemu-rma</emulator></devices></domain>");

        g_assert_false(d->has_rma_metadata);
        g_assert_null(d->tenant);
        g_assert_true(domain_info_wants_rma(d));
}

static void test_not_ours(void) {
        /* Same local name, other namespace; and an rma element outside <metadata>. */
        g_autoptr(DomainInfo) d = parse(
                "<domain type='qemu'><name>plain</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>"
                "<metadata><x:rma xmlns:x='http://example.org/other' tenant='t'/></metadata>"
                "<description><rma:rma xmlns:rma='http://rmabroker.org/schemas/domain/1'/></description>"
                "<devices><emulator>/usr/bin/qemu-system-ppc64</emulator></devices></domain>");

        g_assert_false(d->has_rma_metadata);
        g_assert_false(domain_info_wants_rma(d));
}

static void test_refusals(void) {
        const char *bad[] = {
                "",
                "<domain><name>x</name>",
                "<network><name>x</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></network>",
                "<domain><name>x</name></domain>",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;
                DomainInfo *d = NULL;
                g_assert_cmpint(domain_info_parse(bad[i], strlen(bad[i]), &d, &error), <, 0);
                g_assert_nonnull(error);
                g_assert_null(d);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/domain-xml/opted-in", test_opted_in);
        g_test_add_func("/domain-xml/by-emulator", test_by_emulator);
        g_test_add_func("/domain-xml/not-ours", test_not_ours);
        g_test_add_func("/domain-xml/refusals", test_refusals);
        return g_test_run();
}
