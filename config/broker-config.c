/* rma-brokerd.conf: its keys, their defaults, and what follows from them. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "broker-config.h"
#include "log.h"
#include "policy-load.h"
#include "rma-config.h"
#include "rma-util.h"
#include "string-table.h"

#define SECTION "Broker"

static const char *const backend_kind_table[] = {
        [BACKEND_AUTO] = "auto",
        [BACKEND_KVM] = "kvm",
        [BACKEND_HUGETLB] = "hugetlb",
        [BACKEND_MEMFD] = "memfd",
};

DEFINE_STRING_TABLE_TO_STRING(backend_kind, BackendKind, "invalid")
DEFINE_STRING_TABLE_FROM_STRING(backend_kind, BackendKind)

void broker_config_free(BrokerConfig *c) {
        if (!c)
                return;
        g_free(c->config_file);
        g_free(c->runtime_dir);
        g_strfreev(c->qemu_users);
        g_free(c->libvirt_status_dir);
        g_free(c->qemu_uids);
        g_strfreev(c->policy_dirs);
        g_free(c->metrics_file);
        g_free(c->admin_group);
        g_free(c);
}

bool broker_config_uid_may_claim(const BrokerConfig *c, uid_t uid) {
        for (size_t i = 0; i < c->n_qemu_uids; i++)
                if (c->qemu_uids[i] == uid)
                        return true;
        return false;
}

static int set_backend(BrokerConfig *c, const char *where, const char *value, GError **error) {
        if (backend_kind_from_string(value, &c->backend) < 0) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "%s: Backend=%s is not a backend; allowed: auto, kvm, hugetlb, memfd", where, value);
                return -EINVAL;
        }
        return 0;
}

static int set_count(BrokerConfig *c, const char *where, const char *value, GError **error) {
        guint64 n;

        if (g_str_equal(value, "auto")) {
                c->count = RMA_COUNT_AUTO;
                return 0;
        }
        if (!g_ascii_string_to_unsigned(value, 10, 1, RMA_MAX_COUNT, &n, NULL)) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "%s: Count=%s is invalid; allowed: auto (as many as the kvm or hugetlb pool holds), "
                            "or a whole number from 1 to %u", where, value, RMA_MAX_COUNT);
                return -EINVAL;
        }
        c->count = (unsigned) n;
        return 0;
}

/* A size key: a power of two from min to 1T, as bytes or with a K, M, G or T suffix; empty
 * for 0 where empty_ok. allowed: what the error offers instead. */
static int set_size_key(const char *where, const char *key, const char *value, uint64_t min, bool empty_ok,
                        const char *allowed, uint64_t *field, GError **error) {
        uint64_t size = 0;

        if ((value[0] != '\0' || !empty_ok) &&
            (rma_parse_size(value, &size) < 0 || size < min || size > RMA_MAX_SIZE || (size & (size - 1)) != 0)) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "%s: %s=%s is invalid; allowed: %s",
                            where, key, value, allowed);
                return -EINVAL;
        }
        *field = size;
        return 0;
}

static int set_size(BrokerConfig *c, const char *where, const char *value, GError **error) {
        /* RMAs are size-aligned powers of two; a region must also be whole pages. */
        return set_size_key(where, "Size", value, RMA_MIN_SIZE, false,
                            "a power of two from 1M to 1T, written as bytes or with a K, M, G or T suffix (e.g. 256M)",
                            &c->size, error);
}


/* A whole number in [min, max] for a limit key; *ret untouched on error. */
/* A whole number from min to max; unit names it in the error ("seconds"). */
static int parse_number(const char *where, const char *key, const char *value, unsigned min, unsigned max,
                        const char *unit, unsigned *ret, GError **error) {
        guint64 n;

        if (!g_ascii_string_to_unsigned(value, 10, min, max, &n, NULL)) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "%s: %s=%s is invalid; allowed: %s from %u to %u", where, key, value, unit, min, max);
                return -EINVAL;
        }
        *ret = (unsigned) n;
        return 0;
}

static int parse_limit(const char *where, const char *key, const char *value, unsigned min, unsigned max,
                       unsigned *ret, GError **error) {
        return parse_number(where, key, value, min, max, "a whole number", ret, error);
}

