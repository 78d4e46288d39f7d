/* mini_h2.c - see mini_h2.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mini_h2.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static pthread_t server_thread;
static spindle_config server_cfg;
static spindle_handler server_handler;
static spindle_hooks server_hooks;
static void *server_app;
static atomic_int nlistens;
static _Atomic uint16_t listen_ports[16];

static void on_listen(uint32_t shard, const char *addr, uint16_t p, void *app)
{
    (void)shard;
    (void)addr;
    (void)app;
    int i = atomic_fetch_add(&nlistens, 1);
    if (i < 16)
        atomic_store(&listen_ports[i], p);
}

static void *serve(void *arg)
{
    (void)arg;
    spindle_hooks hooks = server_hooks;
    hooks.on_listen = on_listen;
    return (void *)(intptr_t)spindle_run(&server_cfg, &server_handler, &hooks, server_app);
}

uint16_t mini_serve(spindle_config cfg, const spindle_handler *h)
{
    return mini_serve_hooks(cfg, h, NULL, NULL);
}

uint16_t mini_serve_hooks(spindle_config cfg, const spindle_handler *h, const spindle_hooks *hooks,
                          void *app)
{
    server_hooks = hooks ? *hooks : (spindle_hooks){0};
    server_app = app;
    cfg.address = "127.0.0.1";
    cfg.port = 0;
    cfg.log_level = 0;
    if (!cfg.shards)
        cfg.shards = 1;
    server_cfg = cfg;
    server_handler = *h;
    atomic_store(&nlistens, 0);
    cr_assert_eq(pthread_create(&server_thread, NULL, serve, NULL), 0);
    for (int i = 0; i < 10000 && atomic_load(&nlistens) < (int)cfg.shards; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&nlistens), (int)cfg.shards, "the shards did not listen in 10 s");
    return atomic_load(&listen_ports[0]);
}

int mini_stop(void)
{
    spindle_stop();
    void *rc;
    pthread_join(server_thread, &rc);
    return (int)(intptr_t)rc;
}

int mini_listens(uint16_t *ports, int max)
{
    int n = atomic_load(&nlistens);
    for (int i = 0; i < n && i < max && i < 16; i++)
        ports[i] = atomic_load(&listen_ports[i]);
    return n;
}

int mini_dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

void mini_frame_head(uint8_t *out, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
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

void mini_preface(int fd)
{
    uint8_t out[33];
    memcpy(out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    mini_frame_head(out + 24, 0, 4, 0, 0);
    cr_assert_eq(write(fd, out, sizeof out), (ssize_t)sizeof out);
}

void mini_get_headers(int fd, uint32_t sid, const char *path, bool end_stream)
{
    uint8_t out[128];
    size_t b = 9, pl = strlen(path);
    cr_assert_lt(pl, 64);
    out[b++] = 0x82; /* :method GET */
    out[b++] = 0x86; /* :scheme http */
    out[b++] = 0x04; /* :path, literal without indexing, name index 4 */
    out[b++] = (uint8_t)pl;
    memcpy(out + b, path, pl);
    b += pl;
    out[b++] = 0x01; /* :authority "a" */
    out[b++] = 0x01;
    out[b++] = 'a';
    mini_frame_head(out, b - 9, 1, (uint8_t)(0x4 | (end_stream ? 0x1 : 0)), sid);
    cr_assert_eq(write(fd, out, b), (ssize_t)b);
}

bool mini_read(int fd, mini_frame *f)
{
    uint8_t h[9];
    if (recv(fd, h, 9, MSG_WAITALL) != 9)
        return false;
    f->len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
    f->type = h[3];
    f->flags = h[4];
    f->sid = (uint32_t)(h[5] & 0x7f) << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8];
    if (f->len > sizeof f->p)
        return false;
    if (f->len && recv(fd, f->p, f->len, MSG_WAITALL) != (ssize_t)f->len)
        return false;
    if (f->type == 4 && !(f->flags & 1)) {
        uint8_t ack[9];
        mini_frame_head(ack, 0, 4, 1, 0);
        if (write(fd, ack, 9) != 9)
            return false;
    }
    return true;
}

uint8_t mini_response(int fd, uint32_t sid, char *body, size_t cap)
{
    mini_frame f;
    uint8_t status = 0;
    size_t n = 0;
    while (mini_read(fd, &f)) {
        if (f.sid != sid)
            continue;
        if (f.type == 1)
            status = f.p[0];
        if (f.type == 0 && n + f.len < cap) {
            memcpy(body + n, f.p, f.len);
            n += f.len;
        }
        if (f.type == 3) {
            status = 0;
            break;
        }
        if ((f.type == 0 || f.type == 1) && (f.flags & 1))
            break;
    }
    body[n] = 0;
    return status;
}

typedef struct on_shard_call {
    void (*fn)(void *);
    void *arg;
    atomic_bool done;
} on_shard_call;

static void run_call(spindle_shard *sh, void *arg)
{
    (void)sh;
    on_shard_call *c = arg;
    c->fn(c->arg);
    atomic_store(&c->done, true);
}

void mini_on_shard(uint32_t shard, void (*fn)(void *), void *arg)
{
    on_shard_call c = {.fn = fn, .arg = arg};
    atomic_init(&c.done, false);
    int rc;
    while ((rc = spindle_post(shard, run_call, &c)) == SPINDLE_EAGAIN)
        usleep(100);
    cr_assert_eq(rc, 0, "spindle_post: %s", spindle_strerror(rc));
    for (int i = 0; i < 10000 && !atomic_load(&c.done); i++)
        usleep(1000);
    cr_assert(atomic_load(&c.done), "the shard did not run the call in 10 s");
}

bool mini_wait(atomic_int *v, int at_least)
{
    for (int i = 0; i < 10000 && atomic_load(v) < at_least; i++)
        usleep(1000);
    return atomic_load(v) >= at_least;
}
