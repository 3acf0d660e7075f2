/* Building blocks for bench/run-bench.sh, one broker operation kind per invocation so
 * that the script can count the broker's instructions around exactly that work
 * (callgrind_control --zero / --dump), or time it.
 *   bench-ops reserve SOCKET PREFIX FROM COUNT   Reserve uuids PREFIX-FROM.. for domain "bench"
 *   bench-ops claim SOCKET PREFIX FROM COUNT     Claim them, print "claimed", then hold every
 *                                                lease until stdin reaches EOF
 *   bench-ops release SOCKET PREFIX FROM COUNT   Release them
 *   bench-ops connect-claim SOCKET PREFIX FROM COUNT
 *                                                Claim them, each on a connection of its own
 *                                                (the wrapper's path), then as claim
 *   bench-ops storm SOCKET PREFIX FROM COUNT     COUNT x (Reserve, Claim), print "done", hold
 *                                                until stdin EOF
 *   bench-ops hold-regions SOCKET PREFIX FROM COUNT
 *                                                COUNT x (Reserve, Claim), keeping every region
 *                                                fd; print "done"; then per stdin line: "split"
 *                                                forks a child that keeps the first half of the
 *                                                fds and exits (the leases end, half the regions
 *                                                live on in the child); EOF ends it all
 *   bench-ops reclaim SOCKET SIZE                one lease: touch the whole region, exit, and
 *                                                time exit -> slot free; then memset of the
 *                                                same size, as the baseline
 *   bench-ops wait-free SOCKET COUNT             until FreeRmas == COUNT (10 s at most)
 *   bench-ops starts SOCKET PREFIX COUNT UID     COUNT VM starts as libvirt makes them: a new
 *                                                connection of root's and Reserve (the hook),
 *                                                then one of a child as UID and Claim (the
 *                                                wrapper), which exits; then Release. Both
 *                                                connect where rma_client_open(NULL) does
 *                                                (RMA_BROKER_SOCKET names broker.sock).
 *                                                Prints "p50 p99 max failed" (ms)
 * PREFIX is 8 hex digits; the uuids are PREFIX-0000-4000-8000-<12 hex digits of N>. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "rma-client.h"
#include "rma-names.h"

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static void die(const char *what, const sd_bus_error *e, int r) {
        fprintf(stderr, "bench-ops: %s: %s\n", what, e && e->message ? e->message : strerror(-r));
        exit(1);
}

static sd_bus *open_or_die(const char *sock) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        sd_bus *bus = NULL;
        int r = rma_client_open(sock, &bus, &e);

        if (r < 0)
                die("connect", &e, r);
        return bus;
}

static uint32_t free_rmas(sd_bus *bus) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        uint32_t n = 0;
        int r = sd_bus_get_property_trivial(bus, NULL, RMA_OBJECT_PATH, RMA_INTERFACE, "FreeRmas", &e, 'u', &n);

        if (r < 0)
                die("FreeRmas", &e, r);
        return n;
}

static void hold_until_eof(void) {
        char c;
        while (read(STDIN_FILENO, &c, 1) > 0)
                ;
}

static void uuid_of(char *buf, size_t len, const char *prefix, unsigned long n) {
        snprintf(buf, len, "%.8s-0000-4000-8000-%012lx", prefix, n);
}

/* The hook's Reserve, on a connection of its own. */
static int start_reserve(const char *uuid, sd_bus_error *e) {
        g_autoptr(sd_bus) bus = NULL;
        int r = rma_client_open(NULL, &bus, e);

        return r < 0 ? r : rma_client_reserve(bus, uuid, "bench", "", NULL, e);
}

