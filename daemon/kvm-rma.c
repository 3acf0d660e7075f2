/* The kernel's RMA facility: KVM_CHECK_EXTENSION, KVM_CREATE_VM and KVM_ALLOCATE_RMA. */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>

#include "cleanup.h"
#include "kvm-rma.h"
#include "log.h"

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

int kvm_rma_open_vm(int *ret_vm_fd) {
        _cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int vm;

        if (kvm < 0)
                return log_error_errno(errno, "Cannot open /dev/kvm: %m");
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                return log_error_errno(errno, "KVM_CREATE_VM on /dev/kvm failed: %m");
        *ret_vm_fd = vm;
        return 0;
}

int kvm_rma_allocate(int vm_fd, int *ret_fd, uint64_t *ret_size) {
        struct rma_kvm_allocate_rma rma = { 0 };
        int fd = ioctl(vm_fd, RMA_KVM_ALLOCATE_RMA, &rma);

        if (fd < 0)
                return -errno;
        /* The kernel's anon_inode_getfd() gave it without O_CLOEXEC: no helper the
         * broker might ever spawn may inherit a tenant's memory. */
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        *ret_fd = fd;
        *ret_size = rma.rma_size;
        return 0;
}
