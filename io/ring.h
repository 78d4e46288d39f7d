/*
 * io/ring.h - one io_uring per shard: setup, SQE discipline, completions.
 *
 * This is the one module where io_uring discipline lives (docs/ring.md has
 * the one-page why). It knows sockets and buffers, nothing about HTTP/2.
 *
 * Threads. A ring belongs to the thread that called ring_new() (the shard
 * thread): the ring is set up with IORING_SETUP_SINGLE_ISSUER, so the kernel
 * refuses io_uring_enter() from any other thread with -EEXIST, and the
 * registered ring fd is per thread as well. Every function below is
 * owner-thread-only unless it says otherwise. The exceptions are the pure
 * user_data helpers and ring_waker_wake(), which any thread may call.
 *
 * liburing stays inside io/: this header includes no liburing header, so
 * core/ does not inherit its inline functions (or their warnings). The ring
 * is opaque; completions are copied out as ring_cqe.
 *
 * Errors are negative errno values, as in liburing. Functions that can fail
 * for reasons an operator must fix (setup, listening) also fill a ring_error
 * whose message names the cause.
 */
#ifndef SPINDLE_IO_RING_H
#define SPINDLE_IO_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msghdr;

typedef struct ring ring;
typedef struct ring_bufs ring_bufs; /* io/ring_bufs.h */

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

/* An error code (negative errno) and a message naming the cause. */
typedef struct ring_error {
    int code;
    char msg[384];
} ring_error;

/*
 * Fill buf with an explanation of an io_uring setup or registration failure
 * err (a positive or negative errno) that happened during `what` (e.g.
 * "io_uring_setup"). Names the cause an operator can act on:
 *   EPERM/EACCES: the kernel.io_uring_disabled sysctl (read from
 *     /proc/sys/kernel/io_uring_disabled) or, when that is 0, a seccomp
 *     filter / LSM (container runtimes block io_uring by default);
 *   ENOSYS: a kernel without io_uring (or a seccomp filter answering ENOSYS);
 *   ENOMEM: for a non-root user, the RLIMIT_MEMLOCK soft and hard limits
 *     (rings and buffer rings are charged to it);
 *   EINVAL: the setup flags in `setup_flags` the kernel rejected;
 *   EMFILE/ENFILE: out of file descriptors;
 *   EEXIST: a thread that does not own the ring (SINGLE_ISSUER);
 * any other errno: "what: strerror". what == NULL reads "io_uring".
 * Always NUL-terminates (len > 0; buf NULL or len 0: writes nothing). Any
 * thread; reads /proc and getrlimit().
 */
void ring_explain_error(int err, const char *what, uint32_t setup_flags, char *buf, size_t len);

/* Fill err (NULL: nothing) with code and a printf-formatted message
 * (truncated to fit). Returns code, so a failing path can end in
 * `return ring_error_set(err, -EINVAL, "...", ...);`. Any thread. */
__attribute__((format(printf, 3, 4))) int ring_error_set(ring_error *err, int code, const char *fmt,
                                                         ...);

/* ------------------------------------------------------------------------ */
/* user_data: op | slot | generation                                         */

/*
 * Every SQE carries a u64 user_data that comes back in its CQE(s):
 *
 *   bits  0..7   op          what the operation was (ring_op or caller's own)
 *   bits  8..31  slot        index into the shard's connection table
 *   bits 32..63  generation  the slot's generation when the op was issued
 *
 * The connection table bumps a slot's generation whenever the slot is
 * released, so a CQE of an operation issued for the slot's previous owner
 * carries an old generation: it is *stale*. Multishot ops and cancellations
 * make stale CQEs normal (a recv CQE already posted when we closed). The
 * caller compares ring_ud_gen() with the slot's current generation and
 * ignores a stale CQE, except for the resources the CQE itself carries: a
 * stale recv CQE with RING_CQE_F_BUFFER still owns a provided buffer, which
 * must be recycled (ring_bufs_recycle_cqe()). The generation protects the
 * slot's identity, not memory the kernel borrows: send buffers and msghdrs
 * must stay valid until their own CQE (zero-copy: their notification), stale
 * or not. 32 bits of generation wrap after 2^32 reuses of one slot, far
 * beyond any CQE's lifetime.
 */
