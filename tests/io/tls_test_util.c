/*
 * tests/io/tls_test_util.c - what the TLS adapter's tests share: test
 * certificates, a wolfSSL client over two in-memory byte queues, and the
 * pump that moves bytes between it and the adapter (tls_test_util.h).
 */
#include "tls_test_util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Certificates                                                              */

char g_dir[64];
char g_ca[128], g_cert[128], g_key[128], g_other_key[128], g_junk[128];

void certs_make(void)
{
    strcpy(g_dir, "/tmp/spindle-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
    snprintf(g_ca, sizeof g_ca, "%s/ca.pem", g_dir);
    snprintf(g_cert, sizeof g_cert, "%s/server.pem", g_dir);
    snprintf(g_key, sizeof g_key, "%s/server.key", g_dir);
    snprintf(g_other_key, sizeof g_other_key, "%s/other.key", g_dir);
    snprintf(g_junk, sizeof g_junk, "%s/junk.pem", g_dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s; "
             "openssl ecparam -name prime256v1 -genkey -noout -out ca.key; "
             "openssl req -x509 -new -key ca.key -subj /CN=spindle-test-ca -days 2 "
             "  -sha256 -out ca.pem; "
             "openssl ecparam -name prime256v1 -genkey -noout -out server.key; "
             "openssl req -new -key server.key -subj /CN=localhost -out server.csr; "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf; "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "  -days 2 -sha256 -extfile ext.cnf -out server.pem; "
             "openssl ecparam -name prime256v1 -genkey -noout -out other.key; "
             "echo 'this is not a certificate' > junk.pem",
             g_dir);
    char full[2200];
    snprintf(full, sizeof full, "(%s) >/dev/null 2>&1", cmd);
    cr_assert_eq(system(full), 0, "openssl CLI failed making test certificates in %s", g_dir);
    wolfSSL_Init();
}

void certs_remove(void)
{
    if (g_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        (void)!system(cmd);
        g_dir[0] = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* A growable byte queue                                                     */

void bq_put(bq *q, const void *src, size_t n)
{
    if (q->off && q->len + n > q->cap) {
        memmove(q->p, q->p + q->off, q->len - q->off);
        q->len -= q->off;
        q->off = 0;
    }
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + n)
            cap *= 2;
        q->p = realloc(q->p, cap);
        cr_assert_not_null(q->p);
        q->cap = cap;
    }
    memcpy(q->p + q->len, src, n);
    q->len += n;
}

size_t bq_size(const bq *q)
{
    return q->len - q->off;
}

void bq_drop(bq *q, size_t n)
{
    q->off += n;
    if (q->off == q->len)
        q->off = q->len = 0;
}

/* ------------------------------------------------------------------------ */
/* The client: a WOLFSSL over two queues                                     */

static int cl_recv(WOLFSSL *ssl, char *buf, int sz, void *ud)
{
    (void)ssl;
    client *c = ud;
    size_t n = bq_size(&c->in);
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    if (c->trickle && n > c->trickle)
        n = c->trickle;
    memcpy(buf, c->in.p + c->in.off, n);
    bq_drop(&c->in, n);
    return (int)n;
}

static int cl_send(WOLFSSL *ssl, char *buf, int sz, void *ud)
{
    (void)ssl;
    client *c = ud;
    bq_put(&c->out, buf, (size_t)sz);
    return sz;
}

/* alpn: a comma list ("h2", "http/1.1", "h2,http/1.1") or NULL for none. */
void client_init(client *c, cl_version v, const char *alpn, const char *suites)
{
    memset(c, 0, sizeof *c);
    WOLFSSL_METHOD *m = v == V_TLS13   ? wolfTLSv1_3_client_method()
                        : v == V_TLS12 ? wolfTLSv1_2_client_method()
                        : v == V_TLS11 ? wolfTLSv1_1_client_method()
                                       : wolfSSLv23_client_method();
    c->ctx = wolfSSL_CTX_new(m);
    cr_assert_not_null(c->ctx);
    cr_assert_eq(wolfSSL_CTX_load_verify_locations(c->ctx, g_ca, NULL), WOLFSSL_SUCCESS);
    wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, NULL);
    if (suites)
        cr_assert_eq(wolfSSL_CTX_set_cipher_list(c->ctx, suites), WOLFSSL_SUCCESS);
    wolfSSL_CTX_SetIORecv(c->ctx, cl_recv);
    wolfSSL_CTX_SetIOSend(c->ctx, cl_send);
    c->ssl = wolfSSL_new(c->ctx);
    cr_assert_not_null(c->ssl);
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    cr_assert_eq(wolfSSL_check_domain_name(c->ssl, "localhost"), WOLFSSL_SUCCESS);
    if (alpn) {
        char list[64];
        snprintf(list, sizeof list, "%s", alpn);
        cr_assert_eq(wolfSSL_UseALPN(c->ssl, list, (unsigned)strlen(list),
                                     WOLFSSL_ALPN_CONTINUE_ON_MISMATCH),
                     WOLFSSL_SUCCESS);
    }
    if (v != V_TLS11)
        (void)wolfSSL_UseSessionTicket(c->ssl);
}

