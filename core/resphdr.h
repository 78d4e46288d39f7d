/* resphdr.h - the response headers spindle adds by default (not
 * installed): `date` (formatted once a second per shard), `server`
 * (spindle_config.server_header, or none) and `content-length` when the
 * whole body is known at the head, each unless the handler set it.
 * Shard thread.
 */
#ifndef SPINDLE_CORE_RESPHDR_H
#define SPINDLE_CORE_RESPHDR_H

#include <stddef.h>
#include <stdint.h>

#include "hpack.h"

typedef struct shard shard;

#define RESPHDR_EXTRA 3u /* fields resphdr_add() may append */

/* Reformat the shard's `date` when the wall-clock second changed. */
void resphdr_tick(shard *sh);
/* Append the defaults to f[0..n) (room for RESPHDR_EXTRA more) for a final
 * head with this status; clen >= 0: the whole body's length.  The values
 * point into sh (valid until its next tick) and buf (at least 24 bytes).
 * Returns the new count. */
size_t resphdr_add(shard *sh, hpack_field *f, size_t n, uint16_t status, int64_t clen, char *buf);
/* Format t (seconds since the epoch) as an HTTP date (IMF-fixdate, 29
 * characters) into out (at least 30 bytes). */
void resphdr_format_date(int64_t t, char *out);

#endif
