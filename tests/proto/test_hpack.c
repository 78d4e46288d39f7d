/* test_hpack.c - RFC 7541: integers, tables, decoder, encoder, limits and
 * allocation behaviour.  Huffman coding has its own file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpack_internal.h"

/* --- helpers ------------------------------------------------------------------ */

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        cr_assert_eq(sscanf(p, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

static uint64_t rng_state = 0x7541u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
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

/* A sink with the spindle defaults: 64 KiB soft, 4x hard, 100/1000 fields. */
typedef struct test_sink {
    hpack_sink s;
    hpack_field fields[100];
    uint8_t buf[65536];
} test_sink;

static test_sink *sink_new(void)
{
    test_sink *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    t->s.fields = t->fields;
    t->s.fields_cap = 100;
    t->s.buf = t->buf;
    t->s.buf_cap = sizeof t->buf;
    t->s.soft_list_size = 65536;
    t->s.hard_list_size = 4 * 65536;
    t->s.soft_fields = 100;
    t->s.hard_fields = 1000;
    return t;
}

static bool field_is(const hpack_field *f, const char *name, const char *value)
{
    return f->name_len == strlen(name) && f->value_len == strlen(value) &&
           memcmp(f->name, name, f->name_len) == 0 && memcmp(f->value, value, f->value_len) == 0;
}

typedef struct nv {
    const char *name, *value;
} nv;

static void expect_fields(const hpack_sink *s, const nv *want, size_t n)
{
    cr_assert_eq(s->count, n, "fields: got %u, want %zu", s->count, n);
    cr_assert_eq(s->total_fields, n);
    cr_assert_not(s->overflow);
    for (size_t i = 0; i < n; i++) {
        cr_assert(field_is(&s->fields[i], want[i].name, want[i].value), "field %zu: want %s: %s", i,
                  want[i].name, want[i].value);
        /* Strings live in buf, or in the static table for a field indexed
         * from it. */
        const hpack_field *f = &s->fields[i];
        bool in_buf = f->name >= s->buf && f->value + f->value_len <= s->buf + s->buf_used;
        bool in_static = false;
        for (uint32_t k = 0; k < HPACK_STATIC_COUNT; k++)
            in_static |=
                f->name == hpack_static_table[k].name && f->value == hpack_static_table[k].value;
        cr_assert(in_buf || in_static, "field %zu: strings neither in buf nor static", i);
    }
}

static void expect_table(const hpack_table *t, const nv *want, size_t n, uint32_t size)
{
    uint8_t buf[512];
    hpack_field f;
    cr_assert_eq(t->count, n, "table entries: got %u, want %zu", t->count, n);
    cr_assert_eq(t->size, size, "table size: got %u, want %u", t->size, size);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(hpack_table_get(t, (uint32_t)i + 1, buf, sizeof buf, &f), H2_OK);
        cr_assert(field_is(&f, want[i].name, want[i].value), "entry %zu: want %s: %s", i + 1,
                  want[i].name, want[i].value);
    }
    cr_assert_eq(hpack_table_get(t, (uint32_t)n + 1, buf, sizeof buf, &f), H2_E_INVAL);
}

/* size == sum of entry sizes, and within max. */
static void expect_table_consistent(const hpack_table *t)
{
    static uint8_t buf[1u << 17];
    uint64_t sum = 0;
    hpack_field f;
    for (uint32_t i = 1; i <= t->count; i++) {
        cr_assert_eq(hpack_table_get(t, i, buf, sizeof buf, &f), H2_OK);
        sum += f.name_len + f.value_len + HPACK_ENTRY_OVERHEAD;
    }
    cr_assert_eq(sum, t->size);
    cr_assert_leq(t->size, t->max_size);
}

static h2_rv decode_hex(hpack_decoder *d, const char *hex, hpack_sink *s)
{
    static uint8_t in[4096];
    size_t n = unhex(hex, in);
    return hpack_decode_block(d, in, n, s);
}

/* Counting allocator; attempts numbered from 0 fail from fail_from on. */
typedef struct counting {
    uint64_t attempts, allocs, frees;
    uint64_t fail_from;
} counting;

static void *c_malloc(size_t n, void *ud)
{
    counting *c = ud;
    if (c->attempts++ >= c->fail_from)
        return NULL;
    c->allocs++;
    return malloc(n);
}
static void *c_realloc(void *p, size_t n, void *ud)
{
    counting *c = ud;
    if (c->attempts++ >= c->fail_from)
        return NULL;
    c->allocs++;
    return realloc(p, n);
}
static void c_free(void *p, void *ud)
{
    counting *c = ud;
    c->frees++;
    free(p);
}

static h2_mem counting_mem(counting *c)
{
    h2_mem m = {c_malloc, c_realloc, c_free, c};
    return m;
}

/* --- integers (§5.1, C.1) --------------------------------------------------- */

static void int_roundtrip(uint8_t prefix, uint64_t v, size_t want_len)
{
    uint8_t buf[16];
    uint8_t *end = hpack_int_encode(buf, 0, prefix, v);
    cr_assert_eq((size_t)(end - buf), want_len, "prefix %u value %llu: %td bytes", prefix,
                 (unsigned long long)v, end - buf);
    const uint8_t *p = buf;
    uint32_t out = 0;
    cr_assert_eq(hpack_int_decode(&p, end, prefix, UINT32_MAX, &out), H2_OK);
    cr_assert_eq(out, v);
    cr_assert_eq(p, end);
    /* Every truncation is H2_E_AGAIN, and leaves the cursor alone. */
    for (uint8_t *cut = buf; cut < end; cut++) {
        p = buf;
        cr_assert_eq(hpack_int_decode(&p, cut, prefix, UINT32_MAX, &out), H2_E_AGAIN);
        cr_assert_eq(p, buf);
    }
}

Test(hpack_int, rfc_c1_examples)
{
    uint8_t buf[16];
    uint8_t *end = hpack_int_encode(buf, 0, 5, 10); /* C.1.1 */
    cr_assert_eq(end - buf, 1);
    cr_assert_eq(buf[0], 0x0a);
    end = hpack_int_encode(buf, 0, 5, 1337); /* C.1.2 */
    cr_assert_eq(end - buf, 3);
    cr_assert_eq(buf[0], 0x1f);
    cr_assert_eq(buf[1], 0x9a);
    cr_assert_eq(buf[2], 0x0a);
    end = hpack_int_encode(buf, 0, 8, 42); /* C.1.3 */
    cr_assert_eq(end - buf, 1);
    cr_assert_eq(buf[0], 42);
}

Test(hpack_int, pattern_bits_kept)
{
    uint8_t buf[16];
    hpack_int_encode(buf, 0xff, 5, 10);
    cr_assert_eq(buf[0], 0xea);
    hpack_int_encode(buf, 0x40, 6, 100);
    cr_assert_eq(buf[0], 0x7f);
    cr_assert_eq(buf[1], 100 - 63);
}

Test(hpack_int, prefix_boundaries)
{
    for (uint8_t n = 1; n <= 8; n++) {
        uint64_t m = (1u << n) - 1u; /* 2^N - 1 */
        if (m > 0)
            int_roundtrip(n, m - 1, 1);
        int_roundtrip(n, 0, 1);
        int_roundtrip(n, m, 2); /* first value needing a continuation */
        int_roundtrip(n, m + 1, 2);
        int_roundtrip(n, m + 127, 2); /* largest with one continuation byte */
        int_roundtrip(n, m + 128, 3);
        int_roundtrip(n, 127, 127 < m ? 1 : (127 - m < 128 ? 2 : 3));
        int_roundtrip(n, 128, 128 < m ? 1 : (128 - m < 128 ? 2 : 3));
        int_roundtrip(n, UINT32_MAX, 6);
    }
    int_roundtrip(7, 1u << 14, 3);
}

Test(hpack_int, overflow_and_max)
{
    uint8_t buf[16];
    const uint8_t *p;
    uint32_t out;
    for (uint8_t n = 1; n <= 8; n++) {
        /* 2^32 does not fit. */
        uint8_t *end = hpack_int_encode(buf, 0, n, (uint64_t)UINT32_MAX + 1);
        p = buf;
        cr_assert_eq(hpack_int_decode(&p, end, n, UINT32_MAX, &out), H2_E_COMPRESSION);
        /* max is inclusive. */
        end = hpack_int_encode(buf, 0, n, 1000);
        p = buf;
        cr_assert_eq(hpack_int_decode(&p, end, n, 1000, &out), H2_OK);
        p = buf;
        cr_assert_eq(hpack_int_decode(&p, end, n, 999, &out), H2_E_COMPRESSION);
        /* Rejected as soon as the running value passes max, truncated or not. */
        end = hpack_int_encode(buf, 0, n, 1u << 30);
        p = buf;
        cr_assert_eq(hpack_int_decode(&p, end - 1, n, 4096, &out), H2_E_COMPRESSION);
    }
    /* One byte short on the prefix alone. */
    const uint8_t small[] = {0x0a};
    p = small;
    cr_assert_eq(hpack_int_decode(&p, small + 1, 5, 9, &out), H2_E_COMPRESSION);
    /* Nothing at all. */
    p = small;
    cr_assert_eq(hpack_int_decode(&p, small, 5, 9, &out), H2_E_AGAIN);
}

Test(hpack_int, continuation_bytes_bounded)
{
    const uint8_t *p;
    uint32_t out;
    /* Five continuation bytes of zeros: overlong but within 35 bits: accepted. */
    const uint8_t five[] = {0x1f, 0x80, 0x80, 0x80, 0x80, 0x00};
    p = five;
    cr_assert_eq(hpack_int_decode(&p, five + sizeof five, 5, UINT32_MAX, &out), H2_OK);
    cr_assert_eq(out, 31);
    /* A sixth can only be overlong or too large. */
    const uint8_t six[] = {0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    p = six;
    cr_assert_eq(hpack_int_decode(&p, six + sizeof six, 5, UINT32_MAX, &out), H2_E_COMPRESSION);
    /* Endless continuation: rejected after the fifth byte, not at the end. */
    uint8_t endless[64];
    memset(endless, 0x80, sizeof endless);
    endless[0] = 0xff;
    p = endless;
    cr_assert_eq(hpack_int_decode(&p, endless + sizeof endless, 8, UINT32_MAX, &out),
                 H2_E_COMPRESSION);
    /* 2^32 - 1 with an 8-bit prefix: 0xff then 5 bytes. */
    const uint8_t maxv[] = {0xff, 0x80, 0xfe, 0xff, 0xff, 0x0f};
    p = maxv;
    cr_assert_eq(hpack_int_decode(&p, maxv + sizeof maxv, 8, UINT32_MAX, &out), H2_OK);
    cr_assert_eq(out, UINT32_MAX);
}

/* --- static table (Appendix A) ------------------------------------------------ */

Test(hpack_static, lookup_by_index_and_name)
{
    cr_assert_null(hpack_static_get(0));
    cr_assert_null(hpack_static_get(62));
    cr_assert(field_is(hpack_static_get(1), ":authority", ""));
    cr_assert(field_is(hpack_static_get(2), ":method", "GET"));
    cr_assert(field_is(hpack_static_get(16), "accept-encoding", "gzip, deflate"));
    cr_assert(field_is(hpack_static_get(61), "www-authenticate", ""));
    for (uint32_t i = 1; i <= HPACK_STATIC_COUNT; i++) {
        const hpack_field *f = hpack_static_get(i);
        cr_assert_not_null(f->value);
        /* The first entry of this name, whose run covers entry i. */
        uint32_t first = hpack_static_find_name(f->name, f->name_len);
        cr_assert(first >= 1 && first <= i, "entry %u", i);
        cr_assert_gt(first + hpack_static_run[first - 1], i);
        const hpack_field *ff = hpack_static_get(first);
        cr_assert_eq(ff->name_len, f->name_len);
        cr_assert_arr_eq(ff->name, f->name, f->name_len);
        if (first > 1)
            cr_assert_neq(hpack_static_find_name(hpack_static_get(first - 1)->name,
                                                 hpack_static_get(first - 1)->name_len),
                          first);
    }
    const char *absent[] = {
        "", "a", "x-foo", "content-typ", "content-types", ":statu", "Content-Type", "dates"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        cr_assert_eq(
            hpack_static_find_name((const uint8_t *)absent[i], (uint32_t)strlen(absent[i])), 0,
            "%s", absent[i]);
}

/* --- decoder: RFC 7541 Appendix C ----------------------------------------------- */

typedef struct example {
    const char *hex;
    nv fields[8];
    size_t nfields;
    nv table[8];
    size_t ntable;
    uint32_t size;
} example;

#define C3_FIELDS_1                                                                                \
    {                                                                                              \
        {":method", "GET"}, {":scheme", "http"}, {":path", "/"},                                   \
        {                                                                                          \
            ":authority", "www.example.com"                                                        \
        }                                                                                          \
    }
#define C3_FIELDS_2                                                                                \
    {                                                                                              \
        {":method", "GET"}, {":scheme", "http"}, {":path", "/"},                                   \
            {":authority", "www.example.com"},                                                     \
        {                                                                                          \
            "cache-control", "no-cache"                                                            \
        }                                                                                          \
    }
#define C3_FIELDS_3                                                                                \
    {                                                                                              \
        {":method", "GET"}, {":scheme", "https"}, {":path", "/index.html"},                        \
            {":authority", "www.example.com"},                                                     \
        {                                                                                          \
            "custom-key", "custom-value"                                                           \
        }                                                                                          \
    }
#define C3_TABLE_1                                                                                 \
    {                                                                                              \
        {                                                                                          \
            ":authority", "www.example.com"                                                        \
        }                                                                                          \
    }
#define C3_TABLE_2                                                                                 \
    {                                                                                              \
        {"cache-control", "no-cache"},                                                             \
        {                                                                                          \
            ":authority", "www.example.com"                                                        \
        }                                                                                          \
    }
#define C3_TABLE_3                                                                                 \
    {                                                                                              \
        {"custom-key", "custom-value"}, {"cache-control", "no-cache"},                             \
        {                                                                                          \
            ":authority", "www.example.com"                                                        \
        }                                                                                          \
    }

static const example c3[] = {
    {"828684410f7777772e6578616d706c652e636f6d", C3_FIELDS_1, 4, C3_TABLE_1, 1, 57},
    {"828684be58086e6f2d6361636865", C3_FIELDS_2, 5, C3_TABLE_2, 2, 110},
    {"828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565", C3_FIELDS_3, 5, C3_TABLE_3, 3,
     164},
};
static const example c4[] = {
    {"828684418cf1e3c2e5f23a6ba0ab90f4ff", C3_FIELDS_1, 4, C3_TABLE_1, 1, 57},
    {"828684be5886a8eb10649cbf", C3_FIELDS_2, 5, C3_TABLE_2, 2, 110},
    {"828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf", C3_FIELDS_3, 5, C3_TABLE_3, 3, 164},
};

#define C5_FIELDS_1                                                                                \
    {                                                                                              \
        {":status", "302"}, {"cache-control", "private"},                                          \
            {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},                                             \
        {                                                                                          \
            "location", "https://www.example.com"                                                  \
        }                                                                                          \
    }
#define C5_FIELDS_2                                                                                \
    {                                                                                              \
        {":status", "307"}, {"cache-control", "private"},                                          \
            {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},                                             \
        {                                                                                          \
            "location", "https://www.example.com"                                                  \
        }                                                                                          \
    }
#define C5_FIELDS_3                                                                                \
    {                                                                                              \
        {":status", "200"}, {"cache-control", "private"},                                          \
            {"date", "Mon, 21 Oct 2013 20:13:22 GMT"}, {"location", "https://www.example.com"},    \
            {"content-encoding", "gzip"},                                                          \
        {                                                                                          \
            "set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"               \
        }                                                                                          \
    }
#define C5_TABLE_1                                                                                 \
    {                                                                                              \
        {"location", "https://www.example.com"}, {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},        \
            {"cache-control", "private"},                                                          \
        {                                                                                          \
            ":status", "302"                                                                       \
        }                                                                                          \
    }
#define C5_TABLE_2                                                                                 \
    {                                                                                              \
        {":status", "307"}, {"location", "https://www.example.com"},                               \
            {"date", "Mon, 21 Oct 2013 20:13:21 GMT"},                                             \
        {                                                                                          \
            "cache-control", "private"                                                             \
        }                                                                                          \
    }
#define C5_TABLE_3                                                                                 \
    {                                                                                              \
        {"set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"},                \
            {"content-encoding", "gzip"},                                                          \
        {                                                                                          \
            "date", "Mon, 21 Oct 2013 20:13:22 GMT"                                                \
        }                                                                                          \
    }

static const example c5[] = {
    {"4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d54"
     "6e1768747470733a2f2f7777772e6578616d706c652e636f6d",
     C5_FIELDS_1, 4, C5_TABLE_1, 4, 222},
    {"4803333037c1c0bf", C5_FIELDS_2, 4, C5_TABLE_2, 4, 222},
    {"88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d"
     "4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b207665727"
     "3"
     "696f6e3d31",
     C5_FIELDS_3, 6, C5_TABLE_3, 3, 215},
};
static const example c6[] = {
    {"488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b9"
     "7c8"
     "e9ae82ae43d3",
     C5_FIELDS_1, 4, C5_TABLE_1, 4, 222},
    {"4883640effc1c0bf", C5_FIELDS_2, 4, C5_TABLE_2, 4, 222},
    {"88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfc"
     "d5b"
     "3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
     C5_FIELDS_3, 6, C5_TABLE_3, 3, 215},
};

static void decode_examples(const example *ex, size_t n, uint32_t table_size)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    cr_assert_eq(hpack_decoder_init(&d, table_size, NULL), H2_OK);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(decode_hex(&d, ex[i].hex, &s->s), H2_OK, "block %zu", i + 1);
        expect_fields(&s->s, ex[i].fields, ex[i].nfields);
        expect_table(&d.table, ex[i].table, ex[i].ntable, ex[i].size);
    }
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_decode, rfc_c2)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, "400a637573746f6d2d6b65790d637573746f6d2d686561646572", &s->s),
                 H2_OK);
    expect_fields(&s->s, (nv[]){{"custom-key", "custom-header"}}, 1);
    expect_table(&d.table, (nv[]){{"custom-key", "custom-header"}}, 1, 55);
    cr_assert_eq(s->s.fields[0].flags, 0);
    hpack_decoder_free(&d);

    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, "040c2f73616d706c652f70617468", &s->s), H2_OK); /* C.2.2 */
    expect_fields(&s->s, (nv[]){{":path", "/sample/path"}}, 1);
    expect_table(&d.table, NULL, 0, 0);
    cr_assert_eq(s->s.fields[0].flags, 0);

    cr_assert_eq(decode_hex(&d, "100870617373776f726406736563726574", &s->s), H2_OK); /* C.2.3 */
    expect_fields(&s->s, (nv[]){{"password", "secret"}}, 1);
    expect_table(&d.table, NULL, 0, 0);
    cr_assert_eq(s->s.fields[0].flags, HPACK_F_NEVER_INDEX);

    cr_assert_eq(decode_hex(&d, "82", &s->s), H2_OK); /* C.2.4 */
    expect_fields(&s->s, (nv[]){{":method", "GET"}}, 1);
    expect_table(&d.table, NULL, 0, 0);
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_decode, rfc_c3_without_huffman)
{
    decode_examples(c3, 3, 4096);
}
Test(hpack_decode, rfc_c4_with_huffman)
{
    decode_examples(c4, 3, 4096);
}
Test(hpack_decode, rfc_c5_responses_without_huffman)
{
    decode_examples(c5, 3, 256);
}
Test(hpack_decode, rfc_c6_responses_with_huffman)
{
    decode_examples(c6, 3, 256);
}

