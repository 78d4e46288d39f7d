/* fmap.c - spindle-static's buffers and file mappings (fmap.h): the pooled
 * buffers of the pread path, reference-counted mappings of the mmap path,
 * and the process-wide cache of whole-file mappings of hot large files. */
#define _GNU_SOURCE
#include "fmap.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

static atomic_bool populate_ok = true; /* MADV_POPULATE_READ known to work */

/* ------------------------------------------------------------------------ */
/* Pooled buffers (pread path): small bodies (SMALL_MAX) and windows of      */
/* large ones (window bytes).  Taken on a shard or an offload thread,       */
/* released by spindle on the shard thread: a mutex, never held across      */
/* anything.                                                                */
/* ------------------------------------------------------------------------ */

static void *small_slots[256]; /* 16 MiB at most */
static void *win_slots[32];    /* 8 MiB at the default window */
bufpool small_pool = {PTHREAD_MUTEX_INITIALIZER, SMALL_MAX, 256, 0, small_slots};
bufpool win_pool = {PTHREAD_MUTEX_INITIALIZER, WINDOW_MIN, 32, 0, win_slots};

void *buf_get(bufpool *p)
{
    void *b = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n)
        b = p->slots[--p->n];
    pthread_mutex_unlock(&p->mu);
    return b ? b : malloc(p->size);
}

