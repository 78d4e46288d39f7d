/* Tests for core/upstream_hold.c: spindle_call_pause/resume, response
 * backpressure for upstream calls.  A real shard calls a real origin (the
 * same spindle server) over loopback, as tests/core/test_upstream.c does;
 * calls are started, paused and resumed on the shard's thread
 * (mini_on_shard) and the test thread waits for their callbacks. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mini_h2.h"

#define BIG   (1024u * 1024u) /* the connection window (1 MiB) is no larger */
#define SMALL 5000u

/* --- The origin: /big answers BIG bytes (byte i = i * 31 + 7) and a trailer --- */

static uint8_t big[BIG];

static bool is(const spindle_request *r, const char *p)
{
    return r->path.len == strlen(p) && memcmp(r->path.ptr, p, r->path.len) == 0;
}

static void origin_request(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)app;
    static const spindle_header t[] = {{"x-trailer", "yes", 0, 0}};
    if (is(r, "/big")) {
        spindle_respond(s, 200, NULL, 0, false);
        spindle_send(s, big, sizeof big, false, NULL, NULL);
        spindle_send_trailers(s, t, 1);
    } else if (is(r, "/small")) {
        spindle_respond(s, 200, NULL, 0, false);
        spindle_send(s, big, SMALL, false, NULL, NULL);
        spindle_send_trailers(s, t, 1);
    } else if (is(r, "/big-end")) { /* ends with DATA, no trailers */
        spindle_respond(s, 200, NULL, 0, false);
        spindle_send(s, big, sizeof big, true, NULL, NULL);
    } else {
        spindle_respond(s, 404, NULL, 0, true);
    }
}

static uint16_t port;

static void serve(void)
{
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    spindle_config cfg = spindle_config_default();
    cfg.shards = 1;
    spindle_handler h = {.on_request = origin_request};
    port = mini_serve(cfg, &h);
}

/* --- Calls ------------------------------------------------------------------------ */

typedef struct result {
    atomic_int done, trailers, datas;
    atomic_size_t len;
    int err;
    bool bad_byte;        /* a byte out of place */
    bool data_in_resume;  /* on_data ran inside spindle_call_resume */
    bool pause_on_head;   /* pause in on_response */
    bool pause_each_data; /* pause again in every on_data */
    bool streaming;       /* the request body follows (body_more) */
    int send_rc;          /* spindle_call_send after the response ended */
    size_t buffered;
    spindle_call *call;
} result;

static spindle_upstream *up;
static bool in_resume;
static result results[16];
static int nresults;

static void r_response(spindle_call *c, const spindle_response *r, void *ctx)
{
    (void)r;
    result *res = ctx;
    if (res->pause_on_head)
        spindle_call_pause(c);
}

static void r_data(spindle_call *c, const uint8_t *d, size_t n, bool end, void *ctx)
{
    (void)end;
    result *res = ctx;
    size_t off = atomic_load(&res->len);
    for (size_t i = 0; i < n; i++)
        if (d[i] != (uint8_t)((off + i) * 31 + 7))
            res->bad_byte = true;
    atomic_store(&res->len, off + n);
    if (in_resume)
        res->data_in_resume = true;
    atomic_fetch_add(&res->datas, 1);
    if (res->pause_each_data)
        spindle_call_pause(c);
}

static void r_trailers(spindle_call *c, const spindle_header *h, size_t n, void *ctx)
{
    (void)c;
    result *res = ctx;
    if (n == 1 && h[0].value_len == 3 && memcmp(h[0].value, "yes", 3) == 0)
        atomic_fetch_add(&res->trailers, 1);
}

static void r_done(spindle_call *c, int err, uint32_t code, void *ctx)
{
    (void)c;
    (void)code;
    result *res = ctx;
    res->err = err;
    res->call = NULL;
    atomic_fetch_add(&res->done, 1);
}

static const spindle_call_handler handler = {r_response, r_data, r_trailers, r_done};

static uint32_t up_timeout_ms;

static void make_upstream(void *arg)
{
    int *rc = arg;
    spindle_upstream_config cfg = spindle_upstream_config_default();
    cfg.host = "127.0.0.1";
    cfg.port = port;
    cfg.max_conns = 1; /* every call on one connection: its window is shared */
    cfg.call_timeout_ms = up_timeout_ms;
    *rc = spindle_upstream_new(spindle_current_shard(), &cfg, &up);
}

static void free_upstream(void *arg)
{
    (void)arg;
    spindle_upstream_free(up);
    up = NULL;
}

