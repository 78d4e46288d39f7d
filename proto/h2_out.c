/* h2_out.c - the output chain (h2_out.h) and the output half of h2_conn.h:
 * out_prepare gathers chain bytes and segment payloads into iovecs,
 * out_commit consumes what was written and releases chunks. */
#include "h2_out.h"

#include <string.h>

#include "h2_sched.h"

static h2_out_block *block_new(h2_conn *c, uint32_t need)
{
    h2_out_block *b;
    /* Output that starts small (a preface, a PING ACK on an idle
     * connection) takes a small block: a burst of new connections must not
     * pin 16 KiB each. */
    if (!c->otail && need <= H2_OUT_SMALL_BLOCK_SIZE) {
        b = h2_pool_get(&c->x->small_blocks);
        if (!b)
            return NULL;
        b->cap = H2_OUT_SMALL_BLOCK_SIZE;
    } else if (need <= H2_OUT_BLOCK_SIZE) {
        b = h2_pool_get(&c->x->blocks);
        if (!b)
            return NULL;
        b->cap = H2_OUT_BLOCK_SIZE;
    } else {
        b = h2_malloc(h2_conn_mem(c), sizeof(h2_out_block) + need);
        if (!b)
            return NULL;
        b->cap = need;
    }
    b->next = NULL;
    b->used = 0;
    return b;
}

static void block_free(h2_conn *c, h2_out_block *b)
{
    if (b->cap == H2_OUT_BLOCK_SIZE)
        h2_pool_put(&c->x->blocks, b);
    else if (b->cap == H2_OUT_SMALL_BLOCK_SIZE)
        h2_pool_put(&c->x->small_blocks, b);
    else
        h2_free(h2_conn_mem(c), b);
}

uint8_t *h2_out_reserve_slow(h2_conn *c, uint32_t n)
{
    h2_out_block *t = c->otail;
    h2_out_block *b = block_new(c, n);
    if (!b)
        return NULL;
    if (t) {
        t->next = b;
    } else {
        c->ohead = b;
        c->ohead_off = 0;
    }
    c->otail = b;
    return b->data;
}

void h2_out_chunk_release(h2_conn *c, h2_chunk *ch)
{
    if (ch->release)
        ch->release(ch->release_ctx, ch->data, (size_t)ch->len);
    h2_pool_put(&c->x->chunks, ch);
}

/* Chunks copied whole into the chain (H2_INLINE_MAX) go back to the
 * application once the chain is written up to pos (the bytes went out, as
 * for a referenced chunk), or all of them when the connection is freed. */
void h2_out_release_copied(h2_conn *c, uint64_t pos)
{
    while (c->copied && c->copied->done_pos <= pos) {
        h2_chunk *ch = c->copied;
        c->copied = ch->next;
        if (!c->copied)
            c->copied_tail = NULL;
        h2_out_chunk_release(c, ch);
    }
}

static void chain_consume(h2_conn *c, uint64_t n)
{
    while (n) {
        h2_out_block *b = c->ohead;
        uint32_t avail = b->used - c->ohead_off;
        if (n < avail) {
            c->ohead_off += (uint32_t)n;
            c->chain_r += n;
            return;
        }
        c->chain_r += avail;
        n -= avail;
        c->ohead_off = 0;
        if (b == c->otail) {
            b->used = 0; /* everything written: reuse from the start */
        } else {
            c->ohead = b->next;
            block_free(c, b);
        }
    }
}

/* Forget the control replies known to be written.  Replies are counted
 * (ctrl_pending) when queued; the ctrl_old of them queued before ctrl_mark
 * was taken end before that chain position, so once the output is written
 * past it they are out.  The count may include replies already written
 * (queued with output not all written yet), never omits an unwritten one:
 * a peer that reads is not paused by replies it has read. */
static void ctrl_settle(h2_conn *c)
{
    if (c->ctrl_pending && c->chain_r >= c->ctrl_mark) {
        c->ctrl_pending -= c->ctrl_old;
        c->ctrl_old = c->ctrl_pending;
        c->ctrl_mark = c->chain_w;
    }
}

/* Give memory back once all output is written: an idle connection holds no
 * output block and no segment ring. */
