/* The trust checks on the hook's domain records (domain-record.h says why), in plain
 * libc: the wrapper's front (wrapper-front.c) makes the same checks as the full wrapper
 * and the hook, which add the messages (domain-record.c). */
#pragma once

#include <sys/types.h>

typedef enum RecordDoubt {
        RECORD_DOUBT_NONE,
        RECORD_DOUBT_DIR_NOT_A_DIR,   /* domains/ is a symlink or another file */
        RECORD_DOUBT_DIR_NOT_ROOTS,   /* domains/ is not root's alone */
        RECORD_DOUBT_FILE_NOT_ROOTS,  /* the record is not a regular file of root's alone */
} RecordDoubt;

/* What was found where a check failed: the owner and mode (with its type bits). */
typedef struct RecordTrust {
        RecordDoubt doubt;
        uid_t uid;
        mode_t mode;
} RecordTrust;

/* DIR (domains/), opened without following a symlink, if it is root's alone: an fd,
 * -ENOENT when it does not exist, -EPERM with *ret saying why, another negative errno. */
int record_trust_open_dir(const char *dir, RecordTrust *ret);

/* Whether DIR holds a record of the hook's for UUID: 1 yes, 0 none; -EPERM when DIR or the
 * file at the record's path is not root's alone (*ret says which and why), another
 * negative errno when it cannot be told. */
int record_trust_find(const char *dir, const char *uuid, RecordTrust *ret);
