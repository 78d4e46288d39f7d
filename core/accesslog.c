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
#define CAP_BLOCK       256u  /* a pooled capture's size */
#define CAP_POOL        1024u /* capture blocks a shard keeps */

typedef struct capture capture;

typedef struct chunk {
    size_t len;
    char data[ALOG_CHUNK];
} chunk;

struct alog_shard {
    spsc q; /* chunk pointers, shard -> log thread */
    chunk *slots[ALOG_QUEUE];
    chunk *cur;
    int64_t t_sec;   /* the second the time fields hold */
    char t_text[32]; /* "[06/Dec/2026:22:05:10 +0000]" (T_TEXT_LEN) */
    char t_iso[24];  /* "2026-12-06T22:05:10" (T_ISO_LEN) */
    /* The last line's connection fields, formatted: lines of one
     * connection come in runs (its streams end in the same loop
     * iterations).  head: text "ADDR:PORT - - ", JSON the client and
     * client_port members; mid: text " SHARD CONN ", JSON the shard and
     * connection members and the stream key (conn_fields()). */
    uint64_t conn_seen; /* its connection id (0: none yet) */
    uint8_t head_len, mid_len;
    char head[96];
    char mid[80];
    uint32_t npool;
    capture *pool[CAP_POOL]; /* free capture blocks */
};

#define T_TEXT_LEN 28u
#define T_ISO_LEN  19u

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

/* What a line needs of its request head, captured when it arrives (its
 * strings live only during on_request), escaped for the log's format once,
 * there:
 *   text  seg1 = METHOD PATH (then ' ' PROTO at the line)
 *         seg2 = "REFERER" "USER-AGENT" ('-' for an absent one)
 *   json  seg1 = ,"method":"..","path":".."
 *         seg2 = ,"user_agent":..,"referer":.. (null for an absent one)
 * Small captures come from a per-shard pool of CAP_BLOCK-byte blocks, each
 * its own malloc (so a plain free() of one, stream.c's for a stream that
 * never finished, is right too). */
struct capture {
    int64_t t_ms;
    uint16_t seg1, seg2; /* lengths; seg2 follows seg1 in s */
    bool pooled;         /* CAP_BLOCK bytes: may go back to the pool */
    char s[];
};

/* user-agent and referer, in one pass over the fields. */
static void find_hdrs(const spindle_request *req, const spindle_header **ua,
                      const spindle_header **ref)
{
    *ua = *ref = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const spindle_header *h = &req->headers[i];
        if (h->name_len == 10 && !*ua && memcmp(h->name, "user-agent", 10) == 0)
            *ua = h;
        else if (h->name_len == 7 && !*ref && memcmp(h->name, "referer", 7) == 0)
            *ref = h;
    }
}

/* --- Formatting ---------------------------------------------------------- */

static const char hex[] = "0123456789abcdef";

static bool text_ok(unsigned char ch)
{
    return (unsigned)(ch - 0x20u) < 0x5fu && ch != '"' && ch != '\\';
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* True if one of w's 8 bytes needs escaping (below 0x20, above 0x7e, '"'
 * or '\\'); exact for "any", word at a time (the bit tricks of Sean
 * Anderson's "Bit Twiddling Hacks": haszero, hasless, hasmore). */
static bool word_bad(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    uint64_t less = (w - ONES * 0x20) & ~w;
    uint64_t more = (w + ONES * (127 - 0x7e)) | w;
    uint64_t quote = (q - ONES) & ~q, bs = (b - ONES) & ~b;
    return ((less | more | quote | bs) & HIGHS) != 0;
}

/* The length of s's leading run of bytes that need no escaping. */
static size_t clean_run(const char *s, size_t i, size_t n)
{
    uint64_t w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if (word_bad(w))
            break;
    }
    if (i < n && n >= 8 && i + 8 > n) {
        /* The tail as the last 8 bytes (overlapping checked ones). */
        memcpy(&w, s + n - 8, 8);
        if (!word_bad(w))
            return n;
    }
    while (i < n && text_ok((unsigned char)s[i]))
        i++;
    return i;
}

