/* spindle-static - a static file server built only on include/spindle.h.
 *
 *   spindle-static --root DIR [--address A] [--port P] [--shards N]
 *                  [--log-level L] [--set name=value]... [--cache-entries N]
 *                  [--cache-bytes N] [--cache-file-max N] [--revalidate-ms N]
 *
 * Serves the files under DIR over h2c: GET and HEAD, content types by
 * extension, ETag / Last-Modified with 304, single byte ranges, index.html
 * for directories (no listings).  Every path is resolved with openat2()
 * RESOLVE_BENEATH against a descriptor of DIR, so nothing outside DIR can
 * be reached (not by "..", not by encoded dots, not by symlinks).
 *
 * Each shard keeps an open-file and small-content cache (fcache.h): a hot
 * file up to 64 KiB is answered from memory with no system call, a larger
 * one from its cached descriptor and mapping, with no system call either
 * under a read lease (lease.h; one fstat without); entries are checked
 * against the file at most once a second (--revalidate-ms).
 *
 * A miss makes no system call on the shard's thread: openat2, statx and
 * the read of a small file are operations on the shard's ring, answered
 * from their completions (miss.h).  What would block the shard (a large
 * body that is not a cached mapping prefaulted within the last second, a
 * file changed within the last second, any large body over TLS) is handed
 * to the shard's offload thread (spindle_offload(), or from a completion
 * spindle_offload_request()), where opening, mapping, prefaulting and
 * reading may block; the choice is made before anything is sent.  Large
 * bodies are mmap'd (fmap.h) and sent by reference, window by window,
 * prefaulted first; over TLS they are pread() into pooled buffers.
 * docs/static.md.
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

#include "fcache.h"
#include "fmap.h"
#include "http.h"
#include "lease.h"
#include "miss.h"
#include "reval.h"
#include "cli.h"
#include "spindle.h"

static int root_fd = -1;
static size_t window = WINDOW_MIN; /* max(WINDOW_MIN, max-stream-buffered) */

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
 * must not block the thread (it is refused as not a regular file).  Off
 * the shard (the shard's misses open on its ring, miss.c, the same way). */
static int open_beneath(const char *rel)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd;
    do
        fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    while (fd < 0 && errno == EINTR);
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

/* Open rel (normalised, relative) beneath the root and fstat it, on the
 * offload thread (miss.c does the same on the shard's ring).  A directory
 * gives its index.html, resolved from the root again (not from the
 * directory descriptor) so its symlinks obey the same rule; rel is
 * extended in place (it has room for "/index.html").  0 with *fdp and *st
 * set; else the HTTP status of the failure (nothing held). */
static int resolve(char *rel, bool want_dir, int *fdp, struct stat *st)
{
    int fd = open_beneath(rel);
    if (fd < 0)
        return miss_open_status(errno);
    if (fstat(fd, st) != 0) {
        close(fd);
        return 500;
    }
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        if (strcmp(rel, ".") == 0)
            strcpy(rel, "index.html");
        else
            strcat(rel, "/index.html");
        fd = open_beneath(rel);
        if (fd < 0)
            return errno == ENOENT ? 404 : miss_open_status(errno);
        if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
            close(fd);
            return 404;
        }
    } else if (!S_ISREG(st->st_mode)) {
        close(fd); /* FIFOs, sockets, devices */
        return 403;
    } else if (want_dir) {
        close(fd); /* "/file.txt/" */
        return 404;
    }
    *fdp = fd;
    return 0;
}