/* The release callback: ctx is the pool, data the buffer. */
void buf_put(void *ctx, const void *data, size_t len)
{
    (void)len;
    bufpool *p = ctx;
    void *b = (void *)(uintptr_t)data;
    pthread_mutex_lock(&p->mu);
    if (p->n < p->max) {
        p->slots[p->n++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    free(b);
}

static void pool_drain(bufpool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->n)
        free(p->slots[--p->n]);
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------------------ */
/* File mappings (mmap path): one reference held by every response and one  */
/* by every slice spindle holds (and one by the cache, for a cached          */
/* mapping); the last one unmaps.                                            */
/* ------------------------------------------------------------------------ */

void fmap_unref(fmap *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        munmap(m->base, m->len);
        free(m);
    }
}

void slice_release(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    fmap_unref(ctx);
}

/* Fault the pages of [p, p + n) in here, before the shard's send would.
 * false when the file no longer covers them (it was truncated under us). */
bool prefault(const uint8_t *p, size_t n)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(page - 1);
    size_t len = (size_t)((uintptr_t)p + n - a);
    if (atomic_load_explicit(&populate_ok, memory_order_relaxed)) {
        int rc;
        do
            rc = madvise((void *)a, len, MADV_POPULATE_READ);
        while (rc != 0 && (errno == EINTR || errno == EAGAIN));
        if (rc == 0)
            return true;
        if (errno != EINVAL)
            return false;                  /* EFAULT: a SIGBUS would have followed */
        atomic_store(&populate_ok, false); /* kernel < 5.14 */
    }
    madvise((void *)a, len, MADV_WILLNEED); /* a hint only: cannot see truncation */
    return true;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* The mapping cache.  A hot file is not opened-mapped-prefaulted-unmapped   */
/* per request: whole-file mappings of files in (SMALL_MAX, CACHE_FILE_MAX]  */
/* are kept, keyed by (dev, ino, size, mtime ns) as fstat() of the request's */
/* own descriptor reports them, so a changed file is never served from an    */
/* old entry (the entry is replaced).  Bounded (CACHE_ENTRIES entries,       */
/* CACHE_BYTES_MAX bytes, LRU), shared by the shard and offload threads    */
/* under a mutex held only for the lookup (never across mmap or madvise),   */
/* and emptied of entries idle for CACHE_IDLE_NS                             */
/* by a small sweeper thread.  Dropping an entry drops the cache's reference */
/* only: responses still sending from it keep it mapped until released.      */
/* ------------------------------------------------------------------------ */

#define CACHE_ENTRIES   64
#define CACHE_FILE_MAX  (64u << 20)
#define CACHE_BYTES_MAX (256ull << 20)
#define CACHE_IDLE_NS   1000000000ull /* unused this long: unmapped */
#define POP_TTL_NS      1000000000ull /* prefault knowledge older than this: redo */
#define CHUNK_SHIFT     20            /* prefault bookkeeping in 1 MiB chunks */

typedef struct centry {
    dev_t dev;
    ino_t ino;
    uint64_t size, mns;
    uint64_t used; /* now_ns() of the last hit */
    fmap *map;
} centry;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    centry e[CACHE_ENTRIES];
    size_t n;
    uint64_t bytes;
    bool stop;
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Remove entry i (cache.mu held); its map goes to drop[] for unref later. */
static void cache_remove(size_t i, fmap **drop, size_t *ndrop)
{
    drop[(*ndrop)++] = cache.e[i].map;
    cache.bytes -= cache.e[i].size;
    cache.e[i] = cache.e[--cache.n];
}

/* A reference to the cached whole-file mapping of the file fstat()ed as st,
 * mapping and inserting it on a miss; NULL when it is not cacheable (size)
 * or mmap failed (the caller maps per response or reads instead). */
fmap *cache_get(int fd, const struct stat *st)
{
    uint64_t size = (uint64_t)st->st_size;
    if (size <= SMALL_MAX || size > CACHE_FILE_MAX)
        return NULL;
    uint64_t mns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    uint64_t now = now_ns();
    fmap *drop[CACHE_ENTRIES + 1], *m = NULL;
    size_t ndrop = 0;
    pthread_mutex_lock(&cache.mu);
    for (size_t i = 0; i < cache.n; i++) {
        centry *e = &cache.e[i];
        if (e->dev != st->st_dev || e->ino != st->st_ino)
            continue;
        if (e->size == size && e->mns == mns) {
            e->used = now;
            m = e->map;
            atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        } else {
            cache_remove(i, drop, &ndrop); /* the file changed: never serve it */
        }
        break;
    }
    pthread_mutex_unlock(&cache.mu);
    for (size_t i = 0; i < ndrop; i++)
        fmap_unref(drop[i]);
    if (m)
        return m;

    void *base = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return NULL;
    m = malloc(sizeof *m);
    if (!m) {
        munmap(base, (size_t)size);
        return NULL;
    }
    atomic_init(&m->refs, 2); /* the caller's and the cache's */
    m->base = base;
    m->len = (size_t)size;
    atomic_init(&m->pop_bits, 0);
    atomic_init(&m->pop_at, now);
    ndrop = 0;
    pthread_mutex_lock(&cache.mu);
    bool dup = false;
    for (size_t i = 0; i < cache.n && !dup; i++)
        dup = cache.e[i].dev == st->st_dev && cache.e[i].ino == st->st_ino;
    if (dup) {
        atomic_store_explicit(&m->refs, 1,
                              memory_order_relaxed); /* another thread won: ours is uncached */
    } else {
        while (cache.n && (cache.n == CACHE_ENTRIES || cache.bytes + size > CACHE_BYTES_MAX)) {
            size_t lru = 0;
            for (size_t i = 1; i < cache.n; i++)
                if (cache.e[i].used < cache.e[lru].used)
                    lru = i;
            cache_remove(lru, drop, &ndrop);
        }
        cache.e[cache.n++] = (centry){st->st_dev, st->st_ino, size, mns, now, m};
        cache.bytes += size;
    }
    pthread_mutex_unlock(&cache.mu);
    for (size_t i = 0; i < ndrop; i++)
        fmap_unref(drop[i]);
    return m;
}

/* For the shard thread, which must not block: a reference to the cached
 * mapping of the file fstat()ed as st when every 1 MiB chunk of
 * [off, off + n) was prefaulted within POP_TTL_NS, else NULL (no mapping,
 * no insertion, no madvise here). */
fmap *cache_peek_hot(const struct stat *st, uint64_t off, uint64_t n)
{
    uint64_t size = (uint64_t)st->st_size;
    if (size <= SMALL_MAX || size > CACHE_FILE_MAX || n == 0)
        return NULL;
    uint64_t mns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    uint64_t now = now_ns();
    fmap *m = NULL;
    pthread_mutex_lock(&cache.mu);
    for (size_t i = 0; i < cache.n; i++) {
        centry *e = &cache.e[i];
        if (e->dev != st->st_dev || e->ino != st->st_ino || e->size != size || e->mns != mns)
            continue;
        fmap *c = e->map;
        uint64_t bits = atomic_load_explicit(&c->pop_bits, memory_order_relaxed);
        bool fresh = (int64_t)(now - atomic_load_explicit(&c->pop_at, memory_order_relaxed)) <
                     (int64_t)POP_TTL_NS;
        for (uint64_t k = off >> CHUNK_SHIFT; fresh && k <= (off + n - 1) >> CHUNK_SHIFT; k++)
            fresh = (bits >> k) & 1;
        if (fresh) {
            e->used = now;
            m = c;
            atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        }
        break;
    }
    pthread_mutex_unlock(&cache.mu);
    return m;
}

/* Drop entries idle for CACHE_IDLE_NS (all of them when the server stops),
 * so an idle server holds no mapping and no deleted file stays pinned. */
static void *cache_sweeper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cache.mu);
    while (!cache.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&cache.cv, &cache.mu, &ts);
        uint64_t now = now_ns();
        fmap *drop[CACHE_ENTRIES];
        size_t ndrop = 0;
        for (size_t i = cache.n; i-- > 0;)
            if (cache.stop || (int64_t)(now - cache.e[i].used) >= (int64_t)CACHE_IDLE_NS)
                cache_remove(i, drop, &ndrop);
        if (ndrop) {
            pthread_mutex_unlock(&cache.mu);
            for (size_t i = 0; i < ndrop; i++)
                fmap_unref(drop[i]);
            pthread_mutex_lock(&cache.mu);
        }
    }
    pthread_mutex_unlock(&cache.mu);
    return NULL;
}

