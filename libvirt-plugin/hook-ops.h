/* Which of libvirt's hook calls the hook acts on, in plain libc: the hook and its front
 * (hook-front.c) decide from this one table. */
#pragma once

#include <stdbool.h>

/* prepare begin, release end, reconnect begin; every other call exits 0 untouched. */
bool hook_acts_on(const char *op, const char *subop);
