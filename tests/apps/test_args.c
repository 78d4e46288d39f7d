/*
 * tests/apps/test_args.c - apps/common/args.c: the apps' command line,
 * parsed into a real spindle_config through the public API.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "args.h"

static const char *root, *ca;
static bool blocking;

static const app_arg args[] = {
    {"--port", "port", NULL, NULL},        {"--cert", "tls-cert", NULL, NULL},
    {"--root", NULL, &root, NULL},         {"--ca", NULL, &ca, NULL},
    {"--blocking", NULL, NULL, &blocking},
};

#define NARGS (sizeof args / sizeof args[0])

static char err[256];

/* Parse a NULL-terminated list of arguments (argv[0] is the program). */
static app_args_result parse(spindle_config *cfg, const char **list)
{
    char *argv[32];
    int argc = 0;

    root = ca = NULL;
    blocking = false;
    err[0] = '\0';
    argv[argc++] = (char *)"prog";
    while (*list)
        argv[argc++] = (char *)*list++;
    return app_args_parse(argc, argv, args, NARGS, cfg, err, sizeof err);
}

Test(args, nothing_is_defaults)
{
    spindle_config cfg = spindle_config_default(), def = cfg;
    const char *none[] = {NULL};

    cr_expect_eq(parse(&cfg, none), APP_ARGS_RUN);
    cr_expect_eq(memcmp(&cfg, &def, sizeof cfg), 0);
    cr_expect_null(root);
    cr_expect_not(blocking);
}

Test(args, config_app_values_flags_and_set)
{
    spindle_config cfg = spindle_config_default();
    const char *list[] = {"--port",
                          "9000",
                          "--cert",
                          "c.pem",
                          "--root",
                          "/srv",
                          "--ca",
                          "ca.pem",
                          "--blocking",
                          "--set",
                          "max-concurrent-streams=7",
                          "--set",
                          "port=9001",
                          NULL};

    cr_assert_eq(parse(&cfg, list), APP_ARGS_RUN, "%s", err);
    /* The later --set port overrides the earlier --port. */
    cr_expect_eq(cfg.port, 9001);
    cr_expect_str_eq(cfg.tls_cert, "c.pem");
    cr_expect_eq(cfg.limits.max_concurrent_streams, 7u);
    cr_expect_str_eq(root, "/srv");
    cr_expect_str_eq(ca, "ca.pem");
    cr_expect(blocking);
}

Test(args, help_wins_wherever_it_is)
{
    spindle_config cfg = spindle_config_default();
    const char *a[] = {"--port", "1", "-h", "--bogus", NULL};
    const char *b[] = {"--help", NULL};

    cr_expect_eq(parse(&cfg, a), APP_ARGS_HELP);
    cr_expect_eq(parse(&cfg, b), APP_ARGS_HELP);
}

Test(args, errors_name_the_option)
{
    static const struct {
        const char *list[4];
        const char *want;
    } cases[] = {
        {{"--bogus", NULL}, "unknown option '--bogus'"},
        {{"--address", "::1", NULL}, "unknown option '--address'"}, /* not in this table */
        {{"--port", NULL}, "--port needs a value"},
        {{"--root", NULL}, "--root needs a value"},
        {{"--set", NULL}, "--set needs a value"},
        {{"--port", "99999", NULL}, "port"},
        {{"--set", "no-such-limit=1", NULL}, "no-such-limit"},
        {{"--set", "novalue", NULL}, "novalue"},
        {{"--blocking", "--port", "x", NULL}, "port"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spindle_config cfg = spindle_config_default();
        const char **list = (const char **)cases[i].list;

        cr_expect_eq(parse(&cfg, list), APP_ARGS_BAD, "case %zu", i);
        cr_expect_not_null(strstr(err, cases[i].want), "case %zu: %s", i, err);
    }
}
