/* Leases: made only with a watch on their process, kept and ended in one place.
 *
 * The regression this guards: a lease re-adopted after a restart whose process watch
 * could not be added used to leave its slot leased with no lease, and a later Release
 * dereferenced it. A lease now exists only with its watch, or not at all. */
#include <fcntl.h>
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

static Slot *reserve(LeaseFixture *f) {
        Caller c = root;
        g_autofree char *message = NULL;
        Slot *s = NULL;

        g_assert_cmpint(broker_reserve(f->base.broker, &c, UUID_A, "dom-a", "", 0, &s, &message), ==, BROKER_OK);
        return s;
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
        Slot *released = NULL, *s;
        Caller c = root;
        int region_fd = -EBADF;

        s = held_back_slot(f, &region_fd);
        g_assert_cmpint(leases_readopt(f->leases, s, &rec, unwatchable_fd(f), region_fd), <, 0);
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
        Slot *released = NULL, *s;
        Caller c = root;
        int region_fd = -EBADF;

        s = held_back_slot(f, &region_fd);
        g_assert_cmpint(leases_readopt(f->leases, s, &rec, exited_child_pidfd(), region_fd), ==, 0);
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
        return g_test_run();
}
