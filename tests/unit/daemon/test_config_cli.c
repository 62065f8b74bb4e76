/* The daemons' shared command line (config_cli.h): what each option sets, what ends the program and with which
 * status, and what a refused configuration prints. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config_cli.h"

static FILE *usage_to, *reference_to; /* where each callback was last asked to print; NULL: not called */
static void usage(FILE *out) { usage_to = out; }
static void reference(FILE *out) { reference_to = out; }

static const config_cli_spec_t with_d = { .prog = "omnitest", .default_path = "/etc/default.yaml", .overrides = true,
                                          .usage = usage, .reference = reference };
static const config_cli_spec_t without_d = { .prog = "omnitest", .default_path = "/etc/default.yaml",
                                             .usage = usage, .reference = reference };

/* parse(spec, cli, "arg", ..., NULL): runs config_cli_parse on argv = { "omnitest", args... }. */
static int parse(const config_cli_spec_t *spec, config_cli_t *cli, ...)
{
    static char *argv[200];
    int argc = 0;
    argv[argc++] = "omnitest";
    va_list ap;
    va_start(ap, cli);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    usage_to = reference_to = NULL;
    return config_cli_parse(spec, argc, argv, cli);
}

static void test_defaults_and_each_option(void **state)
{
    (void)state;
    config_cli_t cli;
    assert_int_equal(parse(&with_d, &cli, NULL), -1);
    assert_string_equal(cli.path, "/etc/default.yaml");
    assert_false(cli.check);
    assert_int_equal(cli.n_overrides, 0);

    assert_int_equal(parse(&with_d, &cli, "--config", "a.yaml", "-D", "x.y=1", "-D", "z=2", NULL), -1);
    assert_string_equal(cli.path, "a.yaml");
    assert_false(cli.check);
    assert_int_equal(cli.n_overrides, 2);
    assert_string_equal(cli.overrides[0], "x.y=1");
    assert_string_equal(cli.overrides[1], "z=2");

    assert_int_equal(parse(&with_d, &cli, "-t", "b.yaml", NULL), -1);
    assert_string_equal(cli.path, "b.yaml");
    assert_true(cli.check);
    assert_int_equal(parse(&without_d, &cli, "--check-config", "c.yaml", NULL), -1);
    assert_string_equal(cli.path, "c.yaml");
    assert_true(cli.check);
    assert_null(usage_to);
    assert_null(reference_to);
}

static void test_help_and_reference_end_with_0_on_stdout(void **state)
{
    (void)state;
    config_cli_t cli;
    assert_int_equal(parse(&with_d, &cli, "--help", NULL), 0);
    assert_ptr_equal(usage_to, stdout);
    assert_int_equal(parse(&without_d, &cli, "-h", NULL), 0);
    assert_ptr_equal(usage_to, stdout);
    assert_int_equal(parse(&with_d, &cli, "--config-reference", NULL), 0);
    assert_ptr_equal(reference_to, stdout);
    assert_null(usage_to);
}

static void test_usage_errors_end_with_2(void **state)
{
    (void)state;
    config_cli_t cli;
    assert_int_equal(parse(&with_d, &cli, "--bogus", NULL), 2);
    assert_ptr_equal(usage_to, stderr);
    assert_int_equal(parse(&with_d, &cli, "-c", "a.yaml", "extra", NULL), 2); /* no positional arguments */
    assert_ptr_equal(usage_to, stderr);
    assert_int_equal(parse(&with_d, &cli, "--config", NULL), 2); /* its value missing */
    assert_int_equal(parse(&without_d, &cli, "-D", "x=1", NULL), 2); /* this daemon takes no -D */
    assert_ptr_equal(usage_to, stderr);
    assert_int_equal(parse(&with_d, &cli, "-D", "nonsense", NULL), 2); /* not KEY=VALUE: a bad argument */
    assert_int_equal(parse(&with_d, &cli, "-D", "=v", NULL), 2);

    /* the limit: CONFIG_CLI_MAX_OVERRIDES -D, one more is refused */
    static char *argv[2 + 2 * (CONFIG_CLI_MAX_OVERRIDES + 1) + 1];
    int argc = 0;
    argv[argc++] = "omnitest";
    for (int i = 0; i < CONFIG_CLI_MAX_OVERRIDES; i++)
        argv[argc++] = "-D", argv[argc++] = "k=v";
    argv[argc] = NULL;
    assert_int_equal(config_cli_parse(&with_d, argc, argv, &cli), -1);
    assert_int_equal(cli.n_overrides, CONFIG_CLI_MAX_OVERRIDES);
    argv[argc++] = "-D", argv[argc++] = "one=more";
    argv[argc] = NULL;
    assert_int_equal(config_cli_parse(&with_d, argc, argv, &cli), 2);
}

static void test_refused_prints_every_error_and_the_count(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    FILE *saved = stderr;
    stderr = mem;
    config_errors_t errs = { 0 };
    errs.lines = calloc(2, sizeof *errs.lines);
    errs.lines[0] = strdup("a.yaml:3:5: x: bad");
    errs.lines[1] = strdup("a.yaml:9:1: y: worse");
    errs.n = 2;
    int rc = config_cli_refused("omnitest", &errs);
    stderr = saved;
    fclose(mem);
    assert_int_equal(rc, 1);
    assert_string_equal(buf, "a.yaml:3:5: x: bad\na.yaml:9:1: y: worse\nomnitest: 2 configuration errors; not started\n");
    assert_int_equal(errs.n, 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_each_option),
        cmocka_unit_test(test_help_and_reference_end_with_0_on_stdout),
        cmocka_unit_test(test_usage_errors_end_with_2),
        cmocka_unit_test(test_refused_prints_every_error_and_the_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
