/* libomni message.c / message_check.c: parsing and validating the normalized message. Most cases take a valid base document, change one field, and check the exact field
 * and reason the refusal names. Building messages is in test_message_build.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/message.h"
#include "omni/protocol.h"
#include "omni/util.h"

#define BASE "{\"id\":\"sms:SM1\",\"channel\":\"sms\",\"from\":{\"id\":\"+14155550100\",\"name\":\"Ann\"}," \
             "\"received_at\":\"2026-11-22T08:42:00Z\",\"text\":\"hello\"}"

/* BASE with path ("from.id", "attachments") set to the JSON value, or removed when value is NULL. */
static char *mutate(const char *path, const char *value)
{
    json_t *root = json_loads(BASE, 0, NULL);
    assert_non_null(root);
    char key[128];
    json_t *obj = root;
    const char *dot;
    while ((dot = strchr(path, '.')) != NULL) {
        snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
        obj = json_object_get(obj, key);
        assert_non_null(obj);
        path = dot + 1;
    }
    if (value == NULL) {
        json_object_del(obj, path);
    } else {
        json_error_t e;
        json_t *v = json_loads(value, JSON_DECODE_ANY, &e);
        if (v == NULL)
            fail_msg("bad test value %s: %s", value, e.text);
        json_object_set_new(obj, path, v);
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static char *repeat(const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * n + 3);
    s[0] = '"';
    for (size_t i = 0; i < n; i++)
        memcpy(s + 1 + i * u, unit, u);
    s[1 + u * n] = '"';
    s[2 + u * n] = '\0';
    return s;
}

/* Parses and expects a refusal naming field and reason (reason ending in '*': a prefix). */
static void expect_refused(const char *json, size_t len, const omni_limits_t *lim, const char *id,
                           const char *field, const char *reason)
{
    omni_msg_error_t err;
    memset(&err, 'x', sizeof err);   /* everything must be set, not left over */
    omni_msg_t *msg = omni_msg_parse(json, len, lim, &err);
    if (msg != NULL)
        fail_msg("accepted %s", json);
    size_t rl = strlen(reason);
    bool prefix = rl > 0 && reason[rl - 1] == '*';
    if (strcmp(err.field, field) != 0 || (prefix ? strncmp(err.reason, reason, rl - 1) != 0
                                                 : strcmp(err.reason, reason) != 0) ||
        strcmp(err.id, id) != 0)
        fail_msg("%s\n  got  id=[%s] field=[%s] reason=[%s]\n  want id=[%s] field=[%s] reason=[%s]",
                 json, err.id, err.field, err.reason, id, field, reason);
}

static const struct { const char *path, *value, *field, *reason; } field_cases[] = {
    /* id: the id is not readable, so the error carries none */
    { "id", NULL, "id", "missing" },
    { "id", "42", "id", "must be a string, not an integer" },
    { "id", "null", "id", "must be a string, not null" },
    { "id", "\"\"", "id", "must not be empty" },
    { "id", "\"a\\u0001b\"", "id", "contains a control character: \"a\\u0001b\"" },
    { "id", "\"a\\tb\"", "id", "contains a control character: \"a\\tb\"" },
    { "id", "\"a\\u007fb\"", "id", "contains a control character: \"a\\u007fb\"" },
    { "id", "\"a\\u0085b\"", "id", "contains a control character: \"a\\xc2\\x85b\"" },
    /* every other rule: the id is reported */
    { "channel", NULL, "channel", "missing" },
    { "channel", "[]", "channel", "must be a string, not an array" },
    { "channel", "\"smtp\"", "channel",
      "not a known channel (email, sms, twitter, facebook, phone or x-<name>): \"smtp\"" },
    { "channel", "\"SMS\"", "channel", "not a known channel*" },
    { "channel", "\"x-\"", "channel", "not a known channel*" },
    { "channel", "\"x-Line\"", "channel", "not a known channel*" },
    { "channel", "\"x-line_2\"", "channel", "not a known channel*" },
    { "channel", "\"x-abcdefghijklmnopqrstuvwxyz0123456\"", "channel", "not a known channel*" },
    { "channel", "\"\"", "channel", "must not be empty" },
    { "from", NULL, "from", "missing" },
    { "from", "\"+14155550100\"", "from", "must be an object, not a string" },
    { "from", "{}", "from.id", "missing" },
    { "from", "{\"id\":\"\"}", "from.id", "must not be empty" },
    { "from", "{\"id\":14155550100}", "from.id", "must be a string, not an integer" },
    { "from", "{\"id\":\"a\\nb\"}", "from.id", "contains a control character: \"a\\nb\"" },
    { "from", "{\"id\":\"a\",\"name\":false}", "from.name", "must be a string, not false" },
    { "from", "{\"id\":\"a\",\"email\":\"x\"}", "from.email", "unknown field (from has only id and name)" },
    { "received_at", NULL, "received_at", "missing" },
    { "received_at", "1795336920", "received_at", "must be a string, not an integer" },
    { "received_at", "\"yesterday\"", "received_at", "not an RFC 3339 date-time: \"yesterday\"" },
    { "received_at", "\"2026-02-30T08:42:00Z\"", "received_at",
      "not an RFC 3339 date-time: \"2026-02-30T08:42:00Z\"" },
    { "received_at", "\"2026-11-22T24:00:00Z\"", "received_at", "not an RFC 3339 date-time*" },
    { "received_at", "\"bad\\\"\\\\\\n\\u0001\"", "received_at",
      "not an RFC 3339 date-time: \"bad\\\"\\\\\\n\\u0001\"" },
    { "text", NULL, "text", "missing" },
    { "text", "null", "text", "must be a string, not null" },
    { "text", "{\"body\":\"x\"}", "text", "must be a string, not an object" },
    { "subject", "5", "subject", "must be a string, not an integer" },
    { "thread", "1.5", "thread", "must be a string, not a real number" },
    { "to", "[\"a\"]", "to", "must be a string, not an array" },
    { "lang", "\"en_US\"", "lang", "not a language tag (like \"en\" or \"pt-BR\"): \"en_US\"" },
    { "lang", "\"\"", "lang", "not a language tag*" },
    { "lang", "\"123\"", "lang", "not a language tag*" },
    { "lang", "\"en-\"", "lang", "not a language tag*" },
    { "lang", "\"en--US\"", "lang", "not a language tag*" },
    { "lang", "\"abcdefghi\"", "lang", "not a language tag*" },
    { "lang", "\"en-abcdefghijklmnopqrstuvwxyz-abcdefg\"", "lang", "not a language tag*" },   /* 36 */
    { "lang", "true", "lang", "must be a string, not true" },
    { "attachments", "{}", "attachments", "must be an array, not an object" },
    { "attachments", "[\"a.pdf\"]", "attachments[0]", "must be an object, not a string" },
    { "attachments", "[{\"type\":\"a/b\",\"size\":1}]", "attachments[0].name", "missing" },
    { "attachments", "[{\"name\":\"a\",\"size\":1}]", "attachments[0].type", "missing" },
    { "attachments", "[{\"name\":\"a\",\"type\":\"a/b\"}]", "attachments[0].size", "missing" },
    { "attachments", "[{\"name\":\"a\",\"type\":\"t\",\"size\":1},{\"name\":\"b\",\"type\":\"t\",\"size\":2},"
                     "{\"name\":\"c\",\"type\":\"t\",\"size\":-1}]",
      "attachments[2].size", "must be a non-negative integer, not -1" },
    { "attachments", "[{\"name\":\"a\",\"type\":\"t\",\"size\":1.5}]", "attachments[0].size",
      "must be a non-negative integer, not a real number" },
    { "attachments", "[{\"name\":\"a\",\"type\":\"t\",\"size\":\"10\"}]", "attachments[0].size",
      "must be a non-negative integer, not a string" },
    { "attachments", "[{\"name\":\"a\",\"type\":\"t\",\"size\":1,\"url\":5}]", "attachments[0].url",
      "must be a string, not an integer" },
    { "attachments", "[{\"name\":\"a\",\"type\":\"t\",\"size\":1,\"data\":\"AAAA\"}]", "attachments[0].data",
      "unknown field (an attachment has name, type, size, url)" },
    { "attachments", "[{\"name\":7,\"type\":\"t\",\"size\":1}]", "attachments[0].name",
      "must be a string, not an integer" },
    { "meta", "[]", "meta", "must be an object, not an array" },
    { "meta", "\"x\"", "meta", "must be an object, not a string" },
    { "version", "1", "version", "unknown field" },
    { "From", "{\"id\":\"a\"}", "From", "unknown field" },
};

static void test_field_errors(void **state)
{
    (void)state;
    omni_limits_t lim;
    omni_limits_default(&lim);
    for (size_t i = 0; i < sizeof field_cases / sizeof field_cases[0]; i++) {
        char *json = mutate(field_cases[i].path, field_cases[i].value);
        const char *id = strcmp(field_cases[i].field, "id") == 0 ? "" : "sms:SM1";
        expect_refused(json, strlen(json), &lim, id, field_cases[i].field, field_cases[i].reason);
        free(json);
    }
}

static const char *const good_docs[] = {
    BASE,
    "{\"id\":\"e\",\"channel\":\"email\",\"from\":{\"id\":\"ann@example.com\"},\"received_at\":"
    "\"2026-11-22T14:12:00.5+05:30\",\"text\":\"\",\"subject\":\"\",\"thread\":\"<a@b>\",\"to\":"
    "\"support@example.com\",\"lang\":\"pt-BR\",\"attachments\":[],\"meta\":{}}",
    "{\"id\":\"x\",\"channel\":\"x-line\",\"from\":{\"id\":\"U1\",\"name\":\"\"},\"received_at\":"
    "\"2026-11-22T08:42:00Z\",\"text\":\"\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80\",\"lang\":\"zh-Hant-TW\"}",
    "{\"id\":\"p\",\"channel\":\"phone\",\"from\":{\"id\":\"+442079460958\"},\"received_at\":"
    "\"2026-11-22T08:42:00Z\",\"text\":\"\",\"attachments\":[{\"name\":\"\",\"type\":\"audio/wav\","
    "\"size\":0},{\"name\":\"v.mp3\",\"type\":\"audio/mpeg\",\"size\":9007199254740993,\"url\":"
    "\"https://x/v.mp3\"}],\"meta\":{\"duration\":31,\"cdr\":{\"a\":[1,2.5,null,true,\"s\"]}}}",
    "  {\"text\":\"t\",\"received_at\":\"2026-11-22T08:42:00Z\",\"from\":{\"name\":\"N\",\"id\":\"1\"},"
    "\"channel\":\"twitter\",\"id\":\"tw:1\",\"lang\":\"i-klingon\"}\n",
    "{\"id\":\"x-abcdefghijklmnopqrstuvwxyz012345\",\"channel\":\"x-abcdefghijklmnopqrstuvwxyz012345\","
    "\"from\":{\"id\":\"1\"},\"received_at\":\"2026-11-22T08:42:00Z\",\"text\":\"\"}",
};

/* "followup:" ids are the router's (docs/routing.md "Follow-ups"): refused, and the refusal names the id, so
 * the connector finds it in its spool; "followup" without the colon, or the word elsewhere, is any id. */
static void test_reserved_ids(void **state)
{
    (void)state;
    omni_limits_t lim;
    omni_limits_default(&lim);
    char *json = mutate("id", "\"followup:7\"");
    expect_refused(json, strlen(json), &lim, "followup:7", "id",
                   "ids starting \"followup:\" are the router's own (follow-ups): \"followup:7\"");
    free(json);
    assert_false(omni_msg_id_valid("followup:12:13", 14));
    assert_true(omni_msg_id_valid("followup-7", 10));
    assert_true(omni_msg_id_valid("x-chat:followup:7", 17));
    assert_true(omni_msg_id_valid("Followup:7", 10));
}

static void test_good_documents(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_docs / sizeof good_docs[0]; i++) {
        omni_msg_error_t err;
        omni_msg_t *msg = omni_msg_parse(good_docs[i], strlen(good_docs[i]), NULL, &err);
        if (msg == NULL)
            fail_msg("refused %s: %s: %s", good_docs[i], err.field, err.reason);
        /* round trip: serialize, parse again, serialize again: the same bytes */
        size_t len;
        char *s1 = omni_msg_serialize(msg, &len);
        assert_int_equal(len, strlen(s1));
        omni_msg_t *again = omni_msg_parse(s1, len, NULL, &err);
        assert_non_null(again);
        char *s2 = omni_msg_serialize(again, NULL);
        assert_string_equal(s1, s2);
        free(s1);
        free(s2);
        omni_msg_destroy(&again);
        omni_msg_destroy(&msg);
        assert_null(msg);
    }
}

