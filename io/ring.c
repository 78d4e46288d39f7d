/*
 * io/ring.c - the shard's io_uring: setup, SQE backlog, submit/wait/reap,
 * prep helpers, doorbell. Contracts are in ring.h; the why is in
 * docs/ring.md.
 */
#include "ring.h"
#include "ring_poll.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ring_bufs.h"
#include "ring_caps.h"

/* liburing 2.3 predates these (kernel 6.2); the values are the kernel ABI. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
_Static_assert(RING_CQE_F_BUFFER == IORING_CQE_F_BUFFER, "cqe flag");
_Static_assert(RING_CQE_F_MORE == IORING_CQE_F_MORE, "cqe flag");
_Static_assert(RING_CQE_F_SOCK_NONEMPTY == IORING_CQE_F_SOCK_NONEMPTY, "cqe flag");
_Static_assert(RING_CQE_F_NOTIF == IORING_CQE_F_NOTIF, "cqe flag");
_Static_assert(RING_CQE_BUFFER_SHIFT == IORING_CQE_BUFFER_SHIFT, "cqe shift");
_Static_assert(RING_NOTIF_ZC_COPIED == IORING_NOTIF_USAGE_ZC_COPIED, "notif");
_Static_assert(sizeof(ring_cqe) == sizeof(struct io_uring_cqe), "cqe size");

#define RING_SQ_MAX  32768u /* kernel IORING_MAX_ENTRIES */
#define RING_CQ_MAX  65536u /* kernel IORING_MAX_CQ_ENTRIES */
#define RING_WAKE_UD ((uint64_t)RING_OP_WAKE)

struct ring {
    struct io_uring uring;
    ring_bufs *bufs;

    /* SQE backlog: a FIFO of prepared SQEs the SQ had no room for. */
    struct io_uring_sqe *bl;
    uint32_t bl_cap, bl_head, bl_len, bl_peak;
    uint64_t backlogged, inline_submits;
    uint64_t sqe_seq; /* SQEs handed out by sqe_get(), ever (the tickets) */
    uint64_t settled; /* ring_sqes_settled()'s last answer */
    bool defer_submit;
    uint64_t spin_ns; /* low-latency spin bound (0: off) */
    uint64_t spin_hits, spin_misses;
    ring_poll poll;       /* the adaptive idle poll (when spin_ns is 0) */
    uint64_t poll_yields; /* polls ended by a preemption */

    uint32_t setup_flags;
    uint32_t caps; /* RING_CAP_* (probe_caps()) */
    bool ring_fd_registered;

    /* Doorbell: an eventfd with a read armed on it. The kernel writes the
     * counter into wake_buf, so it lives here, as long as the ring. */
    int wake_fd;
    uint64_t wake_buf;
    bool wake_rearm; /* arming failed for want of an SQE: retry */
};

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
static int fail(ring_error *err, int code, const char *what, uint32_t flags)
{
    if (err) {
        err->code = code;
        ring_explain_error(code, what, flags, err->msg, sizeof err->msg);
    }
    return code;
}

/* ------------------------------------------------------------------------ */
/* Re-arm rules                                                              */

ring_rearm ring_accept_rearm(const ring_cqe *c)
{
    if (c->flags & RING_CQE_F_MORE)
        return RING_REARM_NONE;
    if (c->res >= 0)
        return RING_REARM_NOW;
    switch (-c->res) {
    case ECONNABORTED:
    case EINTR:
    case EAGAIN:
    case EPROTO:
    case EPERM: return RING_REARM_NOW;
    case ECANCELED:
    case EBADF:
    case ENOTSOCK:
    case EINVAL:
    case EOPNOTSUPP: return RING_REARM_NEVER;
    default: /* EMFILE, ENFILE, ENOBUFS, ENOMEM and the unknown */ return RING_REARM_LATER;
    }
}

