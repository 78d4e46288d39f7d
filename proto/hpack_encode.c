/* hpack_encode.c - the HPACK encoder (RFC 7541 §6): the dynamic table's
 * search index, the per-position memo of exact matches, and the block
 * encoding.  The table itself (storage, insertion, eviction) is hpack.c's
 * (hpack_internal.h); contracts in hpack.h.
 */
#include <string.h>

#include "hpack_internal.h"

/* --- Encoder (§6) -------------------------------------------------------------- */

h2_rv hpack_encoder_init(hpack_encoder *e, uint32_t own_max, const h2_mem *mem)
{
    memset(e, 0, sizeof *e);
    uint32_t size = min_u32(own_max, HPACK_DEFAULT_TABLE_SIZE);
    hpack_tab_init(&e->table, size, mem);
    e->own_max = own_max;
    e->pending_min = size;
    e->huff = HPACK_HUFF_AUTO;
    e->signalled_max = HPACK_DEFAULT_TABLE_SIZE;
    return H2_OK;
}

void hpack_encoder_free(hpack_encoder *e)
{
    hpack_tab_free(&e->table);
}

void hpack_encoder_set_peer_table_size(hpack_encoder *e, uint32_t peer_size)
{
    uint32_t size = min_u32(peer_size, e->own_max);
    /* Evict now: if the size grows again before the next block, the peer's
     * decoder still goes through the minimum, and so must our table. */
    hpack_tab_set_max(&e->table, size);
    e->pending_min = min_u32(e->pending_min, size);
    if (peer_size < e->signalled_max || size > e->signalled_max)
        e->update_due = true;
}

size_t hpack_encode_bound(const hpack_field *f, size_t n)
{
    /* Two size updates of a 32-bit value with a 5-bit prefix: 6 bytes each.
     * A field: a name index below 2^28 on a 4-bit prefix (5 bytes) covers a
     * representation byte with a literal name too.  Its strings (name and
     * value, L bytes together): Huffman at 30 bits a byte is never shorter
     * than the raw string, so at most 30 L / 8 + 2 bytes (two roundings up),
     * after two lengths of at most 6 bytes each, or 1 each when L < 32 (then
     * each code is below 127 bytes).  No division or loop per field. */
    uint64_t total = 2 * 6;
    for (size_t i = 0; i < n; i++) {
        uint64_t l = (uint64_t)f[i].name_len + f[i].value_len;
        total += 5 + 2 + (30 * l) / 8 + (l < 32 ? 2 : 12);
    }
    return total > SIZE_MAX ? SIZE_MAX : (size_t)total;
}

/* Values that change with every response (a length, an age, a cookie)
 * would only churn the table: indexing them evicts the entries that repeat.
 * `date` is not one of them: a server's date changes once a second, so it
 * is inserted once a second per connection (65 bytes) and is a one-byte
 * reference for every other response of that second; the stale dates age
 * out of the table in FIFO order like any entry. */
static bool volatile_name(const uint8_t *n, uint32_t len)
{
    switch (len) {
    case 3: return memcmp(n, "age", 3) == 0;
    case 4: return memcmp(n, "etag", 4) == 0;
    case 7: return memcmp(n, "expires", 7) == 0;
    case 10: return memcmp(n, "set-cookie", 10) == 0;
    case 13: return memcmp(n, "last-modified", 13) == 0;
    case 14: return memcmp(n, "content-length", 14) == 0;
    default: return false;
    }
}

/* A field kept out of the table because its value changes per message. */
static bool is_volatile(const hpack_encoder *e, const hpack_field *f)
{
    return e->skip_volatile && volatile_name(f->name, f->name_len);
}

/* Does this field go into the dynamic table?  One answer for
 * reserve_block() and encode_field(); vol is is_volatile(e, f). */
