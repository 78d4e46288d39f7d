/* hpack_internal.h - what hpack.c, hpack_huffman.c, the generated tables
 * and the HPACK tests share, and nothing outside them should use.
 */
#ifndef SPINDLE_HPACK_INTERNAL_H
#define SPINDLE_HPACK_INTERNAL_H

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

#endif
