/* test_hpack_encode.c - proto/hpack_encode.c: stateless encodings
 * (hpack_encode_stateless) and their copy into a block (HPACK_F_ENCODED).
 * A prepared block must decode to its fields under any state of the
 * connection's tables and leave both tables as they were; every block here
 * is checked by decoding it with a decoder that follows the encoder. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpack_test_util.h"

/* A static-file head: static names (content-type, etag, ...), a name not
 * in the static table, an empty value and a never-indexed field. */
static const nv prepared[] = {
    {"content-type", "text/html; charset=utf-8"},
    {"content-length", "4096"},
    {"last-modified", "Mon, 07 Dec 2026 00:00:00 GMT"},
    {"etag", "\"1000-18f3a2b4c5d6e7f8\""},
    {"accept-ranges", "bytes"},
    {"x-prepared", ""},
    {"x-secret", "do-not-index"},
};
#define NPREP (sizeof prepared / sizeof prepared[0])

typedef struct enc_pair {
    hpack_encoder e;
    hpack_decoder d;
    test_sink *s;
    uint8_t out[8192];
    size_t len;
} enc_pair;

static enc_pair *pair_new(uint32_t table)
{
    enc_pair *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    hpack_encoder_init(&p->e, table, NULL);
    p->e.skip_volatile = true;
    hpack_decoder_init(&p->d, HPACK_DEFAULT_TABLE_SIZE, NULL);
    p->s = sink_new();
    return p;
}

static void pair_free(enc_pair *p)
{
    hpack_encoder_free(&p->e);
    hpack_decoder_free(&p->d);
    free(p->s);
    free(p);
}

static size_t prepare(uint8_t *out, size_t cap)
{
    hpack_field f[NPREP];
    for (size_t i = 0; i < NPREP; i++)
        f[i] = fld(prepared[i].name, prepared[i].value, i == NPREP - 1 ? HPACK_F_NEVER_INDEX : 0);
    cr_assert_leq(hpack_encode_bound(f, NPREP), cap);
    size_t len = hpack_encode_stateless(f, NPREP, out);
    cr_assert_leq(len, hpack_encode_bound(f, NPREP));
    return len;
}

/* Encode before, then the prepared bytes, then after as one block; decode
 * it and check every field, and that the tables agree. */
static void block_with(enc_pair *p, const hpack_field *before, size_t nb, const uint8_t *prep,
                       size_t plen, const hpack_field *after, size_t na)
{
    hpack_field f[16];
    size_t n = 0;
    for (size_t i = 0; i < nb; i++)
        f[n++] = before[i];
    f[n++] = (hpack_field){NULL, prep, 0, (uint32_t)plen, HPACK_F_ENCODED, 0};
    for (size_t i = 0; i < na; i++)
        f[n++] = after[i];
    uint32_t count = p->e.table.count, seq = p->e.table.seq;
    cr_assert_eq(hpack_encode_block(&p->e, f, n, p->out, sizeof p->out, &p->len), H2_OK);
    if (na == 0 && nb == 0) {
        cr_assert_eq(p->e.table.count, count, "a prepared block inserts nothing");
        cr_assert_eq(p->e.table.seq, seq);
    }
    cr_assert_eq(hpack_decode_block(&p->d, p->out, p->len, &p->s->s), H2_OK);
    nv want[16];
    size_t k = 0;
    for (size_t i = 0; i < nb; i++)
        want[k++] = (nv){(const char *)before[i].name, (const char *)before[i].value};
    for (size_t i = 0; i < NPREP; i++)
        want[k++] = prepared[i];
    for (size_t i = 0; i < na; i++)
        want[k++] = (nv){(const char *)after[i].name, (const char *)after[i].value};
    expect_fields(&p->s->s, want, k);
    cr_assert(p->s->s.fields[nb + NPREP - 1].flags & HPACK_F_NEVER_INDEX,
              "the never-indexed field stays never-indexed");
    cr_assert_eq(p->e.table.count, p->d.table.count);
    cr_assert_eq(p->e.table.size, p->d.table.size);
}

