/* conn_proto_h2.c - the HTTP/2 protocol tables (CONN_H2, CONN_H2C) and the
 * table of every protocol's table (conn_proto.h).
 *
 * Both HTTP/2 tables are thin wrappers around h2_conn; feeding the engine
 * and its timer are conn.c's (conn_h2_feed, conn_h2_timer).  CONN_H2C
 * differs from CONN_H2 only in feed and want_write (see h2c_feed), so the
 * rest of both tables is one list, H2_PROTO_SHARED.
 */
#include "conn.h"
#include "conn_detect.h"
#include "conn_h1.h"
#include "h2_conn.h"
#include "shard.h"

static bool h2w_want_write(const conn *c)
{
    return h2_conn_want_write(c->h2);
}

static bool h2w_want_read(const conn *c)
{
    return h2_conn_want_read(c->h2);
}

static bool h2w_is_done(const conn *c)
{
    return h2_conn_is_done(c->h2);
}

static size_t h2w_prepare(conn *c, struct iovec *iov, size_t iovcnt, size_t max_bytes)
{
    return h2_conn_out_prepare(c->h2, iov, iovcnt, max_bytes);
}

static void h2w_commit(conn *c, size_t n)
{
    h2_conn_out_commit(c->h2, n, c->sh->now);
}

static uint64_t h2w_deadline(const conn *c)
{
    return h2_conn_next_deadline(c->h2);
}

static void h2w_shutdown(conn *c)
{
    h2_conn_shutdown(c->h2);
}

static void h2w_free(conn *c)
{
    h2_conn_free(c->h2);
}

static h2_rv h2w_respond(conn *c, uint32_t id, uint16_t status, const hpack_field *f, size_t n,
                         size_t n_check, bool end)
{
    return h2_conn_respond_checked(c->h2, id, status, f, n, n_check, end);
}

static h2_rv h2w_send(conn *c, uint32_t id, const uint8_t *d, uint64_t len, bool end,
                      h2_release_fn release, void *ctx)
{
    return h2_conn_send_data(c->h2, id, d, len, end, release, ctx);
}

static h2_rv h2w_trailers(conn *c, uint32_t id, const hpack_field *f, size_t n)
{
    return h2_conn_send_trailers(c->h2, id, f, n);
}

static h2_rv h2w_reset(conn *c, uint32_t id, h2_code code)
{
    return h2_conn_reset_stream(c->h2, id, code);
}

static uint64_t h2w_buffered(const conn *c, uint32_t id)
{
    return h2_conn_stream_buffered(c->h2, id);
}

static void h2w_consume(conn *c, uint32_t id, uint64_t n)
{
    h2_conn_consume(c->h2, id, n);
}

static void *h2w_user(const conn *c, uint32_t id)
{
    return h2_conn_stream_user(c->h2, id);
}

static void h2w_set_user(conn *c, uint32_t id, void *user)
{
    h2_conn_stream_set_user(c->h2, id, user);
}

static void h2w_detach(conn *c, uint32_t id)
{
    h2_conn_stream_detach(c->h2, id);
}

/* CONN_H2C: after an h2c Upgrade's 101 nothing more is written until the
 * client's preface (24 bytes) has arrived: a client reading the 101 (curl)
 * may not take HTTP/2 frames in the same read.  Then CONN_H2. */
static size_t h2c_feed(conn *c, const uint8_t *p, size_t n)
{
    size_t used = conn_h2_feed(c, p, n);
    if (c->proto == CONN_H2C) {
        size_t seen = c->matched + used;
        c->matched = (uint8_t)(seen < CONN_H2_PREFACE_LEN ? seen : CONN_H2_PREFACE_LEN);
        if (c->matched == CONN_H2_PREFACE_LEN)
            c->proto = CONN_H2;
    }
    return used;
}

static bool h2c_want_write(const conn *c)
{
    (void)c;
    return false;
}

/* Every entry but feed and want_write: the same for CONN_H2 and CONN_H2C.
 * (A list, not a shared struct copied at start-up: the tables stay const.) */
/* clang-format off */
#define H2_PROTO_SHARED            \
    .want_read = h2w_want_read,    \
    .is_done = h2w_is_done,        \
    .out_prepare = h2w_prepare,    \
    .out_commit = h2w_commit,      \
    .next_deadline = h2w_deadline, \
    .on_timer = conn_h2_timer,     \
    .shutdown = h2w_shutdown,      \
    .free = h2w_free,              \
    .respond = h2w_respond,        \
    .send_data = h2w_send,         \
    .send_trailers = h2w_trailers, \
    .reset = h2w_reset,            \
    .buffered = h2w_buffered,      \
    .consume = h2w_consume,        \
    .user = h2w_user,              \
    .set_user = h2w_set_user,      \
    .detach = h2w_detach,          \
    .http_version = 2
/* clang-format on */

static const conn_proto conn_proto_h2 = {
    .feed = conn_h2_feed,
    .want_write = h2w_want_write,
    H2_PROTO_SHARED,
};

static const conn_proto conn_proto_h2c = {
    .feed = h2c_feed,
    .want_write = h2c_want_write,
    H2_PROTO_SHARED,
};

const conn_proto *const conn_protos[CONN_PROTO_COUNT] = {
    [CONN_DETECT] = &conn_proto_detect, [CONN_H2] = &conn_proto_h2, [CONN_H1] = &conn_proto_h1,
    [CONN_H2C] = &conn_proto_h2c,       [CONN_WS] = &conn_proto_ws,
};
