/* conncap.c - max-conns: derived from RLIMIT_NOFILE, stop and resume
 * accepting at the cap, a rate-limited warning. */
#include "conncap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "server.h"
#include "shard.h"

/* Descriptors kept aside from connections: stdio, log files, and per shard
 * its ring, listeners, doorbells and offload eventfds. */
#define RESERVE_FIXED     64u
#define RESERVE_PER_SHARD 16u

void conncap_init(server *srv)
{
    struct rlimit rl;
    uint64_t soft = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rlim_t was = rl.rlim_cur;
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
                log_msg(LOG_DEBUG, -1, "descriptor limit raised from %llu to %llu",
                        (unsigned long long)was, (unsigned long long)rl.rlim_max);
            else
                rl.rlim_cur = was;
        }
        soft = rl.rlim_cur == RLIM_INFINITY ? UINT32_MAX : (uint64_t)rl.rlim_cur;
    }
    if (srv->cfg.max_conns)
        return;
    uint64_t reserve = RESERVE_FIXED + (uint64_t)RESERVE_PER_SHARD * srv->nshards;
    uint64_t per = soft > reserve ? (soft - reserve) / srv->nshards : 0;
    if (per > CONNCAP_AUTO_MAX)
        per = CONNCAP_AUTO_MAX;
    if (per < 16)
        per = 16;
    srv->cfg.max_conns = (uint32_t)per;
    log_msg(LOG_DEBUG, -1, "max-conns %u per shard (descriptor limit %llu, %u shards)",
            srv->cfg.max_conns, (unsigned long long)soft, srv->nshards);
}

static void stop_listener(shard *sh, bool armed, uint8_t op)
{
    if (armed)
        ring_prep_cancel(sh->r, ring_ud_pack(op, 0, 0), ring_ud_pack(OP_CANCEL, 0, 0));
}

void conncap_reached(shard *sh)
{
    shard_view *v = &sh->view;
    stat_add(&sh->stats.cap_reached, 1);
    v->cap_since_warn++;
    if (!v->cap_held) {
        v->cap_held = true;
        stop_listener(sh, sh->lfd >= 0 && sh->accept_armed, OP_ACCEPT);
        stop_listener(sh, sh->tls_lfd >= 0 && sh->tls_accept_armed, OP_ACCEPT_TLS);
    }
    if (v->cap_warn_ms && sh->now < v->cap_warn_ms + CONNCAP_WARN_MS)
        return;
    char again[64] = "";
    if (v->cap_warn_ms)
        snprintf(again, sizeof again, "; %llu time(s) since the last warning",
                 (unsigned long long)v->cap_since_warn);
    log_msg(LOG_WARN, (int)sh->idx,
            "max-conns reached (%u connections on this shard%s): new connections wait in the "
            "kernel's accept queue until one closes; raise max-conns (--set max-conns=N) if "
            "this is the normal load",
            sh->srv->cfg.max_conns, again);
    v->cap_warn_ms = sh->now ? sh->now : 1;
    v->cap_since_warn = 0;
}

void conncap_hold(shard *sh, int fd, bool tls)
{
    shard_view *v = &sh->view;
    if (v->held_off && v->held_off == v->nheld)
        v->held_off = v->nheld = 0;
    if (v->nheld == v->held_cap) {
        /* Multishot accept takes the whole listen queue at once: what it
         * took before the cancel landed waits here, one fd each. */
        uint32_t cap = v->held_cap ? v->held_cap * 2 : 64;
        uint32_t *n = cap <= CONNCAP_HOLD_MAX ? realloc(v->held, cap * sizeof *n) : NULL;
        if (!n) {
            close(fd);
            return;
        }
        v->held = n;
        v->held_cap = cap;
    }
    v->held[v->nheld++] = (uint32_t)fd << 1 | (tls ? 1u : 0u);
}

bool conncap_resume(shard *sh)
{
    shard_view *v = &sh->view;
    while (v->held_off < v->nheld && sh->nfree) {
        uint32_t h = v->held[v->held_off++];
        int fd = (int)(h >> 1);
        bool tls = h & 1u;
        conn *c = conn_new(sh, fd, tls);
        if (!c) {
            close(fd);
            continue;
        }
        stats_conn_accepted(sh, c, tls);
    }
    if (v->held_off == v->nheld)
        v->held_off = v->nheld = 0;
    if (sh->nfree == 0) {
        if (!v->cap_held)
            conncap_reached(sh);
        return false;
    }
    v->cap_held = false;
    return true;
}

void conncap_shard_finish(shard *sh)
{
    shard_view *v = &sh->view;
    while (v->held_off < v->nheld)
        close((int)(v->held[v->held_off++] >> 1));
    free(v->held);
    v->held = NULL;
    v->nheld = v->held_cap = v->held_off = 0;
}
