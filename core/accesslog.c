/* accesslog.c - the access log's shard side: a request head captured,
 * its line formatted into the shard's chunk, chunks handed over.  The log
 * thread, start, stop and reopen are in accesslog_writer.c. */
#include "accesslog.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accesslog_fmt.h"
#include "accesslog_internal.h"
#include "server.h"
#include "shard.h"
#include "stats.h"
#include "stream.h"

/* What a request's captured strings may hold, each. */
#define ALOG_MAX_METHOD 32u
#define ALOG_MAX_PATH   4096u
#define ALOG_MAX_HDR    1024u
#define CAP_BLOCK       256u /* a pooled capture's size */
/* A capture's bytes besides its strings: the JSON keys, quotes, the
 * separators (at most 60) and ALOG_SLACK. */
#define CAP_FIXED 160u
/* A line's bytes besides its captured segments, at most: the cached start
 * (pre, at most 112), the numbers and keys, mid, and ALOG_SLACK. */
#define LINE_FIXED 400u

/* --- The captured request ------------------------------------------------ */

/* What a line needs of its request head, captured when it arrives (its
 * strings live only during on_request), escaped for the log's format once,
 * there:
 *   text  seg1 = METHOD PATH (the line adds " PROTO\" ")
 *         seg2 = "REFERER" "USER-AGENT" ('-' for an absent one)
 *   json  seg1 = ,"method":"..","path":".. (the line adds the path's
 *                closing quote, the protocol and the status key)
 *         seg2 = ,"user_agent":..,"referer":.. (null for an absent one)
 * ALOG_SLACK addressable bytes follow seg2 (the line copies the segments
 * 16 bytes at a time).  Small captures come from a per-shard pool of
 * CAP_BLOCK-byte blocks, each its own malloc (so a plain free() of one,
 * stream.c's for a stream that never finished, is right too). */
struct alog_cap {
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

/* Text: '"', '\' and bytes outside 0x20..0x7e as \xHH (the rare path: a
 * value alog_clean() found something in). */
__attribute__((noinline)) static char *esc_text(char *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (alog_byte_ok(ch)) {
            *o++ = (char)ch;
            continue;
        }
        *o++ = '\\';
        *o++ = 'x';
        *o++ = hex[ch >> 4];
        *o++ = hex[ch & 15];
    }
    return o;
}

/* JSON string contents: '"', '\\' escaped, control bytes and bytes past
 * 0x7e as \u00HH (so any input makes valid JSON). */
