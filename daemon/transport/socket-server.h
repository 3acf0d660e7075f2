/* broker.sock (anyone) and broker-priv.sock (root and the QemuUsers, by an ACL), the
 * peers they accepted, and the counts that limit them.
 *
 * Two sockets because a listening socket's accept backlog is shared by everyone who can
 * connect to it: any local account could keep broker.sock's full with nonblocking
 * connects and so stop every VM start. broker-priv.sock's backlog is reachable only by
 * root and the QemuUsers, and its listener and peers go first in the event loop.
 *
 * Connection limits (rma-brokerd.conf(5)), so that no local user can exhaust the
 * broker's fds or lock others out. Root, the QemuUsers and everyone else each have
 * MaxConnections of their own; everyone else also has MaxConnectionsPerUser per uid and
 * RMA_MAX_CONNECTIONS_PER_PROCESS per process. Every connection closes after
 * ConnectionTimeoutSec (the hook and the wrapper need milliseconds). */
#pragma once

#include <glib.h>
#include <systemd/sd-event.h>

#include "bus-object.h"
#include "broker-config.h"

typedef struct SocketServer SocketServer;

/* Serve broker.sock and broker-priv.sock in config->runtime_dir on event: listen_fd is the
 * broker.sock systemd passed (rma-brokerd.socket, taken over), or -EBADF to bind one;
 * broker-priv.sock is always the broker's own. */
int socket_server_new(sd_event *event, const BrokerConfig *config, BusService *service, int listen_fd,
                      SocketServer **ret);
/* Stops accepting and drops every peer; removes the socket files systemd does not own. */
SocketServer *socket_server_free(SocketServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SocketServer, socket_server_free)
/* broker.sock's path. */
const char *socket_server_path(const SocketServer *s);
