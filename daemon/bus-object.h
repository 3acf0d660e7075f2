/* The org.rmabroker.Broker1 object: the D-Bus face of the broker core, served on the
 * system bus and on every broker.sock connection. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

typedef struct Manager Manager;
typedef struct Peer Peer;

/* What a method handler is called with: the manager, plus the broker.sock peer when
 * the call came over the socket (NULL on the system bus). */
typedef struct BusOrigin {
        Manager *manager;
        Peer *peer;
} BusOrigin;

/* Register the object on a bus. on_socket adds Claim, which needs SCM_RIGHTS and a
 * direct peer, so it is never offered on the system bus. */
int bus_object_add(sd_bus *bus, BusOrigin *origin, bool on_socket);
/* PropertiesChanged on the system bus for the counts of the states in changed_states
 * (bit 1 << SlotState). */
void bus_object_emit_counts_changed(Manager *m, unsigned changed_states);
