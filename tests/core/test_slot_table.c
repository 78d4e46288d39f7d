/* Tests for core/slot_table.h: names go stale when their slot is released
 * (also after the slot is reused), generation 0 never names anything, the
 * table grows and stops at its limit. */
#include <criterion/criterion.h>

#include "slot_table.h"

Test(slot_table, stale_after_release_and_reuse)
{
    slot_table t;
    slot_table_init(&t, 1000);
    int a, b;
    uint32_t sa, ga, sb, gb;
    cr_assert(slot_table_take(&t, &a, &sa, &ga));
    cr_assert_neq(ga, 0);
    cr_assert_eq(slot_table_get(&t, sa, ga), &a);
    cr_assert_null(slot_table_get(&t, sa, 0));
    cr_assert_null(slot_table_get(&t, 999999, ga));
    slot_table_release(&t, sa);
    cr_assert_null(slot_table_get(&t, sa, ga), "released: stale");
    cr_assert(slot_table_take(&t, &b, &sb, &gb));
    cr_assert_eq(sb, sa, "LIFO reuse");
    cr_assert_neq(gb, ga);
    cr_assert_null(slot_table_get(&t, sa, ga), "the old name still finds nothing");
    cr_assert_eq(slot_table_get(&t, sb, gb), &b);
    slot_table_free(&t);
}

Test(slot_table, grows_to_its_limit)
{
    slot_table t;
    slot_table_init(&t, 100);
    static int objs[101];
    uint32_t s, g;
    for (int i = 0; i < 100; i++)
        cr_assert(slot_table_take(&t, &objs[i], &s, &g));
    cr_assert_not(slot_table_take(&t, &objs[100], &s, &g), "limit reached");
    cr_assert_eq(t.used, 100);
    slot_table_release(&t, 42);
    cr_assert(slot_table_take(&t, &objs[100], &s, &g));
    cr_assert_eq(s, 42);
    slot_table_free(&t);
}

Test(slot_table, generation_skips_zero_on_wrap)
{
    slot_table t;
    slot_table_init(&t, 4);
    int a;
    uint32_t s, g;
    cr_assert(slot_table_take(&t, &a, &s, &g));
    t.e[s].gen = UINT32_MAX;
    slot_table_release(&t, s);
    cr_assert_eq(t.e[s].gen, 1);
    slot_table_free(&t);
}