/* Text: '"', '\' and bytes outside 0x20..0x7e as \xHH.  Runs of bytes
 * that need nothing are found first and copied at once. */
static char *esc_text(char *o, const char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t j = clean_run(s, i, n);
        memcpy(o, s + i, j - i);
        o += j - i;
        if (j == n)
            return o;
        unsigned char ch = (unsigned char)s[j];
        *o++ = '\\';
        *o++ = 'x';
        *o++ = hex[ch >> 4];
        *o++ = hex[ch & 15];
        i = j + 1;
    }
}

/* JSON string contents: '"', '\\' escaped, control bytes and bytes past
 * 0x7e as \u00HH (so any input makes valid JSON); runs of bytes that need
 * nothing copied at once. */
static char *esc_json(char *o, const char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t j = clean_run(s, i, n);
        memcpy(o, s + i, j - i);
        o += j - i;
        if (j == n)
            return o;
        unsigned char ch = (unsigned char)s[j];
        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else {
            memcpy(o, "\\u00", 4);
            o += 4;
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
        i = j + 1;
    }
}

/* The protocol's name (h2c, h2, http/1.1) and its length. */
static char *put_proto(char *o, uint8_t p)
{
    static const struct {
        char s[8];
        uint8_t n;
    } names[STATS_PROTOS] = {{"h2c", 3}, {"h2", 2}, {"http/1.1", 8}};
    p = p < STATS_PROTOS ? p : 0;
    memcpy(o, names[p].s, sizeof names[p].s); /* room for 8 is always there */
    return o + names[p].n;
}

/* Appenders: no printf on the per-line path (it cost more than the rest
 * of the line together). */
