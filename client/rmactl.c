/* rmactl: the admin's view of rma-brokerd over the system bus, and offline policy checks.
 *
 *   rmactl [--json] status | list | tenants
 *   rmactl reload
 *   rmactl check-policy [--config=FILE] [--count=N] [DIR...]   (does not touch the daemon) */
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "broker-config.h"
#include "policy-check.h"
#include "rma-names.h"
#include "rma-util.h"
#include "rmactl-domain.h"

static bool arg_json;

static int bus_fail(const char *what, const sd_bus_error *e, int r) {
        fprintf(stderr, "rmactl: %s: %s\n", what, e && e->message ? e->message : strerror(-r));
        return 1;
}

static void print_json(JsonBuilder *b) {
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        g_autofree char *text = NULL;

        json_generator_set_pretty(gen, TRUE);
        json_generator_set_root(gen, root);
        text = json_generator_to_data(gen, NULL);
        printf("%s\n", text);
}

static int get_u32(sd_bus *bus, const char *prop, uint32_t *ret, sd_bus_error *e) {
        return sd_bus_get_property_trivial(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, prop, e, 'u', ret);
}

static int cmd_status(sd_bus *bus) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *backend = NULL;
        static const char *const names[] = { "TotalRmas", "FreeRmas", "ReservedRmas", "LeasedRmas", "ScrubbingRmas",
                                             "HeldElsewhereRmas", "KernelCapability" };
        uint32_t v[G_N_ELEMENTS(names)];
        uint64_t size;
        char sz[32];
        int r;

        r = sd_bus_get_property_string(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, "Backend", &e, &backend);
        if (r < 0)
                return bus_fail("cannot read the broker's status (is rma-brokerd running?)", &e, r);
        r = sd_bus_get_property_trivial(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, "RmaSize", &e, 't', &size);
        for (size_t i = 0; r >= 0 && i < G_N_ELEMENTS(names); i++)
                r = get_u32(bus, names[i], &v[i], &e);
        if (r < 0)
                return bus_fail("cannot read the broker's status", &e, r);

        if (arg_json) {
                g_autoptr(JsonBuilder) b = json_builder_new();
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "Backend");
                json_builder_add_string_value(b, backend);
                json_builder_set_member_name(b, "RmaSize");
                json_builder_add_int_value(b, (gint64) size);
                for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                        json_builder_set_member_name(b, names[i]);
                        json_builder_add_int_value(b, v[i]);
                }
                json_builder_end_object(b);
                print_json(b);
                return 0;
        }
        printf("Backend:  %s (KVM_CAP_PPC_RMA=%u)\n", backend, v[6]);
        printf("RMA size: %s\n", rma_format_size(size, sz, sizeof(sz)));
        printf("RMAs:     %u total, %u free, %u reserved, %u leased, %u scrubbing, %u held elsewhere\n", v[0], v[1],
               v[2], v[3], v[4], v[5]);
        return 0;
}

static gint compare_slots(gconstpointer a, gconstpointer b) {
        return (gint) GPOINTER_TO_UINT(a) - (gint) GPOINTER_TO_UINT(b);
}

/* slot -> why, for the held-elsewhere slots (ListHeldElsewhere). Empty from a broker too
 * old to say. */
static GHashTable *held_elsewhere_reasons(sd_bus *bus) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        GHashTable *why = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
        const char *text;
        uint32_t slot;

        if (sd_bus_call_method(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, "ListHeldElsewhere", &e, &reply,
                               "") < 0 ||
            sd_bus_message_enter_container(reply, 'a', "(us)") < 0)
                return why;
        while (sd_bus_message_read(reply, "(us)", &slot, &text) > 0)
                g_hash_table_insert(why, GUINT_TO_POINTER(slot), g_strdup(text));
        return why;
}

/* Call a List* method and enter its array of element_signature: 0 with *ret at the first
 * element, or the error printed and 1. */
