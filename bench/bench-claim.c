/* Benchmark: what the broker adds to handing a region fd to a process.
 *
 * Baselines, measured in the same run and interleaved with the broker round by round:
 *   (a) a bare SCM_RIGHTS request/reply over a socketpair, carrying a memfd;
 *   (b) bench-server, a minimal sd-bus peer-to-peer server answering Claim with an fd.
 * Measured against a running rma-brokerd: Reserve, Claim, and connect + Claim (the
 * wrapper's whole path). Each round runs the broker's part in a child process, so its
 * leases end when it exits and every round starts from the same pool.
 * Prints, per operation, min/median/max over rounds of the round's p50, and of its ratio
 * to each baseline.
 * Usage: bench-claim BROKER_SOCKET MINIMAL_SOCKET [ROUNDS [ITERATIONS]]
 * The broker must let this process Reserve (root) and Claim (QemuUsers, and the cgroup
 * of domain "bench" when CheckCgroup=yes). */
#include <errno.h>
#include <glib.h>
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
#include "rma-names.h"

enum { OP_BASE_FD, OP_MINIMAL, OP_MINIMAL_CONNECT_CLAIM, OP_RESERVE, OP_CLAIM, OP_CONNECT_CLAIM, _OP_MAX };
static const char *const op_names[_OP_MAX] = {
        [OP_BASE_FD] = "(a) bare SCM_RIGHTS fd round trip",
        [OP_MINIMAL] = "(b) minimal sd-bus server Claim",
        [OP_MINIMAL_CONNECT_CLAIM] = "(c) minimal server connect + Claim",
        [OP_RESERVE] = "Reserve over broker.sock",
        [OP_CLAIM] = "Claim over broker.sock",
        [OP_CONNECT_CLAIM] = "connect + Claim (the wrapper)",
};

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double p50_us(uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_u64);
        return (double) v[n / 2] / 1000.0;
}

static void die(const char *what, const sd_bus_error *e, int r) {
        fprintf(stderr, "bench-claim: %s: %s\n", what, e && e->message ? e->message : strerror(-r));
        exit(1);
}

static void serve_fds(int sock) {
        int memfd = memfd_create("bench", MFD_CLOEXEC);
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

static double bench_bare_fd(size_t n) {
        g_autofree uint64_t *t = g_new0(uint64_t, n);
        int sv[2];
        pid_t pid;

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
                int fd = -EBADF;
                if (write(sv[0], &c, 1) != 1 || recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC) != 1)
                        abort();
                memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
                t[i] = now_ns() - t0;
                close(fd);
        }
        close(sv[0]);
        waitpid(pid, NULL, 0);
        return p50_us(t, n);
}

/* (c): the wrapper's whole path against the minimal server: connect, Claim, close. */
static double bench_minimal_connect_claim(const char *sock, size_t n) {
        g_autofree uint64_t *t = g_new0(uint64_t, n);

        for (size_t i = 0; i < n; i++) {
                g_autoptr(sd_bus) bus = NULL;
                g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
                uint64_t t0 = now_ns(), size;
                int fd = -EBADF, r;

                r = rma_client_open(sock, &bus, &e);
                if (r >= 0)
                        r = rma_client_claim(bus, "bbbbbbbb-0000-4000-8000-000000000000", &fd, &size, &e);
                if (r < 0)
                        die("minimal connect + Claim", &e, r);
                t[i] = now_ns() - t0;
                close(fd);
        }
        return p50_us(t, n);
}

static double bench_minimal(const char *sock, size_t n) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autofree uint64_t *t = g_new0(uint64_t, n);
        int r = rma_client_open(sock, &bus, &e);

        if (r < 0)
                die("minimal server", &e, r);
        for (size_t i = 0; i < n; i++) {
                uint64_t t0 = now_ns(), size;
                int fd = -EBADF;
                r = rma_client_claim(bus, "bbbbbbbb-0000-4000-8000-000000000000", &fd, &size, &e);
                if (r < 0)
                        die("minimal Claim", &e, r);
                t[i] = now_ns() - t0;
                close(fd);
        }
        return p50_us(t, n);
}

/* In a child: n x (Reserve, Claim) on one connection, then n x (Reserve, then a timed
 * connect + Claim on a fresh connection). Timings go to fd out. */
static void broker_child(const char *sock, size_t n, unsigned round, int out) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        uint64_t *t = g_new0(uint64_t, 3 * n);
        int r = rma_client_open(sock, &bus, &e);

        if (r < 0)
                die("broker", &e, r);
        for (size_t i = 0; i < 2 * n; i++) {
                char uuid[64];
                uint64_t t0, size;
                int fd = -EBADF;

                snprintf(uuid, sizeof(uuid), "bbbbbbbb-%04x-4000-8000-%012zx", round, i);
                t0 = now_ns();
                r = rma_client_reserve(bus, uuid, "bench", "", NULL, &e);
                if (r < 0)
                        die("Reserve", &e, r);
                if (i < n)
                        t[i] = now_ns() - t0;
                t0 = now_ns();
                if (i < n)
                        r = rma_client_claim(bus, uuid, &fd, &size, &e);
                else {
                        g_autoptr(sd_bus) fresh = NULL;
                        r = rma_client_open(sock, &fresh, &e);
                        if (r >= 0)
                                r = rma_client_claim(fresh, uuid, &fd, &size, &e);
                }
                if (r < 0)
                        die("Claim", &e, r);
                t[n + i] = now_ns() - t0;
                close(fd);
        }
        if (write(out, t, 3 * n * sizeof(uint64_t)) != (ssize_t) (3 * n * sizeof(uint64_t)))
                _exit(1);
        _exit(0);
}

