/* load_worker.c - one spindle-load thread: a ring, its connections, the
 * client engine on each (load.h).
 *
 * Per connection one recv and at most one writev are in flight.  A turn of
 * the loop waits for completions, handles all of them (input goes through
 * h2_client_recv, events complete streams), then tops every connection up
 * to -m streams and writes what it has.  Time is read once per turn: the
 * latency of a request runs from the turn that queued it to the turn that
 * saw its end.
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

#include "load.h"

#define RBUF  (64u * 1024u)
#define NIOV  64u
#define OP_RD 1u
#define OP_WR 2u

typedef struct slot {
    uint64_t start_ns;
    uint16_t status; /* final status, 0 before */
    uint32_t next_free;
} slot;

typedef struct lconn {
    int fd;
    h2_conn *h;
    uint8_t *rbuf;
    uint32_t rpos, rlen; /* input not yet fed (reading paused) */
    uint32_t gen;
    bool reading, writing, closing;
    uint32_t inflight;
    slot *slots;
    uint32_t free_head; /* 1-based, 0: none */
    struct iovec iov[NIOV];
} lconn;

typedef struct wstate {
    load_worker *w;
    const load_cfg *cfg;
    struct io_uring ring;
    lconn *conns;
    h2_ctx x;
    h2_limits lim;
    uint64_t now_ns, now_ms;
    uint64_t remaining; /* requests still to issue (UINT64_MAX: until the deadline) */
    uint64_t measure_at, deadline;
    bool measuring, stopping;
    h2_client_req req;
} wstate;

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
    io_uring_prep_recv(q, c->fd, c->rbuf, RBUF, 0);
    io_uring_sqe_set_data64(q, ud(i, c->gen, OP_RD));
    c->reading = true;
}

static void arm_write(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    if (c->writing || c->closing || !c->h)
        return;
    size_t n = h2_conn_out_prepare(c->h, c->iov, NIOV, 1u << 20);
    if (!n)
        return;
    struct io_uring_sqe *q = sqe_get(s);
    io_uring_prep_writev(q, c->fd, c->iov, (unsigned)n, 0);
    io_uring_sqe_set_data64(q, ud(i, c->gen, OP_WR));
    c->writing = true;
}

static int conn_open(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
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
    c->h = h2_client_new(&s->x, s->now_ms);
    if (!c->h) {
        close(fd);
        return -ENOMEM;
    }
    c->gen++;
    c->closing = false;
    c->rpos = c->rlen = 0;
    c->inflight = 0;
    c->free_head = 0;
    for (uint32_t k = cfg->streams; k > 0; k--) {
        c->slots[k - 1].next_free = c->free_head;
        c->free_head = k;
    }
    s->w->st.connects++;
    arm_read(s, i);
    arm_write(s, i);
    return 0;
}

static bool want_more(const wstate *s)
{
    return !s->stopping && s->remaining > 0;
}

/* Finish a stream: counted, slot back, engine told. */
static void stream_end(wstate *s, lconn *c, uint32_t sid, uint32_t sl)
{
    c->slots[sl - 1].next_free = c->free_head;
    c->free_head = sl;
    c->inflight--;
    s->w->st.done++;
    h2_client_stream_done(c->h, sid);
}

static void complete(wstate *s, lconn *c, uint32_t sid, uint32_t sl)
{
    load_stats *st = &s->w->st;
    uint16_t status = c->slots[sl - 1].status;
    st->status[status >= 100 && status < 600 ? status / 100 : 0]++;
    if (status >= 200 && status < 300)
        st->ok++;
    load_hist_add(&st->lat, s->now_ns - c->slots[sl - 1].start_ns);
    stream_end(s, c, sid, sl);
}

static void on_event(wstate *s, lconn *c, const h2_event *e)
{
    uint32_t sl = (uint32_t)(uintptr_t)h2_conn_stream_user(c->h, e->stream_id);
    load_stats *st = &s->w->st;
    switch (e->type) {
    case H2_EV_RESPONSE:
        if (e->u.response.status >= 200)
            c->slots[sl - 1].status = e->u.response.status;
        if (e->end_stream && e->u.response.status >= 200)
            complete(s, c, e->stream_id, sl);
        break;
    case H2_EV_DATA:
        st->body_bytes += e->u.data.len;
        h2_conn_consume(c->h, e->stream_id, e->u.data.len);
        if (e->end_stream)
            complete(s, c, e->stream_id, sl);
        break;
    case H2_EV_TRAILERS: complete(s, c, e->stream_id, sl); break;
    case H2_EV_STREAM_RESET:
        if (e->u.reset.code == H2_REFUSED_STREAM && e->u.reset.remote) {
            st->refused++; /* never processed: issue it again */
            if (s->remaining != UINT64_MAX)
                s->remaining++;
            c->slots[sl - 1].next_free = c->free_head;
            c->free_head = sl;
            c->inflight--;
            h2_client_stream_done(c->h, e->stream_id);
            break;
        }
        if (e->u.reset.remote)
            st->resets++;
        else
            st->malformed++;
        stream_end(s, c, e->stream_id, sl);
        break;
    default: break;
    }
}

static void conn_fail(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    if (c->closing)
        return;
    load_stats *st = &s->w->st;
    if (c->inflight) {
        st->conn_errors++;
        st->lost += c->inflight;
        st->done += c->inflight;
    }
    c->inflight = 0;
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
    h2_conn_free(c->h);
    c->h = NULL;
    if (want_more(s) && conn_open(s, i) != 0)
        s->w->st.conn_errors++;
}

