/* omni-twitter's page parsing (connectors/twitter/tw_parse.c) on the recorded X API v2 responses in
 * ../shared/fixtures/twitter, byte for byte, and on pages written here for what the recordings lack
 * (DMs with senders, own DMs, other event types, entities). Every message built must pass the router's
 * validation. Run from the repository root (tests/run does); OMNI_FIXTURES overrides the fixtures folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../connectors/twitter/tw_parse.h"
#include "omni/log.h"
#include "omni/util.h"

static char *fixture(const char *name, size_t *len)
{
    const char *d = getenv("OMNI_FIXTURES");
    char *path = omni_asprintf("%s/twitter/%s", d ? d : "../shared/fixtures", name);
    char *text = omni_read_file(path, 1 << 20, len);
    if (text == NULL)
        fail_msg("cannot read %s", path);
    free(path);
    return text;
}

static int parse_text(const char *text, size_t len, const tw_parse_opts_t *o, tw_page_t *page, char *err)
{
    int rc = tw_parse_page(text, len, o, page, err, 256);
    omni_limits_t lim;
    omni_limits_default(&lim);
    for (size_t i = 0; rc == 0 && i < page->n; i++) {
        omni_msg_error_t e;
        if (omni_msg_validate(page->msgs[i], &lim, &e) != 0)
            fail_msg("message %zu refused: %s: %s", i, e.field, e.reason);
    }
    return rc;
}

static int parse_fixture(const char *name, const tw_parse_opts_t *o, tw_page_t *page, char *err)
{
    size_t len;
    char *text = fixture(name, &len);
    int rc = parse_text(text, len, o, page, err);
    free(text);
    return rc;
}

static const char *meta(const omni_msg_t *m, const char *key)
{
    return json_string_value(json_object_get(json_object_get(m->json, "meta"), key));
}

/* The X docs' example: expansions=author_id gives includes.users, created_at is there, a next page too. */
static void test_mentions_with_author(void **state)
{
    (void)state;
    tw_parse_opts_t o = { .kind = TW_MENTIONS, .own_user_id = "783214", .now_ms = 0 };
    tw_page_t p;
    char err[256];
    assert_int_equal(parse_fixture("x-docs-user-mention-quickstart-response.json", &o, &p, err), 0);
    assert_int_equal(p.n, 1);
    omni_msg_t *m = p.msgs[0];
    assert_string_equal(m->id, "twitter:1301573587187331074");
    assert_string_equal(m->channel, "twitter");
    assert_string_equal(m->from_id, "1234567890");
    assert_string_equal(m->from_name, "Dev Person");
    assert_string_equal(m->text, "Hey @XDevelopers, love the new API!");
    assert_string_equal(m->received_at, "2024-01-15T10:30:00.000Z");
    assert_string_equal(m->thread, "1301573587187331074");
    assert_string_equal(meta(m, "kind"), "mention");
    assert_string_equal(meta(m, "username"), "developer");
    assert_string_equal(meta(m, "tweet_id"), "1301573587187331074");
    assert_string_equal(meta(m, "url"), "https://x.com/developer/status/1301573587187331074");
    assert_string_equal(p.newest_id, "1301573587187331074");
    assert_string_equal(p.next_token, "t3buvdr5pujq9g7bggsnf3ep2ha28");
    assert_false(p.reached_after);
    tw_page_free(&p);

    /* The same page once its tweet is taken: passed over, and older pages hold nothing new. */
    o.after_id = "1301573587187331074";
    assert_int_equal(parse_fixture("x-docs-user-mention-quickstart-response.json", &o, &p, err), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.passed_over, 1);
    assert_true(p.reached_after);
    tw_page_free(&p);
}

/* tweepy's recording asked for no fields: no author_id, no created_at. Those tweets cannot be routed (no
 * sender) and are skipped, counted; the page's newest id and next token still move the cursor. */
