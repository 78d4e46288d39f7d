/* config.c - spindle_config defaults, setting by name, validation, and the
 * translation of the public limits into the protocol core's h2_limits. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h1_limits.h"
#include "h2_limits.h"

spindle_config spindle_config_default(void)
{
    const h2_limits *d = h2_limits_default();
    const h1_limits *d1 = h1_limits_default();
    spindle_config c = {
        .address = "127.0.0.1",
        .port = 8080,
        .shards = 0,
        .pin = true,
        .max_conns = 0, /* derived from RLIMIT_NOFILE by spindle_run (conncap.h) */
        .drain_timeout_ms = 10000,
        .drain_grace_ms = 1000,
        .offload_threads = 1,
        .post_queue_size = 4096,
        .send_nocqe = 1, /* docs/io-profile.md, third round */
        .log_level = 2,
        .tls_port = 8443,
        .tls_handshake_timeout_ms = 10000,
        .tls_ticket_lifetime_s = 3600,
        .server_header = "spindle",
        .date_header = true,
        .socket_activation = true,
        .limits =
            {
                .max_concurrent_streams = d->max_concurrent_streams,
                .initial_window_size = d->initial_window_size,
                .connection_window = d->connection_window,
                .max_frame_size = d->max_frame_size,
                .max_header_list_size = d->max_header_list_size,
                .max_header_fields = d->max_header_fields_soft,
                .max_continuations = d->max_continuations,
                .reset_burst = d->reset_burst,
                .reset_rate = d->reset_rate,
                .glitch_burst = d->glitch_burst,
                .glitch_rate = d->glitch_rate,
                .max_requests = d->max_requests,
                .max_stream_buffered = d->max_stream_buffered,
                .idle_timeout_ms = d->idle_timeout_ms,
                .preface_timeout_ms = d->preface_timeout_ms,
                .settings_timeout_ms = d->settings_timeout_ms,
                .header_timeout_ms = d->header_block_timeout_ms,
                .send_timeout_ms = d->send_timeout_ms,
                .ping_interval_ms = d->ping_interval_ms,
                .ping_timeout_ms = d->ping_timeout_ms,
            },
        .h1 =
            {
                .max_request_line = d1->max_request_line,
                .max_field_line = d1->max_field_line,
                .max_fields = d1->max_fields,
                .max_head = d1->max_head,
                .max_chunk_line = d1->max_chunk_line,
                .max_body = d1->max_body,
                .max_pipelined = d1->max_pipelined,
                .max_requests = d1->max_requests,
                .max_unsent_output = d1->max_unsent_output,
                .header_timeout_ms = d1->header_timeout_ms,
                .idle_timeout_ms = d1->idle_timeout_ms,
                .ws_idle_timeout_ms = d1->ws_idle_timeout_ms,
            },
        .h2c_upgrade = true,
        .lingering_time_ms = 30000,   /* nginx's lingering_time */
        .lingering_timeout_ms = 5000, /* nginx's lingering_timeout */
        .lingering_bytes = 4u << 20,
    };
    return c;
}

void config_to_h2_limits(const spindle_config *cfg, h2_limits *out)
{
    const spindle_limits *l = &cfg->limits;
    *out = *h2_limits_default();
    out->max_concurrent_streams = l->max_concurrent_streams;
    out->initial_window_size = l->initial_window_size;
    out->connection_window = l->connection_window;
    out->max_frame_size = l->max_frame_size;
    out->max_header_list_size = l->max_header_list_size;
    out->max_header_fields_soft = l->max_header_fields;
    if (out->max_header_fields_hard < l->max_header_fields)
        out->max_header_fields_hard = l->max_header_fields;
    out->max_continuations = l->max_continuations;
    out->reset_burst = l->reset_burst;
    out->reset_rate = l->reset_rate;
    out->glitch_burst = l->glitch_burst;
    out->glitch_rate = l->glitch_rate;
    out->max_requests = l->max_requests;
    out->max_stream_buffered = l->max_stream_buffered;
    out->idle_timeout_ms = l->idle_timeout_ms;
    out->preface_timeout_ms = l->preface_timeout_ms;
    out->settings_timeout_ms = l->settings_timeout_ms;
    out->header_block_timeout_ms = l->header_timeout_ms;
    out->send_timeout_ms = l->send_timeout_ms;
    out->ping_interval_ms = l->ping_interval_ms;
    out->ping_timeout_ms = l->ping_timeout_ms;
}

