/* upstream_conn.c - one pooled connection to an origin.
 *
 * A non-blocking TCP socket watched with spindle_watch_fd() on the shard's
 * ring (IN always once connected, OUT while the connect is pending or
 * output is left), read with read(2) (or wolfSSL) in the watch callback,
 * written with writev(2) right when the engine has output: after a request
 * is issued, body sent, or input answered.  Writing at once rather than in
 * the shard's flush step costs one syscall per burst and keeps this module
 * outside conn.c (docs/client.md, "Upstream calls").
 *
 * Failure never runs callbacks under the application's own call: a write
 * error marks the connection dead and kicks the pool, whose timer (from the
 * loop) fails its calls and frees it.  Errors found while reading are
 * handled at the end of the watch callback, also from the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "shard.h"
#include "upstream.h"

#define UP_READ_BUF   16384u
#define UP_READS_MAX  8u /* reads per watch callback (level-triggered: more later) */
#define UP_IOV        32u
#define UP_WRITE_MAX  (256u * 1024u)
#define UP_TLS_OUTCAP (64u * 1024u) /* ciphertext buffered before the engine waits */

enum { UC_CONNECTING, UC_HANDSHAKE, UC_OPEN };

struct up_conn {
    spindle_upstream *u;
    up_conn *next;
    int fd;
    spindle_watch *w;
    uint32_t events;
    h2_conn *h2;
    up_tls *tls;
    uint8_t st;
    uint8_t tries; /* addresses of the name tried so far */
    bool dead;
    bool goaway;
    bool wclosed;    /* writing failed (the origin closed): read until EOF */
    bool ka_pending; /* a keepalive PING is unanswered */
    int err;
    uint64_t opened_ms, ka_sent_ms;
    spindle_call *calls;
    uint32_t ncalls;
    up_ping *pings; /* timed PINGs in flight, in order (ping_wait.h) */
    uint8_t *held;  /* input the engine paused on */
    size_t held_off, held_len;
    uint8_t buf[UP_READ_BUF];
};

up_conn *up_conn_next(const up_conn *c)
{
    return c->next;
}

h2_conn *up_conn_h2(up_conn *c)
{
    return c->h2;
}

uint32_t up_conn_load(const up_conn *c)
{
    return c->ncalls;
}

bool up_conn_usable(const up_conn *c)
{
    return !c->dead && !c->goaway && !c->wclosed;
}

bool up_conn_is_open(const up_conn *c)
{
    return c->st == UC_OPEN;
}

uint32_t up_conn_room(const up_conn *c)
{
    return up_conn_usable(c) ? h2_client_room(c->h2) : 0;
}

size_t up_conn_buffered(const up_conn *c, uint32_t sid)
{
    return (size_t)h2_conn_stream_buffered(c->h2, sid);
}

void up_chunk_release(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    free(ctx);
}

static void mark_dead(up_conn *c, int err)
{
    if (c->dead)
        return;
    c->dead = true;
    c->err = err;
    up_pool_kick(c->u);
}

void up_conn_attach(up_conn *c, spindle_call *call)
{
    call->c = c;
    call->prev = NULL;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->ncalls++;
}

static void detach(up_conn *c, spindle_call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
    call->c = NULL;
    c->ncalls--;
}

void up_conn_call_done(up_conn *c, spindle_call *call)
{
    uint32_t sid = call->sid;
    detach(c, call);
    if (!c->dead)
        (void)h2_client_stream_done(c->h2, sid);
}

/* --- Opening -------------------------------------------------------------- */

static void watch_cb(spindle_watch *w, int fd, uint32_t revents, void *ctx);

static int start_connect(spindle_upstream *u, int *fdp)
{
    const up_addr *a = &u->addrs[u->addr_next % u->naddrs];
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SPINDLE_ESYS;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS) {
        close(fd);
        return SPINDLE_EUPSTREAM;
    }
    *fdp = fd;
    return 0;
}

