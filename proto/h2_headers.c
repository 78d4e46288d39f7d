/* h2_headers.c - header blocks (h2_headers.h): HEADERS + CONTINUATION
 * assembly, HPACK decoding, requests, trailers, 431s. */
#include "h2_headers.h"

#include <string.h>

#include "h2_client.h"
#include "h2_out.h"
#include "h2_stream.h"

static h2_rv respond_431(h2_conn *c, uint32_t sid, bool end_stream)
{
    static const hpack_field st = {(const uint8_t *)":status", (const uint8_t *)"431", 7, 3, 0, 0};
    h2_rv rv = h2_out_header_block(c, sid, &st, 1, NULL, 0, true);
    if (rv != H2_OK)
        return rv == H2_E_NOMEM ? h2_conn_nomem(c)
                                : h2_conn_fail(c, H2_INTERNAL_ERROR, "encoder failed");
    if (!end_stream && !h2_out_rst(c, sid, H2_NO_ERROR, true))
        return h2_conn_nomem(c);
    h2_stream_reset_remember(c, sid);
    return h2_conn_glitch(c);
}

/* Trailers on an existing stream. */
static h2_rv on_trailers(h2_conn *c, h2_stream *s, const hpack_sink *sk, bool end_stream,
                         h2_event *ev)
{
    if (s->flags & F_RESET_SENT)
        return H2_OK; /* late frame on a stream we reset */
    if (s->state == S_HALF_REMOTE || s->state == S_CLOSED)
        return h2_stream_reset(c, s, H2_STREAM_CLOSED, ev, false);
    if (!(s->flags & F_DELIVERED)) {
        /* The handler is gone; the request just ends. */
        if (end_stream) {
            h2_stream_remote_end(s);
            h2_stream_maybe_free(c, s);
        }
        return H2_OK;
    }
    if (!end_stream || sk->overflow)
        return h2_stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
    h2_fault f = h2_http_check_trailers(sk->fields, sk->count);
    if (!h2_fault_ok(f))
        return h2_stream_reset(c, s, f.code, ev, false);
    if (s->content_length >= 0 && s->data_recv != (uint64_t)s->content_length)
        return h2_stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
    h2_stream_remote_end(s);
    ev->type = H2_EV_TRAILERS;
    ev->stream_id = s->id;
    ev->end_stream = true;
    ev->u.trailers.fields = sk->fields;
    ev->u.trailers.n = sk->count;
    if (s->state == S_CLOSED)
        h2_stream_maybe_free(c, s);
    return H2_OK;
}

/* HPACK-decode a block into the context scratch.  H2_OK, or the
 * connection error (COMPRESSION_ERROR, or the hard header-list limit). */
static h2_rv decode_block(h2_conn *c, const uint8_t *block, uint32_t len, hpack_sink *sk)
{
    const h2_limits *l = c->lim;
    *sk = (hpack_sink){
        .fields = c->x->fields,
        .fields_cap = l->max_header_fields_soft,
        .buf = c->x->fieldbuf,
        .buf_cap = l->max_header_list_size,
        .soft_list_size = l->max_header_list_size,
        .hard_list_size = l->max_header_list_size * l->header_list_hard_factor,
        .soft_fields = l->max_header_fields_soft,
        .hard_fields = l->max_header_fields_hard,
        .digest = h2_http_field_digest,
        .static_digests = c->x->static_digests,
    };
    h2_rv rv = hpack_decode_block(&c->dec, block, len, sk);
    if (rv == H2_E_NOMEM)
        return h2_conn_nomem(c);
    if (rv == H2_E_LIMIT)
        return h2_conn_limit_fail(c, H2_LIMIT_HEADER_LIST, H2_ENHANCE_YOUR_CALM,
                                  "header list too large");
    if (rv != H2_OK)
        return h2_conn_fail(c, H2_COMPRESSION_ERROR, "header block decoding failed");
    return H2_OK;
}

/* A block on an id at or below the highest seen: trailers on a live
 * stream, a late block we ignore, or a connection error. */
