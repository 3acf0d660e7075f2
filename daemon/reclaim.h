/* Tearing down the regions of ended leases off the event loop.
 *
 * Closing the last fd of a touched region frees its memory, which takes milliseconds per
 * 256 MiB (33 ms measured); done inline, every client would wait behind it. A worker
 * thread closes the fds in order and reports each slot back through a pipe that the event
 * loop watches; the slot becomes free only then, when the memory is really back. */
#pragma once

#include <systemd/sd-event.h>

typedef struct Reclaimer Reclaimer;
typedef void (*ReclaimDoneFn)(unsigned slot_index, void *userdata);

int reclaimer_new(sd_event *event, ReclaimDoneFn done, void *userdata, Reclaimer **ret);
/* Finishes every pending teardown, then stops the worker. */
Reclaimer *reclaimer_free(Reclaimer *r);
/* Takes ownership of fd, also on failure (then it is closed at once). */
void reclaimer_submit(Reclaimer *r, unsigned slot_index, int fd);
