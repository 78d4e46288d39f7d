/* test_h2_pool.c - proto/h2_pool.c: fixed-size block pools over a counting
 * allocator (h2_script.h's h2s_mem). */
#include <criterion/criterion.h>
#include <string.h>

#include "h2_pool.h"
#include "h2_script.h"

Test(pool, reuses_freed_blocks_without_allocating)
{
    h2s_mem m;
    h2s_mem_init(&m);
    h2_pool p;
    h2_pool_init(&p, 64, 4, &m.mem);
    void *a = h2_pool_get(&p);
    cr_assert_not_null(a);
    memset(a, 0xab, 64); /* the whole block is the caller's */
    cr_expect_eq(m.allocs, 1u);
    h2_pool_put(&p, a);
    void *b = h2_pool_get(&p);
    cr_expect_eq(b, a, "the free block comes back");
    cr_expect_eq(m.allocs, 1u, "no new allocation");
    h2_pool_put(&p, b);
    h2_pool_drain(&p);
    cr_expect_eq(m.live, 0u);
}

Test(pool, keeps_at_most_keep_free_blocks)
{
    h2s_mem m;
    h2s_mem_init(&m);
    h2_pool p;
    h2_pool_init(&p, 32, 2, &m.mem);
    void *b[5];
    for (int i = 0; i < 5; i++)
        b[i] = h2_pool_get(&p);
    cr_expect_eq(p.live, 5u);
    for (int i = 0; i < 5; i++)
        h2_pool_put(&p, b[i]);
    cr_expect_eq(p.live, 0u);
    cr_expect_eq(p.nfree, 2u, "keep bounds the free list");
    cr_expect_eq(m.live, 2u, "the rest went back to the allocator");
    uint64_t live, free_bytes;
    h2_pool_bytes(&p, &live, &free_bytes);
    cr_expect_eq(live, 0u);
    cr_expect_eq(free_bytes, 64u);
    h2_pool_drain(&p);
    cr_expect_eq(p.nfree, 0u);
    cr_expect_eq(m.live, 0u);
}

Test(pool, tiny_blocks_hold_the_free_link)
{
    h2_pool p;
    h2_pool_init(&p, 1, 8, h2_mem_default());
    cr_expect_eq(p.size, sizeof(void *), "a block must hold the free-list pointer");
    void *a = h2_pool_get(&p), *b = h2_pool_get(&p);
    h2_pool_put(&p, a);
    h2_pool_put(&p, b);
    cr_expect_eq(h2_pool_get(&p), b, "LIFO: the last freed comes first");
    cr_expect_eq(h2_pool_get(&p), a);
    h2_pool_put(&p, a);
    h2_pool_put(&p, b);
    h2_pool_drain(&p);
}

Test(pool, allocation_failure_is_null_and_leaves_counts)
{
    h2s_mem m;
    h2s_mem_init(&m);
    m.fail_at = 1;
    h2_pool p;
    h2_pool_init(&p, 16, 4, &m.mem);
    cr_expect_null(h2_pool_get(&p));
    cr_expect_eq(p.live, 0u);
    void *a = h2_pool_get(&p); /* the next attempt succeeds */
    cr_assert_not_null(a);
    cr_expect_eq(p.live, 1u);
    uint64_t live, free_bytes;
    h2_pool_bytes(&p, &live, &free_bytes);
    cr_expect_eq(live, 16u);
    cr_expect_eq(free_bytes, 0u);
    h2_pool_put(&p, a);
    h2_pool_drain(&p);
    cr_expect_eq(m.live, 0u);
}
