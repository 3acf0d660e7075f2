/* Where the hook's records are trusted (domain-record.h). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "domain-record.h"
#include "rma-client.h"
#include "rma-util.h"

static char *records_dir(void) {
        g_autofree char *any = rma_domain_record_path("-");

        return g_path_get_dirname(any);
}

static const char *kind(mode_t mode) {
        return S_ISREG(mode) ? "file" : S_ISDIR(mode) ? "directory" : S_ISLNK(mode) ? "symlink" : "special file";
}

static bool roots_alone(const struct stat *st) {
        return st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* domains/, opened without following a symlink, if it is root's alone: an fd, -ENOENT
 * when it does not exist, -EPERM with *ret_why. */
static int open_dir(char **ret_why) {
        g_autofree char *dir = records_dir(), *q = rma_shell_quote(dir);
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
                *ret_why = g_strdup_printf("%s is not a directory (a symlink or another file): remove it (rm %s); "
                                           "the hook makes it again", dir, q);
                return -EPERM;
        }
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!roots_alone(&st)) {
                *ret_why = g_strdup_printf("%s is owned by uid %u with mode %04o: another account could put or remove "
                                           "records there of which domains get an RMA. Make it root's alone (chown 0 %s "
                                           "&& chmod 0755 %s) and remove what other accounts put in it", dir,
                                           (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777), q, q);
                return -EPERM;
        }
        return TAKE_FD(fd);
}

int domain_record_dir_check(char **ret_why) {
        _cleanup_close_ int fd = open_dir(ret_why);

        return fd == -ENOENT ? 0 : MIN(fd, 0);
}

int domain_record_find(const char *uuid, char **ret_why) {
        _cleanup_close_ int fd = open_dir(ret_why);
        struct stat st;

        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return fd;
        if (fstatat(fd, uuid, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISREG(st.st_mode) || !roots_alone(&st)) {
                g_autofree char *path = rma_domain_record_path(uuid), *q = rma_shell_quote(path);
                *ret_why = g_strdup_printf("%s is not a record of the hook's (a %s of uid %u with mode %04o): remove "
                                           "it (rm %s)", path, kind(st.st_mode), (unsigned) st.st_uid,
                                           (unsigned) (st.st_mode & 07777), q);
                return -EPERM;
        }
        return 1;
}

int domain_record_unlink(const char *uuid) {
        g_autofree char *dir = records_dir();
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        /* No domains/ (or not a directory of its own): no record in it either. */
        if (fd < 0)
                return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? 0 : -errno;
        if (unlinkat(fd, uuid, 0) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 1;
}
