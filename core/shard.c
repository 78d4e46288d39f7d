/* shard.c - one thread per core: the ring loop, accepting, timers, draining.
 *
 * One loop iteration (shard_main):
 *   1. apply the offload workers' commands; let connections that waited
 *      for worker queue room read again
 *   2. settle; flush connections with new output (one sendmsg each,
 *      batched frames), re-arm recvs parked on -ENOBUFS; settle again
 *   3. leave if draining and nothing is left (or the drain deadline passed)
 *   4. ring_wait() until a CQE or the next timer (at most 1 s)
 *   5. read `now`; handle the reaped CQEs (accept, recv, send, cancel,
 *      wake) in batches, settling after each batch
 *   6. fire due timers; log statistics if asked; start draining if asked to
 *      stop, close what is left at the drain deadline; re-arm accept
 *   7. settle: deliver on_close, free closed streams and connections
 * The cached `now` (CLOCK_MONOTONIC_COARSE, ms) is read once per iteration
 * and passed down: the protocol core never reads a clock.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "async.h"
#include "accesslog.h"
#include "conncap.h"
#include "log.h"
#include "resphdr.h"
#include "offload.h"
#include "ring_bufs.h"
#include "ring_listen.h"
#include "conn.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

uint64_t shard_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void shard_mark_dirty(conn *c)
{
    if (c->dirty || c->state == C_CLOSING)
        return;
    c->dirty = true;
    c->next_dirty = c->sh->dirty;
    c->sh->dirty = c;
}

/* One listener (h2c: OP_ACCEPT, TLS: OP_ACCEPT_TLS): arm its multishot
 * accept if it is open and not armed. */
static int arm_listener(shard *sh, int fd, bool *armed, uint8_t op)
{
    if (fd < 0 || *armed)
        return 0;
    int rc = ring_prep_accept_multishot(sh->r, fd, ring_ud_pack(op, 0, 0));
    if (rc == 0)
        *armed = true;
    return rc;
}

/* Stop taking connections on one listener; the kernel drops queued ones at
 * close. */
static void close_listener(shard *sh, int *fd, bool armed, uint8_t op)
{
    if (*fd < 0)
        return;
    if (armed && sh->r)
        ring_prep_cancel(sh->r, ring_ud_pack(op, 0, 0), ring_ud_pack(OP_CANCEL, 0, 0));
    close(*fd);
    *fd = -1;
}

static bool accept_unarmed(const shard *sh)
{
    return (sh->lfd >= 0 && !sh->accept_armed) || (sh->tls_lfd >= 0 && !sh->tls_accept_armed);
}

/* A multishot accept not yet ended by its final CQE: a connection it took
 * from a (possibly shared, upgrade.h) listener before the cancel is still
 * to be reaped, served and drained. */
static bool accept_in_flight(const shard *sh)
{
    return sh->accept_armed || sh->tls_accept_armed;
}

static int arm_accept(shard *sh)
{
    if (sh->draining)
        return 0;
    int rc = arm_listener(sh, sh->lfd, &sh->accept_armed, OP_ACCEPT);
    return rc < 0 ? rc : arm_listener(sh, sh->tls_lfd, &sh->tls_accept_armed, OP_ACCEPT_TLS);
}

static void on_accept(shard *sh, const ring_cqe *cqe, bool tls)
{
    if (!ring_cqe_more(cqe)) {
        if (tls)
            sh->tls_accept_armed = false;
        else
            sh->accept_armed = false;
    }
    if (cqe->res < 0) {
        if (cqe->res != -ECANCELED)
            log_msg(LOG_WARN, (int)sh->idx, "accept: %s", strerror(-cqe->res));
        /* EMFILE and friends: re-armed when a connection closes, not now. */
        return;
    }
    int fd = cqe->res;
    if (sh->nfree == 0 && sh->draining) {
        close(fd);
        return;
    }
    if (sh->nfree == 0) {
        conncap_hold(sh, fd, tls); /* accepted before the cap's cancel took effect */
        return;
    }
    conn *c = conn_new(sh, fd, tls);
    if (!c) {
        close(fd);
        return;
    }
    stats_conn_accepted(sh, c, tls);
    /* Accepted before the cancel of a drain took effect: the client is
     * served what it sends before the GOAWAY, not reset (a listener handed
     * to a new process keeps its queue; see upgrade.h). */
    if (sh->draining)
        conn_begin_drain(c);
    if (sh->nfree == 0)
        conncap_reached(sh); /* stop accepting: the rest wait in the kernel */
}

