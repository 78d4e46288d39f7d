/* fuzz_h1 - arbitrary bytes into a server-side h1_conn, with a scripted
 * application answering every request (immediately, at the end of its body,
 * with 1xx/chunked/trailers/HEAD/upgrade/reset/shutdown variants), so the scanner,
 * the request rules, the body state machine, pipelining and the output
 * segments all get exercised.
 *
 * Input layout: byte 0 picks how input is split across h1_conn_recv calls
 * and how large output pulls are; byte 1 picks limits (tiny or default) and
 * the application's policy seed; the rest is what the client sends.
 * Invariants checked:
 *  - release callbacks run exactly once per queued chunk; nothing leaks (ASan);
 *  - the output is the same whether input comes whole or in pieces and
 *    output is pulled whole or in pieces (the application acts only on
 *    boundary-independent events);
 *  - every response the codec writes starts with "HTTP/1.1 " followed by a
 *    3-digit status;
 *  - a connection that failed on input is done once its output is flushed,
 *    unless delivered requests are still unanswered;
 *  - with policy bit 0x10 the client half-closes after its input
 *    (h1_conn_recv_eof): once the output is flushed and nothing is in
 *    flight the connection is done (or upgraded).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h1_conn.h"

static const uint8_t body[3000];
static size_t released, queued;

static void on_release(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    released++;
}

typedef struct out_buf {
    uint8_t *p;
    size_t len, cap;
} out_buf;

static void out_add(out_buf *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 4096;
        o->p = realloc(o->p, o->cap);
        if (!o->p)
            abort();
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

static void drain(h1_conn *c, size_t pull, uint64_t now, out_buf *o)
{
    static uint8_t buf[1 << 16];
    for (int i = 0; i < 100000 && h1_conn_want_write(c); i++) {
        size_t n = h1_conn_send(c, buf, pull, now);
        if (n == 0)
            abort(); /* want_write without output */
        out_add(o, buf, n);
    }
}

static void queue(h1_conn *c, uint32_t id, size_t len, bool end)
{
    queued++;
    h1_conn_send_data(c, id, body, len, end, on_release, NULL);
}

/* Answer request id according to the policy (only from REQUEST and
 * end-of-body events, which do not depend on how input was split). */
static void answer(h1_conn *c, uint32_t id, unsigned policy, const h1_request *rq)
{
    static const hpack_field tr = {(const uint8_t *)"x-t", (const uint8_t *)"1", 3, 1, 0, 0};
    static const hpack_field cl = {
        (const uint8_t *)"content-length", (const uint8_t *)"100", 14, 3, 0, 0};
    switch ((policy + id) % 7) {
    case 0: h1_conn_respond(c, id, 204, NULL, 0, true); break;
    case 1:
        h1_conn_respond(c, id, 103, &tr, 1, false);
        h1_conn_respond(c, id, 200, NULL, 0, false);
        queue(c, id, 1000, false);
        h1_conn_send_trailers(c, id, &tr, 1);
        break;
    case 2:
        h1_conn_respond(c, id, 200, &cl, 1, false);
        queue(c, id, 60, false);
        queue(c, id, 40, true);
        break;
    case 3:
        if (rq && rq->upgrade != H1_UPGRADE_NONE)
            h1_conn_upgrade(c, id, NULL, 0);
        else
            h1_conn_respond(c, id, 200, NULL, 0, true);
        break;
    case 4: h1_conn_reset(c, id); break;
    case 5:
        h1_conn_respond(c, id, 200, &cl, 1, false);
        queue(c, id, 30, true); /* short: closes */
        break;
    default:
        h1_conn_respond(c, id, 500, NULL, 0, false);
        queue(c, id, 0, true);
        break;
    }
}

static void act(h1_conn *c, const h1_event *ev, unsigned policy)
{
    bool at_head = (policy >> 3) & 1;
    switch (ev->type) {
    case H1_EV_REQUEST:
        if (ev->id == 2 && (policy & 0x40))
            h1_conn_shutdown(c); /* graceful: requests 1 and 2 are still answered */
        if (ev->u.request.head.expect_continue && (policy & 0x20))
            h1_conn_respond(c, ev->id, 100, NULL, 0, false);
        if (at_head || ev->end_stream)
            answer(c, ev->id, policy, &ev->u.request);
        break;
    case H1_EV_DATA:
    case H1_EV_TRAILERS:
        if (ev->end_stream && !at_head)
            answer(c, ev->id, policy, NULL);
        break;
    default: break;
    }
}

