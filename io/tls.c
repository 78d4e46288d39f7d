/*
 * io/tls.c - the wolfSSL adapter behind io/tls.h (docs/tls.md).
 *
 * wolfSSL is told to do its I/O through two callbacks on the context
 * (io_recv, io_send) whose per-connection argument is the tls_conn. They
 * move ciphertext between wolfSSL and the adapter's buffers:
 *
 *   in     ciphertext fed from the socket, not yet read by wolfSSL. wolfSSL
 *          reads a record header, then the record body, never more, so what
 *          it has not asked for stays here. Capacity: recv_chunk + one
 *          record, which after a drain always holds the next recv whole.
 *   plain  one decrypted record (wolfSSL_read()), lent to the caller until
 *          consumed, so an engine that pauses mid-record loses nothing.
 *   out    ciphertext for the socket. Lent by tls_pending_out() to a send in
 *          flight: while lent nothing in it moves (appends only go after
 *          it). tls_write() keeps it under out_cap; the slack above out_cap
 *          (one record and change) takes what wolfSSL writes on its own
 *          (alerts, KeyUpdate, tickets), so its writes never hit a full
 *          buffer in practice, and if one does, wolfSSL gets WANT_WRITE and
 *          retries on the next call.
 *
 * Each buffer is taken on first use and given back when it runs empty, to
 * the context's pool (a few per kind per shard; malloc/free beyond that).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* wolfSSL's feature macros live in options.h: it goes before any other
 * wolfSSL header, or struct layouts disagree with the library. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "tls.h"
#include "tls_tickets.h"

/* Suites (wolfSSL names). TLS 1.3 first; TLS 1.2 with ECDHE + AEAD only. */
static const char k_suites[] = "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
                               "TLS13-CHACHA20-POLY1305-SHA256:"
                               "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                               "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                               "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* Bytes a record adds to its plaintext, with margin (TLS 1.2 GCM: 5 header
 * + 8 explicit nonce + 16 tag; TLS 1.3: 5 + 1 type + 16 tag). */
#define REC_OVERHEAD 64u
/* What the out buffer holds beyond out_cap: wolfSSL's own records. */
#define OUT_SLACK (TLS_MAX_RECORD + 1024u)

/* ------------------------------------------------------------------------ */
/* One-time library setup                                                    */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc;

