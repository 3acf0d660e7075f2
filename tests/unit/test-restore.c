/* Unit tests of the restore of a restart (daemon/restart/restore.c), driven as
 * manager.c drives it: the last broker writes its lease registry through the registry
 * code and goes away; the next one reads it (restore_plan_new), makes its pool with the
 * slots to hold back (restore_plan_takeover, broker_new) and puts everything back
 * (restore_apply). The QEMU of a lease is a child of the test that keeps the region fd.
 *
 * Without systemd (no fd store) a region the last broker left is found again by its
 * kernel handle (open_by_handle_at, CAP_DAC_READ_SEARCH) or, without that, in its holder's
 * fds (/proc, pidfd_getfd over a child of the same uid): the tests expect the way this
 * process can take. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-store.h"
#include "lease.h"
#include "process-identity.h"
#include "recycler.h"
#include "region-handle.h"
#include "registry.h"
#include "restore.h"
#include "rma-util.h"
#include "test-broker-fixture.h"

#define UUID_A "11111111-2222-3333-4444-555555555555"
#define UUID_B "22222222-2222-3333-4444-555555555555"
#define RECORD_SIZE 512   /* registry.c's: the header is the first record */

typedef struct RestoreFixture {
        Fixture base;            /* its broker: the last one, then the restarted one */
        Registry *registry;      /* the last broker's */
        BrokerConfig *config;    /* read by the plan; the restarted broker's once it exists */
        sd_event *event;
        FdStore *store;
        RestorePlan *plan;
        Recycler *recycler;
        Leases *leases;
        pid_t holder;            /* a QEMU: holds a region until holder_pipe is closed */
        int holder_pipe;
} RestoreFixture;

static void on_slot_changed(const Slot *s, void *userdata) {
        registry_write_slot(userdata, s);
}

static void restore_set_up(RestoreFixture *f, gconstpointer data) {
        BrokerConfig *config;
        Pool *pool;

        fixture_set_up(&f->base, data);
        config = f->base.broker->config;
        pool = f->base.broker->pool;
        /* The registry in the test's own directory, which the next broker reads. */
        g_free(config->runtime_dir);
        config->runtime_dir = g_strdup(f->base.dir);
        /* The holders are this test's children: they run as its uid, and Claim's checks
         * (QemuUsers, no cgroup check) pass for them as they would for a QEMU. */
        config->qemu_uids = g_renew(uid_t, config->qemu_uids, config->n_qemu_uids + 1);
        config->qemu_uids[config->n_qemu_uids++] = geteuid();
        g_assert_cmpint(registry_open(f->base.dir, pool, &f->registry), ==, 0);
        pool->slot_changed = on_slot_changed;
        pool->slot_changed_userdata = f->registry;
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        f->holder = 0;
        f->holder_pipe = -EBADF;
}

static void stop_holder(RestoreFixture *f) {
        f->holder_pipe = safe_close(f->holder_pipe);
        if (f->holder > 0)
                g_assert_cmpint(waitpid(f->holder, NULL, 0), ==, f->holder);
        f->holder = 0;
}

static void restore_tear_down(RestoreFixture *f, gconstpointer data) {
        stop_holder(f);
        f->plan = restore_plan_free(f->plan);
        g_clear_pointer(&f->config, broker_config_free);   /* after the plan, which borrows it */
        f->leases = leases_free(f->leases);
        f->recycler = recycler_free(f->recycler);
        f->store = fd_store_free(f->store);
        if (f->base.broker)
                f->base.broker->pool->slot_changed = NULL;
        f->registry = registry_free(f->registry);
        f->event = sd_event_unref(f->event);
        fixture_tear_down(&f->base, data);
}

/* A QEMU of the last broker: a child that keeps region_fd (-1: none) and nothing else of
 * ours, until stop_holder(). Its pid once it is set up (a restart reads its fd table), and
 * its start time in *ret_start. */
