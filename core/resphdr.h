/* resphdr.h - the response headers spindle adds by default (not
 * installed): `date` (formatted once a second per shard), `server`
 * (spindle_config.server_header, or none; a value that is not a valid
 * field value is never sent) and `content-length` when the
 * whole body is known at the head, each unless the handler set it.
 * Shard thread.
 */
#ifndef SPINDLE_CORE_RESPHDR_H
#define SPINDLE_CORE_RESPHDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "h2_conn.h"
#include "hpack.h"
#include "spindle.h"

typedef struct shard shard;

#define RESPHDR_EXTRA 3u /* fields resphdr_add() may append */

/* Which of the defaults a head's fields set (resphdr_present()). */
enum { RESPHDR_HAS_DATE = 1, RESPHDR_HAS_SERVER = 2, RESPHDR_HAS_CLEN = 4 };

/* Reformat the shard's `date` when the wall-clock second changed. */
void resphdr_tick(shard *sh);
/* RESPHDR_HAS_* of f[0..n): one pass, a length switch per field (inline:
 * the caller's loop is the only cost). */
static inline unsigned resphdr_present(const hpack_field *f, size_t n)
{
    unsigned m = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = f[i].name;
        switch (f[i].name_len) {
        case 4: m |= memcmp(s, "date", 4) == 0 ? RESPHDR_HAS_DATE : 0u; break;
        case 6: m |= memcmp(s, "server", 6) == 0 ? RESPHDR_HAS_SERVER : 0u; break;
        case 14: m |= memcmp(s, "content-length", 14) == 0 ? RESPHDR_HAS_CLEN : 0u; break;
        default: break;
        }
    }
    return m;
}
/* Append the defaults the head does not have (present: RESPHDR_HAS_* of
 * all its fields) to f[0..n) (room for RESPHDR_EXTRA more) for a final
 * head with this status; clen >= 0: the whole body's length.  h2: `date`
 * and `server` are HPACK_F_KEYED (a key per date second), so that each
 * connection's encoder sends them as indices while their entries are live,
 * with no lookup or compare.  The values point
 * into sh (valid until its next tick) and buf (at least 24 bytes).
 * Returns the new count. */
size_t resphdr_add(shard *sh, hpack_field *f, size_t n, unsigned present, bool h2, uint16_t status,
                   int64_t clen, char *buf);
/* Hold a final head (end = false) back until the body's length is known
 * (content-length): at the stream's first spindle_send (its length if that
 * send ends the body), trailers, or the end of the loop iteration
 * (resphdr_release), whichever comes first; fields are copied (an
 * HPACK_F_ENCODED one too).  Only for a head that gets a content-length
 * from it (not HEAD, 204, 304, or one that has its own: present) and whose
 * first n_check fields are valid (the rest were validated before; else the
 * caller sends it now and reports the engine's answer).  true: held
 * (st->track.held). */
bool resphdr_hold(spindle_stream *st, uint16_t status, const hpack_field *f, size_t n,
                  size_t n_check, unsigned present);
/* Send the held head now, with content-length clen when >= 0.  H2_OK or
 * the engine's error (the head is dropped either way). */
h2_rv resphdr_release(spindle_stream *st, int64_t clen);

/* Forget a held head (a reset; the stream is freed).  st->c must be
 * valid. */
void resphdr_drop(spindle_stream *st);
/* Teardown: free the shard's arena of held heads. */
void resphdr_shard_free(shard *sh);

/* Format t (seconds since the epoch) as an HTTP date (IMF-fixdate, 29
 * characters) into out (at least 30 bytes). */
void resphdr_format_date(int64_t t, char *out);

#endif
