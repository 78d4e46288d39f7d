/* sendskip.c - small sends without a CQE on success (contract in
 * sendskip.h; why and what it saves in docs/io-profile.md). */
#include "sendskip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "server.h"
#include "shard.h"

void sendskip_init(shard *sh)
{
    sh->skip.on = sh->srv->cfg.send_nocqe && (ring_caps(sh->r) & RING_CAP_CQE_SKIP) != 0;
}

void sendskip_free(shard *sh)
{
    free(sh->skip.ent);
    memset(&sh->skip, 0, sizeof sh->skip);
}

static bool reserve(sendskip *s)
{
    if (s->n < s->cap)
        return true;
    uint32_t cap = s->cap ? s->cap * 2 : 64;
    sendskip_ent *e = realloc(s->ent, cap * sizeof *e);
    if (!e)
        return false;
    s->ent = e;
    s->cap = cap;
    return true;
}

int sendskip_start(conn *c, size_t n)
{
    sendskip *s = &c->sh->skip;
    if (!s->on || c->nocqe_off)
        return 1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += c->sb->iov[i].iov_len;
        if (total > SENDSKIP_MAX)
            return 1;
    }
    if (!reserve(s))
        return 1;
    uint64_t ticket;
    int rc = ring_prep_sendmsg_nocqe(c->sh->r, c->fd, &c->sb->msg,
                                     ring_ud_pack(OP_SEND_NOCQE, c->slot, c->gen), &ticket);
    if (rc == -EOPNOTSUPP)
        return 1;
    if (rc < 0)
        return rc;
    s->ent[s->n++] = (sendskip_ent){.c = c, .ticket = ticket, .len = (uint32_t)total};
    return 0;
}

void sendskip_on_cqe(conn *c, const ring_cqe *cqe)
{
    sendskip *s = &c->sh->skip;
    uint32_t i = 0;
    while (i < s->n && s->ent[i].c != c)
        i++;
    if (i == s->n) {
        /* Settled as sent in full already: cannot happen while the
         * kernel posts a failure's CQE in the enter that issued it. */
        log_msg(LOG_ERROR, (int)c->sh->idx, "send: a CQE (%d) after the send was settled",
                cqe->res);
        conn_close(c);
        return;
    }
    s->ent[i].c = NULL;  /* settled here; sendskip_settle() drops it */
    c->nocqe_off = true; /* the socket is full: plain sends wait for room */
    ring_cqe r = *cqe;
    if (r.res == -EAGAIN)
        r.res = 0; /* nothing went: a short send of 0, sent again plainly */
    conn_on_send(c, &r);
}

void sendskip_on_plain(conn *c, const ring_cqe *cqe)
{
    if (c->zc || !c->sb || cqe->res < 0)
        return;
    size_t total = 0;
    for (size_t i = 0; i < c->sb->msg.msg_iovlen; i++)
        total += c->sb->iov[i].iov_len;
    if ((size_t)cqe->res >= total)
        c->nocqe_off = false;
}

void sendskip_settle(shard *sh, uint64_t settled)
{
    sendskip *s = &sh->skip;
    uint32_t k = 0;
    while (k < s->n && s->ent[k].ticket <= settled)
        k++;
    /* conn_on_send() starts no send (the flush step does), so the entries
     * below k stay where they are while it runs. */
    for (uint32_t i = 0; i < k; i++) {
        conn *c = s->ent[i].c;
        if (!c)
            continue;
        s->ent[i].c = NULL;
        ring_cqe cqe = {.user_data = ring_ud_pack(OP_SEND_NOCQE, c->slot, c->gen),
                        .res = (int32_t)s->ent[i].len,
                        .flags = 0};
        conn_on_send(c, &cqe);
    }
    s->n -= k;
    memmove(s->ent, s->ent + k, s->n * sizeof *s->ent);
}
