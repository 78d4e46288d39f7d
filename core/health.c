/* health.c - liveness and readiness answers, the shutdown delay (contract
 * in health.h). */
#include "health.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "conn_proto.h"
#include "log.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

static bool path_is(spindle_str p, const char *want)
{
    if (!want || !p.ptr)
        return false;
    /* want, then the end or a query (no scan of the path for '?') */
    size_t n = strlen(want);
    return (p.len == n || (p.len > n && p.ptr[n] == '?')) && memcmp(p.ptr, want, n) == 0;
}

static bool method_is(spindle_str m, const char *want)
{
    return m.ptr && m.len == strlen(want) && memcmp(m.ptr, want, m.len) == 0;
}

/* The handler never hears of a health stream: its events go nowhere, its
 * close only releases it. */
static void quiet_request(spindle_stream *st, const spindle_request *req, spindle_request_fn fn)
{
    (void)st, (void)req, (void)fn;
}
static void quiet_body(spindle_stream *st, const uint8_t *p, size_t n, bool end)
{
    (void)p, (void)end;
    CP(st->c)->consume(st->c, st->sid, n);
}
static void quiet_trailers(spindle_stream *st, const spindle_header *h, size_t n)
{
    (void)st, (void)h, (void)n;
}
static void quiet_reset(spindle_stream *st, uint32_t code)
{
    (void)st, (void)code;
}
static void quiet_stream(spindle_stream *st)
{
    (void)st;
}
static void quiet_timer(spindle_stream *st, spindle_timer_fn fn)
{
    (void)st, (void)fn;
}
static void quiet_pause(spindle_stream *st, bool pause)
{
    (void)st, (void)pause;
}
static size_t quiet_buffered(const spindle_stream *st)
{
    (void)st;
    return 0;
}

static const stream_ops health_ops = {
    .respond = stream_respond,
    .send = stream_send,
    .trailers = stream_trailers,
    .reset = stream_reset_code,
    .after = stream_after,
    .pause = quiet_pause,
    .buffered = quiet_buffered,
    .on_request = quiet_request,
    .on_body = quiet_body,
    .on_trailers = quiet_trailers,
    .on_reset = quiet_reset,
    .on_writable = quiet_stream,
    .on_timer = quiet_timer,
    .on_close = stream_release,
};

bool health_answer(spindle_stream *st, const spindle_request *req)
{
    const server *srv = st->c->sh->srv;
    const spindle_config *cfg = &srv->cfg;
    bool live = path_is(req->path, cfg->health_path);
    bool ready = !live && path_is(req->path, cfg->ready_path);
    if (!live && !ready)
        return false;
    bool head = method_is(req->method, "HEAD");
    if (!head && !method_is(req->method, "GET"))
        return false; /* other methods: the application's business */
    st->ops = &health_ops;
    static const spindle_header h[] = {
        {.name = "content-type", .value = "text/plain"},
        {.name = "cache-control", .value = "no-store"},
    };
    static const char ok[] = "ok\n", up[] = "ready\n", down[] = "draining\n";
    bool draining = ready && atomic_load_explicit(&srv->unready, memory_order_relaxed);
    const char *body = live ? ok : draining ? down : up;
    size_t len = live ? sizeof ok - 1 : draining ? sizeof down - 1 : sizeof up - 1;
    if (stream_respond(st, draining ? 503 : 200, h, 2, head) == 0 && !head)
        stream_send(st, body, len, true, NULL, NULL);
    return true;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void health_shutdown_delay(server *srv, const sigset_t *sigs)
{
    atomic_store(&srv->unready, true);
    uint32_t delay = srv->cfg.shutdown_delay_ms;
    if (delay == 0 || atomic_load(&srv->stop))
        return;
    log_msg(LOG_INFO, -1, "readiness 503; serving %u ms more before draining", delay);
    uint64_t end = mono_ms() + delay;
    for (uint64_t now = mono_ms(); now < end && !atomic_load(&srv->stop); now = mono_ms()) {
        uint64_t left = end - now < 100 ? end - now : 100;
        struct timespec tick = {0, (long)left * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            log_msg(LOG_INFO, -1, "second stop signal: draining now");
            return;
        }
    }
}
