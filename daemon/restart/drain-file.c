/* The drain state across restarts: one small file in the runtime dir. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "drain-file.h"
#include "log.h"
#include "regular-file.h"
#include "rma-names.h"
#include "rma-util.h"

#define DRAIN_FILE_MAX 4096

int drain_file_load(const char *runtime_dir, char **ret_reason) {
        g_autofree char *path = g_build_filename(runtime_dir, RMA_DRAIN_FILE_NAME, NULL);
        g_autofree char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        fd = regular_file_open(path);   /* O_NONBLOCK: a FIFO put here must not hang the start */
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                r = fd;
        else if (fstat(fd, &st) < 0)
                r = -errno;
        else   /* root's own file: another owner did not get it from the broker */
                r = st.st_uid != geteuid() ? -EPERM : regular_file_read_fd(fd, DRAIN_FILE_MAX, &text);
        if (r < 0)
                return log_error_errno(r, "%s is not the broker's drain state (a regular file of uid %u, at most %d "
                                       "bytes; here %s): remove it, then rmactl drain if the host should drain",
                                       path, (unsigned) geteuid(), DRAIN_FILE_MAX, regular_file_kind(path));
        text[strcspn(text, "\n")] = '\0';
        if (text[0] && !rma_name_is_valid(text)) {
                /* Still draining: the file says so, only its reason is unreadable. */
                log_warning("%s: the drain reason is not readable text; draining without one", path);
                text[0] = '\0';
        }
        *ret_reason = g_steal_pointer(&text);
        return 1;
}

int drain_file_save(const char *runtime_dir, const char *reason) {
        g_autofree char *path = g_build_filename(runtime_dir, RMA_DRAIN_FILE_NAME, NULL);
        g_autofree char *tmp = g_strconcat(path, ".new", NULL);
        g_autofree char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len;

        if (!reason)
                return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
        text = g_strconcat(reason, "\n", NULL);
        len = strlen(text);
        (void) unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (write(fd, text, len) != (ssize_t) len || rename(tmp, path) < 0) {
                int r = errno ? -errno : -EIO;
                (void) unlink(tmp);
                return r;
        }
        return 0;
}