/* --- encoder: RFC 7541 Appendix C ------------------------------------------------- */

static void encode_examples(const example *ex, size_t n, uint32_t own_max, hpack_huff_mode mode)
{
    hpack_encoder e;
    cr_assert_eq(hpack_encoder_init(&e, own_max, NULL), H2_OK);
    e.huff = mode;
    for (size_t i = 0; i < n; i++) {
        hpack_field f[8];
        uint8_t want[512], out[2048];
        size_t wn = unhex(ex[i].hex, want), len = 0;
        for (size_t j = 0; j < ex[i].nfields; j++)
            f[j] = fld(ex[i].fields[j].name, ex[i].fields[j].value, 0);
        cr_assert_eq(hpack_encode_block(&e, f, ex[i].nfields, out, sizeof out, &len), H2_OK);
        cr_assert_eq(len, wn, "block %zu: %zu bytes, want %zu", i + 1, len, wn);
        cr_assert_arr_eq(out, want, wn, "block %zu", i + 1);
        expect_table(&e.table, ex[i].table, ex[i].ntable, ex[i].size);
    }
    hpack_encoder_free(&e);
}

static void encode_one(const hpack_field *f, const char *want_hex)
{
    hpack_encoder e;
    uint8_t want[256], out[256];
    size_t wn = unhex(want_hex, want), len = 0;
    hpack_encoder_init(&e, 4096, NULL);
    e.huff = HPACK_HUFF_NEVER;
    cr_assert_eq(hpack_encode_block(&e, f, 1, out, sizeof out, &len), H2_OK);
    cr_assert_eq(len, wn);
    cr_assert_arr_eq(out, want, wn);
    hpack_encoder_free(&e);
}

