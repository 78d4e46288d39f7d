/* upstream_dns.c - origins named by host name.
 *
 * getaddrinfo(3) blocks (files, then DNS with its retries), so it never runs
 * on the shard: each lookup runs on a short-lived detached thread, and its
 * answer is posted back to the upstream's shard (spindle_post), where the
 * pool takes it.  Lookups are rare: one when a connection must open and the
 * upstream has no address yet, or its last answer is older than
 * cfg.dns_refresh_ms, or the last connect failed (re-resolution on
 * reconnect, as production proxies do: an origin that moved is found
 * again).  A stale answer is still used to connect while the refresh runs;
 * with no answer at all the calls wait, and fail (SPINDLE_EUPSTREAM) if the
 * lookup fails or takes longer than cfg.connect_timeout_ms.
 *
 * Lifetime: the job belongs to its thread until posted, then to the
 * shard's message.  spindle_upstream_free() only clears job->u (on the
 * shard's thread, as the message runs), so the message frees a job whose
 * upstream is gone without touching it.  A job whose post finds the shard
 * stopped (the upstream was freed in on_shard_stop at the latest) is freed
 * by its thread.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "shard.h"
#include "upstream.h"

struct up_dns_job {
    spindle_upstream *u; /* NULL once the upstream gave it up (shard thread) */
    uint32_t shard;
    int rc; /* 0 or an EAI_* code */
    uint32_t naddrs;
    up_addr addrs[UP_MAX_ADDRS];
    char port[8];
    char host[]; /* NUL-terminated */
};

static void dns_answer(spindle_shard *as, void *arg);

static void *dns_main(void *arg)
{
    up_dns_job *j = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    j->rc = getaddrinfo(j->host, j->port, &hints, &res);
    for (struct addrinfo *a = res; a && j->naddrs < UP_MAX_ADDRS; a = a->ai_next) {
        if (a->ai_addrlen > sizeof j->addrs[0].ss)
            continue;
        memcpy(&j->addrs[j->naddrs].ss, a->ai_addr, a->ai_addrlen);
        j->addrs[j->naddrs++].len = (socklen_t)a->ai_addrlen;
    }
    if (res)
        freeaddrinfo(res);
    if (j->rc == 0 && !j->naddrs)
        j->rc = EAI_NONAME;
    /* A full queue is retried; a stopped shard has freed the upstream. */
    for (;;) {
        int rc = spindle_post(j->shard, dns_answer, j);
        if (rc == 0)
            return NULL;
        if (rc != SPINDLE_EAGAIN)
            break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    free(j);
    return NULL;
}

int up_dns_start(spindle_upstream *u)
{
    if (u->dns_job)
        return 0;
    size_t hl = strlen(u->cfg.host) + 1;
    up_dns_job *j = calloc(1, sizeof *j + hl);
    if (!j)
        return SPINDLE_ENOMEM;
    j->u = u;
    j->shard = spindle_shard_index(u->as);
    memcpy(j->host, u->cfg.host, hl);
    snprintf(j->port, sizeof j->port, "%u", u->cfg.port);
    pthread_attr_t at;
    pthread_t t;
    int rc = pthread_attr_init(&at);
    if (rc == 0) {
        (void)pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &at, dns_main, j);
        pthread_attr_destroy(&at);
    }
    if (rc != 0) {
        free(j);
        log_msg(LOG_WARN, (int)u->sh->idx, "upstream %s: cannot start a lookup thread: %s",
                u->cfg.authority, strerror(rc));
        return SPINDLE_ESYS;
    }
    u->dns_job = j;
    u->dns_started_ms = up_now_ms(u);
    return 0;
}

void up_dns_abandon(spindle_upstream *u)
{
    if (u->dns_job)
        u->dns_job->u = NULL; /* its message frees it */
    u->dns_job = NULL;
}

bool up_dns_wanted(const spindle_upstream *u)
{
    if (!u->named)
        return false;
    if (!u->naddrs || u->dns_stale)
        return true;
    /* An answer no connection used yet is fresh whatever its age. */
    return !u->dns_fresh && up_now_ms(u) - u->resolved_ms >= u->cfg.dns_refresh_ms;
}

void up_dns_tick(spindle_upstream *u, uint64_t now_ms)
{
    if (!u->dns_job || u->naddrs || !u->cfg.connect_timeout_ms ||
        now_ms - u->dns_started_ms < u->cfg.connect_timeout_ms)
        return;
    log_msg(LOG_WARN, (int)u->sh->idx, "upstream %s: host name lookup timed out", u->cfg.authority);
    up_dns_abandon(u);
    u->resolve_failures++;
    up_pending_fail(u, SPINDLE_EUPSTREAM);
}

static void dns_answer(spindle_shard *as, void *arg)
{
    (void)as;
    up_dns_job *j = arg;
    spindle_upstream *u = j->u;
    if (!u) {
        free(j);
        return;
    }
    u->dns_job = NULL;
    u->resolves++;
    if (j->rc == 0) {
        memcpy(u->addrs, j->addrs, j->naddrs * sizeof j->addrs[0]);
        u->naddrs = j->naddrs;
        u->addr_next = 0;
        u->resolved_ms = up_now_ms(u);
        u->dns_stale = false;
        u->dns_fresh = true;
    } else {
        u->resolve_failures++;
        log_msg(LOG_WARN, (int)u->sh->idx, "upstream %s: cannot resolve %s: %s", u->cfg.authority,
                j->host, gai_strerror(j->rc));
        if (!u->naddrs) /* nothing to connect to: the waiting calls fail */
            up_pending_fail(u, SPINDLE_EUPSTREAM);
    }
    free(j);
    up_pool_service(u);
}
