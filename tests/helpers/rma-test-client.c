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
 *   rma-test-client fork-keep UUID PATTERN claim and write PATTERN, fork a child that keeps
 *                                          the fd (no mapping), close its own copy, print
 *                                          "child PID", and stay alive; at stdin EOF both
 *                                          exit, the child after printing what it reads
 *   rma-test-client inflight UUID PATTERN  claim and write PATTERN, put the region fd in
 *                                          flight (SCM_RIGHTS into a socketpair whose
 *                                          other end only a child holds, unread), print
 *                                          "child PID", and wait (kill it to end it); at
 *                                          stdin EOF the child receives the region and
 *                                          prints what it reads
 *   rma-test-client forge UUID SLOT        make a memfd named as the broker names slot
 *                                          SLOT's region (same size and seals), then
 *                                          claim; hold both until stdin EOF
 *   rma-test-client reserve UUID DOMAIN [TENANT]
 *   rma-test-client release UUID
 *   rma-test-client reload [--interactive]  Reload; --interactive allows interactive
 *                                          authorization (polkit may ask an agent)
 *   rma-test-client reload
 *   rma-test-client find UUID              "STATE SLOT PID" of the domain's slot, or "none"
 *   rma-test-client claim-then-find UUID   claim, then ListRmas on the same connection:
 *                                          "STATE SLOT self|other"
 * Refusals print "error NAME: MESSAGE" and exit 1. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
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

static void wait_stdin_eof(void) {
        char c;

        while (read(STDIN_FILENO, &c, 1) > 0)
                ;
}

/* What the region holds at the pattern's place, as "old-region-reads TEXT". */
static int print_old_bytes(int fd, uint64_t size) {
        char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);

        if (p == MAP_FAILED)
                return 1;
        printf("old-region-reads %.*s\n", (int) strnlen(p + PATTERN_OFFSET, 16), p + PATTERN_OFFSET);
        return 0;
}

static int send_fd(int sock, int fd) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = { 0 };
        char byte = 'r';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &mh, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c;
        int fd;

        if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1 || !(c = CMSG_FIRSTHDR(&mh)) || c->cmsg_type != SCM_RIGHTS)
                return -1;
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        return fd;
}

/* The attacks a restart must survive: the region passed on in ways a /proc scan of the
 * claimant does not show. */
static int pass_on(sd_bus **bus, const char *how, const char *uuid, const char *pattern) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t size;
        int sv[2], r;
        pid_t child;

        r = rma_client_claim(*bus, uuid, &fd, &size, &error);
        if (r < 0)
                return fail(&error, r);
        if (check_region(fd, size, pattern) != 0)
                return 1;
        *bus = sd_bus_flush_close_unref(*bus);
        if (strcmp(how, "inflight") == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return 1;
        child = fork();
        if (child < 0)
                return 1;
        if (child == 0) {
                if (strcmp(how, "inflight") == 0) {
                        /* Holds only the receiving socket: the region is in no fd and no mapping here. */
                        fd = safe_close(fd);
                        safe_close(sv[0]);
                        wait_stdin_eof();
                        fd = recv_fd(sv[1]);
                        return fd < 0 ? 1 : print_old_bytes(fd, size);
                }
                wait_stdin_eof();
                return print_old_bytes(fd, size);
        }
        if (strcmp(how, "inflight") == 0) {
                safe_close(sv[1]);
                if (send_fd(sv[0], fd) < 0)
                        return 1;
                safe_close(sv[0]);
        }
        {
                struct stat st;
                /* Which region went in flight: a test counting live regions adds it. */
                printf("child %d inode %llu\n", (int) child,
                       fstat(fd, &st) == 0 ? (unsigned long long) st.st_ino : 0ULL);
        }
        fd = safe_close(fd);
        /* The claimant lives on, without the region, until stdin EOF or a kill. */
        wait_stdin_eof();
        return 0;
}

