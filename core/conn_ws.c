/* conn_ws.c - WebSocket bytes both ways after the HTTP/1.1 handshake: the
 * CONN_WS protocol table (conn_proto.h).  See conn_ws.h. */
#include "conn_ws.h"

#include <stdlib.h>

#include "conn.h"
#include "log.h"
#include "offload.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

struct ws_chunk {
    ws_chunk *next;
    const uint8_t *data;
    uint64_t len;
    h2_release_fn release;
    void *ctx;
};

conn_ws *conn_ws_new(uint32_t id)
{
    conn_ws *w = calloc(1, sizeof *w);
    if (w)
        w->id = id;
    return w;
}

h2_rv conn_ws_send(conn_ws *w, const uint8_t *d, uint64_t len, bool end, h2_release_fn release,
                   void *ctx)
{
    if (w->ended) {
        if (release)
            release(ctx, d, (size_t)len);
        return H2_E_STATE;
    }
    w->ended = end;
    if (len == 0) {
        if (release)
            release(ctx, d, 0);
        return H2_OK;
    }
    ws_chunk *k = malloc(sizeof *k);
    if (!k) {
        if (release)
            release(ctx, d, (size_t)len);
        return H2_E_NOMEM;
    }
    *k = (ws_chunk){NULL, d, len, release, ctx};
    if (w->tail)
        w->tail->next = k;
    else
        w->head = k;
    w->tail = k;
    w->queued += len;
    return H2_OK;
}

static void drop_queue(conn_ws *w)
{
    while (w->head) {
        ws_chunk *k = w->head;
        w->head = k->next;
        if (k->release)
            k->release(k->ctx, k->data, (size_t)k->len);
        free(k);
    }
    w->tail = NULL;
    w->queued = w->off = 0;
}

void conn_ws_free(conn_ws *w)
{
    if (!w)
        return;
    drop_queue(w);
    free(w);
}

static conn_ws *W(const conn *c)
{
    return c->ws;
}

void conn_ws_switch(conn *c, conn_ws *w)
{
    c->ws = w;
    c->proto = CONN_WS;
    stats_conn_speaks(c, CONN_WS);
    w->active_ms = c->sh->now;
    shard_mark_dirty(c);
    conn_timer_update(c);
}

static uint64_t window(const conn *c)
{
    return c->sh->srv->limits.initial_window_size;
}

static size_t ws_feed(conn *c, const uint8_t *p, size_t n)
{
    conn_ws *w = W(c);
    if (c->state != C_OPEN || n == 0)
        return 0;
    if (!offload_has_room(c->sh) || w->unconsumed >= window(c)) {
        c->paused = true;
        return 0;
    }
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    w->unconsumed += n;
    w->active_ms = c->sh->now;
    h2_event ev = {.type = H2_EV_DATA, .stream_id = w->id};
    ev.u.data.data = p;
    ev.u.data.len = (uint32_t)n;
    stream_dispatch(c, &ev);
    shard_mark_dirty(c);
    return n;
}

static bool ws_want_write(const conn *c)
{
    return W(c)->head != NULL;
}

static bool ws_want_read(const conn *c)
{
    return W(c)->unconsumed < window(c);
}

static bool ws_is_done(const conn *c)
{
    return W(c)->ended && !W(c)->head;
}

static size_t ws_prepare(conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes)
{
    conn_ws *w = W(c);
    size_t k = 0, bytes = 0;
    uint64_t off = w->off;
    for (ws_chunk *ch = w->head; ch && k < iovcnt && bytes < max_bytes; ch = ch->next) {
        uint64_t n = ch->len - off;
        if (n > max_bytes - bytes)
            n = max_bytes - bytes;
        iov[k].iov_base = (void *)(uintptr_t)(ch->data + off);
        iov[k].iov_len = (size_t)n;
        bytes += (size_t)n;
        k++;
        off = 0;
    }
    return k;
}

static void ws_commit(conn *c, size_t n)
{
    conn_ws *w = W(c);
    w->queued -= n;
    if (n)
        w->active_ms = c->sh->now;
    while (n && w->head) {
        ws_chunk *k = w->head;
        uint64_t left = k->len - w->off;
        if (n < left) {
            w->off += n;
            return;
        }
        n -= (size_t)left;
        w->off = 0;
        w->head = k->next;
        if (!w->head)
            w->tail = NULL;
        if (k->release)
            k->release(k->ctx, k->data, (size_t)k->len);
        free(k);
    }
}