static bool wants_insert(const hpack_encoder *e, const hpack_field *f, bool vol)
{
    if (vol || (f->flags & (HPACK_F_NEVER_INDEX | HPACK_F_NO_INDEX)))
        return false;
    return (uint64_t)f->name_len + f->value_len + HPACK_ENTRY_OVERHEAD <= e->table.max_size;
}

/* Reserve table storage for every field of the block that may be inserted,
 * so that no insertion fails halfway through a block: the live bytes never
 * exceed what is there now plus what is inserted, nor max_size - 32.  A
 * field with a memo hint (memo slots from base on) or a key counts as a
 * possible insertion without a closer look (its hint may miss at encoding time,
 * after an earlier field's insertion evicted the entry): at worst a little
 * more is reserved.  Sets bit i of *vol for a volatile field i < 64 it
 * looked at. */
static h2_rv reserve_block(hpack_encoder *e, const hpack_field *f, size_t n, size_t base,
                           uint64_t *vol)
{
    hpack_table *t = &e->table;
    uint64_t bytes = 0, ents = 0;
    *vol = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i].flags & HPACK_F_ENCODED)
            continue; /* copied: inserts nothing */
        uint64_t b = (uint64_t)f[i].name_len + f[i].value_len;
        if ((f[i].flags & HPACK_F_KEYED) || (base + i < HPACK_MEMO && e->memo[base + i] != 0)) {
            bytes += b;
            ents++;
            continue;
        }
        bool v = is_volatile(e, &f[i]);
        if (v && i < 64)
            *vol |= UINT64_C(1) << i;
        if (!wants_insert(e, &f[i], v))
            continue;
        bytes += b;
        ents++;
    }
    if (ents == 0)
        return H2_OK;
    if (!t->index) {
        uint32_t *index = h2_malloc(t->mem, 2 * INDEX_BUCKETS * sizeof *index);
        if (!index)
            return H2_E_NOMEM;
        memset(index, 0, 2 * INDEX_BUCKETS * sizeof *index);
        t->index = index; /* before the first insertion: it indexes every entry */
    }
    uint64_t bytes_need = t->bytes_used + bytes, ents_need = t->count + ents;
    if (bytes_need > t->max_size - HPACK_ENTRY_OVERHEAD)
        bytes_need = max_u64(t->bytes_used, t->max_size - HPACK_ENTRY_OVERHEAD);
    if (ents_need > t->max_size / HPACK_ENTRY_OVERHEAD)
        ents_need = max_u64(t->count, t->max_size / HPACK_ENTRY_OVERHEAD);
    return hpack_tab_reserve(t, bytes_need, ents_need);
}

/* A multiply-xorshift over eight bytes at a time, continuing from h: the
 * index only needs short chains (a match is always confirmed with a
 * compare), and this is four times cheaper than a byte loop on the 10-30
 * byte strings of typical fields. */
static uint32_t hash_bytes(uint32_t h, const uint8_t *s, uint32_t n)
{
    const uint64_t k = UINT64_C(0x9e3779b97f4a7c15);
    const uint32_t len = n;
    uint64_t x = h ^ ((uint64_t)n << 32);
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        x = (x ^ w) * k;
        x ^= x >> 29;
    }
    if (n) {
        /* The last 1-7 bytes without a byte loop: overlapping loads (the
         * length is in x, so the overlap is unambiguous). */
        uint64_t w;
        if (len >= 8) {
            memcpy(&w, s + n - 8, 8);
        } else if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, s, 4);
            memcpy(&b, s + n - 4, 4);
            w = a | (uint64_t)b << 32;
        } else {
            w = s[0] | (uint64_t)s[n / 2] << 8 | (uint64_t)s[n - 1] << 16;
        }
        x = (x ^ w) * k;
        x ^= x >> 29;
    }
    return (uint32_t)(x ^ (x >> 32));
}

