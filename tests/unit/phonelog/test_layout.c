/* Built-in layouts by field count, the FreeSWITCH example template, custom column lists. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../../connectors/phonelog/layout.h"

static csv_record_t rec;
static cdr_t cdr;
static char why[256];

static int teardown(void **state)
{
    (void)state;
    csv_record_free(&rec);
    return 0;
}

/* An Asterisk line with n fields: the 16 base fields then the tail values given. */
static void ast_line(char *out, size_t outsz, int n, const char *const *tail)
{
    snprintf(out, outsz, "\"acct\",\"+14155550100\",\"6000\",\"ctx\",\"\"\"Bo\"\" <+14155550100>\",\"chan\",\"dchan\","
             "\"Dial\",\"x,y\",\"2026-11-21 14:03:12\",,\"2026-11-21 14:03:40\",28,0,\"NO ANSWER\",\"BILLING\"");
    for (int i = 16; i < n; i++) {
        strncat(out, ",\"", outsz - strlen(out) - 1);
        strncat(out, tail[i - 16], outsz - strlen(out) - 1);
        strncat(out, "\"", outsz - strlen(out) - 1);
    }
}

static int map(const layout_t *lay, const char *line)
{
    assert_int_equal(csv_parse(line, strlen(line), &rec, why, sizeof why), 0);
    return layout_map(lay, &rec, &cdr, why, sizeof why);
}

static void asterisk_by_field_count(void **state)
{
    (void)state;
    layout_t lay;
    char line[1024];
    assert_int_equal(layout_init(&lay, "asterisk", NULL, 0, why, sizeof why), 0);
    static const char *const tail[] = { "1763630043.1", "vip", "peer", "1763630040.0", "17" };

    ast_line(line, sizeof line, 16, tail);
    assert_int_equal(map(&lay, line), 0);
    assert_string_equal(cdr.layout, "asterisk-16");
    assert_string_equal(cdr.f[COL_SRC], "+14155550100");
    assert_string_equal(cdr.f[COL_DST], "6000");
    assert_string_equal(cdr.f[COL_CLID], "\"Bo\" <+14155550100>");
    assert_string_equal(cdr.f[COL_LASTDATA], "x,y");
    assert_string_equal(cdr.f[COL_ANSWER], "");
    assert_string_equal(cdr.f[COL_DURATION], "28");
    assert_string_equal(cdr.f[COL_DISPOSITION], "NO ANSWER");
    assert_string_equal(cdr.f[COL_AMAFLAGS], "BILLING");
    assert_null(cdr.f[COL_UNIQUEID]);

    ast_line(line, sizeof line, 17, tail); /* 17: uniqueid-shaped -> uniqueid */
    assert_int_equal(map(&lay, line), 0);
    assert_string_equal(cdr.layout, "asterisk-17");
    assert_string_equal(cdr.f[COL_UNIQUEID], "1763630043.1");
    assert_null(cdr.f[COL_USERFIELD]);
    static const char *const tail_user[] = { "vip" };
    ast_line(line, sizeof line, 17, tail_user); /* 17: anything else -> userfield */
    assert_int_equal(map(&lay, line), 0);
    assert_null(cdr.f[COL_UNIQUEID]);
    assert_string_equal(cdr.f[COL_USERFIELD], "vip");
    static const char *const tail_sys[] = { "pbx1-1763630043.12" };
    ast_line(line, sizeof line, 17, tail_sys); /* systemname-prefixed uniqueid */
    assert_int_equal(map(&lay, line), 0);
    assert_string_equal(cdr.f[COL_UNIQUEID], "pbx1-1763630043.12");

    ast_line(line, sizeof line, 18, tail);
    assert_int_equal(map(&lay, line), 0);
    assert_string_equal(cdr.layout, "asterisk-18");
    assert_string_equal(cdr.f[COL_UNIQUEID], "1763630043.1");
    assert_string_equal(cdr.f[COL_USERFIELD], "vip");
    assert_null(cdr.f[COL_LINKEDID]);

    ast_line(line, sizeof line, 21, tail);
    assert_int_equal(map(&lay, line), 0);
    assert_string_equal(cdr.layout, "asterisk-21");
    assert_string_equal(cdr.f[COL_PEERACCOUNT], "peer");
    assert_string_equal(cdr.f[COL_LINKEDID], "1763630040.0");
    assert_string_equal(cdr.f[COL_SEQUENCE], "17");

    static const char *const tail5[] = { "a", "b", "c", "d", "e" };
    ast_line(line, sizeof line, 19, tail5);
    assert_int_equal(map(&lay, line), -1);
    assert_string_equal(why, "19 fields; Asterisk layouts have 16, 17, 18 or 21");
    assert_int_equal(map(&lay, "\"a\",\"b\""), -1);
    assert_string_equal(why, "2 fields; Asterisk layouts have 16, 17, 18 or 21");
}

