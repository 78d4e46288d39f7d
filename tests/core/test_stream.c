/* Tests for core/stream.c: the public stream calls through both modes of a
 * stream (stream_ops), end to end on a real shard over loopback
 * (mini_h2.h). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "mini_h2.h"

static pthread_t shard_tid;
static atomic_bool ran_on_shard, ran_off_shard;
static atomic_int offload_rc = 1;

static void from_worker(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)req;
    (void)app;
    atomic_store(&ran_off_shard, !pthread_equal(pthread_self(), shard_tid));
    spindle_respond(s, 200, NULL, 0, false);
    spindle_send_copy(s, "worker", 6, true);
}

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    shard_tid = pthread_self();
    atomic_store(&ran_on_shard, true);
    if (req->path.len == 4 && memcmp(req->path.ptr, "/off", 4) == 0) {
        atomic_store(&offload_rc, spindle_offload(s, from_worker));
        return;
    }
    spindle_header h = {.name = "x-mode", .value = "inline"};
    spindle_respond(s, 200, &h, 1, false);
    spindle_send_copy(s, "hello", 5, true);
}

static uint16_t port;

static void start(void)
{
    spindle_handler h = {.on_request = on_request};
    port = mini_serve(spindle_config_default(), &h);
}

static void stop(void)
{
    cr_assert_eq(mini_stop(), 0);
}

TestSuite(stream, .init = start, .fini = stop, .timeout = 60);

/* GET path on stream 1; returns the body after checking :status 200 (HPACK
 * static index 8) and that the stream was not reset. */
static size_t get(const char *path, char *body, size_t cap)
{
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_get_headers(fd, 1, path, true);
    bool status_ok = false;
    size_t got = 0;
    mini_frame f;
    for (;;) {
        cr_assert(mini_read(fd, &f), "connection ended before the response");
        if (f.sid != 1)
            continue;
        cr_assert_neq(f.type, 3, "the stream was reset");
        if (f.type == 1)
            status_ok = f.len > 0 && f.p[0] == 0x88;
        if (f.type == 0 && got + f.len <= cap) {
            memcpy(body + got, f.p, f.len);
            got += f.len;
        }
        if ((f.type == 0 || f.type == 1) && (f.flags & 1))
            break;
    }
    close(fd);
    cr_assert(status_ok, "no :status 200");
    return got;
}

Test(stream, inline_mode_calls_reach_the_engine)
{
    char body[64];
    size_t n = get("/", body, sizeof body);
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(body, "hello", 5);
    cr_assert(atomic_load(&ran_on_shard));
}

Test(stream, offloaded_mode_calls_come_from_the_worker)
{
    char body[64];
    size_t n = get("/off", body, sizeof body);
    cr_assert_eq(atomic_load(&offload_rc), SPINDLE_OK);
    cr_assert_eq(n, 6);
    cr_assert_arr_eq(body, "worker", 6);
    cr_assert(atomic_load(&ran_off_shard), "the offloaded handler ran on the shard thread");
}

Test(stream, null_stream_is_refused)
{
    cr_assert_eq(spindle_respond(NULL, 200, NULL, 0, true), SPINDLE_EINVAL);
    cr_assert_eq(spindle_send(NULL, "x", 1, true, NULL, NULL), SPINDLE_EINVAL);
    cr_assert_eq(spindle_send_trailers(NULL, NULL, 0), SPINDLE_EINVAL);
    cr_assert_eq(spindle_reset(NULL, 0), SPINDLE_EINVAL);
    cr_assert_eq(spindle_stream_after(NULL, 1, NULL), SPINDLE_EINVAL);
    cr_assert_eq(spindle_offload(NULL, from_worker), SPINDLE_EINVAL);
    cr_assert_eq(spindle_stream_buffered(NULL), 0);
    spindle_body_pause(NULL);
    spindle_body_resume(NULL);
}
