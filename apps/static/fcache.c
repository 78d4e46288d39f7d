/* fcache.c - the per-shard open-file and small-content cache (fcache.h). */
#include "fcache.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fcache {
    fcache_limits lim;
    fc_entry **buckets;
    size_t mask;   /* buckets - 1 (a power of two) */
    fc_entry *mru; /* head of the LRU list */
    fc_entry *lru; /* tail */
    size_t n;
    uint64_t bytes;
};

fcache_limits fcache_limits_default(void)
{
    return (fcache_limits){
        .entries = 1024,
        .bytes = 32u << 20,
        .content_max = 64u << 10,
        .revalidate_ms = 1000,
    };
}

fc_blob *fc_blob_new(size_t len)
{
    fc_blob *b = malloc(sizeof *b + (len ? len : 1));
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    return b;
}

void fc_blob_unref(fc_blob *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

void fc_blob_release(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    fc_blob_unref(ctx);
}

/* The key's hash, eight bytes at a step (a multiply and a shift each; the
 * byte-wise FNV-1a before was five instructions per byte), the length and
 * the dir flag folded into the seed.  Keys are paths that opened beneath
 * the root, so the chains stay as long as the files allow. */
static uint64_t key_hash(const char *key, size_t klen, bool dir)
{
    uint64_t h = 0x9e3779b97f4a7c15ull * ((uint64_t)klen * 2 + dir + 1);
    size_t i = 0;
    for (; i + 8 <= klen; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    /* The tail (0-7 bytes), loaded without a loop: the last 8 bytes of a
     * longer key (overlapping the last step), two overlapping 4-byte loads,
     * or three single bytes. */
    size_t r = klen - i;
    uint64_t t = 0;
    if (klen >= 8 && r) {
        memcpy(&t, key + klen - 8, 8);
    } else if (r >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, key + i, 4);
        memcpy(&hi, key + klen - 4, 4);
        t = (uint64_t)hi << 32 | lo;
    } else if (r) {
        t = (uint64_t)(uint8_t)key[i] << 16 | (uint64_t)(uint8_t)key[i + r / 2] << 8 |
            (uint8_t)key[klen - 1];
    }
    h = (h ^ t) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

fcache *fcache_new(const fcache_limits *lim)
{
    fcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lim = *lim;
    size_t nb = 16;
    while (nb < (size_t)lim->entries * 2 && nb < ((size_t)1 << 24))
        nb <<= 1;
    c->buckets = calloc(nb, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->mask = nb - 1;
    return c;
}

const fcache_limits *fcache_limits_of(const fcache *c)
{
    return &c->lim;
}

size_t fcache_count(const fcache *c)
{
    return c->n;
}

uint64_t fcache_bytes(const fcache *c)
{
    return c->bytes;
}

static void lru_unlink(fcache *c, fc_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->mru = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->lru = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(fcache *c, fc_entry *e)
{
    e->prev = NULL;
    e->next = c->mru;
    if (c->mru)
        c->mru->prev = e;
    c->mru = e;
    if (!c->lru)
        c->lru = e;
}

fc_entry *fcache_mru(fcache *c)
{
    return c->mru;
}

void fcache_drop(fcache *c, fc_entry *e)
{
    fc_entry **p = &c->buckets[e->hash & c->mask];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    lru_unlink(c, e);
    c->n--;
    if (e->body) {
        c->bytes -= e->body->len;
        fc_blob_unref(e->body);
    }
    if (e->fd >= 0)
        close(e->fd);
    spindle_fields_free(e->heads[0]); /* responses copied their bytes when they were made */
    spindle_fields_free(e->heads[1]);
    free(e);
}

void fcache_free(fcache *c)
{
    if (!c)
        return;
    while (c->lru)
        fcache_drop(c, c->lru);
    free(c->buckets);
    free(c);
}

fc_entry *fcache_get(fcache *c, const char *key, size_t klen, bool dir)
{
    uint64_t h = key_hash(key, klen, dir);
    for (fc_entry *e = c->buckets[h & c->mask]; e; e = e->hnext) {
        if (e->hash == h && e->dir == dir && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            if (c->mru != e) {
                lru_unlink(c, e);
                lru_push(c, e);
            }
            return e;
        }
    }
    return NULL;
}

fc_entry *fcache_put(fcache *c, const char *key, size_t klen, bool dir, const fc_info *info, int fd,
                     fc_blob *body, uint64_t now)
{
    uint64_t add = body ? body->len : 0;
    if (c->lim.entries == 0 || add > c->lim.bytes)
        return NULL;
    fc_entry *e = malloc(sizeof *e + klen + 1);
    if (!e)
        return NULL;
    fc_entry *old = fcache_get(c, key, klen, dir);
    if (old)
        fcache_drop(c, old);
    while (c->lru && (c->n >= c->lim.entries || c->bytes + add > c->lim.bytes))
        fcache_drop(c, c->lru);
    e->hash = key_hash(key, klen, dir);
    e->checked = now;
    e->fd = body ? -1 : fd;
    e->body = body;
    e->heads[0] = e->heads[1] = NULL;
    e->info = *info;
    e->dir = dir;
    e->index = e->checking = false;
    e->lease = LEASE_NONE;
    e->lease_gen = 0;
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    fc_entry **b = &c->buckets[e->hash & c->mask];
    e->hnext = *b;
    *b = e;
    lru_push(c, e);
    c->n++;
    c->bytes += add;
    return e;
}
