/* The org.rmabroker.Broker1 object: the D-Bus face of the broker core.
 *
 * Every handler only reads its arguments, builds the caller from what the transport
 * vouches for, calls the core (broker.c), maps a refusal to its
 * org.rmabroker.Broker1.Error.* name, and replies. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "bus-authorize.h"
#include "bus-object.h"
#include "cleanup.h"
#include "log.h"
#include "metrics.h"
#include "rma-names.h"
#include "rma-util.h"

static const char *const refusal_error[_BROKER_REFUSAL_MAX] = {
        [BROKER_ACCESS_DENIED] = RMA_ERROR_ACCESS_DENIED,
        [BROKER_INVALID_ARGUMENT] = RMA_ERROR_INVALID_ARGUMENT,
        [BROKER_ALREADY_RESERVED] = RMA_ERROR_ALREADY_RESERVED,
        [BROKER_ALREADY_CLAIMED] = RMA_ERROR_ALREADY_CLAIMED,
        [BROKER_NOT_RESERVED] = RMA_ERROR_NOT_RESERVED,
        [BROKER_NO_SUCH_TENANT] = RMA_ERROR_NO_SUCH_TENANT,
        [BROKER_QUOTA_EXCEEDED] = RMA_ERROR_QUOTA_EXCEEDED,
        [BROKER_POOL_EXHAUSTED] = RMA_ERROR_POOL_EXHAUSTED,
        [BROKER_DRAINING] = RMA_ERROR_DRAINING,
};

/* A refusal of the core as a D-Bus error; takes the message. */
static int reply_refusal(sd_bus_error *error, BrokerRefusal refusal, char *message) {
        g_autofree char *owned = message;

        return sd_bus_error_set(error, refusal_error[refusal], owned);
}

static BusService *service_of(void *userdata) {
        return ((BusOrigin *) userdata)->service;
}

static Broker *broker_of(void *userdata) {
        return service_of(userdata)->broker;
}

void bus_service_done(BusService *s) {
        polkit_checks_done(&s->polkit);
        g_clear_pointer(&s->pending_pool_change, g_free);
        bus_events_done(&s->events);
}

/* Whether the broker's own rules make the caller an admin (root, AdminGroup=). */
static bool caller_is_admin(BusService *service, Caller *caller) {
        g_autofree char *why = NULL;

        return broker_caller_may_administer(service->broker, caller, &why);
}

/* What polkit's verdict adds to a refusal: how to get further. */
static const char *polkit_hint(PolkitVerdict verdict) {
        switch (verdict) {
        case POLKIT_CHALLENGE:
                return " (polkit would let an administrator authenticate: run rmactl on a terminal, or call with "
                       "interactive authorization allowed, e.g. busctl --allow-interactive-authorization=yes)";
        case POLKIT_DENIED:
                return " (nor does polkit grant it)";
        default:
                return "";
        }
}

/* A refusal of the core with polkit's hint after its message. Where polkit would ask for a
 * password and the call did not allow it, the error says so by its name, as systemd's
 * services do: a client may call again with interactive authorization allowed. */
static int reply_refusal_polkit(sd_bus_error *error, BrokerRefusal refusal, char *message, PolkitVerdict verdict) {
        g_autofree char *owned = message;
        g_autofree char *text = g_strconcat(owned, polkit_hint(verdict), NULL);

        if (verdict == POLKIT_CHALLENGE)
                return sd_bus_error_set(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, text);
        return reply_refusal(error, refusal, g_steal_pointer(&text));
}

/* A refused Reserve or Claim, also as a Refused signal (rmactl monitor): what a VM start
 * ran into. verdict: polkit's, where it was asked (else POLKIT_UNAVAILABLE). */
static int reply_refusal_told(BusService *service, const Caller *caller, const char *method, const char *uuid,
                              const char *domain, const char *tenant, sd_bus_error *error, BrokerRefusal refusal,
                              char *message, PolkitVerdict verdict) {
        bus_events_refused(&service->events, service->bus, method, refusal_error[refusal], uuid, domain, tenant,
                           caller->uid, message);
        return reply_refusal_polkit(error, refusal, message, verdict);
}

/* On broker.sock the credentials were read from the socket at accept (sd-bus there only
 * sees the relay); on the bus, dbus-daemon vouches for the sender. Never anything the
 * client says about itself. */
