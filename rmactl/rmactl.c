/* rmactl: the admin's view of rma-brokerd over the system bus, and offline policy checks.
 * One verb table (as loginctl's): its name, its arguments, whether it needs the bus, and
 * its function; the usage is printed from it. The broker is reached only through the
 * client library (client/rma-client.h). */
#include <json-glib/json-glib.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#include "cleanup.h"
#include "broker-config.h"
#include "metrics-http.h"
#include "policy-check.h"
#include "polkit-agent.h"
#include "rma-client.h"
#include "rma-names.h"
#include "rma-util.h"
#include "rmactl-domain.h"
#include "rmactl-monitor.h"

static bool arg_json;
static bool arg_ask_password = true;   /* as systemctl: on a terminal, pkttyagent asks */

/* The broker would have let polkit ask for a password, but the call did not allow it. */
static void explain_no_interaction(const sd_bus_error *e) {
        if (!e || !sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                return;
        fprintf(stderr, "rmactl: polkit asks an administrator to authenticate for this; %s\n",
                arg_ask_password ? "run rmactl on a terminal (it then asks there), or as root"
                                 : "--no-ask-password kept rmactl from asking: leave it out on a terminal, or run as root");
}

static int bus_fail(const char *what, const sd_bus_error *e, int r) {
        fprintf(stderr, "rmactl: %s: %s\n", what, e && e->message ? e->message : strerror(-r));
        explain_no_interaction(e);
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

static int verb_status(sd_bus *bus, int argc, char *argv[]) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *backend = NULL, *drain_reason = NULL;
        bool draining = false;
        static const char *const names[] = { "TotalRmas", "FreeRmas", "ReservedRmas", "LeasedRmas", "ScrubbingRmas",
                                             "HeldElsewhereRmas", "KernelCapability" };
        uint32_t v[G_N_ELEMENTS(names)];
        uint64_t size;
        char sz[32];
        int r;

        r = rma_client_get_string(bus, "Backend", &backend, &e);
        if (r < 0)
                return bus_fail("cannot read the broker's status (is rma-brokerd running?)", &e, r);
        r = rma_client_get_u64(bus, "RmaSize", &size, &e);
        for (size_t i = 0; r >= 0 && i < G_N_ELEMENTS(names); i++)
                r = rma_client_get_u32(bus, names[i], &v[i], &e);
        if (r >= 0)
                r = rma_client_get_bool(bus, "Draining", &draining, &e);
        if (r >= 0)
                r = rma_client_get_string(bus, "DrainReason", &drain_reason, &e);
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
                json_builder_set_member_name(b, "Draining");
                json_builder_add_boolean_value(b, draining);
                json_builder_set_member_name(b, "DrainReason");
                json_builder_add_string_value(b, drain_reason);
                json_builder_end_object(b);
                print_json(b);
                return 0;
        }
        printf("Backend:  %s (KVM_CAP_PPC_RMA=%u)\n", backend, v[6]);
        printf("RMA size: %s\n", rma_format_size(size, sz, sizeof(sz)));
        {
                g_autofree char *why = rma_size_unusable_why(size, strcmp(backend, "kvm") == 0);
                if (why)
                        printf("Warning:  %s\n", why);
        }
        printf("RMAs:     %u total, %u free, %u reserved, %u leased, %u scrubbing, %u held elsewhere\n", v[0], v[1],
               v[2], v[3], v[4], v[5]);
        if (draining)
                printf("Draining: yes%s%s: no new RMAs are given out (rmactl undrain ends it)\n",
                       *drain_reason ? ", " : "", drain_reason);
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

        if (rma_client_list_held_elsewhere(bus, &reply, &e) < 0)
                return why;
        while (sd_bus_message_read(reply, RMA_CLIENT_LIST_HELD_ELSEWHERE_ELEMENT, &slot, &text) > 0)
                g_hash_table_insert(why, GUINT_TO_POINTER(slot), g_strdup(text));
        return why;
}

/* One JSON object of members given as NAME, TYPE ('s' a string, 'u' a uint32_t), VALUE,
 * ..., NULL. */
static void json_add_object(JsonBuilder *b, const char *name, ...) {
        va_list ap;

        json_builder_begin_object(b);
        va_start(ap, name);
        for (; name; name = va_arg(ap, const char *)) {
                json_builder_set_member_name(b, name);
                if (va_arg(ap, int) == 's')
                        json_builder_add_string_value(b, va_arg(ap, const char *));
                else
                        json_builder_add_int_value(b, va_arg(ap, uint32_t));
        }
        va_end(ap);
        json_builder_end_object(b);
}

