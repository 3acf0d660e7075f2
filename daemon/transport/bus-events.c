/* SlotChanged, Refused and EventsDropped, under one token bucket. */
#include <glib.h>
#include <string.h>
#include <time.h>

#include "bus-events.h"
#include "rma-names.h"
#include "rma-util.h"

/* What a caller wrote (a uuid, a domain name of a refused call) goes out at most this long:
 * a refusal must not carry a caller's megabytes to every listener. */
#define FIELD_MAX 255

/* May one more signal go out now? Refills at RMA_EVENTS_PER_SEC up to RMA_EVENTS_BURST. */
static bool take_token(BusEvents *e) {
        uint64_t now = rma_now_usec(CLOCK_MONOTONIC);

        if (e->refilled_usec == 0)
                e->tokens = RMA_EVENTS_BURST;
        else
                e->tokens += (double) (now - e->refilled_usec) * RMA_EVENTS_PER_SEC / 1e6;
        if (e->tokens > RMA_EVENTS_BURST)
                e->tokens = RMA_EVENTS_BURST;
        e->refilled_usec = now;
        if (e->tokens < 1) {
                e->dropped++;
                return false;
        }
        e->tokens -= 1;
        return true;
}

/* Before the next event that fits: how many did not. */
static void announce_dropped(BusEvents *e, sd_bus *bus) {
        if (e->dropped == 0 || e->tokens < 1)
                return;
        e->tokens -= 1;
        (void) sd_bus_emit_signal(bus, RMA_OBJECT_PATH, RMA_INTERFACE, "EventsDropped", "u", e->dropped);
        e->dropped = 0;
}

static char *bounded(const char *s) {
        return g_utf8_make_valid(s ? s : "", MIN(strlen(s ? s : ""), FIELD_MAX));
}

typedef struct SlotOwner {
        char uuid[RMA_UUID_STRING_LEN + 1];
        char *domain, *tenant;
} SlotOwner;

static void slot_owner_free(gpointer p) {
        SlotOwner *o = p;

        g_free(o->domain);
        g_free(o->tenant);
        g_free(o);
}

void bus_events_done(BusEvents *e) {
        g_clear_pointer(&e->owners, g_hash_table_destroy);
}

/* The domain a slot is for, or was for until this change: a reservation that expired, a
 * lease that ended, name what they were. Kept whether or not the signal goes out. */
static const SlotOwner *owner_of(BusEvents *e, const Slot *s) {
        SlotOwner *o;

        if (!e->owners)
                e->owners = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, slot_owner_free);
        o = g_hash_table_lookup(e->owners, GUINT_TO_POINTER(s->index));
        if (s->state != SLOT_RESERVED && s->state != SLOT_LEASED)
                return o;
        if (!o) {
                o = g_new0(SlotOwner, 1);
                g_hash_table_insert(e->owners, GUINT_TO_POINTER(s->index), o);
        }
        if (strcmp(o->uuid, s->uuid) != 0 || g_strcmp0(o->domain, s->domain) != 0) {
                g_strlcpy(o->uuid, s->uuid, sizeof(o->uuid));
                g_free(o->domain);
                o->domain = g_strdup(s->domain);
                g_free(o->tenant);
                o->tenant = g_strdup(s->tenant);
        }
        return o;
}

void bus_events_slot_changed(BusEvents *e, sd_bus *bus, const Slot *s, const char *reason) {
        const SlotOwner *o;

        if (!bus)
                return;
        o = owner_of(e, s);
        if (take_token(e)) {
                announce_dropped(e, bus);
                (void) sd_bus_emit_signal(bus, RMA_OBJECT_PATH, RMA_INTERFACE, "SlotChanged", "ussssus", s->index,
                                          slot_state_to_string(s->state), o && o->domain ? o->domain : "",
                                          o ? o->uuid : "", o && o->tenant ? o->tenant : "",
                                          (uint32_t) (s->state == SLOT_LEASED ? s->pid : 0), reason);
        }
        /* Once free again the slot is nobody's: its next events name the next domain. */
        if (s->state == SLOT_FREE)
                g_hash_table_remove(e->owners, GUINT_TO_POINTER(s->index));
}

void bus_events_refused(BusEvents *e, sd_bus *bus, const char *method, const char *error, const char *uuid,
                        const char *domain, const char *tenant, uid_t uid, const char *message) {
        g_autofree char *u = NULL, *d = NULL, *t = NULL;

        if (!bus || !take_token(e))
                return;
        announce_dropped(e, bus);
        u = bounded(uuid);
        d = bounded(domain);
        t = bounded(tenant);
        (void) sd_bus_emit_signal(bus, RMA_OBJECT_PATH, RMA_INTERFACE, "Refused", "sssssus", method, error, u, d, t,
                                  (uint32_t) uid, message);
}
