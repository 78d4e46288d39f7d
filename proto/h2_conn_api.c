/* h2_conn_api.c - what the application calls on a connection (h2_conn.h
 * "Responding" and "Connection control"): response heads, body chunks by
 * reference, trailers, resets, consumed body bytes, detach, PING,
 * graceful shutdown and GOAWAY. */
#include "h2_conn_internal.h"

#include <string.h>

#include "h2_out.h"
#include "h2_sched.h"
#include "h2_stream.h"

/* A stream the application may still write to. */
static h2_rv writable_stream(h2_conn *c, uint32_t sid, h2_stream **out)
{
    if (c->dead)
        return H2_E_CLOSED;
    h2_stream *s = h2_stream_find(c, sid);
    if (!s)
        return H2_E_NOSTREAM;
    if (s->state == S_CLOSED || s->state == S_HALF_LOCAL || (s->flags & F_END_QUEUED))
        return H2_E_STATE;
    *out = s;
    return H2_OK;
}

h2_rv h2_conn_respond(h2_conn *c, uint32_t stream_id, uint16_t status, const hpack_field *fields,
                      size_t n, bool end_stream)
{
    return h2_conn_respond_checked(c, stream_id, status, fields, n, n, end_stream);
}

h2_rv h2_conn_respond_checked(h2_conn *c, uint32_t stream_id, uint16_t status,
                              const hpack_field *fields, size_t n, size_t n_check, bool end_stream)
{
    h2_stream *s;
    h2_rv rv = writable_stream(c, stream_id, &s);
    if (rv != H2_OK)
        return rv;
    if (s->flags & F_HEAD_SENT)
        return H2_E_STATE;
    bool info = status < 200;
    if (status < 100 || status > 599 || status == 101 || (info && end_stream))
        return H2_E_INVAL;
    if (n > UINT32_MAX || n_check > n ||
        h2_http_check_response_fields(fields, (uint32_t)n_check) != H2_OK)
        return H2_E_INVAL;
    uint8_t digits[3] = {(uint8_t)('0' + status / 100), (uint8_t)('0' + status / 10 % 10),
                         (uint8_t)('0' + status % 10)};
    hpack_field st = {(const uint8_t *)":status", digits, 7, 3, 0, 0};
    rv = h2_out_header_block(c, stream_id, &st, 1, fields, n, end_stream);
    if (rv != H2_OK)
        return rv == H2_E_NOMEM ? h2_conn_nomem(c) : rv;
    if (!info)
        s->flags |= F_HEAD_SENT;
    if (end_stream) {
        s->flags |= F_END_QUEUED;
        h2_stream_local_end(c, s);
        h2_stream_maybe_free(c, s);
    }
    return H2_OK;
}

h2_rv h2_conn_send_data(h2_conn *c, uint32_t stream_id, const uint8_t *data, uint64_t len,
                        bool end_stream, h2_release_fn release, void *release_ctx)
{
    h2_stream *s = NULL;
    h2_rv rv = writable_stream(c, stream_id, &s);
    if (rv == H2_OK && !(s->flags & F_HEAD_SENT))
        rv = H2_E_STATE;
    if (rv == H2_OK && len) {
        h2_chunk *ch = h2_pool_get(&c->x->chunks);
        if (!ch) {
            rv = h2_conn_nomem(c);
        } else {
            ch->next = NULL;
            ch->data = data;
            ch->len = len;
            ch->framed = 0;
            ch->refs = 0;
            ch->orphan = false;
            ch->release = release;
            ch->release_ctx = release_ctx;
            if (s->ch_tail)
                s->ch_tail->next = ch;
            else
                s->ch_head = ch;
            s->ch_tail = ch;
            if (!h2_out_pending(c))
                c->progress_ms = c->now;
            s->unframed += len;
            c->unframed += len;
            release = NULL; /* the chunk owns the release now */
        }
    }
    if (release)
        release(release_ctx, data, (size_t)len);
    if (rv != H2_OK)
        return rv;
    if (end_stream)
        s->flags |= F_END_QUEUED;
    h2_sched_push(c, s);
    return H2_OK;
}

uint64_t h2_conn_stream_buffered(const h2_conn *c, uint32_t stream_id)
{
    const h2_stream *s = h2_stream_find(c, stream_id);
    return s ? s->unframed : 0;
}

