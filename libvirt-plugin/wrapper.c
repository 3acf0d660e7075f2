/* qemu-rma-claim: the part of the qemu-rma wrapper that claims a domain's RMA.
 *
 * libvirt runs qemu-rma (wrapper-front.c, plain libc) as the QEMU user, already inside
 * the domain's cgroup; the front execs this program, with argv and environment unchanged,
 * for every start it does not pass straight through to QEMU: an explicit <emulator>
 * qemu-rma with -uuid, and, as libvirt's default emulator, a domain with a record of the
 * hook's or with something at the record's path that is not. Without -uuid libvirt is
 * only probing capabilities: exec the real QEMU unchanged. Otherwise claim the domain's
 * region from rma-brokerd, make it the guest's boot memory 0..RMA (the rest of node 0 a
 * pc-dimm: qemu-cmdline.h), and exec the real QEMU in this same process, so the broker's
 * lease (bound to this pid: the front's, kept across both execs) follows QEMU.
 *
 * Run by a qemu-system-* name (the link /usr/lib/rma-broker/emulators/qemu-system-ppc64,
 * first on libvirtd's PATH), it is libvirt's default emulator for every ppc64 domain
 * without an <emulator>, as Nova writes them. Then it asks the broker nothing for a domain
 * the hook did not opt in: no record of the hook's for its uuid (written by root at
 * prepare) means the real QEMU runs at once with exactly the arguments libvirt gave,
 * whatever the broker does (away, stuck, refusing this QEMU user) and whatever anyone
 * reserved for that uuid. Only root's records in a domains/ only root can write count
 * (domain-record.h): anything else there is ignored, with a warning. An opted-in domain
 * waits for the broker a bounded time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "domain-record.h"
#include "qemu-cmdline.h"
#include "qemu-exec.h"
#include "rma-client.h"
#include "rma-config.h"
#include "rma-names.h"
#include "rma-util.h"

static const char *qemu_preload(void) {
        const char *env = getenv("RMA_QEMU_PRELOAD");

        return env && *env ? env : RMA_QEMU_PRELOAD;
}

/* QEMU opens its memory backend by path, as /proc/self/fd/N. That reopens a memfd or
 * hugetlb region; a real RMA (an anonymous inode) refuses it. Then, and only then, QEMU
 * gets librma-qemu-fd.so, which answers that one open() with the fd itself. Returns the
 * errno of the reopen (0: it works, no preload needed). */
static int prepare_handoff(int fd) {
        char path[32];
        int probe, error;
        const char *old;
        g_autofree char *preload = NULL;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        probe = open(path, O_RDWR | O_CLOEXEC);
        if (probe >= 0) {
                close(probe);
                return 0;
        }
        error = errno;
        old = getenv("LD_PRELOAD");
        preload = old && *old ? g_strdup_printf("%s %s", qemu_preload(), old) : g_strdup(qemu_preload());
        snprintf(path, sizeof(path), "%d", fd);
        setenv("RMA_BROKER_REGION_FD", path, 1);
        setenv("LD_PRELOAD", preload, 1);
        return error;
}

/* Whether the hook opted the domain in at this start: 1 yes (its record), 0 no (no record
 * of the hook's: a file that is not root's alone is ignored, with a warning), <0 when it
 * cannot be told (said on stderr). */
static int opted_in_by_record(const char *uuid) {
        g_autofree char *why = NULL;
        int r = domain_record_find(uuid, &why);

        if (r == -EPERM && why) {
                fprintf(stderr, "qemu-rma: warning: ignoring what is not the hook's: %s. Domain %s starts without an "
                        "RMA\n", why, uuid);
                return 0;
        }
        if (r < 0) {
                g_autofree char *path = rma_domain_record_path(uuid);
                fprintf(stderr, "qemu-rma: cannot tell whether domain %s asked for an RMA: %s: %s\n", uuid, path,
                        strerror(-r));
        }
        return r;
}

/* The hook recorded the domain, but the broker holds no reservation for it. The hook
 * writes the record at each start it reserves for and removes it at each start it does
 * not, so the domain opted in at this start and lost its reservation before QEMU claimed
 * it (expired, released, a broker without its registry), or the hook did not run at this
 * start and the record is an earlier one's. Either way, not a start without the RMA the
 * policy gives it (a Nova instance is counted for one in Placement): refused, with both
 * ways out. */