static void lib_init(void)
{
    g_init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Context                                                                   */

/* Record buffers a shard keeps for its connections (per kind): a
 * connection with nothing in flight gives its buffers back, the next
 * record takes one from here, and an empty pool means malloc, never a
 * wait. At most POOL_MAX of each kind stay: 8 x (34 + 16 + 83) KiB. */
#define POOL_MAX 8u
enum { BUF_IN, BUF_PLAIN, BUF_OUT, BUF_KINDS };

struct tls_ctx {
    WOLFSSL_CTX *ctx;
    size_t in_cap;   /* recv_chunk + TLS_MAX_RECORD */
    size_t out_cap;  /* soft: tls_write() stops here */
    size_t out_phys; /* out_cap + OUT_SLACK */
    uint8_t *pool[BUF_KINDS][POOL_MAX];
    unsigned pooled[BUF_KINDS];
};

struct tls_conn {
    WOLFSSL *ssl;
    tls_ctx *ctx;
    uint8_t *in;
    size_t in_off, in_len;
    uint8_t *plain;
    size_t plain_off, plain_len;
    uint8_t *out;
    size_t out_off, out_len;
    size_t lent; /* bytes lent from out_off by tls_pending_out() */
    bool lending;
    bool hs_done;
    bool hello_seen; /* the first record header passed check_first_record() */
    bool notify_sent;
    tls_rv final; /* TLS_CLOSED / TLS_ERROR once the connection is done */
    const char *alpn;
    char err[224];
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* wolfSSL's reason for the error code e (either sign works). */
static const char *reason(int e)
{
    const char *r = wolfSSL_ERR_reason_error_string((unsigned long)e);
    return r && *r ? r : "unknown error";
}

/* The first error a failed load left in wolfSSL's queue (the cause; later
 * ones are consequences), and an empty queue after. */
static const char *load_error(void)
{
    unsigned long e = wolfSSL_ERR_get_error();
    wolfSSL_ERR_clear_error();
    return e ? reason((int)e) : "no PEM data";
}

/* Can the file be opened for reading? Fill err naming it if not. */
static bool readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        errf(err, errlen, "cannot read %s file %s: %s", what, path, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ud);
static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ud);
static int pair_selftest(tls_ctx *c, char *why, size_t len);

/* ALPN: the server's preference, h2 then http/1.1, among the client's
 * protocols (in: its length-prefixed list); neither: no ALPN (NOACK), and
 * the connection is served HTTP/1.1. */
static int alpn_select(WOLFSSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const struct {
        const char *name;
        unsigned char len;
    } prefs[] = {{"h2", 2}, {"http/1.1", 8}};
    for (size_t k = 0; k < sizeof prefs / sizeof prefs[0]; k++)
        for (unsigned int i = 0; i < inlen; i += 1u + in[i]) {
            unsigned char n = in[i];
            if (i + 1u + n > inlen)
                break;
            if (n == prefs[k].len && memcmp(in + i + 1, prefs[k].name, n) == 0) {
                *out = in + i + 1;
                *outlen = n;
                return SSL_TLSEXT_ERR_OK;
            }
        }
    return SSL_TLSEXT_ERR_NOACK;
}

/* The certificate chain and its private key into c->ctx, checked to
 * belong together (a test handshake); false with err set. */
static bool load_identity(tls_ctx *c, const tls_config *cfg, char *err, size_t errlen)
{
    if (wolfSSL_CTX_use_certificate_chain_file(c->ctx, cfg->cert_file) != WOLFSSL_SUCCESS) {
        errf(err, errlen, "%s: not a usable PEM certificate chain (%s)", cfg->cert_file,
             load_error());
        return false;
    }
    if (wolfSSL_CTX_use_PrivateKey_file(c->ctx, cfg->key_file, WOLFSSL_FILETYPE_PEM) !=
        WOLFSSL_SUCCESS) {
        errf(err, errlen, "%s: not a usable PEM private key (%s)", cfg->key_file, load_error());
        return false;
    }
    /* wolfSSL_CTX_check_private_key() compares RSA moduli, but for an EC
     * key this build only checks that the certificate's point is on the
     * curve: a wrong P-256 key passes. A handshake against an in-memory
     * client, which verifies CertificateVerify with the certificate's key,
     * catches every key type. */
    char why[160] = "";
    if (wolfSSL_CTX_check_private_key(c->ctx) != WOLFSSL_SUCCESS ||
        pair_selftest(c, why, sizeof why) != 0) {
        wolfSSL_ERR_clear_error();
        errf(err, errlen, "private key %s does not match certificate %s%s%s%s", cfg->key_file,
             cfg->cert_file, why[0] ? " (" : "", why, why[0] ? ")" : "");
        return false;
    }
    return true;
}

int tls_ctx_new(const tls_config *cfg, tls_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg || !cfg->cert_file || !cfg->key_file) {
        errf(err, errlen, "TLS needs a certificate file and a key file");
        return -1;
    }
    if (!readable("certificate", cfg->cert_file, err, errlen) ||
        !readable("private key", cfg->key_file, err, errlen))
        return -1;
    pthread_once(&g_once, lib_init);
    if (g_init_rc != 0) {
        errf(err, errlen, "wolfSSL_Init failed");
        return -1;
    }
    wolfSSL_ERR_clear_error(); /* so a load error below is ours */

    tls_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        errf(err, errlen, "out of memory");
        return -1;
    }
    size_t chunk = cfg->recv_chunk ? cfg->recv_chunk : 16384u;
    c->in_cap = chunk + TLS_MAX_RECORD;
    c->out_cap = cfg->out_cap ? cfg->out_cap : 65536u;
    if (c->out_cap < TLS_MAX_PLAIN + REC_OVERHEAD)
        c->out_cap = TLS_MAX_PLAIN + REC_OVERHEAD;
    c->out_phys = c->out_cap + OUT_SLACK;

    c->ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    if (!c->ctx) {
        errf(err, errlen, "wolfSSL_CTX_new failed (out of memory?)");
        goto fail;
    }
    WOLFSSL_CTX *x = c->ctx;
    wolfSSL_CTX_SetIORecv(x, io_recv);
    wolfSSL_CTX_SetIOSend(x, io_send);
    if (wolfSSL_CTX_SetMinVersion(x, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(x, k_suites) != WOLFSSL_SUCCESS) {
        errf(err, errlen, "this wolfSSL lacks TLS 1.2/1.3 or the AEAD suites");
        goto fail;
    }
    /* ALPN by the server's preference (wolfSSL alone takes the client's). */
    wolfSSL_CTX_set_alpn_select_cb(x, alpn_select, NULL);
    /* X25519 first: the cheapest key exchange, and what clients send a key
     * share for. P-256/P-384 for the rest. */
    int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};
    if (wolfSSL_CTX_set_groups(x, groups, 3) != WOLFSSL_SUCCESS) {
        errf(err, errlen, "wolfSSL_CTX_set_groups(X25519, P-256, P-384) failed");
        goto fail;
    }

    if (!load_identity(c, cfg, err, errlen))
        goto fail;

    /* No client certificates; no server-side session cache: it is one
     * process-wide locked table, which shards would contend on, and
     * tickets make it unnecessary. */
    wolfSSL_CTX_set_verify(x, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_CTX_set_session_cache_mode(x, WOLFSSL_SESS_CACHE_OFF);
    if (cfg->tickets) {
        wolfSSL_CTX_set_TicketEncCb(x, tls_ticket_cb);
        wolfSSL_CTX_set_TicketEncCtx(x, cfg->tickets);
        wolfSSL_CTX_set_TicketHint(x, (int)tls_ticket_keys_lifetime(cfg->tickets));
        wolfSSL_CTX_set_timeout(x, tls_ticket_keys_lifetime(cfg->tickets));
    }
    *out = c;
    return 0;
fail:
    tls_ctx_free(c);
    return -1;
}

