/* libomni message.c: building a message in a connector, validating and serializing it, formatting
 * errors, channel names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message_int.h"
#include "omni/message.h"

static void test_error_str(void **state)
{
    (void)state;
    omni_msg_error_t err = { .id = "sms:1", .field = "text", .reason = "missing" };
    char buf[512];
    assert_string_equal(omni_msg_error_str(&err, buf, sizeof buf), "message sms:1: text: missing");
    err.field[0] = '\0';
    assert_string_equal(omni_msg_error_str(&err, buf, sizeof buf), "message sms:1: missing");
    err.id[0] = '\0';
    assert_string_equal(omni_msg_error_str(&err, buf, sizeof buf), "missing");
    strcpy(err.field, "id");
    assert_string_equal(omni_msg_error_str(&err, buf, sizeof buf), "id: missing");
    char small[8];
    assert_string_equal(omni_msg_error_str(&err, small, sizeof small), "id: mis");
}

static void test_build(void **state)
{
    (void)state;
    omni_msg_t *msg = omni_msg_new("sms:SM9", "sms", "+14155550100", "2026-11-22T08:42:00.000Z", "");
    assert_string_equal(msg->text, "");
    assert_int_equal(omni_msg_set(msg, "subject", "Missed call"), 0);
    assert_int_equal(omni_msg_set(msg, "from.name", "Ann"), 0);
    assert_int_equal(omni_msg_set(msg, "lang", "en"), 0);
    assert_int_equal(omni_msg_set(msg, "thread", "t1"), 0);
    assert_int_equal(omni_msg_set(msg, "to", "+15005550006"), 0);
    assert_int_equal(omni_msg_set(msg, "to", NULL), 0);                /* removed again */
    assert_int_equal(omni_msg_set(msg, "text", "x"), -1);              /* not an optional field */
    assert_int_equal(omni_msg_set(msg, "id", "y"), -1);
    assert_int_equal(omni_msg_set(msg, "bogus", "z"), -1);
    assert_int_equal(omni_msg_set(msg, "subject", "Missed call from Ann"), 0);   /* replaced: rebound */
    assert_string_equal(msg->subject, "Missed call from Ann");
    assert_string_equal(msg->from_name, "Ann");
    assert_null(msg->to);
    omni_msg_add_attachment(msg, "v.wav", "audio/wav", 1234, NULL);
    omni_msg_add_attachment(msg, "p.png", "image/png", 0, "https://example.com/p.png");
    omni_msg_set_meta(msg, "duration", json_integer(0));
    omni_msg_set_meta(msg, "gone", json_true());
    omni_msg_set_meta(msg, "gone", NULL);
    omni_msg_set_meta(msg, "trunk", json_string("sip-1"));
    omni_msg_error_t err;
    if (omni_msg_validate(msg, NULL, &err) != 0)
        fail_msg("%s: %s", err.field, err.reason);
    size_t len;
    char *s = omni_msg_serialize(msg, &len);
    assert_string_equal(s,
        "{\"attachments\":[{\"name\":\"v.wav\",\"size\":1234,\"type\":\"audio/wav\"},{\"name\":\"p.png\","
        "\"size\":0,\"type\":\"image/png\",\"url\":\"https://example.com/p.png\"}],\"channel\":\"sms\","
        "\"from\":{\"id\":\"+14155550100\",\"name\":\"Ann\"},\"id\":\"sms:SM9\",\"lang\":\"en\",\"meta\":"
        "{\"duration\":0,\"trunk\":\"sip-1\"},\"received_at\":\"2026-11-22T08:42:00.000Z\",\"subject\":"
        "\"Missed call from Ann\",\"text\":\"\",\"thread\":\"t1\"}");
    assert_int_equal(len, strlen(s));
    omni_msg_t *back = omni_msg_parse(s, len, NULL, &err);   /* what a connector builds, a router reads */
    assert_non_null(back);
    assert_string_equal(back->subject, "Missed call from Ann");
    omni_msg_destroy(&back);
    free(s);

    /* the frame limit applies to a built message's serialization */
    omni_limits_t lim;
    omni_limits_default(&lim);
    lim.message_bytes = 100;
    assert_int_equal(omni_msg_validate(msg, &lim, &err), -1);
    assert_string_equal(err.id, "sms:SM9");
    assert_string_equal(err.field, "");
    assert_memory_equal(err.reason, "message is ", 11);
    omni_msg_destroy(&msg);
    assert_null(msg);
}

