/* watch.c - spindle_watch: readiness of any descriptor on the shard's ring.
 *
 * One multishot POLL_ADD per armed watch, user_data (OP_WATCH, slot, gen)
 * from the shard's watch table (core/slot_table.h).  The ring never holds a
 * pointer to a watch: a CQE finds its watch through the table, and a CQE
 * for a closed watch (its slot released, generation moved on) is ignored.
 *
 * States: `armed` while a multishot poll is in flight (until a CQE without
 * F_MORE), `cancelling` once its cancel was queued (interest changed, or
 * set to 0).  The CQE that ends a poll re-arms it with the current events
 * when they are not 0: after a cancel for a change of interest, and when
 * the kernel ended it on its own (a mask without F_MORE).  An error result
 * (not -ECANCELED) is reported once as SPINDLE_WATCH_ERR and the watch
 * rests (`failed`) until spindle_watch_set(): re-arming a poll the kernel
 * refuses would spin.
 *
 * Level semantics.  Multishot poll reports wake-ups, not states: a socket
 * the callback did not drain stays readable and no new wake-up comes.  So
 * every watch reported during an iteration is put on the probe list, and
 * before the shard waits (async_before_wait) one poll(2) with a zero
 * timeout checks them all; a descriptor still ready for its events is
 * reported again (and probed again), and the shard does not block while
 * that goes on.  An application that keeps a watch on a descriptor it does
 * not drain is called every iteration: what level-triggered means.
 *
 * Freeing.  spindle_watch_close() marks the watch closed, queues the
 * cancel of an armed poll, releases its slot (so every CQE still to come
 * is stale) and frees it, unless it is inside its own callback: then the
 * caller of the callback frees it when the callback returns.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "async.h"
#include "log.h"
#include "shard.h"

_Static_assert(SPINDLE_WATCH_IN == POLLIN && SPINDLE_WATCH_OUT == POLLOUT &&
                   SPINDLE_WATCH_ERR == POLLERR && SPINDLE_WATCH_HUP == POLLHUP,
               "SPINDLE_WATCH_* are poll(2)'s bits");

#define WATCH_EVENTS ((uint32_t)(SPINDLE_WATCH_IN | SPINDLE_WATCH_OUT))
#define WATCH_ALWAYS ((uint32_t)(SPINDLE_WATCH_ERR | SPINDLE_WATCH_HUP))

struct spindle_watch {
    spindle_shard *as;
    int fd;
    uint32_t events; /* wanted now */
    uint32_t slot, gen;
    spindle_watch_fn fn;
    void *ctx;
    bool armed;      /* a multishot poll is in flight */
    bool cancelling; /* its cancel is queued */
    bool failed;     /* the ring refused the fd: resting until set */
    bool closed;
    bool in_cb;   /* its callback is running */
    bool probing; /* on the probe list */
};

typedef struct watch_probe {
    uint32_t slot, gen;
} watch_probe;

static uint64_t ud_of(const spindle_watch *w)
{
    return ring_ud_pack(OP_WATCH, w->slot, w->gen);
}

static int arm(spindle_watch *w)
{
    if (w->armed || w->events == 0 || w->closed || w->failed)
        return 0;
    int rc = ring_prep_poll_multishot(w->as->sh->r, w->fd, w->events, ud_of(w));
    if (rc < 0)
        return SPINDLE_EURING;
    w->armed = true;
    w->cancelling = false;
    return 0;
}

static void cancel(spindle_watch *w)
{
    if (!w->armed || w->cancelling)
        return;
    /* A cancel the SQ cannot take (-ENOSPC) leaves the poll armed: events
     * it reports are filtered by the current interest, and a closed
     * watch's are stale. */
    if (ring_prep_cancel(w->as->sh->r, ud_of(w), ring_ud_pack(OP_CANCEL, 0, 0)) == 0)
        w->cancelling = true;
}

static void probe_add(spindle_watch *w)
{
    spindle_shard *as = w->as;
    if (w->probing)
        return;
    if (as->nprobe == as->probe_cap) {
        uint32_t cap = as->probe_cap ? as->probe_cap * 2 : 16;
        watch_probe *np = realloc(as->probe, cap * sizeof *np);
        struct pollfd *nf = realloc(as->pfds, cap * sizeof *nf);
        if (np)
            as->probe = np;
        if (nf)
            as->pfds = nf;
        if (!np || !nf)
            return; /* no level re-check for this one: the next wake-up reports it */
        as->probe_cap = cap;
    }
    as->probe[as->nprobe++] = (watch_probe){w->slot, w->gen};
    w->probing = true;
}

/* Call w's callback with revents (filtered by its interest); frees w if it
 * closed itself meanwhile.  Returns false when w is gone. */
static bool deliver(spindle_watch *w, uint32_t revents)
{
    uint32_t r = revents & (w->events | WATCH_ALWAYS);
    if (!r || w->closed)
        return true;
    w->in_cb = true;
    w->fn(w, w->fd, r, w->ctx);
    w->in_cb = false;
    if (w->closed) {
        free(w);
        return false;
    }
    if (w->events && !w->failed)
        probe_add(w);
    return true;
}

