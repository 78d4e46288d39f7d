/* metrics.h - the counters in the Prometheus text exposition format 0.0.4
 * (not installed), served on the main listeners at cfg.metrics_path
 * (metrics_serve) and by the admin listener (admin.h).
 *
 * Families (all prefixed spindle_): connections_accepted_total{tls},
 * connections_open{shard}, connections_cap_reached_total,
 * tls_handshakes_total, tls_handshake_failures_total,
 * requests_started_total, requests_total{protocol},
 * responses_total{method,code} (code 1xx..5xx or "none"),
 * request_body_bytes_total, response_body_bytes_total,
 * streams_reset_total, request_duration_seconds (histogram),
 * limit_hits_total{limit} (h2_limit_name()), offloaded_requests_total,
 * offload_streams{shard}, offload_queue_depth{shard},
 * memory_allocated_bytes{shard},
 * pool_bytes{shard,state}, access_log_lines_total,
 * access_log_dropped_total, shards.
 */
#ifndef SPINDLE_CORE_METRICS_H
#define SPINDLE_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "spindle.h"

typedef struct server server;

/* The exposition text for srv (any thread).  malloc'd, *len its length;
 * NULL without memory. */
char *metrics_render(const server *srv, size_t *len);
/* On the shard, for a request head: when it asks for cfg.metrics_path
 * (GET or HEAD, no body), answer it and return true. */
bool metrics_serve(spindle_stream *st, const spindle_request *req);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
