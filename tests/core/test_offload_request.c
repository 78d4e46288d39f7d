/* Tests for spindle_offload_request() (core/offload.c): offloading an
 * inline stream from a later callback on its shard, end to end on a real
 * shard over loopback (mini_h2.h): from a file operation's completion with
 * the application's copy of the request, its refusals, a reset while the
 * operation is in flight, a stop while it is in flight.  (Apart from
 * test_offload.c, whose skeleton shard these do not use: the two suites
 * in one Criterion binary made its runner leak 48 bytes under ASan.) */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mini_h2.h"

/* What a request waits with: its handle, the application's own copy of the
 * path (freed as soon as the offload returns: spindle must have copied
 * it), and what the file operation borrows. */
typedef struct later {
    spindle_handle h;
    spindle_request req;
    char path[64];
    struct statx stx;
    char buf[8];
} later;

static int pipe_fd[2] = {-1, -1};
static atomic_int lt_rc, lt_again_rc, lt_resolves_after, lt_worker_rc, lt_worker_ran, lt_gone,
    lt_done, lt_ended_rc, lt_paused_rc, lt_closes;
static _Atomic uint64_t lt_shard_tid;

static void later_worker(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    atomic_store(&lt_worker_ran,
                 pthread_equal(pthread_self(), (pthread_t)atomic_load(&lt_shard_tid)) ? -1 : 1);
    atomic_store(&lt_worker_rc, spindle_offload_request(s, req, later_worker));
    char body[80];
    int n = snprintf(body, sizeof body, "worker %.*s", (int)req->path.len, req->path.ptr);
    spindle_respond(s, 200, NULL, 0, false);
    spindle_send_copy(s, body, (size_t)n, true);
}

/* The completion: the stream is found again by its handle, and handed to
 * the offload thread (or answered inline when that is refused). */
static void later_done(spindle_shard *as, int32_t res, void *ctx)
{
    (void)as;
    (void)res;
    later *l = ctx;
    spindle_stream *s = spindle_handle_stream(l->h);
    if (!s) {
        atomic_fetch_add(&lt_gone, 1);
    } else if (strcmp(l->path, "/paused") == 0) {
        atomic_store(&lt_paused_rc, spindle_offload_request(s, &l->req, later_worker));
        spindle_body_resume(s);
        spindle_respond(s, 200, NULL, 0, false);
        spindle_send(s, "inline", 6, true, NULL, NULL);
    } else {
        atomic_store(&lt_rc, spindle_offload_request(s, &l->req, later_worker));
        atomic_store(&lt_again_rc, spindle_offload_request(s, &l->req, later_worker));
        atomic_store(&lt_resolves_after, spindle_handle_stream(l->h) != NULL);
    }
    memset(l, 0x5a, sizeof *l); /* the copy spindle made must not point here */
    free(l);
    atomic_fetch_add(&lt_done, 1);
}

static void later_request(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    atomic_store(&lt_shard_tid, (uint64_t)pthread_self());
    if (req->path.len == 6 && memcmp(req->path.ptr, "/ended", 6) == 0) {
        spindle_respond(s, 204, NULL, 0, true);
        atomic_store(&lt_ended_rc, spindle_offload_request(s, req, later_worker));
        return;
    }
    later *l = calloc(1, sizeof *l);
    cr_assert(l && req->path.len < sizeof l->path);
    memcpy(l->path, req->path.ptr, req->path.len);
    l->req = (spindle_request){.method = {"GET", 3}, .path = {l->path, req->path.len}};
    l->h = spindle_stream_handle(s);
    spindle_shard *as = spindle_current_shard();
    int rc;
    if (strcmp(l->path, "/pipe") == 0) { /* completes when the test writes */
        rc = spindle_file_read(as, pipe_fd[0], l->buf, 1, 0, later_done, l);
    } else {
        if (strcmp(l->path, "/paused") == 0)
            spindle_body_pause(s);
        rc = spindle_file_statx(as, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &l->stx, later_done, l);
    }
    cr_assert_eq(rc, 0);
}

static void later_close(spindle_stream *s, void *app)
{
    (void)s;
    (void)app;
    atomic_fetch_add(&lt_closes, 1);
}

static uint16_t lt_port;

static void later_start(spindle_config cfg)
{
    atomic_store(&lt_rc, 1);
    atomic_store(&lt_again_rc, 1);
    atomic_store(&lt_worker_rc, 1);
    atomic_store(&lt_ended_rc, 1);
    atomic_store(&lt_paused_rc, 1);
    cr_assert_eq(pipe2(pipe_fd, O_CLOEXEC), 0);
    spindle_handler h = {.on_request = later_request, .on_close = later_close};
    lt_port = mini_serve(cfg, &h);
}

static void later_setup(void)
{
    later_start(spindle_config_default());
}

static void later_teardown(void)
{
    close(pipe_fd[0]);
    close(pipe_fd[1]);
}

TestSuite(offload_later, .timeout = 60);

