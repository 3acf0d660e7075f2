/* Re-adoption after a restart: registry + fd store + running processes -> the pool. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adopt.h"
#include "cleanup.h"
#include "domain-cgroup.h"
#include "lease.h"
#include "log.h"
#include "manager.h"
#include "proc-index.h"
#include "restore.h"
#include "rma-util.h"

struct RestorePlan {
        RegistryContents *registry;
        bool trusted;               /* header valid, for this backend and size: records apply */
        bool rebuild;               /* the registry was there but not all of it is readable */
        FdStore *store;             /* borrowed */
        const BrokerConfig *config; /* borrowed */
        ProcIndex *procs;           /* who holds what, read from /proc once, when first asked */
};

int restore_plan_new(const BrokerConfig *config, FdStore *store, RestorePlan **ret) {
        RestorePlan *p = g_new0(RestorePlan, 1);

        p->store = store;
        p->config = config;
        (void) registry_load(config->runtime_dir, &p->registry);
        if (p->registry->other_boot)
                log_info("Lease registry: %s; starting afresh", p->registry->problem);
        else if (p->registry->problem)
                log_warning("Lease registry: %s; the leases are rebuilt from the running processes instead",
                            p->registry->problem);
        /* From another boot, nothing of it lives on: a fresh start, nothing to rebuild. */
        p->rebuild = p->registry->present && !p->registry->other_boot &&
                     (!p->registry->header_valid || p->registry->n_corrupt > 0);
        *ret = p;
        return 0;
}

RestorePlan *restore_plan_free(RestorePlan *p) {
        if (!p)
                return NULL;
        registry_contents_free(p->registry);
        proc_index_free(p->procs);
        g_free(p);
        return NULL;
}

static const RegistryRecord *record(const RestorePlan *p, unsigned i) {
        if (!p->registry->header_valid || i >= p->registry->count)
                return NULL;
        return &p->registry->records[i];
}

static bool hold_back(unsigned i, void *userdata) {
        RestorePlan *p = userdata;
        const RegistryRecord *r = record(p, i);

        if (fd_store_has_region(p->store, i))
                return true;
        if (p->rebuild && (!r || !r->present))
                return true;   /* unknown: maybe a lease that the processes will tell */
        return r && r->present && (r->state == SLOT_LEASED || r->state == SLOT_HELD_ELSEWHERE);
}