static h2_rv block_on_known_id(h2_conn *c, uint32_t sid, const hpack_sink *sk, bool end_stream,
                               h2_event *ev)
{
    h2_stream *s = h2_stream_find(c, sid);
    if (s) {
        if (c->client && !(s->flags & F_HEAD_RECV))
            return h2_client_on_head(c, s, sk, end_stream, ev);
        return on_trailers(c, s, sk, end_stream, ev);
    }
    /* A stream that existed.  Ours to ignore if we reset it lately, or if
     * it came after our GOAWAY (never processed). */
    if (h2_stream_reset_recent(c, sid) || h2_stream_ignored_after_goaway(c, sid))
        return H2_OK;
    /* Without history we cannot tell a closed stream from a skipped id;
     * the newest one is certainly closed (§5.1), an older one is taken as a
     * new stream with a decreasing id (§5.1.1). */
    if (sid == c->last_peer_sid || c->client)
        return h2_conn_fail(c, H2_STREAM_CLOSED, "HEADERS on a closed stream");
    return h2_conn_fail(c, H2_PROTOCOL_ERROR, "stream id not increasing");
}

/* Count a delivered request; the max_requests-th one sends a graceful
 * GOAWAY: finish this one, refuse later ones. */
static h2_rv count_request(h2_conn *c, uint32_t sid)
{
    const h2_limits *l = c->lim;
    c->last_delivered_sid = sid;
    c->stats.requests++;
    if (l->max_requests && c->stats.requests >= l->max_requests && !c->goaway_sent) {
        if (!h2_out_goaway(c, sid, H2_NO_ERROR, "max requests"))
            return h2_conn_nomem(c);
        h2_conn_hit(c, H2_LIMIT_MAX_REQUESTS);
        c->goaway_sent = true;
        c->goaway_last = sid;
    }
    return H2_OK;
}

/* A block opening a new stream: ignored after our GOAWAY, refused,
 * answered 431, rejected as malformed, or delivered as H2_EV_REQUEST. */
static h2_rv block_opens_stream(h2_conn *c, uint32_t sid, const hpack_sink *sk, bool end_stream,
                                bool selfdep, h2_event *ev)
{
    const h2_limits *l = c->lim;
    if (__builtin_expect(c->client, 0)) /* servers open no streams: push is disabled (§8.4) */
        return h2_conn_fail(c, H2_PROTOCOL_ERROR, "HEADERS on an idle stream");
    c->last_peer_sid = sid;
    if (c->goaway_sent && sid > c->goaway_last)
        return H2_OK; /* RFC 9113 §6.8: streams after our GOAWAY are ignored */
    if (selfdep)
        return h2_stream_error_id(c, sid, H2_PROTOCOL_ERROR);
    if (c->nstreams >= l->max_concurrent_streams) {
        c->stats.refused++;
        h2_conn_hit(c, H2_LIMIT_STREAMS);
        return h2_stream_error_id(c, sid, H2_REFUSED_STREAM);
    }
    if (sk->overflow) {
        h2_conn_hit(c, H2_LIMIT_HEADER_LIST);
        return respond_431(c, sid, end_stream);
    }
    h2_req_head head;
    h2_fault f =
        h2_http_parse_request(sk->fields, sk->count, l->enable_connect_protocol != 0, &head);
    if (!h2_fault_ok(f))
        return h2_stream_error_id(c, sid, f.code);
    if (end_stream && head.content_length > 0)
        return h2_stream_error_id(c, sid, H2_PROTOCOL_ERROR);
    if (!h2_stream_open(c, sid, end_stream, &head))
        return h2_conn_nomem(c);
    h2_rv rv = count_request(c, sid);
    if (rv != H2_OK)
        return rv;
    ev->type = H2_EV_REQUEST;
    ev->stream_id = sid;
    ev->end_stream = end_stream;
    ev->u.request = head;
    return H2_OK;
}

