/* Processes and their region fds, found again after a restart. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "adopt.h"
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
        /* Signal 0 checks only: ESRCH once it has exited. EPERM (no CAP_KILL, as under the
         * unit, for another user's process) means it is there. */
        return syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0 || errno == EPERM;
}

int proc_find_fd(pid_t pid, uint64_t dev, uint64_t ino, int *ret_fdnum) {
        char path[64];
        DIR *d;
        struct dirent *de;
        int found = -ENOENT;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? -ESRCH : -errno;
        while ((de = readdir(d))) {
                struct stat st;
                char link[64];
                ssize_t n;

                if (de->d_name[0] == '.')
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || (uint64_t) st.st_dev != dev ||
                    (uint64_t) st.st_ino != ino)
                        continue;
                n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
                if (n < 0)
                        continue;
                link[n] = '\0';
                if (g_str_has_prefix(link, "anon_inode:") && !g_str_equal(link, "anon_inode:kvm-rma"))
                        continue;
                found = atoi(de->d_name);
                break;
        }
        closedir(d);
        if (found < 0)
                return found;
        *ret_fdnum = found;
        return 0;
}

int proc_find_mapping(pid_t pid, uint64_t dev, uint64_t ino, char **ret_path) {
        g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int) pid), *data = NULL;
        g_auto(GStrv) lines = NULL;

        if (!g_file_get_contents(path, &data, NULL, NULL))
                return -ESRCH;
        lines = g_strsplit(data, "\n", -1);
        for (char **l = lines; *l && **l; l++) {
                unsigned long long start, end, inode;
                unsigned maj, min;

                if (sscanf(*l, "%llx-%llx %*s %*x %x:%x %llu", &start, &end, &maj, &min, &inode) != 5)
                        continue;
                if (inode == ino && (uint64_t) makedev(maj, min) == dev) {
                        *ret_path = g_strdup_printf("/proc/%d/map_files/%llx-%llx", (int) pid, start, end);
                        return 0;
                }
        }
        return -ENOENT;
}

int pidfd_take_fd(int pidfd, int fdnum, int *ret_fd) {
        int fd = (int) syscall(SYS_pidfd_getfd, pidfd, fdnum, 0);

        if (fd < 0)
                return -errno;
        *ret_fd = fd;   /* pidfd_getfd() sets close-on-exec */
        return 0;
}
