/* qemu-rma: the <emulator> of domains that get an RMA, and libvirt's default emulator
 * (as the link /usr/lib/rma-broker/emulators/qemu-system-ppc64).
 *
 * Plain libc: libvirt runs it for every ppc64 domain it starts once it is the default
 * emulator, and nearly all of them pass straight through, so it decides before any
 * library the claim needs (glib, libsystemd, ...) is loaded. It execs the real
 * QEMU with exactly the arguments libvirt gave for a capability probe (no -uuid) and, as
 * the default emulator, for a domain with nothing at its record's path (the hook opted it
 * out, domain-record.h); those are the full wrapper's own pass-through decisions, made
 * with the same trust checks (domain-record-trust.h). Everything else (an explicit
 * <emulator>, a record, anything at the record's path that the full wrapper warns about
 * or refuses, a -uuid that is no UUID) goes to the full wrapper, qemu-rma-claim
 * (wrapper.c), with argv and environment unchanged. Both are execs in this one process:
 * QEMU gets libvirt's pid, cgroup and fds, and the broker's lease is bound to it.
 * $RMA_QEMU_CLAIM names another full wrapper (tests only: libvirt gives QEMU a clean
 * environment), as $RMA_QEMU_BINARY names another QEMU. */
#include <limits.h>
#include <stdlib.h>

#include "domain-record-trust.h"
#include "qemu-exec.h"
#include "rma-config.h"
#include "rma-paths.h"
#include "rma-uuid.h"

/* Whether the full wrapper would pass this domain through without a word: the default
 * emulator, and no file at all where the hook keeps the domain's record. */
static bool passes_through(char **argv, const char *raw_uuid) {
        char uuid[RMA_UUID_STRING_LEN + 1], dir[PATH_MAX];
        RecordTrust trust;

        return qemu_is_default_emulator(argv[0]) && rma_uuid_canonicalize(raw_uuid, uuid) == 0 &&
               rma_runtime_path(dir, sizeof(dir), RMA_DOMAINS_DIR_NAME, NULL) < sizeof(dir) &&
               record_trust_find(dir, uuid, &trust) == 0;
}

int main(int argc, char *argv[]) {
        const char *raw_uuid = qemu_cmdline_find_uuid(argv), *env = getenv("RMA_QEMU_CLAIM");

        (void) argc;
        if (!raw_uuid || passes_through(argv, raw_uuid))
                return qemu_exec_real(argv);
        return qemu_exec_as_is(env && *env ? env : RMA_QEMU_CLAIM, argv);
}
