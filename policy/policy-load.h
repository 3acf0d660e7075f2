/* Load the tenant policy from its directories: files sorted by name, a file in a later
 * directory replacing the one of the same name in an earlier directory. */
#pragma once

#include <glib.h>

#include "policy.h"

/* The standard directories, lowest priority first; runtime_dir is rma-brokerd's. */
char **policy_default_dirs(const char *runtime_dir);

/* Read daemon_config (may be NULL or missing; its [Defaults]/[Tenant] sections count as
 * the first policy file), then every *.conf in dirs. Then resolve Users=/Groups= and
 * check the cross-file rules for a pool of pool_size RMAs. With no policy anywhere the
 * result is the implicit policy (one uncapped "default" tenant).
 * Returns 0 with *ret set, or -EINVAL with every problem appended to errors. */
int policy_load(const char *daemon_config, char *const *dirs, uint32_t pool_size, Policy **ret, GPtrArray *errors);

/* Users= and Groups= names to ids; unknown names are errors (file, line, key). */
void policy_resolve_accounts(Policy *p, GPtrArray *errors);
