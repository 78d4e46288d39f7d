/* hpack_memo.c - the encoder's memory of its last literal per volatile name.
 *
 * A volatile field (content-length, etag, last-modified: hpack.c keeps them
 * out of the dynamic table, their values change per message) is sent as a
 * literal without indexing whose name is a static index.  That
 * representation depends on the name, the value and the Huffman mode only,
 * never on the dynamic table; yet a server answering the same file again on
 * a connection Huffman-codes the same etag and date again per response
 * (issue 15: ~1,200 instructions of a 13-byte file's ~11,900).  So the
 * encoder keeps, per name, the last value and the bytes it produced, and a
 * repeat copies them.  Output bytes are exactly those of the long way (the
 * peer cannot tell); a never-indexed field is not remembered (hpack.c).
 * Memory: HPACK_MEMO_KINDS slots, allocated through the table's h2_mem on
 * the first volatile field of the connection (none if that fails: the long
 * way is always there).
 */
#include <string.h>

#include "hpack_memo.h"

/* Values that change with every response (a length, an age, a cookie)
 * would only churn the table: indexing them evicts the entries that repeat
 * (and a representation's etag and last-modified too: 200 files on one
 * connection cost 9.5% more instructions per response with them indexed,
 * one file 3.6% less; callgrind, issue 15).  `date` is not one of them: a
 * server's date changes once a second, so it is inserted once a second per
 * connection (65 bytes) and is a one-byte reference for every other response
 * of that second; the stale dates age out of the table in FIFO order like
 * any entry. */
unsigned hpack_volatile_kind(const uint8_t *n, uint32_t len)
{
    switch (len) {
    case 14: return memcmp(n, "content-length", 14) == 0 ? 0 : HPACK_NOT_VOLATILE;
    case 4: return memcmp(n, "etag", 4) == 0 ? 1 : HPACK_NOT_VOLATILE;
    case 13: return memcmp(n, "last-modified", 13) == 0 ? 2 : HPACK_NOT_VOLATILE;
    case 3: return memcmp(n, "age", 3) == 0 ? HPACK_MEMO_KINDS : HPACK_NOT_VOLATILE;
    case 7: return memcmp(n, "expires", 7) == 0 ? HPACK_MEMO_KINDS : HPACK_NOT_VOLATILE;
    case 10: return memcmp(n, "set-cookie", 10) == 0 ? HPACK_MEMO_KINDS : HPACK_NOT_VOLATILE;
    default: return HPACK_NOT_VOLATILE;
    }
}

void hpack_memo_put(hpack_encoder *e, unsigned kind, const hpack_field *f, const uint8_t *rep,
                    size_t rlen)
{
    if (!e->memo) {
        e->memo = h2_malloc(e->table.mem, sizeof *e->memo);
        if (!e->memo)
            return;
        memset(e->memo, 0, sizeof *e->memo);
    }
    hpack_memo_slot *s = &e->memo->slot[kind];
    s->vlen = (uint8_t)f->value_len;
    s->rlen = (uint8_t)rlen;
    s->huff = (uint8_t)e->huff;
    memcpy(s->value, f->value, f->value_len);
    memcpy(s->rep, rep, rlen);
}

void hpack_memo_free(hpack_encoder *e)
{
    h2_free(e->table.mem, e->memo);
    e->memo = NULL;
}
