/* reval.c - an entry's periodic check as one STATX on the shard's ring
 * instead of openat2 + fstat + close on the shard's thread (issue 15).
 *
 * statx() of the path from the root does not refuse symlinks that leave
 * the root the way openat2(RESOLVE_BENEATH) does, and it need not: its
 * answer is only compared with the identity of the file the entry was
 * made from (opened beneath the root).  Any difference, a path that now
 * leads elsewhere included, drops the entry, and the next request resolves
 * the path beneath the root again; the same identity is the same file.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fmap.h"
#include "reval.h"

/* Checks in flight on this shard (the thread is the shard's): each takes a
 * CQ entry when it completes, and the ring's CQ is sized for few such ops
 * (io/ring.h); past this many the check is done the synchronous way. */
#define REVAL_MAX_INFLIGHT 64u
static _Thread_local unsigned inflight;

typedef struct reval {
    fcache *c;
    struct statx stx;
    size_t klen;
    bool dir;
    uint32_t lease_gen; /* the entry's lease when the check started (lease.c) */
    char *path;         /* into key[]'s tail: the file statx looks at */
    char key[];         /* the entry's key, NUL, then the path */
} reval;

static uint64_t stx_ns(struct statx_timestamp t)
{
    return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

bool reval_same(const fc_info *fi, const struct statx *x)
{
    return S_ISREG(x->stx_mode) && fi->dev == makedev(x->stx_dev_major, x->stx_dev_minor) &&
           fi->ino == x->stx_ino && fi->size == x->stx_size && fi->mns == stx_ns(x->stx_mtime) &&
           fi->cns == stx_ns(x->stx_ctime);
}

static void reval_done(spindle_shard *sh, int32_t res, void *ctx)
{
    (void)sh;
    reval *v = ctx;
    inflight--;
    fc_entry *e = fcache_get(v->c, v->key, v->klen, v->dir);
    if (e) {
        e->checking = false;
        if (res == 0 && reval_same(&e->info, &v->stx)) {
            e->checked = now_ns();
            /* A check started after the lease was granted: no write can
             * have come in unseen since, so hits may trust the entry. */
            if (e->lease == LEASE_HELD && v->lease_gen == e->lease_gen)
                e->lease = LEASE_OK;
        } else
            fcache_drop(v->c, e);
    }
    free(v);
}

bool reval_start(spindle_shard *sh, fcache *c, fc_entry *e, int root_fd)
{
    /* The file itself: a directory's entry is its index.html. */
    const char *tail = !e->index ? "" : strcmp(e->key, ".") == 0 ? "index.html" : "/index.html";
    size_t tlen = strlen(tail);
    if (inflight >= REVAL_MAX_INFLIGHT)
        return false;
    bool root_index = e->index && strcmp(e->key, ".") == 0;
    reval *v = malloc(sizeof *v + 2 * (e->klen + 1) + tlen);
    if (!v)
        return false;
    v->c = c;
    v->klen = e->klen;
    v->dir = e->dir;
    v->lease_gen = e->lease_gen;
    memcpy(v->key, e->key, e->klen + 1);
    v->path = v->key + e->klen + 1;
    if (root_index)
        memcpy(v->path, tail, tlen + 1);
    else {
        memcpy(v->path, e->key, e->klen);
        memcpy(v->path + e->klen, tail, tlen + 1);
    }
    if (spindle_file_statx(sh, root_fd, v->path, AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, &v->stx,
                           reval_done, v) != 0) {
        free(v);
        return false;
    }
    e->checking = true;
    inflight++;
    return true;
}
