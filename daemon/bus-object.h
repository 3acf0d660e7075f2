/* The org.rmabroker.Broker1 object: properties and methods, served on the system bus
 * and on every broker.sock connection. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "manager.h"

/* Register the object on a bus. on_socket adds Claim, which needs SCM_RIGHTS and a
 * direct peer, so it is never offered on the system bus. */
int bus_object_add(sd_bus *bus, BusOrigin *origin, bool on_socket);
/* PropertiesChanged on the system bus for the counts of the states in changed_states
 * (bit 1 << SlotState). */
void bus_object_emit_counts_changed(Manager *m, unsigned changed_states);
