/* offload.c - worker threads for blocking handlers, fed over SPSC queues.
 * See offload.h for the protocol between the shard and its workers. */
#include "offload.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "async.h"
#include "doorbell.h"
#include "headers.h"
#include "log.h"
#include "server.h"
#include "spsc.h"

#define OFF_QUEUE 1024u /* messages per direction per worker */

enum msg_type { M_REQUEST, M_BODY, M_TRAILERS, M_RESET, M_WRITABLE, M_TIMER, M_CLOSE, M_STOP };
enum cmd_type { K_RESPOND, K_SEND, K_TRAILERS, K_RESET, K_CONSUMED, K_AFTER, K_FREED };

typedef struct off_msg {
    uint8_t type;
    bool end;
    uint32_t code;
    spindle_stream *st;
    void *data; /* heap, owned by the message (request pack, body copy, trailers pack) */
    size_t len;
    union {
        spindle_timer_fn timer;     /* M_TIMER */
        spindle_request_fn request; /* M_REQUEST: NULL for the handler's on_request */
    } fn;
} off_msg;

typedef struct off_cmd {
    uint8_t type;
    bool end;
    uint16_t status;
    uint32_t arg; /* reset code, pause flag, timer ms */
    spindle_stream *st;
    void *data; /* RESPOND/TRAILERS: packed headers (heap); SEND: the app's bytes */
    size_t len;
    spindle_release_fn release;
    void *ctx;
    spindle_timer_fn fn;
} off_cmd;

struct offload {
    spsc msgs; /* shard -> worker */
    spsc cmds; /* worker -> shard */
    off_msg msg_slots[OFF_QUEUE];
    off_cmd cmd_slots[OFF_QUEUE];
    shard *sh;
    pthread_t thread;
    doorbell bell; /* the worker sleeps on it when msgs is empty */
    bool started;
    bool produced; /* worker-private: commands pushed since the last doorbell */
};

/* Messages that found their worker's queue full; sent before anything new. */
typedef struct overflow {
    off_msg m;
    offload *to;
    struct overflow *next;
} overflow;

static _Thread_local offload *tls_worker;

#ifdef SPINDLE_TEST_HOOKS
/* Tests (tests/core/test_offload.c): >= 0, that many more allocations
 * succeed and the next one fails. */
_Atomic long offload_test_alloc_countdown = -1;
static void *off_malloc(size_t n)
{
    long c = atomic_load(&offload_test_alloc_countdown);
    while (c >= 0 && !atomic_compare_exchange_weak(&offload_test_alloc_countdown, &c, c - 1))
        ;
    return c == 0 ? NULL : malloc(n);
}
#else
#define off_malloc malloc
#endif

static void copy_str(spindle_str *dst, const spindle_str *src, char **w)
{
    if (!src->ptr) {
        *dst = *src;
        return;
    }
    memcpy(*w, src->ptr, src->len);
    dst->ptr = *w;
    dst->len = src->len;
    *w += src->len;
}

/* ------------------------------------------------------------------------ */
/* Shard side                                                                */
/* ------------------------------------------------------------------------ */

static offload *worker_of(spindle_stream *st)
{
    return &stream_shard(st)->off[st->worker];
}

/* A new stream goes to the worker with the fewest streams: one busy in a
 * long blocking call does not hold up requests another could take. */
static uint32_t pick_worker(shard *sh)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < sh->noff; i++)
        if (sh->off_load[i] < sh->off_load[best])
            best = i;
    sh->off_load[best]++;
    return best;
}

/* After a push to o->msgs (doorbell.h: fenced, so a worker going to sleep
 * cannot miss it). */
static void wake_worker(offload *o)
{
    doorbell_ring(&o->bell);
}

/* Send what waits, in order: the overflow list, then the closes that
 * found no memory for an overflow entry.  Stops at the first full queue. */
static void flush_overflow(shard *sh)
{
    while (sh->off_overflow) {
        overflow *ov = sh->off_overflow;
        if (!spsc_push(&ov->to->msgs, &ov->m))
            return;
        wake_worker(ov->to);
        sh->off_overflow = ov->next;
        if (!sh->off_overflow)
            sh->off_overflow_tail = NULL;
        free(ov);
    }
    while (sh->off_close_wait) {
        spindle_stream *st = sh->off_close_wait;
        offload *o = &sh->off[st->worker];
        off_msg m = {.type = M_CLOSE, .st = st};
        if (!spsc_push(&o->msgs, &m))
            return;
        wake_worker(o);
        sh->off_close_wait = st->next_close_wait;
        if (!sh->off_close_wait)
            sh->off_close_wait_tail = NULL;
    }
}

