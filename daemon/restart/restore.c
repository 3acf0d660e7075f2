/* Re-adoption after a restart: registry + fd store + running processes -> the pool. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "process-identity.h"
#include "cleanup.h"
#include "domain-cgroup.h"
#include "libvirt-status.h"
#include "log.h"
#include "proc-index.h"
#include "regular-file.h"
#include "restore.h"
#include "rma-names.h"
#include "rma-util.h"

struct RestorePlan {
        RegistryContents *registry;
        bool trusted;               /* header valid, for this backend and size: records apply */
        bool rebuild;               /* the registry was there but not all of it is readable */
        FdStore *store;             /* borrowed */
        const BrokerConfig *config; /* borrowed */
        ProcIndex *procs;           /* who holds what, read from /proc once, when first asked */
        GHashTable *checked;        /* pid -> CheckedProcess: a QEMU with many leases is checked once */
        GHashTable *named;          /* slot -> GArray of holder indexes of memfds named for it (census) */
        /* What restore_apply() puts things back into (borrowed, during the call only). */
        Broker *broker;
        Recycler *recycler;
        Leases *leases;
};

int restore_plan_new(const BrokerConfig *config, FdStore *store, RestorePlan **ret) {
        RestorePlan *p = g_new0(RestorePlan, 1);

        p->store = store;
        p->config = config;
        (void) registry_load(config->runtime_dir, &p->registry);
        if (p->registry->newer_version) {
                int r = log_error_errno(EPROTONOSUPPORT, "Lease registry: %s. Refusing to start, so that the leases "
                                        "it records stay as they are: run that newer rma-brokerd again (the "
                                        "package of the version that wrote it), or, to give those leases up, remove "
                                        "%s/" REGISTRY_FILE_NAME " (running QEMUs then keep regions this broker "
                                        "cannot re-adopt)", p->registry->problem, config->runtime_dir);
                restore_plan_free(p);
                return r;
        }
        if (p->registry->other_boot)
                log_info("Lease registry: %s; starting afresh", p->registry->problem);
        else if (p->registry->problem)
                log_warning("Lease registry: %s; the leases are rebuilt from the running processes instead",
                            p->registry->problem);
        /* From another boot, nothing of it lives on: a fresh start, nothing to rebuild. */
        p->rebuild = p->registry->present && !p->registry->other_boot &&
                     (!p->registry->header_valid || p->registry->n_corrupt > 0 || p->registry->n_stale > 0);
        *ret = p;
        return 0;
}

RestorePlan *restore_plan_free(RestorePlan *p) {
        if (!p)
                return NULL;
        registry_contents_free(p->registry);
        proc_index_free(p->procs);
        g_clear_pointer(&p->checked, g_hash_table_destroy);
        g_clear_pointer(&p->named, g_hash_table_destroy);
        g_free(p);
        return NULL;
}

/* Slot i's record, NULL when there is none (or it is unreadable). A stale one (a backup
 * restored over the registry) is none: the region it names being gone proves nothing of
 * the slot's latest, which may be in flight where no census sees it. The slot is rebuilt
 * like a lost record's: re-adopted, watched, or pinned, never refilled on its word. */
static const RegistryRecord *record(const RestorePlan *p, unsigned i) {
        if (!p->registry->header_valid || i >= p->registry->count || !p->registry->records[i].present ||
            p->registry->records[i].stale)
                return NULL;
        return &p->registry->records[i];
}

/* Held back at start and not settled yet: no region, no lease, nothing of the recycler's. */
static bool unsettled(const RestorePlan *p, const Slot *s) {
        return s->state == SLOT_SCRUBBING && s->region_fd < 0 && !recycler_owns(p->recycler, s);
}

/* At most one pass over /proc per restart, whatever the number of slots. */
static const ProcIndex *procs(RestorePlan *p) {
        if (!p->procs)
                p->procs = proc_index_new(getpid());
        return p->procs;
}

/* The holders of memfds named for each slot, indexed once: where the census looks. */
static const GArray *named_holders(RestorePlan *p, unsigned i) {
        if (!p->named) {
                const ProcIndex *x = procs(p);
                /* The service manager keeps the fd store's copies: the broker's own regions
                 * (what a free or reserved record's slot has), never another holder. */
                pid_t keeper = fd_store_enabled(p->store) ? getppid() : 0;
                p->named = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) g_array_unref);
                for (guint j = 0; j < x->holders->len; j++) {
                        const ProcHolder *h = &g_array_index(x->holders, ProcHolder, j);
                        GArray *list;
                        if (h->named_slot < 0 || (keeper > 0 && h->pid == keeper))
                                continue;
                        list = g_hash_table_lookup(p->named, GINT_TO_POINTER(h->named_slot));
                        if (!list) {
                                list = g_array_new(FALSE, FALSE, sizeof(guint));
                                g_hash_table_insert(p->named, GINT_TO_POINTER(h->named_slot), list);
                        }
                        g_array_append_val(list, j);
                }
        }
        return g_hash_table_lookup(p->named, GINT_TO_POINTER(i));
}

/* The region a slot's record accounts for while some process holds it: a lease's, or an
 * old one held elsewhere. A free record's region held by anyone left the broker after
 * the record was written (the record is stale), so it explains nothing. */
static uint64_t explained_ino(const RegistryRecord *r) {
        return r && (r->state == SLOT_LEASED || r->state == SLOT_HELD_ELSEWHERE) ? r->region_ino : 0;
}

