/* UID cursors: first sight, UIDVALIDITY changes, bounded search ranges, the state file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../../connectors/email/uidstate.h"

static void test_first_sight(void **state)
{
    (void)state;
    uid_cursor_t c;
    assert_int_equal(uidstate_reconcile(&c, false, 77, 15, UID_INITIAL_UNSEEN), UID_FIRST);
    assert_int_equal(c.uidvalidity, 77);
    assert_int_equal(c.last_uid, 0);
    assert_int_equal(c.backlog_until, 14);
    assert_string_equal(c.backlog, "UNSEEN");
    assert_int_equal(uidstate_reconcile(&c, false, 77, 15, UID_INITIAL_ALL), UID_FIRST);
    assert_string_equal(c.backlog, "ALL");
    assert_int_equal(uidstate_reconcile(&c, false, 77, 15, UID_INITIAL_NONE), UID_FIRST);
    assert_int_equal(c.last_uid, 14); /* the backlog is skipped */
    assert_string_equal(c.backlog, "");
    assert_int_equal(uidstate_reconcile(&c, false, 77, 1, UID_INITIAL_UNSEEN), UID_FIRST); /* empty box */
    assert_string_equal(c.backlog, "");
    assert_int_equal(uidstate_reconcile(&c, true, 77, 9, UID_INITIAL_UNSEEN), UID_SAME);
}

static void test_ranges(void **state)
{
    (void)state;
    uid_cursor_t c;
    uidstate_reconcile(&c, false, 1, 2501, UID_INITIAL_UNSEEN);
    char crit[96];
    uint32_t end;
    assert_true(uidstate_next_search(&c, 2501, 1000, crit, sizeof crit, &end));
    assert_string_equal(crit, "UID 1:1000 UNSEEN");
    assert_int_equal(end, 1000);
    uidstate_advance(&c, 1000);
    assert_true(uidstate_next_search(&c, 2501, 1000, crit, sizeof crit, &end));
    assert_string_equal(crit, "UID 1001:2000 UNSEEN");
    uidstate_advance(&c, 2000);
    /* New mail arrived (UIDNEXT 3001): the backlog range stops at 2500, new mail is unfiltered. */
    assert_true(uidstate_next_search(&c, 3001, 1000, crit, sizeof crit, &end));
    assert_string_equal(crit, "UID 2001:2500 UNSEEN");
    uidstate_advance(&c, end);
    assert_string_equal(c.backlog, ""); /* passed */
    assert_true(uidstate_next_search(&c, 3001, 1000, crit, sizeof crit, &end));
    assert_string_equal(crit, "UID 2501:3000");
    uidstate_advance(&c, 3000);
    assert_false(uidstate_next_search(&c, 3001, 1000, crit, sizeof crit, &end));
    uidstate_advance(&c, 7); /* never backwards */
    assert_int_equal(c.last_uid, 3000);
}

static void test_uidvalidity_change(void **state)
{
    (void)state;
    uid_cursor_t c;
    uidstate_reconcile(&c, false, 1, 11, UID_INITIAL_ALL);
    uidstate_advance(&c, 10);
    c.has_last_date = true;
    c.last_date_ms = 1265023276000LL; /* 2010-02-01T11:21:16Z */
    assert_int_equal(uidstate_reconcile(&c, true, 2, 40, UID_INITIAL_UNSEEN), UID_RESET);
    assert_int_equal(c.uidvalidity, 2);
    assert_int_equal(c.last_uid, 0);
    assert_int_equal(c.backlog_until, 39);
    /* the day before the newest taken, and what the initial rule takes whatever its date (mail moved in) */
    assert_string_equal(c.backlog, "OR SINCE 31-Jan-2010 UNSEEN");
    assert_true(c.has_last_date);
    /* Nothing taken before the change: the initial rule again. */
    uid_cursor_t d;
    uidstate_reconcile(&d, false, 1, 5, UID_INITIAL_UNSEEN);
    assert_int_equal(uidstate_reconcile(&d, true, 3, 9, UID_INITIAL_UNSEEN), UID_RESET);
    assert_string_equal(d.backlog, "UNSEEN");
    /* UIDs going backwards under the same UIDVALIDITY is treated as a change too. */
    uid_cursor_t e;
    uidstate_reconcile(&e, false, 1, 100, UID_INITIAL_NONE);
    assert_int_equal(uidstate_reconcile(&e, true, 1, 50, UID_INITIAL_NONE), UID_RESET);
    /* with initial: all, everything again; with none, the recent mail only */
    c.uidvalidity = 2;
    assert_int_equal(uidstate_reconcile(&c, true, 5, 40, UID_INITIAL_ALL), UID_RESET);
    assert_string_equal(c.backlog, "ALL");
    assert_int_equal(uidstate_reconcile(&c, true, 6, 40, UID_INITIAL_NONE), UID_RESET);
    assert_string_equal(c.backlog, "SINCE 31-Jan-2010");
}

static void test_file_round_trip(void **state)
{
    (void)state;
    uidstate_t *st = uidstate_new();
    uid_cursor_t c, got;
    uidstate_reconcile(&c, false, 4000000000u, 12, UID_INITIAL_UNSEEN);
    uidstate_advance(&c, 5);
    c.has_last_date = true;
    c.last_date_ms = 1795337232000LL;
    uidstate_put(st, "support/INBOX", &c);
    assert_int_equal(uidstate_get(st, "support/Other", &got), -1);
    size_t len;
    char *text = uidstate_serialize(st, &len);
    uidstate_destroy(&st);
    assert_null(st);
    char err[200];
    st = uidstate_parse(text, len, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(uidstate_get(st, "support/INBOX", &got), 0);
    assert_true(uidstate_cursor_eq(&c, &got));
    got.last_uid++;
    assert_false(uidstate_cursor_eq(&c, &got));
    uidstate_destroy(&st);
    free(text);
    assert_null(uidstate_parse("{", 1, err, sizeof err));
    const char *bad = "{\"version\":1,\"mailboxes\":{\"a/INBOX\":{\"uidvalidity\":-1}}}";
    assert_null(uidstate_parse(bad, strlen(bad), err, sizeof err));
    assert_non_null(strstr(err, "a/INBOX"));
    const char *v2 = "{\"version\":2,\"mailboxes\":{}}";
    assert_null(uidstate_parse(v2, strlen(v2), err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sight),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_uidvalidity_change),
        cmocka_unit_test(test_file_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
