/* The strict CSV parser, on the quoting cases of the Asterisk fixture and on every way a line can break. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../../connectors/phonelog/csv.h"

/* Lines copied from tests/unit/phonelog/fixtures/asterisk-Master.sample.csv (fixtures/phonelog). */
static const char *const L_JANE = "\"\",\"+14155550101\",\"6000\",\"from-pstn\",\"\"\"Jane Roe\"\" <+14155550101>\","
    "\"PJSIP/trunk-00000001\",\"PJSIP/6000-00000002\",\"Dial\",\"PJSIP/6000,30,t\",\"2026-11-20 09:14:03\","
    "\"2026-11-20 09:14:09\",\"2026-11-20 09:17:41\",218,212,\"ANSWERED\",\"DOCUMENTATION\",\"1763630043.1\",\"\"";
static const char *const L_ACME = "\"\",\"+442079460123\",\"6001\",\"from-pstn\",\"\"\"Acme, Ltd\"\" <+442079460123>\","
    "\"PJSIP/trunk-00000005\",\"\",\"Dial\",\"PJSIP/6001,30,t\",\"2026-11-20 09:31:55\",,\"2026-11-20 09:31:57\","
    "2,0,\"BUSY\",\"DOCUMENTATION\",\"1763631115.5\",\"vip\"";
static const char *const L_ANA = "\"\",\"0612345678\",\"6000\",\"from-pstn\",\"\"\"Ana \"\"\"\"Nina\"\"\"\" Ruiz\"\" "
    "<0612345678>\",\"PJSIP/trunk-00000007\",\"\",\"VoiceMail\",\"6000@default\",\"2026-11-20 10:02:00\","
    "\"2026-11-20 10:02:03\",\"2026-11-20 10:03:10\",70,67,\"ANSWERED\",\"DOCUMENTATION\",\"1763632920.7\",\"voicemail\"";

static csv_record_t rec;
static char why[256];

static int parse(const char *line)
{
    why[0] = '\0';
    return csv_parse(line, strlen(line), &rec, why, sizeof why);
}

static int teardown(void **state)
{
    (void)state;
    csv_record_free(&rec);
    return 0;
}

static void doubled_quotes_in_clid(void **state)
{
    (void)state;
    assert_int_equal(parse(L_JANE), 0);
    assert_int_equal(rec.n, 18);
    assert_string_equal(rec.field[4], "\"Jane Roe\" <+14155550101>");
    assert_string_equal(rec.field[8], "PJSIP/6000,30,t"); /* a comma inside quotes */
    assert_string_equal(rec.field[12], "218");
    assert_false(rec.quoted[12]);
    assert_string_equal(rec.field[16], "1763630043.1");
    assert_string_equal(rec.field[17], "");
    assert_true(rec.quoted[17]);
    assert_int_equal(parse(L_ANA), 0);
    assert_string_equal(rec.field[4], "\"Ana \"\"Nina\"\" Ruiz\" <0612345678>");
}

static void comma_in_clid_and_empty_unquoted_date(void **state)
{
    (void)state;
    assert_int_equal(parse(L_ACME), 0);
    assert_int_equal(rec.n, 18);
    assert_string_equal(rec.field[4], "\"Acme, Ltd\" <+442079460123>");
    assert_string_equal(rec.field[10], "");
    assert_false(rec.quoted[10]);  /* a zero date: an empty bare field */
    assert_string_equal(rec.field[11], "2026-11-20 09:31:57");
    assert_string_equal(rec.field[17], "vip");
}

static void edges(void **state)
{
    (void)state;
    assert_int_equal(parse(""), 0);
    assert_int_equal(rec.n, 1);
    assert_string_equal(rec.field[0], "");
    assert_int_equal(parse("a,,\"\","), 0);
    assert_int_equal(rec.n, 4);
    assert_string_equal(rec.field[0], "a");
    assert_false(rec.quoted[1]);
    assert_true(rec.quoted[2]);
    assert_string_equal(rec.field[3], "");
    assert_int_equal(parse("\"\"\"\""), 0); /* one field holding one quote */
    assert_string_equal(rec.field[0], "\"");
    assert_int_equal(parse("\"x\ny\",z"), 0); /* a newline byte inside quotes is data to the line parser */
    assert_string_equal(rec.field[0], "x\ny");
}

static void errors_name_the_column(void **state)
{
    (void)state;
    assert_int_equal(parse("\"a\",\"b"), -1);
    assert_string_equal(why, "unterminated quoted field starting at column 5");
    assert_int_equal(parse("\"a\"x,b"), -1);
    assert_string_equal(why, "text after the closing quote at column 4");
    assert_int_equal(parse("ab\"c\",d"), -1);
    assert_string_equal(why, "quote inside an unquoted field at column 3");
    char nul[] = "a,b\0c";
    assert_int_equal(csv_parse(nul, 5, &rec, why, sizeof why), -1);
    assert_string_equal(why, "NUL byte at column 4");
    char many[200] = "";
    for (int i = 0; i < 65; i++)
        strcat(many, i ? ",1" : "1");
    assert_int_equal(parse(many), -1);
    assert_string_equal(why, "more than 64 fields");
    many[strlen(many) - 2] = '\0'; /* 64 fields is fine */
    assert_int_equal(parse(many), 0);
    assert_int_equal(rec.n, 64);
}

static void freeswitch_all_quoted(void **state)
{
    (void)state;
    assert_int_equal(parse("\"Jane Roe\",\"+14155550101\",\"6000\",\"default\",\"2026-11-20 09:14:03\",\"\","
                           "\"2026-11-20 09:14:33\",\"30\",\"0\",\"NO_ANSWER\",\"0b0e-11\",\"\",\"\",\"PCMU\",\"PCMU\""), 0);
    assert_int_equal(rec.n, 15);
    assert_string_equal(rec.field[7], "30");
    assert_true(rec.quoted[7]);
    assert_string_equal(rec.field[9], "NO_ANSWER");
}

static void whole_fixture_file(void **state)
{
    (void)state;
    FILE *f = fopen("tests/unit/phonelog/fixtures/asterisk-Master.sample.csv", "r");
    assert_non_null(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        assert_int_equal(parse(line), 0);
        assert_int_equal(rec.n, 18);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(doubled_quotes_in_clid, teardown),
        cmocka_unit_test_teardown(comma_in_clid_and_empty_unquoted_date, teardown),
        cmocka_unit_test_teardown(edges, teardown),
        cmocka_unit_test_teardown(errors_name_the_column, teardown),
        cmocka_unit_test_teardown(freeswitch_all_quoted, teardown),
        cmocka_unit_test_teardown(whole_fixture_file, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
