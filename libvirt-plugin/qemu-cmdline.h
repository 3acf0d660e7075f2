/* The qemu-rma wrapper's view of the QEMU command line that libvirt builds:
 * find the domain's -uuid, and move RAM node 0 onto the broker's region. */
#pragma once

#include <glib.h>
#include <stdint.h>

/* The value of "-uuid X", or NULL when absent (libvirt is probing capabilities). */
const char *qemu_cmdline_find_uuid(char *const *argv);

/* Return a new argv where the memory backend of guest RAM node 0 ("ram-node0", or the
 * machine's whole-RAM backend "ppc_spapr.ram"/"pc.ram" when its size equals the RMA)
 * becomes memory-backend-file on /proc/self/fd/FD with share=on. The backend's size must
 * be exactly region_size. On failure returns NULL and *error says what to change. */
char **qemu_cmdline_rewrite_ram(char *const *argv, int fd, uint64_t region_size, GError **error);