typedef struct match {
    uint32_t exact;      /* index of an entry equal to the field, or 0 */
    uint32_t name;       /* index of an entry with the field's name, or 0 */
    uint32_t name_hash;  /* for the index */
    uint32_t field_hash; /* (when by_value) */
} match;

/* Static entries first: an exact static match, else the static name (the
 * static index never moves and is often smaller).  Then the dynamic table
 * through its index, newest first, for an exact match (by_value) or the
 * name. */
static match lookup(const hpack_table *t, const hpack_field *f, bool by_value)
{
    match m = {0, 0, 0, 0};
    uint32_t s = hpack_static_find_name(f->name, f->name_len);
    if (s != 0) {
        m.name = s;
        if (!by_value)
            return m;
        for (uint32_t i = s; i < s + hpack_static_run[s - 1]; i++) {
            const hpack_field *sf = &hpack_static_table[i - 1];
            if (sf->value_len == f->value_len && bytes_eq(sf->value, f->value, f->value_len)) {
                m.exact = i;
                return m;
            }
        }
    }
    m.name_hash = hash_bytes(2166136261u, f->name, f->name_len);
    m.field_hash = by_value ? hash_bytes(m.name_hash, f->value, f->value_len) : 0;
    if (!t->index)
        return m;
    uint32_t idx = 0;
    const struct hpack_entry *e;
    if (by_value) {
        for (e = follow(t, *field_bucket(t, m.field_hash), &idx); e;
             e = follow(t, e->field_next, &idx)) {
            if (e->field_hash == m.field_hash && e->name_len == f->name_len &&
                e->value_len == f->value_len && ring_eq(t, e->off, f->name, f->name_len) &&
                ring_eq(t, ring_add(t, e->off, e->name_len), f->value, f->value_len)) {
                m.exact = HPACK_STATIC_COUNT + idx;
                return m;
            }
        }
    }
    if (m.name == 0) {
        for (e = follow(t, *name_bucket(t, m.name_hash), &idx); e;
             e = follow(t, e->name_next, &idx)) {
            if (e->name_hash == m.name_hash && e->name_len == f->name_len &&
                ring_eq(t, e->off, f->name, f->name_len)) {
                m.name = HPACK_STATIC_COUNT + idx;
                break;
            }
        }
    }
    return m;
}

static uint8_t *encode_string(uint8_t *p, hpack_huff_mode mode, const uint8_t *s, uint32_t n)
{
    if (mode != HPACK_HUFF_NEVER) {
        size_t hlen = hpack_huff_encoded_len(s, n);
        if (mode == HPACK_HUFF_ALWAYS || hlen <= n) {
            p = hpack_int_encode(p, STR_HUFFMAN, 7, hlen);
            return hpack_huff_encode(p, s, n);
        }
    }
    p = hpack_int_encode(p, 0, 7, n);
    if (n > 0)
        memcpy(p, s, n);
    return p + n;
}

/* The memo's hint for f, confirmed: the index of an entry equal to f, or 0.
 * A hint is only ever a place to look: whatever the table did since, a
 * match is checked byte for byte against the live entry. */
static uint32_t memo_probe(const hpack_encoder *e, uint64_t hint, const hpack_field *f)
{
    if (hint & HPACK_MEMO_STATIC) {
        uint32_t idx = (uint32_t)hint;
        const hpack_field *sf = &hpack_static_table[idx - 1];
        return sf->name_len == f->name_len && sf->value_len == f->value_len &&
                       bytes_eq(sf->name, f->name, f->name_len) &&
                       bytes_eq(sf->value, f->value, f->value_len)
                   ? idx
                   : 0;
    }
    const hpack_table *t = &e->table;
    uint32_t idx = 0;
    const struct hpack_entry *en = follow(t, (uint32_t)hint, &idx);
    if (!en || en->name_len != f->name_len || en->value_len != f->value_len ||
        !ring_eq(t, en->off, f->name, f->name_len) ||
        !ring_eq(t, ring_add(t, en->off, en->name_len), f->value, f->value_len))
        return 0;
    return HPACK_STATIC_COUNT + idx;
}

