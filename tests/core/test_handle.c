/* Tests for core/handle.c: stream handles (slot + generation) kept across
 * waits: an answer from another thread through spindle_post_stream(), a
 * handle after its stream closed and after the peer reset it (on_reset then
 * on_close; the late answer dropped), and a stale handle whose slot was
 * reused, on a real shard over loopback (mini_h2.h).  ASan checks that no
 * late call touches freed memory. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "mini_h2.h"

static _Atomic uint64_t last_handle;
static atomic_int nrequests, seq, reset_at, close_at, reset_ok, close_ok, late_null, late_live;
static spindle_stream *waiting; /* the shard thread's, for on_reset's checks */

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    spindle_handle h = spindle_stream_handle(s);
    cr_assert_neq(h.v, 0);
    cr_assert_eq(spindle_stream_handle(s).v, h.v, "one handle per stream");
    cr_assert_eq(spindle_handle_stream(h), s);
    waiting = s;
    if (req->path.len == 4 && memcmp(req->path.ptr, "/now", 4) == 0)
        spindle_respond(s, 204, NULL, 0, true); /* answered: closes at settle */
    atomic_store(&last_handle, h.v);
    atomic_fetch_add(&nrequests, 1);
}

static void on_reset(spindle_stream *s, uint32_t code, void *app)
{
    (void)app;
    spindle_handle h = {atomic_load(&last_handle)};
    bool ok = code == SPINDLE_H2_CANCEL && s == waiting && spindle_handle_stream(h) == s &&
              spindle_respond(s, 200, NULL, 0, true) == SPINDLE_ECLOSED;
    atomic_store(&reset_ok, ok);
    atomic_store(&reset_at, atomic_fetch_add(&seq, 1) + 1);
}

static void on_close(spindle_stream *s, void *app)
{
    (void)app;
    spindle_handle h = {atomic_load(&last_handle)};
    atomic_store(&close_ok, s == waiting && spindle_handle_stream(h) == NULL);
    waiting = NULL;
    atomic_store(&close_at, atomic_fetch_add(&seq, 1) + 1);
}

static uint16_t port;

static void start(void)
{
    spindle_handler h = {.on_request = on_request, .on_reset = on_reset, .on_close = on_close};
    atomic_store(&nrequests, 0);
    atomic_store(&seq, 0);
    atomic_store(&close_at, 0);
    port = mini_serve(spindle_config_default(), &h);
}

static void stop(void)
{
    cr_assert_eq(mini_stop(), 0);
}

TestSuite(handle, .init = start, .fini = stop, .timeout = 60);

static void answer(spindle_stream *s, void *arg)
{
    (void)arg;
    if (!s) {
        atomic_fetch_add(&late_null, 1);
        return;
    }
    atomic_fetch_add(&late_live, 1);
    spindle_respond(s, 200, NULL, 0, false);
    spindle_send(s, "later", 5, true, NULL, NULL);
}

/* The response on sid: its :status byte (0x88 = 200, 0x89 = 204) and body. */
static uint8_t read_response(int fd, uint32_t sid, char *body, size_t cap)
{
    mini_frame f;
    uint8_t status = 0;
    size_t n = 0;
    while (mini_read(fd, &f)) {
        if (f.sid != sid)
            continue;
        if (f.type == 1)
            status = f.p[0];
        if (f.type == 0 && n + f.len <= cap) {
            memcpy(body + n, f.p, f.len);
            n += f.len;
        }
        if (f.type == 3)
            return 0;
        if ((f.type == 0 || f.type == 1) && (f.flags & 1))
            break;
    }
    body[n < cap ? n : cap - 1] = 0;
    return status;
}

Test(handle, answer_from_another_thread)
{
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/wait", true);
    cr_assert(mini_wait(&nrequests, 1));
    spindle_handle h = {atomic_load(&last_handle)};
    cr_assert_null(spindle_handle_stream(h), "resolves only on its shard's thread");
    cr_assert_eq(spindle_post_stream(h, answer, NULL), 0);
    char body[64];
    cr_assert_eq(read_response(fd, 1, body, sizeof body), 0x88);
    cr_assert_str_eq(body, "later");
    cr_assert_eq(atomic_load(&late_live), 1);
    close(fd);
}

static void check_dead(void *arg)
{
    spindle_handle h = *(spindle_handle *)arg;
    cr_assert_null(spindle_handle_stream(h));
}

Test(handle, closed_stream_resolves_to_null)
{
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/now", true);
    char body[8];
    cr_assert_eq(read_response(fd, 1, body, sizeof body), 0x89);
    cr_assert(mini_wait(&close_at, 1));
    spindle_handle h1 = {atomic_load(&last_handle)};
    mini_on_shard(0, check_dead, &h1);
    cr_assert_eq(spindle_post_stream(h1, answer, NULL), 0);
    /* A second request reuses the slot (LIFO) with a new generation: the
     * old handle stays dead, the new one is live. */
    mini_get_headers(fd, 3, "/wait", true);
    cr_assert(mini_wait(&nrequests, 2));
    spindle_handle h2 = {atomic_load(&last_handle)};
    cr_assert_neq(h1.v, h2.v);
    mini_on_shard(0, check_dead, &h1);
    cr_assert_eq(spindle_post_stream(h2, answer, NULL), 0);
    cr_assert_eq(read_response(fd, 3, body, sizeof body), 0x88);
    cr_assert_eq(atomic_load(&late_null), 1, "the late answer for the closed stream got NULL");
    cr_assert_eq(atomic_load(&late_live), 1);
    cr_assert_eq(spindle_post_stream((spindle_handle){0}, answer, NULL), SPINDLE_EINVAL);
    close(fd);
}

