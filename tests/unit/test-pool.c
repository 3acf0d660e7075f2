/* Unit tests of the slot state machine (daemon/core/pool.c) over real memfd regions. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend.h"
#include "pool.h"

#define UUID_A "11111111-2222-3333-4444-555555555555"
#define UUID_B "22222222-2222-3333-4444-555555555555"
#define UUID_C "33333333-2222-3333-4444-555555555555"
#define UUID_D "44444444-2222-3333-4444-555555555555"

typedef struct Fixture {
        Backend backend;
        Pool *pool;
        bool fail_next;          /* make the next new_region fail, as a host out of pages would */
} Fixture;

static int flaky_new_region(Backend *b, unsigned index, int *ret_fd) {
        Fixture *f = b->data;

        if (f->fail_next)
                return -ENOMEM;
        return backend_memfd_ops.new_region(b, index, ret_fd);
}

static const BackendOps flaky_ops = { .name = "memfd", .new_region = flaky_new_region };
static Backend memfd_backend = { .ops = &backend_memfd_ops, .region_count = 3, .region_size = 1u << 20 };

static void fixture_set_up(Fixture *f, gconstpointer data) {
        f->backend.region_count = 3;
        f->backend.region_size = 1u << 20;
        f->backend.ops = &flaky_ops;
        f->backend.data = f;
        g_assert_cmpint(pool_new(&f->backend, NULL, &f->pool), ==, 0);
}

/* What the region worker does after a teardown: ask the backend, report to the pool. */
static bool refill_now(Pool *pool, Slot *s) {
        int fd = -EBADF, r = backend_new_region(pool->backend, s->index, &fd);

        if (r < 0) {
                pool_region_held_elsewhere(pool, s, r);
                return false;
        }
        pool_region_ready(pool, s, fd);
        return true;
}

static void fixture_tear_down(Fixture *f, gconstpointer data) {
        pool_free(f->pool);
}

/* A lease ends in two steps: the old region goes to the caller (scrubbing), and the
 * slot is refilled once the caller has disposed of it. */
static void end_lease(Fixture *f, Slot *s) {
        int old = -EBADF;

        pool_end_lease(f->pool, s, &old);
        g_assert_cmpint(old, >=, 0);
        g_assert_cmpint(s->state, ==, SLOT_SCRUBBING);
        g_assert_cmpint(s->region_fd, <, 0);
        g_assert_cmpuint(pool_count(f->pool, SLOT_SCRUBBING), ==, 1);
        close(old);
        (void) refill_now(f->pool, s);
}

static ino_t inode_of(int fd) {
        struct stat st;
        g_assert_cmpint(fstat(fd, &st), ==, 0);
        return st.st_ino;
}

static void test_initial(Fixture *f, gconstpointer data) {
        g_assert_cmpuint(f->pool->n_slots, ==, 3);
        g_assert_cmpuint(pool_count(f->pool, SLOT_FREE), ==, 3);
        for (unsigned i = 0; i < 3; i++) {
                struct stat st;
                g_assert_cmpint(fstat(f->pool->slots[i].region_fd, &st), ==, 0);
                g_assert_cmpint(st.st_size, ==, 1u << 20);
                g_assert_cmpint(fcntl(f->pool->slots[i].region_fd, F_GET_SEALS) & F_SEAL_GROW, !=, 0);
        }
        g_assert_cmpuint(pool_next_expiry(f->pool), ==, UINT64_MAX);
}

static void test_reserve_lease_end(Fixture *f, gconstpointer data) {
        Slot *s = NULL, *again = NULL;
        ino_t before;

        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "dom-a", "acme", 0, 100, &s), ==, 0);
        g_assert_cmpint(s->state, ==, SLOT_RESERVED);
        g_assert_cmpstr(s->domain, ==, "dom-a");
        g_assert_cmpstr(s->tenant, ==, "acme");
        g_assert_true(pool_find(f->pool, UUID_A) == s);
        g_assert_null(pool_find(f->pool, UUID_B));
        g_assert_cmpuint(pool_count(f->pool, SLOT_RESERVED), ==, 1);
        g_assert_cmpuint(pool_count(f->pool, SLOT_FREE), ==, 2);

        /* The same uuid never gets a second slot. */
        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "dom-a", "acme", 0, 100, &again), ==, -EEXIST);
        g_assert_true(again == s);

        before = inode_of(s->region_fd);
        g_assert_cmpint(pool_lease(f->pool, s, getpid(), 0), ==, 0);
        g_assert_cmpint(s->state, ==, SLOT_LEASED);
        g_assert_cmpint(s->pid, ==, getpid());
        g_assert_cmpuint(pool_count(f->pool, SLOT_LEASED), ==, 1);
        /* A lease cannot be taken twice. */
        g_assert_cmpint(pool_lease(f->pool, s, getpid(), 0), ==, -EBUSY);

        end_lease(f, s);
        g_assert_cmpint(s->state, ==, SLOT_FREE);
        g_assert_cmpstr(s->uuid, ==, "");
        g_assert_null(pool_find(f->pool, UUID_A));
        /* The next tenant gets a new file, never the old tenant's. */
        g_assert_cmpuint(inode_of(s->region_fd), !=, before);
        g_assert_cmpuint(pool_count(f->pool, SLOT_FREE), ==, 3);
}

