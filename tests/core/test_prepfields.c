/* test_prepfields.c - core/prepfields.c: spindle_fields_new() validates,
 * bounds and encodes once; the encoding decodes back to the fields under
 * several decoder (dynamic table) states; prepfields_append() hands the
 * HTTP/2 bytes or the HTTP/1.1 fields. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hpack.h"
#include "prepfields.h"
#include "resphdr.h"
#include "spindle.h"

static const spindle_header file_head[] = {
    {"content-type", "text/plain; charset=utf-8", 0, 0},
    {"etag", "\"d-18f3a2b4c5d6e7f8\"", 0, 0},
    {"last-modified", "Mon, 07 Dec 2026 00:00:00 GMT", 0, 0},
    {"accept-ranges", "bytes", 0, 0},
    {"content-length", "13", 0, 0},
    {"x-empty", "", 0, 0},
};
#define NFILE (sizeof file_head / sizeof file_head[0])

typedef struct dec {
    hpack_decoder d;
    hpack_sink s;
    hpack_field fields[64];
    uint8_t buf[1 << 17];
} dec;

static dec *dec_new(uint32_t table)
{
    dec *x = calloc(1, sizeof *x);
    cr_assert_not_null(x);
    hpack_decoder_init(&x->d, table, NULL);
    x->s = (hpack_sink){.fields = x->fields,
                        .fields_cap = 64,
                        .buf = x->buf,
                        .buf_cap = sizeof x->buf,
                        .soft_list_size = sizeof x->buf,
                        .hard_list_size = 4 * sizeof x->buf,
                        .soft_fields = 64,
                        .hard_fields = 100};
    return x;
}

static void dec_free(dec *x)
{
    hpack_decoder_free(&x->d);
    free(x);
}

/* Decode pf's bytes with x and compare with h[0..n). */
static void expect_decodes(dec *x, const spindle_fields *pf, const spindle_header *h, size_t n)
{
    uint32_t before = x->d.table.count;
    cr_assert_eq(hpack_decode_block(&x->d, pf->hp, pf->hp_len, &x->s), H2_OK);
    cr_assert_eq(x->s.count, n);
    for (size_t i = 0; i < n; i++) {
        const hpack_field *g = &x->s.fields[i];
        cr_assert_eq(g->name_len, strlen(h[i].name), "field %zu", i);
        cr_assert_eq(g->value_len, strlen(h[i].value), "field %zu", i);
        cr_assert_arr_eq(g->name, h[i].name, g->name_len);
        cr_assert_arr_eq(g->value, h[i].value, g->value_len);
    }
    cr_assert_eq(x->d.table.count, before, "a prepared block inserts nothing");
}

Test(prepfields, prepares_and_decodes_under_several_table_states)
{
    spindle_fields *pf = NULL;
    cr_assert_eq(spindle_fields_new(file_head, NFILE, &pf), SPINDLE_OK);
    cr_assert_not_null(pf);
    cr_assert_eq(pf->n, NFILE);
    cr_assert_eq(pf->present, RESPHDR_HAS_CLEN);
    cr_assert_gt(pf->hp_len, 0);
    /* A fresh decoder. */
    dec *x = dec_new(4096);
    expect_decodes(x, pf, file_head, NFILE);
    /* One whose table holds entries (inserted by an encoder's block that
     * uses the same names): indices into it must not matter. */
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    hpack_field ins[3] = {
        {(const uint8_t *)"etag", (const uint8_t *)"\"other\"", 4, 7, 0, 0},
        {(const uint8_t *)"x-empty", (const uint8_t *)"not empty", 7, 9, 0, 0},
        {(const uint8_t *)"content-type", (const uint8_t *)"image/png", 12, 9, 0, 0},
    };
    uint8_t out[512];
    size_t len;
    cr_assert_eq(hpack_encode_block(&e, ins, 3, out, sizeof out, &len), H2_OK);
    cr_assert_eq(hpack_decode_block(&x->d, out, len, &x->s), H2_OK);
    cr_assert_eq(x->d.table.count, 3);
    expect_decodes(x, pf, file_head, NFILE);
    hpack_encoder_free(&e);
    dec_free(x);
    /* One with no dynamic table at all. */
    x = dec_new(0);
    expect_decodes(x, pf, file_head, NFILE);
    dec_free(x);
    spindle_fields_free(pf);
    spindle_fields_free(NULL);
}

Test(prepfields, copies_the_callers_strings)
{
    char value[] = "text/css";
    spindle_header h[] = {
        {"content-type", value, 12, 8}, {"date", "x", 4, 1}, {"server", "y", 6, 1}};
    spindle_fields *pf;
    cr_assert_eq(spindle_fields_new(h, 3, &pf), SPINDLE_OK);
    memcpy(value, "XXXXXXXX", 8);
    cr_assert_eq(pf->f[0].value_len, 8);
    cr_assert_arr_eq(pf->f[0].value, "text/css", 8);
    cr_assert_eq(pf->present, RESPHDR_HAS_DATE | RESPHDR_HAS_SERVER);
    spindle_fields_free(pf);
}

