/* One interface for every source of RMA regions (kvm, hugetlb, memfd).
 *
 * A backend knows how many regions the host can hold and makes fresh regions: each
 * new_region() call returns an fd of exactly region_size bytes that no earlier tenant
 * can still see (a new file, or memory the backend has scrubbed). The pool owns every
 * region fd the backend returns. The generic code knows only this table; probing and
 * everything specific to a kind of region lives in the backend's own file. */
#pragma once

#include <glib.h>

#include <stdbool.h>
#include <stdint.h>

#include "broker-config.h"
#include "region-handle.h"
#include "rma-names.h"

/* The mark a backend puts on a region it made, where the filesystem allows: an xattr in
 * the trusted namespace, which only CAP_SYS_ADMIN may set (or read), holding "slot=N
 * pool=DEV:INO" (the runtime dir's inode: which broker of this host made it). Without
 * CAP_SYS_ADMIN (the shipped unit), the same text in the user namespace with " mac=" and
 * an HMAC-SHA256 of it and the region's own dev:ino, keyed by $RUNTIME_DIR/mark.key (root's,
 * 0600, kept across restarts): a tenant cannot set it on the broker's regions (root's, mode
 * 0000), and a copy on a memfd of its own fails the MAC (another inode). A region's name
 * is anyone's to copy; this mark is not. */
#define REGION_MARK_XATTR "trusted.rma-broker"
#define REGION_MARK_USER_XATTR "user.rma-broker"
#define REGION_MARK_KEY_FILE "mark.key"
#define REGION_MARK_KEY_SIZE 32

typedef struct Backend Backend;

typedef struct BackendOps {
        const char *name;
        BackendKind kind;
        /* The regions are files whose end the kernel reports through inotify
         * (IN_DELETE_SELF once no fd and no mapping is left anywhere): memfd and hugetlb.
         * A kvm RMA is one of many anonymous inodes; the kernel tells its return only by
         * KVM_ALLOCATE_RMA succeeding again. */
        bool release_is_watchable;
        /* The host sets the region size (a kvm RMA is the kernel's size), not Size=. */
        bool size_from_host;
        /* Can this host serve the pool the config asks for? 0 when it can; else a negative
         * errno and *why, one sentence for the log saying what is missing. */
        int (*probe)(const BrokerConfig *config, char **why);
        /* Size the pool (region_count, region_size) and set up what the backend needs. */
        int (*init)(Backend *b, const BrokerConfig *config);
        /* Make a fresh, zeroed region for pool slot `index`; *ret_fd is owned by the caller.
         * -ENOMEM/-ENOSPC: the host cannot supply one now (slot stays held-elsewhere).
         * Runs on the region worker thread (it may zero hundreds of MiB), and on the
         * event loop only while the pool is first filled. */
        int (*new_region)(Backend *b, unsigned index, int *ret_fd);
        /* Check that an fd that outlived a broker (fd store, pidfd_getfd) is one of this
         * backend's regions of this pool's size: 0, or -EINVAL/-EBADF with a log line. */
        int (*verify)(Backend *b, int fd);
        /* Reopen a region by its kernel handle (region-handle.h), or NULL where the
         * regions have none: *ret_fd, or -ESTALE once the region is gone. */
        int (*reopen)(Backend *b, const RegionHandle *h, int *ret_fd);
        void (*destroy)(Backend *b);
} BackendOps;

struct Backend {
        const BackendOps *ops;
        uint64_t region_size;
        unsigned region_count;
        unsigned count;               /* the Count= in effect: RMA_COUNT_AUTO or how many were asked for */
        uint32_t kernel_capability;   /* KVM_CAP_PPC_RMA as the host answered: 0, 1 or 2 */
        unsigned min_count;           /* backend_open()'s: a restarted pool's size (Count=auto) */
        bool taking_over;             /* a restart: regions may all be in QEMUs and the fd store */
        uint64_t restart_region_size; /* the last broker's region size, 0 when unknown */
        char pool_id[48];             /* the runtime dir's "dev:ino": which broker's pool, in region marks */
        guint8 mark_key[REGION_MARK_KEY_SIZE]; /* for user-namespace marks; all zero when it could not be had */
        bool have_mark_key;
        void *data;
};

/* Choose and open the backend that the config asks for (auto: the first in order of
 * preference whose probe succeeds, logging which and why). min_count: with Count=auto,
 * the pool a restarted broker must keep (regions its QEMUs hold are not in the host's
 * pool now), 0 on a fresh start. */
int backend_open(const BrokerConfig *config, unsigned min_count, uint64_t restart_region_size, Backend **ret);

/* The test-only setting that lets a memfd or hugetlb pool have regions no pseries guest can
 * use (not a multiple of 256 MiB): the suite's small pools. */
#define RMA_TEST_SMALL_RMAS_ENV "RMA_BROKER_TEST_SMALL_RMAS"
/* 0 when pseries guests can use the region size, or the kernel's RMAs are what they are
 * (a warning says what to boot with); -EINVAL (logged, with the sizes that work) for a
 * Size= they cannot use (guest-size.c). */
int backend_check_guest_size(const Backend *b);
Backend *backend_free(Backend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Backend, backend_free)

int backend_new_region(Backend *b, unsigned index, int *ret_fd);
int backend_verify_region(Backend *b, int fd);
/* The region named by h, checked as verify does: 0 and *ret_fd; -ESTALE when it is proven
 * gone; -EOPNOTSUPP when this backend cannot tell (no handles: hugetlb, kvm). */
int backend_reopen_region(Backend *b, const RegionHandle *h, int *ret_fd);
/* What a region's mark says, checked: its slot, and once it was leased, the lease's uuid
 * and tenant (the mark is rewritten when the region leaves the broker). */
typedef struct RegionMark {
        unsigned slot;
        bool leased;
        char uuid[RMA_UUID_STRING_LEN + 1];
        char tenant[RMA_NAME_MAX + 1];
} RegionMark;
/* The slot a region's mark (REGION_MARK_XATTR) names, or -ENODATA. A mark names its pool
 * too (Backend.pool_id): another broker's region on the same host is not ours. fd may be
 * an O_PATH reference. */
int backend_region_mark(const Backend *b, int fd);
/* The whole mark, checked as backend_region_mark() does: 0, or -ENODATA. */
int backend_region_mark_read(const Backend *b, int fd, RegionMark *ret);
/* Mark a region as it leaves the broker for a lease (slot, pool, uuid, tenant), then make
 * it mode 0666 (free regions are 0600): QEMU reopens it by path; nothing executes it. */
void backend_mark_lease(const Backend *b, unsigned index, int fd, const char *uuid, const char *tenant);
/* The mark a region of slot index gets: "slot=N pool=ID". */
void backend_region_mark_text(const Backend *b, unsigned index, char *buf, size_t size);
/* Mark a region the backend just made (trusted, else the user mark with its MAC); a
 * region that cannot be marked is found by the fd store and its handle only (logged). */
void backend_mark_region(const Backend *b, unsigned index, int fd);
/* For backends whose regions are sealed files (memfd, hugetlb): 0 when fd is a file of
 * the filesystem fs_magic (statfs f_type: TMPFS_MAGIC, HUGETLBFS_MAGIC), carries the
 * grow, shrink and seal seals and has this pool's region size; else -errno, logged. */
int backend_check_sealed_region(const Backend *b, int fd, long fs_magic);

extern const BackendOps backend_kvm_ops;
extern const BackendOps backend_hugetlb_ops;
extern const BackendOps backend_memfd_ops;
