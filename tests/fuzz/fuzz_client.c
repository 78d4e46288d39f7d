/* fuzz_client - arbitrary bytes from a "server" into a client-side h2_conn
 * (proto/h2_client.h), with an application that opens requests (some with
 * bodies by reference and trailers), consumes bodies (some in two halves:
 * the connection's window, then the stream's or never), finishes streams and
 * cancels some, so response parsing, 1xx, trailers, GOAWAY refusals, flow
 * control and the shared limits all get exercised from the client side.
 *
 * Input layout: byte 0 picks how input is split across h2_client_recv
 * calls and how large output pulls are; byte 1 picks limits (tiny or
 * default); byte 2 how many requests open before any input; the rest
 * follows an empty server SETTINGS and a SETTINGS ACK (prepended here, so
 * the fuzzer starts past the preface check).  Invariants checked (abort):
 * release callbacks run exactly once per chunk; no DATA or trailers on a
 * stream before its final response head; no event after a stream ended;
 * response statuses within 100..599; nothing leaks (ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2_client.h"

static const uint8_t body[70000];
static size_t released, queued;

enum { ST_OPEN = 1, ST_FINAL = 2, ST_ENDED = 4 };
static uint8_t st[1024]; /* by stream id >> 1, ids below 2048 */

static void on_release(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    released++;
}

static void drain(h2_conn *c, size_t pull, uint64_t now)
{
    static uint8_t out[1 << 16];
    for (int i = 0; i < 64 && h2_conn_want_write(c); i++)
        if (h2_conn_send(c, out, pull, now) == 0)
            break;
}

static void open_request(h2_conn *c, unsigned seed)
{
    static const hpack_field ua = {
        (const uint8_t *)"user-agent", (const uint8_t *)"fuzz", 10, 4, 0, 0};
    static const hpack_field tr = {(const uint8_t *)"x-sum", (const uint8_t *)"1", 5, 1, 0, 0};
    const char *m = seed % 3 == 0 ? "POST" : seed % 3 == 1 ? "GET" : "HEAD";
    h2_client_req r = {{(const uint8_t *)m, (uint32_t)strlen(m)},
                       {(const uint8_t *)"http", 4},
                       {(const uint8_t *)"fuzz.test", 9},
                       {(const uint8_t *)"/x", 2},
                       &ua,
                       1};
    bool post = seed % 3 == 0;
    uint32_t sid;
    if (h2_client_request(c, &r, !post, NULL, &sid) != H2_OK)
        return;
    if (sid >> 1 < sizeof st)
        st[sid >> 1] = ST_OPEN;
    if (!post)
        return;
    queued++;
    h2_conn_send_data(c, sid, body, (seed & 4) ? sizeof body : 10, (seed & 8) != 0, on_release,
                      NULL);
    if (!(seed & 8))
        h2_conn_send_trailers(c, sid, &tr, 1);
}

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void ended(h2_conn *c, uint32_t sid)
{
    if (sid >> 1 < sizeof st)
        st[sid >> 1] |= ST_ENDED;
    h2_client_stream_done(c, sid);
}

static void act(h2_conn *c, const h2_event *ev, unsigned seed)
{
    uint32_t sid = ev->stream_id;
    uint8_t *s = sid && (sid >> 1) < sizeof st ? &st[sid >> 1] : NULL;
    switch (ev->type) {
    case H2_EV_RESPONSE:
        check(ev->u.response.status >= 100 && ev->u.response.status <= 599);
        check(!s || ((*s & ST_OPEN) && !(*s & (ST_FINAL | ST_ENDED))));
        if (ev->u.response.status >= 200 && s)
            *s |= ST_FINAL;
        if (ev->end_stream)
            ended(c, sid);
        else if (seed % 7 == 0)
            ended(c, sid); /* cancel mid-response */
        break;
    case H2_EV_DATA:
        check(!s || ((*s & ST_FINAL) && !(*s & ST_ENDED)));
        if (seed % 5 == 1) {
            /* A paused upstream call: the connection credited now, the
             * stream later or (seed & 8 clear) never. */
            h2_conn_consume_conn(c, sid, ev->u.data.len);
            if (seed & 8)
                h2_conn_consume_stream(c, sid, ev->u.data.len);
        } else {
            h2_conn_consume(c, sid, ev->u.data.len);
        }
        if (ev->end_stream)
            ended(c, sid);
        break;
    case H2_EV_TRAILERS:
        check(!s || ((*s & ST_FINAL) && !(*s & ST_ENDED)));
        ended(c, sid);
        break;
    case H2_EV_STREAM_RESET:
        check(!s || !(*s & ST_ENDED));
        ended(c, sid);
        break;
    default: break;
    }
    if (seed % 3 == 0)
        open_request(c, seed >> 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t mode = data[0], lim = data[1], nreq = data[2] & 15;
    data += 3;
    size -= 3;
    h2_limits l = *h2_limits_default();
    if (lim & 1) {
        l.max_concurrent_streams = 3;
        l.initial_window_size = 100;
        l.connection_window = 65535;
        l.max_header_list_size = 1024;
        l.max_header_fields_soft = 8;
        l.max_header_fields_hard = 16;
        l.max_continuations = 2;
        l.max_header_block = 1024;
        l.glitch_burst = 20;
        l.reset_burst = 5;
        l.max_pending_control = 4;
        l.reset_memory = 2;
        l.max_unsent_output = 16384;
    }
    h2_ctx x;
    if (h2_ctx_init(&x, &l, NULL) != H2_OK)
        return 0;
    released = queued = 0;
    memset(st, 0, sizeof st);
    uint64_t now = 1000;
    h2_conn *c = h2_client_new(&x, now);
    if (!c) {
        h2_ctx_free(&x);
        return 0;
    }
    unsigned seed = mode;
    for (unsigned i = 0; i < nreq; i++)
        open_request(c, seed + i);
    static const uint8_t hello[] = "\0\0\0\4\0\0\0\0\0"
                                   "\0\0\0\4\1\0\0\0\0";
    size_t split = (size_t)(mode & 0x0f) + 1;
    size_t pull = ((size_t)(mode >> 4) + 1) * 700;
    const uint8_t *in[2] = {hello, data};
    size_t inlen[2] = {sizeof hello - 1, size};
    bool dead = false;
    for (int part = 0; part < 2 && !dead; part++) {
        const uint8_t *p = in[part];
        size_t n = inlen[part];
        for (;;) {
            size_t chunk = (mode & 0x80) ? n : (split < n ? split : n);
            size_t used = 0;
            h2_event ev;
            h2_rv rv = h2_client_recv(c, p, chunk, now, &used, &ev);
            p += used;
            n -= used;
            if (ev.type != H2_EV_NONE)
                act(c, &ev, seed++);
            if (rv == H2_E_AGAIN) {
                drain(c, pull, now);
                if (!h2_conn_want_read(c))
                    break;
                continue;
            }
            if (rv != H2_OK) {
                dead = true;
                break;
            }
            if (used == 0 && ev.type == H2_EV_NONE && n == 0)
                break;
            now += 3;
            if ((seed & 7) == 0)
                drain(c, pull, now);
        }
    }
    drain(c, pull, now);
    h2_conn_tick(c, now + 100000);
    h2_conn_free(c);
    h2_ctx_free(&x);
    if (released != queued)
        abort(); /* every chunk released exactly once */
    return 0;
}
