/* accesslog.c - the access log: per-shard chunks, one log thread. */
#include "accesslog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "shard.h"
#include "spsc.h"
#include "stats.h"
#include "stream.h"

#define ALOG_CHUNK     (64u << 10) /* bytes per chunk */
#define ALOG_FLUSH_AT  (48u << 10) /* hand a chunk over once it holds this much */
#define ALOG_QUEUE     64u         /* chunks queued per shard (4 MiB) */
#define ALOG_PERIOD_MS 50          /* the log thread's polling period */
/* What a request's captured strings may hold, each. */
#define ALOG_MAX_METHOD 32u
#define ALOG_MAX_PATH   4096u
#define ALOG_MAX_HDR    1024u

typedef struct chunk {
    size_t len;
    char data[ALOG_CHUNK];
} chunk;

struct alog_shard {
    spsc q; /* chunk pointers, shard -> log thread */
    chunk *slots[ALOG_QUEUE];
    chunk *cur;
    int64_t t_sec;   /* the second the time fields hold */
    char t_text[32]; /* "[06/Dec/2026:22:05:10 +0000]" */
    char t_iso[24];  /* "2026-12-06T22:05:10" */
};

struct alog_server {
    server *srv;
    int fd;
    bool is_stdout;
    bool json;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool reopen;
    uint32_t nshards;
    alog_shard *shards; /* aligned_alloc: spsc is over-aligned */
};

/* --- The captured request ------------------------------------------------ */

/* [int64 realtime ms][uint16 len x4][method][path][user-agent][referer] */
enum { F_METHOD, F_PATH, F_UA, F_REFERER, F_N };

typedef struct capture {
    int64_t t_ms;
    uint16_t len[F_N];
    uint8_t present[F_N];
    char s[];
} capture;

static const spindle_header *find_hdr(const spindle_request *req, const char *name, size_t n)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == n && memcmp(req->headers[i].name, name, n) == 0)
            return &req->headers[i];
    return NULL;
}

char *alog_capture(const spindle_request *req, int64_t realtime_ns)
{
    const spindle_header *ua = find_hdr(req, "user-agent", 10);
    const spindle_header *ref = find_hdr(req, "referer", 7);
    const char *p[F_N] = {req->method.ptr, req->path.ptr, ua ? ua->value : NULL,
                          ref ? ref->value : NULL};
    size_t l[F_N] = {req->method.len, req->path.len, ua ? ua->value_len : 0,
                     ref ? ref->value_len : 0};
    static const size_t max[F_N] = {ALOG_MAX_METHOD, ALOG_MAX_PATH, ALOG_MAX_HDR, ALOG_MAX_HDR};
    size_t total = 0;
    for (int i = 0; i < F_N; i++) {
        if (l[i] > max[i])
            l[i] = max[i];
        total += l[i];
    }
    capture *c = malloc(sizeof *c + total);
    if (!c)
        return NULL;
    c->t_ms = realtime_ns / 1000000;
    char *o = c->s;
    for (int i = 0; i < F_N; i++) {
        c->len[i] = (uint16_t)l[i];
        c->present[i] = p[i] != NULL;
        if (l[i])
            memcpy(o, p[i], l[i]);
        o += l[i];
    }
    return (char *)c;
}

/* --- Formatting ---------------------------------------------------------- */

static const char hex[] = "0123456789abcdef";

/* Text: '"', '\' and bytes outside 0x20..0x7e as \xHH. */
static char *esc_text(char *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        } else {
            *o++ = (char)ch;
        }
    }
    return o;
}

/* JSON string contents: '"', '\' escaped, control bytes and bytes past
 * 0x7e as \u00HH (so any input makes valid JSON). */
static char *esc_json(char *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else if (ch < 0x20 || ch > 0x7e) {
            memcpy(o, "\\u00", 4);
            o += 4;
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        } else {
            *o++ = (char)ch;
        }
    }
    return o;
}

static const char *proto_name(uint8_t p)
{
    static const char *const names[] = {"h2c", "h2", "http/1.1"};
    return names[p < STATS_PROTOS ? p : 0];
}

/* Appenders: no printf on the per-line path (it cost more than the rest
 * of the line together). */
