/* omni-twitter's cursor (connectors/twitter/tw_cursor.c): since moves only when a round is complete, a
 * round in progress survives a restart, and the state file reads back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../connectors/twitter/tw_cursor.h"

static tw_page_t page(const char *newest, const char *next, bool reached)
{
    return (tw_page_t){ .newest_id = (char *)newest, .next_token = (char *)next, .reached_after = reached };
}

static void test_round_of_pages(void **state)
{
    (void)state;
    tw_cursor_t c = { .since = strdup("100") };
    tw_page_t p1 = page("300", "T1", false), p2 = page("250", "T2", false), p3 = page("150", NULL, false);
    tw_cursor_advance(&c, &p1);
    assert_string_equal(c.since, "100"); /* older pages still to read: since stays */
    assert_string_equal(c.round_newest, "300");
    assert_string_equal(c.next_token, "T1");
    tw_cursor_advance(&c, &p2);
    assert_string_equal(c.since, "100");
    assert_string_equal(c.round_newest, "300");
    assert_string_equal(c.next_token, "T2");
    tw_cursor_advance(&c, &p3);
    assert_string_equal(c.since, "300");
    assert_null(c.round_newest);
    assert_null(c.next_token);
    /* An empty page changes nothing. */
    tw_page_t empty = page(NULL, NULL, false);
    tw_cursor_advance(&c, &empty);
    assert_string_equal(c.since, "300");
    /* DMs: a page reaching since ends the round even with a next token. */
    tw_page_t d1 = page("400", "T9", true);
    tw_cursor_advance(&c, &d1);
    assert_string_equal(c.since, "400");
    assert_null(c.next_token);
    tw_cursor_clear(&c);
}

static void test_state_file(void **state)
{
    (void)state;
    tw_cursor_t c = { .since = strdup("100"), .round_newest = strdup("300"), .next_token = strdup("T1"),
                      .started = true }, back = { 0 };
    char *text = tw_cursor_format(&c, "783214");
    char err[128];
    assert_int_equal(tw_cursor_parse(text, "783214", &back, err, sizeof err), 0);
    assert_true(tw_cursor_equal(&c, &back));
    assert_int_equal(tw_cursor_parse(text, "42", &back, err, sizeof err), 1); /* another account */
    assert_null(back.since);
    assert_int_equal(tw_cursor_parse("{\"v\":2}", "42", &back, err, sizeof err), -1);
    assert_int_equal(tw_cursor_parse("garbage", "42", &back, err, sizeof err), -1);
    assert_int_equal(tw_cursor_parse("{\"v\":1,\"user_id\":\"42\",\"since\":5}", "42", &back, err, sizeof err), -1);
    assert_string_equal(err, "\"since\" is not a string of 1..512 bytes");
    /* an id the API would refuse at every call (a hand-edited file): the feed starts afresh instead */
    const char *latest = "{\"v\":1,\"user_id\":\"42\",\"since\":\"latest\"}";
    assert_int_equal(tw_cursor_parse(latest, "42", &back, err, sizeof err), -1);
    assert_string_equal(err, "\"since\" is not a decimal id");
    assert_null(back.since);
    const char *zero = "{\"v\":1,\"user_id\":\"42\",\"round_newest\":\"0123\"}";
    assert_int_equal(tw_cursor_parse(zero, "42", &back, err, sizeof err), -1);
    assert_string_equal(err, "\"round_newest\" is not a decimal id");
    tw_cursor_restart_round(&c);
    assert_string_equal(c.since, "100");
    assert_null(c.next_token);
    assert_false(tw_cursor_equal(&c, &back));
    free(text);
    tw_cursor_clear(&c);
    tw_cursor_clear(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_of_pages),
        cmocka_unit_test(test_state_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