Test(prepfields, refuses_invalid_fields)
{
    static const spindle_header bad[][2] = {
        {{":status", "200", 0, 0}, {"a", "b", 0, 0}},                   /* pseudo-header */
        {{"Content-Type", "text/plain", 0, 0}, {"a", "b", 0, 0}},       /* upper case */
        {{"connection", "close", 0, 0}, {"a", "b", 0, 0}},              /* connection-specific */
        {{"x-a", "line\r\nbreak", 0, 0}, {"a", "b", 0, 0}},             /* control characters */
        {{"bad name", "v", 0, 0}, {"a", "b", 0, 0}},                    /* space in a name */
        {{"content-length", "12a", 0, 0}, {"a", "b", 0, 0}},            /* not digits */
        {{"content-length", "", 0, 0}, {"a", "b", 0, 0}},               /* empty */
        {{"content-length", "1", 0, 0}, {"content-length", "1", 0, 0}}, /* twice */
        {{"content-length", "1234567890123456789", 0, 0}, {"a", "b", 0, 0}}, /* 19 digits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spindle_fields *pf = (spindle_fields *)(uintptr_t)1;
        cr_assert_eq(spindle_fields_new(bad[i], 2, &pf), SPINDLE_EINVAL, "case %zu", i);
        cr_assert_null(pf, "case %zu", i);
    }
    spindle_fields *pf;
    cr_assert_eq(spindle_fields_new(file_head, 0, &pf), SPINDLE_EINVAL);
    cr_assert_eq(spindle_fields_new(NULL, 1, &pf), SPINDLE_EINVAL);
    cr_assert_eq(spindle_fields_new(file_head, 1, NULL), SPINDLE_EINVAL);
    spindle_header noname = {NULL, "v", 0, 0};
    cr_assert_eq(spindle_fields_new(&noname, 1, &pf), SPINDLE_EINVAL);
    spindle_header ok = {"content-length", "123456789012345678", 0, 0}; /* 18 digits */
    cr_assert_eq(spindle_fields_new(&ok, 1, &pf), SPINDLE_OK);
    spindle_fields_free(pf);
}

Test(prepfields, bounded_by_the_default_header_list_size)
{
    /* RFC 9113 counts name + value + 32 per field; 64 KiB is the default. */
    const uint32_t max = 65536;
    char *big = malloc(max);
    cr_assert_not_null(big);
    memset(big, 'v', max);
    spindle_header h[2] = {{"x-a", big, 3, 0}, {"x-b", big, 3, 100}};
    h[0].value_len = max - 2 * 32 - 3 - 3 - 100; /* exactly max in all */
    spindle_fields *pf;
    cr_assert_eq(spindle_fields_new(h, 2, &pf), SPINDLE_OK);
    dec *x = dec_new(4096);
    cr_assert_eq(hpack_decode_block(&x->d, pf->hp, pf->hp_len, &x->s), H2_OK);
    cr_assert_eq(x->s.count, 2);
    cr_assert_eq(x->s.fields[0].value_len, h[0].value_len);
    dec_free(x);
    spindle_fields_free(pf);
    h[0].value_len++; /* one byte over */
    cr_assert_eq(spindle_fields_new(h, 2, &pf), SPINDLE_EINVAL);
    free(big);
}

Test(prepfields, append_gives_bytes_for_h2_and_fields_for_h1)
{
    spindle_fields *pf;
    cr_assert_eq(spindle_fields_new(file_head, NFILE, &pf), SPINDLE_OK);
    hpack_field f[NFILE];
    cr_assert_eq(prepfields_count(pf, true), 1);
    cr_assert_eq(prepfields_append(pf, true, f), 1);
    cr_assert_eq(f[0].flags, HPACK_F_ENCODED);
    cr_assert_eq(f[0].value, pf->hp);
    cr_assert_eq(f[0].value_len, pf->hp_len);
    cr_assert_eq(prepfields_count(pf, false), NFILE);
    cr_assert_eq(prepfields_append(pf, false, f), NFILE);
    for (size_t i = 0; i < NFILE; i++) {
        cr_assert_eq(f[i].flags, 0);
        cr_assert_eq(f[i].name_len, strlen(file_head[i].name));
        cr_assert_arr_eq(f[i].name, file_head[i].name, f[i].name_len);
        cr_assert_eq(f[i].value_len, strlen(file_head[i].value));
        cr_assert_eq(f[i].value[f[i].value_len], '\0'); /* NUL-terminated copies */
    }
    cr_assert_eq(prepfields_count(NULL, true), 0);
    spindle_fields_free(pf);
}
