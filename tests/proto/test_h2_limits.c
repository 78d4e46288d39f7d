/* test_h2_limits.c - the defaults, their validation, and the token bucket
 * every abuse budget (Rapid Reset, glitches) is built on. */
#include <criterion/criterion.h>

#include "h2_limits.h"

Test(limits, defaults_are_valid_and_match_security_md)
{
    const h2_limits *l = h2_limits_default();
    cr_assert_null(h2_limits_check(l));
    cr_assert_eq(l->max_concurrent_streams, 100);
    cr_assert_eq(l->reset_burst, 1000);
    cr_assert_eq(l->reset_rate, 33);
    cr_assert_eq(l->glitch_burst, 10000);
    cr_assert_eq(l->glitch_rate, 330);
    cr_assert_eq(l->max_continuations, 8);
    cr_assert_eq(l->max_settings_entries, 32);
    cr_assert_eq(l->max_pending_control, 1000);
    cr_assert_eq(l->max_unsent_output, 512u * 1024u);
    cr_assert_eq(l->ping_interval_ms, 0); /* keepalive off, as Envoy and h2o */
    cr_assert_eq(l->ping_timeout_ms, 20000);
}

Test(limits, check_names_the_bad_field)
{
    h2_limits l = *h2_limits_default();
    l.max_frame_size = 16383;
    cr_assert_not_null(strstr(h2_limits_check(&l), "max_frame_size"));
    l = *h2_limits_default();
    l.initial_window_size = 2147483648u;
    cr_assert_not_null(strstr(h2_limits_check(&l), "initial_window_size"));
    l = *h2_limits_default();
    l.max_header_fields_hard = l.max_header_fields_soft - 1;
    cr_assert_not_null(h2_limits_check(&l));
    l = *h2_limits_default();
    l.max_concurrent_streams = 0;
    cr_assert_not_null(h2_limits_check(&l));
}

Test(bucket, burst_then_empty)
{
    h2_bucket b;
    h2_bucket_init(&b, 3, 1, 1000);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(h2_bucket_take(&b, 1000), 0);
    cr_assert_eq(h2_bucket_take(&b, 1000), -1);
    cr_assert_eq(h2_bucket_take(&b, 1999), -1, "a token needs a full second at 1/s");
    cr_assert_eq(h2_bucket_take(&b, 2000), 0);
    cr_assert_eq(h2_bucket_take(&b, 2000), -1);
}

Test(bucket, refill_capped_at_burst)
{
    h2_bucket b;
    h2_bucket_init(&b, 5, 100, 0);
    for (int i = 0; i < 5; i++)
        h2_bucket_take(&b, 0);
    /* An hour later: still only the burst. */
    int taken = 0;
    while (h2_bucket_take(&b, 3600000) == 0)
        taken++;
    cr_assert_eq(taken, 5);
}

Test(bucket, slow_rate_not_lost_to_rounding)
{
    /* 33/s taken at 10 ms steps (0.33 token per step) must still yield
     * ~33 tokens per second while the burst cap does not bind.  (With a
     * burst of 1 any token bucket drops the fraction above the cap.) */
    h2_bucket b;
    h2_bucket_init(&b, 100, 33, 0);
    while (h2_bucket_take(&b, 0) == 0)
        ;
    int got = 0;
    for (uint64_t t = 10; t <= 10000; t += 10)
        got += h2_bucket_take(&b, t) == 0;
    /* The clock advances whole milliseconds per token (1000/33 -> 30 ms),
     * over-crediting about 1%: harmless for an abuse budget. */
    cr_assert(got >= 325 && got <= 336, "got %d tokens in 10 s at 33/s", got);
}

Test(limits, every_limit_has_a_distinct_name)
{
    for (int i = 0; i < H2_LIMIT_COUNT; i++) {
        const char *a = h2_limit_name((h2_limit_id)i);
        cr_assert_not_null(a);
        cr_expect_str_neq(a, "unknown", "limit %d has no name", i);
        for (int j = 0; j < i; j++)
            cr_expect_str_neq(a, h2_limit_name((h2_limit_id)j), "limits %d and %d share a name", i,
                              j);
    }
    cr_expect_str_eq(h2_limit_name(H2_LIMIT_COUNT), "unknown");
}
