/* hpack.c - RFC 7541: integers, the static and dynamic tables and the
 * decoder.  The encoder is in hpack_encode.c, Huffman coding in
 * hpack_huffman.c, the RFC's tables in the generated hpack_tables.c.
 *
 * The dynamic table keeps the bytes of its entries (name then value, back
 * to back) in one ring and the entry records in another.  Both are powers
 * of two, allocated on the first insertion and grown by copying into a
 * fresh buffer, which also unwraps them.  Eviction is arithmetic on
 * counters; insertion writes at the head.  Once the rings have reached what
 * a connection's traffic needs, neither the decoder nor the encoder
 * allocates again.  The encoder's table adds a hash index over the entries
 * (field_bucket() in hpack_internal.h), so that a field is matched in a step or two rather
 * than by scanning up to 128 entries.
 */
#include <string.h>

#include "hpack_internal.h"

enum {
    MIN_RING_BYTES = 128,
    MIN_RING_ENTRIES = 8,
};

/* The largest ring allocated.  Only a single field of 2 GiB could need
 * more; it gets H2_E_NOMEM. */
#define RING_MAX_BYTES (UINT32_C(1) << 31)

/* --- Integers (§5.1) ---------------------------------------------------------- */

uint8_t *hpack_int_encode(uint8_t *p, uint8_t first_byte, uint8_t prefix_bits, uint64_t value)
{
    uint32_t max = (1u << prefix_bits) - 1u;
    if (value < max) {
        *p++ = (uint8_t)((first_byte & ~max) | (uint32_t)value);
        return p;
    }
    *p++ = (uint8_t)(first_byte | max);
    value -= max;
    while (value >= 0x80) {
        *p++ = (uint8_t)(0x80u | (value & 0x7fu));
        value >>= 7;
    }
    *p++ = (uint8_t)value;
    return p;
}

h2_rv hpack_int_decode(const uint8_t **pos, const uint8_t *end, uint8_t prefix_bits, uint32_t max,
                       uint32_t *out)
{
    const uint8_t *p = *pos;
    if (p == end)
        return H2_E_AGAIN;
    uint32_t mask = (1u << prefix_bits) - 1u;
    uint64_t v = *p++ & mask;
    if (v == mask) {
        /* Five continuation bytes carry 35 bits, enough for any 32-bit value
         * whatever the prefix; a sixth can only be overlong or too large.
         * The running value is checked after each byte, so an oversized
         * integer is rejected before its end arrives. */
        for (uint32_t shift = 0;; shift += 7) {
            if (shift > 28)
                return H2_E_COMPRESSION;
            if (p == end)
                return H2_E_AGAIN;
            uint8_t b = *p++;
            v += (uint64_t)(b & 0x7fu) << shift;
            if (v > max)
                return H2_E_COMPRESSION;
            if (!(b & 0x80u))
                break;
        }
    } else if (v > max) {
        return H2_E_COMPRESSION;
    }
    *out = (uint32_t)v;
    *pos = p;
    return H2_OK;
}

/* --- Static table (§2.3.1, Appendix A) ---------------------------------------- */

const hpack_field *hpack_static_get(uint32_t idx)
{
    return idx >= 1 && idx <= HPACK_STATIC_COUNT ? &hpack_static_table[idx - 1] : NULL;
}

/* --- Dynamic table (§2.3.2, §4) ----------------------------------------------- */

/* Offset of the oldest entry's bytes. */
static inline uint32_t ring_tail(const hpack_table *t)
{
    return (t->bytes_head - t->bytes_used) & (t->bytes_cap - 1);
}

/* The ring helpers split a run of bytes where it wraps past the end. */
static void ring_read(const hpack_table *t, uint32_t off, uint8_t *dst, uint32_t len)
{
    if (len == 0)
        return;
    uint32_t first = t->bytes_cap - off;
    if (len <= first) {
        memcpy(dst, t->bytes + off, len);
        return;
    }
    memcpy(dst, t->bytes + off, first);
    memcpy(dst + first, t->bytes, len - first);
}

static void ring_write(hpack_table *t, uint32_t off, const uint8_t *src, uint32_t len)
{
    if (len == 0)
        return;
    uint32_t first = t->bytes_cap - off;
    if (len <= first) {
        memcpy(t->bytes + off, src, len);
        return;
    }
    memcpy(t->bytes + off, src, first);
    memcpy(t->bytes, src + first, len - first);
}

