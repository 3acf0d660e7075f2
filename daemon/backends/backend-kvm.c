/* The kvm backend: the kernel's own pool of RMAs (KVM_ALLOCATE_RMA, POWER, Linux 3.0-3.18).
 *
 * The kernel reserves the pool at boot (kvm_rma_count=, kvm_rma_size=) and hands out one
 * RMA per KVM_ALLOCATE_RMA as an anonymous-inode fd. The broker drains the pool at start
 * and holds every RMA, so no QEMU can take one behind its back. Two kernel facts shape
 * the rest: the kernel takes an RMA back only when no fd and no mapping of it is left in
 * any process, and it never zeroes one. So a slot whose lease ended is refilled by asking
 * the kernel again (the slot is held-elsewhere while the pool is empty, the old tenant's
 * last holder still living), and every RMA is zeroed here before a tenant sees it. Both
 * run on the region worker thread, never on the event loop. */
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend.h"
#include "cleanup.h"
#include "kvm-rma.h"
#include "log.h"
#include "rma-util.h"

typedef struct KvmPool {
        int vm_fd;
        GArray *drained;     /* fds taken at start, handed to the first fill in order */
        unsigned next;
} KvmPool;

#define KVM_OTHER_BACKENDS "use Backend=hugetlb with HugePageSize=, or Backend=memfd"

/* Each way a host can lack the pool gets its own sentence: the admin's next step differs. */
static int kvm_probe(const BrokerConfig *config, char **why) {
        uint32_t cap = 0;
        int r = kvm_rma_probe(&cap);

        (void) config;
        switch (r) {
        case 0:
                break;
        case -ENOENT:
        case -ENXIO:
        case -ENODEV:
                /* ENXIO, ENODEV: the node is there (a static /dev, a container's) but no module answers it. */
                *why = g_strdup_printf(KVM_RMA_DEVICE " %s (%s): the kvm module is not loaded. On a POWER "
                                       "host with an RMA pool (Linux 3.0 to 3.18 booted with kvm_rma_count=), run "
                                       "modprobe kvm_hv; on any other host " KVM_OTHER_BACKENDS,
                                       r == -ENOENT ? "does not exist" : "has no driver behind it", g_strerror(-r));
                return -ENODEV;
        case -EACCES:
        case -EPERM:
                *why = g_strdup_printf(KVM_RMA_DEVICE " exists but cannot be opened (%s): run rma-brokerd as root, and "
                                       "let its unit open the device (DeviceAllow=" KVM_RMA_DEVICE " rw; see "
                                       "systemctl cat rma-brokerd.service)", g_strerror(-r));
                return r;
        default:
                *why = g_strdup_printf("cannot open " KVM_RMA_DEVICE " (%s); if this host has no RMA pool, "
                                       KVM_OTHER_BACKENDS, g_strerror(-r));
                return r;
        }
        if (cap == 0) {
                *why = g_strdup("KVM_CAP_PPC_RMA=0: this kernel has no RMA pool (every non-POWER host, and POWER "
                                "kernels since 3.19); " KVM_OTHER_BACKENDS);
                return -ENODEV;
        }
        *why = g_strdup_printf("KVM_CAP_PPC_RMA=%u: this kernel has an RMA pool%s", cap,
                               cap == 2 ? " and every guest needs an RMA (PPC970)" : "");
        return 0;
}

/* Zero a whole RMA: the kernel hands back whatever its last tenant left in it. */

static int check_size(uint64_t size, uint64_t want) {
        char a[32], b[32];

        if (size < RMA_MIN_SIZE || size > RMA_MAX_SIZE || (size & (size - 1)) != 0)
                return log_error_errno(EIO, "KVM_ALLOCATE_RMA returned rma_size=%llu, which is not a power of two "
                                       "from 1M to 1T; this kernel's RMA pool cannot be used",
                                       (unsigned long long) size);
        if (want != 0 && size != want)
                return log_error_errno(EIO, "KVM_ALLOCATE_RMA returned an RMA of %s after ones of %s; a pool of "
                                       "mixed sizes cannot be brokered", rma_format_size(size, a, sizeof(a)),
                                       rma_format_size(want, b, sizeof(b)));
        return 0;
}