Test(hpack_encode, rfc_c2)
{
    hpack_field f = fld("custom-key", "custom-header", 0);
    encode_one(&f, "400a637573746f6d2d6b65790d637573746f6d2d686561646572");
    f = fld(":path", "/sample/path", HPACK_F_NO_INDEX);
    encode_one(&f, "040c2f73616d706c652f70617468");
    f = fld("password", "secret", HPACK_F_NEVER_INDEX);
    encode_one(&f, "100870617373776f726406736563726574");
    f = fld(":method", "GET", 0);
    encode_one(&f, "82");
}

Test(hpack_encode, rfc_c3_without_huffman)
{
    encode_examples(c3, 3, 4096, HPACK_HUFF_NEVER);
}
Test(hpack_encode, rfc_c4_with_huffman)
{
    encode_examples(c4, 3, 4096, HPACK_HUFF_AUTO);
}
/* C.5/C.6 assume a 256-byte table from the start: own_max = 256, no update. */
Test(hpack_encode, rfc_c5_responses_without_huffman)
{
    encode_examples(c5, 3, 256, HPACK_HUFF_NEVER);
}
Test(hpack_encode, rfc_c6_responses_with_huffman)
{
    encode_examples(c6, 3, 256, HPACK_HUFF_AUTO);
}

/* The same table size learnt from the peer's SETTINGS must be announced:
 * the peer's decoder was at 4096 and insists on an update (§4.2). */
Test(hpack_encode, rfc_c5_via_peer_setting_announces_size)
{
    for (int variant = 0; variant < 2; variant++) {
        hpack_encoder e;
        hpack_encoder_init(&e, variant ? 256 : 4096, NULL);
        e.huff = HPACK_HUFF_NEVER;
        hpack_encoder_set_peer_table_size(&e, 256);
        cr_assert_eq(e.table.max_size, 256);
        for (size_t i = 0; i < 3; i++) {
            hpack_field f[8];
            uint8_t want[512], out[2048];
            size_t wn = 0, len = 0;
            if (i == 0)
                wn = unhex("3fe101", want); /* size update: 256 */
            wn += unhex(c5[i].hex, want + wn);
            for (size_t j = 0; j < c5[i].nfields; j++)
                f[j] = fld(c5[i].fields[j].name, c5[i].fields[j].value, 0);
            cr_assert_eq(hpack_encode_block(&e, f, c5[i].nfields, out, sizeof out, &len), H2_OK);
            cr_assert_eq(len, wn);
            cr_assert_arr_eq(out, want, wn);
        }
        hpack_encoder_free(&e);
    }
}

/* Our decoder follows our encoder through the same three blocks, whatever
 * the Huffman mode. */
Test(hpack_encode, rfc_c5_round_trip_all_modes)
{
    for (int mode = HPACK_HUFF_AUTO; mode <= HPACK_HUFF_ALWAYS; mode++) {
        hpack_encoder e;
        hpack_decoder d;
        test_sink *s = sink_new();
        hpack_encoder_init(&e, 256, NULL);
        hpack_decoder_init(&d, 4096, NULL);
        e.huff = (hpack_huff_mode)mode;
        for (size_t i = 0; i < 3; i++) {
            hpack_field f[8];
            uint8_t out[2048];
            size_t len = 0;
            for (size_t j = 0; j < c5[i].nfields; j++)
                f[j] = fld(c5[i].fields[j].name, c5[i].fields[j].value, 0);
            cr_assert_eq(hpack_encode_block(&e, f, c5[i].nfields, out, sizeof out, &len), H2_OK);
            cr_assert_eq(hpack_decode_block(&d, out, len, &s->s), H2_OK);
            expect_fields(&s->s, c5[i].fields, c5[i].nfields);
        }
        hpack_encoder_free(&e);
        hpack_decoder_free(&d);
        free(s);
    }
}

/* --- size updates (§4.2, §6.3) -------------------------------------------------- */

Test(hpack_decode, size_update_limits_and_position)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, "3fe21f82", &s->s), H2_E_COMPRESSION); /* 4097 > settings */
    hpack_decoder_free(&d);

    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, "3fe11f82", &s->s), H2_OK); /* 4096 */
    cr_assert_eq(d.table.max_size, 4096);
    cr_assert_eq(decode_hex(&d, "8220", &s->s), H2_E_COMPRESSION); /* after a field */
    hpack_decoder_free(&d);

    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, "203fe11f82", &s->s), H2_OK); /* two at the start */
    expect_fields(&s->s, (nv[]){{":method", "GET"}}, 1);
    cr_assert_eq(d.table.max_size, 4096);
    cr_assert_eq(decode_hex(&d, "203f45203fe11f", &s->s),
                 H2_OK); /* more than two; an update-only block */
    cr_assert_eq(s->s.count, 0);
    cr_assert_eq(d.table.max_size, 4096);
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_decode, size_update_evicts)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    hpack_decoder_init(&d, 4096, NULL);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(decode_hex(&d, c3[i].hex, &s->s), H2_OK);
    cr_assert_eq(decode_hex(&d, "3f4f", &s->s), H2_OK); /* 110: the oldest (57) goes */
    expect_table(&d.table, (nv[]){{"custom-key", "custom-value"}, {"cache-control", "no-cache"}}, 2,
                 107);
    cr_assert_eq(decode_hex(&d, "20", &s->s), H2_OK);
    expect_table(&d.table, NULL, 0, 0);
    /* The table works after being emptied. */
    cr_assert_eq(decode_hex(&d,
                            "3fe11f"
                            "400a637573746f6d2d6b65790d637573746f6d2d686561646572be",
                            &s->s),
                 H2_OK);
    expect_fields(&s->s, (nv[]){{"custom-key", "custom-header"}, {"custom-key", "custom-header"}},
                  2);
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_decode, required_update_after_settings_shrink)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, c3[0].hex, &s->s), H2_OK);
    hpack_decoder_set_settings_max(&d, 100);
    cr_assert(d.update_due);
    cr_assert_eq(decode_hex(&d, "82", &s->s), H2_E_COMPRESSION);
    hpack_decoder_free(&d);

    hpack_decoder_init(&d, 4096, NULL);
    hpack_decoder_set_settings_max(&d, 100);
    cr_assert_eq(hpack_decode_block(&d, NULL, 0, &s->s),
                 H2_E_COMPRESSION); /* an empty block lacks it too */
    hpack_decoder_free(&d);

    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, c3[0].hex, &s->s), H2_OK);
    hpack_decoder_set_settings_max(&d, 100);
    cr_assert_eq(decode_hex(&d, "3f4682", &s->s), H2_E_COMPRESSION); /* 101 > 100 */
    hpack_decoder_free(&d);

    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, c3[0].hex, &s->s), H2_OK);
    hpack_decoder_set_settings_max(&d, 100);
    cr_assert_eq(decode_hex(&d, "3f4582", &s->s), H2_OK); /* 100 */
    cr_assert_not(d.update_due);
    expect_table(&d.table, (nv[]){{":authority", "www.example.com"}}, 1, 57);
    cr_assert_eq(decode_hex(&d, "82", &s->s), H2_OK); /* not required any more */
    hpack_decoder_free(&d);

    /* Shrunk then grown back before the peer's next block: the first update
     * must still go down to the minimum (§4.2). */
    hpack_decoder_init(&d, 4096, NULL);
    hpack_decoder_set_settings_max(&d, 100);
    hpack_decoder_set_settings_max(&d, 4096);
    cr_assert(d.update_due);
    cr_assert_eq(decode_hex(&d, "3fe11f82", &s->s), H2_E_COMPRESSION);
    hpack_decoder_free(&d);
    hpack_decoder_init(&d, 4096, NULL);
    hpack_decoder_set_settings_max(&d, 100);
    hpack_decoder_set_settings_max(&d, 4096);
    cr_assert_eq(decode_hex(&d, "3f453fe11f82", &s->s), H2_OK);
    cr_assert_eq(d.table.max_size, 4096);
    hpack_decoder_free(&d);

    /* Growing needs no update. */
    hpack_decoder_init(&d, 4096, NULL);
    hpack_decoder_set_settings_max(&d, 8192);
    cr_assert_not(d.update_due);
    cr_assert_eq(decode_hex(&d, "82", &s->s), H2_OK);
    cr_assert_eq(decode_hex(&d, "3fe13f82", &s->s), H2_OK); /* 8192 */
    cr_assert_eq(d.table.max_size, 8192);
    hpack_decoder_free(&d);
    free(s);
}

