/* Parse one policy file (GKeyFile syntax) into a Policy, with errors that name the
 * file, the line and the key, and say what is allowed. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "policy.h"

/* Add the [Defaults] and [Tenant NAME] sections of FILE's text to p. A [Broker] section
 * is accepted only when in_daemon_config (rma-brokerd.conf may carry policy too).
 * Every problem found is appended to errors as one line of text. */
void policy_parse_text(Policy *p, const char *file, const char *text, size_t len, bool in_daemon_config,
                       GPtrArray *errors);