static int call_list(sd_bus *bus, const char *method, const char *element_signature, sd_bus_message **ret) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autofree char *what = g_strdup_printf("%s failed", method);
        int r;

        r = sd_bus_call_method(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, method, &e, &reply, "");
        if (r < 0)
                return bus_fail(what, &e, r);
        r = sd_bus_message_enter_container(reply, 'a', element_signature);
        if (r < 0)
                return bus_fail("bad reply", NULL, r);
        *ret = g_steal_pointer(&reply);
        return 0;
}

static void json_add_string(JsonBuilder *b, const char *name, const char *value) {
        json_builder_set_member_name(b, name);
        json_builder_add_string_value(b, value);
}

static void json_add_int(JsonBuilder *b, const char *name, gint64 value) {
        json_builder_set_member_name(b, name);
        json_builder_add_int_value(b, value);
}

static int cmd_list(sd_bus *bus) {
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(GHashTable) held = held_elsewhere_reasons(bus);
        const char *state, *uuid, *domain, *tenant;
        uint32_t slot, pid;
        int r;

        if (call_list(bus, "ListRmas", "(ussssu)", &reply) != 0)
                return 1;
        json_builder_begin_array(b);
        if (!arg_json)
                printf("%-4s %-14s %-36s %-20s %-12s %s\n", "SLOT", "STATE", "UUID", "DOMAIN", "TENANT", "PID");
        while ((r = sd_bus_message_read(reply, "(ussssu)", &slot, &state, &uuid, &domain, &tenant, &pid)) > 0) {
                if (arg_json) {
                        json_builder_begin_object(b);
                        json_add_int(b, "slot", slot);
                        json_add_string(b, "state", state);
                        json_add_string(b, "uuid", uuid);
                        json_add_string(b, "domain", domain);
                        json_add_string(b, "tenant", tenant);
                        json_add_int(b, "pid", pid);
                        if (g_hash_table_contains(held, GUINT_TO_POINTER(slot)))
                                json_add_string(b, "why", g_hash_table_lookup(held, GUINT_TO_POINTER(slot)));
                        json_builder_end_object(b);
                } else if (pid)
                        printf("%-4u %-14s %-36s %-20s %-12s %u\n", slot, state, uuid, domain, tenant, pid);
                else
                        printf("%-4u %-14s %-36s %-20s %-12s -\n", slot, state, *uuid ? uuid : "-", *domain ? domain : "-",
                               *tenant ? tenant : "-");
        }
        if (r < 0)
                return bus_fail("bad reply", NULL, r);
        json_builder_end_array(b);
        if (arg_json)
                print_json(b);
        else {
                /* Said under the table, in slot order: a held-elsewhere slot is one the admin
                 * may have to act on. */
                g_autoptr(GList) slots = g_list_sort(g_hash_table_get_keys(held), compare_slots);
                for (GList *l = slots; l; l = l->next)
                        printf("slot %u is held-elsewhere: %s\n", GPOINTER_TO_UINT(l->data),
                               (const char *) g_hash_table_lookup(held, l->data));
        }
        return 0;
}

static int cmd_tenants(sd_bus *bus) {
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        uint32_t max, guaranteed, leased, reserved;
        const char *name;
        int r;

        if (call_list(bus, "ListTenants", "(suuuu)", &reply) != 0)
                return 1;
        json_builder_begin_array(b);
        if (!arg_json)
                printf("%-20s %8s %11s %7s %9s\n", "TENANT", "MAX", "GUARANTEED", "LEASED", "RESERVED");
        while ((r = sd_bus_message_read(reply, "(suuuu)", &name, &max, &guaranteed, &leased, &reserved)) > 0) {
                if (!arg_json) {
                        printf("%-20s %8u %11u %7u %9u\n", name, max, guaranteed, leased, reserved);
                        continue;
                }
                json_builder_begin_object(b);
                json_add_string(b, "tenant", name);
                json_add_int(b, "max", max);
                json_add_int(b, "guaranteed", guaranteed);
                json_add_int(b, "leased", leased);
                json_add_int(b, "reserved", reserved);
                json_builder_end_object(b);
        }
        if (r < 0)
                return bus_fail("bad reply", NULL, r);
        json_builder_end_array(b);
        if (arg_json)
                print_json(b);
        return 0;
}

