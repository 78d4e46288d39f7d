#include "h1_limits.h"

const h1_limits *h1_limits_default(void)
{
    static const h1_limits defaults = H1_LIMITS_DEFAULT_INIT;
    return &defaults;
}

const char *h1_limit_name(h1_limit_id id)
{
    static const char *const names[H1_LIMIT_COUNT] = {
        [H1_LIMIT_REQUEST_LINE] = "h1-request-line",
        [H1_LIMIT_FIELD_LINE] = "h1-field-line",
        [H1_LIMIT_FIELDS] = "h1-fields",
        [H1_LIMIT_HEAD] = "h1-head-size",
        [H1_LIMIT_CHUNK_LINE] = "h1-chunk-line",
        [H1_LIMIT_BODY] = "h1-body-size",
        [H1_LIMIT_PIPELINED] = "h1-pipelined",
        [H1_LIMIT_OUTPUT_BACKLOG] = "h1-output-backlog",
        [H1_LIMIT_MAX_REQUESTS] = "h1-max-requests",
        [H1_LIMIT_HEADER_TIMEOUT] = "h1-header-timeout",
        [H1_LIMIT_IDLE_TIMEOUT] = "h1-idle-timeout",
        [H1_LIMIT_WS_IDLE_TIMEOUT] = "h1-ws-idle-timeout",
    };
    return (unsigned)id < H1_LIMIT_COUNT ? names[id] : "unknown";
}

const char *h1_limits_check(const h1_limits *l)
{
    if (l->max_request_line < 64)
        return "max_request_line must be at least 64";
    if (l->max_field_line < 64)
        return "max_field_line must be at least 64";
    if (l->max_fields == 0 || l->max_fields > 100000)
        return "max_fields must be within [1, 100000]";
    if (l->max_head < l->max_request_line || l->max_head < l->max_field_line)
        return "max_head must be at least max_request_line and max_field_line";
    if (l->max_head > (1u << 30))
        return "max_head must be at most 1 GiB";
    if (l->max_chunk_line < 32)
        return "max_chunk_line must be at least 32";
    if (l->max_pipelined == 0 || l->max_pipelined > 1024)
        return "max_pipelined must be within [1, 1024]";
    if (l->max_unsent_output < 16384)
        return "max_unsent_output must be at least 16384";
    return 0;
}
