/* h2_sched.c - the RFC 9218 scheduler (h2_sched.h): urgency 0..7, round
 * robin within an urgency, DATA framed lazily against the windows. */
#include "h2_sched.h"

#include <string.h>

#include "h2_out.h"
#include "h2_stream.h"

/* Can the stream produce a frame, windows of the connection aside? */
static bool stream_framable(const h2_stream *s)
{
    if (s->state == S_CLOSED || (s->flags & F_END_SENT) || !(s->flags & F_HEAD_SENT))
        return false;
    if (s->ch_head)
        return s->send_window > 0;
    return (s->flags & F_END_QUEUED) != 0; /* empty END_STREAM or h2_trailers */
}

static bool stream_needs_window(const h2_stream *s)
{
    return s->ch_head != NULL;
}

void h2_sched_remove(h2_conn *c, h2_stream *s)
{
    if (!(s->flags & F_IN_SCHED))
        return;
    h2_stream **pp = &c->st->rq_head[s->urgency], *prev = NULL;
    while (*pp != s) {
        prev = *pp;
        pp = &(*pp)->snext;
    }
    *pp = s->snext;
    if (c->st->rq_tail[s->urgency] == s)
        c->st->rq_tail[s->urgency] = prev;
    s->snext = NULL;
    s->flags &= (uint16_t)~F_IN_SCHED;
    c->nready--;
}

void h2_sched_push(h2_conn *c, h2_stream *s)
{
    if ((s->flags & F_IN_SCHED) || !stream_framable(s))
        return;
    s->snext = NULL;
    if (c->st->rq_tail[s->urgency])
        c->st->rq_tail[s->urgency]->snext = s;
    else
        c->st->rq_head[s->urgency] = s;
    c->st->rq_tail[s->urgency] = s;
    s->flags |= F_IN_SCHED;
    c->nready++;
}

/* The first ready stream in urgency order; when the connection window is
 * closed only streams that need no window qualify. */
static h2_stream *sched_pick(h2_conn *c)
{
    if (!c->nready)
        return NULL;
    bool window = c->send_window > 0;
    for (uint32_t u = 0; u < H2_NURGENCY; u++)
        for (h2_stream *s = c->st->rq_head[u]; s; s = s->snext)
            if (window || !stream_needs_window(s)) {
                h2_sched_remove(c, s);
                return s;
            }
    return NULL;
}

static h2_rv put_trailers(h2_conn *c, h2_stream *s)
{
    h2_trailers *t = s->trailers;
    h2_rv rv = h2_out_header_block(c, s->id, t->f, t->n, NULL, 0, true);
    h2_stream_trailers_free(c, t);
    s->trailers = NULL;
    return rv;
}

/* The stream's first chunk is done framing: it leaves the stream.  A chunk
 * with segments is released by its last one; one copied whole waits in
 * the copied list until the chain is written past it. */
static void chunk_framed(h2_conn *c, h2_stream *s, h2_chunk *ch)
{
    s->ch_head = ch->next;
    if (!s->ch_head)
        s->ch_tail = NULL;
    ch->next = NULL;
    ch->orphan = true;   /* no stream list holds it: last segment releases */
    if (ch->refs == 0) { /* no segment: copied whole */
        ch->done_pos = c->chain_w;
        if (c->copied_tail)
            c->copied_tail->next = ch;
        else
            c->copied = ch;
        c->copied_tail = ch;
    }
}

/* One DATA frame of n bytes from the stream's first chunk; last: it
 * carries END_STREAM. */
