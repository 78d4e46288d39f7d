/* Tests for core/upstream.c (and upstream_conn.c, conn_ping.c): upstream
 * calls from a real shard to a real origin over loopback.  The origin is
 * the same spindle server (its handler below answers /hello, /echo,
 * /stall...), so every byte crosses a real socket and the server's engine;
 * the calls are started on the shard's thread (mini_on_shard) and their
 * callbacks record what came, which the test thread waits for. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mini_h2.h"

/* --- The origin --------------------------------------------------------------- */

static atomic_int origin_rtt_ok, origin_closed;

static void origin_rtt(void *ctx, int err, uint64_t rtt_us)
{
    spindle_stream *s = spindle_handle_stream(*(spindle_handle *)ctx);
    free(ctx);
    if (err == 0 && rtt_us < 10u * 1000u * 1000u)
        atomic_fetch_add(&origin_rtt_ok, 1);
    if (s)
        spindle_respond(s, err == 0 ? 200 : 500, NULL, 0, true);
}

static bool is(const spindle_request *r, const char *p)
{
    return r->path.len == strlen(p) && memcmp(r->path.ptr, p, r->path.len) == 0;
}

static void origin_request(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)app;
    static const spindle_header t[] = {{"x-trailer", "yes", 0, 0}};
    static const spindle_header h[] = {{"x-origin", "spindle", 0, 0}};
    if (is(r, "/hello")) {
        spindle_respond(s, 200, h, 1, false);
        spindle_send(s, "hello", 5, false, NULL, NULL);
        spindle_send_trailers(s, t, 1);
    } else if (is(r, "/echo")) {
        spindle_respond(s, 200, NULL, 0, false); /* the body follows in on_body */
        if (!r->has_body)
            spindle_send(s, NULL, 0, true, NULL, NULL);
    } else if (is(r, "/empty")) {
        spindle_respond(s, 204, NULL, 0, true);
    } else if (is(r, "/ping")) {
        spindle_handle *hp = malloc(sizeof *hp);
        cr_assert_not_null(hp);
        *hp = spindle_stream_handle(s);
        cr_assert_eq(spindle_stream_ping(s, origin_rtt, hp), 0);
    } else if (is(r, "/stall")) {
        /* never answered: the caller's time-out or cancel ends it */
    } else {
        spindle_respond(s, 404, NULL, 0, true);
    }
}

static void origin_body(spindle_stream *s, const uint8_t *d, size_t n, bool end, void *app)
{
    (void)app;
    spindle_send_copy(s, d, n, end);
}

static void origin_trailers(spindle_stream *s, const spindle_header *h, size_t n, void *app)
{
    (void)app;
    /* Request trailers come back as response trailers. */
    spindle_send_trailers(s, h, n);
}

static void origin_close(spindle_stream *s, void *app)
{
    (void)s;
    (void)app;
    atomic_fetch_add(&origin_closed, 1);
}

static uint16_t port;

static void serve(void)
{
    spindle_config cfg = spindle_config_default();
    cfg.shards = 1;
    spindle_handler h = {.on_request = origin_request,
                         .on_body = origin_body,
                         .on_trailers = origin_trailers,
                         .on_close = origin_close};
    port = mini_serve(cfg, &h);
}

/* --- Calls, on the shard ------------------------------------------------------- */

typedef struct result {
    atomic_int done, responses, trailers;
    int err;
    uint32_t code;
    int status;
    char body[4096];
    size_t len;
    char trailer[64];
    char header[64];
    bool end_in_head;
    bool cancel_in_data;
} result;

static spindle_upstream *up;

/* Results live for the whole test process (one per test: Criterion forks). */
static result results[16];
static int nresults;

static result *new_result(void)
{
    cr_assert_lt(nresults, 16);
    return &results[nresults++];
}

static void r_response(spindle_call *c, const spindle_response *r, void *ctx)
{
    (void)c;
    result *res = ctx;
    res->status = r->status;
    res->end_in_head = r->end;
    for (size_t i = 0; i < r->nheaders; i++)
        if (r->headers[i].name_len == 8 && memcmp(r->headers[i].name, "x-origin", 8) == 0)
            snprintf(res->header, sizeof res->header, "%.*s", (int)r->headers[i].value_len,
                     r->headers[i].value);
    atomic_fetch_add(&res->responses, 1);
}

