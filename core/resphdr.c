/* resphdr.c - default response headers: date, server, content-length. */
#include "resphdr.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "conn_proto.h"
#include "h2_http.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

static char *two(char *o, int v)
{
    *o++ = (char)('0' + v / 10 % 10);
    *o++ = (char)('0' + v % 10);
    return o;
}

void resphdr_format_date(int64_t t, char *out)
{
    /* Fixed English names: strftime's %a/%b follow the locale. */
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char *o = out;
    memcpy(o, days + 3 * tm.tm_wday, 3);
    o += 3;
    *o++ = ',';
    *o++ = ' ';
    o = two(o, tm.tm_mday);
    *o++ = ' ';
    memcpy(o, months + 3 * tm.tm_mon, 3);
    o += 3;
    *o++ = ' ';
    int y = tm.tm_year + 1900;
    o = two(two(o, y / 100), y % 100);
    *o++ = ' ';
    o = two(o, tm.tm_hour);
    *o++ = ':';
    o = two(o, tm.tm_min);
    *o++ = ':';
    o = two(o, tm.tm_sec);
    memcpy(o, " GMT", 5); /* with the NUL: 29 characters */
}

static void put(hpack_field *f, const char *name, uint32_t nlen, const char *v, uint32_t vlen)
{
    f->name = (const uint8_t *)name;
    f->name_len = nlen;
    f->value = (const uint8_t *)v;
    f->value_len = vlen;
    f->flags = 0;
}

/* Validate and measure the configured `server` value, once per shard
 * (an invalid one, a control character say, is never sent). */
static void server_init(shard *sh)
{
    shard_view *v = &sh->view;
    const char *s = sh->srv->cfg.server_header;
    size_t l = s ? strlen(s) : 0;
    hpack_field f;
    put(&f, "server", 6, s, (uint32_t)l);
    v->server_state = l && l <= UINT32_MAX && h2_http_check_response_fields(&f, 1) == H2_OK ? 1 : 2;
    v->server_len = (uint32_t)l;
}

/* The configured `server` value: true when there is one to send. */
static bool server_value(shard *sh, uint32_t *len)
{
    shard_view *v = &sh->view;
    if (v->server_state == 0)
        server_init(sh);
    *len = v->server_len;
    return v->server_state == 1;
}

/* Is every default due ready (`date` when on, `server` checked)?  Then a
 * head with neither of its own takes both without further tests
 * (add_defaults' fast path). */
static void dflt_update(shard *sh)
{
    shard_view *v = &sh->view;
    v->dflt_all = (!sh->srv->cfg.date_header || v->date_len) && v->server_state != 0;
}

void resphdr_tick(shard *sh)
{
    shard_view *v = &sh->view;
    if (v->server_state == 0) {
        server_init(sh);
        dflt_update(sh);
    }
    if (!sh->srv->cfg.date_header)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if ((int64_t)ts.tv_sec == v->date_sec)
        return;
    v->date_sec = (int64_t)ts.tv_sec;
    resphdr_format_date(v->date_sec, v->date);
    v->date_len = (uint8_t)strlen(v->date);
    dflt_update(sh);
}

enum { HAS_DATE = RESPHDR_HAS_DATE, HAS_SERVER = RESPHDR_HAS_SERVER, HAS_CLEN = RESPHDR_HAS_CLEN };

/* The HPACK_F_KEYED keys (one key, one field): `server` is odd and
 * constant, each second's `date` even.  A key of 0 (a date that wrapped
 * onto it) only costs a lookup: an unknown key is never trusted. */
#define KEY_SERVER 1u
static inline uint32_t key_date(int64_t sec)
{
    return (uint32_t)((uint64_t)sec << 1);
}

/* An ordinary field for HTTP/1.1; keyed for HTTP/2, so the connection's
 * encoder sends it as an index while its entry is live. */
static inline void put_dflt(hpack_field *f, const char *name, uint32_t nlen, const char *v,
                            uint32_t vlen, bool h2, uint32_t key)
{
    put(f, name, nlen, v, vlen);
    if (h2) {
        f->flags = HPACK_F_KEYED;
        f->digest = key;
    }
}