static int caller_get(BusOrigin *o, sd_bus_message *m, Caller *ret, sd_bus_error *error) {
        g_autoptr(sd_bus_creds) creds = NULL;
        const gid_t *supplementary = NULL;
        gid_t egid;
        int r, n;

        *ret = (Caller) { .cgroup_fd = -EBADF, .pidfd = -EBADF };
        if (o->peer) {
                ret->cgroup_fd = o->peer->cgroup_fd;
                ret->pidfd = o->peer->pidfd;
                ret->start_time = o->peer->start_time;
                ret->uid = o->peer->ucred.uid;
                ret->pid = o->peer->ucred.pid;
                /* Borrowed: the peer outlives the call, and a Claim never reads them. */
                ret->gids = o->peer->gids;
                ret->gids_borrowed = true;
                ret->n_gids = o->peer->n_gids;
                ret->gids_known = true;
                return 0;
        }
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS |
                                      SD_BUS_CREDS_PID, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &ret->uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot read the caller's credentials: %m");
        if (sd_bus_creds_get_pid(creds, &ret->pid) < 0)
                ret->pid = 0;
        n = sd_bus_creds_get_supplementary_gids(creds, &supplementary);
        if (n < 0)
                n = 0;
        ret->gids = g_new0(gid_t, (size_t) n + 1);
        if (n > 0)
                memcpy(ret->gids, supplementary, (size_t) n * sizeof(gid_t));
        ret->n_gids = (size_t) n;
        if (sd_bus_creds_get_egid(creds, &egid) >= 0)
                ret->gids[ret->n_gids++] = egid;
        ret->gids_known = n > 0;
        return 0;
}

/* A method's arguments (types and pointers as sd_bus_message_read() takes them) and its
 * caller. */