up_conn *up_conn_open(spindle_upstream *u, int *err)
{
    up_conn *c = calloc(1, sizeof *c);
    if (!c) {
        *err = SPINDLE_ENOMEM;
        return NULL;
    }
    c->u = u;
    c->fd = -1;
    *err = start_connect(u, &c->fd);
    /* Refused at once (no route for that family): the name's next address. */
    for (uint32_t i = 1; *err == SPINDLE_EUPSTREAM && i < u->naddrs; i++) {
        u->addr_next = (u->addr_next + 1) % u->naddrs;
        *err = start_connect(u, &c->fd);
    }
    if (*err == 0 && u->tls && !(c->tls = up_tls_new(u->tls, c->fd, u->cfg.tls_name)))
        *err = SPINDLE_ENOMEM;
    if (*err == 0 && !(c->h2 = h2_client_new(&u->sh->h2, up_now_ms(u))))
        *err = SPINDLE_ENOMEM;
    if (*err == 0)
        *err = spindle_watch_fd(u->as, c->fd, SPINDLE_WATCH_OUT, watch_cb, c, &c->w);
    if (*err != 0) {
        if (*err == SPINDLE_EUPSTREAM)
            u->dns_stale = true; /* a name: look it up again next time */
        if (c->h2)
            h2_conn_free(c->h2);
        up_tls_free(c->tls);
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    c->events = SPINDLE_WATCH_OUT;
    c->opened_ms = c->ka_sent_ms = up_now_ms(u);
    u->dns_fresh = false;
    c->next = u->conns;
    u->conns = c;
    u->nconns++;
    u->opened++;
    return c;
}

/* --- Failing and reaping ------------------------------------------------- */

/* A stream the connection's loss makes retryable: a call whose request
 * never fully went out cannot be told apart from one the origin got, so
 * only calls refused by the origin (REFUSED_STREAM) are re-issued; a lost
 * connection fails its calls. */
void up_conn_fail(up_conn *c, int err)
{
    spindle_upstream *u = c->u;
    for (up_conn **pp = &u->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    u->nconns--;
    c->dead = true;
    while (c->calls) {
        spindle_call *call = c->calls;
        detach(c, call);
        up_call_finish(call, err, 0);
    }
    ping_wait_fail(&c->pings, err == SPINDLE_ECLOSED ? SPINDLE_ECLOSED : SPINDLE_EUPSTREAM);
    spindle_watch_close(c->w);
    if (c->fd >= 0)
        close(c->fd);
    up_tls_free(c->tls);
    h2_conn_free(c->h2);
    free(c->held);
    free(c);
}

void up_conn_reap(spindle_upstream *u)
{
    for (up_conn *c = u->conns, *next; c; c = next) {
        next = c->next;
        bool done = !c->dead && c->st == UC_OPEN && !c->ncalls && h2_conn_is_done(c->h2) &&
                    !h2_conn_want_write(c->h2);
        if (c->dead || done) {
            if (c->dead)
                log_msg(LOG_DEBUG, (int)u->sh->idx, "upstream %s: connection lost (%s)",
                        u->cfg.authority, spindle_strerror(c->err));
            up_conn_fail(c, c->dead ? SPINDLE_EUPSTREAM : SPINDLE_ECLOSED);
            next = u->conns; /* callbacks may have changed the list */
        }
    }
}

/* --- Output ---------------------------------------------------------------- */

static void set_events(up_conn *c, uint32_t ev)
{
    if (c->dead || ev == c->events)
        return;
    if (spindle_watch_set(c->w, ev) == 0)
        c->events = ev;
}

static long write_plain(up_conn *c, const struct iovec *iov, size_t n)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
    return (long)sendmsg(c->fd, &m, MSG_NOSIGNAL);
}

static long write_tls(up_conn *c, const struct iovec *iov, size_t n)
{
    long total = 0;
    for (size_t i = 0; i < n; i++) {
        if (up_tls_write(c->tls, iov[i].iov_base, iov[i].iov_len) != 0) {
            errno = EPROTO;
            return -1;
        }
        total += (long)iov[i].iov_len;
    }
    return total;
}

/* Write until the engine has nothing or the socket is full; true when the
 * socket is full (wait for OUT). */
static bool write_out(up_conn *c)
{
    for (;;) {
        if (c->tls) {
            int d = up_tls_drain(c->tls);
            if (d < 0) {
                c->wclosed = true;
                up_pool_kick(c->u);
                return false;
            }
            if (d > 0)
                return true;
        }
        struct iovec iov[UP_IOV];
        size_t n = h2_conn_out_prepare(c->h2, iov, UP_IOV, c->tls ? UP_TLS_OUTCAP : UP_WRITE_MAX);
        if (!n)
            return false;
        size_t want = 0;
        for (size_t i = 0; i < n; i++)
            want += iov[i].iov_len;
        long w = c->tls ? write_tls(c, iov, n) : write_plain(c, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return true;
            /* The origin closed (EPIPE, ECONNRESET): what it sent before
             * (responses, a GOAWAY that refuses our later streams) is still
             * to be read; EOF then fails what is left. */
            c->wclosed = true;
            up_pool_kick(c->u);
            return false;
        }
        h2_conn_out_commit(c->h2, (size_t)w, up_now_ms(c->u));
        if ((size_t)w < want)
            return true;
    }
}

void up_conn_flush(up_conn *c)
{
    if (c->dead || c->st != UC_OPEN || c->wclosed)
        return;
    bool full = write_out(c);
    set_events(c, SPINDLE_WATCH_IN | (full ? SPINDLE_WATCH_OUT : 0));
}

/* --- Events -> callbacks ------------------------------------------------- */

static spindle_call *call_of(up_conn *c, uint32_t sid)
{
    return sid ? h2_conn_stream_user(c->h2, sid) : NULL;
}

static void complete(up_conn *c, spindle_call *call, int err, uint32_t code)
{
    up_conn_call_done(c, call);
    up_call_finish(call, err, code);
}

static void on_response(up_conn *c, spindle_call *call, const h2_event *ev)
{
    const h2_resp_head *r = &ev->u.response;
    if (r->status < 200)
        return; /* 1xx: the final head follows */
    const spindle_header *h = up_headers(c->u, r->fields, r->nfields);
    if (!h && r->nfields) {
        complete(c, call, SPINDLE_ENOMEM, 0);
        return;
    }
    call->got_head = true;
    spindle_response resp = {r->status, h, r->nfields, r->content_length, ev->end_stream};
    if (call->h.on_response) {
        if (!up_call_cb_begin(call))
            return;
        call->h.on_response(call, &resp, call->ctx);
        if (!up_call_cb_end(call))
            return;
    }
    if (ev->end_stream)
        complete(c, call, 0, 0);
}

static void on_data(up_conn *c, spindle_call *call, const h2_event *ev)
{
    if (up_hold_active(call)) { /* paused: kept, the stream's window stays shut */
        int rc = up_hold_data(call, c->h2, ev->u.data.data, ev->u.data.len);
        if (rc != 0)
            complete(c, call, rc, 0);
        else if (ev->end_stream)
            up_hold_end(c, call, UP_REND_DATA);
        return;
    }
    (void)h2_conn_consume(c->h2, ev->stream_id, ev->u.data.len);
    if (call->h.on_data) {
        if (!up_call_cb_begin(call))
            return;
        call->h.on_data(call, ev->u.data.data, ev->u.data.len, ev->end_stream, call->ctx);
        if (!up_call_cb_end(call))
            return;
    }
    if (ev->end_stream)
        complete(c, call, 0, 0);
}

static void on_trailers(up_conn *c, spindle_call *call, const h2_event *ev)
{
    if (up_hold_active(call)) {
        int rc = up_hold_trailers(call, ev->u.trailers.fields, ev->u.trailers.n);
        if (rc != 0)
            complete(c, call, rc, 0);
        else
            up_hold_end(c, call, UP_REND_TRAILERS);
        return;
    }
    const spindle_header *h = up_headers(c->u, ev->u.trailers.fields, ev->u.trailers.n);
    if (call->h.on_trailers && (h || !ev->u.trailers.n)) {
        if (!up_call_cb_begin(call))
            return;
        call->h.on_trailers(call, h, ev->u.trailers.n, call->ctx);
        if (!up_call_cb_end(call))
            return;
    }
    complete(c, call, 0, 0);
}

static void on_reset(up_conn *c, spindle_call *call, const h2_event *ev)
{
    uint32_t code = ev->u.reset.code;
    if (code == H2_REFUSED_STREAM && call->refusals < UP_MAX_REFUSALS && call->replay &&
        !call->got_head) {
        /* Never processed (RFC 9113 section 8.7): again, elsewhere. */
        up_conn_call_done(c, call);
        call->refusals++;
        up_pending_push_front(c->u, call);
        up_pool_kick(c->u);
        return;
    }
    complete(c, call, SPINDLE_EUPSTREAM, code);
}

static void on_ping_ack(up_conn *c, const h2_event *ev)
{
    if (ping_wait_ack(&c->pings, ev->u.ping) == PING_ACK_BARE)
        c->ka_pending = false; /* the keepalive's */
}

static void handle_event(up_conn *c, const h2_event *ev)
{
    if (ev->type == H2_EV_GOAWAY) {
        c->goaway = true; /* refused streams follow as resets */
        return;
    }
    if (ev->type == H2_EV_PING_ACK) {
        on_ping_ack(c, ev);
        return;
    }
    spindle_call *call = call_of(c, ev->stream_id);
    if (!call)
        return;
    switch (ev->type) {
    case H2_EV_RESPONSE: on_response(c, call, ev); break;
    case H2_EV_DATA: on_data(c, call, ev); break;
    case H2_EV_TRAILERS: on_trailers(c, call, ev); break;
    case H2_EV_STREAM_RESET: on_reset(c, call, ev); break;
    default: break;
    }
}

/* --- Input ----------------------------------------------------------------- */

/* Feed in[0..len) to the engine; returns the bytes used (less when the
 * engine paused: the caller holds the rest). */
static size_t feed(up_conn *c, const uint8_t *in, size_t len)
{
    size_t off = 0;
    while (!c->dead) {
        size_t used = 0;
        h2_event ev;
        h2_rv rv = h2_client_recv(c->h2, in + off, len - off, up_now_ms(c->u), &used, &ev);
        off += used;
        if (rv == H2_E_AGAIN) {
            up_conn_flush(c);
            if (!h2_conn_want_read(c->h2))
                break;
            continue;
        }
        if (rv != H2_OK) {
            up_conn_flush(c); /* the GOAWAY, if it can go */
            mark_dead(c, SPINDLE_EUPSTREAM);
            break;
        }
        if (ev.type == H2_EV_NONE)
            break;
        handle_event(c, &ev);
    }
    return off;
}

static bool hold(up_conn *c, const uint8_t *rest, size_t n)
{
    uint8_t *h = malloc(n);
    if (!h)
        return false;
    memcpy(h, rest, n);
    c->held = h;
    c->held_off = 0;
    c->held_len = n;
    return true;
}

static bool feed_held(up_conn *c)
{
    if (!c->held)
        return true;
    c->held_off += feed(c, c->held + c->held_off, c->held_len - c->held_off);
    if (c->held_off < c->held_len)
        return false;
    free(c->held);
    c->held = NULL;
    return true;
}

static void do_read(up_conn *c)
{
    for (uint32_t i = 0; i < UP_READS_MAX && !c->dead; i++) {
        if (!feed_held(c))
            return;
        long n = c->tls ? up_tls_read(c->tls, c->buf, sizeof c->buf)
                        : (long)read(c->fd, c->buf, sizeof c->buf);
        if (n == 0) {
            mark_dead(c, SPINDLE_EUPSTREAM);
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                mark_dead(c, SPINDLE_EUPSTREAM);
            return;
        }
        size_t used = feed(c, c->buf, (size_t)n);
        if (used < (size_t)n && !c->dead && !hold(c, c->buf + used, (size_t)n - used))
            mark_dead(c, SPINDLE_ENOMEM);
        if ((size_t)n < sizeof c->buf)
            return;
    }
}

/* --- The watch --------------------------------------------------------------- */

/* The connect failed: the host name's next address, on a new socket
 * (the engine's queued preface and requests stay).  false when every
 * address was tried. */
static bool connect_next(up_conn *c)
{
    spindle_upstream *u = c->u;
    u->addr_next = (u->addr_next + 1) % u->naddrs;
    if (++c->tries >= u->naddrs)
        return false;
    spindle_watch_close(c->w);
    c->w = NULL;
    up_tls_free(c->tls);
    c->tls = NULL;
    close(c->fd);
    c->fd = -1;
    if (start_connect(u, &c->fd) != 0)
        return false;
    if (u->tls && !(c->tls = up_tls_new(u->tls, c->fd, u->cfg.tls_name)))
        return false;
    if (spindle_watch_fd(u->as, c->fd, SPINDLE_WATCH_OUT, watch_cb, c, &c->w) != 0)
        return false;
    c->events = SPINDLE_WATCH_OUT;
    return true;
}

static void connected(up_conn *c)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        if (soerr == EINPROGRESS || soerr == EALREADY)
            return;
        if (!connect_next(c)) {
            c->u->dns_stale = true; /* reconnect: look the name up again */
            mark_dead(c, SPINDLE_EUPSTREAM);
        }
        return;
    }
    c->st = c->tls ? UC_HANDSHAKE : UC_OPEN;
}

