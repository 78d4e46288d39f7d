/* prepfields.h - spindle_fields (include/spindle.h): response fields
 * validated, measured and encoded once, copied into many heads.
 *
 * HTTP/2 gets them as one HPACK_F_ENCODED field (hpack_encode_stateless():
 * literals without indexing, static name indices; valid under any encoder
 * state, see hpack.h), HTTP/1.1 as their validated fields (the codec frames
 * on content-length, so it must see that one as a field).  Either way they
 * are placed after the handler's fields, outside the n_check the engine
 * validates.  Immutable after spindle_fields_new(): any thread.
 */
#ifndef SPINDLE_CORE_PREPFIELDS_H
#define SPINDLE_CORE_PREPFIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hpack.h"
#include "spindle.h"

struct spindle_fields {
    hpack_field *f; /* n validated fields; their bytes NUL-terminated, in this allocation */
    uint8_t *hp;    /* hp_len bytes: hpack_encode_stateless(f, n) */
    uint32_t n, hp_len;
    uint8_t present; /* resphdr_present(f, n) */
};

/* How many fields prepfields_append() adds for pf (NULL: 0). */
static inline size_t prepfields_count(const spindle_fields *pf, bool h2)
{
    return pf ? (h2 ? 1 : pf->n) : 0;
}

/* Append pf (not NULL) to f (room for prepfields_count(pf, h2)): the
 * fields point into pf, which must outlive their use.  Returns the count
 * appended. */
size_t prepfields_append(const spindle_fields *pf, bool h2, hpack_field *f);

#endif
