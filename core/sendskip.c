/* sendskip.c - small sends without a CQE on success, committed when
 * submitted (contract in sendskip.h; why and what it saves in
 * docs/io-profile.md). */
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
    sendskip *s = &sh->skip;
    for (uint32_t i = 0; i < s->ntail; i++)
        free(s->tail[i].buf);
    free(s->tail);
    free(s->spare);
    free(s->stage);
    free(s->ent);
    memset(s, 0, sizeof *s);
}

/* Room for one more entry of *arr (n used of *cap, elem bytes each). */
static bool grow(void **arr, uint32_t n, uint32_t *cap, size_t elem)
{
    if (n < *cap)
        return true;
    uint32_t nc = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, nc * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

/* The staging buffer, with one buffer for a short send's rest and room
 * for a few of them set aside at once: the short path then allocates
 * nothing while one connection at a time fills its socket. */
static bool stage_new(sendskip *s)
{
    s->stage = malloc(SENDSKIP_STAGE);
    s->spare = malloc(SENDSKIP_MAX);
    if (!s->stage || !s->spare || !grow((void **)&s->tail, 0, &s->tail_cap, sizeof *s->tail)) {
        free(s->stage);
        free(s->spare);
        s->stage = s->spare = NULL;
        return false;
    }
    return true;
}

int sendskip_start(conn *c, size_t n, size_t *len)
{
    sendskip *s = &c->sh->skip;
    if (!s->on || c->nocqe_off)
        return 1;
    const struct iovec *iov = c->sb->iov;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += iov[i].iov_len;
        if (total > SENDSKIP_MAX)
            return 1;
    }
    if (total > SENDSKIP_STAGE - s->used || !grow((void **)&s->ent, s->n, &s->cap, sizeof *s->ent))
        return 1;
    if (!s->stage && !stage_new(s))
        return 1;
    uint8_t *p = s->stage + s->used;
    for (size_t i = 0, o = 0; i < n; o += iov[i].iov_len, i++)
        memcpy(p + o, iov[i].iov_base, iov[i].iov_len);
    uint64_t ticket;
    int rc = ring_prep_send_nocqe(c->sh->r, c->fd, p, total,
                                  ring_ud_pack(OP_SEND_NOCQE, c->slot, c->gen), &ticket);
    if (rc == -EOPNOTSUPP)
        return 1;
    if (rc < 0)
        return rc;
    s->ent[s->n++] =
        (sendskip_ent){.c = c, .ticket = ticket, .off = s->used, .len = (uint32_t)total};
    s->used += (uint32_t)total;
    *len = total;
    return 0;
}

/* Hand conn_on_send() the send's outcome: res >= 0 all went, else -errno. */
static void settled(conn *c, int32_t res)
{
    ring_cqe cqe = {.user_data = ring_ud_pack(OP_SEND_NOCQE, c->slot, c->gen), .res = res};
    conn_on_send(c, &cqe);
}

/* The CQE of the plain send of a short send's rest (tail i). */
static void tail_done(sendskip *s, uint32_t i, const ring_cqe *cqe)
{
    conn *c = s->tail[i].c;
    int32_t res = cqe->res;
    if (res >= 0 && (uint32_t)res < s->tail[i].len)
        res = -EIO; /* MSG_WAITALL: short only when something failed */
    if (res >= 0)
        c->nocqe_off = false; /* the socket took everything again */
    if (s->spare)
        free(s->tail[i].buf);
    else
        s->spare = s->tail[i].buf; /* SENDSKIP_MAX bytes, kept for the next */
    s->tail[i] = s->tail[--s->ntail];
    settled(c, res);
}

/* A short send: the bytes past `went` go out plainly from their own copy
 * (the staging space is reused after this round). */
static void send_rest(sendskip *s, conn *c, const sendskip_ent *e, uint32_t went)
{
    uint32_t rest = e->len - went;
    uint8_t *buf = s->spare ? s->spare : malloc(SENDSKIP_MAX);
    if (!buf || !grow((void **)&s->tail, s->ntail, &s->tail_cap, sizeof *s->tail)) {
        if (buf != s->spare)
            free(buf);
        settled(c, -ENOMEM);
        return;
    }
    if (buf == s->spare)
        s->spare = NULL;
    memcpy(buf, s->stage + e->off + went, rest);
    int rc = ring_prep_send(c->sh->r, c->fd, buf, rest, MSG_WAITALL,
                            ring_ud_pack(OP_SEND_NOCQE, c->slot, c->gen));
    if (rc < 0) {
        if (s->spare)
            free(buf);
        else
            s->spare = buf;
        settled(c, rc);
        return;
    }
    s->tail[s->ntail++] = (sendskip_tail){.c = c, .buf = buf, .len = rest};
}

void sendskip_on_cqe(conn *c, const ring_cqe *cqe)
{
    sendskip *s = &c->sh->skip;
    for (uint32_t i = 0; i < s->ntail; i++)
        if (s->tail[i].c == c) {
            tail_done(s, i, cqe);
            return;
        }
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
    int32_t res = cqe->res == -EAGAIN ? 0 : cqe->res;
    if (res < 0 || (uint32_t)res >= s->ent[i].len || c->state == C_CLOSING)
        settled(c, res);
    else
        send_rest(s, c, &s->ent[i], (uint32_t)res);
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

void sendskip_settle(shard *sh, uint64_t upto)
{
    sendskip *s = &sh->skip;
    uint32_t k = 0;
    while (k < s->n && s->ent[k].ticket <= upto)
        k++;
    /* conn_on_send() starts no send (the flush step does), so the entries
     * below k stay where they are while it runs. */
    for (uint32_t i = 0; i < k; i++) {
        conn *c = s->ent[i].c;
        if (!c)
            continue;
        s->ent[i].c = NULL;
        settled(c, (int32_t)s->ent[i].len);
    }
    s->n -= k;
    memmove(s->ent, s->ent + k, s->n * sizeof *s->ent);
    if (s->n == 0)
        s->used = 0; /* every staged byte was sent, or copied to a tail */
}

bool sendskip_must_settle(const shard *sh)
{
    const sendskip *s = &sh->skip;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->ent[i].c && conn_wants_flush(s->ent[i].c))
            return true;
    return false;
}