static h2_rv on_header_block(h2_conn *c, uint32_t sid, const uint8_t *block, uint32_t len,
                             bool end_stream, bool selfdep, h2_event *ev)
{
    /* Decode first, whatever becomes of the stream: the decoder must stay in
     * step with the peer's encoder (RFC 9113 §4.3). */
    hpack_sink sk;
    h2_rv rv = decode_block(c, block, len, &sk);
    if (rv != H2_OK)
        return rv;
    /* An id above every one seen cannot name a stream: no lookup. */
    if (sid <= c->last_peer_sid)
        return block_on_known_id(c, sid, &sk, end_stream, ev);
    return block_opens_stream(c, sid, &sk, end_stream, selfdep, ev);
}

static h2_rv hb_append(h2_conn *c, const uint8_t *p, uint32_t n)
{
    if ((uint64_t)c->hb_len + n > c->lim->max_header_block)
        return h2_conn_limit_fail(c, H2_LIMIT_HEADER_BLOCK, H2_ENHANCE_YOUR_CALM,
                                  "header block too large");
    if (c->hb_len + n > c->hb_cap) {
        uint32_t cap = c->hb_cap ? c->hb_cap : 4096;
        while (cap < c->hb_len + n)
            cap *= 2;
        if (cap > c->lim->max_header_block)
            cap = c->lim->max_header_block;
        uint8_t *nb = h2_realloc(h2_conn_mem(c), c->hb, cap);
        if (!nb)
            return h2_conn_nomem(c);
        c->hb = nb;
        c->hb_cap = cap;
    }
    if (n)
        memcpy(c->hb + c->hb_len, p, n);
    c->hb_len += n;
    return H2_OK;
}

void h2_headers_reset(h2_conn *c)
{
    h2_free(h2_conn_mem(c), c->hb);
    c->hb = NULL;
    c->hb_len = c->hb_cap = 0;
    c->hb_active = false;
}

h2_rv h2_headers_on_headers(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    uint32_t sid = f->hdr.stream_id;
    if ((sid & 1u) == 0)
        return h2_conn_fail(c, H2_PROTOCOL_ERROR,
                            c->client ? "HEADERS on an even stream id (push is disabled)"
                                      : "even stream id from a client");
    bool end_stream = (f->hdr.flags & H2_FLAG_END_STREAM) != 0;
    const h2_headers *h = &f->u.headers;
    if (h->block_len > c->lim->max_header_block)
        return h2_conn_limit_fail(c, H2_LIMIT_HEADER_BLOCK, H2_ENHANCE_YOUR_CALM,
                                  "header block too large");
    bool selfdep = h->has_priority && h->priority.dependency == sid;
    if (f->hdr.flags & H2_FLAG_END_HEADERS)
        return on_header_block(c, sid, h->block, h->block_len, end_stream, selfdep, ev);
    if (h->block_len == 0) {
        h2_rv rv = h2_conn_glitch(c); /* empty non-final fragment (CVE-2019-9518) */
        if (rv != H2_OK)
            return rv;
    }
    c->hb_active = true;
    c->hb_sid = sid;
    c->hb_ncont = 0;
    c->hb_end_stream = end_stream;
    c->hb_selfdep = selfdep;
    c->hb_start_ms = c->now;
    c->hb_len = 0;
    return hb_append(c, h->block, h->block_len);
}

h2_rv h2_headers_on_continuation(h2_conn *c, const h2_frame *f, h2_event *ev)
{
    /* on_frame_head() already checked that a block is open on this stream. */
    if (++c->hb_ncont > c->lim->max_continuations)
        return h2_conn_limit_fail(c, H2_LIMIT_CONTINUATIONS, H2_ENHANCE_YOUR_CALM,
                                  "too many CONTINUATION frames");
    uint32_t n = f->u.continuation.block_len;
    bool end = (f->hdr.flags & H2_FLAG_END_HEADERS) != 0;
    if (n == 0 && !end) {
        h2_rv rv = h2_conn_glitch(c);
        if (rv != H2_OK)
            return rv;
    }
    h2_rv rv = hb_append(c, f->u.continuation.block, n);
    if (rv != H2_OK || !end)
        return rv;
    rv = on_header_block(c, c->hb_sid, c->hb, c->hb_len, c->hb_end_stream, c->hb_selfdep, ev);
    /* Event fields point into the context scratch, not into hb: free it. */
    h2_headers_reset(c);
    return rv;
}
