/* Twilio's webhooks: every published X-Twilio-Signature vector (fixtures/signature-vectors.json, a copy of
 * ../shared/fixtures/twilio, from twilio-python's tests) passes exactly; a tampered parameter, URL, body or
 * signature fails; form decoding; what an inbound message, an MMS and a status callback become. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../connectors/sms/twilio.h"
#include "omni/secret.h"
#include "omni/util.h"

#define VECTORS "tests/unit/sms/fixtures/signature-vectors.json"

static json_t *vectors;
static const char *token;

static int setup(void **state)
{
    (void)state;
    json_error_t e;
    vectors = json_load_file(VECTORS, 0, &e);
    if (vectors == NULL)
        fail_msg("%s: %s", VECTORS, e.text);
    token = json_string_value(json_object_get(vectors, "auth_token"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(vectors);
    return 0;
}

/* The params of a vector ("params" object or "params_multi" pairs); NULL for the JSON variant. */
static void vector_params(json_t *v, tw_params_t *p)
{
    const char *k;
    json_t *val;
    json_object_foreach(json_object_get(v, "params"), k, val)
        tw_params_add(p, k, json_string_value(val));
    size_t i;
    json_array_foreach(json_object_get(v, "params_multi"), i, val)
        tw_params_add(p, json_string_value(json_array_get(val, 0)), json_string_value(json_array_get(val, 1)));
}

static void test_every_published_vector(void **state)
{
    (void)state;
    size_t i, checked = 0;
    json_t *v;
    json_array_foreach(json_object_get(vectors, "vectors"), i, v) {
        const char *url = json_string_value(json_object_get(v, "url"));
        const char *expected = json_string_value(json_object_get(v, "expected"));
        const char *raw = json_string_value(json_object_get(v, "raw_body"));
        tw_params_t p = { 0 };
        vector_params(v, &p);
        char sig[29];
        tw_signature(token, strlen(token), url, raw ? NULL : &p, sig);
        if (strcmp(sig, expected) != 0)
            fail_msg("vector \"%s\": computed %s, published %s", json_string_value(json_object_get(v, "name")), sig,
                     expected);
        assert_true(tw_signature_valid(token, strlen(token), url, raw ? NULL : &p, expected));
        if (raw != NULL) {
            const char *hash = json_string_value(json_object_get(v, "bodySHA256"));
            char q[80];
            assert_true(tw_query_value(strchr(url, '?') + 1, "bodySHA256", q, sizeof q));
            assert_string_equal(q, hash);
            assert_true(tw_body_hash_valid(hash, raw, strlen(raw)));
            assert_false(tw_body_hash_valid(hash, raw, strlen(raw) - 1));        /* one byte less */
            char *tampered = omni_strdup(raw);
            tampered[3] ^= 1;
            assert_false(tw_body_hash_valid(hash, tampered, strlen(tampered)));  /* one bit changed */
            free(tampered);
        }
        tw_params_free(&p);
        checked++;
    }
    assert_int_equal(checked, 6);
}

static json_t *vector(const char *prefix)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(vectors, "vectors"), i, v)
        if (strncmp(json_string_value(json_object_get(v, "name")), prefix, strlen(prefix)) == 0)
            return v;
    fail_msg("no vector named %s...", prefix);
    return NULL;
}