/* content-length: clen (>= 0) into buf, unless the head has one. */
static inline size_t add_clen(hpack_field *f, size_t n, unsigned m, uint16_t status, int64_t clen,
                              char *buf)
{
    /* No content-length on 1xx, 204 and 304 (RFC 9110 8.6). */
    if (clen >= 0 && status >= 200 && status != 204 && status != 304 && !(m & HAS_CLEN)) {
        char tmp[20];
        int k = 0;
        uint64_t x = (uint64_t)clen;
        do {
            tmp[k++] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        for (int i = 0; i < k; i++)
            buf[i] = tmp[k - 1 - i]; /* no snprintf per response */
        put(&f[n++], "content-length", 14, buf, (uint32_t)k);
    }
    return n;
}

/* resphdr_add(), inlined into resphdr_release(). */
static inline size_t add_defaults(shard *sh, hpack_field *f, size_t n, unsigned m, bool h2,
                                  uint16_t status, int64_t clen, char *buf)
{
    const spindle_config *cfg = &sh->srv->cfg;
    const shard_view *v = &sh->view;
    bool want_date, want_server;
    if (v->dflt_all && !(m & (HAS_DATE | HAS_SERVER))) {
        /* The common case: every default due and ready. */
        want_date = cfg->date_header;
        want_server = v->server_state == 1;
    } else {
        uint32_t slen = 0;
        want_date = cfg->date_header && v->date_len && !(m & HAS_DATE);
        want_server = !(m & HAS_SERVER) && server_value(sh, &slen);
    }
    if (want_date)
        put_dflt(&f[n++], "date", 4, v->date, v->date_len, h2, key_date(v->date_sec));
    if (want_server)
        put_dflt(&f[n++], "server", 6, cfg->server_header, v->server_len, h2, KEY_SERVER);
    return add_clen(f, n, m, status, clen, buf);
}

size_t resphdr_add(shard *sh, hpack_field *f, size_t n, unsigned m, bool h2, uint16_t status,
                   int64_t clen, char *buf)
{
    return add_defaults(sh, f, n, m, h2, status, clen, buf);
}

/* A held head: the fields (room for RESPHDR_EXTRA more), then their bytes.
 * Heads live within one loop iteration (released at the latest by the
 * settle step), so they come from a per-shard bump arena, reset whenever
 * none is live; a head that does not fit is malloc'd. */
typedef struct held_head {
    uint16_t status;
    bool heap;
    uint8_t present; /* resphdr_present() of the head's fields */
    uint32_t n;
    hpack_field f[];
} held_head;

#define HOLD_ARENA (16u << 10)

static held_head *hold_alloc(shard *sh, size_t bytes)
{
    shard_view *v = &sh->view;
    bytes = (bytes + 15) & ~(size_t)15;
    if (!v->hold_buf)
        v->hold_buf = malloc(HOLD_ARENA);
    if (v->hold_buf && bytes <= HOLD_ARENA - v->hold_off) {
        held_head *h = (held_head *)(void *)(v->hold_buf + v->hold_off);
        v->hold_off += (uint32_t)bytes;
        v->hold_live++;
        h->heap = false;
        return h;
    }
    held_head *h = malloc(bytes);
    if (h)
        h->heap = true;
    return h;
}

void resphdr_drop(spindle_stream *st)
{
    held_head *h = st->track.held;
    if (!h)
        return;
    st->track.held = NULL;
    shard_view *v = &st->c->sh->view;
    if (h->heap) {
        free(h);
    } else if (--v->hold_live == 0) {
        v->hold_off = 0;
    }
}

void resphdr_shard_free(shard *sh)
{
    free(sh->view.hold_buf);
    sh->view.hold_buf = NULL;
}

bool resphdr_hold(spindle_stream *st, uint16_t status, const hpack_field *f, size_t n,
                  size_t n_check, unsigned m)
{
    if (st->track.head || status == 204 || status == 304 || n > UINT32_MAX || n_check > n)
        return false;
    if ((m & HAS_CLEN) || h2_http_check_response_fields(f, (uint32_t)n_check) != H2_OK)
        return false;
    size_t bytes = sizeof(held_head) + (n + RESPHDR_EXTRA) * sizeof(hpack_field);
    for (size_t i = 0; i < n; i++)
        bytes += f[i].name_len + f[i].value_len;
    held_head *h = hold_alloc(st->c->sh, bytes);
    if (!h)
        return false; /* sent now, without content-length */
    h->status = status;
    h->present = (uint8_t)m;
    h->n = (uint32_t)n;
    char *o = (char *)(h->f + n + RESPHDR_EXTRA);
    for (size_t i = 0; i < n; i++) {
        h->f[i] = f[i];
        if (f[i].name_len)
            memcpy(o, f[i].name, f[i].name_len);
        h->f[i].name = (const uint8_t *)o;
        o += f[i].name_len;
        if (f[i].value_len)
            memcpy(o, f[i].value, f[i].value_len);
        h->f[i].value = (const uint8_t *)o;
        o += f[i].value_len;
    }
    st->track.held = h;
    return true;
}

h2_rv resphdr_release(spindle_stream *st, int64_t clen)
{
    held_head *h = st->track.held;
    char buf[24];
    const conn_proto *p = CP(st->c);
    size_t n =
        add_defaults(st->c->sh, h->f, h->n, h->present, p->http_version == 2, h->status, clen, buf);
    /* resphdr_hold validated the head's own fields; the added ones are
     * valid as built. */
    h2_rv rv = p->respond(st->c, st->sid, h->status, h->f, n, 0, false);
    resphdr_drop(st);
    return rv;
}
