/* load_tls.c - spindle-load's TLS client over wolfSSL (load_tls.h). */
#include <wolfssl/options.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "load_tls.h"

#define SYSTEM_CA  "/etc/ssl/certs/ca-certificates.crt"
#define STAGE      16384u         /* plaintext gathered into one record */
#define OUT_SOFT   (256u * 1024u) /* ciphertext waiting before the room is 0 */
#define IN_INITIAL (64u * 1024u)

struct ltls_ctx {
    WOLFSSL_CTX *ctx;
    bool verify;
    char alpn[16];
};

struct ltls {
    WOLFSSL *ssl;
    uint8_t *in;
    size_t in_pos, in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_cap, lent;
    uint8_t *retired; /* the lent buffer, replaced while lent */
    bool done, failed, hs_failed;
    char alpn[16];
    char err[200];
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;

static void lib_init(void)
{
    g_init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ud)
{
    (void)ssl;
    ltls *t = ud;
    size_t avail = t->in_len - t->in_pos;
    if (avail == 0 || sz <= 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = avail < (size_t)sz ? avail : (size_t)sz;
    memcpy(buf, t->in + t->in_pos, n);
    t->in_pos += n;
    if (t->in_pos == t->in_len)
        t->in_pos = t->in_len = 0;
    return (int)n;
}

/* Room for need more bytes of output; a lent buffer is kept aside. */
static bool out_grow(ltls *t, size_t need)
{
    if (t->out_cap - t->out_len >= need)
        return true;
    size_t cap = t->out_cap ? t->out_cap : 32768u;
    while (cap - t->out_len < need)
        cap *= 2;
    uint8_t *p = malloc(cap);
    if (!p)
        return false;
    if (t->out_len)
        memcpy(p, t->out, t->out_len);
    if (t->lent && !t->retired)
        t->retired = t->out; /* the writev in flight still reads it */
    else
        free(t->out);
    t->out = p;
    t->out_cap = cap;
    return true;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ud)
{
    (void)ssl;
    ltls *t = ud;
    if (sz <= 0)
        return 0;
    if (!out_grow(t, (size_t)sz))
        return WOLFSSL_CBIO_ERR_GENERAL;
    memcpy(t->out + t->out_len, buf, (size_t)sz);
    t->out_len += (size_t)sz;
    return sz;
}

static void errf(char *err, size_t len, const char *what, int e)
{
    char why[80];
    wolfSSL_ERR_error_string_n((unsigned long)e, why, sizeof why);
    snprintf(err, len, "%s: %s (wolfSSL %d)", what, why, e);
}

int ltls_ctx_new(const ltls_opts *o, ltls_ctx **out, char *err, size_t errlen)
{
    pthread_once(&g_once, lib_init);
    if (g_init_rc != 0) {
        snprintf(err, errlen, "wolfSSL_Init failed");
        return -1;
    }
    ltls_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method()))) {
        free(c);
        snprintf(err, errlen, "wolfSSL_CTX_new failed");
        return -1;
    }
    snprintf(c->alpn, sizeof c->alpn, "%s", o->alpn);
    c->verify = !o->insecure;
    wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2);
    wolfSSL_CTX_SetIORecv(c->ctx, io_recv);
    wolfSSL_CTX_SetIOSend(c->ctx, io_send);
    if (c->verify) {
        const char *ca = o->ca_file ? o->ca_file : SYSTEM_CA;
        int r = wolfSSL_CTX_load_verify_locations(c->ctx, ca, NULL);
        if (r != WOLFSSL_SUCCESS) {
            char what[300];
            snprintf(what, sizeof what, "cannot load CA file %s", ca);
            errf(err, errlen, what, r);
            ltls_ctx_free(c);
            return -1;
        }
        wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, NULL);
    } else {
        wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_NONE, NULL);
    }
    *out = c;
    return 0;
}

void ltls_ctx_free(ltls_ctx *c)
{
    if (!c)
        return;
    if (c->ctx)
        wolfSSL_CTX_free(c->ctx);
    free(c);
}

