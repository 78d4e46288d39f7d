/* Tests for core/stream.c: the public stream calls through both modes of a
 * stream (stream_ops), end to end on a real shard (spindle_run on a thread,
 * 127.0.0.1, port 0) with a minimal HTTP/2 client written here: preface,
 * SETTINGS, one HEADERS per request (HPACK: indexed and literal fields),
 * then frames read until the response's END_STREAM. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "spindle.h"

static atomic_int port;
static pthread_t server_thread;
static pthread_t shard_tid;
static atomic_bool ran_on_shard, ran_off_shard;
static atomic_int offload_rc = 1;

static void on_listen(uint32_t shard, const char *addr, uint16_t p, void *app)
{
    (void)shard;
    (void)addr;
    (void)app;
    atomic_store(&port, p);
}

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

static void *serve(void *arg)
{
    (void)arg;
    spindle_config cfg = spindle_config_default();
    cfg.address = "127.0.0.1";
    cfg.port = 0;
    cfg.shards = 1;
    cfg.log_level = 0;
    spindle_handler h = {.on_request = on_request};
    spindle_hooks hooks = {.on_listen = on_listen};
    int rc = spindle_run(&cfg, &h, &hooks, NULL);
    return (void *)(intptr_t)rc;
}

static void start(void)
{
    atomic_store(&port, 0);
    cr_assert_eq(pthread_create(&server_thread, NULL, serve, NULL), 0);
    for (int i = 0; i < 10000 && !atomic_load(&port); i++)
        usleep(1000);
    cr_assert(atomic_load(&port), "the server did not listen within 10 s");
}

static void stop(void)
{
    spindle_stop();
    void *rc;
    pthread_join(server_thread, &rc);
}

TestSuite(stream, .init = start, .fini = stop, .timeout = 60);

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atomic_load(&port))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void frame(uint8_t *out, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    out[0] = (uint8_t)(len >> 16);
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)(sid >> 24);
    out[6] = (uint8_t)(sid >> 16);
    out[7] = (uint8_t)(sid >> 8);
    out[8] = (uint8_t)sid;
}

/* GET path on stream 1 (END_STREAM); returns the response body, after
 * checking the status is 200 (HPACK static index 8). */
static size_t get(int fd, const char *path, char *body, size_t cap)
{
    uint8_t out[256];
    size_t o = 0;
    memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    o = 24;
    frame(out + o, 0, 4, 0, 0); /* SETTINGS */
    o += 9;
    uint8_t blk[64];
    size_t b = 0, pl = strlen(path);
    blk[b++] = 0x82; /* :method GET */
    blk[b++] = 0x86; /* :scheme http */
    blk[b++] = 0x04; /* :path, literal without indexing, name index 4 */
    blk[b++] = (uint8_t)pl;
    memcpy(blk + b, path, pl);
    b += pl;
    blk[b++] = 0x01; /* :authority "a" */
    blk[b++] = 0x01;
    blk[b++] = 'a';
    frame(out + o, b, 1, 0x5, 1); /* HEADERS, END_STREAM | END_HEADERS */
    o += 9;
    memcpy(out + o, blk, b);
    o += b;
    cr_assert_eq(write(fd, out, o), (ssize_t)o);

    bool status_ok = false;
    size_t got = 0;
    for (;;) {
        uint8_t h[9];
        cr_assert_eq(recv(fd, h, 9, MSG_WAITALL), 9, "connection ended before the response");
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        uint8_t p[16384];
        cr_assert_leq(len, sizeof p);
        if (len)
            cr_assert_eq(recv(fd, p, len, MSG_WAITALL), (ssize_t)len);
        uint32_t sid =
            (uint32_t)(h[5] & 0x7f) << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8];
        if (h[3] == 4 && !(h[4] & 1)) { /* SETTINGS: acknowledge */
            uint8_t ack[9];
            frame(ack, 0, 4, 1, 0);
            cr_assert_eq(write(fd, ack, 9), 9);
        }
        if (sid != 1)
            continue;
        if (h[3] == 1)
            status_ok = len > 0 && p[0] == 0x88;
        if (h[3] == 0 && got + len <= cap) {
            memcpy(body + got, p, len);
            got += len;
        }
        cr_assert_neq(h[3], 3, "the stream was reset");
        if ((h[3] == 0 || h[3] == 1) && (h[4] & 1))
            break;
    }
    cr_assert(status_ok, "no :status 200");
    return got;
}

Test(stream, inline_mode_calls_reach_the_engine)
{
    int fd = dial();
    char body[64];
    size_t n = get(fd, "/", body, sizeof body);
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(body, "hello", 5);
    cr_assert(atomic_load(&ran_on_shard));
    close(fd);
}

Test(stream, offloaded_mode_calls_come_from_the_worker)
{
    int fd = dial();
    char body[64];
    size_t n = get(fd, "/off", body, sizeof body);
    cr_assert_eq(atomic_load(&offload_rc), SPINDLE_OK);
    cr_assert_eq(n, 6);
    cr_assert_arr_eq(body, "worker", 6);
    cr_assert(atomic_load(&ran_off_shard), "the offloaded handler ran on the shard thread");
    close(fd);
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
