/* The runtime directory (/run/rma-broker): broker.sock, the lease registry and the
 * runtime policy live there, and a restarted broker trusts what it finds in it. So it
 * must be the broker's alone: created 0755 when missing; refused when it is a symlink,
 * not owned by the broker's uid, or writable by group or others, since whoever can write
 * it could put their own listener at broker.sock or their own registry in place.
 *
 * One broker per runtime directory: runtime_dir_prepare() takes a lock on its "lock" file
 * before anything else in it is read or written, and the broker holds it for its life
 * (the returned fd). A second broker refuses there, naming the running one. */
#pragma once

/* The lock fd (>= 0), or a negative errno with a log line saying what is wrong and how to
 * fix it. */
int runtime_dir_prepare(const char *path);