typedef int (*ListFn)(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error);

/* A table from a List* call: 0 with the reply at its first row, the JSON array begun and
 * the header printed unless --json; 1 when the call failed (said on stderr). */
static int table_begin(sd_bus *bus, ListFn list, const char *method, const char *header, JsonBuilder *b,
                       sd_bus_message **ret) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *what = g_strdup_printf("%s failed", method);
        int r = list(bus, ret, &e);

        if (r < 0)
                return bus_fail(what, &e, r);
        json_builder_begin_array(b);
        if (!arg_json)
                fputs(header, stdout);
        return 0;
}

static int verb_list(sd_bus *bus, int argc, char *argv[]) {
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(GHashTable) held = held_elsewhere_reasons(bus);
        const char *state, *uuid, *domain, *tenant;
        uint32_t slot, pid;
        int r;

        if (table_begin(bus, rma_client_list_rmas, "ListRmas",
                        "SLOT STATE          UUID                                 DOMAIN               TENANT       PID\n",
                        b, &reply) != 0)
                return 1;
        while ((r = sd_bus_message_read(reply, RMA_CLIENT_LIST_RMAS_ELEMENT, &slot, &state, &uuid, &domain, &tenant,
                                        &pid)) > 0) {
                const char *why = g_hash_table_lookup(held, GUINT_TO_POINTER(slot));

                if (arg_json)
                        json_add_object(b, "slot", 'u', slot, "state", 's', state, "uuid", 's', uuid, "domain", 's',
                                        domain, "tenant", 's', tenant, "pid", 'u', pid, why ? "why" : NULL, 's', why,
                                        NULL);
                else if (pid)
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

static int verb_tenants(sd_bus *bus, int argc, char *argv[]) {
        g_autoptr(sd_bus_message) reply = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        uint32_t max, guaranteed, leased, reserved;
        const char *name;
        int r;

        if (table_begin(bus, rma_client_list_tenants, "ListTenants",
                        "TENANT                    MAX  GUARANTEED  LEASED  RESERVED\n", b, &reply) != 0)
                return 1;
        while ((r = sd_bus_message_read(reply, RMA_CLIENT_LIST_TENANTS_ELEMENT, &name, &max, &guaranteed, &leased,
                                        &reserved)) > 0) {
                if (arg_json)
                        json_add_object(b, "tenant", 's', name, "max", 'u', max, "guaranteed", 'u', guaranteed, "leased",
                                        'u', leased, "reserved", 'u', reserved, NULL);
                else
                        printf("%-20s %8u %11u %7u %9u\n", name, max, guaranteed, leased, reserved);
        }
        if (r < 0)
                return bus_fail("bad reply", NULL, r);
        json_builder_end_array(b);
        if (arg_json)
                print_json(b);
        return 0;
}

static int verb_reload(sd_bus *bus, int argc, char *argv[]) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        int r;

        r = rma_client_reload(bus, &e);
        if (r < 0) {
                /* The broker joins its problems with "; ": one per line reads better. */
                g_auto(GStrv) lines = g_strsplit(e.message ? e.message : strerror(-r), "; ", -1);
                fprintf(stderr, "rmactl: reload refused:\n");
                for (char **l = lines; *l; l++)
                        fprintf(stderr, "  %s\n", *l);
                explain_no_interaction(&e);
                return 1;
        }
        printf("Tenant policy reloaded.\n");
        /* Count= and Size= are read at start only: the broker says when its config file now
         * asks for another pool. */
        {
                g_autofree char *change = NULL;
                if (rma_client_get_string(bus, "PendingPoolChange", &change, &e) >= 0 && *change)
                        printf("The pool is unchanged: %s.\n", change);
        }
        return 0;
}

/* drain [--reason=TEXT]: no new RMAs from this host, the running domains keep theirs. */
static int verb_drain(sd_bus *bus, int argc, char *argv[]) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        const char *reason = "";
        int r;

        if (argc > 1) {
                if (!g_str_has_prefix(argv[1], "--reason=")) {
                        fprintf(stderr, "rmactl: drain takes --reason=TEXT, not '%s'\n", argv[1]);
                        return 2;
                }
                reason = argv[1] + strlen("--reason=");
        }
        r = rma_client_drain(bus, reason, &e);
        if (r < 0)
                return bus_fail("drain refused", &e, r);
        printf("Draining: this host gives out no new RMAs; running domains keep theirs. rmactl undrain ends it.\n");
        return 0;
}

static int verb_undrain(sd_bus *bus, int argc, char *argv[]) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        int r;

        r = rma_client_undrain(bus, &e);
        if (r < 0)
                return bus_fail("undrain refused", &e, r);
        printf("Drain ended: new RMAs are given out again.\n");
        return 0;
}