void h2_out_trim(h2_conn *c)
{
    if (c->chain_r != c->chain_w || c->seg_count)
        return;
    c->ctrl_pending = 0; /* every control reply is out */
    c->ctrl_old = 0;
    /* A busy connection keeps its (emptied) block and ring for the next
     * response; they go back when it has no stream left. */
    if (c->nstreams && c->ohead == c->otail)
        return;
    while (c->ohead) {
        h2_out_block *b = c->ohead;
        c->ohead = b->next;
        block_free(c, b);
    }
    c->otail = NULL;
    c->ohead_off = 0;
    if (c->segs) {
        h2_pool_put(&c->x->segs, c->segs);
        c->segs = NULL;
        c->seg_head = 0;
        c->seg_off = 0;
    }
}

bool h2_out_segs_ready(h2_conn *c)
{
    if (!c->segs) {
        c->segs = h2_pool_get(&c->x->segs);
        if (!c->segs)
            return false;
        c->seg_head = 0;
        c->seg_count = 0;
        c->seg_off = 0;
    }
    return true;
}

/* The ring exists (segs_ready) and has room (!seg_full): cannot fail. */
void h2_out_seg_push(h2_conn *c, const uint8_t *p, uint32_t len, h2_chunk *ch)
{
    h2_seg *s = &c->segs[(c->seg_head + c->seg_count) % H2_NSEG];
    s->pos = c->chain_w;
    s->p = p;
    s->len = len;
    s->chunk = ch;
    c->seg_count++;
    c->seg_bytes += len;
    ch->refs++;
}

static uint8_t *frame_begin(h2_conn *c, uint32_t payload_len)
{
    return h2_out_reserve(c, H2_FRAME_HDR_LEN + payload_len);
}

static void frame_end(h2_conn *c, const uint8_t *start, const uint8_t *end)
{
    h2_out_advance(c, (uint32_t)(end - start));
}

/* reply: the peer provoked it (a stream error), so it counts against
 * max_pending_control; RST_STREAMs we send of our own accord do not. */
bool h2_out_rst(h2_conn *c, uint32_t sid, uint32_t code, bool reply)
{
    uint8_t *p = frame_begin(c, 4);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_rst_stream(p, sid, code));
    c->ctrl_pending += reply;
    c->stats.resets_sent++;
    return true;
}

bool h2_out_window_update(h2_conn *c, uint32_t sid, uint32_t incr)
{
    uint8_t *p = frame_begin(c, 4);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_window_update(p, sid, incr));
    return true;
}

bool h2_out_goaway(h2_conn *c, uint32_t last, uint32_t code, const char *debug)
{
    uint32_t dlen = debug ? (uint32_t)strlen(debug) : 0;
    uint8_t *p = frame_begin(c, 8 + dlen);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_goaway(p, last, code, (const uint8_t *)debug, dlen));
    return true;
}

bool h2_out_ping(h2_conn *c, bool ack, const uint8_t opaque[8])
{
    uint8_t *p = frame_begin(c, 8);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_ping(p, ack, opaque));
    if (ack)
        c->ctrl_pending++;
    return true;
}

bool h2_out_settings(h2_conn *c, const h2_setting *st, size_t n)
{
    uint8_t *p = frame_begin(c, (uint32_t)(n * 6));
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_settings(p, st, n));
    return true;
}

bool h2_out_settings_ack(h2_conn *c)
{
    uint8_t *p = frame_begin(c, 0);
    if (!p)
        return false;
    frame_end(c, p, h2_frame_write_settings_ack(p));
    c->ctrl_pending++;
    return true;
}

/* HEADERS (+ CONTINUATION) for the fields a then b, HPACK-encoded into the
 * chain.  Encoding happens here, in wire order, so the peer's decoder sees
 * blocks in the order our encoder produced them. */
h2_rv h2_out_header_block(h2_conn *c, uint32_t sid, const hpack_field *a, size_t na,
                          const hpack_field *b, size_t nb, bool end_stream)
{
    size_t bound = hpack_encode_bound(a, na) + hpack_encode_bound(b, nb);
    uint32_t maxf = h2_out_frame_max(c);
    size_t nframes = bound / maxf + 1;
    size_t room = bound + nframes * H2_FRAME_HDR_LEN;
    if (room > UINT32_MAX / 2)
        return H2_E_INVAL;
    uint8_t *p = h2_out_reserve(c, (uint32_t)room);
    if (!p)
        return H2_E_NOMEM;
    /* Encode at the tail of the reserved room, then move the pieces forward
     * with a frame header in front of each. */
    uint8_t *src = p + (room - bound);
    size_t la = 0, lb = 0;
    /* bound covers both blocks (the first takes at most its own bound) */
    h2_rv rv = hpack_encode_fields(&c->enc, a, na, src, &la);
    if (rv == H2_OK && nb) {
        c->enc.memo_base = (uint32_t)(na < HPACK_MEMO ? na : HPACK_MEMO);
        rv = hpack_encode_fields(&c->enc, b, nb, src + la, &lb);
    }
    if (rv != H2_OK)
        return rv;
    size_t len = la + lb;
    uint8_t *w = p;
    bool first = true;
    do {
        uint32_t piece = len > maxf ? maxf : (uint32_t)len;
        len -= piece;
        uint8_t type = first ? H2_FT_HEADERS : H2_FT_CONTINUATION;
        uint8_t flags = (uint8_t)((len == 0 ? H2_FLAG_END_HEADERS : 0) |
                                  (first && end_stream ? H2_FLAG_END_STREAM : 0));
        h2_frame_hdr_write(w, piece, type, flags, sid);
        memmove(w + H2_FRAME_HDR_LEN, src, piece);
        w += H2_FRAME_HDR_LEN + piece;
        src += piece;
        first = false;
    } while (len);
    h2_out_advance(c, (uint32_t)(w - p));
    return H2_OK;
}

