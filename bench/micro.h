/* micro.h - the case groups of spindle-micro, one per micro_*.c file.
 * Each registers and runs its cases through the harness (bench_run). */
#ifndef SPINDLE_BENCH_MICRO_H
#define SPINDLE_BENCH_MICRO_H

#include "harness.h"

void micro_frame(bench *b); /* frame/: header parse and write, frame decode */
void micro_hpack(bench *b); /* hpack/: block decode and encode, Huffman */
void micro_spsc(bench *b);  /* spsc/: one core and across two threads */
void micro_timer(bench *b); /* timer/: add+cancel, re-arm, advance */
void micro_conn(bench *b);  /* conn/: send-path gathering, full request cycle */
void micro_hop(bench *b);   /* hop/: the request cycle with and without an SPSC hop */
void micro_ring(bench *b);  /* ring/: NOP and loopback round trips via io_uring */
void micro_h1(bench *b);    /* h1/: HTTP/1.1 head parse, request cycle, pipelined
                            * cycle */
void micro_tls(bench *b);   /* tls/: AES-GCM and ChaCha20-Poly1305 of the linked wolfSSL */

#endif
