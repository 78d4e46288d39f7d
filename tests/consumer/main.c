/* A spindle application built outside spindle's tree (tests/consumer/run.py).
 *
 *   consumer    serves h2c on 127.0.0.1, one shard, a free port; prints
 *               "port N" once listening; GET / answers "consumer: spindle X.Y.Z"
 *               (the version of the library linked at run time); stops on
 *               SIGTERM. */
#include <spindle.h>
#include <stdio.h>
#include <string.h>

static char body[64];

static void on_request(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    static const spindle_header h[] = {{.name = "content-type", .value = "text/plain"}};
    if (req->path.len != 1 || req->path.ptr[0] != '/') {
        spindle_respond(s, 404, NULL, 0, true);
        return;
    }
    spindle_respond(s, 200, h, 1, false);
    spindle_send(s, body, strlen(body), true, NULL, NULL);
}

static void on_listen(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)shard;
    (void)address;
    (void)app;
    printf("port %u\n", (unsigned)port);
    fflush(stdout);
}

int main(void)
{
    uint32_t v = spindle_version();
    snprintf(body, sizeof body, "consumer: spindle %u.%u.%u\n", (unsigned)(v >> 16),
             (unsigned)((v >> 8) & 0xff), (unsigned)(v & 0xff));
    if (v >> 8 != SPINDLE_VERSION_NUM >> 8) {
        fprintf(stderr, "consumer: header %d.%d, library %s", SPINDLE_VERSION_MAJOR,
                SPINDLE_VERSION_MINOR, body);
        return 1;
    }
    spindle_config cfg = spindle_config_default();
    cfg.port = 0;
    cfg.shards = 1;
    cfg.pin = false;
    spindle_handler handler = {.on_request = on_request};
    spindle_hooks hooks = {.on_listen = on_listen};
    return spindle_run(&cfg, &handler, &hooks, NULL);
}