static pid_t start_holder(RestoreFixture *f, int region_fd, uint64_t *ret_start) {
        int p[2], ready[2];
        pid_t child;
        char c;

        g_assert_cmpint(f->holder, ==, 0);
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(ready, O_CLOEXEC), ==, 0);
        child = fork();
        g_assert_cmpint(child, >=, 0);
        if (child == 0) {
                /* Only what is async-signal-safe: the region at 3, the pipes at 4 and 5. */
                int region = region_fd >= 0 ? fcntl(region_fd, F_DUPFD, 100) : -1;
                int wait_fd = fcntl(p[0], F_DUPFD, 100), ready_fd = fcntl(ready[1], F_DUPFD, 100);

                if (wait_fd < 0 || ready_fd < 0 || (region_fd >= 0 && (region < 0 || dup2(region, 3) < 0)) ||
                    dup2(wait_fd, 4) < 0 || dup2(ready_fd, 5) < 0 || close_range(6, ~0U, 0) < 0)
                        _exit(1);
                if (region_fd < 0)
                        close(3);
                if (write(5, "r", 1) != 1)
                        _exit(1);
                close(5);
                (void) !read(4, &c, 1);
                _exit(0);
        }
        close(p[0]);
        close(ready[1]);
        f->holder = child;
        f->holder_pipe = p[1];
        g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
        close(ready[0]);
        g_assert_cmpint(proc_start_time(child, ret_start), ==, 0);
        return child;
}

static Slot *reserve(RestoreFixture *f, const char *uuid, const char *domain, const char *tenant) {
        Caller root = { .uid = 0, .gids_known = true, .cgroup_fd = -1, .pidfd = -1 };
        g_autofree char *message = NULL;
        Slot *s = NULL;

        if (broker_reserve(f->base.broker, &root, uuid, domain, tenant, rma_now_usec(CLOCK_MONOTONIC), &s, &message) !=
            BROKER_OK)
                g_error("Reserve %s refused: %s", domain, message);
        return s;
}

/* The last broker stops (its regions closed, its registry left as it is) and the next
 * one reads what it left. */
static int restart_plan(RestoreFixture *f) {
        BrokerConfig *config = g_steal_pointer(&f->base.broker->config);
        int r;

        f->base.broker->pool->slot_changed = NULL;
        f->registry = registry_free(f->registry);
        f->base.broker = broker_free(f->base.broker);
        g_assert_cmpint(fd_store_new(&f->store), ==, 0);
        r = restore_plan_new(config, f->store, &f->plan);
        if (r < 0) {
                broker_config_free(config);
                return r;
        }
        f->config = config;
        return 0;
}

/* The restarted broker's pool, with the slots the plan holds back; nothing put back yet. */
static Pool *restart_pool(RestoreFixture *f) {
        BrokerTakeover takeover = restore_plan_takeover(f->plan);

        g_assert_cmpint(broker_new(g_steal_pointer(&f->config), &takeover, &f->base.broker), ==, 0);
        g_assert_cmpint(recycler_new(f->event, f->base.broker->pool, &f->recycler), ==, 0);
        g_assert_cmpint(leases_new(f->event, f->base.broker, f->recycler, &f->leases), ==, 0);
        return f->base.broker->pool;
}

static void restart_apply(RestoreFixture *f) {
        g_assert_cmpint(restore_apply(f->plan, f->base.broker, f->recycler, f->leases), ==, 0);
}

/* May this process reopen a file by its handle (open_by_handle_at)? Then a restart proves
 * a region gone; else nothing does. */
static bool can_reopen_by_handle(void) {
        _cleanup_close_ int fd = memfd_create("probe", MFD_CLOEXEC), again = -EBADF;
        RegionHandle h;

        return fd >= 0 && region_handle_get(fd, &h) >= 0 && region_handle_open(fd, &h, &again) >= 0;
}

static void assert_same_inode(int fd, uint64_t ino) {
        struct stat st;

        g_assert_cmpint(fstat(fd, &st), ==, 0);
        g_assert_cmpuint(st.st_ino, ==, ino);
}

static const char tenant_policy[] = "[Tenant acme]\nDomains=acme-*\n";