static uint64_t ts_ns(struct timespec t)
{
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* What a response needs to know of the file fstat()ed as st, called name. */
static void info_fill(fc_info *fi, const struct stat *st, const char *name)
{
    fi->dev = st->st_dev;
    fi->ino = st->st_ino;
    fi->size = (uint64_t)st->st_size;
    fi->mns = ts_ns(st->st_mtim);
    fi->cns = ts_ns(st->st_ctim);
    fi->mtime = st->st_mtim.tv_sec;
    fi->ctype = sp_content_type(name);
    int n = snprintf(fi->etag, sizeof fi->etag, "\"%" PRIx64 "-%" PRIx64 "\"", fi->size, fi->mns);
    fi->etag_len = n > 0 ? (uint32_t)n : 0;
    sp_http_date(st->st_mtim.tv_sec, fi->lastmod);
    n = snprintf(fi->clen, sizeof fi->clen, "%" PRIu64, fi->size);
    fi->clen_len = n > 0 ? (uint32_t)n : 0;
    fi->ctype_len = (uint32_t)strlen(fi->ctype);
}

/* The struct stat of what fi knows (identity, size, mtime, ctime; what
 * the answers and the mapping cache look at). */
static void stat_of_info(const fc_info *fi, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_dev = fi->dev;
    st->st_ino = fi->ino;
    st->st_mode = S_IFREG | 0444;
    st->st_size = (off_t)fi->size;
    st->st_mtim = (struct timespec){(time_t)(fi->mns / 1000000000u), (long)(fi->mns % 1000000000u)};
    st->st_ctim = (struct timespec){(time_t)(fi->cns / 1000000000u), (long)(fi->cns % 1000000000u)};
}

/* Is st still the file fi describes: same inode, size, mtime and ctime?
 * (Any write, truncation, chmod or rename of the inode changes its ctime;
 * since Linux 6.13 a change right after a stat gets a fine-grained, hence
 * different, timestamp on ext4, xfs, btrfs and tmpfs.) */
static bool info_same(const fc_info *fi, const struct stat *st)
{
    return fi->dev == st->st_dev && fi->ino == st->st_ino && fi->size == (uint64_t)st->st_size &&
           fi->mns == ts_ns(st->st_mtim) && fi->cns == ts_ns(st->st_ctim);
}

/* Read n bytes at off of the file fstat()ed as *st so that a body is
 * never a mix of two versions nor shorter than the length announced: keep
 * the bytes only if a second fstat after the read shows the same size,
 * mtime and ctime.  A write() stamps the file when it starts, under the
 * inode lock, and holds that lock until its last byte is copied; so off
 * the shard first lseek(SEEK_DATA), which takes the same lock on ext4 and
 * tmpfs (not on xfs) and so waits for a write in progress: any write that
 * overlaps the read then starts after the first fstat and, the kernel
 * giving a change after a stat a new timestamp (Linux 6.13+), shows in
 * the second.  The shard must not wait on that lock: there (nb) a file
 * changed within the last second is left to the offload thread (EAGAIN),
 * and the read is done without the barrier (a write stalled for over a
 * second mid-copy could then be seen).  0; EAGAIN (nb: it would wait);
 * ESTALE (the file changed or shrank: look again); EIO. */
static int read_stable(int fd, const struct stat *st, void *buf, size_t n, uint64_t off, bool nb)
{
    if (nb) {
        /* Signed: a ctime stamped fine-grained after a stat (Linux 6.13+) is
         * usually AHEAD of the coarse clock by up to a tick; "now - ctime"
         * in unsigned arithmetic then wrapped, called the file a year old,
         * and the shard read a file being written without the barrier:
         * the torn same-size overwrites of issue 15. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME_COARSE, &now);
        if ((int64_t)(ts_ns(now) - ts_ns(st->st_ctim)) < 1000000000)
            return EAGAIN; /* changed just now (or "in the future"), perhaps still being written */
    } else {
        (void)lseek(fd, (off_t)off, SEEK_DATA); /* the barrier; the result does not matter */
    }
    if (nb ? !pread_nowait(fd, buf, n, off) : !pread_full(fd, buf, n, off)) {
        struct stat now;
        if (fstat(fd, &now) == 0 && now.st_size != st->st_size)
            return ESTALE;
        return nb ? EAGAIN : EIO;
    }
    struct stat after;
    if (fstat(fd, &after) != 0)
        return EIO;
    fc_info fi = {.dev = st->st_dev,
                  .ino = st->st_ino,
                  .size = (uint64_t)st->st_size,
                  .mns = ts_ns(st->st_mtim),
                  .cns = ts_ns(st->st_ctim)};
    return info_same(&fi, &after) ? 0 : ESTALE;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */
/* ------------------------------------------------------------------------ */

/* The outcome of one attempt at a request. */
typedef enum {
    SERVED,  /* answered (or answering): nothing more to do here */
    BLOCKS,  /* nothing sent, nothing held: it would wait, offload it */
    CHANGED, /* nothing sent, nothing held: the file changed, look again */
} serve_rc;

/* The request fields that matter here, found in one pass. */
typedef struct conds {
    const spindle_header *if_match, *if_none_match, *if_unmodified, *if_modified, *range, *if_range;
} conds;

static void conds_scan(const spindle_request *req, conds *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < req->nheaders; i++) {
        const spindle_header *h = &req->headers[i];
        const spindle_header **slot = NULL;
        if (h->name_len < 5 || (h->name[0] != 'r' && h->name[0] != 'i'))
            continue; /* most fields: not one of ours */
        if (h->name_len == 5 && memcmp(h->name, "range", 5) == 0)
            slot = &c->range;
        else if (h->name_len == 8 && memcmp(h->name, "if-match", 8) == 0)
            slot = &c->if_match;
        else if (h->name_len == 8 && memcmp(h->name, "if-range", 8) == 0)
            slot = &c->if_range;
        else if (h->name_len == 13 && memcmp(h->name, "if-none-match", 13) == 0)
            slot = &c->if_none_match;
        else if (h->name_len == 17 && memcmp(h->name, "if-modified-since", 17) == 0)
            slot = &c->if_modified;
        else if (h->name_len == 19 && memcmp(h->name, "if-unmodified-since", 19) == 0)
            slot = &c->if_unmodified;
        if (slot && !*slot)
            *slot = h;
    }
}

/* The answer to a request for a file, before its body. */
typedef struct plan {
    uint16_t status;     /* 200 or 206 */
    uint64_t first, len; /* the body: len bytes from first */
    spindle_header h[6];
    size_t nh;
    char crange[80], clen[24];
} plan;

/* Send status with the fields h[0..n), or with *slot, the same fields
 * prepared once (made here at the first use: the fields of one file
 * version, as a cache entry is one version; a changed file is a new
 * entry).  slot NULL, or when preparing fails: h itself. */
static void respond_prepared(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                             spindle_fields **slot, bool end)
{
    if (slot) {
        if (!*slot && spindle_fields_new(h, n, slot) != SPINDLE_OK)
            *slot = NULL;
        if (*slot) {
            spindle_respond_fields(s, status, NULL, 0, *slot, end);
            return;
        }
    }
    spindle_respond(s, status, h, n, end);
}

/* Answer the preconditions (RFC 9110 13.2.2 order) with 412 or 304; answer
 * an unsatisfiable Range with 416 (GET only: HEAD ignores Range).
 * prepared: a cache entry's prepared fields (fc_entry.heads: [1], the
 * 304's), or NULL. */
static bool answer_conditions(spindle_stream *s, const spindle_request *req, const conds *c,
                              const fc_info *fi, bool head, spindle_fields **prepared)
{
    time_t t;
    if ((c->if_match && !list_match(req, "if-match", fi->etag, false)) ||
        (!c->if_match && c->if_unmodified &&
         sp_parse_date(c->if_unmodified->value, c->if_unmodified->value_len, &t) &&
         fi->mtime > t)) {
        simple(s, 412, "precondition failed\n", head, NULL, 0);
        return true;
    }
    bool not_modified = false;
    if (c->if_none_match)
        not_modified = list_match(req, "if-none-match", fi->etag, true);
    else if (c->if_modified && sp_parse_date(c->if_modified->value, c->if_modified->value_len, &t))
        not_modified = fi->mtime <= t;
    if (not_modified) {
        spindle_header h[] = {{"etag", fi->etag, 4, fi->etag_len},
                              {"last-modified", fi->lastmod, 13, 29}};
        respond_prepared(s, 304, h, 2, prepared ? &prepared[1] : NULL, true);
        return true;
    }
    return false;
}

/* Work out the response to a request for the file fi (c: the request's
 * conditionals and range, conds_scan(); prepared: as for
 * answer_conditions()).  false: it has been answered already (412, 304,
 * 416); true: p holds the status, the extent of the body and the head to
 * send. */
static bool plan_response(spindle_stream *s, const spindle_request *req, const conds *cp,
                          const fc_info *fi, bool head, spindle_fields **prepared, plan *p)
{
    const conds c = *cp;
    if ((c.if_match || c.if_none_match || c.if_modified || c.if_unmodified) &&
        answer_conditions(s, req, &c, fi, head, prepared))
        return false;
    uint64_t size = fi->size, last = size ? size - 1 : 0;
    p->status = 200;
    p->first = 0;
    if (!head && c.range &&
        (!c.if_range ||
         sp_if_range_ok(c.if_range->value, c.if_range->value_len, fi->etag, fi->mtime))) {
        switch (sp_parse_range(c.range->value, c.range->value_len, size, &p->first, &last)) {
        case SR_OK:
            p->status = 206;
            snprintf(p->crange, sizeof p->crange, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                     p->first, last, size);
            break;
        case SR_UNSAT: {
            snprintf(p->crange, sizeof p->crange, "bytes */%" PRIu64, size);
            spindle_header cr[] = {{"content-range", p->crange, 0, 0}};
            simple(s, 416, "range not satisfiable\n", false, cr, 1);
            return false;
        }
        case SR_NONE:
        case SR_MULTI: /* served whole (docs/static.md) */
            p->first = 0;
            last = size ? size - 1 : 0;
            break;
        }
    }
    p->len = size ? last - p->first + 1 : 0;
    const char *clen = fi->clen;
    uint32_t clen_len = fi->clen_len;
    if (p->status == 206) {
        int n = snprintf(p->clen, sizeof p->clen, "%" PRIu64, p->len);
        clen = p->clen;
        clen_len = n > 0 ? (uint32_t)n : 0;
    }
    /* With their lengths: spindle measures only a length given as 0. */
    p->h[0] = (spindle_header){"content-type", fi->ctype, 12, fi->ctype_len};
    p->h[1] = (spindle_header){"content-length", clen, 14, clen_len};
    p->h[2] = (spindle_header){"last-modified", fi->lastmod, 13, 29};
    p->h[3] = (spindle_header){"etag", fi->etag, 4, fi->etag_len};
    p->h[4] = (spindle_header){"accept-ranges", "bytes", 13, 5};
    p->nh = 5;
    if (p->status == 206)
        p->h[p->nh++] = (spindle_header){"content-range", p->crange, 0, 0};
    return true;
}

/* Send p's head.  A full 200 for a cache entry (prepared: its
 * fc_entry.heads) goes with the entry's prepared fields ([0], made at its
 * first full 200); anything else with p's fields (respond_prepared()). */
static void respond_planned(spindle_stream *s, const plan *p, spindle_fields **prepared, bool end)
{
    respond_prepared(s, p->status, p->h, p->nh, prepared && p->status == 200 ? &prepared[0] : NULL,
                     end);
}

/* Answer from the file's bytes in memory (a blob of the cache, or one just
 * read): no system call.  The response takes its own reference.
 * prepared: the entry's prepared fields (fc_entry.heads), or NULL. */
static void serve_blob_with(spindle_stream *s, const spindle_request *req, const fc_info *fi,
                            fc_blob *b, bool head, spindle_fields **prepared)
{
    conds c;
    conds_scan(req, &c);
    /* The common hit: no conditional, no range, the head prepared.  Then
     * the answer is the whole file with that head: no plan to make. */
    if (prepared && prepared[0] && !c.if_match && !c.if_none_match && !c.if_modified &&
        !c.if_unmodified && !c.range) {
        bool end = head || fi->size == 0;
        spindle_respond_fields(s, 200, NULL, 0, prepared[0], end);
        if (!end) {
            atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
            spindle_send(s, b->data, (size_t)fi->size, true, fc_blob_release, b);
        }
        return;
    }
    plan p;
    if (!plan_response(s, req, &c, fi, head, prepared, &p))
        return;
    if (head || p.len == 0) {
        respond_planned(s, &p, prepared, true);
        return;
    }
    respond_planned(s, &p, prepared, false);
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    spindle_send(s, b->data + p.first, (size_t)p.len, true, fc_blob_release, b);
}

static void serve_blob(spindle_stream *s, const spindle_request *req, const fc_info *fi, fc_blob *b,
                       bool head)
{
    serve_blob_with(s, req, fi, b, head, NULL);
}

static void fd_done(int fd, bool own)
{
    if (own)
        close(fd);
}

/* Map [r->off, r->end) of fd for one response (not cached); on failure r
 * keeps map NULL and the body is read with pread instead. */
static void map_range(resp *r, int fd)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t a = r->off & ~(uint64_t)(page - 1);
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
        munmap(base, mlen);
    }
}

