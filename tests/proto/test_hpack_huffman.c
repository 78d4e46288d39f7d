/* test_hpack_huffman.c - RFC 7541 §5.2 / Appendix B: the generated tables,
 * the encoder, and the state-machine decoder against an independent
 * bit-at-a-time reference decoder. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "hpack_internal.h"

/* --- helpers ------------------------------------------------------------------ */

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; p[0] && p[1]; p += 2) {
        while (*p == ' ')
            p++;
        unsigned v;
        cr_assert_eq(sscanf(p, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
    }
    return n;
}

/* Deterministic generator (xorshift64*). */
static uint64_t rng_state = 0x7541u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Reference decoder: one bit at a time, matching the bits gathered so far
 * against every code of that length.  Independent of the state machine. */
static h2_rv ref_decode(const uint8_t *in, size_t n, uint8_t *out, size_t *out_len)
{
    uint32_t code = 0, len = 0;
    size_t o = 0;
    for (size_t i = 0; i < n * 8; i++) {
        code = (code << 1) | (((uint32_t)in[i / 8] >> (7 - i % 8)) & 1u);
        len++;
        for (uint32_t s = 0; s < 257; s++) {
            if (hpack_huff_len[s] == len && hpack_huff_code[s] == code) {
                if (s == HPACK_HUFF_EOS)
                    return H2_E_COMPRESSION;
                out[o++] = (uint8_t)s;
                code = 0;
                len = 0;
                break;
            }
        }
        if (len > 30)
            return H2_E_COMPRESSION;
    }
    /* What is left must be a prefix of EOS (all ones) of at most 7 bits. */
    if (len > 7 || code != (1u << len) - 1u)
        return H2_E_COMPRESSION;
    *out_len = o;
    return H2_OK;
}

static void check_against_ref(const uint8_t *in, size_t n)
{
    uint8_t a[64], b[64];
    size_t alen = 0, blen = 0, clen = 0;
    h2_rv ra = hpack_huff_decode(in, n, a, sizeof a, &alen);
    h2_rv rb = ref_decode(in, n, b, &blen);
    cr_assert_eq(ra, rb, "input of %zu bytes starting %02x: %s vs reference %s", n, in[0],
                 h2_rv_name(ra), h2_rv_name(rb));
    cr_assert_eq(hpack_huff_decoded_len(in, n, &clen), ra);
    if (ra == H2_OK) {
        cr_assert_eq(alen, blen);
        cr_assert_eq(clen, alen);
        cr_assert_arr_eq(a, b, alen);
    }
}

/* --- the generated tables ---------------------------------------------------- */

Test(hpack_huffman, code_table_is_complete_prefix_code)
{
    uint64_t kraft = 0;
    for (uint32_t s = 0; s < 257; s++) {
        cr_assert(hpack_huff_len[s] >= 5 && hpack_huff_len[s] <= 30, "symbol %u", s);
        cr_assert_lt(hpack_huff_code[s], 1u << hpack_huff_len[s]);
        kraft += 1ull << (30 - hpack_huff_len[s]);
    }
    cr_assert_eq(kraft, 1ull << 30);
    cr_assert_eq(hpack_huff_code[HPACK_HUFF_EOS], 0x3fffffffu);
    cr_assert_eq(hpack_huff_len[HPACK_HUFF_EOS], 30);
    /* Spot checks against Appendix B. */
    cr_assert_eq(hpack_huff_code['0'], 0x0u);
    cr_assert_eq(hpack_huff_len['0'], 5);
    cr_assert_eq(hpack_huff_code[' '], 0x14u);
    cr_assert_eq(hpack_huff_len[' '], 6);
    cr_assert_eq(hpack_huff_code[0], 0x1ff8u);
    cr_assert_eq(hpack_huff_len[0], 13);
    cr_assert_eq(hpack_huff_code[255], 0x3ffffeeu);
    cr_assert_eq(hpack_huff_len[255], 26);
    /* Prefix-free. */
    for (uint32_t a = 0; a < 257; a++)
        for (uint32_t b = 0; b < 257; b++)
            if (a != b && hpack_huff_len[a] <= hpack_huff_len[b])
                cr_assert_neq(hpack_huff_code[b] >> (hpack_huff_len[b] - hpack_huff_len[a]),
                              hpack_huff_code[a], "%u is a prefix of %u", a, b);
}

/* --- RFC examples -------------------------------------------------------------- */

static const struct {
    const char *text;
    const char *hex;
} rfc_strings[] = {
    /* C.4 and C.6 */
    {"www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"},
    {"no-cache", "a8eb10649cbf"},
    {"custom-key", "25a849e95ba97d7f"},
    {"custom-value", "25a849e95bb8e8b4bf"},
    {"302", "6402"},
    {"307", "640eff"},
    {"private", "aec3771a4b"},
    {"Mon, 21 Oct 2013 20:13:21 GMT", "d07abe941054d444a8200595040b8166e082a62d1bff"},
    {"Mon, 21 Oct 2013 20:13:22 GMT", "d07abe941054d444a8200595040b8166e084a62d1bff"},
    {"https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"},
    {"gzip", "9bd9ab"},
    {"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
     "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007"},
};

Test(hpack_huffman, rfc_examples_encode)
{
    for (size_t i = 0; i < sizeof rfc_strings / sizeof rfc_strings[0]; i++) {
        const uint8_t *s = (const uint8_t *)rfc_strings[i].text;
        size_t n = strlen(rfc_strings[i].text);
        uint8_t want[128], got[128];
        size_t wn = unhex(rfc_strings[i].hex, want);
        cr_assert_eq(hpack_huff_encoded_len(s, n), wn, "%s", rfc_strings[i].text);
        uint8_t *end = hpack_huff_encode(got, s, n);
        cr_assert_eq((size_t)(end - got), wn);
        cr_assert_arr_eq(got, want, wn, "%s", rfc_strings[i].text);
    }
}

Test(hpack_huffman, rfc_examples_decode)
{
    for (size_t i = 0; i < sizeof rfc_strings / sizeof rfc_strings[0]; i++) {
        uint8_t in[128], out[128];
        size_t n = unhex(rfc_strings[i].hex, in), len = 0;
        cr_assert_eq(hpack_huff_decode(in, n, out, sizeof out, &len), H2_OK);
        cr_assert_eq(len, strlen(rfc_strings[i].text));
        cr_assert_arr_eq(out, rfc_strings[i].text, len);
    }
}

/* --- round trips --------------------------------------------------------------- */

Test(hpack_huffman, every_byte_alone_and_together)
{
    uint8_t s[256], enc[1024], dec[256];
    for (uint32_t b = 0; b < 256; b++) {
        s[b] = (uint8_t)b;
        uint8_t *e = hpack_huff_encode(enc, &s[b], 1);
        size_t len = 0;
        cr_assert_eq((size_t)(e - enc), (hpack_huff_len[b] + 7u) / 8u);
        cr_assert_eq(hpack_huff_decode(enc, (size_t)(e - enc), dec, 1, &len), H2_OK, "byte %u", b);
        cr_assert_eq(len, 1);
        cr_assert_eq(dec[0], b);
    }
    uint8_t *e = hpack_huff_encode(enc, s, 256);
    size_t len = 0;
    cr_assert_eq((size_t)(e - enc), hpack_huff_encoded_len(s, 256));
    cr_assert_eq(hpack_huff_decode(enc, (size_t)(e - enc), dec, sizeof dec, &len), H2_OK);
    cr_assert_eq(len, 256);
    cr_assert_arr_eq(dec, s, 256);
}

Test(hpack_huffman, random_round_trips)
{
    static uint8_t s[1024], enc[4096], dec[1024];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = rnd() % (iter < 1000 ? 16u : 1024u);
        bool text = iter % 2 == 0; /* half printable, half any byte */
        for (size_t i = 0; i < n; i++)
            s[i] = (uint8_t)(text ? 0x20 + rnd() % 95 : rnd());
        size_t elen = hpack_huff_encoded_len(s, n), len = 0;
        uint8_t *e = hpack_huff_encode(enc, s, n);
        cr_assert_eq((size_t)(e - enc), elen);
        cr_assert_eq(hpack_huff_decode(enc, elen, dec, n, &len), H2_OK);
        cr_assert_eq(len, n);
        cr_assert_arr_eq(dec, s, n);
        cr_assert_eq(hpack_huff_decoded_len(enc, elen, &len), H2_OK);
        cr_assert_eq(len, n);
        if (n > 0) /* one byte short of room: H2_E_LIMIT, never a write past cap */
            cr_assert_eq(hpack_huff_decode(enc, elen, dec, n - 1, &len), H2_E_LIMIT);
    }
}