/* The QEMU of a lease exited while no broker ran: its slot is not leased again, and its
 * old region, gone with it, is settled: refilled once proven gone. The reservation next
 * to it comes back as it was. */
static void test_lease_of_gone_process(RestoreFixture *f, gconstpointer data) {
        uint64_t start = 0;
        Pool *pool;
        pid_t pid;
        Slot *s;

        reserve(f, UUID_B, "acme-waiting", "");
        s = reserve(f, UUID_A, "acme-gone", "");
        g_assert_cmpuint(s->index, ==, 1);
        pid = start_holder(f, -1, &start);
        stop_holder(f);
        g_assert_cmpint(pool_lease(f->base.broker->pool, s, pid, start), ==, 0);

        g_assert_cmpint(restart_plan(f), ==, 0);
        pool = restart_pool(f);
        s = &pool->slots[1];
        /* Held back: not handed out before the restore decides. */
        g_assert_cmpint(s->state, ==, SLOT_SCRUBBING);
        g_assert_cmpint(s->region_fd, <, 0);
        restart_apply(f);
        g_assert_null(s->lease);
        g_assert_cmpint(s->state, !=, SLOT_LEASED);
        g_assert_null(pool_find(pool, UUID_A));
        g_assert_cmpuint(pool_count(pool, SLOT_LEASED), ==, 0);
        if (can_reopen_by_handle()) {
                /* The handle answers ESTALE: gone for sure, a fresh region. */
                PUMP_UNTIL(f->event, s->state == SLOT_FREE);
                g_assert_cmpint(s->region_fd, >=, 0);
                g_assert_false(s->pinned);
        } else {
                /* Nothing proves it gone and no holder shows: never handed out again. */
                g_assert_cmpint(s->state, ==, SLOT_HELD_ELSEWHERE);
                g_assert_true(s->pinned);
        }
        s = pool_find(pool, UUID_B);
        g_assert_nonnull(s);
        g_assert_cmpuint(s->index, ==, 0);
        g_assert_cmpint(s->state, ==, SLOT_RESERVED);
        g_assert_cmpstr(s->domain, ==, "acme-waiting");
        g_assert_cmpstr(s->tenant, ==, "acme");
        g_assert_cmpuint(s->expires_usec, >, 0);
}

/* The QEMU of a lease still runs and holds its region: the lease is re-adopted on its
 * slot as it was, and ends when that process exits. */
static void test_lease_of_live_process(RestoreFixture *f, gconstpointer data) {
        const char *domain = "acme-web 01";   /* escaped in the registry */
        uint64_t start = 0, ino;
        Pool *pool;
        pid_t pid;
        Slot *s;

        reserve(f, UUID_B, "acme-waiting", "");
        s = reserve(f, UUID_A, domain, "acme");
        g_assert_cmpuint(s->index, ==, 1);
        ino = s->region_ino;
        pid = start_holder(f, s->region_fd, &start);
        g_assert_cmpint(pool_lease(f->base.broker->pool, s, pid, start), ==, 0);
        if (!can_reopen_by_handle()) {
                /* The region then comes back from the holder's fd, by pidfd_getfd(). */
                _cleanup_close_ int pidfd = -EBADF, taken = -EBADF;
                if (pidfd_open_checked(pid, start, &pidfd) < 0 || pidfd_take_fd(pidfd, 3, &taken) < 0) {
                        g_test_skip("this process may neither reopen a file by its handle nor take a child's fd");
                        return;
                }
        }

        g_assert_cmpint(restart_plan(f), ==, 0);
        pool = restart_pool(f);
        s = &pool->slots[1];
        g_assert_cmpint(s->state, ==, SLOT_SCRUBBING);
        restart_apply(f);
        g_assert_cmpint(s->state, ==, SLOT_LEASED);
        g_assert_nonnull(s->lease);
        g_assert_true(pool_find(pool, UUID_A) == s);
        g_assert_cmpstr(s->uuid, ==, UUID_A);
        g_assert_cmpstr(s->domain, ==, domain);
        g_assert_cmpstr(s->tenant, ==, "acme");
        g_assert_cmpuint(s->reserved_by, ==, 0);
        g_assert_cmpint(s->pid, ==, pid);
        g_assert_cmpuint(s->pid_start, ==, start);
        /* The very region the QEMU maps, not a fresh one. */
        g_assert_cmpint(s->region_fd, >=, 0);
        assert_same_inode(s->region_fd, ino);
        g_assert_cmpuint(s->region_ino, ==, ino);
        g_assert_cmpuint(pool_count(pool, SLOT_LEASED), ==, 1);
        g_assert_cmpuint(pool_count(pool, SLOT_RESERVED), ==, 1);
        /* Watched like any lease: the holder's exit ends it, and the slot comes back. */
        stop_holder(f);
        PUMP_UNTIL(f->event, f->base.broker->stats.lease_ends[LEASE_END_PROCESS_EXITED] == 1);
        g_assert_null(s->lease);
        PUMP_UNTIL(f->event, s->state == SLOT_FREE);
        g_assert_null(pool_find(pool, UUID_A));
}