/* The memo's hint for an exact match at index idx (0: none). */
static uint64_t memo_hint(const hpack_table *t, uint32_t idx)
{
    if (idx == 0)
        return 0;
    if (idx <= HPACK_STATIC_COUNT)
        return HPACK_MEMO_STATIC | idx;
    return t->seq - (idx - HPACK_STATIC_COUNT) + 1; /* the entry's number + 1 */
}

/* Encode f; vol is is_volatile(e, f); memo: f's slot of the memo, or NULL. */
static h2_rv encode_field(hpack_encoder *e, const hpack_field *f, bool vol, uint64_t *memo,
                          uint8_t **pos)
{
    /* A never-indexed value is not compared with the table: it is the kind
     * of value (a credential) whose matches must not leak through timing. */
    bool never = (f->flags & HPACK_F_NEVER_INDEX) != 0;
    /* A volatile field never enters the table (wants_insert), so it cannot
     * be found there by value: look up its name only. */
    match m = lookup(&e->table, f, !never && !vol);
    if (m.exact != 0) {
        if (memo)
            *memo = memo_hint(&e->table, m.exact);
        *pos = hpack_int_encode(*pos, REP_INDEXED, 7, m.exact);
        return H2_OK;
    }
    bool insert = wants_insert(e, f, vol);
    if (memo)
        *memo = insert ? e->table.seq + 1 : 0; /* the entry about to be inserted */
    uint8_t *p = *pos;
    if (insert)
        p = hpack_int_encode(p, REP_INCREMENTAL, 6, m.name);
    else
        p = hpack_int_encode(p, never ? REP_NEVER_INDEXED : REP_NOT_INDEXED, 4, m.name);
    if (m.name == 0)
        p = encode_string(p, e->huff, f->name, f->name_len);
    p = encode_string(p, e->huff, f->value, f->value_len);
    *pos = p;
    /* reserve_block() made room: this does not allocate. */
    return insert ? hpack_tab_insert(&e->table, f->name, f->name_len, f->value, f->value_len,
                                     m.name_hash, m.field_hash, 0)
                  : H2_OK;
}

/* An HPACK_F_KEYED field's slot in keyed[]: its key's, else the one with
 * the older link (to be taken over).  *idx: the index of its entry when
 * that is still live, else 0. */
_Static_assert(HPACK_KEYED == 2, "keyed_slot() picks between two slots");

static inline uint32_t keyed_slot(const hpack_encoder *e, uint32_t key, uint32_t *idx)
{
    *idx = 0;
    uint32_t s = e->keyed[0].key == key ? 0 : e->keyed[1].key == key ? 1 : HPACK_KEYED;
    if (s == HPACK_KEYED)
        return e->keyed[0].link <= e->keyed[1].link ? 0 : 1;
    uint32_t age = 0;
    if (follow(&e->table, e->keyed[s].link, &age))
        *idx = HPACK_STATIC_COUNT + age;
    return s;
}

h2_rv hpack_encode_block(hpack_encoder *e, const hpack_field *f, size_t n, uint8_t *out, size_t cap,
                         size_t *out_len)
{
    if (cap < hpack_encode_bound(f, n)) {
        e->memo_base = 0;
        return H2_E_INVAL;
    }
    return hpack_encode_fields(e, f, n, out, out_len);
}

/* An HPACK_F_ENCODED field's bytes: 16-64 of them (the default `date`
 * and `server` are 34) as two overlapping fixed-size copies, no call. */
static inline uint8_t *copy_encoded(uint8_t *p, const uint8_t *s, uint32_t n)
{
    if (n >= 16 && n <= 32) {
        memcpy(p, s, 16);
        memcpy(p + n - 16, s + n - 16, 16);
    } else if (n > 32 && n <= 64) {
        memcpy(p, s, 32);
        memcpy(p + n - 32, s + n - 32, 32);
    } else if (n) {
        memcpy(p, s, n);
    }
    return p + n;
}

