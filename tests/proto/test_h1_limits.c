/* test_h1_limits.c - the HTTP/1.1 defaults, their validation and names. */
#include <criterion/criterion.h>
#include <string.h>

#include "h1_limits.h"

Test(h1_limits, defaults_are_valid)
{
    const h1_limits *l = h1_limits_default();
    cr_assert_null(h1_limits_check(l));
    cr_assert_eq(l->max_request_line, 8192);
    cr_assert_eq(l->max_field_line, 8192);
    cr_assert_eq(l->max_fields, 100);
    cr_assert_eq(l->max_head, 65536);
    cr_assert_eq(l->max_chunk_line, 1024);
    cr_assert_eq(l->max_body, 0);
    cr_assert_eq(l->max_pipelined, 16);
    cr_assert_eq(l->max_requests, 10000);
    cr_assert_eq(l->header_timeout_ms, 10000);
    cr_assert_eq(l->idle_timeout_ms, 60000);
    cr_assert_eq(l->ws_idle_timeout_ms, 60000);
}

Test(h1_limits, check_names_the_bad_field)
{
    h1_limits l = *h1_limits_default();
    l.max_fields = 0;
    cr_assert_not_null(strstr(h1_limits_check(&l), "max_fields"));
    l = *h1_limits_default();
    l.max_head = 1000;
    cr_assert_not_null(strstr(h1_limits_check(&l), "max_head"));
    l = *h1_limits_default();
    l.max_pipelined = 0;
    cr_assert_not_null(strstr(h1_limits_check(&l), "max_pipelined"));
    l = *h1_limits_default();
    l.max_request_line = 10;
    cr_assert_not_null(strstr(h1_limits_check(&l), "max_request_line"));
    l = *h1_limits_default();
    l.max_chunk_line = 1;
    cr_assert_not_null(strstr(h1_limits_check(&l), "max_chunk_line"));
}

Test(h1_limits, every_limit_has_a_name)
{
    for (int i = 0; i < H1_LIMIT_COUNT; i++) {
        const char *n = h1_limit_name((h1_limit_id)i);
        cr_assert_not_null(n);
        cr_assert_str_neq(n, "unknown", "limit %d", i);
    }
    cr_assert_str_eq(h1_limit_name(H1_LIMIT_COUNT), "unknown");
}
