/* rmactl domain enable|disable|show DOMAIN [--tenant=T] [--connect=URI] [--dry-run]
 * [--emulator=PATH] [--size=SIZE]: opt a libvirt domain in to rma-broker and out again
 * by editing its persistent definition through the libvirt API (domain-edit.c does the
 * edit), and show how it stands. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "broker-config.h"
#include "domain-edit.h"
#include "domain-xml.h"
#include "policy-load.h"
#include "rma-client.h"
#include "rma-config.h"
#include "rma-names.h"
#include "rma-util.h"
#include "rmactl-domain.h"

#define DEFAULT_WRAPPER RMA_BINDIR "/qemu-rma"

static void virt_quiet(void *opaque, virErrorPtr e) {
        (void) opaque;
        (void) e;   /* we print the last error ourselves, once */
}

static int virt_fail(const char *what) {
        const char *msg = virGetLastErrorMessage();
        fprintf(stderr, "rmactl domain: %s: %s\n", what, msg ? msg : "unknown error");
        return 1;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virConnect, virConnectClose)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)

/* The XML with the old and the new definition side by side, as `diff -u` shows it. */
static int print_diff(const char *name, const char *before, const char *after) {
        g_autofree char *dir = g_dir_make_tmp("rmactl-XXXXXX", NULL);
        g_autofree char *a = NULL, *b = NULL, *out = NULL, *label_a = NULL, *label_b = NULL;
        g_autoptr(GError) error = NULL;
        int status = 0;

        if (!dir)
                return -EIO;
        a = g_build_filename(dir, "a.xml", NULL);
        b = g_build_filename(dir, "b.xml", NULL);
        label_a = g_strdup_printf("%s (now)", name);
        label_b = g_strdup_printf("%s (enabled)", name);
        if (g_file_set_contents(a, before, -1, &error) && g_file_set_contents(b, after, -1, &error)) {
                const char *argv[] = { "diff", "-u", "--label", label_a, "--label", label_b, a, b, NULL };
                if (g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, &status, &error))
                        fputs(out, stdout);
        }
        g_unlink(a);
        g_unlink(b);
        g_rmdir(dir);
        if (error)
                fprintf(stderr, "rmactl domain: cannot show the change: %s\n", error->message);
        return error ? -EIO : 0;
}

static int rma_size_from_broker(sd_bus *bus, uint64_t *ret) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;

        if (!bus)
                return -ENOTCONN;
        return rma_client_get_u64(bus, "RmaSize", ret, &e);
}

/* How the policy picks the domain's tenant, in words. */
static char *tenant_rule(const DomainInfo *d, uint32_t pool, char **policy_dirs) {
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(Policy) p = NULL;
        g_autofree char *why = NULL;
        const PolicyTenant *t;
        const char *glob = NULL;

        if (broker_config_load_policy(NULL, policy_dirs, pool, &p, errors) < 0)
                return g_strdup("(the tenant policy does not load; see rmactl check-policy)");
        t = policy_tenant_for_domain_by(p, d->name, d->tenant, &glob, &why);
        if (!t)
                return g_strdup_printf("none: %s", why);
        if (d->tenant && *d->tenant)
                return g_strdup_printf("%s, named by its rma:rma metadata", t->name);
        if (glob)
                return g_strdup_printf("%s, by its Domains=%s (%s:%u)", t->name, glob, t->file, t->line);
        return g_strdup_printf("%s, the default tenant ([Defaults] Tenant=%s%s%s)", t->name, t->name,
                               p->default_file ? " in " : "", p->default_file ? p->default_file : "");
}

/* How the wrapper will lay out its memory: from the XML and this host's RMA size. */
static void print_layout(const char *xml, uint64_t size) {
        g_autoptr(GError) error = NULL;
        g_autofree char *text = NULL;

        if (!size)
                printf("Layout:    (the RMA size is unknown: rma-brokerd does not answer; pass --size=)\n");
        else if (domain_edit_layout(xml, size, &text, &error) < 0)
                printf("Layout:    cannot start with an RMA: %s\n", error->message);
        else
                printf("Layout:    %s\n", text);
}

static void print_lease(sd_bus *bus, const char *uuid) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *state = NULL, *tenant = NULL;
        uint32_t slot, pid;

        if (!bus || rma_client_find(bus, uuid, &slot, &state, &pid, &tenant, &e) < 0)
                printf("Lease:     (rma-brokerd does not answer on the system bus)\n");
        else if (!state)
                printf("Lease:     none\n");
        else if (pid)
                printf("Lease:     slot %u, %s by pid %u (tenant %s)\n", slot, state, pid, tenant);
        else
                printf("Lease:     slot %u, %s (tenant %s)\n", slot, state, tenant);
}

