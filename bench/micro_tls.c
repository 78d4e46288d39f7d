/* micro_tls.c - bulk crypto of the wolfSSL spindle actually links (the same
 * spindle::wolfssl target as io/tls.c): one operation seals or opens one
 * full TLS record, 16 KiB of plaintext, the size io/tls.c writes.
 *
 *   tls/aes128gcm_16k           wc_AesGcmEncrypt: TLS_AES_128_GCM_SHA256's
 *                               record protection, what the server does per
 *                               record it sends
 *   tls/aes128gcm_16k_decrypt   wc_AesGcmDecrypt with tag check (records received)
 *   tls/chacha20poly1305_16k    wc_ChaCha20Poly1305_Encrypt, for comparison:
 *                               the suite clients without AES hardware prefer
 *
 * Each op uses a fresh nonce (the TLS 1.3 way: static IV xor sequence number)
 * and the 5-byte record header as AAD.  Notes: aesni_build = wolfSSL was
 * configured with AES-NI (WOLFSSL_AESNI in its options.h), aesni_used = the
 * key schedule chose the AES-NI path on this CPU, wolfssl_version (first
 * case only) = major*10000 + minor*100 + patch of the library linked, asked at
 * run time (50504 = 5.5.4). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

#include "micro.h"

#define RECORD 16384u
#define TAG    16u
#define NONCE  12u

typedef struct tls_state {
    Aes aes;
    uint8_t key[32];
    uint8_t iv[NONCE];
    uint8_t aad[5];
    uint8_t plain[RECORD];
    uint8_t cipher[RECORD];
    uint8_t tag[TAG];
    uint8_t sealed_tag[TAG]; /* the tag of cipher under nonce(0), for decrypt */
    uint8_t opened[RECORD];
    int failed;
} tls_state;

/* The TLS 1.3 per-record nonce: the static IV xor the sequence number,
 * right-aligned. */
static void nonce_for(const tls_state *st, uint64_t seq, uint8_t out[NONCE])
{
    memcpy(out, st->iv, NONCE);
    for (unsigned i = 0; i < 8; i++)
        out[NONCE - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}

static uint64_t run_gcm_encrypt(void *arg, uint64_t n)
{
    tls_state *st = arg;
    uint8_t nonce[NONCE];
    for (uint64_t i = 0; i < n; i++) {
        nonce_for(st, i, nonce);
        if (wc_AesGcmEncrypt(&st->aes, st->cipher, st->plain, RECORD, nonce, NONCE, st->tag, TAG,
                             st->aad, sizeof st->aad) != 0)
            st->failed = 1;
        bench_keep_ptr(st->cipher);
    }
    return 0;
}

static uint64_t run_gcm_decrypt(void *arg, uint64_t n)
{
    tls_state *st = arg;
    uint8_t nonce[NONCE];
    nonce_for(st, 0, nonce);
    for (uint64_t i = 0; i < n; i++) {
        /* The same record each time: a valid tag is what a receiver sees. */
        if (wc_AesGcmDecrypt(&st->aes, st->opened, st->cipher, RECORD, nonce, NONCE, st->sealed_tag,
                             TAG, st->aad, sizeof st->aad) != 0)
            st->failed = 1;
        bench_keep_ptr(st->opened);
    }
    return 0;
}

static uint64_t run_chacha_encrypt(void *arg, uint64_t n)
{
    tls_state *st = arg;
    uint8_t nonce[NONCE];
    for (uint64_t i = 0; i < n; i++) {
        nonce_for(st, i, nonce);
        if (wc_ChaCha20Poly1305_Encrypt(st->key, nonce, st->aad, sizeof st->aad, st->plain, RECORD,
                                        st->cipher, st->tag) != 0)
            st->failed = 1;
        bench_keep_ptr(st->cipher);
    }
    return 0;
}

static void notes(bench *b, const tls_state *st, bool aes, bool version)
{
#ifdef WOLFSSL_AESNI
    bench_note(b, "aesni_build", 1);
    if (aes)
        bench_note(b, "aesni_used", st->aes.use_aesni ? 1 : 0);
#else
    (void)st;
    (void)aes;
    bench_note(b, "aesni_build", 0);
#endif
    if (version) {
        uint32_t v = wolfSSL_lib_version_hex(); /* 0xMMmmmppp: 0x05005004 = 5.5.4 */
        bench_note(b, "wolfssl_version",
                   (double)((v >> 24 & 0xff) * 10000u + (v >> 12 & 0xfff) * 100u + (v & 0xfff)));
    }
}

void micro_tls(bench *b)
{
    static const char enc[] = "tls/aes128gcm_16k", dec[] = "tls/aes128gcm_16k_decrypt",
                      cc[] = "tls/chacha20poly1305_16k";
    if (!bench_want(b, enc) && !bench_want(b, dec) && !bench_want(b, cc))
        return;
    tls_state *st = calloc(1, sizeof *st);
    if (!st) {
        bench_skip(b, enc, "out of memory");
        return;
    }
    for (unsigned i = 0; i < sizeof st->key; i++)
        st->key[i] = (uint8_t)(i * 7 + 1);
    for (unsigned i = 0; i < NONCE; i++)
        st->iv[i] = (uint8_t)(0xa5 ^ i);
    for (unsigned i = 0; i < RECORD; i++)
        st->plain[i] = (uint8_t)(i * 31 + 7);
    /* TLSCiphertext header: application_data, legacy version 0x0303,
     * length of ciphertext + tag. */
    st->aad[0] = 23;
    st->aad[1] = 3;
    st->aad[2] = 3;
    st->aad[3] = (uint8_t)((RECORD + TAG) >> 8);
    st->aad[4] = (uint8_t)((RECORD + TAG) & 0xff);

    const bench_opts rec = {.unit = "16 KiB record", .bytes_per_op = RECORD};
    bool aes_ok = wc_AesInit(&st->aes, NULL, INVALID_DEVID) == 0 &&
                  wc_AesGcmSetKey(&st->aes, st->key, 16) == 0;
    if (!aes_ok) {
        bench_skip(b, enc, "wc_AesInit/wc_AesGcmSetKey failed");
        bench_skip(b, dec, "wc_AesInit/wc_AesGcmSetKey failed");
    } else {
        st->failed = 0;
        if (bench_run(b, enc, run_gcm_encrypt, st, &rec)) {
            notes(b, st, true, true);
            if (st->failed)
                bench_note(b, "errors", 1);
        }
        uint8_t nonce[NONCE];
        nonce_for(st, 0, nonce);
        st->failed = wc_AesGcmEncrypt(&st->aes, st->cipher, st->plain, RECORD, nonce, NONCE,
                                      st->sealed_tag, TAG, st->aad, sizeof st->aad) != 0;
        if (bench_run(b, dec, run_gcm_decrypt, st, &rec)) {
            notes(b, st, true, false);
            if (st->failed || memcmp(st->opened, st->plain, RECORD) != 0)
                bench_note(b, "errors", 1);
        }
        wc_AesFree(&st->aes);
    }
    st->failed = 0;
    if (bench_run(b, cc, run_chacha_encrypt, st, &rec)) {
        notes(b, st, false, false);
        if (st->failed)
            bench_note(b, "errors", 1);
    }
    free(st);
}
