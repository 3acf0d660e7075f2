/* The wrapper's argv and its hand-off to the next program (qemu-exec.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu-exec.h"
#include "rma-config.h"

const char *qemu_cmdline_find_uuid(char *const *argv) {
        for (size_t i = 1; argv[i]; i++)
                if (strcmp(argv[i], "-uuid") == 0)
                        return argv[i + 1];
        return NULL;
}

bool qemu_is_default_emulator(const char *argv0) {
        const char *slash = strrchr(argv0, '/');

        return strncmp(slash ? slash + 1 : argv0, "qemu-system-", strlen("qemu-system-")) == 0;
}

static const char *real_qemu(void) {
        /* libvirt gives QEMU a clean environment, so this only matters for tests and
         * hand-made shims. */
        const char *env = getenv("RMA_QEMU_BINARY");

        return env && *env ? env : RMA_QEMU_BINARY;
}

int qemu_exec_as_is(const char *path, char **argv) {
        execv(path, argv);
        fprintf(stderr, "qemu-rma: cannot run %s: %s\n", path, strerror(errno));
        return 127;
}

int qemu_exec_real(char **argv) {
        const char *qemu = real_qemu();

        argv[0] = (char *) qemu;
        return qemu_exec_as_is(qemu, argv);
}
