/* conn_h1.c - HTTP/1.1 connections: the codec (proto/h1_conn) behind the
 * connection protocol table (conn_proto.h).  See conn_h1.h. */
#include "conn_h1.h"

#include <stdlib.h>

#include "conn.h"
#include "log.h"
#include "offload.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

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
    if (c->sh->draining)
        h1_conn_shutdown(e->codec);
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

/* A codec event as the HTTP/2 event stream.c handles. */
static void dispatch(conn *c, const h1_event *ev)
{
    struct conn_h1 *e = H(c);
    h2_event h = {.stream_id = ev->id, .end_stream = ev->end_stream};
    switch (ev->type) {
    case H1_EV_REQUEST:
        h.type = H2_EV_REQUEST;
        h.u.request = ev->u.request.head;
        e->body_id = ev->id;
        e->unconsumed = 0;
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
        if (e->unconsumed >= body_window(c)) {
            c->paused = true; /* a paused handler holds this much body */
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
    h1_conn_out_commit(H(c)->codec, n, c->sh->now);
}

static uint64_t h1_deadline(const conn *c)
{
    const struct conn_h1 *e = H(c);
    uint64_t d = h1_conn_next_deadline(e->codec);
    if (e->linger_deadline && e->linger_deadline < d)
        d = e->linger_deadline;
    return d;
}

static void h1_timer(conn *c)
{
    struct conn_h1 *e = H(c);
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

static void h1_shutdown(conn *c)
{
    h1_conn_shutdown(H(c)->codec);
}

static void h1_free(conn *c)
{
    struct conn_h1 *e = H(c);
    h1_conn_free(e->codec);
    free(e);
}

static h2_rv h1_respond(conn *c, uint32_t id, uint16_t status, const hpack_field *f, size_t n,
                        bool end)
{
    return h1_conn_respond(H(c)->codec, id, status, f, n, end);
}

static h2_rv h1_send(conn *c, uint32_t id, const uint8_t *d, uint64_t len, bool end,
                     h2_release_fn release, void *ctx)
{
    return h1_conn_send_data(H(c)->codec, id, d, len, end, release, ctx);
}

static h2_rv h1_trailers(conn *c, uint32_t id, const hpack_field *f, size_t n)
{
    return h1_conn_send_trailers(H(c)->codec, id, f, n);
}

/* Any reset closes an HTTP/1.1 connection once what was queued is out. */
static h2_rv h1_reset(conn *c, uint32_t id, h2_code code)
{
    (void)code;
    return h1_conn_reset(H(c)->codec, id);
}

static uint64_t h1_buffered(const conn *c, uint32_t id)
{
    return h1_conn_buffered(H(c)->codec, id);
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
