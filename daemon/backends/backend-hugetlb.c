/* The hugetlb backend: the modern fixed pool, boot-reserved huge pages.
 *
 * One memfd_create(MFD_HUGETLB) per region, sized and fallocated so that its pages are
 * owned from the start, and sealed against grow and shrink. The host's reservation
 * (/sys/kernel/mm/hugepages/hugepages-<kB>kB) is the truth about capacity: a region
 * whose pages are not there now leaves its slot held-elsewhere, never fails the start.
 * As with memfd every lease gets a fresh file: the kernel zeroes huge pages it hands out,
 * and the old file's pages go back to the pool only when its last holder is gone. */
#include <errno.h>
#include <linux/magic.h>
#include <fcntl.h>
#include <glib.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "log.h"
#include "rma-util.h"

static int read_sys_count(uint64_t page_size, const char *what, uint64_t *ret) {
        g_autofree char *path = g_strdup_printf("/sys/kernel/mm/hugepages/hugepages-%" G_GUINT64_FORMAT "kB/%s",
                                                page_size >> 10, what);
        g_autofree char *text = NULL;
        guint64 n;

        if (!g_file_get_contents(path, &text, NULL, NULL) || !g_ascii_string_to_unsigned(g_strstrip(text), 10, 0,
                                                                                          G_MAXUINT64, &n, NULL))
                return -ENOENT;
        *ret = n;
        return 0;
}

static int hugetlb_probe(const BrokerConfig *config, char **why) {
        uint64_t free_pages = 0;
        char a[32], b[32];

        if (config->huge_page_size == 0) {
                *why = g_strdup("no HugePageSize= is set");
                return -ENODEV;
        }
        if (config->size % config->huge_page_size != 0) {
                *why = g_strdup_printf("Size=%s is not a multiple of HugePageSize=%s",
                                       rma_format_size(config->size, a, sizeof(a)),
                                       rma_format_size(config->huge_page_size, b, sizeof(b)));
                return -EINVAL;
        }
        if (read_sys_count(config->huge_page_size, "free_hugepages", &free_pages) < 0) {
                *why = g_strdup_printf("this kernel has no huge pages of %s (no /sys/kernel/mm/hugepages/hugepages-%"
                                       G_GUINT64_FORMAT "kB)", rma_format_size(config->huge_page_size, a, sizeof(a)),
                                       config->huge_page_size >> 10);
                return -ENODEV;
        }
        if (free_pages * config->huge_page_size < config->size) {
                *why = g_strdup_printf("%" G_GUINT64_FORMAT " free huge pages of %s hold no region of %s; reserve "
                                       "more (hugepages= on the kernel command line, or vm.nr_hugepages)", free_pages,
                                       rma_format_size(config->huge_page_size, a, sizeof(a)),
                                       rma_format_size(config->size, b, sizeof(b)));
                return -ENOSPC;
        }
        return 0;
}

static int hugetlb_init(Backend *b, const BrokerConfig *config) {
        uint64_t free_pages = 0, fits;
        char a[32], a2[32];

        b->region_size = config->size;
        b->data = GSIZE_TO_POINTER(config->huge_page_size);
        (void) read_sys_count(config->huge_page_size, "free_hugepages", &free_pages);
        fits = free_pages * config->huge_page_size / config->size;
        if (b->count == RMA_COUNT_AUTO) {
                /* The probe saw room for one region at least. */
                b->region_count = (unsigned) MIN(MAX(fits, 1), RMA_MAX_COUNT);
                log_info("Count=auto: the free huge pages of %s hold %u regions of %s", rma_format_size(config->huge_page_size, a, sizeof(a)),
                         b->region_count, rma_format_size(config->size, a2, sizeof(a2)));
                return 0;
        }
        b->region_count = b->count;
        if (fits < b->count)
                /* Never hidden: the missing slots count as held-elsewhere (HeldElsewhereRmas). */
                log_warning("Count=%u regions of %s configured, but the free huge pages hold %" G_GUINT64_FORMAT
                            " now; the other %" G_GUINT64_FORMAT " slots stay held-elsewhere until pages are reserved",
                            b->count, rma_format_size(config->size, a, sizeof(a)), fits, b->count - fits);
        return 0;
}

static int hugetlb_new_region(Backend *b, unsigned index, int *ret_fd) {
        uint64_t page = GPOINTER_TO_SIZE(b->data);
        unsigned shift = (unsigned) __builtin_ctzll(page);
        _cleanup_close_ int fd = -EBADF;
        char name[64];

        snprintf(name, sizeof(name), "rma-broker-slot-%u", index);
        fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | (shift << MFD_HUGE_SHIFT));
        if (fd < 0)
                return log_error_errno(errno, "memfd_create(%s, MFD_HUGETLB) failed: %m", name);
        if (ftruncate(fd, (off_t) b->region_size) < 0)
                return log_error_errno(errno, "Sizing %s to %llu bytes failed: %m", name,
                                       (unsigned long long) b->region_size);
        /* Own the pages now: a region is only a region if its memory is there. */
        if (fallocate(fd, 0, 0, (off_t) b->region_size) < 0)
                return errno == ENOSPC || errno == ENOMEM ? -ENOSPC
                                                          : log_error_errno(errno, "fallocate of %s failed: %m", name);
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return log_error_errno(errno, "Sealing %s failed: %m", name);
        /* hugetlbfs keeps no xattrs: this sets only the mode a free region has. */
        backend_mark_region(b, index, fd);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int hugetlb_verify(Backend *b, int fd) {
        return backend_check_sealed_region(b, fd, HUGETLBFS_MAGIC);
}

const BackendOps backend_hugetlb_ops = {
        .name = "hugetlb",
        .kind = BACKEND_HUGETLB,
        .release_is_watchable = true,
        .probe = hugetlb_probe,
        .init = hugetlb_init,
        .new_region = hugetlb_new_region,
        .verify = hugetlb_verify,
        .destroy = NULL,
};