/* Census, first look: some process holds a memfd named for slot i that its record does
 * not account for. Only a suspicion (names are anyone's): restore_from_census() proves
 * it by the mark, and a slot held back for nothing is refilled. */
static bool census_suspects(RestorePlan *p, unsigned i, const RegistryRecord *r) {
        const GArray *list = named_holders(p, i);

        for (guint k = 0; list && k < list->len; k++) {
                const ProcHolder *h = &g_array_index(procs(p)->holders, ProcHolder, g_array_index(list, guint, k));
                if (h->ino != explained_ino(r))
                        return true;
        }
        return false;
}

static bool hold_back(unsigned i, void *userdata) {
        RestorePlan *p = userdata;
        const RegistryRecord *r = record(p, i);

        if (fd_store_has_region(p->store, i))
                return true;
        /* Whatever the registry says (it may be a backup restored over it), a live region
         * of the slot's keeps it from getting a second one. */
        if (p->registry->present && !p->registry->other_boot && census_suspects(p, i, r))
                return true;
        /* A free region outlives the broker only where it went on (its record is stale):
         * its handle says, also of an fd in flight that no /proc shows. */
        if (r && r->state == SLOT_FREE && r->region_handle.len > 0)
                return true;
        if (p->rebuild && !r)
                return true;   /* unknown: maybe a lease that the processes will tell */
        return r && (r->state == SLOT_LEASED || r->state == SLOT_HELD_ELSEWHERE);
}

BrokerTakeover restore_plan_takeover(RestorePlan *p) {
        unsigned keep = 0;

        /* Count=auto keeps every slot that a running QEMU (or an old region) may hold:
         * those regions are not in the host's pool now. A stale record may hide either. */
        for (unsigned i = 0; p->registry->header_valid && i < p->registry->count; i++)
                if (p->registry->records[i].present &&
                    (p->registry->records[i].stale || p->registry->records[i].state == SLOT_LEASED ||
                     (p->registry->records[i].state == SLOT_HELD_ELSEWHERE &&
                      (p->registry->records[i].region_ino != 0 || p->registry->records[i].region_unknown))))
                        keep = i + 1;
        /* ... and every slot whose region waits in the fd store. */
        keep = MAX(keep, fd_store_region_slots(p->store));
        return (BrokerTakeover) {
                .pool_count = keep,
                .region_size = p->registry->header_valid ? p->registry->region_size : 0,
                .hold_back = hold_back,
                .userdata = p,
        };
}

/* pid (any process but us when 0) with an fd on the inode, or a mapping of it. */
static const ProcHolder *find_holder(RestorePlan *p, uint64_t dev, uint64_t ino, pid_t pid) {
        return ino == 0 ? NULL : proc_index_find(procs(p), dev, ino, pid);
}

typedef enum OldRegion {
        OLD_REGION_HELD,      /* *ret_fd: a reference to it, from the fd store or by its handle */
        OLD_REGION_GONE,      /* proven gone: no process, no mapping, no fd in flight holds it */
        OLD_REGION_UNKNOWN,   /* no reference and no proof (hugetlb without the fd store, kvm) */
} OldRegion;

/* What became of a region the last broker recorded for slot i. The fd store's copy
 * counts only when its inode is the recorded one; a handle reopens the very inode while
 * anything at all keeps it alive, and answers ESTALE once nothing does. Held: the fd is
 * a region of this pool (backend_verify_region), so a lease can take it as it is. */
static OldRegion old_region_get(RestorePlan *p, unsigned i, uint64_t dev, uint64_t ino,
                                const RegionHandle *handle, int *ret_fd, const char **ret_how) {
        int stored = fd_store_peek_region(p->store, i), r;
        struct stat st;

        if (stored >= 0 && ino != 0 && fstat(stored, &st) == 0 && (uint64_t) st.st_dev == dev &&
            (uint64_t) st.st_ino == ino && backend_verify_region(p->broker->backend, stored) >= 0) {
                *ret_fd = fd_store_take_region(p->store, i);
                *ret_how = "region from the fd store";
                return OLD_REGION_HELD;
        }
        if (ino == 0)
                return OLD_REGION_GONE;   /* no region was left to anyone */
        r = backend_reopen_region(p->broker->backend, handle, ret_fd);
        if (r >= 0) {
                *ret_how = "region reopened by its kernel handle";
                if (fstat(*ret_fd, &st) == 0 && (uint64_t) st.st_dev == dev && (uint64_t) st.st_ino == ino)
                        return OLD_REGION_HELD;
                *ret_fd = safe_close(*ret_fd);
                return OLD_REGION_UNKNOWN;
        }
        return r == -ESTALE ? OLD_REGION_GONE : OLD_REGION_UNKNOWN;
}

/* A reference (O_PATH) to the region a holder's /proc path reaches now, if it still is
 * the recorded inode. The path is only a name: its owner may have put another file there
 * since /proc was read, and a watch on that one would free the slot too early. */
static int open_held_region(const ProcHolder *h, uint64_t dev, uint64_t ino, int *ret_fd) {
        g_autofree char *path = proc_holder_path(h);
        _cleanup_close_ int fd = open(path, O_PATH | O_CLOEXEC);
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_dev != dev || (uint64_t) st.st_ino != ino)
                return -ESTALE;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Watch the slot's old region where some process holds it, by the broker's own
 * reference to the very inode: 0, or <0 when there is no holder in sight. */
