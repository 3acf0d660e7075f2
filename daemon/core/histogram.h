/* A Prometheus histogram of durations: fixed buckets from 100 µs to 10 s, O(1) to observe,
 * no allocation. The broker keeps a few (Reserve, Claim, scrub) for rma-brokerd's metrics. */
#pragma once

#include <glib.h>
#include <stdint.h>

#define HISTOGRAM_BUCKETS 15

typedef struct Histogram {
        uint64_t in_bucket[HISTOGRAM_BUCKETS + 1];   /* per bucket (not cumulative); the last: above all */
        uint64_t count;
        uint64_t sum_usec;
} Histogram;

void histogram_observe(Histogram *h, uint64_t usec);
/* The family NAME (a _seconds name) with its HELP, TYPE, cumulative _bucket lines (le=
 * in seconds, +Inf last), _sum and _count. */
void histogram_format(GString *out, const char *name, const char *help, const Histogram *h);
