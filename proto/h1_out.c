/* h1_out.c - responses of the HTTP/1.1 connection: exchanges answered in
 * request order, heads serialised once, bodies by reference, chunked
 * framing, and the iovec output (see h1_conn.h and docs/h1.md). */
#include <string.h>

#include "h1_internal.h"
#include "h2_http.h"

/* --- Segments ------------------------------------------------------------------ */

/* A segment of one of the pooled kinds (bytes after the header: inl, or
 * SEG_HEAD bytes in place of it). */
static h1_seg *seg_pooled(h1_conn *c, uint8_t kind)
{
    h1_ctx *x = c->x;
    h1_seg *s = x->free_segs[kind];
    if (s) {
        x->free_segs[kind] = s->next;
        x->nfree_segs[kind]--;
    } else {
        size_t size = kind == SEG_K_SMALL ? sizeof *s : offsetof(h1_seg, inl) + SEG_HEAD;
        if (!(s = h2_malloc(x->mem, size)))
            return NULL;
    }
    memset(s, 0, offsetof(h1_seg, inl));
    s->kind = kind;
    s->p = s->inl;
    return s;
}

h1_seg *h1_seg_small(h1_conn *c)
{
    return seg_pooled(c, SEG_K_SMALL);
}

h1_seg *h1_seg_bytes(h1_conn *c, size_t len)
{
    if (len <= SEG_INLINE)
        return seg_pooled(c, SEG_K_SMALL);
    if (len <= SEG_HEAD)
        return seg_pooled(c, SEG_K_HEAD);
    h1_seg *s = h2_malloc(c->x->mem, offsetof(h1_seg, inl) + len);
    if (!s)
        return NULL;
    memset(s, 0, offsetof(h1_seg, inl));
    s->kind = SEG_K_HEAP;
    s->p = s->inl;
    return s;
}

void h1_seg_free(h1_conn *c, h1_seg *s)
{
    if (s->release)
        s->release(s->rctx, s->p, (size_t)s->len);
    h1_ctx *x = c->x;
    if (s->kind != SEG_K_HEAP && x->nfree_segs[s->kind] < SEG_KEEP) {
        s->next = x->free_segs[s->kind];
        x->free_segs[s->kind] = s;
        x->nfree_segs[s->kind]++;
    } else {
        h2_free(x->mem, s);
    }
}

void h1_seg_push(h1_conn *c, h1_xchg *x, h1_seg *s)
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

/* Copy bytes into a new segment. */
h2_rv h1_push_copy(h1_conn *c, h1_xchg *x, const void *p, size_t len)
{
    h1_seg *s = h1_seg_bytes(c, len);
    if (!s)
        return H2_E_NOMEM;
    memcpy(h1_seg_data(s), p, len);
    s->len = len;
    h1_seg_push(c, x, s);
    return H2_OK;
}

/* --- Exchanges ------------------------------------------------------------------ */

h1_xchg *h1_xnew(h1_conn *c)
{
    h1_xchg *x = &c->ring[(c->head + c->n) % c->cap];
    c->n++;
    memset(x, 0, sizeof *x);
    x->id = c->next_id++;
    return x;
}

void h1_xdrop_segs(h1_conn *c, h1_xchg *x)
{
    while (x->first) {
        h1_seg *s = x->first;
        x->first = s->next;
        c->unsent -= s->len;
        h1_seg_free(c, s);
    }
    x->last = NULL;
    x->queued = 0;
}

/* Nothing in flight and no request begun: the keep-alive timer runs. */
void h1_arm_idle(h1_conn *c)
{
    if (c->n == 0 && !c->done && c->rstate == R_HEAD && c->sc.len == 0 &&
        c->x->limits->idle_timeout_ms && !c->idle_deadline)
        c->idle_deadline = c->now + c->x->limits->idle_timeout_ms;
}

/* Pop finished exchanges off the front; the connection is done after one
 * that closes it. */