int rmactl_domain(sd_bus *bus, int argc, char *argv[]) {
        g_autofree char *opt_tenant = NULL, *opt_connect = NULL, *opt_emulator = NULL, *opt_size = NULL;
        gboolean opt_dry_run = FALSE;
        g_auto(GStrv) opt_policy_dirs = NULL;
        const GOptionEntry entries[] = {
                { "tenant", 0, 0, G_OPTION_ARG_STRING, &opt_tenant, "Tenant to name in the domain's metadata", "NAME" },
                { "connect", 'c', 0, G_OPTION_ARG_STRING, &opt_connect, "libvirt URI (default: libvirt's own)", "URI" },
                { "dry-run", 0, 0, G_OPTION_ARG_NONE, &opt_dry_run, "Show the change as a diff of the domain XML, change nothing", NULL },
                { "emulator", 0, 0, G_OPTION_ARG_FILENAME, &opt_emulator, "The wrapper (default " DEFAULT_WRAPPER ")", "PATH" },
                { "size", 0, 0, G_OPTION_ARG_STRING, &opt_size, "RMA size when rma-brokerd is not running (to check and show the layout)", "SIZE" },
                { "policy-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_policy_dirs,
                  "show: read the tenant policy from DIR instead of the standard directories", "DIR" },
                { NULL, 0, 0, 0, NULL, NULL, NULL },
        };
        g_autoptr(GOptionContext) ctx = g_option_context_new("enable|disable|show DOMAIN");
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(DomainInfo) info = NULL;
        g_autoptr(virConnect) conn = NULL;
        g_autoptr(virDomain) dom = NULL;
        g_autofree char *xml = NULL, *new_xml = NULL;
        const char *verb, *name;
        uint64_t size = 0;
        int r, running;

        g_option_context_add_main_entries(ctx, entries, NULL);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                fprintf(stderr, "rmactl domain: %s\n", error->message);
                return 2;
        }
        if (argc != 3 || (strcmp(argv[1], "enable") != 0 && strcmp(argv[1], "disable") != 0 &&
                          strcmp(argv[1], "show") != 0)) {
                fprintf(stderr, "usage: rmactl domain enable|disable|show DOMAIN [--tenant=T] [--connect=URI] "
                                "[--dry-run] [--emulator=PATH] [--size=SIZE]\n");
                return 2;
        }
        verb = argv[1];
        name = argv[2];
        if (opt_tenant && !rma_name_is_valid(opt_tenant)) {
                fprintf(stderr, "rmactl domain: --tenant must be 1 to %d bytes without control characters\n", RMA_NAME_MAX);
                return 2;
        }

        virSetErrorFunc(NULL, virt_quiet);
        conn = virConnectOpen(opt_connect);
        if (!conn)
                return virt_fail("cannot connect to libvirt");
        dom = virDomainLookupByName(conn, name);
        if (!dom)
                dom = virDomainLookupByUUIDString(conn, name);
        if (!dom)
                return virt_fail(name);
        /* The persistent definition: what the next start uses. */
        xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
        if (!xml)
                return virt_fail("cannot read the domain's definition");
        running = virDomainIsActive(dom);
        r = domain_info_parse(xml, strlen(xml), &info, &error);
        if (r < 0) {
                fprintf(stderr, "rmactl domain: %s\n", error->message);
                return 1;
        }

        if (opt_size && rma_parse_size(opt_size, &size) < 0) {
                fprintf(stderr, "rmactl domain: --size=%s is not a size (e.g. 256M)\n", opt_size);
                return 2;
        }
        if (!opt_size && rma_size_from_broker(bus, &size) < 0)
                size = 0;

        if (strcmp(verb, "show") == 0) {
                uint32_t pool = 0;
                g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
                g_autofree char *rule = NULL;
                if (bus)
                        (void) rma_client_get_u32(bus, "TotalRmas", &pool, &e);
                printf("Domain:    %s (%s)%s\n", info->name, info->uuid, running > 0 ? ", running" : "");
                printf("Opted in:  %s\n", domain_info_wants_rma(info) ? "yes" : "no");
                printf("Emulator:  %s\n", info->emulator ? info->emulator : "(libvirt's default)");
                if (domain_info_wants_rma(info)) {
                        rule = tenant_rule(info, pool ? pool : RMA_DEFAULT_COUNT, opt_policy_dirs);
                        printf("Tenant:    %s\n", rule);
                }
                print_layout(xml, size);
                print_lease(bus, info->uuid);
                return 0;
        }

        if (strcmp(verb, "enable") == 0) {
                r = domain_edit_enable(xml, opt_emulator ? opt_emulator : DEFAULT_WRAPPER, opt_tenant, size, &new_xml,
                                       changes, &error);
                /* Opting in a domain that cannot start with this host's RMA helps no one. */
                if (r >= 0 && size) {
                        g_autofree char *layout = NULL;
                        r = domain_edit_layout(new_xml, size, &layout, &error);
                }
        } else
                r = domain_edit_disable(xml, size, &new_xml, changes, &error);
        if (r < 0) {
                fprintf(stderr, "rmactl domain %s %s: %s\n", verb, name, error->message);
                return 1;
        }
        if (changes->len == 0) {
                printf("%s is already %s; nothing changed.\n", name, strcmp(verb, "enable") == 0 ? "opted in" : "opted out");
                return 0;
        }
        if (opt_dry_run) {
                g_autofree char *before = NULL;
                if (domain_edit_normalize(xml, &before, &error) < 0) {
                        fprintf(stderr, "rmactl domain: %s\n", error->message);
                        return 1;
                }
                return print_diff(name, before, new_xml) < 0 ? 1 : 0;
        }
        {
                virDomainPtr defined = virDomainDefineXML(conn, new_xml);
                if (!defined)
                        return virt_fail("libvirt refused the new definition");
                virDomainFree(defined);
        }
        for (guint i = 0; i < changes->len; i++)
                printf("%s: %s\n", name, (char *) g_ptr_array_index(changes, i));
        if (running > 0)
                printf("%s is running: the change applies at its next start.\n", name);
        return 0;
}
