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
        GHashTable *holders;   /* HolderKey -> Holder: one watch per process, whatever it holds */
};

/* A process, as Claim's checks knew it: its pid and start time (clock ticks). */
typedef struct HolderKey {
        pid_t pid;
        uint64_t start;
} HolderKey;

/* One process holding leases: one pidfd and one watch for all of them (a QEMU may hold
 * several; a restart re-adopts thousands, and a watch costs an fd and an epoll_ctl). A
 * process whose start time is unknown (0) is never shared: its pid alone is no identity. */
typedef struct Holder {
        HolderKey key;
        bool shared;           /* in Leases.holders under key */
        Leases *owner;
        int pidfd;
        sd_event_source *exit_source;
        GPtrArray *leases;     /* Lease *, not owned: each lease removes itself */
} Holder;

struct Lease {
        Holder *holder;
        Slot *slot;
};

static guint holder_key_hash(gconstpointer k) {
        const HolderKey *key = k;

        return g_int_hash(&key->pid) ^ g_int64_hash(&key->start);
}

static gboolean holder_key_equal(gconstpointer a, gconstpointer b) {
        const HolderKey *x = a, *y = b;

        return x->pid == y->pid && x->start == y->start;
}

static void holder_free(Holder *h) {
        h->exit_source = sd_event_source_disable_unref(h->exit_source);
        safe_close(h->pidfd);
        g_ptr_array_free(h->leases, true);
        g_free(h);
}

static Lease *lease_free(Lease *l) {
        Holder *h;

        if (!l)
                return NULL;
        h = l->holder;
        g_ptr_array_remove_fast(h->leases, l);
        if (h->leases->len == 0 && h->shared)
                g_hash_table_remove(h->owner->holders, &h->key);   /* frees h */
        else if (h->leases->len == 0)
                holder_free(h);
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

/* Every lease of the process ends; the last one frees the holder. */
static int on_process_exit(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Holder *h = userdata;
        Leases *ls = h->owner;
        guint n = h->leases->len;

        while (n-- > 0) {
                Lease *l = g_ptr_array_index(h->leases, n);
                lease_end(ls, l->slot, LEASE_END_PROCESS_EXITED);   /* frees l, and h with the last */
        }
        return 0;
}

/* The holder of the process (pid, start), watched from now on: pidfd is borrowed, and
 * copied only for a process not watched yet. */
static int holder_get(Leases *ls, pid_t pid, uint64_t start, int pidfd, Holder **ret) {
        HolderKey key = { .pid = pid, .start = start };
        Holder *h = start != 0 ? g_hash_table_lookup(ls->holders, &key) : NULL;
        int r;

        if (h) {
                *ret = h;
                return 0;
        }
        h = g_new0(Holder, 1);
        h->key = key;
        h->owner = ls;
        h->leases = g_ptr_array_new();
        h->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
        if (h->pidfd < 0) {
                r = -errno;
                holder_free(h);
                return r;
        }
        r = sd_event_add_io(ls->event, &h->exit_source, h->pidfd, EPOLLIN, on_process_exit, h);
        if (r < 0) {
                holder_free(h);
                return r;
        }
        h->shared = start != 0;
        if (h->shared)
                g_hash_table_insert(ls->holders, &h->key, h);
        *ret = h;
        return 0;
}

/* The watch comes first: a slot is never leased without one (its end would go unseen). */
static int lease_new(Leases *ls, Slot *s, pid_t pid, uint64_t start, int pidfd, Lease **ret) {
        Holder *h = NULL;
        Lease *l;
        int r;

        r = holder_get(ls, pid, start, pidfd, &h);
        if (r < 0)
                return r;
        l = g_new0(Lease, 1);
        l->holder = h;
        l->slot = s;
        g_ptr_array_add(h->leases, l);
        *ret = l;
        return 0;
}

int leases_new(sd_event *event, Broker *broker, Recycler *recycler, Leases **ret) {
        Leases *ls = g_new0(Leases, 1);

        ls->event = sd_event_ref(event);
        ls->broker = broker;
        ls->recycler = recycler;
        ls->holders = g_hash_table_new_full(holder_key_hash, holder_key_equal, NULL, (GDestroyNotify) holder_free);
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
        g_hash_table_destroy(ls->holders);
        sd_event_unref(ls->event);
        g_free(ls);
        return NULL;
}

int leases_start(Leases *ls, Slot *s, pid_t pid, uint64_t pid_start, int pidfd) {
        g_autoptr(Lease) l = NULL;
        int r;

        r = lease_new(ls, s, pid, pid_start, pidfd, &l);
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

        r = lease_new(ls, s, rec->pid, rec->pid_start, pidfd, &l);
        if (r < 0)
                return r;
        r = pool_restore_lease(ls->broker->pool, s, rec->uuid, rec->domain, rec->tenant, rec->reserved_by, rec->pid,
                               rec->pid_start, region_fd, rec->region);
        if (r < 0)
                return r;
        TAKE_FD(region_fd);   /* the pool's now */
        s->lease = g_steal_pointer(&l);
        return 0;
}

bool leases_end_if_exited(Leases *ls, Slot *s) {
        struct pollfd p = { .fd = s->lease->holder->pidfd, .events = POLLIN };

        if (poll(&p, 1, 0) <= 0)
                return false;
        lease_end(ls, s, LEASE_END_RELEASED);
        return true;
}
