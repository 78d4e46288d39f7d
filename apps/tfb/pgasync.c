/* pgasync.c - see pgasync.h. */
#define _POSIX_C_SOURCE 200809L
#include "pgasync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct tfb_req tfb_req;
struct tfb_req {
    tfb_req *next;
    spindle_handle h;
    tfb_job job;
    uint32_t k;      /* results consumed */
    int rc;          /* the first failure */
    bool own_seg;    /* /updates: a segment of its own */
    bool sync_after; /* a sync follows this job's queries */
    bool retry;      /* failed on a deadlock: worth one more try */
    bool retried;
};

enum conn_state { C_DOWN, C_CONNECTING, C_PREPARING, C_READY };

typedef struct pconn {
    tfb_pool *pool;
    PGconn *pg;
    spindle_watch *w;
    int fd;
    uint32_t events;
    enum conn_state st;
    uint64_t deadline;    /* C_DOWN: next attempt; connecting: give up */
    tfb_req *head, *tail; /* given to this connection, not answered, in order */
    tfb_req *unsent;      /* the first job not sent yet (the open segment) */
    tfb_req *cur;         /* the job receiving results */
    uint32_t njobs;       /* head..tail */
    uint32_t unsynced;    /* jobs in the open segment */
    uint32_t syncs;       /* syncs sent, not read back */
    uint32_t prepared;    /* C_PREPARING: statements prepared */
    bool got;             /* a result was taken: a NULL ends the query */
} pconn;

struct tfb_pool {
    spindle_shard *sh;
    tfb_pool_limits lim;
    tfb_pool_done_fn done;
    void *done_ctx;
    pconn *c;
    tfb_req **q; /* the queue, a ring of lim.queue */
    uint32_t qhead, qlen;
    bool down;            /* an attempt failed and no connection is up */
    uint32_t backoff_ms;  /* the next failure's wait */
    bool hooked;          /* pool_flush() is the shard's loop-end hook */
    bool flush_wanted;    /* a segment waits for pool_flush() */
    spindle_timer *timer; /* the pending timer, or NULL */
    uint64_t timer_at;    /* ... and when it fires */
    char conninfo[];
};