/* Offloaded from a file operation's completion, with the application's
 * copy of the request (freed and overwritten right after the call): the
 * worker answers from spindle's copy; the stream's handle resolves to NULL
 * from then on; a second offload, and one from the worker, are refused. */
Test(offload_later, from_a_file_op_completion, .init = later_setup, .fini = later_teardown)
{
    int fd = mini_dial(lt_port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/later", true);
    char body[128];
    cr_assert_eq(mini_response(fd, 1, body, sizeof body), 0x88);
    cr_assert_str_eq(body, "worker /later");
    cr_assert_eq(atomic_load(&lt_rc), SPINDLE_OK);
    cr_assert_eq(atomic_load(&lt_again_rc), SPINDLE_ESTATE);
    cr_assert_eq(atomic_load(&lt_resolves_after), 0, "an offloaded stream's handle resolved");
    cr_assert_eq(atomic_load(&lt_worker_ran), 1, "fn did not run on the offload thread");
    cr_assert_eq(atomic_load(&lt_worker_rc), SPINDLE_ESTATE, "offloaded again from the worker");
    cr_assert(mini_wait(&lt_closes, 1));
    close(fd);
    cr_assert_eq(mini_stop(), 0);
}

/* Refused: a paused body (the handler answers inline instead), a response
 * already ended, NULL arguments, any thread but the stream's shard. */
Test(offload_later, refusals, .init = later_setup, .fini = later_teardown)
{
    int fd = mini_dial(lt_port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/paused", false); /* a body may follow: it is paused */
    char body[128];
    cr_assert_eq(mini_response(fd, 1, body, sizeof body), 0x88);
    cr_assert_str_eq(body, "inline");
    cr_assert_eq(atomic_load(&lt_paused_rc), SPINDLE_ESTATE);
    mini_get_headers(fd, 3, "/ended", true);
    cr_assert_eq(mini_response(fd, 3, body, sizeof body), 0x89);
    cr_assert_eq(atomic_load(&lt_ended_rc), SPINDLE_ESTATE);
    spindle_request req = {0};
    cr_assert_eq(spindle_offload_request(NULL, &req, later_worker), SPINDLE_EINVAL);
    close(fd);
    cr_assert_eq(mini_stop(), 0);
}

/* The peer resets the stream while the op is in flight: the completion
 * finds the handle dead and only frees its state (ASan: nothing leaks,
 * nothing is touched after free); the connection goes on serving. */
Test(offload_later, reset_while_the_op_is_in_flight, .init = later_setup, .fini = later_teardown)
{
    int fd = mini_dial(lt_port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/pipe", true);
    uint8_t rst[13];
    mini_frame_head(rst, 4, 3, 0, 1);
    memcpy(rst + 9, "\0\0\0\x08", 4); /* CANCEL */
    cr_assert_eq(write(fd, rst, sizeof rst), (ssize_t)sizeof rst);
    cr_assert(mini_wait(&lt_closes, 1), "the reset stream was not closed");
    cr_assert_eq(atomic_load(&lt_done), 0, "the op completed early");
    cr_assert_eq(write(pipe_fd[1], "x", 1), 1);
    cr_assert(mini_wait(&lt_done, 1));
    cr_assert_eq(atomic_load(&lt_gone), 1, "the completion did not find the stream gone");
    mini_get_headers(fd, 3, "/later", true);
    char body[128];
    cr_assert_eq(mini_response(fd, 3, body, sizeof body), 0x88);
    cr_assert_str_eq(body, "worker /later");
    close(fd);
    cr_assert_eq(mini_stop(), 0);
}

static void *write_pipe_later(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    ssize_t w = write(pipe_fd[1], "x", 1);
    (void)w;
    return NULL;
}

static void *stop_server(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)mini_stop();
}

static void later_setup_drain(void)
{
    spindle_config cfg = spindle_config_default();
    cfg.drain_timeout_ms = 10000;
    later_start(cfg);
}

/* The server stops while the op is in flight: the drain waits for the
 * stream, the completion offloads it then (the offload threads start
 * during the drain), and the worker's answer reaches the client before
 * the shard finishes. */
Test(offload_later, stop_with_the_op_in_flight, .init = later_setup_drain, .fini = later_teardown)
{
    int fd = mini_dial(lt_port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/pipe", true);
    for (int i = 0; i < 100 && !atomic_load(&lt_shard_tid); i++)
        usleep(10000);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, write_pipe_later, NULL), 0);
    char body[128];
    /* mini_stop() blocks until the shard is done: read the answer first,
     * from the drain, on this thread while another stops the server. */
    pthread_t stopper;
    cr_assert_eq(pthread_create(&stopper, NULL, stop_server, NULL), 0);
    cr_assert_eq(mini_response(fd, 1, body, sizeof body), 0x88);
    cr_assert_str_eq(body, "worker /pipe");
    close(fd);
    pthread_join(t, NULL);
    void *rc;
    pthread_join(stopper, &rc);
    cr_assert_eq((intptr_t)rc, 0, "spindle_run() failed");
    cr_assert_eq(atomic_load(&lt_rc), SPINDLE_OK);
}
