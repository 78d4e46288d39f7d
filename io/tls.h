/*
 * io/tls.h - TLS for spindle connections: a sans-socket adapter over wolfSSL.
 *
 * The ring does all socket I/O; this adapter never touches a socket. wolfSSL
 * is given custom I/O callbacks that read ciphertext from, and write it to,
 * two bounded in-memory buffers owned by the adapter (docs/tls.md):
 *
 *   socket --recv--> tls_feed() --> [in]  --wolfSSL--> tls_read()  --> h2 engine
 *   socket <--send-- tls_pending_out()/tls_out_commit() <-- [out] <--wolfSSL-- tls_write() <-- h2 engine
 *
 * Policy (security.md, "TLS abuse"): TLS 1.2 with ECDHE and AEAD suites only
 * (AES-128/256-GCM, ChaCha20-Poly1305) and TLS 1.3; TLS 1.1 and below are
 * refused; X25519 is the preferred group; ALPN offers "h2" then
 * "http/1.1" (h2 preferred); a client offering neither, or no ALPN at all,
 * completes the handshake without ALPN (the runtime serves it HTTP/1.1).
 * Session tickets are
 * encrypted with keys shared across shards (tls_ticket_keys), so a client
 * resumes on whichever shard accepts its next connection.
 *
 * Threads. A tls_ctx belongs to one shard thread, and so do the tls_conns
 * made from it: every tls_ctx_* and tls_conn function is owner-thread-only.
 * tls_ticket_keys is the exception: one object shared by all shards, every
 * function on it safe from any thread.
 *
 * Errors. Functions that can fail for a reason an operator must fix
 * (tls_ctx_new) fill a message naming the cause (the file, the OS error,
 * wolfSSL's reason). Per connection, TLS_ERROR comes with tls_error_msg().
 * wolfSSL's headers stay inside tls.c: this header includes none of them.
 */
#ifndef SPINDLE_IO_TLS_H
#define SPINDLE_IO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iovec;

typedef struct tls_ctx tls_ctx;
typedef struct tls_conn tls_conn;
typedef struct tls_ticket_keys tls_ticket_keys;

/* Largest plaintext in one record, and the most ciphertext one record can
 * take on the wire (TLS 1.2 allows 2048 bytes of expansion). */
#define TLS_MAX_PLAIN  16384u
#define TLS_MAX_RECORD (5u + 16384u + 2048u)

/* Results. Negative values are final for the connection. */
typedef enum tls_rv {
    TLS_OK = 0,      /* done / bytes available */
    TLS_WANT = 1,    /* nothing to do now: feed more ciphertext, or send
			    what tls_pending_out() has and call again */
    TLS_CLOSED = -1, /* the peer sent close_notify: no more plaintext
                        (writing goes on until tls_close_notify: a
                        half-close, like a TCP FIN) */
    TLS_ERROR = -2   /* fatal: tls_error_msg() says why; an alert for the
			    peer may be waiting in tls_pending_out() */
} tls_rv;

/* ------------------------------------------------------------------------ */
/* Session ticket keys, shared by all shards                                  */

/*
 * Keys that encrypt session tickets (ChaCha20-Poly1305, 256-bit keys drawn
 * from getrandom()). Two generations are live: the current key encrypts new
 * tickets, the previous one still decrypts. A key encrypts for lifetime_s
 * seconds, then rotates (lazily, on the first ticket issued after that, or
 * by tls_ticket_keys_rotate()); it decrypts until 2 * lifetime_s after it
 * was made, and tickets are advertised with a lifetime of lifetime_s, so a
 * ticket never outlives its key. lifetime_s 0 means 3600 (as nginx/h2o
 * rotate hourly); it is capped at 7 days (RFC 8446).
 * Returns NULL when out of memory or when getrandom() fails. Any thread;
 * make it once, before the shards, and give it to every tls_ctx.
 */
tls_ticket_keys *tls_ticket_keys_new(uint32_t lifetime_s);

/* Make a new current key now; the current one becomes the previous one and
 * the previous one is forgotten (its tickets then give full handshakes).
 * Returns 0, or -1 when getrandom() fails (keys unchanged). Any thread. */
int tls_ticket_keys_rotate(tls_ticket_keys *k);

/* Free the keys (wiped first). Every tls_ctx using them must be freed
 * before. NULL is a no-op. */
