/* grpc.c - spindle-proxy's gRPC unary route: POST /_grpc/<Service>/<Method>
 * with the raw request message as body becomes a gRPC call of
 * /<Service>/<Method> on the origin (HTTP/2, content-type
 * application/grpc, te: trailers, the message behind gRPC's 5-byte
 * prefix: a compressed flag and a big-endian length).  The answer: 200
 * with the reply message (prefix removed) and x-grpc-status /
 * x-grpc-message copied from the origin's trailers (or from its head, for
 * a trailers-only reply); 502 when the call fails below gRPC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define GRPC_PREFIX "/_grpc/"

bool grpc_route(const spindle_request *r, px_stream *st)
{
    size_t lp = strlen(GRPC_PREFIX);
    if (r->path.len <= lp || memcmp(r->path.ptr, GRPC_PREFIX, lp) != 0 ||
        r->path.len - lp + 1 >= sizeof st->path)
        return false;
    st->grpc = true;
    st->path[0] = '/';
    memcpy(st->path + 1, r->path.ptr + lp, r->path.len - lp);
    st->path[r->path.len - lp + 1] = 0;
    return true;
}

static void take_status(px_stream *g, const spindle_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *dst = NULL;
        size_t cap = 0;
        if (h[i].name_len == 11 && memcmp(h[i].name, "grpc-status", 11) == 0) {
            dst = g->status;
            cap = sizeof g->status;
            g->got_status = true;
        } else if (h[i].name_len == 12 && memcmp(h[i].name, "grpc-message", 12) == 0) {
            dst = g->message;
            cap = sizeof g->message;
        }
        if (dst) {
            size_t k = h[i].value_len < cap - 1 ? h[i].value_len : cap - 1;
            memcpy(dst, h[i].value, k);
            dst[k] = 0;
        }
    }
}

static void g_response(spindle_call *call, const spindle_response *r, void *ctx)
{
    (void)call;
    px_stream *g = ctx;
    g->len = 0;                              /* the request buffer now collects the reply */
    take_status(g, r->headers, r->nheaders); /* trailers-only replies */
}

static void g_data(spindle_call *call, const uint8_t *data, size_t len, bool end, void *ctx)
{
    (void)end;
    px_stream *g = ctx;
    if (!px_append(g, data, len))
        spindle_call_cancel(call);
}

static void g_trailers(spindle_call *call, const spindle_header *h, size_t n, void *ctx)
{
    (void)call;
    take_status(ctx, h, n);
}

static void g_done(spindle_call *call, int err, uint32_t code, void *ctx)
{
    (void)call;
    px_stream *g = ctx, *st = g;
    st->call = NULL;
    spindle_stream *s = spindle_handle_stream(st->h);
    if (!s)
        return;
    if (err != 0 || !g->got_status) {
        char msg[160];
        snprintf(msg, sizeof msg, "grpc call failed: %s (h2 code %u)\n",
                 err ? spindle_strerror(err) : "no grpc-status", code);
        px_answer(s, 502, msg);
        return;
    }
    /* The reply: one message behind its 5-byte prefix (none on an error). */
    size_t off = st->len >= 5 ? 5 : st->len;
    spindle_header h[] = {{"content-type", "application/octet-stream", 0, 0},
                          {"x-grpc-status", g->status, 0, 0},
                          {"x-grpc-message", g->message, 0, 0}};
    if (spindle_respond(s, 200, h, g->message[0] ? 3 : 2, false) == 0)
        spindle_send_copy(s, st->buf + off, st->len - off, true);
}

static const spindle_call_handler grpc_handler = {g_response, g_data, g_trailers, g_done};

void grpc_start(spindle_stream *s, px_stream *st)
{
    if (st->call)
        return;
    uint8_t *msg = malloc(st->len + 5);
    if (!msg) {
        px_answer(s, 500, "out of memory\n");
        return;
    }
    uint32_t n = (uint32_t)st->len;
    msg[0] = 0; /* not compressed */
    msg[1] = (uint8_t)(n >> 24);
    msg[2] = (uint8_t)(n >> 16);
    msg[3] = (uint8_t)(n >> 8);
    msg[4] = (uint8_t)n;
    if (st->len)
        memcpy(msg + 5, st->buf, st->len);
    static const spindle_header h[] = {{"content-type", "application/grpc", 0, 0},
                                       {"te", "trailers", 0, 0}};
    spindle_call_req req = {.method = "POST",
                            .path = st->path,
                            .headers = h,
                            .nheaders = 2,
                            .body = msg,
                            .body_len = st->len + 5};
    int rc = spindle_call_start(px_upstream(), &req, &grpc_handler, st, &st->call);
    free(msg); /* copied */
    if (rc != 0)
        px_answer(s, 502, "grpc call refused\n");
}
