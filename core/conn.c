/* conn.c - one accepted connection on its shard: feeding the engine from
 * multishot recv, one sendmsg in flight, pausing, timers and closing.
 *
 * Choosing the engine (the first bytes, or ALPN) is conn_detect.c.
 *
 * Reading.  Provided buffers from multishot recv are fed to the engine and
 * recycled at once.  When the engine asks to pause (control replies or
 * output backed up), the unfed rest is copied aside (held), the recv is
 * cancelled, and reading resumes from the held bytes once output drains.
 *
 * TLS (c->tls set; docs/tls.md).  Ciphertext from recv goes into the
 * adapter (tls_feed) and the plaintext it yields into feed(); what the
 * adapter cannot take while the engine is paused is held like plaintext
 * is for h2c.  Output is encrypted at flush time (tls_write copies it, so
 * the engine's output is committed at once) and the ciphertext the adapter
 * lends goes out with a plain sendmsg (SEND_ZC gains nothing: the bytes are
 * ours).  Until the handshake is done the connection's only timer is the
 * handshake deadline.  An orderly close sends close_notify after the final
 * GOAWAY.
 *
 * Closing.  conn_close() cancels every operation on the fd; the connection
 * is freed (deferred, at the end of the loop iteration) once the last
 * in-flight CQE has arrived, because the kernel may still write to the
 * msghdr/iovecs and read output memory until then.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "offload.h"
#include "ring_bufs.h"
#include "conn.h"
#include "conn_detect.h"
#include "conn_h1.h"
#include "conn_linger.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

static uint64_t ud(const conn *c, uint8_t op)
{
    return ring_ud_pack(op, c->slot, c->gen);
}

/* Wait for the buffer pool to refill (-ENOBUFS); idempotent. */
static void park(conn *c)
{
    if (c->recv_parked)
        return;
    c->recv_parked = true;
    c->next_parked = c->sh->parked;
    c->sh->parked = c;
}

/* Stop the armed multishot recv (pausing or failing); once per arming. */
static void cancel_recv(conn *c)
{
    if (!c->recv_armed || c->recv_cancelling)
        return;
    c->recv_cancelling = true;
    ring_prep_cancel(c->sh->r, ud(c, OP_RECV), ring_ud_pack(OP_CANCEL, c->slot, c->gen));
}

/* EOF from the peer, and every byte before it fed (held input too): the
 * engine answers what it owes first (HTTP/1.1: RFC 9112 §9.6, a client
 * may half-close after its last request), or the connection closes now. */
static void input_ended(conn *c)
{
    if (c->eof_told)
        return;
    c->eof_told = true;
    if (!CP(c)->eof || !CP(c)->eof(c)) {
        conn_close(c);
        return;
    }
    shard_mark_dirty(c);
}

static void arm_recv(conn *c)
{
    if (c->recv_armed || c->recv_parked || c->paused ||
        (c->state != C_OPEN && c->state != C_LINGER))
        return;
    if (c->rd_eof) {
        if (c->state == C_LINGER)
            conn_close(c); /* the peer closed too: the lingering is over */
        else
            input_ended(c); /* nothing more to read */
        return;
    }
    int rc = ring_prep_recv_multishot(c->sh->r, c->fd, ud(c, OP_RECV));
    if (rc == -ENOBUFS) {
        park(c); /* no buffer free right now */
        return;
    }
    if (rc < 0) {
        log_msg(LOG_WARN, (int)c->sh->idx, "recv arm failed: %s", strerror(-rc));
        conn_close(c);
        return;
    }
    c->recv_armed = true;
    c->recv_cancelling = false;
    c->ops++;
}

conn *conn_new(shard *sh, int fd, bool tls)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->proto = CONN_DETECT; /* the engine comes with the first bytes (or ALPN) */
    c->accepted_ms = sh->now;
    if (tls) {
        c->tls = tls_conn_new(sh->tls);
        if (!c->tls) {
            free(c);
            return NULL;
        }
    }
    /* TCP_NODELAY comes from the listener: accepted sockets inherit it. */
    c->sh = sh;
    c->fd = fd;
    c->slot = sh->free_slots[--sh->nfree];
    c->gen = sh->gens[c->slot];
    c->state = C_OPEN;
    timer_node_init(&c->timer);
    sh->slots[c->slot] = c;
    sh->nconns++;
    arm_recv(c);
    conn_timer_update(c);
    return c;
}

/* TLS: the handshake must be done this long after accept (when the engine
 * was created). */