ring_rearm ring_recv_rearm(const ring_cqe *c)
{
    if (c->flags & RING_CQE_F_MORE)
        return RING_REARM_NONE;
    if (c->res > 0)
        return RING_REARM_NOW;
    if (c->res == 0)
        return RING_REARM_NEVER;
    switch (-c->res) {
    case ENOBUFS: return RING_REARM_LATER;
    case EINTR:
    case EAGAIN: return RING_REARM_NOW;
    default: return RING_REARM_NEVER;
    }
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */

ring_config ring_config_default(void)
{
    ring_config c;

    memset(&c, 0, sizeof c);
    c.sq_entries = 256;
    c.backlog = 256;
    c.defer_submit = false;
    c.max_conns = 1024;
    c.cqes_per_conn = 5;
    c.listeners = 1;
    c.accept_backlog = 4096;
    c.msg_budget = 64;
    c.buf_count = 512;
    c.buf_size = 16384;
    c.buf_group = 0;
    c.waker = true;
    return c;
}

static uint64_t pow2_ceil(uint64_t v)
{
    uint64_t p = 1;

    while (p < v)
        p <<= 1;
    return p;
}

uint32_t ring_cq_budget(const ring_config *c)
{
    uint64_t sq = pow2_ceil(c->sq_entries ? c->sq_entries : 1);
    uint64_t n = (uint64_t)c->max_conns * c->cqes_per_conn + c->buf_count +
                 (uint64_t)c->listeners * ((uint64_t)c->accept_backlog + 1) + c->msg_budget + sq +
                 c->backlog;

    n = pow2_ceil(n);
    if (n > RING_CQ_MAX)
        return 0;
    return (uint32_t)n;
}

static struct io_uring_sqe *sqe_get(ring *r);

static int waker_arm(ring *r)
{
    struct io_uring_sqe *sqe = sqe_get(r);

    if (!sqe) {
        r->wake_rearm = true;
        return -ENOSPC;
    }
    io_uring_prep_read(sqe, r->wake_fd, &r->wake_buf, sizeof r->wake_buf, 0);
    io_uring_sqe_set_data64(sqe, RING_WAKE_UD);
    r->wake_rearm = false;
    return 0;
}

/* extra: IORING_SETUP_TASKRUN_FLAG for the spin (spin_wait()), or 0. */
static int setup(ring *r, uint32_t sq, uint32_t cq, uint32_t extra, ring_error *err)
{
    static const uint32_t base = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                 IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    /* COOP_TASKRUN is redundant beside DEFER_TASKRUN on new kernels (no
     * IPI either way) but harmless; drop it (then extra) if the kernel
     * objects. */
    const uint32_t tries[3] = {base | IORING_SETUP_COOP_TASKRUN | extra, base | extra, base};
    struct io_uring_params p;
    int ret = -EINVAL;

    for (size_t i = 0; i < 3; i++) {
        memset(&p, 0, sizeof p);
        p.flags = tries[i];
        p.cq_entries = cq;
        ret = io_uring_queue_init_params(sq, &r->uring, &p);
        if (ret != -EINVAL)
            break;
    }
    if (ret < 0)
        return fail(err, ret, "io_uring_setup", base);
    r->setup_flags = p.flags;
    /* EXT_ARG: timed waits without liburing's internal timeout SQE;
     * NODROP: an overflowing CQ is slow, never lossy. Both predate
      * DEFER_TASKRUN, so only a strange kernel fails this. */
    if ((p.features & (IORING_FEAT_EXT_ARG | IORING_FEAT_NODROP)) !=
        (IORING_FEAT_EXT_ARG | IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&r->uring);
        return ring_error_set(err, -EINVAL,
                              "io_uring_setup: the kernel lacks IORING_FEAT_EXT_ARG/NODROP "
                              "(features 0x%x)",
                              p.features);
    }
    return 0;
}

/* The sizes ring_new() checks before it asks the kernel for anything. */
static int check_config(const ring_config *cfg, uint32_t *cq, ring_error *err)
{
    if (cfg->sq_entries == 0 || cfg->sq_entries > RING_SQ_MAX)
        return ring_error_set(err, -EINVAL, "ring_new: sq_entries %u not in [1, %u]",
                              cfg->sq_entries, RING_SQ_MAX);
    *cq = ring_cq_budget(cfg);
    if (*cq == 0)
        return ring_error_set(err, -EINVAL,
                              "ring_new: the CQ budget for %u connections x %u CQEs (+ buffers, "
                              "accepts, messages) exceeds the kernel's %u CQ entries: lower "
                              "max_conns per shard or run more shards",
                              cfg->max_conns, cfg->cqes_per_conn, RING_CQ_MAX);
    return 0;
}

/* The eventfd doorbell: non-blocking, so the ring polls it instead of
 * parking an io-wq worker in a blocking read. */
static int waker_new(ring *r, ring_error *err)
{
    int ret;

    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->wake_fd < 0)
        return fail(err, -errno, "eventfd", 0);
    ret = waker_arm(r);
    if (ret < 0)
        return fail(err, ret, "ring_new: arming the doorbell", 0);
    return 0;
}

