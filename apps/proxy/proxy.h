/* proxy.h - spindle-proxy's pieces (apps/proxy): the relay (main.c) and
 * the gRPC unary route (grpc.c), built only on include/spindle.h. */
#ifndef SPINDLE_APPS_PROXY_H
#define SPINDLE_APPS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spindle.h"

/* One client stream's state (spindle_stream_set_user), freed at on_close. */
typedef struct px_stream {
    spindle_handle h;   /* the client stream, resolved in the call's callbacks */
    spindle_call *call; /* the upstream call, NULL once done */
    bool head_sent;     /* the response head went to the client */
    bool paused;        /* the call is paused: the client's queue is full */
    bool grpc;          /* the gRPC route (grpc.c) */
    /* gRPC: the request message, then the response message. */
    uint8_t *buf;
    size_t len, cap;
    char path[256];
    char status[16]; /* grpc-status and grpc-message from the origin */
    char message[256];
    bool got_status;
} px_stream;

/* The shard's upstream (from on_shard_start's context). */
spindle_upstream *px_upstream(void);

/* Append to st->buf; false when out of memory. */
bool px_append(px_stream *st, const void *data, size_t len);

/* A plain answer to the client (errors). */
void px_answer(spindle_stream *s, uint16_t status, const char *text);

/* The gRPC route: POST /_grpc/<package.Service>/<Method> with the raw
 * request message as body.  grpc_start runs when the body has ended. */
bool grpc_route(const spindle_request *r, px_stream *st);
void grpc_start(spindle_stream *s, px_stream *st);

#endif