static void test_exhaust(Fixture *f, gconstpointer data) {
        Slot *s = NULL;

        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "a", "t", 0, 100, &s), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_B, "b", "t", 0, 100, &s), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_C, "c", "t", 0, 100, &s), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_D, "d", "t", 0, 100, &s), ==, -ENOSPC);
        g_assert_cmpuint(pool_count(f->pool, SLOT_FREE), ==, 0);
        pool_unreserve(f->pool, pool_find(f->pool, UUID_B));
        g_assert_cmpint(pool_reserve(f->pool, UUID_D, "d", "t", 0, 100, &s), ==, 0);
        g_assert_cmpuint(pool_count(f->pool, SLOT_RESERVED), ==, 3);
}

static void test_expiry(Fixture *f, gconstpointer data) {
        Slot *s = NULL;

        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "a", "t", 0, 500, &s), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_B, "b", "t", 0, 200, &s), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_C, "c", "t", 0, 300, &s), ==, 0);
        g_assert_cmpint(pool_lease(f->pool, s, getpid(), 0), ==, 0);
        g_assert_cmpuint(pool_next_expiry(f->pool), ==, 200);
        g_assert_cmpuint(pool_expire(f->pool, 199), ==, 0);
        g_assert_cmpuint(pool_expire(f->pool, 200), ==, 1);
        g_assert_null(pool_find(f->pool, UUID_B));
        g_assert_cmpuint(pool_next_expiry(f->pool), ==, 500);
        /* A lease never expires. */
        g_assert_cmpuint(pool_expire(f->pool, 10000), ==, 1);
        g_assert_nonnull(pool_find(f->pool, UUID_C));
        g_assert_cmpuint(pool_next_expiry(f->pool), ==, UINT64_MAX);
}

static void test_held_elsewhere(Fixture *f, gconstpointer data) {
        Slot *s = NULL;

        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "a", "t", 0, 100, &s), ==, 0);
        g_assert_cmpint(pool_lease(f->pool, s, getpid(), 0), ==, 0);
        f->fail_next = true;
        end_lease(f, s);
        /* No fresh region: the slot is not free, and it is never handed out. */
        g_assert_cmpint(s->state, ==, SLOT_HELD_ELSEWHERE);
        g_assert_cmpint(s->region_fd, <, 0);
        g_assert_cmpuint(pool_count(f->pool, SLOT_FREE), ==, 2);
        g_assert_cmpuint(g_queue_get_length(&f->pool->held_elsewhere), ==, 1);
        g_assert_false(refill_now(f->pool, s));
        g_assert_cmpint(s->state, ==, SLOT_HELD_ELSEWHERE);
        f->fail_next = false;
        g_assert_true(refill_now(f->pool, s));
        g_assert_cmpuint(g_queue_get_length(&f->pool->held_elsewhere), ==, 0);
        g_assert_cmpint(s->state, ==, SLOT_FREE);
        g_assert_cmpuint(pool_count(f->pool, SLOT_FREE), ==, 3);
}