static uint64_t hs_deadline(const conn *c)
{
    return conn_drain_bound(c, c->accepted_ms + c->sh->srv->cfg.tls_handshake_timeout_ms);
}

void conn_timer_update(conn *c)
{
    if (c->state != C_OPEN)
        return; /* closing: no timer; flushing: the linger deadline stands */
    uint64_t d = CP(c)->next_deadline(c);
    if (c->tls && !tls_handshake_done(c->tls))
        d = hs_deadline(c); /* the engine's timers (its preface timeout counts
                               from accept) are checked once TLS is up */
    bool pending = timer_node_pending(&c->timer);
    if (d == (pending ? c->timer.deadline : UINT64_MAX))
        return;
    if (pending)
        timer_wheel_cancel(&c->sh->timers, &c->timer);
    if (d != UINT64_MAX)
        timer_wheel_add(&c->sh->timers, &c->timer, d);
}

/* Output to send?  Over TLS the engine's output counts only once the
 * adapter takes plaintext (after the handshake, before close_notify). */
static bool want_write(const conn *c)
{
    if (!c->tls)
        return CP(c)->want_write(c);
    return tls_out_pending(c->tls) || (tls_write_room(c->tls) && CP(c)->want_write(c));
}

/* Done with the engine's output and nothing more will happen? */
static void maybe_finish(conn *c)
{
    if (c->state >= C_CLOSING || c->sending) /* closing or lingering */
        return;
    if (want_write(c))
        return;
    if (c->state == C_FLUSHING || CP(c)->is_done(c)) {
        /* TLS: close_notify after the final GOAWAY (queued once; nothing
         * to send after a fatal TLS error). */
        if (c->tls && tls_close_notify(c->tls) == TLS_OK && tls_out_pending(c->tls)) {
            shard_mark_dirty(c);
            return;
        }
        if (!conn_linger_start(c)) /* unread input must not turn the close into RST */
            conn_close(c);
    }
}

static void hold_input(conn *c, const uint8_t *p, size_t n)
{
    if ((uint64_t)c->held_len + n > c->held_cap) {
        /* Held input is what arrived between the pause and the recv's
         * cancellation: a few provided buffers, never near 2^32. */
        uint64_t cap = c->held_cap ? c->held_cap : 16384;
        while (cap < (uint64_t)c->held_len + n)
            cap *= 2;
        if (cap > UINT32_MAX) {
            conn_close(c);
            return;
        }
        /* Compact first: consumed bytes at the front are dead. */
        if (c->held_off) {
            memmove(c->held, c->held + c->held_off, c->held_len - c->held_off);
            c->held_len -= c->held_off;
            c->held_off = 0;
        }
        uint8_t *nb = realloc(c->held, cap);
        if (!nb) {
            conn_close(c);
            return;
        }
        c->held = nb;
        c->held_cap = (uint32_t)cap;
    }
    memcpy(c->held + c->held_len, p, n);
    c->held_len += (uint32_t)n;
}

/* The HTTP/2 engine failed the connection: write its GOAWAY, then close. */
static void fail(conn *c)
{
    if (c->state != C_OPEN)
        return;
    if (c->proto == CONN_H2 || c->proto == CONN_H2C) {
        h2_fault f = h2_conn_fault(c->h2);
        if (f.scope != H2_SCOPE_NONE && f.code != H2_NO_ERROR)
            log_msg(LOG_DEBUG, (int)c->sh->idx, "connection error %s: %s", h2_code_name(f.code),
                    f.reason ? f.reason : "");
    }
    conn_fail(c);
}

void conn_fail(conn *c)
{
    if (c->state != C_OPEN)
        return;
    c->state = C_FLUSHING;
    /* The GOAWAY is a courtesy: a peer that does not read gets it for
     * CONN_LINGER_MS, then the socket is closed (security.md: "still stuck
     * after the write timeout: close"). */
    if (timer_node_pending(&c->timer))
        timer_wheel_cancel(&c->sh->timers, &c->timer);
    timer_wheel_add(&c->sh->timers, &c->timer, c->sh->now + CONN_LINGER_MS);
    cancel_recv(c);
    shard_mark_dirty(c);
}

/* HTTP/2: feed bytes to the engine and dispatch its events.  Returns the
 * number of bytes consumed; fewer than n means the engine paused or failed. */
