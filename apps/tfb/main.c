/* spindle-tfb - the TechEmpower Framework Benchmarks test types on spindle and
 * PostgreSQL, built only on include/spindle.h (docs/tfb.md).
 *
 *   GET /plaintext          "Hello, World!" (text/plain)
 *   GET /json               {"message":"Hello, World!"}, serialized per request
 *   GET /db                 one random World row as a JSON object
 *   GET /queries?queries=N  N random rows (N clamped to 1..500) as a JSON array
 *   GET /fortunes           every Fortune row plus one added at request time,
 *                           sorted by message, as an HTML table (escaped)
 *   GET /updates?queries=N  N random rows, each given a new random number,
 *                           written back in one statement, as a JSON array
 *
 * Every response carries server, date, content-type and content-length.
 * A database that cannot be reached gives 503 (and is reconnected to when it
 * comes back); an error from the database gives 500.
 *
 * /plaintext and /json are answered on the shard.  The database endpoints,
 * by default, too: each shard holds a pool of non-blocking libpq connections
 * driven from its ring, with the queries pipelined (pgasync.h; --pool,
 * --depth, --queue).  --blocking hands them instead to the shard's offload
 * threads with spindle_offload(), where synchronous libpq runs, one
 * connection per offload thread (opened at its first request, closed when the
 * thread ends), with prepared statements; --set offload-threads=N sets the
 * threads (and so the connections) per shard.  --test-endpoints adds
 * /sleep?ms=N (SELECT pg_sleep), for the tests.
 *
 * --db CONNINFO is a libpq connection string (scripts/pg.sh start prints
 * one); --cert FILE --key FILE also serve TLS on --tls-port, as spindle-hello.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "job.h"
#include "pgasync.h"
#include "render.h"
#include "spindle.h"

static const char *conninfo;
static bool blocking;       /* --blocking */
static bool test_endpoints; /* --test-endpoints: also /sleep?ms=N */
static tfb_pool_limits pool_limits;

/* --- Per-thread state ------------------------------------------------------ */

/* The Date header, made again when the second changes. */
static _Thread_local time_t date_t = -1;
static _Thread_local char date_s[TFB_DATE_LEN + 1];
static _Thread_local uint64_t rng;
static _Thread_local time_t last_log;

static const char *http_date(void)
{
    time_t t = time(NULL);
    if (t != date_t) {
        tfb_http_date(t, date_s);
        date_t = t;
    }
    return date_s;
}

static uint64_t *thread_rng(void)
{
    if (!rng) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&rng ^ (uint64_t)ts.tv_sec;
        rng |= 1;
    }
    return &rng;
}

/* One database connection per offload thread: made at the thread's first
 * request, freed by the key's destructor when the thread exits. */
static pthread_key_t db_key;
static pthread_once_t db_once = PTHREAD_ONCE_INIT;

static void db_destroy(void *p)
{
    tfb_db_free(p);
}
static void db_key_make(void)
{
    pthread_key_create(&db_key, db_destroy);
}

static tfb_db *thread_db(void)
{
    pthread_once(&db_once, db_key_make);
    tfb_db *db = pthread_getspecific(db_key);
    if (!db) {
        db = tfb_db_new(conninfo);
        if (db && pthread_setspecific(db_key, db) != 0) {
            tfb_db_free(db);
            db = NULL;
        }
    }
    return db;
}

/* A database failure, logged at most once a second per thread (a server
 * that is down fails every request). */
static void log_db(const char *what, const char *err)
{
    time_t t = time(NULL);
    if (t != last_log) {
        last_log = t;
        fprintf(stderr, "spindle-tfb: %s: %s\n", what, err);
    }
}

/* --- Responses -------------------------------------------------------------- */

static void release_free(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)len;
    free((void *)data);
}