Test(hpack_encode, stateless_uses_static_names_and_no_table)
{
    uint8_t prep[1024];
    size_t len = prepare(prep, sizeof prep);
    /* Byte for byte the same every time: a pure function of the fields. */
    uint8_t again[1024];
    cr_assert_eq(prepare(again, sizeof again), len);
    cr_assert_arr_eq(prep, again, len);
    /* content-type (static 31) as a literal without indexing: 0000 1111,
     * then 31 - 15 = 16. */
    cr_assert_eq(prep[0], 0x0f);
    cr_assert_eq(prep[1], 16);
    /* Decoded alone by a decoder whose table holds nothing, and by one
     * whose maximum is 0: nothing is inserted. */
    hpack_decoder d;
    test_sink *s = sink_new();
    for (int variant = 0; variant < 2; variant++) {
        hpack_decoder_init(&d, variant ? 0 : HPACK_DEFAULT_TABLE_SIZE, NULL);
        cr_assert_eq(hpack_decode_block(&d, prep, len, &s->s), H2_OK);
        expect_fields(&s->s, prepared, NPREP);
        cr_assert_eq(d.table.count, 0);
        hpack_decoder_free(&d);
    }
    free(s);
}

Test(hpack_encode, encoded_field_is_valid_under_any_table_state)
{
    uint8_t prep[1024];
    size_t len = prepare(prep, sizeof prep);
    enc_pair *p = pair_new(4096);
    hpack_field status = fld(":status", "200", 0);
    hpack_field server = fld("server", "spindle", 0);
    hpack_field custom = fld("x-custom", "value-1", 0);
    /* 1. A fresh connection: the prepared block alone, then around others. */
    block_with(p, NULL, 0, prep, len, NULL, 0);
    block_with(p, &status, 1, prep, len, &server, 1);
    /* 2. Entries in the table (the prepared block refers to none of them,
     *    whatever their indices), and a repeat that the memo answers. */
    hpack_field fill[8];
    char names[8][16], vals[8][32];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "x-fill-%d", i);
        snprintf(vals[i], sizeof vals[i], "value %d of the table", i);
        fill[i] = fld(names[i], vals[i], 0);
    }
    block_with(p, fill, 8, prep, len, &custom, 1);
    block_with(p, fill, 8, prep, len, &custom, 1);
    cr_assert_geq(p->e.table.count, 9);
    /* 3. A table full enough to evict while the block is encoded. */
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 8; i++) {
            snprintf(vals[i], sizeof vals[i], "round %d value %d ....", round, i);
            fill[i] = fld(names[i], vals[i], 0);
        }
        block_with(p, fill, 8, prep, len, &custom, 1);
    }
    /* 4. A size update due: it must come before the copied bytes, which
     *    are the block's first field here. */
    hpack_encoder_set_peer_table_size(&p->e, 256);
    block_with(p, NULL, 0, prep, len, &custom, 1);
    cr_assert_eq(p->d.table.max_size, 256);
    /* 5. A zero-size table: everything is a literal. */
    hpack_encoder_set_peer_table_size(&p->e, 0);
    block_with(p, &status, 1, prep, len, fill, 3);
    cr_assert_eq(p->d.table.count, 0);
    /* 6. Back up: the block after a growth (two size updates) still works. */
    hpack_encoder_set_peer_table_size(&p->e, 4096);
    block_with(p, fill, 4, prep, len, &server, 1);
    pair_free(p);
}

Test(hpack_encode, encoded_field_bound_covers_the_copy)
{
    uint8_t prep[1024];
    size_t len = prepare(prep, sizeof prep);
    hpack_field f = {NULL, prep, 0, (uint32_t)len, HPACK_F_ENCODED, 0};
    cr_assert_geq(hpack_encode_bound(&f, 1), len);
    /* hpack_encode_block() with exactly the bound succeeds and copies. */
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    size_t cap = hpack_encode_bound(&f, 1), out_len = 0;
    uint8_t *out = malloc(cap);
    cr_assert_eq(hpack_encode_block(&e, &f, 1, out, cap, &out_len), H2_OK);
    cr_assert_eq(out_len, len);
    cr_assert_arr_eq(out, prep, len);
    free(out);
    hpack_encoder_free(&e);
}

Test(hpack_encode, stateless_bound_holds_for_random_fields)
{
    /* Random names and values (bytes Huffman makes longer included). */
    static uint8_t name[8][64], value[8][300];
    hpack_field f[8];
    uint8_t out[8192];
    hpack_decoder d;
    test_sink *s = sink_new();
    hpack_decoder_init(&d, HPACK_DEFAULT_TABLE_SIZE, NULL);
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + rnd() % 8;
        for (size_t i = 0; i < n; i++) {
            uint32_t nl = 1 + rnd() % 63, vl = rnd() % 300;
            for (uint32_t k = 0; k < nl; k++)
                name[i][k] = (uint8_t)('a' + rnd() % 26);
            for (uint32_t k = 0; k < vl; k++)
                value[i][k] = (uint8_t)(round % 2 ? rnd() % 256 : ' ' + rnd() % 95);
            f[i] = (hpack_field){name[i], value[i], nl, vl, 0, 0};
        }
        size_t len = hpack_encode_stateless(f, n, out);
        cr_assert_leq(len, hpack_encode_bound(f, n));
        cr_assert_eq(hpack_decode_block(&d, out, len, &s->s), H2_OK);
        cr_assert_eq(s->s.count, n);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(s->s.fields[i].value_len, f[i].value_len);
            cr_assert_arr_eq(s->s.fields[i].value, f[i].value, f[i].value_len);
        }
        cr_assert_eq(d.table.count, 0);
    }
    hpack_decoder_free(&d);
    free(s);
}

