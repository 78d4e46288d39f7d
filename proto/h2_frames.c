/* h2_frames.c - handlers of the non-DATA frame types other than header
 * blocks, and the dispatch of every complete non-DATA frame (h2_frames.h). */
#include "h2_frames.h"

#include <string.h>

#include "h2_headers.h"
#include "h2_out.h"
#include "h2_sched.h"
#include "h2_stream.h"

typedef h2_rv (*frame_fn)(h2_conn *c, const h2_frame *f, h2_event *ev);

static h2_rv on_priority(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    (void)f;
    (void)ev;
    /* RFC 9218 only: validated by the decoder, no tree kept (CVE-2019-9513). */
    return h2_conn_glitch(c);
}

static h2_rv on_rst_stream(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    uint32_t sid = f->hdr.stream_id;
    h2_stream *s = h2_stream_find(c, sid);
    if (!s && sid > c->last_peer_sid)
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "RST_STREAM on an idle stream");
    c->stats.resets_recv++;
    if (h2_bucket_take(&c->resets, c->now) != 0)
        return h2_conn_limit_fail(c, H2_LIMIT_RESETS, H2_ENHANCE_YOUR_CALM,
                                  "too many stream resets");
    if (!s || s->state == S_CLOSED)
        return H2_OK;
    h2_stream_close(c, s);
    if (s->flags & F_DELIVERED) {
        ev->type = H2_EV_STREAM_RESET;
        ev->stream_id = sid;
        ev->end_stream = false;
        ev->u.reset.code = f->u.rst_code;
        ev->u.reset.remote = true;
    }
    h2_stream_maybe_free(c, s);
    return H2_OK;
}

static void apply_local_settings(h2_conn *c)
{
    /* Our SETTINGS took effect: streams opened under the default window
     * move by the difference (RFC 9113 §6.9.2). */
    int64_t delta = (int64_t)c->lim->initial_window_size - (int64_t)c->local_iws;
    c->local_iws = c->lim->initial_window_size;
    if (delta && c->st)
        for (uint32_t b = 0; b < H2_NBUCKETS; b++)
            for (h2_stream *s = c->st->buckets[b]; s; s = s->hnext)
                s->recv_window += delta;
    hpack_decoder_set_settings_max(&c->dec, c->lim->header_table_size);
}

static h2_rv peer_initial_window(h2_conn *c, uint32_t v)
{
    int64_t delta = (int64_t)v - (int64_t)c->peer_iws;
    c->peer_iws = v;
    for (uint32_t b = 0; c->st && b < H2_NBUCKETS; b++)
        for (h2_stream *s = c->st->buckets[b]; s; s = s->hnext) {
            s->send_window += delta;
            if (s->send_window > (int64_t)H2_MAX_WINDOW)
                return h2_conn_fail(c, H2_FLOW_CONTROL_ERROR, "initial window overflows a stream");
            h2_sched_push(c, s);
        }
    return H2_OK;
}