/* The head with the four headers every answer carries. */
static void head(spindle_stream *s, uint16_t status, const char *ctype, size_t len)
{
    char clen[24]; /* decimal, right-aligned (no printf per request) */
    char *c = clen + sizeof clen;
    size_t v = len;
    do {
        *--c = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    spindle_header h[] = {
        {"server", "spindle", 6, 7},
        {"date", http_date(), 4, TFB_DATE_LEN},
        {"content-type", ctype, 12, 0},
        {"content-length", c, 14, (uint32_t)(clen + sizeof clen - c)},
    };
    spindle_respond(s, status, h, sizeof h / sizeof h[0], len == 0);
}

static void respond_text(spindle_stream *s, uint16_t status, const char *text)
{
    size_t n = strlen(text);
    head(s, status, "text/plain", n);
    spindle_send(s, text, n, true, NULL, NULL);
}

/* Hand b's bytes to spindle (it frees them), or answer 500 if b ran out of
 * memory. */
static void respond_buf(spindle_stream *s, const char *ctype, tfb_buf *b)
{
    if (b->oom) {
        tfb_buf_free(b);
        respond_text(s, 500, "out of memory\n");
        return;
    }
    head(s, 200, ctype, b->len);
    spindle_send(s, b->p, b->len, true, release_free, NULL);
    b->p = NULL;
}

static void respond_db_error(spindle_stream *s, int rc, const char *err)
{
    if (rc == TFB_DB_DOWN) {
        log_db("database unavailable", err);
        respond_text(s, 503, "database unavailable\n");
    } else {
        log_db("database error", err);
        respond_text(s, 500, rc == TFB_DB_NOMEM ? "out of memory\n" : "database error\n");
    }
}

static const char json_type[] = "application/json";

static void answer_job(spindle_stream *s, tfb_job *j, int rc);

/* The pool's answer for a job whose stream is still open (shard thread). */
static void pool_done(spindle_stream *s, tfb_job *j, int rc, void *ctx)
{
    (void)ctx;
    answer_job(s, j, rc);
}

/* --- Database endpoints, blocking (on an offload thread) ---------------------- */

/* The blocking driver: the job's queries one after the other on this
 * thread's connection. */
static int run_job(tfb_db *db, tfb_job *j)
{
    for (uint32_t k = 0; k < j->nqueries; k++) {
        tfb_query q;
        int rc = tfb_job_query(j, k, &q);
        PGresult *r = NULL;
        if (rc == TFB_DB_OK)
            rc = tfb_db_run(db, &q, &r, j->err, sizeof j->err);
        else
            snprintf(j->err, sizeof j->err, "out of memory");
        tfb_query_free(&q);
        if (rc) {
            PQclear(r);
            return rc;
        }
        rc = tfb_job_consume(j, k, r);
        if (rc)
            return rc;
    }
    return TFB_DB_OK;
}

/* Answer a finished job: its page, or the failure. */
static void answer_job(spindle_stream *s, tfb_job *j, int rc)
{
    if (rc) {
        respond_db_error(s, rc, j->err);
        return;
    }
    tfb_buf b;
    tfb_buf_init(&b, j->kind == TFB_JOB_FORTUNES ? 2048 : 32 * (size_t)j->n + 2); /* no regrowth */
    tfb_job_render(j, &b);
    respond_buf(s, tfb_job_content_type(j), &b);
}

/* The job's parameter: the queries count, or /sleep's ms=N. */
static uint32_t job_param(const spindle_request *req, tfb_job_kind kind)
{
    if (kind != TFB_JOB_SLEEP)
        return tfb_queries_param(req->path.ptr, req->path.len);
    const char *end = req->path.ptr + req->path.len, *p = req->path.ptr;
    while (p + 3 <= end && memcmp(p, "ms=", 3) != 0)
        p++;
    uint32_t ms = 0;
    for (p += 3; p < end && *p >= '0' && *p <= '9' && ms <= TFB_MAX_SLEEP_MS; p++)
        ms = ms * 10 + (uint32_t)(*p - '0');
    return ms;
}

static void serve_job(spindle_stream *s, const spindle_request *req, tfb_job_kind kind)
{
    tfb_job j;
    tfb_db *db = thread_db();
    int rc = tfb_job_init(&j, kind, job_param(req, kind), thread_rng());
    if (rc == TFB_DB_OK && !db)
        rc = TFB_DB_NOMEM;
    if (rc == TFB_DB_NOMEM)
        snprintf(j.err, sizeof j.err, "out of memory");
    if (rc == TFB_DB_OK)
        rc = run_job(db, &j);
    answer_job(s, &j, rc);
    tfb_job_free(&j);
}

static void do_db(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    serve_job(s, req, TFB_JOB_DB);
}

static void do_queries(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    serve_job(s, req, TFB_JOB_QUERIES);
}

static void do_fortunes(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    serve_job(s, req, TFB_JOB_FORTUNES);
}

static void do_updates(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    serve_job(s, req, TFB_JOB_UPDATES);
}

static void do_sleep(spindle_stream *s, const spindle_request *req, void *app)
{
    (void)app;
    serve_job(s, req, TFB_JOB_SLEEP);
}

/* --- Database endpoints, asynchronous (on the shard) ---------------------- */

static void *on_shard_start(spindle_shard *sh, void *app)
{
    (void)app;
    tfb_pool *p = tfb_pool_new(sh, conninfo, &pool_limits, pool_done, NULL);
    if (!p)
        fprintf(stderr, "spindle-tfb: shard %u: no database pool (out of memory)\n",
                spindle_shard_index(sh));
    return p;
}

static void on_shard_stop(spindle_shard *sh, void *shard_ctx, void *app)
{
    (void)sh;
    (void)app;
    tfb_pool_free(shard_ctx);
}

static void submit(spindle_stream *s, const spindle_request *req, tfb_job_kind kind)
{
    tfb_pool *p = spindle_shard_ctx(spindle_current_shard());
    int rc = p ? tfb_pool_submit(p, s, kind, job_param(req, kind), thread_rng()) : TFB_DB_NOMEM;
    if (rc == TFB_POOL_FULL)
        respond_text(s, 503, "database busy\n");
    else if (rc)
        respond_db_error(s, rc, rc == TFB_DB_DOWN ? "database down" : "out of memory");
}

/* --- Routing (on the shard) ------------------------------------------------------ */

static bool path_is(const spindle_request *r, const char *p)
{
    size_t n = strlen(p);
    const char *q = memchr(r->path.ptr, '?', r->path.len);
    size_t len = q ? (size_t)(q - r->path.ptr) : r->path.len;
    return len == n && memcmp(r->path.ptr, p, n) == 0;
}

/* A database endpoint: the pool (async), or an offload thread (--blocking). */
static void db_endpoint(spindle_stream *s, const spindle_request *r, tfb_job_kind kind)
{
    static const spindle_request_fn fns[] = {
        [TFB_JOB_DB] = do_db,
        [TFB_JOB_QUERIES] = do_queries,
        [TFB_JOB_FORTUNES] = do_fortunes,
        [TFB_JOB_UPDATES] = do_updates,
        [TFB_JOB_SLEEP] = do_sleep,
    };
    if (!blocking)
        submit(s, r, kind);
    else if (spindle_offload(s, fns[kind]) != 0)
        respond_text(s, 503, "no offload thread\n");
}

static void on_request(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)app;
    static const char hello[] = "Hello, World!";
    if (r->method.len != 3 || memcmp(r->method.ptr, "GET", 3) != 0) {
        respond_text(s, 405, "method not allowed\n");
    } else if (path_is(r, "/plaintext")) {
        head(s, 200, "text/plain", sizeof hello - 1);
        spindle_send(s, hello, sizeof hello - 1, true, NULL, NULL);
    } else if (path_is(r, "/json")) {
        char body[64];
        tfb_buf b = {body, 0, sizeof body, false}; /* fits: no reallocation */
        tfb_render_message(&b);
        head(s, 200, json_type, b.len);
        spindle_send_copy(s, b.p, b.len, true);
    } else if (path_is(r, "/db")) {
        db_endpoint(s, r, TFB_JOB_DB);
    } else if (path_is(r, "/queries")) {
        db_endpoint(s, r, TFB_JOB_QUERIES);
    } else if (path_is(r, "/fortunes")) {
        db_endpoint(s, r, TFB_JOB_FORTUNES);
    } else if (path_is(r, "/updates")) {
        db_endpoint(s, r, TFB_JOB_UPDATES);
    } else if (test_endpoints && path_is(r, "/sleep")) {
        db_endpoint(s, r, TFB_JOB_SLEEP);
    } else {
        respond_text(s, 404, "not found\n");
    }
}

