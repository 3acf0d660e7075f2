/* Leases: made only with a watch on their process, kept and ended in one place.
 *
 * The regression this guards: a lease re-adopted after a restart whose process watch
 * could not be added used to leave its slot leased with no lease, and a later Release
 * dereferenced it. A lease now exists only with its watch, or not at all. */
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "lease.h"
#include "test-broker-fixture.h"

#define UUID_A "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"

static const Caller root = { .uid = 0, .gids_known = true, .cgroup_fd = -1, .pidfd = -1 };

typedef struct LeaseFixture {
        Fixture base;
        sd_event *event;
        Recycler *recycler;
        Leases *leases;
} LeaseFixture;

static void lease_set_up(LeaseFixture *f, gconstpointer data) {
        fixture_set_up(&f->base, data);
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        g_assert_cmpint(recycler_new(f->event, f->base.broker->pool, &f->recycler), ==, 0);
        g_assert_cmpint(leases_new(f->event, f->base.broker, f->recycler, &f->leases), ==, 0);
}

static void lease_tear_down(LeaseFixture *f, gconstpointer data) {
        f->leases = leases_free(f->leases);
        f->recycler = recycler_free(f->recycler);
        f->event = sd_event_unref(f->event);
        fixture_tear_down(&f->base, data);
}

static Slot *reserve_uuid(LeaseFixture *f, const char *uuid) {
        Caller c = root;
        g_autofree char *message = NULL;
        Slot *s = NULL;

        g_assert_cmpint(broker_reserve(f->base.broker, &c, uuid, "dom-a", "", 0, &s, &message), ==, BROKER_OK);
        return s;
}

static Slot *reserve(LeaseFixture *f) {
        return reserve_uuid(f, UUID_A);
}

/* The pidfds this process has open ("anon_inode:[pidfd]", or "pidfd:..." on pidfs). */
static unsigned open_pidfds(void) {
        g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
        const char *name;
        unsigned n = 0;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *path = g_build_filename("/proc/self/fd", name, NULL);
                g_autofree char *target = g_file_read_link(path, NULL);
                if (target && strstr(target, "pidfd"))
                        n++;
        }
        return n;
}

/* A child that runs until *ret_pipe is closed: its pid and a pidfd. */
static pid_t waiting_child(int *ret_pidfd, int *ret_pipe) {
        int p[2];
        pid_t child;
        char c;

        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        child = fork();
        g_assert_cmpint(child, >=, 0);
        if (child == 0) {
                close(p[1]);
                (void) !read(p[0], &c, 1);
                _exit(0);
        }
        close(p[0]);
        *ret_pidfd = (int) syscall(SYS_pidfd_open, child, 0);
        g_assert_cmpint(*ret_pidfd, >=, 0);
        *ret_pipe = p[1];
        return child;
}

/* An fd that epoll refuses (a regular file): the watch cannot be added. */
static int unwatchable_fd(LeaseFixture *f) {
        g_autofree char *path = g_build_filename(f->base.dir, "not-a-pidfd", NULL);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

        g_assert_cmpint(fd, >=, 0);
        return fd;
}

/* A child that exits at once, and a pidfd taken before it is reaped. */
static int exited_child_pidfd(void) {
        pid_t child = fork();
        int pidfd;

        g_assert_cmpint(child, >=, 0);
        if (child == 0)
                _exit(0);
        pidfd = (int) syscall(SYS_pidfd_open, child, 0);
        g_assert_cmpint(pidfd, >=, 0);
        g_assert_cmpint(waitpid(child, NULL, 0), ==, child);
        return pidfd;
}

/* A leased slot ended by hand, as a restart finds it: scrubbing, no region, no lease. */
static Slot *held_back_slot(LeaseFixture *f, int *ret_region_fd) {
        Slot *s = reserve(f);

        g_assert_cmpint(pool_lease(f->base.broker->pool, s, getpid(), 0), ==, 0);
        pool_end_lease(f->base.broker->pool, s, ret_region_fd);
        g_assert_cmpint(s->state, ==, SLOT_SCRUBBING);
        g_assert_cmpint(*ret_region_fd, >=, 0);
        return s;
}

static void test_start_without_watch(LeaseFixture *f, gconstpointer data) {
        _cleanup_close_ int fd = unwatchable_fd(f);
        Slot *s = reserve(f);

        g_assert_cmpint(leases_start(f->leases, s, getpid(), 0, fd), <, 0);
        /* Nothing was leased: the reservation stays, for a retry. */
        g_assert_cmpint(s->state, ==, SLOT_RESERVED);
        g_assert_null(s->lease);
}

static void test_readopt_without_watch(LeaseFixture *f, gconstpointer data) {
        LeaseRecord rec = { .uuid = UUID_A, .domain = "dom-a", .tenant = POLICY_IMPLICIT_TENANT, .pid = getpid() };
        g_autofree char *message = NULL;
        _cleanup_close_ int pidfd = unwatchable_fd(f);
        Slot *released = NULL, *s;
        Caller c = root;
        int region_fd = -EBADF;

        s = held_back_slot(f, &region_fd);
        g_assert_cmpint(leases_readopt(f->leases, s, &rec, pidfd, region_fd), <, 0);
        /* The slot is left for the caller to settle: not leased, no lease, no region. */
        g_assert_cmpint(s->state, ==, SLOT_SCRUBBING);
        g_assert_null(s->lease);
        g_assert_cmpint(s->region_fd, <, 0);
        g_assert_null(pool_find(f->base.broker->pool, UUID_A));
        /* A Release of the domain finds nothing to end (it used to find a NULL lease). */
        g_assert_cmpint(broker_release(f->base.broker, &c, UUID_A, &released, &message), ==, BROKER_OK);
        g_assert_null(released);
}

