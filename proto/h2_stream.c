/* h2_stream.c - stream lifetime, states, resets and inbound credit
 * (h2_stream.h). */
#include "h2_stream.h"

#include <string.h>

#include "h2_out.h"
#include "h2_sched.h"

h2_stream *h2_stream_open(h2_conn *c, uint32_t sid, bool end_stream, const h2_req_head *head)
{
    h2_ctx *x = c->x;
    h2_stream *s = h2_pool_get(&x->streams);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->id = sid;
    s->state = end_stream ? S_HALF_REMOTE : S_OPEN;
    s->flags = F_DELIVERED | F_HEAD_RECV | (head->incremental ? F_INCREMENTAL : 0);
    s->urgency = head->urgency < H2_NURGENCY ? head->urgency : H2_URGENCY_DEFAULT;
    s->send_window = c->peer_iws;
    s->recv_window = c->local_iws;
    s->content_length = head->content_length;
    if (!c->st) {
        c->st = h2_pool_get(&x->tables);
        if (!c->st) {
            h2_pool_put(&x->streams, s);
            return NULL;
        }
        memset(c->st, 0, sizeof *c->st);
    }
    h2_stream **b = h2_stream_bucket(c, sid);
    s->hnext = *b;
    *b = s;
    c->st->last = s;
    c->nstreams++;
    return s;
}

void h2_stream_reset_remember(h2_conn *c, uint32_t id)
{
    uint32_t n = c->lim->reset_memory;
    if (!n)
        return;
    if (!c->rring) {
        c->rring = h2_malloc(h2_conn_mem(c), n * sizeof(uint32_t));
        if (!c->rring)
            return; /* only tolerance of late frames is lost */
        memset(c->rring, 0, n * sizeof(uint32_t));
    }
    c->rring[c->rring_pos] = id;
    c->rring_pos = (c->rring_pos + 1) % n;
}

bool h2_stream_reset_recent(const h2_conn *c, uint32_t id)
{
    if (!c->rring)
        return false;
    for (uint32_t i = 0; i < c->lim->reset_memory; i++)
        if (c->rring[i] == id)
            return true;
    return false;
}

void h2_stream_trailers_free(h2_conn *c, h2_trailers *t)
{
    if (t->pooled)
        h2_pool_put(&c->x->blocks, t);
    else
        h2_free(h2_conn_mem(c), t);
}

/* Drop a stream's unframed data.  Chunks with framed bytes still in flight
 * are released when their last segment is committed. */
void h2_stream_drop_data(h2_conn *c, h2_stream *s)
{
    h2_chunk *ch = s->ch_head;
    while (ch) {
        h2_chunk *next = ch->next;
        if (ch->refs)
            ch->orphan = true;
        else
            h2_out_chunk_release(c, ch);
        ch = next;
    }
    s->ch_head = s->ch_tail = NULL;
    c->unframed -= s->unframed;
    s->unframed = 0;
    if (s->trailers) {
        h2_stream_trailers_free(c, s->trailers);
        s->trailers = NULL;
    }
    h2_sched_remove(c, s);
}

/* Free the stream if nothing refers to it any more: closed on the wire and
 * not held by the application. */
void h2_stream_maybe_free(h2_conn *c, h2_stream *s)
{
    if (s->state != S_CLOSED || (s->flags & F_DELIVERED))
        return;
    h2_stream_drop_data(c, s);
    h2_stream **pp = h2_stream_bucket(c, s->id);
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    if (c->st->last == s)
        c->st->last = NULL;
    c->nstreams--;
    /* Delivered body bytes never consumed still occupy the connection
     * window: give them back. */
    if (s->recv_held)
        h2_stream_credit_conn(c, s->recv_held);
    h2_pool_put(&c->x->streams, s);
    if (c->nstreams == 0) {
        h2_pool_put(&c->x->tables, c->st); /* nothing is queued: no stream left */
        c->st = NULL;
        h2_out_trim(c);
    }
}

