/* Unit tests of the lease registry (daemon/restart/registry.c): what one broker writes, the next
 * reads back exactly; anything else is reported and not trusted. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "pool.h"
#include "registry.h"
#include "rma-util.h"

#define UUID_A "11111111-2222-3333-4444-555555555555"
#define UUID_B "22222222-2222-3333-4444-555555555555"

typedef struct Fixture {
        Backend backend;
        Pool *pool;
        Registry *registry;
        char *dir;
        char *path;
} Fixture;

static void on_slot_changed(const Slot *s, void *userdata) {
        registry_write_slot(userdata, s);
}

static void fixture_set_up(Fixture *f, gconstpointer data) {
        f->backend = (Backend) { .ops = &backend_memfd_ops, .region_count = 3, .region_size = 1u << 20 };
        g_assert_cmpint(pool_new(&f->backend, NULL, &f->pool), ==, 0);
        f->dir = g_dir_make_tmp("rma-registry-XXXXXX", NULL);
        f->path = g_build_filename(f->dir, REGISTRY_FILE_NAME, NULL);
        g_assert_cmpint(registry_open(f->dir, f->pool, &f->registry), ==, 0);
        f->pool->slot_changed = on_slot_changed;
        f->pool->slot_changed_userdata = f->registry;
}

static void fixture_tear_down(Fixture *f, gconstpointer data) {
        registry_free(f->registry);
        pool_free(f->pool);
        /* The registry, its names, the spares beside them (the next copy of each) and the sums. */
        for (const char *const *n = (const char *const[]) { REGISTRY_FILE_NAME, "leases.names",
                                                            REGISTRY_FILE_NAME ".spare",
                                                            "leases.names.spare", REGISTRY_SUMS_FILE_NAME, NULL };
             *n; n++) {
                g_autofree char *path = g_build_filename(f->dir, *n, NULL);
                g_unlink(path);
        }
        g_assert_cmpint(g_rmdir(f->dir), ==, 0);
        g_free(f->path);
        g_free(f->dir);
}

static RegistryContents *load(Fixture *f) {
        RegistryContents *c = NULL;

        g_assert_cmpint(registry_load(f->dir, &c), ==, 0);
        return c;
}

/* A reservation and a lease, with names that need escaping, come back exactly. */
static void test_round_trip(Fixture *f, gconstpointer data) {
        const char *odd = "web 01 %zz/ünïcode=x sum=1";
        g_autoptr(RegistryContents) c = NULL;
        Slot *a = NULL, *b = NULL;

        g_assert_cmpint(pool_reserve(f->pool, UUID_A, odd, "acme corp", 42, UINT64_MAX / 2, &a), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_B, "db-02", "beta", 0, UINT64_MAX / 2, &b), ==, 0);
        g_assert_cmpint(pool_lease(f->pool, b, 4242, 987654321), ==, 0);
        c = load(f);
        g_assert_true(c->present && c->header_valid);
        g_assert_null(c->problem);
        g_assert_cmpstr(c->backend, ==, "memfd");
        g_assert_cmpuint(c->region_size, ==, 1u << 20);
        g_assert_cmpuint(c->count, ==, 3);
        g_assert_true(c->records[a->index].present);
        g_assert_cmpint(c->records[a->index].state, ==, SLOT_RESERVED);
        g_assert_cmpstr(c->records[a->index].uuid, ==, UUID_A);
        g_assert_cmpstr(c->records[a->index].domain, ==, odd);
        g_assert_cmpstr(c->records[a->index].tenant, ==, "acme corp");
        g_assert_cmpuint(c->records[a->index].reserved_by, ==, 42);
        g_assert_cmpuint(c->records[a->index].expires_realtime, >, 0);
        g_assert_cmpint(c->records[b->index].state, ==, SLOT_LEASED);
        g_assert_cmpint(c->records[b->index].pid, ==, 4242);
        g_assert_cmpuint(c->records[b->index].pid_start, ==, 987654321);
        g_assert_cmpuint(c->records[b->index].region_ino, ==, b->region_ino);
        g_assert_cmpint(c->records[2].state, ==, SLOT_FREE);
}

/* Names of any length the D-Bus API accepts come back whole: the longest (255 bytes of
 * UTF-8, every byte escaped) through the names file; and a stale names record (another
 * lease's) makes the record garbage instead of naming the wrong domain. */