void tls_ticket_keys_free(tls_ticket_keys *k);

/* ------------------------------------------------------------------------ */
/* Per-shard context                                                         */

typedef struct tls_config {
    const char *cert_file;    /* PEM: the certificate, then its chain */
    const char *key_file;     /* PEM: its private key */
    tls_ticket_keys *tickets; /* shared ticket keys; NULL: wolfSSL's own
				     per-context keys (resumption then works
				     only on the shard that issued the ticket) */
    uint32_t recv_chunk;      /* most bytes one recv hands to tls_feed()
				     (the ring's buffer size; default 16384) */
    uint32_t out_cap;         /* ciphertext buffered for the socket before
				     tls_write() stops taking plaintext
				     (default 65536) */
} tls_config;

/*
 * Create a shard's context: loads cert_file and key_file, checks that they
 * belong together, and sets the policy above. The first call in the process
 * initialises wolfSSL (once, thread-safe).
 * Returns 0 and *out, or -1 with err filled (errlen > 0), naming the cause:
 * "cannot read certificate file X: No such file or directory", "X: not a PEM
 * certificate (...)", "private key K does not match certificate C", ...
 * cfg is copied; the file names are not kept. tls_ctx_free() releases it.
 */
int tls_ctx_new(const tls_config *cfg, tls_ctx **out, char *err, size_t errlen);

/* Free a context; every tls_conn made from it must be freed first. NULL is
 * a no-op. */
void tls_ctx_free(tls_ctx *ctx);

/* Free wolfSSL's per-thread state: with FP_ECC (Debian's feature set) every
 * thread that does ECC fills a fixed-point cache of its own (about 3 MiB
 * after a few handshakes), which nothing frees when the thread exits. Call
 * on each thread that used a tls_ctx or tls_conn (tls_ctx_new() itself
 * does ECC), after freeing them, before the thread exits. Harmless on a
 * thread that did no ECC. */
void tls_thread_cleanup(void);

/* ------------------------------------------------------------------------ */
/* Per-connection state                                                      */

/* A server-side connection in the handshake state. NULL when out of memory.
 * wolfSSL's session object is created when the first bytes arrive (a
 * client that sends nothing costs only this adapter).  Buffers are
 * taken on first use and given back whenever they run empty (to a pool
 * of at most 8 per kind in ctx, then to free()), so an idle connection
 * holds only wolfSSL's own state (about 15 KiB after the
 * handshake with scripts/build_wolfssl.sh's build, 60 KiB with Debian's
 * library: see tls_conn_buffer_bytes() and docs/tls.md). */
tls_conn *tls_conn_new(tls_ctx *ctx);

/* Free the connection and any buffered bytes. Pointers lent by
 * tls_pending_out() or tls_read() die with it: free only after the send
 * that borrowed them completed (or was cancelled). NULL is a no-op. */
void tls_conn_free(tls_conn *t);

/*
 * Copy up to n bytes of ciphertext from the socket into the adapter. Returns
 * the number taken. It takes all n whenever n <= cfg.recv_chunk and the
 * previous input was drained (tls_read() returned TLS_WANT, TLS_CLOSED or
 * TLS_ERROR); it takes less only while the caller is not reading plaintext
 * (the engine paused), which is the backpressure: hold the rest, stop
 * reading the socket, and feed it again after reading resumes. After a
 * final result the bytes are taken and dropped.
 */
size_t tls_feed(tls_conn *t, const uint8_t *cipher, size_t n);

/*
 * Drive the handshake with what was fed. TLS_OK once it is complete (also on
 * every later call), TLS_WANT when it needs more input or its output is
 * waiting in tls_pending_out() (send it, whatever the result), TLS_ERROR when
 * it failed: tls_error_msg() says why (version, no shared cipher, ALPN) and
 * the alert for the peer is in tls_pending_out(): send it, then close.
 * tls_read() calls this itself, so a connection needs it only to act on the
 * handshake's end (logging, stats).
 */
tls_rv tls_handshake(tls_conn *t);

/* True once the handshake has completed. */
bool tls_handshake_done(const tls_conn *t);

