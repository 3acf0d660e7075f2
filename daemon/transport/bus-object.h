/* The org.rmabroker.Broker1 object: the D-Bus face of the broker core, served on the
 * system bus and on every broker.sock connection. Every signal the broker sends is
 * emitted here.
 *
 * It reaches down only: the core's rules (broker.h), the leases (lease.h) and the
 * recycler (recycler.h). What only the daemon can do (reload the policy, with systemd's
 * RELOADING=1) is a callback that the daemon fills in. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>

#include "broker.h"
#include "bus-events.h"
#include "lease.h"
#include "polkit-check.h"
#include "recycler.h"

/* What the object serves, shared by every bus and connection it is added to. */
typedef struct BusService {
        Broker *broker;
        Leases *leases;
        Recycler *recycler;
        /* Reload the tenant policy; on failure errors lists every problem. */
        int (*reload)(GPtrArray *errors, void *userdata);
        void *reload_userdata;
        /* Drain (reason, may be "") or undrain (NULL): kept where a restart finds it, then
         * applied to the broker; 0 or a negative errno (nothing changed). */
        int (*set_draining)(const char *reason, void *userdata);
        void *set_draining_userdata;
        char *pending_pool_change;   /* PendingPoolChange: the config asks for another pool, or NULL */
        sd_bus *bus;                 /* the system bus, where events go (borrowed; NULL: none) */
        BusEvents events;
        PolkitChecks polkit;         /* checks pending with polkitd, on bus */
} BusService;

void bus_service_done(BusService *s);

/* What broker.sock read of a client when it connected (never what the client says). */
typedef struct PeerCredentials {
        struct ucred ucred;      /* SO_PEERCRED */
        gid_t *gids;             /* SO_PEERGROUPS, with the primary group */
        size_t n_gids;
        int pidfd;               /* the connecting process */
        int cgroup_fd;           /* its /proc/PID/cgroup, or -EBADF */
        uint64_t start_time;     /* QemuUsers: its start time (0: unknown) */
} PeerCredentials;

/* A method handler's userdata: the service, plus the broker.sock peer's credentials when
 * the call came over the socket (NULL on the system bus). */
typedef struct BusOrigin BusOrigin;
struct BusOrigin {
        BusService *service;
        const PeerCredentials *peer;
        /* A reply sent later than the call's dispatch (after polkit) was queued on the
         * connection: broker.sock drives its sd-bus itself and must write it (NULL: the
         * system bus, which the event loop drives). */
        void (*answered_later)(BusOrigin *origin);
};

/* Register the object: everything but Claim, which needs SCM_RIGHTS and a direct peer.
 * That is all of it on the system bus. A broker.sock connection gets it in two steps:
 * bus_object_add_claim() at connect (all that the wrapper ever calls, and registering the
 * whole object costs more than a Claim), then this before the connection's first other
 * call is dispatched. The two must be given different origins (sd-bus keys a path's
 * vtables by userdata). */
int bus_object_add(sd_bus *bus, BusOrigin *origin);
int bus_object_add_claim(sd_bus *bus, BusOrigin *claim_origin);
/* PropertiesChanged for the counts of the states in changed_states (bit 1 << SlotState). */
void bus_object_emit_counts_changed(sd_bus *bus, unsigned changed_states);
/* PropertiesChanged for Draining and DrainReason. */
void bus_object_emit_draining_changed(sd_bus *bus);
/* A new PendingPoolChange (taken; NULL: none), announced on bus (may be NULL) if it differs. */
void bus_service_set_pending_pool_change(BusService *s, sd_bus *bus, char *change);