void h1_retire(h1_conn *c)
{
    while (c->n && !c->done) {
        h1_xchg *x = h1_xat(c, 0);
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
    h1_arm_idle(c);
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

h2_rv h1_push_head(h1_conn *c, h1_xchg *x, uint16_t status, const hpack_field *f, size_t n,
                   const h1_head_extra *e)
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
    h1_seg *s = h1_seg_bytes(c, len);
    if (!s)
        return H2_E_NOMEM;
    char *o = (char *)h1_seg_data(s);
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
    h1_seg_push(c, x, s);
    return H2_OK;
}

/* --- Errors ---------------------------------------------------------------------- */

void h1_count(h1_conn *c, int limit)
{
    if (limit >= 0 && limit < H1_LIMIT_COUNT)
        c->x->limit_hits[limit]++;
}

/* The codec answers x itself: status, no body, close. */
h2_rv h1_push_error(h1_conn *c, h1_xchg *x, uint16_t status)
{
    h1_head_extra e = {"connection: close\r\n", c->x->date_s >= 0, true, 0};
    x->close = true;
    x->state = X_ENDED;
    x->framing = F_LENGTH;
    return h1_push_head(c, x, status, NULL, 0, &e);
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

static h2_rv informational(h1_conn *c, h1_xchg *x, uint16_t status, const hpack_field *f, size_t n)
{
    if (x->minor == 0)
        return H2_OK; /* RFC 9110 §15.2: never a 1xx to an HTTP/1.0 client */
    if (status == 100) {
        if (x->sent_100 || x->body_done)
            return H2_OK; /* pointless: the body is there (or was refused) */
        x->sent_100 = true;
    }
    h1_head_extra e = {NULL, false, false, 0};
    return h1_push_head(c, x, status, f, n, &e);
}

static void end_body(h1_conn *c, h1_xchg *x)
{
    if (x->framing == F_LENGTH && x->left && !x->head_method)
        x->close = true; /* fewer bytes than announced: the peer must see a close */
    if (x->framing == F_CLOSE)
        x->close = true;
    x->state = X_ENDED;
    if (x->close && c->rstate < R_STOP)
        c->rstate = R_STOP; /* nothing after this response will be answered */
    h1_retire(c);
}

h2_rv h1_conn_respond(h1_conn *c, uint32_t id, uint16_t status, const hpack_field *f, size_t n,
                      bool end_stream)
{
    return h1_conn_respond_checked(c, id, status, f, n, n, end_stream);
}

h2_rv h1_conn_respond_checked(h1_conn *c, uint32_t id, uint16_t status, const hpack_field *f,
                              size_t n, size_t n_check, bool end_stream)
{
    h1_xchg *x = h1_xfind(c, id);
    if (!x || !x->delivered)
        return H2_E_NOSTREAM;
    if (x->reset || x->state != X_OPEN)
        return H2_E_STATE;
    if (status < 100 || status > 599 || status == 101 || (status < 200 && end_stream))
        return H2_E_INVAL;
    if (n_check > n)
        n_check = n;
    if (n_check && h2_http_check_response_fields(f, (uint32_t)n_check) != H2_OK)
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
    h1_head_extra e = {NULL, !has_date && c->x->date_s >= 0, false, 0};
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
    if (c->shutdown && h1_xat(c, c->n - 1) == x)
        x->close = true;
    if (x->close)
        e.lines = x->framing == F_CHUNKED ? "transfer-encoding: chunked\r\nconnection: close\r\n"
                                          : "connection: close\r\n";
    else if (x->framing == F_CHUNKED) /* HTTP/1.1 only */
        e.lines = "transfer-encoding: chunked\r\n";
    else if (x->minor == 0)
        e.lines = "connection: keep-alive\r\n";
    h2_rv rv = h1_push_head(c, x, status, f, n, &e);
    if (rv != H2_OK)
        return rv;
    x->state = X_BODY;
    if (end_stream)
        end_body(c, x);
    return H2_OK;
}

/* Queue len bytes by reference (split so that each segment fits a size_t). */
static h2_rv push_ref(h1_conn *c, h1_xchg *x, const uint8_t *data, uint64_t len, h2_release_fn rel,
                      void *rctx)
{
    h1_seg *s = h1_seg_small(c);
    if (!s) {
        if (rel)
            rel(rctx, data, (size_t)len);
        return H2_E_NOMEM;
    }
    s->p = data;
    s->len = len;
    s->release = rel;
    s->rctx = rctx;
    h1_seg_push(c, x, s);
    return H2_OK;
}

static h2_rv push_chunk(h1_conn *c, h1_xchg *x, const uint8_t *data, uint64_t len,
                        h2_release_fn rel, void *rctx)
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
    h2_rv rv = h1_push_copy(c, x, line, m);
    if (rv != H2_OK) {
        if (rel)
            rel(rctx, data, (size_t)len);
        return rv;
    }
    rv = push_ref(c, x, data, len, rel, rctx);
    return rv != H2_OK ? rv : h1_push_copy(c, x, "\r\n", 2);
}

h2_rv h1_conn_send_data(h1_conn *c, uint32_t id, const uint8_t *data, uint64_t len, bool end_stream,
                        h2_release_fn release, void *release_ctx)
{
    h1_xchg *x = h1_xfind(c, id);
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
                rv = h1_push_copy(c, x, "0\r\n\r\n", 5);
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
        if (x->framing == F_CHUNKED && (rv = h1_push_copy(c, x, "0\r\n\r\n", 5)) != H2_OK)
            return rv;
        end_body(c, x);
    }
    return H2_OK;
}

