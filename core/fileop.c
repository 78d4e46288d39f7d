/* fileop.c - spindle_file_*: file system calls as operations on the
 * shard's ring (IORING_OP_OPENAT2, STATX, READ, CLOSE), for handlers that would
 * otherwise make them on the shard's thread (apps/static).
 *
 * One pending op per slot of the shard's file table, user_data (OP_FILE,
 * slot, gen); the ring never holds a pointer.  The callback runs exactly
 * once, from the CQE, in a later loop iteration than the submit (never
 * inside it), with the kernel's result; there is no cancel: what the kernel
 * borrows (path, open_how, statx buffer, read buffer) must stay valid
 * until then, and the callback is where its owner frees it.  An
 * application that gives the op its own context (not a stream pointer:
 * the stream may close meanwhile; keep a spindle_handle) is safe from a
 * reset in flight by construction.
 *
 * At stop the shard's loop goes on until every op has completed, bounded
 * by the stop deadline (async_shard_stopped); an op still in flight at the
 * teardown is logged and its callback never runs (its memory may still be
 * written by the kernel while the ring closes, so it must not be freed).
 */
#include <errno.h>
#include <stdlib.h>

#include "async.h"
#include "log.h"
#include "shard.h"

typedef struct file_op {
    spindle_file_fn fn;
    void *ctx;
} file_op;

/* A slot for the op (fn NULL: a close nobody waits for), or an error code
 * (nothing held). */
static int begin(spindle_shard *as, spindle_file_fn fn, void *ctx, file_op **out, uint64_t *ud)
{
    if (!as || as != async_current() || as->finished)
        return SPINDLE_ESTATE;
    file_op *op = malloc(sizeof *op);
    uint32_t slot, gen;
    if (!op || !slot_table_take(&as->files, op, &slot, &gen)) {
        free(op);
        return SPINDLE_ENOMEM;
    }
    op->fn = fn;
    op->ctx = ctx;
    *out = op;
    *ud = ring_ud_pack(OP_FILE, slot, gen);
    return 0;
}

/* The prep's result: 0 (op in flight) or the error (op released). */
static int end(spindle_shard *as, file_op *op, uint64_t ud, int prep_rc)
{
    if (prep_rc == 0) {
        as->nfiles++;
        return 0;
    }
    slot_table_release(&as->files, ring_ud_slot(ud));
    free(op);
    return prep_rc == -ENOSPC ? SPINDLE_EURING : SPINDLE_EINVAL;
}

int spindle_file_openat2(spindle_shard *as, int dirfd, const char *path, const struct open_how *how,
                         spindle_file_fn fn, void *ctx)
{
    file_op *op;
    uint64_t ud;
    int rc = path && how && fn ? begin(as, fn, ctx, &op, &ud) : SPINDLE_EINVAL;
    return rc ? rc : end(as, op, ud, ring_prep_openat2(as->sh->r, dirfd, path, how, ud));
}

int spindle_file_statx(spindle_shard *as, int dirfd, const char *path, int flags, uint32_t mask,
                       struct statx *out, spindle_file_fn fn, void *ctx)
{
    file_op *op;
    uint64_t ud;
    int rc = path && out && fn ? begin(as, fn, ctx, &op, &ud) : SPINDLE_EINVAL;
    return rc ? rc : end(as, op, ud, ring_prep_statx(as->sh->r, dirfd, path, flags, mask, out, ud));
}

int spindle_file_read(spindle_shard *as, int fd, void *buf, uint32_t len, uint64_t off,
                      spindle_file_fn fn, void *ctx)
{
    file_op *op;
    uint64_t ud;
    int rc = fd >= 0 && (buf || !len) && fn ? begin(as, fn, ctx, &op, &ud) : SPINDLE_EINVAL;
    return rc ? rc : end(as, op, ud, ring_prep_read(as->sh->r, fd, buf, len, off, ud));
}

int spindle_file_close(spindle_shard *as, int fd, spindle_file_fn fn, void *ctx)
{
    file_op *op;
    uint64_t ud;
    int rc = fd >= 0 ? begin(as, fn, ctx, &op, &ud) : SPINDLE_EINVAL;
    return rc ? rc : end(as, op, ud, ring_prep_close(as->sh->r, fd, ud));
}

void fileop_on_cqe(shard *sh, const ring_cqe *cqe)
{
    spindle_shard *as = sh->api;
    if (!as)
        return;
    uint32_t slot = ring_ud_slot(cqe->user_data);
    file_op *op = slot_table_get(&as->files, slot, ring_ud_gen(cqe->user_data));
    if (!op)
        return; /* cannot happen: ops are never cancelled */
    slot_table_release(&as->files, slot);
    as->nfiles--;
    spindle_file_fn fn = op->fn;
    void *ctx = op->ctx;
    free(op);
    if (fn)
        fn(as, cqe->res, ctx);
}

void fileop_teardown(spindle_shard *as)
{
    if (as->nfiles)
        log_msg(LOG_WARN, (int)as->sh->idx,
                "%u file operation(s) still in flight at shard stop: their callbacks will not run",
                as->nfiles);
    for (uint32_t i = 0; i < as->files.cap; i++)
        free(as->files.e[i].p);
    slot_table_free(&as->files);
}
