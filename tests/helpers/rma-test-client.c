/* A broker.sock client for the integration tests, run as a real child process (often
 * under an unprivileged uid):
 *   rma-test-client claim UUID [PATTERN]   claim, check the region is sealed and zeroed,
 *                                          write PATTERN at 1 MiB - 16, print "held SIZE",
 *                                          and hold the lease until stdin reaches EOF
 *   rma-test-client handoff UUID PATTERN   claim and write PATTERN as above, pass the region
 *                                          to a child that keeps it mapped, print "child PID",
 *                                          and exit at once (ending the lease); the child
 *                                          prints what it reads at the pattern's place
 *                                          ("old-region-reads TEXT") when stdin reaches EOF
 *   rma-test-client reserve UUID DOMAIN [TENANT]
 *   rma-test-client release UUID
 *   rma-test-client reload
 *   rma-test-client find UUID              "STATE SLOT PID" of the domain's slot, or "none"
 * Refusals print "error NAME: MESSAGE" and exit 1. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup.h"
#include "rma-client.h"
#include "rma-names.h"

#define PATTERN_OFFSET ((1u << 20) - 16)

static int fail(const sd_bus_error *e, int r) {
        printf("error %s: %s\n", e->name ? e->name : "errno", e->message ? e->message : strerror(-r));
        return 1;
}

static int check_region(int fd, uint64_t size, const char *pattern) {
        int seals = fcntl(fd, F_GET_SEALS);
        unsigned char *p;

        if (seals < 0 || !(seals & F_SEAL_GROW) || !(seals & F_SEAL_SHRINK) || !(seals & F_SEAL_SEAL)) {
                printf("region not sealed (seals=0x%x)\n", seals);
                return 1;
        }
        /* The kernel refuses a claimant that tries to resize its region (the seals). */
        if (ftruncate(fd, (off_t) size * 2) == 0) {
                printf("region could be grown\n");
                return 1;
        }
        if (ftruncate(fd, (off_t) size / 2) == 0) {
                printf("region could be shrunk\n");
                return 1;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0) {
                printf("region seals could be changed\n");
                return 1;
        }
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
                printf("mmap failed: %m\n");
                return 1;
        }
        /* A new tenant must never see an old tenant's bytes: every byte reads zero. */
        for (uint64_t off = 0; off < size; off++)
                if (p[off] != 0) {
                        printf("region not zeroed at offset %llu\n", (unsigned long long) off);
                        return 1;
                }
        if (pattern)
                memcpy(p + PATTERN_OFFSET, pattern, strnlen(pattern, 16));
        munmap(p, size);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc < 2 || (argc < 3 && strcmp(argv[1], "reload") != 0)) {
                fprintf(stderr, "usage: %s claim UUID [PATTERN] | handoff UUID PATTERN | reserve UUID DOMAIN [TENANT] | "
                        "release UUID | reload\n",
                        argv[0]);
                return 2;
        }
        r = rma_client_open(NULL, &bus, &error);
        if (r < 0)
                return fail(&error, r);

        if (strcmp(argv[1], "claim") == 0) {
                _cleanup_close_ int fd = -EBADF;
                uint64_t size;
                char c;

                r = rma_client_claim(bus, argv[2], &fd, &size, &error);
                if (r < 0)
                        return fail(&error, r);
                if (check_region(fd, size, argc > 3 ? argv[3] : NULL) != 0)
                        return 1;
                printf("held %llu\n", (unsigned long long) size);
                while (read(STDIN_FILENO, &c, 1) > 0)
                        ;
                return 0;
        }
        if (strcmp(argv[1], "handoff") == 0 && argc >= 4) {
                _cleanup_close_ int fd = -EBADF;
                uint64_t size;
                pid_t child;
                char c;

                r = rma_client_claim(bus, argv[2], &fd, &size, &error);
                if (r < 0)
                        return fail(&error, r);
                if (check_region(fd, size, argv[3]) != 0)
                        return 1;
                bus = sd_bus_flush_close_unref(bus);
                child = fork();
                if (child < 0)
                        return 1;
                if (child == 0) {
                        /* The region lives on here, mapped, after its claimant is gone. */
                        char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
                        if (p == MAP_FAILED)
                                return 1;
                        fd = safe_close(fd);
                        while (read(STDIN_FILENO, &c, 1) > 0)
                                ;
                        printf("old-region-reads %.*s\n", (int) strnlen(p + PATTERN_OFFSET, 16), p + PATTERN_OFFSET);
                        return 0;
                }
                printf("child %d\n", (int) child);
                return 0;
        }
        if (strcmp(argv[1], "reserve") == 0 && argc >= 4) {
                uint32_t slot;
                r = rma_client_reserve(bus, argv[2], argv[3], argc > 4 ? argv[4] : "", &slot, &error);
                if (r < 0)
                        return fail(&error, r);
                printf("reserved %u\n", slot);
                return 0;
        }
        if (strcmp(argv[1], "find") == 0) {
                _cleanup_free_ char *state = NULL;
                uint32_t slot = 0, pid = 0;
                r = rma_client_find(bus, argv[2], &slot, &state, &pid, &error);
                if (r < 0)
                        return fail(&error, r);
                if (state)
                        printf("%s %u %u\n", state, slot, pid);
                else
                        printf("none\n");
                return 0;
        }
        if (strcmp(argv[1], "reload") == 0) {
                r = sd_bus_call_method(bus, NULL, RMA_OBJECT_PATH, RMA_INTERFACE, "Reload", &error, NULL, "");
                if (r < 0)
                        return fail(&error, r);
                printf("reloaded\n");
                return 0;
        }
        if (strcmp(argv[1], "release") == 0) {
                r = rma_client_release(bus, argv[2], &error);
                if (r < 0)
                        return fail(&error, r);
                printf("released\n");
                return 0;
        }
        fprintf(stderr, "unknown command %s\n", argv[1]);
        return 2;
}