static void test_mentions_recorded_without_fields(void **state)
{
    (void)state;
    tw_parse_opts_t o = { .kind = TW_MENTIONS };
    tw_page_t p;
    char err[256];
    assert_int_equal(parse_fixture("tweepy-GET-2-users-783214-mentions.json", &o, &p, err), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.skipped, 10);
    assert_string_equal(p.newest_id, "1578516295611748353");
    assert_string_equal(p.next_token, "7140dibdnow9c7btw423i3sy3u5zupmkcpofxcsmxj48j");
    tw_page_free(&p);

    /* The same bytes with an author_id added to each tweet (expansions=author_id) become messages whose
     * time is the snowflake's, and whose text keeps the recorded surrogate pair as one emoji. */
    size_t len;
    char *text = fixture("tweepy-GET-2-users-783214-mentions.json", &len);
    char *with = omni_malloc(len * 2);
    char *w = with;
    for (const char *s = text; *s;) {
        const char *hit = strstr(s, "{\"edit_history_tweet_ids\"");
        if (hit == NULL) {
            w = stpcpy(w, s);
            break;
        }
        memcpy(w, s, (size_t)(hit - s));
        w += hit - s;
        w = stpcpy(w, "{\"author_id\":\"42\",\"edit_history_tweet_ids\"");
        s = hit + strlen("{\"edit_history_tweet_ids\"");
    }
    assert_int_equal(parse_text(with, strlen(with), &o, &p, err), 0);
    assert_int_equal(p.n, 10);
    assert_string_equal(p.msgs[0]->id, "twitter:1578516295611748353");
    assert_string_equal(p.msgs[0]->received_at, "2022-10-07T22:43:06.945Z");
    assert_string_equal(p.msgs[0]->from_id, "42");
    assert_null(p.msgs[0]->from_name);
    assert_string_equal(meta(p.msgs[0], "url"), "https://x.com/i/status/1578516295611748353");
    assert_string_equal(p.msgs[5]->text, "@Twitter make \xF0\x9F\xA4\xA8 an available reaction emoji in dms");
    tw_page_free(&p);

    /* The same tweets written by the account itself (it mentions itself in a thread of its own): not a
     * customer's message, passed over as its own DMs are; the cursor still moves past them. */
    o.own_user_id = "42";
    assert_int_equal(parse_text(with, strlen(with), &o, &p, err), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.passed_over, 10);
    assert_int_equal(p.skipped, 0);
    assert_string_equal(p.newest_id, "1578516295611748353");
    tw_page_free(&p);
    free(with);
    free(text);
}

static void test_dm_pages_recorded(void **state)
{
    (void)state;
    tw_parse_opts_t o = { .kind = TW_DMS, .own_user_id = "1072250532645998596" };
    tw_page_t p;
    char err[256];
    assert_int_equal(parse_fixture("tweepy-GET-2-dm_events-empty.json", &o, &p, err), 0);
    assert_int_equal(p.n, 0);
    assert_null(p.newest_id);
    assert_null(p.next_token);
    tw_page_free(&p);
    /* Recorded without dm_event.fields: no sender_id, so skipped; the cursor still learns the newest id. */
    static const char conv[] = "tweepy-GET-2-dm_conversations-750362064426721281-1072250532645998596-dm_events.json";
    assert_int_equal(parse_fixture(conv, &o, &p, err), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.skipped, 2);
    assert_string_equal(p.newest_id, "1585800613752881156");
    assert_string_equal(p.next_token, "18LAA5G1SL0NR5OG0G00ZZZZ");
    tw_page_free(&p);
}

static void test_dm_events(void **state)
{
    (void)state;
    const char *page =
        "{\"data\":["
        "{\"id\":\"1585800613752881156\",\"event_type\":\"MessageCreate\",\"text\":\"a &amp; b\","
        "\"sender_id\":\"750362064426721281\",\"dm_conversation_id\":\"750362064426721281-1072250532645998596\"},"
        "{\"id\":\"1585800613753000000\",\"event_type\":\"MessageCreate\",\"text\":\"our answer\","
        "\"sender_id\":\"1072250532645998596\",\"dm_conversation_id\":\"750362064426721281-1072250532645998596\"},"
        "{\"id\":\"1585800613252000000\",\"event_type\":\"ParticipantsJoin\",\"dm_conversation_id\":\"1-2\"},"
        "{\"id\":\"1585800613253812228\",\"event_type\":\"MessageCreate\",\"text\":\"older\",\"sender_id\":\"9\","
        "\"created_at\":\"2022-10-28T01:08:23.000Z\"}],"
        "\"includes\":{\"users\":[{\"id\":\"750362064426721281\",\"username\":\"ann\",\"name\":\"Ann\"}]},"
        "\"meta\":{\"result_count\":4}}";
    tw_parse_opts_t o = { .kind = TW_DMS, .own_user_id = "1072250532645998596", .after_id = "1585800613253812228" };
    tw_page_t p;
    char err[256];
    assert_int_equal(parse_text(page, strlen(page), &o, &p, err), 0);
    assert_int_equal(p.n, 1);
    omni_msg_t *m = p.msgs[0];
    assert_string_equal(m->id, "twitter:dm:1585800613752881156");
    assert_string_equal(m->from_id, "750362064426721281");
    assert_string_equal(m->from_name, "Ann");
    assert_string_equal(m->text, "a &amp; b"); /* DM text is not HTML-escaped: kept as sent */
    assert_string_equal(m->thread, "dm:750362064426721281-1072250532645998596");
    assert_string_equal(m->received_at, "2022-10-28T01:08:23.726Z");
    assert_string_equal(meta(m, "kind"), "dm");
    assert_string_equal(meta(m, "username"), "ann");
    assert_string_equal(meta(m, "dm_event_id"), "1585800613752881156");
    assert_int_equal(p.passed_over, 3); /* our own DM, a join event, and one at after_id */
    assert_true(p.reached_after);
    assert_string_equal(p.newest_id, "1585800613753000000"); /* our own DM counts for the cursor */
    tw_page_free(&p);
}

