/* server.h - spindle_run()'s state (not installed).
 *
 * One server per spindle_run() call, on the main thread's stack.  Written
 * before the shard threads start (pthread_create publishes it) and then
 * read-only for them, except `stop` (atomic: the main thread sets it, every
 * shard polls it).
 */
#ifndef SPINDLE_CORE_SERVER_H
#define SPINDLE_CORE_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "h1_limits.h"
#include "h2_conn.h"
#include "listen_fds.h"
#include "spindle.h"
#include "tls.h"

typedef struct server server;
typedef struct shard shard;

struct server {
    spindle_config cfg;
    h2_limits limits;
    h1_limits h1limits;
    spindle_handler handler;
    spindle_hooks hooks;
    void *app;
    uint32_t nshards;
    shard *shards;
    atomic_bool stop;
    tls_ticket_keys *tickets; /* one for the process, shared by every shard's tls_ctx */
    struct alog_server *alog; /* the access log (accesslog.h), NULL when off */
    struct admin *admin;      /* the admin listener (admin.h), NULL when off */
    /* Deployment (health.h, listen_fds.h, upgrade.h). */
    atomic_bool unready;     /* readiness answers 503: a stop has begun */
    listen_set inherit;      /* listeners to serve instead of binding (may be empty) */
    struct upgrade *upgrade; /* the hand-over socket's state (cfg.upgrade_socket) */
};

/* Bytes allocated (live) in jemalloc arena `arena`, or -1 without jemalloc
 * (ASan builds), its statistics, or an arena (arena < 0).  Any thread. */
int64_t server_arena_allocated(int arena);

#endif
