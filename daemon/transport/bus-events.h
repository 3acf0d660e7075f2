/* The broker's event signals on the system bus, for `rmactl monitor` and anyone who
 * follows the pool slot by slot (libvirt's `virsh event --loop`, machined's MachineNew):
 *   SlotChanged(u slot, s state, s domain, s uuid, s tenant, u pid, s reason)
 *   Refused(s method, s error, s uuid, s domain, s tenant, u uid, s message)
 *   EventsDropped(u count)
 * Under one rate bound (a token bucket: RMA_EVENTS_BURST at once, RMA_EVENTS_PER_SEC
 * after), so that no flood of calls (refusals cost a caller nothing) can fill the bus or
 * its listeners' queues. What the bound drops is counted and announced once there is room
 * again, by a timer of the bus's event loop if no other event comes first; the counts
 * (PropertiesChanged) and the journal stay complete. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "pool.h"

#define RMA_EVENTS_BURST 256u
#define RMA_EVENTS_PER_SEC 128u

typedef struct BusEvents {
        GHashTable *owners;       /* slot -> its last domain's (uuid, domain, tenant), for the events
                                   * of its end, when the pool has already let them go */
        double tokens;
        uint64_t refilled_usec;   /* CLOCK_MONOTONIC of the last refill (0: never: a full bucket) */
        uint32_t dropped;         /* not sent since the last EventsDropped */
        sd_event_source *announce;   /* armed while something was dropped: EventsDropped once a
                                      * token is there, though no other event may come */
        sd_bus *announce_bus;        /* where it goes (a reference while armed) */
} BusEvents;

void bus_events_done(BusEvents *e);

/* bus may be NULL (no system bus): nothing is sent, nothing counted. */
void bus_events_slot_changed(BusEvents *e, sd_bus *bus, const Slot *s, const char *reason);
void bus_events_refused(BusEvents *e, sd_bus *bus, const char *method, const char *error, const char *uuid,
                        const char *domain, const char *tenant, uid_t uid, const char *message);
