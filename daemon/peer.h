/* One client connection on broker.sock: its credentials, read once at accept, and the
 * peer-to-peer sd-bus server connection that serves it. */
#pragma once

#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>

#include "manager.h"

struct Peer {
        BusOrigin origin;        /* handed to bus handlers as userdata */
        unsigned id;
        struct ucred ucred;      /* SO_PEERCRED at connect time */
        int pidfd;               /* SO_PEERPIDFD, or pidfd_open() at accept on older kernels */
        uint64_t accepted_usec;  /* CLOCK_MONOTONIC; connections have a bounded lifetime */
        gid_t *gids;             /* SO_PEERGROUPS: primary and supplementary groups */
        size_t n_gids;
        sd_bus *bus;
};

/* Take ownership of an accepted connection fd and start serving it. */
int peer_new(Manager *m, int fd, Peer **ret);
Peer *peer_free(Peer *p);
/* A pidfd for the peer's process that the caller owns. */
int peer_dup_pidfd(Peer *p, int *ret);
