/* A POSIX access ACL that lets a few more uids than the owner at a file: how the
 * privileged socket (broker-priv.sock) is opened to the QEMU users and nobody else.
 * Written as the kernel's system.posix_acl_access xattr, so no libacl is needed. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Sets path's access ACL to: owner rw, each of uids rw, group and others nothing.
 * path must lie in a directory only the caller can write (no symlink can be swapped in).
 * -EOPNOTSUPP where the filesystem has no POSIX ACLs. */
int file_acl_grant_users(const char *path, const uid_t *uids, size_t n_uids);