size_t h2_conn_out_prepare(h2_conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes)
{
    if (c->nready) /* nothing to frame: skip the call (control output only) */
        h2_sched_run(c, max_bytes);
    size_t k = 0, total = 0;
    uint64_t pos = c->chain_r;
    const h2_out_block *b = c->ohead;
    uint32_t off = c->ohead_off;
    uint32_t si = 0, soff = c->seg_off;
    while (k < iovcnt && total < max_bytes) {
        const h2_seg *sg = si < c->seg_count ? &c->segs[(c->seg_head + si) % H2_NSEG] : NULL;
        uint64_t next = sg ? sg->pos : c->chain_w;
        if (pos < next) {
            if (off == b->used) {
                b = b->next;
                off = 0;
                continue;
            }
            uint64_t len = b->used - off;
            if (len > next - pos)
                len = next - pos;
            iov[k].iov_base = (void *)(uintptr_t)(b->data + off);
            iov[k].iov_len = (size_t)len;
            k++;
            pos += len;
            off += (uint32_t)len;
            total += (size_t)len;
        } else if (sg) {
            iov[k].iov_base = (void *)(uintptr_t)(sg->p + soff);
            iov[k].iov_len = sg->len - soff;
            total += sg->len - soff;
            k++;
            si++;
            soff = 0;
        } else {
            break;
        }
    }
    return k;
}

void h2_conn_out_commit(h2_conn *c, size_t n, uint64_t now_ms)
{
    if (n) {
        c->progress_ms = now_ms;
        c->stats.bytes_out += n;
    }
    while (n) {
        const h2_seg *sg = c->seg_count ? &c->segs[c->seg_head] : NULL;
        uint64_t next = sg ? sg->pos : c->chain_w;
        if (c->chain_r < next) {
            uint64_t take = next - c->chain_r;
            if (take > n)
                take = n;
            chain_consume(c, take);
            n -= (size_t)take;
            continue;
        }
        if (!sg)
            break; /* more than was prepared: caller bug, ignore the excess */
        uint32_t left = sg->len - c->seg_off;
        uint32_t take = n < left ? (uint32_t)n : left;
        c->seg_off += take;
        c->seg_bytes -= take;
        n -= take;
        if (c->seg_off == sg->len) {
            h2_chunk *ch = sg->chunk;
            c->seg_head = (c->seg_head + 1) % H2_NSEG;
            c->seg_count--;
            c->seg_off = 0;
            if (--ch->refs == 0 && ch->orphan)
                h2_out_chunk_release(c, ch);
        }
    }
    if (c->copied)
        h2_out_release_copied(c, c->chain_r);
    ctrl_settle(c);
    h2_out_trim(c);
}

size_t h2_conn_send(h2_conn *c, uint8_t *buf, size_t cap, uint64_t now_ms)
{
    size_t total = 0;
    while (total < cap) {
        struct iovec iov[16];
        size_t k = h2_conn_out_prepare(c, iov, 16, cap - total);
        if (!k)
            break;
        size_t got = 0;
        for (size_t i = 0; i < k && total + got < cap; i++) {
            size_t m = iov[i].iov_len;
            if (m > cap - total - got)
                m = cap - total - got;
            memcpy(buf + total + got, iov[i].iov_base, m);
            got += m;
        }
        h2_conn_out_commit(c, got, now_ms);
        total += got;
    }
    return total;
}

uint64_t h2_conn_unsent(const h2_conn *c)
{
    return h2_out_unsent(c);
}