#define RING_UD_OP_BITS    8u
#define RING_UD_SLOT_BITS  24u
#define RING_UD_GEN_BITS   32u
#define RING_UD_SLOT_LIMIT (1u << RING_UD_SLOT_BITS) /* slots are < this */

/* The ops the io layer names. Values >= RING_OP_USER are the caller's. */
typedef enum ring_op {
    RING_OP_NONE = 0, /* never issued: user_data 0 is never a real op */
    RING_OP_WAKE,     /* ring_waker doorbell (the ring issues it itself) */
    RING_OP_NOP,
    RING_OP_ACCEPT,
    RING_OP_RECV,
    RING_OP_SEND,
    RING_OP_SEND_ZC,
    RING_OP_SHUTDOWN,
    RING_OP_CLOSE,
    RING_OP_CANCEL,
    RING_OP_MSG,
    RING_OP_USER = 64
} ring_op;

/* Pack op, slot (masked to 24 bits) and generation. Any thread. */
static inline uint64_t ring_ud_pack(uint8_t op, uint32_t slot, uint32_t gen)
{
    return (uint64_t)op | ((uint64_t)(slot & (RING_UD_SLOT_LIMIT - 1u)) << RING_UD_OP_BITS) |
           ((uint64_t)gen << (RING_UD_OP_BITS + RING_UD_SLOT_BITS));
}

static inline uint8_t ring_ud_op(uint64_t ud)
{
    return (uint8_t)(ud & 0xffu);
}

static inline uint32_t ring_ud_slot(uint64_t ud)
{
    return (uint32_t)(ud >> RING_UD_OP_BITS) & (RING_UD_SLOT_LIMIT - 1u);
}

static inline uint32_t ring_ud_gen(uint64_t ud)
{
    return (uint32_t)(ud >> (RING_UD_OP_BITS + RING_UD_SLOT_BITS));
}

/* True when ud was issued for an earlier owner of its slot. */
static inline bool ring_ud_stale(uint64_t ud, uint32_t current_gen)
{
    return ring_ud_gen(ud) != current_gen;
}

/* ------------------------------------------------------------------------ */
/* Completions                                                               */

/* A copy of one CQE, taken by ring_reap(); the CQ slot is already free. */
typedef struct ring_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} ring_cqe;

/* CQE flags (same values as the kernel's IORING_CQE_F_*, checked in ring.c). */
#define RING_CQE_F_BUFFER        0x1u /* a provided buffer; id in flags >> 16 */
#define RING_CQE_F_MORE          0x2u /* the multishot op / ZC send goes on */
#define RING_CQE_F_SOCK_NONEMPTY 0x4u /* more data was queued on the socket */
#define RING_CQE_F_NOTIF         0x8u /* a zero-copy send's notification */
#define RING_CQE_BUFFER_SHIFT    16u
/* In a ZC notification's res: the kernel copied instead of zero-copying. */
#define RING_NOTIF_ZC_COPIED 0x80000000u

static inline bool ring_cqe_more(const ring_cqe *c)
{
    return (c->flags & RING_CQE_F_MORE) != 0;
}

static inline bool ring_cqe_notif(const ring_cqe *c)
{
    return (c->flags & RING_CQE_F_NOTIF) != 0;
}

static inline bool ring_cqe_has_buf(const ring_cqe *c)
{
    return (c->flags & RING_CQE_F_BUFFER) != 0;
}

static inline uint16_t ring_cqe_bid(const ring_cqe *c)
{
    return (uint16_t)(c->flags >> RING_CQE_BUFFER_SHIFT);
}

/* On a notification CQE: true when the data went out as a copy after all. */
static inline bool ring_cqe_zc_copied(const ring_cqe *c)
{
    return ((uint32_t)c->res & RING_NOTIF_ZC_COPIED) != 0;
}

/*
 * What a multishot op's CQE asks of the caller, in one place (a re-arm at
 * the wrong moment spins). core/ does not call these yet: core/shard.c
 * (on_accept) and core/conn.c (conn_on_recv) apply their own version inline.
 */
