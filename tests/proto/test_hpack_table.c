/* test_hpack_table.c - RFC 7541: the dynamic table (against a model under
 * random traffic), the decoder's limits, malformed input, allocation
 * behaviour and what the encoder indexes (see test_hpack.c for the rest). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpack_internal.h"
#include "hpack_test_util.h"

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