/* Feed buffered input until it is used up or reading must pause. */
static void feed(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    for (;;) {
        size_t used = 0;
        h2_event e;
        h2_rv rv = h2_client_recv(c->h, c->rbuf + c->rpos, c->rlen - c->rpos, s->now_ms, &used, &e);
        c->rpos += (uint32_t)used;
        if (rv == H2_E_AGAIN)
            return; /* resumes after the next write */
        if (rv != H2_OK) {
            conn_fail(s, i);
            return;
        }
        if (e.type == H2_EV_NONE)
            break;
        on_event(s, c, &e);
    }
    c->rpos = c->rlen = 0;
    if (h2_conn_is_done(c->h) && !c->writing && !h2_conn_want_write(c->h)) {
        conn_fail(s, i); /* GOAWAY and every stream done: nothing lost */
        return;
    }
    arm_read(s, i);
}

static void on_cqe(wstate *s, const struct io_uring_cqe *q)
{
    uint64_t u = io_uring_cqe_get_data64(q);
    uint32_t i = (uint32_t)(u >> 32), op = u & 0xff;
    lconn *c = &s->conns[i];
    if (((u >> 8) & 0xffffffu) != (c->gen & 0xffffffu))
        return;
    if (op == OP_RD) {
        c->reading = false;
        if (c->closing) {
            conn_reap(s, i);
            return;
        }
        if (q->res <= 0) {
            /* EOF or error: lost streams make it a connection error. */
            conn_fail(s, i);
            conn_reap(s, i);
            return;
        }
        s->w->st.bytes_in += (uint64_t)q->res;
        c->rpos = 0;
        c->rlen = (uint32_t)q->res;
        feed(s, i);
        if (c->closing)
            conn_reap(s, i);
    } else {
        c->writing = false;
        if (q->res < 0 || c->closing) {
            conn_fail(s, i);
            conn_reap(s, i);
            return;
        }
        s->w->st.bytes_out += (uint64_t)q->res;
        h2_conn_out_commit(c->h, (size_t)q->res, s->now_ms);
        if (c->rlen > c->rpos && !c->reading)
            feed(s, i); /* reading was paused on output */
    }
}

static void top_up(wstate *s, uint32_t i)
{
    lconn *c = &s->conns[i];
    if (c->closing || !c->h)
        return;
    const load_cfg *cfg = s->cfg;
    while (want_more(s) && c->free_head && h2_client_room(c->h)) {
        uint32_t sl = c->free_head, sid;
        h2_rv rv = h2_client_request(c->h, &s->req, cfg->body == NULL, (void *)(uintptr_t)sl, &sid);
        if (rv != H2_OK) {
            if (rv != H2_E_AGAIN && rv != H2_E_CLOSED)
                conn_fail(s, i);
            break;
        }
        c->free_head = c->slots[sl - 1].next_free;
        c->slots[sl - 1].start_ns = s->now_ns;
        c->slots[sl - 1].status = 0;
        c->inflight++;
        s->w->st.started++;
        if (s->remaining != UINT64_MAX)
            s->remaining--;
        if (cfg->body)
            h2_conn_send_data(c->h, sid, cfg->body, cfg->body_len, true, NULL, NULL);
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

static int setup(wstate *s)
{
    load_worker *w = s->w;
    const load_cfg *cfg = s->cfg;
    if (w->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((size_t)w->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
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
    s->conns = calloc(w->nconns, sizeof *s->conns);
    for (uint32_t i = 0; i < w->nconns; i++) {
        s->conns[i].fd = -1;
        s->conns[i].rbuf = malloc(RBUF);
        s->conns[i].slots = calloc(cfg->streams, sizeof(slot));
    }
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

static void teardown(wstate *s)
{
    for (uint32_t i = 0; i < s->w->nconns; i++) {
        lconn *c = &s->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        h2_conn_free(c->h);
        free(c->rbuf);
        free(c->slots);
    }
    free(s->conns);
    h2_ctx_free(&s->x);
    io_uring_queue_exit(&s->ring);
}

int load_worker_run(load_worker *w)
{
    wstate s;
    memset(&s, 0, sizeof s);
    s.w = w;
    s.cfg = w->cfg;
    load_hist_reset(&w->st.lat);
    if (setup(&s) != 0)
        return -1;
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
    for (;;) {
        io_uring_submit_and_wait(&s.ring, 1);
        clock_turn(&s);
        struct io_uring_cqe *q;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&s.ring, head, q)
        {
            on_cqe(&s, q);
            n++;
        }
        io_uring_cq_advance(&s.ring, n);
        bool open = false;
        for (uint32_t i = 0; i < w->nconns; i++) {
            top_up(&s, i);
            open |= s.conns[i].h != NULL;
        }
        publish(&s);
        if (s.measuring && !want_more(&s) && all_idle(&s))
            break;
        if (!open) {
            if (want_more(&s))
                snprintf(w->err, sizeof w->err, "no connection left (reconnects failed)");
            break;
        }
        if (s.stopping && s.now_ns > s.deadline + 5000000000u) {
            snprintf(w->err, sizeof w->err, "streams still open 5 s after the end");
            break;
        }
    }
    w->t_end_ns = s.now_ns;
    publish(&s);
    teardown(&s);
    return 0;
}
