/* The index of /proc a restart's census reads: regions held by fd or by a mapping alone,
 * found by inode and by the slot their name claims; other memfds passed over. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <glib.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "proc-index.h"

typedef struct Held {
        uint64_t dev, ino;
} Held;

static Held memfd_named(const char *name, int *ret_fd) {
        int fd = memfd_create(name, MFD_CLOEXEC);
        struct stat st;

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(ftruncate(fd, 4096), ==, 0);
        g_assert_cmpint(fstat(fd, &st), ==, 0);
        *ret_fd = fd;
        return (Held) { .dev = st.st_dev, .ino = st.st_ino };
}

/* A child that maps fd and closes it, with many other mappings (its maps longer than one
 * read), then waits to be killed; it keeps the parent's other fds (no exec follows). */
static pid_t child_mapping_only(int fd) {
        int ready[2];
        pid_t child;
        char c = 0;

        g_assert_cmpint(pipe2(ready, O_CLOEXEC), ==, 0);
        child = fork();
        if (child == 0) {
                void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
                for (int i = 0; i < 2000; i++)
                        (void) mmap(NULL, 4096, i % 2 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                close(fd);
                (void) !write(ready[1], m == MAP_FAILED ? "x" : "k", 1);
                pause();
                _exit(0);
        }
        g_assert_cmpint(child, >, 0);
        close(ready[1]);
        g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
        g_assert_cmpint(c, ==, 'k');
        close(ready[0]);
        return child;
}

/* The child holds slot 7's region by fd, slot 9's by a mapping alone, and a memfd of
 * another name. */
static void test_holders(void) {
        int fd7, fd9, other_fd;
        Held r7 = memfd_named("rma-broker-slot-7", &fd7), r9 = memfd_named("rma-broker-slot-9", &fd9);
        Held other = memfd_named("not-a-region", &other_fd);
        pid_t child = child_mapping_only(fd9);
        g_autoptr(ProcIndex) x = NULL;
        const ProcHolder *h;

        x = proc_index_new(getpid());
        h = proc_index_find(x, r7.dev, r7.ino, child);
        g_assert_nonnull(h);
        g_assert_cmpint(h->fdnum, ==, fd7);
        g_assert_cmpint(h->named_slot, ==, 7);
        h = proc_index_find(x, r9.dev, r9.ino, child);
        g_assert_nonnull(h);
        g_assert_cmpint(h->fdnum, ==, -1);   /* a mapping alone */
        g_assert_cmpint(h->named_slot, ==, 9);
        g_assert_true(h->map_start < h->map_end);
        g_assert_null(proc_index_find(x, r7.dev, r7.ino, getpid()));   /* the excluded pid */
        g_assert_null(proc_index_find(x, other.dev, other.ino, 0));
        for (guint i = 0; i < x->holders->len; i++)
                g_assert_cmpint(g_array_index(x->holders, ProcHolder, i).named_slot, >=, 0);

        kill(child, SIGKILL);
        g_assert_cmpint(waitpid(child, NULL, 0), ==, child);
        close(fd7);
        close(fd9);
        close(other_fd);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/proc-index/holders", test_holders);
        return g_test_run();
}
