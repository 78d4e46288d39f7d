/* fmap.h - spindle-static's body memory: pooled buffers for the pread path,
 * reference-counted file mappings for the mmap path, and the process-wide
 * cache of whole-file mappings of hot large files (docs/static.md, "The
 * mapping cache").  Thread-safe: used from shard and offload threads. */
#ifndef SPINDLE_STATIC_FMAP_H
#define SPINDLE_STATIC_FMAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define SMALL_MAX     (64u << 10)  /* bodies up to this: one pread into a pooled buffer */
#define WINDOW_MIN    (256u << 10) /* bytes queued per step of a large body */
#define CACHED_WINDOW (4u << 20)   /* bytes per spindle_send from a cached mapping */

/* Pooled buffers (pread path): small bodies (SMALL_MAX) and windows of
 * large ones.  Taken on a shard or an offload thread, released by spindle
 * on the shard thread: a mutex, never held across anything. */
typedef struct bufpool {
    pthread_mutex_t mu;
    size_t size; /* bytes per buffer */
    size_t max;  /* buffers kept for reuse */
    size_t n;
    void **slots;
} bufpool;

extern bufpool small_pool; /* SMALL_MAX bytes each */
extern bufpool win_pool;   /* `size` is set once at startup (the window) */

/* A buffer of p->size bytes (NULL when out of memory). */
void *buf_get(bufpool *p);
/* The release callback: ctx is the pool, data the buffer. */
void buf_put(void *ctx, const void *data, size_t len);

/* A file mapping: one reference held by every response and by every slice
 * spindle holds (and one by the cache, for a cached mapping); the last one
 * unmaps. */
typedef struct fmap {
    atomic_uint refs;
    void *base;
    size_t len;
    /* Cached mappings only (whole files, at most CACHE_FILE_MAX bytes): the
     * 1 MiB chunks known to be prefaulted, and when that knowledge was last
     * reset (CLOCK_MONOTONIC ns); see prefault_cached(). */
    _Atomic uint64_t pop_bits;
    _Atomic uint64_t pop_at;
} fmap;

void fmap_unref(fmap *m);
/* spindle_release_fn for a slice of a mapping: ctx is the fmap. */
void slice_release(void *ctx, const void *data, size_t len);
/* Fault [p, p + n) in now; false when the file no longer covers it. */
bool prefault(const uint8_t *p, size_t n);
/* CLOCK_MONOTONIC_COARSE in ns (vDSO: no system call). */
uint64_t now_ns(void);

/* The cached whole-file mapping of the file fstat()ed as st (a new
 * reference), mapping it on a miss; NULL when not cacheable or mmap failed.
 * May block (mmap): not on the shard thread. */
fmap *cache_get(int fd, const struct stat *st);
/* For the shard thread: a reference to the cached mapping when every 1 MiB
 * chunk of [off, off + n) was prefaulted within the last second, else NULL. */
fmap *cache_peek_hot(const struct stat *st, uint64_t off, uint64_t n);
/* prefault() for a cached mapping, skipping chunks known to be resident. */
bool prefault_cached(fmap *m, uint64_t off, size_t n);

/* Start the sweeper thread (drops mappings idle for 1 s); stop it, drop
 * every cached mapping and free the pooled buffers (after spindle_run). */
void mapcache_start(void);
void mapcache_stop(void);

#endif