static char *put_s(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *put_u(char *o, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = tmp[--n];
    return o;
}

static char *put_2(char *o, int v)
{
    *o++ = (char)('0' + v / 10 % 10);
    *o++ = (char)('0' + v % 10);
    return o;
}

/* The client address: IPv4 by hand, IPv6 through inet_ntop. */
static char *put_addr(char *o, const req_info *in)
{
    if (in->family == AF_INET) {
        for (int i = 0; i < 4; i++) {
            if (i)
                *o++ = '.';
            o = put_u(o, in->addr[i]);
        }
        return o;
    }
    char a[INET6_ADDRSTRLEN];
    if (in->family != AF_INET6 || !inet_ntop(AF_INET6, in->addr, a, sizeof a))
        return put_s(o, "-");
    return put_s(o, a);
}

/* The time fields, formatted once per second per shard: text
 * "[06/Dec/2026:22:05:10 +0000]", JSON "2026-12-06T22:05:10". */
static void time_fields(alog_shard *a, int64_t secs)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (secs == a->t_sec && a->t_text[0])
        return;
    a->t_sec = secs;
    time_t tt = (time_t)secs;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int y = tm.tm_year + 1900;
    char *o = a->t_text;
    *o++ = '[';
    o = put_2(o, tm.tm_mday);
    *o++ = '/';
    memcpy(o, months + 3 * tm.tm_mon, 3);
    o += 3;
    *o++ = '/';
    o = put_2(put_2(o, y / 100), y % 100);
    *o++ = ':';
    o = put_2(o, tm.tm_hour);
    *o++ = ':';
    o = put_2(o, tm.tm_min);
    *o++ = ':';
    o = put_2(o, tm.tm_sec);
    memcpy(o, " +0000]", 8);
    o = a->t_iso;
    o = put_2(put_2(o, y / 100), y % 100);
    *o++ = '-';
    o = put_2(o, tm.tm_mon + 1);
    *o++ = '-';
    o = put_2(o, tm.tm_mday);
    *o++ = 'T';
    o = put_2(o, tm.tm_hour);
    *o++ = ':';
    o = put_2(o, tm.tm_min);
    *o++ = ':';
    o = put_2(o, tm.tm_sec);
    *o = '\0';
}

typedef struct line_ctx {
    const capture *cap;
    const char *f[F_N];
    const alog_shard *a;
    const req_track *t;
    uint64_t dur_us;
    uint32_t shard, sid;
} line_ctx;

static char *text_line(char *o, const line_ctx *x)
{
    const req_track *t = x->t;
    o = put_addr(o, &t->info);
    *o++ = ':';
    o = put_u(o, t->info.port);
    o = put_s(o, " - - ");
    o = put_s(o, x->a->t_text);
    o = put_s(o, " \"");
    o = esc_text(o, x->f[F_METHOD], x->cap->len[F_METHOD]);
    *o++ = ' ';
    o = esc_text(o, x->f[F_PATH], x->cap->len[F_PATH]);
    *o++ = ' ';
    o = put_s(o, proto_name(t->info.proto));
    o = put_s(o, "\" ");
    o = t->status ? put_u(o, t->status) : put_s(o, "-");
    *o++ = ' ';
    o = put_u(o, t->req_bytes);
    *o++ = ' ';
    o = put_u(o, t->resp_bytes);
    for (int i = F_REFERER; i >= F_UA; i--) {
        o = put_s(o, " \"");
        if (x->cap->present[i])
            o = esc_text(o, x->f[i], x->cap->len[i]);
        else
            *o++ = '-';
        *o++ = '"';
    }
    *o++ = ' ';
    o = put_u(o, x->dur_us);
    *o++ = ' ';
    o = put_u(o, x->shard);
    *o++ = ' ';
    o = put_u(o, t->conn_id);
    *o++ = ' ';
    o = put_u(o, x->sid);
    *o++ = '\n';
    return o;
}

static char *json_str(char *o, const char *key, const char *s, size_t n, bool present)
{
    o = put_s(o, ",\"");
    o = put_s(o, key);
    o = put_s(o, "\":");
    if (!present)
        return put_s(o, "null");
    *o++ = '"';
    o = esc_json(o, s, n);
    *o++ = '"';
    return o;
}

