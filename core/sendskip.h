/* sendskip.h - small sends that post no CQE when they succeed (not
 * installed; docs/io-profile.md has the counts).
 *
 * A connection's send of at most SENDSKIP_MAX bytes (not zero-copy) goes out
 * with ring_prep_sendmsg_nocqe(): MSG_DONTWAIT | MSG_WAITALL and
 * IOSQE_CQE_SKIP_SUCCESS.  The kernel issues it in the io_uring_enter that
 * submits it and posts a CQE only when it fails or is short, so a request
 * answered in one send costs one CQE (its recv) instead of two.
 *
 * The connection still has exactly one send in flight (c->sending, c->ops)
 * until the shard settles it:
 *   - a CQE (op OP_SEND_NOCQE) means it failed or was short: res is the
 *     bytes that went (-EAGAIN: none), handed to conn_on_send() as a short
 *     send; the connection then sends with plain sendmsg, which waits for
 *     socket room, until one of those sends everything again;
 *   - no CQE by the time ring_sqes_settled() passes its ticket means every
 *     byte went: sendskip_settle() hands conn_on_send() the full length.
 * Settling is what lets the connection go on (the engine commits, release
 * callbacks and on_writable run, held input is fed, a finished connection
 * closes), so while any send is unsettled the shard's wait does not sleep
 * (shard.c, wait_for_work()): it submits and settles in the same round.
 * Without RING_CAP_CQE_SKIP (kernels before 5.17) every send is plain.
 * Shard thread only.
 */
#ifndef SPINDLE_CORE_SENDSKIP_H
#define SPINDLE_CORE_SENDSKIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#define SENDSKIP_MAX 16384u /* bytes: larger sends are likely to be short */

typedef struct shard shard;
typedef struct conn conn;

/* One send without a CQE, not yet settled (c NULL: settled by its CQE). */
typedef struct sendskip_ent {
    conn *c;
    uint64_t ticket; /* ring_prep_sendmsg_nocqe()'s */
    uint32_t len;    /* the bytes it carries */
} sendskip_ent;

/* The shard's unsettled sends, in ticket order. */
typedef struct sendskip {
    sendskip_ent *ent;
    uint32_t n, cap;
    bool on; /* the ring has RING_CAP_CQE_SKIP */
} sendskip;

/* At shard setup, after the ring: on when the kernel offers CQE skip. */
void sendskip_init(shard *sh);
/* Teardown: forget the unsettled sends (their connections are gone). */
void sendskip_free(shard *sh);

/* Queue c->sb->msg (iov[0..n)) as a send without CQE.  0: queued (the
 * caller counts it in flight, as for a plain send); 1: not one for it (too
 * large, CQE skip off for c or the ring, no memory): send it plainly;
 * < 0: the ring's -errno. */
int sendskip_start(conn *c, size_t n);

/* The CQE of a send without CQE (op OP_SEND_NOCQE): it failed or was
 * short.  Settles it through conn_on_send(). */
void sendskip_on_cqe(conn *c, const ring_cqe *cqe);

/* Before conn_on_send() of a plain send's CQE: CQE skip comes back on for c
 * once a plain send took every byte. */
void sendskip_on_plain(conn *c, const ring_cqe *cqe);

/* After the CQ was reaped empty: every send whose ticket is <= settled
 * (ring_sqes_settled() read after the wait, before reaping) and that
 * posted no CQE took all its bytes; conn_on_send() hears so. */
void sendskip_settle(shard *sh, uint64_t settled);

#endif