typedef enum ring_rearm {
    RING_REARM_NONE,  /* F_MORE: still armed, nothing to do */
    RING_REARM_NOW,   /* ended for a reason a new arm fixes: re-arm now */
    RING_REARM_LATER, /* ended by a shortage: re-arm once it is over (recv:
                         after buffers were recycled; accept: after a
                         connection closed, or on a timer) */
    RING_REARM_NEVER  /* ended for good: EOF, cancelled, socket error */
} ring_rearm;

/*
 * Multishot accept: NONE with F_MORE; NOW after a success without F_MORE
 * or a transient error (-ECONNABORTED, -EINTR, -EAGAIN, -EPROTO, -EPERM);
 * LATER after -EMFILE, -ENFILE, -ENOBUFS, -ENOMEM (the pending connection
 * would fail a new accept at once); NEVER after -ECANCELED or a listener
 * that is gone (-EBADF, -ENOTSOCK, -EINVAL, -EOPNOTSUPP). Unknown errors:
 * LATER, the choice that cannot spin. Any thread.
 */
ring_rearm ring_accept_rearm(const ring_cqe *c);

/*
 * Multishot recv: NONE with F_MORE; NOW after data without F_MORE or
 * -EINTR/-EAGAIN; LATER after -ENOBUFS; NEVER after EOF (res 0),
 * -ECANCELED or any other error (the connection is done). A NOW re-arm may
 * still be refused with -ENOBUFS by ring_prep_recv_multishot() when the pool
 * is empty: treat that as LATER. Any thread.
 */
ring_rearm ring_recv_rearm(const ring_cqe *c);

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */

/*
 * CQ sizing. The CQ must hold every CQE the kernel can post between two
 * ring_reap() rounds, or CQEs go to the kernel's overflow list (no loss on
 * IORING_FEAT_NODROP kernels, but slow, and -EBUSY on some paths). The
 * budget counts the worst case, assuming the shard keeps one send in flight
 * per connection and reaps everything after every ring_wait():
 *
 *   cq >= max_conns * cqes_per_conn      one recv end (EOF, error, -ENOBUFS,
 *                                        -ECANCELED), one send, one ZC
 *                                        notification, one cancel, one close
 *                                        (default 5)
 *       + buf_count                      every recv data CQE holds a provided
 *                                        buffer until recycled, so at most
 *                                        buf_count of them are unreaped
 *       + listeners * (accept_backlog+1) multishot accept draining a full
 *                                        listen queue, plus its final CQE
 *       + msg_budget                     MSG_RING CQEs other shards may aim
 *                                        at this ring in one round
 *       + sq_entries + backlog           any other single-shot op in flight
 *
 * rounded up to a power of two. Multishot accept is the one term that is a
 * rate, not a hard bound (connections keep arriving while we run); NODROP
 * keeps it correct and ring_stats.cq_overflow shows a mis-sized ring.
 * A budget above the kernel's 65536 CQ entries is refused with -EINVAL:
 * lower max_conns per shard or run more shards.
 */
typedef struct ring_config {
    uint32_t sq_entries;     /* SQ size (power of two; default 256) */
    uint32_t backlog;        /* SQE backlog slots (default = sq_entries) */
    bool defer_submit;       /* never io_uring_enter() from a prep (below) */
    uint32_t max_conns;      /* connections this ring serves (default 1024) */
    uint32_t cqes_per_conn;  /* CQ budget per connection (default 5) */
    uint32_t listeners;      /* multishot accepts armed (default 1) */
    uint32_t accept_backlog; /* listen() backlog per listener (default 4096) */
    uint32_t msg_budget;     /* MSG_RING CQEs aimed at us (default 64) */
    uint32_t buf_count;      /* provided buffers, power of two, <= 32768;
                                0 = no buffer ring (default 512) */
    uint32_t buf_size;       /* bytes per buffer (default 16384) */
    uint16_t buf_group;      /* buffer group id (default 0) */
    bool waker;              /* create the eventfd doorbell (default true) */
    uint32_t spin_us;        /* low-latency mode: before sleeping, ring_wait()
                                polls this long (default 0: never) */
    uint32_t poll_us;        /* adaptive idle poll (ring_poll.h): before
                                sleeping, ring_wait() polls for a window
                                learned from recent idle periods, at most
                                this long (default 0: never; ignored when
                                spin_us is set) */
} ring_config;

