/* Leases: a slot held by one QEMU process for as long as that process lives.
 *
 * The one place that makes leases (Claim, and re-adoption after a restart), keeps them
 * (the only owner of Slot.lease) and ends them (the holder exited, or Release found it
 * gone). The leases of one process share its holder: a pidfd of the process and the
 * event source that watches it, whose exit leads straight to the holder's slots. An
 * ended lease's old region goes to the recycler. Nothing here reports upwards: whoever shows
 * the pool sees its generation move. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "broker.h"
#include "recycler.h"

typedef struct Leases Leases;

int leases_new(sd_event *event, Broker *broker, Recycler *recycler, Leases **ret);
/* Stops watching; ends no lease: across a restart the QEMUs keep their regions. */
Leases *leases_free(Leases *ls);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Leases, leases_free)

/* Claim: the reservation on s becomes a lease of the process behind pidfd (borrowed; the
 * lease watches a copy). On failure the reservation stays as it was. */
int leases_start(Leases *ls, Slot *s, pid_t pid, uint64_t pid_start, int pidfd);

/* What the last broker recorded of a lease. */
typedef struct LeaseRecord {
        const char *uuid;
        const char *domain;
        const char *tenant;
        uid_t reserved_by;
        pid_t pid;
        uint64_t pid_start;
        const RegionIdentity *region;   /* what the caller proved the region fd to be; NULL: unknown */
} LeaseRecord;

/* Restart: put a lease back on held-back slot s, with the region it re-adopted. pidfd,
 * of the process rec names, is borrowed (copied if that process has no lease yet);
 * region_fd is taken, also on failure. On failure s stays as it was (no lease, no region)
 * for the caller to settle. */
int leases_readopt(Leases *ls, Slot *s, const LeaseRecord *rec, int pidfd, int region_fd);

/* Release of a leased slot: ends the lease if its process is gone already (true); else
 * the lease ends when the process exits. */
bool leases_end_if_exited(Leases *ls, Slot *s);
