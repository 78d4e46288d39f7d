/* load_hist.h - a log-linear latency histogram (HdrHistogram-style).
 *
 * Values (nanoseconds) below 2 * LOAD_HIST_SUB are counted exactly; above,
 * each power of two is split into LOAD_HIST_SUB linear buckets, so every
 * value is kept within 1/LOAD_HIST_SUB (0.8%) of itself, from 1 ns to
 * 2^63.  Recording is a count of leading zeros, a shift and an increment;
 * percentiles walk the buckets once.  Histograms of several threads merge by
 * adding.  Thread: one writer; merge after the writers stopped.
 */
#ifndef SPINDLE_LOAD_HIST_H
#define SPINDLE_LOAD_HIST_H

#include <stdint.h>

#define LOAD_HIST_SUB_BITS 7u
#define LOAD_HIST_SUB      (1u << LOAD_HIST_SUB_BITS) /* 128 buckets per power of two */
#define LOAD_HIST_BUCKETS  ((64u - LOAD_HIST_SUB_BITS) * LOAD_HIST_SUB + LOAD_HIST_SUB)

typedef struct load_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t min, max; /* exact */
    uint64_t b[LOAD_HIST_BUCKETS];
} load_hist;

void load_hist_reset(load_hist *h);
void load_hist_add(load_hist *h, uint64_t v);
/* dst += src */
void load_hist_merge(load_hist *dst, const load_hist *src);
/* The smallest recorded value v such that at least p (0..100) percent of
 * the values are <= v, as the highest value of its bucket (never above
 * max).  0 when empty. */
uint64_t load_hist_percentile(const load_hist *h, double p);

/* Bucket math, exposed for tests: index of a value, and the highest value
 * a bucket holds. */
uint32_t load_hist_index(uint64_t v);
uint64_t load_hist_bucket_high(uint32_t idx);

#endif
