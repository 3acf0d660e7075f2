/* broker.sock: the AF_UNIX listening socket that the hook and the wrapper connect to,
 * the peers it accepted, and the counts that limit them.
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

/* Serve broker.sock in config->runtime_dir on event: listen_fd is the socket systemd
 * passed (rma-brokerd.socket, taken over), or -EBADF to bind one. */
int socket_server_new(sd_event *event, const BrokerConfig *config, BusService *service, int listen_fd,
                      SocketServer **ret);
/* Stops accepting and drops every peer; removes the socket file unless systemd owns it. */
SocketServer *socket_server_free(SocketServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SocketServer, socket_server_free)
const char *socket_server_path(const SocketServer *s);
