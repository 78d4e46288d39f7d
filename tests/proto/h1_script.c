/* h1_script.c - see h1_script.h. */
#include "h1_script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *m_malloc(size_t n, void *ud)
{
    ((h1t *)ud)->live++;
    ((h1t *)ud)->allocs++;
    return malloc(n);
}
static void *m_realloc(void *p, size_t n, void *ud)
{
    if (!p)
        ((h1t *)ud)->live++;
    ((h1t *)ud)->allocs++;
    return realloc(p, n);
}
static void m_free(void *p, void *ud)
{
    ((h1t *)ud)->live--;
    free(p);
}

void h1t_init(h1t *t, int mode)
{
    memset(t, 0, sizeof *t);
    t->mode = mode;
    t->now = 1000;
    t->mem = (h2_mem){m_malloc, m_realloc, m_free, t};
}

void h1t_start(h1t *t, const h1_limits *l)
{
    t->l = l ? *l : *h1_limits_default();
    cr_assert_eq(h1_ctx_init(&t->x, &t->l, &t->mem), H2_OK);
    h1_ctx_set_time(&t->x, H1T_DATE_S);
    t->c = h1_conn_new(&t->x, false, t->now);
    cr_assert_not_null(t->c);
}

void h1t_fini(h1t *t)
{
    if (t->c)
        h1_conn_free(t->c);
    t->c = NULL;
    cr_expect_eq(t->released, t->queued, "released %zu of %zu chunks", t->released, t->queued);
    h1_ctx_free(&t->x);
    cr_expect_eq(t->live, 0, "%lld allocations not freed", (long long)t->live);
    free(t->out);
}

static void on_release(void *ctx, const void *data, size_t len)
{
    (void)data;
    (void)len;
    ((h1t *)ctx)->released++;
}

h2_rv h1t_send(h1t *t, uint32_t id, const char *s, bool end)
{
    t->queued++;
    return h1_conn_send_data(t->c, id, (const uint8_t *)s, strlen(s), end, on_release, t);
}

static void logf_(h1t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void logf_(h1t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->log + t->log_len, sizeof t->log - t->log_len, fmt, ap);
    va_end(ap);
    if (k > 0)
        t->log_len += (size_t)k;
    if (t->log_len >= sizeof t->log)
        t->log_len = sizeof t->log - 1;
}

static const char *bodies[] = {"r0\n", "r1\n", "r2\n", "r3\n", "r4\n",
                               "r5\n", "r6\n", "r7\n", "r8\n", "r9\n"};

static void auto_answer(h1t *t, uint32_t id)
{
    static const hpack_field ct = {
        (const uint8_t *)"content-type", (const uint8_t *)"text/plain", 12, 10, 0, 0};
    cr_assert_eq(h1_conn_respond(t->c, id, 200, &ct, 1, false), H2_OK);
    cr_assert_eq(h1t_send(t, id, bodies[id % 10], true), H2_OK);
}

static void on_event(h1t *t, const h1_event *ev)
{
    switch (ev->type) {
    case H1_EV_REQUEST: {
        const h2_req_head *h = &ev->u.request.head;
        t->nreq++;
        t->last = ev->u.request;
        t->last_id = ev->id;
        logf_(t, "REQ %u %.*s %.*s host=%.*s%s\n", ev->id, (int)h->method.len,
              (const char *)h->method.p, (int)h->path.len, h->path.p ? (const char *)h->path.p : "",
              (int)h->authority.len, h->authority.p ? (const char *)h->authority.p : "",
              ev->end_stream ? " end" : "");
        break;
    }
    case H1_EV_DATA:
        logf_(t, "DATA %u %u%s\n", ev->id, ev->u.data.len, ev->end_stream ? " end" : "");
        cr_assert_leq(t->body_len + ev->u.data.len, sizeof t->body);
        if (ev->u.data.len)
            memcpy(t->body + t->body_len, ev->u.data.data, ev->u.data.len);
        t->body_len += ev->u.data.len;
        break;
    case H1_EV_TRAILERS:
        logf_(t, "TRL %u %u\n", ev->id, ev->u.trailers.n);
        for (uint32_t i = 0; i < ev->u.trailers.n; i++)
            logf_(t, "  %.*s: %.*s\n", (int)ev->u.trailers.fields[i].name_len,
                  (const char *)ev->u.trailers.fields[i].name,
                  (int)ev->u.trailers.fields[i].value_len,
                  (const char *)ev->u.trailers.fields[i].value);
        break;
    case H1_EV_RESET: logf_(t, "RESET %u\n", ev->id); break;
    default: break;
    }
    if (t->auto_respond && ev->type != H1_EV_RESET && ev->end_stream)
        auto_answer(t, ev->id);
}

