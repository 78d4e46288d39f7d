/* h2_headers.h - header blocks, private to proto/: HEADERS and
 * CONTINUATION frames, requests and trailers.
 *
 * A HEADERS with END_HEADERS is decoded in place; otherwise fragments are
 * appended to a per-connection buffer (capped by max_header_block and
 * max_continuations) until END_HEADERS.  A block is always HPACK-decoded,
 * even for a stream about to be refused or ignored, so the decoder stays in
 * step with the peer's encoder (RFC 9113 §4.3).  Decoded fields land in the
 * context scratch; a request becomes H2_EV_REQUEST, trailers
 * H2_EV_TRAILERS.
 */
#ifndef SPINDLE_H2_HEADERS_H
#define SPINDLE_H2_HEADERS_H

#include "h2_conn_internal.h"

/* Frame handlers (decoded frames; h2_frames.c dispatches to them). */
h2_rv h2_headers_on_headers(h2_conn *c, const h2_frame *f, h2_event *ev);
h2_rv h2_headers_on_continuation(h2_conn *c, const h2_frame *f, h2_event *ev);
/* Drop a partial header block and its buffer. */
void h2_headers_reset(h2_conn *c);

#endif
