/* Check (or create) the runtime directory before anything in it is read or made. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "runtime-dir.h"

#define RUNTIME_POLICY_DIR "policy.d"

/* dirfd/name (NULL: dirfd itself) is a directory of ours that nobody else may write. */
static int check_dir(int dirfd, const char *name, const char *path) {
        struct stat st;

        if (fstatat(dirfd, name ? name : "", &st, AT_SYMLINK_NOFOLLOW | (name ? 0 : AT_EMPTY_PATH)) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(ENOTDIR, "%s is not a directory; remove it so that rma-brokerd can create its "
                                       "runtime directory there", path);
        if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
                return log_error_errno(EPERM, "%s is owned by uid %u with mode %04o: another user could put their own "
                                       "listener at broker.sock or their own lease registry there. Refusing to start; "
                                       "remove it (rm -r %s) or make it the broker's (chown %u %s; chmod 0755 %s)",
                                       path, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777), path,
                                       (unsigned) geteuid(), path, path);
        return 0;
}

int runtime_dir_prepare(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        g_autofree char *policy = NULL;
        int r;

        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Cannot create runtime directory %s: %m", path);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open runtime directory %s (%m); it must be a directory, not a "
                                       "symlink", path);
        r = check_dir(fd, NULL, path);
        if (r < 0)
                return r;
        /* Runtime policy files are applied as the admin's: the same rule for their dir. */
        policy = g_build_filename(path, RUNTIME_POLICY_DIR, NULL);
        r = check_dir(fd, RUNTIME_POLICY_DIR, policy);
        return r == -ENOENT ? 0 : r;
}
