/* sendskip.h - small sends that post no CQE when they succeed, committed
 * when they are submitted (not installed; docs/io-profile.md has the
 * counts).
 *
 * A connection's send of at most SENDSKIP_MAX bytes (not zero-copy) is
 * copied into the shard's staging buffer and goes out from there with
 * ring_prep_send_nocqe(): one buffer, MSG_DONTWAIT | MSG_WAITALL and
 * IOSQE_CQE_SKIP_SUCCESS.  The kernel issues it in the io_uring_enter that
 * submits it and posts a CQE only when it fails or is short, so a request
 * answered in one send costs one CQE (its recv) instead of two.
 *
 * Committed when submitted.  The bytes are copies, so the engine commits
 * them at once (conn.c: release callbacks, on_writable, held input and
 * stream completion run before the shard waits), as if the send had
 * completed.  What is left for settling is the connection's one send in
 * flight (c->sending, c->ops) and the staging space.  So the wait that
 * submits the send may sleep: it stops at once only while some connection
 * with an unsettled send has more to do (sendskip_must_settle(): output
 * waiting behind the send, or closing).  At one stream in flight that is
 * one io_uring_enter per request: submit the response, sleep until the
 * next request.
 *
 * Settling, after the next wait:
 *   - a CQE (op OP_SEND_NOCQE) means it failed or was short: the bytes
 *     that did not go (res of them went; -EAGAIN: none) are copied out of
 *     the staging buffer and sent with a plain send that waits for socket
 *     room (its CQE, the same op, ends the send); the connection then sends
 *     plainly (c->nocqe_off) until one of its sends takes everything again;
 *     another error is handed to conn_on_send();
 *   - no CQE by the time ring_sqes_settled() passes its ticket means every
 *     byte went: sendskip_settle() tells conn_on_send().
 * Without RING_CAP_CQE_SKIP (kernels before 5.17), or send-nocqe=0, every
 * send is plain.  Shard thread only.
 */
#ifndef SPINDLE_CORE_SENDSKIP_H
#define SPINDLE_CORE_SENDSKIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#define SENDSKIP_MAX   16384u  /* bytes: larger sends are likely to be short */
#define SENDSKIP_STAGE 262144u /* staging bytes per shard; full: plain sends */

typedef struct shard shard;
typedef struct conn conn;

/* One send without a CQE, not yet settled (c NULL: settled by its CQE). */
typedef struct sendskip_ent {
    conn *c;
    uint64_t ticket; /* ring_prep_send_nocqe()'s */
    uint32_t off;    /* its bytes: stage[off, off + len) */
    uint32_t len;
} sendskip_ent;

/* The rest of a short send, going out plainly from its own copy. */
typedef struct sendskip_tail {
    conn *c;
    uint8_t *buf;
    uint32_t len;
} sendskip_tail;

/* The shard's unsettled sends, in ticket order, and their bytes. */
typedef struct sendskip {
    sendskip_ent *ent;
    uint32_t n, cap;
    uint8_t *stage; /* SENDSKIP_STAGE bytes, allocated at the first send */
    uint32_t used;  /* bump allocation; back to 0 when n is */
    uint8_t *spare; /* SENDSKIP_MAX bytes for the next rest (NULL: in use) */
    sendskip_tail *tail;
    uint32_t ntail, tail_cap;
    bool on; /* send-nocqe and the ring has RING_CAP_CQE_SKIP */
} sendskip;

/* At shard setup, after the ring: on when configured and the kernel offers
 * CQE skip. */
void sendskip_init(shard *sh);
/* Teardown: forget the unsettled sends (their connections are gone). */
void sendskip_free(shard *sh);

/* Copy c->sb->iov[0..n) into the staging buffer and queue it as a send
 * without CQE.  0: queued, *len = its bytes: the caller counts it in
 * flight, as for a plain send, and commits the bytes now (they are
 * copied); 1: not one for it (too large, CQE skip off for c or the ring,
 * staging full, no memory): send it plainly; < 0: the ring's -errno. */
int sendskip_start(conn *c, size_t n, size_t *len);

/* The CQE of a send without CQE (op OP_SEND_NOCQE): it failed or was
 * short; or the CQE of the plain send of such a send's rest.  Sends the
 * rest, or settles it through conn_on_send(). */
void sendskip_on_cqe(conn *c, const ring_cqe *cqe);

/* Before conn_on_send() of a plain send's CQE: CQE skip comes back on for c
 * once a plain send took every byte. */
void sendskip_on_plain(conn *c, const ring_cqe *cqe);

/* After the CQ was reaped empty: every send whose ticket is <= settled
 * (ring_sqes_settled() read after the wait, before reaping) and that
 * posted no CQE took all its bytes; conn_on_send() hears so. */
void sendskip_settle(shard *sh, uint64_t settled);

/* Before a wait: true when a connection with an unsettled send has more
 * to do once it settles (conn_wants_flush()), so the wait must not sleep. */
bool sendskip_must_settle(const shard *sh);

#endif
