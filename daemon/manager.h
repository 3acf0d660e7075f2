/* The broker's single owner of state: config, backend, pool, bus connections, peers,
 * and the event sources that watch leases and reservation expiry. */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "config.h"
#include "policy.h"
#include "pool.h"
#include "reclaim.h"

typedef struct Manager Manager;
typedef struct Peer Peer;

/* What a D-Bus method handler is called with: the manager, plus the broker.sock peer
 * when the call came over the socket (NULL on the system bus). */
typedef struct BusOrigin {
        Manager *manager;
        Peer *peer;
} BusOrigin;

struct Manager {
        sd_event *event;
        BrokerConfig *config;
        Backend *backend;
        Pool *pool;
        Policy *policy;                  /* replaced whole on a valid reload, never edited */

        sd_bus *bus;                     /* system bus; NULL when none is reachable */
        BusOrigin bus_origin;

        char *socket_path;
        int listen_fd;
        sd_event_source *listen_source;
        sd_event_source *accept_retry_source;  /* re-enables accept after EMFILE */
        GHashTable *peers;               /* Peer* set; owns the peers */
        unsigned n_peers[3];             /* per PeerClass */
        GHashTable *peers_per_uid;       /* uid -> open connections, PEER_OTHER only */
        GHashTable *peers_per_pid;       /* pid -> open connections, all but root */
        unsigned next_peer_id;

        Reclaimer *reclaimer;            /* tears down the regions of ended leases */
        sd_event_source *expiry_source;
        sd_event_source *emit_source;    /* one PropertiesChanged per loop iteration */
};

int manager_new(BrokerConfig *config, Manager **ret);   /* takes ownership of config */
int manager_startup(Manager *m);
Manager *manager_free(Manager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Manager, manager_free)

/* Bind a reserved slot to the claiming process; takes ownership of pidfd. */
int manager_start_lease(Manager *m, Slot *s, pid_t pid, int pidfd);
void manager_end_lease(Manager *m, Slot *s, const char *why);
/* Load the tenant policy for this pool. On failure *errors lists every problem and
 * the current policy stays. */
int manager_reload_policy(Manager *m, GPtrArray *errors);
/* Load and check config + policy without touching anything; for --check-policy. */
int manager_check_policy(const BrokerConfig *config);

/* Counts changed: re-arm the expiry timer, and tell the bus after the current reply
 * (coalesced: a burst of changes gives one signal). */
void manager_pool_changed(Manager *m);