static int watch_holder(RestorePlan *p, Slot *s, pid_t pid) {
        const ProcHolder *h = find_holder(p, s->old_region_dev, s->old_region_ino, pid);
        int fd = -EBADF, r;

        if (!h)
                return -ENOENT;
        r = open_held_region(h, s->old_region_dev, s->old_region_ino, &fd);
        if (r < 0)
                return r;
        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_HELD_ELSEWHERE, .slot = (int) s->index,
                                           .pid = (int) h->pid },
                  "RMA slot %u: its old region is still held (pid %d); held-elsewhere until it is let go", s->index,
                  (int) h->pid);
        recycler_lease_ended(p->recycler, s, fd);
        return 0;
}

/* No reference to the old region and no proof that it is gone. kvm: the kernel's own pool
 * is the bound (a refill succeeds only once some RMA is back). Else a holder found by
 * inode is watched; with none found, a holder we cannot see (an fd in flight, a process
 * we may not inspect) may still have it, so the slot stays held-elsewhere until an admin
 * who knows better frees it. */
static void settle_unknown(RestorePlan *p, Slot *s) {
        if (!p->broker->backend->ops->release_is_watchable) {
                recycler_refill_held_back(p->recycler, s);
                return;
        }
        if (watch_holder(p, s, 0) >= 0)
                return;
        log_event(LOG_ERR, &(LogEvent) { .message_id = RMA_MESSAGE_SLOT_PINNED, .slot = (int) s->index },
                  "RMA slot %u: its old region (inode %llu) cannot be proven gone: the %s backend cannot reopen it, "
                  "and a holder rma-brokerd cannot see (an fd in flight, a process it may not inspect) may keep it. "
                  "The slot stays held-elsewhere. Once no process holds that region, free the slot with "
                  "'rmactl forget-region %u' (run rma-brokerd under systemd with its fd store to avoid this)",
                  s->index, (unsigned long long) s->old_region_ino, p->broker->backend->ops->name, s->index);
        recycler_pin(p->recycler, s);
}

static bool same_inode(int fd, uint64_t dev, uint64_t ino) {
        struct stat st;

        return fstat(fd, &st) == 0 && (uint64_t) st.st_dev == dev && (uint64_t) st.st_ino == ino;
}

/* The slot's old region, which no lease holds any more: free once it is gone. */
static void settle_old_region(RestorePlan *p, Slot *s, uint64_t dev, uint64_t ino,
                              const RegionHandle *handle) {
        const char *how = NULL;
        int fd = -EBADF;
        OldRegion old = old_region_get(p, s->index, dev, ino, handle, &fd, &how);

        /* Recorded again, so that a second restart still knows which region to wait for. */
        s->old_region_dev = dev;
        s->old_region_ino = ino;
        s->old_region_handle = *handle;
        switch (old) {
        case OLD_REGION_HELD:
                /* Watched, then our reference closed: free at once if ours was the last. */
                log_info("RMA slot %u: its old region still exists (%s); the slot is free once no process holds it",
                         s->index, how);
                recycler_lease_ended(p->recycler, s, fd);
                return;
        case OLD_REGION_GONE:
                recycler_refill_held_back(p->recycler, s);
                return;
        case OLD_REGION_UNKNOWN:
                settle_unknown(p, s);
                return;
        }
}

/* The fd store's region for slot i is a free one: the registry says the slot was free
 * (or reserved) with that very region. */
static bool stored_is_free_region(RestorePlan *p, unsigned i, const RegistryRecord *rec) {
        struct stat st;
        int fd = fd_store_peek_region(p->store, i);
        RegionMark mark;

        if (!rec || (rec->state != SLOT_FREE && rec->state != SLOT_RESERVED) || fd < 0 || fstat(fd, &st) < 0 ||
            (uint64_t) st.st_ino != rec->region_ino || (uint64_t) st.st_dev != rec->region_dev)
                return false;
        /* Once leased a region is never free again: a record that calls it free is stale. */
        return !(backend_region_mark_read(p->broker->backend, fd, &mark) >= 0 && mark.leased);
}

/* A live, trusted claimant and its region, verified a region of this pool: its lease
 * again. Takes region_fd; pidfd is borrowed. */
static int readopt_lease(RestorePlan *p, Slot *s, const LeaseRecord *rec, int pidfd, int region_fd, const char *how) {
        int r = leases_readopt(p->leases, s, rec, pidfd, region_fd);

        if (r < 0) {
                /* The process runs and holds a region: its slot is never handed out. */
                recycler_pin(p->recycler, s);
                return log_event_errno(LOG_ERR, r, &(LogEvent) { .message_id = RMA_MESSAGE_LEASE_LOST,
                                                                  .slot = (int) s->index, .uuid = rec->uuid,
                                                                  .domain = rec->domain, .tenant = rec->tenant,
                                                                  .pid = (int) rec->pid },
                                       "RMA slot %u: cannot restore the lease of domain %s (pid %d): %m; the slot "
                                       "stays held-elsewhere until rma-brokerd restarts or 'rmactl forget-region %u' "
                                       "once that process is gone", s->index, rec->domain, (int) rec->pid, s->index);
        }
        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_READOPTED, .slot = (int) s->index, .uuid = rec->uuid,
                                           .domain = rec->domain, .tenant = rec->tenant, .pid = (int) rec->pid,
                                           .result = "readopted" },
                  "RMA slot %u: re-adopted the lease of domain %s (%s), tenant %s, pid %d (%s)", s->index, rec->domain,
                  rec->uuid, rec->tenant, (int) rec->pid, how);
        return 0;
}

/* The lease the registry recorded, held by the process that started at start, on the
 * region region (NULL: not proven to be the recorded one). */