/* Encode :status, keyed date and server, then others as one block; decode
 * it and check every field and that the tables agree.  Returns the
 * block's length. */
static size_t keyed_block(enc_pair *p, const char *date, uint32_t date_key,
                          const hpack_field *after, size_t na)
{
    hpack_field f[16];
    size_t n = 0;
    f[n++] = fld(":status", "200", 0);
    f[n] = fld("date", date, HPACK_F_KEYED);
    f[n++].digest = date_key;
    f[n] = fld("server", "spindle", HPACK_F_KEYED);
    f[n++].digest = 1;
    for (size_t i = 0; i < na; i++)
        f[n++] = after[i];
    cr_assert_eq(hpack_encode_block(&p->e, f, n, p->out, sizeof p->out, &p->len), H2_OK);
    cr_assert_eq(hpack_decode_block(&p->d, p->out, p->len, &p->s->s), H2_OK);
    nv want[16];
    for (size_t i = 0; i < n; i++)
        want[i] = (nv){(const char *)f[i].name, (const char *)f[i].value};
    expect_fields(&p->s->s, want, n);
    cr_assert_eq(p->e.table.count, p->d.table.count);
    cr_assert_eq(p->e.table.size, p->d.table.size);
    return p->len;
}

Test(hpack_encode, keyed_fields_are_indices_while_live_and_literals_after)
{
    enc_pair *p = pair_new(4096);
    const char *d1 = "Mon, 07 Dec 2026 05:10:00 GMT", *d2 = "Mon, 07 Dec 2026 05:10:01 GMT";
    /* 1. First use: inserted (literals); then one byte each. */
    size_t first = keyed_block(p, d1, 100, NULL, 0);
    cr_assert_gt(first, 30);
    cr_assert_eq(keyed_block(p, d1, 100, NULL, 0), 3, ":status, date, server: an index each");
    /* 2. A new second: the new date goes in once, the server stays. */
    cr_assert_gt(keyed_block(p, d2, 102, NULL, 0), 3);
    cr_assert_eq(keyed_block(p, d2, 102, NULL, 0), 3);
    /* 3. Other insertions move the entries' indices: still right. */
    hpack_field fill[8];
    char names[8][16], vals[8][64];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "x-fill-%d", i);
        snprintf(vals[i], sizeof vals[i], "value %d of the table", i);
        fill[i] = fld(names[i], vals[i], 0);
    }
    keyed_block(p, d2, 102, fill, 8);
    keyed_block(p, d2, 102, NULL, 0);
    /* 4. Evicted by other entries (the table holds ~4 KiB): sent again as
     *    literals, never as a stale index; decoded right either way. */
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 8; i++) {
            snprintf(vals[i], sizeof vals[i], "round %d value %d, long enough to evict ....", round,
                     i);
            fill[i] = fld(names[i], vals[i], 0);
        }
        keyed_block(p, d2, 102, fill, 8);
    }
    /* 5. A smaller table (size update, evictions), then none at all. */
    hpack_encoder_set_peer_table_size(&p->e, 128);
    keyed_block(p, d2, 102, NULL, 0);
    cr_assert_eq(keyed_block(p, d2, 102, NULL, 0), 3);
    hpack_encoder_set_peer_table_size(&p->e, 0);
    cr_assert_gt(keyed_block(p, d1, 100, NULL, 0), 30);
    cr_assert_gt(keyed_block(p, d1, 100, NULL, 0), 30, "no table: literals every time");
    cr_assert_eq(p->d.table.count, 0);
    /* 6. A third key reuses the older slot; the server's stays live. */
    hpack_encoder_set_peer_table_size(&p->e, 4096);
    keyed_block(p, d1, 100, NULL, 0);
    keyed_block(p, d2, 104, NULL, 0);
    cr_assert_eq(keyed_block(p, d2, 104, NULL, 0), 3);
    pair_free(p);
}
