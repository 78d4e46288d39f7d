/* micro_h1.c - the HTTP/1.1 codec (proto/h1_*) driven in memory.
 *
 *   h1/parse       h1_scan_feed + h1_parse_request of a typical browser
 *                  request (13 fields, ~480 bytes), per request
 *   h1/cycle_1     one request in (h1_conn_recv), a 200 with a 13-byte body
 *                  by reference out (respond + send_data + prepare/commit)
 *   h1/cycle_p16   16 pipelined requests per input buffer (wrk's pipelining)
 */
#include <string.h>
#include <sys/uio.h>

#include "h1_conn.h"
#include "micro.h"

static const char REQ[] =
    "GET /assets/app.js?v=123 HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://www.example.com/\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=0123456789abcdef; theme=dark\r\n"
    "Sec-Fetch-Dest: script\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "\r\n";

typedef struct h1_state {
    h1_ctx x;
    h1_conn *c;
    uint8_t in[16 * sizeof REQ];
    size_t in_len;
    uint32_t per_buf;
    uint64_t reconnects; /* every limits->max_requests requests */
    uint8_t scratch[sizeof REQ];
    hpack_field fields[100];
} h1_state;

static uint64_t run_parse(void *arg, uint64_t n)
{
    h1_state *st = arg;
    uint64_t acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        h1_scan sc;
        h1_scan_state s;
        h1_err err;
        h1_request rq;
        h1_scan_init(&sc, false);
        size_t k = h1_scan_feed(&sc, st->x.limits, (const uint8_t *)REQ, sizeof REQ - 1, &s, &err);
        memcpy(st->scratch, REQ, k);
        h1_parse_request(st->scratch, (uint32_t)k, st->x.limits, false, st->fields, &rq);
        acc += rq.head.nfields + rq.head.path.len;
    }
    bench_keep(acc);
    return 0;
}

static const hpack_field CT = {
    (const uint8_t *)"content-type", (const uint8_t *)"text/plain", 12, 10, 0, 0};
static const hpack_field CL = {
    (const uint8_t *)"content-length", (const uint8_t *)"13", 14, 2, 0, 0};

static uint64_t run_cycle(void *arg, uint64_t n)
{
    h1_state *st = arg;
    const hpack_field f[2] = {CT, CL};
    struct iovec iov[64];
    for (uint64_t i = 0; i < n; i += st->per_buf) {
        if (h1_conn_is_done(st->c)) { /* max_requests reached: a new connection */
            h1_conn_free(st->c);
            st->c = h1_conn_new(&st->x, false, 1);
            st->reconnects++;
        }
        size_t off = 0;
        while (off < st->in_len) {
            size_t used;
            h1_event ev;
            h2_rv rv = h1_conn_recv(st->c, st->in + off, st->in_len - off, 1, &used, &ev);
            off += used;
            if (ev.type == H1_EV_REQUEST) {
                h1_conn_respond(st->c, ev.id, 200, f, 2, false);
                h1_conn_send_data(st->c, ev.id, (const uint8_t *)"Hello, world!", 13, true, NULL,
                                  NULL);
            }
            if (rv != H2_OK)
                break;
        }
        size_t k;
        while ((k = h1_conn_out_prepare(st->c, iov, 64, 256u << 10)) > 0) {
            size_t bytes = 0;
            for (size_t j = 0; j < k; j++)
                bytes += iov[j].iov_len;
            h1_conn_out_commit(st->c, bytes, 1);
        }
    }
    return 0;
}

void micro_h1(bench *b)
{
    static h1_state st;
    if (h1_ctx_init(&st.x, NULL, NULL) != H2_OK)
        return;
    h1_ctx_set_time(&st.x, 1700000000);
    bench_opts po = {.unit = "request", .bytes_per_op = sizeof REQ - 1};
    bench_run(b, "h1/parse", run_parse, &st, &po);

    st.c = h1_conn_new(&st.x, false, 1);
    memcpy(st.in, REQ, sizeof REQ - 1);
    st.in_len = sizeof REQ - 1;
    st.per_buf = 1;
    bench_opts co = {.unit = "request"};
    bench_run(b, "h1/cycle_1", run_cycle, &st, &co);
    for (int i = 0; i < 16; i++)
        memcpy(st.in + (size_t)i * (sizeof REQ - 1), REQ, sizeof REQ - 1);
    st.in_len = 16 * (sizeof REQ - 1);
    st.per_buf = 16;
    bench_run(b, "h1/cycle_p16", run_cycle, &st, &co);
    h1_conn_free(st.c);
    h1_ctx_free(&st.x);
}