void shard_log_stats(shard *sh)
{
    const shard_stats *s = &sh->stats; /* what the metrics and spindle_get_stats() read */
    char lim[1024];
    size_t o = 0;
    stats_tick(sh);
    for (int i = 0; i < H2_LIMIT_COUNT + H1_LIMIT_COUNT; i++) {
        bool h2 = i < H2_LIMIT_COUNT;
        uint64_t n = h2 ? stat_get(&s->limit_hits[i]) : sh->h1.limit_hits[i - H2_LIMIT_COUNT];
        if (n == 0 || o >= sizeof lim)
            continue;
        const char *name =
            h2 ? h2_limit_name((h2_limit_id)i) : h1_limit_name((h1_limit_id)(i - H2_LIMIT_COUNT));
        int w = snprintf(lim + o, sizeof lim - o, "%s%s %llu", o ? ", " : "", name,
                         (unsigned long long)n);
        if (w > 0)
            o += (size_t)w;
    }
    char tls[96] = "";
    if (sh->tls)
        snprintf(tls, sizeof tls, " (%llu TLS, %llu TLS handshakes failed)",
                 (unsigned long long)stat_get(&s->accepted_tls),
                 (unsigned long long)stat_get(&s->tls_failed));
    char off[48] = "";
    if (sh->noff || stat_get(&s->offloaded))
        snprintf(off, sizeof off, " (%llu offloaded)", (unsigned long long)stat_get(&s->offloaded));
    log_msg(LOG_INFO, (int)sh->idx,
            "stats: %llu connections%s, %u open, %llu requests%s; limits hit: %s",
            (unsigned long long)stat_get(&s->accepted), tls, sh->nconns,
            (unsigned long long)stat_get(&s->started), off, o ? lim : "none");
    /* Memory: what the shard's arena has allocated (live objects, not the
     * pages it caches), and how much of it the engine's pools keep. */
    uint64_t live, pooled;
    h2_ctx_pool_bytes(&sh->h2, &live, &pooled);
    int64_t arena = server_arena_allocated(sh->arena);
    char al[48] = "n/a (no jemalloc)";
    if (arena >= 0)
        snprintf(al, sizeof al, "%lld KiB", (long long)(arena / 1024));
    log_msg(LOG_INFO, (int)sh->idx,
            "memory: arena allocated %s; engine pools %llu KiB in use, "
            "%llu KiB kept for reuse",
            al, (unsigned long long)(live / 1024), (unsigned long long)(pooled / 1024));
}

static void begin_drain(shard *sh)
{
    if (sh->draining)
        return;
    sh->draining = true;
    sh->drain_deadline = sh->now + sh->srv->cfg.drain_timeout_ms;
    sh->drain_grace_end = sh->now + sh->srv->cfg.drain_grace_ms;
    log_msg(LOG_INFO, (int)sh->idx, "draining %u connection(s)", sh->nconns);
    close_listener(sh, &sh->lfd, sh->accept_armed, OP_ACCEPT);
    close_listener(sh, &sh->tls_lfd, sh->tls_accept_armed, OP_ACCEPT_TLS);
    for (uint32_t i = 0; i < sh->srv->cfg.max_conns; i++)
        if (sh->slots[i])
            conn_begin_drain(sh->slots[i]);
}

static void handle_cqe(shard *sh, const ring_cqe *cqe)
{
    uint8_t op = ring_ud_op(cqe->user_data);
    if (op == RING_OP_WAKE)
        return; /* the doorbell: the stop flag and offload queues are checked every round */
    if (op == OP_ACCEPT || op == OP_ACCEPT_TLS) {
        on_accept(sh, cqe, op == OP_ACCEPT_TLS);
        return;
    }
    if (op == OP_CANCEL)
        return;
    if (op == OP_WATCH) {
        async_on_cqe(sh, cqe);
        return;
    }
    if (op == OP_FILE) {
        fileop_on_cqe(sh, cqe);
        return;
    }
    uint32_t slot = ring_ud_slot(cqe->user_data);
    conn *c = slot < sh->srv->cfg.max_conns ? sh->slots[slot] : NULL;
    if (!c || ring_ud_stale(cqe->user_data, sh->gens[slot])) {
        /* The connection is gone; a provided buffer still comes home. */
        if (ring_cqe_has_buf(cqe))
            ring_bufs_recycle_cqe(sh->bufs, cqe);
        return;
    }
    if (op == OP_RECV) {
        conn_on_recv(c, cqe);
    } else if (op == OP_SEND) {
        if (c->nocqe_off)
            sendskip_on_plain(c, cqe);
        conn_on_send(c, cqe);
    } else if (op == OP_SEND_NOCQE) {
        sendskip_on_cqe(c, cqe);
    }
}