BrokerTakeover restore_plan_takeover(RestorePlan *p) {
        unsigned keep = 0;

        /* Count=auto keeps every slot that a running QEMU (or an old region) may hold:
         * those regions are not in the host's pool now. */
        for (unsigned i = 0; p->registry->header_valid && i < p->registry->count; i++)
                if (p->registry->records[i].present &&
                    (p->registry->records[i].state == SLOT_LEASED ||
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

/* At most one pass over /proc per restart, whatever the number of slots. */
static const ProcIndex *procs(RestorePlan *p) {
        if (!p->procs)
                p->procs = proc_index_new(getpid());
        return p->procs;
}

/* pid (any process but us when 0) with an fd on the inode, or a mapping of it. */
static const ProcHolder *find_holder(RestorePlan *p, uint64_t dev, uint64_t ino, pid_t pid) {
        return ino == 0 ? NULL : proc_index_find(procs(p), dev, ino, pid);
}

/* A slot some process holds in a way we cannot watch: out of the pool, said loudly. */
static void pin(Manager *m, Slot *s) {
        if (s->state == SLOT_SCRUBBING)
                pool_region_owed(m->broker->pool, s, 0);
        s->pinned = true;
}

typedef enum OldRegion {
        OLD_REGION_HELD,      /* *ret_fd: a reference to it, from the fd store or by its handle */
        OLD_REGION_GONE,      /* proven gone: no process, no mapping, no fd in flight holds it */
        OLD_REGION_UNKNOWN,   /* no reference and no proof (hugetlb without the fd store, kvm) */
} OldRegion;

/* What became of a region the last broker recorded for slot i. The fd store's copy
 * counts only when its inode is the recorded one; a handle reopens the very inode while
 * anything at all keeps it alive, and answers ESTALE once nothing does. */
static OldRegion old_region_get(RestorePlan *p, Manager *m, unsigned i, uint64_t dev, uint64_t ino,
                                const RegionHandle *handle, int *ret_fd, const char **ret_how) {
        int stored = fd_store_peek_region(p->store, i), r;
        struct stat st;

        if (stored >= 0 && ino != 0 && fstat(stored, &st) == 0 && (uint64_t) st.st_dev == dev &&
            (uint64_t) st.st_ino == ino) {
                *ret_fd = fd_store_take_region(p->store, i);
                *ret_how = "region from the fd store";
                return OLD_REGION_HELD;
        }
        if (ino == 0)
                return OLD_REGION_GONE;   /* no region was left to anyone */
        r = backend_reopen_region(m->broker->backend, handle, ret_fd);
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
static int watch_holder(RestorePlan *p, Manager *m, Slot *s, pid_t pid) {
        const ProcHolder *h = find_holder(p, s->old_region_dev, s->old_region_ino, pid);
        int fd = -EBADF, r;

        if (!h)
                return -ENOENT;
        r = open_held_region(h, s->old_region_dev, s->old_region_ino, &fd);
        if (r < 0)
                return r;
        log_info("RMA slot %u: its old region is still held (pid %d); held-elsewhere until it is let go", s->index,
                 (int) h->pid);
        recycler_lease_ended(m->recycler, s, fd);
        return 0;
}

/* No reference to the old region and no proof that it is gone. kvm: the kernel's own pool
 * is the bound (a refill succeeds only once some RMA is back). Else a holder found by
 * inode is watched; with none found, a holder we cannot see (an fd in flight, a process
 * we may not inspect) may still have it, so the slot stays held-elsewhere until an admin
 * who knows better frees it. */
static void settle_unknown(RestorePlan *p, Manager *m, Slot *s) {
        if (!m->broker->backend->ops->release_is_watchable) {
                recycler_refill_held_back(m->recycler, s);
                return;
        }
        if (watch_holder(p, m, s, 0) >= 0)
                return;
        log_error("RMA slot %u: its old region (inode %llu) cannot be proven gone: the %s backend cannot reopen it, "
                  "and a holder rma-brokerd cannot see (an fd in flight, a process it may not inspect) may keep it. "
                  "The slot stays held-elsewhere. Once no process holds that region, free the slot with "
                  "'rmactl forget-region %u' (run rma-brokerd under systemd with its fd store to avoid this)",
                  s->index, (unsigned long long) s->old_region_ino, m->broker->backend->ops->name, s->index);
        pin(m, s);
}

static bool same_inode(int fd, uint64_t dev, uint64_t ino) {
        struct stat st;

        return fstat(fd, &st) == 0 && (uint64_t) st.st_dev == dev && (uint64_t) st.st_ino == ino;
}

/* The slot's old region, which no lease holds any more: free once it is gone. */
static void settle_old_region(RestorePlan *p, Manager *m, Slot *s, uint64_t dev, uint64_t ino,
                              const RegionHandle *handle) {
        const char *how = NULL;
        int fd = -EBADF;
        OldRegion old = old_region_get(p, m, s->index, dev, ino, handle, &fd, &how);

        /* Recorded again, so that a second restart still knows which region to wait for. */
        s->old_region_dev = dev;
        s->old_region_ino = ino;
        s->old_region_handle = *handle;
        switch (old) {
        case OLD_REGION_HELD:
                /* Watched, then our reference closed: free at once if ours was the last. */
                log_info("RMA slot %u: its old region still exists (%s); the slot is free once no process holds it",
                         s->index, how);
                recycler_lease_ended(m->recycler, s, fd);
                return;
        case OLD_REGION_GONE:
                recycler_refill_held_back(m->recycler, s);
                return;
        case OLD_REGION_UNKNOWN:
                settle_unknown(p, m, s);
                return;
        }
}

/* The fd store's region for slot i is a free one: the registry says the slot was free
 * (or reserved) with that very region. */
static bool stored_is_free_region(FdStore *store, unsigned i, const RegistryRecord *rec) {
        struct stat st;
        int fd = fd_store_peek_region(store, i);

        return rec && rec->present && (rec->state == SLOT_FREE || rec->state == SLOT_RESERVED) && fd >= 0 &&
               fstat(fd, &st) == 0 && (uint64_t) st.st_ino == rec->region_ino && (uint64_t) st.st_dev == rec->region_dev;
}

static int adopt_lease(Manager *m, Slot *s, const char *uuid, const char *domain, const char *tenant, uid_t by,
                       pid_t pid, uint64_t start, int pidfd, int region_fd, const char *how) {
        Lease *l = NULL;
        int r;

        r = backend_adopt_region(m->broker->backend, region_fd);
        if (r >= 0)
                r = pool_restore_lease(m->broker->pool, s, uuid, domain, tenant, by, pid, start, region_fd);
        if (r < 0) {
                /* The process runs and holds a region: its slot is never handed out. */
                if (s->state == SLOT_SCRUBBING)
                        safe_close(region_fd);
                safe_close(pidfd);
                pin(m, s);
                return log_error_errno(r, "RMA slot %u: cannot restore the lease of domain %s (pid %d): %m; the slot "
                                       "stays held-elsewhere until rma-brokerd restarts", s->index, domain, (int) pid);
        }
        r = lease_new(m, s, pid, pidfd, &l);
        if (r < 0)
                return log_error_errno(r, "RMA slot %u: cannot watch pid %d: %m", s->index, (int) pid);
        s->lease = l;
        log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_LEASED, .slot = (int) s->index, .uuid = uuid,
                                           .domain = domain, .tenant = tenant, .pid = (int) pid, .result = "readopted" },
                  "RMA slot %u: re-adopted the lease of domain %s (%s), tenant %s, pid %d (%s)", s->index, domain,
                  uuid, tenant, (int) pid, how);
        return 0;
}

/* The effective uid of pid, from /proc/PID/status (/proc/PID itself is root's for a
 * process that is not dumpable). */
static int proc_effective_uid(pid_t pid, uid_t *ret) {
        g_autofree char *path = g_strdup_printf("/proc/%d/status", (int) pid), *text = NULL;
        const char *line;
        unsigned real, effective;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return -ESRCH;
        line = strstr(text, "\nUid:");
        if (!line || sscanf(line + 5, "%u %u", &real, &effective) != 2)
                return -EIO;
        *ret = (uid_t) effective;
        return 0;
}

/* pid, if it is still the process that started at *start (0: read it now) and it would
 * pass Claim's checks: a QemuUsers uid and (CheckCgroup=yes) the domain's libvirt cgroup.
 * Names in /proc are anyone's to choose; these are not. 0 and *ret_pidfd, or <0 and *why. */
static int trusted_holder(Manager *m, pid_t pid, uint64_t *start, const char *domain, int *ret_pidfd, char **why) {
        _cleanup_close_ int pidfd = -EBADF;
        g_autofree char *cgroup_why = NULL;
        uid_t uid;
        int k;

        if ((*start == 0 && proc_start_time(pid, start) < 0) || pidfd_open_checked(pid, *start, &pidfd) < 0) {
                *why = g_strdup("it is gone");
                return -ESRCH;
        }
        if (proc_effective_uid(pid, &uid) < 0 || !broker_config_uid_may_claim(m->config, uid)) {
                *why = g_strdup("it does not run as a QemuUsers account");
                return -EPERM;
        }
        if (m->config->check_cgroup) {
                k = domain_cgroup_check_pid(pid, domain, &cgroup_why);
                if (k <= 0) {
                        *why = g_strdup_printf("it is not in the domain's cgroup (%s)",
                                               cgroup_why ? cgroup_why : "cannot read /proc");
                        return -EPERM;
                }
        }
        /* The pidfd pins the process the checks were about: it must still be alive. */
        if (!pidfd_is_alive(pidfd)) {
                *why = g_strdup("it is gone");
                return -ESRCH;
        }
        *ret_pidfd = TAKE_FD(pidfd);
        return 0;
}

/* A recorded lease: its QEMU still runs and passes Claim's checks (re-adopt), or the lease
 * ended while the broker was down and the old region is settled like any ended lease's.
 * With a reference to the region of its own (fd store, handle), the broker re-adopts a
 * live, trusted claimant whatever it did with its fd meanwhile: its lease ends when it
 * exits, and the region is then watched like any other (as without a restart). Without
 * one, the claimant must still have the region's fd for the broker to take a copy. */
static void restore_lease(RestorePlan *p, Manager *m, Slot *s, const RegistryRecord *rec) {
        _cleanup_close_ int pidfd = -EBADF;
        g_autofree char *why = NULL;
        uint64_t start = rec->pid_start;
        const char *how = NULL;
        const ProcHolder *h = NULL;
        int fd = -EBADF, r;

        r = trusted_holder(m, rec->pid, &start, rec->domain, &pidfd, &why);
        if (r >= 0 && old_region_get(p, m, s->index, rec->region_dev, rec->region_ino, &rec->region_handle, &fd,
                                     &how) == OLD_REGION_HELD) {
                (void) adopt_lease(m, s, rec->uuid, rec->domain, rec->tenant, rec->reserved_by, rec->pid, start,
                                   TAKE_FD(pidfd), fd, how);
                return;
        }
        if (r >= 0 && !(h = find_holder(p, rec->region_dev, rec->region_ino, rec->pid))) {
                why = g_strdup("it holds the region no more (passed on, or the claim never completed)");
                r = -ESRCH;
        }
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
        if (r < 0) {
                settle_old_region(p, m, s, rec->region_dev, rec->region_ino, &rec->region_handle);
                return;
        }
        /* Its fd, if it still has one (a mapping alone cannot be taken), and only if it is
         * still the recorded region: the process may have put another file at that number. */
        r = h->fdnum >= 0 ? pidfd_take_fd(pidfd, h->fdnum, &fd) : -EBADF;
        if (r >= 0 && !same_inode(fd, rec->region_dev, rec->region_ino)) {
                fd = safe_close(fd);
                r = -ESTALE;
        }
        if (r < 0) {
                /* It runs and holds a region we cannot take: never hand its slot out.
                 * Watch the region where it is reachable, else keep the slot pinned. */
                log_error_errno(r, "RMA slot %u: domain %s (pid %d) still runs, but its region cannot be taken back "
                                "(%m; rma-brokerd needs CAP_SYS_PTRACE); its lease is lost and the slot stays "
                                "held-elsewhere until the region is let go", s->index, rec->domain, (int) rec->pid);
                s->old_region_dev = rec->region_dev;
                s->old_region_ino = rec->region_ino;
                s->old_region_handle = rec->region_handle;
                if (watch_holder(p, m, s, rec->pid) < 0)
                        pin(m, s);
                return;
        }
        (void) adopt_lease(m, s, rec->uuid, rec->domain, rec->tenant, rec->reserved_by, rec->pid, start,
                           TAKE_FD(pidfd), fd, "region taken back from the process with pidfd_getfd");
}

/* -uuid and -name of a QEMU command line. */
static bool qemu_identity(pid_t pid, char uuid[RMA_UUID_STRING_LEN + 1], char **ret_domain) {
        g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int) pid), *data = NULL;
        const char *raw_uuid = NULL, *name = NULL;
        gsize len = 0;

        if (!g_file_get_contents(path, &data, &len, NULL))
                return false;
        for (const char *a = data; a < data + len; a += strlen(a) + 1) {
                const char *next = a + strlen(a) + 1;
                if (next >= data + len)
                        break;
                if (g_str_equal(a, "-uuid"))
                        raw_uuid = next;
                else if (g_str_equal(a, "-name"))
                        name = next;
        }
        if (!raw_uuid || rma_uuid_canonicalize(raw_uuid, uuid) < 0)
                return false;
        if (name && g_str_has_prefix(name, "guest="))
                name += 6;
        *ret_domain = name ? g_strndup(name, strcspn(name, ",")) : g_strdup(uuid);
        return true;
}

