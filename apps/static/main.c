/* spindle-static - a static file server built only on include/spindle.h.
 *
 *   spindle-static --root DIR [--address A] [--port P] [--shards N]
 *                  [--log-level L] [--set name=value]...
 *
 * Serves the files under DIR over h2c: GET and HEAD, content types by
 * extension, ETag / Last-Modified with 304, single byte ranges, index.html
 * for directories (no listings).  Every path is resolved with openat2()
 * RESOLVE_BENEATH against a descriptor of DIR, so nothing outside DIR can
 * be reached (not by "..", not by encoded dots, not by symlinks).
 *
 * A request runs inline on its shard when the kernel can answer it without
 * waiting for the disk: the path resolves from the dentry cache (openat2
 * with RESOLVE_CACHED), a small body is in the page cache (preadv2 with
 * RWF_NOWAIT), a large one is a cached mapping prefaulted within the last
 * second.  Any other request is handed to the shard's offload thread
 * (spindle_offload()), where opening, mapping, prefaulting and reading may
 * block; the choice is made before anything is sent.  Large bodies are
 * mmap'd (hot files up to 64 MiB once, in a small cache of whole-file
 * mappings) and handed to spindle by reference, one window at a time
 * (prefaulted first, so the shard's send does not take the major faults):
 * the kernel copies straight from the page cache into the socket and no
 * body byte passes through user space on h2c.  Small bodies, and every
 * body over TLS (where user space must encrypt the bytes), are read with
 * pread() into pooled buffers.  See docs/static.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "args.h"
#include "spindle.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

#define SMALL_MAX  (64u << 10)  /* bodies up to this: one pread into a pooled buffer */
#define WINDOW_MIN (256u << 10) /* bytes queued per step of a large body */

static int root_fd = -1;
static size_t window = WINDOW_MIN;     /* max(WINDOW_MIN, max-stream-buffered) */
static atomic_bool populate_ok = true; /* MADV_POPULATE_READ known to work */
static atomic_bool cached_ok = true;   /* RESOLVE_CACHED known to work (Linux 5.12) */

/* ------------------------------------------------------------------------ */
/* Pooled buffers (pread path): small bodies (SMALL_MAX) and windows of      */
/* large ones (window bytes).  Taken on a shard or an offload thread,       */
/* released by spindle on the shard thread: a mutex, never held across      */
/* anything.                                                                */
/* ------------------------------------------------------------------------ */

typedef struct bufpool {
    pthread_mutex_t mu;
    size_t size; /* bytes per buffer */
    size_t max;  /* buffers kept for reuse */
    size_t n;
    void **slots;
} bufpool;

static void *small_slots[256]; /* 16 MiB at most */
static void *win_slots[32];    /* 8 MiB at the default window */
static bufpool small_pool = {PTHREAD_MUTEX_INITIALIZER, SMALL_MAX, 256, 0, small_slots};
static bufpool win_pool = {PTHREAD_MUTEX_INITIALIZER, WINDOW_MIN, 32, 0, win_slots};

static void *buf_get(bufpool *p)
{
    void *b = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n)
        b = p->slots[--p->n];
    pthread_mutex_unlock(&p->mu);
    return b ? b : malloc(p->size);
}

/* The release callback: ctx is the pool, data the buffer. */
static void buf_put(void *ctx, const void *data, size_t len)
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

static void fmap_unref(fmap *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        munmap(m->base, m->len);
        free(m);
    }
}

static void slice_release(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    fmap_unref(ctx);
}

/* Fault the pages of [p, p + n) in here, before the shard's send would.
 * false when the file no longer covers them (it was truncated under us). */
static bool prefault(const uint8_t *p, size_t n)
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

static uint64_t now_ns(void)
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
#define CACHED_WINDOW   (4u << 20)    /* bytes per spindle_send from a cached mapping */

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
static fmap *cache_get(int fd, const struct stat *st)
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
static fmap *cache_peek_hot(const struct stat *st, uint64_t off, uint64_t n)
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
static bool prefault_cached(fmap *m, uint64_t off, size_t n)
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