tfb_pool_limits tfb_pool_defaults(void)
{
    return (tfb_pool_limits){.conns = 4,
                             .depth = 64,
                             .segments = 2,
                             .queue = 1024,
                             .connect_timeout_ms = 2000,
                             .retry_min_ms = 25,
                             .retry_max_ms = 1000};
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void log_once(const char *what, const char *detail)
{
    static _Thread_local time_t last;
    time_t t = time(NULL);
    if (t != last) {
        last = t;
        fprintf(stderr, "spindle-tfb: %s: %s", what, detail && *detail ? detail : "?\n");
        if (detail && *detail && detail[strlen(detail) - 1] != '\n')
            fputc('\n', stderr);
    }
}

static void conn_start(pconn *c);
static void conn_fail(pconn *c, bool connecting);
static void pool_drain(tfb_pool *p);

/* --- Jobs ---------------------------------------------------------------- */

static void req_free(tfb_req *r)
{
    tfb_job_free(&r->job);
    free(r);
}

/* Answer r (if its stream is still open) and free it. */
static void req_finish(tfb_pool *p, tfb_req *r, int rc)
{
    spindle_stream *s = spindle_handle_stream(r->h);
    if (s) {
        if (rc == TFB_DB_DOWN && !r->job.err[0])
            snprintf(r->job.err, sizeof r->job.err, "connection lost");
        p->done(s, &r->job, rc, p->done_ctx);
    }
    req_free(r);
}

/* --- Timers (reconnection, connect timeouts) ----------------------------- */

static void pool_tick(spindle_shard *sh, void *arg);

/* A timer at `at`, unless the pending one fires by then. */
static void pool_arm(tfb_pool *p, uint64_t at)
{
    if (p->timer && p->timer_at <= at)
        return;
    spindle_timer_cancel(p->timer);
    p->timer = NULL;
    uint64_t now = now_ms();
    uint32_t ms = at > now ? (uint32_t)(at - now) : 1;
    if (spindle_shard_after(p->sh, ms, pool_tick, p, &p->timer) == 0)
        p->timer_at = at;
    else
        p->timer = NULL; /* out of memory: the next failure tries again */
}

static void pool_tick(spindle_shard *sh, void *arg)
{
    (void)sh;
    tfb_pool *p = arg;
    p->timer = NULL;
    uint64_t now = now_ms(), next = 0;
    for (uint32_t i = 0; i < p->lim.conns; i++) {
        pconn *c = &p->c[i];
        if (c->st == C_DOWN && now >= c->deadline)
            conn_start(c);
        else if ((c->st == C_CONNECTING || c->st == C_PREPARING) && now >= c->deadline) {
            log_once("database unavailable", "connecting timed out");
            conn_fail(c, true);
        }
        if (c->st != C_READY && (!next || c->deadline < next))
            next = c->deadline;
    }
    if (next)
        pool_arm(p, next);
}

/* --- The descriptor watch ------------------------------------------------ */

static void on_ready(spindle_watch *w, int fd, uint32_t revents, void *ctx);

static void watch_close(pconn *c)
{
    if (c->w)
        spindle_watch_close(c->w);
    c->w = NULL;
    c->fd = -1;
    c->events = 0;
}

/* Watch libpq's current descriptor for events (it may have changed). */
static int watch(pconn *c, uint32_t events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (c->w && fd != c->fd)
        watch_close(c);
    if (!c->w) {
        if (spindle_watch_fd(c->pool->sh, fd, events, on_ready, c, &c->w) != 0) {
            c->w = NULL;
            return -1;
        }
        c->fd = fd;
        c->events = events;
    } else if (events != c->events) {
        if (spindle_watch_set(c->w, events) != 0)
            return -1;
        c->events = events;
    }
    return 0;
}

/* After sending: flush what libpq holds; watch for writability while some
 * of it is left.  -1 when the connection failed. */
static int flush(pconn *c)
{
    int f = PQflush(c->pg);
    if (f < 0)
        return -1;
    return watch(c, f ? SPINDLE_WATCH_IN | SPINDLE_WATCH_OUT : SPINDLE_WATCH_IN);
}

/* --- Connecting ---------------------------------------------------------- */

static void conn_start(pconn *c)
{
    tfb_pool *p = c->pool;
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {p->conninfo, "spindle-tfb", NULL};
    c->pg = PQconnectStartParams(keys, vals, 1);
    c->st = C_CONNECTING;
    c->deadline = now_ms() + p->lim.connect_timeout_ms;
    c->got = false;
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD || watch(c, SPINDLE_WATCH_OUT) != 0) {
        log_once("database unavailable", c->pg ? PQerrorMessage(c->pg) : "out of memory");
        conn_fail(c, true);
        return;
    }
    pool_arm(p, c->deadline);
}

/* Connected: non-blocking, pipeline mode, prepare every statement. */
static int conn_prepare(pconn *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1)
        return -1;
    for (int i = 0; i < TFB_NSTMT; i++)
        if (!PQsendPrepare(c->pg, tfb_stmt_name((tfb_stmt)i), tfb_stmt_sql((tfb_stmt)i),
                           tfb_stmt_nparams((tfb_stmt)i), NULL))
            return -1;
    if (!PQpipelineSync(c->pg))
        return -1;
    c->st = C_PREPARING;
    c->prepared = 0;
    c->syncs = 1;
    return flush(c);
}

static void conn_poll(pconn *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    /* libpq may have closed its socket and opened another (the next
     * address), possibly with the same number: watch afresh every step. */
    watch_close(c);
    switch (st) {
    case PGRES_POLLING_READING:
        if (watch(c, SPINDLE_WATCH_IN) == 0)
            return;
        break;
    case PGRES_POLLING_WRITING:
        if (watch(c, SPINDLE_WATCH_OUT) == 0)
            return;
        break;
    case PGRES_POLLING_OK:
        if (conn_prepare(c) == 0)
            return;
        break;
    default: break;
    }
    log_once("database unavailable", PQerrorMessage(c->pg));
    conn_fail(c, true);
}

static bool pool_any_ready(const tfb_pool *p)
{
    for (uint32_t i = 0; i < p->lim.conns; i++)
        if (p->c[i].st == C_READY)
            return true;
    return false;
}

/* The connection is gone (or never came): its jobs answer 503; try again
 * after the back-off.  connecting: an attempt failed (counts for "down"). */