void client_free(client *c)
{
    wolfSSL_free(c->ssl);
    wolfSSL_CTX_free(c->ctx);
    free(c->in.p);
    free(c->out.p);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------------ */
/* The server side and the wire between them                                 */

tls_ctx *server_ctx(tls_ticket_keys *keys, uint32_t out_cap)
{
    tls_config cfg = {.cert_file = g_cert, .key_file = g_key, .tickets = keys, .out_cap = out_cap};
    char err[256] = "";
    tls_ctx *ctx = NULL;
    int rc = tls_ctx_new(&cfg, &ctx, err, sizeof err);
    cr_assert_eq(rc, 0, "tls_ctx_new: %s", err);
    cr_assert_not_null(ctx);
    return ctx;
}

size_t g_out_peak; /* most ciphertext the server buffered at once */

/* Move the server's pending ciphertext to the client (in pieces of at most
 * `chunk` bytes, as short sends would), and the client's to the server
 * (whatever tls_feed takes). Returns true if anything moved. */
bool pump_chunked(tls_conn *s, client *c, size_t chunk)
{
    bool moved = false;
    struct iovec iov;
    size_t bytes = 0;
    size_t pending = tls_out_pending(s);
    if (pending > g_out_peak)
        g_out_peak = pending;
    if (tls_pending_out(s, &iov, 1, &bytes) == 1) {
        cr_assert_eq(iov.iov_len, bytes);
        size_t n = bytes < chunk ? bytes : chunk;
        bq_put(&c->in, iov.iov_base, n);
        tls_out_commit(s, n);
        moved = true;
    }
    size_t have = bq_size(&c->out);
    if (have) {
        size_t took = tls_feed(s, c->out.p + c->out.off, have < chunk ? have : chunk);
        bq_drop(&c->out, took);
        moved = moved || took > 0;
    }
    return moved;
}

bool pump(tls_conn *s, client *c)
{
    return pump_chunked(s, c, SIZE_MAX);
}

/* Run the handshake to its end on both sides. */
hs_result handshake(tls_conn *s, client *c)
{
    hs_result r = {TLS_WANT, -1};
    bool cdone = false;
    for (int round = 0; round < 100; round++) {
        if (!cdone) {
            int rc = wolfSSL_connect(c->ssl);
            if (rc == WOLFSSL_SUCCESS) {
                cdone = true;
                r.client_err = 0;
            } else {
                int e = wolfSSL_get_error(c->ssl, rc);
                if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
                    r.client_err = e;
                    cdone = true;
                }
            }
        }
        pump(s, c);
        if (r.server == TLS_WANT)
            r.server = tls_handshake(s);
        pump(s, c);
        if (cdone && r.server != TLS_WANT)
            break;
    }
    /* Let the client take what followed its Finished (TLS 1.3 tickets). */
    if (r.client_err == 0) {
        uint8_t tmp[64];
        int n = wolfSSL_read(c->ssl, tmp, sizeof tmp);
        cr_assert_leq(n, 0, "unexpected application data");
    }
    return r;
}

void assert_ok(hs_result r, tls_conn *s)
{
    cr_assert_eq(r.server, TLS_OK, "server: %s", tls_error_msg(s));
    cr_assert_eq(r.client_err, 0, "client error %d", r.client_err);
    cr_assert(tls_handshake_done(s));
}

/* The alert the client last received, or -1. */
int client_rx_alert(client *c)
{
    WOLFSSL_ALERT_HISTORY h;
    memset(&h, 0, sizeof h);
    wolfSSL_get_alert_history(c->ssl, &h);
    return h.last_rx.level ? h.last_rx.code : -1;
}

uint8_t pat(size_t i)
{
    return (uint8_t)((i * 131u + (i >> 9) + 7u) & 0xffu);
}
