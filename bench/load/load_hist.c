/* load_hist.c - the log-linear histogram (load_hist.h). */
#include "load_hist.h"

#include <string.h>

uint32_t load_hist_index(uint64_t v)
{
    if (v < 2u * LOAD_HIST_SUB)
        return (uint32_t)v;
    uint32_t m = 63u - (uint32_t)__builtin_clzll(v); /* >= SUB_BITS + 1 */
    uint32_t shift = m - LOAD_HIST_SUB_BITS;         /* v >> shift in [SUB, 2 SUB) */
    return shift * LOAD_HIST_SUB + (uint32_t)(v >> shift);
}

uint64_t load_hist_bucket_high(uint32_t idx)
{
    if (idx < 2u * LOAD_HIST_SUB)
        return idx;
    uint32_t shift = idx / LOAD_HIST_SUB - 1u;
    uint64_t s = idx - shift * LOAD_HIST_SUB; /* in [SUB, 2 SUB) */
    return ((s + 1u) << shift) - 1u;
}

void load_hist_reset(load_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void load_hist_add(load_hist *h, uint64_t v)
{
    h->b[load_hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void load_hist_merge(load_hist *dst, const load_hist *src)
{
    for (uint32_t i = 0; i < LOAD_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t load_hist_percentile(const load_hist *h, double p)
{
    if (!h->count)
        return 0;
    uint64_t want = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < LOAD_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t v = load_hist_bucket_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
