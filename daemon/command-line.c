/* rma-brokerd's command line: its options, each the same as a key of rma-brokerd.conf, and
 * winning over the file. */
#include <errno.h>
#include <stdio.h>

#include "cleanup.h"
#include "command-line.h"
#include "log.h"
#include "rma-config.h"
#include "rma-names.h"

/* The command line's options, each the same as a key of the file. */
typedef struct CommandLine {
        char *config, *backend, *count, *size, *runtime_dir, *qemu_users, *timeout, *libvirt_status_dir;
        char **policy_dirs;
        gboolean version, debug, no_check_cgroup, check_policy;
} CommandLine;

static void command_line_done(CommandLine *o) {
        g_free(o->config);
        g_free(o->backend);
        g_free(o->count);
        g_free(o->size);
        g_free(o->runtime_dir);
        g_free(o->qemu_users);
        g_free(o->timeout);
        g_free(o->libvirt_status_dir);
        g_strfreev(o->policy_dirs);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CommandLine, command_line_done)

static int parse_command_line(int *argc, char ***argv, CommandLine *o, GError **error) {
        const GOptionEntry entries[] = {
                { "config", 0, 0, G_OPTION_ARG_FILENAME, &o->config, "Configuration file (default " BROKER_CONFIG_FILE ")", "FILE" },
                { "backend", 0, 0, G_OPTION_ARG_STRING, &o->backend, "Region backend: auto, kvm, hugetlb or memfd", "NAME" },
                { "count", 0, 0, G_OPTION_ARG_STRING, &o->count, "Number of RMAs in the pool, or auto (default: the whole pool for kvm, 8 otherwise)", "N" },
                { "size", 0, 0, G_OPTION_ARG_STRING, &o->size, "Size of each RMA (default 256M)", "BYTES" },
                { "runtime-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->runtime_dir, "Directory for broker.sock (default " RMA_RUNTIME_DIR ")", "DIR" },
                { "qemu-users", 0, 0, G_OPTION_ARG_STRING, &o->qemu_users, "Users allowed to Claim, ;-separated", "USERS" },
                { "libvirt-status-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->libvirt_status_dir, "libvirtd's status XML of running QEMU domains, which a rebuild of lost leases trusts (default " RMA_LIBVIRT_STATUS_DIR ")", "DIR" },
                { "reservation-timeout", 0, 0, G_OPTION_ARG_STRING, &o->timeout, "Seconds a reservation waits for its Claim", "SEC" },
                { "no-check-cgroup", 0, 0, G_OPTION_ARG_NONE, &o->no_check_cgroup, "Do not require claimers to sit in the domain's cgroup", NULL },
                { "policy-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->policy_dirs, "Read tenant policy from DIR instead of the standard directories (repeatable, lowest priority first)", "DIR" },
                { "check-policy", 0, 0, G_OPTION_ARG_NONE, &o->check_policy, "Validate the configuration and tenant policy, print the result and exit", NULL },
                { "debug", 0, 0, G_OPTION_ARG_NONE, &o->debug, "Log debug messages", NULL },
                { "version", 0, 0, G_OPTION_ARG_NONE, &o->version, "Print the version and exit", NULL },
                { NULL, 0, 0, 0, NULL, NULL, NULL },
        };
        g_autoptr(GOptionContext) ctx = g_option_context_new("- broker for PowerPC KVM Real Mode Areas");

        g_option_context_add_main_entries(ctx, entries, NULL);
        if (!g_option_context_parse(ctx, argc, argv, error))
                return -EINVAL;
        if (*argc > 1) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "unexpected argument '%s'", (*argv)[1]);
                return -EINVAL;
        }
        return 0;
}

/* Command-line options win over the file. */
static int apply_command_line(BrokerConfig *c, const CommandLine *o, GError **error) {
        const struct {
                const char *value, *key, *option;
        } given[] = {
                { o->backend, "Backend", "--backend" },
                { o->count, "Count", "--count" },
                { o->size, "Size", "--size" },
                { o->qemu_users, "QemuUsers", "--qemu-users" },
                { o->timeout, "ReservationTimeoutSec", "--reservation-timeout" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(given); i++)
                if (given[i].value && broker_config_set(c, given[i].key, given[i].value, given[i].option, error) < 0)
                        return -EINVAL;
        if (o->no_check_cgroup)
                c->check_cgroup = false;
        if (o->libvirt_status_dir) {
                g_free(c->libvirt_status_dir);
                c->libvirt_status_dir = g_strdup(o->libvirt_status_dir);
        }
        c->check_policy = o->check_policy;
        return 0;
}

int command_line_load(int *argc, char ***argv, BrokerConfig **ret, GError **error) {
        g_auto(CommandLine) o = { 0 };
        g_autoptr(BrokerConfig) c = NULL;

        if (parse_command_line(argc, argv, &o, error) < 0)
                return -EINVAL;
        if (o.version) {
                printf("rma-brokerd " RMA_VERSION "\n");
                return 1;
        }
        if (o.debug)
                log_set_max_level(LOG_DEBUG);
        if (broker_config_read(o.config, &c, error) < 0 || apply_command_line(c, &o, error) < 0)
                return -EINVAL;
        broker_config_finish(c, o.runtime_dir, o.policy_dirs);
        *ret = g_steal_pointer(&c);
        return 0;
}
