#include "h2_limits.h"

#include "h2_frame.h"

const h2_limits *h2_limits_default(void)
{
    static const h2_limits defaults = H2_LIMITS_DEFAULT_INIT;
    return &defaults;
}

const char *h2_limit_name(h2_limit_id id)
{
    static const char *const names[H2_LIMIT_COUNT] = {
        [H2_LIMIT_RESETS] = "rapid-reset",
        [H2_LIMIT_GLITCHES] = "glitches",
        [H2_LIMIT_STREAMS] = "refused-streams",
        [H2_LIMIT_CONTINUATIONS] = "continuations",
        [H2_LIMIT_HEADER_BLOCK] = "header-block-size",
        [H2_LIMIT_HEADER_LIST] = "header-list-size",
        [H2_LIMIT_SETTINGS_ENTRIES] = "settings-entries",
        [H2_LIMIT_CONTROL_QUEUE] = "control-queue",
        [H2_LIMIT_OUTPUT_BACKLOG] = "output-backlog",
        [H2_LIMIT_MAX_REQUESTS] = "max-requests",
        [H2_LIMIT_PREFACE_TIMEOUT] = "preface-timeout",
        [H2_LIMIT_SETTINGS_TIMEOUT] = "settings-timeout",
        [H2_LIMIT_HEADER_TIMEOUT] = "header-timeout",
        [H2_LIMIT_SEND_TIMEOUT] = "send-timeout",
        [H2_LIMIT_IDLE_TIMEOUT] = "idle-timeout",
        [H2_LIMIT_PING_TIMEOUT] = "ping-timeout",
    };
    return (unsigned)id < H2_LIMIT_COUNT ? names[id] : "unknown";
}

const char *h2_limits_check(const h2_limits *l)
{
    if (l->max_frame_size < H2_MIN_MAX_FRAME_SIZE || l->max_frame_size > H2_MAX_MAX_FRAME_SIZE)
        return "max_frame_size must be within [16384, 16777215]";
    if (l->max_send_frame_size < H2_MIN_MAX_FRAME_SIZE ||
        l->max_send_frame_size > H2_MAX_MAX_FRAME_SIZE)
        return "max_send_frame_size must be within [16384, 16777215]";
    if (l->initial_window_size > H2_MAX_WINDOW)
        return "initial_window_size must be at most 2147483647";
    if (l->connection_window < H2_DEFAULT_WINDOW || l->connection_window > H2_MAX_WINDOW)
        return "connection_window must be within [65535, 2147483647]";
    if (l->max_concurrent_streams == 0)
        return "max_concurrent_streams must be at least 1";
    if (l->max_header_list_size < 1024)
        return "max_header_list_size must be at least 1024";
    if (l->max_header_block < 1024)
        return "max_header_block must be at least 1024";
    if (l->header_list_hard_factor < 1)
        return "header_list_hard_factor must be at least 1";
    if (l->max_header_fields_soft == 0 || l->max_header_fields_hard < l->max_header_fields_soft)
        return "max_header_fields_hard must be at least max_header_fields_soft (>= 1)";
    if (l->reset_burst == 0 || l->glitch_burst == 0)
        return "reset_burst and glitch_burst must be at least 1";
    if (l->max_settings_entries == 0)
        return "max_settings_entries must be at least 1";
    if (l->max_pending_control == 0)
        return "max_pending_control must be at least 1";
    if (l->max_unsent_output < 16384)
        return "max_unsent_output must be at least 16384";
    if (l->max_stream_buffered == 0)
        return "max_stream_buffered must be at least 1";
    if (l->enable_connect_protocol > 1)
        return "enable_connect_protocol must be 0 or 1";
    return 0;
}

void h2_bucket_init(h2_bucket *b, uint32_t burst, uint32_t rate, uint64_t now_ms)
{
    b->last_ms = now_ms;
    b->tokens = burst;
    b->burst = burst;
    b->rate = rate;
}

int h2_bucket_take(h2_bucket *b, uint64_t now_ms)
{
    if (now_ms > b->last_ms && b->rate) {
        uint64_t add = (now_ms - b->last_ms) * b->rate / 1000u;
        if (add) {
            uint64_t t = b->tokens + add;
            b->tokens = t > b->burst ? b->burst : (uint32_t)t;
            /* Advance by the time the added tokens account for, so slow
             * refill rates are not lost to rounding. */
            b->last_ms += add * 1000u / b->rate;
            if (b->tokens == b->burst)
                b->last_ms = now_ms;
        }
    }
    if (b->tokens == 0)
        return -1;
    b->tokens--;
    return 0;
}