static void fire_timer(timer_wheel *w, timer_node *t, void *arg)
{
    (void)w;
    (void)arg;
    if (t->kind == TIMER_STREAM) {
        stream_on_timer((spindle_stream *)((char *)t - offsetof(spindle_stream, timer)));
        return;
    }
    if (t->kind == TIMER_SHARD) {
        async_on_timer(t);
        return;
    }
    conn *c = (conn *)((char *)t - offsetof(conn, timer));
    conn_on_timer(c);
}

/* End of iteration: deliver closes, free what was closed under callbacks. */
static void settle(shard *sh)
{
    while (sh->settle) {
        spindle_stream *st = sh->settle;
        sh->settle = st->next_settle;
        st->flags &= (uint16_t)~ST_SETTLE;
        stream_settle(st);
    }
    while (sh->dead_streams) {
        spindle_stream *st = sh->dead_streams;
        sh->dead_streams = st->next_settle;
        stream_free(sh, st);
    }
    while (sh->dead_conns) {
        conn *c = sh->dead_conns;
        sh->dead_conns = c->next_dead;
        conn_free(c);
    }
}

/* Apply what the offload workers produced; let waiting connections read. */
static void drain_offload(shard *sh)
{
    if (!sh->noff)
        return;
    offload_drain(sh);
    if (!offload_has_room(sh))
        return;
    while (sh->off_wait) {
        conn *c = sh->off_wait;
        sh->off_wait = c->next_off_wait;
        c->off_waiting = false;
        conn_resume(c);
    }
}

static void flush_dirty(shard *sh)
{
    while (sh->dirty) {
        conn *c = sh->dirty;
        sh->dirty = c->next_dirty;
        c->dirty = false;
        conn_flush(c);
        conn_timer_update(c);
    }
    /* Buffers came back: connections parked on -ENOBUFS may read again. */
    while (sh->parked && ring_bufs_available(sh->bufs) > 0) {
        conn *c = sh->parked;
        sh->parked = c->next_parked;
        c->recv_parked = false;
        conn_on_op_end(c);
    }
}

static void pin_to_cpu(shard *sh)
{
    if (!sh->srv->cfg.pin || sh->cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)sh->cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        log_msg(LOG_WARN, (int)sh->idx, "cannot pin to CPU %d", sh->cpu);
}

/* Once, at start-up (shard 0): what the kernel offers and the ring modes
 * in effect (docs/io-profile.md). */
static void log_ring(shard *sh, const ring_config *rc)
{
    char caps[128];
    ring_caps_describe(ring_caps(sh->r), caps, sizeof caps);
    const char *skip = sh->skip.on                ? "on"
                       : !sh->srv->cfg.send_nocqe ? "off (send-nocqe=0)"
                                                  : "off (no CQE skip)";
    if (rc->spin_us)
        log_msg(LOG_INFO, (int)sh->idx,
                "io_uring: kernel offers %s; sends without CQE %s; low-latency mode: spin %u us "
                "before sleeping",
                caps[0] ? caps : "none", skip, rc->spin_us);
    else if (rc->poll_us)
        log_msg(LOG_INFO, (int)sh->idx,
                "io_uring: kernel offers %s; sends without CQE %s; low-latency mode off; "
                "adaptive poll up to %u us before sleeping",
                caps[0] ? caps : "none", skip, rc->poll_us);
    else
        log_msg(LOG_INFO, (int)sh->idx,
                "io_uring: kernel offers %s; sends without CQE %s; low-latency mode off; "
                "adaptive poll off",
                caps[0] ? caps : "none", skip);
}

/* The ring, the engine context, connection slots, timers.  *buf_size: the
 * ring's recv buffer size (TLS reads in that chunk). */
