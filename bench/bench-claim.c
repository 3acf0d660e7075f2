/* Benchmark: what the broker adds to handing a region fd to a process.
 *
 * Baseline: a bare SCM_RIGHTS request/reply over a socketpair, carrying a memfd.
 * Measured: Reserve and Claim over broker.sock against a running rma-brokerd (the
 *           wrapper's path: sd-bus peer-to-peer, credential and policy checks, lease).
 * Both in the same run, same process placement; prints medians and ratios.
 * Usage: bench-claim ITERATIONS   (RMA_BROKER_SOCKET names the broker's socket) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "rma-client.h"

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double median_us(uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_u64);
        return (double) v[n / 2] / 1000.0;
}

static void serve_fds(int sock) {
        _cleanup_close_ int memfd = memfd_create("bench", MFD_CLOEXEC);
        char c;

        while (read(sock, &c, 1) == 1) {
                char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
                struct iovec iov = { .iov_base = &c, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &memfd, sizeof(int));
                if (sendmsg(sock, &mh, 0) != 1)
                        break;
        }
        _exit(0);
}

static double bench_baseline(size_t n) {
        int sv[2];
        pid_t pid;
        uint64_t *t = calloc(n, sizeof(uint64_t));
        double r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        pid = fork();
        if (pid == 0) {
                close(sv[0]);
                serve_fds(sv[1]);
        }
        close(sv[1]);
        for (size_t i = 0; i < n; i++) {
                char c = 'x', cbuf[CMSG_SPACE(sizeof(int))];
                struct iovec iov = { .iov_base = &c, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
                uint64_t t0 = now_ns();
                int fd;
                if (write(sv[0], &c, 1) != 1 || recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC) != 1)
                        abort();
                memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
                t[i] = now_ns() - t0;
                close(fd);
        }
        close(sv[0]);
        waitpid(pid, NULL, 0);
        r = median_us(t, n);
        free(t);
        return r;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 500;
        uint64_t *reserve_t = calloc(n, sizeof(uint64_t)), *claim_t = calloc(n, sizeof(uint64_t));
        uint64_t *connect_t = calloc(n, sizeof(uint64_t));
        double base, reserve, claim, connect_claim;

        base = bench_baseline(n);
        if (rma_client_open(NULL, &bus, &e) < 0) {
                fprintf(stderr, "bench-claim: %s\n", e.message);
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                char uuid[64];
                uint64_t t0, size;
                int fd;

                snprintf(uuid, sizeof(uuid), "bbbbbbbb-0000-4000-8000-%012zu", i);
                t0 = now_ns();
                if (rma_client_reserve(bus, uuid, "bench", "", NULL, &e) < 0) {
                        fprintf(stderr, "bench-claim: Reserve: %s\n", e.message);
                        return 1;
                }
                reserve_t[i] = now_ns() - t0;
                t0 = now_ns();
                if (rma_client_claim(bus, uuid, &fd, &size, &e) < 0) {
                        fprintf(stderr, "bench-claim: Claim: %s\n", e.message);
                        return 1;
                }
                claim_t[i] = now_ns() - t0;
                close(fd);
        }
        /* The hook and the wrapper connect once per VM start: connect and make one call
         * (a Release of a domain that holds nothing, which changes no state). */
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
                uint64_t t0 = now_ns();
                if (rma_client_open(NULL, &b, &e) < 0 || rma_client_release(b, "00000000-0000-4000-8000-000000000000", &e) < 0) {
                        fprintf(stderr, "bench-claim: connect: %s\n", e.message);
                        return 1;
                }
                connect_t[i] = now_ns() - t0;
        }
        reserve = median_us(reserve_t, n);
        claim = median_us(claim_t, n);
        connect_claim = median_us(connect_t, n);
        printf("  baseline SCM_RIGHTS fd round trip  p50 %8.1f us\n", base);
        printf("  Reserve over broker.sock           p50 %8.1f us   ratio %6.2f x baseline\n", reserve, reserve / base);
        printf("  Claim (fd) over broker.sock        p50 %8.1f us   ratio %6.2f x baseline\n", claim, claim / base);
        printf("  connect + one call (wrapper/hook)  p50 %8.1f us   ratio %6.2f x baseline\n", connect_claim,
               connect_claim / base);
        free(reserve_t);
        free(claim_t);
        free(connect_t);
        return 0;
}
