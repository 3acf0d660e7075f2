/* What the hook front (hook-front.c) may decide alone at prepare, in plain libc: for a
 * domain whose XML cannot opt it in and that has nothing at its record's path, the full
 * hook (hook.c) would only find that out and exit 0. Every check errs toward the full
 * hook: a false alarm costs one exec, a miss would start an opted-in domain without its
 * RMA or keep a stale record. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "rma-names.h"

/* Whether XML (LEN bytes) may opt its domain in. No, only when it names neither the rma
 * metadata namespace nor Nova's, nor "qemu-rma" (an <emulator> qemu-rma*), and holds
 * nothing that could spell them otherwise for the full hook's parser: a NUL, a character
 * reference ("&#"), a comment or CDATA section ("<!"; GMarkup joins the text around them). */
bool hook_prepare_may_opt_in(const char *xml, size_t len);

/* The domain's uuid, canonical, into OUT: 0 when XML has exactly one element named uuid
 * without a prefix, written <uuid>TEXT</uuid> with TEXT a uuid (spaces around it
 * allowed, as the full hook strips them); -EINVAL for anything else. */
int hook_prepare_find_uuid(const char *xml, size_t len, char out[RMA_UUID_STRING_LEN + 1]);

/* Whether prepare of the domain whose XML this is would leave everything as it is: not
 * opted in, and nothing at its record's path (record_trust_find); false when not sure. */
bool hook_prepare_is_noop(const char *xml, size_t len);
