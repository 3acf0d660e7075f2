/* Region work off the event loop: tearing down old regions and making fresh ones.
 *
 * Closing the last fd of a touched region frees its memory, which takes milliseconds per
 * 256 MiB (33 ms measured); making a fresh one may zero as much (kvm) or fault in huge
 * pages (hugetlb). Done inline, every client would wait behind it. A worker thread does
 * the jobs in order and reports each back to the event loop, which is the only place the
 * pool changes. */
#pragma once

#include <systemd/sd-event.h>

#include "backend.h"

/* What a job reports: RECLAIM_CLOSED after a close-only job; after a refill job a fresh
 * region fd (the callback owns it) or a negative errno from the backend. */
#define RECLAIM_CLOSED INT32_MIN

typedef struct Reclaimer Reclaimer;
typedef void (*ReclaimDoneFn)(unsigned slot_index, int result, void *userdata);

int reclaimer_new(sd_event *event, Backend *backend, ReclaimDoneFn done, void *userdata, Reclaimer **ret);
/* Finishes every pending job (closing the fds that jobs made), then stops the worker. */
Reclaimer *reclaimer_free(Reclaimer *r);
/* Close fd (owned from now on) and report RECLAIM_CLOSED. */
void reclaimer_close(Reclaimer *r, unsigned slot_index, int fd);
/* Close old_fd if it is one (owned from now on), then ask the backend for a fresh region
 * for the slot and report it. */
void reclaimer_refill(Reclaimer *r, unsigned slot_index, int old_fd);