static void encode_expect(hpack_encoder *e, const char *want_hex)
{
    hpack_field f = fld(":method", "GET", 0);
    uint8_t want[64], out[64];
    size_t wn = unhex(want_hex, want), len = 0;
    cr_assert_eq(hpack_encode_block(e, &f, 1, out, sizeof out, &len), H2_OK);
    cr_assert_eq(len, wn, "%zu bytes, want %zu", len, wn);
    cr_assert_arr_eq(out, want, wn);
}

Test(hpack_encode, size_updates)
{
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    hpack_encoder_set_peer_table_size(&e, 4096); /* what the decoder has: nothing to say */
    encode_expect(&e, "82");
    hpack_encoder_set_peer_table_size(&e, 65536); /* capped by own_max: no change */
    encode_expect(&e, "82");
    hpack_encoder_set_peer_table_size(&e, 0); /* shrink and grow: minimum first */
    hpack_encoder_set_peer_table_size(&e, 4096);
    encode_expect(&e, "203fe11f82");
    encode_expect(&e, "82"); /* once */
    hpack_encoder_set_peer_table_size(&e, 100);
    encode_expect(&e, "3f4582");
    hpack_encoder_set_peer_table_size(&e, 50);
    hpack_encoder_set_peer_table_size(&e, 80);
    encode_expect(&e, "3f133f3182"); /* 50, 80 */
    hpack_encoder_free(&e);

    /* A small own_max is used silently, and a larger peer setting changes nothing. */
    hpack_encoder_init(&e, 256, NULL);
    cr_assert_eq(e.table.max_size, 256);
    hpack_encoder_set_peer_table_size(&e, 4096);
    encode_expect(&e, "82");
    hpack_encoder_set_peer_table_size(&e, 1000); /* below what the decoder believes (4096) */
    encode_expect(&e, "3fe10182");               /* 256 */
    hpack_encoder_free(&e);

    /* A larger table must be announced before it is used. */
    hpack_encoder_init(&e, 65536, NULL);
    cr_assert_eq(e.table.max_size, 4096);
    hpack_encoder_set_peer_table_size(&e, 8192);
    cr_assert_eq(e.table.max_size, 8192);
    encode_expect(&e, "3fe13f82");
    hpack_encoder_free(&e);
}

Test(hpack_encode, shrink_evicts_at_once)
{
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    hpack_field f[2] = {fld("x-a", "1", 0), fld("x-b", "2", 0)};
    uint8_t out[128];
    size_t len;
    cr_assert_eq(hpack_encode_block(&e, f, 2, out, sizeof out, &len), H2_OK);
    cr_assert_eq(e.table.count, 2);
    hpack_encoder_set_peer_table_size(&e, 40); /* room for one 36-byte entry */
    hpack_encoder_set_peer_table_size(&e, 4096);
    expect_table(&e.table, (nv[]){{"x-b", "2"}}, 1, 36);
    hpack_encoder_free(&e);
}

/* --- dynamic table (§4.1, §4.4) ------------------------------------------------ */

Test(hpack_table, entry_larger_than_table_empties_it)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    hpack_decoder_init(&d, 100, NULL);
    cr_assert_eq(decode_hex(&d, "4003782d6101317e", &s->s),
                 H2_E_COMPRESSION); /* idx 62 before it exists */
    hpack_decoder_free(&d);
    hpack_decoder_init(&d, 100, NULL);
    cr_assert_eq(decode_hex(&d, "4003782d610131", &s->s), H2_OK); /* x-a: 1, 36 bytes */
    expect_table(&d.table, (nv[]){{"x-a", "1"}}, 1, 36);
    /* 3 + 66 + 32 = 101 > 100 */
    char hex[512] = "4003782d6242";
    for (int i = 0; i < 66; i++)
        strcat(hex, "7a");
    cr_assert_eq(decode_hex(&d, hex, &s->s), H2_OK);
    cr_assert_eq(s->s.count, 1);
    cr_assert_eq(s->s.fields[0].value_len, 66);
    expect_table(&d.table, NULL, 0, 0);
    /* Exactly max_size fits, evicting everything else. */
    cr_assert_eq(decode_hex(&d, "4003782d610131", &s->s), H2_OK);
    strcpy(hex, "4003782d6241");
    for (int i = 0; i < 65; i++)
        strcat(hex, "7a");
    cr_assert_eq(decode_hex(&d, hex, &s->s), H2_OK);
    cr_assert_eq(d.table.count, 1);
    cr_assert_eq(d.table.size, 100);
    hpack_decoder_free(&d);
    free(s);
}

/* §4.4: a new entry may name an entry that its own insertion evicts. */
static void name_of_evicted_entry(bool overflowed)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    if (overflowed) { /* fields not stored: the strings go through scratch */
        s->s.soft_list_size = 10;
        s->s.buf_cap = 10;
    }
    hpack_decoder_init(&d, 100, NULL);
    cr_assert_eq(decode_hex(&d, "400461616161017a", &s->s), H2_OK); /* aaaa: z, 37 */
    /* name index 62, value of 60 bytes: 96 bytes, evicts 62 first */
    char hex[512] = "7e3c";
    for (int i = 0; i < 60; i++)
        strcat(hex, "76");
    cr_assert_eq(decode_hex(&d, hex, &s->s), H2_OK);
    char v[61];
    memset(v, 'v', 60);
    v[60] = 0;
    expect_table(&d.table, (nv[]){{"aaaa", v}}, 1, 96);
    if (!overflowed)
        expect_fields(&s->s, (nv[]){{"aaaa", v}}, 1);
    else
        cr_assert(s->s.overflow);
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_table, new_entry_names_the_entry_it_evicts)
{
    name_of_evicted_entry(false);
}
Test(hpack_table, new_entry_names_the_entry_it_evicts_overflowed)
{
    name_of_evicted_entry(true);
}

/* A straightforward model of §4: newest first, evict from the end. */
typedef struct model_entry {
    uint8_t name[300], value[300];
    uint32_t name_len, value_len;
} model_entry;
typedef struct model {
    model_entry e[200];
    uint32_t count, size, max;
} model;

static void model_evict_to(model *m, uint32_t max)
{
    while (m->size > max) {
        model_entry *o = &m->e[--m->count];
        m->size -= o->name_len + o->value_len + 32;
    }
}

static void model_insert(model *m, const uint8_t *n, uint32_t nl, const uint8_t *v, uint32_t vl)
{
    uint32_t size = nl + vl + 32;
    if (size > m->max) {
        m->count = 0;
        m->size = 0;
        return;
    }
    model_evict_to(m, m->max - size);
    memmove(&m->e[1], &m->e[0], m->count * sizeof m->e[0]);
    memcpy(m->e[0].name, n, nl);
    memcpy(m->e[0].value, v, vl);
    m->e[0].name_len = nl;
    m->e[0].value_len = vl;
    m->count++;
    m->size += size;
}

static void expect_model(const hpack_table *t, const model *m)
{
    uint8_t buf[1024];
    hpack_field f;
    cr_assert_eq(t->count, m->count);
    cr_assert_eq(t->size, m->size);
    for (uint32_t i = 0; i < m->count; i++) {
        cr_assert_eq(hpack_table_get(t, i + 1, buf, sizeof buf, &f), H2_OK);
        cr_assert_eq(f.name_len, m->e[i].name_len);
        cr_assert_eq(f.value_len, m->e[i].value_len);
        cr_assert_arr_eq(f.name, m->e[i].name, f.name_len);
        cr_assert_arr_eq(f.value, m->e[i].value, f.value_len);
    }
}

