/* The qemu-rma wrapper's view of the QEMU command line that libvirt builds: lay guest
 * memory out so that the broker's region is the guest's boot memory from 0 to the RMA
 * size (docs/architecture.md, "Guest memory layout"). Its -uuid: qemu-exec.h. */
#pragma once

#include <glib.h>
#include <stdint.h>

/* Id of the pc-dimm (and its backend) that carries the rest of node 0's RAM. */
#define QEMU_RMA_REST_ID "rma-rest-node0"

/* The errors of qemu_cmdline_lay_out_rma(). */
#define QEMU_CMDLINE_ERROR (qemu_cmdline_error_quark())
GQuark qemu_cmdline_error_quark(void);
typedef enum {
        QEMU_CMDLINE_ERROR_NO_NODE0,  /* no backend for guest RAM node 0 */
        QEMU_CMDLINE_ERROR_INVALID,   /* node 0 too small, or -m unreadable */
} QemuCmdlineError;

/* Return a new argv where:
 * - the backend of guest RAM node 0 ("ram-node0", or without NUMA cells the machine's
 *   whole-RAM backend "ppc_spapr.ram"/"pc.ram") is memory-backend-file on
 *   /proc/self/fd/FD, share=on, of exactly region_size bytes: boot memory 0..RMA;
 * - the rest of that node's RAM, if any, is one pc-dimm on node 0 whose backend is of the
 *   same kind and options as libvirt's;
 * - -m is the boot memory, with one more slot and maxmem the guest's total.
 * Every other node and device stays as libvirt made it. *summary (if not NULL) gets one
 * line for the domain's log. On failure returns NULL and *error says what to change. */
char **qemu_cmdline_lay_out_rma(char *const *argv, int fd, uint64_t region_size, char **summary, GError **error);
