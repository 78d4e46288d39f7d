/* Tests for core/upstream_tls.c: upstream calls to a TLS origin (the same
 * spindle server, with a certificate for "localhost" from a test CA made
 * with the openssl CLI), and TLS session resumption: a connection offers
 * the session (TLS 1.3 ticket) the previous one got, and spindle's server
 * (io/tls_tickets.c) accepts it. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mini_h2.h"

static char dir[64], ca[128], other_ca[128], cert[128], key[128];

static void certs_make(void)
{
    strcpy(dir, "/tmp/spindle-uptls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other_ca, sizeof other_ca, "%s/other.pem", dir);
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "(set -e; cd %s; "
             "openssl ecparam -name prime256v1 -genkey -noout -out ca.key; "
             "openssl req -x509 -new -key ca.key -subj /CN=up-test-ca -days 2 -out ca.pem; "
             "openssl ecparam -name prime256v1 -genkey -noout -out o.key; "
             "openssl req -x509 -new -key o.key -subj /CN=up-other-ca -days 2 -out other.pem; "
             "openssl ecparam -name prime256v1 -genkey -noout -out server.key; "
             "openssl req -new -key server.key -subj /CN=localhost -out server.csr; "
             "printf 'subjectAltName=DNS:localhost\\n' > ext.cnf; "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "  -days 2 -extfile ext.cnf -out server.pem) >/dev/null 2>&1",
             dir);
    cr_assert_eq(system(cmd), 0, "openssl CLI failed making certificates in %s", dir);
}

static void certs_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
}

/* --- The origin -------------------------------------------------------------------- */

static atomic_int tls_port;

static void on_listen_tls(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)shard;
    (void)address;
    (void)app;
    atomic_store(&tls_port, port);
}

static void origin_request(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)r;
    (void)app;
    spindle_respond(s, 200, NULL, 0, false);
    spindle_send(s, "secure", 6, true, NULL, NULL);
}

static void serve(void)
{
    certs_make();
    spindle_config cfg = spindle_config_default();
    cfg.shards = 1;
    cfg.tls_port = 0;
    cfg.tls_cert = cert;
    cfg.tls_key = key;
    cfg.limits.max_requests = 1; /* GOAWAY after each: every call connects anew */
    spindle_handler h = {.on_request = origin_request};
    spindle_hooks hooks = {.on_listen_tls = on_listen_tls};
    mini_serve_hooks(cfg, &h, &hooks, NULL);
    for (int i = 0; i < 1000 && !atomic_load(&tls_port); i++)
        usleep(1000);
    cr_assert_neq(atomic_load(&tls_port), 0, "no TLS listener");
}

/* --- Calls ---------------------------------------------------------------------------- */

typedef struct result {
    atomic_int done;
    int err;
    size_t len;
} result;

static void r_data(spindle_call *c, const uint8_t *d, size_t n, bool end, void *ctx)
{
    (void)c;
    (void)d;
    (void)end;
    ((result *)ctx)->len += n;
}

static void r_done(spindle_call *c, int err, uint32_t code, void *ctx)
{
    (void)c;
    (void)code;
    result *res = ctx;
    res->err = err;
    atomic_fetch_add(&res->done, 1);
}

static const spindle_call_handler handler = {NULL, r_data, NULL, r_done};

static spindle_upstream *up;
static const char *use_ca;

static void make_upstream(void *arg)
{
    int *rc = arg;
    spindle_upstream_config cfg = spindle_upstream_config_default();
    cfg.host = "localhost"; /* SNI and the name checked */
    cfg.port = (uint16_t)atomic_load(&tls_port);
    cfg.tls = true;
    cfg.tls_ca_file = use_ca;
    cfg.max_conns = 1;
    *rc = spindle_upstream_new(spindle_current_shard(), &cfg, &up);
}

static void free_upstream(void *arg)
{
    (void)arg;
    spindle_upstream_free(up);
    up = NULL;
}

static void start_call(void *arg)
{
    spindle_call_req req = {.method = "GET", .path = "/"};
    cr_assert_eq(spindle_call_start(up, &req, &handler, arg, NULL), 0);
}

static result results[8];

static result *call(int i)
{
    mini_on_shard(0, start_call, &results[i]);
    cr_assert(mini_wait(&results[i].done, 1), "the call did not end in 10 s");
    return &results[i];
}

static spindle_upstream_stats stats;

static void get_stats(void *arg)
{
    (void)arg;
    spindle_upstream_get_stats(up, &stats);
}

static void setup(const char *ca_file)
{
    use_ca = ca_file;
    int rc = -1;
    mini_on_shard(0, make_upstream, &rc);
    cr_assert_eq(rc, 0, "spindle_upstream_new: %s", spindle_strerror(rc));
}

Test(upstream_tls, next_connection_resumes_the_session, .fini = certs_remove)
{
    serve();
    setup(ca);
    for (int i = 0; i < 3; i++) {
        result *r = call(i);
        cr_assert_eq(r->err, 0, "call %d: %s", i, spindle_strerror(r->err));
        cr_assert_eq(r->len, 6);
    }
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.opened, 3, "one connection per call (max-requests 1)");
    cr_assert_eq(stats.tls_handshakes, 3);
    cr_assert_eq(stats.tls_resumed, 2, "the 2nd and 3rd resumed (%lu)",
                 (unsigned long)stats.tls_resumed);
    mini_on_shard(0, free_upstream, NULL);
    /* A new upstream has nothing to offer: a full handshake first. */
    setup(ca);
    cr_assert_eq(call(3)->err, 0);
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.tls_handshakes, 1);
    cr_assert_eq(stats.tls_resumed, 0);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}

Test(upstream_tls, verification_fails_with_another_ca, .fini = certs_remove)
{
    serve();
    setup(other_ca);
    result *r = call(0);
    cr_assert_eq(r->err, SPINDLE_EUPSTREAM);
    mini_on_shard(0, get_stats, NULL);
    cr_assert_eq(stats.tls_handshakes, 0);
    mini_on_shard(0, free_upstream, NULL);
    cr_assert_eq(mini_stop(), 0);
}