static h2_rv frame_data(h2_conn *c, h2_stream *s, uint64_t n, bool last)
{
    h2_chunk *ch = s->ch_head;
    bool chunk_done = ch->framed + n == ch->len;
    /* Everything the frame needs first, so a failure leaves no frame
     * header without its payload in the output. */
    /* Only a whole chunk is copied: a piece of one that has segments
     * would be released with them, before its copy went out. */
    bool copy = n <= H2_INLINE_MAX && ch->framed == 0 && chunk_done;
    if (!copy && !h2_out_segs_ready(c))
        return h2_conn_nomem(c);
    uint8_t *p = h2_out_reserve(c, H2_FRAME_HDR_LEN + (copy ? (uint32_t)n : 0));
    if (!p)
        return h2_conn_nomem(c);
    h2_frame_hdr_write(p, (uint32_t)n, H2_FT_DATA, last ? H2_FLAG_END_STREAM : 0, s->id);
    if (copy) {
        memcpy(p + H2_FRAME_HDR_LEN, ch->data + ch->framed, (size_t)n);
        h2_out_advance(c, H2_FRAME_HDR_LEN + (uint32_t)n);
    } else {
        h2_out_advance(c, H2_FRAME_HDR_LEN);
        h2_out_seg_push(c, ch->data + ch->framed, (uint32_t)n, ch);
    }
    ch->framed += n;
    s->unframed -= n;
    c->unframed -= n;
    s->send_window -= (int64_t)n;
    c->send_window -= (int64_t)n;
    if (chunk_done)
        chunk_framed(c, s, ch);
    return H2_OK;
}

/* All data framed and the body ended: trailers, or an empty END_STREAM. */
static h2_rv frame_end_stream(h2_conn *c, h2_stream *s)
{
    if (s->trailers) {
        h2_rv rv = put_trailers(c, s);
        if (rv != H2_OK)
            return rv == H2_E_NOMEM ? h2_conn_nomem(c) : rv;
    } else {
        uint8_t *p = h2_out_reserve(c, H2_FRAME_HDR_LEN);
        if (!p)
            return h2_conn_nomem(c);
        h2_frame_hdr_write(p, 0, H2_FT_DATA, H2_FLAG_END_STREAM, s->id);
        h2_out_advance(c, H2_FRAME_HDR_LEN);
    }
    h2_stream_local_end(c, s);
    return H2_OK;
}

/* Frame up to one quantum of the stream's data (budget permitting). */
static h2_rv frame_stream(h2_conn *c, h2_stream *s, uint64_t budget)
{
    uint64_t quantum = H2_QUANTUM;
    uint32_t maxf = h2_out_frame_max(c);
    while (s->ch_head && quantum && budget && !h2_out_seg_full(c)) {
        h2_chunk *ch = s->ch_head;
        uint64_t n = ch->len - ch->framed;
        int64_t win = s->send_window < c->send_window ? s->send_window : c->send_window;
        if (win <= 0)
            break;
        if (n > (uint64_t)win)
            n = (uint64_t)win;
        if (n > maxf)
            n = maxf;
        if (n > quantum)
            n = quantum;
        if (n > budget)
            n = budget;
        bool last =
            ch->framed + n == ch->len && !ch->next && (s->flags & F_END_QUEUED) && !s->trailers;
        h2_rv rv = frame_data(c, s, n, last);
        if (rv != H2_OK)
            return rv;
        quantum -= n;
        budget -= n < budget ? n : budget;
        if (last) {
            h2_stream_local_end(c, s);
            return H2_OK;
        }
    }
    if (!s->ch_head && (s->flags & F_END_QUEUED) && !(s->flags & F_END_SENT))
        return frame_end_stream(c, s);
    return H2_OK;
}

void h2_sched_run(h2_conn *c, uint64_t budget)
{
    while (!c->dead && h2_out_unsent(c) < budget && !h2_out_seg_full(c)) {
        h2_stream *s = sched_pick(c);
        if (!s)
            break;
        if (frame_stream(c, s, budget - h2_out_unsent(c)) != H2_OK)
            break;
        if (s->state == S_CLOSED)
            h2_stream_maybe_free(c, s);
        else
            h2_sched_push(c, s);
    }
}

bool h2_conn_want_write(const h2_conn *c)
{
    if (h2_out_unsent(c))
        return true;
    if (c->dead || !c->nready)
        return false;
    if (c->send_window > 0)
        return true;
    for (uint32_t u = 0; u < H2_NURGENCY; u++)
        for (const h2_stream *s = c->st->rq_head[u]; s; s = s->snext)
            if (!stream_needs_window(s))
                return true;
    return false;
}
