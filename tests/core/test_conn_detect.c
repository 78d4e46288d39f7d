/* Tests for core/conn_detect.c over a real loopback socket (mini_h2.h):
 * a cleartext connection's first bytes choose its engine.  The HTTP/2
 * preface arriving in pieces (a prefix is only counted) still starts
 * HTTP/2; bytes of the preface's length that are not the preface go to
 * the HTTP/1.1 codec, which answers a malformed request with an error
 * status and closes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "mini_h2.h"

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)req;
    (void)app;
    spindle_respond(s, 204, NULL, 0, true);
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

TestSuite(conn_detect, .init = start, .fini = stop, .timeout = 60);

Test(conn_detect, bad_preface_gets_http1_error_then_close)
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

Test(conn_detect, preface_in_pieces_is_http2)
{
    int fd = mini_dial(port);
    const char *pre = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    /* 1, 9 and 14 bytes, each in its own segment (the server reads each
     * before the next is written). */
    cr_assert_eq(write(fd, pre, 1), 1);
    usleep(20000);
    cr_assert_eq(write(fd, pre + 1, 9), 9);
    usleep(20000);
    uint8_t out[9 + 14];
    memcpy(out, pre + 10, 14);
    mini_frame_head(out + 14, 0, 4, 0, 0); /* our SETTINGS */
    cr_assert_eq(write(fd, out, 23), 23);
    mini_frame f;
    cr_assert(mini_read(fd, &f));
    cr_assert_eq(f.type, 4, "frame type %u: not the server's SETTINGS", f.type);
    mini_get_headers(fd, 1, "/", true);
    do
        cr_assert(mini_read(fd, &f));
    while (f.type != 1); /* HEADERS: the 204 */
    cr_assert_eq(f.sid, 1u);
    close(fd);
}