/* --- Command line --------------------------------------------------------------------- */

static void say_listening(const char *scheme, uint32_t shard, const char *address, uint16_t port)
{
    char line[512];
    bool v6 = strchr(address, ':') != NULL;
    int n = snprintf(line, sizeof line, "listening on %s://%s%s%s:%u (shard %u)\n", scheme,
                     v6 ? "[" : "", address, v6 ? "]" : "", port, shard);
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
        (void)w;
    }
}

static void on_listen(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)app;
    say_listening("http", shard, address, port);
}

static void on_listen_tls(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)app;
    say_listening("https", shard, address, port);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: spindle-tfb --db CONNINFO [--blocking] [--pool N] [--depth N] [--queue N]\n"
               "                   [--segments N]\n"
               "                   [--address A] [--port P] [--shards N] [--log-level 0..3]\n"
               "                   [--tls-port P --cert FILE --key FILE] [--set name=value]...\n"
               "  --db CONNINFO     libpq connection string, e.g. \"host=/tmp/pg port=5432\n"
               "                    dbname=hello_world user=benchmarkdbuser\" (scripts/pg.sh)\n"
               "  --blocking        synchronous libpq on the offload threads, one connection\n"
               "                    per thread (--set offload-threads=N), for comparison;\n"
               "                    default: asynchronous libpq on the shards\n"
               "  --pool N          async: PostgreSQL connections per shard (default 4)\n"
               "  --depth N         async: jobs pipelined per connection (default 64)\n"
               "  --segments N      async: pipeline segments (syncs) in flight per\n"
               "                    connection (default 2)\n"
               "  --queue N         async: jobs waiting for a connection per shard, beyond\n"
               "                    which the answer is 503 (default 1024)\n"
               "  --test-endpoints  also serve /sleep?ms=N (pg_sleep), for the tests\n"
               "  --address A       listen address (default 127.0.0.1)\n"
               "  --port P          TCP port, 0 = any free port (default 8080)\n"
               "  --shards N        worker threads, one per core (default: online CPUs)\n"
               "  --log-level L     0 error, 1 warn, 2 info, 3 debug (default 2)\n"
               "  --cert FILE       PEM certificate (chain): also serve HTTP/2 over TLS\n"
               "  --key FILE        its PEM private key\n"
               "  --tls-port P      TLS port, 0 = any free port (default 8443)\n"
               "  --set name=value  any spindle setting or limit (see spindle.h)\n");
}

