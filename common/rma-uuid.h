/* Textual UUIDs, in plain libc: the wrapper's front links nothing else (rma-paths.h). */
#pragma once

#include "rma-names.h"

/* Validate a textual UUID (any case) and write its canonical lowercase form.
 * Returns 0, or -EINVAL when it is not a UUID. */
int rma_uuid_canonicalize(const char *in, char out[RMA_UUID_STRING_LEN + 1]);
