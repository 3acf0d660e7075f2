/* What the wrapper and its front (wrapper-front.c) read of the argv libvirt gives them,
 * and how they hand the process on, in plain libc. */
#pragma once

#include <stdbool.h>

/* The value of "-uuid X", or NULL when absent (libvirt is probing capabilities). */
const char *qemu_cmdline_find_uuid(char *const *argv);

/* Invoked as libvirt's default emulator (a qemu-system-* name), not as a domain's
 * explicit <emulator>. */
bool qemu_is_default_emulator(const char *argv0);

/* Exec the real QEMU ($RMA_QEMU_BINARY, or the build's) with ARGV, argv[0] its path. On
 * failure says so on stderr and returns 127. */
int qemu_exec_real(char **argv);

/* Exec PATH with ARGV as it is (argv[0] included: the full wrapper reads it too). On
 * failure says so on stderr and returns 127. */
int qemu_exec_as_is(const char *path, char **argv);
