/* conn_h1.c - HTTP/1.1 connections: the codec (proto/h1_conn) behind the
 * connection protocol table (conn_proto.h).  See conn_h1.h. */
#include "conn_h1.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "conn_ws.h"
#include "log.h"
#include "offload.h"
#include "server.h"
#include "shard.h"
#include "stream.h"
#include "tls.h"

static struct conn_h1 *H(const conn *c)
{
    return c->h1;
}

bool conn_h1_start(conn *c, uint64_t accepted_ms)
{
    struct conn_h1 *e = calloc(1, sizeof *e);
    if (!e)
        return false;
    e->codec = h1_conn_new(&c->sh->h1, c->tls != NULL, accepted_ms);
    if (!e->codec) {
        free(e);
        return false;
    }
    c->h1 = e;
    e->drain_after_first = c->sh->draining; /* accepted while draining: see conn_h1.h */
    return true;
}

/* The body bytes a paused handler may leave unconsumed before reading
 * stops: an HTTP/2 stream's window. */
static uint64_t body_window(const conn *c)
{
    return c->sh->srv->limits.initial_window_size;
}

/* Parsing ended: discard input, close once the output is out (bounded). */
static void parsing_ended(conn *c)
{
    struct conn_h1 *e = H(c);
    if (e->failed)
        return;
    e->failed = true;
    e->linger_deadline = c->sh->now + c->sh->srv->limits.send_timeout_ms;
    h2_fault f = h1_conn_fault(e->codec);
    if (f.reason)
        log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: HTTP/1.1 %u: %s", c->slot,
                h1_conn_error_status(e->codec), f.reason);
}

/* base64url (RFC 4648 §5; padding tolerated) into out; -1 if invalid. */
static int64_t b64url_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = in[i];
        uint32_t v;
        if (ch >= 'A' && ch <= 'Z')
            v = (uint32_t)(ch - 'A');
        else if (ch >= 'a' && ch <= 'z')
            v = (uint32_t)(ch - 'a') + 26;
        else if (ch >= '0' && ch <= '9')
            v = (uint32_t)(ch - '0') + 52;
        else if (ch == '-' || ch == '+')
            v = 62;
        else if (ch == '_' || ch == '/')
            v = 63;
        else if (ch == '=')
            break;
        else
            return -1;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (int64_t)o;
}

static size_t str_room(h2_str s)
{
    return s.len;
}

static h2_str str_put(h2_str s, uint8_t **w)
{
    h2_str r = {*w, s.len};
    if (s.len)
        memcpy(*w, s.p, s.len);
    *w += s.len;
    return r;
}

/* A request head and what it points to, in one block (free() it). */
static h2_req_head *head_copy(const h2_req_head *h)
{
    size_t bytes = sizeof *h + h->nfields * sizeof(hpack_field) + str_room(h->method) +
                   str_room(h->scheme) + str_room(h->authority) + str_room(h->path) +
                   str_room(h->protocol);
    for (uint32_t i = 0; i < h->nfields; i++)
        bytes += h->fields[i].name_len + h->fields[i].value_len;
    h2_req_head *r = malloc(bytes);
    if (!r)
        return NULL;
    *r = *h;
    hpack_field *f = (hpack_field *)(void *)(r + 1);
    uint8_t *w = (uint8_t *)(f + h->nfields);
    r->method = str_put(h->method, &w);
    r->scheme = str_put(h->scheme, &w);
    r->authority = str_put(h->authority, &w);
    r->path = str_put(h->path, &w);
    r->protocol = str_put(h->protocol, &w);
    for (uint32_t i = 0; i < h->nfields; i++) {
        f[i] = h->fields[i];
        f[i].name = str_put((h2_str){h->fields[i].name, h->fields[i].name_len}, &w).p;
        f[i].value = str_put((h2_str){h->fields[i].value, h->fields[i].value_len}, &w).p;
    }
    r->fields = f;
    return r;
}

/* An h2c Upgrade request: accept it (101 queued, the request kept for
 * HTTP/2) when enabled and its HTTP2-Settings decode; else false and it
 * goes to the handler as HTTP/1.1 (the upgrade is declined). */
