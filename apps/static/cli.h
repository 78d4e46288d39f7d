/* cli.h - spindle-static's command line (docs/static.md has the options). */
#ifndef SPINDLE_STATIC_CLI_H
#define SPINDLE_STATIC_CLI_H

#include "fcache.h"
#include "spindle.h"

/* spindle-static's own options (the root, the cache). */
typedef struct options {
    const char *root;
    fcache_limits cache;
    bool no_leases; /* --no-leases: large-file hits fstat() (lease.h) */
} options;

/* The command line into cfg (the core's options) and o: -1 to go on, else
 * the exit status to return from main() (after --help, or having said what
 * is wrong). */
int static_parse_args(int argc, char **argv, spindle_config *cfg, options *o);

#endif