/* One run; returns the output (caller frees). */
static out_buf run(h1_ctx *x, const uint8_t *data, size_t size, size_t split, size_t pull,
                   unsigned policy)
{
    out_buf o = {0};
    uint64_t now = 1000;
    h1_conn *c = h1_conn_new(x, false, now);
    if (!c)
        abort();
    const uint8_t *p = data;
    size_t n = size;
    bool failed = false;
    while (n) {
        size_t chunk = split < n ? split : n, used = 0;
        h1_event ev;
        h2_rv rv = h1_conn_recv(c, p, chunk, now, &used, &ev);
        if (used > chunk)
            abort();
        p += used;
        n -= used;
        if (ev.type != H1_EV_NONE)
            act(c, &ev, policy);
        if (rv == H2_E_AGAIN) {
            drain(c, pull, now, &o);
            if (!h1_conn_want_read(c))
                break;
            continue;
        }
        if (rv == H2_E_PROTO)
            failed = true;
        if (rv != H2_OK)
            break;
        if (used == 0 && ev.type == H1_EV_NONE)
            abort(); /* no progress on non-empty input */
    }
    bool eof = false;
    if (!failed && (policy & 0x10)) {
        h1_event ev;
        eof = h1_conn_recv_eof(c, &ev) == H2_OK;
        if (ev.type != H1_EV_NONE && ev.type != H1_EV_RESET)
            abort(); /* EOF reports nothing but a reset */
    }
    drain(c, pull, now, &o);
    if (failed && !h1_conn_is_done(c) && h1_conn_in_flight(c) == 0)
        abort();
    if (eof && !h1_conn_is_done(c) && !h1_conn_is_upgraded(c) && h1_conn_in_flight(c) == 0)
        abort();
    h1_conn_tick(c, now + 1000000);
    h1_conn_free(c);
    return o;
}

static void check_status_lines(const out_buf *o)
{
    if (o->len == 0)
        return;
    if (o->len < 12 || memcmp(o->p, "HTTP/1.1 ", 9) != 0)
        abort();
    for (int i = 9; i < 12; i++)
        if (o->p[i] < '0' || o->p[i] > '9')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0], lim = data[1];
    data += 2;
    size -= 2;
    /* Two contexts (default and tiny limits), made once: a context is
     * per-thread state that outlives its connections. */
    static h1_limits tiny;
    static h1_ctx ctx[2];
    static bool ready;
    if (!ready) {
        tiny = *h1_limits_default();
        tiny.max_request_line = 64;
        tiny.max_field_line = 64;
        tiny.max_fields = 4;
        tiny.max_head = 256;
        tiny.max_chunk_line = 32;
        tiny.max_body = 100;
        tiny.max_pipelined = 2;
        tiny.max_requests = 3;
        tiny.max_unsent_output = 16384;
        if (h1_ctx_init(&ctx[0], NULL, NULL) != H2_OK || h1_ctx_init(&ctx[1], &tiny, NULL) != H2_OK)
            abort();
        h1_ctx_set_time(&ctx[0], 1700000000);
        h1_ctx_set_time(&ctx[1], 1700000000);
        ready = true;
    }
    h1_ctx *x = &ctx[lim & 1];
    unsigned policy = lim >> 1;
    size_t split = (size_t)(mode & 0x0f) + 1;
    size_t pull = ((size_t)(mode >> 4) + 1) * 97;
    released = queued = 0;
    out_buf a = run(x, data, size, size ? size : 1, 1 << 16, policy);
    out_buf b = run(x, data, size, split, pull, policy);
    if (released != queued)
        abort(); /* every chunk released exactly once */
    check_status_lines(&a);
    if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0))
        abort(); /* output depends on how input or output was split */
    free(a.p);
    free(b.p);
    return 0;
}