size_t conn_h2_feed(conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (c->state == C_OPEN) {
        if (!offload_has_room(c->sh)) {
            /* Workers are behind: hold the input until their queues drain. */
            c->paused = true;
            if (!c->off_waiting) {
                c->off_waiting = true;
                c->next_off_wait = c->sh->off_wait;
                c->sh->off_wait = c;
            }
            break;
        }
        h2_event ev;
        size_t used = 0;
        h2_rv rv = h2_conn_recv(c->h2, p + off, n - off, c->sh->now, &used, &ev);
        off += used;
        if (ev.type != H2_EV_NONE)
            stream_dispatch(c, &ev);
        if (rv == H2_E_AGAIN) {
            c->paused = true;
            break;
        }
        if (rv != H2_OK) {
            fail(c);
            break;
        }
        if (ev.type == H2_EV_NONE && off == n)
            break;
    }
    shard_mark_dirty(c);
    return off;
}

/* TLS: plaintext the adapter holds goes to the engine until it pauses. */
static void tls_pump(conn *c)
{
    bool was_up = tls_handshake_done(c->tls);
    while (c->state == C_OPEN && !c->paused) {
        const uint8_t *p;
        size_t n;
        tls_rv rv = tls_read(c->tls, &p, &n);
        if (rv == TLS_OK) {
            tls_consume(c->tls, CP(c)->feed(c, p, n));
            continue;
        }
        if (rv == TLS_CLOSED) {
            /* close_notify: a half-close, like a TCP FIN (RFC 8446 §6.1:
             * it says nothing of our side).  What came before is answered
             * as the engine's eof decides (HTTP/1.1: every request), then
             * our close_notify (maybe_finish) and the close. */
            if (!c->rd_eof)
                log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: TLS close_notify from the peer",
                        c->slot);
            c->rd_eof = true;
            input_ended(c);
            return;
        }
        if (rv == TLS_ERROR) {
            /* Handshake failures (version, suites, ALPN) and bad records:
             * send the alert the adapter queued, then close. */
            if (!was_up)
                stat_add(&c->sh->stats.tls_failed, 1);
            log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: %s", c->slot,
                    tls_error_msg(c->tls));
            fail(c);
        }
        break; /* TLS_WANT: more ciphertext needed, or output room */
    }
    if (!was_up && tls_handshake_done(c->tls)) {
        stat_add(&c->sh->stats.tls_handshakes, 1);
        log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: %s %s%s", c->slot, tls_version(c->tls),
                tls_cipher(c->tls), tls_session_reused(c->tls) ? " (resumed)" : "");
        if (c->proto == CONN_DETECT && c->state == C_OPEN)
            conn_detect_by_alpn(c); /* the server preface goes out now */
    }
    shard_mark_dirty(c); /* handshake output, or the engine's */
}

/* TLS: ciphertext into the adapter and the plaintext on to the engine.
 * Returns the bytes taken; fewer than n only when reading must pause (the
 * engine paused, or the adapter is full: then c->paused is set here) or
 * the connection ended. */
static size_t tls_input(conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    for (;;) {
        size_t took = tls_feed(c->tls, p + off, n - off);
        off += took;
        tls_pump(c);
        if (off == n || c->paused || c->state != C_OPEN)
            break;
        if (took == 0) {
            /* The adapter is full and the pump drained nothing: it waits
             * for output room.  Resumed after the next send completes. */
            c->paused = true;
            break;
        }
    }
    return off;
}

void conn_resume(conn *c)
{
    if (!c->paused || c->state != C_OPEN || !CP(c)->want_read(c))
        return;
    c->paused = false;
    if (c->tls) {
        tls_pump(c); /* plaintext left in the adapter comes first */
        if (c->paused || c->state != C_OPEN)
            return;
    }
    if (c->held_len > c->held_off) {
        const uint8_t *p = c->held + c->held_off;
        size_t n = c->held_len - c->held_off;
        size_t used = c->tls ? tls_input(c, p, n) : CP(c)->feed(c, p, n);
        c->held_off += (uint32_t)used;
        if (c->paused)
            return;
    }
    free(c->held);
    c->held = NULL;
    c->held_len = c->held_off = c->held_cap = 0;
    arm_recv(c);
}

