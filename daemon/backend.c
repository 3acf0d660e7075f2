/* Backend selection: Backend=auto|kvm|hugetlb|memfd, and the host's RMA capability probe. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "backend.h"
#include "cleanup.h"
#include "log.h"

/* Only powerpc's uapi headers define this capability number. */
#define RMA_KVM_CAP_PPC_RMA 65

uint32_t kvm_probe_rma_capability(void) {
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int r;

        if (kvm < 0) {
                log_debug_errno(errno, "Cannot open /dev/kvm (%m): no kernel RMA facility");
                return 0;
        }
        r = ioctl(kvm, KVM_CHECK_EXTENSION, RMA_KVM_CAP_PPC_RMA);
        return r > 0 ? (uint32_t) r : 0;
}

int backend_open(const BrokerConfig *config, Backend **ret) {
        g_autofree Backend *b = g_new0(Backend, 1);
        BackendKind kind = config->backend;
        int r;

        b->kernel_capability = kvm_probe_rma_capability();

        if (kind == BACKEND_AUTO) {
                /* The kvm and hugetlb backends are part of the design (docs/architecture.md)
                 * but not built yet; auto says so plainly instead of pretending. */
                if (b->kernel_capability > 0)
                        log_warning("KVM_CAP_PPC_RMA=%u: the kernel has an RMA pool, but this build has no kvm "
                                    "backend yet; emulating the pool with memfd regions", b->kernel_capability);
                else
                        log_info("KVM_CAP_PPC_RMA=0 (no kernel RMA pool on this host): emulating the pool with memfd regions");
                kind = BACKEND_MEMFD;
        }

        switch (kind) {
        case BACKEND_MEMFD:
                r = backend_memfd_init(b, config->count, config->size);
                break;
        case BACKEND_KVM:
        case BACKEND_HUGETLB:
                return log_error_errno(EOPNOTSUPP, "Backend=%s is not available in this version of rma-brokerd; "
                                       "use Backend=memfd or Backend=auto", backend_kind_to_string(kind));
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;

        *ret = g_steal_pointer(&b);
        return 0;
}

Backend *backend_free(Backend *b) {
        if (!b)
                return NULL;
        if (b->ops && b->ops->destroy)
                b->ops->destroy(b);
        g_free(b);
        return NULL;
}

int backend_new_region(Backend *b, unsigned index, int *ret_fd) {
        return b->ops->new_region(b, index, ret_fd);
}
