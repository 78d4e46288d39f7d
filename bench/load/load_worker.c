/* load_worker.c - one spindle-load thread: a ring, its connections, the
 * transport under each (plain TCP, or TLS through load_tls.h) and the
 * protocol on top (load_h2.c or load_http1.c, load_conn.h).
 *
 * Per connection one recv and at most one writev are in flight.  A turn of
 * the loop waits for completions, handles all of them (input goes through
 * TLS and the protocol, which ends requests), then tops every connection
 * up to -m requests and writes what it has.  Time is read once per turn:
 * the latency of a request runs from the turn that queued it to the turn
 * that saw its end.  Only requests started after the warm-up are counted.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "load_conn.h"

#define OP_RD 1u
#define OP_WR 2u

uint64_t load_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ud(uint32_t idx, uint32_t gen, uint32_t op)
{
    return (uint64_t)idx << 32 | (uint64_t)(gen & 0xffffffu) << 8 | op;
}

static struct io_uring_sqe *sqe_get(wstate *s)
{
    struct io_uring_sqe *q = io_uring_get_sqe(&s->ring);
    if (!q) {
        io_uring_submit(&s->ring);
        q = io_uring_get_sqe(&s->ring);
    }
    return q;
}

static void arm_read(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    struct io_uring_sqe *q = sqe_get(s);
    io_uring_prep_recv(q, c->fd, c->tls ? c->cbuf : c->rbuf, LC_RBUF, 0);
    io_uring_sqe_set_data64(q, ud(i, c->gen, OP_RD));
    c->reading = true;
}

static void conn_fail(wstate *s, uint32_t i);

/* TLS: the protocol's output, encrypted; then the ciphertext to send. */
static size_t tls_out(wstate *s, lconn *c, struct iovec *iov)
{
    size_t room = ltls_write_room(c->tls);
    size_t n = room ? s->p->out_prepare(s, c, c->iov, LC_NIOV, room) : 0;
    if (n) {
        long took = ltls_write(c->tls, c->iov, n);
        if (took < 0)
            return SIZE_MAX;
        s->p->out_commit(s, c, (size_t)took);
    }
    const uint8_t *p;
    iov->iov_len = ltls_out(c->tls, &p);
    iov->iov_base = (void *)(uintptr_t)p;
    return iov->iov_len ? 1 : 0;
}

static void arm_write(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    if (c->writing || c->closing || c->fd < 0)
        return;
    size_t n;
    if (c->tls) {
        n = tls_out(s, c, &c->iov[0]);
        if (n == SIZE_MAX) {
            conn_fail(s, i);
            return;
        }
    } else {
        n = s->p->out_prepare(s, c, c->iov, LC_NIOV, 1u << 20);
    }
    if (!n)
        return;
    struct io_uring_sqe *q = sqe_get(s);
    io_uring_prep_writev(q, c->fd, c->iov, (unsigned)n, 0);
    io_uring_sqe_set_data64(q, ud(i, c->gen, OP_WR));
    c->writing = true;
}

static int conn_connect(wstate *s, lconn *c)
{
    const load_cfg *cfg = s->cfg;
    int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    c->fd = fd;
    return 0;
}

static int conn_open(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    int r = conn_connect(s, c);
    if (r != 0)
        return r;
    if (s->p->open(s, c) != 0 || (s->tls && !(c->tls = ltls_new(s->tls, s->cfg->host)))) {
        s->p->close(s, c);
        close(c->fd);
        c->fd = -1;
        return -ENOMEM;
    }
    c->gen++;
    c->closing = c->paused = c->alpn_ok = false;
    c->rpos = c->rlen = 0;
    c->inflight = 0;
    c->free_head = 0;
    for (uint32_t k = s->cfg->streams; k > 0; k--) {
        c->slots[k - 1].busy = false;
        c->slots[k - 1].next_free = c->free_head;
        c->free_head = k;
    }
    s->w->st.connects++;
    arm_read(s, i);
    arm_write(s, i);
    return 0;
}

bool lc_want_more(const wstate *s)
{
    return !s->stopping && s->remaining > 0;
}

/* Counted: started after the warm-up. */
static bool counted(const wstate *s, const lc_slot *sl)
{
    return s->measuring && sl->start_ns >= s->w->t_measure_ns;
}

static void slot_release(lconn *c, uint32_t sl)
{
    c->slots[sl - 1].busy = false;
    c->slots[sl - 1].next_free = c->free_head;
    c->free_head = sl;
    c->inflight--;
}

uint32_t lc_slot_start(wstate *s, lconn *c)
{
    uint32_t sl = c->free_head;
    if (!sl)
        return 0;
    lc_slot *t = &c->slots[sl - 1];
    c->free_head = t->next_free;
    *t = (lc_slot){.start_ns = s->now_ns, .busy = true};
    c->inflight++;
    if (s->measuring)
        s->w->st.started++;
    if (s->remaining != UINT64_MAX)
        s->remaining--;
    return sl;
}