static void test_build_invalid(void **state)
{
    (void)state;
    omni_msg_error_t err;
    /* NULL arguments leave fields out; validation names them */
    omni_msg_t *msg = omni_msg_new(NULL, "sms", "+1", "2026-11-22T08:42:00Z", "x");
    assert_int_equal(omni_msg_validate(msg, NULL, &err), -1);
    assert_string_equal(err.field, "id");
    assert_string_equal(err.reason, "missing");
    omni_msg_destroy(&msg);
    msg = omni_msg_new("m", "sms", NULL, "2026-11-22T08:42:00Z", NULL);
    assert_int_equal(omni_msg_validate(msg, NULL, &err), -1);
    assert_string_equal(err.id, "m");
    assert_string_equal(err.field, "from.id");
    omni_msg_destroy(&msg);
    msg = omni_msg_new("m", "fax", "1", "2026-11-22T08:42:00Z", "x");
    assert_int_equal(omni_msg_validate(msg, NULL, &err), -1);
    assert_string_equal(err.field, "channel");
    omni_msg_destroy(&msg);
    /* bytes that are not UTF-8 (a connector copying a raw SMS body): named, not silently dropped */
    msg = omni_msg_new("m", "sms", "1", "2026-11-22T08:42:00Z", "ok");
    omni_msg_set(msg, "subject", "Caf\xe9!");
    assert_int_equal(omni_msg_validate(msg, NULL, &err), -1);
    assert_string_equal(err.field, "subject");
    assert_string_equal(err.reason, "invalid UTF-8 at byte 3");
    assert_null(omni_msg_serialize(msg, NULL));   /* cannot be written as JSON */
    omni_msg_set(msg, "subject", NULL);
    omni_msg_set_meta(msg, "k\xff", json_integer(1));
    assert_int_equal(omni_msg_validate(msg, NULL, &err), -1);
    assert_string_equal(err.field, "meta");
    assert_string_equal(err.reason, "a key has invalid UTF-8 at byte 1");
    omni_msg_destroy(&msg);
    msg = omni_msg_new("m", "sms", "1", "2026-11-22T08:42:00Z", "ok");
    omni_msg_add_attachment(msg, "a", NULL, -5, NULL);
    assert_int_equal(omni_msg_validate(msg, NULL, &err), -1);
    assert_string_equal(err.field, "attachments[0].type");
    omni_msg_destroy(&msg);
    msg = omni_msg_new("m", "sms", "1", "2026-11-22T08:42:00Z", "ok");
    omni_msg_add_attachment(msg, "a", "t", -5, NULL);
    assert_int_equal(omni_msg_validate(msg, NULL, &err), -1);
    assert_string_equal(err.field, "attachments[0].size");
    assert_string_equal(err.reason, "must be a non-negative integer, not -5");
    omni_msg_destroy(&msg);
}

/* The submit path (omni__msg_serialize_valid): the same rules as omni_msg_validate, meta's size read off
 * the one serialization, the same text as omni_msg_serialize. */
static void test_serialize_valid(void **state)
{
    (void)state;
    omni_msg_error_t err;
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_t *msg = omni_msg_new("phone:pbx:1.2", "phone", "+14155550100", "2026-11-22T08:42:00.000Z",
                                   "Missed call \"now\"\n\tplease call back: a text longer than a word or two");
    omni_msg_set_meta(msg, "caller_raw", json_string("415 555 0100"));
    omni_msg_set_meta(msg, "billsec", json_integer(12));
    omni_msg_set_meta(msg, "nested", json_pack("{s:[s,b,n]}", "k", "caf\u00e9 \\ \"q\"", 1));
    size_t want_len, len;
    char *want = omni_msg_serialize(msg, &want_len);
    const char *meta_at = strstr(want, "\"meta\":") + strlen("\"meta\":");
    size_t meta_len = (size_t)(strstr(meta_at, "},\"received_at\"") + 1 - meta_at);
    lim.meta_bytes = meta_len; /* exactly the limit: taken */
    char *s = omni__msg_serialize_valid(msg, &lim, &err, &len);
    assert_non_null(s);
    assert_int_equal(len, want_len);
    assert_string_equal(s, want);
    free(s);
    lim.meta_bytes = meta_len - 1; /* one byte over: refused, as omni_msg_validate refuses it */
    assert_null(omni__msg_serialize_valid(msg, &lim, &err, &len));
    assert_string_equal(err.id, "phone:pbx:1.2");
    assert_string_equal(err.field, "meta");
    char reason[128];
    snprintf(reason, sizeof reason, "is %zu bytes as compact JSON, over the limit of %zu", meta_len, meta_len - 1);
    assert_string_equal(err.reason, reason);
    assert_int_equal(omni_msg_validate(msg, &lim, &err), -1);
    assert_string_equal(err.reason, reason);
    omni_limits_default(&lim);
    omni_msg_set(msg, "subject", "Caf\xe9!"); /* not UTF-8: refused by the rules before any writing */
    assert_null(omni__msg_serialize_valid(msg, &lim, &err, &len));
    assert_string_equal(err.field, "subject");
    free(want);
    omni_msg_destroy(&msg);
}

static void test_channel_valid(void **state)
{
    (void)state;
    static const char *const good[] = { "email", "sms", "twitter", "facebook", "phone", "x-a", "x-line",
                                        "x-web-chat-2", "x--", "x-abcdefghijklmnopqrstuvwxyz012345" };
    static const char *const bad[] = { "", "x-", "x", "Email", "mail", "smsx", " sms", "x-A", "x-a_b",
                                       "x-a b", "x-\xc3\xa9", "x-abcdefghijklmnopqrstuvwxyz0123456",
                                       "y-line", "X-line" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!omni_channel_valid(good[i]))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (omni_channel_valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
    assert_false(omni_channel_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_str),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_build_invalid),
        cmocka_unit_test(test_serialize_valid),
        cmocka_unit_test(test_channel_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