static bool anything_waits(const shard *sh)
{
    return sh->off_overflow || sh->off_close_wait;
}

/* No memory to queue m behind a full queue.  A close cannot be lost (the
 * stream would wait for its FREED forever): it waits on a list linked
 * through the stream itself.  Anything else: drop it and reset the stream,
 * whose close then reaches the worker that way. */
static void post_failed(shard *sh, const off_msg *m)
{
    spindle_stream *st = m->st;
    free(m->data);
    if (m->type == M_CLOSE) {
        st->next_close_wait = NULL;
        if (sh->off_close_wait_tail)
            sh->off_close_wait_tail->next_close_wait = st;
        else
            sh->off_close_wait = st;
        sh->off_close_wait_tail = st;
        return;
    }
    log_msg(LOG_WARN, (int)sh->idx, "offload: out of memory, stream %u reset", st->sid);
    if (!(st->flags & (ST_RESET | ST_CLOSED)))
        stream_reset_code(st, H2_INTERNAL_ERROR);
}

static void post(offload *o, const off_msg *m)
{
    shard *sh = o->sh;
    flush_overflow(sh);
    if (!anything_waits(sh) && spsc_push(&o->msgs, m)) {
        wake_worker(o);
        return;
    }
    overflow *ov = off_malloc(sizeof *ov);
    if (!ov) {
        post_failed(sh, m);
        return;
    }
    ov->m = *m;
    ov->to = o;
    ov->next = NULL;
    if (sh->off_overflow_tail)
        sh->off_overflow_tail->next = ov;
    else
        sh->off_overflow = ov;
    sh->off_overflow_tail = ov;
}

bool offload_has_room(shard *sh)
{
    if (!sh->noff)
        return true;
    flush_overflow(sh);
    if (anything_waits(sh))
        return false;
    for (uint32_t i = 0; i < sh->noff; i++)
        if (spsc_size_approx(&sh->off[i].msgs) + 4 >= OFF_QUEUE)
            return false;
    return true;
}

/* The offloaded mode's request event: from now on the stream's callbacks
 * run on a worker, starting with fn (NULL: the handler's on_request) on a
 * copy of the request. */
static void offload_request(spindle_stream *st, const spindle_request *req, spindle_request_fn fn)
{
    shard *sh = stream_shard(st);
    st->flags |= ST_OFFLOADED;
    sh->off_streams++;
    stat_add(&sh->stats.offloaded, 1);
    st->worker = pick_worker(sh); /* first: even a failed request is closed through it */
    size_t bytes = sizeof *req + headers_bytes(req->headers, req->nheaders) + req->method.len +
                   req->scheme.len + req->authority.len + req->path.len + req->protocol.len;
    char *blk = off_malloc(bytes);
    if (!blk) {
        stream_reset_code(st, H2_INTERNAL_ERROR);
        return;
    }
    spindle_request *r = (spindle_request *)(void *)blk;
    *r = *req;
    spindle_header *arr;
    char *w = headers_pack(blk + sizeof *r, req->headers, req->nheaders, &arr);
    r->headers = arr;
    copy_str(&r->method, &req->method, &w);
    copy_str(&r->scheme, &req->scheme, &w);
    copy_str(&r->authority, &req->authority, &w);
    copy_str(&r->path, &req->path, &w);
    copy_str(&r->protocol, &req->protocol, &w);
    off_msg m = {.type = M_REQUEST, .st = st, .data = blk, .len = bytes, .fn.request = fn};
    post(worker_of(st), &m);
}

/* Consumed (the window reopens) when the worker has taken the bytes. */
static void offload_body(spindle_stream *st, const uint8_t *p, size_t n, bool end)
{
    void *copy = NULL;
    if (n) {
        copy = off_malloc(n);
        if (!copy) {
            stream_reset_code(st, H2_INTERNAL_ERROR);
            return;
        }
        memcpy(copy, p, n);
    }
    off_msg m = {.type = M_BODY, .st = st, .data = copy, .len = n, .end = end};
    post(worker_of(st), &m);
}

static void offload_trailers(spindle_stream *st, const spindle_header *h, size_t n)
{
    spindle_header *blk = headers_copy(h, n);
    if (!blk) {
        stream_reset_code(st, H2_INTERNAL_ERROR);
        return;
    }
    off_msg m = {.type = M_TRAILERS, .st = st, .data = blk, .len = n};
    post(worker_of(st), &m);
}

