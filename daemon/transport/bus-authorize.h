/* Authorizing a method call of the org.rmabroker.Broker1 object: the broker's own rules
 * first (root, AdminGroup=), then polkit, asked without blocking the event loop. The call
 * is answered from polkit's callback; what that needs of the caller is copied into the
 * check. A broker.sock peer that disconnects first cancels its checks
 * (polkit_checks_cancel() with its sd-bus connection): no answer outlives its peer. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "broker.h"
#include "bus-object.h"
#include "polkit-check.h"

#define RMA_ACTION_QUERY "org.rmabroker.query"
#define RMA_ACTION_RESERVE "org.rmabroker.reserve"
#define RMA_ACTION_MANAGE "org.rmabroker.manage"
#define RMA_ACTION_FORGET_REGION "org.rmabroker.forget-region"

/* The call allowed: act and reply (or set error / return a negative errno). */
typedef int (*AuthorizedFn)(sd_bus_message *msg, BusService *service, Caller *caller, const char *arg,
                            sd_bus_error *error);
/* The call refused by the broker's rules and by polkit (verdict, POLKIT_UNAVAILABLE when
 * polkit could not be asked): reply (or set error). */
typedef int (*RefusedFn)(sd_bus_message *msg, BusService *service, Caller *caller, const char *arg,
                         PolkitVerdict verdict, sd_bus_error *error);

typedef struct Authorization {
        const char *action;             /* one of RMA_ACTION_* */
        bool own_rules_allow;           /* the broker's own rules say yes already: polkit is not asked */
        const char *const *details;     /* key, value, ..., NULL: for rules.d */
        bool no_interaction;            /* never let polkit ask for a password, whatever the call allows */
        const char *arg;                /* the call's argument, kept for the answer (may be NULL) */
        AuthorizedFn granted;
        RefusedFn refused;
} Authorization;

/* Returns what granted or refused returned when decided at once; 1 when polkit was asked
 * and the call is answered later; a D-Bus error when too many checks are pending. */
int bus_authorize(BusOrigin *origin, sd_bus_message *msg, Caller *caller, const Authorization *a,
                  sd_bus_error *error);