void lc_slot_complete(wstate *s, lconn *c, uint32_t sl)
{
    const lc_slot *t = &c->slots[sl - 1];
    if (counted(s, t)) {
        load_stats *st = &s->w->st;
        uint16_t status = t->status;
        st->status[status >= 100 && status < 600 ? status / 100 : 0]++;
        if (status >= 200 && status < 300)
            st->ok++;
        st->body_bytes += t->body;
        st->done++;
        load_hist_add(&st->lat, s->now_ns - t->start_ns);
    }
    slot_release(c, sl);
}

void lc_slot_fail(wstate *s, lconn *c, uint32_t sl, bool remote)
{
    const lc_slot *t = &c->slots[sl - 1];
    if (counted(s, t)) {
        load_stats *st = &s->w->st;
        if (remote)
            st->resets++;
        else
            st->malformed++;
        st->body_bytes += t->body;
        st->done++;
    }
    slot_release(c, sl);
}

void lc_slot_refused(wstate *s, lconn *c, uint32_t sl)
{
    if (counted(s, &c->slots[sl - 1])) {
        s->w->st.refused++;
        if (s->remaining != UINT64_MAX)
            s->remaining++;
    }
    slot_release(c, sl);
}

/* The connection is over: requests in flight are lost. */
static void conn_fail(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    if (c->closing)
        return;
    load_stats *st = &s->w->st;
    uint64_t lost = 0;
    for (uint32_t k = 1; c->inflight && k <= s->cfg->streams; k++)
        if (c->slots[k - 1].busy) {
            lost += counted(s, &c->slots[k - 1]);
            slot_release(c, k);
        }
    if (lost) {
        st->conn_errors++;
        st->lost += lost;
        st->done += lost;
    }
    c->closing = true;
    shutdown(c->fd, SHUT_RDWR);
}

/* Both ops are done on a closing connection: free it, reopen if there is work. */
static void conn_reap(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    if (!c->closing || c->reading || c->writing)
        return;
    close(c->fd);
    c->fd = -1;
    s->p->close(s, c);
    ltls_free(c->tls);
    c->tls = NULL;
    if (lc_want_more(s) && !s->fatal && conn_open(s, i) != 0)
        s->w->st.conn_errors++;
}

/* A TLS failure.  A handshake's (certificate, version, ALPN) stops the
 * worker, as every connection would fail the same way; any other ends
 * this connection only. */
static void tls_fail(wstate *s, uint32_t i, bool fatal)
{
    if (fatal && !s->fatal) {
        if (!s->w->err[0])
            snprintf(s->w->err, sizeof s->w->err, "%s", ltls_error(s->conns[i].tls));
        s->fatal = s->stopping = true;
    }
    conn_fail(s, i);
}

/* Next plaintext from TLS into rbuf: 1, 0 (none yet), -1 (failed). */
static int tls_next(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    int n = ltls_read(c->tls, c->rbuf, LC_RBUF);
    if (n < 0) {
        tls_fail(s, i, ltls_handshake_failed(c->tls));
        return -1;
    }
    if (!c->alpn_ok && ltls_handshake_done(c->tls)) {
        const char *want = s->cfg->h1 ? "http/1.1" : "h2", *got = ltls_alpn(c->tls);
        if (!got || strcmp(got, want) != 0) {
            snprintf(s->w->err, sizeof s->w->err, "TLS: the server selected ALPN %s, not %s",
                     got ? got : "(none)", want);
            tls_fail(s, i, true);
            return -1;
        }
        c->alpn_ok = true;
    }
    c->rlen = (uint32_t)(n > 0 ? n : 0);
    return n > 0;
}

/* Feed input (and decrypt more) until it is used up or reading pauses. */
static void pump_in(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    for (;;) {
        if (c->rpos < c->rlen) {
            int r = s->p->feed(s, c);
            if (r == LC_PAUSE) {
                c->paused = true;
                return;
            }
            if (r == LC_FAIL) {
                conn_fail(s, i);
                return;
            }
        }
        c->rpos = c->rlen = 0;
        if (!c->tls)
            break;
        int n = tls_next(s, i);
        if (n < 0)
            return;
        if (n == 0)
            break;
    }
    if (s->p->finished(c) && !c->writing) {
        conn_fail(s, i); /* ended cleanly, every request answered: nothing lost */
        return;
    }
    arm_read(s, i);
}