/* ------------------------------------------------------------------------ */
/* Per-response state                                                        */
/* ------------------------------------------------------------------------ */

typedef struct resp {
    int fd;
    fmap *map;        /* NULL: pread into pooled buffers */
    bool cached;      /* map is a cache entry's whole-file mapping */
    uint64_t map_off; /* file offset of map->base */
    uint64_t off;     /* next file byte to queue */
    uint64_t end;     /* one past the last byte of the body */
} resp;

static void resp_free(resp *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->map)
        fmap_unref(r->map);
    free(r);
}

/* Read exactly n bytes at off; false on error or a short file. */
static bool pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return true;
}

/* Queue the next window of the body, as ONE spindle_send() of `window`
 * bytes (less only for the last).  A window is at least max-stream-buffered
 * bytes, so that single send always leaves the stream's queue at or above
 * the limit, and spindle reports on_writable when it drains below: this
 * runs again then.  (Several smaller sends would not be enough: the shard
 * may send some before it applies the next, and never see the queue reach
 * the limit, and no on_writable would come.)  On a failure the
 * stream is reset (INTERNAL_ERROR): the head, with its content-length, has
 * already gone out.  Runs on the thread of the stream: the offload thread,
 * or for a stream served inline the shard, where prefault_cached() costs
 * nothing while the chunk's prefault knowledge is fresh (and a page-table
 * walk, reading the disk only for evicted pages, after it expired). */
static void send_more(spindle_stream *s, resp *r)
{
    if (r->off >= r->end)
        return;
    size_t n = r->cached ? CACHED_WINDOW : window;
    if (r->cached && n < window)
        n = window;
    if (r->end - r->off < n)
        n = (size_t)(r->end - r->off);
    bool last = r->off + n == r->end;
    int rc;
    if (r->map) {
        const uint8_t *p = (const uint8_t *)r->map->base + (r->off - r->map_off);
        if (!(r->cached ? prefault_cached(r->map, r->off, n) : prefault(p, n)))
            goto fail;
        atomic_fetch_add_explicit(&r->map->refs, 1, memory_order_relaxed);
        rc = spindle_send(s, p, n, last, slice_release, r->map);
    } else {
        void *b = buf_get(&win_pool);
        if (!b || !pread_full(r->fd, b, n, r->off)) {
            if (b)
                buf_put(&win_pool, b, 0);
            goto fail;
        }
        rc = spindle_send(s, b, n, last, buf_put, &win_pool);
    }
    /* rc != 0: the stream is gone (the slice was released); stop. */
    r->off = rc == 0 ? r->off + n : r->end;
    return;
fail:
    r->off = r->end;
    spindle_reset(s, SPINDLE_H2_INTERNAL_ERROR);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

static bool str_is(spindle_str v, const char *lit)
{
    size_t n = strlen(lit);
    return v.ptr && v.len == n && memcmp(v.ptr, lit, n) == 0;
}

/* The first field named name (request field names are lower case in h2). */
static const spindle_header *field(const spindle_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == n && memcmp(req->headers[i].name, name, n) == 0)
            return &req->headers[i];
    return NULL;
}

/* Does any If-None-Match / If-Match field line match? */
static bool list_match(const spindle_request *req, const char *name, const char *etag, bool weak)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == n && memcmp(req->headers[i].name, name, n) == 0 &&
            sp_etag_list_match(req->headers[i].value, req->headers[i].value_len, etag, weak))
            return true;
    return false;
}

static void simple(spindle_stream *s, uint16_t status, const char *body, bool head,
                   const spindle_header *extra, size_t nextra)
{
    spindle_header h[4] = {{"content-type", "text/plain; charset=utf-8", 0, 0}};
    char len[24];
    snprintf(len, sizeof len, "%zu", strlen(body));
    h[1] = (spindle_header){"content-length", len, 0, 0};
    size_t n = 2;
    for (size_t i = 0; i < nextra && n < 4; i++)
        h[n++] = extra[i];
    spindle_respond(s, status, h, n, head);
    if (!head)
        spindle_send(s, body, strlen(body), true, NULL, NULL);
}