/* A memfd that looks like the broker's region of slot SLOT, then a real claim. */
static int forge(sd_bus *bus, const char *uuid, const char *slot) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int forged = -EBADF, fd = -EBADF;
        char name[64];
        uint64_t size;
        int r;

        snprintf(name, sizeof(name), "rma-broker-slot-%s", slot);
        forged = memfd_create(name, MFD_ALLOW_SEALING);   /* the lower fd number */
        if (forged < 0)
                return 1;
        /* And the user-namespace mark, as a broker without CAP_SYS_ADMIN writes it: the
         * pool is the runtime dir's dev:ino, which anyone can stat; the MAC it cannot make. */
        {
                g_autofree char *dir = g_path_get_dirname(rma_client_socket_path());
                char mark[256];
                struct stat st;
                if (stat(dir, &st) == 0) {
                        snprintf(mark, sizeof(mark), "slot=%s pool=%llu:%llu mac=%064d", slot,
                                 (unsigned long long) st.st_dev, (unsigned long long) st.st_ino, 0);
                        (void) fsetxattr(forged, "user.rma-broker", mark, strlen(mark), 0);
                }
        }
        r = rma_client_claim(bus, uuid, &fd, &size, &error);
        if (r < 0)
                return fail(&error, r);
        if (ftruncate(forged, (off_t) size) < 0 ||
            fcntl(forged, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return 1;
        printf("held %llu forged fd %d real fd %d\n", (unsigned long long) size, forged, fd);
        wait_stdin_eof();
        return 0;
}

int main(int argc, char *argv[]) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc < 2 || (argc < 3 && strcmp(argv[1], "reload") != 0)) {
                fprintf(stderr, "usage: %s claim UUID [PATTERN] | handoff UUID PATTERN | reserve UUID DOMAIN [TENANT] | "
                        "release UUID | reload [--interactive]\n",
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
        if (strcmp(argv[1], "claim-then-find") == 0) {
                /* Claim first, then another method on the same connection: the object's
                 * other members are registered only once a call needs them. */
                _cleanup_close_ int fd = -EBADF;
                g_autofree char *state = NULL;
                uint32_t slot = 0, pid = 0;
                uint64_t size;

                r = rma_client_claim(bus, argv[2], &fd, &size, &error);
                if (r >= 0)
                        r = rma_client_find(bus, argv[2], &slot, &state, &pid, NULL, &error);
                if (r < 0)
                        return fail(&error, r);
                printf("%s %u %s\n", state ? state : "none", slot, pid == (uint32_t) getpid() ? "self" : "other");
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
        if ((strcmp(argv[1], "fork-keep") == 0 || strcmp(argv[1], "inflight") == 0) && argc >= 4)
                return pass_on(&bus, argv[1], argv[2], argv[3]);
        if (strcmp(argv[1], "forge") == 0 && argc >= 4)
                return forge(bus, argv[2], argv[3]);
        if (strcmp(argv[1], "reserve") == 0 && argc >= 4) {
                uint32_t slot;
                r = rma_client_reserve(bus, argv[2], argv[3], argc > 4 ? argv[4] : "", &slot, &error);
                if (r < 0)
                        return fail(&error, r);
                printf("reserved %u\n", slot);
                return 0;
        }
        if (strcmp(argv[1], "find") == 0) {
                g_autofree char *state = NULL;
                uint32_t slot = 0, pid = 0;
                r = rma_client_find(bus, argv[2], &slot, &state, &pid, NULL, &error);
                if (r < 0)
                        return fail(&error, r);
                if (state)
                        printf("%s %u %u\n", state, slot, pid);
                else
                        printf("none\n");
                return 0;
        }
        if (strcmp(argv[1], "reload") == 0) {
                if (argc > 2 && strcmp(argv[2], "--interactive") == 0)
                        (void) sd_bus_set_allow_interactive_authorization(bus, 1);
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