/* A slot whose record is lost: held back, its region neither settled nor leased yet. */
static bool slot_unknown(RestorePlan *p, Manager *m, unsigned i) {
        const RegistryRecord *r = record(p, i);
        const Slot *s = &m->broker->pool->slots[i];

        return (!r || !r->present) && s->state == SLOT_SCRUBBING && s->region_fd < 0 && !recycler_owns(m->recycler, s);
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
static int lost_slot_of_region(RestorePlan *p, Manager *m, GHashTable *stored_by_inode, int fd) {
        g_autofree char *key = NULL;
        struct stat st;
        gpointer slot;
        int k;

        if (fstat(fd, &st) < 0)
                return -1;
        key = inode_key(st.st_dev, st.st_ino);
        if (g_hash_table_lookup_extended(stored_by_inode, key, NULL, &slot))
                k = GPOINTER_TO_INT(slot);
        else if ((k = backend_region_mark(fd)) < 0)
                return -1;
        if ((unsigned) k >= m->broker->pool->n_slots || !slot_unknown(p, m, (unsigned) k) ||
            backend_adopt_region(m->broker->backend, fd) < 0)
                return -1;
        return k;
}

/* Lost records: every QEMU that passes Claim's checks (uid, cgroup, start time) and holds
 * a region proven ours gets its lease back on that region's slot. From the one index of
 * /proc: linear in processes plus slots. */
static void rebuild_from_processes(RestorePlan *p, Manager *m) {
        g_autoptr(GHashTable) stored_by_inode = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        const ProcIndex *x = procs(p);
        Pool *pool = m->broker->pool;
        unsigned found = 0;
        pid_t done = 0;   /* the process last looked at: holders are grouped by pid */

        for (unsigned i = 0; i < pool->n_slots; i++) {
                struct stat st;
                int fd = fd_store_peek_region(p->store, i);
                if (fd >= 0 && fstat(fd, &st) == 0)
                        g_hash_table_insert(stored_by_inode, inode_key(st.st_dev, st.st_ino), GINT_TO_POINTER(i));
        }
        for (guint i = 0; i < x->holders->len; i++) {
                const ProcHolder *h = &g_array_index(x->holders, ProcHolder, i);
                char uuid[RMA_UUID_STRING_LEN + 1];
                g_autofree char *domain = NULL, *why = NULL;
                _cleanup_close_ int pidfd = -EBADF;
                const PolicyTenant *t;
                uint64_t start = 0;
                int fd = -EBADF, k = -1;
                uid_t uid;

                if (h->pid == done || h->fdnum < 0)
                        continue;
                done = h->pid;
                if (proc_effective_uid(h->pid, &uid) < 0 || !broker_config_uid_may_claim(m->config, uid) ||
                    !qemu_identity(h->pid, uuid, &domain) || pool_find(pool, uuid))
                        continue;
                if (trusted_holder(m, h->pid, &start, domain, &pidfd, &why) < 0) {
                        log_warning("Not rebuilding a lease for pid %d (domain %s): %s", (int) h->pid, domain, why);
                        continue;
                }
                /* This process's region fds, in turn: the first one proven ours. */
                for (guint j = i; j < x->holders->len && k < 0; j++) {
                        const ProcHolder *o = &g_array_index(x->holders, ProcHolder, j);
                        if (o->pid != h->pid)
                                break;
                        if (o->fdnum < 0 || pidfd_take_fd(pidfd, o->fdnum, &fd) < 0)
                                continue;
                        k = lost_slot_of_region(p, m, stored_by_inode, fd);
                        if (k < 0)
                                fd = safe_close(fd);
                }
                if (k < 0)
                        continue;
                /* The process's fd is the region; the slot's stored copy, if it is that very
                 * region, is not needed (another one stays for the final settling). */
                if (fd_store_peek_region(p->store, (unsigned) k) >= 0 &&
                    same_region(fd_store_peek_region(p->store, (unsigned) k), fd))
                        safe_close(fd_store_take_region(p->store, (unsigned) k));
                t = policy_tenant_for_domain(m->broker->policy, domain, NULL, NULL);
                if (adopt_lease(m, &pool->slots[k], uuid, domain, t ? t->name : POLICY_IMPLICIT_TENANT, 0, h->pid,
                                start, TAKE_FD(pidfd), fd, "rebuilt from the running process") >= 0)
                        found++;
        }
        log_warning("Lease registry rebuilt from the running processes: %u lease(s) found", found);
}

int restore_apply(RestorePlan *p, Manager *m) {
        Pool *pool = m->broker->pool;
        const RegistryContents *reg = p->registry;
        bool same_pool = reg->header_valid && g_str_equal(reg->backend, m->broker->backend->ops->name) &&
                         reg->region_size == m->broker->backend->region_size;
        unsigned restored = 0, reservations = 0;

        if (reg->header_valid && !same_pool)
                log_warning("Lease registry: the last broker ran a pool of %s regions of %llu bytes, this one %s of "
                            "%llu; leases of the old pool cannot be re-adopted into it", reg->backend,
                            (unsigned long long) reg->region_size, m->broker->backend->ops->name,
                            (unsigned long long) m->broker->backend->region_size);
        for (unsigned i = 0; i < pool->n_slots; i++) {
                Slot *s = &pool->slots[i];
                const RegistryRecord *rec = same_pool ? record(p, i) : NULL;
                bool held_back = s->state == SLOT_SCRUBBING && s->region_fd < 0 && !recycler_owns(m->recycler, s);

                if (rec && rec->present && rec->state == SLOT_LEASED && held_back) {
                        restore_lease(p, m, s, rec);
                        restored++;
                } else if (rec && rec->present && rec->state == SLOT_HELD_ELSEWHERE && held_back && rec->region_unknown)
                        settle_unknown(p, m, s);   /* pinned before: still nothing proves it gone */
                else if (rec && rec->present && rec->state == SLOT_HELD_ELSEWHERE && held_back)
                        settle_old_region(p, m, s, rec->region_dev, rec->region_ino, &rec->region_handle);
                else if (held_back && fd_store_has_region(p->store, i) && stored_is_free_region(p->store, i, rec)) {
                        /* A free region, as the registry says and the inode confirms. */
                        int fd = fd_store_take_region(p->store, i);
                        if (backend_adopt_region(m->broker->backend, fd) >= 0)
                                pool_region_ready(pool, s, fd);
                        else {
                                safe_close(fd);
                                recycler_refill_held_back(m->recycler, s);
                        }
                }
                if (rec && rec->present && rec->state == SLOT_RESERVED) {
                        uint64_t expires = rec->expires_monotonic;
                        if (expires == 0)
                                log_info("RMA slot %u: the reservation of domain %s expired while rma-brokerd was down",
                                         i, rec->domain);
                        else if (pool_restore_reservation(pool, s, rec->uuid, rec->domain, rec->tenant,
                                                          rec->reserved_by, expires) >= 0)
                                reservations++;
                }
        }
        if (p->rebuild)
                rebuild_from_processes(p, m);
        /* What is still held back lost its record and no trusted process holds it. A
         * stored region may be a lease the rebuild did not find: it goes the way of an
         * ended lease (watched until gone, then refilled). Without one, nothing proves
         * that no process holds the slot's old region. */
        for (unsigned i = 0; i < pool->n_slots; i++) {
                Slot *s = &pool->slots[i];
                if (s->state != SLOT_SCRUBBING || s->region_fd >= 0 || recycler_owns(m->recycler, s))
                        continue;
                if (fd_store_has_region(p->store, i)) {
                        /* Recorded as the old region, so that a second restart still waits for it. */
                        int fd = fd_store_take_region(p->store, i);
                        struct stat st;
                        if (fstat(fd, &st) == 0) {
                                s->old_region_dev = st.st_dev;
                                s->old_region_ino = st.st_ino;
                        }
                        (void) region_handle_get(fd, &s->old_region_handle);
                        recycler_lease_ended(m->recycler, s, fd);
                } else
                        settle_unknown(p, m, s);
        }
        (void) fd_store_close_unexplained(p->store);
        if (reg->present)
                log_info("Took over from the last rma-brokerd: %u lease(s) checked, %u reservation(s) restored, %u of "
                         "%u RMAs leased now", restored, reservations, pool_count(pool, SLOT_LEASED), pool->n_slots);
        manager_pool_changed(m);
        return 0;
}