static bool is_ip(const char *host)
{
    uint8_t a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static int set_names(ltls_ctx *c, ltls *t, const char *host)
{
    if (wolfSSL_UseALPN(t->ssl, c->alpn, (unsigned)strlen(c->alpn),
                        WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)
        return -1;
    if (!is_ip(host) && wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, host,
                                       (unsigned short)strlen(host)) != WOLFSSL_SUCCESS)
        return -1;
    if (c->verify && wolfSSL_check_domain_name(t->ssl, host) != WOLFSSL_SUCCESS)
        return -1;
    return 0;
}

ltls *ltls_new(ltls_ctx *c, const char *host)
{
    ltls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = wolfSSL_new(c->ctx);
    if (!t->ssl || set_names(c, t, host) != 0) {
        ltls_free(t);
        return NULL;
    }
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    int r = wolfSSL_connect(t->ssl); /* the ClientHello, into out */
    if (r != WOLFSSL_SUCCESS && wolfSSL_get_error(t->ssl, r) != WOLFSSL_ERROR_WANT_READ) {
        ltls_free(t);
        return NULL;
    }
    return t;
}

void ltls_free(ltls *t)
{
    if (!t)
        return;
    if (t->ssl)
        wolfSSL_free(t->ssl);
    free(t->in);
    free(t->out);
    free(t->retired);
    free(t);
}

int ltls_feed(ltls *t, const uint8_t *p, size_t n)
{
    if (t->in_pos) {
        memmove(t->in, t->in + t->in_pos, t->in_len - t->in_pos);
        t->in_len -= t->in_pos;
        t->in_pos = 0;
    }
    if (t->in_cap - t->in_len < n) {
        size_t cap = t->in_cap ? t->in_cap : IN_INITIAL;
        while (cap - t->in_len < n)
            cap *= 2;
        uint8_t *q = realloc(t->in, cap);
        if (!q)
            return -1;
        t->in = q;
        t->in_cap = cap;
    }
    memcpy(t->in + t->in_len, p, n);
    t->in_len += n;
    return 0;
}

static int fail(ltls *t, int e, const char *what)
{
    if (!t->failed) {
        errf(t->err, sizeof t->err, what, e);
        if (e == ASN_NO_SIGNER_E)
            snprintf(t->err + strlen(t->err), sizeof t->err - strlen(t->err),
                     " (use --cacert or -k)");
        wolfSSL_ERR_clear_error();
    }
    t->failed = true;
    return -1;
}

static int handshake(ltls *t)
{
    int r = wolfSSL_connect(t->ssl);
    if (r == WOLFSSL_SUCCESS) {
        t->done = true;
        char *name = NULL;
        unsigned short len = 0;
        if (wolfSSL_ALPN_GetProtocol(t->ssl, &name, &len) == WOLFSSL_SUCCESS && name &&
            len < sizeof t->alpn) {
            memcpy(t->alpn, name, len);
            t->alpn[len] = 0;
        }
        return 0;
    }
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return 1;
    t->hs_failed = true;
    return fail(t, e, "TLS handshake");
}

int ltls_read(ltls *t, uint8_t *buf, size_t cap)
{
    if (t->failed)
        return -1;
    if (!t->done) {
        int h = handshake(t);
        if (h != 0)
            return h < 0 ? -1 : 0;
    }
    int r = wolfSSL_read(t->ssl, buf, (int)(cap < 0x7fffffffu ? cap : 0x7fffffffu));
    if (r > 0)
        return r;
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return 0;
    if (e == WOLFSSL_ERROR_ZERO_RETURN) {
        snprintf(t->err, sizeof t->err, "close_notify");
        t->failed = true;
        return -1;
    }
    return fail(t, e, "TLS read");
}

size_t ltls_write_room(const ltls *t)
{
    if (!t->done || t->failed || t->out_len >= OUT_SOFT)
        return 0;
    return OUT_SOFT - t->out_len;
}

static int flush_stage(ltls *t, const uint8_t *p, size_t n)
{
    int r = wolfSSL_write(t->ssl, p, (int)n);
    if (r != (int)n)
        return fail(t, wolfSSL_get_error(t->ssl, r), "TLS write");
    return 0;
}

long ltls_write(ltls *t, const struct iovec *iov, size_t n)
{
    uint8_t stage[STAGE];
    size_t room = ltls_write_room(t), total = 0, fill = 0;
    for (size_t k = 0; k < n && total + fill < room; k++) {
        const uint8_t *p = iov[k].iov_base;
        size_t len = iov[k].iov_len;
        while (len && total + fill < room) {
            size_t take = STAGE - fill;
            if (take > len)
                take = len;
            if (take > room - total - fill)
                take = room - total - fill;
            memcpy(stage + fill, p, take);
            fill += take;
            p += take;
            len -= take;
            if (fill == STAGE) {
                if (flush_stage(t, stage, fill) != 0)
                    return -1;
                total += fill;
                fill = 0;
            }
        }
    }
    if (fill) {
        if (flush_stage(t, stage, fill) != 0)
            return -1;
        total += fill;
    }
    return (long)total;
}

size_t ltls_out(ltls *t, const uint8_t **p)
{
    *p = t->out;
    t->lent = t->out_len;
    return t->out_len;
}

void ltls_out_commit(ltls *t, size_t n)
{
    free(t->retired);
    t->retired = NULL;
    if (n > t->out_len)
        n = t->out_len;
    memmove(t->out, t->out + n, t->out_len - n);
    t->out_len -= n;
    t->lent = 0;
}

bool ltls_handshake_done(const ltls *t)
{
    return t->done;
}

const char *ltls_alpn(const ltls *t)
{
    return t->alpn[0] ? t->alpn : NULL;
}

const char *ltls_error(const ltls *t)
{
    return t->err;
}

bool ltls_handshake_failed(const ltls *t)
{
    return t->hs_failed;
}

void ltls_thread_cleanup(void)
{
#if defined(HAVE_ECC) && defined(FP_ECC)
    wc_ecc_fp_free();
#endif
}