static void r_data(spindle_call *c, const uint8_t *d, size_t n, bool end, void *ctx)
{
    (void)end;
    result *res = ctx;
    cr_assert_leq(res->len + n, sizeof res->body);
    memcpy(res->body + res->len, d, n);
    res->len += n;
    if (res->cancel_in_data) {
        spindle_call_cancel(c); /* inside its own callback: nothing more comes */
        atomic_store(&res->done, 2);
    }
}

static void r_trailers(spindle_call *c, const spindle_header *h, size_t n, void *ctx)
{
    (void)c;
    result *res = ctx;
    if (n)
        snprintf(res->trailer, sizeof res->trailer, "%.*s=%.*s", (int)h[0].name_len, h[0].name,
                 (int)h[0].value_len, h[0].value);
    atomic_fetch_add(&res->trailers, 1);
}

static void r_done(spindle_call *c, int err, uint32_t code, void *ctx)
{
    (void)c;
    result *res = ctx;
    res->err = err;
    res->code = code;
    atomic_fetch_add(&res->done, 1);
}

static const spindle_call_handler handler = {r_response, r_data, r_trailers, r_done};

typedef struct newup {
    uint16_t port;
    uint32_t timeout_ms;
    uint32_t keepalive_ms;
    int rc;
} newup;

static void make_upstream(void *arg)
{
    newup *n = arg;
    spindle_upstream_config cfg = spindle_upstream_config_default();
    cfg.host = "127.0.0.1";
    cfg.port = n->port;
    cfg.call_timeout_ms = n->timeout_ms;
    cfg.keepalive_ms = n->keepalive_ms;
    n->rc = spindle_upstream_new(spindle_current_shard(), &cfg, &up);
}

static void free_upstream(void *arg)
{
    (void)arg;
    spindle_upstream_free(up);
    up = NULL;
}

static void setup_upstream(uint16_t to, uint32_t timeout_ms)
{
    newup n = {to, timeout_ms, 0, -1};
    mini_on_shard(0, make_upstream, &n);
    cr_assert_eq(n.rc, 0, "spindle_upstream_new: %s", spindle_strerror(n.rc));
}

typedef struct start {
    spindle_call_req req;
    result *res;
    spindle_call *call;
    int rc;
    const char *more; /* streamed after start */
    bool trailers;    /* end the streamed body with trailers */
    bool cancel_now;  /* cancel right after start */
} start;

static void start_call(void *arg)
{
    start *s = arg;
    s->rc = spindle_call_start(up, &s->req, &handler, s->res, &s->call);
    if (s->rc != 0)
        return;
    if (s->more && s->trailers) {
        cr_assert_eq(spindle_call_send(s->call, s->more, strlen(s->more), false), 0);
        static const spindle_header t[] = {{"x-req-trailer", "t1", 0, 0}};
        cr_assert_eq(spindle_call_send_trailers(s->call, t, 1), 0);
    } else if (s->more) {
        cr_assert_eq(spindle_call_send(s->call, s->more, strlen(s->more), true), 0);
        cr_assert_eq(spindle_call_send(s->call, "x", 1, true), SPINDLE_ESTATE);
    }
    if (s->cancel_now)
        spindle_call_cancel(s->call);
}

static result *call(const char *method, const char *path, const char *body, bool more)
{
    result *res = new_result();
    cr_assert_not_null(res);
    start s = {.req = {.method = method,
                       .path = path,
                       .body = body,
                       .body_len = body ? strlen(body) : 0,
                       .body_more = more != false},
               .res = res};
    mini_on_shard(0, start_call, &s);
    cr_assert_eq(s.rc, 0, "spindle_call_start: %s", spindle_strerror(s.rc));
    return res;
}

static void wait_done(result *res)
{
    cr_assert(mini_wait(&res->done, 1), "the call did not end in 10 s");
}

/* --- Tests ------------------------------------------------------------------ */

