/* Growing the fd table before the daemon starts threads (see fd-table.h). */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cleanup.h"
#include "fd-table.h"

int fd_table_reserve(unsigned n) {
        _cleanup_close_ int base = -EBADF, high = -EBADF;
        struct rlimit rl;
        rlim_t top = n;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur != RLIM_INFINITY && top > rl.rlim_cur)
                top = rl.rlim_cur;
        if (top < 2)
                return 0;
        base = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (base < 0)
                return -errno;
        high = fcntl(base, F_DUPFD_CLOEXEC, (int) (top - 1));
        return high < 0 ? -errno : 0;
}