/* Twilio may have signed the URL with or without the scheme's port: either form of the URL validates. */
static void test_url_with_and_without_port(void **state)
{
    (void)state;
    json_t *plain = vector("form POST"), *with443 = vector("https url with explicit :443");
    tw_params_t p = { 0 };
    vector_params(plain, &p);
    const char *sig_plain = json_string_value(json_object_get(plain, "expected"));
    const char *sig_443 = json_string_value(json_object_get(with443, "expected"));
    /* The request came to https://mycompany.com/..., Twilio signed it with :443, and the other way round. */
    assert_true(tw_signature_valid(token, strlen(token), "https://mycompany.com/myapp.php?foo=1&bar=2", &p, sig_443));
    assert_true(tw_signature_valid(token, strlen(token), "https://mycompany.com:443/myapp.php?foo=1&bar=2", &p, sig_plain));
    /* Like Twilio's validators, any port is also tried removed; another host is another URL. */
    assert_true(tw_signature_valid(token, strlen(token), "https://mycompany.com:8443/myapp.php?foo=1&bar=2", &p,
                                   sig_plain));
    assert_false(tw_signature_valid(token, strlen(token), "https://mycompany.co:443/myapp.php?foo=1&bar=2", &p,
                                    sig_plain));
    /* http with :80 validates without it; :1234 only as signed. */
    json_t *with80 = vector("http url with :80"), *with1234 = vector("http url with :1234");
    assert_true(tw_signature_valid(token, strlen(token), "http://mycompany.com/myapp.php?foo=1&bar=2", &p,
                                   json_string_value(json_object_get(with80, "expected"))));
    assert_true(tw_signature_valid(token, strlen(token), "http://mycompany.com:1234/myapp.php?foo=1&bar=2", &p,
                                   json_string_value(json_object_get(with1234, "expected"))));
    assert_false(tw_signature_valid(token, strlen(token), "http://mycompany.com:1235/myapp.php?foo=1&bar=2", &p,
                                    json_string_value(json_object_get(with1234, "expected"))));
    tw_params_free(&p);
}

static void test_tampering_fails(void **state)
{
    (void)state;
    json_t *v = vector("repeated param");
    const char *url = json_string_value(json_object_get(v, "url"));
    const char *sig = json_string_value(json_object_get(v, "expected"));
    tw_params_t p = { 0 };
    vector_params(v, &p);
    assert_true(tw_signature_valid(token, strlen(token), url, &p, sig));
    /* A parameter's value changed. */
    free(p.v[3].value);
    p.v[3].value = omni_strdup("1235");
    assert_false(tw_signature_valid(token, strlen(token), url, &p, sig));
    free(p.v[3].value);
    p.v[3].value = omni_strdup("1234");
    assert_true(tw_signature_valid(token, strlen(token), url, &p, sig));
    /* A parameter added, a name changed. */
    tw_params_add(&p, "Body", "");
    assert_false(tw_signature_valid(token, strlen(token), url, &p, sig));
    free(p.v[--p.n].name), free(p.v[p.n].value);
    p.v[0].name[0] = 's';
    assert_false(tw_signature_valid(token, strlen(token), url, &p, sig));
    p.v[0].name[0] = 'S';
    /* The URL: path, query, scheme. */
    assert_false(tw_signature_valid(token, strlen(token), "https://mycompany.com/myapp.php?foo=1&bar=3", &p, sig));
    assert_false(tw_signature_valid(token, strlen(token), "https://mycompany.com/myapp.ph?foo=1&bar=2", &p, sig));
    assert_false(tw_signature_valid(token, strlen(token), "http://mycompany.com/myapp.php?foo=1&bar=2", &p, sig));
    /* The header: one character, truncated, empty, missing; another token. */
    char bad[64];
    snprintf(bad, sizeof bad, "%s", sig);
    bad[5] = bad[5] == 'A' ? 'B' : 'A';
    assert_false(tw_signature_valid(token, strlen(token), url, &p, bad));
    bad[5] = sig[5];
    bad[strlen(bad) - 1] = '\0';
    assert_false(tw_signature_valid(token, strlen(token), url, &p, bad));
    assert_false(tw_signature_valid(token, strlen(token), url, &p, ""));
    assert_false(tw_signature_valid(token, strlen(token), url, &p, NULL));
    assert_false(tw_signature_valid("12346", 5, url, &p, sig));
    /* Values of a repeated name are sorted before signing: their order in the body does not matter. */
    tw_param_t t = p.v[2];
    p.v[2] = p.v[3];
    p.v[3] = t;
    assert_true(tw_signature_valid(token, strlen(token), url, &p, sig));
    tw_params_free(&p);
}

