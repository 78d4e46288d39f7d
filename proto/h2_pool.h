/* h2_pool.h - fixed-size block pools: a free list over blocks from an h2_mem.
 *
 * Streams, data chunks, output blocks, segment rings and stream tables come
 * from pools in the h2_ctx, so that warm connections recycle blocks instead
 * of allocating.  `keep` bounds how many free blocks a pool retains; beyond
 * it, blocks go back to the h2_mem.
 *
 * Thread: a pool belongs to its context's thread.
 */
#ifndef SPINDLE_H2_POOL_H
#define SPINDLE_H2_POOL_H

#include <stdint.h>
#include <string.h>

#include "h2_mem.h"

typedef struct h2_pool {
    void *free_list;
    uint32_t size;
    uint32_t nfree;
    uint32_t keep;
    uint32_t live; /* blocks handed out and not returned */
    const h2_mem *mem;
} h2_pool;

/* Blocks of `size` bytes (at least a pointer), at most `keep` kept free.
 * The h2_mem is referenced: it must outlive the pool. */
void h2_pool_init(h2_pool *p, uint32_t size, uint32_t keep, const h2_mem *mem);

/* Give every free block back to the h2_mem.  Blocks still handed out stay
 * the caller's (live is not changed). */
void h2_pool_drain(h2_pool *p);

/* Bytes handed out (live) and kept free. */
void h2_pool_bytes(const h2_pool *p, uint64_t *live, uint64_t *free_bytes);

/* A block of p->size bytes, uninitialised: a free one if any, else a new
 * one from the h2_mem.  NULL when the h2_mem fails.  (Inline: every stream
 * and data chunk of the warm path goes through here.) */
static inline void *h2_pool_get(h2_pool *p)
{
    void *b = p->free_list;
    if (b) {
        memcpy(&p->free_list, b, sizeof(void *));
        p->nfree--;
    } else {
        b = h2_malloc(p->mem, p->size);
        if (!b)
            return NULL;
    }
    p->live++;
    return b;
}

/* Return a block obtained from h2_pool_get() on the same pool. */
static inline void h2_pool_put(h2_pool *p, void *b)
{
    p->live--;
    if (p->nfree < p->keep) {
        memcpy(b, &p->free_list, sizeof(void *));
        p->free_list = b;
        p->nfree++;
    } else {
        h2_free(p->mem, b);
    }
}

#endif
