/*
 * apps/common/args.h - the command line both example apps share.
 *
 * A tiny helper linked by apps/hello and apps/static, built only on the
 * public include/spindle.h: every limit goes through spindle_config_set()
 * and spindle_config_set_pair(), so an app names no config field itself.
 *
 * The grammar: "-h"/"--help"; "--set name=value" (any number of times);
 * and the options of the app's table, each either a flag ("--blocking"),
 * or "--NAME VALUE" where VALUE goes to a spindle_config name
 * ("--cert FILE" -> "tls-cert") or to a string the app keeps ("--root DIR").
 */
#ifndef SPINDLE_APPS_ARGS_H
#define SPINDLE_APPS_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "spindle.h"

/* One option of an app's table: set exactly one of config, value, flag. */
typedef struct app_arg {
    const char *name;   /* "--port" */
    const char *config; /* its spindle_config_set() name ("port", "tls-cert") */
    const char **value; /* or: the app's string (points into argv) */
    bool *flag;         /* or: a flag without a value, set to true */
} app_arg;

typedef enum app_args_result {
    APP_ARGS_RUN = 0, /* parsed: check the result, then run the server */
    APP_ARGS_HELP,    /* -h/--help: print the usage, exit 0 */
    APP_ARGS_BAD      /* err says why (an unknown option, a missing value, a
                         value spindle_config_set() refuses): exit 2 */
} app_args_result;

/*
 * Parse argv[1..argc) into cfg (which the caller initialised, normally with
 * spindle_config_default()) and the app's strings and flags, in order (a
 * later option overrides an earlier one). Stops at the first error with err
 * (NUL-terminated, errlen > 0) naming the option. The whole configuration
 * is not checked here: the app calls spindle_config_check() after checks of
 * its own (a required option). Strings stored in cfg and in *value point into argv,
 * which outlives them. Any thread; reads nothing but its arguments.
 */
app_args_result app_args_parse(int argc, char **argv, const app_arg *args, size_t nargs,
                               spindle_config *cfg, char *err, size_t errlen);

/* The options every app takes the same way: the low-latency mode
 * ("--ring-spin-us N" -> "ring-spin-us"), its table entry and usage line. */
#define APP_ARG_RING_SPIN                                                                          \
    {                                                                                              \
        "--ring-spin-us", "ring-spin-us", NULL, NULL                                               \
    }
#define APP_USAGE_RING_SPIN                                                                        \
    "  --ring-spin-us N  low-latency mode: poll the ring N us before sleeping; lower\n"            \
    "                    latency, but a busy core while idle (default 0: off; it\n"                \
    "                    replaces the adaptive one, --set ring-poll-us=N, default 0)\n"

/* An app's command line, for app_args_main(). */
typedef struct app_cli {
    const char *prog;         /* "spindle-hello": prefixes every message */
    void (*usage)(FILE *out); /* prints the --help text */
    const app_arg *args;
    size_t nargs;
} app_cli;

/*
 * app_args_parse() for main(): prints the usage to stdout after --help, or
 * "prog: why" to stderr after an error. Returns -1 to go on, else the exit
 * status (0 after --help, 2 after an error).
 */
int app_args_main(const app_cli *cli, int argc, char **argv, spindle_config *cfg);

#endif /* SPINDLE_APPS_ARGS_H */
