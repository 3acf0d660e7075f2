/* Re-adoption after a restart: registry + fd store + running processes -> the pool. */
#include <dirent.h>
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
#include "restore.h"
#include "rma-util.h"

struct RestorePlan {
        RegistryContents *registry;
        bool trusted;               /* header valid, for this backend and size: records apply */
        bool rebuild;               /* the registry was there but not all of it is readable */
        FdStore *store;             /* borrowed */
        const BrokerConfig *config; /* borrowed */
};

int restore_plan_new(const BrokerConfig *config, FdStore *store, RestorePlan **ret) {
        RestorePlan *p = g_new0(RestorePlan, 1);

        p->store = store;
        p->config = config;
        (void) registry_load(config->runtime_dir, &p->registry);
        if (p->registry->problem)
                log_warning("Lease registry: %s; the leases are rebuilt from the running processes instead",
                            p->registry->problem);
        p->rebuild = p->registry->present && (!p->registry->header_valid || p->registry->n_corrupt > 0);
        *ret = p;
        return 0;
}

RestorePlan *restore_plan_free(RestorePlan *p) {
        if (!p)
                return NULL;
        registry_contents_free(p->registry);
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
                     (p->registry->records[i].state == SLOT_HELD_ELSEWHERE && p->registry->records[i].region_ino != 0)))
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

/* Some process other than us with an fd on the inode, or a mapping of it: a path that
 * reaches the file in *ret_path. */
static bool find_holder(uint64_t dev, uint64_t ino, char **ret_path) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        bool found = false;

        if (!d)
                return false;
        while (!found && (de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                int fdnum;

                if (*end || pid <= 0 || pid == getpid())
                        continue;
                if (proc_find_fd((pid_t) pid, dev, ino, &fdnum) == 0) {
                        *ret_path = g_strdup_printf("/proc/%ld/fd/%d", pid, fdnum);
                        found = true;
                } else if (proc_find_mapping((pid_t) pid, dev, ino, ret_path) == 0)
                        found = true;
        }
        closedir(d);
        return found;
}

/* The slot's old region, known by inode: still held somewhere (watch it, held-elsewhere)
 * or gone (refill). kvm regions are anonymous inodes: the kernel decides by itself. */
static void settle_old_region(Manager *m, Slot *s, uint64_t dev, uint64_t ino) {
        g_autofree char *path = NULL;

        /* Recorded again, so that a second restart still knows which region to wait for. */
        s->old_region_dev = dev;
        s->old_region_ino = ino;
        if (m->broker->backend->ops->release_is_watchable && ino != 0 && find_holder(dev, ino, &path) &&
            recycler_watch_held(m->recycler, s, path) >= 0) {
                log_info("RMA slot %u: its old region is still held (%s); held-elsewhere until it is let go", s->index,
                         path);
                return;
        }
        recycler_refill_held_back(m->recycler, s);
}