static void handshake(up_conn *c)
{
    int r = up_tls_handshake(c->tls);
    int d = up_tls_drain(c->tls);
    if (r < 0 || d < 0) {
        mark_dead(c, SPINDLE_EUPSTREAM);
        return;
    }
    if (r == 0) {
        c->st = UC_OPEN;
        c->u->tls_handshakes++;
        c->u->tls_resumed += up_tls_resumed(c->tls);
        return;
    }
    set_events(c, (uint32_t)r | (d > 0 ? SPINDLE_WATCH_OUT : 0));
}

static void watch_cb(spindle_watch *w, int fd, uint32_t revents, void *ctx)
{
    (void)w;
    (void)fd;
    up_conn *c = ctx;
    spindle_upstream *u = c->u;
    if (c->st == UC_CONNECTING && !c->dead)
        connected(c);
    if (c->st == UC_HANDSHAKE && !c->dead)
        handshake(c);
    if (c->st == UC_OPEN && !c->dead) {
        if ((revents & (SPINDLE_WATCH_IN | SPINDLE_WATCH_HUP | SPINDLE_WATCH_ERR)) || c->held)
            do_read(c);
        up_conn_flush(c);
    }
    if (c->dead || u->npend || u->orphans)
        up_pool_service(u); /* from the loop: fail what died, dispatch */
}

