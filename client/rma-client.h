/* Small client of broker.sock for the hook, the wrapper and rmactl: a peer-to-peer
 * sd-bus connection to rma-brokerd, and one call per broker method. */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>

/* $RMA_BROKER_SOCKET if set, else the compiled-in default (/run/rma-broker/broker.sock). */
const char *rma_client_socket_path(void);

/* Connect to broker.sock, waiting at most RMA_CLIENT_TIMEOUT_SEC for the broker to accept
 * and authenticate (a socket that accepts while nobody serves, a stopped or stuck broker,
 * must not hold a VM start longer). On failure *error explains what to check. */
#define RMA_CLIENT_TIMEOUT_SEC 30
int rma_client_open(const char *path, sd_bus **ret, sd_bus_error *error);

/* The hook's record of a domain it opted in and reserved an RMA for, in the "domains"
 * directory beside broker.sock (root's, 0755; one file per uuid, 0644): what the wrapper,
 * running as the QEMU user, reads before it asks the broker anything (no record: the
 * domain did not opt in, and its QEMU runs as without rma-broker), and what a restarted
 * broker reads to learn the tenant the hook gave when its own records are lost. */
char *rma_domain_record_path(const char *uuid);
/* Write it (tmp + rename), root only: 0 or a negative errno. */
int rma_domain_record_write(const char *uuid, const char *domain, const char *tenant);
/* Remove it; a missing record is no error. */
int rma_domain_record_remove(const char *uuid);
/* 1 when the domain has a record (opted in), 0 when it has none, <0 when it cannot be told. */
int rma_domain_record_exists(const char *uuid);

int rma_client_reserve(sd_bus *bus, const char *uuid, const char *domain, const char *tenant,
                       uint32_t *ret_slot, sd_bus_error *error);
int rma_client_release(sd_bus *bus, const char *uuid, sd_bus_error *error);
/* The slot a domain holds, from ListRmas: *ret_state is "reserved" or "leased" (caller
 * frees), or NULL when it holds none. */
int rma_client_find(sd_bus *bus, const char *uuid, uint32_t *ret_slot, char **ret_state, uint32_t *ret_pid,
                    sd_bus_error *error);
/* *ret_fd is a new fd (O_CLOEXEC) owned by the caller. */
int rma_client_claim(sd_bus *bus, const char *uuid, int *ret_fd, uint64_t *ret_size, sd_bus_error *error);