static int cmd_reload(sd_bus *bus) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, "Reload", &e, NULL, "");
        if (r < 0) {
                /* The broker joins its problems with "; ": one per line reads better. */
                g_auto(GStrv) lines = g_strsplit(e.message ? e.message : strerror(-r), "; ", -1);
                fprintf(stderr, "rmactl: reload refused:\n");
                for (char **l = lines; *l; l++)
                        fprintf(stderr, "  %s\n", *l);
                return 1;
        }
        printf("Tenant policy reloaded.\n");
        /* Count= and Size= are read at start only: the broker says when its config file now
         * asks for another pool. */
        {
                g_autofree char *change = NULL;
                if (sd_bus_get_property_string(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, "PendingPoolChange",
                                               &e, &change) >= 0 && change && *change)
                        printf("The pool is unchanged: %s.\n", change);
        }
        return 0;
}

static int cmd_forget_region(sd_bus *bus, const char *arg) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        guint64 slot;
        int r;

        if (!g_ascii_string_to_unsigned(arg, 10, 0, UINT32_MAX, &slot, NULL)) {
                fprintf(stderr, "rmactl: forget-region takes a slot number, not '%s'\n", arg);
                return 2;
        }
        r = sd_bus_call_method(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, "ForgetRegion", &e, NULL, "u",
                               (uint32_t) slot);
        if (r < 0) {
                fprintf(stderr, "rmactl: forget-region refused: %s\n", e.message ? e.message : strerror(-r));
                return 1;
        }
        printf("RMA slot %u is refilled. If a process still held its old region, the pool holds one region more "
               "than Count= until that process lets go of it.\n", (unsigned) slot);
        return 0;
}

static int get_metrics(sd_bus *bus, char **ret, sd_bus_error *e) {
        g_autoptr(sd_bus_message) reply = NULL;
        const char *text;
        int r;

        r = sd_bus_call_method(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, "GetMetrics", e, &reply, "");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return r;
        *ret = g_strdup(text);
        return 0;
}

/* Longest HTTP request head we read; a scraper sends a few hundred bytes. */
#define HTTP_HEAD_MAX 8192
#define HTTP_TIMEOUT_SEC 10

static void http_reply(const char *status, const char *type, const char *body, bool head_only) {
        printf("HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status, type,
               strlen(body), head_only ? "" : body);
        fflush(stdout);
}

/* One HTTP request on stdin/stdout, inetd style: what rma-brokerd-metrics@.service runs
 * for each connection that rma-brokerd-metrics.socket accepts. The broker itself keeps
 * no network listener. */
static int serve_http(sd_bus *bus) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *text = NULL, *body = NULL;
        char head[HTTP_HEAD_MAX + 1], method[16], path[256];
        size_t len = 0;
        bool head_only;
        int r;

        /* A scraper that connects and says nothing must not keep this process. */
        alarm(HTTP_TIMEOUT_SEC);
        while (len < HTTP_HEAD_MAX) {
                ssize_t k = read(STDIN_FILENO, head + len, HTTP_HEAD_MAX - len);
                if (k <= 0)
                        break;
                len += (size_t) k;
                head[len] = '\0';
                if (strstr(head, "\r\n\r\n") || strstr(head, "\n\n"))
                        break;
        }
        head[len] = '\0';
        if (sscanf(head, "%15s %255s HTTP/", method, path) != 2) {
                http_reply("400 Bad Request", "text/plain; charset=utf-8", "Bad request\n", false);
                return 1;
        }
        head_only = strcmp(method, "HEAD") == 0;
        if (strcmp(method, "GET") != 0 && !head_only) {
                http_reply("405 Method Not Allowed", "text/plain; charset=utf-8", "Only GET and HEAD\n", false);
                return 1;
        }
        if (strcmp(path, "/metrics") != 0 && strncmp(path, "/metrics?", 9) != 0) {
                http_reply("404 Not Found", "text/plain; charset=utf-8", "The metrics are at /metrics\n", head_only);
                return 1;
        }
        r = bus ? get_metrics(bus, &text, &e) : -ENOTCONN;
        if (r < 0) {
                body = g_strdup_printf("rma-brokerd did not answer GetMetrics: %s\n", e.message ? e.message : strerror(-r));
                http_reply("503 Service Unavailable", "text/plain; charset=utf-8", body, head_only);
                return 1;
        }
        http_reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", text, head_only);
        return 0;
}

