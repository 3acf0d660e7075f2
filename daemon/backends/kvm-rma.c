/* The kernel's RMA facility: KVM_CHECK_EXTENSION, KVM_CREATE_VM and KVM_ALLOCATE_RMA. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "cleanup.h"
#include "kvm-rma.h"
#include "log.h"

int kvm_rma_probe(uint32_t *ret_capability) {
        _cleanup_close_ int kvm = open(KVM_RMA_DEVICE, O_RDWR | O_CLOEXEC);
        int r;

        *ret_capability = 0;
        if (kvm < 0)
                return -errno;
        r = ioctl(kvm, KVM_CHECK_EXTENSION, RMA_KVM_CAP_PPC_RMA);
        /* A KVM that does not know the capability answers 0 or EINVAL: no pool either way. */
        *ret_capability = r > 0 ? (uint32_t) r : 0;
        return 0;
}

int kvm_rma_open_vm(int *ret_vm_fd) {
        _cleanup_close_ int kvm = open(KVM_RMA_DEVICE, O_RDWR | O_CLOEXEC);
        int vm;

        if (kvm < 0)
                return log_error_errno(errno, "Cannot open " KVM_RMA_DEVICE ": %m");
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                return log_error_errno(errno, "KVM_CREATE_VM on " KVM_RMA_DEVICE " failed: %m");
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

/* MAP_POPULATE: the kernel maps every page of the RMA up front (kvm_rma_mmap's fault
 * handler, called in a loop inside the kernel, on 3.x as now), instead of one page fault
 * per 4 KiB page taken from user space as memset first touches it: that cost 25x the
 * memset itself (docs/performance.md). */
int kvm_rma_scrub(int fd, uint64_t size) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);

        if (p == MAP_FAILED)
                return log_error_errno(errno, "Cannot map an RMA of %llu bytes to zero it: %m", (unsigned long long) size);
        memset(p, 0, size);
        (void) munmap(p, size);
        return 0;
}
