/* A restart loses nothing: re-adopting what the last broker left, before any claim.
 *
 * Sources, in order of trust: the fd store (the region fds themselves, under systemd),
 * the lease registry (who held what), and the running processes (checked by pid and
 * start time, their fds found by inode and taken with pidfd_getfd). A lease whose QEMU
 * still runs is re-adopted on its slot; one whose QEMU died while the broker was down
 * goes through the backend's normal scrub; unexpired reservations come back with their
 * wall-clock expiry; a registry that is garbage is reported and the truth rebuilt from
 * the processes (QEMUs holding a region of ours, their -uuid and -name). */
#pragma once

#include <glib.h>

#include "broker.h"
#include "fd-store.h"
#include "lease.h"
#include "recycler.h"
#include "registry.h"

typedef struct RestorePlan RestorePlan;

/* Read what the last broker left (registry, fd store); never fails for bad contents. */
int restore_plan_new(const BrokerConfig *config, FdStore *store, RestorePlan **ret);
RestorePlan *restore_plan_free(RestorePlan *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RestorePlan, restore_plan_free)
/* For broker_new(): the pool size to keep and the slots to hold back. */
BrokerTakeover restore_plan_takeover(RestorePlan *p);
/* Put everything back into the broker's pool: leases through leases_readopt(), old
 * regions to the recycler. */
int restore_apply(RestorePlan *p, Broker *broker, Recycler *recycler, Leases *leases);