static void setup(uint32_t timeout_ms)
{
    serve();
    up_timeout_ms = timeout_ms;
    int rc = -1;
    mini_on_shard(0, make_upstream, &rc);
    cr_assert_eq(rc, 0, "spindle_upstream_new: %s", spindle_strerror(rc));
}

typedef struct start {
    const char *path;
    result *res;
} start;

static void start_call(void *arg)
{
    start *s = arg;
    spindle_call_req req = {.method = "POST", .path = s->path, .body_more = s->res->streaming};
    cr_assert_eq(spindle_call_start(up, &req, &handler, s->res, &s->res->call), 0);
}

static result *call_ex(const char *path, bool pause_on_head, bool streaming)
{
    cr_assert_lt(nresults, 16);
    result *res = &results[nresults++];
    res->pause_on_head = pause_on_head;
    res->streaming = streaming;
    start s = {path, res};
    mini_on_shard(0, start_call, &s);
    return res;
}

static result *call(const char *path, bool pause_on_head)
{
    return call_ex(path, pause_on_head, false);
}

static void send_late(void *arg)
{
    result *res = arg;
    res->send_rc = spindle_call_send(res->call, "x", 1, true);
    res->buffered = spindle_call_buffered(res->call);
}

static void resume(void *arg)
{
    result *res = arg;
    in_resume = true;
    spindle_call_resume(res->call);
    in_resume = false;
}

static void cancel(void *arg)
{
    result *res = arg;
    spindle_call_cancel(res->call);
    res->call = NULL;
}

static spindle_upstream_stats stats;

static void get_stats(void *arg)
{
    (void)arg;
    spindle_upstream_get_stats(up, &stats);
}

/* Wait until the paused call keeps something and stops growing (the origin
 * is then held by the stream's window); its bytes are in stats. */
static void wait_held(uint64_t at_least)
{
    uint64_t last = 0;
    for (int i = 0; i < 200; i++) {
        usleep(50 * 1000);
        mini_on_shard(0, get_stats, NULL);
        if (stats.held_bytes >= at_least && stats.held_bytes == last)
            return;
        last = stats.held_bytes;
    }
    cr_assert_fail("held bytes never settled (%lu)", (unsigned long)stats.held_bytes);
}

static void wait_done(result *res)
{
    cr_assert(mini_wait(&res->done, 1), "the call did not end in 10 s");
}

/* The stream's initial window: what a paused call may keep. */
#define WINDOW  (256u * 1024u)
#define NPAUSED 4

/* --- Tests ------------------------------------------------------------------------ */

