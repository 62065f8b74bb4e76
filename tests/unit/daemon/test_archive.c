/* The archive's pure half: the day file's name (UTC) and a record made from archive_claim.lua's data, one line
 * with "conversation" first (a takeover finds a record by the start of its line). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "archive.h"

static void test_file_is_the_utc_day(void **state)
{
    (void)state;
    char *f = archive_file_name("/var/lib/omnirouter/archive", 1764633599999LL); /* 2025-12-01T23:59:59.999Z */
    assert_string_equal(f, "/var/lib/omnirouter/archive/2025-12-01.jsonl");
    free(f);
    f = archive_file_name("/a", 1764633600000LL); /* the next millisecond is the next day */
    assert_string_equal(f, "/a/2025-12-02.jsonl");
    free(f);
}

static void test_record_is_one_line_conversation_first(void **state)
{
    (void)state;
    /* as cjson sends it: "\/" escapes, empty lists as {}, decisions as JSON text, the message JSON as text */
    const char *data =
        "{\"fields\":{\"status\":\"resolved\",\"customer\":\"7\"},\"decisions\":[\"{\\\"rule\\\":\\\"vip\\\",\\\"at\\\":5}\"],"
        "\"merged\":{},\"conversation\":\"42\",\"messages\":[{\"id\":\"m1\",\"json\":\"{\\\"text\\\":\\\"a\\\\nb \\/ c\\\"}\"}]}";
    char *line = archive_record(data, 1000);
    assert_non_null(line);
    assert_int_equal(strncmp(line, "{\"conversation\":\"42\",", 21), 0);
    size_t n = strlen(line);
    assert_true(n > 0 && line[n - 1] == '\n' && strchr(line, '\n') == line + n - 1);
    json_t *r = json_loads(line, 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "archived_at")), 1000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "fields"), "status")), "resolved");
    json_t *m = json_array_get(json_object_get(r, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "json")), "{\"text\":\"a\\nb / c\"}"); /* verbatim */
    json_t *d = json_array_get(json_object_get(r, "decisions"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "rule")), "vip"); /* decisions as JSON */
    assert_true(json_is_array(json_object_get(r, "merged")) && json_array_size(json_object_get(r, "merged")) == 0);
    json_decref(r);
    free(line);
}

static void test_bad_data_is_no_record(void **state)
{
    (void)state;
    assert_null(archive_record("not json", 1));
    assert_null(archive_record("{\"fields\":{}}", 1));             /* no conversation */
    assert_null(archive_record("{\"conversation\":\"1\"}", 1));    /* no fields */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_is_the_utc_day),
        cmocka_unit_test(test_record_is_one_line_conversation_first),
        cmocka_unit_test(test_bad_data_is_no_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
