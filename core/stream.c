/* stream.c - spindle_stream: engine events to handler callbacks, and the
 * public response API.
 *
 * A stream closes (on_close) when it was reset, or when both the request
 * and the response have ended.  on_close is never called from inside a
 * spindle_* call: closing is noticed by the shard's settle step at the end
 * of the loop iteration, so a handler that ends its response inside
 * on_request keeps a valid stream until it returns.
 */
#include <stdlib.h>
#include <string.h>

#include "async.h"
#include "log.h"
#include "conn.h"
#include "headers.h"
#include "metrics.h"
#include "prepfields.h"
#include "resphdr.h"
#include "health.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

static const spindle_handler *handler_of(const conn *c)
{
    return &c->sh->srv->handler;
}
static void *app_of(const conn *c)
{
    return c->sh->srv->app;
}

static void queue_settle(spindle_stream *st)
{
    if (st->flags & ST_SETTLE)
        return;
    st->flags |= ST_SETTLE;
    shard *sh = st->c->sh;
    st->next_settle = sh->settle;
    sh->settle = st;
}

static void unlink_stream(spindle_stream *st)
{
    conn *c = st->c;
    if (st->prev)
        st->prev->next = st->next;
    else if (c->streams == st)
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->next = st->prev = NULL;
}

#define STREAM_FREE_KEEP 4096u

/* Stream objects are recycled per shard: a request costs no allocation. */
void stream_free(shard *sh, spindle_stream *st)
{
    /* Usually all NULL: free(NULL) is a call into the allocator each. */
    if (st->pend)
        free(st->pend);
    if (st->pend_trailers)
        free(st->pend_trailers);
    if (st->track.alog)
        free(st->track.alog); /* set only if the stream never finished */
    if (st->track.held && st->c)
        resphdr_drop(st); /* a head never sent (reset, or the connection went) */
    if (sh->nstream_free < STREAM_FREE_KEEP) {
        st->next_settle = sh->stream_free;
        sh->stream_free = st;
        sh->nstream_free++;
    } else {
        free(st);
    }
}

void stream_free_all(shard *sh)
{
    while (sh->stream_free) {
        spindle_stream *st = sh->stream_free;
        sh->stream_free = st->next_settle;
        free(st);
    }
    sh->nstream_free = 0;
}

static spindle_stream *stream_alloc(shard *sh)
{
    spindle_stream *st = sh->stream_free;
    if (st) {
        sh->stream_free = st->next_settle;
        sh->nstream_free--;
        memset(st, 0, sizeof *st);
        return st;
    }
    return calloc(1, sizeof *st);
}

void stream_settle(spindle_stream *st)
{
    if (st->flags & ST_CLOSED)
        return;
    if (st->track.held) { /* a head waiting for its body's length: it is not known by now */
        if (st->flags & ST_RESET)
            resphdr_drop(st);
        else if (resphdr_release(st, -1) != H2_OK)
            stream_reset_code(st, H2_INTERNAL_ERROR);
    }
    bool done = (st->flags & ST_RESET) || ((st->flags & ST_REQ_END) && (st->flags & ST_RESP_END));
    if (!done)
        return;
    conn *c = st->c;
    st->flags |= ST_CLOSED;
    handle_release(c->sh->api, st); /* its handle resolves to NULL from here on */
    if (timer_node_pending(&st->timer))
        timer_wheel_cancel(&c->sh->timers, &st->timer);
    CP(c)->set_user(c, st->sid, NULL);
    stats_request_done(st); /* counters and the access-log line */
    st->ops->on_close(st);
}

static void inline_close(spindle_stream *st)
{
    conn *c = st->c;
    const spindle_handler *h = handler_of(c);
    if (h->on_close && !(st->flags & ST_INTERNAL))
        h->on_close(st, app_of(c));
    stream_release(st);
}

void stream_release(spindle_stream *st)
{
    conn *c = st->c;
    /* Body bytes delivered but never consumed give their window back when
     * the engine forgets the stream. */
    CP(c)->detach(c, st->sid);
    shard_mark_dirty(c);
    unlink_stream(st);
    st->next_settle = c->sh->dead_streams;
    c->sh->dead_streams = st;
}

