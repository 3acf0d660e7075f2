/* rma-broker-hook-front: what libvirt runs as /etc/libvirt/hooks/qemu.d/50-rma-broker.
 *
 * libvirt runs every qemu hook at each step of a domain's life (prepare, start, started,
 * stopped, release, ...); the hook acts on three of them (hook-ops.h). This front, plain
 * libc, exits 0 at once for the others, before any library the full hook needs
 * (glib, json-glib, libsystemd, ...) is loaded, and execs the full hook (hook.c) for the
 * three, with argv, environment and stdin (the domain XML) untouched. It never reads
 * stdin: libvirt ignores a hook that exits without reading it (the full hook has always
 * done so for these calls; the e2e suite's libvirtd logs show no error for it).
 * $RMA_BROKER_HOOK names another full hook (tests only: libvirt gives hooks a clean
 * environment). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook-ops.h"
#include "rma-config.h"

int main(int argc, char *argv[]) {
        const char *env = getenv("RMA_BROKER_HOOK"), *hook = env && *env ? env : RMA_HOOK_FULL;

        /* Too few arguments: the full hook prints its usage. */
        if (argc >= 3 && !hook_acts_on(argv[2], argc > 3 ? argv[3] : "-"))
                return 0;
        execv(hook, argv);
        fprintf(stderr, "rma-broker: cannot run %s: %s\n", hook, strerror(errno));
        /* A prepare that cannot run must not start an opted-in domain without its RMA;
         * a failing release or reconnect only makes things worse (reconnect: libvirt
         * kills the guest). */
        return argc >= 3 && strcmp(argv[2], "prepare") == 0 ? 1 : 0;
}
