/* $RUNTIME_DIR/drain: present while the host is draining (rmactl drain), its one line the
 * reason. Kept beside the lease registry so that a restart or an upgrade of the broker
 * keeps draining; a reboot ends it, with the maintenance it was for. */
#pragma once

/* 1 and *ret_reason (may be "") while draining, 0 when not. A file that is not a regular
 * file of the broker's (another file type, another owner, too long) is an error, logged
 * with the fix: never opened in a way that could block. */
int drain_file_load(const char *runtime_dir, char **ret_reason);
/* Record a drain with reason, or none (NULL): written beside and renamed over, so a
 * crash leaves the old state or the new one. */
int drain_file_save(const char *runtime_dir, const char *reason);