/* A small body: read it (stable) before the head, so a failure can still
 * be a 500, into a pooled buffer handed to spindle by reference.
 * prepared: as for respond_planned(). */
static serve_rc send_small(spindle_stream *s, int fd, bool own, const struct stat *st,
                           const plan *p, bool nb, spindle_fields **prepared)
{
    void *b = buf_get(&small_pool);
    int rc = b ? read_stable(fd, st, b, (size_t)p->len, p->first, nb) : ENOMEM;
    fd_done(fd, own);
    if (rc != 0) {
        if (b)
            buf_put(&small_pool, b, 0);
        if (nb || rc == ESTALE)
            return nb ? BLOCKS : CHANGED;
        fail_status(s, 500, false);
        return SERVED;
    }
    respond_planned(s, p, prepared, false);
    spindle_send(s, b, (size_t)p->len, true, buf_put, &small_pool);
    return SERVED;
}

/* The body of p from the open file fd (fstat()ed as st).  own: fd is ours
 * to close or to keep in the response (else it belongs to the shard's
 * cache entry e, and nb is true; e NULL: no entry).  nb: the shard
 * thread; a large body is served only from a hot cached mapping, anything
 * else BLOCKS.  An entry under a confirmed lease (lease.h) also sends a
 * small range from its hot mapping, by reference: no pread. */