/* A slot some process holds in a way we cannot watch: out of the pool, said loudly. */
static void pin(Manager *m, Slot *s) {
        if (s->state == SLOT_SCRUBBING)
                pool_region_owed(m->broker->pool, s, 0);
        s->pinned = true;
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

/* A recorded lease: its QEMU still runs (re-adopt) or died while we were down. */
static bool process_holds(pid_t pid, uint64_t dev, uint64_t ino) {
        g_autofree char *mapping = NULL;
        int fdnum;

        return proc_find_fd(pid, dev, ino, &fdnum) >= 0 || proc_find_mapping(pid, dev, ino, &mapping) >= 0;
}

static void restore_lease(RestorePlan *p, Manager *m, Slot *s, const RegistryRecord *rec) {
        _cleanup_close_ int pidfd = -EBADF;
        int stored = fd_store_take_region(p->store, s->index), fd = -EBADF, fdnum = -1, r;

        r = pidfd_open_checked(rec->pid, rec->pid_start, &pidfd);
        /* No start time (the broker died right after sending the fd, before it recorded
         * it): the process is ours only if it holds the region. */
        if (r >= 0 && rec->pid_start == 0 && !process_holds(rec->pid, rec->region_dev, rec->region_ino))
                r = -ESRCH;
        if (r < 0) {
                log_event(LOG_INFO, &(LogEvent) { .message_id = RMA_MESSAGE_LEASE_ENDED, .slot = (int) s->index,
                                                   .uuid = rec->uuid, .domain = rec->domain, .tenant = rec->tenant,
                                                   .pid = (int) rec->pid, .result = "exited-while-down" },
                          "RMA slot %u: the QEMU of domain %s (pid %d) exited while rma-brokerd was down; its region "
                          "is scrubbed and the slot freed", s->index, rec->domain, (int) rec->pid);
                if (stored >= 0)
                        recycler_lease_ended(m->recycler, s, stored);
                else
                        settle_old_region(m, s, rec->region_dev, rec->region_ino);
                return;
        }
        if (stored >= 0) {
                (void) adopt_lease(m, s, rec->uuid, rec->domain, rec->tenant, rec->reserved_by, rec->pid,
                                   rec->pid_start, TAKE_FD(pidfd), stored, "region from the fd store");
                return;
        }
        r = proc_find_fd(rec->pid, rec->region_dev, rec->region_ino, &fdnum);
        if (r == -ENOENT) {
                g_autofree char *mapping = NULL;
                if (proc_find_mapping(rec->pid, rec->region_dev, rec->region_ino, &mapping) == -ENOENT) {
                        /* The broker died between recording the lease and sending the fd:
                         * the claim failed on the claimer's side, and the region is ours. */
                        log_info("RMA slot %u: the claim of domain %s by pid %d never completed (rma-brokerd "
                                 "stopped before sending the region); the slot is freed", s->index, rec->domain,
                                 (int) rec->pid);
                        recycler_refill_held_back(m->recycler, s);
                        return;
                }
        }
        if (r >= 0)
                r = pidfd_take_fd(pidfd, fdnum, &fd);
        if (r < 0) {
                /* It runs and holds a region we cannot take: never hand its slot out.
                 * Watch the region where it is reachable, else keep the slot pinned. */
                g_autofree char *path = fdnum >= 0 ? g_strdup_printf("/proc/%d/fd/%d", (int) rec->pid, fdnum) : NULL;
                log_error_errno(r, "RMA slot %u: domain %s (pid %d) still runs, but its region cannot be taken back "
                                "(%m; rma-brokerd needs CAP_SYS_PTRACE); its lease is lost and the slot stays "
                                "held-elsewhere until the region is let go", s->index, rec->domain, (int) rec->pid);
                s->old_region_dev = rec->region_dev;
                s->old_region_ino = rec->region_ino;
                if (!path)
                        (void) proc_find_mapping(rec->pid, rec->region_dev, rec->region_ino, &path);
                if (!path || recycler_watch_held(m->recycler, s, path) < 0)
                        pin(m, s);
                return;
        }
        (void) adopt_lease(m, s, rec->uuid, rec->domain, rec->tenant, rec->reserved_by, rec->pid, rec->pid_start,
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

/* Is this fd link one of our regions? Its slot, or -1 for a kvm RMA (no slot in its name). */
static bool our_region_link(const char *link, int *ret_slot) {
        unsigned slot;

        if (g_str_equal(link, "anon_inode:kvm-rma")) {
                *ret_slot = -1;
                return true;
        }
        if (sscanf(link, "/memfd:rma-broker-slot-%u (deleted)", &slot) == 1) {
                *ret_slot = (int) slot;
                return true;
        }
        return false;
}

/* Only what could have claimed the region gets a lease back: a process of a QemuUsers
 * account, and (CheckCgroup=yes) in the domain's libvirt cgroup, as Claim requires.
 * Names in /proc are anyone's to choose. */
static bool may_hold_lease(Manager *m, pid_t pid, const char *domain) {
        g_autofree char *path = g_strdup_printf("/proc/%d", (int) pid), *why = NULL;
        struct stat st;

        if (stat(path, &st) < 0 || !broker_config_uid_may_claim(m->config, st.st_uid))
                return false;
        if (m->config->check_cgroup && domain_cgroup_check_pid(pid, domain, &why) < 0) {
                log_warning("Not rebuilding a lease for pid %d (domain %s): %s", (int) pid, domain, why);
                return false;
        }
        return true;
}

/* The registry cannot be trusted: every QEMU (a process with -uuid) that holds one of
 * our regions gets its lease back, on the slot its region names when it is free. */
static void rebuild_from_processes(RestorePlan *p, Manager *m) {
        Pool *pool = m->broker->pool;
        DIR *d = opendir("/proc");
        struct dirent *de;
        unsigned found = 0;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                g_autofree char *fddir = NULL;
                DIR *fds;
                struct dirent *fe;

                if (*end || pid <= 0 || pid == getpid())
                        continue;
                fddir = g_strdup_printf("/proc/%ld/fd", pid);
                fds = opendir(fddir);
                if (!fds)
                        continue;
                while ((fe = readdir(fds))) {
                        char link[128], uuid[RMA_UUID_STRING_LEN + 1];
                        g_autofree char *domain = NULL;
                        _cleanup_close_ int pidfd = -EBADF;
                        const PolicyTenant *t;
                        uint64_t start = 0;
                        ssize_t n = readlinkat(dirfd(fds), fe->d_name, link, sizeof(link) - 1);
                        int slot = -1, fd = -EBADF;
                        Slot *s = NULL;

                        if (n <= 0)
                                continue;
                        link[n] = '\0';
                        if (!our_region_link(link, &slot) || !qemu_identity((pid_t) pid, uuid, &domain) ||
                            pool_find(pool, uuid) || !may_hold_lease(m, (pid_t) pid, domain))
                                continue;
                        if (slot >= 0 && (unsigned) slot < pool->n_slots && pool->slots[slot].state == SLOT_SCRUBBING &&
                            pool->slots[slot].region_fd < 0 && !recycler_owns(m->recycler, &pool->slots[slot]))
                                s = &pool->slots[slot];
                        for (unsigned i = 0; !s && i < pool->n_slots; i++)
                                if (pool->slots[i].state == SLOT_SCRUBBING && pool->slots[i].region_fd < 0 &&
                                    !recycler_owns(m->recycler, &pool->slots[i]))
                                        s = &pool->slots[i];
                        if (!s || proc_start_time((pid_t) pid, &start) < 0 ||
                            pidfd_open_checked((pid_t) pid, start, &pidfd) < 0 ||
                            pidfd_take_fd(pidfd, atoi(fe->d_name), &fd) < 0)
                                continue;
                        /* The process's fd is the region; a stored copy of the slot's is not needed. */
                        safe_close(fd_store_take_region(p->store, s->index));
                        t = policy_tenant_for_domain(m->broker->policy, domain, NULL, NULL);
                        if (adopt_lease(m, s, uuid, domain, t ? t->name : POLICY_IMPLICIT_TENANT, 0, (pid_t) pid, start,
                                        TAKE_FD(pidfd), fd, "rebuilt from the running process") >= 0)
                                found++;
                        break;
                }
                closedir(fds);
        }
        closedir(d);
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
                } else if (rec && rec->present && rec->state == SLOT_HELD_ELSEWHERE && held_back)
                        settle_old_region(m, s, rec->region_dev, rec->region_ino);
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
        /* What is still held back has no lease to come back: it gets a fresh region. A
         * stored region that nothing vouches for may be a lease the rebuild did not find:
         * it goes the way of an ended lease (watched until gone, then refilled). */
        for (unsigned i = 0; i < pool->n_slots; i++) {
                Slot *s = &pool->slots[i];
                if (s->state != SLOT_SCRUBBING || s->region_fd >= 0 || recycler_owns(m->recycler, s))
                        continue;
                if (fd_store_has_region(p->store, i))
                        recycler_lease_ended(m->recycler, s, fd_store_take_region(p->store, i));
                else
                        recycler_refill_held_back(m->recycler, s);
        }
        (void) fd_store_close_unexplained(p->store);
        if (reg->present)
                log_info("Took over from the last rma-brokerd: %u lease(s) checked, %u reservation(s) restored, %u of "
                         "%u RMAs leased now", restored, reservations, pool_count(pool, SLOT_LEASED), pool->n_slots);
        manager_pool_changed(m);
        return 0;
}