static void test_long_name(Fixture *f, gconstpointer data) {
        g_autoptr(GString) name = g_string_new(NULL);
        g_autofree char *names_path = g_build_filename(f->dir, "leases.names", NULL);
        Slot *a = NULL;

        for (int i = 0; i < 127; i++)
                g_string_append(name, "é");
        g_string_append(name, "x");
        g_assert_cmpuint(name->len, ==, 255);
        g_assert_cmpint(pool_reserve(f->pool, UUID_A, name->str, "tenant with a long name", 0, UINT64_MAX / 2, &a), ==, 0);
        g_assert_cmpint(pool_lease(f->pool, a, 4242, 1), ==, 0);
        {
                g_autoptr(RegistryContents) c = load(f);
                g_assert_true(c->records[a->index].present);
                g_assert_cmpstr(c->records[a->index].domain, ==, name->str);
                g_assert_cmpstr(c->records[a->index].tenant, ==, "tenant with a long name");
        }
        /* The names file's record no longer matches what the slot record was sealed with. */
        {
                int fd = open(names_path, O_WRONLY | O_CLOEXEC);
                g_assert_cmpint(fd, >=, 0);
                g_assert_cmpint(pwrite(fd, "slot=0 domain=other", 19, (off_t) a->index * 2048), ==, 19);
                close(fd);
        }
        {
                g_autoptr(RegistryContents) c = load(f);
                g_assert_false(c->records[a->index].present);
                g_assert_cmpuint(c->n_corrupt, ==, 1);
        }
}

static void overwrite(Fixture *f, off_t offset, const char *bytes) {
        int fd = open(f->path, O_WRONLY | O_CLOEXEC);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(pwrite(fd, bytes, strlen(bytes), offset), ==, (ssize_t) strlen(bytes));
        close(fd);
}

/* One flipped byte makes one record garbage: counted, said, the others still read. */
static void test_garbage_record(Fixture *f, gconstpointer data) {
        g_autoptr(RegistryContents) c = NULL;
        Slot *a = NULL, *b = NULL;

        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "a", "t", 0, UINT64_MAX / 2, &a), ==, 0);
        g_assert_cmpint(pool_reserve(f->pool, UUID_B, "b", "t", 0, UINT64_MAX / 2, &b), ==, 0);
        overwrite(f, (off_t) (a->index + 1) * 512 + 30, "X");
        c = load(f);
        g_assert_true(c->header_valid);
        g_assert_cmpuint(c->n_corrupt, ==, 1);
        g_assert_false(c->records[a->index].present);
        g_assert_true(c->records[b->index].present);
        g_assert_nonnull(strstr(c->problem, "1 of 3 slot records are garbage or missing"));
}

/* A backup restored in place (same inode, size, header; every record sealed): the record
 * that changed since is stale, by its sum, the others are not. Without a sums file (an
 * older broker kept none) nothing is stale. */
static void test_stale_record(Fixture *f, gconstpointer data) {
        g_autofree char *backup = NULL, *sums = g_build_filename(f->dir, REGISTRY_SUMS_FILE_NAME, NULL);
        gsize len = 0;
        Slot *a = NULL;

        g_assert_cmpint(pool_reserve(f->pool, UUID_A, "a", "t", 0, UINT64_MAX / 2, &a), ==, 0);
        g_assert_true(g_file_get_contents(f->path, &backup, &len, NULL));
        g_assert_cmpint(pool_lease(f->pool, a, 4242, 1), ==, 0);
        {
                g_autoptr(RegistryContents) c = load(f);
                g_assert_cmpuint(c->n_stale, ==, 0);
                g_assert_false(c->records[a->index].stale);
        }
        {
                /* In place, as cp does: the same inode. */
                int fd = open(f->path, O_WRONLY | O_CLOEXEC);
                g_assert_cmpint(fd, >=, 0);
                g_assert_cmpint(pwrite(fd, backup, len, 0), ==, (ssize_t) len);
                close(fd);
        }
        {
                g_autoptr(RegistryContents) c = load(f);
                g_assert_cmpuint(c->n_corrupt, ==, 0);
                g_assert_cmpuint(c->n_stale, ==, 1);
                g_assert_true(c->records[a->index].present);
                g_assert_true(c->records[a->index].stale);
                g_assert_cmpint(c->records[a->index].state, ==, SLOT_RESERVED);
                for (unsigned i = 0; i < c->count; i++)
                        g_assert_true(i == a->index || !c->records[i].stale);
                g_assert_nonnull(strstr(c->problem, "1 of 3 slot records are not the ones rma-brokerd last wrote"));
        }
        g_assert_cmpint(g_unlink(sums), ==, 0);
        {
                g_autoptr(RegistryContents) c = load(f);
                g_assert_cmpuint(c->n_stale, ==, 0);
                g_assert_null(c->problem);
        }
}