static int set_timeout(BrokerConfig *c, const char *where, const char *value, GError **error) {
        unsigned sec;
        int r = parse_number(where, "ReservationTimeoutSec", value, 1, 86400, "seconds", &sec, error);

        if (r >= 0)
                c->reservation_timeout_usec = (uint64_t) sec * G_USEC_PER_SEC;
        return r;
}

static int set_huge_page_size(BrokerConfig *c, const char *where, const char *value, GError **error) {
        return set_size_key(where, "HugePageSize", value, 4096, true,
                            "a huge page size such as 2M, 16M or 1G, or empty for none", &c->huge_page_size, error);
}

static int set_max_connections(BrokerConfig *c, const char *where, const char *value, GError **error) {
        return parse_limit(where, "MaxConnections", value, 1, 65536, &c->max_connections, error);
}

static int set_max_connections_per_user(BrokerConfig *c, const char *where, const char *value, GError **error) {
        return parse_limit(where, "MaxConnectionsPerUser", value, 1, 65536, &c->max_connections_per_user, error);
}

static int set_max_queued_replies(BrokerConfig *c, const char *where, const char *value, GError **error) {
        return parse_limit(where, "MaxQueuedReplies", value, 1, 1024, &c->max_queued_replies, error);
}

static int set_connection_timeout(BrokerConfig *c, const char *where, const char *value, GError **error) {
        unsigned sec;
        int r = parse_limit(where, "ConnectionTimeoutSec", value, 1, 3600, &sec, error);

        if (r >= 0)
                c->connection_timeout_usec = (uint64_t) sec * G_USEC_PER_SEC;
        return r;
}

static int set_admin_group(BrokerConfig *c, const char *where, const char *value, GError **error) {
        g_clear_pointer(&c->admin_group, g_free);
        if (value[0] == '\0')
                return 0;
        if (!rma_name_is_valid(value) || strchr(value, ';') || strchr(value, ' ')) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "%s: AdminGroup=%s is invalid; allowed: one group name or gid, or empty for none", where,
                            value);
                return -EINVAL;
        }
        c->admin_group = g_strdup(value);
        return 0;
}

static void resolve_admin_group(BrokerConfig *c) {
        struct group *gr;
        guint64 numeric;

        c->admin_gid = (gid_t) -1;
        if (!c->admin_group)
                return;
        gr = getgrnam(c->admin_group);
        if (gr)
                c->admin_gid = gr->gr_gid;
        else if (g_ascii_string_to_unsigned(c->admin_group, 10, 0, UINT32_MAX - 1, &numeric, NULL))
                c->admin_gid = (gid_t) numeric;
        else
                log_warning("AdminGroup: no group named '%s' on this host; only root may Reserve, Release and Reload",
                            c->admin_group);
}

static int set_metrics_file(BrokerConfig *c, const char *where, const char *value, GError **error) {
        g_clear_pointer(&c->metrics_file, g_free);
        if (value[0] == '\0')
                return 0;   /* off */
        if (value[0] != '/' || g_str_has_suffix(value, "/")) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "%s: MetricsFile=%s is invalid; allowed: an absolute file path such as "
                            "/var/lib/prometheus/node-exporter/rma-broker.prom, or empty for none", where, value);
                return -EINVAL;
        }
        c->metrics_file = g_strdup(value);
        return 0;
}

static int set_check_cgroup(BrokerConfig *c, const char *where, const char *value, GError **error) {
        if (g_ascii_strcasecmp(value, "yes") == 0 || g_ascii_strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
                c->check_cgroup = true;
        else if (g_ascii_strcasecmp(value, "no") == 0 || g_ascii_strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0)
                c->check_cgroup = false;
        else {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            "%s: CheckCgroup=%s is invalid; allowed: yes or no", where, value);
                return -EINVAL;
        }
        return 0;
}

static int set_qemu_users(BrokerConfig *c, const char *where, const char *value, GError **error) {
        g_auto(GStrv) names = g_strsplit(value, ";", -1);
        GPtrArray *kept = g_ptr_array_new();

        for (char **n = names; *n; n++) {
                g_strstrip(*n);
                if (**n)
                        g_ptr_array_add(kept, g_strdup(*n));
        }
        g_ptr_array_add(kept, NULL);
        g_strfreev(c->qemu_users);
        c->qemu_users = (char **) g_ptr_array_free(kept, FALSE);
        (void) where;
        (void) error;
        return 0;
}