/*
 * Decrypted bytes, without a copy: *plain and *len describe plaintext held
 * by the adapter (at most one record, TLS_MAX_PLAIN bytes). Returns TLS_OK
 * with *len > 0; TLS_WANT (*len 0) when no complete record is buffered, or
 * the handshake is still going (it is driven from here), or reading is
 * blocked by a full output buffer (send tls_pending_out(), then call again);
 * TLS_CLOSED after the peer's close_notify; TLS_ERROR on a bad record or a
 * failed handshake. The bytes stay until tls_consume() takes them: a caller
 * that can take only part (the engine paused) consumes that part and comes
 * back later, the rest still there. The pointer is valid until the next
 * tls_read(), tls_consume() or tls_conn_free().
 */
tls_rv tls_read(tls_conn *t, const uint8_t **plain, size_t *len);

/* Mark n bytes of the last tls_read() as used (n <= *len). */
void tls_consume(tls_conn *t, size_t n);

/*
 * Plaintext bytes tls_write() takes now: 0 before the handshake completes,
 * after TLS_ERROR or our close_notify (not after the peer's), or while the ciphertext waiting for the socket is at
 * cfg.out_cap. A budget for the engine's output (h2_conn_out_prepare()).
 */
size_t tls_write_room(const tls_conn *t);

/*
 * Encrypt plaintext from iov[0..n) into records of up to TLS_MAX_PLAIN bytes
 * (small iovecs are gathered into one record; the bytes are copied, so the
 * caller may release them as soon as this returns). *consumed (may be NULL)
 * is the number of plaintext bytes taken, up to tls_write_room(). Returns
 * TLS_OK when everything was taken, TLS_WANT when room ran out first (send
 * tls_pending_out(), then write the rest), TLS_ERROR on a failure (the
 * bytes counted in *consumed are still encrypted and buffered).
 */
tls_rv tls_write(tls_conn *t, const struct iovec *iov, int n, size_t *consumed);

/*
 * Lend the ciphertext waiting for the socket: fills iov[0..max) (max >= 1;
 * one entry today) and returns how many were filled (0: nothing to send).
 * *bytes (may be NULL) is their total. The memory stays valid and unchanged
 * until tls_out_commit() or tls_conn_free(), whatever tls_write() or
 * tls_read() add meanwhile, so the iovecs can go to a sendmsg in flight.
 * One lending at a time: call tls_out_commit() before lending again.
 */
int tls_pending_out(tls_conn *t, struct iovec *iov, int max, size_t *bytes);

/* The socket took n bytes of the lent ciphertext (n <= the lent total; 0 is
 * fine, for a cancelled or failed send); ends the lending. */
void tls_out_commit(tls_conn *t, size_t n);

/* Ciphertext waiting for the socket, lent or not. */
size_t tls_out_pending(const tls_conn *t);

/*
 * Queue a close_notify alert (once; later calls are no-ops). Returns TLS_OK
 * with the alert in tls_pending_out(), or TLS_ERROR (nothing to send; close
 * anyway). After it, tls_write() takes nothing.
 */
tls_rv tls_close_notify(tls_conn *t);

/* Bytes the adapter's own buffers hold right now (in, plain, out: 0 when
 * idle). wolfSSL's state comes on top: about 15 KiB per idle connection
 * with scripts/build_wolfssl.sh's build, 60 KiB with Debian's library
 * (docs/tls.md). For stats and tests. */
size_t tls_conn_buffer_bytes(const tls_conn *t);

/* Why the connection failed (after TLS_ERROR), or "" */
const char *tls_error_msg(const tls_conn *t);

/* The ALPN protocol selected ("h2" or "http/1.1"), or NULL: none was
 * selected, or the handshake is not done. */
const char *tls_alpn(const tls_conn *t);

/* "TLSv1.3" / "TLSv1.2", or NULL before the handshake is done. */
const char *tls_version(const tls_conn *t);

/* The cipher suite's name, e.g. "TLS13-AES128-GCM-SHA256", or NULL. */
const char *tls_cipher(const tls_conn *t);

/* True when the handshake resumed a session (a ticket was accepted). */
bool tls_session_reused(const tls_conn *t);

/* SHA-1 of data (wolfSSL's): the WebSocket handshake's Sec-WebSocket-Accept
 * (RFC 6455 §4.2.2), nothing secret.  0, or -1 on failure.  Any thread. */
int tls_sha1(const void *data, size_t len, uint8_t out[20]);

#endif /* SPINDLE_IO_TLS_H */