static void test_tweet_entities_and_bad_items(void **state)
{
    (void)state;
    const char *page =
        "{\"data\":["
        "{\"id\":\"20\",\"author_id\":\"7\",\"text\":\"Q&amp;A: 1 &lt; 2 &gt; 0 &amp;amp; &nbsp;\",\"lang\":\"en\","
        "\"conversation_id\":\"19\",\"created_at\":\"2026-11-22T08:00:00Z\"},"
        "{\"id\":\"x1\",\"author_id\":\"7\",\"text\":\"bad id\"},"
        "{\"author_id\":\"7\",\"text\":\"no id\"},"
        "{\"id\":\"18\",\"author_id\":\"007\",\"text\":\"leading zero\"},"
        "{\"id\":\"17\",\"author_id\":\"7\",\"text\":5},"
        "{\"id\":\"16\",\"author_id\":\"7\",\"text\":\"und\",\"lang\":\"und\"}],"
        "\"meta\":{\"next_token\":\"\"}}";
    tw_parse_opts_t o = { .kind = TW_MENTIONS, .now_ms = 1764576000000LL };
    tw_page_t p;
    char err[256];
    assert_int_equal(parse_text(page, strlen(page), &o, &p, err), 0);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.msgs[0]->text, "Q&A: 1 < 2 > 0 &amp; &nbsp;");
    assert_string_equal(p.msgs[0]->lang, "en");
    assert_string_equal(p.msgs[0]->thread, "19");
    assert_null(p.msgs[1]->lang);
    assert_string_equal(meta(p.msgs[1], "lang"), "und");
    assert_string_equal(p.msgs[1]->received_at, "2025-12-01T08:00:00.000Z"); /* not a snowflake: now */
    assert_int_equal(p.skipped, 4);
    assert_null(p.next_token); /* an empty token is no next page */
    assert_string_equal(p.newest_id, "20");
    tw_page_free(&p);
}

/* A tweet the router would refuse (text over its 64 KiB limit) is skipped here, not sent to be refused. */
static void test_over_the_routers_limits(void **state)
{
    (void)state;
    char *long_text = omni_malloc(70001);
    memset(long_text, 'x', 70000);
    long_text[70000] = '\0';
    char *body = omni_asprintf("{\"data\":[{\"id\":\"21\",\"author_id\":\"7\",\"text\":\"%s\"},"
                               "{\"id\":\"20\",\"author_id\":\"7\",\"text\":\"fine\"}]}", long_text);
    tw_parse_opts_t o = { .kind = TW_MENTIONS };
    tw_page_t p;
    char err[256];
    assert_int_equal(parse_text(body, strlen(body), &o, &p, err), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.skipped, 1);
    assert_string_equal(p.msgs[0]->id, "twitter:20");
    assert_string_equal(p.newest_id, "21"); /* the cursor moves past it */
    tw_page_free(&p);
    free(body);
    free(long_text);
}

/* Valid JSON jansson alone refuses whole: a text X cut inside an emoji's surrogate pair (a lone \ud83d) and a
 * string holding U+0000. Refusing the page would stop the feed for good (the same page read again and refused);
 * the half surrogate is read as U+FFFD, the item with the NUL skipped (named), a user name with one left out. */
