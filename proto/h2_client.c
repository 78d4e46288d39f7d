/* h2_client.c - the client role (h2_client.h): the client preface, stream
 * ids, request heads, response heads, refused streams after a GOAWAY.
 * Everything else (DATA, trailers, flow control, control frames, limits)
 * is the engine both roles share; the few places where the roles differ
 * there test c->client. */
#include "h2_client.h"

#include <string.h>

#include "h2_conn_internal.h"
#include "h2_out.h"
#include "h2_stream.h"

h2_conn *h2_client_new(h2_ctx *x, uint64_t now_ms)
{
    const h2_limits *l = x->limits;
    h2_conn *c = h2_conn_alloc(x, now_ms);
    if (!c)
        return NULL;
    c->client = true;
    c->rstate = R_HEAD; /* the server's preface is a SETTINGS frame (§3.4) */
    c->next_sid = 1;
    uint8_t *p = h2_out_reserve(c, H2_PREFACE_LEN);
    if (!p) {
        h2_conn_free(c);
        return NULL;
    }
    memcpy(p, H2_PREFACE, H2_PREFACE_LEN);
    h2_out_advance(c, H2_PREFACE_LEN);
    h2_setting st[6];
    size_t n = 0;
    st[n++] = (h2_setting){H2_SET_ENABLE_PUSH, 0};
    n += h2_conn_limit_settings(l, st + n);
    if (!h2_conn_preface(c, st, n)) {
        h2_conn_free(c);
        return NULL;
    }
    return c;
}

uint32_t h2_client_room(const h2_conn *c)
{
    if (c->dead || c->goaway_recv || c->goaway_sent || c->next_sid > H2_STREAM_ID_MASK)
        return 0;
    uint32_t cap = c->peer_max_streams < c->lim->max_concurrent_streams
                       ? c->peer_max_streams
                       : c->lim->max_concurrent_streams;
    return c->nstreams >= cap ? 0 : cap - c->nstreams;
}

static bool pseudo_ok(h2_str v)
{
    return v.p && v.len && h2_http_valid_value(v.p, v.len);
}

static hpack_field pseudo(const char *name, uint32_t nlen, h2_str v)
{
    return (hpack_field){(const uint8_t *)name, v.p, nlen, v.len, 0, 0};
}

/* Give up a stream whose head could not be queued (nothing was sent). */
static void unopen(h2_conn *c, h2_stream *s)
{
    s->flags = 0;
    s->state = S_CLOSED;
    h2_stream_maybe_free(c, s);
}

h2_rv h2_client_request(h2_conn *c, const h2_client_req *r, bool end_stream, void *user,
                        uint32_t *stream_id)
{
    if (c->dead || c->goaway_recv || c->goaway_sent || c->next_sid > H2_STREAM_ID_MASK)
        return H2_E_CLOSED;
    if (!h2_client_room(c))
        return H2_E_AGAIN;
    if (!pseudo_ok(r->method) || !pseudo_ok(r->scheme) || !pseudo_ok(r->path) ||
        (r->authority.p && !pseudo_ok(r->authority)) || r->nfields > UINT32_MAX ||
        h2_http_check_response_fields(r->fields, (uint32_t)r->nfields) != H2_OK)
        return H2_E_INVAL;
    hpack_field ps[4];
    size_t np = 0;
    ps[np++] = pseudo(":method", 7, r->method);
    ps[np++] = pseudo(":scheme", 7, r->scheme);
    if (r->authority.p)
        ps[np++] = pseudo(":authority", 10, r->authority);
    ps[np++] = pseudo(":path", 5, r->path);

    uint32_t sid = c->next_sid;
    h2_req_head head = {.content_length = -1, .urgency = H2_URGENCY_DEFAULT};
    h2_stream *s = h2_stream_open(c, sid, false, &head);
    if (!s)
        return h2_conn_nomem(c);
    bool is_head = r->method.len == 4 && memcmp(r->method.p, "HEAD", 4) == 0;
    s->flags = (uint16_t)(F_DELIVERED | F_HEAD_SENT | (is_head ? F_HEAD_REQ : 0));
    s->user = user;
    h2_rv rv = h2_out_header_block(c, sid, ps, np, r->fields, r->nfields, end_stream);
    if (rv != H2_OK) {
        unopen(c, s);
        if (rv == H2_E_INVAL)
            return rv; /* refused before encoding: the encoder is in step */
        return rv == H2_E_NOMEM ? h2_conn_nomem(c)
                                : h2_conn_fail(c, H2_INTERNAL_ERROR, "encoder failed");
    }
    c->next_sid += 2;
    c->last_peer_sid = sid; /* the highest id of the side that opens streams */
    c->stats.requests++;
    if (end_stream) {
        s->flags |= F_END_QUEUED;
        h2_stream_local_end(c, s);
    }
    *stream_id = sid;
    return H2_OK;
}

