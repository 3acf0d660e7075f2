/* Where clients find the broker's runtime files, in plain libc: the fronts of the wrapper
 * and the hook (libvirt-plugin/) link nothing else, and the client library uses the same
 * code, so both always agree on a path. */
#pragma once

#include <stddef.h>

/* $RMA_BROKER_SOCKET if set and not empty, else the compiled-in default
 * (/run/rma-broker/broker.sock). */
const char *rma_socket_path(void);

/* NAME beside broker.sock, and LEAF inside it unless LEAF is NULL, into BUF as snprintf()
 * writes: returns the path's length, which is SIZE or more when it did not fit. */
size_t rma_runtime_path(char *buf, size_t size, const char *name, const char *leaf);
