/* test_load_hist.c - spindle-load's log-linear latency histogram
 * (bench/load/load_hist.c): bucket math, percentiles of known
 * distributions within a bucket's precision, exact min/max/count/sum, and
 * the merge of several threads' histograms. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "load_hist.h"

static load_hist *hist(void)
{
    load_hist *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    load_hist_reset(h);
    return h;
}

/* |reported - exact| within one bucket: exact below 2 * SUB, else at most
 * exact / SUB above it (a bucket's highest value), never below it. */
static void assert_within_bucket(uint64_t reported, uint64_t exact)
{
    cr_assert_geq(reported, exact, "%lu below the exact %lu", (unsigned long)reported,
                  (unsigned long)exact);
    uint64_t slack = exact < 2u * LOAD_HIST_SUB ? 0 : exact / LOAD_HIST_SUB;
    cr_assert_leq(reported - exact, slack, "%lu vs exact %lu: more than a bucket",
                  (unsigned long)reported, (unsigned long)exact);
}

Test(load_hist, small_values_are_exact)
{
    for (uint64_t v = 0; v < 2u * LOAD_HIST_SUB; v++) {
        cr_assert_eq(load_hist_index(v), v);
        cr_assert_eq(load_hist_bucket_high(load_hist_index(v)), v);
    }
}

Test(load_hist, buckets_are_contiguous_and_within_precision)
{
    /* Every bucket's high + 1 starts the next bucket, up to 2^63. */
    for (uint32_t i = 0; i + 1 < LOAD_HIST_BUCKETS; i++) {
        uint64_t hi = load_hist_bucket_high(i);
        cr_assert_eq(load_hist_index(hi), i, "bucket %u", i);
        cr_assert_eq(load_hist_index(hi + 1), i + 1, "bucket %u", i + 1);
    }
    cr_assert_eq(load_hist_index(UINT64_MAX), LOAD_HIST_BUCKETS - 1);
    cr_assert_eq(load_hist_bucket_high(LOAD_HIST_BUCKETS - 1), UINT64_MAX);
    /* The relative width of a bucket is at most 1/SUB. */
    uint64_t vals[] = {256, 1000, 12345, 999999, 1ull << 40, (1ull << 40) + 12345678};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
        assert_within_bucket(load_hist_bucket_high(load_hist_index(vals[k])), vals[k]);
}

Test(load_hist, uniform_distribution_percentiles)
{
    /* 1..100000 ns once each: the p-th percentile is exactly p * 1000. */
    load_hist *h = hist();
    for (uint64_t v = 1; v <= 100000; v++)
        load_hist_add(h, v);
    double ps[] = {1, 10, 50, 90, 99, 99.9};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++)
        assert_within_bucket(load_hist_percentile(h, ps[k]), (uint64_t)llround(ps[k] * 1000));
    cr_assert_eq(load_hist_percentile(h, 100), 100000);
    cr_assert_eq(h->min, 1);
    cr_assert_eq(h->max, 100000);
    cr_assert_eq(h->count, 100000);
    cr_assert_eq(h->sum, 100000ull * 100001ull / 2);
    free(h);
}

Test(load_hist, two_point_distribution)
{
    /* 990 fast requests (50 us) and 10 slow ones (20 ms): p99 is the last
     * fast one, p99.1 and above the slow. */
    load_hist *h = hist();
    for (int i = 0; i < 990; i++)
        load_hist_add(h, 50000);
    for (int i = 0; i < 10; i++)
        load_hist_add(h, 20000000);
    assert_within_bucket(load_hist_percentile(h, 50), 50000);
    assert_within_bucket(load_hist_percentile(h, 99), 50000);
    cr_assert_eq(load_hist_percentile(h, 99.1), 20000000, "never above max, which is exact");
    cr_assert_eq(load_hist_percentile(h, 99.9), 20000000);
    cr_assert_eq(h->max, 20000000);
    free(h);
}

Test(load_hist, max_is_exact_and_caps_percentiles)
{
    load_hist *h = hist();
    load_hist_add(h, 123456789); /* not a bucket's high value */
    cr_assert_neq(load_hist_bucket_high(load_hist_index(123456789)), 123456789);
    cr_assert_eq(h->max, 123456789);
    cr_assert_eq(load_hist_percentile(h, 50), 123456789);
    cr_assert_eq(load_hist_percentile(h, 100), 123456789);
    free(h);
}

Test(load_hist, empty)
{
    load_hist *h = hist();
    cr_assert_eq(load_hist_percentile(h, 50), 0);
    cr_assert_eq(h->count, 0);
    free(h);
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(load_hist, exponential_distribution)
{
    /* Deterministic exponential sample (mean 100 us) from an LCG; the exact
     * percentiles come from the sorted sample. */
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof *v);
    load_hist *h = hist();
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
        v[i] = (uint64_t)(-log(u) * 100000.0) + 1;
        load_hist_add(h, v[i]);
    }
    qsort(v, N, sizeof *v, cmp);
    unsigned permille[] = {500, 900, 990, 999};
    for (size_t k = 0; k < sizeof permille / sizeof permille[0]; k++) {
        size_t rank = (permille[k] * (size_t)N + 999) / 1000; /* 1-based, exact */
        assert_within_bucket(load_hist_percentile(h, permille[k] / 10.0), v[rank - 1]);
    }
    cr_assert_eq(h->max, v[N - 1]);
    cr_assert_eq(h->min, v[0]);
    free(v);
    free(h);
}

Test(load_hist, merge_across_threads_equals_one_histogram)
{
    /* Four "threads" record interleaved parts of one sample; their merge
     * is bucket for bucket the histogram of the whole sample. */
    load_hist *all = hist(), *part[4], *m = hist();
    for (int t = 0; t < 4; t++)
        part[t] = hist();
    for (uint64_t i = 0; i < 40000; i++) {
        uint64_t val = (i * 2654435761u) % 5000000u + 1000;
        load_hist_add(all, val);
        load_hist_add(part[i % 4], val);
    }
    for (int t = 0; t < 4; t++)
        load_hist_merge(m, part[t]);
    cr_assert_eq(m->count, all->count);
    cr_assert_eq(m->sum, all->sum);
    cr_assert_eq(m->min, all->min);
    cr_assert_eq(m->max, all->max);
    for (uint32_t i = 0; i < LOAD_HIST_BUCKETS; i++)
        cr_assert_eq(m->b[i], all->b[i], "bucket %u", i);
    cr_assert_eq(load_hist_percentile(m, 99.9), load_hist_percentile(all, 99.9));
    /* Merging an empty histogram changes nothing (its min is UINT64_MAX). */
    load_hist *e = hist();
    load_hist_merge(m, e);
    cr_assert_eq(m->min, all->min);
    cr_assert_eq(m->count, all->count);
    for (int t = 0; t < 4; t++)
        free(part[t]);
    free(all);
    free(m);
    free(e);
}