/* Random insertions, references and size updates through the decoder,
 * checked against the model after every block: wraps, growth, eviction. */
Test(hpack_table, matches_model_under_random_traffic)
{
    static model m;
    hpack_decoder d;
    test_sink *s = sink_new();
    static uint8_t block[8192];
    hpack_decoder_init(&d, 4096, NULL);
    m.max = 4096;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *p = block;
        if (rnd() % 20 == 0) {
            uint32_t size = rnd() % 5 ? 1024 + rnd() % 3073 : rnd() % 300;
            p = hpack_int_encode(p, 0x20, 5, size);
            m.max = size;
            model_evict_to(&m, size);
        }
        /* The model after the previous fields of this block, for references. */
        uint32_t nfields = 1 + rnd() % 6;
        static uint8_t want_n[6][300], want_v[6][300];
        uint32_t want_nl[6], want_vl[6];
        for (uint32_t i = 0; i < nfields; i++) {
            if (m.count > 0 && rnd() % 3 == 0) {
                uint32_t idx = rnd() % m.count;
                p = hpack_int_encode(p, 0x80, 7, HPACK_STATIC_COUNT + 1 + idx);
                want_nl[i] = m.e[idx].name_len;
                want_vl[i] = m.e[idx].value_len;
                memcpy(want_n[i], m.e[idx].name, want_nl[i]);
                memcpy(want_v[i], m.e[idx].value, want_vl[i]);
                continue;
            }
            uint32_t nl = rnd() % (rnd() % 8 ? 20 : 300), vl = rnd() % (rnd() % 8 ? 60 : 300);
            for (uint32_t k = 0; k < nl; k++)
                want_n[i][k] = (uint8_t)('a' + rnd() % 26);
            for (uint32_t k = 0; k < vl; k++)
                want_v[i][k] = (uint8_t)rnd();
            want_nl[i] = nl;
            want_vl[i] = vl;
            p = hpack_int_encode(p, 0x40, 6, 0);
            bool huff = rnd() % 2;
            if (huff) {
                p = hpack_int_encode(p, 0x80, 7, hpack_huff_encoded_len(want_n[i], nl));
                p = hpack_huff_encode(p, want_n[i], nl);
                p = hpack_int_encode(p, 0x80, 7, hpack_huff_encoded_len(want_v[i], vl));
                p = hpack_huff_encode(p, want_v[i], vl);
            } else {
                p = hpack_int_encode(p, 0, 7, nl);
                memcpy(p, want_n[i], nl);
                p = hpack_int_encode(p + nl, 0, 7, vl);
                memcpy(p, want_v[i], vl);
                p += vl;
            }
            model_insert(&m, want_n[i], nl, want_v[i], vl);
        }
        cr_assert_eq(hpack_decode_block(&d, block, (size_t)(p - block), &s->s), H2_OK,
                     "iteration %d", iter);
        cr_assert_eq(s->s.count, nfields);
        for (uint32_t i = 0; i < nfields; i++) {
            cr_assert_eq(s->s.fields[i].name_len, want_nl[i]);
            cr_assert_eq(s->s.fields[i].value_len, want_vl[i]);
            cr_assert_arr_eq(s->s.fields[i].name, want_n[i], want_nl[i]);
            cr_assert_arr_eq(s->s.fields[i].value, want_v[i], want_vl[i]);
        }
        expect_model(&d.table, &m);
    }
    hpack_decoder_free(&d);
    free(s);
}

/* Encoder and decoder with random fields and peer table sizes stay in step:
 * decoded fields equal the input and both tables hold the same entries.
 * seq: where both tables' insertion counters start. */
static void round_trip_random(uint32_t seq, int iterations)
{
    hpack_encoder e;
    hpack_decoder d;
    test_sink *s = sink_new();
    static uint8_t out[1 << 16];
    static const char *names[] = {"content-type",      "x-a", "x-b", "cookie", ":path", "date",
                                  "x-long-header-name"};
    static char vals[8][200];
    hpack_encoder_init(&e, 8192, NULL);
    hpack_decoder_init(&d, 4096, NULL);
    e.table.seq = seq;
    d.table.seq = seq;
    for (int iter = 0; iter < iterations; iter++) {
        if (rnd() % 25 == 0) {
            uint32_t size = rnd() % 4 ? rnd() % 8193 : rnd() % 200;
            /* SETTINGS sent, ACKed, then received by the peer's encoder. */
            hpack_decoder_set_settings_max(&d, size);
            hpack_encoder_set_peer_table_size(&e, size);
        }
        e.huff = (hpack_huff_mode)(rnd() % 3);
        hpack_field f[8];
        size_t n = rnd() % 8;
        for (size_t i = 0; i < n; i++) {
            char *v = vals[i];
            size_t vl = rnd() % (rnd() % 10 ? 12 : 199);
            for (size_t k = 0; k < vl; k++)
                v[k] = (char)('0' + rnd() % (rnd() % 2 ? 3 : 70));
            v[vl] = 0;
            uint8_t flags = rnd() % 10 == 0   ? HPACK_F_NO_INDEX
                            : rnd() % 10 == 0 ? HPACK_F_NEVER_INDEX
                                              : 0;
            f[i] = fld(names[rnd() % 7], v, flags);
        }
        size_t len = 0;
        cr_assert_leq(hpack_encode_bound(f, n), sizeof out);
        cr_assert_eq(hpack_encode_block(&e, f, n, out, sizeof out, &len), H2_OK);
        cr_assert_leq(len, hpack_encode_bound(f, n));
        cr_assert_eq(hpack_decode_block(&d, out, len, &s->s), H2_OK, "iteration %d", iter);
        cr_assert_eq(s->s.count, n);
        for (size_t i = 0; i < n; i++) {
            cr_assert(field_is(&s->s.fields[i], (const char *)f[i].name, (const char *)f[i].value));
            cr_assert_eq(s->s.fields[i].flags, f[i].flags & HPACK_F_NEVER_INDEX);
        }
        cr_assert_eq(e.table.count, d.table.count);
        cr_assert_eq(e.table.size, d.table.size);
        uint8_t b1[512], b2[512];
        for (uint32_t i = 1; i <= e.table.count; i++) {
            hpack_field x, y;
            cr_assert_eq(hpack_table_get(&e.table, i, b1, sizeof b1, &x), H2_OK);
            cr_assert_eq(hpack_table_get(&d.table, i, b2, sizeof b2, &y), H2_OK);
            cr_assert_eq(x.name_len, y.name_len);
            cr_assert_eq(x.value_len, y.value_len);
            cr_assert_arr_eq(b1, b2, x.name_len + x.value_len);
        }
    }
    hpack_encoder_free(&e);
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_table, encoder_decoder_round_trip_random)
{
    round_trip_random(0, 3000);
}
/* The entry numbers the encoder's index links by wrap at 2^32. */
Test(hpack_table, encoder_decoder_round_trip_across_seq_wrap)
{
    round_trip_random(UINT32_MAX - 300, 1000);
}

/* The index finds every live entry, by value and by name. */
Test(hpack_table, encoder_index_finds_every_entry)
{
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    e.huff = HPACK_HUFF_NEVER;
    char names[200][16], values[200][16];
    uint8_t out[256];
    size_t len;
    for (int k = 0; k < 200; k++) { /* 200 entries of 46 bytes: the last 89 stay */
        snprintf(names[k], sizeof names[k], "x-name-%03d", k % 150);
        snprintf(values[k], sizeof values[k], "v%03d", k);
        hpack_field f = fld(names[k], values[k], 0);
        cr_assert_eq(hpack_encode_block(&e, &f, 1, out, sizeof out, &len), H2_OK);
        cr_assert_eq(out[0], 0x40); /* new name: every name is evicted or new here */
    }
    cr_assert_eq(e.table.count, 89);
    for (int k = 199; k >= 111; k--) {
        hpack_field f = fld(names[k], values[k], 0);
        uint32_t want = HPACK_STATIC_COUNT + 200u - (uint32_t)k, idx = 0;
        const uint8_t *p = out;
        cr_assert_eq(hpack_encode_block(&e, &f, 1, out, sizeof out, &len), H2_OK);
        cr_assert_eq(out[0] & 0x80, 0x80, "entry %d", k);
        cr_assert_eq(hpack_int_decode(&p, out + len, 7, UINT32_MAX, &idx), H2_OK);
        cr_assert_eq(idx, want, "entry %d", k);
        cr_assert_eq(e.table.count, 89); /* nothing inserted */
        /* By name only, as a never-indexed literal so the table stays put. */
        f = fld(names[k], "other", HPACK_F_NEVER_INDEX);
        cr_assert_eq(hpack_encode_block(&e, &f, 1, out, sizeof out, &len), H2_OK);
        cr_assert_eq(out[0] & 0xf0, 0x10, "entry %d", k);
        p = out;
        cr_assert_eq(hpack_int_decode(&p, out + len, 4, UINT32_MAX, &idx), H2_OK);
        cr_assert_eq(idx, want, "entry %d", k);
    }
    hpack_encoder_free(&e);
}

