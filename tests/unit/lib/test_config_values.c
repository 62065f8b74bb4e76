/* Values as configs write them, read one way by the router and every connector (omni/units.h, and the
 * connector config's -D lists in YAML as the router's): units, lists, overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connector_config.h"
#include "omni/units.h"

static const omni_connector_key_t keys[] = {
    { "items", OMNI_KEY_LIST, "[first, second]", false, 0, 3, NULL, "a list" },
    { "wait_ms", OMNI_KEY_DURATION, "250", false, 0, 3600000, NULL, "a duration" },
    { "limit_bytes", OMNI_KEY_SIZE, "1k", false, 0, 1 << 30, NULL, "a size" },
    { "count", OMNI_KEY_INT, "3", false, 0, 100, NULL, "a count" },
    { NULL, 0, NULL, false, 0, 0, NULL, NULL },
};
static const omni_connector_def_t def = { .name = "x", .channel = "x-x", .summary = "test", .keys = keys };

static void test_units(void **state)
{
    (void)state;
    static const struct { const char *text; omni_num_kind_t kind; long long unit, want; int rc; } cases[] = {
        { "500", OMNI_NUM_DURATION, 1, 500, OMNI_NUM_OK },
        { "500ms", OMNI_NUM_DURATION, 1, 500, OMNI_NUM_OK },
        { "5s", OMNI_NUM_DURATION, 1, 5000, OMNI_NUM_OK },
        { "2m", OMNI_NUM_DURATION, 1, 120000, OMNI_NUM_OK },
        { "1h", OMNI_NUM_DURATION, 1, 3600000, OMNI_NUM_OK },
        { "1m", OMNI_NUM_DURATION, 1000, 60, OMNI_NUM_OK },         /* a key counted in seconds */
        { "60", OMNI_NUM_DURATION, 1000, 60, OMNI_NUM_OK },         /* no unit: already seconds */
        { "1500ms", OMNI_NUM_DURATION, 1000, 0, OMNI_NUM_FRACTION },
        { "5M", OMNI_NUM_DURATION, 1, 0, OMNI_NUM_BAD },            /* durations are case-sensitive */
        { "5 s", OMNI_NUM_DURATION, 1, 0, OMNI_NUM_BAD },
        { "s", OMNI_NUM_DURATION, 1, 0, OMNI_NUM_BAD },
        { "", OMNI_NUM_DURATION, 1, 0, OMNI_NUM_BAD },
        { "64k", OMNI_NUM_SIZE, 1, 65536, OMNI_NUM_OK },
        { "1MiB", OMNI_NUM_SIZE, 1, 1048576, OMNI_NUM_OK },
        { "2g", OMNI_NUM_SIZE, 1, 2147483648LL, OMNI_NUM_OK },
        { "5s", OMNI_NUM_SIZE, 1, 0, OMNI_NUM_BAD },
        { "7", OMNI_NUM_PLAIN, 1, 7, OMNI_NUM_OK },
        { "-7", OMNI_NUM_PLAIN, 1, -7, OMNI_NUM_OK },
        { "7k", OMNI_NUM_PLAIN, 1, 0, OMNI_NUM_BAD },
        { "99999999999999999999h", OMNI_NUM_DURATION, 1, LLONG_MAX, OMNI_NUM_OK }, /* saturates */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long long v = 0;
        int rc = omni_number_parse(cases[i].text, cases[i].kind, cases[i].unit, &v);
        if (rc != cases[i].rc || (rc == OMNI_NUM_OK && v != cases[i].want))
            fail_msg("[%s]: rc %d value %lld, want rc %d value %lld", cases[i].text, rc, v, cases[i].rc, cases[i].want);
    }
}

static conn_config_t *load(const char *yaml, const char *const *ov, size_t n, conn_errors_t *errs)
{
    char path[] = "/tmp/omni-cfgval-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    memset(errs, 0, sizeof *errs);
    conn_config_t *cfg = conn_config_load(&def, path, ov, n, errs);
    unlink(path);
    return cfg;
}

