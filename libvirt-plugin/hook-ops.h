/* Which of libvirt's hook calls the hook acts on, in plain libc: the hook and its front
 * (hook-front.c) decide from this one table. */
#pragma once

#include <stdbool.h>

/* A domain XML is a few KiB; the hook and its front buffer no more than this. */
#define HOOK_MAX_XML_BYTES (16u << 20)

/* prepare begin, release end, reconnect begin; every other call exits 0 untouched. */
bool hook_acts_on(const char *op, const char *subop);