void h1t_feed(h1t *t, const void *p, size_t n)
{
    const uint8_t *in = p;
    size_t off = 0;
    t->rest = 0;
    int stuck = 0;
    while (off < n) {
        size_t chunk = t->mode ? 1 : n - off, used = 0;
        h1_event ev;
        h2_rv rv = h1_conn_recv(t->c, in + off, chunk, t->now, &used, &ev);
        off += used;
        on_event(t, &ev);
        if (rv != H2_OK)
            t->rv = rv;
        if (rv == H2_E_PROTO || rv == H2_E_CLOSED || rv == H2_E_NOMEM)
            break;
        if (rv == H2_E_AGAIN) {
            h1t_drain(t);
            if (!h1_conn_want_read(t->c) || ++stuck > 4)
                break;
            continue;
        }
        stuck = 0;
        cr_assert(used > 0 || ev.type != H1_EV_NONE, "no progress");
    }
    t->rest = n - off;
    h1t_drain(t);
}

void h1t_feed_str(h1t *t, const char *s)
{
    h1t_feed(t, s, strlen(s));
}

static void out_append(h1t *t, const void *p, size_t n)
{
    if (t->out_len + n + 1 > t->out_cap) {
        t->out_cap = (t->out_len + n + 1) * 2;
        t->out = realloc(t->out, t->out_cap);
        cr_assert_not_null(t->out);
    }
    memcpy(t->out + t->out_len, p, n);
    t->out_len += n;
    t->out[t->out_len] = 0;
}

void h1t_drain(h1t *t)
{
    for (int guard = 0; guard < 1000000 && h1_conn_want_write(t->c); guard++) {
        if (t->mode == 0) {
            uint8_t buf[4096];
            size_t n = h1_conn_send(t->c, buf, sizeof buf, t->now);
            cr_assert_gt(n, 0);
            out_append(t, buf, n);
        } else {
            struct iovec iov[3];
            size_t k = h1_conn_out_prepare(t->c, iov, 3, 64);
            cr_assert_gt(k, 0);
            size_t total = 0;
            for (size_t i = 0; i < k; i++)
                total += iov[i].iov_len;
            size_t n = total < 7 ? total : 7; /* a partial write */
            size_t left = n;
            for (size_t i = 0; i < k && left; i++) {
                size_t m = iov[i].iov_len < left ? iov[i].iov_len : left;
                out_append(t, iov[i].iov_base, m);
                left -= m;
            }
            h1_conn_out_commit(t->c, n, t->now);
        }
    }
    if (!t->out) {
        out_append(t, "", 0);
    }
}

int h1t_count(const h1t *t, const char *needle)
{
    int k = 0;
    size_t nl = strlen(needle);
    for (size_t i = 0; t->out && i + nl <= t->out_len; i++)
        if (memcmp(t->out + i, needle, nl) == 0)
            k++;
    return k;
}

int h1t_status(const h1t *t, int nth)
{
    int k = 0;
    for (size_t i = 0; t->out && i + 12 <= t->out_len; i++)
        if (memcmp(t->out + i, "HTTP/1.1 ", 9) == 0 && k++ == nth)
            return atoi(t->out + i + 9);
    return 0;
}