h2_rv h2_conn_send_trailers(h2_conn *c, uint32_t stream_id, const hpack_field *fields, size_t n)
{
    h2_stream *s;
    h2_rv rv = writable_stream(c, stream_id, &s);
    if (rv != H2_OK)
        return rv;
    if (!(s->flags & F_HEAD_SENT))
        return H2_E_STATE;
    if (n == 0 || n > UINT32_MAX || h2_http_check_response_fields(fields, (uint32_t)n) != H2_OK)
        return H2_E_INVAL;
    /* Copied: encoding waits until the data before them has been framed. */
    size_t bytes = sizeof(h2_trailers) + n * sizeof(hpack_field);
    for (size_t i = 0; i < n; i++)
        bytes += (size_t)fields[i].name_len + fields[i].value_len;
    /* Small ones (all real ones) borrow an output block: no allocation. */
    h2_trailers *t =
        bytes <= H2_OUT_BLOCK_SIZE ? h2_pool_get(&c->x->blocks) : h2_malloc(h2_conn_mem(c), bytes);
    if (!t)
        return h2_conn_nomem(c);
    t->pooled = bytes <= H2_OUT_BLOCK_SIZE;
    t->n = n;
    uint8_t *w = (uint8_t *)&t->f[n];
    for (size_t i = 0; i < n; i++) {
        t->f[i] = fields[i];
        memcpy(w, fields[i].name, fields[i].name_len);
        t->f[i].name = w;
        w += fields[i].name_len;
        memcpy(w, fields[i].value, fields[i].value_len);
        t->f[i].value = w;
        w += fields[i].value_len;
    }
    s->trailers = t;
    s->flags |= F_END_QUEUED;
    h2_sched_push(c, s);
    return H2_OK;
}

h2_rv h2_conn_reset_stream(h2_conn *c, uint32_t stream_id, h2_code code)
{
    if (c->dead)
        return H2_E_CLOSED;
    h2_stream *s = h2_stream_find(c, stream_id);
    if (!s)
        return H2_E_NOSTREAM;
    if (s->state == S_CLOSED)
        return H2_E_STATE;
    return h2_stream_reset(c, s, code, NULL, true);
}

h2_rv h2_conn_consume(h2_conn *c, uint32_t stream_id, uint64_t n)
{
    if (c->dead)
        return H2_E_CLOSED;
    h2_stream *s = h2_stream_find(c, stream_id);
    if (!s)
        return H2_E_NOSTREAM; /* its held bytes were credited when it went */
    if (n > s->recv_held)
        n = s->recv_held;
    s->recv_held -= n;
    h2_stream_credit_conn(c, n);
    h2_stream_credit(c, s, n);
    return H2_OK;
}

h2_rv h2_conn_consume_conn(h2_conn *c, uint32_t stream_id, uint64_t n)
{
    if (c->dead)
        return H2_E_CLOSED;
    h2_stream *s = h2_stream_find(c, stream_id);
    if (!s)
        return H2_E_NOSTREAM;
    if (n > s->recv_held)
        n = s->recv_held;
    s->recv_held -= n; /* no longer owed to the connection at the stream's end */
    h2_stream_credit_conn(c, n);
    return H2_OK;
}

h2_rv h2_conn_consume_stream(h2_conn *c, uint32_t stream_id, uint64_t n)
{
    if (c->dead)
        return H2_E_CLOSED;
    h2_stream *s = h2_stream_find(c, stream_id);
    if (!s)
        return H2_E_NOSTREAM;
    h2_stream_credit(c, s, n);
    return H2_OK;
}

h2_rv h2_conn_stream_detach(h2_conn *c, uint32_t stream_id)
{
    h2_stream *s = h2_stream_find(c, stream_id);
    if (!s || !(s->flags & F_DELIVERED))
        return H2_E_NOSTREAM;
    s->flags &= (uint16_t)~F_DELIVERED;
    s->user = NULL;
    if (!c->dead && s->state != S_CLOSED) {
        /* A client gives the response up (h2_client_stream_done); tested
         * only here, off a server's common path (its streams are closed
         * when detached). */
        if (c->client)
            return h2_stream_reset(c, s, H2_CANCEL, NULL, true); /* frees it */
        if (!(s->flags & F_END_QUEUED)) {
            /* The handler stopped without finishing its response. */
            h2_rv rv = h2_stream_reset(c, s, H2_INTERNAL_ERROR, NULL, true);
            if (rv != H2_OK)
                return rv;
            return H2_OK; /* stream_reset freed it */
        }
        if ((s->flags & F_END_SENT) && s->state == S_HALF_LOCAL) {
            /* Response complete, request body unwanted (RFC 9113 §8.1). */
            if (!h2_out_rst(c, s->id, H2_NO_ERROR, false))
                return h2_conn_nomem(c);
            s->flags |= F_RESET_SENT;
            h2_stream_reset_remember(c, s->id);
            h2_stream_close(c, s);
        }
    }
    if (c->dead)
        h2_stream_close(c, s);
    h2_stream_maybe_free(c, s);
    return H2_OK;
}

