/* hpack_internal.h - what hpack.c, hpack_huffman.c, the generated tables
 * and the HPACK tests share, and nothing outside them should use.
 */
#ifndef SPINDLE_HPACK_INTERNAL_H
#define SPINDLE_HPACK_INTERNAL_H

#include <string.h>

#include "hpack.h"

/* --- Generated: hpack_tables.c (scripts/gen_hpack_tables.py) --------------- */

/* Appendix A; hpack_static_table[i] is static index i + 1. */
extern const hpack_field hpack_static_table[HPACK_STATIC_COUNT];
/* Entries from index i + 1 on that share its name, itself included: Appendix A
 * lists the entries of one name together (":status" 8..14). */
extern const uint8_t hpack_static_run[HPACK_STATIC_COUNT];
/* First static index whose name is name[0..len), or 0: one hash probe and
 * one memcmp. */
uint32_t hpack_static_find_name(const uint8_t *name, uint32_t len);

/* Appendix B: symbol 0..255 and EOS (256); codes aligned to bit 0. */
#define HPACK_HUFF_EOS 256u
extern const uint32_t hpack_huff_code[257];
extern const uint8_t hpack_huff_len[257];

/* The Huffman decoder consumes a nibble at a time.  A state is an internal
 * node of the code tree (256 of them, root = 0); hpack_huff_fsm[state][nibble]
 * gives the next state, whether a symbol was completed (a nibble completes at
 * most one: codes are at least 5 bits), and whether the input may end there
 * (the bits since the last symbol are at most 7 ones: valid padding). */
enum {
    HPACK_HUFF_SYM = 0x1,    /* sym was decoded */
    HPACK_HUFF_ACCEPT = 0x2, /* the string may end after this nibble */
    HPACK_HUFF_FAIL = 0x4,   /* EOS was decoded: COMPRESSION_ERROR (§5.2) */
};
typedef struct hpack_huff_step {
    uint8_t next;
    uint8_t flags;
    uint8_t sym;
} hpack_huff_step;
extern const hpack_huff_step hpack_huff_fsm[256][16];

/* --- hpack_huffman.c ---------------------------------------------------------- */

/* Validate n Huffman-coded bytes and count the decoded length without writing
 * it anywhere: for strings the decoder must check but will not keep.
 * H2_OK or H2_E_COMPRESSION as hpack_huff_decode(). */
h2_rv hpack_huff_decoded_len(const uint8_t *in, size_t n, size_t *out_len);

/* --- hpack.c ---------------------------------------------------------------- */

/* One dynamic table entry: its name and value lie back to back in the byte
 * ring from off (masked), possibly wrapping past the end of the ring.  The
 * rest serves the encoder's search index (hpack.c); the decoder never
 * searches and leaves it 0. */
struct hpack_entry {
    uint32_t off;
    uint32_t name_len;
    uint32_t value_len;
    uint32_t name_hash;  /* of the name */
    uint32_t field_hash; /* of name and value */
    uint32_t name_next;  /* the next older entry in its chains: number + 1, */
    uint32_t field_next; /* or 0 */
    uint32_t digest;     /* decoder: the digest of name and value (0 without a digest fn) */
};

/* Entry idx of t (1 = newest).  Its name and value are copied to buf
 * (name then value; they may wrap in the ring, so no pointer into it is
 * handed out) and out points there.  H2_E_INVAL when idx is out of range or
 * cap is too small.  For tests and debugging. */
h2_rv hpack_table_get(const hpack_table *t, uint32_t idx, uint8_t *buf, size_t cap,
                      hpack_field *out);

/* --- Shared by hpack.c (tables, decoder) and hpack_encode.c (encoder) ------ */

