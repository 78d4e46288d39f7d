/* fuzz_conn - arbitrary bytes into a server-side h2_conn, with a scripted
 * application answering every request, so the receive state machine, HPACK,
 * stream states, flow control and the lazy DATA framing all get exercised.
 *
 * Input layout: byte 0 picks how input is split across h2_conn_recv calls
 * and how large output pulls are; byte 1 picks limits (tiny or default);
 * the rest follows a valid client preface + empty SETTINGS (prepended here,
 * so the fuzzer starts past the preface check).  Invariants checked:
 * release callbacks run exactly once per chunk, nothing leaks (ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2_conn.h"

static const uint8_t body[40000];
static size_t released, queued;

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

static void act(h2_conn *c, const h2_event *ev, unsigned seed)
{
    static const hpack_field ct = {
        (const uint8_t *)"content-type", (const uint8_t *)"text/plain", 12, 10, 0, 0};
    static const hpack_field tr = {(const uint8_t *)"x-t", (const uint8_t *)"1", 3, 1, 0, 0};
    uint32_t sid = ev->stream_id;
    switch (ev->type) {
    case H2_EV_REQUEST:
        switch (seed % 5) {
        case 0:
            h2_conn_respond(c, sid, 200, &ct, 1, true);
            h2_conn_stream_detach(c, sid);
            break;
        case 1:
            h2_conn_respond(c, sid, 103, &ct, 1, false);
            h2_conn_respond(c, sid, 200, &ct, 1, false);
            queued++;
            h2_conn_send_data(c, sid, body, sizeof body, false, on_release, NULL);
            h2_conn_send_trailers(c, sid, &tr, 1);
            break;
        case 2:
            h2_conn_respond(c, sid, 200, NULL, 0, false);
            queued++;
            h2_conn_send_data(c, sid, body, 100, true, on_release, NULL);
            break;
        case 3:
            h2_conn_reset_stream(c, sid, H2_CANCEL);
            h2_conn_stream_detach(c, sid);
            break;
        default: break; /* answered later, or never */
        }
        break;
    case H2_EV_DATA:
        h2_conn_consume(c, sid, ev->u.data.len);
        if (ev->end_stream)
            h2_conn_stream_detach(c, sid);
        break;
    case H2_EV_TRAILERS:
    case H2_EV_STREAM_RESET: h2_conn_stream_detach(c, sid); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0], lim = data[1];
    data += 2;
    size -= 2;
    h2_limits l = *h2_limits_default();
    if (lim & 1) {
        l.max_concurrent_streams = 3;
        l.initial_window_size = 100;
        l.max_header_list_size = 1024;
        l.max_header_fields_soft = 8;
        l.max_header_fields_hard = 16;
        l.max_continuations = 2;
        l.max_header_block = 1024;
        l.glitch_burst = 20;
        l.reset_burst = 5;
        l.max_pending_control = 4;
        l.max_requests = 4;
        l.reset_memory = 2;
        l.max_unsent_output = 16384;
    }
    h2_ctx x;
    if (h2_ctx_init(&x, &l, NULL) != H2_OK)
        return 0;
    released = queued = 0;
    uint64_t now = 1000;
    h2_conn *c = h2_conn_new(&x, now);
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    size_t split = (size_t)(mode & 0x0f) + 1;      /* bytes per recv call, or all */
    size_t pull = ((size_t)(mode >> 4) + 1) * 700; /* output bytes per pull */
    unsigned seed = mode;
    const uint8_t *in[2] = {preface, data};
    size_t inlen[2] = {sizeof preface - 1, size};
    for (int part = 0; part < 2 && c; part++) {
        const uint8_t *p = in[part];
        size_t n = inlen[part];
        while (n) {
            size_t chunk = (mode & 0x80) ? n : (split < n ? split : n);
            size_t used = 0;
            h2_event ev;
            h2_rv rv = h2_conn_recv(c, p, chunk, now, &used, &ev);
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
            if (rv != H2_OK)
                break;
            if (used == 0 && ev.type == H2_EV_NONE)
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
