/* server.c - spindle_run(): configuration, shard threads, signals, drain.
 *
 * The main thread blocks SIGINT/SIGTERM before starting shards (so they
 * inherit the mask and never take a signal) and waits for them with
 * sigtimedwait().  A signal or spindle_stop() sets the stop flag and rings
 * each shard's doorbell; shards then drain on their own and exit.
 *
 * TLS: the certificate and key are checked here, once, before any shard
 * starts (a bad file is one clear message and a non-zero return, not one
 * per shard); then each shard builds its own tls_ctx, all sharing the
 * process's session ticket keys, which are freed after the shards exit.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "admin.h"
#include "config.h"
#include "conncap.h"
#include "health.h"
#include "log.h"
#include "server.h"
#include "shard.h"
#include "upgrade.h"

static atomic_bool stop_requested;

/* The signals spindle_run() acts on are blocked in its threads and taken
 * by the main thread with sigtimedwait().  A thread the application
 * started before spindle_run() may not block them; a process signal can
 * then be delivered to that thread, where the default action would end
 * the process (SIGTERM, SIGUSR1).  These handlers catch such a delivery;
 * the main thread picks it up within its 100 ms tick. */
static atomic_int caught_stop;   /* SIGINT or SIGTERM, 0 when none */
static atomic_bool caught_stats; /* SIGUSR1 */
static atomic_bool caught_hup;   /* SIGHUP (taken only with an access log file) */

static void catch_signal(int sig)
{
    if (sig == SIGUSR1)
        atomic_store(&caught_stats, true);
    else if (sig == SIGHUP)
        atomic_store(&caught_hup, true);
    else
        atomic_store(&caught_stop, sig);
}

/* A signal caught by catch_signal() (SIGUSR1 first), or 0. */
static int take_caught(void)
{
    if (atomic_exchange(&caught_stats, false))
        return SIGUSR1;
    if (atomic_exchange(&caught_hup, false))
        return SIGHUP;
    return atomic_exchange(&caught_stop, 0);
}

void spindle_stop(void)
{
    atomic_store(&stop_requested, true);
}

/* jemalloc, when linked, gives each shard an arena of its own; under ASan
 * it is not linked and the weak reference stays NULL. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

static void *shard_thread(void *arg)
{
    shard *sh = arg;
    sh->arena = -1;
    if (mallctl) {
        unsigned arena;
        size_t len = sizeof arena;
        if (mallctl("arenas.create", &arena, &len, NULL, 0) == 0 &&
            mallctl("thread.arena", NULL, NULL, &arena, sizeof arena) == 0)
            sh->arena = (int)arena;
    }
    return shard_main(arg);
}

int64_t server_arena_allocated(int arena)
{
    if (!mallctl || arena < 0)
        return -1;
    uint64_t epoch = 1;
    size_t elen = sizeof epoch;
    mallctl("epoch", &epoch, &elen, &epoch, elen); /* refresh the statistics */
    int64_t total = 0;
    static const char *const kinds[] = {"small", "large"};
    for (int i = 0; i < 2; i++) {
        char name[64];
        size_t v, len = sizeof v;
        snprintf(name, sizeof name, "stats.arenas.%d.%s.allocated", arena, kinds[i]);
        if (mallctl(name, &v, &len, NULL, 0) != 0)
            return -1;
        total += (int64_t)v;
    }
    return total;
}

/* The CPUs this process may run on, in order. */
static uint32_t allowed_cpus(int *cpus, uint32_t max)
{
    cpu_set_t set;
    uint32_t n = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (size_t i = 0; i < CPU_SETSIZE && n < max; i++)
        if (CPU_ISSET(i, &set))
            cpus[n++] = (int)i;
    return n;
}

/* The server's state from the arguments; the TLS files checked once (a
 * probe context) and the process's ticket keys made.  0 or SPINDLE_E*. */