/* metrics [--http] */
static int cmd_metrics(sd_bus *bus, bool http) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *text = NULL;
        int r;

        if (http)
                return serve_http(bus);
        r = get_metrics(bus, &text, &e);
        if (r < 0)
                return bus_fail("GetMetrics failed (is rma-brokerd running?)", &e, r);
        fputs(text, stdout);
        return 0;
}

/* The OpenStack Placement resource class for regions of this size: CUSTOM_RMA_256MB. */
static char *resource_class(uint64_t size) {
        if (size >= (UINT64_C(1) << 30) && size % (UINT64_C(1) << 30) == 0)
                return g_strdup_printf("CUSTOM_RMA_%" G_GUINT64_FORMAT "GB", size >> 30);
        return g_strdup_printf("CUSTOM_RMA_%" G_GUINT64_FORMAT "MB", size >> 20);
}

/* export placement [--tenant=T] [--provider=NAME]: a Nova provider config (provider.yaml)
 * that makes the pool an inventory of this compute node. Without --tenant, reserved is
 * what no VM can get now (scrubbing, held elsewhere). With --tenant=T, T's RMAs are
 * Nova's (its own allocations), and whatever T cannot get now is reserved (GetCapacity:
 * its cap, the other tenants' RMAs and guarantees). rma-placement-agent keeps the same
 * numbers live. */
static int cmd_export_placement(sd_bus *bus, const char *tenant, const char *provider) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autofree char *rc = NULL;
        uint32_t total, available, held, reserved;
        uint64_t size;
        int r;

        /* Reserved: what Nova cannot get now, leaving out what it holds (its own
         * allocations in Placement count those). */
        r = sd_bus_call_method(bus, RMA_BUS_NAME, RMA_OBJECT_PATH, RMA_INTERFACE, "GetCapacity", &e, &reply, "s",
                               tenant ? tenant : "");
        if (r < 0)
                return bus_fail("cannot read the pool (is rma-brokerd running?)", &e, r);
        r = sd_bus_message_read(reply, "tuuu", &size, &total, &available, &held);
        if (r < 0)
                return bus_fail("bad reply", NULL, r);
        reserved = total - MIN(total, available + held);
        rc = resource_class(size);
        printf("# Nova provider config (https://docs.openstack.org/nova/latest/admin/managing-resource-providers.html)\n"
               "# from rma-brokerd on this host: %u RMAs of %" G_GUINT64_FORMAT " MiB; reserved = %s.\n"
               "# Install as /etc/nova/provider_config/rma-broker.yaml; a flavor asks for one with\n"
               "#   openstack flavor set FLAVOR --property resources:%s=1\n"
               "meta:\n"
               "  schema_version: '1.0'\n"
               "providers:\n"
               "  - identification:\n"
               "      %s: '%s'\n"
               "    inventories:\n"
               "      additional:\n"
               "        - %s:\n"
               "            total: %u\n"
               "            reserved: %u\n"
               "            min_unit: 1\n"
               "            max_unit: 1\n"
               "            step_size: 1\n"
               "            allocation_ratio: 1.0\n",
               total, size >> 20,
               tenant ? "what Nova's tenant can neither get now nor holds (other tenants' RMAs and guarantees, "
                        "its cap, what is scrubbing or held elsewhere)"
                      : "what is scrubbing or held elsewhere",
               rc, provider ? "name" : "uuid", provider ? provider : "$COMPUTE_NODE", rc, total, reserved);
        return 0;
}