void stream_consumed(spindle_stream *st, uint64_t n)
{
    if (st->flags & ST_CLOSED)
        return;
    CP(st->c)->consume(st->c, st->sid, n);
    shard_mark_dirty(st->c);
}

shard *stream_shard(const spindle_stream *st)
{
    return st->c->sh;
}

void stream_offload_freed(shard *sh, spindle_stream *st)
{
    conn *c = st->c;
    if (c) {
        CP(c)->detach(c, st->sid);
        shard_mark_dirty(c);
        unlink_stream(st);
    }
    stream_free(sh, st);
}

void stream_conn_freed(conn *c)
{
    conn_ping_gone(c);
    /* Streams still waiting for their worker outlive the connection. */
    for (spindle_stream *st = c->streams; st; st = st->next)
        st->c = NULL;
    c->streams = NULL;
}

void stream_conn_gone(conn *c)
{
    for (spindle_stream *st = c->streams; st; st = st->next) {
        if (st->flags & (ST_RESET | ST_CLOSED))
            continue;
        bool complete = (st->flags & ST_REQ_END) && (st->flags & ST_RESP_END);
        if (!complete) {
            st->flags |= ST_RESET;
            st->ops->on_reset(st, H2_CANCEL);
        }
        queue_settle(st);
    }
}

static size_t convert_fields(const hpack_field *f, size_t n, spindle_header *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].name = (const char *)f[i].name;
        out[i].name_len = f[i].name_len;
        /* An empty value points at "": code that follows the public
         * "zero length means NUL-terminated" rule stays in bounds. */
        out[i].value = f[i].value_len ? (const char *)f[i].value : "";
        out[i].value_len = f[i].value_len;
    }
    return n;
}

static spindle_str str_of(h2_str s)
{
    return (spindle_str){(const char *)s.p, s.len};
}

/* The inline mode's request event: the handler runs here, on the shard,
 * with sh->in_request set so that it may spindle_offload() the stream. */
static void inline_request(spindle_stream *st, const spindle_request *req, spindle_request_fn fn)
{
    conn *c = st->c;
    shard *sh = c->sh;
    spindle_request_fn f = fn ? fn : handler_of(c)->on_request;
    if (!f) {
        stream_respond(st, 404, NULL, 0, true);
        return;
    }
    sh->in_request = st;
    sh->in_request_req = req;
    f(st, req, app_of(c));
    sh->in_request = NULL;
    sh->in_request_req = NULL;
}

static void on_request(conn *c, const h2_event *ev)
{
    shard *sh = c->sh;
    spindle_stream *st = stream_alloc(sh);
    if (!st) {
        CP(c)->reset(c, ev->stream_id, H2_INTERNAL_ERROR);
        CP(c)->detach(c, ev->stream_id);
        return;
    }
    st->ops = sh->stream_mode;
    st->c = c;
    st->sid = ev->stream_id;
    timer_node_init(&st->timer);
    st->timer.kind = TIMER_STREAM;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    if (ev->end_stream)
        st->flags |= ST_REQ_END;
    CP(c)->set_user(c, st->sid, st);

    const h2_req_head *rq = &ev->u.request;
    spindle_request req = {
        .method = str_of(rq->method),
        .scheme = str_of(rq->scheme),
        .authority = str_of(rq->authority),
        .path = str_of(rq->path),
        .protocol = str_of(rq->protocol),
        .headers = sh->hdr_scratch,
        .nheaders = convert_fields(rq->fields, rq->nfields, sh->hdr_scratch),
        .content_length = rq->content_length,
        .has_body = !ev->end_stream,
        .expect_continue = rq->expect_continue,
        .urgency = rq->urgency,
        .incremental = rq->incremental,
        .http_version = CP(c)->http_version,
    };
    stats_request_begin(st, &req);
    /* A health path or the metrics path never reaches the handler. */
    if (!health_answer(st, &req) && !metrics_serve(st, &req))
        st->ops->on_request(st, &req, NULL);
    queue_settle(st);
}

