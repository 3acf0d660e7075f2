/* Input validation and parsing shared by the daemon, the client tools and the plugin. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "rma-names.h"
#include "rma-uuid.h"

/* Parse "N", "NK", "NM", "NG", "NT" (binary multiples; an "iB" or "B" after the
 * suffix is accepted). Returns 0, -EINVAL on syntax, -ERANGE on overflow. */
int rma_parse_size(const char *s, uint64_t *ret);

/* Format a byte count as "256 MiB"-style text for messages. */
const char *rma_format_size(uint64_t bytes, char *buf, size_t len);

/* Names of domains and tenants: non-empty, at most RMA_NAME_MAX bytes,
 * valid UTF-8, no control characters. libvirt allows almost anything else. */
bool rma_name_is_valid(const char *name);
/* A Keystone project id: 32 hex digits, dashes allowed between them (UUID form). */
bool rma_project_id_is_valid(const char *id);

/* The time of a clock in microseconds (sd-event's unit). */
uint64_t rma_now_usec(clockid_t clock);
/* FNV-1a, 64 bits: the lease registry's record checksum (and its tests'). */
uint64_t rma_fnv1a(const char *data, size_t n);

/* A '#' after whitespace inside a GKeyFile value: an admin meant a comment, but GKeyFile
 * has comments only on lines of their own. */
bool rma_value_has_inline_comment(const char *value);

/* WORD quoted for a POSIX shell (as Python's shlex.quote), for every name or path in a
 * command a message tells an admin to run: pasted, it is one argument, whatever it holds.
 * Returns a new string (g_free()). */
char *rma_shell_quote(const char *word);

/* QEMU 7.2 and libvirt 9.0 size pseries boot memory and NUMA nodes in steps of 256 MiB,
 * and the RMA is a guest's boot memory: sizes not a multiple of it serve no guest. */
#define RMA_PSERIES_STEP (UINT64_C(256) << 20)

/* Why no pseries guest can use RMAs of SIZE and what to do, in one sentence (g_free()),
 * or NULL when they can. from_kernel: the host's kernel gives the size (kvm backend), so
 * the fix is its kvm_rma_size=, not Size=. */
char *rma_size_unusable_why(uint64_t size, bool from_kernel);
