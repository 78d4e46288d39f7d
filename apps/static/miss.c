/* miss.c - cache misses as file operations on the shard's ring (miss.h).
 *
 * One miss per (path, trailing slash) in flight on a shard, a small state
 * machine driven by the completions:
 *
 *   OPENAT2 root/rel ──> STATX fd ──┬─ directory: CLOSE, OPENAT2 rel/index.html, STATX ...
 *     (fails: 403 or 404)           ├─ FIFO, device: 403; "file/": 404
 *                                   ├─ the entry it replaces is the same file: keep it
 *                                   ├─ large: a descriptor entry, served as a hit is
 *                                   └─ small: READ into the new entry's blob ──> STATX
 *                                        same size, mtime, ctime: cached and served;
 *                                        else the offload thread reads it (stable)
 *
 * Every request that asked meanwhile waits on the miss (a waiter: its
 * stream's handle and a copy of its request) and is answered from the one
 * result, each with its own conditionals, range and method.  A waiter
 * whose stream was reset or closed meanwhile (its handle resolves to NULL)
 * is just freed.  The kernel borrows the miss (path, open_how, statx
 * buffers, blob) until each operation's completion, which always comes
 * (fileop.c: no cancel), so the miss is freed only from a completion.
 *
 * The stable-read rule is read_stable()'s on the shard (main.c): a file
 * changed within the last second (or "in the future": a fine-grained ctime
 * ahead of the coarse clock) may still be in the middle of a write() and
 * needs the lseek(SEEK_DATA) barrier, which waits on the inode lock: that
 * goes to the offload thread, as does any read the second statx does not
 * confirm.
 */
#define _GNU_SOURCE
#include "miss.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "fmap.h"
#include "lease.h"
#include "reval.h"

/* Misses in flight per shard: each holds one ring operation at a time and
 * takes one CQ entry per step (the ring's CQ is sized for connections:
 * spindle.h, "File system calls on the shard's ring").  Past this many, a
 * new miss goes to the offload thread as before the ring path. */
#define MISS_MAX_INFLIGHT 64u

static int root = -1;
static uint64_t content_max = 64u << 10;
static const miss_ops *ops;

/* A request waiting on a miss: its handle, and a copy of the request (the
 * one on_request got is gone by the completion); strings follow. */
typedef struct waiter {
    struct waiter *next;
    spindle_handle h;
    bool head;
    spindle_request req;
    spindle_header hdrs[];
} waiter;

typedef struct miss {
    struct miss *prev, *next; /* the shard's misses in flight */
    spindle_shard *sh;
    fcache *c;
    waiter *waiters;
    waiter **tail;
    int fd;         /* the open file, or -1 */
    bool dir;       /* the request path ended in '/' */
    bool index;     /* rel is the directory's index.html */
    fc_blob *body;  /* the small file's bytes, being read */
    fc_info fi;     /* of the file as the first statx saw it */
    struct stat st; /* the same, as struct stat (what main.c's answers take) */
    struct open_how how;
    struct statx stx; /* the first statx; the second one's goes to after */
    struct statx after;
    size_t klen;
    char *rel;  /* into key[]'s tail: the path opened (key, or key/index.html) */
    char key[]; /* NUL, then rel (with room for "/index.html") */
} miss;

static _Thread_local miss *pending; /* this shard's misses in flight */
static _Thread_local unsigned inflight;

void miss_init(int root_fd, uint64_t cmax, const miss_ops *o)
{
    root = root_fd;
    content_max = cmax;
    ops = o;
}

uint16_t miss_open_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG: return 404;
    case EXDEV: /* the path (a symlink) leads out of the root */
    case ELOOP: /* a magic link, or a symlink loop */
    case EACCES:
    case EPERM:
    case ENXIO: /* a socket, a device without its driver */
    case ENODEV: return 403;
    default: return 500;
    }
}

/* ------------------------------------------------------------------------ */
/* Waiters                                                                   */
/* ------------------------------------------------------------------------ */

static void put_str(spindle_str *s, char **w)
{
    if (!s->ptr)
        return;
    memcpy(*w, s->ptr, s->len);
    (*w)[s->len] = 0;
    s->ptr = *w;
    *w += s->len + 1;
}