static int kvm_init(Backend *b, const BrokerConfig *config) {
        KvmPool *k = g_new0(KvmPool, 1);
        unsigned want = b->count == RMA_COUNT_AUTO ? RMA_MAX_COUNT : b->count;
        char a[32], c[32];
        int r;

        k->vm_fd = -EBADF;
        k->drained = g_array_new(FALSE, FALSE, sizeof(int));
        b->data = k;
        r = kvm_rma_open_vm(&k->vm_fd);
        if (r < 0)
                return r;
        while (k->drained->len < want) {
                uint64_t size = 0;
                int fd = -EBADF;

                r = kvm_rma_allocate(k->vm_fd, &fd, &size);
                if (r == -ENOMEM)
                        break;
                if (r < 0)
                        return log_error_errno(r, "KVM_ALLOCATE_RMA failed: %m");
                g_array_append_val(k->drained, fd);
                r = check_size(size, b->region_size);
                if (r < 0)
                        return r;
                b->region_size = size;
        }
        /* A restarted broker's RMAs may all be in running QEMUs and in the fd store: the
         * size is then the one they have. */
        if (k->drained->len == 0 && b->taking_over && b->restart_region_size != 0)
                b->region_size = b->restart_region_size;
        if (k->drained->len == 0 && b->region_size == 0)
                return log_error_errno(ENOSPC, "The kernel's RMA pool is empty (KVM_ALLOCATE_RMA: ENOMEM): every RMA "
                                       "is held by another process, another rma-brokerd or a QEMU that took its own; "
                                       "the pool is sized at boot with kvm_rma_count=");
        b->region_count = b->count == RMA_COUNT_AUTO ? k->drained->len : b->count;
        if (config->size != b->region_size)
                log_info("The kernel's RMAs are %s each (kvm_rma_size= at boot); Size=%s does not apply to Backend=kvm",
                         rma_format_size(b->region_size, a, sizeof(a)), rma_format_size(config->size, c, sizeof(c)));
        if (k->drained->len < b->region_count)
                /* Never hidden: the missing slots count as held-elsewhere (HeldElsewhereRmas). */
                log_warning("Count=%u, but the kernel's RMA pool gave %u now; the other %u slots stay held-elsewhere "
                            "until their RMAs come back to the kernel", b->count, k->drained->len,
                            b->region_count - k->drained->len);
        else
                log_info("Took %u RMAs of %s from the kernel's pool (KVM_CAP_PPC_RMA=%u)", k->drained->len,
                         rma_format_size(b->region_size, a, sizeof(a)), b->kernel_capability);
        return 0;
}

static int kvm_new_region(Backend *b, unsigned index, int *ret_fd) {
        KvmPool *k = b->data;
        _cleanup_close_ int fd = -EBADF;
        uint64_t size = 0;
        int r;

        (void) index;
        if (k->next < k->drained->len) {
                fd = g_array_index(k->drained, int, k->next);
                g_array_index(k->drained, int, k->next++) = -EBADF;
        } else {
                r = kvm_rma_allocate(k->vm_fd, &fd, &size);
                if (r < 0)
                        /* ENOMEM: every RMA is held; the old tenant's last holder lives on. */
                        return r == -ENOMEM ? r : log_error_errno(r, "KVM_ALLOCATE_RMA failed: %m");
                r = check_size(size, b->region_size);
                if (r < 0)
                        return r;
        }
        r = kvm_rma_scrub(fd, b->region_size);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* An RMA fd that outlived a broker: all the kernel lets us check is that it maps a
 * region of the pool's size (an anonymous inode has no name or size of its own). */
static int kvm_verify(Backend *b, int fd) {
        void *p = mmap(NULL, b->region_size, PROT_READ, MAP_SHARED, fd, 0);

        if (p == MAP_FAILED)
                return log_warning_errno(errno, "fd %d does not map an RMA of %llu bytes: %m", fd,
                                         (unsigned long long) b->region_size);
        (void) munmap(p, b->region_size);
        return 0;
}

static void kvm_destroy(Backend *b) {
        KvmPool *k = b->data;

        if (!k)
                return;
        for (unsigned i = k->next; i < k->drained->len; i++)
                safe_close(g_array_index(k->drained, int, i));
        g_array_free(k->drained, TRUE);
        safe_close(k->vm_fd);
        g_free(k);
        b->data = NULL;
}

const BackendOps backend_kvm_ops = {
        .name = "kvm",
        .kind = BACKEND_KVM,
        .release_is_watchable = false,
        .size_from_host = true,
        .probe = kvm_probe,
        .init = kvm_init,
        .new_region = kvm_new_region,
        .verify = kvm_verify,
        .destroy = kvm_destroy,
};