/* openat2 beneath the root: no "..", no absolute symlinks, no symlink that
 * leaves the root, no /proc magic links.  O_NONBLOCK: a FIFO in the root
 * must not block the thread (it is refused as not a regular file).  nb
 * (the shard thread): resolve from the dentry cache only, and fail with
 * EAGAIN where a lookup would need the disk. */
static int open_beneath(const char *rel, bool nb)
{
    if (nb && !atomic_load_explicit(&cached_ok, memory_order_relaxed)) {
        errno = EAGAIN;
        return -1;
    }
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (nb ? RESOLVE_CACHED : 0);
    long fd;
    do
        fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    while (fd < 0 && errno == EINTR);
    if (fd < 0 && nb && errno == EINVAL) {
        atomic_store(&cached_ok, false); /* kernel < 5.12: every request offloads */
        errno = EAGAIN;
    }
    return (int)fd;
}

/* The shard thread's read of a small body: all n bytes without waiting for
 * the disk, or false (the caller offloads the request).  preadv2 with
 * RWF_NOWAIT takes them from the page cache; tmpfs and ramfs do not
 * support the flag (EOPNOTSUPP, Linux 6.18 too) but hold every page in
 * memory, so there a plain read does not wait either (unless the pages
 * were swapped out). */
static bool pread_nowait(int fd, void *buf, size_t n, uint64_t off)
{
    struct iovec iov = {buf, n};
    ssize_t r;
    do
        r = preadv2(fd, &iov, 1, (off_t)off, RWF_NOWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EOPNOTSUPP) {
        struct statfs fs;
        return fstatfs(fd, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) &&
               pread_full(fd, buf, n, off);
    }
    return r == (ssize_t)n;
}

/* Status for a failed open: escapes and permissions 403, absence 404. */
static uint16_t open_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG: return 404;
    case EXDEV: /* the path (a symlink) leads out of the root */
    case ELOOP: /* a magic link, or a symlink loop */
    case EACCES:
    case EPERM: return 403;
    default: return 500;
    }
}

static void fail_status(spindle_stream *s, uint16_t status, bool head)
{
    switch (status) {
    case 400: simple(s, 400, "bad request\n", head, NULL, 0); break;
    case 403: simple(s, 403, "forbidden\n", head, NULL, 0); break;
    case 404: simple(s, 404, "not found\n", head, NULL, 0); break;
    case 414: simple(s, 414, "uri too long\n", head, NULL, 0); break;
    default: simple(s, 500, "internal error\n", head, NULL, 0); break;
    }
}

/*
 * Answer the request.  nb (on the shard thread): do not block; return false
 * instead, having sent nothing and holding nothing, when answering would
 * need the disk (a path not in the dentry cache, a small body not in the
 * page cache, a large one not a hot cached mapping, any large body over
 * TLS).  Otherwise true.
 */