static void conn_fail(pconn *c, bool connecting)
{
    tfb_pool *p = c->pool;
    watch_close(c);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->st = C_DOWN;
    tfb_req *r = c->head;
    c->head = c->tail = c->cur = c->unsent = NULL;
    c->njobs = c->unsynced = c->syncs = 0;
    while (r) {
        tfb_req *next = r->next;
        req_finish(p, r, TFB_DB_DOWN);
        r = next;
    }
    /* An established connection that broke is tried again soon; failed
     * attempts back off. */
    uint32_t wait = connecting ? p->backoff_ms : p->lim.retry_min_ms;
    if (connecting && p->backoff_ms < p->lim.retry_max_ms)
        p->backoff_ms =
            p->backoff_ms * 2 > p->lim.retry_max_ms ? p->lim.retry_max_ms : p->backoff_ms * 2;
    c->deadline = now_ms() + wait;
    pool_arm(p, c->deadline);
    if (connecting && !pool_any_ready(p)) {
        p->down = true;
        pool_drain(p); /* answers the queue 503 */
    }
}

/* --- Sending ------------------------------------------------------------- */

static int send_job(pconn *c, tfb_req *r)
{
    tfb_job *j = &r->job;
    for (uint32_t k = 0; k < j->nqueries; k++) {
        tfb_query q;
        if (tfb_job_query(j, k, &q) != TFB_DB_OK)
            return -2;
        int ok = PQsendQueryPrepared(c->pg, tfb_stmt_name(q.stmt), q.nparams, q.values, q.lengths,
                                     NULL, 0);
        tfb_query_free(&q);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Send the open segment (the unsent jobs) and its sync, in one write (a
 * PQpipelineSync() flushes).  0, -1 (send failed), -2 (out of memory). */
static int segment_send(pconn *c)
{
    for (tfb_req *r = c->unsent; r; r = r->next) {
        int rc = send_job(c, r);
        if (rc)
            return rc;
    }
    if (!PQpipelineSync(c->pg))
        return -1;
    c->tail->sync_after = true;
    c->unsent = NULL;
    c->unsynced = 0;
    c->syncs++;
    return flush(c);
}

/* A failed send leaves the connection out of step (a job half-sent): it
 * goes, answering its jobs 503. */
static void send_failed(pconn *c, int rc)
{
    log_once("database unavailable", rc == -2 ? "out of memory\n" : PQerrorMessage(c->pg));
    conn_fail(c, false);
}

/* The end of the loop iteration (the shard's loop-end hook, after the
 * iteration's completions): send the open segments of the connections with
 * nothing in flight, so every job that arrived in one iteration travels in
 * one segment and their answers come back together (one write per h2
 * connection for all of them).  Every iteration: one test when idle. */
static void pool_flush(spindle_shard *sh, void *arg)
{
    (void)sh;
    tfb_pool *p = arg;
    if (!p->flush_wanted)
        return;
    p->flush_wanted = false;
    for (uint32_t i = 0; i < p->lim.conns; i++) {
        pconn *c = &p->c[i];
        int rc = c->st == C_READY && c->unsent && c->syncs < p->lim.segments ? segment_send(c) : 0;
        if (rc)
            send_failed(c, rc);
    }
}

/* Ask pool_flush() for this iteration's end; false without the hook (the
 * shard had another one: send now). */
static bool pool_flush_soon(tfb_pool *p)
{
    p->flush_wanted = p->hooked;
    return p->hooked;
}

/* Append r to c's pipeline: into the open segment, sent at the end of the
 * loop iteration when nothing is in flight (else when the segment in
 * flight comes back, so jobs arriving meanwhile share one write and one
 * round trip), or into a segment of its own, sent at once (/updates,
 * /sleep). */
static void conn_send(pconn *c, tfb_req *r)
{
    r->next = NULL;
    r->k = 0;
    r->rc = TFB_DB_OK;
    r->sync_after = false;
    r->retry = false;
    r->job.err[0] = 0;
    int rc = 0;
    if (r->own_seg && c->unsent && (rc = segment_send(c)) != 0) {
        send_failed(c, rc); /* r is not in the pipeline yet */
        req_finish(c->pool, r, TFB_DB_DOWN);
        return;
    }
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    if (!c->cur)
        c->cur = r;
    if (!c->unsent)
        c->unsent = r;
    c->njobs++;
    c->unsynced++;
    uint32_t segs = c->pool->lim.segments;
    if (!r->own_seg && c->syncs < segs && c->unsynced < c->pool->lim.depth &&
        pool_flush_soon(c->pool))
        return; /* sent at the end of this loop iteration, with the others */
    if ((r->own_seg || c->syncs < segs || c->unsynced >= c->pool->lim.depth) &&
        (rc = segment_send(c)) != 0)
        send_failed(c, rc);
}

/* Where a job goes: a ready connection with room whose open segment is
 * filling (to travel with the jobs already there), unless own_seg; else
 * the ready connection with the fewest jobs, if it has room. */
static pconn *pick(tfb_pool *p, bool own_seg)
{
    pconn *best = NULL;
    for (uint32_t i = 0; i < p->lim.conns; i++) {
        pconn *c = &p->c[i];
        if (c->st != C_READY || c->njobs >= p->lim.depth)
            continue;
        if (c->unsent && !own_seg)
            return c;
        if (!best || c->njobs < best->njobs)
            best = c;
    }
    return best;
}

/* Move queued jobs to connections with room (or answer them 503 while the
 * pool is down); jobs whose streams closed are dropped unsent. */
static void pool_drain(tfb_pool *p)
{
    while (p->qlen) {
        tfb_req *r = p->q[p->qhead];
        pconn *c = NULL;
        if (spindle_handle_stream(r->h) && !p->down && !(c = pick(p, r->own_seg)))
            return;
        p->qhead = (p->qhead + 1) % p->lim.queue;
        p->qlen--;
        if (c)
            conn_send(c, r);
        else
            req_finish(p, r, TFB_DB_DOWN); /* answers only a live stream */
    }
}

/* --- Receiving ----------------------------------------------------------- */

/* A job's queries are all answered and its segment synced: answer it, or
 * send it once more (an /updates that hit a deadlock). */
static void job_done(pconn *c, tfb_req *r)
{
    if (r->rc && r->retry && !r->retried) {
        r->retried = true; /* the same ids and numbers, sent again */
        conn_send(c, r);
        return;
    }
    req_finish(c->pool, r, r->rc);
}

/* A sync came back: answer every job up to the one it follows. */
static int on_sync(pconn *c)
{
    if (!c->syncs)
        return -1;
    c->syncs--;
    if (c->st == C_PREPARING) {
        if (c->prepared != TFB_NSTMT)
            return -1;
        c->st = C_READY;
        c->pool->down = false;
        c->pool->backoff_ms = c->pool->lim.retry_min_ms;
        pool_drain(c->pool);
        return 0;
    }
    while (c->head) {
        tfb_req *r = c->head;
        if (r == c->cur) /* not all its results yet: out of step */
            return -1;
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->njobs--;
        bool last = r->sync_after;
        job_done(c, r);
        if (c->st != C_READY) /* sending it again failed the connection */
            return 0;
        if (last)
            break;
    }
    int rc = c->syncs < c->pool->lim.segments && c->unsent ? segment_send(c) : 0;
    if (rc) {
        send_failed(c, rc);
        return 0;
    }
    pool_drain(c->pool);
    return 0;
}

/* One result (not a sync) for the current query. */
static int on_result(pconn *c, PGresult *res)
{
    if (c->st == C_PREPARING) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK)
            c->prepared++;
        else
            log_once("database error (prepare)", PQresultErrorMessage(res));
        PQclear(res);
        return st == PGRES_COMMAND_OK ? 0 : -1;
    }
    tfb_req *r = c->cur;
    if (!r) {
        PQclear(res);
        return -1;
    }
    if (!r->rc && r->job.kind == TFB_JOB_UPDATES && tfb_db_retryable(res))
        r->retry = true;
    int rc = tfb_job_consume(&r->job, r->k, res);
    if (rc && !r->rc)
        r->rc = rc;
    return 0;
}