static void offload_reset(spindle_stream *st, uint32_t code)
{
    off_msg m = {.type = M_RESET, .st = st, .code = code};
    post(worker_of(st), &m);
}

static void offload_writable(spindle_stream *st)
{
    off_msg m = {.type = M_WRITABLE, .st = st};
    post(worker_of(st), &m);
}

static void offload_timer(spindle_stream *st, spindle_timer_fn fn)
{
    off_msg m = {.type = M_TIMER, .st = st, .fn.timer = fn};
    post(worker_of(st), &m);
}

static void offload_close(spindle_stream *st)
{
    off_msg m = {.type = M_CLOSE, .st = st};
    post(worker_of(st), &m);
}

/* Apply one command on the shard.  A command for a stream that closed in
 * the meantime is dropped (its data released). */
static void apply(shard *sh, off_cmd *k)
{
    spindle_stream *st = k->st;
    if (k->type == K_FREED) {
        sh->off_load[st->worker]--;
        sh->off_streams--;
        stream_offload_freed(sh, st);
        return;
    }
    bool gone = (st->flags & (ST_CLOSED | ST_RESET)) != 0;
    switch (k->type) {
    case K_RESPOND:
        if (!gone)
            stream_respond(st, k->status, k->data, k->len, k->end);
        free(k->data);
        break;
    case K_SEND:
        if (gone) {
            if (k->release)
                k->release(k->ctx, k->data, k->len);
        } else {
            stream_send(st, k->data, k->len, k->end, k->release, k->ctx);
        }
        break;
    case K_TRAILERS:
        if (!gone)
            stream_trailers(st, k->data, k->len);
        free(k->data);
        break;
    case K_RESET:
        if (!gone)
            stream_reset_code(st, k->arg);
        break;
    case K_CONSUMED: stream_consumed(st, k->len); break;
    case K_AFTER:
        if (!gone)
            stream_after(st, k->arg, k->fn);
        break;
    }
}

