/* load_h2.c - spindle-load's HTTP/2 connections: the client role of the
 * sans-IO engine (proto/h2_client.h) under the worker (load_conn.h).
 *
 * A stream's slot is its user pointer.  Streams a GOAWAY or REFUSED_STREAM
 * says were never processed are issued again; RST_STREAM from the server
 * counts as a reset; a response the engine finds malformed (short or long
 * body, bad head) is reset by it and counts as malformed.
 */
#include <errno.h>
#include <stdint.h>

#include "load_conn.h"

static int h2_open(wstate *s, lconn *c)
{
    c->h = h2_client_new(&s->x, s->now_ms);
    return c->h ? 0 : -ENOMEM;
}

static void h2_close(wstate *s, lconn *c)
{
    (void)s;
    h2_conn_free(c->h);
    c->h = NULL;
}

static void on_event(wstate *s, lconn *c, const h2_event *e)
{
    uint32_t sl = (uint32_t)(uintptr_t)h2_conn_stream_user(c->h, e->stream_id);
    bool end = false;
    switch (e->type) {
    case H2_EV_RESPONSE:
        if (e->u.response.status >= 200) {
            c->slots[sl - 1].status = e->u.response.status;
            end = e->end_stream;
        }
        break;
    case H2_EV_DATA:
        c->slots[sl - 1].body += e->u.data.len;
        h2_conn_consume(c->h, e->stream_id, e->u.data.len);
        end = e->end_stream;
        break;
    case H2_EV_TRAILERS: end = true; break;
    case H2_EV_STREAM_RESET:
        if (e->u.reset.code == H2_REFUSED_STREAM && e->u.reset.remote)
            lc_slot_refused(s, c, sl); /* never processed: issue it again */
        else
            lc_slot_fail(s, c, sl, e->u.reset.remote);
        h2_client_stream_done(c->h, e->stream_id);
        return;
    default: return;
    }
    if (end) {
        lc_slot_complete(s, c, sl);
        h2_client_stream_done(c->h, e->stream_id);
    }
}

static int h2_feed(wstate *s, lconn *c)
{
    for (;;) {
        size_t used = 0;
        h2_event e;
        h2_rv rv = h2_client_recv(c->h, c->rbuf + c->rpos, c->rlen - c->rpos, s->now_ms, &used, &e);
        c->rpos += (uint32_t)used;
        if (rv == H2_E_AGAIN)
            return LC_PAUSE; /* resumes after the next write */
        if (rv != H2_OK)
            return LC_FAIL;
        if (e.type == H2_EV_NONE)
            return LC_FED;
        on_event(s, c, &e);
    }
}

static void h2_eof(wstate *s, lconn *c)
{
    (void)s;
    (void)c; /* every stream still open is lost */
}

static int h2_top_up(wstate *s, lconn *c)
{
    const load_cfg *cfg = s->cfg;
    while (lc_want_more(s) && c->free_head && h2_client_room(c->h)) {
        uint32_t sl = c->free_head, sid;
        h2_rv rv = h2_client_request(c->h, &s->req, cfg->body == NULL, (void *)(uintptr_t)sl, &sid);
        if (rv != H2_OK) {
            if (rv != H2_E_AGAIN && rv != H2_E_CLOSED)
                return LC_FAIL;
            break;
        }
        lc_slot_start(s, c);
        if (cfg->body)
            h2_conn_send_data(c->h, sid, cfg->body, cfg->body_len, true, NULL, NULL);
    }
    return LC_FED;
}

static size_t h2_out_prepare(wstate *s, lconn *c, struct iovec *iov, size_t max, size_t budget)
{
    (void)s;
    return h2_conn_out_prepare(c->h, iov, max, budget);
}

static void h2_out_commit(wstate *s, lconn *c, size_t n)
{
    h2_conn_out_commit(c->h, n, s->now_ms);
}

static bool h2_finished(const lconn *c)
{
    return h2_conn_is_done(c->h) && !h2_conn_want_write(c->h);
}

const load_proto load_proto_h2 = {
    .open = h2_open,
    .close = h2_close,
    .feed = h2_feed,
    .eof = h2_eof,
    .top_up = h2_top_up,
    .out_prepare = h2_out_prepare,
    .out_commit = h2_out_commit,
    .finished = h2_finished,
};
