/* conn_detect.c - CONN_DETECT: the first bytes (cleartext) or ALPN (TLS)
 * choose a connection's engine.  See conn_detect.h. */
#include "conn_detect.h"

#include <string.h>

#include "conn.h"
#include "conn_h1.h"
#include "log.h"
#include "server.h"
#include "shard.h"
#include "stats.h"

/* The engine for the protocol chosen (CONN_H2 or CONN_H1); false (and
 * closing) without memory. */
static bool start_engine(conn *c, uint8_t proto)
{
    shard *sh = c->sh;
    uint64_t accepted = c->accepted_ms;
    if (proto == CONN_H2) {
        h2_conn *e = h2_conn_new(&sh->h2, accepted); /* the preface timeout counts from accept */
        if (!e) {
            conn_close(c);
            return false;
        }
        c->h2 = e;
        if (sh->draining)
            h2_conn_shutdown(e);
    } else if (!conn_h1_start(c, accepted)) {
        conn_close(c);
        return false;
    }
    c->proto = proto;
    stats_conn_speaks(c, proto);
    if (proto == CONN_H1)
        c->info.proto = STATS_PROTO_HTTP11; /* logged and counted as http/1.1 */
    shard_mark_dirty(c);                    /* the server preface */
    conn_timer_update(c);
    return true;
}

/* TLS: ALPN decides ("h2", else HTTP/1.1, also without ALPN). */
bool conn_detect_by_alpn(conn *c)
{
    const char *a = tls_alpn(c->tls);
    return start_engine(c, a && strcmp(a, "h2") == 0 ? CONN_H2 : CONN_H1);
}

static const uint8_t h2_preface[CONN_H2_PREFACE_LEN] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* CONN_DETECT: the first bytes of a cleartext connection are the HTTP/2
 * preface or HTTP/1.1.  A prefix of the preface is only counted (its bytes
 * are known); once it is decided the engine gets them, then the rest. */
static size_t detect_feed(conn *c, const uint8_t *p, size_t n)
{
    uint8_t seen = c->matched;
    if (c->tls) {
        if (!conn_detect_by_alpn(c))
            return n;
    } else {
        size_t k = sizeof h2_preface - seen;
        if (k > n)
            k = n;
        bool h2 = memcmp(p, h2_preface + seen, k) == 0;
        if (h2 && seen + k < sizeof h2_preface) {
            c->matched = (uint8_t)(seen + k);
            return n; /* undecided: all of it is a prefix of the preface */
        }
        if (!start_engine(c, h2 ? CONN_H2 : CONN_H1))
            return n;
        if (seen && CP(c)->feed(c, h2_preface, seen) < seen) {
            conn_close(c); /* the engine paused on a few known bytes: not expected */
            return n;
        }
    }
    return c->state == C_OPEN ? CP(c)->feed(c, p, n) : n;
}

uint64_t conn_drain_bound(const conn *c, uint64_t d)
{
    return c->sh->draining && c->sh->drain_grace_end < d ? c->sh->drain_grace_end : d;
}

/* Nothing decided yet: a peer on its way to the HTTP/2 preface (a prefix
 * of it seen) gets the HTTP/2 preface timeout, one that sent nothing the
 * shorter of that and the HTTP/1.1 header-read timeout, all from accept. */
static uint64_t detect_deadline(const conn *c)
{
    uint32_t h2t = c->sh->srv->limits.preface_timeout_ms;
    uint32_t h1t = c->sh->srv->h1limits.header_timeout_ms;
    uint32_t t = c->matched || !h1t || (h2t && h2t < h1t) ? h2t : h1t;
    return conn_drain_bound(c, t ? c->accepted_ms + t : UINT64_MAX);
}

static void detect_timer(conn *c)
{
    if (c->sh->now < detect_deadline(c)) {
        conn_timer_update(c);
        return;
    }
    if (c->sh->draining) {
        conn_close(c); /* draining, and no request came in time: nothing to answer */
        return;
    }
    uint32_t h2t = c->sh->srv->limits.preface_timeout_ms;
    uint32_t h1t = c->sh->srv->h1limits.header_timeout_ms;
    if (c->matched || (h2t && (!h1t || h2t <= h1t))) {
        /* The HTTP/2 engine's own reaction (GOAWAY, ENHANCE_YOUR_CALM), its
         * preface timer counted from accept. */
        uint8_t seen = c->matched;
        if (!start_engine(c, CONN_H2))
            return;
        if (seen && CP(c)->feed(c, h2_preface, seen) < seen) {
            conn_close(c);
            return;
        }
        if (c->state == C_OPEN)
            CP(c)->on_timer(c);
        return;
    }
    log_msg(LOG_DEBUG, (int)c->sh->idx, "connection %u: nothing received in time: closing",
            c->slot);
    conn_close(c); /* HTTP/1.1's rule: a connection that never sent a byte */
}

static bool no(const conn *c)
{
    (void)c;
    return false;
}

static size_t detect_prepare(conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes)
{
    (void)c, (void)iov, (void)iovcnt, (void)max_bytes;
    return 0;
}

static void detect_commit(conn *c, size_t n)
{
    (void)c, (void)n;
}

static void detect_noop(conn *c)
{
    (void)c;
}

const conn_proto conn_proto_detect = {
    .feed = detect_feed,
    .want_write = no,
    .want_read = no,
    .is_done = no,
    .out_prepare = detect_prepare,
    .out_commit = detect_commit,
    .next_deadline = detect_deadline,
    .on_timer = detect_timer,
    /* The drain before the first bytes: the client may have sent its
     * request already (it was accepted), so the engine starts drained when
     * they come (start_engine), within drain-grace (detect_deadline). */
    .shutdown = detect_noop,
    .free = detect_noop,
    /* No stream exists before the engine: the stream entries stay NULL. */
};