/* The defaults above. Any thread. */
ring_config ring_config_default(void);

/* The CQ size ring_new() will ask for (formula above), or 0 when it would
 * exceed the kernel's maximum. Any thread. */
uint32_t ring_cq_budget(const ring_config *cfg);

/*
 * Create a ring on the calling thread, which becomes its owner.
 * Setup flags: SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL | CQSIZE, plus
 * COOP_TASKRUN when the kernel takes it; the ring fd is registered when the
 * kernel allows (saves an fget/fput per io_uring_enter). With
 * cfg->buf_count > 0 a provided-buffer ring is registered (ring_bufs_of());
 * with cfg->waker an eventfd doorbell is armed (ring_waker_of()).
 * cfg == NULL means ring_config_default().
 * Returns 0 and *out, or -errno with err filled (err may be NULL): the
 * message names the cause (see ring_explain_error()).
 */
int ring_new(ring **out, const ring_config *cfg, ring_error *err);

/*
 * Cancel every in-flight request and wait for them (at most a second): after
 * it the kernel no longer reads or writes memory the caller lent (msghdrs,
 * iovecs, send data), so the caller may free it while the ring itself stays
 * usable for new requests.  Their CQEs (-ECANCELED or a result) stay in
 * the queue.  The doorbell's read is cancelled too: ring_waker_wake() no
 * longer wakes this ring (meant for teardown).  Owner thread.
 */
void ring_cancel_all(ring *r);

/*
 * Tear down: cancel every in-flight request synchronously (so the kernel no
 * longer writes to memory the caller lent, such as recv buffers or msghdrs),
 * unregister and unmap the buffer ring, close the ring and the doorbell.
 * Pages of a zero-copy send still held by the network stack stay pinned by
 * the kernel, so freeing them afterwards is safe. NULL is a no-op. Owner
 * thread (from another thread the synchronous cancel is refused and the
 * kernel's own ring teardown cancels instead).
 */
void ring_free(ring *r);

/* The ring's real fd: a MSG_RING target for other rings. Any thread (the
 * value never changes). */
int ring_fd(const ring *r);

typedef struct ring_stats {
    uint32_t sq_entries;
    uint32_t cq_entries;
    uint32_t setup_flags; /* IORING_SETUP_* actually in effect */
    uint32_t features;    /* IORING_FEAT_* reported by the kernel */
    bool ring_fd_registered;
    uint32_t backlog_len; /* SQEs waiting in the backlog now */
    uint32_t backlog_peak;
    uint64_t backlogged;      /* preps that went to the backlog, ever */
    uint64_t inline_submits;  /* submits forced by a full SQ inside a prep */
    uint32_t cq_overflow;     /* CQEs the kernel had to drop (should be 0) */
    bool cq_overflow_pending; /* kernel holds CQEs on its overflow list */
    uint64_t spin_hits;       /* waits a completion ended while polling */
    uint64_t spin_misses;     /* waits that polled to the bound, then slept */
    uint32_t poll_window_us;  /* the adaptive poll's window now */
    uint64_t poll_yields;     /* polls ended early, the thread having been
                                 descheduled (then slept, or took what had come) */
} ring_stats;

/* Snapshot the counters. Owner thread. */
void ring_get_stats(const ring *r, ring_stats *out);

/*
 * What this kernel offers that liburing 2.3 has no helper for, probed once
 * in ring_new() (docs/io-profile.md says which of these the profile says
 * pays). A bit is set only when the kernel accepted the feature on this
 * ring: a feature bit in io_uring_params.features, or a registration that
 * succeeded and was undone at once. None is required; code that uses one
 * checks its bit and keeps the plain path as the fallback.
 */