static bool h2c_accept(conn *c, const h1_event *ev)
{
    struct conn_h1 *e = H(c);
    const h1_request *rq = &ev->u.request;
    if (!c->sh->srv->cfg.h2c_upgrade || c->sh->draining || rq->http2_settings.len > 4096)
        return false;
    uint8_t *set = malloc(rq->http2_settings.len + 3);
    h2_req_head *head = set ? head_copy(&rq->head) : NULL;
    int64_t n = set ? b64url_decode(rq->http2_settings.p, rq->http2_settings.len, set) : -1;
    if (!head || n < 0 || n % 6 || h1_conn_upgrade(e->codec, ev->id, NULL, 0) != H2_OK) {
        free(set);
        free(head);
        return false;
    }
    e->up_head = head;
    e->up_settings = set;
    e->up_settings_len = (uint32_t)n;
    return true;
}

/* The 101 is out: become an HTTP/2 connection with the request as stream
 * 1, hand it to the handler there. */
static void h2c_switch(conn *c)
{
    struct conn_h1 *e = H(c);
    shard *sh = c->sh;
    h2_conn *h2 = h2_conn_new(&sh->h2, sh->now);
    h2_rv rv =
        h2 ? h2_conn_open_upgraded(h2, e->up_settings, e->up_settings_len, e->up_head) : H2_E_NOMEM;
    if (rv != H2_OK) {
        /* The 101 went out: nothing sane is left to say in either protocol. */
        log_msg(LOG_DEBUG, (int)sh->idx, "connection %u: h2c upgrade failed: %s", c->slot,
                h2_rv_name(rv));
        if (h2)
            h2_conn_free(h2);
        conn_close(c);
        return;
    }
    h2_req_head *head = e->up_head;
    free(e->up_settings);
    h1_conn_free(e->codec);
    free(e);
    c->h2 = h2;
    c->proto = CONN_H2C;             /* CONN_H2 once the client preface is in (conn.c) */
    c->info.proto = STATS_PROTO_H2C; /* upgraded: its requests from now on are h2c */
    stats_conn_speaks(c, CONN_H2C);
    c->matched = 0;
    if (sh->draining)
        h2_conn_shutdown(h2);
    h2_event ev = {.type = H2_EV_REQUEST, .stream_id = 1, .end_stream = true};
    ev.u.request = *head;
    stream_dispatch(c, &ev);
    free(head);
    shard_mark_dirty(c);
    conn_timer_update(c);
}

/* RFC 6455 §4.2.2: base64(SHA-1(key + GUID)) into out[29]. */
static bool ws_accept_of(h2_str key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t buf[128], d[21];
    if (key.len > sizeof buf - (sizeof guid - 1))
        return false;
    memcpy(buf, key.p, key.len);
    memcpy(buf + key.len, guid, sizeof guid - 1);
    if (tls_sha1(buf, key.len + sizeof guid - 1, d) != 0)
        return false;
    d[20] = 0;
    size_t o = 0;
    for (size_t i = 0; i < 21; i += 3) {
        uint32_t v = ((uint32_t)d[i] << 16) | ((uint32_t)(i + 1 < 21 ? d[i + 1] : 0) << 8) |
                     (i + 2 < 21 ? d[i + 2] : 0);
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < 20 ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < 20 ? b64[v & 63] : '=';
    }
    out[27] = '=';
    out[28] = '\0';
    return true;
}