void hpack_tab_init(hpack_table *t, uint32_t max_size, const h2_mem *mem)
{
    memset(t, 0, sizeof *t);
    t->max_size = max_size;
    t->mem = mem ? mem : h2_mem_default();
}

void hpack_tab_free(hpack_table *t)
{
    h2_free(t->mem, t->bytes);
    h2_free(t->mem, t->ents);
    h2_free(t->mem, t->index);
    hpack_tab_init(t, 0, t->mem);
}

/* Evict everything; the storage stays for the next insertions. */
static void table_clear(hpack_table *t)
{
    t->count = 0;
    t->size = 0;
    t->bytes_used = 0;
    if (t->index)
        memset(t->index, 0, 2 * INDEX_BUCKETS * sizeof *t->index);
}

/* Evict the n oldest entries. */
static void evict(hpack_table *t, uint32_t n)
{
    for (; n > 0; n--) {
        const struct hpack_entry *e = entry_at(t, t->count);
        if (t->index) {
            uint32_t link = t->seq - t->count + 1;
            uint32_t *b = field_bucket(t, e->field_hash);
            if (*b == link)
                *b = 0;
            b = name_bucket(t, e->name_hash);
            if (*b == link)
                *b = 0;
        }
        t->bytes_used -= e->name_len + e->value_len;
        t->size -= e->name_len + e->value_len + HPACK_ENTRY_OVERHEAD;
        t->count--;
    }
}

/* A new maximum (§4.3): evict until the table fits. */
void hpack_tab_set_max(hpack_table *t, uint32_t max_size)
{
    t->max_size = max_size;
    uint32_t n = 0;
    for (uint32_t size = t->size; size > max_size; n++) {
        const struct hpack_entry *e = entry_at(t, t->count - n);
        size -= e->name_len + e->value_len + HPACK_ENTRY_OVERHEAD;
    }
    evict(t, n);
}

static uint32_t pow2_at_least(uint64_t n, uint32_t start)
{
    uint32_t r = start;
    while (r < n)
        r <<= 1;
    return r;
}

/* Make room for bytes_need entry bytes and ents_need entries.  Both new
 * buffers are allocated before either replaces the old one, so H2_E_NOMEM
 * leaves the table as it was. */
h2_rv hpack_tab_grow(hpack_table *t, uint64_t bytes_need, uint64_t ents_need)
{
    uint32_t bcap = t->bytes_cap, ecap = t->ents_cap;
    if (bytes_need > bcap) {
        if (bytes_need > RING_MAX_BYTES)
            return H2_E_NOMEM;
        bcap = pow2_at_least(bytes_need, bcap ? bcap * 2 : MIN_RING_BYTES);
    }
    if (ents_need > ecap) /* at most max_size / 32 + 1, below 2^28 */
        ecap = pow2_at_least(ents_need, ecap ? ecap * 2 : MIN_RING_ENTRIES);
    if (bcap == t->bytes_cap && ecap == t->ents_cap)
        return H2_OK;

    uint8_t *nb = NULL;
    struct hpack_entry *ne = NULL;
    if (bcap != t->bytes_cap && !(nb = h2_malloc(t->mem, bcap)))
        return H2_E_NOMEM;
    if (ecap != t->ents_cap && !(ne = h2_malloc(t->mem, (size_t)ecap * sizeof *ne))) {
        h2_free(t->mem, nb);
        return H2_E_NOMEM;
    }
    if (nb) {
        /* Unwrap: the oldest entry's bytes move to offset 0. */
        uint32_t tail = ring_tail(t);
        ring_read(t, tail, nb, t->bytes_used);
        for (uint32_t i = 1; i <= t->count; i++) {
            struct hpack_entry *e = entry_at(t, i);
            e->off = (e->off - tail) & (t->bytes_cap - 1);
        }
        h2_free(t->mem, t->bytes);
        t->bytes = nb;
        t->bytes_cap = bcap;
        t->bytes_head = t->bytes_used & (bcap - 1);
    }
    if (ne) {
        /* Entries keep their numbers, hence the index's links stay valid. */
        for (uint32_t i = 1; i <= t->count; i++)
            ne[(t->seq - i) & (ecap - 1)] = *entry_at(t, i);
        h2_free(t->mem, t->ents);
        t->ents = ne;
        t->ents_cap = ecap;
    }
    return H2_OK;
}