static int read_call(void *userdata, sd_bus_message *msg, Caller *caller, sd_bus_error *error, const char *types,
                     ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = sd_bus_message_readv(msg, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        return caller_get(userdata, msg, caller, error);
}

/* Properties: one getter each. The count properties' names stand here once, for the
 * vtable and for PropertiesChanged alike. */
#define PROPERTY_FREE "FreeRmas"
#define PROPERTY_RESERVED "ReservedRmas"
#define PROPERTY_LEASED "LeasedRmas"
#define PROPERTY_SCRUBBING "ScrubbingRmas"
#define PROPERTY_HELD_ELSEWHERE "HeldElsewhereRmas"

static const char *const count_property[_SLOT_STATE_MAX] = {
        [SLOT_FREE] = PROPERTY_FREE,
        [SLOT_RESERVED] = PROPERTY_RESERVED,
        [SLOT_LEASED] = PROPERTY_LEASED,
        [SLOT_SCRUBBING] = PROPERTY_SCRUBBING,
        [SLOT_HELD_ELSEWHERE] = PROPERTY_HELD_ELSEWHERE,
};

#define COUNT_PROPERTY(fn, state)                                                                               \
        static int fn(sd_bus *bus, const char *path, const char *interface, const char *property,                \
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {                              \
                return sd_bus_message_append(reply, "u", (uint32_t) pool_count(broker_of(userdata)->pool, state)); \
        }
COUNT_PROPERTY(property_get_free, SLOT_FREE)
COUNT_PROPERTY(property_get_reserved, SLOT_RESERVED)
COUNT_PROPERTY(property_get_leased, SLOT_LEASED)
COUNT_PROPERTY(property_get_scrubbing, SLOT_SCRUBBING)
COUNT_PROPERTY(property_get_held_elsewhere, SLOT_HELD_ELSEWHERE)

static int property_get_total(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", (uint32_t) broker_of(userdata)->pool->n_slots);
}

static int property_get_backend(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", broker_of(userdata)->backend->ops->name);
}

static int property_get_kernel_capability(sd_bus *bus, const char *path, const char *interface, const char *property,
                                          sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", broker_of(userdata)->backend->kernel_capability);
}

static int property_get_pending_pool_change(sd_bus *bus, const char *path, const char *interface,
                                            const char *property, sd_bus_message *reply, void *userdata,
                                            sd_bus_error *error) {
        const char *change = service_of(userdata)->pending_pool_change;

        return sd_bus_message_append(reply, "s", change ? change : "");
}

static int property_get_rma_size(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "t", broker_of(userdata)->backend->region_size);
}

static int property_get_draining(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", broker_of(userdata)->drain_reason != NULL);
}

static int property_get_drain_reason(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const char *reason = broker_of(userdata)->drain_reason;

        return sd_bus_message_append(reply, "s", reason ? reason : "");
}

/* Methods */

/* How long a call took the broker, from its dispatch to its answer, in a histogram. */
static void observe_since(Histogram *h, uint64_t start_usec) {
        histogram_observe(h, rma_now_usec(CLOCK_MONOTONIC) - start_usec);
}

/* The core decides, quotas and all; c->polkit_tenant says what polkit granted (verdict:
 * polkit's answer, or POLKIT_UNAVAILABLE where it was not asked). The histogram holds the
 * broker's own time, from start, never polkitd's. */
static int reserve_and_reply(sd_bus_message *msg, BusService *service, Caller *caller, uint64_t start,
                             PolkitVerdict verdict, sd_bus_error *error) {
        const char *uuid, *domain, *tenant;
        char *message = NULL;
        BrokerRefusal refusal;
        Slot *s = NULL;
        int r;

        r = sd_bus_message_rewind(msg, true);
        if (r >= 0)
                r = sd_bus_message_read(msg, "sss", &uuid, &domain, &tenant);
        if (r < 0)
                return r;
        refusal = broker_reserve(service->broker, caller, uuid, domain, tenant, start, &s, &message);
        if (refusal)
                r = reply_refusal_told(service, caller, "Reserve", uuid, domain, tenant, error, refusal, message,
                                       verdict);
        else
                r = sd_bus_reply_method_return(msg, "u", s->index);
        observe_since(&service->broker->stats.reserve_seconds, start);
        return r;
}

static int reserve_granted(sd_bus_message *msg, BusService *service, Caller *caller, const char *tenant,
                           sd_bus_error *error) {
        caller->polkit_tenant = tenant;
        return reserve_and_reply(msg, service, caller, rma_now_usec(CLOCK_MONOTONIC), POLKIT_GRANTED, error);
}

static int reserve_refused(sd_bus_message *msg, BusService *service, Caller *caller, const char *tenant,
                           PolkitVerdict verdict, sd_bus_error *error) {
        return reserve_and_reply(msg, service, caller, rma_now_usec(CLOCK_MONOTONIC), verdict, error);
}

/* org.rmabroker.reserve, where the tenant's Users=/Groups= do not name the caller: the
 * details a rules.d rule delegates by (the uuid canonical, as the broker keys it). */
static int authorize_reserve(void *userdata, sd_bus_message *msg, Caller *caller, const char *method,
                             const char *tenant, const char *domain, const char *raw_uuid, AuthorizedFn granted,
                             RefusedFn refused, sd_bus_error *error) {
        char uuid[RMA_UUID_STRING_LEN + 1];

        if (rma_uuid_canonicalize(raw_uuid, uuid) < 0)
                return -EINVAL;   /* the core checked it before */
        return bus_authorize(userdata, msg, caller,
                             &(Authorization) { .action = RMA_ACTION_RESERVE,
                                                .details = (const char *const[]) { "method", method, "tenant", tenant,
                                                                                   "domain", domain, "uuid", uuid,
                                                                                   NULL },
                                                .arg = tenant, .granted = granted, .refused = refused },
                             error);
}

static int method_reserve(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint64_t start = rma_now_usec(CLOCK_MONOTONIC);
        g_autofree char *grant_tenant = NULL;
        g_auto(Caller) caller = { 0 };
        const char *uuid, *domain, *tenant;
        int r;

        r = read_call(userdata, msg, &caller, error, "sss", &uuid, &domain, &tenant);
        if (r < 0)
                return r;
        /* Root, the tenant's own accounts, and every other refusal: the core alone, now. */
        if (!broker_reserve_needs_grant(broker_of(userdata), &caller, uuid, domain, tenant, &grant_tenant))
                return reserve_and_reply(msg, service_of(userdata), &caller, start, POLKIT_UNAVAILABLE, error);
        return authorize_reserve(userdata, msg, &caller, "Reserve", grant_tenant, domain, uuid, reserve_granted,
                                 reserve_refused, error);
}

static int release_and_reply(sd_bus_message *msg, BusService *service, Caller *caller, PolkitVerdict verdict,
                             sd_bus_error *error) {
        char *message = NULL;
        BrokerRefusal refusal;
        const char *uuid;
        Slot *s = NULL;
        int r;

        r = sd_bus_message_rewind(msg, true);
        if (r >= 0)
                r = sd_bus_message_read(msg, "s", &uuid);
        if (r < 0)
                return r;
        refusal = broker_release(service->broker, caller, uuid, &s, &message);
        if (refusal)
                return reply_refusal_polkit(error, refusal, message, verdict);
        if (s && !leases_end_if_exited(service->leases, s))
                /* The region is mapped by a live QEMU; it returns when that process exits. */
                log_info("Release of domain %s (%s): pid %d still holds RMA slot %u; it is returned when that "
                         "process exits", s->domain, s->uuid, (int) s->pid, s->index);
        return sd_bus_reply_method_return(msg, "");
}

static int release_granted(sd_bus_message *msg, BusService *service, Caller *caller, const char *tenant,
                           sd_bus_error *error) {
        caller->polkit_tenant = tenant;
        return release_and_reply(msg, service, caller, POLKIT_GRANTED, error);
}

static int release_refused(sd_bus_message *msg, BusService *service, Caller *caller, const char *tenant,
                           PolkitVerdict verdict, sd_bus_error *error) {
        return release_and_reply(msg, service, caller, verdict, error);
}

static int method_release(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        g_autofree char *grant_tenant = NULL, *domain = NULL;
        g_auto(Caller) caller = { 0 };
        const char *uuid;
        int r;

        r = read_call(userdata, msg, &caller, error, "s", &uuid);
        if (r < 0)
                return r;
        if (!broker_release_needs_grant(broker_of(userdata), &caller, uuid, &grant_tenant, &domain))
                return release_and_reply(msg, service_of(userdata), &caller, POLKIT_UNAVAILABLE, error);
        return authorize_reserve(userdata, msg, &caller, "Release", grant_tenant, domain, uuid, release_granted,
                                 release_refused, error);
}

/* ForgetRegion's audit record: root's (or polkit's) word against the pool's proof, on the
 * audit trail also when refused. */
static void audit_forget(BusService *service, const Caller *caller, uint32_t slot, bool success) {
        audit_log_rma(service->broker->audit, &(AuditRecord) { .reason = "forget", .slot = (int) slot,
                                                              .size = service->broker->backend->region_size,
                                                              .pid = caller->pid, .uid = caller->uid,
                                                              .success = success });
}

static int forget_region_granted(sd_bus_message *msg, BusService *service, Caller *caller, const char *arg,
                                 sd_bus_error *error) {
        uint32_t slot = (uint32_t) g_ascii_strtoull(arg, NULL, 10);
        g_autofree char *message = NULL;
        int r;

        r = recycler_forget_region(service->recycler, slot, &message);
        audit_forget(service, caller, slot, r >= 0);
        if (r < 0)
                return sd_bus_error_set(error, RMA_ERROR_INVALID_ARGUMENT, message);
        service->broker->stats.forgotten_regions++;
        service->broker->stats.generation++;
        return sd_bus_reply_method_return(msg, "");
}

static int forget_region_refused(sd_bus_message *msg, BusService *service, Caller *caller, const char *arg,
                                 PolkitVerdict verdict, sd_bus_error *error) {
        char *message = NULL;
        BrokerRefusal refusal = broker_check_forget_region(service->broker, caller, &message);

        audit_forget(service, caller, (uint32_t) g_ascii_strtoull(arg, NULL, 10), false);
        return reply_refusal_polkit(error, refusal, message, verdict);
}

/* Root, or whom polkit lets (org.rmabroker.forget-region, auth_admin every time), not
 * AdminGroup=: if the admin is wrong, the pool holds one region more than Count= until the
 * unseen holder lets go. */
static int method_forget_region(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        g_auto(Caller) caller = { 0 };
        char slot_text[16];
        uint32_t slot;
        int r;

        r = read_call(userdata, msg, &caller, error, "u", &slot);
        if (r < 0)
                return r;
        snprintf(slot_text, sizeof(slot_text), "%u", slot);
        return bus_authorize(userdata, msg, &caller,
                             &(Authorization) { .action = RMA_ACTION_FORGET_REGION, .own_rules_allow = caller.uid == 0,
                                                .details = (const char *const[]) { "slot", slot_text, NULL },
                                                .arg = slot_text, .granted = forget_region_granted,
                                                .refused = forget_region_refused },
                             error);
}

/* A reply of one array: element_signature's container, filled by append. */
typedef int (*AppendElementsFn)(sd_bus_message *reply, void *userdata);

static int reply_array(sd_bus_message *msg, const char *element_signature, AppendElementsFn append, void *userdata) {
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', element_signature);
        if (r < 0)
                return r;
        r = append(reply, userdata);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* One row per slot: ListRmas's fields, and ListSlots's times after them (CLOCK_REALTIME
 * µs of the last change and, for a reservation, of its expiry; 0: none). */
static int append_slot_rows(sd_bus_message *reply, const Pool *p, bool with_times) {
        uint64_t now_mono = rma_now_usec(CLOCK_MONOTONIC), now_real = rma_now_usec(CLOCK_REALTIME);

        for (unsigned i = 0; i < p->n_slots; i++) {
                const Slot *s = &p->slots[i];
                uint64_t expires = s->state == SLOT_RESERVED && s->expires_usec > now_mono
                                           ? now_real + (s->expires_usec - now_mono) : 0;
                int r = sd_bus_message_open_container(reply, 'r', with_times ? "ussssutt" : "ussssu");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ussssu", s->index, slot_state_to_string(s->state), s->uuid,
                                                  s->domain ? s->domain : "", s->tenant ? s->tenant : "",
                                                  (uint32_t) s->pid);
                if (r >= 0 && with_times)
                        r = sd_bus_message_append(reply, "tt", s->since_realtime, expires);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int append_slots(sd_bus_message *reply, void *userdata) {
        return append_slot_rows(reply, broker_of(userdata)->pool, true);
}

/* Everything a console shows of each slot, times in CLOCK_REALTIME µs (0: none). */
static int method_list_slots(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return reply_array(msg, "(ussssutt)", append_slots, userdata);
}

/* Refused by the broker's rules and by polkit: the core's refusal (logged as a denial). */
static int manage_refused(sd_bus_message *msg, BusService *service, Caller *caller, const char *method,
                          PolkitVerdict verdict, sd_bus_error *error) {
        char *message = NULL;
        BrokerRefusal refusal = broker_require_admin(service->broker, caller, method, &message);

        return reply_refusal_polkit(error, refusal, message, verdict);
}

/* Authorize an org.rmabroker.manage call: AdminGroup= and root at once, polkit for the
 * others (details: the method, for rules.d). */
static int authorize_manage(void *userdata, sd_bus_message *msg, Caller *caller, const char *method, const char *arg,
                            AuthorizedFn granted, RefusedFn refused, sd_bus_error *error) {
        BusService *service = service_of(userdata);

        return bus_authorize(userdata, msg, caller,
                             &(Authorization) { .action = RMA_ACTION_MANAGE,
                                                .own_rules_allow = caller_is_admin(service, caller),
                                                .details = (const char *const[]) { "method", method, NULL },
                                                .arg = arg, .granted = granted, .refused = refused },
                             error);
}

/* The policy on disk checked as Reload would, not applied: its problems, verbatim. For
 * those who may reload (the messages quote the files). */
static int check_policy_granted(sd_bus_message *msg, BusService *service, Caller *caller, const char *arg,
                                sd_bus_error *error) {
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        (void) broker_check_policy(service->broker, errors);
        g_ptr_array_add(errors, NULL);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append_strv(reply, (char **) errors->pdata);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

static int method_check_policy(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        g_auto(Caller) caller = { 0 };
        int r;

        r = caller_get(userdata, msg, &caller, error);
        if (r < 0)
                return r;
        return authorize_manage(userdata, msg, &caller, "CheckPolicy", "CheckPolicy", check_policy_granted,
                                manage_refused, error);
}

static int can_administer_granted(sd_bus_message *msg, BusService *service, Caller *caller, const char *arg,
                                  sd_bus_error *error) {
        return sd_bus_reply_method_return(msg, "bs", true, "");
}

static int can_administer_refused(sd_bus_message *msg, BusService *service, Caller *caller, const char *arg,
                                  PolkitVerdict verdict, sd_bus_error *error) {
        g_autofree char *why = NULL;

        (void) broker_caller_may_administer(service->broker, caller, &why);
        if (verdict == POLKIT_CHALLENGE)
                return sd_bus_reply_method_return(msg, "bs", false, "polkit asks for an administrator's password "
                                                  "first (org.rmabroker.manage): call with interactive "
                                                  "authorization allowed");
        return sd_bus_reply_method_return(msg, "bs", false, why);
}

/* Whether Reload, Drain and Undrain would be allowed: the broker's rules, then polkit
 * (org.rmabroker.manage, never interactive: this only asks). */
static int method_can_administer(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusService *service = service_of(userdata);
        g_auto(Caller) caller = { 0 };
        int r;

        r = caller_get(userdata, msg, &caller, error);
        if (r < 0)
                return r;
        return bus_authorize(userdata, msg, &caller,
                             &(Authorization) { .action = RMA_ACTION_MANAGE,
                                                .own_rules_allow = caller_is_admin(service, &caller),
                                                .details = (const char *const[]) { "method", "CanAdminister", NULL },
                                                .no_interaction = true,   /* it only asks: no password prompt */
                                                .granted = can_administer_granted,
                                                .refused = can_administer_refused },
                             error);
}

static int append_held_elsewhere(sd_bus_message *reply, void *userdata) {
        for (GList *l = broker_of(userdata)->pool->held_elsewhere.head; l; l = l->next) {
                const Slot *s = l->data;
                g_autofree char *why = recycler_why_held(service_of(userdata)->recycler, s);
                int r = sd_bus_message_append(reply, "(us)", s->index, why);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int method_list_held_elsewhere(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return reply_array(msg, "(us)", append_held_elsewhere, userdata);
}

static int append_rmas(sd_bus_message *reply, void *userdata) {
        return append_slot_rows(reply, broker_of(userdata)->pool, false);
}

static int method_list_rmas(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return reply_array(msg, "(ussssu)", append_rmas, userdata);
}

static int append_tenants(sd_bus_message *reply, void *userdata) {
        g_autoptr(GArray) views = broker_list_tenants(broker_of(userdata));

        for (guint i = 0; i < views->len; i++) {
                const TenantView *v = &g_array_index(views, TenantView, i);
                int r = sd_bus_message_append(reply, "(suuuu)", v->name, v->max_rmas, v->guaranteed_rmas, v->leased,
                                              v->reserved);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int method_list_tenants(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return reply_array(msg, "(suuuu)", append_tenants, userdata);
}

static int method_get_tenant(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        char *message = NULL;
        BrokerRefusal refusal;
        const char *name;
        TenantView v;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        refusal = broker_get_tenant(broker_of(userdata), name, &v, &message);
        if (refusal)
                return reply_refusal(error, refusal, message);
        return sd_bus_reply_method_return(msg, "suuuu", v.name, v.max_rmas, v.guaranteed_rmas, v.leased, v.reserved);
}

static int method_get_capacity(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        char *message = NULL;
        BrokerRefusal refusal;
        TenantCapacity c;
        const char *name;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        refusal = broker_tenant_capacity(broker_of(userdata), name, &c, &message);
        if (refusal)
                return reply_refusal(error, refusal, message);
        return sd_bus_reply_method_return(msg, "tuuu", broker_of(userdata)->backend->region_size, c.total, c.available,
                                          c.held);
}

static int method_get_metrics(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        g_autofree char *text = metrics_format(broker_of(userdata));

        return sd_bus_reply_method_return(msg, "s", text);
}

static int reload_granted(sd_bus_message *msg, BusService *service, Caller *caller, const char *arg,
                          sd_bus_error *error) {
        g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);

        if (service->reload(errors, service->reload_userdata) < 0) {
                g_autofree char *all = NULL;
                log_event(LOG_ERR, &(LogEvent) { .message_id = RMA_MESSAGE_POLICY_REFUSED, .slot = -1 },
                          "Reload refused: the new tenant policy is invalid (problems above); keeping the current one");
                g_ptr_array_add(errors, NULL);
                all = g_strjoinv("; ", (char **) errors->pdata);
                return sd_bus_error_setf(error, RMA_ERROR_POLICY_INVALID,
                                         "The new tenant policy is invalid and was not applied; the current one stays: %s",
                                         all);
        }
        return sd_bus_reply_method_return(msg, "");
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        g_auto(Caller) caller = { 0 };
        int r;

        r = caller_get(userdata, msg, &caller, error);
        if (r < 0)
                return r;
        return authorize_manage(userdata, msg, &caller, "Reload", "Reload", reload_granted, manage_refused, error);
}

/* Drain (reason) or undrain (NULL), once the caller may. */
static int set_draining_granted(sd_bus_message *msg, BusService *service, Caller *caller, const char *reason,
                                sd_bus_error *error) {
        int r = service->set_draining(reason, service->set_draining_userdata);

        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot record the drain in the runtime directory (%m); "
                                               "nothing changed, see the journal of rma-brokerd");
        return sd_bus_reply_method_return(msg, "");
}

static int drain_refused(sd_bus_message *msg, BusService *service, Caller *caller, const char *reason,
                         PolkitVerdict verdict, sd_bus_error *error) {
        return manage_refused(msg, service, caller, "Drain", verdict, error);
}

static int undrain_refused(sd_bus_message *msg, BusService *service, Caller *caller, const char *reason,
                           PolkitVerdict verdict, sd_bus_error *error) {
        return manage_refused(msg, service, caller, "Undrain", verdict, error);
}

/* Drain (reason) or undrain (NULL), for those who may administer the pool. */
static int set_draining(sd_bus_message *msg, void *userdata, const char *method, const char *reason,
                        sd_bus_error *error) {
        g_auto(Caller) caller = { 0 };
        int r;

        r = caller_get(userdata, msg, &caller, error);
        if (r < 0)
                return r;
        if (reason && reason[0] && !rma_name_is_valid(reason))
                return sd_bus_error_setf(error, RMA_ERROR_INVALID_ARGUMENT,
                                         "The reason must be at most %d bytes of UTF-8 without control characters",
                                         RMA_NAME_MAX);
        return authorize_manage(userdata, msg, &caller, method, reason, set_draining_granted,
                                reason ? drain_refused : undrain_refused, error);
}

static int method_drain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *reason;
        int r;

        r = sd_bus_message_read(msg, "s", &reason);
        if (r < 0)
                return r;
        return set_draining(msg, userdata, "Drain", reason, error);
}

static int method_undrain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return set_draining(msg, userdata, "Undrain", NULL, error);
}

static int method_claim(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint64_t start = rma_now_usec(CLOCK_MONOTONIC);
        BusService *service = service_of(userdata);
        g_autoptr(sd_bus_message) reply = NULL;
        g_auto(Caller) caller = { 0 };
        char *message = NULL;
        BrokerRefusal refusal;
        const char *uuid;
        Slot *s = NULL;
        int r;

        r = read_call(userdata, msg, &caller, error, "s", &uuid);
        if (r < 0)
                return r;
        refusal = broker_check_claim(service->broker, &caller, uuid, &s, &message);
        if (refusal)
                return reply_refusal_told(service, &caller, "Claim", uuid, "", "", error, refusal, message,
                                          POLKIT_UNAVAILABLE);
        /* A claimer that is already gone needs no check of its own here: with
         * CheckCgroup=yes its /proc entry is gone and the cgroup check refused it, and
         * in any case its lease's pidfd is readable at once, so the lease ends on the
         * next loop iteration. */

        /* Build the reply (sd-bus duplicates the fd into it) before the lease starts: a
         * client that cannot take an fd must not burn the reservation. */
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "ht", s->region_fd, service->broker->backend->region_size);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot pass the region to this client (%m); it must accept "
                                               "file descriptors (sd_bus_negotiate_fds)");
        r = leases_start(service->leases, s, caller.pid, caller.start_time, caller.pidfd);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot watch the claiming process %d, so its lease would "
                                               "never end (%m); nothing was leased", (int) caller.pid);
        r = sd_bus_send(NULL, reply, NULL);
        observe_since(&service->broker->stats.claim_seconds, start);
        broker_log_lease(s);
        return r;
}

#define BROKER_COMMON_VTABLE                                                                                         \
        SD_BUS_VTABLE_START(0),                                                                                      \
        SD_BUS_PROPERTY("Backend", "s", property_get_backend, 0, SD_BUS_VTABLE_PROPERTY_CONST),                      \
        SD_BUS_PROPERTY("KernelCapability", "u", property_get_kernel_capability, 0, SD_BUS_VTABLE_PROPERTY_CONST),   \
        SD_BUS_PROPERTY("RmaSize", "t", property_get_rma_size, 0, SD_BUS_VTABLE_PROPERTY_CONST),                     \
        SD_BUS_PROPERTY("TotalRmas", "u", property_get_total, 0, SD_BUS_VTABLE_PROPERTY_CONST),                      \
        SD_BUS_PROPERTY(PROPERTY_FREE, "u", property_get_free, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),              \
        SD_BUS_PROPERTY(PROPERTY_RESERVED, "u", property_get_reserved, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),      \
        SD_BUS_PROPERTY(PROPERTY_LEASED, "u", property_get_leased, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),          \
        SD_BUS_PROPERTY(PROPERTY_SCRUBBING, "u", property_get_scrubbing, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),    \
        SD_BUS_PROPERTY(PROPERTY_HELD_ELSEWHERE, "u", property_get_held_elsewhere, 0,                                \
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),                                                        \
        SD_BUS_PROPERTY("PendingPoolChange", "s", property_get_pending_pool_change, 0,                                \
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),                                                        \
        SD_BUS_PROPERTY("Draining", "b", property_get_draining, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),             \
        SD_BUS_PROPERTY("DrainReason", "s", property_get_drain_reason, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),      \
        SD_BUS_METHOD_WITH_ARGS("Drain", SD_BUS_ARGS("s", reason), SD_BUS_NO_RESULT, method_drain,                   \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_METHOD_WITH_ARGS("Undrain", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_undrain,                         \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_SIGNAL_WITH_ARGS("SlotChanged", SD_BUS_ARGS("u", slot, "s", state, "s", domain, "s", uuid,           \
                                "s", tenant, "u", pid, "s", reason), 0),                                             \
        SD_BUS_SIGNAL_WITH_ARGS("Refused", SD_BUS_ARGS("s", method, "s", error, "s", uuid, "s", domain,               \
                                "s", tenant, "u", uid, "s", message), 0),                                            \
        SD_BUS_SIGNAL_WITH_ARGS("EventsDropped", SD_BUS_ARGS("u", count), 0),                                        \
        SD_BUS_METHOD_WITH_ARGS("Reserve", SD_BUS_ARGS("s", uuid, "s", domain, "s", tenant), SD_BUS_RESULT("u", slot), \
                                method_reserve, SD_BUS_VTABLE_UNPRIVILEGED),                                         \
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_ARGS("s", uuid), SD_BUS_NO_RESULT, method_release,                 \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_METHOD_WITH_ARGS("ListRmas", SD_BUS_NO_ARGS,                                                          \
                                SD_BUS_RESULT("a(ussssu)", rmas), method_list_rmas, SD_BUS_VTABLE_UNPRIVILEGED),     \
        SD_BUS_METHOD_WITH_ARGS("ListTenants", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(suuuu)", tenants),                   \
                                method_list_tenants, SD_BUS_VTABLE_UNPRIVILEGED),                                    \
        SD_BUS_METHOD_WITH_ARGS("GetTenant", SD_BUS_ARGS("s", name),                                                 \
                                SD_BUS_RESULT("s", name, "u", max_rmas, "u", guaranteed_rmas, "u", leased,          \
                                              "u", reserved), method_get_tenant, SD_BUS_VTABLE_UNPRIVILEGED),        \
        SD_BUS_METHOD_WITH_ARGS("GetCapacity", SD_BUS_ARGS("s", tenant),                                              \
                                SD_BUS_RESULT("t", rma_size, "u", total, "u", available, "u", held),                 \
                                method_get_capacity, SD_BUS_VTABLE_UNPRIVILEGED),                                    \
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text), method_get_metrics,          \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,                           \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_METHOD_WITH_ARGS("ForgetRegion", SD_BUS_ARGS("u", slot), SD_BUS_NO_RESULT, method_forget_region,      \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_METHOD_WITH_ARGS("ListHeldElsewhere", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(us)", slots),                  \
                                method_list_held_elsewhere, SD_BUS_VTABLE_UNPRIVILEGED),                             \
        SD_BUS_METHOD_WITH_ARGS("ListSlots", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ussssutt)", slots), method_list_slots,  \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_METHOD_WITH_ARGS("CheckPolicy", SD_BUS_NO_ARGS, SD_BUS_RESULT("as", problems), method_check_policy,    \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                         \
        SD_BUS_METHOD_WITH_ARGS("CanAdminister", SD_BUS_NO_ARGS, SD_BUS_RESULT("b", allowed, "s", why),               \
                                method_can_administer, SD_BUS_VTABLE_UNPRIVILEGED)

static const sd_bus_vtable broker_bus_vtable[] = {
        BROKER_COMMON_VTABLE,
        SD_BUS_VTABLE_END,
};

static const sd_bus_vtable broker_claim_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Claim", SD_BUS_ARGS("s", uuid), SD_BUS_RESULT("h", region, "t", size),
                                method_claim, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_object_add(sd_bus *bus, BusOrigin *origin) {
        return sd_bus_add_object_vtable(bus, NULL, RMA_OBJECT_PATH, RMA_INTERFACE, broker_bus_vtable, origin);
}

int bus_object_add_claim(sd_bus *bus, BusOrigin *claim_origin) {
        return sd_bus_add_object_vtable(bus, NULL, RMA_OBJECT_PATH, RMA_INTERFACE, broker_claim_vtable, claim_origin);
}


void bus_object_emit_counts_changed(sd_bus *bus, unsigned changed_states) {
        char *names[_SLOT_STATE_MAX + 1];
        size_t n = 0;

        if (!bus)
                return;
        for (unsigned s = 0; s < _SLOT_STATE_MAX; s++)
                if (changed_states & (1u << s))
                        names[n++] = (char *) count_property[s];
        names[n] = NULL;
        if (n > 0)
                (void) sd_bus_emit_properties_changed_strv(bus, RMA_OBJECT_PATH, RMA_INTERFACE, names);
}

void bus_object_emit_draining_changed(sd_bus *bus) {
        if (bus)
                (void) sd_bus_emit_properties_changed(bus, RMA_OBJECT_PATH, RMA_INTERFACE, "Draining", "DrainReason",
                                                      NULL);
}

void bus_service_set_pending_pool_change(BusService *s, sd_bus *bus, char *change) {
        g_autofree char *owned = change;

        if (g_strcmp0(owned, s->pending_pool_change) == 0)
                return;
        g_free(s->pending_pool_change);
        s->pending_pool_change = g_steal_pointer(&owned);
        if (bus)
                (void) sd_bus_emit_properties_changed(bus, RMA_OBJECT_PATH, RMA_INTERFACE, "PendingPoolChange", NULL);
}
