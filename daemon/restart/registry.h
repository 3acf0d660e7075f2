/* The lease registry: what a restarted broker needs to know, under the runtime dir.
 *
 * One fixed-size text record per slot in $RUNTIME_DIR/leases, after a header that names
 * the pool (backend, region size, count, boot). A slot's record is rewritten with one
 * pwrite() whenever the slot changes, before any fd leaves the daemon: a broker killed
 * at any moment leaves every record whole (old or new), and a record is O(1) to write
 * whatever the pool's size. Each record carries a checksum, so a truncated or garbage
 * file is recognised, reported, and never trusted. The file is for rma-brokerd and for
 * admins reading it (`cat /run/rma-broker/leases`); nothing else writes it. */
#pragma once

#include <glib.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pool.h"

#define REGISTRY_FILE_NAME "leases"
/* The checksum of every slot's record as the broker last wrote it ("%016x\n" per slot), in
 * place, beside the registry but not named like it: a backup of leases* restored over the
 * registry does not bring it back, so a record it makes stale is known for one. */
#define REGISTRY_SUMS_FILE_NAME "record-sums"
/* The format: "rma-broker-registry v1 ..." in the header. A broker reads its own version
 * and every earlier one; it refuses to start on a later one (a downgrade with a newer
 * broker's registry in place) and touches nothing of it. */
#define REGISTRY_MAGIC "rma-broker-registry"
#define REGISTRY_VERSION 1u

typedef struct RegistryRecord {
        bool present;                 /* a well-formed record for this slot */
        SlotState state;              /* free, reserved, leased or held-elsewhere */
        char uuid[RMA_UUID_STRING_LEN + 1];
        char *domain;
        char *tenant;
        uid_t reserved_by;
        pid_t pid;
        uint64_t pid_start;           /* the process's start time (clock ticks after boot) */
        uint64_t expires_realtime;    /* CLOCK_REALTIME µs; reserved only */
        uint64_t expires_monotonic;   /* the same in CLOCK_MONOTONIC now; 0 when already past */
        uint64_t region_dev, region_ino;
        RegionHandle region_handle;   /* len 0: none recorded (hugetlb, kvm, an older broker) */
        bool region_unknown;          /* held-elsewhere by a region nobody could name: stays pinned */
        uint64_t sum;                 /* the record's checksum, as sealed */
        bool stale;                   /* not the record the broker last wrote (REGISTRY_SUMS_FILE_NAME) */
} RegistryRecord;

/* What a previous broker left behind. */
typedef struct RegistryContents {
        bool present;                 /* a file was there */
        bool header_valid;
        char *backend;
        uint64_t region_size;
        unsigned count;
        RegistryRecord *records;      /* count entries when header_valid */
        unsigned n_corrupt;           /* records that were there but did not check out */
        unsigned n_stale;             /* well-formed records that are not the last ones written */
        bool other_boot;              /* from another boot: every process and region of it is gone */
        unsigned newer_version;       /* a later format than REGISTRY_VERSION: not to be touched */
        char *problem;                /* one sentence for the log when not all is well, else NULL */
} RegistryContents;

int registry_load(const char *runtime_dir, RegistryContents **ret);
RegistryContents *registry_contents_free(RegistryContents *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RegistryContents, registry_contents_free)

typedef struct Registry Registry;

/* Start a new registry for this pool (the old file is replaced). */
int registry_open(const char *runtime_dir, const Pool *pool, Registry **ret);
Registry *registry_free(Registry *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Registry, registry_free)
/* Record the slot as it is now: one pwrite. Failures are logged once per streak. */
void registry_write_slot(Registry *r, const Slot *s);
/* Is the registry still the broker's file, whole? When root truncated, removed or replaced
 * it, write it again from the pool (logged) and return false. Two fstat, two stat and a pread. */
bool registry_check(Registry *r, const Pool *pool);
/* registry_check(), and every byte of the file compared with what the broker wrote (a
 * pread of the whole file): a stale copy restored in place is written over. For the
 * periodic check, not for every change. */
bool registry_verify(Registry *r, const Pool *pool);
