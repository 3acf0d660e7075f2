/* systemd's fd store: every region fd survives a restart of the broker in PID 1.
 *
 * Under systemd (NOTIFY_SOCKET set, FileDescriptorStoreMax= in the unit), each slot's
 * region fd is stored as FDNAME=region-N whenever the slot gets a region, and removed
 * when it gives one up: the free ones too, so that a restarted broker finds the kvm and
 * hugetlb pools without going back to the kernel. At start, the fds systemd passes back
 * (LISTEN_FDS, with names) are sorted: region-N per slot, broker.sock from
 * rma-brokerd.socket; anything else is closed. Without systemd this does nothing. */
#pragma once

#include <glib.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct FdStore FdStore;

/* Take the fds systemd passed (none without systemd). */
int fd_store_new(FdStore **ret);
FdStore *fd_store_free(FdStore *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FdStore, fd_store_free)
/* Storing is on: under systemd's notify protocol. */
bool fd_store_enabled(const FdStore *s);
/* The stored region fd of a slot (ownership passes to the caller), or -EBADF. */
int fd_store_take_region(FdStore *s, unsigned slot);
bool fd_store_has_region(const FdStore *s, unsigned slot);
/* The stored region fd of a slot, still owned by the store, or -EBADF. */
int fd_store_peek_region(const FdStore *s, unsigned slot);
/* The highest slot with a stored region + 1 (0: none). */
unsigned fd_store_region_slots(const FdStore *s);
/* The broker.sock listening fd from socket activation (owned by the caller), or -EBADF. */
int fd_store_take_listener(FdStore *s);
/* Close (and drop from systemd's store) every passed fd nobody took; returns how many. */
unsigned fd_store_close_unexplained(FdStore *s);
/* Keep the slot's store entry true: store fd (not consumed) as region-N if the slot's
 * region changed (identified by its inode), or drop the entry when fd < 0. */
void fd_store_sync_slot(FdStore *s, unsigned slot, int fd, uint64_t region_ino);