static LeaseRecord lease_record_of(const RegistryRecord *rec, uint64_t start, const RegionIdentity *region) {
        return (LeaseRecord) { .uuid = rec->uuid, .domain = rec->domain, .tenant = rec->tenant,
                               .reserved_by = rec->reserved_by, .pid = rec->pid, .pid_start = start,
                               .region = region };
}

/* What the checks of trusted_holder() found of one process. They read /proc (three files,
 * a dozen syscalls): a QEMU that holds many leases is checked once for all of them. */
typedef struct CheckedProcess {
        uint64_t start;
        int pidfd;             /* the process the checks were about; -EBADF when gone */
        int identity;          /* 0, -ESRCH gone, -EACCES not a QemuUsers account */
        char *cgroup_domain;   /* the domain checked last (its cgroup, if CheckCgroup=yes), and the result */
        int cgroup;
        char *cgroup_why;
} CheckedProcess;

static void checked_process_free(gpointer data) {
        CheckedProcess *c = data;

        safe_close(c->pidfd);
        g_free(c->cgroup_domain);
        g_free(c->cgroup_why);
        g_free(c);
}

/* pid's start time, pidfd and uid, read once. */
static CheckedProcess *check_process(RestorePlan *p, pid_t pid) {
        CheckedProcess *c;
        uid_t uid;
        int r;

        if (!p->checked)
                p->checked = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, checked_process_free);
        c = g_hash_table_lookup(p->checked, GINT_TO_POINTER(pid));
        if (c)
                return c;
        c = g_new0(CheckedProcess, 1);
        c->pidfd = -EBADF;
        g_hash_table_insert(p->checked, GINT_TO_POINTER(pid), c);
        /* The pidfd first: what is read of pid from here is about the process it pins, as
         * long as pidfd_is_alive() says so after the reads (trusted_holder). */
        if (pidfd_open_checked(pid, 0, &c->pidfd) < 0 || proc_start_time(pid, &c->start) < 0)
                c->identity = -ESRCH;
        else if ((r = process_effective_uid(pid, c->pidfd, &uid)) == -ESRCH)
                c->identity = -ESRCH;
        else if (r < 0 || !broker_config_uid_may_claim(p->config, uid))
                c->identity = -EACCES;
        return c;
}

/* pid, if it is still the process that started at *start (0: read it now) and it would
 * pass Claim's checks: a QemuUsers uid and (CheckCgroup=yes) the domain's libvirt cgroup.
 * Names in /proc are anyone's to choose; these are not. 0 and *ret_pidfd (borrowed: the
 * one pidfd of the process, open until restore_apply() returns), or <0 and *why: -ESRCH
 * gone, -EACCES not a QemuUsers account, -EPERM not in the domain's cgroup. */
static int trusted_holder(RestorePlan *p, pid_t pid, uint64_t *start, const char *domain, int *ret_pidfd, char **why) {
        CheckedProcess *c = pid > 0 ? check_process(p, pid) : NULL;

        /* Another start time: the recorded process is gone and its pid taken since. */
        if (!c || c->identity == -ESRCH || (*start != 0 && *start != c->start)) {
                *why = g_strdup("it is gone");
                return -ESRCH;
        }
        if (c->identity == -EACCES) {
                *why = g_strdup("it does not run as a QemuUsers account");
                return -EACCES;
        }
        if (!c->cgroup_domain || !g_str_equal(c->cgroup_domain, domain)) {
                g_free(c->cgroup_domain);
                g_clear_pointer(&c->cgroup_why, g_free);
                c->cgroup_domain = g_strdup(domain);
                c->cgroup = p->config->check_cgroup ? domain_cgroup_check_pid(pid, domain, &c->cgroup_why) : 1;
                /* The pidfd pins the process the checks were about: it must still be alive. */
                if (!pidfd_is_alive(c->pidfd))
                        c->identity = -ESRCH;
        }
        if (c->identity == -ESRCH) {
                *why = g_strdup("it is gone");
                return -ESRCH;
        }
        if (c->cgroup <= 0) {
                *why = g_strdup_printf("it is not in the domain's cgroup (%s)",
                                       c->cgroup_why ? c->cgroup_why : "cannot read /proc");
                return -EPERM;
        }
        *start = c->start;
        *ret_pidfd = c->pidfd;
        return 0;
}

/* Why a recorded lease does not come back, in the journal's terms. */
static void log_not_readopted(const Slot *s, const RegistryRecord *rec, int r, const char *why) {
        if (r == -ESRCH && g_str_equal(why, "it is gone"))
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_LEASE_ENDED, .slot = (int) s->index,
                                                   .uuid = rec->uuid, .domain = rec->domain, .tenant = rec->tenant,
                                                   .pid = (int) rec->pid, .result = "exited-while-down" },
                          "RMA slot %u: the QEMU of domain %s (pid %d) exited while rma-brokerd was down; the slot is "
                          "free once its old region is gone", s->index, rec->domain, (int) rec->pid);
        else if (r < 0)
                log_event(LOG_WARNING, &(LogEvent) { .message_id = RMA_MESSAGE_LEASE_ENDED, .slot = (int) s->index,
                                                      .uuid = rec->uuid, .domain = rec->domain, .tenant = rec->tenant,
                                                      .pid = (int) rec->pid, .result = "not-readopted" },
                          "RMA slot %u: the lease of domain %s (pid %d) is not re-adopted: %s; the slot is free once "
                          "its old region is gone", s->index, rec->domain, (int) rec->pid, why);
}