uint32_t ring_caps(const ring *r)
{
    return r->caps;
}

int ring_new(ring **out, const ring_config *cfg_in, ring_error *err)
{
    ring_config cfg = cfg_in ? *cfg_in : ring_config_default();
    uint32_t cq = 0;
    ring *r;
    int ret;

    *out = NULL;
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
    ret = check_config(&cfg, &cq, err);
    if (ret < 0)
        return ret;
    r = calloc(1, sizeof *r);
    if (!r)
        return fail(err, -ENOMEM, "ring_new", 0);
    r->wake_fd = -1;
    r->defer_submit = cfg.defer_submit;
    r->spin_ns = (uint64_t)cfg.spin_us * 1000u;
    ring_poll_init(&r->poll, cfg.spin_us ? 0 : cfg.poll_us);
    r->bl_cap = cfg.backlog;
    if (r->bl_cap && !(r->bl = calloc(r->bl_cap, sizeof *r->bl))) {
        free(r);
        return fail(err, -ENOMEM, "ring_new", 0);
    }
    ret = setup(r, cfg.sq_entries, cq, cfg.spin_us || cfg.poll_us ? IORING_SETUP_TASKRUN_FLAG : 0,
                err);
    if (ret < 0) {
        free(r->bl);
        free(r);
        return ret;
    }
    /* Registered ring fd: io_uring_enter skips the fd lookup. Per thread,
     * like SINGLE_ISSUER. Optional: without it we just pay the lookup. */
    r->ring_fd_registered = io_uring_register_ring_fd(&r->uring) == 1;
    r->caps = ring_caps_probe(&r->uring, cfg.buf_group);
    if (cfg.buf_count)
        ret = ring_bufs_new(&r->bufs, &r->uring, cfg.buf_group, cfg.buf_count, cfg.buf_size, err);
    if (ret == 0 && cfg.waker)
        ret = waker_new(r, err);
    if (ret < 0) {
        ring_free(r);
        return ret;
    }
    *out = r;
    return 0;
}

void ring_cancel_all(ring *r)
{
    struct io_uring_sync_cancel_reg reg;

    /* Bounded: teardown must not hang on a stuck op. */
    memset(&reg, 0, sizeof reg);
    reg.fd = -1;
    reg.flags = IORING_ASYNC_CANCEL_ANY;
    reg.timeout.tv_sec = 1;
    reg.timeout.tv_nsec = 0;
    (void)io_uring_register_sync_cancel(&r->uring, &reg);
}

void ring_free(ring *r)
{
    if (!r)
        return;
    /* Cancel everything and wait for it, so nothing in flight still
     * points at wake_buf, the provided buffers or the caller's memory
      * when they go. */
    ring_cancel_all(r);

    ring_bufs_free(r->bufs);
    if (r->ring_fd_registered)
        io_uring_unregister_ring_fd(&r->uring);
    io_uring_queue_exit(&r->uring);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    free(r->bl);
    free(r);
}

int ring_fd(const ring *r)
{
    return r->uring.ring_fd;
}

ring_bufs *ring_bufs_of(ring *r)
{
    return r->bufs;
}

void ring_get_stats(const ring *r, ring_stats *out)
{
    memset(out, 0, sizeof *out);
    out->sq_entries = r->uring.sq.ring_entries;
    out->cq_entries = r->uring.cq.ring_entries;
    out->setup_flags = r->setup_flags;
    out->features = r->uring.features;
    out->ring_fd_registered = r->ring_fd_registered;
    out->backlog_len = r->bl_len;
    out->backlog_peak = r->bl_peak;
    out->backlogged = r->backlogged;
    out->inline_submits = r->inline_submits;
    out->cq_overflow = r->uring.cq.koverflow ? *r->uring.cq.koverflow : 0;
    out->cq_overflow_pending = io_uring_cq_has_overflow(&r->uring);
    out->spin_hits = r->spin_hits;
    out->spin_misses = r->spin_misses;
    out->poll_window_us = (uint32_t)(r->poll.window_ns / 1000u);
    out->poll_yields = r->poll_yields;
}

/* ------------------------------------------------------------------------ */
/* SQEs and the backlog                                                      */