static char *put_s(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *put_seg(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

/* Decimal, two digits per division, written from the last digit back. */
static char *put_u(char *o, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    unsigned n = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : 5;
    for (uint64_t p = 100000; n < 20 && v >= p; p *= 10)
        n++;
    char *e = o + n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        e -= 2;
        memcpy(e, pairs + 2 * r, 2);
    }
    if (v >= 10)
        memcpy(e - 2, pairs + 2 * v, 2);
    else
        e[-1] = (char)('0' + v);
    return o + n;
}

static char *put_2(char *o, int v)
{
    *o++ = (char)('0' + v / 10 % 10);
    *o++ = (char)('0' + v % 10);
    return o;
}

/* The client address: IPv4 by hand, IPv6 through inet_ntop. */
static size_t format_addr(char *o, const req_info *in)
{
    char *b = o;
    if (in->family == AF_INET) {
        for (int i = 0; i < 4; i++) {
            if (i)
                *o++ = '.';
            o = put_u(o, in->addr[i]);
        }
        return (size_t)(o - b);
    }
    char a[INET6_ADDRSTRLEN];
    if (in->family != AF_INET6 || !inet_ntop(AF_INET6, in->addr, a, sizeof a))
        return (size_t)(put_s(o, "-") - b);
    return (size_t)(put_s(o, a) - b);
}

/* The connection's fields (alog_shard.head, .mid), formatted once per run
 * of lines from one connection. */
static void conn_fields(alog_shard *a, const req_track *t, uint32_t shard_idx, bool json)
{
    char *o = a->head;
    if (json)
        o = put_s(o, "Z\",\"client\":\"");
    o += format_addr(o, &t->info);
    o = put_s(o, json ? "\",\"client_port\":" : ":");
    o = put_u(o, t->info.port);
    if (!json)
        o = put_s(o, " - - ");
    a->head_len = (uint8_t)(o - a->head);
    o = a->mid;
    o = put_s(o, json ? ",\"shard\":" : " ");
    o = put_u(o, shard_idx);
    o = put_s(o, json ? ",\"connection\":" : " ");
    o = put_u(o, t->conn_id);
    o = put_s(o, json ? ",\"stream\":" : " ");
    a->mid_len = (uint8_t)(o - a->mid);
    a->conn_seen = t->conn_id;
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

/* --- Capturing ------------------------------------------------------------ */

/* What s escapes to at most; *clean: nothing to escape. */
static size_t esc_bound(const char *s, size_t n, bool json, bool *clean)
{
    *clean = clean_run(s, 0, n) == n;
    return *clean ? n : n * (json ? 6u : 4u);
}

static char *esc_copy(char *o, const char *s, size_t n, bool clean, bool json)
{
    if (clean) {
        memcpy(o, s, n);
        return o + n;
    }
    return json ? esc_json(o, s, n) : esc_text(o, s, n);
}

/* A JSON member ,"key":"value" (or null when absent). */
static char *json_member(char *o, const char *key, const char *s, size_t n, bool clean)
{
    o = put_s(o, ",\"");
    o = put_s(o, key);
    o = put_s(o, "\":");
    if (!s)
        return put_s(o, "null");
    *o++ = '"';
    o = esc_copy(o, s, n, clean, true);
    *o++ = '"';
    return o;
}

/* A text field "value" (or "-" when absent). */
static char *text_quoted(char *o, const char *s, size_t n, bool clean)
{
    *o++ = '"';
    if (s)
        o = esc_copy(o, s, n, clean, false);
    else
        *o++ = '-';
    *o++ = '"';
    return o;
}

static capture *cap_alloc(alog_shard *a, size_t size)
{
    if (size <= CAP_BLOCK && a->npool)
        return a->pool[--a->npool];
    capture *c = malloc(size <= CAP_BLOCK ? CAP_BLOCK : size);
    if (c)
        c->pooled = size <= CAP_BLOCK;
    return c;
}

char *alog_capture(shard *sh, const spindle_request *req, int64_t realtime_ns)
{
    const spindle_header *ua, *ref;
    find_hdrs(req, &ua, &ref);
    enum { F_METHOD, F_PATH, F_UA, F_REFERER, F_N };
    const char *p[F_N] = {req->method.ptr ? req->method.ptr : "",
                          req->path.ptr ? req->path.ptr : "", ua ? ua->value : NULL,
                          ref ? ref->value : NULL};
    size_t l[F_N] = {req->method.len, req->path.len, ua ? ua->value_len : 0,
                     ref ? ref->value_len : 0};
    static const size_t max[F_N] = {ALOG_MAX_METHOD, ALOG_MAX_PATH, ALOG_MAX_HDR, ALOG_MAX_HDR};
    bool json = sh->srv->alog->json, clean[F_N];
    size_t size = sizeof(capture) + 80; /* the JSON keys, quotes, separators */
    for (int i = 0; i < F_N; i++) {
        if (l[i] > max[i])
            l[i] = max[i];
        /* The method is a token (both engines check): nothing to escape. */
        clean[i] = i == F_METHOD;
        size += clean[i] ? l[i] : esc_bound(p[i] ? p[i] : "", l[i], json, &clean[i]);
    }
    capture *c = cap_alloc(sh->view.alog, size);
    if (!c)
        return NULL;
    c->t_ms = realtime_ns / 1000000;
    char *o = c->s;
    if (json) {
        o = json_member(o, "method", p[F_METHOD], l[F_METHOD], clean[F_METHOD]);
        o = json_member(o, "path", p[F_PATH], l[F_PATH], clean[F_PATH]);
    } else {
        o = put_seg(o, p[F_METHOD], l[F_METHOD]); /* a token: nothing to escape */
        *o++ = ' ';
        o = esc_copy(o, p[F_PATH], l[F_PATH], clean[F_PATH], false);
    }
    c->seg1 = (uint16_t)(o - c->s);
    if (json) {
        o = json_member(o, "user_agent", p[F_UA], l[F_UA], clean[F_UA]);
        o = json_member(o, "referer", p[F_REFERER], l[F_REFERER], clean[F_REFERER]);
    } else {
        o = text_quoted(o, p[F_REFERER], l[F_REFERER], clean[F_REFERER]);
        *o++ = ' ';
        o = text_quoted(o, p[F_UA], l[F_UA], clean[F_UA]);
    }
    c->seg2 = (uint16_t)(o - c->s - c->seg1);
    return (char *)c;
}

void alog_release(shard *sh, char *cap)
{
    capture *c = (capture *)(void *)cap;
    alog_shard *a = sh->view.alog;
    if (c && c->pooled && a && a->npool < CAP_POOL)
        a->pool[a->npool++] = c;
    else
        free(c);
}

typedef struct line_ctx {
    const capture *cap;
    alog_shard *a;
    const req_track *t;
    uint64_t dur_us;
    uint32_t shard, sid;
} line_ctx;

/* ADDR:PORT - - [time] "METHOD PATH PROTO" STATUS REQ RESP "REFERER" "UA"
 * DURATION SHARD CONN STREAM */
static char *text_line(char *o, const line_ctx *x)
{
    const req_track *t = x->t;
    const capture *c = x->cap;
    o = put_seg(o, x->a->head, x->a->head_len); /* ADDR:PORT - - */
    memcpy(o, x->a->t_text, T_TEXT_LEN);
    o += T_TEXT_LEN;
    o = put_s(o, " \"");
    o = put_seg(o, c->s, c->seg1); /* METHOD PATH */
    *o++ = ' ';
    o = put_proto(o, t->info.proto);
    o = put_s(o, "\" ");
    o = t->status ? put_u(o, t->status) : put_s(o, "-");
    *o++ = ' ';
    o = put_u(o, t->req_bytes);
    *o++ = ' ';
    o = put_u(o, t->resp_bytes);
    *o++ = ' ';
    o = put_seg(o, c->s + c->seg1, c->seg2); /* "REFERER" "USER-AGENT" */
    *o++ = ' ';
    o = put_u(o, x->dur_us);
    o = put_seg(o, x->a->mid, x->a->mid_len); /* SHARD CONN */
    o = put_u(o, x->sid);
    *o++ = '\n';
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
    const capture *c = x->cap;
    o = put_s(o, "{\"time\":\"");
    memcpy(o, x->a->t_iso, T_ISO_LEN);
    o += T_ISO_LEN;
    *o++ = '.';
    int ms = (int)(c->t_ms % 1000);
    *o++ = (char)('0' + ms / 100);
    o = put_2(o, ms % 100);
    o = put_seg(o, x->a->head, x->a->head_len); /* client, client_port */
    o = put_seg(o, c->s, c->seg1);              /* method, path */
    o = put_s(o, ",\"protocol\":\"");
    o = put_proto(o, t->info.proto);
    o = put_s(o, "\",\"status\":");
    o = t->status ? put_u(o, t->status) : put_s(o, "null");
    o = json_num(o, "request_bytes", t->req_bytes);
    o = json_num(o, "response_bytes", t->resp_bytes);
    o = json_num(o, "duration_us", x->dur_us);
    o = put_seg(o, x->a->mid, x->a->mid_len); /* shard, connection, "stream": */
    o = put_u(o, x->sid);
    o = put_seg(o, c->s + c->seg1, c->seg2); /* user_agent, referer */
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
    time_fields(a, x.cap->t_ms / 1000);
    if (a->conn_seen != t->conn_id || !a->conn_seen)
        conn_fields(a, t, sh->idx, sh->srv->alog->json);
    /* The segments (escaped at capture) plus the fixed fields. */
    chunk *c = room_for(sh, 512u + x.cap->seg1 + x.cap->seg2);
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
    for (uint32_t i = 0; i < L->nshards; i++) {
        free(L->shards[i].cur); /* a shard that failed before its teardown */
        while (L->shards[i].npool)
            free(L->shards[i].pool[--L->shards[i].npool]);
    }
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