static void on_read(wstate *s, uint32_t i, int res)
{
    lconn *c = &s->conns[i];
    c->reading = false;
    if (c->closing) {
        conn_reap(s, i);
        return;
    }
    if (res <= 0) {
        /* EOF or error: lost requests make it a connection error. */
        s->p->eof(s, c);
        conn_fail(s, i);
        conn_reap(s, i);
        return;
    }
    s->w->st.bytes_in += (uint64_t)res;
    c->rpos = c->rlen = 0;
    if (c->tls) {
        if (ltls_feed(c->tls, c->cbuf, (size_t)res) != 0) {
            conn_fail(s, i);
            conn_reap(s, i);
            return;
        }
    } else {
        c->rlen = (uint32_t)res;
    }
    pump_in(s, i);
    if (c->closing)
        conn_reap(s, i);
}

static void on_write(wstate *s, uint32_t i, int res)
{
    lconn *c = &s->conns[i];
    c->writing = false;
    if (c->tls)
        ltls_out_commit(c->tls, res > 0 ? (size_t)res : 0);
    if (res < 0 || c->closing) {
        conn_fail(s, i);
        conn_reap(s, i);
        return;
    }
    s->w->st.bytes_out += (uint64_t)res;
    if (!c->tls)
        s->p->out_commit(s, c, (size_t)res);
    if (c->paused && !c->reading) {
        c->paused = false;
        pump_in(s, i); /* reading was paused on output */
        if (c->closing)
            conn_reap(s, i);
    }
}

static void on_cqe(wstate *s, const struct io_uring_cqe *q)
{
    uint64_t u = io_uring_cqe_get_data64(q);
    uint32_t i = (uint32_t)(u >> 32), op = u & 0xff;
    lconn *c = &s->conns[i];
    if (((u >> 8) & 0xffffffu) != (c->gen & 0xffffffu))
        return;
    if (op == OP_RD)
        on_read(s, i, q->res);
    else
        on_write(s, i, q->res);
}

static void top_up(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    if (c->closing || c->fd < 0)
        return;
    if (!c->tls || c->alpn_ok) {
        if (s->p->top_up(s, c) != LC_FED) {
            conn_fail(s, i);
            return;
        }
    }
    arm_write(s, i);
}

static void clock_turn(wstate *s)
{
    s->now_ns = load_now_ns();
    s->now_ms = s->now_ns / 1000000u;
    load_worker *w = s->w;
    if (!s->measuring && s->now_ns >= s->measure_at) {
        /* Warm-up over: counting starts now. */
        s->measuring = true;
        uint64_t connects = w->st.connects;
        memset(&w->st, 0, sizeof w->st);
        load_hist_reset(&w->st.lat);
        w->st.connects = connects;
        w->t_measure_ns = s->now_ns;
        s->remaining = s->cfg->nreq ? w->share : UINT64_MAX;
        atomic_store_explicit(&w->measuring, true, memory_order_relaxed);
    }
    if (s->measuring && s->deadline && s->now_ns >= s->deadline)
        s->stopping = true;
}

static bool all_idle(const wstate *s)
{
    for (uint32_t i = 0; i < s->w->nconns; i++)
        if (s->conns[i].inflight)
            return false;
    return true;
}

static void publish(wstate *s)
{
    load_worker *w = s->w;
    const load_stats *st = &w->st;
    atomic_store_explicit(&w->pub_done, st->done, memory_order_relaxed);
    atomic_store_explicit(&w->pub_ok, st->ok, memory_order_relaxed);
    atomic_store_explicit(&w->pub_errors, st->done - st->ok, memory_order_relaxed);
}

static int ring_setup(wstate *s)
{
    load_worker *w = s->w;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = 4 * w->nconns + 64;
    int r = io_uring_queue_init_params(2 * w->nconns + 16, &s->ring, &p);
    if (r == -EINVAL) {
        memset(&p, 0, sizeof p);
        r = io_uring_queue_init_params(2 * w->nconns + 16, &s->ring, &p);
    }
    if (r < 0) {
        snprintf(w->err, sizeof w->err, "io_uring_queue_init: %s", strerror(-r));
        return -1;
    }
    s->ring_ok = true;
    return 0;
}

/* The protocol's shared state: the h2 context, or the HTTP/1.1 request;
 * the TLS context. */
