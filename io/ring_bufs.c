/*
 * io/ring_bufs.c - provided-buffer ring (see ring_bufs.h for the contract).
 */
#include "ring_bufs.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct ring_bufs {
    struct io_uring *uring;
    struct io_uring_buf_ring *br; /* the ring the kernel reads from */
    size_t br_bytes;
    unsigned char *mem; /* count * size bytes of buffers */
    size_t mem_bytes;
    uint8_t *held; /* held[bid]: the caller holds bid */
    uint32_t count;
    uint32_t size;
    uint32_t held_count;
    uint32_t pending; /* written into br, tail not yet advanced */
    int mask;
    uint16_t bgid;
    bool registered;
};

static bool is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* Map the buffer ring and the buffers: 0, or -ENOMEM when either mapping
 * fails (ring_bufs_free() unmaps what was mapped). */
static int bufs_map(ring_bufs *b)
{
    /* The kernel wants the ring page-aligned: mmap gives that. */
    b->br_bytes = (size_t)b->count * sizeof(struct io_uring_buf);
    b->br = mmap(NULL, b->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->br == MAP_FAILED) {
        b->br = NULL;
        return -ENOMEM;
    }
    b->mem_bytes = (size_t)b->count * b->size;
    b->mem = mmap(NULL, b->mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->mem == MAP_FAILED) {
        b->mem = NULL;
        return -ENOMEM;
    }
    return 0;
}

int ring_bufs_new(ring_bufs **out, struct io_uring *uring, uint16_t bgid, uint32_t count,
                  uint32_t size, ring_error *err)
{
    ring_bufs *b;
    struct io_uring_buf_reg reg;
    int ret;

    *out = NULL;
    if (!is_pow2(count) || count > RING_BUFS_MAX_COUNT || size == 0 || size > (1u << 31)) {
        return ring_error_set(err, -EINVAL,
                              "ring_bufs: buf_count must be a power of two in [1, 32768] and "
                              "buf_size in [1, 2^31] (got %u x %u)",
                              count, size);
    }
    b = calloc(1, sizeof *b);
    if (!b)
        goto nomem;
    b->uring = uring;
    b->count = count;
    b->size = size;
    b->bgid = bgid;
    b->mask = io_uring_buf_ring_mask(count);
    b->held = calloc(count, 1);
    if (!b->held)
        goto nomem;

    if (bufs_map(b) < 0)
        goto nomem;

    io_uring_buf_ring_init(b->br);
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)b->br;
    reg.ring_entries = count;
    reg.bgid = bgid;
    ret = io_uring_register_buf_ring(uring, &reg, 0);
    if (ret < 0) {
        if (err) {
            err->code = ret;
            ring_explain_error(ret, "io_uring_register_buf_ring", 0, err->msg, sizeof err->msg);
        }
        ring_bufs_free(b);
        return ret;
    }
    b->registered = true;

    for (uint32_t bid = 0; bid < count; bid++)
        io_uring_buf_ring_add(b->br, b->mem + (size_t)bid * size, size, (unsigned short)bid,
                              b->mask, (int)bid);
    io_uring_buf_ring_advance(b->br, (int)count);
    *out = b;
    return 0;

nomem:
    ring_bufs_free(b);
    return ring_error_set(err, -ENOMEM,
                          "ring_bufs: cannot map %llu bytes of provided buffers (%u x %u)",
                          (unsigned long long)count * size, count, size);
}

void ring_bufs_free(ring_bufs *b)
{
    if (!b)
        return;
    if (b->registered)
        io_uring_unregister_buf_ring(b->uring, b->bgid);
    if (b->mem)
        munmap(b->mem, b->mem_bytes);
    if (b->br)
        munmap(b->br, b->br_bytes);
    free(b->held);
    free(b);
}

void *ring_bufs_get(const ring_bufs *b, uint16_t bid)
{
    if (bid >= b->count)
        return NULL;
    return b->mem + (size_t)bid * b->size;
}

uint32_t ring_bufs_size(const ring_bufs *b)
{
    return b->size;
}

uint16_t ring_bufs_group(const ring_bufs *b)
{
    return b->bgid;
}

uint32_t ring_bufs_available(const ring_bufs *b)
{
    return b->count - b->held_count;
}

uint32_t ring_bufs_held(const ring_bufs *b)
{
    return b->held_count;
}

void ring_bufs_commit(ring_bufs *b)
{
    if (b->pending == 0)
        return;
    /* One store-release of the tail publishes the whole batch. */
    io_uring_buf_ring_advance(b->br, (int)b->pending);
    b->pending = 0;
}

int ring_bufs_recycle(ring_bufs *b, uint16_t bid)
{
    if (bid >= b->count || !b->held[bid])
        return -EINVAL;
    b->held[bid] = 0;
    b->held_count--;
    /* Never more than count entries between the kernel's head and our
     * tail: every bid is either held here or in the ring, once. */
    io_uring_buf_ring_add(b->br, b->mem + (size_t)bid * b->size, b->size, bid, b->mask,
                          (int)b->pending);
    b->pending++;
    if (b->pending >= RING_BUFS_BATCH)
        ring_bufs_commit(b);
    return 0;
}

int ring_bufs_recycle_cqe(ring_bufs *b, const struct ring_cqe *cqe)
{
    int ret;

    if (!ring_cqe_has_buf(cqe))
        return 0;
    ret = ring_bufs_recycle(b, ring_cqe_bid(cqe));
    return ret < 0 ? ret : 1;
}

void ring_bufs_taken(ring_bufs *b, uint16_t bid)
{
    if (bid >= b->count || b->held[bid])
        return; /* cannot happen unless the kernel and we disagree */
    b->held[bid] = 1;
    b->held_count++;
}