static serve_rc send_from_fd(spindle_stream *s, const spindle_request *req, int fd, bool own,
                             const struct stat *st, const plan *p, bool nb, fc_entry *e)
{
    spindle_fields **prepared = e ? e->heads : NULL;
    /* Over TLS user space encrypts the body, so it must read the bytes: a
     * mapping truncated under us would SIGBUS there.  pread instead, off
     * the shard. */
    bool tls = str_is(req->scheme, "https");
    fmap *hot = NULL;
    if (p->len <= SMALL_MAX) {
        if (!tls && e && e->lease == LEASE_OK && p->len &&
            (hot = cache_peek_hot(st, p->first, p->len)) != NULL) {
            respond_planned(s, p, prepared, false);
            spindle_send(s, (const uint8_t *)hot->base + p->first, (size_t)p->len, true,
                         slice_release, hot);
            return SERVED;
        }
        return send_small(s, fd, own, st, p, nb, prepared);
    }
    if (nb && (tls || !(hot = cache_peek_hot(st, p->first, p->len)))) {
        fd_done(fd, own);
        return BLOCKS;
    }
    resp *r = calloc(1, sizeof *r);
    if (!r) {
        if (hot)
            fmap_unref(hot);
        fd_done(fd, own);
        fail_status(s, 500, false);
        return SERVED;
    }
    r->fd = -1;
    r->off = p->first;
    r->end = p->first + p->len;
    if (hot || (!tls && (hot = cache_get(fd, st)) != NULL)) {
        r->map = hot;
        r->cached = true; /* whole file, map_off 0; the descriptor is not needed */
        fd_done(fd, own);
    } else {
        r->fd = fd; /* not nb, so own */
        if (!tls)
            map_range(r, fd);
    }
    spindle_stream_set_user(s, r);
    respond_planned(s, p, prepared, false);
    send_more(s, r);
    return SERVED;
}