/* --- Time ---------------------------------------------------------------------- */

int up_conn_ping(up_conn *c, spindle_rtt_fn fn, void *ctx)
{
    return ping_wait_send(&c->pings, c->h2, fn, ctx);
}

void up_conn_tick(up_conn *c, uint64_t now_ms)
{
    const spindle_upstream_config *cfg = &c->u->cfg;
    if (c->dead)
        return;
    if (c->st != UC_OPEN) {
        if (cfg->connect_timeout_ms && now_ms - c->opened_ms >= cfg->connect_timeout_ms)
            mark_dead(c, SPINDLE_ETIMEDOUT);
        return;
    }
    if (h2_conn_next_deadline(c->h2) <= now_ms && h2_conn_tick(c->h2, now_ms) != H2_OK) {
        up_conn_flush(c);
        mark_dead(c, SPINDLE_ETIMEDOUT);
        return;
    }
    if (cfg->keepalive_ms && now_ms - c->ka_sent_ms >= cfg->keepalive_ms) {
        if (c->ka_pending) {
            log_msg(LOG_DEBUG, (int)c->u->sh->idx, "upstream %s: keepalive PING unanswered",
                    cfg->authority);
            mark_dead(c, SPINDLE_ETIMEDOUT);
            return;
        }
        if (up_conn_ping(c, NULL, NULL) == 0) {
            c->ka_pending = true;
            c->ka_sent_ms = now_ms;
        }
    }
    up_conn_flush(c);
}

int up_ping_orphan(spindle_upstream *u, spindle_rtt_fn fn, void *ctx)
{
    up_ping *p = calloc(1, sizeof *p);
    if (!p)
        return SPINDLE_ENOMEM;
    p->fn = fn;
    p->ctx = ctx;
    p->next = u->orphans;
    u->orphans = p;
    up_pool_kick(u);
    return 0;
}

void up_ping_fail_orphans(spindle_upstream *u)
{
    ping_wait_fail(&u->orphans, SPINDLE_ECLOSED);
}
