/*
 * tests/io/test_tls_tickets.c - io/tls_tickets: session ticket keys shared
 * across shards (resumption on another shard, rotation, expiry, a stranger's
 * keys), against a wolfSSL client in memory (tls_test_util.h).
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "tls_test_util.h"

TestSuite(tls_tickets, .init = certs_make, .fini = certs_remove);

/* ------------------------------------------------------------------------ */
/* Session tickets across shards                                             */

/* A full handshake with ctx_a, then a resumption attempt against ctx_b with
 * the ticket the client got. Returns whether ctx_b resumed. */
static bool resume_across(tls_ctx *ctx_a, tls_ctx *ctx_b, cl_version v)
{
    tls_conn *s = tls_conn_new(ctx_a);
    client c;
    client_init(&c, v, "h2", NULL);
    assert_ok(handshake(s, &c), s);
    cr_assert_not(tls_session_reused(s));
    WOLFSSL_SESSION *sess = wolfSSL_get1_session(c.ssl);
    cr_assert_not_null(sess);
    tls_conn_free(s);

    tls_conn *s2 = tls_conn_new(ctx_b);
    client c2;
    client_init(&c2, v, "h2", NULL);
    /* same client context, as a browser would have */
    cr_assert_eq(wolfSSL_set_session(c2.ssl, sess), WOLFSSL_SUCCESS);
    assert_ok(handshake(s2, &c2), s2);
    bool reused = tls_session_reused(s2);
    cr_assert_eq(reused, wolfSSL_session_reused(c2.ssl) == 1);
    /* Resumed or not, the connection works. */
    char msg[] = "after resumption";
    struct iovec iov = {msg, sizeof msg - 1};
    cr_assert_eq(tls_write(s2, &iov, 1, NULL), TLS_OK);
    pump(s2, &c2);
    char got[32];
    cr_assert_eq(wolfSSL_read(c2.ssl, got, sizeof got), (int)sizeof msg - 1);

    wolfSSL_SESSION_free(sess);
    tls_conn_free(s2);
    client_free(&c);
    client_free(&c2);
    return reused;
}

Test(tls_tickets, ticket_resumes_on_another_shard)
{
    tls_ticket_keys *keys = tls_ticket_keys_new(600);
    cr_assert_not_null(keys);
    tls_ctx *shard0 = server_ctx(keys, 0);
    tls_ctx *shard1 = server_ctx(keys, 0);

    cr_assert(resume_across(shard0, shard1, V_TLS13), "TLS 1.3 ticket not accepted by shard 1");
    cr_assert(resume_across(shard1, shard0, V_TLS12), "TLS 1.2 ticket not accepted by shard 0");

    tls_ctx_free(shard0);
    tls_ctx_free(shard1);
    tls_ticket_keys_free(keys);
}

Test(tls_tickets, ticket_keys_rotate_and_expire)
{
    tls_ticket_keys *keys = tls_ticket_keys_new(600);
    tls_ticket_keys *other = tls_ticket_keys_new(600);
    tls_ctx *a = server_ctx(keys, 0);
    tls_ctx *b = server_ctx(keys, 0);
    tls_ctx *stranger = server_ctx(other, 0);

    /* Another server's keys: a full handshake, not a failure. */
    cr_assert_not(resume_across(a, stranger, V_TLS13));

    /* One rotation: the previous key still decrypts. Done in the middle,
	 * between issuing and using the ticket. */
    tls_conn *s = tls_conn_new(a);
    client c;
    client_init(&c, V_TLS13, "h2", NULL);
    assert_ok(handshake(s, &c), s);
    WOLFSSL_SESSION *sess = wolfSSL_get1_session(c.ssl);
    cr_assert_eq(tls_ticket_keys_rotate(keys), 0);
    for (int rot = 1; rot <= 2; rot++) {
        tls_conn *s2 = tls_conn_new(b);
        client c2;
        client_init(&c2, V_TLS13, "h2", NULL);
        cr_assert_eq(wolfSSL_set_session(c2.ssl, sess), WOLFSSL_SUCCESS);
        assert_ok(handshake(s2, &c2), s2);
        if (rot == 1)
            cr_assert(tls_session_reused(s2), "one rotation must keep the ticket");
        else
            cr_assert_not(tls_session_reused(s2), "two rotations must drop it");
        tls_conn_free(s2);
        client_free(&c2);
        cr_assert_eq(tls_ticket_keys_rotate(keys), 0);
    }
    wolfSSL_SESSION_free(sess);
    tls_conn_free(s);
    client_free(&c);
    tls_ctx_free(a);
    tls_ctx_free(b);
    tls_ctx_free(stranger);
    tls_ticket_keys_free(keys);
    tls_ticket_keys_free(other);
}
