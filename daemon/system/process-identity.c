/* Processes and their region fds, found again after a restart. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "process-identity.h"
#include "cleanup.h"
#include "log.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int proc_start_time(pid_t pid, uint64_t *ret) {
        char path[64], buf[1024];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;
        const char *p;
        unsigned field = 2;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? -errno : -ESRCH;
        buf[n] = '\0';
        /* The command name (field 2) may hold spaces and parentheses: count from the
         * last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        for (p++; *p && field < 22; p++)
                if (*p == ' ')
                        field++;
        if (field != 22)
                return -EIO;
        *ret = g_ascii_strtoull(p, NULL, 10);
        return 0;
}

int pidfd_open_checked(pid_t pid, uint64_t start_time, int *ret_pidfd) {
        _cleanup_close_ int pidfd = -EBADF;
        uint64_t now = 0;

        if (pid <= 0)
                return -ESRCH;
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return errno == ESRCH ? -ESRCH : -errno;
        /* Checked after the pidfd pins the pid: from here it cannot be reused. */
        if (start_time != 0 && (proc_start_time(pid, &now) < 0 || now != start_time))
                return -ESRCH;
        *ret_pidfd = TAKE_FD(pidfd);
        return 0;
}

bool pidfd_is_alive(int pidfd) {
        /* A pidfd polls readable once its process has exited (a zombie holds no fds any
         * more): no signal, so no permission, is involved. */
        struct pollfd p = { .fd = pidfd, .events = POLLIN };

        return poll(&p, 1, 0) == 0;
}

int pidfd_take_fd(int pidfd, int fdnum, int *ret_fd) {
        int fd = (int) syscall(SYS_pidfd_getfd, pidfd, fdnum, 0);

        if (fd < 0)
                return -errno;
        *ret_fd = fd;   /* pidfd_getfd() sets close-on-exec */
        return 0;
}
