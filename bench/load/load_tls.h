/* load_tls.h - the TLS client of spindle-load: wolfSSL over two in-memory
 * buffers, so the worker's ring does all socket I/O (as io/tls.h does for
 * the server side, which has no client role).
 *
 *   socket --recv--> ltls_feed() --> [in] --wolfSSL--> ltls_read() --> protocol
 *   socket <--writev-- ltls_out()/ltls_out_commit() <-- [out] <-- ltls_write() <-- protocol
 *
 * ALPN offers one protocol (h2, or http/1.1 with --h1) and the handshake
 * fails when the server selects none.  Verification: on unless the
 * context is made with insecure (-k, for self-signed test certificates);
 * the chain is checked against the CA file given (--cacert), else the
 * system's bundle, and the host name against the certificate's names
 * (wolfSSL_check_domain_name: DNS names, and an IP literal compared as a
 * string).  SNI carries the host when it is a name.
 *
 * Thread: a context and its connections belong to one worker thread;
 * ltls_ctx_new may run on several threads at once.
 */
#ifndef SPINDLE_LOAD_TLS_H
#define SPINDLE_LOAD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ltls_ctx ltls_ctx;
typedef struct ltls ltls;

typedef struct ltls_opts {
    const char *ca_file; /* NULL: the system's bundle */
    bool insecure;       /* no verification at all */
    const char *alpn;    /* "h2" or "http/1.1" */
} ltls_opts;

/* 0 and *out, or -1 with err filled (the CA file, wolfSSL's reason). */
int ltls_ctx_new(const ltls_opts *o, ltls_ctx **out, char *err, size_t errlen);
void ltls_ctx_free(ltls_ctx *c); /* NULL: no-op */

/* A connection to host (the URI's host: SNI and the name check).  Its
 * ClientHello is waiting in ltls_out() on return.  NULL on failure. */
ltls *ltls_new(ltls_ctx *c, const char *host);
/* Free it; pointers lent by ltls_out() die with it. NULL: no-op. */
void ltls_free(ltls *t);

/* Append n bytes of ciphertext from the socket.  0, or -1 (no memory). */
int ltls_feed(ltls *t, const uint8_t *p, size_t n);

/* Decrypt into buf (cap bytes), driving the handshake first.  Returns the
 * bytes (> 0), 0 when more input is needed (send ltls_out() meanwhile), or
 * -1 when the connection is over: the peer's close_notify, a bad record,
 * a failed handshake (ltls_error() says why). */
int ltls_read(ltls *t, uint8_t *buf, size_t cap);

/* Plaintext ltls_write() takes now: 0 before the handshake completes or
 * while much ciphertext waits for the socket. */
size_t ltls_write_room(const ltls *t);
/* Encrypt the iovecs' bytes (copied; at most ltls_write_room()).  Returns
 * the bytes taken, or -1 on failure. */
long ltls_write(ltls *t, const struct iovec *iov, size_t n);

/* Lend the ciphertext waiting for the socket: *p, and the length (0:
 * none).  Stays valid until ltls_out_commit(), whatever is appended
 * meanwhile.  One lending at a time. */
size_t ltls_out(ltls *t, const uint8_t **p);
/* The socket took n of the lent bytes; ends the lending. */
void ltls_out_commit(ltls *t, size_t n);

bool ltls_handshake_done(const ltls *t);
/* The protocol the server selected, or NULL. */
const char *ltls_alpn(const ltls *t);
/* Why the connection failed, or "" */
const char *ltls_error(const ltls *t);
/* True when the failure was the handshake's (certificate, ALPN, version):
 * every other connection would fail the same way. */
bool ltls_handshake_failed(const ltls *t);

/* Free wolfSSL's per-thread state (the worker thread calls it last). */
void ltls_thread_cleanup(void);

#endif
