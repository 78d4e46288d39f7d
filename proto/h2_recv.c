/* h2_recv.c - the receive state machine and streamed DATA (h2_recv.h):
 * h2_conn_recv consumes input until one event is produced, all input is
 * used, or reading must pause. */
#include "h2_recv.h"

#include <string.h>

#include "h2_frames.h"
#include "h2_out.h"
#include "h2_stream.h"

static void skip_payload(h2_conn *c, uint32_t n)
{
    c->left = n;
    c->rstate = n ? R_SKIP : R_HEAD;
}

/* The DATA frame's body bytes start (pad length known). */
static h2_rv data_begin(h2_conn *c, uint32_t pad, h2_event *ev)
{
    uint32_t flen = c->fh.length;
    uint32_t sid = c->fh.stream_id;
    bool padded = (c->fh.flags & H2_FLAG_PADDED) != 0;
    uint32_t overhead = padded ? pad + 1 : 0;
    if (padded && pad >= flen)
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "DATA padding exceeds the payload");
    uint32_t dlen = flen - overhead;
    uint32_t rest = flen - (padded ? 1u : 0u); /* bytes still to read */
    h2_stream *s = h2_stream_find(c, sid);
    /* Padding reopens the windows at once: nobody consumes it. */
    h2_stream_credit_conn(c, overhead);
    if (!s || s->state == S_CLOSED) {
        h2_stream_credit_conn(c, dlen);
        skip_payload(c, rest);
        return H2_OK;
    }
    h2_stream_credit(c, s, overhead);
    bool end = (c->fh.flags & H2_FLAG_END_STREAM) != 0;
    if (s->content_length >= 0 && (s->data_recv + dlen > (uint64_t)s->content_length ||
                                   (end && s->data_recv + dlen != (uint64_t)s->content_length))) {
        h2_stream_credit_conn(c, dlen);
        skip_payload(c, rest);
        return h2_stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
    }
    if (dlen == 0 && !end) {
        skip_payload(c, rest);
        return h2_conn_glitch(c); /* empty DATA without END_STREAM (CVE-2019-9518) */
    }
    c->left = dlen;
    c->pad_left = pad;
    if (dlen == 0) {
        /* Only END_STREAM to report. */
        h2_stream_remote_end(s);
        ev->type = H2_EV_DATA;
        ev->stream_id = sid;
        ev->end_stream = true;
        ev->u.data.data = NULL;
        ev->u.data.len = 0;
        skip_payload(c, pad);
        if (s->state == S_CLOSED)
            h2_stream_maybe_free(c, s);
        return H2_OK;
    }
    c->rstate = R_DATA;
    return H2_OK;
}

/* The 9-byte header of a DATA frame is in. */
static h2_rv data_head(h2_conn *c, h2_event *ev)
{
    uint32_t sid = c->fh.stream_id;
    uint32_t flen = c->fh.length;
    if (sid == 0)
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "DATA on stream 0");
    h2_stream *s = h2_stream_find(c, sid);
    if (!s && sid > c->last_peer_sid)
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "DATA on an idle stream");
    /* Every DATA frame counts against the connection window, whatever
     * becomes of it (RFC 9113 §6.9). */
    if ((int64_t)flen > c->recv_window)
        return h2_conn_fail(c, H2_FLOW_CONTROL_ERROR, "connection window exceeded");
    c->recv_window -= flen;
    if (!s) {
        if (!h2_stream_reset_recent(c, sid) && !h2_stream_ignored_after_goaway(c, sid))
            return h2_conn_fail(c, H2_STREAM_CLOSED, "DATA on a closed stream");
        h2_stream_credit_conn(c, flen);
        skip_payload(c, flen);
        return H2_OK;
    }
    if (s->flags & F_RESET_SENT) {
        h2_stream_credit_conn(c, flen);
        skip_payload(c, flen);
        return H2_OK;
    }
    if (!(s->flags & F_DELIVERED) && s->state != S_HALF_REMOTE && s->state != S_CLOSED) {
        /* The handler detached while the body still flows: discard it. */
        h2_stream_credit_conn(c, flen);
        skip_payload(c, flen);
        if (c->fh.flags & H2_FLAG_END_STREAM) {
            h2_stream_remote_end(s);
            h2_stream_maybe_free(c, s);
        }
        return H2_OK;
    }
    if (s->state == S_HALF_REMOTE || s->state == S_CLOSED) {
        h2_stream_credit_conn(c, flen);
        skip_payload(c, flen);
        return h2_stream_reset(c, s, H2_STREAM_CLOSED, ev, false);
    }
    if (!(s->flags & F_HEAD_RECV)) {
        /* Client: DATA before the final response head (§8.1). */
        h2_stream_credit_conn(c, flen);
        skip_payload(c, flen);
        return h2_stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
    }
    if ((int64_t)flen > s->recv_window) {
        h2_stream_credit_conn(c, flen);
        skip_payload(c, flen);
        return h2_stream_reset(c, s, H2_FLOW_CONTROL_ERROR, ev, false);
    }
    s->recv_window -= flen;
    if (c->fh.flags & H2_FLAG_PADDED) {
        if (flen == 0)
            return h2_conn_fail(c, H2_FRAME_SIZE_ERROR, "padded DATA without a pad length");
        c->rstate = R_DATA_PADLEN;
        return H2_OK;
    }
    return data_begin(c, 0, ev);
}

