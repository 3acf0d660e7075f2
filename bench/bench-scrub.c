/* Benchmark: the kvm backend's zeroing of an RMA (kvm_rma_scrub) against a memset of the
 * same size, in the same run, rounds interleaved.
 *
 * The RMA is played as the fake POWER kernel plays it (tests/helpers): a shared memfd
 * whose pages exist already (an RMA is memory the kernel set aside at boot; a tenant has
 * used it). Measured per round:
 *   memset      memset of a mapping of the region that was written before (warm)
 *   fresh       memset right after a new mapping of the region, populated with
 *               MADV_POPULATE_WRITE: what the first write through a new mapping costs on
 *               this host, whatever writes it
 *   scrub       kvm_rma_scrub(): mmap (MAP_POPULATE), memset, munmap, as the broker does
 *   per-fault   the same without MAP_POPULATE: each 4 KiB page faulted in from user space
 *               as memset first touches it (the broker before 2026-12-04)
 * Prints min / median / max of each, in ms per GiB, and the medians against memset's and
 * fresh's.
 * Usage: bench-scrub [SIZE_MIB [ROUNDS]]   (256, 9) */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "kvm-rma.h"

enum { MEMSET, FRESH, SCRUB, PER_FAULT, _KIND_MAX };
static const char *const kind_names[_KIND_MAX] = { "memset (warm mapping)", "memset (fresh mapping)",
                                                   "scrub (kvm_rma_scrub)", "per-fault (before)" };

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

static void fresh(int fd, size_t size) {
        char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        if (p == MAP_FAILED || madvise(p, size, MADV_POPULATE_WRITE) < 0)
                abort();
        memset(p, 0, size);
        munmap(p, size);
}

static void per_fault(int fd, size_t size) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        if (p == MAP_FAILED)
                abort();
        memset(p, 0, size);
        munmap(p, size);
}

int main(int argc, char *argv[]) {
        size_t size = (size_t) (argc > 1 ? strtoul(argv[1], NULL, 10) : 256) << 20;
        unsigned rounds = argc > 2 ? (unsigned) strtoul(argv[2], NULL, 10) : 9;
        _cleanup_close_ int fd = memfd_create("rma", MFD_CLOEXEC);
        double t[_KIND_MAX][64], gib = (double) size / (1 << 30);
        char *buf;

        if (fd < 0 || ftruncate(fd, (off_t) size) < 0 || rounds == 0 || rounds > 64)
                return 2;
        per_fault(fd, size);   /* the RMA's pages exist, as they do in the kernel's pool */
        buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);   /* stays mapped: warm */
        if (buf == MAP_FAILED)
                return 2;
        memset(buf, 1, size);
        for (unsigned r = 0; r < rounds; r++)
                for (int k = 0; k < _KIND_MAX; k++) {
                        double t0 = now_ms();
                        if (k == MEMSET)
                                memset(buf, (int) r, size);
                        else if (k == FRESH)
                                fresh(fd, size);
                        else if (k == SCRUB && kvm_rma_scrub(fd, size) < 0)
                                return 1;
                        else if (k == PER_FAULT)
                                per_fault(fd, size);
                        t[k][r] = (now_ms() - t0) / gib;
                }
        printf("  %zu MiB, %u interleaved rounds; ms per GiB, min / median / max; median against memset's, "
               "fresh's\n", size >> 20, rounds);
        for (int k = 0; k < _KIND_MAX; k++)
                qsort(t[k], rounds, sizeof(double), cmp_double);
        for (int k = 0; k < _KIND_MAX; k++) {
                double median = t[k][rounds / 2];
                printf("  %-24s %8.1f / %8.1f / %8.1f ms/GiB   %6.2f x memset  %5.2f x fresh\n", kind_names[k],
                       t[k][0], median, t[k][rounds - 1], median / t[MEMSET][rounds / 2], median / t[FRESH][rounds / 2]);
        }
        munmap(buf, size);
        return 0;
}
