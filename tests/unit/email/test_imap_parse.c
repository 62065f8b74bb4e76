/* IMAP response parsing, and the literal capture on a response's bytes fed in pieces (responses copied
 * from Dovecot 2.3; some as curl 7.88's header callback delivered them, line by line, when the connector
 * read through curl: the capture must still take any cut of the stream). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../../connectors/email/imap_parse.h"

static void test_select(void **state)
{
    (void)state;
    uint32_t uv = 0, un = 0;
    const char *r = "* FLAGS (\\Answered \\Seen)\r\n* 18 EXISTS\r\n* OK [UNSEEN 15] First unseen.\r\n"
                    "* OK [UIDVALIDITY 1795337233] UIDs valid\r\n* OK [UIDNEXT 19] Predicted next UID\r\n";
    assert_int_equal(imap_parse_select(r, strlen(r), &uv, &un), 0);
    assert_int_equal(uv, 1795337233u);
    assert_int_equal(un, 19);
    r = "* OK [UIDVALIDITY 5] UIDs valid\r\n"; /* no UIDNEXT: STATUS is asked */
    assert_int_equal(imap_parse_select(r, strlen(r), &uv, &un), 1);
    assert_int_equal(uv, 5);
    r = "* OK [UIDNEXT 3] x\r\n";
    assert_int_equal(imap_parse_select(r, strlen(r), &uv, &un), -1);
    r = "* OK [UIDVALIDITY 5 UIDs valid\r\n* OK [UIDNEXT 3] x\r\n"; /* no ']' */
    assert_int_equal(imap_parse_select(r, strlen(r), &uv, &un), -1);
    assert_int_equal(imap_parse_select("", 0, &uv, &un), -1);
}

static void test_status_uidnext(void **state)
{
    (void)state;
    uint32_t un = 0;
    const char *r = "* STATUS INBOX (UIDNEXT 42)\r\n";
    assert_int_equal(imap_parse_status_uidnext(r, strlen(r), &un), 0);
    assert_int_equal(un, 42);
    r = "* STATUS \"Odd (UIDNEXT 7) name\" (MESSAGES 3 uidnext 9 UNSEEN 1)\r\n"; /* the last list counts */
    assert_int_equal(imap_parse_status_uidnext(r, strlen(r), &un), 0);
    assert_int_equal(un, 9);
    r = "* STATUS INBOX (MESSAGES 3)\r\n";
    assert_int_equal(imap_parse_status_uidnext(r, strlen(r), &un), -1);
    r = "* STATUS INBOX (UIDNEXT 0)\r\n* STATUS INBOX (UIDNEXT x)\r\n";
    assert_int_equal(imap_parse_status_uidnext(r, strlen(r), &un), -1);
    assert_int_equal(imap_parse_status_uidnext("", 0, &un), -1);
}

