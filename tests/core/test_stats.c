/* test_stats.c - method classes, and spindle_get_stats() with no server. */
#include <criterion/criterion.h>

#include "spindle.h"
#include "stats.h"

Test(stats, method_classes)
{
    cr_assert_eq(stats_method_class("GET", 3), STATS_M_GET);
    cr_assert_eq(stats_method_class("HEAD", 4), STATS_M_HEAD);
    cr_assert_eq(stats_method_class("CONNECT", 7), STATS_M_CONNECT);
    cr_assert_eq(stats_method_class("GETX", 4), STATS_M_OTHER);
    cr_assert_eq(stats_method_class("get", 3), STATS_M_OTHER); /* methods are case-sensitive */
    cr_assert_eq(stats_method_class("", 0), STATS_M_OTHER);
}

Test(stats, no_server_no_stats)
{
    spindle_stats s;
    cr_assert_eq(spindle_get_stats(&s), SPINDLE_ESTATE);
    cr_assert_eq(spindle_get_stats(NULL), SPINDLE_EINVAL);
    cr_assert_str_eq(spindle_limit_name(0), "rapid-reset");
    cr_assert_null(spindle_limit_name(H2_LIMIT_COUNT));
}