/* check-policy [--config=FILE] [--count=N] [DIR...]: the daemon's own loader, offline. */
/* The size of the pool rma-brokerd runs now, when it answers on the system bus. */
static int running_pool(uint32_t *ret) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;

        if (sd_bus_open_system(&bus) < 0)
                return -ENOTCONN;
        return get_u32(bus, "TotalRmas", ret, &e);
}

/* argv[*i] is option NAME ("--name=VALUE", or "--name VALUE" taking the next argument). */
static bool option_value(int argc, char *argv[], int *i, const char *name, const char **ret) {
        size_t n = strlen(name);

        if (strncmp(argv[*i], name, n) != 0)
                return false;
        if (argv[*i][n] == '=') {
                *ret = argv[*i] + n + 1;
                return true;
        }
        if (argv[*i][n] != '\0' || *i + 1 >= argc)
                return false;
        *ret = argv[++*i];
        return true;
}

static int cmd_check_policy(int argc, char *argv[]) {
        g_autoptr(GPtrArray) dirs = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(BrokerConfig) config = NULL;
        g_autofree char *source = NULL, *running_count = NULL;
        const char *config_file = NULL, *count = NULL;
        uint32_t running = 0;

        for (int i = 1; i < argc; i++) {
                if (option_value(argc, argv, &i, "--config", &config_file) || option_value(argc, argv, &i, "--count", &count))
                        continue;
                if (argv[i][0] == '-') {
                        fprintf(stderr, "rmactl check-policy: unknown option %s; allowed: --config=FILE, --count=N\n",
                                argv[i]);
                        return 1;
                } else
                        g_ptr_array_add(dirs, argv[i]);
        }
        g_ptr_array_add(dirs, NULL);
        /* Guarantees must fit the pool that runs now, whatever the file says for the next start. */
        if (!count && running_pool(&running) >= 0) {
                source = g_strdup("the running pool");
                count = running_count = g_strdup_printf("%u", running);
        }
        if (broker_config_read(config_file, &config, &error) < 0 ||
            (count && broker_config_set(config, "Count", count, "--count", &error) < 0)) {
                fprintf(stderr, "rmactl: %s\n", error->message);
                return 1;
        }
        broker_config_finish(config, NULL, dirs->len > 1 ? (char **) dirs->pdata : NULL);
        return policy_check_report(config, source) < 0 ? 1 : 0;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: rmactl [--json] status | list | tenants\n"
                   "       rmactl reload\n"
                   "       rmactl forget-region SLOT\n"
                   "       rmactl metrics [--http]\n"
                   "       rmactl export placement [--tenant=T] [--provider=NAME]\n"
                   "       rmactl domain enable|disable|show DOMAIN [--tenant=T] [--connect=URI] [--dry-run]\n"
                   "       rmactl check-policy [--config=FILE] [--count=N] [DIR...]\n"
                   "status, list, tenants, reload, metrics and export ask rma-brokerd on the system bus;\n"
                   "check-policy validates the tenant policy offline (the standard directories, or DIRs).\n"
                   "metrics prints the Prometheus exposition; --http answers one HTTP request on\n"
                   "stdin/stdout (rma-brokerd-metrics.socket). export placement prints an OpenStack Nova\n"
                   "provider config for the pool. domain opts a libvirt domain in or out (emulator,\n"
                   "metadata, NUMA cell 0 of the RMA size) or shows how it stands. forget-region (root)\n"
                   "frees a held-elsewhere slot whose old region rma-brokerd cannot prove gone, once you\n"
                   "know no process holds it.\n");
}

