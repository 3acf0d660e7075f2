/* One client connection on broker.sock: its credentials, read once at accept, the
 * peer-to-peer sd-bus server that answers it, and the limits that keep a hostile
 * client from blocking or growing the broker.
 *
 * No fd a client attaches may ever reach sd-bus (libsystemd 252 leaks the fds of a
 * message whose UNIX_FDS header does not match). Where the kernel has SO_PASSRIGHTS
 * (Linux 6.16+) broker.sock refuses them outright and sd-bus reads the connection.
 * Elsewhere the broker reads the client's bytes itself, closes any fd that came with
 * them, disconnects that client, and relays only the bytes to sd-bus through a
 * socketpair. Replies, and the region fd of Claim, go straight from sd-bus to the
 * connection. The peer drives sd-bus from its own event source. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>

#include "bus-object.h"
#include "broker-config.h"

typedef enum PeerClass {
        PEER_ROOT,               /* the hook */
        PEER_QEMU,               /* a QemuUsers account: the wrapper */
        PEER_OTHER,              /* anyone else: may read, never claims */
        _PEER_CLASS_MAX,
} PeerClass;

typedef struct Peer Peer;

/* Called from the event loop (never from inside an sd-bus callback) once the peer is
 * done; the owner frees it. */
typedef void (*PeerGoneFn)(Peer *p, void *userdata);

struct Peer {
        BusOrigin origin;        /* handed to bus handlers as userdata; points at creds */
        BusOrigin claim_origin;  /* the same, for the Claim-only vtable (bus_object_add_claim) */
        bool object_complete;    /* the rest of the object is registered too */
        unsigned id;
        /* Read at accept: SO_PEERCRED; SO_PEERPIDFD (or pidfd_open() on kernels before
         * 6.5); SO_PEERGROUPS; and for QemuUsers the start time and (CheckCgroup=yes) the
         * /proc/PID/cgroup file. */
        PeerCredentials creds;
        PeerClass class;
        const BrokerConfig *config;

        int io_fd;               /* our duplicate of the connection, watched by io_source */
        int relay_fd;            /* without SO_PASSRIGHTS: our end of the socketpair sd-bus reads */
        bool input_done;         /* the client shut down its side */
        sd_event_source *io_source;
        sd_event_source *timeout_source;
        sd_event_source *gone_source;
        sd_event_source *pump_source;   /* more relayed messages for sd-bus to handle */
        bool dropping;
        const char *drop_reason;
        PeerGoneFn on_gone;
        void *on_gone_userdata;

        sd_bus *bus;             /* reads the relay, writes to the connection */
};

/* Where a peer is served: the loop, the limits, and the object it talks to. */
typedef struct PeerHost {
        sd_event *event;
        const BrokerConfig *config;
        BusService *service;
        PeerGoneFn on_gone;
        void *userdata;
} PeerHost;

/* Take ownership of an accepted connection fd and start serving it. cred and class
 * come from the caller, which already read SO_PEERCRED to admit the connection. */
int peer_new(const PeerHost *host, unsigned id, int fd, const struct ucred *cred, PeerClass class, bool relay,
             Peer **ret);
Peer *peer_free(Peer *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Peer, peer_free)
/* Disconnect without waiting for the peer: nothing more is read or answered, and
 * on_gone runs from the event loop. */
void peer_drop(Peer *p, const char *reason);