void tls_ctx_free(tls_ctx *c)
{
    if (!c)
        return;
    for (int k = 0; k < BUF_KINDS; k++)
        while (c->pooled[k])
            free(c->pool[k][--c->pooled[k]]);
    if (c->ctx)
        wolfSSL_CTX_free(c->ctx);
    free(c);
}

void tls_thread_cleanup(void)
{
#if defined(HAVE_ECC) && defined(FP_ECC)
    wc_ecc_fp_free(); /* this thread's fixed-point cache */
#endif
}

/* ------------------------------------------------------------------------ */
/* Buffers and the wolfSSL I/O callbacks                                     */

static uint8_t *buf_get(tls_ctx *c, int kind)
{
    if (c->pooled[kind])
        return c->pool[kind][--c->pooled[kind]];
    size_t size = kind == BUF_IN ? c->in_cap : kind == BUF_OUT ? c->out_phys : TLS_MAX_PLAIN;
    return malloc(size);
}

/* Give a buffer back (NULL is a no-op): to the pool, or free when full. */
static void buf_put(tls_ctx *c, int kind, uint8_t *p)
{
    if (!p)
        return;
    if (c->pooled[kind] < POOL_MAX)
        c->pool[kind][c->pooled[kind]++] = p;
    else
        free(p);
}

static void out_release_if_empty(tls_conn *t)
{
    if (t->out_off == t->out_len && !t->lending) {
        buf_put(t->ctx, BUF_OUT, t->out);
        t->out = NULL;
        t->out_off = t->out_len = 0;
    }
}