/* A waiter for s with a deep copy of req (one allocation), or NULL. */
static waiter *waiter_new(spindle_stream *s, const spindle_request *req, bool head)
{
    size_t n = req->method.len + req->scheme.len + req->authority.len + req->path.len +
               req->protocol.len + 5;
    for (size_t i = 0; i < req->nheaders; i++)
        n += req->headers[i].name_len + req->headers[i].value_len + 2;
    spindle_handle h = spindle_stream_handle(s);
    waiter *w = h.v ? malloc(sizeof *w + req->nheaders * sizeof(spindle_header) + n) : NULL;
    if (!w) /* out of memory (without a handle the stream could not be found again) */
        return NULL;
    w->next = NULL;
    w->h = h;
    w->head = head;
    w->req = *req;
    char *p = (char *)(w->hdrs + req->nheaders);
    put_str(&w->req.method, &p);
    put_str(&w->req.scheme, &p);
    put_str(&w->req.authority, &p);
    put_str(&w->req.path, &p);
    put_str(&w->req.protocol, &p);
    for (size_t i = 0; i < req->nheaders; i++) {
        spindle_str nm = {req->headers[i].name, req->headers[i].name_len};
        spindle_str v = {req->headers[i].value, req->headers[i].value_len};
        put_str(&nm, &p);
        put_str(&v, &p);
        w->hdrs[i] = (spindle_header){nm.ptr, v.ptr, (uint32_t)nm.len, (uint32_t)v.len};
    }
    w->req.headers = w->hdrs;
    return w;
}

/* Each waiter whose stream is still there, answered by fn; all freed. */
typedef void (*answer_fn)(miss *m, spindle_stream *s, const waiter *w, void *arg);

static void answer_all(miss *m, answer_fn fn, void *arg)
{
    waiter *w = m->waiters;
    m->waiters = NULL;
    m->tail = &m->waiters;
    while (w) {
        waiter *next = w->next;
        spindle_stream *s = spindle_handle_stream(w->h);
        if (s) /* NULL: reset and closed meanwhile; nothing to answer */
            fn(m, s, w, arg);
        free(w);
        w = next;
    }
}

/* ------------------------------------------------------------------------ */
/* The end of a miss                                                         */
/* ------------------------------------------------------------------------ */

static void close_fd(spindle_shard *sh, int fd)
{
    if (fd >= 0 && spindle_file_close(sh, fd, NULL, NULL) != 0)
        close(fd); /* the ring is full: the one system call left */
}

static void miss_free(miss *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        pending = m->next;
    if (m->next)
        m->next->prev = m->prev;
    inflight--;
    close_fd(m->sh, m->fd);
    fc_blob_unref(m->body);
    free(m);
}

static void offload_one(miss *m, spindle_stream *s, const waiter *w, void *arg)
{
    (void)m;
    (void)arg;
    /* The offload thread resolves and reads on its own, blocking allowed. */
    if (spindle_offload_request(s, &w->req, ops->offloaded) != 0)
        ops->fail(s, 500, w->head); /* the threads cannot start */
}

static void fail_one(miss *m, spindle_stream *s, const waiter *w, void *arg)
{
    (void)m;
    ops->fail(s, *(const uint16_t *)arg, w->head);
}

/* The entry the miss would replace, if any: one due for revalidation whose
 * ring check could not start (a plain miss has none: only the miss under
 * way fills its key). */
static fc_entry *old_entry(miss *m)
{
    return m->c ? fcache_get(m->c, m->key, m->klen, m->dir) : NULL;
}

static void finish_status(miss *m, uint16_t status)
{
    fc_entry *e = old_entry(m);
    if (e) /* the path no longer leads to the file it describes */
        fcache_drop(m->c, e);
    answer_all(m, fail_one, &status);
    miss_free(m);
}

static void finish_offload(miss *m)
{
    answer_all(m, offload_one, NULL);
    miss_free(m);
}

typedef struct from_file {
    int fd;
    const fc_info *fi;
    fc_blob *body; /* NULL: from fd */
} from_file;

