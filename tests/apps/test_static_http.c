/* Tests for apps/static/http.c's fast paths: sp_path_plain() (the fast case
 * of sp_path_normalize() gives, whenever it answers, the very key, length
 * and trailing-slash flag that sp_path_normalize() gives, and it answers
 * for the paths of ordinary files: the hit path then makes no copy) and
 * sp_parse_date()'s positional IMF-fixdate. */
#define _GNU_SOURCE /* strptime, timegm */
#include "http.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* sp_path_plain's answer for p, checked against sp_path_normalize's. */
static bool plain_agrees(const char *p, size_t len, size_t outlen)
{
    const char *key = NULL;
    size_t klen = 0;
    bool dir = false;
    if (!sp_path_plain(p, len, outlen, &key, &klen, &dir))
        return false;
    char out[4096];
    bool ndir = false;
    cr_assert_lt(outlen, sizeof out + 1);
    cr_assert_eq(sp_path_normalize(p, len, out, outlen, &ndir), SP_OK,
                 "plain path '%.*s' not SP_OK", (int)len, p);
    cr_assert_eq(klen, strlen(out), "'%.*s': key length %zu, normalised '%s'", (int)len, p, klen,
                 out);
    cr_assert(memcmp(key, out, klen) == 0, "'%.*s': key '%.*s', normalised '%s'", (int)len, p,
              (int)klen, key, out);
    cr_assert_eq(dir, ndir, "'%.*s': dir", (int)len, p);
    return true;
}

Test(static_http, plain_paths)
{
    static const char *const yes[] = {"/",       "/f13",         "/a/b/c.txt", "/dir/",
                                      "/a.b.c",  "/x-y_z~1,2;3", "/a/b/",      "/index.html",
                                      "/a\\..b", "/sub/deep.txt"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        cr_assert(plain_agrees(yes[i], strlen(yes[i]), 4096), "'%s' should be plain", yes[i]);
    const char *key;
    size_t klen;
    bool dir;
    cr_assert(sp_path_plain("/", 1, 4096, &key, &klen, &dir));
    cr_assert(klen == 1 && key[0] == '.' && dir);
    cr_assert(sp_path_plain("/dir/", 5, 4096, &key, &klen, &dir));
    cr_assert(klen == 3 && memcmp(key, "dir", 3) == 0 && dir);
}

Test(static_http, not_plain)
{
    /* Each needs sp_path_normalize(): a query, an escape, an empty, "." or
     * ".." segment, a dot file, not origin-form, too long, a NUL. */
    static const char *const no[] = {"",        "a",    "*",      "/a?b",   "/a%20b",  "//a",
                                     "/a//b",   "/./a", "/a/.",   "/..",    "/a/../b", "/.well",
                                     "/a/.git", "/?",   "/a/b//", "/%2e%2e"};
    const char *key;
    size_t klen;
    bool dir;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        cr_assert_not(sp_path_plain(no[i], strlen(no[i]), 4096, &key, &klen, &dir),
                      "'%s' should not be plain", no[i]);
    cr_assert_not(sp_path_plain("/a\0b", 4, 4096, &key, &klen, &dir), "a NUL byte");
    cr_assert_not(sp_path_plain("/abcd", 5, 5, &key, &klen, &dir), "as long as the buffer: 414");
    cr_assert(sp_path_plain("/abcd", 5, 6, &key, &klen, &dir));
}

/* Random paths over the bytes that matter: whenever sp_path_plain answers,
 * its answer is sp_path_normalize's. */
Test(static_http, plain_agrees_with_normalize)
{
    static const char alphabet[] = {'/', '/', '/', '.', '.', 'a', 'b', '%', '2', 'e', '?', '\\', 0};
    srand(15);
    size_t plain = 0;
    for (int n = 0; n < 200000; n++) {
        char p[24];
        size_t len = 1 + (size_t)rand() % (sizeof p - 1);
        p[0] = '/';
        for (size_t i = 1; i < len; i++)
            p[i] = alphabet[(size_t)rand() % sizeof alphabet];
        plain += plain_agrees(p, len, 1 + (size_t)rand() % 30);
    }
    cr_assert_gt(plain, 1000, "only %zu plain paths drawn", plain);
}

/* sp_parse_date(): the canonical IMF-fixdate (parsed by position) gives
 * back every second sp_http_date() wrote, from 1900 to 9999; days past a
 * month's end and a leap second run on as timegm() has them; the other
 * forms still parse. */
Test(static_http, dates)
{
    srand(7);
    for (int i = 0; i < 100000; i++) {
        int64_t lo = -2208988800LL, hi = 253402300799LL; /* 1900-01-01 .. 9999-12-31 */
        int64_t t =
            lo + (int64_t)(((uint64_t)rand() << 31 ^ (uint64_t)rand()) % (uint64_t)(hi - lo + 1));
        if (t == -1)
            continue;
        char d[30];
        sp_http_date((time_t)t, d);
        time_t back = 0;
        cr_assert(sp_parse_date(d, 29, &back), "%s", d);
        cr_assert_eq((int64_t)back, t, "%s: %lld", d, (long long)back);
    }
    static const char *const odd[] = {
        "Mon, 31 Feb 2025 10:00:00 GMT", "Tue, 30 Jun 2015 23:59:60 GMT",
        "Sat, 29 Feb 2020 00:00:00 GMT", "Xyz, 01 jan 2000 00:00:00 GMT"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        cr_assert_not_null(strptime(odd[i] + 5, "%d %b %Y %H:%M:%S", &tm));
        time_t want = timegm(&tm), got = 0;
        cr_assert(sp_parse_date(odd[i], strlen(odd[i]), &got), "%s", odd[i]);
        cr_assert_eq(got, want, "%s", odd[i]);
    }
    time_t t = 0;
    cr_assert(sp_parse_date("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t) && t == 784111777);
    cr_assert(sp_parse_date("Sun Nov  6 08:49:37 1994", 24, &t) && t == 784111777);
    cr_assert(sp_parse_date("  Sun, 06 Nov 1994 08:49:37 GMT ", 32, &t) && t == 784111777);
    cr_assert_not(sp_parse_date("Sun, 06 Nov 1994 08:49:37 UTC", 29, &t));
    cr_assert_not(sp_parse_date("Sun, 06 Nov 1994 24:49:37 GMT", 29, &t));
    cr_assert_not(sp_parse_date("Sun, 00 Nov 1994 08:49:37 GMT", 29, &t));
    cr_assert_not(sp_parse_date("Sun, 06 Nox 1994 08:49:37 GMT", 29, &t));
    cr_assert_not(sp_parse_date("Sun, 06 Nov 1899 08:49:37 GMT", 29, &t));
}
