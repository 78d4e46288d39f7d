/*
 * io/tls_tickets.c - session ticket keys shared by all shards (io/tls.h)
 * and the wolfSSL ticket callback that uses them (io/tls_tickets.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* wolfSSL's feature macros live in options.h: it goes before any other
 * wolfSSL header, or struct layouts disagree with the library. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

#include "tls.h"
#include "tls_tickets.h"

#define TK_NAME  16u
#define TK_KEY   CHACHA20_POLY1305_AEAD_KEYSIZE      /* 32 */
#define TK_NONCE CHACHA20_POLY1305_AEAD_IV_SIZE      /* 12 */
#define TK_TAG   CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE /* 16 */

typedef struct ticket_key {
    uint8_t name[TK_NAME];
    uint8_t key[TK_KEY];
    uint64_t born; /* CLOCK_MONOTONIC seconds */
    bool live;
} ticket_key;

struct tls_ticket_keys {
    pthread_mutex_t mu; /* one lock per ticket issued or checked: cheap */
    ticket_key cur, prev;
    uint32_t lifetime;
};

static uint64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static int fill_random(void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static void wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}

/* Caller holds k->mu. */
static int rotate_locked(tls_ticket_keys *k, uint64_t now)
{
    ticket_key fresh;
    if (fill_random(fresh.name, sizeof fresh.name) || fill_random(fresh.key, sizeof fresh.key)) {
        wipe(&fresh, sizeof fresh);
        return -1;
    }
    fresh.born = now;
    fresh.live = true;
    k->prev = k->cur;
    k->cur = fresh;
    wipe(&fresh, sizeof fresh);
    return 0;
}

tls_ticket_keys *tls_ticket_keys_new(uint32_t lifetime_s)
{
    tls_ticket_keys *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    if (lifetime_s == 0)
        lifetime_s = 3600;
    if (lifetime_s > 7u * 24 * 3600)
        lifetime_s = 7u * 24 * 3600;
    k->lifetime = lifetime_s;
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        free(k);
        return NULL;
    }
    if (rotate_locked(k, mono_s()) != 0) {
        tls_ticket_keys_free(k);
        return NULL;
    }
    return k;
}

int tls_ticket_keys_rotate(tls_ticket_keys *k)
{
    pthread_mutex_lock(&k->mu);
    int rc = rotate_locked(k, mono_s());
    pthread_mutex_unlock(&k->mu);
    return rc;
}

void tls_ticket_keys_free(tls_ticket_keys *k)
{
    if (!k)
        return;
    pthread_mutex_destroy(&k->mu);
    wipe(k, sizeof *k);
    free(k);
}

/*
 * wolfSSL's ticket callback. enc: name the key, make an IV, encrypt the
 * ticket in place, put the tag in mac. !enc: find the key by name, decrypt
 * in place. AAD = key name | IV | ticket length, as wolfSSL's own callback.
 * An unknown or expired key is REJECT (a full handshake), never FATAL: a
 * ticket from before a restart is not an attack.
 */
int tls_ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                  unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                  int enc, unsigned char *ticket, int in_len, int *out_len, void *ud)
{
    tls_ticket_keys *k = ud;
    uint8_t key[TK_KEY];
    bool found = false, from_prev = false;

    if (in_len < 0 || in_len > 0xffff)
        return WOLFSSL_TICKET_RET_REJECT;
    if (enc && fill_random(iv, WOLFSSL_TICKET_IV_SZ) != 0)
        return WOLFSSL_TICKET_RET_REJECT;

    pthread_mutex_lock(&k->mu);
    uint64_t now = mono_s();
    if (enc) {
        if (now - k->cur.born >= k->lifetime)
            (void)rotate_locked(k, now); /* on failure keep the old key */
        memcpy(key_name, k->cur.name, TK_NAME);
        memcpy(key, k->cur.key, TK_KEY);
        found = true;
    } else {
        const ticket_key *cand[2] = {&k->cur, &k->prev};
        for (int i = 0; i < 2; i++) {
            const ticket_key *c = cand[i];
            if (c->live && now - c->born < 2u * (uint64_t)k->lifetime &&
                memcmp(c->name, key_name, TK_NAME) == 0) {
                memcpy(key, c->key, TK_KEY);
                found = true;
                from_prev = i == 1;
                break;
            }
        }
    }
    pthread_mutex_unlock(&k->mu);
    if (!found)
        return WOLFSSL_TICKET_RET_REJECT;

    uint8_t aad[TK_NAME + WOLFSSL_TICKET_IV_SZ + 2];
    memcpy(aad, key_name, TK_NAME);
    memcpy(aad + TK_NAME, iv, WOLFSSL_TICKET_IV_SZ);
    aad[sizeof aad - 2] = (uint8_t)(in_len >> 8);
    aad[sizeof aad - 1] = (uint8_t)in_len;

    int rc;
    if (enc)
        rc = wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof aad, ticket, (word32)in_len, ticket,
                                         mac);
    else
        rc = wc_ChaCha20Poly1305_Decrypt(key, iv, aad, sizeof aad, ticket, (word32)in_len, mac,
                                         ticket);
    wipe(key, sizeof key);
    if (rc != 0)
        return WOLFSSL_TICKET_RET_REJECT;
    *out_len = in_len;
    /* TLS 1.2: issue a fresh ticket when the old key decrypted this one. */
    if (!enc && from_prev && wolfSSL_GetVersion(ssl) < WOLFSSL_TLSV1_3)
        return WOLFSSL_TICKET_RET_CREATE;
    return WOLFSSL_TICKET_RET_OK;
}

uint32_t tls_ticket_keys_lifetime(const tls_ticket_keys *k)
{
    return k->lifetime;
}
