/* rma-brokerd's command line (the daemon's alone; rma-brokerd.conf is config/broker-config). */
#pragma once

#include "broker-config.h"

/* Parse argv (GOptionContext) and the config file it names (or the default one).
 * On error returns -EINVAL and sets *error to a message naming file, key and what is allowed.
 * Returns 1 when the caller should exit successfully (--version). */
int command_line_load(int *argc, char ***argv, BrokerConfig **ret, GError **error);