static int verb_monitor(sd_bus *bus, int argc, char *argv[]) {
        return rmactl_monitor(bus, arg_json);
}

static int verb_forget_region(sd_bus *bus, int argc, char *argv[]) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        const char *arg = argv[1];
        guint64 slot;
        int r;

        if (!g_ascii_string_to_unsigned(arg, 10, 0, UINT32_MAX, &slot, NULL)) {
                fprintf(stderr, "rmactl: forget-region takes a slot number, not '%s'\n", arg);
                return 2;
        }
        r = rma_client_forget_region(bus, (uint32_t) slot, &e);
        if (r < 0) {
                fprintf(stderr, "rmactl: forget-region refused: %s\n", e.message ? e.message : strerror(-r));
                return 1;
        }
        printf("RMA slot %u is refilled. If a process still held its old region, the pool holds one region more "
               "than Count= until that process lets go of it.\n", (unsigned) slot);
        return 0;
}

/* metrics [--http]: --http answers the scraper even without a bus (503). */
static int verb_metrics(sd_bus *bus, int argc, char *argv[]) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *text = NULL;
        int r;

        if (argc > 1 && strcmp(argv[1], "--http") != 0) {
                fprintf(stderr, "rmactl: metrics takes only --http\n");
                return 2;
        }
        if (argc > 1)
                return metrics_http_serve(bus);
        if (!bus)
                return bus_fail("cannot connect to the system bus", NULL, -ENOTCONN);
        r = rma_client_get_metrics(bus, &text, &e);
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
static int export_placement(sd_bus *bus, const char *tenant, const char *provider) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree char *rc = NULL;
        RmaClientCapacity cap;
        uint32_t total, reserved;
        uint64_t size;
        int r;

        /* Reserved: what Nova cannot get now, leaving out what it holds (its own
         * allocations in Placement count those). */
        r = rma_client_get_capacity(bus, tenant, &cap, &e);
        if (r < 0)
                return bus_fail("cannot read the pool (is rma-brokerd running?)", &e, r);
        size = cap.region_size;
        total = cap.total;
        reserved = total - MIN(total, cap.available + cap.held);
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
        return rma_client_get_u32(bus, "TotalRmas", ret, &e);
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

