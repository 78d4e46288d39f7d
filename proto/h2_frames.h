/* h2_frames.h - the handlers of complete non-DATA frames, private to
 * proto/.
 *
 * A frame whose payload is complete is decoded (h2_frame_decode checks each
 * type's own rules) and dispatched through a table indexed by type; each
 * handler checks state and fills at most one event.  Stream-scoped decode
 * errors become RST_STREAM where the RFC allows one, connection errors
 * otherwise.  HEADERS and CONTINUATION are h2_headers.c's.
 */
#ifndef SPINDLE_H2_FRAMES_H
#define SPINDLE_H2_FRAMES_H

#include "h2_conn_internal.h"

/* The frame whose header is c->fh and whose payload (c->fh.length bytes)
 * is at payload, of a known type other than DATA.  H2_OK (ev may be
 * filled), H2_E_PROTO (connection error) or H2_E_NOMEM. */
h2_rv h2_frames_dispatch(h2_conn *c, const uint8_t *payload, h2_event *ev);

#endif