/* Insert (name, value) as the newest entry (§4.4).  An entry larger than the
 * maximum empties the table and is not inserted; that is not an error.
 * name and value must not point into t.  The hashes are the index's (0 in a
 * table without one).  H2_E_NOMEM leaves t unchanged. */
h2_rv hpack_tab_insert(hpack_table *t, const uint8_t *name, uint32_t name_len, const uint8_t *value,
                       uint32_t value_len, uint32_t name_hash, uint32_t field_hash, uint32_t digest)
{
    uint64_t bytes = (uint64_t)name_len + value_len;
    uint64_t size = bytes + HPACK_ENTRY_OVERHEAD;
    if (size > t->max_size) {
        table_clear(t);
        return H2_OK;
    }
    /* Work out what the insertion evicts before evicting anything, so that
     * a failed allocation leaves the table as it was. */
    uint32_t ev = 0, ev_bytes = 0;
    uint64_t left = t->size;
    while (left + size > t->max_size) {
        const struct hpack_entry *e = entry_at(t, t->count - ev);
        ev_bytes += e->name_len + e->value_len;
        left -= (uint64_t)e->name_len + e->value_len + HPACK_ENTRY_OVERHEAD;
        ev++;
    }
    /* The rings are unwrapped, if they grow, before the eviction is
     * applied: ask for room for the entries as they are now, too. */
    h2_rv rv = hpack_tab_reserve(t, max_u64(t->bytes_used, t->bytes_used - ev_bytes + bytes),
                                 max_u64(t->count, (uint64_t)t->count - ev + 1));
    if (rv != H2_OK)
        return rv;
    evict(t, ev);

    uint32_t off = t->bytes_head;
    ring_write(t, off, name, name_len);
    ring_write(t, ring_add(t, off, name_len), value, value_len);
    struct hpack_entry *e = &t->ents[t->seq & (t->ents_cap - 1)];
    e->off = off;
    e->name_len = name_len;
    e->value_len = value_len;
    e->name_hash = name_hash;
    e->field_hash = field_hash;
    e->digest = digest;
    if (t->index) {
        /* Entry number seq; once in 2^32 insertions its link is 0 and it is
         * not found: only a missed match. */
        uint32_t link = t->seq + 1;
        uint32_t *b = field_bucket(t, field_hash);
        e->field_next = *b;
        *b = link;
        b = name_bucket(t, name_hash);
        e->name_next = *b;
        *b = link;
    }
    t->seq++;
    t->count++;
    t->bytes_head = ring_add(t, off, (uint32_t)bytes);
    t->bytes_used += (uint32_t)bytes;
    t->size += (uint32_t)size;
    return H2_OK;
}

h2_rv hpack_table_get(const hpack_table *t, uint32_t idx, uint8_t *buf, size_t cap,
                      hpack_field *out)
{
    if (idx == 0 || idx > t->count)
        return H2_E_INVAL;
    const struct hpack_entry *e = entry_at(t, idx);
    if ((uint64_t)e->name_len + e->value_len > cap)
        return H2_E_INVAL;
    ring_read(t, e->off, buf, e->name_len);
    ring_read(t, ring_add(t, e->off, e->name_len), buf + e->name_len, e->value_len);
    out->name = buf;
    out->value = buf + e->name_len;
    out->name_len = e->name_len;
    out->value_len = e->value_len;
    out->flags = 0;
    return H2_OK;
}

/* --- Decoder (§3, §6) -------------------------------------------------------- */

/* Where one string of a field comes from: raw bytes (the input or the static
 * table), Huffman-coded bytes in the input, or a dynamic table entry. */
typedef enum src_kind { SRC_RAW, SRC_HUFF, SRC_RING } src_kind;
typedef struct strsrc {
    const uint8_t *p; /* SRC_RAW, SRC_HUFF */
    uint32_t len;     /* decoded length; for SRC_HUFF the encoded length */
    uint32_t off;     /* SRC_RING */
    src_kind kind;
} strsrc;

/* Name and (if value) value of entry idx, already checked to exist. */
static void entry_src(const hpack_table *t, uint32_t idx, strsrc *name, strsrc *value)
{
    if (idx <= HPACK_STATIC_COUNT) {
        const hpack_field *f = &hpack_static_table[idx - 1];
        *name = (strsrc){f->name, f->name_len, 0, SRC_RAW};
        if (value)
            *value = (strsrc){f->value, f->value_len, 0, SRC_RAW};
        return;
    }
    const struct hpack_entry *e = entry_at(t, idx - HPACK_STATIC_COUNT);
    *name = (strsrc){NULL, e->name_len, e->off, SRC_RING};
    if (value)
        *value = (strsrc){NULL, e->value_len, ring_add(t, e->off, e->name_len), SRC_RING};
}