/* Move backlogged SQEs into the SQ, oldest first, while there is room. */
static void backlog_flush(ring *r)
{
    while (r->bl_len) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);

        if (!sqe)
            return;
        memcpy(sqe, &r->bl[r->bl_head], sizeof *sqe);
        r->bl_head = r->bl_head + 1 == r->bl_cap ? 0 : r->bl_head + 1;
        r->bl_len--;
    }
}

static int submit_now(ring *r)
{
    /* Buffers recycled so far go out first: a recv re-armed in this
     * submission must find them. */
    if (r->bufs)
        ring_bufs_commit(r->bufs);
    return io_uring_submit(&r->uring);
}

/*
 * An SQE to prepare: in the SQ when the SQ has room and nothing waits in the
 * backlog (order is kept), after an inline submit when allowed, else a
 * backlog slot. NULL when both are full. The caller prepares it at once:
 * an SQE handed out is submitted whatever it contains.
 */
static struct io_uring_sqe *sqe_get(ring *r)
{
    struct io_uring_sqe *sqe;
    uint32_t at;

    if (r->bl_len)
        backlog_flush(r);
    if (!r->bl_len) {
        sqe = io_uring_get_sqe(&r->uring);
        if (sqe) {
            r->sqe_seq++;
            return sqe;
        }
    }
    if (!r->defer_submit) {
        r->inline_submits++;
        if (submit_now(r) > 0) {
            backlog_flush(r);
            if (!r->bl_len) {
                sqe = io_uring_get_sqe(&r->uring);
                if (sqe) {
                    r->sqe_seq++;
                    return sqe;
                }
            }
        }
    }
    if (r->bl_len == r->bl_cap)
        return NULL;
    r->sqe_seq++;
    at = r->bl_head + r->bl_len;
    if (at >= r->bl_cap)
        at -= r->bl_cap;
    r->bl_len++;
    r->backlogged++;
    if (r->bl_len > r->bl_peak)
        r->bl_peak = r->bl_len;
    return &r->bl[at];
}

/* Everything pending goes into the SQ; submits as often as the backlog
 * needs. Adds the number of SQEs the kernel took to *taken. */
static int flush_all(ring *r, int *taken)
{
    if (r->bufs)
        ring_bufs_commit(r->bufs);
    if (r->wake_rearm)
        (void)waker_arm(r);
    for (;;) {
        int ret;

        backlog_flush(r);
        if (!r->bl_len)
            return 0;
        ret = io_uring_submit(&r->uring); /* the SQ is full here */
        if (ret < 0)
            return ret;
        if (ret == 0)
            return -EAGAIN; /* the kernel took nothing: don't spin */
        *taken += ret;
    }
}

int ring_submit(ring *r)
{
    int taken = 0;
    int ret = flush_all(r, &taken);

    if (ret < 0)
        return ret;
    ret = io_uring_submit(&r->uring);
    if (ret < 0)
        return ret;
    return taken + ret;
}

/* ------------------------------------------------------------------------ */
/* Prep helpers                                                              */

/*
 * The shape every ring_prep_* shares: refuse bad arguments (args_ok false)
 * with -EINVAL, get an SQE (sqe_get()) or refuse with -ENOSPC, and give it
 * ud. The caller then writes the op with an io_uring_prep_*(), which sets
 * every field but user_data (liburing's io_uring_prep_rw()), so ud stays.
 */
static int prep_sqe(ring *r, bool args_ok, uint64_t ud, struct io_uring_sqe **out)
{
    if (!args_ok)
        return -EINVAL;
    *out = sqe_get(r);
    if (!*out)
        return -ENOSPC;
    io_uring_sqe_set_data64(*out, ud);
    return 0;
}

int ring_prep_nop(ring *r, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, true, ud, &sqe);

    if (ret == 0)
        io_uring_prep_nop(sqe);
    return ret;
}

int ring_prep_accept_multishot(ring *r, int listen_fd, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, listen_fd >= 0, ud, &sqe);

    if (ret == 0)
        io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
    return ret;
}

int ring_prep_recv_multishot(ring *r, int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret;

    if (!r->bufs || fd < 0)
        return -EINVAL;
    /* The anti-spin rule: no buffer, no recv. */
    if (ring_bufs_available(r->bufs) == 0)
        return -ENOBUFS;
    ret = prep_sqe(r, true, ud, &sqe);
    if (ret < 0)
        return ret;
    /* len 0: each CQE may fill a whole provided buffer. */
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags = (uint8_t)(sqe->flags | IOSQE_BUFFER_SELECT);
    sqe->buf_group = ring_bufs_group(r->bufs);
    return 0;
}

