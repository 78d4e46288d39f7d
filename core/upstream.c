/* upstream.c - upstream calls: the API, the calls' life, and the pool.
 *
 * An upstream is one origin's connections on one shard (upstream_conn.c
 * drives each).  A call is one request: copied at start (so it can wait,
 * and be re-issued once after a REFUSED_STREAM), put on the pending queue,
 * then dispatched onto a usable connection with room.  Dispatch runs at
 * start, when a stream ends (room), when a connection opens or dies, and
 * from the pool's timers:
 *   - kick: a 0 ms shard timer, so that work that would run callbacks
 *     (failing calls after a connection error found while writing) happens
 *     from the loop and never under the application's own call;
 *   - tick: every UP_TICK_MS while connections or pending calls exist:
 *     engine time-outs, connect time-outs and keepalive PINGs.
 * Connections that got a GOAWAY or failed do not count against max_conns:
 * a replacement opens beside a draining one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async.h"
#include "log.h"
#include "shard.h"
#include "upstream.h"

#define UP_TICK_MS 100u

spindle_upstream_config spindle_upstream_config_default(void)
{
    return (spindle_upstream_config){
        .tls_verify = true,
        .max_conns = 2,
        .max_pending = 1024,
        .connect_timeout_ms = 5000,
        .dns_refresh_ms = 30000,
        .call_timeout_ms = 30000,
    };
}

uint64_t up_now_ms(const spindle_upstream *u)
{
    return u->sh->now;
}

/* --- Upstreams ------------------------------------------------------------ */

/* A numeric host is the address; anything else is a name to look up
 * (upstream_dns.c).  false for what cannot be a host name. */
static bool parse_addr(spindle_upstream *u, const char *host, uint16_t port)
{
    up_addr *a = &u->addrs[0];
    struct sockaddr_in *a4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a->ss;
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        a->len = sizeof *a4;
        u->naddrs = 1;
        return true;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        a->len = sizeof *a6;
        u->naddrs = 1;
        return true;
    }
    /* A name (RFC 1035 length; letters, digits, '-', '.', '_'). */
    size_t n = strlen(host);
    if (!n || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = host[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
        if (!ok)
            return false;
    }
    u->named = true;
    return true;
}

/* Copy the configuration's strings into one block (authority and the TLS
 * name derived when absent). */
static int copy_strings(spindle_upstream *u, const spindle_upstream_config *cfg)
{
    char auth[300];
    bool v6 = !u->named && u->addrs[0].ss.ss_family == AF_INET6;
    if (cfg->authority)
        snprintf(auth, sizeof auth, "%s", cfg->authority);
    else
        snprintf(auth, sizeof auth, v6 ? "[%s]:%u" : "%s:%u", cfg->host, cfg->port);
    const char *name = cfg->tls_name ? cfg->tls_name : cfg->host;
    const char *ca = cfg->tls_ca_file ? cfg->tls_ca_file : "";
    size_t lh = strlen(cfg->host) + 1, la = strlen(auth) + 1, ln = strlen(name) + 1;
    size_t lc = strlen(ca) + 1;
    u->strs = malloc(lh + la + ln + lc);
    if (!u->strs)
        return SPINDLE_ENOMEM;
    char *p = u->strs;
    u->cfg.host = memcpy(p, cfg->host, lh);
    u->cfg.authority = memcpy(p + lh, auth, la);
    u->cfg.tls_name = memcpy(p + lh + la, name, ln);
    u->cfg.tls_ca_file = cfg->tls_ca_file ? memcpy(p + lh + la + ln, ca, lc) : NULL;
    return 0;
}