int main(int argc, char *argv[]) {
        g_autoptr(sd_bus) bus = NULL;
        const char *cmd;
        int i = 1, n = 1, r;

        /* The global options may stand anywhere, before or after the verb
         * (`rmactl status --json`); the verb's own options are left in place. */
        for (int j = 1; j < argc; j++) {
                if (strcmp(argv[j], "--json") == 0)
                        arg_json = true;
                else if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
                        usage(stdout);
                        return 0;
                } else
                        argv[n++] = argv[j];
        }
        argc = n;
        argv[argc] = NULL;
        if (i >= argc || argv[i][0] == '-') {
                if (i < argc)
                        fprintf(stderr, "rmactl: unknown option %s\n", argv[i]);
                usage(stderr);
                return 2;
        }
        cmd = argv[i];
        if (strcmp(cmd, "check-policy") == 0)
                return cmd_check_policy(argc - i, argv + i);
        if (strcmp(cmd, "domain") == 0) {
                /* The bus is for RmaSize, the policy's pool and the lease; libvirt does the rest. */
                if (sd_bus_open_system(&bus) < 0)
                        bus = NULL;
                return rmactl_domain(bus, argc - i, argv + i);
        }
        if (strcmp(cmd, "status") != 0 && strcmp(cmd, "list") != 0 && strcmp(cmd, "tenants") != 0 &&
            strcmp(cmd, "reload") != 0 && strcmp(cmd, "metrics") != 0 && strcmp(cmd, "export") != 0 &&
            strcmp(cmd, "forget-region") != 0) {
                fprintf(stderr, "rmactl: unknown command %s\n", cmd);
                usage(stderr);
                return 2;
        }
        if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "list") == 0 || strcmp(cmd, "tenants") == 0 ||
             strcmp(cmd, "reload") == 0) && i + 1 < argc) {
                fprintf(stderr, "rmactl: %s takes no argument '%s'\n", cmd, argv[i + 1]);
                usage(stderr);
                return 2;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0 && strcmp(cmd, "metrics") == 0 && i + 1 < argc && strcmp(argv[i + 1], "--http") == 0)
                return serve_http(NULL);   /* still answer the scraper: 503 */
        if (r < 0) {
                fprintf(stderr, "rmactl: cannot connect to the system bus: %s\n", strerror(-r));
                return 1;
        }
        if (strcmp(cmd, "metrics") == 0) {
                if (i + 1 < argc && strcmp(argv[i + 1], "--http") != 0) {
                        fprintf(stderr, "rmactl: metrics takes only --http\n");
                        return 2;
                }
                return cmd_metrics(bus, i + 1 < argc);
        }
        if (strcmp(cmd, "export") == 0) {
                const char *tenant = NULL, *provider = NULL;
                if (i + 1 >= argc || strcmp(argv[i + 1], "placement") != 0) {
                        fprintf(stderr, "rmactl: export: the one format is 'placement'\n");
                        return 2;
                }
                for (int j = i + 2; j < argc; j++) {
                        if (g_str_has_prefix(argv[j], "--tenant="))
                                tenant = argv[j] + strlen("--tenant=");
                        else if (g_str_has_prefix(argv[j], "--provider="))
                                provider = argv[j] + strlen("--provider=");
                        else {
                                fprintf(stderr, "rmactl: export placement: unknown argument %s\n", argv[j]);
                                return 2;
                        }
                }
                return cmd_export_placement(bus, tenant, provider);
        }
        if (strcmp(cmd, "forget-region") == 0) {
                if (i + 2 != argc) {
                        fprintf(stderr, "rmactl: forget-region takes one slot number\n");
                        return 2;
                }
                return cmd_forget_region(bus, argv[i + 1]);
        }
        if (strcmp(cmd, "status") == 0)
                return cmd_status(bus);
        if (strcmp(cmd, "list") == 0)
                return cmd_list(bus);
        if (strcmp(cmd, "tenants") == 0)
                return cmd_tenants(bus);
        return cmd_reload(bus);
}