/* Slot 0 reserved for domain acme-1 and leased by a holder that keeps its region; the
 * lease records start + skew as the holder's start time (skew 1: another process). */
static Slot *leased_to_holder(RestoreFixture *f, uint64_t skew) {
        Slot *s = reserve(f, UUID_A, "acme-1", "");
        uint64_t start = 0;
        pid_t pid = start_holder(f, s->region_fd, &start);

        g_assert_cmpint(pool_lease(f->base.broker->pool, s, pid, start + skew), ==, 0);
        return s;
}

/* The recorded pid runs, but with another start time: another process, which got the pid
 * after the QEMU exited. Not its lease; the old region it happens to hold is watched, and
 * the slot comes back once it lets go. */
static void test_pid_reused(RestoreFixture *f, gconstpointer data) {
        Pool *pool;
        Slot *s;

        leased_to_holder(f, 1);

        g_assert_cmpint(restart_plan(f), ==, 0);
        pool = restart_pool(f);
        s = &pool->slots[0];
        restart_apply(f);
        g_assert_null(s->lease);
        g_assert_null(pool_find(pool, UUID_A));
        PUMP_UNTIL(f->event, s->state == SLOT_HELD_ELSEWHERE);
        g_assert_false(s->pinned);
        stop_holder(f);
        PUMP_UNTIL(f->event, s->state == SLOT_FREE);
}

static char *registry_path(RestoreFixture *f) {
        return g_build_filename(f->base.dir, REGISTRY_FILE_NAME, NULL);
}

/* A registry of a later format (a downgrade): the restart refuses to start and leaves the
 * file as it is, for the newer broker to read again. */
static void test_newer_format(RestoreFixture *f, gconstpointer data) {
        g_autofree char *path = registry_path(f), *before = NULL, *after = NULL;
        const size_t version_at = strlen(REGISTRY_MAGIC " v");
        gsize before_len = 0, after_len = 0;
        struct stat st_before, st_after;
        Slot *s = reserve(f, UUID_A, "acme-1", "");

        g_assert_cmpint(pool_lease(f->base.broker->pool, s, 1, 1), ==, 0);
        {
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
                g_assert_cmpint(fd, >=, 0);
                g_assert_cmpint(pwrite(fd, "2", 1, (off_t) version_at), ==, 1);
        }
        g_assert_true(g_file_get_contents(path, &before, &before_len, NULL));
        g_assert_true(g_str_has_prefix(before, REGISTRY_MAGIC " v2 backend=memfd "));
        g_assert_cmpint(stat(path, &st_before), ==, 0);

        g_assert_cmpint(restart_plan(f), ==, -EPROTONOSUPPORT);
        g_assert_null(f->plan);
        g_assert_true(g_file_get_contents(path, &after, &after_len, NULL));
        g_assert_cmpmem(before, before_len, after, after_len);
        g_assert_cmpint(stat(path, &st_after), ==, 0);
        g_assert_cmpuint(st_after.st_ino, ==, st_before.st_ino);
        g_assert_cmpint(st_after.st_mtim.tv_sec, ==, st_before.st_mtim.tv_sec);
        g_assert_cmpint(st_after.st_mtim.tv_nsec, ==, st_before.st_mtim.tv_nsec);
}