size_t offload_drain(shard *sh)
{
    size_t n = 0;
    for (uint32_t i = 0; i < sh->noff; i++) {
        off_cmd k;
        while (spsc_pop(&sh->off[i].cmds, &k)) {
            apply(sh, &k);
            n++;
        }
    }
    flush_overflow(sh);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Worker side                                                               */
/* ------------------------------------------------------------------------ */

static void cmd(spindle_stream *s, off_cmd *k)
{
    offload *o = tls_worker;
    k->st = s;
    while (!spsc_push(&o->cmds, k)) {
        /* The shard is behind: ring it and wait for room. */
        ring_waker_wake(o->sh->waker);
        usleep(50);
    }
    o->produced = true;
}

static int closed_for_worker(const spindle_stream *s)
{
    return (s->wflags & ST_CLOSED) ? SPINDLE_ECLOSED : (s->wflags & ST_RESET) ? SPINDLE_ECLOSED : 0;
}

static int offload_cmd_respond(spindle_stream *s, uint16_t status, const spindle_header *h,
                               size_t n, bool end)
{
    int e = closed_for_worker(s);
    if (e)
        return e;
    spindle_header *blk = NULL;
    if (n && !(blk = headers_copy(h, n)))
        return SPINDLE_ENOMEM;
    off_cmd k = {.type = K_RESPOND, .status = status, .data = blk, .len = n, .end = end};
    cmd(s, &k);
    if (end && status >= 200)
        s->wflags |= ST_RESP_END;
    return 0;
}

static int offload_cmd_send(spindle_stream *s, const void *data, size_t len, bool end,
                            spindle_release_fn release, void *ctx)
{
    int e = closed_for_worker(s);
    if (e) {
        if (release)
            release(ctx, data, len);
        return e;
    }
    off_cmd k = {.type = K_SEND,
                 .data = (void *)(uintptr_t)data,
                 .len = len,
                 .end = end,
                 .release = release,
                 .ctx = ctx};
    cmd(s, &k);
    return 0;
}

static int offload_cmd_trailers(spindle_stream *s, const spindle_header *h, size_t n)
{
    int e = closed_for_worker(s);
    if (e)
        return e;
    if (!n || !h)
        return SPINDLE_EINVAL;
    spindle_header *blk = headers_copy(h, n);
    if (!blk)
        return SPINDLE_ENOMEM;
    off_cmd k = {.type = K_TRAILERS, .data = blk, .len = n};
    cmd(s, &k);
    return 0;
}

static int offload_cmd_reset(spindle_stream *s, uint32_t code)
{
    int e = closed_for_worker(s);
    if (e)
        return e;
    s->wflags |= ST_RESET;
    off_cmd k = {.type = K_RESET, .arg = code};
    cmd(s, &k);
    return 0;
}

static void offload_cmd_pause(spindle_stream *s, bool pause)
{
    if (pause) {
        s->wflags |= ST_PAUSED;
        return;
    }
    s->wflags &= (uint16_t)~ST_PAUSED;
    if (s->wunconsumed) {
        off_cmd k = {.type = K_CONSUMED, .len = s->wunconsumed};
        s->wunconsumed = 0;
        cmd(s, &k);
    }
}

static size_t offload_buffered(const spindle_stream *s)
{
    return atomic_load_explicit(&s->buffered, memory_order_relaxed);
}

static int offload_cmd_after(spindle_stream *s, uint32_t ms, spindle_timer_fn fn)
{
    int e = closed_for_worker(s);
    if (e)
        return e;
    off_cmd k = {.type = K_AFTER, .arg = ms, .fn = fn};
    cmd(s, &k);
    return 0;
}

const stream_ops offload_stream_ops = {
    .respond = offload_cmd_respond,
    .send = offload_cmd_send,
    .trailers = offload_cmd_trailers,
    .reset = offload_cmd_reset,
    .after = offload_cmd_after,
    .pause = offload_cmd_pause,
    .buffered = offload_buffered,
    .on_request = offload_request,
    .on_body = offload_body,
    .on_trailers = offload_trailers,
    .on_reset = offload_reset,
    .on_writable = offload_writable,
    .on_timer = offload_timer,
    .on_close = offload_close,
};

/* The stream's mode becomes offloaded, starting with fn on a copy of req;
 * the shard's thread, s inline.  The checks both public calls share: a
 * stream still open, not answered, not offloaded, its body not held by a
 * pause (the worker's resume would not find it: inline pauses hold the
 * body in the stream, offloaded ones on the worker). */
static int offload_now(shard *sh, spindle_stream *s, const spindle_request *req,
                       spindle_request_fn fn)
{
    if ((s->flags & (ST_OFFLOADED | ST_RESET | ST_CLOSED | ST_RESP_END | ST_PAUSED)) ||
        s->pend_len || s->pend_trailers)
        return SPINDLE_ESTATE;
    if (!sh->noff) {
        if (sh->off_failed)
            return SPINDLE_ESYS;
        uint32_t n = sh->srv->cfg.offload_threads ? sh->srv->cfg.offload_threads : 1;
        int rc = offload_start(sh, n);
        if (rc != 0) {
            offload_stop(sh); /* what did start */
            sh->off_failed = true;
            log_msg(LOG_ERROR, (int)sh->idx,
                    "cannot start offload threads: %s; "
                    "spindle_offload() fails from now on",
                    spindle_strerror(rc));
            return rc;
        }
        log_msg(LOG_DEBUG, (int)sh->idx, "started %u offload thread(s)", n);
    }
    s->ops = &offload_stream_ops;
    s->ops->on_request(s, req, fn);
    return SPINDLE_OK;
}

int spindle_offload(spindle_stream *s, spindle_request_fn fn)
{
    if (!s || !fn)
        return SPINDLE_EINVAL;
    if (tls_worker || !s->c)
        return SPINDLE_ESTATE;
    shard *sh = stream_shard(s);
    if (sh->in_request != s)
        return SPINDLE_ESTATE;
    return offload_now(sh, s, sh->in_request_req, fn);
}

int spindle_offload_request(spindle_stream *s, const spindle_request *req, spindle_request_fn fn)
{
    if (!s || !req || !fn)
        return SPINDLE_EINVAL;
    spindle_shard *as = async_current(); /* NULL on a worker or any other thread */
    if (!as || !s->c || stream_shard(s) != as->sh)
        return SPINDLE_ESTATE;
    return offload_now(as->sh, s, req, fn);
}

static void run(offload *o, off_msg *m)
{
    spindle_stream *st = m->st;
    server *srv = o->sh->srv;
    const spindle_handler *h = &srv->handler;
    switch (m->type) {
    case M_REQUEST: {
        spindle_request_fn f = m->fn.request ? m->fn.request : h->on_request;
        if (f)
            f(st, m->data, srv->app);
        break;
    }
    case M_BODY:
        if (!(st->wflags & (ST_RESET | ST_CLOSED)) && h->on_body)
            h->on_body(st, m->data, m->len, m->end, srv->app);
        if (m->len) {
            /* The window reopens once the handler has taken the bytes. */
            if (st->wflags & ST_PAUSED) {
                st->wunconsumed += m->len;
            } else {
                off_cmd k = {.type = K_CONSUMED, .len = m->len};
                cmd(st, &k);
            }
        }
        break;
    case M_TRAILERS:
        if (!(st->wflags & (ST_RESET | ST_CLOSED)) && h->on_trailers)
            h->on_trailers(st, m->data, m->len, srv->app);
        break;
    case M_RESET:
        st->wflags |= ST_RESET;
        if (h->on_reset)
            h->on_reset(st, m->code, srv->app);
        break;
    case M_WRITABLE:
        if (!(st->wflags & (ST_RESET | ST_CLOSED)) && h->on_writable)
            h->on_writable(st, srv->app);
        break;
    case M_TIMER:
        if (!(st->wflags & (ST_RESET | ST_CLOSED)) && m->fn.timer)
            m->fn.timer(st, srv->app);
        break;
    case M_CLOSE: {
        st->wflags |= ST_CLOSED;
        if (h->on_close)
            h->on_close(st, srv->app);
        off_cmd k = {.type = K_FREED};
        cmd(st, &k);
        break;
    }
    }
    free(m->data);
}

static void *worker_main(void *arg)
{
    offload *o = arg;
    tls_worker = o;
    for (;;) {
        off_msg m;
        while (spsc_pop(&o->msgs, &m)) {
            if (m.type == M_STOP)
                return NULL;
            run(o, &m);
            /* Ring the shard before the next handler, which may block for
             * long: commands never wait behind it (the shard applies them at
             * its next round; ring_waker_wake() always writes, so the shard
             * cannot miss it). */
            if (o->produced) {
                o->produced = false;
                ring_waker_wake(o->sh->waker);
            }
        }
        doorbell_sleep(&o->bell, &o->msgs); /* until the shard posts */
    }
}

int offload_start(shard *sh, uint32_t n)
{
    sh->off = calloc(n, sizeof *sh->off);
    sh->off_load = calloc(n, sizeof *sh->off_load);
    if (!sh->off || !sh->off_load)
        return SPINDLE_ENOMEM;
    sh->noff = n;
    for (uint32_t i = 0; i < n; i++)
        sh->off[i].bell.efd = -1;
    for (uint32_t i = 0; i < n; i++) {
        offload *o = &sh->off[i];
        o->sh = sh;
        spsc_init(&o->msgs, o->msg_slots, OFF_QUEUE, sizeof(off_msg));
        spsc_init(&o->cmds, o->cmd_slots, OFF_QUEUE, sizeof(off_cmd));
        if (doorbell_init(&o->bell) != 0)
            return SPINDLE_ESYS;
        if (pthread_create(&o->thread, NULL, worker_main, o) != 0)
            return SPINDLE_ESYS;
        o->started = true;
    }
    return 0;
}

void offload_stop(shard *sh)
{
    for (uint32_t i = 0; i < sh->noff; i++) {
        offload *o = &sh->off[i];
        if (o->started) {
            /* What waits goes first (closes among it: the worker must see
             * them); drain commands meanwhile, or a worker waiting for
             * room in its command queue would wait for us. */
            while (anything_waits(sh)) {
                offload_drain(sh);
                if (anything_waits(sh))
                    usleep(100);
            }
            off_msg m = {.type = M_STOP};
            while (!spsc_push(&o->msgs, &m))
                usleep(100);
            doorbell_ring_always(&o->bell);
            pthread_join(o->thread, NULL);
        }
        /* Anything left in the command queue: release what it carries. */
        off_cmd k;
        while (spsc_pop(&o->cmds, &k)) {
            if (k.type == K_SEND && k.release)
                k.release(k.ctx, k.data, k.len);
            else if (k.type == K_RESPOND || k.type == K_TRAILERS)
                free(k.data);
            else if (k.type == K_FREED)
                stream_offload_freed(sh, k.st);
        }
        doorbell_close(&o->bell);
    }
    while (sh->off_overflow) {
        overflow *ov = sh->off_overflow;
        sh->off_overflow = ov->next;
        free(ov->m.data);
        free(ov);
    }
    free(sh->off);
    free(sh->off_load);
    sh->off = NULL;
    sh->off_load = NULL;
    sh->noff = 0;
}

uint64_t offload_queue_depth(shard *sh)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < sh->noff; i++)
        n += spsc_size_approx(&sh->off[i].msgs) + spsc_size_approx(&sh->off[i].cmds);
    return n;
}