void config_to_h1_limits(const spindle_config *cfg, h1_limits *out)
{
    const spindle_h1_limits *l = &cfg->h1;
    *out = *h1_limits_default();
    out->max_request_line = l->max_request_line;
    out->max_field_line = l->max_field_line;
    out->max_fields = l->max_fields;
    out->max_head = l->max_head;
    out->max_chunk_line = l->max_chunk_line;
    out->max_body = l->max_body;
    out->max_pipelined = l->max_pipelined;
    out->max_requests = l->max_requests;
    out->max_unsent_output = l->max_unsent_output;
    out->header_timeout_ms = l->header_timeout_ms;
    out->idle_timeout_ms = l->idle_timeout_ms;
    out->ws_idle_timeout_ms = l->ws_idle_timeout_ms;
}

static void seterr(char *err, size_t errlen, const char *msg, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s", msg, arg ? arg : "", arg ? "'" : "");
}

/* A whole unsigned decimal number within [0, max]. */
static int parse_u32(const char *v, uint32_t max, uint32_t *out)
{
    if (!v || !*v || *v == '-' || *v == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n > max)
        return -1;
    *out = (uint32_t)n;
    return 0;
}

typedef struct u32_opt {
    const char *name;
    size_t offset; /* into spindle_config */
    uint32_t max;
} u32_opt;

#define LIM(field) offsetof(spindle_config, limits) + offsetof(spindle_limits, field)
static const u32_opt u32_opts[] = {
    {"shards", offsetof(spindle_config, shards), 1024},
    {"max-conns", offsetof(spindle_config, max_conns), 1u << 20},
    {"drain-timeout", offsetof(spindle_config, drain_timeout_ms), 3600000},
    {"offload-threads", offsetof(spindle_config, offload_threads), 256},
    {"zc-threshold", offsetof(spindle_config, zc_threshold), 1u << 30},
    {"ring-spin-us", offsetof(spindle_config, ring_spin_us), 1000000},
    {"ring-poll-us", offsetof(spindle_config, ring_poll_us), 1000000},
    {"send-nocqe", offsetof(spindle_config, send_nocqe), 1},
    {"post-queue-size", offsetof(spindle_config, post_queue_size), 1u << 20},
    {"max-concurrent-streams", LIM(max_concurrent_streams), 1u << 20},
    {"initial-window-size", LIM(initial_window_size), 2147483647u},
    {"connection-window", LIM(connection_window), 2147483647u},
    {"max-frame-size", LIM(max_frame_size), 16777215u},
    {"max-header-list-size", LIM(max_header_list_size), 1u << 24},
    {"max-header-fields", LIM(max_header_fields), 100000},
    {"max-continuations", LIM(max_continuations), 1000},
    {"reset-burst", LIM(reset_burst), UINT32_MAX},
    {"reset-rate", LIM(reset_rate), UINT32_MAX},
    {"glitch-burst", LIM(glitch_burst), UINT32_MAX},
    {"glitch-rate", LIM(glitch_rate), UINT32_MAX},
    {"max-requests", LIM(max_requests), UINT32_MAX},
    {"max-stream-buffered", LIM(max_stream_buffered), 1u << 30},
    {"idle-timeout", LIM(idle_timeout_ms), 86400000},
    {"preface-timeout", LIM(preface_timeout_ms), 86400000},
    {"settings-timeout", LIM(settings_timeout_ms), 86400000},
    {"header-timeout", LIM(header_timeout_ms), 86400000},
    {"send-timeout", LIM(send_timeout_ms), 86400000},
    {"ping-interval", LIM(ping_interval_ms), 86400000},
    {"ping-timeout", LIM(ping_timeout_ms), 86400000},
    {"tls-handshake-timeout", offsetof(spindle_config, tls_handshake_timeout_ms), 86400000},
    {"tls-ticket-lifetime", offsetof(spindle_config, tls_ticket_lifetime_s), 604800},
    {"shutdown-delay", offsetof(spindle_config, shutdown_delay_ms), 3600000},
    {"drain-grace", offsetof(spindle_config, drain_grace_ms), 3600000},
    {"lingering-time", offsetof(spindle_config, lingering_time_ms), 3600000},
    {"lingering-timeout", offsetof(spindle_config, lingering_timeout_ms), 3600000},
    {"lingering-bytes", offsetof(spindle_config, lingering_bytes), 1u << 30},
#define H1(field) offsetof(spindle_config, h1) + offsetof(spindle_h1_limits, field)
    {"h1-max-request-line", H1(max_request_line), 1u << 24},
    {"h1-max-field-line", H1(max_field_line), 1u << 24},
    {"h1-max-fields", H1(max_fields), 100000},
    {"h1-max-head", H1(max_head), 1u << 24},
    {"h1-max-chunk-line", H1(max_chunk_line), 1u << 20},
    {"h1-max-pipelined", H1(max_pipelined), 1024},
    {"h1-max-requests", H1(max_requests), UINT32_MAX},
    {"h1-max-unsent-output", H1(max_unsent_output), 1u << 30},
    {"h1-header-timeout", H1(header_timeout_ms), 86400000},
    {"h1-idle-timeout", H1(idle_timeout_ms), 86400000},
    {"h1-ws-idle-timeout", H1(ws_idle_timeout_ms), 86400000},
};