/* A string literal (§5.2): its length is checked against the input before
 * anything else, so nothing is read past end. */
static h2_rv parse_string(const uint8_t **pos, const uint8_t *end, strsrc *s)
{
    const uint8_t *p = *pos;
    uint32_t n;
    if (p == end)
        return H2_E_COMPRESSION;
    bool huff = (*p & STR_HUFFMAN) != 0;
    if (hpack_int_decode(&p, end, 7, UINT32_MAX, &n) != H2_OK || n > (size_t)(end - p))
        return H2_E_COMPRESSION;
    *s = (strsrc){p, n, 0, huff ? SRC_HUFF : SRC_RAW};
    *pos = p + n;
    return H2_OK;
}

/* The least the string can decode to: a Huffman code is at most 30 bits. */
static inline uint64_t src_min_len(const strsrc *s)
{
    return s->kind == SRC_HUFF ? (uint64_t)s->len * 8 / 30 : s->len;
}

/* Decode or copy s into dst[0..room).  H2_E_LIMIT if it does not fit. */
static h2_rv src_put(const hpack_table *t, const strsrc *s, uint8_t *dst, uint32_t room,
                     uint32_t *len)
{
    if (s->kind == SRC_HUFF) {
        size_t n;
        h2_rv rv = hpack_huff_decode(s->p, s->len, dst, room, &n);
        if (rv == H2_OK)
            *len = (uint32_t)n; /* n <= room */
        return rv;
    }
    if (s->len > room)
        return H2_E_LIMIT;
    if (s->kind == SRC_RING)
        ring_read(t, s->off, dst, s->len);
    else if (s->len > 0)
        memcpy(dst, s->p, s->len);
    *len = s->len;
    return H2_OK;
}

/* Name then value into dst[0..room), back to back. */
static h2_rv put_field(const hpack_table *t, const strsrc *name, const strsrc *value, uint8_t *dst,
                       uint32_t room, uint32_t *name_len, uint32_t *value_len)
{
    h2_rv rv = src_put(t, name, dst, room, name_len);
    if (rv == H2_OK)
        rv = src_put(t, value, dst ? dst + *name_len : NULL, room - *name_len, value_len);
    return rv;
}

/* The decoded length of s without keeping it; validates Huffman. */
static h2_rv src_measure(const strsrc *s, uint32_t *len)
{
    if (s->kind != SRC_HUFF) {
        *len = s->len;
        return H2_OK;
    }
    size_t n;
    h2_rv rv = hpack_huff_decoded_len(s->p, s->len, &n);
    if (rv == H2_OK && n > UINT32_MAX)
        rv = H2_E_LIMIT; /* unreachable under any hard_list_size */
    if (rv == H2_OK)
        *len = (uint32_t)n;
    return rv;
}

/* Count a decoded field against the sink's limits.  H2_E_LIMIT past a hard
 * limit.  Past a soft limit, or when the field does not fit the storage,
 * the sink overflows: neither this field nor any later one of the block is
 * stored.  *store: whether to store this one. */
static h2_rv account(hpack_sink *sink, uint32_t name_len, uint32_t value_len, bool *store)
{
    uint64_t bytes = (uint64_t)name_len + value_len;
    sink->total_fields++;
    sink->list_size += bytes + HPACK_ENTRY_OVERHEAD;
    if (sink->total_fields > sink->hard_fields || sink->list_size > sink->hard_list_size)
        return H2_E_LIMIT;
    if (!sink->overflow &&
        (sink->total_fields > sink->soft_fields || sink->list_size > sink->soft_list_size ||
         !sink->fields || !sink->buf || sink->count >= sink->fields_cap ||
         bytes > sink->buf_cap - sink->buf_used))
        sink->overflow = true;
    *store = !sink->overflow;
    return H2_OK;
}

/* Append the field whose strings were just put at buf + buf_used. */
static void store_field(hpack_sink *sink, uint32_t name_len, uint32_t value_len, uint8_t flags,
                        uint32_t digest)
{
    uint8_t *s = sink->buf + sink->buf_used;
    hpack_field *f = &sink->fields[sink->count++];
    f->name = s;
    f->value = s + name_len;
    f->name_len = name_len;
    f->value_len = value_len;
    f->flags = flags;
    f->digest = digest;
    sink->buf_used += name_len + value_len;
}