/* Read what arrived and consume every complete result. */
static int conn_read(pconn *c)
{
    if (!PQconsumeInput(c->pg))
        return -1;
    while (!PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            if (!c->got)
                break;
            c->got = false;
            if (c->st == C_READY && c->cur && ++c->cur->k == c->cur->job.nqueries)
                c->cur = c->cur->next;
            continue;
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            if (on_sync(c) != 0)
                return -1;
            if (c->st == C_DOWN) /* a retried job failed it */
                return 0;
            continue;
        }
        c->got = true;
        if (on_result(c, res) != 0)
            return -1;
    }
    return PQstatus(c->pg) == CONNECTION_BAD ? -1 : 0;
}

static void on_ready(spindle_watch *w, int fd, uint32_t revents, void *ctx)
{
    (void)w;
    (void)fd;
    pconn *c = ctx;
    if (c->st == C_CONNECTING) {
        conn_poll(c);
        return;
    }
    if (c->st == C_DOWN)
        return;
    if ((revents & SPINDLE_WATCH_OUT) && flush(c) != 0)
        goto failed;
    if ((revents & (SPINDLE_WATCH_IN | SPINDLE_WATCH_ERR | SPINDLE_WATCH_HUP)) && conn_read(c) != 0)
        goto failed;
    return;
failed:
    log_once("database connection lost", PQerrorMessage(c->pg));
    conn_fail(c, c->st == C_PREPARING);
}