Test(upstream, head_body_trailers)
{
    serve();
    setup_upstream(port, 0);
    result *r = call("GET", "/hello", NULL, false);
    wait_done(r);
    cr_assert_eq(r->err, 0, "%s", spindle_strerror(r->err));
    cr_assert_eq(r->status, 200);
    cr_assert_str_eq(r->header, "spindle");
    cr_assert_eq(r->len, 5);
    cr_assert_eq(memcmp(r->body, "hello", 5), 0);
    cr_assert_str_eq(r->trailer, "x-trailer=yes");
    cr_assert_eq(atomic_load(&r->responses), 1);
    cr_assert_eq(atomic_load(&r->trailers), 1);
    /* 404 and a head that ends the response. */
    result *nf = call("GET", "/nothing", NULL, false);
    result *em = call("GET", "/empty", NULL, false);
    wait_done(nf);
    wait_done(em);
    cr_assert_eq(nf->status, 404);
    cr_assert_eq(em->status, 204);
    cr_assert(em->end_in_head);
    cr_assert_eq(em->err, 0);
    uint64_t opened = 0;
    cr_assert_eq(spindle_upstream_conns(up, &opened), 1);
    cr_assert_eq(opened, 1, "three calls, one pooled connection");
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream, bodies_streamed_and_trailers)
{
    serve();
    setup_upstream(port, 0);
    result *a = call("POST", "/echo", "whole body", false);
    wait_done(a);
    cr_assert_eq(a->err, 0);
    cr_assert_eq(a->len, 10);
    cr_assert_eq(memcmp(a->body, "whole body", 10), 0);
    /* Streamed: a first part at start, the rest with spindle_call_send. */
    result *b = new_result();
    start s = {.req = {.method = "POST",
                       .path = "/echo",
                       .body = "part1-",
                       .body_len = 6,
                       .body_more = true},
               .res = b,
               .more = "part2"};
    mini_on_shard(0, start_call, &s);
    cr_assert_eq(s.rc, 0);
    wait_done(b);
    cr_assert_eq(b->err, 0);
    cr_assert_eq(b->len, 11);
    cr_assert_eq(memcmp(b->body, "part1-part2", 11), 0);
    /* Request trailers (the origin sends them back). */
    result *c = new_result();
    start t = {.req = {.method = "POST", .path = "/echo", .body_more = true},
               .res = c,
               .more = "abc",
               .trailers = true};
    mini_on_shard(0, start_call, &t);
    wait_done(c);
    cr_assert_eq(c->err, 0);
    cr_assert_eq(c->len, 3);
    cr_assert_str_eq(c->trailer, "x-req-trailer=t1");
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream, timeout_resets_the_stream)
{
    serve();
    setup_upstream(port, 200);
    int closed = atomic_load(&origin_closed);
    result *r = call("GET", "/stall", NULL, false);
    wait_done(r);
    cr_assert_eq(r->err, SPINDLE_ETIMEDOUT);
    cr_assert_eq(atomic_load(&r->responses), 0);
    /* The origin saw the stream end (our CANCEL). */
    cr_assert(mini_wait(&origin_closed, closed + 1));
    /* The connection is still good. */
    result *ok = call("GET", "/hello", NULL, false);
    wait_done(ok);
    cr_assert_eq(ok->err, 0);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream, cancel_before_and_inside_callbacks)
{
    serve();
    setup_upstream(port, 0);
    int closed = atomic_load(&origin_closed);
    result *a = new_result();
    start s = {.req = {.method = "GET", .path = "/stall"}, .res = a, .cancel_now = true};
    mini_on_shard(0, start_call, &s);
    cr_assert_eq(s.rc, 0);
    cr_assert(mini_wait(&origin_closed, closed + 1), "the origin never saw the CANCEL");
    /* Cancelled inside on_data: no on_trailers, no on_done. */
    result *b = new_result();
    b->cancel_in_data = true;
    start t = {.req = {.method = "GET", .path = "/hello"}, .res = b};
    mini_on_shard(0, start_call, &t);
    cr_assert(mini_wait(&b->done, 2));
    result *c = call("GET", "/hello", NULL, false); /* a later call on the same pool */
    wait_done(c);
    cr_assert_eq(c->err, 0);
    cr_assert_eq(atomic_load(&a->done), 0);
    cr_assert_eq(atomic_load(&a->responses), 0);
    cr_assert_eq(atomic_load(&b->done), 2);
    cr_assert_eq(atomic_load(&b->trailers), 0);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

/* A port nobody listens on. */
static uint16_t dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

Test(upstream, unreachable_origin_fails_every_call)
{
    serve();
    setup_upstream(dead_port(), 0);
    result *a = call("GET", "/hello", NULL, false);
    result *b = call("GET", "/hello", NULL, false);
    wait_done(a);
    wait_done(b);
    cr_assert_eq(a->err, SPINDLE_EUPSTREAM);
    cr_assert_eq(b->err, SPINDLE_EUPSTREAM);
    cr_assert_eq(atomic_load(&a->done), 1);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

static void bad_calls(void *arg)
{
    int *rcs = arg;
    static const spindle_header upper[] = {{"X-Upper", "v", 0, 0}};
    static const spindle_header conn[] = {{"connection", "close", 0, 0}};
    static const spindle_header pseudo[] = {{":path", "/x", 0, 0}};
    spindle_call_req r = {.method = "GET", .path = "/hello", .headers = upper, .nheaders = 1};
    rcs[0] = spindle_call_start(up, &r, &handler, NULL, NULL);
    r.headers = conn;
    rcs[1] = spindle_call_start(up, &r, &handler, NULL, NULL);
    r.headers = pseudo;
    rcs[2] = spindle_call_start(up, &r, &handler, NULL, NULL);
    r = (spindle_call_req){.method = "GET", .path = "no-slash"};
    rcs[3] = spindle_call_start(up, &r, &handler, NULL, NULL);
    r = (spindle_call_req){.method = "CONNECT", .path = "/"};
    rcs[4] = spindle_call_start(up, &r, &handler, NULL, NULL);
    spindle_upstream_config cfg = spindle_upstream_config_default();
    spindle_upstream *u2 = NULL;
    cfg.host = "no such host"; /* neither an address nor a host name */
    cfg.port = 1;
    rcs[5] = spindle_upstream_new(spindle_current_shard(), &cfg, &u2);
}

Test(upstream, invalid_requests_and_threads)
{
    serve();
    setup_upstream(port, 0);
    int rcs[6];
    mini_on_shard(0, bad_calls, rcs);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(rcs[i], SPINDLE_EINVAL, "case %d: %d", i, rcs[i]);
    /* Not the shard's thread. */
    spindle_call_req r = {.method = "GET", .path = "/hello"};
    cr_assert_eq(spindle_call_start(up, &r, &handler, NULL, NULL), SPINDLE_ESTATE);
    spindle_upstream_config cfg = spindle_upstream_config_default();
    cfg.host = "127.0.0.1";
    cfg.port = port;
    spindle_upstream *u2 = NULL;
    cr_assert_eq(spindle_upstream_new(NULL, &cfg, &u2), SPINDLE_ESTATE);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

/* --- PING --------------------------------------------------------------------- */

static atomic_int rtt_calls, rtt_err;
static atomic_long rtt_value;

static void on_rtt(void *ctx, int err, uint64_t rtt_us)
{
    (void)ctx;
    atomic_store(&rtt_err, err);
    atomic_store(&rtt_value, (long)rtt_us);
    atomic_fetch_add(&rtt_calls, 1);
}

static void ping_upstream(void *arg)
{
    int *rc = arg;
    *rc = spindle_upstream_ping(up, on_rtt, NULL);
}

Test(upstream, ping_rtt_both_sides)
{
    serve();
    setup_upstream(port, 0);
    int rc = -1;
    /* No connection yet: ECLOSED, from the loop. */
    mini_on_shard(0, ping_upstream, &rc);
    cr_assert_eq(rc, 0);
    cr_assert(mini_wait(&rtt_calls, 1));
    cr_assert_eq(atomic_load(&rtt_err), SPINDLE_ECLOSED);
    result *r = call("GET", "/hello", NULL, false);
    wait_done(r);
    mini_on_shard(0, ping_upstream, &rc);
    cr_assert_eq(rc, 0);
    cr_assert(mini_wait(&rtt_calls, 2));
    cr_assert_eq(atomic_load(&rtt_err), 0);
    cr_assert_lt(atomic_load(&rtt_value), 10L * 1000 * 1000);
    /* The server side: the origin pings its client (our upstream engine,
     * which acknowledges) and answers when the RTT comes. */
    result *p = call("GET", "/ping", NULL, false);
    wait_done(p);
    cr_assert_eq(p->status, 200);
    cr_assert_eq(atomic_load(&origin_rtt_ok), 1);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

/* --- Many calls, the pool ------------------------------------------------- */

#define NMANY 300

static result many[NMANY];

static void start_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < NMANY; i++) {
        spindle_call_req r = {.method = "GET", .path = "/hello"};
        cr_assert_eq(spindle_call_start(up, &r, &handler, &many[i], NULL), 0);
    }
}

Test(upstream, more_calls_than_streams_open_more_connections)
{
    serve(); /* max-concurrent-streams 100: 300 calls need the queue and 2 connections */
    setup_upstream(port, 0);
    mini_on_shard(0, start_many, NULL);
    for (int i = 0; i < NMANY; i++) {
        wait_done(&many[i]);
        cr_assert_eq(many[i].err, 0, "call %d: %s", i, spindle_strerror(many[i].err));
        cr_assert_eq(many[i].len, 5);
    }
    uint64_t opened = 0;
    spindle_upstream_conns(up, &opened);
    cr_assert_eq(opened, 2, "max_conns (2) connections, opened %lu", (unsigned long)opened);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

/* --- Keepalive: a peer that never answers PINGs ---------------------------- */

typedef struct mute_peer {
    int lfd;
    atomic_int eof; /* we closed it */
} mute_peer;

/* Accepts one connection, sends an empty SETTINGS (and acknowledges
 * nothing, answers no PING), reads until our side closes. */
static void *mute_main(void *arg)
{
    mute_peer *m = arg;
    int fd = accept(m->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    cr_assert_eq(write(fd, settings, sizeof settings), 9);
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    atomic_store(&m->eof, 1);
    close(fd);
    return NULL;
}

static void make_keepalive_upstream(void *arg)
{
    newup *n = arg;
    n->keepalive_ms = 200;
    make_upstream(n);
}

Test(upstream, keepalive_closes_a_connection_whose_pings_go_unanswered)
{
    serve();
    mute_peer m = {.lfd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(m.lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(m.lfd, 4), 0);
    cr_assert_eq(getsockname(m.lfd, (struct sockaddr *)&a, &len), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, mute_main, &m), 0);
    newup n = {ntohs(a.sin_port), 0, 0, -1};
    mini_on_shard(0, make_keepalive_upstream, &n);
    cr_assert_eq(n.rc, 0);
    /* No call time-out: only the keepalive can end this call. */
    result *r = call("GET", "/never", NULL, false);
    wait_done(r);
    cr_assert_eq(r->err, SPINDLE_EUPSTREAM, "%s", spindle_strerror(r->err));
    cr_assert(mini_wait(&m.eof, 1), "the connection was not closed");
    pthread_join(t, NULL);
    close(m.lfd);
    mini_on_shard(0, free_upstream, NULL);
    /* A peer that answers keeps its connection: spindle's own engine. */
    newup ok = {port, 0, 0, -1};
    mini_on_shard(0, make_keepalive_upstream, &ok);
    result *a1 = call("GET", "/hello", NULL, false);
    wait_done(a1);
    usleep(700 * 1000); /* a few keepalive rounds */
    result *a2 = call("GET", "/hello", NULL, false);
    wait_done(a2);
    cr_assert_eq(a2->err, 0);
    uint64_t opened = 0;
    spindle_upstream_conns(up, &opened);
    cr_assert_eq(opened, 1, "PINGs answered: the same connection (opened %lu)",
                 (unsigned long)opened);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}