static int server_init(server *srv, const spindle_config *cfg, const spindle_handler *handler,
                       const spindle_hooks *hooks, void *app)
{
    memset(srv, 0, sizeof *srv);
    srv->cfg = *cfg;
    config_to_h2_limits(cfg, &srv->limits);
    config_to_h1_limits(cfg, &srv->h1limits);
    srv->handler = *handler;
    if (hooks)
        srv->hooks = *hooks;
    srv->app = app;
    atomic_init(&srv->stop, false);
    if (!cfg->tls_cert)
        return 0;
    tls_config tc = {.cert_file = cfg->tls_cert, .key_file = cfg->tls_key};
    tls_ctx *probe = NULL;
    char terr[512];
    if (tls_ctx_new(&tc, &probe, terr, sizeof terr) != 0) {
        log_msg(LOG_ERROR, -1, "TLS: %s", terr);
        return SPINDLE_EINVAL;
    }
    tls_ctx_free(probe);
    tls_thread_cleanup(); /* the probe's handshake filled this thread's ECC cache */
    srv->tickets = tls_ticket_keys_new(cfg->tls_ticket_lifetime_s);
    if (!srv->tickets) {
        log_msg(LOG_ERROR, -1, "TLS: cannot make session ticket keys (getrandom)");
        return SPINDLE_ESYS;
    }
    return 0;
}

/* The signals spindle_run() takes: blocked in every thread it starts, and
 * caught (catch_signal) where an application thread may receive them. */
typedef struct signals {
    sigset_t set, old;
    struct sigaction prev[4];
    int n; /* caught_signals taken: 3, or 4 with SIGHUP */
} signals;

static const int caught_signals[4] = {SIGINT, SIGTERM, SIGUSR1, SIGHUP};

/* hup: also take SIGHUP (the access log's reopen; else it keeps its
 * default action). */
static void signals_take(signals *sg, bool hup)
{
    sg->n = hup ? 4 : 3;
    sigemptyset(&sg->set);
    sigaddset(&sg->set, SIGINT);
    sigaddset(&sg->set, SIGTERM);
    sigaddset(&sg->set, SIGPIPE);
    sigaddset(&sg->set, SIGUSR1); /* log every shard's statistics */
    if (hup)
        sigaddset(&sg->set, SIGHUP); /* reopen the access log */
    pthread_sigmask(SIG_BLOCK, &sg->set, &sg->old);
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = catch_signal;
    sigfillset(&act.sa_mask);
    atomic_store(&caught_stop, 0);
    atomic_store(&caught_stats, false);
    atomic_store(&caught_hup, false);
    for (int i = 0; i < sg->n; i++)
        sigaction(caught_signals[i], &act, &sg->prev[i]);
}

static void signals_restore(const signals *sg)
{
    for (int i = 0; i < sg->n; i++)
        sigaction(caught_signals[i], &sg->prev[i], NULL);
    pthread_sigmask(SIG_SETMASK, &sg->old, NULL);
}

/* Start the shard threads, shard i on cpus[i % ncpu].  Returns how many
 * started; *rc is SPINDLE_ESYS if one could not be (srv->stop is then set). */
static uint32_t start_shards(server *srv, const int *cpus, uint32_t ncpu, int *rc)
{
    const spindle_config *cfg = &srv->cfg;
    uint32_t started = 0;
    for (uint32_t i = 0; i < srv->nshards; i++) {
        shard *sh = &srv->shards[i];
        sh->srv = srv;
        sh->idx = i;
        sh->lfd = -1;
        sh->tls_lfd = -1;
        sh->cpu = ncpu ? cpus[i % ncpu] : -1;
        sh->port = cfg->port;
        sh->tls_port = cfg->tls_port;
        if (i > 0 && (cfg->port == 0 || (cfg->tls_cert && cfg->tls_port == 0))) {
            /* Port 0: every shard joins the port shard 0 was given. */
            while (atomic_load(&srv->shards[0].ready) == 0)
                nanosleep(&(struct timespec){0, 1000000}, NULL);
            if (atomic_load(&srv->shards[0].ready) < 0)
                break;
            sh->port = srv->shards[0].port;
            sh->tls_port = srv->shards[0].tls_port;
        }
        if (pthread_create(&sh->thread, NULL, shard_thread, sh) != 0) {
            log_msg(LOG_ERROR, -1, "cannot start shard %u: %s", i, strerror(errno));
            *rc = SPINDLE_ESYS;
            atomic_store(&srv->stop, true);
            break;
        }
        started++;
    }
    return started;
}

/* Ring the doorbell of each of the first n shards that is serving. */
static void wake_shards(server *srv, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (atomic_load(&srv->shards[i].ready) == 1)
            ring_waker_wake(srv->shards[i].waker);
}

