/* fuzz_hpack.c - libFuzzer target: arbitrary bytes as the header blocks of
 * one connection, through one HPACK decoder.
 *
 * Input layout:
 *   byte 0  bits 0-2  our SETTINGS_HEADER_TABLE_SIZE in force at the start:
 *                     0, 32, 100, 256, 1024, 4096, 16384, 65536
 *           bit 3     before the second block the setting drops to a quarter
 *                     (ACKed): that block must begin with a size update
 *           bit 4     a small sink (2 KiB soft / 8 fields) instead of the
 *                     defaults (64 KiB / 100, hard 4x / 1000)
 *           bit 5     the allocator fails from allocation (byte 1 & 15) on
 *   byte 1  bits 4-5  Huffman mode of the re-encoder (below)
 *           bit 6     the re-encoder's peer changes its table size before each
 *                     block (sizes as above, picked by block number)
 *   then    blocks, each a 2-byte big-endian length and that many bytes (the
 *           last one takes what is left)
 *
 * After every block the sink and the table are checked for consistency;
 * when the block decoded completely its fields are encoded again by our
 * encoder and decoded by a second decoder, which must give them back
 * unchanged.  The first decoder hands out digests (h2_http_field_digest, as
 * the connection's does): every field's must equal the digest of its bytes,
 * whether it was computed now or kept with a table entry.  Decoding stops
 * at the first error, as the connection would.
 * Seeds: tests/fuzz/corpus/hpack/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_http.h"
#include "hpack_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct failing {
    uint32_t attempts, fail_from;
} failing;

static void *f_malloc(size_t n, void *ud)
{
    failing *f = ud;
    return f->attempts++ >= f->fail_from ? NULL : malloc(n);
}
static void *f_realloc(void *p, size_t n, void *ud)
{
    failing *f = ud;
    return f->attempts++ >= f->fail_from ? NULL : realloc(p, n);
}
static void f_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}

enum { FIELDS = 100, BUF = 65536 };
static hpack_field fields[FIELDS], fields2[FIELDS];
static uint8_t buf[BUF], buf2[BUF], out[1u << 20], entry[1u << 17];

static void sink_setup(hpack_sink *s, hpack_field *f, uint8_t *b, bool small)
{
    memset(s, 0, sizeof *s);
    s->fields = f;
    s->buf = b;
    s->fields_cap = small ? 8 : FIELDS;
    s->buf_cap = small ? 2048 : BUF;
    s->soft_fields = s->fields_cap;
    s->soft_list_size = s->buf_cap;
    s->hard_fields = small ? 32 : 1000;
    s->hard_list_size = 4 * s->soft_list_size;
}

/* A field indexed whole from the static table points into it (hpack.h:
 * the sink's contract), not into buf. */
static bool is_static_entry(const hpack_field *f)
{
    for (uint32_t k = 0; k < HPACK_STATIC_COUNT; k++)
        if (f->name == hpack_static_table[k].name && f->value == hpack_static_table[k].value &&
            f->name_len == hpack_static_table[k].name_len &&
            f->value_len == hpack_static_table[k].value_len)
            return true;
    return false;
}

static void check_sink(const hpack_sink *s)
{
    uint64_t bytes = 0;
    CHECK(s->count <= s->fields_cap && s->count <= s->total_fields);
    CHECK(s->buf_used <= s->buf_cap);
    CHECK(s->overflow || s->count == s->total_fields);
    uint64_t whole_static = 0; /* bytes of fields that point into the static table */
    for (uint32_t i = 0; i < s->count; i++) {
        const hpack_field *f = &s->fields[i];
        if (is_static_entry(f)) {
            whole_static += (uint64_t)f->name_len + f->value_len;
        } else {
            CHECK(f->name >= s->buf && f->name + f->name_len <= s->buf + s->buf_used);
            CHECK(f->value == f->name + f->name_len &&
                  f->value + f->value_len <= s->buf + s->buf_used);
        }
        bytes += (uint64_t)f->name_len + f->value_len;
        if (f->flags & HPACK_F_DIGEST)
            CHECK(f->digest == h2_http_field_digest(f->name, f->name_len, f->value, f->value_len));
    }
    CHECK(bytes - whole_static == s->buf_used);
    CHECK(s->list_size >= bytes + HPACK_ENTRY_OVERHEAD * (uint64_t)s->count);
}