/* The operators' view options (strings are referenced, not copied).
 * Returns 1 when name is not one of them, else 0 or SPINDLE_EINVAL. */
static int set_ops_option(spindle_config *cfg, const char *name, const char *value, char *err,
                          size_t errlen)
{
    if (strcmp(name, "metrics-path") == 0 || strcmp(name, "admin-address") == 0) {
        bool path = name[0] == 'm';
        if (path ? value[0] != '/' : !*value) {
            seterr(err, errlen,
                   path ? "metrics-path must start with '/', not '" : "admin-address is empty",
                   path ? value : NULL);
            return SPINDLE_EINVAL;
        }
        *(path ? &cfg->metrics_path : &cfg->admin_address) = value;
        return 0;
    }
    if (strcmp(name, "admin-port") == 0) {
        uint32_t port;
        if (parse_u32(value, 65535, &port)) {
            seterr(err, errlen, "admin-port must be a number within 0..65535, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->admin_port = (uint16_t)port;
        return 0;
    }
    if (strcmp(name, "access-log") == 0) {
        cfg->access_log = *value ? value : NULL; /* "" turns it off */
        return 0;
    }
    if (strcmp(name, "access-log-format") == 0) {
        if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0) {
            seterr(err, errlen, "access-log-format must be text or json, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->access_log_format = value[0] == 'j';
        return 0;
    }
    if (strcmp(name, "server-header") == 0) {
        cfg->server_header = *value ? value : NULL; /* "" turns it off */
        return 0;
    }
    if (strcmp(name, "date-header") == 0) {
        uint32_t b;
        if (parse_u32(value, 1, &b)) {
            seterr(err, errlen, "date-header must be 0 or 1, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->date_header = b != 0;
        return 0;
    }
    return 1;
}

/* The deployment options that are not plain numbers: 0 when name is one
 * of them and value is good, SPINDLE_EINVAL (err set) when it is one and
 * value is bad, 1 when name is not one of them. */
static int config_set_deploy(spindle_config *cfg, const char *name, const char *value, char *err,
                             size_t errlen)
{
    const char **path = NULL;
    if (strcmp(name, "health-path") == 0)
        path = &cfg->health_path;
    else if (strcmp(name, "ready-path") == 0)
        path = &cfg->ready_path;
    if (path) {
        if (value[0] != '/') {
            seterr(err, errlen, "health and ready paths must start with '/', not '", value);
            return SPINDLE_EINVAL;
        }
        *path = value;
        return 0;
    }
    if (strcmp(name, "upgrade-socket") == 0) {
        if (!*value || strlen(value) >= 108) {
            seterr(err, errlen, "upgrade-socket must be a path of 1..107 bytes, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->upgrade_socket = value;
        return 0;
    }
    if (strcmp(name, "socket-activation") == 0) {
        uint32_t b;
        if (parse_u32(value, 1, &b)) {
            seterr(err, errlen, "socket-activation must be 0 or 1, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->socket_activation = b != 0;
        return 0;
    }
    return 1;
}

/* The listeners' options: 1 when name is not one of them, else 0 or
 * SPINDLE_EINVAL (err set). */
static int set_listen_option(spindle_config *cfg, const char *name, const char *value, char *err,
                             size_t errlen)
{
    if (strcmp(name, "address") == 0) {
        if (!*value) {
            seterr(err, errlen, "address must not be empty", NULL);
            return SPINDLE_EINVAL;
        }
        cfg->address = value;
        return 0;
    }
    if (strcmp(name, "port") == 0) {
        uint32_t port;
        if (parse_u32(value, 65535, &port)) {
            seterr(err, errlen, "port must be a number within 0..65535, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->port = (uint16_t)port;
        return 0;
    }
    if (strcmp(name, "tls-port") == 0) {
        uint32_t port;
        if (parse_u32(value, 65535, &port)) {
            seterr(err, errlen, "tls-port must be a number within 0..65535, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->tls_port = (uint16_t)port;
        return 0;
    }
    if (strcmp(name, "tls-cert") == 0 || strcmp(name, "tls-key") == 0) {
        if (!*value) {
            seterr(err, errlen,
                   name[4] == 'c' ? "tls-cert must not be empty" : "tls-key must not be empty",
                   NULL);
            return SPINDLE_EINVAL;
        }
        if (name[4] == 'c')
            cfg->tls_cert = value;
        else
            cfg->tls_key = value;
        return 0;
    }
    return 1;
}

/* pin, h2c-upgrade, h1-max-body, log-level: as set_listen_option(). */
static int set_misc_option(spindle_config *cfg, const char *name, const char *value, char *err,
                           size_t errlen)
{
    if (strcmp(name, "pin") == 0) {
        uint32_t b;
        if (parse_u32(value, 1, &b)) {
            seterr(err, errlen, "pin must be 0 or 1, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->pin = b != 0;
        return 0;
    }
    if (strcmp(name, "h2c-upgrade") == 0) {
        uint32_t b;
        if (parse_u32(value, 1, &b)) {
            seterr(err, errlen, "h2c-upgrade must be 0 or 1, not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->h2c_upgrade = b != 0;
        return 0;
    }
    if (strcmp(name, "h1-max-body") == 0) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(value, &end, 10);
        if (!*value || *value == '-' || *value == '+' || errno || *end) {
            seterr(err, errlen, "h1-max-body must be a number of bytes (0: unlimited), not '",
                   value);
            return SPINDLE_EINVAL;
        }
        cfg->h1.max_body = n;
        return 0;
    }
    if (strcmp(name, "log-level") == 0) {
        uint32_t lv;
        if (parse_u32(value, 3, &lv)) {
            seterr(err, errlen, "log-level must be 0..3 (error, warn, info, debug), not '", value);
            return SPINDLE_EINVAL;
        }
        cfg->log_level = (int)lv;
        return 0;
    }
    return 1;
}

/* The plain numbers of u32_opts: as set_listen_option(). */
static int set_u32_option(spindle_config *cfg, const char *name, const char *value, char *err,
                          size_t errlen)
{
    for (size_t i = 0; i < sizeof u32_opts / sizeof u32_opts[0]; i++) {
        const u32_opt *o = &u32_opts[i];
        if (strcmp(name, o->name) != 0)
            continue;
        uint32_t v;
        if (parse_u32(value, o->max, &v)) {
            if (err && errlen)
                snprintf(err, errlen, "%s: '%s' is not a number within 0..%" PRIu32, name, value,
                         o->max);
            return SPINDLE_EINVAL;
        }
        memcpy((char *)cfg + o->offset, &v, sizeof v);
        return 0;
    }
    return 1;
}

int spindle_config_set(spindle_config *cfg, const char *name, const char *value, char *err,
                       size_t errlen)
{
    if (!name || !value) {
        seterr(err, errlen, "missing option name or value", NULL);
        return SPINDLE_EINVAL;
    }
    int (*const setters[])(spindle_config *, const char *, const char *, char *, size_t) = {
        set_listen_option, config_set_deploy, set_misc_option, set_ops_option, set_u32_option,
    };
    for (size_t i = 0; i < sizeof setters / sizeof setters[0]; i++) {
        int rc = setters[i](cfg, name, value, err, errlen);
        if (rc != 1)
            return rc;
    }
    seterr(err, errlen, "unknown option '", name);
    return SPINDLE_EINVAL;
}

int spindle_config_set_pair(spindle_config *cfg, const char *pair, char *err, size_t errlen)
{
    const char *eq = pair ? strchr(pair, '=') : NULL;
    char name[64];
    if (!eq || eq == pair || (size_t)(eq - pair) >= sizeof name) {
        seterr(err, errlen, "expected name=value, got '", pair ? pair : "");
        return SPINDLE_EINVAL;
    }
    memcpy(name, pair, (size_t)(eq - pair));
    name[eq - pair] = '\0';
    return spindle_config_set(cfg, name, eq + 1, err, errlen);
}

int spindle_config_check(const spindle_config *cfg, char *err, size_t errlen)
{
    h2_limits l;
    config_to_h2_limits(cfg, &l);
    const char *why = h2_limits_check(&l);
    if (why) {
        /* Name the option as the command line spells it. */
        char msg[160];
        snprintf(msg, sizeof msg, "%s", why);
        for (char *p = msg; *p && *p != ' '; p++)
            if (*p == '_')
                *p = '-';
        seterr(err, errlen, msg, NULL);
        return SPINDLE_EINVAL;
    }
    h1_limits l1;
    config_to_h1_limits(cfg, &l1);
    why = h1_limits_check(&l1);
    if (why) {
        char msg[160];
        snprintf(msg, sizeof msg, "h1-%s", why);
        for (char *p = msg; *p && *p != ' '; p++)
            if (*p == '_')
                *p = '-';
        seterr(err, errlen, msg, NULL);
        return SPINDLE_EINVAL;
    }
    if (cfg->access_log_format != 0 && cfg->access_log_format != 1) {
        seterr(err, errlen, "access_log_format must be 0 (text) or 1 (json)", NULL);
        return SPINDLE_EINVAL;
    }
    uint32_t pq = cfg->post_queue_size;
    if (pq < 2 || pq > (1u << 20) || (pq & (pq - 1))) {
        seterr(err, errlen, "post-queue-size must be a power of two within 2..1048576", NULL);
        return SPINDLE_EINVAL;
    }
    if (!cfg->address || !*cfg->address) {
        seterr(err, errlen, "address must not be empty", NULL);
        return SPINDLE_EINVAL;
    }
    /* TLS: the files themselves are checked by spindle_run() (tls_ctx_new
     * names the file and the OS or wolfSSL error). */
    if (cfg->tls_key && !cfg->tls_cert) {
        seterr(err, errlen, "tls-key is set but tls-cert is not (TLS needs both)", NULL);
        return SPINDLE_EINVAL;
    }
    if (cfg->tls_cert) {
        if (!cfg->tls_key) {
            seterr(err, errlen, "tls-cert is set but tls-key is not (TLS needs both)", NULL);
            return SPINDLE_EINVAL;
        }
        if (cfg->tls_port != 0 && cfg->tls_port == cfg->port) {
            seterr(err, errlen, "tls-port must differ from port (h2c and TLS listen apart)", NULL);
            return SPINDLE_EINVAL;
        }
        if (cfg->tls_handshake_timeout_ms == 0) {
            seterr(err, errlen, "tls-handshake-timeout must be at least 1 ms", NULL);
            return SPINDLE_EINVAL;
        }
    }
    return 0;
}

const char *spindle_strerror(int e)
{
    switch (e) {
    case SPINDLE_OK: return "success";
    case SPINDLE_EINVAL: return "invalid argument or configuration";
    case SPINDLE_ESTATE: return "not valid in the stream's state";
    case SPINDLE_ECLOSED: return "stream or connection closed";
    case SPINDLE_ENOMEM: return "out of memory";
    case SPINDLE_ESYS: return "system call failed";
    case SPINDLE_EURING: return "io_uring unavailable";
    case SPINDLE_EAGAIN: return "queue full, try again later";
    case SPINDLE_ETIMEDOUT: return "timed out";
    case SPINDLE_EUPSTREAM: return "upstream connection failed or stream reset";
    }
    return "unknown error";
}
