/* Region work off the event loop: tearing down old regions and making fresh ones.
 *
 * Closing the last fd of a touched region frees its memory, which takes milliseconds per
 * 256 MiB (33 ms measured); making a fresh one may zero as much (kvm) or fault in huge
 * pages (hugetlb). Done inline, every client would wait behind it. A worker thread does
 * the jobs in order and reports each back to the event loop, which is the only place the
 * pool changes. */
#pragma once

#include <glib.h>
#include <systemd/sd-event.h>

#include "backend.h"

typedef enum RegionJob {
        REGION_JOB_CLOSE,     /* an old region closed; result 0 */
        REGION_JOB_REFILL,    /* an old region (if any) closed and a fresh one made: its fd
                               * (the callback owns it), or a negative errno from the backend */
} RegionJob;

typedef struct RegionWorker RegionWorker;
typedef void (*RegionJobDoneFn)(unsigned slot_index, RegionJob job, int result, void *userdata);

int region_worker_new(sd_event *event, Backend *backend, RegionJobDoneFn done, void *userdata, RegionWorker **ret);
/* Finishes every pending job (closing the fds that jobs made), then stops the thread. */
RegionWorker *region_worker_free(RegionWorker *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RegionWorker, region_worker_free)
/* Close fd (owned from now on) and report REGION_JOB_CLOSE. */
void region_worker_close(RegionWorker *w, unsigned slot_index, int fd);
/* Close old_fd if it is one (owned from now on), then ask the backend for a fresh region
 * for the slot and report REGION_JOB_REFILL. */
void region_worker_refill(RegionWorker *w, unsigned slot_index, int old_fd);