static int verb_check_policy(sd_bus *bus, int argc, char *argv[]) {
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

/* export placement [--tenant=T] [--provider=NAME] */
static int verb_export(sd_bus *bus, int argc, char *argv[]) {
        const char *tenant = NULL, *provider = NULL;

        if (strcmp(argv[1], "placement") != 0) {
                fprintf(stderr, "rmactl: export: the one format is 'placement'\n");
                return 2;
        }
        for (int j = 2; j < argc; j++) {
                if (g_str_has_prefix(argv[j], "--tenant="))
                        tenant = argv[j] + strlen("--tenant=");
                else if (g_str_has_prefix(argv[j], "--provider="))
                        provider = argv[j] + strlen("--provider=");
                else {
                        fprintf(stderr, "rmactl: export placement: unknown argument %s\n", argv[j]);
                        return 2;
                }
        }
        return export_placement(bus, tenant, provider);
}

typedef enum VerbBus {
        VERB_NO_BUS,        /* offline */
        VERB_BUS,           /* the system bus, or the verb fails before it runs */
        VERB_BUS_OPTIONAL,  /* NULL when there is none: the verb says what it can */
} VerbBus;

typedef struct Verb {
        const char *name;
        const char *synopsis;   /* its arguments, for the usage */
        int min_args, max_args; /* after the verb's name */
        VerbBus bus;
        bool may_ask;           /* it may need polkit's yes: an agent may ask for a password */
        int (*run)(sd_bus *bus, int argc, char *argv[]);   /* argv[0] is the verb */
} Verb;

static const Verb verbs[] = {
        { "status", "", 0, 0, VERB_BUS, false, verb_status },
        { "list", "", 0, 0, VERB_BUS, false, verb_list },
        { "tenants", "", 0, 0, VERB_BUS, false, verb_tenants },
        { "reload", "", 0, 0, VERB_BUS, true, verb_reload },
        { "forget-region", "SLOT", 1, 1, VERB_BUS, true, verb_forget_region },
        { "drain", "[--reason=TEXT]", 0, 1, VERB_BUS, true, verb_drain },
        { "undrain", "", 0, 0, VERB_BUS, true, verb_undrain },
        { "monitor", "", 0, 0, VERB_BUS, false, verb_monitor },
        { "metrics", "[--http]", 0, 1, VERB_BUS_OPTIONAL, false, verb_metrics },
        { "export", "placement [--tenant=T] [--provider=NAME]", 1, 3, VERB_BUS, false, verb_export },
        { "domain", "enable|disable|show DOMAIN [--tenant=T] [--connect=URI] [--dry-run]", 1, INT_MAX,
          VERB_BUS_OPTIONAL, false, rmactl_domain },   /* the bus: RmaSize, the policy's pool, the lease */
        { "check-policy", "[--config=FILE] [--count=N] [DIR...]", 0, INT_MAX, VERB_NO_BUS, false, verb_check_policy },
};

static void usage(FILE *f) {
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
                fprintf(f, "%s rmactl [--json] [--no-ask-password] %s%s%s\n", i == 0 ? "Usage:" : "      ", verbs[i].name,
                        *verbs[i].synopsis ? " " : "", verbs[i].synopsis);
        fprintf(f, "status, list, tenants, reload, metrics and export ask rma-brokerd on the system bus;\n"
                   "check-policy validates the tenant policy offline (the standard directories, or DIRs).\n"
                   "metrics prints the Prometheus exposition; --http answers one HTTP request on\n"
                   "stdin/stdout (rma-brokerd-metrics.socket). export placement prints an OpenStack Nova\n"
                   "provider config for the pool. domain opts a libvirt domain in or out (emulator,\n"
                   "metadata) or shows how it stands and how its memory will be laid out. forget-region (root)\n"
                   "frees a held-elsewhere slot whose old region rma-brokerd cannot prove gone, once you\n"
                   "know no process holds it. --json: status, list, tenants and monitor as JSON.\n"
                   "drain (root, AdminGroup=) stops new RMAs from this host before maintenance, until undrain;\n"
                   "running domains keep theirs. monitor follows the broker's events, one line each\n"
                   "(--json: one JSON object each), until interrupted.\n"
                   "Where polkit wants an administrator's password (reload, drain, undrain, forget-region),\n"
                   "rmactl on a terminal asks for it with pkttyagent; --no-ask-password never asks.\n");
}

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

int main(int argc, char *argv[]) {
        g_autoptr(sd_bus) bus = NULL;
        const Verb *verb;
        int n = 1, args, r;

        /* The global options may stand anywhere, before or after the verb
         * (`rmactl status --json`); the verb's own options are left in place. */
        for (int j = 1; j < argc; j++) {
                if (strcmp(argv[j], "--json") == 0)
                        arg_json = true;
                else if (strcmp(argv[j], "--ask-password") == 0)
                        arg_ask_password = true;
                else if (strcmp(argv[j], "--no-ask-password") == 0)
                        arg_ask_password = false;
                else if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0) {
                        usage(stdout);
                        return 0;
                } else
                        argv[n++] = argv[j];
        }
        argc = n;
        argv[argc] = NULL;
        if (argc < 2 || argv[1][0] == '-') {
                if (argc >= 2)
                        fprintf(stderr, "rmactl: unknown option %s\n", argv[1]);
                usage(stderr);
                return 2;
        }
        verb = find_verb(argv[1]);
        if (!verb) {
                fprintf(stderr, "rmactl: unknown command %s\n", argv[1]);
                usage(stderr);
                return 2;
        }
        args = argc - 2;
        if (args < verb->min_args || args > verb->max_args) {
                if (verb->max_args == 0)
                        fprintf(stderr, "rmactl: %s takes no argument '%s'\n", verb->name, argv[2]);
                else
                        fprintf(stderr, "rmactl: usage: rmactl %s %s\n", verb->name, verb->synopsis);
                return 2;
        }
        if (verb->bus != VERB_NO_BUS) {
                r = sd_bus_open_system(&bus);
                if (r < 0 && verb->bus == VERB_BUS) {
                        fprintf(stderr, "rmactl: cannot connect to the system bus: %s\n", strerror(-r));
                        return 1;
                }
                /* The broker passes it on to polkit (AllowUserInteraction). */
                if (bus)
                        (void) sd_bus_set_allow_interactive_authorization(bus, arg_ask_password);
                /* Without pkttyagent, a session's own agent may still ask. While someone may
                 * type a password, wait as long as the broker waits for polkit. */
                if (bus && verb->may_ask && arg_ask_password && polkit_agent_wanted() && polkit_agent_open() >= 0)
                        (void) sd_bus_set_method_call_timeout(bus, RMA_INTERACTIVE_AUTH_TIMEOUT_USEC);
        }
        r = verb->run(bus, argc - 1, argv + 1);
        polkit_agent_close();
        return r;
}
