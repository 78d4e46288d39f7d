/* h1_conn.c - the HTTP/1.1 server connection: receive state machine,
 * exchanges (one per request, answered strictly in order) and output
 * segments.  See h1_conn.h for the contract and docs/h1.md for the design. */
#include "h1_conn.h"

#include <string.h>

#include "h2_http.h"

/* --- Output segments ------------------------------------------------------- */

#define SEG_INLINE 24u  /* chunk-size lines, CRLFs, the last chunk */
#define SEG_KEEP   256u /* recycled segments a context keeps */

typedef struct seg {
    struct seg *next;
    const uint8_t *p;
    uint64_t len;
    h2_release_fn release; /* references only */
    void *rctx;
    uint8_t heap; /* allocated with its bytes after it, not pooled */
    uint8_t inl[SEG_INLINE];
} seg;

/* --- Exchanges --------------------------------------------------------------- */

enum { X_OPEN, X_BODY, X_ENDED };              /* response state */
enum { F_NONE, F_LENGTH, F_CHUNKED, F_CLOSE }; /* response framing */

typedef struct xchg {
    uint32_t id;
    uint8_t state, framing, minor, upgrade;
    bool delivered; /* false: the codec's own error response */
    bool head_method, te_trailers, expect_continue, sent_100, body_done;
    bool close;     /* the connection ends after this response */
    bool upgrading; /* the 101 was queued */
    bool reset;
    uint64_t left; /* F_LENGTH: body bytes still to come */
    seg *first, *last;
    uint64_t queued; /* bytes in segments, not committed */
} xchg;

enum {
    R_HEAD,
    R_BODY,
    R_CHUNK_LINE,
    R_CHUNK_DATA,
    R_CHUNK_CRLF,
    R_TRAILERS,
    R_STOP,
    R_FAILED,
    R_UPGRADED
};

struct h1_conn {
    h1_ctx *x;
    xchg *ring;
    uint32_t cap, head, n; /* exchanges: ring[head], ... n of them */
    uint32_t next_id;
    uint32_t body_id;      /* the exchange whose request body is being read */
    uint32_t upgrade_wait; /* an upgrade request awaiting its answer */
    uint8_t rstate, crlf;
    bool tls, done, upgraded, shutdown;
    bool body_close;              /* the request being read ends the connection */
    bool paused_pipe, paused_out; /* counted once per pause */
    h1_scan sc;
    h1_chunk_scan cs;
    uint8_t *hbuf; /* a head or trailer section arriving in pieces */
    uint32_t hlen, hcap;
    uint64_t body_left, body_total;
    uint64_t seg_off; /* committed bytes of the first segment */
    uint64_t unsent;
    uint64_t now, head_deadline, idle_deadline;
    uint32_t parsed; /* requests parsed */
    h2_fault fault;
    uint16_t err_status;
    h1_conn_stats st;
};

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
    while (x->free_segs) {
        seg *s = x->free_segs;
        x->free_segs = s->next;
        h2_free(x->mem, s);
    }
    x->scratch = NULL;
    x->fields = NULL;
    x->nfree_segs = 0;
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

/* --- Segments ------------------------------------------------------------------ */

static seg *seg_small(h1_conn *c)
{
    h1_ctx *x = c->x;
    seg *s = x->free_segs;
    if (s) {
        x->free_segs = s->next;
        x->nfree_segs--;
    } else if (!(s = h2_malloc(x->mem, sizeof *s))) {
        return NULL;
    }
    memset(s, 0, offsetof(seg, inl));
    return s;
}

static seg *seg_bytes(h1_conn *c, size_t len)
{
    if (len <= SEG_INLINE) {
        seg *s = seg_small(c);
        if (s)
            s->p = s->inl;
        return s;
    }
    seg *s = h2_malloc(c->x->mem, sizeof *s + len);
    if (!s)
        return NULL;
    memset(s, 0, offsetof(seg, inl));
    s->heap = 1;
    s->p = (const uint8_t *)(s + 1);
    return s;
}

static void seg_free(h1_conn *c, seg *s)
{
    if (s->release)
        s->release(s->rctx, s->p, (size_t)s->len);
    h1_ctx *x = c->x;
    if (!s->heap && x->nfree_segs < SEG_KEEP) {
        s->next = x->free_segs;
        x->free_segs = s;
        x->nfree_segs++;
    } else {
        h2_free(x->mem, s);
    }
}