static void hold_body(spindle_stream *st, const uint8_t *p, size_t n, bool end)
{
    if (st->pend_len + n > st->pend_cap) {
        size_t cap = st->pend_cap ? st->pend_cap : 4096;
        while (cap < st->pend_len + n)
            cap *= 2;
        uint8_t *nb = realloc(st->pend, cap);
        if (!nb) {
            stream_reset_code(st, H2_INTERNAL_ERROR);
            return;
        }
        st->pend = nb;
        st->pend_cap = cap;
    }
    if (n)
        memcpy(st->pend + st->pend_len, p, n);
    st->pend_len += n;
    st->pend_end = st->pend_end || end;
}

static void inline_body(spindle_stream *st, const uint8_t *p, size_t n, bool end)
{
    conn *c = st->c;
    const spindle_handler *h = handler_of(c);
    if (h->on_body)
        h->on_body(st, p, n, end, app_of(c));
    /* Consumed unless the handler paused during the call: then the window
     * reopens at spindle_body_resume(). */
    if (!(st->flags & ST_PAUSED))
        CP(c)->consume(c, st->sid, n);
}

static void on_data(conn *c, const h2_event *ev)
{
    spindle_stream *st = CP(c)->user(c, ev->stream_id);
    const uint8_t *p = ev->u.data.data;
    size_t n = ev->u.data.len;
    if (!st || (st->flags & (ST_RESET | ST_CLOSED))) {
        CP(c)->consume(c, ev->stream_id, n);
        return;
    }
    if (ev->end_stream)
        st->flags |= ST_REQ_END;
    st->track.req_bytes += n;
    if (st->flags & ST_PAUSED)
        hold_body(st, p, n, ev->end_stream);
    else
        st->ops->on_body(st, p, n, ev->end_stream);
    queue_settle(st);
}

static void on_trailers(conn *c, const h2_event *ev)
{
    spindle_stream *st = CP(c)->user(c, ev->stream_id);
    if (!st || (st->flags & (ST_RESET | ST_CLOSED)))
        return;
    st->flags |= ST_REQ_END;
    size_t n = convert_fields(ev->u.trailers.fields, ev->u.trailers.n, c->sh->hdr_scratch);
    if ((st->flags & ST_PAUSED) || st->pend_len) {
        /* Body bytes are still held: trailers come after them. */
        st->pend_trailers = headers_copy(c->sh->hdr_scratch, n);
        st->pend_ntrailers = n;
        if (!st->pend_trailers)
            stream_reset_code(st, H2_INTERNAL_ERROR);
        queue_settle(st);
        return;
    }
    st->ops->on_trailers(st, c->sh->hdr_scratch, n);
    queue_settle(st);
}

static void inline_trailers(spindle_stream *st, const spindle_header *t, size_t n)
{
    const spindle_handler *h = handler_of(st->c);
    if (h->on_trailers)
        h->on_trailers(st, t, n, app_of(st->c));
    else if (h->on_body)
        h->on_body(st, NULL, 0, true, app_of(st->c));
}

static void on_reset(conn *c, const h2_event *ev)
{
    spindle_stream *st = CP(c)->user(c, ev->stream_id);
    if (!st || (st->flags & (ST_RESET | ST_CLOSED)))
        return;
    st->flags |= ST_RESET;
    st->ops->on_reset(st, ev->u.reset.code);
    queue_settle(st);
}

static void inline_reset(spindle_stream *st, uint32_t code)
{
    const spindle_handler *h = handler_of(st->c);
    if (h->on_reset)
        h->on_reset(st, code, app_of(st->c));
}

static void inline_writable(spindle_stream *st)
{
    const spindle_handler *h = handler_of(st->c);
    if (h->on_writable)
        h->on_writable(st, app_of(st->c));
}

static void inline_timer(spindle_stream *st, spindle_timer_fn fn)
{
    fn(st, app_of(st->c));
}