/* A codec event as the HTTP/2 event stream.c handles. */
static void dispatch(conn *c, const h1_event *ev)
{
    struct conn_h1 *e = H(c);
    h2_event h = {.stream_id = ev->id, .end_stream = ev->end_stream};
    switch (ev->type) {
    case H1_EV_REQUEST:
        if (ev->u.request.upgrade == H1_UPGRADE_H2C && h2c_accept(c, ev))
            return;
        h.type = H2_EV_REQUEST;
        h.u.request = ev->u.request.head;
        if (ev->u.request.upgrade == H1_UPGRADE_WEBSOCKET && !e->ws &&
            ws_accept_of(ev->u.request.ws_key, e->ws_accept)) {
            /* As RFC 8441 has it: CONNECT, :protocol websocket, a body to come. */
            h.u.request.method = (h2_str){(const uint8_t *)"CONNECT", 7};
            h.end_stream = false;
            e->ws_id = ev->id;
        }
        e->body_id = ev->id;
        e->unconsumed = 0;
        e->requested = true;
        if (e->drain_after_first) {
            e->drain_after_first = false;
            h1_conn_shutdown(e->codec); /* answered (delivered), with connection: close */
        }
        break;
    case H1_EV_DATA:
        h.type = H2_EV_DATA;
        h.u.data.data = ev->u.data.data;
        h.u.data.len = ev->u.data.len;
        if (ev->id != e->body_id) {
            e->body_id = ev->id;
            e->unconsumed = 0;
        }
        e->unconsumed += ev->u.data.len;
        break;
    case H1_EV_TRAILERS:
        h.type = H2_EV_TRAILERS;
        h.u.trailers.fields = ev->u.trailers.fields;
        h.u.trailers.n = ev->u.trailers.n;
        break;
    case H1_EV_RESET:
        h.type = H2_EV_STREAM_RESET;
        h.u.reset.code = H2_PROTOCOL_ERROR;
        h.u.reset.remote = false;
        break;
    default: return;
    }
    stream_dispatch(c, &h);
}

static size_t h1_feed(conn *c, const uint8_t *p, size_t n)
{
    struct conn_h1 *e = H(c);
    size_t off = 0;
    while (c->state == C_OPEN && !e->failed) {
        if (!offload_has_room(c->sh)) {
            c->paused = true; /* workers are behind: as for HTTP/2 (conn.c) */
            if (!c->off_waiting) {
                c->off_waiting = true;
                c->next_off_wait = c->sh->off_wait;
                c->sh->off_wait = c;
            }
            break;
        }
        if (e->unconsumed >= body_window(c) || e->ws || e->up_head) {
            /* A paused handler holds this much body; or an upgrade was
             * accepted: what follows is the next protocol's, held until
             * the 101 is out. */
            c->paused = true;
            break;
        }
        h1_event ev;
        size_t used = 0;
        h2_rv rv = h1_conn_recv(e->codec, p + off, n - off, c->sh->now, &used, &ev);
        off += used;
        if (ev.type != H1_EV_NONE)
            dispatch(c, &ev);
        if (rv == H2_E_AGAIN) {
            c->paused = true;
            break;
        }
        if (rv != H2_OK) {
            if (rv == H2_E_NOMEM) {
                conn_close(c);
                break;
            }
            parsing_ended(c);
            break;
        }
        if (ev.type == H1_EV_NONE && off == n)
            break;
    }
    if (e->failed)
        off = n; /* read and dropped: the error response goes out, then the close */
    shard_mark_dirty(c);
    return off;
}

static bool h1_want_write(const conn *c)
{
    return h1_conn_want_write(H(c)->codec);
}

static bool h1_want_read(const conn *c)
{
    const struct conn_h1 *e = H(c);
    return e->failed || (h1_conn_want_read(e->codec) && e->unconsumed < body_window(c));
}

static bool h1_is_done(const conn *c)
{
    return h1_conn_is_done(H(c)->codec);
}

static size_t h1_prepare(conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes)
{
    return h1_conn_out_prepare(H(c)->codec, iov, iovcnt, max_bytes);
}

static void h1_commit(conn *c, size_t n)
{
    struct conn_h1 *e = H(c);
    h1_conn_out_commit(e->codec, n, c->sh->now);
    if (e->up_head && h1_conn_is_upgraded(e->codec)) {
        h2c_switch(c);
    } else if (e->ws && h1_conn_is_upgraded(e->codec)) {
        conn_ws *w = e->ws; /* the 101 is out: the connection is the WebSocket's */
        h1_conn_free(e->codec);
        free(e);
        conn_ws_switch(c, w);
    }
}

/* Draining with no request yet: its first one has until drain-grace ends. */
static bool awaits_first(const conn *c)
{
    return H(c)->drain_after_first && c->sh->draining;
}