static void test_borrowed_fields(void **state)
{
    (void)state;
    omni_msg_error_t err;
    omni_msg_t *msg = omni_msg_parse(good_docs[1], strlen(good_docs[1]), NULL, &err);
    assert_non_null(msg);
    assert_string_equal(msg->id, "e");
    assert_string_equal(msg->channel, "email");
    assert_string_equal(msg->from_id, "ann@example.com");
    assert_null(msg->from_name);
    assert_string_equal(msg->received_at, "2026-11-22T14:12:00.5+05:30");
    assert_string_equal(msg->text, "");
    assert_string_equal(msg->subject, "");
    assert_string_equal(msg->thread, "<a@b>");
    assert_string_equal(msg->to, "support@example.com");
    assert_string_equal(msg->lang, "pt-BR");
    omni_msg_destroy(&msg);
    msg = omni_msg_parse(BASE, strlen(BASE), NULL, &err);
    assert_string_equal(msg->from_name, "Ann");
    assert_null(msg->subject);
    assert_null(msg->thread);
    assert_null(msg->to);
    assert_null(msg->lang);
    omni_msg_destroy(&msg);
    omni_msg_destroy(&msg);   /* already NULL: fine */
    omni_msg_destroy(NULL);
}

static void test_json_errors(void **state)
{
    (void)state;
    omni_limits_t lim;
    omni_limits_default(&lim);
    static const struct { const char *json; const char *reason; } cases[] = {
        { "", "not valid JSON: *" },
        { "{", "not valid JSON: *" },
        { "{\"id\":\"a\",}", "not valid JSON: *" },
        { "[]", "the message must be a JSON object, not an array" },
        { "[{\"id\":\"a\"}]", "the message must be a JSON object, not an array" },
        { "\"text\"", "not valid JSON: *" },
        { "42", "not valid JSON: *" },
        { "null", "not valid JSON: *" },
        { "{\"id\":\"a\"} {}", "not valid JSON: *" },     /* trailing data */
        { "{\"id\":\"a\",\"id\":\"b\"}", "not valid JSON: duplicate object key*" },
        { "{\"id\":\"a\",\"text\":\"a\\u0000b\"}", "not valid JSON: *" },
        { "{\"id\":\"a\",\"text\":\"\\ud800\"}", "not valid JSON: *" },   /* lone surrogate escape */
        { "\xef\xbb\xbf{}", "not valid JSON: *" },                       /* byte order mark */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].json, strlen(cases[i].json), &lim, "", "", cases[i].reason);
    /* a NUL byte inside the frame */
    static const char nul[] = "{\"id\":\"a\0\"}";
    expect_refused(nul, sizeof nul - 1, &lim, "", "", "not valid JSON: *");
    /* no frame at all */
    expect_refused(NULL, 0, &lim, "", "", "not valid JSON: *");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    omni_limits_t lim;
    omni_limits_default(&lim);
    /* The reason gives the offset in the frame; the id is still read when the bad bytes are elsewhere. */
    static const struct { const char *json; const char *id; const char *reason; } cases[] = {
        { "{\"id\":\"sms:1\",\"text\":\"caf\xe9\"}", "sms:1", "invalid UTF-8 at byte 25" },
        { "{\"id\":\"sms:1\",\"text\":\"\xc0\xaf\"}", "sms:1", "invalid UTF-8 at byte 22" },   /* overlong */
        { "{\"id\":\"sms:1\",\"text\":\"\xed\xa0\x80\"}", "sms:1", "invalid UTF-8 at byte 22" },   /* surrogate */
        { "{\"id\":\"sms:1\",\"text\":\"\xf4\x90\x80\x80\"}", "sms:1", "invalid UTF-8 at byte 22" },
        { "{\"text\":\"\xff\",\"id\":\"sms:1\"}", "sms:1", "invalid UTF-8 at byte 9" },
        { "{\"id\":\"sms:\xff\",\"text\":\"x\"}", "", "invalid UTF-8 at byte 11" },   /* in the id: unknown */
        { "{\"id\":\"sms:1\",\"m\xe9ta\":1}", "sms:1", "invalid UTF-8 at byte 16" },   /* in a key */
        { "\xff{}", "", "invalid UTF-8 at byte 0" },
        /* a '?' of the id's own is not a replaced byte: the id still reaches the NACK */
        { "{\"id\":\"web:/?p=1\",\"text\":\"caf\xe9\"}", "web:/?p=1", "invalid UTF-8 at byte 29" },
        { "{\"text\":\"\xff\",\"id\":\"?\"}", "?", "invalid UTF-8 at byte 9" },
        { "{\"id\":\"a?\xff\",\"text\":\"x\"}", "", "invalid UTF-8 at byte 9" },   /* one of its '?' is */
        { "{\"id\":\"a?\xff\",\"text\":\"\xff\"}", "", "invalid UTF-8 at byte 9" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].json, strlen(cases[i].json), &lim, cases[i].id, "", cases[i].reason);
}