/* The arguments a send of len bytes at buf on fd accepts. */
static bool send_args_ok(int fd, const void *buf, size_t len)
{
    return fd >= 0 && len <= UINT32_MAX && (buf || !len);
}

int ring_prep_send(ring *r, int fd, const void *buf, size_t len, int msg_flags, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, send_args_ok(fd, buf, len), ud, &sqe);

    if (ret == 0)
        io_uring_prep_send(sqe, fd, buf, len, msg_flags | MSG_NOSIGNAL);
    return ret;
}

int ring_prep_sendmsg(ring *r, int fd, const struct msghdr *msg, int msg_flags, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, fd >= 0 && msg, ud, &sqe);

    if (ret == 0)
        io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)(msg_flags | MSG_NOSIGNAL));
    return ret;
}

/* The shape of a send without CQE (ring.h): a ticket, CQE skip, and
 * DONTWAIT | WAITALL (never parked on poll, so it is over once issued; a
 * short send is a failure, and failures post their CQE). */
static int prep_nocqe(ring *r, bool args_ok, uint64_t ud, uint64_t *ticket,
                      struct io_uring_sqe **sqe)
{
    if (!(r->caps & RING_CAP_CQE_SKIP))
        return -EOPNOTSUPP;
    int ret = prep_sqe(r, args_ok && ticket, ud, sqe);
    if (ret == 0)
        *ticket = r->sqe_seq;
    return ret;
}

#define NOCQE_FLAGS (MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL)

int ring_prep_sendmsg_nocqe(ring *r, int fd, const struct msghdr *msg, uint64_t ud,
                            uint64_t *ticket)
{
    struct io_uring_sqe *sqe;
    int ret = prep_nocqe(r, fd >= 0 && msg, ud, ticket, &sqe);

    if (ret < 0)
        return ret;
    io_uring_prep_sendmsg(sqe, fd, msg, NOCQE_FLAGS);
    sqe->flags = (uint8_t)(sqe->flags | IOSQE_CQE_SKIP_SUCCESS);
    return 0;
}

int ring_prep_send_nocqe(ring *r, int fd, const void *buf, size_t len, uint64_t ud,
                         uint64_t *ticket)
{
    struct io_uring_sqe *sqe;
    int ret = prep_nocqe(r, send_args_ok(fd, buf, len), ud, ticket, &sqe);

    if (ret < 0)
        return ret;
    io_uring_prep_send(sqe, fd, buf, len, NOCQE_FLAGS);
    sqe->flags = (uint8_t)(sqe->flags | IOSQE_CQE_SKIP_SUCCESS);
    return 0;
}

uint64_t ring_sqes_settled(ring *r)
{
    /* A failure CQE on the overflow list is not reapable yet: hold on. */
    if (!io_uring_cq_has_overflow(&r->uring))
        r->settled = r->sqe_seq - r->bl_len - io_uring_sq_ready(&r->uring);
    return r->settled;
}

int ring_prep_send_zc(ring *r, int fd, const void *buf, size_t len, int msg_flags, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, send_args_ok(fd, buf, len), ud, &sqe);

    if (ret == 0)
        io_uring_prep_send_zc(sqe, fd, buf, len, msg_flags | MSG_NOSIGNAL,
                              IORING_SEND_ZC_REPORT_USAGE);
    return ret;
}

int ring_prep_sendmsg_zc(ring *r, int fd, const struct msghdr *msg, int msg_flags, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, fd >= 0 && msg, ud, &sqe);

    if (ret < 0)
        return ret;
    io_uring_prep_sendmsg_zc(sqe, fd, msg, (unsigned)(msg_flags | MSG_NOSIGNAL));
    sqe->ioprio = (uint16_t)(sqe->ioprio | IORING_SEND_ZC_REPORT_USAGE);
    return 0;
}

int ring_prep_shutdown(ring *r, int fd, int how, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, fd >= 0, ud, &sqe);

    if (ret == 0)
        io_uring_prep_shutdown(sqe, fd, how);
    return ret;
}

int ring_prep_close(ring *r, int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, fd >= 0, ud, &sqe);

    if (ret == 0)
        io_uring_prep_close(sqe, fd);
    return ret;
}

