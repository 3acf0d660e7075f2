/* broker.sock: the AF_UNIX listening socket that the hook and the wrapper connect to. */
#pragma once

#include "manager.h"

/* Most connections served at once; more are refused so no client can exhaust fds. */
#define RMA_MAX_PEERS 256u

/* Create the runtime directory and the socket in it, and accept on the manager's loop. */
int socket_server_start(Manager *m);
void socket_server_stop(Manager *m);
