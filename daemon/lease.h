/* A lease: one slot held by one QEMU process. It owns the process's pidfd and the event
 * source that watches it, and is that source's userdata, so the process's exit leads
 * straight to its slot. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "pool.h"

typedef struct Manager Manager;

struct Lease {
        Manager *manager;
        Slot *slot;
        pid_t pid;
        int pidfd;
        sd_event_source *exit_source;
};

/* Takes ownership of pidfd, also on failure. */
int lease_new(Manager *m, Slot *slot, pid_t pid, int pidfd, Lease **ret);
Lease *lease_free(Lease *l);
/* Whether the leasing process has exited (without waiting). */
bool lease_holder_exited(const Lease *l);