h2_rv hpack_encode_fields(hpack_encoder *e, const hpack_field *f, size_t n, uint8_t *out,
                          size_t *out_len)
{
    size_t base = e->memo_base;
    e->memo_base = 0;
    uint64_t vol;
    h2_rv rv = reserve_block(e, f, n, base, &vol);
    if (rv != H2_OK)
        return rv;
    uint8_t *p = out;
    if (e->update_due) {
        /* §4.2: the smallest size since the last block first, if the table
         * has grown since and the decoder does not already know of a size
         * that small, then the size now. */
        if (e->pending_min < e->table.max_size && e->pending_min < e->signalled_max)
            p = hpack_int_encode(p, REP_SIZE_UPDATE, 5, e->pending_min);
        p = hpack_int_encode(p, REP_SIZE_UPDATE, 5, e->table.max_size);
        e->signalled_max = e->table.max_size;
        e->update_due = false;
    }
    e->pending_min = e->table.max_size;
    for (size_t i = 0; i < n; i++) {
        const hpack_field *fi = &f[i];
        if (fi->flags & HPACK_F_ENCODED) {
            /* Stateless bytes (hpack_encode_stateless): valid at any point
             * after the size updates.  The position's memo keeps its hint
             * (only ever a place to look). */
            p = copy_encoded(p, fi->value, fi->value_len);
            continue;
        }
        uint64_t *memo = base + i < HPACK_MEMO ? &e->memo[base + i] : NULL;
        uint64_t keyed_hint = 0;
        uint32_t slot = 0;
        if (fi->flags & HPACK_F_KEYED) {
            /* Its own memory (keyed[]): an index while its entry lives, else
             * encoded below (never as volatile) and remembered; the
             * position's memo keeps its hint. */
            uint32_t idx;
            slot = keyed_slot(e, fi->digest, &idx);
            if (idx) {
                p = hpack_int_encode(p, REP_INDEXED, 7, idx);
                continue;
            }
            memo = &keyed_hint;
        }
        bool never = (fi->flags & HPACK_F_NEVER_INDEX) != 0;
        if (memo && *memo && !never) {
            uint32_t idx = memo_probe(e, *memo, fi);
            if (idx) {
                p = hpack_int_encode(p, REP_INDEXED, 7, idx);
                continue;
            }
            /* reserve_block() did not classify it */
            vol &= ~(UINT64_C(1) << i);
            vol |= (uint64_t)is_volatile(e, fi) << i;
        }
        bool v = i < 64 ? (vol >> i) & 1 : is_volatile(e, fi);
        rv = encode_field(e, fi, v, never ? NULL : memo, &p);
        if (rv != H2_OK)
            return rv;
        if (never && memo)
            *memo = 0;
        if (memo == &keyed_hint) {
            e->keyed[slot].key = fi->digest;
            e->keyed[slot].link = (keyed_hint & HPACK_MEMO_STATIC) ? 0 : (uint32_t)keyed_hint;
        }
    }
    *out_len = (size_t)(p - out);
    return H2_OK;
}

size_t hpack_encode_stateless(const hpack_field *f, size_t n, uint8_t *out)
{
    uint8_t *p = out;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = hpack_static_find_name(f[i].name, f[i].name_len);
        bool never = (f[i].flags & HPACK_F_NEVER_INDEX) != 0;
        p = hpack_int_encode(p, never ? REP_NEVER_INDEXED : REP_NOT_INDEXED, 4, s);
        if (s == 0)
            p = encode_string(p, HPACK_HUFF_AUTO, f[i].name, f[i].name_len);
        p = encode_string(p, HPACK_HUFF_AUTO, f[i].value, f[i].value_len);
    }
    return (size_t)(p - out);
}