static int setup_core(shard *sh, uint32_t *buf_size)
{
    server *srv = sh->srv;
    ring_config rc = ring_config_default();
    rc.max_conns = srv->cfg.max_conns;
    rc.spin_us = srv->cfg.ring_spin_us; /* low-latency mode (0: off) */
    rc.poll_us = srv->cfg.ring_poll_us; /* adaptive idle poll (0: off) */
    *buf_size = rc.buf_size;
    ring_error err;
    if (ring_new(&sh->r, &rc, &err) < 0) {
        log_msg(LOG_ERROR, (int)sh->idx, "%s", err.msg);
        return SPINDLE_EURING;
    }
    sh->bufs = ring_bufs_of(sh->r);
    sendskip_init(sh);
    if (sh->idx == 0)
        log_ring(sh, &rc);
    if (h2_ctx_init(&sh->h2, &srv->limits, NULL) != H2_OK ||
        h1_ctx_init(&sh->h1, &srv->h1limits, NULL) != H2_OK) {
        log_msg(LOG_ERROR, (int)sh->idx, "out of memory");
        return SPINDLE_ENOMEM;
    }
    if (srv->cfg.date_header)
        h1_ctx_set_time(&sh->h1, (int64_t)time(NULL));
    uint32_t n = srv->cfg.max_conns;
    sh->slots = calloc(n, sizeof *sh->slots);
    sh->gens = calloc(n, sizeof *sh->gens);
    sh->free_slots = malloc(n * sizeof *sh->free_slots);
    uint32_t nf = srv->limits.max_header_fields_soft;
    if (nf < srv->h1limits.max_fields)
        nf = srv->h1limits.max_fields; /* HTTP/1.1 heads come through it too */
    sh->hdr_scratch = malloc(nf * sizeof *sh->hdr_scratch);
    if (!sh->slots || !sh->gens || !sh->free_slots || !sh->hdr_scratch) {
        log_msg(LOG_ERROR, (int)sh->idx, "out of memory");
        return SPINDLE_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        sh->free_slots[i] = n - 1 - i;
    sh->nfree = n;
    sh->now = shard_now_ms();
    timer_wheel_init(&sh->timers, sh->now);
    sh->waker = ring_waker_of(sh->r);
    stats_tick(sh); /* the date header before the first request */
    return 0;
}

/* New streams' mode: inline, or (a blocking handler) offloaded, with the
 * workers started now. */
static int setup_stream_mode(shard *sh)
{
    const spindle_config *cfg = &sh->srv->cfg;
    sh->stream_mode = &stream_inline_ops;
    if (!sh->srv->handler.blocking)
        return 0;
    int rc = offload_start(sh, cfg->offload_threads ? cfg->offload_threads : 1);
    if (rc != 0) {
        log_msg(LOG_ERROR, (int)sh->idx, "cannot start offload threads");
        return rc;
    }
    sh->stream_mode = &offload_stream_ops;
    return 0;
}

/* The listeners (and the shard's own TLS context), accept armed. */
static int setup_listeners(shard *sh, uint32_t buf_size)
{
    server *srv = sh->srv;
    const spindle_config *cfg = &srv->cfg;
    if (cfg->tls_cert) {
        /* spindle_run() checked the files once; this is the shard's own
         * context (wolfSSL contexts are not shared across threads). */
        tls_config tc = {
            .cert_file = cfg->tls_cert,
            .key_file = cfg->tls_key,
            .tickets = srv->tickets,
            .recv_chunk = buf_size,
        };
        char why[512];
        if (tls_ctx_new(&tc, &sh->tls, why, sizeof why) != 0) {
            log_msg(LOG_ERROR, (int)sh->idx, "TLS: %s", why);
            return SPINDLE_EINVAL;
        }
    }
    ring_error err = {0};
    sh->lfd = listen_set_for_shard(&srv->inherit, false, sh->idx);
    if (sh->lfd == -1) /* none inherited: bind */
        sh->lfd = ring_listen_tcp(cfg->address, sh->port, 4096, true, &err);
    if (sh->lfd < 0) {
        log_msg(LOG_ERROR, (int)sh->idx, "%s", err.msg);
        return SPINDLE_ESYS;
    }
    if (cfg->tls_cert) {
        sh->tls_lfd = listen_set_for_shard(&srv->inherit, true, sh->idx);
        if (sh->tls_lfd == -1)
            sh->tls_lfd = ring_listen_tcp(cfg->address, sh->tls_port, 4096, true, &err);
        if (sh->tls_lfd < 0) {
            log_msg(LOG_ERROR, (int)sh->idx, "TLS listener: %s", err.msg);
            return SPINDLE_ESYS;
        }
    }
    if (arm_accept(sh) < 0) {
        log_msg(LOG_ERROR, (int)sh->idx, "cannot arm accept");
        return SPINDLE_EURING;
    }
    return 0;
}

static int shard_setup(shard *sh)
{
    pin_to_cpu(sh);
    uint32_t buf_size = 0;
    int rc = setup_core(sh, &buf_size);
    if (rc != 0)
        return rc;
    /* valgrind runs one thread at a time and does not know io_uring_enter
     * blocks, so a shard waiting on its ring never lets the main thread
     * (signals) or other shards run.  Yielding once per round fixes that;
     * it costs a syscall, so only under valgrind (its preload is the tell). */
    const char *preload = getenv("LD_PRELOAD");
    sh->yield_each_round = preload && strstr(preload, "vgpreload");
    rc = setup_stream_mode(sh);
    return rc != 0 ? rc : setup_listeners(sh, buf_size);
}

static void shard_teardown(shard *sh)
{
    /* On a normal exit every connection has drained and closed; after an
     * error (ring_wait failing, a setup step) some are live, possibly with a
     * send in flight: stop the kernel touching their memory before it is
     * freed.  The ring stays usable (the offload threads' doorbell). */
    if (sh->r && sh->nconns)
        ring_cancel_all(sh->r);
    /* Streams first (their handlers hear about it), then connections. */
    if (sh->slots)
        for (uint32_t i = 0; i < sh->srv->cfg.max_conns; i++)
            if (sh->slots[i]) {
                sh->slots[i]->state = C_CLOSING;
                stream_conn_gone(sh->slots[i]);
            }
    settle(sh);
    if (sh->slots)
        for (uint32_t i = 0; i < sh->srv->cfg.max_conns; i++)
            if (sh->slots[i])
                conn_free(sh->slots[i]);
    settle(sh);
    if (sh->noff)
        offload_stop(sh);
    /* ring_free() below cancels an accept still armed. */
    close_listener(sh, &sh->lfd, false, OP_ACCEPT);
    close_listener(sh, &sh->tls_lfd, false, OP_ACCEPT_TLS);
    async_shard_teardown(sh); /* on_shard_stop if not yet, posts run, watches closed */
    ring_free(sh->r);         /* cancels what is still in flight before we free memory */
    sh->r = NULL;
    if (sh->h2.fields)
        h2_ctx_free(&sh->h2);
    if (sh->h1.scratch)
        h1_ctx_free(&sh->h1);
    free(sh->slots);
    free(sh->gens);
    free(sh->free_slots);
    free(sh->hdr_scratch);
    sendskip_free(sh); /* after the connections: nothing settles them now */
    conn_iov_free_all(sh);
    stream_free_all(sh);
    sh->slots = NULL;
    if (sh->tls) {
        tls_ctx_free(sh->tls); /* every tls_conn went with its connection above */
        sh->tls = NULL;
        tls_thread_cleanup(); /* wolfSSL's per-thread ECC cache */
    }
}

/* The port a listener is bound to, for the on_listen hooks (port 0 case). */
static uint16_t bound_port(int fd, uint16_t configured)
{
    int p = ring_listen_port(fd);
    return p > 0 ? (uint16_t)p : configured;
}

/* Setup or on_shard_start failed (sh->rc): tell spindle_run, free. */
static void *start_failed(shard *sh)
{
    atomic_store(&sh->ready, -1);
    atomic_store(&sh->srv->stop, true);
    shard_teardown(sh);
    return NULL;
}

/* Draining and nothing left: no connection, no offloaded stream (or the
 * drain deadline passed), no accept in flight, the application's watches
 * closed. */
static bool drained(shard *sh)
{
    return sh->draining && sh->nconns == 0 &&
           ((sh->off_streams == 0 && !accept_in_flight(sh)) || sh->now >= sh->drain_deadline) &&
           async_shard_stopped(sh);
}

/* Wait for a CQE, the next timer or the drain deadline (at most 1 s), then
 * read the clock.  false after a ring error (sh->rc set). */
static bool wait_for_work(shard *sh)
{
    uint64_t next = timer_wheel_next_deadline(&sh->timers);
    if (sh->draining && sh->drain_deadline < next)
        next = sh->drain_deadline;
    uint64_t wait_ms = next > sh->now ? next - sh->now : 0;
    if (wait_ms > 1000)
        wait_ms = 1000; /* re-check the stop flag at least once a second */
    if (sh->yield_each_round && wait_ms > 10)
        wait_ms = 10; /* valgrind holds its lock while we sit in the kernel */
    wait_ms = async_before_wait(sh, wait_ms); /* watch probes; the post doorbell */
    /* Sends without CQE are settled after a wait.  Their bytes are
     * committed already, so the wait may sleep, unless a connection has
     * more to send (or to close) behind one: then submit and settle in
     * this round (sendskip.h). */
    if (sh->skip.n && sendskip_must_settle(sh))
        wait_ms = 0;
    int rc = ring_wait(sh->r, 1, wait_ms * 1000000u);
    async_after_wait(sh);
    if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN) {
        log_msg(LOG_ERROR, (int)sh->idx, "ring_wait: %s", strerror(-rc));
        sh->rc = SPINDLE_EURING;
        return false;
    }
    if (sh->yield_each_round)
        sched_yield();
    sh->now = shard_now_ms();
    stats_tick(sh);               /* gauges, the date header, the access log's second */
    if (sh->srv->cfg.date_header) /* the Date field; formats once a second */
        h1_ctx_set_time(&sh->h1, (int64_t)time(NULL));
    return true;
}

