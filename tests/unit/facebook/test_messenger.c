/* Messenger webhooks: the published X-Hub-Signature-256 vector (fixtures/signature-vector.json, a copy of
 * ../shared/fixtures/messenger) passes exactly and any tampering fails; the reference text-message event
 * (fixtures/messaging-text-event.example.json) and a POST of several entries and events become the right
 * messages; echoes, deliveries and reads are dropped; malformed envelopes name the place. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../connectors/facebook/messenger.h"
#include "omni/util.h"

#define FIX "tests/unit/facebook/fixtures/"

static char *fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, FIX "%s", name);
    char *text = omni_read_file(path, 1 << 20, NULL);
    if (text == NULL)
        fail_msg("cannot read %s", path);
    return text;
}

static void test_published_signature_vector(void **state)
{
    (void)state;
    char *text = fixture("signature-vector.json");
    json_t *doc = json_loads(text, 0, NULL), *pub = json_object_get(doc, "published");
    const char *secret = json_string_value(json_object_get(pub, "secret"));
    const char *payload = json_string_value(json_object_get(pub, "payload"));
    const char *header = json_string_value(json_object_get(pub, "expected_header"));
    size_t sl = strlen(secret), pl = strlen(payload);
    assert_true(fb_signature_valid(secret, sl, payload, pl, header));
    /* Tampered body (a byte changed, one byte less), header (a digit, the prefix, truncated), secret. */
    char *body = omni_strdup(payload);
    body[0] = 'h';
    assert_false(fb_signature_valid(secret, sl, body, pl, header));
    free(body);
    assert_false(fb_signature_valid(secret, sl, payload, pl - 1, header));
    char h[128];
    snprintf(h, sizeof h, "%s", header);
    h[20] = h[20] == '0' ? '1' : '0';
    assert_false(fb_signature_valid(secret, sl, payload, pl, h));
    snprintf(h, sizeof h, "sha1=%s", header + 7);
    assert_false(fb_signature_valid(secret, sl, payload, pl, h));
    snprintf(h, sizeof h, "%s", header + 7);
    assert_false(fb_signature_valid(secret, sl, payload, pl, h));
    snprintf(h, sizeof h, "%.70s", header);
    assert_false(fb_signature_valid(secret, sl, payload, pl, h));
    assert_false(fb_signature_valid(secret, sl, payload, pl, ""));
    assert_false(fb_signature_valid(secret, sl, payload, pl, NULL));
    assert_false(fb_signature_valid("It's a Secret to Everybody!", sl + 1, payload, pl, header));
    /* Hex case does not matter. */
    snprintf(h, sizeof h, "%s", header);
    for (char *p = h + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    assert_true(fb_signature_valid(secret, sl, payload, pl, h));
    json_decref(doc);
    free(text);
}

/* text with every occurrence of from replaced by to; caller frees. */
static char *replace(const char *text, const char *from, const char *to)
{
    char *out = omni_strdup(text);
    for (char *p; (p = strstr(out, from)) != NULL;) {
        char *next = omni_asprintf("%.*s%s%s", (int)(p - out), out, to, p + strlen(from));
        free(out);
        out = next;
    }
    return out;
}

static void test_reference_text_event(void **state)
{
    (void)state;
    char *ev = fixture("messaging-text-event.example.json");
    /* The reference writes placeholders where Meta sends numeric ids. */
    char *a = replace(ev, "\"<PSID>\"", "\"1254459154682919\"");
    char *b = replace(a, "\"<PAGE_ID>\"", "\"682498171943165\"");
    char *body = omni_asprintf("{\"object\":\"page\",\"entry\":[{\"id\":\"682498171943165\",\"time\":1458692752478,"
                               "\"messaging\":[%s]}]}", b);
    fb_batch_t batch;
    char why[256];
    assert_int_equal(fb_parse(body, strlen(body), &batch, why, sizeof why), 0);
    assert_int_equal(batch.n_msgs, 1);
    omni_msg_t *m = batch.msgs[0];
    assert_string_equal(m->id, "facebook:mid.1457764197618:41d102a3e1ae206a38");
    assert_string_equal(m->channel, "facebook");
    assert_string_equal(m->from_id, "1254459154682919");
    assert_string_equal(m->to, "682498171943165");
    assert_string_equal(m->text, "hello, world!");
    assert_string_equal(m->received_at, "2016-03-23T00:25:52.478Z");
    json_t *meta = json_object_get(m->json, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "quick_reply")), "<DEVELOPER_DEFINED_PAYLOAD>");
    assert_string_equal(json_string_value(json_object_get(meta, "page_id")), "682498171943165");
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_error_t err;
    assert_int_equal(omni_msg_validate(m, &lim, &err), 0);
    /* As written (placeholders, not ids), the event cannot be routed: skipped with its place. */
    fb_batch_free(&batch);
    free(body);
    body = omni_asprintf("{\"object\":\"page\",\"entry\":[{\"id\":\"1\",\"messaging\":[%s]}]}", ev);
    assert_int_equal(fb_parse(body, strlen(body), &batch, why, sizeof why), 0);
    assert_int_equal(batch.n_msgs, 0);
    assert_int_equal(batch.n_skipped, 1);
    assert_string_equal(batch.skipped[0], "entry[0].messaging[0]: sender.id: not all digits");
    fb_batch_free(&batch);
    free(body);
    free(a);
    free(b);
    free(ev);
}