__attribute__((noinline)) static char *esc_json(char *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (alog_byte_ok(ch)) {
            *o++ = (char)ch;
        } else if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else {
            memcpy(o, "\\u00", 4);
            o += 4;
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    return o;
}

/* A string constant (its length folds at compile time). */
static inline char *put_s(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

/* What follows seg1 in a line, by STATS_PROTO_*: the protocol and the
 * separators around it, one fixed 48-byte copy (the chunk has room). */
typedef struct proto_tail {
    char s[48];
    uint8_t n;
} proto_tail;

static const proto_tail text_tails[STATS_PROTOS] = {
    {" h2c\" ", 6}, {" h2\" ", 5}, {" http/1.1\" ", 11}};
static const proto_tail json_tails[STATS_PROTOS] = {
    {"\",\"protocol\":\"h2c\",\"status\":", 28},
    {"\",\"protocol\":\"h2\",\"status\":", 27},
    {"\",\"protocol\":\"http/1.1\",\"status\":", 33}};

static char *put_tail(char *o, const proto_tail *tails, uint8_t p)
{
    const proto_tail *t = &tails[p < STATS_PROTOS ? p : 0];
    memcpy(o, t->s, sizeof t->s);
    return o + t->n;
}

/* The client address: IPv4 by hand, IPv6 through inet_ntop. */
static char *put_addr(char *o, const req_info *in)
{
    if (in->family == AF_INET) {
        for (int i = 0; i < 4; i++) {
            if (i)
                *o++ = '.';
            o = alog_put_u(o, in->addr[i]);
        }
        return o;
    }
    char a[INET6_ADDRSTRLEN];
    if (in->family != AF_INET6 || !inet_ntop(AF_INET6, in->addr, a, sizeof a))
        return put_s(o, "-");
    return alog_cpy(o, a, strlen(a));
}

/* The connection's fields (alog_shard.head, .mid). */
static void conn_fields(alog_shard *a, const req_track *t, uint32_t shard_idx)
{
    bool json = a->json;
    char *o = a->head;
    if (json)
        o = put_s(o, "Z\",\"client\":\"");
    o = put_addr(o, &t->info);
    o = json ? put_s(o, "\",\"client_port\":") : put_s(o, ":");
    o = alog_put_u(o, t->info.port);
    if (!json)
        o = put_s(o, " - - ");
    a->head_len = (uint8_t)(o - a->head);
    o = a->mid;
    o = json ? put_s(o, ",\"shard\":") : put_s(o, " ");
    o = alog_put_u(o, shard_idx);
    o = json ? put_s(o, ",\"connection\":") : put_s(o, " ");
    o = alog_put_u(o, t->conn_id);
    o = json ? put_s(o, ",\"stream\":") : put_s(o, " ");
    a->mid_len = (uint8_t)(o - a->mid);
    a->mid_conn = t->conn_id;
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
    o = alog_put_2(o, tm.tm_mday);
    *o++ = '/';
    memcpy(o, months + 3 * tm.tm_mon, 3);
    o += 3;
    *o++ = '/';
    o = alog_put_2(alog_put_2(o, y / 100 % 100), y % 100);
    *o++ = ':';
    o = alog_put_2(o, tm.tm_hour);
    *o++ = ':';
    o = alog_put_2(o, tm.tm_min);
    *o++ = ':';
    o = alog_put_2(o, tm.tm_sec);
    memcpy(o, " +0000]", 8);
    o = a->t_iso;
    o = alog_put_2(alog_put_2(o, y / 100 % 100), y % 100);
    *o++ = '-';
    o = alog_put_2(o, tm.tm_mon + 1);
    *o++ = '-';
    o = alog_put_2(o, tm.tm_mday);
    *o++ = 'T';
    o = alog_put_2(o, tm.tm_hour);
    *o++ = ':';
    o = alog_put_2(o, tm.tm_min);
    *o++ = ':';
    o = alog_put_2(o, tm.tm_sec);
    *o = '\0';
}

/* The line's start (alog_shard.pre) for this connection and this second
 * (text) or millisecond (JSON); rebuilt only when either changes. */
static void line_start(alog_shard *a, const req_track *t, uint32_t shard_idx, int64_t t_ms)
{
    if (a->mid_conn != t->conn_id || !a->mid_len)
        conn_fields(a, t, shard_idx);
    time_fields(a, t_ms / 1000);
    char *o = a->pre;
    if (a->json) {
        o = put_s(o, "{\"time\":\"");
        memcpy(o, a->t_iso, ALOG_T_ISO_LEN);
        o += ALOG_T_ISO_LEN;
        int ms = (int)(t_ms % 1000);
        *o++ = '.';
        *o++ = (char)('0' + ms / 100);
        o = alog_put_2(o, ms % 100);
        o = alog_cpy(o, a->head, a->head_len);
    } else {
        o = alog_cpy(o, a->head, a->head_len); /* ADDR:PORT - - */
        memcpy(o, a->t_text, ALOG_T_TEXT_LEN);
        o += ALOG_T_TEXT_LEN;
        o = put_s(o, " \"");
    }
    a->pre_len = (uint8_t)(o - a->pre);
    a->pre_conn = t->conn_id;
    /* Valid for [pre_ms, pre_ms + pre_span): its second, or its ms. */
    a->pre_span = a->json ? 1 : 1000;
    a->pre_ms = a->json ? t_ms : t_ms - t_ms % 1000;
}

/* --- Capturing ------------------------------------------------------------ */

static alog_cap *cap_alloc(alog_shard *a, size_t size)
{
    if (size <= CAP_BLOCK && a->npool)
        return a->pool[--a->npool];
    alog_cap *c = malloc(size <= CAP_BLOCK ? CAP_BLOCK : size);
    if (c)
        c->pooled = size <= CAP_BLOCK;
    return c;
}

static inline char *put_esc(char *o, const char *s, size_t n, bool clean, bool json)
{
    if (clean)
        return alog_cpy(o, s, n);
    return json ? esc_json(o, s, n) : esc_text(o, s, n);
}

/* A JSON member's value: "value" or null when absent. */
static char *json_value(char *o, const char *s, size_t n, bool clean)
{
    if (!s)
        return put_s(o, "null");
    *o++ = '"';
    o = put_esc(o, s, n, clean, true);
    *o++ = '"';
    return o;
}

/* A text field "value" (or "-" when absent). */
static char *text_quoted(char *o, const char *s, size_t n, bool clean)
{
    *o++ = '"';
    if (s)
        o = put_esc(o, s, n, clean, false);
    else
        *o++ = '-';
    *o++ = '"';
    return o;
}

static size_t clamp(size_t n, size_t max)
{
    return n < max ? n : max;
}

/* seg2 (the user agent and the referer) for a capture. */
typedef struct seg2_in {
    const char *ua, *ref;
    size_t ul, rl;
    bool uc, rc; /* clean: nothing to escape */
} seg2_in;

static char *put_seg2(char *o, bool json, seg2_in in)
{
    const char *ua = in.ua, *ref = in.ref;
    size_t ul = in.ul, rl = in.rl;
    bool uc = in.uc, rc = in.rc;
    if (json) {
        o = put_s(o, ",\"user_agent\":");
        o = json_value(o, ua, ul, uc);
        o = put_s(o, ",\"referer\":");
        return json_value(o, ref, rl, rc);
    }
    o = text_quoted(o, ref, rl, rc);
    *o++ = ' ';
    return text_quoted(o, ua, ul, uc);
}

/* Remember ua, ref and the seg2 they made at s (when short enough). */
static void memo_set(alog_shard *a, const char *ua, size_t ul, const char *ref, size_t rl,
                     const char *s, size_t n)
{
    if (ul > ALOG_MEMO_RAW || rl > ALOG_MEMO_RAW || n > ALOG_MEMO_SEG2 || n == 0) {
        a->memo_seg2_len = 0;
        return;
    }
    alog_cpy(a->memo_ua, ua ? ua : "", ul);
    alog_cpy(a->memo_ref, ref ? ref : "", rl);
    alog_cpy_slack(a->memo_seg2, s, n); /* the capture has ALOG_SLACK past s + n */
    a->memo_ul = ua ? (uint16_t)ul : ALOG_ABSENT;
    a->memo_rl = ref ? (uint16_t)rl : ALOG_ABSENT;
    a->memo_seg2_len = (uint16_t)n;
}

char *alog_capture(shard *sh, const spindle_request *req, int64_t realtime_ns)
{
    alog_shard *a = sh->view.alog;
    const spindle_header *uah, *refh;
    find_hdrs(req, &uah, &refh);
    const char *m = req->method.ptr ? req->method.ptr : "";
    const char *path = req->path.ptr ? req->path.ptr : "";
    const char *ua = uah ? uah->value : NULL, *ref = refh ? refh->value : NULL;
    size_t ml = clamp(req->method.len, ALOG_MAX_METHOD), pl = clamp(req->path.len, ALOG_MAX_PATH);
    size_t ul = ua ? clamp(uah->value_len, ALOG_MAX_HDR) : 0;
    size_t rl = ref ? clamp(refh->value_len, ALOG_MAX_HDR) : 0;
    bool hit = a->memo_seg2_len && a->memo_ul == (ua ? ul : ALOG_ABSENT) &&
               a->memo_rl == (ref ? rl : ALOG_ABSENT) && alog_eq(ua, a->memo_ua, ul) &&
               alog_eq(ref, a->memo_ref, rl);
    /* The method is a token (both engines check): nothing to escape. */
    bool json = a->json, pc = alog_clean(path, pl);
    size_t x = json ? 6u : 4u;
    bool uc = true, rc = true;
    size_t size = sizeof(alog_cap) + CAP_FIXED + ml + (pc ? pl : pl * x);
    if (hit) {
        size += a->memo_seg2_len;
    } else {
        uc = alog_clean(ua, ul);
        rc = alog_clean(ref, rl);
        size += (uc ? ul : ul * x) + (rc ? rl : rl * x);
    }
    alog_cap *c = cap_alloc(a, size);
    if (!c)
        return NULL;
    c->t_ms = realtime_ns / 1000000;
    char *o = c->s;
    if (json) {
        o = put_s(o, ",\"method\":\"");
        o = alog_cpy(o, m, ml);
        o = put_s(o, "\",\"path\":\"");
        o = put_esc(o, path, pl, pc, true);
    } else {
        o = alog_cpy(o, m, ml);
        *o++ = ' ';
        o = put_esc(o, path, pl, pc, false);
    }
    c->seg1 = (uint16_t)(o - c->s);
    if (hit) {
        o = alog_cpy_slack(o, a->memo_seg2, a->memo_seg2_len);
    } else {
        o = put_seg2(o, json, (seg2_in){ua, ref, ul, rl, uc, rc});
        memo_set(a, ua, ul, ref, rl, c->s + c->seg1, (size_t)(o - c->s) - c->seg1);
    }
    c->seg2 = (uint16_t)(o - c->s - c->seg1);
    return (char *)c;
}

void alog_release(shard *sh, char *cap)
{
    alog_cap *c = (alog_cap *)(void *)cap;
    alog_shard *a = sh->view.alog;
    if (c && c->pooled && a && a->npool < ALOG_CAP_POOL)
        a->pool[a->npool++] = c;
    else
        free(c);
}

/* --- Lines ---------------------------------------------------------------- */

/* The chunk to write into, with room for `need` bytes; NULL: dropped. */
static alog_chunk *room_for(shard *sh, alog_shard *a, size_t need)
{
    alog_chunk *k = a->cur;
    if (k && ALOG_CHUNK - k->len >= need)
        return k;
    if (k) {
        alog_flush(sh);
        if (a->cur)
            return NULL; /* the queue is full */
    }
    a->cur = alog_chunk_get(a);
    return a->cur;
}

/* The fields after "STATUS" (or after "status":). */
static char *text_rest(char *o, const req_track *t, const alog_cap *c, uint64_t dur_us)
{
    *o++ = ' ';
    o = alog_put_u(o, t->req_bytes);
    *o++ = ' ';
    o = alog_put_u(o, t->resp_bytes);
    *o++ = ' ';
    o = alog_cpy_slack(o, c->s + c->seg1, c->seg2); /* "REFERER" "USER-AGENT" */
    *o++ = ' ';
    return alog_put_u(o, dur_us);
}

static char *json_rest(char *o, const req_track *t, uint64_t dur_us)
{
    o = put_s(o, ",\"request_bytes\":");
    o = alog_put_u(o, t->req_bytes);
    o = put_s(o, ",\"response_bytes\":");
    o = alog_put_u(o, t->resp_bytes);
    o = put_s(o, ",\"duration_us\":");
    return alog_put_u(o, dur_us);
}

void alog_line(shard *sh, const spindle_stream *st, uint64_t dur_us)
{
    const req_track *t = &st->track;
    alog_shard *a = sh->view.alog;
    const alog_cap *c = (const alog_cap *)(const void *)t->alog;
    bool json = a->json;
    if (a->pre_conn != t->conn_id || (uint64_t)(c->t_ms - a->pre_ms) >= a->pre_span || !a->pre_len)
        line_start(a, t, sh->idx, c->t_ms);
    alog_chunk *k = room_for(sh, a, LINE_FIXED + c->seg1 + c->seg2);
    if (!k) {
        stat_add(&sh->stats.alog_dropped, 1);
        return;
    }
    /* text: ADDR:PORT - - [time] "METHOD PATH PROTO" STATUS REQ RESP
     *       "REFERER" "USER-AGENT" DURATION SHARD CONN STREAM
     * json: {"time":..,"client":..,"client_port":..,"method":..,"path":..,
     *       "protocol":..,"status":..,"request_bytes":..,"response_bytes":..,
     *       "duration_us":..,"shard":..,"connection":..,"stream":..,
     *       "user_agent":..,"referer":..} */
    char *o = k->data + k->len;
    char *b = o;
    o = alog_cpy_slack(o, a->pre, a->pre_len);
    o = alog_cpy_slack(o, c->s, c->seg1);
    o = put_tail(o, json ? json_tails : text_tails, t->info.proto);
    if (t->status)
        o = alog_put_status(o, t->status);
    else
        o = json ? put_s(o, "null") : put_s(o, "-");
    o = json ? json_rest(o, t, dur_us) : text_rest(o, t, c, dur_us);
    o = alog_cpy_slack(o, a->mid, a->mid_len); /* SHARD CONN (stream key) */
    o = alog_put_u(o, st->sid);
    if (json) {
        o = alog_cpy_slack(o, c->s + c->seg1, c->seg2); /* user_agent, referer */
        *o++ = '}';
    }
    *o++ = '\n';
    k->len += (uint32_t)(o - b);
    stat_add(&sh->stats.alog_lines, 1);
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