static char *json_num(char *o, const char *key, uint64_t v)
{
    o = put_s(o, ",\"");
    o = put_s(o, key);
    o = put_s(o, "\":");
    return put_u(o, v);
}

static char *json_line(char *o, const line_ctx *x)
{
    const req_track *t = x->t;
    o = put_s(o, "{\"time\":\"");
    o = put_s(o, x->a->t_iso);
    *o++ = '.';
    int ms = (int)(x->cap->t_ms % 1000);
    *o++ = (char)('0' + ms / 100);
    o = put_2(o, ms % 100);
    o = put_s(o, "Z\",\"client\":\"");
    o = put_addr(o, &t->info);
    *o++ = '"';
    o = json_num(o, "client_port", t->info.port);
    o = json_str(o, "method", x->f[F_METHOD], x->cap->len[F_METHOD], true);
    o = json_str(o, "path", x->f[F_PATH], x->cap->len[F_PATH], true);
    o = put_s(o, ",\"protocol\":\"");
    o = put_s(o, proto_name(t->info.proto));
    o = put_s(o, "\",\"status\":");
    o = t->status ? put_u(o, t->status) : put_s(o, "null");
    o = json_num(o, "request_bytes", t->req_bytes);
    o = json_num(o, "response_bytes", t->resp_bytes);
    o = json_num(o, "duration_us", x->dur_us);
    o = json_num(o, "shard", x->shard);
    o = json_num(o, "connection", t->conn_id);
    o = json_num(o, "stream", x->sid);
    o = json_str(o, "user_agent", x->f[F_UA], x->cap->len[F_UA], x->cap->present[F_UA]);
    o = json_str(o, "referer", x->f[F_REFERER], x->cap->len[F_REFERER], x->cap->present[F_REFERER]);
    *o++ = '}';
    *o++ = '\n';
    return o;
}

/* The chunk to write into, with room for `need` bytes; NULL: dropped. */
static chunk *room_for(shard *sh, size_t need)
{
    alog_shard *a = sh->view.alog;
    if (a->cur && ALOG_CHUNK - a->cur->len < need)
        alog_flush(sh);
    if (a->cur && ALOG_CHUNK - a->cur->len < need)
        return NULL; /* the queue is full */
    if (!a->cur) {
        a->cur = malloc(sizeof(chunk));
        if (!a->cur)
            return NULL;
        a->cur->len = 0;
    }
    return a->cur;
}

void alog_line(shard *sh, const spindle_stream *st, uint64_t dur_us)
{
    const req_track *t = &st->track;
    alog_shard *a = sh->view.alog;
    line_ctx x = {.cap = (const capture *)(const void *)t->alog,
                  .a = a,
                  .t = t,
                  .dur_us = dur_us,
                  .shard = sh->idx,
                  .sid = st->sid};
    const char *s = x.cap->s;
    size_t strs = 0;
    for (int i = 0; i < F_N; i++) {
        x.f[i] = s;
        s += x.cap->len[i];
        strs += x.cap->len[i];
    }
    time_fields(a, x.cap->t_ms / 1000);
    /* Worst case: every string byte escaped to 6, plus the fixed fields. */
    chunk *c = room_for(sh, 512 + 6 * strs);
    if (!c) {
        stat_add(&sh->stats.alog_dropped, 1);
        return;
    }
    char *o = c->data + c->len;
    char *end = sh->srv->alog->json ? json_line(o, &x) : text_line(o, &x);
    c->len += (size_t)(end - o);
    stat_add(&sh->stats.alog_lines, 1);
    if (c->len >= ALOG_FLUSH_AT)
        alog_flush(sh);
}

void alog_flush(shard *sh)
{
    alog_shard *a = sh->view.alog;
    if (!a || !a->cur || a->cur->len == 0)
        return;
    if (spsc_push(&a->q, &a->cur))
        a->cur = NULL;
}

void alog_shard_finish(shard *sh)
{
    alog_shard *a = sh->view.alog;
    if (!a || !a->cur)
        return;
    if (a->cur->len == 0) {
        free(a->cur);
        a->cur = NULL;
        return;
    }
    /* The log thread runs until every shard has exited: room comes. */
    while (!spsc_push(&a->q, &a->cur))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    a->cur = NULL;
}