static const char *const MANY =
    "{\"object\":\"page\",\"entry\":["
    "{\"id\":\"100\",\"time\":1700000000000,\"messaging\":["
    "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":1700000000001,"
    "\"message\":{\"mid\":\"m_1\",\"text\":\"first\"}},"
    "{\"sender\":{\"id\":\"100\"},\"recipient\":{\"id\":\"201\"},\"timestamp\":1700000000002,"
    "\"message\":{\"mid\":\"m_echo\",\"is_echo\":true,\"text\":\"our answer\"}},"
    "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"delivery\":{\"mids\":[\"m_echo\"],\"watermark\":1}},"
    "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"read\":{\"watermark\":1}},"
    "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"reaction\":{\"mid\":\"m_1\",\"action\":\"react\"}},"
    "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":1700000000003,"
    "\"message\":{\"mid\":\"m_2\",\"attachments\":[{\"type\":\"image\",\"payload\":{\"url\":"
    "\"https://scontent.xx.fbcdn.net/v/photo_123.jpg?_nc=1\"}},{\"type\":\"location\",\"payload\":{}}],"
    "\"reply_to\":{\"mid\":\"m_1\"}}}]},"
    "{\"id\":\"100\",\"time\":1700000000100,\"messaging\":["
    "{\"sender\":{\"id\":\"202\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":1700000000101,"
    "\"postback\":{\"mid\":\"m_pb\",\"title\":\"Talk to a person\",\"payload\":\"HUMAN\"}},"
    "{\"sender\":{\"id\":\"203\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":1700000000102,"
    "\"postback\":{\"title\":\"Start\",\"payload\":\"GET_STARTED\",\"referral\":{\"ref\":\"ad7\"}}},"
    "{\"sender\":{},\"recipient\":{\"id\":\"100\"},\"message\":{\"mid\":\"m_bad\",\"text\":\"x\"}},"
    "{\"sender\":{\"id\":\"204\"},\"recipient\":{\"id\":\"100\"},\"message\":{\"text\":\"no mid\"}}"
    "]},"
    "{\"id\":\"100\",\"time\":1,\"changes\":[{\"field\":\"feed\"}]}]}";

static void test_several_entries_and_events(void **state)
{
    (void)state;
    fb_batch_t b;
    char why[256];
    assert_int_equal(fb_parse(MANY, strlen(MANY), &b, why, sizeof why), 0);
    assert_int_equal(b.n_msgs, 4);
    assert_int_equal(b.echoes, 1);
    assert_int_equal(b.deliveries, 1);
    assert_int_equal(b.reads, 1);
    assert_int_equal(b.other, 2); /* the reaction, the entry of "changes" */
    assert_int_equal(b.n_skipped, 2);
    assert_string_equal(b.skipped[0], "entry[1].messaging[2]: sender.id: missing");
    assert_string_equal(b.skipped[1], "entry[1].messaging[3]: message.mid: missing");
    assert_string_equal(b.msgs[0]->id, "facebook:m_1");
    assert_string_equal(b.msgs[0]->text, "first");
    omni_msg_t *att = b.msgs[1];
    assert_string_equal(att->id, "facebook:m_2");
    assert_string_equal(att->text, "");
    json_t *list = json_object_get(att->json, "attachments");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "photo_123.jpg");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "type")), "image");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "url")),
                        "https://scontent.xx.fbcdn.net/v/photo_123.jpg?_nc=1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")), "location-2");
    assert_null(json_object_get(json_array_get(list, 1), "url"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(att->json, "meta"), "reply_to")), "m_1");
    omni_msg_t *pb = b.msgs[2];
    assert_string_equal(pb->id, "facebook:m_pb");
    assert_string_equal(pb->from_id, "202");
    assert_string_equal(pb->text, "Talk to a person");
    json_t *p = json_object_get(json_object_get(pb->json, "meta"), "postback");
    assert_string_equal(json_string_value(json_object_get(p, "payload")), "HUMAN");
    assert_string_equal(b.msgs[3]->id, "facebook:postback:203:1700000000102");
    p = json_object_get(json_object_get(b.msgs[3]->json, "meta"), "postback");
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "referral"), "ref")), "ad7");
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_error_t err;
    for (size_t i = 0; i < b.n_msgs; i++)
        assert_int_equal(omni_msg_validate(b.msgs[i], &lim, &err), 0);
    fb_batch_free(&b);
}