static const conn_slot_t *slot(conn_config_t *cfg, const char *name)
{
    const conn_slot_t *s = conn_config_own(cfg, name);
    assert_non_null(s);
    return s;
}

static void has_error(const conn_errors_t *errs, const char *want)
{
    for (size_t i = 0; i < errs->n; i++)
        if (strstr(errs->lines[i], want) != NULL)
            return;
    for (size_t i = 0; i < errs->n; i++)
        print_message("  %s\n", errs->lines[i]);
    fail_msg("no error \"%s\" among %zu", want, errs->n);
}

/* The router's -D syntax: scalars literally, lists in YAML flow syntax or one value, units on numbers. */
static void test_overrides_like_the_router(void **state)
{
    (void)state;
    conn_errors_t errs;
    conn_config_t *cfg = load("", NULL, 0, &errs);
    assert_non_null(cfg);
    assert_int_equal(slot(cfg, "items")->n_list, 2); /* the default, written as -D writes a list */
    assert_string_equal(slot(cfg, "items")->list[1], "second");
    assert_int_equal(slot(cfg, "limit_bytes")->num, 1024);
    conn_config_destroy(&cfg);

    const char *ov[] = { "x.items=[a, 'b, c']", "x.wait_ms=2s", "poll_ms=1m", "x.limit_bytes=64k", "x.count=9",
                         "router.resend_ms=1500ms" };
    cfg = load("", ov, 6, &errs);
    assert_non_null(cfg);
    assert_int_equal(slot(cfg, "items")->n_list, 2);
    assert_string_equal(slot(cfg, "items")->list[0], "a");
    assert_string_equal(slot(cfg, "items")->list[1], "b, c"); /* a comma inside quotes stays in its entry */
    assert_int_equal(slot(cfg, "wait_ms")->num, 2000);
    assert_int_equal(cfg->poll_ms, 60000);
    assert_int_equal(cfg->resend_ms, 1500);
    assert_int_equal(slot(cfg, "limit_bytes")->num, 65536);
    assert_int_equal(slot(cfg, "count")->num, 9);
    conn_config_destroy(&cfg);

    const char *one[] = { "x.items=solo", "x.wait_ms=250" };
    cfg = load("", one, 2, &errs);
    assert_non_null(cfg);
    assert_int_equal(slot(cfg, "items")->n_list, 1); /* one value: a list of one, as in the router */
    assert_string_equal(slot(cfg, "items")->list[0], "solo");
    conn_config_destroy(&cfg);

    const char *empty[] = { "x.items=" };
    cfg = load("", empty, 1, &errs);
    assert_non_null(cfg);
    assert_int_equal(slot(cfg, "items")->n_list, 0);
    conn_config_destroy(&cfg);

    const char *bad[] = { "x.items=[a", "x.wait_ms=5 s", "x.count=5s", "x.items=[a, b, c, d]", "x.items={a: 1}",
                          "x.limit_bytes=5s", "poll_ms=5" };
    cfg = load("", bad, 7, &errs);
    assert_null(cfg);
    has_error(&errs, "command line:1:1: x.items: not a list in YAML flow syntax ([a, b]): did not find expected ',' or ']'");
    has_error(&errs, "command line:2:1: x.wait_ms: expected a duration in milliseconds (500, 500ms, 5s), got \"5 s\"");
    has_error(&errs, "command line:3:1: x.count: \"5s\" is not an integer");
    has_error(&errs, "command line:4:1: x.items: more than 3 entries");
    has_error(&errs, "command line:5:1: x.items: expected a list of strings, got a mapping");
    has_error(&errs, "command line:6:1: x.limit_bytes: expected a size in bytes (262144, 256k, 1m), got \"5s\"");
    has_error(&errs, "command line:7:1: poll_ms: 5 is below the minimum 10");
    conn_errors_free(&errs);

    /* a whole section as a YAML mapping, as the router takes it; later -D and the file's other keys stand */
    const char *section[] = { "x={items: [p, q], wait_ms: 3s}", "x.count=4" };
    cfg = load("x:\n  count: 7\n  limit_bytes: 2k\n", section, 2, &errs);
    assert_non_null(cfg);
    assert_int_equal(slot(cfg, "items")->n_list, 2);
    assert_string_equal(slot(cfg, "items")->list[1], "q");
    assert_int_equal(slot(cfg, "wait_ms")->num, 3000);
    assert_int_equal(slot(cfg, "count")->num, 4);
    assert_int_equal(slot(cfg, "limit_bytes")->num, 2048);
    conn_config_destroy(&cfg);
    const char *bad_section[] = { "x={wait_ms: soon, nope: 1}", "x=5", "x={items: {a: 1}}", "x={a: [" };
    cfg = load("", bad_section, 4, &errs);
    assert_null(cfg);
    has_error(&errs, "command line:1:1: x.wait_ms: expected a duration in milliseconds (500, 500ms, 5s), got \"soon\"");
    has_error(&errs, "command line:1:1: x.nope: unknown key");
    has_error(&errs, "command line:2:1: x: a section takes a mapping ({key: value, ...})");
    has_error(&errs, "command line:3:1: x.items: expected a list of strings, got a mapping");
    has_error(&errs, "command line:4:1: x: not a mapping in YAML flow syntax ({key: value}): ");
    conn_errors_free(&errs);
}