/* After the CQEs: due timers, statistics asked for, the stop flag, the
 * drain deadline, accepting again under the connection cap. */
static void after_events(shard *sh)
{
    server *srv = sh->srv;
    timer_wheel_advance(&sh->timers, sh->now, fire_timer, sh);
    if (atomic_exchange_explicit(&sh->stats_wanted, false, memory_order_relaxed))
        shard_log_stats(sh);
    if (atomic_load_explicit(&srv->stop, memory_order_relaxed))
        begin_drain(sh);
    if (sh->draining && sh->now >= sh->drain_deadline && sh->nconns) {
        log_msg(LOG_WARN, (int)sh->idx, "drain timeout: closing %u connection(s)", sh->nconns);
        for (uint32_t i = 0; i < srv->cfg.max_conns; i++)
            if (sh->slots[i])
                conn_close(sh->slots[i]);
        sh->drain_deadline = UINT64_MAX; /* closing; CQEs finish the job */
    }
    if (!sh->draining && conncap_resume(sh) && accept_unarmed(sh))
        arm_accept(sh);
}

void *shard_main(void *arg)
{
    shard *sh = arg;
    server *srv = sh->srv;
    sh->rc = shard_setup(sh);
    if (sh->rc != 0)
        return start_failed(sh);
    sh->port = bound_port(sh->lfd, srv->cfg.port);
    if (sh->tls_lfd >= 0)
        sh->tls_port = bound_port(sh->tls_lfd, srv->cfg.tls_port);
    sh->rc = async_shard_start(sh); /* on_shard_start */
    if (sh->rc != 0)
        return start_failed(sh);
    atomic_store(&sh->ready, 1);
    if (srv->hooks.on_listen)
        srv->hooks.on_listen(sh->idx, srv->cfg.address, sh->port, srv->app);
    if (sh->tls_lfd >= 0 && srv->hooks.on_listen_tls)
        srv->hooks.on_listen_tls(sh->idx, srv->cfg.address, sh->tls_port, srv->app);

    ring_cqe cqes[SHARD_CQE_BATCH];
    for (;;) {
        async_run_posts(sh);
        drain_offload(sh);
        settle(sh);
        async_loop_end(sh->api); /* the application's end-of-iteration hook */
        flush_dirty(sh);
        settle(sh); /* connections that finished flushing close now, not after the wait */
        if (drained(sh) || !wait_for_work(sh))
            break;
        uint64_t sent = ring_sqes_settled(sh->r); /* before reaping (sendskip.h) */
        unsigned n;
        while ((n = ring_reap(sh->r, cqes, SHARD_CQE_BATCH)) > 0) {
            for (unsigned i = 0; i < n; i++)
                handle_cqe(sh, &cqes[i]);
            settle(sh);
            if (n < SHARD_CQE_BATCH)
                break;
        }
        if (sh->skip.n)
            sendskip_settle(sh, sent); /* the CQ is empty: no CQE means sent */
        after_events(sh);
        settle(sh);
    }
    if (stat_get(&sh->stats.accepted))
        shard_log_stats(sh);
    shard_teardown(sh);
    alog_shard_finish(sh); /* after the last stream's line */
    conncap_shard_finish(sh);
    resphdr_shard_free(sh);
    return NULL;
}
