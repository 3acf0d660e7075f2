/* broker.sock: the AF_UNIX listening socket that the hook and the wrapper connect to. */
#pragma once

#include "manager.h"

/* Connection limits (rma-brokerd.conf(5)), so that no local user can exhaust the
 * broker's fds or lock others out. Root, the QemuUsers and everyone else each have
 * MaxConnections of their own; everyone else also has MaxConnectionsPerUser per uid and
 * RMA_MAX_CONNECTIONS_PER_PROCESS per process. Every connection closes after
 * ConnectionTimeoutSec (the hook and the wrapper need milliseconds). */

/* Create the runtime directory and the socket in it, and accept on the manager's loop. */
int socket_server_start(Manager *m);
void socket_server_stop(Manager *m);
