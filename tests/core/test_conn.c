/* Tests for core/conn.c over a real loopback socket (mini_h2.h): bytes that
 * are not the HTTP/2 preface go to the HTTP/1.1 codec, which answers a
 * malformed request with an error status and closes; a peer that goes
 * away mid-request has its open streams reset (on_reset, CANCEL) and
 * closed. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "mini_h2.h"

static atomic_int resets, closes;
static atomic_uint reset_code;

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)s;
    (void)req;
    (void)app; /* no answer: the stream stays open */
}

static void on_reset(spindle_stream *s, uint32_t code, void *app)
{
    (void)s;
    (void)app;
    atomic_store(&reset_code, code);
    atomic_fetch_add(&resets, 1);
}

static void on_close(spindle_stream *s, void *app)
{
    (void)s;
    (void)app;
    atomic_fetch_add(&closes, 1);
}

static uint16_t port;

static void start(void)
{
    spindle_handler h = {.on_request = on_request, .on_reset = on_reset, .on_close = on_close};
    port = mini_serve(spindle_config_default(), &h);
}

static void stop(void)
{
    cr_assert_eq(mini_stop(), 0);
}

TestSuite(conn, .init = start, .fini = stop, .timeout = 60);

Test(conn, bad_preface_gets_http1_error_then_close)
{
    int fd = mini_dial(port);
    /* The preface's length, not its bytes: HTTP/1.1, and a bad request. */
    const char junk[] = "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n";
    cr_assert_eq(write(fd, junk, sizeof junk - 1), (ssize_t)sizeof junk - 1);
    char buf[4096];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    cr_assert(strncmp(buf, "HTTP/1.1 400 ", 13) == 0 || strncmp(buf, "HTTP/1.1 505 ", 13) == 0,
              "got %.40s", buf);
    cr_assert(strstr(buf, "connection: close") != NULL);
    close(fd); /* read() returned 0: the server closed */
}

Test(conn, peer_gone_resets_open_streams)
{
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_get_headers(fd, 1, "/", false); /* a request body would follow */
    mini_frame f;
    cr_assert(mini_read(fd, &f)); /* the server's SETTINGS: it has read our bytes */
    usleep(100000);
    close(fd);
    for (int i = 0; i < 10000 && atomic_load(&closes) == 0; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&resets), 1);
    cr_assert_eq(atomic_load(&reset_code), 8, "reset code %u, not CANCEL",
                 atomic_load(&reset_code));
    cr_assert_eq(atomic_load(&closes), 1);
}