int ring_prep_poll_multishot(ring *r, int fd, uint32_t poll_mask, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, fd >= 0, ud, &sqe);

    if (ret == 0)
        io_uring_prep_poll_multishot(sqe, fd, poll_mask);
    return ret;
}

int ring_prep_openat2(ring *r, int dfd, const char *path, const struct open_how *how, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, path && how, ud, &sqe);

    if (ret == 0)
        io_uring_prep_openat2(sqe, dfd, path, (struct open_how *)how);
    return ret;
}

int ring_prep_statx(ring *r, int dfd, const char *path, int flags, unsigned mask, struct statx *stx,
                    uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, path && stx, ud, &sqe);

    if (ret == 0)
        io_uring_prep_statx(sqe, dfd, path, flags, mask, stx);
    return ret;
}

int ring_prep_read(ring *r, int fd, void *buf, unsigned len, uint64_t off, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, fd >= 0 && (buf || !len), ud, &sqe);

    if (ret == 0)
        io_uring_prep_read(sqe, fd, buf, len, off);
    return ret;
}

int ring_prep_cancel(ring *r, uint64_t target_ud, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, true, ud, &sqe);

    if (ret == 0)
        io_uring_prep_cancel64(sqe, target_ud, IORING_ASYNC_CANCEL_ALL);
    return ret;
}

int ring_prep_cancel_fd(ring *r, int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, fd >= 0, ud, &sqe);

    if (ret == 0)
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    return ret;
}

int ring_prep_msg(ring *r, int target_ring_fd, uint64_t target_ud, uint32_t value, uint64_t ud)
{
    struct io_uring_sqe *sqe;
    int ret = prep_sqe(r, target_ring_fd >= 0, ud, &sqe);

    /* IORING_MSG_DATA: len becomes the target CQE's res, off its
     * user_data. */
    if (ret == 0)
        io_uring_prep_msg_ring(sqe, target_ring_fd, value, target_ud, 0);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Waiting and reaping                                                       */

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * The poll before sleeping (ring.h, ring_wait) until min_complete CQEs are
 * ready or the bound passes. Completions wait as deferred task work, which
 * only a GETEVENTS enter runs; with IORING_SETUP_TASKRUN_FLAG the kernel
 * raises IORING_SQ_TASKRUN when there is some, so the spin watches that
 * flag in memory and enters only then (without the flag: an enter per
 * turn). Returns the CQEs ready (>= min_complete: a hit), or -errno.
 * *spent: ns spun (0: they were ready at once). *preempted (the adaptive
 * poll only; the low-latency mode spins on): two turns more than
 * RING_POLL_PREEMPT_NS apart (the thread was descheduled: another task
 * wants the core), which ends the spin.
 */
static int spin_wait(ring *r, unsigned min_complete, uint64_t bound_ns, uint64_t *spent,
                     bool *preempted)
{
    const unsigned want = IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW;
    bool flag = (r->setup_flags & IORING_SETUP_TASKRUN_FLAG) != 0;
    uint64_t start = mono_ns(), now = start, prev;
    int ret = io_uring_submit_and_get_events(&r->uring);

    prev = mono_ns();
    while (ret >= 0 && io_uring_cq_ready(&r->uring) < min_complete) {
        now = mono_ns();
        if (now - prev > RING_POLL_PREEMPT_NS && r->poll.max_ns) {
            *preempted = true;
            r->poll_yields++; /* the time in an enter does not count */
            break;
        }
        if (now - start >= bound_ns)
            break;
        if (!flag || (IO_URING_READ_ONCE(*r->uring.sq.kflags) & want)) {
            ret = io_uring_get_events(&r->uring);
            now = mono_ns();
        } else {
            cpu_relax();
        }
        prev = now;
    }
    *spent = now - start;
    if (ret < 0)
        return ret;
    return (int)io_uring_cq_ready(&r->uring);
}

/* The sleeping wait: submit what is queued and wait for min_complete CQEs
 * or timeout_ns. Returns the CQEs ready, or -errno. */
static int sleep_wait(ring *r, unsigned min_complete, uint64_t timeout_ns)
{
    struct __kernel_timespec ts, *tsp = NULL;
    struct io_uring_cqe *cqe;
    int ret;

    if (timeout_ns != RING_WAIT_FOREVER) {
        ts.tv_sec = (long long)(timeout_ns / 1000000000u);
        ts.tv_nsec = (long long)(timeout_ns % 1000000000u);
        tsp = &ts;
    }
    ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, min_complete, tsp, NULL);
    if (ret < 0 && ret != -ETIME)
        return ret;
    return (int)io_uring_cq_ready(&r->uring);
}

