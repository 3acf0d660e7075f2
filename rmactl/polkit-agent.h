/* A text-mode polkit agent for the length of one rmactl command, as systemctl has: where
 * polkit wants an administrator's password and rmactl runs on a terminal, pkttyagent asks
 * for it there. */
#pragma once

#include <stdbool.h>

#define PKTTYAGENT_PATH "/usr/bin/pkttyagent"

/* Whether an agent may help: not root (root needs no polkit), stdin and stdout a
 * terminal, and pkttyagent installed. */
bool polkit_agent_wanted(void);
/* Start pkttyagent --fallback (for the caller's logind session) and wait until it has
 * registered with polkitd (or has exited, or 10 s passed): 0, or a negative errno (then
 * rmactl goes on without one). */
int polkit_agent_open(void);
/* Stop the agent, if one runs. */
void polkit_agent_close(void);