static void test_search(void **state)
{
    (void)state;
    uint32_t *u;
    size_t n;
    const char *r = "* SEARCH 9 2 14 2\r\n* SEARCH 3\r\n";
    assert_int_equal(imap_parse_search(r, strlen(r), &u, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(u[0], 2);
    assert_int_equal(u[1], 3);
    assert_int_equal(u[2], 9);
    assert_int_equal(u[3], 14);
    free(u);
    r = "* SEARCH\r\n";
    assert_int_equal(imap_parse_search(r, strlen(r), &u, &n), 0);
    assert_int_equal(n, 0);
    assert_null(u);
    r = "* SEARCH 1 two 3\r\n";
    assert_int_equal(imap_parse_search(r, strlen(r), &u, &n), -1);
    r = "* SEARCH 1 99999999999\r\n"; /* over 32 bits */
    assert_int_equal(imap_parse_search(r, strlen(r), &u, &n), -1);
}

static void test_fetch_meta(void **state)
{
    (void)state;
    imap_meta_t m;
    const char *r = "* 3 FETCH (UID 9 FLAGS (\\Seen \\Answered) RFC822.SIZE 923 "
                    "INTERNALDATE \"22-Nov-2026 08:47:12 +0000\")\r\n";
    assert_int_equal(imap_parse_fetch_meta(r, strlen(r), 9, &m), 0);
    assert_int_equal(m.size, 923);
    assert_true(m.seen);
    assert_true(m.has_internaldate);
    assert_int_equal(m.internaldate_ms, 1795337232000LL);
    r = "* 3 FETCH (UID 9 FLAGS () RFC822.SIZE 1 INTERNALDATE \" 2-Feb-2010 01:00:00 -0700\")\r\n";
    assert_int_equal(imap_parse_fetch_meta(r, strlen(r), 9, &m), 0);
    assert_false(m.seen);
    assert_int_equal(m.internaldate_ms, 1265097600000LL); /* 2010-02-02T08:00:00Z */
    /* Unsolicited FETCH for another message, then none for ours: gone. */
    r = "* 1 FETCH (FLAGS (\\Seen) UID 4)\r\n";
    assert_int_equal(imap_parse_fetch_meta(r, strlen(r), 9, &m), -1);
}

/* One answer for a set: each response goes to its UID, in any order; a UID without one is gone. */
static void test_fetch_metas(void **state)
{
    (void)state;
    const uint32_t uids[] = {4, 9, 12};
    imap_meta_t m[3];
    bool found[3];
    const char *r = "* 7 FETCH (UID 12 FLAGS () RFC822.SIZE 70 INTERNALDATE \"22-Nov-2026 08:47:12 +0000\")\r\n"
                    "* 2 FETCH (UID 4 FLAGS (\\Seen) RFC822.SIZE 40 INTERNALDATE \"22-Nov-2026 08:47:12 +0000\")\r\n"
                    "* 3 FETCH (FLAGS (\\Deleted) UID 5)\r\n";
    imap_parse_fetch_metas(r, strlen(r), uids, 3, m, found);
    assert_true(found[0] && !found[1] && found[2]);
    assert_int_equal(m[0].size, 40);
    assert_true(m[0].seen);
    assert_int_equal(m[1].size, -1);
    assert_int_equal(m[2].size, 70);
    assert_false(m[2].seen);
}

static void test_dates(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(imap_parse_datetime("01-Feb-2010 12:21:16 +0100", &ms), 0);
    assert_int_equal(ms, 1265023276000LL);
    assert_int_equal(imap_parse_datetime("1-Foo-2010 12:21:16 +0100", &ms), -1);
    assert_int_equal(imap_parse_datetime("garbage", &ms), -1);
    char d[16];
    imap_format_date(1265023276000LL, d, sizeof d);
    assert_string_equal(d, "1-Feb-2010");
    imap_format_date(1795337232000LL, d, sizeof d);
    assert_string_equal(d, "22-Nov-2026");
}

/* What curl's header callback sees for "UID FETCH 2 BODY.PEEK[]<0.196608>" on a fresh connection. */
static const char STREAM_HEAD[] =
    "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
    "A001 OK Pre-login capabilities listed, post-login capabilities have more.\r\n"
    "* 14 EXISTS\r\n* OK [UIDVALIDITY 1795337233] UIDs valid\r\n"
    "A003 OK [READ-WRITE] Select completed (0.002 + 0.000 + 0.001 secs).\r\n"
    "* 2 FETCH (UID 2 BODY[]<0> {32}\r\n";
static const char LITERAL[] = "Subject: x\r\n\r\n* 1 FETCH\r\nA004 OK";
static const char STREAM_TAIL[] = ")\r\nA004 OK Fetch completed.\r\n";

/* l, cleared, for the UID uid. */
static imap_literal_t *lit(imap_literal_t *l, uint32_t uid)
{
    *l = (imap_literal_t){.uid = uid};
    return l;
}

static void feed_in_pieces(imap_capture_t *c, const char *s, size_t len, size_t piece)
{
    for (size_t i = 0; i < len; i += piece)
        imap_capture_feed(c, s + i, len - i < piece ? len - i : piece);
}

static void test_capture(void **state)
{
    (void)state;
    assert_int_equal(strlen(LITERAL), 32);
    for (size_t piece = 1; piece <= 64; piece *= 4) {
        imap_capture_t c;
        imap_literal_t l = {.uid = 2};
        imap_capture_init(&c, &l, 1, 1000);
        feed_in_pieces(&c, STREAM_HEAD, strlen(STREAM_HEAD), piece);
        feed_in_pieces(&c, LITERAL, strlen(LITERAL), piece);
        feed_in_pieces(&c, STREAM_TAIL, strlen(STREAM_TAIL), piece);
        assert_int_equal(imap_capture_finish(&c), 0);
        assert_int_equal(l.len, 32);
        assert_memory_equal(l.data, LITERAL, 32);
        imap_capture_free(&c);
    }
}

/* A body line that starts with the command's tag ends the command early in curl: the literal comes up
 * short, and that is detected. */
static void test_capture_cut_short(void **state)
{
    (void)state;
    imap_capture_t c;
    imap_literal_t l;
    imap_capture_init(&c, lit(&l, 2), 1, 1000);
    imap_capture_feed(&c, STREAM_HEAD, strlen(STREAM_HEAD));
    imap_capture_feed(&c, LITERAL, 20);
    assert_int_equal(imap_capture_finish(&c), -1);
    assert_non_null(c.error);
    imap_capture_free(&c);
    /* curl cut a long line: the bytes after the "literal" are not ")" */
    imap_capture_init(&c, lit(&l, 2), 1, 1000);
    imap_capture_feed(&c, STREAM_HEAD, strlen(STREAM_HEAD));
    imap_capture_feed(&c, LITERAL, 32);
    imap_capture_feed(&c, "A004 OK Fetch completed.\r\n", 26);
    assert_int_equal(imap_capture_finish(&c), -1);
    imap_capture_free(&c);
}

static void test_capture_refusals(void **state)
{
    (void)state;
    imap_capture_t c;
    imap_literal_t l;
    imap_capture_init(&c, lit(&l, 7), 1, 1000); /* the literal is for UID 2, not 7 */
    imap_capture_feed(&c, STREAM_HEAD, strlen(STREAM_HEAD));
    assert_int_equal(imap_capture_finish(&c), -1);
    imap_capture_free(&c);
    imap_capture_init(&c, lit(&l, 2), 1, 10); /* over the limit */
    imap_capture_feed(&c, STREAM_HEAD, strlen(STREAM_HEAD));
    assert_int_equal(imap_capture_finish(&c), -1);
    imap_capture_free(&c);
    /* no FETCH response at all: the message is gone */
    imap_capture_init(&c, lit(&l, 2), 1, 1000);
    const char *r = "A003 OK Select completed.\r\nA004 OK Fetch completed.\r\n";
    imap_capture_feed(&c, r, strlen(r));
    assert_int_equal(imap_capture_finish(&c), 1);
    imap_capture_free(&c);
    /* an empty literal, then more items */
    imap_capture_init(&c, lit(&l, 2), 1, 1000);
    r = "* 2 FETCH (UID 2 BODY[]<0> {0}\r\n UID 2)\r\nA004 OK\r\n";
    imap_capture_feed(&c, r, strlen(r));
    assert_int_equal(imap_capture_finish(&c), 0);
    assert_int_equal(l.len, 0);
    imap_capture_free(&c);
}

/* Several bodies in one response, the way Dovecot answers "UID FETCH 3:5 (UID BODY.PEEK[])": each literal
 * to its UID, fed in pieces of any size; a UID that got none makes the capture incomplete. */
static void test_capture_several(void **state)
{
    (void)state;
    const char *r = "* 1 FETCH (UID 3 BODY[] {5}\r\nA\r\nB\r)\r\n"
                    "* 3 FETCH (UID 5 BODY[] {0}\r\n)\r\n"
                    "* 2 FETCH (UID 4 BODY[] {32}\r\nSubject: x\r\n\r\n* 1 FETCH\r\nA004 OK)\r\n"
                    "A004 OK Fetch completed.\r\n";
    for (size_t piece = 1; piece <= 64; piece *= 4) {
        imap_literal_t l[3] = {{.uid = 3}, {.uid = 4}, {.uid = 5}};
        imap_capture_t c;
        imap_capture_init(&c, l, 3, 1000);
        feed_in_pieces(&c, r, strlen(r), piece);
        assert_int_equal(imap_capture_finish(&c), 0);
        assert_int_equal(l[0].len, 5);
        assert_memory_equal(l[0].data, "A\r\nB\r", 5);
        assert_int_equal(l[1].len, 32);
        assert_memory_equal(l[1].data, LITERAL, 32);
        assert_int_equal(l[2].len, 0);
        assert_true(l[0].whole && l[1].whole && l[2].whole);
        imap_capture_free(&c);
        assert_null(l[0].data);
    }
    const char *first = "* 1 FETCH (UID 3 BODY[] {5}\r\nA\r\nB\r)\r\n", *last = "A004 OK Fetch completed.\r\n";
    imap_literal_t l[2] = {{.uid = 3}, {.uid = 4}}; /* no literal for 4 */
    imap_capture_t c;
    imap_capture_init(&c, l, 2, 1000);
    imap_capture_feed(&c, first, strlen(first));
    imap_capture_feed(&c, last, strlen(last));
    assert_int_equal(imap_capture_finish(&c), -1);
    assert_true(l[0].whole && !l[1].whole);
    imap_capture_free(&c);
    /* a literal for a UID not asked for */
    imap_capture_init(&c, l + 1, 1, 1000);
    imap_capture_feed(&c, first, strlen(first));
    assert_int_equal(imap_capture_finish(&c), -1);
    imap_capture_free(&c);
    /* one announced twice */
    imap_literal_t one = {.uid = 3};
    imap_capture_init(&c, &one, 1, 1000);
    imap_capture_feed(&c, first, strlen(first));
    imap_capture_feed(&c, first, strlen(first));
    assert_int_equal(imap_capture_finish(&c), -1);
    imap_capture_free(&c);
}

/* RFC 3501 fixes no order of a FETCH response's items: a server that sends the UID after the body has
 * each literal given to the UID named after it; a response that names none after its literal is an error. */
static void test_capture_uid_after_literal(void **state)
{
    (void)state;
    const char *r = "* 1 FETCH (BODY[] {5}\r\nA\r\nB\r UID 3)\r\n"
                    "* 2 FETCH (FLAGS (\\Seen) BODY[] {32}\r\nSubject: x\r\n\r\n* 1 FETCH\r\nA004 OK FLAGS () UID 4)\r\n"
                    "* 3 FETCH (UID 5 BODY[] {0}\r\n)\r\n"
                    "A004 OK Fetch completed.\r\n";
    for (size_t piece = 1; piece <= 64; piece *= 4) {
        imap_literal_t l[3] = {{.uid = 3}, {.uid = 4}, {.uid = 5}};
        imap_capture_t c;
        imap_capture_init(&c, l, 3, 1000);
        feed_in_pieces(&c, r, strlen(r), piece);
        assert_int_equal(imap_capture_finish(&c), 0);
        assert_int_equal(l[0].len, 5);
        assert_memory_equal(l[0].data, "A\r\nB\r", 5);
        assert_int_equal(l[1].len, 32);
        assert_memory_equal(l[1].data, LITERAL, 32);
        assert_true(l[0].whole && l[1].whole && l[2].whole);
        imap_capture_free(&c);
    }
    static const char *const bad[] = {
        "* 1 FETCH (BODY[] {5}\r\nA\r\nB\r)\r\nA004 OK\r\n",           /* no UID at all */
        "* 1 FETCH (BODY[] {5}\r\nA\r\nB\r UID 9)\r\nA004 OK\r\n",     /* a UID not asked for */
        "* 1 FETCH (BODY[] {5}\r\nA\r\nB",                            /* cut inside the literal */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        imap_literal_t l = {.uid = 3};
        imap_capture_t c;
        imap_capture_init(&c, &l, 1, 1000);
        imap_capture_feed(&c, bad[i], strlen(bad[i]));
        assert_int_equal(imap_capture_finish(&c), -1);
        assert_non_null(c.error);
        imap_capture_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_status_uidnext),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_fetch_meta),
        cmocka_unit_test(test_fetch_metas),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_capture),
        cmocka_unit_test(test_capture_cut_short),
        cmocka_unit_test(test_capture_refusals),
        cmocka_unit_test(test_capture_several),
        cmocka_unit_test(test_capture_uid_after_literal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