static void test_readopt_then_release(LeaseFixture *f, gconstpointer data) {
        LeaseRecord rec = { .uuid = UUID_A, .domain = "dom-a", .tenant = POLICY_IMPLICIT_TENANT, .pid = 1 };
        g_autofree char *message = NULL;
        _cleanup_close_ int pidfd = exited_child_pidfd();
        Slot *released = NULL, *s;
        Caller c = root;
        int region_fd = -EBADF;

        s = held_back_slot(f, &region_fd);
        g_assert_cmpint(leases_readopt(f->leases, s, &rec, pidfd, region_fd), ==, 0);
        g_assert_cmpint(s->state, ==, SLOT_LEASED);
        g_assert_nonnull(s->lease);
        g_assert_cmpint(broker_release(f->base.broker, &c, UUID_A, &released, &message), ==, BROKER_OK);
        g_assert_true(released == s);
        g_assert_true(leases_end_if_exited(f->leases, s));
        g_assert_cmpint(s->state, ==, SLOT_SCRUBBING);
        g_assert_null(s->lease);
        g_assert_cmpuint(f->base.broker->stats.lease_ends[LEASE_END_RELEASED], ==, 1);
}

static void test_exit_ends_lease(LeaseFixture *f, gconstpointer data) {
        _cleanup_close_ int pidfd = exited_child_pidfd();
        Slot *s = reserve(f);

        g_assert_cmpint(leases_start(f->leases, s, 1, 0, pidfd), ==, 0);
        g_assert_cmpint(s->state, ==, SLOT_LEASED);
        /* The process is gone: the loop's next iteration ends the lease, and the recycler
         * brings the slot back to free with a fresh region. */
        for (int i = 0; i < 200 && s->state != SLOT_FREE; i++)
                g_assert_cmpint(sd_event_run(f->event, 10 * 1000), >=, 0);
        g_assert_cmpint(s->state, ==, SLOT_FREE);
        g_assert_null(s->lease);
        g_assert_cmpuint(f->base.broker->stats.lease_ends[LEASE_END_PROCESS_EXITED], ==, 1);
}

/* The leases of one process share one watch: one fd, however many it holds, and its exit
 * ends them all at once. Another start time is another process. */
static void test_one_watch_per_process(LeaseFixture *f, gconstpointer data) {
        static const char *uuids[] = { UUID_A, "4dea22b3-1d52-d8f3-2516-782e98ab3fa1" };
        _cleanup_close_ int pidfd = -EBADF, pipe = -EBADF;
        pid_t child = waiting_child(&pidfd, &pipe);
        unsigned before = open_pidfds();
        Slot *slots[2];

        for (unsigned i = 0; i < 2; i++) {
                slots[i] = reserve_uuid(f, uuids[i]);
                g_assert_cmpint(leases_start(f->leases, slots[i], child, 7, pidfd), ==, 0);
        }
        g_assert_cmpuint(open_pidfds(), ==, before + 1);
        /* Alive: a Release of one ends nothing, and the others keep the watch. */
        g_assert_false(leases_end_if_exited(f->leases, slots[0]));
        g_assert_cmpint(slots[1]->state, ==, SLOT_LEASED);
        /* The same pid with another start time: not the same process, another watch. */
        {
                const char *other = "4dea22b3-1d52-d8f3-2516-782e98ab3fa2";
                Slot *s = reserve_uuid(f, other);
                g_assert_cmpint(leases_start(f->leases, s, child, 8, pidfd), ==, 0);
                g_assert_cmpuint(open_pidfds(), ==, before + 2);
        }
        pipe = safe_close(pipe);
        g_assert_cmpint(waitpid(child, NULL, 0), ==, child);
        for (int i = 0; i < 200 && f->base.broker->stats.lease_ends[LEASE_END_PROCESS_EXITED] < 3; i++)
                g_assert_cmpint(sd_event_run(f->event, 10 * 1000), >=, 0);
        g_assert_cmpuint(f->base.broker->stats.lease_ends[LEASE_END_PROCESS_EXITED], ==, 3);
        for (unsigned i = 0; i < 2; i++)
                g_assert_null(slots[i]->lease);
        /* Both watches are gone with their last lease. */
        g_assert_cmpuint(open_pidfds(), ==, before);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
        g_test_add("/lease/start-without-watch", LeaseFixture, NULL, lease_set_up, test_start_without_watch,
                   lease_tear_down);
        g_test_add("/lease/readopt-without-watch", LeaseFixture, NULL, lease_set_up, test_readopt_without_watch,
                   lease_tear_down);
        g_test_add("/lease/readopt-then-release", LeaseFixture, NULL, lease_set_up, test_readopt_then_release,
                   lease_tear_down);
        g_test_add("/lease/exit-ends-lease", LeaseFixture, NULL, lease_set_up, test_exit_ends_lease, lease_tear_down);
        g_test_add("/lease/one-watch-per-process", LeaseFixture, NULL, lease_set_up, test_one_watch_per_process,
                   lease_tear_down);
        return g_test_run();
}
