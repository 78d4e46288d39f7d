/* h2_conn_test.h - helpers shared by the tests of the h2_conn modules
 * (test_h2_recv.c, test_h2_stream.c, test_h2_frames.c, ...), on top of the
 * scripted client of h2_script.h.  static inline: each test file uses some.
 */
#ifndef SPINDLE_TESTS_H2_CONN_TEST_H
#define SPINDLE_TESTS_H2_CONN_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_script.h"

/* --- Helpers ----------------------------------------------------------------- */

#define MIB (1024u * 1024u)
#define KIB 1024u

/* Defaults with a tweak: `h2_limits l = lim(); l.x = y; h2s_start(s, &l, NULL);` */
static inline h2_limits lim(void)
{
    return *h2_limits_default();
}

/* Run fn on a fresh h2s in the same mode as s (sub-cases of one test). */
static inline void sub(h2s *s, void (*fn)(h2s *, int), int k)
{
    h2s t;
    h2s_init(&t, s->mode);
    fn(&t, k);
    h2s_fini(&t);
}

/* A counting allocator that lives as long as s (h2s_fini checks it after
 * freeing the connection, so it must not be a local of a sub-case). */
static inline h2s_mem *new_mem(h2s *s)
{
    h2s_mem *m = (h2s_mem *)(void *)h2s_alloc(s, sizeof *m);
    h2s_mem_init(m);
    return m;
}

/* The REQUEST event on sid must exist; returns it. */
static inline const h2s_ev *req_ok(h2s *s, uint32_t sid)
{
    const h2s_ev *e = h2s_req(s, sid);
    cr_assert(e != NULL, "[%s] no REQUEST event on stream %u (first_err %s, fault %s: %s)",
              s->mode_name, sid, h2_rv_name(s->first_err), h2_code_name(h2_conn_fault(s->c).code),
              h2_conn_fault(s->c).reason ? h2_conn_fault(s->c).reason : "");
    return e;
}

/* A GET on sid, answered with body; asserts a complete 200 with that body. */
static inline void get_roundtrip(h2s *s, uint32_t sid, const char *path, const char *body)
{
    h2s_get(s, sid, path);
    h2_rv rv = h2s_run(s);
    cr_assert(rv == H2_OK, "[%s] GET %s on %u: %s", s->mode_name, path, sid, h2_rv_name(rv));
    const h2s_ev *e = req_ok(s, sid);
    cr_expect_str_eq(e->path, path);
    h2s_respond_ok(s, sid, body);
    h2s_drain(s);
    size_t n = 0;
    const uint8_t *b = h2s_body(s, sid, &n);
    cr_expect_eq(h2s_status(s, sid), 200, "[%s] stream %u status %d", s->mode_name, sid,
                 h2s_status(s, sid));
    cr_expect(n == strlen(body) && (n == 0 || memcmp(b, body, n) == 0),
              "[%s] stream %u body mismatch (%zu bytes)", s->mode_name, sid, n);
    cr_expect(h2s_st(s, sid)->ended, "[%s] stream %u not ended", s->mode_name, sid);
}

/* DATA of any length, split into frames of at most 16384 octets. */
static inline void data_split(h2s *s, uint32_t sid, const uint8_t *d, size_t len, bool end_stream)
{
    do {
        size_t n = len > 16384 ? 16384 : len;
        h2s_data(s, sid, d, n, end_stream && n == len);
        if (d)
            d += n;
        len -= n;
    } while (len);
}

/* Count frames of a type with the given flag bits all set. */
static inline size_t count_flags(const h2s *s, uint8_t type, uint32_t sid, uint8_t flags)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nframes; i++) {
        const h2s_frame *f = &s->frames[i];
        if (f->hdr.type == type && (sid == H2S_ANY || f->hdr.stream_id == sid) &&
            (f->hdr.flags & flags) == flags)
            n++;
    }
    return n;
}

static inline size_t count_wu_from(const h2s *s, uint32_t sid, size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < s->nframes; i++)
        n += s->frames[i].hdr.type == H2_FT_WINDOW_UPDATE && s->frames[i].hdr.stream_id == sid;
    return n;
}

static inline uint64_t sum_wu_from(const h2s *s, uint32_t sid, size_t from)
{
    uint64_t t = 0;
    for (size_t i = from; i < s->nframes; i++)
        if (s->frames[i].hdr.type == H2_FT_WINDOW_UPDATE && s->frames[i].hdr.stream_id == sid)
            t += s->frames[i].f.u.window_increment;
    return t;
}

/* --- Graceful shutdown (§6.8) ----------------------------------------------------------- */

static inline void ack_shutdown_ping(h2s *s)
{
    const h2s_frame *p = NULL;
    for (size_t i = s->nframes; i-- > 0;)
        if (s->frames[i].hdr.type == H2_FT_PING && !(s->frames[i].hdr.flags & H2_FLAG_ACK)) {
            p = &s->frames[i];
            break;
        }
    cr_assert_not_null(p, "[%s] no PING with the shutdown GOAWAY", s->mode_name);
    h2s_ping(s, true, p->f.u.ping);
}

static inline void consume_cb(h2s *s, const h2_event *ev, void *ud)
{
    (void)ud;
    if (ev->type == H2_EV_DATA && ev->u.data.len)
        cr_expect_eq(h2_conn_consume(s->c, ev->stream_id, ev->u.data.len), H2_OK);
}

/* --- §6.9.2 initial window changes ------------------------------------------------- */

static inline void expect_body(h2s *s, uint32_t sid, const uint8_t *want, size_t len)
{
    size_t n = 0;
    const uint8_t *b = h2s_body(s, sid, &n);
    cr_expect_eq(n, len, "[%s] stream %u: %zu body bytes, want %zu", s->mode_name, sid, n, len);
    if (n == len)
        cr_expect(len == 0 || memcmp(b, want, len) == 0, "[%s] stream %u: body differs",
                  s->mode_name, sid);
}

/* --- Rapid Reset (CVE-2023-44487) ------------------------------------------------ */

static inline void rapid_pairs(h2s *s, uint32_t *sid, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        h2s_get(s, *sid, "/");
        h2s_rst(s, *sid, H2_CANCEL);
        *sid += 2;
    }
}

/* --- Direct use of the engine's internal seams ----------------------------- */

/* A context (limits l, NULL = defaults; libc memory) and a connection whose
 * server preface has been written out: unsent output starts at zero. */
static inline h2_conn *bare_conn(h2_ctx *x, const h2_limits *l)
{
    cr_assert_eq(h2_ctx_init(x, l, NULL), H2_OK);
    h2_conn *c = h2_conn_new(x, 0);
    cr_assert_not_null(c);
    uint8_t buf[512];
    h2_conn_send(c, buf, sizeof buf, 0);
    cr_assert_eq(h2_conn_unsent(c), 0u);
    return c;
}

static inline void bare_free(h2_ctx *x, h2_conn *c)
{
    h2_conn_free(c);
    h2_ctx_free(x);
}

#endif