void conn_on_recv(conn *c, const ring_cqe *cqe)
{
    bool more = ring_cqe_more(cqe);
    if (cqe->res > 0 && ring_cqe_has_buf(cqe)) {
        uint16_t bid = ring_cqe_bid(cqe);
        const uint8_t *p = ring_bufs_get(c->sh->bufs, bid);
        size_t n = (size_t)cqe->res;
        if (c->state == C_OPEN) {
            if (c->paused) {
                hold_input(c, p, n);
            } else {
                size_t used = c->tls ? tls_input(c, p, n) : CP(c)->feed(c, p, n);
                if (c->paused && used < n)
                    hold_input(c, p + used, n - used);
            }
        } else if (c->state == C_LINGER) {
            conn_linger_discard(c, n);
        }
        ring_bufs_recycle(c->sh->bufs, bid);
        if (c->paused && more && c->state == C_OPEN)
            cancel_recv(c);
    } else if (cqe->res == 0) {
        /* EOF: the peer will send nothing more (it may still read).  Once
         * the input before it is fed (arm_recv), the engine decides. */
        c->rd_eof = true;
    } else if (cqe->res == -ENOBUFS) {
        park(c);
    } else if (cqe->res < 0 && cqe->res != -ECANCELED) {
        if (cqe->res != -ECONNRESET)
            log_msg(LOG_DEBUG, (int)c->sh->idx, "recv: %s", strerror(-cqe->res));
        conn_close(c);
    }
    if (!more) {
        c->recv_armed = false;
        c->ops--;
        conn_on_op_end(c);
    }
    conn_timer_update(c);
}

/* An operation ended: re-arm reading, or finish closing. */
void conn_on_op_end(conn *c)
{
    if (c->state == C_CLOSING) {
        if (c->ops == 0 && !c->dead_listed) {
            c->dead_listed = true; /* freed once, at the end of the iteration */
            c->next_dead = c->sh->dead_conns;
            c->sh->dead_conns = c;
        }
        return;
    }
    if (c->state == C_OPEN || c->state == C_LINGER)
        arm_recv(c);
}

/* Send buffers (msghdr + iovecs) are lent to connections only while a
 * send is in flight: an idle connection does not carry 1.2 KiB of them.
 * The shard keeps at most CONN_IOV_KEEP for reuse, so a burst of sends
 * (a thousand handshakes at once) does not stay allocated. */
static send_buf *iov_take(shard *sh)
{
    void *p = sh->iov_free;
    if (p) {
        memcpy(&sh->iov_free, p, sizeof p);
        sh->niov_free--;
        return p;
    }
    return malloc(sizeof(send_buf));
}

static void iov_give(conn *c)
{
    if (!c->sb)
        return;
    shard *sh = c->sh;
    if (sh->niov_free >= CONN_IOV_KEEP) {
        free(c->sb);
    } else {
        memcpy(c->sb, &sh->iov_free, sizeof(void *));
        sh->iov_free = c->sb;
        sh->niov_free++;
    }
    c->sb = NULL;
}

void conn_iov_free_all(shard *sh)
{
    while (sh->iov_free) {
        void *p = sh->iov_free;
        memcpy(&sh->iov_free, p, sizeof p);
        free(p);
    }
    sh->niov_free = 0;
}

/* Borrow a send buffer for this connection; false (and closing) without
 * memory. */
static bool sb_ready(conn *c)
{
    if (c->sb || (c->sb = iov_take(c->sh)))
        return true;
    conn_close(c);
    return false;
}

/* Output went (or was copied to go): streams that waited for their queue
 * to drain hear so (on_writable), held input is fed again. */
static void after_commit(conn *c)
{
    for (spindle_stream *st = c->streams; st; st = st->next) {
        if (!(st->flags & ST_WANT_WRITABLE))
            continue;
        uint64_t queued = CP(c)->buffered(c, st->sid);
        atomic_store_explicit(&st->buffered, (size_t)queued, memory_order_relaxed);
        if (queued >= c->sh->srv->limits.max_stream_buffered)
            continue;
        st->flags &= (uint16_t)~ST_WANT_WRITABLE;
        if (st->flags & (ST_RESET | ST_CLOSED))
            continue;
        st->ops->on_writable(st);
    }
    conn_resume(c);
    /* TLS: a handshake step or a record may have waited for output room. */
    if (c->tls && !c->paused && c->state == C_OPEN)
        tls_pump(c);
}

/* A send without CQE was queued with a copy of its n bytes: commit them now,
 * as if it had completed; its settling only ends the send (sendskip.h). */
static void sent_early(conn *c, size_t n)
{
    iov_give(c);
    if (c->tls)
        tls_out_commit(c->tls, n);
    else
        CP(c)->out_commit(c, n);
    c->send_committed = true;
    after_commit(c);
}

/* Put c->sb->iov[0..n) on the wire with one sendmsg (SENDMSG_ZC when zc):
 * the connection's one send in flight. */
