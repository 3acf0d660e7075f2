/* Who a process is, by its pidfd: start time, liveness and effective uid, as a restart's
 * checks read them (the ioctl where the kernel has it, /proc before). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "process-identity.h"

/* A child that sets its effective uid, then waits for the pipe to close. */
static pid_t child_as(uid_t euid, int *ret_pipe) {
        int p[2], ready[2];
        pid_t child;
        char c;

        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(ready, O_CLOEXEC), ==, 0);
        child = fork();
        g_assert_cmpint(child, >=, 0);
        if (child == 0) {
                close(p[1]);
                close(ready[0]);
                if (setresuid((uid_t) -1, euid, (uid_t) -1) < 0)
                        _exit(1);
                close(ready[1]);
                (void) !read(p[0], &c, 1);
                _exit(0);
        }
        close(p[0]);
        close(ready[1]);
        (void) !read(ready[0], &c, 1);   /* EOF: the uid is set */
        close(ready[0]);
        *ret_pipe = p[1];
        return child;
}

static void test_effective_uid(void) {
        _cleanup_close_ int pidfd = -EBADF, pipe = -EBADF;
        uid_t uid = 12345;
        uint64_t start = 0;
        pid_t child;

        g_assert_cmpint(pidfd_open_checked(getpid(), 0, &pidfd), ==, 0);
        g_assert_cmpint(process_effective_uid(getpid(), pidfd, &uid), ==, 0);
        g_assert_cmpuint(uid, ==, geteuid());
        pidfd = safe_close(pidfd);
        if (geteuid() != 0) {
                g_test_skip("setting another uid needs root");
                return;
        }
        child = child_as(65534, &pipe);
        g_assert_cmpint(proc_start_time(child, &start), ==, 0);
        g_assert_cmpint(pidfd_open_checked(child, start, &pidfd), ==, 0);
        g_assert_true(pidfd_is_alive(pidfd));
        g_assert_cmpint(process_effective_uid(child, pidfd, &uid), ==, 0);
        g_assert_cmpuint(uid, ==, 65534);
        /* Another start time: not that process. */
        g_assert_cmpint(pidfd_open_checked(child, start + 1, &(int) { -1 }), ==, -ESRCH);
        pipe = safe_close(pipe);
        g_assert_cmpint(waitpid(child, NULL, 0), ==, child);
        g_assert_false(pidfd_is_alive(pidfd));
        g_assert_cmpint(process_effective_uid(child, pidfd, &uid), ==, -ESRCH);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/process-identity/effective-uid", test_effective_uid);
        return g_test_run();
}
