/* load.h - spindle-load: an HTTP/2 (and HTTP/1.1) load generator on the
 * client role of the sans-IO engine (proto/h2_client.h) and io_uring, one
 * ring per thread, each thread pinned to its own CPU like the server's
 * shards; h2c, or TLS with ALPN (wolfSSL, load_tls.h).
 *
 * load_main.c parses the flags, starts the workers, prints the progress
 * line and the summary; load_worker.c is one thread: its connections, its
 * ring, its counters (the protocols: load_h2.c, load_http1.c).  Thread: a worker's stats belong to it until it ends;
 * the main thread reads only the published atomics while it runs.
 */
#ifndef SPINDLE_LOAD_H
#define SPINDLE_LOAD_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "h2_client.h"
#include "load_hist.h"

#define LOAD_MAX_HEADERS 32

typedef struct load_cfg {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char scheme[8];
    char authority[300];
    char host[256];      /* the URI's host: TLS SNI and certificate name */
    bool tls;            /* https:// */
    bool h1;             /* --h1: HTTP/1.1, -m requests pipelined */
    bool insecure;       /* -k: no certificate verification */
    const char *ca_file; /* --cacert (NULL: the system's bundle) */
    char *path;
    char *method;
    hpack_field hdrs[LOAD_MAX_HEADERS]; /* -H, regular fields */
    size_t nhdrs;
    const uint8_t *body; /* -d: sent by reference with every request */
    size_t body_len;
    uint64_t nreq;     /* -n: 0 with -D */
    double duration_s; /* -D */
    double warmup_s;
    uint32_t conns, streams, threads;
    int cpus[256]; /* the CPUs threads are pinned to (ncpus 0: not pinned) */
    uint32_t ncpus;
    bool json;
    uint64_t t0_ns; /* set by main before the workers start */
} load_cfg;

/* What a worker counts (requests are streams that ended). */
typedef struct load_stats {
    uint64_t started;     /* after the warm-up (earlier ones are never counted) */
    uint64_t done;        /* of those, ended, any outcome */
    uint64_t ok;          /* complete 2xx responses */
    uint64_t status[6];   /* complete responses by class: [1] 1xx ... [5] 5xx, [0] other */
    uint64_t resets;      /* RST_STREAM from the server */
    uint64_t malformed;   /* reset by us: malformed response, short or long body */
    uint64_t lost;        /* in flight when their connection failed */
    uint64_t refused;     /* refused (GOAWAY or REFUSED_STREAM) and retried */
    uint64_t conn_errors; /* connections that failed (protocol error, reset, EOF mid-stream) */
    uint64_t connects;
    uint64_t bytes_in, bytes_out, body_bytes;
    load_hist lat; /* nanoseconds, complete responses of any status */
} load_stats;

typedef struct load_worker {
    const load_cfg *cfg;
    uint32_t id;
    uint32_t nconns;
    uint64_t share; /* -n: requests this thread issues */
    int cpu;        /* -1: not pinned */
    load_stats st;
    uint64_t t_measure_ns; /* warm-up end: counting starts */
    uint64_t t_end_ns;
    char err[256];
    /* published once per loop turn for the progress line */
    _Atomic uint64_t pub_done, pub_errors, pub_ok;
    _Atomic bool measuring;
} load_worker;

/* Run one worker (a pthread start routine's body).  Returns 0, or -1 with
 * w->err set when it could not start (ring, first connection). */
int load_worker_run(load_worker *w);

uint64_t load_now_ns(void);

#endif