static int proto_setup(wstate *s)
{
    load_worker *w = s->w;
    const load_cfg *cfg = s->cfg;
    s->lim = *h2_limits_default();
    s->lim.max_concurrent_streams = cfg->streams;
    s->lim.reset_burst = s->lim.glitch_burst = 1u << 30; /* a benchmark's server is trusted */
    s->lim.reset_rate = s->lim.glitch_rate = 1u << 30;
    s->lim.max_requests = 0;
    s->lim.idle_timeout_ms = 0;
    s->lim.send_timeout_ms = 0;
    if (h2_ctx_init(&s->x, &s->lim, NULL) != H2_OK) {
        snprintf(w->err, sizeof w->err, "h2_ctx_init failed");
        return -1;
    }
    s->ctx_ok = true;
    s->p = cfg->h1 ? &load_proto_h1 : &load_proto_h2;
    if (cfg->h1 && !(s->h1_req = load_h1_request(cfg, &s->h1_req_len))) {
        snprintf(w->err, sizeof w->err, "out of memory");
        return -1;
    }
    ltls_opts o = {cfg->ca_file, cfg->insecure, cfg->h1 ? "http/1.1" : "h2"};
    if (cfg->tls && ltls_ctx_new(&o, &s->tls, w->err, sizeof w->err) != 0)
        return -1;
    s->req = (h2_client_req){
        .method = {(const uint8_t *)cfg->method, (uint32_t)strlen(cfg->method)},
        .scheme = {(const uint8_t *)cfg->scheme, (uint32_t)strlen(cfg->scheme)},
        .authority = {(const uint8_t *)cfg->authority, (uint32_t)strlen(cfg->authority)},
        .path = {(const uint8_t *)cfg->path, (uint32_t)strlen(cfg->path)},
        .fields = cfg->hdrs,
        .nfields = cfg->nhdrs,
    };
    return 0;
}

static int setup(wstate *s)
{
    load_worker *w = s->w;
    if (w->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((size_t)w->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    if (ring_setup(s) != 0)
        return -1;
    s->conns = calloc(w->nconns, sizeof *s->conns);
    for (uint32_t i = 0; i < w->nconns; i++) {
        lconn *c = &s->conns[i];
        c->fd = -1;
        c->rbuf = malloc(LC_RBUF);
        c->cbuf = s->cfg->tls ? malloc(LC_RBUF) : NULL;
        c->slots = calloc(s->cfg->streams, sizeof(lc_slot));
    }
    return proto_setup(s);
}

static void teardown(wstate *s)
{
    for (uint32_t i = 0; s->conns && i < s->w->nconns; i++) {
        lconn *c = &s->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        if (s->p)
            s->p->close(s, c);
        ltls_free(c->tls);
        free(c->rbuf);
        free(c->cbuf);
        free(c->slots);
    }
    free(s->conns);
    free((void *)(uintptr_t)s->h1_req);
    ltls_ctx_free(s->tls);
    if (s->cfg->tls)
        ltls_thread_cleanup();
    if (s->ctx_ok)
        h2_ctx_free(&s->x);
    if (s->ring_ok)
        io_uring_queue_exit(&s->ring);
}

/* One turn's completions, then every connection topped up.  False when
 * the run is over. */
static bool turn(wstate *s)
{
    load_worker *w = s->w;
    io_uring_submit_and_wait(&s->ring, 1);
    clock_turn(s);
    struct io_uring_cqe *q;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&s->ring, head, q)
    {
        on_cqe(s, q);
        n++;
    }
    io_uring_cq_advance(&s->ring, n);
    bool open = false;
    for (uint32_t i = 0; i < w->nconns; i++) {
        top_up(s, i);
        open |= s->conns[i].fd >= 0;
    }
    publish(s);
    if ((s->measuring || s->fatal) && !lc_want_more(s) && all_idle(s))
        return false;
    if (!open) {
        if (lc_want_more(s) && !w->err[0])
            snprintf(w->err, sizeof w->err, "no connection left (reconnects failed)");
        return false;
    }
    if (s->stopping && s->now_ns > s->deadline + 5000000000u) {
        snprintf(w->err, sizeof w->err, "requests still open 5 s after the end");
        return false;
    }
    return true;
}

int load_worker_run(load_worker *w)
{
    wstate s;
    memset(&s, 0, sizeof s);
    s.w = w;
    s.cfg = w->cfg;
    load_hist_reset(&w->st.lat);
    if (setup(&s) != 0) {
        teardown(&s);
        return -1;
    }
    const load_cfg *cfg = s.cfg;
    s.measure_at = cfg->t0_ns + (uint64_t)(cfg->warmup_s * 1e9);
    s.deadline = cfg->duration_s > 0 ? s.measure_at + (uint64_t)(cfg->duration_s * 1e9) : 0;
    s.remaining = UINT64_MAX; /* warm-up: unlimited */
    clock_turn(&s);
    for (uint32_t i = 0; i < w->nconns; i++) {
        int r = conn_open(&s, i);
        if (r != 0) {
            snprintf(w->err, sizeof w->err, "connect: %s", strerror(-r));
            teardown(&s);
            return -1;
        }
        top_up(&s, i);
    }
    while (turn(&s))
        ;
    w->t_end_ns = s.now_ns;
    publish(&s);
    teardown(&s);
    return s.fatal ? -1 : 0;
}