/* prefault() for a cached mapping, skipped for the 1 MiB chunks already
 * prefaulted within the last POP_TTL_NS (so a hot file costs no madvise;
 * the knowledge expires so that pages reclaimed meanwhile are faulted in
 * here again, not by the shard's send).  A truncation after the chunk was
 * prefaulted is then met by the kernel's send instead: EFAULT, and spindle
 * closes that connection (docs/static.md). */
bool prefault_cached(fmap *m, uint64_t off, size_t n)
{
    uint64_t now = now_ns();
    if ((int64_t)(now - atomic_load_explicit(&m->pop_at, memory_order_relaxed)) >=
        (int64_t)POP_TTL_NS) {
        atomic_store_explicit(&m->pop_at, now, memory_order_relaxed);
        atomic_store_explicit(&m->pop_bits, 0, memory_order_relaxed);
    }
    uint64_t bits = atomic_load_explicit(&m->pop_bits, memory_order_relaxed);
    for (uint64_t c = off >> CHUNK_SHIFT; c <= (off + n - 1) >> CHUNK_SHIFT; c++) {
        if (bits & (1ull << c))
            continue;
        uint64_t a = c << CHUNK_SHIFT;
        size_t len = (size_t)1 << CHUNK_SHIFT;
        if (a + len > m->len)
            len = (size_t)(m->len - a);
        if (!prefault((const uint8_t *)m->base + a, len))
            return false;
        atomic_fetch_or_explicit(&m->pop_bits, 1ull << c, memory_order_relaxed);
    }
    return true;
}

static pthread_t sweeper;
static bool swept;

void mapcache_start(void)
{
    swept = pthread_create(&sweeper, NULL, cache_sweeper, NULL) == 0;
}

void mapcache_stop(void)
{
    pthread_mutex_lock(&cache.mu);
    cache.stop = true;
    pthread_cond_signal(&cache.cv);
    pthread_mutex_unlock(&cache.mu);
    if (swept)
        pthread_join(sweeper, NULL);
    swept = false;
    while (cache.n)
        fmap_unref(cache.e[--cache.n].map);
    pool_drain(&small_pool);
    pool_drain(&win_pool);
}
