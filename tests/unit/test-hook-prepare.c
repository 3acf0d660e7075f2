/* Unit tests of what the hook front decides alone at prepare (libvirt-plugin/hook-prepare.c),
 * held against the full hook's own reader (domain-xml.c): every XML that reader would
 * opt in, or hand to the tenant policy as Nova's, must be a doubt for the front. */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "domain-xml.h"
#include "hook-prepare.h"

#define U "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"

/* Opted in for domain-xml.c, or Nova's (the policy decides): the front must not decide. */
static void test_opted_in_is_a_doubt(void) {
        static const char *const xmls[] = {
                "<domain><name>a</name><uuid>" U "</uuid><metadata>"
                "<rma:rma xmlns:rma='http://rmabroker.org/schemas/domain/1'/></metadata></domain>",
                "<domain><name>a</name><uuid>" U "</uuid><metadata>"
                "<rma xmlns='http://rmabroker.org/schemas/domain/1' tenant='t'/></metadata></domain>",
                "<domain><name>a</name><uuid>" U "</uuid><devices><emulator>/usr/bin/qemu-rma</emulator>"
                "</devices></domain>",
                "<domain><name>a</name><uuid>" U "</uuid><devices><emulator>/opt/qemu-rma-2</emulator>"
                "</devices></domain>",
                /* GMarkup joins the text around a comment, and expands character references. */
                "<domain><name>a</name><uuid>" U "</uuid><devices><emulator>/usr/bin/qemu-<!-- -->rma"
                "</emulator></devices></domain>",
                "<domain><name>a</name><uuid>" U "</uuid><devices><emulator>/usr/bin/qemu&#x2d;rma"
                "</emulator></devices></domain>",
                "<domain><name>a</name><uuid>" U "</uuid><metadata><rma:rma xmlns:rma='http://rmabroker&#46;org"
                "/schemas/domain/1'/></metadata></domain>",
                "<domain><name>a</name><uuid>" U "</uuid><metadata><nova:instance "
                "xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'><nova:flavor name='f'/>"
                "</nova:instance></metadata></domain>",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(xmls); i++) {
                g_autoptr(DomainInfo) d = NULL;
                g_autoptr(GError) error = NULL;

                g_assert_cmpint(domain_info_parse(xmls[i], strlen(xmls[i]), &d, &error), ==, 0);
                g_assert_true(domain_info_wants_rma(d) || d->nova_flavor);
                g_assert_true(hook_prepare_may_opt_in(xmls[i], strlen(xmls[i])));
        }
}

static void test_plain(void) {
        const char *xml = "<domain type='qemu'>\n  <name>plain</name>\n  <uuid>" U "</uuid>\n"
                          "  <devices><emulator>/usr/bin/qemu-system-ppc64</emulator></devices>\n</domain>\n";
        char uuid[RMA_UUID_STRING_LEN + 1];

        g_assert_false(hook_prepare_may_opt_in(xml, strlen(xml)));
        g_assert_cmpint(hook_prepare_find_uuid(xml, strlen(xml), uuid), ==, 0);
        g_assert_cmpstr(uuid, ==, U);
        /* A NUL hides the rest from strstr(), not from the front. */
        g_assert_true(hook_prepare_may_opt_in("<domain>\0qemu-rma", 17));
}

static void test_uuid(void) {
        static const struct {
                const char *xml;
                const char *uuid;   /* NULL: a doubt */
        } cases[] = {
                { "<domain><uuid> 4DEA22B3-1D52-D8F3-2516-782E98AB3FA0\n</uuid></domain>", U },
                { "<domain><uuid>" U "</uuid><uuid>" U "</uuid></domain>", NULL },
                { "<domain><uuid>" U "</uuid><x><uuidx/></x></domain>", NULL },
                { "<domain><uuid id='1'>" U "</uuid></domain>", NULL },
                { "<domain><uuid/></domain>", NULL },
                { "<domain><uuid>" U, NULL },
                { "<domain><uuid>" U "</uuidx></domain>", NULL },
                { "<domain><uuid>not-a-uuid</uuid></domain>", NULL },
                { "<domain><name>x</name></domain>", NULL },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                char uuid[RMA_UUID_STRING_LEN + 1];
                int r = hook_prepare_find_uuid(cases[i].xml, strlen(cases[i].xml), uuid);

                if (cases[i].uuid) {
                        g_assert_cmpint(r, ==, 0);
                        g_assert_cmpstr(uuid, ==, cases[i].uuid);
                } else
                        g_assert_cmpint(r, ==, -EINVAL);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/hook-prepare/opted-in-is-a-doubt", test_opted_in_is_a_doubt);
        g_test_add_func("/hook-prepare/plain", test_plain);
        g_test_add_func("/hook-prepare/uuid", test_uuid);
        return g_test_run();
}