void stream_dispatch(conn *c, const h2_event *ev)
{
    switch (ev->type) {
    case H2_EV_REQUEST: on_request(c, ev); break;
    case H2_EV_DATA: on_data(c, ev); break;
    case H2_EV_TRAILERS: on_trailers(c, ev); break;
    case H2_EV_STREAM_RESET: on_reset(c, ev); break;
    case H2_EV_PING_ACK: conn_ping_ack(c, ev); break; /* spindle_stream_ping */
    default: break; /* windows, priorities, GOAWAY: the engine acts */
    }
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

static int map_rv(h2_rv rv)
{
    switch (rv) {
    case H2_OK: return SPINDLE_OK;
    case H2_E_INVAL: return SPINDLE_EINVAL;
    case H2_E_NOMEM: return SPINDLE_ENOMEM;
    case H2_E_CLOSED: return SPINDLE_ECLOSED;
    default: return SPINDLE_ESTATE;
    }
}

static int check_stream(const spindle_stream *s)
{
    if (!s)
        return SPINDLE_EINVAL;
    if (s->flags & (ST_RESET | ST_CLOSED) || s->c->state != C_OPEN)
        return SPINDLE_ECLOSED;
    return SPINDLE_OK;
}

#define STACK_FIELDS 32u

/* spindle_header[] -> hpack_field[] (lengths resolved), with room for
 * extra + RESPHDR_EXTRA more (stack: STACK_FIELDS + RESPHDR_EXTRA). */
static hpack_field *to_fields(const spindle_header *h, size_t n, size_t extra, hpack_field *stack)
{
    hpack_field *f =
        n + extra <= STACK_FIELDS ? stack : malloc((n + extra + RESPHDR_EXTRA) * sizeof *f);
    if (!f)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        f[i].name = (const uint8_t *)h[i].name;
        f[i].name_len = h[i].name_len ? h[i].name_len : (uint32_t)strlen(h[i].name);
        f[i].value = (const uint8_t *)h[i].value;
        f[i].value_len =
            h[i].value_len || !h[i].value ? h[i].value_len : (uint32_t)strlen(h[i].value);
        if (!f[i].value)
            f[i].value = (const uint8_t *)"";
        f[i].flags = 0;
    }
    return f;
}

int stream_respond(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n, bool end)
{
    return stream_respond_fields(s, status, h, n, NULL, end);
}

int stream_respond_fields(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                          const spindle_fields *pf, bool end)
{
    int e = check_stream(s);
    if (e)
        return e;
    if (n && !h)
        return SPINDLE_EINVAL;
    if (s->track.held)
        return SPINDLE_ESTATE; /* a final head was given */
    const conn_proto *cp = CP(s->c);
    bool h2 = cp->http_version == 2;
    size_t np = prepfields_count(pf, h2);
    hpack_field stack[STACK_FIELDS + RESPHDR_EXTRA];
    hpack_field *f = to_fields(h, n, np, stack);
    if (!f)
        return SPINDLE_ENOMEM;
    /* Which defaults the head has: the handler's fields looked at here,
     * the prepared ones when they were made. */
    unsigned has = resphdr_present(f, n) | (pf ? pf->present : 0u);
    if (pf)
        prepfields_append(pf, h2, f + n);
    if (status >= 200 && !end && resphdr_hold(s, status, f, n + np, n, has)) {
        /* Sent with content-length if the first send ends the body. */
        if (f != stack)
            free(f);
        s->track.status = status;
        queue_settle(s);
        return SPINDLE_OK;
    }
    char clen[24];
    size_t nf = status >= 200 ? resphdr_add(s->c->sh, f, n + np, has, h2, status,
                                            end && !s->track.head ? 0 : -1, clen)
                              : n + np;
    /* Only the handler's fields are validated: the added ones are valid as
     * built (prepared, resphdr_add). */
    h2_rv rv = cp->respond(s->c, s->sid, status, f, nf, n, end);
    if (f != stack)
        free(f);
    if (rv == H2_OK) {
        if (status >= 200)
            s->track.status = status;
        if (end)
            s->flags |= ST_RESP_END;
        shard_mark_dirty(s->c);
        queue_settle(s);
    }
    return map_rv(rv);
}

