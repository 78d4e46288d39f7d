/* bench/static_head.c - spindle-static-head: answers every GET of "/" the
 * way spindle-static answers a cache hit of a small file (the same five
 * fields, the body from memory by reference), either with ordinary fields
 * (spindle_respond, validated and encoded per response: what
 * spindle-static did before prepared fields) or with fields prepared once
 * (--prepared: spindle_respond_fields).  For bench/instr.sh, which cannot
 * run spindle-static itself (valgrind 3.19 does not know openat2); and for
 * tests/integration/test_fields.py (/own-fields, /own-prepared below):
 *
 *   bash bench/instr.sh build-bench/bench/spindle-static-head -- --body 4096 [--prepared]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "spindle.h"

static const char *body_arg = "13";
static bool prepared, blocking;
static uint8_t *body;
static size_t body_len;
static char clen[24];
static spindle_header head[5];
static spindle_fields *prep;

/* For tests/integration/test_fields.py: heads that set `date` and
 * `server` themselves, as ordinary fields (/own-fields) or prepared ones
 * (/own-prepared), which spindle must not add again. */
static const spindle_header own[] = {{"date", "Thu, 01 Jan 2026 00:00:00 GMT", 4, 29},
                                     {"server", "app/1", 6, 5}};
static spindle_fields *own_prep;

static bool path_is(const spindle_request *r, const char *p)
{
    return r->path.len == strlen(p) && memcmp(r->path.ptr, p, r->path.len) == 0;
}

static void on_request(spindle_stream *s, const spindle_request *r, void *app)
{
    (void)app;
    if (path_is(r, "/own-fields")) {
        spindle_respond_fields(s, 200, own, 2, prep, false); /* prep has content-length */
        spindle_send(s, body, body_len, true, NULL, NULL);
        return;
    }
    if (path_is(r, "/own-prepared")) {
        /* No content-length anywhere: the head is held until the send
         * (resphdr_hold), prepared bytes and all. */
        spindle_respond_fields(s, 200, head, 1, own_prep, false);
        spindle_send(s, body, body_len, true, NULL, NULL);
        return;
    }
    if (!path_is(r, "/")) {
        spindle_respond(s, 404, NULL, 0, true);
        return;
    }
    if (prepared)
        spindle_respond_fields(s, 200, NULL, 0, prep, false);
    else
        spindle_respond(s, 200, head, 5, false);
    spindle_send(s, body, body_len, true, NULL, NULL);
}

static void on_listen(uint32_t shard, const char *address, uint16_t port, void *app)
{
    (void)app;
    printf("listening on http://%s:%u (shard %u)\n", address, port, shard);
    fflush(stdout);
}

static void usage(FILE *f)
{
    fputs("usage: spindle-static-head [--port P] [--shards N] [--log-level L] [--body BYTES]\n"
          "                           [--prepared] [--blocking] [--set name=value]...\n",
          f);
}

int main(int argc, char **argv)
{
    spindle_config cfg = spindle_config_default();
    const app_arg args[] = {
        {"--address", "address", NULL, NULL},  {"--port", "port", NULL, NULL},
        {"--shards", "shards", NULL, NULL},    {"--log-level", "log-level", NULL, NULL},
        {"--body", NULL, &body_arg, NULL},     {"--prepared", NULL, NULL, &prepared},
        {"--blocking", NULL, NULL, &blocking},
    };
    const app_cli cli = {"spindle-static-head", usage, args, sizeof args / sizeof args[0]};
    int rc = app_args_main(&cli, argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    body_len = strtoul(body_arg, NULL, 10);
    body = malloc(body_len ? body_len : 1);
    if (!body)
        return 1;
    memset(body, 'x', body_len);
    snprintf(clen, sizeof clen, "%zu", body_len);
    /* What spindle-static's plan_response() sends for a full 200. */
    head[0] = (spindle_header){"content-type", "text/html; charset=utf-8", 12, 24};
    head[1] = (spindle_header){"content-length", clen, 14, (uint32_t)strlen(clen)};
    head[2] = (spindle_header){"last-modified", "Mon, 07 Dec 2026 03:00:00 GMT", 13, 29};
    head[3] = (spindle_header){"etag", "\"d-1880a2b4c5d6e7f8\"", 4, 20};
    head[4] = (spindle_header){"accept-ranges", "bytes", 13, 5};
    if (spindle_fields_new(head, 5, &prep) != SPINDLE_OK ||
        spindle_fields_new(own, 2, &own_prep) != SPINDLE_OK)
        return 1;
    /* --blocking: handlers on the offload threads (their prepared fields
     * reach the shard inside the respond command). */
    spindle_handler h = {.on_request = on_request, .blocking = blocking};
    spindle_hooks hooks = {.on_listen = on_listen};
    rc = spindle_run(&cfg, &h, &hooks, NULL);
    spindle_fields_free(prep);
    spindle_fields_free(own_prep);
    free(body);
    return rc == 0 ? 0 : 1;
}