/* A recorded lease: its QEMU still runs and passes Claim's checks (re-adopt), or the lease
 * ended while the broker was down and the old region is settled like any ended lease's.
 * With a reference to the region of its own (fd store, handle), the broker re-adopts a
 * live, trusted claimant whatever it did with its fd meanwhile: its lease ends when it
 * exits, and the region is then watched like any other (as without a restart). Without
 * one, the claimant must still have the region's fd for the broker to take a copy. */
static void restore_lease(RestorePlan *p, Slot *s, const RegistryRecord *rec) {
        g_autofree char *why = NULL;
        uint64_t start = rec->pid_start;
        const char *how = NULL;
        const ProcHolder *h = NULL;
        int pidfd = -EBADF, fd = -EBADF, r;

        r = trusted_holder(p, rec->pid, &start, rec->domain, &pidfd, &why);
        if (r >= 0 && old_region_get(p, s->index, rec->region_dev, rec->region_ino, &rec->region_handle, &fd,
                                     &how) == OLD_REGION_HELD) {
                /* That very inode: the recorded handle is its own. */
                const RegionIdentity region = { .dev = rec->region_dev, .ino = rec->region_ino,
                                                .handle = rec->region_handle };
                LeaseRecord lease = lease_record_of(rec, start, &region);
                (void) readopt_lease(p, s, &lease, pidfd, fd, how);
                return;
        }
        if (r >= 0 && !(h = find_holder(p, rec->region_dev, rec->region_ino, rec->pid))) {
                why = g_strdup("it holds the region no more (passed on, or the claim never completed)");
                r = -ESRCH;
        }
        if (r < 0) {
                log_not_readopted(s, rec, r, why);
                settle_old_region(p, s, rec->region_dev, rec->region_ino, &rec->region_handle);
                return;
        }
        /* Its fd, if it still has one (a mapping alone cannot be taken), and only if it is
         * still the recorded region: the process may have put another file at that number. */
        r = h->fdnum >= 0 ? pidfd_take_fd(pidfd, h->fdnum, &fd) : -EBADF;
        if (r >= 0 && !same_inode(fd, rec->region_dev, rec->region_ino)) {
                fd = safe_close(fd);
                r = -ESTALE;
        }
        if (r >= 0) {
                r = backend_verify_region(p->broker->backend, fd);
                if (r < 0)
                        fd = safe_close(fd);
        }
        if (r < 0) {
                /* It runs and holds a region we cannot take: never hand its slot out.
                 * Watch the region where it is reachable, else keep the slot pinned. */
                log_event_errno(LOG_ERR, r, &(LogEvent) { .message_id = RMA_MESSAGE_LEASE_LOST,
                                                           .slot = (int) s->index, .uuid = rec->uuid,
                                                           .domain = rec->domain, .tenant = rec->tenant,
                                                           .pid = (int) rec->pid },
                                "RMA slot %u: domain %s (pid %d) still runs, but its region cannot be taken back "
                                "(%m; rma-brokerd needs CAP_SYS_PTRACE); its lease is lost and the slot stays "
                                "held-elsewhere until the region is let go", s->index, rec->domain, (int) rec->pid);
                s->old_region_dev = rec->region_dev;
                s->old_region_ino = rec->region_ino;
                s->old_region_handle = rec->region_handle;
                if (watch_holder(p, s, rec->pid) < 0)
                        recycler_pin(p->recycler, s);
                return;
        }
        LeaseRecord lease = lease_record_of(rec, start, NULL);
        (void) readopt_lease(p, s, &lease, pidfd, fd, "region taken back from the process with pidfd_getfd");
}

/* A slot whose record is lost: held back, its region neither settled nor leased yet. */
static bool slot_unknown(RestorePlan *p, unsigned i) {
        const RegistryRecord *r = record(p, i);
        const Slot *s = &p->broker->pool->slots[i];

        return !r && unsettled(p, s);
}

static bool same_region(int a, int b) {
        struct stat sa, sb;

        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static char *inode_key(uint64_t dev, uint64_t ino) {
        return g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, dev, ino);
}

/* Which lost slot a region taken from a process is, by what proves it: the fd store's
 * copy of that very inode, or the broker's own mark (a name is never proof). -1: none. */
static int lost_slot_of_region(RestorePlan *p, GHashTable *stored_by_inode, int fd) {
        g_autofree char *key = NULL;
        struct stat st;
        gpointer slot;
        int k;

        if (fstat(fd, &st) < 0)
                return -1;
        key = inode_key(st.st_dev, st.st_ino);
        if (g_hash_table_lookup_extended(stored_by_inode, key, NULL, &slot))
                k = GPOINTER_TO_INT(slot);
        else if ((k = backend_region_mark(p->broker->backend, fd)) < 0)
                return -1;
        if ((unsigned) k >= p->broker->pool->n_slots || !slot_unknown(p, (unsigned) k) ||
            backend_verify_region(p->broker->backend, fd) < 0)
                return -1;
        return k;
}

/* Lost records: every QEMU that passes Claim's checks (uid, cgroup, start time) and holds
 * a region proven ours gets its lease back on that region's slot. From the one index of
 * /proc: linear in processes plus slots. */
/* The fd store's regions by inode ("dev:ino" -> slot). */
static GHashTable *stored_regions_by_inode(RestorePlan *p) {
        GHashTable *by_inode = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

        for (unsigned i = 0; i < p->broker->pool->n_slots; i++) {
                struct stat st;
                int fd = fd_store_peek_region(p->store, i);
                if (fd >= 0 && fstat(fd, &st) == 0)
                        g_hash_table_insert(by_inode, inode_key(st.st_dev, st.st_ino), GINT_TO_POINTER(i));
        }
        return by_inode;
}

