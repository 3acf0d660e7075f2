/* The kernel's RMA facility at the ioctl boundary (Linux 3.0 to 3.18, book3s_hv only).
 *
 * Only powerpc's uapi headers declare these, so they are spelled out here. This file is
 * the one place that issues them: tests play a POWER kernel for the unmodified daemon by
 * answering exactly these ioctls (tests/helpers/rma-fake-power-kernel.c). */
#pragma once

#include <linux/kvm.h>
#include <stdint.h>

#define RMA_KVM_CAP_PPC_RMA 65

struct rma_kvm_allocate_rma {
        __u64 rma_size;
};

#define RMA_KVM_ALLOCATE_RMA _IOR(KVMIO, 0xa9, struct rma_kvm_allocate_rma)

#define KVM_RMA_DEVICE "/dev/kvm"

/* KVM_CHECK_EXTENSION(KVM_CAP_PPC_RMA) on /dev/kvm. 0 with *ret_capability 0 (no pool;
 * every x86 host and every kernel after 3.18), 1 (RMAs usable, VRMA also possible) or 2
 * (every guest needs one, PPC970). -errno of the open when /dev/kvm cannot be opened
 * (-ENOENT: no such node, the module is not loaded; -EACCES/-EPERM: permissions or the
 * device cgroup), *ret_capability then 0. */
int kvm_rma_probe(uint32_t *ret_capability);
/* Open /dev/kvm and create the VM that KVM_ALLOCATE_RMA is asked on. */
int kvm_rma_open_vm(int *ret_vm_fd);
/* One RMA from the kernel's pool: an fd (made close-on-exec here) and its size.
 * -ENOMEM: the pool is empty, every RMA is held by some process. */
int kvm_rma_allocate(int vm_fd, int *ret_fd, uint64_t *ret_size);
/* Zero an RMA through a shared mapping of it: the kernel never zeroes one, and the next
 * tenant must not see the last one's memory. Runs on the region worker thread. */
int kvm_rma_scrub(int fd, uint64_t size);
