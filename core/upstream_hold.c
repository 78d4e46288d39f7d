/* upstream_hold.c - response backpressure for upstream calls:
 * spindle_call_pause() and spindle_call_resume() (include/spindle.h).
 *
 * A paused call's response body is not delivered: the bytes the engine
 * hands us meanwhile are copied into the call (rbuf) and only the
 * connection's window is credited for them (h2_conn_consume_conn), so the
 * pooled connection's other streams keep flowing while the call's stream
 * window stays closed.  The origin can therefore send a paused stream at
 * most one initial window (SETTINGS_INITIAL_WINDOW_SIZE, the shard's
 * limits.initial_window_size) beyond what the application took: that bounds
 * rbuf.  This is nghttp2's consume_connection/consume_stream split and h2o's
 * per-stream buffer of its HTTP/2 client.
 *
 * Trailers and the response's end that come while held are kept too; a
 * response that ended leaves its connection at once (the origin's stream is
 * closed: its room serves other calls) and waits on u->held until resume.
 * Resume delivers from the loop (a 0 ms shard timer), never inside the
 * application's call: the held bytes in one on_data, the stream's window
 * reopened, then trailers and on_done.  Failures are not held: a reset, a
 * lost connection or a time-out end the call at once, dropping what it held.
 *
 * Everything runs on the upstream's shard thread.
 */
#include <stdlib.h>
#include <string.h>

#include "shard.h"
#include "upstream.h"

uint64_t up_hold_paused_ms(const spindle_call *call, uint64_t now_ms)
{
    uint64_t t = call->paused_total;
    if (call->paused && now_ms > call->paused_ms)
        t += now_ms - call->paused_ms;
    return t;
}

static void held_account(spindle_call *call, size_t add)
{
    spindle_upstream *u = call->u;
    u->held_bytes += add;
    if (call->rlen > u->held_peak)
        u->held_peak = call->rlen;
}

int up_hold_data(spindle_call *call, h2_conn *h2, const uint8_t *data, size_t len)
{
    if (call->rlen + len > call->rcap) {
        size_t cap = call->rcap ? call->rcap : 16384;
        while (cap < call->rlen + len)
            cap *= 2;
        uint8_t *p = realloc(call->rbuf, cap);
        if (!p)
            return SPINDLE_ENOMEM;
        call->rbuf = p;
        call->rcap = cap;
    }
    if (len)
        memcpy(call->rbuf + call->rlen, data, len);
    call->rlen += len;
    call->rstream += len;
    held_account(call, len);
    (void)h2_conn_consume_conn(h2, call->sid, len);
    return 0;
}

int up_hold_trailers(spindle_call *call, const hpack_field *f, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += f[i].name_len + f[i].value_len;
    hpack_field *t = calloc(1, n * sizeof *t + bytes + 1);
    if (!t)
        return SPINDLE_ENOMEM;
    uint8_t *p = (uint8_t *)(t + n);
    for (size_t i = 0; i < n; i++) {
        t[i] = f[i];
        t[i].name = memcpy(p, f[i].name, f[i].name_len);
        p += f[i].name_len;
        t[i].value = f[i].value_len ? memcpy(p, f[i].value, f[i].value_len) : p;
        p += f[i].value_len;
    }
    call->rtr = t;
    call->nrtr = n;
    return 0;
}

void up_hold_end(up_conn *c, spindle_call *call, uint8_t rend)
{
    spindle_upstream *u = call->u;
    up_conn_call_done(c, call);
    call->rend = rend;
    call->rstream = 0; /* the stream is closed: no window to reopen */
    call->held_done = true;
    call->prev = NULL;
    call->next = u->held;
    if (u->held)
        u->held->prev = call;
    u->held = call;
}

void up_hold_unlink(spindle_call *call)
{
    if (!call->held_done)
        return;
    spindle_upstream *u = call->u;
    if (call->prev)
        call->prev->next = call->next;
    else
        u->held = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
    call->held_done = false;
}

void up_hold_free(spindle_call *call)
{
    if (call->rtimer) {
        spindle_timer_cancel(call->rtimer);
        call->rtimer = NULL;
    }
    call->u->held_bytes -= call->rlen;
    free(call->rbuf);
    free(call->rtr);
    call->rbuf = NULL;
    call->rtr = NULL;
    call->rlen = call->rcap = 0;
}

/* --- Delivery --------------------------------------------------------------- */

/* The held bytes in one on_data; false when the call is gone. */
static bool deliver_data(spindle_call *call)
{
    size_t n = call->rlen;
    bool end = call->rend == UP_REND_DATA;
    if (!n && !end)
        return true;
    if (call->c && call->rstream) {
        /* Reopen the stream's window (the WINDOW_UPDATE goes out from the
         * loop's flush of the connection). */
        (void)h2_conn_consume_stream(up_conn_h2(call->c), call->sid, call->rstream);
        up_pool_kick(call->u);
    }
    call->rstream = 0;
    if (call->h.on_data) {
        if (!up_call_cb_begin(call))
            return false;
        call->h.on_data(call, call->rbuf, n, end, call->ctx);
        if (!up_call_cb_end(call))
            return false;
    }
    call->u->held_bytes -= n;
    call->rlen = 0; /* nothing arrives during the callback: the shard's thread */
    if (end)
        call->rend = UP_REND_NONE;
    return true;
}

static void finish_held(spindle_call *call)
{
    up_hold_unlink(call);
    up_call_finish(call, 0, 0);
}

static void deliver_fn(spindle_shard *as, void *arg)
{
    (void)as;
    spindle_call *call = arg;
    call->rtimer = NULL;
    if (call->paused)
        return;
    bool ended_by_data = call->rend == UP_REND_DATA;
    if (!deliver_data(call))
        return;
    if (ended_by_data) {
        finish_held(call);
        return;
    }
    if (call->paused || call->rend != UP_REND_TRAILERS)
        return;
    const spindle_header *h = up_headers(call->u, call->rtr, call->nrtr);
    if (call->h.on_trailers && (h || !call->nrtr)) {
        if (!up_call_cb_begin(call))
            return;
        call->h.on_trailers(call, h, call->nrtr, call->ctx);
        if (!up_call_cb_end(call))
            return;
    }
    finish_held(call);
}

/* --- The API -------------------------------------------------------------------- */

void spindle_call_pause(spindle_call *call)
{
    if (!call || call->paused)
        return;
    call->paused = true;
    call->paused_ms = up_now_ms(call->u);
}

void spindle_call_resume(spindle_call *call)
{
    if (!call || !call->paused)
        return;
    uint64_t now = up_now_ms(call->u);
    call->paused_total += now > call->paused_ms ? now - call->paused_ms : 0;
    call->paused = false;
    if ((call->rlen || call->rend) && !call->rtimer)
        (void)spindle_shard_after(call->u->as, 0, deliver_fn, call, &call->rtimer);
}