enum {
    /* Field representations (§6): first-byte patterns and prefix sizes. */
    REP_INDEXED = 0x80,       /* §6.1, 7-bit index */
    REP_INCREMENTAL = 0x40,   /* §6.2.1, 6-bit name index */
    REP_SIZE_UPDATE = 0x20,   /* §6.3, 5-bit size */
    REP_NEVER_INDEXED = 0x10, /* §6.2.3, 4-bit name index */
    REP_NOT_INDEXED = 0x00,   /* §6.2.2, 4-bit name index */
    STR_HUFFMAN = 0x80,       /* §5.2, 7-bit length */
};

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}
static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* memcmp() that accepts NULL for empty strings. */
static inline bool bytes_eq(const uint8_t *a, const uint8_t *b, uint32_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

/* Entry i, 1 = newest.  Entry number s (counting insertions) sits at
 * ents[s & (ents_cap - 1)]; the newest is number seq - 1. */
static inline struct hpack_entry *entry_at(const hpack_table *t, uint32_t i)
{
    return &t->ents[(t->seq - i) & (t->ents_cap - 1)];
}

static inline uint32_t ring_add(const hpack_table *t, uint32_t off, uint32_t n)
{
    return (off + n) & (t->bytes_cap - 1);
}

static inline bool ring_eq(const hpack_table *t, uint32_t off, const uint8_t *s, uint32_t len)
{
    if (len == 0)
        return true;
    uint32_t first = t->bytes_cap - off;
    if (len <= first)
        return memcmp(t->bytes + off, s, len) == 0;
    return memcmp(t->bytes + off, s, first) == 0 && memcmp(t->bytes, s + first, len - first) == 0;
}

/* The encoder's search index: two sets of chains, by the hash of the whole
 * field and by the hash of the name, each newest first and linked by entry
 * number + 1 (0 ends a chain).  Eviction leaves links alone: a link to an
 * evicted entry ends its chain, as everything after it is older still.  Only
 * a bucket whose newest entry goes is cleared, so a head is always live and
 * a link never spans more than a table's worth of insertions (no confusion
 * when the 32-bit count wraps). */
enum { INDEX_BUCKETS = 64 };

static inline uint32_t *field_bucket(const hpack_table *t, uint32_t field_hash)
{
    return &t->index[field_hash & (INDEX_BUCKETS - 1)];
}

static inline uint32_t *name_bucket(const hpack_table *t, uint32_t name_hash)
{
    return &t->index[INDEX_BUCKETS + (name_hash & (INDEX_BUCKETS - 1))];
}

/* The live entry a link names, with its index (1 = newest), or NULL. */
static inline const struct hpack_entry *follow(const hpack_table *t, uint32_t link, uint32_t *idx)
{
    uint32_t age = t->seq - link; /* entry number link - 1 is seq - 1 - age */
    if (link == 0 || age >= t->count)
        return NULL;
    *idx = age + 1;
    return &t->ents[(link - 1) & (t->ents_cap - 1)];
}

/* The dynamic table (hpack.c).  init: empty, max_size; mem NULL = default.
 * free: its storage (t may be initialized again).  set_max: a new maximum,
 * evicting at once.  reserve: storage for bytes_need entry bytes and
 * ents_need entries (H2_E_NOMEM leaves t unchanged).  insert: §4.4, the
 * hashes are the index's (0 without one); an entry larger than the maximum
 * empties the table and is not inserted; H2_E_NOMEM leaves t unchanged. */
void hpack_tab_init(hpack_table *t, uint32_t max_size, const h2_mem *mem);
void hpack_tab_free(hpack_table *t);
void hpack_tab_set_max(hpack_table *t, uint32_t max_size);
h2_rv hpack_tab_grow(hpack_table *t, uint64_t bytes_need, uint64_t ents_need);
/* reserve: nothing to do (the common case) without a call. */
static inline h2_rv hpack_tab_reserve(hpack_table *t, uint64_t bytes_need, uint64_t ents_need)
{
    if (bytes_need <= t->bytes_cap && ents_need <= t->ents_cap)
        return H2_OK;
    return hpack_tab_grow(t, bytes_need, ents_need);
}
h2_rv hpack_tab_insert(hpack_table *t, const uint8_t *name, uint32_t name_len, const uint8_t *value,
                       uint32_t value_len, uint32_t name_hash, uint32_t field_hash,
                       uint32_t digest);

#endif