static bool serve(spindle_stream *s, const spindle_request *req, bool nb)
{
    bool get = str_is(req->method, "GET"), head = str_is(req->method, "HEAD");
    if (!get && !head) {
        static const spindle_header allow[] = {{"allow", "GET, HEAD", 0, 0}};
        simple(s, 405, "method not allowed\n", false, allow, 1);
        return true;
    }
    char rel[4096 + 16];
    bool want_dir = false;
    switch (sp_path_normalize(req->path.ptr, req->path.len, rel, 4096, &want_dir)) {
    case SP_OK: break;
    case SP_BAD: fail_status(s, 400, head); return true;
    case SP_DOTDOT: fail_status(s, 403, head); return true;
    case SP_TOOLONG: fail_status(s, 414, head); return true;
    }

    int fd = open_beneath(rel, nb);
    if (fd < 0) {
        if (nb && errno == EAGAIN)
            return false;
        fail_status(s, open_status(errno), head);
        return true;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        fail_status(s, 500, head);
        return true;
    }
    const char *name = rel;
    if (S_ISDIR(st.st_mode)) {
        /* index.html, resolved from the root again (not from the directory
         * descriptor), so its symlinks obey the same rule. */
        close(fd);
        if (strcmp(rel, ".") == 0)
            strcpy(rel, "index.html");
        else
            strcat(rel, "/index.html");
        fd = open_beneath(rel, nb);
        if (fd < 0) {
            int e = errno;
            if (nb && e == EAGAIN)
                return false;
            fail_status(s, e == ENOENT ? 404 : open_status(e), head);
            return true;
        }
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            fail_status(s, 404, head);
            return true;
        }
    } else if (!S_ISREG(st.st_mode)) {
        close(fd); /* FIFOs, sockets, devices */
        fail_status(s, 403, head);
        return true;
    } else if (want_dir) {
        close(fd); /* "/file.txt/" */
        fail_status(s, 404, head);
        return true;
    }

    uint64_t size = (uint64_t)st.st_size;
    char etag[64], lastmod[30];
    uint64_t mns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "\"", size, mns);
    sp_http_date(st.st_mtim.tv_sec, lastmod);

    /* Preconditions in RFC 9110 13.2.2 order. */
    const spindle_header *f;
    if ((f = field(req, "if-match")) && !list_match(req, "if-match", etag, false)) {
        close(fd);
        simple(s, 412, "precondition failed\n", head, NULL, 0);
        return true;
    }
    time_t t;
    if (!f && (f = field(req, "if-unmodified-since")) &&
        sp_parse_date(f->value, f->value_len, &t) && st.st_mtim.tv_sec > t) {
        close(fd);
        simple(s, 412, "precondition failed\n", head, NULL, 0);
        return true;
    }
    bool not_modified = false;
    if (field(req, "if-none-match"))
        not_modified = list_match(req, "if-none-match", etag, true);
    else if ((f = field(req, "if-modified-since")) && sp_parse_date(f->value, f->value_len, &t))
        not_modified = st.st_mtim.tv_sec <= t;
    if (not_modified) {
        close(fd);
        spindle_header h[] = {{"etag", etag, 0, 0}, {"last-modified", lastmod, 0, 0}};
        spindle_respond(s, 304, h, 2, true);
        return true;
    }

    /* Range (GET only; HEAD ignores it). */
    uint64_t first = 0, last = size ? size - 1 : 0;
    uint16_t status = 200;
    char crange[80];
    if (get && (f = field(req, "range"))) {
        const spindle_header *ir = field(req, "if-range");
        if (!ir || sp_if_range_ok(ir->value, ir->value_len, etag, st.st_mtim.tv_sec)) {
            switch (sp_parse_range(f->value, f->value_len, size, &first, &last)) {
            case SR_OK:
                status = 206;
                snprintf(crange, sizeof crange, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first,
                         last, size);
                break;
            case SR_UNSAT: {
                close(fd);
                snprintf(crange, sizeof crange, "bytes */%" PRIu64, size);
                spindle_header cr[] = {{"content-range", crange, 0, 0}};
                simple(s, 416, "range not satisfiable\n", false, cr, 1);
                return true;
            }
            case SR_NONE:
            case SR_MULTI: /* served whole (docs/static.md) */
                first = 0;
                last = size ? size - 1 : 0;
                break;
            }
        }
    }
    uint64_t len = size ? last - first + 1 : 0;

    char clen[24];
    snprintf(clen, sizeof clen, "%" PRIu64, len);
    spindle_header h[7] = {
        {"content-type", sp_content_type(name), 0, 0},
        {"content-length", clen, 0, 0},
        {"last-modified", lastmod, 0, 0},
        {"etag", etag, 0, 0},
        {"accept-ranges", "bytes", 0, 0},
    };
    size_t nh = 5;
    if (status == 206)
        h[nh++] = (spindle_header){"content-range", crange, 0, 0};

    if (head || len == 0) {
        close(fd);
        spindle_respond(s, status, h, nh, true);
        return true;
    }
    if (len <= SMALL_MAX) {
        /* Small: read it before the head, so a failure can still be a 500. */
        void *b = buf_get(&small_pool);
        if (nb && b && !pread_nowait(fd, b, (size_t)len, first)) {
            buf_put(&small_pool, b, 0);
            close(fd);
            return false;
        }
        if (!b || (!nb && !pread_full(fd, b, (size_t)len, first))) {
            if (b)
                buf_put(&small_pool, b, 0);
            close(fd);
            fail_status(s, 500, false);
            return true;
        }
        close(fd);
        spindle_respond(s, status, h, nh, false);
        spindle_send(s, b, (size_t)len, true, buf_put, &small_pool);
        return true;
    }

    /* Over TLS user space encrypts the body, so it must read the bytes: a
     * mapping truncated under us would SIGBUS there.  pread instead, off
     * the shard. */
    bool tls = str_is(req->scheme, "https");
    fmap *hot = NULL;
    if (nb && (tls || !(hot = cache_peek_hot(&st, first, len)))) {
        close(fd);
        return false;
    }
    resp *r = calloc(1, sizeof *r);
    if (!r) {
        if (hot)
            fmap_unref(hot);
        close(fd);
        fail_status(s, 500, false);
        return true;
    }
    r->fd = fd;
    r->off = first;
    r->end = first + len;
    if (hot || (!tls && (hot = cache_get(fd, &st)) != NULL)) {
        r->map = hot;
        r->cached = true; /* whole file, map_off 0; the descriptor is not needed */
        close(fd);
        r->fd = -1;
    } else if (!tls) {
        long page = sysconf(_SC_PAGESIZE);
        uint64_t a = first & ~(uint64_t)(page - 1);
        size_t mlen = (size_t)(r->end - a);
        void *base = mmap(NULL, mlen, PROT_READ, MAP_SHARED, fd, (off_t)a);
        fmap *m = base != MAP_FAILED ? malloc(sizeof *m) : NULL;
        if (m) {
            atomic_init(&m->refs, 1);
            m->base = base;
            m->len = mlen;
            atomic_init(&m->pop_bits, 0);
            atomic_init(&m->pop_at, 0);
            r->map = m;
            r->map_off = a;
        } else if (base != MAP_FAILED) {
            munmap(base, mlen); /* and fall back to pread */
        }
    }
    spindle_stream_set_user(s, r);
    spindle_respond(s, status, h, nh, false);
    send_more(s, r);
    return true;
}