static h2_rv on_settings(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    (void)ev;
    if (f->hdr.flags & H2_FLAG_ACK) {
        if (c->settings_unacked) {
            c->settings_unacked--;
            apply_local_settings(c);
        }
        return H2_OK;
    }
    uint32_t n = f->u.settings.n;
    if (n > c->lim->max_settings_entries)
        return h2_conn_limit_fail(c, H2_LIMIT_SETTINGS_ENTRIES, H2_ENHANCE_YOUR_CALM,
                                  "too many SETTINGS entries");
    if (c->got_settings) {
        h2_rv rv = h2_conn_glitch(c); /* settings churn (CVE-2019-9515) */
        if (rv != H2_OK)
            return rv;
    }
    c->got_settings = true;
    for (uint32_t i = 0; i < n; i++) {
        h2_setting st = h2_settings_get(f->u.settings.entries, i);
        switch (st.id) {
        case H2_SET_HEADER_TABLE_SIZE: hpack_encoder_set_peer_table_size(&c->enc, st.value); break;
        case H2_SET_INITIAL_WINDOW_SIZE: {
            h2_rv rv = peer_initial_window(c, st.value);
            if (rv != H2_OK)
                return rv;
            break;
        }
        case H2_SET_MAX_FRAME_SIZE: c->peer_max_frame = st.value; break;
        case H2_SET_NO_RFC7540_PRIORITIES: c->no_rfc7540 = st.value == 1; break;
        case H2_SET_MAX_CONCURRENT_STREAMS: c->peer_max_streams = st.value; break;
        case H2_SET_ENABLE_PUSH:
            if (c->client && st.value != 0) /* §6.5.2: a server must not enable push */
                return h2_conn_fail(c, H2_PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH from a server");
            break;
        default: break; /* validated by the decoder; nothing else applies */
        }
    }
    return h2_out_settings_ack(c) ? H2_OK : h2_conn_nomem(c);
}

static h2_rv on_push_promise(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    (void)f;
    (void)ev;
    /* A client: we sent SETTINGS_ENABLE_PUSH = 0 (§8.4, §6.6). */
    return h2_conn_fail(c, H2_PROTOCOL_ERROR,
                        c->client ? "PUSH_PROMISE with push disabled"
                                  : "PUSH_PROMISE from a client");
}

static h2_rv on_ping(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    if (!(f->hdr.flags & H2_FLAG_ACK))
        return h2_out_ping(c, true, f->u.ping) ? H2_OK : h2_conn_nomem(c);
    if (c->shutdown_phase == 1 && memcmp(f->u.ping, H2_SHUTDOWN_PING, 8) == 0)
        return h2_conn_shutdown_final(c) ? H2_OK : h2_conn_nomem(c); /* the peer saw the notice */
    if (c->ka_pending && memcmp(f->u.ping, H2_KEEPALIVE_PING, 8) == 0) {
        c->ka_pending = false;
        c->active_ms = c->active_prev; /* an answered keepalive is not activity */
        return H2_OK;
    }
    ev->type = H2_EV_PING_ACK;
    ev->stream_id = 0;
    ev->end_stream = false;
    memcpy(ev->u.ping, f->u.ping, 8);
    return H2_OK;
}

static h2_rv on_goaway(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    c->goaway_recv = true;
    ev->type = H2_EV_GOAWAY;
    ev->stream_id = 0;
    ev->end_stream = false;
    ev->u.goaway.last_stream_id = f->u.goaway.last_stream_id;
    ev->u.goaway.code = f->u.goaway.code;
    ev->u.goaway.debug = f->u.goaway.debug;
    ev->u.goaway.debug_len = f->u.goaway.debug_len;
    return H2_OK;
}

static h2_rv on_window_update(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    uint32_t sid = f->hdr.stream_id;
    uint32_t incr = f->u.window_increment;
    if (sid == 0) {
        c->send_window += incr;
        if (c->send_window > (int64_t)H2_MAX_WINDOW)
            return h2_conn_fail(c, H2_FLOW_CONTROL_ERROR, "connection window overflow");
    } else {
        h2_stream *s = h2_stream_find(c, sid);
        if (!s) {
            if (sid > c->last_peer_sid)
                return h2_conn_fail(c, H2_PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
            return H2_OK;
        }
        if (s->state == S_CLOSED)
            return H2_OK;
        s->send_window += incr;
        if (s->send_window > (int64_t)H2_MAX_WINDOW)
            return h2_stream_reset(c, s, H2_FLOW_CONTROL_ERROR, ev, false);
        h2_sched_push(c, s);
    }
    ev->type = H2_EV_WINDOW_UPDATE;
    ev->stream_id = sid;
    ev->end_stream = false;
    ev->u.window.increment = incr;
    return H2_OK;
}

static h2_rv on_priority_update(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    h2_stream *s = h2_stream_find(c, f->u.priority_update.prioritized_id);
    if (!s || !(s->flags & F_DELIVERED))
        return H2_OK; /* RFC 9218 §7.1 lets us ignore it for streams not open */
    uint8_t u = s->urgency;
    bool inc = (s->flags & F_INCREMENTAL) != 0;
    h2_http_parse_priority(f->u.priority_update.field, f->u.priority_update.field_len, &u, &inc);
    if (u >= H2_NURGENCY)
        u = H2_URGENCY_DEFAULT;
    bool queued = (s->flags & F_IN_SCHED) != 0;
    h2_sched_remove(c, s);
    s->urgency = u;
    s->flags = (uint16_t)(inc ? s->flags | F_INCREMENTAL : s->flags & ~F_INCREMENTAL);
    if (queued)
        h2_sched_push(c, s);
    ev->type = H2_EV_PRIORITY;
    ev->stream_id = s->id;
    ev->end_stream = false;
    ev->u.priority.urgency = u;
    ev->u.priority.incremental = inc;
    return H2_OK;
}

static const frame_fn frame_handlers[H2_FT_CONTINUATION + 1] = {
    [H2_FT_DATA] = NULL, /* streamed: see data_head() */
    [H2_FT_HEADERS] = h2_headers_on_headers,
    [H2_FT_PRIORITY] = on_priority,
    [H2_FT_RST_STREAM] = on_rst_stream,
    [H2_FT_SETTINGS] = on_settings,
    [H2_FT_PUSH_PROMISE] = on_push_promise,
    [H2_FT_PING] = on_ping,
    [H2_FT_GOAWAY] = on_goaway,
    [H2_FT_WINDOW_UPDATE] = on_window_update,
    [H2_FT_CONTINUATION] = h2_headers_on_continuation,
};

/* A complete non-DATA frame of a known type. */
h2_rv h2_frames_dispatch(h2_conn *c, const uint8_t *payload, h2_event *ev)
{
    h2_frame f;
    h2_fault fl = h2_frame_decode(&c->fh, payload, &f);
    if (fl.scope == H2_SCOPE_CONN)
        return h2_conn_fail(c, fl.code, fl.reason);
    if (fl.scope == H2_SCOPE_STREAM) {
        uint32_t sid = c->fh.stream_id;
        if (c->fh.type == H2_FT_HEADERS) {
            /* A self-dependent HEADERS is a stream error, but its block
             * must still be decoded to keep HPACK in step. */
            uint32_t off = 0, pad = 0;
            if (c->fh.flags & H2_FLAG_PADDED) {
                pad = payload[0];
                off = 1;
            }
            if (c->fh.flags & H2_FLAG_PRIORITY)
                off += 5;
            f.hdr = c->fh;
            f.u.headers.block = payload + off;
            f.u.headers.block_len = c->fh.length - off - pad;
            f.u.headers.has_priority = true;
            f.u.headers.priority.dependency = sid;
            return h2_headers_on_headers(c, &f, ev);
        }
        h2_stream *s = h2_stream_find(c, sid);
        if (s)
            return s->state == S_CLOSED ? H2_OK : h2_stream_reset(c, s, fl.code, ev, false);
        if (sid > c->last_peer_sid) {
            /* RST_STREAM must not be sent on an idle stream (§6.4).  A
             * PRIORITY of the wrong length there changes nothing: count it
             * and move on.  A stream depending on itself is a stream
             * PROTOCOL_ERROR (§5.3.1) that only a connection error can
             * report here (§5.4.1 allows it), as is any other frame on an
             * idle stream (§5.1). */
            if (c->fh.type == H2_FT_PRIORITY && fl.code != H2_PROTOCOL_ERROR)
                return h2_conn_glitch(c);
            return h2_conn_fail(c, H2_PROTOCOL_ERROR, fl.reason);
        }
        return h2_stream_error_id(c, sid, fl.code);
    }
    if (c->fh.type == H2_FT_PRIORITY_UPDATE)
        return on_priority_update(c, &f, ev);
    return frame_handlers[c->fh.type](c, &f, ev);
}
