/* Tests for apps/static/fcache.h: lookups, replacement, LRU eviction under
 * the entry and byte bounds, the disabled cache, descriptors closed on
 * eviction, and blobs outliving their entries. */
#define _GNU_SOURCE

#include "fcache.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static fc_info info_of(uint64_t size)
{
    fc_info fi;
    memset(&fi, 0, sizeof fi);
    fi.size = size;
    fi.ctype = "text/plain";
    snprintf(fi.clen, sizeof fi.clen, "%llu", (unsigned long long)size);
    return fi;
}

static fc_entry *put_blob(fcache *c, const char *key, size_t len)
{
    fc_info fi = info_of(len);
    fc_blob *b = fc_blob_new(len);
    cr_assert_not_null(b);
    memset(b->data, 'x', len);
    fc_entry *e = fcache_put(c, key, strlen(key), false, &fi, -1, b, 1);
    if (!e)
        fc_blob_unref(b);
    return e;
}

static bool has(fcache *c, const char *key)
{
    return fcache_get(c, key, strlen(key), false) != NULL;
}

Test(fcache, defaults)
{
    fcache_limits l = fcache_limits_default();
    cr_assert_eq(l.entries, 1024);
    cr_assert_eq(l.bytes, 32u << 20);
    cr_assert_eq(l.content_max, 64u << 10);
    cr_assert_eq(l.revalidate_ms, 1000);
}

Test(fcache, get_put_replace)
{
    fcache_limits l = fcache_limits_default();
    fcache *c = fcache_new(&l);
    cr_assert_null(fcache_get(c, "a", 1, false));
    fc_entry *e = put_blob(c, "a", 10);
    cr_assert_not_null(e);
    cr_assert_eq(fcache_get(c, "a", 1, false), e);
    cr_assert_null(fcache_get(c, "a", 1, true), "the trailing-slash form is another key");
    cr_assert_null(fcache_get(c, "ab", 2, false));
    cr_assert_str_eq(e->key, "a");
    fc_entry *e2 = put_blob(c, "a", 20);
    cr_assert_eq(fcache_count(c), 1);
    cr_assert_eq(fcache_bytes(c), 20);
    cr_assert_eq(fcache_get(c, "a", 1, false), e2);
    fcache_drop(c, e2);
    cr_assert_eq(fcache_count(c), 0);
    cr_assert_eq(fcache_bytes(c), 0);
    fcache_free(c);
}

Test(fcache, entry_bound_evicts_least_recently_used)
{
    fcache_limits l = fcache_limits_default();
    l.entries = 3;
    fcache *c = fcache_new(&l);
    put_blob(c, "a", 1);
    put_blob(c, "b", 1);
    put_blob(c, "c", 1);
    cr_assert(has(c, "a")); /* a is now the most recent: b is the oldest */
    put_blob(c, "d", 1);
    cr_assert_eq(fcache_count(c), 3);
    cr_assert_not(has(c, "b"));
    cr_assert(has(c, "a") && has(c, "c") && has(c, "d"));
    fcache_free(c);
}

Test(fcache, byte_bound)
{
    fcache_limits l = fcache_limits_default();
    l.bytes = 100;
    fcache *c = fcache_new(&l);
    put_blob(c, "a", 40);
    put_blob(c, "b", 40);
    cr_assert_null(put_blob(c, "big", 101), "larger than the bound: not cached");
    cr_assert_eq(fcache_count(c), 2);
    put_blob(c, "c", 40); /* evicts a */
    cr_assert_eq(fcache_bytes(c), 80);
    cr_assert_not(has(c, "a"));
    cr_assert(has(c, "b") && has(c, "c"));
    put_blob(c, "d", 100); /* evicts everything else */
    cr_assert_eq(fcache_count(c), 1);
    cr_assert_eq(fcache_bytes(c), 100);
    fcache_free(c);
}

Test(fcache, disabled)
{
    fcache_limits l = fcache_limits_default();
    l.entries = 0;
    fcache *c = fcache_new(&l);
    cr_assert_null(put_blob(c, "a", 1));
    cr_assert_eq(fcache_count(c), 0);
    fcache_free(c);
}

Test(fcache, descriptors_closed_on_eviction_and_free)
{
    fcache_limits l = fcache_limits_default();
    l.entries = 1;
    fcache *c = fcache_new(&l);
    fc_info fi = info_of(1 << 20);
    int fd1 = open("/dev/null", O_RDONLY | O_CLOEXEC),
        fd2 = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert(fd1 >= 0 && fd2 >= 0);
    fc_entry *e = fcache_put(c, "x", 1, false, &fi, fd1, NULL, 1);
    cr_assert_eq(e->fd, fd1);
    cr_assert_null(e->body);
    fcache_put(c, "y", 1, false, &fi, fd2, NULL, 1);
    cr_assert_eq(fcntl(fd1, F_GETFD), -1, "the evicted entry's descriptor is closed");
    cr_assert_neq(fcntl(fd2, F_GETFD), -1);
    fcache_free(c);
    cr_assert_eq(fcntl(fd2, F_GETFD), -1);
}

Test(fcache, blob_outlives_its_entry)
{
    fcache_limits l = fcache_limits_default();
    fcache *c = fcache_new(&l);
    fc_entry *e = put_blob(c, "a", 8);
    fc_blob *b = e->body;
    atomic_fetch_add(&b->refs, 1); /* a response sending it */
    fcache_drop(c, e);
    cr_assert_eq(atomic_load(&b->refs), 1);
    cr_assert_eq(b->data[7], 'x');
    fc_blob_release(b, b->data, b->len); /* spindle done: freed (ASan checks) */
    fcache_free(c);
}

Test(fcache, many_keys)
{
    fcache_limits l = fcache_limits_default();
    l.entries = 500;
    fcache *c = fcache_new(&l);
    char k[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "dir/file-%d.txt", i);
        cr_assert_not_null(put_blob(c, k, 3));
    }
    cr_assert_eq(fcache_count(c), 500);
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "dir/file-%d.txt", i);
        cr_assert_eq(has(c, k), i >= 1500, "%s", k);
    }
    fcache_free(c);
}

/* Keys of every length from 1 to 40 that differ in one byte only (the
 * hash loads 8 bytes at a time, and the tail in overlapping pieces): each
 * is found as itself, never as another. */
Test(fcache, keys_differing_in_one_byte)
{
    fcache_limits l = fcache_limits_default();
    l.entries = 4096;
    fcache *c = fcache_new(&l);
    char keys[40 * 40][41];
    size_t n = 0;
    for (size_t len = 1; len <= 40; len++)
        for (size_t at = 0; at < len; at++) {
            memset(keys[n], 'a', len);
            keys[n][at] = 'b';
            keys[n][len] = '\0';
            cr_assert_not_null(put_blob(c, keys[n], 1));
            n++;
        }
    for (size_t i = 0; i < n; i++) {
        fc_entry *e = fcache_get(c, keys[i], strlen(keys[i]), false);
        cr_assert_not_null(e, "key %s", keys[i]);
        cr_assert_str_eq(e->key, keys[i]);
    }
    char all_a[41];
    memset(all_a, 'a', sizeof all_a);
    for (size_t len = 1; len <= 40; len++)
        cr_assert_null(fcache_get(c, all_a, len, false), "no key of %zu a's", len);
    fcache_free(c);
}
