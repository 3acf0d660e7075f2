/* The client library of rma-brokerd, for the hook, the wrapper, rmactl and the benches:
 * a peer-to-peer sd-bus connection to broker.sock, and one call per method of
 * org.rmabroker.Broker1 (docs/org.rmabroker.Broker1.xml). Every call works on that
 * connection and on the system bus alike (sd_bus_open_system()). Nothing else in the
 * project calls the broker's methods by name.
 *
 * Errors: a negative errno, and the broker's D-Bus error (its name and one sentence for
 * the admin) in *error. Strings handed back are GLib's (g_free()). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* $RMA_BROKER_SOCKET if set, else the compiled-in default (/run/rma-broker/broker.sock). */
const char *rma_client_socket_path(void);

/* broker-priv.sock beside it: root's and the QemuUsers' own (g_free()). */
char *rma_client_privileged_socket_path(void);

/* Connect to path, or with NULL to broker-priv.sock where this process may (root, the
 * QemuUsers) and broker.sock otherwise. Waits at most RMA_CLIENT_TIMEOUT_SEC for the
 * broker to accept and authenticate (a socket that accepts while nobody serves, a stopped
 * or stuck broker, must not hold a VM start longer); a full backlog (EAGAIN) is retried
 * until then, every 1 ms doubling to RMA_CLIENT_MAX_RETRY_USEC. On failure *error
 * explains what to check. */
#define RMA_CLIENT_TIMEOUT_SEC 30
#define RMA_CLIENT_MAX_RETRY_USEC 50000
int rma_client_open(const char *path, sd_bus **ret, sd_bus_error *error);

/* The hook's record of a domain it opted in and reserved an RMA for, in the "domains"
 * directory beside broker.sock (root's, 0755; one file per uuid, 0644): what the wrapper,
 * running as the QEMU user, reads before it asks the broker anything (no record: the
 * domain did not opt in, and its QEMU runs as without rma-broker), and what a restarted
 * broker reads to learn the tenant the hook gave when its own records are lost. Who may
 * trust a record is libvirt-plugin/domain-record.h's to say. */
char *rma_domain_record_path(const char *uuid);
/* Write it (tmp + rename), root only: 0 or a negative errno. */
int rma_domain_record_write(const char *uuid, const char *domain, const char *tenant);

int rma_client_reserve(sd_bus *bus, const char *uuid, const char *domain, const char *tenant,
                       uint32_t *ret_slot, sd_bus_error *error);
int rma_client_release(sd_bus *bus, const char *uuid, sd_bus_error *error);
/* The slot a domain holds, from ListRmas: *ret_state is "reserved" or "leased", or NULL
 * when it holds none; *ret_tenant (if ret_tenant is not NULL) the tenant it counts for. */
int rma_client_find(sd_bus *bus, const char *uuid, uint32_t *ret_slot, char **ret_state, uint32_t *ret_pid,
                    char **ret_tenant, sd_bus_error *error);
/* *ret_fd is a new fd (O_CLOEXEC) owned by the caller. */
int rma_client_claim(sd_bus *bus, const char *uuid, int *ret_fd, uint64_t *ret_size, sd_bus_error *error);

/* The List* methods: the reply, entered into its array, at the first element (read each
 * with sd_bus_message_read(reply, ELEMENT, ...) until it returns 0). */
#define RMA_CLIENT_LIST_RMAS_ELEMENT "(ussssu)"            /* slot, state, uuid, domain, tenant, pid */
#define RMA_CLIENT_LIST_TENANTS_ELEMENT "(suuuu)"          /* name, max, guaranteed, leased, reserved */
#define RMA_CLIENT_LIST_HELD_ELSEWHERE_ELEMENT "(us)"      /* slot, why */
#define RMA_CLIENT_LIST_SLOTS_ELEMENT "(ussssutt)"         /* slot, state, uuid, domain, tenant, pid, since, expires */
int rma_client_list_rmas(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error);
int rma_client_list_tenants(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error);
int rma_client_list_held_elsewhere(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error);
int rma_client_list_slots(sd_bus *bus, sd_bus_message **ret, sd_bus_error *error);

typedef struct RmaClientTenant {
        char *name;
        uint32_t max, guaranteed, leased, reserved;
} RmaClientTenant;
int rma_client_get_tenant(sd_bus *bus, const char *name, RmaClientTenant *ret, sd_bus_error *error);

/* What a tenant ("" for none) could get: the pool's size and count, what it can get now,
 * what it holds. */
typedef struct RmaClientCapacity {
        uint64_t region_size;
        uint32_t total, available, held;
} RmaClientCapacity;
int rma_client_get_capacity(sd_bus *bus, const char *tenant, RmaClientCapacity *ret, sd_bus_error *error);

/* The Prometheus exposition. */
int rma_client_get_metrics(sd_bus *bus, char **ret, sd_bus_error *error);
int rma_client_reload(sd_bus *bus, sd_bus_error *error);
int rma_client_forget_region(sd_bus *bus, uint32_t slot, sd_bus_error *error);
/* Drain the host with reason (may be ""), or end draining. */
int rma_client_drain(sd_bus *bus, const char *reason, sd_bus_error *error);
int rma_client_undrain(sd_bus *bus, sd_bus_error *error);
/* The policy's problems as the broker would load it now (an empty list: valid). */
int rma_client_check_policy(sd_bus *bus, char ***ret_problems, sd_bus_error *error);
int rma_client_can_administer(sd_bus *bus, bool *ret_allowed, char **ret_why, sd_bus_error *error);

/* The broker's event signals (SlotChanged, Refused, EventsDropped), decoded. Strings are
 * the message's, valid during the callback. */
typedef struct RmaEvent {
        const char *kind;          /* "slot-changed", "refused" or "events-dropped" */
        uint32_t slot;             /* slot-changed: the slot, its new state, the domain it is (or */
        const char *state;         /* was, for an end) for, its pid while leased, and why */
        const char *domain, *uuid, *tenant;
        uint32_t pid;
        const char *reason;
        const char *method;        /* refused: Reserve or Claim, the error's name, the caller's uid */
        const char *error;         /* and the broker's sentence (in message) */
        uint32_t uid;
        const char *message;
        uint32_t dropped;          /* events-dropped: how many the broker's rate bound left out */
} RmaEvent;
typedef void (*RmaEventFn)(const RmaEvent *event, void *userdata);
/* Call fn for every event the broker sends on bus (the system bus) from now on, while bus
 * is processed; 0 or a negative errno. */
int rma_client_watch_events(sd_bus *bus, RmaEventFn fn, void *userdata);

/* Properties (TotalRmas, FreeRmas, ..., RmaSize, Backend, PendingPoolChange, Draining). */
int rma_client_get_bool(sd_bus *bus, const char *property, bool *ret, sd_bus_error *error);
int rma_client_get_u32(sd_bus *bus, const char *property, uint32_t *ret, sd_bus_error *error);
int rma_client_get_u64(sd_bus *bus, const char *property, uint64_t *ret, sd_bus_error *error);
int rma_client_get_string(sd_bus *bus, const char *property, char **ret, sd_bus_error *error);
