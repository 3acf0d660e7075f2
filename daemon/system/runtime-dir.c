/* Check (or create) the runtime directory before anything in it is read or made. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "rma-names.h"
#include "rma-util.h"
#include "runtime-dir.h"

#define RUNTIME_POLICY_DIR "policy.d"
#define RUNTIME_LOCK_FILE "lock"

/* What another user could do with a directory of ours that they can write. */
#define RISK_RUNTIME "put their own listener at broker.sock or their own lease registry there"
#define RISK_DOMAINS "put or remove the hook's records there, which decide whether a domain's QEMU asks for an RMA " \
        "(one file of theirs keeps a domain from starting)"

/* dirfd/name (NULL: dirfd itself) is a directory of ours that nobody else may write. */
static int check_dir(int dirfd, const char *name, const char *path, const char *risk) {
        g_autofree char *quoted = rma_shell_quote(path);
        struct stat st;

        if (fstatat(dirfd, name ? name : "", &st, AT_SYMLINK_NOFOLLOW | (name ? 0 : AT_EMPTY_PATH)) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(ENOTDIR, "%s is not a directory (a symlink or a file). Refusing to start; "
                                       "remove it (rm %s) so that it can be made again", path, quoted);
        if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
                return log_error_errno(EPERM, "%s is owned by uid %u with mode %04o: another user could %s. Refusing "
                                       "to start; remove it (rm -r %s) or make it the broker's (chown %u %s; chmod 0755 "
                                       "%s)", path, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777), risk, quoted,
                                       (unsigned) geteuid(), quoted, quoted);
        return 0;
}

/* A POSIX record lock, so that a refused broker can name the holder (F_GETLK gives its pid).
 * Held until the broker exits; the kernel drops it however the broker ends. */
static int take_lock(int dirfd, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        char pid[32];
        int n;

        fd = openat(dirfd, RUNTIME_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s/" RUNTIME_LOCK_FILE ": %m", path);
        if (fcntl(fd, F_SETLK, &lock) < 0) {
                if (errno != EAGAIN && errno != EACCES)
                        return log_error_errno(errno, "Cannot lock %s/" RUNTIME_LOCK_FILE ": %m", path);
                lock = (struct flock) { .l_type = F_WRLCK, .l_whence = SEEK_SET };
                (void) fcntl(fd, F_GETLK, &lock);
                return log_error_errno(EBUSY, "Another rma-brokerd (pid %d) runs on %s; this one touches nothing "
                                       "there and exits. Stop that one first (systemctl stop rma-brokerd.service, or "
                                       "kill %d), or give this one a runtime directory of its own (--runtime-dir=)",
                                       lock.l_type == F_UNLCK ? 0 : (int) lock.l_pid, path,
                                       lock.l_type == F_UNLCK ? 0 : (int) lock.l_pid);
        }
        /* For admins (cat /run/rma-broker/lock); the lock, not this text, is what counts. */
        n = snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t) n, 0) != n)
                log_warning_errno(errno, "Cannot write the pid to %s/" RUNTIME_LOCK_FILE ": %m", path);
        return TAKE_FD(fd);
}

int runtime_dir_prepare(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        g_autofree char *policy = NULL, *domains = NULL;
        int r;

        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Cannot create runtime directory %s: %m", path);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open runtime directory %s (%m); it must be a directory, not a "
                                       "symlink", path);
        r = check_dir(fd, NULL, path, RISK_RUNTIME);
        if (r < 0)
                return r;
        /* Runtime policy files are applied as the admin's: the same rule for their dir. */
        policy = g_build_filename(path, RUNTIME_POLICY_DIR, NULL);
        r = check_dir(fd, RUNTIME_POLICY_DIR, policy, RISK_RUNTIME);
        if (r < 0 && r != -ENOENT)
                return r;
        /* The hook's records, which the wrapper and a rebuild trust: the same rule (the
         * wrapper also ignores them in a domains/ made unsafe later). */
        domains = g_build_filename(path, RMA_DOMAINS_DIR_NAME, NULL);
        r = check_dir(fd, RMA_DOMAINS_DIR_NAME, domains, RISK_DOMAINS);
        if (r < 0 && r != -ENOENT)
                return r;
        return take_lock(fd, path);
}