/* The tenant the hook gave when it reserved for the domain: its record beside broker.sock
 * (root's; "tenant=" empty when the policy chose by the domain's name). 0, -ENOENT when
 * there is none, -EINVAL when it is not that domain's. */
static int hook_tenant(RestorePlan *p, const LibvirtDomain *d, char **ret_tenant) {
        g_autofree char *path = g_build_filename(p->config->runtime_dir, RMA_DOMAINS_DIR_NAME, d->uuid, NULL);
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        const char *uuid = NULL, *domain = NULL, *tenant = NULL;
        _cleanup_close_ int fd = regular_file_open(path);   /* never a FIFO's blocking open */
        struct stat st;

        if (fd < 0)
                return -ENOENT;
        if (fstat(fd, &st) < 0 || st.st_uid != 0 || regular_file_read_fd(fd, 64 * 1024, &text) < 0)
                return -EINVAL;   /* root's alone; nobody else's word counts */
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                if (g_str_has_prefix(*l, "uuid="))
                        uuid = *l + 5;
                else if (g_str_has_prefix(*l, "domain="))
                        domain = *l + 7;
                else if (g_str_has_prefix(*l, "tenant="))
                        tenant = *l + 7;
        }
        if (!uuid || !domain || !tenant || !g_str_equal(uuid, d->uuid) || !g_str_equal(domain, d->name))
                return -EINVAL;
        *ret_tenant = g_strdup(tenant);
        return 0;
}

/* A process that libvirtd recorded as the QEMU of a domain the pool knows nothing of, and
 * that passes Claim's checks: 0 with that domain (its name and uuid from libvirt's status
 * XML, which the QEMU cannot write, not from its command line, which it can), its start
 * time and a pidfd; <0 for any other process. */
static int lost_claimant(RestorePlan *p, GHashTable *libvirt, pid_t pid, const LibvirtDomain **ret_domain,
                         uint64_t *ret_start, int *ret_pidfd) {
        const LibvirtDomain *d = g_hash_table_lookup(libvirt, GINT_TO_POINTER(pid));
        g_autofree char *why = NULL;
        int r;

        if (!d || pool_find(p->broker->pool, d->uuid))
                return -ESRCH;
        *ret_start = 0;
        r = trusted_holder(p, pid, ret_start, d->name, ret_pidfd, &why);
        if (r == -EACCES)
                return r;   /* not a QEMU of ours at all: nothing to say */
        if (r < 0) {
                log_warning("Not rebuilding a lease for pid %d (domain %s): %s", (int) pid, d->name, why);
                return r;
        }
        *ret_domain = d;
        return 0;
}

/* The first region fd of the process whose holders start at x->holders[first] that is
 * proven a lost slot's: the slot, with the fd in *ret_fd; -1 when there is none. */
static int take_lost_region(RestorePlan *p, guint first, int pidfd, GHashTable *stored_by_inode, int *ret_fd) {
        const ProcIndex *x = procs(p);
        pid_t pid = g_array_index(x->holders, ProcHolder, first).pid;

        for (guint j = first; j < x->holders->len; j++) {
                const ProcHolder *o = &g_array_index(x->holders, ProcHolder, j);
                _cleanup_close_ int fd = -EBADF;
                int k;

                if (o->pid != pid)
                        break;
                if (o->fdnum < 0 || pidfd_take_fd(pidfd, o->fdnum, &fd) < 0)
                        continue;
                k = lost_slot_of_region(p, stored_by_inode, fd);
                if (k >= 0) {
                        *ret_fd = TAKE_FD(fd);
                        return k;
                }
        }
        return -1;
}

/* A region in hand whose holder is no proven lease: the slot goes the way of an ended
 * lease's (held-elsewhere, watched until the region is let go, then refilled). If its mark
 * names a lease, that lease may still run: it counts against its tenant till then. */
static void watch_unproven(RestorePlan *p, Slot *s, int fd_consumed) {
        RegionMark mark;
        struct stat st;

        if (fstat(fd_consumed, &st) == 0) {
                s->old_region_dev = st.st_dev;
                s->old_region_ino = st.st_ino;
        }
        (void) region_handle_get(fd_consumed, &s->old_region_handle);
        if (backend_region_mark_read(p->broker->backend, fd_consumed, &mark) >= 0 && mark.leased &&
            mark.slot == s->index) {
                log_warning("RMA slot %u: its region was leased to domain %s of tenant %s, and that lease is not "
                            "proven ended: it counts against tenant %s (MaxRmas) until the region is let go",
                            s->index, mark.uuid, mark.tenant, mark.tenant);
                pool_hold_for_tenant(p->broker->pool, s, mark.tenant);
        }
        recycler_lease_ended(p->recycler, s, fd_consumed);
}

/* Census, proof: a region some process holds for slot s that the record does not account
 * for, proven ours by its mark (pool, slot, MAC) and checked a region of this pool. 0 and
 * *ret_fd (a read-only fd: DAC_READ_SEARCH opens a 0000 region), or -ENOENT. */
