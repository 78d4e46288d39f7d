/* h2_pool.c - fixed-size block pools (h2_pool.h). */
#include "h2_pool.h"

void h2_pool_init(h2_pool *p, uint32_t size, uint32_t keep, const h2_mem *mem)
{
    p->free_list = NULL;
    p->size = size < sizeof(void *) ? (uint32_t)sizeof(void *) : size;
    p->nfree = 0;
    p->keep = keep;
    p->live = 0;
    p->mem = mem;
}

void h2_pool_drain(h2_pool *p)
{
    while (p->free_list) {
        void *b = p->free_list;
        memcpy(&p->free_list, b, sizeof(void *));
        h2_free(p->mem, b);
    }
    p->nfree = 0;
}

void h2_pool_bytes(const h2_pool *p, uint64_t *live, uint64_t *free_bytes)
{
    *live = (uint64_t)p->live * p->size;
    *free_bytes = (uint64_t)p->nfree * p->size;
}