/* --- decoder limits (§4.1 sizes, security.md) ---------------------------------- */

/* One 4000-byte entry, then references to it. */
static size_t bomb(uint8_t *block, size_t refs)
{
    uint8_t *p = block;
    *p++ = 0x40;
    *p++ = 0x01;
    *p++ = 'x';
    p = hpack_int_encode(p, 0, 7, 4000);
    memset(p, 'B', 4000);
    p += 4000;
    memset(p, 0xbe, refs); /* indexed 62 */
    return (size_t)(p - block) + refs;
}

Test(hpack_limits, hpack_bomb_stops_at_hard_limit)
{
    static uint8_t block[20000];
    size_t len = bomb(block, 10000);
    hpack_decoder d;
    test_sink *s = sink_new();
    s->s.hard_fields = 100000; /* let the size limit act */
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(hpack_decode_block(&d, block, len, &s->s), H2_E_LIMIT);
    /* 4033 bytes per field: the 65th passes 256 KiB; 16 fit in 64 KiB. */
    cr_assert_eq(s->s.total_fields, 65);
    cr_assert_eq(s->s.list_size, 65u * 4033u);
    cr_assert_eq(s->s.count, 16);
    cr_assert_eq(s->s.buf_used, 16u * 4001u);
    cr_assert(s->s.overflow);
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_limits, soft_limit_keeps_table_in_step)
{
    static uint8_t block[20000];
    size_t len = bomb(block, 20);
    hpack_decoder d;
    test_sink *s = sink_new();
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(hpack_decode_block(&d, block, len, &s->s), H2_OK);
    cr_assert(s->s.overflow);
    cr_assert_eq(s->s.total_fields, 21);
    cr_assert_eq(s->s.count, 16);
    for (uint32_t i = 0; i < s->s.count; i++)
        cr_assert_eq(s->s.fields[i].value_len, 4000);
    /* Past the soft limit a new entry is still inserted (through scratch:
     * buf's tail is too short for it). */
    uint8_t more[64], *p = more;
    *p++ = 0x40;
    *p++ = 0x04;
    memcpy(p, "x-id", 4);
    p += 4;
    *p++ = 0x82; /* Huffman "302" */
    *p++ = 0x64;
    *p++ = 0x02;
    size_t mlen = (size_t)(p - more);
    static uint8_t big[30000];
    memcpy(big, block, len);
    memcpy(big + len, more, mlen);
    s->s.buf_cap = 16u * 4001u + 3; /* 16 fields stored, 3 bytes of tail left */
    hpack_decoder_free(&d);
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(hpack_decode_block(&d, big, len + mlen, &s->s), H2_OK);
    cr_assert(s->s.overflow);
    cr_assert_not_null(d.scratch);
    cr_assert_eq(s->s.count, 16);
    /* Inserted beside the big entry: 39 + 4033 <= 4096. */
    uint8_t tmp[8];
    hpack_field got;
    cr_assert_eq(d.table.count, 2);
    cr_assert_eq(d.table.size, 39 + 4033);
    cr_assert_eq(hpack_table_get(&d.table, 1, tmp, sizeof tmp, &got), H2_OK);
    cr_assert(field_is(&got, "x-id", "302"));
    /* And the next block can reference it. */
    test_sink *s2 = sink_new();
    cr_assert_eq(decode_hex(&d, "be", &s2->s), H2_OK);
    expect_fields(&s2->s, (nv[]){{"x-id", "302"}}, 1);
    hpack_decoder_free(&d);
    free(s);
    free(s2);
}

Test(hpack_limits, field_counts)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    s->s.soft_fields = 3;
    s->s.hard_fields = 5;
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, "82828282", &s->s), H2_OK);
    cr_assert(s->s.overflow);
    cr_assert_eq(s->s.count, 3);
    cr_assert_eq(s->s.total_fields, 4);
    cr_assert_eq(decode_hex(&d, "828282", &s->s), H2_OK); /* counters reset per block */
    cr_assert_not(s->s.overflow);
    cr_assert_eq(decode_hex(&d, "8282828282", &s->s), H2_OK);
    cr_assert_eq(decode_hex(&d, "828282828282", &s->s), H2_E_LIMIT);
    cr_assert_eq(decode_hex(&d, "82828282820400017a", &s->s),
                 H2_E_LIMIT); /* a literal as the 6th */
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_limits, literal_checked_before_decoding)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    s->s.soft_list_size = 50;
    s->s.hard_list_size = 100;
    hpack_decoder_init(&d, 4096, NULL);
    /* A 100-byte raw value: 32 + 1 + 100 > 100 before a byte is copied. */
    static char hex[1024] = "0001786400";
    for (int i = 0; i < 99; i++)
        strcat(hex, "41");
    cr_assert_eq(decode_hex(&d, hex, &s->s), H2_E_LIMIT);
    cr_assert_eq(s->s.total_fields, 0);
    cr_assert_eq(s->s.buf_used, 0);
    /* A Huffman value whose lower bound (8 bits per 30) passes it: 300
     * bytes decode to at least 80.  (Decoding would find EOS.) */
    strcpy(hex, "000178ffad01");
    for (int i = 0; i < 300; i++)
        strcat(hex, "ff");
    cr_assert_eq(decode_hex(&d, hex, &s->s), H2_E_LIMIT);
    /* Exact: 32 + 1 + 17 = 50 is stored, 51 is not. */
    strcpy(hex, "00017811");
    for (int i = 0; i < 17; i++)
        strcat(hex, "41");
    cr_assert_eq(decode_hex(&d, hex, &s->s), H2_OK);
    cr_assert_eq(s->s.count, 1);
    cr_assert_not(s->s.overflow);
    strcpy(hex, "00017812");
    for (int i = 0; i < 18; i++)
        strcat(hex, "41");
    cr_assert_eq(decode_hex(&d, hex, &s->s), H2_OK);
    cr_assert_eq(s->s.count, 0);
    cr_assert(s->s.overflow);
    hpack_decoder_free(&d);
    free(s);
}

/* Storage smaller than the soft limits is not trusted. */
Test(hpack_limits, small_storage_overflows_safely)
{
    hpack_decoder d;
    test_sink *s = sink_new();
    s->s.fields_cap = 2;
    s->s.buf_cap = 12;
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, c3[0].hex, &s->s), H2_OK);
    cr_assert(s->s.overflow);
    /* :method GET and :scheme http come whole from the static table and take
     * no room in buf; :path / finds fields[] full, and the literal
     * :authority would not fit in buf either. */
    cr_assert_eq(s->s.count, 2);
    expect_table(&d.table, (nv[])C3_TABLE_1, 1, 57);
    hpack_decoder_free(&d);
    free(s);
}

/* --- malformed input ---------------------------------------------------------------- */

Test(hpack_decode, malformed_blocks)
{
    static const char *const bad[] = {
        "80",               /* index 0 */
        "be",               /* dynamic index, empty table */
        "ff",               /* truncated index */
        "fff0ffffff0f",     /* index far beyond the table */
        "7e0161",           /* literal naming entry 62: none */
        "0f",               /* truncated name index */
        "3f",               /* truncated size update */
        "40",               /* literal without a name */
        "400161",           /* ... without a value */
        "40016105616263",   /* value longer than the input */
        "4005616263",       /* name longer than the input */
        "407f",             /* truncated name length */
        "40ffffffffff0f",   /* name length beyond 2^32 */
        "0081ff0161",       /* Huffman name: 8 bits of padding */
        "00016181ff",       /* Huffman value: 8 bits of padding */
        "00016181fe",       /* padding not all ones */
        "00016184ffffffff", /* Huffman value: EOS */
    };
    hpack_decoder d;
    test_sink *s = sink_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hpack_decoder_init(&d, 4096, NULL);
        cr_assert_eq(decode_hex(&d, bad[i], &s->s), H2_E_COMPRESSION, "%s", bad[i]);
        hpack_decoder_free(&d);
    }
    /* Bad Huffman is found in a field that is neither stored nor inserted. */
    s->s.soft_fields = 0;
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(decode_hex(&d, "00016181ff", &s->s), H2_E_COMPRESSION);
    cr_assert_eq(decode_hex(&d, "000161811f", &s->s), H2_OK); /* the same shape, valid: "a" */
    cr_assert(s->s.overflow);
    cr_assert_eq(s->s.count, 0);
    hpack_decoder_free(&d);
    free(s);
}

Test(hpack_decode, every_truncation_of_a_block)
{
    uint8_t in[64];
    size_t n = unhex(c3[0].hex, in);
    hpack_decoder d;
    test_sink *s = sink_new();
    for (size_t cut = 0; cut <= n; cut++) {
        hpack_decoder_init(&d, 4096, NULL);
        h2_rv rv = hpack_decode_block(&d, in, cut, &s->s);
        bool boundary = cut <= 3 || cut == n; /* 82 | 86 | 84 | 41 ... */
        cr_assert_eq(rv, boundary ? H2_OK : H2_E_COMPRESSION, "cut at %zu", cut);
        hpack_decoder_free(&d);
    }
    free(s);
}

/* --- encoder choices ---------------------------------------------------------------- */