/* Answer from an open file, e's descriptor (a cache entry) or, e NULL,
 * one that is not (or cannot be) in a cache. */
static serve_rc serve_fd(spindle_stream *s, const spindle_request *req, int fd, bool own,
                         const struct stat *st, const fc_info *fi, bool head, bool nb, fc_entry *e)
{
    conds c;
    conds_scan(req, &c);
    plan p;
    if (!plan_response(s, req, &c, fi, head, e ? e->heads : NULL, &p)) {
        fd_done(fd, own);
        return SERVED;
    }
    if (head || p.len == 0) {
        fd_done(fd, own);
        respond_planned(s, &p, e ? e->heads : NULL, true);
        return SERVED;
    }
    return send_from_fd(s, req, fd, own, st, &p, nb, e);
}

/* ------------------------------------------------------------------------ */
/* The per-shard cache (fcache.h)                                            */
/* ------------------------------------------------------------------------ */

static fcache **shard_caches; /* [n_shard_caches], each made by its shard */
static uint32_t n_shard_caches;
static fcache_limits cache_limits;

/* This shard's cache (on the shard thread only), or NULL (disabled). */
static fcache *shard_cache(const spindle_stream *s)
{
    uint32_t i = spindle_stream_shard(s);
    if (i >= n_shard_caches || cache_limits.entries == 0)
        return NULL;
    if (!shard_caches[i])
        shard_caches[i] = fcache_new(&cache_limits);
    return shard_caches[i];
}

