/* Where the hook's records are trusted (domain-record.h). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "domain-record-trust.h"
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

/* What domain-record-trust.c found wrong, and the commands that fix it. */
static char *explain(const RecordTrust *t, const char *dir, const char *uuid) {
        g_autofree char *q = rma_shell_quote(dir), *path = NULL, *qpath = NULL;

        switch (t->doubt) {
        case RECORD_DOUBT_DIR_NOT_A_DIR:
                return g_strdup_printf("%s is not a directory (a symlink or another file): remove it (rm %s); "
                                       "the hook makes it again", dir, q);
        case RECORD_DOUBT_DIR_NOT_ROOTS:
                return g_strdup_printf("%s is owned by uid %u with mode %04o: another account could put or remove "
                                       "records there of which domains get an RMA. Make it root's alone (chown 0 %s "
                                       "&& chmod 0755 %s) and remove what other accounts put in it", dir,
                                       (unsigned) t->uid, (unsigned) (t->mode & 07777), q, q);
        case RECORD_DOUBT_FILE_NOT_ROOTS:
                path = rma_domain_record_path(uuid);
                qpath = rma_shell_quote(path);
                return g_strdup_printf("%s is not a record of the hook's (a %s of uid %u with mode %04o): remove "
                                       "it (rm %s)", path, kind(t->mode), (unsigned) t->uid,
                                       (unsigned) (t->mode & 07777), qpath);
        case RECORD_DOUBT_NONE:
                break;
        }
        return NULL;
}

int domain_record_dir_check(char **ret_why) {
        g_autofree char *dir = records_dir();
        RecordTrust t;
        _cleanup_close_ int fd = record_trust_open_dir(dir, &t);

        if (fd == -EPERM)
                *ret_why = explain(&t, dir, NULL);
        return fd == -ENOENT ? 0 : MIN(fd, 0);
}

int domain_record_find(const char *uuid, char **ret_why) {
        g_autofree char *dir = records_dir();
        RecordTrust t;
        int r = record_trust_find(dir, uuid, &t);

        if (r == -EPERM)
                *ret_why = explain(&t, dir, uuid);
        return r;
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