static void on_request_offloaded(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    serve(s, req, false);
}

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    if (serve(s, req, true))
        return;
    /* Without offload threads (they could not start) block here instead. */
    if (spindle_offload(s, on_request_offloaded) != 0)
        on_request_offloaded(s, req, app);
}

static void on_writable(spindle_stream *s, void *app)
{
    (void)app;
    resp *r = spindle_stream_user(s);
    if (r && r->off < r->end)
        send_more(s, r);
}

static void on_reset(spindle_stream *s, uint32_t code, void *app)
{
    (void)code;
    (void)app;
    resp *r = spindle_stream_user(s);
    if (r)
        r->off = r->end; /* nothing more: on_close frees it */
}

static void on_close(spindle_stream *s, void *app)
{
    (void)app;
    resp_free(spindle_stream_user(s));
    spindle_stream_set_user(s, NULL);
}

/* ------------------------------------------------------------------------ */
/* Command line                                                              */
/* ------------------------------------------------------------------------ */

static void on_listen(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)app;
    char line[256];
    bool v6 = strchr(address, ':') != NULL;
    int n = snprintf(line, sizeof line, "listening on http://%s%s%s:%u (shard %u)\n", v6 ? "[" : "",
                     address, v6 ? "]" : "", port, shard);
    if (n > 0) {
        ssize_t w = write(STDOUT_FILENO, line, strlen(line));
        (void)w;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: spindle-static --root DIR [--address A] [--port P] [--shards N]\n"
               "                      [--log-level 0..3] [--set name=value]...\n"
               "  --root DIR        the directory to serve (required)\n"
               "  --address A       listen address (default 127.0.0.1)\n"
               "  --port P          TCP port, 0 = any free port (default 8080)\n"
               "  --shards N        worker threads, one per core (default: online CPUs)\n"
               "  --log-level L     0 error, 1 warn, 2 info, 3 debug (default 2)\n"
               "  --set name=value  any limit, e.g. offload-threads=2 (file I/O runs there),\n"
               "                    max-stream-buffered=262144 (see spindle.h)\n");
}

