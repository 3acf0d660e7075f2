/* The daemon around the broker core: the event loop, the system bus connection,
 * broker.sock and its peers, lease watches, reservation expiry and region teardown. */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "bus-object.h"
#include "fd-store.h"
#include "recycle.h"
#include "registry.h"

typedef struct Peer Peer;

struct Manager {
        sd_event *event;
        Broker *broker;                  /* the rules and the state they act on */
        const BrokerConfig *config;      /* the broker's, for the transport's limits */

        sd_bus *bus;                     /* system bus; NULL when none is reachable */
        BusOrigin bus_origin;

        char *socket_path;
        int listen_fd;
        sd_event_source *listen_source;
        sd_event_source *accept_retry_source;  /* re-enables accept after EMFILE */
        bool kernel_refuses_fds;         /* SO_PASSRIGHTS took: no relay needed */
        GHashTable *peers;               /* Peer* set; owns the peers */
        unsigned n_peers[3];             /* per PeerClass */
        GHashTable *peers_per_uid;       /* uid -> open connections, PEER_OTHER only */
        GHashTable *peers_per_pid;       /* pid -> open connections, all but root */
        unsigned next_peer_id;

        Recycler *recycler;              /* brings the slots of ended leases back to free */
        Registry *registry;              /* the lease registry under the runtime dir */
        FdStore *fd_store;               /* systemd's fd store: regions survive a restart */
        bool socket_activated;           /* broker.sock came from rma-brokerd.socket */
        sd_event_source *expiry_source;  /* armed only while a reservation waits */
        sd_event_source *emit_source;    /* coalesces PropertiesChanged and metrics writes (10 ms window) */
        unsigned metrics_generation;     /* Broker.stats.generation that MetricsFile= shows */
        bool metrics_failing;
        char *pending_pool_change;       /* PendingPoolChange: the config asks for another pool, or NULL */
};

int manager_new(BrokerConfig *config, Manager **ret);   /* takes ownership of config */
int manager_startup(Manager *m);
Manager *manager_free(Manager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Manager, manager_free)

/* Bind a reserved slot to the claiming process (started at pid_start, its identity for
 * the registry; 0: unknown); takes ownership of pidfd. */
int manager_start_lease(Manager *m, Slot *s, pid_t pid, uint64_t pid_start, int pidfd);
void manager_end_lease(Manager *m, Slot *s, LeaseEnd why);
/* Reload the tenant policy, logging every problem when the new one is invalid. */
int manager_reload_policy(Manager *m, GPtrArray *errors);
/* ForgetRegion: an admin vouches that a pinned slot's old region is gone; the slot is
 * refilled. 0, or -EINVAL/-EBUSY with *message saying why not. */
int manager_forget_region(Manager *m, unsigned slot, char **message);
/* Load and check config + policy without touching anything; for --check-policy.
 * pool_source says where config->count came from ("the running pool"), NULL: "a pool". */
int manager_check_policy(const BrokerConfig *config, const char *pool_source);

/* STATUS= for systemctl status (under systemd only). */
void manager_notify_status(Manager *m);
/* The pool changed: re-arm the expiry timer, and tell the bus after the current reply
 * (coalesced: the changes of a 10 ms window give one signal). */
void manager_pool_changed(Manager *m);