static uint64_t h1_deadline(const conn *c)
{
    const struct conn_h1 *e = H(c);
    uint64_t d = h1_conn_next_deadline(e->codec);
    if (e->linger_deadline && e->linger_deadline < d)
        d = e->linger_deadline;
    if (awaits_first(c) && c->sh->drain_grace_end < d)
        d = c->sh->drain_grace_end;
    return d;
}

static void h1_timer(conn *c)
{
    struct conn_h1 *e = H(c);
    if (awaits_first(c) && c->sh->now >= c->sh->drain_grace_end && !h1_conn_want_write(e->codec)) {
        conn_close(c); /* no request came within drain-grace: nothing to answer */
        return;
    }
    if (e->linger_deadline && c->sh->now >= e->linger_deadline) {
        log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: the peer did not take the response",
                c->slot);
        conn_close(c);
        return;
    }
    if (h1_conn_tick(e->codec, c->sh->now) != H2_OK)
        parsing_ended(c); /* header-read (408 queued) or keep-alive idle timeout */
    shard_mark_dirty(c);
    conn_timer_update(c);
}

/* The drain: an idle keep-alive connection closes, a request in progress
 * is answered; a connection with no request yet (its first may be on the
 * way) is answered once, then closes. */
static void h1_shutdown(conn *c)
{
    struct conn_h1 *e = H(c);
    if (!e->requested)
        e->drain_after_first = true;
    else
        h1_conn_shutdown(e->codec);
}

/* The client half-closed after its requests (conn.c input_ended): answer
 * those delivered, then close (RFC 9112 §9.6).  An upgrade on its way has
 * no input left for the next protocol: close now. */
static bool h1_eof(conn *c)
{
    struct conn_h1 *e = H(c);
    if (e->ws || e->up_head)
        return false;
    if (e->failed)
        return true; /* the error response goes out, then the close */
    h1_event ev;
    if (h1_conn_recv_eof(e->codec, &ev) != H2_OK)
        return false;
    log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: peer half-closed, %u in flight", c->slot,
            h1_conn_in_flight(e->codec));
    if (ev.type != H1_EV_NONE)
        dispatch(c, &ev);
    conn_timer_update(c);
    return c->state == C_OPEN;
}

static void h1_free(conn *c)
{
    struct conn_h1 *e = H(c);
    h1_conn_free(e->codec);
    free(e->up_head);
    free(e->up_settings);
    conn_ws_free(e->ws);
    free(e);
}

static void *h1_user(const conn *c, uint32_t id);

/* The handler answers a WebSocket handshake: 2xx accepts (101 with
 * Sec-WebSocket-Accept and its fields), anything final else declines (and
 * the request ends: no body will come). */
static h2_rv ws_answer(conn *c, uint32_t id, uint16_t status, const hpack_field *f, size_t n,
                       bool end)
{
    struct conn_h1 *e = H(c);
    if (status < 200)
        return h1_conn_respond(e->codec, id, status, f, n, end);
    if (status >= 300) {
        h2_rv rv = h1_conn_respond(e->codec, id, status, f, n, end);
        if (rv == H2_OK) {
            e->ws_id = 0;
            spindle_stream *st = h1_user(c, id);
            if (st)
                st->flags |= ST_REQ_END; /* declined: no WebSocket body follows */
        }
        return rv;
    }
    if (n > 63)
        return H2_E_INVAL;
    hpack_field fs[64];
    for (size_t i = 0; i < n; i++)
        fs[i] = f[i];
    fs[n] = (hpack_field){.name = (const uint8_t *)"sec-websocket-accept",
                          .name_len = 20,
                          .value = (const uint8_t *)e->ws_accept,
                          .value_len = 28};
    conn_ws *w = conn_ws_new(id);
    if (!w)
        return H2_E_NOMEM;
    h2_rv rv = h1_conn_upgrade(e->codec, id, fs, n + 1);
    if (rv != H2_OK) {
        conn_ws_free(w);
        return rv;
    }
    w->ended = end;
    e->ws = w;
    e->ws_id = 0;
    return H2_OK;
}

