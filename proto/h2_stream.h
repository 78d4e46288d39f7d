/* h2_stream.h - streams of a connection, private to proto/: lookup,
 * lifetime, the RFC 9113 §5.1 states, resets, and the credit that reopens
 * inbound flow-control windows.
 *
 * A stream object lives while it is open on the wire or held by the
 * application (F_DELIVERED); h2_stream_maybe_free() frees it once neither
 * holds.  Ids we reset lately are remembered (a ring of
 * limits->reset_memory ids) so their late frames are ignored.
 */
#ifndef SPINDLE_H2_STREAM_H
#define SPINDLE_H2_STREAM_H

#include "h2_conn_internal.h"

static inline h2_stream **h2_stream_bucket(h2_conn *c, uint32_t id)
{
    return &c->st->buckets[(id >> 1) % H2_NBUCKETS];
}

/* The live stream with this id, or NULL.  Remembers the last one found:
 * the application's calls name the same stream over and over. */
static inline h2_stream *h2_stream_find(const h2_conn *c, uint32_t id)
{
    h2_stream_tables *t = c->st;
    if (!t)
        return NULL;
    if (t->last && t->last->id == id)
        return t->last;
    h2_stream *s = t->buckets[(id >> 1) % H2_NBUCKETS];
    while (s && s->id != id)
        s = s->hnext;
    if (s)
        t->last = s;
    return s;
}

/* A stream opened after our GOAWAY: never processed, its frames ignored. */
static inline bool h2_stream_ignored_after_goaway(const h2_conn *c, uint32_t id)
{
    return c->goaway_sent && id > c->goaway_last;
}

/* A new stream for a delivered request (F_DELIVERED, windows from the
 * settings in effect), counted in nstreams.  NULL: no memory. */
h2_stream *h2_stream_open(h2_conn *c, uint32_t sid, bool end_stream, const h2_req_head *head);

/* Remember / ask whether we reset this id lately. */
void h2_stream_reset_remember(h2_conn *c, uint32_t id);
bool h2_stream_reset_recent(const h2_conn *c, uint32_t id);

void h2_stream_trailers_free(h2_conn *c, h2_trailers *t);
/* Drop a stream's unframed data (chunks still referenced by segments are
 * released when their last segment is committed) and unschedule it. */
void h2_stream_drop_data(h2_conn *c, h2_stream *s);
/* Free the stream if nothing refers to it any more: closed on the wire and
 * not held by the application.  The last stream takes the tables with it. */
void h2_stream_maybe_free(h2_conn *c, h2_stream *s);
/* Closed on the wire (the object may live on while delivered). */
void h2_stream_close(h2_conn *c, h2_stream *s);
/* Our END_STREAM went out (framed) / the peer's arrived. */
void h2_stream_local_end(h2_conn *c, h2_stream *s);
void h2_stream_remote_end(h2_stream *s);
/* Reset a stream because of the peer (a stream error, app false) or the
 * application (app true).  Fills ev with STREAM_RESET when the application
 * holds the stream and the peer caused it; may free the stream.  H2_OK, the
 * glitch budget's connection error, or H2_E_NOMEM. */
h2_rv h2_stream_reset(h2_conn *c, h2_stream *s, h2_code code, h2_event *ev, bool app);
/* A stream error on an id that has no stream object (closed, forgotten). */
h2_rv h2_stream_error_id(h2_conn *c, uint32_t id, h2_code code);

/* n bytes were consumed or discarded: reopen the connection window / the
 * stream's.  WINDOW_UPDATEs are coalesced to half a window. */
void h2_stream_credit_conn(h2_conn *c, uint64_t n);
void h2_stream_credit(h2_conn *c, h2_stream *s, uint64_t n);

#endif