int stream_send(spindle_stream *s, const void *data, size_t len, bool end,
                spindle_release_fn release, void *release_ctx)
{
    int e = check_stream(s);
    if (e) {
        if (e != SPINDLE_EINVAL && release)
            release(release_ctx, data, len);
        return e;
    }
    h2_rv rv = s->track.held ? resphdr_release(s, end ? (int64_t)len : -1) : H2_OK;
    if (rv != H2_OK) {
        if (release)
            release(release_ctx, data, len);
        return map_rv(rv);
    }
    rv = CP(s->c)->send_data(s->c, s->sid, data, len, end, release, release_ctx);
    if (rv == H2_OK) {
        s->track.resp_bytes += len;
        if (end)
            s->flags |= ST_RESP_END;
        uint64_t queued = CP(s->c)->buffered(s->c, s->sid);
        atomic_store_explicit(&s->buffered, (size_t)queued, memory_order_relaxed);
        if (queued >= s->c->sh->srv->limits.max_stream_buffered)
            s->flags |= ST_WANT_WRITABLE;
        shard_mark_dirty(s->c);
        queue_settle(s);
    }
    return map_rv(rv);
}

static void free_copy(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    free(ctx);
}

/* Public entry points: through the stream's mode (inline: the stream_*
 * implementations here; offloaded: commands from its worker). */
int spindle_respond(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n, bool end)
{
    return s ? s->ops->respond(s, status, h, n, end) : SPINDLE_EINVAL;
}

/* An offloaded (or any non-inline) stream: the prepared fields join the
 * handler's as ordinary ones, copied into its command as usual. */
static int respond_merged(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                          const spindle_fields *pf, bool end)
{
    spindle_header *m = malloc((n + pf->n) * sizeof *m);
    if (!m)
        return SPINDLE_ENOMEM;
    if (n)
        memcpy(m, h, n * sizeof *m);
    for (uint32_t i = 0; i < pf->n; i++) {
        const hpack_field *f = &pf->f[i];
        /* NUL-terminated: an empty value's length 0 measures as 0 */
        m[n + i] = (spindle_header){(const char *)f->name, (const char *)f->value, f->name_len,
                                    f->value_len};
    }
    int rc = s->ops->respond(s, status, m, n + pf->n, end);
    free(m);
    return rc;
}

int spindle_respond_fields(spindle_stream *s, uint16_t status, const spindle_header *h, size_t n,
                           const spindle_fields *pf, bool end)
{
    if (!s)
        return SPINDLE_EINVAL;
    if (!pf)
        return s->ops->respond(s, status, h, n, end);
    if (s->ops->respond == stream_respond)
        return stream_respond_fields(s, status, h, n, pf, end);
    if (n && !h)
        return SPINDLE_EINVAL;
    return respond_merged(s, status, h, n, pf, end);
}

int spindle_send(spindle_stream *s, const void *data, size_t len, bool end,
                 spindle_release_fn release, void *release_ctx)
{
    return s ? s->ops->send(s, data, len, end, release, release_ctx) : SPINDLE_EINVAL;
}

int spindle_send_trailers(spindle_stream *s, const spindle_header *h, size_t n)
{
    return s ? s->ops->trailers(s, h, n) : SPINDLE_EINVAL;
}

int spindle_reset(spindle_stream *s, uint32_t error_code)
{
    return s ? s->ops->reset(s, error_code) : SPINDLE_EINVAL;
}

int spindle_stream_after(spindle_stream *s, uint32_t ms, spindle_timer_fn fn)
{
    return s ? s->ops->after(s, ms, fn) : SPINDLE_EINVAL;
}

int spindle_send_copy(spindle_stream *s, const void *data, size_t len, bool end)
{
    if (len == 0)
        return spindle_send(s, NULL, 0, end, NULL, NULL);
    void *copy = malloc(len);
    if (!copy)
        return SPINDLE_ENOMEM;
    memcpy(copy, data, len);
    return spindle_send(s, copy, len, end, free_copy, copy);
}

int stream_trailers(spindle_stream *s, const spindle_header *h, size_t n)
{
    int e = check_stream(s);
    if (e)
        return e;
    if (!n || !h)
        return SPINDLE_EINVAL;
    h2_rv rv = s->track.held ? resphdr_release(s, -1) : H2_OK;
    if (rv != H2_OK)
        return map_rv(rv);
    hpack_field stack[STACK_FIELDS];
    hpack_field *f = to_fields(h, n, 0, stack);
    if (!f)
        return SPINDLE_ENOMEM;
    rv = CP(s->c)->send_trailers(s->c, s->sid, f, n);
    if (f != stack)
        free(f);
    if (rv == H2_OK) {
        s->flags |= ST_RESP_END;
        shard_mark_dirty(s->c);
        queue_settle(s);
    }
    return map_rv(rv);
}