/* Answer from a fresh entry.  A content entry costs no system call, nor
 * does a descriptor entry under a confirmed read lease (lease.h: no one
 * can have written the file since its data was confirmed); any other
 * descriptor entry costs one fstat, so that the length and validators
 * are those of the file as it is now (CHANGED when they are not the
 * entry's). */
static serve_rc serve_entry(spindle_stream *s, const spindle_request *req, fc_entry *e, bool head)
{
    if (e->body) {
        serve_blob_with(s, req, &e->info, e->body, head, e->heads);
        return SERVED;
    }
    struct stat st;
    if (e->lease == LEASE_OK)
        stat_of_info(&e->info, &st);
    else if (fstat(e->fd, &st) != 0 || !info_same(&e->info, &st))
        return CHANGED;
    return serve_fd(s, req, e->fd, false, &st, &e->info, head, true, e);
}

/* rel = key (klen bytes), NUL-terminated, unless key is rel already. */
static void key_copy(char *rel, const char *key, size_t klen)
{
    if (key != rel) {
        memcpy(rel, key, klen);
        rel[klen] = '\0';
    }
}

/*
 * Answer the request.  nb (on the shard thread): do not block.  A hit is
 * answered here; a miss (or an entry due for revalidation whose check
 * cannot go to the ring) goes to the ring (miss.c), which answers it from
 * a completion.  BLOCKS, having sent nothing and holding nothing, when
 * neither can (a large body not a hot cached mapping, any large body over
 * TLS, the ring path full).  Only the shard uses its cache.  CHANGED (not
 * nb): the file changed while it was read; nothing was sent, try again.
 */
static serve_rc serve(spindle_stream *s, const spindle_request *req, bool nb)
{
    bool get = str_is(req->method, "GET"), head = str_is(req->method, "HEAD");
    if (!get && !head) {
        static const spindle_header allow[] = {{"allow", "GET, HEAD", 0, 0}};
        simple(s, 405, "method not allowed\n", false, allow, 1);
        return SERVED;
    }
    /* The cache key: the normalised path, most often the request's own
     * bytes (sp_path_plain(): no copy); rel holds it NUL-terminated for
     * what opens the file. */
    char rel[4096 + 16];
    const char *key;
    size_t klen;
    bool dir = false;
    if (!sp_path_plain(req->path.ptr, req->path.len, 4096, &key, &klen, &dir)) {
        switch (sp_path_normalize(req->path.ptr, req->path.len, rel, 4096, &dir)) {
        case SP_OK: break;
        case SP_BAD: fail_status(s, 400, head); return SERVED;
        case SP_DOTDOT: fail_status(s, 403, head); return SERVED;
        case SP_TOOLONG: fail_status(s, 414, head); return SERVED;
        }
        key = rel;
        klen = strlen(rel);
    }
    if (nb) {
        fcache *c = shard_cache(s);
        fc_entry *e = c ? fcache_get(c, key, klen, dir) : NULL;
        /* Fresh, or its check is running on the ring (reval.c): serve it as
         * it is.  When the ring cannot take the check, the miss path looks
         * at the file again (and keeps the entry if it is the same). */
        if (e && (now_ns() - e->checked < (uint64_t)cache_limits.revalidate_ms * 1000000u ||
                  e->checking || reval_start(spindle_current_shard(), c, e, root_fd))) {
            serve_rc rc = serve_entry(s, req, e, head);
            if (rc != CHANGED)
                return rc;
            fcache_drop(c, e);
        }
        key_copy(rel, key, klen);
        return miss_start(s, req, c, rel, klen, dir, head) ? SERVED : BLOCKS;
    }
    key_copy(rel, key, klen);
    int fd = -1;
    struct stat st;
    int rc = resolve(rel, dir, &fd, &st);
    if (rc != 0) {
        fail_status(s, (uint16_t)rc, head);
        return SERVED;
    }
    fc_info fi;
    info_fill(&fi, &st, rel);
    return serve_fd(s, req, fd, true, &st, &fi, head, false, NULL);
}

static void on_request_offloaded(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    /* A file rewritten again and again while we read it: a few tries. */
    for (int i = 0; i < 4; i++)
        if (serve(s, req, false) != CHANGED)
            return;
    static const spindle_header ra[] = {{"retry-after", "1", 0, 0}};
    simple(s, 503, "file changing\n", str_is(req->method, "HEAD"), ra, 1);
}