/* --- The pool ------------------------------------------------------------ */

tfb_pool *tfb_pool_new(spindle_shard *sh, const char *conninfo, const tfb_pool_limits *lim,
                       tfb_pool_done_fn done, void *ctx)
{
    if (!lim->conns || !lim->depth || !lim->segments || !lim->connect_timeout_ms ||
        !lim->retry_min_ms || lim->retry_max_ms < lim->retry_min_ms)
        return NULL;
    size_t n = strlen(conninfo) + 1;
    tfb_pool *p = calloc(1, sizeof *p + n);
    if (!p)
        return NULL;
    memcpy(p->conninfo, conninfo, n);
    p->sh = sh;
    p->lim = *lim;
    p->done = done;
    p->done_ctx = ctx;
    p->backoff_ms = lim->retry_min_ms;
    /* Segments go out at the end of each loop iteration; without the hook
     * (the shard has another) each job's segment goes out at once. */
    p->hooked = spindle_shard_on_loop_end(sh, pool_flush, p) == 0;
    p->c = calloc(lim->conns, sizeof *p->c);
    p->q = lim->queue ? calloc(lim->queue, sizeof *p->q) : NULL;
    if (!p->c || (lim->queue && !p->q)) {
        if (p->hooked)
            spindle_shard_on_loop_end(sh, NULL, NULL);
        free(p->c);
        free(p->q);
        free(p);
        return NULL;
    }
    for (uint32_t i = 0; i < lim->conns; i++) {
        p->c[i].pool = p;
        p->c[i].fd = -1;
        conn_start(&p->c[i]);
    }
    return p;
}

void tfb_pool_free(tfb_pool *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->lim.conns; i++) {
        pconn *c = &p->c[i];
        watch_close(c);
        if (c->pg)
            PQfinish(c->pg);
        for (tfb_req *r = c->head, *next; r; r = next) {
            next = r->next;
            req_free(r);
        }
    }
    for (; p->qlen; p->qlen--, p->qhead = (p->qhead + 1) % p->lim.queue)
        req_free(p->q[p->qhead]);
    spindle_timer_cancel(p->timer);
    if (p->hooked)
        spindle_shard_on_loop_end(p->sh, NULL, NULL);
    free(p->c);
    free(p->q);
    free(p);
}

int tfb_pool_submit(tfb_pool *p, spindle_stream *s, tfb_job_kind kind, uint32_t n, uint64_t *rng)
{
    if (p->down)
        return TFB_DB_DOWN;
    bool own_seg = kind == TFB_JOB_UPDATES || kind == TFB_JOB_SLEEP;
    pconn *c = pick(p, own_seg);
    if (!c && p->qlen >= p->lim.queue)
        return TFB_POOL_FULL;
    tfb_req *r = calloc(1, sizeof *r);
    if (!r)
        return TFB_DB_NOMEM;
    if (tfb_job_init(&r->job, kind, n, rng) != TFB_DB_OK) {
        req_free(r);
        return TFB_DB_NOMEM;
    }
    r->h = spindle_stream_handle(s);
    if (!r->h.v) { /* no handle: the answer could never find s */
        req_free(r);
        return TFB_DB_NOMEM;
    }
    r->own_seg = own_seg;
    if (c) {
        conn_send(c, r);
    } else {
        p->q[(p->qhead + p->qlen) % p->lim.queue] = r;
        p->qlen++;
    }
    return 0;
}

uint32_t tfb_pool_ready(const tfb_pool *p)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->lim.conns; i++)
        n += p->c[i].st == C_READY;
    return n;
}
