/*
 * io/tls_tickets.h - what io/tls.c needs of the ticket keys (private to
 * io/; the keys' own API, tls_ticket_keys_new/rotate/free, is in tls.h).
 * Include <wolfssl/options.h> before this header.
 */
#ifndef SPINDLE_IO_TLS_TICKETS_H
#define SPINDLE_IO_TLS_TICKETS_H

#include <stdint.h>
#include <wolfssl/ssl.h>

#include "tls.h"

/* wolfSSL's session ticket callback (wolfSSL_CTX_set_TicketEncCb), its
 * context (wolfSSL_CTX_set_TicketEncCtx) a tls_ticket_keys.  enc: encrypt
 * the ticket in place under the current key; !enc: decrypt it with the key
 * its name gives.  Returns WOLFSSL_TICKET_RET_OK, _CREATE (TLS 1.2: the
 * previous key decrypted it, issue a fresh one) or _REJECT (unknown or
 * expired key, bad tag: a full handshake).  Any shard thread. */
int tls_ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                  unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                  int enc, unsigned char *ticket, int in_len, int *out_len, void *ud);

/* The lifetime the keys were made with, seconds (after defaults and caps). */
uint32_t tls_ticket_keys_lifetime(const tls_ticket_keys *k);

#endif
