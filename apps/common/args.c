/*
 * apps/common/args.c - the apps' command line (contract in args.h).
 */
#include "args.h"

#include <stdio.h>
#include <string.h>

static const app_arg *find(const app_arg *args, size_t nargs, const char *name)
{
    for (size_t i = 0; i < nargs; i++)
        if (strcmp(args[i].name, name) == 0)
            return &args[i];
    return NULL;
}

/* One option and its value (NULL for a flag); 0 or SPINDLE_EINVAL. */
static int apply(const app_arg *a, const char *v, spindle_config *cfg, char *err, size_t errlen)
{
    if (a->flag) {
        *a->flag = true;
        return 0;
    }
    if (a->value) {
        *a->value = v;
        return 0;
    }
    return spindle_config_set(cfg, a->config, v, err, errlen);
}

app_args_result app_args_parse(int argc, char **argv, const app_arg *args, size_t nargs,
                               spindle_config *cfg, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        const app_arg *a;

        if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0)
            return APP_ARGS_HELP;
        a = find(args, nargs, name);
        if (!a && strcmp(name, "--set") != 0) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", name);
            return APP_ARGS_BAD;
        }
        if (a && a->flag) {
            apply(a, NULL, cfg, err, errlen);
            continue;
        }
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s needs a value (see --help)", name);
            return APP_ARGS_BAD;
        }
        i++;
        if (a ? apply(a, argv[i], cfg, err, errlen)
              : spindle_config_set_pair(cfg, argv[i], err, errlen))
            return APP_ARGS_BAD;
    }
    return APP_ARGS_RUN;
}

int app_args_main(const app_cli *cli, int argc, char **argv, spindle_config *cfg)
{
    char err[256];

    switch (app_args_parse(argc, argv, cli->args, cli->nargs, cfg, err, sizeof err)) {
    case APP_ARGS_RUN: return -1;
    case APP_ARGS_HELP: cli->usage(stdout); return 0;
    case APP_ARGS_BAD: break;
    }
    fprintf(stderr, "%s: %s\n", cli->prog, err);
    return 2;
}
