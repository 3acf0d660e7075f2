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

/* Refills at RMA_EVENTS_PER_SEC up to RMA_EVENTS_BURST. */
static void refill(BusEvents *e) {
        uint64_t now = rma_now_usec(CLOCK_MONOTONIC);

        if (e->refilled_usec == 0)
                e->tokens = RMA_EVENTS_BURST;
        else
                e->tokens += (double) (now - e->refilled_usec) * RMA_EVENTS_PER_SEC / 1e6;
        if (e->tokens > RMA_EVENTS_BURST)
                e->tokens = RMA_EVENTS_BURST;
        e->refilled_usec = now;
}

/* May one more signal go out now? */
static bool take_token(BusEvents *e) {
        refill(e);
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

static void disarm(BusEvents *e) {
        e->announce = sd_event_source_disable_unref(e->announce);
        e->announce_bus = sd_bus_unref(e->announce_bus);
}

/* The time until the bucket holds one token again. */
static uint64_t usec_to_token(const BusEvents *e) {
        return e->tokens >= 1 ? 0 : (uint64_t) ((1 - e->tokens) * 1e6 / RMA_EVENTS_PER_SEC) + 1;
}

static int on_announce(sd_event_source *source, uint64_t usec, void *userdata) {
        BusEvents *e = userdata;

        (void) usec;
        refill(e);
        if (e->dropped > 0 && e->tokens < 1) {
                /* Still flooded: look again when a token is due. */
                if (sd_event_source_set_time_relative(source, usec_to_token(e)) >= 0 &&
                    sd_event_source_set_enabled(source, SD_EVENT_ONESHOT) >= 0)
                        return 0;
                disarm(e);   /* the next event that fits announces it */
                return 0;
        }
        announce_dropped(e, e->announce_bus);
        disarm(e);
        return 0;
}

/* Something was dropped: announce it when there is room, even if nothing else happens
 * (a flood of refusals ends, and the next event may be minutes away). Best effort: a bus
 * without an event loop waits for the next event, as before. */
static void arm(BusEvents *e, sd_bus *bus) {
        sd_event *loop = sd_bus_get_event(bus);

        if (e->announce || !loop)
                return;
        if (sd_event_add_time_relative(loop, &e->announce, CLOCK_MONOTONIC, usec_to_token(e), 0, on_announce, e) < 0)
                return;
        e->announce_bus = sd_bus_ref(bus);
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
        disarm(e);
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
        if (!take_token(e))
                arm(e, bus);
        else {
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

        if (!bus)
                return;
        if (!take_token(e)) {
                arm(e, bus);
                return;
        }
        announce_dropped(e, bus);
        u = bounded(uuid);
        d = bounded(domain);
        t = bounded(tenant);
        (void) sd_bus_emit_signal(bus, RMA_OBJECT_PATH, RMA_INTERFACE, "Refused", "sssssus", method, error, u, d, t,
                                  (uint32_t) uid, message);
}