static void seg_push(h1_conn *c, xchg *x, seg *s)
{
    s->next = NULL;
    if (x->last)
        x->last->next = s;
    else
        x->first = s;
    x->last = s;
    x->queued += s->len;
    c->unsent += s->len;
}

static uint8_t *seg_data(seg *s)
{
    return (uint8_t *)(uintptr_t)s->p;
}

/* Copy bytes into a new segment. */
static h2_rv push_copy(h1_conn *c, xchg *x, const void *p, size_t len)
{
    seg *s = seg_bytes(c, len);
    if (!s)
        return H2_E_NOMEM;
    memcpy(seg_data(s), p, len);
    s->len = len;
    seg_push(c, x, s);
    return H2_OK;
}

/* --- Exchanges ------------------------------------------------------------------ */

static xchg *xat(const h1_conn *c, uint32_t i)
{
    return &c->ring[(c->head + i) % c->cap];
}

static xchg *xfind(const h1_conn *c, uint32_t id)
{
    if (c->n == 0)
        return NULL;
    uint32_t first = xat(c, 0)->id;
    if (id < first || id - first >= c->n)
        return NULL;
    return xat(c, id - first);
}

static xchg *xnew(h1_conn *c)
{
    xchg *x = &c->ring[(c->head + c->n) % c->cap];
    c->n++;
    memset(x, 0, sizeof *x);
    x->id = c->next_id++;
    return x;
}

static void xdrop_segs(h1_conn *c, xchg *x)
{
    while (x->first) {
        seg *s = x->first;
        x->first = s->next;
        c->unsent -= s->len;
        seg_free(c, s);
    }
    x->last = NULL;
    x->queued = 0;
}

/* Nothing in flight and no request begun: the keep-alive timer runs. */
static void arm_idle(h1_conn *c)
{
    if (c->n == 0 && !c->done && c->rstate == R_HEAD && c->sc.len == 0 &&
        c->x->limits->idle_timeout_ms && !c->idle_deadline)
        c->idle_deadline = c->now + c->x->limits->idle_timeout_ms;
}

/* Pop finished exchanges off the front; the connection is done after one
 * that closes it. */
static void retire(h1_conn *c)
{
    while (c->n && !c->done) {
        xchg *x = xat(c, 0);
        if (x->state != X_ENDED || x->first)
            break;
        if (x->delivered)
            c->st.responses++;
        if (x->upgrading)
            c->upgraded = true;
        if (x->close)
            c->done = true;
        c->head = (c->head + 1) % c->cap;
        c->n--;
        c->seg_off = 0;
    }
    if (c->n == 0 && !c->done && c->shutdown)
        c->done = true;
    arm_idle(c);
}

/* --- Response heads --------------------------------------------------------------- */

static const char *reason(uint16_t st)
{
    switch (st) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "";
}

static char *put(char *o, const void *p, size_t n)
{
    memcpy(o, p, n);
    return o + n;
}

static char *put_u64(char *o, uint64_t v)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        *o++ = tmp[--k];
    return o;
}

/* What the codec adds to the application's fields. */
typedef struct head_extra {
    const char *lines; /* complete "name: value\r\n" lines, or NULL */
    bool date;
    bool cl; /* content-length: cl_value */
    uint64_t cl_value;
} head_extra;

static h2_rv push_head(h1_conn *c, xchg *x, uint16_t status, const hpack_field *f, size_t n,
                       const head_extra *e)
{
    const char *rs = reason(status);
    size_t len = 13 + strlen(rs) + 2 + 2;
    for (size_t i = 0; i < n; i++)
        len += (size_t)f[i].name_len + 2 + f[i].value_len + 2;
    if (e->date)
        len += 6 + H1_DATE_LEN + 2;
    if (e->cl)
        len += 16 + 20 + 2;
    if (e->lines)
        len += strlen(e->lines);
    seg *s = seg_bytes(c, len);
    if (!s)
        return H2_E_NOMEM;
    char *o = (char *)seg_data(s);
    char *start = o;
    o = put(o, "HTTP/1.1 ", 9);
    *o++ = (char)('0' + status / 100);
    *o++ = (char)('0' + status / 10 % 10);
    *o++ = (char)('0' + status % 10);
    *o++ = ' ';
    o = put(o, rs, strlen(rs));
    o = put(o, "\r\n", 2);
    for (size_t i = 0; i < n; i++) {
        o = put(o, f[i].name, f[i].name_len);
        o = put(o, ": ", 2);
        o = put(o, f[i].value, f[i].value_len);
        o = put(o, "\r\n", 2);
    }
    if (e->date) {
        o = put(o, "date: ", 6);
        o = put(o, c->x->date, H1_DATE_LEN);
        o = put(o, "\r\n", 2);
    }
    if (e->cl) {
        o = put(o, "content-length: ", 16);
        o = put_u64(o, e->cl_value);
        o = put(o, "\r\n", 2);
    }
    if (e->lines)
        o = put(o, e->lines, strlen(e->lines));
    o = put(o, "\r\n", 2);
    s->len = (uint64_t)(o - start);
    seg_push(c, x, s);
    return H2_OK;
}

