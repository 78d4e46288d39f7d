/* micro_ring.c - io/ring itself: a NOP through the kernel, and loopback
 * round trips and a bulk stream through real sockets, both ends on one ring
 * with multishot recv into provided buffers (the server's read path) and
 * plain send.  One thread: each op costs at least one io_uring_enter. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "micro.h"
#include "ring.h"
#include "ring_bufs.h"
#include "ring_listen.h"

#define BATCH        64u
#define STREAM_CHUNK (64u << 10)

typedef struct rstate {
    ring *r;
    ring_bufs *bufs;
    int fd[2];
    bool armed[2];
    uint64_t got[2];  /* bytes received on side i */
    uint64_t sent_ok; /* send CQEs */
    uint64_t errors;
    uint64_t enters; /* ring_wait calls */
    uint64_t recv_cqes;
    size_t msg;
    uint8_t *payload;
} rstate;

static void arm(rstate *st, int side)
{
    if (st->armed[side])
        return;
    int rc = ring_prep_recv_multishot(st->r, st->fd[side],
                                      ring_ud_pack(RING_OP_RECV, (uint32_t)side, 0));
    if (rc == 0)
        st->armed[side] = true;
    else if (rc != -ENOBUFS)
        st->errors++;
}

/* Wait for completions once and handle all that are ready. */
static void pump(rstate *st)
{
    ring_cqe cqes[BATCH];
    int w = ring_wait(st->r, 1, RING_WAIT_FOREVER);
    st->enters++;
    if (w < 0 && w != -EINTR && w != -ETIME) {
        st->errors++;
        return;
    }
    unsigned k;
    while ((k = ring_reap(st->r, cqes, BATCH)) > 0) {
        for (unsigned i = 0; i < k; i++) {
            const ring_cqe *c = &cqes[i];
            uint8_t op = ring_ud_op(c->user_data);
            if (op == RING_OP_RECV) {
                int side = (int)ring_ud_slot(c->user_data);
                if (c->res > 0) {
                    st->got[side] += (uint64_t)c->res;
                    st->recv_cqes++;
                } else if (c->res != -ENOBUFS) {
                    st->errors++;
                }
                ring_bufs_recycle_cqe(st->bufs, c);
                if (!ring_cqe_more(c)) {
                    st->armed[side] = false;
                    arm(st, side);
                }
            } else if (op == RING_OP_SEND) {
                if (c->res < 0)
                    st->errors++;
                else
                    st->sent_ok++;
            }
        }
    }
}

static void send_side(rstate *st, int side, size_t len)
{
    if (ring_prep_send(st->r, st->fd[side], st->payload, len, MSG_WAITALL,
                       ring_ud_pack(RING_OP_SEND, (uint32_t)side, 0)) != 0)
        st->errors++;
}

static uint64_t run_nop(void *arg, uint64_t n)
{
    rstate *st = arg;
    ring_cqe cqes[BATCH];
    for (uint64_t i = 0; i < n; i++) {
        ring_prep_nop(st->r, ring_ud_pack(RING_OP_NOP, 0, 0));
        if (ring_wait(st->r, 1, RING_WAIT_FOREVER) < 0)
            st->errors++;
        while (ring_reap(st->r, cqes, BATCH) > 0)
            ;
    }
    return 0;
}

/* Ping-pong: side 0 sends msg bytes, side 1 receives them and sends them
 * back, side 0 receives.  One op = one round trip. */
static uint64_t run_rtt(void *arg, uint64_t n)
{
    rstate *st = arg;
    for (uint64_t i = 0; i < n && !st->errors; i++) {
        uint64_t want1 = st->got[1] + st->msg;
        send_side(st, 0, st->msg);
        while (st->got[1] < want1 && !st->errors)
            pump(st);
        uint64_t want0 = st->got[0] + st->msg;
        send_side(st, 1, st->msg);
        while (st->got[0] < want0 && !st->errors)
            pump(st);
    }
    return 0;
}

/* Bulk: side 0 streams STREAM_CHUNK-byte sends (two in flight) to side 1. */
static uint64_t run_stream(void *arg, uint64_t n)
{
    rstate *st = arg;
    uint64_t base_sent = st->sent_ok;
    uint64_t want = st->got[1] + n * STREAM_CHUNK;
    for (uint64_t i = 0; i < n && !st->errors; i++) {
        while (st->sent_ok - base_sent + 2 <= i && !st->errors)
            pump(st);
        send_side(st, 0, STREAM_CHUNK);
    }
    while ((st->got[1] < want || st->sent_ok - base_sent < n) && !st->errors)
        pump(st);
    return 0;
}

static int tcp_pair(int fd[2])
{
    ring_error err;
    int lfd = ring_listen_tcp("127.0.0.1", 0, 16, false, &err);
    if (lfd < 0) {
        fprintf(stderr, "micro_ring: %s\n", err.msg);
        return -1;
    }
    int port = ring_listen_port(lfd);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) != 0) {
        if (c >= 0)
            close(c);
        close(lfd);
        return -1;
    }
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    poll(&p, 1, 1000);
    int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    close(lfd);
    if (s < 0) {
        close(c);
        return -1;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd[0] = c;
    fd[1] = s;
    return 0;
}