static void start_send(conn *c, size_t n, bool zc)
{
    memset(&c->sb->msg, 0, sizeof c->sb->msg);
    c->sb->msg.msg_iov = c->sb->iov;
    c->sb->msg.msg_iovlen = n;
    size_t staged = 0;
    int rc = zc ? ring_prep_sendmsg_zc(c->sh->r, c->fd, &c->sb->msg, 0, ud(c, OP_SEND))
                : sendskip_start(c, n, &staged); /* small: copied, no CQE on success */
    if (rc == 1)
        rc = ring_prep_sendmsg(c->sh->r, c->fd, &c->sb->msg, 0, ud(c, OP_SEND));
    if (rc < 0) {
        if (c->tls)
            tls_out_commit(c->tls, 0); /* ends the lending */
        log_msg(LOG_WARN, (int)c->sh->idx, "send: %s", strerror(-rc));
        conn_close(c);
        return;
    }
    c->zc = zc;
    c->sending = true;
    c->ops++;
    if (staged) /* the bytes are copied: committed now (sendskip.h) */
        sent_early(c, staged);
}

/* TLS: encrypt what the adapter takes of the engine's output, then send
 * the ciphertext it lends (plain sendmsg: the bytes are ours, SEND_ZC would
 * only add the notification). */
static void tls_flush(conn *c)
{
    shard *sh = c->sh;
    if (!sb_ready(c))
        return;
    size_t room = tls_write_room(c->tls);
    if (room && CP(c)->want_write(c)) {
        size_t n = CP(c)->out_prepare(c, c->sb->iov, CONN_IOV,
                                      room < CONN_SEND_BUDGET ? room : CONN_SEND_BUDGET);
        size_t used = 0;
        tls_rv rv = n ? tls_write(c->tls, c->sb->iov, (int)n, &used) : TLS_OK;
        /* Encrypted is copied: the engine may release those bytes now. */
        if (used)
            CP(c)->out_commit(c, used);
        if (rv == TLS_ERROR) {
            log_msg(LOG_DEBUG, (int)sh->idx, "connection %u: %s", c->slot, tls_error_msg(c->tls));
            iov_give(c);
            conn_close(c);
            return;
        }
    }
    size_t bytes = 0;
    int k = tls_pending_out(c->tls, c->sb->iov, (int)CONN_IOV, &bytes);
    if (k == 0) {
        iov_give(c);
        maybe_finish(c);
        return;
    }
    start_send(c, (size_t)k, false);
}

void conn_flush(conn *c)
{
    if (c->sending || c->state >= C_CLOSING) /* closing or lingering */
        return;
    if (c->tls) {
        tls_flush(c);
        return;
    }
    if (!CP(c)->want_write(c)) {
        maybe_finish(c);
        return;
    }
    if (!sb_ready(c))
        return;
    size_t n = CP(c)->out_prepare(c, c->sb->iov, CONN_IOV, CONN_SEND_BUDGET);
    if (n == 0) {
        iov_give(c);
        maybe_finish(c);
        return;
    }
    /* Large batches go zero-copy: the kernel reads the application's pages
     * (and our frame headers) until its notification, so the engine's output
     * is committed only then (conn_on_send). */
    uint32_t zc_min = c->sh->srv->cfg.zc_threshold;
    size_t total = 0;
    if (zc_min)
        for (size_t i = 0; i < n; i++)
            total += c->sb->iov[i].iov_len;
    start_send(c, n, zc_min && total >= zc_min);
}

void conn_on_send(conn *c, const ring_cqe *cqe)
{
    int32_t res = cqe->res;
    if (c->zc) {
        if (!ring_cqe_notif(cqe)) {
            /* The result; a notification follows when F_MORE is set. */
            c->zc_res = res;
            if (ring_cqe_more(cqe))
                return;
        } else {
            res = c->zc_res; /* the kernel is done with the pages now */
        }
        c->zc = false;
    }
    c->sending = false;
    c->ops--;
    iov_give(c); /* the kernel has the message; the array goes back */
    /* Committed when it was queued (sent_early()): only the send ends. */
    bool early = c->send_committed;
    c->send_committed = false;
    if (c->tls && !early)
        tls_out_commit(c->tls, res > 0 ? (size_t)res : 0); /* ends the lending */
    if (c->state == C_CLOSING) {
        conn_on_op_end(c);
        return;
    }
    if (res < 0) {
        if (res != -EPIPE && res != -ECONNRESET)
            log_msg(LOG_DEBUG, (int)c->sh->idx, "send: %s", strerror(-res));
        conn_close(c); /* frees it (deferred) once no operation is left */
        return;
    }
    if (!c->tls && !early)
        CP(c)->out_commit(c, (size_t)res); /* TLS: committed at tls_write */
    if (!early)
        after_commit(c);
    else
        conn_resume(c);
    shard_mark_dirty(c);
}

