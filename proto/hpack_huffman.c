/* hpack_huffman.c - the Huffman code of RFC 7541 §5.2 and Appendix B.
 *
 * Encoding packs codes into a 64-bit accumulator and stores 32 bits at a
 * time.  Decoding walks the generated state machine a nibble at a time
 * (hpack_internal.h): two table lookups per input byte, no bit loop, and the
 * §5.2 error cases (EOS, padding longer than 7 bits or not all ones) fall out
 * of the table's FAIL and ACCEPT flags.
 */
#include <string.h>

#include "hpack_internal.h"

size_t hpack_huff_encoded_len(const uint8_t *s, size_t n)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < n; i++)
        bits += hpack_huff_len[s[i]];
    return (size_t)((bits + 7) / 8);
}

uint8_t *hpack_huff_encode(uint8_t *p, const uint8_t *s, size_t n)
{
    /* The pending bits are the low nbits of acc.  nbits stays below 32
     * between symbols, so adding a code of at most 30 bits fits in 64. */
    uint64_t acc = 0;
    uint32_t nbits = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = hpack_huff_len[s[i]];
        acc = (acc << len) | hpack_huff_code[s[i]];
        nbits += len;
        if (nbits >= 32) {
            nbits -= 32;
            uint32_t w = (uint32_t)(acc >> nbits);
            p[0] = (uint8_t)(w >> 24);
            p[1] = (uint8_t)(w >> 16);
            p[2] = (uint8_t)(w >> 8);
            p[3] = (uint8_t)w;
            p += 4;
        }
    }
    while (nbits >= 8) {
        nbits -= 8;
        *p++ = (uint8_t)(acc >> nbits);
    }
    /* Pad with the most significant bits of EOS, i.e. ones (§5.2). */
    if (nbits > 0)
        *p++ = (uint8_t)((acc << (8 - nbits)) | (0xffu >> nbits));
    return p;
}

/* One nibble through the state machine. */
static inline h2_rv huff_nibble(uint8_t *state, uint8_t *flags, uint32_t nibble, uint8_t *out,
                                size_t cap, size_t *o, bool store)
{
    const hpack_huff_step *t = &hpack_huff_fsm[*state][nibble];
    if (t->flags & HPACK_HUFF_FAIL)
        return H2_E_COMPRESSION; /* EOS inside the string (§5.2) */
    if (t->flags & HPACK_HUFF_SYM) {
        if (store) {
            if (*o == cap)
                return H2_E_LIMIT;
            out[*o] = t->sym;
        }
        ++*o;
    }
    *state = t->next;
    *flags = t->flags;
    return H2_OK;
}

/* The decoding loop; store is a constant at both call sites, so each gets
 * its own copy without the branches it does not need. */
static inline h2_rv huff_run(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len,
                             bool store)
{
    uint8_t state = 0, flags = HPACK_HUFF_ACCEPT; /* the empty string is valid */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        h2_rv rv = huff_nibble(&state, &flags, (uint32_t)(in[i] >> 4), out, cap, &o, store);
        if (rv == H2_OK)
            rv = huff_nibble(&state, &flags, (uint32_t)(in[i] & 0xfu), out, cap, &o, store);
        if (rv != H2_OK)
            return rv;
    }
    /* Ending inside a symbol is valid only on up to 7 bits of EOS prefix. */
    if (!(flags & HPACK_HUFF_ACCEPT))
        return H2_E_COMPRESSION;
    *out_len = o;
    return H2_OK;
}

h2_rv hpack_huff_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    return huff_run(in, n, out, cap, out_len, true);
}

h2_rv hpack_huff_decoded_len(const uint8_t *in, size_t n, size_t *out_len)
{
    return huff_run(in, n, NULL, 0, out_len, false);
}