static void file_one(miss *m, spindle_stream *s, const waiter *w, void *arg)
{
    const from_file *f = arg;
    if (f->body)
        ops->blob(s, &w->req, f->fi, f->body, w->head);
    else if (!ops->fd(s, &w->req, f->fd, &m->st, f->fi, w->head))
        offload_one(m, s, w, NULL); /* a large body that is not a hot mapping */
}

static void finish_file(miss *m, int fd, const fc_info *fi, fc_blob *body)
{
    from_file f = {fd, fi, body};
    answer_all(m, file_one, &f);
    miss_free(m);
}

/* ------------------------------------------------------------------------ */
/* The steps                                                                 */
/* ------------------------------------------------------------------------ */

static void on_open(spindle_shard *sh, int32_t res, void *ctx);
static void on_stat(spindle_shard *sh, int32_t res, void *ctx);
static void on_read(spindle_shard *sh, int32_t res, void *ctx);
static void on_check(spindle_shard *sh, int32_t res, void *ctx);

static int submit_open(miss *m)
{
    memset(&m->how, 0, sizeof m->how);
    m->how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    m->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return spindle_file_openat2(m->sh, root, m->rel, &m->how, on_open, m);
}

static int submit_statx(miss *m, struct statx *out, spindle_file_fn fn)
{
    return spindle_file_statx(m->sh, m->fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT,
                              STATX_BASIC_STATS, out, fn, m);
}

static void on_open(spindle_shard *sh, int32_t res, void *ctx)
{
    (void)sh;
    miss *m = ctx;
    if (res < 0) {
        /* index.html missing: the directory has none, 404 (not a 403 of
         * its own, unless the kernel refused it as an escape). */
        finish_status(m, m->index && res == -ENOENT ? 404 : miss_open_status(-res));
        return;
    }
    m->fd = res;
    if (submit_statx(m, &m->stx, on_stat) != 0)
        finish_offload(m);
}

static uint64_t stx_ns(struct statx_timestamp t)
{
    return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static void stat_of(const struct statx *x, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_dev = makedev(x->stx_dev_major, x->stx_dev_minor);
    st->st_ino = (ino_t)x->stx_ino;
    st->st_mode = x->stx_mode;
    st->st_nlink = x->stx_nlink;
    st->st_size = (off_t)x->stx_size;
    st->st_mtim = (struct timespec){(time_t)x->stx_mtime.tv_sec, (long)x->stx_mtime.tv_nsec};
    st->st_ctim = (struct timespec){(time_t)x->stx_ctime.tv_sec, (long)x->stx_ctime.tv_nsec};
}

/* A directory: its index.html, opened from the root again (not from the
 * directory's descriptor) so that its symlinks obey the same rule. */
static void open_index(miss *m)
{
    close_fd(m->sh, m->fd);
    m->fd = -1;
    m->index = true;
    if (strcmp(m->key, ".") == 0)
        strcpy(m->rel, "index.html");
    else
        strcat(m->rel, "/index.html");
    if (submit_open(m) != 0)
        finish_offload(m);
}

/* The entry the miss would replace describes this very file: keep it,
 * checked now, and answer from it (true).  Otherwise it is stale: dropped
 * (the miss makes a new one, or the offload thread answers). */
static bool keep_entry(miss *m, uint64_t now)
{
    fc_entry *e = old_entry(m);
    if (!e)
        return false;
    if (!reval_same(&e->info, &m->stx)) {
        fcache_drop(m->c, e);
        return false;
    }
    e->checked = now;
    finish_file(m, e->fd, &e->info, e->body);
    return true;
}

/* Was the file changed within the last second (or "in the future")?  Then
 * a write() may still be copying into it: not read here (main.c's
 * read_stable() has the reasoning; signed, as there). */
static bool changed_just_now(const struct statx *x)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    uint64_t n = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    return (int64_t)(n - stx_ns(x->stx_ctime)) < 1000000000;
}

