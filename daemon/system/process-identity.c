/* Processes and their region fds, found again after a restart. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
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

/* PIDFD_GET_INFO (Linux 6.13), as <linux/pidfd.h> has it: its first version, 64 bytes. */
#define PIDFS_IOCTL_MAGIC_ 0xFF
#define PIDFD_INFO_CREDS_ (1UL << 1)
struct pidfd_info_v0 {
        uint64_t mask;
        uint64_t cgroupid;
        uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
        uint32_t spare0[1];
};
#define PIDFD_GET_INFO_ _IOWR(PIDFS_IOCTL_MAGIC_, 11, struct pidfd_info_v0)

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

/* From /proc/PID/status (/proc/PID itself is root's for a process that is not dumpable). */
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

int process_effective_uid(pid_t pid, int pidfd, uid_t *ret) {
        struct pidfd_info_v0 info = { .mask = PIDFD_INFO_CREDS_ };

        /* One ioctl where the kernel has it; the status file (a dozen syscalls, and the
         * kernel's walk of the process's memory counters) before Linux 6.13. */
        if (ioctl(pidfd, PIDFD_GET_INFO_, &info) == 0 && (info.mask & PIDFD_INFO_CREDS_)) {
                *ret = (uid_t) info.euid;
                return 0;
        }
        if (errno == ESRCH)
                return -ESRCH;
        return proc_effective_uid(pid, ret);
}

int pidfd_take_fd(int pidfd, int fdnum, int *ret_fd) {
        int fd = (int) syscall(SYS_pidfd_getfd, pidfd, fdnum, 0);

        if (fd < 0)
                return -errno;
        *ret_fd = fd;   /* pidfd_getfd() sets close-on-exec */
        return 0;
}
