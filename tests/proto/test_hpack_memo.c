/* Tests for proto/hpack_memo.c: the encoder's last literal per volatile
 * name.  A repeat must produce exactly the bytes of the long way (a fresh
 * encoder's), for every remembered name and Huffman mode; anything else
 * (another value, another mode, a never-indexed field, a name that is not
 * remembered) takes the long way; the memory is freed with the encoder. */
#include <criterion/criterion.h>
#include <string.h>

#include "hpack_memo.h"

static hpack_field fld(const char *name, const char *value, uint8_t flags)
{
    return (hpack_field){(const uint8_t *)name,
                         (const uint8_t *)value,
                         (uint32_t)strlen(name),
                         (uint32_t)strlen(value),
                         flags,
                         0};
}

/* The block for f[0..n) from a server encoder that has seen nothing. */
static size_t fresh(const hpack_field *f, size_t n, hpack_huff_mode huff, uint8_t *out)
{
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    e.skip_volatile = true;
    e.huff = huff;
    size_t len = 0;
    cr_assert_eq(hpack_encode_block(&e, f, n, out, 1024, &len), H2_OK);
    hpack_encoder_free(&e);
    return len;
}

static size_t block(hpack_encoder *e, const hpack_field *f, size_t n, uint8_t *out)
{
    size_t len = 0;
    cr_assert_eq(hpack_encode_block(e, f, n, out, 1024, &len), H2_OK);
    return len;
}

Test(hpack_memo, kinds)
{
    const char *names[] = {"content-length", "etag", "last-modified", "age",   "expires",
                           "set-cookie",     "date", "content-type",  "etags", ""};
    const unsigned want[] = {0,
                             1,
                             2,
                             HPACK_MEMO_KINDS,
                             HPACK_MEMO_KINDS,
                             HPACK_MEMO_KINDS,
                             HPACK_NOT_VOLATILE,
                             HPACK_NOT_VOLATILE,
                             HPACK_NOT_VOLATILE,
                             HPACK_NOT_VOLATILE};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_eq(hpack_volatile_kind((const uint8_t *)names[i], (uint32_t)strlen(names[i])),
                     want[i], "%s", names[i]);
}

/* The same response head again and again, then with one value changed,
 * in each Huffman mode: every block equals a fresh encoder's block for the
 * volatile fields (the only ones here), so the peer cannot tell. */
Test(hpack_memo, repeat_is_byte_identical)
{
    static const hpack_huff_mode modes[] = {HPACK_HUFF_AUTO, HPACK_HUFF_NEVER, HPACK_HUFF_ALWAYS};
    for (size_t m = 0; m < 3; m++) {
        hpack_encoder e;
        hpack_encoder_init(&e, 4096, NULL);
        e.skip_volatile = true;
        e.huff = modes[m];
        hpack_field f[] = {
            fld("content-length", "13", 0),
            fld("etag", "\"d-187e5a9c3b1f4e00\"", 0),
            fld("last-modified", "Sun, 06 Dec 2026 23:10:00 GMT", 0),
            fld("age", "7", 0),
        };
        uint8_t want[1024], got[1024];
        for (int round = 0; round < 4; round++) {
            if (round == 2)
                f[1] = fld("etag", "\"d-187e5a9c3b1f4e01\"", 0); /* the last byte differs */
            if (round == 3)
                f[0] = fld("content-length", "14", 0);
            size_t wl = fresh(f, 4, modes[m], want);
            size_t gl = block(&e, f, 4, got);
            cr_assert_eq(gl, wl, "mode %zu round %d", m, round);
            cr_assert_eq(memcmp(got, want, wl), 0, "mode %zu round %d", m, round);
            cr_assert_eq(e.table.count, 0); /* nothing volatile was inserted */
        }
        cr_assert_not_null(e.memo);
        hpack_encoder_free(&e);
    }
}

/* The mode changes between two blocks: the remembered literal is not used. */
Test(hpack_memo, mode_change_takes_the_long_way)
{
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    e.skip_volatile = true;
    hpack_field f[] = {fld("last-modified", "Sun, 06 Dec 2026 23:10:00 GMT", 0)};
    uint8_t a[1024], b[1024], want[1024];
    size_t la = block(&e, f, 1, a);
    e.huff = HPACK_HUFF_NEVER;
    size_t lb = block(&e, f, 1, b);
    size_t lw = fresh(f, 1, HPACK_HUFF_NEVER, want);
    cr_assert_neq(la, lb);
    cr_assert_eq(lb, lw);
    cr_assert_eq(memcmp(b, want, lw), 0);
    hpack_encoder_free(&e);
}

/* A never-indexed field is not remembered (its value is a secret: no
 * state kept about it), nor a value longer than the slot; nor anything when
 * the encoder does not skip volatile fields (a client's). */
Test(hpack_memo, not_remembered)
{
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    e.skip_volatile = true;
    hpack_field never[] = {fld("etag", "\"secret\"", HPACK_F_NEVER_INDEX)};
    uint8_t out[1024];
    block(&e, never, 1, out);
    cr_assert_null(e.memo);
    char longv[HPACK_MEMO_VALUE + 2];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    hpack_field lng[] = {fld("etag", longv, 0)};
    block(&e, lng, 1, out);
    cr_assert_null(e.memo);
    hpack_encoder_free(&e);

    hpack_encoder c;
    hpack_encoder_init(&c, 4096, NULL);
    hpack_field f[] = {fld("etag", "\"x\"", 0)};
    block(&c, f, 1, out);
    block(&c, f, 1, out);
    cr_assert_null(c.memo);
    cr_assert_eq(c.table.count, 1); /* indexed instead */
    hpack_encoder_free(&c);
}