typedef int (*KeySetter)(BrokerConfig *c, const char *where, const char *value, GError **error);

static const struct {
        const char *key;
        KeySetter set;
} broker_keys[] = {
        { "Backend", set_backend },
        { "Count", set_count },
        { "Size", set_size },
        { "QemuUsers", set_qemu_users },
        { "ReservationTimeoutSec", set_timeout },
        { "CheckCgroup", set_check_cgroup },
        { "MaxConnections", set_max_connections },
        { "MaxConnectionsPerUser", set_max_connections_per_user },
        { "ConnectionTimeoutSec", set_connection_timeout },
        { "MaxQueuedReplies", set_max_queued_replies },
        { "MetricsFile", set_metrics_file },
        { "AdminGroup", set_admin_group },
        { "HugePageSize", set_huge_page_size },
};

static KeySetter find_setter(const char *key) {
        for (size_t i = 0; i < G_N_ELEMENTS(broker_keys); i++)
                if (strcmp(broker_keys[i].key, key) == 0)
                        return broker_keys[i].set;
        return NULL;
}

static int load_file(BrokerConfig *c, const char *path, bool must_exist, GError **error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) e = NULL;
        g_auto(GStrv) keys = NULL;

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e)) {
                if (!must_exist && g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return 0;
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "%s: %s", path, e->message);
                return -EINVAL;
        }
        c->config_file = g_strdup(path);

        /* Other sections are tenant policy ([Defaults], [Tenant NAME]); the policy loader
         * reads this file too and refuses anything unknown, with its line. */
        keys = g_key_file_get_keys(kf, SECTION, NULL, NULL);
        for (char **k = keys; k && *k; k++) {
                KeySetter set = find_setter(*k);
                g_autofree char *value = NULL;
                g_autofree char *where = NULL;

                if (!set) {
                        log_warning("%s: [" SECTION "] unknown key %s ignored; known keys: Backend, Count, Size, "
                                    "QemuUsers, ReservationTimeoutSec, CheckCgroup, MaxConnections, "
                                    "MaxConnectionsPerUser, ConnectionTimeoutSec, MaxQueuedReplies, MetricsFile, AdminGroup, HugePageSize", path, *k);
                        continue;
                }
                value = g_key_file_get_value(kf, SECTION, *k, NULL);
                g_strstrip(value);
                where = g_strdup_printf("%s: [" SECTION "]", path);
                if (rma_value_has_inline_comment(value)) {
                        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                                    "%s %s=%s: a comment must stand on a line of its own; '#' starts a comment "
                                    "only at the start of a line", where, *k, value);
                        return -EINVAL;
                }
                if (set(c, where, value, error) < 0)
                        return -EINVAL;
        }
        return 0;
}

/* The pool that a config file asks for (Backend, Count, Size; defaults where unset). */
static int read_pool(const char *path, BrokerConfig *scratch, GError **error) {
        scratch->backend = BACKEND_AUTO;
        scratch->count = RMA_COUNT_UNSET;
        scratch->size = RMA_DEFAULT_SIZE;
        return path ? load_file(scratch, path, false, error) : 0;
}

unsigned broker_config_count(const BrokerConfig *c, BackendKind kind) {
        if (c->count != RMA_COUNT_UNSET)
                return c->count;
        return kind == BACKEND_KVM ? RMA_COUNT_AUTO : RMA_DEFAULT_COUNT;
}

char *broker_config_pool_change(const BrokerConfig *running, BackendKind running_kind, unsigned running_count,
                                uint64_t running_size) {
        g_autoptr(BrokerConfig) file = g_new0(BrokerConfig, 1);
        g_autoptr(GError) error = NULL;
        unsigned file_count;
        char a[32], b[32];

        if (!running->config_file || read_pool(running->config_file, file, &error) < 0)
                return NULL;
        file_count = broker_config_count(file, running_kind);
        /* Count=auto and the kvm backend's kernel-given size follow the host, not the file. */
        if (file_count != RMA_COUNT_AUTO && file_count != running_count)
                return g_strdup_printf("Count=%u in %s, but the running pool has %u RMAs: a pool change takes effect "
                                       "when rma-brokerd restarts (systemctl restart rma-brokerd)", file_count,
                                       running->config_file, running_count);
        if (running_size != 0 && file->size != running_size)
                return g_strdup_printf("Size=%s in %s, but the running pool has RMAs of %s: a pool change takes effect "
                                       "when rma-brokerd restarts (systemctl restart rma-brokerd)",
                                       rma_format_size(file->size, a, sizeof(a)), running->config_file,
                                       rma_format_size(running_size, b, sizeof(b)));
        return NULL;
}

