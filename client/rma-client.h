/* Small client of broker.sock for the hook, the wrapper and rmactl: a peer-to-peer
 * sd-bus connection to rma-brokerd, and one call per broker method. */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>

/* $RMA_BROKER_SOCKET if set, else the compiled-in default (/run/rma-broker/broker.sock). */
const char *rma_client_socket_path(void);

/* Connect to broker.sock. On failure *error explains what to check. */
int rma_client_open(const char *path, sd_bus **ret, sd_bus_error *error);

int rma_client_reserve(sd_bus *bus, const char *uuid, const char *domain, const char *tenant,
                       uint32_t *ret_slot, sd_bus_error *error);
int rma_client_release(sd_bus *bus, const char *uuid, sd_bus_error *error);
/* The slot a domain holds, from ListRmas: *ret_state is "reserved" or "leased" (caller
 * frees), or NULL when it holds none. */
int rma_client_find(sd_bus *bus, const char *uuid, uint32_t *ret_slot, char **ret_state, uint32_t *ret_pid,
                    sd_bus_error *error);
/* *ret_fd is a new fd (O_CLOEXEC) owned by the caller. */
int rma_client_claim(sd_bus *bus, const char *uuid, int *ret_fd, uint64_t *ret_size, sd_bus_error *error);