/* Main thread: wait for a signal, spindle_stop(), or a shard failing at
 * start (srv->stop); pass SIGUSR1 on to the shards meanwhile. */
static void wait_for_stop(server *srv, const sigset_t *sigs, uint32_t started)
{
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!atomic_load(&srv->stop)) {
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig < 0)
            sig = take_caught(); /* delivered to an application's thread */
        if (sig == SIGUSR1) {
            /* Each shard logs its own counters, on its own thread. */
            for (uint32_t i = 0; i < started; i++)
                if (atomic_load(&srv->shards[i].ready) == 1)
                    atomic_store(&srv->shards[i].stats_wanted, true);
            wake_shards(srv, started);
            continue;
        }
        if (sig == SIGHUP) {
            alog_reopen(srv);
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM) {
            log_msg(LOG_INFO, -1, "%s: shutting down gracefully",
                    sig == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
        if (atomic_load(&stop_requested)) {
            log_msg(LOG_INFO, -1, "stop requested: shutting down gracefully");
            return;
        }
    }
}

int spindle_run(const spindle_config *cfg, const spindle_handler *handler,
                const spindle_hooks *hooks, void *app)
{
    char why[256];
    if (!cfg || !handler)
        return SPINDLE_EINVAL;
    if (spindle_config_check(cfg, why, sizeof why) != 0) {
        log_msg(LOG_ERROR, -1, "configuration: %s", why);
        return SPINDLE_EINVAL;
    }
    log_level = cfg->log_level;
    atomic_store(&stop_requested, false);

    server srv;
    int rc = server_init(&srv, cfg, handler, hooks, app);
    if (rc != 0)
        return rc;
    int cpus[1024];
    uint32_t ncpu = allowed_cpus(cpus, 1024);
    srv.nshards = cfg->shards ? cfg->shards : (ncpu ? ncpu : 1);
    rc = upgrade_begin(&srv); /* inherited listeners: socket activation, a predecessor */
    if (srv.inherit.n > srv.nshards)
        srv.nshards = srv.inherit.n; /* a shard for every inherited accept queue */
    /* Aligned: each shard's counters sit on cache lines of their own. */
    srv.shards = rc ? NULL : aligned_alloc(64, srv.nshards * sizeof *srv.shards);
    if (srv.shards)
        memset(srv.shards, 0, srv.nshards * sizeof *srv.shards);
    if (!srv.shards) {
        upgrade_end(&srv);
        tls_ticket_keys_free(srv.tickets);
        return rc ? rc : SPINDLE_ENOMEM;
    }

    conncap_init(&srv); /* the descriptor limit, and max_conns when 0 */
    rc = alog_start(&srv);
    if (rc == 0)
        rc = admin_start(&srv);
    if (rc != 0) {
        alog_stop(&srv);
        free(srv.shards);
        tls_ticket_keys_free(srv.tickets);
        return rc;
    }
    stats_set_server(&srv); /* spindle_get_stats() reads the shards from now on */
    signals sg;
    signals_take(&sg, cfg->access_log && strcmp(cfg->access_log, "-") != 0);
    uint32_t started = start_shards(&srv, cpus, ncpu, &rc);
    if (rc == 0)
        rc = upgrade_serve(&srv);
    wait_for_stop(&srv, &sg.set, started);
    health_shutdown_delay(&srv, &sg.set);
    atomic_store(&srv.stop, true);
    /* Ring each serving shard's doorbell so it notices now, not at its next
     * timer (shards re-check the flag at least once a second anyway). */
    wake_shards(&srv, started);
    for (uint32_t i = 0; i < started; i++) {
        pthread_join(srv.shards[i].thread, NULL);
        if (srv.shards[i].rc && !rc)
            rc = srv.shards[i].rc;
    }
    upgrade_end(&srv);
    signals_restore(&sg);
    stats_set_server(NULL);
    admin_stop(&srv);
    alog_stop(&srv); /* every shard handed its last lines over at its exit */
    free(srv.shards);
    tls_ticket_keys_free(srv.tickets); /* every shard's tls_ctx is gone */
    if (rc == 0)
        log_msg(LOG_INFO, -1, "stopped");
    return rc;
}
