/* test_hpack_memo.c - the encoder's per-position memo (hpack_encoder.memo):
 * a repeated response head costs one compare per field, and a hint is only
 * ever a place to look: changed values, evictions, insertions earlier in the
 * same block and never-indexed fields all come out as a fresh lookup would
 * have them.  Every block is checked by decoding it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpack_internal.h"

typedef struct pair {
    hpack_encoder e;
    hpack_decoder d;
    hpack_sink s;
    hpack_field fields[32];
    uint8_t buf[8192];
    uint8_t out[4096];
    size_t len;
} pair;

static pair *pair_new(uint32_t table)
{
    pair *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    hpack_encoder_init(&p->e, table, NULL);
    p->e.skip_volatile = true;
    hpack_decoder_init(&p->d, table, NULL);
    p->s.fields = p->fields;
    p->s.fields_cap = 32;
    p->s.buf = p->buf;
    p->s.buf_cap = sizeof p->buf;
    p->s.soft_list_size = sizeof p->buf;
    p->s.hard_list_size = 4 * sizeof p->buf;
    p->s.soft_fields = 32;
    p->s.hard_fields = 100;
    return p;
}

static void pair_free(pair *p)
{
    hpack_encoder_free(&p->e);
    hpack_decoder_free(&p->d);
    free(p);
}

static hpack_field fld(const char *name, const char *value, uint8_t flags)
{
    hpack_field f = {(const uint8_t *)name,
                     (const uint8_t *)value,
                     (uint32_t)strlen(name),
                     (uint32_t)strlen(value),
                     flags,
                     0};
    return f;
}

/* Encode f[0..n), decode it, and check the decoder got f back. */
static void round_trip(pair *p, const hpack_field *f, size_t n)
{
    cr_assert_eq(hpack_encode_block(&p->e, f, n, p->out, sizeof p->out, &p->len), H2_OK);
    cr_assert_eq(hpack_decode_block(&p->d, p->out, p->len, &p->s), H2_OK);
    cr_assert_eq(p->s.count, n);
    for (size_t i = 0; i < n; i++) {
        const hpack_field *g = &p->s.fields[i];
        cr_assert_eq(g->name_len, f[i].name_len, "field %zu", i);
        cr_assert_eq(g->value_len, f[i].value_len, "field %zu", i);
        cr_assert_arr_eq(g->name, f[i].name, f[i].name_len, "field %zu", i);
        cr_assert_arr_eq(g->value, f[i].value, f[i].value_len, "field %zu", i);
    }
    cr_assert_eq(p->e.table.count, p->d.table.count);
}

Test(hpack_memo, repeated_head_is_all_indexed)
{
    pair *p = pair_new(4096);
    char date[] = "Mon, 07 Dec 2026 00:00:00 GMT";
    hpack_field f[] = {fld(":status", "200", 0), fld("content-type", "text/plain", 0),
                       fld("date", date, 0), fld("server", "spindle", 0),
                       fld("content-length", "13", 0)};
    round_trip(p, f, 5);
    size_t first = p->len;
    round_trip(p, f, 5);
    /* Four one-byte indices, then content-length: literal, static name 28. */
    cr_assert_lt(p->len, first);
    cr_assert_eq(p->out[0], 0x88); /* :status 200, static 8 */
    for (int i = 1; i < 4; i++)
        cr_assert_eq(p->out[i] & 0x80, 0x80, "field %d indexed", i);
    cr_assert_eq(p->out[4], 0x0f);
    cr_assert_eq(p->out[5], 28 - 15);

    /* The date buffer is rewritten in place (the same pointer, new bytes):
     * the hint no longer matches, so it is a new literal, indexed. */
    memcpy(date + 23, "01", 2);
    round_trip(p, f, 5);
    cr_assert_eq(p->out[2], 0x40 | 33, "date: literal with incremental indexing, name 33");
    round_trip(p, f, 5);
    cr_assert_eq(p->out[2], 0x80 | 62, "the new date is the newest entry");
    pair_free(p);
}