void h2_conn_stream_set_user(h2_conn *c, uint32_t stream_id, void *user)
{
    h2_stream *s = h2_stream_find(c, stream_id);
    if (s)
        s->user = user;
}

void *h2_conn_stream_user(const h2_conn *c, uint32_t stream_id)
{
    const h2_stream *s = h2_stream_find(c, stream_id);
    return s ? s->user : NULL;
}

h2_rv h2_conn_ping(h2_conn *c, const uint8_t opaque[8])
{
    if (c->dead)
        return H2_E_CLOSED;
    return h2_out_ping(c, false, opaque) ? H2_OK : h2_conn_nomem(c);
}

/* The last stream id a GOAWAY of ours names: the peer's streams we took.
 * A client takes none (push is disabled). */
static uint32_t goaway_last_id(const h2_conn *c)
{
    return c->client ? 0 : c->last_peer_sid;
}

/* The second GOAWAY of a graceful shutdown: the last stream we take. */
bool h2_conn_shutdown_final(h2_conn *c)
{
    c->shutdown_phase = 2;
    if (c->goaway_sent)
        return true;
    if (!h2_out_goaway(c, goaway_last_id(c), H2_NO_ERROR, NULL))
        return false;
    c->goaway_sent = true;
    c->goaway_last = goaway_last_id(c);
    return true;
}

h2_rv h2_conn_shutdown(h2_conn *c)
{
    if (c->dead)
        return H2_E_CLOSED;
    if (c->goaway_sent || c->shutdown_phase)
        return H2_OK;
    if (!h2_out_goaway(c, H2_STREAM_ID_MASK, H2_NO_ERROR, NULL) ||
        !h2_out_ping(c, false, (const uint8_t *)H2_SHUTDOWN_PING))
        return h2_conn_nomem(c);
    c->shutdown_phase = 1;
    c->shutdown_ms = c->now;
    return H2_OK;
}

h2_rv h2_conn_goaway(h2_conn *c, h2_code code, const char *debug)
{
    if (c->dead)
        return H2_E_CLOSED;
    if (code != H2_NO_ERROR) {
        h2_conn_fail(c, code, debug ? debug : "going away");
        return H2_OK;
    }
    if (!h2_out_goaway(c, goaway_last_id(c), H2_NO_ERROR, debug))
        return h2_conn_nomem(c);
    c->goaway_sent = true;
    c->goaway_last = goaway_last_id(c);
    return H2_OK;
}

#define H2_PING_TAG0 'r'
#define H2_PING_TAG1 't'

h2_rv h2_conn_ping_timed(h2_conn *c, uint64_t now_us)
{
    uint8_t o[8] = {H2_PING_TAG0, H2_PING_TAG1};
    for (int i = 7; i >= 2; i--, now_us >>= 8)
        o[i] = (uint8_t)now_us;
    return h2_conn_ping(c, o);
}

bool h2_ping_sent_us(const uint8_t opaque[8], uint64_t *sent_us)
{
    if (opaque[0] != H2_PING_TAG0 || opaque[1] != H2_PING_TAG1)
        return false;
    uint64_t v = 0;
    for (int i = 2; i < 8; i++)
        v = v << 8 | opaque[i];
    *sent_us = v;
    return true;
}

h2_rv h2_conn_open_upgraded(h2_conn *c, const uint8_t *settings, size_t len,
                            const h2_req_head *head)
{
    if (c->dead || c->st || c->last_peer_sid || len % 6 || len / 6 > c->lim->max_settings_entries)
        return H2_E_INVAL;
    for (uint32_t i = 0; i < len / 6; i++) {
        h2_setting st = h2_settings_get(settings, i);
        if (!h2_fault_ok(h2_settings_check(st.id, st.value)))
            return H2_E_INVAL;
    }
    /* RFC 7540 §3.2.1: as if sent in a SETTINGS frame, acknowledged by the
     * 101 (no ACK).  No stream exists yet: windows need no adjusting. */
    for (uint32_t i = 0; i < len / 6; i++) {
        h2_setting st = h2_settings_get(settings, i);
        switch (st.id) {
        case H2_SET_HEADER_TABLE_SIZE: hpack_encoder_set_peer_table_size(&c->enc, st.value); break;
        case H2_SET_INITIAL_WINDOW_SIZE: c->peer_iws = st.value; break;
        case H2_SET_MAX_FRAME_SIZE: c->peer_max_frame = st.value; break;
        case H2_SET_NO_RFC7540_PRIORITIES: c->no_rfc7540 = st.value == 1; break;
        default: break;
        }
    }
    if (!h2_stream_open(c, 1, true, head))
        return H2_E_NOMEM;
    c->last_peer_sid = 1;
    c->last_delivered_sid = 1;
    c->stats.requests++;
    return H2_OK;
}
