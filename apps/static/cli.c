/* cli.c - spindle-static's command line: the core's options through
 * app_args_main() (apps/common), the cache's own here. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "cli.h"
#include "fmap.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: spindle-static --root DIR [--address A] [--port P] [--shards N]\n"
               "                      [--log-level 0..3] [--set name=value]...\n"
               "                      [--cache-entries N] [--cache-bytes N]\n"
               "                      [--cache-file-max N] [--revalidate-ms N] [--no-leases]\n"
               "                      [--ring-spin-us N]\n"
               "  --root DIR        the directory to serve (required)\n"
               "  --address A       listen address (default 127.0.0.1)\n"
               "  --port P          TCP port, 0 = any free port (default 8080)\n"
               "  --shards N        worker threads, one per core (default: online CPUs)\n"
               "  --log-level L     0 error, 1 warn, 2 info, 3 debug (default 2)\n"
               "  --set name=value  any limit, e.g. offload-threads=2 (file I/O runs there),\n"
               "                    max-stream-buffered=262144 (see spindle.h)\n"
               "  --cache-entries N open-file cache entries per shard, 0 = no cache (1024)\n"
               "  --cache-bytes N   file bytes the cache keeps per shard (33554432)\n"
               "  --cache-file-max N  files up to N bytes are kept in memory (65536)\n"
               "  --revalidate-ms N a cached file is checked again after N ms (1000)\n"
               "  --no-leases       no read leases on large files: each hit fstat()s it\n");
    fputs(APP_USAGE_RING_SPIN, f);
}

/* Parse a number for an option of ours into *out (at most max); v NULL: the
 * option was not given, *out keeps its default. */
static bool parse_u64(const char *a, const char *v, uint64_t max, uint64_t *out)
{
    if (!v)
        return true;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-' || x > max) {
        fprintf(stderr, "spindle-static: %s wants a number from 0 to %" PRIu64 ", not '%s'\n", a,
                max, v);
        return false;
    }
    *out = x;
    return true;
}

/* The cache options' strings into o->cache; false after saying why. */
static bool cache_options(const char *const v[4], options *o)
{
    uint64_t entries = o->cache.entries, reval = o->cache.revalidate_ms;
    if (!parse_u64("--cache-entries", v[0], 1u << 20, &entries) ||
        !parse_u64("--cache-bytes", v[1], 1ull << 40, &o->cache.bytes) ||
        !parse_u64("--cache-file-max", v[2], SMALL_MAX, &o->cache.content_max) ||
        !parse_u64("--revalidate-ms", v[3], 3600000, &reval))
        return false;
    o->cache.entries = (uint32_t)entries;
    o->cache.revalidate_ms = (uint32_t)reval;
    return true;
}

/* The command line into cfg and o: -1 to go on, else the exit status
 * (app_args_main()). */
int static_parse_args(int argc, char **argv, spindle_config *cfg, options *o)
{
    const char *cache[4] = {NULL, NULL, NULL, NULL};
    const app_arg args[] = {
        {"--root", NULL, &o->root, NULL},
        {"--address", "address", NULL, NULL},
        {"--port", "port", NULL, NULL},
        {"--shards", "shards", NULL, NULL},
        {"--log-level", "log-level", NULL, NULL},
        {"--cache-entries", NULL, &cache[0], NULL},
        {"--cache-bytes", NULL, &cache[1], NULL},
        {"--cache-file-max", NULL, &cache[2], NULL},
        {"--revalidate-ms", NULL, &cache[3], NULL},
        {"--no-leases", NULL, NULL, &o->no_leases},
        APP_ARG_RING_SPIN,
    };
    const app_cli cli = {"spindle-static", usage, args, sizeof args / sizeof args[0]};
    char err[256];

    int parsed = app_args_main(&cli, argc, argv, cfg);
    if (parsed >= 0)
        return parsed;
    if (!cache_options(cache, o))
        return 2;
    if (!o->root) {
        fprintf(stderr, "spindle-static: --root DIR is required (see --help)\n");
        return 2;
    }
    if (spindle_config_check(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "spindle-static: %s\n", err);
        return 2;
    }
    return -1;
}