/* The command line into cfg and *root: -1 to run, else the exit status
 * (app_args_main()). */
static int parse_args(int argc, char **argv, spindle_config *cfg, const char **root)
{
    const app_arg args[] = {
        {"--root", NULL, root, NULL},
        {"--address", "address", NULL, NULL},
        {"--port", "port", NULL, NULL},
        {"--shards", "shards", NULL, NULL},
        {"--log-level", "log-level", NULL, NULL},
    };
    const app_cli cli = {"spindle-static", usage, args, sizeof args / sizeof args[0]};

    return app_args_main(&cli, argc, argv, cfg);
}

int main(int argc, char **argv)
{
    spindle_config cfg = spindle_config_default();
    const char *root = NULL;
    char err[256];
    int parsed = parse_args(argc, argv, &cfg, &root);
    if (parsed >= 0)
        return parsed;
    if (!root) {
        fprintf(stderr, "spindle-static: --root DIR is required (see --help)\n");
        return 2;
    }
    if (spindle_config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "spindle-static: %s\n", err);
        return 2;
    }
    root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        fprintf(stderr, "spindle-static: --root %s: %s\n", root, strerror(errno));
        return 1;
    }
    /* Readable (listing permission is not needed, but reading is) and
     * openat2 available (Linux 5.6+)? */
    int probe = open_beneath(".", false);
    if (probe < 0) {
        int e = errno;
        fprintf(stderr, "spindle-static: --root %s: %s\n", root,
                e == ENOSYS ? "openat2() is not available (Linux 5.6 or later is needed; "
                              "valgrind 3.19 does not know it either)"
                            : strerror(e));
        close(root_fd);
        return 1;
    }
    close(probe);
    if (faccessat(root_fd, ".", R_OK | X_OK, AT_EACCESS) != 0) {
        fprintf(stderr, "spindle-static: --root %s: %s\n", root, strerror(errno));
        close(root_fd);
        return 1;
    }
    if (cfg.limits.max_stream_buffered > window)
        window = cfg.limits.max_stream_buffered;
    win_pool.size = window;

    spindle_handler h = {
        .on_request = on_request,
        .on_reset = on_reset,
        .on_writable = on_writable,
        .on_close = on_close,
        /* not blocking: on_request offloads what would block (serve()) */
    };
    spindle_hooks hooks = {.on_listen = on_listen};
    pthread_t sweeper;
    bool swept = pthread_create(&sweeper, NULL, cache_sweeper, NULL) == 0;
    int rc = spindle_run(&cfg, &h, &hooks, NULL);
    pthread_mutex_lock(&cache.mu);
    cache.stop = true;
    pthread_cond_signal(&cache.cv);
    pthread_mutex_unlock(&cache.mu);
    if (swept)
        pthread_join(sweeper, NULL);
    while (cache.n)
        fmap_unref(cache.e[--cache.n].map);
    pool_drain(&small_pool);
    pool_drain(&win_pool);
    close(root_fd);
    if (rc != 0) {
        fprintf(stderr, "spindle-static: %s\n", spindle_strerror(rc));
        return 1;
    }
    return 0;
}