Test(hpack_huffman, empty_string)
{
    size_t len = 99;
    cr_assert_eq(hpack_huff_encoded_len(NULL, 0), 0);
    cr_assert_eq(hpack_huff_decode(NULL, 0, NULL, 0, &len), H2_OK);
    cr_assert_eq(len, 0);
}

/* --- invalid input (§5.2) ------------------------------------------------------ */

Test(hpack_huffman, invalid_padding_and_eos)
{
    uint8_t out[16];
    size_t len;
    /* 'a' = 00011: 3 bits of padding, which must be ones. */
    const uint8_t ok[] = {0x1f};
    cr_assert_eq(hpack_huff_decode(ok, 1, out, sizeof out, &len), H2_OK);
    cr_assert_eq(len, 1);
    const uint8_t zero_pad[] = {0x18}, mixed_pad[] = {0x1d};
    cr_assert_eq(hpack_huff_decode(zero_pad, 1, out, sizeof out, &len), H2_E_COMPRESSION);
    cr_assert_eq(hpack_huff_decode(mixed_pad, 1, out, sizeof out, &len), H2_E_COMPRESSION);
    /* Padding of 8 bits or more. */
    const uint8_t pad8[] = {0xff}, pad11[] = {0x1f, 0xff};
    cr_assert_eq(hpack_huff_decode(pad8, 1, out, sizeof out, &len), H2_E_COMPRESSION);
    cr_assert_eq(hpack_huff_decode(pad11, 2, out, sizeof out, &len), H2_E_COMPRESSION);
    /* EOS (30 ones), alone or between symbols. */
    const uint8_t eos[] = {0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(hpack_huff_decode(eos, 4, out, sizeof out, &len), H2_E_COMPRESSION);
    const uint8_t a_eos[] = {0x1f, 0xff, 0xff, 0xff, 0xe0}; /* a, EOS, then '0' */
    cr_assert_eq(hpack_huff_decode(a_eos, sizeof a_eos, out, sizeof out, &len), H2_E_COMPRESSION);
    cr_assert_eq(hpack_huff_decoded_len(eos, 4, &len), H2_E_COMPRESSION);
    /* Truncating a valid string inside a long code leaves > 7 bits. */
    uint8_t enc[8];
    const uint8_t sym = 10; /* a 30-bit code */
    hpack_huff_encode(enc, &sym, 1);
    cr_assert_eq(hpack_huff_decode(enc, 2, out, sizeof out, &len), H2_E_COMPRESSION);
}

/* --- exhaustive and random agreement with the reference decoder -------------------- */

Test(hpack_huffman, all_one_and_two_byte_inputs_match_reference)
{
    uint8_t in[2];
    for (uint32_t v = 0; v < 256; v++) {
        in[0] = (uint8_t)v;
        check_against_ref(in, 1);
    }
    for (uint32_t v = 0; v < 65536; v++) {
        in[0] = (uint8_t)(v >> 8);
        in[1] = (uint8_t)v;
        check_against_ref(in, 2);
    }
}

Test(hpack_huffman, random_inputs_match_reference)
{
    uint8_t in[12];
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = 3 + rnd() % 10;
        /* Bias towards ones so that long codes and EOS show up often. */
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)(rnd() % 4 ? rnd() | 0xe0u : rnd());
        check_against_ref(in, n);
    }
}