/* Idle: no byte either way for h1-ws-idle-timeout (0: never). */
static uint64_t ws_deadline(const conn *c)
{
    uint32_t t = c->sh->srv->h1limits.ws_idle_timeout_ms;
    return t ? W(c)->active_ms + t : UINT64_MAX;
}

static void ws_timer(conn *c)
{
    if (c->sh->now < ws_deadline(c)) {
        conn_timer_update(c); /* bytes moved since the timer was set */
        return;
    }
    c->sh->h1.limit_hits[H1_LIMIT_WS_IDLE_TIMEOUT]++;
    log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: WebSocket idle for %u ms: closing", c->slot,
            c->sh->srv->h1limits.ws_idle_timeout_ms);
    conn_close(c); /* the stream is reset (CANCEL), as when the client goes */
}

static void ws_shutdown(conn *c)
{
    W(c)->ended = true; /* no GOAWAY here: close once the queue is out */
    shard_mark_dirty(c);
}

static void ws_free(conn *c)
{
    conn_ws_free(W(c));
}

static h2_rv ws_respond(conn *c, uint32_t id, uint16_t status, const hpack_field *f, size_t n,
                        size_t n_check, bool end)
{
    (void)c, (void)id, (void)status, (void)f, (void)n, (void)n_check, (void)end;
    return H2_E_STATE; /* answered with the 101 */
}

static h2_rv ws_send(conn *c, uint32_t id, const uint8_t *d, uint64_t len, bool end,
                     h2_release_fn release, void *ctx)
{
    (void)id;
    return conn_ws_send(W(c), d, len, end, release, ctx);
}

static h2_rv ws_trailers(conn *c, uint32_t id, const hpack_field *f, size_t n)
{
    (void)id, (void)f, (void)n; /* no trailers on a WebSocket: the body just ends */
    return conn_ws_send(W(c), NULL, 0, true, NULL, NULL);
}

static h2_rv ws_reset(conn *c, uint32_t id, h2_code code)
{
    (void)id, (void)code;
    conn_ws *w = W(c);
    w->ended = true;
    drop_queue(w);
    return H2_OK;
}

static uint64_t ws_buffered(const conn *c, uint32_t id)
{
    (void)id;
    return W(c)->queued;
}

static void ws_consume(conn *c, uint32_t id, uint64_t n)
{
    (void)id;
    conn_ws *w = W(c);
    bool over = w->unconsumed >= window(c);
    w->unconsumed -= n < w->unconsumed ? n : w->unconsumed;
    if (over && w->unconsumed < window(c) && c->paused && !c->off_waiting && c->state == C_OPEN) {
        c->off_waiting = true; /* resumed by the shard's loop (conn_h1.c does the same) */
        c->next_off_wait = c->sh->off_wait;
        c->sh->off_wait = c;
    }
}

static void *ws_user(const conn *c, uint32_t id)
{
    for (spindle_stream *st = c->streams; st; st = st->next)
        if (st->sid == id && !(st->flags & ST_CLOSED))
            return st;
    return NULL;
}

static void ws_set_user(conn *c, uint32_t id, void *user)
{
    (void)c, (void)id, (void)user;
}

static void ws_detach(conn *c, uint32_t id)
{
    (void)id;
    conn_ws *w = W(c);
    w->unconsumed = 0;
    w->ended = true; /* the stream is gone: so is the connection, once flushed */
    shard_mark_dirty(c);
}

const conn_proto conn_proto_ws = {
    .feed = ws_feed,
    .want_write = ws_want_write,
    .want_read = ws_want_read,
    .is_done = ws_is_done,
    .out_prepare = ws_prepare,
    .out_commit = ws_commit,
    .next_deadline = ws_deadline,
    .on_timer = ws_timer,
    .shutdown = ws_shutdown,
    .free = ws_free,
    .respond = ws_respond,
    .send_data = ws_send,
    .send_trailers = ws_trailers,
    .reset = ws_reset,
    .buffered = ws_buffered,
    .consume = ws_consume,
    .user = ws_user,
    .set_user = ws_set_user,
    .detach = ws_detach,
    .http_version = 1,
};