int spindle_upstream_new(spindle_shard *as, const spindle_upstream_config *cfg,
                         spindle_upstream **out)
{
    if (!cfg || !out || !cfg->host || !cfg->port || !cfg->max_conns)
        return SPINDLE_EINVAL;
    if (!cfg->tls && (cfg->tls_ca_file || cfg->tls_name))
        return SPINDLE_EINVAL;
    if (!as || as != async_current() || as->finished)
        return SPINDLE_ESTATE;
    spindle_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return SPINDLE_ENOMEM;
    u->as = as;
    u->sh = as->sh;
    u->cfg = *cfg;
    if (!parse_addr(u, cfg->host, cfg->port)) {
        free(u);
        return SPINDLE_EINVAL;
    }
    int rc = copy_strings(u, cfg);
    if (rc == 0 && cfg->tls) {
        u->tls = up_tls_ctx_new(&u->cfg, (int)u->sh->idx);
        if (!u->tls)
            rc = SPINDLE_ESYS;
    }
    if (rc != 0) {
        free(u->strs);
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

void spindle_upstream_free(spindle_upstream *u)
{
    if (!u)
        return;
    u->freeing = true;
    up_pending_fail(u, SPINDLE_ECLOSED);
    while (u->held) {
        spindle_call *call = u->held;
        up_hold_unlink(call);
        up_call_finish(call, SPINDLE_ECLOSED, 0);
    }
    while (u->conns)
        up_conn_fail(u->conns, SPINDLE_ECLOSED);
    up_conn_reap(u);
    up_ping_fail_orphans(u);
    up_dns_abandon(u);
    spindle_timer_cancel(u->tick);
    spindle_timer_cancel(u->kick);
    up_tls_ctx_free(u->tls);
    free(u->hdrs);
    free(u->strs);
    free(u);
}

uint32_t spindle_upstream_conns(const spindle_upstream *u, uint64_t *opened)
{
    if (opened)
        *opened = u ? u->opened : 0;
    return u ? u->nconns : 0;
}

void spindle_upstream_get_stats(const spindle_upstream *u, spindle_upstream_stats *out)
{
    *out = (spindle_upstream_stats){0};
    if (!u)
        return;
    out->conns = u->nconns;
    out->opened = u->opened;
    out->held_bytes = u->held_bytes;
    out->held_peak = u->held_peak;
    out->tls_handshakes = u->tls_handshakes;
    out->tls_resumed = u->tls_resumed;
    out->resolves = u->resolves;
    out->resolve_failures = u->resolve_failures;
}

const spindle_header *up_headers(spindle_upstream *u, const hpack_field *f, size_t n)
{
    if (n > u->hdrs_cap) {
        uint32_t cap = (uint32_t)n < 32 ? 32 : (uint32_t)n;
        spindle_header *h = realloc(u->hdrs, cap * sizeof *h);
        if (!h)
            return NULL;
        u->hdrs = h;
        u->hdrs_cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        u->hdrs[i] = (spindle_header){(const char *)f[i].name, (const char *)f[i].value,
                                      f[i].name_len, f[i].value_len};
    return u->hdrs;
}

/* --- The pool ------------------------------------------------------------- */

static void tick_fn(spindle_shard *as, void *arg);
static void kick_fn(spindle_shard *as, void *arg);

static void tick_arm(spindle_upstream *u)
{
    if (!u->tick && !u->freeing && (u->nconns || u->npend || u->dns_job))
        (void)spindle_shard_after(u->as, UP_TICK_MS, tick_fn, u, &u->tick);
}

void up_pool_kick(spindle_upstream *u)
{
    if (!u->kick && !u->freeing)
        (void)spindle_shard_after(u->as, 0, kick_fn, u, &u->kick);
}

static uint32_t usable_conns(const spindle_upstream *u)
{
    uint32_t n = 0;
    for (const up_conn *c = u->conns; c; c = up_conn_next(c))
        n += up_conn_usable(c);
    return n;
}

/* The least loaded usable connection with room, or NULL. */
static up_conn *pick(spindle_upstream *u)
{
    up_conn *best = NULL;
    for (up_conn *c = u->conns; c; c = up_conn_next(c)) {
        if (up_conn_room(c) == 0)
            continue;
        if (!best || up_conn_load(c) < up_conn_load(best))
            best = c;
    }
    return best;
}

static spindle_call *pend_pop(spindle_upstream *u)
{
    spindle_call *call = u->pend_head;
    u->pend_head = call->next;
    if (!u->pend_head)
        u->pend_tail = NULL;
    call->next = call->prev = NULL;
    u->npend--;
    return call;
}

void up_pending_fail(spindle_upstream *u, int err)
{
    while (u->pend_head)
        up_call_finish(pend_pop(u), err, 0);
}

static void pend_remove(spindle_upstream *u, spindle_call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        u->pend_head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        u->pend_tail = call->prev;
    call->next = call->prev = NULL;
    u->npend--;
}

static void pend_push_back(spindle_upstream *u, spindle_call *call)
{
    call->next = NULL;
    call->prev = u->pend_tail;
    if (u->pend_tail)
        u->pend_tail->next = call;
    else
        u->pend_head = call;
    u->pend_tail = call;
    u->npend++;
}

void up_pending_push_front(spindle_upstream *u, spindle_call *call)
{
    call->c = NULL;
    call->prev = NULL;
    call->next = u->pend_head;
    if (u->pend_head)
        u->pend_head->prev = call;
    else
        u->pend_tail = call;
    u->pend_head = call;
    u->npend++;
}

/* Dispatch pending calls.  may_fail: callbacks may run (from the loop);
 * otherwise what would fail a call is left to a kick. */
static void pool_dispatch(spindle_upstream *u, bool may_fail)
{
    while (u->pend_head && !u->freeing) {
        up_conn *c = pick(u);
        if (!c && usable_conns(u) < u->cfg.max_conns) {
            int err = 0;
            /* A name: look it up first (a stale answer still serves
             * meanwhile); with no answer yet, the answer dispatches. */
            if (up_dns_wanted(u) && up_dns_start(u) != 0 && !u->naddrs) {
                err = SPINDLE_EUPSTREAM;
            } else if (!u->naddrs) {
                tick_arm(u); /* bounds the wait (up_dns_tick) */
                return;
            }
            c = err ? NULL : up_conn_open(u, &err);
            if (!c) {
                if (!may_fail) {
                    up_pool_kick(u);
                    return;
                }
                log_msg(LOG_DEBUG, (int)u->sh->idx, "upstream %s: %s", u->cfg.authority,
                        spindle_strerror(err));
                up_pending_fail(u, SPINDLE_EUPSTREAM);
                return;
            }
            tick_arm(u);
        }
        if (!c)
            return; /* every connection is full: wait for a stream to end */
        spindle_call *call = pend_pop(u);
        int rc = up_call_issue(call, c);
        if (rc == SPINDLE_EAGAIN) {
            up_pending_push_front(u, call); /* c filled up or closed: look again */
            continue;
        }
        if (rc != 0) {
            if (!may_fail) {
                up_pending_push_front(u, call);
                up_pool_kick(u);
                return;
            }
            up_call_finish(call, rc, 0);
        }
    }
}

void up_pool_service(spindle_upstream *u)
{
    u->busy++;
    up_conn_reap(u);
    pool_dispatch(u, true);
    for (up_conn *c = u->conns; c; c = up_conn_next(c))
        up_conn_flush(c);
    u->busy--;
    up_conn_reap(u);
    up_ping_fail_orphans(u);
}

static void kick_fn(spindle_shard *as, void *arg)
{
    (void)as;
    spindle_upstream *u = arg;
    u->kick = NULL;
    up_pool_service(u);
}

static void tick_fn(spindle_shard *as, void *arg)
{
    (void)as;
    spindle_upstream *u = arg;
    u->tick = NULL;
    uint64_t now = up_now_ms(u);
    for (up_conn *c = u->conns; c; c = up_conn_next(c))
        up_conn_tick(c, now);
    up_dns_tick(u, now);
    up_pool_service(u);
    tick_arm(u);
}

/* --- Calls ---------------------------------------------------------------- */

static bool valid_fields(const hpack_field *f, size_t n)
{
    return h2_http_check_response_fields(f, (uint32_t)n) == H2_OK;
}

static size_t hlen(const char *s, uint32_t len)
{
    return len ? len : (s ? strlen(s) : 0);
}

/* The call with its request copied into one block after it. */
static spindle_call *call_new(const spindle_call_req *req)
{
    size_t lm = strlen(req->method), lp = strlen(req->path), bytes = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        bytes += hlen(req->headers[i].name, req->headers[i].name_len) +
                 hlen(req->headers[i].value, req->headers[i].value_len);
    size_t fsz = req->nheaders * sizeof(hpack_field);
    spindle_call *call = calloc(1, sizeof *call + fsz + lm + lp + bytes + 1);
    if (!call)
        return NULL;
    call->fields = (hpack_field *)(call + 1);
    uint8_t *p = (uint8_t *)call->fields + fsz;
    call->req.method = (h2_str){memcpy(p, req->method, lm), (uint32_t)lm};
    p += lm;
    call->req.path = (h2_str){memcpy(p, req->path, lp), (uint32_t)lp};
    p += lp;
    for (size_t i = 0; i < req->nheaders; i++) {
        const spindle_header *h = &req->headers[i];
        size_t ln = hlen(h->name, h->name_len), lv = hlen(h->value, h->value_len);
        hpack_field *f = &call->fields[i];
        memset(f, 0, sizeof *f);
        f->name = memcpy(p, h->name, ln);
        f->name_len = (uint32_t)ln;
        p += ln;
        f->value = lv ? memcpy(p, h->value, lv) : p;
        f->value_len = (uint32_t)lv;
        p += lv;
    }
    call->req.fields = call->fields;
    call->req.nfields = req->nheaders;
    call->replay = true;
    if (req->body_len && !(call->body = malloc(req->body_len))) {
        free(call);
        return NULL;
    }
    if (req->body_len)
        memcpy(call->body, req->body, req->body_len);
    call->body_len = call->body_cap = req->body_len;
    return call;
}

static void call_timeout(spindle_shard *as, void *arg);

int spindle_call_start(spindle_upstream *u, const spindle_call_req *req,
                       const spindle_call_handler *h, void *ctx, spindle_call **out)
{
    if (!u || !req || !h || !req->method || !req->path || !*req->method ||
        (req->path[0] != '/' && strcmp(req->path, "*") != 0) ||
        strcmp(req->method, "CONNECT") == 0 || (req->body_len && !req->body) ||
        (req->nheaders && !req->headers))
        return SPINDLE_EINVAL;
    if (u->freeing || u->as != async_current())
        return SPINDLE_ESTATE;
    if (u->npend >= u->cfg.max_pending)
        return SPINDLE_EAGAIN;
    spindle_call *call = call_new(req);
    if (!call)
        return SPINDLE_ENOMEM;
    if (!valid_fields(call->fields, call->req.nfields)) {
        free(call->body);
        free(call);
        return SPINDLE_EINVAL;
    }
    call->u = u;
    call->h = *h;
    call->ctx = ctx;
    call->body_more = req->body_more;
    call->req.scheme =
        u->cfg.tls ? (h2_str){(const uint8_t *)"https", 5} : (h2_str){(const uint8_t *)"http", 4};
    call->req.authority =
        (h2_str){(const uint8_t *)u->cfg.authority, (uint32_t)strlen(u->cfg.authority)};
    call->started_ms = up_now_ms(u);
    call->timeout_ms = req->timeout_ms ? req->timeout_ms : u->cfg.call_timeout_ms;
    if (call->timeout_ms &&
        spindle_shard_after(u->as, call->timeout_ms, call_timeout, call, &call->timer) != 0) {
        free(call->body);
        free(call);
        return SPINDLE_ENOMEM;
    }
    pend_push_back(u, call);
    if (out)
        *out = call;
    u->busy++;
    pool_dispatch(u, false);
    u->busy--;
    if (call->c)
        up_pool_kick(u); /* written from the loop: the calls of one iteration in one write */
    tick_arm(u);
    return 0;
}

int up_call_issue(spindle_call *call, up_conn *c)
{
    h2_conn *h2 = up_conn_h2(c);
    bool end = !call->body_len && !call->trailers && !call->body_more;
    up_chunk *k = NULL; /* the engine's copy of the body (ours stays for a retry) */
    if (call->body_len && !(k = malloc(sizeof *k + call->body_len)))
        return SPINDLE_ENOMEM;
    uint32_t sid;
    h2_rv rv = h2_client_request(h2, &call->req, end, call, &sid);
    if (rv != H2_OK) {
        free(k);
        if (rv == H2_E_AGAIN || rv == H2_E_CLOSED)
            return SPINDLE_EAGAIN;
        return rv == H2_E_NOMEM ? SPINDLE_ENOMEM : SPINDLE_EINVAL;
    }
    call->sid = sid;
    up_conn_attach(c, call);
    if (k) {
        memcpy(k->data, call->body, call->body_len);
        bool fin = !call->trailers && !call->body_more;
        (void)h2_conn_send_data(h2, sid, k->data, call->body_len, fin, up_chunk_release, k);
    }
    if (call->trailers)
        (void)h2_conn_send_trailers(h2, sid, call->trailers, call->ntrailers);
    return 0;
}

static void call_free(spindle_call *call)
{
    up_hold_free(call);
    free(call->body);
    free(call->trailers);
    free(call);
}

void up_call_finish(spindle_call *call, int err, uint32_t code)
{
    if (call->timer) {
        spindle_timer_cancel(call->timer);
        call->timer = NULL;
    }
    if (!call->cancelled && call->h.on_done) {
        call->in_cb = true;
        call->h.on_done(call, err, code, call->ctx);
    }
    call_free(call);
}

bool up_call_cb_begin(spindle_call *call)
{
    if (call->cancelled)
        return false;
    call->in_cb = true;
    return true;
}

bool up_call_cb_end(spindle_call *call)
{
    call->in_cb = false;
    if (!call->cancelled)
        return true;
    call->cancelled = false; /* spindle_call_cancel now frees it */
    spindle_call_cancel(call);
    return false;
}

static void call_timeout(spindle_shard *as, void *arg)
{
    (void)as;
    spindle_call *call = arg;
    spindle_upstream *u = call->u;
    call->timer = NULL;
    /* Time spent paused (the application's choice) does not count. */
    uint64_t now = up_now_ms(u);
    uint64_t active = now - call->started_ms - up_hold_paused_ms(call, now);
    if (active < call->timeout_ms &&
        spindle_shard_after(u->as, (uint32_t)(call->timeout_ms - active), call_timeout, call,
                            &call->timer) == 0)
        return;
    if (call->c)
        up_conn_call_done(call->c, call);
    else if (call->held_done)
        up_hold_unlink(call);
    else
        pend_remove(u, call);
    up_call_finish(call, SPINDLE_ETIMEDOUT, 0);
    up_pool_service(u);
}

void spindle_call_cancel(spindle_call *call)
{
    if (!call)
        return;
    if (call->in_cb) {
        call->cancelled = true; /* up_call_cb_end finishes it */
        return;
    }
    spindle_upstream *u = call->u;
    if (call->timer)
        spindle_timer_cancel(call->timer);
    up_conn *c = call->c;
    if (c)
        up_conn_call_done(c, call);
    else if (call->held_done)
        up_hold_unlink(call);
    else
        pend_remove(u, call);
    call_free(call);
    if (c) {
        up_conn_flush(c);
        up_pool_kick(u); /* its room may let a pending call go */
    }
}

/* Keep data in the call's body (for a retry, or until it is issued). */
static bool body_append(spindle_call *call, const void *data, size_t len)
{
    if (call->body_len + len > call->body_cap) {
        size_t cap = call->body_cap ? call->body_cap * 2 : 4096;
        while (cap < call->body_len + len)
            cap *= 2;
        uint8_t *p = realloc(call->body, cap);
        if (!p)
            return false;
        call->body = p;
        call->body_cap = cap;
    }
    if (len)
        memcpy(call->body + call->body_len, data, len);
    call->body_len += len;
    return true;
}

static void stop_replay(spindle_call *call)
{
    call->replay = false;
    free(call->body);
    call->body = NULL;
    call->body_len = call->body_cap = 0;
}

int spindle_call_send(spindle_call *call, const void *data, size_t len, bool end)
{
    if (!call || (len && !data))
        return SPINDLE_EINVAL;
    if (!call->body_more)
        return SPINDLE_ESTATE;
    if (call->held_done)
        return SPINDLE_ECLOSED; /* the response ended (held): the stream is gone */
    if (!call->c) {             /* pending: all of it goes out at issue */
        if (!body_append(call, data, len))
            return SPINDLE_ENOMEM;
        call->body_more = !end;
        return 0;
    }
    up_chunk *k = malloc(sizeof *k + len);
    if (!k)
        return SPINDLE_ENOMEM;
    if (len)
        memcpy(k->data, data, len);
    if (call->replay && (call->body_len + len > UP_REPLAY_MAX || !body_append(call, data, len)))
        stop_replay(call);
    call->body_more = !end;
    h2_rv rv =
        h2_conn_send_data(up_conn_h2(call->c), call->sid, k->data, len, end, up_chunk_release, k);
    if (rv != H2_OK)
        return rv == H2_E_NOMEM ? SPINDLE_ENOMEM : SPINDLE_ECLOSED;
    up_pool_kick(call->u);
    return 0;
}

int spindle_call_send_trailers(spindle_call *call, const spindle_header *h, size_t n)
{
    if (!call || (n && !h))
        return SPINDLE_EINVAL;
    if (!call->body_more)
        return SPINDLE_ESTATE;
    if (call->held_done)
        return SPINDLE_ECLOSED;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += hlen(h[i].name, h[i].name_len) + hlen(h[i].value, h[i].value_len);
    hpack_field *f = calloc(1, n * sizeof *f + bytes + 1);
    if (!f)
        return SPINDLE_ENOMEM;
    uint8_t *p = (uint8_t *)(f + n);
    for (size_t i = 0; i < n; i++) {
        size_t ln = hlen(h[i].name, h[i].name_len), lv = hlen(h[i].value, h[i].value_len);
        f[i].name = memcpy(p, h[i].name, ln);
        f[i].name_len = (uint32_t)ln;
        p += ln;
        f[i].value = lv ? memcpy(p, h[i].value, lv) : p;
        f[i].value_len = (uint32_t)lv;
        p += lv;
    }
    if (h2_http_check_trailers(f, (uint32_t)n).scope != H2_SCOPE_NONE) {
        free(f);
        return SPINDLE_EINVAL;
    }
    call->body_more = false;
    call->trailers = f; /* kept for a retry */
    call->ntrailers = n;
    if (!call->c)
        return 0;
    h2_rv rv = h2_conn_send_trailers(up_conn_h2(call->c), call->sid, f, n);
    if (rv != H2_OK)
        return rv == H2_E_NOMEM ? SPINDLE_ENOMEM : SPINDLE_ECLOSED;
    up_pool_kick(call->u);
    return 0;
}

size_t spindle_call_buffered(const spindle_call *call)
{
    if (!call || call->held_done)
        return 0;
    if (!call->c)
        return call->body_len;
    return up_conn_buffered(call->c, call->sid);
}

int spindle_upstream_ping(spindle_upstream *u, spindle_rtt_fn fn, void *ctx)
{
    if (!u || !fn)
        return SPINDLE_EINVAL;
    up_conn *best = NULL;
    for (up_conn *c = u->conns; c; c = up_conn_next(c))
        if (up_conn_usable(c) && up_conn_is_open(c) &&
            (!best || up_conn_load(c) < up_conn_load(best)))
            best = c;
    if (!best)
        return up_ping_orphan(u, fn, ctx);
    int rc = up_conn_ping(best, fn, ctx);
    if (rc == 0)
        up_conn_flush(best);
    return rc;
}
