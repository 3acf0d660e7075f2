/* One interface for every source of RMA regions (kvm, hugetlb, memfd).
 *
 * A backend knows how many regions the host can hold and makes fresh regions:
 * each new_region() call returns an fd of exactly region_size bytes that no
 * earlier tenant can still see (a new file, or memory the backend has scrubbed).
 * The pool owns every region fd the backend returns. */
#pragma once

#include <stdint.h>

#include "config.h"

typedef struct Backend Backend;

typedef struct BackendOps {
        const char *name;
        /* Make a fresh, zeroed region for pool slot `index`; *ret_fd is owned by the caller.
         * -ENOMEM/-ENOSPC: the host cannot supply one now (slot stays held-elsewhere). */
        int (*new_region)(Backend *b, unsigned index, int *ret_fd);
        void (*destroy)(Backend *b);
} BackendOps;

struct Backend {
        const BackendOps *ops;
        uint64_t region_size;
        unsigned region_count;
        uint32_t kernel_capability;   /* KVM_CAP_PPC_RMA as the host answered: 0, 1 or 2 */
        void *data;
};

/* Choose and open the backend that the config asks for (auto: the best the host has,
 * logging which and why). */
int backend_open(const BrokerConfig *config, Backend **ret);
Backend *backend_free(Backend *b);

int backend_new_region(Backend *b, unsigned index, int *ret_fd);

extern const BackendOps backend_memfd_ops;
int backend_memfd_init(Backend *b, unsigned count, uint64_t size);

/* KVM_CHECK_EXTENSION(KVM_CAP_PPC_RMA) on /dev/kvm; 0 when KVM is absent. */
uint32_t kvm_probe_rma_capability(void);