static void test_form_decoding(void **state)
{
    (void)state;
    tw_params_t p = { 0 };
    char why[256];
    const char *body = "Body=Hello+w%C3%B6rld%21&Digits=5678&Digits=1234&&flag&Empty=&To=%2B18005551212";
    assert_int_equal(tw_form_parse(body, strlen(body), &p, why, sizeof why), 0);
    assert_int_equal(p.n, 6);
    assert_string_equal(tw_param(&p, "Body"), "Hello w\xc3\xb6rld!");
    assert_string_equal(p.v[1].value, "5678");
    assert_string_equal(p.v[2].value, "1234");
    assert_string_equal(tw_param(&p, "flag"), "");
    assert_string_equal(tw_param(&p, "Empty"), "");
    assert_string_equal(tw_param(&p, "To"), "+18005551212");
    assert_null(tw_param(&p, "Nope"));
    tw_params_free(&p);

    assert_int_equal(tw_form_parse("a=1&b=%G1", 9, &p, why, sizeof why), -1);
    assert_string_equal(why, "parameter 2: value: bad escape \"%G1\"");
    tw_params_free(&p);
    assert_int_equal(tw_form_parse("a=%4", 4, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "bad escape"));
    tw_params_free(&p);
    assert_int_equal(tw_form_parse("a%00b=1", 7, &p, why, sizeof why), -1);
    assert_string_equal(why, "parameter 1: name: a NUL byte \"%00\"");
    tw_params_free(&p);
    char many[2048] = "";
    for (int i = 0; i <= TW_PARAMS_MAX; i++)
        strcat(many, "a=1&");
    assert_int_equal(tw_form_parse(many, strlen(many), &p, why, sizeof why), -1);
    assert_string_equal(why, "more than 256 parameters");
    tw_params_free(&p);
}

static void test_signed_url(void **state)
{
    (void)state;
    char *u = tw_signed_url("https://example.com/twilio/", "/sms", "a=1&b=2");
    assert_string_equal(u, "https://example.com/twilio/sms?a=1&b=2");
    free(u);
    u = tw_signed_url("https://example.com/twilio", "/", "");
    assert_string_equal(u, "https://example.com/twilio");
    free(u);
    u = tw_signed_url("https://example.com", "/sms", NULL);
    assert_string_equal(u, "https://example.com/sms");
    free(u);
}

static const char *const MMS = "ToCountry=US&MediaContentType0=image%2Fjpeg&ToState=CA&NumMedia=2&"
    "MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMM1%2FMedia%2FME111&"
    "MediaContentType1=audio%2Famr&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMM1%2FMedia%2FME222&"
    "SmsMessageSid=MM1&NumSegments=1&SmsSid=MM1&SmsStatus=received&Body=see+%F0%9F%93%B7&To=%2B18005551212&"
    "MessageSid=MMa1b2c3d4e5f60718293a4b5c6d7e8f90&AccountSid=AC1&From=%2B14158675309&ApiVersion=2010-04-01&"
    "FromCountry=US";

static tw_kind_t kind_of(const char *body, omni_msg_t **msg, char *why, size_t whysz)
{
    tw_params_t p = { 0 };
    assert_int_equal(tw_form_parse(body, strlen(body), &p, why, whysz), 0);
    tw_kind_t k = tw_message(&p, "2026-12-01T00:00:00Z", msg, why, whysz);
    tw_params_free(&p);
    return k;
}

static void test_mms_becomes_a_message_with_attachments(void **state)
{
    (void)state;
    omni_msg_t *msg = NULL;
    char why[256];
    assert_int_equal(kind_of(MMS, &msg, why, sizeof why), TW_MESSAGE);
    assert_string_equal(msg->id, "sms:MMa1b2c3d4e5f60718293a4b5c6d7e8f90");
    assert_string_equal(msg->channel, "sms");
    assert_string_equal(msg->from_id, "+14158675309");
    assert_string_equal(msg->to, "+18005551212");
    assert_string_equal(msg->text, "see \xf0\x9f\x93\xb7");
    json_t *att = json_object_get(msg->json, "attachments");
    assert_int_equal(json_array_size(att), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(att, 0), "type")), "image/jpeg");
    assert_string_equal(json_string_value(json_object_get(json_array_get(att, 0), "name")), "ME111");
    assert_string_equal(json_string_value(json_object_get(json_array_get(att, 1), "url")),
                        "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME222");
    json_t *meta = json_object_get(msg->json, "meta");
    assert_int_equal(json_integer_value(json_object_get(meta, "num_media")), 2);
    assert_string_equal(json_string_value(json_object_get(meta, "account_sid")), "AC1");
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_error_t err;
    assert_int_equal(omni_msg_validate(msg, &lim, &err), 0);
    omni_msg_destroy(&msg);

    /* the name is the path's last segment: without a query, past a trailing "/", else the parameter's name */
    static const struct { const char *url, *name; } names[] = {
        { "https%3A%2F%2Fm.example%2FMedia%2FME333%3Fx%3D1", "ME333" },
        { "https%3A%2F%2Fm.example%2FMedia%2FME444%2F", "ME444" },
        { "https%3A%2F%2Fm.example%2F", "MediaUrl0" },
        { "https%3A%2F%2Fm.example", "MediaUrl0" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *body = omni_asprintf("MessageSid=MM2&From=%%2B14158675309&NumMedia=1&MediaUrl0=%s", names[i].url);
        assert_int_equal(kind_of(body, &msg, why, sizeof why), TW_MESSAGE);
        att = json_object_get(msg->json, "attachments");
        assert_string_equal(json_string_value(json_object_get(json_array_get(att, 0), "name")), names[i].name);
        omni_msg_destroy(&msg);
        free(body);
    }
}