/* An insertion earlier in the same block renumbers the entries and may
 * evict the one a later field's hint names. */
Test(hpack_memo, earlier_insertion_and_eviction)
{
    pair *p = pair_new(128); /* room for about two small entries */
    hpack_field a[] = {fld("x-a", "1111111111", 0), fld("x-b", "2222222222", 0)};
    round_trip(p, a, 2);
    round_trip(p, a, 2);
    cr_assert_eq(p->len, 2, "both indexed");
    char v[40];
    for (int k = 0; k < 20; k++) {
        snprintf(v, sizeof v, "value-%d-0123456789abcdef", k);
        hpack_field b[] = {fld("x-new", v, 0), a[0], a[1]};
        round_trip(p, b + (k % 2), (size_t)(3 - k % 2));
    }
    pair_free(p);
}

/* A field marked never-indexed is not compared with the table, even where
 * the previous block's field at its position was found there. */
Test(hpack_memo, never_indexed_is_not_looked_up)
{
    pair *p = pair_new(4096);
    hpack_field f[] = {fld("authorization", "secret", 0)};
    round_trip(p, f, 1);
    round_trip(p, f, 1);
    cr_assert_eq(p->out[0] & 0x80, 0x80);
    f[0].flags = HPACK_F_NEVER_INDEX;
    round_trip(p, f, 1);
    cr_assert_eq(p->out[0] & 0xf0, 0x10, "never-indexed literal");
    cr_assert_eq(p->s.fields[0].flags & HPACK_F_NEVER_INDEX, HPACK_F_NEVER_INDEX);
    f[0].flags = 0;
    round_trip(p, f, 1);
    cr_assert_eq(p->out[0] & 0x80, 0x80, "indexed again");
    pair_free(p);
}

/* A table emptied by a size update of 0 and regrown: no hint survives. */
Test(hpack_memo, table_size_zero_and_back)
{
    pair *p = pair_new(4096);
    hpack_field f[] = {fld("x-a", "1", 0), fld("content-type", "text/html", 0)};
    round_trip(p, f, 2);
    round_trip(p, f, 2);
    hpack_decoder_set_settings_max(&p->d, 0);
    hpack_encoder_set_peer_table_size(&p->e, 0);
    round_trip(p, f, 2);
    cr_assert_eq(p->e.table.count, 0);
    hpack_decoder_set_settings_max(&p->d, 4096);
    hpack_encoder_set_peer_table_size(&p->e, 4096);
    round_trip(p, f, 2);
    round_trip(p, f, 2);
    pair_free(p);
}

/* One head encoded as two blocks (pseudo-header fields, then the rest), as
 * the HTTP/2 engine does: memo_base keeps their positions apart. */
Test(hpack_memo, head_in_two_blocks)
{
    pair *p = pair_new(4096);
    hpack_field a[] = {fld(":status", "200", 0)};
    hpack_field b[] = {fld("content-type", "text/plain", 0), fld("server", "spindle", 0)};
    for (int k = 0; k < 3; k++) {
        size_t la = 0, lb = 0;
        cr_assert_eq(hpack_encode_block(&p->e, a, 1, p->out, sizeof p->out, &la), H2_OK);
        p->e.memo_base = 1;
        cr_assert_eq(hpack_encode_block(&p->e, b, 2, p->out + la, sizeof p->out - la, &lb), H2_OK);
        cr_assert_eq(p->e.memo_base, 0, "reset by the block");
        cr_assert_eq(hpack_decode_block(&p->d, p->out, la + lb, &p->s), H2_OK);
        cr_assert_eq(p->s.count, 3);
        if (k > 0) {
            cr_assert_eq(la + lb, 3, "three one-byte indices");
            cr_assert_eq(p->e.memo[0], HPACK_MEMO_STATIC | 8);
        }
    }
    pair_free(p);
}