static h2_rv scratch_reserve(hpack_decoder *d, uint32_t n)
{
    if (n <= d->scratch_cap)
        return H2_OK;
    uint8_t *s = h2_malloc(d->table.mem, n);
    if (!s)
        return H2_E_NOMEM;
    h2_free(d->table.mem, d->scratch);
    d->scratch = s;
    d->scratch_cap = n;
    return H2_OK;
}

/* §6.1.  The field's size is known from the table, so it is counted before
 * a byte is copied: a block referencing a 4 KiB entry a thousand times
 * costs a thousand integer decodes, then H2_E_LIMIT. */
static h2_rv decode_indexed(hpack_decoder *d, hpack_sink *sink, const uint8_t **pos,
                            const uint8_t *end)
{
    uint32_t idx, name_len, value_len;
    strsrc name, value;
    bool store;
    if (hpack_int_decode(pos, end, 7, HPACK_STATIC_COUNT + d->table.count, &idx) != H2_OK ||
        idx == 0)
        return H2_E_COMPRESSION;
    entry_src(&d->table, idx, &name, &value);
    h2_rv rv = account(sink, name.len, value.len, &store);
    if (rv != H2_OK || !store)
        return rv;
    if (idx <= HPACK_STATIC_COUNT) {
        /* The static table outlives every block: point at it, no copy. */
        hpack_field *f = &sink->fields[sink->count++];
        *f = hpack_static_table[idx - 1];
        f->flags = sink->digest ? HPACK_F_DIGEST : 0;
        f->digest = sink->digest ? sink->static_digests[idx - 1] : 0;
        return H2_OK;
    }
    /* Cannot fail: account() checked the room. */
    rv = put_field(&d->table, &name, &value, sink->buf + sink->buf_used, name.len + value.len,
                   &name_len, &value_len);
    if (rv == H2_OK) {
        uint32_t digest = sink->digest ? entry_at(&d->table, idx - HPACK_STATIC_COUNT)->digest : 0;
        store_field(sink, name_len, value_len, sink->digest ? HPACK_F_DIGEST : 0, digest);
    }
    return rv;
}

/* §6.2.  Strings are put in buf's free tail, where the field stays if it is
 * stored, and from where an incremental field is copied into the table.  A
 * field that is not stored but must enter the table, and does not fit in
 * the tail, goes through the scratch buffer; one that is neither stored nor
 * inserted is only validated and measured. */
static h2_rv decode_literal(hpack_decoder *d, hpack_sink *sink, const uint8_t **pos,
                            const uint8_t *end)
{
    hpack_table *t = &d->table;
    uint8_t first = **pos;
    bool incr = (first & REP_INCREMENTAL) != 0;
    uint8_t flags = !incr && (first & REP_NEVER_INDEXED) ? HPACK_F_NEVER_INDEX : 0;
    uint32_t idx;
    strsrc name, value;
    if (hpack_int_decode(pos, end, incr ? 6 : 4, HPACK_STATIC_COUNT + t->count, &idx) != H2_OK)
        return H2_E_COMPRESSION;
    if (idx != 0)
        entry_src(t, idx, &name, NULL);
    else if (parse_string(pos, end, &name) != H2_OK)
        return H2_E_COMPRESSION;
    if (parse_string(pos, end, &value) != H2_OK)
        return H2_E_COMPRESSION;

    /* The hard limits, on what is known before decoding. */
    uint64_t min_size = src_min_len(&name) + src_min_len(&value) + HPACK_ENTRY_OVERHEAD;
    if (sink->total_fields >= sink->hard_fields ||
        sink->list_size + min_size > sink->hard_list_size)
        return H2_E_LIMIT;
    bool may_store = !sink->overflow && sink->total_fields < sink->soft_fields &&
                     sink->list_size + min_size <= sink->soft_list_size;

    uint8_t *staged = NULL; /* name then value, when kept somewhere */
    uint32_t name_len = 0, value_len = 0;
    bool in_buf = false;
    h2_rv rv = H2_E_LIMIT;
    if ((may_store || incr) && sink->buf) {
        staged = sink->buf + sink->buf_used;
        rv = put_field(t, &name, &value, staged, sink->buf_cap - sink->buf_used, &name_len,
                       &value_len);
        in_buf = rv == H2_OK;
    }
    if (rv == H2_E_LIMIT && incr && t->max_size >= HPACK_ENTRY_OVERHEAD) {
        /* Anything longer than max_size - 32 would not be inserted (§4.4). */
        uint32_t room = t->max_size - HPACK_ENTRY_OVERHEAD;
        rv = scratch_reserve(d, room);
        if (rv == H2_OK) {
            staged = d->scratch;
            rv = put_field(t, &name, &value, staged, room, &name_len, &value_len);
        }
    }
    if (rv == H2_E_LIMIT) {
        staged = NULL;
        rv = src_measure(&name, &name_len);
        if (rv == H2_OK)
            rv = src_measure(&value, &value_len);
    }
    if (rv != H2_OK)
        return rv;

    bool store;
    rv = account(sink, name_len, value_len, &store);
    if (rv != H2_OK)
        return rv;
    /* store implies in_buf: account() requires the room put_field() had. */
    store = store && in_buf;
    uint32_t digest = 0;
    if (sink->digest && staged && (store || incr))
        digest = sink->digest(staged, name_len, staged + name_len, value_len);
    if (store)
        store_field(sink, name_len, value_len, flags | (sink->digest ? HPACK_F_DIGEST : 0), digest);
    if (!incr)
        return H2_OK;
    /* Not staged means too large for the table: hpack_tab_insert() empties it
     * without reading the strings. */
    return hpack_tab_insert(t, staged, name_len, staged ? staged + name_len : NULL, value_len, 0, 0,
                            digest);
}

