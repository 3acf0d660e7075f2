/* Leases: made, kept and ended in this file only. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>

#include "cleanup.h"
#include "lease.h"

struct Leases {
        sd_event *event;
        Broker *broker;        /* not owned */
        Recycler *recycler;    /* not owned: takes the old region of every ended lease */
};

struct Lease {
        Leases *owner;
        Slot *slot;
        int pidfd;
        sd_event_source *exit_source;
};

static Lease *lease_free(Lease *l) {
        if (!l)
                return NULL;
        l->exit_source = sd_event_source_disable_unref(l->exit_source);
        l->pidfd = safe_close(l->pidfd);
        g_free(l);
        return NULL;
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Lease, lease_free)

static void lease_end(Leases *ls, Slot *s, LeaseEnd why) {
        int old_fd = -EBADF;

        s->lease = lease_free(s->lease);
        broker_end_lease(ls->broker, s, why, &old_fd);
        recycler_lease_ended(ls->recycler, s, old_fd);
}

static int on_process_exit(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Lease *l = userdata;

        lease_end(l->owner, l->slot, LEASE_END_PROCESS_EXITED);   /* frees l */
        return 0;
}

/* The watch comes first: a slot is never leased without one (its end would go unseen). */
static int lease_new(Leases *ls, Slot *s, int pidfd_consumed, Lease **ret) {
        _cleanup_close_ int pidfd = pidfd_consumed;
        g_autoptr(Lease) l = g_new0(Lease, 1);
        int r;

        l->owner = ls;
        l->slot = s;
        l->pidfd = -EBADF;
        r = sd_event_add_io(ls->event, &l->exit_source, pidfd, EPOLLIN, on_process_exit, l);
        if (r < 0)
                return r;
        l->pidfd = TAKE_FD(pidfd);
        *ret = g_steal_pointer(&l);
        return 0;
}

int leases_new(sd_event *event, Broker *broker, Recycler *recycler, Leases **ret) {
        Leases *ls = g_new0(Leases, 1);

        ls->event = sd_event_ref(event);
        ls->broker = broker;
        ls->recycler = recycler;
        *ret = ls;
        return 0;
}

Leases *leases_free(Leases *ls) {
        Pool *pool;

        if (!ls)
                return NULL;
        pool = ls->broker->pool;
        for (unsigned i = 0; i < pool->n_slots; i++)
                pool->slots[i].lease = lease_free(pool->slots[i].lease);
        sd_event_unref(ls->event);
        g_free(ls);
        return NULL;
}

int leases_start(Leases *ls, Slot *s, pid_t pid, uint64_t pid_start, int pidfd) {
        g_autoptr(Lease) l = NULL;
        int copy, r;

        copy = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return -errno;
        r = lease_new(ls, s, copy, &l);
        if (r < 0)
                return r;
        r = pool_lease(ls->broker->pool, s, pid, pid_start);
        if (r < 0)
                return r;
        s->lease = g_steal_pointer(&l);
        return 0;
}

int leases_readopt(Leases *ls, Slot *s, const LeaseRecord *rec, int pidfd, int region_fd_consumed) {
        _cleanup_close_ int region_fd = region_fd_consumed;
        g_autoptr(Lease) l = NULL;
        int r;

        r = lease_new(ls, s, pidfd, &l);
        if (r < 0)
                return r;
        r = pool_restore_lease(ls->broker->pool, s, rec->uuid, rec->domain, rec->tenant, rec->reserved_by, rec->pid,
                               rec->pid_start, region_fd);
        if (r < 0)
                return r;
        TAKE_FD(region_fd);   /* the pool's now */
        s->lease = g_steal_pointer(&l);
        return 0;
}

bool leases_end_if_exited(Leases *ls, Slot *s) {
        struct pollfd p = { .fd = s->lease->pidfd, .events = POLLIN };

        if (poll(&p, 1, 0) <= 0)
                return false;
        lease_end(ls, s, LEASE_END_RELEASED);
        return true;
}