static void test_odd_strings_cost_their_item_only(void **state)
{
    (void)state;
    const char *page =
        "{\"data\":["
        "{\"id\":\"23\",\"author_id\":\"7\",\"text\":\"cut \\ud83d\"},"
        "{\"id\":\"22\",\"author_id\":\"7\",\"text\":\"a \\u0000 b\"},"
        "{\"id\":\"99\\u00004\",\"author_id\":\"7\",\"text\":\"an id cut short\"},"
        "{\"id\":\"21\",\"author_id\":\"8\",\"text\":\"pair \\ud83d\\ude00 \\\\ud83d \\udc00\"}],"
        "\"includes\":{\"users\":[{\"id\":\"7\",\"name\":\"Ann\",\"username\":\"ann\"},"
        "{\"id\":\"8\",\"name\":\"B\\u0000ob\",\"username\":\"bob\"}]}}";
    tw_parse_opts_t o = { .kind = TW_MENTIONS };
    tw_page_t p;
    char err[256] = "";
    assert_int_equal(parse_text(page, strlen(page), &o, &p, err), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.skipped, 2);
    assert_string_equal(p.msgs[0]->id, "twitter:23");
    assert_string_equal(p.msgs[0]->text, "cut \xef\xbf\xbd");
    assert_string_equal(p.msgs[1]->id, "twitter:21");
    assert_string_equal(p.msgs[1]->text, "pair \xf0\x9f\x98\x80 \\ud83d \xef\xbf\xbd");
    assert_null(p.msgs[1]->from_name);
    assert_string_equal(meta(p.msgs[1], "username"), "bob");
    assert_string_equal(p.newest_id, "23");
    tw_page_free(&p);
}

static void test_malformed_pages(void **state)
{
    (void)state;
    static const struct { const char *body, *err; } cases[] = {
        { "not json", "not JSON" },
        { "[1]", "not a JSON object" },
        { "{\"data\":{}}", "\"data\" is not an array" },
        { "{\"data\":[],\"data\":[]}", "not JSON" },
        { "{\"errors\":[{\"title\":\"Invalid Request\",\"detail\":\"bad since_id\"}]}",
          "API error: Invalid Request: bad since_id" },
    };
    tw_parse_opts_t o = { .kind = TW_MENTIONS };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tw_page_t p;
        char err[256] = "";
        assert_int_equal(tw_parse_page(cases[i].body, strlen(cases[i].body), &o, &p, err, sizeof err), -1);
        if (strstr(err, cases[i].err) == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\"", cases[i].body, err, cases[i].err);
    }
    /* Partial errors beside a page's meta (every item of it deleted, withheld or by a suspended author) are a page,
     * empty: refusing it would stop the feed at every read of it. */
    const char *partial = "{\"errors\":[{\"resource_type\":\"tweet\",\"title\":\"Not Found Error\","
                          "\"detail\":\"Could not find tweet with id: [20].\"}],\"meta\":{\"result_count\":0}}";
    tw_page_t empty;
    char perr[256] = "";
    assert_int_equal(tw_parse_page(partial, strlen(partial), &o, &empty, perr, sizeof perr), 0);
    assert_int_equal(empty.n, 0);
    tw_page_free(&empty);
    /* The recorded 429 body is an error document too. */
    tw_page_t p;
    char err[256];
    assert_int_equal(parse_fixture("v2-429-body.json", &o, &p, err), -1);
    assert_string_equal(err, "API error: Too Many Requests: Too Many Requests");
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(tw_id_cmp("9", "10") < 0);
    assert_true(tw_id_cmp("1585800613752881156", "1585800613253812228") > 0);
    assert_int_equal(tw_id_cmp("42", "42"), 0);
    assert_int_equal(tw_snowflake_ms("1578516295611748353"), 1665182586945LL);
    assert_int_equal(tw_snowflake_ms("20"), -1);
    assert_int_equal(tw_snowflake_ms("99999999999999999999"), -1);
    assert_int_equal(tw_snowflake_ms("12a"), -1);
}

int main(void)
{
    omni_log_set_level(OMNI_LOG_ERROR); /* the skipped items' warnings are expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mentions_with_author),
        cmocka_unit_test(test_mentions_recorded_without_fields),
        cmocka_unit_test(test_dm_pages_recorded),
        cmocka_unit_test(test_dm_events),
        cmocka_unit_test(test_tweet_entities_and_bad_items),
        cmocka_unit_test(test_over_the_routers_limits),
        cmocka_unit_test(test_odd_strings_cost_their_item_only),
        cmocka_unit_test(test_malformed_pages),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