/* The final head on a response that has no content by definition
 * (RFC 9110 §6.4.1: to HEAD, 204, 304): its content-length describes
 * another response and is not enforced (RFC 9113 §8.1.1). */
static bool no_content(const h2_stream *s, uint16_t status)
{
    return (s->flags & F_HEAD_REQ) || status == 204 || status == 304;
}

h2_rv h2_client_on_head(h2_conn *c, h2_stream *s, const hpack_sink *sk, bool end_stream,
                        h2_event *ev)
{
    if (s->flags & F_RESET_SENT)
        return H2_OK; /* late frame on a stream we reset */
    if (s->state == S_HALF_REMOTE || s->state == S_CLOSED)
        return h2_stream_reset(c, s, H2_STREAM_CLOSED, ev, false);
    if (sk->overflow) {
        /* More than we take (§10.5.1): the response is discarded. */
        h2_conn_hit(c, H2_LIMIT_HEADER_LIST);
        return h2_stream_reset(c, s, H2_CANCEL, ev, false);
    }
    h2_resp_head head;
    h2_fault f = h2_http_parse_response(sk->fields, sk->count, &head);
    if (!h2_fault_ok(f))
        return h2_stream_reset(c, s, f.code, ev, false);
    if (head.status < 200) {
        /* §8.1: an informational head never ends the stream; 101 is not
         * for HTTP/2 (§8.6). */
        if (end_stream || head.status == 101)
            return h2_stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
        if (s->flags & F_INFO_SEEN) {
            h2_rv rv = h2_conn_glitch(c); /* 1xx floods cost the glitch budget */
            if (rv != H2_OK)
                return rv;
        }
        s->flags |= F_INFO_SEEN;
    } else {
        if (no_content(s, head.status))
            s->content_length = -1;
        else if (end_stream && head.content_length > 0)
            return h2_stream_reset(c, s, H2_PROTOCOL_ERROR, ev, false);
        else
            s->content_length = head.content_length;
        s->flags |= F_HEAD_RECV;
        if (end_stream)
            h2_stream_remote_end(s);
    }
    ev->type = H2_EV_RESPONSE;
    ev->stream_id = s->id;
    ev->end_stream = end_stream;
    ev->u.response = head;
    return H2_OK;
}

/* A GOAWAY: streams above last were never processed.  They close now
 * (queued request bytes dropped, late frames ignored) and are reported one
 * by one by h2_client_recv. */
static void refuse_above(h2_conn *c, uint32_t last)
{
    for (uint32_t b = 0; c->st && b < H2_NBUCKETS; b++)
        for (h2_stream *s = c->st->buckets[b]; s; s = s->hnext)
            if (s->id > last && s->state != S_CLOSED && (s->flags & F_DELIVERED)) {
                h2_stream_close(c, s);
                s->flags |= F_REFUSED | F_RESET_SENT;
                c->refused_pending++;
            }
}

static void report_refused(h2_conn *c, h2_event *ev)
{
    for (uint32_t b = 0; c->st && b < H2_NBUCKETS; b++)
        for (h2_stream *s = c->st->buckets[b]; s; s = s->hnext)
            if (s->flags & F_REFUSED) {
                s->flags &= (uint16_t)~F_REFUSED;
                c->refused_pending--;
                ev->type = H2_EV_STREAM_RESET;
                ev->stream_id = s->id;
                ev->end_stream = false;
                ev->u.reset.code = H2_REFUSED_STREAM;
                ev->u.reset.remote = true;
                return;
            }
    c->refused_pending = 0; /* detached meanwhile: nothing left to tell */
}

h2_rv h2_client_recv(h2_conn *c, const uint8_t *in, size_t len, uint64_t now_ms, size_t *consumed,
                     h2_event *ev)
{
    if (c->refused_pending && !c->dead) {
        *consumed = 0;
        ev->type = H2_EV_NONE;
        report_refused(c, ev);
        if (ev->type != H2_EV_NONE)
            return H2_OK;
    }
    h2_rv rv = h2_conn_recv(c, in, len, now_ms, consumed, ev);
    if (rv == H2_OK && ev->type == H2_EV_GOAWAY)
        refuse_above(c, ev->u.goaway.last_stream_id);
    return rv;
}

h2_rv h2_client_stream_done(h2_conn *c, uint32_t stream_id)
{
    h2_stream *s = h2_stream_find(c, stream_id);
    if (!s || !(s->flags & F_DELIVERED))
        return H2_E_NOSTREAM;
    if (s->flags & F_REFUSED) {
        s->flags &= (uint16_t)~F_REFUSED;
        c->refused_pending--;
    }
    return h2_conn_stream_detach(c, stream_id); /* it resets an open stream with CANCEL */
}