Test(handle, peer_reset_while_waiting)
{
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/wait", true);
    cr_assert(mini_wait(&nrequests, 1));
    uint8_t rst[13];
    mini_frame_head(rst, 4, 3, 0, 1);
    memcpy(rst + 9, "\0\0\0\x08", 4); /* CANCEL */
    cr_assert_eq(write(fd, rst, sizeof rst), (ssize_t)sizeof rst);
    cr_assert(mini_wait(&close_at, 1));
    cr_assert_eq(atomic_load(&reset_at), 1, "on_reset first");
    cr_assert_eq(atomic_load(&close_at), 2, "then on_close");
    cr_assert(atomic_load(&reset_ok), "in on_reset the handle resolves, calls say ECLOSED");
    cr_assert(atomic_load(&close_ok), "from on_close on the handle is dead");
    /* The application's answer arrives late: dropped safely. */
    spindle_handle h = {atomic_load(&last_handle)};
    cr_assert_eq(spindle_post_stream(h, answer, NULL), 0);
    mini_on_shard(0, check_dead, &h);
    cr_assert_eq(atomic_load(&late_null), 1);
    cr_assert_eq(atomic_load(&late_live), 0);
    close(fd);
}

static void reset_it(spindle_stream *s, void *arg)
{
    (void)arg;
    cr_assert_not_null(s);
    cr_assert_eq(spindle_reset(s, SPINDLE_H2_CANCEL), 0);
    cr_assert_eq(spindle_respond(s, 200, NULL, 0, true), SPINDLE_ECLOSED);
}

Test(handle, reset_through_the_handle)
{
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/wait", true);
    cr_assert(mini_wait(&nrequests, 1));
    spindle_handle h = {atomic_load(&last_handle)};
    cr_assert_eq(spindle_post_stream(h, reset_it, NULL), 0);
    mini_frame f;
    bool rst = false;
    while (!rst && mini_read(fd, &f))
        rst = f.type == 3 && f.sid == 1 && f.len == 4 && f.p[3] == 0x8;
    cr_assert(rst, "RST_STREAM(CANCEL) from the reset made through the handle");
    cr_assert(mini_wait(&close_at, 1));
    mini_on_shard(0, check_dead, &h);
    close(fd);
}

/* --- Resolving a handle brings the engine's clock up to date -------------- */

/* The engine's clock moves with input and timers only, and body queued on
 * a connection with nothing pending stamps the start of the send timeout
 * with it.  Here the response head goes out at once, the connection window
 * is used up (an earlier /big response), and the body comes through the
 * handle LATE_MS later, past the send timeout: nothing can be written, so
 * only the stamp dates the timeout.  Stale, it fires at once (GOAWAY
 * before the client opens the window LATE_MS + 500 ms in); resolving the
 * handle ticks the engine to the shard's time, so it would fire only at
 * LATE_MS + LATE_SEND_MS.  A suite of its own: a short send timeout. */
#define LATE_MS      1500u
#define LATE_SEND_MS 1000u
#define BIG          65535u /* the default connection window */
static uint8_t late_body[BIG];

static void late_answer(spindle_shard *sh, void *arg)
{
    (void)sh;
    (void)arg;
    spindle_stream *s = spindle_handle_stream((spindle_handle){atomic_load(&last_handle)});
    if (s)
        spindle_send(s, "late", 4, true, NULL, NULL);
}

static void on_request_late(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    spindle_respond(s, 200, NULL, 0, false);
    if (req->path.len == 4 && memcmp(req->path.ptr, "/big", 4) == 0) {
        spindle_send(s, late_body, sizeof late_body, true, NULL, NULL);
        return;
    }
    atomic_store(&last_handle, spindle_stream_handle(s).v);
    spindle_shard_after(spindle_current_shard(), LATE_MS, late_answer, NULL, NULL);
}

static void start_late(void)
{
    spindle_config cfg = spindle_config_default();
    cfg.limits.send_timeout_ms = LATE_SEND_MS;
    spindle_handler h = {.on_request = on_request_late};
    port = mini_serve(cfg, &h);
}

Test(handle_clock, late_answer_refreshes_the_engine_clock, .init = start_late, .fini = stop,
     .timeout = 60)
{
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/big", true);
    mini_frame f;
    size_t got = 0;
    while (got < BIG && mini_read(fd, &f))
        got += f.type == 0 && f.sid == 1 ? f.len : 0;
    cr_assert_eq(got, BIG, "the connection window is used up");
    mini_get_headers(fd, 3, "/late", true);
    bool head = false;
    while (!head && mini_read(fd, &f))
        head = f.type == 1 && f.sid == 3;
    cr_assert(head);
    usleep((LATE_MS + 500u) * 1000u); /* the body is queued meanwhile, held back */
    uint8_t wu[13];
    mini_frame_head(wu, 4, 8, 0, 0);
    memcpy(wu + 9, (uint8_t[]){0, 1, 0, 0}, 4); /* WINDOW_UPDATE +65536 */
    cr_assert_eq(write(fd, wu, sizeof wu), (ssize_t)sizeof wu);
    bool ended = false, goaway = false;
    while (!ended && !goaway && mini_read(fd, &f)) {
        goaway = f.type == 7;
        ended = f.type == 0 && f.sid == 3 && (f.flags & 1);
    }
    close(fd);
    cr_assert_not(goaway, "no send timeout: resolving the handle updated the clock");
    cr_assert(ended, "the late body arrived once the window opened");
}