/* --- The log thread ------------------------------------------------------ */

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void write_all(alog_server *L, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(L->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_msg(LOG_WARN, -1, "access log: write: %s", w < 0 ? strerror(errno) : "0 bytes");
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Write every queued chunk; true if there was any. */
static bool drain_all(alog_server *L)
{
    bool any = false;
    for (uint32_t i = 0; i < L->nshards; i++) {
        chunk *c;
        while (spsc_pop(&L->shards[i].q, &c)) {
            write_all(L, c->data, c->len);
            free(c);
            any = true;
        }
    }
    return any;
}

static void do_reopen(alog_server *L)
{
    if (L->is_stdout)
        return;
    int fd = open_log(L->srv->cfg.access_log);
    if (fd < 0) {
        log_msg(LOG_WARN, -1, "access log: cannot reopen %s: %s (keeping the old file)",
                L->srv->cfg.access_log, strerror(errno));
        return;
    }
    close(L->fd);
    L->fd = fd;
    log_msg(LOG_INFO, -1, "access log: reopened %s", L->srv->cfg.access_log);
}

static void *log_thread(void *arg)
{
    alog_server *L = arg;
    for (;;) {
        bool stopping = atomic_load(&L->stop);
        if (atomic_exchange(&L->reopen, false)) {
            drain_all(L); /* lines before the HUP go to the old file */
            do_reopen(L);
        }
        bool any = drain_all(L);
        if (stopping && !any)
            break; /* the shards have exited: nothing more comes */
        if (!any)
            nanosleep(&(struct timespec){0, ALOG_PERIOD_MS * 1000000L}, NULL);
    }
    return NULL;
}

int alog_start(server *srv)
{
    const char *path = srv->cfg.access_log;
    if (!path || !*path)
        return 0;
    alog_server *L = calloc(1, sizeof *L);
    size_t bytes = (srv->nshards * sizeof(alog_shard) + 63) & ~(size_t)63;
    alog_shard *sh = L ? aligned_alloc(64, bytes) : NULL;
    if (!sh) {
        free(L);
        return SPINDLE_ENOMEM;
    }
    memset(sh, 0, bytes);
    L->srv = srv;
    L->json = srv->cfg.access_log_format == 1;
    L->is_stdout = strcmp(path, "-") == 0;
    L->fd = L->is_stdout ? dup(STDOUT_FILENO) : open_log(path);
    if (L->fd < 0) {
        log_msg(LOG_ERROR, -1, "access log: cannot open %s: %s", path, strerror(errno));
        free(sh);
        free(L);
        return SPINDLE_ESYS;
    }
    L->nshards = srv->nshards;
    L->shards = sh;
    for (uint32_t i = 0; i < srv->nshards; i++) {
        spsc_init(&sh[i].q, sh[i].slots, ALOG_QUEUE, sizeof(chunk *));
        srv->shards[i].view.alog = &sh[i];
    }
    atomic_init(&L->stop, false);
    atomic_init(&L->reopen, false);
    if (pthread_create(&L->thread, NULL, log_thread, L) != 0) {
        log_msg(LOG_ERROR, -1, "access log: cannot start its thread");
        for (uint32_t i = 0; i < srv->nshards; i++)
            srv->shards[i].view.alog = NULL;
        close(L->fd);
        free(sh);
        free(L);
        return SPINDLE_ESYS;
    }
    srv->alog = L;
    return 0;
}

void alog_stop(server *srv)
{
    alog_server *L = srv->alog;
    if (!L)
        return;
    atomic_store(&L->stop, true);
    pthread_join(L->thread, NULL);
    drain_all(L); /* nothing is left; belt and braces */
    for (uint32_t i = 0; i < L->nshards; i++)
        free(L->shards[i].cur); /* a shard that failed before its teardown */
    close(L->fd);
    free(L->shards);
    free(L);
    srv->alog = NULL;
}

void alog_reopen(server *srv)
{
    if (srv->alog)
        atomic_store(&srv->alog->reopen, true);
}