void h2_stream_close(h2_conn *c, h2_stream *s)
{
    s->state = S_CLOSED;
    h2_stream_drop_data(c, s);
}

/* Our END_STREAM went out (framed). */
void h2_stream_local_end(h2_conn *c, h2_stream *s)
{
    s->flags |= F_END_SENT;
    if (s->state == S_OPEN) {
        s->state = S_HALF_LOCAL;
        /* RFC 9113 §8.1: a complete response may end a request body the
         * handler no longer wants with RST_STREAM NO_ERROR. */
        if (!(s->flags & F_DELIVERED)) {
            if (h2_out_rst(c, s->id, H2_NO_ERROR, false))
                s->flags |= F_RESET_SENT;
            s->state = S_CLOSED;
            h2_stream_reset_remember(c, s->id);
        }
    } else if (s->state == S_HALF_REMOTE) {
        s->state = S_CLOSED;
    }
}

/* The peer's END_STREAM arrived. */
void h2_stream_remote_end(h2_stream *s)
{
    if (s->state == S_OPEN)
        s->state = S_HALF_REMOTE;
    else if (s->state == S_HALF_LOCAL)
        s->state = S_CLOSED;
}

/* Reset a stream because of the peer (stream error) or the application.
 * Fills ev with a STREAM_RESET when the application holds the stream. */
h2_rv h2_stream_reset(h2_conn *c, h2_stream *s, h2_code code, h2_event *ev, bool app)
{
    if (!h2_out_rst(c, s->id, code, !app))
        return h2_conn_nomem(c);
    bool was_open = s->state != S_CLOSED;
    s->flags |= F_RESET_SENT;
    h2_stream_reset_remember(c, s->id);
    h2_stream_close(c, s);
    if (was_open && (s->flags & F_DELIVERED) && ev && !app) {
        ev->type = H2_EV_STREAM_RESET;
        ev->stream_id = s->id;
        ev->end_stream = false;
        ev->u.reset.code = code;
        ev->u.reset.remote = false;
    }
    h2_stream_maybe_free(c, s);
    /* MadeYouReset (CVE-2025-8671): resets the peer provokes cost budget. */
    return app ? H2_OK : h2_conn_glitch(c);
}

/* A stream error on an id that has no stream object (idle or forgotten). */
h2_rv h2_stream_error_id(h2_conn *c, uint32_t id, h2_code code)
{
    if (!h2_out_rst(c, id, code, true))
        return h2_conn_nomem(c);
    h2_stream_reset_remember(c, id);
    return h2_conn_glitch(c);
}

/* Bytes the application consumed (or that we discarded) reopen the
 * connection window; WINDOW_UPDATEs are coalesced to half a window. */
void h2_stream_credit_conn(h2_conn *c, uint64_t n)
{
    uint64_t u = c->recv_unacked + n;
    if (u >= c->lim->connection_window / 2) {
        /* Never grant beyond our configured window. */
        int64_t room = (int64_t)c->lim->connection_window - c->recv_window;
        uint32_t incr = (uint32_t)(room < (int64_t)u ? room : (int64_t)u);
        if (incr && h2_out_window_update(c, 0, incr))
            c->recv_window += incr;
        u = 0;
    }
    c->recv_unacked = (uint32_t)u;
}

void h2_stream_credit(h2_conn *c, h2_stream *s, uint64_t n)
{
    if (s->state == S_HALF_REMOTE || s->state == S_CLOSED)
        return; /* the peer sends no more: a WINDOW_UPDATE would be noise */
    uint64_t u = s->recv_unacked + n;
    if (u >= c->local_iws / 2) {
        int64_t room = (int64_t)c->local_iws - s->recv_window;
        uint32_t incr = (uint32_t)(room < (int64_t)u ? (room > 0 ? room : 0) : (int64_t)u);
        if (incr && h2_out_window_update(c, s->id, incr))
            s->recv_window += incr;
        u = 0;
    }
    s->recv_unacked = (uint32_t)u;
}
