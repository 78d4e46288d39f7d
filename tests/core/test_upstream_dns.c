/* Tests for core/upstream_dns.c: origins named by host name, looked up off
 * the shard.  A real shard calls a real origin (the same spindle server,
 * listening on 127.0.0.1) by the name "localhost" over loopback. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mini_h2.h"

static void origin_request(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)r;
    (void)app;
    spindle_respond(s, 200, NULL, 0, false);
    spindle_send(s, "named", 5, true, NULL, NULL);
}

static uint16_t port;

/* max_requests: the origin's GOAWAY after that many (1: a new connection
 * for every call). */
static void serve(uint32_t max_requests)
{
    spindle_config cfg = spindle_config_default();
    cfg.shards = 1;
    cfg.limits.max_requests = max_requests;
    spindle_handler h = {.on_request = origin_request};
    port = mini_serve(cfg, &h);
}

typedef struct result {
    atomic_int done;
    int err;
    int status;
    size_t len;
} result;

static void r_response(spindle_call *c, const spindle_response *r, void *ctx)
{
    (void)c;
    ((result *)ctx)->status = r->status;
}

static void r_data(spindle_call *c, const uint8_t *d, size_t n, bool end, void *ctx)
{
    (void)c;
    (void)d;
    (void)end;
    ((result *)ctx)->len += n;
}

static void r_done(spindle_call *c, int err, uint32_t code, void *ctx)
{
    (void)c;
    (void)code;
    result *res = ctx;
    res->err = err;
    atomic_fetch_add(&res->done, 1);
}

static const spindle_call_handler handler = {r_response, r_data, NULL, r_done};

static spindle_upstream *up;

typedef struct newup {
    const char *host;
    uint32_t refresh_ms;
    uint32_t connect_timeout_ms;
    int rc;
} newup;

static void make_upstream(void *arg)
{
    newup *n = arg;
    spindle_upstream_config cfg = spindle_upstream_config_default();
    cfg.host = n->host;
    cfg.port = port;
    cfg.max_conns = 1;
    cfg.dns_refresh_ms = n->refresh_ms;
    if (n->connect_timeout_ms)
        cfg.connect_timeout_ms = n->connect_timeout_ms;
    n->rc = spindle_upstream_new(spindle_current_shard(), &cfg, &up);
}

static void setup(const char *host, uint32_t refresh_ms)
{
    newup n = {host, refresh_ms, 0, -1};
    mini_on_shard(0, make_upstream, &n);
    cr_assert_eq(n.rc, 0, "spindle_upstream_new: %s", spindle_strerror(n.rc));
}

static void free_upstream(void *arg)
{
    (void)arg;
    spindle_upstream_free(up);
    up = NULL;
}

static void start_call(void *arg)
{
    spindle_call_req req = {.method = "GET", .path = "/"};
    cr_assert_eq(spindle_call_start(up, &req, &handler, arg, NULL), 0);
}

static result *call(result *res)
{
    mini_on_shard(0, start_call, res);
    cr_assert(mini_wait(&res->done, 1), "the call did not end in 10 s");
    return res;
}

static spindle_upstream_stats stats;

static void get_stats(void *arg)
{
    (void)arg;
    spindle_upstream_get_stats(up, &stats);
}

static result results[8];

Test(upstream_dns, localhost_resolves_and_answers)
{
    serve(0);
    setup("localhost", 30000);
    result *r = call(&results[0]);
    cr_assert_eq(r->err, 0, "%s", spindle_strerror(r->err));
    cr_assert_eq(r->status, 200);
    cr_assert_eq(r->len, 5);
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.resolves, 1);
    cr_assert_eq(stats.resolve_failures, 0);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream_dns, looked_up_again_per_connection_once_stale)
{
    serve(1); /* GOAWAY after every request: each call opens a connection */
    setup("localhost", 0);
    /* Call 0 waits for the first answer; call 1's connection finds it used
     * (stale at once): it connects with it and looks the name up again;
     * call 2's takes that new answer, unused so far. */
    for (int i = 0; i < 3; i++) {
        result *r = call(&results[i]);
        cr_assert_eq(r->err, 0, "call %d: %s", i, spindle_strerror(r->err));
        for (int k = 0; k < 200; k++) { /* call 1's lookup comes back */
            mini_on_shard(0, get_stats, NULL);
            if (stats.resolves >= (uint64_t)(i < 1 ? i + 1 : 2))
                break;
            usleep(10 * 1000);
        }
    }
    usleep(100 * 1000); /* a lookup too many would show by now */
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.opened, 3);
    cr_assert_eq(stats.resolves, 2, "dns_refresh_ms 0: looked up again (%lu)",
                 (unsigned long)stats.resolves);
    mini_on_shard(0, free_upstream, NULL);
    /* The default (30 s): one answer serves every connection. */
    setup("localhost", 30000);
    for (int i = 3; i < 6; i++)
        cr_assert_eq(call(&results[i])->err, 0);
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.opened, 3);
    cr_assert_eq(stats.resolves, 1);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream_dns, unresolvable_name_fails_the_call)
{
    serve(0);
    newup n = {"no-such-host.invalid", 30000, 3000, -1}; /* RFC 6761: never resolves */
    mini_on_shard(0, make_upstream, &n);
    cr_assert_eq(n.rc, 0);
    result *r = call(&results[0]);
    cr_assert_eq(r->err, SPINDLE_EUPSTREAM, "%s", spindle_strerror(r->err));
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.resolve_failures, 1);
    cr_assert_eq(stats.opened, 0);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

/* The upstream freed while its lookup runs: the call ends (ECLOSED), the
 * late answer is dropped. */
static void start_then_free(void *arg)
{
    start_call(arg);
    free_upstream(NULL);
}

Test(upstream_dns, freed_while_looking_up)
{
    serve(0);
    setup("localhost", 30000);
    result *r = &results[0];
    mini_on_shard(0, start_then_free, r);
    cr_assert(mini_wait(&r->done, 1));
    cr_assert_eq(r->err, SPINDLE_ECLOSED);
    usleep(200 * 1000); /* the answer comes and is dropped */
    setup("localhost", 30000);
    cr_assert_eq(call(&results[1])->err, 0);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}