Test(upstream_hold, paused_call_holds_one_stream_window_and_others_flow)
{
    setup(0);
    /* Paused at their heads: together they could keep the connection's
     * whole window (1 MiB), one stream window (256 KiB) each. */
    result *p[NPAUSED];
    for (int i = 0; i < NPAUSED; i++)
        p[i] = call("/big", true);
    result *a = p[0];
    wait_held(NPAUSED * WINDOW);
    cr_assert_eq(stats.held_bytes, NPAUSED * WINDOW, "held %lu", (unsigned long)stats.held_bytes);
    cr_assert_eq(stats.held_peak, WINDOW);
    for (int i = 0; i < NPAUSED; i++)
        cr_assert_eq(atomic_load(&p[i]->datas), 0, "no body delivered while paused");
    /* Another call on the same connection gets all of its 1 MiB: the
     * connection window was credited for what the paused calls keep. */
    result *b = call("/big", false);
    wait_done(b);
    cr_assert_eq(b->err, 0);
    cr_assert_eq(atomic_load(&b->len), BIG);
    cr_assert_eq(atomic_load(&b->trailers), 1);
    cr_assert_eq(atomic_load(&a->done), 0);
    /* Resume: the rest comes, intact, never inside spindle_call_resume. */
    mini_on_shard(0, resume, a);
    wait_done(a);
    cr_assert_eq(a->err, 0, "%s", spindle_strerror(a->err));
    cr_assert_eq(atomic_load(&a->len), BIG);
    cr_assert_not(a->bad_byte);
    cr_assert_not(a->data_in_resume);
    cr_assert_eq(atomic_load(&a->trailers), 1);
    mini_on_shard(0, get_stats, NULL);
    for (int i = 1; i < NPAUSED; i++)
        mini_on_shard(0, resume, p[i]);
    for (int i = 1; i < NPAUSED; i++) {
        wait_done(p[i]);
        cr_assert_eq(atomic_load(&p[i]->len), BIG);
        cr_assert_not(p[i]->bad_byte);
    }
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.held_bytes, 0);
    cr_assert_leq(stats.held_peak, WINDOW);
    cr_assert_eq(stats.opened, 1, "one connection for every call");
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream_hold, pause_in_every_on_data_delivers_everything_in_order)
{
    setup(0);
    result *a = call("/big-end", false);
    a->pause_each_data = true;
    result *b = call("/big", false);
    b->pause_each_data = true;
    /* Each resume delivers what was kept in one on_data, which pauses again. */
    for (int round = 0; round < 200 && (!atomic_load(&a->done) || !atomic_load(&b->done));
         round++) {
        usleep(5 * 1000);
        if (!atomic_load(&a->done))
            mini_on_shard(0, resume, a);
        if (!atomic_load(&b->done))
            mini_on_shard(0, resume, b);
    }
    wait_done(a);
    wait_done(b);
    cr_assert_eq(a->err, 0);
    cr_assert_eq(b->err, 0);
    cr_assert_eq(atomic_load(&a->len), BIG);
    cr_assert_eq(atomic_load(&b->len), BIG);
    cr_assert_not(a->bad_byte);
    cr_assert_not(b->bad_byte);
    cr_assert_eq(atomic_load(&b->trailers), 1);
    mini_on_shard(0, get_stats, NULL);
    cr_assert_leq(stats.held_peak, WINDOW);
    cr_assert_eq(stats.held_bytes, 0);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream_hold, time_paused_does_not_count_against_the_timeout)
{
    setup(400);
    result *a = call("/big", true);
    usleep(1000 * 1000); /* paused for 2.5 time-outs */
    cr_assert_eq(atomic_load(&a->done), 0, "a paused call timed out");
    mini_on_shard(0, resume, a);
    wait_done(a);
    cr_assert_eq(a->err, 0, "%s", spindle_strerror(a->err));
    cr_assert_eq(atomic_load(&a->len), BIG);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream_hold, cancel_and_free_while_held)
{
    setup(0);
    /* Part of a response held, then cancelled: nothing more comes. */
    result *a = call("/big", true);
    wait_held(1);
    mini_on_shard(0, cancel, a);
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.held_bytes, 0);
    /* Whole responses that ended while paused (the origin's stream closed,
     * body and trailers kept): one cancelled, one ended by the upstream's
     * free with on_done(SPINDLE_ECLOSED) and no body. */
    result *b = call("/small", true);
    result *c = call("/small", true);
    wait_held(2 * SMALL);
    mini_on_shard(0, cancel, b);
    mini_on_shard(0, free_upstream, NULL);
    wait_done(c);
    cr_assert_eq(c->err, SPINDLE_ECLOSED);
    cr_assert_eq(atomic_load(&c->datas), 0);
    cr_assert_eq(atomic_load(&c->trailers), 0);
    usleep(100 * 1000);
    cr_assert_eq(atomic_load(&a->done), 0);
    cr_assert_eq(atomic_load(&b->done), 0);
    cr_assert_eq(atomic_load(&a->datas), 0);
    cr_assert_eq(atomic_load(&b->datas), 0);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream_hold, ended_while_paused_then_resumed)
{
    setup(0);
    result *a = call("/small", true);
    wait_held(SMALL);
    /* Its stream is closed: another call goes on the same connection. */
    result *b = call("/big", false);
    wait_done(b);
    cr_assert_eq(atomic_load(&b->len), BIG);
    cr_assert_eq(atomic_load(&a->done), 0);
    mini_on_shard(0, resume, a);
    wait_done(a);
    cr_assert_eq(a->err, 0);
    cr_assert_eq(atomic_load(&a->len), SMALL);
    cr_assert_eq(atomic_load(&a->datas), 1, "what was kept comes in one on_data");
    cr_assert_eq(atomic_load(&a->trailers), 1);
    cr_assert_not(a->bad_byte);
    cr_assert_not(a->data_in_resume);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream_hold, request_body_after_a_held_end_is_refused)
{
    setup(0);
    /* The origin answers /small without reading the body; the response
     * ends while the call is paused: its stream is gone. */
    result *a = call_ex("/small", true, true);
    wait_held(SMALL);
    mini_on_shard(0, send_late, a);
    cr_assert_eq(a->send_rc, SPINDLE_ECLOSED);
    cr_assert_eq(a->buffered, 0);
    mini_on_shard(0, resume, a);
    wait_done(a);
    cr_assert_eq(a->err, 0);
    cr_assert_eq(atomic_load(&a->len), SMALL);
    cr_assert_eq(atomic_load(&a->trailers), 1);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}