/* Counts per state and per tenant, and what changed, kept without scanning. */
static void test_counts_and_changes(Fixture *f, gconstpointer data) {
        Slot *a = NULL, *b = NULL;
        uint32_t leased, reserved;

        g_assert_cmpuint(pool_take_changes(f->pool), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "a", "acme", 0, 100, &a), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_B, "b", "acme", 0, 100, &b), ==, 0);
        g_assert_cmpuint(pool_take_changes(f->pool), ==, (1u << SLOT_FREE) | (1u << SLOT_RESERVED));
        g_assert_cmpuint(pool_take_changes(f->pool), ==, 0);
        pool_tenant_holds(f->pool, "acme", &leased, &reserved);
        g_assert_cmpuint(leased, ==, 0);
        g_assert_cmpuint(reserved, ==, 2);
        g_assert_cmpint(pool_lease(f->pool, a, getpid(), 0), ==, 0);
        g_assert_cmpuint(pool_take_changes(f->pool), ==, (1u << SLOT_RESERVED) | (1u << SLOT_LEASED));
        pool_tenant_holds(f->pool, "acme", &leased, &reserved);
        g_assert_cmpuint(leased, ==, 1);
        g_assert_cmpuint(reserved, ==, 1);
        pool_tenant_holds(f->pool, "other", &leased, &reserved);
        g_assert_cmpuint(leased + reserved, ==, 0);
        end_lease(f, a);
        pool_unreserve(f->pool, b);
        pool_tenant_holds(f->pool, "acme", &leased, &reserved);
        g_assert_cmpuint(leased + reserved, ==, 0);
        g_assert_cmpuint(g_hash_table_size(f->pool->tenants), ==, 0);
        g_assert_cmpuint(pool_count(f->pool, SLOT_FREE), ==, 3);
        g_assert_cmpuint(pool_count(f->pool, SLOT_LEASED) + pool_count(f->pool, SLOT_RESERVED) +
                         pool_count(f->pool, SLOT_SCRUBBING) + pool_count(f->pool, SLOT_HELD_ELSEWHERE), ==, 0);
}

/* A retried reservation moves to its new place in expiry order. */
static void test_refresh(Fixture *f, gconstpointer data) {
        Slot *a = NULL, *b = NULL;

        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "a", "t", 0, 100, &a), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_B, "b", "t", 0, 200, &b), ==, 0);
        pool_refresh(f->pool, a, 300);
        g_assert_cmpuint(pool_next_expiry(f->pool), ==, 200);
        g_assert_cmpuint(pool_expire(f->pool, 250), ==, 1);
        g_assert_null(pool_find(f->pool, UUID_B));
        g_assert_cmpuint(pool_next_expiry(f->pool), ==, 300);
}

/* After a restart, only the pool's own kind of region is taken back. */
static void test_verify(Fixture *f, gconstpointer data) {
        int other = memfd_create("not-a-region", MFD_CLOEXEC | MFD_ALLOW_SEALING), pipefd[2];

        g_assert_cmpint(backend_verify_region(&memfd_backend, f->pool->slots[0].region_fd), ==, 0);
        /* Unsealed, then sealed but of another size. */
        g_assert_cmpint(ftruncate(other, 1u << 20), ==, 0);
        g_assert_cmpint(backend_verify_region(&memfd_backend, other), ==, -EINVAL);
        g_assert_cmpint(ftruncate(other, 2u << 20), ==, 0);
        g_assert_cmpint(fcntl(other, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL), ==, 0);
        g_assert_cmpint(backend_verify_region(&memfd_backend, other), ==, -EINVAL);
        g_assert_cmpint(pipe2(pipefd, O_CLOEXEC), ==, 0);
        g_assert_cmpint(backend_verify_region(&memfd_backend, pipefd[0]), <, 0);
        close(other);
        close(pipefd[0]);
        close(pipefd[1]);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/pool/initial", Fixture, NULL, fixture_set_up, test_initial, fixture_tear_down);
        g_test_add("/pool/reserve-lease-end", Fixture, NULL, fixture_set_up, test_reserve_lease_end, fixture_tear_down);
        g_test_add("/pool/exhaust", Fixture, NULL, fixture_set_up, test_exhaust, fixture_tear_down);
        g_test_add("/pool/expiry", Fixture, NULL, fixture_set_up, test_expiry, fixture_tear_down);
        g_test_add("/pool/held-elsewhere", Fixture, NULL, fixture_set_up, test_held_elsewhere, fixture_tear_down);
        g_test_add("/pool/counts-and-changes", Fixture, NULL, fixture_set_up, test_counts_and_changes, fixture_tear_down);
        g_test_add("/pool/verify-region", Fixture, NULL, fixture_set_up, test_verify, fixture_tear_down);
        g_test_add("/pool/refresh", Fixture, NULL, fixture_set_up, test_refresh, fixture_tear_down);
        return g_test_run();
}