static void test_status_callbacks_and_malformed(void **state)
{
    (void)state;
    omni_msg_t *msg = NULL;
    char why[256];
    assert_int_equal(kind_of("MessageSid=SM1&MessageStatus=delivered&SmsStatus=delivered&From=%2B1800", &msg, why,
                             sizeof why), TW_STATUS);
    assert_null(msg);
    static const struct { const char *body, *why; } bad[] = {
        { "From=%2B14158675309&Body=hi", "MessageSid: missing (neither a message nor a status callback)" },
        { "MessageSid=SM-1&From=%2B14158675309", "MessageSid: \"SM-1\" is not 2..64 letters and digits" },
        { "MessageSid=SM1&Body=hi", "From: missing (message SM1)" },
        { "MessageSid=SM1&From=4158675309", "From: \"4158675309\" is not an E.164 number (no leading +) (message SM1)" },
        { "MessageSid=SM1&From=whatsapp%3A%2B14158675309", "From: \"whatsapp:+14158675309\" is not an E.164 number "
                                                          "(no leading +) (message SM1)" },
        { "MessageSid=SM1&From=%2B14158675309&Body=%FF", "Body: not UTF-8 at byte 0" },
        { "MessageSid=SM1&From=%2B14158675309&NumMedia=2&MediaUrl0=https%3A%2F%2Fx%2Fm",
          "MediaUrl1: missing though NumMedia is 2 (message SM1)" },
        { "MessageSid=SM1&From=%2B14158675309&NumMedia=1&MediaUrl0=&MediaContentType0=image%2Fpng",
          "MediaUrl0: empty though NumMedia is 1 (message SM1)" },
        { "MessageSid=SM1&From=%2B14158675309&NumMedia=33", "NumMedia: \"33\" is not 0..32 (message SM1)" },
        { "MessageSid=SM1&From=%2B14158675309&NumMedia=x", "NumMedia: \"x\" is not 0..32 (message SM1)" },
        /* digits only: strtol alone took a sign and blanks, and meta.num_media then said "+1" */
        { "MessageSid=SM1&From=%2B14158675309&NumMedia=%2B1&MediaUrl0=https%3A%2F%2Fx%2Fm",
          "NumMedia: \"+1\" is not 0..32 (message SM1)" },
        { "MessageSid=SM1&From=%2B14158675309&NumMedia=+1&MediaUrl0=https%3A%2F%2Fx%2Fm",
          "NumMedia: \" 1\" is not 0..32 (message SM1)" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(kind_of(bad[i].body, &msg, why, sizeof why), TW_MALFORMED);
        assert_null(msg);
        assert_string_equal(why, bad[i].why);
    }
}

/* An empty To is no address: left out. Twilio's counts in meta are numbers only when they are one as sent. */
static void test_empty_to_and_meta_numbers(void **state)
{
    (void)state;
    omni_msg_t *msg = NULL;
    char why[256];
    assert_int_equal(kind_of("MessageSid=SM1&From=%2B14158675309&To=&Body=hi&NumSegments=99999999999999999999",
                             &msg, why, sizeof why), TW_MESSAGE);
    assert_null(msg->to);
    assert_null(json_object_get(msg->json, "to"));
    json_t *meta = json_object_get(msg->json, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "num_segments")), "99999999999999999999");
    omni_msg_destroy(&msg);
    static const struct { const char *seg; long long n; } cases[] = {
        { "1", 1 }, { "0", 0 }, { "9223372036854775807", INT64_MAX }, { "+1", -1 }, { "%201", -1 }, { "1x", -1 },
        { "", -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *body = omni_asprintf("MessageSid=SM1&From=%%2B14158675309&To=%%2B18005551212&NumSegments=%s", cases[i].seg);
        assert_int_equal(kind_of(body, &msg, why, sizeof why), TW_MESSAGE);
        assert_string_equal(msg->to, "+18005551212");
        json_t *v = json_object_get(json_object_get(msg->json, "meta"), "num_segments");
        if (cases[i].n >= 0) {
            assert_true(json_is_integer(v));
            assert_true(json_integer_value(v) == cases[i].n);
        } else {
            assert_true(json_is_string(v)); /* as sent: "+1", " 1", "1x", "" */
        }
        omni_msg_destroy(&msg);
        free(body);
    }
}

