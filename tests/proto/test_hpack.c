/* test_hpack.c - RFC 7541: integers, the static table, the Appendix C
 * examples both ways, size updates and the encoder's choices.  The dynamic
 * table, the decoder's limits, malformed input and allocation are in
 * test_hpack_table.c; Huffman coding has its own file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpack_internal.h"
#include "hpack_test_util.h"

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
