/* Unit tests of the hook's domain XML reader (domain-xml/domain-xml.c). */
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

/* What Nova 26 writes: <nova:instance> with the flavor's name and the owner's project. */
static void test_nova_metadata(void) {
        g_autoptr(DomainInfo) d = parse(
                "<domain type=\"qemu\">\n"
                "  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>\n"
                "  <name>instance-00000007</name>\n"
                "  <metadata>\n"
                "    <nova:instance xmlns:nova=\"http://openstack.org/xmlns/libvirt/nova/1.1\">\n"
                "      <nova:name>vm-1</nova:name>\n"
                "      <nova:flavor name=\"rma.small\"><nova:memory>512</nova:memory></nova:flavor>\n"
                "      <nova:owner>\n"
                "        <nova:user uuid=\"0123456789ab4cdeb0123456789abcde\">admin</nova:user>\n"
                "        <nova:project uuid=\"4f6c0a1e2b3d4c5e8f9a0b1c2d3e4f50\">acme</nova:project>\n"
                "      </nova:owner>\n"
                "    </nova:instance>\n"
                "  </metadata>\n"
                "</domain>\n");
        g_autoptr(DomainInfo) other = parse(
                "<domain><name>x</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><metadata>"
                "<n:instance xmlns:n='http://example.org/not-nova'><n:flavor name='rma.small'/></n:instance>"
                "</metadata></domain>");

        g_assert_cmpstr(d->nova_flavor, ==, "rma.small");
        g_assert_cmpstr(d->nova_project, ==, "4f6c0a1e2b3d4c5e8f9a0b1c2d3e4f50");
        g_assert_null(d->emulator);
        g_assert_false(domain_info_wants_rma(d));   /* the policy decides (NovaFlavors=) */
        /* Another namespace's "instance" is not Nova's. */
        g_assert_null(other->nova_flavor);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/domain-xml/opted-in", test_opted_in);
        g_test_add_func("/domain-xml/by-emulator", test_by_emulator);
        g_test_add_func("/domain-xml/not-ours", test_not_ours);
        g_test_add_func("/domain-xml/refusals", test_refusals);
        g_test_add_func("/domain-xml/nova-metadata", test_nova_metadata);
        return g_test_run();
}
