/* h2_recv.h - the receive side's buffers, private to proto/ (the state
 * machine itself is h2_conn_recv, h2_conn.h).
 *
 * States: R_PREFACE, R_HEAD (frame header), R_PAYLOAD (a non-DATA payload:
 * used in place when the caller's buffer holds it whole, else copied into a
 * pooled 16 KiB block), R_DATA_PADLEN and R_DATA (DATA is streamed: bytes
 * go out as H2_EV_DATA pointing into the caller's input), R_SKIP, R_DEAD.
 */
#ifndef SPINDLE_H2_RECV_H
#define SPINDLE_H2_RECV_H

#include "h2_conn_internal.h"

/* Give back the buffer a partial non-DATA payload was copied into. */
void h2_recv_pbuf_release(h2_conn *c);

#endif