static h2_rv rd_data(h2_conn *c, const uint8_t **pp, const uint8_t *end, h2_event *ev)
{
    uint32_t n = (uint32_t)(end - *pp) < c->left ? (uint32_t)(end - *pp) : c->left;
    h2_stream *s = h2_stream_find(c, c->fh.stream_id);
    c->left -= n;
    const uint8_t *p = *pp;
    *pp += n;
    if (!s || s->state == S_CLOSED || !(s->flags & F_DELIVERED)) {
        /* Reset or detached mid-frame: discard the rest. */
        h2_stream_credit_conn(c, n);
    } else {
        bool last = c->left == 0;
        bool end_stream = last && (c->fh.flags & H2_FLAG_END_STREAM);
        s->data_recv += n;
        s->recv_held += n;
        ev->type = H2_EV_DATA;
        ev->stream_id = s->id;
        ev->end_stream = end_stream;
        ev->u.data.data = p;
        ev->u.data.len = n;
        if (end_stream)
            h2_stream_remote_end(s);
    }
    if (c->left == 0)
        skip_payload(c, c->pad_left);
    return H2_OK;
}

static h2_rv on_frame_head(h2_conn *c, h2_event *ev)
{
    h2_frame_hdr_parse(c->head, &c->fh);
    c->stats.frames_in++;
    h2_fault f = h2_frame_check_size(&c->fh, c->lim->max_frame_size);
    if (!h2_fault_ok(f))
        return h2_conn_fail(c, f.code, f.reason);
    if (!c->got_settings && (c->fh.type != H2_FT_SETTINGS || (c->fh.flags & H2_FLAG_ACK)))
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "the client preface must start with SETTINGS");
    if (c->hb_active && (c->fh.type != H2_FT_CONTINUATION || c->fh.stream_id != c->hb_sid))
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "header block interrupted");
    if (c->fh.type == H2_FT_CONTINUATION && !c->hb_active)
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    if (!h2_frame_type_known(c->fh.type)) {
        skip_payload(c, c->fh.length); /* RFC 9113 §5.5 */
        return H2_OK;
    }
    if (c->fh.type == H2_FT_DATA)
        return data_head(c, ev);
    c->rstate = R_PAYLOAD;
    c->pgot = 0;
    return H2_OK;
}

void h2_recv_pbuf_release(h2_conn *c)
{
    if (!c->pbuf)
        return;
    /* Blocks from the pool are exactly H2_OUT_BLOCK_SIZE (h2_out_block header
     * included in the pool size, so the cast is safe). */
    if (c->pbuf_cap == H2_OUT_BLOCK_SIZE)
        h2_pool_put(&c->x->blocks, c->pbuf);
    else
        h2_free(h2_conn_mem(c), c->pbuf);
    c->pbuf = NULL;
    c->pbuf_cap = 0;
}

static h2_rv rd_payload(h2_conn *c, const uint8_t **pp, const uint8_t *end, h2_event *ev)
{
    uint32_t len = c->fh.length;
    size_t avail = (size_t)(end - *pp);
    if (c->pgot == 0 && avail >= len) {
        /* The whole payload is in the caller's buffer: no copy. */
        const uint8_t *p = *pp;
        *pp += len;
        c->rstate = R_HEAD;
        return h2_frames_dispatch(c, p, ev);
    }
    if (c->pbuf && c->pbuf_cap < len)
        h2_recv_pbuf_release(c);
    if (!c->pbuf) {
        uint32_t cap = len <= H2_OUT_BLOCK_SIZE ? H2_OUT_BLOCK_SIZE : len;
        c->pbuf =
            cap == H2_OUT_BLOCK_SIZE ? h2_pool_get(&c->x->blocks) : h2_malloc(h2_conn_mem(c), cap);
        if (!c->pbuf)
            return h2_conn_nomem(c);
        c->pbuf_cap = cap;
    }
    uint32_t n = len - c->pgot;
    if (avail < n)
        n = (uint32_t)avail;
    memcpy(c->pbuf + c->pgot, *pp, n);
    *pp += n;
    c->pgot += n;
    if (c->pgot < len)
        return H2_OK;
    c->rstate = R_HEAD;
    h2_rv rv = h2_frames_dispatch(c, c->pbuf, ev);
    /* Events of this frame never point into pbuf: header fields are copied
     * into the context scratch, DATA is streamed.  GOAWAY debug data and
     * PRIORITY_UPDATE fields do, so keep the buffer until the next call. */
    return rv;
}