static uint32_t free_rmas(const char *sock) {
        g_autoptr(sd_bus) bus = NULL;
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        uint32_t n = 0;

        if (rma_client_open(sock, &bus, &e) < 0 ||
            sd_bus_get_property_trivial(bus, NULL, RMA_OBJECT_PATH, RMA_INTERFACE, "FreeRmas", &e, 'u', &n) < 0)
                return 0;
        return n;
}

int main(int argc, char *argv[]) {
        const char *broker, *minimal;
        unsigned rounds;
        size_t n;
        uint32_t total;
        typedef double Row[_OP_MAX];
        Row *p50;

        if (argc < 3) {
                fprintf(stderr, "usage: %s BROKER_SOCKET MINIMAL_SOCKET [ROUNDS [ITERATIONS]]\n", argv[0]);
                return 2;
        }
        broker = argv[1];
        minimal = argv[2];
        rounds = argc > 3 ? (unsigned) strtoul(argv[3], NULL, 10) : 5;
        n = argc > 4 ? strtoul(argv[4], NULL, 10) : 500;
        if (rounds == 0 || n == 0)
                return 2;
        p50 = g_new0(Row, rounds);
        total = free_rmas(broker);
        if (total < 2 * n) {
                fprintf(stderr, "bench-claim: the broker needs at least %zu free RMAs, it has %u\n", 2 * n, total);
                return 1;
        }

        for (unsigned r = 0; r < rounds; r++) {
                g_autofree uint64_t *t = g_new0(uint64_t, 3 * n);
                int pipefd[2], status;
                pid_t pid;

                p50[r][OP_BASE_FD] = bench_bare_fd(n);
                p50[r][OP_MINIMAL] = bench_minimal(minimal, n);
                p50[r][OP_MINIMAL_CONNECT_CLAIM] = bench_minimal_connect_claim(minimal, n);
                if (pipe2(pipefd, O_CLOEXEC) < 0)
                        abort();
                fcntl(pipefd[1], F_SETPIPE_SZ, (int) (3 * n * sizeof(uint64_t)) + 4096);
                pid = fork();
                if (pid == 0) {
                        close(pipefd[0]);
                        broker_child(broker, n, r, pipefd[1]);
                }
                close(pipefd[1]);
                for (size_t got = 0; got < 3 * n * sizeof(uint64_t);) {
                        ssize_t k = read(pipefd[0], (char *) t + got, 3 * n * sizeof(uint64_t) - got);
                        if (k <= 0)
                                die("child", NULL, -EIO);
                        got += (size_t) k;
                }
                close(pipefd[0]);
                if (waitpid(pid, &status, 0) < 0 || status != 0)
                        die("child", NULL, -ECHILD);
                p50[r][OP_RESERVE] = p50_us(t, n);
                p50[r][OP_CLAIM] = p50_us(t + n, n);
                p50[r][OP_CONNECT_CLAIM] = p50_us(t + 2 * n, n);
                /* The child's leases end as it exits: wait until the pool is whole again. */
                for (int i = 0; i < 2000 && free_rmas(broker) != total; i++)
                        usleep(5000);
        }

        printf("  %u rounds x %zu iterations; each figure: min / median / max over rounds of the round's p50;\n"
               "  'vs (b)' is against (c) for connect + Claim\n", rounds, n);
        for (int op = 0; op < _OP_MAX; op++) {
                /* A connect + Claim is compared with the same path on the minimal server. */
                int base_b = op == OP_CONNECT_CLAIM ? OP_MINIMAL_CONNECT_CLAIM : OP_MINIMAL;
                double v[rounds], ra[rounds], rb[rounds];
                for (unsigned r = 0; r < rounds; r++) {
                        v[r] = p50[r][op];
                        ra[r] = p50[r][op] / p50[r][OP_BASE_FD];
                        rb[r] = p50[r][op] / p50[r][base_b];
                }
                qsort(v, rounds, sizeof(double), cmp_double);
                qsort(ra, rounds, sizeof(double), cmp_double);
                qsort(rb, rounds, sizeof(double), cmp_double);
                printf("  %-36s %7.1f / %7.1f / %7.1f us   vs (a) %5.2f / %5.2f / %5.2f x   vs (b) %5.2f / %5.2f / %5.2f x\n",
                       op_names[op], v[0], v[rounds / 2], v[rounds - 1], ra[0], ra[rounds / 2], ra[rounds - 1], rb[0],
                       rb[rounds / 2], rb[rounds - 1]);
        }
        g_free(p50);
        return 0;
}