static void encode_seq(hpack_encoder *e, hpack_field f, const char *want_hex)
{
    uint8_t want[256], out[512];
    size_t wn = unhex(want_hex, want), len = 0;
    cr_assert_eq(hpack_encode_block(e, &f, 1, out, sizeof out, &len), H2_OK);
    cr_assert_eq(len, wn, "%.*s: %zu bytes, want %zu", (int)f.name_len, f.name, len, wn);
    cr_assert_arr_eq(out, want, wn);
}

Test(hpack_encode, representations)
{
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    e.huff = HPACK_HUFF_NEVER;
    encode_seq(&e, fld(":method", "GET", HPACK_F_NEVER_INDEX),
               "1203474554");                                      /* name index 2 only */
    encode_seq(&e, fld(":method", "GET", HPACK_F_NO_INDEX), "82"); /* matching inserts nothing */
    encode_seq(&e, fld("x-a", "1", HPACK_F_NO_INDEX), "0003782d610131");
    cr_assert_eq(e.table.count, 0);
    encode_seq(&e, fld("x-a", "1", 0), "4003782d610131");
    encode_seq(&e, fld("x-a", "1", 0), "be");
    encode_seq(&e, fld("x-a", "1", HPACK_F_NEVER_INDEX), "1f2f0131"); /* name 62, value literal */
    encode_seq(&e, fld("x-a", "2", 0), "7e0132");                     /* name 62 (x-a: 1) */
    expect_table(&e.table, (nv[]){{"x-a", "2"}, {"x-a", "1"}}, 2, 72);
    encode_seq(&e, fld("content-type", "a", 0), "5f0161");
    encode_seq(&e, fld("content-type", "b", 0), "5f0162"); /* static name over the dynamic one */
    encode_seq(&e, fld("content-type", "a", 0), "bf");     /* exact dynamic match */
    encode_seq(&e, fld("", "", 0), "400000");              /* empty name and value: 32 bytes */
    hpack_encoder_free(&e);

    /* Too large for the table: not indexed, the table is left alone. */
    hpack_encoder_init(&e, 64, NULL);
    e.huff = HPACK_HUFF_NEVER;
    encode_seq(&e, fld("x-a", "1", 0), "4003782d610131");
    encode_seq(
        &e, fld("x-a", "0123456789012345678901234567890", 0),
        "0f2f1f30313233343536373839303132333435363738393031323334353637383930"); /* name 62 */
    expect_table(&e.table, (nv[]){{"x-a", "1"}}, 1, 36);
    hpack_encoder_free(&e);

    hpack_encoder_init(&e, 0, NULL);
    e.huff = HPACK_HUFF_NEVER;
    encode_seq(&e, fld("x-a", "1", 0), "0003782d610131");
    cr_assert_eq(e.table.count, 0);
    hpack_encoder_free(&e);
}

static size_t encoded_len(hpack_huff_mode mode, const char *value)
{
    hpack_encoder e;
    uint8_t out[256];
    size_t len = 0;
    hpack_field f = fld("x", value, HPACK_F_NO_INDEX);
    hpack_encoder_init(&e, 4096, NULL);
    e.huff = mode;
    cr_assert_eq(hpack_encode_block(&e, &f, 1, out, sizeof out, &len), H2_OK);
    hpack_decoder d;
    test_sink *s = sink_new();
    hpack_decoder_init(&d, 4096, NULL);
    cr_assert_eq(hpack_decode_block(&d, out, len, &s->s), H2_OK);
    cr_assert(field_is(&s->s.fields[0], "x", value));
    hpack_decoder_free(&d);
    hpack_encoder_free(&e);
    free(s);
    return len;
}

Test(hpack_encode, huffman_modes)
{
    /* \x01\x02: 23 + 28 bits = 7 bytes Huffman against 2 raw. */
    cr_assert_eq(encoded_len(HPACK_HUFF_ALWAYS, "\x01\x02"), 1 + 2 + 1 + 7);
    cr_assert_eq(encoded_len(HPACK_HUFF_AUTO, "\x01\x02"), 1 + 2 + 1 + 2);
    cr_assert_eq(encoded_len(HPACK_HUFF_NEVER, "\x01\x02"), 1 + 2 + 1 + 2);
    cr_assert_eq(encoded_len(HPACK_HUFF_ALWAYS, "www.example.com"), 1 + 2 + 1 + 12);
    cr_assert_eq(encoded_len(HPACK_HUFF_AUTO, "www.example.com"), 1 + 2 + 1 + 12);
    cr_assert_eq(encoded_len(HPACK_HUFF_NEVER, "www.example.com"), 1 + 2 + 1 + 15);
}

Test(hpack_encode, bound_is_an_upper_bound)
{
    static uint8_t vals[16][3000], out[1 << 17];
    hpack_encoder e;
    hpack_encoder_init(&e, UINT32_MAX, NULL);
    e.huff = HPACK_HUFF_ALWAYS;
    for (int iter = 0; iter < 300; iter++) {
        hpack_encoder_set_peer_table_size(&e, 0);
        hpack_encoder_set_peer_table_size(&e, iter % 2 ? UINT32_MAX : 65536);
        hpack_field f[16];
        size_t n = rnd() % 16, len = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t vl = rnd() % (rnd() % 4 ? 40 : 3000);
            for (uint32_t k = 0; k < vl; k++) /* 30-bit codes: the worst case */
                vals[i][k] = rnd() % 4 ? (uint8_t)(k % 3 == 0   ? 10
                                                   : k % 3 == 1 ? 13
                                                                : 22)
                                       : (uint8_t)rnd();
            uint32_t nl = 1 + rnd() % 200;
            f[i] = (hpack_field){vals[i], vals[i], nl < vl ? nl : vl, vl, (uint8_t)(rnd() % 3), 0};
            if (f[i].flags == 3)
                f[i].flags = 0;
        }
        size_t bound = hpack_encode_bound(f, n);
        uint32_t count = e.table.count;
        cr_assert_eq(hpack_encode_block(&e, f, n, out, bound - 1, &len), H2_E_INVAL);
        cr_assert_eq(e.table.count, count);
        cr_assert_eq(hpack_encode_block(&e, f, n, out, bound, &len), H2_OK);
        cr_assert_leq(len, bound);
    }
    hpack_encoder_free(&e);
}

/* --- allocation ------------------------------------------------------------------ */

typedef struct endpoint {
    hpack_encoder e;
    hpack_decoder d;
    test_sink *s;
    uint8_t out[8192];
} endpoint;

static void exchange(endpoint *ep, const hpack_field *f, size_t n)
{
    size_t len = 0;
    cr_assert_eq(hpack_encode_block(&ep->e, f, n, ep->out, sizeof ep->out, &len), H2_OK);
    cr_assert_eq(hpack_decode_block(&ep->d, ep->out, len, &ep->s->s), H2_OK);
    cr_assert_eq(ep->s->s.count, n);
    for (size_t i = 0; i < n; i++)
        cr_assert(field_is(&ep->s->s.fields[i], (const char *)f[i].name, (const char *)f[i].value));
}

Test(hpack_alloc, warm_path_allocates_nothing)
{
    counting c = {0, 0, 0, UINT64_MAX};
    h2_mem m = counting_mem(&c);
    static endpoint req, resp;
    endpoint *eps[2] = {&req, &resp};
    for (int k = 0; k < 2; k++) {
        hpack_encoder_init(&eps[k]->e, 4096, &m);
        hpack_decoder_init(&eps[k]->d, 4096, &m);
        eps[k]->s = sink_new();
    }
    uint64_t warm = 0;
    for (int i = 0; i < 1000; i++) {
        char path[64], id[32], clen[16], date[64];
        snprintf(path, sizeof path, "/api/items?page=%d", i);
        snprintf(id, sizeof id, "%016x", (unsigned)i * 2654435761u);
        snprintf(clen, sizeof clen, "%d", 100 + i * 37);
        snprintf(date, sizeof date, "Sat, 22 Nov 2025 02:%02d:%02d GMT", i / 60 % 60, i % 60);
        hpack_field rq[] = {
            fld(":method", "GET", 0),
            fld(":scheme", "https", 0),
            fld(":authority", "www.example.com", 0),
            fld(":path", path, 0),
            fld("user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", 0),
            fld("accept", "application/json", 0),
            fld("accept-encoding", "gzip, deflate, br", 0),
            fld("accept-language", "en-US,en;q=0.5", 0),
            fld("cookie", "session=4f9c1e0a7b2d43c8a16e5f0b9d2c7a31; theme=dark; tz=Europe/Berlin",
                0),
            fld("authorization",
                "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo",
                HPACK_F_NEVER_INDEX),
            fld("x-request-id", id, 0),
        };
        hpack_field rs[] = {
            fld(":status", "200", 0),       fld("content-type", "application/json", 0),
            fld("content-length", clen, 0), fld("date", date, 0),
            fld("server", "spindle", 0),    fld("cache-control", "no-store", 0),
        };
        exchange(&req, rq, sizeof rq / sizeof rq[0]);
        exchange(&resp, rs, sizeof rs / sizeof rs[0]);
        if (i == 50)
            warm = c.allocs;
    }
    cr_assert_eq(c.allocs, warm, "%llu allocations after warm-up",
                 (unsigned long long)(c.allocs - warm));
    cr_assert_gt(req.d.table.count, 0);
    for (int k = 0; k < 2; k++) {
        hpack_encoder_free(&eps[k]->e);
        hpack_decoder_free(&eps[k]->d);
        free(eps[k]->s);
    }
    cr_assert_eq(c.allocs, c.frees);
}