static h2_rv rd_preface(h2_conn *c, const uint8_t **pp, const uint8_t *end)
{
    uint32_t n = H2_PREFACE_LEN - c->preface_got;
    if ((size_t)(end - *pp) < n)
        n = (uint32_t)(end - *pp);
    if (memcmp(*pp, &H2_PREFACE[c->preface_got], n) != 0)
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "invalid connection preface");
    *pp += n;
    c->preface_got += n;
    if (c->preface_got == H2_PREFACE_LEN)
        c->rstate = R_HEAD;
    return H2_OK;
}

static h2_rv rd_head(h2_conn *c, const uint8_t **pp, const uint8_t *end, h2_event *ev)
{
    if (c->head_got == 0 && h2_out_paused(c)) {
        /* Stop at a frame boundary until output drains: one hit per pause,
         * however often the caller feeds in between. */
        if (!c->read_paused) {
            c->read_paused = true;
            h2_conn_hit(c, c->ctrl_pending >= c->lim->max_pending_control
                               ? H2_LIMIT_CONTROL_QUEUE
                               : H2_LIMIT_OUTPUT_BACKLOG);
        }
        return H2_E_AGAIN;
    }
    uint32_t n = H2_FRAME_HDR_LEN - c->head_got;
    if ((size_t)(end - *pp) < n)
        n = (uint32_t)(end - *pp);
    memcpy(c->head + c->head_got, *pp, n);
    *pp += n;
    c->head_got = (uint8_t)(c->head_got + n);
    if (c->head_got < H2_FRAME_HDR_LEN)
        return H2_OK;
    c->head_got = 0;
    h2_rv rv = on_frame_head(c, ev);
    /* A zero-length frame is complete with its header. */
    if (rv == H2_OK && c->rstate == R_PAYLOAD && c->fh.length == 0) {
        c->rstate = R_HEAD;
        rv = h2_frames_dispatch(c, *pp, ev);
    }
    return rv;
}

static void rd_skip(h2_conn *c, const uint8_t **pp, const uint8_t *end)
{
    uint32_t n = (size_t)(end - *pp) < c->left ? (uint32_t)(end - *pp) : c->left;
    *pp += n;
    c->left -= n;
    if (c->left == 0)
        c->rstate = R_HEAD;
}

h2_rv h2_conn_recv(h2_conn *c, const uint8_t *in, size_t len, uint64_t now_ms, size_t *consumed,
                   h2_event *ev)
{
    ev->type = H2_EV_NONE;
    *consumed = 0;
    if (c->dead)
        return H2_E_CLOSED;
    c->now = now_ms;
    if (c->pbuf && c->rstate != R_PAYLOAD)
        h2_recv_pbuf_release(c); /* the previous call's event may have pointed into it */
    const uint8_t *p = in, *end = in + len;
    h2_rv rv = H2_OK;
    if (len && c->active_ms != now_ms) {
        c->active_prev = c->active_ms; /* input in the same millisecond keeps it */
        c->active_ms = now_ms;
    }
    if (c->read_paused && !h2_out_paused(c))
        c->read_paused = false;
    while (p < end && ev->type == H2_EV_NONE && rv == H2_OK) {
        switch (c->rstate) {
        case R_PREFACE: rv = rd_preface(c, &p, end); break;
        case R_HEAD: rv = rd_head(c, &p, end, ev); break;
        case R_PAYLOAD: rv = rd_payload(c, &p, end, ev); break;
        case R_DATA_PADLEN: {
            uint8_t pad = *p++;
            rv = data_begin(c, pad, ev);
            break;
        }
        case R_DATA: rv = rd_data(c, &p, end, ev); break;
        case R_SKIP: rd_skip(c, &p, end); break;
        default: rv = H2_E_CLOSED; break;
        }
    }
    *consumed = (size_t)(p - in);
    return rv;
}