/* A record as the registry seals it, at slot 0: well-formed, checksum and all. */
static void write_sealed_record(Fixture *f, const char *body) {
        char rec[512];
        int n = snprintf(rec, sizeof(rec), "%s sum=%016" G_GINT64_MODIFIER "x", body, rma_fnv1a(body, strlen(body)));

        memset(rec + n, ' ', sizeof(rec) - (size_t) n - 1);
        rec[sizeof(rec) - 1] = '\n';
        {
                int fd = open(f->path, O_WRONLY | O_CLOEXEC);
                g_assert_cmpint(fd, >=, 0);
                g_assert_cmpint(pwrite(fd, rec, sizeof(rec), 512), ==, (ssize_t) sizeof(rec));
                close(fd);
        }
}

/* A sealed record whose numbers do not fit their fields is garbage, not truncated into
 * something else: pid=4294967297 must not become pid 1, nor by= wrap to a uid. */
static void test_out_of_range_numbers(Fixture *f, gconstpointer data) {
        const char *bodies[] = {
                "slot=0 state=leased uuid=" UUID_A " domain=a tenant=t by=0 pid=4294967297 start=1 expires=0 region=1:2",
                "slot=0 state=leased uuid=" UUID_A " domain=a tenant=t by=0 pid=4194305 start=1 expires=0 region=1:2",
                "slot=0 state=leased uuid=" UUID_A " domain=a tenant=t by=4294967296 pid=5 start=1 expires=0 region=1:2",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(bodies); i++) {
                g_autoptr(RegistryContents) c = NULL;
                write_sealed_record(f, bodies[i]);
                c = load(f);
                g_assert_true(c->header_valid);
                g_assert_false(c->records[0].present);
                g_assert_cmpuint(c->n_corrupt, ==, 1);
        }
        {
                g_autoptr(RegistryContents) c = NULL;
                write_sealed_record(f, "slot=0 state=leased uuid=" UUID_A
                                       " domain=a tenant=t by=0 pid=4194304 start=1 expires=0 region=1:2");
                c = load(f);
                g_assert_true(c->records[0].present);   /* the largest pid a kernel gives */
                g_assert_cmpint(c->records[0].pid, ==, 4194304);
        }
}

/* A truncated file: the missing records count as garbage. A garbage header: nothing is
 * trusted. */
static void test_truncated_and_header(Fixture *f, gconstpointer data) {
        RegistryContents *c;

        g_assert_cmpint(truncate(f->path, 2 * 512), ==, 0);
        c = load(f);
        g_assert_true(c->header_valid);
        g_assert_cmpuint(c->n_corrupt, ==, 2);
        registry_contents_free(c);

        overwrite(f, 10, "garbage");
        c = load(f);
        g_assert_true(c->present);
        g_assert_false(c->header_valid);
        g_assert_nonnull(strstr(c->problem, "no valid header"));
        registry_contents_free(c);

        g_assert_cmpint(g_unlink(f->path), ==, 0);
        c = load(f);
        g_assert_false(c->present);
        g_assert_null(c->problem);
        registry_contents_free(c);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/registry/round-trip", Fixture, NULL, fixture_set_up, test_round_trip, fixture_tear_down);
        g_test_add("/registry/long-name", Fixture, NULL, fixture_set_up, test_long_name, fixture_tear_down);
        g_test_add("/registry/stale-record", Fixture, NULL, fixture_set_up, test_stale_record, fixture_tear_down);
        g_test_add("/registry/garbage-record", Fixture, NULL, fixture_set_up, test_garbage_record, fixture_tear_down);
        g_test_add("/registry/out-of-range-numbers", Fixture, NULL, fixture_set_up, test_out_of_range_numbers,
                   fixture_tear_down);
        g_test_add("/registry/truncated-and-header", Fixture, NULL, fixture_set_up, test_truncated_and_header,
                   fixture_tear_down);
        return g_test_run();
}