int spindle_watch_fd(spindle_shard *as, int fd, uint32_t events, spindle_watch_fn fn, void *ctx,
                     spindle_watch **out)
{
    if (fd < 0 || !fn || !out || (events & ~WATCH_EVENTS))
        return SPINDLE_EINVAL;
    if (!as || as != async_current() || as->finished)
        return SPINDLE_ESTATE;
    spindle_watch *w = calloc(1, sizeof *w);
    if (!w)
        return SPINDLE_ENOMEM;
    if (!slot_table_take(&as->watches, w, &w->slot, &w->gen)) {
        free(w);
        return SPINDLE_ENOMEM;
    }
    w->as = as;
    w->fd = fd;
    w->events = events;
    w->fn = fn;
    w->ctx = ctx;
    int rc = arm(w);
    if (rc != 0) {
        slot_table_release(&as->watches, w->slot);
        free(w);
        return rc;
    }
    as->nwatches++;
    *out = w;
    return 0;
}

int spindle_watch_set(spindle_watch *w, uint32_t events)
{
    if (!w || w->closed || (events & ~WATCH_EVENTS))
        return SPINDLE_EINVAL;
    bool was_failed = w->failed;
    w->failed = false;
    if (w->armed) {
        /* Re-armed with the new events when the cancelled poll ends. */
        if (events != w->events)
            cancel(w);
        w->events = events;
        return 0;
    }
    w->events = events;
    int rc = arm(w);
    if (rc != 0)
        w->failed = was_failed;
    return rc;
}

void spindle_watch_close(spindle_watch *w)
{
    if (!w || w->closed)
        return;
    spindle_shard *as = w->as;
    cancel(w);
    w->closed = true;
    slot_table_release(&as->watches, w->slot); /* its CQEs and probe entries go stale */
    as->nwatches--;
    if (!w->in_cb)
        free(w);
}

void async_on_cqe(shard *sh, const ring_cqe *cqe)
{
    spindle_shard *as = sh->api;
    if (!as)
        return;
    spindle_watch *w =
        slot_table_get(&as->watches, ring_ud_slot(cqe->user_data), ring_ud_gen(cqe->user_data));
    if (!w)
        return; /* closed: a stale completion */
    bool more = ring_cqe_more(cqe);
    if (!more)
        w->armed = w->cancelling = false;
    if (cqe->res >= 0) {
        if (!deliver(w, (uint32_t)cqe->res))
            return;
    } else if (cqe->res != -ECANCELED && !more) {
        log_msg(LOG_DEBUG, (int)sh->idx, "watch on fd %d: %s", w->fd, strerror(-cqe->res));
        w->failed = true;
        if (!deliver(w, SPINDLE_WATCH_ERR))
            return;
    }
    if (!w->armed && arm(w) != 0)
        probe_add(w); /* the ring's queues are full: the probe retries */
}

void watch_probe_run(spindle_shard *as, bool *again)
{
    uint32_t n = as->nprobe, m = 0;
    if (!n)
        return;
    /* Compact to the live watches still interested, then poll them all. */
    for (uint32_t i = 0; i < n; i++) {
        spindle_watch *w = slot_table_get(&as->watches, as->probe[i].slot, as->probe[i].gen);
        if (!w)
            continue;
        w->probing = false;
        if (!w->events || w->failed)
            continue;
        (void)arm(w); /* one that could not be re-armed (ring full): retry */
        as->probe[m] = as->probe[i];
        as->pfds[m] = (struct pollfd){.fd = w->fd, .events = (short)w->events};
        m++;
    }
    /* Entries [0, m) are this round's; callbacks append the next round's
     * after them (the arrays may move: index, never hold pointers). */
    as->nprobe = m;
    if (m && poll(as->pfds, m, 0) > 0) {
        for (uint32_t i = 0; i < m; i++) {
            short re = as->pfds[i].revents;
            if (!re)
                continue;
            spindle_watch *w = slot_table_get(&as->watches, as->probe[i].slot, as->probe[i].gen);
            if (!w)
                continue; /* closed by an earlier callback of this round */
            *again = true;
            deliver(w, (uint32_t)(uint16_t)re);
        }
    }
    for (uint32_t i = 0; i < m; i++) {
        /* Still not armed (the ring stayed full): keep it for the next round. */
        spindle_watch *w = slot_table_get(&as->watches, as->probe[i].slot, as->probe[i].gen);
        if (w && !w->armed && w->events && !w->failed)
            probe_add(w);
    }
    uint32_t next = as->nprobe - m;
    memmove(as->probe, as->probe + m, next * sizeof *as->probe);
    as->nprobe = next;
}

void watch_close_all(spindle_shard *as)
{
    shard *sh = as->sh;
    if (as->nwatches)
        log_msg(LOG_WARN, (int)sh->idx,
                "%u watch(es) still open at shard stop: closed (close them in on_shard_stop)",
                as->nwatches);
    for (uint32_t i = 0; i < as->watches.cap; i++) {
        spindle_watch *w = as->watches.e[i].p;
        if (w)
            spindle_watch_close(w);
    }
    as->nprobe = 0;
}
