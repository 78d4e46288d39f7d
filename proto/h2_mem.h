/* h2_mem.h - the injectable allocator every proto/ allocation goes through.
 *
 * proto/ never calls malloc directly.  Tests pass an allocator that counts
 * calls (to prove the warm request path allocates nothing) or fails the Nth
 * allocation (to prove every H2_E_NOMEM path is clean).  A NULL h2_mem* means
 * the C library's allocator.
 */
#ifndef SPINDLE_H2_MEM_H
#define SPINDLE_H2_MEM_H

#include <stddef.h>

typedef struct h2_mem {
    void *(*malloc)(size_t size, void *ud);
    void *(*realloc)(void *ptr, size_t size, void *ud);
    void (*free)(void *ptr, void *ud);
    void *ud;
} h2_mem;

/* The C library allocator; never NULL. */
const h2_mem *h2_mem_default(void);

static inline void *h2_malloc(const h2_mem *m, size_t n)
{
    return m->malloc(n, m->ud);
}
static inline void *h2_realloc(const h2_mem *m, void *p, size_t n)
{
    return m->realloc(p, n, m->ud);
}
static inline void h2_free(const h2_mem *m, void *p)
{
    if (p)
        m->free(p, m->ud);
}

#endif