static void resolve_qemu_users(BrokerConfig *c) {
        size_t n = c->qemu_users ? g_strv_length(c->qemu_users) : 0;

        g_free(c->qemu_uids);
        c->qemu_uids = g_new0(uid_t, n ? n : 1);
        c->n_qemu_uids = 0;
        for (size_t i = 0; i < n; i++) {
                const char *name = c->qemu_users[i];
                struct passwd *pw = getpwnam(name);
                guint64 numeric;

                if (pw)
                        c->qemu_uids[c->n_qemu_uids++] = pw->pw_uid;
                else if (g_ascii_string_to_unsigned(name, 10, 0, UINT32_MAX - 1, &numeric, NULL))
                        c->qemu_uids[c->n_qemu_uids++] = (uid_t) numeric;
                else
                        log_warning("QemuUsers: no user named '%s' on this host; it cannot claim RMAs", name);
        }
        if (c->n_qemu_uids == 0)
                log_warning("QemuUsers names no existing user: every Claim will be refused. "
                            "Set QemuUsers= in rma-brokerd.conf to the user QEMU runs as (libvirt-qemu).");
}

/* Every key at its default. */
static BrokerConfig *broker_config_new_defaults(void) {
        BrokerConfig *c = g_new0(BrokerConfig, 1);

        c->backend = BACKEND_AUTO;
        c->count = RMA_COUNT_UNSET;
        c->size = RMA_DEFAULT_SIZE;
        c->reservation_timeout_usec = RMA_DEFAULT_RESERVATION_TIMEOUT_SEC * G_USEC_PER_SEC;
        c->check_cgroup = true;
        c->max_connections = RMA_DEFAULT_MAX_CONNECTIONS;
        c->max_connections_per_user = RMA_DEFAULT_MAX_CONNECTIONS_PER_USER;
        c->connection_timeout_usec = RMA_DEFAULT_CONNECTION_TIMEOUT_SEC * G_USEC_PER_SEC;
        c->max_queued_replies = RMA_DEFAULT_MAX_QUEUED_REPLIES;
        c->qemu_users = g_strsplit(RMA_DEFAULT_QEMU_USERS, ";", -1);
        return c;
}

int broker_config_read(const char *path, BrokerConfig **ret, GError **error) {
        g_autoptr(BrokerConfig) c = broker_config_new_defaults();

        if (load_file(c, path ? path : BROKER_CONFIG_FILE, path != NULL, error) < 0)
                return -EINVAL;
        *ret = g_steal_pointer(&c);
        return 0;
}

int broker_config_set(BrokerConfig *c, const char *key, const char *value, const char *where, GError **error) {
        KeySetter set = find_setter(key);

        g_return_val_if_fail(set, -EINVAL);
        return set(c, where, value, error) < 0 ? -EINVAL : 0;
}

void broker_config_finish(BrokerConfig *c, const char *runtime_dir, char **policy_dirs) {
        c->runtime_dir = g_strdup(runtime_dir ? runtime_dir : RMA_RUNTIME_DIR);
        if (!c->libvirt_status_dir)
                c->libvirt_status_dir = g_strdup(RMA_LIBVIRT_STATUS_DIR);
        c->policy_dirs = policy_dirs ? g_strdupv(policy_dirs) : policy_default_dirs(c->runtime_dir);
        resolve_qemu_users(c);
        resolve_admin_group(c);
}

int broker_config_load_policy(const char *path, char **policy_dirs, uint32_t pool_size, Policy **ret,
                              GPtrArray *errors) {
        g_autoptr(BrokerConfig) c = NULL;
        g_autoptr(GError) error = NULL;

        if (broker_config_read(path, &c, &error) < 0) {
                g_ptr_array_add(errors, g_strdup(error->message));
                return -EINVAL;
        }
        broker_config_finish(c, NULL, policy_dirs);
        return policy_load(c->config_file, c->policy_dirs, pool_size, ret, errors);
}