static h2_rv h1_respond(conn *c, uint32_t id, uint16_t status, const hpack_field *f, size_t n,
                        size_t n_check, bool end)
{
    struct conn_h1 *e = H(c);
    if (id == e->ws_id)
        return ws_answer(c, id, status, f, n, end);
    /* Only the handler's fields are checked: the runtime's are valid as
     * built (resphdr_add), as on HTTP/2. */
    return h1_conn_respond_checked(e->codec, id, status, f, n, n_check, end);
}

static h2_rv h1_send(conn *c, uint32_t id, const uint8_t *d, uint64_t len, bool end,
                     h2_release_fn release, void *ctx)
{
    struct conn_h1 *e = H(c);
    if (e->ws && id == e->ws->id)
        return conn_ws_send(e->ws, d, len, end, release, ctx);
    return h1_conn_send_data(e->codec, id, d, len, end, release, ctx);
}

static h2_rv h1_trailers(conn *c, uint32_t id, const hpack_field *f, size_t n)
{
    struct conn_h1 *e = H(c);
    if (e->ws && id == e->ws->id)
        return conn_ws_send(e->ws, NULL, 0, true, NULL, NULL);
    return h1_conn_send_trailers(e->codec, id, f, n);
}

/* Any reset closes an HTTP/1.1 connection once what was queued is out. */
static h2_rv h1_reset(conn *c, uint32_t id, h2_code code)
{
    (void)code;
    return h1_conn_reset(H(c)->codec, id);
}

static uint64_t h1_buffered(const conn *c, uint32_t id)
{
    const struct conn_h1 *e = H(c);
    if (e->ws && id == e->ws->id)
        return e->ws->queued;
    return h1_conn_buffered(e->codec, id);
}

/* Reading went below the body window: resume input, from the shard's loop
 * (never under the handler call that consumed). */
static void resume_later(conn *c)
{
    if (!c->paused || c->off_waiting || c->state != C_OPEN)
        return;
    c->off_waiting = true;
    c->next_off_wait = c->sh->off_wait;
    c->sh->off_wait = c;
}

static void h1_consume(conn *c, uint32_t id, uint64_t n)
{
    struct conn_h1 *e = H(c);
    if (id != e->body_id || e->unconsumed == 0)
        return;
    bool over = e->unconsumed >= body_window(c);
    e->unconsumed -= n < e->unconsumed ? n : e->unconsumed;
    if (over && e->unconsumed < body_window(c))
        resume_later(c);
}

/* Streams of a connection are its list: a request number maps to the live
 * stream with that id (a handful at most: max_pipelined). */
static void *h1_user(const conn *c, uint32_t id)
{
    for (spindle_stream *st = c->streams; st; st = st->next)
        if (st->sid == id && !(st->flags & ST_CLOSED))
            return st;
    return NULL;
}

static void h1_set_user(conn *c, uint32_t id, void *user)
{
    (void)c, (void)id, (void)user; /* the list is the map */
}

static void h1_detach(conn *c, uint32_t id)
{
    struct conn_h1 *e = H(c);
    if (id == e->body_id && e->unconsumed) {
        bool over = e->unconsumed >= body_window(c);
        e->unconsumed = 0; /* a closed stream's held bytes no longer count */
        if (over)
            resume_later(c);
    }
}

const conn_proto conn_proto_h1 = {
    .feed = h1_feed,
    .want_write = h1_want_write,
    .want_read = h1_want_read,
    .is_done = h1_is_done,
    .out_prepare = h1_prepare,
    .out_commit = h1_commit,
    .next_deadline = h1_deadline,
    .on_timer = h1_timer,
    .shutdown = h1_shutdown,
    .free = h1_free,
    .eof = h1_eof,
    .respond = h1_respond,
    .send_data = h1_send,
    .send_trailers = h1_trailers,
    .reset = h1_reset,
    .buffered = h1_buffered,
    .consume = h1_consume,
    .user = h1_user,
    .set_user = h1_set_user,
    .detach = h1_detach,
    .http_version = 1,
};
