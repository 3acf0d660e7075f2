/* The daemon: it owns every object of the broker and wires them to the event loop, the
 * system bus, broker.sock and systemd. Nothing below it calls it: the objects it owns
 * change the pool, and once per loop iteration the manager notices (the pool's and the
 * stats' generations) and re-arms the expiry timer, wakes the recycler and schedules the
 * signals and the metrics file. */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "bus-object.h"
#include "fd-store.h"
#include "lease.h"
#include "recycler.h"
#include "registry.h"
#include "socket-server.h"

typedef struct Manager {
        int runtime_lock;                /* held: one broker per runtime directory */
        sd_event *event;
        Broker *broker;                  /* the rules and the state they act on */
        const BrokerConfig *config;      /* the broker's */
        Recycler *recycler;              /* brings the slots of ended leases back to free */
        Leases *leases;                  /* the claimants' watches; ends leases */
        Registry *registry;              /* the lease registry under the runtime dir */
        FdStore *fd_store;               /* systemd's fd store: regions survive a restart */
        BusService service;              /* what the D-Bus object serves, on the bus and the socket */
        BusOrigin bus_origin;
        sd_bus *bus;                     /* system bus; NULL when none is reachable */
        SocketServer *socket_server;

        sd_event_source *sync_source;    /* post source: notices what the iteration changed */
        uint64_t seen_pool_generation;
        unsigned seen_stats_generation;
        sd_event_source *expiry_source;  /* armed only while a reservation waits */
        sd_event_source *emit_source;    /* coalesces PropertiesChanged and metrics writes (10 ms window) */
        sd_event_source *registry_source; /* every 5 s: is the registry still whole? */
        unsigned metrics_generation;     /* Broker.stats.generation that MetricsFile= shows */
        bool metrics_failing;
} Manager;

int manager_new(BrokerConfig *config, Manager **ret);   /* takes ownership of config */
int manager_startup(Manager *m);
Manager *manager_free(Manager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Manager, manager_free)

/* Reload the tenant policy, logging every problem when the new one is invalid. */
int manager_reload_policy(Manager *m, GPtrArray *errors);
/* STATUS= for systemctl status (under systemd only). */
void manager_notify_status(Manager *m);