/* The miss path's answers (miss.h). */
static bool miss_answer_fd(spindle_stream *s, const spindle_request *req, int fd,
                           const struct stat *st, const fc_info *fi, bool head)
{
    return serve_fd(s, req, fd, false, st, fi, head, true, NULL) == SERVED;
}

static const miss_ops miss_answers = {
    .fail = fail_status,
    .info = info_fill,
    .blob = serve_blob,
    .fd = miss_answer_fd,
    .offloaded = on_request_offloaded,
};

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    if (serve(s, req, true) == SERVED)
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
    resp *r = spindle_stream_user(s);
    if (r) { /* a large body's state (most responses have none) */
        resp_free(r);
        spindle_stream_set_user(s, NULL);
    }
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

/* The shards' lease machinery (lease.h), when leases are on. */
static void *on_shard_start(spindle_shard *sh, void *app)
{
    (void)app;
    lease_shard_start(sh);
    return NULL;
}

static void on_shard_stop(spindle_shard *sh, void *ctx, void *app)
{
    (void)sh;
    (void)ctx;
    (void)app;
    lease_shard_stop();
}

/* Open the root (root_fd), check that it is readable and searchable and
 * that openat2 works (Linux 5.6+); false after saying why. */
static bool open_root(const char *root)
{
    root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        fprintf(stderr, "spindle-static: --root %s: %s\n", root, strerror(errno));
        return false;
    }
    int probe = open_beneath(".");
    if (probe < 0) {
        int e = errno;
        fprintf(stderr, "spindle-static: --root %s: %s\n", root,
                e == ENOSYS ? "openat2() is not available (Linux 5.6 or later is needed; "
                              "valgrind 3.19 does not know it either)"
                            : strerror(e));
        close(root_fd);
        return false;
    }
    close(probe);
    if (faccessat(root_fd, ".", R_OK | X_OK, AT_EACCESS) != 0) {
        fprintf(stderr, "spindle-static: --root %s: %s\n", root, strerror(errno));
        close(root_fd);
        return false;
    }
    return true;
}

/* One cache slot per shard spindle_run() will start. */
static bool caches_alloc(const spindle_config *cfg, const fcache_limits *lim)
{
    long cpus = sysconf(_SC_NPROCESSORS_CONF);
    n_shard_caches = cfg->shards ? cfg->shards : (uint32_t)(cpus > 0 ? cpus : 1);
    cache_limits = *lim;
    shard_caches = calloc(n_shard_caches, sizeof *shard_caches);
    return shard_caches != NULL;
}

static void caches_free(void)
{
    for (uint32_t i = 0; i < n_shard_caches; i++)
        fcache_free(shard_caches[i]);
    free(shard_caches);
    shard_caches = NULL;
    n_shard_caches = 0;
}

int main(int argc, char **argv)
{
    spindle_config cfg = spindle_config_default();
    options o = {.root = NULL, .cache = fcache_limits_default()};
    int rc = static_parse_args(argc, argv, &cfg, &o);
    if (rc >= 0)
        return rc;
    if (!open_root(o.root))
        return 1;
    if (cfg.limits.max_stream_buffered > window)
        window = cfg.limits.max_stream_buffered;
    win_pool.size = window;
    if (!caches_alloc(&cfg, &o.cache)) {
        fprintf(stderr, "spindle-static: out of memory\n");
        close(root_fd);
        return 1;
    }
    miss_init(root_fd, o.cache.content_max, &miss_answers);
    spindle_handler h = {
        .on_request = on_request,
        .on_reset = on_reset,
        .on_writable = on_writable,
        .on_close = on_close,
        /* not blocking: on_request offloads what would block (serve()) */
    };
    spindle_hooks hooks = {.on_listen = on_listen};
    if (!o.no_leases && lease_init()) {
        hooks.on_shard_start = on_shard_start;
        hooks.on_shard_stop = on_shard_stop;
    }
    mapcache_start();
    rc = spindle_run(&cfg, &h, &hooks, NULL);
    caches_free();
    mapcache_stop();
    close(root_fd);
    if (rc != 0) {
        fprintf(stderr, "spindle-static: %s\n", spindle_strerror(rc));
        return 1;
    }
    return 0;
}