enum {
    RING_CAP_RECVSEND_BUNDLE = 1u << 0, /* IORING_RECVSEND_BUNDLE (6.10): one
                                           recv CQE for several provided buffers */
    RING_CAP_PBUF_INC = 1u << 1,        /* IOU_PBUF_RING_INC (6.12): a provided
                                           buffer consumed in pieces */
    RING_CAP_FIXED_FILES = 1u << 2,     /* a sparse registered-file table
                                           (direct descriptors for sockets) */
    RING_CAP_NAPI = 1u << 3,            /* IORING_REGISTER_NAPI (6.9) busy poll */
    RING_CAP_CQE_SKIP = 1u << 4,        /* IOSQE_CQE_SKIP_SUCCESS (5.17) */
    RING_CAP_MIN_TIMEOUT = 1u << 5,     /* min_wait_usec in the wait (6.12) */
};

/* The RING_CAP_* bits probed for this ring. Owner thread. */
uint32_t ring_caps(const ring *r);

/* "bundle pbuf-inc fixed-files ..." (the set bits) into buf, always
 * NUL-terminated; returns buf. Any thread. */
const char *ring_caps_describe(uint32_t caps, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Submitting                                                                */

/*
 * Every ring_prep_* returns 0 when the operation is queued: written into the
 * SQ, or, when the SQ is full, into the backlog. Getting an SQE goes:
 *   1. the SQ has room and the backlog is empty: write it there;
 *   2. the SQ is full: io_uring_submit() and retry (not with defer_submit,
 *      for callers that want exactly one io_uring_enter per loop round);
 *   3. still full: copy the prepared SQE into the backlog, a bounded FIFO of
 *      cfg->backlog SQEs. Once the backlog is non-empty, later preps go
 *      behind it, so the kernel sees operations in prep order.
 * ring_submit() and ring_wait() move the backlog into the SQ (submitting as
 * often as it takes) before they wait. A prep that finds SQ and backlog full
 * returns -ENOSPC and queues nothing: the shard is over its budget and
 * should stop taking work (stop accepting, pause reads) until a round passes.
 * The kernel sees nothing until the next submit. Pointers given to a prep
 * (buffers, msghdrs and everything they point to) are borrowed by the kernel
 * until the operation's last CQE; the caller keeps them valid.
 * -EINVAL means bad arguments (nothing queued). Owner thread.
 */

/* A no-op that completes with res 0: posts a CQE (tests, self-kicks). */
int ring_prep_nop(ring *r, uint64_t ud);

/*
 * Multishot accept on listen_fd (accepted sockets get SOCK_CLOEXEC; Linux
 * copies TCP_NODELAY and the buffer sizes from the listener, so set them
 * there once). Each CQE's res is a new fd, owned by the caller from then on.
 * A CQE without RING_CQE_F_MORE ends the multishot: re-arm. A negative res
 * ends it too; do not re-arm at once on -EMFILE/-ENFILE/-ENOMEM (the pending
 * connection makes the new accept fail again immediately: a spin); re-arm
 * after a connection closed or on a timer.
 */
int ring_prep_accept_multishot(ring *r, int listen_fd, uint64_t ud);

/*
 * Multishot recv into provided buffers (IOSQE_BUFFER_SELECT, the ring's
 * buffer group). One CQE per chunk: res > 0 bytes in buffer ring_cqe_bid(),
 * owned by the caller until ring_bufs_recycle(). res == 0 is EOF. A CQE
 * without RING_CQE_F_MORE ends the multishot (it may still carry data):
 * re-arm if the connection wants more. res == -ENOBUFS means the pool ran
 * dry: backpressure. Do not re-arm until buffers were recycled; this prep
 * refuses with -ENOBUFS (queuing nothing) while no buffer is free, so an
 * immediate re-arm cannot spin through the kernel. The usual shape: park the
 * connection on -ENOBUFS, and after a round in which buffers were recycled,
 * re-arm the parked connections (ring_recv_rearm() classifies each CQE).
 * The guard counts buffers named by CQEs not yet reaped as free, so it can
 * let one re-arm through that ends in -ENOBUFS again; never more than one
 * per connection per round, since the next reap corrects the count.
 * -EINVAL if the ring has no buffer ring.
 */
int ring_prep_recv_multishot(ring *r, int fd, uint64_t ud);

/*
 * Send len bytes of buf (len <= UINT32_MAX). MSG_NOSIGNAL is always added to
 * msg_flags (a closed peer is -EPIPE, never SIGPIPE). The CQE's res is bytes
 * sent or -errno; a stream send may be short: send the rest. With MSG_WAITALL
 * io_uring itself retries short sends on stream sockets, so res is len or an
 * error. buf stays borrowed until the CQE.
 */
int ring_prep_send(ring *r, int fd, const void *buf, size_t len, int msg_flags, uint64_t ud);

/* sendmsg with the caller's msghdr (iovecs, no name needed). The msghdr, its
 * iovec array and the bytes are borrowed until the CQE: keep them in the
 * connection object, not on the stack. MSG_NOSIGNAL always added. */
int ring_prep_sendmsg(ring *r, int fd, const struct msghdr *msg, int msg_flags, uint64_t ud);

/*
 * sendmsg that posts no CQE when every byte went (IOSQE_CQE_SKIP_SUCCESS;
 * -EOPNOTSUPP, nothing queued, without RING_CAP_CQE_SKIP: use
 * ring_prep_sendmsg()). Sent with MSG_DONTWAIT | MSG_WAITALL: the kernel
 * issues it in the io_uring_enter that submits it and never waits for
 * socket space, so once it is submitted it is over, one of:
 *   - every byte went: no CQE;
 *   - the socket buffer filled: a CQE with res = the bytes that went
 *     (0 < res < length), or -EAGAIN when none did;
 *   - another error: a CQE with -errno.
 * That CQE is posted before the enter returns. *ticket receives the
 * operation's place in submission order: once ring_sqes_settled() >=
 * *ticket the kernel is done with msg, its iovecs and the bytes, and a
 * failure's CQE is in the CQ (the next ring_reap()s until the CQ is empty
 * hand it over); no CQE by then means success. A socket whose buffer stays
 * full answers -EAGAIN at once every time: after a short or -EAGAIN result,
 * send the rest with ring_prep_sendmsg(), which waits for room.
 */
int ring_prep_sendmsg_nocqe(ring *r, int fd, const struct msghdr *msg, uint64_t ud,
                            uint64_t *ticket);

/* The same for one buffer (IORING_OP_SEND: no msghdr or iovec array for
 * the kernel to import): buf and its len bytes are borrowed until
 * ring_sqes_settled() >= *ticket. -EINVAL for the arguments
 * ring_prep_send() refuses. */
int ring_prep_send_nocqe(ring *r, int fd, const void *buf, size_t len, uint64_t ud,
                         uint64_t *ticket);

/*
 * The tickets settled: every SQE prepared with a ticket <= the value
 * returned has been issued by the kernel, and its CQE, if it posts one, is
 * in the CQ. Read it after ring_wait() or ring_submit() and before reaping.
 * While the kernel holds CQEs on its overflow list the value does not move
 * (they reach the CQ at the next enter). Owner thread.
 */
uint64_t ring_sqes_settled(ring *r);

/*
 * Zero-copy send (IORING_OP_SEND_ZC, with IORING_SEND_ZC_REPORT_USAGE).
 * Two CQEs with the same user_data:
 *   1. the result: res = bytes sent or -errno. If RING_CQE_F_MORE is set a
 *      notification follows; if it is clear, none does and buf is free now.
 *   2. the notification (RING_CQE_F_NOTIF, never F_MORE): the kernel no
 *      longer references buf. Release buf here and only here.
 *      ring_cqe_zc_copied() tells whether the kernel copied anyway (loopback
 *      always does; a NIC without scatter-gather would).
 * A buffer lent to a ZC send must not be one of the ring's provided buffers
 * if recv is to keep going (the pool drains and recv ends in -ENOBUFS).
 * MSG_NOSIGNAL always added.
 */
int ring_prep_send_zc(ring *r, int fd, const void *buf, size_t len, int msg_flags, uint64_t ud);

/* sendmsg, zero-copy: the ring_prep_send_zc() CQE rules, the
 * ring_prep_sendmsg() borrowing rules (the msghdr until the first CQE, the
 * bytes until the notification). */
int ring_prep_sendmsg_zc(ring *r, int fd, const struct msghdr *msg, int msg_flags, uint64_t ud);

/* shutdown(fd, how) (SHUT_RD/SHUT_WR/SHUT_RDWR). CQE res 0 or -errno. */
int ring_prep_shutdown(ring *r, int fd, int how, uint64_t ud);

/*
 * close(fd). Closing does not cancel operations in flight on fd: each holds
 * its own file reference, and a multishot recv stays armed on a closed fd.
 * Cancel first (ring_prep_cancel_fd()), then close; the cancelled ops'
 * final CQEs (-ECANCELED, no F_MORE) still arrive, possibly after the close.
 */
int ring_prep_close(ring *r, int fd, uint64_t ud);

/*
 * Multishot POLL_ADD (IORING_POLL_ADD_MULTI) of fd for poll_mask (POLLIN,
 * POLLOUT...; POLLERR and POLLHUP are always reported). One CQE per
 * wake-up of the file in which a wanted event is ready: res = the ready
 * mask, with RING_CQE_F_MORE while the poll stays armed. Each wake-up, not
 * each state: a descriptor that stays ready without a new wake-up is not
 * reported again (edge-like). A CQE without F_MORE ends it: res is a
 * mask (the kernel ended it, e.g. on CQ overflow: re-arm), -ECANCELED
 * (ring_prep_cancel() of its user_data) or another -errno (-EBADF...: the
 * fd itself is the problem; do not re-arm at once). The poll holds its own
 * reference to the file: closing fd does not end it; cancel it. Nothing is
 * borrowed from the caller.
 */
int ring_prep_poll_multishot(ring *r, int fd, uint32_t poll_mask, uint64_t ud);

/*
 * File operations (IORING_OP_OPENAT2, STATX, READ), for work that would
 * otherwise be a blocking system call on the shard: the kernel runs them
 * inline when it can and in its io-wq workers when they must wait (a
 * lookup or a read that needs the disk). Borrowed until the CQE: path,
 * how, stx, buf. CQE res: the new descriptor, 0, or the bytes read; or
 * -errno.
 */
struct open_how;
struct statx;
int ring_prep_openat2(ring *r, int dfd, const char *path, const struct open_how *how, uint64_t ud);
int ring_prep_statx(ring *r, int dfd, const char *path, int flags, unsigned mask, struct statx *stx,
                    uint64_t ud);
int ring_prep_read(ring *r, int fd, void *buf, unsigned len, uint64_t off, uint64_t ud);

/* Cancel every in-flight op whose user_data is target_ud
 * (IORING_ASYNC_CANCEL_ALL). The cancel's own CQE: res = the number of ops
 * cancelled (0 when none was in flight: with ALL the kernel counts instead
 * of answering -ENOENT), or -errno. Each cancelled op still posts its final
 * CQE, normally -ECANCELED without F_MORE; one that was already completing
 * posts its real result instead. */
int ring_prep_cancel(ring *r, uint64_t target_ud, uint64_t ud);

/* Cancel every in-flight op on fd (IORING_ASYNC_CANCEL_FD | ALL). CQEs as
 * for ring_prep_cancel(). */
int ring_prep_cancel_fd(ring *r, int fd, uint64_t ud);

/*
 * MSG_RING: post a CQE {user_data = target_ud, res = (int32_t)value,
 * flags = 0} on the ring whose ring_fd() is target_ring_fd (another shard;
 * its owner thread wakes if it is waiting). Our own CQE (ud) reports
 * 0 or -errno (-EOVERFLOW: the target's CQ was full, nothing posted).
 * target_ring_fd stays open until our CQE arrives (a shard's ring fd lives
 * for the process). Data only: fd passing is not in liburing 2.3.
 */
int ring_prep_msg(ring *r, int target_ring_fd, uint64_t target_ud, uint32_t value, uint64_t ud);

/* Move the backlog into the SQ and submit everything, without waiting.
 * Returns the number of SQEs the kernel took, or -errno. Owner thread. */
int ring_submit(ring *r);

/* ------------------------------------------------------------------------ */
/* Waiting and reaping                                                       */

#define RING_WAIT_FOREVER UINT64_MAX

/*
 * Publish recycled buffers, move the backlog into the SQ, submit, and wait
 * until at least min_complete CQEs are ready or timeout_ns passed
 * (RING_WAIT_FOREVER: no timeout). min_complete == 0 never blocks, but still
 * runs the ring's deferred task work (with DEFER_TASKRUN completions are
 * posted only when the owner enters the kernel asking for events).
 * Returns the number of CQEs ready to reap (may be below min_complete on a
 * timeout; that is not an error), or -errno: -EINTR (a signal; check your
 * flags and call again). From a thread that is not the owner the kernel
 * refuses: -EEXIST (SINGLE_ISSUER), or, since the ring fd is registered per
 * thread, -EINVAL/-EBADF before it even looks. Time is not read here (the
 * shard owns the clock) except by the low-latency spin: with
 * cfg->spin_us > 0 and min_complete > 0, a wait that finds nothing ready
 * first polls for up to spin_us of CLOCK_MONOTONIC: it watches the ring's
 * IORING_SQ_TASKRUN flag (the ring is then set up with
 * IORING_SETUP_TASKRUN_FLAG) and enters with GETEVENTS and no wait when
 * completions are pending (that enter runs the deferred task work, so a
 * request that arrives is received without a wake-up or context switch),
 * then sleeps for the rest of timeout_ns. The spin burns the core while
 * idle (at most spin_us per wait): opt-in only. With cfg->poll_us > 0
 * instead, the same poll runs for the adaptive window (ring_poll.h: grown
 * while idle periods end within poll_us, 0 once they are longer or the
 * poll finds the thread descheduled); each sleeping wait then reads the
 * clock twice to learn the idle period's length.
 * Owner thread.
 */
int ring_wait(ring *r, unsigned min_complete, uint64_t timeout_ns);

/*
 * Copy up to max ready CQEs into out[], in CQ order, and release their CQ
 * slots in one io_uring_cq_advance(). Handling happens after the copy, so a
 * handler may prep (even submit) freely: new CQEs cannot overwrite what it
 * is reading. The ring's own doorbell CQE comes back as op RING_OP_WAKE with
 * res = the number of ring_waker_wake() calls it coalesces (the doorbell is
 * already re-armed). Buffers named by recv CQEs count as held by the caller
 * from here on. Returns the number copied (0: nothing ready; call
 * ring_wait()). Owner thread.
 */
unsigned ring_reap(ring *r, ring_cqe *out, unsigned max);

/* ------------------------------------------------------------------------ */
/* Provided buffers: see io/ring_bufs.h for get/recycle.                     */

/* The ring's buffer pool, or NULL if cfg->buf_count was 0. Owner thread. */
ring_bufs *ring_bufs_of(ring *r);

/* ------------------------------------------------------------------------ */
/* Waking a ring from a thread that has no ring                             */

/*
 * With SINGLE_ISSUER only the owner may submit to a ring, so another thread
 * cannot post a NOP to wake it. Two paths remain: a thread with a ring of
 * its own sends ring_prep_msg() (shard to shard); a thread without one (an
 * offload worker, a signal thread) writes to the ring's eventfd doorbell,
 * on which the ring keeps a read armed: ring_waker_wake(). Wakes coalesce:
 * N wakes while the read is armed give one RING_OP_WAKE CQE with res = N.
 * After a wake, the owner checks its SPSC queues; the CQE is the doorbell,
 * not the message.
 */
typedef struct ring_waker {
    int fd; /* eventfd; -1 if the ring was built without one */
} ring_waker;

/* The doorbell handle, to hand to other threads. Owner thread; the handle is
 * valid until ring_free(). */
ring_waker ring_waker_of(const ring *r);

/* Ring the doorbell. Returns 0 or -errno (-EBADF: no waker). Any thread;
 * async-signal-safe (one write(2)). */
int ring_waker_wake(ring_waker w);

#endif /* SPINDLE_IO_RING_H */