static int census_region(RestorePlan *p, const Slot *s, const RegistryRecord *rec, int *ret_fd, pid_t *ret_pid) {
        const GArray *list = named_holders(p, s->index);

        for (guint k = 0; list && k < list->len; k++) {
                const ProcHolder *h = &g_array_index(procs(p)->holders, ProcHolder, g_array_index(list, guint, k));
                g_autofree char *path = NULL;
                _cleanup_close_ int fd = -EBADF;
                RegionMark mark;

                if (h->ino == explained_ino(rec))
                        continue;
                path = proc_holder_path(h);
                fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd < 0 || !same_inode(fd, h->dev, h->ino) ||
                    backend_region_mark_read(p->broker->backend, fd, &mark) < 0 || mark.slot != s->index ||
                    backend_verify_region(p->broker->backend, fd) < 0)
                        continue;
                *ret_pid = h->pid;
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        return -ENOENT;
}

/* A held-back slot with a live region of its own that its record does not know (a stale
 * registry: a backup restored over it) keeps that region's slot held-elsewhere, never a
 * fresh region beside it. The record is not used. */
static bool restore_from_census(RestorePlan *p, Slot *s, const RegistryRecord *rec) {
        int fd = -EBADF;
        pid_t pid = 0;

        if (census_region(p, s, rec, &fd, &pid) < 0)
                return false;
        log_warning("RMA slot %u: pid %d holds a region rma-brokerd made for this slot that the lease registry does "
                    "not record (a stale copy restored over %s/" REGISTRY_FILE_NAME "?): the record is not used, and "
                    "the slot stays held-elsewhere until that region is let go", s->index, (int) pid,
                    p->config->runtime_dir);
        watch_unproven(p, s, fd);
        return true;
}

/* Lost records: every QEMU that libvirtd recorded as running a domain, that passes Claim's
 * checks (uid, cgroup, start time) and holds a region proven ours, and whose tenant the
 * hook's record gives, gets its lease back on that region's slot. A process that holds a
 * proven region but that no such proof names is left alone: its slot stays held-elsewhere
 * until the region is let go (settle_unrecorded). From the one index of /proc: linear in
 * processes plus slots. */
static void rebuild_from_processes(RestorePlan *p) {
        g_autoptr(GHashTable) stored_by_inode = stored_regions_by_inode(p);
        g_autoptr(GHashTable) libvirt = libvirt_status_read(p->config->libvirt_status_dir);
        const ProcIndex *x = procs(p);
        unsigned found = 0;
        pid_t done = 0;   /* the process last looked at: holders are grouped by pid */

        for (guint i = 0; i < x->holders->len; i++) {
                const ProcHolder *h = &g_array_index(x->holders, ProcHolder, i);
                const LibvirtDomain *d = NULL;
                g_autofree char *tenant = NULL;
                const PolicyTenant *t;
                LeaseRecord rec;
                int pidfd = -EBADF, fd = -EBADF, k;

                if (h->pid == done || h->fdnum < 0)
                        continue;
                done = h->pid;
                rec = (LeaseRecord) { .pid = h->pid };
                if (lost_claimant(p, libvirt, h->pid, &d, &rec.pid_start, &pidfd) < 0)
                        continue;
                k = take_lost_region(p, i, pidfd, stored_by_inode, &fd);
                if (k < 0)
                        continue;
                if (hook_tenant(p, d, &tenant) < 0) {
                        /* Which tenant's quota it counts against is unproven: not a lease of
                         * anyone's, and its region stays out of the pool while it lives. */
                        log_warning("RMA slot %d: pid %d (domain %s, %s, as libvirt recorded it) holds its region, but "
                                    "the hook's record of the domain's tenant (%s/" RMA_DOMAINS_DIR_NAME "/%s) is gone "
                                    "or not root's: not re-adopted; the slot stays held-elsewhere until the region is "
                                    "let go", k, (int) h->pid, d->name, d->uuid, p->config->runtime_dir, d->uuid);
                        watch_unproven(p, &p->broker->pool->slots[k], fd);
                        continue;
                }
                /* The process's fd is the region; the slot's stored copy, if it is that very
                 * region, is not needed (another one stays for the final settling). */
                if (fd_store_peek_region(p->store, (unsigned) k) >= 0 &&
                    same_region(fd_store_peek_region(p->store, (unsigned) k), fd))
                        safe_close(fd_store_take_region(p->store, (unsigned) k));
                /* As the hook's Reserve did: its tenant, or the policy's choice by the name. */
                t = policy_tenant_for_domain(p->broker->policy, d->name, tenant, NULL);
                rec.uuid = d->uuid;
                rec.domain = d->name;
                rec.tenant = t ? t->name : POLICY_IMPLICIT_TENANT;
                if (readopt_lease(p, &p->broker->pool->slots[k], &rec, pidfd, fd,
                                  "rebuilt from libvirt's status and the hook's record") >= 0)
                        found++;
        }
        log_event(LOG_WARNING, &(LogEvent) { .message_id = RMA_MESSAGE_REGISTRY_REBUILT, .slot = -1 },
                  "Lease registry rebuilt from the running processes: %u lease(s) found", found);
}

/* A free region in the fd store, as the registry says and the inode confirms. */
static void restore_free_region(RestorePlan *p, Slot *s) {
        int fd = fd_store_take_region(p->store, s->index);

        if (backend_verify_region(p->broker->backend, fd) >= 0)
                pool_region_ready(p->broker->pool, s, fd);
        else {
                safe_close(fd);
                recycler_refill_held_back(p->recycler, s);
        }
}

/* A slot its record calls free (or reserved), held back for a check: its recorded region
 * still alive after the broker that owned it died means it left the broker after the
 * record was written, so it is watched like an ended lease's; else (gone, or nothing can
 * tell) the slot gets a fresh region now, as at any start. */
