/* rmactl monitor [--json]: the broker's events, one line each, as they come (like
 * virsh event --loop), until interrupted. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

int rmactl_monitor(sd_bus *bus, bool json);