h2_rv h1_conn_send_trailers(h1_conn *c, uint32_t id, const hpack_field *f, size_t n)
{
    h1_xchg *x = h1_xfind(c, id);
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
    h1_seg *s = h1_seg_bytes(c, len);
    if (!s)
        return H2_E_NOMEM;
    char *o = (char *)h1_seg_data(s);
    o = put(o, "0\r\n", 3);
    for (size_t i = 0; i < n; i++) {
        o = put(o, f[i].name, f[i].name_len);
        o = put(o, ": ", 2);
        o = put(o, f[i].value, f[i].value_len);
        o = put(o, "\r\n", 2);
    }
    put(o, "\r\n", 2);
    s->len = len;
    h1_seg_push(c, x, s);
    end_body(c, x);
    return H2_OK;
}

uint64_t h1_conn_buffered(const h1_conn *c, uint32_t id)
{
    const h1_xchg *x = h1_xfind(c, id);
    return x ? x->queued : 0;
}

h2_rv h1_conn_upgrade(h1_conn *c, uint32_t id, const hpack_field *f, size_t n)
{
    h1_xchg *x = h1_xfind(c, id);
    if (!x || !x->delivered)
        return H2_E_NOSTREAM;
    if (x->reset || x->state != X_OPEN || x->upgrade == H1_UPGRADE_NONE || c->upgrade_wait != id)
        return H2_E_STATE;
    if (n && h2_http_check_response_fields(f, (uint32_t)n) != H2_OK)
        return H2_E_INVAL;
    h1_head_extra e = {x->upgrade == H1_UPGRADE_H2C
                           ? "connection: upgrade\r\nupgrade: h2c\r\n"
                           : "connection: upgrade\r\nupgrade: websocket\r\n",
                       false, false, 0};
    h2_rv rv = h1_push_head(c, x, 101, f, n, &e);
    if (rv != H2_OK)
        return rv;
    x->upgrading = true;
    x->close = false; /* the connection lives on, in the next protocol */
    x->state = X_ENDED;
    c->upgrade_wait = 0;
    c->rstate = R_UPGRADED;
    c->head_deadline = c->idle_deadline = 0;
    h1_retire(c);
    return H2_OK;
}

h2_rv h1_conn_reset(h1_conn *c, uint32_t id)
{
    h1_xchg *x = h1_xfind(c, id);
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
    h1_retire(c);
    return H2_OK;
}

void h1_conn_shutdown(h1_conn *c)
{
    c->shutdown = true;
    if (c->rstate == R_HEAD)
        c->rstate = R_STOP; /* a body being read is read to its end (body_done) */
    c->head_deadline = c->idle_deadline = 0;
    if (c->n) {
        h1_xchg *x = h1_xat(c, c->n - 1);
        if (x->state == X_OPEN)
            x->close = true;
    }
    h1_retire(c);
}

/* --- Output ------------------------------------------------------------------------ */

size_t h1_conn_out_prepare(h1_conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes)
{
    size_t k = 0, bytes = 0;
    bool first = true;
    if (c->done || iovcnt == 0)
        return 0;
    for (uint32_t i = 0; i < c->n; i++) {
        h1_xchg *x = h1_xat(c, i);
        for (h1_seg *s = x->first; s; s = s->next) {
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
        h1_xchg *x = h1_xat(c, 0);
        h1_seg *s = x->first;
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
        h1_seg_free(c, s);
        h1_retire(c);
    }
    h1_retire(c);
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
        const h1_xchg *x = h1_xat(c, i);
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