/* The wrapper's Claim, as uid in a child that then exits (the lease ends with it). */
static int start_claim(const char *uuid, uid_t uid) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
                g_autoptr(sd_bus) bus = NULL;
                uint64_t size;
                int fd = -EBADF;

                if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(3);
                if (rma_client_open(NULL, &bus, &e) < 0 || rma_client_claim(bus, uuid, &fd, &size, &e) < 0) {
                        fprintf(stderr, "bench-ops: claim: %s\n", e.message ? e.message : "failed");
                        _exit(1);
                }
                _exit(0);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

static void starts(sd_bus *admin, const char *prefix, unsigned long count, uid_t uid) {
        g_autofree uint64_t *ns = calloc(count ? count : 1, sizeof(uint64_t));
        unsigned long failed = 0, n = 0;
        char uuid[64];

        for (unsigned long i = 0; i < count; i++) {
                g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
                uint64_t t0 = now_ns();
                int r;

                uuid_of(uuid, sizeof(uuid), prefix, i);
                r = start_reserve(uuid, &e);
                if (r >= 0)
                        r = start_claim(uuid, uid);
                if (r < 0) {
                        fprintf(stderr, "bench-ops: start %lu: %s\n", i, e.message ? e.message : strerror(-r));
                        failed++;
                } else
                        ns[n++] = now_ns() - t0;
                (void) rma_client_release(admin, uuid, NULL);
        }
        qsort(ns, n, sizeof(uint64_t), compare_u64);
        if (n == 0)
                printf("- - - %lu\n", failed);
        else
                printf("%.1f %.1f %.1f %lu\n", (double) ns[n / 2] / 1e6, (double) ns[(n * 99 + 99) / 100 - 1] / 1e6,
                       (double) ns[n - 1] / 1e6, failed);
}

