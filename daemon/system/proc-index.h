/* Who holds which region, read from /proc once per restart.
 *
 * Re-adoption asks the same question for every slot: which process has this inode open
 * or mapped? Asked of /proc per slot, a restart would cost slots x processes. The index
 * is built in one pass over /proc/PID/fd and /proc/PID/maps of every process, and only
 * of what can be a region (a memfd named rma-broker-slot-N, as the broker names every
 * region it makes, or a kvm RMA's anonymous inode): nothing else is stat()ed, so a hung
 * FUSE file elsewhere cannot block the broker. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ProcHolder {
        pid_t pid;
        int fdnum;          /* the fd's number, or -1 for a mapping */
        uint64_t map_start, map_end;
        uint64_t dev, ino;
        bool kvm_rma;       /* anon_inode:kvm-rma: one inode for all, told apart by no one */
        int named_slot;     /* N of a memfd named rma-broker-slot-N (anyone's to choose), else -1 */
} ProcHolder;

typedef struct ProcIndex {
        GArray *holders;     /* ProcHolder, in /proc order: grouped by pid */
        GArray *by_inode;    /* guint indexes into holders, by dev:ino (fds first): no key per holder */
} ProcIndex;

/* One pass over /proc, skipping exclude_pid (the broker itself). */
ProcIndex *proc_index_new(pid_t exclude_pid);
ProcIndex *proc_index_free(ProcIndex *x);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProcIndex, proc_index_free)

/* A holder of the inode; pid > 0: that process's only. NULL when none. An fd is
 * preferred to a mapping (it can be taken with pidfd_getfd). */
const ProcHolder *proc_index_find(const ProcIndex *x, uint64_t dev, uint64_t ino, pid_t pid);
/* A path that reaches the holder's file: /proc/PID/fd/N or /proc/PID/map_files/A-B. */
char *proc_holder_path(const ProcHolder *h);
