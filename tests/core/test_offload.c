/* Tests for core/offload.c on a real shard skeleton: a ring (the workers'
 * doorbell to the shard), an h2 engine, one worker thread, streams in the
 * offloaded mode.  Built with SPINDLE_TEST_HOOKS: offload_test_alloc_countdown
 * makes one chosen allocation fail.  spindle_offload_request() (offload
 * from a later callback) is tested end to end in test_offload_request.c. */

#include <criterion/criterion.h>
#include <semaphore.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "conn.h"
#include "offload.h"
#include "server.h"
#include "shard.h"
#include "stream.h"

extern _Atomic long offload_test_alloc_countdown;

static sem_t go;
static atomic_int closes;
static atomic_int requests;

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)s;
    (void)req;
    (void)app;
    atomic_fetch_add(&requests, 1);
    sem_wait(&go); /* hold the worker: its message queue fills up */
}

static void on_close(spindle_stream *s, void *app)
{
    (void)s;
    (void)app;
    atomic_fetch_add(&closes, 1);
}

static server srv;
static shard sh;
static conn cn;

static void setup(void)
{
    sem_init(&go, 0, 0);
    atomic_store(&closes, 0);
    atomic_store(&requests, 0);
    atomic_store(&offload_test_alloc_countdown, -1);
    memset(&srv, 0, sizeof srv);
    memset(&sh, 0, sizeof sh);
    memset(&cn, 0, sizeof cn);
    srv.cfg = spindle_config_default();
    config_to_h2_limits(&srv.cfg, &srv.limits);
    srv.handler = (spindle_handler){.on_request = on_request, .on_close = on_close};
    sh.srv = &srv;
    ring_error err;
    cr_assert_eq(ring_new(&sh.r, NULL, &err), 0, "%s", err.msg);
    sh.waker = ring_waker_of(sh.r);
    timer_wheel_init(&sh.timers, 0);
    cr_assert_eq(h2_ctx_init(&sh.h2, &srv.limits, NULL), H2_OK);
    cn.sh = &sh;
    cn.h2 = h2_conn_new(&sh.h2, 0);
    cn.proto = CONN_H2;
    cr_assert(cn.h2);
    cn.state = C_OPEN;
    timer_node_init(&cn.timer);
    cr_assert_eq(offload_start(&sh, 1), 0);
}

static void teardown(void)
{
    for (int i = 0; i < 4; i++)
        sem_post(&go); /* a failed test may have left the worker held */
    offload_stop(&sh);
    h2_conn_free(cn.h2);
    h2_ctx_free(&sh.h2);
    ring_free(sh.r);
    stream_free_all(&sh);
    sem_destroy(&go);
}

/* A stream of cn in the offloaded mode, its request handed to the worker. */
static spindle_stream *offloaded_stream(uint32_t sid)
{
    spindle_stream *st = calloc(1, sizeof *st);
    cr_assert(st);
    st->ops = &offload_stream_ops;
    st->c = &cn;
    st->sid = sid;
    timer_node_init(&st->timer);
    st->next = cn.streams;
    if (cn.streams)
        cn.streams->prev = st;
    cn.streams = st;
    spindle_request req = {.method = {"GET", 3}, .path = {"/", 1}};
    st->ops->on_request(st, &req, NULL);
    return st;
}

/* Apply the worker's commands until every offloaded stream is FREED, or
 * fail after 30 s (a close that never reached the worker). */
static void drain_until_freed(void)
{
    time_t end = time(NULL) + 30;
    while (sh.off_streams && time(NULL) < end) {
        offload_drain(&sh);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    cr_assert_eq(sh.off_streams, 0, "%u stream(s) never freed by their worker", sh.off_streams);
}

/* Fill the worker's queue while it is held in on_request, until messages
 * go to the overflow list (and so will every later one). */
static void fill_queue(spindle_stream *st)
{
    for (int i = 0; i < 4096 && !sh.off_overflow; i++)
        st->ops->on_writable(st);
    cr_assert_not_null(sh.off_overflow);
    cr_assert_not(offload_has_room(&sh));
}

TestSuite(offload, .init = setup, .fini = teardown, .timeout = 120);

/* Behind a full queue, the request of a second stream finds no memory for
 * its overflow entry: the stream is reset (not left waiting), and its
 * close, which finds no memory either, still reaches the worker. */
Test(offload, alloc_failure_resets_and_close_still_arrives)
{
    spindle_stream *a = offloaded_stream(1);
    fill_queue(a);
    atomic_store(&offload_test_alloc_countdown, 1); /* request copy: ok; overflow entry: fails */
    spindle_stream *b = offloaded_stream(3);
    cr_assert(b->flags & ST_RESET, "the stream whose message was dropped was not reset");

    atomic_store(&offload_test_alloc_countdown, 0); /* the close's overflow entry fails */
    stream_settle(b);
    cr_assert(b->flags & ST_CLOSED);
    cr_assert_eq(sh.off_close_wait, b, "the close was not kept");

    stream_reset_code(a, H2_CANCEL);
    atomic_store(&offload_test_alloc_countdown, -1);
    stream_settle(a);
    sem_post(&go);
    drain_until_freed();
    cr_assert_eq(atomic_load(&closes), 2, "on_close ran %d time(s) on the worker",
                 atomic_load(&closes));
    cr_assert_eq(atomic_load(&requests), 1); /* b's request was dropped, not run */
    cr_assert_null(sh.off_close_wait);
}

/* A body chunk whose copy cannot be allocated resets the stream. */
Test(offload, body_copy_failure_resets)
{
    spindle_stream *a = offloaded_stream(1);
    atomic_store(&offload_test_alloc_countdown, 0);
    a->ops->on_body(a, (const uint8_t *)"abc", 3, false);
    cr_assert(a->flags & ST_RESET);
    stream_settle(a);
    sem_post(&go);
    drain_until_freed();
    cr_assert_eq(atomic_load(&closes), 1);
}

/* Without failures, messages queued behind a full queue arrive in order
 * and every stream is freed once closed. */
Test(offload, overflow_then_close)
{
    spindle_stream *a = offloaded_stream(1);
    fill_queue(a);
    for (int i = 0; i < 100; i++)
        a->ops->on_writable(a);
    cr_assert_not_null(sh.off_overflow);
    stream_reset_code(a, H2_CANCEL);
    stream_settle(a);
    sem_post(&go);
    drain_until_freed();
    cr_assert_null(sh.off_overflow);
    cr_assert_eq(atomic_load(&closes), 1);
}
