/* The trust checks on the hook's domain records (domain-record-trust.h). */
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "cleanup-fd.h"
#include "domain-record-trust.h"

static bool roots_alone(const struct stat *st) {
        return st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

static int doubt(RecordTrust *ret, RecordDoubt what, const struct stat *st) {
        *ret = (RecordTrust) { .doubt = what, .uid = st ? st->st_uid : 0, .mode = st ? st->st_mode : 0 };
        return -EPERM;
}

int record_trust_open_dir(const char *dir, RecordTrust *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        *ret = (RecordTrust) { .doubt = RECORD_DOUBT_NONE };
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ELOOP || errno == ENOTDIR ? doubt(ret, RECORD_DOUBT_DIR_NOT_A_DIR, NULL) : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!roots_alone(&st))
                return doubt(ret, RECORD_DOUBT_DIR_NOT_ROOTS, &st);
        return TAKE_FD(fd);
}

int record_trust_find(const char *dir, const char *uuid, RecordTrust *ret) {
        _cleanup_close_ int fd = record_trust_open_dir(dir, ret);
        struct stat st;

        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return fd;
        if (fstatat(fd, uuid, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISREG(st.st_mode) || !roots_alone(&st))
                return doubt(ret, RECORD_DOUBT_FILE_NOT_ROOTS, &st);
        return 1;
}