/* Room to append need bytes to out, or NULL. Never moves lent bytes. */
static uint8_t *out_reserve(tls_conn *t, size_t need)
{
    size_t phys = t->ctx->out_phys;
    if (!t->out) {
        t->out = buf_get(t->ctx, BUF_OUT);
        if (!t->out)
            return NULL;
        t->out_off = t->out_len = 0;
    }
    if (phys - t->out_len < need && !t->lending && t->out_off > 0) {
        memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
        t->out_len -= t->out_off;
        t->out_off = 0;
    }
    if (phys - t->out_len < need)
        return NULL;
    return t->out + t->out_len;
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ud)
{
    (void)ssl;
    tls_conn *t = ud;
    size_t avail = t->in_len - t->in_off;
    if (avail == 0 || sz <= 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = avail < (size_t)sz ? avail : (size_t)sz;
    memcpy(buf, t->in + t->in_off, n);
    t->in_off += n;
    if (t->in_off == t->in_len)
        t->in_off = t->in_len = 0;
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ud)
{
    (void)ssl;
    tls_conn *t = ud;
    if (sz <= 0)
        return 0;
    uint8_t *dst = out_reserve(t, (size_t)sz);
    if (!dst)
        return WOLFSSL_CBIO_ERR_WANT_WRITE; /* wolfSSL keeps it, retries */
    memcpy(dst, buf, (size_t)sz);
    t->out_len += (size_t)sz;
    return sz;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */

tls_conn *tls_conn_new(tls_ctx *ctx)
{
    tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ctx = ctx;
    return t; /* the WOLFSSL object comes with the first bytes (ensure_ssl) */
}

static tls_rv fail_msg(tls_conn *t, const char *msg);

/* wolfSSL's per-connection state is about 15 KiB once the handshake is
 * done, more during it (docs/tls.md): it is created when the
 * client's first bytes arrive, so a connection that never sends any (a
 * silent slowloris, a port scan) costs only this adapter until the
 * handshake timeout. */
static tls_rv ensure_ssl(tls_conn *t)
{
    if (t->ssl)
        return TLS_OK;
    t->ssl = wolfSSL_new(t->ctx->ctx);
    if (!t->ssl)
        return fail_msg(t, "out of memory for the TLS session");
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    /* ALPN: h2 preferred, then http/1.1; a client offering neither (or no
     * ALPN at all) gets a connection without ALPN, served as HTTP/1.1
     * (CONTINUE_ON_MISMATCH: no no_application_protocol alert). */
    char protos[] = "h2,http/1.1";
    if (wolfSSL_UseALPN(t->ssl, protos, (unsigned)(sizeof protos - 1),
                        WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS)
        return fail_msg(t, "cannot set up ALPN");
    return TLS_OK;
}

void tls_conn_free(tls_conn *t)
{
    if (!t)
        return;
    if (t->ssl)
        wolfSSL_free(t->ssl);
    buf_put(t->ctx, BUF_IN, t->in);
    buf_put(t->ctx, BUF_PLAIN, t->plain);
    buf_put(t->ctx, BUF_OUT, t->out);
    free(t);
}

/* Record a fatal error: the connection is done. Returns TLS_ERROR. */
static tls_rv fail_msg(tls_conn *t, const char *msg)
{
    if (!t->final) {
        snprintf(t->err, sizeof t->err, "%s", msg);
        t->final = TLS_ERROR;
    }
    return TLS_ERROR;
}

/* A failed wolfSSL call: its reason, and the alert sent or received. */
static tls_rv fail_ssl(tls_conn *t, int e, const char *what)
{
    if (t->final)
        return TLS_ERROR;
    WOLFSSL_ALERT_HISTORY h;
    memset(&h, 0, sizeof h);
    wolfSSL_get_alert_history(t->ssl, &h);
    char alert[96] = "";
    if (h.last_rx.level == alert_fatal)
        snprintf(alert, sizeof alert, "; peer sent alert %s",
                 wolfSSL_alert_desc_string_long(h.last_rx.code));
    else if (h.last_tx.level == alert_fatal)
        snprintf(alert, sizeof alert, "; alert %s sent",
                 wolfSSL_alert_desc_string_long(h.last_tx.code));
    snprintf(t->err, sizeof t->err, "%s: %s (wolfSSL %d)%s", what, reason(e), e, alert);
    wolfSSL_ERR_clear_error();
    t->final = TLS_ERROR;
    return TLS_ERROR;
}

size_t tls_feed(tls_conn *t, const uint8_t *cipher, size_t n)
{
    if (t->final)
        return n; /* nobody will read it */
    size_t cap = t->ctx->in_cap;
    if (!t->in) {
        t->in = buf_get(t->ctx, BUF_IN);
        if (!t->in) {
            fail_msg(t, "out of memory for TLS input");
            return n;
        }
        t->in_off = t->in_len = 0;
    }
    if (t->in_off > 0 && cap - t->in_len < n) {
        memmove(t->in, t->in + t->in_off, t->in_len - t->in_off);
        t->in_len -= t->in_off;
        t->in_off = 0;
    }
    size_t room = cap - t->in_len;
    size_t take = n < room ? n : room;
    memcpy(t->in + t->in_len, cipher, take);
    t->in_len += take;
    return take;
}

/* Input and plaintext drained: give their memory back. */
static void trim_input(tls_conn *t)
{
    if (t->in && t->in_off == t->in_len) {
        buf_put(t->ctx, BUF_IN, t->in);
        t->in = NULL;
        t->in_off = t->in_len = 0;
    }
    if (t->plain && t->plain_off == t->plain_len) {
        buf_put(t->ctx, BUF_PLAIN, t->plain);
        t->plain = NULL;
        t->plain_off = t->plain_len = 0;
    }
}

/*
 * The first five bytes a client sends must be the header of a handshake
 * record (RFC 8446 5.1: type 22, legacy version 3.x, a length of 1..2^14).
 * wolfSSL's server accepts any version in the first header and waits for
 * whatever length it names, so a peer speaking something else (plain HTTP
 * or h2c on the TLS port, a scanner, random bytes) could hold the
 * connection, and its wolfSSL session (tens of KiB during a handshake),
 * until the handshake timeout. Checked here before wolfSSL sees a byte:
 * such a peer is closed at once, without an alert (it would not
 * understand one). TLS_OK when the header is good,
 * TLS_WANT while fewer than five bytes are in, TLS_ERROR otherwise.
 */
static tls_rv check_first_record(tls_conn *t)
{
    size_t n = t->in ? t->in_len - t->in_off : 0;
    const uint8_t *b = n ? t->in + t->in_off : NULL;
    bool bad = (n >= 1 && b[0] != 22) || (n >= 2 && b[1] != 3);
    if (!bad && n >= 5) {
        size_t len = (size_t)b[3] << 8 | b[4];
        bad = len == 0 || len > 16384;
    }
    if (!bad)
        return n >= 5 ? TLS_OK : TLS_WANT;
    char hex[3 * 5 + 1] = "";
    for (size_t i = 0; i < n && i < 5; i++)
        snprintf(hex + 3 * i, sizeof hex - 3 * i, " %02x", b[i]);
    bool http = n >= 4 && (memcmp(b, "PRI ", 4) == 0 || memcmp(b, "GET ", 4) == 0 ||
                           memcmp(b, "POST", 4) == 0 || memcmp(b, "HEAD", 4) == 0);
    snprintf(t->err, sizeof t->err,
             "not a TLS client: the first bytes%s are not a ClientHello record%s", hex,
             http ? " (plaintext HTTP on the TLS port?)" : "");
    t->final = TLS_ERROR;
    return TLS_ERROR;
}

tls_rv tls_handshake(tls_conn *t)
{
    if (t->final)
        return t->final == TLS_CLOSED && t->hs_done ? TLS_OK : TLS_ERROR;
    if (t->hs_done)
        return TLS_OK;
    if (!t->hello_seen) {
        tls_rv rv = check_first_record(t);
        if (rv != TLS_OK)
            return rv;
        t->hello_seen = true;
    }
    if (ensure_ssl(t) != TLS_OK)
        return TLS_ERROR;
    int r = wolfSSL_accept(t->ssl);
    if (r != WOLFSSL_SUCCESS) {
        int e = wolfSSL_get_error(t->ssl, r);
        if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
            return TLS_WANT;
        return fail_ssl(t, e, "TLS handshake failed");
    }
    char *name = NULL;
    unsigned short len = 0;
    /* "h2", "http/1.1", or none (NULL: the runtime serves HTTP/1.1). */
    t->alpn = NULL;
    if (wolfSSL_ALPN_GetProtocol(t->ssl, &name, &len) == WOLFSSL_SUCCESS) {
        if (len == 2 && memcmp(name, "h2", 2) == 0)
            t->alpn = "h2";
        else if (len == 8 && memcmp(name, "http/1.1", 8) == 0)
            t->alpn = "http/1.1";
    }
    wolfSSL_ERR_clear_error(); /* GetProtocol without ALPN leaves an error queued */
    t->hs_done = true;
    /* wolfSSL frees its handshake state itself at this point, except the
     * key-schedule arrays (5.5 KiB): --enable-distro's OpenVPN support
     * keeps them for keying-material export, which spindle never does.
     * Nothing later needs them: TLS 1.3 tickets were sent with the last
     * flight and take their secret from the session, KeyUpdate works on
     * the traffic secrets (docs/tls.md, "Memory per idle connection"). */
    wolfSSL_FreeArrays(t->ssl);
    return TLS_OK;
}

bool tls_handshake_done(const tls_conn *t)
{
    return t->hs_done;
}

tls_rv tls_read(tls_conn *t, const uint8_t **plain, size_t *len)
{
    *plain = NULL;
    *len = 0;
    if (t->plain_off < t->plain_len) {
        *plain = t->plain + t->plain_off;
        *len = t->plain_len - t->plain_off;
        return TLS_OK;
    }
    if (t->final) {
        trim_input(t);
        return t->final;
    }
    if (!t->hs_done) {
        tls_rv rv = tls_handshake(t);
        if (rv != TLS_OK) {
            if (rv == TLS_ERROR)
                trim_input(t);
            return rv;
        }
    }
    if (!t->plain) {
        t->plain = buf_get(t->ctx, BUF_PLAIN);
        if (!t->plain)
            return fail_msg(t, "out of memory for TLS plaintext");
    }
    int r = wolfSSL_read(t->ssl, t->plain, (int)TLS_MAX_PLAIN);
    if (r > 0) {
        t->plain_off = 0;
        t->plain_len = (size_t)r;
        *plain = t->plain;
        *len = (size_t)r;
        return TLS_OK;
    }
    t->plain_off = t->plain_len = 0;
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
        trim_input(t);
        return TLS_WANT;
    }
    trim_input(t);
    if (e == WOLFSSL_ERROR_ZERO_RETURN) {
        t->final = TLS_CLOSED;
        return TLS_CLOSED;
    }
    return fail_ssl(t, e, "TLS record error");
}

void tls_consume(tls_conn *t, size_t n)
{
    size_t have = t->plain_len - t->plain_off;
    t->plain_off += n < have ? n : have;
    if (t->plain_off == t->plain_len)
        t->plain_off = t->plain_len = 0;
}

size_t tls_write_room(const tls_conn *t)
{
    if (!t->hs_done || t->final == TLS_ERROR || t->notify_sent)
        return 0; /* after the peer's close_notify (TLS_CLOSED) we still write */
    size_t pending = t->out_len - t->out_off;
    size_t cap = t->ctx->out_cap;
    if (pending + REC_OVERHEAD >= cap)
        return 0;
    size_t room = cap - pending - REC_OVERHEAD;
    /* While lent, bytes cannot be moved to the front: count the tail. */
    if (t->out && t->lending) {
        size_t tail = t->ctx->out_phys - t->out_len;
        if (tail <= REC_OVERHEAD)
            return 0;
        if (tail - REC_OVERHEAD < room)
            room = tail - REC_OVERHEAD;
    }
    return room;
}

tls_rv tls_write(tls_conn *t, const struct iovec *iov, int n, size_t *consumed)
{
    size_t done = 0;
    tls_rv rv = TLS_OK;
    int i = 0;
    size_t ioff = 0;
    uint8_t stage[TLS_MAX_PLAIN];

    if (consumed)
        *consumed = 0;
    if (t->final == TLS_ERROR || t->notify_sent)
        return TLS_ERROR;
    if (!t->hs_done)
        return TLS_WANT;
    int maxrec = wolfSSL_GetMaxOutputSize(t->ssl);
    size_t rec_max = maxrec > 0 && (size_t)maxrec < TLS_MAX_PLAIN ? (size_t)maxrec : TLS_MAX_PLAIN;

    for (;;) {
        while (i < n && ioff == iov[i].iov_len) {
            i++;
            ioff = 0;
        }
        if (i >= n)
            break;
        size_t room = tls_write_room(t);
        if (room == 0) {
            rv = TLS_WANT;
            break;
        }
        size_t want = room < rec_max ? room : rec_max;
        const uint8_t *src;
        size_t len;
        size_t here = iov[i].iov_len - ioff;
        if (here >= want || i == n - 1) {
            /* One iovec fills the record (or is the last): no copy. */
            src = (const uint8_t *)iov[i].iov_base + ioff;
            len = here < want ? here : want;
        } else {
            /* Gather small pieces (frame headers, short frames). */
            len = 0;
            int j = i;
            size_t joff = ioff;
            while (j < n && len < want) {
                size_t avail = iov[j].iov_len - joff;
                size_t take = avail < want - len ? avail : want - len;
                memcpy(stage + len, (const uint8_t *)iov[j].iov_base + joff, take);
                len += take;
                joff += take;
                if (joff == iov[j].iov_len) {
                    j++;
                    joff = 0;
                }
            }
            src = stage;
        }
        int w = wolfSSL_write(t->ssl, src, (int)len);
        if (w != (int)len) {
            /* The room check should make this impossible; wolfSSL may
			 * hold a half-sent record now, so the stream is unusable. */
            int e = wolfSSL_get_error(t->ssl, w);
            rv = fail_ssl(t, e, "TLS write failed");
            break;
        }
        done += len;
        /* Advance the iovec cursor by len. */
        size_t adv = len;
        while (adv) {
            size_t avail = iov[i].iov_len - ioff;
            size_t step = avail < adv ? avail : adv;
            ioff += step;
            adv -= step;
            if (ioff == iov[i].iov_len && adv) {
                i++;
                ioff = 0;
            }
        }
    }
    if (consumed)
        *consumed = done;
    return rv;
}

int tls_pending_out(tls_conn *t, struct iovec *iov, int max, size_t *bytes)
{
    size_t n = t->out ? t->out_len - t->out_off : 0;
    if (bytes)
        *bytes = 0;
    if (n == 0 || max < 1 || t->lending)
        return 0;
    iov[0].iov_base = t->out + t->out_off;
    iov[0].iov_len = n;
    t->lending = true;
    t->lent = n;
    if (bytes)
        *bytes = n;
    return 1;
}

void tls_out_commit(tls_conn *t, size_t n)
{
    if (!t->lending)
        return;
    if (n > t->lent)
        n = t->lent;
    t->out_off += n;
    t->lending = false;
    t->lent = 0;
    if (t->out_off == t->out_len)
        out_release_if_empty(t);
}

size_t tls_out_pending(const tls_conn *t)
{
    return t->out ? t->out_len - t->out_off : 0;
}

tls_rv tls_close_notify(tls_conn *t)
{
    if (t->notify_sent)
        return TLS_OK;
    if (t->final == TLS_ERROR)
        return TLS_ERROR;
    t->notify_sent = true;
    if (!t->ssl)
        return TLS_OK; /* no byte ever came: there is no session to close */
    int r = wolfSSL_shutdown(t->ssl);
    /* NOT_DONE: ours went out, the peer's has not come: as intended. */
    if (r == WOLFSSL_SUCCESS || r == WOLFSSL_SHUTDOWN_NOT_DONE)
        return TLS_OK;
    int e = wolfSSL_get_error(t->ssl, r);
    if (e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ)
        return TLS_OK;
    return fail_ssl(t, e, "TLS close_notify failed");
}

size_t tls_conn_buffer_bytes(const tls_conn *t)
{
    return (t->in ? t->ctx->in_cap : 0) + (t->plain ? TLS_MAX_PLAIN : 0) +
           (t->out ? t->ctx->out_phys : 0);
}

const char *tls_error_msg(const tls_conn *t)
{
    return t->err;
}

const char *tls_alpn(const tls_conn *t)
{
    return t->hs_done ? t->alpn : NULL;
}

const char *tls_version(const tls_conn *t)
{
    return t->hs_done ? wolfSSL_get_version(t->ssl) : NULL;
}

const char *tls_cipher(const tls_conn *t)
{
    return t->hs_done ? wolfSSL_get_cipher_name(t->ssl) : NULL;
}

bool tls_session_reused(const tls_conn *t)
{
    return t->hs_done && wolfSSL_session_reused(t->ssl) == 1;
}

/* ------------------------------------------------------------------------ */
/* Key/certificate self-test                                                 */

/* The client's I/O goes straight to the server adapter: it reads what
 * tls_pending_out() lends and writes with tls_feed(). */
static int st_recv(WOLFSSL *ssl, char *buf, int sz, void *ud)
{
    (void)ssl;
    tls_conn *s = ud;
    struct iovec iov;
    size_t n = 0;
    if (sz <= 0 || tls_pending_out(s, &iov, 1, &n) == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t k = n < (size_t)sz ? n : (size_t)sz;
    memcpy(buf, iov.iov_base, k);
    tls_out_commit(s, k);
    return (int)k;
}

static int st_send(WOLFSSL *ssl, char *buf, int sz, void *ud)
{
    (void)ssl;
    size_t took = tls_feed(ud, (const uint8_t *)buf, (size_t)sz);
    return took ? (int)took : WOLFSSL_CBIO_ERR_WANT_WRITE;
}

/*
 * One TLS 1.3 handshake between a server connection of c and a client that
 * checks the server's CertificateVerify signature against the certificate
 * (but not the chain: the certificate may be self-signed). 0 when it
 * completes; -1 with why filled. About 1 ms for a P-256 key.
 */
static int pair_selftest(tls_ctx *c, char *why, size_t len)
{
    int rc = -1;
    WOLFSSL_CTX *cx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    WOLFSSL *cl = cx ? wolfSSL_new(cx) : NULL;
    tls_conn *s = tls_conn_new(c);
    if (!cl || !s) {
        errf(why, len, "out of memory for the key check");
        goto out;
    }
    wolfSSL_set_verify(cl, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_SSLSetIORecv(cl, st_recv);
    wolfSSL_SSLSetIOSend(cl, st_send);
    wolfSSL_SetIOReadCtx(cl, s);
    wolfSSL_SetIOWriteCtx(cl, s);
    char h2[] = "h2";
    (void)wolfSSL_UseALPN(cl, h2, 2, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    for (int round = 0; round < 16; round++) {
        int r = wolfSSL_connect(cl);
        if (r == WOLFSSL_SUCCESS) {
            rc = 0;
            break;
        }
        int e = wolfSSL_get_error(cl, r);
        if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
            errf(why, len, "a test handshake failed: %s", reason(e));
            break;
        }
        if (tls_handshake(s) == TLS_ERROR) {
            errf(why, len, "a test handshake failed: %s", tls_error_msg(s));
            break;
        }
    }
    if (rc != 0 && !why[0])
        errf(why, len, "a test handshake did not complete");
out:
    tls_conn_free(s);
    wolfSSL_free(cl);
    wolfSSL_CTX_free(cx);
    wolfSSL_ERR_clear_error();
    return rc;
}

int tls_sha1(const void *data, size_t len, uint8_t out[20])
{
    if (len > UINT32_MAX)
        return -1;
    return wc_ShaHash(data, (word32)len, out) == 0 ? 0 : -1;
}
