/* upstream_tls.c - the TLS client transport of upstream connections.
 *
 * wolfSSL on the connection's non-blocking socket with custom I/O
 * callbacks: it reads the socket itself (recv(2); EAGAIN is WANT_READ) and
 * writes into a growable buffer of ours (never WANT_WRITE, so a write is
 * never half-taken), which upstream_conn.c drains to the socket as it can.
 * Policy: TLS 1.2 or 1.3, the certificate chain verified against the CA
 * file (or the system's bundle) and the name checked, unless tls_verify is
 * off; SNI for a name that is not an address; ALPN h2 required.
 *
 * Session resumption: the context (one per upstream, so per origin per
 * shard) keeps the last resumable session a connection got (a TLS 1.3
 * NewSessionTicket, which arrives after the handshake and is taken after a
 * read; a TLS 1.2 ticket or session id at the handshake's end), and every
 * new connection offers it.  A server that declines just does a full
 * handshake.  Each connection's own ticket then replaces the kept one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "log.h"
#include "upstream.h"

#define UP_SYSTEM_CAS "/etc/ssl/certs/ca-certificates.crt"

struct up_tls_ctx {
    WOLFSSL_CTX *ctx;
    WOLFSSL_SESSION *sess; /* offered by the next connection (NULL: none yet) */
    int shard;
};

struct up_tls {
    WOLFSSL *ssl;
    up_tls_ctx *x;
    int fd;
    int shard;
    bool kept;          /* this connection's session was kept for the next */
    uint8_t keep_tries; /* reads left to look for a TLS 1.3 ticket */
    bool resumed;       /* its handshake resumed a session */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
};

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    up_tls *t = ctx;
    ssize_t n = recv(t->fd, buf, (size_t)sz, 0);
    if (n > 0)
        return (int)n;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    if (errno == EAGAIN)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (errno == EINTR)
        return WOLFSSL_CBIO_ERR_ISR;
    return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    up_tls *t = ctx;
    size_t n = (size_t)sz;
    if (t->out_off && t->out_off == t->out_len)
        t->out_off = t->out_len = 0;
    if (t->out_len + n > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 32768;
        while (cap < t->out_len + n)
            cap *= 2;
        uint8_t *p = realloc(t->out, cap);
        if (!p)
            return WOLFSSL_CBIO_ERR_GENERAL;
        t->out = p;
        t->out_cap = cap;
    }
    memcpy(t->out + t->out_len, buf, n);
    t->out_len += n;
    return sz;
}