/* Parse argv into cfg; 0 to run, else the exit status (help: -1 -> 0). */
static int parse_args(int argc, char **argv, spindle_config *cfg)
{
    char err[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        }
        if (strcmp(a, "--blocking") == 0 || strcmp(a, "--test-endpoints") == 0) {
            *(a[2] == 'b' ? &blocking : &test_endpoints) = true;
            continue;
        }
        static const char *const valued[] = {
            "--address", "--port", "--shards", "--log-level", "--set",   "--tls-port", "--cert",
            "--key",     "--db",   "--pool",   "--depth",     "--queue", "--segments"};
        bool known = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known = known || strcmp(a, valued[k]) == 0;
        if (!known || i + 1 >= argc) {
            fprintf(stderr, "spindle-tfb: %s '%s' (see --help)\n",
                    known ? "a value is missing after" : "unknown option", a);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--db") == 0) {
            conninfo = v;
            continue;
        }
        if (strcmp(a, "--pool") == 0 || strcmp(a, "--depth") == 0 || strcmp(a, "--queue") == 0 ||
            strcmp(a, "--segments") == 0) {
            char *end;
            unsigned long x = strtoul(v, &end, 10);
            bool queue = a[2] == 'q';
            if (*v < '0' || *v > '9' || *end || x > 65536 || (x == 0 && !queue)) {
                fprintf(stderr, "spindle-tfb: %s wants %s..65536, not '%s'\n", a, queue ? "0" : "1",
                        v);
                return 2;
            }
            *(a[2] == 'p'   ? &pool_limits.conns
              : queue       ? &pool_limits.queue
              : a[2] == 's' ? &pool_limits.segments
                            : &pool_limits.depth) = (uint32_t)x;
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "%s%s",
                 strcmp(a, "--cert") == 0 || strcmp(a, "--key") == 0 ? "tls-" : "", a + 2);
        int rc = strcmp(a, "--set") == 0 ? spindle_config_set_pair(cfg, v, err, sizeof err)
                                         : spindle_config_set(cfg, name, v, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "spindle-tfb: %s\n", err);
            return 2;
        }
    }
    if (!conninfo) {
        fprintf(stderr, "spindle-tfb: --db CONNINFO is required (see --help)\n");
        return 2;
    }
    if (spindle_config_check(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "spindle-tfb: %s\n", err);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    spindle_config cfg = spindle_config_default();
    pool_limits = tfb_pool_defaults();
    int prc = parse_args(argc, argv, &cfg);
    if (prc)
        return prc < 0 ? 0 : prc;
    spindle_handler h = {.on_request = on_request};
    spindle_hooks hooks = {.on_listen = on_listen, .on_listen_tls = on_listen_tls};
    if (!blocking) {
        hooks.on_shard_start = on_shard_start;
        hooks.on_shard_stop = on_shard_stop;
    }
    int rc = spindle_run(&cfg, &h, &hooks, NULL);
    if (rc != 0) {
        fprintf(stderr, "spindle-tfb: %s\n", spindle_strerror(rc));
        return 1;
    }
    return 0;
}
