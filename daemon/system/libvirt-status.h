/* Which process runs which libvirt domain, as libvirtd recorded it: the status XML of each
 * running QEMU domain (/run/libvirt/qemu/NAME.xml, root's), with the QEMU's pid, the
 * domain's name and its uuid. A QEMU can rewrite what /proc shows of it (its -uuid, its
 * -name), not this: a rebuild of lost leases takes a process's domain from here alone. */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "rma-util.h"

typedef struct LibvirtDomain {
        pid_t pid;
        char *name;
        char uuid[RMA_UUID_STRING_LEN + 1];
} LibvirtDomain;

/* pid -> LibvirtDomain, from every readable *.xml in dir (a missing dir: an empty table,
 * no libvirt runs). Files that are not status XML, or name no pid or uuid, are skipped. */
GHashTable *libvirt_status_read(const char *dir);
