/* h1_conn.c - the HTTP/1.1 server connection: context, lifecycle, the
 * receive state machine and timers.  Responses and output are h1_out.c;
 * the shared structures h1_internal.h.  See h1_conn.h for the contract and
 * docs/h1.md for the design. */
#include "h1_conn.h"

#include <string.h>

#include "h1_internal.h"

/* --- Context ------------------------------------------------------------------ */

h2_rv h1_ctx_init(h1_ctx *x, const h1_limits *limits, const h2_mem *mem)
{
    memset(x, 0, sizeof *x);
    x->limits = limits ? limits : h1_limits_default();
    x->mem = mem ? mem : h2_mem_default();
    x->date_s = -1;
    if (h1_limits_check(x->limits))
        return H2_E_INVAL;
    x->scratch = h2_malloc(x->mem, x->limits->max_head);
    x->fields = h2_malloc(x->mem, sizeof(hpack_field) * x->limits->max_fields);
    if (!x->scratch || !x->fields) {
        h1_ctx_free(x);
        return H2_E_NOMEM;
    }
    return H2_OK;
}

void h1_ctx_free(h1_ctx *x)
{
    h2_free(x->mem, x->scratch);
    h2_free(x->mem, x->fields);
    for (int k = 0; k < 2; k++) {
        while (x->free_segs[k]) {
            h1_seg *s = x->free_segs[k];
            x->free_segs[k] = s->next;
            h2_free(x->mem, s);
        }
        x->nfree_segs[k] = 0;
    }
}

