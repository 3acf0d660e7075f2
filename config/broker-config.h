/* rma-brokerd configuration: [Broker] in rma-brokerd.conf (the daemon's command line, in
 * daemon/command-line.c, overrides it). */
#pragma once

#include <glib.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"
#include "rma-config.h"

typedef enum BackendKind {
        BACKEND_AUTO,
        BACKEND_KVM,
        BACKEND_HUGETLB,
        BACKEND_MEMFD,
} BackendKind;

#define RMA_DEFAULT_COUNT 8u
#define RMA_DEFAULT_SIZE (UINT64_C(256) << 20)
#define RMA_MAX_COUNT 65536u
/* Count=auto: as many regions as the kernel's pool (kvm) or the reserved huge pages hold. */
#define RMA_COUNT_AUTO 0u
/* Count= not set anywhere: the backend's own default (broker_config_count()). */
#define RMA_COUNT_UNSET UINT_MAX
#define RMA_MIN_SIZE (UINT64_C(1) << 20)
/* No RMA ever was larger; a larger value is a typo (8388608T), not a pool. */
#define RMA_MAX_SIZE (UINT64_C(1) << 40)
#define RMA_DEFAULT_RESERVATION_TIMEOUT_SEC 120u
#define RMA_DEFAULT_TENANT "default"

/* broker.sock limits (rma-brokerd.conf(5)). Connections of root and of QemuUsers are
 * counted apart from everyone else's, so no other uid can lock them out. */
#define RMA_DEFAULT_MAX_CONNECTIONS 1024u
#define RMA_DEFAULT_MAX_CONNECTIONS_PER_USER 64u
#define RMA_DEFAULT_CONNECTION_TIMEOUT_SEC 60u
#define RMA_DEFAULT_MAX_QUEUED_REPLIES 8u
#define RMA_MAX_CONNECTIONS_PER_PROCESS 4u

typedef struct BrokerConfig {
        char *config_file;          /* the file read, NULL when none existed */
        BackendKind backend;
        unsigned count;
        uint64_t size;
        uint64_t huge_page_size;    /* HugePageSize=: the hugetlb backend's page size, 0 when unset */
        char *runtime_dir;
        char *libvirt_status_dir;   /* --libvirt-status-dir: libvirtd's status XML of running QEMUs */
        char **qemu_users;          /* names as configured */
        uid_t *qemu_uids;           /* resolved; unknown names are skipped with a warning */
        size_t n_qemu_uids;
        char *admin_group;          /* AdminGroup=: its members may Reserve, Release and Reload like root */
        gid_t admin_gid;            /* resolved; (gid_t) -1 when none or unknown */
        uint64_t reservation_timeout_usec;
        bool check_cgroup;          /* Claim requires the peer to sit in the domain's cgroup */
        unsigned max_connections;           /* per class: privileged (root, QemuUsers) and other */
        unsigned max_connections_per_user;  /* for uids other than root and QemuUsers */
        uint64_t connection_timeout_usec;   /* a connection is closed this long after accept */
        unsigned max_queued_replies;        /* unread replies before a peer is disconnected */
        char *metrics_file;                 /* MetricsFile=: Prometheus textfile, NULL when off */
        char **policy_dirs;         /* policy.d directories, lowest priority first */
        bool check_policy;          /* --check-policy: validate and exit */
} BrokerConfig;

/* The standard file. */
#define BROKER_CONFIG_FILE RMA_SYSCONFDIR "/rma-brokerd.conf"
/* The config a file gives, defaults where
 * it is silent (path NULL: the standard file, which may be missing); one key set as the
 * file would set it (where: what to name in errors); then what follows from the
 * settings (QemuUsers' uids, AdminGroup's gid, the runtime and policy directories, NULL:
 * the standard ones). */
int broker_config_read(const char *path, BrokerConfig **ret, GError **error);
int broker_config_set(BrokerConfig *c, const char *key, const char *value, const char *where, GError **error);
void broker_config_finish(BrokerConfig *c, const char *runtime_dir, char **policy_dirs);
void broker_config_free(BrokerConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BrokerConfig, broker_config_free)

/* The tenant policy as the broker would load it, for programs beside it (the hook,
 * rmactl): rma-brokerd.conf at path (NULL: the standard file) and the policy directories
 * (NULL: the standard ones), for a pool of pool_size. 0, or <0 with the problems in
 * errors (strings). */
int broker_config_load_policy(const char *path, char **policy_dirs, uint32_t pool_size, Policy **ret,
                              GPtrArray *errors);

const char *backend_kind_to_string(BackendKind k);
int backend_kind_from_string(const char *s, BackendKind *ret);
bool broker_config_uid_may_claim(const BrokerConfig *c, uid_t uid);
/* The config file now asks for another pool than the one running (Count=, Size= are
 * read at start only): a sentence saying so, or NULL. running_size 0: the size is the
 * host's (BackendOps.size_from_host), not the config's. */
char *broker_config_pool_change(const BrokerConfig *running, BackendKind running_kind, unsigned running_count,
                                uint64_t running_size);

/* The Count= in effect for a pool of this kind: the one set, else the backend's default.
 * kvm: the kernel's whole pool (RMA_COUNT_AUTO); it exists only for RMAs, and an RMA the
 * broker leaves in it is one a QEMU could take behind its back. hugetlb and memfd:
 * RMA_DEFAULT_COUNT, since that memory has other uses on the host. BACKEND_AUTO (not
 * chosen yet): RMA_DEFAULT_COUNT. */
unsigned broker_config_count(const BrokerConfig *c, BackendKind kind);