static void test_malformed_envelopes(void **state)
{
    (void)state;
    static const struct { const char *body; int rc; const char *why; } cases[] = {
        { "{\"object\":\"page\",\"entry\":[", -1, "not JSON: " },
        { "[]", -1, "the body is not a JSON object" },
        { "{\"entry\":[]}", -1, "\"object\": missing" },
        { "{\"object\":\"page\"}", -1, "\"entry\": missing" },
        { "{\"object\":\"page\",\"entry\":{}}", -1, "\"entry\": not an array" },
        { "{\"object\":\"page\",\"entry\":[7]}", -1, "entry[0]: not an object" },
        { "{\"object\":\"page\",\"entry\":[{\"messaging\":{}}]}", -1, "entry[0].messaging: not an array" },
        { "{\"object\":\"instagram\",\"entry\":[]}", 1, "" },
        { "{\"object\":\"page\",\"entry\":[]}", 0, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fb_batch_t b;
        char why[256] = "";
        assert_int_equal(fb_parse(cases[i].body, strlen(cases[i].body), &b, why, sizeof why), cases[i].rc);
        assert_memory_equal(why, cases[i].why, strlen(cases[i].why));
        fb_batch_free(&b);
    }
    /* Over FB_EVENTS_MAX events. */
    char *big = omni_strdup("{\"object\":\"page\",\"entry\":[{\"messaging\":[{}");
    for (int i = 0; i < FB_EVENTS_MAX; i++) {
        char *n = omni_asprintf("%s,{}", big);
        free(big);
        big = n;
    }
    char *body = omni_asprintf("%s]}]}", big);
    fb_batch_t b;
    char why[256];
    assert_int_equal(fb_parse(body, strlen(body), &b, why, sizeof why), -1);
    assert_string_equal(why, "more than 1000 messaging events");
    fb_batch_free(&b);
    free(big);
    free(body);
}

/* Valid JSON jansson would refuse whole: one event's U+0000 skips that event only, and a lone surrogate escape
 * is read as U+FFFD; the good events beside them are taken (docs/connectors.md, omni-facebook). */
static void test_odd_strings_cost_one_event_at_most(void **state)
{
    (void)state;
    static const char body[] =
        "{\"object\":\"page\",\"entry\":[{\"id\":\"100\",\"time\":1,\"messaging\":["
        "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":1,"
        "\"message\":{\"mid\":\"m_good\",\"text\":\"fine \\\\ud83d \\\"q\\\"\"}},"
        "{\"sender\":{\"id\":\"202\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":2,"
        "\"message\":{\"mid\":\"m_nul\",\"text\":\"a\\u0000b\"}},"
        "{\"sender\":{\"id\":\"203\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":3,"
        "\"message\":{\"mid\":\"m_half\",\"text\":\"smile \\ud83d!\"}},"
        "{\"sender\":{\"id\":\"204\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":4,"
        "\"message\":{\"mid\":\"m_pair\",\"text\":\"\\ud83d\\ude00 \\udc00\"}}"
        "]}]}";
    fb_batch_t b;
    char why[256] = "";
    assert_int_equal(fb_parse(body, strlen(body), &b, why, sizeof why), 0);
    assert_int_equal(b.n_msgs, 3);
    assert_int_equal(b.n_skipped, 1);
    assert_string_equal(b.skipped[0], "entry[0].messaging[1]: a string holds U+0000 (NUL), which no message field may carry");
    assert_string_equal(b.msgs[0]->id, "facebook:m_good");
    assert_string_equal(b.msgs[0]->text, "fine \\ud83d \"q\""); /* an escaped backslash, then letters: no escape */
    assert_string_equal(b.msgs[1]->text, "smile \xef\xbf\xbd!");
    assert_string_equal(b.msgs[2]->text, "\xf0\x9f\x98\x80 \xef\xbf\xbd"); /* a pair kept, a lone low half mended */
    fb_batch_free(&b);
}

/* More attachments than the router takes: the first 32 kept, their number said, the text delivered. */
static void test_attachments_past_the_limit_are_counted_not_lost(void **state)
{
    (void)state;
    char *list = omni_strdup("");
    for (int i = 0; i < 40; i++) {
        char *n = omni_asprintf("%s%s{\"type\":\"image\",\"payload\":{\"url\":\"https://x.example/%d.jpg\"}}",
                                list, i ? "," : "", i);
        free(list);
        list = n;
    }
    char *body = omni_asprintf("{\"object\":\"page\",\"entry\":[{\"id\":\"100\",\"time\":1,\"messaging\":["
                               "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":1,"
                               "\"message\":{\"mid\":\"m_many\",\"text\":\"see all\",\"attachments\":[%s]}}]}]}", list);
    fb_batch_t b;
    char why[256] = "";
    assert_int_equal(fb_parse(body, strlen(body), &b, why, sizeof why), 0);
    assert_int_equal(b.n_msgs, 1);
    assert_int_equal(b.n_skipped, 0);
    assert_string_equal(b.msgs[0]->text, "see all");
    assert_int_equal(json_array_size(json_object_get(b.msgs[0]->json, "attachments")), 32);
    json_t *meta = json_object_get(b.msgs[0]->json, "meta");
    assert_int_equal(json_integer_value(json_object_get(meta, "attachments_total")), 40);
    fb_batch_free(&b);
    free(body);
    free(list);
}

/* What Meta's references write besides the plain forms: a sticker's id in its attachment's payload only, a
 * location's coordinates (its content: a geo URI), an older fallback's link beside its title with a null
 * payload, ids written as JSON numbers (the entry's too: the page's own message is still known as such); and
 * what is not: coordinates off the globe, a negative id. */
static void test_attachment_and_id_variants(void **state)
{
    (void)state;
    static const char body[] =
        "{\"object\":\"page\",\"entry\":[{\"id\":\"100\",\"time\":1,\"messaging\":["
        "{\"sender\":{\"id\":201},\"recipient\":{\"id\":100},\"timestamp\":1700000000001,"
        "\"message\":{\"mid\":\"m_s\",\"attachments\":[{\"type\":\"image\","
        "\"payload\":{\"url\":\"https://x.example/s/st_1.png\",\"sticker_id\":\"369239263222822\"}}]}},"
        "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"timestamp\":1700000000002,"
        "\"message\":{\"mid\":\"m_l\","
        "\"attachments\":[{\"type\":\"location\",\"payload\":{\"coordinates\":{\"lat\":-33.8688,\"long\":151.2093}}},"
        "{\"type\":\"location\",\"payload\":{\"coordinates\":{\"lat\":91,\"long\":0}}},"
        "{\"type\":\"fallback\",\"title\":\"Shop\",\"url\":\"https://l.facebook.com/l.php?u=shop\",\"payload\":null},"
        "{\"type\":\"file\",\"payload\":{\"url\":\"https://cdn.fbsbx.com/v/t59/1_n.pdf/Q3%20r%C3%A9sum%C3%A9.pdf?_nc=1\"}},"
        "{\"type\":\"file\",\"payload\":{\"url\":\"https://cdn.fbsbx.com/v/a%2Fb%00.txt\"}},"
        "{\"type\":\"file\",\"payload\":{\"url\":\"https://cdn.fbsbx.com/v/100%25%zz.txt\"}}]}},"
        "{\"sender\":{\"id\":-5},\"recipient\":{\"id\":\"100\"},\"message\":{\"mid\":\"m_neg\",\"text\":\"x\"}},"
        "{\"sender\":{\"id\":true},\"recipient\":{\"id\":\"100\"},\"message\":{\"mid\":\"m_bool\",\"text\":\"x\"}}"
        "]},{\"id\":300,\"time\":1,\"messaging\":["
        "{\"sender\":{\"id\":\"300\"},\"recipient\":{\"id\":\"201\"},\"message\":{\"mid\":\"m_own\",\"text\":\"ours\"}},"
        "{\"sender\":{\"id\":\"201\"},\"recipient\":{},\"message\":{\"mid\":\"m_pn\",\"text\":\"hi\"}}]}]}";
    fb_batch_t b;
    char why[256];
    assert_int_equal(fb_parse(body, strlen(body), &b, why, sizeof why), 0);
    assert_int_equal(b.n_msgs, 3);
    assert_int_equal(b.n_skipped, 2);
    assert_int_equal(b.echoes, 1); /* the page's own message: its entry's id written as a number */
    assert_string_equal(b.skipped[1], "entry[0].messaging[3]: sender.id: not a numeric id");
    assert_string_equal(json_string_value(json_object_get(json_object_get(b.msgs[2]->json, "meta"), "page_id")), "300");
    assert_string_equal(json_string_value(json_object_get(b.msgs[2]->json, "to")), "300");
    omni_msg_t *st = b.msgs[0];
    assert_string_equal(st->from_id, "201");
    assert_string_equal(json_string_value(json_object_get(st->json, "to")), "100");
    assert_string_equal(json_string_value(json_object_get(json_object_get(st->json, "meta"), "sticker_id")),
                        "369239263222822");
    json_t *list = json_object_get(b.msgs[1]->json, "attachments");
    assert_int_equal(json_array_size(list), 6);
    /* a file's own name, percent-decoded; kept as written when decoding would not give a name */
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 3), "name")), "Q3 r\xc3\xa9sum\xc3\xa9.pdf");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 4), "name")), "a%2Fb%00.txt");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 5), "name")), "100%25%zz.txt");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "url")), "geo:-33.8688,151.2093");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "location-1");
    assert_null(json_object_get(json_array_get(list, 1), "url"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "url")),
                        "https://l.facebook.com/l.php?u=shop");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "name")), "l.php");
    fb_batch_free(&b);
}

