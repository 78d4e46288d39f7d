/* load_http1.c - spindle-load's HTTP/1.1 connections (--h1): keep-alive,
 * up to -m requests pipelined, responses matched to requests in order
 * (load_conn.h, the parser in load_h1.h).
 *
 * Every request is the same bytes, built once per worker (load_h1_request)
 * and lent to the socket by reference.  A response that ends the
 * connection ("connection: close", a body read until the close) leaves the
 * requests pipelined behind it unanswered: they are refused and issued
 * again on a new connection, as for a GOAWAY on HTTP/2.  A malformed or
 * short response counts as malformed, and the connection fails (the
 * requests behind it are lost).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_conn.h"

struct lh1_conn {
    lh1_parser p;
    uint32_t *fifo; /* slots waiting for their response, oldest first */
    uint32_t head, count;
    uint32_t unsent; /* requests issued and not fully written */
    size_t partial;  /* bytes of the first of them already written */
    bool closing;    /* a response ended the connection */
};

uint8_t *load_h1_request(const load_cfg *cfg, size_t *len)
{
    size_t cap = 512 + strlen(cfg->path) + cfg->body_len;
    for (size_t i = 0; i < cfg->nhdrs; i++)
        cap += cfg->hdrs[i].name_len + cfg->hdrs[i].value_len + 4;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    size_t n = (size_t)snprintf(b, cap, "%s %s HTTP/1.1\r\nhost: %s\r\n", cfg->method, cfg->path,
                                cfg->authority);
    for (size_t i = 0; i < cfg->nhdrs; i++)
        n += (size_t)snprintf(b + n, cap - n, "%.*s: %.*s\r\n", (int)cfg->hdrs[i].name_len,
                              (const char *)cfg->hdrs[i].name, (int)cfg->hdrs[i].value_len,
                              (const char *)cfg->hdrs[i].value);
    if (cfg->body)
        n += (size_t)snprintf(b + n, cap - n, "content-length: %zu\r\n", cfg->body_len);
    n += (size_t)snprintf(b + n, cap - n, "\r\n");
    if (cfg->body_len)
        memcpy(b + n, cfg->body, cfg->body_len);
    *len = n + cfg->body_len;
    return (uint8_t *)b;
}

static int h1_open(wstate *s, lconn *c)
{
    lh1_conn *k = calloc(1, sizeof *k);
    if (!k || !(k->fifo = calloc(s->cfg->streams, sizeof *k->fifo))) {
        free(k);
        return -ENOMEM;
    }
    lh1_init(&k->p, strcmp(s->cfg->method, "HEAD") == 0);
    c->h1 = k;
    return 0;
}

static void h1_close(wstate *s, lconn *c)
{
    (void)s;
    if (!c->h1)
        return;
    lh1_free(&c->h1->p);
    free(c->h1->fifo);
    free(c->h1);
    c->h1 = NULL;
}

static uint32_t pop(lh1_conn *k, uint32_t cap)
{
    uint32_t sl = k->fifo[k->head];
    k->head = (k->head + 1) % cap;
    k->count--;
    return sl;
}

/* The connection ends after this response: the rest were never answered. */
static void refuse_rest(wstate *s, lconn *c)
{
    lh1_conn *k = c->h1;
    k->closing = true;
    while (k->count)
        lc_slot_refused(s, c, pop(k, s->cfg->streams));
    k->unsent = 0;
    k->partial = 0;
}

static void answered(wstate *s, lconn *c)
{
    lh1_conn *k = c->h1;
    uint32_t sl = pop(k, s->cfg->streams);
    c->slots[sl - 1].status = k->p.status;
    c->slots[sl - 1].body = k->p.body;
    lc_slot_complete(s, c, sl);
    if (!k->p.keep_alive)
        refuse_rest(s, c);
}

static int h1_feed(wstate *s, lconn *c)
{
    lh1_conn *k = c->h1;
    while (c->rpos < c->rlen) {
        if (k->closing) { /* bytes after the last response: ignored */
            c->rpos = c->rlen;
            break;
        }
        lh1_ev ev;
        c->rpos += (uint32_t)lh1_parse(&k->p, c->rbuf + c->rpos, c->rlen - c->rpos, &ev);
        if (ev == LH1_ERROR || (ev == LH1_RESPONSE && k->count == 0)) {
            if (k->count)
                lc_slot_fail(s, c, pop(k, s->cfg->streams), false);
            return LC_FAIL;
        }
        if (ev == LH1_RESPONSE)
            answered(s, c);
    }
    return LC_FED;
}

static void h1_eof(wstate *s, lconn *c)
{
    lh1_conn *k = c->h1;
    if (k->closing)
        return;
    lh1_ev ev = lh1_eof(&k->p);
    if (ev == LH1_RESPONSE && k->count) {
        k->p.keep_alive = false;
        answered(s, c);
    } else if (ev == LH1_ERROR && k->count) {
        lc_slot_fail(s, c, pop(k, s->cfg->streams), false); /* short */
    }
}

static int h1_top_up(wstate *s, lconn *c)
{
    lh1_conn *k = c->h1;
    while (!k->closing && k->count < s->cfg->streams && lc_want_more(s)) {
        uint32_t sl = lc_slot_start(s, c);
        if (!sl)
            break;
        k->fifo[(k->head + k->count) % s->cfg->streams] = sl;
        k->count++;
        k->unsent++;
    }
    return LC_FED;
}

static size_t h1_out_prepare(wstate *s, lconn *c, struct iovec *iov, size_t max, size_t budget)
{
    lh1_conn *k = c->h1;
    size_t n = 0, bytes = 0, off = k->partial;
    for (uint32_t q = 0; q < k->unsent && n < max && bytes < budget; q++) {
        size_t len = s->h1_req_len - off;
        if (len > budget - bytes)
            len = budget - bytes;
        iov[n].iov_base = (void *)(uintptr_t)(s->h1_req + off);
        iov[n].iov_len = len;
        n++;
        bytes += len;
        off = 0;
    }
    return n;
}

static void h1_out_commit(wstate *s, lconn *c, size_t n)
{
    lh1_conn *k = c->h1;
    while (n && k->unsent) {
        size_t rest = s->h1_req_len - k->partial;
        if (n < rest) {
            k->partial += n;
            return;
        }
        n -= rest;
        k->partial = 0;
        k->unsent--;
    }
}

static bool h1_finished(const lconn *c)
{
    return c->h1->closing && c->h1->count == 0;
}

const load_proto load_proto_h1 = {
    .open = h1_open,
    .close = h1_close,
    .feed = h1_feed,
    .eof = h1_eof,
    .top_up = h1_top_up,
    .out_prepare = h1_out_prepare,
    .out_commit = h1_out_commit,
    .finished = h1_finished,
};