/* --- Errors ---------------------------------------------------------------------- */

static void count(h1_conn *c, int limit)
{
    if (limit >= 0 && limit < H1_LIMIT_COUNT)
        c->x->limit_hits[limit]++;
}

/* The codec answers x itself: status, no body, close. */
static h2_rv push_error(h1_conn *c, xchg *x, uint16_t status)
{
    head_extra e = {"connection: close\r\n", c->x->date_s >= 0, true, 0};
    x->close = true;
    x->state = X_ENDED;
    x->framing = F_LENGTH;
    return push_head(c, x, status, NULL, 0, &e);
}

/* Parsing ends on err: queue the error response in order and report. */
static h2_rv fail(h1_conn *c, h1_err err, h1_event *ev)
{
    count(c, err.limit);
    c->fault = h2_fault_conn(H2_PROTOCOL_ERROR, err.reason);
    c->err_status = err.status;
    bool in_body = c->rstate >= R_BODY && c->rstate <= R_TRAILERS;
    c->rstate = R_FAILED;
    c->head_deadline = 0;
    c->upgrade_wait = 0;
    xchg *x = in_body ? xfind(c, c->body_id) : NULL;
    if (in_body && x && x->delivered) {
        ev->type = H1_EV_RESET;
        ev->id = x->id;
        x->body_done = true;
        if (x->state == X_OPEN) {
            x->reset = true;
            if (push_error(c, x, err.status) != H2_OK)
                return H2_E_NOMEM;
        } else {
            x->reset = x->close = true;
            x->state = X_ENDED;
        }
    } else if (!in_body && c->n < c->cap) {
        if (push_error(c, xnew(c), err.status) != H2_OK)
            return H2_E_NOMEM;
    } else {
        c->shutdown = true; /* no slot: close after what is in flight */
    }
    retire(c);
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
    c->ring = h2_malloc(x->mem, sizeof(xchg) * c->cap);
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
        xdrop_segs(c, xat(c, i));
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
    xchg *x = xfind(c, c->body_id);
    if (x)
        x->body_done = true;
    /* x may have been answered and retired already */
    bool stop = c->shutdown || (x ? x->close : c->body_close);
    c->rstate = stop ? R_STOP : R_HEAD;
    c->body_total = 0;
    arm_idle(c); /* the response may have been flushed before the body ended */
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
            count(c, H1_LIMIT_MAX_REQUESTS);
        rq->keep_alive = false;
    }
    if (c->shutdown)
        rq->keep_alive = false;
    xchg *e = xnew(c);
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
            count(c, H1_LIMIT_PIPELINED);
        c->paused_pipe = true;
        return H2_E_AGAIN;
    }
    c->paused_pipe = false;
    if (c->unsent >= l->max_unsent_output) {
        if (!c->paused_out)
            count(c, H1_LIMIT_OUTPUT_BACKLOG);
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
        count(c, H1_LIMIT_IDLE_TIMEOUT);
        c->fault = h2_fault_conn(H2_NO_ERROR, "keep-alive idle timeout");
        c->rstate = R_FAILED;
        c->done = true;
        return H2_E_PROTO;
    }
    if (c->head_deadline && now_ms >= c->head_deadline && c->rstate == R_HEAD) {
        if (c->sc.len == 0 && c->n == 0) { /* nothing at all: close quietly */
            count(c, H1_LIMIT_HEADER_TIMEOUT);
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

/* --- Responding --------------------------------------------------------------------- */

/* The application's content-length field: -1 none, -2 invalid. */
static int64_t app_content_length(const hpack_field *f, size_t n, bool *has_date)
{
    int64_t cl = -1;
    *has_date = false;
    for (size_t i = 0; i < n; i++) {
        if (h2_http_field_is(&f[i], "date", 4))
            *has_date = true;
        if (!h2_http_field_is(&f[i], "content-length", 14))
            continue;
        if (cl != -1 || f[i].value_len == 0 || f[i].value_len > 18)
            return -2;
        int64_t v = 0;
        for (uint32_t k = 0; k < f[i].value_len; k++) {
            if (f[i].value[k] < '0' || f[i].value[k] > '9')
                return -2;
            v = v * 10 + (f[i].value[k] - '0');
        }
        cl = v;
    }
    return cl;
}

static h2_rv informational(h1_conn *c, xchg *x, uint16_t status, const hpack_field *f, size_t n)
{
    if (x->minor == 0)
        return H2_OK; /* RFC 9110 §15.2: never a 1xx to an HTTP/1.0 client */
    if (status == 100) {
        if (x->sent_100 || x->body_done)
            return H2_OK; /* pointless: the body is there (or was refused) */
        x->sent_100 = true;
    }
    head_extra e = {NULL, false, false, 0};
    return push_head(c, x, status, f, n, &e);
}

static void end_body(h1_conn *c, xchg *x)
{
    if (x->framing == F_LENGTH && x->left && !x->head_method)
        x->close = true; /* fewer bytes than announced: the peer must see a close */
    if (x->framing == F_CLOSE)
        x->close = true;
    x->state = X_ENDED;
    if (x->close && c->rstate < R_STOP)
        c->rstate = R_STOP; /* nothing after this response will be answered */
    retire(c);
}

h2_rv h1_conn_respond(h1_conn *c, uint32_t id, uint16_t status, const hpack_field *f, size_t n,
                      bool end_stream)
{
    xchg *x = xfind(c, id);
    if (!x || !x->delivered)
        return H2_E_NOSTREAM;
    if (x->reset || x->state != X_OPEN)
        return H2_E_STATE;
    if (status < 100 || status > 599 || status == 101 || (status < 200 && end_stream))
        return H2_E_INVAL;
    if (n && h2_http_check_response_fields(f, (uint32_t)n) != H2_OK)
        return H2_E_INVAL;
    bool has_date;
    int64_t cl = app_content_length(f, n, &has_date);
    if (cl == -2)
        return H2_E_INVAL;
    if (status < 200)
        return informational(c, x, status, f, n);
    if (c->upgrade_wait == id)
        c->upgrade_wait = 0; /* declined: reading resumes */
    bool nobody = x->head_method || status == 204 || status == 304;
    head_extra e = {NULL, !has_date && c->x->date_s >= 0, false, 0};
    if (nobody) {
        x->framing = F_NONE;
    } else if (cl >= 0) {
        x->framing = F_LENGTH;
        x->left = (uint64_t)cl;
    } else if (end_stream) {
        x->framing = F_LENGTH;
        e.cl = true;
    } else if (x->minor == 1) {
        x->framing = F_CHUNKED;
    } else {
        x->framing = F_CLOSE;
        x->close = true;
    }
    if (x->expect_continue && !x->sent_100 && !x->body_done)
        x->close = true; /* RFC 9110 §10.1.1: the client may or may not send it */
    if (c->shutdown && xat(c, c->n - 1) == x)
        x->close = true;
    if (x->close)
        e.lines = x->framing == F_CHUNKED ? "transfer-encoding: chunked\r\nconnection: close\r\n"
                                          : "connection: close\r\n";
    else if (x->framing == F_CHUNKED)
        e.lines = x->minor == 0 ? "transfer-encoding: chunked\r\nconnection: keep-alive\r\n"
                                : "transfer-encoding: chunked\r\n";
    else if (x->minor == 0)
        e.lines = "connection: keep-alive\r\n";
    h2_rv rv = push_head(c, x, status, f, n, &e);
    if (rv != H2_OK)
        return rv;
    x->state = X_BODY;
    if (end_stream)
        end_body(c, x);
    return H2_OK;
}

/* Queue len bytes by reference (split so that each segment fits a size_t). */
static h2_rv push_ref(h1_conn *c, xchg *x, const uint8_t *data, uint64_t len, h2_release_fn rel,
                      void *rctx)
{
    seg *s = seg_small(c);
    if (!s) {
        if (rel)
            rel(rctx, data, (size_t)len);
        return H2_E_NOMEM;
    }
    s->p = data;
    s->len = len;
    s->release = rel;
    s->rctx = rctx;
    seg_push(c, x, s);
    return H2_OK;
}

static h2_rv push_chunk(h1_conn *c, xchg *x, const uint8_t *data, uint64_t len, h2_release_fn rel,
                        void *rctx)
{
    char line[SEG_INLINE];
    int k = 0;
    char tmp[20];
    uint64_t v = len;
    do {
        tmp[k++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    size_t m = 0;
    while (k)
        line[m++] = tmp[--k];
    line[m++] = '\r';
    line[m++] = '\n';
    h2_rv rv = push_copy(c, x, line, m);
    if (rv != H2_OK) {
        if (rel)
            rel(rctx, data, (size_t)len);
        return rv;
    }
    rv = push_ref(c, x, data, len, rel, rctx);
    return rv != H2_OK ? rv : push_copy(c, x, "\r\n", 2);
}

h2_rv h1_conn_send_data(h1_conn *c, uint32_t id, const uint8_t *data, uint64_t len, bool end_stream,
                        h2_release_fn release, void *release_ctx)
{
    xchg *x = xfind(c, id);
    h2_rv rv = H2_OK;
    if (!x || !x->delivered)
        rv = H2_E_NOSTREAM;
    else if (x->reset || x->state != X_BODY)
        rv = H2_E_STATE;
    else if (len && x->framing == F_NONE && !x->head_method)
        return H2_E_INVAL;
    else if (x->framing == F_LENGTH && len > x->left)
        return H2_E_INVAL;
    if (rv != H2_OK || len == 0 || x->framing == F_NONE) {
        if (release)
            release(release_ctx, data, (size_t)len);
        if (rv == H2_OK && end_stream) {
            if (x->framing == F_CHUNKED)
                rv = push_copy(c, x, "0\r\n\r\n", 5);
            end_body(c, x);
        }
        return rv;
    }
    if (x->framing == F_CHUNKED)
        rv = push_chunk(c, x, data, len, release, release_ctx);
    else
        rv = push_ref(c, x, data, len, release, release_ctx);
    if (rv != H2_OK)
        return rv;
    if (x->framing == F_LENGTH)
        x->left -= len;
    if (end_stream) {
        if (x->framing == F_CHUNKED && (rv = push_copy(c, x, "0\r\n\r\n", 5)) != H2_OK)
            return rv;
        end_body(c, x);
    }
    return H2_OK;
}

h2_rv h1_conn_send_trailers(h1_conn *c, uint32_t id, const hpack_field *f, size_t n)
{
    xchg *x = xfind(c, id);
    if (!x || !x->delivered)
        return H2_E_NOSTREAM;
    if (x->reset || x->state != X_BODY)
        return H2_E_STATE;
    if (n && !h2_fault_ok(h2_http_check_trailers(f, (uint32_t)n)))
        return H2_E_INVAL;
    if (x->framing != F_CHUNKED || !x->te_trailers || n == 0)
        return h1_conn_send_data(c, id, NULL, 0, true, NULL, NULL);
    size_t len = 3 + 2;
    for (size_t i = 0; i < n; i++)
        len += (size_t)f[i].name_len + 2 + f[i].value_len + 2;
    seg *s = seg_bytes(c, len);
    if (!s)
        return H2_E_NOMEM;
    char *o = (char *)seg_data(s);
    o = put(o, "0\r\n", 3);
    for (size_t i = 0; i < n; i++) {
        o = put(o, f[i].name, f[i].name_len);
        o = put(o, ": ", 2);
        o = put(o, f[i].value, f[i].value_len);
        o = put(o, "\r\n", 2);
    }
    put(o, "\r\n", 2);
    s->len = len;
    seg_push(c, x, s);
    end_body(c, x);
    return H2_OK;
}

uint64_t h1_conn_buffered(const h1_conn *c, uint32_t id)
{
    const xchg *x = xfind(c, id);
    return x ? x->queued : 0;
}

h2_rv h1_conn_upgrade(h1_conn *c, uint32_t id, const hpack_field *f, size_t n)
{
    xchg *x = xfind(c, id);
    if (!x || !x->delivered)
        return H2_E_NOSTREAM;
    if (x->reset || x->state != X_OPEN || x->upgrade == H1_UPGRADE_NONE || c->upgrade_wait != id)
        return H2_E_STATE;
    if (n && h2_http_check_response_fields(f, (uint32_t)n) != H2_OK)
        return H2_E_INVAL;
    head_extra e = {x->upgrade == H1_UPGRADE_H2C ? "connection: upgrade\r\nupgrade: h2c\r\n"
                                                 : "connection: upgrade\r\nupgrade: websocket\r\n",
                    false, false, 0};
    h2_rv rv = push_head(c, x, 101, f, n, &e);
    if (rv != H2_OK)
        return rv;
    x->upgrading = true;
    x->close = false; /* the connection lives on, in the next protocol */
    x->state = X_ENDED;
    c->upgrade_wait = 0;
    c->rstate = R_UPGRADED;
    c->head_deadline = c->idle_deadline = 0;
    retire(c);
    return H2_OK;
}

h2_rv h1_conn_reset(h1_conn *c, uint32_t id)
{
    xchg *x = xfind(c, id);
    if (!x || !x->delivered)
        return H2_E_NOSTREAM;
    if (x->state == X_ENDED && !x->close && !x->reset) {
        /* Already complete: nothing to abandon. */
        return H2_OK;
    }
    x->reset = x->close = true;
    x->state = X_ENDED;
    if (c->upgrade_wait == id)
        c->upgrade_wait = 0;
    if (c->rstate < R_STOP)
        c->rstate = R_STOP;
    retire(c);
    return H2_OK;
}

void h1_conn_shutdown(h1_conn *c)
{
    c->shutdown = true;
    if (c->rstate == R_HEAD)
        c->rstate = R_STOP; /* a body being read is read to its end (body_done) */
    c->head_deadline = c->idle_deadline = 0;
    if (c->n) {
        xchg *x = xat(c, c->n - 1);
        if (x->state == X_OPEN)
            x->close = true;
    }
    retire(c);
}

/* --- Output ------------------------------------------------------------------------ */

size_t h1_conn_out_prepare(h1_conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes)
{
    size_t k = 0, bytes = 0;
    bool first = true;
    if (c->done || iovcnt == 0)
        return 0;
    for (uint32_t i = 0; i < c->n; i++) {
        xchg *x = xat(c, i);
        for (seg *s = x->first; s; s = s->next) {
            uint64_t off = first ? c->seg_off : 0;
            first = false;
            uint64_t take = s->len - off;
            if (bytes + take > max_bytes)
                take = max_bytes - bytes;
            if (take == 0)
                return k;
            iov[k].iov_base = (void *)(uintptr_t)(s->p + off);
            iov[k].iov_len = (size_t)take;
            k++;
            bytes += take;
            if (k == iovcnt || bytes >= max_bytes)
                return k;
        }
        if (x->state != X_ENDED || x->close)
            break; /* later responses wait; nothing goes after a close */
    }
    return k;
}

void h1_conn_out_commit(h1_conn *c, size_t n, uint64_t now_ms)
{
    c->now = now_ms;
    c->st.bytes_out += n;
    while (n && c->n) {
        xchg *x = xat(c, 0);
        seg *s = x->first;
        if (!s)
            break; /* committing more than was prepared: a caller bug */
        uint64_t rem = s->len - c->seg_off;
        if (n < rem) {
            c->seg_off += n;
            x->queued -= n;
            c->unsent -= n;
            break;
        }
        n -= (size_t)rem;
        x->queued -= rem;
        c->unsent -= rem;
        c->seg_off = 0;
        x->first = s->next;
        if (!x->first)
            x->last = NULL;
        s->len = s->len; /* release gets the whole chunk */
        seg_free(c, s);
        retire(c);
    }
    retire(c);
}

size_t h1_conn_send(h1_conn *c, uint8_t *buf, size_t cap, uint64_t now_ms)
{
    struct iovec iov[16];
    size_t k = h1_conn_out_prepare(c, iov, 16, cap), n = 0;
    for (size_t i = 0; i < k; i++) {
        memcpy(buf + n, iov[i].iov_base, iov[i].iov_len);
        n += iov[i].iov_len;
    }
    h1_conn_out_commit(c, n, now_ms);
    return n;
}

bool h1_conn_want_write(const h1_conn *c)
{
    if (c->done)
        return false;
    for (uint32_t i = 0; i < c->n; i++) {
        const xchg *x = xat(c, i);
        if (x->first)
            return true;
        if (x->state != X_ENDED || x->close)
            break;
    }
    return false;
}

bool h1_conn_want_read(const h1_conn *c)
{
    if (c->done)
        return false;
    switch (c->rstate) {
    case R_HEAD:
        return !c->upgrade_wait && c->n < c->x->limits->max_pipelined &&
               c->unsent < c->x->limits->max_unsent_output;
    case R_STOP: return true; /* consumed and ignored: lets the runtime see EOF */
    case R_FAILED:
    case R_UPGRADED: return false;
    default: return true;
    }
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
        k += xat(c, i)->delivered;
    return k;
}