/* A location's geo URI holds the coordinates as Meta sent them, every digit and in decimal (RFC 5870 has no
 * exponent); a name is the last segment of the URL's path, never of its query. */
static void test_geo_digits_and_names_from_the_path(void **state)
{
    (void)state;
    const char *body =
        "{\"object\":\"page\",\"entry\":[{\"id\":\"100\",\"time\":1,\"messaging\":["
        "{\"sender\":{\"id\":\"201\"},\"recipient\":{\"id\":\"100\"},\"message\":{\"mid\":\"m_g\",\"attachments\":["
        "{\"type\":\"location\",\"payload\":{\"coordinates\":{\"lat\":37.483872693672,\"long\":-122.14900441942}}},"
        "{\"type\":\"location\",\"payload\":{\"coordinates\":{\"lat\":0.00001,\"long\":-1.5e-6}}},"
        "{\"type\":\"location\",\"payload\":{\"coordinates\":{\"lat\":-90,\"long\":100}}},"
        "{\"type\":\"image\",\"payload\":{\"url\":\"https://x.example/a/p.jpg?u=https://y.example/q#f/g\"}},"
        "{\"type\":\"file\",\"payload\":{\"url\":\"https://x.example/?u=https://y.example/q.pdf\"}}]}}]}]}";
    fb_batch_t b;
    char why[256];
    assert_int_equal(fb_parse(body, strlen(body), &b, why, sizeof why), 0);
    assert_int_equal(b.n_msgs, 1);
    json_t *list = json_object_get(b.msgs[0]->json, "attachments");
    static const char *const urls[] = { "geo:37.483872693672,-122.14900441942", "geo:0.00001,-0.0000015", "geo:-90,100" };
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, i), "url")), urls[i]);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 3), "name")), "p.jpg");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 4), "name")), "file-5");
    fb_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attachment_and_id_variants),
        cmocka_unit_test(test_geo_digits_and_names_from_the_path),
        cmocka_unit_test(test_published_signature_vector),
        cmocka_unit_test(test_reference_text_event),
        cmocka_unit_test(test_several_entries_and_events),
        cmocka_unit_test(test_malformed_envelopes),
        cmocka_unit_test(test_odd_strings_cost_one_event_at_most),
        cmocka_unit_test(test_attachments_past_the_limit_are_counted_not_lost),
    };
    return cmocka_run_group_tests_name("messenger", tests, NULL, NULL);
}