/* A wait for at least one CQE that polls first: for spin_ns (the
 * low-latency mode), else for the adaptive window, which learns from the
 * idle period (ring_poll.h). */
static int poll_then_sleep(ring *r, unsigned min_complete, uint64_t timeout_ns)
{
    uint64_t bound = r->spin_ns ? r->spin_ns : r->poll.window_ns, spent = 0;
    uint64_t start = r->poll.max_ns ? mono_ns() : 0;
    bool preempted = false;
    int ret;

    if (bound > timeout_ns)
        bound = timeout_ns;
    if (bound) {
        ret = spin_wait(r, min_complete, bound, &spent, &preempted);
        if (ret < 0)
            return ret;
        if ((unsigned)ret >= min_complete) {
            if (spent == 0)
                return ret; /* ready at once: no poll */
            r->spin_hits++;
            ring_poll_update(&r->poll, spent, preempted);
            return ret;
        }
        r->spin_misses += !preempted; /* else counted in poll_yields */
        if (timeout_ns != RING_WAIT_FOREVER)
            timeout_ns = spent < timeout_ns ? timeout_ns - spent : 0;
        if (timeout_ns == 0)
            return ret;
    }
    ret = sleep_wait(r, min_complete, timeout_ns);
    if (r->poll.max_ns && ret >= 0) {
        /* A period ended by the timeout (a timer of the shard's) only
         * teaches that no traffic came, when it was longer than the bound. */
        uint64_t idle = mono_ns() - start;
        if (ret > 0 || idle > r->poll.max_ns)
            ring_poll_update(&r->poll, idle, preempted);
    }
    return ret;
}

int ring_wait(ring *r, unsigned min_complete, uint64_t timeout_ns)
{
    int taken = 0;
    int ret = flush_all(r, &taken);

    if (ret < 0 && ret != -EAGAIN)
        return ret;
    if (min_complete == 0) {
        /* Enter with GETEVENTS even with nothing to submit: under
         * DEFER_TASKRUN that is what runs our completions. */
        ret = io_uring_submit_and_get_events(&r->uring);
        if (ret < 0)
            return ret;
        return (int)io_uring_cq_ready(&r->uring);
    }
    if (timeout_ns && (r->spin_ns || r->poll.max_ns))
        return poll_then_sleep(r, min_complete, timeout_ns);
    return sleep_wait(r, min_complete, timeout_ns);
}

static void reap_wake(ring *r, ring_cqe *c)
{
    if (c->res == (int32_t)sizeof r->wake_buf) {
        uint64_t n = r->wake_buf;

        c->res = n > INT32_MAX ? INT32_MAX : (int32_t)n;
        (void)waker_arm(r); /* on -ENOSPC, retried before the next wait */
    }
    /* An error (-ECANCELED at teardown) is handed over as is, and the
     * doorbell stays down: re-arming on a persistent error would spin. */
}

unsigned ring_reap(ring *r, ring_cqe *out, unsigned max)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    io_uring_for_each_cqe(&r->uring, head, cqe)
    {
        ring_cqe *c;

        if (n == max)
            break;
        c = &out[n++];
        c->user_data = cqe->user_data;
        c->res = cqe->res;
        c->flags = cqe->flags;
        if ((c->flags & RING_CQE_F_BUFFER) && r->bufs)
            ring_bufs_taken(r->bufs, ring_cqe_bid(c));
        if (c->user_data == RING_WAKE_UD)
            reap_wake(r, c);
    }
    /* One store to the CQ head releases the whole batch. */
    io_uring_cq_advance(&r->uring, n);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Doorbell                                                                  */

ring_waker ring_waker_of(const ring *r)
{
    ring_waker w = {r->wake_fd};

    return w;
}

int ring_waker_wake(ring_waker w)
{
    uint64_t one = 1;

    if (w.fd < 0)
        return -EBADF;
    if (write(w.fd, &one, sizeof one) == (ssize_t)sizeof one)
        return 0;
    /* EAGAIN: the counter is at its maximum, so a wake is pending. */
    return errno == EAGAIN ? 0 : -errno;
}
