/* The memfd backend: an emulated fixed pool of sealed anonymous-memory regions.
 *
 * Used where the kernel has no RMA facility (every non-POWER host, and POWER kernels
 * after 3.18), so the broker runs and is tested anywhere. Every lease gets a brand-new
 * memfd: the old one lives on only in its last holder, and the kernel hands out zeroed
 * pages, so nothing leaks between tenants without a scrub pass. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <glib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/sysinfo.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "log.h"
#include "rma-util.h"

static int memfd_new_region(Backend *b, unsigned index, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        char name[64];

        snprintf(name, sizeof(name), "rma-broker-slot-%u", index);
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return log_error_errno(errno, "memfd_create(%s) failed: %m", name);
        if (ftruncate(fd, (off_t) b->region_size) < 0)
                return log_error_errno(errno, "Sizing %s to %llu bytes failed: %m", name,
                                       (unsigned long long) b->region_size);
        /* The region has the size of an RMA for its whole life: no tenant may grow or
         * shrink it, and nobody may lift the seals. */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return log_error_errno(errno, "Sealing %s failed: %m", name);
        /* A mark no tenant can forge, for a restart whose registry record is lost. */
        backend_mark_region(b, index, fd);

        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* A pool the host cannot back is a promise QEMU breaks later (OOM at guest boot):
 * every region may be touched in full, so the pool must fit in the host's memory. */
static int memfd_probe(const BrokerConfig *config, char **why) {
        struct sysinfo si;
        unsigned count = broker_config_count(config, BACKEND_MEMFD);
        uint64_t total, host;
        char a[32], b[32];

        if (count == RMA_COUNT_AUTO) {
                *why = g_strdup("Count=auto needs a pool the host fixes (kvm, or hugetlb with HugePageSize=); "
                                "an emulated memfd pool needs Count=N");
                return -EINVAL;
        }
        if (sysinfo(&si) < 0) {
                *why = g_strdup_printf("sysinfo() failed: %s", g_strerror(errno));
                return -errno;
        }
        host = (uint64_t) si.totalram * si.mem_unit;
        if (__builtin_mul_overflow((uint64_t) count, config->size, &total) || total > host) {
                *why = g_strdup_printf("Count=%u x Size=%s does not fit in this host's %s of memory; lower Count= or "
                                       "Size= in rma-brokerd.conf", count,
                                       rma_format_size(config->size, a, sizeof(a)), rma_format_size(host, b, sizeof(b)));
                return -E2BIG;
        }
        return 0;
}

static int memfd_init(Backend *b, const BrokerConfig *config) {
        b->region_count = b->count;
        b->region_size = config->size;
        return 0;
}

/* Every memfd lives on the kernel's one internal shmem mount: an empty memfd of our own
 * is the anchor open_by_handle_at() needs to resolve a region's handle there. One for
 * the backend's life (b->data holds fd + 1): a restart reopens every leased region. */
static int memfd_reopen(Backend *b, const RegionHandle *h, int *ret_fd) {
        int anchor = GPOINTER_TO_INT(b->data) - 1;

        if (anchor < 0) {
                anchor = memfd_create("rma-broker-anchor", MFD_CLOEXEC);
                if (anchor < 0)
                        return -errno;
                b->data = GINT_TO_POINTER(anchor + 1);
        }
        return region_handle_open(anchor, h, ret_fd);
}

static void memfd_destroy(Backend *b) {
        safe_close(GPOINTER_TO_INT(b->data) - 1);
        b->data = NULL;
}

/* A region that outlived a broker: a sealed memfd of the pool's size. */
static int memfd_verify(Backend *b, int fd) {
        return backend_check_sealed_region(b, fd, TMPFS_MAGIC);
}

const BackendOps backend_memfd_ops = {
        .name = "memfd",
        .kind = BACKEND_MEMFD,
        .release_is_watchable = true,
        .probe = memfd_probe,
        .init = memfd_init,
        .new_region = memfd_new_region,
        .verify = memfd_verify,
        .reopen = memfd_reopen,
        .destroy = memfd_destroy,
};