int main(int argc, char *argv[]) {
        g_auto(sd_bus_error) e = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus) bus = NULL;
        const char *cmd = argc > 2 ? argv[1] : "";
        char uuid[64];
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc < 3) {
                fprintf(stderr, "usage: see the comment at the top of bench-ops.c\n");
                return 2;
        }
        bus = open_or_die(argv[2]);

        if (argc == 6 && (strcmp(cmd, "reserve") == 0 || strcmp(cmd, "claim") == 0 || strcmp(cmd, "release") == 0 ||
                          strcmp(cmd, "storm") == 0 || strcmp(cmd, "connect-claim") == 0)) {
                unsigned long from = strtoul(argv[4], NULL, 10), count = strtoul(argv[5], NULL, 10);
                for (unsigned long i = from; i < from + count; i++) {
                        uint64_t size;
                        int fd = -EBADF;

                        uuid_of(uuid, sizeof(uuid), argv[3], i);
                        if (cmd[0] == 'r' && cmd[2] == 's')
                                r = rma_client_reserve(bus, uuid, "bench", "", NULL, &e);
                        else if (cmd[0] == 'r')
                                r = rma_client_release(bus, uuid, &e);
                        else if (cmd[0] == 'c' && cmd[1] == 'o') {
                                /* The wrapper's whole path: a connection of its own per Claim. */
                                g_autoptr(sd_bus) fresh = open_or_die(argv[2]);
                                r = rma_client_claim(fresh, uuid, &fd, &size, &e);
                                if (r >= 0)
                                        close(fd);
                        } else {
                                r = cmd[0] == 's' ? rma_client_reserve(bus, uuid, "bench", "", NULL, &e) : 0;
                                if (r >= 0)
                                        r = rma_client_claim(bus, uuid, &fd, &size, &e);
                                if (r >= 0)
                                        close(fd);   /* the lease lasts as long as this process */
                        }
                        if (r < 0)
                                die(cmd, &e, r);
                }
                if (strcmp(cmd, "claim") == 0 || strcmp(cmd, "storm") == 0 || strcmp(cmd, "connect-claim") == 0) {
                        printf("done\n");
                        hold_until_eof();
                }
                return 0;
        }
        if (strcmp(cmd, "hold-regions") == 0 && argc == 6) {
                unsigned long from = strtoul(argv[4], NULL, 10), count = strtoul(argv[5], NULL, 10);
                struct rlimit rl;
                int *fds = calloc(count ? count : 1, sizeof(int));
                char line[64];
                FILE *in = fdopen(STDIN_FILENO, "r");

                /* One fd per region held, beyond the usual soft limit. */
                if (!fds || !in || getrlimit(RLIMIT_NOFILE, &rl) < 0)
                        abort();
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
                for (unsigned long i = 0; i < count; i++) {
                        uint64_t size;
                        uuid_of(uuid, sizeof(uuid), argv[3], from + i);
                        r = rma_client_reserve(bus, uuid, "bench", "", NULL, &e);
                        if (r >= 0)
                                r = rma_client_claim(bus, uuid, &fds[i], &size, &e);
                        if (r < 0)
                                die("hold-regions", &e, r);
                }
                printf("done\n");
                while (fgets(line, sizeof(line), in)) {
                        if (strcmp(line, "split\n") != 0)
                                continue;
                        bus = sd_bus_flush_close_unref(bus);
                        if (fork() == 0) {
                                for (unsigned long i = count / 2; i < count; i++)
                                        close(fds[i]);
                                printf("split\n");
                                hold_until_eof();
                                _exit(0);
                        }
                        _exit(0);   /* the claimant: every lease ends */
                }
                return 0;
        }
        if (strcmp(cmd, "starts") == 0 && argc == 6) {
                starts(bus, argv[3], strtoul(argv[4], NULL, 10), (uid_t) strtoul(argv[5], NULL, 10));
                return 0;
        }
        if (strcmp(cmd, "wait-free") == 0 && argc == 4) {
                uint32_t want = (uint32_t) strtoul(argv[3], NULL, 10);
                for (int i = 0; i < 100000 && free_rmas(bus) != want; i++)
                        usleep(100);
                return free_rmas(bus) == want ? 0 : 1;
        }
        if (strcmp(cmd, "reclaim") == 0 && argc == 4) {
                uint64_t size = strtoull(argv[3], NULL, 10), t0, t_reclaim, t_memset;
                uint32_t total = free_rmas(bus);
                int ready[2], status;
                unsigned char *p;
                pid_t pid;

                uuid_of(uuid, sizeof(uuid), "ecec0000", (unsigned long) getpid());
                r = rma_client_reserve(bus, uuid, "bench", "", NULL, &e);
                if (r < 0)
                        die("Reserve", &e, r);
                if (pipe2(ready, O_CLOEXEC) < 0)
                        abort();
                pid = fork();
                if (pid == 0) {
                        g_autoptr(sd_bus) own = open_or_die(argv[2]);
                        uint64_t got;
                        int fd = -EBADF;
                        r = rma_client_claim(own, uuid, &fd, &got, &e);
                        if (r < 0)
                                die("Claim", &e, r);
                        p = mmap(NULL, got, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                        if (p == MAP_FAILED)
                                _exit(1);
                        memset(p, 0xa5, got);   /* every page owned, as a guest's would be */
                        (void) !write(ready[1], "r", 1);
                        _exit(0);               /* the region dies with its last holder: us */
                }
                close(ready[1]);
                if (read(ready[0], uuid, 1) != 1 || waitpid(pid, &status, 0) < 0)
                        die("holder", NULL, -ECHILD);
                t0 = now_ns();
                while (free_rmas(bus) != total)
                        ;
                t_reclaim = now_ns() - t0;
                p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                memset(p, 0x5a, size);   /* fault the pages in first: memset alone is the baseline */
                t0 = now_ns();
                memset(p, 0, size);
                t_memset = now_ns() - t0;
                munmap(p, size);
                printf("%.3f %.3f\n", (double) t_reclaim / 1e6, (double) t_memset / 1e6);
                return 0;
        }
        fprintf(stderr, "bench-ops: unknown command or arguments\n");
        return 2;
}