/* §6.3; the caller has checked that no field came before. */
static h2_rv decode_size_update(hpack_decoder *d, const uint8_t **pos, const uint8_t *end)
{
    uint32_t size;
    uint32_t max = d->update_due ? d->due_min : d->settings_max;
    if (hpack_int_decode(pos, end, 5, max, &size) != H2_OK)
        return H2_E_COMPRESSION;
    d->update_due = false;
    hpack_tab_set_max(&d->table, size);
    return H2_OK;
}

h2_rv hpack_decoder_init(hpack_decoder *d, uint32_t settings_max, const h2_mem *mem)
{
    memset(d, 0, sizeof *d);
    hpack_tab_init(&d->table, settings_max, mem);
    d->settings_max = settings_max;
    d->due_min = settings_max;
    return H2_OK;
}

void hpack_decoder_free(hpack_decoder *d)
{
    h2_free(d->table.mem, d->scratch);
    d->scratch = NULL;
    d->scratch_cap = 0;
    hpack_tab_free(&d->table);
}

void hpack_static_digests(hpack_digest_fn fn, uint32_t *out)
{
    for (uint32_t i = 0; i < HPACK_STATIC_COUNT; i++) {
        const hpack_field *f = &hpack_static_table[i];
        out[i] = fn(f->name, f->name_len, f->value, f->value_len);
    }
}

void hpack_decoder_set_settings_max(hpack_decoder *d, uint32_t settings_max)
{
    d->settings_max = settings_max;
    if (settings_max < d->table.max_size) {
        d->due_min = d->update_due ? min_u32(d->due_min, settings_max) : settings_max;
        d->update_due = true;
    }
}

h2_rv hpack_decode_block(hpack_decoder *d, const uint8_t *in, size_t len, hpack_sink *sink)
{
    sink->count = 0;
    sink->buf_used = 0;
    sink->total_fields = 0;
    sink->list_size = 0;
    sink->overflow = false;
    if (len == 0)
        return d->update_due ? H2_E_COMPRESSION : H2_OK;

    const uint8_t *p = in, *end = in + len;
    bool field_seen = false;
    while (p < end) {
        h2_rv rv;
        if ((*p & 0xe0u) == REP_SIZE_UPDATE) {
            if (field_seen)
                return H2_E_COMPRESSION; /* §4.2: only at the start of a block */
            rv = decode_size_update(d, &p, end);
        } else if (d->update_due) {
            return H2_E_COMPRESSION; /* §4.2: the block must begin with an update */
        } else {
            field_seen = true;
            rv = (*p & REP_INDEXED) ? decode_indexed(d, sink, &p, end)
                                    : decode_literal(d, sink, &p, end);
        }
        if (rv != H2_OK)
            return rv;
    }
    return d->update_due ? H2_E_COMPRESSION : H2_OK;
}