/* The registry's header as if another boot had written it: boot= changed, sealed again. */
static void rewrite_boot(RestoreFixture *f) {
        g_autofree char *path = registry_path(f), *boot_id = NULL;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
        char header[RECORD_SIZE + 1] = { 0 }, *boot, *sum;
        char seal[22];

        g_assert_true(g_file_get_contents("/proc/sys/kernel/random/boot_id", &boot_id, NULL, NULL));
        g_strstrip(boot_id);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(pread(fd, header, RECORD_SIZE, 0), ==, RECORD_SIZE);
        boot = strstr(header, " boot=");
        sum = strstr(header, " sum=");
        g_assert_nonnull(boot);
        g_assert_nonnull(sum);
        boot += strlen(" boot=");
        /* This boot's, before: the change below is all that differs. */
        g_assert_cmpmem(boot, (size_t) (sum - boot), boot_id, strlen(boot_id));
        boot[0] = boot[0] == 'a' ? 'b' : 'a';
        g_assert_cmpint(snprintf(seal, sizeof(seal), " sum=%016" G_GINT64_MODIFIER "x",
                                 rma_fnv1a(header, (size_t) (sum - header))), ==, 21);
        memcpy(sum, seal, 21);
        g_assert_cmpint(pwrite(fd, header, RECORD_SIZE, 0), ==, RECORD_SIZE);
}

static bool never_held_back(BrokerTakeover *t, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                if (t->hold_back(i, t->userdata))
                        return false;
        return true;
}

/* A registry of another boot: whatever it says, nothing of it lives on. Even a lease
 * whose process seems to run (a pid reused since) is not re-adopted: a fresh start. */
static void test_other_boot(RestoreFixture *f, gconstpointer data) {
        BrokerTakeover takeover;
        Pool *pool;

        leased_to_holder(f, 0);
        reserve(f, UUID_B, "acme-2", "");
        rewrite_boot(f);

        g_assert_cmpint(restart_plan(f), ==, 0);
        takeover = restore_plan_takeover(f->plan);
        g_assert_cmpuint(takeover.pool_count, ==, 0);
        g_assert_cmpuint(takeover.region_size, ==, 0);
        g_assert_true(never_held_back(&takeover, 3));
        pool = restart_pool(f);
        restart_apply(f);
        for (unsigned i = 0; i < pool->n_slots; i++) {
                g_assert_cmpint(pool->slots[i].state, ==, SLOT_FREE);
                g_assert_cmpint(pool->slots[i].region_fd, >=, 0);
                g_assert_null(pool->slots[i].lease);
        }
        g_assert_null(pool_find(pool, UUID_A));
        g_assert_null(pool_find(pool, UUID_B));
}

#define add(path, data, fn) g_test_add(path, RestoreFixture, data, restore_set_up, fn, restore_tear_down)

int main(int argc, char *argv[]) {
        /* Never systemd's fd store or notify socket, whoever runs the tests. */
        g_unsetenv("NOTIFY_SOCKET");
        g_unsetenv("LISTEN_FDS");
        g_unsetenv("LISTEN_PID");
        g_unsetenv("LISTEN_FDNAMES");
        g_test_init(&argc, &argv, NULL);
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
        add("/restore/lease-of-gone-process", tenant_policy, test_lease_of_gone_process);
        add("/restore/lease-of-live-process", tenant_policy, test_lease_of_live_process);
        add("/restore/pid-reused", tenant_policy, test_pid_reused);
        add("/restore/newer-format", tenant_policy, test_newer_format);
        add("/restore/other-boot", tenant_policy, test_other_boot);
        return g_test_run();
}
