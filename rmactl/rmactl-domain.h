/* rmactl domain enable|disable|show: a domain's opt-in, through the libvirt API. */
#pragma once

#include <systemd/sd-bus.h>

/* argv[0] is "domain"; bus may be NULL when the system bus is not reachable. */
int rmactl_domain(sd_bus *bus, int argc, char *argv[]);