static void check_table(const hpack_table *t)
{
    uint64_t size = 0;
    hpack_field f;
    for (uint32_t i = 1; i <= t->count; i++) {
        CHECK(hpack_table_get(t, i, entry, sizeof entry, &f) == H2_OK);
        size += (uint64_t)f.name_len + f.value_len + HPACK_ENTRY_OVERHEAD;
    }
    CHECK(size == t->size && t->size <= t->max_size);
    CHECK(hpack_table_get(t, t->count + 1, entry, sizeof entry, &f) == H2_E_INVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t table_sizes[8] = {0, 32, 100, 256, 1024, 4096, 16384, 65536};
    if (size < 2)
        return 0;
    uint8_t cfg = data[0], cfg2 = data[1];
    data += 2;
    size -= 2;

    failing fl = {0, (cfg & 0x20) ? (uint32_t)(cfg2 & 15) : UINT32_MAX};
    h2_mem mem = {f_malloc, f_realloc, f_free, &fl};
    uint32_t settings = table_sizes[cfg & 7];
    bool small = (cfg & 0x10) != 0;

    hpack_decoder d, d2;
    hpack_encoder e;
    hpack_sink s, s2;
    static uint32_t static_digests[HPACK_STATIC_COUNT];
    hpack_static_digests(h2_http_field_digest, static_digests);
    hpack_decoder_init(&d, settings, &mem);
    hpack_decoder_init(&d2, HPACK_DEFAULT_TABLE_SIZE, NULL);
    hpack_encoder_init(&e, HPACK_DEFAULT_TABLE_SIZE, NULL);
    e.huff = (hpack_huff_mode)((cfg2 >> 4) % 3);
    sink_setup(&s, fields, buf, small);
    s.digest = h2_http_field_digest;
    s.static_digests = static_digests;
    sink_setup(&s2, fields2, buf2, small);

    for (uint32_t block = 0; size > 0; block++) {
        size_t len = size >= 2 ? (size_t)data[0] << 8 | data[1] : 0;
        size_t skip = size >= 2 ? 2 : size;
        data += skip;
        size -= skip;
        if (len > size)
            len = size;
        if (block == 1 && (cfg & 0x8))
            hpack_decoder_set_settings_max(&d, settings / 4);
        if (cfg2 & 0x40) { /* SETTINGS from d2's side, ACKed, seen by e */
            uint32_t peer = table_sizes[(block + cfg2) & 7];
            hpack_decoder_set_settings_max(&d2, peer);
            hpack_encoder_set_peer_table_size(&e, peer);
        }

        h2_rv rv = hpack_decode_block(&d, data, len, &s);
        data += len;
        size -= len;
        CHECK(rv == H2_OK || rv == H2_E_COMPRESSION || rv == H2_E_LIMIT || rv == H2_E_NOMEM);
        check_table(&d.table);
        if (rv != H2_OK)
            break;
        check_sink(&s);
        if (s.overflow)
            continue;

        /* Our encoder and a second decoder must carry the fields unchanged. */
        size_t olen = 0;
        CHECK(hpack_encode_bound(s.fields, s.count) <= sizeof out);
        CHECK(hpack_encode_block(&e, s.fields, s.count, out, sizeof out, &olen) == H2_OK);
        CHECK(olen <= hpack_encode_bound(s.fields, s.count));
        CHECK(hpack_decode_block(&d2, out, olen, &s2) == H2_OK);
        CHECK(s2.count == s.count && !s2.overflow);
        for (uint32_t i = 0; i < s.count; i++) {
            const hpack_field *a = &s.fields[i], *b = &s2.fields[i];
            CHECK(a->name_len == b->name_len && a->value_len == b->value_len &&
                  (a->flags & ~HPACK_F_DIGEST) == b->flags);
            /* (name and value are not adjacent for a field from the static table) */
            CHECK(memcmp(a->name, b->name, a->name_len) == 0 &&
                  (a->value_len == 0 || memcmp(a->value, b->value, a->value_len) == 0));
        }
        CHECK(e.table.count == d2.table.count && e.table.size == d2.table.size);
    }

    hpack_decoder_free(&d);
    hpack_decoder_free(&d2);
    hpack_encoder_free(&e);
    return 0;
}
