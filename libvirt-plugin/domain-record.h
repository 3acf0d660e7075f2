/* The hook's records of the domains it opted in ($RUNTIME_DIR/domains/UUID, written by
 * client/rma-client.c's rma_domain_record_write()), as the hook and the wrapper trust
 * them: only a regular file of root's, that only root can write, in a domains/ that only
 * root can write. Anything else there is not the hook's: another account could have put
 * it there to stop a domain that never asked for an RMA from starting (the wrapper would
 * ask the broker for it), or taken one away. */
#pragma once

/* Whether domains/ is root's alone: 0 (or when it does not exist yet); -EPERM when not,
 * with *ret_why saying what is wrong and the commands that fix it (for stderr). */
int domain_record_dir_check(char **ret_why);

/* Whether the domain has a record the hook wrote: 1 yes, 0 none; -EPERM when domains/ or
 * the file at the record's path is not root's alone (*ret_why as above), another negative
 * errno when it cannot be told. */
int domain_record_find(const char *uuid, char **ret_why);

/* Remove whatever is at the record's path (root: the hook): 1 removed, 0 there was
 * nothing, or a negative errno. */
int domain_record_unlink(const char *uuid);