/* Each limit: exactly at it is accepted, one over is refused with both sizes in the reason. */
static void test_limits(void **state)
{
    (void)state;
    omni_limits_t lim;
    omni_limits_default(&lim);
    assert_int_equal(lim.message_bytes, 262144);
    assert_int_equal(lim.text_bytes, 65536);
    assert_int_equal(lim.field_bytes, 4096);
    assert_int_equal(lim.attachments, 32);
    assert_int_equal(lim.meta_bytes, 16384);
    assert_int_equal(lim.depth, 8);

    omni_msg_error_t err;
    omni_msg_t *msg;
    char *json, *v, want[160];

    /* text: 65536 bytes of 'é' pairs and one 'a' to land exactly, then one more */
    v = repeat("a", lim.text_bytes);
    json = mutate("text", v);
    assert_non_null(msg = omni_msg_parse(json, strlen(json), &lim, &err));
    omni_msg_destroy(&msg);
    free(json); free(v);
    v = repeat("a", lim.text_bytes + 1);
    json = mutate("text", v);
    expect_refused(json, strlen(json), &lim, "sms:SM1", "text", "is 65537 bytes, over the limit of 65536: "
                   "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
    free(json); free(v);
    v = repeat("\xc3\xa9", lim.text_bytes / 2);   /* limits are bytes, not characters */
    json = mutate("text", v);
    assert_non_null(msg = omni_msg_parse(json, strlen(json), &lim, &err));
    omni_msg_destroy(&msg);
    free(json); free(v);

    /* every other string: field_bytes */
    static const char *const fields[] = { "subject", "thread", "to", "from.name", "from.id" };
    for (size_t i = 0; i < 5; i++) {
        v = repeat("b", lim.field_bytes);
        json = mutate(fields[i], v);
        msg = omni_msg_parse(json, strlen(json), &lim, &err);
        if (msg == NULL)
            fail_msg("%s at the limit refused: %s", fields[i], err.reason);
        omni_msg_destroy(&msg);
        free(json); free(v);
        v = repeat("b", lim.field_bytes + 1);
        json = mutate(fields[i], v);
        expect_refused(json, strlen(json), &lim, "sms:SM1", fields[i], "is 4097 bytes, over the limit of 4096*");
        free(json); free(v);
    }
    /* the id: 256 */
    v = repeat("i", 256);
    json = mutate("id", v);
    assert_non_null(msg = omni_msg_parse(json, strlen(json), &lim, &err));
    assert_int_equal(strlen(msg->id), 256);
    omni_msg_destroy(&msg);
    free(json); free(v);
    v = repeat("i", 257);
    json = mutate("id", v);
    expect_refused(json, strlen(json), &lim, "", "id", "is 257 bytes, over the limit of 256*");
    free(json); free(v);

    /* attachments: a small limit */
    lim.attachments = 2;
    json = mutate("attachments", "[{\"name\":\"a\",\"type\":\"t\",\"size\":1},{\"name\":\"b\",\"type\":\"t\",\"size\":2}]");
    assert_non_null(msg = omni_msg_parse(json, strlen(json), &lim, &err));
    omni_msg_destroy(&msg);
    free(json);
    json = mutate("attachments", "[{\"name\":\"a\",\"type\":\"t\",\"size\":1},{\"name\":\"b\",\"type\":\"t\",\"size\":2},"
                                 "{\"name\":\"c\",\"type\":\"t\",\"size\":3}]");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "attachments", "has 3 entries, over the limit of 2");
    free(json);
    lim.attachments = 32;

    /* meta size, measured compactly: {"k":"vvvv"} is 12 bytes however it was spaced */
    lim.meta_bytes = 12;
    json = mutate("meta", "{\"k\":\"vvvv\"}");
    assert_non_null(msg = omni_msg_parse(json, strlen(json), &lim, &err));
    omni_msg_destroy(&msg);
    free(json);
    static const char spaced[] = "{\"id\":\"m\",\"channel\":\"sms\",\"from\":{\"id\":\"1\"},\"received_at\":"
                                 "\"2026-11-22T08:42:00Z\",\"text\":\"\",\"meta\":{  \"k\" :  \"vvvv\"  }}";
    assert_non_null(msg = omni_msg_parse(spaced, strlen(spaced), &lim, &err));
    omni_msg_destroy(&msg);
    json = mutate("meta", "{\"k\":\"vvvvv\"}");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "meta", "is 13 bytes as compact JSON, over the limit of 12");
    free(json);
    lim.meta_bytes = 16384;

    /* meta strings: field_bytes, named by their path */
    lim.field_bytes = 12;   /* from.id is 12 bytes */
    json = mutate("meta", "{\"a\":{\"b\":\"123456789012\"},\"list\":[1,2,\"1234567890123\"]}");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "meta.list[2]",
                   "is 13 bytes, over the limit of 12: \"1234567890123\"");
    free(json);
    json = mutate("meta", "{\"a\":{\"b\":\"1234567890123\"}}");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "meta.a.b",
                   "is 13 bytes, over the limit of 12: \"1234567890123\"");
    free(json);
    lim.field_bytes = 4096;

    /* meta depth: meta itself is level 1 */
    lim.depth = 3;
    json = mutate("meta", "{\"a\":{\"b\":{\"c\":1}},\"l\":[[5]]}");
    assert_non_null(msg = omni_msg_parse(json, strlen(json), &lim, &err));
    omni_msg_destroy(&msg);
    free(json);
    json = mutate("meta", "{\"a\":{\"b\":{\"c\":{}}}}");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "meta.a.b.c", "nested 4 levels deep, over the limit of 3");
    free(json);
    json = mutate("meta", "{\"l\":[[[1]]]}");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "meta.l[0][0]", "nested 4 levels deep, over the limit of 3");
    free(json);
    lim.depth = 8;
    json = mutate("meta", "{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":{\"7\":{}}}}}}}}");
    assert_non_null(msg = omni_msg_parse(json, strlen(json), &lim, &err));
    omni_msg_destroy(&msg);
    free(json);
    json = mutate("meta", "{\"1\":{\"2\":{\"3\":{\"4\":{\"5\":{\"6\":{\"7\":{\"8\":[]}}}}}}}}");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "meta.1.2.3.4.5.6.7.8", "nested 9 levels deep, over the limit of 8");
    free(json);

    /* the whole frame: exactly message_bytes, then one byte more (trailing white space counts) */
    size_t base = strlen(BASE);
    lim.message_bytes = base + 1;
    char frame[512];
    snprintf(frame, sizeof frame, "%s ", BASE);
    assert_non_null(msg = omni_msg_parse(frame, base + 1, &lim, &err));
    omni_msg_destroy(&msg);
    lim.message_bytes = base;
    snprintf(want, sizeof want, "message is %zu bytes, over the limit of %zu", base + 1, base);
    expect_refused(frame, base + 1, &lim, "sms:SM1", "", want);   /* the id is still read for the NACK */
    /* within OMNI_FRAME_ALLOWANCE over, though more than 4x: the id is read (the router's socket lets it in) */
    lim.message_bytes = 10;
    snprintf(want, sizeof want, "message is %zu bytes, over the limit of 10", base);
    expect_refused(BASE, base, &lim, "sms:SM1", "", want);
    /* far over (more than 4x and past the allowance): refused without even reading the id */
    size_t big = 10 + OMNI_FRAME_ALLOWANCE + 1;
    char *huge = omni_malloc(big);
    memcpy(huge, BASE, base);
    memset(huge + base, ' ', big - base);
    snprintf(want, sizeof want, "message is %zu bytes, over the limit of 10", big);
    expect_refused(huge, big, &lim, "", "", want);
    free(huge);
}

/* The reason quotes at most 60 bytes of the value, never cutting a character in two. */
static void test_quote_cut(void **state)
{
    (void)state;
    omni_limits_t lim;
    omni_limits_default(&lim);
    lim.field_bytes = 20;
    char value[512] = "\"a";
    for (int i = 0; i < 40; i++)
        strcat(value, "\xc3\xa9");
    strcat(value, "\"");
    char *json = mutate("subject", value);
    char want[256] = "is 81 bytes, over the limit of 20: \"a";
    for (int i = 0; i < 29; i++)   /* 1 + 29*2 = 59 bytes: the 30th 'é' would end at byte 61 */
        strcat(want, "\xc3\xa9");
    strcat(want, "...\"");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "subject", want);
    free(json);
    /* control characters and quotes are escaped in the quote, never copied raw */
    json = mutate("received_at", "\"\\u001b[31mred\\r\\n\"");
    expect_refused(json, strlen(json), &lim, "sms:SM1", "received_at",
                   "not an RFC 3339 date-time: \"\\u001b[31mred\\r\\n\"");
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_reserved_ids),
        cmocka_unit_test(test_good_documents),
        cmocka_unit_test(test_borrowed_fields),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_quote_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