static void close_pair(rstate *st)
{
    for (int i = 0; i < 2; i++) {
        if (st->fd[i] >= 0) {
            ring_prep_cancel_fd(st->r, st->fd[i], ring_ud_pack(RING_OP_CANCEL, 0, 0));
            st->armed[i] = false;
        }
    }
    /* Let the cancellations complete so no recv still points at the fds. */
    ring_cqe cqes[BATCH];
    for (int round = 0; round < 4; round++) {
        ring_wait(st->r, 0, 0);
        unsigned k;
        while ((k = ring_reap(st->r, cqes, BATCH)) > 0)
            for (unsigned i = 0; i < k; i++)
                ring_bufs_recycle_cqe(st->bufs, &cqes[i]);
    }
    for (int i = 0; i < 2; i++) {
        if (st->fd[i] >= 0)
            close(st->fd[i]);
        st->fd[i] = -1;
    }
}

static void pair_cases(bench *b, rstate *st, const char *kind, bool tcp)
{
    char rtt64[64], rtt1k[64], stream[64];
    snprintf(rtt64, sizeof rtt64, "ring/%s_rtt_64B", kind);
    snprintf(rtt1k, sizeof rtt1k, "ring/%s_rtt_1KiB", kind);
    snprintf(stream, sizeof stream, "ring/%s_stream_64KiB", kind);
    if (!bench_want(b, rtt64) && !bench_want(b, rtt1k) && !bench_want(b, stream))
        return;
    int fd[2];
    int rc = tcp ? tcp_pair(fd) : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd);
    if (rc != 0) {
        bench_skip(b, rtt64, "could not create the socket pair");
        return;
    }
    st->fd[0] = fd[0];
    st->fd[1] = fd[1];
    st->armed[0] = st->armed[1] = false;
    arm(st, 0);
    arm(st, 1);
    const char *names[2] = {rtt64, rtt1k};
    size_t sizes[2] = {64, 1024};
    for (int k = 0; k < 2; k++) {
        st->msg = sizes[k];
        uint64_t e0 = st->enters, n0 = st->recv_cqes, err0 = st->errors;
        uint64_t got0 = st->got[0] + st->got[1];
        if (bench_run(
                b, names[k], run_rtt, st,
                &(bench_opts){.unit = "round trip", .bytes_per_op = 2.0 * (double)sizes[k]})) {
            double trips = (double)(st->got[0] + st->got[1] - got0) / (2.0 * (double)sizes[k]);
            if (trips > 0) {
                bench_note(b, "enters_per_rtt", (double)(st->enters - e0) / trips);
                bench_note(b, "recv_cqes_per_rtt", (double)(st->recv_cqes - n0) / trips);
            }
            if (st->errors != err0)
                bench_note(b, "ERRORS", (double)(st->errors - err0));
        }
    }
    uint64_t e0 = st->enters, n0 = st->recv_cqes, err0 = st->errors, got0 = st->got[1];
    if (bench_run(b, stream, run_stream, st,
                  &(bench_opts){.unit = "64 KiB send", .bytes_per_op = STREAM_CHUNK})) {
        double chunks = (double)(st->got[1] - got0) / STREAM_CHUNK;
        if (chunks > 0) {
            bench_note(b, "enters_per_chunk", (double)(st->enters - e0) / chunks);
            bench_note(b, "recv_cqes_per_chunk", (double)(st->recv_cqes - n0) / chunks);
        }
        if (st->errors != err0)
            bench_note(b, "ERRORS", (double)(st->errors - err0));
    }
    close_pair(st);
}

void micro_ring(bench *b)
{
    static const char *all[] = {
        "ring/nop",          "ring/tcp_rtt_64B",   "ring/tcp_rtt_1KiB",     "ring/tcp_stream_64KiB",
        "ring/unix_rtt_64B", "ring/unix_rtt_1KiB", "ring/unix_stream_64KiB"};
    bool any = false;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        any = any || bench_want(b, all[i]);
    if (!any)
        return;
    rstate st = {.fd = {-1, -1}};
    ring_config cfg = ring_config_default();
    cfg.max_conns = 8;
    cfg.buf_count = 256;
    cfg.buf_size = 16384;
    cfg.waker = false;
    ring_error err;
    int rc = ring_new(&st.r, &cfg, &err);
    st.payload = calloc(1, STREAM_CHUNK);
    if (rc != 0 || !st.payload) {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            bench_skip(b, all[i], rc ? err.msg : "out of memory");
        free(st.payload);
        if (st.r)
            ring_free(st.r);
        return;
    }
    st.bufs = ring_bufs_of(st.r);
    bench_run(b, "ring/nop", run_nop, &st, &(bench_opts){.unit = "nop"});
    pair_cases(b, &st, "tcp", true);
    pair_cases(b, &st, "unix", false);
    ring_free(st.r);
    free(st.payload);
}
