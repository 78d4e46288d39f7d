/* Tests for core/shard.c and core/server.c: shards share the port shard 0
 * was given (port 0), and a stop drains an open connection with GOAWAY
 * before spindle_run() returns 0. */
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

Test(shard, shards_join_the_first_port, .timeout = 60)
{
    spindle_config cfg = spindle_config_default();
    cfg.shards = 2;
    spindle_handler h = {.on_request = on_request};
    uint16_t port = mini_serve(cfg, &h);
    uint16_t ports[2] = {0, 0};
    cr_assert_eq(mini_listens(ports, 2), 2);
    cr_assert_neq(port, 0);
    cr_assert_eq(ports[0], ports[1]);
    cr_assert_eq(mini_stop(), 0);
}

Test(shard, stop_drains_with_goaway, .timeout = 60)
{
    spindle_handler h = {.on_request = on_request};
    uint16_t port = mini_serve(spindle_config_default(), &h);
    int fd = mini_dial(port);
    mini_preface(fd);
    mini_frame f;
    cr_assert(mini_read(fd, &f)); /* SETTINGS: the connection is up */
    spindle_stop();
    bool goaway = false, eof = false;
    for (int i = 0; i < 100 && !eof; i++) {
        if (!mini_read(fd, &f))
            eof = true;
        else if (f.type == 7)
            goaway = true;
        else if (f.type == 6 && !(f.flags & 1)) { /* PING: answer it, the drain waits for it */
            uint8_t ack[17];
            mini_frame_head(ack, 8, 6, 1, 0);
            memcpy(ack + 9, f.p, 8);
            cr_assert_eq(write(fd, ack, sizeof ack), (ssize_t)sizeof ack);
        }
    }
    cr_assert(goaway, "no GOAWAY on stop");
    cr_assert(eof, "the connection was not closed");
    close(fd);
    cr_assert_eq(mini_stop(), 0);
}