static void freeswitch_example_template(void **state)
{
    (void)state;
    /* The template's column order, from fixtures/freeswitch-cdr_csv-example-template.txt. */
    FILE *f = fopen("tests/unit/phonelog/fixtures/freeswitch-cdr_csv-example-template.txt", "r");
    assert_non_null(f);
    char tpl[1024];
    assert_non_null(fgets(tpl, sizeof tpl, f));
    fclose(f);
    assert_non_null(strstr(tpl, "\"${caller_id_name}\",\"${caller_id_number}\",\"${destination_number}\""));

    layout_t lay;
    assert_int_equal(layout_init(&lay, "freeswitch", NULL, 0, why, sizeof why), 0);
    assert_int_equal(map(&lay, "\"Jane Roe\",\"+14155550101\",\"6000\",\"default\",\"2026-11-20 09:14:03\",\"\","
                               "\"2026-11-20 09:14:33\",\"30\",\"0\",\"NO_ANSWER\",\"a-uuid\",\"b-uuid\",\"acct\","
                               "\"PCMU\",\"PCMA\""), 0);
    assert_string_equal(cdr.layout, "freeswitch");
    assert_string_equal(cdr.f[COL_NAME], "Jane Roe");
    assert_string_equal(cdr.f[COL_SRC], "+14155550101");
    assert_string_equal(cdr.f[COL_DST], "6000");
    assert_string_equal(cdr.f[COL_START], "2026-11-20 09:14:03");
    assert_string_equal(cdr.f[COL_ANSWER], "");
    assert_string_equal(cdr.f[COL_BILLSEC], "0");
    assert_string_equal(cdr.f[COL_DISPOSITION], "NO_ANSWER");
    assert_string_equal(cdr.f[COL_UNIQUEID], "a-uuid");
    assert_string_equal(cdr.f[COL_ACCOUNTCODE], "acct");
    assert_int_equal(map(&lay, "\"a\",\"b\""), -1);
    assert_string_equal(why, "2 fields; the freeswitch layout has 15");
}

static void custom_columns(void **state)
{
    (void)state;
    layout_t lay;
    /* The template's own ${...} names are accepted; unknown names are ignored. */
    static const char *const cols[] = { "${caller_id_number}", "dst", "whatever", "hangup_cause", "uuid" };
    assert_int_equal(layout_init(&lay, "custom", cols, 5, why, sizeof why), 0);
    assert_int_equal(map(&lay, "\"+14155550101\",\"6000\",\"x\",\"USER_BUSY\",\"u1\""), 0);
    assert_string_equal(cdr.f[COL_SRC], "+14155550101");
    assert_string_equal(cdr.f[COL_DISPOSITION], "USER_BUSY");
    assert_string_equal(cdr.f[COL_UNIQUEID], "u1");
    assert_int_equal(map(&lay, "\"+14155550101\",\"6000\""), -1);
    assert_string_equal(why, "2 fields; the custom layout has 5");

    static const char *const no_src[] = { "dst", "disposition" };
    assert_int_equal(layout_init(&lay, "custom", no_src, 2, why, sizeof why), -1);
    assert_non_null(strstr(why, "must include the caller"));
    static const char *const dup[] = { "src", "caller_id_number", "disposition" };
    assert_int_equal(layout_init(&lay, "custom", dup, 3, why, sizeof why), -1);
    assert_string_equal(why, "\"caller_id_number\" names the same field as column 1");
    assert_int_equal(layout_init(&lay, "custom", NULL, 0, why, sizeof why), -1);
    assert_int_equal(layout_init(&lay, "asterisk", dup, 3, why, sizeof why), -1);
    assert_string_equal(why, "columns is only for layout custom (layout is asterisk)");
    assert_int_equal(layout_init(&lay, "cisco", NULL, 0, why, sizeof why), -1);
    assert_int_equal(layout_role("${hangup_cause}"), COL_DISPOSITION);
    assert_int_equal(layout_role("bleg_uuid"), COL_IGNORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(asterisk_by_field_count, teardown),
        cmocka_unit_test_teardown(freeswitch_example_template, teardown),
        cmocka_unit_test_teardown(custom_columns, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