static void on_stat(spindle_shard *sh, int32_t res, void *ctx)
{
    miss *m = ctx;
    if (res < 0) {
        finish_status(m, 500);
        return;
    }
    mode_t mode = m->stx.stx_mode;
    if (S_ISDIR(mode) && !m->index) {
        open_index(m);
        return;
    }
    if (!S_ISREG(mode)) { /* FIFOs, sockets, devices; an index.html that is not a file */
        finish_status(m, m->index ? 404 : 403);
        return;
    }
    if (m->dir && !m->index) { /* "/file.txt/" */
        finish_status(m, 404);
        return;
    }
    uint64_t now = now_ns();
    stat_of(&m->stx, &m->st);
    if (keep_entry(m, now))
        return;
    ops->info(&m->fi, &m->st, m->rel);
    if (m->fi.size > content_max) {
        fc_entry *e =
            m->c ? fcache_put(m->c, m->key, m->klen, m->dir, &m->fi, m->fd, NULL, now) : NULL;
        if (e) {
            e->index = m->index;
            m->fd = -1; /* the entry's now */
            lease_take(sh, m->c, e, root);
            finish_file(m, e->fd, &e->info, NULL);
        } else {
            finish_file(m, m->fd, &m->fi, NULL);
        }
        return;
    }
    if ((m->fi.size && changed_just_now(&m->stx)) || !(m->body = fc_blob_new((size_t)m->fi.size))) {
        finish_offload(m);
        return;
    }
    if (m->fi.size == 0)
        on_check(sh, 0, m); /* nothing to read, nothing to mix */
    else if (spindle_file_read(sh, m->fd, m->body->data, (uint32_t)m->fi.size, 0, on_read, m) != 0)
        finish_offload(m);
}

static void on_read(spindle_shard *sh, int32_t res, void *ctx)
{
    (void)sh;
    miss *m = ctx;
    /* Short (the file shrank) or failed: the offload thread looks again. */
    if (res < 0 || (uint64_t)res != m->fi.size || submit_statx(m, &m->after, on_check) != 0)
        finish_offload(m);
}

/* The bytes count only if the file is still the one the first statx saw:
 * same inode, size, mtime and ctime (any write stamps them).  res 0 with
 * m->after zeroed: an empty file, never read. */
static void on_check(spindle_shard *sh, int32_t res, void *ctx)
{
    (void)sh;
    miss *m = ctx;
    if (res != 0 || (m->fi.size && !reval_same(&m->fi, &m->after))) {
        finish_offload(m);
        return;
    }
    fc_blob *b = m->body;
    fc_entry *e = m->c ? fcache_put(m->c, m->key, m->klen, m->dir, &m->fi, -1, b, now_ns()) : NULL;
    if (e) {
        e->index = m->index;
        m->body = NULL; /* the entry's reference now (each response takes its own) */
    }
    finish_file(m, -1, e ? &e->info : &m->fi, b);
}

/* ------------------------------------------------------------------------ */
/* Starting                                                                  */
/* ------------------------------------------------------------------------ */

static miss *find(const char *key, size_t klen, bool dir)
{
    for (miss *m = pending; m; m = m->next)
        if (m->klen == klen && m->dir == dir && memcmp(m->key, key, klen) == 0)
            return m;
    return NULL;
}

bool miss_start(spindle_stream *s, const spindle_request *req, fcache *c, const char *key,
                size_t klen, bool dir, bool head)
{
    miss *m = find(key, klen, dir);
    if (!m && inflight >= MISS_MAX_INFLIGHT)
        return false;
    waiter *w = waiter_new(s, req, head);
    if (!w)
        return false;
    if (m) { /* the same file is on its way: wait for it */
        *m->tail = w;
        m->tail = &w->next;
        return true;
    }
    static const char index[] = "/index.html";
    m = malloc(sizeof *m + 2 * (klen + 1) + sizeof index);
    if (!m) {
        free(w);
        return false;
    }
    memset(m, 0, sizeof *m);
    m->sh = spindle_current_shard();
    m->c = c;
    m->fd = -1;
    m->dir = dir;
    m->klen = klen;
    memcpy(m->key, key, klen + 1);
    m->rel = m->key + klen + 1;
    memcpy(m->rel, key, klen + 1);
    m->waiters = w;
    m->tail = &w->next;
    if (submit_open(m) != 0) {
        free(w);
        free(m);
        return false;
    }
    m->next = pending;
    if (pending)
        pending->prev = m;
    pending = m;
    inflight++;
    return true;
}
