/* The kernel's RMA facility as the host reports it: KVM_CHECK_EXTENSION(KVM_CAP_PPC_RMA).
 * Every host answers it (0 on x86 and on POWER kernels after 3.18); it is shown as the
 * KernelCapability property whatever backend serves the pool. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "backend.h"
#include "cleanup.h"
#include "log.h"

/* Only powerpc's uapi headers define this capability number. */
#define RMA_KVM_CAP_PPC_RMA 65

uint32_t kvm_rma_capability(void) {
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int r;

        if (kvm < 0) {
                log_debug_errno(errno, "Cannot open /dev/kvm (%m): no kernel RMA facility");
                return 0;
        }
        r = ioctl(kvm, KVM_CHECK_EXTENSION, RMA_KVM_CAP_PPC_RMA);
        return r > 0 ? (uint32_t) r : 0;
}
