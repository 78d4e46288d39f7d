/* health.h - liveness and readiness answers, and the shutdown delay (not
 * installed; docs/deploy.md).
 *
 * cfg.health_path and cfg.ready_path are answered by spindle before the
 * handler sees the request.  Readiness is one process-wide flag
 * (server.unready), set by the main thread when a stop begins; shards read
 * it when they answer.
 */
#ifndef SPINDLE_CORE_HEALTH_H
#define SPINDLE_CORE_HEALTH_H

#include <signal.h>
#include <stdbool.h>

#include "spindle.h"

typedef struct server server;

/* If req is a GET/HEAD of a health path, answer it on st (which then
 * never reaches the handler: its mode becomes an internal one whose
 * on_close tells nobody) and return true; else false and st is untouched.
 * Shard thread, from the engine's request event. */
bool health_answer(spindle_stream *st, const spindle_request *req);

/* Main thread, after wait_for_stop() and before the stop flag: readiness
 * turns 503, then spindle keeps serving for cfg.shutdown_delay_ms; a second
 * SIGINT/SIGTERM in sigs (or a shard failing) ends the wait early. */
void health_shutdown_delay(server *srv, const sigset_t *sigs);

#endif