/* The file takes the same values: units, and one string for a list of one. */
static void test_file_values(void **state)
{
    (void)state;
    conn_errors_t errs;
    conn_config_t *cfg = load("poll_ms: 2s\nx:\n  items: solo\n  wait_ms: 1500ms\n  limit_bytes: 1m\n", NULL, 0, &errs);
    assert_non_null(cfg);
    assert_int_equal(cfg->poll_ms, 2000);
    assert_int_equal(slot(cfg, "items")->n_list, 1);
    assert_int_equal(slot(cfg, "wait_ms")->num, 1500);
    assert_int_equal(slot(cfg, "limit_bytes")->num, 1048576);
    conn_config_destroy(&cfg);
    cfg = load("x:\n  items: [a, [b]]\n  wait_ms: soon\n", NULL, 0, &errs);
    assert_null(cfg);
    has_error(&errs, ":2:14: x.items: list entries must be strings");
    has_error(&errs, ":3:12: x.wait_ms: expected a duration in milliseconds (500, 500ms, 5s), got \"soon\"");
    conn_errors_free(&errs);
}

/* As the router reads its own: anchors and aliases refused, nesting past 64 levels refused at once, a section
 * written twice named (its keys would merge unsaid); in the file and in -D values alike. */
static void test_yaml_the_router_refuses(void **state)
{
    (void)state;
    conn_errors_t errs;
    conn_config_t *cfg = load("x:\n  items: &a [p, q]\n  wait_ms: 1s\n", NULL, 0, &errs);
    assert_null(cfg);
    has_error(&errs, ":2:10: anchors (&a) are not supported");
    conn_errors_free(&errs);
    cfg = load("poll_ms: &t 2s\nretry_max_ms: *t\n", NULL, 0, &errs);
    assert_null(cfg);
    has_error(&errs, ":1:10: anchors (&t) are not supported");
    conn_errors_free(&errs);
    static char deep[20000];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof deep - n, "x:\n  items: ");
    for (int i = 0; i < 5000; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    cfg = load(deep, NULL, 0, &errs);
    assert_null(cfg);
    has_error(&errs, ": nesting deeper than 64 levels");
    conn_errors_free(&errs);
    cfg = load("x:\n  wait_ms: 1s\npoll_ms: 2s\nx:\n  limit_bytes: 1m\n", NULL, 0, &errs);
    assert_null(cfg);
    has_error(&errs, ":4:1: x: duplicate key (first at line 1 column 1)");
    conn_errors_free(&errs);
    const char *const ov[] = { "x={wait_ms: &w 1s}", "x.items=[*q]" };
    cfg = load("", ov, 2, &errs);
    assert_null(cfg);
    has_error(&errs, "command line:1:1: x: anchors (&w) are not supported");
    has_error(&errs, "command line:2:1: x.items: aliases (*q) are not supported; write the value out");
    conn_errors_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_overrides_like_the_router),
        cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_yaml_the_router_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
