/* hpack_memo.h - the HPACK encoder's memory of its last literal per
 * volatile name (hpack_memo.c says why).  Used by hpack.c only; the test
 * suite drives it through hpack_encode_block().  Thread: the encoder's.
 */
#ifndef SPINDLE_HPACK_MEMO_H
#define SPINDLE_HPACK_MEMO_H

#include <string.h>

#include "hpack_internal.h"

/* The volatile names whose last literal is remembered: kinds 0..2
 * (content-length, etag, last-modified). */
#define HPACK_MEMO_KINDS   3u
#define HPACK_NOT_VOLATILE 255u
#define HPACK_MEMO_VALUE   48u /* longer values are not remembered */
#define HPACK_MEMO_REP     64u /* nor representations longer than this */

/* The kind of a name the encoder keeps out of its dynamic table when
 * skip_volatile is on (its values change per message): 0..HPACK_MEMO_KINDS-1
 * for the remembered ones, HPACK_MEMO_KINDS for age, expires and
 * set-cookie, HPACK_NOT_VOLATILE for any other name. */
unsigned hpack_volatile_kind(const uint8_t *n, uint32_t len);

typedef struct hpack_memo_slot {
    uint8_t vlen, rlen; /* rlen 0: empty */
    uint8_t huff;       /* the hpack_huff_mode it was encoded in */
    uint8_t value[HPACK_MEMO_VALUE];
    uint8_t rep[HPACK_MEMO_REP];
} hpack_memo_slot;

struct hpack_memo {
    hpack_memo_slot slot[HPACK_MEMO_KINDS];
};

/* A field of this kind equal to the last one remembered (same value, same
 * Huffman mode): its representation copied to *pos (advanced), true; else
 * false and nothing written.  Inline: on a miss it must cost next to
 * nothing (a connection serving many files misses on every etag). */
static inline bool hpack_memo_emit(hpack_encoder *e, unsigned kind, const hpack_field *f,
                                   uint8_t **pos)
{
    if (!e->memo || kind >= HPACK_MEMO_KINDS)
        return false;
    const hpack_memo_slot *s = &e->memo->slot[kind];
    uint32_t n = f->value_len;
    if (s->rlen == 0 || s->vlen != n || s->huff != (uint8_t)e->huff)
        return false;
    /* Values of one name differ at their end (an etag's mtime, a length's
     * last digits) more often than at their start. */
    if (n && s->value[n - 1] != f->value[n - 1])
        return false;
    if (memcmp(s->value, f->value, n) != 0)
        return false;
    memcpy(*pos, s->rep, s->rlen);
    *pos += s->rlen;
    return true;
}

/* Remember rep[0..rlen), the literal without indexing just written for f:
 * a field of a remembered kind (not never-indexed), whose name is a static
 * index.  Skipped when too long, or when the memory cannot be had. */
void hpack_memo_put(hpack_encoder *e, unsigned kind, const hpack_field *f, const uint8_t *rep,
                    size_t rlen);

static inline void hpack_memo_store(hpack_encoder *e, unsigned kind, const hpack_field *f,
                                    const uint8_t *rep, size_t rlen)
{
    if (kind < HPACK_MEMO_KINDS && f->value_len <= HPACK_MEMO_VALUE && rlen - 1 < HPACK_MEMO_REP)
        hpack_memo_put(e, kind, f, rep, rlen);
}

/* Free the memory (hpack_encoder_free). */
void hpack_memo_free(hpack_encoder *e);

#endif
