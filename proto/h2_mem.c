#include "h2_mem.h"

#include <stdlib.h>

static void *libc_malloc(size_t n, void *ud)
{
    (void)ud;
    return malloc(n);
}
static void *libc_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return realloc(p, n);
}
static void libc_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}

const h2_mem *h2_mem_default(void)
{
    static const h2_mem libc = {libc_malloc, libc_realloc, libc_free, NULL};
    return &libc;
}
