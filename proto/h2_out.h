/* h2_out.h - the output chain of a connection, private to proto/.
 *
 * Every byte the engine generates (frame headers, control frames, header
 * blocks, small DATA payloads) is appended to a FIFO of blocks; larger DATA
 * payloads are not copied but recorded as segments inserted at a chain
 * position.  Output is consumed strictly in order, so positions are plain
 * 64-bit counters (chain_w written, chain_r consumed).  The public side is
 * h2_conn_out_prepare/_out_commit/_send/_unsent (h2_conn.h).
 *
 * The frame writers return false when memory runs out; the caller then
 * fails the connection (h2_conn_nomem).
 */
#ifndef SPINDLE_H2_OUT_H
#define SPINDLE_H2_OUT_H

#include "h2_conn_internal.h"

/* Bytes queued and not yet committed: chain bytes plus segment payloads. */
static inline uint64_t h2_out_unsent(const h2_conn *c)
{
    return (c->chain_w - c->chain_r) + c->seg_bytes;
}

/* Output the peer owes us progress on: sent-but-unwritten bytes and body
 * bytes waiting for a window.  Both count for the no-progress timeout. */
static inline bool h2_out_pending(const h2_conn *c)
{
    return h2_out_unsent(c) || c->unframed;
}

/* Reading pauses: too many unwritten control replies, or too much output. */
static inline bool h2_out_paused(const h2_conn *c)
{
    return c->ctrl_pending >= c->lim->max_pending_control ||
           h2_out_unsent(c) >= c->lim->max_unsent_output;
}

/* The segment ring exists and is full: no more DATA can be referenced. */
static inline bool h2_out_seg_full(const h2_conn *c)
{
    return c->segs && c->seg_count == H2_NSEG;
}

/* Largest frame payload we write: our cap and the peer's MAX_FRAME_SIZE. */
static inline uint32_t h2_out_frame_max(const h2_conn *c)
{
    uint32_t m = c->lim->max_send_frame_size;
    return c->peer_max_frame < m ? c->peer_max_frame : m;
}

uint8_t *h2_out_reserve_slow(h2_conn *c, uint32_t n);

/* n contiguous writable bytes at the chain's end, or NULL (no memory).
 * Nothing is queued until h2_out_advance(). */
static inline uint8_t *h2_out_reserve(h2_conn *c, uint32_t n)
{
    h2_out_block *t = c->otail;
    if (t && t->cap - t->used >= n)
        return t->data + t->used;
    return h2_out_reserve_slow(c, n);
}

/* Queue n bytes written at the last h2_out_reserve(). */
static inline void h2_out_advance(h2_conn *c, uint32_t n)
{
    if (!h2_out_pending(c))
        c->progress_ms = c->now; /* output just became pending */
    c->otail->used += n;
    c->chain_w += n;
}

/* Make sure the segment ring exists.  false: no memory. */
bool h2_out_segs_ready(h2_conn *c);
/* Insert a DATA payload reference at the chain's end.  The ring exists
 * (h2_out_segs_ready) and has room (!h2_out_seg_full): cannot fail. */
void h2_out_seg_push(h2_conn *c, const uint8_t *p, uint32_t len, h2_chunk *ch);

/* Run a chunk's release callback and return it to the pool. */
void h2_out_chunk_release(h2_conn *c, h2_chunk *ch);
/* Release the chunks copied whole into the chain whose bytes end at or
 * before pos (UINT64_MAX: all of them). */
void h2_out_release_copied(h2_conn *c, uint64_t pos);
/* Give output memory back once all output is written (an idle connection
 * holds no output block and no segment ring). */
void h2_out_trim(h2_conn *c);

/* Control frames.  reply: the peer provoked this RST_STREAM (a stream
 * error), so it counts against max_pending_control; RST_STREAMs we send of
 * our own accord do not.  PING and SETTINGS ACKs always count. */
bool h2_out_rst(h2_conn *c, uint32_t sid, uint32_t code, bool reply);
bool h2_out_window_update(h2_conn *c, uint32_t sid, uint32_t incr);
bool h2_out_goaway(h2_conn *c, uint32_t last, uint32_t code, const char *debug);
bool h2_out_ping(h2_conn *c, bool ack, const uint8_t opaque[8]);
/* Our SETTINGS (n entries), not counted as a reply; its ACK to the peer's. */
bool h2_out_settings(h2_conn *c, const h2_setting *st, size_t n);
bool h2_out_settings_ack(h2_conn *c);

/* HEADERS (+ CONTINUATION) for the fields a then b, HPACK-encoded into the
 * chain in wire order.  H2_OK, H2_E_NOMEM, H2_E_INVAL (too large), or the
 * encoder's error.  The connection is not failed here. */
h2_rv h2_out_header_block(h2_conn *c, uint32_t sid, const hpack_field *a, size_t na,
                          const hpack_field *b, size_t nb, bool end_stream);

#endif