static void refuse_unreserved(const char *uuid, const char *broker_says) {
        g_autofree char *path = rma_domain_record_path(uuid), *q = rma_shell_quote(path);

        fprintf(stderr, "qemu-rma: domain %s asked for an RMA (the hook recorded it in %s), but rma-brokerd holds "
                "none for it: %s. Start the domain again: the hook reserves one at each start. If the hook did not run "
                "at this start, that record is left from an earlier one: remove it (rm -f %s) and the domain starts "
                "without an RMA\n", uuid, path, broker_says ? broker_says : "no reservation", q);
}

/* QEMU would refuse boot memory of this size with a bare "not aligned": say why and what
 * to do instead. A real RMA (not reopenable) is the kernel's size. RMA_BROKER_TEST_SMALL_RMAS=1
 * (only a test's shim sets it: libvirt gives the wrapper a clean environment) lets the
 * suite's small test regions through to its fake QEMU. */
static int check_size(const char *uuid, uint64_t size, bool from_kernel) {
        g_autofree char *why = rma_size_unusable_why(size, from_kernel);
        const char *test = getenv("RMA_BROKER_TEST_SMALL_RMAS");

        if (!why || (test && strcmp(test, "1") == 0))
                return 0;
        fprintf(stderr, "qemu-rma: domain %s cannot start with the RMA from rma-brokerd: %s\n", uuid, why);
        return -EINVAL;
}

int main(int argc, char *argv[]) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(GError) gerror = NULL;
        g_auto(GStrv) new_argv = NULL;
        g_autofree char *layout = NULL;
        char uuid[RMA_UUID_STRING_LEN + 1];
        _cleanup_close_ int claimed = -EBADF;
        const char *raw_uuid;
        bool recorded = false;
        uint64_t size;
        int fd, r, reopen_error;

        (void) argc;
        raw_uuid = qemu_cmdline_find_uuid(argv);
        if (!raw_uuid)
                return qemu_exec_real(argv);
        if (rma_uuid_canonicalize(raw_uuid, uuid) < 0) {
                fprintf(stderr, "qemu-rma: -uuid '%s' is not a UUID\n", raw_uuid);
                return 1;
        }

        if (qemu_is_default_emulator(argv[0])) {
                r = opted_in_by_record(uuid);
                if (r <= 0)
                        return r == 0 ? qemu_exec_real(argv) : 1;
                recorded = true;
        }
        r = rma_client_open(NULL, &bus, &error);
        if (r >= 0)
                r = rma_client_claim(bus, uuid, &claimed, &size, &error);
        if (r < 0 && recorded && sd_bus_error_has_name(&error, RMA_ERROR_NOT_RESERVED)) {
                refuse_unreserved(uuid, error.message);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "qemu-rma: cannot get the RMA of domain %s: %s\n", uuid,
                        error.message ? error.message : strerror(-r));
                return 1;
        }
        bus = sd_bus_flush_close_unref(bus);

        /* QEMU must inherit the region: a copy without FD_CLOEXEC, which it opens as
         * /proc/self/fd/N. */
        fd = fcntl(claimed, F_DUPFD, 3);
        if (fd < 0) {
                fprintf(stderr, "qemu-rma: cannot pass the region to QEMU: %s\n", strerror(errno));
                return 1;
        }

        reopen_error = prepare_handoff(fd);
        r = check_size(uuid, size, reopen_error != 0);
        if (r < 0)
                return 1;
        new_argv = qemu_cmdline_lay_out_rma(argv, fd, size, &layout, &gerror);
        if (!new_argv) {
                fprintf(stderr, "qemu-rma: domain %s: %s\n", uuid, gerror->message);
                return 1;
        }
        /* libvirt logs the command line it built (/var/log/libvirt/qemu/NAME.log), not
         * ours: say in one line there what changed. */
        fprintf(stderr, "qemu-rma: domain %s: RMA of %llu bytes from rma-brokerd on fd %d%s%s%s; %s\n", uuid,
                (unsigned long long) size, fd, reopen_error ? " (not reopenable by path: " : "",
                reopen_error ? strerror(reopen_error) : "",
                reopen_error ? "; QEMU opens it through librma-qemu-fd.so)" : "", layout);
        return qemu_exec_real(new_argv);
}
