/* Durations as a Prometheus histogram. */
#include "histogram.h"

/* Upper bounds in µs: a Reserve takes tens of µs, a Claim's region some more, a scrub of a
 * 256 MiB RMA tens of ms, and anything past seconds is a problem to see, not to resolve. */
static const uint64_t bucket_usec[HISTOGRAM_BUCKETS] = {
        100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000,
};

void histogram_observe(Histogram *h, uint64_t usec) {
        size_t i = 0;

        while (i < HISTOGRAM_BUCKETS && usec > bucket_usec[i])
                i++;
        h->in_bucket[i]++;
        h->count++;
        h->sum_usec += usec;
}

void histogram_format(GString *out, const char *name, const char *help, const Histogram *h) {
        uint64_t cumulative = 0;

        g_string_append_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
        for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
                cumulative += h->in_bucket[i];
                g_string_append_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, (double) bucket_usec[i] / 1e6,
                                       (unsigned long long) cumulative);
        }
        g_string_append_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long) h->count);
        g_string_append_printf(out, "%s_sum %.6f\n%s_count %llu\n", name, (double) h->sum_usec / 1e6, name,
                               (unsigned long long) h->count);
}
