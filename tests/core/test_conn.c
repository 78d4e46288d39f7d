/* Tests for core/conn.c over a real loopback socket (mini_h2.h): a peer
 * that goes away mid-request has its open streams reset (on_reset, CANCEL)
 * and closed.  Protocol detection: test_conn_detect.c. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdatomic.h>
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
