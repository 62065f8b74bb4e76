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
    f = archive_file_name("/a//", 1764633600000LL); /* one slash before the name, however the directory ends */
    assert_string_equal(f, "/a/2025-12-02.jsonl");
    free(f);
    f = archive_file_name("/", 1764633600000LL);
    assert_string_equal(f, "/2025-12-02.jsonl");
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

/* A field that is not UTF-8 (omnictl's --by takes any bytes; cjson sends them as they are) cannot stop a
 * conversation from being archived: such bytes are written as U+FFFD, the rest as it was. */
static void test_bytes_not_utf8_are_written_as_replacement_characters(void **state)
{
    (void)state;
    const char *data = "{\"conversation\":\"9\",\"fields\":{\"resolved_by\":\"ann\xff\","
                       "\"note\":\"caf\xc3\xa9 \xe2\x82\",\"cut\":\"\xc3\",\"odd\":\"\xf0\x9f\x98\x80\xed\xa0\x80\xc0\xaf\"},"
                       "\"messages\":{},\"decisions\":{}}";
    char *line = archive_record(data, 1);
    assert_non_null(line);
    json_t *r = json_loads(line, 0, NULL);
    assert_non_null(r);
    json_t *f = json_object_get(r, "fields");
    assert_string_equal(json_string_value(json_object_get(f, "resolved_by")), "ann\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(f, "note")), "caf\xc3\xa9 \xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(f, "cut")), "\xef\xbf\xbd");
    /* a 4-byte character kept; a surrogate and an overlong form: U+FFFD for each byte, none of them starting a
     * sequence that could go on */
    assert_string_equal(json_string_value(json_object_get(f, "odd")),
                        "\xf0\x9f\x98\x80" "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(r);
    free(line);
}

/* A decision record stored without the plan's targets (they said no more than `tried`: _owners.lua's decided)
 * is archived whole: the targets put back from tried, in order; one that has them keeps its own. */
static void test_decisions_are_archived_whole(void **state)
{
    (void)state;
    const char *data =
        "{\"conversation\":\"5\",\"fields\":{},\"messages\":{},\"decisions\":["
        "\"{\\\"plan\\\":{\\\"sla\\\":\\\"clock hours\\\"},\\\"tried\\\":[{\\\"team\\\":\\\"core\\\",\\\"target\\\":0,"
        "\\\"skipped\\\":\\\"no agent available with capacity\\\"},{\\\"team\\\":\\\"partner\\\",\\\"target\\\":1}]}\","
        "\"{\\\"plan\\\":{\\\"targets\\\":[{\\\"team\\\":\\\"x\\\",\\\"target\\\":0}]},\\\"tried\\\":[]}\"]}";
    char *line = archive_record(data, 1);
    assert_non_null(line);
    json_t *r = json_loads(line, 0, NULL);
    assert_non_null(r);
    json_t *ds = json_object_get(r, "decisions");
    json_t *plan = json_object_get(json_array_get(ds, 0), "plan");
    assert_string_equal(json_string_value(json_object_get(plan, "sla")), "clock hours");
    json_t *t = json_object_get(plan, "targets");
    assert_int_equal(json_array_size(t), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 0), "team")), "core");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(t, 1), "target")), 1);
    assert_int_equal(json_object_size(json_array_get(t, 1)), 2); /* team and place, nothing of tried's verdict */
    t = json_object_get(json_object_get(json_array_get(ds, 1), "plan"), "targets");
    assert_int_equal(json_array_size(t), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 0), "team")), "x");
    json_decref(r);
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_is_the_utc_day),
        cmocka_unit_test(test_record_is_one_line_conversation_first),
        cmocka_unit_test(test_bad_data_is_no_record),
        cmocka_unit_test(test_bytes_not_utf8_are_written_as_replacement_characters),
        cmocka_unit_test(test_decisions_are_archived_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
