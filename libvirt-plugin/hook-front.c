/* rma-broker-hook-front: what libvirt runs as /etc/libvirt/hooks/qemu.d/50-rma-broker.
 *
 * libvirt runs every qemu hook at each step of a domain's life (prepare, start, started,
 * stopped, release, ...); the hook acts on three of them (hook-ops.h). This front, plain
 * libc, exits 0 at once for the others, before any library the full hook needs
 * (glib, libsystemd, ...) is loaded, and execs the full hook (hook.c) for the
 * three, with argv and environment untouched. At prepare, run at every start, it reads
 * the domain XML first and exits 0 alone when it can prove the full hook would do
 * nothing (hook-prepare.h); otherwise the full hook gets that XML, byte for byte, as its
 * stdin. At release and reconnect it never reads stdin: libvirt ignores a hook that
 * exits without reading it (the full hook has always done so for these calls; the e2e
 * suite's libvirtd logs show no error for it).
 * $RMA_BROKER_HOOK names another full hook (tests only: libvirt gives hooks a clean
 * environment). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup-fd.h"
#include "hook-ops.h"
#include "hook-prepare.h"
#include "rma-config.h"

static void freep(void *p) {
        free(*(void **) p);
}

/* Up to MAX bytes of FD, as the full hook reads them (a read error ends the input, as
 * its end does): a malloc()ed buffer, or -ENOMEM. */
static int read_bounded(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_(freep) char *buf = NULL;
        size_t len = 0, size = 0;
        ssize_t n;

        for (;;) {
                if (len == size) {
                        size_t want = size ? size * 2 : 65536;
                        char *p = realloc(buf, want < max ? want : max);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        size = want < max ? want : max;
                }
                if (len == max)
                        break;
                n = read(fd, buf + len, size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        *ret = TAKE_GENERIC(buf, char *, NULL);
        *ret_len = len;
        return 0;
}

/* Make stdin a file holding BUF, read from its start, for the full hook. */
static int stdin_from(const char *buf, size_t len) {
        _cleanup_close_ int fd = memfd_create("domain-xml", MFD_CLOEXEC);

        if (fd < 0)
                return -errno;
        for (size_t done = 0; done < len;) {
                ssize_t n = write(fd, buf + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                done += (size_t) n;
        }
        /* dup2() gives fd 0 without FD_CLOEXEC: it survives the exec. */
        if (lseek(fd, 0, SEEK_SET) < 0 || dup2(fd, STDIN_FILENO) < 0)
                return -errno;
        return 0;
}

/* 1: prepare has nothing to do here; 0: the full hook must run, and its stdin holds what
 * libvirt wrote; a negative errno: it must run but cannot be given the XML. */
static int prepare_alone(void) {
        _cleanup_(freep) char *xml = NULL;
        size_t len;
        int r;

        /* One byte over the full hook's limit: past it, the full hook fails on the
         * truncated XML exactly as it would have on libvirt's pipe. */
        r = read_bounded(STDIN_FILENO, HOOK_MAX_XML_BYTES + 1, &xml, &len);
        if (r < 0)
                return r;
        if (hook_prepare_is_noop(xml, len))
                return 1;
        return stdin_from(xml, len);
}

int main(int argc, char *argv[]) {
        const char *env = getenv("RMA_BROKER_HOOK"), *hook = env && *env ? env : RMA_HOOK_FULL;
        bool prepare = argc >= 3 && strcmp(argv[2], "prepare") == 0;

        /* Too few arguments: the full hook prints its usage. */
        if (argc >= 3 && !hook_acts_on(argv[2], argc > 3 ? argv[3] : "-"))
                return 0;
        if (prepare) {
                int r = prepare_alone();
                if (r > 0)
                        return 0;
                if (r < 0) {
                        fprintf(stderr, "rma-broker: cannot pass the domain XML on to %s: %s\n", hook, strerror(-r));
                        return 1;
                }
        }
        execv(hook, argv);
        fprintf(stderr, "rma-broker: cannot run %s: %s\n", hook, strerror(errno));
        /* A prepare that cannot run must not start an opted-in domain without its RMA;
         * a failing release or reconnect only makes things worse (reconnect: libvirt
         * kills the guest). */
        return prepare ? 1 : 0;
}