/* A parameter that only goes into meta costs only itself when it is over the router's limits: 4 KiB a
 * string, 16 KiB of meta. The message is taken; a Body or MediaUrl over them is still a 400 (above). */
static void test_oversized_meta_parameters_are_left_out(void **state)
{
    (void)state;
    omni_msg_t *msg = NULL;
    char why[256];
    char *big = omni_malloc(5001), *mid = omni_malloc(3501);
    memset(big, 'p', 5000);
    big[5000] = '\0';
    memset(mid, 'c', 3500);
    mid[3500] = '\0';
    char *body = omni_asprintf("MessageSid=SM1&From=%%2B14158675309&Body=hi&ProfileName=%s&FromCity=%s&FromState=%s"
                               "&FromZip=%s&FromCountry=%s&ToCountry=%s&AccountSid=AC1", big, mid, mid, mid, mid, mid);
    assert_int_equal(kind_of(body, &msg, why, sizeof why), TW_MESSAGE);
    json_t *meta = json_object_get(msg->json, "meta");
    assert_null(json_object_get(meta, "profile_name"));
    assert_string_equal(json_string_value(json_object_get(meta, "account_sid")), "AC1");
    assert_string_equal(json_string_value(json_object_get(meta, "message_sid")), "SM1");
    assert_true(json_dumpb(meta, NULL, 0, JSON_COMPACT) <= 16384);
    assert_string_equal(msg->text, "hi");
    omni_limits_t lim;
    omni_limits_default(&lim);
    omni_msg_error_t err;
    assert_int_equal(omni_msg_validate(msg, &lim, &err), 0);
    omni_msg_destroy(&msg);
    free(body);
    free(big);
    free(mid);
}

static void test_json_params(void **state)
{
    (void)state;
    tw_params_t p = { 0 };
    char why[256];
    const char *ok = "{\"MessageSid\":\"SM1\",\"NumMedia\":0,\"flag\":true,\"none\":null}";
    assert_int_equal(tw_json_params(ok, strlen(ok), &p, why, sizeof why), 0);
    assert_string_equal(tw_param(&p, "NumMedia"), "0");
    assert_string_equal(tw_param(&p, "flag"), "true");
    assert_string_equal(tw_param(&p, "none"), "");
    tw_params_free(&p);
    assert_int_equal(tw_json_params("{\"a\":{\"b\":1}}", 13, &p, why, sizeof why), -1);
    assert_string_equal(why, "JSON body: field \"a\": nested objects and arrays are not taken");
    tw_params_free(&p);
    assert_int_equal(tw_json_params("[1]", 3, &p, why, sizeof why), -1);
    assert_string_equal(why, "JSON body: not an object");
    tw_params_free(&p);
    assert_int_equal(tw_json_params("{", 1, &p, why, sizeof why), -1);
    assert_non_null(strstr(why, "JSON body: "));
    tw_params_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_published_vector),
        cmocka_unit_test(test_url_with_and_without_port),
        cmocka_unit_test(test_tampering_fails),
        cmocka_unit_test(test_form_decoding),
        cmocka_unit_test(test_signed_url),
        cmocka_unit_test(test_mms_becomes_a_message_with_attachments),
        cmocka_unit_test(test_status_callbacks_and_malformed),
        cmocka_unit_test(test_empty_to_and_meta_numbers),
        cmocka_unit_test(test_oversized_meta_parameters_are_left_out),
        cmocka_unit_test(test_json_params),
    };
    return cmocka_run_group_tests_name("twilio", tests, setup, teardown);
}