Test(hpack_alloc, encoder_nomem_changes_nothing)
{
    hpack_field f[5];
    for (size_t j = 0; j < 5; j++)
        f[j] = fld(c3[2].fields[j].name, c3[2].fields[j].value, 0);
    for (uint64_t fail_from = 0; fail_from < 4; fail_from++) {
        counting c = {0, 0, 0, fail_from};
        h2_mem m = counting_mem(&c);
        hpack_encoder e;
        uint8_t out[512];
        size_t len = 12345;
        hpack_encoder_init(&e, 4096, &m);
        hpack_encoder_set_peer_table_size(&e, 1000);
        h2_rv rv = hpack_encode_block(&e, f, 5, out, sizeof out, &len);
        if (rv == H2_E_NOMEM) {
            cr_assert_eq(len, 12345);
            cr_assert_eq(e.table.count, 0);
            cr_assert(e.update_due);
            c.fail_from = UINT64_MAX;
            cr_assert_eq(hpack_encode_block(&e, f, 5, out, sizeof out, &len), H2_OK);
        } else {
            cr_assert_eq(rv, H2_OK);
            cr_assert_geq(fail_from, 3); /* the index and two rings */
        }
        /* A peer's decoder that saw nothing of the failed attempt agrees. */
        hpack_decoder d;
        test_sink *s = sink_new();
        hpack_decoder_init(&d, 4096, NULL);
        hpack_decoder_set_settings_max(&d, 1000);
        cr_assert_eq(hpack_decode_block(&d, out, len, &s->s), H2_OK);
        expect_fields(&s->s, c3[2].fields, 5);
        cr_assert_eq(d.table.size, e.table.size);
        hpack_decoder_free(&d);
        free(s);
        hpack_encoder_free(&e);
        cr_assert_eq(c.allocs, c.frees);
    }
}

Test(hpack_alloc, decoder_nomem_is_clean)
{
    /* Four literals of growing size: the rings grow several times. */
    static uint8_t block[4096];
    static const uint32_t sizes[] = {20, 100, 300, 900};
    uint8_t *p = block;
    for (size_t i = 0; i < 4; i++) {
        p = hpack_int_encode(p, 0x40, 6, 0);
        *p++ = 3;
        memcpy(p, "x-0", 3);
        p[2] = (uint8_t)('0' + i);
        p = hpack_int_encode(p + 3, 0, 7, sizes[i]);
        memset(p, 'a' + (int)i, sizes[i]);
        p += sizes[i];
    }
    size_t len = (size_t)(p - block);
    bool succeeded = false;
    for (uint64_t fail_from = 0; !succeeded; fail_from++) {
        counting c = {0, 0, 0, fail_from};
        h2_mem m = counting_mem(&c);
        hpack_decoder d;
        test_sink *s = sink_new();
        hpack_decoder_init(&d, 4096, &m);
        h2_rv rv = hpack_decode_block(&d, block, len, &s->s);
        if (rv == H2_OK) {
            succeeded = true;
            cr_assert_eq(d.table.count, 4);
        } else {
            cr_assert_eq(rv, H2_E_NOMEM);
            /* The fields before the failure are in the table, whole. */
            expect_table_consistent(&d.table);
            cr_assert_eq(s->s.count, d.table.count + 1);
            uint8_t buf[1024];
            hpack_field e;
            for (uint32_t i = 1; i <= d.table.count; i++) {
                cr_assert_eq(hpack_table_get(&d.table, i, buf, sizeof buf, &e), H2_OK);
                cr_assert_eq(e.value_len, sizes[d.table.count - i]);
            }
        }
        hpack_decoder_free(&d);
        free(s);
        cr_assert_eq(c.allocs, c.frees);
        cr_assert_lt(fail_from, 20);
    }

    /* The scratch path fails cleanly too. */
    counting c = {0, 0, 0, 0};
    h2_mem m = counting_mem(&c);
    hpack_decoder d;
    test_sink *s = sink_new();
    s->s.soft_list_size = 0;
    hpack_decoder_init(&d, 4096, &m);
    s->s.buf_cap = 0;
    cr_assert_eq(hpack_decode_block(&d, block, len, &s->s), H2_E_NOMEM);
    cr_assert_eq(d.table.count, 0);
    hpack_decoder_free(&d);
    free(s);
    cr_assert_eq(c.allocs, c.frees);
}

/* A server's encoder leaves per-message values out of the dynamic table, so
 * they cannot evict the fields that do repeat (content-type, server...);
 * `date` (once a second) is indexed. */
Test(encoder, skip_volatile_fields_not_indexed)
{
    hpack_encoder e;
    hpack_encoder_init(&e, 4096, NULL);
    e.skip_volatile = true;
    e.huff = HPACK_HUFF_NEVER;
    const hpack_field f[] = {
        {(const uint8_t *)"content-length", (const uint8_t *)"13", 14, 2, 0, 0},
        {(const uint8_t *)"etag", (const uint8_t *)"\"abc\"", 4, 5, 0, 0},
        {(const uint8_t *)"content-type", (const uint8_t *)"text/plain", 12, 10, 0, 0},
    };
    uint8_t out[1024];
    cr_assert_leq(hpack_encode_bound(f, 3), sizeof out);
    size_t len = 0;
    cr_assert_eq(hpack_encode_block(&e, f, 3, out, sizeof out, &len), H2_OK);
    /* content-length (static name 28): literal without indexing, 4-bit prefix. */
    cr_assert_eq(out[0], 0x0f);
    cr_assert_eq(out[1], 28 - 15);
    cr_assert_eq(e.table.count, 1, "only content-type was indexed, got %u entries", e.table.count);
    /* The same block again: content-type now comes from the table. */
    size_t len2 = 0;
    cr_assert_eq(hpack_encode_block(&e, f, 3, out, sizeof out, &len2), H2_OK);
    cr_assert_lt(len2, len);
    cr_assert_eq(e.table.count, 1);
    hpack_encoder_free(&e);
}

/* `date` on a server's encoder: inserted once (literal with incremental
 * indexing, static name 33), then a one-byte indexed field for as long as
 * the value holds; a new second inserts a new entry.  The decoder sees
 * the same fields every time. */
Test(encoder, date_indexed_once_per_value)
{
    static endpoint ep;
    hpack_encoder_init(&ep.e, 4096, NULL);
    hpack_decoder_init(&ep.d, 4096, NULL);
    ep.s = sink_new();
    ep.e.skip_volatile = true;
    hpack_field f[] = {
        fld("date", "Sun, 06 Dec 2026 23:10:00 GMT", 0),
        fld("content-length", "13", 0),
    };
    size_t len = 0;
    cr_assert_eq(hpack_encode_block(&ep.e, f, 1, ep.out, sizeof ep.out, &len), H2_OK);
    cr_assert_eq(ep.out[0], 0x40 | 33, "literal with incremental indexing, name 33: %02x",
                 ep.out[0]);
    cr_assert_eq(ep.e.table.count, 1);
    cr_assert_eq(hpack_decode_block(&ep.d, ep.out, len, &ep.s->s), H2_OK);
    cr_assert(field_is(&ep.s->s.fields[0], "date", "Sun, 06 Dec 2026 23:10:00 GMT"));
    cr_assert_eq(ep.d.table.count, 1);
    for (int i = 0; i < 3; i++) {
        /* The same second: one byte, the newest dynamic entry (62). */
        cr_assert_eq(hpack_encode_block(&ep.e, f, 1, ep.out, sizeof ep.out, &len), H2_OK);
        cr_assert_eq(len, 1);
        cr_assert_eq(ep.out[0], 0x80 | 62);
        cr_assert_eq(ep.e.table.count, 1);
        exchange(&ep, f, 2); /* with content-length, which is not indexed */
        cr_assert_eq(ep.e.table.count, 1);
        cr_assert_eq(ep.d.table.count, 1);
    }
    /* The next second: a new entry, then that one is referenced. */
    f[0] = fld("date", "Sun, 06 Dec 2026 23:10:01 GMT", 0);
    cr_assert_eq(hpack_encode_block(&ep.e, f, 1, ep.out, sizeof ep.out, &len), H2_OK);
    cr_assert_gt(len, 1);
    cr_assert_eq(ep.out[0], 0x40 | 33);
    cr_assert_eq(ep.e.table.count, 2);
    cr_assert_eq(hpack_decode_block(&ep.d, ep.out, len, &ep.s->s), H2_OK);
    cr_assert(field_is(&ep.s->s.fields[0], "date", "Sun, 06 Dec 2026 23:10:01 GMT"));
    cr_assert_eq(ep.d.table.count, 2);
    exchange(&ep, f, 2);
    cr_assert_eq(hpack_encode_block(&ep.e, f, 1, ep.out, sizeof ep.out, &len), H2_OK);
    cr_assert_eq(len, 1);
    cr_assert_eq(ep.out[0], 0x80 | 62);
    /* The old second still decodes from the table (index 63). */
    f[0] = fld("date", "Sun, 06 Dec 2026 23:10:00 GMT", 0);
    exchange(&ep, f, 2);
    cr_assert_eq(ep.e.table.count, 2);
    expect_table_consistent(&ep.e.table);
    hpack_encoder_free(&ep.e);
    hpack_decoder_free(&ep.d);
    free(ep.s);
}