static void settle_free_record(RestorePlan *p, Slot *s, const RegistryRecord *rec) {
        const char *how = NULL;
        int fd = -EBADF;

        if (rec->state == SLOT_FREE && rec->region_ino != 0 &&
            old_region_get(p, s->index, rec->region_dev, rec->region_ino, &rec->region_handle, &fd, &how) ==
                    OLD_REGION_HELD) {
                log_warning("RMA slot %u: its record says free, but its region (inode %llu) is still alive (%s): it "
                            "left rma-brokerd after the record was written (a stale copy of the registry?); the slot "
                            "stays held-elsewhere until that region is let go", s->index,
                            (unsigned long long) rec->region_ino, how);
                watch_unproven(p, s, fd);
                return;
        }
        (void) pool_refill_now(p->broker->pool, s);
}

/* One slot as its record says: a lease checked, an old region settled, a free region
 * back; a reservation with its expiry. Returns whether a lease was checked. */
static bool restore_slot(RestorePlan *p, Slot *s, const RegistryRecord *rec, unsigned *reservations) {
        bool held_back = unsettled(p, s), lease = false;

        /* A slot without a record waits for the rebuild, which may prove its lease. */
        if (held_back && rec && restore_from_census(p, s, rec))
                return false;
        if (rec && rec->state == SLOT_LEASED && held_back) {
                restore_lease(p, s, rec);
                lease = true;
        } else if (rec && rec->state == SLOT_HELD_ELSEWHERE && held_back && rec->region_unknown)
                settle_unknown(p, s);   /* pinned before: still nothing proves it gone */
        else if (rec && rec->state == SLOT_HELD_ELSEWHERE && held_back)
                settle_old_region(p, s, rec->region_dev, rec->region_ino, &rec->region_handle);
        else if (held_back && fd_store_has_region(p->store, s->index) &&
                 stored_is_free_region(p, s->index, rec))
                restore_free_region(p, s);
        else if (held_back && !fd_store_has_region(p->store, s->index) && rec &&
                 (rec->state == SLOT_FREE || rec->state == SLOT_RESERVED))
                settle_free_record(p, s, rec);
        if (rec && rec->state == SLOT_RESERVED) {
                if (rec->expires_monotonic == 0)
                        log_info("RMA slot %u: the reservation of domain %s expired while rma-brokerd was down",
                                 s->index, rec->domain);
                else if (pool_restore_reservation(p->broker->pool, s, rec->uuid, rec->domain, rec->tenant,
                                                  rec->reserved_by, rec->expires_monotonic) >= 0)
                        (*reservations)++;
        }
        return lease;
}

/* What is still held back lost its record and no trusted process holds it. A stored
 * region may be a lease the rebuild did not find: it goes the way of an ended lease
 * (watched until gone, then refilled). Without one, nothing proves that no process holds
 * the slot's old region. */
static void settle_unrecorded(RestorePlan *p) {
        Pool *pool = p->broker->pool;

        for (unsigned i = 0; i < pool->n_slots; i++) {
                Slot *s = &pool->slots[i];
                if (!unsettled(p, s) || restore_from_census(p, s, NULL))
                        continue;
                if (fd_store_has_region(p->store, i))
                        /* Recorded as the old region, so that a second restart still waits for it. */
                        watch_unproven(p, s, fd_store_take_region(p->store, i));
                else
                        settle_unknown(p, s);
        }
}

int restore_apply(RestorePlan *p, Broker *broker, Recycler *recycler, Leases *leases) {
        Pool *pool = broker->pool;
        const RegistryContents *reg = p->registry;
        bool same_pool = reg->header_valid && g_str_equal(reg->backend, broker->backend->ops->name) &&
                         reg->region_size == broker->backend->region_size;
        unsigned restored = 0, reservations = 0;

        p->broker = broker;
        p->recycler = recycler;
        p->leases = leases;
        if (reg->header_valid && !same_pool)
                log_warning("Lease registry: the last broker ran a pool of %s regions of %llu bytes, this one %s of "
                            "%llu; leases of the old pool cannot be re-adopted into it", reg->backend,
                            (unsigned long long) reg->region_size, broker->backend->ops->name,
                            (unsigned long long) broker->backend->region_size);
        for (unsigned i = 0; i < pool->n_slots; i++) {
                const RegistryRecord *raw = record(p, i);
                Slot *s = &pool->slots[i];
                if (!same_pool && raw && (raw->state == SLOT_FREE || raw->state == SLOT_RESERVED) && unsettled(p, s)) {
                        /* Held back for a check of a record of another pool: only a live
                         * region of ours keeps the slot out. */
                        if (!restore_from_census(p, s, raw))
                                settle_free_record(p, s, raw);
                        continue;
                }
                if (restore_slot(p, s, same_pool ? raw : NULL, &reservations))
                        restored++;
        }
        if (p->rebuild)
                rebuild_from_processes(p);
        settle_unrecorded(p);
        g_clear_pointer(&p->checked, g_hash_table_destroy);   /* the leases' holders have copies of the pidfds */
        (void) fd_store_close_unexplained(p->store);
        if (reg->present)
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_TAKEN_OVER, .slot = -1 },
                          "Took over from the last rma-brokerd: %u lease(s) checked, %u reservation(s) restored, %u of "
                          "%u RMAs leased now", restored, reservations, pool_count(pool, SLOT_LEASED), pool->n_slots);
        p->broker = NULL;
        p->recycler = NULL;
        p->leases = NULL;
        return 0;
}