void h1_format_date(int64_t t, char out[H1_DATE_LEN])
{
    static const char wd[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01 was a Thursday */
    static const char mo[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t days = t / 86400, sec = t % 86400;
    if (sec < 0) {
        sec += 86400;
        days--;
    }
    int64_t w = days % 7;
    if (w < 0)
        w += 7;
    /* Civil from days (H. Hinnant). */
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    char *o = out;
    memcpy(o, wd + 3 * w, 3);
    o[3] = ',';
    o[4] = ' ';
    o[5] = (char)('0' + d / 10);
    o[6] = (char)('0' + d % 10);
    o[7] = ' ';
    memcpy(o + 8, mo + 3 * (m - 1), 3);
    o[11] = ' ';
    int64_t yy = y < 0 ? 0 : y % 10000;
    for (int i = 15; i >= 12; i--, yy /= 10)
        o[i] = (char)('0' + yy % 10);
    o[16] = ' ';
    int64_t hh = sec / 3600, mm = sec / 60 % 60, ss = sec % 60;
    o[17] = (char)('0' + hh / 10);
    o[18] = (char)('0' + hh % 10);
    o[19] = ':';
    o[20] = (char)('0' + mm / 10);
    o[21] = (char)('0' + mm % 10);
    o[22] = ':';
    o[23] = (char)('0' + ss / 10);
    o[24] = (char)('0' + ss % 10);
    memcpy(o + 25, " GMT", 4);
}

void h1_ctx_set_time(h1_ctx *x, int64_t unix_s)
{
    if (unix_s == x->date_s)
        return;
    x->date_s = unix_s;
    h1_format_date(unix_s, x->date);
    x->date[H1_DATE_LEN] = 0;
}

/* Parsing ends on err: queue the error response in order and report. */
static h2_rv fail(h1_conn *c, h1_err err, h1_event *ev)
{
    h1_count(c, err.limit);
    c->fault = h2_fault_conn(H2_PROTOCOL_ERROR, err.reason);
    c->err_status = err.status;
    bool in_body = c->rstate >= R_BODY && c->rstate <= R_TRAILERS;
    c->rstate = R_FAILED;
    c->head_deadline = 0;
    c->upgrade_wait = 0;
    h1_xchg *x = in_body ? h1_xfind(c, c->body_id) : NULL;
    if (in_body && x && x->delivered) {
        ev->type = H1_EV_RESET;
        ev->id = x->id;
        x->body_done = true;
        if (x->state == X_OPEN) {
            x->reset = true;
            if (h1_push_error(c, x, err.status) != H2_OK)
                return H2_E_NOMEM;
        } else {
            x->reset = x->close = true;
            x->state = X_ENDED;
        }
    } else if (!in_body && c->n < c->cap) {
        if (h1_push_error(c, h1_xnew(c), err.status) != H2_OK)
            return H2_E_NOMEM;
    } else {
        c->shutdown = true; /* no slot: close after what is in flight */
    }
    h1_retire(c);
    return H2_E_PROTO;
}

/* --- Lifecycle ------------------------------------------------------------------ */

h1_conn *h1_conn_new(h1_ctx *x, bool tls, uint64_t now_ms)
{
    h1_conn *c = h2_malloc(x->mem, sizeof *c);
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->x = x;
    c->cap = x->limits->max_pipelined + 1; /* +1: the codec's own error response */
    c->ring = h2_malloc(x->mem, sizeof(h1_xchg) * c->cap);
    if (!c->ring) {
        h2_free(x->mem, c);
        return NULL;
    }
    c->tls = tls;
    c->next_id = 1;
    c->now = now_ms;
    if (x->limits->header_timeout_ms)
        c->head_deadline = now_ms + x->limits->header_timeout_ms;
    h1_scan_init(&c->sc, false);
    return c;
}

void h1_conn_free(h1_conn *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n; i++)
        h1_xdrop_segs(c, h1_xat(c, i));
    h2_free(c->x->mem, c->hbuf);
    h2_free(c->x->mem, c->ring);
    h2_free(c->x->mem, c);
}

/* --- Input ------------------------------------------------------------------------ */

static h2_rv hbuf_append(h1_conn *c, const uint8_t *p, size_t n)
{
    if (c->hlen + n > c->hcap) {
        size_t cap = c->hcap ? c->hcap : 512;
        while (cap < c->hlen + n)
            cap *= 2;
        if (cap > c->x->limits->max_head)
            cap = c->x->limits->max_head;
        uint8_t *b = h2_realloc(c->x->mem, c->hbuf, cap);
        if (!b)
            return H2_E_NOMEM;
        c->hbuf = b;
        c->hcap = (uint32_t)cap;
    }
    memcpy(c->hbuf + c->hlen, p, n);
    c->hlen += (uint32_t)n;
    return H2_OK;
}

/* Scan a head or trailer section; on DONE it is in the context scratch. */
static h2_rv scan_section(h1_conn *c, const uint8_t *in, size_t len, size_t *off, h1_scan_state *st,
                          h1_err *err, uint32_t *slen)
{
    size_t k = h1_scan_feed(&c->sc, c->x->limits, in + *off, len - *off, st, err);
    if (*st == H1_SCAN_ERROR)
        return H2_OK;
    if (*st == H1_SCAN_MORE || c->hlen) {
        if (hbuf_append(c, in + *off, k) != H2_OK)
            return H2_E_NOMEM;
    }
    *off += k;
    if (*st != H1_SCAN_DONE)
        return H2_OK;
    if (c->hlen) {
        memcpy(c->x->scratch, c->hbuf, c->hlen);
        h2_free(c->x->mem, c->hbuf);
        c->hbuf = NULL;
        c->hcap = 0;
    } else {
        memcpy(c->x->scratch, in + *off - k, k);
    }
    *slen = c->sc.len;
    c->hlen = 0;
    h1_scan_init(&c->sc, false);
    return H2_OK;
}

/* The request body (or the head, when there is none) has ended. */
static void body_done(h1_conn *c)
{
    h1_xchg *x = h1_xfind(c, c->body_id);
    if (x)
        x->body_done = true;
    /* x may have been answered and retired already */
    bool stop = c->shutdown || (x ? x->close : c->body_close);
    c->rstate = stop ? R_STOP : R_HEAD;
    c->body_total = 0;
    h1_arm_idle(c); /* the response may have been flushed before the body ended */
}

static h2_rv on_head(h1_conn *c, uint32_t len, h1_event *ev)
{
    h1_ctx *x = c->x;
    h1_request *rq = &ev->u.request;
    h1_err err = h1_parse_request(x->scratch, len, x->limits, c->tls, x->fields, rq);
    if (err.status)
        return fail(c, err, ev);
    c->head_deadline = 0;
    c->parsed++;
    if (x->limits->max_requests && c->parsed >= x->limits->max_requests) {
        if (rq->keep_alive)
            h1_count(c, H1_LIMIT_MAX_REQUESTS);
        rq->keep_alive = false;
    }
    if (c->shutdown)
        rq->keep_alive = false;
    h1_xchg *e = h1_xnew(c);
    e->delivered = true;
    e->minor = rq->minor;
    e->head_method = rq->head_method;
    e->te_trailers = rq->te_trailers;
    e->expect_continue = rq->head.expect_continue;
    e->upgrade = (uint8_t)rq->upgrade;
    e->close = !rq->keep_alive;
    c->st.requests++;
    c->body_id = e->id;
    c->body_close = e->close;
    ev->type = H1_EV_REQUEST;
    ev->id = e->id;
    ev->end_stream = !rq->has_body;
    if (rq->upgrade != H1_UPGRADE_NONE)
        c->upgrade_wait = e->id;
    if (rq->chunked) {
        c->rstate = R_CHUNK_LINE;
        h1_chunk_scan_init(&c->cs);
    } else if (rq->has_body) {
        c->rstate = R_BODY;
        c->body_left = (uint64_t)rq->head.content_length;
    } else {
        body_done(c);
    }
    return H2_OK;
}

static h2_rv recv_head(h1_conn *c, const uint8_t *in, size_t len, size_t *off, h1_event *ev)
{
    const h1_limits *l = c->x->limits;
    if (c->upgrade_wait)
        return H2_E_AGAIN;
    if (c->n >= l->max_pipelined) {
        if (!c->paused_pipe)
            h1_count(c, H1_LIMIT_PIPELINED);
        c->paused_pipe = true;
        return H2_E_AGAIN;
    }
    c->paused_pipe = false;
    if (c->unsent >= l->max_unsent_output) {
        if (!c->paused_out)
            h1_count(c, H1_LIMIT_OUTPUT_BACKLOG);
        c->paused_out = true;
        return H2_E_AGAIN;
    }
    c->paused_out = false;
    if (c->sc.len == 0) {
        c->idle_deadline = 0;
        if (!c->head_deadline && l->header_timeout_ms)
            c->head_deadline = c->now + l->header_timeout_ms;
    }
    h1_scan_state st;
    h1_err err;
    uint32_t slen = 0;
    if (scan_section(c, in, len, off, &st, &err, &slen) != H2_OK)
        return H2_E_NOMEM;
    if (st == H1_SCAN_ERROR)
        return fail(c, err, ev);
    if (st == H1_SCAN_MORE)
        return H2_OK;
    return on_head(c, slen, ev);
}

static h2_rv recv_trailers(h1_conn *c, const uint8_t *in, size_t len, size_t *off, h1_event *ev)
{
    h1_scan_state st;
    h1_err err;
    uint32_t slen = 0;
    if (scan_section(c, in, len, off, &st, &err, &slen) != H2_OK)
        return H2_E_NOMEM;
    if (st == H1_SCAN_ERROR)
        return fail(c, err, ev);
    if (st == H1_SCAN_MORE)
        return H2_OK;
    uint32_t n = 0;
    err = h1_parse_trailers(c->x->scratch, slen, c->x->limits, c->x->fields, &n);
    if (err.status)
        return fail(c, err, ev);
    ev->id = c->body_id;
    ev->end_stream = true;
    if (n) {
        ev->type = H1_EV_TRAILERS;
        ev->u.trailers.fields = c->x->fields;
        ev->u.trailers.n = n;
    } else {
        ev->type = H1_EV_DATA;
        ev->u.data.data = NULL;
        ev->u.data.len = 0;
    }
    body_done(c);
    return H2_OK;
}

static h2_rv recv_chunk_line(h1_conn *c, const uint8_t *in, size_t len, size_t *off, h1_event *ev)
{
    const h1_limits *l = c->x->limits;
    h1_scan_state st;
    h1_err err;
    *off += h1_chunk_scan_feed(&c->cs, l, in + *off, len - *off, &st, &err);
    if (st == H1_SCAN_ERROR)
        return fail(c, err, ev);
    if (st == H1_SCAN_MORE)
        return H2_OK;
    uint64_t size = c->cs.size;
    if (size == 0) {
        c->rstate = R_TRAILERS;
        h1_scan_init(&c->sc, true);
        return H2_OK;
    }
    c->body_total += size;
    if (c->body_total > (uint64_t)H2_HTTP_MAX_CONTENT_LENGTH ||
        (l->max_body && c->body_total > l->max_body))
        return fail(c, h1_err_make(413, H1_LIMIT_BODY, "chunked body too large"), ev);
    c->body_left = size;
    c->rstate = R_CHUNK_DATA;
    return H2_OK;
}

static void recv_data(h1_conn *c, const uint8_t *in, size_t len, size_t *off, h1_event *ev)
{
    uint64_t n = len - *off;
    if (n > c->body_left)
        n = c->body_left;
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    ev->type = H1_EV_DATA;
    ev->id = c->body_id;
    ev->u.data.data = in + *off;
    ev->u.data.len = (uint32_t)n;
    *off += n;
    c->body_left -= n;
    ev->end_stream = false;
    if (c->body_left == 0) {
        if (c->rstate == R_BODY) {
            ev->end_stream = true;
            body_done(c);
        } else {
            c->rstate = R_CHUNK_CRLF;
            c->crlf = 0;
        }
    }
}

static h2_rv recv_step(h1_conn *c, const uint8_t *in, size_t len, size_t *off, h1_event *ev)
{
    switch (c->rstate) {
    case R_HEAD: return recv_head(c, in, len, off, ev);
    case R_BODY:
    case R_CHUNK_DATA: recv_data(c, in, len, off, ev); return H2_OK;
    case R_CHUNK_LINE: return recv_chunk_line(c, in, len, off, ev);
    case R_CHUNK_CRLF: {
        uint8_t want = c->crlf == 0 ? '\r' : '\n';
        if (in[*off] != want)
            return fail(c, h1_err_make(400, -1, "chunk data not followed by CRLF"), ev);
        (*off)++;
        if (++c->crlf == 2) {
            c->rstate = R_CHUNK_LINE;
            h1_chunk_scan_init(&c->cs);
        }
        return H2_OK;
    }
    case R_TRAILERS: return recv_trailers(c, in, len, off, ev);
    default: *off = len; return H2_OK; /* R_STOP: input after the last request is ignored */
    }
}

h2_rv h1_conn_recv(h1_conn *c, const uint8_t *in, size_t len, uint64_t now_ms, size_t *consumed,
                   h1_event *ev)
{
    *consumed = 0;
    ev->type = H1_EV_NONE;
    ev->id = 0;
    ev->end_stream = false;
    c->now = now_ms;
    if (c->rstate == R_FAILED || c->rstate == R_UPGRADED || c->done)
        return H2_E_CLOSED;
    size_t off = 0;
    h2_rv rv = H2_OK;
    while (off < len && ev->type == H1_EV_NONE && rv == H2_OK)
        rv = recv_step(c, in, len, &off, ev);
    *consumed = off;
    c->st.bytes_in += off;
    return rv;
}

h2_rv h1_conn_recv_eof(h1_conn *c, h1_event *ev)
{
    ev->type = H1_EV_NONE;
    ev->id = 0;
    ev->end_stream = false;
    if (c->rstate == R_FAILED || c->rstate == R_UPGRADED || c->done)
        return H2_OK; /* already ending */
    if (c->upgrade_wait)
        return H2_E_CLOSED;
    bool in_body = c->rstate >= R_BODY && c->rstate <= R_TRAILERS;
    h1_xchg *x = in_body ? h1_xfind(c, c->body_id) : NULL;
    if (in_body)
        c->rstate = R_STOP;
    if (x && x->delivered && !x->body_done) {
        x->body_done = true;
        ev->type = H1_EV_RESET;
        ev->id = x->id;
        h1_conn_reset(c, x->id);
    }
    h1_conn_shutdown(c);
    return H2_OK;
}

/* --- Timers ------------------------------------------------------------------------ */

uint64_t h1_conn_next_deadline(const h1_conn *c)
{
    uint64_t d = UINT64_MAX;
    if (c->done || c->rstate == R_FAILED || c->rstate == R_UPGRADED)
        return d;
    if (c->head_deadline && c->rstate == R_HEAD && !c->upgrade_wait)
        d = c->head_deadline;
    if (c->idle_deadline && c->idle_deadline < d)
        d = c->idle_deadline;
    return d;
}

h2_rv h1_conn_tick(h1_conn *c, uint64_t now_ms)
{
    c->now = now_ms;
    if (h1_conn_next_deadline(c) > now_ms)
        return H2_OK;
    if (c->idle_deadline && now_ms >= c->idle_deadline && c->n == 0 && c->sc.len == 0) {
        h1_count(c, H1_LIMIT_IDLE_TIMEOUT);
        c->fault = h2_fault_conn(H2_NO_ERROR, "keep-alive idle timeout");
        c->rstate = R_FAILED;
        c->done = true;
        return H2_E_PROTO;
    }
    if (c->head_deadline && now_ms >= c->head_deadline && c->rstate == R_HEAD) {
        if (c->sc.len == 0 && c->n == 0) { /* nothing at all: close quietly */
            h1_count(c, H1_LIMIT_HEADER_TIMEOUT);
            c->fault = h2_fault_conn(H2_NO_ERROR, "no request before the header timeout");
            c->rstate = R_FAILED;
            c->done = true;
            return H2_E_PROTO;
        }
        h1_event ev;
        return fail(c, h1_err_make(408, H1_LIMIT_HEADER_TIMEOUT, "header read timeout"), &ev);
    }
    c->idle_deadline = 0; /* stale (something is in flight) */
    return H2_OK;
}

uint64_t h1_conn_unsent(const h1_conn *c)
{
    return c->unsent;
}

bool h1_conn_is_done(const h1_conn *c)
{
    return c->done;
}

bool h1_conn_is_upgraded(const h1_conn *c)
{
    return c->upgraded;
}

h2_fault h1_conn_fault(const h1_conn *c)
{
    return c->fault;
}

uint16_t h1_conn_error_status(const h1_conn *c)
{
    return c->err_status;
}

const h1_conn_stats *h1_conn_stats_get(const h1_conn *c)
{
    return &c->st;
}

uint32_t h1_conn_in_flight(const h1_conn *c)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->n; i++)
        k += h1_xat(c, i)->delivered;
    return k;
}
