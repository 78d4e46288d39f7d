/* Tests for apps/static/http.c's sp_path_plain(): the fast case of
 * sp_path_normalize() gives, whenever it answers, the very key, length and
 * trailing-slash flag that sp_path_normalize() gives, and it answers for
 * the paths of ordinary files (the hit path then makes no copy). */
#include "http.h"

#include <criterion/criterion.h>
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