bool conn_wants_flush(const conn *c)
{
    return c->state != C_OPEN || want_write(c) || CP(c)->is_done(c);
}

void conn_begin_drain(conn *c)
{
    if (c->state == C_LINGER)
        conn_linger_drain(c);
    if (c->state != C_OPEN)
        return;
    /* Mid-handshake (TLS) the protocol is still CONN_DETECT: the engine
     * starts drained once it is done, within drain-grace (hs_deadline). */
    CP(c)->shutdown(c);
    shard_mark_dirty(c);
}

void conn_on_timer(conn *c)
{
    if (c->state == C_LINGER) {
        conn_close(c); /* lingering-time or lingering-timeout */
        return;
    }
    if (c->state == C_FLUSHING) {
        log_msg(LOG_DEBUG, (int)c->sh->idx, "closing: the peer did not take the GOAWAY in time");
        conn_close(c);
        return;
    }
    if (c->state != C_OPEN)
        return;
    if (c->tls && !tls_handshake_done(c->tls)) {
        if (c->sh->now >= hs_deadline(c)) {
            if (!c->sh->draining) /* else drain-grace ended it */
                stat_add(&c->sh->stats.tls_failed, 1);
            log_msg(LOG_DEBUG, (int)c->sh->idx,
                    "connection %u: TLS handshake timeout (%u ms): closing", c->slot,
                    c->sh->srv->cfg.tls_handshake_timeout_ms);
            conn_close(c); /* no alert: the handshake may not even have begun */
            return;
        }
        conn_timer_update(c);
        return;
    }
    CP(c)->on_timer(c);
}

void conn_h2_timer(conn *c)
{
    if (h2_conn_tick(c->h2, c->sh->now) != H2_OK) {
        h2_fault f = h2_conn_fault(c->h2);
        log_msg(LOG_DEBUG, (int)c->sh->idx, "closing: %s", f.reason ? f.reason : "timeout");
        /* A peer that stopped reading would not take the GOAWAY either. */
        if (h2_conn_send_stalled(c->h2))
            conn_close(c);
        else
            fail(c);
        return;
    }
    shard_mark_dirty(c); /* a tick may queue output (the final GOAWAY) */
    conn_timer_update(c);
}

void conn_close(conn *c)
{
    if (c->state == C_CLOSING)
        return;
    c->state = C_CLOSING;
    if (timer_node_pending(&c->timer))
        timer_wheel_cancel(&c->sh->timers, &c->timer);
    stream_conn_gone(c);
    if (c->ops)
        ring_prep_cancel_fd(c->sh->r, c->fd, ring_ud_pack(OP_CANCEL, c->slot, c->gen));
    else
        conn_on_op_end(c);
}

void conn_free(conn *c)
{
    shard *sh = c->sh;
    log_msg(LOG_DEBUG, (int)sh->idx, "connection %u closed (%u left)", c->slot, sh->nconns - 1);
    if (c->state != C_CLOSING) {
        /* Teardown of a live connection: the ring is about to be freed with
         * its operations cancelled. */
        c->state = C_CLOSING;
        stream_conn_gone(c);
    }
    close(c->fd);
    iov_give(c);
    stream_conn_freed(c);
    CP(c)->free(c);        /* releases queued body buffers */
    tls_conn_free(c->tls); /* after the last send that borrowed its output */
    stats_conn_closed(c);
    free(c->held);
    sh->slots[c->slot] = NULL;
    sh->gens[c->slot]++; /* later CQEs for this slot are stale */
    sh->free_slots[sh->nfree++] = c->slot;
    sh->nconns--;
    /* A parked or dirty entry must not outlive the connection. */
    for (conn **pp = &sh->parked; *pp; pp = &(*pp)->next_parked)
        if (*pp == c) {
            *pp = c->next_parked;
            break;
        }
    for (conn **pp = &sh->dirty; *pp; pp = &(*pp)->next_dirty)
        if (*pp == c) {
            *pp = c->next_dirty;
            break;
        }
    for (conn **pp = &sh->off_wait; *pp; pp = &(*pp)->next_off_wait)
        if (*pp == c) {
            *pp = c->next_off_wait;
            break;
        }
    free(c);
}
