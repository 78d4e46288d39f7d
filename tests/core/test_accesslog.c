/* Tests for core/accesslog_fmt.h, the access log's formatting primitives:
 * each against a plain reference (a byte loop, memcpy, snprintf), at every
 * length and position the vector and word paths split at.  The lines
 * themselves are checked end to end by tests/integration/test_ops.py. */
#define _POSIX_C_SOURCE 200809L

#include "accesslog_fmt.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static bool ref_clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b < 0x20 || b > 0x7e || b == '"' || b == '\\')
            return false;
    }
    return true;
}

Test(accesslog_fmt, byte_ok_is_the_escaping_rule)
{
    for (unsigned b = 0; b < 256; b++) {
        char c = (char)b;
        cr_assert_eq(alog_byte_ok((unsigned char)b), ref_clean(&c, 1), "byte 0x%02x", b);
    }
}

/* Every byte value at every position of strings of 0..70 bytes (the 16-byte
 * steps, the overlapping last step, the 8-byte words, the byte loop). */
Test(accesslog_fmt, clean_matches_the_reference_everywhere)
{
    char buf[80];
    for (size_t n = 0; n <= 70; n++) {
        memset(buf, 'a', sizeof buf);
        cr_assert(alog_clean(buf, n), "n %zu", n);
        for (size_t pos = 0; pos < n; pos++) {
            for (unsigned b = 0; b < 256; b++) {
                buf[pos] = (char)b;
                bool want = ref_clean(buf, n);
                cr_assert_eq(alog_clean(buf, n), want, "n %zu pos %zu byte 0x%02x", n, pos, b);
            }
            buf[pos] = 'a';
        }
        /* A bad byte just past the end is not looked at. */
        buf[n] = '"';
        cr_assert(alog_clean(buf, n), "n %zu, '\"' after the end", n);
        buf[n] = 'a';
    }
    cr_assert(alog_clean(NULL, 0));
}

Test(accesslog_fmt, clean_random_strings)
{
    srand(20);
    char buf[300];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)rand() % sizeof buf;
        for (size_t i = 0; i < n; i++) { /* mostly printable, a bad byte now and then */
            int b = rand() % 64 ? 0x20 + rand() % 0x5f : rand() % 256;
            buf[i] = (char)b;
        }
        cr_assert_eq(alog_clean(buf, n), ref_clean(buf, n), "round %d", round);
    }
}

/* alog_cpy writes exactly o[0..n) and reads nothing else (guards around
 * both sides stay as they were). */
Test(accesslog_fmt, cpy_is_exact)
{
    char src[100], dst[100];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)('A' + i % 26);
    for (size_t n = 0; n <= 80; n++) {
        memset(dst, '#', sizeof dst);
        char *end = alog_cpy(dst + 8, src + 3, n);
        cr_assert_eq(end, dst + 8 + n);
        cr_assert_eq(memcmp(dst + 8, src + 3, n), 0, "n %zu", n);
        for (size_t i = 0; i < 8; i++)
            cr_assert_eq(dst[i], '#', "n %zu: wrote before", n);
        for (size_t i = 8 + n; i < sizeof dst; i++)
            cr_assert_eq(dst[i], '#', "n %zu: wrote past the end", n);
    }
}

Test(accesslog_fmt, cpy_slack_copies_n_within_its_slack)
{
    char src[200], dst[200];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)('a' + i % 26);
    for (size_t n = 0; n <= 130; n++) {
        memset(dst, '#', sizeof dst);
        char *end = alog_cpy_slack(dst, src, n);
        cr_assert_eq(end, dst + n);
        cr_assert_eq(memcmp(dst, src, n), 0, "n %zu", n);
        size_t touched =
            n < ALOG_SLACK ? ALOG_SLACK : (n + ALOG_SLACK - 1) / ALOG_SLACK * ALOG_SLACK;
        for (size_t i = touched; i < sizeof dst; i++)
            cr_assert_eq(dst[i], '#', "n %zu: wrote past its slack at %zu", n, i);
    }
}

static void check_u(uint64_t v)
{
    char want[32], got[40];
    int n = snprintf(want, sizeof want, "%" PRIu64, v);
    memset(got, '#', sizeof got);
    char *end = alog_put_u(got, v);
    cr_assert_eq(end - got, n, "%s: length %td", want, end - got);
    cr_assert_eq(memcmp(got, want, (size_t)n), 0, "%s: got %.*s", want, n, got);
    for (size_t i = (size_t)n < 16 ? 16 : (size_t)n; i < sizeof got; i++)
        cr_assert_eq(got[i], '#', "%s: wrote at %zu", want, i);
}

Test(accesslog_fmt, put_u_matches_printf)
{
    uint64_t p = 1;
    for (int d = 0; d < 20; d++) {
        check_u(p - 1);
        check_u(p);
        check_u(p + 1);
        check_u(p * 5);
        if (d < 19)
            p *= 10;
    }
    check_u(UINT64_MAX);
    check_u(UINT64_MAX - 1);
    for (uint64_t v = 0; v < 100000; v++)
        check_u(v);
    srand(11);
    for (int i = 0; i < 100000; i++)
        check_u(((uint64_t)rand() << 40) ^ ((uint64_t)rand() << 20) ^ (uint64_t)rand());
}

Test(accesslog_fmt, put_status_matches_printf)
{
    char want[16], got[32];
    unsigned vals[] = {0, 1, 99, 1000, 1001, 65535};
    for (unsigned v = 100; v < 1000 + sizeof vals / sizeof vals[0]; v++) {
        unsigned s = v < 1000 ? v : vals[v - 1000];
        int n = snprintf(want, sizeof want, "%u", s);
        memset(got, '#', sizeof got);
        char *end = alog_put_status(got, s);
        cr_assert_eq(end - got, n, "%u", s);
        cr_assert_eq(memcmp(got, want, (size_t)n), 0, "%u", s);
    }
}

Test(accesslog_fmt, put_2_pads)
{
    char got[2];
    for (int v = 0; v < 100; v++) {
        alog_put_2(got, v);
        cr_assert_eq(got[0], '0' + v / 10);
        cr_assert_eq(got[1], '0' + v % 10);
    }
}

/* alog_eq against memcmp: every length up to 70, a difference at every
 * position, and no read outside either side (the strings sit at the end
 * of exactly sized heap blocks, for ASan to see an over-read). */
Test(accesslog_fmt, eq_matches_memcmp)
{
    cr_assert(alog_eq(NULL, NULL, 0));
    for (size_t n = 1; n <= 70; n++) {
        char *s = malloc(n), *t = malloc(n);
        cr_assert(s && t);
        for (size_t i = 0; i < n; i++)
            s[i] = t[i] = (char)('a' + i % 26);
        cr_assert(alog_eq(s, t, n), "n %zu", n);
        for (size_t pos = 0; pos < n; pos++) {
            t[pos] ^= 0x20;
            cr_assert_not(alog_eq(s, t, n), "n %zu pos %zu", n, pos);
            t[pos] ^= 0x20;
        }
        free(s);
        free(t);
    }
}
