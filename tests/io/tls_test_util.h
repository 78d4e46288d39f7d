/*
 * tests/io/tls_test_util.h - what the TLS adapter's tests share (test_tls.c,
 * test_tls_tickets.c).
 *
 * No sockets: the server is the adapter (tls_feed / tls_read / tls_write /
 * tls_pending_out), the client a plain WOLFSSL object whose custom I/O
 * callbacks read and write two byte queues. pump() moves bytes between the
 * two, which is exactly what the ring does for a real connection.
 *
 * Certificates: certs_make() (a suite's .init) makes a CA, a P-256 server
 * certificate and an unrelated key with the openssl CLI in a fresh
 * temporary directory; certs_remove() (.fini) removes them.
 */
#ifndef SPINDLE_TESTS_IO_TLS_TEST_UTIL_H
#define SPINDLE_TESTS_IO_TLS_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tls.h"

/* The certificates' paths (certs_make). */
extern char g_dir[64];
extern char g_ca[128], g_cert[128], g_key[128], g_other_key[128], g_junk[128];
/* Most ciphertext the server buffered at once (pump_chunked). */
extern size_t g_out_peak;

void certs_make(void);
void certs_remove(void);

/* A growable byte queue. */
typedef struct bq {
    uint8_t *p;
    size_t off, len, cap;
} bq;
void bq_put(bq *q, const void *src, size_t n);
size_t bq_size(const bq *q);
void bq_drop(bq *q, size_t n);

/* The client: a WOLFSSL over two queues. */
typedef struct client {
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    bq in;          /* from the server */
    bq out;         /* to the server */
    size_t trickle; /* > 0: hand wolfSSL at most this many bytes per read */
} client;
typedef enum { V_ANY, V_TLS13, V_TLS12, V_TLS11 } cl_version;
/* alpn: a comma list ("h2", "http/1.1", "h2,http/1.1") or NULL for none. */
void client_init(client *c, cl_version v, const char *alpn, const char *suites);
void client_free(client *c);

/* A server context with the test certificate (out_cap 0: the default). */
tls_ctx *server_ctx(tls_ticket_keys *keys, uint32_t out_cap);
/* Move the server's pending ciphertext to the client (in pieces of at most
 * `chunk` bytes) and the client's to the server.  True if anything moved. */
bool pump_chunked(tls_conn *s, client *c, size_t chunk);
bool pump(tls_conn *s, client *c);

typedef struct hs_result {
    tls_rv server;
    int client_err; /* 0 when the client finished */
} hs_result;
/* Run the handshake to its end on both sides. */
hs_result handshake(tls_conn *s, client *c);
void assert_ok(hs_result r, tls_conn *s);
/* The alert the client last received, or -1. */
int client_rx_alert(client *c);
/* A byte pattern for bulk data. */
uint8_t pat(size_t i);

#endif
