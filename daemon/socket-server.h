/* broker.sock: the AF_UNIX listening socket that the hook and the wrapper connect to. */
#pragma once

#include "manager.h"

/* Connection limits, so that no local user can exhaust the broker's fds or lock others
 * out: a total, a share per non-root uid, a share per process, and a lifetime (the hook
 * and the wrapper need milliseconds). Root (the hook) is refused only at the total. */
#define RMA_MAX_PEERS 1024u
#define RMA_MAX_PEERS_PER_UID 64u
#define RMA_MAX_PEERS_PER_PID 4u
#define RMA_PEER_MAX_AGE_USEC (60u * 1000000u)

/* Create the runtime directory and the socket in it, and accept on the manager's loop. */
int socket_server_start(Manager *m);
void socket_server_stop(Manager *m);