int stream_reset_code(spindle_stream *s, uint32_t error_code)
{
    int e = check_stream(s);
    if (e)
        return e;
    h2_rv rv = CP(s->c)->reset(s->c, s->sid, (h2_code)error_code);
    s->flags |= ST_RESET;
    shard_mark_dirty(s->c);
    queue_settle(s);
    return rv == H2_E_STATE ? SPINDLE_OK : map_rv(rv);
}

static size_t inline_buffered(const spindle_stream *s)
{
    if (s->flags & ST_CLOSED)
        return 0;
    return (size_t)CP(s->c)->buffered(s->c, s->sid);
}

size_t spindle_stream_buffered(const spindle_stream *s)
{
    return s ? s->ops->buffered(s) : 0;
}

void spindle_body_pause(spindle_stream *s)
{
    if (s)
        s->ops->pause(s, true);
}

void spindle_body_resume(spindle_stream *s)
{
    if (s)
        s->ops->pause(s, false);
}

/* Resuming hands over the body held while paused; the handler may pause
 * again inside on_body. */
static void inline_resume(spindle_stream *s)
{
    if (!(s->flags & ST_PAUSED))
        return;
    s->flags &= (uint16_t)~ST_PAUSED;
    if (s->flags & (ST_RESET | ST_CLOSED))
        return;
    conn *c = s->c;
    const spindle_handler *h = handler_of(c);
    size_t n = s->pend_len;
    if (n || s->pend_end) {
        /* Hand over the held bytes; the handler may pause again. */
        uint8_t *p = s->pend;
        bool end = s->pend_end;
        s->pend = NULL;
        s->pend_len = s->pend_cap = 0;
        s->pend_end = false;
        if (h->on_body)
            h->on_body(s, p, n, end, app_of(c));
        free(p);
    }
    if (!(s->flags & ST_PAUSED)) {
        CP(c)->consume(c, s->sid, UINT64_MAX); /* everything delivered so far */
        if (s->pend_trailers && !(s->flags & (ST_RESET | ST_CLOSED))) {
            spindle_header *t = s->pend_trailers;
            s->pend_trailers = NULL;
            if (h->on_trailers)
                h->on_trailers(s, t, s->pend_ntrailers, app_of(c));
            else if (h->on_body)
                h->on_body(s, NULL, 0, true, app_of(c));
            free(t);
        }
    }
    shard_mark_dirty(c);
    queue_settle(s);
}

static void inline_pause(spindle_stream *s, bool pause)
{
    if (pause)
        s->flags |= ST_PAUSED;
    else
        inline_resume(s);
}

int stream_after(spindle_stream *s, uint32_t ms, spindle_timer_fn fn)
{
    int e = check_stream(s);
    if (e)
        return e;
    shard *sh = s->c->sh;
    if (timer_node_pending(&s->timer))
        timer_wheel_cancel(&sh->timers, &s->timer);
    s->timer_fn = fn;
    if (fn)
        timer_wheel_add(&sh->timers, &s->timer, sh->now + ms);
    return SPINDLE_OK;
}

void stream_on_timer(spindle_stream *st)
{
    spindle_timer_fn fn = st->timer_fn;
    st->timer_fn = NULL;
    if (!fn || (st->flags & ST_CLOSED))
        return;
    st->ops->on_timer(st, fn);
    queue_settle(st);
}

const stream_ops stream_inline_ops = {
    .respond = stream_respond,
    .send = stream_send,
    .trailers = stream_trailers,
    .reset = stream_reset_code,
    .after = stream_after,
    .pause = inline_pause,
    .buffered = inline_buffered,
    .on_request = inline_request,
    .on_body = inline_body,
    .on_trailers = inline_trailers,
    .on_reset = inline_reset,
    .on_writable = inline_writable,
    .on_timer = inline_timer,
    .on_close = inline_close,
};

void spindle_stream_set_user(spindle_stream *s, void *user)
{
    if (s)
        s->user = user;
}

void *spindle_stream_user(const spindle_stream *s)
{
    return s ? s->user : NULL;
}

uint32_t spindle_stream_shard(const spindle_stream *s)
{
    return s ? s->c->sh->idx : 0;
}