up_tls_ctx *up_tls_ctx_new(const spindle_upstream_config *cfg, int shard_idx)
{
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return NULL;
    up_tls_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->shard = shard_idx;
    x->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (!x->ctx || wolfSSL_CTX_SetMinVersion(x->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
        log_msg(LOG_ERROR, shard_idx, "upstream TLS: cannot make a wolfSSL context");
        up_tls_ctx_free(x);
        return NULL;
    }
    wolfSSL_CTX_SetIORecv(x->ctx, io_recv);
    wolfSSL_CTX_SetIOSend(x->ctx, io_send);
    if (!cfg->tls_verify) {
        wolfSSL_CTX_set_verify(x->ctx, WOLFSSL_VERIFY_NONE, NULL);
        return x;
    }
    const char *ca = cfg->tls_ca_file ? cfg->tls_ca_file : UP_SYSTEM_CAS;
    if (wolfSSL_CTX_load_verify_locations(x->ctx, ca, NULL) != WOLFSSL_SUCCESS) {
        log_msg(LOG_ERROR, shard_idx, "upstream TLS: cannot load CA file %s", ca);
        up_tls_ctx_free(x);
        return NULL;
    }
    wolfSSL_CTX_set_verify(x->ctx, WOLFSSL_VERIFY_PEER, NULL);
    return x;
}

void up_tls_ctx_free(up_tls_ctx *x)
{
    if (!x)
        return;
    if (x->sess)
        wolfSSL_SESSION_free(x->sess);
    if (x->ctx)
        wolfSSL_CTX_free(x->ctx);
    free(x);
    wolfSSL_Cleanup();
}

static bool is_address(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

up_tls *up_tls_new(up_tls_ctx *x, int fd, const char *name)
{
    up_tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->fd = fd;
    t->x = x;
    t->keep_tries = 16;
    t->shard = x->shard;
    t->ssl = wolfSSL_new(x->ctx);
    if (!t->ssl) {
        free(t);
        return NULL;
    }
    /* TLS 1.2 tickets are an extension to ask for; 1.3's always come. */
    (void)wolfSSL_UseSessionTicket(t->ssl);
    if (x->sess)
        (void)wolfSSL_set_session(t->ssl, x->sess); /* declined: a full handshake */
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    char alpn[] = "h2";
    bool ok = wolfSSL_UseALPN(t->ssl, alpn, 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH) == WOLFSSL_SUCCESS;
    if (ok && !is_address(name))
        ok = wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, name, (unsigned short)strlen(name)) ==
             WOLFSSL_SUCCESS;
    if (ok)
        ok = wolfSSL_check_domain_name(t->ssl, name) == WOLFSSL_SUCCESS;
    if (!ok) {
        up_tls_free(t);
        return NULL;
    }
    return t;
}

void up_tls_free(up_tls *t)
{
    if (!t)
        return;
    wolfSSL_free(t->ssl);
    free(t->out);
    free(t);
}

/* Keep this connection's session for the next connection, once it can
 * be resumed: TLS 1.3 needs a ticket (after the handshake); 1.2 a ticket
 * or a session id. */
static void keep_session(up_tls *t)
{
    WOLFSSL_SESSION *s = wolfSSL_get1_session(t->ssl);
    if (!s)
        return;
    bool v13 = wolfSSL_version(t->ssl) == TLS1_3_VERSION;
    if (!(v13 ? wolfSSL_SESSION_has_ticket(s) : wolfSSL_SESSION_is_resumable(s))) {
        wolfSSL_SESSION_free(s);
        return;
    }
    if (t->x->sess)
        wolfSSL_SESSION_free(t->x->sess);
    t->x->sess = s;
    t->kept = true;
}

bool up_tls_resumed(const up_tls *t)
{
    return t->resumed;
}

int up_tls_handshake(up_tls *t)
{
    int r = wolfSSL_connect(t->ssl);
    if (r == WOLFSSL_SUCCESS) {
        t->resumed = wolfSSL_session_reused(t->ssl) == 1;
        keep_session(t);
        char *proto = NULL;
        unsigned short len = 0;
        if (wolfSSL_ALPN_GetProtocol(t->ssl, &proto, &len) != WOLFSSL_SUCCESS || len != 2 ||
            memcmp(proto, "h2", 2) != 0) {
            log_msg(LOG_WARN, t->shard, "upstream TLS: the origin did not agree to ALPN h2");
            return -1;
        }
        return 0;
    }
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ)
        return SPINDLE_WATCH_IN;
    if (e == WOLFSSL_ERROR_WANT_WRITE)
        return SPINDLE_WATCH_OUT;
    char msg[WOLFSSL_MAX_ERROR_SZ];
    wolfSSL_ERR_error_string_n((unsigned long)e, msg, sizeof msg);
    log_msg(LOG_WARN, t->shard, "upstream TLS handshake failed: %s", msg);
    return -1;
}

long up_tls_read(up_tls *t, uint8_t *buf, size_t cap)
{
    int r = wolfSSL_read(t->ssl, buf, (int)cap);
    if (!t->kept && t->keep_tries) {
        t->keep_tries--;
        keep_session(t); /* a TLS 1.3 ticket comes with the first reads */
    }
    if (r > 0)
        return r;
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == WOLFSSL_ERROR_ZERO_RETURN)
        return 0;
    errno = EPROTO;
    return -1;
}

int up_tls_write(up_tls *t, const uint8_t *buf, size_t len)
{
    while (len) {
        int n = len > 16384 ? 16384 : (int)len;
        int r = wolfSSL_write(t->ssl, buf, n);
        if (r != n)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int up_tls_drain(up_tls *t)
{
    while (t->out_off < t->out_len) {
        ssize_t w = send(t->fd, t->out + t->out_off, t->out_len - t->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 1;
            return -1;
        }
        t->out_off += (size_t)w;
    }
    t->out_off = t->out_len = 0;
    return 0;
}

size_t up_tls_pending(const up_tls *t)
{
    return t->out_len - t->out_off;
}
